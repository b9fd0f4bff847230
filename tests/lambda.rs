//! The Lambda's handlers in-process (issue 20), fed JSON events in the
//! shapes AWS documents, against the emulator: the scheduled fan-out and
//! its SQS workers end to end over a 20-account organization, and the
//! Secrets Manager rotation function step by step. moto cannot run Lambda
//! functions here (no Docker), so the test plays Lambda's part: it reads
//! the queue and hands each batch to the handler, deleting what succeeded
//! as an event source mapping does, and plays Secrets Manager's: it stages
//! a version with RotateSecret and calls the four steps.

use rekey::lambda::{Shared, handle};
use serde_json::{Value, json};

use crate::support::function::{invocation, shared_as};
use crate::support::stores::{create_secret, secret_at, secret_key, works};
use crate::support::{Creds, Org, moto, sdk_config};

/// A journal table in the account `creds` signs for: `dynamodb:NAME`.
async fn journal_table(creds: &Creds, name: &str) -> String {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(creds));
    rekey::journal::dynamo::init(&ddb, name)
        .await
        .expect("journal table");
    format!("dynamodb:{name}")
}

/// The journal's key records of `account`, as (user, act, phase) lines.
async fn key_acts(creds: &Creds, journal: &str, account: &str) -> Vec<String> {
    let shared = shared_as(creds, &[], None);
    let spec = rekey::journal::JournalSpec::parse(journal).unwrap();
    let choice = rekey::request::journal::JournalChoice { spec, role: None };
    let j = rekey::request::journal::open(
        &choice,
        rekey::request::journal::Use::Read,
        shared.deps.base(),
        shared.clock.clone(),
    )
    .await
    .unwrap();
    let events = j.key_events_in(account).await.unwrap();
    events
        .iter()
        .map(|e| {
            let v = serde_json::to_value(e).unwrap();
            format!("{} {} {}", v["user_name"], v["op"], v["phase"])
        })
        .collect()
}

#[test]
fn each_documented_event_shape_goes_to_its_handler() {
    use rekey::lambda::Kind;
    for (fixture, kind) in [
        (
            include_str!("fixtures/lambda/scheduled.json"),
            Kind::Scheduled,
        ),
        (include_str!("fixtures/lambda/sqs-batch.json"), Kind::Queue),
        (
            include_str!("fixtures/lambda/secret-create.json"),
            Kind::SecretRotation,
        ),
        (
            include_str!("fixtures/lambda/config-rule-periodic.json"),
            Kind::ConfigRule,
        ),
    ] {
        let event: Value = serde_json::from_str(fixture).unwrap();
        assert_eq!(Kind::of(&event).unwrap(), kind, "{fixture}");
    }
    let e = Kind::of(&json!({"Records": [{"eventSource": "aws:s3"}]})).unwrap_err();
    assert!(e.to_string().contains("its fields: Records"), "{e}");
}

// ---------------------------------------------------------------- fan-out

/// A queue with a dead-letter queue after `max_receive` receipts, as the
/// deployment makes it; visible again at once (the test is the poller).
async fn queues(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    max_receive: u32,
) -> (String, String, String) {
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap();
    let dlq_url = dlq.queue_url().unwrap().to_string();
    let dlq_arn = queue_arn(sqs, &dlq_url).await;
    let policy =
        json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}).to_string();
    let q = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "0",
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            policy,
        )
        .send()
        .await
        .unwrap();
    let url = q.queue_url().unwrap().to_string();
    let arn = queue_arn(sqs, &url).await;
    (url, arn, dlq_url)
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let a = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    a.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone()
}

/// An SQS event as Lambda's event source mapping delivers it.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1796688000000"},
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// What the poller did.
#[derive(Default)]
struct Polled {
    bodies: Vec<String>,
    batches: usize,
    failures: usize,
}

/// Plays Lambda's event source mapping until the queue is empty: each
/// batch (up to 10) to the handler, the messages it did not report failed
/// deleted.
async fn poll(shared: &Shared, sqs: &aws_sdk_sqs::Client, (url, arn): (&str, &str)) -> Polled {
    let mut polled = Polled::default();
    for round in 0..50 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages().to_vec();
        if messages.is_empty() {
            return polled;
        }
        polled.batches += 1;
        let response = handle(
            shared,
            sqs_event(&messages, arn),
            &invocation(&format!("req-{round}")),
        )
        .await
        .expect("an SQS batch is answered");
        let failed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .expect("batchItemFailures")
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap())
            .collect();
        polled.failures += failed.len();
        for m in &messages {
            polled.bodies.push(m.body().unwrap_or_default().to_string());
            if !failed.contains(&m.message_id().unwrap_or_default()) {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    panic!("the queue never emptied");
}

/// Makes member `account`'s role unassumable: it trusts another account.
async fn poison(org: &Org, account: &str) {
    let iam = aws_sdk_iam::Client::new(&crate::support::member_config(org, account).await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}]});
    iam.update_assume_role_policy()
        .role_name(crate::support::ROLE)
        .policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_schedule_fans_out_one_message_per_account_and_each_is_enforced_once() {
    let org = moto().new_org(20);
    let mgmt = org.management_account_id.clone();
    // Every member: a person's key of 95 days, due a warning (its
    // deactivation comes at 104 days).
    crate::support::seed_members(&org, "dev", crate::support::key(95, Some(2))).await;
    let poisoned = org.members[7].account_id.clone();
    poison(&org, &poisoned).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config(&org.admin));
    let (url, arn, dlq) = queues(&sqs, "rekey-fanout", 2).await;
    let journal = journal_table(&org.admin, "rekey-fanout-journal").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rekey.toml");
    // The management account is left out, as rekey.toml's exclusion.
    std::fs::write(
        &config,
        format!("[audit]\nexclude_accounts = [\"{mgmt}\"]\n"),
    )
    .unwrap();
    let vars = [
        ("REKEY_JOURNAL", journal.as_str()),
        ("REKEY_QUEUE_URL", url.as_str()),
    ];
    let shared = shared_as(&org.admin, &vars, Some(config));

    // 1. The schedule: one message per member account.
    let scheduled: Value =
        serde_json::from_str(include_str!("fixtures/lambda/scheduled.json")).unwrap();
    let said = handle(&shared, scheduled, &invocation("sched-1"))
        .await
        .expect("the schedule");
    assert_eq!(said["accounts"], 20, "{said}");
    assert_eq!(said["batches"], 2, "{said}");

    // 2-3. Each message handled; one delivered twice.
    let polled = poll(&shared, &sqs, (&url, &arn)).await;
    let mut accounts: Vec<String> = (polled.bodies.iter())
        .map(|b| rekey::lambda::fanout::parse_message(b).unwrap().account_id)
        .collect();
    accounts.sort();
    accounts.dedup();
    let mut members: Vec<String> = org.members.iter().map(|m| m.account_id.clone()).collect();
    members.sort();
    assert_eq!(
        accounts, members,
        "a message for every member, none for the management account"
    );
    let again = polled
        .bodies
        .iter()
        .find(|b| !b.contains(&poisoned))
        .unwrap()
        .clone();
    let duplicate = json!({"Records": [{"messageId": "dup-1", "receiptHandle": "r", "body": again,
        "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": arn, "awsRegion": "us-east-1"}]});
    let response = handle(&shared, duplicate, &invocation("dup"))
        .await
        .unwrap();
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "a duplicate is a no-op, not a failure"
    );

    // 4. The journal: each reachable account warned exactly once.
    for m in &org.members {
        let acts = key_acts(&org.admin, &journal, &m.account_id).await;
        let warned = acts
            .iter()
            .filter(|a| a.contains("\"warn\" \"done\""))
            .count();
        let expected = usize::from(m.account_id != poisoned);
        assert_eq!(warned, expected, "{}: {acts:?}", m.account_id);
    }

    // 5. The poisoned account came back until the dead-letter queue took it.
    assert!(
        polled.failures >= 2,
        "failed at each receipt: {}",
        polled.failures
    );
    let dead = sqs
        .receive_message()
        .queue_url(&dlq)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let dead: Vec<String> = (dead.messages().iter())
        .map(|m| {
            rekey::lambda::fanout::parse_message(m.body().unwrap())
                .unwrap()
                .account_id
        })
        .collect();
    assert_eq!(dead, [poisoned]);
    for body in &polled.bodies {
        assert!(!body.contains(&org.admin.secret_access_key));
    }
}

#[tokio::test]
async fn a_bad_message_or_missing_setting_is_refused_and_changes_nothing() {
    let org = moto().new_org(1);
    let member = org.members[0].account_id.clone();
    crate::support::seed_members(&org, "dev", crate::support::key(95, Some(2))).await;
    let journal = journal_table(&org.admin, "rekey-badmsg-journal").await;
    let shared = shared_as(&org.admin, &[("REKEY_JOURNAL", journal.as_str())], None);
    let message = |request: Value| {
        json!({"schema": "rekey.enforce-message/1", "account_id": member,
               "schedule_id": "s", "scheduled_at": "2026-12-08T03:00:00Z", "request": request})
        .to_string()
    };
    let bodies = [
        "not json".to_string(),
        json!({"schema": "rekey.enforce-message/9"}).to_string(),
        message(json!({"scope": {"accounts": ["111111111111"]}, "apply": true})),
        message(json!({"scope": {"accounts": [member]}, "apply": true, "journal": "/tmp/j.db"})),
        message(json!({"scope": {"accounts": [member], "config": "/etc/passwd"}, "apply": true})),
        message(json!({"scope": {"accounts": [member]}, "apply": true, "max_failure_rate": 300})),
    ];
    let records: Vec<Value> = (bodies.iter().enumerate())
        .map(|(i, b)| json!({"messageId": format!("m{i}"), "body": b, "eventSource": "aws:sqs"}))
        .collect();
    let response = handle(&shared, json!({"Records": records}), &invocation("bad"))
        .await
        .unwrap();
    let failed: Vec<&str> = (response["batchItemFailures"].as_array().unwrap().iter())
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["m0", "m1", "m2", "m3", "m4", "m5"]);
    assert!(key_acts(&org.admin, &journal, &member).await.is_empty());
    // The schedule without a queue says which variable is missing.
    let e = handle(
        &shared,
        json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
        &invocation("s"),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("REKEY_QUEUE_URL is not set"), "{e}");
    let e = handle(&shared, json!({"hello": 1}), &invocation("u"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("its fields: hello"), "{e}");
}

#[tokio::test]
async fn a_worker_near_its_deadline_starts_nothing_and_its_message_comes_back() {
    let org = moto().new_org(1);
    let member = org.members[0].account_id.clone();
    crate::support::seed_members(&org, "dev", crate::support::key(95, Some(2))).await;
    let journal = journal_table(&org.admin, "rekey-deadline-journal").await;
    let shared = shared_as(&org.admin, &[("REKEY_JOURNAL", journal.as_str())], None);
    let body = json!({"schema": "rekey.enforce-message/1", "account_id": member,
        "schedule_id": "s", "scheduled_at": "2026-12-08T03:00:00Z",
        "request": {"scope": {"accounts": [member], "role": "OrganizationAccountAccessRole"}, "apply": true}});
    let event = json!({"Records": [{"messageId": "m", "body": body.to_string(), "eventSource": "aws:sqs"}]});
    let mut near = invocation("late");
    near.deadline = time::OffsetDateTime::now_utc() + time::Duration::seconds(20);
    let response = handle(&shared, event.clone(), &near).await.unwrap();
    assert_eq!(response["batchItemFailures"][0]["itemIdentifier"], "m");
    assert!(
        key_acts(&org.admin, &journal, &member).await.is_empty(),
        "nothing started"
    );
    let response = handle(&shared, event, &invocation("in-time"))
        .await
        .unwrap();
    assert_eq!(response["batchItemFailures"], json!([]));
    let acts = key_acts(&org.admin, &journal, &member).await;
    assert_eq!(
        acts.iter()
            .filter(|a| a.contains("\"warn\" \"done\""))
            .count(),
        1,
        "{acts:?}"
    );
}

// ------------------------------------------------------ rotation function

const FUNCTION: &str = "arn:aws:lambda:us-east-1:111111111111:function:rekey-rotation";

/// A service user whose key is in a secret of its own name, bound by the
/// secret's `rekey:user` tag; the secret's rotation enabled through the
/// function. Returns (the account's admin, the key, the secret's ARN).
struct RotationWorld {
    admin: Creds,
    account_id: String,
    key: Creds,
    secret: String,
    secrets: aws_sdk_secretsmanager::Client,
    shared: Shared,
}

async fn rotation_world(user: &str) -> RotationWorld {
    let account = moto().new_account();
    let seeder = crate::support::Seeder::new(&account.account_id, &sdk_config(&account.admin));
    let key = seeder.service_user(user, 100).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk_config(&account.admin));
    // A secret's name takes no comma; a table's name no `,+=@`.
    let secret = create_secret(&secrets, &format!("ci/{}", user.replace(',', "-")), &key).await;
    let table: String = (user.chars())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    secrets
        .tag_resource()
        .secret_id(&secret)
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("rekey:user")
                .value(user)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let journal = journal_table(&account.admin, &format!("{table}-journal")).await;
    let shared = shared_as(&account.admin, &[("REKEY_JOURNAL", journal.as_str())], None);
    RotationWorld {
        admin: account.admin.clone(),
        account_id: account.account_id.clone(),
        key,
        secret,
        secrets,
        shared,
    }
}

impl RotationWorld {
    /// What Secrets Manager does on RotateSecret: version `token` staged
    /// AWSPENDING (`copy`: holding AWSCURRENT's value, as the emulator
    /// makes it; else without a value, as AWS does), rotation enabled.
    async fn start(&self, token: &str, copy: bool) {
        moto().secret_pending(&self.account_id, &self.secret, token, FUNCTION, copy);
    }

    async fn step(&self, step: &str, token: &str) -> Result<Value, String> {
        let event = json!({"Step": step, "SecretId": self.secret, "ClientRequestToken": token});
        handle(&self.shared, event, &invocation(&format!("{step}-{token}")))
            .await
            .map_err(|e| rekey::error::error_chain(&e))
    }

    async fn keys(&self, user: &str) -> Vec<(String, String)> {
        let mut keys = crate::support::Seeder::new(&self.account_id, &sdk_config(&self.admin))
            .keys(user)
            .await;
        keys.sort();
        keys
    }
}

const T1: &str = "c9b4a2f0-6a8e-4b7e-9d5e-0123456789ab";

#[tokio::test]
async fn the_four_steps_rotate_the_secret_each_repeated_and_the_old_key_stays_for_enforce() {
    let w = rotation_world("svc-rot").await;
    w.start(T1, false).await;
    for _ in 0..2 {
        let said = w.step("createSecret", T1).await.expect("createSecret");
        assert!(!said.to_string().contains(&w.key.secret_access_key));
    }
    let keys = w.keys("svc-rot").await;
    assert_eq!(
        keys.len(),
        2,
        "one new key, however often createSecret ran: {keys:?}"
    );
    let pending = secret_at(&w.secrets, &w.secret, "AWSPENDING")
        .await
        .expect("staged");
    let new_id = pending["AccessKeyId"].as_str().unwrap().to_string();
    assert_ne!(new_id, w.key.access_key_id);
    assert_eq!(
        secret_key(&w.secrets, &w.secret).await.access_key_id,
        w.key.access_key_id,
        "readers still get the old key"
    );
    for step in ["setSecret", "set_secret", "testSecret", "test_secret"] {
        w.step(step, T1)
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}"));
    }
    assert_eq!(
        secret_key(&w.secrets, &w.secret).await.access_key_id,
        w.key.access_key_id
    );
    for _ in 0..2 {
        w.step("finishSecret", T1).await.expect("finishSecret");
    }
    let current = secret_key(&w.secrets, &w.secret).await;
    assert_eq!(current.access_key_id, new_id);
    assert!(works(&current).await, "the new key works");
    assert!(
        works(&w.key).await,
        "the old key stays active, for enforce's retire stage"
    );
    let previous = secret_at(&w.secrets, &w.secret, "AWSPREVIOUS")
        .await
        .unwrap();
    assert_eq!(previous["AccessKeyId"], w.key.access_key_id.as_str());
    assert_eq!(secret_at(&w.secrets, &w.secret, "AWSPENDING").await, None);
    // A step for a token that is not a version, or no longer pending.
    let e = w
        .step("createSecret", "00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert!(e.contains("is not one of its versions"), "{e}");
    let said = w.step("testSecret", T1).await.unwrap();
    assert!(
        said["did"].as_str().unwrap().contains("AWSCURRENT already"),
        "{said}"
    );
}

#[tokio::test]
async fn a_fresh_container_s_create_secret_with_the_same_token_makes_no_second_key() {
    let w = rotation_world("svc-kill").await;
    // The emulator's RotateSecret: AWSPENDING holds a copy of AWSCURRENT,
    // which is not taken for a new key.
    w.start(T1, true).await;
    w.step("createSecret", T1).await.expect("createSecret");
    let staged = secret_at(&w.secrets, &w.secret, "AWSPENDING")
        .await
        .unwrap();
    assert_ne!(staged["AccessKeyId"], w.key.access_key_id.as_str());
    // The container is gone (killed before finishSecret); Secrets Manager
    // starts over with the same token, in a new one.
    let fresh = rotation_world_again(&w).await;
    fresh
        .step("createSecret", T1)
        .await
        .expect("createSecret again");
    assert_eq!(w.keys("svc-kill").await.len(), 2);
    assert_eq!(
        secret_at(&w.secrets, &w.secret, "AWSPENDING")
            .await
            .unwrap(),
        staged,
        "the same staged key"
    );
    fresh.step("testSecret", T1).await.expect("testSecret");
    fresh.step("finishSecret", T1).await.expect("finishSecret");
    assert_eq!(
        secret_key(&w.secrets, &w.secret).await.access_key_id,
        staged["AccessKeyId"].as_str().unwrap()
    );
}

/// The same world seen from a new container: nothing shared but AWS.
async fn rotation_world_again(w: &RotationWorld) -> RotationWorld {
    let journal = w.shared.settings.journal.clone().unwrap();
    RotationWorld {
        admin: w.admin.clone(),
        account_id: w.account_id.clone(),
        key: w.key.clone(),
        secret: w.secret.clone(),
        secrets: w.secrets.clone(),
        shared: shared_as(&w.admin, &[("REKEY_JOURNAL", journal.as_str())], None),
    }
}

#[tokio::test]
async fn a_user_wedged_at_two_keys_gets_the_unused_one_deleted_but_never_one_in_use() {
    let w = rotation_world("svc-wedged").await;
    let seeder = crate::support::Seeder::new(&w.account_id, &sdk_config(&w.admin));
    // A leftover of an earlier rotator that died: active, never used.
    let leftover = seeder.add_key("svc-wedged", 50, true).await;
    moto().key_dates(
        &w.account_id,
        "svc-wedged",
        &leftover.access_key_id,
        50,
        None,
    );
    w.start(T1, false).await;
    w.step("createSecret", T1)
        .await
        .expect("createSecret frees the slot");
    let keys: Vec<String> = w
        .keys("svc-wedged")
        .await
        .into_iter()
        .map(|k| k.0)
        .collect();
    assert!(
        !keys.contains(&leftover.access_key_id),
        "the unused leftover is gone: {keys:?}"
    );
    assert!(keys.contains(&w.key.access_key_id));
    w.step("testSecret", T1).await.unwrap();
    w.step("finishSecret", T1).await.unwrap();

    // A second key someone uses is never deleted: the step fails, nothing changes.
    let w = rotation_world("svc-inuse").await;
    let other = seeder_of(&w).add_key("svc-inuse", 50, true).await;
    assert!(works(&other).await, "used now, after the old key was made");
    w.start(T1, false).await;
    let e = w.step("createSecret", T1).await.unwrap_err();
    assert!(e.contains("svc-inuse"), "{e}");
    let keys: Vec<String> = w.keys("svc-inuse").await.into_iter().map(|k| k.0).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&other.access_key_id));
    assert!(!e.contains(&other.secret_access_key) && !e.contains(&w.key.secret_access_key));
}

fn seeder_of(w: &RotationWorld) -> crate::support::Seeder {
    crate::support::Seeder::new(&w.account_id, &sdk_config(&w.admin))
}

#[tokio::test]
async fn a_secret_bound_to_no_user_or_without_rotation_is_refused_before_any_change() {
    let w = rotation_world("svc-unbound").await;
    w.start(T1, false).await;
    w.secrets
        .untag_resource()
        .secret_id(&w.secret)
        .tag_keys("rekey:user")
        .send()
        .await
        .unwrap();
    let e = w.step("createSecret", T1).await.unwrap_err();
    assert!(e.contains("bound to no IAM user"), "{e}");
    assert_eq!(w.keys("svc-unbound").await.len(), 1);
    let e = w.step("deleteSecret", T1).await.unwrap_err();
    assert!(e.contains("`deleteSecret` is not a rotation step"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_containers_racing_create_secret_on_one_token_make_one_key() {
    let w = rotation_world("svc-race").await;
    w.start(T1, false).await;
    let other = rotation_world_again(&w).await;
    // Two deliveries of one step at once (Secrets Manager retries while
    // the first is still running): the user's lease lets one act.
    let (a, b) = tokio::join!(w.step("createSecret", T1), other.step("createSecret", T1));
    assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
    assert_eq!(
        w.keys("svc-race").await.len(),
        2,
        "one new key: {a:?} {b:?}"
    );
    // Whichever lost, a retry finds the staged key and the rotation ends.
    w.step("createSecret", T1)
        .await
        .expect("createSecret retried");
    assert_eq!(w.keys("svc-race").await.len(), 2);
    other.step("testSecret", T1).await.expect("testSecret");
    w.step("finishSecret", T1).await.expect("finishSecret");
    let staged_and_current = secret_key(&w.secrets, &w.secret).await;
    assert_ne!(staged_and_current.access_key_id, w.key.access_key_id);
    assert!(works(&staged_and_current).await);
}

#[tokio::test]
async fn a_user_whose_name_holds_separators_is_rotated_by_its_tag() {
    // IAM allows `+=,.@_-` in a name: each may reach the tag, the journal's
    // keys and the messages.
    let user = "svc,a+b=c.d@e_f-g";
    let w = rotation_world(user).await;
    w.start(T1, false).await;
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let said = w
            .step(step, T1)
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}"));
        assert!(!said.to_string().contains(&w.key.secret_access_key));
    }
    let current = secret_key(&w.secrets, &w.secret).await;
    assert_ne!(current.access_key_id, w.key.access_key_id);
    assert!(works(&current).await);
    assert_eq!(w.keys(user).await.len(), 2, "the old key stays for enforce");
}
