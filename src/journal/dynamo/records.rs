//! Each journal call on the table: read what the rule decides from, ask
//! the rule (`journal::rules`, `journal::lease`, `journal::keys`, the
//! SQLite journal's own), and write what it allows on the condition that
//! nothing it read has changed. A failed condition is another runner's
//! write: read again, strongly consistent, and decide again.

use futures::future::try_join_all;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::store::{Cond, EXPIRES, Item, Op, PK, SK, TOK, VER, Written, n, s, text, version};
use super::{DynamoJournal, TRIES};
use crate::journal::keys::may_record_key;
use crate::journal::lease::{self, Holder, Lease};
use crate::journal::rules::{self, NewKey};
use crate::journal::{
    Event, JournalError, KeyEvent, NewKeyEvent, NewRotation, Outcome, Phase, Rotation, RotationId,
    Step, Target,
};

/// A user's head: its lease and its unfinished rotation, at a version.
#[derive(Debug, Clone, Default)]
pub(super) struct Head {
    pub(super) lease: Option<Lease>,
    pub(super) open: Option<RotationId>,
    pub(super) ver: u64,
}

/// A rotation with its events: one item, at a version.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) doc: Doc,
    pub(super) ver: u64,
    /// This process wrote this version (else it read it).
    pub(super) mine: bool,
}

/// What a rotation's item holds (attribute `doc`, JSON): the rotation as
/// the engine reads it, and every event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Doc {
    pub(super) rotation: Rotation,
    pub(super) events: Vec<Event>,
}

impl Doc {
    /// A rotation just begun: `Plan` done, as the SQLite journal records it.
    fn begun(new: &NewRotation, id: RotationId, now: OffsetDateTime) -> Doc {
        let mut doc = Doc {
            rotation: Rotation {
                id,
                account_id: new.account_id.clone(),
                user_name: new.user_name.clone(),
                user_arn: new.user_arn.clone(),
                old_key_id: new.old_key_id.clone(),
                new_key_id: None,
                keys_before: new.keys_before.clone(),
                destinations: new.destinations.clone(),
                old_key_action: new.old_key_action,
                access: new.access.clone(),
                run_id: new.run_id.clone(),
                last_step: Step::Plan,
                last_phase: Phase::Done,
                completed: Vec::new(),
                open: Vec::new(),
                outcome: None,
                error: None,
                started_at: now,
                updated_at: now,
                finished_at: None,
            },
            events: Vec::new(),
        };
        let access = new.access.to_plan_detail();
        doc.append(Step::Plan, None, Phase::Done, Some(&access), now);
        doc
    }

    /// Appends the next event and makes it the rotation's last.
    fn append(
        &mut self,
        step: Step,
        target: Option<&Target>,
        phase: Phase,
        detail: Option<&str>,
        now: OffsetDateTime,
    ) {
        let seq = self.events.last().map_or(1, |e| e.seq + 1);
        self.events.push(Event {
            rotation_id: self.rotation.id,
            seq,
            step,
            phase,
            target: target.cloned(),
            at: now,
            detail: detail.map(str::to_string),
        });
        let r = &mut self.rotation;
        (r.last_step, r.last_phase, r.updated_at) = (step, phase, now);
        (r.completed, r.open) = rules::progress(&self.events);
    }

    fn started_ms(&self) -> i128 {
        self.rotation.started_at.unix_timestamp_nanos() / 1_000_000
    }
}

/// A rule's answer, final when it was decided on what the table holds
/// now (`fresh`). A refusal decided on what this process saw last may be
/// out of date — another runner finished the rotation, released the
/// lease — and is asked again on a fresh read (`None`).
fn decided<T>(answer: Result<T, JournalError>, fresh: bool) -> Result<Option<T>, JournalError> {
    match answer {
        Ok(v) => Ok(Some(v)),
        Err(e) if fresh => Err(e),
        Err(_) => Ok(None),
    }
}

fn user_pk(account_id: &str, user_name: &str) -> String {
    format!("U#{account_id}#{user_name}")
}

const HEAD: &str = "HEAD";

fn rotation_sk(id: RotationId) -> String {
    format!("R#{id}")
}

fn id_pk(id: RotationId) -> String {
    format!("ID#{id}")
}

/// The sort key of a rotation in `LOG` and `OPEN`: in the order begun.
fn log_sk(doc: &Doc) -> String {
    format!("{:015}#{}", doc.started_ms(), doc.rotation.id)
}

fn key_pk(account_id: &str) -> String {
    format!("K#{account_id}")
}

fn seq_sk(seq: i64) -> String {
    format!("{seq:020}")
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("journal records serialize")
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

impl DynamoJournal {
    fn corrupt(&self, what: impl std::fmt::Display) -> JournalError {
        JournalError::Corrupt {
            what: format!("table {}: {what}", self.table),
        }
    }

    fn parsed<T: for<'de> Deserialize<'de>>(
        &self,
        item: &Item,
        name: &str,
    ) -> Result<T, JournalError> {
        let raw = text(item, name).ok_or_else(|| {
            self.corrupt(format!(
                "item {} {} has no {name}",
                text(item, PK).unwrap_or("?"),
                text(item, SK).unwrap_or("?")
            ))
        })?;
        serde_json::from_str(raw).map_err(|e| {
            self.corrupt(format!(
                "item {} {}: {name}: {e}",
                text(item, PK).unwrap_or("?"),
                text(item, SK).unwrap_or("?")
            ))
        })
    }

    fn contended(&self, doing: &'static str) -> JournalError {
        JournalError::Contended {
            table: self.table.clone(),
            doing,
            tries: TRIES,
        }
    }

    // ---- heads: leases and the unfinished rotation ----

    /// The user's head: as this process last saw it, unless `fresh` (or
    /// never seen), then read.
    async fn head(
        &self,
        account_id: &str,
        user_name: &str,
        fresh: bool,
    ) -> Result<Head, JournalError> {
        let k = (account_id.to_string(), user_name.to_string());
        if !fresh && let Some(h) = self.heads().get(&k) {
            return Ok(h.clone());
        }
        let item = self
            .get("reading a lease", &user_pk(account_id, user_name), HEAD)
            .await?;
        let head = match &item {
            None => Head::default(),
            Some(i) => Head {
                lease: match i.contains_key("lease") {
                    true => Some(self.parsed(i, "lease")?),
                    false => None,
                },
                open: match text(i, "open") {
                    Some(id) => Some(id.parse().map_err(|e| self.corrupt(e))?),
                    None => None,
                },
                ver: version(item.as_ref()),
            },
        };
        self.heads().insert(k, head.clone());
        Ok(head)
    }

    fn head_op(&self, account_id: &str, user_name: &str, was: &Head, next: &Head, tok: &str) -> Op {
        let mut item = super::store::key(&user_pk(account_id, user_name), HEAD);
        item.insert(VER.into(), n(was.ver + 1));
        item.insert(TOK.into(), s(tok));
        item.insert("account_id".into(), s(account_id));
        item.insert("user_name".into(), s(user_name));
        if let Some(lease) = &next.lease {
            item.insert("lease".into(), s(json(lease)));
        }
        if let Some(id) = next.open {
            item.insert("open".into(), s(id.to_string()));
        }
        Op::Put {
            item,
            cond: Cond::Version(was.ver),
        }
    }

    /// Writes the user's head `next` over `was`; remembers it if it landed.
    async fn put_head(
        &self,
        doing: &'static str,
        (account_id, user_name): (&str, &str),
        was: &Head,
        next: Head,
    ) -> Result<Written, JournalError> {
        let tok = self.token();
        let op = self.head_op(account_id, user_name, was, &next, &tok);
        let written = self.write(doing, &tok, vec![op]).await?;
        self.settle_head((account_id, user_name), was, next, written);
        Ok(written)
    }

    fn settle_head(
        &self,
        (account_id, user_name): (&str, &str),
        was: &Head,
        next: Head,
        written: Written,
    ) {
        let k = (account_id.to_string(), user_name.to_string());
        match written {
            Written::Landed => {
                self.heads().insert(
                    k,
                    Head {
                        ver: was.ver + 1,
                        ..next
                    },
                );
            }
            Written::Conflict => {
                self.heads().remove(&k);
            }
        }
    }

    pub(super) async fn acquire(
        &self,
        account_id: &str,
        user_name: &str,
        holder: &Holder,
        ttl: time::Duration,
    ) -> Result<Lease, JournalError> {
        for _ in 0..TRIES {
            // A lease is taken on what the table holds now, not on what
            // this process saw last: another runner may have let it go.
            let head = self.head(account_id, user_name, true).await?;
            let is_dead = |h: &Holder| lease::provably_dead(h, self.host);
            let now = self.now();
            let claimed = lease::claim(
                head.lease.as_ref(),
                account_id,
                user_name,
                holder,
                now,
                ttl,
                is_dead,
            )?;
            let next = Head {
                lease: Some(claimed.clone()),
                ..head.clone()
            };
            if self
                .put_head("taking a lease", (account_id, user_name), &head, next)
                .await?
                == Written::Landed
            {
                return Ok(claimed);
            }
        }
        Err(self.contended("taking a lease"))
    }

    pub(super) async fn renew(
        &self,
        held: &Lease,
        ttl: time::Duration,
    ) -> Result<Lease, JournalError> {
        let who = (held.account_id.as_str(), held.user_name.as_str());
        for attempt in 0..TRIES {
            let head = self.head(who.0, who.1, attempt > 0).await?;
            let answer = lease::renewal(head.lease.as_ref(), held, self.now(), ttl);
            let Some(renewed) = decided(answer, attempt > 0)? else {
                continue;
            };
            let next = Head {
                lease: Some(renewed.clone()),
                ..head.clone()
            };
            if self.put_head("renewing a lease", who, &head, next).await? == Written::Landed {
                return Ok(renewed);
            }
        }
        Err(self.contended("renewing a lease"))
    }

    pub(super) async fn release(&self, held: &Lease) -> Result<(), JournalError> {
        let who = (held.account_id.as_str(), held.user_name.as_str());
        for attempt in 0..TRIES {
            let head = self.head(who.0, who.1, attempt > 0).await?;
            let Some(held_here) = decided(lease::release(head.lease.as_ref(), held), attempt > 0)?
            else {
                continue;
            };
            if !held_here {
                return Ok(());
            }
            let next = Head {
                lease: None,
                ..head.clone()
            };
            if self.put_head("releasing a lease", who, &head, next).await? == Written::Landed {
                return Ok(());
            }
        }
        Err(self.contended("releasing a lease"))
    }

    // ---- rotations ----

    fn doc_op(&self, doc: &Doc, was: u64, tok: &str) -> Op {
        let r = &doc.rotation;
        let mut item = super::store::key(&user_pk(&r.account_id, &r.user_name), &rotation_sk(r.id));
        item.insert(VER.into(), n(was + 1));
        item.insert(TOK.into(), s(tok));
        item.insert("doc".into(), s(json(doc)));
        if let Some(done) = r.finished_at {
            item.insert(EXPIRES.into(), n(unix(done + self.retention)));
        }
        Op::Put {
            item,
            cond: Cond::Version(was),
        }
    }

    /// The small items that find a rotation: by ID, among the latest, and
    /// (while unfinished) among the unfinished.
    fn index_ops(&self, doc: &Doc) -> Vec<Op> {
        let r = &doc.rotation;
        let mut id = super::store::key(&id_pk(r.id), "ID");
        let mut log = super::store::key("LOG", &log_sk(doc));
        for item in [&mut id, &mut log] {
            item.insert("account_id".into(), s(&r.account_id));
            item.insert("user_name".into(), s(&r.user_name));
            item.insert("id".into(), s(r.id.to_string()));
            if let Some(done) = r.finished_at {
                item.insert(EXPIRES.into(), n(unix(done + self.retention)));
            }
        }
        let open_or_not = match r.outcome {
            None => {
                let mut open = log.clone();
                open.insert(PK.into(), s("OPEN"));
                Op::Put {
                    item: open,
                    cond: Cond::Any,
                }
            }
            Some(_) => Op::Delete {
                pk: "OPEN".into(),
                sk: log_sk(doc),
            },
        };
        vec![
            Op::Put {
                item: id,
                cond: Cond::Any,
            },
            Op::Put {
                item: log,
                cond: Cond::Any,
            },
            open_or_not,
        ]
    }

    /// Where rotation `id` lives: its account and user (never changes).
    async fn locate(&self, id: RotationId) -> Result<(String, String), JournalError> {
        if let Some(st) = self.docs().get(&id) {
            let r = &st.doc.rotation;
            return Ok((r.account_id.clone(), r.user_name.clone()));
        }
        let item = self
            .get("finding a rotation", &id_pk(id), "ID")
            .await?
            .ok_or(JournalError::NotFound { id })?;
        match (text(&item, "account_id"), text(&item, "user_name")) {
            (Some(a), Some(u)) => Ok((a.to_string(), u.to_string())),
            _ => Err(self.corrupt(format!("rotation {id}: its index item names no user"))),
        }
    }

    /// Rotation `id` as this process last wrote it, unless `fresh`.
    async fn stored(&self, id: RotationId, fresh: bool) -> Result<Stored, JournalError> {
        if !fresh && let Some(st) = self.docs().get(&id) {
            return Ok(st.clone());
        }
        let (account_id, user_name) = self.locate(id).await?;
        let item = self
            .get(
                "reading a rotation",
                &user_pk(&account_id, &user_name),
                &rotation_sk(id),
            )
            .await?
            .ok_or(JournalError::NotFound { id })?;
        self.remember(&item)
    }

    fn remember(&self, item: &Item) -> Result<Stored, JournalError> {
        let stored = Stored {
            doc: self.parsed(item, "doc")?,
            ver: version(Some(item)),
            mine: false,
        };
        self.docs().insert(stored.doc.rotation.id, stored.clone());
        Ok(stored)
    }

    /// Writes `doc` over `was` with `more`; remembers it if it landed.
    async fn put_doc(
        &self,
        doing: &'static str,
        was: &Stored,
        doc: Doc,
        more: Vec<Op>,
    ) -> Result<Written, JournalError> {
        let tok = self.token();
        let mut ops = vec![self.doc_op(&doc, was.ver, &tok)];
        ops.extend(more);
        let written = self.write(doing, &tok, ops).await?;
        let id = doc.rotation.id;
        match written {
            Written::Landed => {
                self.docs().insert(
                    id,
                    Stored {
                        doc,
                        ver: was.ver + 1,
                        mine: true,
                    },
                );
            }
            Written::Conflict => {
                self.docs().remove(&id);
            }
        }
        Ok(written)
    }

    pub(super) async fn begin(&self, new: &NewRotation) -> Result<Rotation, JournalError> {
        let who = (new.account_id.as_str(), new.user_name.as_str());
        for attempt in 0..TRIES {
            let head = self.head(who.0, who.1, attempt > 0).await?;
            let now = self.now();
            let answer = rules::may_begin(new, head.lease.as_ref(), head.open, now);
            if decided(answer, attempt > 0)?.is_none() {
                continue;
            }
            let doc = Doc::begun(new, RotationId::new(now), now);
            let next = Head {
                open: Some(doc.rotation.id),
                ..head.clone()
            };
            let tok = self.token();
            let mut ops = vec![self.head_op(who.0, who.1, &head, &next, &tok)];
            let Op::Put { item, .. } = self.doc_op(&doc, 0, &tok) else {
                unreachable!()
            };
            ops.push(Op::Put {
                item,
                cond: Cond::Absent,
            });
            ops.extend(self.index_ops(&doc));
            let written = self.write("recording a new rotation", &tok, ops).await?;
            self.settle_head(who, &head, next, written);
            if written == Written::Landed {
                let rotation = doc.rotation.clone();
                self.docs().insert(
                    rotation.id,
                    Stored {
                        doc,
                        ver: 1,
                        mine: true,
                    },
                );
                return Ok(rotation);
            }
        }
        Err(self.contended("recording a new rotation"))
    }

    pub(super) async fn record(
        &self,
        id: RotationId,
        step: Step,
        target: Option<&Target>,
        phase: Phase,
        detail: Option<&str>,
    ) -> Result<(), JournalError> {
        for attempt in 0..TRIES {
            let was = self.stored(id, attempt > 0).await?;
            let answer = rules::may_record(&was.doc.rotation, step, target, phase);
            if decided(answer, attempt > 0)?.is_none() {
                continue;
            }
            let mut doc = was.doc.clone();
            doc.append(step, target, phase, detail, self.now());
            if self
                .put_doc("recording an event", &was, doc, Vec::new())
                .await?
                == Written::Landed
            {
                return Ok(());
            }
        }
        Err(self.contended("recording an event"))
    }

    pub(super) async fn set_new_key(&self, id: RotationId, key: &str) -> Result<(), JournalError> {
        for attempt in 0..TRIES {
            let was = self.stored(id, attempt > 0).await?;
            let answer = rules::may_set_new_key(&was.doc.rotation, key);
            match decided(answer, attempt > 0)? {
                None => continue,
                Some(NewKey::Known) => return Ok(()),
                Some(NewKey::Record) => {}
            }
            let mut doc = was.doc.clone();
            doc.rotation.new_key_id = Some(key.to_string());
            doc.rotation.updated_at = self.now();
            if self
                .put_doc("recording the new key", &was, doc, Vec::new())
                .await?
                == Written::Landed
            {
                return Ok(());
            }
        }
        Err(self.contended("recording the new key"))
    }

    pub(super) async fn finish(
        &self,
        id: RotationId,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), JournalError> {
        for attempt in 0..TRIES {
            let was = self.stored(id, attempt > 0).await?;
            if decided(rules::may_finish(&was.doc.rotation), attempt > 0)?.is_none() {
                continue;
            }
            let now = self.now();
            let mut doc = was.doc.clone();
            let detail = rules::finish_detail(outcome, error);
            doc.append(Step::Finish, None, Phase::Done, Some(&detail), now);
            let r = &mut doc.rotation;
            (r.outcome, r.error, r.finished_at) =
                (Some(outcome), error.map(str::to_string), Some(now));
            let mut more = self.index_ops(&doc);
            let who = (
                doc.rotation.account_id.clone(),
                doc.rotation.user_name.clone(),
            );
            let mut head = self.head(&who.0, &who.1, attempt > 0).await?;
            if head.open != Some(id) && attempt == 0 {
                // Left pointing at this rotation, the user could never
                // begin another: a head that seems not to is read again.
                head = self.head(&who.0, &who.1, true).await?;
            }
            let next = Head {
                open: None,
                ..head.clone()
            };
            if head.open == Some(id) {
                // Stamped with another token: the doc carries this write's.
                more.push(self.head_op(&who.0, &who.1, &head, &next, &self.token()));
            }
            let written = self
                .put_doc("finishing a rotation", &was, doc, more)
                .await?;
            if head.open == Some(id) {
                self.settle_head((&who.0, &who.1), &head, next, written);
            }
            if written == Written::Landed {
                return Ok(());
            }
        }
        Err(self.contended("finishing a rotation"))
    }

    /// Rotation `id` as the engine reads it back: as this process last
    /// wrote it, when it did (it holds the user's lease, and a write of
    /// another since would fail this one's next condition and be read
    /// again), else read strongly consistent — a rotation another run
    /// began, or left, is always read from the table.
    pub(super) async fn rotation(&self, id: RotationId) -> Result<Stored, JournalError> {
        if let Some(st) = self.docs().get(&id).filter(|st| st.mine) {
            return Ok(st.clone());
        }
        self.stored(id, true).await
    }

    /// The rotations whose index items `items` are, read in that order.
    async fn rotations_of(&self, items: &[Item]) -> Result<Vec<Rotation>, JournalError> {
        let ids = items
            .iter()
            .map(|i| match text(i, "id").map(str::parse::<RotationId>) {
                Some(Ok(id)) => Ok(id),
                _ => Err(self.corrupt("an index item names no rotation")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let read = try_join_all(ids.into_iter().map(|id| self.stored(id, true))).await?;
        Ok(read.into_iter().map(|st| st.doc.rotation).collect())
    }

    pub(super) async fn unfinished(&self) -> Result<Vec<Rotation>, JournalError> {
        let items = self
            .query("listing unfinished rotations", "OPEN", "", true, None)
            .await?;
        let mut all = self.rotations_of(&items).await?;
        all.retain(|r| !r.is_finished());
        Ok(all)
    }

    pub(super) async fn latest(&self, limit: usize) -> Result<Vec<Rotation>, JournalError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self
            .query("listing rotations", "LOG", "", false, Some(limit))
            .await?;
        self.rotations_of(&items).await
    }

    pub(super) async fn of_user(
        &self,
        account_id: &str,
        user_name: &str,
    ) -> Result<Vec<Rotation>, JournalError> {
        let items = self
            .query(
                "listing a user's rotations",
                &user_pk(account_id, user_name),
                "R#",
                true,
                None,
            )
            .await?;
        let mut all = items
            .iter()
            .map(|i| self.remember(i).map(|st| st.doc.rotation))
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by_key(|r| (r.started_at, r.id));
        Ok(all)
    }

    // ---- key records ----

    fn key_event_of(&self, item: &Item) -> Result<KeyEvent, JournalError> {
        self.parsed(item, "doc")
    }

    pub(super) async fn key_events_in(
        &self,
        account_id: &str,
    ) -> Result<Vec<KeyEvent>, JournalError> {
        let items = self
            .query("reading key records", &key_pk(account_id), "", true, None)
            .await?;
        items.iter().map(|i| self.key_event_of(i)).collect()
    }

    pub(super) async fn key_history(&self, limit: usize) -> Result<Vec<KeyEvent>, JournalError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = self
            .query("reading key records", "KLOG", "", false, Some(limit))
            .await?;
        items.iter().map(|i| self.key_event_of(i)).collect()
    }

    fn key_ops(&self, event: &KeyEvent, tok: &str) -> [Op; 2] {
        let mut item = super::store::key(&key_pk(&event.account_id), &seq_sk(event.seq));
        item.insert(VER.into(), n(1));
        item.insert(TOK.into(), s(tok));
        item.insert("doc".into(), s(json(event)));
        item.insert(EXPIRES.into(), n(unix(event.at + self.retention)));
        let mut log = item.clone();
        log.insert(PK.into(), s("KLOG"));
        [
            Op::Put {
                item,
                cond: Cond::Absent,
            },
            Op::Put {
                item: log,
                cond: Cond::Absent,
            },
        ]
    }

    pub(super) async fn record_key(&self, new: &NewKeyEvent) -> Result<KeyEvent, JournalError> {
        let who = (new.account_id.as_str(), new.user_name.as_str());
        for attempt in 0..TRIES {
            // Key records of a user are written under its lease: each
            // moves the user's head on, so two never interleave.
            let head = self.head(who.0, who.1, attempt > 0).await?;
            let mut earlier = self.key_events_in(who.0).await?;
            let last = earlier.last().map_or(0, |e| e.seq);
            earlier.retain(|e| e.key_id == new.key_id);
            let now = self.now();
            let answer = may_record_key(new, head.lease.as_ref(), &earlier, now);
            if decided(answer, attempt > 0)?.is_none() {
                continue;
            }
            let stamp = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0) * 1000
                + i64::try_from(attempt).unwrap_or(0);
            let event = KeyEvent {
                seq: stamp.max(last + 1),
                account_id: new.account_id.clone(),
                user_name: new.user_name.clone(),
                key_id: new.key_id.clone(),
                op: new.op,
                phase: new.phase,
                run_id: new.run_id.clone(),
                at: now,
                as_of: new.as_of,
                detail: new.detail.clone(),
            };
            let tok = self.token();
            let mut ops = vec![self.head_op(who.0, who.1, &head, &head, &tok)];
            ops.extend(self.key_ops(&event, &tok));
            let written = self.write("recording a key action", &tok, ops).await?;
            self.settle_head(who, &head, head.clone(), written);
            if written == Written::Landed {
                return Ok(event);
            }
        }
        Err(self.contended("recording a key action"))
    }

    // ---- copying a journal in ----

    /// Whether the table holds no record at all.
    pub async fn is_empty(&self) -> Result<bool, JournalError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(self.failed("looking for records"))?;
        Ok(out.items.unwrap_or_default().is_empty())
    }

    /// Writes a rotation read from another journal, as it was, unfinished
    /// ones with the user's head pointing at them.
    pub async fn import_rotation(
        &self,
        rotation: Rotation,
        events: Vec<Event>,
    ) -> Result<(), JournalError> {
        let doc = Doc { rotation, events };
        let tok = self.token();
        let Op::Put { item, .. } = self.doc_op(&doc, 0, &tok) else {
            unreachable!()
        };
        let mut ops = vec![Op::Put {
            item,
            cond: Cond::Absent,
        }];
        ops.extend(self.index_ops(&doc));
        if !doc.rotation.is_finished() {
            let r = &doc.rotation;
            let head = self.head(&r.account_id, &r.user_name, true).await?;
            let next = Head {
                open: Some(r.id),
                ..head.clone()
            };
            ops.push(self.head_op(&r.account_id, &r.user_name, &head, &next, &tok));
        }
        match self.write("copying a rotation", &tok, ops).await? {
            Written::Landed => Ok(()),
            Written::Conflict => Err(self.contended("copying a rotation")),
        }
    }

    /// Writes a key record read from another journal, with its number.
    pub async fn import_key_event(&self, event: &KeyEvent) -> Result<(), JournalError> {
        let tok = self.token();
        let ops = Vec::from(self.key_ops(event, &tok));
        match self.write("copying a key record", &tok, ops).await? {
            Written::Landed => Ok(()),
            Written::Conflict => Err(self.contended("copying a key record")),
        }
    }
}
