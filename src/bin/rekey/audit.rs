//! `rekey audit`: flags → library options → audit → rendered report.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use rekey::audit::{AuditOptions, run as run_audit};
use rekey::aws::AwsOptions;
use rekey::awsfiles::Profiles;
use rekey::config::{ConfigFile, Days, Policies, PolicySettings};
use rekey::discovery::{Selection, check_account_ids, discover, read_accounts_file, validate};
use rekey::error::InputError;
use rekey::inventory::Source;
use rekey::policy::parse_as_of;
use rekey::report::views::exit_code;
use rekey::report::{Format, View, format_for_path, render, render_table};
use time::OffsetDateTime;

use crate::{GlobalArgs, terminal_layout};

/// Default number of accounts audited at once, chosen from the latency runs
/// of `scripts/bench` (README, "Concurrency"; issue 9, item 13).
const DEFAULT_CONCURRENCY: usize = 32;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Audit the account of this named profile (repeatable).
    #[arg(long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// Audit this account, entered through --role (repeatable).
    #[arg(long = "account", value_name = "ID")]
    accounts: Vec<String>,
    /// File with one account ID per line (# comments), entered through --role.
    #[arg(long = "accounts", value_name = "FILE")]
    accounts_file: Option<PathBuf>,
    /// Audit every ACTIVE account of the AWS Organization.
    #[arg(long)]
    org: bool,
    /// With --org: only accounts in this OU and the OUs below it (repeatable).
    #[arg(long = "ou", value_name = "ID")]
    ous: Vec<String>,
    /// Skip this account (repeatable).
    #[arg(long = "exclude-account", value_name = "ID")]
    exclude: Vec<String>,
    /// Role assumed in each account (default with --org: OrganizationAccountAccessRole).
    #[arg(long, value_name = "NAME")]
    role: Option<String>,
    /// External ID passed to AssumeRole.
    #[arg(long, value_name = "X")]
    external_id: Option<String>,
    /// Where users and keys come from: the credential report (fewest calls) or per-user API calls.
    #[arg(long, value_name = "report|api")]
    source: Option<Source>,
    /// Accounts audited at once.
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// An active key older than this is too old (default 90d).
    #[arg(long, value_name = "DAYS")]
    max_age: Option<String>,
    /// An active key unused this long is unused (default 45d).
    #[arg(long, value_name = "DAYS")]
    unused: Option<String>,
    /// Users with this tag set to `true` are exempt (default rekey:exempt).
    #[arg(long, value_name = "KEY")]
    exempt_tag: Option<String>,
    /// Members of this group are exempt (repeatable).
    #[arg(long = "exempt-group", value_name = "GROUP")]
    exempt_groups: Vec<String>,
    /// Users whose name or path+name match this glob are exempt (repeatable).
    #[arg(long = "exempt-user", value_name = "GLOB")]
    exempt_users: Vec<String>,
    /// Judge as of this moment: YYYY-MM-DD, RFC 3339, +Nd or -Nd.
    // `--as-of -30d` as two words: the value starts with `-` (issue 10 #2).
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    as_of: Option<String>,
    /// Settings file (rekey.toml); flags win over it.
    #[arg(long, value_name = "FILE", env = "REKEY_CONFIG")]
    config: Option<PathBuf>,
    /// keys (rekey findings, CIS 1.14), config (AWS Config access-keys-rotated), trusted-advisor.
    #[arg(long, default_value = "keys", value_name = "VIEW")]
    view: View,
    /// table (default on a terminal), json (default otherwise), csv, markdown, html, ocsf.
    #[arg(long, short = 'o', value_name = "FORMAT")]
    output: Option<Format>,
    /// Also import the findings into each account's AWS Security Hub (ASFF).
    #[arg(long)]
    to_security_hub: bool,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Everything the flags and the file decide, checked before any AWS call.
struct Resolved {
    selection: Selection,
    options: AuditOptions,
    format: Format,
}

fn resolve(args: &AuditArgs, global: &GlobalArgs) -> Result<Resolved, InputError> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let flags = PolicySettings {
        max_age: args.max_age.clone().map(Days::Text),
        unused: args.unused.clone().map(Days::Text),
        exempt_tag: args.exempt_tag.clone(),
        exempt_groups: non_empty(&args.exempt_groups),
        exempt_users: non_empty(&args.exempt_users),
    };
    let policies = Policies::resolve(&file, &flags)?;
    // Judge at the exact moment (a key made 120 days ago to the second is
    // 120 days old); stamp the report in whole seconds.
    let now = OffsetDateTime::now_utc();
    let as_of = match &args.as_of {
        Some(v) => parse_as_of(v, now)?,
        None => now,
    };
    let a = &file.audit;
    let selecting = !args.profiles.is_empty()
        || !args.accounts.is_empty()
        || args.accounts_file.is_some()
        || args.org;
    let mut selection = if selecting {
        Selection {
            profiles: args.profiles.clone(),
            accounts: args.accounts.clone(),
            org: args.org,
            ..Selection::default()
        }
    } else {
        Selection {
            profiles: a.profiles.clone().unwrap_or_default(),
            accounts: a.accounts.clone().unwrap_or_default(),
            org: a.org.unwrap_or(false),
            ..Selection::default()
        }
    };
    let accounts_file = if selecting {
        args.accounts_file.clone()
    } else {
        a.accounts_file.clone()
    };
    // Each error names what the user wrote: the flag, or the file's key
    // (issue 10 #4).
    let in_file = |key: &str| {
        let path = args.config.as_deref().unwrap_or(Path::new("rekey.toml"));
        format!("{} [audit] {key}", path.display())
    };
    if selecting {
        check_account_ids(&selection.accounts, "--account")?;
    } else {
        check_account_ids(&selection.accounts, &in_file("accounts"))?;
    }
    if let Some(path) = accounts_file {
        selection.accounts.extend(read_accounts_file(&path)?);
    }
    let ous_origin = match non_empty(&args.ous) {
        Some(ous) => {
            selection.ous = ous;
            "--ou".to_string()
        }
        None => {
            selection.ous = a.ous.clone().unwrap_or_default();
            in_file("ous")
        }
    };
    if !selection.ous.is_empty() && !selection.org {
        return Err(InputError::OusWithoutOrg {
            origin: ous_origin,
            org: "--org",
        });
    }
    match non_empty(&args.exclude) {
        Some(ids) => {
            check_account_ids(&ids, "--exclude-account")?;
            selection.exclude = ids;
        }
        None => {
            selection.exclude = a.exclude_accounts.clone().unwrap_or_default();
            check_account_ids(&selection.exclude, &in_file("exclude_accounts"))?;
        }
    }
    selection.role = args.role.clone().or_else(|| a.role.clone());
    selection.external_id = args.external_id.clone().or_else(|| a.external_id.clone());
    let profiles = Profiles::load(&|name| std::env::var(name).ok())?;
    validate(&selection, &profiles)?;
    let concurrency = args
        .concurrency
        .or(a.concurrency)
        .unwrap_or(DEFAULT_CONCURRENCY);
    if concurrency == 0 {
        return Err(InputError::ZeroCount {
            what: "concurrency",
        });
    }
    let format = args
        .output
        .or_else(|| args.out.as_deref().and_then(format_for_path))
        .unwrap_or(if std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        });
    Ok(Resolved {
        selection,
        format,
        options: AuditOptions {
            source: args.source.or(a.source).unwrap_or_default(),
            concurrency,
            as_of,
            now: now.replace_nanosecond(0).expect("0 is a valid nanosecond"),
            policies,
            aws: AwsOptions {
                endpoint_url: global.endpoint_url.clone(),
                region: global.region.clone(),
            },
        },
    })
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

pub async fn run(args: AuditArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let Resolved {
        selection,
        options,
        format,
    } = resolve(&args, global)?;
    // Before any AWS call: an audit of a thousand accounts must not be lost
    // to a typo in the report's path (issue 9, item 11).
    if let Some(path) = &args.out {
        rekey::atomic::check_writable(path).with_context(|| report_error(path))?;
    }
    let discovery = discover(&selection, &options.aws).await?;
    let show_progress =
        !args.no_progress && std::io::stderr().is_terminal() && discovery.targets.len() > 3;
    let bar = show_progress.then(|| {
        let bar = indicatif::ProgressBar::new(discovery.targets.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} auditing accounts {pos}/{len} {wide_bar} {elapsed}",
            )
            .expect("static template"),
        );
        // Keep the spinner and clock moving while a slow account works.
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let tick = || {
        if let Some(b) = &bar {
            b.inc(1);
        }
    };
    // Taken before the audit consumes the discovery: each account's
    // findings are sent with its own credentials (issue 6).
    let senders = args
        .to_security_hub
        .then(|| rekey::securityhub::Senders::from_discovery(&discovery));
    let mut report = run_audit(discovery, &options, &tick).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(senders) = &senders {
        let published = rekey::securityhub::publish(&report, senders, options.concurrency).await;
        for p in &published {
            eprintln!("rekey: {}", rekey::securityhub::summary_line(p));
        }
        rekey::securityhub::record(&mut report, &published);
    }
    let text = match (format, &args.out) {
        (Format::Table, None) => render_table(&report, args.view, terminal_layout()),
        _ => render(&report, args.view, format),
    };
    match &args.out {
        Some(path) => write_report(path, &text).with_context(|| report_error(path))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::from(exit_code(&report, args.view)))
}

fn report_error(path: &std::path::Path) -> String {
    format!("cannot write the report to {}", path.display())
}

/// Atomically, so a reader never sees half a report.
fn write_report(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    rekey::atomic::write(path, text.as_bytes(), 0o644, None)
}
