//! The order of a rotation's steps, as a pure function of what the journal
//! holds: the engine asks [`next_step`] what to do, does it through
//! `Engine::journaled`, reads the rotation back and asks again. A fresh
//! run and a run resuming an interrupted rotation drive the same loop; they
//! differ only in what an unknown past means ([`Origin`]).
//!
//! Freeing a slot and deleting orphans happen before the loop (they come
//! from the plan, which the journal does not keep): a rotation that never
//! created its key holds nothing worth finishing, so a resumed one is undone.

use crate::journal::{OldKeyAction, Rotation, Step, Target};

/// How a driven rotation ended.
pub(super) enum Ended {
    /// Completed, as this says.
    Completed(super::outcome::Done),
    /// Undone (a rotation an earlier run left), and why.
    Undone(super::outcome::UndoneBecause),
}

/// Who is driving the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// This run began it: what the journal does not say has not happened.
    ThisRun,
    /// An earlier run left it unfinished: a step it left open may or may
    /// not have taken effect.
    EarlierRun,
}

/// Whether this run has read every destination back since it (re)started
/// driving the rotation. The read-back must come right before the old key
/// is retired, so a resumed run reads back again even if the journal says
/// an earlier run did (something may have rewritten a file since).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBack {
    NotYet,
    Done,
}

/// Why a rotation is undone rather than finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoWhy {
    /// A rollback (or the deletion of the new key) had begun.
    RollingBack,
    /// An earlier run stopped before its new key existed for sure.
    StoppedBeforeDelivery,
}

impl UndoWhy {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoWhy::RollingBack => "it was being rolled back",
            UndoWhy::StoppedBeforeDelivery => "it stopped before the new key was delivered",
        }
    }
}

/// The next thing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// CreateAccessKey.
    CreateKey,
    /// Deliver the new key to destination `n` (index into the list given).
    Deliver(usize),
    /// Prove the new key works.
    Verify,
    /// Make the staged delivery to destination `n` current.
    Promote(usize),
    /// Read every destination back.
    Confirm,
    /// Deactivate or delete the old key.
    Retire(OldKeyAction),
    /// Record the rotation completed.
    Finish,
    /// Put everything back.
    Undo(UndoWhy),
    /// It has ended; nothing to do.
    Nothing,
}

/// What the journal cannot say but the driver knows.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// Each destination as the journal's events name it, in order.
    pub destinations: &'a [Target],
    /// Which of them stage a delivery, to be promoted once verified
    /// (same order; missing entries count as not staging).
    pub staged: &'a [bool],
    pub origin: Origin,
    pub read_back: ReadBack,
}

/// The next step of rotation `r`. Pure.
pub fn next_step(r: &Rotation, facts: &Facts) -> Next {
    if r.is_finished() {
        return Next::Nothing;
    }
    let begun = |s: Step| r.step_done(s) || r.open.iter().any(|o| o.step == s);
    if begun(Step::Rollback) || begun(Step::DeleteNewKey) {
        return Next::Undo(UndoWhy::RollingBack);
    }
    let created = r.step_done(Step::CreateKey) && r.new_key_id.is_some();
    if !created {
        return match facts.origin {
            Origin::ThisRun => Next::CreateKey,
            Origin::EarlierRun => Next::Undo(UndoWhy::StoppedBeforeDelivery),
        };
    }
    if let Some(n) = facts
        .destinations
        .iter()
        .position(|d| !r.step_done_on(Step::Deliver, d))
    {
        return Next::Deliver(n);
    }
    if !r.step_done(Step::Verify) {
        return Next::Verify;
    }
    if let Some(n) = facts.destinations.iter().enumerate().position(|(i, d)| {
        facts.staged.get(i).copied().unwrap_or(false) && !r.step_done_on(Step::Promote, d)
    }) {
        return Next::Promote(n);
    }
    let retire = match r.old_key_action {
        OldKeyAction::Deactivate => Step::DeactivateOldKey,
        OldKeyAction::Delete => Step::DeleteOldKey,
        // Nothing is retired, so nothing needs reading back first.
        OldKeyAction::Keep => return Next::Finish,
    };
    if r.step_done(retire) {
        return Next::Finish;
    }
    match facts.read_back {
        ReadBack::NotYet => Next::Confirm,
        ReadBack::Done => Next::Retire(r.old_key_action),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Outcome, Phase, StepTarget};
    use time::OffsetDateTime;

    const A: &str = "credentials:/h/.aws/credentials#dev";
    const B: &str = "config:/h/.aws/config#legacy";

    fn planned() -> Rotation {
        Rotation {
            id: crate::journal::RotationId::numbered(1),
            account_id: "111111111111".into(),
            user_name: "dev".into(),
            user_arn: "arn:aws:iam::111111111111:user/dev".into(),
            old_key_id: "AKIAOLDOLDOLDOLD0001".into(),
            new_key_id: None,
            keys_before: vec!["AKIAOLDOLDOLDOLD0001".into()],
            destinations: vec![],
            old_key_action: OldKeyAction::Deactivate,
            access: crate::journal::AccessSpec::OldKey,
            run_id: "r".into(),
            last_step: Step::Plan,
            last_phase: Phase::Done,
            completed: vec![st(Step::Plan, None)],
            open: vec![],
            outcome: None,
            error: None,
            started_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: None,
        }
    }

    /// A destination as an old journal named it.
    fn dest(name: &str) -> Target {
        Target::Destination(crate::destination::DestinationSpec::Legacy(name.into()))
    }

    fn st(step: Step, target: Option<&str>) -> StepTarget {
        StepTarget {
            step,
            target: target.map(dest),
        }
    }

    fn done(mut r: Rotation, step: Step, target: Option<&str>) -> Rotation {
        r.completed.push(st(step, target));
        if step == Step::CreateKey {
            r.new_key_id = Some("AKIANEWNEWNEWNEW0002".into());
        }
        r
    }

    fn open(mut r: Rotation, step: Step, target: Option<&str>) -> Rotation {
        r.open.push(st(step, target));
        r
    }

    fn created() -> Rotation {
        done(planned(), Step::CreateKey, None)
    }

    fn delivered() -> Rotation {
        done(
            done(created(), Step::Deliver, Some(A)),
            Step::Deliver,
            Some(B),
        )
    }

    fn verified() -> Rotation {
        done(delivered(), Step::Verify, None)
    }

    fn next(r: &Rotation, origin: Origin, read_back: ReadBack) -> Next {
        let destinations = [dest(A), dest(B)];
        next_step(
            r,
            &Facts {
                destinations: &destinations,
                staged: &[false, false],
                origin,
                read_back,
            },
        )
    }

    fn fresh(r: &Rotation) -> Next {
        next(r, Origin::ThisRun, ReadBack::NotYet)
    }

    fn resumed(r: &Rotation) -> Next {
        next(r, Origin::EarlierRun, ReadBack::NotYet)
    }

    #[test]
    fn a_planned_rotation_creates_its_key_or_is_undone_when_left_behind() {
        assert_eq!(fresh(&planned()), Next::CreateKey);
        assert_eq!(
            resumed(&planned()),
            Next::Undo(UndoWhy::StoppedBeforeDelivery)
        );
    }

    #[test]
    fn a_freed_slot_or_deleted_orphan_still_leads_to_create() {
        let freed = done(planned(), Step::DeleteInactiveKey, Some("AKIAX"));
        let swept = done(planned(), Step::DeleteOrphanKey, Some("AKIAY"));
        for r in [freed, swept] {
            assert_eq!(fresh(&r), Next::CreateKey);
            assert_eq!(resumed(&r), Next::Undo(UndoWhy::StoppedBeforeDelivery));
        }
    }

    #[test]
    fn a_create_left_open_or_failed_is_undone_when_resumed() {
        let open_create = open(planned(), Step::CreateKey, None);
        assert_eq!(
            resumed(&open_create),
            Next::Undo(UndoWhy::StoppedBeforeDelivery)
        );
        // Failed: no Done, no key ID. This run retries (after its sweep).
        let mut failed = planned();
        failed.last_step = Step::CreateKey;
        failed.last_phase = Phase::Failed;
        assert_eq!(fresh(&failed), Next::CreateKey);
        assert_eq!(resumed(&failed), Next::Undo(UndoWhy::StoppedBeforeDelivery));
    }

    #[test]
    fn a_created_key_is_delivered_to_each_destination_in_order() {
        assert_eq!(fresh(&created()), Next::Deliver(0));
        assert_eq!(resumed(&created()), Next::Deliver(0));
        let some = done(created(), Step::Deliver, Some(A));
        assert_eq!(fresh(&some), Next::Deliver(1));
        // A delivery left open is done again (deliveries are idempotent).
        let open_b = open(some, Step::Deliver, Some(B));
        assert_eq!(resumed(&open_b), Next::Deliver(1));
        // Order does not matter, only which are done.
        let only_b = done(created(), Step::Deliver, Some(B));
        assert_eq!(fresh(&only_b), Next::Deliver(0));
    }

    #[test]
    fn delivered_everywhere_then_verified_then_read_back_then_retired() {
        assert_eq!(fresh(&delivered()), Next::Verify);
        assert_eq!(fresh(&verified()), Next::Confirm);
        assert_eq!(
            next(&verified(), Origin::ThisRun, ReadBack::Done),
            Next::Retire(OldKeyAction::Deactivate)
        );
        let mut delete = verified();
        delete.old_key_action = OldKeyAction::Delete;
        assert_eq!(
            next(&delete, Origin::EarlierRun, ReadBack::Done),
            Next::Retire(OldKeyAction::Delete)
        );
    }

    #[test]
    fn a_resumed_run_reads_back_again_even_after_an_earlier_confirm() {
        let confirmed = done(verified(), Step::Confirm, None);
        assert_eq!(resumed(&confirmed), Next::Confirm);
        let retiring = open(confirmed, Step::DeactivateOldKey, None);
        assert_eq!(resumed(&retiring), Next::Confirm);
        assert_eq!(
            next(&retiring, Origin::EarlierRun, ReadBack::Done),
            Next::Retire(OldKeyAction::Deactivate)
        );
    }

    #[test]
    fn a_retired_old_key_leads_to_finish_and_a_finished_rotation_to_nothing() {
        let retired = done(
            done(verified(), Step::Confirm, None),
            Step::DeactivateOldKey,
            None,
        );
        assert_eq!(fresh(&retired), Next::Finish);
        assert_eq!(resumed(&retired), Next::Finish);
        let mut finished = done(retired, Step::Finish, None);
        finished.outcome = Some(Outcome::Completed);
        assert_eq!(fresh(&finished), Next::Nothing);
        let mut undone = planned();
        undone.outcome = Some(Outcome::Undone);
        assert_eq!(resumed(&undone), Next::Nothing);
    }

    /// A is a file, B a staged secret: B is promoted after verification,
    /// before the read-back, and only once.
    fn staged_next(r: &Rotation, origin: Origin, read_back: ReadBack) -> Next {
        let destinations = [dest(A), dest(B)];
        next_step(
            r,
            &Facts {
                destinations: &destinations,
                staged: &[false, true],
                origin,
                read_back,
            },
        )
    }

    #[test]
    fn a_staged_delivery_is_promoted_after_verification_then_read_back() {
        assert_eq!(
            staged_next(&delivered(), Origin::ThisRun, ReadBack::NotYet),
            Next::Verify
        );
        assert_eq!(
            staged_next(&verified(), Origin::ThisRun, ReadBack::NotYet),
            Next::Promote(1)
        );
        // A promotion left open is done again (it is idempotent).
        let open_promote = open(verified(), Step::Promote, Some(B));
        assert_eq!(
            staged_next(&open_promote, Origin::EarlierRun, ReadBack::NotYet),
            Next::Promote(1)
        );
        let promoted = done(verified(), Step::Promote, Some(B));
        assert_eq!(
            staged_next(&promoted, Origin::EarlierRun, ReadBack::NotYet),
            Next::Confirm
        );
        assert_eq!(
            staged_next(&promoted, Origin::ThisRun, ReadBack::Done),
            Next::Retire(OldKeyAction::Deactivate)
        );
    }

    #[test]
    fn a_kept_old_key_finishes_after_promotion_without_retiring() {
        let mut keep = verified();
        keep.old_key_action = OldKeyAction::Keep;
        assert_eq!(
            staged_next(&keep, Origin::ThisRun, ReadBack::NotYet),
            Next::Promote(1)
        );
        let promoted = done(keep.clone(), Step::Promote, Some(B));
        assert_eq!(
            staged_next(&promoted, Origin::ThisRun, ReadBack::NotYet),
            Next::Finish
        );
        // With files only, nothing to promote: straight to Finish.
        assert_eq!(fresh(&keep), Next::Finish);
    }

    #[test]
    fn a_rollback_begun_is_always_carried_on() {
        let rolling = open(delivered(), Step::Rollback, Some(A));
        assert_eq!(resumed(&rolling), Next::Undo(UndoWhy::RollingBack));
        let deleting = done(verified(), Step::DeleteNewKey, Some("AKIANEW"));
        assert_eq!(fresh(&deleting), Next::Undo(UndoWhy::RollingBack));
    }
}
