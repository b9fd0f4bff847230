//! `rekey policy iam`: each mode's workload, run against the emulator with
//! its auth enforced, succeeds with exactly the policy the command prints
//! and fails with AccessDenied when any one of its actions is taken away.

use std::future::Future;
use std::process::Output;

use serde_json::{Value, json};

use crate::support::stores::{create_secret, param_key, put_param, secret_key};
use crate::support::{
    Creds, Home, Seeder, code, json_out, key, member_config, moto, said, sdk_config, stdout,
};

/// `rekey policy iam ARGS`, parsed.
fn policy(args: &[&str]) -> Value {
    let out = Home::new().rekey(&[&["policy", "iam"], args].concat());
    assert_eq!(code(&out), 0, "{}", said(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

fn actions_of(doc: &Value) -> Vec<String> {
    (doc["Statement"].as_array().unwrap().iter())
        .flat_map(|s| s["Action"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// What moto names a call IAM authorises as other actions: IAM knows no
/// TransactWriteItems or SendMessageBatch, it checks the Put and Delete a
/// transaction holds and SendMessage for each message of a batch; moto
/// checks the operation's own name.
const MOTO_NAMES: &[(&str, &[&str])] = &[
    (
        "dynamodb:TransactWriteItems",
        &["dynamodb:PutItem", "dynamodb:DeleteItem"],
    ),
    ("sqs:SendMessageBatch", &["sqs:SendMessage"]),
];

/// The policy the emulator is given for `actions`. moto evaluates identity
/// policies by action only: it checks every request against Resource "*",
/// so a statement scoped to an ARN would never match there (DESIGN.md).
/// Here each action is proven needed and enough; the scoping is checked by
/// the unit tests of `rekey::permissions` and by the deploy checkers.
fn for_emulator(actions: &[String]) -> Value {
    let mut all: Vec<String> = actions.to_vec();
    for (name, needs) in MOTO_NAMES {
        if needs.iter().all(|n| actions.iter().any(|a| a == n)) {
            all.push(name.to_string());
        }
    }
    json!({"Version": "2012-10-17",
           "Statement": [{"Effect": "Allow", "Action": all, "Resource": "*"}]})
}

/// What a failed workload said.
fn failed(what: &str, out: &Output) -> String {
    format!("{what}: exit {}: {}", code(out), said(out))
}

/// Actions only a recovery calls, which no workload here reaches: the
/// parameter's earlier value read back from its history when a run resumed
/// after a kill must put it back (`destination::ssm`, rollback). They stay
/// in the policy; their removal is not tried.
const RECOVERY_ONLY: &[&str] = &["ssm:GetParameterHistory"];

fn denied(text: &str) -> bool {
    text.contains("AccessDenied") || text.contains("not authorized")
}

/// Runs `workload` with exactly `doc`'s actions, then once without each of
/// them: it must succeed, then fail each time, saying access was denied.
async fn each_action_is_needed<W, F>(mode: &str, doc: &Value, workload: W)
where
    W: Fn(Value) -> F,
    F: Future<Output = Result<(), String>>,
{
    each_action_is_needed_beside(mode, doc, &[], workload).await
}

/// [`each_action_is_needed`] for a mode whose workload also needs `base`
/// (another mode's actions), granted every time.
async fn each_action_is_needed_beside<W, F>(mode: &str, doc: &Value, base: &[String], workload: W)
where
    W: Fn(Value) -> F,
    F: Future<Output = Result<(), String>>,
{
    let actions = actions_of(doc);
    let with_base = |some: &[String]| for_emulator(&[some, base].concat());
    if let Err(e) = workload(with_base(&actions)).await {
        panic!("{mode}: with exactly its policy: {e}");
    }
    for action in actions
        .iter()
        .filter(|a| !RECOVERY_ONLY.contains(&a.as_str()))
    {
        let fewer: Vec<String> = actions.iter().filter(|a| *a != action).cloned().collect();
        match workload(with_base(&fewer)).await {
            Ok(()) => panic!("{mode}: {action} is not needed: the workload succeeded without it"),
            Err(e) => assert!(denied(&e), "{mode}: without {action}, not a denial: {e}"),
        }
    }
}

/// A fresh account, its admin's seeder, and a home whose credentials are
/// those of `operator`, a user allowed exactly `doc`.
struct World {
    account_id: String,
    admin: Seeder,
    secrets: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    home: Home,
}

impl World {
    async fn new(doc: &Value) -> World {
        let acct = moto().new_account();
        let config = sdk_config(&acct.admin);
        let admin = Seeder::new(&acct.account_id, &config);
        let operator = admin.user_with_policy("operator", doc, 1).await;
        let home = Home::new().with_base(&operator);
        World {
            account_id: acct.account_id,
            admin,
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            home,
        }
    }

    /// A service user whose key is `age_days` old and held by `to`
    /// (`secretsmanager:NAME` or `ssm:/PATH`), bound by its tag.
    async fn bound(&self, user: &str, age_days: i64, to: &str) -> Creds {
        let creds = self.admin.service_user(user, age_days).await;
        self.admin.tag_destination(user, to).await;
        match to.split_once(':') {
            Some(("secretsmanager", name)) => {
                create_secret(&self.secrets, name, &creds).await;
            }
            Some(("ssm", path)) => put_param(&self.ssm, path, &creds).await,
            _ => panic!("{to}"),
        }
        creds
    }

    /// A member account of a new organization whose role `name` holds
    /// `doc`; `operator`, a user of the management account allowed only to
    /// assume it, enters it as rekey's `--role` does.
    async fn with_role(name: &str, doc: &Value) -> World {
        let org = moto().new_org(1);
        let mgmt = Seeder::new(&org.management_account_id, &sdk_config(&org.admin));
        let only_assume = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": "*"}]});
        let operator = mgmt.user_with_policy("operator", &only_assume, 1).await;
        let account_id = org.members[0].account_id.clone();
        let config = member_config(&org, &account_id).await;
        let admin = Seeder::new(&account_id, &config);
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:user/operator", org.management_account_id)},
            "Action": "sts:AssumeRole"}]});
        (admin.iam.create_role().role_name(name))
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("create role");
        (admin
            .iam
            .put_role_policy()
            .role_name(name)
            .policy_name("rekey"))
        .policy_document(doc.to_string())
        .send()
        .await
        .expect("role policy");
        World {
            account_id,
            admin,
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            home: Home::new().with_base(&operator),
        }
    }

    fn run(&self, what: &str, args: &[&str]) -> Result<Output, String> {
        let out = self.home.rekey(args);
        match code(&out) {
            0 => Ok(out),
            _ => Err(failed(what, &out)),
        }
    }
}

/// The audit, from the credential report and from per-user calls, of an
/// account with an old key.
async fn audit_workload(doc: Value) -> Result<(), String> {
    let w = World::new(&doc).await;
    (w.admin.user("alice", "/", &[], &[], &[key(120, Some(3))])).await;
    for source in ["report", "api"] {
        let out = w.home.rekey(&["audit", "--source", source, "-o", "json"]);
        // 1: findings (alice's key is too old); 2: an account failed.
        if code(&out) != 1 {
            return Err(failed(&format!("audit --source {source}"), &out));
        }
        let got = json_out(&out);
        let alice = got.to_string().contains("alice");
        if !alice {
            return Err(format!("audit --source {source} did not find alice: {got}"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn audit_needs_exactly_its_policy() {
    let doc = policy(&["--mode", "audit"]);
    each_action_is_needed("audit", &doc, audit_workload).await;
}

/// A person rotating their own profile's key, whose other active key was
/// last used before it was made: that one is deleted to free its slot, the
/// old one deactivated.
async fn rotate_self_workload(doc: Value) -> Result<(), String> {
    let acct = moto().new_account();
    let seeder = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    let dev = seeder.user_with_policy("dev", &doc, 100).await;
    let other = seeder.add_key("dev", 200, true).await;
    moto().key_dates(
        &acct.account_id,
        "dev",
        &other.access_key_id,
        200,
        Some(150),
    );
    let home = Home::new();
    home.add_profile("dev", &dev);
    let out = home.rekey(&["rotate", "--profile", "dev", "--delete-other-active"]);
    if code(&out) != 0 {
        return Err(failed("rotate --profile dev", &out));
    }
    let keys = seeder.keys("dev").await;
    let new_active = keys
        .iter()
        .filter(|(id, s)| *id != dev.access_key_id && s == "Active")
        .count();
    match (keys.len(), new_active) {
        (2, 1) => Ok(()),
        _ => Err(format!("after the rotation: {keys:?}")),
    }
}

#[tokio::test]
async fn rotate_self_needs_exactly_its_policy() {
    let doc = policy(&["--mode", "rotate-self"]);
    each_action_is_needed("rotate-self", &doc, rotate_self_workload).await;
}

/// Service users rotated into a secret and a parameter (`--service`, the
/// users bound by tag, a member account entered through the role), and one
/// named with `--user` in the caller's own account, its old key
/// deactivated and another active key it no longer uses deleted to free
/// its slot.
async fn service_workload(doc: Value) -> Result<(), String> {
    let w = World::with_role("rekey-service", &doc).await;
    let sm = w.bound("svc-sm", 100, "secretsmanager:rekey/svc-sm").await;
    let ps = w.bound("svc-ps", 100, "ssm:/rekey/svc-ps").await;
    let role = ["--role", "rekey-service"];
    let service = ["rotate", "--service", "--account", &w.account_id];
    w.run("rotate --service", &[&service[..], &role].concat())?;
    let own = World::new(&doc).await;
    let named = own.admin.service_user("svc-named", 100).await;
    // Another active key, last used before the user's key was made: freed.
    let other = own.admin.add_key("svc-named", 300, true).await;
    moto().key_dates(
        &own.account_id,
        "svc-named",
        &other.access_key_id,
        300,
        Some(150),
    );
    create_secret(&own.secrets, "rekey/svc-named", &named).await;
    let user = [
        "rotate",
        "--account",
        &own.account_id,
        "--user",
        "svc-named",
    ];
    let to = [
        "--to",
        "secretsmanager:rekey/svc-named",
        "--old-key",
        "deactivate",
        "--delete-other-active",
    ];
    own.run("rotate --user", &[&user[..], &to].concat())?;
    let moved = [
        secret_key(&w.secrets, "rekey/svc-sm").await.access_key_id != sm.access_key_id,
        param_key(&w.ssm, "/rekey/svc-ps").await.access_key_id != ps.access_key_id,
        (secret_key(&own.secrets, "rekey/svc-named").await).access_key_id != named.access_key_id,
    ];
    match moved {
        [true, true, true] => Ok(()),
        other => Err(format!(
            "destinations holding a new key (secret, parameter, named): {other:?}"
        )),
    }
}

#[tokio::test]
async fn service_needs_exactly_its_policy() {
    let doc = policy(&["--mode", "service"]);
    each_action_is_needed("service", &doc, service_workload).await;
}

/// Enforce in a member account, through its role: an unbound key past its
/// deactivation date is deactivated and, after the recovery window,
/// deleted; bound users' keys are rotated into a secret and a parameter
/// and the replaced keys retired after the grace.
async fn enforce_workload(doc: Value) -> Result<(), String> {
    let w = World::with_role("rekey-enforce", &doc).await;
    let stale = w.admin.service_user("stale", 120).await;
    moto().key_dates(&w.account_id, "stale", &stale.access_key_id, 120, Some(30));
    let sm = w.bound("svc-sm", 100, "secretsmanager:rekey/svc-sm").await;
    let ps = w.bound("svc-ps", 100, "ssm:/rekey/svc-ps").await;
    let run = [
        "enforce",
        "--apply",
        "--account",
        &w.account_id,
        "--role",
        "rekey-enforce",
    ];
    let journal = w.home.path().join("journal.sqlite3");
    let journal = ["--journal", journal.to_str().unwrap(), "-o", "json"];
    let first = w.run("enforce --apply", &[&run[..], &journal].concat())?;
    all_done(
        "enforce --apply",
        &first,
        &["deactivate", "rotate", "rotate"],
    )?;
    let later = [&run[..], &journal, &["--as-of", "+8d"]].concat();
    let second = w.run("enforce --apply --as-of +8d", &later)?;
    all_done(
        "enforce --as-of +8d",
        &second,
        &["delete", "retire", "retire"],
    )?;
    let stale_keys = w.admin.keys("stale").await;
    let retired = |keys: Vec<(String, String)>, old: &str| {
        keys.iter().any(|(id, s)| id == old && s == "Inactive") && keys.len() == 2
    };
    let done = [
        stale_keys.is_empty(),
        retired(w.admin.keys("svc-sm").await, &sm.access_key_id),
        retired(w.admin.keys("svc-ps").await, &ps.access_key_id),
        secret_key(&w.secrets, "rekey/svc-sm").await.access_key_id != sm.access_key_id,
        param_key(&w.ssm, "/rekey/svc-ps").await.access_key_id != ps.access_key_id,
    ];
    match done {
        [true, true, true, true, true] => Ok(()),
        other => Err(format!(
            "stale deleted, svc-sm and svc-ps retired, secret and parameter moved: {other:?}"
        )),
    }
}

/// Every action of an enforce run is one of `wanted` (sorted) and done.
fn all_done(what: &str, out: &Output, wanted: &[&str]) -> Result<(), String> {
    let got = json_out(out);
    let results = got["results"].as_array().cloned().unwrap_or_default();
    let mut actions: Vec<&str> = (results.iter())
        .filter(|r| r["action"] != "skip")
        .map(|r| r["action"].as_str().unwrap_or("?"))
        .collect();
    actions.sort();
    let done = results
        .iter()
        .all(|r| r["action"] == "skip" || r["result"] == "done");
    match (actions == wanted, done) {
        (true, true) => Ok(()),
        _ => Err(format!("{what}: not every action wanted and done: {got:#}")),
    }
}

#[tokio::test]
async fn enforce_needs_exactly_its_policy() {
    let doc = policy(&["--mode", "enforce"]);
    each_action_is_needed("enforce", &doc, enforce_workload).await;
}

/// A profile's rotation journaled in a DynamoDB table, then its history
/// read back from it; the table made beforehand by its admin. The journal
/// is reached with the run's own credentials (`writer`'s, allowed the
/// policy under test), the rotation with the profile's (allowed
/// rotate-self's).
async fn journal_workload(doc: Value) -> Result<(), String> {
    let acct = moto().new_account();
    let seeder = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    let rotate_self = policy(&["--mode", "rotate-self"]);
    let dev = seeder
        .user_with_policy("dev", &for_emulator(&actions_of(&rotate_self)), 100)
        .await;
    let writer = seeder.user_with_policy("writer", &doc, 1).await;
    let admin = Home::new().with_base(&acct.admin);
    let init = admin.rekey(&["journal", "init", "--dynamodb", "rekey-journal"]);
    assert_eq!(code(&init), 0, "{}", said(&init));
    let home = Home::new().with_base(&writer);
    home.add_profile("dev", &dev);
    let table = ["--journal", "dynamodb:rekey-journal"];
    let out = home.rekey(&[&["rotate", "--profile", "dev"][..], &table].concat());
    if code(&out) != 0 {
        return Err(failed("rotate --journal dynamodb:…", &out));
    }
    let out = home.rekey(&[&["history", "-o", "json"][..], &table].concat());
    if code(&out) != 0 || !stdout(&out).contains("dev") {
        return Err(failed("history --journal dynamodb:…", &out));
    }
    Ok(())
}

#[tokio::test]
async fn journal_needs_exactly_its_policy() {
    let doc = policy(&["--mode", "journal"]);
    each_action_is_needed("journal", &doc, journal_workload).await;
}
