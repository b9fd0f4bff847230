//! One key's stage in the access-key lifecycle (issue 17), as a pure
//! function of its recorded facts: IAM's dates (CreateDate,
//! GetAccessKeyLastUsed) and the journal's (when a rotation delivered the
//! key that replaced it, when rekey deactivated it). No date is guessed:
//! a fact that is not known leads to no action that would need it.
//!
//! | stage | when |
//! |---|---|
//! | warn | `warn_before` before the max age |
//! | rotate | older than the max age (in whole days, as audit counts), the key has a destination |
//! | retire | replaced by a rotation, `grace` passed since delivery, no use since (or none for `grace` since its last use) |
//! | still in use | replaced, used after delivery: reported, retried until `grace_max`, then deactivated or reported (`on_grace_max`) |
//! | deactivate | max age + `deactivate_after`, no destination; or unused for `unused` with `deactivate_unused` |
//! | delete | `recovery` after a deactivation rekey made, still unused |
//!
//! A key rekey did not deactivate is never deleted by it.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::model::{KeyStatus, LastUsed};
use crate::names::named_enum;

named_enum! {
    /// What becomes of a key still used after its grace ran out.
    pub enum OnGraceMax as "on_grace_max" {
        /// Deactivated all the same: what uses it must move to the new key.
        Deactivate = "deactivate",
        /// Only reported, every run.
        Report = "report",
    }
}

/// The lifecycle's rules: rekey.toml's `[enforce]`, per account. Every
/// span is in whole days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub max_age_days: i64,
    pub warn_before_days: i64,
    pub grace_days: i64,
    pub grace_max_days: i64,
    pub on_grace_max: OnGraceMax,
    pub deactivate_after_days: i64,
    pub unused_days: i64,
    pub deactivate_unused: bool,
    pub recovery_days: i64,
}

impl Default for Lifecycle {
    /// CIS 1.14's 90 days, CIS 1.12's 45 unused days, and the issue's
    /// defaults for the rest.
    fn default() -> Self {
        Lifecycle {
            max_age_days: 90,
            warn_before_days: 14,
            grace_days: 7,
            grace_max_days: 30,
            on_grace_max: OnGraceMax::Report,
            deactivate_after_days: 14,
            unused_days: 45,
            deactivate_unused: false,
            recovery_days: 7,
        }
    }
}

/// What is recorded of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFacts {
    pub status: KeyStatus,
    /// IAM's CreateDate; None: unknown, and no age-based stage applies.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    /// GetAccessKeyLastUsed; None: IAM has no record of its use.
    pub last_used: Option<LastUsed>,
    /// A destination holds it (a bound service user's key): it can be
    /// rotated rather than deactivated.
    pub has_destination: bool,
    /// When a completed rotation of the journal delivered the key that
    /// replaced this one (it was kept active for its readers).
    #[serde(with = "time::serde::rfc3339::option")]
    pub replaced_at: Option<OffsetDateTime>,
    /// When rekey deactivated it (the journal's record); None for a key
    /// rekey did not deactivate, which it never deletes.
    #[serde(with = "time::serde::rfc3339::option")]
    pub deactivated_by_rekey_at: Option<OffsetDateTime>,
    /// When `enforce --reactivate` made it active again: it is not
    /// deactivated again until `grace` has passed anew.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub reactivated_at: Option<OffsetDateTime>,
}

/// Why a key is deactivated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "because", rename_all = "snake_case")]
pub enum DeactivateWhy {
    /// Older than the max age + `deactivate_after`, with no destination.
    Stale { age_days: i64 },
    /// No use for `unused` days (`deactivate_unused`).
    Unused { idle_days: i64 },
    /// Replaced, and still used after `grace_max` (`on_grace_max =
    /// "deactivate"`).
    GraceOver { last_used: LastUsed },
}

/// What is due for one key now, and when the next stage falls due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Due {
    /// Nothing now; `next` is when something will be, if anything will.
    Nothing {
        #[serde(with = "time::serde::rfc3339::option")]
        next: Option<OffsetDateTime>,
    },
    /// Say the key reaches its max age (or, without a destination, is
    /// deactivated) at `at`.
    Warn {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Rotate it into its destinations.
    Rotate {
        age_days: i64,
    },
    /// Deactivate the replaced key: its grace is over and it shows no use
    /// since the new key was delivered.
    Retire {
        #[serde(with = "time::serde::rfc3339")]
        replaced_at: OffsetDateTime,
    },
    /// The replaced key was used after the new key was delivered: report
    /// the use; retried until `until`.
    StillInUse {
        last_used: LastUsed,
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
    Deactivate {
        why: DeactivateWhy,
    },
    /// Delete the key rekey deactivated, its recovery window over and no
    /// use since.
    Delete {
        #[serde(with = "time::serde::rfc3339")]
        deactivated_at: OffsetDateTime,
    },
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// `then` from `at` on; before it, nothing until `at`.
fn from(at: OffsetDateTime, now: OffsetDateTime, then: Due) -> Due {
    if now >= at {
        then
    } else {
        Due::Nothing { next: Some(at) }
    }
}

/// Whether IAM records a use of the key at or after `since`.
fn used_since(key: &KeyFacts, since: OffsetDateTime) -> Option<&LastUsed> {
    key.last_used.as_ref().filter(|u| u.date >= since)
}

/// What is due for `key` at `now` under `rules`. Pure.
pub fn due(key: &KeyFacts, rules: &Lifecycle, now: OffsetDateTime) -> Due {
    let due = stage(key, rules, now);
    // A key a person reactivated keeps its grace anew before any
    // deactivation (issue 17, undo).
    match key.reactivated_at.map(|at| at + days(rules.grace_days)) {
        Some(until) if now < until && due.deactivates() => Due::Nothing { next: Some(until) },
        _ => due,
    }
}

impl Due {
    /// Whether carrying it out leaves the key inactive.
    pub fn deactivates(&self) -> bool {
        matches!(self, Due::Retire { .. } | Due::Deactivate { .. })
    }

    /// Its name, as the plan and `--only` spell it.
    pub fn stage(&self) -> &'static str {
        match self {
            Due::Nothing { .. } => "nothing",
            Due::Warn { .. } => "warn",
            Due::Rotate { .. } => "rotate",
            Due::Retire { .. } => "retire",
            Due::StillInUse { .. } => "still_in_use",
            Due::Deactivate { .. } => "deactivate",
            Due::Delete { .. } => "delete",
        }
    }
}

fn stage(key: &KeyFacts, rules: &Lifecycle, now: OffsetDateTime) -> Due {
    match key.status {
        KeyStatus::Inactive => inactive(key, rules, now),
        KeyStatus::Active => match key.replaced_at {
            Some(replaced_at) => replaced(key, replaced_at, rules, now),
            None => active(key, rules, now),
        },
    }
}

/// An inactive key: deleted once its recovery window is over, only if rekey
/// deactivated it and nothing used it since.
fn inactive(key: &KeyFacts, rules: &Lifecycle, now: OffsetDateTime) -> Due {
    let Some(at) = key.deactivated_by_rekey_at else {
        return Due::Nothing { next: None };
    };
    if used_since(key, at).is_some() {
        // Used while inactive cannot be; a record after the deactivation
        // means it was reactivated and deactivated again outside rekey's
        // sight: leave it to a person.
        return Due::Nothing { next: None };
    }
    let delete = Due::Delete { deactivated_at: at };
    from(at + days(rules.recovery_days), now, delete)
}

/// An active key a rotation replaced: retired after its grace when unused
/// since delivery, or once unused for `grace` since its last use; else
/// reported until `grace_max`, then as `on_grace_max` says.
fn replaced(key: &KeyFacts, at: OffsetDateTime, rules: &Lifecycle, now: OffsetDateTime) -> Due {
    let grace_max = at + days(rules.grace_max_days);
    if let Some(used) = used_since(key, at) {
        // Its readers moved on: no use for `grace` since its last one.
        let quiet = (used.date + days(rules.grace_days)).max(at + days(rules.grace_days));
        if now >= quiet {
            return Due::Retire { replaced_at: at };
        }
        if now >= grace_max && rules.on_grace_max == OnGraceMax::Deactivate {
            return Due::Deactivate {
                why: DeactivateWhy::GraceOver {
                    last_used: used.clone(),
                },
            };
        }
        return Due::StillInUse {
            last_used: used.clone(),
            until: grace_max,
        };
    }
    let retire = Due::Retire { replaced_at: at };
    from(at + days(rules.grace_days), now, retire)
}

/// An active key no rotation replaced: rotated (with a destination) or
/// deactivated (without) past its max age, warned before; deactivated when
/// unused for long, if asked.
fn active(key: &KeyFacts, rules: &Lifecycle, now: OffsetDateTime) -> Due {
    // A key in a destination is rotated, not deactivated for being idle:
    // its readers may read it rarely.
    if rules.deactivate_unused && !key.has_destination {
        let last = key.last_used.as_ref().map(|u| u.date).or(key.created);
        if let Some(last) = last
            && now >= last + days(rules.unused_days)
        {
            return Due::Deactivate {
                why: DeactivateWhy::Unused {
                    idle_days: (now - last).whole_days(),
                },
            };
        }
    }
    let Some(created) = key.created else {
        return Due::Nothing { next: None };
    };
    let age_days = (now - created).whole_days();
    // Older than the max age in whole days, as audit, AWS Config's
    // `access-keys-rotated` and the rotation engine count: a key of
    // exactly `max_age_days` days is still compliant.
    let max_age = created + days(rules.max_age_days + 1);
    let deactivate_at = max_age + days(rules.deactivate_after_days);
    let warn_at = max_age - days(rules.warn_before_days);
    if now >= max_age && key.has_destination {
        Due::Rotate { age_days }
    } else if now >= deactivate_at {
        Due::Deactivate {
            why: DeactivateWhy::Stale { age_days },
        }
    } else {
        // What falls due: the rotation, or, with nothing to rotate into,
        // the deactivation.
        let at = if key.has_destination {
            max_age
        } else {
            deactivate_at
        };
        from(warn_at, now, Due::Warn { at })
    }
}

#[cfg(test)]
mod tests;
