//! The terminal rendering: an accounts table, the failed accounts with their
//! errors, the rows of the chosen view, and one summary line. Plain text
//! (no colours), key IDs masked, dates as `YYYY-MM-DD`.

use comfy_table::{CellAlignment, Table, presets};

use super::views::{advisor_counts, config_counts, config_evaluations, trusted_advisor_rows};
use super::{
    ACCOUNT_COLUMNS, ADVISOR_COLUMNS, CONFIG_COLUMNS, KEY_COLUMNS, View, account_cells,
    account_label, advisor_cells, config_cells, date, key_cells,
};
use crate::audit::{AccountStatus, AuditReport};

pub fn render(report: &AuditReport, view: View) -> String {
    let mut out = format!(
        "rekey audit — {} (as of {}, generated {})\n\n",
        view.title(),
        date(Some(report.as_of)),
        super::rfc3339(Some(report.generated_at)),
    );
    out.push_str(&accounts(report));
    out.push('\n');
    let failed: Vec<_> = report
        .accounts
        .iter()
        .filter(|a| a.status == AccountStatus::Error)
        .collect();
    if !failed.is_empty() {
        out.push_str("\nFailed accounts:\n");
        for a in failed {
            let error = a.error.as_deref().unwrap_or("unknown error");
            let line = format!("  {} via {}: {error}", account_label(a), a.via);
            out.push_str(&plain(&line));
            out.push('\n');
        }
    }
    out.push('\n');
    let (rows, line) = match view {
        View::Keys => keys(report),
        View::Config => config(report),
        View::TrustedAdvisor => advisor(report),
    };
    out.push_str(&rows);
    out.push_str("\n\n");
    out.push_str(&summary_line(report));
    out.push_str(&line);
    out.push('\n');
    out
}

/// Adds a row with control characters replaced, so a name cannot send
/// escape sequences to the terminal.
fn add(t: &mut Table, cells: Vec<String>) {
    t.add_row(cells.iter().map(|c| plain(c)).collect::<Vec<_>>());
}

fn plain(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn new_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.force_no_tty();
    t.set_header(header.to_vec());
    t
}

fn right_align(t: &mut Table, columns: &[usize]) {
    for &i in columns {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn accounts(report: &AuditReport) -> String {
    let mut t = new_table(&ACCOUNT_COLUMNS);
    for a in &report.accounts {
        let (status, error) = match a.status {
            AccountStatus::Ok => ("ok", String::new()),
            // The full chain is listed below the table; keep the table narrow.
            AccountStatus::Error => (
                "ERROR",
                a.error_code.clone().unwrap_or_else(|| "see below".into()),
            ),
        };
        add(&mut t, account_cells(a, status, error));
    }
    right_align(&mut t, &[4, 5, 6, 7]);
    t.to_string()
}

fn keys(report: &AuditReport) -> (String, String) {
    if report.keys.is_empty() {
        return ("No access keys found.".into(), String::new());
    }
    let mut t = new_table(&KEY_COLUMNS);
    for k in &report.keys {
        add(&mut t, key_cells(k));
    }
    right_align(&mut t, &[5]);
    (t.to_string(), String::new())
}

fn config(report: &AuditReport) -> (String, String) {
    let evals = config_evaluations(report);
    let c = config_counts(&evals);
    let line = format!(
        "; Config access-keys-rotated: {} users COMPLIANT, {} NON_COMPLIANT",
        c.compliant, c.non_compliant
    );
    if evals.is_empty() {
        return ("No IAM user has an access key.".into(), line);
    }
    let mut t = new_table(&CONFIG_COLUMNS);
    for e in &evals {
        add(&mut t, config_cells(e));
    }
    right_align(&mut t, &[3]);
    (t.to_string(), line)
}

fn advisor(report: &AuditReport) -> (String, String) {
    let rows = trusted_advisor_rows(report);
    let c = advisor_counts(&rows);
    let line = format!(
        "; Trusted Advisor: {} green, {} yellow, {} red",
        c.green, c.yellow, c.red
    );
    if rows.is_empty() {
        return ("No active IAM user access key.".into(), line);
    }
    let mut t = new_table(&ADVISOR_COLUMNS);
    for r in &rows {
        add(&mut t, advisor_cells(r));
    }
    (t.to_string(), line)
}

fn summary_line(report: &AuditReport) -> String {
    let s = &report.summary;
    format!(
        "{} accounts ({} ok, {} failed), {} keys ({} active): {} compliant, {} non-compliant, {} exempt; {} AWS calls",
        s.accounts,
        s.accounts_ok,
        s.accounts_failed,
        s.keys,
        s.active_keys,
        s.compliant,
        s.non_compliant,
        s.exempt,
        s.aws_calls
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mask_key_id;
    use crate::report::fixture::{self, FAILED_ACCOUNT, FAILURE, ids};

    #[test]
    fn keys_are_masked_and_failures_listed() {
        let report = fixture::report();
        for view in [View::Keys, View::Config, View::TrustedAdvisor] {
            let out = render(&report, view);
            for id in ids::ALL {
                assert!(!out.contains(id), "{view}: full ID {id} printed");
            }
            assert!(out.contains(FAILED_ACCOUNT), "{view}");
            assert!(out.contains(FAILURE), "{view}");
            assert!(
                out.contains("2 accounts (1 ok, 1 failed), 6 keys (5 active)"),
                "{view}"
            );
            assert!(!out.contains('\x1b'), "{view}: no colours");
        }
    }

    #[test]
    fn keys_view_shows_verdicts_dates_and_root() {
        let out = render(&fixture::report(), View::Keys);
        assert!(out.contains(&mask_key_id(ids::ALICE)));
        assert!(out.contains("(root)"));
        assert!(out.contains("2026-07-29"));
        for v in [
            "compliant",
            "non_compliant",
            "exempt: tag rekey:exempt=true",
        ] {
            assert!(out.contains(v), "{v}");
        }
        assert!(out.contains("too_old, root_key"));
    }

    #[test]
    fn compliance_views_show_their_words() {
        let report = fixture::report();
        let config = render(&report, View::Config);
        assert!(config.contains("NON_COMPLIANT") && config.contains(" COMPLIANT"));
        assert!(config.contains("3 NON_COMPLIANT"));
        let ta = render(&report, View::TrustedAdvisor);
        for c in ["green", "yellow", "red"] {
            assert!(ta.contains(c), "{c}");
        }
        assert!(ta.contains("1 green, 2 yellow, 1 red"));
    }
}
