//! Why a rotation stopped ([`RotateError`]), and what a person can do
//! about it ([`Remedy`]): the library names the remedy, each front end says
//! how (the CLI as a flag or a command).

// A RotateError is returned at most once per key, after network calls that
// take milliseconds: its size costs nothing worth boxing every variant for.
#![allow(clippy::result_large_err)]

use super::Refusal;
use super::access::AccessError;
use crate::destination::DestinationError;
use crate::error::CallError;
#[cfg(test)]
use crate::error::error_chain;
use crate::journal::JournalError;

/// Why a rotation stopped. Every variant names what it concerns; none
/// holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("{target}: the profile holds no access key")]
    NoKey { target: String },
    #[error("{target}: {what}")]
    Destination {
        target: String,
        what: &'static str,
        #[source]
        source: DestinationError,
    },
    #[error("{target}: {doing}")]
    Call {
        target: String,
        doing: String,
        #[source]
        source: CallError,
    },
    // The refusal is the source: the chain says it, once.
    #[error("{target}")]
    Refused {
        target: String,
        #[source]
        source: Refusal,
    },
    #[error("{target}")]
    Journal {
        target: String,
        // Boxed: JournalError is large and this path is rare.
        #[source]
        source: Box<JournalError>,
    },
    #[error("{target}: rotation of {user} undone, you are where you started: {reason}")]
    Undone {
        target: String,
        user: String,
        reason: String,
    },
    #[error("{target}: {doing}; the next run tries again")]
    Unfinishable {
        target: String,
        doing: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("rotation #{id} of {user} in account {account_id} cannot be resumed")]
    CannotResume {
        id: i64,
        user: String,
        account_id: String,
        #[source]
        source: DestinationError,
    },
    #[error(
        "{target}: holds the key {holds}, not the key {named} the job names; nothing was changed"
    )]
    NotTheNamedKey {
        target: String,
        named: String,
        holds: String,
    },
    #[error("{target}")]
    Access {
        target: String,
        #[source]
        source: AccessError,
    },
    #[error("{target} cannot be abandoned: {why}")]
    CannotAbandon { target: String, why: String },
    #[error(
        "{target}: rotation #{id} retired the old key, but no destination holds its new key {new_key} any more; see \"A rotation whose destination is gone\" in the README"
    )]
    NewKeyGone {
        target: String,
        id: i64,
        new_key: String,
    },
    #[error(
        "{target}: not rotated in this run: rotation #{id} of {user}, left by an earlier run, could not be finished here (see its error)"
    )]
    AfterFailedResume {
        target: String,
        id: i64,
        user: String,
    },
    #[error(
        "{target}: the new key {new_key} is delivered and works, but the old key {old_key} could not be {action}; the next run finishes it"
    )]
    OldKeyPending {
        target: String,
        new_key: String,
        old_key: String,
        action: &'static str,
        #[source]
        source: CallError,
    },
}

/// What a person can do about a failure. The library names it; each front
/// end says how (the CLI as the flag or command to try).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Allow the user's other active key to be deleted to free a slot.
    AllowDeletingOtherActiveKey,
    /// Run again: the next run finishes (or undoes) what is left.
    RunAgain,
    /// Close rotation `id` as undone: its destination is gone for good.
    Abandon(i64),
    /// Reach a secret of another account through a role there (the error
    /// names the account).
    SecretRole,
    /// Reach IAM of another account than the caller's through a role there
    /// (the error names both accounts).
    Role,
}

impl RotateError {
    /// What to do next, when there is something to do.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            RotateError::Refused {
                source: Refusal::OtherActiveKey { .. },
                ..
            } => Some(Remedy::AllowDeletingOtherActiveKey),
            RotateError::OldKeyPending { .. }
            | RotateError::Unfinishable { .. }
            | RotateError::AfterFailedResume { .. } => Some(Remedy::RunAgain),
            RotateError::CannotResume { id, .. } => Some(Remedy::Abandon(*id)),
            RotateError::Destination { source, .. } => destination_remedy(source),
            _ => None,
        }
    }

    /// Another live run holds the user's lease: its work, not a failure.
    pub fn is_lease_held(&self) -> bool {
        matches!(self, RotateError::Journal { source, .. } if matches!(**source, JournalError::LeaseHeld { .. }))
    }
}

fn destination_remedy(e: &DestinationError) -> Option<Remedy> {
    matches!(e, DestinationError::Unreachable { .. }).then_some(Remedy::SecretRole)
}

/// What to do about any error of a run, whatever wraps it (a job that could
/// not be built, an account's failure): the first remedy down its chain.
pub fn remedy_of(e: &(dyn std::error::Error + 'static)) -> Option<Remedy> {
    let mut next = Some(e);
    while let Some(e) = next {
        let remedy = match (
            e.downcast_ref::<RotateError>(),
            e.downcast_ref::<DestinationError>(),
        ) {
            (Some(r), _) => r.remedy(),
            (None, Some(d)) => destination_remedy(d),
            (None, None) => None,
        };
        if remedy.is_some() {
            return remedy;
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_journal_or_access_error_says_its_source_once_along_the_chain() {
        let errors = [
            RotateError::Refused {
                target: "profile dev".into(),
                source: Refusal::Root,
            },
            RotateError::Journal {
                target: "profile dev".into(),
                source: Box::new(JournalError::Corrupt {
                    what: "a step without its rotation".into(),
                }),
            },
            RotateError::Access {
                target: "profile dev".into(),
                source: AccessError::Unknown("sideways".into()),
            },
        ];
        for e in errors {
            let source = std::error::Error::source(&e).unwrap().to_string();
            // What rekey's own chain printer says is unchanged...
            let chain = error_chain(&e);
            assert_eq!(chain, format!("profile dev: {source}"));
            // ...and anyhow's `{:#}` (the CLI's error line, a log) joins
            // every message as it is: the source once.
            let printed = format!("{:#}", anyhow::Error::new(e));
            assert_eq!(printed, chain);
        }
    }

    #[test]
    fn a_secret_another_account_denies_is_remedied_by_a_role_there_however_wrapped() {
        let denied = || DestinationError::Unreachable {
            what: "secretsmanager:arn:aws:secretsmanager:us-east-1:3:secret:x".into(),
            account: "333333333333".into(),
            source: CallError::Service {
                call: "secretsmanager:GetSecretValue",
                code: "AccessDeniedException".into(),
                message: "no".into(),
                kind: crate::error::FailureKind::Denied,
            },
        };
        let rotation = RotateError::Destination {
            target: "user svc".into(),
            what: "cannot read the key",
            source: denied(),
        };
        assert_eq!(rotation.remedy(), Some(Remedy::SecretRole));
        assert_eq!(remedy_of(&rotation), Some(Remedy::SecretRole));
        #[derive(Debug, thiserror::Error)]
        #[error("an account's failure")]
        struct Wrapped(#[source] RotateError);
        assert_eq!(remedy_of(&Wrapped(rotation)), Some(Remedy::SecretRole));
        let other = DestinationError::Gone { what: "f".into() };
        assert_eq!(remedy_of(&other), None);
    }
}
