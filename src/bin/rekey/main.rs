//! The `rekey` command: parses flags, runs one subcommand, prints errors once
//! and maps outcomes to exit codes (0 all well, 1 findings, 2 errors).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rekey::error::Origin;
use rekey::request::{Context, Setting};

mod audit;
mod enforce;
mod history;
mod journal;
mod notify;
mod policy;
mod rotate;
mod schedule;
mod scope;

#[derive(Debug, Parser)]
#[command(
    name = "rekey",
    version,
    about = "Audit and rotate AWS IAM access keys across many accounts, safely."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand shares.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// AWS endpoint to call instead of the real one (overrides AWS_ENDPOINT_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS region for signing (overrides AWS_REGION and the profile's region).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find every access key in every selected account and judge it.
    Audit(Box<audit::AuditArgs>),
    /// Rotate access keys safely: of profiles in ~/.aws/credentials (--profile,
    /// --all-profiles), of one service user (--account --user --to), or of every
    /// bound service user (--service).
    Rotate(Box<rotate::RotateArgs>),
    /// Carry out the access-key lifecycle: warn, rotate, retire, deactivate,
    /// delete — a plan first (--apply carries it out), per key, journaled.
    Enforce(Box<enforce::EnforceArgs>),
    /// Tell owners and teams what became of their keys (SNS, email, chat):
    /// what is owed, sent; --preview shows the next run's messages.
    Notify(Box<notify::NotifyArgs>),
    /// List past rotations from the journal.
    History(history::HistoryArgs),
    /// Set up or move the journal: create a DynamoDB table for it, copy a
    /// SQLite journal into one.
    #[command(subcommand)]
    Journal(journal::JournalCommand),
    /// Print, install or remove a daily `rekey rotate` job (cron, systemd, launchd).
    Schedule(schedule::ScheduleArgs),
    /// Print the least-privilege IAM policy of each way rekey runs.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            say_error(&err);
            ExitCode::from(2)
        }
    }
}

/// Says `err` on stderr, on one line whatever a source's Display does with
/// newlines.
pub fn say_error(err: &anyhow::Error) {
    let text = format!("{err:#}");
    let line: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    eprintln!("rekey: error: {}", line.join(" "));
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Before any work: a retry setting rekey cannot follow is bad input.
    rekey::aws::RetrySettings::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Audit(args) => audit::run(*args, &cli.global).await,
            Command::Rotate(args) => rotate::run(*args, &cli.global).await,
            Command::Enforce(args) => enforce::run(*args, &cli.global).await,
            Command::Notify(args) => notify::run(*args, &cli.global).await,
            Command::History(args) => history::run(args, &cli.global).await,
            Command::Journal(args) => journal::run(args, &cli.global).await,
            Command::Schedule(args) => schedule::run(args, &cli.global),
            Command::Policy(args) => policy::run(args),
        }
    })
}

/// What the CLI calls each option of a request: its flag. The library
/// names none; errors say these (issue 16).
pub fn flag(setting: Setting) -> Origin {
    let name = match setting {
        Setting::Profiles => "--profile",
        Setting::Accounts => "--account",
        Setting::AccountsFile => "--accounts",
        Setting::Ous => "--ou",
        Setting::ExcludeAccounts => "--exclude-account",
        other => return Origin::Flag(format!("--{}", other.as_str().replace('_', "-"))),
    };
    Origin::Flag(name.to_string())
}

/// What the CLI knows that no flag says, for turning flags into a request.
pub fn context<'a>(env: &'a dyn Fn(&str) -> Option<String>) -> Context<'a> {
    Context {
        names: flag,
        env,
        now: time::OffsetDateTime::now_utc(),
        stdout_is_terminal: std::io::stdout().is_terminal(),
    }
}

/// The process's environment, as the library reads it.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The width of stdout's terminal (`COLUMNS` wins, as for `ls`), and
/// colour only on a terminal without `NO_COLOR` (issue 10 #10): how the
/// audit's and history's tables are drawn.
pub fn terminal_layout() -> rekey::report::TableLayout {
    let tty = std::io::stdout().is_terminal();
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok());
    // comfy-table asks the terminal for its size when stdout is one.
    let terminal = || tty.then(|| comfy_table::Table::new().width()).flatten();
    rekey::report::TableLayout {
        width: columns.filter(|c| *c > 0).or_else(terminal),
        colour: tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// rekey's own messages at the chosen verbosity, on stderr. The AWS SDK's
/// warnings stay out unless asked for with -v: they are about its own
/// attempts (every credential provider that found nothing, with debug dumps;
/// a profile name the AWS CLI accepts but the SDK's parser does not), and
/// rekey reports what failed itself (issue 9, item 9). Colours only on a
/// terminal, and never with NO_COLOR set (https://no-color.org).
fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    let sdk = if verbose == 0 {
        LevelFilter::OFF
    } else {
        level
    };
    // Targets match by prefix, so `aws_` is every aws_* crate of the SDK.
    let filter = Targets::new().with_default(level).with_target("aws_", sdk);
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(color),
        )
        .with(filter)
        .init();
}
