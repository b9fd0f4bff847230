//! The library run, one entry point for every front end (the CLI now, the
//! Lambda next): [`run`] first finishes or undoes what earlier runs left
//! unfinished, then rotates each job, several at once, and returns every
//! report and every failure. The caller renders them and picks the exit
//! code.

use futures::StreamExt;

use super::RotateOptions;
use super::engine::{Engine, Job, KeyOutcome, Mode, Prompt, Report, RotateError, Status, Subject};
use super::spec::JobSpec;
use super::user_name_of;
use crate::aws::Deps;
pub use crate::aws::profile_config;
use crate::clock::Clock;
use crate::destination::DestinationSpec;
use crate::journal::{Holder, Journal, Rotation, RotationId};

/// Everything a run needs besides its jobs and journal (STYLE 9).
pub struct RunOptions<'a> {
    pub rotate: &'a RotateOptions,
    pub mode: Mode,
    /// Jobs rotated at once (each user is still rotated by one run at a time).
    pub concurrency: usize,
    pub clock: &'a dyn Clock,
    pub prompt: &'a dyn Prompt,
    pub holder: Holder,
    /// What a resumed rotation's job is opened with (the caller's
    /// configuration, the shared files, the clients): the same as the
    /// jobs', built once.
    pub deps: &'a Deps,
}

/// What a run did.
#[derive(Default)]
pub struct RunReport {
    /// Rotations finished, undone, planned or not due.
    pub reports: Vec<Report>,
    /// What failed, each with what was known of its key.
    pub failures: Vec<Failure>,
    /// Rotations a live run holds the lease of: its work, not a failure
    /// of this run (issue 9 #6).
    pub left_to_live_runs: Vec<RotateError>,
    /// Unfinished rotations a plan left alone (a plan changes nothing).
    pub unfinished: Vec<Rotation>,
}

/// A key, user or rotation the run could not rotate or finish: the error,
/// and what the run knew of it when it stopped, so a report lists every
/// key the run considered (issue 15 #4).
pub struct Failure {
    /// Status refused, undone or failed; the error says why.
    pub report: Report,
    pub error: RotateError,
}

impl Failure {
    /// `error`, of the key `seen` says all that was known of.
    pub fn new(seen: Report, error: RotateError) -> Failure {
        Failure {
            report: Report {
                status: status_of(&error),
                outcome: KeyOutcome::Failed,
                ..seen
            },
            error,
        }
    }
}

/// How a failed rotation ends in the report. Pure.
fn status_of(e: &RotateError) -> Status {
    use crate::destination::DestinationError as D;
    match e {
        RotateError::Undone { .. } => Status::Undone,
        RotateError::Refused { .. } | RotateError::NotTheNamedKey { .. } => Status::Refused,
        RotateError::Destination {
            source: D::HoldsAnotherKey { .. } | D::Refused { .. },
            ..
        } => Status::Refused,
        _ => Status::Failed,
    }
}

/// Finishes or undoes what earlier runs left (DESIGN.md invariant 2), then
/// runs `jobs`.
pub async fn run(jobs: &[Job], journal: &dyn Journal, options: &RunOptions<'_>) -> RunReport {
    let engine = Engine {
        journal,
        clock: options.clock,
        opts: options.rotate,
        prompt: options.prompt,
        holder: options.holder.clone(),
    };
    let mut report = RunReport::default();
    let resumed = finish_unfinished(&engine, options, &mut report).await;
    // Distinct keys belong to distinct users or accounts, and leases guard
    // each user, so they rotate side by side.
    let (engine, resumed) = (&engine, resumed.as_slice());
    let outcomes: Vec<_> = futures::stream::iter(jobs)
        .map(|job| async move {
            let mut seen = Report::of(job);
            match rotate_job(engine, job, options.mode, resumed, &mut seen).await {
                Ok(r) => Ok(r),
                Err(e) => Err(Failure::new(made_key(engine.journal, seen).await, e)),
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            Ok(r) => report.reports.push(r),
            Err(f) => report.failures.push(f),
        }
    }
    report
}

/// `seen` with the key its rotation made, when it got that far (an
/// undone rotation's key is deleted, but its ID is in the journal).
async fn made_key(journal: &dyn Journal, seen: Report) -> Report {
    let Some(id) = seen.rotation_id else {
        return seen;
    };
    match journal.get(id).await {
        Ok(r) => Report {
            new_key_id: r.new_key_id,
            ..seen
        },
        Err(_) => seen,
    }
}

/// A rotation an earlier run left, as this run left it.
#[derive(Debug, Clone)]
struct Resumed {
    id: RotationId,
    account_id: String,
    user_name: String,
    old_key_id: String,
    new_key_id: Option<String>,
    /// Completed; else its resume failed (it may still be unfinished).
    completed: bool,
}

/// Rotates `job`, unless a rotation this run resumed concerns it (the job
/// was built before, issue 7): one that completed and replaced or made the
/// key it names or its first destination holds is reported, not rotated a
/// second time; one whose resume failed leaves the user alone this run.
async fn rotate_job(
    engine: &Engine<'_>,
    job: &Job,
    mode: Mode,
    resumed: &[Resumed],
    seen: &mut Report,
) -> Result<Report, RotateError> {
    if !resumed.is_empty()
        && let Some(first) = job.destinations.first()
    {
        let held = first
            .current_key_id()
            .await
            .map_err(|source| RotateError::Destination {
                target: job.label.clone(),
                what: "cannot read the key",
                source,
            })?;
        if let Some(outcome) = after_resume(job, held.as_deref(), resumed) {
            return outcome;
        }
    }
    engine.rotate_noting(job, mode, seen).await
}

/// What becomes of `job`, whose first destination holds `held`, after
/// this run `resumed` these rotations: None, it is rotated. Pure.
fn after_resume(
    job: &JobSpec,
    held: Option<&str>,
    resumed: &[Resumed],
) -> Option<Result<Report, RotateError>> {
    let named = job.subject.named_key();
    let user = match &job.subject {
        Subject::Known {
            account_id,
            user_arn,
            ..
        }
        | Subject::User {
            account_id,
            user_arn,
        } => user_name_of(user_arn).map(|u| (account_id.as_str(), u)),
        Subject::OfKey => None,
    };
    let r = resumed.iter().find(|r| {
        let keys = [Some(r.old_key_id.as_str()), r.new_key_id.as_deref()];
        let same_user = user == Some((r.account_id.as_str(), r.user_name.as_str()));
        let same_key = |k: Option<&str>| k.is_some() && keys.contains(&k);
        if r.completed {
            r.new_key_id.is_some() && (held == r.new_key_id.as_deref() || same_key(named))
        } else {
            same_user || same_key(held) || same_key(named)
        }
    })?;
    if !r.completed {
        return Some(Err(RotateError::AfterFailedResume {
            target: job.label.clone(),
            id: r.id,
            user: r.user_name.clone(),
        }));
    }
    let new = r.new_key_id.clone().unwrap_or_default();
    Some(Ok(Report {
        target: job.label.clone(),
        status: Status::AlreadyRotated,
        account_id: Some(r.account_id.clone()),
        user_name: Some(r.user_name.clone()),
        outcome: KeyOutcome::FinishedThisRun {
            id: r.id,
            user: r.user_name.clone(),
            account: r.account_id.clone(),
            old_key_id: r.old_key_id.clone(),
            new_key_id: new.clone(),
        },
        old_key_id: Some(r.old_key_id.clone()),
        new_key_id: Some(new),
        rotation_id: Some(r.id),
        plan: None,
        job: Some(job.clone()),
        seen: None,
    }))
}

/// Resumes every rotation the journal holds unfinished, each through the
/// destinations and the access it was begun with; returns what became of
/// each (a plan resumes none).
async fn finish_unfinished(
    engine: &Engine<'_>,
    options: &RunOptions<'_>,
    out: &mut RunReport,
) -> Vec<Resumed> {
    let mut resumed = Vec::new();
    let unfinished = match engine.journal.unfinished().await {
        Ok(u) => u,
        Err(source) => {
            let target = "the rotation journal";
            out.failures.push(Failure::new(
                Report::failed(target, Status::Failed),
                RotateError::Journal {
                    target: target.into(),
                    source: Box::new(source),
                },
            ));
            return resumed;
        }
    };
    for rotation in unfinished {
        if options.mode == Mode::Plan {
            out.unfinished.push(rotation);
            continue;
        }
        match resume_rotation(engine, &rotation, options.deps).await {
            Ok(r) => {
                if r.status == Status::Rotated {
                    resumed.push(Resumed {
                        new_key_id: r.new_key_id.clone(),
                        completed: true,
                        ..failed(&rotation)
                    });
                }
                out.reports.push(r);
            }
            Err(e) if e.is_lease_held() => out.left_to_live_runs.push(e),
            Err(e) => {
                resumed.push(failed(&rotation));
                out.failures.push(Failure::new(report_of(&rotation), e));
            }
        }
    }
    resumed
}

/// Finishes or undoes `rotation`, which an earlier run left: through the
/// job it was begun with (the same road as a fresh job; `resume` reopens
/// the access from the journal).
pub(super) async fn resume_rotation(
    engine: &Engine<'_>,
    rotation: &Rotation,
    deps: &Deps,
) -> Result<Report, RotateError> {
    let job = open_resumed(rotation, deps).await?;
    (engine.resume(rotation, &job).await).map_err(|e| gone_if_keyless(e, rotation, &job))
}

/// The job of a journaled rotation, opened as it was begun.
pub(super) async fn open_resumed(rotation: &Rotation, deps: &Deps) -> Result<Job, RotateError> {
    Job::open(JobSpec::resumed(rotation), deps)
        .await
        .map_err(|source| RotateError::CannotResume {
            id: rotation.id,
            user: rotation.user_name.clone(),
            account_id: rotation.account_id.clone(),
            source,
        })
}

/// What a report says of an unfinished rotation before it is resumed.
pub(super) fn report_of(r: &Rotation) -> Report {
    Report {
        account_id: Some(r.account_id.clone()),
        user_name: Some(r.user_name.clone()),
        old_key_id: Some(r.old_key_id.clone()),
        new_key_id: r.new_key_id.clone(),
        rotation_id: Some(r.id),
        ..Report::failed(&format!("rotation #{}", r.id), Status::Failed)
    }
}

/// A resumed rotation that found no key in its first destination: the
/// file it delivered to (or its profile) is gone, and with it the key IAM
/// is reached with. Said as what it is, a rotation that cannot be resumed,
/// whose remedy is to abandon it — not as a profile holding no key
/// (issue 15 #3).
fn gone_if_keyless(e: RotateError, r: &Rotation, job: &Job) -> RotateError {
    let RotateError::NoKey { .. } = e else {
        return e;
    };
    let what = job.destinations.first().map_or_else(
        || format!("rotation #{}'s destination", r.id),
        |d| d.describe(),
    );
    RotateError::CannotResume {
        id: r.id,
        user: r.user_name.clone(),
        account_id: r.account_id.clone(),
        source: crate::destination::DestinationError::Gone { what },
    }
}

/// The unfinished rotations that delivered to a profile named `profile`
/// of a shared file: when no such profile is found now, its file was
/// likely moved away mid-rotation, and these are what to abandon
/// (issue 15 #3).
pub async fn unfinished_delivered_to(
    journal: &dyn Journal,
    profile: &str,
) -> Result<Vec<Rotation>, crate::journal::JournalError> {
    let unfinished = journal.unfinished().await?;
    Ok(unfinished
        .into_iter()
        .filter(|r| delivers_to(r, profile))
        .collect())
}

/// Whether `r` delivers to a shared-file profile named `profile`. Pure.
fn delivers_to(r: &Rotation, profile: &str) -> bool {
    r.destinations.iter().any(|d| match d {
        DestinationSpec::SharedFile { profiles, .. } => profiles.iter().any(|p| p == profile),
        _ => false,
    })
}

/// `rotation`, whose resume failed.
fn failed(rotation: &Rotation) -> Resumed {
    Resumed {
        id: rotation.id,
        account_id: rotation.account_id.clone(),
        user_name: rotation.user_name.clone(),
        old_key_id: rotation.old_key_id.clone(),
        new_key_id: rotation.new_key_id.clone(),
        completed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::error_chain;

    const OLD: &str = "AKIAOLDOLDOLDOLD0001";
    const NEW: &str = "AKIANEWNEWNEWNEW0002";
    const LATER: &str = "AKIALATERLATERLA0003";
    const ACCOUNT: &str = "111111111111";
    const ARN: &str = "arn:aws:iam::111111111111:user/ci/svc";

    fn job(subject: Subject) -> JobSpec {
        JobSpec::new(
            "user svc in account 111111111111".into(),
            subject,
            super::super::access::Access::Caller,
            vec![],
        )
    }

    fn named(key: &str) -> Subject {
        Subject::Known {
            account_id: ACCOUNT.into(),
            user_arn: ARN.into(),
            old_key_id: key.into(),
        }
    }

    fn user(account: &str) -> Subject {
        Subject::User {
            account_id: account.into(),
            user_arn: ARN.replace(ACCOUNT, account),
        }
    }

    fn resumed(completed: bool) -> Resumed {
        Resumed {
            id: RotationId::numbered(7),
            account_id: ACCOUNT.into(),
            user_name: "svc".into(),
            old_key_id: OLD.into(),
            new_key_id: Some(NEW.into()),
            completed,
        }
    }

    #[test]
    fn a_job_whose_key_a_finished_rotation_replaced_or_made_is_not_rotated_again() {
        let done = [resumed(true)];
        // Built before the resume: named the old key, or (crashed after
        // promote) the new one; a user's or a profile's destination now
        // holding the new key.
        for (subject, held) in [
            (named(OLD), Some(NEW)),
            (named(NEW), Some(NEW)),
            (named(OLD), None),
            (user(ACCOUNT), Some(NEW)),
            (Subject::OfKey, Some(NEW)),
        ] {
            let Some(Ok(r)) = after_resume(&job(subject.clone()), held, &done) else {
                panic!("{subject:?} {held:?}")
            };
            assert_eq!(r.status, Status::AlreadyRotated);
            assert_eq!(r.rotation_id, Some(RotationId::numbered(7)));
            assert_eq!(
                r.outcome,
                KeyOutcome::FinishedThisRun {
                    id: RotationId::numbered(7),
                    user: "svc".into(),
                    account: ACCOUNT.into(),
                    old_key_id: OLD.into(),
                    new_key_id: NEW.into(),
                }
            );
        }
    }

    #[test]
    fn other_keys_and_users_are_rotated() {
        let done = [resumed(true)];
        assert!(after_resume(&job(named(LATER)), Some(LATER), &done).is_none());
        assert!(after_resume(&job(user(ACCOUNT)), Some(LATER), &done).is_none());
        assert!(after_resume(&job(user(ACCOUNT)), None, &done).is_none());
        assert!(after_resume(&job(Subject::OfKey), Some(LATER), &done).is_none());
        assert!(after_resume(&job(Subject::OfKey), Some(OLD), &[]).is_none());
        let failed = [resumed(false)];
        assert!(after_resume(&job(user("222222222222")), Some(LATER), &failed).is_none());
        assert!(after_resume(&job(Subject::OfKey), Some(LATER), &failed).is_none());
    }

    fn rotation(destinations: Vec<DestinationSpec>) -> Rotation {
        use crate::journal::{AccessSpec, OldKeyAction, Phase, Step};
        Rotation {
            id: RotationId::numbered(1),
            account_id: ACCOUNT.into(),
            user_name: "dev".into(),
            user_arn: "arn:aws:iam::111111111111:user/dev".into(),
            old_key_id: OLD.into(),
            new_key_id: Some(NEW.into()),
            keys_before: vec![OLD.into()],
            destinations,
            old_key_action: OldKeyAction::Deactivate,
            access: AccessSpec::OldKey,
            run_id: "r".into(),
            last_step: Step::Verify,
            last_phase: Phase::Begin,
            completed: vec![],
            open: vec![],
            outcome: None,
            error: None,
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
            finished_at: None,
        }
    }

    #[test]
    fn a_missing_profile_is_traced_to_the_rotations_that_delivered_to_it() {
        let file = DestinationSpec::SharedFile {
            file: crate::awsfiles::FileKind::Credentials,
            path: "/h/.aws/credentials".into(),
            profiles: vec!["ci".into(), "dev#1".into()],
        };
        let r = rotation(vec![file]);
        assert!(delivers_to(&r, "dev#1") && delivers_to(&r, "ci"));
        assert!(!delivers_to(&r, "dev"));
        assert!(!delivers_to(&rotation(vec![]), "ci"));
    }

    #[tokio::test]
    async fn a_resumed_rotation_whose_file_holds_no_key_is_one_to_abandon() {
        let file = DestinationSpec::SharedFile {
            file: crate::awsfiles::FileKind::Credentials,
            path: "/gone/credentials".into(),
            profiles: vec!["dev".into()],
        };
        let deps = Deps::new(
            aws_config::SdkConfig::builder().build(),
            crate::aws::AwsOptions::default(),
            None,
        );
        let spec = JobSpec {
            destinations: vec![file],
            ..job(Subject::OfKey)
        };
        let j = Job::open(spec, &deps).await.unwrap();
        let r = rotation(vec![]);
        let no_key = RotateError::NoKey {
            target: "rotation #1".into(),
        };
        let e = gone_if_keyless(no_key, &r, &j);
        assert_eq!(
            e.remedy(),
            Some(super::super::engine::Remedy::Abandon(RotationId::numbered(
                1
            )))
        );
        assert!(
            error_chain(&e).starts_with(
                "rotation #1 of dev in account 111111111111 cannot be resumed: credentials:"
            ),
            "{}",
            error_chain(&e)
        );
        // Any other failure stays what it is.
        let other = RotateError::AfterFailedResume {
            target: "t".into(),
            id: RotationId::numbered(1),
            user: "dev".into(),
        };
        assert!(matches!(
            gone_if_keyless(other, &r, &j),
            RotateError::AfterFailedResume { .. }
        ));
    }

    #[test]
    fn a_failure_reports_what_was_known_with_how_it_ended() {
        let seen = Report {
            account_id: Some(ACCOUNT.into()),
            user_name: Some("svc".into()),
            old_key_id: Some(OLD.into()),
            ..Report::failed("user svc", Status::Planned)
        };
        let undone = RotateError::Undone {
            target: "user svc".into(),
            user: "svc".into(),
            reason: "the new key was not accepted".into(),
        };
        let f = Failure::new(seen.clone(), undone);
        assert_eq!(f.report.status, Status::Undone);
        assert_eq!(f.report.old_key_id.as_deref(), Some(OLD));
        assert_eq!(f.report.outcome, KeyOutcome::Failed);
        assert!(error_chain(&f.error).ends_with("the new key was not accepted"));
        let refused = RotateError::Destination {
            target: "user svc".into(),
            what: "a destination would not take the new key",
            source: crate::destination::DestinationError::HoldsAnotherKey {
                what: "ssm:/ci/svc".into(),
                holds: "holds AKIA…0003".into(),
                rotated: "AKIA…0001".into(),
            },
        };
        assert_eq!(
            Failure::new(seen.clone(), refused).report.status,
            Status::Refused
        );
        let failed = RotateError::NoKey {
            target: "user svc".into(),
        };
        assert_eq!(Failure::new(seen, failed).report.status, Status::Failed);
    }

    #[test]
    fn a_user_whose_resumed_rotation_failed_is_left_alone_this_run() {
        let failed = [resumed(false)];
        for (subject, held) in [
            (user(ACCOUNT), Some(OLD)),
            (user(ACCOUNT), None),
            (named(OLD), Some(OLD)),
            (Subject::OfKey, Some(NEW)),
            (Subject::OfKey, Some(OLD)),
        ] {
            let Some(Err(e)) = after_resume(&job(subject.clone()), held, &failed) else {
                panic!("{subject:?} {held:?}")
            };
            assert_eq!(
                e.remedy(),
                Some(super::super::engine::Remedy::RunAgain),
                "{e}"
            );
        }
    }
}
