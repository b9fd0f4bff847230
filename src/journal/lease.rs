//! Leases: who may rotate a user right now. This file owns the lease
//! records, who holds one ([`Holder`]), and the rules for taking one over —
//! pure functions shared by every [`super::Journal`] implementation, which
//! only have to read and write the record atomically.
//!
//! A lease left by a run that died must not block the next run for long: on
//! the same host it is taken over at once when its process is provably gone;
//! from another host, once it expires.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::JournalError;

/// The run holding (or asking for) a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
}

impl Holder {
    /// This process, on this host, running `run_id`.
    pub fn current(run_id: impl Into<String>) -> Self {
        Holder {
            run_id: run_id.into(),
            pid: std::process::id(),
            host: hostname().to_string(),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {}, pid {} on host {}",
            self.run_id, self.pid, self.host
        )
    }
}

/// The right to rotate one user until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub account_id: String,
    pub user_name: String,
    pub holder: Holder,
    /// When the holder first took it; renewals keep it.
    #[serde(with = "time::serde::rfc3339")]
    pub acquired_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// This machine's name, read once. No new dependency for a `gethostname`:
/// Linux exposes it in /proc, most other Unixes in /etc/hostname.
pub(crate) fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_string())
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    })
}

/// Whether `holder` is a process on this host that no longer exists. Says
/// yes only when it can prove it, since a wrong yes lets two runs rotate the
/// same user: a reused pid reads as alive (safe: the lease then expires),
/// and without a mounted /proc — or off Linux — nothing is proven dead.
///
/// "This host" means the same host name; two containers that share a
/// journal file must not share a host name unless they share pids too.
pub(crate) fn provably_dead(holder: &Holder, this_host: &str) -> bool {
    if holder.host != this_host {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let proc = std::path::Path::new("/proc");
        proc.join("self").exists() && !proc.join(holder.pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Decides a request for the lease on (`account_id`, `user_name`) given the
/// lease now on record, and returns the lease to write.
pub(crate) fn claim(
    existing: Option<&Lease>,
    account_id: &str,
    user_name: &str,
    holder: &Holder,
    now: OffsetDateTime,
    ttl: time::Duration,
    is_dead: impl Fn(&Holder) -> bool,
) -> Result<Lease, JournalError> {
    let fresh = Lease {
        account_id: account_id.to_string(),
        user_name: user_name.to_string(),
        holder: holder.clone(),
        acquired_at: now,
        expires_at: now + ttl,
    };
    match existing {
        None => Ok(fresh),
        // The same run asking again (e.g. after resuming): a renewal.
        Some(held) if held.holder.run_id == holder.run_id => Ok(Lease {
            acquired_at: held.acquired_at,
            ..fresh
        }),
        Some(held) if held.expires_at <= now || is_dead(&held.holder) => Ok(fresh),
        Some(held) => Err(JournalError::LeaseHeld {
            account_id: account_id.to_string(),
            user_name: user_name.to_string(),
            holder: held.holder.to_string(),
            since: held.acquired_at,
            expires_at: held.expires_at,
        }),
    }
}

/// Extends `lease` if its run still holds it. An expired lease nobody else
/// took is still this run's: no other run can have rotated the user since.
pub(crate) fn renewal(
    existing: Option<&Lease>,
    lease: &Lease,
    now: OffsetDateTime,
    ttl: time::Duration,
) -> Result<Lease, JournalError> {
    match existing {
        Some(held) if held.holder.run_id == lease.holder.run_id => Ok(Lease {
            expires_at: now + ttl,
            ..held.clone()
        }),
        _ => Err(lost(lease)),
    }
}

/// Whether giving `lease` up deletes the lease on record: none left is
/// fine (nothing to delete); one now held by another run is lost.
pub(crate) fn release(existing: Option<&Lease>, lease: &Lease) -> Result<bool, JournalError> {
    match existing {
        None => Ok(false),
        Some(held) if held.holder.run_id != lease.holder.run_id => Err(lost(lease)),
        Some(_) => Ok(true),
    }
}

pub(crate) fn lost(lease: &Lease) -> JournalError {
    JournalError::LeaseLost {
        account_id: lease.account_id.clone(),
        user_name: lease.user_name.clone(),
    }
}

/// The pid of a process that has exited and been reaped.
#[cfg(test)]
pub(crate) fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);
    const TTL: time::Duration = time::Duration::minutes(10);

    fn holder(run: &str) -> Holder {
        Holder {
            run_id: run.into(),
            pid: 42,
            host: "h1".into(),
        }
    }

    fn held_by(run: &str, expires_at: OffsetDateTime) -> Lease {
        Lease {
            account_id: "111111111111".into(),
            user_name: "alice".into(),
            holder: holder(run),
            acquired_at: NOW - time::Duration::minutes(1),
            expires_at,
        }
    }

    fn ask(existing: Option<&Lease>, run: &str, dead: bool) -> Result<Lease, JournalError> {
        claim(
            existing,
            "111111111111",
            "alice",
            &holder(run),
            NOW,
            TTL,
            |_| dead,
        )
    }

    #[test]
    fn a_free_lease_is_taken() {
        let lease = ask(None, "r1", false).unwrap();
        assert_eq!(lease.acquired_at, NOW);
        assert_eq!(lease.expires_at, NOW + TTL);
    }

    #[test]
    fn a_live_unexpired_lease_is_refused_naming_its_holder() {
        let held = held_by("r1", NOW + TTL);
        let err = ask(Some(&held), "r2", false).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("user alice in account 111111111111"), "{msg}");
        assert!(msg.contains("run r1, pid 42 on host h1"), "{msg}");
        assert!(msg.contains("since 2025-03-01T11:59:00Z"), "{msg}");
        assert!(
            msg.contains("try again after 2025-03-01T12:10:00Z"),
            "{msg}"
        );
    }

    #[test]
    fn an_expired_or_dead_lease_is_taken_over() {
        let expired = held_by("r1", NOW);
        assert_eq!(
            ask(Some(&expired), "r2", false).unwrap().holder.run_id,
            "r2"
        );
        let live = held_by("r1", NOW + TTL);
        let taken = ask(Some(&live), "r2", true).unwrap();
        assert_eq!(taken.acquired_at, NOW);
    }

    #[test]
    fn the_same_run_renews_and_keeps_since() {
        let held = held_by("r1", NOW + time::Duration::minutes(1));
        let renewed = ask(Some(&held), "r1", false).unwrap();
        assert_eq!(renewed.acquired_at, held.acquired_at);
        assert_eq!(renewed.expires_at, NOW + TTL);
    }

    #[test]
    fn renewal_needs_the_same_run() {
        let mine = held_by("r1", NOW);
        assert_eq!(
            renewal(Some(&mine), &mine, NOW, TTL).unwrap().expires_at,
            NOW + TTL
        );
        let theirs = held_by("r2", NOW + TTL);
        assert!(matches!(
            renewal(Some(&theirs), &mine, NOW, TTL),
            Err(JournalError::LeaseLost { .. })
        ));
        assert!(matches!(
            renewal(None, &mine, NOW, TTL),
            Err(JournalError::LeaseLost { .. })
        ));
    }

    #[test]
    fn release_deletes_only_a_lease_of_the_same_run() {
        let mine = held_by("r1", NOW);
        assert!(release(Some(&mine), &mine).unwrap());
        assert!(!release(None, &mine).unwrap());
        let theirs = held_by("r2", NOW + TTL);
        assert!(matches!(
            release(Some(&theirs), &mine),
            Err(JournalError::LeaseLost { .. })
        ));
    }

    #[test]
    fn only_a_missing_process_on_this_host_is_dead() {
        let mut me = Holder::current("r");
        assert!(!provably_dead(&me, hostname()));
        me.host = "elsewhere".into();
        me.pid = dead_pid();
        assert!(!provably_dead(&me, hostname()));
        if cfg!(target_os = "linux") {
            me.host = hostname().to_string();
            assert!(provably_dead(&me, hostname()));
        }
    }

    #[test]
    fn hostname_is_never_empty() {
        assert!(!hostname().is_empty());
        assert_eq!(Holder::current("r").host, hostname());
    }
}
