//! A run's work as data (issue 16): a [`Plan`] is the list of [`Action`]s a
//! run would take, each with the [`JobSpec`] it concerns and the facts it
//! was decided from. A dry run returns it (`rekey rotate --dry-run -o json`
//! prints it, schema [`SCHEMA`], documented in the README); [`execute`]
//! carries out one action, and carries out a rotation only if the facts it
//! reads then, under the user's lease, lead to the same [`KeyPlan`]
//! ([`changed`]). `enforce`, the Lambda and the DynamoDB journal take
//! actions as values from here.
//!
//! The decisions stay where they were made once: [`super::plan_key`]
//! decides each key (pure), the journal decides what becomes of an
//! unfinished rotation ([`unfinished_action`], pure); the functions here
//! only turn a run's reports into actions ([`Plan::of_run`], pure).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::engine::{Engine, KeyOutcome, Mode, Report, RotateError, Status};
use super::next::{Facts, Next, Origin, ReadBack, UndoWhy, next_step};
use super::run::{Failure, RunReport, report_of, resume_rotation};
use super::spec::JobSpec;
use super::{Decision, FreeSlot, KeyPlan};
use crate::aws::Deps;
use crate::destination::DestinationSpec;
use crate::enforce::KeyAction;
use crate::enforce::lifecycle::KeyFacts;
use crate::error::error_chain;
use crate::journal::{Phase, Rotation, RotationId, Step, Target};
use crate::model::{Key, KeyStatus, LastUsed};
use crate::policy::days_between;

/// The plan document's `schema`.
pub const SCHEMA: &str = "rekey.plan/1";

/// What a run would do, in the order it would do it: the unfinished
/// rotations first (finished or undone before anything new), then each
/// job's actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: String,
    /// When the plan was made: `enforce --apply-plan` refuses a plan older
    /// than `--plan-max-age`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub made_at: Option<OffsetDateTime>,
    /// The moment it was planned for (`--as-of`), when not `made_at`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub as_of: Option<OffsetDateTime>,
    pub actions: Vec<Action>,
    /// What the planning found besides actions: an exemption that
    /// expired (`enforce`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<PlanFinding>,
}

/// A finding of the planning, for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFinding {
    pub account_id: String,
    pub user_name: String,
    /// `exemption_expired`.
    pub finding: String,
    pub detail: String,
}

/// One thing a run does, or does not do and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Rotate the job's key as `plan` says (its free slot and orphans
    /// first: the `free_slot` actions before it), decided from `seen`.
    Rotate {
        job: JobSpec,
        plan: KeyPlan,
        seen: Seen,
    },
    /// Finish rotation `rotation_id`, which an earlier run left.
    Resume {
        rotation_id: RotationId,
        unfinished: Unfinished,
    },
    /// Undo rotation `rotation_id`, which an earlier run left: its journal
    /// says it cannot be finished.
    Undo {
        rotation_id: RotationId,
        why: UndoWhy,
        unfinished: Unfinished,
    },
    /// Delete key `key_id` of the job's user to make room for the new key:
    /// done by the job's `rotate` action, which follows, journaled as its
    /// first step.
    FreeSlot {
        job: JobSpec,
        key_id: String,
        status: KeyStatus,
        why: FreeWhy,
    },
    /// Enforce's acts on one key (issue 17), each decided by the key's
    /// lifecycle from the facts it carries and re-checked against them
    /// when carried out ([`crate::enforce`]).
    Warn(KeyAction),
    StillInUse(KeyAction),
    Retire(KeyAction),
    Deactivate(KeyAction),
    Delete(KeyAction),
    /// Record what IAM shows of an act on the key a dead run left open
    /// (nothing else is due for it now).
    Settle(KeyAction),
    /// Leave the key alone.
    Skip {
        target: String,
        /// None for what got no job (a user or account that could not be
        /// read or bound).
        job: Option<JobSpec>,
        account_id: Option<String>,
        user_name: Option<String>,
        old_key_id: Option<String>,
        reason: SkipReason,
    },
}

/// Why a key may be deleted to free its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreeWhy {
    /// An earlier, undone rotation made it and nobody holds it.
    Orphan,
    /// It is inactive.
    Inactive,
    /// A completed rotation of this journal kept it for its readers, and
    /// IAM shows no use of it since the key being rotated was created.
    Kept,
    /// `--delete-other-active`, and IAM shows no use of it since the key
    /// being rotated was created.
    Allowed,
}

/// Why a key is left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// Younger than the max age.
    NotDue {
        key_id: String,
        age_days: i64,
        max_age_days: i64,
    },
    /// The policy exempts the user: `why` names the tag, group or pattern.
    Exempt { why: String },
    /// An earlier rotation replaced the key named already.
    AlreadyRotated {
        rotation_id: RotationId,
        new_key_id: String,
    },
    /// rekey would not rotate it (`why`: the error, with what to do).
    Refused { why: String },
    /// It could not be planned (`why`: what failed).
    Failed { why: String },
    /// Nothing is due for the key until `next` (never, if none), as its
    /// lifecycle says from `facts` (`enforce`).
    Waiting {
        key_id: String,
        #[serde(with = "time::serde::rfc3339::option")]
        next: Option<OffsetDateTime>,
        facts: KeyFacts,
    },
    /// Already warned that its stage falls due at `at`.
    Warned {
        key_id: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Replaced and still used after delivery; that use was reported.
    /// Checked again on each run until `until`.
    InUseReported {
        key_id: String,
        last_used: LastUsed,
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
}

/// The facts a rotation was decided from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The user's keys, as IAM lists them (with the last use of each other
    /// active key, at the two-key limit).
    pub keys: Vec<SeenKey>,
    /// Keys earlier, undone rotations made and nobody holds.
    pub orphans: Vec<String>,
    /// Keys completed rotations of this journal kept.
    pub kept: Vec<String>,
    /// What each destination holds, in order; the first names the key.
    pub destinations: Vec<Holding>,
}

/// One key as a plan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenKey {
    pub key_id: Option<String>,
    pub status: KeyStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    pub age_days: Option<i64>,
    pub last_used: Option<LastUsed>,
}

impl SeenKey {
    /// `key`, `age_days` old at `now`. Pure.
    pub fn of(key: &Key, now: OffsetDateTime) -> SeenKey {
        SeenKey {
            key_id: key.access_key_id.clone(),
            status: key.status,
            created: key.created,
            age_days: key.created.map(|c| days_between(c, now)),
            last_used: key.last_used.clone(),
        }
    }
}

/// What one destination held: a key ID (never its secret), or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub destination: DestinationSpec,
    pub holds: Option<String>,
}

/// An unfinished rotation as its journal left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unfinished {
    /// The job that goes on with it: its destinations and way in.
    pub job: JobSpec,
    pub account_id: String,
    pub user_name: String,
    pub old_key_id: String,
    pub new_key_id: Option<String>,
    pub last_step: Step,
    pub last_phase: Phase,
}

/// A plan document that cannot be carried out as given. Nothing was done.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("not a rekey plan: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "a plan of schema `{found}`, which this rekey does not know (it reads `{SCHEMA}`); make the plan again with this version"
    )]
    Schema { found: String },
}

impl Plan {
    /// A plan as [`Plan`]'s JSON holds it (a dry run's `-o json`), checked
    /// to be of [`SCHEMA`]: a plan of another version is refused, not
    /// guessed at.
    pub fn parse(text: &str) -> Result<Plan, PlanError> {
        let plan: Plan = serde_json::from_str(text)?;
        if plan.schema != SCHEMA {
            return Err(PlanError::Schema { found: plan.schema });
        }
        Ok(plan)
    }

    /// The plan of a dry run: its unfinished rotations, then each report
    /// and failure in turn, then `no_job` (what got no job, each with the
    /// words saying why). Pure.
    pub fn of_run<'a>(
        run: &RunReport,
        no_job: impl IntoIterator<Item = (&'a Report, String)>,
    ) -> Plan {
        let mut actions: Vec<Action> = run.unfinished.iter().map(unfinished_action).collect();
        actions.extend(run.reports.iter().flat_map(report_actions));
        actions.extend(run.failures.iter().map(failed_action));
        actions.extend(
            no_job
                .into_iter()
                .map(|(report, why)| skip(report, refused_or_failed(report.status, why))),
        );
        Plan::new(actions)
    }

    /// A plan of `actions`, nothing else said.
    pub fn new(actions: Vec<Action>) -> Plan {
        Plan {
            schema: SCHEMA.into(),
            made_at: None,
            as_of: None,
            actions,
            findings: Vec::new(),
        }
    }

    /// The rotations the plan makes: (account, user, old key), in order.
    pub fn rotations(&self) -> Vec<(&str, &str, &str)> {
        (self.actions.iter())
            .filter_map(|a| match a {
                Action::Rotate { plan, .. } => Some((
                    plan.account_id.as_str(),
                    plan.user_name.as_str(),
                    plan.old_key_id.as_str(),
                )),
                _ => None,
            })
            .collect()
    }
}

impl Action {
    /// Its name, as the plan's `action` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Rotate { .. } => "rotate",
            Action::Resume { .. } => "resume",
            Action::Undo { .. } => "undo",
            Action::FreeSlot { .. } => "free_slot",
            Action::Warn(_) => "warn",
            Action::StillInUse(_) => "still_in_use",
            Action::Retire(_) => "retire",
            Action::Deactivate(_) => "deactivate",
            Action::Delete(_) => "delete",
            Action::Settle(_) => "settle",
            Action::Skip { .. } => "skip",
        }
    }

    /// The account, user and key the action concerns, where it names all
    /// three (a skip of an account that could not be read names none).
    pub fn subject(&self) -> Option<(&str, &str, &str)> {
        match self {
            Action::Rotate { plan, .. } => {
                Some((&plan.account_id, &plan.user_name, &plan.old_key_id))
            }
            Action::Resume { unfinished, .. } | Action::Undo { unfinished, .. } => Some((
                &unfinished.account_id,
                &unfinished.user_name,
                &unfinished.old_key_id,
            )),
            Action::FreeSlot { job, key_id, .. } => {
                Some((job.subject.account_id()?, job.subject.user_name()?, key_id))
            }
            Action::Skip {
                account_id,
                user_name,
                old_key_id,
                ..
            } => Some((
                account_id.as_deref()?,
                user_name.as_deref()?,
                old_key_id.as_deref()?,
            )),
            other => other.key_action().map(|k| {
                (
                    k.account_id.as_str(),
                    k.user_name.as_str(),
                    k.key_id.as_str(),
                )
            }),
        }
    }

    /// Enforce's act on one key, if this is one.
    pub fn key_action(&self) -> Option<&KeyAction> {
        match self {
            Action::Warn(k)
            | Action::StillInUse(k)
            | Action::Retire(k)
            | Action::Deactivate(k)
            | Action::Delete(k)
            | Action::Settle(k) => Some(k),
            _ => None,
        }
    }
}

/// What becomes of unfinished rotation `r`, as its journal says: undone
/// when its rollback began or it stopped before its new key existed for
/// sure, else finished. Pure. (A resume may still undo it: when no
/// destination holds its new key pair, which only reading them tells.)
pub fn unfinished_action(r: &Rotation) -> Action {
    let unfinished = Unfinished {
        job: JobSpec::resumed(r),
        account_id: r.account_id.clone(),
        user_name: r.user_name.clone(),
        old_key_id: r.old_key_id.clone(),
        new_key_id: r.new_key_id.clone(),
        last_step: r.last_step,
        last_phase: r.last_phase,
    };
    let targets: Vec<Target> = r
        .destinations
        .iter()
        .map(|d| Target::Destination(d.clone()))
        .collect();
    let facts = Facts {
        destinations: &targets,
        staged: &[],
        origin: Origin::EarlierRun,
        read_back: ReadBack::NotYet,
    };
    match next_step(r, &facts) {
        Next::Undo(why) => Action::Undo {
            rotation_id: r.id,
            why,
            unfinished,
        },
        _ => Action::Resume {
            rotation_id: r.id,
            unfinished,
        },
    }
}

/// The actions of one report: a planned rotation's slot and orphans to
/// free, then the rotation; a key left alone, skipped. Pure.
pub fn report_actions(r: &Report) -> Vec<Action> {
    let reason = match &r.outcome {
        KeyOutcome::NotDue {
            key_id,
            age_days,
            max_age_days,
        } => SkipReason::NotDue {
            key_id: key_id.clone(),
            age_days: *age_days,
            max_age_days: *max_age_days,
        },
        KeyOutcome::Exempt { why } => SkipReason::Exempt { why: why.clone() },
        KeyOutcome::AlreadyReplaced { id, new_key_id, .. }
        | KeyOutcome::FinishedThisRun { id, new_key_id, .. } => SkipReason::AlreadyRotated {
            rotation_id: *id,
            new_key_id: new_key_id.clone(),
        },
        _ => {
            return match (r.status, &r.plan, &r.seen, &r.job) {
                (Status::Planned, Some(plan), Some(seen), Some(job)) => {
                    rotate_actions(job, plan, seen)
                }
                // A rotation an earlier run left: [`unfinished_action`]'s.
                _ => Vec::new(),
            };
        }
    };
    vec![skip(r, reason)]
}

/// The actions that rotate `job` as `plan` says: free its orphans and its
/// slot, then rotate. Pure.
pub fn rotate_actions(job: &JobSpec, plan: &KeyPlan, seen: &Seen) -> Vec<Action> {
    let free = |key_id: &str, status, why| Action::FreeSlot {
        job: job.clone(),
        key_id: key_id.to_string(),
        status,
        why,
    };
    let mut actions: Vec<Action> = (plan.orphans.iter())
        .map(|k| free(k, status_of(seen, k), FreeWhy::Orphan))
        .collect();
    if let Some(FreeSlot { key_id, status }) = &plan.free_slot {
        let why = if *status == KeyStatus::Inactive {
            FreeWhy::Inactive
        } else if seen.kept.contains(key_id) {
            FreeWhy::Kept
        } else {
            FreeWhy::Allowed
        };
        actions.push(free(key_id, *status, why));
    }
    actions.push(Action::Rotate {
        job: job.clone(),
        plan: plan.clone(),
        seen: seen.clone(),
    });
    actions
}

fn status_of(seen: &Seen, key_id: &str) -> KeyStatus {
    (seen.keys.iter())
        .find(|k| k.key_id.as_deref() == Some(key_id))
        .map_or(KeyStatus::Active, |k| k.status)
}

/// A failed or refused key of a dry run, skipped with its error's words.
/// Pure.
pub fn failed_action(f: &Failure) -> Action {
    skip(
        &f.report,
        refused_or_failed(f.report.status, error_chain(&f.error)),
    )
}

fn refused_or_failed(status: Status, why: String) -> SkipReason {
    match status {
        Status::Refused => SkipReason::Refused { why },
        _ => SkipReason::Failed { why },
    }
}

fn skip(r: &Report, reason: SkipReason) -> Action {
    Action::Skip {
        target: r.target.clone(),
        job: r.job.clone(),
        account_id: r.account_id.clone(),
        user_name: r.user_name.clone(),
        old_key_id: r.old_key_id.clone(),
        reason,
    }
}

/// How `decision`, made now, departs from the plan `expected`, if it
/// does: a key not due now, or another plan ([`changed`]). A refusal is
/// not a departure: it is reported as itself. Pure.
pub fn departs(expected: &KeyPlan, decision: &Decision) -> Option<String> {
    match decision {
        Decision::Rotate(now) => changed(expected, now),
        Decision::NotDue { age_days, .. } => Some(format!(
            "the key held now is {age_days} days old, not due; {} was planned",
            crate::model::mask_key_id(&expected.old_key_id)
        )),
        Decision::Refuse(_) => None,
    }
}

/// How the plan made now differs from the plan `expected`, if it does:
/// another key to rotate, another slot or orphans to free, another end
/// for the old key. Pure.
pub fn changed(expected: &KeyPlan, now: &KeyPlan) -> Option<String> {
    let mut said = Vec::new();
    if (&expected.account_id, &expected.user_arn) != (&now.account_id, &now.user_arn) {
        said.push(format!("the user is {} now", now.user_arn));
    }
    if expected.old_key_id != now.old_key_id {
        said.push(format!(
            "the key to rotate is {} now, not {}",
            crate::model::mask_key_id(&now.old_key_id),
            crate::model::mask_key_id(&expected.old_key_id)
        ));
    }
    if expected.free_slot != now.free_slot {
        let slot = |s: &Option<FreeSlot>| {
            s.as_ref().map_or("none".to_string(), |s| {
                format!("{} ({})", crate::model::mask_key_id(&s.key_id), s.status)
            })
        };
        said.push(format!(
            "the slot to free is {} now, not {}",
            slot(&now.free_slot),
            slot(&expected.free_slot)
        ));
    }
    if expected.orphans != now.orphans {
        said.push("the orphans to delete differ".to_string());
    }
    if expected.old_key_action != now.old_key_action {
        said.push(format!(
            "the old key would be {} now, not {}",
            now.old_key_action, expected.old_key_action
        ));
    }
    (!said.is_empty()).then(|| said.join("; "))
}

/// Carries out one action, as a run would, and reports what became of it:
/// a rotation (its `free_slot` actions are its own first steps, so a
/// `free_slot` alone is checked against it, see [`execute_plan`]), an
/// unfinished rotation finished or undone as its journal says now, a skip
/// reported as planned. A rotation whose facts changed since its plan is
/// refused before any change.
pub async fn execute(engine: &Engine<'_>, action: &Action, deps: &Deps) -> Result<Report, Failure> {
    match action {
        Action::Rotate { job, plan, .. } => {
            let mut seen = Report::failed(&job.label, Status::Failed);
            let opened = super::Job::open(job.clone(), deps).await.map_err(|source| {
                RotateError::Destination {
                    target: job.label.clone(),
                    what: "cannot open it",
                    source,
                }
            });
            let result = match opened {
                Ok(job) => {
                    seen = Report::of(&job);
                    engine
                        .rotate_expecting(&job, (Mode::Apply, Some(plan)), &mut seen)
                        .await
                }
                Err(e) => Err(e),
            };
            result.map_err(|e| Failure::new(seen, e))
        }
        // The journal's row, as it is now, says how to go on: the plan's
        // `unfinished` is what it said then.
        Action::Resume { rotation_id, .. } | Action::Undo { rotation_id, .. } => {
            let label = format!("rotation #{rotation_id}");
            let rotation = (engine.journal.get(*rotation_id).await).map_err(|source| {
                let e = RotateError::Journal {
                    target: label.clone(),
                    source: Box::new(source),
                };
                Failure::new(Report::failed(&label, Status::Failed), e)
            })?;
            (resume_rotation(engine, &rotation, deps).await)
                .map_err(|e| Failure::new(report_of(&rotation), e))
        }
        Action::Warn(k)
        | Action::StillInUse(k)
        | Action::Retire(k)
        | Action::Deactivate(k)
        | Action::Delete(k)
        | Action::Settle(k) => Err(Failure::new(
            Report::failed(&k.label, Status::Refused),
            RotateError::Refused {
                target: k.label.clone(),
                source: super::Refusal::EnforceOnly {
                    action: action.name().into(),
                },
            },
        )),
        Action::FreeSlot { job, key_id, .. } => Err(Failure::new(
            Report::failed(&job.label, Status::Refused),
            RotateError::Refused {
                target: job.label.clone(),
                source: super::Refusal::SlotAlone {
                    key: crate::model::mask_key_id(key_id),
                },
            },
        )),
        Action::Skip {
            target,
            job,
            account_id,
            user_name,
            old_key_id,
            reason,
        } => {
            let report = Report {
                job: job.clone(),
                account_id: account_id.clone(),
                user_name: user_name.clone(),
                old_key_id: old_key_id.clone(),
                ..Report::failed(target, Status::Failed)
            };
            Ok(skipped(report, reason))
        }
    }
}

/// What a skip reports: the status and outcome its reason stands for (a
/// refused or failed one as such, its words in the plan). Pure.
fn skipped(report: Report, reason: &SkipReason) -> Report {
    let (status, outcome) = match reason {
        SkipReason::NotDue {
            key_id,
            age_days,
            max_age_days,
        } => (
            Status::NotDue,
            KeyOutcome::NotDue {
                key_id: key_id.clone(),
                age_days: *age_days,
                max_age_days: *max_age_days,
            },
        ),
        SkipReason::Exempt { why } => (Status::Exempt, KeyOutcome::Exempt { why: why.clone() }),
        SkipReason::AlreadyRotated {
            rotation_id,
            new_key_id,
        } => (
            Status::AlreadyRotated,
            KeyOutcome::AlreadyReplaced {
                id: *rotation_id,
                old_key_id: report.old_key_id.clone().unwrap_or_default(),
                new_key_id: new_key_id.clone(),
            },
        ),
        SkipReason::Refused { .. } => (Status::Refused, KeyOutcome::Failed),
        SkipReason::Failed { .. } => (Status::Failed, KeyOutcome::Failed),
        SkipReason::Waiting { key_id, .. }
        | SkipReason::Warned { key_id, .. }
        | SkipReason::InUseReported { key_id, .. } => (
            Status::NotDue,
            KeyOutcome::NotDue {
                key_id: key_id.clone(),
                age_days: 0,
                max_age_days: 0,
            },
        ),
    };
    Report {
        status,
        outcome,
        ..report
    }
}

/// Carries out `plan`'s actions in order: each `free_slot` must be one the
/// `rotate` action that follows it (of the same job) frees, and is done by
/// it; skips are left out of the report.
pub async fn execute_plan(engine: &Engine<'_>, plan: &Plan, deps: &Deps) -> RunReport {
    let mut out = RunReport::default();
    let mut pending: Vec<&Action> = Vec::new();
    for action in &plan.actions {
        match action {
            Action::FreeSlot { .. } => pending.push(action),
            Action::Skip { .. } => {}
            Action::Rotate { job, plan: p, .. } => {
                // The slots freed before it are its own (same job, in its
                // plan): it frees them. Any other is carried out alone.
                let lone: Vec<&Action> = (pending.drain(..))
                    .filter(|a| !frees_for(a, job, p))
                    .collect();
                for a in lone {
                    push(&mut out, execute(engine, a, deps).await);
                }
                push(&mut out, execute(engine, action, deps).await);
            }
            _ => push(&mut out, execute(engine, action, deps).await),
        }
    }
    for lone in pending {
        push(&mut out, execute(engine, lone, deps).await);
    }
    out
}

/// Whether `a` is a `free_slot` that the rotation of `job` as `plan` says
/// carries out.
fn frees_for(a: &Action, job: &JobSpec, plan: &KeyPlan) -> bool {
    let Action::FreeSlot {
        job: of, key_id, ..
    } = a
    else {
        return false;
    };
    of == job
        && (plan.orphans.contains(key_id)
            || plan.free_slot.as_ref().is_some_and(|s| &s.key_id == key_id))
}

fn push(out: &mut RunReport, r: Result<Report, Failure>) {
    match r {
        Ok(r) => out.reports.push(r),
        Err(f) => out.failures.push(f),
    }
}

#[cfg(test)]
mod tests;
