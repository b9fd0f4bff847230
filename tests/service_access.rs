//! Issue 7, how IAM is reached: a `--service --profile` rotation that a
//! later run finishes through the journaled profile, whatever that run's
//! own default credentials are. Against the emulator, signatures enforced.

#![cfg(feature = "fault-injection")]

use std::path::Path;

use aws_sdk_secretsmanager::Client as Secrets;
use serde_json::{Value, json};

use crate::support::{Creds, Home, Seeder, code, member_config, moto, sdk_config, stderr, stdout};

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
