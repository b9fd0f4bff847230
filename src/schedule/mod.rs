//! `rekey schedule`: a daily job that runs `rekey rotate`, for cron, systemd
//! user units or launchd. Plan, then apply: [`plan_install`] and
//! [`plan_uninstall`] are pure and list every directory, file and command in
//! order; [`render_print`] shows a plan (what `rekey schedule print` prints);
//! [`apply`] carries it out through a [`CommandRunner`], so tests run real
//! plans against a fake runner.
//!
//! Each format unquotes differently, and a word that is safe in one is
//! mangled by another: a cron line is `/bin/sh` text that cron first cuts at
//! `%`; systemd unquotes C-style and expands `%` specifiers and `$` variables;
//! launchd reads XML. Each writer below quotes for exactly one of them, and
//! the tests hand the output to the real parser (`/bin/sh`,
//! `systemd-analyze verify`, Python's `plistlib`).
//!
//! Schedule files are readable by others and end up in backups, so secrets
//! are refused outright: the job reads its keys from the credentials file,
//! like an interactive `rekey rotate`.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::{fs, str::FromStr};

/// Never written into a schedule. `AWS_SECURITY_TOKEN` is the session
/// token's legacy name, still read by boto.
const SECRET_ENV: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
];
const CRON_BEGIN: &str = "# BEGIN rekey (managed by rekey schedule; do not edit)";
const CRON_END: &str = "# END rekey";
const SERVICE: &str = "rekey-rotate.service";
const TIMER: &str = "rekey-rotate.timer";
const LAUNCHD_LABEL: &str = "com.github.rekey.rotate";
const HEADER: &str = "Written by `rekey schedule install`; `rekey schedule uninstall` removes it.";

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown scheduler `{name}`: use cron, systemd or launchd")]
    UnknownScheduler { name: String },
    #[error("{hour:02}:{minute:02} is not a time of day (hour 0-23, minute 0-59)")]
    BadTime { hour: u8, minute: u8 },
    #[error("refusing to write {name} into a schedule: its files are not secret; leave it out")]
    SecretInEnvironment { name: String },
    #[error("`{name}` is not an environment variable name (letters, digits and _)")]
    BadEnvName { name: String },
    #[error("{what} `{value}` has a control character or is not UTF-8; no scheduler takes it")]
    Unrepresentable { what: &'static str, value: String },
    #[error("{what} must be an absolute path, not `{}`", path.display())]
    RelativePath { what: &'static str, path: PathBuf },
    #[error("your crontab has `# BEGIN rekey` but no `# END rekey`: fix it with `crontab -e`")]
    BrokenCrontab,
    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{argv}` failed{}{}",
        status.map_or(" (killed by a signal)".into(), |c| format!(" with exit status {c}")),
        if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    CommandFailed {
        argv: String,
        status: Option<i32>,
        stderr: String,
    },
    #[error("`{name}` is not set in this environment, so there is nothing to freeze into the job")]
    NotSet { name: String },
    #[error("HOME is not set: rekey needs it to find where the scheduler reads its jobs")]
    NoHome,
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> ScheduleError {
    let path = path.to_path_buf();
    ScheduleError::Io { op, path, source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    Cron,
    Systemd,
    Launchd,
}

impl Scheduler {
    pub const ALL: [Scheduler; 3] = [Scheduler::Cron, Scheduler::Systemd, Scheduler::Launchd];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Cron => "cron",
            Scheduler::Systemd => "systemd",
            Scheduler::Launchd => "launchd",
        }
    }
}

impl FromStr for Scheduler {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = Scheduler::ALL.into_iter().find(|k| k.as_str() == s);
        known.ok_or_else(|| ScheduleError::UnknownScheduler { name: s.to_owned() })
    }
}

/// Variables of the installing shell that the job gets as they are now,
/// each with why: without them the job would read other files or fail to
/// reach AWS (cron and systemd start jobs with an almost empty environment).
const FROZEN_ENV: [(&str, &str); 5] = [
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "the credentials file the job rotates",
    ),
    (
        "AWS_CONFIG_FILE",
        "the config file the profiles are read from",
    ),
    ("AWS_REGION", "the region IAM and STS calls are signed for"),
    (
        "AWS_DEFAULT_REGION",
        "the region IAM and STS calls are signed for",
    ),
    (
        "AWS_CA_BUNDLE",
        "the CA bundle this machine needs to reach AWS",
    ),
];

/// Variables that change where or as whom the job acts: frozen only when
/// the user names them (`--env NAME`), never silently (issue 10 #9).
const ASK_FIRST_ENV: [(&str, &str); 2] = [
    (
        "AWS_ENDPOINT_URL",
        "every call of the job would go to this endpoint instead of AWS",
    ),
    (
        "AWS_PROFILE",
        "the job's default profile; the job rotates the profiles it names",
    ),
];

/// One variable of the installing shell and what the job does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvChoice {
    pub name: String,
    pub value: String,
    pub why: &'static str,
    pub frozen: bool,
}

/// Which variables of `env` the job keeps: [`FROZEN_ENV`] when set, the
/// names in `asked` (the user's consent), and [`ASK_FIRST_ENV`] listed as
/// left out when set but not asked for. A name asked for but not set is an
/// error: the user expects it in the job.
pub fn choose_env(
    env: &dyn Fn(&str) -> Option<String>,
    asked: &[String],
) -> Result<Vec<EnvChoice>, ScheduleError> {
    let mut out = Vec::new();
    for (name, why) in FROZEN_ENV {
        if let Some(value) = env(name) {
            out.push(choice(name, value, why, true));
        }
    }
    for (name, why) in ASK_FIRST_ENV {
        if let Some(value) = env(name) {
            out.push(choice(name, value, why, asked.iter().any(|a| a == name)));
        }
    }
    for name in asked {
        if out.iter().any(|c| &c.name == name) {
            continue;
        }
        let value = env(name).ok_or_else(|| ScheduleError::NotSet { name: name.clone() })?;
        out.push(choice(name, value, "asked for with --env", true));
    }
    Ok(out)
}

fn choice(name: &str, value: String, why: &'static str, frozen: bool) -> EnvChoice {
    let name = name.to_string();
    EnvChoice {
        name,
        value,
        why,
        frozen,
    }
}

/// The opening of `rekey schedule print`: the journal the job uses and
/// every variable frozen into it or left out, with why, as `#` comments.
pub fn render_choices(journal: &Path, env: &[EnvChoice]) -> String {
    let mut out = format!(
        "# The job names its journal: {} (what `rekey rotate` and `rekey history` use by default from this shell).\n",
        journal.display()
    );
    for c in env {
        let state = if c.frozen { "frozen" } else { "NOT frozen" };
        let hint = if c.frozen {
            String::new()
        } else {
            format!("; add --env {} to freeze it", c.name)
        };
        _ = writeln!(out, "# {state}: {}={} ({}{hint})", c.name, c.value, c.why);
    }
    out.push('\n');
    out
}

/// What the scheduled job runs, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Absolute path of the rekey binary (`std::env::current_exe()`).
    pub rekey: PathBuf,
    /// Arguments after the binary, e.g. `rotate --profile dev --max-age 90d`.
    pub args: Vec<String>,
    /// Hour and minute, local time.
    pub at: (u8, u8),
    /// Absolute path of the log file; stdout and stderr are appended to it.
    pub log: PathBuf,
    /// Environment for the job (AWS_CONFIG_FILE, AWS_PROFILE, ...); never a secret.
    pub env: Vec<(String, String)>,
}

/// A file that install writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub path: PathBuf,
    pub contents: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Stop,
    /// For commands that fail when there is nothing to undo (unloading a job
    /// that is not loaded), so install and uninstall can be re-run.
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    pub stdin: Option<String>,
    pub on_failure: OnFailure,
}

/// One thing install or uninstall does. A plan is a sequence rather than
/// "files, then commands" because order matters both ways: a timer is
/// disabled before its unit file goes, and systemd reloads after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `mkdir -p`, mode 0700, for the log's directory: no scheduler creates
    /// it, and without it every run fails before rekey even starts.
    CreateDir(PathBuf),
    Write(Artifact),
    /// Remove a file; one already gone is fine, so uninstall can be re-run.
    Remove(PathBuf),
    Run(Command),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn artifacts(&self) -> impl Iterator<Item = &Artifact> {
        self.steps.iter().filter_map(|s| match s {
            Step::Write(a) => Some(a),
            _ => None,
        })
    }

    /// Nothing to do (e.g. uninstall from a crontab without rekey's block).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Runs external commands; tests pass a fake that records the calls.
pub trait CommandRunner {
    /// Runs `argv` with `stdin` fed in; returns stdout, or
    /// [`ScheduleError::CommandFailed`] on a non-zero exit.
    fn run(&self, argv: &[String], stdin: Option<&str>) -> Result<String, ScheduleError>;
}

/// Runs commands with [`std::process::Command`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, argv: &[String], stdin: Option<&str>) -> Result<String, ScheduleError> {
        let argv_line = shell_line(argv);
        let failed = |status, stderr| ScheduleError::CommandFailed {
            argv: argv_line,
            status,
            stderr,
        };
        let Some((program, rest)) = argv.split_first() else {
            return Err(failed(None, "empty command".into()));
        };
        let spawn_err = |e| io_err("run", Path::new(program), e);
        let mut child = std::process::Command::new(program);
        child
            .args(rest)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        child.stdin(stdin.map_or_else(Stdio::null, |_| Stdio::piped()));
        let mut child = child.spawn().map_err(spawn_err)?;
        let output = std::thread::scope(|scope| {
            // Fed from a thread: a child that fills its stdout pipe before
            // reading stdin would otherwise wait on us forever. A write error
            // means the child quit early; its exit status says why.
            if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
                scope.spawn(move || pipe.write_all(text.as_bytes()));
            }
            child.wait_with_output()
        });
        let output = output.map_err(spawn_err)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return Err(failed(output.status.code(), stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// `$HOME`, which every scheduler's paths hang from.
pub fn home_dir() -> Result<PathBuf, ScheduleError> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    home.map(PathBuf::from).ok_or(ScheduleError::NoHome)
}

/// The user's crontab, or `None` when there is none (`crontab -l` then fails
/// with "no crontab for USER").
pub fn read_crontab(runner: &dyn CommandRunner) -> Result<Option<String>, ScheduleError> {
    match runner.run(&argv(&["crontab", "-l"]), None) {
        Ok(text) => Ok(Some(text)),
        Err(ScheduleError::CommandFailed { stderr, .. }) if stderr.contains("no crontab") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub fn plan_install(
    s: Scheduler,
    job: &Job,
    home: &Path,
    current_crontab: Option<&str>,
) -> Result<Plan, ScheduleError> {
    let job = check(job)?;
    path_text("the home directory", home)?;
    let log_dir = Path::new(job.log).parent().unwrap_or(Path::new("/"));
    let mut steps = vec![Step::CreateDir(log_dir.to_path_buf())];
    match s {
        Scheduler::Cron => {
            let block = format!("{CRON_BEGIN}\n{}\n{CRON_END}\n", cron_entry(&job));
            steps.push(crontab(splice_crontab(current_crontab, Some(&block))?));
        }
        Scheduler::Systemd => {
            let (service, timer) = systemd_paths(home);
            steps.push(write(service, systemd_service(&job)));
            steps.push(write(timer, systemd_timer(job.at)));
            steps.push(systemctl("daemon-reload", OnFailure::Stop));
            steps.push(systemctl(&format!("enable --now {TIMER}"), OnFailure::Stop));
        }
        Scheduler::Launchd => {
            let plist = launchd_path(home);
            let shown = plist.to_string_lossy().into_owned();
            steps.push(write(plist, launchd_plist(&job)));
            // An agent loaded from an older plist keeps its old settings until unloaded.
            steps.push(run(&["launchctl", "unload", &shown], OnFailure::Ignore));
            steps.push(run(&["launchctl", "load", "-w", &shown], OnFailure::Stop));
        }
    }
    Ok(Plan { steps })
}

pub fn plan_uninstall(
    s: Scheduler,
    home: &Path,
    current_crontab: Option<&str>,
) -> Result<Plan, ScheduleError> {
    path_text("the home directory", home)?;
    let steps = match s {
        Scheduler::Cron => {
            let current = current_crontab.unwrap_or("");
            let new = splice_crontab(current_crontab, None)?;
            if new == current {
                vec![]
            } else {
                vec![crontab(new)]
            }
        }
        Scheduler::Systemd => {
            let (service, timer) = systemd_paths(home);
            vec![
                systemctl(&format!("disable --now {TIMER}"), OnFailure::Ignore),
                Step::Remove(service),
                Step::Remove(timer),
                systemctl("daemon-reload", OnFailure::Stop),
            ]
        }
        Scheduler::Launchd => {
            let plist = launchd_path(home);
            let unload = ["launchctl", "unload", "-w", &plist.to_string_lossy()];
            vec![run(&unload, OnFailure::Ignore), Step::Remove(plist)]
        }
    };
    Ok(Plan { steps })
}

/// Whether carrying out an uninstall plan removes a job: it writes a
/// crontab back (rekey's block was in it), or removes a file that is there.
/// Uninstalling what was never installed says so instead (issue 15).
pub fn finds_a_job(plan: &Plan) -> bool {
    plan.steps.iter().any(|step| match step {
        Step::Remove(path) => fs::symlink_metadata(path).is_ok(),
        Step::Run(c) => c.argv == ["crontab", "-"],
        Step::CreateDir(_) | Step::Write(_) => false,
    })
}

/// Said above the crontab that print shows: pasting it replaces the whole
/// crontab, so it must be, and say it is, all of it (issue 15 #7).
const WHOLE_CRONTAB: &str = "# Your whole crontab as install writes it: every line `crontab -l` shows now, \
with rekey's block between `# BEGIN rekey` and `# END rekey`. Paste it before you change your crontab \
otherwise, or run install instead.";

/// What `rekey schedule print` shows, read as a shell session: `# <path>`
/// then the file's exact contents, and `$ <command>` lines. The crontab goes
/// to `crontab -` as a here-document, so that part can be pasted into a
/// shell: it is the whole crontab install writes, every other line of the
/// current one with rekey's block merged in.
pub fn render_print(plan: &Plan) -> String {
    let mut out = String::new();
    for step in &plan.steps {
        match step {
            Step::CreateDir(dir) => {
                _ = writeln!(out, "$ mkdir -p -m 700 {}", sh_word(&dir.to_string_lossy()))
            }
            Step::Write(a) => _ = write!(out, "# {}\n{}", a.path.display(), a.contents),
            Step::Remove(path) => _ = writeln!(out, "$ rm -f {}", sh_word(&path.to_string_lossy())),
            Step::Run(c) => {
                let line = shell_line(&c.argv);
                let or_true = match c.on_failure {
                    OnFailure::Ignore => " || true",
                    OnFailure::Stop => "",
                };
                let Some(stdin) = &c.stdin else {
                    _ = writeln!(out, "$ {line}{or_true}");
                    continue;
                };
                let mut delim = String::from("EOF");
                while stdin.lines().any(|l| l == delim) {
                    delim.push('_');
                }
                if c.argv == ["crontab", "-"] {
                    _ = writeln!(out, "{WHOLE_CRONTAB}");
                }
                _ = write!(out, "$ {line} <<'{delim}'{or_true}\n{stdin}{delim}\n");
            }
        }
    }
    out
}

/// Carries out a plan in order, stopping at the first failure. Plans are
/// idempotent, so after a failure the fix is to run the same command again.
pub fn apply(plan: &Plan, runner: &dyn CommandRunner) -> Result<(), ScheduleError> {
    for step in &plan.steps {
        match step {
            Step::CreateDir(dir) => {
                let mut builder = fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder
                    .create(dir)
                    .map_err(|e| io_err("create directory", dir, e))?;
            }
            Step::Write(a) => write_atomic(&a.path, &a.contents)?,
            Step::Remove(path) => match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("remove", path, e));
                }
                _ => {}
            },
            Step::Run(c) => match runner.run(&c.argv, c.stdin.as_deref()) {
                Err(e) if c.on_failure == OnFailure::Stop => return Err(e),
                _ => {}
            },
        }
    }
    Ok(())
}

/// Atomically, so the scheduler never sees half a file. Mode 0644 because
/// nothing in it is secret.
fn write_atomic(path: &Path, contents: &str) -> Result<(), ScheduleError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))?;
    crate::atomic::write(path, contents.as_bytes(), 0o644, None)
        .map_err(|e| io_err("write", path, e))
}

/// A job whose every string is known to fit in all three formats.
struct Checked<'a> {
    rekey: &'a str,
    args: Vec<&'a str>,
    at: (u8, u8),
    log: &'a str,
    env: Vec<(&'a str, &'a str)>,
}

fn check(job: &Job) -> Result<Checked<'_>, ScheduleError> {
    let (hour, minute) = job.at;
    if hour > 23 || minute > 59 {
        return Err(ScheduleError::BadTime { hour, minute });
    }
    for (name, _) in &job.env {
        // Case-blind: a lower-case secret is still a secret on disk.
        if SECRET_ENV.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return Err(ScheduleError::SecretInEnvironment { name: name.clone() });
        }
        // Left unquoted in the cron line: sh takes `NAME=` as an assignment only then.
        let first = name.chars().next().filter(|c| !c.is_ascii_digit());
        if first.is_none() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ScheduleError::BadEnvName { name: name.clone() });
        }
    }
    let args = job.args.iter().map(|a| text("argument", a));
    let env = job
        .env
        .iter()
        .map(|(k, v)| Ok((k.as_str(), text("environment value", v)?)));
    Ok(Checked {
        rekey: path_text("the rekey binary", &job.rekey)?,
        args: args.collect::<Result<_, _>>()?,
        at: job.at,
        log: path_text("the log file", &job.log)?,
        env: env.collect::<Result<_, _>>()?,
    })
}

/// A newline would end a crontab line or a unit-file setting, and XML 1.0
/// cannot hold most control characters at all.
fn text<'a>(what: &'static str, s: &'a str) -> Result<&'a str, ScheduleError> {
    match s.chars().any(char::is_control) {
        true => Err(unrepresentable(what, s.escape_debug().to_string())),
        false => Ok(s),
    }
}

fn unrepresentable(what: &'static str, value: String) -> ScheduleError {
    ScheduleError::Unrepresentable { what, value }
}

fn path_text<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, ScheduleError> {
    if !path.is_absolute() {
        return Err(ScheduleError::RelativePath {
            what,
            path: path.to_path_buf(),
        });
    }
    let lossy = || unrepresentable(what, path.to_string_lossy().into_owned());
    text(what, path.to_str().ok_or_else(lossy)?)
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn run(words: &[&str], on_failure: OnFailure) -> Step {
    Step::Run(Command {
        argv: argv(words),
        stdin: None,
        on_failure,
    })
}

fn write(path: PathBuf, contents: String) -> Step {
    Step::Write(Artifact { path, contents })
}

fn systemctl(args: &str, on_failure: OnFailure) -> Step {
    let words: Vec<&str> = ["systemctl", "--user"]
        .into_iter()
        .chain(args.split(' '))
        .collect();
    run(&words, on_failure)
}

fn crontab(text: String) -> Step {
    let argv = argv(&["crontab", "-"]);
    Step::Run(Command {
        argv,
        stdin: Some(text),
        on_failure: OnFailure::Stop,
    })
}

fn systemd_paths(home: &Path) -> (PathBuf, PathBuf) {
    // systemd reads $XDG_CONFIG_HOME/systemd/user instead when that is set.
    let dir = home.join(".config/systemd/user");
    (dir.join(SERVICE), dir.join(TIMER))
}

fn launchd_path(home: &Path) -> PathBuf {
    home.join(format!("Library/LaunchAgents/{LAUNCHD_LABEL}.plist"))
}

/// Single-quoted for /bin/sh: nothing inside is special but `'` itself.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quoted only when needed, for lines people read.
fn sh_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_owned()
    } else {
        sh_quote(s)
    }
}

fn shell_line(argv: &[String]) -> String {
    let words: Vec<String> = argv.iter().map(|w| sh_word(w)).collect();
    words.join(" ")
}

/// `m h * * * NAME='v' 'rekey' 'arg'... >> 'log' 2>&1`.
fn cron_entry(job: &Checked) -> String {
    let env = job.env.iter().map(|(k, v)| format!("{k}={}", sh_quote(v)));
    let command = std::iter::once(job.rekey)
        .chain(job.args.iter().copied())
        .map(sh_quote);
    let mut words: Vec<String> = env.chain(command).collect();
    words.push(format!(">> {} 2>&1", sh_quote(job.log)));
    let (hour, minute) = job.at;
    format!("{minute} {hour} * * * {}", cron_escape(&words.join(" ")))
}

/// Cron cuts a command at its first unescaped `%` (the rest becomes stdin),
/// and `\%` stands for `%`. But cron's backslash also swallows the character
/// after it, so a `\` of the argument's own right before our `\%` would pair
/// with it: an empty `''` in between keeps them apart. (Every `%` here is
/// inside single quotes, where `''` is nothing to sh.)
fn cron_escape(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    for c in command.chars() {
        if c == '%' {
            if out.ends_with('\\') {
                out.push_str("''");
            }
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `current` without any rekey block, and `block` where the first one was
/// (else at the end). Every other line is kept byte for byte.
fn splice_crontab(current: Option<&str>, block: Option<&str>) -> Result<String, ScheduleError> {
    let (mut out, mut placed, mut inside) = (String::new(), false, false);
    for line in current.unwrap_or("").split_inclusive('\n') {
        let bare = line.trim_end();
        if inside {
            inside = bare != CRON_END;
        } else if bare == "# BEGIN rekey" || bare.starts_with("# BEGIN rekey ") {
            inside = true;
            out.push_str(if placed { "" } else { block.unwrap_or("") });
            placed = true;
        } else {
            out.push_str(line);
        }
    }
    if inside {
        return Err(ScheduleError::BrokenCrontab);
    }
    // crontab(1) refuses a last line without its newline.
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !placed {
        out.push_str(block.unwrap_or(""));
    }
    Ok(out)
}

/// A double-quoted unit-file word: C-style escapes, `%` specifiers always,
/// and `$` variables only in `ExecStart=` (`Environment=` takes `$` as is).
fn systemd_quote(s: &str, dollars: bool) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '\\' | '"' => out.extend(['\\', c]),
            '%' => out.push_str("%%"),
            '$' if dollars => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out + "\""
}

fn systemd_service(job: &Checked) -> String {
    let words = std::iter::once(job.rekey).chain(job.args.iter().copied());
    let exec: Vec<String> = words.map(|w| systemd_quote(w, true)).collect();
    let exec = exec.join(" ");
    let assign = |(k, v): &(&str, &str)| systemd_quote(&format!("{k}={v}"), false);
    let env: String = job
        .env
        .iter()
        .map(|kv| format!("Environment={}\n", assign(kv)))
        .collect();
    // `append:` takes the rest of the line unquoted; only specifiers apply.
    let log = job.log.replace('%', "%%");
    format!(
        "# {HEADER}
[Unit]
Description=Rotate AWS IAM access keys (rekey)

[Service]
Type=oneshot
ExecStart={exec}
{env}StandardOutput=append:{log}
StandardError=append:{log}
"
    )
}

fn systemd_timer((hour, minute): (u8, u8)) -> String {
    format!(
        "# {HEADER}
[Unit]
Description=Run rekey rotate daily

[Timer]
OnCalendar=*-*-* {hour:02}:{minute:02}:00
# Catch up on a run missed while the machine was off, and spread runs
# so that many machines do not call IAM in the same second.
Persistent=true
RandomizedDelaySec=10min

[Install]
WantedBy=timers.target
"
    )
}

fn xml(s: &str) -> String {
    let s = s
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    s.replace('"', "&quot;").replace('\'', "&apos;")
}

fn launchd_plist(job: &Checked) -> String {
    let words = std::iter::once(job.rekey).chain(job.args.iter().copied());
    let args: String = words
        .map(|w| format!("\t\t<string>{}</string>\n", xml(w)))
        .collect();
    let mut env: String = job
        .env
        .iter()
        .map(|(k, v)| {
            format!(
                "\t\t<key>{}</key>\n\t\t<string>{}</string>\n",
                xml(k),
                xml(v)
            )
        })
        .collect();
    if !env.is_empty() {
        env = format!("\t<key>EnvironmentVariables</key>\n\t<dict>\n{env}\t</dict>\n");
    }
    let ((hour, minute), log) = (job.at, xml(job.log));
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- {HEADER} -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>{LAUNCHD_LABEL}</string>
	<key>ProgramArguments</key>
	<array>
{args}	</array>
{env}	<key>StartCalendarInterval</key>
	<dict>
		<key>Hour</key>
		<integer>{hour}</integer>
		<key>Minute</key>
		<integer>{minute}</integer>
	</dict>
	<key>StandardOutPath</key>
	<string>{log}</string>
	<key>StandardErrorPath</key>
	<string>{log}</string>
	<key>RunAtLoad</key>
	<false/>
</dict>
</plist>
"#
    )
}

#[cfg(all(test, unix))]
mod tests;
