//! Putting things back: undoing a rotation that failed, and finishing or
//! undoing one an earlier run left unfinished (DESIGN.md invariant 2).

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use super::engine::{Engine, Job, KeyOutcome, Report, RotateError, Status, UndoneBecause, Who};
use super::next::{Ended, Facts, Next, Origin, ReadBack, next_step};
use super::orphans::{Found, UnknownCreate};
use super::spec::JobSpec;
use super::stepwise::{Stepped, Until};

use crate::aws::{AccountClients, Deps};
use crate::journal::{Outcome, Rotation, RotationId, Step, Target};
use crate::model::Key;
use crate::model::mask_key_id;
use crate::rotation::steps;

impl Engine<'_> {
    /// Undoes a rotation of this run and returns the error telling the user
    /// why: they are where they started. (If undoing fails, that error.)
    pub(super) async fn fail_undone(
        &self,
        who: &Who<'_>,
        id: RotationId,
        reason: String,
    ) -> RotateError {
        if let Err(e) = self.undo(who, id, &reason).await {
            return e;
        }
        RotateError::Undone {
            target: who.target.label.clone(),
            user: who.user.clone(),
            reason,
        }
    }

    /// Puts everything back: destinations holding the new key get the old
    /// one, every key the rotation created is deleted, the rotation ends
    /// `Undone` with `reason`. A destination holding anything else was
    /// changed by someone else after delivery and is left alone.
    pub(super) async fn undo(
        &self,
        who: &Who<'_>,
        id: RotationId,
        reason: &str,
    ) -> Result<(), RotateError> {
        let r = self.journal(who.target, self.journal.get(id).await)?;
        let targets = super::drive::journaled_targets(&r, who.target);
        if let Some(new_key) = r.new_key_id.as_deref() {
            for (dest, on) in who.target.destinations.iter().zip(&targets) {
                let holds =
                    dest.current_key_id()
                        .await
                        .map_err(|source| RotateError::Destination {
                            target: who.target.label.clone(),
                            what: "cannot read the key while rolling back",
                            source,
                        })?;
                let staged = dest
                    .staged()
                    .await
                    .map_err(|source| RotateError::Destination {
                        target: who.target.label.clone(),
                        what: "cannot read the staged key while rolling back",
                        source,
                    })?
                    .map(|p| p.access_key_id);
                if holds.as_deref() != Some(new_key) && staged.as_deref() != Some(new_key) {
                    continue;
                }
                let restored = self
                    .journaled(who, id, Step::Rollback, Some(on), || async {
                        dest.restore(&r.old_key_id, new_key).await
                    })
                    .await?;
                if let Err(source) = restored {
                    return Err(RotateError::Unfinishable {
                        target: who.target.label.clone(),
                        doing: "cannot restore the old key (the new one stays, still valid)".into(),
                        source: Box::new(source),
                    });
                }
            }
        }
        let iam = self.iam_of(who.target).await?;
        self.delete_made_keys(who, &r, &iam, Holders::Read).await?;
        self.journal(
            who.target,
            self.journal.finish(id, Outcome::Undone, Some(reason)).await,
        )?;
        self.release_old(who.target, &r.old_key_id).await;
        Ok(())
    }

    /// Deletes every key rotation `r` made: its new key, and, when the
    /// answer to a CreateAccessKey was lost, the one key that request made —
    /// recognised as [`super::orphans`] does, never a key a destination
    /// holds or the journal names (issue 15 #10: not another run's). Such a
    /// key may not be listed yet: the list is read again until the request
    /// is [`VISIBILITY_WAIT`] old (issue 9 #7); a key that shows up even
    /// later is swept by the next rotation. With `Holders::Unreadable` (an
    /// abandoned rotation, its destinations gone) nothing is known to hold
    /// a key.
    async fn delete_made_keys(
        &self,
        who: &Who<'_>,
        r: &Rotation,
        iam: &AccountClients,
        holders: Holders,
    ) -> Result<(), RotateError> {
        let events = self.journal(who.target, self.journal.events(r.id).await)?;
        let lost_create = UnknownCreate::of(r, &events);
        let wait = VISIBILITY_WAIT.min(self.opts.propagation_timeout);
        loop {
            let keys = steps::list_keys(iam, &who.user)
                .await
                .map_err(self.call(who.target, "listing keys to remove the new one"))?;
            let mut made: Vec<String> = keys
                .iter()
                .filter_map(|k| k.access_key_id.clone())
                .filter(|id| r.new_key_id.as_deref() == Some(id.as_str()))
                .collect();
            let mut unclear = false;
            if let Some(lost) = &lost_create {
                let found = self.lost_key(who, r, &keys, lost, holders).await?;
                unclear = !found.unclear.is_empty();
                made.extend(found.orphans);
            }
            for key in &made {
                let deleted = self
                    .journaled(
                        who,
                        r.id,
                        Step::DeleteNewKey,
                        Some(&Target::Key(key.clone())),
                        || steps::delete_key(iam, &who.user, key),
                    )
                    .await?;
                if let Err(e) = deleted {
                    return Err(RotateError::Unfinishable {
                        target: who.target.label.clone(),
                        doing: format!("deleting the new key {}", mask_key_id(key)),
                        source: Box::new(e),
                    });
                }
            }
            let waited_enough = lost_create.as_ref().is_none_or(|c| {
                self.clock.now() >= c.began + time::Duration::try_from(wait).unwrap_or_default()
            });
            // Keys that may be its own but can't be told apart: reported,
            // left alone; waiting longer would not tell them apart.
            if !made.is_empty() || unclear || waited_enough {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// The key `lost`, a CreateAccessKey of rotation `r` whose answer never
    /// came, made, if `keys` shows exactly one that can be it (several are
    /// reported, as unclear).
    pub(super) async fn lost_key(
        &self,
        who: &Who<'_>,
        r: &Rotation,
        keys: &[Key],
        lost: &UnknownCreate,
        holders: Holders,
    ) -> Result<Found, RotateError> {
        let subject = (r.account_id.as_str(), r.user_name.as_str());
        match holders {
            Holders::Read => {
                self.orphans_of(
                    who.target,
                    subject,
                    keys,
                    &r.old_key_id,
                    std::slice::from_ref(lost),
                )
                .await
            }
            Holders::Unreadable => {
                let named = self.named_keys(who.target, subject.0, subject.1).await?;
                let found = super::orphans::orphans(
                    keys,
                    std::slice::from_ref(lost),
                    &r.old_key_id,
                    &[],
                    &named,
                );
                if !found.unclear.is_empty() {
                    tracing::warn!(
                        "{}: left alone {}, made around rotation #{}'s lost CreateAccessKey: whose is unknown",
                        who.target.label,
                        found
                            .unclear
                            .iter()
                            .map(|k| mask_key_id(k))
                            .collect::<Vec<_>>()
                            .join(", "),
                        r.id
                    );
                }
                Ok(found)
            }
        }
    }

    /// Finishes or undoes a rotation an earlier run left unfinished.
    pub async fn resume(&self, rotation: &Rotation, target: &Job) -> Result<Report, RotateError> {
        let work = async {
            self.reopen_access(target, &rotation.access, &rotation.account_id)
                .await?;
            self.resume_leased(rotation.id, target, Until::End).await
        };
        let user = (rotation.account_id.as_str(), rotation.user_name.as_str());
        match self.under_lease(target, user, work).await? {
            Stepped::Ended(report) => Ok(*report),
            Stepped::Open { .. } => unreachable!("a drive until its end never stops before"),
        }
    }

    /// [`Engine::resume`] as far as `until` (one stretch of a rotation
    /// driven event by event, [`super::stepwise`]).
    pub(super) async fn resume_until(
        &self,
        rotation: &Rotation,
        target: &Job,
        until: Until,
    ) -> Result<Stepped, RotateError> {
        let work = async {
            self.reopen_access(target, &rotation.access, &rotation.account_id)
                .await?;
            self.resume_leased(rotation.id, target, until).await
        };
        let user = (rotation.account_id.as_str(), rotation.user_name.as_str());
        self.under_lease(target, user, work).await
    }

    async fn resume_leased(
        &self,
        id: RotationId,
        target: &Job,
        until: Until,
    ) -> Result<Stepped, RotateError> {
        let r = self.journal(target, self.journal.get(id).await)?;
        let who = Who {
            target,
            user: r.user_name.clone(),
        };
        let mut report = Report {
            target: target.label.clone(),
            status: Status::Undone,
            account_id: Some(r.account_id.clone()),
            user_name: Some(r.user_name.clone()),
            old_key_id: Some(r.old_key_id.clone()),
            new_key_id: r.new_key_id.clone(),
            rotation_id: Some(id),
            plan: None,
            outcome: KeyOutcome::Failed,
            job: None,
            seen: None,
        };
        let left =
            |why: &str| format!("undid rotation #{id} that an earlier run left unfinished: {why}");
        // The secret lives only in destinations: read it back from one
        // before the loop, when the loop would go on with it. A destination
        // that cannot be read might hold it: then stop, never undo
        // (deleting the key it holds would lock its consumer out).
        let facts = Facts {
            destinations: &[],
            staged: &[],
            origin: Origin::EarlierRun,
            read_back: ReadBack::NotYet,
        };
        let mut new = None;
        if let (Some(new_id), false) = (
            r.new_key_id.clone(),
            matches!(next_step(&r, &facts), Next::Undo(_) | Next::Nothing),
        ) {
            for dest in &target.destinations {
                // Current, or delivered but not yet promoted (a staged
                // secret version).
                let pair =
                    dest.holding(&new_id)
                        .await
                        .map_err(|source| RotateError::Destination {
                            target: target.label.clone(),
                            what: "cannot read the key to finish an earlier rotation",
                            source,
                        })?;
                if pair.is_some() {
                    new = pair;
                    break;
                }
            }
            if new.is_none() {
                if r.step_done(Step::DeactivateOldKey) || r.step_done(Step::DeleteOldKey) {
                    return Err(RotateError::NewKeyGone {
                        target: target.label.clone(),
                        id,
                        new_key: mask_key_id(&new_id),
                    });
                }
                let why = UndoneBecause::NewKeyHeldNowhere;
                self.undo(&who, id, &left(why.as_str())).await?;
                report.outcome = KeyOutcome::UndidLeft { id, why };
                return Ok(Stepped::Ended(Box::new(report)));
            }
        }
        let driven = self.drive_until(&who, id, (Origin::EarlierRun, new), until);
        let Some(ended) = driven.await? else {
            return Ok(Stepped::Open { id });
        };
        match ended {
            Ended::Completed(done) => {
                report.status = Status::Rotated;
                report.outcome = KeyOutcome::Resumed { id, done };
            }
            Ended::Undone(why) => report.outcome = KeyOutcome::UndidLeft { id, why },
        }
        Ok(Stepped::Ended(Box::new(report)))
    }

    /// The way out for an unfinished rotation whose destination is gone
    /// (issue 9 #3): deletes every key it made — never the old key, never a
    /// key the user had before — and closes it as undone. IAM is reached
    /// with the credentials of `deps`' base configuration. Refused while a
    /// destination still holds the new key: that rotation can be finished
    /// instead. The rotation's job is opened as a resumed one is, less the
    /// destinations that cannot be opened any more (gone, or of a kind this
    /// build does not know).
    pub async fn abandon(&self, id: RotationId, deps: &Deps) -> Result<Report, RotateError> {
        let label = format!("rotation #{id}");
        let journal_error = |source| RotateError::Journal {
            target: label.clone(),
            source: Box::new(source),
        };
        let r = self.journal.get(id).await.map_err(journal_error)?;
        let refuse = |why: &str| RotateError::CannotAbandon {
            target: label.clone(),
            why: why.to_string(),
        };
        if r.is_finished() {
            return Err(refuse("it is already finished"));
        }
        let mut spec = JobSpec {
            label: label.clone(),
            ..JobSpec::resumed(&r)
        };
        let opens = |d: &crate::destination::DestinationSpec| {
            let one = JobSpec {
                destinations: vec![d.clone()],
                ..spec.clone()
            };
            async move { Job::open(one, deps).await.is_ok() }
        };
        let mut openable = Vec::new();
        for d in &spec.destinations {
            if opens(d).await {
                openable.push(d.clone());
            }
        }
        spec.destinations = openable;
        let target = Job::open(spec, deps)
            .await
            .map_err(|source| RotateError::CannotResume {
                id,
                user: r.user_name.clone(),
                account_id: r.account_id.clone(),
                source,
            })?;
        if let Some(new_key) = &r.new_key_id {
            for d in &target.destinations {
                let staged = d.staged().await.ok().flatten().map(|p| p.access_key_id);
                let current = d.current_key_id().await.ok().flatten();
                if current.as_ref() == Some(new_key) || staged.as_ref() == Some(new_key) {
                    return Err(refuse(
                        "a destination still holds its new key; the next run finishes it instead",
                    ));
                }
            }
        }
        let lease = self.lease(&target, &r.account_id, &r.user_name).await?;
        let who = Who {
            target: &target,
            user: r.user_name.clone(),
        };
        let result = async {
            let iam = AccountClients::new(deps.base());
            self.delete_made_keys(&who, &r, &iam, Holders::Unreadable)
                .await?;
            let why = "abandoned: its destination is gone";
            self.journal(
                &target,
                self.journal.finish(id, Outcome::Undone, Some(why)).await,
            )?;
            self.release_old(&target, &r.old_key_id).await;
            Ok(Report {
                target: label.clone(),
                status: Status::Undone,
                account_id: Some(r.account_id.clone()),
                user_name: Some(r.user_name.clone()),
                old_key_id: Some(r.old_key_id.clone()),
                new_key_id: r.new_key_id.clone(),
                rotation_id: Some(id),
                plan: None,
                outcome: KeyOutcome::Abandoned {
                    id,
                    user: r.user_name.clone(),
                    old_key_id: r.old_key_id.clone(),
                },
                job: None,
                seen: None,
            })
        }
        .await;
        self.release(&lease).await;
        result
    }
}

/// How long after a lost CreateAccessKey an undo keeps looking for its key
/// (at most the propagation timeout).
pub(super) const VISIBILITY_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Whether the destinations can be read to see which keys they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holders {
    Read,
    /// Gone (an abandoned rotation): none is known to hold a key.
    Unreadable,
}
