//! Carries a [`RotateRequest`] out: opens the journal (read only for a dry
//! run), builds the jobs of what it names — keys of the credentials file,
//! one service user, every bound service user — and hands them to
//! [`rotation::run`], or abandons the rotation it names. What gets no job
//! is reported with the rest ([`NotStarted`]); the front end renders the
//! outcome and takes its exit code from [`RotateOutcome::exit_code`].

// See rotation/engine.rs: one error per job, built once; its size is no cost.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use aws_config::SdkConfig;

use super::{RequestError, RotateRequest, Services, What};
use crate::aws::{Deps, load_config};
use crate::clock::Clock;
use crate::destination::{Binding, DestinationError};
use crate::discovery::discover;
use crate::error::Origin;
use crate::journal::{Holder, JournalError, RotationId};
use crate::request::Setting;
use crate::request::journal::{Use, open as open_journal};
use crate::rotation::access::Access;
use crate::rotation::bound::{BoundError, bound_jobs};
use crate::rotation::engine::{Engine, Prompt, Remedy, Report, Status, remedy_of};
use crate::rotation::plan::Plan;
use crate::rotation::service::{ServiceError, service_job};
use crate::rotation::targets::{KeyTarget, resolve};
use crate::rotation::{self, Failure, Job, JobSpec, Mode, RunOptions, RunReport};

/// What a rotation request came to.
// One per run: its size is no cost.
#[allow(clippy::large_enum_variant)]
pub enum RotateOutcome {
    /// The run: what earlier runs left, then the jobs.
    Ran(RunOutcome),
    /// The rotation abandoned, or why it could not be.
    Abandoned {
        id: RotationId,
        result: Result<Report, Failure>,
    },
}

/// A run's outcome: the library run's report, what got no job, and how
/// many accounts were read without finding a bound user (`service`).
pub struct RunOutcome {
    pub run: RunReport,
    /// In the order found: keys of the credentials file, accounts and
    /// users of `service`, the `user`.
    pub not_started: Vec<NotStarted>,
    /// With `service`: no job at all, and this many accounts were read
    /// (none that could not be).
    pub none_bound_in: Option<usize>,
}

/// A key, user or account that got no job: what was known of it, and why.
pub struct NotStarted {
    /// Status refused or failed; the error says why.
    pub report: Report,
    pub error: JobError,
}

/// Why a key, user or account got no job. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{label}: the profile has mfa_serial {serial}; give {option} (no terminal to ask on)")]
    MfaCode {
        label: String,
        serial: String,
        option: Origin,
    },
    #[error(transparent)]
    Bound(#[from] BoundError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Open(#[from] DestinationError),
}

impl JobError {
    /// What to do next, when there is something to do.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            JobError::MfaCode { .. } => None,
            JobError::Bound(e) => remedy_of(e),
            JobError::Service(e) => e.remedy(),
            JobError::Open(e) => remedy_of(e),
        }
    }
}

/// An unfinished rotation that delivered to a profile not found now (its
/// file was likely moved away mid-rotation, issue 15 #3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedHere {
    pub id: RotationId,
    pub user: String,
    pub account: String,
    pub profile: String,
}

impl RunOutcome {
    /// The run as a plan ([`rotation::plan::Plan`]): what a dry run would
    /// have done, what got no job skipped with why (`why` writes the
    /// words, as the front end says them). Pure.
    pub fn plan(&self, why: impl Fn(&JobError) -> String) -> Plan {
        let no_job: Vec<(&Report, String)> = (self.not_started.iter())
            .map(|n| (&n.report, why(&n.error)))
            .collect();
        Plan::of_run(&self.run, no_job)
    }
}

impl RotateOutcome {
    /// 0 when all went well, 2 when a key, user or account failed or got
    /// no job, or the rotation could not be abandoned.
    pub fn exit_code(&self) -> u8 {
        match self {
            RotateOutcome::Ran(o) => {
                if o.not_started.is_empty() && o.run.failures.is_empty() {
                    0
                } else {
                    2
                }
            }
            RotateOutcome::Abandoned { result, .. } => {
                if result.is_ok() {
                    0
                } else {
                    2
                }
            }
        }
    }
}

/// Carries `request` out. `prompt` asks the person (each step with
/// `interactive`, an MFA code) and is told what a rotation waits for.
pub async fn run(
    request: &RotateRequest,
    prompt: &dyn Prompt,
    clock: Arc<dyn Clock>,
) -> Result<RotateOutcome, RequestError> {
    let targets = key_targets(request, &clock).await?;
    // Loaded once; each profile only changes region and endpoint.
    let base = load_config(None, &request.aws).await;
    // A dry run writes nothing anywhere: no journal file, directory or row
    // (issue 9 #8). It reads an existing journal to say what is unfinished.
    let how = match request.mode {
        Mode::Plan => Use::Read,
        Mode::Apply => Use::Write,
    };
    let journal = open_journal(&request.journal, how, &base, clock.clone()).await?;
    let journal = journal.as_ref();
    let holder = Holder::current(request.options.run_id.clone());
    if let What::Abandon { id, profiles } = &request.what {
        let engine = Engine {
            journal,
            clock: clock.as_ref(),
            opts: &request.options,
            prompt,
            holder,
        };
        let signer = profiles.first().map(String::as_str);
        return Ok(abandon(&engine, *id, signer, base, request).await);
    }
    let deps = Deps::new(base, request.aws.clone(), Some(request.profiles.clone()));
    let mut not_started = Vec::new();
    let mut jobs = Vec::new();
    for key in &targets {
        match job_of(key, request, &deps, prompt).await {
            Ok(job) => jobs.push(job),
            Err(e) => not_started.push(NotStarted {
                report: Report::failed(&label_of(key), Status::Failed),
                error: e,
            }),
        }
    }
    let mut none_bound_in = None;
    match &request.what {
        What::Service(services) => {
            none_bound_in = service_jobs(
                services,
                request,
                &deps,
                (&mut jobs, &mut not_started, clock.now()),
            )
            .await?;
        }
        What::User { account, user, to } => {
            match user_job(request, &deps, (account, user), to).await {
                Ok(job) => jobs.push(job),
                Err(n) => not_started.push(n),
            }
        }
        What::Profiles { .. } | What::Abandon { .. } => {}
    }
    let options = RunOptions {
        rotate: &request.options,
        mode: request.mode,
        concurrency: request.concurrency,
        clock: clock.as_ref(),
        prompt,
        holder: Holder::current(request.options.run_id.clone()),
        deps: &deps,
    };
    let run = rotation::run(&jobs, journal, &options).await;
    Ok(RotateOutcome::Ran(RunOutcome {
        run,
        not_started,
        none_bound_in,
    }))
}

/// Abandons rotation `id`, reaching IAM with the profile `signer`'s key,
/// else the default chain (`base`).
async fn abandon(
    engine: &Engine<'_>,
    id: RotationId,
    signer: Option<&str>,
    base: SdkConfig,
    request: &RotateRequest,
) -> RotateOutcome {
    let config = match signer {
        Some(p) => load_config(Some(p), &request.aws).await,
        None => base,
    };
    let deps = Deps::new(config, request.aws.clone(), None);
    let result = engine.abandon(id, &deps).await.map_err(|e| {
        let label = format!("rotation #{id}");
        Failure::new(Report::failed(&label, Status::Failed), e)
    });
    RotateOutcome::Abandoned { id, result }
}

/// The job of one service user, reached through the request's role in
/// its account, else with the caller's own credentials.
async fn user_job(
    request: &RotateRequest,
    deps: &Deps,
    (account, user): (&str, &str),
    to: &[Binding],
) -> Result<Job, NotStarted> {
    let access = match &request.role {
        Some(role) => Access::Role {
            role: role.clone(),
            external_id: request.external_id.clone(),
        },
        None => Access::Caller,
    };
    let secret_role = request.secret_role.as_ref();
    service_job(deps, account, user, access, to, secret_role)
        .await
        .map_err(|e| NotStarted {
            report: Report {
                account_id: Some(account.to_string()),
                user_name: Some(user.to_string()),
                ..Report::failed(&format!("user {user} in account {account}"), e.status())
            },
            error: e.into(),
        })
}

/// The keys of the credentials file the request names (none for a
/// service user). A profile not found may be one whose file an unfinished
/// rotation delivered to: the error says which (read only; nothing if
/// there is no journal).
async fn key_targets(
    request: &RotateRequest,
    clock: &Arc<dyn Clock>,
) -> Result<Vec<KeyTarget>, RequestError> {
    let (names, all) = match &request.what {
        What::Profiles { names, all } => (names.as_slice(), *all),
        What::Abandon { profiles, .. } => (profiles.as_slice(), false),
        What::User { .. } | What::Service(_) => return Ok(Vec::new()),
    };
    let error = match resolve(&request.profiles, names, all) {
        Ok(targets) => return Ok(targets),
        Err(e) => e,
    };
    let mut unfinished = Vec::new();
    if let Some(profile) = error.missing_profile()
        && let Ok(journal) = open_journal(
            &request.journal,
            Use::Read,
            &load_config(None, &request.aws).await,
            clock.clone(),
        )
        .await
        && let Ok(left) = rotation::unfinished_delivered_to(journal.as_ref(), profile).await
    {
        unfinished = left
            .iter()
            .map(|r| UnfinishedHere {
                id: r.id,
                user: r.user_name.clone(),
                account: r.account_id.clone(),
                profile: profile.to_string(),
            })
            .collect();
    }
    Err(RequestError::Target { error, unfinished })
}

/// The jobs of every bound service user of the selected accounts, each
/// with its account's max age unless the request sets one; what got none
/// is noted in `not_started`. Returns how many accounts were read when
/// none had a bound user.
async fn service_jobs(
    services: &Services,
    request: &RotateRequest,
    deps: &Deps,
    (jobs, not_started, now): (&mut Vec<Job>, &mut Vec<NotStarted>, time::OffsetDateTime),
) -> Result<Option<usize>, RequestError> {
    let discovery = discover(&services.selection, &request.aws)
        .await
        .map_err(|e| e.named(request.names))?;
    let accounts = discovery.targets.len();
    let (bound, errors) = bound_jobs(
        discovery,
        deps,
        (&services.entries, &services.policies, now),
        request.external_id.as_deref(),
        request.secret_role.as_ref(),
        request.concurrency,
    )
    .await;
    let account_wide = errors.iter().filter(|e| e.is_account_wide()).count();
    let none_bound_in = (bound.is_empty() && account_wide == errors.len())
        .then(|| accounts - errors.len())
        .filter(|read| *read > 0);
    for e in errors {
        not_started.push(NotStarted {
            report: e.report(),
            error: e.into(),
        });
    }
    // The request's max age wins; else rekey.toml's for the account.
    jobs.extend(bound.into_iter().map(|job| {
        let days = request
            .options
            .max_age_days
            .or_else(|| services.max_ages.for_account(job.subject.account_id()));
        job.with_max_age(days)
    }));
    Ok(none_bound_in)
}

/// A job from one key of the credentials file: its profiles are its
/// destinations, and IAM is reached through the request's role, an MFA
/// session when the profile names a device (its code kept in `deps`, asked
/// once per device), else the key itself.
async fn job_of(
    key: &KeyTarget,
    request: &RotateRequest,
    deps: &Deps,
    prompt: &dyn Prompt,
) -> Result<Job, JobError> {
    let label = label_of(key);
    let access = match (&request.role, &key.mfa_serial) {
        (Some(role), _) => Access::Role {
            role: role.clone(),
            external_id: request.external_id.clone(),
        },
        (None, Some(serial)) => {
            if deps.mfa_code(serial).is_none() {
                let code = request
                    .mfa_code
                    .clone()
                    .or_else(|| prompt.mfa_code(serial, &label))
                    .ok_or_else(|| JobError::MfaCode {
                        label: label.clone(),
                        serial: serial.clone(),
                        option: (request.names)(Setting::MfaCode),
                    })?;
                deps.remember_mfa_code(serial, code.into());
            }
            Access::MfaSession {
                serial: serial.clone(),
            }
        }
        (None, None) => Access::OldKey,
    };
    let spec = JobSpec::of_key(key, &request.profiles, access, label);
    Ok(Job::open(spec, deps).await?)
}

/// A profile key's name in messages: `profile dev`, `profiles dev, ci`.
fn label_of(key: &KeyTarget) -> String {
    let all: Vec<&str> = key
        .profiles
        .iter()
        .chain(&key.config_profiles)
        .map(String::as_str)
        .collect();
    format!(
        "profile{} {}",
        if all.len() > 1 { "s" } else { "" },
        all.join(", ")
    )
}

impl From<JournalError> for RequestError {
    fn from(e: JournalError) -> Self {
        RequestError::Journal(e)
    }
}
