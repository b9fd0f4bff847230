//! Where a new secret goes so its consumer can read it. Each destination
//! can say which key it holds now (so an interrupted run can tell whether a
//! delivery happened), deliver a new key, and put the previous key back.
//!
//! Only the credentials file exists today; Secrets Manager and SSM
//! Parameter Store destinations implement the same trait.

pub mod credentials_file;

use secrecy::SecretString;

pub use credentials_file::CredentialsFile;

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

/// Why a destination could not be read or written.
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
    #[error("{what} holds no key {key_id} to restore")]
    NothingToRestore { what: String, key_id: String },
}

/// A place a key pair is delivered to.
pub trait Destination: Send + Sync {
    /// A stable description for the journal and messages (never a secret),
    /// e.g. `credentials:/home/u/.aws/credentials#dev,ci`.
    fn describe(&self) -> String;

    /// The access key ID the destination holds now.
    fn current_key_id(&self) -> Result<Option<String>, DestinationError>;

    /// The key pair it holds now (to sign with it).
    fn current(&self) -> Result<Option<KeyPair>, DestinationError>;

    /// Writes the new key pair.
    fn deliver(&self, access_key_id: &str, secret: &SecretString) -> Result<(), DestinationError>;

    /// Puts back the key pair `old_key_id` that was there before the last
    /// delivery.
    fn restore(&self, old_key_id: &str) -> Result<(), DestinationError>;
}
