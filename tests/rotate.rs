//! `rekey rotate` end to end against the emulator, checked with the AWS CLI
//! as the independent client.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use crate::support::{
    Account, Creds, Home, ROTATE_ACTIONS, Seeder, code, json_out, moto, sdk_config, stderr, stdout,
};

/// A developer's home: user `dev` (allowed to manage its own keys) whose
/// key is in profile `dev`, beside an unrelated profile and comments.
pub struct Dev {
    pub acct: Account,
    pub seeder: Seeder,
    pub home: Home,
    pub key: Creds,
    pub journal: PathBuf,
    pub original: String,
}

impl Dev {
    pub async fn new(age_days: i64) -> Dev {
        Dev::with_actions(age_days, ROTATE_ACTIONS).await
    }

    async fn with_actions(age_days: i64, actions: &[&str]) -> Dev {
        let acct = moto().new_account();
        let seeder = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
        let key = seeder.user_with_key("dev", actions, age_days).await;
        let home = Home::new();
        let original = format!(
            "# my keys; keep this comment\n[other]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n[dev]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = us-east-1\n\n; trailing comment\n",
            acct.admin.access_key_id,
            acct.admin.secret_access_key,
            key.access_key_id,
            key.secret_access_key
        );
        std::fs::write(home.credentials_path(), &original).unwrap();
        let journal = home.path().join("state/journal.sqlite3");
        Dev {
            acct,
            seeder,
            home,
            key,
            journal,
            original,
        }
    }

    pub fn rotate(&self, args: &[&str]) -> Output {
        self.rotate_with(&[], args)
    }

    pub fn rotate_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut full = vec!["rotate", "--journal", self.journal.to_str().unwrap()];
        full.extend_from_slice(args);
        self.home.rekey_with(env, &full)
    }

    pub fn file(&self) -> String {
        std::fs::read_to_string(self.home.credentials_path()).unwrap()
    }

    /// The key pair the file holds for `profile`.
    pub fn held(&self, profile: &str) -> Creds {
        let text = self.file();
        let mut in_section = false;
        let (mut id, mut secret) = (String::new(), String::new());
        for line in text.lines() {
            if line.starts_with('[') {
                in_section = line == format!("[{profile}]");
            } else if in_section && let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => id = v.trim().to_string(),
                    "aws_secret_access_key" => secret = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        Creds {
            access_key_id: id,
            secret_access_key: secret,
        }
    }

    /// `aws sts get-caller-identity --profile P` works and is user dev.
    pub fn assert_profile_works(&self, profile: &str) {
        let out = self.home.aws(&[
            "sts",
            "get-caller-identity",
            "--profile",
            profile,
            "--output",
            "json",
        ]);
        assert!(
            out.status.success(),
            "aws --profile {profile} failed: {}",
            stderr(&out)
        );
        let id: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(id["Arn"].as_str().unwrap().ends_with(":user/dev"), "{id}");
    }

    /// The AWS CLI with an explicit key pair.
    fn aws_with(&self, creds: &Creds) -> Output {
        let probe = Home::new();
        probe.add_profile("probe", creds);
        probe.aws(&["sts", "get-caller-identity", "--profile", "probe"])
    }

    /// At most two keys; each is the file's (active) or the old one
    /// (inactive): nothing orphaned.
    pub async fn assert_no_orphans(&self) {
        let keys = self.seeder.keys("dev").await;
        let held = self.held("dev").access_key_id;
        assert!(keys.len() <= 2, "{keys:?}");
        for (id, status) in &keys {
            let ok = (*id == held && status == "Active")
                || (*id == self.key.access_key_id && status == "Inactive");
            assert!(
                ok,
                "orphan or unexpected key {id} {status}; file holds {held}; keys {keys:?}"
            );
        }
        assert!(
            keys.iter().any(|(id, _)| *id == held),
            "the file's key exists"
        );
    }

    pub fn history(&self) -> Value {
        let out = self.home.rekey(&[
            "history",
            "--journal",
            self.journal.to_str().unwrap(),
            "--output",
            "json",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        json_out(&out)
    }

    /// Lines that differ between the original file and now.
    fn changed_lines(&self) -> Vec<(String, String)> {
        let now = self.file();
        assert_eq!(now.lines().count(), self.original.lines().count(), "{now}");
        self.original
            .lines()
            .zip(now.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }
}

#[tokio::test]
async fn rotate_replaces_the_key_in_place_and_retires_the_old_one() {
    let dev = Dev::new(100).await;
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("[rotated]"), "{}", stdout(&out));

    let new = dev.held("dev");
    assert_ne!(new.access_key_id, dev.key.access_key_id);
    // Exactly the two values of [dev] changed; every other byte is kept.
    let changed = dev.changed_lines();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(changed[0].1.starts_with("aws_access_key_id = AKIA"));
    assert!(changed[1].1.starts_with("aws_secret_access_key = "));
    assert_eq!(
        dev.file()
            .replace(&new.access_key_id, &dev.key.access_key_id)
            .replace(&new.secret_access_key, &dev.key.secret_access_key),
        dev.original
    );

    dev.assert_profile_works("dev");
    let old = dev.aws_with(&dev.key);
    assert!(!old.status.success(), "the old key must be rejected");
    assert!(
        stderr(&old).contains("InvalidClientTokenId"),
        "{}",
        stderr(&old)
    );
    dev.assert_no_orphans().await;
    assert!(
        dev.seeder
            .keys("dev")
            .await
            .contains(&(dev.key.access_key_id.clone(), "Inactive".into()))
    );

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dev.home.credentials_path()), 0o600);
    // The old secret was kept beside the file only while the rotation ran
    // (issue 9 #2): nothing in ~/.aws holds it now.
    for entry in std::fs::read_dir(dev.home.path().join(".aws")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            !text.contains(&dev.key.secret_access_key),
            "{} still holds the old secret",
            path.display()
        );
    }

    let history = dev.history();
    assert_eq!(history[0]["outcome"], "completed");
    assert_eq!(history[0]["old_key_id"], dev.key.access_key_id.as_str());
    assert_eq!(history[0]["new_key_id"], new.access_key_id.as_str());
}

#[tokio::test]
async fn old_key_delete_removes_it() {
    let dev = Dev::new(100).await;
    let out = dev.rotate(&["--profile", "dev", "--old-key", "delete"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let keys = dev.seeder.keys("dev").await;
    assert_eq!(
        keys,
        vec![(dev.held("dev").access_key_id, "Active".to_string())]
    );
    dev.assert_profile_works("dev");
}

#[tokio::test]
async fn profiles_sharing_a_key_and_role_profiles_rotate_together() {
    let dev = Dev::new(100).await;
    let mut text = dev.original.clone();
    text.push_str(&format!(
        "[dev-copy]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        dev.key.access_key_id, dev.key.secret_access_key
    ));
    std::fs::write(dev.home.credentials_path(), &text).unwrap();
    std::fs::write(
        dev.home.config_path(),
        format!(
            "[profile admin]\nrole_arn = arn:aws:iam::{}:role/Admin\nsource_profile = dev\n",
            dev.acct.account_id
        ),
    )
    .unwrap();
    let out = dev.rotate(&["--profile", "admin"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (a, b) = (dev.held("dev"), dev.held("dev-copy"));
    assert_ne!(a.access_key_id, dev.key.access_key_id);
    assert_eq!(
        a.access_key_id, b.access_key_id,
        "one new key for both profiles"
    );
    assert_eq!(a.secret_access_key, b.secret_access_key);
    assert_eq!(
        dev.seeder.keys("dev").await.len(),
        2,
        "one new key, the old one inactive"
    );
    dev.assert_profile_works("dev");
    dev.assert_profile_works("dev-copy");
    assert_eq!(
        dev.held("other").access_key_id,
        dev.acct.admin.access_key_id
    );
}

#[tokio::test]
async fn an_inactive_leftover_is_deleted_first_at_the_two_key_limit() {
    let dev = Dev::new(100).await;
    let leftover = dev.seeder.add_key("dev", 200, false).await;
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let masked = format!(
        "{}…{}",
        &leftover.access_key_id[..4],
        &leftover.access_key_id[16..]
    );
    assert!(
        stdout(&out).contains(&masked) && stdout(&out).contains("free a slot"),
        "{}",
        stdout(&out)
    );
    let keys = dev.seeder.keys("dev").await;
    assert!(!keys.iter().any(|(id, _)| *id == leftover.access_key_id));
    dev.assert_no_orphans().await;
}

#[tokio::test]
async fn another_active_key_stops_the_rotation_unless_allowed() {
    let dev = Dev::new(100).await;
    // Made 5 days ago, used yesterday: in use, never freed (issue 15 #2).
    let other = dev.seeder.add_key("dev", 5, true).await;
    let out = dev.rotate(&["--profile", "dev", "--delete-other-active"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("will neither delete nor deactivate it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dev.seeder.keys("dev").await.len(), 2);
    // Last used before the profile's key was made: freed when allowed.
    moto().key_dates(
        &dev.acct.account_id,
        "dev",
        &other.access_key_id,
        200,
        Some(150),
    );
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--delete-other-active"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dev.file(), dev.original);
    assert_eq!(dev.seeder.keys("dev").await.len(), 2);
    let out = dev.rotate(&["--profile", "dev", "--delete-other-active"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !dev.seeder
            .keys("dev")
            .await
            .iter()
            .any(|(id, _)| *id == other.access_key_id)
    );
    dev.assert_profile_works("dev");
}

#[tokio::test]
async fn max_age_and_dry_run_change_nothing() {
    let dev = Dev::new(10).await;
    let out = dev.rotate(&["--profile", "dev", "--max-age", "90d"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("not due"), "{}", stdout(&out));
    let out = dev.rotate(&["--profile", "dev", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("[would] rotate"), "{}", stdout(&out));
    assert_eq!(dev.file(), dev.original);
    assert_eq!(dev.seeder.keys("dev").await.len(), 1);
}

#[tokio::test]
async fn unrotatable_profiles_and_bad_files_are_refused_cleanly() {
    let dev = Dev::new(100).await;
    std::fs::write(
        dev.home.config_path(),
        "[profile sso]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = R\n[profile proc]\ncredential_process = /bin/false\n[profile bare]\nregion = us-east-1\n",
    )
    .unwrap();
    let mut text = dev.original.clone();
    text.push_str("[temp]\naws_access_key_id = ASIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\naws_session_token = y\n");
    std::fs::write(dev.home.credentials_path(), &text).unwrap();
    for (profile, needle) in [
        ("temp", "aws_session_token"),
        ("sso", "SSO"),
        ("proc", "credential_process"),
        ("bare", "has no access key"),
        ("ghost", "not found"),
    ] {
        let out = dev.rotate(&["--profile", profile]);
        assert_eq!(code(&out), 2, "{profile}");
        assert!(stderr(&out).contains(needle), "{profile}: {}", stderr(&out));
        assert_eq!(dev.file(), text, "{profile} changed the file");
    }
    let out = dev.rotate(&["--profile", "dev", "--endpoint-url", "http://127.0.0.1:9"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no answer from AWS"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dev.file(), text, "an unreachable endpoint changes nothing");
    std::fs::write(
        dev.home.credentials_path(),
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n[dev]\n",
    )
    .unwrap();
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("credentials") && stderr(&out).contains(":1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dev.seeder.keys("dev").await.len(), 1, "no key created");
}

#[tokio::test]
async fn a_denied_create_leaves_everything_as_it_was() {
    let actions: Vec<&str> = ROTATE_ACTIONS
        .iter()
        .copied()
        .filter(|a| *a != "iam:CreateAccessKey")
        .collect();
    let dev = Dev::with_actions(100, &actions).await;
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("AccessDenied"), "{}", stderr(&out));
    assert_eq!(dev.file(), dev.original);
    assert_eq!(
        dev.seeder.keys("dev").await,
        vec![(dev.key.access_key_id.clone(), "Active".into())]
    );
    assert_eq!(dev.history()[0]["outcome"], "undone");
}

/// A directory nobody can create files in while this lives: read-only
/// permission bits, and where they do not bind (root), the immutable flag
/// (`chattr +i`, e2fsprogs, installed by scripts/ensure-tools). Checked by
/// trying; panics when neither works instead of letting a test skip.
struct UnwritableDir(PathBuf);

impl UnwritableDir {
    fn new(dir: &std::path::Path) -> UnwritableDir {
        let guard = UnwritableDir(dir.to_path_buf());
        let writable = || std::fs::write(dir.join(".probe"), "").is_ok();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        if writable() {
            let _ = std::fs::remove_file(dir.join(".probe"));
            let chattr = std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .output();
            assert!(
                chattr.as_ref().is_ok_and(|o| o.status.success()),
                "cannot make {} unwritable: permission bits do not bind (root) and `chattr +i` failed \
                 ({chattr:?}); install e2fsprogs (scripts/ensure-tools) on a filesystem with the immutable flag",
                dir.display()
            );
            assert!(
                !writable(),
                "{} is still writable after chattr +i",
                dir.display()
            );
        }
        guard
    }
}

impl Drop for UnwritableDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
    }
}

#[tokio::test]
async fn an_unwritable_file_is_rolled_back_without_a_key_left_behind() {
    let dev = Dev::new(100).await;
    let aws_dir = dev.home.path().join(".aws");
    let out = {
        let _locked = UnwritableDir::new(&aws_dir);
        dev.rotate(&["--profile", "dev"])
    };
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(stderr(&out).contains("undone"), "{}", stderr(&out));
    assert_eq!(dev.file(), dev.original);
    assert_eq!(
        dev.seeder.keys("dev").await,
        vec![(dev.key.access_key_id.clone(), "Active".into())]
    );
}

#[tokio::test]
async fn mfa_profiles_need_a_code_and_rotate_under_an_mfa_session() {
    let dev = Dev::new(100).await;
    let serial = moto().mfa_device(&dev.acct.account_id, "dev");
    // The usual "manage your own keys only with MFA" policy: IAM calls are
    // allowed in sessions made with MFA, never with the plain key.
    let iam_actions: Vec<&str> = ROTATE_ACTIONS
        .iter()
        .copied()
        .filter(|a| a.starts_with("iam:"))
        .collect();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": iam_actions, "Resource": "*",
             "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
            {"Effect": "Allow", "Action": ["sts:GetCallerIdentity", "sts:GetSessionToken"], "Resource": "*"},
        ],
    });
    dev.seeder
        .iam
        .put_user_policy()
        .user_name("dev")
        .policy_name("rotate-own-keys")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("MFA policy");
    let untouched = || async {
        assert_eq!(dev.file(), dev.original);
        assert_eq!(
            dev.seeder.keys("dev").await,
            vec![(dev.key.access_key_id.clone(), "Active".into())]
        );
    };
    // Without mfa_serial the plain key is denied.
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(stderr(&out).contains("AccessDenied"), "{}", stderr(&out));
    untouched().await;

    std::fs::write(
        dev.home.config_path(),
        format!("[profile dev]\nmfa_serial = {serial}\n"),
    )
    .unwrap();
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--mfa-code"), "{}", stderr(&out));
    untouched().await;

    let good = moto().mfa_code(&serial);
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    let out = dev.rotate(&["--profile", "dev", "--mfa-code", &wrong]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot start an MFA session with {serial}"))
            && err.contains("invalid MFA one time pass code"),
        "{err}"
    );
    untouched().await;

    let out = dev.rotate(&["--profile", "dev", "--mfa-code", &good]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("[rotated]"), "{}", stdout(&out));
    assert_ne!(dev.held("dev").access_key_id, dev.key.access_key_id);
    dev.assert_profile_works("dev");
    dev.assert_no_orphans().await;
    assert!(
        dev.seeder
            .keys("dev")
            .await
            .contains(&(dev.key.access_key_id.clone(), "Inactive".into()))
    );
}

#[tokio::test]
async fn two_concurrent_rotations_of_one_user_rotate_once() {
    let dev = Dev::new(100).await;
    // The first run's new key is rejected for a while, as IAM does, so the
    // run is still verifying it, lease held, when the second one starts.
    moto().new_key_delay(&dev.acct.account_id, 8.0, false, true);
    let mut args = vec!["rotate", "--journal", dev.journal.to_str().unwrap()];
    args.extend(["--profile", "dev", "--max-age", "30d"]);
    let first = dev.home.rekey_command(&[], &args).spawn().unwrap();
    // The new key is in the file once it is delivered (before verification).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while dev.held("dev").access_key_id == dev.key.access_key_id {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never delivered a key"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = dev.rotate(&["--profile", "dev", "--max-age", "30d"]);
    let first = first.wait_with_output().unwrap();
    assert_eq!(code(&first), 0, "{}{}", stdout(&first), stderr(&first));
    assert!(stdout(&first).contains("[rotated]"), "{}", stdout(&first));
    assert_eq!(code(&second), 2, "{}{}", stdout(&second), stderr(&second));
    // The file already holds the first run's new key, which IAM does not
    // accept yet: that is a rotation in progress, not a broken key.
    let err = stderr(&second);
    assert!(err.contains("is being rotated by"), "{err}");
    assert!(!err.contains("the key is wrong"), "{err}");
    // Once the first is done, the key is not due.
    let third = dev.rotate(&["--profile", "dev", "--max-age", "30d"]);
    assert_eq!(code(&third), 0, "{}", stderr(&third));
    assert!(stdout(&third).contains("not due"), "{}", stdout(&third));
    dev.assert_profile_works("dev");
    dev.assert_no_orphans().await;
    assert_eq!(dev.seeder.keys("dev").await.len(), 2);
}

#[tokio::test]
async fn a_new_key_that_takes_seconds_to_work_is_verified_before_the_old_one_is_retired() {
    let dev = Dev::new(100).await;
    // For 3 s after CreateAccessKey the new key is rejected and not listed.
    moto().new_key_delay(&dev.acct.account_id, 3.0, true, true);
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("[rotated]"), "{}", stdout(&out));
    let new = dev.held("dev");
    assert_ne!(new.access_key_id, dev.key.access_key_id);
    dev.assert_profile_works("dev");
    let old = dev.aws_with(&dev.key);
    assert!(!old.status.success(), "the old key must be rejected");
    let mut keys = dev.seeder.keys("dev").await;
    keys.sort_by_key(|(id, _)| *id != new.access_key_id);
    assert_eq!(
        keys,
        vec![
            (new.access_key_id.clone(), "Active".to_string()),
            (dev.key.access_key_id.clone(), "Inactive".to_string()),
        ]
    );
    assert_eq!(dev.history()[0]["outcome"], "completed");
}

#[tokio::test]
async fn the_new_secret_never_appears_in_output_logs_or_the_journal() {
    let dev = Dev::new(100).await;
    let out = dev.rotate(&["-vv", "--profile", "dev", "--output", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let new = dev.held("dev");
    let mut places = vec![("stdout", stdout(&out)), ("stderr", stderr(&out))];
    let history = dev.home.rekey(&[
        "history",
        "--journal",
        dev.journal.to_str().unwrap(),
        "--steps",
    ]);
    assert_eq!(code(&history), 0, "{}", stderr(&history));
    places.push(("history", stdout(&history)));
    for entry in std::fs::read_dir(dev.journal.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        places.push((
            "journal",
            String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
        ));
    }
    // A failing run's error messages too.
    let failing = dev.rotate_with(
        &[("REKEY_FAULTS", "sts:GetCallerIdentity@before+1*0")],
        &["--profile", "dev", "--propagation-timeout", "1s"],
    );
    assert_eq!(
        code(&failing),
        2,
        "the run must fail (REKEY_FAULTS needs --features fault-injection): {}",
        stdout(&failing)
    );
    places.push(("error", stderr(&failing)));
    for (what, text) in places {
        for secret in [&new.secret_access_key, &dev.key.secret_access_key] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into {what}"
            );
        }
    }
    assert!(
        stdout(&out).contains(&new.access_key_id),
        "JSON output carries the full key ID"
    );
}

/// Runs `rekey rotate -i` on a pseudo-terminal (`script`), typing `answers`.
fn interactive(dev: &Dev, answers: &str) -> Output {
    use std::io::Write;
    let cmdline = format!(
        "{} rotate -i --profile dev --journal {}",
        env!("CARGO_BIN_EXE_rekey"),
        dev.journal.display()
    );
    let mut cmd = std::process::Command::new("script");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["-qec", &cmdline, "/dev/null"])
        .env("HOME", dev.home.path())
        .env("AWS_SHARED_CREDENTIALS_FILE", dev.home.credentials_path())
        .env("AWS_CONFIG_FILE", dev.home.config_path())
        .env("AWS_ENDPOINT_URL", moto().endpoint())
        .env("AWS_REGION", "us-east-1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs rekey on a pty");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn interactive_rotation_asks_before_each_step() {
    let dev = Dev::new(100).await;
    let out = interactive(&dev, "n\n");
    assert_eq!(code(&out), 0, "declining is not an error: {}", stdout(&out));
    assert!(stdout(&out).contains("Go ahead? [y/N]"), "{}", stdout(&out));
    assert!(stdout(&out).contains("[declined]"), "{}", stdout(&out));
    assert_eq!(dev.file(), dev.original);
    // Yes to the rotation, no to retiring the old key.
    let out = interactive(&dev, "y\nn\n");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("Deactivate the old key"), "{text}");
    assert!(text.contains("left active at your request"), "{text}");
    dev.assert_profile_works("dev");
    let keys = dev.seeder.keys("dev").await;
    assert!(
        keys.iter().all(|(_, s)| s == "Active") && keys.len() == 2,
        "{keys:?}"
    );
    // Without a terminal, -i refuses instead of guessing.
    let out = dev.rotate(&["-i", "--profile", "dev"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("terminal"), "{}", stderr(&out));
}

#[tokio::test]
async fn all_profiles_and_an_explicit_credentials_file() {
    let dev = Dev::new(100).await;
    // The file lives elsewhere; AWS_SHARED_CREDENTIALS_FILE points at an empty one.
    let elsewhere = dev.home.path().join("work-credentials");
    std::fs::write(&elsewhere, &dev.original).unwrap();
    std::fs::write(dev.home.credentials_path(), "").unwrap();
    let out = dev.rotate(&[
        "--all-profiles",
        "--credentials-file",
        elsewhere.to_str().unwrap(),
        "--max-age",
        "30d",
        "--dry-run",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    // Both profiles with static keys are considered: dev (due) and other (the admin, just created).
    assert!(text.contains("profile dev: [would]"), "{text}");
    assert!(text.contains("profile other: [not due]"), "{text}");
    let out = dev.rotate(&[
        "--profile",
        "dev",
        "--credentials-file",
        elsewhere.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let now = std::fs::read_to_string(&elsewhere).unwrap();
    assert!(
        !now.contains(&dev.key.access_key_id),
        "the named file was rewritten"
    );
    assert_eq!(dev.file(), "", "the environment's file is untouched");
}

#[tokio::test]
async fn a_held_lease_stops_a_second_run_and_a_dead_holder_does_not() {
    use rekey::clock::SystemClock;
    use rekey::journal::{Holder, SqliteJournal};
    let dev = Dev::new(100).await;
    std::fs::create_dir_all(dev.journal.parent().unwrap()).unwrap();
    let journal = SqliteJournal::open(&dev.journal, std::sync::Arc::new(SystemClock)).unwrap();
    // This test process is alive: its lease must be respected.
    let alive = Holder::current("other-run");
    let lease = journal
        .acquire_lease(
            &dev.acct.account_id,
            "dev",
            &alive,
            time::Duration::minutes(10),
        )
        .unwrap();
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("is being rotated by run other-run")
            && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert_eq!(dev.file(), dev.original);
    journal.release_lease(&lease).unwrap();

    // A holder that died on this host (a finished child's pid) blocks nothing.
    let child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    let _ = child.wait_with_output();
    let dead = Holder {
        pid: dead_pid,
        ..Holder::current("dead-run")
    };
    journal
        .acquire_lease(
            &dev.acct.account_id,
            "dev",
            &dead,
            time::Duration::minutes(10),
        )
        .unwrap();
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    dev.assert_profile_works("dev");
}
