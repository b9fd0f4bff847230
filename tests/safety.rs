//! Issue 9: the holes a hostile review found in `rekey rotate`'s safety
//! promise — concurrent writers, a rewrite from outside, lost backups,
//! stuck resumes, the same key in the config file, a false failure beside a
//! live run, and dry runs that wrote state. Each test names its item.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::rotate::Dev;
use crate::support::{
    Account, Creds, Home, ROTATE_ACTIONS, Seeder, code, moto, sdk_config, stderr, stdout,
};

/// One account, users `u0…`, each with a key in its own profile of one
/// credentials file.
struct Team {
    seeder: Seeder,
    home: Home,
    journal: PathBuf,
    members: Vec<(String, String, Creds)>,
    original: String,
    _acct: Account,
}

impl Team {
    async fn new(profiles: &[&str]) -> Team {
        let acct = moto().new_account();
        let seeder = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
        let home = Home::new();
        let mut members = Vec::new();
        let mut text = String::from("# shared by every profile below\n");
        for (i, profile) in profiles.iter().enumerate() {
            let user = format!("u{i}");
            let key = seeder.user_with_key(&user, ROTATE_ACTIONS, 120).await;
            text.push_str(&format!(
                "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n",
                key.access_key_id, key.secret_access_key
            ));
            members.push((profile.to_string(), user, key));
        }
        std::fs::write(home.credentials_path(), &text).unwrap();
        let journal = home.path().join("state/journal.sqlite3");
        Team {
            seeder,
            home,
            journal,
            members,
            original: text,
            _acct: acct,
        }
    }

    fn rotate(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut full = vec!["rotate", "--journal", self.journal.to_str().unwrap()];
        full.extend_from_slice(args);
        self.home.rekey_with(env, &full)
    }

    /// The key the file holds for `profile`.
    fn held(&self, profile: &str) -> String {
        held_in(&self.home.credentials_path(), profile)
    }

    /// Every profile works with the AWS CLI, as its own user.
    fn assert_all_work(&self, when: &str) {
        for (profile, user, _) in &self.members {
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
                "{when}: aws --profile {profile} fails: {}\nfile:\n{}",
                stderr(&out),
                redacted(&std::fs::read_to_string(self.home.credentials_path()).unwrap())
            );
            assert!(stdout(&out).contains(&format!(":user/{user}\"")), "{when}");
        }
    }
}

/// The `aws_access_key_id` of `[profile]` in the file at `path`.
fn held_in(path: &Path, profile: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let header = format!("[{profile}]");
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with('[') {
            inside = line == header;
        } else if inside
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "aws_access_key_id"
        {
            return v.trim().to_string();
        }
    }
    panic!("no key for [{profile}] in {}", path.display())
}

/// The file with secret values cut, for assertion messages.
fn redacted(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.contains("secret") {
                "aws_secret_access_key = …"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts `rekey rotate` in the background, as cron would.
fn spawn_rotate(home: &Home, journal: &Path, env: &[(&str, &str)], args: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rekey"));
    cmd.args(["rotate", "--journal", journal.to_str().unwrap()])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_ENDPOINT_URL", moto().endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_SHARED_CREDENTIALS_FILE", home.credentials_path())
        .env("AWS_CONFIG_FILE", home.config_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start rekey")
}

/// Waits (bounded) until `cond` holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Issue 9 #1: several `rekey rotate --profile pN` started together by
/// cron, and `--all-profiles` at high concurrency, all edit one file. Before
/// the lock, one run's rewrite could put back another's old key, which was
/// then deactivated: a silent lockout with exit 0.
#[tokio::test]
async fn concurrent_writers_of_one_file_never_undo_each_others_keys() {
    let names: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    let profiles: Vec<&str> = names.iter().map(String::as_str).collect();
    let team = Team::new(&profiles).await;
    let runs: Vec<Child> = profiles
        .iter()
        .map(|p| spawn_rotate(&team.home, &team.journal, &[], &["--profile", p]))
        .collect();
    for (run, p) in runs.into_iter().zip(&profiles) {
        let out = run.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{p}: {}{}", stdout(&out), stderr(&out));
    }
    team.assert_all_work("after 8 concurrent runs");
    for (profile, user, key) in &team.members {
        assert_ne!(team.held(profile), key.access_key_id, "{profile} rotated");
        let keys = team.seeder.keys(user).await;
        assert!(
            keys.contains(&(team.held(profile), "Active".into())),
            "{profile}: {keys:?}"
        );
    }
    // And once more in one process, every profile at once.
    let out = team.rotate(&[], &["--all-profiles", "--concurrency", "8"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    team.assert_all_work("after --all-profiles --concurrency 8");
    // Comments and layout survive both rounds.
    let now = std::fs::read_to_string(team.home.credentials_path()).unwrap();
    assert_eq!(now.lines().count(), team.original.lines().count());
    assert!(now.starts_with("# shared by every profile below\n"));
}

/// Issue 9 #1, from outside: a dotfiles sync restores the file while rekey
/// verifies the new key. The read-back before retirement sees it: the old
/// key — which the file holds again — stays active, exit 2, and the output
/// says why. Before, the old key was deactivated and the run exited 0.
#[tokio::test]
async fn a_file_rewritten_during_verification_keeps_its_old_key_working() {
    let dev = Dev::new(120).await;
    // Slow verification down a little: the first GetCallerIdentity checks
    // the old key, the next two verifications fail, then it goes on.
    let faults = [("REKEY_FAULTS", "sts:GetCallerIdentity@before+1*2")];
    let run = spawn_rotate(&dev.home, &dev.journal, &faults, &["--profile", "dev"]);
    let path = dev.home.credentials_path();
    wait_for("delivery", || {
        std::fs::read_to_string(&path).is_ok_and(|t| !t.contains(&dev.key.access_key_id))
    });
    std::fs::write(&path, &dev.original).unwrap();
    let out = run.wait_with_output().unwrap();
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("no longer holds the new key"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dev.file(), dev.original);
    dev.assert_profile_works("dev");
    let keys = dev.seeder.keys("dev").await;
    assert_eq!(keys, [(dev.key.access_key_id.clone(), "Active".into())]);
    assert_eq!(dev.history()[0]["outcome"], "undone");
}

/// Issue 9 #2: three rotations in flight on one file, and verification
/// fails for all of them (the network drops after delivery). Each profile
/// must get its own old key back. Before, undo read the one shared backup,
/// which every delivery overwrote: only one profile was restored, the
/// others kept an unverified key with both keys active.
#[tokio::test]
async fn undoing_concurrent_rotations_restores_every_profiles_own_old_key() {
    let team = Team::new(&["a", "b", "c"]).await;
    // Three identity checks go through; every later STS call fails.
    let faults = [("REKEY_FAULTS", "sts:GetCallerIdentity@before+3*0")];
    let out = team.rotate(
        &faults,
        &[
            "--all-profiles",
            "--concurrency",
            "3",
            "--propagation-timeout",
            "1s",
        ],
    );
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let now = std::fs::read_to_string(team.home.credentials_path()).unwrap();
    assert!(now == team.original, "not restored:\n{}", redacted(&now));
    for (profile, user, key) in &team.members {
        let keys = team.seeder.keys(user).await;
        assert_eq!(
            keys,
            [(key.access_key_id.clone(), "Active".into())],
            "{profile}"
        );
    }
    team.assert_all_work("after the undone rotations");
    // Nothing beside the file keeps an old secret once the runs are over.
    for entry in std::fs::read_dir(team.home.path().join(".aws")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "credentials" || name == "config",
            "left behind: {name}"
        );
    }
}

/// Issue 9 #3: profile names with `#` and `,` and a relative
/// `--credentials-file`, crashed after delivery and resumed from another
/// directory. Before, the journal's `PATH#a,b` string split wrongly and the
/// relative path pointed elsewhere: stuck for good with two active keys.
#[tokio::test]
async fn a_rotation_of_odd_profile_names_from_a_relative_path_resumes_from_anywhere() {
    let mut team = Team::new(&["dev#1", "ci,dev", "spaced name é"]).await;
    // Make `ci,dev` share dev#1's key: one rotation, two profiles.
    let shared = team.members[0].2.clone();
    let text = team
        .original
        .replace(&team.members[1].2.access_key_id, &shared.access_key_id);
    let text = text.replace(
        &team.members[1].2.secret_access_key,
        &shared.secret_access_key,
    );
    std::fs::write(team.home.credentials_path(), &text).unwrap();
    team.members[1].1 = "u0".into();

    let first = Command::new(env!("CARGO_BIN_EXE_rekey"))
        .current_dir(team.home.path())
        .args(["rotate", "--journal", team.journal.to_str().unwrap()])
        .args([
            "--credentials-file",
            ".aws/credentials",
            "--profile",
            "dev#1",
        ])
        .env_clear()
        .env("HOME", team.home.path())
        .env("AWS_ENDPOINT_URL", moto().endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", team.home.config_path())
        .env("REKEY_CRASH_AT", "deliver:done")
        .output()
        .unwrap();
    assert!(first.status.code().is_none(), "{}", stderr(&first));
    let rotated = team.held("dev#1");
    assert_ne!(rotated, shared.access_key_id);
    assert_eq!(team.held("ci,dev"), rotated);

    // Resumed from elsewhere, rotating another profile.
    let second = Command::new(env!("CARGO_BIN_EXE_rekey"))
        .current_dir("/")
        .args(["rotate", "--journal", team.journal.to_str().unwrap()])
        .args(["--profile", "spaced name é"])
        .env_clear()
        .env("HOME", team.home.path())
        .env("AWS_ENDPOINT_URL", moto().endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_SHARED_CREDENTIALS_FILE", team.home.credentials_path())
        .env("AWS_CONFIG_FILE", team.home.config_path())
        .output()
        .unwrap();
    assert_eq!(code(&second), 0, "{}{}", stdout(&second), stderr(&second));
    let id = crate::support::rotation_id(&team.journal, 1);
    assert!(
        stdout(&second).contains(&format!("finished rotation #{id}")),
        "{}",
        stdout(&second)
    );
    team.assert_all_work("after the resume");
    let keys = team.seeder.keys("u0").await;
    assert_eq!(
        keys,
        [
            (shared.access_key_id.clone(), "Inactive".into()),
            (rotated.clone(), "Active".into())
        ]
    );
}

/// Issue 9 #3: a journal written by the previous rekey (destinations as
/// `credentials:PATH#a,b` strings) still resumes; a rotation whose file is
/// truly gone has a way out that deletes the key it made and touches
/// nothing else.
#[tokio::test]
async fn old_journals_resume_and_a_vanished_destination_can_be_abandoned() {
    let dev = Dev::new(120).await;
    let crash = [("REKEY_CRASH_AT", "deliver:done")];
    let first = dev.rotate_with(&crash, &["--profile", "dev"]);
    assert!(first.status.code().is_none(), "{}", stderr(&first));
    // Rewrite the row as the previous binary stored it.
    let legacy = format!("credentials:{}#dev", dev.home.credentials_path().display());
    let first_id = crate::support::rotation_id(&dev.journal, 1);
    set_destinations(
        &dev.journal,
        &first_id,
        &serde_json::json!([legacy]).to_string(),
    );
    let second = dev.rotate(&["--profile", "dev", "--max-age", "30d"]);
    assert_eq!(code(&second), 0, "{}{}", stdout(&second), stderr(&second));
    assert!(
        stdout(&second).contains(&format!("finished rotation #{first_id}")),
        "{}",
        stdout(&second)
    );
    dev.assert_profile_works("dev");

    // Now a crash, and the file moved away for good.
    let third = dev.rotate_with(&crash, &["--profile", "dev"]);
    assert!(third.status.code().is_none(), "{}", stderr(&third));
    let gone = format!("credentials:{}/moved/away#dev", dev.home.path().display());
    let id = crate::support::rotation_id(&dev.journal, 2);
    set_destinations(&dev.journal, &id, &serde_json::json!([gone]).to_string());
    let stuck = dev.rotate(&["--profile", "dev", "--max-age", "30d"]);
    assert_eq!(code(&stuck), 2);
    assert!(
        stderr(&stuck).contains(&format!("--abandon {id}")),
        "{}",
        stderr(&stuck)
    );
    let before = dev.seeder.keys("dev").await;
    assert_eq!(
        before.len(),
        2,
        "{before:?}\n{}\n{}",
        stderr(&third),
        stderr(&stuck)
    );
    let replacing = dev.history()[0]["old_key_id"].as_str().unwrap().to_string();
    let out = dev.rotate(&["--abandon", &id, "--profile", "other"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    // The key the second rotation made is gone (its secret was in the file that
    // "moved away"); the key it was replacing stays, untouched.
    let after = dev.seeder.keys("dev").await;
    assert_eq!(after, [(replacing, "Active".to_string())]);
    assert_eq!(dev.history()[0]["outcome"], "undone");
    let again = dev.rotate(&["--abandon", &id]);
    assert_eq!(code(&again), 2, "{}", stderr(&again));
}

fn set_destinations(journal: &Path, id: &str, json: &str) {
    let conn = rusqlite::Connection::open(journal).unwrap();
    let n = conn
        .execute(
            "UPDATE rotations SET destinations = ?1 WHERE id = ?2",
            rusqlite::params![json, id],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Issue 9 #4: `[profile legacy]` in ~/.aws/config holds the same key as
/// `[dev]`. Both are rewritten; before, legacy kept the dead old key.
#[tokio::test]
async fn the_same_key_in_the_config_file_is_rotated_with_the_credentials_file() {
    let dev = Dev::new(120).await;
    let config = format!(
        "[default]\nregion = us-east-1\n\n[profile legacy]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        dev.key.access_key_id, dev.key.secret_access_key
    );
    std::fs::write(dev.home.config_path(), &config).unwrap();
    let out = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    dev.assert_profile_works("dev");
    dev.assert_profile_works("legacy");
    let new = dev.held("dev");
    let now = std::fs::read_to_string(dev.home.config_path()).unwrap();
    assert_eq!(
        now,
        config
            .replace(&dev.key.access_key_id, &new.access_key_id)
            .replace(&dev.key.secret_access_key, &new.secret_access_key)
    );
}

/// Issue 9 #6: a run started while another verifies a different user must
/// leave that live rotation to it and exit by its own work. Before, it
/// tried to resume it, hit the lease and exited 2.
#[tokio::test]
async fn a_live_rotation_of_another_user_is_left_to_its_run() {
    let team = Team::new(&["slow", "quick"]).await;
    let faults = [("REKEY_FAULTS", "sts:GetCallerIdentity@before+1*3")];
    let slow = spawn_rotate(&team.home, &team.journal, &faults, &["--profile", "slow"]);
    let original = team.members[0].2.access_key_id.clone();
    wait_for("the slow run's delivery", || team.held("slow") != original);
    let quick = team.rotate(&[], &["--profile", "quick", "-v"]);
    assert_eq!(code(&quick), 0, "{}{}", stdout(&quick), stderr(&quick));
    assert!(
        stderr(&quick).contains("left to the run"),
        "{}",
        stderr(&quick)
    );
    let slow = slow.wait_with_output().unwrap();
    assert_eq!(code(&slow), 0, "{}{}", stdout(&slow), stderr(&slow));
    team.assert_all_work("after both runs");
}

/// Issue 9 #8: a dry run writes nothing anywhere: no journal file or
/// directory when there is none, no row or lease when there is one.
#[tokio::test]
async fn a_dry_run_writes_no_journal_and_no_rows() {
    let dev = Dev::new(120).await;
    let out = dev.rotate(&["--profile", "dev", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("[would]"), "{}", stdout(&out));
    assert!(!dev.journal.parent().unwrap().exists(), "state dir created");

    let first = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let state = dev.journal.parent().unwrap();
    let snapshot = || {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(state)
            .unwrap()
            .map(|e| e.unwrap().path())
            // SQLite's shared-memory index changes on any read; not state.
            .filter(|p| !p.to_string_lossy().ends_with("-shm"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = snapshot();
    let rows_before = rows(&dev.journal);
    let out = dev.rotate(&["--profile", "dev", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    // The database file is byte for byte the same; SQLite's WAL side files
    // may be touched by any reader, so their rows are compared instead.
    let after = snapshot();
    let names = |s: &[(String, Vec<u8>)]| s.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before), "files created or removed");
    let db = |s: &[(String, Vec<u8>)]| s.iter().find(|f| f.0.ends_with(".sqlite3")).cloned();
    assert!(
        db(&after) == db(&before),
        "the dry run changed the journal file"
    );
    assert_eq!(rows(&dev.journal), rows_before);
    assert_eq!(dev.history().as_array().unwrap().len(), 1);
}

/// Rows of each journal table.
fn rows(journal: &Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(journal).unwrap();
    ["rotations", "events", "leases"]
        .iter()
        .map(|t| {
            conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .unwrap()
        })
        .collect()
}

/// Issue 9 #7: a run dies while its CreateAccessKey is on the wire (here:
/// IAM makes the key, the answer is lost), and IAM lists the new key only
/// seconds later. The undo sees no key and closes; the key then shows up,
/// active, its secret nowhere. The next run must recognise it as that
/// rotation's orphan and delete it — before, it planned with it as
/// "another active key" and refused on every later run.
#[tokio::test]
async fn a_late_key_from_a_lost_create_is_swept_not_called_another_active_key() {
    let dev = Dev::new(120).await;
    let account = dev.acct.account_id.clone();
    moto().new_key_delay(&account, 5.0, true, true);
    let lost = [("REKEY_FAULTS", "iam:CreateAccessKey@after")];
    let first = dev.rotate_with(&lost, &["--profile", "dev", "--propagation-timeout", "1s"]);
    assert_eq!(code(&first), 2, "{}{}", stdout(&first), stderr(&first));
    assert_eq!(dev.history()[0]["outcome"], "undone");
    assert_eq!(
        dev.seeder.keys("dev").await.len(),
        1,
        "the late key is not listed yet"
    );
    // Then IAM lists it: active, and nobody holds its secret.
    let deadline = Instant::now() + Duration::from_secs(20);
    while dev.seeder.keys("dev").await.len() < 2 {
        assert!(Instant::now() < deadline, "the late key never showed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    moto().new_key_delay(&account, 0.0, true, true);

    let second = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&second), 0, "{}{}", stdout(&second), stderr(&second));
    assert!(
        stdout(&second).contains("an earlier interrupted run made whose secret nobody holds"),
        "{}",
        stdout(&second)
    );
    dev.assert_profile_works("dev");
    dev.assert_no_orphans().await;
}

/// Issue 9 #7: the same, but the next run starts at once, while the late
/// key is still unlisted: its CreateAccessKey meets LimitExceeded. That
/// leads to the sweep — wait for the key to show, delete it, create again —
/// not to an exit.
#[tokio::test]
async fn limit_exceeded_right_after_a_recovery_waits_for_the_orphan_and_sweeps_it() {
    let dev = Dev::new(120).await;
    let account = dev.acct.account_id.clone();
    moto().new_key_delay(&account, 6.0, true, true);
    let lost = [("REKEY_FAULTS", "iam:CreateAccessKey@after")];
    let first = dev.rotate_with(&lost, &["--profile", "dev", "--propagation-timeout", "1s"]);
    assert_eq!(code(&first), 2, "{}{}", stdout(&first), stderr(&first));
    let second = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&second), 0, "{}{}", stdout(&second), stderr(&second));
    dev.assert_profile_works("dev");
    dev.assert_no_orphans().await;
    for r in dev.history().as_array().unwrap() {
        assert!(
            r["outcome"] == "completed" || r["outcome"] == "undone",
            "{r}"
        );
    }
}

/// A file left at the old pair's name (`credentials.rekey-old-<OLD KEY
/// ID>`: an earlier rotation's, a copy, a hand edit) is not this
/// rotation's pair. Before, delivery kept nothing when the name existed,
/// and an undo then wrote that file's pair into the profile: a lockout.
#[tokio::test]
async fn a_stale_file_at_the_old_pairs_name_is_never_what_an_undo_restores() {
    let dev = Dev::new(120).await;
    let kept = dev
        .home
        .path()
        .join(".aws")
        .join(format!("credentials.rekey-old-{}", dev.key.access_key_id));
    std::fs::write(
        &kept,
        format!(
            "[rekey-old-key]\naws_access_key_id = {}\naws_secret_access_key = stale-not-the-secret\n",
            dev.key.access_key_id
        ),
    )
    .unwrap();
    // The new key is never accepted: the rotation is undone.
    moto().new_key_delay(&dev.acct.account_id, 60.0, false, true);
    let out = dev.rotate(&["--profile", "dev", "--propagation-timeout", "2s"]);
    moto().new_key_delay(&dev.acct.account_id, 0.0, false, false);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(dev.history()[0]["outcome"], "undone");
    assert_eq!(dev.held("dev").secret_access_key, dev.key.secret_access_key);
    dev.assert_profile_works("dev");
    assert!(
        !kept.exists(),
        "the kept pair is deleted once the rotation ends"
    );
}
