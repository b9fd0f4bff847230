//! Which journal a run uses, as `--journal` (or `journal =` in rekey.toml)
//! names it: a path or `sqlite:PATH` for the file on this machine,
//! `dynamodb:TABLE` (with `?region=R`, `&retention=400d`) for a table many
//! runners share (issue 18). Checked in full before anything runs.

use std::fmt;
use std::path::PathBuf;

use super::dynamo::{DEFAULT_RETENTION_DAYS, DynamoSpec};

/// A journal, as named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalSpec {
    Sqlite(PathBuf),
    DynamoDb(DynamoSpec),
}

/// Why a journal's name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` does not name a journal: {reason} (a path, `sqlite:PATH`, or `dynamodb:TABLE[?region=R][&retention=400d]`)"
)]
pub struct BadJournalSpec {
    pub text: String,
    pub reason: String,
}

impl fmt::Display for JournalSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalSpec::Sqlite(path) => write!(f, "{}", path.display()),
            JournalSpec::DynamoDb(d) => {
                write!(f, "dynamodb:{}", d.table)?;
                let mut sep = '?';
                if let Some(r) = &d.region {
                    write!(f, "{sep}region={r}")?;
                    sep = '&';
                }
                if d.retention_days != DEFAULT_RETENTION_DAYS {
                    write!(f, "{sep}retention={}d", d.retention_days)?;
                }
                Ok(())
            }
        }
    }
}

impl JournalSpec {
    pub fn parse(text: &str) -> Result<JournalSpec, BadJournalSpec> {
        let bad = |reason: &str| BadJournalSpec {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = text.strip_prefix("sqlite:") {
            return match path.is_empty() {
                true => Err(bad("`sqlite:` names no file")),
                false => Ok(JournalSpec::Sqlite(PathBuf::from(path))),
            };
        }
        let Some(rest) = text.strip_prefix("dynamodb:") else {
            return match text.is_empty() {
                true => Err(bad("it is empty")),
                false => Ok(JournalSpec::Sqlite(PathBuf::from(text))),
            };
        };
        let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
        table_name(table).map_err(|r| bad(&r))?;
        let mut spec = DynamoSpec {
            table: table.to_string(),
            region: None,
            retention_days: DEFAULT_RETENTION_DAYS,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("region", r)) if region(r) => spec.region = Some(r.to_string()),
                Some(("region", r)) => {
                    return Err(bad(&format!("`{r}` is not an AWS region name")));
                }
                Some(("retention", days)) => {
                    spec.retention_days = retention_days(days).map_err(|r| bad(&r))?
                }
                _ => {
                    return Err(bad(&format!(
                        "`{pair}` is not an option of a DynamoDB journal (region=, retention=)"
                    )));
                }
            }
        }
        Ok(JournalSpec::DynamoDb(spec))
    }
}

/// DynamoDB's rule for table names: 3 to 255 of `A-Z a-z 0-9 _ - .`.
fn table_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("`dynamodb:` names no table".into());
    }
    if !(3..=255).contains(&name.len()) {
        return Err(format!(
            "a table name has 3 to 255 characters, `{name}` has {}",
            name.len()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Some(c) => Err(format!(
            "a table name holds only letters, digits, `_`, `-` and `.`, not `{c}`"
        )),
        None => Ok(()),
    }
}

fn region(r: &str) -> bool {
    !r.is_empty()
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && r.contains('-')
}

/// `400d` (or `400`) as days, 1 to 36500.
pub fn retention_days(text: &str) -> Result<u32, String> {
    let days = text.strip_suffix('d').unwrap_or(text);
    match days.parse::<u32>() {
        Ok(d) if (1..=36_500).contains(&d) => Ok(d),
        _ => Err(format!(
            "retention `{text}` is not a number of days from 1 to 36500 (e.g. 400d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamo(table: &str, region: Option<&str>, days: u32) -> JournalSpec {
        JournalSpec::DynamoDb(DynamoSpec {
            table: table.into(),
            region: region.map(str::to_string),
            retention_days: days,
        })
    }

    #[test]
    fn paths_and_tables_are_told_apart() {
        let p = |t: &str| JournalSpec::parse(t).unwrap();
        assert_eq!(
            p("/var/rekey/j.sqlite3"),
            JournalSpec::Sqlite("/var/rekey/j.sqlite3".into())
        );
        assert_eq!(
            p("sqlite:rel/j#1.db"),
            JournalSpec::Sqlite("rel/j#1.db".into())
        );
        assert_eq!(
            p("dynamodb:rekey-journal"),
            dynamo("rekey-journal", None, 400)
        );
        assert_eq!(
            p("dynamodb:rekey.j_1?region=eu-west-1&retention=30d"),
            dynamo("rekey.j_1", Some("eu-west-1"), 30)
        );
        for text in [
            "dynamodb:rekey-journal",
            "dynamodb:t12?region=us-east-2&retention=30d",
        ] {
            assert_eq!(p(text).to_string(), text, "round trip");
        }
    }

    #[test]
    fn a_bad_name_says_what_is_wrong() {
        let e = |t: &str| JournalSpec::parse(t).unwrap_err().to_string();
        assert!(
            e("dynamodb:").contains("names no table"),
            "{}",
            e("dynamodb:")
        );
        assert!(e("dynamodb:ab").contains("3 to 255"));
        assert!(
            e("dynamodb:my table").contains("not ` `"),
            "{}",
            e("dynamodb:my table")
        );
        assert!(e("dynamodb:t#1").contains("not `#`"));
        assert!(e("dynamodb:tbl?region=Mars").contains("`Mars` is not an AWS region"));
        assert!(e("dynamodb:tbl?retention=0d").contains("1 to 36500"));
        assert!(e("dynamodb:tbl?consistent=no").contains("`consistent=no` is not an option"));
        assert!(e("sqlite:").contains("names no file"));
        assert!(e("").contains("empty"));
    }
}
