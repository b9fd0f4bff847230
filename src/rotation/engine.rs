//! The step machine: runs a rotation (or resumes an interrupted one) under
//! the user's lease, journaling each step before and after its side effect.

// A RotateError is returned at most once per key, after network calls that
// take milliseconds: its size costs nothing worth boxing every variant for.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use serde::Serialize;

use super::steps::{self, VerifyError, clients_for};
use super::{Decision, KeyPlan, OldKeyAction, Refusal, RotateOptions, plan_key, user_name_of};
use crate::aws::{AccountClients, caller_identity, with_credentials};
use crate::clock::Clock;
use crate::destination::{Destination, DestinationError, KeyPair};
use crate::error::{CallError, error_chain};
use crate::faults::crash_point;
use crate::journal::{Holder, Journal, JournalError, Lease, NewRotation, Outcome, Phase, Step};
use crate::model::mask_key_id;

/// Plan only, or carry out (STYLE: modes are enums).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plan,
    Apply,
}

/// Asks the person at the keyboard before each step (`rotate -i`).
pub trait Prompt: Send + Sync {
    fn confirm(&self, question: &str) -> bool;
}

/// Never asks: every step goes ahead.
pub struct NoPrompt;

impl Prompt for NoPrompt {
    fn confirm(&self, _question: &str) -> bool {
        true
    }
}

/// One key to rotate: where it lives and how to reach AWS.
pub struct Target {
    /// Every destination holding the key; the first one is read back.
    pub destinations: Vec<Arc<dyn Destination>>,
    /// Region and endpoint of the profile (credentials are replaced).
    pub config: SdkConfig,
    /// An MFA session of the old key, for IAM calls that demand MFA.
    pub iam_session: Option<Credentials>,
    /// For messages: `profiles dev, ci`.
    pub label: String,
}

/// How one rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// New key delivered and verified, old key dealt with.
    Rotated,
    /// `--max-age` says not yet.
    NotDue,
    /// `--dry-run`: the plan, nothing changed.
    Planned,
    /// The person declined a step; nothing is left half done.
    Declined,
    /// Rolled back: destinations restored, new key deleted.
    Undone,
}

/// What happened to one key, for output and history.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub target: String,
    pub status: Status,
    pub account_id: Option<String>,
    pub user_name: Option<String>,
    pub old_key_id: Option<String>,
    pub new_key_id: Option<String>,
    pub rotation_id: Option<i64>,
    pub plan: Option<KeyPlan>,
    pub message: String,
}

/// Why a rotation stopped. Every variant names what it concerns; none
/// holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("{target}: the profile holds no access key")]
    NoKey { target: String },
    #[error("{target}: {what}")]
    Destination {
        target: String,
        what: &'static str,
        #[source]
        source: DestinationError,
    },
    #[error("{target}: {doing}")]
    Call {
        target: String,
        doing: String,
        #[source]
        source: CallError,
    },
    #[error("{target}: {source}")]
    Refused {
        target: String,
        #[source]
        source: Refusal,
    },
    #[error("{target}: {source}")]
    Journal {
        target: String,
        // Boxed: JournalError is large and this path is rare.
        #[source]
        source: Box<JournalError>,
    },
    #[error("{target}: rotation of {user} undone, you are where you started: {reason}")]
    Undone {
        target: String,
        user: String,
        reason: String,
    },
    #[error(
        "{target}: the new key {new_key} is delivered and works, but the old key {old_key} could not be {action}; the next `rekey rotate` finishes it"
    )]
    OldKeyPending {
        target: String,
        new_key: String,
        old_key: String,
        action: &'static str,
        #[source]
        source: CallError,
    },
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
    pub(super) target: &'t Target,
    pub(super) user: String,
}

impl Engine<'_> {
    pub(super) fn journal<T>(
        &self,
        target: &Target,
        r: Result<T, JournalError>,
    ) -> Result<T, RotateError> {
        r.map_err(|source| RotateError::Journal {
            target: target.label.clone(),
            source: Box::new(source),
        })
    }

    /// Journals a step, then lets fault injection kill the process there.
    pub(super) fn rec(
        &self,
        who: &Who,
        id: i64,
        step: Step,
        on: Option<&str>,
        phase: Phase,
        detail: Option<&str>,
    ) -> Result<(), RotateError> {
        self.journal(
            who.target,
            self.journal.record_on(id, step, on, phase, detail),
        )?;
        crash_point(step, phase);
        Ok(())
    }

    pub(super) fn read_current(&self, target: &Target) -> Result<KeyPair, RotateError> {
        let dest = target
            .destinations
            .first()
            .ok_or_else(|| RotateError::NoKey {
                target: target.label.clone(),
            })?;
        dest.current()
            .map_err(|source| RotateError::Destination {
                target: target.label.clone(),
                what: "cannot read the key",
                source,
            })?
            .ok_or_else(|| RotateError::NoKey {
                target: target.label.clone(),
            })
    }

    pub(super) fn call(
        &self,
        target: &Target,
        doing: impl Into<String>,
    ) -> impl FnOnce(CallError) -> RotateError {
        let (t, doing) = (target.label.clone(), doing.into());
        move |source| RotateError::Call {
            target: t,
            doing,
            source,
        }
    }

    /// Clients for IAM calls: the MFA session when there is one.
    pub(super) fn iam_clients(&self, target: &Target, pair: &KeyPair) -> AccountClients {
        match &target.iam_session {
            Some(session) => {
                AccountClients::new(&with_credentials(&target.config, session.clone()))
            }
            None => clients_for(&target.config, pair),
        }
    }

    pub(super) async fn lease(
        &self,
        target: &Target,
        account: &str,
        user: &str,
    ) -> Result<Lease, RotateError> {
        self.journal(
            target,
            self.journal
                .acquire_lease(account, user, &self.holder, self.opts.lease_ttl),
        )
    }

    pub(super) fn release(&self, lease: &Lease) {
        if let Err(e) = self.journal.release_lease(lease) {
            tracing::warn!("could not release the lease on {}: {e}", lease.user_name);
        }
    }

    /// Rotates the key `target` holds: plans, and with [`Mode::Apply`]
    /// carries the plan out.
    pub async fn rotate(&self, target: &Target, mode: Mode) -> Result<Report, RotateError> {
        let old = self.read_current(target)?;
        let old_clients = clients_for(&target.config, &old);
        let identity = match caller_identity(&old_clients.sts).await {
            Ok(identity) => identity,
            Err(e) => {
                // A key another run has just delivered, which IAM does not
                // accept yet: say that run holds it, not that the key is bad.
                self.lease_of_delivered_key(target, &old.access_key_id)
                    .await?;
                return Err(self.call(
                    target,
                    format!(
                        "checking the key {} with STS",
                        mask_key_id(&old.access_key_id)
                    ),
                )(e));
            }
        };
        let Some(user) = user_name_of(&identity.arn).map(str::to_string) else {
            return Err(RotateError::Refused {
                target: target.label.clone(),
                source: Refusal::Root,
            });
        };
        let lease = self.lease(target, &identity.account_id, &user).await?;
        let result = self
            .rotate_leased(
                target,
                mode,
                &identity.account_id,
                &identity.arn,
                &user,
                &old.access_key_id,
            )
            .await;
        self.release(&lease);
        result
    }

    /// Fails with the lease error when an unfinished rotation of a live
    /// run created `key_id`.
    async fn lease_of_delivered_key(
        &self,
        target: &Target,
        key_id: &str,
    ) -> Result<(), RotateError> {
        let unfinished = self.journal(target, self.journal.unfinished())?;
        if let Some(r) = unfinished
            .iter()
            .find(|r| r.new_key_id.as_deref() == Some(key_id))
        {
            let lease = self.lease(target, &r.account_id, &r.user_name).await?;
            self.release(&lease);
        }
        Ok(())
    }

    async fn rotate_leased(
        &self,
        target: &Target,
        mode: Mode,
        account: &str,
        arn: &str,
        user: &str,
        seen_key: &str,
    ) -> Result<Report, RotateError> {
        // Re-read under the lease: another run may have rotated meanwhile.
        let old = self.read_current(target)?;
        let mut report = Report {
            target: target.label.clone(),
            status: Status::Planned,
            account_id: Some(account.into()),
            user_name: Some(user.into()),
            old_key_id: Some(old.access_key_id.clone()),
            new_key_id: None,
            rotation_id: None,
            plan: None,
            message: String::new(),
        };
        if old.access_key_id != seen_key {
            tracing::info!("{}: key changed while waiting for the lease", target.label);
        }
        let iam = self.iam_clients(target, &old);
        let keys = steps::list_keys(&iam, user)
            .await
            .map_err(self.call(target, format!("listing the keys of {user}")))?;
        let plan = match plan_key(
            account,
            arn,
            &old.access_key_id,
            &keys,
            self.clock.now(),
            self.opts,
        ) {
            Decision::Rotate(plan) => plan,
            Decision::NotDue {
                age_days,
                max_age_days,
            } => {
                report.status = Status::NotDue;
                report.message = format!(
                    "key {} is {age_days} days old; not due (max age {max_age_days} days)",
                    mask_key_id(&old.access_key_id)
                );
                return Ok(report);
            }
            Decision::Refuse(source) => {
                return Err(RotateError::Refused {
                    target: target.label.clone(),
                    source,
                });
            }
        };
        report.plan = Some(plan.clone());
        report.message = describe_plan(&plan, target);
        if mode == Mode::Plan {
            return Ok(report);
        }
        if !self
            .prompt
            .confirm(&format!("{}. Go ahead?", report.message))
        {
            report.status = Status::Declined;
            report.message = "declined; nothing changed".into();
            return Ok(report);
        }
        let rotation = self.journal(
            target,
            self.journal.begin_rotation(&NewRotation {
                account_id: account.into(),
                user_name: user.into(),
                user_arn: arn.into(),
                old_key_id: old.access_key_id.clone(),
                keys_before: plan.keys_before.clone(),
                destinations: target.destinations.iter().map(|d| d.describe()).collect(),
                old_key_action: plan.old_key_action,
                run_id: self.opts.run_id.clone(),
            }),
        )?;
        report.rotation_id = Some(rotation.id);
        let who = Who {
            target,
            user: user.into(),
        };
        let id = rotation.id;

        if let Some(slot) = &plan.free_slot {
            let on = Some(slot.key_id.as_str());
            self.rec(
                &who,
                id,
                Step::DeleteInactiveKey,
                on,
                Phase::Begin,
                Some(slot.status.as_str()),
            )?;
            if let Err(e) = steps::delete_key(&iam, user, &slot.key_id).await {
                let step = Step::DeleteInactiveKey;
                return self
                    .abort(&who, id, step, on, "could not free a slot", &e)
                    .await;
            }
            self.rec(&who, id, Step::DeleteInactiveKey, on, Phase::Done, None)?;
        }

        self.rec(&who, id, Step::CreateKey, None, Phase::Begin, None)?;
        let new = match steps::create_key(&iam, user).await {
            Ok(pair) => pair,
            // The answer may be lost after IAM made the key: undo looks.
            Err(e) => {
                let what = "CreateAccessKey failed";
                return self.abort(&who, id, Step::CreateKey, None, what, &e).await;
            }
        };
        self.journal(target, self.journal.set_new_key(id, &new.access_key_id))?;
        self.rec(
            &who,
            id,
            Step::CreateKey,
            None,
            Phase::Done,
            Some(&new.access_key_id),
        )?;
        report.new_key_id = Some(new.access_key_id.clone());

        for dest in &target.destinations {
            let on = dest.describe();
            self.rec(&who, id, Step::Deliver, Some(&on), Phase::Begin, None)?;
            if let Err(e) = dest.deliver(&new.access_key_id, &new.secret) {
                let what = format!("could not write {on}");
                return self
                    .abort(&who, id, Step::Deliver, Some(&on), &what, &e)
                    .await;
            }
            self.rec(&who, id, Step::Deliver, Some(&on), Phase::Done, None)?;
        }
        let freed = plan
            .free_slot
            .as_ref()
            .map(|s| {
                format!(
                    "; deleted the {} key {} first to free a slot",
                    s.status.as_str().to_lowercase(),
                    mask_key_id(&s.key_id)
                )
            })
            .unwrap_or_default();
        self.after_delivery(
            &who,
            id,
            &plan.user_arn,
            &old.access_key_id,
            plan.old_key_action,
            &new,
        )
        .await
        .map(|message| Report {
            status: Status::Rotated,
            message: format!("{message}{freed}"),
            ..report
        })
    }

    /// Verify, then retire the old key, then finish.
    pub(super) async fn after_delivery(
        &self,
        who: &Who<'_>,
        id: i64,
        arn: &str,
        old_key: &str,
        action: OldKeyAction,
        new: &KeyPair,
    ) -> Result<String, RotateError> {
        let r = self.journal(who.target, self.journal.get(id))?;
        if !r.step_done(Step::Verify) {
            self.rec(who, id, Step::Verify, None, Phase::Begin, None)?;
            let proof = steps::verify(
                &who.target.config,
                new,
                arn,
                self.opts.verify_successes,
                self.opts.propagation_timeout,
            )
            .await;
            if let Err(e) = proof {
                self.rec(
                    who,
                    id,
                    Step::Verify,
                    None,
                    Phase::Failed,
                    Some(&e.to_string()),
                )?;
                let why = match &e {
                    VerifyError::Timeout { .. } => error_chain(&e),
                    VerifyError::WrongIdentity { .. } => e.to_string(),
                };
                return self.fail_undone(who, id, why).await.map(|_| String::new());
            }
            self.rec(who, id, Step::Verify, None, Phase::Done, None)?;
        }
        let (step, verb) = match action {
            OldKeyAction::Deactivate => (Step::DeactivateOldKey, "deactivated"),
            OldKeyAction::Delete => (Step::DeleteOldKey, "deleted"),
        };
        let mut note = String::new();
        if !r.step_done(step) {
            let question = format!(
                "The new key {} works. {} the old key {}?",
                mask_key_id(&new.access_key_id),
                capitalize(action.as_str()),
                mask_key_id(old_key)
            );
            if !self.prompt.confirm(&question) {
                note = format!(
                    "; old key {} left active at your request",
                    mask_key_id(old_key)
                );
            } else {
                self.rec(who, id, step, None, Phase::Begin, None)?;
                // Signed with the new key (or the MFA session), retried
                // while IAM catches up with it.
                let iam = self.iam_clients(who.target, new);
                let user = who.user.as_str();
                let done =
                    steps::retry_while_propagating(self.opts.propagation_timeout, || async {
                        match action {
                            OldKeyAction::Deactivate => {
                                steps::deactivate_key(&iam, user, old_key).await
                            }
                            OldKeyAction::Delete => steps::delete_key(&iam, user, old_key).await,
                        }
                    })
                    .await;
                if let Err(source) = done {
                    self.rec(
                        who,
                        id,
                        step,
                        None,
                        Phase::Failed,
                        Some(&source.to_string()),
                    )?;
                    return Err(RotateError::OldKeyPending {
                        target: who.target.label.clone(),
                        new_key: mask_key_id(&new.access_key_id),
                        old_key: mask_key_id(old_key),
                        action: verb,
                        source,
                    });
                }
                self.rec(who, id, step, None, Phase::Done, None)?;
                note = format!("; old key {} {verb}", mask_key_id(old_key));
            }
        }
        self.journal(
            who.target,
            self.journal.finish(id, Outcome::Completed, None),
        )?;
        crash_point(Step::Finish, Phase::Done);
        Ok(format!(
            "rotated {}: {} → {}{note}",
            who.user,
            mask_key_id(old_key),
            mask_key_id(&new.access_key_id)
        ))
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One line saying what a plan will do.
pub fn describe_plan(plan: &KeyPlan, target: &Target) -> String {
    let mut s = format!(
        "rotate {} of user {} in account {}{}",
        mask_key_id(&plan.old_key_id),
        plan.user_name,
        plan.account_id,
        plan.old_key_age_days
            .map(|d| format!(" ({d} days old)"))
            .unwrap_or_default()
    );
    if let Some(slot) = &plan.free_slot {
        s.push_str(&format!(
            ", first deleting the {} key {} to free a slot",
            slot.status.as_str().to_lowercase(),
            mask_key_id(&slot.key_id)
        ));
    }
    s.push_str(&format!(
        ", write the new key to {}, verify it, then {} the old key",
        target.label,
        plan.old_key_action.as_str()
    ));
    s
}
