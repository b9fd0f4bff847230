//! `rekey schedule` end to end: print, install and uninstall with stand-ins
//! for `crontab` and `systemctl` on a scratch home, and the installed job
//! run as cron runs it.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::rotate::Dev;
use crate::support::{Creds, Home, code, moto, stderr, stdout};

/// A home whose credentials file has profile `dev` (a fake pair: nothing
/// here calls AWS), with stand-ins for the schedulers' tools.
struct Sched {
    home: Home,
    path: String,
}

impl Sched {
    fn new() -> Sched {
        let home = Home::new();
        home.add_profile(
            "dev",
            &Creds {
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: "not-a-secret-emulator-only".into(),
            },
        );
        Sched::with_home(home)
    }

    fn with_home(home: Home) -> Sched {
        let path = fake_scheduler_tools(&home);
        Sched { home, path }
    }

    fn rekey(&self, args: &[&str]) -> Output {
        self.home.rekey_with(&[("PATH", self.path.as_str())], args)
    }

    fn tab(&self) -> PathBuf {
        self.home.path().join("crontab.txt")
    }

    fn crontab(&self) -> Option<String> {
        std::fs::read_to_string(self.tab()).ok()
    }

    fn units(&self) -> PathBuf {
        self.home.path().join(".config/systemd/user")
    }
}

/// A `bin/` with stand-ins for `crontab` (kept in a file; `crontab -l`
/// fails as it does without a crontab, or as `CRONTAB_FAILS` says) and
/// `systemctl` (calls logged), so install and uninstall run for real, on a
/// scratch home, without touching this machine's scheduler.
fn fake_scheduler_tools(home: &Home) -> String {
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tab = home.path().join("crontab.txt");
    let log = home.path().join("systemctl.log");
    let crontab = format!(
        "#!/bin/sh\n\
         if [ -n \"$CRONTAB_FAILS\" ]; then echo \"crontab: $CRONTAB_FAILS\" >&2; exit 1; fi\n\
         if [ \"$1\" = -l ]; then [ -f {tab} ] && exec cat {tab}; echo 'no crontab for tester' >&2; exit 1; fi\n\
         if [ \"$1\" = - ]; then cat > {tab}; exit 0; fi\nexit 2\n",
        tab = tab.display()
    );
    let systemctl = format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display());
    for (name, text) in [("crontab", crontab), ("systemctl", systemctl)] {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The part of `schedule print --cron` a user pastes into a shell: the
/// `crontab -` command and its here-document.
fn pasted_crontab_command(printed: &str) -> String {
    let start = printed
        .find("$ crontab - <<'")
        .unwrap_or_else(|| panic!("no crontab command in:\n{printed}"));
    let rest = &printed[start + 2..];
    let first = rest.lines().next().unwrap();
    let delim = first.split('\'').nth(1).unwrap();
    let end = rest
        .find(&format!("\n{delim}\n"))
        .unwrap_or_else(|| panic!("no end of the here-document in:\n{printed}"));
    rest[..end + delim.len() + 2].to_string()
}

/// The command of the crontab's daily rekey entry (after its five time
/// fields).
fn cron_command(crontab: &str) -> String {
    let entry = crontab
        .lines()
        .skip_while(|l| !l.starts_with("# BEGIN rekey"))
        .nth(1)
        .unwrap_or_else(|| panic!("no rekey entry in:\n{crontab}"));
    assert!(
        !entry.contains('%'),
        "no cron escapes to undo here: {entry}"
    );
    entry.splitn(6, ' ').nth(5).unwrap().to_string()
}

#[test]
fn schedule_print_shows_each_scheduler_job() {
    let s = Sched::new();
    for (flag, needle) in [
        ("--cron", "crontab -"),
        ("--systemd", "OnCalendar=*-*-* 03:15:00"),
        ("--launchd", "<key>StartCalendarInterval</key>"),
    ] {
        let out = s.rekey(&[
            "schedule",
            "print",
            flag,
            "--profile",
            "dev",
            "--max-age",
            "30d",
            "--at",
            "03:15",
        ]);
        assert_eq!(code(&out), 0, "{flag}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(needle), "{flag}: {text}");
        assert!(
            text.contains("rotate") && text.contains("dev") && text.contains("30d"),
            "{flag}: {text}"
        );
    }
    let out = s.rekey(&[
        "schedule",
        "print",
        "--systemd",
        "--profile",
        "dev",
        "--at",
        "25:00",
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--at"), "{}", stderr(&out));
    assert_eq!(s.crontab(), None, "print changes nothing");
}

#[test]
fn schedule_install_and_uninstall_for_cron_and_systemd() {
    let s = Sched::new();
    let mine = "# my jobs\nMAILTO=me@example.com\n0 1 * * * /usr/bin/backup --all\n";
    std::fs::write(s.tab(), mine).unwrap();

    let install = [
        "schedule",
        "install",
        "--cron",
        "--profile",
        "dev",
        "--max-age",
        "60d",
        "--at",
        "07:05",
    ];
    let out = s.rekey(&install);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let installed = s.crontab().unwrap();
    assert!(
        installed.starts_with(mine),
        "existing lines kept: {installed}"
    );
    let entry = installed
        .lines()
        .find(|l| l.starts_with("5 7 * * *"))
        .expect("a daily 07:05 entry");
    assert!(
        entry.contains("'rotate' '--profile' 'dev' '--max-age' '60d'"),
        "{entry}"
    );
    assert!(
        entry.contains(">> ") && entry.ends_with("2>&1"),
        "logs to a file: {entry}"
    );
    // Installing again replaces the block instead of adding a second.
    assert_eq!(code(&s.rekey(&install)), 0);
    assert_eq!(s.crontab().unwrap(), installed);
    let out = s.rekey(&["schedule", "uninstall", "--cron"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("removed the cron job"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.crontab().unwrap(), mine, "uninstall restores the crontab");

    let out = s.rekey(&["schedule", "install", "--systemd", "--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let service = std::fs::read_to_string(s.units().join("rekey-rotate.service")).unwrap();
    assert!(
        service.contains("\"rotate\" \"--profile\" \"dev\" \"--max-age\" \"90d\""),
        "{service}"
    );
    assert!(s.units().join("rekey-rotate.timer").exists());
    let calls = std::fs::read_to_string(s.home.path().join("systemctl.log")).unwrap();
    assert!(
        calls.contains("--user daemon-reload")
            && calls.contains("--user enable --now rekey-rotate.timer"),
        "{calls}"
    );
    let out = s.rekey(&["schedule", "uninstall", "--systemd"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !s.units().join("rekey-rotate.service").exists()
            && !s.units().join("rekey-rotate.timer").exists()
    );
}

/// Issue 15 #7: the crontab `print` shows is the one `install` writes —
/// pasted, it leaves the crontab exactly as install would, MAILTO and the
/// other jobs kept — and a crontab print cannot read is an error, not an
/// empty crontab that pasting would replace everything with.
#[test]
fn issue15_7_schedule_print_cron_pasted_is_what_install_writes() {
    let s = Sched::new();
    let mine = "MAILTO=me@example.com\n# nightly backup\n0 1 * * * /usr/bin/backup --all\n";
    let job = ["--cron", "--profile", "dev", "--at", "04:10"];
    fn with<'a>(action: &'a str, job: &[&'a str]) -> Vec<&'a str> {
        [&["schedule", action][..], job].concat()
    }

    std::fs::write(s.tab(), mine).unwrap();
    let out = s.rekey(&with("install", &job));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let by_install = s.crontab().unwrap();
    assert!(by_install.starts_with(mine), "{by_install}");

    std::fs::write(s.tab(), mine).unwrap();
    let out = s.rekey(&with("print", &job));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s.crontab().unwrap(), mine, "print changes nothing");
    let printed = stdout(&out);
    let pasted = Command::new("/bin/sh")
        .arg("-c")
        .arg(pasted_crontab_command(&printed))
        .env("PATH", &s.path)
        .env_remove("CRONTAB_FAILS")
        .status()
        .unwrap();
    assert!(pasted.success());
    assert_eq!(
        s.crontab().unwrap(),
        by_install,
        "pasting print's command leaves the crontab as install does:\n{printed}"
    );

    // `crontab -l` fails for another reason than "no crontab".
    std::fs::write(s.tab(), mine).unwrap();
    let fails = "your UID isn't in the passwd file";
    let out = s.home.rekey_with(
        &[("PATH", &s.path), ("CRONTAB_FAILS", fails)],
        &with("print", &job),
    );
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(
        !stdout(&out).contains("crontab -"),
        "no crontab to paste: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("cannot read your crontab") && err.contains(fails),
        "{err}"
    );
    assert_eq!(s.crontab().unwrap(), mine);
}

/// Issue 15 #8: a profile the job could not rotate is refused and nothing
/// is installed; `--region` and `--endpoint-url` are carried into the job,
/// which then reaches that endpoint from cron's empty environment.
#[tokio::test]
async fn issue15_8_schedule_refuses_unknown_profiles_and_keeps_region_and_endpoint() {
    let s = Sched::new();
    let mine = "MAILTO=me@example.com\n";
    std::fs::write(s.tab(), mine).unwrap();
    for (action, scheduler) in [
        ("install", "--cron"),
        ("install", "--systemd"),
        ("print", "--cron"),
    ] {
        let out = s.rekey(&["schedule", action, scheduler, "--profile", "nosuch"]);
        assert_eq!(code(&out), 2, "{action} {scheduler}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("profile `nosuch` not found; known profiles: dev"),
            "{}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("BEGIN rekey"), "{}", stdout(&out));
    }
    assert_eq!(s.crontab().unwrap(), mine, "nothing installed");
    assert!(!s.units().exists(), "nothing installed");
    assert!(!s.home.path().join("systemctl.log").exists());

    // A real key to rotate; the endpoint reaches the job only as a flag.
    let dev = Dev::new(100).await;
    let s = Sched::with_home(dev.home);
    let endpoint = moto().endpoint();
    let state = s.home.path().join("state");
    let (journal, log) = (state.join("journal.sqlite3"), state.join("rotate.log"));
    let install = [
        "schedule",
        "install",
        "--cron",
        "--profile",
        "dev",
        "--journal",
        journal.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--region",
        "us-east-1",
        "--endpoint-url",
        endpoint.as_str(),
    ];
    let out = s
        .home
        .rekey_command(&[("PATH", s.path.as_str())], &install)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tab = s.crontab().unwrap();
    let command = cron_command(&tab);
    assert!(
        command.contains(&format!(
            "'--region' 'us-east-1' '--endpoint-url' '{endpoint}'"
        )),
        "{command}"
    );
    let service = s.rekey(&[
        "schedule",
        "print",
        "--systemd",
        "--profile",
        "dev",
        "--region",
        "eu-west-3",
    ]);
    assert!(
        stdout(&service).contains("\"--region\" \"eu-west-3\""),
        "{}",
        stdout(&service)
    );
    // As cron runs it: /bin/sh, HOME, a bare PATH and nothing else.
    let ran = Command::new("/bin/sh")
        .arg("-c")
        .arg(&command)
        .env_clear()
        .env("HOME", s.home.path())
        .env("PATH", "/usr/bin:/bin")
        .current_dir(s.home.path())
        .status()
        .unwrap();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ran.success(), "the job failed:\n{log}");
    assert!(log.contains("[rotated]"), "{log}");
    let held = std::fs::read_to_string(s.home.credentials_path()).unwrap();
    assert!(
        !held.contains(&dev.key.access_key_id),
        "the job rotated the key:\n{held}"
    );
}

/// `schedule uninstall` of a job that was never installed says so.
#[test]
fn schedule_uninstall_without_a_job_says_there_was_none() {
    let s = Sched::new();
    let mine = "MAILTO=me@example.com\n";
    std::fs::write(s.tab(), mine).unwrap();
    for scheduler in ["--cron", "--systemd", "--launchd"] {
        let out = s.rekey(&["schedule", "uninstall", scheduler]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("there is no rekey") && err.contains("nothing changed"),
            "{scheduler}: {err}"
        );
        assert!(!err.contains("removed"), "{scheduler}: {err}");
    }
    assert_eq!(s.crontab().unwrap(), mine);
    assert!(!s.home.path().join("systemctl.log").exists());
}

/// `--cron`, `--systemd` and `--launchd` say what each writes.
#[test]
fn schedule_help_explains_each_scheduler() {
    let out = Sched::new().rekey(&["schedule", "--help"]);
    let help = stdout(&out);
    for flag in ["--cron", "--systemd", "--launchd"] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} in {help}"));
        assert!(line.trim() != flag, "{flag} has no help: {help}");
    }
}

/// A DynamoDB journal is named as it was given (a table is the same from
/// anywhere), not made into a path of the current directory.
#[test]
fn schedule_keeps_a_dynamodb_journal_as_named() {
    let s = Sched::new();
    let out = s.rekey(&[
        "schedule",
        "print",
        "--cron",
        "--profile",
        "dev",
        "--journal",
        "dynamodb:rekey-journal?region=eu-west-1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("'--journal' 'dynamodb:rekey-journal?region=eu-west-1'"),
        "{text}"
    );
    assert!(!text.contains("/dynamodb:"), "{text}");
}
