//! Markdown (GitHub flavoured) for tickets and pull requests: a title, the
//! summary, the accounts table and the view's table. Key IDs masked; every
//! cell escaped so a `|` or `<` in a name cannot break the table or inject
//! HTML.

use std::fmt::Write;

use super::views::{advisor_counts, config_counts, config_evaluations, trusted_advisor_rows};
use super::{
    ACCOUNT_COLUMNS, ADVISOR_COLUMNS, CONFIG_COLUMNS, KEY_COLUMNS, View, account_cells,
    advisor_cells, config_cells, key_cells, rfc3339, source_name,
};
use crate::audit::{AccountStatus, AuditReport};

pub fn render(report: &AuditReport, view: View) -> String {
    let s = &report.summary;
    let mut out = format!("# rekey audit — {}\n\n", view.title());
    let _ = writeln!(
        out,
        "Generated {}, keys judged as of {} (source: {}).\n",
        rfc3339(Some(report.generated_at)),
        rfc3339(Some(report.as_of)),
        source_name(report.source),
    );
    out.push_str("## Summary\n\n");
    let _ = writeln!(
        out,
        "- Accounts: {} ({} ok, {} failed)\n- Keys: {} ({} active)\n- Compliant: {}\n- Non-compliant: {}\n- Exempt: {}",
        s.accounts,
        s.accounts_ok,
        s.accounts_failed,
        s.keys,
        s.active_keys,
        s.compliant,
        s.non_compliant,
        s.exempt
    );
    if s.securityhub_failed > 0 {
        let _ = writeln!(
            out,
            "- Security Hub imports failed: {} (the accounts were audited)",
            s.securityhub_failed
        );
    }
    match view {
        View::Keys => {}
        View::Config => {
            let c = config_counts(&config_evaluations(report));
            let _ = writeln!(
                out,
                "- Users COMPLIANT: {}\n- Users NON_COMPLIANT: {}",
                c.compliant, c.non_compliant
            );
        }
        View::TrustedAdvisor => {
            let c = advisor_counts(&trusted_advisor_rows(report));
            let _ = writeln!(
                out,
                "- green: {}\n- yellow: {}\n- red: {}",
                c.green, c.yellow, c.red
            );
        }
    }
    out.push_str("\n## Accounts\n\n");
    let accounts = report
        .accounts
        .iter()
        .map(|a| {
            let status = match a.status {
                AccountStatus::Ok => "ok",
                AccountStatus::Error => "**error**",
            };
            let error = match (&a.error, &a.securityhub_error) {
                (Some(e), _) => e.clone(),
                (None, Some(e)) => format!("Security Hub import failed: {e}"),
                (None, None) => String::new(),
            };
            account_cells(a, status, error)
        })
        .collect();
    table(&mut out, &ACCOUNT_COLUMNS, accounts, &[3]);
    match view {
        View::Keys => keys(&mut out, report),
        View::Config => config(&mut out, report),
        View::TrustedAdvisor => advisor(&mut out, report),
    }
    out
}

fn keys(out: &mut String, report: &AuditReport) {
    out.push_str("\n## Access keys\n\n");
    let rows = report.keys.iter().map(key_cells).collect();
    table(out, &KEY_COLUMNS, rows, &[]);
}

fn config(out: &mut String, report: &AuditReport) {
    out.push_str("\n## AWS Config `access-keys-rotated` evaluations\n\n");
    let rows = config_evaluations(report)
        .iter()
        .map(config_cells)
        .collect();
    table(out, &CONFIG_COLUMNS, rows, &[]);
}

fn advisor(out: &mut String, report: &AuditReport) {
    out.push_str("\n## Trusted Advisor: IAM Access Key Rotation\n\n");
    let rows = trusted_advisor_rows(report)
        .iter()
        .map(advisor_cells)
        .collect();
    table(out, &ADVISOR_COLUMNS, rows, &[]);
}

/// Writes a table; cells are escaped except those in `raw` columns, which
/// hold Markdown this file wrote itself.
fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>, raw: &[usize]) {
    if rows.is_empty() {
        out.push_str("_None._\n");
        return;
    }
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if raw.contains(&i) {
                    c.clone()
                } else {
                    escape(c)
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

/// Makes text inert in a GFM table cell: `|` cannot end the cell, `<` and
/// `&` cannot start HTML, emphasis and code markers stay literal, and a
/// newline cannot end the row.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, FAILURE, ids};

    /// Lines of the table that follows `heading`, header and separator
    /// included.
    fn table_after<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
        let start = text.find(heading).unwrap_or_else(|| panic!("no {heading}"));
        text[start..]
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .collect()
    }

    /// Cells of a row, splitting on unescaped pipes only.
    fn cells(line: &str) -> usize {
        let bytes = line.as_bytes();
        (0..bytes.len())
            .filter(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
            .count()
            - 1
    }

    #[test]
    fn tables_have_a_row_per_item_and_stay_rectangular() {
        let report = fixture::report();
        let keys = render(&report, View::Keys);
        assert!(keys.starts_with("# rekey audit"));
        let accounts = table_after(&keys, "## Accounts");
        assert_eq!(accounts.len(), 2 + report.accounts.len());
        assert!(keys.contains(FAILURE));
        let rows = table_after(&keys, "## Access keys");
        assert_eq!(rows.len(), 2 + report.keys.len());
        assert!(rows.iter().all(|r| cells(r) == 9), "{rows:#?}");
        assert!(keys.contains(r"ev\|l&lt;script&gt;"));
        for id in ids::ALL {
            assert!(!keys.contains(id), "{id}");
        }

        let config = render(&report, View::Config);
        let rows = table_after(&config, "## AWS Config");
        assert_eq!(rows.len(), 2 + 5);
        assert!(config.contains("NON_COMPLIANT") && config.contains("| COMPLIANT |"));

        let ta = render(&report, View::TrustedAdvisor);
        let rows = table_after(&ta, "## Trusted Advisor");
        assert_eq!(rows.len(), 2 + 4);
        for c in ["| green |", "| yellow |", "| red |"] {
            assert!(ta.contains(c), "{c}");
        }
    }

    #[test]
    fn escape_neutralises_table_and_html_syntax() {
        assert_eq!(escape("a|b"), r"a\|b");
        assert_eq!(escape("<b>&"), "&lt;b&gt;&amp;");
        assert_eq!(escape("svc_ci*"), r"svc\_ci\*");
        assert_eq!(escape("x\ny"), "x y");
    }
}
