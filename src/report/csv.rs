//! CSV: one header, then one row per key (or evaluation, or Trusted Advisor
//! row) and one row per failed account, so a spreadsheet never hides an
//! account that could not be audited. Full key IDs; findings joined by `;`.
//! A cell that a spreadsheet would read as a formula is prefixed with `'`.

use super::views::{AccountGroup, by_account, config_evaluations, trusted_advisor_rows};
use super::{View, findings, rfc3339};
use crate::audit::{AccountResult, AccountStatus, AuditReport};

const ACCOUNT_COLUMNS: [&str; 5] = [
    "account_id",
    "account_name",
    "via",
    "account_status",
    "error",
];

const KEY_COLUMNS: [&str; 12] = [
    "user_name",
    "user_arn",
    "access_key_id",
    "status",
    "created",
    "age_days",
    "last_used",
    "last_used_service",
    "unused_days",
    "verdict",
    "findings",
    "exempt_reason",
];

const CONFIG_COLUMNS: [&str; 5] = [
    "user_name",
    "user_arn",
    "compliance_type",
    "max_access_key_age",
    "annotation",
];

const ADVISOR_COLUMNS: [&str; 5] = [
    "status",
    "iam_user",
    "access_key",
    "key_last_rotated",
    "reason",
];

pub fn render(report: &AuditReport, view: View) -> String {
    let mut out = Table::default();
    match view {
        View::Keys => {
            out.header(&KEY_COLUMNS);
            let groups = by_account(report, &report.keys, |k| &k.account_id);
            out.groups(&groups, |k| {
                vec![
                    k.user_name.clone(),
                    k.user_arn.clone(),
                    k.access_key_id.clone().unwrap_or_default(),
                    k.status.as_str().to_string(),
                    rfc3339(k.created),
                    num(k.age_days),
                    rfc3339(k.last_used),
                    k.last_used_service.clone().unwrap_or_default(),
                    num(k.unused_days),
                    k.verdict.as_str().to_string(),
                    findings(&k.findings, ";"),
                    k.exempt_reason.clone().unwrap_or_default(),
                ]
            });
        }
        View::Config => {
            out.header(&CONFIG_COLUMNS);
            let evals = config_evaluations(report);
            let groups = by_account(report, &evals, |e| &e.account_id);
            out.groups(&groups, |e| {
                vec![
                    e.user_name.clone(),
                    e.user_arn.clone(),
                    e.compliance_type.to_string(),
                    e.max_access_key_age.to_string(),
                    e.annotation(false),
                ]
            });
        }
        View::TrustedAdvisor => {
            out.header(&ADVISOR_COLUMNS);
            let rows = trusted_advisor_rows(report);
            let groups = by_account(report, &rows, |r| &r.account_id);
            out.groups(&groups, |r| {
                vec![
                    r.status.to_string(),
                    r.iam_user.clone(),
                    r.access_key.clone().unwrap_or_default(),
                    rfc3339(r.key_last_rotated),
                    r.status.reason().to_string(),
                ]
            });
        }
    }
    out.finish()
}

fn num(n: Option<i64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

/// Rows as plain strings; the `csv` crate does the quoting at the end.
#[derive(Default)]
struct Table {
    width: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn header(&mut self, view_columns: &[&str]) {
        let row: Vec<String> = ACCOUNT_COLUMNS
            .iter()
            .chain(view_columns)
            .map(|c| c.to_string())
            .collect();
        self.width = row.len();
        self.rows.push(row);
    }

    fn groups<T>(&mut self, groups: &[AccountGroup<'_, T>], cells: impl Fn(&T) -> Vec<String>) {
        for g in groups {
            if let Some(a) = g.account.filter(|a| a.status == AccountStatus::Error) {
                let mut row = account_cells(Some(a), a.account_id.as_deref().unwrap_or_default());
                row.resize(self.width, String::new());
                self.rows.push(row);
            }
            for r in &g.rows {
                let mut row = account_cells(g.account, "");
                row.extend(cells(r));
                self.rows.push(row);
            }
        }
    }

    fn finish(self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in &self.rows {
            // Writing to memory cannot fail.
            w.write_record(row.iter().map(|c| inert(c).into_owned()))
                .expect("CSV to memory");
        }
        let bytes = w.into_inner().expect("CSV to memory");
        String::from_utf8(bytes).expect("CSV of UTF-8 strings is UTF-8")
    }
}

/// A cell a spreadsheet will not run: IAM user names may begin with `=`,
/// `+`, `-` or `@`, and Organizations account names with anything
/// printable, so a cell starting with one of those (or with a tab or a
/// carriage return) gets a leading `'`, as OWASP advises against CSV
/// injection (issue 10 #7). The header and rekey's own words never start so.
fn inert(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The account columns of a row; `fallback_id` names a row's account when
/// the report does not list it.
fn account_cells(a: Option<&AccountResult>, fallback_id: &str) -> Vec<String> {
    match a {
        Some(a) => vec![
            a.account_id
                .clone()
                .unwrap_or_else(|| fallback_id.to_string()),
            a.name.clone().unwrap_or_default(),
            a.via.clone(),
            match a.status {
                AccountStatus::Ok => "ok",
                AccountStatus::Error => "error",
            }
            .to_string(),
            a.error.clone().unwrap_or_default(),
        ],
        None => vec![
            fallback_id.to_string(),
            String::new(),
            String::new(),
            "ok".into(),
            String::new(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, EVIL, FAILED_ACCOUNT, FAILURE, ids};

    fn parse(view: View) -> (Vec<String>, Vec<csv::StringRecord>) {
        let text = render(&fixture::report(), view);
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header = r.headers().unwrap().iter().map(str::to_string).collect();
        let rows = r.records().collect::<Result<Vec<_>, _>>().unwrap();
        (header, rows)
    }

    fn col(header: &[String], name: &str) -> usize {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }

    fn check_failed_account(header: &[String], rows: &[csv::StringRecord]) {
        let failed: Vec<_> = rows
            .iter()
            .filter(|r| &r[col(header, "account_status")] == "error")
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(&failed[0][col(header, "account_id")], FAILED_ACCOUNT);
        assert_eq!(&failed[0][col(header, "error")], FAILURE);
    }

    #[test]
    fn keys_view_has_a_row_per_key_and_per_failed_account() {
        let (h, rows) = parse(View::Keys);
        let report = fixture::report();
        assert_eq!(rows.len(), report.keys.len() + 1);
        check_failed_account(&h, &rows);
        let ids_in: Vec<&str> = rows.iter().map(|r| &r[col(&h, "access_key_id")]).collect();
        for id in ids::ALL {
            assert!(ids_in.contains(&id), "{id}");
        }
        let root = rows
            .iter()
            .find(|r| &r[col(&h, "user_name")] == crate::model::ROOT_USER)
            .unwrap();
        assert_eq!(&root[col(&h, "findings")], "too_old;root_key");
        assert_eq!(&root[col(&h, "account_status")], "ok");
        let evil = rows
            .iter()
            .find(|r| &r[col(&h, "user_name")] == EVIL)
            .unwrap();
        assert_eq!(&evil[col(&h, "verdict")], "non_compliant");
        let legacy = rows
            .iter()
            .find(|r| &r[col(&h, "access_key_id")] == ids::LEGACY)
            .unwrap();
        assert_eq!(&legacy[col(&h, "exempt_reason")], "tag rekey:exempt=true");
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"] {
            assert_eq!(inert(bad), format!("'{bad}"));
        }
        for fine in ["alice", "svc=1", "", "2026-01-01T00:00:00Z", "'quoted"] {
            assert_eq!(inert(fine), fine);
        }
    }

    #[test]
    fn config_view_has_a_row_per_evaluation() {
        let (h, rows) = parse(View::Config);
        assert_eq!(rows.len(), 5 + 1);
        check_failed_account(&h, &rows);
        let kinds: Vec<&str> = rows
            .iter()
            .map(|r| &r[col(&h, "compliance_type")])
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "NON_COMPLIANT").count(), 3);
        assert_eq!(kinds.iter().filter(|k| **k == "COMPLIANT").count(), 2);
        assert!(
            rows.iter()
                .any(|r| r[col(&h, "annotation")].contains(ids::ALICE))
        );
    }

    #[test]
    fn trusted_advisor_view_has_a_row_per_active_key() {
        let (h, rows) = parse(View::TrustedAdvisor);
        assert_eq!(rows.len(), 4 + 1);
        check_failed_account(&h, &rows);
        let colours: Vec<&str> = rows.iter().map(|r| &r[col(&h, "status")]).collect();
        for c in ["green", "yellow", "red"] {
            assert!(colours.contains(&c), "{c}");
        }
    }
}
