//! Putting things back: undoing a rotation that failed, and finishing or
//! undoing one an earlier run left unfinished (DESIGN.md invariant 2).

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use super::engine::{Engine, Report, RotateError, Status, Target, Who};
use crate::error::error_chain;
use crate::journal::{Outcome, Phase, Rotation, Step};
use crate::model::Key;
use crate::model::mask_key_id;
use crate::rotation::steps;

impl Engine<'_> {
    /// Records that `step` failed with `error`, undoes the rotation, and
    /// returns the error saying why.
    pub(super) async fn abort(
        &self,
        who: &Who<'_>,
        id: i64,
        step: Step,
        on: Option<&str>,
        what: &str,
        error: &(dyn std::error::Error + 'static),
    ) -> Result<Report, RotateError> {
        self.rec(who, id, step, on, Phase::Failed, Some(&error.to_string()))?;
        self.fail_undone(who, id, format!("{what}: {}", error_chain(error)))
            .await
    }

    /// Undoes a rotation of this run and returns the error telling the user
    /// why: they are where they started.
    pub(super) async fn fail_undone(
        &self,
        who: &Who<'_>,
        id: i64,
        reason: String,
    ) -> Result<Report, RotateError> {
        self.undo(who, id, &reason).await?;
        Err(RotateError::Undone {
            target: who.target.label.clone(),
            user: who.user.clone(),
            reason,
        })
    }

    /// Puts everything back: destinations holding the new key get the old
    /// one, every key the rotation created is deleted, the rotation ends
    /// `Undone` with `reason`.
    pub(super) async fn undo(
        &self,
        who: &Who<'_>,
        id: i64,
        reason: &str,
    ) -> Result<(), RotateError> {
        let r = self.journal(who.target, self.journal.get(id))?;
        for dest in &who.target.destinations {
            let holds = dest
                .current_key_id()
                .map_err(|source| RotateError::Destination {
                    target: who.target.label.clone(),
                    what: "cannot read the key while rolling back",
                    source,
                })?;
            if holds.is_some() && holds.as_deref() != Some(r.old_key_id.as_str()) {
                let on = dest.describe();
                self.rec(who, id, Step::Rollback, Some(&on), Phase::Begin, None)?;
                if let Err(source) = dest.restore(&r.old_key_id) {
                    self.rec(
                        who,
                        id,
                        Step::Rollback,
                        Some(&on),
                        Phase::Failed,
                        Some(&source.to_string()),
                    )?;
                    return Err(RotateError::Destination {
                        target: who.target.label.clone(),
                        what: "cannot restore the old key (the new one stays, still valid; rerun rekey rotate)",
                        source,
                    });
                }
                self.rec(who, id, Step::Rollback, Some(&on), Phase::Done, None)?;
            }
        }
        let old = self.read_current(who.target)?;
        let iam = self.iam_clients(who.target, &old);
        let keys = steps::list_keys(&iam, &who.user)
            .await
            .map_err(self.call(who.target, "listing keys to remove the new one"))?;
        for key in keys
            .iter()
            .filter(|k| made_by(&r, k))
            .filter_map(|k| k.access_key_id.as_deref())
        {
            self.rec(who, id, Step::DeleteNewKey, Some(key), Phase::Begin, None)?;
            if let Err(e) = steps::delete_key(&iam, &who.user, key).await {
                self.rec(
                    who,
                    id,
                    Step::DeleteNewKey,
                    Some(key),
                    Phase::Failed,
                    Some(&e.to_string()),
                )?;
                return Err(self.call(
                    who.target,
                    format!(
                        "deleting the new key {} (rerun rekey rotate to finish)",
                        mask_key_id(key)
                    ),
                )(e));
            }
            self.rec(who, id, Step::DeleteNewKey, Some(key), Phase::Done, None)?;
        }
        self.journal(
            who.target,
            self.journal.finish(id, Outcome::Undone, Some(reason)),
        )
    }

    /// Finishes or undoes a rotation an earlier run left unfinished.
    pub async fn resume(
        &self,
        rotation: &Rotation,
        target: &Target,
    ) -> Result<Report, RotateError> {
        let lease = self
            .lease(target, &rotation.account_id, &rotation.user_name)
            .await?;
        let result = self.resume_leased(rotation.id, target).await;
        self.release(&lease);
        result
    }

    async fn resume_leased(&self, id: i64, target: &Target) -> Result<Report, RotateError> {
        let r = self.journal(target, self.journal.get(id))?;
        let who = Who {
            target,
            user: r.user_name.clone(),
        };
        let mut report = Report {
            target: target.label.clone(),
            status: Status::Undone,
            account_id: Some(r.account_id.clone()),
            user_name: Some(r.user_name.clone()),
            old_key_id: Some(r.old_key_id.clone()),
            new_key_id: r.new_key_id.clone(),
            rotation_id: Some(id),
            plan: None,
            message: String::new(),
        };
        let rolling_back = [Step::Rollback, Step::DeleteNewKey]
            .iter()
            .any(|s| r.step_done(*s) || r.open.iter().any(|o| o.step == *s));
        let undo =
            |why: &str| format!("undid rotation #{id} that an earlier run left unfinished: {why}");
        if rolling_back {
            return self
                .resume_undo(&who, id, undo("it was being rolled back"), report)
                .await;
        }
        let Some(new_id) = r
            .new_key_id
            .clone()
            .filter(|_| r.step_done(Step::CreateKey))
        else {
            return self
                .resume_undo(
                    &who,
                    id,
                    undo("it stopped before the new key was delivered"),
                    report,
                )
                .await;
        };
        // The secret lives only in destinations: read it back from one.
        let mut new = None;
        for dest in &target.destinations {
            if let Ok(Some(pair)) = dest.current()
                && pair.access_key_id == new_id
            {
                new = Some(pair);
                break;
            }
        }
        let Some(new) = new else {
            if r.step_done(Step::Verify) {
                return Err(RotateError::NoKey {
                    target: format!(
                        "{} (rotation #{id}: no destination holds the new key {} any more)",
                        target.label,
                        mask_key_id(&new_id)
                    ),
                });
            }
            return self
                .resume_undo(
                    &who,
                    id,
                    undo("the new secret was lost before it was delivered"),
                    report,
                )
                .await;
        };
        for dest in &target.destinations {
            let on = dest.describe();
            if r.step_done_on(Step::Deliver, &on) {
                continue;
            }
            self.rec(
                &who,
                id,
                Step::Deliver,
                Some(&on),
                Phase::Begin,
                Some("resumed"),
            )?;
            let holds = dest.current_key_id().ok().flatten();
            if holds.as_deref() != Some(new_id.as_str())
                && let Err(e) = dest.deliver(&new.access_key_id, &new.secret)
            {
                let what = undo(&format!("could not write {on}"));
                return self
                    .abort(&who, id, Step::Deliver, Some(&on), &what, &e)
                    .await;
            }
            self.rec(&who, id, Step::Deliver, Some(&on), Phase::Done, None)?;
        }
        let message = self
            .after_delivery(&who, id, &r.user_arn, &r.old_key_id, r.old_key_action, &new)
            .await?;
        report.status = Status::Rotated;
        report.message = format!("finished rotation #{id} left by an earlier run: {message}");
        Ok(report)
    }
    /// Undoes a rotation an earlier run left: a recovery, not a failure.
    async fn resume_undo(
        &self,
        who: &Who<'_>,
        id: i64,
        reason: String,
        report: Report,
    ) -> Result<Report, RotateError> {
        self.undo(who, id, &reason).await?;
        Ok(Report {
            status: Status::Undone,
            message: reason,
            ..report
        })
    }
}

/// Clock skew allowed between this machine and IAM.
const SKEW: time::Duration = time::Duration::minutes(5);

/// Whether `key` was made by rotation `r`: not among the keys it planned
/// with, and created while it ran. A key the person made by hand later (after
/// a crash, before the next run) is not ours to delete.
fn made_by(r: &Rotation, key: &Key) -> bool {
    let id = key.access_key_id.as_deref().unwrap_or_default();
    if r.keys_before.iter().any(|k| k == id) {
        return false;
    }
    if r.new_key_id.as_deref() == Some(id) {
        return true;
    }
    key.created
        .is_some_and(|c| c >= r.started_at - SKEW && c <= r.updated_at + SKEW)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{OldKeyAction, Phase, Step};
    use crate::model::KeyStatus;
    use time::macros::datetime;

    fn rotation() -> Rotation {
        Rotation {
            id: 1,
            account_id: "111111111111".into(),
            user_name: "dev".into(),
            user_arn: "arn:aws:iam::111111111111:user/dev".into(),
            old_key_id: "AKIAOLD".into(),
            new_key_id: None,
            keys_before: vec!["AKIAOLD".into()],
            destinations: vec![],
            old_key_action: OldKeyAction::Deactivate,
            run_id: "r".into(),
            last_step: Step::CreateKey,
            last_phase: Phase::Begin,
            completed: vec![],
            open: vec![],
            outcome: None,
            error: None,
            started_at: datetime!(2026-11-26 10:00 UTC),
            updated_at: datetime!(2026-11-26 10:00:02 UTC),
            finished_at: None,
        }
    }

    fn key(id: &str, created: time::OffsetDateTime) -> Key {
        Key {
            access_key_id: Some(id.into()),
            status: KeyStatus::Active,
            created: Some(created),
            last_used: None,
        }
    }

    #[test]
    fn only_keys_made_while_the_rotation_ran_are_its_own() {
        let r = rotation();
        assert!(!made_by(
            &r,
            &key("AKIAOLD", datetime!(2026-11-26 10:00:01 UTC))
        ));
        assert!(made_by(
            &r,
            &key("AKIALOST", datetime!(2026-11-26 10:00:01 UTC))
        ));
        // Made by hand two hours after the crash: spared.
        assert!(!made_by(
            &r,
            &key("AKIAHUMAN", datetime!(2026-11-26 12:00 UTC))
        ));
        let known = Rotation {
            new_key_id: Some("AKIANEW".into()),
            ..rotation()
        };
        assert!(made_by(
            &known,
            &key("AKIANEW", datetime!(2026-11-27 0:00 UTC))
        ));
    }
}
