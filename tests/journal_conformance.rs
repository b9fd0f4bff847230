//! The journal conformance suite (issue 18): one set of tests, run
//! unchanged through the `Journal` trait against the SQLite journal (a
//! file) and the DynamoDB journal (a table in the emulator). Every rule a
//! write passes, every step sequence, leases taken, expired, stolen and
//! lost, two holders racing for one user on real threads, and — for the
//! backend with a network in between — lost answers and throttling,
//! which must change nothing in what the journal says.
//!
//! "Another machine" is a second handle on the same store: a second
//! connection to the file, a second client of the table (its own cache,
//! its own write tokens). Time is the suite's own clock.

use std::sync::Arc;

use aws_config::retry::RetryConfig;
use rekey::aws::ClientFactory;
use rekey::clock::{Clock, FixedClock};
use rekey::destination::DestinationSpec;
use rekey::journal::copy::copy;
use rekey::journal::dynamo::init;
use rekey::journal::{
    AccessSpec, DynamoJournal, DynamoSpec, Holder, Journal, JournalError, KeyOp, NewKeyEvent,
    NewRotation, OldKeyAction, Outcome, Phase, RotationId, SqliteJournal, Step, Target,
};
use time::macros::datetime;

use crate::support::{Faults, Proxy, moto, sdk_config};

const ACCOUNT: &str = "123456789012";
const OLD: &str = "AKIAOLDOLDOLDOLD0001";
const OTHER: &str = "AKIAOTHEROTHEROTH002";
const NEW: &str = "AKIANEWNEWNEWNEW0003";
const TTL: time::Duration = time::Duration::minutes(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Dynamo,
}

/// A journal store under test, with handles on it.
pub struct Store {
    pub clock: Arc<FixedClock>,
    open: Box<dyn Fn(Arc<FixedClock>) -> Box<dyn Journal> + Send + Sync>,
    /// The table and how to reach it, for a DynamoDB store.
    table: Option<(DynamoSpec, aws_config::SdkConfig)>,
    _dir: tempfile::TempDir,
    _proxy: Option<Proxy>,
}

impl Store {
    /// A new, empty store of `kind`; a DynamoDB one reached through a
    /// proxy injecting `faults` (the SQLite file has no network to fault).
    pub async fn new(kind: Kind, faults: Faults) -> Store {
        let clock = Arc::new(FixedClock::new(datetime!(2026-03-01 12:00 UTC)));
        let dir = tempfile::tempdir().unwrap();
        match kind {
            Kind::Sqlite => {
                let path = dir.path().join("journal.sqlite3");
                Store {
                    clock,
                    open: Box::new(move |clock: Arc<FixedClock>| {
                        Box::new(SqliteJournal::open(&path, clock).unwrap()) as Box<dyn Journal>
                    }),
                    table: None,
                    _dir: dir,
                    _proxy: None,
                }
            }
            Kind::Dynamo => {
                let (spec, config, proxy) = table(faults).await;
                let reach = (spec.clone(), config.clone());
                Store {
                    clock,
                    open: Box::new(move |clock: Arc<FixedClock>| {
                        let client = ClientFactory::from_env().dynamodb(&config);
                        Box::new(DynamoJournal::new(client, &spec, clock, false))
                            as Box<dyn Journal>
                    }),
                    table: Some(reach),
                    _dir: dir,
                    _proxy: proxy,
                }
            }
        }
    }

    /// A handle on the store, as one machine has it.
    pub fn handle(&self) -> Box<dyn Journal> {
        (self.open)(self.clock.clone())
    }

    /// A handle on a DynamoDB store as its own type, to read what it saw.
    pub fn dynamo(&self) -> Option<DynamoJournal> {
        self.table.as_ref().map(|(spec, config)| {
            let client = ClientFactory::from_env().dynamodb(config);
            DynamoJournal::new(client, spec, self.clock.clone(), false)
        })
    }
}

/// A new journal table in a fresh emulator account, and the SDK
/// configuration that reaches it (through a fault proxy when `faults` has
/// any). Retries as rekey's: ten attempts, here with a short backoff.
pub async fn table(faults: Faults) -> (DynamoSpec, aws_config::SdkConfig, Option<Proxy>) {
    let account = moto().new_account();
    let direct = sdk_config(&account.admin);
    let spec = DynamoSpec {
        table: format!(
            "rekey-journal-{}",
            RotationId::new(time::OffsetDateTime::now_utc())
        ),
        region: None,
        retention_days: 400,
    };
    init(&aws_sdk_dynamodb::Client::new(&direct), &spec.table)
        .await
        .unwrap();
    let faulty = faults.throttle + faults.error_5xx + faults.reset + faults.drop > 0.0
        || faults.latency_ms > 0;
    let proxy = faulty.then(|| Proxy::start(faults));
    let retries = RetryConfig::standard()
        .with_max_attempts(10)
        .with_initial_backoff(std::time::Duration::from_millis(5));
    let mut config = direct.into_builder().retry_config(retries);
    if let Some(p) = &proxy {
        config = config.endpoint_url(p.endpoint());
    }
    (spec, config.build(), proxy)
}

fn holder(run: &str) -> Holder {
    Holder::current(run)
}

pub fn new_rotation(user: &str, run: &str) -> NewRotation {
    NewRotation {
        account_id: ACCOUNT.into(),
        user_name: user.into(),
        user_arn: format!("arn:aws:iam::{ACCOUNT}:user/{user}"),
        old_key_id: OLD.into(),
        keys_before: vec![OLD.into(), OTHER.into()],
        destinations: vec![
            DestinationSpec::SecretsManager {
                secret_id: format!("svc/{user}"),
                region: None,
                role: None,
                external_id: None,
                rotation_token: None,
            },
            DestinationSpec::Ssm {
                path: format!("/svc/{user}"),
                form: None,
                region: None,
                role: None,
                external_id: None,
            },
        ],
        old_key_action: OldKeyAction::Deactivate,
        access: AccessSpec::OldKey,
        run_id: run.into(),
    }
}

fn dest(r: &NewRotation, i: usize) -> Target {
    Target::Destination(r.destinations[i].clone())
}

/// Takes the lease on `user` for `run` and begins a rotation under it.
async fn leased_begin(j: &dyn Journal, user: &str, run: &str) -> RotationId {
    j.acquire_lease(ACCOUNT, user, &holder(run), TTL)
        .await
        .unwrap();
    j.begin_rotation(&new_rotation(user, run)).await.unwrap().id
}

/// Runs `step` Begin then Done, as the engine does around a side effect.
async fn step(j: &dyn Journal, id: RotationId, step: Step, on: Option<&Target>) {
    j.record_on(id, step, on, Phase::Begin, None).await.unwrap();
    j.record_on(id, step, on, Phase::Done, None).await.unwrap();
}

/// A whole rotation of `user`, from lease to release, as the engine writes
/// it; returns its ID.
async fn full_rotation(j: &dyn Journal, user: &str, run: &str) -> RotationId {
    let lease = j
        .acquire_lease(ACCOUNT, user, &holder(run), TTL)
        .await
        .unwrap();
    let new = new_rotation(user, run);
    let id = j.begin_rotation(&new).await.unwrap().id;
    j.record(id, Step::CreateKey, Phase::Begin, None)
        .await
        .unwrap();
    j.set_new_key(id, NEW).await.unwrap();
    j.record(id, Step::CreateKey, Phase::Done, None)
        .await
        .unwrap();
    for i in 0..2 {
        step(j, id, Step::Deliver, Some(&dest(&new, i))).await;
    }
    step(j, id, Step::Verify, None).await;
    step(j, id, Step::Confirm, None).await;
    step(j, id, Step::DeactivateOldKey, None).await;
    j.finish(id, Outcome::Completed, None).await.unwrap();
    j.release_lease(&lease).await.unwrap();
    id
}

/// Declares each test for both backends: `sqlite::NAME`, `dynamodb::NAME`.
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Kind::Sqlite).await
                }
            )+
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Kind::Dynamo).await
                }
            )+
        }
    };
}

conformance!(
    a_rotation_begins_only_under_its_runs_live_lease,
    one_unfinished_rotation_per_user,
    steps_close_only_what_began_and_plan_and_finish_are_the_journals,
    a_finished_rotation_takes_nothing_more,
    the_new_key_is_set_once_and_never_a_key_the_user_had,
    every_step_sequence_reads_back_as_written,
    leases_expire_are_stolen_renewed_and_lost,
    key_records_follow_the_lease_and_close_what_began,
    two_holders_racing_for_one_user_begin_exactly_one_rotation,
    lost_answers_change_nothing,
    throttling_changes_nothing,
);

async fn a_rotation_begins_only_under_its_runs_live_lease(kind: Kind) {
    let store = Store::new(kind, Faults::default()).await;
    let j = store.handle();
    let not_leased = |r: Result<_, JournalError>| matches!(r, Err(JournalError::NotLeased { .. }));
    assert!(not_leased(
        j.begin_rotation(&new_rotation("alice", "r1")).await
    ));
    j.acquire_lease(ACCOUNT, "alice", &holder("r2"), TTL)
        .await
        .unwrap();
    assert!(not_leased(
        j.begin_rotation(&new_rotation("alice", "r1")).await
    ));
    store.clock.advance(TTL);
    assert!(
        not_leased(j.begin_rotation(&new_rotation("alice", "r2")).await),
        "an expired lease is no lease"
    );
    j.acquire_lease(ACCOUNT, "alice", &holder("r1"), TTL)
        .await
        .unwrap();
    let r = j
        .begin_rotation(&new_rotation("alice", "r1"))
        .await
        .unwrap();
    assert_eq!((r.last_step, r.last_phase), (Step::Plan, Phase::Done));
    assert_eq!(r.keys_before, [OLD, OTHER]);
    assert_eq!(j.unfinished().await.unwrap(), [r]);
}

async fn one_unfinished_rotation_per_user(kind: Kind) {
    let store = Store::new(kind, Faults::default()).await;
    let j = store.handle();
    j.acquire_lease(ACCOUNT, "alice", &holder("r1"), TTL)
        .await
        .unwrap();
    let first = j
        .begin_rotation(&new_rotation("alice", "r1"))
        .await
        .unwrap();
    let err = j
        .begin_rotation(&new_rotation("alice", "r1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JournalError::Unfinished { id, .. } if id == first.id),
        "{err:?}"
    );
    // Another user is not held up; a second handle sees the same.
    let other = store.handle();
    other
        .acquire_lease(ACCOUNT, "bob", &holder("r1"), TTL)
        .await
        .unwrap();
    other
        .begin_rotation(&new_rotation("bob", "r1"))
        .await
        .unwrap();
    let err = other
        .begin_rotation(&new_rotation("alice", "r1"))
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Unfinished { .. }), "{err:?}");
    j.finish(first.id, Outcome::Undone, Some("test"))
        .await
        .unwrap();
    let second = other
        .begin_rotation(&new_rotation("alice", "r1"))
        .await
        .unwrap();
    assert_ne!(second.id, first.id);
}

async fn steps_close_only_what_began_and_plan_and_finish_are_the_journals(kind: Kind) {
    let store = Store::new(kind, Faults::default()).await;
    let j = store.handle();
    j.acquire_lease(ACCOUNT, "alice", &holder("r1"), TTL)
        .await
        .unwrap();
    let new = new_rotation("alice", "r1");
    let id = j.begin_rotation(&new).await.unwrap().id;
    let (a, b) = (dest(&new, 0), dest(&new, 1));
    j.record_on(id, Step::Deliver, Some(&a), Phase::Begin, None)
        .await
        .unwrap();
    for phase in [Phase::Done, Phase::Failed, Phase::Refused] {
        for (s, t) in [
            (Step::Deliver, Some(&b)),
            (Step::Deliver, None),
            (Step::Verify, Some(&a)),
        ] {
            let err = j.record_on(id, s, t, phase, None).await.unwrap_err();
            assert!(
                err.to_string().contains("record Begin before acting"),
                "{err}"
            );
        }
    }
    for s in [Step::Plan, Step::Finish] {
        let err = j.record(id, s, Phase::Begin, None).await.unwrap_err();
        assert!(
            err.to_string().contains("begin_rotation and finish"),
            "{err}"
        );
    }
    j.record_on(id, Step::Deliver, Some(&a), Phase::Failed, Some("timeout"))
        .await
        .unwrap();
    let err = j
        .record_on(id, Step::Deliver, Some(&a), Phase::Done, None)
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::OutOfOrder { .. }), "{err:?}");
    let r = j.get(id).await.unwrap();
    assert!(r.open.is_empty(), "{:?}", r.open);
    let events = j.events(id).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3], "refused writes wrote nothing");
    assert_eq!(events[2].detail.as_deref(), Some("timeout"));
}

async fn a_finished_rotation_takes_nothing_more(kind: Kind) {
    let store = Store::new(kind, Faults::default()).await;
    let j = store.handle();
    let id = leased_begin(j.as_ref(), "alice", "r1").await;
    j.record(id, Step::Verify, Phase::Begin, None)
        .await
        .unwrap();
    j.finish(id, Outcome::Undone, Some("verify failed"))
        .await
        .unwrap();
    let finished = |e: JournalError| {
        matches!(
            e,
            JournalError::Finished {
                outcome: Outcome::Undone,
                ..
            }
        )
    };
    assert!(finished(
        j.record(id, Step::Verify, Phase::Done, None)
            .await
            .unwrap_err()
    ));
    assert!(finished(j.set_new_key(id, NEW).await.unwrap_err()));
    assert!(finished(
        j.finish(id, Outcome::Completed, None).await.unwrap_err()
    ));
    let r = j.get(id).await.unwrap();
    assert_eq!(r.outcome, Some(Outcome::Undone));
    assert_eq!(r.error.as_deref(), Some("verify failed"));
    assert_eq!(r.finished_at, Some(store.clock.now()));
    assert!(j.unfinished().await.unwrap().is_empty());
}

async fn the_new_key_is_set_once_and_never_a_key_the_user_had(kind: Kind) {
    let store = Store::new(kind, Faults::default()).await;
    let j = store.handle();
    let id = leased_begin(j.as_ref(), "alice", "r1").await;
    for had in [OLD, OTHER] {
        let err = j.set_new_key(id, had).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("already had it") && !msg.contains(had),
            "{msg}"
        );
    }
    j.set_new_key(id, NEW).await.unwrap();
    j.set_new_key(id, NEW).await.unwrap();
    let err = j.set_new_key(id, "AKIAANOTHERKEY000004").await.unwrap_err();
    assert!(
        err.to_string().contains("already created another key"),
        "{err}"
    );
    assert_eq!(
        store.handle().get(id).await.unwrap().new_key_id.as_deref(),
        Some(NEW)
    );
}

async fn every_step_sequence_reads_back_as_written(kind: Kind) {
    let store = Store::new(kind, Faults::default()).await;
    let j = store.handle();
    let first = full_rotation(j.as_ref(), "alice", "r1").await;
    store.clock.advance(time::Duration::minutes(1));
    // An undone one: created, delivered once, rolled back, key deleted.
    j.acquire_lease(ACCOUNT, "alice", &holder("r2"), TTL)
        .await
        .unwrap();
    let new = new_rotation("alice", "r2");
    let undone = j.begin_rotation(&new).await.unwrap().id;
    j.record(undone, Step::CreateKey, Phase::Begin, None)
        .await
        .unwrap();
    j.set_new_key(undone, NEW).await.unwrap();
    j.record(undone, Step::CreateKey, Phase::Done, None)
        .await
        .unwrap();
    step(j.as_ref(), undone, Step::Deliver, Some(&dest(&new, 0))).await;
    j.record(undone, Step::Verify, Phase::Begin, None)
        .await
        .unwrap();
    j.record(undone, Step::Verify, Phase::Failed, Some("3 of 3 failed"))
        .await
        .unwrap();
    step(j.as_ref(), undone, Step::Rollback, Some(&dest(&new, 0))).await;
    step(j.as_ref(), undone, Step::DeleteNewKey, None).await;
    j.finish(undone, Outcome::Undone, Some("verify failed"))
        .await
        .unwrap();
    store.clock.advance(time::Duration::minutes(1));
    let other = full_rotation(j.as_ref(), "bob", "r3").await;

    // Read back by another handle, as another machine would.
    let reader = store.handle();
    let r = reader.get(first).await.unwrap();
    let done: Vec<Step> = r.completed.iter().map(|c| c.step).collect();
    assert_eq!(
        done,
        [
            Step::Plan,
            Step::CreateKey,
            Step::Deliver,
            Step::Deliver,
            Step::Verify,
            Step::Confirm,
            Step::DeactivateOldKey,
            Step::Finish
        ]
    );
    assert!(r.step_done_on(Step::Deliver, &dest(&new_rotation("alice", "r1"), 1)));
    assert_eq!(
        (r.outcome, r.new_key_id.as_deref()),
        (Some(Outcome::Completed), Some(NEW))
    );
    let events = reader.events(first).await.unwrap();
    assert_eq!(events.len(), 1 + 2 + 2 * 2 + 2 * 3 + 1);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as i64 + 1)
    );
    let u = reader.get(undone).await.unwrap();
    assert_eq!(u.outcome, Some(Outcome::Undone));
    assert!(!u.step_done(Step::Verify) && u.step_done(Step::DeleteNewKey));
    let history: Vec<RotationId> = reader
        .history(10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(history, [other, undone, first], "newest first");
    assert_eq!(reader.history(2).await.unwrap().len(), 2);
    let alice: Vec<RotationId> = reader
        .of_user(ACCOUNT, "alice")
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(alice, [first, undone], "oldest first, one user's");
    let since = store.clock.now() - time::Duration::minutes(5);
    let found = reader.undone_since(ACCOUNT, "alice", since).await.unwrap();
    assert_eq!(found.iter().map(|r| r.id).collect::<Vec<_>>(), [undone]);
    let later = store.clock.now();
    assert!(
        reader
            .undone_since(ACCOUNT, "alice", later)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(reader.unfinished().await.unwrap().is_empty());
    let missing = RotationId::new(store.clock.now());
    assert!(matches!(
        reader.get(missing).await.unwrap_err(),
        JournalError::NotFound { .. }
    ));
}

async fn leases_expire_are_stolen_renewed_and_lost(kind: Kind) {
    let store = Store::new(kind, Faults::default()).await;
    let (one, two) = (store.handle(), store.handle());
    let first = one
        .acquire_lease(ACCOUNT, "alice", &holder("r1"), TTL)
        .await
        .unwrap();
    assert_eq!(first.expires_at, store.clock.now() + TTL);
    let err = two
        .acquire_lease(ACCOUNT, "alice", &holder("r2"), TTL)
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::LeaseHeld { .. }), "{err:?}");
    assert!(err.to_string().contains("run r1"), "{err}");
    // The same run asking again renews, keeping when it took it.
    store.clock.advance(time::Duration::minutes(5));
    let again = one
        .acquire_lease(ACCOUNT, "alice", &holder("r1"), TTL)
        .await
        .unwrap();
    assert_eq!(again.acquired_at, first.acquired_at);
    assert_eq!(again.expires_at, store.clock.now() + TTL);
    // A heartbeat keeps it past its first expiry.
    store.clock.advance(time::Duration::minutes(10));
    let renewed = one.renew_lease(&again, TTL).await.unwrap();
    store.clock.advance(time::Duration::minutes(10));
    assert!(matches!(
        two.acquire_lease(ACCOUNT, "alice", &holder("r2"), TTL)
            .await
            .unwrap_err(),
        JournalError::LeaseHeld { .. }
    ));
    // Expired: stolen; the old holder has lost it and is told so.
    store.clock.advance(TTL);
    let stolen = two
        .acquire_lease(ACCOUNT, "alice", &holder("r2"), TTL)
        .await
        .unwrap();
    assert_eq!(stolen.holder.run_id, "r2");
    for err in [
        one.renew_lease(&renewed, TTL).await.unwrap_err(),
        one.release_lease(&renewed).await.unwrap_err(),
    ] {
        assert!(matches!(err, JournalError::LeaseLost { .. }), "{err:?}");
        assert!(err.to_string().contains("was lost"), "{err}");
    }
    let err = one
        .begin_rotation(&new_rotation("alice", "r1"))
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::NotLeased { .. }), "{err:?}");
    // Released: free for anyone; releasing again is fine.
    two.release_lease(&stolen).await.unwrap();
    two.release_lease(&stolen).await.unwrap();
    one.acquire_lease(ACCOUNT, "alice", &holder("r1"), TTL)
        .await
        .unwrap();
}

fn key_event(
    user: &str,
    key: &str,
    op: KeyOp,
    phase: Phase,
    run: &str,
    at: time::OffsetDateTime,
) -> NewKeyEvent {
    NewKeyEvent {
        account_id: ACCOUNT.into(),
        user_name: user.into(),
        key_id: key.into(),
        op,
        phase,
        run_id: run.into(),
        as_of: at,
        detail: Some("{\"age_days\":120}".into()),
    }
}

async fn key_records_follow_the_lease_and_close_what_began(kind: Kind) {
    let store = Store::new(kind, Faults::default()).await;
    let j = store.handle();
    let now = store.clock.now();
    let begin = key_event("alice", OLD, KeyOp::Deactivate, Phase::Begin, "r1", now);
    let err = j.record_key(&begin).await.unwrap_err();
    assert!(matches!(err, JournalError::NotLeased { .. }), "{err:?}");
    j.acquire_lease(ACCOUNT, "alice", &holder("r1"), TTL)
        .await
        .unwrap();
    let done = key_event("alice", OLD, KeyOp::Deactivate, Phase::Done, "r1", now);
    let err = j.record_key(&done).await.unwrap_err();
    assert!(matches!(err, JournalError::KeyOutOfOrder { .. }), "{err:?}");
    let warn_begin = key_event("alice", OTHER, KeyOp::Warn, Phase::Begin, "r1", now);
    assert!(
        j.record_key(&warn_begin).await.is_err(),
        "a warning is only done"
    );
    let a = j.record_key(&begin).await.unwrap();
    store.clock.advance(time::Duration::seconds(1));
    let b = j.record_key(&done).await.unwrap();
    let w = j
        .record_key(&key_event(
            "alice",
            OTHER,
            KeyOp::Warn,
            Phase::Done,
            "r1",
            now,
        ))
        .await
        .unwrap();
    assert!(
        a.seq < b.seq && b.seq < w.seq,
        "{} {} {}",
        a.seq,
        b.seq,
        w.seq
    );
    assert_eq!(b.at, store.clock.now());
    j.acquire_lease(ACCOUNT, "bob", &holder("r1"), TTL)
        .await
        .unwrap();
    let bob = j
        .record_key(&key_event("bob", NEW, KeyOp::Warn, Phase::Done, "r1", now))
        .await
        .unwrap();
    let reader = store.handle();
    let alice = reader.key_events(ACCOUNT, "alice").await.unwrap();
    assert_eq!(alice, [a.clone(), b.clone(), w.clone()]);
    assert_eq!(
        reader.key_events_in(ACCOUNT).await.unwrap(),
        [a, b, w, bob.clone()]
    );
    let latest = reader.key_history(2).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0], bob, "newest first");
    assert!(
        reader
            .key_events_in("999999999999")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn two_holders_racing_for_one_user_begin_exactly_one_rotation(kind: Kind) {
    let store = Store::new(kind, Faults::default()).await;
    for round in 0..10 {
        let user = format!("racer-{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|run| {
                let (j, barrier, user) = (store.handle(), barrier.clone(), user.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let Ok(lease) = j.acquire_lease(ACCOUNT, &user, &holder(run), TTL).await else {
                        return None;
                    };
                    let begun = j.begin_rotation(&new_rotation(&user, run)).await;
                    j.release_lease(&lease).await.unwrap();
                    begun.ok().map(|r| r.id)
                })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            won.extend(t.await.unwrap());
        }
        // Both may win in turn (the first released before the second
        // asked), but only one rotation may begin: the second finds it.
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        let of_user = store.handle().of_user(ACCOUNT, &user).await.unwrap();
        assert_eq!(of_user.len(), 1, "round {round}");
    }
}

/// The writes of [`full_rotation`] and of key records, through a network
/// that `faults` disturbs, must read back exactly as without it.
/// Returns how many writes were recognised as landed after a lost answer.
async fn through(kind: Kind, faults: Faults) -> u64 {
    let store = Store::new(kind, faults).await;
    let (dynamo, file) = (store.dynamo(), store.handle());
    let j: &dyn Journal = match &dynamo {
        Some(d) => d,
        None => file.as_ref(),
    };
    let mut ids = Vec::new();
    for i in 0..4 {
        store.clock.advance(time::Duration::seconds(1));
        ids.push(full_rotation(j, &format!("user-{i}"), &format!("run-{i}")).await);
        j.acquire_lease(ACCOUNT, &format!("user-{i}"), &holder("keys"), TTL)
            .await
            .unwrap();
        let now = store.clock.now();
        for phase in [Phase::Begin, Phase::Done] {
            j.record_key(&key_event(
                &format!("user-{i}"),
                OLD,
                KeyOp::Retire,
                phase,
                "keys",
                now,
            ))
            .await
            .unwrap();
        }
    }
    let reader = store.handle();
    for id in &ids {
        let events = reader.events(*id).await.unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=14).collect::<Vec<_>>(),
            "no event twice, none missing"
        );
        assert_eq!(
            reader.get(*id).await.unwrap().outcome,
            Some(Outcome::Completed)
        );
    }
    let keys = reader.key_events_in(ACCOUNT).await.unwrap();
    assert_eq!(keys.len(), 8, "each key record once: {keys:?}");
    let mut history: Vec<RotationId> = reader
        .history(10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    history.reverse();
    assert_eq!(history, ids);
    assert!(reader.unfinished().await.unwrap().is_empty());
    dynamo.map_or(0, |d| d.recovered_writes())
}

async fn lost_answers_change_nothing(kind: Kind) {
    let recovered = through(
        kind,
        Faults {
            drop: 0.2,
            ..Faults::default()
        },
    )
    .await;
    // A fifth of ~80 writes lost their answer: some were recognised by
    // their token (the file has no answer to lose).
    assert_eq!(recovered > 0, kind == Kind::Dynamo, "{recovered}");
}

async fn throttling_changes_nothing(kind: Kind) {
    through(
        kind,
        Faults {
            throttle: 0.3,
            ..Faults::default()
        },
    )
    .await;
}

/// `rekey journal copy` reads a SQLite journal into a DynamoDB one: the
/// same rotations, events and key records, and the unfinished rotation
/// resumed there by another holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_journal_copied_into_dynamodb_is_resumed_by_another_holder() {
    let clock = Arc::new(FixedClock::new(datetime!(2026-03-01 12:00 UTC)));
    let dir = tempfile::tempdir().unwrap();
    let source = SqliteJournal::open(&dir.path().join("old.sqlite3"), clock.clone()).unwrap();
    let done = full_rotation(&source, "alice", "r1").await;
    let lease = Journal::acquire_lease(&source, ACCOUNT, "bob", &holder("r2"), TTL)
        .await
        .unwrap();
    let open = Journal::begin_rotation(&source, &new_rotation("bob", "r2"))
        .await
        .unwrap()
        .id;
    Journal::record(&source, open, Step::CreateKey, Phase::Begin, None)
        .await
        .unwrap();
    let warned = key_event("bob", OTHER, KeyOp::Warn, Phase::Done, "r2", clock.now());
    Journal::record_key(&source, &warned).await.unwrap();
    // A run still holding a lease may still write to the file: refused.
    let (spec, config, _) = table(Faults::default()).await;
    let dest = DynamoJournal::new(
        ClientFactory::from_env().dynamodb(&config),
        &spec,
        clock.clone(),
        false,
    );
    let err = copy(&source, &dest).await.unwrap_err();
    assert!(err.to_string().contains("hold a lease"), "{err}");
    assert!(dest.is_empty().await.unwrap(), "refused: nothing written");
    Journal::release_lease(&source, &lease).await.unwrap();
    let copied = copy(&source, &dest).await.unwrap();
    assert_eq!(
        (copied.rotations, copied.unfinished, copied.key_records),
        (2, 1, 1)
    );
    let again = copy(&source, &dest).await.unwrap_err();
    assert!(again.to_string().contains("is not empty"), "{again}");

    for id in [done, open] {
        assert_eq!(
            dest.get(id).await.unwrap(),
            Journal::get(&source, id).await.unwrap()
        );
        assert_eq!(
            Journal::events(&dest, id).await.unwrap(),
            Journal::events(&source, id).await.unwrap()
        );
    }
    assert_eq!(
        Journal::key_history(&dest, 10).await.unwrap(),
        Journal::key_history(&source, 10).await.unwrap()
    );
    let unfinished = Journal::unfinished(&dest).await.unwrap();
    assert_eq!(unfinished.iter().map(|r| r.id).collect::<Vec<_>>(), [open]);
    assert_eq!(
        unfinished[0].open.len(),
        1,
        "CreateKey left open, as the dead run left it"
    );
    // Another holder resumes it there; one unfinished rotation per user
    // holds across the copy.
    let other = DynamoJournal::new(
        ClientFactory::from_env().dynamodb(&config),
        &spec,
        clock.clone(),
        false,
    );
    other
        .acquire_lease(ACCOUNT, "bob", &holder("r3"), TTL)
        .await
        .unwrap();
    let err = Journal::begin_rotation(&other, &new_rotation("bob", "r3"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JournalError::Unfinished { id, .. } if id == open),
        "{err:?}"
    );
    Journal::record(
        &other,
        open,
        Step::CreateKey,
        Phase::Failed,
        Some("looked: no key"),
    )
    .await
    .unwrap();
    Journal::finish(&other, open, Outcome::Undone, Some("resumed"))
        .await
        .unwrap();
    assert!(Journal::unfinished(&other).await.unwrap().is_empty());
    Journal::begin_rotation(&other, &new_rotation("bob", "r3"))
        .await
        .unwrap();
}
