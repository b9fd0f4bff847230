//! Issue 7: rotation as a library run. A job names its subject (the key a
//! credentials-file profile holds), how IAM is reached, and its
//! destinations; here IAM is reached through a role in the user's account,
//! assumed with the management account's credentials, for a service user
//! whose own key may not call IAM at all.

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use rekey::aws::{AwsOptions, Deps};
use rekey::awsfiles::FileKind;
use rekey::clock::SystemClock;
use rekey::destination::DestinationSpec;
use rekey::error::error_chain;
use rekey::journal::{Holder, OldKeyAction, SqliteJournal};
use rekey::rotation::access::Access;
use rekey::rotation::engine::{Done, KeyOutcome, NoPrompt, OldKeyEnd, Status};
use rekey::rotation::{self, Job, JobSpec, Mode, RotateOptions, RunOptions, Subject};

use crate::support::{
    Creds, Home, Org, ROLE, Seeder, code, member_config, moto, sdk_config, stderr, stdout,
};

/// A service user `svc` in a member account whose key (in profile `svc`)
/// may only ask STS who it is: every IAM call must go through the role.
struct Service {
    org: Org,
    account_id: String,
    seeder: Seeder,
    key: Creds,
    home: Home,
    journal: PathBuf,
}

impl Service {
    async fn new() -> Service {
        let org = moto().new_org(1);
        let account_id = org.members[0].account_id.clone();
        let seeder = Seeder::new(&account_id, &member_config(&org, &account_id).await);
        let key = seeder.service_user("svc", 100).await;
        // The run's own credentials (the default chain): the management
        // account's admin, who may assume the role in every member.
        let home = Home::new().with_base(&org.admin);
        home.add_profile("svc", &key);
        let journal = home.path().join("state/journal.sqlite3");
        Service {
            org,
            account_id,
            seeder,
            key,
            home,
            journal,
        }
    }

    fn rotate_with(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut full = vec!["rotate", "--journal", self.journal.to_str().unwrap()];
        full.extend_from_slice(args);
        self.home.rekey_with(env, &full)
    }

    fn rotate(&self, args: &[&str]) -> Output {
        self.rotate_with(&[], args)
    }

    /// The key ID profile `svc` holds now.
    fn held(&self) -> String {
        let text = std::fs::read_to_string(self.home.credentials_path()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("aws_access_key_id = "))
            .expect("a key in the file")
            .to_string()
    }

    /// The new key works for the independent client, as `svc`.
    fn assert_profile_works(&self) {
        let out = self
            .home
            .aws(&["sts", "get-caller-identity", "--profile", "svc"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(":user/svc"), "{}", stdout(&out));
    }
}

#[tokio::test]
async fn a_key_whose_user_cannot_call_iam_rotates_through_a_role_in_its_account() {
    let svc = Service::new().await;
    // Signed with its own key, the user may not even list its keys.
    let own = svc.rotate(&["--profile", "svc"]);
    assert_eq!(code(&own), 2, "{}", stdout(&own));
    assert!(stderr(&own).contains("AccessDenied"), "{}", stderr(&own));
    assert_eq!(svc.held(), svc.key.access_key_id);

    let out = svc.rotate(&["--profile", "svc", "--role", ROLE]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let new = svc.held();
    assert_ne!(new, svc.key.access_key_id);
    svc.assert_profile_works();
    let mut keys = svc.seeder.keys("svc").await;
    keys.sort();
    let mut expected = vec![
        (svc.key.access_key_id.clone(), "Inactive".to_string()),
        (new, "Active".to_string()),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    // The journal says which way IAM was reached, and holds no secret.
    let history = svc.home.rekey(&[
        "history",
        "--journal",
        svc.journal.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let text = stdout(&history);
    let role_arn = format!("arn:aws:iam::{}:role/{ROLE}", svc.account_id);
    assert!(text.contains(&role_arn), "{text}");
    assert!(!text.contains(&svc.key.secret_access_key), "{text}");
}

#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_role_rotation_interrupted_after_delivery_resumes_through_the_same_role() {
    let svc = Service::new().await;
    let crash = [("REKEY_CRASH_AT", "deliver:done")];
    let first = svc.rotate_with(&crash, &["--profile", "svc", "--role", ROLE]);
    assert!(first.status.code().is_none(), "{}", stderr(&first));
    let new = svc.held();
    assert_ne!(new, svc.key.access_key_id);
    // No --role and not even svc's profile now: the journal says how
    // rotation #1 reached IAM. (With svc's own keys, retiring the old key
    // would be denied.) The admin's fresh key is not due.
    svc.home.add_profile("admin", &svc.org.admin);
    let second = svc.rotate(&["--profile", "admin", "--max-age", "30d"]);
    assert_eq!(code(&second), 0, "{}{}", stdout(&second), stderr(&second));
    let id = crate::support::rotation_id(&svc.journal, 1);
    assert!(
        stdout(&second).contains(&format!("finished rotation #{id}")),
        "{}",
        stdout(&second)
    );
    svc.assert_profile_works();
    let keys = svc.seeder.keys("svc").await;
    assert!(
        keys.contains(&(svc.key.access_key_id.clone(), "Inactive".to_string())),
        "{keys:?}"
    );
    assert!(keys.contains(&(new, "Active".to_string())), "{keys:?}");
}

/// The run's options for a library test: `opts` must outlive them.
fn options<'a>(opts: &'a RotateOptions, deps: &'a Deps, clock: &'a SystemClock) -> RunOptions<'a> {
    RunOptions {
        rotate: opts,
        mode: Mode::Apply,
        concurrency: 2,
        clock,
        prompt: &NoPrompt,
        holder: Holder::current("library-test"),
        deps,
    }
}

fn rotate_options() -> RotateOptions {
    RotateOptions {
        old_key: OldKeyAction::Delete,
        delete_other_active: false,
        max_age_days: None,
        propagation_timeout: std::time::Duration::from_secs(30),
        verify_successes: 2,
        lease_ttl: time::Duration::minutes(5),
        run_id: "library-test".into(),
        as_of: None,
    }
}

/// A job for `svc`'s key in the credentials file, named by the caller (as
/// an inventory would) rather than asked of STS.
async fn named_job(svc: &Service, old_key_id: &str, deps: &Deps) -> Job {
    let file = DestinationSpec::SharedFile {
        file: FileKind::Credentials,
        path: svc.home.credentials_path(),
        profiles: vec!["svc".into()],
    };
    let spec = JobSpec::new(
        "profile svc".into(),
        Subject::Known {
            account_id: svc.account_id.clone(),
            user_arn: format!("arn:aws:iam::{}:user/svc", svc.account_id),
            old_key_id: old_key_id.into(),
        },
        Access::Role {
            role: ROLE.into(),
            external_id: None,
        },
        vec![file],
    );
    Job::open(spec, deps).await.expect("a job opens")
}

/// The same rotation with no binary: a front end builds the job and calls
/// `rotation::run`, then reads the report.
#[tokio::test]
async fn the_library_run_rotates_a_named_key_through_a_role_and_reports_it() {
    let svc = Service::new().await;
    let deps = Deps::new(sdk_config(&svc.org.admin), AwsOptions::default(), None);
    let job = named_job(&svc, &svc.key.access_key_id, &deps).await;
    let clock = SystemClock;
    let journal = SqliteJournal::in_memory(Arc::new(SystemClock)).unwrap();
    let opts = rotate_options();
    let report = rotation::run(&[job], &journal, &options(&opts, &deps, &clock)).await;
    let errors: Vec<String> = report
        .failures
        .iter()
        .map(|f| error_chain(&f.error))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(report.reports.len(), 1);
    let done = &report.reports[0];
    assert_eq!(done.status, Status::Rotated, "{:?}", done.outcome);
    let new = svc.held();
    assert_eq!(done.new_key_id.as_deref(), Some(new.as_str()));
    // Deleted, not deactivated: only the new key is left.
    assert_eq!(
        svc.seeder.keys("svc").await,
        [(new.clone(), "Active".to_string())]
    );
    // What became of the key is data a front end renders (issue 16).
    let KeyOutcome::Rotated {
        done:
            Done::Rotated {
                old_key_id,
                new_key_id,
                old_key,
                ..
            },
        freed: None,
        ..
    } = &done.outcome
    else {
        panic!("{:?}", done.outcome)
    };
    assert_eq!(
        (old_key_id, new_key_id, *old_key),
        (
            &svc.key.access_key_id,
            &new,
            OldKeyEnd::Retired(OldKeyAction::Delete)
        )
    );
}

#[tokio::test]
async fn a_job_naming_another_key_than_its_destination_holds_changes_nothing() {
    let svc = Service::new().await;
    let deps = Deps::new(sdk_config(&svc.org.admin), AwsOptions::default(), None);
    let other = svc.seeder.add_key("svc", 5, false).await;
    let job = named_job(&svc, &other.access_key_id, &deps).await;
    let clock = SystemClock;
    let journal = SqliteJournal::in_memory(Arc::new(SystemClock)).unwrap();
    let opts = rotate_options();
    let report = rotation::run(&[job], &journal, &options(&opts, &deps, &clock)).await;
    assert!(report.reports.is_empty());
    let errors: Vec<String> = report
        .failures
        .iter()
        .map(|f| error_chain(&f.error))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("not the key"), "{errors:?}");
    assert_eq!(svc.held(), svc.key.access_key_id);
    assert_eq!(svc.seeder.keys("svc").await.len(), 2);
}

/// Library errors name no CLI flag or command (issue 7); the CLI adds what
/// to type. Here: a retire that keeps failing.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_retire_that_fails_tells_the_cli_user_to_run_again() {
    let dev = crate::rotate::Dev::new(100).await;
    let out = dev.rotate_with(
        &[("REKEY_FAULTS", "iam:UpdateAccessKey@before*0")],
        &["--profile", "dev", "--propagation-timeout", "1s"],
    );
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("could not be deactivated; the next run finishes it")
            && err.contains("run `rekey rotate` again to finish"),
        "{err}"
    );
    let again = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&again), 0, "{}{}", stdout(&again), stderr(&again));
    let id = crate::support::rotation_id(&dev.journal, 1);
    assert!(
        stdout(&again).contains(&format!("finished rotation #{id}")),
        "{}",
        stdout(&again)
    );
}
