//! `rekey notify`: what the notification channels owe for the selected
//! accounts, sent — or, with `--preview`, rendered as the next run would
//! send it (the plan made now included), sending nothing. Also the
//! notification flags `rekey enforce` takes. Exit codes: 0 all delivered
//! (or nothing owed), 1 an error before anything ran, 4 something not
//! delivered (owed to the next run).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use rekey::clock::SystemClock;
use rekey::notify::settings::NotifyInput;
use rekey::report::Format;
use rekey::request::AuditInput;
use rekey::request::enforce::{EnforceInput, EnforceRequest};

use crate::scope::ScopeArgs;
use crate::{GlobalArgs, context, env};

/// The notification flags (over rekey.toml's `[notify]`).
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyFlags {
    /// Publish notifications (rekey.notification/1 JSON) to this SNS topic.
    #[arg(long, value_name = "ARN")]
    notify_sns: Option<String>,
    /// Email each key's owner from this address, with SES.
    #[arg(long, value_name = "ADDRESS")]
    notify_email_from: Option<String>,
    /// Where the chat webhook's URL is: env:VARIABLE or secretsmanager:NAME (never the URL).
    #[arg(long, value_name = "SOURCE")]
    notify_webhook: Option<String>,
    /// Tell a key still waiting for its owner again this long after it was told (7d; default never).
    #[arg(long, value_name = "SPAN")]
    renotify_after: Option<String>,
    /// Send no notification this run; what is owed stays owed.
    #[arg(long)]
    no_notify: bool,
}

impl NotifyFlags {
    pub fn input(self) -> NotifyInput {
        NotifyInput {
            notify_sns: self.notify_sns,
            notify_email_from: self.notify_email_from,
            notify_webhook: self.notify_webhook,
            renotify_after: self.renotify_after,
            no_notify: self.no_notify,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    #[command(flatten)]
    scope: ScopeArgs,
    #[command(flatten)]
    notify: NotifyFlags,
    /// Show the messages the next run would send, sending nothing.
    #[arg(long)]
    preview: bool,
    /// text (default) or json.
    #[arg(long, short = 'o', value_name = "FORMAT")]
    output: Option<Format>,
    /// The journal: a file, sqlite:PATH, or dynamodb:TABLE[?region=R].
    #[arg(long, value_name = "JOURNAL", env = "REKEY_JOURNAL")]
    journal: Option<PathBuf>,
    /// A role to assume for a DynamoDB journal kept in another account.
    #[arg(long, value_name = "ARN")]
    journal_role: Option<String>,
    /// The run's name in the journal (default PID-UNIXTIME).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
}

pub async fn run(args: NotifyArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let json = matches!(args.output, Some(Format::Json));
    let input = EnforceInput {
        scope: AuditInput {
            output: Some(Format::Json),
            ..args.scope.input(global)
        },
        journal: args.journal,
        journal_role: args.journal_role,
        run_id: args.run_id,
        notify: args.notify.input(),
        notify_always: true,
        ..EnforceInput::default()
    };
    let request = match EnforceRequest::from_input(&input, &context(&env)) {
        Ok(r) => r,
        Err(e) => return Ok(failed(&anyhow::Error::new(e))),
    };
    let out = match rekey::enforce::run::notify(&request, args.preview, Arc::new(SystemClock)).await
    {
        Ok(o) => o,
        Err(e) => return Ok(failed(&anyhow::Error::new(e))),
    };
    match (json, args.preview) {
        (true, _) => println!("{}", serde_json::to_string_pretty(&out)?),
        (false, true) => print!("{}", rekey::notify::words::preview(&out)),
        (false, false) => print!("{}", rekey::notify::words::summary(&out)),
    }
    let undelivered = !args.preview && out.undelivered() > 0;
    Ok(ExitCode::from(if undelivered { 4 } else { 0 }))
}

fn failed(err: &anyhow::Error) -> ExitCode {
    crate::say_error(err);
    ExitCode::from(1)
}
