//! What the planner needs to know of the user's *other* active key at the
//! two-key limit (issue 15 #2), gathered before [`super::plan_key`]
//! decides:
//!
//! - its GetAccessKeyLastUsed, from IAM: the fact that says whether
//!   something still uses it. A use after the CreateDate of the key being
//!   rotated means a reader still holds it, and the planner never frees
//!   it — whatever the journal says and whatever the person allowed. That
//!   holds with an empty journal (a CI job that starts clean every run).
//! - whether a completed rotation of this journal kept it (old-key action
//!   `keep`): such a key was replaced and left active for readers on their
//!   own schedule, so once unused since, its slot is freed without the
//!   person's leave.

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use super::engine::{Engine, Job, RotateError};
use crate::aws::AccountClients;
use crate::journal::{OldKeyAction, Outcome};
use crate::model::{Key, KeyStatus, mask_key_id};

impl Engine<'_> {
    /// `keys` with the last use of each other active key filled in from
    /// GetAccessKeyLastUsed, when the user is at the two-key limit, orphans
    /// aside (only then may a slot be freed). A key whose use cannot be
    /// read stops the rotation: rekey never frees a key without knowing.
    pub(super) async fn with_last_use(
        &self,
        target: &Job,
        keys: &[Key],
        (old_key, orphans): (&str, &[String]),
        iam: &AccountClients,
    ) -> Result<Vec<Key>, RotateError> {
        let mut keys = keys.to_vec();
        let is_orphan = |k: &Key| {
            k.access_key_id
                .as_ref()
                .is_some_and(|id| id != old_key && orphans.contains(id))
        };
        if keys.iter().filter(|k| !is_orphan(k)).count() < 2 {
            return Ok(keys);
        }
        for key in keys.iter_mut().filter(|k| k.status == KeyStatus::Active) {
            let Some(id) = key
                .access_key_id
                .clone()
                .filter(|id| id != old_key && !orphans.contains(id))
            else {
                continue;
            };
            key.last_used = crate::inventory::last_used(iam, &id)
                .await
                .map_err(self.call(
                    target,
                    format!("reading when {} was last used", mask_key_id(&id)),
                ))?;
        }
        Ok(keys)
    }

    /// The user's other active keys that a completed rotation of this
    /// journal replaced and kept active.
    pub(super) async fn kept_keys(
        &self,
        target: &Job,
        (account, user): (&str, &str),
        keys: &[Key],
        old_key: &str,
    ) -> Result<Vec<String>, RotateError> {
        let others: Vec<&str> = keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .filter_map(|k| k.access_key_id.as_deref())
            .filter(|id| *id != old_key)
            .collect();
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let rotations = self.journal(target, self.journal.of_user(account, user).await)?;
        Ok(others
            .into_iter()
            .filter(|other| {
                rotations.iter().any(|r| {
                    r.old_key_id == *other
                        && r.old_key_action == OldKeyAction::Keep
                        && r.outcome == Some(Outcome::Completed)
                })
            })
            .map(str::to_string)
            .collect())
    }
}
