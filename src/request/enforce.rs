//! `rekey enforce` as asked ([`EnforceInput`]) and as decided
//! ([`EnforceRequest`]), issue 17: the accounts and policies as audit
//! decides them (the input's `scope` is an [`AuditInput`]), the lifecycle
//! of each account from rekey.toml's `[enforce]`, the exemptions, the
//! bound service users, the journal, and what to do — plan, apply, apply a
//! reviewed plan file, or reactivate one key — with the waves' limits.
//! Everything is checked before any AWS call; a bad value is named as the
//! front end names it.
//!
//! ```json
//! {"scope": {"org": true, "role": "OrganizationAccountAccessRole",
//!            "config": "/etc/rekey.toml"},
//!  "apply": true, "canary": ["222222222222"], "max_actions": 100,
//!  "max_failure_rate": 10}
//! ```

// One error per request, returned once: its size is no cost.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::audit::AuditRequest;
use super::rotate::{DEFAULT_PROPAGATION_TIMEOUT, VERIFY_SUCCESSES, lease_ttl, parse_seconds};
use super::{AuditInput, Context, Setting};
use crate::config::{ConfigFile, Lifecycles, ServiceEntry};
use crate::destination::SecretRole;
use crate::enforce::exempt::Exemptions;
use crate::error::{InputError, Origin};
use crate::journal::{JournalError, OldKeyAction};
use crate::notify::settings::{NotifyError, NotifyInput, NotifyRequest, Sources};
use crate::request::journal::{
    ChooseJournalError, FileJournal, JournalChoice, choose as choose_journal,
};
use crate::rotation::RotateOptions;
use crate::rotation::plan::{Plan, PlanError};

/// `--plan-max-age` unless given.
pub const DEFAULT_PLAN_MAX_AGE: &str = "24h";

/// `rekey enforce`'s options as given; absent where not given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnforceInput {
    /// The accounts, policies, `as_of`, config file, output and endpoint,
    /// as `rekey audit` takes them.
    pub scope: AuditInput,
    pub apply: bool,
    pub plan_out: Option<PathBuf>,
    pub apply_plan: Option<PathBuf>,
    /// `24h`, `2d`, `90m`.
    pub plan_max_age: Option<String>,
    /// One stage: warn, rotate, retire, still_in_use, deactivate, delete.
    pub only: Option<String>,
    pub canary: Vec<String>,
    pub max_actions: Option<usize>,
    /// A percentage, 0 to 100.
    pub max_failure_rate: Option<f64>,
    pub reactivate: Option<String>,
    /// A path, `sqlite:PATH` or `dynamodb:TABLE[?region=R]`.
    pub journal: Option<PathBuf>,
    /// A role assumed to reach a DynamoDB journal in another account.
    pub journal_role: Option<String>,
    pub run_id: Option<String>,
    /// The notification flags, over rekey.toml's `[notify]`.
    pub notify: NotifyInput,
    /// Decide the notifications even for a plan (`rekey notify`).
    #[serde(skip)]
    pub notify_always: bool,
}

/// What the run does.
#[derive(Debug, Clone)]
pub enum EnforceMode {
    /// Print (and `--plan-out` write) the plan; change nothing.
    Plan,
    /// Plan, then carry it out.
    Apply,
    /// Carry out exactly this reviewed plan, each action re-checked.
    ApplyPlan(Box<Plan>),
    /// Make this key active again.
    Reactivate(String),
}

/// An enforce run, complete.
#[derive(Debug, Clone)]
pub struct EnforceRequest {
    pub audit: AuditRequest,
    pub lifecycles: Lifecycles,
    pub exemptions: Exemptions,
    pub entries: Vec<ServiceEntry>,
    pub external_id: Option<String>,
    pub secret_role: Option<SecretRole>,
    pub journal: JournalChoice,
    pub mode: EnforceMode,
    pub plan_out: Option<PathBuf>,
    pub plan_max_age: Duration,
    pub only: Option<String>,
    pub canary: Vec<String>,
    pub max_actions: Option<usize>,
    pub max_failure_rate: Option<f64>,
    /// How the rotations of bound service users go (the old key kept).
    pub rotate: RotateOptions,
    /// The notifications sent after applying (None: no channel, a plan,
    /// or `--no-notify`).
    pub notify: Option<NotifyRequest>,
    /// No action starts at or after this moment (by the run's clock): the
    /// Lambda's deadline, less a margin, so an invocation ends before
    /// Lambda stops it and its message comes back. None: no limit.
    pub deadline: Option<OffsetDateTime>,
}

/// The stages `--only` takes.
pub const STAGES: &[&str] = &[
    "warn",
    "rotate",
    "retire",
    "still_in_use",
    "deactivate",
    "delete",
];

/// An enforce request that cannot be carried out. Nothing was done.
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{origin}: `{value}` is not a stage; write one of {}", STAGES.join(", "))]
    BadStage { origin: Origin, value: String },
    #[error("{origin}: `{value}` is not a percentage between 0 and 100")]
    BadRate { origin: Origin, value: String },
    #[error("{origin}: `{value}` is not a duration (write e.g. 24h, 2d or 90m)")]
    BadPlanAge { origin: Origin, value: String },
    #[error("{origin}: `{value}` is not a format of the plan; write table, json or markdown")]
    BadFormat { origin: Origin, value: String },
    #[error("{origin}: `{value}` is not an access key ID")]
    BadKeyId { origin: Origin, value: String },
    #[error(
        "{origin} is in the past: {acting} acts now, for now or a later moment (a past one would journal acts as earlier than they were); plan for a past moment without it"
    )]
    PastAsOf { origin: Origin, acting: Origin },
    #[error("{one} and {other} cannot be given together")]
    Conflict { one: Origin, other: Origin },
    #[error("cannot write the plan to {}", path.display())]
    WritePlan {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin} {}: cannot read it", path.display())]
    ReadPlan {
        origin: Origin,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin} {}", path.display())]
    BadPlan {
        origin: Origin,
        path: PathBuf,
        #[source]
        source: PlanError,
    },
    #[error(
        "{origin} {}: the plan was made at {made}, more than {max} ago; make it again (or allow an older one with {max_age})",
        path.display()
    )]
    PlanTooOld {
        origin: Origin,
        path: PathBuf,
        made: String,
        max: String,
        max_age: Origin,
    },
    #[error(
        "{origin} {}: the plan says it was made at {made}, which is still to come; make it again",
        path.display()
    )]
    PlanFromTheFuture {
        origin: Origin,
        path: PathBuf,
        made: String,
    },
    #[error(
        "{origin} {}: the plan says when it was made nowhere; make it with `rekey enforce --plan-out`",
        path.display()
    )]
    PlanUndated { origin: Origin, path: PathBuf },
    #[error(transparent)]
    ChooseJournal(#[from] ChooseJournalError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(
        "no notification channel is configured: set [notify] sns_topic, email_from or webhook in rekey.toml, or give --notify-sns, --notify-email-from or --notify-webhook"
    )]
    NoChannel,
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl EnforceRequest {
    /// Everything the options and rekey.toml decide, checked before any
    /// AWS call; a plan file is read and its age checked here.
    pub fn from_input(input: &EnforceInput, ctx: &Context) -> Result<EnforceRequest, EnforceError> {
        let name = |s| ctx.name(s);
        let audit = AuditRequest::from_input(&input.scope, ctx)?;
        use crate::report::Format;
        if !matches!(
            audit.format,
            Format::Table | Format::Json | Format::Markdown
        ) {
            return Err(EnforceError::BadFormat {
                origin: name(Setting::Output),
                value: audit.format.to_string(),
            });
        }
        let file = match &input.scope.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let lifecycles = file.lifecycles(&audit.options.policies)?;
        let exemptions =
            Exemptions::new(&file.enforce.exempt).map_err(|e| InputError::BadConfig {
                path: input.scope.config.clone().unwrap_or_default(),
                line: 1,
                column: 1,
                message: e.to_string(),
            })?;
        let only = wave_checks(input, ctx)?;
        let plan_max_age = parse_span(
            &name(Setting::PlanMaxAge),
            input
                .plan_max_age
                .as_deref()
                .unwrap_or(DEFAULT_PLAN_MAX_AGE),
        )?;
        let mode = mode(input, ctx, plan_max_age)?;
        // Acting for a past moment would journal acts as earlier than they
        // were, and shorten every window that counts from them.
        let past = audit.options.as_of < ctx.now - Duration::minutes(1);
        if past && !matches!(mode, EnforceMode::Plan) {
            return Err(EnforceError::PastAsOf {
                origin: name(Setting::AsOf),
                acting: name(match mode {
                    EnforceMode::Reactivate(_) => Setting::Reactivate,
                    EnforceMode::ApplyPlan(_) => Setting::ApplyPlan,
                    _ => Setting::Apply,
                }),
            });
        }
        let from_file = input.scope.config.clone().map(|path| FileJournal {
            path,
            journal: file.journal.clone(),
            retention: file.journal_retention.clone(),
        });
        let journal = choose_journal(
            input
                .journal
                .as_deref()
                .map(|p| (p, name(Setting::Journal))),
            from_file.as_ref(),
            input
                .journal_role
                .as_deref()
                .map(|r| (r, name(Setting::JournalRole))),
            ctx.env,
            name(Setting::Journal),
        )?;
        let propagation_timeout = parse_seconds(
            &Origin::Flag("propagation_timeout".into()),
            DEFAULT_PROPAGATION_TIMEOUT,
        )?;
        let run_id = input
            .run_id
            .clone()
            .unwrap_or_else(|| format!("{}-{}", std::process::id(), ctx.now.unix_timestamp()));
        let as_of = audit.options.as_of;
        // Planning sends nothing: the channels are decided (and checked)
        // for a run that acts, and for `rekey notify`.
        let notify = match (&mode, input.notify_always) {
            (EnforceMode::Plan, false) => None,
            _ => NotifyRequest::decide(&Sources {
                file: (input.scope.config.as_deref()).map(|p| (p, &file.notify, &file.owners[..])),
                input: &input.notify,
                name: &|s| ctx.name(s),
                env: ctx.env,
            })?,
        };
        Ok(EnforceRequest {
            notify,
            deadline: None,
            lifecycles,
            exemptions,
            entries: file.services.clone(),
            external_id: input.scope.external_id.clone(),
            secret_role: file.rotate.secret_role(),
            journal,
            mode,
            plan_out: input.plan_out.clone(),
            plan_max_age,
            only,
            canary: input.canary.clone(),
            max_actions: input.max_actions,
            max_failure_rate: input.max_failure_rate,
            rotate: RotateOptions {
                old_key: OldKeyAction::Keep,
                delete_other_active: false,
                max_age_days: None,
                propagation_timeout,
                verify_successes: VERIFY_SUCCESSES,
                lease_ttl: lease_ttl(propagation_timeout),
                run_id,
                as_of: (as_of != ctx.now).then_some(as_of),
            },
            audit,
        })
    }
}

/// `--only`, `--max-failure-rate`, `--max-actions` and `--canary`,
/// checked; returns the stage.
fn wave_checks(input: &EnforceInput, ctx: &Context) -> Result<Option<String>, EnforceError> {
    let name = |s| ctx.name(s);
    let only = match &input.only {
        Some(v) if !STAGES.contains(&v.as_str()) => {
            return Err(EnforceError::BadStage {
                origin: name(Setting::Only),
                value: v.clone(),
            });
        }
        other => other.clone(),
    };
    if let Some(rate) = input.max_failure_rate
        && !(0.0..=100.0).contains(&rate)
    {
        return Err(EnforceError::BadRate {
            origin: name(Setting::MaxFailureRate),
            value: rate.to_string(),
        });
    }
    if input.max_actions == Some(0) {
        return Err(InputError::ZeroCount {
            origin: name(Setting::MaxActions),
        }
        .into());
    }
    crate::discovery::check_account_ids(&input.canary, &name(Setting::Canary))?;
    Ok(only)
}

/// What the run does, with a plan file read and checked.
fn mode(
    input: &EnforceInput,
    ctx: &Context,
    max_age: Duration,
) -> Result<EnforceMode, EnforceError> {
    let name = |s| ctx.name(s);
    let given: Vec<Setting> = [
        (input.apply, Setting::Apply),
        (input.apply_plan.is_some(), Setting::ApplyPlan),
        (input.reactivate.is_some(), Setting::Reactivate),
    ]
    .into_iter()
    .filter_map(|(on, s)| on.then_some(s))
    .collect();
    if let [one, other, ..] = given[..] {
        return Err(EnforceError::Conflict {
            one: name(one),
            other: name(other),
        });
    }
    if input.plan_out.is_some() && !given.is_empty() {
        return Err(EnforceError::Conflict {
            one: name(Setting::PlanOut),
            other: name(given[0]),
        });
    }
    if let Some(key) = &input.reactivate {
        let ok =
            key.len() >= 16 && key.len() <= 128 && key.chars().all(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(EnforceError::BadKeyId {
                origin: name(Setting::Reactivate),
                value: key.clone(),
            });
        }
        return Ok(EnforceMode::Reactivate(key.clone()));
    }
    if let Some(path) = &input.apply_plan {
        let origin = name(Setting::ApplyPlan);
        let text = std::fs::read_to_string(path).map_err(|source| EnforceError::ReadPlan {
            origin: origin.clone(),
            path: path.clone(),
            source,
        })?;
        let plan = Plan::parse(&text).map_err(|source| EnforceError::BadPlan {
            origin: origin.clone(),
            path: path.clone(),
            source,
        })?;
        let Some(made) = plan.made_at else {
            return Err(EnforceError::PlanUndated {
                origin,
                path: path.clone(),
            });
        };
        if made > ctx.now + Duration::minutes(5) {
            return Err(EnforceError::PlanFromTheFuture {
                origin,
                path: path.clone(),
                made: rfc3339(made),
            });
        }
        if ctx.now - made > max_age {
            return Err(EnforceError::PlanTooOld {
                origin,
                path: path.clone(),
                made: rfc3339(made),
                max: format!("{max_age}"),
                max_age: name(Setting::PlanMaxAge),
            });
        }
        return Ok(EnforceMode::ApplyPlan(Box::new(plan)));
    }
    Ok(match input.apply {
        true => EnforceMode::Apply,
        false => EnforceMode::Plan,
    })
}

/// `24h`, `2d`, `90m`, `1w`.
fn parse_span(origin: &Origin, value: &str) -> Result<Duration, EnforceError> {
    let bad = || EnforceError::BadPlanAge {
        origin: origin.clone(),
        value: value.to_string(),
    };
    let v = value.trim();
    let unit = v.chars().last().ok_or_else(bad)?;
    let n: i64 = v[..v.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    if n < 1 {
        return Err(bad());
    }
    Ok(match unit {
        'm' => Duration::minutes(n),
        'h' => Duration::hours(n),
        'd' => Duration::days(n),
        'w' => Duration::weeks(n),
        _ => return Err(bad()),
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::field;

    fn ctx(env: &dyn Fn(&str) -> Option<String>) -> Context<'_> {
        Context {
            names: field,
            env,
            now: time::macros::datetime!(2026-06-01 12:00 UTC),
            stdout_is_terminal: false,
        }
    }

    #[test]
    fn bad_options_are_named_and_conflicts_refused() {
        let home = |k: &str| (k == "HOME").then(|| "/nonexistent-home".to_string());
        let cx = ctx(&home);
        let of = |f: fn(&mut EnforceInput)| {
            let mut input = EnforceInput::default();
            f(&mut input);
            EnforceRequest::from_input(&input, &cx)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert!(of(|i| i.only = Some("rotat".into())).starts_with("only: `rotat` is not a stage"));
        let html = of(|i| i.scope.output = Some(crate::report::Format::Html));
        assert!(
            html.contains("`html` is not a format of the plan"),
            "{html}"
        );
        assert!(of(|i| i.max_failure_rate = Some(101.0)).contains("not a percentage"));
        assert!(of(|i| i.max_actions = Some(0)).contains("at least 1"));
        assert!(of(|i| i.plan_max_age = Some("soon".into())).contains("plan_max_age: `soon`"));
        assert!(of(|i| i.canary = vec!["12".into()]).contains("12-digit"));
        assert!(of(|i| i.reactivate = Some("AKIA/../x".into())).contains("not an access key ID"));
        let past = of(|i| {
            i.apply = true;
            i.scope.as_of = Some("-3d".into());
        });
        assert!(
            past.starts_with("as_of is in the past: apply acts now"),
            "{past}"
        );
        let past = of(|i| {
            i.reactivate = Some("AKIAIOSFODNN7EXAMPLE".into());
            i.scope.as_of = Some("2020-01-01".into());
        });
        assert!(past.contains("reactivate acts now"), "{past}");
        let both = of(|i| {
            i.apply = true;
            i.apply_plan = Some("p.json".into());
        });
        assert_eq!(both, "apply and apply_plan cannot be given together");
        let missing = of(|i| i.apply_plan = Some("/nonexistent/plan.json".into()));
        assert!(
            missing.starts_with("apply_plan /nonexistent/plan.json: cannot read it"),
            "{missing}"
        );
    }

    #[test]
    fn a_plan_file_older_than_its_max_age_or_undated_is_refused() {
        let home = |k: &str| (k == "HOME").then(|| "/nonexistent-home".to_string());
        let cx = ctx(&home);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let mut plan = Plan::new(vec![]);
        std::fs::write(&path, serde_json::to_string(&plan).unwrap()).unwrap();
        let input = EnforceInput {
            apply_plan: Some(path.clone()),
            ..EnforceInput::default()
        };
        let err = EnforceRequest::from_input(&input, &cx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("says when it was made nowhere"), "{err}");
        plan.made_at = Some(cx.now - Duration::hours(25));
        std::fs::write(&path, serde_json::to_string(&plan).unwrap()).unwrap();
        let err = EnforceRequest::from_input(&input, &cx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 1d ago"), "{err}");
        plan.made_at = Some(cx.now + Duration::hours(2));
        std::fs::write(&path, serde_json::to_string(&plan).unwrap()).unwrap();
        let err = EnforceRequest::from_input(&input, &cx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("which is still to come"), "{err}");
        plan.made_at = Some(cx.now - Duration::hours(25));
        std::fs::write(&path, serde_json::to_string(&plan).unwrap()).unwrap();
        let younger = EnforceInput {
            plan_max_age: Some("2d".into()),
            ..input.clone()
        };
        let req = EnforceRequest::from_input(&younger, &cx).unwrap();
        assert!(matches!(req.mode, EnforceMode::ApplyPlan(_)));
    }
}
