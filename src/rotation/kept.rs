//! The next rotation of a key kept active (old-key action `keep`): when a
//! user is rotated again while the previous generation's key is still
//! active, the journal knows that key — a completed rotation replaced it
//! and left it active for readers on their own schedule — so it may be
//! freed first, but only if GetAccessKeyLastUsed shows no use since it was
//! replaced. Otherwise the rotation is refused, naming where and when it
//! was last used.

// See engine.rs: one error per key, its size is no cost.
#![allow(clippy::result_large_err)]

use time::OffsetDateTime;

use super::Refusal;
use super::engine::{Engine, Job, RotateError};
use crate::aws::AccountClients;
use crate::journal::{OldKeyAction, Outcome};
use crate::model::{Key, KeyStatus, LastUsed, mask_key_id};

/// What to do with a kept key before the next rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Unused since it was replaced: free its slot.
    Free,
    /// Still used: refuse, saying where and when.
    InUse(LastUsed),
}

/// Decides about a key replaced at `replaced_at`, last used `last_used`.
/// Pure.
pub fn decide(replaced_at: OffsetDateTime, last_used: Option<&LastUsed>) -> Kept {
    match last_used {
        Some(used) if used.date >= replaced_at => Kept::InUse(used.clone()),
        _ => Kept::Free,
    }
}

/// How many of the latest rotations are searched for the one that kept a
/// key.
const RECENT: usize = 200;

impl Engine<'_> {
    /// The user's other active key, when a completed rotation kept it and
    /// it has not been used since: its slot may be freed. Refuses when it
    /// has been used since. None when there is no such key.
    pub(super) async fn free_kept_key(
        &self,
        target: &Job,
        (account, user): (&str, &str),
        keys: &[Key],
        old_key: &str,
        iam: &AccountClients,
    ) -> Result<Option<String>, RotateError> {
        let others: Vec<&str> = keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .filter_map(|k| k.access_key_id.as_deref())
            .filter(|id| *id != old_key)
            .collect();
        if others.is_empty() {
            return Ok(None);
        }
        let recent = self.journal(target, self.journal.history(RECENT).await)?;
        for other in others {
            let Some(r) = recent.iter().find(|r| {
                r.account_id == account
                    && r.user_name == user
                    && r.old_key_id == other
                    && r.old_key_action == OldKeyAction::Keep
                    && r.outcome == Some(Outcome::Completed)
            }) else {
                continue;
            };
            let replaced_at = r.finished_at.unwrap_or(r.updated_at);
            let used = crate::inventory::last_used(iam, other)
                .await
                .map_err(self.call(
                    target,
                    format!("reading when {} was last used", mask_key_id(other)),
                ))?;
            return match decide(replaced_at, used.as_ref()) {
                Kept::Free => Ok(Some(other.to_string())),
                Kept::InUse(used) => Err(RotateError::Refused {
                    target: target.label.clone(),
                    source: Refusal::KeptKeyInUse {
                        user: user.to_string(),
                        key: mask_key_id(other),
                        rotation: r.id,
                        service: used.service.unwrap_or_else(|| "an unknown service".into()),
                        region: used.region.unwrap_or_else(|| "an unknown region".into()),
                        date: used.date.date().to_string(),
                    },
                }),
            };
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const REPLACED: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);

    fn used(at: OffsetDateTime) -> LastUsed {
        LastUsed {
            date: at,
            service: Some("s3".into()),
            region: Some("eu-west-1".into()),
        }
    }

    #[test]
    fn a_kept_key_unused_since_it_was_replaced_is_freed() {
        assert_eq!(decide(REPLACED, None), Kept::Free);
        let before = used(datetime!(2026-10-31 23:00 UTC));
        assert_eq!(decide(REPLACED, Some(&before)), Kept::Free);
    }

    #[test]
    fn a_kept_key_used_since_it_was_replaced_is_not() {
        let after = used(datetime!(2026-11-02 08:00 UTC));
        assert_eq!(decide(REPLACED, Some(&after)), Kept::InUse(after.clone()));
        assert_eq!(
            decide(REPLACED, Some(&used(REPLACED))),
            Kept::InUse(used(REPLACED))
        );
    }
}
