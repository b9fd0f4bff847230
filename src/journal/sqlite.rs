//! The embedded journal: one SQLite file per machine, shared by every rekey
//! process on it. This file owns [`SqliteJournal`] — the connection, and
//! how each call becomes one transaction. The rest lives below:
//!
//! | module | owns |
//! |---|---|
//! | `schema` | the file: location, permissions, pragmas, migrations |
//! | `rows` | how records map to rows (times, lists, names) |
//! | `rotations` | rotation writes, each checked by `journal::rules` first |
//! | `leases` | the lease table |
//!
//! Every write is one `BEGIN IMMEDIATE` transaction: it takes SQLite's write
//! lock before reading, so a check and the write that depends on it (is the
//! step open? is the lease free?) cannot interleave with another process.
//! Times are stored as Unix milliseconds (UTC); finer precision is dropped.

mod journal_impl;
mod key_events;
mod leases;
mod rotations;
mod rows;
mod schema;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use time::OffsetDateTime;

use super::lease::{self, Holder, Lease};
use super::{
    Event, JournalError, KeyEvent, NewKeyEvent, NewRotation, Outcome, Phase, Rotation, RotationId,
    Step, Target,
};
use crate::clock::Clock;
pub use schema::default_path;

/// The journal in one SQLite file (or in memory, for tests).
pub struct SqliteJournal {
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    path: Option<PathBuf>,
    /// This machine, for deciding whether a lease holder is provably dead.
    host: &'static str,
}

impl fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteJournal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteJournal {
    /// Opens (creating if needed) the journal at `path`. New directories are
    /// made 0700 and a new file 0600: the journal holds no secret, but it
    /// does map accounts, users and keys, which is nobody else's business.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, JournalError> {
        schema::create_private(path)?;
        let open_error = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        schema::configure(&conn).map_err(open_error)?;
        Self::with(conn, clock, Some(path.to_path_buf()))
    }

    /// Opens an existing journal without changing it, for a dry run: no
    /// file, directory or row is created (issue 9 #8). `None` when there is
    /// no journal yet.
    pub fn open_read_only(
        path: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, JournalError> {
        if !path.exists() {
            return Ok(None);
        }
        let open_error = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        // With no write-ahead log beside it, the file is the whole journal:
        // read it as immutable, so that SQLite creates no side files either.
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let immutable = if Path::new(&wal).exists() {
            ""
        } else {
            "&immutable=1"
        };
        let uri = format!("file:{}?mode=ro{immutable}", uri_path(path));
        let conn = Connection::open_with_flags(&uri, flags).map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_error)?;
        let conn = schema::readable(conn)?;
        Ok(Some(SqliteJournal {
            conn: Mutex::new(conn),
            clock,
            path: Some(path.to_path_buf()),
            host: lease::hostname(),
        }))
    }

    /// A private journal that vanishes when dropped; for tests.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Result<Self, JournalError> {
        let conn = Connection::open_in_memory().map_err(sql("opening an in-memory database"))?;
        schema::configure(&conn).map_err(sql("configuring an in-memory database"))?;
        Self::with(conn, clock, None)
    }

    fn with(
        mut conn: Connection,
        clock: Arc<dyn Clock>,
        path: Option<PathBuf>,
    ) -> Result<Self, JournalError> {
        schema::migrate(&mut conn)?;
        Ok(SqliteJournal {
            conn: Mutex::new(conn),
            clock,
            path,
            host: lease::hostname(),
        })
    }

    /// The file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its transaction, which
        // rolled back: the connection is still sound.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed if `f`
    /// succeeds. "Now" is read once the write lock is held: read before a
    /// wait on another process, it could call a lease live that has expired.
    fn write<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&Connection, OffsetDateTime) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let mut conn = self.lock();
        let tx = immediate(&mut conn)?;
        let now = rows::to_ms_precision(self.clock.now());
        let value = f(&tx, now)?;
        tx.commit().map_err(sql(doing))?;
        Ok(value)
    }

    /// Runs `f` in one read transaction, so it sees a single snapshot.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(sql("starting a read"))?;
        f(&tx)
    }
}

/// `path` for a `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, JournalError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("starting a write"))
}

/// Wraps a rusqlite error with what was being done. A value that does not
/// convert (an unknown step name, bad JSON) means the file was damaged or
/// written by something else, which deserves its own message.
fn sql(doing: &'static str) -> impl Fn(rusqlite::Error) -> JournalError {
    move |source| match source {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => JournalError::Corrupt {
            what: format!("{doing}: {source}"),
        },
        source => JournalError::Sqlite { doing, source },
    }
}

/// The journal's calls, run inline: each is one short local transaction,
/// as the `Journal` trait's futures (in `journal_impl`) run them too.
impl SqliteJournal {
    pub fn begin_rotation(&self, new: &NewRotation) -> Result<Rotation, JournalError> {
        self.write("recording a new rotation", |tx, now| {
            rotations::begin(tx, new, now)
        })
    }

    pub fn record_on(
        &self,
        id: RotationId,
        step: Step,
        target: Option<&Target>,
        phase: Phase,
        detail: Option<&str>,
    ) -> Result<(), JournalError> {
        self.write("recording an event", |tx, now| {
            rotations::record(tx, id, step, target, phase, detail, now)
        })
    }

    /// Records a step of the rotation as a whole.
    pub fn record(
        &self,
        id: RotationId,
        step: Step,
        phase: Phase,
        detail: Option<&str>,
    ) -> Result<(), JournalError> {
        self.record_on(id, step, None, phase, detail)
    }

    pub fn set_new_key(&self, id: RotationId, new_key_id: &str) -> Result<(), JournalError> {
        self.write("recording the new key", |tx, now| {
            rotations::set_new_key(tx, id, new_key_id, now)
        })
    }

    pub fn finish(
        &self,
        id: RotationId,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        self.write("finishing a rotation", |tx, now| {
            rotations::finish(tx, id, outcome, error, now)
        })
    }

    pub fn get(&self, id: RotationId) -> Result<Rotation, JournalError> {
        self.read(|tx| rows::load(tx, id))
    }

    pub fn unfinished(&self) -> Result<Vec<Rotation>, JournalError> {
        // By seq, not started_at: the order they were begun even if the
        // clock jumped.
        let ids = "SELECT id FROM rotations WHERE outcome IS NULL ORDER BY seq";
        self.read(|tx| rows::load_many(tx, ids, []))
    }

    pub fn undone_since(
        &self,
        account_id: &str,
        user_name: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<Rotation>, JournalError> {
        let ids = "SELECT id FROM rotations WHERE account_id = ?1 AND user_name = ?2
            AND outcome = 'undone' AND started_at >= ?3 ORDER BY seq";
        let since = rows::Ms(since);
        self.read(|tx| rows::load_many(tx, ids, rusqlite::params![account_id, user_name, since]))
    }

    pub fn of_user(
        &self,
        account_id: &str,
        user_name: &str,
    ) -> Result<Vec<Rotation>, JournalError> {
        let ids = "SELECT id FROM rotations WHERE account_id = ?1 AND user_name = ?2 ORDER BY seq";
        self.read(|tx| rows::load_many(tx, ids, rusqlite::params![account_id, user_name]))
    }

    pub fn history(&self, limit: usize) -> Result<Vec<Rotation>, JournalError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids = "SELECT id FROM rotations ORDER BY seq DESC LIMIT ?1";
        self.read(|tx| rows::load_many(tx, ids, [limit]))
    }

    pub fn events(&self, id: RotationId) -> Result<Vec<Event>, JournalError> {
        self.read(|tx| Ok(rows::load_with_events(tx, id)?.1))
    }

    pub fn acquire_lease(
        &self,
        account_id: &str,
        user_name: &str,
        holder: &Holder,
        ttl: time::Duration,
    ) -> Result<Lease, JournalError> {
        let is_dead = |h: &Holder| lease::provably_dead(h, self.host);
        self.write("taking a lease", |tx, now| {
            let existing = leases::read(tx, account_id, user_name)?;
            let claimed = lease::claim(
                existing.as_ref(),
                account_id,
                user_name,
                holder,
                now,
                ttl,
                is_dead,
            )?;
            leases::write(tx, claimed)
        })
    }

    /// How many leases have not expired: runs that may still be writing.
    pub fn live_leases(&self) -> Result<usize, JournalError> {
        let now = rows::Ms(self.clock.now());
        self.read(|tx| {
            tx.query_row(
                "SELECT count(*) FROM leases WHERE expires_at > ?1",
                [now],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(sql("counting leases"))
        })
    }

    pub fn renew_lease(&self, lease: &Lease, ttl: time::Duration) -> Result<Lease, JournalError> {
        self.write("renewing a lease", |tx, now| {
            let existing = leases::read(tx, &lease.account_id, &lease.user_name)?;
            leases::write(tx, lease::renewal(existing.as_ref(), lease, now, ttl)?)
        })
    }

    pub fn record_key(&self, event: &NewKeyEvent) -> Result<KeyEvent, JournalError> {
        self.write("recording a key action", |tx, now| {
            key_events::record(tx, event, now)
        })
    }

    pub fn key_events(
        &self,
        account_id: &str,
        user_name: &str,
    ) -> Result<Vec<KeyEvent>, JournalError> {
        self.read(|tx| key_events::of_user(tx, account_id, user_name))
    }

    pub fn key_history(&self, limit: usize) -> Result<Vec<KeyEvent>, JournalError> {
        self.read(|tx| key_events::latest(tx, limit))
    }

    pub fn key_events_in(&self, account_id: &str) -> Result<Vec<KeyEvent>, JournalError> {
        self.read(|tx| key_events::of_account(tx, account_id))
    }

    pub fn release_lease(&self, lease: &Lease) -> Result<(), JournalError> {
        self.write("releasing a lease", |tx, _| {
            let existing = leases::read(tx, &lease.account_id, &lease.user_name)?;
            match lease::release(existing.as_ref(), lease)? {
                true => leases::delete(tx, lease),
                false => Ok(()),
            }
        })
    }
}

/// Shared by the tests of this module and its children.
#[cfg(test)]
mod fixtures {
    use std::sync::Arc;

    use time::macros::datetime;

    use super::SqliteJournal;
    use crate::clock::FixedClock;
    use crate::destination::DestinationSpec;
    use crate::journal::{Holder, NewRotation, OldKeyAction, Rotation};

    pub const ACCOUNT: &str = "111111111111";
    pub const OLD_KEY: &str = "AKIAOLDKEY0000000001";
    pub const OTHER_KEY: &str = "AKIAOTHERKEY00000002";
    pub const NEW_KEY: &str = "AKIANEWKEY0000000003";
    /// How schema 1 events named [`dev`].
    pub const DEV_DESTINATION: &str = "credentials:/home/u/.aws/credentials#dev";
    pub const TTL: time::Duration = time::Duration::minutes(15);

    pub fn clock() -> Arc<FixedClock> {
        Arc::new(FixedClock::new(datetime!(2025-03-01 12:00 UTC)))
    }

    pub fn in_memory() -> (SqliteJournal, Arc<FixedClock>) {
        let clock = clock();
        (SqliteJournal::in_memory(clock.clone()).unwrap(), clock)
    }

    pub fn plan(user: &str, run_id: &str) -> NewRotation {
        NewRotation {
            account_id: ACCOUNT.into(),
            user_name: user.into(),
            user_arn: format!("arn:aws:iam::{ACCOUNT}:user/{user}"),
            old_key_id: OLD_KEY.into(),
            keys_before: vec![OLD_KEY.into(), OTHER_KEY.into()],
            destinations: vec![dev(), profile("ci")],
            old_key_action: OldKeyAction::Deactivate,
            access: crate::journal::AccessSpec::OldKey,
            run_id: run_id.into(),
        }
    }

    /// Profile `name` of the user's credentials file.
    pub fn profile(name: &str) -> DestinationSpec {
        DestinationSpec::SharedFile {
            file: crate::awsfiles::FileKind::Credentials,
            path: "/home/u/.aws/credentials".into(),
            profiles: vec![name.into()],
        }
    }

    pub fn dev() -> DestinationSpec {
        profile("dev")
    }

    /// A journal file as rekey wrote it before issue 16 (schema 1):
    /// rotations numbered by SQLite, event targets as display strings.
    /// Rotation 1, of alice, completed; rotation 2, of bob, delivered its
    /// new key to the file's `[dev]` and stopped there.
    pub fn schema_1_journal(path: &std::path::Path) {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(super::schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let dest = r#"[{"kind":"shared_file","file":"credentials","path":"/home/u/.aws/credentials","profiles":["dev"]}]"#;
        let keys = format!(r#"["{OLD_KEY}"]"#);
        let rotation = "INSERT INTO rotations (id, account_id, user_name, user_arn, old_key_id,
            new_key_id, keys_before, destinations, old_key_action, run_id, last_step, last_phase,
            outcome, started_at, updated_at, finished_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'deactivate', 'run-old', ?9, ?10, ?11,
            1740830400000, 1740830400000, ?12)";
        let arn = |u: &str| format!("arn:aws:iam::{ACCOUNT}:user/{u}");
        conn.execute(
            rotation,
            rusqlite::params![
                1,
                ACCOUNT,
                "alice",
                arn("alice"),
                OLD_KEY,
                NEW_KEY,
                keys,
                dest,
                "finish",
                "done",
                "completed",
                1740830400000i64
            ],
        )
        .unwrap();
        conn.execute(
            rotation,
            rusqlite::params![
                2,
                ACCOUNT,
                "bob",
                arn("bob"),
                OLD_KEY,
                NEW_KEY,
                keys,
                dest,
                "deliver",
                "done",
                None::<String>,
                None::<i64>
            ],
        )
        .unwrap();
        let events: [(i64, i64, &str, &str, Option<&str>); 10] = [
            (1, 1, "plan", "done", None),
            (1, 2, "create_key", "begin", None),
            (1, 3, "create_key", "done", None),
            (1, 4, "finish", "done", None),
            (2, 1, "plan", "done", None),
            (2, 2, "create_key", "begin", None),
            (2, 3, "create_key", "done", None),
            (2, 4, "deliver", "begin", Some(DEV_DESTINATION)),
            (2, 5, "deliver", "done", Some(DEV_DESTINATION)),
            (2, 6, "delete_inactive_key", "begin", Some(OTHER_KEY)),
        ];
        for (id, seq, step, phase, target) in events {
            conn.execute(
                "INSERT INTO events (rotation_id, seq, step, phase, target, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1740830400000)",
                rusqlite::params![id, seq, step, phase, target],
            )
            .unwrap();
        }
    }

    /// Takes the user's lease for `run_id` and begins a rotation.
    pub fn begin(journal: &SqliteJournal, user: &str, run_id: &str) -> Rotation {
        journal
            .acquire_lease(ACCOUNT, user, &Holder::current(run_id), TTL)
            .unwrap();
        journal.begin_rotation(&plan(user, run_id)).unwrap()
    }
}
