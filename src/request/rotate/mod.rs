//! `rekey rotate` as asked ([`RotateInput`]) and as decided
//! ([`RotateRequest`]): what to rotate ([`What`]), every option with its
//! default, checked before any AWS call. [`run`] carries a request out.
//!
//! The defaults, decided here and nowhere else:
//!
//! | option | default |
//! |---|---|
//! | `old_key` | `deactivate` for profiles; `keep` for a service user (`user`, `service`), whose readers re-read on their own schedule |
//! | `propagation_timeout` | `60s` (1 s to 60 min) |
//! | verification | 3 accepted calls in a row |
//! | lease | 15 min, or 3 × the propagation timeout + 5 min when longer |
//! | `concurrency` | 4; 1 when `interactive` (one question at a time) |
//! | `journal` | `$XDG_STATE_HOME/rekey/journal.sqlite3` ([`default_path`]) |
//! | `max_age` | none; with `service`, rekey.toml's `max_age` of the user's account |
//! | `secret_role` | with `service`, rekey.toml's `[rotate] secret_role` |
//! | the journal of a dry run | read only: an existing one is read, none is made (issue 9 #8) |
//!
//! The JSON form of an input (every field may be left out; exactly one of
//! `profiles`/`all_profiles`, `accounts` + `user` + `to`, `service` or
//! `abandon` says what to rotate):
//!
//! ```json
//! {"service": true, "org": true, "role": "Rotator",
//!  "config": "/etc/rekey.toml", "max_age": "90d", "dry_run": true}
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Context, Names, Setting};
use crate::aws::AwsOptions;
use crate::awsfiles::Profiles;
use crate::config::{ConfigFile, MaxAges, Policies, PolicySettings, ServiceEntry};
use crate::destination::{Binding, SecretRole};
use crate::discovery::{Selection, check_account_ids, read_accounts_file, validate};
use crate::error::{InputError, Origin};
use crate::journal::{JournalError, OldKeyAction, RotationId};
use crate::policy::parse_days;
use crate::request::journal::{
    ChooseJournalError, FileJournal, JournalChoice, choose as choose_journal,
};
use crate::rotation::targets::TargetError;
use crate::rotation::{Mode, RotateOptions};

mod run;

pub use run::{JobError, NotStarted, RotateOutcome, RunOutcome, UnfinishedHere, run};

/// Keys rotated at once unless asked otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// How long IAM may take to accept a new key unless asked otherwise.
pub const DEFAULT_PROPAGATION_TIMEOUT: &str = "60s";
/// Accepted calls in a row that prove a new key (DESIGN.md invariant 1).
pub const VERIFY_SUCCESSES: u32 = 3;

/// `rekey rotate`'s options as given; absent where not given.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotateInput {
    pub profiles: Vec<String>,
    pub all_profiles: bool,
    /// A service user's account (with `user` and `to`); with `service`,
    /// accounts to look for bound users in.
    pub accounts: Vec<String>,
    pub user: Option<String>,
    /// `secretsmanager:NAME|ARN` or `ssm:/PATH`.
    pub to: Vec<String>,
    pub service: bool,
    pub accounts_file: Option<PathBuf>,
    pub org: bool,
    pub ous: Vec<String>,
    pub exclude_accounts: Vec<String>,
    /// rekey.toml, for `service`.
    pub config: Option<PathBuf>,
    pub credentials_file: Option<PathBuf>,
    /// `90d`, `12w`, `90`.
    pub max_age: Option<String>,
    pub dry_run: bool,
    pub interactive: bool,
    pub old_key: Option<OldKeyAction>,
    pub delete_other_active: bool,
    /// `60s`, `2m`, `90` (seconds).
    pub propagation_timeout: Option<String>,
    pub role: Option<String>,
    pub external_id: Option<String>,
    pub secret_role: Option<String>,
    pub secret_external_id: Option<String>,
    /// Never serialized: a one-time code is nobody's to keep.
    #[serde(skip_serializing)]
    pub mfa_code: Option<String>,
    /// A path, `sqlite:PATH` or `dynamodb:TABLE[?region=R]`.
    pub journal: Option<PathBuf>,
    /// A role assumed to reach a DynamoDB journal in another account.
    pub journal_role: Option<String>,
    pub concurrency: Option<usize>,
    pub abandon: Option<RotationId>,
    /// The run's name in the journal and its leases (default: `PID-UNIXTIME`).
    pub run_id: Option<String>,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
}

// By hand: the MFA code is left out.
impl std::fmt::Debug for RotateInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotateInput")
            .field("profiles", &self.profiles)
            .field("all_profiles", &self.all_profiles)
            .field("accounts", &self.accounts)
            .field("user", &self.user)
            .field("to", &self.to)
            .field("service", &self.service)
            .field("abandon", &self.abandon)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// What a rotation request rotates.
// One per request: its size is no cost.
#[allow(clippy::large_enum_variant)]
pub enum What {
    /// Keys of the shared credentials file: these profiles' (each followed
    /// to the profile holding its key), or, with `all`, every profile
    /// holding a static key.
    Profiles { names: Vec<String>, all: bool },
    /// One service user's key, into these destinations; the first one
    /// names the key. IAM is reached through `role` in its account, else
    /// with the caller's own credentials.
    User {
        account: String,
        user: String,
        to: Vec<Binding>,
    },
    /// Every bound service user of the selected accounts.
    Service(Services),
    /// The way out for an unfinished rotation whose destination is gone:
    /// delete the keys it made and close it. IAM is reached with the first
    /// profile's key, else the default chain.
    Abandon {
        id: RotationId,
        profiles: Vec<String>,
    },
}

/// What `service` looks at: the accounts (selected as an audit selects
/// them), rekey.toml's `[[service]]` entries, its `max_age`s and its
/// exemptions (`[policy]` and `[accounts.ID]`, as audit reads them).
pub struct Services {
    pub selection: Selection,
    pub entries: Vec<ServiceEntry>,
    pub max_ages: MaxAges,
    pub policies: Policies,
    /// What rekey.toml says of the journal.
    pub journal: Option<FileJournal>,
}

/// A rotation request, complete: what [`run`] carries out.
pub struct RotateRequest {
    pub what: What,
    pub options: RotateOptions,
    /// Plan (a dry run, which changes nothing) or apply.
    pub mode: Mode,
    /// Keys rotated at once.
    pub concurrency: usize,
    /// Ask before each step.
    pub interactive: bool,
    pub journal: JournalChoice,
    /// The shared files as read (`credentials_file` in place of
    /// `AWS_SHARED_CREDENTIALS_FILE`).
    pub profiles: Arc<Profiles>,
    /// The role IAM is reached through, in the user's account.
    pub role: Option<String>,
    /// Goes with `role` and every role a service account is entered with.
    pub external_id: Option<String>,
    /// Reaches a secret named by an ARN of another account than its
    /// user's.
    pub secret_role: Option<SecretRole>,
    /// For profiles with `mfa_serial`; else the prompt is asked.
    pub mfa_code: Option<String>,
    pub aws: AwsOptions,
    /// How the front end names its options, for what [`run`] finds wrong.
    pub names: Names,
}

/// A request that cannot be carried out as given. Nothing was done.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Input(#[from] InputError),
    /// Nothing says what to rotate.
    #[error(
        "say what to rotate: profiles of the shared credentials file, one service user's key, or every bound service user"
    )]
    NothingToRotate,
    /// An option that needs others: `--account needs --user and --to, or
    /// --service`, `--user takes one --account`.
    #[error("{option} {needs}")]
    Needs { option: Origin, needs: String },
    #[error("{option} `{value}`: expected secretsmanager:NAME, secretsmanager:ARN or ssm:/PATH")]
    BadDestination { option: Origin, value: String },
    #[error(transparent)]
    ChooseJournal(#[from] ChooseJournalError),
    /// A profile that cannot be rotated; when it is not found, the
    /// unfinished rotations that delivered to a profile of that name
    /// (their file was likely moved away mid-rotation, issue 15 #3).
    #[error("{error}{}", unfinished_hint(unfinished))]
    Target {
        error: TargetError,
        unfinished: Vec<UnfinishedHere>,
    },
    #[error(transparent)]
    Journal(JournalError),
}

/// What to do about each rotation left unfinished on a missing profile.
fn unfinished_hint(unfinished: &[UnfinishedHere]) -> String {
    unfinished
        .iter()
        .map(|r| {
            format!(
                "; rotation #{} of {} in account {} delivered a new key to profile {} and is unfinished: put its file back and run again, or if the file is gone for good, abandon it (which deletes the key it made and closes it)",
                r.id, r.user, r.account, r.profile
            )
        })
        .collect()
}

impl RotateRequest {
    /// Everything the options (and, for `service`, rekey.toml) decide,
    /// checked before any AWS call; the files are read here.
    pub fn from_input(input: &RotateInput, ctx: &Context) -> Result<RotateRequest, RequestError> {
        let name = |s| ctx.name(s);
        let what_kind = kind_of(input, ctx)?;
        if input.concurrency == Some(0) {
            return Err(InputError::ZeroCount {
                origin: name(Setting::Concurrency),
            }
            .into());
        }
        check_account_ids(&input.accounts, &name(Setting::Accounts))?;
        let max_age_days = input
            .max_age
            .as_deref()
            .map(|v| parse_days(&name(Setting::MaxAge), v))
            .transpose()?;
        let propagation_timeout = parse_seconds(
            &name(Setting::PropagationTimeout),
            input
                .propagation_timeout
                .as_deref()
                .unwrap_or(DEFAULT_PROPAGATION_TIMEOUT),
        )?;
        let env = env_with(ctx.env, &input.credentials_file);
        let profiles = Arc::new(Profiles::load(&env).map_err(InputError::from)?);
        let (what, file_secret_role) = what_of(what_kind, input, ctx)?;
        let secret_role = input
            .secret_role
            .as_ref()
            .map(|role| SecretRole {
                role: role.clone(),
                external_id: input.secret_external_id.clone(),
            })
            .or(file_secret_role);
        let from_file = match &what {
            What::Service(s) => s.journal.as_ref(),
            _ => None,
        };
        let journal = choose_journal(
            input
                .journal
                .as_deref()
                .map(|p| (p, name(Setting::Journal))),
            from_file,
            input
                .journal_role
                .as_deref()
                .map(|r| (r, name(Setting::JournalRole))),
            &env,
            name(Setting::Journal),
        )?;
        let service = matches!(what, What::User { .. } | What::Service(_));
        let run_id = input
            .run_id
            .clone()
            .unwrap_or_else(|| format!("{}-{}", std::process::id(), ctx.now.unix_timestamp()));
        let options = RotateOptions {
            old_key: input.old_key.unwrap_or(if service {
                OldKeyAction::Keep
            } else {
                OldKeyAction::Deactivate
            }),
            delete_other_active: input.delete_other_active,
            max_age_days,
            propagation_timeout,
            verify_successes: VERIFY_SUCCESSES,
            lease_ttl: lease_ttl(propagation_timeout),
            run_id,
            as_of: None,
        };
        Ok(RotateRequest {
            what,
            options,
            mode: if input.dry_run {
                Mode::Plan
            } else {
                Mode::Apply
            },
            // -i asks one question at a time.
            concurrency: if input.interactive {
                1
            } else {
                input.concurrency.unwrap_or(DEFAULT_CONCURRENCY)
            },
            interactive: input.interactive,
            journal,
            profiles,
            role: input.role.clone(),
            external_id: input.external_id.clone(),
            secret_role,
            mfa_code: input.mfa_code.clone(),
            aws: AwsOptions {
                endpoint_url: input.endpoint_url.clone(),
                region: input.region.clone(),
            },
            names: ctx.names,
        })
    }
}

/// Which of the four ways to say what to rotate the input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Profiles,
    User,
    Service,
    /// Abandon the rotation of this ID.
    Abandon(RotationId),
}

/// The way the input says what to rotate, or why it says none (or two
/// that do not go together). Pure.
fn kind_of(input: &RotateInput, ctx: &Context) -> Result<Kind, RequestError> {
    let name = |s| ctx.name(s);
    if !input.service && input.user.is_none() && !input.accounts.is_empty() {
        return Err(RequestError::Needs {
            option: name(Setting::Accounts),
            needs: format!(
                "needs {} and {}, or {}",
                name(Setting::User),
                name(Setting::To),
                name(Setting::Service)
            ),
        });
    }
    let profiles = !input.profiles.is_empty() || input.all_profiles;
    Ok(match (input.abandon, input.service, &input.user) {
        (Some(id), _, _) => Kind::Abandon(id),
        (None, true, _) => Kind::Service,
        (None, false, Some(_)) => Kind::User,
        (None, false, None) if profiles => Kind::Profiles,
        (None, false, None) => return Err(RequestError::NothingToRotate),
    })
}

/// What to rotate, with rekey.toml's secret role when `service` reads it.
fn what_of(
    kind: Kind,
    input: &RotateInput,
    ctx: &Context,
) -> Result<(What, Option<SecretRole>), RequestError> {
    let name = |s| ctx.name(s);
    if input.user.is_some() && input.accounts.len() > 1 {
        return Err(RequestError::Needs {
            option: name(Setting::User),
            needs: format!("takes one {}", name(Setting::Accounts)),
        });
    }
    if input.secret_role.is_some() && !matches!(kind, Kind::User | Kind::Service) {
        return Err(RequestError::Needs {
            option: name(Setting::SecretRole),
            needs: format!(
                "reaches {} secrets or {} users' secrets; give one of them",
                name(Setting::To),
                name(Setting::Service)
            ),
        });
    }
    Ok(match kind {
        Kind::Profiles => (
            What::Profiles {
                names: input.profiles.clone(),
                all: input.all_profiles,
            },
            None,
        ),
        Kind::Abandon(id) => (
            What::Abandon {
                id,
                profiles: input.profiles.clone(),
            },
            None,
        ),
        Kind::User => {
            let to = input
                .to
                .iter()
                .map(|t| {
                    Binding::parse(t).ok_or_else(|| RequestError::BadDestination {
                        option: name(Setting::To),
                        value: t.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let what = What::User {
                account: input.accounts.first().cloned().unwrap_or_default(),
                user: input.user.clone().unwrap_or_default(),
                to,
            };
            (what, None)
        }
        Kind::Service => {
            let (services, secret_role) = services(input, ctx)?;
            (What::Service(services), secret_role)
        }
    })
}

/// With `service`: the accounts to look in, the `[[service]]` entries of
/// rekey.toml, its `[rotate]` secret role and its max ages, checked
/// before any AWS call.
fn services(
    input: &RotateInput,
    ctx: &Context,
) -> Result<(Services, Option<SecretRole>), RequestError> {
    check_account_ids(&input.accounts, &ctx.name(Setting::Accounts))?;
    check_account_ids(&input.exclude_accounts, &ctx.name(Setting::ExcludeAccounts))?;
    let mut accounts = input.accounts.clone();
    if let Some(path) = &input.accounts_file {
        accounts.extend(read_accounts_file(path)?);
    }
    let selection = Selection {
        profiles: input.profiles.clone(),
        accounts,
        org: input.org,
        ous: input.ous.clone(),
        exclude: input.exclude_accounts.clone(),
        role: input.role.clone(),
        external_id: input.external_id.clone(),
    };
    // The accounts are entered as the SDK reads the shared files: the
    // environment's, whatever `credentials_file` says.
    let profiles = Profiles::load(ctx.env).map_err(InputError::from)?;
    validate(&selection, &profiles, ctx.names)?;
    let (file, max_ages) = match &input.config {
        Some(path) => {
            let file = ConfigFile::load(path)?;
            let max_ages = file.max_ages(path)?;
            (file, max_ages)
        }
        None => (ConfigFile::default(), MaxAges::default()),
    };
    let journal = input.config.clone().map(|path| FileJournal {
        path,
        journal: file.journal.clone(),
        retention: file.journal_retention.clone(),
    });
    let policies = Policies::resolve(&file, &PolicySettings::default())?;
    let services = Services {
        selection,
        entries: file.services,
        max_ages,
        policies,
        journal,
    };
    Ok((services, file.rotate.secret_role()))
}

/// Long enough to cover a whole rotation, retries included.
pub(crate) fn lease_ttl(propagation_timeout: Duration) -> time::Duration {
    let covered = time::Duration::try_from(propagation_timeout * 3).expect("at most 3 hours")
        + time::Duration::minutes(5);
    time::Duration::minutes(15).max(covered)
}

/// Parses `60s`, `2m`, `90` (seconds), between 1 s and 60 min.
pub(crate) fn parse_seconds(origin: &Origin, value: &str) -> Result<Duration, InputError> {
    let v = value.trim();
    let (digits, factor) = match v.as_bytes().last() {
        Some(b's') => (&v[..v.len() - 1], 1),
        Some(b'm') => (&v[..v.len() - 1], 60),
        _ => (v, 1),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && n <= 3600 => Ok(Duration::from_secs(n * factor)),
        _ => Err(InputError::BadWait {
            origin: origin.clone(),
            value: value.to_string(),
        }),
    }
}

/// `env`, with `credentials_file` in place of AWS_SHARED_CREDENTIALS_FILE.
fn env_with<'a>(
    env: &'a dyn Fn(&str) -> Option<String>,
    credentials_file: &'a Option<PathBuf>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| match (name, credentials_file) {
        ("AWS_SHARED_CREDENTIALS_FILE", Some(p)) => Some(p.display().to_string()),
        _ => env(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(s: Setting) -> Origin {
        Origin::Flag(format!("--{}", s.as_str().replace('_', "-")))
    }

    fn ctx(env: &dyn Fn(&str) -> Option<String>) -> Context<'_> {
        Context {
            names: flag,
            env,
            now: time::macros::datetime!(2027-01-01 0:00 UTC),
            stdout_is_terminal: false,
        }
    }

    /// An environment with empty shared files in a fresh directory.
    fn home() -> (tempfile::TempDir, impl Fn(&str) -> Option<String>) {
        let dir = tempfile::tempdir().unwrap();
        let (creds, config) = (dir.path().join("credentials"), dir.path().join("config"));
        std::fs::write(
            &creds,
            "[dev]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\n",
        )
        .unwrap();
        std::fs::write(&config, "").unwrap();
        let state = dir.path().join("state");
        let env = move |name: &str| match name {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(creds.display().to_string()),
            "AWS_CONFIG_FILE" => Some(config.display().to_string()),
            "XDG_STATE_HOME" => Some(state.display().to_string()),
            _ => None,
        };
        (dir, env)
    }

    fn request(input: &RotateInput) -> Result<RotateRequest, RequestError> {
        let (_dir, env) = home();
        RotateRequest::from_input(input, &ctx(&env))
    }

    #[test]
    fn defaults_are_decided_by_what_is_rotated() {
        let profiles = RotateInput {
            profiles: vec!["dev".into()],
            ..Default::default()
        };
        let r = request(&profiles).unwrap();
        assert_eq!(r.options.old_key, OldKeyAction::Deactivate);
        assert_eq!(r.options.verify_successes, 3);
        assert_eq!(r.options.propagation_timeout, Duration::from_secs(60));
        assert_eq!(r.options.lease_ttl, time::Duration::minutes(15));
        assert_eq!((r.concurrency, r.mode), (4, Mode::Apply));
        assert!(
            matches!(&r.journal.spec, crate::journal::JournalSpec::Sqlite(p) if p.ends_with("rekey/journal.sqlite3")),
            "{:?}",
            r.journal
        );
        let user = RotateInput {
            accounts: vec!["111111111111".into()],
            user: Some("svc".into()),
            to: vec!["ssm:/svc".into()],
            propagation_timeout: Some("10m".into()),
            interactive: true,
            dry_run: true,
            ..Default::default()
        };
        let r = request(&user).unwrap();
        assert_eq!(r.options.old_key, OldKeyAction::Keep);
        // 3 × 10 min + 5 min: a rotation's retries fit in its lease.
        assert_eq!(r.options.lease_ttl, time::Duration::minutes(35));
        assert_eq!((r.concurrency, r.mode), (1, Mode::Plan));
        let What::User { to, .. } = &r.what else {
            panic!("a user's rotation")
        };
        assert_eq!(to, &[Binding::Ssm("/svc".into())]);
    }

    #[test]
    fn a_bad_request_is_named_as_its_front_end_names_it() {
        let said = |input: RotateInput| match request(&input) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{input:?} is accepted"),
        };
        let dev = || RotateInput {
            profiles: vec!["dev".into()],
            ..Default::default()
        };
        assert!(matches!(
            request(&RotateInput::default()),
            Err(RequestError::NothingToRotate)
        ));
        assert_eq!(
            said(RotateInput {
                accounts: vec!["111111111111".into()],
                ..dev()
            }),
            "--accounts needs --user and --to, or --service"
        );
        assert_eq!(
            said(RotateInput {
                concurrency: Some(0),
                ..dev()
            }),
            "--concurrency must be at least 1, not 0"
        );
        assert!(
            said(RotateInput {
                max_age: Some("soon".into()),
                ..dev()
            })
            .starts_with("--max-age: `soon` is not a number of days")
        );
        assert_eq!(
            said(RotateInput {
                propagation_timeout: Some("2h".into()),
                ..dev()
            }),
            "--propagation-timeout: `2h` is not a duration between 1s and 60m (write e.g. 60s or 2m)"
        );
        assert_eq!(
            said(RotateInput {
                secret_role: Some("R".into()),
                ..dev()
            }),
            "--secret-role reaches --to secrets or --service users' secrets; give one of them"
        );
        assert_eq!(
            said(RotateInput {
                accounts: vec!["111111111111".into()],
                user: Some("svc".into()),
                to: vec!["s3://b".into()],
                ..Default::default()
            }),
            "--to `s3://b`: expected secretsmanager:NAME, secretsmanager:ARN or ssm:/PATH"
        );
        // The library itself spells no flag: a JSON request's errors name
        // its fields.
        let (_dir, env) = home();
        let json = Context {
            names: super::super::field,
            ..ctx(&env)
        };
        let zero = RotateInput {
            concurrency: Some(0),
            ..dev()
        };
        let e = RotateRequest::from_input(&zero, &json).err().unwrap();
        assert_eq!(e.to_string(), "concurrency must be at least 1, not 0");
    }

    #[test]
    fn a_json_request_takes_the_same_road() {
        let input: RotateInput = serde_json::from_str(
            r#"{"accounts": ["111111111111"], "user": "svc", "to": ["secretsmanager:ci/svc"], "max_age": "30d", "mfa_code": "123456"}"#,
        )
        .unwrap();
        let r = request(&input).unwrap();
        assert_eq!(r.options.max_age_days, Some(30));
        assert_eq!(r.options.old_key, OldKeyAction::Keep);
        // A code given is never written back out.
        let out = serde_json::to_string(&input).unwrap();
        assert!(!out.contains("123456"), "{out}");
        assert!(!format!("{input:?}").contains("123456"));
        assert!(serde_json::from_str::<RotateInput>(r#"{"profile": ["dev"]}"#).is_err());
    }
}
