//! Pure derivations from an [`AuditReport`]: the AWS Config and Trusted
//! Advisor views, the key-age histogram and the grouping of rows by account.
//! Compliance itself is decided by [`crate::policy`]; this file only
//! regroups rows and rebuilds the model values the policy functions take.

use std::collections::HashMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::{AccountResult, AccountStatus, AuditReport, KeyRow};
use crate::model::{Key, KeyStatus, mask_key_id};
use crate::policy::{
    AdvisorStatus, ConfigCompliance, DEFAULT_MAX_AGE_DAYS, Verdict, config_compliance,
    config_stale_keys, days_between, trusted_advisor_status,
};

/// One AWS Config `access-keys-rotated` evaluation: an IAM user with keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEvaluation {
    pub account_id: String,
    pub partition: String,
    pub user_name: String,
    pub user_arn: String,
    pub compliance_type: ConfigCompliance,
    /// The rule's `maxAccessKeyAge`: the account's `max_age_days`.
    pub max_access_key_age: i64,
    pub active_keys: usize,
    /// Active keys older than `max_access_key_age`: full ID and age in days,
    /// oldest first.
    pub stale_keys: Vec<(Option<String>, i64)>,
}

impl ConfigEvaluation {
    /// Why the user is (non-)compliant. `mask` hides key IDs (human output).
    pub fn annotation(&self, mask: bool) -> String {
        let max = self.max_access_key_age;
        if self.stale_keys.is_empty() {
            return if self.active_keys == 0 {
                format!("No active access key (maxAccessKeyAge {max})")
            } else {
                format!("No active access key is older than {max} days (maxAccessKeyAge {max})")
            };
        }
        let parts: Vec<String> = self
            .stale_keys
            .iter()
            .map(|(id, age)| {
                let id = match id {
                    Some(id) if mask => mask_key_id(id),
                    Some(id) => id.clone(),
                    None => "(unknown ID)".to_string(),
                };
                format!("access key {id} is {age} days old")
            })
            .collect();
        let text = parts.join("; ");
        let mut chars = text.chars();
        let first = chars
            .next()
            .map(|c| c.to_ascii_uppercase())
            .unwrap_or_default();
        format!("{first}{} (maxAccessKeyAge {max})", chars.as_str())
    }
}

/// One row of Trusted Advisor's "IAM Access Key Rotation" check: an active
/// key of an IAM user (root excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedAdvisorRow {
    pub account_id: String,
    pub partition: String,
    pub status: AdvisorStatus,
    pub iam_user: String,
    pub user_arn: String,
    /// Full ID (mask it for human output).
    pub access_key: Option<String>,
    /// CreateDate (DESIGN.md invariant 6), which the check calls "last rotated".
    pub key_last_rotated: Option<OffsetDateTime>,
    pub age_days: Option<i64>,
}

/// Counts of the Config view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConfigCounts {
    pub compliant: usize,
    pub non_compliant: usize,
}

/// Counts of the Trusted Advisor view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AdvisorCounts {
    pub green: usize,
    pub yellow: usize,
    pub red: usize,
}

fn key_of(row: &KeyRow) -> Key {
    Key {
        access_key_id: row.access_key_id.clone(),
        status: row.status,
        created: row.created,
        last_used: None,
    }
}

/// The `max_age_days` the audit used for an account.
fn max_age_of(accounts: &[AccountResult], account_id: &str) -> i64 {
    accounts
        .iter()
        .find(|a| a.status == AccountStatus::Ok && a.account_id.as_deref() == Some(account_id))
        .map_or(DEFAULT_MAX_AGE_DAYS, |a| a.max_age_days)
}

/// The Config view: one evaluation per (account, IAM user) with keys, in
/// the order users first appear. Root is not an IAM user to Config.
pub fn config_evaluations(report: &AuditReport) -> Vec<ConfigEvaluation> {
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut groups: Vec<(&KeyRow, Vec<Key>)> = Vec::new();
    for row in report.keys.iter().filter(|r| !r.is_root) {
        let at = *index
            .entry((&row.account_id, &row.user_name))
            .or_insert_with(|| {
                groups.push((row, Vec::new()));
                groups.len() - 1
            });
        groups[at].1.push(key_of(row));
    }
    groups
        .into_iter()
        .map(|(first, keys)| {
            let max = max_age_of(&report.accounts, &first.account_id);
            let mut stale_keys: Vec<(Option<String>, i64)> =
                config_stale_keys(&keys, max, report.as_of)
                    .into_iter()
                    .map(|(k, age)| (k.access_key_id.clone(), age))
                    .collect();
            stale_keys.sort_by_key(|k| std::cmp::Reverse(k.1));
            let compliance_type = config_compliance(&keys, max, report.as_of);
            ConfigEvaluation {
                account_id: first.account_id.clone(),
                partition: first.partition.clone(),
                user_name: first.user_name.clone(),
                user_arn: first.user_arn.clone(),
                compliance_type,
                max_access_key_age: max,
                active_keys: keys
                    .iter()
                    .filter(|k| k.status == KeyStatus::Active)
                    .count(),
                stale_keys,
            }
        })
        .collect()
}

pub fn config_counts(evaluations: &[ConfigEvaluation]) -> ConfigCounts {
    let non_compliant = evaluations
        .iter()
        .filter(|e| e.compliance_type == ConfigCompliance::NonCompliant)
        .count();
    ConfigCounts {
        compliant: evaluations.len() - non_compliant,
        non_compliant,
    }
}

/// The Trusted Advisor view: every active non-root key whose creation date
/// is known (the check cannot judge a key without one), in report order.
pub fn trusted_advisor_rows(report: &AuditReport) -> Vec<TrustedAdvisorRow> {
    report
        .keys
        .iter()
        .filter(|r| !r.is_root)
        .filter_map(|r| {
            let status = trusted_advisor_status(&key_of(r), report.as_of)?;
            Some(TrustedAdvisorRow {
                account_id: r.account_id.clone(),
                partition: r.partition.clone(),
                status,
                iam_user: r.user_name.clone(),
                user_arn: r.user_arn.clone(),
                access_key: r.access_key_id.clone(),
                key_last_rotated: r.created,
                age_days: r.created.map(|c| days_between(c, report.as_of)),
            })
        })
        .collect()
}

pub fn advisor_counts(rows: &[TrustedAdvisorRow]) -> AdvisorCounts {
    let mut c = AdvisorCounts::default();
    for r in rows {
        match r.status {
            AdvisorStatus::Red => c.red += 1,
            AdvisorStatus::Yellow => c.yellow += 1,
            AdvisorStatus::Green => c.green += 1,
        }
    }
    c
}

/// The exit code of an audit shown in `view`: 2 when an account could not
/// be audited or its findings could not be sent to Security Hub, else 1 when the view shows a finding (a non-compliant key, a
/// NON_COMPLIANT user, a yellow or red key), else 0. Each view has its own
/// findings: a key exempt under rekey's policy is still NON_COMPLIANT to AWS
/// Config, which knows no exemptions (issue 10 #3).
pub fn exit_code(report: &AuditReport, view: super::View) -> u8 {
    use super::View;
    if report.summary.accounts_failed > 0 || report.summary.securityhub_failed > 0 {
        return 2;
    }
    let findings = match view {
        View::Keys => report.summary.non_compliant > 0,
        View::Config => config_counts(&config_evaluations(report)).non_compliant > 0,
        View::TrustedAdvisor => {
            let c = advisor_counts(&trusted_advisor_rows(report));
            c.yellow + c.red > 0
        }
    };
    u8::from(findings)
}

/// One bar of the key-age chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeBucket {
    pub label: &'static str,
    pub compliant: usize,
    pub non_compliant: usize,
    pub exempt: usize,
}

impl AgeBucket {
    pub fn total(&self) -> usize {
        self.compliant + self.non_compliant + self.exempt
    }
}

/// Upper bounds (inclusive, days) of the chart's buckets; the last is open.
const BUCKETS: [(&str, i64); 6] = [
    ("0–30", 30),
    ("31–90", 90),
    ("91–180", 180),
    ("181–365", 365),
    ("366–730", 730),
    (">730", i64::MAX),
];

/// Keys by age bucket and verdict, and how many keys have no known age.
pub fn age_buckets(keys: &[KeyRow]) -> (Vec<AgeBucket>, usize) {
    let mut buckets: Vec<AgeBucket> = BUCKETS
        .iter()
        .map(|&(label, _)| AgeBucket {
            label,
            compliant: 0,
            non_compliant: 0,
            exempt: 0,
        })
        .collect();
    let mut unknown = 0;
    for k in keys {
        let Some(age) = k.age_days else {
            unknown += 1;
            continue;
        };
        let i = BUCKETS
            .iter()
            .position(|&(_, max)| age <= max)
            .unwrap_or(BUCKETS.len() - 1);
        let b = &mut buckets[i];
        match k.verdict {
            Verdict::Compliant => b.compliant += 1,
            Verdict::NonCompliant => b.non_compliant += 1,
            Verdict::Exempt => b.exempt += 1,
        }
    }
    (buckets, unknown)
}

/// Rows of one account, for per-account sections.
pub struct AccountGroup<'a, T> {
    /// `None` for rows whose account is not in `report.accounts`.
    pub account: Option<&'a AccountResult>,
    pub rows: Vec<&'a T>,
}

/// Groups rows under the accounts of the report, in report order. An
/// account reached twice (two profiles) gets its rows once, under its first
/// entry; rows of no listed account come last, in a group of their own.
pub fn by_account<'a, T>(
    report: &'a AuditReport,
    rows: &'a [T],
    account_of: impl Fn(&T) -> &str,
) -> Vec<AccountGroup<'a, T>> {
    let mut groups = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for a in &report.accounts {
        let mine = match a.account_id.as_deref() {
            Some(id) if !seen.contains(&id) => {
                seen.push(id);
                rows.iter().filter(|r| account_of(r) == id).collect()
            }
            _ => Vec::new(),
        };
        groups.push(AccountGroup {
            account: Some(a),
            rows: mine,
        });
    }
    let orphans: Vec<&T> = rows
        .iter()
        .filter(|r| !seen.contains(&account_of(r)))
        .collect();
    if !orphans.is_empty() {
        groups.push(AccountGroup {
            account: None,
            rows: orphans,
        });
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, EVIL, ids};

    #[test]
    fn each_view_has_its_own_exit_code() {
        use crate::report::View;
        let failed = fixture::report();
        for view in [View::Keys, View::Config, View::TrustedAdvisor] {
            assert_eq!(exit_code(&failed, view), 2, "{view}");
        }
        let mut exempt_only = failed.clone();
        exempt_only.summary.accounts_failed = 0;
        exempt_only.keys.retain(|k| k.verdict == Verdict::Exempt);
        exempt_only.summary.non_compliant = 0;
        assert_eq!(exit_code(&exempt_only, View::Keys), 0);
        // The exempt key is over its account's max age: Config, which knows
        // no exemptions, finds it.
        assert_eq!(exit_code(&exempt_only, View::Config), 1);
        assert_eq!(exit_code(&exempt_only, View::TrustedAdvisor), 1);
    }

    #[test]
    fn config_view_is_per_user_ignores_inactive_and_exemptions() {
        let report = fixture::report();
        let evals = config_evaluations(&report);
        let by_user = |name: &str| evals.iter().find(|e| e.user_name == name).unwrap();
        assert!(evals.iter().all(|e| e.user_name != crate::model::ROOT_USER));
        assert_eq!(evals.len(), 5);
        assert_eq!(by_user("alice").compliance_type.as_str(), "NON_COMPLIANT");
        assert_eq!(by_user("bob").compliance_type.as_str(), "COMPLIANT");
        // Only an inactive 400-day key: compliant to Config.
        assert_eq!(by_user("carol").compliance_type.as_str(), "COMPLIANT");
        // Exempt for rekey, not for the managed rule.
        assert_eq!(
            by_user("svc-legacy").compliance_type.as_str(),
            "NON_COMPLIANT"
        );
        assert_eq!(by_user(EVIL).compliance_type.as_str(), "NON_COMPLIANT");
        assert_eq!(
            by_user("alice").annotation(false),
            format!(
                "Access key {} is 120 days old (maxAccessKeyAge 90)",
                ids::ALICE
            )
        );
        assert!(
            by_user("alice")
                .annotation(true)
                .starts_with("Access key AKIA…")
        );
        assert_eq!(
            by_user("carol").annotation(false),
            "No active access key (maxAccessKeyAge 90)"
        );
        assert_eq!(
            config_counts(&evals),
            ConfigCounts {
                compliant: 2,
                non_compliant: 3
            }
        );
    }

    #[test]
    fn trusted_advisor_view_has_active_non_root_keys_only() {
        let report = fixture::report();
        let rows = trusted_advisor_rows(&report);
        let status = |id: &str| {
            rows.iter()
                .find(|r| r.access_key.as_deref() == Some(id))
                .map(|r| r.status.as_str())
        };
        assert_eq!(status(ids::ALICE), Some("yellow"));
        assert_eq!(status(ids::BOB), Some("green"));
        assert_eq!(status(ids::CAROL), None);
        assert_eq!(status(ids::LEGACY), Some("red"));
        assert!(rows.iter().all(|r| r.iam_user != crate::model::ROOT_USER));
        assert_eq!(
            advisor_counts(&rows),
            AdvisorCounts {
                green: 1,
                yellow: 2,
                red: 1
            }
        );
    }

    #[test]
    fn ages_fall_in_inclusive_buckets() {
        let report = fixture::report();
        let (buckets, unknown) = age_buckets(&report.keys);
        assert_eq!(unknown, 0);
        let total: usize = buckets.iter().map(AgeBucket::total).sum();
        assert_eq!(total, report.keys.len());
        assert_eq!(buckets[0].compliant, 1); // bob, 10 days
        assert_eq!(buckets[2].non_compliant, 2); // alice 120, evil 100
        assert_eq!(buckets[5].exempt, 1); // svc-legacy, 800
    }

    #[test]
    fn rows_group_under_their_account_once() {
        let mut report = fixture::report();
        let mut again = report.accounts[0].clone();
        again.via = "profile other".into();
        report.accounts.push(again);
        let groups = by_account(&report, &report.keys, |k| &k.account_id);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].rows.len(), report.keys.len());
        assert!(groups[1].rows.is_empty() && groups[2].rows.is_empty());
    }
}
