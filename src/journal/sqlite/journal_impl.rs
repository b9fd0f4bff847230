//! [`SqliteJournal`] as a [`Journal`]: each call's future runs the same
//! inline transaction as the inherent method of the same name, when polled.
//! Inline rather than on `spawn_blocking`: a call is one short transaction
//! on a local file (milliseconds; SQLite's busy wait only when another
//! rekey process writes at that moment), the connection is behind a mutex
//! anyway, and the rotation awaiting it has nothing else to do meanwhile.

use time::OffsetDateTime;

use super::SqliteJournal;
use crate::journal::{
    Answer, Event, Holder, Journal, KeyEvent, Lease, NewKeyEvent, NewRotation, Outcome, Phase,
    Rotation, RotationId, Step, Target,
};

impl Journal for SqliteJournal {
    fn begin_rotation<'a>(&'a self, new: &'a NewRotation) -> Answer<'a, Rotation> {
        Box::pin(async move { SqliteJournal::begin_rotation(self, new) })
    }

    fn record_on<'a>(
        &'a self,
        id: RotationId,
        step: Step,
        target: Option<&'a Target>,
        phase: Phase,
        detail: Option<&'a str>,
    ) -> Answer<'a, ()> {
        Box::pin(async move { SqliteJournal::record_on(self, id, step, target, phase, detail) })
    }

    fn set_new_key<'a>(&'a self, id: RotationId, new_key_id: &'a str) -> Answer<'a, ()> {
        Box::pin(async move { SqliteJournal::set_new_key(self, id, new_key_id) })
    }

    fn finish<'a>(
        &'a self,
        id: RotationId,
        outcome: Outcome,
        error: Option<&'a str>,
    ) -> Answer<'a, ()> {
        Box::pin(async move { SqliteJournal::finish(self, id, outcome, error) })
    }

    fn get(&self, id: RotationId) -> Answer<'_, Rotation> {
        Box::pin(async move { SqliteJournal::get(self, id) })
    }

    fn unfinished(&self) -> Answer<'_, Vec<Rotation>> {
        Box::pin(async move { SqliteJournal::unfinished(self) })
    }

    fn undone_since<'a>(
        &'a self,
        account_id: &'a str,
        user_name: &'a str,
        since: OffsetDateTime,
    ) -> Answer<'a, Vec<Rotation>> {
        Box::pin(async move { SqliteJournal::undone_since(self, account_id, user_name, since) })
    }

    fn of_user<'a>(&'a self, account_id: &'a str, user_name: &'a str) -> Answer<'a, Vec<Rotation>> {
        Box::pin(async move { SqliteJournal::of_user(self, account_id, user_name) })
    }

    fn history(&self, limit: usize) -> Answer<'_, Vec<Rotation>> {
        Box::pin(async move { SqliteJournal::history(self, limit) })
    }

    fn events(&self, id: RotationId) -> Answer<'_, Vec<Event>> {
        Box::pin(async move { SqliteJournal::events(self, id) })
    }

    fn acquire_lease<'a>(
        &'a self,
        account_id: &'a str,
        user_name: &'a str,
        holder: &'a Holder,
        ttl: time::Duration,
    ) -> Answer<'a, Lease> {
        Box::pin(
            async move { SqliteJournal::acquire_lease(self, account_id, user_name, holder, ttl) },
        )
    }

    fn renew_lease<'a>(&'a self, lease: &'a Lease, ttl: time::Duration) -> Answer<'a, Lease> {
        Box::pin(async move { SqliteJournal::renew_lease(self, lease, ttl) })
    }

    fn record_key<'a>(&'a self, event: &'a NewKeyEvent) -> Answer<'a, KeyEvent> {
        Box::pin(async move { SqliteJournal::record_key(self, event) })
    }

    fn key_events<'a>(
        &'a self,
        account_id: &'a str,
        user_name: &'a str,
    ) -> Answer<'a, Vec<KeyEvent>> {
        Box::pin(async move { SqliteJournal::key_events(self, account_id, user_name) })
    }

    fn key_history(&self, limit: usize) -> Answer<'_, Vec<KeyEvent>> {
        Box::pin(async move { SqliteJournal::key_history(self, limit) })
    }

    fn key_events_in<'a>(&'a self, account_id: &'a str) -> Answer<'a, Vec<KeyEvent>> {
        Box::pin(async move { SqliteJournal::key_events_in(self, account_id) })
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> Answer<'a, ()> {
        Box::pin(async move { SqliteJournal::release_lease(self, lease) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::sqlite::fixtures::{begin, in_memory};

    #[tokio::test]
    async fn the_trait_answers_what_the_file_holds() {
        let (journal, _) = in_memory();
        let id = begin(&journal, "alice", "r").id;
        let dyn_journal: &dyn Journal = &journal;
        dyn_journal
            .record(id, Step::CreateKey, Phase::Begin, None)
            .await
            .unwrap();
        let r = dyn_journal.get(id).await.unwrap();
        assert_eq!(r.open.len(), 1);
        assert_eq!(dyn_journal.unfinished().await.unwrap(), [r]);
    }
}
