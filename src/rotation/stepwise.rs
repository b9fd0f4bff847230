//! A rotation driven event by event, for a caller that is told when to
//! take each step: the Secrets Manager rotation function (issue 20), whose
//! four events (createSecret, setSecret, testSecret, finishSecret) are each
//! one stretch of the same drive every rotation runs ([`super::drive`]).
//! Between two events the rotation is left open in the journal, its lease
//! released; the next event (in this container or another) resumes it
//! from the journal, as any run resumes an interrupted rotation, and stops
//! again before the step it was not asked for.
//!
//! ```text
//!   createSecret  begin_until(Until::Verify)   CreateKey, Deliver (AWSPENDING)
//!   testSecret    advance(Until::Promote)      Verify
//!   finishSecret  advance(Until::End)          Promote (AWSCURRENT), Confirm, Finish
//! ```

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use super::engine::{Engine, Job, NOT_HELD, Report, RotateError, Subject};
use super::next::{Next, Origin};
use super::{Decision, Refusal, RotateOptions, plan_key, user_name_of};
use crate::aws::{Deps, Identity};
use crate::destination::KeyPair;
use crate::journal::{Rotation, RotationId};

/// Where a stretch of the drive stops: before this step (or any later
/// one), leaving the rotation open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Before the new key is proved: it is made and delivered, staged.
    Verify,
    /// Before the staged delivery is made current: it is proved.
    Promote,
    /// To the rotation's end.
    End,
}

impl Until {
    /// Whether the drive stops before `next`. A step already past the
    /// stop (a retried event) stops at once: an event never takes a later
    /// event's step. Undoing and ending never stop. Pure.
    pub(super) fn stops_before(self, next: Next) -> bool {
        let rank = match next {
            Next::CreateKey | Next::Deliver(_) => 0,
            Next::Verify => 1,
            Next::Promote(_) | Next::Confirm | Next::Retire(_) | Next::Finish => 2,
            Next::Undo(_) | Next::Nothing => return false,
        };
        match self {
            Until::Verify => rank >= 1,
            Until::Promote => rank >= 2,
            Until::End => false,
        }
    }
}

/// How a stretch of the drive ended.
#[derive(Debug, Clone)]
pub enum Stepped {
    /// Left open where it was asked to stop.
    Open { id: RotationId },
    /// Ended (completed or undone), as the report says.
    Ended(Box<Report>),
}

impl Engine<'_> {
    /// Begins a rotation of the user `job` names (a [`Subject::User`]),
    /// decided now under the user's lease as any fresh rotation is, and
    /// drives it as far as `until`. The old key is the job's (or the
    /// run's) old-key action's to deal with at the end.
    pub async fn begin_until(&self, job: &Job, until: Until) -> Result<Stepped, RotateError> {
        let Subject::User {
            account_id,
            user_arn,
        } = &job.subject
        else {
            return Err(RotateError::Refused {
                target: job.label.clone(),
                source: Refusal::Root,
            });
        };
        let Some(user) = user_name_of(user_arn).map(str::to_string) else {
            return Err(RotateError::Refused {
                target: job.label.clone(),
                source: Refusal::Root,
            });
        };
        let identity = Identity {
            account_id: account_id.clone(),
            arn: user_arn.clone(),
            partition: crate::model::partition_of(user_arn)
                .unwrap_or("aws")
                .to_string(),
        };
        let nobody = KeyPair {
            access_key_id: NOT_HELD.into(),
            secret: String::new().into(),
        };
        self.open_access(job, &nobody, &identity).await?;
        let work = self.begin_leased(job, (account_id, user_arn, &user), until);
        self.under_lease(job, (account_id, &user), work).await
    }

    async fn begin_leased(
        &self,
        job: &Job,
        (account, arn, user): (&str, &str, &str),
        until: Until,
    ) -> Result<Stepped, RotateError> {
        // Asked to rotate now: no age decides it.
        let opts = RotateOptions {
            old_key: job.old_key.unwrap_or(self.opts.old_key),
            max_age_days: None,
            ..self.opts.clone()
        };
        let facts = self.gather(job, (account, user), None, &opts).await?;
        let decision = plan_key(
            account,
            arn,
            &facts.old.access_key_id,
            &facts.keys,
            facts.key_facts(),
            self.decided_at(),
            &opts,
        );
        let plan = match decision {
            Decision::Rotate(plan) => plan,
            Decision::Refuse(source) => {
                return Err(RotateError::Refused {
                    target: job.label.clone(),
                    source,
                });
            }
            Decision::NotDue { .. } => unreachable!("no age limit: always due"),
        };
        self.check_deliverable(job, &facts.old.access_key_id, facts.first_holds())
            .await?;
        let mut report = Report::of(job);
        report.account_id = Some(account.into());
        report.user_name = Some(user.into());
        report.old_key_id = Some(plan.old_key_id.clone());
        report.plan = Some(plan.clone());
        let (who, id) = self.begin(job, &plan, &facts.iam, &mut report).await?;
        match self
            .drive_until(&who, id, (Origin::ThisRun, None), until)
            .await?
        {
            None => Ok(Stepped::Open { id }),
            Some(ended) => Ok(Stepped::Ended(Box::new(
                self.fresh_report(job, (id, &plan), ended, &report).await?,
            ))),
        }
    }

    /// Drives `rotation` (left open by an earlier event, in any container)
    /// as far as `until`, its job opened from the journal as a resumed
    /// rotation's is. A rotation that cannot go on (its new key delivered
    /// nowhere, a rollback begun) is undone, as a resumed one is.
    pub async fn advance(
        &self,
        rotation: &Rotation,
        deps: &Deps,
        until: Until,
    ) -> Result<Stepped, RotateError> {
        let job = super::run::open_resumed(rotation, deps).await?;
        self.resume_until(rotation, &job, until).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::OldKeyAction;

    #[test]
    fn each_stretch_stops_before_its_step_and_never_takes_a_later_one() {
        use Next::*;
        let order = [
            CreateKey,
            Deliver(0),
            Verify,
            Promote(0),
            Confirm,
            Retire(OldKeyAction::Keep),
            Finish,
        ];
        let stops =
            |until: Until| -> Vec<bool> { order.iter().map(|n| until.stops_before(*n)).collect() };
        assert_eq!(
            stops(Until::Verify),
            [false, false, true, true, true, true, true]
        );
        assert_eq!(
            stops(Until::Promote),
            [false, false, false, true, true, true, true]
        );
        assert_eq!(stops(Until::End), [false; 7]);
        for until in [Until::Verify, Until::Promote, Until::End] {
            assert!(!until.stops_before(Nothing));
            assert!(!until.stops_before(Undo(super::super::next::UndoWhy::RollingBack)));
        }
    }
}
