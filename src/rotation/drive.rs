//! The loop every journaled rotation runs, fresh or resumed: ask
//! [`next_step`] what the journal says comes next, do that one step through
//! `Engine::journaled` (Begin, side effect, Done or Failed), and ask again.
//! No step sequence is written out here; the order lives in [`super::next`].

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use super::engine::{Done, Engine, OldKeyEnd, Question, RotateError, UndoneBecause, Who};
use super::next::{Ended, Facts, Next, Origin, ReadBack, next_step};
use super::steps::{self, VerifyError};
use super::stepwise::Until;
use crate::aws::AccountClients;
use crate::destination::KeyPair;
use crate::error::error_chain;
use crate::faults::crash_point;
use crate::journal::{OldKeyAction, Outcome, Phase, Rotation, RotationId, Step, Target};
use crate::model::mask_key_id;

/// What driving a rotation carries from one step to the next: the
/// destinations' names, the new pair once known, whether every destination
/// was read back, and what became of the old key.
pub(super) struct Driving {
    names: Vec<String>,
    /// Each destination as its steps are journaled (see
    /// [`journaled_targets`]), read from the rotation at each step.
    targets: Vec<Target>,
    staged: Vec<bool>,
    origin: Origin,
    new: Option<KeyPair>,
    read_back: ReadBack,
    old_key_end: OldKeyEnd,
}

/// Why an earlier run's rotation was undone.
fn left_by_earlier(id: RotationId, why: &str) -> String {
    format!("undid rotation #{id} that an earlier run left unfinished: {why}")
}

/// How asking to retire the old key ended: retired, or declined, which
/// ends the rotation.
enum Retired {
    Done(OldKeyEnd),
    Declined(Ended),
}

impl Driving {
    pub(super) fn new(who: &Who<'_>, origin: Origin, new: Option<KeyPair>) -> Driving {
        let destinations = &who.target.destinations;
        Driving {
            names: destinations.iter().map(|d| d.describe()).collect(),
            targets: Vec::new(),
            staged: destinations.iter().map(|d| d.stages_delivery()).collect(),
            origin,
            new,
            read_back: ReadBack::NotYet,
            old_key_end: OldKeyEnd::Untouched,
        }
    }
}

impl Engine<'_> {
    /// Drives rotation `id` to its end, one step at a time. `new` is the
    /// new pair when it is known (a resumed rotation reads it back from a
    /// destination first).
    pub(super) async fn drive(
        &self,
        who: &Who<'_>,
        id: RotationId,
        origin: Origin,
        new: Option<KeyPair>,
    ) -> Result<Ended, RotateError> {
        let mut run = Driving::new(who, origin, new);
        loop {
            if let Some(ended) = self.step(who, id, &mut run).await? {
                return Ok(ended);
            }
        }
    }

    /// Advances rotation `id` by one step: asks [`next_step`] what the
    /// journal says comes next, does it (journaled before and after its
    /// side effect) and returns — `Some` when the rotation has ended. The
    /// way in for a caller that advances a rotation one event at a time
    /// (a Secrets Manager rotation function, issue 20).
    pub(super) async fn step(
        &self,
        who: &Who<'_>,
        id: RotationId,
        run: &mut Driving,
    ) -> Result<Option<Ended>, RotateError> {
        let (r, next) = self.next_of(who, id, run).await?;
        self.take(who, id, run, (&r, next)).await
    }

    /// Drives rotation `id` until its next step is one `until` stops
    /// before (None: the rotation is left open there) or it ends (Some):
    /// a caller that advances a rotation one event at a time (the Secrets
    /// Manager rotation function) makes each event one stretch of the
    /// same drive.
    pub(super) async fn drive_until(
        &self,
        who: &Who<'_>,
        id: RotationId,
        (origin, new): (Origin, Option<KeyPair>),
        until: Until,
    ) -> Result<Option<Ended>, RotateError> {
        let mut run = Driving::new(who, origin, new);
        loop {
            let (r, next) = self.next_of(who, id, &mut run).await?;
            if until.stops_before(next) {
                return Ok(None);
            }
            if let Some(ended) = self.take(who, id, &mut run, (&r, next)).await? {
                return Ok(Some(ended));
            }
        }
    }

    /// The rotation as the journal has it now, and what comes next.
    async fn next_of(
        &self,
        who: &Who<'_>,
        id: RotationId,
        run: &mut Driving,
    ) -> Result<(Rotation, Next), RotateError> {
        let target = who.target;
        let r = self.journal(target, self.journal.get(id).await)?;
        run.targets = journaled_targets(&r, target);
        let facts = Facts {
            destinations: &run.targets,
            staged: &run.staged,
            origin: run.origin,
            read_back: run.read_back,
        };
        let next = next_step(&r, &facts);
        Ok((r, next))
    }

    /// Does `next`, rotation `r`'s next step.
    async fn take(
        &self,
        who: &Who<'_>,
        id: RotationId,
        run: &mut Driving,
        (r, next): (&Rotation, Next),
    ) -> Result<Option<Ended>, RotateError> {
        let target = who.target;
        match next {
            Next::Nothing => return Ok(Some(Ended::Completed(Done::AlreadyEnded { id }))),
            Next::Undo(why) => {
                self.undo(who, id, &left_by_earlier(id, why.as_str()))
                    .await?;
                return Ok(Some(Ended::Undone(UndoneBecause::Left(why))));
            }
            Next::CreateKey => {
                let iam = self.iam_of(target).await?;
                run.new = Some(
                    self.create_key(who, id, &r.account_id, &r.old_key_id, &iam)
                        .await?,
                );
            }
            Next::Deliver(n) => {
                let pair = known(&run.new, target)?;
                self.deliver_to(who, id, n, (pair, &r.old_key_id), run)
                    .await?;
            }
            Next::Verify => {
                let pair = known(&run.new, target)?;
                self.verify_new(who, id, pair, &r.user_arn).await?;
            }
            Next::Promote(n) => {
                let dest = &target.destinations[n];
                let pair = known(&run.new, target)?;
                let on = &run.names[n];
                let promoted = self
                    .journaled(who, id, Step::Promote, Some(&run.targets[n]), || async {
                        dest.promote(pair).await
                    })
                    .await?;
                if let Err(e) = promoted {
                    let why = format!(
                        "could not make the new key current in {on}: {}",
                        error_chain(&e)
                    );
                    return Err(self.fail_undone(who, id, why).await);
                }
            }
            Next::Confirm => {
                self.confirm_delivered(who, id, known(&run.new, target)?)
                    .await?;
                run.read_back = ReadBack::Done;
            }
            Next::Retire(action) => {
                let pair = known(&run.new, target)?;
                match self
                    .retire_asked(who, id, &r.old_key_id, action, pair)
                    .await?
                {
                    Retired::Done(end) => run.old_key_end = end,
                    Retired::Declined(ended) => return Ok(Some(ended)),
                }
            }
            Next::Finish => {
                let pair = known(&run.new, target)?;
                if r.old_key_action == OldKeyAction::Keep {
                    run.old_key_end = OldKeyEnd::Kept;
                }
                return self
                    .finish(who, id, &r.old_key_id, pair, run.old_key_end)
                    .await
                    .map(Some);
            }
        }
        Ok(None)
    }

    /// Writes the new pair to destination `n`; a write that fails undoes
    /// the rotation.
    async fn deliver_to(
        &self,
        who: &Who<'_>,
        id: RotationId,
        n: usize,
        (pair, old_key): (&KeyPair, &str),
        run: &Driving,
    ) -> Result<(), RotateError> {
        let dest = &who.target.destinations[n];
        let on = &run.names[n];
        let delivered = self
            .journaled(who, id, Step::Deliver, Some(&run.targets[n]), || async {
                dest.deliver(pair, old_key).await
            })
            .await?;
        if let Err(e) = delivered {
            let mut why = format!("could not write {on}: {}", error_chain(&e));
            if run.origin == Origin::EarlierRun {
                why = left_by_earlier(id, &why);
            }
            return Err(self.fail_undone(who, id, why).await);
        }
        Ok(())
    }

    /// Proves the new key works (STS, `verify_successes` times in a row);
    /// a key that never does undoes the rotation.
    async fn verify_new(
        &self,
        who: &Who<'_>,
        id: RotationId,
        pair: &KeyPair,
        user_arn: &str,
    ) -> Result<(), RotateError> {
        let (needed, prompt) = (self.opts.verify_successes, self.prompt);
        let waiting =
            |accepted| prompt.waiting(&steps::waiting_line(&pair.access_key_id, accepted, needed));
        let proof = self
            .journaled(who, id, Step::Verify, None, || {
                steps::verify(
                    &who.target.config,
                    pair,
                    user_arn,
                    needed,
                    self.opts.propagation_timeout,
                    &waiting,
                )
            })
            .await?;
        if let Err(e) = proof {
            let why = match &e {
                VerifyError::Timeout { .. } => error_chain(&e),
                VerifyError::WrongIdentity { .. } => e.to_string(),
            };
            return Err(self.fail_undone(who, id, why).await);
        }
        Ok(())
    }

    /// Retires the old key as `action` says, once the person agrees (an
    /// interactive run asks); declined, the rotation ends with the old key
    /// left active.
    async fn retire_asked(
        &self,
        who: &Who<'_>,
        id: RotationId,
        old_key: &str,
        action: OldKeyAction,
        pair: &KeyPair,
    ) -> Result<Retired, RotateError> {
        let question = Question::Retire {
            new_key_id: &pair.access_key_id,
            old_key_id: old_key,
            action,
        };
        if !self.prompt.confirm(&question) {
            let ended = self
                .finish(who, id, old_key, pair, OldKeyEnd::LeftActive)
                .await?;
            return Ok(Retired::Declined(ended));
        }
        self.retire(who, id, old_key, action, pair).await?;
        Ok(Retired::Done(OldKeyEnd::Retired(action)))
    }

    /// Records the rotation completed and forgets the kept old pairs.
    async fn finish(
        &self,
        who: &Who<'_>,
        id: RotationId,
        old_key: &str,
        new: &KeyPair,
        old_key_end: OldKeyEnd,
    ) -> Result<Ended, RotateError> {
        self.journal(
            who.target,
            self.journal.finish(id, Outcome::Completed, None).await,
        )?;
        crash_point(Step::Finish.as_str(), Phase::Done.as_str());
        self.release_old(who.target, old_key).await;
        Ok(Ended::Completed(Done::Rotated {
            user: who.user.clone(),
            old_key_id: old_key.to_string(),
            new_key_id: new.access_key_id.clone(),
            old_key: old_key_end,
        }))
    }

    /// Deactivates or deletes the old key, signed with the new key (or the
    /// session IAM is reached through), retried while IAM catches up.
    async fn retire(
        &self,
        who: &Who<'_>,
        id: RotationId,
        old_key: &str,
        action: OldKeyAction,
        new: &KeyPair,
    ) -> Result<(), RotateError> {
        let step = match action {
            OldKeyAction::Deactivate => Step::DeactivateOldKey,
            OldKeyAction::Delete => Step::DeleteOldKey,
            OldKeyAction::Keep => return Ok(()),
        };
        let iam = self.iam_clients(who.target, new);
        let user = who.user.as_str();
        let done = self
            .journaled(who, id, step, None, || {
                steps::retry_while_propagating(self.opts.propagation_timeout, || async {
                    match action {
                        OldKeyAction::Deactivate => {
                            steps::deactivate_key(&iam, user, old_key).await
                        }
                        OldKeyAction::Delete => steps::delete_key(&iam, user, old_key).await,
                        OldKeyAction::Keep => Ok(()),
                    }
                })
            })
            .await?;
        done.map_err(|source| RotateError::OldKeyPending {
            target: who.target.label.clone(),
            new_key: mask_key_id(&new.access_key_id),
            old_key: mask_key_id(old_key),
            action: verb(action),
            source,
        })
    }

    /// CreateAccessKey, journaled. A refusal (LimitExceeded, AccessDenied:
    /// IAM made nothing) is journaled as such. At the two-key limit right
    /// after a recovery, the key a lost request made may not be listed yet:
    /// wait for it to show, delete it, and ask once more (issue 9 #7). When
    /// this request's own answer is lost, IAM may have made the key: the
    /// one key made about then that nothing holds or names is deleted and
    /// the request sent once more (issue 15 #11); not found in time, the
    /// rotation is undone.
    async fn create_key(
        &self,
        who: &Who<'_>,
        id: RotationId,
        account: &str,
        old_key: &str,
        iam: &AccountClients,
    ) -> Result<KeyPair, RotateError> {
        let user = who.user.as_str();
        let mut swept = false;
        let mut asked_again = false;
        loop {
            self.rec(who, id, Step::CreateKey, None, Phase::Begin, None)
                .await?;
            let e = match steps::create_key(iam, user).await {
                Ok(new) => {
                    // Known before Done: a crash in between still knows it.
                    let key = &new.access_key_id;
                    self.journal(who.target, self.journal.set_new_key(id, key).await)?;
                    self.rec(who, id, Step::CreateKey, None, Phase::Done, Some(key))
                        .await?;
                    return Ok(new);
                }
                Err(e) => e,
            };
            let made_nothing = steps::made_nothing(&e);
            let phase = if made_nothing {
                Phase::Refused
            } else {
                Phase::Failed
            };
            self.rec(who, id, Step::CreateKey, None, phase, Some(&e.to_string()))
                .await?;
            if e.code() == Some("LimitExceeded") && !swept {
                swept = self
                    .sweep_until_visible(who, id, account, old_key, iam)
                    .await?;
                if swept {
                    continue;
                }
            }
            if !made_nothing && !asked_again {
                asked_again = true;
                if self.delete_lost_key(who, id, iam).await? {
                    continue;
                }
            }
            let why = if e.code() == Some("LimitExceeded") {
                format!(
                    "CreateAccessKey met the two-key limit: user {user} got another key after this run listed its keys (another run with its own journal, a person or another tool made it): {}",
                    error_chain(&e)
                )
            } else {
                // The answer may be lost after IAM made the key: undo looks.
                format!("CreateAccessKey failed: {}", error_chain(&e))
            };
            return Err(self.fail_undone(who, id, why).await);
        }
    }

    /// After a CreateAccessKey of rotation `id` lost its answer: lists the
    /// user's keys until the key it made shows (up to the visibility wait)
    /// and deletes it, journaled. False when no such key showed, or it
    /// could not be told apart from another.
    async fn delete_lost_key(
        &self,
        who: &Who<'_>,
        id: RotationId,
        iam: &AccountClients,
    ) -> Result<bool, RotateError> {
        let r = self.journal(who.target, self.journal.get(id).await)?;
        let events = self.journal(who.target, self.journal.events(id).await)?;
        let Some(lost) = super::orphans::UnknownCreate::of(&r, &events) else {
            return Ok(false);
        };
        let wait = super::recovery::VISIBILITY_WAIT.min(self.opts.propagation_timeout);
        let deadline = std::time::Instant::now() + wait;
        loop {
            let keys = steps::list_keys(iam, &who.user)
                .await
                .map_err(self.call(who.target, format!("listing the keys of {}", who.user)))?;
            let found = self
                .lost_key(who, &r, &keys, &lost, super::recovery::Holders::Read)
                .await?;
            if let [key] = found.orphans.as_slice() {
                tracing::info!(
                    "{}: CreateAccessKey lost its answer; deleting the key it made, {}, and asking again",
                    who.target.label,
                    mask_key_id(key)
                );
                self.delete_orphans(who, id, iam, &found.orphans).await?;
                return Ok(true);
            }
            // Several keys that could be its own: none is deleted.
            if !found.unclear.is_empty() || std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// The read-back right before the old key is retired (DESIGN.md
    /// invariant 1): every destination must still hold the new key. If
    /// something rewrote one since delivery (another tool, a restore), the
    /// old key may be what its consumer holds now: it is left active, the
    /// rotation is undone, and the error says what was found.
    async fn confirm_delivered(
        &self,
        who: &Who<'_>,
        id: RotationId,
        new: &KeyPair,
    ) -> Result<(), RotateError> {
        let checked = self
            .journaled(who, id, Step::Confirm, None, || async move {
                let mut missing = Vec::new();
                for dest in &who.target.destinations {
                    let lines = dest.missing(new).await.map_err(|e| error_chain(&e))?;
                    missing.extend(lines);
                }
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(missing.join("; "))
                }
            })
            .await?;
        let Err(found) = checked else {
            return Ok(());
        };
        let why = format!(
            "a destination no longer holds the new key {} ({found}): something rewrote it after delivery, so the old key was left active",
            mask_key_id(&new.access_key_id),
        );
        Err(self.fail_undone(who, id, why).await)
    }

    /// Forgets the old pair each destination kept: the rotation is over.
    pub(super) async fn release_old(&self, target: &super::engine::Job, old_key: &str) {
        for dest in &target.destinations {
            if let Err(e) = dest.release_old(old_key).await {
                tracing::warn!(
                    "{}: could not remove the kept old key {}: {}",
                    dest.describe(),
                    mask_key_id(old_key),
                    error_chain(&e)
                );
            }
        }
    }
}

/// Each destination of `job` as the steps on it are journaled: the
/// destination rotation `r` was begun with, in the same place (a resumed
/// job is rebuilt from that list), so a resumed run names a step exactly as
/// the run that began it did, whatever it has learnt of the destination
/// since (an SSM parameter's form). A destination past the journaled list,
/// which no job has, would be named by what it is now.
pub(super) fn journaled_targets(r: &Rotation, job: &super::engine::Job) -> Vec<Target> {
    job.destinations
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Target::Destination(r.destinations.get(i).cloned().unwrap_or_else(|| d.spec()))
        })
        .collect()
}

/// The new pair, which every step past CreateKey acts with.
fn known<'k>(
    new: &'k Option<KeyPair>,
    target: &super::engine::Job,
) -> Result<&'k KeyPair, RotateError> {
    new.as_ref().ok_or_else(|| RotateError::NoKey {
        target: target.label.clone(),
    })
}

fn verb(action: OldKeyAction) -> &'static str {
    match action {
        OldKeyAction::Deactivate => "deactivated",
        OldKeyAction::Delete => "deleted",
        OldKeyAction::Keep => "kept active",
    }
}
