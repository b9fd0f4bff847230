//! The journal as later runs read it (issue 16): what a rotation recorded
//! is found by a keyed query however many rotations came after it.

use std::path::Path;
use std::sync::Arc;

use rekey::clock::SystemClock;
use rekey::journal::{AccessSpec, Holder, NewRotation, OldKeyAction, Outcome, SqliteJournal};

use crate::support::runner::{Runner, svc_in};
use crate::support::stores::{ServiceAccount, put_param};
use crate::support::{code, moto, sdk_config, stderr};

/// Fills the journal at `path` with `n` completed rotations of other
/// users, through the journal's own API, as `n` other runs would.
fn fill_with_other_rotations(path: &Path, account_id: &str, n: usize) {
    let journal = SqliteJournal::open(path, Arc::new(SystemClock)).unwrap();
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

    fill_with_other_rotations(&runner.journal(), &member.account_id, 250);
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
