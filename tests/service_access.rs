//! Issue 7, how IAM and a central secret are reached: a secret in another
//! member account than its user's, reached through `--secret-role` (or
//! `secret_role` in rekey.toml), and a `--service --profile` rotation that
//! a later run finishes through the journaled profile, whatever that run's
//! own default credentials are. Against the emulator, signatures enforced.

use std::path::Path;
use std::process::Output;

use crate::support::runner::{Runner, svc_in};
use crate::support::stores::{
    ServiceAccount, assert_no_secret_in, create_secret, creds_of, param_key, put_param, secret_at,
    secret_current, works,
};
use crate::support::{Creds, ROLE, code, moto, said, stderr, stdout};
#[cfg(feature = "fault-injection")]
use crate::support::{Home, Seeder, sdk_config, stores::secret_key};

/// Every byte of the journal's files (database, WAL), as text.
fn journal_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    text
}

/// User `svc` in member A, whose key sits in a secret of member B (a
/// central secrets account); the run's own credentials are the management
/// account's admin.
struct Central {
    /// The user's account (the test's own view of it, not rekey's).
    a: ServiceAccount,
    /// The central secrets account (the test's own view).
    b: ServiceAccount,
    key: Creds,
    arn: String,
    /// Runs as the management account's admin.
    runner: Runner,
}

impl Central {
    async fn new() -> Central {
        let org = moto().new_org(2);
        let a = ServiceAccount::of(&org, 0).await;
        let b = ServiceAccount::of(&org, 1).await;
        let key = a.seeder.service_user("svc", 100).await;
        // A name no other account holds: the emulator looks an ARN of
        // another account up by its name in the caller's own account.
        let name = format!("central/{}/svc", a.account_id);
        let arn = create_secret(&b.secrets, &name, &key).await;
        Central {
            a,
            b,
            key,
            arn,
            runner: Runner::new(&org.admin),
        }
    }

    /// `rekey rotate --account A --user svc --role R --to secretsmanager:ARN`.
    fn rotate(&self, env: &[(&str, &str)], extra: &[&str]) -> Output {
        let to = format!("secretsmanager:{}", self.arn);
        let mut args = svc_in(&self.a.account_id, &["--to", &to]);
        args.extend_from_slice(extra);
        self.runner.rotate_with(env, &args)
    }

    /// B's secret holds a new key of svc at AWSCURRENT that works, and the
    /// old one at AWSPREVIOUS; A's user has no key besides those two.
    async fn assert_rotated_into_b(&self, arn: &str, old: &Creds, user: &str) -> Creds {
        let current = secret_current(&self.b.secrets, arn).await;
        let new = creds_of(&current);
        assert_ne!(new.access_key_id, old.access_key_id);
        assert_eq!(current["Endpoint"], "db.internal:5432", "other fields kept");
        let previous = secret_at(&self.b.secrets, arn, "AWSPREVIOUS")
            .await
            .unwrap();
        assert_eq!(previous["AccessKeyId"], old.access_key_id.as_str());
        assert!(
            secret_at(&self.b.secrets, arn, "AWSPENDING")
                .await
                .is_none()
        );
        assert!(works(&new).await, "the new key works");
        let keys: Vec<String> = self
            .a
            .keys(user)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut expected = vec![new.access_key_id.clone(), old.access_key_id.clone()];
        expected.sort();
        assert_eq!(keys, expected, "no orphan key");
        assert_no_secret_in(
            self.runner.state.path(),
            &[&old.secret_access_key, &new.secret_access_key],
        );
        new
    }

    /// The run failed naming B and the flag, and left svc's key and B's
    /// secret as they were.
    async fn assert_refused_naming_b(&self, out: &Output) {
        let errors = stderr(out);
        assert_eq!(code(out), 2, "{}{errors}", stdout(out));
        assert!(
            errors.contains(&format!("in account {}", self.b.account_id))
                && errors.contains("--secret-role"),
            "{errors}"
        );
        assert_eq!(self.a.seeder.keys("svc").await.len(), 1, "no new key left");
        let current = secret_current(&self.b.secrets, &self.arn).await;
        assert_eq!(current["AccessKeyId"], self.key.access_key_id.as_str());
        assert!(
            secret_at(&self.b.secrets, &self.arn, "AWSPENDING")
                .await
                .is_none()
        );
        assert!(works(&self.key).await);
    }
}

#[tokio::test]
async fn a_secret_in_another_member_account_is_reached_through_the_secret_role_there() {
    let c = Central::new().await;
    let out = c.rotate(&[], &["--secret-role", ROLE]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    c.assert_rotated_into_b(&c.arn, &c.key, "svc").await;
    // The journal says how the secret was reached: the role in B, by ARN.
    let role_arn = format!("arn:aws:iam::{}:role/{ROLE}", c.b.account_id);
    assert!(journal_text(c.runner.state.path()).contains(&role_arn));
}

#[tokio::test]
async fn without_the_secret_role_a_secret_in_another_account_fails_clearly_and_changes_nothing() {
    let c = Central::new().await;
    let out = c.rotate(&[], &[]);
    c.assert_refused_naming_b(&out).await;
}

/// The secret in B is the *second* destination: the rotation gets past
/// reading the first (a parameter in A) and fails on B; it is undone and
/// the error still names B and the flag.
#[tokio::test]
async fn a_later_destination_in_another_account_without_the_role_is_undone_naming_the_flag() {
    let c = Central::new().await;
    put_param(&c.a.ssm, "/svc/first", &c.key).await;
    let to_b = format!("secretsmanager:{}", c.arn);
    let out = c.runner.rotate(&svc_in(
        &c.a.account_id,
        &["--to", "ssm:/svc/first", "--to", &to_b],
    ));
    c.assert_refused_naming_b(&out).await;
    assert_eq!(
        param_key(&c.a.ssm, "/svc/first").await.access_key_id,
        c.key.access_key_id
    );
}

/// `[[service]]` names the secret role for its user's secret in B; a
/// tag-bound user's secret in B is reached through `[rotate]`'s default
/// (a tag never names a role).
#[tokio::test]
async fn rekey_toml_names_the_secret_role_for_entries_and_tag_bound_users() {
    let c = Central::new().await;
    let tagged = c.a.seeder.service_user("svc-tagged", 100).await;
    let name = format!("central/{}/tagged", c.a.account_id);
    let tagged_arn = create_secret(&c.b.secrets, &name, &tagged).await;
    c.a.seeder
        .tag_destination("svc-tagged", &format!("secretsmanager:{tagged_arn}"))
        .await;
    let config = c.runner.file(
        "rekey.toml",
        &format!(
            "[rotate]\nsecret_role = \"{ROLE}\"\n\n\
             [[service]]\naccount = \"{}\"\nuser = \"svc\"\nto = [\"secretsmanager:{}\"]\n\
             secret_role = \"arn:aws:iam::{}:role/{ROLE}\"\n",
            c.a.account_id, c.arn, c.b.account_id
        ),
    );
    let out = c.runner.rotate(&[
        "--service",
        "--org",
        "--role",
        ROLE,
        "--config",
        config.to_str().unwrap(),
    ]);
    let text = said(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert_eq!(text.matches("[rotated]").count(), 2, "{text}");
    c.assert_rotated_into_b(&c.arn, &c.key, "svc").await;
    c.assert_rotated_into_b(&tagged_arn, &tagged, "svc-tagged")
        .await;
}

/// Killed right after delivering into B: a later run that names no secret
/// role, nor this user, finishes the rotation in B through the journaled
/// role.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_rotation_into_another_accounts_secret_killed_after_delivery_is_finished_there() {
    let c = Central::new().await;
    let first = c.rotate(
        &[("REKEY_CRASH_AT", "deliver:done")],
        &["--secret-role", ROLE],
    );
    assert_eq!(first.status.code(), None, "{}", stderr(&first));
    let pending = secret_at(&c.b.secrets, &c.arn, "AWSPENDING").await;
    assert!(pending.is_some(), "delivered, staged, before the crash");
    let current = secret_current(&c.b.secrets, &c.arn).await;
    assert_eq!(current["AccessKeyId"], c.key.access_key_id.as_str());
    // A run with no job at all (B has no bound user) finishes it.
    let second = c
        .runner
        .rotate(&["--service", "--account", &c.b.account_id, "--role", ROLE]);
    let text = stdout(&second);
    assert_eq!(code(&second), 0, "{text}{}", stderr(&second));
    let id = crate::support::rotation_id(&c.runner.journal(), 1);
    assert!(text.contains(&format!("finished rotation #{id}")), "{text}");
    let new = c.assert_rotated_into_b(&c.arn, &c.key, "svc").await;
    assert_eq!(pending.unwrap()["AccessKeyId"], new.access_key_id.as_str());
}

/// `--service --profile p1 --profile p2`, the profiles of two member
/// accounts: killed after delivering one user's key; a later run naming
/// only the other profile, whose default credentials are a third
/// account's, finishes that rotation through the journaled profile.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_profile_selected_rotation_is_finished_through_its_profile_not_the_default_credentials() {
    let org = moto().new_org(2);
    let third = moto().new_account();
    let runner = Runner::new(&third.admin);
    let mut members = Vec::new();
    for i in 0..org.members.len() {
        let member = ServiceAccount::of(&org, i).await;
        let admin = member.seeder.user_with_key("admin", &["*"], 1).await;
        runner.home.add_profile(&format!("p{}", i + 1), &admin);
        let key = member
            .user("svc", 100, Some("secretsmanager:svc/key"))
            .await;
        create_secret(&member.secrets, "svc/key", &key).await;
        members.push((member, key));
    }
    let rotate = |env: &[(&str, &str)], profiles: &[&str]| {
        let mut args = vec!["--service", "--concurrency", "1"];
        for p in profiles {
            args.extend_from_slice(&["--profile", p]);
        }
        runner.rotate_with(env, &args)
    };

    let first = rotate(&[("REKEY_CRASH_AT", "deliver:done")], &["p1", "p2"]);
    assert_eq!(first.status.code(), None, "{}", stderr(&first));
    let mut crashed = None;
    for (i, (member, _)) in members.iter().enumerate() {
        if secret_at(&member.secrets, "svc/key", "AWSPENDING")
            .await
            .is_some()
        {
            crashed = Some(i);
        }
    }
    let crashed = crashed.expect("one delivery before the crash");
    let other = format!("p{}", 2 - crashed);

    let second = rotate(&[], &[&other]);
    let text = stdout(&second);
    assert_eq!(code(&second), 0, "{text}{}", stderr(&second));
    let id = crate::support::rotation_id(&runner.journal(), 1);
    assert!(text.contains(&format!("finished rotation #{id}")), "{text}");
    assert!(text.contains("[rotated]"), "{text}");
    for (member, old) in &members {
        let account = &member.account_id;
        let new = secret_key(&member.secrets, "svc/key").await;
        assert_ne!(new.access_key_id, old.access_key_id, "{account}: {text}");
        let previous = secret_at(&member.secrets, "svc/key", "AWSPREVIOUS")
            .await
            .unwrap();
        assert_eq!(previous["AccessKeyId"], old.access_key_id.as_str());
        assert!(works(&new).await, "{account}: the new key works");
        assert_eq!(member.keys("svc").await.len(), 2, "{account}: no orphan");
    }
    let journal = journal_text(runner.state.path());
    assert!(
        journal.contains(r#""kind":"profile""#),
        "the way in is journaled"
    );
    assert_no_secret_in(
        runner.state.path(),
        &[&members[crashed].1.secret_access_key],
    );
}

/// `--service --org`: a member's destinations named by name are reached
/// through the role the account was entered with. Killed after delivering
/// into a secret and before writing a parameter, the next run reaches
/// both the same way and finishes (the journal keeps that role with each
/// destination), although its own credentials are the management
/// account's, where neither exists.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_rotation_into_a_members_own_secret_and_parameter_is_finished_through_its_role() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let a = &member.account_id;
    let key = member.user("svc", 100, None).await;
    create_secret(&member.secrets, "svc/key", &key).await;
    put_param(&member.ssm, "/svc/key", &key).await;
    let runner = Runner::new(&org.admin);
    let config = runner.file(
        "rekey.toml",
        &format!(
            "[[service]]\naccount = \"{a}\"\nuser = \"svc\"\nto = [\"secretsmanager:svc/key\", \"ssm:/svc/key\"]\n"
        ),
    );
    let rotate = |env: &[(&str, &str)]| {
        runner.rotate_with(
            env,
            &[
                "--service",
                "--org",
                "--role",
                ROLE,
                "--config",
                config.to_str().unwrap(),
            ],
        )
    };
    let first = rotate(&[("REKEY_CRASH_AT", "deliver:done")]);
    assert_eq!(first.status.code(), None, "{}", stderr(&first));
    let second = rotate(&[]);
    let text = stdout(&second);
    assert_eq!(code(&second), 0, "{text}{}", stderr(&second));
    let id = crate::support::rotation_id(&runner.journal(), 1);
    assert!(text.contains(&format!("finished rotation #{id}")), "{text}");
    let new = secret_key(&member.secrets, "svc/key").await;
    assert_ne!(new.access_key_id, key.access_key_id);
    assert!(works(&new).await);
    assert_eq!(
        param_key(&member.ssm, "/svc/key").await.access_key_id,
        new.access_key_id
    );
    assert_eq!(member.keys("svc").await.len(), 2, "no orphan");
    assert_no_secret_in(runner.state.path(), &[&new.secret_access_key]);
}

/// `--account X --user svc --to …` without `--role` goes in with the run's
/// own credentials (X's), and journals just that. Killed after creating
/// the new key, it must not be "finished" by a run whose own credentials
/// are another account's that happens to hold a user and a secret of the
/// same names: that run refuses it, naming both accounts, and changes
/// nothing there; a run with X's credentials then finishes it in X.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_rotation_with_the_callers_own_credentials_is_never_resumed_in_another_account() {
    let mut twins = Vec::new();
    for _ in 0..2 {
        let acct = moto().new_account();
        let seeder = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
        let key = seeder.service_user("svc", 100).await;
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk_config(&acct.admin));
        create_secret(&secrets, "svc/key", &key).await;
        twins.push((acct, seeder, secrets, key));
    }
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("journal.sqlite3");
    let run_as = |i: usize, env: &[(&str, &str)], args: &[&str]| {
        let home = Home::new().with_base(&twins[i].0.admin);
        let mut full = vec![
            "rotate",
            "--journal",
            journal.to_str().unwrap(),
            "--propagation-timeout",
            "20s",
        ];
        full.extend_from_slice(args);
        home.rekey_with(env, &full)
    };
    let x = twins[0].0.account_id.clone();
    let y = twins[1].0.account_id.clone();
    let to_x = [
        "--account",
        &x,
        "--user",
        "svc",
        "--to",
        "secretsmanager:svc/key",
    ];
    let first = run_as(0, &[("REKEY_CRASH_AT", "create_key:done")], &to_x);
    assert_eq!(first.status.code(), None, "{}", stderr(&first));
    assert_eq!(twins[0].1.keys("svc").await.len(), 2, "the new key, made");

    let wrong = run_as(1, &[], &["--service"]);
    let errors = stderr(&wrong);
    assert_eq!(code(&wrong), 2, "{}{errors}", stdout(&wrong));
    assert!(
        errors.contains(&format!("account {y}")) && errors.contains(&format!("account {x}")),
        "{errors}"
    );
    assert_eq!(
        twins[1].1.keys("svc").await,
        [(twins[1].3.access_key_id.clone(), "Active".to_string())],
        "the other account's user is untouched"
    );
    assert_eq!(twins[0].1.keys("svc").await.len(), 2, "left for X's run");

    let right = run_as(0, &[], &to_x);
    let text = stdout(&right);
    assert_eq!(code(&right), 0, "{text}{}", stderr(&right));
    assert!(
        text.contains(&format!(
            "rotation #{}",
            crate::support::rotation_id(&journal, 1)
        )),
        "{text}"
    );
    assert!(works(&secret_key(&twins[0].2, "svc/key").await).await);
    assert_eq!(
        twins[0].1.keys("svc").await.len(),
        2,
        "old kept, new: no orphan"
    );
    assert_eq!(
        secret_key(&twins[1].2, "svc/key").await.access_key_id,
        twins[1].3.access_key_id
    );
}
