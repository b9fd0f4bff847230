//! [`DynamoJournal`] as a [`Journal`]: each call is the records module's
//! function of the same name.

use time::OffsetDateTime;

use super::DynamoJournal;
use crate::journal::{
    Answer, Event, Holder, Journal, KeyEvent, Lease, NewKeyEvent, NewRotation, Outcome, Phase,
    Rotation, RotationId, Step, Target,
};

impl Journal for DynamoJournal {
    fn begin_rotation<'a>(&'a self, new: &'a NewRotation) -> Answer<'a, Rotation> {
        Box::pin(self.begin(new))
    }

    fn record_on<'a>(
        &'a self,
        id: RotationId,
        step: Step,
        target: Option<&'a Target>,
        phase: Phase,
        detail: Option<&'a str>,
    ) -> Answer<'a, ()> {
        Box::pin(self.record(id, step, target, phase, detail))
    }

    fn set_new_key<'a>(&'a self, id: RotationId, new_key_id: &'a str) -> Answer<'a, ()> {
        Box::pin(DynamoJournal::set_new_key(self, id, new_key_id))
    }

    fn finish<'a>(
        &'a self,
        id: RotationId,
        outcome: Outcome,
        error: Option<&'a str>,
    ) -> Answer<'a, ()> {
        Box::pin(DynamoJournal::finish(self, id, outcome, error))
    }

    fn get(&self, id: RotationId) -> Answer<'_, Rotation> {
        Box::pin(async move { Ok(self.rotation(id).await?.doc.rotation) })
    }

    fn unfinished(&self) -> Answer<'_, Vec<Rotation>> {
        Box::pin(DynamoJournal::unfinished(self))
    }

    fn undone_since<'a>(
        &'a self,
        account_id: &'a str,
        user_name: &'a str,
        since: OffsetDateTime,
    ) -> Answer<'a, Vec<Rotation>> {
        Box::pin(async move {
            let mut all = DynamoJournal::of_user(self, account_id, user_name).await?;
            all.retain(|r| r.outcome == Some(Outcome::Undone) && r.started_at >= since);
            Ok(all)
        })
    }

    fn of_user<'a>(&'a self, account_id: &'a str, user_name: &'a str) -> Answer<'a, Vec<Rotation>> {
        Box::pin(DynamoJournal::of_user(self, account_id, user_name))
    }

    fn history(&self, limit: usize) -> Answer<'_, Vec<Rotation>> {
        Box::pin(self.latest(limit))
    }

    fn events(&self, id: RotationId) -> Answer<'_, Vec<Event>> {
        Box::pin(async move { Ok(self.rotation(id).await?.doc.events) })
    }

    fn acquire_lease<'a>(
        &'a self,
        account_id: &'a str,
        user_name: &'a str,
        holder: &'a Holder,
        ttl: time::Duration,
    ) -> Answer<'a, Lease> {
        Box::pin(self.acquire(account_id, user_name, holder, ttl))
    }

    fn renew_lease<'a>(&'a self, lease: &'a Lease, ttl: time::Duration) -> Answer<'a, Lease> {
        Box::pin(self.renew(lease, ttl))
    }

    fn record_key<'a>(&'a self, event: &'a NewKeyEvent) -> Answer<'a, KeyEvent> {
        Box::pin(DynamoJournal::record_key(self, event))
    }

    fn key_events<'a>(
        &'a self,
        account_id: &'a str,
        user_name: &'a str,
    ) -> Answer<'a, Vec<KeyEvent>> {
        Box::pin(async move {
            let mut all = DynamoJournal::key_events_in(self, account_id).await?;
            all.retain(|e| e.user_name == user_name);
            Ok(all)
        })
    }

    fn key_history(&self, limit: usize) -> Answer<'_, Vec<KeyEvent>> {
        Box::pin(DynamoJournal::key_history(self, limit))
    }

    fn key_events_in<'a>(&'a self, account_id: &'a str) -> Answer<'a, Vec<KeyEvent>> {
        Box::pin(DynamoJournal::key_events_in(self, account_id))
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> Answer<'a, ()> {
        Box::pin(self.release(lease))
    }
}
