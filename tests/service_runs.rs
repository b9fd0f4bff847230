//! Issue 7, the gaps of a service rotation run: a rotation the run resumed
//! is not followed by a second rotation of the same key, and the first
//! delivery into an empty destination (a secret created empty, an SSM path
//! not set yet) rotates the user's only active key.

use serde_json::{Value, json};

use crate::support::runner::{Runner, svc_in};
use crate::support::stores::{ServiceAccount, creds_of, param, secret_current, works};
use crate::support::{Creds, code, json_out, moto, said, sdk_config, stderr, stdout};
#[cfg(feature = "fault-injection")]
use crate::support::{
    ROLE,
    stores::{create_secret, param_at, put_param},
};

/// A service user `svc` in a member account (its key may only ask STS who
/// it is), rotated by the management account's admin through the role; the
/// secrets and parameters live in the management account.
struct Svc {
    /// The member account, as the test sees it through the role.
    member: ServiceAccount,
    key: Creds,
    /// The caller's (management account's) stores.
    secrets: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    /// Runs as the management account's admin.
    runner: Runner,
}

impl Svc {
    async fn new() -> Svc {
        let org = moto().new_org(1);
        let member = ServiceAccount::of(&org, 0).await;
        let key = member.seeder.service_user("svc", 100).await;
        let caller = sdk_config(&org.admin);
        Svc {
            member,
            key,
            secrets: aws_sdk_secretsmanager::Client::new(&caller),
            ssm: aws_sdk_ssm::Client::new(&caller),
            runner: Runner::new(&org.admin),
        }
    }

    /// `rekey rotate --account A --user svc --role R --to TO [extra]`.
    fn rotate(&self, to: &str, env: &[(&str, &str)], extra: &[&str]) -> std::process::Output {
        let mut args = svc_in(&self.member.account_id, &["--to", to]);
        args.extend_from_slice(extra);
        self.runner.rotate_with(env, &args)
    }

    /// Every rotation the journal holds.
    fn history(&self) -> Vec<Value> {
        let out = self.runner.history();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        json_out(&out).as_array().cloned().unwrap_or_default()
    }

    /// The user's key IDs other than the one it started with.
    async fn new_keys(&self) -> Vec<String> {
        self.member
            .seeder
            .keys("svc")
            .await
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| *id != self.key.access_key_id)
            .collect()
    }

    /// A secret of the caller's holding `value`, no key pair (or, with
    /// None, created empty).
    async fn create_secret(&self, name: &str, value: Option<Value>) {
        let mut req = self.secrets.create_secret().name(name);
        if let Some(v) = value {
            req = req.secret_string(v.to_string());
        }
        req.send().await.expect("create secret");
    }
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
        create_secret(&svc.secrets, "ci/svc", &svc.key).await;
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
        let current = secret_current(&svc.secrets, "ci/svc").await;
        assert_eq!(
            current["AccessKeyId"],
            made[0].as_str(),
            "{case}: {}",
            said(&second)
        );
        assert!(works(&creds_of(&current)).await, "{case}");
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
            let keys = svc.member.seeder.keys("svc").await;
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

/// A secret created empty, or holding other fields but no key pair, and a
/// user with exactly one active key: that key is rotated into the secret,
/// other fields kept, the old key kept active (the default).
#[tokio::test]
async fn a_first_delivery_into_a_secret_without_a_key_pair_rotates_the_only_active_key() {
    for (name, value) in [
        ("empty", None),
        ("fields", Some(json!({"Endpoint": "db.internal:5432"}))),
    ] {
        let svc = Svc::new().await;
        svc.create_secret(name, value).await;
        let out = svc.rotate(&format!("secretsmanager:{name}"), &[], &[]);
        assert_eq!(code(&out), 0, "{name}: {}", said(&out));
        assert!(stdout(&out).contains("[rotated]"), "{name}: {}", said(&out));
        let made = svc.new_keys().await;
        assert_eq!(made.len(), 1, "{name}");
        let current = secret_current(&svc.secrets, name).await;
        assert_eq!(current["AccessKeyId"], made[0].as_str(), "{name}");
        assert!(works(&creds_of(&current)).await, "{name}");
        if name == "fields" {
            assert_eq!(current["Endpoint"], "db.internal:5432");
        }
        let keys = svc.member.seeder.keys("svc").await;
        assert!(
            keys.iter()
                .any(|(id, s)| *id == svc.key.access_key_id && s == "Active"),
            "{name}: the old key is kept active: {keys:?}"
        );
        assert_eq!(svc.history()[0]["outcome"], "completed", "{name}");
    }
}

/// An SSM path not set yet: the user's only active key is rotated into a
/// new SecureString JSON parameter there.
#[tokio::test]
async fn a_first_delivery_to_an_unset_ssm_path_rotates_the_only_active_key() {
    let svc = Svc::new().await;
    let out = svc.rotate("ssm:/ci/first", &[], &["--old-key", "deactivate"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let made = svc.new_keys().await;
    assert_eq!(made.len(), 1);
    let p = param(&svc.ssm, "/ci/first").await;
    assert_eq!(
        p.r#type(),
        Some(&aws_sdk_ssm::types::ParameterType::SecureString)
    );
    let value: Value = serde_json::from_str(p.value().unwrap()).unwrap();
    assert_eq!(value["AccessKeyId"], made[0].as_str());
    assert!(works(&creds_of(&value)).await);
    let keys = svc.member.seeder.keys("svc").await;
    assert!(
        keys.iter()
            .any(|(id, s)| *id == svc.key.access_key_id && s == "Inactive"),
        "{keys:?}"
    );
}

/// No active key, or two: which key the destination should hold is not
/// known, so nothing is done; the error says what was found and what to do.
/// A secret that does not exist is named; rekey does not create secrets.
#[tokio::test]
async fn an_empty_destination_is_refused_unless_the_user_has_exactly_one_active_key() {
    let svc = Svc::new().await;
    svc.create_secret("empty", None).await;
    let second = svc.member.seeder.add_key("svc", 10, true).await;
    let out = svc.rotate("secretsmanager:empty", &[], &[]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let err = stderr(&out);
    assert!(
        err.contains("holds no key pair")
            && err.contains("2 active keys")
            && err.contains("put the key it should rotate there"),
        "{err}"
    );
    assert_eq!(
        svc.new_keys().await,
        std::slice::from_ref(&second.access_key_id)
    );

    for id in [&svc.key.access_key_id, &second.access_key_id] {
        svc.member
            .seeder
            .iam
            .update_access_key()
            .user_name("svc")
            .access_key_id(id)
            .status(aws_sdk_iam::types::StatusType::Inactive)
            .send()
            .await
            .unwrap();
    }
    let out = svc.rotate("secretsmanager:empty", &[], &[]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let err = stderr(&out);
    assert!(
        err.contains("holds no key pair") && err.contains("no active key"),
        "{err}"
    );

    let out = svc.rotate("secretsmanager:ci/missing", &[], &[]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let err = stderr(&out);
    assert!(
        err.contains("secretsmanager:ci/missing does not exist")
            && err.contains("rekey does not create secrets"),
        "{err}"
    );
    assert_eq!(svc.member.seeder.keys("svc").await.len(), 2);
    assert!(svc.history().is_empty());
}

/// A first delivery killed after each journaled step, or whose new key is
/// never accepted (undone): the secret never holds a key that fails once
/// the run ends, nothing is orphaned, and the next run completes it.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_first_delivery_killed_or_undone_ends_safe_on_the_next_run() {
    let fields = || Some(json!({"Endpoint": "db"}));
    for (point, value) in [
        ("create_key:done", fields()),
        ("deliver:done", None),
        ("deliver:done", fields()),
        ("verify:done", fields()),
        ("promote:done", fields()),
        ("never accepted", fields()),
        // Its first version became AWSCURRENT at once: undo writes one
        // without the pair.
        ("never accepted", None),
    ] {
        let svc = Svc::new().await;
        let kept = value.clone().unwrap_or(json!({}));
        svc.create_secret("empty", value).await;
        let to = "secretsmanager:empty";
        if point == "never accepted" {
            moto().new_key_delay(&svc.member.account_id, 60.0, false, true);
            let first = svc.rotate(to, &[], &["--propagation-timeout", "2s"]);
            assert_eq!(code(&first), 2, "{point}: {}", said(&first));
            assert!(
                stderr(&first).contains("undone"),
                "{point}: {}",
                said(&first)
            );
            // Put back as it was: no key pair, the other field kept.
            assert_eq!(secret_current(&svc.secrets, "empty").await, kept, "{point}");
            assert!(svc.new_keys().await.is_empty(), "{point}");
            moto().new_key_delay(&svc.member.account_id, 0.0, false, true);
        } else {
            let first = svc.rotate(to, &[("REKEY_CRASH_AT", point)], &[]);
            assert!(
                stderr(&first).contains(&format!("crashing at {point}")),
                "{point}: {}",
                said(&first)
            );
        }
        let second = svc.rotate(to, &[], &[]);
        assert_eq!(code(&second), 0, "{point}: {}", said(&second));
        let current = secret_current(&svc.secrets, "empty").await;
        assert!(works(&creds_of(&current)).await, "{point}: {current}");
        assert_eq!(current["Endpoint"], kept["Endpoint"], "{point}");
        let made = svc.new_keys().await;
        assert_eq!(
            made,
            [current["AccessKeyId"].as_str().unwrap()],
            "{point}: {}",
            said(&second)
        );
        for r in svc.history() {
            assert!(
                r["outcome"] == "completed" || r["outcome"] == "undone",
                "{point}: {r}"
            );
        }
    }
}

/// The same through `rotate --service`: a user bound by its tag to a secret
/// or a parameter of its own account, killed after promote, then run again:
/// the resumed rotation reaches the member account's destination (not the
/// caller's), and the user is not rotated twice.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_service_run_that_finishes_a_rotation_does_not_rotate_the_user_again() {
    for binding in ["secretsmanager:ci/svc", "ssm:/ci/svc"] {
        let svc = Svc::new().await;
        if binding.starts_with("ssm:") {
            put_param(&svc.member.ssm, "/ci/svc", &svc.key).await;
        } else {
            create_secret(&svc.member.secrets, "ci/svc", &svc.key).await;
        }
        svc.member.seeder.tag_destination("svc", binding).await;
        let args = [
            "--service",
            "--account",
            &svc.member.account_id,
            "--role",
            ROLE,
        ];
        let first = svc
            .runner
            .rotate_with(&[("REKEY_CRASH_AT", "promote:done")], &args);
        assert!(
            stderr(&first).contains("crashing at promote:done"),
            "{binding}: {}",
            said(&first)
        );
        let second = svc.runner.rotate(&args);
        assert_eq!(code(&second), 0, "{binding}: {}", said(&second));
        assert!(
            stdout(&second).contains("not rotated again"),
            "{binding}: {}",
            said(&second)
        );
        let made = svc.new_keys().await;
        assert_eq!(made.len(), 1, "{binding}: {made:?}: {}", said(&second));
        let current = if binding.starts_with("ssm:") {
            param_at(&svc.member.ssm, "/ci/svc").await.0
        } else {
            secret_current(&svc.member.secrets, "ci/svc").await
        };
        assert_eq!(current["AccessKeyId"], made[0].as_str(), "{binding}");
        assert!(works(&creds_of(&current)).await, "{binding}");
        assert_eq!(svc.history().len(), 1, "{binding}");
    }
}
