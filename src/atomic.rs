//! Writing a file so that a reader (or a crash) sees the old version or the
//! new one, never half of either (DESIGN.md invariant 5). Shared by the
//! credentials file (0600, with a backup) and the schedule files (0644).

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
/// Errors are plain `io::Error`s; the caller adds which file it was writing.
pub fn write(path: &Path, contents: &[u8], mode: u32, backup: Option<&Path>) -> io::Result<()> {
    let target = resolve_symlinks(path)?;
    let new = TempFile::write_next_to(&target, contents, mode)?;
    if let Some(backup) = backup {
        match fs::read(&target) {
            Ok(previous) => {
                TempFile::write_next_to(backup, &previous, 0o600)?.rename_to(backup)?;
                sync_dir(parent_dir(backup))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    new.rename_to(&target)?;
    sync_dir(parent_dir(&target))
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
    fn write_next_to(target: &Path, contents: &[u8], mode: u32) -> io::Result<TempFile> {
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
                    // Set, not only requested at creation: the umask may
                    // have taken bits away.
                    #[cfg(unix)]
                    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
                    #[cfg(not(unix))]
                    let _ = mode;
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
