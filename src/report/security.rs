//! What a non-compliant key means to security tooling, worded once for the
//! two formats security teams collect: OCSF ([`super::ocsf`]) and ASFF
//! ([`crate::securityhub`]). Stable finding IDs, severity, title,
//! description and the CIS control behind each finding live here, so the
//! two can never disagree about the same key (issue 6).
//!
//! Both are machine formats: key IDs are full (DESIGN.md invariant 6). A
//! [`KeyRow`] holds no secret, so nothing here can word one.

use crate::audit::{AuditReport, KeyRow};
use crate::names::named_enum;
use crate::policy::{Finding, Verdict};

named_enum! {
    /// How urgent a finding is, as Security Hub labels it.
    pub enum Severity as "severity" {
        Low = "LOW",
        Medium = "MEDIUM",
        High = "HIGH",
        Critical = "CRITICAL",
    }
}

impl Severity {
    /// OCSF `severity_id` (1 Informational … 5 Critical).
    pub fn ocsf_id(self) -> u8 {
        match self {
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// OCSF `severity`, the caption of `severity_id`.
    pub fn ocsf_name(self) -> &'static str {
        match self {
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

/// Severities as Security Hub's own IAM controls rate the same checks:
/// IAM.3 (keys rotated within 90 days) and IAM.22 (credentials unused for
/// 45 days) are MEDIUM, IAM.4 (root user access key) is CRITICAL.
pub fn severity_of(finding: Finding) -> Severity {
    match finding {
        Finding::TooOld | Finding::Unused => Severity::Medium,
        Finding::TwoActiveKeys => Severity::Low,
        Finding::RootKey => Severity::Critical,
    }
}

/// The most urgent of a key's findings.
pub fn severity(row: &KeyRow) -> Severity {
    row.findings
        .iter()
        .map(|f| severity_of(*f))
        .max()
        .unwrap_or(Severity::Low)
}

/// The CIS AWS Foundations Benchmark recommendation a finding checks.
pub fn cis_control(finding: Finding) -> &'static str {
    match finding {
        Finding::RootKey => "CIS AWS Foundations Benchmark 1.4",
        Finding::Unused => "CIS AWS Foundations Benchmark 1.12",
        Finding::TwoActiveKeys => "CIS AWS Foundations Benchmark 1.13",
        Finding::TooOld => "CIS AWS Foundations Benchmark 1.14",
    }
}

fn phrase(finding: Finding) -> &'static str {
    match finding {
        Finding::TooOld => "not rotated within the maximum age",
        Finding::Unused => "unused",
        Finding::TwoActiveKeys => "one of two active keys",
        Finding::RootKey => "a root user access key",
    }
}

/// One line naming the key's problems; stable while they stay the same.
pub fn title(row: &KeyRow) -> String {
    let what: Vec<&str> = row.findings.iter().map(|f| phrase(*f)).collect();
    format!("IAM access key {}", what.join(", "))
}

/// The key, its owner and its numbers, in a sentence a reader acts on.
pub fn description(row: &KeyRow) -> String {
    let key = match (&row.access_key_id, row.is_root) {
        (_, true) => "A root user access key".to_string(),
        (Some(id), false) => format!("Access key {id} of IAM user {}", row.user_name),
        (None, false) => format!("An access key of IAM user {}", row.user_name),
    };
    let age = row
        .age_days
        .map(|d| format!(", {d} days old"))
        .unwrap_or_default();
    // `unused_days` of a never-used key counts from its creation: it is
    // no "last used" date (issue 15 #6).
    let used = match (row.last_used, row.unused_days) {
        (None, _) => ", never used".to_string(),
        (Some(_), Some(d)) => format!(", last used {d} days ago"),
        (Some(_), None) => String::new(),
    };
    let findings: Vec<String> = row
        .findings
        .iter()
        .map(|f| format!("{} ({})", f.as_str(), cis_control(*f)))
        .collect();
    format!(
        "{key} in account {} ({}{age}{used}): {}. {}",
        row.account_id,
        row.status.as_str(),
        findings.join(", "),
        remedy(row)
    )
}

/// What to do about the key. rekey refuses root credentials, and CIS 1.4
/// wants the root user to have no access key at all: delete it.
fn remedy(row: &KeyRow) -> &'static str {
    if row.is_root {
        "Delete it: the root user should have no access key (CIS AWS Foundations \
         Benchmark 1.4), and rekey does not rotate root credentials. Sign in as the \
         root user to delete it (Security credentials, Access keys)."
    } else {
        "Rotate it with rekey, or deactivate it if nothing uses it."
    }
}

/// The non-compliant keys of a report, each with its stable finding ID:
/// `rekey/<partition>/<account>/access-key/<key ID>`, or
/// `…/root-access-key/<n>` for a root key, whose ID AWS never lists (n
/// counts the account's root keys in the credential report's order). The
/// same key gets the same ID run after run, so Security Hub updates a
/// finding in place instead of adding a duplicate.
pub fn non_compliant(report: &AuditReport) -> Vec<(String, &KeyRow)> {
    finding_ids(&report.keys)
        .into_iter()
        .zip(&report.keys)
        .filter(|(_, row)| row.verdict == Verdict::NonCompliant)
        .collect()
}

/// A stable ID for every row (see [`non_compliant`]).
pub fn finding_ids(rows: &[KeyRow]) -> Vec<String> {
    let mut root_seen: std::collections::BTreeMap<&str, usize> = Default::default();
    rows.iter()
        .map(|row| {
            let base = format!("rekey/{}/{}", row.partition, row.account_id);
            match (&row.access_key_id, row.is_root) {
                (Some(id), false) => format!("{base}/access-key/{id}"),
                _ => {
                    let n = root_seen.entry(&row.account_id).or_default();
                    *n += 1;
                    format!("{base}/root-access-key/{n}")
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, ids};

    #[test]
    fn ids_are_stable_and_unique_and_root_keys_are_counted() {
        let report = fixture::report();
        let ids1 = finding_ids(&report.keys);
        assert_eq!(ids1, finding_ids(&report.keys));
        let unique: std::collections::BTreeSet<_> = ids1.iter().collect();
        assert_eq!(unique.len(), ids1.len());
        assert!(ids1.contains(&format!(
            "rekey/aws/{}/access-key/{}",
            fixture::OK_ACCOUNT,
            ids::ALICE
        )));
        assert!(ids1.contains(&format!(
            "rekey/aws/{}/root-access-key/1",
            fixture::OK_ACCOUNT
        )));
    }

    #[test]
    fn only_non_compliant_keys_are_findings() {
        let report = fixture::report();
        let found = non_compliant(&report);
        assert_eq!(found.len(), report.summary.non_compliant);
        assert!(
            found
                .iter()
                .all(|(_, r)| r.verdict == Verdict::NonCompliant)
        );
    }

    #[test]
    fn words_name_the_key_and_the_control() {
        let report = fixture::report();
        let alice = report
            .keys
            .iter()
            .find(|k| k.access_key_id.as_deref() == Some(ids::ALICE))
            .unwrap();
        assert_eq!(severity(alice), Severity::Medium);
        assert_eq!(
            title(alice),
            "IAM access key not rotated within the maximum age"
        );
        let d = description(alice);
        assert!(d.contains(ids::ALICE) && d.contains("alice"), "{d}");
        assert!(
            d.contains("too_old (CIS AWS Foundations Benchmark 1.14)"),
            "{d}"
        );
        assert!(d.contains("120 days old"), "{d}");
        let root = report.keys.iter().find(|k| k.is_root).unwrap();
        assert_eq!(severity(root), Severity::Critical);
        let d = description(root);
        assert!(d.starts_with("A root user access key"), "{d}");
        assert!(d.contains("Delete it") && !d.contains("Rotate it"), "{d}");
    }

    #[test]
    fn a_never_used_key_is_said_to_be_never_used() {
        let mut report = fixture::report();
        for row in &mut report.keys {
            row.last_used = None;
            row.unused_days = row.age_days;
        }
        for row in &report.keys {
            let d = description(row);
            assert!(d.contains(", never used)"), "{d}");
            assert!(!d.contains("last used"), "{d}");
        }
    }
}
