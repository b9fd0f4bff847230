//! `rekey audit`: flags → [`AuditInput`] → the library's request and audit
//! → the rendered report and its exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rekey::inventory::Source;
use rekey::report::views::exit_code;
use rekey::report::{Format, View, render, render_table};
use rekey::request::audit::{AuditOutcome, Progress};
use rekey::request::{AuditInput, AuditRequest};

use crate::{GlobalArgs, context, env, terminal_layout};

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
    /// Accounts audited at once (default 32).
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

impl AuditArgs {
    /// The flags as given, for the library to decide the rest.
    fn input(self, global: &GlobalArgs) -> AuditInput {
        AuditInput {
            profiles: self.profiles,
            accounts: self.accounts,
            accounts_file: self.accounts_file,
            org: self.org,
            ous: self.ous,
            exclude_accounts: self.exclude,
            role: self.role,
            external_id: self.external_id,
            source: self.source,
            concurrency: self.concurrency,
            max_age: self.max_age,
            unused: self.unused,
            exempt_tag: self.exempt_tag,
            exempt_groups: self.exempt_groups,
            exempt_users: self.exempt_users,
            as_of: self.as_of,
            config: self.config,
            view: self.view,
            output: self.output,
            out: self.out,
            to_security_hub: self.to_security_hub,
            endpoint_url: global.endpoint_url.clone(),
            region: global.region.clone(),
        }
    }
}

/// A progress bar on stderr, for an audit of more than three accounts
/// where someone watches (and not with --no-progress).
struct Bar {
    shown: bool,
    bar: std::sync::OnceLock<indicatif::ProgressBar>,
}

impl Progress for Bar {
    fn start(&self, accounts: usize) {
        if !self.shown || accounts <= 3 {
            return;
        }
        let bar = indicatif::ProgressBar::new(accounts as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} auditing accounts {pos}/{len} {wide_bar} {elapsed}",
            )
            .expect("static template"),
        );
        // Keep the spinner and clock moving while a slow account works.
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let _ = self.bar.set(bar);
    }

    fn tick(&self) {
        if let Some(b) = self.bar.get() {
            b.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }
}

pub async fn run(args: AuditArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let no_progress = args.no_progress;
    let request = AuditRequest::from_input(&args.input(global), &context(&env))?;
    // Before any AWS call: an audit of a thousand accounts must not be lost
    // to a typo in the report's path (issue 9, item 11).
    if let Some(path) = &request.out {
        rekey::atomic::check_writable(path).with_context(|| report_error(path))?;
    }
    let bar = Bar {
        shown: !no_progress && std::io::stderr().is_terminal(),
        bar: std::sync::OnceLock::new(),
    };
    let AuditOutcome { report, published } = rekey::request::audit::run(&request, &bar).await?;
    for p in &published {
        eprintln!("rekey: {}", rekey::securityhub::summary_line(p));
    }
    let text = match (request.format, &request.out) {
        (Format::Table, None) => render_table(&report, request.view, terminal_layout()),
        (format, _) => render(&report, request.view, format),
    };
    match &request.out {
        Some(path) => write_report(path, &text).with_context(|| report_error(path))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::from(exit_code(&report, request.view)))
}
fn report_error(path: &std::path::Path) -> String {
    format!("cannot write the report to {}", path.display())
}

/// Atomically, so a reader never sees half a report.
fn write_report(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    rekey::atomic::write(path, text.as_bytes(), 0o644, None)
}
