//! The journal as later runs read it (issue 16): what a rotation recorded
//! is found by a keyed query however many rotations came after it, and a
//! journal of the previous schema (rotations numbered 1, 2…, step targets
//! as display strings) is migrated and carried on.

use std::sync::Arc;

use rekey::aws::{AwsOptions, Deps};
use rekey::awsfiles::FileKind;
use rekey::clock::SystemClock;
use rekey::destination::DestinationSpec;
use rekey::error::error_chain;
use rekey::journal::{AccessSpec, Holder, NewRotation, OldKeyAction, Outcome, SqliteJournal};
use rekey::rotation::access::Access;
use rekey::rotation::engine::{KeyOutcome, NoPrompt, Status};
use rekey::rotation::{self, Job, JobSpec, Mode, RotateOptions, RunOptions, Subject};

use crate::support::runner::{Runner, svc_in};
use crate::support::stores::{ServiceAccount, put_param};
use crate::support::{Home, ROLE, code, moto, sdk_config, stderr};

/// Fills `journal` with `n` completed rotations of other users, through
/// the journal's own API, as `n` other runs would.
fn fill_with_other_rotations(journal: &SqliteJournal, account_id: &str, n: usize) {
    let holder = Holder::current("filler");
    for i in 0..n {
        let user = format!("filler-{i}");
        let lease = journal
            .acquire_lease(account_id, &user, &holder, time::Duration::minutes(5))
            .unwrap();
        let old_key = format!("AKIAFILLER{i:010}");
        let r = journal
            .begin_rotation(&NewRotation {
                account_id: account_id.into(),
                user_name: user.clone(),
                user_arn: format!("arn:aws:iam::{account_id}:user/{user}"),
                old_key_id: old_key.clone(),
                keys_before: vec![old_key],
                destinations: vec![],
                old_key_action: OldKeyAction::Deactivate,
                access: AccessSpec::OldKey,
                run_id: "filler".into(),
            })
            .unwrap();
        journal.finish(r.id, Outcome::Completed, None).unwrap();
        journal.release_lease(&lease).unwrap();
    }
}

/// Issue 16: a key a rotation kept active (old-key action `keep`, as for
/// SSM) is still known as kept after 250 newer rotations in the same
/// journal: the next rotation frees its slot (it was not used since it
/// was replaced), as it does with an empty journal in between. Before, the
/// journal was searched through its latest 200 rotations only, the kept key
/// was taken for "another active key", and the rotation was refused
/// (`pass --delete-other-active`), exit 2.
#[tokio::test]
async fn issue16_a_kept_key_is_still_known_after_250_newer_rotations() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let key = member.seeder.service_user("svc", 100).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk_config(&org.admin));
    put_param(&ssm, "/ci/svc", &key).await;
    let runner = Runner::new(&org.admin);
    let rotate = || runner.rotate(&svc_in(&member.account_id, &["--to", "ssm:/ci/svc"]));
    let first = rotate();
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let keys = member.keys("svc").await;
    assert!(
        keys.contains(&(key.access_key_id.clone(), "Active".into())),
        "the first rotation kept the old key active: {keys:?}"
    );

    let journal = SqliteJournal::open(&runner.journal(), Arc::new(SystemClock)).unwrap();
    fill_with_other_rotations(&journal, &member.account_id, 250);
    // Last used before it was replaced: nothing reads it any more.
    moto().key_dates(&member.account_id, "svc", &key.access_key_id, 100, Some(1));
    let second = rotate();
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let keys = member.keys("svc").await;
    assert!(
        keys.iter().all(|(id, _)| *id != key.access_key_id),
        "the kept key's slot was freed: {keys:?}"
    );
    assert_eq!(keys.len(), 2, "{keys:?}");
}

/// Issue 16: a front end that names a key (an inventory read before the
/// run) learns that a completed rotation already replaced it, however many
/// rotations came after that one: the key the destination holds is that
/// rotation's new key, so nothing is rotated or refused. Before, only the
/// latest 200 rotations were searched, and past them the job failed as
/// holding "not the key the job names".
#[tokio::test]
async fn issue16_a_named_key_is_known_as_already_rotated_after_250_newer_rotations() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let key = member.seeder.service_user("svc", 100).await;
    let home = Home::new().with_base(&org.admin);
    home.add_profile("svc", &key);
    let deps = Deps::new(sdk_config(&org.admin), AwsOptions::default(), None);
    let job = || async {
        let file = DestinationSpec::SharedFile {
            file: FileKind::Credentials,
            path: home.credentials_path(),
            profiles: vec!["svc".into()],
        };
        let spec = JobSpec::new(
            "profile svc".into(),
            Subject::Known {
                account_id: member.account_id.clone(),
                user_arn: format!("arn:aws:iam::{}:user/svc", member.account_id),
                old_key_id: key.access_key_id.clone(),
            },
            Access::Role {
                role: ROLE.into(),
                external_id: None,
            },
            vec![file],
        );
        Job::open(spec, &deps).await.expect("a job opens")
    };
    let opts = RotateOptions {
        old_key: OldKeyAction::Delete,
        delete_other_active: false,
        max_age_days: None,
        propagation_timeout: std::time::Duration::from_secs(30),
        verify_successes: 2,
        lease_ttl: time::Duration::minutes(5),
        run_id: "issue16".into(),
        as_of: None,
    };
    let clock = SystemClock;
    let options = RunOptions {
        rotate: &opts,
        mode: Mode::Apply,
        concurrency: 1,
        clock: &clock,
        prompt: &NoPrompt,
        holder: Holder::current("issue16"),
        deps: &deps,
    };
    let journal = SqliteJournal::in_memory(Arc::new(SystemClock)).unwrap();
    let errors = |r: &rotation::RunReport| -> Vec<String> {
        r.failures.iter().map(|f| error_chain(&f.error)).collect()
    };

    let first = rotation::run(&[job().await], &journal, &options).await;
    assert!(first.failures.is_empty(), "{:?}", errors(&first));
    assert_eq!(first.reports[0].status, Status::Rotated);
    let replaced_by = first.reports[0].rotation_id.expect("its rotation");
    let new_key = first.reports[0].new_key_id.clone().expect("its new key");
    let keys_after_first = member.keys("svc").await;

    fill_with_other_rotations(&journal, &member.account_id, 250);
    let again = rotation::run(&[job().await], &journal, &options).await;
    assert!(again.failures.is_empty(), "{:?}", errors(&again));
    let report = &again.reports[0];
    assert_eq!(
        report.status,
        Status::AlreadyRotated,
        "{:?}",
        report.outcome
    );
    assert_eq!(
        report.outcome,
        KeyOutcome::AlreadyReplaced {
            id: replaced_by,
            old_key_id: key.access_key_id.clone(),
            new_key_id: new_key,
        }
    );
    assert_eq!(
        member.keys("svc").await,
        keys_after_first,
        "nothing rotated"
    );
}

/// The rotation and event tables of rekey's journal before issue 16
/// (schema 1), as that version created them.
#[cfg(feature = "fault-injection")]
const SCHEMA_1_TABLES: &str = "
CREATE TABLE rotations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     TEXT NOT NULL,
    user_name      TEXT NOT NULL,
    user_arn       TEXT NOT NULL,
    old_key_id     TEXT NOT NULL,
    new_key_id     TEXT,
    keys_before    TEXT NOT NULL,
    destinations   TEXT NOT NULL,
    old_key_action TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    last_step      TEXT NOT NULL,
    last_phase     TEXT NOT NULL,
    outcome        TEXT,
    error          TEXT,
    started_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    finished_at    INTEGER
);
CREATE INDEX rotations_unfinished ON rotations (account_id, user_name) WHERE outcome IS NULL;
CREATE TABLE events (
    rotation_id INTEGER NOT NULL REFERENCES rotations (id),
    seq         INTEGER NOT NULL,
    step        TEXT NOT NULL,
    phase       TEXT NOT NULL,
    target      TEXT,
    detail      TEXT,
    at          INTEGER NOT NULL,
    PRIMARY KEY (rotation_id, seq)
) WITHOUT ROWID;
";

/// How rekey before issue 16 wrote a step's target: a key ID, or the
/// destination's display name (`credentials:PATH#a,b`, `ssm:PATH`, …).
#[cfg(feature = "fault-injection")]
fn old_target(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    if let Some(key) = v["key"].as_str() {
        return key.to_string();
    }
    let d = &v["destination"];
    match d["kind"].as_str().unwrap() {
        "shared_file" => {
            let profiles: Vec<&str> = d["profiles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            format!(
                "{}:{}#{}",
                d["file"].as_str().unwrap(),
                d["path"].as_str().unwrap(),
                profiles.join(",")
            )
        }
        "secretsmanager" => format!("secretsmanager:{}", d["secret_id"].as_str().unwrap()),
        "ssm" => format!("ssm:{}", d["path"].as_str().unwrap()),
        other => panic!("no old name for {other}"),
    }
}

/// Rewrites the journal at `path` as the previous rekey would have left
/// it: schema 1, rotations numbered 1, 2… in the order begun, every step
/// target a display string.
#[cfg(feature = "fault-injection")]
fn downgrade_to_schema_1(path: &std::path::Path) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(&format!(
        "ALTER TABLE rotations RENAME TO rotations_v2;
         ALTER TABLE events RENAME TO events_v2;
         DROP INDEX rotations_unfinished;
         DROP INDEX rotations_of_user;
         DROP TABLE key_events;
         {SCHEMA_1_TABLES}
         INSERT INTO rotations (id, account_id, user_name, user_arn, old_key_id, new_key_id,
             keys_before, destinations, old_key_action, run_id, last_step, last_phase, outcome,
             error, started_at, updated_at, finished_at)
         SELECT seq, account_id, user_name, user_arn, old_key_id, new_key_id, keys_before,
             destinations, old_key_action, run_id, last_step, last_phase, outcome, error,
             started_at, updated_at, finished_at FROM rotations_v2;
         INSERT INTO events (rotation_id, seq, step, phase, target, detail, at)
         SELECT r.seq, e.seq, e.step, e.phase, e.target, e.detail, e.at
         FROM events_v2 e JOIN rotations_v2 r ON r.id = e.rotation_id;
         DROP TABLE events_v2;
         DROP TABLE rotations_v2;
         PRAGMA user_version = 1;"
    ))
    .unwrap();
    let targets: Vec<(i64, i64, String)> = tx
        .prepare("SELECT rotation_id, seq, target FROM events WHERE target IS NOT NULL")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!targets.is_empty(), "the rotation journaled a delivery");
    for (id, seq, json) in targets {
        tx.execute(
            "UPDATE events SET target = ?3 WHERE rotation_id = ?1 AND seq = ?2",
            rusqlite::params![id, seq, old_target(&json)],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

#[cfg(feature = "fault-injection")]
fn schema_version(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Issue 16: a journal of the previous schema whose rotation #1 stopped
/// after delivering its new key is migrated by the next run, which
/// resumes rotation #1 (still `#1`), recognises the delivery its old row
/// records and does not deliver again, and finishes it. A dry run before
/// that reads the old journal and leaves its file as it was.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn issue16_an_old_numbered_journal_is_migrated_and_its_unfinished_rotation_resumed() {
    let dev = crate::rotate::Dev::new(120).await;
    let crash = [("REKEY_CRASH_AT", "deliver:done")];
    let first = dev.rotate_with(&crash, &["--profile", "dev"]);
    assert!(first.status.code().is_none(), "{}", stderr(&first));
    let new = dev.held("dev");
    assert_ne!(new.access_key_id, dev.key.access_key_id);
    downgrade_to_schema_1(&dev.journal);
    assert_eq!(schema_version(&dev.journal), 1);

    let bytes = std::fs::read(&dev.journal).unwrap();
    let plan = dev.rotate(&["--profile", "dev", "--max-age", "30d", "--dry-run"]);
    assert_eq!(code(&plan), 0, "{}", crate::support::said(&plan));
    assert!(
        stderr(&plan).contains("rotation #1 of dev in account"),
        "{}",
        stderr(&plan)
    );
    assert_eq!(std::fs::read(&dev.journal).unwrap(), bytes, "dry run");
    assert_eq!(schema_version(&dev.journal), 1);

    let second = dev.rotate(&["--profile", "dev", "--max-age", "30d"]);
    assert_eq!(code(&second), 0, "{}", crate::support::said(&second));
    assert!(
        crate::support::stdout(&second).contains("finished rotation #1 left by an earlier run"),
        "{}",
        crate::support::stdout(&second)
    );
    assert_eq!(schema_version(&dev.journal), 3);
    dev.assert_profile_works("dev");
    assert_eq!(dev.held("dev").access_key_id, new.access_key_id);
    let mut keys = dev.seeder.keys("dev").await;
    keys.sort();
    let mut expected = vec![
        (dev.key.access_key_id.clone(), "Inactive".to_string()),
        (new.access_key_id.clone(), "Active".to_string()),
    ];
    expected.sort();
    assert_eq!(keys, expected);

    let history = dev.history();
    let rotations = history.as_array().unwrap();
    assert_eq!(rotations.len(), 1, "{history:#}");
    assert_eq!(rotations[0]["id"], "1");
    assert_eq!(rotations[0]["outcome"], "completed");
    let events = rotations[0]["events"].as_array().unwrap();
    let deliveries: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["step"] == "deliver" && e["phase"] == "begin")
        .collect();
    assert_eq!(deliveries.len(), 1, "delivered once: {events:#?}");
    let file = dev.home.credentials_path();
    assert_eq!(
        deliveries[0]["target"]["destination"]["path"],
        std::path::absolute(&file).unwrap().to_str().unwrap(),
        "the old row reads as the rotation's destination"
    );
}

/// Issue 16: `rotate --abandon N` takes the number of a rotation of an
/// old journal (here one whose file has gone), after the migration.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn issue16_abandon_takes_the_number_of_an_old_journals_rotation() {
    let dev = crate::rotate::Dev::new(120).await;
    let first = dev.rotate_with(&[("REKEY_CRASH_AT", "verify:begin")], &["--profile", "dev"]);
    assert!(first.status.code().is_none(), "{}", stderr(&first));
    downgrade_to_schema_1(&dev.journal);
    let path = dev.home.credentials_path();
    std::fs::rename(&path, path.with_extension("moved")).unwrap();
    std::fs::write(&path, "").unwrap();
    dev.home.add_profile("other", &dev.acct.admin);

    let stuck = dev.rotate(&["--profile", "other", "--max-age", "30d"]);
    assert_eq!(code(&stuck), 2, "{}", crate::support::said(&stuck));
    assert!(
        stderr(&stuck).contains("`rekey rotate --abandon 1`"),
        "{}",
        stderr(&stuck)
    );
    let out = dev.rotate(&["--abandon", "1", "--profile", "other"]);
    assert_eq!(code(&out), 0, "{}", crate::support::said(&out));
    assert!(
        crate::support::stdout(&out).contains("abandoned rotation #1 of dev"),
        "{}",
        crate::support::stdout(&out)
    );
    assert_eq!(
        dev.seeder.keys("dev").await,
        [(dev.key.access_key_id.clone(), "Active".to_string())]
    );
    assert_eq!(dev.history()[0]["outcome"], "undone");
}
