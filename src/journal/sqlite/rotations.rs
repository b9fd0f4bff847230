//! Rotation writes: each reads what the rules in `journal::rules` decide
//! from (the lease, the user's unfinished rotation, the rotation with its
//! events), asks them, and writes what they allow. Each function runs
//! inside the caller's `BEGIN IMMEDIATE` transaction, so nothing changes
//! between the read and the write.

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use super::rows::{Ms, append, destinations, list, load};
use super::{leases, sql};
use crate::journal::rules::{self, NewKey};
use crate::journal::{
    JournalError, NewRotation, Outcome, Phase, Rotation, RotationId, Step, Target,
};

pub(super) fn begin(
    tx: &Connection,
    new: &NewRotation,
    now: OffsetDateTime,
) -> Result<Rotation, JournalError> {
    let lease = leases::read(tx, &new.account_id, &new.user_name)?;
    let earlier: Option<RotationId> = tx
        .query_row(
            "SELECT id FROM rotations
             WHERE account_id = ?1 AND user_name = ?2 AND outcome IS NULL",
            params![new.account_id, new.user_name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("looking for unfinished rotations"))?;
    rules::may_begin(new, lease.as_ref(), earlier, now)?;
    let id = RotationId::new(now);
    tx.execute(
        "INSERT INTO rotations (id, account_id, user_name, user_arn, old_key_id, keys_before,
            destinations, old_key_action, run_id, last_step, last_phase, started_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
        params![
            id,
            new.account_id,
            new.user_name,
            new.user_arn,
            new.old_key_id,
            list(&new.keys_before),
            destinations(&new.destinations),
            new.old_key_action,
            new.run_id,
            Step::Plan,
            Phase::Done,
            Ms(now),
        ],
    )
    .map_err(sql("recording a new rotation"))?;
    let access = new.access.to_plan_detail();
    append(tx, id, Step::Plan, None, Phase::Done, Some(&access), now)?;
    load(tx, id)
}

pub(super) fn record(
    tx: &Connection,
    id: RotationId,
    step: Step,
    target: Option<&Target>,
    phase: Phase,
    detail: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), JournalError> {
    rules::may_record(&load(tx, id)?, step, target, phase)?;
    append(tx, id, step, target, phase, detail, now)
}

pub(super) fn set_new_key(
    tx: &Connection,
    id: RotationId,
    new_key_id: &str,
    now: OffsetDateTime,
) -> Result<(), JournalError> {
    if rules::may_set_new_key(&load(tx, id)?, new_key_id)? == NewKey::Known {
        return Ok(());
    }
    tx.execute(
        "UPDATE rotations SET new_key_id = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, new_key_id, Ms(now)],
    )
    .map_err(sql("recording the new key"))?;
    Ok(())
}

pub(super) fn finish(
    tx: &Connection,
    id: RotationId,
    outcome: Outcome,
    error: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), JournalError> {
    rules::may_finish(&load(tx, id)?)?;
    let detail = rules::finish_detail(outcome, error);
    append(tx, id, Step::Finish, None, Phase::Done, Some(&detail), now)?;
    tx.execute(
        "UPDATE rotations SET outcome = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
        params![id, outcome, error, Ms(now)],
    )
    .map_err(sql("finishing a rotation"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::clock::Clock;
    use crate::journal::StepTarget;
    use crate::journal::sqlite::SqliteJournal;
    use crate::journal::sqlite::fixtures::*;
    use crate::journal::{JournalError, Outcome, Phase, Rotation, RotationId, Step, Target};

    fn done(step: Step, target: Option<&Target>) -> StepTarget {
        StepTarget {
            step,
            target: target.cloned(),
        }
    }

    /// Runs `step` on the whole rotation, Begin then Done, as the engine would.
    fn run(journal: &SqliteJournal, id: RotationId, step: Step, target: Option<&Target>) {
        journal
            .record_on(id, step, target, Phase::Begin, None)
            .unwrap();
        journal
            .record_on(id, step, target, Phase::Done, None)
            .unwrap();
    }

    #[test]
    fn a_rotation_round_trips_from_plan_to_finish() {
        let (journal, clock) = in_memory();
        let started = clock.now();
        let rotation = begin(&journal, "alice", "run-1");
        assert_eq!(rotation.last_step, Step::Plan);
        assert_eq!(rotation.last_phase, Phase::Done);
        assert_eq!(rotation.completed, [done(Step::Plan, None)]);
        assert_eq!(rotation.keys_before, [OLD_KEY, OTHER_KEY]);
        assert_eq!(rotation.started_at, started);
        let id = rotation.id;

        journal
            .record(id, Step::CreateKey, Phase::Begin, None)
            .unwrap();
        journal.set_new_key(id, NEW_KEY).unwrap();
        journal
            .record(id, Step::CreateKey, Phase::Done, None)
            .unwrap();
        let [dev, ci] = [dev(), profile("ci")].map(Target::Destination);
        let [dev, ci] = [&dev, &ci];
        run(&journal, id, Step::Deliver, Some(dev));
        let got = journal.get(id).unwrap();
        assert!(got.step_done_on(Step::Deliver, dev) && !got.step_done_on(Step::Deliver, ci));
        run(&journal, id, Step::Deliver, Some(ci));
        clock.advance(time::Duration::seconds(30));
        run(&journal, id, Step::Verify, None);
        run(&journal, id, Step::DeactivateOldKey, None);
        journal.finish(id, Outcome::Completed, None).unwrap();

        let got = journal.get(id).unwrap();
        assert!(got.is_finished());
        assert_eq!(got.outcome, Some(Outcome::Completed));
        assert_eq!(got.new_key_id.as_deref(), Some(NEW_KEY));
        assert_eq!((got.last_step, got.last_phase), (Step::Finish, Phase::Done));
        assert_eq!(got.started_at, started);
        assert_eq!(got.finished_at, Some(clock.now()));
        assert!(got.open.is_empty());
        assert!(got.step_done(Step::Verify) && !got.step_done(Step::DeleteOldKey));
        assert_eq!(
            got.completed,
            [
                done(Step::Plan, None),
                done(Step::CreateKey, None),
                done(Step::Deliver, Some(dev)),
                done(Step::Deliver, Some(ci)),
                done(Step::Verify, None),
                done(Step::DeactivateOldKey, None),
                done(Step::Finish, None),
            ]
        );

        let events = journal.events(id).unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
        assert_eq!(events[1].step, Step::CreateKey);
        assert_eq!(events[3].target.as_ref(), Some(dev));
        let last = events.last().unwrap();
        assert_eq!(last.detail.as_deref(), Some("completed"));
        assert_eq!(last.at, clock.now());
    }

    #[test]
    fn unfinished_is_oldest_first_and_history_newest_first() {
        let (journal, clock) = in_memory();
        let a = begin(&journal, "a", "run-a").id;
        clock.advance(time::Duration::seconds(1));
        let b = begin(&journal, "b", "run-b").id;
        clock.advance(time::Duration::seconds(1));
        let c = begin(&journal, "c", "run-c").id;
        journal
            .finish(b, Outcome::Undone, Some("verify failed"))
            .unwrap();

        let ids = |rs: Vec<Rotation>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(journal.unfinished().unwrap()), [a, c]);
        assert_eq!(ids(journal.history(2).unwrap()), [c, b]);
        assert_eq!(ids(journal.history(10).unwrap()), [c, b, a]);
        assert!(journal.history(0).unwrap().is_empty());
        let undone = journal.get(b).unwrap();
        assert_eq!(undone.error.as_deref(), Some("verify failed"));
        let last = journal.events(b).unwrap().pop().unwrap();
        assert_eq!(last.detail.as_deref(), Some("undone: verify failed"));
    }

    #[test]
    fn a_step_left_open_shows_after_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let id = {
            let journal = SqliteJournal::open(&path, clock()).unwrap();
            let id = begin(&journal, "alice", "run-1").id;
            journal
                .record(id, Step::CreateKey, Phase::Begin, None)
                .unwrap();
            id // the run dies here: CreateKey's answer never arrived
        };
        let journal = SqliteJournal::open(&path, clock()).unwrap();
        let unfinished = journal.unfinished().unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].id, id);
        assert_eq!(unfinished[0].open, [done(Step::CreateKey, None)]);
        assert_eq!(unfinished[0].keys_before, [OLD_KEY, OTHER_KEY]);
    }

    #[test]
    fn steps_must_be_begun_before_they_are_done() {
        let (journal, _) = in_memory();
        let id = begin(&journal, "alice", "run-1").id;
        let refused = journal.record(id, Step::Verify, Phase::Done, None);
        assert!(matches!(refused, Err(JournalError::OutOfOrder { .. })));
        // Begun on one destination is not begun on another.
        let [a, b] = [dev(), profile("ci")].map(Target::Destination);
        journal
            .record_on(id, Step::Deliver, Some(&a), Phase::Begin, None)
            .unwrap();
        let refused = journal.record_on(id, Step::Deliver, Some(&b), Phase::Done, None);
        assert!(matches!(refused, Err(JournalError::OutOfOrder { .. })));
        // Failed closes the step; a retry begins it again.
        journal
            .record_on(
                id,
                Step::Deliver,
                Some(&a),
                Phase::Failed,
                Some("disk full"),
            )
            .unwrap();
        let refused = journal.record_on(id, Step::Deliver, Some(&a), Phase::Done, None);
        assert!(matches!(refused, Err(JournalError::OutOfOrder { .. })));
        for step in [Step::Plan, Step::Finish] {
            let refused = journal.record(id, step, Phase::Begin, None).unwrap_err();
            assert!(refused.to_string().contains("begin_rotation and finish"));
        }
    }

    #[test]
    fn a_finished_rotation_takes_no_more_records() {
        let (journal, _) = in_memory();
        let id = begin(&journal, "alice", "run-1").id;
        journal
            .finish(id, Outcome::Failed, Some("IAM said no"))
            .unwrap();
        let finished = |r: Result<(), JournalError>| {
            matches!(
                r,
                Err(JournalError::Finished {
                    outcome: Outcome::Failed,
                    ..
                })
            )
        };
        assert!(finished(journal.record(
            id,
            Step::CreateKey,
            Phase::Begin,
            None
        )));
        assert!(finished(journal.set_new_key(id, NEW_KEY)));
        assert!(finished(journal.finish(id, Outcome::Completed, None)));
    }

    #[test]
    fn the_new_key_is_set_once_and_never_an_old_one() {
        let (journal, _) = in_memory();
        let id = begin(&journal, "alice", "run-1").id;
        let err = journal.set_new_key(id, OTHER_KEY).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("AKIA…0002") && !msg.contains(OTHER_KEY),
            "{msg}"
        );
        journal.set_new_key(id, NEW_KEY).unwrap();
        journal.set_new_key(id, NEW_KEY).unwrap();
        let err = journal.set_new_key(id, "AKIAANOTHERKEY000004").unwrap_err();
        assert!(matches!(err, JournalError::NewKeyRejected { .. }));
        assert_eq!(
            journal.get(id).unwrap().new_key_id.as_deref(),
            Some(NEW_KEY)
        );
    }

    #[test]
    fn beginning_needs_the_lease_and_no_unfinished_rotation() {
        let (journal, clock) = in_memory();
        let refused = journal.begin_rotation(&plan("alice", "run-1"));
        assert!(matches!(refused, Err(JournalError::NotLeased { .. })));
        let first = begin(&journal, "alice", "run-1").id;
        let err = journal.begin_rotation(&plan("alice", "run-1")).unwrap_err();
        assert!(matches!(err, JournalError::Unfinished { id, .. } if id == first));
        journal.finish(first, Outcome::Completed, None).unwrap();
        clock.advance(TTL);
        let expired = journal.begin_rotation(&plan("alice", "run-1"));
        assert!(matches!(expired, Err(JournalError::NotLeased { .. })));
    }

    #[test]
    fn unknown_rotations_are_not_found() {
        let (journal, _) = in_memory();
        begin(&journal, "alice", "run-1");
        // Neither a number of an older journal nor a ULID nobody made.
        let clock = clock();
        for id in [RotationId::numbered(99), RotationId::new(clock.now())] {
            let not_found =
                |e: JournalError| matches!(e, JournalError::NotFound { id: i } if i == id);
            assert!(not_found(journal.get(id).unwrap_err()));
            assert!(not_found(journal.events(id).unwrap_err()));
            assert!(not_found(
                journal
                    .record(id, Step::Verify, Phase::Begin, None)
                    .unwrap_err()
            ));
            assert!(not_found(
                journal.finish(id, Outcome::Undone, None).unwrap_err()
            ));
        }
    }

    #[test]
    fn text_round_trips_exactly_and_no_secret_reaches_the_file() {
        // A secret the engine holds in memory and never gives the journal.
        const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
        let detail = "AccessDenied: \"iam:UpdateAccessKey\"\non user/ålice; 'quotes' ✓";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let journal = SqliteJournal::open(&path, clock()).unwrap();
        let id = begin(&journal, "alice-sentinel-user", "run-1").id;
        journal
            .record(id, Step::CreateKey, Phase::Begin, None)
            .unwrap();
        journal.set_new_key(id, NEW_KEY).unwrap();
        journal
            .record(id, Step::CreateKey, Phase::Done, Some("created"))
            .unwrap();
        let dest = &Target::Destination(dev());
        journal
            .record_on(id, Step::Deliver, Some(dest), Phase::Begin, None)
            .unwrap();
        journal
            .record_on(id, Step::Deliver, Some(dest), Phase::Failed, Some(detail))
            .unwrap();
        journal.finish(id, Outcome::Failed, Some(detail)).unwrap();

        let events = journal.events(id).unwrap();
        assert_eq!(events[4].detail.as_deref(), Some(detail));
        assert_eq!(events[4].target.as_ref(), Some(dest));
        let latest = journal.history(1).unwrap().remove(0);
        assert_eq!(latest.error.as_deref(), Some(detail));

        let mut raw = Vec::new();
        for suffix in ["", "-wal"] {
            let file = path.with_file_name(format!("journal.sqlite3{suffix}"));
            raw.extend(std::fs::read(file).unwrap_or_default());
        }
        let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(
            contains("alice-sentinel-user"),
            "the scan must see what was written"
        );
        assert!(!contains(SECRET));
    }

    #[test]
    fn two_handles_on_one_file_see_each_others_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let one = SqliteJournal::open(&path, clock()).unwrap();
        let two = SqliteJournal::open(&path, clock()).unwrap();
        let id = begin(&one, "alice", "run-1").id;
        two.record(id, Step::CreateKey, Phase::Begin, None).unwrap();
        assert_eq!(one.get(id).unwrap().last_step, Step::CreateKey);
        assert_eq!(two.unfinished().unwrap().len(), 1);
    }
}
