//! The step machine: runs a rotation (or resumes an interrupted one) under
//! the user's lease, journaling each step before and after its side effect.

// A RotateError is returned at most once per key, after network calls that
// take milliseconds: its size costs nothing worth boxing every variant for.
#![allow(clippy::result_large_err)]

use serde::Serialize;

pub use super::error::{Remedy, RotateError, remedy_of};
pub use super::job::{Job, Subject};
pub use super::outcome::{Done, KeyOutcome, OldKeyEnd, Question, UndoneBecause};
use super::plan::{Holding, Seen};
use super::spec::JobSpec;
use super::steps::clients_for;
use super::{Decision, KeyPlan, Refusal, RotateOptions, plan_key, user_name_of};
use crate::aws::{AccountClients, Identity, caller_identity, with_credentials};
use crate::clock::Clock;
use crate::destination::{DestinationSpec, KeyPair};
use crate::error::CallError;
use crate::faults::crash_point;
use crate::journal::{
    AccessSpec, Holder, Journal, JournalError, Lease, Phase, RotationId, Step, Target,
};
use crate::model::mask_key_id;
use crate::model::partition_of;

/// Plan only, or carry out (STYLE: modes are enums).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plan,
    Apply,
}

/// Asks the person at the keyboard before each step (`rotate -i`), and
/// tells them what a rotation is waiting for.
pub trait Prompt: Send + Sync {
    fn confirm(&self, question: &Question) -> bool;

    /// One line saying what the rotation waits for (IAM to accept a new
    /// key); shown where someone watches, by default nowhere.
    fn waiting(&self, _line: &str) {}

    /// The code of MFA device `serial`, for the key `label` names; None
    /// when there is nobody to ask.
    fn mfa_code(&self, _serial: &str, _label: &str) -> Option<String> {
        None
    }
}

/// Never asks: every step goes ahead.
pub struct NoPrompt;

impl Prompt for NoPrompt {
    fn confirm(&self, _question: &Question) -> bool {
        true
    }
}

/// How one rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// New key delivered and verified, old key dealt with.
    Rotated,
    /// `--max-age` says not yet.
    NotDue,
    /// The policy exempts the user: never rotated (README "Exemptions").
    Exempt,
    /// `--dry-run`: the plan, nothing changed.
    Planned,
    /// The person declined a step; nothing is left half done.
    Declined,
    /// Rolled back: destinations restored, new key deleted.
    Undone,
    /// The key named was rotated already (by an earlier rotation this run
    /// finished): the destination holds that rotation's new key.
    AlreadyRotated,
    /// Not rotated: rekey would not act (the message says why and what to
    /// do); nothing was changed.
    Refused,
    /// Not rotated: something failed (the message says what); whatever
    /// was begun is undone, or left for the next run to finish.
    Failed,
}

/// What happened to one key, for output and history: the facts, and
/// what became of it as data ([`KeyOutcome`]); front ends write the words.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub status: Status,
    pub account_id: Option<String>,
    pub user_name: Option<String>,
    pub old_key_id: Option<String>,
    pub new_key_id: Option<String>,
    pub rotation_id: Option<RotationId>,
    pub plan: Option<KeyPlan>,
    pub outcome: KeyOutcome,
    /// The job it came from, for the plan a dry run prints
    /// ([`super::plan`]); None for a rotation an earlier run left.
    #[serde(skip)]
    pub job: Option<JobSpec>,
    /// What a planned rotation was decided from (a plan's facts).
    #[serde(skip)]
    pub seen: Option<Seen>,
}

impl Report {
    /// What is known of `target` before any call: its label, and the
    /// account and user its subject names. A run fills in the rest as it
    /// learns it, so a failure reports all it knew (issue 15 #4).
    pub fn of(target: &Job) -> Report {
        let (account_id, user_name, old_key_id) = match &target.subject {
            Subject::OfKey => (None, None, None),
            Subject::User {
                account_id,
                user_arn,
            } => (Some(account_id.clone()), user_name_of(user_arn), None),
            Subject::Known {
                account_id,
                user_arn,
                old_key_id,
            } => (
                Some(account_id.clone()),
                user_name_of(user_arn),
                Some(old_key_id.clone()),
            ),
        };
        Report {
            user_name: user_name.map(str::to_string),
            account_id,
            old_key_id,
            job: Some(target.spec.clone()),
            ..Report::failed(&target.label, Status::Failed)
        }
    }

    /// A key or user that was not rotated, with `status` (its error says
    /// why), of which nothing more is known.
    pub fn failed(target: &str, status: Status) -> Report {
        Report {
            target: target.to_string(),
            status,
            account_id: None,
            user_name: None,
            old_key_id: None,
            new_key_id: None,
            rotation_id: None,
            plan: None,
            outcome: KeyOutcome::Failed,
            job: None,
            seen: None,
        }
    }
}

/// Runs rotations; everything it needs is passed in (STYLE 9).
pub struct Engine<'a> {
    pub journal: &'a dyn Journal,
    pub clock: &'a dyn Clock,
    pub opts: &'a RotateOptions,
    pub prompt: &'a dyn Prompt,
    pub holder: Holder,
}

/// The user a rotation concerns, for messages.
pub(super) struct Who<'t> {
    pub(super) target: &'t Job,
    pub(super) user: String,
}

impl Engine<'_> {
    /// The moment keys are judged at: the options' `as_of`, else now.
    pub(super) fn decided_at(&self) -> time::OffsetDateTime {
        self.opts.as_of.unwrap_or_else(|| self.clock.now())
    }

    pub(super) fn journal<T>(
        &self,
        target: &Job,
        r: Result<T, JournalError>,
    ) -> Result<T, RotateError> {
        r.map_err(|source| RotateError::Journal {
            target: target.label.clone(),
            source: Box::new(source),
        })
    }

    /// Journals a step, then lets fault injection kill the process there.
    pub(super) async fn rec(
        &self,
        who: &Who<'_>,
        id: RotationId,
        step: Step,
        on: Option<&Target>,
        phase: Phase,
        detail: Option<&str>,
    ) -> Result<(), RotateError> {
        self.journal(
            who.target,
            self.journal.record_on(id, step, on, phase, detail).await,
        )?;
        crash_point(step.as_str(), phase.as_str());
        Ok(())
    }

    pub(super) async fn read_current(&self, target: &Job) -> Result<KeyPair, RotateError> {
        let dest = target
            .destinations
            .first()
            .ok_or_else(|| RotateError::NoKey {
                target: target.label.clone(),
            })?;
        dest.current()
            .await
            .map_err(|source| RotateError::Destination {
                target: target.label.clone(),
                what: "cannot read the key",
                source,
            })?
            .ok_or_else(|| RotateError::NoKey {
                target: target.label.clone(),
            })
    }

    /// The key the job rotates, as its first destination holds it. A
    /// user's first delivery finds nothing there: then [`NOT_HELD`], without a
    /// secret — IAM is reached through the job's session, which such a job
    /// must have, and nothing signs with the old key; which key it is, is
    /// decided under the lease ([`super::only_active_key`]).
    pub(super) async fn subject_key(&self, target: &Job) -> Result<KeyPair, RotateError> {
        let Subject::User { .. } = &target.subject else {
            return self.read_current(target).await;
        };
        let first = target
            .destinations
            .first()
            .ok_or_else(|| RotateError::NoKey {
                target: target.label.clone(),
            })?;
        let held = first
            .current()
            .await
            .map_err(|source| RotateError::Destination {
                target: target.label.clone(),
                what: "cannot read the key",
                source,
            })?;
        match held {
            Some(pair) => Ok(pair),
            None if target.opened.get().is_some_and(|o| o.session.is_some()) => Ok(KeyPair {
                access_key_id: NOT_HELD.into(),
                secret: String::new().into(),
            }),
            None => Err(RotateError::NoKey {
                target: target.label.clone(),
            }),
        }
    }

    /// Clients for IAM calls when no new key is at hand: the job's
    /// session, else the key the first destination holds.
    pub(super) async fn iam_of(&self, target: &Job) -> Result<AccountClients, RotateError> {
        match target.opened.get().and_then(|o| o.session.as_ref()) {
            Some(session) => Ok(AccountClients::new(&with_credentials(
                &target.config,
                session.clone(),
            ))),
            None => Ok(clients_for(
                &target.config,
                &self.read_current(target).await?,
            )),
        }
    }

    pub(super) fn call(
        &self,
        target: &Job,
        doing: impl Into<String>,
    ) -> impl FnOnce(CallError) -> RotateError {
        let (t, doing) = (target.label.clone(), doing.into());
        move |source| RotateError::Call {
            target: t,
            doing,
            source,
        }
    }

    /// Clients for IAM calls: the session the job's access opened, else
    /// `pair` itself.
    pub(super) fn iam_clients(&self, target: &Job, pair: &KeyPair) -> AccountClients {
        match target.opened.get().and_then(|o| o.session.as_ref()) {
            Some(session) => {
                AccountClients::new(&with_credentials(&target.config, session.clone()))
            }
            None => clients_for(&target.config, pair),
        }
    }

    /// Opens the job's way in to IAM for the user `identity` names.
    pub(super) async fn open_access(
        &self,
        target: &Job,
        old: &KeyPair,
        identity: &Identity,
    ) -> Result<(), RotateError> {
        target
            .open_access(old, identity)
            .await
            .map_err(|source| RotateError::Access {
                target: target.label.clone(),
                source,
            })
    }

    /// Reopens the way in a journaled rotation went.
    pub(super) async fn reopen_access(
        &self,
        target: &Job,
        spec: &AccessSpec,
        account: &str,
    ) -> Result<(), RotateError> {
        target
            .reopen_access(spec, account)
            .await
            .map_err(|source| RotateError::Access {
                target: target.label.clone(),
                source,
            })
    }

    pub(super) async fn lease(
        &self,
        target: &Job,
        account: &str,
        user: &str,
    ) -> Result<Lease, RotateError> {
        self.journal(
            target,
            self.journal
                .acquire_lease(account, user, &self.holder, self.opts.lease_ttl)
                .await,
        )
    }

    /// Runs `work` under the user's lease, renewed every third of its
    /// length (the heartbeat) for as long as `work` runs: a long
    /// verification or a slow destination never lets it expire. A lease
    /// found taken by another run stops `work` where it is, as a kill
    /// would (the journal says what was begun), and says so.
    pub(super) async fn under_lease<T>(
        &self,
        target: &Job,
        (account, user): (&str, &str),
        work: impl std::future::Future<Output = Result<T, RotateError>>,
    ) -> Result<T, RotateError> {
        let lease = self.lease(target, account, user).await?;
        let beat = self.heartbeat(&lease);
        futures::pin_mut!(work, beat);
        let result = match futures::future::select(work, beat).await {
            futures::future::Either::Left((done, _)) => done,
            futures::future::Either::Right((lost, _)) => self.journal(target, Err(lost)),
        };
        self.release(&lease).await;
        result
    }

    /// Renews `lease` every third of its length; returns only when it is
    /// lost, or could not be renewed before it ran out.
    async fn heartbeat(&self, lease: &Lease) -> JournalError {
        let ttl = self.opts.lease_ttl;
        let every = std::time::Duration::try_from(ttl / 3).unwrap_or(std::time::Duration::MAX);
        let mut held = lease.clone();
        loop {
            tokio::time::sleep(every).await;
            match self.journal.renew_lease(&held, ttl).await {
                Ok(renewed) => held = renewed,
                Err(lost @ JournalError::LeaseLost { .. }) => return lost,
                Err(e) if self.clock.now() >= held.expires_at => return e,
                // Unreachable for now (the network): the lease still runs.
                Err(e) => tracing::warn!("could not renew the lease on {}: {e}", held.user_name),
            }
        }
    }

    pub(super) async fn release(&self, lease: &Lease) {
        if let Err(e) = self.journal.release_lease(lease).await {
            tracing::warn!("could not release the lease on {}: {e}", lease.user_name);
        }
    }

    /// Records Begin for `step`, runs `effect`, records Done or Failed
    /// (with the error's text, which holds no secret) and hands back its
    /// result: the journal-before-and-after of every side effect, once.
    pub(super) async fn journaled<T, E, Fut>(
        &self,
        who: &Who<'_>,
        id: RotationId,
        step: Step,
        on: Option<&Target>,
        effect: impl FnOnce() -> Fut,
    ) -> Result<Result<T, E>, RotateError>
    where
        Fut: std::future::Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        self.rec(who, id, step, on, Phase::Begin, None).await?;
        let result = effect().await;
        if result.is_ok() {
            crate::faults::crash_after_effect(step.as_str());
        }
        match &result {
            Ok(_) => self.rec(who, id, step, on, Phase::Done, None).await?,
            Err(e) => {
                self.rec(who, id, step, on, Phase::Failed, Some(&e.to_string()))
                    .await?
            }
        }
        Ok(result)
    }

    /// Rotates the key `target` holds: plans, and with [`Mode::Apply`]
    /// carries the plan out. A plan takes no lease and writes nothing.
    pub async fn rotate(&self, target: &Job, mode: Mode) -> Result<Report, RotateError> {
        self.rotate_noting(target, mode, &mut Report::of(target))
            .await
    }

    /// [`Engine::rotate`], noting in `seen` what it learns on the way
    /// (whose key it is, the plan, the rotation's ID): when it fails,
    /// `seen` holds all that was known, for the run's report.
    pub async fn rotate_noting(
        &self,
        target: &Job,
        mode: Mode,
        seen: &mut Report,
    ) -> Result<Report, RotateError> {
        self.rotate_expecting(target, (mode, None), seen).await
    }

    /// [`Engine::rotate_noting`]; with `expected`, the plan a dry run made
    /// ([`super::plan::Action::Rotate`]): the rotation is carried out only
    /// if the facts read now, under the lease, lead to that same plan.
    pub(super) async fn rotate_expecting(
        &self,
        target: &Job,
        (mode, expected): (Mode, Option<&KeyPlan>),
        seen: &mut Report,
    ) -> Result<Report, RotateError> {
        if let Some(why) = &target.exempt {
            // The policy's word: nothing is read, nothing changes.
            seen.status = Status::Exempt;
            seen.outcome = KeyOutcome::Exempt { why: why.clone() };
            return Ok(seen.clone());
        }
        // The key seen before the lease (none for a user's job: its key is
        // read once, under the lease), and whose it is.
        let (old, identity) = match &target.subject {
            Subject::User {
                account_id,
                user_arn,
            } => (None, identity_of(account_id, user_arn)),
            Subject::Known {
                account_id,
                user_arn,
                old_key_id,
            } => {
                let old = self.read_current(target).await?;
                if let Some(report) = self
                    .already_rotated(
                        target,
                        (account_id, user_arn),
                        old_key_id,
                        &old.access_key_id,
                    )
                    .await?
                {
                    return Ok(report);
                }
                target.subject.check(&target.label, &old.access_key_id)?;
                (Some(old), identity_of(account_id, user_arn))
            }
            Subject::OfKey => {
                let old = self.read_current(target).await?;
                match caller_identity(&clients_for(&target.config, &old).sts).await {
                    Ok(identity) => (Some(old), identity),
                    Err(e) => {
                        // A key another run has just delivered, which IAM
                        // does not accept yet: say that run holds it, not
                        // that the key is bad.
                        if mode == Mode::Apply {
                            self.lease_of_delivered_key(target, &old.access_key_id)
                                .await?;
                        }
                        return Err(self.call(
                            target,
                            format!(
                                "checking the key {} with STS",
                                mask_key_id(&old.access_key_id)
                            ),
                        )(e));
                    }
                }
            }
        };
        seen.account_id = Some(identity.account_id.clone());
        let Some(user) = user_name_of(&identity.arn).map(str::to_string) else {
            return Err(RotateError::Refused {
                target: target.label.clone(),
                source: Refusal::Root,
            });
        };
        seen.user_name = Some(user.clone());
        if let Some(old) = &old {
            seen.old_key_id = Some(old.access_key_id.clone());
        }
        // Only an MFA session signs with the old key itself.
        let nobody = KeyPair {
            access_key_id: NOT_HELD.into(),
            secret: String::new().into(),
        };
        self.open_access(target, old.as_ref().unwrap_or(&nobody), &identity)
            .await?;
        let subject = (
            identity.account_id.as_str(),
            identity.arn.as_str(),
            user.as_str(),
        );
        let seen_key = old.as_ref().map(|o| o.access_key_id.as_str());
        if mode == Mode::Plan {
            return self
                .rotate_leased(target, (mode, expected), subject, seen_key, seen)
                .await;
        }
        let work = self.rotate_leased(target, (mode, expected), subject, seen_key, seen);
        self.under_lease(target, (&identity.account_id, &user), work)
            .await
    }

    /// A report saying `named` was already rotated when a completed
    /// rotation replaced it with `held`, the key the destination holds now
    /// (a front end named the key before this run finished that rotation).
    /// The user's rotations are read by a keyed query: a scan of the latest
    /// N would miss one with N newer rotations of other users (issue 16).
    async fn already_rotated(
        &self,
        target: &Job,
        (account, user_arn): (&str, &str),
        named: &str,
        held: &str,
    ) -> Result<Option<Report>, RotateError> {
        let Some(user) = user_name_of(user_arn).filter(|_| named != held) else {
            return Ok(None);
        };
        let rotations = self.journal(target, self.journal.of_user(account, user).await)?;
        let Some(r) = rotations.iter().rev().find(|r| {
            r.old_key_id == named
                && r.new_key_id.as_deref() == Some(held)
                && r.outcome == Some(crate::journal::Outcome::Completed)
        }) else {
            return Ok(None);
        };
        Ok(Some(Report {
            target: target.label.clone(),
            status: Status::AlreadyRotated,
            account_id: Some(r.account_id.clone()),
            user_name: Some(r.user_name.clone()),
            old_key_id: Some(named.to_string()),
            new_key_id: Some(held.to_string()),
            rotation_id: Some(r.id),
            plan: None,
            outcome: KeyOutcome::AlreadyReplaced {
                id: r.id,
                old_key_id: named.to_string(),
                new_key_id: held.to_string(),
            },
            job: Some(target.spec.clone()),
            seen: None,
        }))
    }

    /// Fails with the lease error when an unfinished rotation of a live
    /// run created `key_id`.
    async fn lease_of_delivered_key(&self, target: &Job, key_id: &str) -> Result<(), RotateError> {
        let unfinished = self.journal(target, self.journal.unfinished().await)?;
        if let Some(r) = unfinished
            .iter()
            .find(|r| r.new_key_id.as_deref() == Some(key_id))
        {
            let lease = self.lease(target, &r.account_id, &r.user_name).await?;
            self.release(&lease).await;
        }
        Ok(())
    }

    /// A fresh rotation under the user's lease, in three parts: gather the
    /// facts ([`Engine::gather`]), decide once ([`plan_key`], pure), and
    /// carry the plan out ([`Engine::carry_out`]).
    async fn rotate_leased(
        &self,
        target: &Job,
        (mode, expected): (Mode, Option<&KeyPlan>),
        (account, arn, user): (&str, &str, &str),
        seen_key: Option<&str>,
        report: &mut Report,
    ) -> Result<Report, RotateError> {
        // The job's own old-key action and max age, else the run's.
        let job_opts = RotateOptions {
            old_key: target.old_key.unwrap_or(self.opts.old_key),
            max_age_days: target.max_age_days.or(self.opts.max_age_days),
            ..self.opts.clone()
        };
        let facts = self
            .gather(target, (account, user), seen_key, &job_opts)
            .await?;
        report.status = Status::Planned;
        report.account_id = Some(account.into());
        report.user_name = Some(user.into());
        report.old_key_id = Some(facts.old.access_key_id.clone());
        let decision = plan_key(
            account,
            arn,
            &facts.old.access_key_id,
            &facts.keys,
            facts.key_facts(),
            self.decided_at(),
            &job_opts,
        );
        if let Some(changed) = expected.and_then(|e| super::plan::departs(e, &decision)) {
            return Err(RotateError::Refused {
                target: target.label.clone(),
                source: Refusal::PlanChanged { changed },
            });
        }
        let plan = match decision {
            Decision::Rotate(plan) => plan,
            Decision::NotDue {
                age_days,
                max_age_days,
            } => {
                report.status = Status::NotDue;
                report.outcome = KeyOutcome::NotDue {
                    key_id: facts.old.access_key_id.clone(),
                    age_days,
                    max_age_days,
                };
                return Ok(report.clone());
            }
            Decision::Refuse(source) => {
                return Err(RotateError::Refused {
                    target: target.label.clone(),
                    source,
                });
            }
        };
        report.plan = Some(plan.clone());
        // Every destination is read before the first change, in a plan
        // as in a real run: a plan then says what the run would do.
        let holdings = self
            .check_deliverable(target, &facts.old.access_key_id, facts.first_holds())
            .await?;
        report.seen = Some(facts.seen(holdings, self.decided_at()));
        let writes_to = written_to(target);
        report.outcome = KeyOutcome::Planned {
            writes_to: writes_to.clone(),
        };
        if mode == Mode::Plan {
            return Ok(report.clone());
        }
        let go = Question::Rotate {
            plan: &plan,
            writes_to: &writes_to,
        };
        if !self.prompt.confirm(&go) {
            report.status = Status::Declined;
            report.outcome = KeyOutcome::Declined;
            return Ok(report.clone());
        }
        self.carry_out(target, &plan, &facts.iam, report).await
    }
}

impl Engine<'_> {
    /// Refuses, before any change, a rotation whose delivery a destination
    /// would refuse: every destination past the first must hold `old_key`
    /// (or, where a first delivery may fill it, nothing). The first was
    /// read a moment ago and named `old_key`. Without this, a plan said
    /// "would rotate" where the run then made a key, found another one in
    /// a later destination and undid it (issue 15 #5); the delivery still
    /// checks again, for whatever changes meanwhile.
    /// Returns what each destination holds: the first, read a moment ago,
    /// holds `first_holds`.
    pub(super) async fn check_deliverable(
        &self,
        target: &Job,
        old_key: &str,
        first_holds: Option<&str>,
    ) -> Result<Vec<Holding>, RotateError> {
        let mut holdings = Vec::with_capacity(target.destinations.len());
        for (n, dest) in target.destinations.iter().enumerate() {
            let holds = if n == 0 {
                first_holds.map(str::to_string)
            } else {
                dest.accepts(old_key)
                    .await
                    .map_err(|source| RotateError::Destination {
                        target: target.label.clone(),
                        what: "a destination would not take the new key",
                        source,
                    })?
            };
            holdings.push(Holding {
                destination: dest.spec(),
                holds,
            });
        }
        Ok(holdings)
    }
}

/// The identity of the user `user_arn` of `account_id`, as STS would say it.
fn identity_of(account_id: &str, user_arn: &str) -> Identity {
    Identity {
        account_id: account_id.to_string(),
        arn: user_arn.to_string(),
        partition: partition_of(user_arn).unwrap_or("aws").to_string(),
    }
}

/// The key ID a first delivery's empty destination stands for until the
/// key is picked under the lease (no real key ID is empty).
pub(super) const NOT_HELD: &str = "";

/// Where a plan writes the new key: a credentials-file job's label names
/// its profiles (`profile dev`); a service job's names its user, so its
/// destinations are named instead (`secretsmanager:ci/bot, ssm:/ci/bot`).
pub fn written_to(target: &Job) -> String {
    let files_only = target
        .destinations
        .iter()
        .all(|d| matches!(d.spec(), DestinationSpec::SharedFile { .. }));
    if files_only {
        return target.label.clone();
    }
    let names: Vec<String> = target.destinations.iter().map(|d| d.describe()).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{AwsOptions, Deps};
    use crate::awsfiles::FileKind;
    use crate::destination::Binding;
    use crate::rotation::JobSpec;
    use crate::rotation::access::Access;

    async fn job(destinations: Vec<DestinationSpec>, label: &str) -> Job {
        let spec = JobSpec::new(label.into(), Subject::OfKey, Access::OldKey, destinations);
        let base = aws_config::SdkConfig::builder().build();
        let deps = Deps::new(base, AwsOptions::default(), None);
        Job::open(spec, &deps).await.unwrap()
    }

    const ACCOUNT: &str = "111111111111";

    fn options(lease_ttl: time::Duration) -> RotateOptions {
        RotateOptions {
            old_key: crate::journal::OldKeyAction::Keep,
            delete_other_active: false,
            max_age_days: None,
            propagation_timeout: std::time::Duration::from_secs(60),
            verify_successes: 3,
            lease_ttl,
            run_id: "run-1".into(),
            as_of: None,
        }
    }

    /// Virtual time (tokio's paused clock) for the heartbeat, and the
    /// journal's clock moved in step by the work: no test waits.
    #[tokio::test(start_paused = true)]
    async fn the_lease_beats_while_the_work_runs_and_the_work_stops_once_it_is_lost() {
        use crate::clock::FixedClock;
        use crate::journal::{Journal, SqliteJournal};
        use std::sync::Arc;
        let ttl = time::Duration::minutes(15);
        let clock = Arc::new(FixedClock::new(
            time::macros::datetime!(2026-03-01 12:00 UTC),
        ));
        let journal = SqliteJournal::in_memory(clock.clone()).unwrap();
        let opts = options(ttl);
        let engine = Engine {
            journal: &journal,
            clock: clock.as_ref(),
            opts: &opts,
            prompt: &NoPrompt,
            holder: Holder::current("run-1"),
        };
        let target = job(vec![], "user alice in account 111111111111").await;
        let other = Holder::current("run-2");
        // Forty minutes of work, well past one lease: still held throughout.
        let work = async {
            for _ in 0..10 {
                tokio::time::sleep(std::time::Duration::from_secs(240)).await;
                clock.advance(time::Duration::minutes(4));
            }
            let taken = Journal::acquire_lease(&journal, ACCOUNT, "alice", &other, ttl).await;
            assert!(
                matches!(taken, Err(JournalError::LeaseHeld { .. })),
                "{taken:?}"
            );
            Ok(())
        };
        engine
            .under_lease(&target, (ACCOUNT, "alice"), work)
            .await
            .unwrap();
        // Released when the work ended.
        let theirs = journal
            .acquire_lease(ACCOUNT, "alice", &other, ttl)
            .unwrap();
        journal.release_lease(&theirs).unwrap();

        // Lost: given up by mistake and taken by another run. The work,
        // which would never end, is stopped at the next beat, saying so.
        let work = async {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            let mine = journal
                .acquire_lease(ACCOUNT, "alice", &engine.holder, ttl)
                .unwrap();
            journal.release_lease(&mine).unwrap();
            journal
                .acquire_lease(ACCOUNT, "alice", &other, ttl)
                .unwrap();
            std::future::pending::<Result<(), RotateError>>().await
        };
        let err = engine
            .under_lease(&target, (ACCOUNT, "alice"), work)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("alice") && format!("{err:?}").contains("LeaseLost"),
            "{err:?}"
        );
        let still = journal.acquire_lease(ACCOUNT, "alice", &Holder::current("run-3"), ttl);
        assert!(
            matches!(still, Err(JournalError::LeaseHeld { .. })),
            "run-2's lease was left alone"
        );
    }

    #[tokio::test]
    async fn a_plan_says_where_the_new_key_goes() {
        let service = job(
            vec![
                Binding::SecretsManager("ci/bot".into()).spec("111111111111", None, None),
                Binding::Ssm("/ci/bot".into()).spec("111111111111", None, None),
            ],
            "user ci-bot in account 111111111111",
        )
        .await;
        assert_eq!(written_to(&service), "secretsmanager:ci/bot, ssm:/ci/bot");
        let file = DestinationSpec::SharedFile {
            file: FileKind::Credentials,
            path: "/h/.aws/credentials".into(),
            profiles: vec!["dev".into()],
        };
        let profile = job(vec![file], "profile dev").await;
        assert_eq!(written_to(&profile), "profile dev");
    }
}
