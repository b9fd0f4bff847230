//! The key_events table (issue 17): what rekey did to one key outside a
//! rotation. The rule for what may be written is `journal::keys`'; this
//! reads the facts it needs (the user's lease, the key's earlier records)
//! in the caller's `BEGIN IMMEDIATE` transaction, asks it, and appends.

use rusqlite::{Connection, Row, params};
use time::OffsetDateTime;

use super::rows::Ms;
use super::{leases, sql};
use crate::journal::keys::may_record_key;
use crate::journal::{JournalError, KeyEvent, NewKeyEvent};

const SELECT: &str = "SELECT seq, account_id, user_name, key_id, op, phase, run_id, at, as_of,
    detail FROM key_events";

fn event(r: &Row<'_>) -> rusqlite::Result<(KeyEvent, String, String)> {
    Ok((
        KeyEvent {
            seq: r.get("seq")?,
            account_id: r.get("account_id")?,
            user_name: r.get("user_name")?,
            key_id: r.get("key_id")?,
            op: crate::journal::KeyOp::Warn,
            phase: crate::journal::Phase::Done,
            run_id: r.get("run_id")?,
            at: r.get::<_, Ms>("at")?.0,
            as_of: r.get::<_, Ms>("as_of")?.0,
            detail: r.get("detail")?,
        },
        r.get("op")?,
        r.get("phase")?,
    ))
}

/// The rows `query` selects, with their names parsed (a name this build
/// does not know is a damaged or newer journal: said, not guessed).
fn load(
    conn: &Connection,
    query: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<KeyEvent>, JournalError> {
    let mut stmt = conn.prepare(query).map_err(sql("reading key records"))?;
    let rows = stmt
        .query_map(args, event)
        .map_err(sql("reading key records"))?;
    let mut out = Vec::new();
    for row in rows {
        let (mut e, op, phase) = row.map_err(sql("reading key records"))?;
        let corrupt = |what: String| JournalError::Corrupt { what };
        e.op = op
            .parse()
            .map_err(|err| corrupt(format!("key record {}: {err}", e.seq)))?;
        e.phase = phase
            .parse()
            .map_err(|err| corrupt(format!("key record {}: {err}", e.seq)))?;
        out.push(e);
    }
    Ok(out)
}

pub(super) fn of_key(
    conn: &Connection,
    account_id: &str,
    key_id: &str,
) -> Result<Vec<KeyEvent>, JournalError> {
    let query = format!("{SELECT} WHERE account_id = ?1 AND key_id = ?2 ORDER BY seq");
    load(conn, &query, params![account_id, key_id])
}

pub(super) fn of_user(
    conn: &Connection,
    account_id: &str,
    user_name: &str,
) -> Result<Vec<KeyEvent>, JournalError> {
    let query = format!("{SELECT} WHERE account_id = ?1 AND user_name = ?2 ORDER BY seq");
    load(conn, &query, params![account_id, user_name])
}

pub(super) fn of_account(
    conn: &Connection,
    account_id: &str,
) -> Result<Vec<KeyEvent>, JournalError> {
    let query = format!("{SELECT} WHERE account_id = ?1 ORDER BY seq");
    load(conn, &query, params![account_id])
}

pub(super) fn latest(conn: &Connection, limit: usize) -> Result<Vec<KeyEvent>, JournalError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let query = format!("{SELECT} ORDER BY seq DESC LIMIT ?1");
    load(conn, &query, params![limit])
}

/// Appends `new` if the rules allow it, and returns it as stored.
pub(super) fn record(
    conn: &Connection,
    new: &NewKeyEvent,
    now: OffsetDateTime,
) -> Result<KeyEvent, JournalError> {
    let lease = leases::read(conn, &new.account_id, &new.user_name)?;
    let earlier = of_key(conn, &new.account_id, &new.key_id)?;
    may_record_key(new, lease.as_ref(), &earlier, now)?;
    conn.execute(
        "INSERT INTO key_events (account_id, user_name, key_id, op, phase, run_id, at, as_of,
            detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            new.account_id,
            new.user_name,
            new.key_id,
            new.op.as_str(),
            new.phase.as_str(),
            new.run_id,
            Ms(now),
            Ms(new.as_of),
            new.detail,
        ],
    )
    .map_err(sql("recording a key action"))?;
    Ok(KeyEvent {
        seq: conn.last_insert_rowid(),
        account_id: new.account_id.clone(),
        user_name: new.user_name.clone(),
        key_id: new.key_id.clone(),
        op: new.op,
        phase: new.phase,
        run_id: new.run_id.clone(),
        at: now,
        as_of: super::rows::to_ms_precision(new.as_of),
        detail: new.detail.clone(),
    })
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use crate::journal::sqlite::fixtures::in_memory;
    use crate::journal::{Holder, JournalError, KeyOp, NewKeyEvent, Phase};

    #[test]
    fn key_records_round_trip_under_the_lease_with_both_times() {
        let (journal, clock) = in_memory();
        let holder = Holder::current("run-a");
        let name = "svc #1, ünï";
        journal
            .acquire_lease("111111111111", name, &holder, Duration::minutes(5))
            .unwrap();
        let as_of = clock.0.lock().unwrap().to_owned() + Duration::days(16);
        let new = |op, phase| NewKeyEvent {
            account_id: "111111111111".into(),
            user_name: name.into(),
            key_id: "AKIAOLDOLDOLDOLD0001".into(),
            op,
            phase,
            run_id: "run-a".into(),
            as_of,
            detail: Some(r#"{"because":"stale"}"#.into()),
        };
        journal
            .record_key(&new(KeyOp::Deactivate, Phase::Begin))
            .unwrap();
        let done = journal
            .record_key(&new(KeyOp::Deactivate, Phase::Done))
            .unwrap();
        assert_eq!(done.as_of, as_of);
        assert_ne!(done.at, done.as_of, "both times are kept");
        let all = journal.key_events("111111111111", name).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], done);
        assert_eq!(all[0].phase, Phase::Begin);
        // A Done without its Begin is refused, and nothing is written.
        let err = journal
            .record_key(&new(KeyOp::Delete, Phase::Done))
            .unwrap_err();
        assert!(matches!(err, JournalError::KeyOutOfOrder { .. }), "{err}");
        assert_eq!(journal.key_events("111111111111", name).unwrap().len(), 2);
        // Another run without the lease writes nothing.
        let other = NewKeyEvent {
            run_id: "run-b".into(),
            ..new(KeyOp::Warn, Phase::Done)
        };
        let err = journal.record_key(&other).unwrap_err();
        assert!(matches!(err, JournalError::NotLeased { .. }), "{err}");
    }
}
