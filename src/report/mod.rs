//! Renderings of an [`AuditReport`]: a terminal table, JSON, CSV, Markdown
//! and one self-contained HTML file, each in one of three views — rekey's
//! own findings (CIS 1.14), AWS Config `access-keys-rotated`, and Trusted
//! Advisor's "IAM Access Key Rotation". The views are derived in [`views`]
//! (pure); each format lives in its own file and only lays them out.
//!
//! OCSF (issue 6) renders rekey's findings as Detection Findings for
//! security data lakes, whatever the view.
//!
//! Human formats (table, Markdown, HTML) mask access key IDs
//! (DESIGN.md invariant 6); machine formats (JSON, CSV, OCSF) carry full IDs.
//! An `AuditReport` holds no secret, so no rendering can print one.

use std::path::Path;

use time::OffsetDateTime;

use crate::audit::{AccountResult, AuditReport, KeyRow};
use crate::inventory::Source;
use crate::model::mask_key_id;
use crate::names::named_enum;
use crate::policy::Finding;

mod csv;
mod html;
mod json;
mod markdown;
mod ocsf;
pub mod security;
mod table;
pub mod views;

#[cfg(test)]
pub(crate) mod fixture;

pub use views::{AgeBucket, ConfigEvaluation, TrustedAdvisorRow};

named_enum! {
    /// An output format.
    pub enum Format as "output format" {
        Table = "table",
        Json = "json",
        Csv = "csv",
        Markdown = "markdown" | "md",
        Html = "html",
        /// OCSF Detection Findings (issue 6).
        Ocsf = "ocsf",
    }
}

named_enum! {
    /// Which compliance view to render.
    #[derive(Default)]
    pub enum View as "view" {
        /// rekey's own verdicts (CIS 1.14 age, unused keys, two active keys,
        /// root keys), exemptions included.
        #[default]
        Keys = "keys",
        /// AWS Config managed rule `access-keys-rotated`: one evaluation per user.
        Config = "config",
        /// Trusted Advisor "IAM Access Key Rotation": one row per active key.
        TrustedAdvisor = "trusted-advisor",
    }
}

impl View {
    /// A human title for headings.
    pub fn title(self) -> &'static str {
        match self {
            View::Keys => "access keys (CIS 1.14)",
            View::Config => "AWS Config access-keys-rotated",
            View::TrustedAdvisor => "Trusted Advisor IAM Access Key Rotation",
        }
    }
}

/// Renders `report` in `view` as `format`. Text formats end with a newline.
pub fn render(report: &AuditReport, view: View, format: Format) -> String {
    match format {
        Format::Table => table::render(report, view),
        Format::Json => json::render(report, view),
        Format::Csv => csv::render(report, view),
        Format::Markdown => markdown::render(report, view),
        Format::Html => html::render(report, view),
        Format::Ocsf => ocsf::render(report),
    }
}

pub use table::Layout as TableLayout;
pub use table::text_table;

/// The table drawn for a terminal: `layout`'s width and colours.
pub fn render_table(report: &AuditReport, view: View, layout: TableLayout) -> String {
    table::render_with(report, view, layout)
}

/// The format an output file's extension asks for (`--output-file`):
/// `.json`, `.csv`, `.md`/`.markdown`, `.html`/`.htm`, `.txt` (table).
pub fn format_for_path(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "json" => Some(Format::Json),
        "csv" => Some(Format::Csv),
        "md" | "markdown" => Some(Format::Markdown),
        "html" | "htm" => Some(Format::Html),
        "txt" => Some(Format::Table),
        _ => None,
    }
}

// Helpers shared by the formats.

/// `YYYY-MM-DD`, or `-` when unknown.
fn date(t: Option<OffsetDateTime>) -> String {
    match t {
        Some(t) => {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        }
        None => "-".to_string(),
    }
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Report => "credential report",
        Source::Api => "IAM API",
    }
}

/// RFC 3339 for machine formats, empty when unknown.
fn rfc3339(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

/// A key ID for human output: masked, `(root)` for a root key, `-` when
/// unknown.
fn masked(id: Option<&str>, is_root: bool) -> String {
    match id {
        _ if is_root => "(root)".to_string(),
        Some(id) => mask_key_id(id),
        None => "-".to_string(),
    }
}

fn masked_row(row: &KeyRow) -> String {
    masked(row.access_key_id.as_deref(), row.is_root)
}

fn findings(list: &[Finding], sep: &str) -> String {
    list.iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(sep)
}

/// Findings plus, for an exempt key, why it is exempt — one human cell.
fn notes(row: &KeyRow) -> String {
    let found = findings(&row.findings, ", ");
    match (&row.exempt_reason, found.is_empty()) {
        (Some(why), true) => format!("exempt: {why}"),
        (Some(why), false) => format!("{found} (exempt: {why})"),
        (None, _) => found,
    }
}

fn opt_days(d: Option<i64>) -> String {
    d.map(|d| d.to_string()).unwrap_or_else(|| "-".to_string())
}

/// How an account is named in human output: `123456789012 (name)`, or how
/// it was reached when its ID never became known.
/// Columns of the accounts table (terminal and Markdown).
const ACCOUNT_COLUMNS: [&str; 9] = [
    "account",
    "name",
    "via",
    "status",
    "users",
    "keys",
    "non-compliant",
    "calls",
    "error",
];

/// An account's cells; each format words `status` and `error` its own way.
fn account_cells(a: &AccountResult, status: &str, error: String) -> Vec<String> {
    vec![
        a.account_id.clone().unwrap_or_else(|| "-".into()),
        a.name.clone().unwrap_or_default(),
        a.via.clone(),
        status.to_string(),
        a.users.to_string(),
        a.keys.to_string(),
        a.non_compliant_keys.to_string(),
        a.aws_calls.to_string(),
        error,
    ]
}

/// Human (masked) columns of the keys view: the table and Markdown show
/// the same ones.
const KEY_COLUMNS: [&str; 9] = [
    "account",
    "user",
    "access key",
    "status",
    "created",
    "age (days)",
    "last used",
    "verdict",
    "findings",
];

fn key_cells(k: &KeyRow) -> Vec<String> {
    vec![
        k.account_id.clone(),
        k.user_name.clone(),
        masked_row(k),
        k.status.as_str().to_string(),
        date(k.created),
        opt_days(k.age_days),
        date(k.last_used),
        k.verdict.as_str().to_string(),
        notes(k),
    ]
}

const CONFIG_COLUMNS: [&str; 5] = [
    "account",
    "user",
    "compliance",
    "max age (days)",
    "annotation",
];

fn config_cells(e: &ConfigEvaluation) -> Vec<String> {
    vec![
        e.account_id.clone(),
        e.user_name.clone(),
        e.compliance_type.to_string(),
        e.max_access_key_age.to_string(),
        e.annotation(true),
    ]
}

const ADVISOR_COLUMNS: [&str; 6] = [
    "account",
    "status",
    "IAM user",
    "access key",
    "key last rotated",
    "reason",
];

fn advisor_cells(r: &TrustedAdvisorRow) -> Vec<String> {
    vec![
        r.account_id.clone(),
        r.status.to_string(),
        r.iam_user.clone(),
        r.access_key
            .as_deref()
            .map_or_else(|| masked(None, false), mask_key_id),
        date(r.key_last_rotated),
        r.status.reason().to_string(),
    ]
}

fn account_label(a: &AccountResult) -> String {
    match (&a.account_id, &a.name) {
        (Some(id), Some(name)) => format!("{id} ({name})"),
        (Some(id), None) => id.clone(),
        (None, _) => a.via.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_views_parse_and_print_back() {
        for &f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
        }
        assert_eq!("md".parse::<Format>().unwrap(), Format::Markdown);
        assert_eq!(" JSON ".parse::<Format>().unwrap(), Format::Json);
        assert_eq!(
            "xml".parse::<Format>().unwrap_err().to_string(),
            "unknown output format `xml` (table, json, csv, markdown, html or ocsf)"
        );
        for &v in View::ALL {
            assert_eq!(v.as_str().parse::<View>().unwrap(), v);
        }
        assert_eq!(
            "ta".parse::<View>().unwrap_err().to_string(),
            "unknown view `ta` (keys, config or trusted-advisor)"
        );
        assert_eq!(View::default(), View::Keys);
    }

    #[test]
    fn extensions_choose_the_format() {
        let f = |p: &str| format_for_path(Path::new(p));
        assert_eq!(f("out/report.JSON"), Some(Format::Json));
        assert_eq!(f("a.csv"), Some(Format::Csv));
        assert_eq!(f("a.md"), Some(Format::Markdown));
        assert_eq!(f("a.htm"), Some(Format::Html));
        assert_eq!(f("a.html"), Some(Format::Html));
        assert_eq!(f("a.txt"), Some(Format::Table));
        assert_eq!(f("a.xlsx"), None);
        assert_eq!(f("noext"), None);
    }

    #[test]
    fn every_format_and_view_renders_with_a_final_newline() {
        let report = fixture::report();
        for f in [
            Format::Table,
            Format::Json,
            Format::Csv,
            Format::Markdown,
            Format::Html,
            Format::Ocsf,
        ] {
            for v in [View::Keys, View::Config, View::TrustedAdvisor] {
                let out = render(&report, v, f);
                assert!(out.ends_with('\n'), "{f} {v}");
            }
        }
    }

    #[test]
    fn dates_and_masks() {
        let t = time::macros::datetime!(2026-03-04 23:59 UTC);
        assert_eq!(date(Some(t)), "2026-03-04");
        assert_eq!(date(None), "-");
        assert_eq!(rfc3339(Some(t)), "2026-03-04T23:59:00Z");
        assert_eq!(masked(Some("AKIAIOSFODNN7EXAMPLE"), false), "AKIA…MPLE");
        assert_eq!(masked(None, true), "(root)");
    }
}
