//! Writing a file so that a reader (or a crash) sees the old version or the
//! new one, never half of either, with its owner and group kept (DESIGN.md
//! invariant 5). Shared by the credentials file (0600, with a backup), the
//! schedule files (0644) and reports.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where [`write`] should keep the previous version of `path`:
/// `<path>.rekey-backup`, next to it. One backup per file, replaced on each
/// write, so it always holds the version before the last rewrite.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".rekey-backup");
    PathBuf::from(name)
}

/// Replaces the file at `path` with `contents` so that a crash leaves either
/// the old or the new file, never a mix: temp file in the same directory
/// (created 0600, so a secret is never readable by others, then given
/// `mode` whatever the umask), fsync, backup of the previous contents (0600,
/// written the same way), rename, fsync of the directory. A symlink at
/// `path` is written through, not replaced, so dotfile repositories keep
/// their links.
///
/// The new file and the backup get the owner and group of the file they
/// replace: root (a system cron job) rewriting a user's file must not leave
/// it `root:root`, unreadable by the user it belongs to (issue 9, item 5).
/// Where they cannot be kept (a user who is not root and not in the file's
/// group), nothing is replaced and the error says so.
///
/// Errors are plain `io::Error`s; the caller adds which file it was writing.
pub fn write(path: &Path, contents: &[u8], mode: u32, backup: Option<&Path>) -> io::Result<()> {
    let target = resolve_symlinks(path)?;
    let owner = Owner::of(&target)?;
    let new = TempFile::write_next_to(&target, contents, mode, owner)?;
    if let Some(backup) = backup {
        match fs::read(&target) {
            Ok(previous) => {
                TempFile::write_next_to(backup, &previous, 0o600, owner)?.rename_to(backup)?;
                sync_dir(parent_dir(backup))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    new.rename_to(&target)?;
    sync_dir(parent_dir(&target))
}

/// Writes a file of rekey's own at `path` the same way, owned like `like`
/// (the file it belongs with). Unlike [`write`], a symlink found at `path`
/// is replaced, never written through: the name is rekey's, so a link
/// there was planted, and root following it would overwrite (and give
/// away) whatever it points to. The owner is set on the new file before it
/// takes the name, so no chown ever acts on a path someone can swap.
pub fn write_own(path: &Path, contents: &[u8], mode: u32, like: &Path) -> io::Result<()> {
    let owner = Owner::of(like)?;
    TempFile::write_next_to(path, contents, mode, owner)?.rename_to(path)?;
    sync_dir(parent_dir(path))
}

/// Checks that [`write`] could replace `path`, changing nothing a reader
/// can see: its directory exists and takes a new file, and `path` is not a
/// directory. A command checks this before its work, so that it does not
/// lose that work at the end (issue 9, item 11).
pub fn check_writable(path: &Path) -> io::Result<()> {
    // `reports/` names a directory even before it exists; without this,
    // its parent takes the temp file, and only the final rename fails
    // (issue 15).
    let text = path.to_string_lossy();
    if path.file_name().is_none() || text.ends_with('/') || text.ends_with("/.") {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            format!(
                "{} names a directory, not a file: give the file's name, e.g. {}",
                path.display(),
                Path::new(text.trim_end_matches(['/', '.']))
                    .join("report.html")
                    .display()
            ),
        ));
    }
    check_dir(parent_dir(path))?;
    let target = resolve_symlinks(path)?;
    let dir = parent_dir(&target);
    check_dir(dir)?;
    if fs::metadata(&target).is_ok_and(|meta| meta.is_dir()) {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            format!("{} is a directory", target.display()),
        ));
    }
    // Creating the temp file that `write` would create is the one honest
    // test: permissions, ACLs, read-only mounts and immutable flags all
    // show. It is removed on drop.
    TempFile::write_next_to(&target, b"", 0o600, None)
        .map(drop)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create a file in {}: {e}", dir.display()),
            )
        })
}

fn check_dir(dir: &Path) -> io::Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
            e.kind(),
            format!("directory {} does not exist", dir.display()),
        )),
        Err(e) => Err(e),
    }
}

/// The owner and group a file had, to give its replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    uid: u32,
    gid: u32,
}

impl Owner {
    /// `None` when there is nothing to keep: no file yet, or no Unix owners.
    fn of(path: &Path) -> io::Result<Option<Owner>> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match fs::metadata(path) {
                Ok(meta) => Ok(Some(Owner {
                    uid: meta.uid(),
                    gid: meta.gid(),
                })),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(None)
        }
    }

    /// Gives `file` this owner and group, unless it has them already (the
    /// usual case, which needs no privilege).
    #[cfg(unix)]
    fn give(self, file: &File) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        if (meta.uid(), meta.gid()) == (self.uid, self.gid) {
            return Ok(());
        }
        std::os::unix::fs::fchown(file, Some(self.uid), Some(self.gid)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot keep the file's owner {}:{} ({e}); run as that user or as root",
                    self.uid, self.gid
                ),
            )
        })
    }
}

fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    // The kernel's own limit (ELOOP) is 40 on Linux.
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                path = parent_dir(&path).join(fs::read_link(&path)?);
            }
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => return Ok(path),
        }
    }
    Err(io::Error::other(format!(
        "too many symbolic links at {}",
        path.display()
    )))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // Makes the rename itself durable; Windows cannot open a directory.
    if cfg!(unix) {
        File::open(dir)?.sync_all()
    } else {
        Ok(())
    }
}

/// A temp file removed on drop unless renamed into place.
struct TempFile {
    path: PathBuf,
    renamed: bool,
}

impl TempFile {
    fn write_next_to(
        target: &Path,
        contents: &[u8],
        mode: u32,
        owner: Option<Owner>,
    ) -> io::Result<TempFile> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = target.file_name().unwrap_or(target.as_os_str());
        loop {
            let mut temp = OsString::from(".");
            temp.push(name);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            temp.push(format!(".rekey-tmp-{}-{n}", std::process::id()));
            let path = parent_dir(target).join(temp);
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&path) {
                Ok(mut file) => {
                    let temp = TempFile {
                        path,
                        renamed: false,
                    };
                    file.write_all(contents)?;
                    // Owner first: chown may clear mode bits, and the mode
                    // is set, not only requested at creation, because the
                    // umask may have taken bits away.
                    #[cfg(unix)]
                    if let Some(owner) = owner {
                        owner.give(&file)?;
                    }
                    #[cfg(unix)]
                    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
                    #[cfg(not(unix))]
                    let _ = (mode, owner);
                    file.sync_all()?;
                    return Ok(temp);
                }
                // A leftover from a crashed run with the same PID.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn rename_to(mut self, to: &Path) -> io::Result<()> {
        fs::rename(&self.path, to)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    /// An owner nobody on the test machine logs in as (`nobody:nogroup`).
    const OTHER: u32 = 65534;

    fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
        let meta = fs::metadata(path).unwrap();
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o777)
    }

    #[test]
    fn a_rewrite_keeps_the_owner_and_group_of_the_file_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        fs::write(&path, "old").unwrap();
        // Giving a file away needs root; the suite runs as root (CI too).
        std::os::unix::fs::chown(&path, Some(OTHER), Some(OTHER))
            .expect("chown to 65534:65534: this test must run as root");
        let backup = backup_path(&path);

        write(&path, b"new", 0o600, Some(&backup)).unwrap();

        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(owner_and_mode(&path), (OTHER, OTHER, 0o600));
        assert_eq!(fs::read(&backup).unwrap(), b"old");
        assert_eq!(owner_and_mode(&backup), (OTHER, OTHER, 0o600));
    }

    #[test]
    fn a_new_file_belongs_to_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        write(&path, b"x", 0o644, None).unwrap();
        let meta = fs::metadata(&path).unwrap();
        let me = fs::metadata(dir.path()).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (me.uid(), 0o644));
    }

    #[test]
    fn check_writable_names_what_is_wrong_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("report.html")).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        let missing = dir.path().join("no-such-dir/report.html");
        let err = check_writable(&missing).unwrap_err().to_string();
        assert!(
            err.contains("no-such-dir") && err.contains("does not exist"),
            "{err}"
        );

        let err = check_writable(dir.path()).unwrap_err().to_string();
        assert!(err.ends_with("is a directory"), "{err}");

        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let err = check_writable(&file.join("report.html"))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("file is not a directory"), "{err}");

        // A directory named as one, whether it exists or not (issue 15).
        for named in ["no-such-dir/", "no-such-dir/.", ".."] {
            let path = PathBuf::from(format!("{}/{named}", dir.path().display()));
            let err = check_writable(&path).unwrap_err().to_string();
            assert!(
                err.contains("names a directory, not a file"),
                "{named}: {err}"
            );
        }
        let err = check_writable(Path::new("reports/"))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("e.g. reports/report.html"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "only `file`");
    }
}
