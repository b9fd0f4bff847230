//! `rekey schedule print|install|uninstall`: a daily `rekey rotate` job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rekey::awsfiles::Profiles;
use rekey::journal::default_path;
use rekey::policy::parse_days;
use rekey::rotation::targets::resolve;
use rekey::schedule::{
    Job, Scheduler, SystemRunner, apply, choose_env, finds_a_job, home_dir, plan_install,
    plan_uninstall, read_crontab, render_choices, render_print,
};

use crate::GlobalArgs;

#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// print (show what install would write), install or uninstall.
    #[arg(value_name = "ACTION")]
    action: Action,
    /// A block in your crontab (`crontab -`); every other line is kept.
    #[arg(long, group = "scheduler")]
    cron: bool,
    /// A systemd user timer and service in ~/.config/systemd/user.
    #[arg(long, group = "scheduler")]
    systemd: bool,
    /// A launchd agent in ~/Library/LaunchAgents (macOS).
    #[arg(long, group = "scheduler")]
    launchd: bool,
    /// Profiles the job rotates (repeatable).
    #[arg(long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// The job rotates every profile with static keys.
    #[arg(long)]
    all_profiles: bool,
    /// Rotate keys older than this.
    #[arg(long, default_value = "90d", value_name = "DAYS")]
    max_age: String,
    /// Local time of day, HH:MM.
    #[arg(long, default_value = "09:30", value_name = "HH:MM")]
    at: String,
    /// Log file (default: $XDG_STATE_HOME/rekey/rotate.log).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// The journal the job uses: a file, or dynamodb:TABLE (default: the one
    /// `rekey rotate` uses from this shell, $XDG_STATE_HOME/rekey/journal.sqlite3).
    #[arg(long, value_name = "JOURNAL")]
    journal: Option<PathBuf>,
    /// Also freeze this variable of the current environment into the job
    /// (repeatable); needed for AWS_ENDPOINT_URL and AWS_PROFILE.
    #[arg(long = "env", value_name = "NAME")]
    env: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Action {
    Print,
    Install,
    Uninstall,
}

fn parse_at(at: &str) -> anyhow::Result<(u8, u8)> {
    let bad = || anyhow::anyhow!("--at: `{at}` is not a time of day; write HH:MM, e.g. 09:30");
    let (h, m) = at.split_once(':').ok_or_else(bad)?;
    let (h, m): (u8, u8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

pub fn run(args: ScheduleArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let scheduler = match (args.cron, args.systemd, args.launchd) {
        (true, _, _) => Scheduler::Cron,
        (_, true, _) => Scheduler::Systemd,
        (_, _, true) => Scheduler::Launchd,
        _ => anyhow::bail!("say which scheduler: --cron, --systemd or --launchd"),
    };
    let home = home_dir()?;
    let install = match args.action {
        Action::Print | Action::Install => Some(job(&args, global)?),
        Action::Uninstall => None,
    };
    // print shows the crontab install would write, so it reads the current
    // one as install does: one it cannot read is an error, never an empty
    // crontab that pasting would replace everything with (issue 15 #7).
    let crontab = match scheduler {
        Scheduler::Cron => read_crontab(&SystemRunner).context(
            "cannot read your crontab (`crontab -l`), which rekey's block is merged into",
        )?,
        Scheduler::Systemd | Scheduler::Launchd => None,
    };
    let (plan, preamble) = match &install {
        Some((job, preamble)) => (
            plan_install(scheduler, job, &home, crontab.as_deref())?,
            preamble.as_str(),
        ),
        None => (plan_uninstall(scheduler, &home, crontab.as_deref())?, ""),
    };
    let name = scheduler.as_str();
    match args.action {
        Action::Print => print!("{preamble}{}", render_print(&plan)),
        Action::Install => {
            apply(&plan, &SystemRunner)?;
            eprint!("{preamble}");
            eprintln!("rekey: installed the {name} job");
        }
        Action::Uninstall if !finds_a_job(&plan) => {
            eprintln!("rekey: there is no rekey {name} job to remove; nothing changed");
        }
        Action::Uninstall => {
            apply(&plan, &SystemRunner)?;
            eprintln!("rekey: removed the {name} job");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The job that print and install write, checked as `rekey rotate` would
/// check it, and the `#` lines that say what it keeps of this shell.
fn job(args: &ScheduleArgs, global: &GlobalArgs) -> anyhow::Result<(Job, String)> {
    if args.profiles.is_empty() && !args.all_profiles {
        anyhow::bail!("say what the job rotates: --profile NAME (repeatable) or --all-profiles");
    }
    parse_days(&crate::flag(rekey::request::Setting::MaxAge), &args.max_age)?;
    let at = parse_at(&args.at)?;
    let env_var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    // The job reads the files this shell reads (their variables are frozen
    // into it): a profile it could not rotate is refused now, not found
    // by the first night's run (issue 15 #8).
    let profiles = Profiles::load(&env_var)?;
    resolve(&profiles, &args.profiles, args.all_profiles)
        .context("the scheduled job could not rotate what it names")?;
    let mut rotate = vec!["rotate".to_string()];
    for p in &args.profiles {
        rotate.extend(["--profile".to_string(), p.clone()]);
    }
    if args.all_profiles {
        rotate.push("--all-profiles".into());
    }
    rotate.extend(["--max-age".to_string(), args.max_age.clone()]);
    let default_journal = default_path(&env_var);
    // The job names its journal, the one an interactive run from this
    // shell finds: cron and systemd do not set XDG_STATE_HOME, and a
    // rotation begun by one must be finished by the other (issue 10 #9).
    let journal = match &args.journal {
        // A table is the same from anywhere; a file is named absolute.
        Some(j) if j.to_str().is_some_and(|t| t.starts_with("dynamodb:")) => j.clone(),
        Some(j) => std::path::absolute(j)?,
        None => default_journal
            .clone()
            .context("cannot find the journal's place: give --journal")?,
    };
    rotate.extend(["--journal".to_string(), journal.display().to_string()]);
    // Flags given to `schedule` that the job's rotation must have too
    // (issue 15 #8). An endpoint given as a flag is asked for, unlike one
    // inherited from AWS_ENDPOINT_URL (see `choose_env`).
    for (flag, value) in [
        ("--region", &global.region),
        ("--endpoint-url", &global.endpoint_url),
    ] {
        if let Some(v) = value {
            rotate.extend([flag.to_string(), v.clone()]);
        }
    }
    let log = match &args.log {
        Some(l) => std::path::absolute(l)?,
        None => default_journal
            .context("cannot find a place for the log: give --log")?
            .with_file_name("rotate.log"),
    };
    let choices = choose_env(&env_var, &args.env)?;
    let env = choices
        .iter()
        .filter(|c| c.frozen)
        .map(|c| (c.name.clone(), c.value.clone()))
        .collect();
    let job = Job {
        rekey: std::env::current_exe().context("cannot find the rekey binary's path")?,
        args: rotate,
        at,
        log,
        env,
    };
    Ok((job, render_choices(&journal, &choices)))
}
