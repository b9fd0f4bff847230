//! `rekey schedule print|install|uninstall`: a daily `rekey rotate` job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rekey::journal::default_path;
use rekey::policy::parse_days;
use rekey::schedule::{
    Job, Scheduler, SystemRunner, apply, choose_env, home_dir, plan_install, plan_uninstall,
    read_crontab, render_choices, render_print,
};

#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// print (show what install would write), install or uninstall.
    #[arg(value_name = "ACTION")]
    action: Action,
    #[arg(long, group = "scheduler")]
    cron: bool,
    #[arg(long, group = "scheduler")]
    systemd: bool,
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
    /// The journal the job uses (default: the one `rekey rotate` uses from
    /// this shell, $XDG_STATE_HOME/rekey/journal.sqlite3).
    #[arg(long, value_name = "PATH")]
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

pub fn run(args: ScheduleArgs) -> anyhow::Result<ExitCode> {
    let scheduler = match (args.cron, args.systemd, args.launchd) {
        (true, _, _) => Scheduler::Cron,
        (_, true, _) => Scheduler::Systemd,
        (_, _, true) => Scheduler::Launchd,
        _ => anyhow::bail!("say which scheduler: --cron, --systemd or --launchd"),
    };
    let home = home_dir()?;
    let crontab = if scheduler == Scheduler::Cron && args.action != Action::Print {
        read_crontab(&SystemRunner)?
    } else if scheduler == Scheduler::Cron {
        // print shows what install would do to the current crontab; no
        // crontab command (or none installed) reads as empty.
        read_crontab(&SystemRunner).ok().flatten()
    } else {
        None
    };
    let mut preamble = String::new();
    let plan = match args.action {
        Action::Uninstall => plan_uninstall(scheduler, &home, crontab.as_deref())?,
        Action::Print | Action::Install => {
            if args.profiles.is_empty() && !args.all_profiles {
                anyhow::bail!(
                    "say what the job rotates: --profile NAME (repeatable) or --all-profiles"
                );
            }
            parse_days("max-age", &args.max_age)?;
            let mut rotate = vec!["rotate".to_string()];
            for p in &args.profiles {
                rotate.extend(["--profile".to_string(), p.clone()]);
            }
            if args.all_profiles {
                rotate.push("--all-profiles".into());
            }
            rotate.extend(["--max-age".to_string(), args.max_age.clone()]);
            let env_var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let default_journal = default_path(&env_var);
            // The job names its journal, the one an interactive run from
            // this shell finds: cron and systemd do not set XDG_STATE_HOME,
            // and a rotation begun by one must be finished by the other
            // (issue 10 #9).
            let journal = match &args.journal {
                Some(j) => std::path::absolute(j)?,
                None => default_journal
                    .clone()
                    .context("cannot find the journal's place: give --journal")?,
            };
            rotate.extend(["--journal".to_string(), journal.display().to_string()]);
            let log = match args.log {
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
                at: parse_at(&args.at)?,
                log,
                env,
            };
            preamble = render_choices(&journal, &choices);
            plan_install(scheduler, &job, &home, crontab.as_deref())?
        }
    };
    match args.action {
        Action::Print => print!("{preamble}{}", render_print(&plan)),
        Action::Install | Action::Uninstall => {
            apply(&plan, &SystemRunner)?;
            eprint!("{preamble}");
            eprintln!(
                "rekey: {} {} job",
                if args.action == Action::Install {
                    "installed the"
                } else {
                    "removed the"
                },
                scheduler.as_str()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
