//! The messages, from templates: `templates/` in the repository (built
//! in), each replaceable by a file of the same name in the directory
//! `[notify] templates` names.
//!
//! | template | escaping |
//! |---|---|
//! | `email.subject.txt` | none; one line (line breaks become spaces) |
//! | `email.txt` | none (plain text) |
//! | `email.html` | HTML: every inserted value |
//! | `chat.md` | Slack mrkdwn: `&`, `<` and `>` of every inserted value, so no value makes a link, a mention or markup |
//!
//! User names, paths, tags and account names are written by whoever
//! administers an account: they are escaped by the engine, not by each
//! template remembering to. The SNS message is JSON made with serde, not
//! a template: its schema is fixed ([`super::SCHEMA`]).

use std::path::{Path, PathBuf};

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use time::OffsetDateTime;

use super::digest::{Digest, day};

/// Every template, by name, with its built-in text.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "email.subject.txt",
        include_str!("../../templates/email.subject.txt"),
    ),
    ("email.txt", include_str!("../../templates/email.txt")),
    ("email.html", include_str!("../../templates/email.html")),
    ("chat.md", include_str!("../../templates/chat.md")),
];

/// Slack's limits: 50 blocks a message, 3,000 characters a section.
const MAX_BLOCKS: usize = 50;
const MAX_SECTION: usize = 3000;

/// A template that cannot be used. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the template {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("template {}: {message}", path.display())]
    Bad { path: PathBuf, message: String },
    #[error("{}: no such directory of templates", path.display())]
    NoDirectory { path: PathBuf },
}

/// The templates, checked.
pub struct Templates {
    env: Environment<'static>,
    /// Where each template came from: built in, or a file.
    origins: Vec<(String, PathBuf)>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("origins", &self.origins)
            .finish()
    }
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What the templates are given.
#[derive(Serialize)]
struct Context<'a> {
    to: String,
    channel: &'static str,
    run_day: String,
    total: usize,
    subject: String,
    groups: &'a [super::digest::Group],
}

/// Slack's escaping of text: `&`, `<` and `>`.
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn escaping(name: &str) -> AutoEscape {
    if name.ends_with(".html") {
        AutoEscape::Html
    } else if name.ends_with(".md") {
        AutoEscape::Custom(std::borrow::Cow::Borrowed("slack"))
    } else {
        AutoEscape::None
    }
}

impl Templates {
    /// The built-in templates, each replaced by `dir`'s file of the same
    /// name where it has one; each compiled and tried on a sample digest,
    /// so a broken one is an error before anything is sent.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters"),
        );
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(escaping);
        env.set_formatter(|out, state, value| {
            if matches!(state.auto_escape(), AutoEscape::Custom(c) if c == "slack")
                && !value.is_safe()
            {
                let text = match value.as_str() {
                    Some(s) => s.to_string(),
                    None if value.is_none() || value.is_undefined() => String::new(),
                    None => value.to_string(),
                };
                return out.write_str(&slack_escape(&text)).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                });
            }
            minijinja::escape_formatter(out, state, value)
        });
        if let Some(d) = dir
            && !d.is_dir()
        {
            return Err(TemplateError::NoDirectory {
                path: d.to_path_buf(),
            });
        }
        let mut origins = Vec::new();
        for (name, builtin) in TEMPLATES {
            let file = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let (source, origin) = match file {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                            path: path.clone(),
                            source,
                        })?;
                    (text, path)
                }
                None => (
                    builtin.to_string(),
                    PathBuf::from(format!("templates/{name} (built in)")),
                ),
            };
            env.add_template_owned(name.to_string(), source)
                .map_err(|e| TemplateError::Bad {
                    path: origin.clone(),
                    message: words(&e),
                })?;
            origins.push((name.to_string(), origin));
        }
        let t = Templates { env, origins };
        t.try_on_a_sample()?;
        Ok(t)
    }

    fn origin(&self, name: &str) -> PathBuf {
        (self.origins.iter())
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    }

    fn render(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        let bad = |e: minijinja::Error| TemplateError::Bad {
            path: self.origin(name),
            message: words(&e),
        };
        self.env
            .get_template(name)
            .map_err(bad)?
            .render(ctx)
            .map_err(bad)
    }

    fn context(digest: &Digest, at: OffsetDateTime, subject: String) -> Value {
        Value::from(minijinja::value::Serde(&Context {
            to: digest.to.describe(),
            channel: digest.channel.as_str(),
            run_day: day(at),
            total: digest.len(),
            subject,
            groups: &digest.groups,
        }))
    }

    /// The email of `digest`, for the run at `at`.
    pub fn email(&self, digest: &Digest, at: OffsetDateTime) -> Result<Email, TemplateError> {
        let subject = self.render(
            "email.subject.txt",
            &Self::context(digest, at, String::new()),
        )?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let ctx = Self::context(digest, at, subject.clone());
        Ok(Email {
            text: self.render("email.txt", &ctx)?,
            html: self.render("email.html", &ctx)?,
            subject,
        })
    }

    /// The chat message of `digest`: `text` (its first paragraph, what a
    /// notification shows) and `blocks` (a section per paragraph, long
    /// ones split at line ends, within Slack's limits).
    pub fn chat(
        &self,
        digest: &Digest,
        at: OffsetDateTime,
    ) -> Result<serde_json::Value, TemplateError> {
        let text = self.render("chat.md", &Self::context(digest, at, String::new()))?;
        Ok(chat_message(&text))
    }

    /// Renders every template for a sample digest whose values hold
    /// markup, so a template that fails does so now.
    fn try_on_a_sample(&self) -> Result<(), TemplateError> {
        let sample = sample_digest();
        let at = time::macros::datetime!(2030-01-01 00:00 UTC);
        self.email(&sample, at)?;
        self.chat(&sample, at)?;
        Ok(())
    }
}

/// A minijinja error in one line, with its line number.
fn words(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    if let Some(line) = e.line() {
        s = format!("line {line}: {s}");
    }
    s.lines().next().unwrap_or_default().to_string()
}

/// Slack's message shape around mrkdwn `text`.
fn chat_message(text: &str) -> serde_json::Value {
    let mut sections: Vec<String> = Vec::new();
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let mut current = String::new();
        for line in para.lines() {
            let line: String = line.chars().take(MAX_SECTION - 1).collect();
            if current.len() + line.len() + 1 > MAX_SECTION {
                sections.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(&line);
        }
        if !current.is_empty() {
            sections.push(current);
        }
    }
    if sections.len() > MAX_BLOCKS {
        let left = sections.len() - (MAX_BLOCKS - 1);
        sections.truncate(MAX_BLOCKS - 1);
        sections.push(format!("…and {left} more sections: see `rekey history`."));
    }
    let summary = sections.first().cloned().unwrap_or_default();
    let blocks: Vec<serde_json::Value> = (sections.iter())
        .map(|s| serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": s}}))
        .collect();
    serde_json::json!({"text": summary, "blocks": blocks})
}

/// A digest of every stage whose values hold markup.
fn sample_digest() -> Digest {
    use super::digest::{Recipient, Who, digests, notice};
    use super::stage::KeyStage;
    use super::{Channel, Stage};
    let rules = crate::enforce::lifecycle::Lifecycle::default();
    let who = Who {
        account_name: Some("<b>sample</b>".into()),
        user_arn: "arn:aws:iam::111111111111:user/<i>/sample".into(),
        bound: false,
    };
    let notices = (Stage::ALL.iter())
        .map(|stage| {
            let ks = KeyStage {
                account_id: "111111111111".into(),
                user_name: "<sample>".into(),
                key_id: "AKIASAMPLESAMPLE0001".into(),
                stage: *stage,
                since: time::macros::datetime!(2030-01-01 00:00 UTC),
                due: None,
                latest: time::macros::datetime!(2030-01-01 00:00 UTC),
            };
            notice(&ks, &who, &rules)
        })
        .collect();
    digests(Channel::Email, notices, |_| {
        Some(Recipient::Owner {
            address: "owner@example.com".into(),
        })
    })
    .remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_any_value_is_escaped_in_html_and_chat() {
        let t = Templates::load(None).unwrap();
        let mut d = sample_digest();
        let evil = "<script>alert(1)</script>";
        for g in &mut d.groups {
            for n in &mut g.notices {
                n.user_name = evil.into();
                n.account_name = Some("<img src=x onerror=alert(2)>".into());
                n.happened = format!("{evil} happened");
            }
        }
        let at = time::macros::datetime!(2030-01-01 00:00 UTC);
        let mail = t.email(&d, at).unwrap();
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        assert!(!mail.html.contains("<img"), "{}", mail.html);
        assert!(
            mail.html
                .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{}",
            mail.html
        );
        assert!(mail.text.contains(evil), "plain text is as it is");
        let chat = t.chat(&d, at).unwrap().to_string();
        assert!(
            !chat.contains("<script>") && !chat.contains("<img"),
            "{chat}"
        );
        assert!(chat.contains("&lt;script&gt;"), "{chat}");
        assert!(!mail.subject.contains('\n'));
    }

    #[test]
    fn a_template_directory_replaces_the_built_in_ones_it_has_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("email.subject.txt"), "Keys: {{ total }}").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let at = time::macros::datetime!(2030-01-01 00:00 UTC);
        let mail = t.email(&sample_digest(), at).unwrap();
        assert_eq!(mail.subject, "Keys: 6");
        assert!(
            mail.html.contains("<!DOCTYPE html>"),
            "the others stay built in"
        );
        std::fs::write(dir.path().join("chat.md"), "{% for x in %}").unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("chat.md") && err.contains("line 1"), "{err}");
        std::fs::write(dir.path().join("chat.md"), "{{ groups | nosuchfilter }}").unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("chat.md"), "{err}");
        std::fs::write(dir.path().join("chat.md"), "{{ no_such_value }}").unwrap();
        let err = Templates::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("chat.md") && err.contains("undefined"),
            "{err}"
        );
        let err = Templates::load(Some(&dir.path().join("nope")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such directory"), "{err}");
    }

    #[test]
    fn each_notice_has_its_own_lines_in_every_message() {
        let t = Templates::load(None).unwrap();
        let d = sample_digest();
        let at = time::macros::datetime!(2030-01-01 00:00 UTC);
        let mail = t.email(&d, at).unwrap();
        let keys = mail
            .text
            .lines()
            .filter(|l| l.starts_with("* Key AKIA…0001 of user <sample>"))
            .count();
        assert_eq!(keys, 6, "{}", mail.text);
        assert!(
            mail.text.contains("== Deactivated (1) ==\n\n* Key"),
            "{}",
            mail.text
        );
        assert!(
            mail.text
                .contains("      rekey enforce --reactivate AKIASAMPLESAMPLE0001\n"),
            "{}",
            mail.text
        );
        assert_eq!(
            mail.subject,
            "rekey: 6 of your access keys: replaced but still in use, due soon, deactivated, made active again, rotated, deleted"
        );
        let chat = t.chat(&d, at).unwrap();
        let text: String = (chat["blocks"].as_array().unwrap().iter())
            .map(|b| b["text"]["text"].as_str().unwrap().to_string() + "\n")
            .collect();
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("• `AKIA…0001` of *&lt;sample&gt;*"))
                .count(),
            6,
            "{text}"
        );
        assert_eq!(
            chat["blocks"].as_array().unwrap().len(),
            7,
            "a title and a section per stage: {text}"
        );
    }

    #[test]
    fn a_long_chat_message_stays_within_slacks_limits() {
        let text = (0..400)
            .map(|i| format!("• line {i} {}", "x".repeat(200)))
            .collect::<Vec<_>>()
            .join("\n");
        let msg = chat_message(&format!("*title*\n\n{text}"));
        let blocks = msg["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS);
        assert!(
            blocks
                .iter()
                .all(|b| b["text"]["text"].as_str().unwrap().len() <= MAX_SECTION)
        );
        assert_eq!(msg["text"], "*title*");
    }
}
