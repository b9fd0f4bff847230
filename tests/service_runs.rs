//! Issue 7, the gaps of a service rotation run: a rotation the run resumed
//! is not followed by a second rotation of the same key, and the first
//! delivery into an empty destination (a secret created empty, an SSM path
//! not set yet) rotates the user's only active key.

use aws_config::SdkConfig;
use serde_json::{Value, json};

use crate::support::{Creds, Home, Seeder, code, json_out, member_config, moto, sdk_config};
use crate::support::{stderr, stdout};

const ROLE: &str = "OrganizationAccountAccessRole";

/// A service user `svc` in a member account (its key may only ask STS who
/// it is), rotated by the management account's admin through the role; the
/// secrets and parameters live in the management account.
struct Svc {
    account_id: String,
    seeder: Seeder,
    key: Creds,
    secrets: aws_sdk_secretsmanager::Client,
    home: Home,
}

impl Svc {
    async fn new() -> Svc {
        let org = moto().new_org(1);
        let account_id = org.members[0].account_id.clone();
        let seeder = Seeder::new(&account_id, &member_config(&org, &account_id).await);
        let key = seeder
            .user_with_key("svc", &["sts:GetCallerIdentity"], 100)
            .await;
        let caller: SdkConfig = sdk_config(&org.admin);
        Svc {
            account_id,
            seeder,
            key,
            secrets: aws_sdk_secretsmanager::Client::new(&caller),
            home: Home::new().with_base(&org.admin),
        }
    }

    fn journal(&self) -> String {
        self.home
            .path()
            .join("journal.sqlite3")
            .display()
            .to_string()
    }

    /// `rekey rotate --account A --user svc --role R --to TO [extra]`.
    fn rotate(&self, to: &str, env: &[(&str, &str)], extra: &[&str]) -> std::process::Output {
        let journal = self.journal();
        let mut args = vec![
            "rotate",
            "--journal",
            &journal,
            "--account",
            &self.account_id,
            "--user",
            "svc",
            "--role",
            ROLE,
            "--to",
            to,
            "--propagation-timeout",
            "20s",
        ];
        args.extend_from_slice(extra);
        self.home.rekey_with(env, &args)
    }

    /// Every rotation the journal holds.
    fn history(&self) -> Vec<Value> {
        let out = self
            .home
            .rekey(&["history", "--journal", &self.journal(), "--output", "json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        json_out(&out).as_array().cloned().unwrap_or_default()
    }

    /// The user's key IDs other than the one it started with.
    async fn new_keys(&self) -> Vec<String> {
        self.seeder
            .keys("svc")
            .await
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| *id != self.key.access_key_id)
            .collect()
    }

    async fn create_secret(&self, name: &str, value: Option<Value>) {
        let mut req = self.secrets.create_secret().name(name);
        if let Some(v) = value {
            req = req.secret_string(v.to_string());
        }
        req.send().await.expect("create secret");
    }

    /// The secret's JSON at AWSCURRENT.
    async fn current(&self, name: &str) -> Value {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(name)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .expect("AWSCURRENT");
        serde_json::from_str(out.secret_string().unwrap()).unwrap()
    }

    fn holding_its_key(&self) -> Value {
        json!({
            "AccessKeyId": self.key.access_key_id,
            "SecretAccessKey": self.key.secret_access_key,
        })
    }
}

/// Whether STS accepts the pair `value` holds.
async fn works(value: &Value) -> bool {
    let creds = Creds {
        access_key_id: value["AccessKeyId"].as_str().unwrap_or_default().into(),
        secret_access_key: value["SecretAccessKey"].as_str().unwrap_or_default().into(),
    };
    aws_sdk_sts::Client::new(&sdk_config(&creds))
        .get_caller_identity()
        .send()
        .await
        .is_ok()
}

fn said(out: &std::process::Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// Killed right after a late step, then run again as it was: the second
/// run finishes the rotation and does not rotate the user a second time
/// (the job it built before finishing names the key just made, or the one
/// just replaced). One new key in all, the secret holds it, exit 0.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_rotation_finished_by_the_next_run_is_not_followed_by_a_second_one() {
    let cases: &[(&str, &[&str])] = &[
        ("promote:done", &[]),
        ("promote:done", &["--old-key", "deactivate"]),
        // Read back before the old key is retired (not with keep).
        ("confirm_delivery:done", &["--old-key", "deactivate"]),
        ("deactivate_old_key:done", &["--old-key", "deactivate"]),
        ("delete_old_key:done", &["--old-key", "delete"]),
    ];
    for (point, extra) in cases {
        let svc = Svc::new().await;
        let case = format!("{point} {extra:?}");
        svc.create_secret("ci/svc", Some(svc.holding_its_key()))
            .await;
        let to = "secretsmanager:ci/svc";
        let first = svc.rotate(to, &[("REKEY_CRASH_AT", point)], extra);
        assert!(
            stderr(&first).contains(&format!("crashing at {point}")),
            "{case}: {}",
            said(&first)
        );
        let second = svc.rotate(to, &[], extra);
        assert_eq!(code(&second), 0, "{case}: {}", said(&second));
        let made = svc.new_keys().await;
        assert_eq!(
            made.len(),
            1,
            "{case}: keys made {made:?}; {}",
            said(&second)
        );
        let current = svc.current("ci/svc").await;
        assert_eq!(
            current["AccessKeyId"],
            made[0].as_str(),
            "{case}: {}",
            said(&second)
        );
        assert!(works(&current).await, "{case}");
        let history = svc.history();
        assert_eq!(history.len(), 1, "{case}: {history:?}");
        assert_eq!(history[0]["outcome"], "completed", "{case}");
        assert!(
            stdout(&second).contains("not rotated again"),
            "{case}: {}",
            said(&second)
        );
        // The kept key of the finished rotation is still there, untouched.
        if extra.is_empty() {
            let keys = svc.seeder.keys("svc").await;
            assert!(
                keys.iter()
                    .any(|(id, s)| *id == svc.key.access_key_id && s == "Active"),
                "{case}: {keys:?}"
            );
        }
    }
}

/// The same for a credentials-file profile: the run that finishes the
/// rotation (no --max-age) does not rotate the profile's new key again.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_profile_rotation_finished_by_the_next_run_is_not_followed_by_a_second_one() {
    for point in ["confirm_delivery:done", "deactivate_old_key:done"] {
        let dev = crate::rotate::Dev::new(100).await;
        let first = dev.rotate_with(&[("REKEY_CRASH_AT", point)], &["--profile", "dev"]);
        assert!(
            stderr(&first).contains(&format!("crashing at {point}")),
            "{point}: {}",
            said(&first)
        );
        let second = dev.rotate(&["--profile", "dev"]);
        assert_eq!(code(&second), 0, "{point}: {}", said(&second));
        let keys = dev.seeder.keys("dev").await;
        let held = dev.held("dev").access_key_id;
        assert_eq!(keys.len(), 2, "{point}: {keys:?}");
        assert!(
            keys.iter()
                .any(|(id, s)| *id == dev.key.access_key_id && s == "Inactive"),
            "{point}: {keys:?}"
        );
        assert!(keys.iter().any(|(id, _)| *id == held), "{point}");
        assert_eq!(dev.history().as_array().unwrap().len(), 1, "{point}");
        dev.assert_profile_works("dev");
        assert!(
            stdout(&second).contains("not rotated again"),
            "{point}: {}",
            said(&second)
        );
    }
}
