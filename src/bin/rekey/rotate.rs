//! `rekey rotate`: flags → library options; finish what earlier runs left
//! unfinished; then rotate each key the named profiles hold.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use aws_config::{Region, SdkConfig};
use futures::StreamExt;
use rekey::aws::{AwsOptions, load_config};
use rekey::awsfiles::Profiles;
use rekey::clock::{Clock, SystemClock};
use rekey::destination::{CredentialsFile, Destination, DestinationSpec};
use rekey::error::error_chain;
use rekey::journal::{Holder, Journal, OldKeyAction, SqliteJournal, default_path};
use rekey::policy::parse_days;
use rekey::rotation::RotateOptions;
use rekey::rotation::engine::{
    Engine, Mode, NoPrompt, Prompt, Remedy, Report, RotateError, Status, Target,
};
use rekey::rotation::recovery::destinations_of;
use rekey::rotation::steps::clients_for;
use rekey::rotation::targets::{KeyTarget, resolve};

use crate::GlobalArgs;

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Rotate the key this profile uses (repeatable). A role profile rotates its source_profile's key.
    #[arg(
        long = "profile",
        value_name = "NAME",
        required_unless_present_any = ["all_profiles", "abandon"]
    )]
    profiles: Vec<String>,
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
    /// What to do with the old key once the new one works.
    #[arg(long, value_name = "deactivate|delete", default_value = "deactivate")]
    old_key: OldKeyAction,
    /// At the two-key limit, delete the user's other *active* key to make room.
    #[arg(long)]
    delete_other_active: bool,
    /// How long to wait for IAM to accept the new key (e.g. 60s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    propagation_timeout: String,
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
    let targets = resolve(&profiles, &args.profiles, args.all_profiles)?;
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
        old_key: args.old_key,
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
    let engine = Engine {
        journal: &journal,
        clock: clock.as_ref(),
        opts: &opts,
        prompt,
        holder: Holder::current(run_id),
    };
    let aws = AwsOptions {
        endpoint_url: global.endpoint_url.clone(),
        region: global.region.clone(),
    };
    // Loaded once; each profile only changes region and endpoint.
    let base = load_config(None, &aws).await;
    if let Some(id) = args.abandon {
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

    // Finish or undo what an earlier run left (DESIGN.md invariant 2).
    let (mut reports, mut failures) =
        finish_unfinished(&engine, &journal, &profiles, &base, &aws, args.dry_run).await?;
    // Targets first, one by one: an MFA code may have to be asked for.
    let mut ready = Vec::new();
    for key in &targets {
        match build_target(key, &profiles, &base, &args, &aws).await {
            Ok(t) => ready.push(t),
            Err(e) => {
                failures += 1;
                eprintln!("rekey: error: {e:#}");
            }
        }
    }
    let mode = if args.dry_run {
        Mode::Plan
    } else {
        Mode::Apply
    };
    // Distinct keys belong to distinct users or accounts, and leases guard
    // each user, so they rotate side by side; -i asks one question at a time.
    let concurrency = if args.interactive {
        1
    } else {
        args.concurrency.max(1)
    };
    let engine = &engine;
    let outcomes: Vec<_> = futures::stream::iter(ready.iter())
        .map(|target| engine.rotate(target, mode))
        .buffered(concurrency)
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            Ok(report) => reports.push(report),
            Err(e) => {
                failures += 1;
                print_error(&e);
            }
        }
    }
    print_reports(&reports, args.output);
    Ok(ExitCode::from(if failures > 0 { 2 } else { 0 }))
}

/// Resumes every rotation the journal holds unfinished; returns their
/// reports and how many failed.
async fn finish_unfinished(
    engine: &Engine<'_>,
    journal: &SqliteJournal,
    profiles: &Profiles,
    base: &SdkConfig,
    aws: &AwsOptions,
    dry_run: bool,
) -> anyhow::Result<(Vec<Report>, usize)> {
    let (mut reports, mut failures) = (Vec::new(), 0);
    for unfinished in journal.unfinished()? {
        if dry_run {
            eprintln!(
                "rekey: rotation #{} of {} in account {} is unfinished; run without --dry-run to finish it",
                unfinished.id, unfinished.user_name, unfinished.account_id
            );
            continue;
        }
        let label = format!("rotation #{}", unfinished.id);
        let destinations = match destinations_of(&unfinished) {
            Ok(d) => d,
            Err(source) => {
                failures += 1;
                print_error(&RotateError::CannotResume {
                    id: unfinished.id,
                    user: unfinished.user_name.clone(),
                    account_id: unfinished.account_id.clone(),
                    source,
                });
                continue;
            }
        };
        let first_profile = unfinished.destinations.iter().find_map(|d| match d {
            DestinationSpec::SharedFile { profiles, .. } => profiles.first().cloned(),
            _ => None,
        });
        let target = Target {
            config: profile_config(base, profiles, first_profile.as_deref(), aws),
            label,
            destinations,
            iam_session: None,
        };
        match engine.resume(&unfinished, &target).await {
            Ok(report) => reports.push(report),
            // A live run is on it (e.g. verifying right now): its work, not
            // a failure of this run (issue 9 #6).
            Err(e) if e.is_lease_held() => {
                tracing::info!("left to the run working on it: {}", error_chain(&e));
            }
            Err(e) => {
                failures += 1;
                print_error(&e);
            }
        }
    }
    Ok((reports, failures))
}

/// `base` (loaded once for the run) with the region and endpoint of
/// `profile`, unless a flag or the environment already chose them.
fn profile_config(
    base: &SdkConfig,
    profiles: &Profiles,
    profile: Option<&str>,
    aws: &AwsOptions,
) -> SdkConfig {
    let Some(p) = profile.and_then(|name| profiles.get(name)) else {
        return base.clone();
    };
    let mut config = base.to_builder();
    let chosen =
        |flag: &Option<String>, env: &str| flag.is_some() || std::env::var_os(env).is_some();
    if !chosen(&aws.endpoint_url, "AWS_ENDPOINT_URL")
        && let Some(url) = p.endpoint_url()
    {
        config = config.endpoint_url(url);
    }
    if !chosen(&aws.region, "AWS_REGION")
        && let Some(region) = p.region()
    {
        config = config.region(Region::new(region.to_string()));
    }
    config.build()
}

async fn build_target(
    key: &KeyTarget,
    profiles: &Profiles,
    base: &SdkConfig,
    args: &RotateArgs,
    aws: &AwsOptions,
) -> anyhow::Result<Target> {
    let path = profiles.credentials().path().to_path_buf();
    let file = CredentialsFile::new(&path, key.profiles.clone());
    let mut destinations: Vec<Arc<dyn Destination>> = vec![Arc::new(file.clone())];
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
    let iam_session = match &key.mfa_serial {
        None => None,
        Some(serial) => {
            let code = match &args.mfa_code {
                Some(c) => c.clone(),
                None if std::io::stdin().is_terminal() => {
                    eprint!("MFA code for {serial} ({label}): ");
                    let _ = std::io::stderr().flush();
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    line.trim().to_string()
                }
                None => bail!(
                    "{label}: the profile has mfa_serial {serial}; give --mfa-code (no terminal to ask on)"
                ),
            };
            let old = file
                .current()?
                .with_context(|| format!("{label}: the profile holds no access key"))?;
            let sts = clients_for(&config, &old).sts;
            let out = sts
                .get_session_token()
                .serial_number(serial)
                .token_code(code)
                .duration_seconds(900)
                .send()
                .await
                .map_err(|e| rekey::error::CallError::from_sdk("sts:GetSessionToken", e))
                .with_context(|| format!("{label}: cannot start an MFA session with {serial}"))?;
            let c = out
                .credentials()
                .context("GetSessionToken returned no credentials")?;
            Some(aws_credential_types::Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "rekey-mfa-session",
            ))
        }
    };
    Ok(Target {
        destinations,
        config,
        iam_session,
        label,
    })
}

/// The error chain, then the flag or command to try: the library says what
/// is wrong, the CLI says what to type.
fn with_hint(e: &RotateError) -> String {
    let hint = match e.remedy() {
        Some(Remedy::AllowDeletingOtherActiveKey) => {
            "; pass --delete-other-active to let rekey delete it".to_string()
        }
        Some(Remedy::RunAgain) => "; run `rekey rotate` again to finish".to_string(),
        Some(Remedy::Abandon(id)) => format!(
            "; if its destination is truly gone, `rekey rotate --abandon {id}` deletes the key it made and closes it"
        ),
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
                    Status::Planned => "would",
                    Status::Declined => "declined",
                    Status::Undone => "undone",
                };
                println!("{}: [{tag}] {}", r.target, r.message);
            }
        }
    }
}
