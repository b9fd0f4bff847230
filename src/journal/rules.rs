//! The rules every rotation write passes before it is made, so that the
//! journal cannot say something the engine did not do — as pure functions
//! of what the backend read, as [`super::lease`] is for leases. A backend
//! reads the facts (in one transaction, or for a conditional write), asks
//! the rule, and stores what it allows: the SQLite one in
//! `sqlite::rotations`; a DynamoDB one (issue 18) calls the same rules
//! instead of re-encoding them in its own conditions.
//!
//! - A rotation begins only under its user's live lease, and while no other
//!   rotation of that user is unfinished: it may have left a key "created,
//!   not delivered" that must be dealt with first (DESIGN.md invariant 2).
//! - `Plan` and `Finish` are recorded only by beginning and finishing.
//! - A step is `Done`, `Failed` or `Refused` only after a `Begin` of the
//!   same step and target: a `Done` with no `Begin` would mean a side effect
//!   happened unjournaled.
//! - A finished rotation stays finished.
//! - The new key is set once (the same key again is fine), and is never a
//!   key the user already had when the rotation was planned: calling an old
//!   key "new" would let a rollback delete it — a lockout.

use time::OffsetDateTime;

use super::error::mask;
use super::{
    Event, JournalError, Lease, NewRotation, Outcome, Phase, Rotation, RotationId, Step,
    StepTarget, Target,
};

/// Whether `new` may begin, given the user's lease on record and the ID of
/// the user's unfinished rotation, if there is one.
pub(crate) fn may_begin(
    new: &NewRotation,
    lease: Option<&Lease>,
    unfinished: Option<RotationId>,
    now: OffsetDateTime,
) -> Result<(), JournalError> {
    leased(lease, (&new.account_id, &new.user_name, &new.run_id), now)?;
    match unfinished {
        Some(id) => Err(JournalError::Unfinished {
            account_id: new.account_id.clone(),
            user_name: new.user_name.clone(),
            id,
        }),
        None => Ok(()),
    }
}

/// Whether run `run_id` holds the live lease on the user (`lease`, as on
/// record): what every write of a rotation or a key act begins with.
pub(crate) fn leased(
    lease: Option<&Lease>,
    (account_id, user_name, run_id): (&str, &str, &str),
    now: OffsetDateTime,
) -> Result<(), JournalError> {
    match lease.is_some_and(|l| l.holder.run_id == run_id && l.expires_at > now) {
        true => Ok(()),
        false => Err(JournalError::NotLeased {
            account_id: account_id.to_string(),
            user_name: user_name.to_string(),
            run_id: run_id.to_string(),
        }),
    }
}

/// Whether `step` on `target` may be recorded in `phase` on rotation `r`.
pub(crate) fn may_record(
    r: &Rotation,
    step: Step,
    target: Option<&Target>,
    phase: Phase,
) -> Result<(), JournalError> {
    unfinished(r)?;
    let out_of_order = |reason| JournalError::OutOfOrder {
        id: r.id,
        step,
        phase,
        reason,
    };
    if matches!(step, Step::Plan | Step::Finish) {
        return Err(out_of_order("begin_rotation and finish record it"));
    }
    let is_open = r
        .open
        .iter()
        .any(|o| o.step == step && o.target.as_ref() == target);
    if phase != Phase::Begin && !is_open {
        return Err(out_of_order(
            "it was not begun (record Begin before acting)",
        ));
    }
    Ok(())
}

/// What to do with a new key ID the engine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewKey {
    /// The rotation already knows it: nothing to write.
    Known,
    /// Record it.
    Record,
}

/// Whether `key` may be recorded as the key rotation `r` created.
pub(crate) fn may_set_new_key(r: &Rotation, key: &str) -> Result<NewKey, JournalError> {
    unfinished(r)?;
    let rejected = |reason| JournalError::NewKeyRejected {
        id: r.id,
        key: mask(key),
        reason,
    };
    match r.new_key_id.as_deref() {
        Some(known) if known == key => return Ok(NewKey::Known),
        Some(_) => return Err(rejected("this rotation already created another key")),
        None => {}
    }
    if r.old_key_id == key || r.keys_before.iter().any(|k| k == key) {
        return Err(rejected(
            "the user already had it when the rotation was planned",
        ));
    }
    Ok(NewKey::Record)
}

/// Whether rotation `r` may be finished.
pub(crate) fn may_finish(r: &Rotation) -> Result<(), JournalError> {
    unfinished(r)
}

/// The detail of the `Finish` event: the outcome, and the error if any.
pub(crate) fn finish_detail(outcome: Outcome, error: Option<&str>) -> String {
    match error {
        Some(error) => format!("{outcome}: {error}"),
        None => outcome.to_string(),
    }
}

/// A rotation that may still be written to.
fn unfinished(r: &Rotation) -> Result<(), JournalError> {
    match r.outcome {
        Some(outcome) => Err(JournalError::Finished { id: r.id, outcome }),
        None => Ok(()),
    }
}

/// Works out the completed and open steps from a rotation's events, in
/// order: a step is open from its `Begin` until a `Done`, `Failed` or
/// `Refused` of the same step and target, and completed once it was `Done`.
pub(crate) fn progress(events: &[Event]) -> (Vec<StepTarget>, Vec<StepTarget>) {
    let mut completed: Vec<StepTarget> = Vec::new();
    let mut open: Vec<StepTarget> = Vec::new();
    for e in events {
        let st = StepTarget {
            step: e.step,
            target: e.target.clone(),
        };
        open.retain(|o| *o != st);
        match e.phase {
            Phase::Begin => open.push(st),
            Phase::Done if !completed.contains(&st) => completed.push(st),
            Phase::Done | Phase::Failed | Phase::Refused => {}
        }
    }
    (completed, open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::DestinationSpec;
    use crate::journal::{AccessSpec, Holder, OldKeyAction};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);
    const OLD: &str = "AKIAOLDOLDOLDOLD0001";
    const OTHER: &str = "AKIAOTHEROTHEROTH002";
    const NEW: &str = "AKIANEWNEWNEWNEW0003";

    fn new_rotation() -> NewRotation {
        NewRotation {
            account_id: "111111111111".into(),
            user_name: "alice".into(),
            user_arn: "arn:aws:iam::111111111111:user/alice".into(),
            old_key_id: OLD.into(),
            keys_before: vec![OLD.into(), OTHER.into()],
            destinations: vec![],
            old_key_action: OldKeyAction::Deactivate,
            access: AccessSpec::OldKey,
            run_id: "run-1".into(),
        }
    }

    fn lease(run_id: &str, expires_at: OffsetDateTime) -> Lease {
        Lease {
            account_id: "111111111111".into(),
            user_name: "alice".into(),
            holder: Holder {
                run_id: run_id.into(),
                pid: 42,
                host: "h".into(),
            },
            acquired_at: NOW - time::Duration::minutes(1),
            expires_at,
        }
    }

    fn event(seq: i64, step: Step, target: Option<&str>, phase: Phase) -> Event {
        Event {
            rotation_id: RotationId::numbered(1),
            seq,
            step,
            phase,
            target: target.map(dest),
            at: NOW,
            detail: None,
        }
    }

    /// A destination named `name` (as an old journal named them).
    fn dest(name: &str) -> Target {
        Target::Destination(DestinationSpec::Legacy(name.into()))
    }

    fn st(step: Step, target: Option<&str>) -> StepTarget {
        StepTarget {
            step,
            target: target.map(dest),
        }
    }

    /// Rotation 1 as its events make it.
    fn rotation(events: &[Event]) -> Rotation {
        let (completed, open) = progress(events);
        let new = new_rotation();
        Rotation {
            id: RotationId::numbered(1),
            account_id: new.account_id,
            user_name: new.user_name,
            user_arn: new.user_arn,
            old_key_id: new.old_key_id,
            new_key_id: None,
            keys_before: new.keys_before,
            destinations: new.destinations,
            old_key_action: new.old_key_action,
            access: new.access,
            run_id: new.run_id,
            last_step: Step::Plan,
            last_phase: Phase::Done,
            completed,
            open,
            outcome: None,
            error: None,
            started_at: NOW,
            updated_at: NOW,
            finished_at: None,
        }
    }

    #[test]
    fn a_rotation_begins_only_under_a_live_lease_of_its_run() {
        let new = new_rotation();
        let not_leased = |r: Result<(), JournalError>| matches!(r, Err(JournalError::NotLeased { ref run_id, .. }) if run_id == "run-1");
        assert!(not_leased(may_begin(&new, None, None, NOW)));
        let theirs = lease("run-2", NOW + time::Duration::minutes(5));
        assert!(not_leased(may_begin(&new, Some(&theirs), None, NOW)));
        let expired = lease("run-1", NOW);
        assert!(not_leased(may_begin(&new, Some(&expired), None, NOW)));
        let mine = lease("run-1", NOW + time::Duration::seconds(1));
        assert!(may_begin(&new, Some(&mine), None, NOW).is_ok());
    }

    #[test]
    fn one_unfinished_rotation_per_user() {
        let mine = lease("run-1", NOW + time::Duration::minutes(5));
        let err = may_begin(
            &new_rotation(),
            Some(&mine),
            Some(RotationId::numbered(7)),
            NOW,
        )
        .unwrap_err();
        assert!(
            matches!(err, JournalError::Unfinished { id, .. } if id.number() == Some(7)),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("user alice in account 111111111111 has an unfinished rotation"),
            "{msg}"
        );
    }

    #[test]
    fn done_failed_and_refused_come_only_after_a_begin_of_the_same_step_and_target() {
        let begun = rotation(&[
            event(1, Step::Plan, None, Phase::Done),
            event(2, Step::Deliver, Some("a"), Phase::Begin),
        ]);
        let [a, b] = [dest("a"), dest("b")];
        for phase in [Phase::Done, Phase::Failed, Phase::Refused] {
            assert!(may_record(&begun, Step::Deliver, Some(&a), phase).is_ok());
            for (step, target) in [
                (Step::Deliver, Some(&b)),
                (Step::Deliver, None),
                (Step::Deliver, Some(&Target::Key("a".into()))),
                (Step::Verify, Some(&a)),
            ] {
                let err = may_record(&begun, step, target, phase).unwrap_err();
                assert!(matches!(err, JournalError::OutOfOrder { .. }), "{err:?}");
                assert!(
                    err.to_string().contains("record Begin before acting"),
                    "{err}"
                );
            }
        }
        // Begin is always allowed; once closed, the step must begin again.
        assert!(may_record(&begun, Step::Verify, None, Phase::Begin).is_ok());
        let failed = rotation(&[
            event(1, Step::Deliver, Some("a"), Phase::Begin),
            event(2, Step::Deliver, Some("a"), Phase::Failed),
        ]);
        assert!(may_record(&failed, Step::Deliver, Some(&a), Phase::Done).is_err());
    }

    #[test]
    fn plan_and_finish_are_recorded_only_by_beginning_and_finishing() {
        let r = rotation(&[event(1, Step::Plan, None, Phase::Done)]);
        for step in [Step::Plan, Step::Finish] {
            for phase in Phase::ALL {
                let err = may_record(&r, step, None, *phase).unwrap_err();
                assert!(
                    err.to_string().contains("begin_rotation and finish"),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn a_finished_rotation_takes_nothing_more() {
        let mut r = rotation(&[event(1, Step::Verify, None, Phase::Begin)]);
        r.outcome = Some(Outcome::Undone);
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
            may_record(&r, Step::Verify, None, Phase::Done).unwrap_err()
        ));
        assert!(finished(may_set_new_key(&r, NEW).unwrap_err()));
        assert!(finished(may_finish(&r).unwrap_err()));
    }

    #[test]
    fn the_new_key_is_set_once_and_is_never_one_the_user_had() {
        let mut r = rotation(&[]);
        assert_eq!(may_set_new_key(&r, NEW).unwrap(), NewKey::Record);
        for had in [OLD, OTHER] {
            let err = may_set_new_key(&r, had).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("already had it") && !msg.contains(had),
                "{msg}"
            );
        }
        r.new_key_id = Some(NEW.into());
        assert_eq!(may_set_new_key(&r, NEW).unwrap(), NewKey::Known);
        let err = may_set_new_key(&r, "AKIAANOTHERKEY000004").unwrap_err();
        assert!(
            err.to_string().contains("already created another key"),
            "{err}"
        );
    }

    #[test]
    fn the_finish_detail_says_the_outcome_and_the_error() {
        assert_eq!(finish_detail(Outcome::Completed, None), "completed");
        assert_eq!(
            finish_detail(Outcome::Undone, Some("verify failed")),
            "undone: verify failed"
        );
    }

    #[test]
    fn progress_tracks_open_and_completed_steps_per_target() {
        let events = [
            event(1, Step::Plan, None, Phase::Done),
            event(2, Step::CreateKey, None, Phase::Begin),
            event(3, Step::CreateKey, None, Phase::Done),
            event(4, Step::Deliver, Some("a"), Phase::Begin),
            event(5, Step::Deliver, Some("a"), Phase::Done),
            event(6, Step::Deliver, Some("b"), Phase::Begin),
            event(7, Step::Deliver, Some("b"), Phase::Failed),
            event(8, Step::Deliver, Some("b"), Phase::Begin),
            event(9, Step::CreateKey, None, Phase::Begin),
            event(10, Step::CreateKey, None, Phase::Refused),
        ];
        let (completed, open) = progress(&events);
        assert_eq!(
            completed,
            [
                st(Step::Plan, None),
                st(Step::CreateKey, None),
                st(Step::Deliver, Some("a"))
            ]
        );
        assert_eq!(open, [st(Step::Deliver, Some("b"))]);
    }
}
