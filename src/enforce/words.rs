//! The plan and its results in words, for people: one row per action —
//! what, which key, why (the facts it was decided from) and when the next
//! stage falls due — as a table or Markdown. Key IDs masked; machine
//! formats (JSON) carry them whole.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::lifecycle::{DeactivateWhy, Due};
use super::run::{ActionResult, EnforceOutcome, Stop};
use crate::model::mask_key_id;
use crate::rotation::plan::{Action, SkipReason};

/// One row of the plan.
pub struct Row {
    pub action: String,
    pub target: String,
    pub why: String,
    pub next: String,
}

fn day(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .map_or_else(|_| String::new(), |s| s[..10].to_string())
}

fn when(t: &Option<OffsetDateTime>) -> String {
    t.map(day).unwrap_or_else(|| "—".into())
}

/// What a due says, in words.
pub fn due_words(d: &Due) -> String {
    match d {
        Due::Nothing { .. } => "nothing due".into(),
        Due::Warn { at } => format!("reaches its stage on {}", day(*at)),
        Due::Rotate { age_days } => format!("{age_days} days old: rotate into its destinations"),
        Due::Retire { replaced_at } => {
            format!("replaced on {}, unused since: retire", day(*replaced_at))
        }
        Due::StillInUse { last_used, .. } => format!(
            "replaced, but used on {} ({} in {})",
            day(last_used.date),
            last_used.service.as_deref().unwrap_or("?"),
            last_used.region.as_deref().unwrap_or("?")
        ),
        Due::Deactivate { why } => match why {
            DeactivateWhy::Stale { age_days } => {
                format!("{age_days} days old, no destination: deactivate")
            }
            DeactivateWhy::Unused { idle_days } => {
                format!("unused for {idle_days} days: deactivate")
            }
            DeactivateWhy::GraceOver { last_used } => format!(
                "still used on {} after its grace: deactivate",
                day(last_used.date)
            ),
        },
        Due::Delete { deactivated_at } => format!(
            "deactivated by rekey on {}, unused since: delete",
            day(*deactivated_at)
        ),
    }
}

/// The plan's rows.
pub fn rows(actions: &[Action]) -> Vec<Row> {
    actions.iter().map(row).collect()
}

fn row(a: &Action) -> Row {
    if let Some(k) = a.key_action() {
        let next = match &k.due {
            Due::Warn { at } => day(*at),
            Due::StillInUse { until, .. } => day(*until),
            _ => "now".into(),
        };
        let mut why = match a {
            Action::Settle(_) => format!(
                "a {} a dead run began: recorded as IAM shows it",
                k.recorded.open.map_or("step", |o| o.as_str())
            ),
            _ => due_words(&k.due),
        };
        if let Some(e) = &k.lapsed {
            why.push_str(&format!(" (exemption {} expired)", e.by));
        }
        return Row {
            action: a.name().into(),
            target: k.label.clone(),
            why,
            next,
        };
    }
    match a {
        Action::Rotate { job, plan, .. } => Row {
            action: "rotate".into(),
            target: format!("{} ({})", job.label, mask_key_id(&plan.old_key_id)),
            why: format!(
                "{} days old: rotate, old key {}",
                plan.old_key_age_days.unwrap_or_default(),
                plan.old_key_action
            ),
            next: "now".into(),
        },
        Action::FreeSlot {
            job, key_id, why, ..
        } => Row {
            action: "free_slot".into(),
            target: format!("{} ({})", job.label, mask_key_id(key_id)),
            why: format!("{why:?} key deleted first to make room").to_lowercase(),
            next: "now".into(),
        },
        Action::Resume {
            rotation_id,
            unfinished,
        }
        | Action::Undo {
            rotation_id,
            unfinished,
            ..
        } => Row {
            action: a.name().into(),
            target: format!("rotation #{rotation_id} of user {}", unfinished.user_name),
            why: format!("left at {} {}", unfinished.last_step, unfinished.last_phase),
            next: "now".into(),
        },
        Action::Skip { target, reason, .. } => {
            let (why, next) = match reason {
                SkipReason::Waiting { next, .. } => ("nothing due".to_string(), when(next)),
                SkipReason::Warned { at, .. } => ("warned already".into(), day(*at)),
                SkipReason::InUseReported {
                    last_used, until, ..
                } => (
                    format!("still used on {}, reported", day(last_used.date)),
                    day(*until),
                ),
                SkipReason::Exempt { why } => (format!("exempt: {why}"), "—".into()),
                SkipReason::NotDue {
                    age_days,
                    max_age_days,
                    ..
                } => (format!("{age_days} of {max_age_days} days"), "—".into()),
                SkipReason::AlreadyRotated { .. } => ("already rotated".into(), "—".into()),
                SkipReason::Refused { why } => (format!("refused: {why}"), "—".into()),
                SkipReason::Failed { why } => (format!("failed: {why}"), "—".into()),
            };
            Row {
                action: "skip".into(),
                target: target.clone(),
                why: crate::model::mask_key_ids_in(&why),
                next,
            }
        }
        _ => Row {
            action: a.name().into(),
            target: String::new(),
            why: String::new(),
            next: String::new(),
        },
    }
}

/// The outcome as a table (or Markdown, `markdown`): the plan's rows,
/// then, applied, each result, then the counts.
pub fn render(outcome: &EnforceOutcome, markdown: bool) -> String {
    let mut out = String::new();
    let plan_rows: Vec<[String; 4]> = rows(&outcome.plan.actions)
        .into_iter()
        .map(|r| [r.action, r.target, r.why, r.next])
        .collect();
    out.push_str(&table(
        &["ACTION", "KEY", "WHY", "NEXT"],
        &plan_rows,
        markdown,
    ));
    for f in &outcome.plan.findings {
        out.push_str(&format!(
            "finding: {} of user {} in account {}: {}\n",
            f.finding, f.user_name, f.account_id, f.detail
        ));
    }
    if outcome.applied {
        out.push('\n');
        let result_rows: Vec<[String; 4]> = (outcome.results.iter())
            .map(|r| {
                [
                    r.action.to_string(),
                    r.target.clone(),
                    format!("{:?}", r.result).to_lowercase(),
                    crate::model::mask_key_ids_in(r.error.as_deref().unwrap_or("")),
                ]
            })
            .collect();
        out.push_str(&table(
            &["ACTION", "KEY", "RESULT", "WHY"],
            &result_rows,
            markdown,
        ));
    }
    out.push_str(&summary(outcome));
    if let Some(n) = &outcome.notifications {
        out.push_str(&crate::notify::words::summary(n));
    }
    out
}

/// One line: how many actions the plan has, and what became of them.
pub fn summary(outcome: &EnforceOutcome) -> String {
    let due = (outcome.plan.actions.iter())
        .filter(|a| !matches!(a, Action::Skip { .. } | Action::FreeSlot { .. }))
        .count();
    let mut line = format!("{due} action(s) due");
    if outcome.applied {
        let count = |f: fn(&ActionResult) -> bool| outcome.results.iter().filter(|r| f(r)).count();
        use super::run::Result_::*;
        line.push_str(&format!(
            "; done {}, already done {}, failed {}, refused {}, not run {}",
            count(|r| r.result == Done),
            count(|r| r.result == AlreadyDone),
            count(|r| r.result == Failed),
            count(|r| r.result == Refused),
            count(|r| r.result == NotRun),
        ));
    }
    match &outcome.stopped {
        Some(Stop::FailureRate {
            failed,
            carried_out,
        }) => line.push_str(&format!(
            "; stopped: {failed} of {carried_out} actions failed (--max-failure-rate)"
        )),
        Some(Stop::Canary { failed }) => line.push_str(&format!(
            "; stopped: {failed} canary action(s) did not succeed, the rest wait"
        )),
        Some(Stop::Deadline) => {
            line.push_str("; stopped: the deadline came, the rest is due on the next run")
        }
        None => {}
    }
    line.push('\n');
    line
}

fn table(header: &[&str; 4], rows: &[[String; 4]], markdown: bool) -> String {
    if markdown {
        let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut out = format!("| {} |\n|---|---|---|---|\n", header.join(" | "));
        for r in rows {
            let cells: Vec<String> = r.iter().map(|c| esc(c)).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        return out;
    }
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    for r in rows {
        t.add_row(r.to_vec());
    }
    format!("{t}\n")
}
