//! Carrying out one [`KeyAction`] (issue 17), under the user's lease:
//!
//! 1. the lease on the user (another run holding it: refused, nothing done);
//! 2. an act a dead run left open on the key is settled first, by what IAM
//!    shows (inactive after a deactivation: done; still active: it did not
//!    happen);
//! 3. the facts are read again — the key's status and dates
//!    (ListAccessKeys), its last use (GetAccessKeyLastUsed), the journal's
//!    records — and the lifecycle asked again, with the action's own rules,
//!    at the action's own moment: another answer than the plan's and the
//!    action is refused, saying what changed; the same act already done by
//!    another run since the plan is reported as such, not done twice;
//! 4. `Begin` is journaled, the one AWS call made (UpdateAccessKey,
//!    DeleteAccessKey), then `Done` (or `Failed`, with the error). A warning
//!    or a report of use is only journaled (`Done`).

use aws_config::SdkConfig;
use aws_sdk_iam::types::StatusType;
use serde::Serialize;

use super::KeyAction;
use super::lifecycle::{Due, due};
use super::plan::facts_with_records;
use super::record::{Recorded, UnsettledAt, recorded};
use crate::aws::{Deps, Signer, with_credentials};
use crate::error::{CallError, error_chain};
use crate::inventory::{last_used, list_keys};
use crate::journal::{Holder, Journal, JournalError, KeyOp, NewKeyEvent, Phase};
use crate::model::{Key, KeyStatus};
use crate::rotation::access::Access;

/// What became of one key action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Acted {
    /// Carried out and journaled.
    Done,
    /// Another run did it since the plan was made; not done again.
    AlreadyDone,
}

/// Why a key action was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("{label}: the facts changed since the plan ({changed}); nothing was done")]
    Changed { label: String, changed: String },
    #[error("{label}: cannot reach IAM of account {account}")]
    Access {
        label: String,
        account: String,
        #[source]
        source: CallError,
    },
    #[error("{label}: an access mode this rekey cannot use here: {what}")]
    Unusable { label: String, what: String },
    #[error("{label}: {doing} failed")]
    Call {
        label: String,
        doing: &'static str,
        #[source]
        source: CallError,
    },
    #[error("{label}: the journal refused")]
    Journal {
        label: String,
        #[source]
        source: JournalError,
    },
}

impl ActError {
    /// Refused before any change (changed facts, another run's lease), as
    /// opposed to failed.
    pub fn is_refusal(&self) -> bool {
        match self {
            ActError::Changed { .. } | ActError::Unusable { .. } => true,
            ActError::Journal { source, .. } => {
                matches!(source, JournalError::LeaseHeld { .. })
            }
            _ => false,
        }
    }
}

/// What carrying out needs.
pub struct Actor<'a> {
    pub journal: &'a dyn Journal,
    pub deps: &'a Deps,
    pub holder: &'a Holder,
    pub lease_ttl: time::Duration,
}

/// The act an action is, with the AWS call it makes, if any.
pub fn op_of(due: &Due) -> Option<KeyOp> {
    Some(match due {
        Due::Warn { .. } => KeyOp::Warn,
        Due::StillInUse { .. } => KeyOp::StillInUse,
        Due::Retire { .. } => KeyOp::Retire,
        Due::Deactivate { .. } => KeyOp::Deactivate,
        Due::Delete { .. } => KeyOp::Delete,
        Due::Nothing { .. } | Due::Rotate { .. } => return None,
    })
}

impl Actor<'_> {
    /// Carries out `a` as the module docs say.
    pub async fn act(&self, a: &KeyAction) -> Result<Acted, ActError> {
        let iam = self.iam(a).await?;
        let journal = |source| ActError::Journal {
            label: a.label.clone(),
            source,
        };
        let lease = (self.journal)
            .acquire_lease(&a.account_id, &a.user_name, self.holder, self.lease_ttl)
            .await
            .map_err(journal)?;
        let result = match op_of(&a.due) {
            Some(op) => self.under_lease(a, op, &iam).await,
            // A settle: nothing but the open act is acted on.
            None => self.settle_only(a, &iam).await,
        };
        // Released whatever happened; a lease that cannot be released
        // expires on its own.
        let _ = self.journal.release_lease(&lease).await;
        result
    }

    async fn under_lease(
        &self,
        a: &KeyAction,
        op: KeyOp,
        iam: &crate::aws::AccountClients,
    ) -> Result<Acted, ActError> {
        let call = |doing| {
            move |source| ActError::Call {
                label: a.label.clone(),
                doing,
                source,
            }
        };
        let key = listed(iam, a).await?;
        let key = key.as_ref();
        let (read, _) = self.settled(a, key).await?;
        if let Some(id) = read.unfinished {
            return Err(ActError::Changed {
                label: a.label.clone(),
                changed: format!(
                    "the user has an unfinished rotation ({id}); `rekey enforce --apply` finishes it first"
                ),
            });
        }
        let records = read.recorded;
        let Some(key) = key else {
            return match op == KeyOp::Delete && deleted_by_rekey(&records) {
                true => Ok(Acted::AlreadyDone),
                false => Err(ActError::Changed {
                    label: a.label.clone(),
                    changed: "the key no longer exists".into(),
                }),
            };
        };
        let used = last_used(iam, &a.key_id)
            .await
            .map_err(call("reading the key's last use"))?;
        let now = Key {
            last_used: used,
            ..key.clone()
        };
        if let Some(done) = already_done(a, op, &now, &records) {
            return Ok(done);
        }
        let mut facts = a.facts.clone();
        facts.status = now.status;
        facts.created = now.created;
        facts.last_used = now.last_used.clone();
        let facts = facts_with_records(&facts, &records);
        let due_now = due(&facts, &a.rules, a.as_of);
        if !same_due(&due_now, &a.due) {
            return Err(ActError::Changed {
                label: a.label.clone(),
                changed: format!(
                    "it is `{}` now, not `{}` as planned",
                    describe(&due_now),
                    describe(&a.due)
                ),
            });
        }
        self.carry_out(a, op, iam).await
    }

    /// Journals and makes the act's one change.
    async fn carry_out(
        &self,
        a: &KeyAction,
        op: KeyOp,
        iam: &crate::aws::AccountClients,
    ) -> Result<Acted, ActError> {
        let detail = serde_json::to_string(&a.due).expect("a due serializes");
        if op.deactivates() {
            self.no_destination_holds(a).await?;
        }
        if !op.acts_on_aws() {
            self.record(a, op, Phase::Done, Some(&detail)).await?;
            return Ok(Acted::Done);
        }
        self.record(a, op, Phase::Begin, Some(&detail)).await?;
        let result = match op {
            KeyOp::Delete => (iam.iam.delete_access_key())
                .user_name(&a.user_name)
                .access_key_id(&a.key_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| CallError::from_sdk("iam:DeleteAccessKey", e)),
            _ => set_status(iam, a, StatusType::Inactive).await,
        };
        match result {
            Ok(()) => {
                crate::faults::crash_after_effect(op.as_str());
                self.record(a, op, Phase::Done, Some(&detail)).await?;
                Ok(Acted::Done)
            }
            Err(source) => {
                let said = error_chain(&source);
                self.record(a, op, outcome_unknown_or_refused(&source), Some(&said))
                    .await?;
                Err(ActError::Call {
                    label: a.label.clone(),
                    doing: if op == KeyOp::Delete {
                        "deleting the key"
                    } else {
                        "deactivating the key"
                    },
                    source,
                })
            }
        }
    }

    /// Reads every destination of the user's binding back: none may hold
    /// the key about to be deactivated (DESIGN.md invariant 1).
    async fn no_destination_holds(&self, a: &KeyAction) -> Result<(), ActError> {
        let Some(spec) = &a.bound else {
            return Ok(());
        };
        let unusable = |what: String| ActError::Unusable {
            label: a.label.clone(),
            what,
        };
        let job = crate::rotation::Job::open(spec.clone(), self.deps)
            .await
            .map_err(|e| unusable(format!("cannot open its destinations: {}", error_chain(&e))))?;
        for d in &job.destinations {
            let held = (d.current_key_id().await).map_err(|e| {
                unusable(format!(
                    "cannot read {} back: {}",
                    d.describe(),
                    error_chain(&e)
                ))
            })?;
            if held.as_deref() == Some(a.key_id.as_str()) {
                return Err(ActError::Changed {
                    label: a.label.clone(),
                    changed: format!(
                        "{} holds this key: deactivating it would lock its readers out",
                        d.describe()
                    ),
                });
            }
        }
        Ok(())
    }

    async fn settle_only(
        &self,
        a: &KeyAction,
        iam: &crate::aws::AccountClients,
    ) -> Result<Acted, ActError> {
        let key = listed(iam, a).await?;
        let (_, closed) = self.settled(a, key.as_ref()).await?;
        Ok(if closed {
            Acted::Done
        } else {
            Acted::AlreadyDone
        })
    }

    /// What the journal says of the key and its user, with an act a dead
    /// run left open on the key closed first by what IAM shows (`key`: the
    /// key as listed now; None: gone). Read once, again only after closing;
    /// says whether it closed one.
    async fn settled(&self, a: &KeyAction, key: Option<&Key>) -> Result<(Read, bool), ActError> {
        let read = self.read(a).await?;
        let (Some(open), Some((_, UnsettledAt(as_of)))) =
            (read.recorded.open, read.recorded.unsettled)
        else {
            return Ok((read, false));
        };
        let happened = match (open, key) {
            (KeyOp::Delete, None) => true,
            (KeyOp::Delete, Some(_)) => false,
            (op, Some(k)) if op.deactivates() => k.status == KeyStatus::Inactive,
            (KeyOp::Reactivate, Some(k)) => k.status == KeyStatus::Active,
            _ => false,
        };
        let (phase, said) = match happened {
            true => (Phase::Done, "settled: IAM shows it done"),
            false => (Phase::Failed, "settled: IAM shows it not done"),
        };
        let event = NewKeyEvent {
            op: open,
            phase,
            as_of,
            detail: Some(said.into()),
            ..self.event(a, open, phase, None)
        };
        (self.journal.record_key(&event).await).map_err(|source| ActError::Journal {
            label: a.label.clone(),
            source,
        })?;
        Ok((self.read(a).await?, true))
    }

    /// The journal's records of the key, and the user's unfinished
    /// rotation, if any: one read of each.
    async fn read(&self, a: &KeyAction) -> Result<Read, ActError> {
        let j = |source| ActError::Journal {
            label: a.label.clone(),
            source,
        };
        let events = (self.journal.key_events(&a.account_id, &a.user_name).await).map_err(j)?;
        let rotations = (self.journal.of_user(&a.account_id, &a.user_name).await).map_err(j)?;
        Ok(Read {
            recorded: recorded(&a.key_id, &events, &rotations),
            unfinished: rotations.iter().find(|r| !r.is_finished()).map(|r| r.id),
        })
    }

    fn event(&self, a: &KeyAction, op: KeyOp, phase: Phase, detail: Option<&str>) -> NewKeyEvent {
        NewKeyEvent {
            account_id: a.account_id.clone(),
            user_name: a.user_name.clone(),
            key_id: a.key_id.clone(),
            op,
            phase,
            run_id: self.holder.run_id.clone(),
            as_of: a.as_of,
            detail: detail.map(str::to_string),
        }
    }

    async fn record(
        &self,
        a: &KeyAction,
        op: KeyOp,
        phase: Phase,
        detail: Option<&str>,
    ) -> Result<(), ActError> {
        let event = self.event(a, op, phase, detail);
        (self.journal.record_key(&event).await).map_err(|source| ActError::Journal {
            label: a.label.clone(),
            source,
        })?;
        crate::faults::crash_point(op.as_str(), phase.as_str());
        Ok(())
    }

    /// IAM of the action's account, reached as the action says.
    async fn iam(&self, a: &KeyAction) -> Result<crate::aws::AccountClients, ActError> {
        let config = account_config(self.deps, &a.access, &a.user_arn)
            .await
            .map_err(|e| match e {
                Reach::Call(source) => ActError::Access {
                    label: a.label.clone(),
                    account: a.account_id.clone(),
                    source,
                },
                Reach::Unusable(what) => ActError::Unusable {
                    label: a.label.clone(),
                    what,
                },
            })?;
        Ok(self.deps.clients().account(&config))
    }
}

/// The action's key as IAM lists it now (None: gone).
async fn listed(iam: &crate::aws::AccountClients, a: &KeyAction) -> Result<Option<Key>, ActError> {
    let keys = (list_keys(iam, &a.user_name).await).map_err(|source| ActError::Call {
        label: a.label.clone(),
        doing: "listing the user's keys",
        source,
    })?;
    Ok(keys
        .into_iter()
        .find(|k| k.access_key_id.as_deref() == Some(a.key_id.as_str())))
}

/// What the journal says when an act is carried out.
struct Read {
    recorded: Recorded,
    /// The user's rotation an earlier run left unfinished.
    unfinished: Option<crate::journal::RotationId>,
}

/// Why an account's IAM cannot be reached.
pub enum Reach {
    Call(CallError),
    Unusable(String),
}

/// The configuration IAM of the account of `user_arn` is reached with, as
/// `access` says: the caller's own, a profile's, or a role assumed with
/// the caller's credentials (once per run).
pub async fn account_config(
    deps: &Deps,
    access: &Access,
    user_arn: &str,
) -> Result<SdkConfig, Reach> {
    match access {
        Access::Caller => Ok(deps.base().clone()),
        Access::Profile { name } => Ok(deps.profile(name).await),
        Access::Role { role, external_id } => {
            let role_arn = if role.starts_with("arn:") {
                role.clone()
            } else {
                let mut parts = user_arn.split(':');
                let partition = parts.nth(1).unwrap_or("aws");
                let account = parts.nth(1).unwrap_or_default();
                format!(
                    "arn:{partition}:iam::{account}:role/{}",
                    role.trim_start_matches('/')
                )
            };
            let session = deps
                .role_session(&Signer::Caller, &role_arn, external_id.as_deref())
                .await
                .map_err(Reach::Call)?;
            Ok(with_credentials(deps.base(), session))
        }
        other => Err(Reach::Unusable(format!(
            "{other:?} reaches one user's own key, not an account"
        ))),
    }
}

async fn set_status(
    iam: &crate::aws::AccountClients,
    a: &KeyAction,
    status: StatusType,
) -> Result<(), CallError> {
    (iam.iam.update_access_key())
        .user_name(&a.user_name)
        .access_key_id(&a.key_id)
        .status(status)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| CallError::from_sdk("iam:UpdateAccessKey", e))
}

/// How a failed call is journaled: `refused` when AWS answered that it
/// did nothing (denied, throttled, bad credentials, not found), `failed`
/// when the outcome is unknown (no answer, a server error): only then may
/// what IAM shows later count as the act done.
fn outcome_unknown_or_refused(e: &CallError) -> Phase {
    use crate::error::FailureKind::*;
    match e.kind() {
        Denied | BadCredentials | Throttled | NotFound => Phase::Refused,
        Unreachable | Other => Phase::Failed,
    }
}

/// Whether rekey's journal says it deleted the key.
fn deleted_by_rekey(r: &Recorded) -> bool {
    r.deleted_at.is_some()
}

/// Whether another run already did `op` to the key since the plan was
/// made (the journal says so now and did not then). Pure.
fn already_done(a: &KeyAction, op: KeyOp, key: &Key, now: &Recorded) -> Option<Acted> {
    let then = &a.recorded;
    let done = match (op, &a.due) {
        (KeyOp::Warn, Due::Warn { at }) => {
            now.warned_for == Some(*at) && then.warned_for != Some(*at)
        }
        (KeyOp::StillInUse, Due::StillInUse { last_used, .. }) => {
            now.reported_use == Some(last_used.date) && then.reported_use != Some(last_used.date)
        }
        (KeyOp::Retire | KeyOp::Deactivate, _) => {
            key.status == KeyStatus::Inactive
                && now.deactivated_at.is_some()
                && then.deactivated_at != now.deactivated_at
        }
        _ => false,
    };
    done.then_some(Acted::AlreadyDone)
}

/// Whether the lifecycle's answer now is the plan's: equal, except that a
/// still-in-use report or a grace-over deactivation stays the same act
/// when the key was used again since (only its last use moved). Pure.
pub(super) fn same_due(now: &Due, planned: &Due) -> bool {
    use super::lifecycle::DeactivateWhy::GraceOver;
    match (now, planned) {
        (Due::StillInUse { until: a, .. }, Due::StillInUse { until: b, .. }) => a == b,
        (
            Due::Deactivate {
                why: GraceOver { .. },
            },
            Due::Deactivate {
                why: GraceOver { .. },
            },
        ) => true,
        (a, b) => a == b,
    }
}

/// A due in words, for a refusal.
fn describe(d: &Due) -> String {
    match d {
        Due::Nothing { next: Some(at) } => format!("nothing until {}", rfc3339(*at)),
        Due::Nothing { next: None } => "nothing".into(),
        Due::Warn { at } => format!("warn of {}", rfc3339(*at)),
        Due::StillInUse { last_used, .. } => format!(
            "still in use ({} in {})",
            rfc3339(last_used.date),
            last_used.region.as_deref().unwrap_or("?")
        ),
        other => other.stage().to_string(),
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Makes a key rekey deactivated active again (`enforce --reactivate`),
/// under the user's lease, journaled. Checked first: rekey's journal must
/// say it deactivated the key, within `recovery_days` of `now`, and IAM
/// must show it inactive.
pub async fn reactivate(
    actor: &Actor<'_>,
    a: &KeyAction,
    now: time::OffsetDateTime,
) -> Result<Acted, ActError> {
    let iam = actor.iam(a).await?;
    let lease = (actor.journal)
        .acquire_lease(&a.account_id, &a.user_name, actor.holder, actor.lease_ttl)
        .await
        .map_err(|source| ActError::Journal {
            label: a.label.clone(),
            source,
        })?;
    let result = async {
        let key = listed(&iam, a).await?;
        let key = key.as_ref();
        let records = actor.settled(a, key).await?.0.recorded;
        let refuse = |why: String| ActError::Changed {
            label: a.label.clone(),
            changed: why,
        };
        let Some(key) = key else {
            return Err(refuse("the key no longer exists".into()));
        };
        let now_facts = crate::enforce::lifecycle::KeyFacts {
            status: key.status,
            created: key.created,
            ..a.facts.clone()
        };
        let Some(at) = facts_with_records(&now_facts, &records).deactivated_by_rekey_at else {
            return Err(refuse(
                "rekey did not deactivate it (its journal has no deactivation it made)".into(),
            ));
        };
        if key.status != KeyStatus::Inactive {
            return Err(refuse("it is active already".into()));
        }
        let window = at + time::Duration::days(a.rules.recovery_days);
        if now >= window {
            return Err(refuse(format!(
                "its recovery window ended at {}",
                rfc3339(window)
            )));
        }
        actor
            .record(a, KeyOp::Reactivate, Phase::Begin, None)
            .await?;
        match set_status(&iam, a, StatusType::Active).await {
            Ok(()) => {
                actor
                    .record(a, KeyOp::Reactivate, Phase::Done, None)
                    .await?;
                Ok(Acted::Done)
            }
            Err(source) => {
                let said = error_chain(&source);
                let phase = outcome_unknown_or_refused(&source);
                (actor.record(a, KeyOp::Reactivate, phase, Some(&said))).await?;
                Err(ActError::Call {
                    label: a.label.clone(),
                    doing: "reactivating the key",
                    source,
                })
            }
        }
    }
    .await;
    let _ = actor.journal.release_lease(&lease).await;
    result
}
