//! `rekey rotate`: flags → library jobs and options; `rotation::run` does
//! the rest (finishing what earlier runs left, then the jobs); this file
//! renders its report and picks the exit code.
//!
//! Three ways to say what to rotate: profiles of the shared credentials
//! file (`--profile`, `--all-profiles`), one service user (`--account
//! --user --to`), or every bound service user (`--service`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use rekey::aws::{AwsOptions, Deps, load_config};
use rekey::awsfiles::Profiles;
use rekey::clock::{Clock, SystemClock};
use rekey::config::{ConfigFile, MaxAges, RotateSettings, ServiceEntry};
use rekey::destination::{Binding, SecretRole};
use rekey::discovery::{Selection, check_account_ids, discover, read_accounts_file, validate};
use rekey::error::{InputError, error_chain};
use rekey::journal::{Holder, OldKeyAction, SqliteJournal, default_path};
use rekey::policy::parse_days;
use rekey::rotation::access::Access;
use rekey::rotation::engine::{Engine, Prompt, Remedy, Report, Status, remedy_of};
use rekey::rotation::service::ServiceError;
use rekey::rotation::targets::{KeyTarget, TargetError, resolve};
use rekey::rotation::{self, Failure, Job, JobSpec, Mode, RotateOptions, RunOptions, RunReport};

use crate::GlobalArgs;

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Rotate the key this profile uses (repeatable). A role profile rotates its source_profile's key.
    #[arg(long = "profile", value_name = "NAME")]
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

/// The person at the keyboard: asked on stderr before each step (with
/// -i), answering on stdin; shown what a rotation waits for when stderr is
/// a terminal (a log or a pipe gets none of it).
struct Terminal {
    asks: bool,
    shows: bool,
}

impl Prompt for Terminal {
    fn confirm(&self, question: &str) -> bool {
        if !self.asks {
            return true;
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
    }

    fn waiting(&self, line: &str) {
        if self.shows {
            eprintln!("{line}");
        }
    }
}

/// What `rekey rotate` without something to rotate says.
const MODES: &str = "say what to rotate: --profile NAME (repeatable) or --all-profiles for keys in the shared credentials file; --account ID --user NAME --to DESTINATION for one service user's key; or --service for every bound service user (see rekey rotate --help)";

pub async fn run(args: RotateArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    // Everything that can be checked without AWS, first.
    if !args.service && args.user.is_none() && !args.accounts.is_empty() {
        bail!("--account needs --user and --to, or --service");
    }
    let rotates_profiles = !args.profiles.is_empty() || args.all_profiles;
    if !rotates_profiles && args.user.is_none() && !args.service && args.abandon.is_none() {
        bail!(MODES);
    }
    if args.concurrency == 0 {
        return Err(InputError::ZeroCount {
            what: "concurrency",
        }
        .into());
    }
    check_account_ids(&args.accounts, "--account")?;
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
    let profiles = Arc::new(Profiles::load(&env)?);
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
    let journal_path = match &args.journal {
        Some(p) => p.clone(),
        None => default_path(&env).context(
            "cannot find a place for the journal: set --journal, XDG_STATE_HOME or HOME",
        )?,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let targets = if service {
        Vec::new()
    } else {
        match resolve(&profiles, &args.profiles, args.all_profiles) {
            Ok(targets) => targets,
            Err(e) => {
                let left = left_unfinished(&e, &journal_path, &clock).await;
                bail!("{e}{left}");
            }
        }
    };
    // Parsed before anything is opened: bad input changes nothing.
    let to = args
        .to
        .iter()
        .map(|t| parse_to(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
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
    let terminal = Terminal {
        asks: args.interactive,
        shows: std::io::stderr().is_terminal(),
    };
    let prompt: &dyn Prompt = &terminal;
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
        };
        let signer = args.profiles.first().map(String::as_str);
        let config = match signer {
            Some(p) => load_config(Some(p), &aws).await,
            None => base.clone(),
        };
        return match engine
            .abandon(id, &Deps::new(config, aws.clone(), None))
            .await
        {
            Ok(report) => {
                print_reports(&[report], args.output);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                let label = format!("rotation #{id}");
                let failure =
                    Failure::new(Report::failed(&label, Status::Failed, String::new()), e);
                if args.output == OutputFormat::Json {
                    print_json(&[failed_report(&failure)]);
                }
                Err(anyhow::anyhow!(with_hint(&failure.error)))
            }
        };
    }

    let deps = Deps::new(base, aws.clone(), Some(profiles.clone()));
    // Jobs first, one by one: an MFA code may have to be asked for. What
    // gets no job is reported with the rest, and fails the run.
    let mut not_started: Vec<Report> = Vec::new();
    let mut jobs = Vec::new();
    for key in &targets {
        match job_of(key, &profiles, &deps, &args).await {
            Ok(job) => jobs.push(job),
            Err(e) => {
                eprintln!("rekey: error: {e:#}");
                not_started.push(Report::failed(
                    &label_of(key),
                    Status::Failed,
                    format!("{e:#}"),
                ));
            }
        }
    }
    let mut none_bound_in = None;
    if let Some(services) = services {
        let discovery = discover(&services.selection, &aws).await?;
        let accounts = discovery.targets.len();
        let secret_role = secret_role
            .clone()
            .or_else(|| services.defaults.secret_role());
        let (bound, errors) = rotation::bound::bound_jobs(
            discovery,
            &deps,
            &services.entries,
            args.external_id.as_deref(),
            secret_role.as_ref(),
            args.concurrency,
        )
        .await;
        for e in &errors {
            let message = with_hint(e);
            eprintln!("rekey: error: {message}");
            not_started.push(Report {
                message,
                ..e.report()
            });
        }
        if bound.is_empty() && errors.iter().all(|e| e.is_account_wide()) {
            let read = accounts - errors.len();
            none_bound_in = (read > 0).then_some(read);
        }
        // --max-age wins; else rekey.toml's max_age for the account.
        jobs.extend(bound.into_iter().map(|job| {
            let days =
                max_age_days.or_else(|| services.max_ages.for_account(job.subject.account_id()));
            job.with_max_age(days)
        }));
    }
    if let (Some(account), Some(user)) = (args.accounts.first(), &args.user) {
        let access = match &args.role {
            Some(role) => Access::Role {
                role: role.clone(),
                external_id: args.external_id.clone(),
            },
            None => Access::Caller,
        };
        let job =
            rotation::service::service_job(&deps, account, user, access, &to, secret_role.as_ref());
        match job.await {
            Ok(job) => jobs.push(job),
            Err(e) => {
                let message = with_hint(&e);
                eprintln!("rekey: error: {message}");
                not_started.push(Report {
                    account_id: Some(account.clone()),
                    user_name: Some(user.clone()),
                    ..Report::failed(
                        &format!("user {user} in account {account}"),
                        e.status(),
                        message,
                    )
                });
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
        deps: &deps,
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
    for f in &done.failures {
        eprintln!("rekey: error: {}", with_hint(&f.error));
    }
    let failed = not_started.len() + done.failures.len();
    match args.output {
        OutputFormat::Json => print_json(&every_key(&done, not_started)),
        OutputFormat::Text => print_reports(&done.reports, args.output),
    }
    if let Some(n) = none_bound_in {
        let line = format!(
            "no bound service users in {n} account{}",
            if n == 1 { "" } else { "s" }
        );
        match args.output {
            OutputFormat::Json => eprintln!("rekey: {line}"),
            OutputFormat::Text => println!("{line}"),
        }
    }
    Ok(ExitCode::from(if failed > 0 { 2 } else { 0 }))
}

/// Every key, user and rotation the run considered, for `-o json` (issue
/// 15 #4): unfinished rotations a dry run left alone, what went through,
/// then what got no job, then what failed — each with its status and why.
fn every_key(done: &RunReport, not_started: Vec<Report>) -> Vec<Report> {
    let unfinished = done.unfinished.iter().map(|r| Report {
        account_id: Some(r.account_id.clone()),
        user_name: Some(r.user_name.clone()),
        old_key_id: Some(r.old_key_id.clone()),
        new_key_id: r.new_key_id.clone(),
        rotation_id: Some(r.id),
        ..Report::failed(
            &format!("rotation #{}", r.id),
            Status::Planned,
            format!(
                "rotation #{} of {} in account {} is unfinished; a run without --dry-run finishes or undoes it first",
                r.id, r.user_name, r.account_id
            ),
        )
    });
    unfinished
        .chain(done.reports.iter().cloned())
        .chain(not_started)
        .chain(done.failures.iter().map(failed_report))
        .collect()
}

/// A failure as the report shows it: what was known, and the error with
/// what to do about it.
fn failed_report(f: &Failure) -> Report {
    Report {
        message: with_hint(&f.error),
        ..f.report.clone()
    }
}

/// The unfinished rotations that delivered to the profile `e` did not find,
/// as a hint: a file moved away mid-rotation leaves its rotation to be
/// abandoned (issue 15 #3). Read only; nothing if there is no journal.
async fn left_unfinished(
    e: &TargetError,
    journal: &std::path::Path,
    clock: &Arc<dyn Clock>,
) -> String {
    let Some(profile) = e.missing_profile() else {
        return String::new();
    };
    let Ok(Some(journal)) = SqliteJournal::open_read_only(journal, clock.clone()) else {
        return String::new();
    };
    let Ok(left) = rotation::unfinished_delivered_to(&journal, profile).await else {
        return String::new();
    };
    left.iter()
        .map(|r| {
            format!(
                "; rotation #{} of {} in account {} delivered a new key to profile {profile} and is unfinished: put its file back and run again, or if the file is gone for good, `rekey rotate --abandon {}` deletes the key it made and closes it",
                r.id, r.user_name, r.account_id, r.id
            )
        })
        .collect()
}

/// What --service looks at: the accounts (as audit selects them), the
/// [[service]] entries of --config, its [rotate] defaults and the
/// `max_age` it sets.
struct Services {
    selection: Selection,
    entries: Vec<ServiceEntry>,
    defaults: RotateSettings,
    max_ages: MaxAges,
}

/// With --service: the accounts to look in, the [[service]] entries of
/// --config, its [rotate] defaults and max ages, checked before any AWS
/// call.
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
    let (file, max_ages) = match &args.config {
        Some(path) => {
            let file = ConfigFile::load(path)?;
            let max_ages = file.max_ages(path)?;
            (file, max_ages)
        }
        None => (ConfigFile::default(), MaxAges::default()),
    };
    Ok(Some(Services {
        selection,
        entries: file.services,
        defaults: file.rotate,
        max_ages,
    }))
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
/// profile names a device (its code kept in `deps`), else the key itself.
async fn job_of(
    key: &KeyTarget,
    profiles: &Profiles,
    deps: &Deps,
    args: &RotateArgs,
) -> anyhow::Result<Job> {
    let label = label_of(key);
    let access = match (&args.role, &key.mfa_serial) {
        (Some(role), _) => Access::Role {
            role: role.clone(),
            external_id: args.external_id.clone(),
        },
        (None, Some(serial)) => {
            // Asked once per device: every key whose profile names it
            // opens its session with that code.
            if deps.mfa_code(serial).is_none() {
                let code = mfa_code(args, serial, &label)?;
                deps.remember_mfa_code(serial, code.into());
            }
            Access::MfaSession {
                serial: serial.clone(),
            }
        }
        (None, None) => Access::OldKey,
    };
    let spec = JobSpec::of_key(key, profiles, access, label);
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
    let remedy = match e.downcast_ref::<ServiceError>() {
        Some(e) => e.remedy(),
        None => remedy_of(e),
    };
    let hint = match remedy {
        Some(Remedy::AllowDeletingOtherActiveKey) => {
            "; pass --delete-other-active to let rekey delete it".to_string()
        }
        Some(Remedy::RunAgain) => "; run `rekey rotate` again to finish".to_string(),
        Some(Remedy::Abandon(id)) => format!(
            "; if its destination is truly gone, `rekey rotate --abandon {id}` deletes the key it made and closes it"
        ),
        Some(Remedy::Role) => {
            "; pass --role NAME_OR_ARN (a role in the user's account that may manage its keys, e.g. OrganizationAccountAccessRole) to reach it".to_string()
        }
        Some(Remedy::SecretRole) => {
            "; pass --secret-role ROLE (a role in the secret's account that may read and write it; secret_role in rekey.toml) to reach it there".to_string()
        }
        None => String::new(),
    };
    format!("{}{hint}", error_chain(e))
}

fn print_json(reports: &[Report]) {
    println!(
        "{}",
        serde_json::to_string_pretty(reports).expect("reports serialize")
    );
}

fn print_reports(reports: &[Report], format: OutputFormat) {
    match format {
        OutputFormat::Json => print_json(reports),
        OutputFormat::Text => {
            for r in reports {
                let tag = match r.status {
                    Status::Rotated => "rotated",
                    Status::NotDue => "not due",
                    Status::AlreadyRotated => "already rotated",
                    Status::Planned => "would",
                    Status::Declined => "declined",
                    Status::Undone => "undone",
                    Status::Refused => "refused",
                    Status::Failed => "failed",
                };
                println!("{}: [{tag}] {}", r.target, r.message);
            }
        }
    }
}
