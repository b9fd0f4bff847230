//! `rekey audit`: flags → [`AuditInput`] → the library's request and audit
//! → the rendered report and its exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rekey::report::views::exit_code;
use rekey::report::{Format, View, render, render_table};
use rekey::request::audit::{AuditOutcome, Progress};
use rekey::request::{AuditInput, AuditRequest};

use crate::scope::ScopeArgs;
use crate::{GlobalArgs, context, env, terminal_layout};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    scope: ScopeArgs,
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
            view: self.view,
            output: self.output,
            out: self.out,
            to_security_hub: self.to_security_hub,
            ..self.scope.input(global)
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
