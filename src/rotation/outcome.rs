//! What became of one key, as data ([`KeyOutcome`]), and what a rotation asks
//! the person at the keyboard ([`Question`]): the library decides, each
//! front end writes the words (the CLI in `src/bin/rekey/rotate/render.rs`;
//! issue 16). A failure's words are its error's
//! ([`super::Failure::error`]).

use serde::Serialize;

use super::{FreeSlot, KeyPlan};
use crate::journal::{OldKeyAction, RotationId};
use crate::rotation::next::UndoWhy;

/// What became of one key, user or rotation, with the facts to say so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum KeyOutcome {
    /// Failed, refused or undone with an error (the failure says why), or
    /// not decided yet.
    Failed,
    /// This run rotated it (or found its rotation had ended), after
    /// freeing a slot and deleting the orphans of earlier runs.
    Rotated {
        done: Done,
        freed: Option<FreeSlot>,
        orphans: Vec<String>,
    },
    /// This run finished rotation `id`, which an earlier run left.
    Resumed { id: RotationId, done: Done },
    /// This run undid rotation `id`, which an earlier run left.
    UndidLeft { id: RotationId, why: UndoneBecause },
    /// The policy exempts the user (`why`: the tag, group or name
    /// pattern); nothing was read or changed.
    Exempt { why: String },
    /// The key is younger than the max age.
    NotDue {
        key_id: String,
        age_days: i64,
        max_age_days: i64,
    },
    /// A dry run: the key's plan (in the report) would be carried out,
    /// the new key written to `writes_to`.
    Planned { writes_to: String },
    /// The person declined; nothing changed.
    Declined,
    /// The key named was already replaced by rotation `id` (an earlier
    /// run's).
    AlreadyReplaced {
        id: RotationId,
        old_key_id: String,
        new_key_id: String,
    },
    /// Rotation `id`, which this run finished, replaced or made the key:
    /// not rotated a second time.
    FinishedThisRun {
        id: RotationId,
        user: String,
        account: String,
        old_key_id: String,
        new_key_id: String,
    },
    /// Rotation `id` was abandoned: the keys it made are deleted, the old
    /// key untouched.
    Abandoned {
        id: RotationId,
        user: String,
        old_key_id: String,
    },
}

/// How a driven rotation completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "done", rename_all = "snake_case")]
pub enum Done {
    /// `user`'s key `old_key_id` was replaced by `new_key_id`.
    Rotated {
        user: String,
        old_key_id: String,
        new_key_id: String,
        old_key: OldKeyEnd,
    },
    /// Rotation `id` had already ended when this run came to it.
    AlreadyEnded { id: RotationId },
}

/// What this run did with the old key at the end of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OldKeyEnd {
    /// Nothing this run did (an earlier run had retired it).
    Untouched,
    /// Deactivated or deleted.
    Retired(OldKeyAction),
    /// Left active: the person said no.
    LeftActive,
    /// Kept active, as asked: its readers re-read on their own schedule.
    Kept,
}

/// Why a rotation an earlier run left was undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoneBecause {
    /// What the journal says ([`UndoWhy`]).
    Left(UndoWhy),
    /// No destination holds its whole new key pair: its secret lived only
    /// in the memory of the run that stopped, or something rewrote the
    /// destinations since; the old key stays.
    NewKeyHeldNowhere,
}

impl UndoneBecause {
    /// The reason as the journal records it.
    pub fn as_str(self) -> &'static str {
        match self {
            UndoneBecause::Left(why) => why.as_str(),
            UndoneBecause::NewKeyHeldNowhere => {
                "no destination holds its whole new key pair (its secret lived only in the memory of the run that stopped, or something rewrote the destinations since); the old key stays"
            }
        }
    }
}

/// What a rotation asks before a step, with `-i`.
#[derive(Debug, Clone, Copy)]
pub enum Question<'a> {
    /// Carry out `plan`, writing the new key to `writes_to`?
    Rotate {
        plan: &'a KeyPlan,
        writes_to: &'a str,
    },
    /// The new key works: deal with the old one as `action` says?
    Retire {
        new_key_id: &'a str,
        old_key_id: &'a str,
        action: OldKeyAction,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_is_json_as_the_readme_says() {
        let rotated = KeyOutcome::Rotated {
            done: Done::Rotated {
                user: "dev".into(),
                old_key_id: "AKIAOLDOLDOLDOLD0001".into(),
                new_key_id: "AKIANEWNEWNEWNEW0002".into(),
                old_key: OldKeyEnd::Retired(OldKeyAction::Deactivate),
            },
            freed: None,
            orphans: vec![],
        };
        assert_eq!(
            serde_json::to_value(&rotated).unwrap(),
            serde_json::json!({
                "outcome": "rotated",
                "done": {"done": "rotated", "user": "dev",
                         "old_key_id": "AKIAOLDOLDOLDOLD0001",
                         "new_key_id": "AKIANEWNEWNEWNEW0002",
                         "old_key": {"retired": "deactivate"}},
                "freed": null, "orphans": []
            })
        );
        let undone = KeyOutcome::UndidLeft {
            id: RotationId::numbered(3),
            why: UndoneBecause::Left(UndoWhy::StoppedBeforeDelivery),
        };
        assert_eq!(
            serde_json::to_value(&undone).unwrap(),
            serde_json::json!({"outcome": "undid_left", "id": "3",
                               "why": {"left": "stopped_before_delivery"}})
        );
        assert_eq!(
            serde_json::to_value(KeyOutcome::Failed).unwrap(),
            serde_json::json!({"outcome": "failed"})
        );
    }
}
