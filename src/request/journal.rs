//! The journal a request uses, decided once for every command that takes
//! `--journal` (rotate, enforce, history, schedule): the option, else
//! `journal =` in rekey.toml, else the file in `$XDG_STATE_HOME/rekey`;
//! and how it is opened — a SQLite file on this machine, or a DynamoDB
//! table reached with the run's own credentials or `--journal-role`
//! (issue 18).

use std::path::Path;
use std::sync::Arc;

use aws_config::Region;
use aws_config::SdkConfig;

use crate::aws::{ClientFactory, assume_role, with_credentials};
use crate::clock::Clock;
use crate::error::Origin;
use crate::journal::{
    BadJournalSpec, DynamoJournal, Journal, JournalError, JournalSpec, SqliteJournal, default_path,
};

/// Where the journal is and how it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalChoice {
    pub spec: JournalSpec,
    /// A role assumed for a DynamoDB journal kept in another account.
    pub role: Option<String>,
}

/// Why no journal could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ChooseJournalError {
    #[error("cannot find a place for the journal: set {journal}, XDG_STATE_HOME or HOME")]
    NoPlace { journal: Origin },
    #[error("{origin}: {error}")]
    Bad {
        origin: Origin,
        error: BadJournalSpec,
    },
    #[error("{origin} `{role}` is for a DynamoDB journal; the journal is the file {file}")]
    RoleWithoutTable {
        origin: Origin,
        role: String,
        file: String,
    },
}

/// The journal `given` names (an option, as written), else `from_file`
/// (rekey.toml's `journal`, in the file at that path: a relative path is
/// relative to the file's folder), else
/// the default file.
pub fn choose(
    given: Option<(&Path, Origin)>,
    from_file: Option<(&str, &Path)>,
    role: Option<(&str, Origin)>,
    env: &dyn Fn(&str) -> Option<String>,
    journal: Origin,
) -> Result<JournalChoice, ChooseJournalError> {
    let spec = match (given, from_file) {
        // A path that is not UTF-8 cannot be `dynamodb:` or `sqlite:`.
        (Some((path, origin)), _) => match path.to_str() {
            Some(text) => JournalSpec::parse(text)
                .map_err(|error| ChooseJournalError::Bad { origin, error })?,
            None => JournalSpec::Sqlite(path.to_path_buf()),
        },
        (None, Some((text, file))) => match JournalSpec::parse(text) {
            Ok(JournalSpec::Sqlite(p)) if p.is_relative() => {
                JournalSpec::Sqlite(file.parent().unwrap_or(Path::new(".")).join(p))
            }
            Ok(spec) => spec,
            Err(error) => {
                return Err(ChooseJournalError::Bad {
                    origin: Origin::File {
                        path: file.to_path_buf(),
                        key: "journal".into(),
                    },
                    error,
                });
            }
        },
        (None, None) => {
            JournalSpec::Sqlite(default_path(env).ok_or(ChooseJournalError::NoPlace { journal })?)
        }
    };
    if let (Some((role, origin)), JournalSpec::Sqlite(p)) = (&role, &spec) {
        return Err(ChooseJournalError::RoleWithoutTable {
            origin: origin.clone(),
            role: role.to_string(),
            file: p.display().to_string(),
        });
    }
    Ok(JournalChoice {
        spec,
        role: role.map(|(r, _)| r.to_string()),
    })
}

/// How a run uses the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Records what it does.
    Write,
    /// Only reads (a dry run, a plan): nothing is created or written; a
    /// SQLite journal not made yet reads as empty.
    Read,
}

/// Opens the journal `choice` names. `base` is the run's own AWS
/// configuration, whose credentials reach a DynamoDB table (or assume
/// `choice.role` to).
pub async fn open(
    choice: &JournalChoice,
    how: Use,
    base: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn Journal>, JournalError> {
    let spec = match &choice.spec {
        JournalSpec::Sqlite(path) => return open_file(path, how, clock),
        JournalSpec::DynamoDb(spec) => spec,
    };
    let mut config = base.clone();
    if let Some(region) = &spec.region {
        config = config
            .into_builder()
            .region(Region::new(region.clone()))
            .build();
    }
    let clients = ClientFactory::from_env();
    if let Some(role) = &choice.role {
        let sts = clients.account(&config).sts;
        let session = assume_role(&sts, role, None)
            .await
            .map_err(|e| JournalError::Dynamo {
                table: spec.table.clone(),
                doing: "assuming the journal's role",
                message: crate::error::error_chain(&e),
            })?;
        config = with_credentials(&config, session);
    }
    let journal = DynamoJournal::new(clients.dynamodb(&config), spec, clock, how == Use::Read);
    journal.check().await?;
    Ok(Box::new(journal))
}

fn open_file(
    path: &Path,
    how: Use,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn Journal>, JournalError> {
    Ok(match how {
        Use::Write => Box::new(SqliteJournal::open(path, clock)?),
        Use::Read => match SqliteJournal::open_read_only(path, clock.clone())? {
            Some(j) => Box::new(j),
            None => Box::new(SqliteJournal::in_memory(clock)?),
        },
    })
}
