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
    #[error("{origin}: {reason}")]
    BadRetention { origin: Origin, reason: String },
    #[error("{origin} `{role}` is for a DynamoDB journal; the journal is the file {file}")]
    RoleWithoutTable {
        origin: Origin,
        role: String,
        file: String,
    },
}

/// What a rekey.toml says of the journal: `journal` and
/// `journal_retention` (how long a DynamoDB journal keeps finished records,
/// unless its name says `retention=`), and the file that says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileJournal {
    pub path: std::path::PathBuf,
    pub journal: Option<String>,
    pub retention: Option<String>,
}

/// The journal `given` names (an option, as written), else `from_file`'s
/// (a relative path is relative to the file's folder), else the default
/// file; with `from_file`'s retention for a table whose name sets none.
pub fn choose(
    given: Option<(&Path, Origin)>,
    from_file: Option<&FileJournal>,
    role: Option<(&str, Origin)>,
    env: &dyn Fn(&str) -> Option<String>,
    journal: Origin,
) -> Result<JournalChoice, ChooseJournalError> {
    let in_file = |key: &str, file: &FileJournal| Origin::File {
        path: file.path.clone(),
        key: key.into(),
    };
    let named_retention = given
        .as_ref()
        .and_then(|(p, _)| p.to_str())
        .or(from_file.and_then(|f| f.journal.as_deref()))
        .is_some_and(|t| t.contains("retention="));
    let from_file_journal = from_file.and_then(|f| f.journal.as_deref().map(|j| (j, f)));
    let mut spec = match (given, from_file_journal) {
        // A path that is not UTF-8 cannot be `dynamodb:` or `sqlite:`.
        (Some((path, origin)), _) => match path.to_str() {
            Some(text) => JournalSpec::parse(text)
                .map_err(|error| ChooseJournalError::Bad { origin, error })?,
            None => JournalSpec::Sqlite(path.to_path_buf()),
        },
        (None, Some((text, file))) => match JournalSpec::parse(text) {
            Ok(JournalSpec::Sqlite(p)) if p.is_relative() => {
                JournalSpec::Sqlite(file.path.parent().unwrap_or(Path::new(".")).join(p))
            }
            Ok(spec) => spec,
            Err(error) => {
                return Err(ChooseJournalError::Bad {
                    origin: in_file("journal", file),
                    error,
                });
            }
        },
        (None, None) => {
            JournalSpec::Sqlite(default_path(env).ok_or(ChooseJournalError::NoPlace { journal })?)
        }
    };
    if let Some(file) = from_file
        && let Some(text) = &file.retention
    {
        let days = crate::journal::retention_days(text).map_err(|reason| {
            ChooseJournalError::BadRetention {
                origin: in_file("journal_retention", file),
                reason,
            }
        })?;
        if let JournalSpec::DynamoDb(d) = &mut spec
            && !named_retention
        {
            d.retention_days = days;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::DynamoSpec;

    fn file(journal: Option<&str>, retention: Option<&str>) -> FileJournal {
        FileJournal {
            path: "/etc/rekey/rekey.toml".into(),
            journal: journal.map(str::to_string),
            retention: retention.map(str::to_string),
        }
    }

    fn chosen(given: Option<&str>, from: &FileJournal) -> Result<JournalSpec, ChooseJournalError> {
        let flag = || Origin::Flag("--journal".into());
        choose(
            given.map(|g| (Path::new(g), flag())),
            Some(from),
            None,
            &|k| (k == "HOME").then(|| "/home/u".into()),
            flag(),
        )
        .map(|c| c.spec)
    }

    fn table(days: u32) -> JournalSpec {
        JournalSpec::DynamoDb(DynamoSpec {
            table: "rekey-j".into(),
            region: None,
            retention_days: days,
        })
    }

    #[test]
    fn the_file_names_the_journal_and_its_retention_unless_the_name_says_otherwise() {
        let f = file(Some("dynamodb:rekey-j"), Some("30d"));
        assert_eq!(chosen(None, &f).unwrap(), table(30));
        assert_eq!(chosen(Some("dynamodb:rekey-j"), &f).unwrap(), table(30));
        assert_eq!(
            chosen(Some("dynamodb:rekey-j?retention=400d"), &f).unwrap(),
            table(400),
            "the name's own retention wins, the default's value too"
        );
        assert_eq!(
            chosen(None, &file(Some("journal.db"), Some("30d"))).unwrap(),
            JournalSpec::Sqlite("/etc/rekey/journal.db".into()),
            "relative to the file"
        );
        assert_eq!(
            chosen(None, &file(None, None)).unwrap(),
            JournalSpec::Sqlite("/home/u/.local/state/rekey/journal.sqlite3".into())
        );
    }

    #[test]
    fn a_bad_retention_in_the_file_is_named_where_it_was_written() {
        let err = chosen(None, &file(Some("dynamodb:rekey-j"), Some("soon"))).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("journal_retention")
                && msg.contains("rekey.toml")
                && msg.contains("1 to 36500"),
            "{msg}"
        );
    }
}
