//! What the journal says of one key, for the lifecycle (issue 17): when a
//! rotation replaced it, when rekey deactivated or reactivated it, which
//! stage it was warned of and which use of it was reported. Pure: read
//! from the key's records and the user's rotations.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::lifecycle::Due;
use crate::journal::{KeyEvent, KeyOp, OldKeyAction, Outcome, Phase, Rotation};

/// The journal's facts of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    #[serde(with = "time::serde::rfc3339::option")]
    pub replaced_at: Option<OffsetDateTime>,
    /// The last deactivation rekey made, unless a reactivation followed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deactivated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub reactivated_at: Option<OffsetDateTime>,
    /// The moment the last warning said the key's stage falls due.
    #[serde(with = "time::serde::rfc3339::option")]
    pub warned_for: Option<OffsetDateTime>,
    /// The use the last `still_in_use` report named.
    #[serde(with = "time::serde::rfc3339::option")]
    pub reported_use: Option<OffsetDateTime>,
    /// An act begun and not closed (a run died between its Begin and its
    /// answer): settled against IAM before anything else is done; its
    /// moment is `unsettled`'s.
    pub open: Option<KeyOp>,
    /// When rekey deleted it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    /// The last act on the key whose outcome the journal does not know —
    /// left open, or failed on the way (its answer lost) — and the moment
    /// it was for: what IAM shows says whether it took effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsettled: Option<(KeyOp, UnsettledAt)>,
}

/// When an unsettled act was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsettledAt(#[serde(with = "time::serde::rfc3339")] pub OffsetDateTime);

/// What the journal says of key `key_id`, from the records of its user's
/// keys (`events`, oldest first) and the user's rotations. Every time is
/// the moment acted for (`as_of`), except a rotation's delivery, which
/// has only the time it finished (used when the run died before writing
/// its `replaced` record).
pub fn recorded(key_id: &str, events: &[KeyEvent], rotations: &[Rotation]) -> Recorded {
    let mine: Vec<&KeyEvent> = events.iter().filter(|e| e.key_id == key_id).collect();
    let done = |op: KeyOp| {
        mine.iter()
            .rev()
            .find(|e| e.op == op && e.phase == Phase::Done)
            .copied()
    };
    let last_deactivation = mine
        .iter()
        .rev()
        .find(|e| e.op.deactivates() && e.phase == Phase::Done);
    let reactivation = done(KeyOp::Reactivate);
    let deactivated_at = last_deactivation
        .filter(|d| reactivation.is_none_or(|r| r.seq < d.seq))
        .map(|d| d.as_of);
    let replaced_at = done(KeyOp::Replaced).map(|e| e.as_of).or_else(|| {
        rotations
            .iter()
            .rev()
            .find(|r| {
                r.old_key_id == key_id
                    && r.outcome == Some(Outcome::Completed)
                    && r.old_key_action == OldKeyAction::Keep
            })
            .and_then(|r| r.finished_at)
    });
    let detail = |e: &KeyEvent| -> Option<Due> { serde_json::from_str(e.detail.as_deref()?).ok() };
    let warned_for = done(KeyOp::Warn).and_then(detail).and_then(|d| match d {
        Due::Warn { at } => Some(at),
        _ => None,
    });
    let reported_use = done(KeyOp::StillInUse)
        .and_then(detail)
        .and_then(|d| match d {
            Due::StillInUse { last_used, .. } => Some(last_used.date),
            _ => None,
        });
    Recorded {
        replaced_at,
        deactivated_at,
        reactivated_at: reactivation
            .filter(|r| last_deactivation.is_none_or(|d| d.seq < r.seq))
            .map(|r| r.as_of),
        warned_for,
        reported_use,
        deleted_at: done(KeyOp::Delete).map(|e| e.as_of),
        open: crate::journal::open_act(&mine.iter().copied().cloned().collect::<Vec<_>>()),
        unsettled: mine
            .iter()
            .rev()
            .find(|e| e.op.acts_on_aws())
            .filter(|e| matches!(e.phase, Phase::Begin | Phase::Failed))
            .map(|e| (e.op, UnsettledAt(e.as_of))),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const KEY: &str = "AKIAOLDOLDOLDOLD0001";

    fn ev(seq: i64, op: KeyOp, phase: Phase, day: i64, detail: Option<&Due>) -> KeyEvent {
        KeyEvent {
            seq,
            account_id: "111111111111".into(),
            user_name: "svc".into(),
            key_id: KEY.into(),
            op,
            phase,
            run_id: "r".into(),
            // Written today, acted for `day`: the lifecycle counts from
            // the moment acted for.
            at: datetime!(2026-01-01 00:00 UTC),
            as_of: datetime!(2026-01-01 00:00 UTC) + time::Duration::days(day),
            detail: detail.map(|d| serde_json::to_string(d).unwrap()),
        }
    }

    fn day(n: i64) -> Option<OffsetDateTime> {
        Some(datetime!(2026-01-01 00:00 UTC) + time::Duration::days(n))
    }

    #[test]
    fn the_records_give_the_lifecycle_its_dates_from_the_moment_acted_for() {
        let warn = Due::Warn {
            at: day(90).unwrap(),
        };
        let events = [
            ev(1, KeyOp::Warn, Phase::Done, 76, Some(&warn)),
            ev(2, KeyOp::Replaced, Phase::Done, 90, None),
            ev(3, KeyOp::Retire, Phase::Begin, 97, None),
            ev(4, KeyOp::Retire, Phase::Done, 97, None),
        ];
        let r = recorded(KEY, &events, &[]);
        assert_eq!(r.warned_for, day(90));
        assert_eq!(r.replaced_at, day(90));
        assert_eq!(r.deactivated_at, day(97));
        assert_eq!((r.reactivated_at, r.open), (None, None));
        // Reactivated: no longer rekey's deactivation; deactivated again:
        // the new one counts.
        let mut more = events.to_vec();
        more.push(ev(5, KeyOp::Reactivate, Phase::Begin, 99, None));
        more.push(ev(6, KeyOp::Reactivate, Phase::Done, 99, None));
        let r = recorded(KEY, &more, &[]);
        assert_eq!((r.deactivated_at, r.reactivated_at), (None, day(99)));
        more.push(ev(7, KeyOp::Retire, Phase::Begin, 106, None));
        let r = recorded(KEY, &more, &[]);
        assert_eq!(r.open, Some(KeyOp::Retire), "a Begin left open");
        more.push(ev(8, KeyOp::Retire, Phase::Done, 106, None));
        let r = recorded(KEY, &more, &[]);
        assert_eq!((r.deactivated_at, r.reactivated_at), (day(106), None));
        // Another key's records are not this one's.
        assert_eq!(
            recorded("AKIAOTHEROTHEROTHER1", &more, &[]),
            Recorded::default()
        );
    }
}
