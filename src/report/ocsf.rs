//! OCSF: one Detection Finding (class 2004, OCSF 1.3.0, cloud profile) per
//! non-compliant key, as a JSON array — the shape security data lakes
//! (Amazon Security Lake, Prowler's `json-ocsf`) ingest (issue 6).
//!
//! rekey's own findings only (the keys view): exempt and compliant keys are
//! not findings. A failed account has no keys to report; it shows in the
//! exit code. Full key IDs, as in every machine format.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::security::{self, non_compliant};
use crate::audit::{AuditReport, KeyRow};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";
const CLASS_UID: u32 = 2004;
const CATEGORY_UID: u32 = 2;
/// activity_id 1: "A finding was created".
const ACTIVITY_CREATE: u32 = 1;
/// account.type_id 10: AWS Account.
const AWS_ACCOUNT: u32 = 10;

pub(super) fn render(report: &AuditReport) -> String {
    let events: Vec<Value> = non_compliant(report)
        .into_iter()
        .map(|(uid, row)| event(report, &uid, row))
        .collect();
    let mut text = serde_json::to_string_pretty(&events).expect("JSON values always serialize");
    text.push('\n');
    text
}

/// OCSF timestamps are milliseconds since the epoch.
fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn event(report: &AuditReport, uid: &str, row: &KeyRow) -> Value {
    let severity = security::severity(row);
    let types: Vec<&str> = row.findings.iter().map(|f| f.as_str()).collect();
    let resource_uid = row
        .access_key_id
        .clone()
        .unwrap_or_else(|| row.user_arn.clone());
    json!({
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "severity_id": severity.ocsf_id(),
        "severity": severity.ocsf_name(),
        "status_id": 1,
        "status": "New",
        "time": millis(report.generated_at),
        "message": security::title(row),
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["cloud"],
            "product": {
                "name": "rekey",
                "vendor_name": "rekey",
                "version": env!("CARGO_PKG_VERSION"),
            },
        },
        "finding_info": {
            "uid": uid,
            "title": security::title(row),
            "desc": security::description(row),
            "types": types,
            "related_requirements": row.findings.iter().map(|f| security::cis_control(*f)).collect::<Vec<_>>(),
            "created_time": row.created.map(millis),
            "last_seen_time": millis(report.as_of),
        },
        "cloud": {
            "provider": "AWS",
            "account": {
                "uid": row.account_id,
                "type_id": AWS_ACCOUNT,
                "type": "AWS Account",
            },
        },
        "resources": [{
            "uid": resource_uid,
            "type": "AwsIamAccessKey",
            "cloud_partition": row.partition,
            "owner": {
                "name": row.user_name,
                "uid": row.user_arn,
            },
            "data": {
                "access_key_id": row.access_key_id,
                "status": row.status.as_str(),
                "is_root": row.is_root,
            },
        }],
        "unmapped": {
            "age_days": row.age_days,
            "unused_days": row.unused_days,
            // null, not "", for a key never used (issue 15 #6).
            "last_used": row.last_used.map(|t| super::rfc3339(Some(t))),
            "judged_as_of": super::rfc3339(Some(report.as_of)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, ids};

    #[test]
    fn one_event_per_non_compliant_key_with_its_facts() {
        let report = fixture::report();
        let events: Vec<Value> = serde_json::from_str(&render(&report)).unwrap();
        assert_eq!(events.len(), report.summary.non_compliant);
        let alice = events
            .iter()
            .find(|e| e["resources"][0]["uid"] == ids::ALICE)
            .unwrap();
        assert_eq!(alice["class_uid"], 2004);
        assert_eq!(alice["type_uid"], 200401);
        assert_eq!(alice["cloud"]["account"]["uid"], fixture::OK_ACCOUNT);
        assert_eq!(alice["resources"][0]["owner"]["name"], "alice");
        assert_eq!(alice["finding_info"]["types"], json!(["too_old"]));
        assert_eq!(alice["severity_id"], 3);
        assert_eq!(alice["time"], millis(report.generated_at));
        let root = events
            .iter()
            .find(|e| e["resources"][0]["data"]["is_root"] == true)
            .unwrap();
        assert_eq!(root["severity"], "Critical");
        assert!(root["resources"][0]["data"]["access_key_id"].is_null());
        assert!(alice["unmapped"]["last_used"].is_string(), "{alice}");
    }

    #[test]
    fn a_never_used_key_has_a_null_last_used() {
        let mut report = fixture::report();
        for row in &mut report.keys {
            row.last_used = None;
        }
        let events: Vec<Value> = serde_json::from_str(&render(&report)).unwrap();
        assert!(!events.is_empty());
        for e in &events {
            assert!(e["unmapped"]["last_used"].is_null(), "{e}");
        }
    }

    #[test]
    fn no_findings_is_an_empty_array() {
        let mut report = fixture::report();
        report.keys.clear();
        assert_eq!(render(&report), "[]\n");
    }
}
