//! A delivery in words: the summary `rekey enforce` and `rekey notify`
//! end with, and the messages `rekey notify --preview` shows. Never the
//! webhook's URL: a message is shown by channel and recipient.

use std::fmt::Write;

use super::channel::Message;
use super::run::NotifyOutcome;

/// The summary: what was sent, what was not and why, keys without an
/// owner, values passed over.
pub fn summary(out: &NotifyOutcome) -> String {
    let mut s = String::new();
    let sent = out.delivered();
    let failed: Vec<_> = out.messages.iter().filter(|m| !m.delivered).collect();
    if out.messages.is_empty() && out.no_owner.is_empty() && out.problems.is_empty() {
        s.push_str("Notifications: nothing new to tell.\n");
    } else {
        let _ = writeln!(
            s,
            "Notifications: {sent} sent, {} not delivered{}.",
            failed.len() + out.no_owner.len(),
            if failed.is_empty() && out.no_owner.is_empty() {
                ""
            } else {
                " (owed to the next run)"
            }
        );
    }
    for m in &out.messages {
        let keys = if m.keys == 1 {
            "1 key".to_string()
        } else {
            format!("{} keys", m.keys)
        };
        let how = if m.delivered { "sent" } else { "NOT DELIVERED" };
        let _ = write!(s, "  {} to {} ({keys}): {how}", m.channel.as_str(), m.to);
        match &m.error {
            Some(e) => {
                let _ = writeln!(s, ": {e}");
            }
            None => s.push('\n'),
        }
    }
    for k in &out.no_owner {
        let _ = writeln!(
            s,
            "  no owner for {k}: tag the user `owner`, add an [[owner]] entry or set [notify] default_email"
        );
    }
    for p in out.passed_over.iter().chain(&out.problems) {
        let _ = writeln!(s, "  {p}");
    }
    s
}

/// Every message `rekey notify --preview` would send, in full.
pub fn preview(out: &NotifyOutcome) -> String {
    let mut s = String::new();
    if out.messages.is_empty() {
        s.push_str("Nothing to send: every stage has been told.\n");
    }
    for m in &out.messages {
        let keys = if m.keys == 1 {
            "1 key".to_string()
        } else {
            format!("{} keys", m.keys)
        };
        let _ = writeln!(s, "=== {} to {} ({keys}) ===", m.channel.as_str(), m.to);
        match &m.message {
            Some(Message::Email { email, .. }) => {
                let _ = writeln!(s, "Subject: {}\n\n{}", email.subject, email.text.trim_end());
            }
            Some(Message::Sns {
                subject,
                message,
                attributes,
            }) => {
                let attrs: Vec<String> =
                    attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(s, "Subject: {subject}\nAttributes: {}", attrs.join(", "));
                let _ = writeln!(
                    s,
                    "{}",
                    serde_json::to_string_pretty(message).unwrap_or_default()
                );
            }
            Some(Message::Webhook { body }) => {
                let _ = writeln!(
                    s,
                    "{}",
                    serde_json::to_string_pretty(body).unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(s, "cannot be made: {}", m.error.as_deref().unwrap_or("?"));
            }
        }
        s.push('\n');
    }
    for k in &out.no_owner {
        let _ = writeln!(s, "No owner for {k}: no email would go out for it.");
    }
    for p in out.passed_over.iter().chain(&out.problems) {
        let _ = writeln!(s, "{p}");
    }
    s
}
