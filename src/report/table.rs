//! The terminal rendering: an accounts table, the failed accounts with their
//! errors, the rows of the chosen view, and one summary line. Key IDs
//! masked, dates as `YYYY-MM-DD`. Drawn to fit a width when one is given
//! (the long text columns wrap inside their cells), and with verdicts in
//! colour when asked (issue 10 #10); plain and unbounded otherwise.

use comfy_table::{
    Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table, Width, presets,
};

use super::views::{advisor_counts, config_counts, config_evaluations, trusted_advisor_rows};
use super::{
    ACCOUNT_COLUMNS, ADVISOR_COLUMNS, CONFIG_COLUMNS, KEY_COLUMNS, View, account_cells,
    account_label, advisor_cells, config_cells, date, key_cells,
};
use crate::audit::{AccountStatus, AuditReport};
use crate::policy::{AdvisorStatus, Verdict};

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
    let unsent: Vec<_> = report
        .accounts
        .iter()
        .filter_map(|a| Some((a, a.securityhub_error.as_deref()?)))
        .collect();
    if !unsent.is_empty() {
        out.push_str("\nSecurity Hub imports failed (the accounts were audited):\n");
        for (a, error) in unsent {
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

/// Any table of text, drawn as the audit's are: fitted to `layout`'s width,
/// the columns named in `whole` (in order of importance) kept as wide as
/// their widest cell while it allows, the others wrapping inside their
/// cells; control characters replaced. For tables outside the audit
/// (`rekey history`, issue 15).
pub fn text_table(
    header: &[&str],
    rows: Vec<Vec<String>>,
    whole: &[&str],
    layout: Layout,
) -> String {
    let layout = Layout {
        width: layout.width.map(|w| w.max(MIN_WIDTH)),
        colour: false,
    };
    let grid = Grid {
        header,
        rows: rows.into_iter().map(|cells| (cells, None)).collect(),
        colour_at: header[0],
        whole,
        right: &[],
    };
    draw(grid, layout)
}

/// One row: its cells, and the colour of the view's verdict cell.
type Row = (Vec<String>, Option<Color>);

/// What a table shows and how. The columns in `whole` (IDs, dates,
/// verdicts), in order of importance, are kept as wide as their widest cell
/// while the width allows; the others are long text that wraps inside its
/// cells.
struct Grid<'a> {
    header: &'a [&'a str],
    rows: Vec<Row>,
    /// The column that `Row`'s colour applies to.
    colour_at: &'a str,
    whole: &'a [&'a str],
    right: &'a [&'a str],
}

/// The room left for a column that wraps, at the least.
const MIN_WRAP: usize = 8;

fn draw(grid: Grid<'_>, layout: Layout) -> String {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    // The width and colour come from `layout`, never from whatever
    // terminal this process happens to have.
    t.force_no_tty();
    if layout.colour {
        t.enforce_styling();
    }
    t.set_header(grid.header.to_vec());
    let colour_at = column(grid.header, grid.colour_at);
    // Control characters replaced, so a name cannot send escape
    // sequences to the terminal.
    let rows: Vec<Vec<String>> = grid
        .rows
        .iter()
        .map(|(cells, _)| cells.iter().map(|c| plain(c)).collect())
        .collect();
    for (cells, (_, colour)) in rows.iter().zip(&grid.rows) {
        let row = cells.iter().enumerate().map(|(i, c)| match colour {
            Some(fg) if layout.colour && i == colour_at => Cell::new(c).fg(*fg),
            _ => Cell::new(c),
        });
        t.add_row(row.collect::<Vec<_>>());
    }
    for name in grid.right {
        if let Some(c) = t.column_mut(column(grid.header, name)) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    if let Some(width) = layout.width {
        t.set_width(width);
        t.set_content_arrangement(ContentArrangement::Dynamic);
        keep_whole(&mut t, &grid, &rows, usize::from(width));
    }
    t.to_string()
}

/// Keeps the columns of `grid.whole`, most important first, as wide as
/// their widest cell (a header may wrap) while every other column keeps
/// [`MIN_WRAP`] characters; the rest share what is left.
fn keep_whole(t: &mut Table, grid: &Grid<'_>, rows: &[Vec<String>], width: usize) {
    // A header wraps between its words, never inside one.
    let widest = |i: usize| {
        let header = grid.header[i].split(' ').map(|w| w.chars().count());
        let cells = rows
            .iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()));
        header.chain(cells).max().unwrap_or(0).max(1)
    };
    // Each column has a border and a space on each side; one more border.
    let frame = 3 * grid.header.len() + 1;
    let wrapping = grid.header.len() - grid.whole.len();
    let mut left = width.saturating_sub(frame + MIN_WRAP * wrapping);
    for name in grid.whole {
        let i = column(grid.header, name);
        let w = widest(i);
        if w > left {
            left = left.saturating_sub(MIN_WRAP);
            continue;
        }
        left -= w;
        if let (Some(c), Ok(w)) = (t.column_mut(i), u16::try_from(w + 2)) {
            c.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(w)));
        }
    }
}

fn plain(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Where `name` is among `columns` (they are constants of this crate).
fn column(columns: &[&str], name: &str) -> usize {
    columns
        .iter()
        .position(|c| *c == name)
        .expect("a known column")
}

fn verdict_colour(v: Verdict) -> Color {
    match v {
        Verdict::Compliant => Color::Green,
        Verdict::NonCompliant => Color::Red,
        Verdict::Exempt => Color::Yellow,
    }
}

fn accounts(report: &AuditReport, layout: Layout) -> String {
    let rows = report
        .accounts
        .iter()
        .map(|a| match a.status {
            AccountStatus::Ok => (account_cells(a, "ok", String::new()), None),
            // The full chain is listed below the table; keep the table narrow.
            AccountStatus::Error => {
                let code = a.error_code.clone().unwrap_or_else(|| "see below".into());
                (account_cells(a, "ERROR", code), Some(Color::Red))
            }
        })
        .collect();
    let grid = Grid {
        header: &ACCOUNT_COLUMNS,
        rows,
        colour_at: "status",
        whole: &[
            "account",
            "status",
            "users",
            "keys",
            "non-compliant",
            "calls",
        ],
        right: &["users", "keys", "non-compliant", "calls"],
    };
    draw(grid, layout)
}

fn keys(report: &AuditReport, layout: Layout) -> (String, String) {
    if report.keys.is_empty() {
        return ("No access keys found.".into(), String::new());
    }
    let rows = report
        .keys
        .iter()
        .map(|k| (key_cells(k), Some(verdict_colour(k.verdict))))
        .collect();
    let grid = Grid {
        header: &KEY_COLUMNS,
        rows,
        colour_at: "verdict",
        whole: &[
            "verdict",
            "access key",
            "status",
            "age (days)",
            "created",
            "account",
            "last used",
        ],
        right: &["age (days)"],
    };
    (draw(grid, layout), String::new())
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
    let rows = evals
        .iter()
        .map(|e| {
            let colour = match e.stale_keys.is_empty() {
                true => Color::Green,
                false => Color::Red,
            };
            (config_cells(e), Some(colour))
        })
        .collect();
    let grid = Grid {
        header: &CONFIG_COLUMNS,
        rows,
        colour_at: "compliance",
        whole: &["compliance", "account", "max age (days)"],
        right: &["max age (days)"],
    };
    (draw(grid, layout), line)
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
    let rows = rows
        .iter()
        .map(|r| {
            // The status word is Trusted Advisor's own colour name.
            let colour = match r.status {
                AdvisorStatus::Green => Color::Green,
                AdvisorStatus::Yellow => Color::Yellow,
                AdvisorStatus::Red => Color::Red,
            };
            (advisor_cells(r), Some(colour))
        })
        .collect();
    let grid = Grid {
        header: &ADVISOR_COLUMNS,
        rows,
        colour_at: "status",
        whole: &["status", "access key", "key last rotated", "account"],
        right: &[],
    };
    (draw(grid, layout), line)
}

fn summary_line(report: &AuditReport) -> String {
    let s = &report.summary;
    let unsent = match s.securityhub_failed {
        0 => String::new(),
        1 => "; 1 Security Hub import failed".to_string(),
        n => format!("; {n} Security Hub imports failed"),
    };
    format!(
        "{} accounts ({} ok, {} failed), {} keys ({} active): {} compliant, {} non-compliant, {} exempt; {} AWS calls{unsent}",
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
    fn a_text_table_fits_the_width_and_keeps_whole_columns_whole() {
        let long = "could not write ssm:/ci/svc: AccessDeniedException: not authorized to perform ssm:PutParameter on this resource";
        let rows = vec![vec![
            "12".to_string(),
            "2026-11-26T12:00:00Z".to_string(),
            long.to_string(),
        ]];
        let header = ["#", "started", "error"];
        let out = text_table(&header, rows.clone(), &["#", "started"], Layout::default());
        assert!(out.contains(long), "unbounded without a width:\n{out}");
        let out = text_table(
            &header,
            rows,
            &["#", "started"],
            Layout {
                width: Some(50),
                colour: true,
            },
        );
        for line in out.lines() {
            assert!(line.chars().count() <= 50, "{out}");
        }
        assert!(out.contains("2026-11-26T12:00:00Z"), "kept whole:\n{out}");
        assert!(out.contains("could not write"), "{out}");
        assert!(!out.contains('\x1b'), "no colours in a text table");
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
