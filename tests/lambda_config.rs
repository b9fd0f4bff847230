//! The Lambda as an AWS Config custom rule (issue 20), invoked through
//! `rekey::lambda::handle` with the events AWS documents
//! (`tests/fixtures/lambda/config-rule-*.json`), against moto. What AWS
//! Config was given is read back from the harness
//! (`/_rekey/config_evaluations`: moto keeps no PutEvaluations).

use std::collections::BTreeMap;
use std::sync::Arc;

use rekey::aws::{AwsOptions, Deps};
use rekey::clock::FixedClock;
use rekey::lambda::{Invocation, Settings, Shared, handle};
use serde_json::{Value, json};

use crate::support::{
    Creds, Home, Seeder, code, inactive, json_out, key, member_seeder, moto, sdk_config,
};

/// The periodic event's notificationCreationTime: every evaluation's
/// OrderingTimestamp, whatever the clock says.
const NOTIFIED_AT: &str = "2026-12-08T00:00:00.000Z";

/// The function's shared state signing as `creds` (its own account).
fn shared(creds: &Creds) -> Shared {
    let aws = AwsOptions {
        endpoint_url: Some(moto().endpoint()),
        region: Some("us-east-1".into()),
    };
    Shared {
        settings: Settings::from_env(&|_| None).expect("default settings"),
        deps: Deps::new(sdk_config(creds), aws, None),
        // Keys are back-dated from the real time: judge at it.
        clock: Arc::new(FixedClock::new(time::OffsetDateTime::now_utc())),
        config_path: None,
    }
}

fn invocation() -> Invocation {
    Invocation {
        request_id: "config-rule-test".into(),
        deadline: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
        function_arn: Some("arn:aws:lambda:us-east-1:123456789012:function:rekey".into()),
    }
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/lambda/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

/// The documented periodic event for `account_id`, with its own result
/// token (to find its calls) and `params` as `ruleParameters` (`None`:
/// absent).
fn periodic(account_id: &str, token: &str, params: Option<&str>) -> Value {
    let mut event = fixture("config-rule-periodic.json");
    let mut invoking: Value =
        serde_json::from_str(event["invokingEvent"].as_str().unwrap()).unwrap();
    invoking["awsAccountId"] = json!(account_id);
    event["invokingEvent"] = json!(invoking.to_string());
    event["accountId"] = json!(account_id);
    event["resultToken"] = json!(token);
    match params {
        Some(p) => event["ruleParameters"] = json!(p),
        None => {
            event.as_object_mut().unwrap().remove("ruleParameters");
        }
    }
    event
}

/// The PutEvaluations calls made with `token`, in `account_id`.
fn calls(account_id: &str, token: &str) -> Vec<Value> {
    let all = moto().control("config_evaluations", json!({ "account_id": account_id }));
    all["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result_token"] == token)
        .cloned()
        .collect()
}

/// Every evaluation of those calls.
fn evaluations(calls: &[Value]) -> Vec<Value> {
    calls
        .iter()
        .flat_map(|c| c["evaluations"].as_array().unwrap().clone())
        .collect()
}

/// ComplianceResourceId → ComplianceType.
fn by_resource(evals: &[Value]) -> BTreeMap<String, String> {
    evals
        .iter()
        .map(|e| {
            (
                e["ComplianceResourceId"].as_str().unwrap().to_string(),
                e["ComplianceType"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn user_id(seeder: &Seeder, name: &str) -> String {
    let out = seeder.iam.get_user().user_name(name).send().await.unwrap();
    out.user().unwrap().user_id().to_string()
}

/// User name → UserId of every user of the seeder's account.
async fn user_ids(seeder: &Seeder) -> BTreeMap<String, String> {
    let out = seeder.iam.list_users().send().await.unwrap();
    out.users()
        .iter()
        .map(|u| (u.user_name().to_string(), u.user_id().to_string()))
        .collect()
}

/// Checks what every evaluation must be, whatever its result.
fn assert_well_formed(evals: &[Value], secrets: &[&str]) {
    for e in evals {
        assert_eq!(e["OrderingTimestamp"], NOTIFIED_AT, "{e}");
        let note = e["Annotation"].as_str().unwrap_or_default();
        assert!(!note.is_empty() && note.chars().count() <= 256, "{e}");
        let text = e.to_string();
        for s in secrets {
            assert!(!text.contains(s), "a secret or full key ID in {e}");
        }
    }
}

#[tokio::test]
async fn periodic_rule_judges_each_user_of_its_own_account_as_the_config_view_does() {
    let org = moto().new_org(0);
    let acct = &org.management_account_id;
    let s = Seeder::new(acct, &sdk_config(&org.admin));
    let old = s.user("old", "/", &[], &[], &[key(120, Some(1))]).await;
    s.user("sixty", "/", &[], &[], &[key(60, Some(1))]).await;
    s.user("parked", "/", &[], &[], &[inactive(400)]).await;
    s.user("nokeys", "/", &[], &[], &[]).await;
    let both = s
        .user("both", "/", &[], &[], &[key(10, Some(1)), key(100, None)])
        .await;
    let secret = s.add_key("sixty", 5, false).await.secret_access_key;
    let shared = shared(&org.admin);

    let out = handle(&shared, periodic(acct, "t-default", None), &invocation())
        .await
        .expect("the rule runs");
    let made = calls(acct, "t-default");
    let evals = evaluations(&made);
    let ids = user_ids(&s).await;
    let id = |n: &str| ids[n].clone();
    let expected: BTreeMap<String, String> = [
        ("old", "NON_COMPLIANT"),
        ("sixty", "COMPLIANT"),
        ("parked", "COMPLIANT"),
        ("nokeys", "COMPLIANT"),
        ("both", "NON_COMPLIANT"),
        ("org-admin", "COMPLIANT"),
    ]
    .into_iter()
    .map(|(n, v)| (id(n), v.to_string()))
    .collect();
    assert_eq!(by_resource(&evals), expected, "per UserId, default 90 days");
    assert!(
        evals
            .iter()
            .all(|e| e["ComplianceResourceType"] == "AWS::IAM::User")
    );
    assert_eq!(
        out,
        json!({"evaluations": 6, "compliant": 4, "non_compliant": 2, "not_applicable": 0, "calls": 1})
    );
    let masked = |id: &str| format!("{}…{}", &id[..4], &id[id.len() - 4..]);
    let old_note = evals
        .iter()
        .find(|e| e["ComplianceResourceId"] == id("old").as_str())
        .unwrap()["Annotation"]
        .clone();
    assert_eq!(
        old_note,
        format!(
            "Access key {} is 120 days old (maxAccessKeyAge 90)",
            masked(&old[0])
        )
    );
    let full_ids: Vec<&str> = old.iter().chain(&both).map(String::as_str).collect();
    let mut secrets = full_ids.clone();
    secrets.extend([secret.as_str(), org.admin.secret_access_key.as_str()]);
    assert_well_formed(&evals, &secrets);
    assert!(secrets.iter().all(|s| !out.to_string().contains(s)));

    // maxAccessKeyAge honoured: the 60-day key is too old at 30.
    handle(
        &shared,
        periodic(acct, "t-30", Some(r#"{"maxAccessKeyAge":"30"}"#)),
        &invocation(),
    )
    .await
    .expect("the rule runs");
    let at_30 = by_resource(&evaluations(&calls(acct, "t-30")));
    assert_eq!(at_30[&id("sixty")], "NON_COMPLIANT");
    assert_eq!(at_30[&id("parked")], "COMPLIANT");

    // The same judgement as `rekey audit --view config`, user by user.
    let home = Home::new().with_base(&org.admin);
    for (token, max) in [("t-default", "90d"), ("t-30", "30d")] {
        let o = home.rekey(&[
            "audit",
            "--view",
            "config",
            "-o",
            "json",
            "--source",
            "api",
            "--max-age",
            max,
        ]);
        assert!(code(&o) <= 1, "audit ran");
        let cli = json_out(&o);
        let rule = by_resource(&evaluations(&calls(acct, token)));
        let judged = cli["evaluations"].as_array().unwrap();
        assert_eq!(judged.len(), 5, "the view lists the users with keys: {cli}");
        for e in judged {
            let uid = id(e["user_name"].as_str().unwrap());
            assert_eq!(rule[&uid], e["compliance_type"].as_str().unwrap(), "{e}");
        }
    }
}

#[tokio::test]
async fn a_member_account_is_reached_through_the_role_and_put_in_chunks() {
    let org = moto().new_org(2);
    let (busy, empty) = (&org.members[0].account_id, &org.members[1].account_id);
    let s = member_seeder(&org, busy).await;
    s.user("user-000", "/", &[], &[], &[key(200, None)]).await;
    for i in 1..105 {
        s.user(&format!("user-{i:03}"), "/", &[], &[], &[]).await;
    }
    let shared = shared(&org.admin);

    let out = handle(&shared, periodic(busy, "t-busy", None), &invocation())
        .await
        .expect("the rule runs in the member");
    let made = calls(busy, "t-busy");
    assert!(
        made.len() >= 2,
        "105 evaluations need two calls: {}",
        made.len()
    );
    for c in &made {
        let n = c["evaluations"].as_array().unwrap().len();
        assert!((1..=100).contains(&n), "{n} evaluations in one call");
        assert_eq!(
            c["account_id"],
            busy.as_str(),
            "put with the member's session"
        );
    }
    let evals = evaluations(&made);
    let results = by_resource(&evals);
    assert_eq!(results.len(), 105);
    assert_eq!(results[&user_id(&s, "user-000").await], "NON_COMPLIANT");
    assert_eq!(results[&user_id(&s, "user-104").await], "COMPLIANT");
    assert_well_formed(&evals, &[&org.admin.secret_access_key]);
    assert_eq!(out["calls"], made.len());
    assert_eq!(
        (out["evaluations"].clone(), out["non_compliant"].clone()),
        (json!(105), json!(1))
    );
    assert!(calls(&org.management_account_id, "t-busy").is_empty());

    // No users: NOT_APPLICABLE on the account itself.
    let out = handle(&shared, periodic(empty, "t-empty", None), &invocation())
        .await
        .expect("the rule runs in the empty member");
    let evals = evaluations(&calls(empty, "t-empty"));
    assert_eq!(evals.len(), 1, "{evals:?}");
    assert_eq!(evals[0]["ComplianceResourceType"], "AWS::::Account");
    assert_eq!(evals[0]["ComplianceResourceId"], empty.as_str());
    assert_eq!(evals[0]["ComplianceType"], "NOT_APPLICABLE");
    assert_well_formed(&evals, &[]);
    assert_eq!(out["not_applicable"], 1);

    // A role that is not there: the account and role named, nothing put.
    let mut lost = shared;
    lost.settings.role = "NoSuchRole".into();
    let e = handle(&lost, periodic(empty, "t-lost", None), &invocation())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(empty.as_str()) && e.contains("role/NoSuchRole"),
        "{e}"
    );
    assert!(calls(empty, "t-lost").is_empty());
}

#[tokio::test]
async fn bad_events_are_named_and_put_nothing() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    s.user("someone", "/", &[], &[], &[key(10, None)]).await;
    let shared = shared(&acct.admin);
    let a = acct.account_id.as_str();
    let cases = [
        (
            "ruleParameters",
            periodic(a, "t-bad", Some("maxAccessKeyAge=30")),
        ),
        (
            "ruleParameters",
            periodic(a, "t-bad", Some(r#"{"maxAccessKeyAge":"0"}"#)),
        ),
        (
            "ruleParameters",
            periodic(a, "t-bad", Some(r#"{"maxAccessKeyAge":"ninety"}"#)),
        ),
        ("invokingEvent", {
            let mut e = periodic(a, "t-bad", None);
            e["invokingEvent"] = json!("{\"messageType\":");
            e
        }),
    ];
    for (field, event) in cases {
        let e = handle(&shared, event, &invocation()).await.unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(field) && text.contains("nothing was put"),
            "{text}"
        );
    }
    assert!(calls(a, "t-bad").is_empty());

    // A periodic event out of scope: nothing to put.
    let mut event = periodic(a, "t-scope", None);
    event["eventLeftScope"] = json!(true);
    let out = handle(&shared, event, &invocation()).await.unwrap();
    assert_eq!(
        (out["evaluations"].clone(), out["calls"].clone()),
        (json!(0), json!(0))
    );
    assert!(calls(a, "t-scope").is_empty());
}

#[tokio::test]
async fn a_deleted_user_is_not_applicable_and_refused_evaluations_are_an_error() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    s.user("kept", "/", &[], &[], &[key(10, None)]).await;
    let shared = shared(&acct.admin);
    let a = acct.account_id.as_str();

    // The change notification AWS sends for a deleted user.
    let mut event = fixture("config-rule-change.json");
    event["accountId"] = json!(a);
    event["resultToken"] = json!("t-change");
    let out = handle(&shared, event, &invocation()).await.unwrap();
    let evals = evaluations(&calls(a, "t-change"));
    assert_eq!(evals.len(), 1, "{evals:?}");
    assert_eq!(evals[0]["ComplianceResourceId"], "AIDAEXAMPLEDELETED01");
    assert_eq!(evals[0]["ComplianceResourceType"], "AWS::IAM::User");
    assert_eq!(evals[0]["ComplianceType"], "NOT_APPLICABLE");
    assert_well_formed(&evals, &[]);
    assert_eq!(out["not_applicable"], 1);

    // Config refusing an evaluation (FailedEvaluations) is an error
    // saying how many.
    let kept = user_id(&s, "kept").await;
    moto().control(
        "config_refuse",
        json!({ "account_id": a, "resource_ids": [kept] }),
    );
    let e = handle(&shared, periodic(a, "t-refused", None), &invocation())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused 1 of 2") && e.contains(a), "{e}");
}

#[test]
fn the_event_fixtures_are_config_events_that_round_trip() {
    use aws_lambda_events::event::config::ConfigEvent;
    for name in ["config-rule-periodic.json", "config-rule-change.json"] {
        let parsed: ConfigEvent = serde_json::from_value(fixture(name)).unwrap();
        let again: ConfigEvent =
            serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(parsed, again, "{name}");
        assert!(parsed.invoking_event.is_some() && parsed.result_token.is_some());
    }
}
