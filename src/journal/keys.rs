//! What rekey did to one key outside a rotation (issue 17): the lifecycle's
//! warnings, reports of a replaced key still in use, retirements,
//! deactivations, deletions and reactivations, and the note that a
//! rotation replaced a key. Each is journaled as the rotations' steps are:
//! `Begin` before its AWS side effect, `Done` (or `Failed`, `Refused`)
//! after, so a run that dies between them leaves an open `Begin` the next
//! run settles by looking at IAM. Acts without a side effect of their own
//! (`warn`, `still_in_use`, `replaced`) are recorded `Done` at once.
//!
//! Every record carries two times: `at`, when it was written (the
//! journal's clock), and `as_of`, the moment the run acted for (`enforce
//! --as-of`; the same as `at` without it). The lifecycle counts later
//! stages from `as_of`. No record holds a secret: key IDs, names, times,
//! and a detail of the facts acted on.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{JournalError, Lease, Phase};
use crate::names::named_enum;

named_enum! {
    /// What was done to a key.
    pub enum KeyOp as "key action" {
        /// Told that it reaches a stage soon (the notifications deliver it).
        Warn = "warn",
        /// Replaced by a rotation, and used since the new key was delivered.
        StillInUse = "still_in_use",
        /// A rotation delivered the key that replaces it; it was kept
        /// active for its readers.
        Replaced = "replaced",
        /// Deactivated after its grace, unused since it was replaced.
        Retire = "retire",
        /// Deactivated: stale, unused, or its grace over.
        Deactivate = "deactivate",
        Delete = "delete",
        /// Made active again (`enforce --reactivate`).
        Reactivate = "reactivate",
        /// A notification of the key's stage was delivered (`Done`) or
        /// could not be (`Failed`) on one channel (issue 19); its detail
        /// is a [`crate::notify::Sent`]. Not an act on the key: written
        /// without the user's lease.
        Notified = "notified",
    }
}

impl KeyOp {
    /// Whether it has an AWS side effect, and so a `Begin` before it.
    pub fn acts_on_aws(self) -> bool {
        matches!(
            self,
            KeyOp::Retire | KeyOp::Deactivate | KeyOp::Delete | KeyOp::Reactivate
        )
    }

    /// Whether it leaves the key inactive.
    pub fn deactivates(self) -> bool {
        matches!(self, KeyOp::Retire | KeyOp::Deactivate)
    }
}

/// A record to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKeyEvent {
    pub account_id: String,
    pub user_name: String,
    pub key_id: String,
    pub op: KeyOp,
    pub phase: Phase,
    /// The run writing it; for a `Begin`, it must hold the user's lease.
    pub run_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    /// The facts acted on, as JSON (never a secret).
    pub detail: Option<String>,
}

/// A record as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEvent {
    /// The order written in, across all keys.
    pub seq: i64,
    pub account_id: String,
    pub user_name: String,
    pub key_id: String,
    pub op: KeyOp,
    pub phase: Phase,
    pub run_id: String,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The moment acted for.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    pub detail: Option<String>,
}

/// Whether `new` may be written, given the user's lease on record and the
/// key's earlier records (oldest first). Pure; every backend asks it.
///
/// - A `Begin` is written only under the run's live lease on the user.
/// - `Done`, `Failed` or `Refused` of an act with a side effect closes
///   that act's open `Begin` (by any run: a later run settles what a dead
///   one began), under the writer's lease.
/// - An act without a side effect is only ever `Done`, under the lease.
pub(crate) fn may_record_key(
    new: &NewKeyEvent,
    lease: Option<&Lease>,
    earlier: &[KeyEvent],
    now: OffsetDateTime,
) -> Result<(), JournalError> {
    if new.op == KeyOp::Notified {
        // Delivery is not an act on the key: a notifier records it while
        // another run holds the user (at least once: a duplicate record
        // is harmless, a lost one only sends again).
        return match new.phase {
            Phase::Done | Phase::Failed => Ok(()),
            _ => Err(JournalError::KeyOutOfOrder {
                key: super::error::mask(&new.key_id),
                op: new.op,
                phase: new.phase,
                reason: "a notification is recorded delivered (done) or undelivered (failed)",
            }),
        };
    }
    super::rules::leased(lease, (&new.account_id, &new.user_name, &new.run_id), now)?;
    let refused = |reason: &'static str| JournalError::KeyOutOfOrder {
        key: super::error::mask(&new.key_id),
        op: new.op,
        phase: new.phase,
        reason,
    };
    if !new.op.acts_on_aws() {
        return match new.phase {
            Phase::Done => Ok(()),
            _ => Err(refused("it has no side effect: it is only recorded done")),
        };
    }
    if new.phase != Phase::Begin && open_act(earlier) != Some(new.op) {
        return Err(refused("it was not begun (record Begin before acting)"));
    }
    if new.phase == Phase::Begin && open_act(earlier).is_some() {
        return Err(refused("another act on the key is open; settle it first"));
    }
    Ok(())
}

/// The act on the key begun and not yet closed, if one is: its side
/// effect may or may not have happened. Pure.
pub fn open_act(events: &[KeyEvent]) -> Option<KeyOp> {
    let mut open = None;
    for e in events.iter().filter(|e| e.op.acts_on_aws()) {
        open = (e.phase == Phase::Begin).then_some(e.op);
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Holder;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-10 12:00 UTC);

    fn new(op: KeyOp, phase: Phase) -> NewKeyEvent {
        NewKeyEvent {
            account_id: "111111111111".into(),
            user_name: "svc".into(),
            key_id: "AKIAOLDOLDOLDOLD0001".into(),
            op,
            phase,
            run_id: "run-a".into(),
            as_of: NOW,
            detail: None,
        }
    }

    fn written(n: &NewKeyEvent, seq: i64) -> KeyEvent {
        KeyEvent {
            seq,
            account_id: n.account_id.clone(),
            user_name: n.user_name.clone(),
            key_id: n.key_id.clone(),
            op: n.op,
            phase: n.phase,
            run_id: n.run_id.clone(),
            at: NOW,
            as_of: n.as_of,
            detail: None,
        }
    }

    fn lease(run: &str, expires_at: OffsetDateTime) -> Lease {
        Lease {
            account_id: "111111111111".into(),
            user_name: "svc".into(),
            holder: Holder {
                run_id: run.into(),
                pid: 1,
                host: "h".into(),
            },
            acquired_at: NOW,
            expires_at,
        }
    }

    #[test]
    fn key_acts_are_begun_under_the_lease_and_closed_once() {
        let held = lease("run-a", NOW + time::Duration::minutes(5));
        let begin = new(KeyOp::Deactivate, Phase::Begin);
        let done = new(KeyOp::Deactivate, Phase::Done);
        assert!(may_record_key(&begin, Some(&held), &[], NOW).is_ok());
        // Without the lease, another run's, or an expired one: refused.
        for l in [
            None,
            Some(lease("run-b", NOW + time::Duration::minutes(5))),
            Some(lease("run-a", NOW)),
        ] {
            let err = may_record_key(&begin, l.as_ref(), &[], NOW).unwrap_err();
            assert!(matches!(err, JournalError::NotLeased { .. }), "{err}");
        }
        // Done only after a Begin of the same act; a second Begin while
        // one is open is refused, the key masked in the words.
        let err = may_record_key(&done, Some(&held), &[], NOW).unwrap_err();
        assert!(err.to_string().contains("not begun"), "{err}");
        let history = [written(&begin, 1)];
        assert!(may_record_key(&done, Some(&held), &history, NOW).is_ok());
        let delete = new(KeyOp::Delete, Phase::Begin);
        let err = may_record_key(&delete, Some(&held), &history, NOW).unwrap_err();
        assert!(err.to_string().contains("AKIA…0001"), "{err}");
        assert!(!err.to_string().contains("AKIAOLDOLDOLDOLD0001"), "{err}");
        let closed = [written(&begin, 1), written(&done, 2)];
        assert_eq!(open_act(&history), Some(KeyOp::Deactivate));
        assert_eq!(open_act(&closed), None);
        assert!(may_record_key(&delete, Some(&held), &closed, NOW).is_ok());
        // Acts without a side effect are recorded done, never begun.
        assert!(may_record_key(&new(KeyOp::Warn, Phase::Done), Some(&held), &[], NOW).is_ok());
        let err =
            may_record_key(&new(KeyOp::Warn, Phase::Begin), Some(&held), &[], NOW).unwrap_err();
        assert!(err.to_string().contains("no side effect"), "{err}");
    }
}
