//! One self-contained HTML page: inline CSS, an inline SVG chart, no script
//! and nothing fetched from the network, so it can be mailed or archived and
//! opened anywhere. The only URLs are links to each user's page in the IAM
//! console. Every piece of text from the report goes through [`escape`].

use std::fmt::Write;

use super::views::{
    AccountGroup, advisor_counts, by_account, config_counts, config_evaluations,
    trusted_advisor_rows,
};
use super::{
    ADVISOR_COLUMNS, KEY_COLUMNS, View, account_label, date, masked, masked_row, notes, opt_days,
    rfc3339, source_name,
};
use crate::audit::{AccountResult, AccountStatus, AuditReport};
use crate::model::mask_key_id;
use crate::policy::{AdvisorStatus, ConfigCompliance, Verdict};

mod chart;

const CSS: &str = include_str!("style.css");

pub fn render(report: &AuditReport, view: View) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let title = format!("rekey audit — {}", view.title());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header>\n<h1>rekey audit <small>{}</small></h1>\n\
         <p class=\"meta\">Generated <time>{}</time> · keys judged as of <time>{}</time> · source: {} · view: {}</p>\n\
         <p class=\"meta\">Access key IDs are masked.</p>\n</header>\n",
        escape(&title),
        escape(view.title()),
        escape(&rfc3339(Some(report.generated_at))),
        escape(&rfc3339(Some(report.as_of))),
        escape(source_name(report.source)),
        escape(view.as_str()),
    );
    cards(&mut out, report, view);
    chart::render(&mut out, &report.keys);
    failed(&mut out, report);
    match view {
        View::Keys => {
            let groups = by_account(report, &report.keys, |k| &k.account_id);
            accounts(&mut out, &groups, KEY_HEADER, |k| {
                let link = (!k.is_root).then_some(k.partition.as_str());
                vec![
                    user_cell(&k.user_name, link),
                    format!("<span class=\"key\">{}</span>", escape(&masked_row(k))),
                    escape(k.status.as_str()),
                    escape(&date(k.created)),
                    format!("<td class=\"num\">{}", escape(&opt_days(k.age_days))),
                    escape(&date(k.last_used)),
                    badge(k.verdict.as_str(), verdict_tone(k.verdict)),
                    escape(&notes(k)),
                ]
            });
        }
        View::Config => {
            let evals = config_evaluations(report);
            let groups = by_account(report, &evals, |e| &e.account_id);
            accounts(&mut out, &groups, CONFIG_HEADER, |e| {
                vec![
                    user_cell(&e.user_name, Some(&e.partition)),
                    badge(
                        e.compliance_type.as_str(),
                        compliance_tone(e.compliance_type),
                    ),
                    format!("<td class=\"num\">{}", e.max_access_key_age),
                    escape(&e.annotation(true)),
                ]
            });
        }
        View::TrustedAdvisor => {
            let rows = trusted_advisor_rows(report);
            let groups = by_account(report, &rows, |r| &r.account_id);
            accounts(&mut out, &groups, ADVISOR_HEADER, |r| {
                let key = r
                    .access_key
                    .as_deref()
                    .map_or_else(|| masked(None, false), mask_key_id);
                vec![
                    badge(r.status.as_str(), advisor_tone(r.status)),
                    user_cell(&r.iam_user, Some(&r.partition)),
                    format!("<span class=\"key\">{}</span>", escape(&key)),
                    escape(&date(r.key_last_rotated)),
                    escape(r.status.reason()),
                ]
            });
        }
    }
    out.push_str("<footer><p class=\"meta\">Made by rekey.</p></footer>\n</body>\n</html>\n");
    out
}

// Per-account tables: the shared columns without the account.
const KEY_HEADER: &[&str] = KEY_COLUMNS.split_at(1).1;
const CONFIG_HEADER: &[&str] = &["user", "compliance", "maxAccessKeyAge", "annotation"];
const ADVISOR_HEADER: &[&str] = ADVISOR_COLUMNS.split_at(1).1;

fn cards(out: &mut String, report: &AuditReport, view: View) {
    let s = &report.summary;
    let mut cards = vec![
        ("ok", s.accounts_ok, "accounts audited"),
        (
            if s.accounts_failed > 0 { "bad" } else { "ok" },
            s.accounts_failed,
            "accounts failed",
        ),
        ("", s.keys, "access keys"),
        (
            if s.non_compliant > 0 { "bad" } else { "ok" },
            s.non_compliant,
            "non-compliant",
        ),
        ("", s.exempt, "exempt"),
    ];
    if s.securityhub_failed > 0 {
        cards.push(("bad", s.securityhub_failed, "Security Hub imports failed"));
    }
    match view {
        View::Keys => {}
        View::Config => {
            let c = config_counts(&config_evaluations(report));
            cards.push(("ok", c.compliant, "users COMPLIANT"));
            cards.push(("bad", c.non_compliant, "users NON_COMPLIANT"));
        }
        View::TrustedAdvisor => {
            let c = advisor_counts(&trusted_advisor_rows(report));
            cards.push(("ok", c.green, "green"));
            cards.push(("warn", c.yellow, "yellow"));
            cards.push(("bad", c.red, "red"));
        }
    }
    out.push_str("<section class=\"cards\">\n");
    for (tone, n, label) in cards {
        let class = if tone.is_empty() {
            "card".to_string()
        } else {
            format!("card {tone}")
        };
        let _ = writeln!(
            out,
            "<div class=\"{class}\"><b>{n}</b><span>{}</span></div>",
            escape(label)
        );
    }
    out.push_str("</section>\n");
}

fn failed(out: &mut String, report: &AuditReport) {
    let failed: Vec<_> = report
        .accounts
        .iter()
        .filter_map(|a| match a.status {
            AccountStatus::Error => Some((a, a.error.as_deref().unwrap_or("unknown error"))),
            AccountStatus::Ok => None,
        })
        .collect();
    list_failed(out, "Failed accounts", &failed);
    let unsent: Vec<_> = report
        .accounts
        .iter()
        .filter_map(|a| Some((a, a.securityhub_error.as_deref()?)))
        .collect();
    list_failed(
        out,
        "Security Hub imports failed (the accounts were audited)",
        &unsent,
    );
}

fn list_failed(out: &mut String, title: &str, failed: &[(&AccountResult, &str)]) {
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<section class=\"failed\">\n<h2>{}</h2>\n<ul>",
        escape(title)
    );
    for (a, error) in failed {
        let _ = writeln!(
            out,
            "<li><strong>{}</strong> via {}: <code>{}</code></li>",
            escape(&account_label(a)),
            escape(&a.via),
            escape(error)
        );
    }
    out.push_str("</ul>\n</section>\n");
}

/// One section per account. A cell starting with `<td` brings its own
/// opening tag (right-aligned numbers); every other cell is wrapped.
fn accounts<T>(
    out: &mut String,
    groups: &[AccountGroup<'_, T>],
    header: &[&str],
    cells: impl Fn(&T) -> Vec<String>,
) {
    for g in groups {
        out.push_str("<section class=\"account\">\n");
        match g.account {
            Some(a) => {
                let _ = writeln!(out, "<h2>Account {}</h2>", escape(&account_label(a)));
                if a.status == AccountStatus::Error {
                    let _ = writeln!(
                        out,
                        "<p class=\"meta\">via {} · {} AWS calls</p>\n\
                         <p class=\"failed\">Audit failed: <code>{}</code></p>\n</section>",
                        escape(&a.via),
                        a.aws_calls,
                        escape(a.error.as_deref().unwrap_or("unknown error"))
                    );
                    continue;
                }
                let _ = writeln!(
                    out,
                    "<p class=\"meta\">via {} · partition {} · {} users · {} keys · {} non-compliant · \
                     {} AWS calls · max age {} days</p>",
                    escape(&a.via),
                    escape(a.partition.as_deref().unwrap_or("unknown")),
                    a.users,
                    a.keys,
                    a.non_compliant_keys,
                    a.aws_calls,
                    a.max_age_days
                );
            }
            None => out.push_str("<h2>Keys of accounts not listed above</h2>\n"),
        }
        if g.rows.is_empty() {
            out.push_str("<p class=\"meta\">Nothing to show.</p>\n</section>\n");
            continue;
        }
        out.push_str("<table>\n<thead><tr>");
        for h in header {
            let _ = write!(out, "<th>{}</th>", escape(h));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &g.rows {
            out.push_str("<tr>");
            for cell in cells(row) {
                if cell.starts_with("<td") {
                    let _ = write!(out, "{cell}</td>");
                } else {
                    let _ = write!(out, "<td>{cell}</td>");
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }
}

/// A result word in the colour (CSS class) of its tone.
fn badge(word: &str, tone: &str) -> String {
    format!("<span class=\"badge {tone}\">{}</span>", escape(word))
}

fn verdict_tone(v: Verdict) -> &'static str {
    match v {
        Verdict::Compliant => "ok",
        Verdict::Exempt => "exempt",
        Verdict::NonCompliant => "bad",
    }
}

fn compliance_tone(c: ConfigCompliance) -> &'static str {
    match c {
        ConfigCompliance::Compliant => "ok",
        ConfigCompliance::NonCompliant => "bad",
    }
}

fn advisor_tone(s: AdvisorStatus) -> &'static str {
    match s {
        AdvisorStatus::Green => "ok",
        AdvisorStatus::Yellow => "warn",
        AdvisorStatus::Red => "bad",
    }
}

/// The user's name, linked to their security credentials in the console of
/// their partition when `partition` is given and known.
fn user_cell(user: &str, partition: Option<&str>) -> String {
    match partition.and_then(|p| console_url(p, user)) {
        Some(url) => format!(
            "<a href=\"{}\" title=\"Open in the IAM console\">{}</a>",
            escape(&url),
            escape(user)
        ),
        None => escape(user),
    }
}

/// The IAM console page of a user's security credentials.
pub fn console_url(partition: &str, user: &str) -> Option<String> {
    let host = match partition {
        "aws" => "console.aws.amazon.com",
        "aws-cn" => "console.amazonaws.cn",
        "aws-us-gov" => "console.amazonaws-us-gov.com",
        _ => return None,
    };
    Some(format!(
        "https://{host}/iam/home#/users/details/{}?section=security_credentials",
        url_encode(user)
    ))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, EVIL, FAILURE, ids};

    #[test]
    fn escape_handles_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape("it's a & b"), "it&#39;s a &amp; b");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn console_links_follow_the_partition() {
        let url = |p| console_url(p, "a b/c+d");
        assert_eq!(
            url("aws").unwrap(),
            "https://console.aws.amazon.com/iam/home#/users/details/a%20b%2Fc%2Bd?section=security_credentials"
        );
        assert!(
            url("aws-cn")
                .unwrap()
                .starts_with("https://console.amazonaws.cn/iam/home#/users/details/")
        );
        assert!(
            url("aws-us-gov")
                .unwrap()
                .starts_with("https://console.amazonaws-us-gov.com/iam/")
        );
        assert_eq!(url("aws-iso"), None);
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let report = fixture::report();
        for view in [View::Keys, View::Config, View::TrustedAdvisor] {
            let html = render(&report, view);
            assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
            for bad in [
                "src=\"http",
                "<link",
                "@import",
                "<script",
                "url(",
                "<img",
                "<iframe",
            ] {
                assert!(!html.contains(bad), "{view}: {bad}");
            }
            for (i, _) in html.match_indices("http") {
                let rest = &html[i..];
                assert!(
                    ["https://console.aws.amazon.com/iam/home#/users/details/"]
                        .iter()
                        .any(|p| rest.starts_with(p)),
                    "{view}: unexpected URL {}",
                    &rest[..rest.len().min(60)]
                );
            }
            assert!(html.contains("<svg") && html.contains("</svg>"), "{view}");
            assert!(
                html.contains("ev|l&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;"),
                "{view}"
            );
            assert!(!html.contains(EVIL), "{view}");
            assert!(html.contains(&escape(FAILURE)), "{view}");
            for id in ids::ALL {
                assert!(!html.contains(id), "{view}: full ID {id}");
            }
        }
    }

    #[test]
    fn keys_view_links_users_but_not_root() {
        let html = render(&fixture::report(), View::Keys);
        assert!(html.contains("users/details/alice?section=security_credentials"));
        assert!(html.contains("users/details/ev%7Cl%3Cscript%3E"));
        assert!(!html.contains("users/details/%3Croot_account%3E"));
        assert!(html.contains("(root)"));
        for word in ["compliant", "non_compliant", "exempt"] {
            assert!(html.contains(&format!("\">{word}</span>")), "{word}");
        }
        // The chart: six buckets with their labels and totals.
        for label in ["0–30", "31–90", "91–180", "181–365", "366–730", "&gt;730"] {
            assert!(html.contains(&format!(">{label}</text>")), "{label}");
        }
    }

    #[test]
    fn compliance_views_show_their_words() {
        let report = fixture::report();
        let config = render(&report, View::Config);
        assert!(
            config.contains("\">COMPLIANT</span>") && config.contains("\">NON_COMPLIANT</span>")
        );
        assert!(config.contains("maxAccessKeyAge"));
        let ta = render(&report, View::TrustedAdvisor);
        for c in ["green", "yellow", "red"] {
            assert!(ta.contains(&format!("\">{c}</span>")), "{c}");
        }
        assert!(ta.contains("Key has not been rotated in the last 2 years"));
    }
}
