//! Keys that nobody holds, made by a CreateAccessKey whose answer never
//! arrived (issue 9 #7). AWS can carry out a request after the client that
//! sent it has died, and ListAccessKeys can take seconds to show the new
//! key: a rotation undone on one listing may see its key appear later. Such
//! a key is active and its secret is nowhere — the orphan DESIGN.md
//! invariant 2 forbids — so every later rotation of the user looks for it,
//! deletes it first, and never mistakes it for "another active key".
//!
//! Such a key has no name anywhere, so it is recognised by when it was
//! made — and so could a key another run made then (another machine with
//! its own journal, a person, another tool). A key is therefore deleted as
//! an orphan only if no destination of the user holds it (current or
//! staged), no journal record names it, and it is the only such key made
//! around the lost request, which made at most one; otherwise every
//! candidate is left alone and reported (issue 15 #10).
//!
//! The rule is pure ([`UnknownCreate::made`], [`orphans`]); the engine
//! feeds it the journal's rotations and what the destinations hold.

use time::{Duration, OffsetDateTime};

use crate::journal::{Event, Rotation, RotationId};
use crate::model::Key;

/// Clock skew allowed between this machine and IAM's CreateDate.
pub const SKEW: Duration = Duration::minutes(5);

/// How far back undone rotations are searched for late keys. Keys show up
/// within seconds; this covers a daily schedule's next run many times over.
pub const LOOKBACK: Duration = Duration::days(30);

/// A rotation that asked IAM for a key and never learned whether it got
/// one: it has no new key ID, but a CreateKey was begun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCreate {
    pub rotation_id: RotationId,
    /// When the CreateAccessKey request was about to be sent.
    pub began: OffsetDateTime,
    pub keys_before: Vec<String>,
}

impl UnknownCreate {
    /// `r` as an unknown create, if it is one.
    pub fn of(r: &Rotation, events: &[Event]) -> Option<Self> {
        if r.new_key_id.is_some() {
            return None;
        }
        Some(UnknownCreate {
            rotation_id: r.id,
            began: r.create_began_at(events)?,
            keys_before: r.keys_before.clone(),
        })
    }

    /// Whether `key` may be the one its lost CreateAccessKey made: not a
    /// key the user had before, created around the time of the request.
    pub fn made(&self, key: &Key) -> bool {
        let Some(id) = key.access_key_id.as_deref() else {
            return false;
        };
        !self.keys_before.iter().any(|k| k == id)
            && key
                .created
                .is_some_and(|c| c >= self.began - SKEW && c <= self.began + SKEW)
    }
}

/// What [`orphans`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Made by a lost request, held and named nowhere: delete.
    pub orphans: Vec<String>,
    /// Made around a lost request, held and named nowhere, but more than
    /// one for one request: whose is unknown, so none is deleted.
    pub unclear: Vec<String>,
}

/// The keys of `keys` that are orphans: for each of `unknown`, the one key
/// it may have made that is not the key being rotated, is held by no
/// destination (`held`) and named by no journal record (`named`). Pure.
pub fn orphans(
    keys: &[Key],
    unknown: &[UnknownCreate],
    old_key: &str,
    held: &[String],
    named: &[String],
) -> Found {
    let mut found = Found::default();
    for u in unknown {
        let candidates: Vec<String> = keys
            .iter()
            .filter(|k| u.made(k))
            .filter_map(|k| k.access_key_id.clone())
            .filter(|id| id != old_key && !held.contains(id) && !named.contains(id))
            .collect();
        let into = if candidates.len() == 1 {
            &mut found.orphans
        } else {
            &mut found.unclear
        };
        for id in candidates {
            if !into.contains(&id) {
                into.push(id);
            }
        }
    }
    // A key one request may have made and another leaves unclear is not
    // deleted.
    found.orphans.retain(|id| !found.unclear.contains(id));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyStatus;
    use time::macros::datetime;

    const BEGAN: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);

    fn key(id: &str, created: OffsetDateTime) -> Key {
        Key {
            access_key_id: Some(id.into()),
            status: KeyStatus::Active,
            created: Some(created),
            last_used: None,
        }
    }

    fn lost() -> UnknownCreate {
        UnknownCreate {
            rotation_id: RotationId::numbered(7),
            began: BEGAN,
            keys_before: vec!["AKIAOLD".into()],
        }
    }

    #[test]
    fn a_late_key_made_around_the_lost_request_is_an_orphan() {
        let late = key("AKIALATE", BEGAN + Duration::seconds(2));
        let keys = [key("AKIAOLD", BEGAN - Duration::days(100)), late];
        assert_eq!(
            orphans(&keys, &[lost()], "AKIAOLD", &[], &[]).orphans,
            ["AKIALATE"]
        );
    }

    /// Issue 15 #10: a key another run made at the same time (its own
    /// journal, another machine) is not this request's to delete.
    #[test]
    fn a_key_named_by_the_journal_or_one_of_two_candidates_is_left_alone() {
        let keys = [
            key("AKIAOLD", BEGAN - Duration::days(100)),
            key("AKIAOURS", BEGAN + Duration::seconds(1)),
            key("AKIATHEIRS", BEGAN + Duration::seconds(2)),
        ];
        let found = orphans(&keys, &[lost()], "AKIAOLD", &[], &[]);
        assert_eq!(found.orphans, Vec::<String>::new());
        assert_eq!(found.unclear, ["AKIAOURS", "AKIATHEIRS"]);
        // Once the other is known (held, or named), the one left is ours.
        let held = orphans(&keys, &[lost()], "AKIAOLD", &["AKIATHEIRS".into()], &[]);
        assert_eq!(held.orphans, ["AKIAOURS"]);
        let named = orphans(&keys, &[lost()], "AKIAOLD", &[], &["AKIATHEIRS".into()]);
        assert_eq!(named.orphans, ["AKIAOURS"]);
        assert!(named.unclear.is_empty());
    }

    #[test]
    fn held_keys_old_keys_and_keys_made_later_by_hand_are_not() {
        let keys = [
            key("AKIAOLD", BEGAN + Duration::seconds(1)),
            key("AKIAHELD", BEGAN + Duration::seconds(1)),
            key("AKIAHUMAN", BEGAN + Duration::hours(2)),
        ];
        let none = Found::default();
        assert_eq!(
            orphans(&keys, &[lost()], "AKIAOLD", &["AKIAHELD".into()], &[]),
            none
        );
        assert_eq!(orphans(&keys, &[], "AKIAOLD", &[], &[]), none);
    }
}
