//! `rekey audit` as asked ([`AuditInput`]) and as decided
//! ([`AuditRequest`]): the accounts, the policy of each, the source, the
//! concurrency, the moment keys are judged at and the output — rekey.toml
//! merged with the options (an option wins over the file, the file over
//! the defaults), everything checked before any AWS call. [`run`] carries
//! the request out: discovery, the audit, the Security Hub import.
//!
//! The JSON form of an input (every field may be left out):
//!
//! ```json
//! {"org": true, "ous": ["ou-ab12-cdef3456"], "role": "Auditor",
//!  "max_age": "90d", "view": "config", "output": "json",
//!  "config": "/etc/rekey.toml"}
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Context, Names, Setting, non_empty};
use crate::audit::{AuditOptions, run as run_audit};
use crate::aws::AwsOptions;
use crate::awsfiles::Profiles;
use crate::config::{AuditSettings, ConfigFile, Days, Policies, PolicySettings};
use crate::discovery::{Selection, check_account_ids, discover, read_accounts_file, validate};
use crate::error::{InputError, Origin};
use crate::inventory::Source;
use crate::policy::parse_as_of;
use crate::report::{Format, View, format_for_path};
use crate::securityhub::{self, Published};

/// Accounts audited at once unless asked otherwise, chosen from the
/// latency runs of `scripts/bench` (README, "Concurrency"; issue 9, item 13).
pub const DEFAULT_CONCURRENCY: usize = 32;

/// `rekey audit`'s options as given; absent where not given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditInput {
    pub profiles: Vec<String>,
    pub accounts: Vec<String>,
    pub accounts_file: Option<PathBuf>,
    pub org: bool,
    pub ous: Vec<String>,
    pub exclude_accounts: Vec<String>,
    pub role: Option<String>,
    pub external_id: Option<String>,
    pub source: Option<Source>,
    pub concurrency: Option<usize>,
    pub max_age: Option<String>,
    pub unused: Option<String>,
    pub exempt_tag: Option<String>,
    pub exempt_groups: Vec<String>,
    pub exempt_users: Vec<String>,
    /// `YYYY-MM-DD`, RFC 3339, `+Nd` or `-Nd`.
    pub as_of: Option<String>,
    /// rekey.toml.
    pub config: Option<PathBuf>,
    pub view: View,
    /// Default: from `out`'s extension, else a table on a terminal, else
    /// JSON.
    pub output: Option<Format>,
    /// A file to write the report to, instead of stdout.
    pub out: Option<PathBuf>,
    pub to_security_hub: bool,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
}

/// An audit, complete: what [`run`] carries out.
#[derive(Debug, Clone)]
pub struct AuditRequest {
    pub selection: Selection,
    pub options: AuditOptions,
    pub view: View,
    pub format: Format,
    pub out: Option<PathBuf>,
    pub to_security_hub: bool,
    /// How the front end names its options, for what [`run`] finds wrong.
    pub names: Names,
}

impl AuditRequest {
    /// Everything the options and rekey.toml decide, checked before any
    /// AWS call. The file is read here.
    pub fn from_input(input: &AuditInput, ctx: &Context) -> Result<AuditRequest, InputError> {
        let file = match &input.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let policies = policies(input, &file, ctx)?;
        // Judge at the exact moment (a key made 120 days ago to the second
        // is 120 days old); stamp the report in whole seconds.
        let as_of = match &input.as_of {
            Some(v) => parse_as_of(&ctx.name(Setting::AsOf), v, ctx.now)?,
            None => ctx.now,
        };
        let a = &file.audit;
        let in_file = |key: &str| {
            let path = input.config.as_deref().unwrap_or(Path::new("rekey.toml"));
            Origin::file(path, format!("[audit] {key}"))
        };
        let selection = selection(input, a, ctx, &in_file)?;
        let profiles = Profiles::load(ctx.env)?;
        validate(&selection, &profiles, ctx.names)?;
        let concurrency = match input.concurrency {
            Some(0) => {
                return Err(InputError::ZeroCount {
                    origin: ctx.name(Setting::Concurrency),
                });
            }
            given => given.or(a.concurrency).unwrap_or(DEFAULT_CONCURRENCY),
        };
        let format = input
            .output
            .or_else(|| input.out.as_deref().and_then(format_for_path))
            .unwrap_or(if ctx.stdout_is_terminal {
                Format::Table
            } else {
                Format::Json
            });
        Ok(AuditRequest {
            selection,
            format,
            view: input.view,
            out: input.out.clone(),
            to_security_hub: input.to_security_hub,
            names: ctx.names,
            options: AuditOptions {
                source: input.source.or(a.source).unwrap_or_default(),
                concurrency,
                as_of,
                now: ctx
                    .now
                    .replace_nanosecond(0)
                    .expect("0 is a valid nanosecond"),
                policies,
                aws: AwsOptions {
                    endpoint_url: input.endpoint_url.clone(),
                    region: input.region.clone(),
                },
            },
        })
    }
}

/// The policy of every account: the options' values (checked, each named
/// as the front end names it) over the file's.
fn policies(input: &AuditInput, file: &ConfigFile, ctx: &Context) -> Result<Policies, InputError> {
    let options = PolicySettings {
        max_age: input.max_age.clone().map(Days::Text),
        unused: input.unused.clone().map(Days::Text),
        exempt_tag: input.exempt_tag.clone(),
        exempt_groups: non_empty(&input.exempt_groups),
        exempt_users: non_empty(&input.exempt_users),
        enforce: None,
    };
    options.check(|key| match key {
        "max_age" => ctx.name(Setting::MaxAge),
        _ => ctx.name(Setting::Unused),
    })?;
    Policies::resolve(file, &options)
}

/// The accounts: the options' selectors when any is given, else the
/// file's `[audit]` ones; each bad value named where it was written
/// (issue 10 #4).
fn selection(
    input: &AuditInput,
    a: &AuditSettings,
    ctx: &Context,
    in_file: &dyn Fn(&str) -> Origin,
) -> Result<Selection, InputError> {
    let selecting = !input.profiles.is_empty()
        || !input.accounts.is_empty()
        || input.accounts_file.is_some()
        || input.org;
    let (mut selection, accounts_file) = if selecting {
        check_account_ids(&input.accounts, &ctx.name(Setting::Accounts))?;
        let selection = Selection {
            profiles: input.profiles.clone(),
            accounts: input.accounts.clone(),
            org: input.org,
            ..Selection::default()
        };
        (selection, input.accounts_file.clone())
    } else {
        let selection = Selection {
            profiles: a.profiles.clone().unwrap_or_default(),
            accounts: a.accounts.clone().unwrap_or_default(),
            org: a.org.unwrap_or(false),
            ..Selection::default()
        };
        check_account_ids(&selection.accounts, &in_file("accounts"))?;
        (selection, a.accounts_file.clone())
    };
    if let Some(path) = accounts_file {
        selection.accounts.extend(read_accounts_file(&path)?);
    }
    let ous_origin = match non_empty(&input.ous) {
        Some(ous) => {
            selection.ous = ous;
            ctx.name(Setting::Ous)
        }
        // The file's OUs narrow the organization; a selection of given
        // accounts (the Lambda's one account per message) has none to
        // narrow.
        None if selecting && !input.org => in_file("ous"),
        None => {
            selection.ous = a.ous.clone().unwrap_or_default();
            in_file("ous")
        }
    };
    if !selection.ous.is_empty() && !selection.org {
        return Err(InputError::OusWithoutOrg {
            origin: ous_origin,
            org: ctx.name(Setting::Org),
        });
    }
    match non_empty(&input.exclude_accounts) {
        Some(ids) => {
            check_account_ids(&ids, &ctx.name(Setting::ExcludeAccounts))?;
            selection.exclude = ids;
        }
        None => {
            selection.exclude = a.exclude_accounts.clone().unwrap_or_default();
            check_account_ids(&selection.exclude, &in_file("exclude_accounts"))?;
        }
    }
    selection.role = input.role.clone().or_else(|| a.role.clone());
    selection.external_id = input.external_id.clone().or_else(|| a.external_id.clone());
    Ok(selection)
}

/// Told how far an audit has got: a progress bar, or nothing.
pub trait Progress: Sync {
    /// The audit of `accounts` accounts begins.
    fn start(&self, _accounts: usize) {}
    /// One more account is done.
    fn tick(&self) {}
    /// The audit is over.
    fn finish(&self) {}
}

/// Shows nothing.
pub struct Quiet;

impl Progress for Quiet {}

/// What an audit found, and what became of each account's import into
/// Security Hub (when asked for; already recorded in the report).
pub struct AuditOutcome {
    pub report: crate::audit::AuditReport,
    pub published: Vec<Published>,
}

/// Carries `request` out: discovery, the audit (several accounts at once),
/// then, when asked for, each account's findings into its Security Hub.
/// A bad selection found on the way (no credentials, an unreachable
/// endpoint) is bad input; an account's failure is in the report.
pub async fn run(
    request: &AuditRequest,
    progress: &dyn Progress,
) -> Result<AuditOutcome, InputError> {
    let options = &request.options;
    let discovery = discover(&request.selection, &options.aws)
        .await
        .map_err(|e| e.named(request.names))?;
    progress.start(discovery.targets.len());
    // Taken before the audit consumes the discovery: each account's
    // findings are sent with its own credentials (issue 6).
    let senders = request
        .to_security_hub
        .then(|| securityhub::Senders::from_discovery(&discovery));
    let mut report = run_audit(discovery, options, &|| progress.tick()).await;
    progress.finish();
    let mut published = Vec::new();
    if let Some(senders) = &senders {
        published = securityhub::publish(&report, senders, options.concurrency).await;
        securityhub::record(&mut report, &published);
    }
    Ok(AuditOutcome { report, published })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(s: Setting) -> Origin {
        Origin::Flag(format!("--{}", s.as_str().replace('_', "-")))
    }

    /// `input` decided with rekey.toml holding `toml` and empty shared
    /// files.
    fn decide(input: AuditInput, toml: &str) -> Result<AuditRequest, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let (creds, config) = (dir.path().join("credentials"), dir.path().join("config"));
        std::fs::write(&creds, "").unwrap();
        std::fs::write(&config, "").unwrap();
        let file = dir.path().join("rekey.toml");
        std::fs::write(&file, toml).unwrap();
        let env = move |name: &str| match name {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(creds.display().to_string()),
            "AWS_CONFIG_FILE" => Some(config.display().to_string()),
            _ => None,
        };
        let ctx = Context {
            names: flag,
            env: &env,
            now: time::macros::datetime!(2027-01-01 0:00:00.5 UTC),
            stdout_is_terminal: true,
        };
        let input = AuditInput {
            config: Some(file),
            ..input
        };
        AuditRequest::from_input(&input, &ctx)
    }

    #[test]
    fn options_win_over_the_file_and_the_file_over_the_defaults() {
        let toml = "[audit]\naccounts = [\"111111111111\"]\nrole = \"Auditor\"\nconcurrency = 8\n[policy]\nmax_age = 60\n";
        let from_file = decide(AuditInput::default(), toml).unwrap();
        assert_eq!(from_file.selection.accounts, ["111111111111"]);
        assert_eq!(from_file.selection.role.as_deref(), Some("Auditor"));
        assert_eq!(from_file.options.concurrency, 8);
        assert_eq!(
            from_file.options.policies.for_account(None).max_age_days,
            60
        );
        // A table on a terminal; the report stamped in whole seconds.
        assert_eq!(from_file.format, Format::Table);
        assert_eq!(from_file.options.now.nanosecond(), 0);
        let given = AuditInput {
            accounts: vec!["222222222222".into()],
            concurrency: Some(2),
            max_age: Some("10d".into()),
            out: Some("report.csv".into()),
            ..AuditInput::default()
        };
        let r = decide(given, toml).unwrap();
        assert_eq!(r.selection.accounts, ["222222222222"]);
        assert_eq!(r.selection.role.as_deref(), Some("Auditor"));
        assert_eq!(r.options.concurrency, 2);
        assert_eq!(r.options.policies.for_account(None).max_age_days, 10);
        assert_eq!(r.format, Format::Csv);
        let none = decide(AuditInput::default(), "").unwrap();
        assert_eq!(none.options.concurrency, DEFAULT_CONCURRENCY);
    }

    #[test]
    fn a_bad_value_is_named_where_it_was_written() {
        let said = |input: AuditInput, toml: &str| decide(input, toml).unwrap_err().to_string();
        let e = said(
            AuditInput::default(),
            "[audit]\nexclude_accounts = [\"12\"]\n",
        );
        assert!(
            e.ends_with(
                "rekey.toml [audit] exclude_accounts: `12` is not a 12-digit AWS account ID"
            ),
            "{e}"
        );
        let bad_flag = AuditInput {
            exclude_accounts: vec!["12".into()],
            ..AuditInput::default()
        };
        assert_eq!(
            said(bad_flag, ""),
            "--exclude-accounts: `12` is not a 12-digit AWS account ID"
        );
        let ous = AuditInput {
            ous: vec!["ou-1".into()],
            ..AuditInput::default()
        };
        assert!(said(ous, "").starts_with("--ous: an OU only narrows"));
        let e = said(AuditInput::default(), "[audit]\nous = [\"ou-1\"]\n");
        assert!(
            e.contains("rekey.toml [audit] ous: an OU only narrows"),
            "{e}"
        );
        assert!(e.contains("listed only with --org"), "{e}");
        let late = AuditInput {
            as_of: Some("soon".into()),
            ..AuditInput::default()
        };
        assert!(said(late, "").starts_with("--as-of: `soon` is not a date"));
        let role = AuditInput {
            accounts: vec!["111111111111".into()],
            ..AuditInput::default()
        };
        assert!(said(role, "").starts_with("--accounts/--accounts-file needs --role NAME"));
    }
}
