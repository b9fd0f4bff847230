//! `rekey journal`: set up a DynamoDB journal (`init`), or move a SQLite
//! journal into one (`copy`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use rekey::aws::{AwsOptions, ClientFactory, load_config};
use rekey::clock::SystemClock;
use rekey::journal::copy::copy;
use rekey::journal::dynamo::init;
use rekey::journal::{DynamoJournal, JournalSpec, SqliteJournal};

#[derive(Debug, clap::Subcommand)]
pub enum JournalCommand {
    /// Create the DynamoDB table of a journal many runners share (on-demand
    /// billing, point-in-time recovery, TTL); on an existing table, check
    /// its shape and turn on what is off.
    Init {
        /// The table: NAME, or NAME?region=R.
        #[arg(long, value_name = "TABLE")]
        dynamodb: String,
    },
    /// Copy a SQLite journal, unfinished rotations included, into an empty
    /// DynamoDB journal.
    Copy {
        /// sqlite:PATH (or a path).
        #[arg(long, value_name = "JOURNAL")]
        from: String,
        /// dynamodb:TABLE[?region=R], made by `rekey journal init`.
        #[arg(long, value_name = "JOURNAL")]
        to: String,
    },
}

fn dynamo_spec(text: &str) -> anyhow::Result<rekey::journal::DynamoSpec> {
    match JournalSpec::parse(text)? {
        JournalSpec::DynamoDb(spec) => Ok(spec),
        JournalSpec::Sqlite(_) => bail!("`{text}` is not a DynamoDB journal: write dynamodb:TABLE"),
    }
}

pub async fn run(cmd: JournalCommand, global: &crate::GlobalArgs) -> anyhow::Result<ExitCode> {
    let aws = AwsOptions {
        endpoint_url: global.endpoint_url.clone(),
        region: global.region.clone(),
    };
    let client = |spec: &rekey::journal::DynamoSpec, base: &aws_config::SdkConfig| {
        let mut config = base.clone();
        if let Some(r) = &spec.region {
            config = config
                .into_builder()
                .region(aws_config::Region::new(r.clone()))
                .build();
        }
        ClientFactory::from_env().dynamodb(&config)
    };
    let base = load_config(None, &aws).await;
    match cmd {
        JournalCommand::Init { dynamodb } => {
            let text = format!("dynamodb:{}", dynamodb.trim_start_matches("dynamodb:"));
            let spec = dynamo_spec(&text)?;
            let report = init(&client(&spec, &base), &spec.table).await?;
            println!("{report}");
        }
        JournalCommand::Copy { from, to } => {
            let path = match JournalSpec::parse(&from)? {
                JournalSpec::Sqlite(p) => p,
                JournalSpec::DynamoDb(_) => bail!("--from `{from}`: copy reads a SQLite journal"),
            };
            let to_spec = dynamo_spec(&to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
            let clock = Arc::new(SystemClock);
            let Some(source) = SqliteJournal::open_read_only(&path, clock.clone())? else {
                bail!("--from {}: no journal there", path.display());
            };
            let dest = DynamoJournal::new(client(&to_spec, &base), &to_spec, clock, false);
            dest.check().await?;
            let copied = copy(&source, &dest).await?;
            println!(
                "copied {} rotations ({} unfinished) and {} key records from {} to {to}",
                copied.rotations,
                copied.unfinished,
                copied.key_records,
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
