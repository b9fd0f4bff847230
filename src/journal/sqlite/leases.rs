//! The lease table: reading, writing and deleting one user's lease. The
//! rules for who may take a lease live in `journal::lease`, shared with other
//! journal kinds; the caller wraps these in one `BEGIN IMMEDIATE`
//! transaction. The tests here are the end-to-end lease tests, including two
//! handles racing for one lease.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{Ms, to_ms_precision};
use super::sql;
use crate::journal::{Holder, JournalError, Lease};

pub(super) fn read(
    conn: &Connection,
    account_id: &str,
    user_name: &str,
) -> Result<Option<Lease>, JournalError> {
    conn.query_row(
        "SELECT run_id, pid, host, acquired_at, expires_at FROM leases
         WHERE account_id = ?1 AND user_name = ?2",
        params![account_id, user_name],
        |r| {
            Ok(Lease {
                account_id: account_id.to_string(),
                user_name: user_name.to_string(),
                holder: Holder {
                    run_id: r.get("run_id")?,
                    pid: r.get("pid")?,
                    host: r.get("host")?,
                },
                acquired_at: r.get::<_, Ms>("acquired_at")?.0,
                expires_at: r.get::<_, Ms>("expires_at")?.0,
            })
        },
    )
    .optional()
    .map_err(sql("reading a lease"))
}

/// Stores `lease`, replacing the user's previous one, and returns it as
/// stored (times at millisecond precision).
pub(super) fn write(conn: &Connection, mut lease: Lease) -> Result<Lease, JournalError> {
    lease.acquired_at = to_ms_precision(lease.acquired_at);
    lease.expires_at = to_ms_precision(lease.expires_at);
    conn.execute(
        "INSERT OR REPLACE INTO leases
            (account_id, user_name, run_id, pid, host, acquired_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            lease.account_id,
            lease.user_name,
            lease.holder.run_id,
            lease.holder.pid,
            lease.holder.host,
            Ms(lease.acquired_at),
            Ms(lease.expires_at),
        ],
    )
    .map_err(sql("writing a lease"))?;
    Ok(lease)
}

pub(super) fn delete(conn: &Connection, lease: &Lease) -> Result<(), JournalError> {
    conn.execute(
        "DELETE FROM leases WHERE account_id = ?1 AND user_name = ?2 AND run_id = ?3",
        params![lease.account_id, lease.user_name, lease.holder.run_id],
    )
    .map_err(sql("releasing a lease"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use crate::clock::Clock;
    use crate::journal::lease::{dead_pid, hostname};
    use crate::journal::sqlite::SqliteJournal;
    use crate::journal::sqlite::fixtures::{ACCOUNT, TTL, clock, in_memory};
    use crate::journal::{Holder, JournalError};

    #[test]
    fn a_held_lease_is_refused_until_it_expires() {
        let (journal, clock) = in_memory();
        let first = journal
            .acquire_lease(ACCOUNT, "alice", &Holder::current("run-1"), TTL)
            .unwrap();
        assert_eq!(first.expires_at, clock.now() + TTL);

        let err = journal
            .acquire_lease(ACCOUNT, "alice", &Holder::current("run-2"), TTL)
            .unwrap_err();
        assert!(matches!(err, JournalError::LeaseHeld { .. }));
        let holder = format!(
            "run run-1, pid {} on host {}",
            std::process::id(),
            hostname()
        );
        assert!(err.to_string().contains(&holder), "{err}");
        // Another user is not affected.
        journal
            .acquire_lease(ACCOUNT, "bob", &Holder::current("run-2"), TTL)
            .unwrap();

        clock.advance(TTL);
        let second = journal
            .acquire_lease(ACCOUNT, "alice", &Holder::current("run-2"), TTL)
            .unwrap();
        assert_eq!(second.holder.run_id, "run-2");
        // The first run, back from a long pause, learns it lost the lease.
        let renewed = journal.renew_lease(&first, TTL);
        assert!(matches!(renewed, Err(JournalError::LeaseLost { .. })));
        let released = journal.release_lease(&first);
        assert!(matches!(released, Err(JournalError::LeaseLost { .. })));
    }

    #[test]
    fn a_lease_of_a_dead_process_on_this_host_is_taken_at_once() {
        if !cfg!(target_os = "linux") {
            return; // elsewhere only expiry frees a lease
        }
        let (journal, _) = in_memory();
        let dead = Holder {
            run_id: "run-dead".into(),
            pid: dead_pid(),
            host: hostname().to_string(),
        };
        journal.acquire_lease(ACCOUNT, "alice", &dead, TTL).unwrap();
        let taken = journal
            .acquire_lease(ACCOUNT, "alice", &Holder::current("run-2"), TTL)
            .unwrap();
        assert_eq!(taken.holder.run_id, "run-2");

        // The same dead pid on another host proves nothing.
        let remote = Holder {
            host: "some-other-host".into(),
            ..dead
        };
        journal.acquire_lease(ACCOUNT, "bob", &remote, TTL).unwrap();
        let refused = journal.acquire_lease(ACCOUNT, "bob", &Holder::current("run-2"), TTL);
        assert!(matches!(refused, Err(JournalError::LeaseHeld { .. })));
    }

    #[test]
    fn the_same_run_renews_and_release_frees() {
        let (journal, clock) = in_memory();
        let me = Holder::current("run-1");
        let lease = journal.acquire_lease(ACCOUNT, "alice", &me, TTL).unwrap();
        clock.advance(time::Duration::minutes(5));
        let again = journal.acquire_lease(ACCOUNT, "alice", &me, TTL).unwrap();
        assert_eq!(again.acquired_at, lease.acquired_at);
        assert_eq!(again.expires_at, clock.now() + TTL);
        clock.advance(time::Duration::minutes(5));
        let renewed = journal.renew_lease(&again, TTL).unwrap();
        assert_eq!(renewed.expires_at, clock.now() + TTL);

        journal.release_lease(&renewed).unwrap();
        journal.release_lease(&renewed).unwrap();
        let other = Holder::current("run-2");
        journal
            .acquire_lease(ACCOUNT, "alice", &other, TTL)
            .unwrap();
    }

    #[test]
    fn exactly_one_of_two_racing_processes_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let clock = clock();
        // Two handles with their own connections, as two processes would have.
        let handles = [
            SqliteJournal::open(&path, clock.clone()).unwrap(),
            SqliteJournal::open(&path, clock.clone()).unwrap(),
        ];
        let barrier = Arc::new(Barrier::new(2));
        for round in 0..50 {
            let user = format!("user-{round}");
            let wins: Vec<bool> = std::thread::scope(|s| {
                let racers: Vec<_> = handles
                    .iter()
                    .enumerate()
                    .map(|(i, journal)| {
                        let (barrier, user) = (barrier.clone(), user.clone());
                        s.spawn(move || {
                            let me = Holder::current(format!("run-{i}"));
                            barrier.wait();
                            match journal.acquire_lease(ACCOUNT, &user, &me, TTL) {
                                Ok(_) => true,
                                Err(JournalError::LeaseHeld { .. }) => false,
                                Err(other) => panic!("unexpected: {other:?}"),
                            }
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            assert_eq!(wins.iter().filter(|w| **w).count(), 1, "round {round}");
        }
    }
}
