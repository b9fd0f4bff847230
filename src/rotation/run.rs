//! The library run, one entry point for every front end (the CLI now, the
//! Lambda next): [`run`] first finishes or undoes what earlier runs left
//! unfinished, then rotates each job, several at once, and returns every
//! report and every failure. The caller renders them and picks the exit
//! code.

use aws_config::{Region, SdkConfig};
use futures::StreamExt;

use super::RotateOptions;
use super::engine::{Engine, Job, Mode, Prompt, Report, RotateError, Status, Subject};
use super::recovery::destinations_of;
use crate::aws::AwsOptions;
use crate::awsfiles::Profiles;
use crate::clock::Clock;
use crate::destination::DestinationSpec;
use crate::journal::{Holder, Journal, Rotation};
use crate::model::mask_key_id;

/// Everything a run needs besides its jobs and journal (STYLE 9).
pub struct RunOptions<'a> {
    pub rotate: &'a RotateOptions,
    pub mode: Mode,
    /// Jobs rotated at once (each user is still rotated by one run at a time).
    pub concurrency: usize,
    pub clock: &'a dyn Clock,
    pub prompt: &'a dyn Prompt,
    pub holder: Holder,
    /// The caller's own configuration: region and endpoint, and the
    /// credentials roles are assumed with.
    pub caller: &'a SdkConfig,
    /// The shared files, for the region and endpoint of a resumed
    /// rotation's profile.
    pub profiles: Option<&'a Profiles>,
    pub aws: &'a AwsOptions,
}

/// What a run did.
#[derive(Default)]
pub struct RunReport {
    /// Rotations finished, undone, planned or not due.
    pub reports: Vec<Report>,
    /// What failed, with its error chain.
    pub failures: Vec<RotateError>,
    /// Rotations a live run holds the lease of: its work, not a failure
    /// of this run (issue 9 #6).
    pub left_to_live_runs: Vec<RotateError>,
    /// Unfinished rotations a plan left alone (a plan changes nothing).
    pub unfinished: Vec<Rotation>,
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
        caller: options.caller,
    };
    let mut report = RunReport::default();
    finish_unfinished(&engine, options, &mut report).await;
    // The jobs were built before those rotations were finished: one naming
    // a key they replaced or made is reported, not rotated again (issue 7).
    let finished: Vec<Report> = report
        .reports
        .iter()
        .filter(|r| r.status == Status::Rotated)
        .cloned()
        .collect();
    // Distinct keys belong to distinct users or accounts, and leases guard
    // each user, so they rotate side by side.
    let (engine, finished) = (&engine, finished.as_slice());
    let outcomes: Vec<_> = futures::stream::iter(jobs)
        .map(|job| rotate_job(engine, job, options.mode, finished))
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            Ok(r) => report.reports.push(r),
            Err(e) => report.failures.push(e),
        }
    }
    report
}

/// Rotates `job`, unless a rotation this run `finished` replaced or made
/// the key it names or its first destination holds.
async fn rotate_job(
    engine: &Engine<'_>,
    job: &Job,
    mode: Mode,
    finished: &[Report],
) -> Result<Report, RotateError> {
    if !finished.is_empty()
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
        if let Some(report) = finished_here(job, held.as_deref(), finished) {
            return Ok(report);
        }
    }
    engine.rotate(job, mode).await
}

/// The report for a job whose key a rotation in `finished` replaced or
/// made: the first destination holds that rotation's new key (`held`), or
/// the job names its old key or its new one. Pure.
fn finished_here(job: &Job, held: Option<&str>, finished: &[Report]) -> Option<Report> {
    let named = job.subject.named_key();
    let r = finished.iter().find(|r| {
        let (old, new) = (r.old_key_id.as_deref(), r.new_key_id.as_deref());
        r.status == Status::Rotated
            && new.is_some()
            && (new == held || named.is_some_and(|n| Some(n) == old || Some(n) == new))
    })?;
    let old = r.old_key_id.clone().unwrap_or_default();
    let new = r.new_key_id.clone().unwrap_or_default();
    Some(Report {
        target: job.label.clone(),
        status: Status::AlreadyRotated,
        account_id: r.account_id.clone(),
        user_name: r.user_name.clone(),
        message: format!(
            "finished rotation #{} of {} in account {} ({} → {}); not rotated again",
            r.rotation_id.unwrap_or_default(),
            r.user_name.as_deref().unwrap_or("?"),
            r.account_id.as_deref().unwrap_or("?"),
            mask_key_id(&old),
            mask_key_id(&new)
        ),
        old_key_id: Some(old),
        new_key_id: Some(new),
        rotation_id: r.rotation_id,
        plan: None,
    })
}

/// Resumes every rotation the journal holds unfinished, each through the
/// destinations and the access it was begun with.
async fn finish_unfinished(engine: &Engine<'_>, options: &RunOptions<'_>, out: &mut RunReport) {
    let unfinished = match engine.journal.unfinished().await {
        Ok(u) => u,
        Err(source) => {
            out.failures.push(RotateError::Journal {
                target: "the rotation journal".into(),
                source: Box::new(source),
            });
            return;
        }
    };
    for rotation in unfinished {
        if options.mode == Mode::Plan {
            out.unfinished.push(rotation);
            continue;
        }
        let config = match options.profiles {
            Some(profiles) => profile_config(
                options.caller,
                profiles,
                first_profile(&rotation),
                options.aws,
            ),
            None => options.caller.clone(),
        };
        let destinations = match destinations_of(&rotation, &config) {
            Ok(d) => d,
            Err(source) => {
                out.failures.push(RotateError::CannotResume {
                    id: rotation.id,
                    user: rotation.user_name.clone(),
                    account_id: rotation.account_id.clone(),
                    source,
                });
                continue;
            }
        };
        // The access is reopened from the journal by `resume`.
        let job = Job::new(
            Subject::Known {
                account_id: rotation.account_id.clone(),
                user_arn: rotation.user_arn.clone(),
                old_key_id: rotation.old_key_id.clone(),
            },
            super::access::Access::OldKey,
            destinations,
            config,
            format!("rotation #{}", rotation.id),
        );
        match engine.resume(&rotation, &job).await {
            Ok(r) => out.reports.push(r),
            Err(e) if e.is_lease_held() => out.left_to_live_runs.push(e),
            Err(e) => out.failures.push(e),
        }
    }
}

/// `base` with the region and endpoint of `profile`, unless a flag or the
/// environment already chose them.
pub fn profile_config(
    base: &SdkConfig,
    profiles: &Profiles,
    profile: Option<&str>,
    aws: &AwsOptions,
) -> SdkConfig {
    let Some(p) = profile.and_then(|name| profiles.get(name)) else {
        return base.clone();
    };
    let mut config = base.to_builder();
    let chosen =
        |flag: &Option<String>, env: &str| flag.is_some() || std::env::var_os(env).is_some();
    if !chosen(&aws.endpoint_url, "AWS_ENDPOINT_URL")
        && let Some(url) = p.endpoint_url()
    {
        config = config.endpoint_url(url);
    }
    if !chosen(&aws.region, "AWS_REGION")
        && let Some(region) = p.region()
    {
        config = config.region(Region::new(region.to_string()));
    }
    config.build()
}

/// The first shared-file profile a rotation delivers to: its region and
/// endpoint are the rotation's.
fn first_profile(r: &Rotation) -> Option<&str> {
    r.destinations.iter().find_map(|d| match d {
        DestinationSpec::SharedFile { profiles, .. } => profiles.first().map(String::as_str),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "AKIAOLDOLDOLDOLD0001";
    const NEW: &str = "AKIANEWNEWNEWNEW0002";
    const LATER: &str = "AKIALATERLATERLA0003";

    fn job(subject: Subject) -> Job {
        Job::new(
            subject,
            super::super::access::Access::Caller,
            vec![],
            SdkConfig::builder().build(),
            "user svc in account 111111111111".into(),
        )
    }

    fn named(key: &str) -> Subject {
        Subject::Known {
            account_id: "111111111111".into(),
            user_arn: "arn:aws:iam::111111111111:user/svc".into(),
            old_key_id: key.into(),
        }
    }

    fn finished(status: Status) -> Report {
        Report {
            target: "rotation #7".into(),
            status,
            account_id: Some("111111111111".into()),
            user_name: Some("svc".into()),
            old_key_id: Some(OLD.into()),
            new_key_id: Some(NEW.into()),
            rotation_id: Some(7),
            plan: None,
            message: String::new(),
        }
    }

    #[test]
    fn a_job_naming_a_key_a_finished_rotation_replaced_or_made_is_not_rotated_again() {
        let done = [finished(Status::Rotated)];
        // Built before the resume: named the old key, or (crashed after
        // promote) the new one; or a profile now holding the new key.
        for (subject, held) in [
            (named(OLD), Some(NEW)),
            (named(NEW), Some(NEW)),
            (named(OLD), None),
            (Subject::OfKey, Some(NEW)),
        ] {
            let r = finished_here(&job(subject.clone()), held, &done)
                .unwrap_or_else(|| panic!("{subject:?} {held:?}"));
            assert_eq!(r.status, Status::AlreadyRotated);
            assert_eq!(r.rotation_id, Some(7));
            assert_eq!(
                r.message,
                "finished rotation #7 of svc in account 111111111111 (AKIA…0001 → AKIA…0002); not rotated again"
            );
        }
    }

    #[test]
    fn other_keys_and_undone_rotations_are_rotated() {
        let done = [finished(Status::Rotated)];
        assert!(finished_here(&job(named(LATER)), Some(LATER), &done).is_none());
        assert!(finished_here(&job(Subject::OfKey), Some(LATER), &done).is_none());
        assert!(finished_here(&job(Subject::OfKey), None, &done).is_none());
        let undone = [finished(Status::Undone)];
        assert!(finished_here(&job(named(OLD)), Some(OLD), &undone).is_none());
        assert!(finished_here(&job(Subject::OfKey), Some(OLD), &[]).is_none());
    }
}
