//! A fresh rotation, gathered and carried out. [`super::engine`] decides in
//! between, once, with the pure [`super::plan_key`]: the facts are read
//! here first ([`Engine::gather`]), and the plan is carried out here after
//! ([`Engine::carry_out`]).

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use super::engine::{Engine, Job, KeyOutcome, NOT_HELD, Report, RotateError, Status, Who};
use super::next::{Ended, Origin};
use super::plan::{Holding, Seen, SeenKey};
use super::steps;
use super::{KeyFacts, KeyPlan, RotateOptions, not_due, only_active_key};
use crate::aws::AccountClients;
use crate::destination::KeyPair;
use crate::error::error_chain;
use crate::journal::{NewRotation, RotationId, Step, Target};
use crate::model::{Key, KeyStatus};
use time::OffsetDateTime;

/// What a fresh rotation is decided from, read under the user's lease.
pub(super) struct Facts {
    /// The key being rotated (for a first delivery, the user's only
    /// active key), with its secret when the job signs with it.
    pub old: KeyPair,
    /// The user's keys; at the two-key limit of a key that is due, each
    /// other active key with its GetAccessKeyLastUsed.
    pub keys: Vec<Key>,
    pub orphans: Vec<String>,
    pub kept: Vec<String>,
    /// Where the key being rotated is held, for messages.
    pub held_by: String,
    /// The first destination held no key: this rotation delivers a key
    /// there for the first time.
    pub first_delivery: bool,
    pub iam: AccountClients,
}

impl Facts {
    pub fn key_facts(&self) -> KeyFacts<'_> {
        KeyFacts {
            orphans: &self.orphans,
            kept: &self.kept,
            held_by: &self.held_by,
        }
    }

    /// The key the first destination holds: the one rotated, or none
    /// before a first delivery.
    pub fn first_holds(&self) -> Option<&str> {
        (!self.first_delivery).then_some(self.old.access_key_id.as_str())
    }

    /// What a plan was decided from, as the plan prints it: the keys with
    /// their ages at `now`, and what each destination holds (`holdings`,
    /// read before any change). Pure.
    pub fn seen(&self, holdings: Vec<Holding>, now: OffsetDateTime) -> Seen {
        Seen {
            keys: self.keys.iter().map(|k| SeenKey::of(k, now)).collect(),
            orphans: self.orphans.clone(),
            kept: self.kept.clone(),
            destinations: holdings,
        }
    }
}

impl Engine<'_> {
    /// Reads, under the user's lease, everything the plan is decided from:
    /// the key the first destination holds (re-read: another run may have
    /// rotated meanwhile), each destination's own refusal, the user's keys,
    /// orphans of earlier runs, and — only for a key that is due, at the
    /// two-key limit — the other key's last use and whether this journal
    /// kept it. A key not due is left alone before any other key is looked
    /// at: one still read must not fail every daily `--max-age` run
    /// (issue 7). Changes nothing.
    pub(super) async fn gather(
        &self,
        target: &Job,
        (account, user): (&str, &str),
        seen_key: Option<&str>,
        opts: &RotateOptions,
    ) -> Result<Facts, RotateError> {
        let mut old = self.subject_key(target).await?;
        target.subject.check(&target.label, &old.access_key_id)?;
        if seen_key.is_some_and(|seen| seen != old.access_key_id) {
            tracing::info!("{}: key changed while waiting for the lease", target.label);
        }
        // A destination rekey must not rotate is refused before any change.
        for dest in &target.destinations {
            dest.check()
                .await
                .map_err(|source| RotateError::Destination {
                    target: target.label.clone(),
                    what: "cannot rotate into it",
                    source,
                })?;
        }
        let iam = self.iam_clients(target, &old);
        let keys = steps::list_keys(&iam, user)
            .await
            .map_err(self.call(target, format!("listing the keys of {user}")))?;
        let orphans = self
            .find_orphans(target, account, user, &keys, &old.access_key_id)
            .await?;
        let held_by = target.destinations[0].describe();
        let first_delivery = old.access_key_id == NOT_HELD;
        if first_delivery {
            old.access_key_id =
                only_active_key(user, &held_by, &keys, &orphans).map_err(|source| {
                    RotateError::Refused {
                        target: target.label.clone(),
                        source,
                    }
                })?;
        }
        let due = keys
            .iter()
            .find(|k| k.access_key_id.as_deref() == Some(old.access_key_id.as_str()))
            .is_none_or(|k| not_due(k, self.decided_at(), opts.max_age_days).is_none());
        // At the two-key limit, the other key's last use (IAM's fact: used
        // since the rotated key was created means in use, issue 15 #2) and
        // whether an earlier rotation kept it (the journal's).
        let (keys, kept) = if due {
            let keys = self
                .with_last_use(target, &keys, (&old.access_key_id, &orphans), &iam)
                .await?;
            let kept = self
                .kept_keys(target, (account, user), &keys, &old.access_key_id)
                .await?;
            (keys, kept)
        } else {
            (keys, Vec::new())
        };
        Ok(Facts {
            old,
            keys,
            orphans,
            kept,
            held_by,
            first_delivery,
            iam,
        })
    }

    /// Carries out a confirmed plan: journals it, deletes orphans and the
    /// slot's key, then drives the rotation to its end.
    pub(super) async fn carry_out(
        &self,
        target: &Job,
        plan: &KeyPlan,
        iam: &AccountClients,
        report: &mut Report,
    ) -> Result<Report, RotateError> {
        let (who, id) = self.begin(target, plan, iam, report).await?;
        let ended = self.drive(&who, id, Origin::ThisRun, None).await?;
        self.fresh_report(target, (id, plan), ended, report).await
    }

    /// Journals `plan` as a new rotation and frees what it needs: the
    /// orphans deleted, the slot's key deleted. Returns whose rotation it
    /// is and its ID, for the drive.
    pub(super) async fn begin<'t>(
        &self,
        target: &'t Job,
        plan: &KeyPlan,
        iam: &AccountClients,
        report: &mut Report,
    ) -> Result<(Who<'t>, RotationId), RotateError> {
        let rotation = self.journal(
            target,
            self.journal
                .begin_rotation(&NewRotation {
                    account_id: plan.account_id.clone(),
                    user_name: plan.user_name.clone(),
                    user_arn: plan.user_arn.clone(),
                    old_key_id: plan.old_key_id.clone(),
                    keys_before: plan.keys_before.clone(),
                    destinations: target.destinations.iter().map(|d| d.spec()).collect(),
                    old_key_action: plan.old_key_action,
                    access: target.access_spec(),
                    run_id: self.opts.run_id.clone(),
                })
                .await,
        )?;
        report.rotation_id = Some(rotation.id);
        let who = Who {
            target,
            user: plan.user_name.clone(),
        };
        let id = rotation.id;
        self.delete_orphans(&who, id, iam, &plan.orphans).await?;
        if let Some(slot) = &plan.free_slot {
            let on = Target::Key(slot.key_id.clone());
            let step = match slot.status {
                KeyStatus::Active => Step::DeleteActiveKey,
                KeyStatus::Inactive => Step::DeleteInactiveKey,
            };
            let freed = self
                .journaled(&who, id, step, Some(&on), || {
                    steps::delete_key(iam, &plan.user_name, &slot.key_id)
                })
                .await?;
            if let Err(e) = freed {
                let why = format!("could not free a slot: {}", error_chain(&e));
                return Err(self.fail_undone(&who, id, why).await);
            }
        }
        Ok((who, id))
    }

    /// The report of a fresh rotation that ended as `ended` says.
    pub(super) async fn fresh_report(
        &self,
        target: &Job,
        (id, plan): (RotationId, &KeyPlan),
        ended: Ended,
        report: &Report,
    ) -> Result<Report, RotateError> {
        match ended {
            Ended::Completed(done) => {
                let r = self.journal(target, self.journal.get(id).await)?;
                Ok(Report {
                    status: Status::Rotated,
                    new_key_id: r.new_key_id,
                    outcome: KeyOutcome::Rotated {
                        done,
                        freed: plan.free_slot.clone(),
                        orphans: plan.orphans.clone(),
                    },
                    ..report.clone()
                })
            }
            Ended::Undone(why) => Ok(Report {
                status: Status::Undone,
                outcome: KeyOutcome::UndidLeft { id, why },
                ..report.clone()
            }),
        }
    }
}
