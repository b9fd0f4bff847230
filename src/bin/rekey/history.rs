//! `rekey history`: past rotations from the journal, newest first; with
//! `--keys`, what `rekey enforce` did to keys outside rotations.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use rekey::clock::SystemClock;
use rekey::journal::{Rotation, SqliteJournal, Target, default_path};
use rekey::model::{mask_key_id, mask_key_ids_in};
use rekey::report::text_table;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::terminal_layout;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The journal (default: $XDG_STATE_HOME/rekey/journal.sqlite3).
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
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

pub fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let path = match args.journal {
        Some(p) => p,
        None => default_path(&|k| std::env::var(k).ok())
            .context("cannot find the journal: set --journal, XDG_STATE_HOME or HOME")?,
    };
    if args.keys {
        return key_history(&path, args.limit, args.output);
    }
    // No journal yet is no error: nothing has been rotated (issue 15). It
    // is not created either; only a rotation makes one.
    let rotations = if path.exists() {
        let journal = SqliteJournal::open(&path, Arc::new(SystemClock))?;
        let rotations = journal.history(args.limit)?;
        let mut with_events = Vec::new();
        for r in rotations {
            let events = journal.events(r.id)?;
            with_events.push((r, events));
        }
        with_events
    } else {
        Vec::new()
    };
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
            println!("no rotations recorded in {}", path.display());
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
fn key_history(path: &std::path::Path, limit: usize, output: Format) -> anyhow::Result<ExitCode> {
    let records = if path.exists() {
        SqliteJournal::open(path, Arc::new(SystemClock))?.key_history(limit)?
    } else {
        Vec::new()
    };
    match output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&records)?),
        Format::Table if records.is_empty() => {
            println!("no key actions recorded in {}", path.display());
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
