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
    each_action_is_needed_but(mode, doc, &[], &[], workload).await
}

/// [`each_action_is_needed`] for a workload that also needs `base`
/// (granted every time), the removal of `untried` (each with why no
/// workload here calls it) not tried: they stay granted.
async fn each_action_is_needed_but<W, F>(
    mode: &str,
    doc: &Value,
    base: &[String],
    untried: &[&str],
    workload: W,
) where
    W: Fn(Value) -> F,
    F: Future<Output = Result<(), String>>,
{
    let actions = actions_of(doc);
    for a in untried {
        assert!(
            actions.iter().any(|x| x == a),
            "{mode}: {a} is not in the policy"
        );
    }
    let with_base = |some: &[String]| for_emulator(&[some, base].concat());
    if let Err(e) = workload(with_base(&actions)).await {
        panic!("{mode}: with exactly its policy: {e}");
    }
    let tried =
        |a: &&String| !RECOVERY_ONLY.contains(&a.as_str()) && !untried.contains(&a.as_str());
    for action in actions.iter().filter(tried) {
        let fewer: Vec<String> = actions.iter().filter(|a| *a != action).cloned().collect();
        match workload(with_base(&fewer)).await {
            Ok(()) => panic!("{mode}: {action} is not needed: the workload succeeded without it"),
            Err(e) => assert!(denied(&e), "{mode}: without {action}, not a denial: {e}"),
        }
    }
}

/// A fresh account, its admin's seeder, and a home whose credentials are
/// those of `operator`, a user allowed exactly `doc`.
// The function's side (home account, operator) is read by the Lambda
// tests alone.
#[cfg_attr(not(feature = "lambda"), allow(dead_code))]
struct World {
    /// The account rekey works in (a member, for a world with a role).
    account_id: String,
    /// The account `operator` lives in, and its admin.
    home_account: String,
    home_admin: Creds,
    operator: Creds,
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
            home_account: acct.account_id.clone(),
            home_admin: acct.admin.clone(),
            operator,
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
        let only_assume = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": "*"}]});
        World::with_role_for(name, doc, &only_assume).await
    }

    /// [`World::with_role`] with `operator` allowed `own` (the Lambda
    /// function's policy, say) instead of only assuming the role.
    async fn with_role_for(name: &str, doc: &Value, own: &Value) -> World {
        let org = moto().new_org(1);
        let mgmt = Seeder::new(&org.management_account_id, &sdk_config(&org.admin));
        let operator = mgmt.user_with_policy("operator", own, 1).await;
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
            home_account: org.management_account_id.clone(),
            home_admin: org.admin.clone(),
            home: Home::new().with_base(&operator),
            operator,
            admin,
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
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
    enforce_through(
        &World::with_role("rekey-enforce", &doc).await,
        "rekey-enforce",
    )
    .await
}

/// [`enforce_workload`] in `w`'s account, entered through `role`.
async fn enforce_through(w: &World, role: &str) -> Result<(), String> {
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
        role,
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

/// The roles of the Lambda deployment: the member role (the StackSet's)
/// and the function's own.
#[cfg(feature = "lambda")]
mod deployed {
    use rekey::error::error_chain;
    use rekey::lambda::{Shared, handle};
    use serde_json::{Value, json};

    use super::{
        World, actions_of, each_action_is_needed, each_action_is_needed_but, enforce_through,
        for_emulator, policy,
    };
    use crate::support::function::{FUNCTION, invocation, shared_as};
    use crate::support::stores::{create_secret, secret_key};
    use crate::support::{Creds, moto, sdk_config};

    const TOKEN: &str = "5d0c7b4e-2f1a-4c3b-9e8d-7a6b5c4d3e2f";

    async fn invoke(shared: &Shared, what: &str, event: Value) -> Result<Value, String> {
        (handle(shared, event, &invocation(what)).await)
            .map_err(|e| format!("{what}: {}", error_chain(&e)))
    }

    /// AWS Config's periodic event for `account_id`.
    fn periodic(account_id: &str) -> Value {
        let invoking = json!({"awsAccountId": account_id, "notificationCreationTime": "2026-12-08T00:00:00.000Z",
                              "messageType": "ScheduledNotification", "recordVersion": "1.0"});
        json!({"version": "1.0", "invokingEvent": invoking.to_string(), "ruleParameters": "{}",
               "resultToken": "permissions-test", "eventLeftScope": false,
               "executionRoleArn": format!("arn:aws:iam::{account_id}:role/config-role"),
               "configRuleArn": format!("arn:aws:config:us-east-1:{account_id}:config-rule/config-rule-1"),
               "configRuleName": "rekey-access-keys", "configRuleId": "config-rule-1", "accountId": account_id})
    }

    /// What the deployed function does in a member account through the
    /// member role: enforce (as a worker does), the Config rule's
    /// evaluation, and a rotation function's four steps for a member's
    /// user whose secret is in the function's account.
    async fn member_workload(doc: Value) -> Result<(), String> {
        let function = for_emulator(&actions_of(&policy(&["--mode", "lambda"])));
        let w = World::with_role_for("rekey-member", &doc, &function).await;
        enforce_through(&w, "rekey-member").await?;
        let role = [("REKEY_ROLE", "rekey-member")];
        invoke(
            &shared_as(&w.operator, &role, None),
            "config rule",
            periodic(&w.account_id),
        )
        .await?;
        rotation_function(&w).await
    }

    /// A member's user `svc-rot` whose key is in a secret of the function's
    /// account, bound by its `rekey:user` tag: the four steps, then the
    /// secret holds a new key.
    async fn rotation_function(w: &World) -> Result<(), String> {
        let key = w.admin.service_user("svc-rot", 100).await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(&w.home_admin));
        rekey::journal::dynamo::init(&ddb, "rekey-journal")
            .await
            .expect("journal table");
        let vars = [
            ("REKEY_ROLE", "rekey-member"),
            ("REKEY_JOURNAL", "dynamodb:rekey-journal"),
        ];
        let user = format!("arn:aws:iam::{}:user/svc-rot", w.account_id);
        four_steps(w, &shared_as(&w.operator, &vars, None), &user, &key).await
    }

    /// A secret `rekey/NAME` of the function's account holding `key`, bound
    /// to `user` (a name there, or another account's user's ARN) by its
    /// `rekey:user` tag, rotated through the four steps: then it holds a
    /// new key.
    async fn four_steps(w: &World, shared: &Shared, user: &str, key: &Creds) -> Result<(), String> {
        let name = format!("rekey/{}", user.rsplit('/').next().unwrap());
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk_config(&w.home_admin));
        let secret = create_secret(&secrets, &name, key).await;
        let tag = aws_sdk_secretsmanager::types::Tag::builder()
            .key("rekey:user")
            .value(user)
            .build();
        (secrets.tag_resource().secret_id(&secret).tags(tag))
            .send()
            .await
            .expect("tag the secret");
        moto().secret_pending(&w.home_account, &secret, TOKEN, FUNCTION, false);
        for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
            let event = json!({"Step": step, "SecretId": secret, "ClientRequestToken": TOKEN});
            invoke(shared, step, event).await?;
        }
        match secret_key(&secrets, &name).await.access_key_id != key.access_key_id {
            true => Ok(()),
            false => Err(format!(
                "the rotation function's secret {name} still holds the old key"
            )),
        }
    }

    /// Calls Lambda itself makes with the function's role, not rekey: the
    /// SQS event source mapping's (the test plays it with the admin's
    /// credentials) and the runtime's log delivery.
    const LAMBDA_ITSELF: &[&str] = &[
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ];
    /// The notifications' statements: `--mode notify`'s own, whose test
    /// proves each (the worker leaves an undelivered notice owed, exit 4,
    /// and its message done).
    const NOTIFY: &[&str] = &[
        "sns:Publish",
        "ses:SendEmail",
        "organizations:DescribeAccount",
    ];

    /// What the function does with its own role: the schedule lists the
    /// organization under its root (`REKEY_OUS`), but its own account, and
    /// sends the work; a
    /// worker enforces the member account through the member role,
    /// journaled in DynamoDB; the rotation function rotates a user of its
    /// own account whose other key is unused (deleted to free the slot);
    /// the Config rule evaluates its own account.
    async fn lambda_workload(doc: Value) -> Result<(), String> {
        let member = for_emulator(&actions_of(&policy(&["--mode", "member"])));
        let w = World::with_role_for("rekey-member", &member, &doc).await;
        let home = sdk_config(&w.home_admin);
        let sqs = aws_sdk_sqs::Client::new(&home);
        let url = (sqs.create_queue().queue_name("rekey-work").send().await)
            .expect("queue")
            .queue_url()
            .unwrap()
            .to_string();
        let ddb = aws_sdk_dynamodb::Client::new(&home);
        rekey::journal::dynamo::init(&ddb, "rekey-journal")
            .await
            .expect("journal table");
        let orgs = aws_sdk_organizations::Client::new(&home);
        let roots = orgs.list_roots().send().await.expect("roots");
        let root = roots.roots()[0].id().unwrap().to_string();
        let stale = w.admin.service_user("stale", 120).await;
        moto().key_dates(&w.account_id, "stale", &stale.access_key_id, 120, Some(30));
        let vars = [
            ("REKEY_ROLE", "rekey-member"),
            ("REKEY_JOURNAL", "dynamodb:rekey-journal"),
            ("REKEY_QUEUE_URL", url.as_str()),
            ("REKEY_OUS", root.as_str()),
            ("REKEY_NO_NOTIFY", "true"),
        ];
        // The function's own account is left out: its role enforces nothing
        // there (README, "Deploying rekey").
        let config = w.home.path().join("rekey.toml");
        let toml = format!("[audit]\nexclude_accounts = [\"{}\"]\n", w.home_account);
        std::fs::write(&config, toml).unwrap();
        let shared = shared_as(&w.operator, &vars, Some(config));
        let denied = || {
            moto().control("denied", json!({"account_id": w.home_account}))["denied"].to_string()
        };
        invoke(&shared, "schedule", scheduled()).await?;
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await;
        let messages = got.expect("receive").messages().to_vec();
        if messages.len() != 1 {
            return Err(format!(
                "the schedule sent {} messages; denied: {}",
                messages.len(),
                denied()
            ));
        }
        let answer = invoke(&shared, "worker", sqs_event(&messages)).await?;
        if answer["batchItemFailures"] != json!([]) {
            return Err(format!(
                "the worker failed its message: {answer}; denied: {}",
                denied()
            ));
        }
        if w.admin
            .keys("stale")
            .await
            .iter()
            .any(|(_, s)| s == "Active")
        {
            return Err(format!(
                "the worker did not deactivate stale's key; denied: {}",
                denied()
            ));
        }
        own_rotation(&w, &shared).await?;
        invoke(&shared, "config rule", periodic(&w.home_account)).await?;
        Ok(())
    }

    /// The rotation function on a user of the function's own account.
    async fn own_rotation(w: &World, shared: &Shared) -> Result<(), String> {
        let seeder = crate::support::Seeder::new(&w.home_account, &sdk_config(&w.home_admin));
        let key = seeder.service_user("svc-own", 100).await;
        let other = seeder.add_key("svc-own", 300, true).await;
        let dates = (&w.home_account, "svc-own", &other.access_key_id);
        moto().key_dates(dates.0, dates.1, dates.2, 300, Some(150));
        four_steps(w, shared, "svc-own", &key).await
    }

    fn scheduled() -> Value {
        json!({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
               "source": "aws.events", "account": "123456789012", "time": "2026-12-08T03:00:00Z",
               "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/rekey"],
               "detail": {}})
    }

    /// The batch as Lambda's event source mapping hands it over.
    fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> Value {
        let records: Vec<Value> = (messages.iter())
            .map(|m| {
                json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                       "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1796688000000"},
                       "messageAttributes": {}, "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs",
                       "eventSourceARN": "arn:aws:sqs:us-east-1:111111111111:rekey-work", "awsRegion": "us-east-1"})
            })
            .collect();
        json!({ "Records": records })
    }

    #[tokio::test]
    async fn lambda_needs_exactly_its_policy() {
        let doc = policy(&["--mode", "lambda"]);
        let untried = [LAMBDA_ITSELF, NOTIFY].concat();
        each_action_is_needed_but("lambda", &doc, &[], &untried, lambda_workload).await;
    }

    #[tokio::test]
    async fn member_needs_exactly_its_policy() {
        let doc = policy(&["--mode", "member"]);
        each_action_is_needed("member", &doc, member_workload).await;
    }
}

/// Notifications from the management account: a member's key
/// deactivated by an enforce run (the admin's, with nothing sent), then
/// `rekey notify` by `operator` tells the account's email (its owner of
/// last resort, from Organizations), the SNS topic and the chat webhook
/// whose URL is in a secret. `operator` also needs to enter the member
/// (`sts:AssumeRole`, granted beside the policy under test).
async fn notify_workload(doc: Value) -> Result<(), String> {
    use crate::support::notify::{drain, ses_sent, topic_with_queue, verify_sender};
    let org = moto().new_org(1);
    let mgmt_id = org.management_account_id.clone();
    let member = org.members[0].account_id.clone();
    let config = sdk_config(&org.admin);
    verify_sender(&config, "rekey@example.com").await;
    let (topic, queue) = topic_with_queue(&config, "rekey-notifications").await;
    let webhook = crate::support::webhook::Webhook::start();
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    (secrets
        .create_secret()
        .name("rekey/webhook")
        .secret_string(webhook.url()))
    .send()
    .await
    .expect("webhook secret");
    let seeder = crate::support::member_seeder(&org, &member).await;
    let stale = seeder.service_user("stale", 120).await;
    moto().key_dates(&member, "stale", &stale.access_key_id, 120, Some(30));
    let operator = Seeder::new(&mgmt_id, &config)
        .user_with_policy("operator", &doc, 1)
        .await;
    let state = tempfile::tempdir().unwrap();
    let toml = state.path().join("rekey.toml");
    let settings = format!(
        "[notify]\nsns_topic = \"{topic}\"\nemail_from = \"rekey@example.com\"\nwebhook = \"secretsmanager:rekey/webhook\"\n"
    );
    std::fs::write(&toml, settings).unwrap();
    let journal = state.path().join("journal.sqlite3");
    let scope = [
        "--account",
        &member,
        "--role",
        crate::support::ROLE,
        "--config",
        toml.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
    ];
    let admin = Home::new().with_base(&org.admin);
    let enforced = admin.rekey(&[&["enforce", "--apply", "--no-notify"][..], &scope].concat());
    assert_eq!(code(&enforced), 0, "{}", said(&enforced));
    let home = Home::new().with_base(&operator);
    let out = home.rekey(&[&["notify"][..], &scope].concat());
    if code(&out) != 0 {
        return Err(failed("rekey notify", &out));
    }
    let delivered = [
        !ses_sent(Some(&mgmt_id)).is_empty(),
        !drain(&config, &queue).await.is_empty(),
        !webhook.received().is_empty(),
    ];
    match delivered {
        [true, true, true] => Ok(()),
        other => Err(format!("delivered by email, SNS, webhook: {other:?}")),
    }
}

#[tokio::test]
async fn notify_needs_exactly_its_policy() {
    let doc = policy(&["--mode", "notify"]);
    let assume = ["sts:AssumeRole".to_string()];
    each_action_is_needed_but("notify", &doc, &assume, &[], notify_workload).await;
}
