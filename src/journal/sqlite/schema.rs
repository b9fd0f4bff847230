//! The journal file itself: where it lives, its permissions, the pragmas
//! every connection sets, and the schema with its migrations.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{immediate, sql};
use crate::journal::JournalError;

/// The schema this code writes; `PRAGMA user_version` holds the file's.
pub(super) const SCHEMA_VERSION: i64 = 3;

/// `MIGRATIONS[n]` takes a file from schema `n` to `n + 1`. Append; never
/// edit one that has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    // 0 → 1
    "
CREATE TABLE rotations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     TEXT NOT NULL,
    user_name      TEXT NOT NULL,
    user_arn       TEXT NOT NULL,
    old_key_id     TEXT NOT NULL,
    new_key_id     TEXT,
    keys_before    TEXT NOT NULL,   -- JSON array of key IDs
    destinations   TEXT NOT NULL,   -- JSON array of descriptions
    old_key_action TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    last_step      TEXT NOT NULL,
    last_phase     TEXT NOT NULL,
    outcome        TEXT,            -- NULL while unfinished
    error          TEXT,
    started_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    finished_at    INTEGER
);
CREATE INDEX rotations_unfinished ON rotations (account_id, user_name) WHERE outcome IS NULL;
CREATE TABLE events (
    rotation_id INTEGER NOT NULL REFERENCES rotations (id),
    seq         INTEGER NOT NULL,
    step        TEXT NOT NULL,
    phase       TEXT NOT NULL,
    target      TEXT,
    detail      TEXT,
    at          INTEGER NOT NULL,
    PRIMARY KEY (rotation_id, seq)
) WITHOUT ROWID;
CREATE TABLE leases (
    account_id  TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_name)
) WITHOUT ROWID;
",
    // 1 → 2 (issue 16): a rotation's ID is a string that is not a row
    // number (a ULID, see `journal::id`); a rotation of schema 1 keeps its
    // number as its ID ('7'), so old numbers still name it. `seq` keeps
    // the order rotations were begun in (the old IDs), never shown. Event
    // targets written from now on are JSON (`journal::Target`); older ones
    // stay as written and are read as before. Each table is rebuilt (SQLite
    // cannot change a column's type); the renames carry the foreign key
    // along, so every copied event finds its rotation.
    "
ALTER TABLE rotations RENAME TO rotations_v1;
ALTER TABLE events RENAME TO events_v1;
CREATE TABLE rotations (
    seq            INTEGER PRIMARY KEY,   -- the order begun in; never shown
    id             TEXT NOT NULL UNIQUE,  -- a ULID, or a schema 1 number
    account_id     TEXT NOT NULL,
    user_name      TEXT NOT NULL,
    user_arn       TEXT NOT NULL,
    old_key_id     TEXT NOT NULL,
    new_key_id     TEXT,
    keys_before    TEXT NOT NULL,   -- JSON array of key IDs
    destinations   TEXT NOT NULL,   -- JSON array of destinations
    old_key_action TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    last_step      TEXT NOT NULL,
    last_phase     TEXT NOT NULL,
    outcome        TEXT,            -- NULL while unfinished
    error          TEXT,
    started_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    finished_at    INTEGER
);
CREATE TABLE events (
    rotation_id TEXT NOT NULL REFERENCES rotations (id),
    seq         INTEGER NOT NULL,
    step        TEXT NOT NULL,
    phase       TEXT NOT NULL,
    target      TEXT,            -- JSON; plain text in rows of schema 1
    detail      TEXT,
    at          INTEGER NOT NULL,
    PRIMARY KEY (rotation_id, seq)
) WITHOUT ROWID;
INSERT INTO rotations (seq, id, account_id, user_name, user_arn, old_key_id, new_key_id,
    keys_before, destinations, old_key_action, run_id, last_step, last_phase, outcome, error,
    started_at, updated_at, finished_at)
SELECT id, CAST(id AS TEXT), account_id, user_name, user_arn, old_key_id, new_key_id,
    keys_before, destinations, old_key_action, run_id, last_step, last_phase, outcome, error,
    started_at, updated_at, finished_at
FROM rotations_v1 ORDER BY id;
INSERT INTO events (rotation_id, seq, step, phase, target, detail, at)
SELECT CAST(rotation_id AS TEXT), seq, step, phase, target, detail, at FROM events_v1;
DROP TABLE events_v1;
DROP TABLE rotations_v1;
CREATE INDEX rotations_unfinished ON rotations (account_id, user_name) WHERE outcome IS NULL;
CREATE INDEX rotations_of_user ON rotations (account_id, user_name, seq);
",
    // 2 → 3 (issue 17): what rekey did to a key outside a rotation
    // (`journal::keys`), with the time written and the moment acted for.
    "
CREATE TABLE key_events (
    seq        INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    op         TEXT NOT NULL,
    phase      TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    as_of      INTEGER NOT NULL,
    detail     TEXT
);
CREATE INDEX key_events_of_key ON key_events (account_id, key_id, seq);
CREATE INDEX key_events_of_user ON key_events (account_id, user_name, seq);
",
];

/// Where the journal lives by default: `$XDG_STATE_HOME/rekey/journal.sqlite3`,
/// else `$HOME/.local/state/rekey/journal.sqlite3` (the XDG default). The
/// XDG spec says to ignore a relative `XDG_STATE_HOME`.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(state) = var("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
        return Some(state.join("rekey").join("journal.sqlite3"));
    }
    var("HOME").map(|home| home.join(".local/state/rekey/journal.sqlite3"))
}

pub(super) fn create_private(path: &Path) -> Result<(), JournalError> {
    #[cfg(unix)]
    let owner = NewOwner::of(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|source| JournalError::Io {
            doing: "create the directory",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|source| JournalError::Io {
        doing: "create",
        path: path.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    owner.apply();
    // The modes above apply only to what is new: a journal (or its side
    // files) left 0644 by a copy, a restore or an earlier version stays
    // readable by everyone unless fixed here (issue 10 #8).
    #[cfg(unix)]
    {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            tighten(Path::new(&file), 0o600);
        }
        // Only rekey's own state directory: a journal placed with
        // `--journal` in a shared directory (`/tmp`) leaves that alone.
        if let Some(dir) = path
            .parent()
            .filter(|d| d.file_name() == Some("rekey".as_ref()))
        {
            tighten(dir, 0o700);
        }
    }
    Ok(())
}

/// What this run is about to create on the way to the journal (missing
/// directories, the file) and the owner they should have: the owner of the
/// nearest directory that exists. Run as root over another user's home
/// (`sudo rekey rotate` keeping HOME, a system crontab), a journal and a
/// state directory left root's would shut the user's own runs out of them.
/// SQLite itself gives a root process's -wal and -shm files the database
/// file's owner.
#[cfg(unix)]
struct NewOwner {
    created: Vec<std::path::PathBuf>,
    owner: Option<(u32, u32)>,
}

#[cfg(unix)]
impl NewOwner {
    fn of(path: &Path) -> NewOwner {
        use std::os::unix::fs::MetadataExt;
        let mut created = Vec::new();
        let mut next = Some(path);
        while let Some(p) = next.filter(|p| !p.as_os_str().is_empty()) {
            match std::fs::metadata(p) {
                Ok(meta) => {
                    return NewOwner {
                        created,
                        owner: Some((meta.uid(), meta.gid())),
                    };
                }
                Err(_) => created.push(p.to_path_buf()),
            }
            next = p.parent();
        }
        // A relative path: its first component is in the working directory.
        let owner = std::fs::metadata(".").ok().map(|m| (m.uid(), m.gid()));
        NewOwner { created, owner }
    }

    /// Gives what was created the owner found. Only root can; for anyone
    /// else the owner is already theirs or the chown is not allowed, and
    /// either way nothing is worth a warning.
    fn apply(&self) {
        use std::os::unix::fs::MetadataExt;
        let Some((uid, gid)) = self.owner else {
            return;
        };
        for p in self.created.iter().rev() {
            // Never through a symlink: one swapped in since we created the
            // path would hand its target to that owner.
            let differs =
                std::fs::symlink_metadata(p).is_ok_and(|m| (m.uid(), m.gid()) != (uid, gid));
            if differs && let Err(e) = std::os::unix::fs::lchown(p, Some(uid), Some(gid)) {
                tracing::debug!("{} keeps its owner: {e}", p.display());
            }
        }
    }
}

/// Takes group and other permissions off `path` when it has any; warns when
/// that is not allowed (a file of another user). A missing file is fine.
#[cfg(unix)]
fn tighten(path: &Path, private: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(private)) {
        Ok(()) => tracing::info!("{} was mode {mode:o}; made it {private:o}", path.display()),
        Err(e) => tracing::warn!(
            "{} is mode {mode:o}, readable by others, and cannot be made {private:o}: {e}",
            path.display()
        ),
    }
}

pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Two runs may start together; every write here is short, so waiting
    // beats failing.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // WAL: `rekey history` can read while a rotation writes. (In memory the
    // answer is "memory", which is fine.) The pragma answers with a row.
    // Switching a new file to WAL needs an exclusive lock, and SQLite can
    // answer SQLITE_BUSY at once, without the busy handler, when another
    // process is opening the same new file: retry for the same 10 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other?,
        }
    }
    // A Begin must survive a power cut right after the AWS call it
    // announces; WAL's usual NORMAL can lose the last commits.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)
}

/// `conn`, a read-only journal, as this code reads it: itself when it has
/// this schema; when it has an older one, a copy in memory, migrated — a
/// dry run must not change the file (issue 9 #8), yet reads what a real
/// run would after migrating it.
pub(super) fn readable(conn: Connection) -> Result<Connection, JournalError> {
    let found = version(&conn)?;
    if found > SCHEMA_VERSION {
        return Err(JournalError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(conn);
    }
    let mut copy =
        Connection::open_in_memory().map_err(sql("copying an older journal to migrate it"))?;
    rusqlite::backup::Backup::new(&conn, &mut copy)
        .and_then(|b| b.run_to_completion(256, std::time::Duration::ZERO, None))
        .map_err(sql("copying an older journal to migrate it"))?;
    copy.pragma_update(None, "foreign_keys", true)
        .map_err(sql("copying an older journal to migrate it"))?;
    migrate(&mut copy)?;
    Ok(copy)
}

fn version(conn: &Connection) -> Result<i64, JournalError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql("reading the schema version"))
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), JournalError> {
    // IMMEDIATE, and the version read inside: two processes opening a new
    // file at once must not both create the tables.
    let tx = immediate(conn)?;
    let found = version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(JournalError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for step in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(step)
            .map_err(sql("upgrading the schema"))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sql("setting the schema version"))?;
    tx.commit().map_err(sql("upgrading the schema"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::journal::sqlite::SqliteJournal;
    use crate::journal::sqlite::fixtures::{
        ACCOUNT, NEW_KEY, OTHER_KEY, begin, clock, dev, profile, schema_1_journal,
    };
    use crate::journal::{JournalError, Outcome, Phase, RotationId, Step, StepTarget, Target};

    /// Run as root over a user's directory, rekey gives what it created the
    /// user's ownership. Should the user swap a just-created directory for
    /// a symlink before that (to /etc/shadow, say), the chown must not
    /// follow it: root would hand the link's target to the user.
    #[cfg(unix)]
    #[test]
    fn a_created_path_swapped_for_a_symlink_does_not_give_its_target_away() {
        use std::os::unix::fs::MetadataExt;
        const OTHER: u32 = 65534;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(OTHER), Some(OTHER))
            .expect("chown to 65534: the suite runs as root, as CI does");
        let journal = home.join("state").join("journal.sqlite3");
        let owner = NewOwner::of(&journal);
        // The race: `state` appears as a link to a root-owned file.
        let target = dir.path().join("root-owned");
        std::fs::write(&target, "root's").unwrap();
        std::os::unix::fs::symlink(&target, home.join("state")).unwrap();
        owner.apply();
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, 0),
            "the link's target changed owner"
        );
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn the_default_path_follows_xdg() {
        let xdg = env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/h")]);
        assert_eq!(default_path(&xdg), Some("/s/rekey/journal.sqlite3".into()));
        let home = PathBuf::from("/h/.local/state/rekey/journal.sqlite3");
        let relative = env(&[("XDG_STATE_HOME", "state"), ("HOME", "/h")]);
        assert_eq!(default_path(&relative), Some(home.clone()));
        let empty = env(&[("XDG_STATE_HOME", ""), ("HOME", "/h")]);
        assert_eq!(default_path(&empty), Some(home));
        assert_eq!(default_path(&env(&[])), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_journal_is_private_versioned_and_in_wal_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/rekey/journal.sqlite3");
        let journal = SqliteJournal::open(&path, clock()).unwrap();
        begin(&journal, "alice", "run-1");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        // SQLite gives its side files the main file's mode.
        assert_eq!(mode(&path.with_extension("sqlite3-wal")), 0o600);

        let raw = Connection::open(&path).unwrap();
        let version: i64 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = raw
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_loose_journal_and_state_directory_are_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/rekey/journal.sqlite3");
        let journal = SqliteJournal::open(&path, clock()).unwrap();
        begin(&journal, "alice", "run-1");
        drop(journal);
        let wal = path.with_extension("sqlite3-wal");
        std::fs::write(&wal, "").unwrap();
        set(&path, 0o644);
        set(&wal, 0o644);
        set(path.parent().unwrap(), 0o755);
        // Checked while open: SQLite removes the write-ahead log on close.
        let _open = SqliteJournal::open(&path, clock()).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&wal), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        // A directory of the user's own choosing is left as it is.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        set(&shared, 0o755);
        let elsewhere = shared.join("j.sqlite3");
        std::fs::write(&elsewhere, "").unwrap();
        set(&elsewhere, 0o644);
        drop(SqliteJournal::open(&elsewhere, clock()).unwrap());
        assert_eq!(mode(&elsewhere), 0o600);
        assert_eq!(mode(&shared), 0o755);
    }

    #[test]
    fn reopening_keeps_the_data_and_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let id = begin(
            &SqliteJournal::open(&path, clock()).unwrap(),
            "alice",
            "run-1",
        )
        .id;
        let journal = SqliteJournal::open(&path, clock()).unwrap();
        assert_eq!(journal.get(id).unwrap().user_name, "alice");
        assert_eq!(journal.path(), Some(path.as_path()));
    }

    /// Issue 16: a journal of schema 1 (numbered rotations) is migrated in
    /// place when opened; each rotation keeps its number as its ID, an
    /// unfinished one goes on, and a new one gets a ULID and comes after.
    #[test]
    fn a_schema_1_journal_is_migrated_and_its_numbers_still_name_its_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        schema_1_journal(&path);
        let journal = SqliteJournal::open(&path, clock()).unwrap();
        let raw = Connection::open(&path).unwrap();
        let version: i64 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);

        let [one, two] = [1, 2].map(RotationId::numbered);
        assert_eq!("2".parse::<RotationId>(), Ok(two));
        let alice = journal.get(one).unwrap();
        assert_eq!((alice.id, alice.user_name.as_str()), (one, "alice"));
        assert_eq!(alice.outcome, Some(crate::journal::Outcome::Completed));
        let unfinished = journal.unfinished().unwrap();
        assert_eq!(unfinished.len(), 1);
        let bob = &unfinished[0];
        assert_eq!((bob.id, bob.user_name.as_str()), (two, "bob"));
        assert_eq!(bob.id.to_string(), "2");
        assert_eq!(bob.new_key_id.as_deref(), Some(NEW_KEY));
        // Its old events' targets (display strings) read as its own
        // destination and key: a resumed run recognises its steps.
        assert!(bob.step_done_on(Step::Deliver, &Target::Destination(dev())));
        assert!(!bob.step_done_on(Step::Deliver, &Target::Destination(profile("ci"))));
        let freeing = StepTarget {
            step: Step::DeleteInactiveKey,
            target: Some(Target::Key(OTHER_KEY.into())),
        };
        assert_eq!(bob.open, [freeing]);
        let events = journal.events(two).unwrap();
        assert_eq!(events.len(), 6);
        assert!(events.iter().all(|e| e.rotation_id == two));

        // The unfinished rotation goes on and ends; the next is a ULID.
        journal
            .record(two, Step::Verify, Phase::Begin, None)
            .unwrap();
        journal.finish(two, Outcome::Completed, None).unwrap();
        let carol = begin(&journal, "carol", "run-new");
        assert_eq!(carol.id.number(), None);
        assert_eq!(carol.id.to_string().len(), 26);
        let newest: Vec<RotationId> = journal.history(3).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(newest, [carol.id, two, one]);
        let of_bob = journal.of_user(ACCOUNT, "bob").unwrap();
        assert_eq!(of_bob[0].outcome, Some(Outcome::Completed));
        drop(journal);
        // Opened again, nothing is migrated twice.
        let again = SqliteJournal::open(&path, clock()).unwrap();
        assert_eq!(again.history(10).unwrap().len(), 3);
    }

    /// A dry run opens the journal read-only: one of schema 1 is read
    /// through a migrated copy in memory, and the file stays as it was.
    #[test]
    fn a_schema_1_journal_opened_read_only_is_read_as_migrated_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        schema_1_journal(&path);
        let before = std::fs::read(&path).unwrap();
        let journal = SqliteJournal::open_read_only(&path, clock())
            .unwrap()
            .unwrap();
        let unfinished = journal.unfinished().unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].id, RotationId::numbered(2));
        assert_eq!(journal.history(10).unwrap().len(), 2);
        drop(journal);
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["journal.sqlite3"], "no side files");
    }

    #[test]
    fn a_journal_from_a_newer_rekey_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        drop(SqliteJournal::open(&path, clock()).unwrap());
        let raw = Connection::open(&path).unwrap();
        raw.pragma_update(None, "user_version", 7).unwrap();
        let read_only = SqliteJournal::open_read_only(&path, clock()).unwrap_err();
        assert!(matches!(
            read_only,
            JournalError::SchemaTooNew { found: 7, .. }
        ));
        let err = SqliteJournal::open(&path, clock()).unwrap_err();
        assert!(matches!(
            err,
            JournalError::SchemaTooNew {
                found: 7,
                known: SCHEMA_VERSION
            }
        ));
        assert!(err.to_string().contains("upgrade rekey"));
    }

    #[test]
    fn a_damaged_row_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let journal = SqliteJournal::open(&path, clock()).unwrap();
        let id = begin(&journal, "alice", "run-1").id;
        let raw = Connection::open(&path).unwrap();
        raw.execute(
            "UPDATE events SET step = 'teleport' WHERE rotation_id = ?1",
            [id],
        )
        .unwrap();
        let err = journal.get(id).unwrap_err();
        assert!(matches!(err, JournalError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("unknown step `teleport`"), "{err}");
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let err = SqliteJournal::open(&blocker.join("journal.sqlite3"), clock()).unwrap_err();
        assert!(matches!(err, JournalError::Io { .. }));
        assert!(
            err.to_string().contains(&blocker.display().to_string()),
            "{err}"
        );
    }
}
