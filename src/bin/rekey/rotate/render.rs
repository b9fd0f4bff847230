//! What `rekey rotate` prints: one line per key (text) or every key, user
//! and rotation the run considered (`-o json`, issue 15 #4) on stdout;
//! errors on stderr, each with the flag or command to try.

use rekey::error::error_chain;
use rekey::request::rotate::{JobError, RequestError, RotateOutcome, RunOutcome};
use rekey::rotation::engine::{Remedy, Report, Status, remedy_of};
use rekey::rotation::service::ServiceError;
use rekey::rotation::{Failure, KeyPlan, RunReport};
use serde::Serialize;

use super::OutputFormat;
use super::words::message;

/// What `rekey rotate` without something to rotate says.
const MODES: &str = "say what to rotate: --profile NAME (repeatable) or --all-profiles for keys in the shared credentials file; --account ID --user NAME --to DESTINATION for one service user's key; or --service for every bound service user (see rekey rotate --help)";

/// A request that cannot be carried out, as the CLI says it: with the
/// flags and commands to type.
pub(super) fn request_error(e: RequestError) -> anyhow::Error {
    match e {
        // Their chains are printed as they are.
        RequestError::Input(_) | RequestError::Journal(_) => e.into(),
        e => anyhow::anyhow!(request_line(&e)),
    }
}

fn request_line(e: &RequestError) -> String {
    match e {
        RequestError::NothingToRotate => MODES.to_string(),
        RequestError::Target { error, unfinished } => {
            let mut line = error.to_string();
            for r in unfinished {
                line.push_str(&format!(
                    "; rotation #{} of {} in account {} delivered a new key to profile {} and is unfinished: put its file back and run again, or if the file is gone for good, `rekey rotate --abandon {}` deletes the key it made and closes it",
                    r.id, r.user, r.account, r.profile, r.id
                ));
            }
            line
        }
        other => error_chain(other),
    }
}

/// The error chain, then the flag or command to try: the library says what
/// is wrong, the CLI says what to type.
pub(super) fn with_hint(e: &(dyn std::error::Error + 'static)) -> String {
    let remedy = if let Some(e) = e.downcast_ref::<JobError>() {
        e.remedy()
    } else if let Some(e) = e.downcast_ref::<ServiceError>() {
        e.remedy()
    } else {
        remedy_of(e)
    };
    let hint = match remedy {
        Some(Remedy::AllowDeletingOtherActiveKey) => {
            "; pass --delete-other-active to let rekey delete it".to_string()
        }
        Some(Remedy::RunAgain) => "; run `rekey rotate` again to finish".to_string(),
        Some(Remedy::Abandon(id)) => format!(
            "; if its destination is truly gone, `rekey rotate --abandon {id}` deletes the key it made and closes it"
        ),
        Some(Remedy::Role) => {
            "; pass --role NAME_OR_ARN (a role in the user's account that may manage its keys, e.g. OrganizationAccountAccessRole) to reach it".to_string()
        }
        Some(Remedy::SecretRole) => {
            "; pass --secret-role ROLE (a role in the secret's account that may read and write it; secret_role in rekey.toml) to reach it there".to_string()
        }
        None => String::new(),
    };
    format!("{}{hint}", error_chain(e))
}

/// The outcome of a run or an abandon that went through: errors on
/// stderr, the report on stdout — for a dry run with `-o json`, the plan
/// (`rekey.plan/1`, README "A dry run's plan").
pub(super) fn print(outcome: &RotateOutcome, format: OutputFormat, dry_run: bool) {
    let o = match outcome {
        RotateOutcome::Ran(o) => o,
        RotateOutcome::Abandoned { result, .. } => {
            if let Ok(report) = result {
                print_reports(std::slice::from_ref(report), format);
            }
            return;
        }
    };
    let done = &o.run;
    for n in &o.not_started {
        eprintln!("rekey: error: {}", with_hint(&n.error));
    }
    for r in &done.unfinished {
        eprintln!(
            "rekey: rotation #{} of {} in account {} is unfinished; run without --dry-run to finish it",
            r.id, r.user_name, r.account_id
        );
    }
    for e in &done.left_to_live_runs {
        tracing::info!("left to the run working on it: {}", error_chain(e));
    }
    for f in &done.failures {
        eprintln!("rekey: error: {}", with_hint(&f.error));
    }
    match format {
        OutputFormat::Json if dry_run => {
            let plan = o.plan(|e| with_hint(e));
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).expect("a plan serializes")
            );
        }
        OutputFormat::Json => print_json(&every_key(o)),
        OutputFormat::Text => print_reports(&done.reports, format),
    }
    if let Some(n) = o.none_bound_in {
        let line = format!(
            "no bound service users in {n} account{}",
            if n == 1 { "" } else { "s" }
        );
        match format {
            OutputFormat::Json => eprintln!("rekey: {line}"),
            OutputFormat::Text => println!("{line}"),
        }
    }
}

/// One key, user or rotation as `-o json` lists it: the report's facts
/// and what became of it, in words.
#[derive(Serialize)]
pub(super) struct Row {
    target: String,
    status: Status,
    account_id: Option<String>,
    user_name: Option<String>,
    old_key_id: Option<String>,
    new_key_id: Option<String>,
    rotation_id: Option<rekey::journal::RotationId>,
    plan: Option<KeyPlan>,
    message: String,
}

impl Row {
    fn of(r: &Report, message: String) -> Row {
        Row {
            target: r.target.clone(),
            status: r.status,
            account_id: r.account_id.clone(),
            user_name: r.user_name.clone(),
            old_key_id: r.old_key_id.clone(),
            new_key_id: r.new_key_id.clone(),
            rotation_id: r.rotation_id,
            plan: r.plan.clone(),
            message,
        }
    }
}

/// Every key, user and rotation the run considered, for `-o json` (issue
/// 15 #4): unfinished rotations a dry run left alone, what went through,
/// then what got no job, then what failed — each with its status and why.
fn every_key(o: &RunOutcome) -> Vec<Row> {
    let done: &RunReport = &o.run;
    let unfinished = done.unfinished.iter().map(|r| Row {
        target: format!("rotation #{}", r.id),
        status: Status::Planned,
        account_id: Some(r.account_id.clone()),
        user_name: Some(r.user_name.clone()),
        old_key_id: Some(r.old_key_id.clone()),
        new_key_id: r.new_key_id.clone(),
        rotation_id: Some(r.id),
        plan: None,
        message: format!(
            "rotation #{} of {} in account {} is unfinished; a run without --dry-run finishes or undoes it first",
            r.id, r.user_name, r.account_id
        ),
    });
    let reports = done.reports.iter().map(|r| Row::of(r, message(r)));
    let not_started = o
        .not_started
        .iter()
        .map(|n| Row::of(&n.report, with_hint(&n.error)));
    unfinished
        .chain(reports)
        .chain(not_started)
        .chain(done.failures.iter().map(failed_row))
        .collect()
}

/// A failure as the report shows it: what was known, and the error with
/// what to do about it.
pub(super) fn failed_row(f: &Failure) -> Row {
    Row::of(&f.report, with_hint(&f.error))
}

pub(super) fn print_json(rows: &[Row]) {
    println!(
        "{}",
        serde_json::to_string_pretty(rows).expect("rows serialize")
    );
}

fn print_reports(reports: &[Report], format: OutputFormat) {
    match format {
        OutputFormat::Json => {
            let rows: Vec<Row> = reports.iter().map(|r| Row::of(r, message(r))).collect();
            print_json(&rows);
        }
        OutputFormat::Text => {
            for r in reports {
                let tag = match r.status {
                    Status::Rotated => "rotated",
                    Status::NotDue => "not due",
                    Status::Exempt => "exempt",
                    Status::AlreadyRotated => "already rotated",
                    Status::Planned => "would",
                    Status::Declined => "declined",
                    Status::Undone => "undone",
                    Status::Refused => "refused",
                    Status::Failed => "failed",
                };
                println!("{}: [{tag}] {}", r.target, message(r));
            }
        }
    }
}
