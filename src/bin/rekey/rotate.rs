//! `rekey rotate`: flags → library jobs and options; `rotation::run` does
//! the rest (finishing what earlier runs left, then the jobs); this file
//! renders its report and picks the exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use aws_config::SdkConfig;
use rekey::aws::{AwsOptions, load_config};
use rekey::awsfiles::Profiles;
use rekey::clock::{Clock, SystemClock};
use rekey::config::{ConfigFile, RotateSettings, ServiceEntry};
use rekey::destination::{Binding, CredentialsFile, Destination, Reach, SecretRole};
use rekey::discovery::{Selection, check_account_ids, discover, read_accounts_file, validate};
use rekey::error::error_chain;
use rekey::journal::{Holder, OldKeyAction, SqliteJournal, default_path};
use rekey::policy::parse_days;
use rekey::rotation::access::Access;
use rekey::rotation::engine::{
    Engine, NoPrompt, Prompt, Remedy, Report, RotateError, Status, remedy_of,
};
use rekey::rotation::targets::{KeyTarget, resolve};
use rekey::rotation::{self, Job, Mode, RotateOptions, RunOptions, Subject, profile_config};

use crate::GlobalArgs;

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Rotate the key this profile uses (repeatable). A role profile rotates its source_profile's key.
    #[arg(
        long = "profile",
        value_name = "NAME",
        required_unless_present_any = ["all_profiles", "abandon", "user", "service"]
    )]
    profiles: Vec<String>,
    /// A service user's account (with --user and --to); with --service, an
    /// account to look for bound users in (repeatable), entered through --role.
    #[arg(long = "account", value_name = "ACCOUNT_ID", conflicts_with_all = ["all_profiles", "abandon"])]
    accounts: Vec<String>,
    /// Rotate every service user bound to destinations (by its
    /// rekey:destination tag or a [[service]] entry of --config) in the
    /// accounts selected as audit selects them: --org [--ou]
    /// [--exclude-account], --account/--accounts with --role, --profile.
    #[arg(long, conflicts_with_all = ["user", "to", "all_profiles", "abandon"])]
    service: bool,
    /// With --service: a file with one account ID per line (# comments).
    #[arg(long = "accounts", value_name = "FILE", requires = "service")]
    accounts_file: Option<PathBuf>,
    /// With --service: every ACTIVE account of the AWS Organization.
    #[arg(long, requires = "service")]
    org: bool,
    /// With --service --org: only accounts in this OU and below (repeatable).
    #[arg(long = "ou", value_name = "ID", requires = "org")]
    ous: Vec<String>,
    /// With --service: skip this account (repeatable).
    #[arg(long = "exclude-account", value_name = "ID", requires = "service")]
    exclude: Vec<String>,
    /// With --service: the settings file whose [[service]] entries bind users.
    #[arg(long, value_name = "FILE", env = "REKEY_CONFIG", requires = "service")]
    config: Option<PathBuf>,
    /// Rotate this IAM user's key (in --account) into the --to destinations;
    /// the key rotated is the one the first destination holds.
    #[arg(long, value_name = "NAME", requires_all = ["accounts", "to"], conflicts_with_all = ["profiles"])]
    user: Option<String>,
    /// Where the service user's key lives (repeatable):
    /// secretsmanager:NAME, secretsmanager:ARN, or ssm:/PATH (one JSON
    /// SecureString parameter, or PATH/access_key_id + PATH/secret_access_key).
    #[arg(long, value_name = "DESTINATION", requires = "user")]
    to: Vec<String>,
    /// Rotate every profile of the credentials file that holds static keys.
    #[arg(long)]
    all_profiles: bool,
    /// The shared credentials file (default: AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials).
    #[arg(long, value_name = "FILE")]
    credentials_file: Option<PathBuf>,
    /// Rotate only keys older than this (e.g. 90d), so a daily schedule rotates when due.
    #[arg(long, value_name = "DAYS")]
    max_age: Option<String>,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Show each key and ask before each step.
    #[arg(short, long)]
    interactive: bool,
    /// What to do with the old key once the new one works (default:
    /// deactivate for profiles; keep for --to, whose readers re-read on
    /// their own schedule).
    #[arg(long, value_name = "keep|deactivate|delete")]
    old_key: Option<OldKeyAction>,
    /// At the two-key limit, delete the user's other *active* key to make room.
    #[arg(long)]
    delete_other_active: bool,
    /// How long to wait for IAM to accept the new key (e.g. 60s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    propagation_timeout: String,
    /// Reach IAM through this role in the key's account (a name, or an
    /// ARN), assumed with your own credentials (the default chain); the
    /// profile's key is still the one rotated.
    #[arg(long, value_name = "NAME_OR_ARN", conflicts_with = "abandon")]
    role: Option<String>,
    /// The external ID the role's trust policy asks for.
    #[arg(long, value_name = "ID", requires = "role")]
    external_id: Option<String>,
    /// With --to or --service: reach a secretsmanager: destination named by
    /// an ARN of another account than its user's through this role in the
    /// secret's account (a name, or an ARN), assumed with your own
    /// credentials. Never taken from a user's tag.
    #[arg(long, value_name = "NAME_OR_ARN")]
    secret_role: Option<String>,
    /// The external ID the secret role's trust policy asks for.
    #[arg(long, value_name = "ID", requires = "secret_role")]
    secret_external_id: Option<String>,
    /// MFA code for profiles with mfa_serial (asked for on a terminal when absent).
    #[arg(long, value_name = "CODE")]
    mfa_code: Option<String>,
    /// The journal (default: $XDG_STATE_HOME/rekey/journal.sqlite3).
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// Keys rotated at once (each user is still rotated by one run at a time).
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,
    /// The way out for an unfinished rotation whose destination is gone:
    /// delete the keys rotation ID made (never the old key) and close it as
    /// undone. IAM is reached with --profile's key, else the default chain.
    #[arg(long, value_name = "ID", conflicts_with_all = ["all_profiles", "dry_run", "interactive"])]
    abandon: Option<i64>,
    /// text (default) or json.
    #[arg(long, short = 'o', default_value = "text", value_name = "FORMAT")]
    output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

/// Parses `60s`, `2m`, `90` (seconds).
fn parse_seconds(value: &str) -> anyhow::Result<std::time::Duration> {
    let v = value.trim();
    let (digits, factor) = match v.as_bytes().last() {
        Some(b's') => (&v[..v.len() - 1], 1),
        Some(b'm') => (&v[..v.len() - 1], 60),
        _ => (v, 1),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && n <= 3600 => Ok(std::time::Duration::from_secs(n * factor)),
        _ => bail!(
            "--propagation-timeout: `{value}` is not a duration between 1s and 60m (write e.g. 60s or 2m)"
        ),
    }
}

/// The environment as the library reads it, with --credentials-file in
/// place of AWS_SHARED_CREDENTIALS_FILE.
fn env_with(credentials_file: &Option<PathBuf>) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| match (name, credentials_file) {
        ("AWS_SHARED_CREDENTIALS_FILE", Some(p)) => Some(p.display().to_string()),
        _ => std::env::var(name).ok(),
    }
}

/// Asks on stderr, reads stdin.
struct TerminalPrompt;

impl Prompt for TerminalPrompt {
    fn confirm(&self, question: &str) -> bool {
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
    }
}

pub async fn run(args: RotateArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    // Everything that can be checked without AWS, first.
    let max_age_days = args
        .max_age
        .as_deref()
        .map(|v| parse_days("max-age", v))
        .transpose()?;
    let propagation_timeout = parse_seconds(&args.propagation_timeout)?;
    if args.interactive && !std::io::stdin().is_terminal() {
        bail!("--interactive needs a terminal to ask on");
    }
    let env = env_with(&args.credentials_file);
    let profiles = Profiles::load(&env)?;
    if !args.service && args.user.is_none() && !args.accounts.is_empty() {
        bail!("--account needs --user and --to, or --service");
    }
    if args.user.is_some() && args.accounts.len() > 1 {
        bail!("--user takes one --account");
    }
    if args.secret_role.is_some() && args.user.is_none() && !args.service {
        bail!("--secret-role reaches --to secrets or --service users' secrets; give one of them");
    }
    let secret_role = args.secret_role.as_ref().map(|role| SecretRole {
        role: role.clone(),
        external_id: args.secret_external_id.clone(),
    });
    let service = args.user.is_some() || args.service;
    let services = if args.service {
        service_selection(&args)?
    } else {
        None
    };
    let targets = if service {
        Vec::new()
    } else {
        resolve(&profiles, &args.profiles, args.all_profiles)?
    };
    // Parsed before anything is opened: bad input changes nothing.
    let to = args
        .to
        .iter()
        .map(|t| parse_to(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let journal_path = match &args.journal {
        Some(p) => p.clone(),
        None => default_path(&env).context(
            "cannot find a place for the journal: set --journal, XDG_STATE_HOME or HOME",
        )?,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // A dry run writes nothing anywhere: no journal file, directory or row
    // (issue 9 #8). It reads an existing journal to say what is unfinished.
    let journal = if args.dry_run {
        match SqliteJournal::open_read_only(&journal_path, clock.clone())? {
            Some(journal) => journal,
            None => SqliteJournal::in_memory(clock.clone())?,
        }
    } else {
        SqliteJournal::open(&journal_path, clock.clone())?
    };
    let run_id = format!("{}-{}", std::process::id(), clock.now().unix_timestamp());
    let opts = RotateOptions {
        old_key: args.old_key.unwrap_or(if service {
            OldKeyAction::Keep
        } else {
            OldKeyAction::Deactivate
        }),
        delete_other_active: args.delete_other_active,
        max_age_days,
        propagation_timeout,
        verify_successes: 3,
        // Long enough to cover a whole rotation, retries included.
        lease_ttl: time::Duration::minutes(15)
            .max(time::Duration::try_from(propagation_timeout * 3)? + time::Duration::minutes(5)),
        run_id: run_id.clone(),
    };
    let prompt: &dyn Prompt = if args.interactive {
        &TerminalPrompt
    } else {
        &NoPrompt
    };
    let aws = AwsOptions {
        endpoint_url: global.endpoint_url.clone(),
        region: global.region.clone(),
    };
    // Loaded once; each profile only changes region and endpoint.
    let base = load_config(None, &aws).await;
    if let Some(id) = args.abandon {
        let engine = Engine {
            journal: &journal,
            clock: clock.as_ref(),
            opts: &opts,
            prompt,
            holder: Holder::current(run_id),
            caller: &base,
        };
        let signer = args.profiles.first().map(String::as_str);
        let config = match signer {
            Some(p) => load_config(Some(p), &aws).await,
            None => base.clone(),
        };
        let report = engine
            .abandon(id, config)
            .await
            .map_err(|e| anyhow::anyhow!(with_hint(&e)))?;
        print_reports(&[report], args.output);
        return Ok(ExitCode::SUCCESS);
    }

    // Jobs first, one by one: an MFA code may have to be asked for.
    let mut failures = 0;
    let mut jobs = Vec::new();
    for key in &targets {
        match job_of(key, &profiles, &base, &args, &aws) {
            Ok(job) => jobs.push(job),
            Err(e) => {
                failures += 1;
                eprintln!("rekey: error: {e:#}");
            }
        }
    }
    if let Some((selection, entries, defaults)) = services {
        let discovery = discover(&selection, &aws).await?;
        let secret_role = secret_role.clone().or_else(|| defaults.secret_role());
        let (bound, errors) = rotation::bound::bound_jobs(
            discovery,
            &base,
            &entries,
            args.external_id.as_deref(),
            secret_role.as_ref(),
            args.concurrency.max(1),
        )
        .await;
        for e in &errors {
            failures += 1;
            eprintln!("rekey: error: {}", with_hint(e));
        }
        jobs.extend(bound);
    }
    if let (Some(account), Some(user)) = (args.accounts.first(), &args.user) {
        let destinations = to
            .iter()
            .map(|t| t.open(account, secret_role.as_ref(), Reach::With(&base), &base))
            .collect();
        let access = match &args.role {
            Some(role) => Access::Role {
                role: role.clone(),
                external_id: args.external_id.clone(),
            },
            None => Access::Caller,
        };
        match rotation::service::service_job(&base, account, user, access, destinations).await {
            Ok(job) => jobs.push(job),
            Err(e) => {
                failures += 1;
                eprintln!("rekey: error: {}", with_hint(&e));
            }
        }
    }
    let options = RunOptions {
        rotate: &opts,
        mode: if args.dry_run {
            Mode::Plan
        } else {
            Mode::Apply
        },
        // -i asks one question at a time.
        concurrency: if args.interactive {
            1
        } else {
            args.concurrency
        },
        clock: clock.as_ref(),
        prompt,
        holder: Holder::current(run_id.clone()),
        caller: &base,
        profiles: Some(&profiles),
        aws: &aws,
    };
    let done = rotation::run(&jobs, &journal, &options).await;
    for r in &done.unfinished {
        eprintln!(
            "rekey: rotation #{} of {} in account {} is unfinished; run without --dry-run to finish it",
            r.id, r.user_name, r.account_id
        );
    }
    for e in &done.left_to_live_runs {
        tracing::info!("left to the run working on it: {}", error_chain(e));
    }
    for e in &done.failures {
        print_error(e);
    }
    failures += done.failures.len();
    print_reports(&done.reports, args.output);
    Ok(ExitCode::from(if failures > 0 { 2 } else { 0 }))
}

/// What --service looks at: the accounts (as audit selects them), the
/// [[service]] entries of --config and its [rotate] defaults.
type Services = (Selection, Vec<ServiceEntry>, RotateSettings);

/// With --service: the accounts to look in, the [[service]] entries of
/// --config and its [rotate] defaults, checked before any AWS call.
fn service_selection(args: &RotateArgs) -> anyhow::Result<Option<Services>> {
    check_account_ids(&args.accounts, "--account")?;
    check_account_ids(&args.exclude, "--exclude-account")?;
    let mut accounts = args.accounts.clone();
    if let Some(path) = &args.accounts_file {
        accounts.extend(read_accounts_file(path)?);
    }
    let selection = Selection {
        profiles: args.profiles.clone(),
        accounts,
        org: args.org,
        ous: args.ous.clone(),
        exclude: args.exclude.clone(),
        role: args.role.clone(),
        external_id: args.external_id.clone(),
    };
    let profiles = Profiles::load(&|name| std::env::var(name).ok())?;
    validate(&selection, &profiles)?;
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    Ok(Some((selection, file.services, file.rotate)))
}

/// One `--to` destination: `secretsmanager:NAME|ARN` or `ssm:/PATH`.
fn parse_to(text: &str) -> anyhow::Result<Binding> {
    Binding::parse(text).ok_or_else(|| {
        anyhow::anyhow!(
            "--to `{text}`: expected secretsmanager:NAME, secretsmanager:ARN or ssm:/PATH"
        )
    })
}

/// A job from one key of the credentials file: its profiles are its
/// destinations, and IAM is reached through --role, an MFA session when the
/// profile names a device, else the key itself.
fn job_of(
    key: &KeyTarget,
    profiles: &Profiles,
    base: &SdkConfig,
    args: &RotateArgs,
    aws: &AwsOptions,
) -> anyhow::Result<Job> {
    let path = profiles.credentials().path().to_path_buf();
    let mut destinations: Vec<Arc<dyn Destination>> =
        vec![Arc::new(CredentialsFile::new(&path, key.profiles.clone()))];
    if !key.config_profiles.is_empty() {
        let config_path = profiles.config().path();
        destinations.push(Arc::new(CredentialsFile::config(
            config_path,
            key.config_profiles.clone(),
        )));
    }
    let config = profile_config(base, profiles, Some(&key.holder), aws);
    let all: Vec<&String> = key.profiles.iter().chain(&key.config_profiles).collect();
    let label = format!(
        "profile{} {}",
        if all.len() > 1 { "s" } else { "" },
        all.iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let access = match (&args.role, &key.mfa_serial) {
        (Some(role), _) => Access::Role {
            role: role.clone(),
            external_id: args.external_id.clone(),
        },
        (None, Some(serial)) => Access::MfaSession {
            serial: serial.clone(),
            code: mfa_code(args, serial, &label)?,
        },
        (None, None) => Access::OldKey,
    };
    Ok(Job::new(
        Subject::OfKey,
        access,
        destinations,
        config,
        label,
    ))
}

/// The MFA code: --mfa-code, else asked for on the terminal.
fn mfa_code(args: &RotateArgs, serial: &str, label: &str) -> anyhow::Result<String> {
    match &args.mfa_code {
        Some(c) => Ok(c.clone()),
        None if std::io::stdin().is_terminal() => {
            eprint!("MFA code for {serial} ({label}): ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            Ok(line.trim().to_string())
        }
        None => bail!(
            "{label}: the profile has mfa_serial {serial}; give --mfa-code (no terminal to ask on)"
        ),
    }
}

/// The error chain, then the flag or command to try: the library says what
/// is wrong, the CLI says what to type.
fn with_hint(e: &(dyn std::error::Error + 'static)) -> String {
    let hint = match remedy_of(e) {
        Some(Remedy::AllowDeletingOtherActiveKey) => {
            "; pass --delete-other-active to let rekey delete it".to_string()
        }
        Some(Remedy::RunAgain) => "; run `rekey rotate` again to finish".to_string(),
        Some(Remedy::Abandon(id)) => format!(
            "; if its destination is truly gone, `rekey rotate --abandon {id}` deletes the key it made and closes it"
        ),
        Some(Remedy::SecretRole) => {
            "; pass --secret-role ROLE (a role in the secret's account that may read and write it; secret_role in rekey.toml) to reach it there".to_string()
        }
        None => String::new(),
    };
    format!("{}{hint}", error_chain(e))
}

fn print_error(e: &RotateError) {
    eprintln!("rekey: error: {}", with_hint(e));
}

fn print_reports(reports: &[Report], format: OutputFormat) {
    match format {
        OutputFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(reports).expect("reports serialize")
            );
        }
        OutputFormat::Text => {
            for r in reports {
                let tag = match r.status {
                    Status::Rotated => "rotated",
                    Status::NotDue => "not due",
                    Status::AlreadyRotated => "already rotated",
                    Status::Planned => "would",
                    Status::Declined => "declined",
                    Status::Undone => "undone",
                };
                println!("{}: [{tag}] {}", r.target, r.message);
            }
        }
    }
}
