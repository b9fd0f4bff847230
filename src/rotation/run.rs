//! The library run, one entry point for every front end (the CLI now, the
//! Lambda next): [`run`] first finishes or undoes what earlier runs left
//! unfinished, then rotates each job, several at once, and returns every
//! report and every failure. The caller renders them and picks the exit
//! code.

use aws_config::{Region, SdkConfig};
use futures::StreamExt;

use super::RotateOptions;
use super::engine::{Engine, Job, Mode, Prompt, Report, RotateError, Subject};
use super::recovery::destinations_of;
use crate::aws::AwsOptions;
use crate::awsfiles::Profiles;
use crate::clock::Clock;
use crate::destination::DestinationSpec;
use crate::journal::{Holder, Journal, Rotation};

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
    // Distinct keys belong to distinct users or accounts, and leases guard
    // each user, so they rotate side by side.
    let engine = &engine;
    let outcomes: Vec<_> = futures::stream::iter(jobs)
        .map(|job| engine.rotate(job, options.mode))
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
        let config = super::recovery::resume_config(&rotation, config, options.aws).await;
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
