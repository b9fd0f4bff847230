//! Each key's stage, from its records, and whether a channel still owes
//! its owner word of it. Pure.
//!
//! A key's stage is that of its last `Done` record that puts it in one
//! (see [`Stage::of`]); it was entered at the first of the records in a
//! row that put it there, so the reports of each new use of a replaced
//! key are one stage, told once. A channel owes a stage until a
//! `notified` record of that channel says it was delivered; a stage
//! entered more than `lookback` ago is not told any more (a journal that
//! gains notifications does not mail its past).

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::{Channel, Sent, Stage};
use crate::enforce::lifecycle::Due;
use crate::journal::{KeyEvent, KeyOp, Phase};

/// Stages entered longer ago than this are not told (unless
/// `[notify] lookback` says otherwise).
pub const DEFAULT_LOOKBACK_DAYS: i64 = 30;

/// One key's stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStage {
    pub account_id: String,
    pub user_name: String,
    pub key_id: String,
    pub stage: Stage,
    /// When it entered the stage (the moment its first record was for).
    pub since: OffsetDateTime,
    /// The latest record's facts (the lifecycle's `Due`), when it has them.
    pub due: Option<Due>,
    /// The moment of the latest record of the stage.
    pub latest: OffsetDateTime,
}

/// When a stage is told again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resend {
    /// Stages entered longer ago than this are not told.
    pub lookback: Duration,
    /// A stage that waits for its owner is told again this long after it
    /// was last delivered (`--renotify-after`); never without it.
    pub renotify_after: Option<Duration>,
}

impl Default for Resend {
    fn default() -> Self {
        Resend {
            lookback: Duration::days(DEFAULT_LOOKBACK_DAYS),
            renotify_after: None,
        }
    }
}

/// Every key's current stage, from its account's records (oldest first),
/// in the order the keys were first recorded.
pub fn current(events: &[KeyEvent]) -> Vec<KeyStage> {
    let mut order: Vec<String> = Vec::new();
    let mut by_key: BTreeMap<String, KeyStage> = BTreeMap::new();
    for e in events.iter().filter(|e| e.phase == Phase::Done) {
        let Some(stage) = Stage::of(e.op) else {
            continue;
        };
        let due = e
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok());
        match by_key.get_mut(&e.key_id) {
            Some(k) if k.stage == stage => {
                k.due = due.or(k.due.take());
                k.latest = e.as_of;
            }
            _ => {
                if !by_key.contains_key(&e.key_id) {
                    order.push(e.key_id.clone());
                }
                by_key.insert(
                    e.key_id.clone(),
                    KeyStage {
                        account_id: e.account_id.clone(),
                        user_name: e.user_name.clone(),
                        key_id: e.key_id.clone(),
                        stage,
                        since: e.as_of,
                        due,
                        latest: e.as_of,
                    },
                );
            }
        }
    }
    (order.into_iter())
        .filter_map(|k| by_key.remove(&k))
        .collect()
}

/// The deliveries on record of a stage on a channel: the last one's
/// moment, if any. `events` are the key's records.
pub fn last_delivered(
    ks: &KeyStage,
    channel: Channel,
    events: &[KeyEvent],
) -> Option<OffsetDateTime> {
    (events.iter())
        .filter(|e| e.key_id == ks.key_id && e.op == KeyOp::Notified && e.phase == Phase::Done)
        .filter(|e| {
            let sent: Option<Sent> = e
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok());
            sent.is_some_and(|s| s.stage == ks.stage && s.since == ks.since && s.channel == channel)
        })
        .map(|e| e.as_of)
        .max()
}

/// Whether `channel` owes the key's owner word of its stage at `now`.
pub fn owed(
    ks: &KeyStage,
    channel: Channel,
    events: &[KeyEvent],
    now: OffsetDateTime,
    resend: Resend,
) -> bool {
    if ks.since < now - resend.lookback {
        return false;
    }
    match last_delivered(ks, channel, events) {
        None => true,
        Some(last) => match resend.renotify_after {
            Some(after) => ks.stage.awaits_owner() && now >= last + after,
            None => false,
        },
    }
}

/// `current` with the stages a plan would put keys in (`rekey notify
/// --preview`): a key whose planned stage is its current one stays as it
/// is; any other enters the planned stage at `at`.
pub fn with_planned(current: Vec<KeyStage>, planned: Vec<KeyStage>) -> Vec<KeyStage> {
    let mut out = current;
    for p in planned {
        match out.iter_mut().find(|k| k.key_id == p.key_id) {
            Some(k) if k.stage == p.stage => {}
            Some(k) => *k = p,
            None => out.push(p),
        }
    }
    out
}

/// The stages `plan`'s actions would put keys in, at `at`: what
/// `rekey notify --preview` adds to the journal's.
pub fn planned(plan: &crate::rotation::plan::Plan, at: OffsetDateTime) -> Vec<KeyStage> {
    use crate::rotation::plan::Action;
    let mut out = Vec::new();
    for a in &plan.actions {
        let (account_id, user_name, key_id, stage, due) = match a {
            Action::Rotate { plan, .. } => (
                plan.account_id.clone(),
                plan.user_name.clone(),
                plan.old_key_id.clone(),
                Stage::Rotated,
                None,
            ),
            other => {
                let Some(k) = other.key_action() else {
                    continue;
                };
                let stage = match &k.due {
                    Due::Warn { .. } => Stage::Warning,
                    Due::StillInUse { .. } => Stage::StillInUse,
                    Due::Retire { .. } | Due::Deactivate { .. } => Stage::Deactivated,
                    Due::Delete { .. } => Stage::Deleted,
                    Due::Nothing { .. } | Due::Rotate { .. } => continue,
                };
                (
                    k.account_id.clone(),
                    k.user_name.clone(),
                    k.key_id.clone(),
                    stage,
                    Some(k.due.clone()),
                )
            }
        };
        out.push(KeyStage {
            account_id,
            user_name,
            key_id,
            stage,
            since: at,
            due,
            latest: at,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const DAY0: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

    fn day(n: i64) -> OffsetDateTime {
        DAY0 + Duration::days(n)
    }

    fn ev(
        seq: i64,
        key: &str,
        op: KeyOp,
        phase: Phase,
        d: i64,
        detail: Option<String>,
    ) -> KeyEvent {
        KeyEvent {
            seq,
            account_id: "111111111111".into(),
            user_name: "svc".into(),
            key_id: key.into(),
            op,
            phase,
            run_id: "r".into(),
            at: day(d),
            as_of: day(d),
            detail,
        }
    }

    fn told(seq: i64, key: &str, stage: Stage, since: i64, channel: Channel, d: i64) -> KeyEvent {
        let sent = Sent {
            stage,
            since: day(since),
            channel,
            to: None,
            error: None,
        };
        let detail = Some(serde_json::to_string(&sent).unwrap());
        ev(seq, key, KeyOp::Notified, Phase::Done, d, detail)
    }

    #[test]
    fn a_stage_is_entered_once_however_often_it_is_recorded() {
        let events = [
            ev(1, "K1", KeyOp::Warn, Phase::Done, 77, None),
            ev(2, "K1", KeyOp::Replaced, Phase::Done, 91, None),
            ev(3, "K1", KeyOp::StillInUse, Phase::Done, 94, None),
            ev(4, "K1", KeyOp::StillInUse, Phase::Done, 98, None),
            ev(5, "K2", KeyOp::Deactivate, Phase::Begin, 98, None),
            ev(6, "K2", KeyOp::Deactivate, Phase::Failed, 98, None),
        ];
        let stages = current(&events);
        // K2's deactivation never got done: no stage to tell.
        assert_eq!(stages.len(), 1);
        assert_eq!(stages[0].stage, Stage::StillInUse);
        assert_eq!(stages[0].since, day(94));
        assert_eq!(stages[0].latest, day(98));
    }

    #[test]
    fn a_channel_owes_a_stage_until_it_delivered_it_and_again_only_when_asked() {
        let mut events = vec![ev(1, "K1", KeyOp::Warn, Phase::Done, 77, None)];
        let ks = current(&events).remove(0);
        let never = Resend::default();
        assert!(owed(&ks, Channel::Email, &events, day(77), never));
        // Delivered by email; the webhook still owes it; a failure is no
        // delivery.
        events.push(told(2, "K1", Stage::Warning, 77, Channel::Email, 77));
        let mut failed = told(3, "K1", Stage::Warning, 77, Channel::Webhook, 77);
        failed.phase = Phase::Failed;
        events.push(failed);
        assert!(!owed(&ks, Channel::Email, &events, day(84), never));
        assert!(owed(&ks, Channel::Webhook, &events, day(84), never));
        // --renotify-after 7d: a warning again a week after it was told.
        let weekly = Resend {
            renotify_after: Some(Duration::days(7)),
            ..never
        };
        assert!(!owed(&ks, Channel::Email, &events, day(83), weekly));
        assert!(owed(&ks, Channel::Email, &events, day(84), weekly));
        // Not a stage that waits for its owner, and not an old one.
        events.push(ev(4, "K1", KeyOp::Delete, Phase::Done, 90, None));
        let deleted = current(&events).remove(0);
        events.push(told(5, "K1", Stage::Deleted, 90, Channel::Email, 90));
        assert!(!owed(&deleted, Channel::Email, &events, day(120), weekly));
        assert!(!owed(&deleted, Channel::Webhook, &events, day(121), never));
        assert!(owed(&deleted, Channel::Webhook, &events, day(120), never));
    }

    #[test]
    fn a_stage_entered_again_is_a_new_one() {
        let mut events = vec![
            ev(1, "K1", KeyOp::Deactivate, Phase::Done, 10, None),
            ev(2, "K1", KeyOp::Reactivate, Phase::Done, 11, None),
        ];
        events.push(told(3, "K1", Stage::Deactivated, 10, Channel::Sns, 10));
        events.push(ev(4, "K1", KeyOp::Deactivate, Phase::Done, 20, None));
        let ks = current(&events).remove(0);
        assert_eq!((ks.stage, ks.since), (Stage::Deactivated, day(20)));
        assert!(owed(&ks, Channel::Sns, &events, day(20), Resend::default()));
    }
}
