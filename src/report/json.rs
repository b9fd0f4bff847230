//! JSON: the machine contract. Full key IDs, RFC 3339 times, pretty-printed.
//! The keys view is the [`AuditReport`] itself plus `"view": "keys"`; the
//! Config and Trusted Advisor views carry the same header and accounts with
//! their own rows and counts.

use serde::Serialize;
use time::OffsetDateTime;

use super::View;
use super::views::{
    AdvisorCounts, ConfigCounts, advisor_counts, config_counts, config_evaluations,
    trusted_advisor_rows,
};
use crate::audit::{AccountResult, AuditReport};
use crate::inventory::Source;
use crate::policy::{AdvisorStatus, ConfigCompliance};

/// Adds `"view"` in front of a serialized struct.
#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    view: &'static str,
    #[serde(flatten)]
    inner: &'a T,
}

#[derive(Serialize)]
struct Header<'a> {
    #[serde(with = "time::serde::rfc3339")]
    generated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    as_of: OffsetDateTime,
    source: Source,
    accounts: &'a [AccountResult],
}

#[derive(Serialize)]
struct Evaluation<'a> {
    account_id: &'a str,
    user_name: &'a str,
    user_arn: &'a str,
    compliance_type: ConfigCompliance,
    max_access_key_age: i64,
    annotation: String,
}

#[derive(Serialize)]
struct ConfigDoc<'a> {
    #[serde(flatten)]
    header: Header<'a>,
    evaluations: Vec<Evaluation<'a>>,
    summary: ConfigCounts,
}

#[derive(Serialize)]
struct AdvisorKey<'a> {
    account_id: &'a str,
    status: AdvisorStatus,
    iam_user: &'a str,
    access_key: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339::option")]
    key_last_rotated: Option<OffsetDateTime>,
    reason: &'static str,
}

#[derive(Serialize)]
struct AdvisorDoc<'a> {
    #[serde(flatten)]
    header: Header<'a>,
    keys: Vec<AdvisorKey<'a>>,
    summary: AdvisorCounts,
}

pub fn render(report: &AuditReport, view: View) -> String {
    let header = || Header {
        generated_at: report.generated_at,
        as_of: report.as_of,
        source: report.source,
        accounts: &report.accounts,
    };
    let text = match view {
        View::Keys => to_json(view, report),
        View::Config => {
            let evals = config_evaluations(report);
            let doc = ConfigDoc {
                header: header(),
                evaluations: evals
                    .iter()
                    .map(|e| Evaluation {
                        account_id: &e.account_id,
                        user_name: &e.user_name,
                        user_arn: &e.user_arn,
                        compliance_type: e.compliance_type,
                        max_access_key_age: e.max_access_key_age,
                        annotation: e.annotation(false),
                    })
                    .collect(),
                summary: config_counts(&evals),
            };
            to_json(view, &doc)
        }
        View::TrustedAdvisor => {
            let rows = trusted_advisor_rows(report);
            let doc = AdvisorDoc {
                header: header(),
                keys: rows
                    .iter()
                    .map(|r| AdvisorKey {
                        account_id: &r.account_id,
                        status: r.status,
                        iam_user: &r.iam_user,
                        access_key: r.access_key.as_deref(),
                        key_last_rotated: r.key_last_rotated,
                        reason: r.status.reason(),
                    })
                    .collect(),
                summary: advisor_counts(&rows),
            };
            to_json(view, &doc)
        }
    };
    text + "\n"
}

fn to_json<T: Serialize>(view: View, inner: &T) -> String {
    let doc = Tagged {
        view: view.as_str(),
        inner,
    };
    // Plain data with string keys: serialization cannot fail.
    serde_json::to_string_pretty(&doc).expect("audit reports serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, EVIL, FAILED_ACCOUNT, FAILURE, ids};
    use serde_json::Value;

    fn parse(view: View) -> Value {
        let text = render(&fixture::report(), view);
        assert!(text.ends_with("}\n"));
        serde_json::from_str(&text).unwrap()
    }

    fn failed_account(doc: &Value) -> &Value {
        let accounts = doc["accounts"].as_array().unwrap();
        assert_eq!(accounts.len(), 2);
        let a = accounts
            .iter()
            .find(|a| a["account_id"] == FAILED_ACCOUNT)
            .unwrap();
        assert_eq!(a["status"], "error");
        assert_eq!(a["error"], FAILURE);
        a
    }

    #[test]
    fn keys_view_is_the_report_with_full_ids() {
        let doc = parse(View::Keys);
        assert_eq!(doc["view"], "keys");
        assert_eq!(doc["generated_at"], "2026-11-26T12:05:00Z");
        assert_eq!(doc["as_of"], "2026-11-26T12:00:00Z");
        assert_eq!(doc["source"], "report");
        failed_account(&doc);
        let keys = doc["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 6);
        let alice = keys
            .iter()
            .find(|k| k["access_key_id"] == ids::ALICE)
            .unwrap();
        assert_eq!(alice["user_name"], "alice");
        assert_eq!(alice["status"], "Active");
        assert_eq!(alice["age_days"], 120);
        assert_eq!(alice["verdict"], "non_compliant");
        assert_eq!(alice["findings"], serde_json::json!(["too_old"]));
        assert!(
            alice["created"]
                .as_str()
                .unwrap()
                .starts_with("2026-07-29T")
        );
        let legacy = keys
            .iter()
            .find(|k| k["access_key_id"] == ids::LEGACY)
            .unwrap();
        assert_eq!(legacy["verdict"], "exempt");
        assert_eq!(legacy["exempt_reason"], "tag rekey:exempt=true");
        let root = keys
            .iter()
            .find(|k| k["user_name"] == crate::model::ROOT_USER)
            .unwrap();
        assert!(root["access_key_id"].is_null());
        assert_eq!(root["findings"], serde_json::json!(["too_old", "root_key"]));
        assert!(keys.iter().any(|k| k["user_name"] == EVIL));
        assert_eq!(doc["summary"]["non_compliant"], 3);
        assert_eq!(doc["summary"]["accounts_failed"], 1);
    }

    #[test]
    fn config_view_has_evaluations_and_counts() {
        let doc = parse(View::Config);
        assert_eq!(doc["view"], "config");
        assert_eq!(doc["as_of"], "2026-11-26T12:00:00Z");
        failed_account(&doc);
        let evals = doc["evaluations"].as_array().unwrap();
        assert_eq!(evals.len(), 5);
        let alice = evals.iter().find(|e| e["user_name"] == "alice").unwrap();
        assert_eq!(alice["account_id"], fixture::OK_ACCOUNT);
        assert_eq!(alice["user_arn"], "arn:aws:iam::111111111111:user/alice");
        assert_eq!(alice["compliance_type"], "NON_COMPLIANT");
        assert_eq!(alice["max_access_key_age"], 90);
        assert!(alice["annotation"].as_str().unwrap().contains(ids::ALICE));
        assert_eq!(
            doc["summary"],
            serde_json::json!({"compliant": 2, "non_compliant": 3})
        );
    }

    #[test]
    fn trusted_advisor_view_has_rows_and_colours() {
        let doc = parse(View::TrustedAdvisor);
        assert_eq!(doc["view"], "trusted-advisor");
        failed_account(&doc);
        let keys = doc["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 4);
        let legacy = keys
            .iter()
            .find(|k| k["access_key"] == ids::LEGACY)
            .unwrap();
        assert_eq!(legacy["status"], "red");
        assert_eq!(legacy["iam_user"], "svc-legacy");
        assert_eq!(
            legacy["reason"],
            "Key has not been rotated in the last 2 years"
        );
        assert!(legacy["key_last_rotated"].is_string());
        assert_eq!(
            doc["summary"],
            serde_json::json!({"green": 1, "yellow": 2, "red": 1})
        );
    }
}
