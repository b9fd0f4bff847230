//! The sentences `rekey rotate` says: what became of each key (the
//! library's [`KeyOutcome`], issue 16) and what `-i` asks. Key IDs are
//! masked (DESIGN.md invariant 6).

use rekey::journal::OldKeyAction;
use rekey::model::mask_key_id;
use rekey::rotation::KeyPlan;
use rekey::rotation::engine::{Done, KeyOutcome, OldKeyEnd, Question, Report};

/// What became of `r`, in one line. A failure's line is its error's
/// (see `render::with_hint`).
pub(super) fn message(r: &Report) -> String {
    match &r.outcome {
        KeyOutcome::Failed => String::new(),
        KeyOutcome::Rotated {
            done,
            freed,
            orphans,
        } => {
            let mut s = done_line(done);
            if let Some(slot) = freed {
                s.push_str(&format!(
                    "; deleted the {} key {} first to free a slot",
                    slot.status.as_str().to_lowercase(),
                    mask_key_id(&slot.key_id)
                ));
            }
            for orphan in orphans {
                s.push_str(&format!(
                    "; deleted {} first, a key an earlier interrupted run made whose secret nobody holds",
                    mask_key_id(orphan)
                ));
            }
            s
        }
        KeyOutcome::Resumed { id, done } => format!(
            "finished rotation #{id} left by an earlier run: {}",
            done_line(done)
        ),
        KeyOutcome::UndidLeft { id, why } => format!(
            "undid rotation #{id} that an earlier run left unfinished: {}",
            why.as_str()
        ),
        KeyOutcome::NotDue {
            key_id,
            age_days,
            max_age_days,
        } => format!(
            "key {} is {age_days} days old; not due (max age {max_age_days} days)",
            mask_key_id(key_id)
        ),
        KeyOutcome::Exempt { why } => format!("exempt ({why}); not rotated"),
        KeyOutcome::Planned { writes_to } => match &r.plan {
            Some(plan) => describe_plan(plan, writes_to),
            None => format!("rotate, writing the new key to {writes_to}"),
        },
        KeyOutcome::Declined => "declined; nothing changed".into(),
        KeyOutcome::AlreadyReplaced {
            id,
            old_key_id,
            new_key_id,
        } => format!(
            "rotation #{id} already replaced {} with {}",
            mask_key_id(old_key_id),
            mask_key_id(new_key_id)
        ),
        KeyOutcome::FinishedThisRun {
            id,
            user,
            account,
            old_key_id,
            new_key_id,
        } => format!(
            "finished rotation #{id} of {user} in account {account} ({} → {}); not rotated again",
            mask_key_id(old_key_id),
            mask_key_id(new_key_id)
        ),
        KeyOutcome::Abandoned {
            id,
            user,
            old_key_id,
        } => format!(
            "abandoned rotation #{id} of {user}: deleted the keys it made; the old key {} was not touched",
            mask_key_id(old_key_id)
        ),
    }
}

/// `rotated dev: AKIA…0001 → AKIA…0002; old key AKIA…0001 deactivated`.
fn done_line(done: &Done) -> String {
    let (user, old, new, end) = match done {
        Done::AlreadyEnded { id } => return format!("rotation #{id} had already ended"),
        Done::Rotated {
            user,
            old_key_id,
            new_key_id,
            old_key,
        } => (
            user,
            mask_key_id(old_key_id),
            mask_key_id(new_key_id),
            old_key,
        ),
    };
    let note = match end {
        OldKeyEnd::Untouched => String::new(),
        OldKeyEnd::Retired(action) => format!("; old key {old} {}", retired(*action)),
        OldKeyEnd::LeftActive => format!("; old key {old} left active at your request"),
        OldKeyEnd::Kept => {
            format!("; old key {old} kept active for consumers that re-read on their own schedule")
        }
    };
    format!("rotated {user}: {old} → {new}{note}")
}

fn retired(action: OldKeyAction) -> &'static str {
    match action {
        OldKeyAction::Deactivate => "deactivated",
        OldKeyAction::Delete => "deleted",
        OldKeyAction::Keep => "kept active",
    }
}

/// One line saying what a plan will do.
pub(super) fn describe_plan(plan: &KeyPlan, writes_to: &str) -> String {
    let mut s = format!(
        "rotate {} of user {} in account {}{}",
        mask_key_id(&plan.old_key_id),
        plan.user_name,
        plan.account_id,
        plan.old_key_age_days
            .map(|d| format!(" ({d} days old)"))
            .unwrap_or_default()
    );
    if let Some(slot) = &plan.free_slot {
        s.push_str(&format!(
            ", first deleting the {} key {} to free a slot",
            slot.status.as_str().to_lowercase(),
            mask_key_id(&slot.key_id)
        ));
    }
    s.push_str(&format!(
        ", write the new key to {writes_to}, verify it, then {} the old key",
        plan.old_key_action.as_str()
    ));
    s
}

/// What `-i` asks before a step.
pub(super) fn question(q: &Question) -> String {
    match q {
        Question::Rotate { plan, writes_to } => {
            format!("{}. Go ahead?", describe_plan(plan, writes_to))
        }
        Question::Retire {
            new_key_id,
            old_key_id,
            action,
        } => format!(
            "The new key {} works. {} the old key {}?",
            mask_key_id(new_key_id),
            capitalize(action.as_str()),
            mask_key_id(old_key_id)
        ),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
