//! `rekey journal copy`: a SQLite journal moved into a DynamoDB table
//! (issue 18), every rotation with its events — unfinished ones too, so
//! that the next run on the table resumes them — and every key record,
//! with their IDs and numbers. Only into an empty table, and only while no
//! run holds a lease on the file: a run still writing there would leave
//! the copy behind.

use super::{DynamoJournal, Journal, JournalError, SqliteJournal};

/// What was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub rotations: usize,
    pub unfinished: usize,
    pub key_records: usize,
}

pub async fn copy(from: &SqliteJournal, to: &DynamoJournal) -> Result<Copied, JournalError> {
    if !to.is_empty().await? {
        return Err(JournalError::NotEmpty {
            to: format!("dynamodb:{}", to.table()),
            found: "it holds records already".into(),
        });
    }
    let live = from.live_leases()?;
    if live > 0 {
        return Err(JournalError::NotEmpty {
            to: format!("dynamodb:{}", to.table()),
            found: format!(
                "not copied: {live} run(s) hold a lease in the file and may still write to it; let them finish"
            ),
        });
    }
    let mut copied = Copied {
        rotations: 0,
        unfinished: 0,
        key_records: 0,
    };
    let mut rotations = Journal::history(from, usize::MAX).await?;
    rotations.reverse();
    for r in rotations {
        let events = Journal::events(from, r.id).await?;
        copied.unfinished += usize::from(!r.is_finished());
        to.import_rotation(r, events).await?;
        copied.rotations += 1;
    }
    let mut records = Journal::key_history(from, usize::MAX).await?;
    records.reverse();
    for e in &records {
        to.import_key_event(e).await?;
        copied.key_records += 1;
    }
    Ok(copied)
}
