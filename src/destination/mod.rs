//! Where a new secret goes so its consumer can read it. Each destination
//! can say which key it holds now (so an interrupted run can tell whether a
//! delivery happened), deliver a new key while keeping the old one until
//! the rotation ends, and put the old key back.
//!
//! Shared files (credentials and config), Secrets Manager secrets and SSM
//! parameters implement the trait. A destination whose consumers read it on their own
//! schedule stages a delivery and makes it current only once the new key
//! is verified ([`Destination::promote`]). What a destination is, the
//! journal keeps as a [`DestinationSpec`], and a job's spec names its
//! destinations the same way; [`open`] is the one road from a spec to the
//! destination (a [`Binding`] — what a person writes — only becomes a
//! spec), whether the rotation is fresh or resumed (issue 16).

mod binding;
pub mod credentials_file;
mod route;
pub mod secrets_manager;
mod spec;
pub mod ssm;

use std::sync::Arc;

use futures::future::BoxFuture;
use secrecy::SecretString;

use crate::model::mask_key_id;

pub use binding::Binding;
pub use credentials_file::CredentialsFile;
pub use route::Reach;
pub use secrets_manager::{SecretRole, SecretsManagerSecret};
pub use spec::DestinationSpec;
pub use ssm::{SsmForm, SsmParameter};

/// A key pair read back from a destination: what the engine signs with
/// when it must act as the old (or new) key.
pub struct KeyPair {
    pub access_key_id: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for KeyPair {
    // Never the secret, not even in a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a destination could not be read or written. None holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error(transparent)]
    File(#[from] crate::awsfiles::FileError),
    #[error("cannot write {}", path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {} to edit a file in it", path.display())]
    Lock {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} holds no key {key_id} to restore")]
    NothingToRestore { what: String, key_id: String },
    /// `place` names what in the destination holds the key, by its kind:
    /// `profile dev`, `parameter /ci/svc`, `stage AWSCURRENT`.
    #[error(
        "{what}: {place} now holds {}, not the key being rotated; someone changed it, so rekey leaves it alone",
        holds.as_deref().unwrap_or("no key")
    )]
    Changed {
        what: String,
        place: String,
        holds: Option<String>,
    },
    /// What [`Destination::accepts`] refuses: another key where the key
    /// being rotated should be.
    #[error(
        "{what} {holds}, not the key {rotated} being rotated; rekey does not overwrite another key"
    )]
    HoldsAnotherKey {
        what: String,
        /// `holds AKIA…1234`, or for several profiles, each that differs.
        holds: String,
        rotated: String,
    },
    #[error("{what}: the file or its profiles are gone")]
    Gone { what: String },
    #[error("{what} does not exist; {why}")]
    NotFound { what: String, why: &'static str },
    #[error("a destination of kind `{kind}`, which this build of rekey does not know")]
    UnknownKind { kind: String },
    #[error("{doing} {what}")]
    Call {
        what: String,
        doing: &'static str,
        #[source]
        source: crate::error::CallError,
    },
    #[error("{what}: {reason}")]
    Malformed { what: String, reason: String },
    #[error("{what} is refused: {reason}")]
    Refused { what: String, reason: String },
    /// A secret of another account than its user's, reached without a
    /// role there, denied (or not even visible).
    #[error("{what} is in account {account}, which these credentials cannot reach")]
    Unreachable {
        what: String,
        account: String,
        #[source]
        source: crate::error::CallError,
    },
}

/// A destination call's answer, later. Destinations are async because
/// most are AWS calls (Secrets Manager, SSM), and used as
/// `dyn Destination`, hence boxed futures rather than `async fn`.
pub type Io<'a, T> = BoxFuture<'a, Result<T, DestinationError>>;

/// A place a key pair is delivered to.
pub trait Destination: Send + Sync {
    /// What it is, for the journal: enough to rebuild it exactly.
    fn spec(&self) -> DestinationSpec;

    /// A stable name for journal events and messages (never a secret),
    /// e.g. `credentials:/home/u/.aws/credentials#dev,ci`.
    fn describe(&self) -> String;

    /// The access key ID the destination holds now.
    fn current_key_id(&self) -> Io<'_, Option<String>>;

    /// The key pair it holds now (to sign with it).
    fn current(&self) -> Io<'_, Option<KeyPair>>;

    /// A pair delivered but not yet made current (see
    /// [`Destination::promote`]); None for destinations that write in place.
    fn staged(&self) -> Io<'_, Option<KeyPair>> {
        Box::pin(async { Ok(None) })
    }

    /// Refuses, before any change, a destination rekey must not rotate
    /// (e.g. a secret another function rotates).
    fn check(&self) -> Io<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Whether a delivery is staged and needs [`Destination::promote`]
    /// once the new key is verified.
    fn stages_delivery(&self) -> bool {
        false
    }

    /// Makes the delivered, verified `new` pair the one consumers read.
    /// Idempotent. A no-op where delivery writes in place (files).
    fn promote<'a>(&'a self, _new: &'a KeyPair) -> Io<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Where it does not hold the `new` pair, one line each (empty: it
    /// holds it everywhere). The read-back before the old key is retired.
    /// One line naming what it holds instead; a destination of several
    /// places (profiles of a file) says which of them differ. By key ID; a
    /// destination written in several parts (an SSM pair) compares what a
    /// reader gets, the secret too.
    fn missing<'a>(&'a self, new: &'a KeyPair) -> Io<'a, Vec<String>> {
        Box::pin(async move {
            let access_key_id = new.access_key_id.as_str();
            let holds = self.current_key_id().await?;
            Ok(if holds.as_deref() == Some(access_key_id) {
                vec![]
            } else {
                vec![format!(
                    "{} holds {}",
                    self.describe(),
                    holds.as_deref().map_or("no key".into(), mask_key_id)
                )]
            })
        })
    }

    /// Whether [`Destination::deliver`] would put a new key in place of
    /// `old_key_id`, read only: it refuses a destination holding another
    /// key. A rotation asks every destination before its first change, so
    /// a dry run says what a real run would do (issue 15 #5). By default a
    /// destination holding no key pair may take one (a first delivery).
    /// Returns the key it holds (`old_key_id`), None when it holds none.
    fn accepts<'a>(&'a self, old_key_id: &'a str) -> Io<'a, Option<String>> {
        Box::pin(async move {
            match self.current_key_id().await? {
                Some(holds) if holds != old_key_id => Err(DestinationError::HoldsAnotherKey {
                    what: self.describe(),
                    holds: format!("holds {}", mask_key_id(&holds)),
                    rotated: mask_key_id(old_key_id),
                }),
                held => Ok(held),
            }
        })
    }

    /// The pair `key_id` as this destination holds it, current or staged:
    /// where a resumed rotation finds its new secret again.
    fn holding<'a>(&'a self, key_id: &'a str) -> Io<'a, Option<KeyPair>> {
        Box::pin(async move {
            if let Some(pair) = self.current().await?.filter(|p| p.access_key_id == key_id) {
                return Ok(Some(pair));
            }
            Ok(self.staged().await?.filter(|p| p.access_key_id == key_id))
        })
    }

    /// Writes the new pair in place of `old_key_id` (or, for a destination
    /// that [stages deliveries](Destination::stages_delivery), gets ready
    /// to), first keeping the old pair where [`Destination::restore`] finds
    /// it. Idempotent. Refuses to overwrite a key that is neither the old
    /// nor the new one.
    fn deliver<'a>(&'a self, new: &'a KeyPair, old_key_id: &'a str) -> Io<'a, ()>;

    /// Where it holds `new_key_id`, puts back the pair of `old_key_id`.
    fn restore<'a>(&'a self, old_key_id: &'a str, new_key_id: &'a str) -> Io<'a, ()>;

    /// Forgets the kept old pair: the rotation has ended.
    fn release_old<'a>(&'a self, old_key_id: &'a str) -> Io<'a, ()>;
}

/// Opens the destination `spec` names, whether a rotation is fresh (its
/// spec made from a binding or a profile) or resumed (its spec read back
/// from the journal): one road, so a resumed rotation reaches exactly what
/// a fresh one would. Only builds: no call is made until the destination
/// is used. AWS destinations are reached as `reach` says. A kind this
/// build does not know, or an old string naming a file that is gone, is an
/// error naming it, never dropped.
pub fn open(
    spec: &DestinationSpec,
    reach: &Reach,
) -> Result<Arc<dyn Destination>, DestinationError> {
    Ok(match spec {
        DestinationSpec::SecretsManager {
            secret_id,
            region,
            role,
            external_id,
            rotation_token,
        } => {
            let role = role.clone().map(|arn| (arn, external_id.clone()));
            Arc::new(
                SecretsManagerSecret::new(secret_id, region.clone(), role, reach)
                    .rotated_with(rotation_token.clone()),
            )
        }
        DestinationSpec::Ssm {
            path,
            form,
            region,
            role,
            external_id,
        } => {
            let role = role.clone().map(|arn| (arn, external_id.clone()));
            Arc::new(SsmParameter::new(path, *form, region.clone(), role, reach))
        }
        DestinationSpec::SharedFile {
            file: crate::awsfiles::FileKind::Credentials,
            path,
            profiles,
        } => Arc::new(CredentialsFile::new(path, profiles.clone())),
        DestinationSpec::SharedFile { path, profiles, .. } => {
            Arc::new(CredentialsFile::config(path, profiles.clone()))
        }
        DestinationSpec::Legacy(text) => Arc::new(CredentialsFile::from_legacy(text)?),
        DestinationSpec::Unknown { kind, .. } => {
            return Err(DestinationError::UnknownKind { kind: kind.clone() });
        }
    })
}
