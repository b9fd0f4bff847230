//! The orphan sweep's side of the engine: which keys are orphans for this
//! user now (the rule lives in [`super::orphans`]), and deleting them,
//! journaled, before a rotation plans with them (issue 9 #7).

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use std::time::{Duration, Instant};

use super::engine::{Engine, Job, RotateError, Who};
use super::orphans::{Found, LOOKBACK, UnknownCreate, orphans};
use super::steps;
use crate::aws::AccountClients;
use crate::error::error_chain;
use crate::journal::{RotationId, Step, Target};
use crate::model::{Key, mask_key_id};

impl Engine<'_> {
    /// The undone rotations of this user (within [`LOOKBACK`]) that asked
    /// IAM for a key without learning whether they got one.
    async fn unknown_creates(
        &self,
        target: &Job,
        account: &str,
        user: &str,
    ) -> Result<Vec<UnknownCreate>, RotateError> {
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
        Ok(unknown)
    }

    /// Keys of `keys` that an earlier, undone rotation of this user made
    /// without learning of them, and that no destination of `target` holds
    /// and no journal record names ([`orphans`]).
    pub(super) async fn find_orphans(
        &self,
        target: &Job,
        account: &str,
        user: &str,
        keys: &[Key],
        old_key: &str,
    ) -> Result<Vec<String>, RotateError> {
        let unknown = self.unknown_creates(target, account, user).await?;
        if unknown.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .orphans_of(target, (account, user), keys, old_key, &unknown)
            .await?
            .orphans)
    }

    /// [`orphans`] for `unknown`, with what the destinations hold and the
    /// journal names; keys left alone as unclear are reported.
    pub(super) async fn orphans_of(
        &self,
        target: &Job,
        (account, user): (&str, &str),
        keys: &[Key],
        old_key: &str,
        unknown: &[UnknownCreate],
    ) -> Result<Found, RotateError> {
        let held = self.held_keys(target).await?;
        let named = self.named_keys(target, account, user).await?;
        let found = orphans(keys, unknown, old_key, &held, &named);
        for key in &found.orphans {
            tracing::info!(
                "{}: {} was made by an interrupted rotation and nobody holds it; deleting it",
                target.label,
                mask_key_id(key)
            );
        }
        if !found.unclear.is_empty() {
            let keys: Vec<String> = found.unclear.iter().map(|k| mask_key_id(k)).collect();
            tracing::warn!(
                "{}: {} of user {user} {} made around the time a CreateAccessKey of rekey's lost its answer, but no destination holds {} and no journal record names {}: whose is unknown (another run with its own journal, a person, another tool), so rekey leaves {} alone; delete the one nobody uses by hand",
                target.label,
                keys.join(", "),
                if keys.len() == 1 { "was" } else { "were" },
                if keys.len() == 1 { "it" } else { "them" },
                if keys.len() == 1 { "it" } else { "them" },
                if keys.len() == 1 { "it" } else { "them" },
            );
        }
        Ok(found)
    }

    /// Every key a destination of `target` holds, current or staged. A
    /// destination that cannot be read might hold any key: an error, so
    /// nothing is swept.
    pub(super) async fn held_keys(&self, target: &Job) -> Result<Vec<String>, RotateError> {
        let unreadable = |source| RotateError::Destination {
            target: target.label.clone(),
            what: "cannot read the key to look for orphans",
            source,
        };
        let mut held = Vec::new();
        for dest in &target.destinations {
            held.extend(dest.current_key_id().await.map_err(unreadable)?);
            held.extend(
                dest.staged()
                    .await
                    .map_err(unreadable)?
                    .map(|p| p.access_key_id),
            );
        }
        Ok(held)
    }

    /// Every key a rotation of this user in the journal names, as the key
    /// it replaced or the key it made.
    pub(super) async fn named_keys(
        &self,
        target: &Job,
        account: &str,
        user: &str,
    ) -> Result<Vec<String>, RotateError> {
        let rotations = self.journal(target, self.journal.of_user(account, user).await)?;
        Ok(rotations
            .into_iter()
            .flat_map(|r| std::iter::once(r.old_key_id).chain(r.new_key_id))
            .collect())
    }

    /// Deletes `orphans`, each journaled on rotation `id`.
    pub(super) async fn delete_orphans(
        &self,
        who: &Who<'_>,
        id: RotationId,
        iam: &AccountClients,
        orphans: &[String],
    ) -> Result<(), RotateError> {
        for key in orphans {
            let deleted = self
                .journaled(
                    who,
                    id,
                    Step::DeleteOrphanKey,
                    Some(&Target::Key(key.clone())),
                    || steps::delete_key(iam, &who.user, key),
                )
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
        id: RotationId,
        account: &str,
        old_key: &str,
        iam: &AccountClients,
    ) -> Result<bool, RotateError> {
        // No earlier request of this user went unanswered: the limit is
        // another key's doing (another run, a person), nothing to wait for.
        if self
            .unknown_creates(who.target, account, &who.user)
            .await?
            .is_empty()
        {
            return Ok(false);
        }
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
