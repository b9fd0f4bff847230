//! Rotation of one IAM user's access key, as a journaled step machine
//! shared by every mode (credentials file today; Secrets Manager, SSM and
//! organization enforcement later):
//!
//! plan → (free a slot) → create the new key → deliver it to every
//! destination → verify it works, several times in a row → deactivate or
//! delete the old key with the new key (or the job's session) → done. A failed verification
//! restores every destination and deletes the new key. Each step is
//! journaled before and after its side effect; an interrupted rotation is
//! finished or undone by the next run ([`engine::Engine::resume`]).
//!
//! Front ends call [`run`] with jobs: each is a [`JobSpec`] — data naming
//! its subject (the user of the key its first destination holds), how IAM
//! is reached ([`access::Access`]: the key itself, an MFA session, a role in
//! the user's account, the caller, a profile) and its destinations —
//! opened by [`Job::open`] over the run's [`crate::aws::Deps`], the one
//! constructor for a fresh rotation and a resumed one alike. `run`
//! finishes what earlier runs left, then rotates the jobs, and returns a
//! [`RunReport`].
//!
//! The order of the steps is a pure function of the journaled state
//! ([`next::next_step`]); `drive` runs it, one journaled step at a time,
//! for a fresh rotation and a resumed one alike.
//!
//! This file holds the pure part: options and [`plan_key`].

pub mod access;
pub mod bindings;
pub mod bound;
mod drive;
pub mod engine;
mod error;
mod fresh;
mod job;
pub mod kept;
pub mod next;
pub mod orphans;
mod outcome;
pub mod plan;
pub mod recovery;
mod run;
pub mod service;
mod spec;
pub mod steps;
pub mod stepwise;
mod sweep;
pub mod targets;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use crate::journal::OldKeyAction;
use crate::model::{Key, KeyStatus, LastUsed, mask_key_id};
use crate::policy::days_between;
pub use engine::{Job, Mode, Subject};
pub use run::{Failure, RunOptions, RunReport, profile_config, run, unfinished_delivered_to};
pub use spec::JobSpec;

/// How rotations are carried out.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    pub old_key: OldKeyAction,
    /// May an *active* other key be deleted to free a slot?
    pub delete_other_active: bool,
    /// Rotate only keys older than this many days.
    pub max_age_days: Option<i64>,
    /// How long to wait for IAM to accept the new key.
    pub propagation_timeout: std::time::Duration,
    /// Consecutive successful GetCallerIdentity calls that prove the key.
    pub verify_successes: u32,
    /// How long a user's lease lasts without renewal.
    pub lease_ttl: time::Duration,
    pub run_id: String,
    /// The moment a key's age is judged at (`enforce --as-of`); None: the
    /// clock's now. Only the decision: leases and the journal keep the
    /// clock's time.
    pub as_of: Option<time::OffsetDateTime>,
}

/// The slot freed before creating the new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeSlot {
    pub key_id: String,
    pub status: KeyStatus,
}

/// What will happen to one key, decided before any change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPlan {
    pub account_id: String,
    pub user_name: String,
    pub user_arn: String,
    pub old_key_id: String,
    pub old_key_age_days: Option<i64>,
    pub free_slot: Option<FreeSlot>,
    /// Keys an earlier, undone rotation made without learning of them:
    /// deleted first, never counted as "another active key" (issue 9 #7).
    pub orphans: Vec<String>,
    pub old_key_action: OldKeyAction,
    pub keys_before: Vec<String>,
}

/// Why a key is not rotated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The other key shows no use since the key being rotated was created
    /// (`last_use` says what IAM knows); freeing its slot needs the
    /// person's leave.
    #[error(
        "user {user} already has another active key {key} ({last_use}); rotating would need a third; deactivate it, or allow deleting it to free the slot"
    )]
    OtherActiveKey {
        user: String,
        key: String,
        last_use: String,
    },
    /// The other key was used after the key being rotated was created:
    /// something still reads it (issue 15 #2). No flag overrides this.
    #[error(
        "user {user}'s other active key {key} was used on {date} ({service} in {region}), after {old_key}, the key being rotated, was created on {since}: something still uses it, so rekey will neither delete nor deactivate it; move what uses it to the current key (or deactivate it yourself), then run again"
    )]
    OtherKeyInUse {
        user: String,
        key: String,
        old_key: String,
        since: String,
        service: String,
        region: String,
        date: String,
    },
    #[error(
        "key {key}, which {held_by} holds, is not one of user {user}'s keys (IAM lists {listed}); was it rotated elsewhere?"
    )]
    OldKeyNotListed {
        user: String,
        key: String,
        held_by: String,
        listed: String,
    },
    #[error(
        "key {key} is Inactive; a profile or destination must hold an active key to be rotated"
    )]
    OldKeyInactive { key: String },
    /// A plan's rotation whose facts changed before it was carried out
    /// (`changed` says how): planned again, it would do something else.
    #[error(
        "the world changed since the plan was made ({changed}); nothing was changed: make the plan again"
    )]
    PlanChanged { changed: String },
    /// A plan's `free_slot` with no `rotate` of its job after it: a slot
    /// is freed only by the rotation that needs it.
    #[error(
        "key {key} is freed only by the rotation of its job that follows it in the plan, and none does; rekey deletes no key on its own here"
    )]
    SlotAlone { key: String },
    #[error(
        "`{action}` is an action of `rekey enforce`, which carries it out with its key's lifecycle"
    )]
    EnforceOnly { action: String },
    #[error(
        "these are root user credentials; rekey never rotates root keys — delete them instead (CIS 1.4)"
    )]
    Root,
    #[error(
        "{what} holds no key pair and user {user} has no active key; create one (or put the key its readers should use there), then run again"
    )]
    NoActiveKey { user: String, what: String },
    #[error(
        "{what} holds no key pair and user {user} has {count} active keys ({keys}); which one its readers use is unknown: put the key it should rotate there"
    )]
    WhichKey {
        user: String,
        what: String,
        count: usize,
        keys: String,
    },
}

/// The plan for one key, or why there is nothing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Rotate(KeyPlan),
    NotDue { age_days: i64, max_age_days: i64 },
    Refuse(Refusal),
}

/// The user name in an IAM user ARN (`arn:P:iam::A:user/path/name`).
pub fn user_name_of(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let path = resource.strip_prefix("user/")?;
    path.rsplit('/').next().filter(|n| !n.is_empty())
}

/// What is known of a user's keys beyond their listing, for [`plan_key`].
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyFacts<'a> {
    /// Keys an earlier, undone rotation made and nobody holds (see
    /// [`orphans`]).
    pub orphans: &'a [String],
    /// Other active keys that a completed rotation of this journal kept
    /// for readers on their own schedule: freed without the person's leave
    /// when unused since (README "Service users").
    pub kept: &'a [String],
    /// Where the key being rotated is held, for messages (`ssm:/ci/svc`).
    pub held_by: &'a str,
}

/// Decides what to do with `old_key_id`, given the user's keys (each other
/// active key with its GetAccessKeyLastUsed in `last_used`: None there is
/// IAM's "no record of use") and `facts`. Pure.
pub fn plan_key(
    account_id: &str,
    user_arn: &str,
    old_key_id: &str,
    all_keys: &[Key],
    facts: KeyFacts<'_>,
    now: OffsetDateTime,
    opts: &RotateOptions,
) -> Decision {
    let orphans = facts.orphans;
    let is_orphan = |k: &Key| {
        k.access_key_id
            .as_ref()
            .is_some_and(|id| orphans.contains(id) && id != old_key_id)
    };
    let keys: Vec<Key> = all_keys.iter().filter(|k| !is_orphan(k)).cloned().collect();
    let keys = keys.as_slice();
    let Some(user_name) = user_name_of(user_arn) else {
        return Decision::Refuse(Refusal::Root);
    };
    let Some(old) = keys
        .iter()
        .find(|k| k.access_key_id.as_deref() == Some(old_key_id))
    else {
        let listed: Vec<String> = keys
            .iter()
            .filter_map(|k| k.access_key_id.as_deref().map(mask_key_id))
            .collect();
        return Decision::Refuse(Refusal::OldKeyNotListed {
            user: user_name.into(),
            key: mask_key_id(old_key_id),
            held_by: facts.held_by.into(),
            listed: if listed.is_empty() {
                "none".into()
            } else {
                listed.join(", ")
            },
        });
    };
    if old.status != KeyStatus::Active {
        return Decision::Refuse(Refusal::OldKeyInactive {
            key: mask_key_id(old_key_id),
        });
    }
    let age = old.created.map(|c| days_between(c, now));
    if let Some((age_days, max_age_days)) = not_due(old, now, opts.max_age_days) {
        return Decision::NotDue {
            age_days,
            max_age_days,
        };
    }
    let free_slot = match free_slot(keys, old, user_name, &facts, opts) {
        Ok(slot) => slot,
        Err(refusal) => return Decision::Refuse(refusal),
    };
    Decision::Rotate(KeyPlan {
        account_id: account_id.into(),
        user_name: user_name.into(),
        user_arn: user_arn.into(),
        old_key_id: old_key_id.into(),
        old_key_age_days: age,
        free_slot,
        orphans: all_keys
            .iter()
            .filter(|k| is_orphan(k))
            .filter_map(|k| k.access_key_id.clone())
            .collect(),
        old_key_action: opts.old_key,
        keys_before: all_keys
            .iter()
            .filter_map(|k| k.access_key_id.clone())
            .collect(),
    })
}

/// The slot to free before a new key can be made: none below IAM's
/// two-key limit; at it, the other key — refused when it is an active key
/// in use since the rotated key was made (issue 15 #2), or an active key
/// the person did not let rekey delete and no rotation of this journal
/// kept. Pure.
// Called once per key: the refusal's size costs nothing (see engine.rs).
#[allow(clippy::result_large_err)]
fn free_slot(
    keys: &[Key],
    old: &Key,
    user_name: &str,
    facts: &KeyFacts<'_>,
    opts: &RotateOptions,
) -> Result<Option<FreeSlot>, Refusal> {
    // IAM allows two keys: a slot is needed only at the limit.
    if keys.len() < 2 {
        return Ok(None);
    }
    let old_key_id = old.access_key_id.as_deref().unwrap_or("");
    let others: Vec<&Key> = keys
        .iter()
        .filter(|k| k.access_key_id.as_deref() != Some(old_key_id))
        .collect();
    let other = pick_slot(&others);
    let other_id = other.access_key_id.as_deref().unwrap_or("");
    if other.status == KeyStatus::Active {
        match in_use_since(other, old.created) {
            Use::Since(used) => {
                return Err(Refusal::OtherKeyInUse {
                    user: user_name.into(),
                    key: mask_key_id(other_id),
                    old_key: mask_key_id(old_key_id),
                    since: old.created.map_or("an unknown date".into(), day),
                    service: used.service.unwrap_or_else(|| "an unknown service".into()),
                    region: used.region.unwrap_or_else(|| "an unknown region".into()),
                    date: day(used.date),
                });
            }
            unused if !opts.delete_other_active && !facts.kept.iter().any(|k| k == other_id) => {
                return Err(Refusal::OtherActiveKey {
                    user: user_name.into(),
                    key: mask_key_id(other_id),
                    last_use: unused.describe(old_key_id),
                });
            }
            _ => {}
        }
    }
    Ok(Some(FreeSlot {
        key_id: other.access_key_id.clone().unwrap_or_default(),
        status: other.status,
    }))
}

/// What GetAccessKeyLastUsed says of another active key, measured from
/// the CreateDate of the key being rotated (issue 15 #2): the key the
/// destination holds replaced whatever came before it then, so a use of
/// another key after that is a reader that still has it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Use {
    /// Used at or after that CreateDate: in use.
    Since(LastUsed),
    /// Last used before it.
    Before(LastUsed),
    /// IAM has no record of any use (never used, or not recorded yet).
    NoRecord,
}

impl Use {
    fn describe(&self, old_key_id: &str) -> String {
        match self {
            Use::Since(u) | Use::Before(u) => format!(
                "last used on {} ({} in {}), {} {} was created",
                day(u.date),
                u.service.as_deref().unwrap_or("an unknown service"),
                u.region.as_deref().unwrap_or("an unknown region"),
                if matches!(self, Use::Since(_)) {
                    "after"
                } else {
                    "before"
                },
                mask_key_id(old_key_id)
            ),
            Use::NoRecord => "IAM has no record of its use".into(),
        }
    }
}

/// `(age, max age)` in days when `key` is younger than `max_age_days`:
/// not due, left alone. A key of unknown age is due. Pure.
pub(super) fn not_due(
    key: &Key,
    now: OffsetDateTime,
    max_age_days: Option<i64>,
) -> Option<(i64, i64)> {
    let age = days_between(key.created?, now);
    let max = max_age_days?;
    (age <= max).then_some((age, max))
}

/// Whether `other` was used since `since` (the rotated key's CreateDate;
/// unknown: any recorded use counts). Pure.
fn in_use_since(other: &Key, since: Option<OffsetDateTime>) -> Use {
    match &other.last_used {
        None => Use::NoRecord,
        Some(u) if since.is_none_or(|c| u.date >= c) => Use::Since(u.clone()),
        Some(u) => Use::Before(u.clone()),
    }
}

fn day(at: OffsetDateTime) -> String {
    at.date().to_string()
}

/// The key a first delivery rotates (issue 7): `what` holds no key pair
/// yet, so the user's only active key, orphans aside; with none or several,
/// which key its readers use is unknown. Pure.
// Called once per job: the refusal's size costs nothing (see engine.rs).
#[allow(clippy::result_large_err)]
pub fn only_active_key(
    user: &str,
    what: &str,
    keys: &[Key],
    orphans: &[String],
) -> Result<String, Refusal> {
    let active: Vec<&str> = keys
        .iter()
        .filter(|k| k.status == KeyStatus::Active)
        .filter_map(|k| k.access_key_id.as_deref())
        .filter(|id| !orphans.iter().any(|o| o == id))
        .collect();
    match active.as_slice() {
        [only] => Ok(only.to_string()),
        [] => Err(Refusal::NoActiveKey {
            user: user.into(),
            what: what.into(),
        }),
        several => Err(Refusal::WhichKey {
            user: user.into(),
            what: what.into(),
            count: several.len(),
            keys: several
                .iter()
                .map(|k| mask_key_id(k))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Which other key gives up its slot: an inactive one first; among equals
/// the least recently used (never used counts as oldest use), then the
/// older (DESIGN.md invariant 3).
fn pick_slot<'a>(others: &[&'a Key]) -> &'a Key {
    let mut sorted = others.to_vec();
    sorted.sort_by_key(|k| {
        (
            k.status == KeyStatus::Active,
            k.last_used.as_ref().map(|u| u.date),
            k.created,
        )
    });
    sorted[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LastUsed;
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-26 12:00 UTC);
    const ARN: &str = "arn:aws:iam::123456789012:user/team/alice";

    fn opts() -> RotateOptions {
        RotateOptions {
            old_key: OldKeyAction::Deactivate,
            delete_other_active: false,
            max_age_days: None,
            propagation_timeout: std::time::Duration::from_secs(60),
            verify_successes: 3,
            lease_ttl: Duration::minutes(15),
            run_id: "r".into(),
            as_of: None,
        }
    }

    fn key(id: &str, status: KeyStatus, age: i64, used: Option<i64>) -> Key {
        Key {
            access_key_id: Some(id.into()),
            status,
            created: Some(NOW - Duration::days(age)),
            last_used: used.map(|d| LastUsed {
                date: NOW - Duration::days(d),
                service: None,
                region: None,
            }),
        }
    }

    fn orphaned(orphans: &[String]) -> KeyFacts<'_> {
        KeyFacts {
            orphans,
            ..KeyFacts::default()
        }
    }

    const OLD: &str = "AKIAOLDOLDOLDOLD0001";
    const OTHER: &str = "AKIAOTHEROTHERO0002";

    #[test]
    fn a_first_delivery_rotates_the_only_active_key_orphans_aside() {
        let one = [
            key(OLD, KeyStatus::Active, 100, None),
            key(OTHER, KeyStatus::Inactive, 10, None),
        ];
        assert_eq!(only_active_key("svc", "ssm:/ci", &one, &[]), Ok(OLD.into()));
        let two = [
            key(OLD, KeyStatus::Active, 100, None),
            key(OTHER, KeyStatus::Active, 0, None),
        ];
        assert_eq!(
            only_active_key("svc", "ssm:/ci", &two, &[OTHER.into()]),
            Ok(OLD.into())
        );
        let e = only_active_key("svc", "ssm:/ci", &two, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ssm:/ci holds no key pair and user svc has 2 active keys (AKIA…0001, AKIA…0002); which one its readers use is unknown: put the key it should rotate there"
        );
        let e = only_active_key("svc", "ssm:/ci", &one[1..], &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ssm:/ci holds no key pair and user svc has no active key; create one (or put the key its readers should use there), then run again"
        );
        // The library says what is wrong; the CLI adds the flag to try.
        assert!(!e.to_string().contains("--"));
    }

    #[test]
    fn user_names_come_from_arns_with_paths() {
        assert_eq!(user_name_of(ARN), Some("alice"));
        assert_eq!(user_name_of("arn:aws-cn:iam::1:user/bob"), Some("bob"));
        assert_eq!(user_name_of("arn:aws:iam::123456789012:root"), None);
    }

    #[test]
    fn one_key_rotates_without_freeing_a_slot() {
        let d = plan_key(
            "123456789012",
            ARN,
            OLD,
            &[key(OLD, KeyStatus::Active, 100, Some(1))],
            KeyFacts::default(),
            NOW,
            &opts(),
        );
        let Decision::Rotate(plan) = d else {
            panic!("{d:?}")
        };
        assert_eq!(plan.free_slot, None);
        assert_eq!(plan.user_name, "alice");
        assert_eq!(plan.keys_before, vec![OLD.to_string()]);
    }

    #[test]
    fn max_age_skips_keys_not_due() {
        let o = RotateOptions {
            max_age_days: Some(90),
            ..opts()
        };
        let d = plan_key(
            "1",
            ARN,
            OLD,
            &[key(OLD, KeyStatus::Active, 90, None)],
            KeyFacts::default(),
            NOW,
            &o,
        );
        assert_eq!(
            d,
            Decision::NotDue {
                age_days: 90,
                max_age_days: 90
            }
        );
        assert!(matches!(
            plan_key(
                "1",
                ARN,
                OLD,
                &[key(OLD, KeyStatus::Active, 91, None)],
                KeyFacts::default(),
                NOW,
                &o
            ),
            Decision::Rotate(_)
        ));
    }

    #[test]
    fn an_inactive_other_key_is_deleted_first() {
        let keys = [
            key(OLD, KeyStatus::Active, 100, Some(1)),
            key(OTHER, KeyStatus::Inactive, 200, None),
        ];
        let Decision::Rotate(plan) =
            plan_key("1", ARN, OLD, &keys, KeyFacts::default(), NOW, &opts())
        else {
            panic!()
        };
        assert_eq!(plan.free_slot.unwrap().key_id, OTHER);
    }

    #[test]
    fn an_active_other_key_refuses_unless_allowed() {
        let keys = [
            key(OLD, KeyStatus::Active, 100, Some(1)),
            key(OTHER, KeyStatus::Active, 5, None),
        ];
        let Decision::Refuse(refusal) =
            plan_key("1", ARN, OLD, &keys, KeyFacts::default(), NOW, &opts())
        else {
            panic!()
        };
        assert!(matches!(refusal, Refusal::OtherActiveKey { .. }));
        assert!(
            refusal
                .to_string()
                .contains("(IAM has no record of its use)"),
            "{refusal}"
        );
        // The library says what is wrong; the CLI adds the flag to try.
        assert!(!refusal.to_string().contains("--"), "{refusal}");
        let allow = RotateOptions {
            delete_other_active: true,
            ..opts()
        };
        let Decision::Rotate(plan) =
            plan_key("1", ARN, OLD, &keys, KeyFacts::default(), NOW, &allow)
        else {
            panic!()
        };
        assert_eq!(plan.free_slot.unwrap().status, KeyStatus::Active);
    }

    /// Issue 15 #2: another active key used after the rotated key was
    /// created is in use — never freed, whatever is allowed or journaled.
    #[test]
    fn an_other_key_used_since_the_rotated_key_was_created_is_never_freed() {
        let mut other = key(OTHER, KeyStatus::Active, 200, Some(1));
        other.last_used.as_mut().unwrap().service = Some("s3".into());
        let keys = [key(OLD, KeyStatus::Active, 100, Some(1)), other];
        let allow = RotateOptions {
            delete_other_active: true,
            ..opts()
        };
        let kept = [OTHER.to_string()];
        let facts = KeyFacts {
            kept: &kept,
            ..KeyFacts::default()
        };
        for (facts, opts) in [(KeyFacts::default(), &opts()), (facts, &allow)] {
            let Decision::Refuse(refusal) = plan_key("1", ARN, OLD, &keys, facts, NOW, opts) else {
                panic!()
            };
            let Refusal::OtherKeyInUse { .. } = refusal else {
                panic!("{refusal}")
            };
            assert_eq!(
                refusal.to_string(),
                "user alice's other active key AKIA…0002 was used on 2026-11-25 (s3 in an unknown region), after AKIA…0001, the key being rotated, was created on 2026-08-18: something still uses it, so rekey will neither delete nor deactivate it; move what uses it to the current key (or deactivate it yourself), then run again"
            );
        }
        // Last used before the rotated key was created: the predecessor it
        // replaced, freed when allowed or kept by an earlier rotation.
        let keys = [
            key(OLD, KeyStatus::Active, 100, Some(1)),
            key(OTHER, KeyStatus::Active, 200, Some(101)),
        ];
        let Decision::Refuse(refusal) =
            plan_key("1", ARN, OLD, &keys, KeyFacts::default(), NOW, &opts())
        else {
            panic!()
        };
        assert!(
            refusal
                .to_string()
                .contains("(last used on 2026-08-17 (an unknown service in an unknown region), before AKIA…0001 was created)"),
            "{refusal}"
        );
        for (facts, opts) in [(facts, &opts()), (KeyFacts::default(), &allow)] {
            let Decision::Rotate(plan) = plan_key("1", ARN, OLD, &keys, facts, NOW, opts) else {
                panic!()
            };
            assert_eq!(plan.free_slot.unwrap().key_id, OTHER);
        }
    }

    #[test]
    fn an_orphan_is_deleted_first_never_called_another_active_key() {
        let keys = [
            key(OLD, KeyStatus::Active, 100, Some(1)),
            key(OTHER, KeyStatus::Active, 0, None),
        ];
        let orphans = [OTHER.to_string()];
        let Decision::Rotate(plan) =
            plan_key("1", ARN, OLD, &keys, orphaned(&orphans), NOW, &opts())
        else {
            panic!()
        };
        assert_eq!(plan.orphans, [OTHER]);
        assert_eq!(plan.free_slot, None);
        assert_eq!(plan.keys_before, [OLD, OTHER]);
        // The key being rotated is never an orphan, whatever the list says.
        let own = [OLD.to_string()];
        let Decision::Refuse(Refusal::OtherActiveKey { .. }) =
            plan_key("1", ARN, OLD, &keys, orphaned(&own), NOW, &opts())
        else {
            panic!()
        };
    }

    #[test]
    fn a_key_iam_does_not_list_or_an_inactive_one_is_refused() {
        let keys = [key(OTHER, KeyStatus::Active, 1, None)];
        assert!(matches!(
            plan_key("1", ARN, OLD, &keys, KeyFacts::default(), NOW, &opts()),
            Decision::Refuse(Refusal::OldKeyNotListed { .. })
        ));
        let keys = [key(OLD, KeyStatus::Inactive, 1, None)];
        assert!(matches!(
            plan_key("1", ARN, OLD, &keys, KeyFacts::default(), NOW, &opts()),
            Decision::Refuse(Refusal::OldKeyInactive { .. })
        ));
    }
}
