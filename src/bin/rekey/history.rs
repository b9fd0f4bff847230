//! `rekey history`: past rotations from the journal, newest first.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use comfy_table::{Table, presets};
use rekey::clock::SystemClock;
use rekey::journal::{SqliteJournal, default_path};
use rekey::model::mask_key_id;

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
    /// table (default) or json (full key IDs, every step).
    #[arg(long, short = 'o', default_value = "table", value_name = "FORMAT")]
    output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

pub fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let path = match args.journal {
        Some(p) => p,
        None => default_path(&|k| std::env::var(k).ok())
            .context("cannot find the journal: set --journal, XDG_STATE_HOME or HOME")?,
    };
    if !path.exists() {
        anyhow::bail!(
            "no journal at {}: nothing has been rotated yet (or give --journal)",
            path.display()
        );
    }
    let journal = SqliteJournal::open(&path, Arc::new(SystemClock))?;
    let rotations = journal.history(args.limit)?;
    match args.output {
        Format::Json => {
            let mut items = Vec::new();
            for r in &rotations {
                let mut v = serde_json::to_value(r)?;
                v["events"] = serde_json::to_value(journal.events(r.id)?)?;
                items.push(v);
            }
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
        Format::Table => {
            let mut table = Table::new();
            table.load_style(presets::UTF8_FULL_CONDENSED);
            table.set_header([
                "#",
                "started",
                "account",
                "user",
                "old key",
                "new key",
                "outcome",
                "last step",
                "error",
            ]);
            for r in &rotations {
                table.add_row([
                    r.id.to_string(),
                    r.started_at.date().to_string(),
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
                    r.error.clone().unwrap_or_default(),
                ]);
            }
            println!("{table}");
            if args.steps {
                for r in &rotations {
                    println!("\n#{} {} in {}:", r.id, r.user_name, r.account_id);
                    for e in journal.events(r.id)? {
                        println!(
                            "  {} {:<20} {:<6} {}{}",
                            e.at,
                            e.step.as_str(),
                            e.phase.as_str(),
                            e.target.as_deref().map(mask_target).unwrap_or_default(),
                            e.detail.map(|d| format!(" ({d})")).unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Key IDs are masked in human output; other targets (files) shown whole.
fn mask_target(t: &str) -> String {
    if t.starts_with("AKIA") || t.starts_with("ASIA") {
        mask_key_id(t)
    } else {
        t.to_string()
    }
}
