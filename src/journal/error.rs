//! The journal's errors. Each names the account, user or rotation it
//! concerns and, where there is something to do, what. None holds a secret;
//! key IDs are masked.

use std::path::PathBuf;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{KeyOp, Outcome, Phase, RotationId, Step};

/// Everything that can go wrong with the journal. None of it holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the rotation journal {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot {doing} {} for the rotation journal", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rotation journal: {doing} failed")]
    Sqlite {
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the rotation journal was written by a newer rekey (schema {found}, this one knows up to {known}); upgrade rekey"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the rotation journal is damaged: {what}")]
    Corrupt { what: String },
    #[error(
        "user {user_name} in account {account_id} is being rotated by {holder} since {}; try again after {} or wait for it",
        rfc3339(*since),
        rfc3339(*expires_at)
    )]
    LeaseHeld {
        account_id: String,
        user_name: String,
        /// `run R, pid P on host H`.
        holder: String,
        since: OffsetDateTime,
        expires_at: OffsetDateTime,
    },
    #[error(
        "the lease on user {user_name} in account {account_id} was lost (it expired and another run took it); stop and let that run finish"
    )]
    LeaseLost {
        account_id: String,
        user_name: String,
    },
    #[error(
        "run {run_id} does not hold the lease on user {user_name} in account {account_id}; acquire it before beginning a rotation"
    )]
    NotLeased {
        account_id: String,
        user_name: String,
        run_id: String,
    },
    #[error(
        "user {user_name} in account {account_id} has an unfinished rotation ({id}); resume or finish it first"
    )]
    Unfinished {
        account_id: String,
        user_name: String,
        id: RotationId,
    },
    #[error("rotation {id} not found in the journal")]
    NotFound { id: RotationId },
    #[error("rotation {id} is already finished ({outcome}); nothing more can be recorded")]
    Finished { id: RotationId, outcome: Outcome },
    #[error("rotation {id}: cannot record {step} {phase}: {reason}")]
    OutOfOrder {
        id: RotationId,
        step: Step,
        phase: Phase,
        reason: &'static str,
    },
    #[error("key {key}: cannot record {op} {phase}: {reason}")]
    KeyOutOfOrder {
        /// Masked (`AKIA…MPLE`): errors are human output.
        key: String,
        op: KeyOp,
        phase: Phase,
        reason: &'static str,
    },
    #[error("rotation journal in DynamoDB table {table}: {doing} failed: {message}")]
    Dynamo {
        table: String,
        doing: &'static str,
        /// The SDK's error chain (names, codes; never a secret).
        message: String,
    },
    #[error(
        "the DynamoDB table {table} does not exist; create it with `rekey journal init --dynamodb {table}`"
    )]
    NoTable { table: String },
    #[error("the DynamoDB table {table} is not shaped as a rekey journal: {differences}")]
    TableShape { table: String, differences: String },
    #[error(
        "rotation journal in DynamoDB table {table}: {doing}: the record changed under each of {tries} tries (other runs are writing it); try again"
    )]
    Contended {
        table: String,
        doing: &'static str,
        tries: usize,
    },
    #[error("the rotation journal was opened read only (a dry run); {doing} would write to it")]
    ReadOnly { doing: &'static str },
    #[error(
        "the journal {to} is not empty ({found}); `rekey journal copy` only fills an empty one"
    )]
    NotEmpty { to: String, found: String },
    #[error("rotation {id}: cannot record {key} as the new key: {reason}")]
    NewKeyRejected {
        id: RotationId,
        /// Masked (`AKIA…MPLE`): errors are human output.
        key: String,
        reason: &'static str,
    },
}

/// Formats a time for messages; falls back to the debug form, which cannot
/// fail, for the (impossible here) years RFC 3339 cannot express.
fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| format!("{t:?}"))
}

/// Masks a key ID for messages (DESIGN.md invariant 6). Same rule as
/// `crate::model::mask_key_id`; repeated here so the journal depends on
/// nothing but `crate::clock`.
pub(crate) fn mask(id: &str) -> String {
    if id.len() < 12 || !id.is_ascii() {
        return "…".to_string();
    }
    format!("{}…{}", &id[..4], &id[id.len() - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_in_messages_are_masked() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask("short"), "…");
    }
}
