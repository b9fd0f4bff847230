//! `rekey history`: past rotations from the journal, newest first; with
//! `--keys`, what `rekey enforce` did to keys outside rotations.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use rekey::aws::{AwsOptions, load_config};
use rekey::clock::SystemClock;
use rekey::error::Origin;
use rekey::journal::{Journal, JournalSpec, Rotation, Target};
use rekey::model::{mask_key_id, mask_key_ids_in};
use rekey::report::text_table;
use rekey::request::journal::{Use, choose, open};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::terminal_layout;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The journal: a file, sqlite:PATH, or dynamodb:TABLE[?region=R]
    /// (default: $XDG_STATE_HOME/rekey/journal.sqlite3).
    #[arg(long, value_name = "JOURNAL")]
    journal: Option<PathBuf>,
    /// A role to assume for a DynamoDB journal kept in another account.
    #[arg(long, value_name = "ARN")]
    journal_role: Option<String>,
    /// How many rotations to show.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Include each rotation's steps.
    #[arg(long)]
    steps: bool,
    /// What `rekey enforce` did to keys outside rotations (warnings,
    /// retirements, deactivations, deletions, reactivations) instead.
    #[arg(long)]
    keys: bool,
    /// table (default) or json (full key IDs, every step).
    #[arg(long, short = 'o', default_value = "table", value_name = "FORMAT")]
    output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

/// The table's columns; those kept whole while the width allows, most
/// important first (the others wrap).
/// `error` is the last: it is left out when no rotation has one.
const COLUMNS: [&str; 9] = [
    "#",
    "started",
    "account",
    "user",
    "old key",
    "new key",
    "outcome",
    "last step",
    "error",
];
const WHOLE: [&str; 6] = ["#", "started", "outcome", "old key", "new key", "account"];

pub async fn run(args: HistoryArgs, global: &crate::GlobalArgs) -> anyhow::Result<ExitCode> {
    let flag = |name: &str| Origin::Flag(format!("--{name}"));
    let choice = choose(
        args.journal.as_deref().map(|p| (p, flag("journal"))),
        None,
        args.journal_role
            .as_deref()
            .map(|r| (r, flag("journal-role"))),
        &|k| std::env::var(k).ok(),
        flag("journal"),
    )?;
    let aws = AwsOptions {
        endpoint_url: global.endpoint_url.clone(),
        region: global.region.clone(),
    };
    // Read only: no journal yet is no error (nothing has been rotated,
    // issue 15), and none is created; only a rotation makes one.
    let base = load_config(None, &aws).await;
    let journal = open(&choice, Use::Read, &base, Arc::new(SystemClock)).await?;
    let name = match &choice.spec {
        JournalSpec::Sqlite(path) => path.display().to_string(),
        spec => spec.to_string(),
    };
    if args.keys {
        return key_history(journal.as_ref(), &name, args.limit, args.output).await;
    }
    let mut rotations = Vec::new();
    for r in journal.history(args.limit).await? {
        let events = journal.events(r.id).await?;
        rotations.push((r, events));
    }
    match args.output {
        Format::Json => {
            let mut items = Vec::new();
            for (r, events) in &rotations {
                let mut v = serde_json::to_value(r)?;
                v["events"] = serde_json::to_value(events)?;
                items.push(v);
            }
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
        Format::Table if rotations.is_empty() => {
            println!("no rotations recorded in {name}");
        }
        Format::Table => {
            let mut rows: Vec<Vec<String>> = rotations.iter().map(|(r, _)| row(r)).collect();
            let mut header = COLUMNS.to_vec();
            // Room for the rest when no rotation failed.
            if rows.iter().all(|r| r.last().is_some_and(String::is_empty)) {
                header.pop();
                rows.iter_mut().for_each(|r| _ = r.pop());
            }
            println!("{}", text_table(&header, rows, &WHOLE, terminal_layout()));
            if args.steps {
                for (r, events) in &rotations {
                    println!("\n#{} {} in {}:", r.id, r.user_name, r.account_id);
                    for e in events {
                        println!(
                            "  {} {:<20} {:<6} {}{}",
                            when(e.at),
                            e.step.as_str(),
                            e.phase.as_str(),
                            e.target.as_ref().map(shown).unwrap_or_default(),
                            e.detail
                                .as_deref()
                                .map(|d| format!(" ({})", mask_key_ids_in(d)))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `history --keys`: the journal's key records, newest first.
async fn key_history(
    journal: &dyn Journal,
    name: &str,
    limit: usize,
    output: Format,
) -> anyhow::Result<ExitCode> {
    let records = journal.key_history(limit).await?;
    match output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&records)?),
        Format::Table if records.is_empty() => {
            println!("no key actions recorded in {name}");
        }
        Format::Table => {
            let header = [
                "written", "as of", "account", "user", "key", "action", "phase", "detail",
            ];
            let rows = (records.iter())
                .map(|e| {
                    vec![
                        when(e.at),
                        when(e.as_of),
                        e.account_id.clone(),
                        e.user_name.clone(),
                        mask_key_id(&e.key_id),
                        e.op.as_str().to_string(),
                        e.phase.as_str().to_string(),
                        e.detail.as_deref().map(detail_words).unwrap_or_default(),
                    ]
                })
                .collect();
            let whole = ["written", "as of", "key", "action", "phase"];
            println!("{}", text_table(&header, rows, &whole, terminal_layout()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A key record's detail in words: what was due, when it is one.
fn detail_words(detail: &str) -> String {
    match serde_json::from_str::<rekey::enforce::lifecycle::Due>(detail) {
        Ok(due) => rekey::enforce::words::due_words(&due),
        Err(_) => mask_key_ids_in(detail),
    }
}

fn row(r: &Rotation) -> Vec<String> {
    vec![
        r.id.to_string(),
        when(r.started_at),
        r.account_id.clone(),
        r.user_name.clone(),
        mask_key_id(&r.old_key_id),
        r.new_key_id
            .as_deref()
            .map(mask_key_id)
            .unwrap_or_else(|| "-".into()),
        r.outcome
            .map(|o| o.as_str().to_string())
            .unwrap_or_else(|| "unfinished".into()),
        format!("{} {}", r.last_step.as_str(), r.last_phase.as_str()),
        r.error.as_deref().map(mask_key_ids_in).unwrap_or_default(),
    ]
}

/// RFC 3339 in UTC to the second, as every machine format writes times
/// (issue 15: not `21:20:22.82 +00:00:00`).
fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Key IDs are masked in human output; destinations shown by name.
fn shown(t: &Target) -> String {
    match t {
        Target::Key(id) => mask_key_id(id),
        destination => destination.to_string(),
    }
}
