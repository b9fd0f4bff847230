//! The orphan sweep's side of the engine: which keys are orphans for this
//! user now (the rule lives in [`super::orphans`]), and deleting them,
//! journaled, before a rotation plans with them (issue 9 #7).

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use std::time::{Duration, Instant};

use super::engine::{Engine, Job, RotateError, Who};
use super::orphans::{LOOKBACK, UnknownCreate, orphans};
use super::steps;
use crate::aws::AccountClients;
use crate::error::error_chain;
use crate::journal::Step;
use crate::model::{Key, mask_key_id};

impl Engine<'_> {
    /// Keys of `keys` that an earlier, undone rotation of this user made
    /// without learning of them, and that no destination of `target` holds.
    pub(super) async fn find_orphans(
        &self,
        target: &Job,
        account: &str,
        user: &str,
        keys: &[Key],
        old_key: &str,
    ) -> Result<Vec<String>, RotateError> {
        let since = self.clock.now() - LOOKBACK;
        let undone = self.journal(
            target,
            self.journal.undone_since(account, user, since).await,
        )?;
        let mut unknown = Vec::new();
        for r in &undone {
            let events = self.journal(target, self.journal.events(r.id).await)?;
            unknown.extend(UnknownCreate::of(r, &events));
        }
        if unknown.is_empty() {
            return Ok(Vec::new());
        }
        // A destination that cannot be read might hold the key: no sweep.
        let mut held = Vec::new();
        for dest in &target.destinations {
            let id = dest
                .current_key_id()
                .await
                .map_err(|source| RotateError::Destination {
                    target: target.label.clone(),
                    what: "cannot read the key to look for orphans",
                    source,
                })?;
            held.extend(id);
        }
        let found = orphans(keys, &unknown, old_key, &held);
        for key in &found {
            tracing::info!(
                "{}: {} was made by an interrupted rotation and nobody holds it; deleting it",
                target.label,
                mask_key_id(key)
            );
        }
        Ok(found)
    }

    /// Deletes `orphans`, each journaled on rotation `id`.
    pub(super) async fn delete_orphans(
        &self,
        who: &Who<'_>,
        id: i64,
        iam: &AccountClients,
        orphans: &[String],
    ) -> Result<(), RotateError> {
        for key in orphans {
            let deleted = self
                .journaled(who, id, Step::DeleteOrphanKey, Some(key), || {
                    steps::delete_key(iam, &who.user, key)
                })
                .await?;
            if let Err(e) = deleted {
                let why = format!(
                    "could not delete the orphan key {}: {}",
                    mask_key_id(key),
                    error_chain(&e)
                );
                return Err(self.fail_undone(who, id, why).await);
            }
        }
        Ok(())
    }

    /// After LimitExceeded: a key that a lost request made exists but may
    /// not be listed yet. Lists until an orphan shows (then deletes it and
    /// says so) or the propagation timeout passes.
    pub(super) async fn sweep_until_visible(
        &self,
        who: &Who<'_>,
        id: i64,
        account: &str,
        old_key: &str,
        iam: &AccountClients,
    ) -> Result<bool, RotateError> {
        let deadline = Instant::now() + self.opts.propagation_timeout;
        let mut delay = Duration::from_millis(250);
        loop {
            let keys = steps::list_keys(iam, &who.user)
                .await
                .map_err(self.call(who.target, format!("listing the keys of {}", who.user)))?;
            let found = self
                .find_orphans(who.target, account, &who.user, &keys, old_key)
                .await?;
            if !found.is_empty() {
                self.delete_orphans(who, id, iam, &found).await?;
                return Ok(true);
            }
            if Instant::now() + delay > deadline {
                return Ok(false);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}
