//! How records map to rows: the stored forms of times, lists and names, and
//! the queries that read a rotation with its events or append an event.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::sql;
use crate::destination::DestinationSpec;
use crate::journal::{
    AccessSpec, Event, JournalError, OldKeyAction, Outcome, Phase, Rotation, RotationId, Step,
    Target,
};

const SELECT_ROTATION: &str = "SELECT id, account_id, user_name, user_arn, old_key_id, new_key_id,
    keys_before, destinations, old_key_action, run_id, last_step, last_phase, outcome, error,
    started_at, updated_at, finished_at FROM rotations WHERE id = ?1";

pub(super) fn to_ms_precision(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

/// A time as stored: Unix milliseconds.
pub(super) struct Ms(pub(super) OffsetDateTime);

impl ToSql for Ms {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let ms = self.0.unix_timestamp_nanos().div_euclid(1_000_000);
        Ok(i64::try_from(ms).unwrap_or(i64::MAX).into())
    }
}

impl FromSql for Ms {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let ms = i128::from(value.as_i64()?);
        OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000)
            .map(Ms)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A list of strings as stored: a JSON array.
struct List(Vec<String>);

pub(super) fn list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// Destinations as stored: a JSON array of [`DestinationSpec`]s (plain
/// strings in rows written before destinations were typed).
struct Destinations(Vec<DestinationSpec>);

pub(super) fn destinations(items: &[DestinationSpec]) -> String {
    serde_json::to_string(items).expect("destinations serialize")
}

impl FromSql for Destinations {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(value.as_str()?)
            .map(Destinations)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

impl FromSql for List {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(value.as_str()?)
            .map(List)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// The enums are stored by their names, so the file reads well in `sqlite3`.
macro_rules! stored_by_name {
    ($($name:ty),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value.as_str()?.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    )+};
}

stored_by_name!(Step, Phase, Outcome, OldKeyAction);

/// A rotation ID is stored as its text: a ULID, or the number of a
/// rotation migrated from schema 1 (`7`).
impl ToSql for RotationId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.to_string().into())
    }
}

impl FromSql for RotationId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

fn rotation_row(r: &Row<'_>) -> rusqlite::Result<Rotation> {
    Ok(Rotation {
        id: r.get("id")?,
        account_id: r.get("account_id")?,
        user_name: r.get("user_name")?,
        user_arn: r.get("user_arn")?,
        old_key_id: r.get("old_key_id")?,
        new_key_id: r.get("new_key_id")?,
        keys_before: r.get::<_, List>("keys_before")?.0,
        destinations: r.get::<_, Destinations>("destinations")?.0,
        old_key_action: r.get("old_key_action")?,
        access: AccessSpec::OldKey,
        run_id: r.get("run_id")?,
        last_step: r.get("last_step")?,
        last_phase: r.get("last_phase")?,
        completed: Vec::new(),
        open: Vec::new(),
        outcome: r.get("outcome")?,
        error: r.get("error")?,
        started_at: r.get::<_, Ms>("started_at")?.0,
        updated_at: r.get::<_, Ms>("updated_at")?.0,
        finished_at: r.get::<_, Option<Ms>>("finished_at")?.map(|m| m.0),
    })
}

/// A rotation with its progress worked out from its events.
pub(super) fn load(conn: &Connection, id: RotationId) -> Result<Rotation, JournalError> {
    Ok(load_with_events(conn, id)?.0)
}

/// A rotation, as [`load`] reads it, and its events in order.
pub(super) fn load_with_events(
    conn: &Connection,
    id: RotationId,
) -> Result<(Rotation, Vec<Event>), JournalError> {
    let mut stmt = conn
        .prepare_cached(SELECT_ROTATION)
        .map_err(sql("reading a rotation"))?;
    let mut rotation = stmt
        .query_row([id], rotation_row)
        .optional()
        .map_err(sql("reading a rotation"))?
        .ok_or(JournalError::NotFound { id })?;
    let events = load_events(conn, id, &rotation.destinations)?;
    let plan = events.iter().find(|e| e.step == Step::Plan);
    rotation.access = AccessSpec::from_plan_detail(plan.and_then(|e| e.detail.as_deref()));
    (rotation.completed, rotation.open) = crate::journal::rules::progress(&events);
    Ok((rotation, events))
}

/// The events of rotation `id`, whose destinations are `destinations`
/// (what an old row's target names, see [`Target::from_stored`]).
fn load_events(
    conn: &Connection,
    id: RotationId,
    destinations: &[DestinationSpec],
) -> Result<Vec<Event>, JournalError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT rotation_id, seq, step, phase, target, at, detail
             FROM events WHERE rotation_id = ?1 ORDER BY seq",
        )
        .map_err(sql("reading events"))?;
    stmt.query_map([id], |r| {
        let step = r.get("step")?;
        let target: Option<String> = r.get("target")?;
        Ok(Event {
            rotation_id: r.get("rotation_id")?,
            seq: r.get("seq")?,
            step,
            phase: r.get("phase")?,
            target: target.map(|t| Target::from_stored(&t, step, destinations)),
            at: r.get::<_, Ms>("at")?.0,
            detail: r.get("detail")?,
        })
    })
    .and_then(Iterator::collect)
    .map_err(sql("reading events"))
}

/// Loads the rotations whose IDs `ids_sql` selects, in that order.
pub(super) fn load_many(
    conn: &Connection,
    ids_sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Rotation>, JournalError> {
    let ids: Vec<RotationId> = conn
        .prepare(ids_sql)
        .and_then(|mut stmt| stmt.query_map(params, |r| r.get(0))?.collect())
        .map_err(sql("listing rotations"))?;
    ids.into_iter().map(|id| load(conn, id)).collect()
}

/// Appends the next event of rotation `id` and makes it the rotation's last.
pub(super) fn append(
    conn: &Connection,
    id: RotationId,
    step: Step,
    target: Option<&Target>,
    phase: Phase,
    detail: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), JournalError> {
    let target = target.map(Target::to_stored);
    conn.execute(
        "INSERT INTO events (rotation_id, seq, step, phase, target, detail, at)
         SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6 FROM events WHERE rotation_id = ?1",
        params![id, step, phase, target, detail, Ms(now)],
    )
    .map_err(sql("recording an event"))?;
    conn.execute(
        "UPDATE rotations SET last_step = ?2, last_phase = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, step, phase, Ms(now)],
    )
    .map_err(sql("recording an event"))?;
    Ok(())
}
