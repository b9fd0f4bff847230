//! Issue 7's "Done when", the cases `service_keys.rs` leaves out: one
//! rotation into a secret *and* a parameter under a reader of both, a
//! secret another Lambda rotates refused against the emulator, each
//! `rotate --service` selector end to end, and no secret in any output of
//! a `--service` run. Signatures are enforced and the harness rejects
//! inactive keys, so "works" below means what it means in AWS.

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::support::runner::{Runner, svc_in};
use crate::support::stores::{
    ServiceAccount, assert_no_secret_in, assert_secret_untouched, create_secret, creds_of,
    param_at, param_key, put_param, secret_at, secret_key, secret_versions, works,
};
use crate::support::{Creds, Org, ROLE, code, json_out, moto, said, sdk_config, stderr, stdout};

/// A role in `member` the management account may assume, allowed
/// `actions`.
async fn role(member: &ServiceAccount, org: &Org, name: &str, actions: &[&str]) {
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:root", org.management_account_id)},
            "Action": "sts:AssumeRole",
        }],
    });
    member
        .seeder
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create role");
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    });
    member
        .seeder
        .iam
        .put_role_policy()
        .role_name(name)
        .policy_name("rekey")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("role policy");
}

/// stdout has exactly one line per user, `user U in account A: [STATUS] …`;
/// returns them in the order of `expected`.
fn one_line_per_user(o: &Output, account: &str, expected: &[(&str, &str)]) -> Vec<String> {
    let text = stdout(o);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), expected.len(), "{}", said(o));
    expected
        .iter()
        .map(|(user, status)| {
            let head = format!("user {user} in account {account}: [{status}]");
            let found: Vec<&&str> = lines.iter().filter(|l| l.starts_with(&head)).collect();
            assert_eq!(found.len(), 1, "{head}: {}", said(o));
            found[0].to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------
// 1. One reader, both destinations, one rotation.

/// The two places a consumer reads its key from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Secret,
    Param,
}

/// A consumer of both stores: the secret's AWSCURRENT and the parameter.
#[derive(Clone)]
struct Consumer {
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
    ssm: aws_sdk_ssm::Client,
    param: String,
}

impl Consumer {
    async fn read(&self, store: Store) -> Creds {
        match store {
            Store::Secret => secret_key(&self.secrets, &self.secret_id).await,
            Store::Param => param_key(&self.ssm, &self.param).await,
        }
    }

    /// Reads `store` and uses what it read, over and over until `stop`
    /// (and once more after). Returns every key ID read, and each time the
    /// store handed out a key that did not work: one that failed while the
    /// store still held it, read again right after the failure (a key
    /// retired just after an honest read is no fault of the store's).
    async fn poll(self, store: Store, stop: Arc<AtomicBool>) -> (Vec<String>, Vec<String>) {
        let mut seen = Vec::new();
        let mut broken = Vec::new();
        loop {
            let last = stop.load(Ordering::SeqCst);
            let key = self.read(store).await;
            if !works(&key).await && self.read(store).await.access_key_id == key.access_key_id {
                broken.push(format!(
                    "{store:?} held {}, which did not work",
                    key.access_key_id
                ));
            }
            seen.push(key.access_key_id);
            if last {
                return (seen, broken);
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
}

/// `rekey rotate --account A --user svc --to secretsmanager:ci/svc --to
/// ssm:/ci/svc --old-key OLD_KEY` while a consumer polls both; IAM rejects
/// the new key for 2 s after creating it.
async fn rotate_both_under_a_reader(old_key: &str) {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let key = member.user("svc", 100, None).await;
    // The destinations are the caller's: --to names them in its account.
    let caller = sdk_config(&org.admin);
    let consumer = Consumer {
        secrets: aws_sdk_secretsmanager::Client::new(&caller),
        secret_id: "ci/svc".into(),
        ssm: aws_sdk_ssm::Client::new(&caller),
        param: "/ci/svc".into(),
    };
    create_secret(&consumer.secrets, &consumer.secret_id, &key).await;
    put_param(&consumer.ssm, &consumer.param, &key).await;
    moto().new_key_delay(&member.account_id, 2.0, false, true);
    let runner = Runner::new(&org.admin);
    let command = runner.rotate_command(&svc_in(
        &member.account_id,
        &[
            "--to",
            "secretsmanager:ci/svc",
            "--to",
            "ssm:/ci/svc",
            "--old-key",
            old_key,
        ],
    ));
    let stop = Arc::new(AtomicBool::new(false));
    // One reader per store, each as often as it can.
    let readers = [Store::Secret, Store::Param]
        .map(|store| tokio::spawn(consumer.clone().poll(store, stop.clone())));
    let out = tokio::task::spawn_blocking(move || {
        let mut command = command;
        command.output().expect("run rekey")
    })
    .await
    .unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    let mut broken = Vec::new();
    for (store, reader) in [Store::Secret, Store::Param].into_iter().zip(readers) {
        let (keys, failed) = reader.await.unwrap();
        seen.extend(keys.into_iter().map(|k| (store, k)));
        broken.extend(failed);
    }
    moto().new_key_delay(&member.account_id, 0.0, false, false);

    assert_eq!(code(&out), 0, "{}", said(&out));
    let line = &one_line_per_user(&out, &member.account_id, &[("svc", "rotated")])[0];
    assert!(
        broken.is_empty(),
        "a reader got keys that failed: {broken:?}"
    );
    let new = consumer.read(Store::Secret).await;
    assert_ne!(new.access_key_id, key.access_key_id, "{line}");
    assert!(works(&new).await);
    for store in [Store::Secret, Store::Param] {
        assert_eq!(
            consumer.read(store).await.access_key_id,
            new.access_key_id,
            "{store:?}"
        );
        for id in [&key.access_key_id, &new.access_key_id] {
            assert!(
                seen.iter().any(|(s, k)| *s == store && k == id),
                "the reader never read {id} from {store:?}"
            );
        }
    }
    let previous = secret_at(&consumer.secrets, "ci/svc", "AWSPREVIOUS").await;
    assert_eq!(
        previous.map(|p| creds_of(&p).access_key_id),
        Some(key.access_key_id.clone())
    );
    assert_eq!(
        secret_at(&consumer.secrets, "ci/svc", "AWSPENDING").await,
        None
    );
    let (value, _) = param_at(&consumer.ssm, "/ci/svc").await;
    assert_eq!(value["Endpoint"], "db.internal:5432");
    let old_status = if old_key == "deactivate" {
        "Inactive"
    } else {
        "Active"
    };
    let mut expected = vec![
        (key.access_key_id.clone(), old_status.to_string()),
        (new.access_key_id.clone(), "Active".to_string()),
    ];
    expected.sort();
    assert_eq!(member.keys("svc").await, expected);
    assert_eq!(works(&key).await, old_key != "deactivate");
    assert_no_secret_in(
        runner.state.path(),
        &[&key.secret_access_key, &new.secret_access_key],
    );
}

#[tokio::test]
async fn a_reader_of_a_secret_and_a_parameter_rotated_together_always_holds_a_working_key() {
    rotate_both_under_a_reader("keep").await;
}

/// Here a wrong order would show: an old key deactivated before every
/// store holds the new one hands the reader a key that fails.
#[tokio::test]
async fn with_the_old_key_deactivated_the_reader_of_both_stores_never_reads_an_inactive_key() {
    rotate_both_under_a_reader("deactivate").await;
}

// ---------------------------------------------------------------------
// 2. A secret another Lambda rotates is refused.

fn lambda_of(account_id: &str) -> String {
    format!("arn:aws:lambda:us-east-1:{account_id}:function:rotate-ci-keys")
}

#[tokio::test]
async fn a_secret_rotated_by_another_lambda_is_refused_naming_both_and_nothing_changes() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let key = member.user("svc", 100, None).await;
    let caller = aws_sdk_secretsmanager::Client::new(&sdk_config(&org.admin));
    create_secret(&caller, "ci/rotated", &key).await;
    let lambda = lambda_of(&org.management_account_id);
    moto().secret_rotation(&org.management_account_id, "ci/rotated", &lambda);
    let versions = secret_versions(&caller, "ci/rotated").await;
    let keys = member.keys("svc").await;

    let runner = Runner::new(&org.admin);
    let out = runner.rotate(&svc_in(
        &member.account_id,
        &["--to", "secretsmanager:ci/rotated"],
    ));
    assert_eq!(code(&out), 2, "{}", said(&out));
    let err = stderr(&out);
    assert!(
        err.contains("secretsmanager:ci/rotated") && err.contains(&lambda),
        "{err}"
    );
    assert!(!stdout(&out).contains("[rotated]"), "{}", said(&out));
    assert_eq!(member.keys("svc").await, keys, "no new IAM key");
    assert_secret_untouched(&caller, "ci/rotated", &versions, &key.access_key_id).await;
}

#[tokio::test]
async fn with_service_a_secret_rotated_by_another_lambda_fails_only_its_user() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let held = member.user_in_secret("svc-held", 100).await;
    let free = member.user_in_secret("svc-free", 100).await;
    let lambda = lambda_of(&member.account_id);
    moto().secret_rotation(&member.account_id, "svc-held", &lambda);
    let versions = secret_versions(&member.secrets, "svc-held").await;

    let runner = Runner::new(&org.admin);
    let out = runner.rotate(&["--service", "--account", &member.account_id, "--role", ROLE]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    one_line_per_user(&out, &member.account_id, &[("svc-free", "rotated")]);
    let err = stderr(&out);
    assert!(
        err.contains("svc-held") && err.contains(&lambda) && !err.contains("svc-free"),
        "{err}"
    );
    // The refused user: untouched.
    assert_eq!(
        member.keys("svc-held").await,
        [(held.access_key_id.clone(), "Active".to_string())]
    );
    assert_secret_untouched(&member.secrets, "svc-held", &versions, &held.access_key_id).await;
    // The other: rotated.
    let new = secret_key(&member.secrets, "svc-free").await;
    assert_ne!(new.access_key_id, free.access_key_id);
    assert!(works(&new).await);
    assert_eq!(member.keys("svc-free").await.len(), 2);
}

// ---------------------------------------------------------------------
// 3. `--service` selectors, end to end.

#[tokio::test]
async fn service_dry_run_says_what_it_would_rotate_per_user_and_changes_nothing() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let in_secret = member.user_in_secret("svc-sm", 100).await;
    let in_param = member.user("svc-ssm", 100, Some("ssm:/svc/ssm")).await;
    put_param(&member.ssm, "/svc/ssm", &in_param).await;
    let versions = secret_versions(&member.secrets, "svc-sm").await;
    let (_, param_version) = param_at(&member.ssm, "/svc/ssm").await;
    let keys = (member.keys("svc-sm").await, member.keys("svc-ssm").await);

    let runner = Runner::new(&org.admin);
    let out = runner.rotate(&[
        "--service",
        "--account",
        &member.account_id,
        "--role",
        ROLE,
        "--dry-run",
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let lines = one_line_per_user(
        &out,
        &member.account_id,
        &[("svc-sm", "would"), ("svc-ssm", "would")],
    );
    // Which key of which user, and where the new one would go.
    for (line, (user, key, to)) in lines.iter().zip([
        ("svc-sm", &in_secret, "secretsmanager:svc-sm"),
        ("svc-ssm", &in_param, "ssm:/svc/ssm"),
    ]) {
        let id = &key.access_key_id;
        let masked = format!("{}…{}", &id[..4], &id[id.len() - 4..]);
        assert!(
            line.contains(&format!(
                "rotate {masked} of user {user} in account {}",
                member.account_id
            )) && line.contains(&format!("write the new key to {to}, verify it")),
            "{line}"
        );
    }
    assert_eq!(
        (member.keys("svc-sm").await, member.keys("svc-ssm").await),
        keys
    );
    assert_eq!(secret_versions(&member.secrets, "svc-sm").await, versions);
    assert_eq!(param_at(&member.ssm, "/svc/ssm").await.1, param_version);
    assert!(!runner.journal().exists(), "a dry run made a journal");
    assert_eq!(std::fs::read_dir(runner.state.path()).unwrap().count(), 0);
}

/// Two members with a bound user each; returns them and their keys.
async fn two_members(org: &Org) -> [(ServiceAccount, Creds); 2] {
    let first = ServiceAccount::of(org, 0).await;
    let second = ServiceAccount::of(org, 1).await;
    let k1 = first.user_in_secret("svc", 100).await;
    let k2 = second.user_in_secret("svc", 100).await;
    [(first, k1), (second, k2)]
}

/// Member `rotated` rotated `svc` (the secret holds a new, working key),
/// and `left` was not looked at (one key, the secret unchanged).
async fn only_first_rotated(
    out: &Output,
    rotated: &(ServiceAccount, Creds),
    left: &(ServiceAccount, Creds),
) {
    assert_eq!(code(out), 0, "{}", said(out));
    one_line_per_user(out, &rotated.0.account_id, &[("svc", "rotated")]);
    let new = secret_key(&rotated.0.secrets, "svc").await;
    assert_ne!(new.access_key_id, rotated.1.access_key_id);
    assert!(works(&new).await);
    assert_eq!(rotated.0.keys("svc").await.len(), 2);
    assert_eq!(
        left.0.keys("svc").await,
        [(left.1.access_key_id.clone(), "Active".to_string())]
    );
    assert_eq!(
        secret_key(&left.0.secrets, "svc").await.access_key_id,
        left.1.access_key_id
    );
}

#[tokio::test]
async fn service_with_an_accounts_file_rotates_only_the_accounts_it_lists() {
    let org = moto().new_org(2);
    let [first, second] = two_members(&org).await;
    let runner = Runner::new(&org.admin);
    let file = runner.file(
        "accounts.txt",
        &format!(
            "# the accounts of team ci\n{}  # ci-prod\n\n",
            first.0.account_id
        ),
    );
    let out = runner.rotate(&[
        "--service",
        "--accounts",
        file.to_str().unwrap(),
        "--role",
        ROLE,
    ]);
    only_first_rotated(&out, &first, &second).await;
}

#[tokio::test]
async fn service_with_org_and_ou_rotates_only_users_in_accounts_under_that_ou() {
    let org = moto().new_org(2);
    let [first, second] = two_members(&org).await;
    let orgs = aws_sdk_organizations::Client::new(&sdk_config(&org.admin));
    let roots = orgs.list_roots().send().await.unwrap();
    let root = roots.roots()[0].id().unwrap().to_string();
    let ou = orgs
        .create_organizational_unit()
        .parent_id(&root)
        .name("services")
        .send()
        .await
        .unwrap();
    let ou = ou.organizational_unit().unwrap().id().unwrap().to_string();
    orgs.move_account()
        .account_id(&first.0.account_id)
        .source_parent_id(&root)
        .destination_parent_id(&ou)
        .send()
        .await
        .unwrap();
    let runner = Runner::new(&org.admin);
    let out = runner.rotate(&["--service", "--org", "--ou", &ou, "--role", ROLE]);
    only_first_rotated(&out, &first, &second).await;
}

#[tokio::test]
async fn service_with_org_leaves_an_excluded_account_alone() {
    let org = moto().new_org(2);
    let [first, second] = two_members(&org).await;
    let runner = Runner::new(&org.admin);
    let out = runner.rotate(&[
        "--service",
        "--org",
        "--exclude-account",
        &second.0.account_id,
        "--role",
        ROLE,
    ]);
    only_first_rotated(&out, &first, &second).await;
}

/// Each `[[service]]` entry's own role and old-key action: the run's role
/// may read users and stores but not touch keys, so a rotation that did
/// not go through the entry's role would be denied.
#[tokio::test]
async fn a_service_entry_with_its_own_role_deactivates_or_deletes_the_old_key_as_it_says() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    role(
        &member,
        &org,
        "Reader",
        &[
            "iam:Get*",
            "iam:List*",
            "sts:GetCallerIdentity",
            "secretsmanager:*",
            "ssm:*",
            "kms:*",
        ],
    )
    .await;
    role(
        &member,
        &org,
        "Rotator",
        &["iam:*", "sts:GetCallerIdentity"],
    )
    .await;
    let deact = member.user("svc-deact", 100, None).await;
    create_secret(&member.secrets, "svc/deact", &deact).await;
    let del = member.user("svc-del", 100, None).await;
    put_param(&member.ssm, "/svc/del", &del).await;
    let runner = Runner::new(&org.admin);
    let account = &member.account_id;
    let config = runner.file(
        "rekey.toml",
        &format!(
            "[[service]]\naccount = \"{account}\"\nuser = \"svc-deact\"\nto = [\"secretsmanager:svc/deact\"]\nrole = \"Rotator\"\nold_key = \"deactivate\"\n\n\
             [[service]]\naccount = \"{account}\"\nuser = \"svc-del\"\nto = [\"ssm:/svc/del\"]\nrole = \"Rotator\"\nold_key = \"delete\"\n"
        ),
    );
    let out = runner.rotate(&[
        "--service",
        "--account",
        account,
        "--role",
        "Reader",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let lines = one_line_per_user(
        &out,
        account,
        &[("svc-deact", "rotated"), ("svc-del", "rotated")],
    );
    assert!(lines[0].contains("deactivated"), "{}", lines[0]);
    assert!(lines[1].contains("deleted"), "{}", lines[1]);

    let new = secret_key(&member.secrets, "svc/deact").await;
    assert!(works(&new).await);
    let mut expected = vec![
        (deact.access_key_id.clone(), "Inactive".to_string()),
        (new.access_key_id.clone(), "Active".to_string()),
    ];
    expected.sort();
    assert_eq!(member.keys("svc-deact").await, expected);
    assert!(!works(&deact).await, "the old key is inactive");

    let new = param_key(&member.ssm, "/svc/del").await;
    assert!(works(&new).await);
    assert_eq!(
        member.keys("svc-del").await,
        [(new.access_key_id.clone(), "Active".to_string())]
    );
    assert!(!works(&del).await, "the old key is deleted");
}

#[tokio::test]
async fn service_with_max_age_rotates_the_due_user_and_leaves_the_other() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let due = member.user_in_secret("svc-due", 100).await;
    let fresh = member.user_in_secret("svc-fresh", 10).await;
    let runner = Runner::new(&org.admin);
    let out = runner.rotate(&[
        "--service",
        "--account",
        &member.account_id,
        "--role",
        ROLE,
        "--max-age",
        "90d",
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    one_line_per_user(
        &out,
        &member.account_id,
        &[("svc-due", "rotated"), ("svc-fresh", "not due")],
    );
    let new = secret_key(&member.secrets, "svc-due").await;
    assert_ne!(new.access_key_id, due.access_key_id);
    assert!(works(&new).await);
    assert_eq!(member.keys("svc-due").await.len(), 2);
    assert_eq!(
        member.keys("svc-fresh").await,
        [(fresh.access_key_id.clone(), "Active".to_string())]
    );
    assert_eq!(
        secret_key(&member.secrets, "svc-fresh").await.access_key_id,
        fresh.access_key_id
    );
}

// ---------------------------------------------------------------------
// 4. No secret in any output.

#[tokio::test]
async fn a_verbose_json_service_run_prints_and_journals_no_secret() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let in_secret = member.user_in_secret("svc-sm", 100).await;
    let in_param = member.user("svc-ssm", 100, Some("ssm:/svc/ssm")).await;
    put_param(&member.ssm, "/svc/ssm", &in_param).await;
    // A user whose secret holds its inactive key: refused, and the error
    // quotes no secret either.
    member
        .user("svc-odd", 100, Some("secretsmanager:svc-odd"))
        .await;
    let inactive = member.seeder.add_key("svc-odd", 5, false).await;
    create_secret(&member.secrets, "svc-odd", &inactive).await;
    let runner = Runner::new(&org.admin);
    let out = runner.rotate(&[
        "-vv",
        "--service",
        "--account",
        &member.account_id,
        "--role",
        ROLE,
        "--output",
        "json",
    ]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        stderr(&out).contains("user svc-odd in account ")
            && stderr(&out).contains(": key AKIA…")
            && stderr(&out)
                .contains("is Inactive; a profile or destination must hold an active key"),
        "{}",
        stderr(&out)
    );
    let reports = json_out(&out);
    let reports = reports.as_array().expect("an array");
    // Every user the run considered, the refused one too (issue 15 #4).
    assert_eq!(reports.len(), 3, "{}", stdout(&out));
    assert!(
        reports
            .iter()
            .any(|r| r["user_name"] == "svc-odd" && r["status"] == "refused"),
        "{}",
        stdout(&out)
    );
    let new_sm = secret_key(&member.secrets, "svc-sm").await;
    let new_ssm = param_key(&member.ssm, "/svc/ssm").await;
    for new in [&new_sm, &new_ssm] {
        assert!(
            reports
                .iter()
                .any(|r| r["status"] == "rotated" && r["new_key_id"] == new.access_key_id.as_str()),
            "{}",
            stdout(&out)
        );
    }
    let history = runner.home.rekey(&[
        "history",
        "--journal",
        runner.journal().to_str().unwrap(),
        "--steps",
    ]);
    assert_eq!(code(&history), 0, "{}", stderr(&history));
    let secrets = [
        &inactive.secret_access_key,
        &in_secret.secret_access_key,
        &in_param.secret_access_key,
        &new_sm.secret_access_key,
        &new_ssm.secret_access_key,
    ];
    for (what, text) in [
        ("stdout", stdout(&out)),
        ("stderr", stderr(&out)),
        ("history", stdout(&history)),
    ] {
        for secret in secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into {what}"
            );
        }
    }
    let secrets: Vec<&str> = secrets.iter().map(|s| s.as_str()).collect();
    assert_no_secret_in(runner.state.path(), &secrets);
    assert!(
        !stderr(&out).is_empty(),
        "-vv logs something, or this test proves little"
    );
}

/// The tag's own form for several destinations: entries separated by a
/// space (IAM tag values allow no comma). The SDK sends the space as `%20`.
#[tokio::test]
async fn one_tag_naming_a_secret_and_a_parameter_rotates_into_both() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let old = member
        .user("svc", 100, Some("secretsmanager:svc/both ssm:/svc/both"))
        .await;
    create_secret(&member.secrets, "svc/both", &old).await;
    put_param(&member.ssm, "/svc/both", &old).await;
    let runner = Runner::new(&org.admin);
    let out = runner.rotate(&["--service", "--org", "--role", ROLE]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    one_line_per_user(&out, &member.account_id, &[("svc", "rotated")]);
    let in_secret = secret_key(&member.secrets, "svc/both").await;
    let in_param = param_key(&member.ssm, "/svc/both").await;
    assert_ne!(in_secret.access_key_id, old.access_key_id);
    assert_eq!(in_param.access_key_id, in_secret.access_key_id);
    assert_eq!(in_param.secret_access_key, in_secret.secret_access_key);
    assert!(works(&in_secret).await);
    // --old-key keep, the default for these destinations.
    assert!(works(&old).await);
}

/// Two `rotate --service` runs at once (two cron entries, a retry started
/// by hand) over the same users and journal: the lease lets each user be
/// rotated once; the other run finds the user taken (it names the run
/// holding it and exits 2, as the README says) or the key not due.
#[tokio::test]
async fn two_service_runs_at_once_rotate_each_user_once() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let users = ["svc-a", "svc-b", "svc-c"];
    let mut old = Vec::new();
    for user in users {
        old.push(member.user_in_secret(user, 100).await);
    }
    let runner = Runner::new(&org.admin);
    let args = [
        "--service",
        "--account",
        &member.account_id,
        "--role",
        ROLE,
        "--max-age",
        "90d",
    ];
    let runs: Vec<_> = (0..2)
        .map(|_| runner.rotate_command(&args).spawn().expect("start rekey"))
        .collect();
    let outs: Vec<Output> = runs
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outs {
        match code(out) {
            0 => {}
            2 => {
                let err = stderr(out);
                assert!(!err.is_empty(), "{}", said(out));
                for line in err.lines() {
                    assert!(line.contains("is being rotated by run "), "{}", said(out));
                }
            }
            other => panic!("exit {other}: {}", said(out)),
        }
    }
    for (user, old) in users.iter().zip(&old) {
        // One new key: the old one (kept) and exactly one more.
        let keys = member.keys(user).await;
        assert_eq!(keys.len(), 2, "{user}: {keys:?}");
        let held = secret_key(&member.secrets, user).await;
        assert_ne!(held.access_key_id, old.access_key_id, "{user}");
        assert!(
            keys.iter().any(|(id, _)| *id == held.access_key_id),
            "{user}"
        );
        assert!(works(&held).await, "{user}");
        let rotated = outs
            .iter()
            .filter(|o| {
                stdout(o).lines().any(|l| {
                    l.starts_with(&format!("user {user} in account")) && l.contains("[rotated]")
                })
            })
            .count();
        assert_eq!(
            rotated,
            1,
            "{user}: {}\n---\n{}",
            said(&outs[0]),
            said(&outs[1])
        );
    }
}

/// Every separator a tag value and a secret name allow (`/ + = . @ - _`),
/// and a user name holding `+ = , . @ - _`: bound by tag, killed right
/// after delivery, finished by the next run in the same secret — the
/// journal gave back exactly the names it was given.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn odd_user_and_secret_names_survive_a_kill_and_are_finished_by_the_next_run() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let user = "svc+ci=1,x.y@z-w_v";
    let secret = "ci/svc+a=b.c@d-e_f";
    let old = member
        .user(user, 100, Some(&format!("secretsmanager:{secret}")))
        .await;
    create_secret(&member.secrets, secret, &old).await;
    let runner = Runner::new(&org.admin);
    let args = ["--service", "--org", "--role", ROLE];
    let killed = runner.rotate_with(&[("REKEY_CRASH_AT", "deliver:done")], &args);
    assert_eq!(killed.status.code(), None, "killed: {}", said(&killed));
    let pending = secret_at(&member.secrets, secret, "AWSPENDING").await;
    assert!(pending.is_some(), "delivered before the kill");
    let out = runner.rotate(&args);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let new = secret_key(&member.secrets, secret).await;
    assert_ne!(new.access_key_id, old.access_key_id);
    assert!(works(&new).await);
    let keys = member.keys(user).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().any(|(id, _)| *id == new.access_key_id));
    assert!(
        secret_at(&member.secrets, secret, "AWSPENDING")
            .await
            .is_none()
    );
    let history = json_out(&runner.history());
    let rows = history.as_array().expect("history is a list");
    assert_eq!(rows.len(), 1, "{history}");
    assert_eq!(rows[0]["outcome"], "completed", "{history}");
    assert_eq!(rows[0]["user_name"], user, "{history}");
    assert_eq!(rows[0]["destinations"][0]["secret_id"], secret, "{history}");
}

/// The read-back before the old key is retired, for a secret: killed
/// right before it, AWSCURRENT is put back to the old key (an operator's
/// restore) while the parameter keeps the new one; the resumed run finds
/// the secret no longer holds the new key, leaves the old key active and
/// exits 2 saying why.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_secret_rewritten_before_the_read_back_keeps_its_old_key_working() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let old = member
        .user("svc", 100, Some("secretsmanager:svc ssm:/svc"))
        .await;
    create_secret(&member.secrets, "svc", &old).await;
    put_param(&member.ssm, "/svc", &old).await;
    let runner = Runner::new(&org.admin);
    let args = [
        "--service",
        "--account",
        &member.account_id,
        "--role",
        ROLE,
        "--old-key",
        "deactivate",
    ];
    let killed = runner.rotate_with(&[("REKEY_CRASH_AT", "confirm_delivery:begin")], &args);
    assert_eq!(killed.status.code(), None, "killed: {}", said(&killed));
    assert_ne!(
        secret_key(&member.secrets, "svc").await.access_key_id,
        old.access_key_id
    );
    // An operator's restore: AWSCURRENT back on the version of the old key.
    let versions = secret_versions(&member.secrets, "svc").await;
    let holder = |stage: &str| {
        versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(id, _)| id.clone())
            .expect(stage)
    };
    member
        .secrets
        .update_secret_version_stage()
        .secret_id("svc")
        .version_stage("AWSCURRENT")
        .move_to_version_id(holder("AWSPREVIOUS"))
        .remove_from_version_id(holder("AWSCURRENT"))
        .send()
        .await
        .expect("put the old key back");
    assert_eq!(
        secret_key(&member.secrets, "svc").await.access_key_id,
        old.access_key_id
    );
    let out = runner.rotate(&args);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        stderr(&out).contains("no longer holds the new key"),
        "{}",
        said(&out)
    );
    assert_eq!(
        secret_key(&member.secrets, "svc").await.access_key_id,
        old.access_key_id
    );
    assert!(
        works(&old).await,
        "the old key the secret holds still works"
    );
}

/// The tag names destinations only, never a role: an entry that tries
/// (`role=arn:…`) is a bad entry, named in the error; that user is left
/// alone and exit is 2.
#[tokio::test]
async fn a_tag_entry_naming_a_role_is_refused_and_nothing_changes() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let entry = format!("role=arn:aws:iam::{}:role/{ROLE}", member.account_id);
    let old = member
        .user("svc", 100, Some(&format!("secretsmanager:svc {entry}")))
        .await;
    create_secret(&member.secrets, "svc", &old).await;
    let runner = Runner::new(&org.admin);
    let out = runner.rotate(&["--service", "--org", "--role", ROLE]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        said(&out).contains(&format!(
            "holds `{entry}`, which is not secretsmanager:NAME"
        )),
        "{}",
        said(&out)
    );
    assert_eq!(
        member.keys("svc").await,
        [(old.access_key_id.clone(), "Active".to_string())]
    );
    assert_eq!(
        secret_key(&member.secrets, "svc").await.access_key_id,
        old.access_key_id
    );
}
