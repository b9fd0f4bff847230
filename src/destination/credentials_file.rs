//! The shared credentials file (`~/.aws/credentials`) as a destination: one
//! or more profiles of one file that hold the same key, rewritten together
//! in one atomic write (DESIGN.md invariant 5) so they never disagree.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::{Destination, DestinationError, KeyPair};
use crate::awsfiles::{FileKind, Profiles, SharedFile, backup_path, write_atomically};

const ACCESS_KEY_ID: &str = "aws_access_key_id";
const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";

/// Profiles of one credentials file that hold one key.
#[derive(Debug, Clone)]
pub struct CredentialsFile {
    path: PathBuf,
    profiles: Vec<String>,
}

impl CredentialsFile {
    pub fn new(path: &Path, profiles: Vec<String>) -> Self {
        CredentialsFile {
            path: path.to_path_buf(),
            profiles,
        }
    }

    /// Parses a description written by [`Destination::describe`].
    pub fn from_description(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("credentials:")?;
        let (path, profiles) = rest.rsplit_once('#')?;
        Some(CredentialsFile {
            path: PathBuf::from(path),
            profiles: profiles.split(',').map(str::to_string).collect(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn profiles(&self) -> &[String] {
        &self.profiles
    }

    fn read(&self, path: &Path) -> Result<SharedFile, DestinationError> {
        Ok(SharedFile::read(FileKind::Credentials, path)?)
    }

    fn pair_in(&self, file: SharedFile) -> Option<KeyPair> {
        let profiles = Profiles::from_files(
            file,
            SharedFile::parse_as(FileKind::Config, Path::new(""), "").ok()?,
        );
        let p = profiles.get(self.profiles.first()?)?;
        Some(KeyPair {
            access_key_id: p.get(ACCESS_KEY_ID)?.to_string(),
            secret: SecretString::from(p.get(SECRET_ACCESS_KEY)?.to_string()),
        })
    }

    fn write(
        &self,
        access_key_id: &str,
        secret: &str,
        keep_backup: bool,
    ) -> Result<(), DestinationError> {
        // Re-read: the user may have edited the file since we planned.
        let mut file = self.read(&self.path)?;
        for profile in &self.profiles {
            file.set_keys(profile, access_key_id, secret)?;
        }
        let backup = backup_path(&self.path);
        write_atomically(
            &self.path,
            file.to_string().as_bytes(),
            keep_backup.then_some(backup.as_path()),
        )
        .map_err(|source| DestinationError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

impl Destination for CredentialsFile {
    fn describe(&self) -> String {
        format!(
            "credentials:{}#{}",
            self.path.display(),
            self.profiles.join(",")
        )
    }

    fn current_key_id(&self) -> Result<Option<String>, DestinationError> {
        Ok(self.current()?.map(|p| p.access_key_id))
    }

    fn current(&self) -> Result<Option<KeyPair>, DestinationError> {
        Ok(self.pair_in(self.read(&self.path)?))
    }

    fn deliver(&self, access_key_id: &str, secret: &SecretString) -> Result<(), DestinationError> {
        self.write(access_key_id, secret.expose_secret(), true)
    }

    fn restore(&self, old_key_id: &str) -> Result<(), DestinationError> {
        let backup = backup_path(&self.path);
        let old = self
            .pair_in(self.read(&backup)?)
            .filter(|p| p.access_key_id == old_key_id)
            .ok_or_else(|| DestinationError::NothingToRestore {
                what: backup.display().to_string(),
                key_id: old_key_id.to_string(),
            })?;
        // The backup keeps the previous version; don't overwrite it with the
        // key being abandoned.
        self.write(&old.access_key_id, old.secret.expose_secret(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# mine\n[dev]\naws_access_key_id = AKIAOLDOLDOLDOLD1234\naws_secret_access_key = oldsecret\n\n[ci]\naws_access_key_id=AKIAOLDOLDOLDOLD1234\naws_secret_access_key=oldsecret\n[other]\naws_access_key_id = AKIAOTHEROTHER123456\naws_secret_access_key = keepme\n";

    #[test]
    fn deliver_then_restore_round_trips_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, FILE).unwrap();
        let dest = CredentialsFile::new(&path, vec!["dev".into(), "ci".into()]);
        assert_eq!(
            dest.current_key_id().unwrap().as_deref(),
            Some("AKIAOLDOLDOLDOLD1234")
        );
        dest.deliver(
            "AKIANEWNEWNEWNEW5678",
            &SecretString::from("newsecret".to_string()),
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            FILE.replace("AKIAOLDOLDOLDOLD1234", "AKIANEWNEWNEWNEW5678")
                .replace("oldsecret", "newsecret")
        );
        assert_eq!(std::fs::read_to_string(backup_path(&path)).unwrap(), FILE);
        dest.restore("AKIAOLDOLDOLDOLD1234").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), FILE);
        assert!(dest.restore("AKIANOTTHEREAT000000").is_err());
    }

    #[test]
    fn descriptions_parse_back() {
        let dest = CredentialsFile::new(
            Path::new("/h/.aws/credentials"),
            vec!["a".into(), "b".into()],
        );
        let back = CredentialsFile::from_description(&dest.describe()).unwrap();
        assert_eq!(back.path(), Path::new("/h/.aws/credentials"));
        assert_eq!(back.profiles(), ["a", "b"]);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let pair = KeyPair {
            access_key_id: "AKIAOLDOLDOLDOLD1234".into(),
            secret: SecretString::from("supersecret".to_string()),
        };
        assert!(!format!("{pair:?}").contains("supersecret"));
    }
}
