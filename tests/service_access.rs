//! Issue 7, how IAM and a central secret are reached: a secret in another
//! member account than its user's, reached through `--secret-role` (or
//! `secret_role` in rekey.toml), and a `--service --profile` rotation that
//! a later run finishes through the journaled profile, whatever that run's
//! own default credentials are. Against the emulator, signatures enforced.

use std::path::Path;

use aws_sdk_secretsmanager::Client as Secrets;
use serde_json::{Value, json};

use crate::support::stores::{param_key, put_param};
use crate::support::{Creds, Home, Seeder, code, member_config, moto, sdk_config, stderr, stdout};

const ROLE: &str = "OrganizationAccountAccessRole";

async fn create_secret(client: &Secrets, name: &str, key: &Creds) -> String {
    let value = json!({
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret_access_key,
        "Endpoint": "db.internal:5432",
    });
    let out = client
        .create_secret()
        .name(name)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create secret");
    out.arn().expect("arn").to_string()
}

/// The secret's JSON at `stage`, None when no version has it.
async fn secret_at(client: &Secrets, id: &str, stage: &str) -> Option<Value> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await
        .ok()?;
    Some(serde_json::from_str(out.secret_string().unwrap()).unwrap())
}

fn creds_of(value: &Value) -> Creds {
    Creds {
        access_key_id: value["AccessKeyId"].as_str().unwrap().to_string(),
        secret_access_key: value["SecretAccessKey"].as_str().unwrap().to_string(),
    }
}

/// Whether STS accepts `key` now.
async fn works(key: &Creds) -> bool {
    aws_sdk_sts::Client::new(&sdk_config(key))
        .get_caller_identity()
        .send()
        .await
        .is_ok()
}

/// Every byte of the journal's files (database, WAL), as text.
fn journal_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    text
}

async fn tag(seeder: &Seeder, user: &str, value: &str) {
    seeder
        .iam
        .tag_user()
        .user_name(user)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("rekey:destination")
                .value(value)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("tag user");
}

/// User `svc` in member A, whose key sits in a secret of member B (a
/// central secrets account); the run's own credentials are the management
/// account's admin.
struct Central {
    a: String,
    b: String,
    seeder: Seeder,
    key: Creds,
    /// Reaches B's secrets (the test's own view, not rekey's).
    in_b: Secrets,
    /// Reaches A's parameters (the test's own view).
    ssm_in_a: aws_sdk_ssm::Client,
    arn: String,
    home: Home,
    state: tempfile::TempDir,
}

impl Central {
    async fn new() -> Central {
        let org = moto().new_org(2);
        let a = org.members[0].account_id.clone();
        let b = org.members[1].account_id.clone();
        let in_a = member_config(&org, &a).await;
        let seeder = Seeder::new(&a, &in_a);
        let ssm_in_a = aws_sdk_ssm::Client::new(&in_a);
        let key = seeder
            .user_with_key("svc", &["sts:GetCallerIdentity"], 100)
            .await;
        let in_b = Secrets::new(&member_config(&org, &b).await);
        // A name no other account holds: the emulator looks an ARN of
        // another account up by its name in the caller's own account.
        let arn = create_secret(&in_b, &format!("central/{a}/svc"), &key).await;
        let home = Home::new().with_base(&org.admin);
        Central {
            a,
            b,
            seeder,
            key,
            in_b,
            ssm_in_a,
            arn,
            home,
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn journal(&self) -> String {
        self.state
            .path()
            .join("journal.sqlite3")
            .to_str()
            .unwrap()
            .to_string()
    }

    /// `rekey rotate --account A --user svc --role R --to secretsmanager:ARN`.
    fn rotate(&self, env: &[(&str, &str)], extra: &[&str]) -> std::process::Output {
        let journal = self.journal();
        let to = format!("secretsmanager:{}", self.arn);
        let mut args = vec![
            "rotate",
            "--journal",
            &journal,
            "--account",
            &self.a,
            "--user",
            "svc",
            "--role",
            ROLE,
            "--to",
            &to,
            "--propagation-timeout",
            "20s",
        ];
        args.extend_from_slice(extra);
        self.home.rekey_with(env, &args)
    }

    /// B's secret holds a new key of svc at AWSCURRENT that works, and the
    /// old one at AWSPREVIOUS; A's user has no key besides those two.
    async fn assert_rotated_into_b(&self, arn: &str, old: &Creds, user: &str) -> Creds {
        let current = secret_at(&self.in_b, arn, "AWSCURRENT").await.unwrap();
        let new = creds_of(&current);
        assert_ne!(new.access_key_id, old.access_key_id);
        assert_eq!(current["Endpoint"], "db.internal:5432", "other fields kept");
        let previous = secret_at(&self.in_b, arn, "AWSPREVIOUS").await.unwrap();
        assert_eq!(previous["AccessKeyId"], old.access_key_id.as_str());
        assert!(secret_at(&self.in_b, arn, "AWSPENDING").await.is_none());
        assert!(works(&new).await, "the new key works");
        let mut keys: Vec<String> = self
            .seeder
            .keys(user)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        let mut expected = vec![new.access_key_id.clone(), old.access_key_id.clone()];
        expected.sort();
        assert_eq!(keys, expected, "no orphan key");
        let journal = journal_text(self.state.path());
        assert!(
            !journal.contains(&old.secret_access_key) && !journal.contains(&new.secret_access_key),
            "the journal holds a secret"
        );
        new
    }
}

#[tokio::test]
async fn a_secret_in_another_member_account_is_reached_through_the_secret_role_there() {
    let c = Central::new().await;
    let out = c.rotate(&[], &["--secret-role", ROLE]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    c.assert_rotated_into_b(&c.arn, &c.key, "svc").await;
    // The journal says how the secret was reached: the role in B, by ARN.
    let role_arn = format!("arn:aws:iam::{}:role/{ROLE}", c.b);
    assert!(journal_text(c.state.path()).contains(&role_arn));
}

#[tokio::test]
async fn without_the_secret_role_a_secret_in_another_account_fails_clearly_and_changes_nothing() {
    let c = Central::new().await;
    let out = c.rotate(&[], &[]);
    let errors = stderr(&out);
    assert_eq!(code(&out), 2, "{}{errors}", stdout(&out));
    assert!(
        errors.contains(&format!("in account {}", c.b)) && errors.contains("--secret-role"),
        "{errors}"
    );
    assert_eq!(c.seeder.keys("svc").await.len(), 1, "no new key left");
    let current = secret_at(&c.in_b, &c.arn, "AWSCURRENT").await.unwrap();
    assert_eq!(current["AccessKeyId"], c.key.access_key_id.as_str());
    assert!(secret_at(&c.in_b, &c.arn, "AWSPENDING").await.is_none());
    assert!(works(&c.key).await);
}

/// The secret in B is the *second* destination: the rotation gets past
/// reading the first (a parameter in A) and fails on B; it is undone and
/// the error still names B and the flag.
#[tokio::test]
async fn a_later_destination_in_another_account_without_the_role_is_undone_naming_the_flag() {
    let c = Central::new().await;
    put_param(&c.ssm_in_a, "/svc/first", &c.key).await;
    let journal = c.journal();
    let to_b = format!("secretsmanager:{}", c.arn);
    let out = c.home.rekey(&[
        "rotate",
        "--journal",
        &journal,
        "--account",
        &c.a,
        "--user",
        "svc",
        "--role",
        ROLE,
        "--to",
        "ssm:/svc/first",
        "--to",
        &to_b,
        "--propagation-timeout",
        "20s",
    ]);
    let errors = stderr(&out);
    assert_eq!(code(&out), 2, "{}{errors}", stdout(&out));
    assert!(
        errors.contains(&format!("in account {}", c.b)) && errors.contains("--secret-role"),
        "{errors}"
    );
    assert_eq!(c.seeder.keys("svc").await.len(), 1, "no new key left");
    assert_eq!(
        param_key(&c.ssm_in_a, "/svc/first").await.access_key_id,
        c.key.access_key_id
    );
    let current = secret_at(&c.in_b, &c.arn, "AWSCURRENT").await.unwrap();
    assert_eq!(current["AccessKeyId"], c.key.access_key_id.as_str());
    assert!(secret_at(&c.in_b, &c.arn, "AWSPENDING").await.is_none());
    assert!(works(&c.key).await);
}

/// `[[service]]` names the secret role for its user's secret in B; a
/// tag-bound user's secret in B is reached through `[rotate]`'s default
/// (a tag never names a role).
#[tokio::test]
async fn rekey_toml_names_the_secret_role_for_entries_and_tag_bound_users() {
    let c = Central::new().await;
    let tagged = c
        .seeder
        .user_with_key("svc-tagged", &["sts:GetCallerIdentity"], 100)
        .await;
    let tagged_arn = create_secret(&c.in_b, &format!("central/{}/tagged", c.a), &tagged).await;
    tag(
        &c.seeder,
        "svc-tagged",
        &format!("secretsmanager:{tagged_arn}"),
    )
    .await;
    let config = c.home.path().join("rekey.toml");
    std::fs::write(
        &config,
        format!(
            "[rotate]\nsecret_role = \"{ROLE}\"\n\n\
             [[service]]\naccount = \"{}\"\nuser = \"svc\"\nto = [\"secretsmanager:{}\"]\n\
             secret_role = \"arn:aws:iam::{}:role/{ROLE}\"\n",
            c.a, c.arn, c.b
        ),
    )
    .unwrap();
    let journal = c.journal();
    let out = c.home.rekey(&[
        "rotate",
        "--service",
        "--org",
        "--role",
        ROLE,
        "--config",
        config.to_str().unwrap(),
        "--journal",
        &journal,
        "--propagation-timeout",
        "20s",
    ]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
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
    let pending = secret_at(&c.in_b, &c.arn, "AWSPENDING").await;
    assert!(pending.is_some(), "delivered, staged, before the crash");
    let current = secret_at(&c.in_b, &c.arn, "AWSCURRENT").await.unwrap();
    assert_eq!(current["AccessKeyId"], c.key.access_key_id.as_str());
    // A run with no job at all (B has no bound user) finishes it.
    let journal = c.journal();
    let second = c.home.rekey(&[
        "rotate",
        "--service",
        "--account",
        &c.b,
        "--role",
        ROLE,
        "--journal",
        &journal,
        "--propagation-timeout",
        "20s",
    ]);
    let text = stdout(&second);
    assert_eq!(code(&second), 0, "{text}{}", stderr(&second));
    assert!(text.contains("finished rotation #1"), "{text}");
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
    let home = Home::new().with_base(&third.admin);
    let mut members = Vec::new();
    for (i, m) in org.members.iter().enumerate() {
        let config = member_config(&org, &m.account_id).await;
        let seeder = Seeder::new(&m.account_id, &config);
        let admin = seeder.user_with_key("admin", &["*"], 1).await;
        home.add_profile(&format!("p{}", i + 1), &admin);
        let key = seeder
            .user_with_key("svc", &["sts:GetCallerIdentity"], 100)
            .await;
        let secrets = Secrets::new(&config);
        create_secret(&secrets, "svc/key", &key).await;
        tag(&seeder, "svc", "secretsmanager:svc/key").await;
        members.push((m.account_id.clone(), seeder, secrets, key));
    }
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("journal.sqlite3");
    let rotate = |env: &[(&str, &str)], profiles: &[&str]| {
        let mut args = vec![
            "rotate",
            "--service",
            "--journal",
            journal.to_str().unwrap(),
            "--concurrency",
            "1",
            "--propagation-timeout",
            "20s",
        ];
        for p in profiles {
            args.extend_from_slice(&["--profile", p]);
        }
        home.rekey_with(env, &args)
    };

    let first = rotate(&[("REKEY_CRASH_AT", "deliver:done")], &["p1", "p2"]);
    assert_eq!(first.status.code(), None, "{}", stderr(&first));
    let mut crashed = None;
    for (i, (_, _, secrets, _)) in members.iter().enumerate() {
        if secret_at(secrets, "svc/key", "AWSPENDING").await.is_some() {
            crashed = Some(i);
        }
    }
    let crashed = crashed.expect("one delivery before the crash");
    let other = format!("p{}", 2 - crashed);

    let second = rotate(&[], &[&other]);
    let text = stdout(&second);
    assert_eq!(code(&second), 0, "{text}{}", stderr(&second));
    assert!(text.contains("finished rotation #1"), "{text}");
    assert!(text.contains("[rotated]"), "{text}");
    for (account, seeder, secrets, old) in &members {
        let current = secret_at(secrets, "svc/key", "AWSCURRENT").await.unwrap();
        let new = creds_of(&current);
        assert_ne!(new.access_key_id, old.access_key_id, "{account}: {text}");
        let previous = secret_at(secrets, "svc/key", "AWSPREVIOUS").await.unwrap();
        assert_eq!(previous["AccessKeyId"], old.access_key_id.as_str());
        assert!(works(&new).await, "{account}: the new key works");
        assert_eq!(seeder.keys("svc").await.len(), 2, "{account}: no orphan");
    }
    let journal = journal_text(state.path());
    assert!(
        journal.contains(r#""kind":"profile""#),
        "the way in is journaled"
    );
    assert!(!journal.contains(&members[crashed].3.secret_access_key));
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
    let a = org.members[0].account_id.clone();
    let config = member_config(&org, &a).await;
    let seeder = Seeder::new(&a, &config);
    let key = seeder
        .user_with_key("svc", &["sts:GetCallerIdentity"], 100)
        .await;
    let secrets = Secrets::new(&config);
    create_secret(&secrets, "svc/key", &key).await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let value = json!({
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret_access_key,
    });
    ssm.put_parameter()
        .name("/svc/key")
        .value(value.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put parameter");
    let home = Home::new().with_base(&org.admin);
    let config = home.path().join("rekey.toml");
    std::fs::write(
        &config,
        format!(
            "[[service]]\naccount = \"{a}\"\nuser = \"svc\"\nto = [\"secretsmanager:svc/key\", \"ssm:/svc/key\"]\n"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("journal.sqlite3");
    let rotate = |env: &[(&str, &str)]| {
        home.rekey_with(
            env,
            &[
                "rotate",
                "--service",
                "--org",
                "--role",
                ROLE,
                "--config",
                config.to_str().unwrap(),
                "--journal",
                journal.to_str().unwrap(),
                "--propagation-timeout",
                "20s",
            ],
        )
    };
    let first = rotate(&[("REKEY_CRASH_AT", "deliver:done")]);
    assert_eq!(first.status.code(), None, "{}", stderr(&first));
    let second = rotate(&[]);
    let text = stdout(&second);
    assert_eq!(code(&second), 0, "{text}{}", stderr(&second));
    assert!(text.contains("finished rotation #1"), "{text}");
    let current = secret_at(&secrets, "svc/key", "AWSCURRENT").await.unwrap();
    let new = creds_of(&current);
    assert_ne!(new.access_key_id, key.access_key_id);
    assert!(works(&new).await);
    let param = ssm
        .get_parameter()
        .name("/svc/key")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let param: Value = serde_json::from_str(param.parameter().unwrap().value().unwrap()).unwrap();
    assert_eq!(param["AccessKeyId"], new.access_key_id.as_str());
    assert_eq!(seeder.keys("svc").await.len(), 2, "no orphan");
    let journal = journal_text(state.path());
    assert!(!journal.contains(&new.secret_access_key));
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
        let key = seeder
            .user_with_key("svc", &["sts:GetCallerIdentity"], 100)
            .await;
        let secrets = Secrets::new(&sdk_config(&acct.admin));
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
    assert!(text.contains("rotation #1"), "{text}");
    let current = secret_at(&twins[0].2, "svc/key", "AWSCURRENT")
        .await
        .unwrap();
    assert!(works(&creds_of(&current)).await);
    assert_eq!(
        twins[0].1.keys("svc").await.len(),
        2,
        "old kept, new: no orphan"
    );
    let other = secret_at(&twins[1].2, "svc/key", "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(other["AccessKeyId"], twins[1].3.access_key_id.as_str());
}
