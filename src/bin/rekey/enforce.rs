//! `rekey enforce`: flags → [`EnforceInput`] → the library's request and
//! run → the plan (and what became of it) as a table, JSON or Markdown,
//! and its exit code: 0 applied or nothing due, 1 an error before
//! anything ran, 2 some action failed or was refused, 3 the run stopped at
//! `--max-failure-rate`, 4 all went well but a notification was not
//! delivered (owed to the next run).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use rekey::clock::SystemClock;
use rekey::report::Format;
use rekey::request::AuditInput;
use rekey::request::enforce::{EnforceInput, EnforceRequest};

use crate::scope::ScopeArgs;
use crate::{GlobalArgs, context, env};

#[derive(Debug, clap::Args)]
pub struct EnforceArgs {
    #[command(flatten)]
    scope: ScopeArgs,
    /// table (default on a terminal), json (default otherwise), markdown.
    #[arg(long, short = 'o', value_name = "FORMAT")]
    output: Option<Format>,
    /// Carry the plan out.
    #[arg(long)]
    apply: bool,
    /// Write the plan (JSON, rekey.plan/1) to this file, for review.
    #[arg(long, value_name = "FILE")]
    plan_out: Option<PathBuf>,
    /// Carry out exactly this reviewed plan file, each action re-checked.
    #[arg(long, value_name = "FILE")]
    apply_plan: Option<PathBuf>,
    /// Refuse a plan file older than this (default 24h).
    #[arg(long, value_name = "SPAN")]
    plan_max_age: Option<String>,
    /// Only this stage: warn, rotate, retire, still_in_use, deactivate, delete.
    #[arg(long, value_name = "STAGE")]
    only: Option<String>,
    /// Canary account: its actions run first, the rest only if they all succeed (repeatable).
    #[arg(long = "canary", value_name = "ID")]
    canary: Vec<String>,
    /// At most this many actions this run, oldest keys first.
    #[arg(long, value_name = "N")]
    max_actions: Option<usize>,
    /// Stop once more than P% of the actions so far failed (after at least 5).
    #[arg(long, value_name = "P")]
    max_failure_rate: Option<f64>,
    /// Make a key rekey deactivated active again, within its recovery window.
    #[arg(long, value_name = "KEY_ID")]
    reactivate: Option<String>,
    /// The journal: a file, sqlite:PATH, or dynamodb:TABLE[?region=R] shared by
    /// many runners (default $XDG_STATE_HOME/rekey/journal.sqlite3).
    #[arg(long, value_name = "JOURNAL", env = "REKEY_JOURNAL")]
    journal: Option<PathBuf>,
    /// A role to assume for a DynamoDB journal kept in another account.
    #[arg(long, value_name = "ARN")]
    journal_role: Option<String>,
    /// The run's name in the journal (default PID-UNIXTIME).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    #[command(flatten)]
    notify: crate::notify::NotifyFlags,
}

impl EnforceArgs {
    fn input(self, global: &GlobalArgs) -> EnforceInput {
        EnforceInput {
            scope: AuditInput {
                output: self.output,
                ..self.scope.input(global)
            },
            apply: self.apply,
            plan_out: self.plan_out,
            apply_plan: self.apply_plan,
            plan_max_age: self.plan_max_age,
            only: self.only,
            canary: self.canary,
            max_actions: self.max_actions,
            max_failure_rate: self.max_failure_rate,
            reactivate: self.reactivate,
            journal: self.journal,
            journal_role: self.journal_role,
            run_id: self.run_id,
            notify: self.notify.input(),
            notify_always: false,
        }
    }
}

pub async fn run(args: EnforceArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let request = match EnforceRequest::from_input(&args.input(global), &context(&env)) {
        Ok(r) => r,
        Err(e) => return Ok(before_anything(&anyhow::Error::new(e))),
    };
    let outcome = match rekey::enforce::run::run(&request, Arc::new(SystemClock)).await {
        Ok(o) => o,
        Err(e) => return Ok(before_anything(&anyhow::Error::new(e))),
    };
    let text = match request.audit.format {
        Format::Json => {
            let value = match outcome.applied {
                true => serde_json::to_string_pretty(&outcome)?,
                false => serde_json::to_string_pretty(&outcome.plan)?,
            };
            format!("{value}\n")
        }
        Format::Markdown => rekey::enforce::words::render(&outcome, true),
        _ => rekey::enforce::words::render(&outcome, false),
    };
    print!("{text}");
    Ok(ExitCode::from(outcome.exit_code()))
}

/// An error before anything ran: said once, exit 1.
fn before_anything(err: &anyhow::Error) -> ExitCode {
    crate::say_error(err);
    ExitCode::from(1)
}
