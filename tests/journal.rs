//! The journal as later runs read it (issue 16): what a rotation recorded
//! is found by a keyed query however many rotations came after it.

use std::sync::Arc;

use rekey::aws::AwsOptions;
use rekey::clock::SystemClock;
use rekey::destination::{CredentialsFile, Destination};
use rekey::error::error_chain;
use rekey::journal::{AccessSpec, Holder, NewRotation, OldKeyAction, Outcome, SqliteJournal};
use rekey::rotation::access::Access;
use rekey::rotation::engine::{NoPrompt, Status};
use rekey::rotation::{self, Job, Mode, RotateOptions, RunOptions, Subject};

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
    let caller = sdk_config(&org.admin);
    let job = || {
        let file = CredentialsFile::new(&home.credentials_path(), vec!["svc".into()]);
        let destinations: Vec<Arc<dyn Destination>> = vec![Arc::new(file)];
        Job::new(
            Subject::Known {
                account_id: member.account_id.clone(),
                user_arn: format!("arn:aws:iam::{}:user/svc", member.account_id),
                old_key_id: key.access_key_id.clone(),
            },
            Access::Role {
                role: ROLE.into(),
                external_id: None,
            },
            destinations,
            caller.clone(),
            "profile svc".into(),
        )
    };
    let opts = RotateOptions {
        old_key: OldKeyAction::Delete,
        delete_other_active: false,
        max_age_days: None,
        propagation_timeout: std::time::Duration::from_secs(30),
        verify_successes: 2,
        lease_ttl: time::Duration::minutes(5),
        run_id: "issue16".into(),
    };
    let (aws, clock) = (AwsOptions::default(), SystemClock);
    let options = RunOptions {
        rotate: &opts,
        mode: Mode::Apply,
        concurrency: 1,
        clock: &clock,
        prompt: &NoPrompt,
        holder: Holder::current("issue16"),
        caller: &caller,
        profiles: None,
        aws: &aws,
    };
    let journal = SqliteJournal::in_memory(Arc::new(SystemClock)).unwrap();
    let errors = |r: &rotation::RunReport| -> Vec<String> {
        r.failures.iter().map(|f| error_chain(&f.error)).collect()
    };

    let first = rotation::run(&[job()], &journal, &options).await;
    assert!(first.failures.is_empty(), "{:?}", errors(&first));
    assert_eq!(first.reports[0].status, Status::Rotated);
    let replaced_by = first.reports[0].rotation_id;
    let keys_after_first = member.keys("svc").await;

    fill_with_other_rotations(&journal, &member.account_id, 250);
    let again = rotation::run(&[job()], &journal, &options).await;
    assert!(again.failures.is_empty(), "{:?}", errors(&again));
    let report = &again.reports[0];
    assert_eq!(report.status, Status::AlreadyRotated, "{}", report.message);
    assert_eq!(report.rotation_id, replaced_by);
    assert_eq!(
        member.keys("svc").await,
        keys_after_first,
        "nothing rotated"
    );
}
