//! A shared credentials or config file as a destination: the profiles of
//! one file that hold one key, rewritten together in one atomic write
//! (DESIGN.md invariant 5) so they never disagree.
//!
//! Two rules make concurrent runs safe (issue 9 #1, #2):
//! - every read-modify-write happens under an exclusive lock on the file's
//!   directory, with the file re-read under it, so one run's rewrite never
//!   puts back another run's old key;
//! - before a delivery replaces the old key, its pair is kept in a file of
//!   its own next to the destination (`<file>.rekey-old-<old key ID>`,
//!   0600), which only this rotation reads and which is removed when the
//!   rotation ends. Undo never depends on a backup that another rotation
//!   may have overwritten.

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::{Destination, DestinationError, DestinationSpec, Io, KeyPair};
use crate::awsfiles::{FileKind, SharedFile, backup_path, write_atomically};

/// How long a delivery waits for another rekey run's edit of the same file.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Profiles of one shared file that hold one key.
#[derive(Debug, Clone)]
pub struct CredentialsFile {
    kind: FileKind,
    path: PathBuf,
    profiles: Vec<String>,
    /// The journal's name for it: [`Destination::describe`].
    label: String,
}

impl CredentialsFile {
    /// Profiles of the shared credentials file. A relative path is made
    /// absolute now, so a resumed run finds the same file from anywhere.
    pub fn new(path: &Path, profiles: Vec<String>) -> Self {
        Self::of_kind(FileKind::Credentials, path, profiles)
    }

    /// Profiles of the shared config file (`[profile NAME]` sections).
    pub fn config(path: &Path, profiles: Vec<String>) -> Self {
        Self::of_kind(FileKind::Config, path, profiles)
    }

    fn of_kind(kind: FileKind, path: &Path, profiles: Vec<String>) -> Self {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let prefix = match kind {
            FileKind::Credentials => "credentials",
            FileKind::Config => "config",
        };
        let label = format!("{prefix}:{}#{}", path.display(), profiles.join(","));
        CredentialsFile {
            kind,
            path,
            profiles,
            label,
        }
    }

    /// Rebuilds a destination from a description rekey journaled before
    /// destinations were typed (`credentials:PATH#a,b`). Profile names and
    /// paths may hold `#` and `,`, so every split is tried against the file
    /// itself: the path must name a file, and the list must be profiles of
    /// it, in file order. A relative path is taken from the current
    /// directory; if no file matches, the rotation needs the way out in the
    /// README ("A rotation whose destination is gone").
    pub fn from_legacy(text: &str) -> Result<Self, DestinationError> {
        let gone = || DestinationError::Gone {
            what: text.to_string(),
        };
        let rest = text.strip_prefix("credentials:").ok_or_else(gone)?;
        for (i, _) in rest.match_indices('#') {
            let (path, list) = (Path::new(&rest[..i]), &rest[i + 1..]);
            if !path.is_file() {
                continue;
            }
            let file = SharedFile::read(FileKind::Credentials, path)?;
            let names: Vec<&str> = file.profile_names().collect();
            if let Some(profiles) = split_names(list, &names) {
                let mut dest = Self::new(path, profiles);
                // Events of the rotation name it by this exact text.
                dest.label = text.to_string();
                return Ok(dest);
            }
        }
        Err(gone())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn profiles(&self) -> &[String] {
        &self.profiles
    }

    /// Where the old pair is kept while a rotation of `old_key_id` runs.
    pub fn old_pair_path(&self, old_key_id: &str) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".rekey-old-{old_key_id}"));
        PathBuf::from(name)
    }

    fn read(&self) -> Result<SharedFile, DestinationError> {
        Ok(SharedFile::read(self.kind, &self.path)?)
    }

    /// The pair a profile of `file` holds.
    fn pair(file: &SharedFile, profile: &str) -> Option<KeyPair> {
        let (id, secret) = file.keys(profile)?;
        Some(KeyPair {
            access_key_id: id.to_string(),
            secret: SecretString::from(secret.to_string()),
        })
    }

    /// Reads the file under the lock, lets `edit` change it, and writes it
    /// back atomically when `edit` says so.
    fn edit(
        &self,
        edit: impl FnOnce(&mut SharedFile) -> Result<bool, DestinationError>,
    ) -> Result<(), DestinationError> {
        let _lock = lock_dir(&self.path)?;
        let mut file = self.read()?;
        if !edit(&mut file)? {
            return Ok(());
        }
        write_atomically(&self.path, file.to_string().as_bytes(), None).map_err(|source| {
            DestinationError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// The kept old pair, or (for a rotation begun by an older rekey) the
    /// whole-file backup it wrote, if that still holds the old key.
    fn kept_old_pair(&self, old_key_id: &str) -> Result<KeyPair, DestinationError> {
        let kept = self.old_pair_path(old_key_id);
        if kept.exists() {
            let file = SharedFile::read(FileKind::Credentials, &kept)?;
            if let Some(pair) = Self::pair(&file, KEPT_SECTION)
                && pair.access_key_id == old_key_id
            {
                return Ok(pair);
            }
        }
        let backup = backup_path(&self.path);
        let file = SharedFile::read(self.kind, &backup)?;
        self.profiles
            .iter()
            .filter_map(|p| Self::pair(&file, p))
            .find(|p| p.access_key_id == old_key_id)
            .ok_or_else(|| DestinationError::NothingToRestore {
                what: kept.display().to_string(),
                key_id: old_key_id.to_string(),
            })
    }
}

/// The section name inside a kept-old-pair file.
const KEPT_SECTION: &str = "rekey-old-key";

/// The file's side of each [`Destination`] call, run inline: an edit is a
/// read and an atomic write of a small local file under a lock another
/// rekey run holds for milliseconds. The trait's futures run these.
impl CredentialsFile {
    pub fn current_key_id(&self) -> Result<Option<String>, DestinationError> {
        Ok(self.current()?.map(|p| p.access_key_id))
    }

    pub fn current(&self) -> Result<Option<KeyPair>, DestinationError> {
        let file = self.read()?;
        Ok(self.profiles.first().and_then(|p| Self::pair(&file, p)))
    }

    pub fn missing(&self, access_key_id: &str) -> Result<Vec<String>, DestinationError> {
        let file = self.read()?;
        Ok(self
            .profiles
            .iter()
            .filter(|p| file.keys(p).map(|(id, _)| id) != Some(access_key_id))
            .map(|p| match file.keys(p) {
                Some((id, _)) => format!("profile {p} holds {}", crate::model::mask_key_id(id)),
                None => format!("profile {p} holds no key"),
            })
            .collect())
    }

    pub fn deliver(&self, new: &KeyPair, old_key_id: &str) -> Result<(), DestinationError> {
        let kept = self.old_pair_path(old_key_id);
        // Kept afresh (once) by every delivery, whatever is at that name:
        // a file or link left there is not this rotation's pair.
        let mut kept_now = false;
        self.edit(|file| {
            for profile in &self.profiles {
                let holds = file.keys(profile).map(|(id, _)| id.to_string());
                match holds.as_deref() {
                    Some(id) if id == new.access_key_id => {}
                    Some(id) if id == old_key_id => {
                        if !kept_now {
                            let old = Self::pair(file, profile).expect("the profile holds it");
                            keep_pair(&kept, &old, &self.path)?;
                            kept_now = true;
                        }
                    }
                    // Someone changed the profile since it was planned:
                    // overwriting would lose their key.
                    other => {
                        return Err(DestinationError::Changed {
                            what: self.label.clone(),
                            place: format!("profile {profile}"),
                            holds: other.map(crate::model::mask_key_id),
                        });
                    }
                }
            }
            for profile in &self.profiles {
                file.set_keys(profile, &new.access_key_id, new.secret.expose_secret())?;
            }
            Ok(true)
        })
    }

    pub fn restore(&self, old_key_id: &str, new_key_id: &str) -> Result<(), DestinationError> {
        let mut old = None;
        self.edit(|file| {
            let mut changed = false;
            for profile in &self.profiles {
                if file.keys(profile).map(|(id, _)| id) != Some(new_key_id) {
                    continue;
                }
                if old.is_none() {
                    old = Some(self.kept_old_pair(old_key_id)?);
                }
                let pair = old.as_ref().expect("set above");
                file.set_keys(profile, &pair.access_key_id, pair.secret.expose_secret())?;
                changed = true;
            }
            Ok(changed)
        })
    }

    pub fn release_old(&self, old_key_id: &str) -> Result<(), DestinationError> {
        let kept = self.old_pair_path(old_key_id);
        match fs::remove_file(&kept) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(DestinationError::Write {
                path: kept,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

impl Destination for CredentialsFile {
    fn spec(&self) -> DestinationSpec {
        DestinationSpec::SharedFile {
            file: self.kind,
            path: self.path.clone(),
            profiles: self.profiles.clone(),
        }
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn current_key_id(&self) -> Io<'_, Option<String>> {
        Box::pin(async move { CredentialsFile::current_key_id(self) })
    }

    fn current(&self) -> Io<'_, Option<KeyPair>> {
        Box::pin(async move { CredentialsFile::current(self) })
    }

    fn missing<'a>(&'a self, new: &'a KeyPair) -> Io<'a, Vec<String>> {
        Box::pin(async move { CredentialsFile::missing(self, &new.access_key_id) })
    }

    /// Every profile must hold the old key: a file has no first delivery.
    fn accepts<'a>(&'a self, old_key_id: &'a str) -> Io<'a, Option<String>> {
        Box::pin(async move {
            let differ = CredentialsFile::missing(self, old_key_id)?;
            if differ.is_empty() {
                return Ok(Some(old_key_id.to_string()));
            }
            Err(DestinationError::HoldsAnotherKey {
                what: format!("{}:", self.describe()),
                holds: differ.join(", "),
                rotated: crate::model::mask_key_id(old_key_id),
            })
        })
    }

    fn deliver<'a>(&'a self, new: &'a KeyPair, old_key_id: &'a str) -> Io<'a, ()> {
        Box::pin(async move { CredentialsFile::deliver(self, new, old_key_id) })
    }

    fn restore<'a>(&'a self, old_key_id: &'a str, new_key_id: &'a str) -> Io<'a, ()> {
        Box::pin(async move { CredentialsFile::restore(self, old_key_id, new_key_id) })
    }

    fn release_old<'a>(&'a self, old_key_id: &'a str) -> Io<'a, ()> {
        Box::pin(async move { CredentialsFile::release_old(self, old_key_id) })
    }
}

/// Writes the old pair to its own file, 0600, atomically, owned like the
/// file it came from (root's cron job must not leave a root-owned file in a
/// user's ~/.aws).
fn keep_pair(path: &Path, pair: &KeyPair, like: &Path) -> Result<(), DestinationError> {
    let text = format!(
        "# rekey keeps this key until its rotation ends, to put it back if the\n\
         # rotation is undone; it deletes this file then.\n\
         [{KEPT_SECTION}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        pair.access_key_id,
        pair.secret.expose_secret()
    );
    let write_error = |source| DestinationError::Write {
        path: path.to_path_buf(),
        source,
    };
    crate::atomic::write_own(path, text.as_bytes(), 0o600, like).map_err(write_error)
}

/// An exclusive lock on the directory holding `path`, held until the
/// returned handle is dropped. The directory, not the file: the file is
/// replaced by rename, and a lock on a replaced inode guards nothing.
fn lock_dir(path: &Path) -> Result<File, DestinationError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io_error = |source| DestinationError::Lock {
        path: dir.to_path_buf(),
        source,
    };
    let handle = File::open(dir).map_err(io_error)?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match handle.try_lock() {
            Ok(()) => return Ok(handle),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(io_error(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("another process held the lock for {}s", LOCK_WAIT.as_secs()),
                )));
            }
            Err(TryLockError::Error(e)) => return Err(io_error(e)),
        }
    }
}

/// Splits `list` (names joined by `,`) into names from `names`, in order.
fn split_names(list: &str, names: &[&str]) -> Option<Vec<String>> {
    fn go(rest: &str, names: &[&str], out: &mut Vec<String>) -> bool {
        for (i, name) in names.iter().enumerate() {
            let Some(after) = rest.strip_prefix(name) else {
                continue;
            };
            out.push(name.to_string());
            let done = match after.strip_prefix(',') {
                None if after.is_empty() => true,
                None => false,
                Some(next) => go(next, &names[i + 1..], out),
            };
            if done {
                return true;
            }
            out.pop();
        }
        false
    }
    let mut out = Vec::new();
    go(list, names, &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# mine\n[dev]\naws_access_key_id = AKIAOLDOLDOLDOLD1234\naws_secret_access_key = oldsecret\n\n[ci]\naws_access_key_id=AKIAOLDOLDOLDOLD1234\naws_secret_access_key=oldsecret\n[other]\naws_access_key_id = AKIAOTHEROTHER123456\naws_secret_access_key = keepme\n";
    const OLD: &str = "AKIAOLDOLDOLDOLD1234";
    const NEW: &str = "AKIANEWNEWNEWNEW5678";

    fn new_pair() -> KeyPair {
        KeyPair {
            access_key_id: NEW.into(),
            secret: SecretString::from("newsecret".to_string()),
        }
    }

    #[test]
    fn a_file_accepts_a_new_key_only_where_every_profile_holds_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, FILE).unwrap();
        let both = CredentialsFile::new(&path, vec!["dev".into(), "ci".into()]);
        let accepts =
            |d: &CredentialsFile, key| futures::executor::block_on(Destination::accepts(d, key));
        assert!(accepts(&both, OLD).is_ok());
        let with_other = CredentialsFile::new(&path, vec!["dev".into(), "other".into()]);
        let e = accepts(&with_other, OLD).unwrap_err().to_string();
        assert!(
            e.ends_with("#dev,other: profile other holds AKIA…3456, not the key AKIA…1234 being rotated; rekey does not overwrite another key"),
            "{e}"
        );
        let gone = CredentialsFile::new(&path, vec!["gone".into()]);
        let e = accepts(&gone, OLD).unwrap_err().to_string();
        assert!(e.contains("profile gone holds no key, not the key"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), FILE, "read only");
    }

    #[test]
    fn deliver_then_restore_round_trips_the_file_and_forgets_the_old_pair() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, FILE).unwrap();
        let dest = CredentialsFile::new(&path, vec!["dev".into(), "ci".into()]);
        assert_eq!(dest.current_key_id().unwrap().as_deref(), Some(OLD));
        dest.deliver(&new_pair(), OLD).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            FILE.replace(OLD, NEW).replace("oldsecret", "newsecret")
        );
        let kept = dest.old_pair_path(OLD);
        assert!(fs::read_to_string(&kept).unwrap().contains("oldsecret"));
        // No whole-file backup: old secrets don't outlive their rotation.
        assert!(!backup_path(&path).exists());
        // Delivering again (a resumed run) changes nothing.
        dest.deliver(&new_pair(), OLD).unwrap();
        dest.restore(OLD, NEW).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), FILE);
        dest.release_old(OLD).unwrap();
        assert!(!kept.exists());
        dest.release_old(OLD).unwrap();
    }

    #[test]
    fn undo_puts_back_only_profiles_holding_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, FILE).unwrap();
        let dev = CredentialsFile::new(&path, vec!["dev".into()]);
        let ci = CredentialsFile::new(&path, vec!["ci".into()]);
        dev.deliver(&new_pair(), OLD).unwrap();
        // Another rotation of the same file writes `ci` meanwhile; undoing
        // `dev` leaves its edit alone.
        let other = KeyPair {
            access_key_id: "AKIATHIRDTHIRDTHIRD9".into(),
            secret: SecretString::from("third".to_string()),
        };
        ci.deliver(&other, OLD).unwrap();
        dev.restore(OLD, NEW).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let file = SharedFile::parse(&path, &text).unwrap();
        assert_eq!(file.keys("dev"), Some((OLD, "oldsecret")));
        assert_eq!(file.keys("ci"), Some(("AKIATHIRDTHIRDTHIRD9", "third")));
    }

    /// Issue 9 #1: a delivery waits for another run's edit of the same
    /// file, then re-reads it. Without the lock the write would land while
    /// the other run holds it; without the re-read it would put back what
    /// the other run changed.
    #[test]
    fn a_delivery_waits_for_another_edit_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, FILE).unwrap();
        let held = lock_dir(&path).unwrap();
        let dest = CredentialsFile::new(&path, vec!["dev".into(), "ci".into()]);
        let writer = std::thread::spawn(move || dest.deliver(&new_pair(), OLD));
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            FILE,
            "written while locked"
        );
        // What the lock holder writes meanwhile survives the delivery.
        let other = FILE.replace("keepme", "changed-by-the-other-run");
        fs::write(&path, &other).unwrap();
        drop(held);
        writer.join().unwrap().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("changed-by-the-other-run"), "{text}");
        assert!(text.contains(NEW) && !text.contains(OLD));
    }

    #[test]
    fn a_profile_changed_since_planning_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, FILE).unwrap();
        let dest = CredentialsFile::new(&path, vec!["other".into()]);
        let err = dest.deliver(&new_pair(), OLD).unwrap_err();
        assert!(matches!(err, DestinationError::Changed { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), FILE);
    }

    #[test]
    fn legacy_descriptions_with_separators_in_names_parse_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a#b");
        fs::create_dir(&sub).unwrap();
        let path = sub.join("credentials");
        let key = "aws_access_key_id = AKIAOLDOLDOLDOLD1234\naws_secret_access_key = s\n";
        fs::write(&path, format!("[dev#1]\n{key}[ci,dev]\n{key}[x]\n{key}")).unwrap();
        let text = format!("credentials:{}#dev#1,ci,dev", path.display());
        let dest = CredentialsFile::from_legacy(&text).unwrap();
        assert_eq!(dest.path(), path);
        assert_eq!(dest.profiles(), ["dev#1", "ci,dev"]);
        assert_eq!(dest.describe(), text);
        let gone = format!("credentials:{}/nowhere#dev", dir.path().display());
        assert!(matches!(
            CredentialsFile::from_legacy(&gone),
            Err(DestinationError::Gone { .. })
        ));
    }

    #[test]
    fn config_file_profiles_are_their_own_destination() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        let text = format!(
            "[default]\nregion = eu-west-1\n[profile legacy]\naws_access_key_id = {OLD}\naws_secret_access_key = oldsecret\n"
        );
        fs::write(&path, &text).unwrap();
        let dest = CredentialsFile::config(&path, vec!["legacy".into()]);
        assert_eq!(dest.current_key_id().unwrap().as_deref(), Some(OLD));
        dest.deliver(&new_pair(), OLD).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            text.replace(OLD, NEW).replace("oldsecret", "newsecret")
        );
        assert!(dest.describe().starts_with("config:"));
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        let dest = CredentialsFile::new(Path::new("rel/credentials"), vec!["a".into()]);
        assert!(dest.path().is_absolute());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert!(!format!("{:?}", new_pair()).contains("newsecret"));
    }
}
