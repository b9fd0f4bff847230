//! The terminal rendering: an accounts table, the failed accounts with their
//! errors, the rows of the chosen view, and one summary line. Key IDs
//! masked, dates as `YYYY-MM-DD`. Drawn to fit a width when one is given
//! (the long text columns wrap inside their cells), and with verdicts in
//! colour when asked (issue 10 #10); plain and unbounded otherwise.

use comfy_table::{Cell, CellAlignment, Color, ContentArrangement, Table, presets};

use super::views::{advisor_counts, config_counts, config_evaluations, trusted_advisor_rows};
use super::{
    ACCOUNT_COLUMNS, ADVISOR_COLUMNS, CONFIG_COLUMNS, KEY_COLUMNS, View, account_cells,
    account_label, advisor_cells, config_cells, date, key_cells,
};
use crate::audit::{AccountStatus, AuditReport};
use crate::policy::Verdict;

/// How the table is drawn: what the terminal it goes to allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    /// Columns available; `None`: as wide as the content.
    pub width: Option<u16>,
    /// Colour the verdicts (a terminal, and `NO_COLOR` unset).
    pub colour: bool,
}

/// The narrowest width a table is squeezed to; below it, rows would be
/// one character per line.
const MIN_WIDTH: u16 = 40;

pub fn render(report: &AuditReport, view: View) -> String {
    render_with(report, view, Layout::default())
}

pub fn render_with(report: &AuditReport, view: View, layout: Layout) -> String {
    let layout = Layout {
        width: layout.width.map(|w| w.max(MIN_WIDTH)),
        ..layout
    };
    let title = format!(
        "rekey audit — {} (as of {}, generated {})",
        view.title(),
        date(Some(report.as_of)),
        super::rfc3339(Some(report.generated_at)),
    );
    let mut out = wrap(&title, layout.width);
    out.push('\n');
    out.push_str(&accounts(report, layout));
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
            out.push_str(&wrap(&plain(&line), layout.width));
        }
    }
    out.push('\n');
    let (rows, line) = match view {
        View::Keys => keys(report, layout),
        View::Config => config(report, layout),
        View::TrustedAdvisor => advisor(report, layout),
    };
    out.push_str(&rows);
    out.push_str("\n\n");
    out.push_str(&wrap(&(summary_line(report) + &line), layout.width));
    out
}

/// `text` as lines of at most `width` characters, broken between words
/// (a word longer than a line is cut), each ending with a newline;
/// continuation lines are indented by two spaces.
fn wrap(text: &str, width: Option<u16>) -> String {
    const INDENT: &str = "  ";
    let Some(width) = width.map(usize::from) else {
        return format!("{text}\n");
    };
    let (mut out, mut line) = (String::new(), String::new());
    // Characters on `line`, and whether a word is on it yet.
    let (mut used, mut empty) = (0, true);
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let sep = usize::from(!empty);
            if used + sep + word.len() <= width {
                if !empty {
                    line.push(' ');
                }
                line.extend(&word);
                (used, empty) = (used + sep + word.len(), false);
                break;
            }
            if empty || INDENT.len() + word.len() > width {
                // Too long for any line: fill this one, carry the rest.
                let room = width.saturating_sub(used + sep);
                if room > 0 {
                    if !empty {
                        line.push(' ');
                    }
                    line.extend(word.drain(..room));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
            (line, used, empty) = (INDENT.to_string(), INDENT.len(), true);
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// Adds a row with control characters replaced, so a name cannot send
/// escape sequences to the terminal; cell `colour.0` gets colour `colour.1`.
fn add(t: &mut Table, cells: Vec<String>, colour: Option<(usize, Color)>) {
    let row = cells.iter().enumerate().map(|(i, c)| {
        let cell = Cell::new(plain(c));
        match colour {
            Some((at, fg)) if at == i => cell.fg(fg),
            _ => cell,
        }
    });
    t.add_row(row.collect::<Vec<_>>());
}

fn plain(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn new_table(header: &[&str], layout: Layout) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    // The width and colour come from `layout`, never from whatever
    // terminal this process happens to have.
    t.force_no_tty();
    if layout.colour {
        t.enforce_styling();
    }
    if let Some(width) = layout.width {
        t.set_width(width);
        t.set_content_arrangement(ContentArrangement::Dynamic);
    }
    t.set_header(header.to_vec());
    t
}

/// Where `name` is among `columns` (they are constants of this crate).
fn column(columns: &[&str], name: &str) -> usize {
    columns
        .iter()
        .position(|c| *c == name)
        .expect("a known column")
}

/// The colour of a cell, when colours are on.
fn paint(layout: Layout, at: usize, colour: Option<Color>) -> Option<(usize, Color)> {
    layout.colour.then_some(())?;
    Some((at, colour?))
}

fn verdict_colour(v: Verdict) -> Color {
    match v {
        Verdict::Compliant => Color::Green,
        Verdict::NonCompliant => Color::Red,
        Verdict::Exempt => Color::Yellow,
    }
}

fn right_align(t: &mut Table, columns: &[usize]) {
    for &i in columns {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn accounts(report: &AuditReport, layout: Layout) -> String {
    let mut t = new_table(&ACCOUNT_COLUMNS, layout);
    let at = column(&ACCOUNT_COLUMNS, "status");
    for a in &report.accounts {
        let (status, error, colour) = match a.status {
            AccountStatus::Ok => ("ok", String::new(), None),
            // The full chain is listed below the table; keep the table narrow.
            AccountStatus::Error => (
                "ERROR",
                a.error_code.clone().unwrap_or_else(|| "see below".into()),
                Some(Color::Red),
            ),
        };
        add(
            &mut t,
            account_cells(a, status, error),
            paint(layout, at, colour),
        );
    }
    right_align(&mut t, &[4, 5, 6, 7]);
    t.to_string()
}

fn keys(report: &AuditReport, layout: Layout) -> (String, String) {
    if report.keys.is_empty() {
        return ("No access keys found.".into(), String::new());
    }
    let mut t = new_table(&KEY_COLUMNS, layout);
    let at = column(&KEY_COLUMNS, "verdict");
    for k in &report.keys {
        let colour = paint(layout, at, Some(verdict_colour(k.verdict)));
        add(&mut t, key_cells(k), colour);
    }
    right_align(&mut t, &[5]);
    (t.to_string(), String::new())
}

fn config(report: &AuditReport, layout: Layout) -> (String, String) {
    let evals = config_evaluations(report);
    let c = config_counts(&evals);
    let line = format!(
        "; Config access-keys-rotated: {} users COMPLIANT, {} NON_COMPLIANT",
        c.compliant, c.non_compliant
    );
    if evals.is_empty() {
        return ("No IAM user has an access key.".into(), line);
    }
    let mut t = new_table(&CONFIG_COLUMNS, layout);
    let at = column(&CONFIG_COLUMNS, "compliance");
    for e in &evals {
        let colour = match e.stale_keys.is_empty() {
            true => Color::Green,
            false => Color::Red,
        };
        add(&mut t, config_cells(e), paint(layout, at, Some(colour)));
    }
    right_align(&mut t, &[3]);
    (t.to_string(), line)
}

fn advisor(report: &AuditReport, layout: Layout) -> (String, String) {
    let rows = trusted_advisor_rows(report);
    let c = advisor_counts(&rows);
    let line = format!(
        "; Trusted Advisor: {} green, {} yellow, {} red",
        c.green, c.yellow, c.red
    );
    if rows.is_empty() {
        return ("No active IAM user access key.".into(), line);
    }
    let mut t = new_table(&ADVISOR_COLUMNS, layout);
    let at = column(&ADVISOR_COLUMNS, "status");
    for r in &rows {
        // The status word is Trusted Advisor's own colour name.
        let colour = match r.status {
            "green" => Some(Color::Green),
            "yellow" => Some(Color::Yellow),
            "red" => Some(Color::Red),
            _ => None,
        };
        add(&mut t, advisor_cells(r), paint(layout, at, colour));
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
    fn every_line_fits_the_width_and_colours_only_when_asked() {
        let report = fixture::report();
        for view in [View::Keys, View::Config, View::TrustedAdvisor] {
            for width in [60u16, 100] {
                let layout = Layout {
                    width: Some(width),
                    colour: false,
                };
                let out = render_with(&report, view, layout);
                for line in out.lines() {
                    let n = line.chars().count();
                    assert!(n <= usize::from(width), "{view} at {width}: {n}:\n{out}");
                }
                assert!(!out.contains('\x1b'), "{view}");
            }
            let coloured = render_with(
                &report,
                view,
                Layout {
                    width: Some(100),
                    colour: true,
                },
            );
            // Red (SGR 31) marks what needs doing in every view.
            assert!(
                coloured.contains("\x1b[38;5;9m") || coloured.contains("\x1b[31m"),
                "{view}: {coloured:?}"
            );
        }
    }

    #[test]
    fn wrap_breaks_between_words_and_cuts_only_long_ones() {
        assert_eq!(wrap("a b", None), "a b\n");
        assert_eq!(wrap("aaa bbb ccc", Some(7)), "aaa bbb\n  ccc\n");
        assert_eq!(wrap("abcdefghij", Some(4)), "abcd\n  ef\n  gh\n  ij\n");
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
