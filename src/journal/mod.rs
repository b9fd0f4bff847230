//! The rotation journal: a durable record of every rotation, written before
//! and after each AWS side effect, so that a run that dies half-way is found
//! and finished (or undone) by the next one (DESIGN.md invariants 2 and 4).
//! It also holds the leases that stop two runs from rotating the same user
//! at once.
//!
//! This module owns the vocabulary (steps, phases, outcomes), the records the
//! engine reads back ([`Rotation`], [`Event`]) and the [`Journal`] trait.
//! `error` holds [`JournalError`]; `lease` holds [`Lease`], [`Holder`] and
//! the rules for taking a lease over, and `rules` the rules every rotation
//! write passes (one unfinished rotation per user, Done only after Begin,
//! the new key set once): pure functions shared by every implementation;
//! [`sqlite`] is the embedded implementation (a DynamoDB one for many
//! Lambda runners would sit beside it).
//!
//! The journal never stores a secret: only key IDs, names, destinations,
//! times and error text, which callers guarantee holds no secret. Nothing
//! here has a field that could hold one.
//!
//! # How the engine uses it
//!
//! ```text
//! acquire_lease(account, user)            refuses while another live run holds it
//! unfinished()                            resume those first (invariant 2)
//! begin_rotation(new)                     Plan done (detail: the access mode)
//! record(CreateKey, Begin) → AWS → set_new_key + record(CreateKey, Done)
//! record_on(Deliver, dest, Begin) → write → record_on(Deliver, dest, Done)   per destination
//! record(Verify, Begin) → STS ×N → record(Verify, Done)
//! record(DeactivateOldKey | DeleteOldKey, Begin) → AWS → …Done
//! finish(Completed)                       Finish done
//! release_lease
//! ```
//!
//! A step whose Begin has no Done/Failed is listed in [`Rotation::open`]: its
//! side effect may or may not have happened, and the resuming run must look
//! (e.g. a `CreateKey` left open → compare the user's keys with
//! [`Rotation::keys_before`]).

mod access;
pub mod copy;
pub mod dynamo;
mod error;
mod id;
mod keys;
mod lease;
mod rules;
mod spec;
pub mod sqlite;
mod target;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::destination::DestinationSpec;

pub use access::AccessSpec;
pub use dynamo::{DynamoJournal, DynamoSpec};
pub use error::JournalError;
pub use id::{BadRotationId, RotationId};
pub use keys::{KeyEvent, KeyOp, NewKeyEvent, open_act};
pub use lease::{Holder, Lease};
pub use spec::{BadJournalSpec, JournalSpec, retention_days};
pub use sqlite::{SqliteJournal, default_path};
pub use target::Target;

named_enum! {
    /// One step of a rotation; each but `Plan` and `Finish` has an AWS or
    /// destination side effect.
    pub enum Step as "step" {
        Plan = "plan",
        CreateKey = "create_key",
        /// Writing the new secret to one destination (target: the
        /// destination, as journaled with the rotation).
        Deliver = "deliver",
        Verify = "verify",
        /// Making a verified, staged delivery the one consumers read
        /// (Secrets Manager's AWSCURRENT; target = destination).
        Promote = "promote",
        DeactivateOldKey = "deactivate_old_key",
        DeleteOldKey = "delete_old_key",
        /// Freeing a slot at the two-key limit by deleting the user's
        /// inactive key (target = the key ID).
        DeleteInactiveKey = "delete_inactive_key",
        /// Freeing it by deleting the user's other *active* key: a kept key
        /// unused since, or one `--delete-other-active` allows (target =
        /// the key ID). Named apart so history says what happened (issue 15).
        DeleteActiveKey = "delete_active_key",
        /// Deleting a key an earlier, undone rotation made but never learned
        /// of: its secret is nowhere (target = the key ID).
        DeleteOrphanKey = "delete_orphan_key",
        /// Reading every destination back, right before the old key is
        /// retired: each must still hold the new key.
        Confirm = "confirm_delivery",
        /// Restoring one destination to the old key (target = destination).
        Rollback = "rollback",
        DeleteNewKey = "delete_new_key",
        Finish = "finish",
    }
}

named_enum! {
    /// Where a step stands: recorded before (`Begin`) and after its side effect.
    pub enum Phase as "phase" {
        Begin = "begin",
        Done = "done",
        /// The side effect may or may not have happened (the answer was
        /// lost, or the call failed on the way).
        Failed = "failed",
        /// AWS answered that it did nothing (a CreateAccessKey refused with
        /// LimitExceeded made no key): nothing to look for (issue 15 #10).
        Refused = "refused",
    }
}

named_enum! {
    /// How a rotation ended.
    pub enum Outcome as "outcome" {
        /// The new key is delivered and verified; the old one is dealt with.
        Completed = "completed",
        /// Rolled back: destinations restored, the new key deleted.
        Undone = "undone",
        /// Gave up; a human must look (rare).
        Failed = "failed",
    }
}

named_enum! {
    /// What happens to the old key once the new one is verified.
    pub enum OldKeyAction as "old key action" {
        Deactivate = "deactivate",
        Delete = "delete",
        /// Left active: its consumers re-read on their own schedule
        /// (Secrets Manager, SSM); retired later, after a grace period.
        Keep = "keep",
    }
}

pub use crate::names::UnknownName;
use crate::names::named_enum;

/// What the engine knows when it plans a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRotation {
    pub account_id: String,
    pub user_name: String,
    pub user_arn: String,
    pub old_key_id: String,
    /// Every key ID the user had when planned: a key not in this list was
    /// created by this rotation, even if CreateAccessKey's answer was lost.
    pub keys_before: Vec<String>,
    /// Every destination, as structured data (issue 9 #3).
    pub destinations: Vec<DestinationSpec>,
    pub old_key_action: OldKeyAction,
    /// How IAM is reached (issue 7).
    pub access: AccessSpec,
    /// The run that plans it; must hold the user's lease.
    pub run_id: String,
}

/// A step, and what it acted on when it acts on one of several things
/// (a destination for `Deliver`, `Promote` and `Rollback`, a key for the
/// steps that delete one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTarget {
    pub step: Step,
    pub target: Option<Target>,
}

/// One rotation as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// A ULID; for a rotation from a journal that numbered them, its number.
    pub id: RotationId,
    pub account_id: String,
    pub user_name: String,
    pub user_arn: String,
    pub old_key_id: String,
    pub new_key_id: Option<String>,
    pub keys_before: Vec<String>,
    pub destinations: Vec<DestinationSpec>,
    pub old_key_action: OldKeyAction,
    /// How IAM was reached; a resumed rotation goes the same way.
    pub access: AccessSpec,
    /// The run that began it (a resuming run may differ).
    pub run_id: String,
    pub last_step: Step,
    pub last_phase: Phase,
    /// Steps with a `Done` event, in the order they were first done.
    pub completed: Vec<StepTarget>,
    /// Steps whose latest event is `Begin`: the side effect may or may not
    /// have happened. Empty unless a run died (or is running).
    pub open: Vec<StepTarget>,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl Rotation {
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// Whether `step` was done at least once, whatever its target.
    pub fn step_done(&self, step: Step) -> bool {
        self.completed.iter().any(|c| c.step == step)
    }

    /// Whether `step` was done on `target` (a destination or a key).
    pub fn step_done_on(&self, step: Step, target: &Target) -> bool {
        self.completed
            .iter()
            .any(|c| c.step == step && c.target.as_ref() == Some(target))
    }

    /// When this rotation asked IAM for a key without learning whether it
    /// got one (the first such CreateAccessKey: left open, or failed
    /// without a refusal), if it did: a key that shows up later, created
    /// about then, may be its own.
    pub fn create_began_at(&self, events: &[Event]) -> Option<OffsetDateTime> {
        let creates: Vec<&Event> = events
            .iter()
            .filter(|e| e.rotation_id == self.id && e.step == Step::CreateKey)
            .collect();
        creates.iter().enumerate().find_map(|(i, e)| {
            let answer = creates.get(i + 1).map(|next| next.phase);
            let unknown =
                e.phase == Phase::Begin && !matches!(answer, Some(Phase::Done | Phase::Refused));
            unknown.then_some(e.at)
        })
    }
}

/// One line of a rotation's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub rotation_id: RotationId,
    /// 1, 2, 3… within the rotation.
    pub seq: i64,
    pub step: Step,
    pub phase: Phase,
    pub target: Option<Target>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub detail: Option<String>,
}

/// A journal call's answer, later: the trait is async because the other
/// backends (DynamoDB for many Lambda runners) are network calls, and it is
/// used as `dyn Journal`, hence boxed futures rather than `async fn`.
pub type Answer<'a, T> = BoxFuture<'a, Result<T, JournalError>>;

/// Where rotations and leases are kept. Implementations must be safe to
/// share between threads and, for leases, between processes.
pub trait Journal: Send + Sync {
    /// Starts a rotation and records `Plan` done. Refused unless
    /// `new.run_id` holds the user's lease, and while the user has an
    /// unfinished rotation.
    fn begin_rotation<'a>(&'a self, new: &'a NewRotation) -> Answer<'a, Rotation>;

    /// Records a step that acts on one of several things (`target`), e.g.
    /// delivery to one destination. `Done`/`Failed` are accepted only after
    /// a `Begin` of the same step and target.
    fn record_on<'a>(
        &'a self,
        id: RotationId,
        step: Step,
        target: Option<&'a Target>,
        phase: Phase,
        detail: Option<&'a str>,
    ) -> Answer<'a, ()>;

    /// Records a step of the rotation as a whole.
    fn record<'a>(
        &'a self,
        id: RotationId,
        step: Step,
        phase: Phase,
        detail: Option<&'a str>,
    ) -> Answer<'a, ()> {
        self.record_on(id, step, None, phase, detail)
    }

    /// Remembers the ID of the key this rotation created. Idempotent;
    /// refuses a second, different key and a key the user already had.
    fn set_new_key<'a>(&'a self, id: RotationId, new_key_id: &'a str) -> Answer<'a, ()>;

    /// Ends a rotation, recording `Finish` done.
    fn finish<'a>(
        &'a self,
        id: RotationId,
        outcome: Outcome,
        error: Option<&'a str>,
    ) -> Answer<'a, ()>;

    fn get(&self, id: RotationId) -> Answer<'_, Rotation>;

    /// Rotations without an outcome, in the order they were begun.
    fn unfinished(&self) -> Answer<'_, Vec<Rotation>>;

    /// Rotations of one user that ended undone and began at or after
    /// `since`, oldest first: where the orphan sweep looks for keys whose
    /// CreateAccessKey answer was lost (issue 9 #7).
    fn undone_since<'a>(
        &'a self,
        account_id: &'a str,
        user_name: &'a str,
        since: OffsetDateTime,
    ) -> Answer<'a, Vec<Rotation>>;

    /// Every rotation of one user, finished or not, oldest first: what the
    /// journal knows of that user's keys (which a rotation kept, which one
    /// made), by a keyed query rather than a scan of the latest N.
    fn of_user<'a>(&'a self, account_id: &'a str, user_name: &'a str) -> Answer<'a, Vec<Rotation>>;

    /// The latest `limit` rotations, finished or not, newest first.
    fn history(&self, limit: usize) -> Answer<'_, Vec<Rotation>>;

    /// A rotation's events in order.
    fn events(&self, id: RotationId) -> Answer<'_, Vec<Event>>;

    /// Takes the lease on a user for `ttl`: free, expired, held by a process
    /// on this host that no longer exists, or already held by the same run
    /// (then renewed). Otherwise [`JournalError::LeaseHeld`].
    fn acquire_lease<'a>(
        &'a self,
        account_id: &'a str,
        user_name: &'a str,
        holder: &'a Holder,
        ttl: time::Duration,
    ) -> Answer<'a, Lease>;

    /// Extends a lease this run still holds; [`JournalError::LeaseLost`] if
    /// another run has taken it.
    fn renew_lease<'a>(&'a self, lease: &'a Lease, ttl: time::Duration) -> Answer<'a, Lease>;

    /// Records what was done to one key outside a rotation (issue 17) as
    /// [`keys`]' rules allow: a `Begin` under the writer's live lease on
    /// the user, a `Done` only closing a `Begin` of the same act.
    fn record_key<'a>(&'a self, event: &'a NewKeyEvent) -> Answer<'a, KeyEvent>;

    /// Every record of one user's keys, oldest first.
    fn key_events<'a>(
        &'a self,
        account_id: &'a str,
        user_name: &'a str,
    ) -> Answer<'a, Vec<KeyEvent>>;

    /// The latest `limit` key records, of every account, newest first:
    /// `rekey history --keys`, the trail of what `enforce` did.
    fn key_history(&self, limit: usize) -> Answer<'_, Vec<KeyEvent>>;

    /// Every record of the keys of one account, oldest first: what a plan
    /// over the account reads at once (keys of users gone from IAM too).
    fn key_events_in<'a>(&'a self, account_id: &'a str) -> Answer<'a, Vec<KeyEvent>>;

    /// Gives a lease up. Releasing one that is already gone is fine;
    /// one now held by another run gives [`JournalError::LeaseLost`].
    fn release_lease<'a>(&'a self, lease: &'a Lease) -> Answer<'a, ()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for step in Step::ALL {
            assert_eq!(step.as_str().parse::<Step>(), Ok(*step));
            let json = serde_json::to_string(step).unwrap();
            assert_eq!(json, format!("\"{}\"", step.as_str()));
        }
        for phase in Phase::ALL {
            assert_eq!(phase.as_str().parse::<Phase>(), Ok(*phase));
        }
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(*outcome));
        }
        for action in OldKeyAction::ALL {
            assert_eq!(action.as_str().parse::<OldKeyAction>(), Ok(*action));
        }
        let err = "sideways".parse::<Step>().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown step `sideways` (plan, create_key, "),
            "{err}"
        );
    }

    fn event(seq: i64, step: Step, target: Option<&str>, phase: Phase) -> Event {
        Event {
            rotation_id: RotationId::numbered(1),
            seq,
            step,
            phase,
            target: target.map(|t| Target::Destination(DestinationSpec::Legacy(t.into()))),
            at: OffsetDateTime::UNIX_EPOCH,
            detail: None,
        }
    }

    #[test]
    fn rotation_helpers_answer_from_completed_steps() {
        let (completed, open) = rules::progress(&[
            event(1, Step::Plan, None, Phase::Done),
            event(2, Step::Deliver, Some("a"), Phase::Begin),
            event(3, Step::Deliver, Some("a"), Phase::Done),
        ]);
        let rotation = Rotation {
            id: RotationId::numbered(1),
            account_id: "111111111111".into(),
            user_name: "alice".into(),
            user_arn: "arn:aws:iam::111111111111:user/alice".into(),
            old_key_id: "AKIAOLDOLDOLDOLD0001".into(),
            new_key_id: None,
            keys_before: vec![],
            destinations: vec![DestinationSpec::Legacy("a".into())],
            old_key_action: OldKeyAction::Deactivate,
            access: AccessSpec::OldKey,
            run_id: "r".into(),
            last_step: Step::Deliver,
            last_phase: Phase::Done,
            completed,
            open,
            outcome: None,
            error: None,
            started_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: None,
        };
        assert!(rotation.step_done(Step::Deliver));
        let a = Target::Destination(DestinationSpec::Legacy("a".into()));
        assert!(rotation.step_done_on(Step::Deliver, &a));
        assert!(!rotation.step_done(Step::Verify));
        assert!(!rotation.is_finished());

        // `--output json` prints rotations; times as RFC 3339, names as stored.
        let json = serde_json::to_string(&rotation).unwrap();
        assert!(json.contains(r#""old_key_action":"deactivate""#), "{json}");
        assert!(
            json.contains(r#""started_at":"1970-01-01T00:00:00Z""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Rotation>(&json).unwrap(), rotation);

        // Issue 15 #10: a CreateAccessKey IAM refused asked for nothing
        // unknown; one left open or failed (a lost answer) did.
        let create = |seq, phase| event(seq, Step::CreateKey, None, phase);
        let at = |events: &[Event]| rotation.create_began_at(events).map(|_| ());
        assert_eq!(
            at(&[create(1, Phase::Begin), create(2, Phase::Refused)]),
            None
        );
        assert_eq!(at(&[create(1, Phase::Begin), create(2, Phase::Done)]), None);
        assert_eq!(at(&[create(1, Phase::Begin)]), Some(()));
        assert_eq!(
            at(&[
                create(1, Phase::Begin),
                create(2, Phase::Refused),
                create(3, Phase::Begin),
                create(4, Phase::Failed),
            ]),
            Some(())
        );
    }
}
