//! Issue 6: findings where security teams look — `rekey audit --output
//! ocsf` and `--to-security-hub` — against the emulator (whose Security Hub
//! the harness makes as strict as AWS: hub enabled, own default product
//! only, required ASFF attributes, filters).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, ComplianceStatus, RecordState, StringFilter,
    StringFilterComparison,
};
use serde_json::Value;

use crate::support::{
    Home, Org, Seeder, code, json_out, key, member_config, member_seeder, moto, sdk_config, stderr,
    stdout,
};

/// Required attributes of OCSF 1.3.0 class Detection Finding (2004), from
/// the schema (schema.ocsf.io/1.3.0/classes/detection_finding): the class's
/// own and those of the objects it requires, plus the cloud profile rekey
/// declares.
const OCSF_REQUIRED: &[&str] = &[
    "activity_id",
    "category_uid",
    "class_uid",
    "finding_info",
    "metadata",
    "severity_id",
    "time",
    "type_uid",
];
/// finding_info (object `finding_info`): uid and title are required.
const FINDING_INFO_REQUIRED: &[&str] = &["uid", "title"];
/// metadata (object `metadata`): product and version are required.
const METADATA_REQUIRED: &[&str] = &["product", "version"];
/// metadata.product (object `product`): vendor_name is required.
const PRODUCT_REQUIRED: &[&str] = &["vendor_name"];
/// cloud profile: `cloud` is required, and `cloud.provider` in it.
const CLOUD_REQUIRED: &[&str] = &["provider"];
/// activity_id values of Detection Finding: Unknown, Create, Update, Close, Other.
const ACTIVITY_IDS: &[i64] = &[0, 1, 2, 3, 99];
/// severity_id values: Unknown, Informational, Low, Medium, High, Critical, Fatal, Other.
const SEVERITY_IDS: &[i64] = &[0, 1, 2, 3, 4, 5, 6, 99];

fn has_all(obj: &Value, required: &[&str], what: &str) {
    for name in required {
        let v = &obj[name];
        assert!(
            !v.is_null() && v != "",
            "{what}: required attribute `{name}` missing in {obj}"
        );
    }
}

/// Seeds, in every member: `old` (a key 120 days old, too_old), `idle`
/// (60 days, never used: unused) and `fresh` (compliant). Returns
/// (account, user) → key ID.
async fn seed(org: &Org) -> BTreeMap<(String, String), String> {
    let mut keys = BTreeMap::new();
    for m in &org.members {
        let s = member_seeder(org, &m.account_id).await;
        for (user, spec) in [
            ("old", key(120, Some(1))),
            ("idle", key(60, None)),
            ("fresh", key(10, Some(1))),
        ] {
            let id = s.user(user, "/", &[], &[], &[spec]).await.remove(0);
            keys.insert((m.account_id.clone(), user.to_string()), id);
        }
    }
    keys
}

#[tokio::test]
async fn ocsf_output_is_one_valid_detection_finding_per_non_compliant_key() {
    let org = moto().new_org(2);
    let keys = seed(&org).await;
    let home = Home::new().with_base(&org.admin);
    let out = home.rekey(&["audit", "--org", "--output", "ocsf"]);
    assert_eq!(code(&out), 1, "findings → exit 1\n{}", stderr(&out));
    assert!(
        !stdout(&out).contains(&org.admin.secret_access_key),
        "a secret in the output"
    );
    let events: Vec<Value> = serde_json::from_str(&stdout(&out)).expect("a JSON array");
    for e in &events {
        has_all(e, OCSF_REQUIRED, "Detection Finding");
        has_all(&e["finding_info"], FINDING_INFO_REQUIRED, "finding_info");
        has_all(&e["metadata"], METADATA_REQUIRED, "metadata");
        has_all(
            &e["metadata"]["product"],
            PRODUCT_REQUIRED,
            "metadata.product",
        );
        has_all(&e["cloud"], CLOUD_REQUIRED, "cloud");
        assert_eq!(e["class_uid"], 2004, "{e}");
        assert_eq!(e["category_uid"], 2, "{e}");
        let activity = e["activity_id"].as_i64().unwrap();
        assert!(ACTIVITY_IDS.contains(&activity), "{e}");
        assert_eq!(e["type_uid"].as_i64(), Some(2004 * 100 + activity), "{e}");
        assert!(
            SEVERITY_IDS.contains(&e["severity_id"].as_i64().unwrap()),
            "{e}"
        );
        assert!(e["time"].as_i64().unwrap() > 1_600_000_000_000, "ms: {e}");
        assert!(e["metadata"]["version"].as_str().unwrap().starts_with("1."));
        assert_eq!(e["cloud"]["provider"], "AWS");
    }
    let got: BTreeSet<(String, String, String, String)> = events
        .iter()
        .map(|e| {
            let r = &e["resources"][0];
            (
                e["cloud"]["account"]["uid"].as_str().unwrap().to_string(),
                r["owner"]["name"].as_str().unwrap().to_string(),
                r["uid"].as_str().unwrap().to_string(),
                e["finding_info"]["types"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })
        .collect();
    let mut want = BTreeSet::new();
    for m in &org.members {
        let id = |u: &str| keys[&(m.account_id.clone(), u.to_string())].clone();
        want.insert((
            m.account_id.clone(),
            "old".into(),
            id("old"),
            "too_old".into(),
        ));
        want.insert((
            m.account_id.clone(),
            "idle".into(),
            id("idle"),
            "unused".into(),
        ));
    }
    assert_eq!(got, want, "one finding per non-compliant key, nothing else");
    let uids: BTreeSet<&str> = events
        .iter()
        .map(|e| e["finding_info"]["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), events.len(), "finding uids are unique");
}

async fn hub(org: &Org, account_id: &str) -> aws_sdk_securityhub::Client {
    let config = if account_id == org.management_account_id {
        sdk_config(&org.admin)
    } else {
        member_config(org, account_id).await
    };
    aws_sdk_securityhub::Client::new(&config)
}

/// rekey's findings in an account, by ID.
async fn findings(org: &Org, account_id: &str) -> BTreeMap<String, AwsSecurityFinding> {
    let filters = AwsSecurityFindingFilters::builder()
        .generator_id(
            StringFilter::builder()
                .value("rekey/access-key-rotation")
                .comparison(StringFilterComparison::Equals)
                .build(),
        )
        .build();
    let out = hub(org, account_id)
        .await
        .get_findings()
        .filters(filters)
        .send()
        .await
        .expect("GetFindings");
    out.findings()
        .iter()
        .map(|f| (f.id().unwrap().to_string(), f.clone()))
        .collect()
}

/// What a second identical run must leave exactly as it was (UpdatedAt
/// and LastObservedAt move on: the finding was observed again).
#[derive(Debug, PartialEq)]
struct Stable {
    record_state: Option<RecordState>,
    compliance: Option<ComplianceStatus>,
    types: Vec<String>,
    created_at: Option<String>,
    title: Option<String>,
    resource: Option<String>,
}

fn stable_view(f: &AwsSecurityFinding) -> Stable {
    Stable {
        record_state: f.record_state().cloned(),
        compliance: f.compliance().and_then(|c| c.status()).cloned(),
        types: f.types().to_vec(),
        created_at: f.created_at().map(str::to_string),
        title: f.title().map(str::to_string),
        resource: f
            .resources()
            .first()
            .and_then(|r| r.id())
            .map(str::to_string),
    }
}

fn key_of(f: &AwsSecurityFinding) -> &str {
    f.resources()[0].id().unwrap()
}

async fn enable_hub(org: &Org, account_id: &str) {
    hub(org, account_id)
        .await
        .enable_security_hub()
        .send()
        .await
        .expect("EnableSecurityHub");
}

#[tokio::test]
async fn security_hub_findings_are_updated_in_place_and_archived_when_resolved() {
    let org = moto().new_org(2);
    let keys = seed(&org).await;
    enable_hub(&org, &org.management_account_id).await;
    for m in &org.members {
        enable_hub(&org, &m.account_id).await;
    }
    let home = Home::new().with_base(&org.admin);
    let audit = ["audit", "--org", "--to-security-hub", "--output", "json"];

    // First run: one finding per non-compliant key, in its own account.
    let out = home.rekey(&audit);
    assert_eq!(code(&out), 1, "findings → exit 1\n{}", stderr(&out));
    let mut first = BTreeMap::new();
    for m in &org.members {
        let got = findings(&org, &m.account_id).await;
        let by_key: BTreeSet<&str> = got.values().map(key_of).collect();
        let want: BTreeSet<&str> = ["old", "idle"]
            .iter()
            .map(|u| keys[&(m.account_id.clone(), u.to_string())].as_str())
            .collect();
        assert_eq!(by_key, want, "account {}: {got:#?}", m.account_id);
        for f in got.values() {
            assert_eq!(f.aws_account_id(), Some(m.account_id.as_str()));
            assert_eq!(f.record_state(), Some(&RecordState::Active));
            assert_eq!(
                f.compliance().and_then(|c| c.status()),
                Some(&ComplianceStatus::Failed)
            );
        }
        assert!(
            stderr(&out).contains(&format!(
                "Security Hub {}/us-east-1: 2 new, 0 updated, 0 archived",
                m.account_id
            )),
            "{}",
            stderr(&out)
        );
        first.insert(m.account_id.clone(), got);
    }
    assert!(
        findings(&org, &org.management_account_id).await.is_empty(),
        "the management account has no non-compliant key"
    );

    // Rotate `old` in the first member: a new key, the old one deleted.
    let m1 = org.members[0].account_id.clone();
    let old_key = keys[&(m1.clone(), "old".to_string())].clone();
    let s = Seeder::new(&m1, &member_config(&org, &m1).await);
    s.add_key("old", 0, true).await;
    s.iam
        .delete_access_key()
        .user_name("old")
        .access_key_id(&old_key)
        .send()
        .await
        .expect("delete the old key");

    let out = home.rekey(&audit);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "Security Hub {m1}/us-east-1: 0 new, 1 updated, 1 archived"
        )),
        "{}",
        stderr(&out)
    );
    let second_m1 = findings(&org, &m1).await;
    assert_eq!(
        second_m1.keys().collect::<Vec<_>>(),
        first[&m1].keys().collect::<Vec<_>>(),
        "same IDs: updated in place, no finding added"
    );
    for (id, f) in &second_m1 {
        let before = &first[&m1][id];
        assert_eq!(f.created_at(), before.created_at(), "{id}");
        if key_of(f) == old_key {
            assert_eq!(f.record_state(), Some(&RecordState::Archived), "{f:#?}");
            assert_eq!(
                f.compliance().and_then(|c| c.status()),
                Some(&ComplianceStatus::Passed)
            );
        } else {
            assert_eq!(stable_view(f), stable_view(before), "the other finding");
        }
    }
    let m2 = &org.members[1].account_id;
    let second_m2 = findings(&org, m2).await;
    assert_eq!(
        second_m2.values().map(stable_view).collect::<Vec<_>>(),
        first[m2].values().map(stable_view).collect::<Vec<_>>(),
        "the other account is left as it was"
    );

    // Running twice changes nothing else.
    let out = home.rekey(&audit);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    for (account, before) in [(&m1, &second_m1), (m2, &second_m2)] {
        let now = findings(&org, account).await;
        assert_eq!(
            now.iter()
                .map(|(id, f)| (id.clone(), stable_view(f)))
                .collect::<Vec<_>>(),
            before
                .iter()
                .map(|(id, f)| (id.clone(), stable_view(f)))
                .collect::<Vec<_>>(),
            "account {account}"
        );
    }
    assert!(
        stderr(&out).contains(&format!(
            "Security Hub {m1}/us-east-1: 0 new, 1 updated, 0 archived"
        )),
        "an archived finding is not sent again\n{}",
        stderr(&out)
    );
}

/// An account whose import fails is reported, the others still get theirs,
/// and the failure is counted apart from the audit's: the account was
/// audited (issue 15).
#[tokio::test]
async fn an_account_whose_import_fails_is_reported_apart_and_the_others_still_get_theirs() {
    let org = moto().new_org(2);
    let keys = seed(&org).await;
    let (ok, off) = (&org.members[0].account_id, &org.members[1].account_id);
    enable_hub(&org, &org.management_account_id).await;
    enable_hub(&org, ok).await;
    // `off` never enabled Security Hub.
    let home = Home::new().with_base(&org.admin);
    let out = home.rekey(&["audit", "--org", "--to-security-hub", "--output", "json"]);
    assert_eq!(code(&out), 2, "an import failed → exit 2\n{}", stderr(&out));
    assert_eq!(findings(&org, ok).await.len(), 2, "{}", stderr(&out));
    let report = json_out(&out);
    let failed = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == off.as_str())
        .unwrap();
    assert_eq!(failed["status"], "ok", "its audit succeeded: {failed}");
    assert!(failed["error"].is_null(), "{failed}");
    let error = failed["securityhub_error"].as_str().unwrap();
    assert!(
        error.contains("Security Hub is not enabled in account") && error.contains(off.as_str()),
        "{error}"
    );
    assert_eq!(failed["securityhub_error_code"], "InvalidAccessException");
    assert_eq!(report["summary"]["accounts_failed"], 0);
    assert_eq!(report["summary"]["securityhub_failed"], 1);
    assert_eq!(
        report["summary"]["accounts_ok"],
        report["summary"]["accounts"]
    );
    assert!(
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["access_key_id"] == keys[&(off.clone(), "old".to_string())].as_str()),
        "the failed account's keys are still in the report"
    );
    assert!(
        stderr(&out).contains(&format!("Security Hub {off}/us-east-1: failed:")),
        "{}",
        stderr(&out)
    );
    // The table says the same, in words.
    let out = home.rekey(&["audit", "--org", "--to-security-hub", "--output", "table"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("Failed accounts"), "{text}");
    assert!(
        text.contains("Security Hub imports failed (the accounts were audited):")
            && text.contains("0 failed")
            && text.contains("; 1 Security Hub import failed"),
        "{text}"
    );
}

/// Issue 15 #6: a never-used key reads "never used", not "last used N days
/// ago" (N counted from its creation), and its `last_used` is null; a root
/// key's finding says to delete it, since rekey refuses root credentials.
/// OCSF and Security Hub carry the same words.
#[tokio::test]
async fn issue15_6_never_used_and_root_keys_are_described_as_they_are() {
    let org = moto().new_org(1);
    let m = org.members[0].account_id.clone();
    let s = member_seeder(&org, &m).await;
    let idle = s
        .user("idle", "/", &[], &[], &[key(130, None)])
        .await
        .remove(0);
    moto().root_keys(&m, &[(true, 500)]);
    enable_hub(&org, &m).await;
    enable_hub(&org, &org.management_account_id).await;
    let home = Home::new().with_base(&org.admin);
    let out = home.rekey(&["audit", "--org", "--output", "ocsf", "--to-security-hub"]);
    assert_eq!(code(&out), 1, "findings → exit 1\n{}", stderr(&out));
    let events: Vec<Value> = serde_json::from_str(&stdout(&out)).expect("a JSON array");
    let of = |pick: &dyn Fn(&Value) -> bool| -> Value {
        events
            .iter()
            .find(|e| e["cloud"]["account"]["uid"] == m.as_str() && pick(e))
            .unwrap_or_else(|| panic!("no such event in {events:#?}"))
            .clone()
    };
    let idle_event = of(&|e| e["resources"][0]["uid"] == idle.as_str());
    let root_event = of(&|e| e["resources"][0]["data"]["is_root"] == true);
    for e in [&idle_event, &root_event] {
        let desc = e["finding_info"]["desc"].as_str().unwrap();
        assert!(desc.contains("never used"), "{desc}");
        assert!(!desc.contains("last used"), "{desc}");
        assert!(e["unmapped"]["last_used"].is_null(), "{e}");
    }
    let root_desc = root_event["finding_info"]["desc"].as_str().unwrap();
    assert!(
        root_desc.contains("Delete it") && root_desc.contains("CIS AWS Foundations Benchmark 1.4"),
        "{root_desc}"
    );
    assert!(!root_desc.contains("Rotate it"), "{root_desc}");
    let imported = findings(&org, &m).await;
    assert_eq!(imported.len(), 2, "{imported:#?}");
    for f in imported.values() {
        let desc = f.description().unwrap();
        assert!(
            desc.contains("never used") && !desc.contains("last used"),
            "{desc}"
        );
        let root = f.resources()[0].r#type() == Some("AwsAccount");
        assert_eq!(desc.contains("Delete it"), root, "{desc}");
        assert_eq!(desc.contains("Rotate it"), !root, "{desc}");
    }
}
