use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::process::Command as Process;

use super::*;

/// Words each format treats specially: spaces, both quotes, `%`, `$`,
/// backquotes, backslashes (one right before `%`), a lone `;`.
#[rustfmt::skip]
const AWKWARD: &[&str] = &[
    "rotate", "--profile", "dev team", "--note", "it's 100% \"done\"", "$HOME", "`id`",
    r"a\%b", r"c\\%d", r"back\", ";", "--max-age", "90d",
];
const HOME: &str = "/home/u";

fn job(rekey: impl AsRef<Path>, log: impl AsRef<Path>, args: &[&str]) -> Job {
    let env = [
        ("AWS_PROFILE", "o'brien %x $y"),
        ("AWS_CONFIG_FILE", "/tmp/a b/config"),
    ];
    Job {
        rekey: rekey.as_ref().to_path_buf(),
        args: args.iter().map(|a| a.to_string()).collect(),
        at: (3, 7),
        log: log.as_ref().to_path_buf(),
        env: env.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec(),
    }
}

/// Records every call; fails those that contain the word `fail.0`.
#[derive(Default)]
struct FakeRunner {
    calls: RefCell<Vec<(String, Option<String>)>>,
    fail: Option<(&'static str, &'static str)>,
}

fn failing(word: &'static str, stderr: &'static str) -> FakeRunner {
    FakeRunner {
        fail: Some((word, stderr)),
        ..FakeRunner::default()
    }
}

impl CommandRunner for FakeRunner {
    fn run(&self, argv: &[String], stdin: Option<&str>) -> Result<String, ScheduleError> {
        let line = argv.join(" ");
        self.calls
            .borrow_mut()
            .push((line.clone(), stdin.map(str::to_owned)));
        match self.fail {
            Some((word, stderr)) if argv.iter().any(|a| a == word) => {
                let stderr = stderr.to_owned();
                Err(ScheduleError::CommandFailed {
                    argv: line,
                    status: Some(1),
                    stderr,
                })
            }
            _ => Ok(String::new()),
        }
    }
}

impl FakeRunner {
    fn argvs(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .map(|(line, _)| line.clone())
            .collect()
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn crontab_text(plan: &Plan) -> String {
    let stdin = plan.steps.iter().find_map(|s| match s {
        Step::Run(c) if c.argv == ["crontab", "-"] => c.stdin.clone(),
        _ => None,
    });
    stdin.expect("a `crontab -` step")
}

fn install_cron(job: &Job, current: Option<&str>) -> String {
    crontab_text(&plan_install(Scheduler::Cron, job, Path::new(HOME), current).unwrap())
}

fn uninstall_cron(current: &str) -> Result<Plan, ScheduleError> {
    plan_uninstall(Scheduler::Cron, Path::new(HOME), Some(current))
}

#[test]
fn cron_entry_quotes_every_word_and_escapes_percent() {
    let mut job = job("/opt/re key", "/var/log/r.log", &["rotate", "it's", "50%"]);
    job.env.truncate(1);
    let entry = r"7 3 * * * AWS_PROFILE='o'\''brien \%x $y' '/opt/re key' 'rotate' 'it'\''s' '50\%' >> '/var/log/r.log' 2>&1";
    assert_eq!(
        install_cron(&job, None),
        format!("{CRON_BEGIN}\n{entry}\n{CRON_END}\n")
    );
}

/// What cronie does to a command before `sh -c`: cut at the first bare `%`
/// (the rest would be stdin), `\%` becomes `%`, and a backslash before
/// anything else stays, along with the character it swallows.
fn as_cron_would(command: &str) -> String {
    let (mut out, mut escaped) = (String::new(), false);
    for c in command.chars() {
        if escaped {
            out.extend(if c == '%' { None } else { Some('\\') });
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            assert_ne!(
                c, '%',
                "cron would cut the command at a bare % in {command}"
            );
            out.push(c);
        }
    }
    out + if escaped { "\\" } else { "" }
}

#[test]
fn cron_line_reaches_rekey_intact_through_cron_and_sh() {
    let dir = tempfile::tempdir().unwrap();
    let rekey = dir.path().join("bin dir/rekey");
    fs::create_dir_all(rekey.parent().unwrap()).unwrap();
    let script = "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n\
                  printf 'profile=%s\\nconfig=%s\\n' \"$AWS_PROFILE\" \"$AWS_CONFIG_FILE\"\n";
    fs::write(&rekey, script).unwrap();
    fs::set_permissions(&rekey, fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("log dir/rotate.log");
    let plan = plan_install(
        Scheduler::Cron,
        &job(&rekey, &log, AWKWARD),
        dir.path(),
        None,
    )
    .unwrap();
    let mkdir_log_dir = Plan {
        steps: plan.steps[..1].to_vec(),
    };
    apply(&mkdir_log_dir, &FakeRunner::default()).unwrap();
    let text = crontab_text(&plan);
    let command = text.lines().nth(1).unwrap().splitn(6, ' ').nth(5).unwrap();
    let mut sh = Process::new("/bin/sh");
    assert!(
        sh.arg("-c")
            .arg(as_cron_would(command))
            .env_clear()
            .status()
            .unwrap()
            .success()
    );
    let expected = format!(
        "{}\nprofile=o'brien %x $y\nconfig=/tmp/a b/config\n",
        AWKWARD.join("\n")
    );
    assert_eq!(fs::read_to_string(&log).unwrap(), expected);
}

#[test]
fn cron_install_keeps_other_lines_is_idempotent_and_uninstall_restores() {
    let original = "MAILTO=me@example.com\n# nightly\n*/5 * * * *  /usr/bin/backup --quiet  \n\n\
                    0 1 * * 0 echo '50\\%' \r\n";
    let mut job = job("/opt/rekey", "/var/log/rekey.log", &["rotate"]);
    let installed = install_cron(&job, Some(original));
    assert!(installed.starts_with(original));
    assert_eq!(install_cron(&job, Some(&installed)), installed);
    // A new time replaces the block where it stands; later lines stay after it.
    let with_later = format!("{installed}@reboot /usr/bin/true\n");
    job.at = (23, 59);
    let moved = install_cron(&job, Some(&with_later));
    assert_eq!(moved, with_later.replace("\n7 3 * * * ", "\n59 23 * * * "));
    assert_eq!(crontab_text(&uninstall_cron(&installed).unwrap()), original);
    let after = format!("{original}@reboot /usr/bin/true\n");
    assert_eq!(crontab_text(&uninstall_cron(&moved).unwrap()), after);
    assert!(uninstall_cron(original).unwrap().is_empty());
    assert!(
        plan_uninstall(Scheduler::Cron, Path::new(HOME), None)
            .unwrap()
            .is_empty()
    );
    // crontab(1) wants the last line terminated.
    assert!(install_cron(&job, Some("@daily x")).starts_with("@daily x\n# BEGIN rekey "));
    let broken = uninstall_cron(&format!("a\n{CRON_BEGIN}\nb\n"));
    assert!(matches!(broken, Err(ScheduleError::BrokenCrontab)));
}

#[test]
fn systemd_units_quote_per_systemd_syntax() {
    let job = job(
        "/opt/rekey",
        "/var/log/r%.log",
        &["it's", "100%", "$HOME", r#"a"b\c"#],
    );
    let service = systemd_service(&check(&job).unwrap());
    let exec = r#"ExecStart="/opt/rekey" "it's" "100%%" "$$HOME" "a\"b\\c""#;
    assert!(service.contains(&format!("\n{exec}\n")), "{service}");
    assert!(service.contains("\nEnvironment=\"AWS_PROFILE=o'brien %%x $y\"\n"));
    let log = "StandardOutput=append:/var/log/r%%.log\nStandardError=append:/var/log/r%%.log";
    assert!(service.contains(log));
    assert!(systemd_timer((3, 7)).contains("\nOnCalendar=*-*-* 03:07:00\n"));
}

/// `systemd-analyze verify` exits 0 on problems it only "ignores" (a bad
/// specifier, an unknown Type=), printing them: its stderr counts too.
fn systemd_verify(dir: &Path, service: &str, timer: &str) -> Result<(), String> {
    let paths = [dir.join(SERVICE), dir.join(TIMER)];
    fs::write(&paths[0], service).unwrap();
    fs::write(&paths[1], timer).unwrap();
    // As root (here and in CI) verify runs in system mode; --user needs a session bus.
    let out = Process::new("systemd-analyze")
        .arg("verify")
        .args(paths)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.success() && !stderr.contains("rekey-rotate") {
        true => Ok(()),
        false => Err(stderr.into_owned()),
    }
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if Process::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return eprintln!("skipped: systemd-analyze is not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    // verify wants ExecStart's binary to exist and be executable.
    let job = job("/bin/true", dir.path().join("log dir/r%.log"), AWKWARD);
    let plan = plan_install(Scheduler::Systemd, &job, dir.path(), None).unwrap();
    let [service, timer] = [0, 1].map(|i| plan.artifacts().nth(i).unwrap().contents.clone());
    systemd_verify(dir.path(), &service, &timer).unwrap();
    // The check itself must be able to fail.
    let bad_type = service.replace("Type=oneshot", "Type=oneshott");
    assert!(
        systemd_verify(dir.path(), &bad_type, &timer)
            .unwrap_err()
            .contains("oneshott")
    );
    assert!(systemd_verify(dir.path(), &service.replace("%%", "%"), &timer).is_err());
}

#[test]
fn launchd_plist_parses_with_plistlib_to_the_same_values() {
    if Process::new("python3").arg("--version").output().is_err() {
        return eprintln!("skipped: python3 is not installed");
    }
    let job = job("/opt/re<key>&", "/var/log/r.log", AWKWARD);
    let plan = plan_install(Scheduler::Launchd, &job, Path::new(HOME), None).unwrap();
    let plist = &plan.artifacts().next().unwrap().contents;
    let script = "import plistlib, sys\n\
                  d = plistlib.loads(sys.stdin.buffer.read())\n\
                  print(*d['ProgramArguments'], sep='\\n')\n\
                  print(sorted(d['EnvironmentVariables'].items()))\n\
                  c = d['StartCalendarInterval']\n\
                  print(d['Label'], c['Hour'], c['Minute'], d['StandardOutPath'], \
                        d['StandardErrorPath'], d['RunAtLoad'])";
    let out = SystemRunner
        .run(&argv(&["python3", "-c", script]), Some(plist))
        .unwrap();
    let expected = format!(
        "/opt/re<key>&\n{}\n\
         [('AWS_CONFIG_FILE', '/tmp/a b/config'), ('AWS_PROFILE', \"o'brien %x $y\")]\n\
         com.github.rekey.rotate 3 7 /var/log/r.log /var/log/r.log False\n",
        AWKWARD.join("\n")
    );
    assert_eq!(out, expected);
}

#[test]
fn secrets_and_unrepresentable_input_are_refused() {
    let good = job("/opt/rekey", "/var/log/r.log", &["rotate"]);
    let refused = |edit: &dyn Fn(&mut Job)| {
        let mut job = good.clone();
        edit(&mut job);
        let errors = Scheduler::ALL.map(|s| plan_install(s, &job, Path::new(HOME), None));
        errors.map(|e| e.unwrap_err())
    };
    for name in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "aws_session_token",
    ] {
        let [err, ..] = refused(&|j| j.env.push((name.into(), "SECRETVALUE".into())));
        assert!(matches!(&err, ScheduleError::SecretInEnvironment { name: n } if n == name));
        assert!(!format!("{err} {err:?}").contains("SECRETVALUE"));
    }
    use ScheduleError::*;
    assert!(matches!(
        refused(&|j| j.at = (24, 0)),
        [
            BadTime {
                hour: 24,
                minute: 0
            },
            ..
        ]
    ));
    assert!(matches!(refused(&|j| j.at = (0, 60)), [BadTime { .. }, ..]));
    assert!(matches!(
        refused(&|j| j.log = "r.log".into()),
        [RelativePath { .. }, ..]
    ));
    assert!(matches!(
        refused(&|j| j.args.push("a\nb".into())),
        [Unrepresentable { .. }, ..]
    ));
    let bad_name = refused(&|j| j.env.push(("A-B".into(), "x".into())));
    assert!(matches!(bad_name, [BadEnvName { .. }, ..]));
    let relative_home = plan_uninstall(Scheduler::Systemd, Path::new("home"), None);
    assert!(matches!(relative_home, Err(RelativePath { .. })));
    assert!("crontab".parse::<Scheduler>().is_err());
    let names = Scheduler::ALL.map(|s| s.as_str().parse::<Scheduler>().unwrap());
    assert_eq!(names, Scheduler::ALL);
}

#[test]
fn apply_writes_what_print_shows_then_runs_commands_in_order() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("state/rekey/rotate.log");
    let plan = plan_install(
        Scheduler::Systemd,
        &job("/opt/rekey", &log, AWKWARD),
        home.path(),
        None,
    );
    let plan = plan.unwrap();
    let runner = FakeRunner::default();
    apply(&plan, &runner).unwrap();
    let printed = render_print(&plan);
    let unit_dir = home.path().join(".config/systemd/user");
    assert_eq!(plan.artifacts().count(), 2);
    for a in plan.artifacts() {
        assert_eq!(a.path.parent(), Some(unit_dir.as_path()));
        assert_eq!(fs::read_to_string(&a.path).unwrap(), a.contents);
        assert_eq!(mode(&a.path), 0o644);
        assert!(printed.contains(&format!("# {}\n{}", a.path.display(), a.contents)));
    }
    assert_eq!(
        fs::read_dir(&unit_dir).unwrap().count(),
        2,
        "no temp file left"
    );
    assert_eq!(mode(log.parent().unwrap()), 0o700);
    let reload = "systemctl --user daemon-reload";
    let enable = "systemctl --user enable --now rekey-rotate.timer";
    assert_eq!(runner.argvs(), [reload, enable]);
    assert!(printed.ends_with(&format!("$ {reload}\n$ {enable}\n")));

    let uninstall = plan_uninstall(Scheduler::Systemd, home.path(), None).unwrap();
    let runner = failing("disable", "Unit file rekey-rotate.timer does not exist.");
    apply(&uninstall, &runner).unwrap();
    apply(&uninstall, &runner).unwrap(); // again, with nothing left to remove
    assert_eq!(fs::read_dir(&unit_dir).unwrap().count(), 0);
    let disable = "systemctl --user disable --now rekey-rotate.timer";
    assert_eq!(runner.argvs(), [disable, reload, disable, reload]);
    assert!(render_print(&uninstall).starts_with(&format!("$ {disable} || true\n$ rm -f ")));
}

#[test]
fn cron_print_is_a_here_document_of_what_crontab_receives() {
    let dir = tempfile::tempdir().unwrap();
    let job = job("/opt/rekey", dir.path().join("rekey.log"), AWKWARD);
    let current = "EOF\n@daily /usr/bin/true\n";
    let plan = plan_install(Scheduler::Cron, &job, dir.path(), Some(current)).unwrap();
    let runner = FakeRunner::default();
    apply(&plan, &runner).unwrap();
    let text = crontab_text(&plan);
    assert_eq!(
        runner.calls.borrow()[..],
        [("crontab -".into(), Some(text.clone()))]
    );
    assert!(text.starts_with(current), "{text}");
    let shown = format!(
        "$ mkdir -p -m 700 {}\n{WHOLE_CRONTAB}\n$ crontab - <<'EOF_'\n{text}EOF_\n",
        dir.path().display()
    );
    assert_eq!(render_print(&plan), shown);
}

#[test]
fn uninstall_finds_a_job_only_where_one_is() {
    let home = tempfile::tempdir().unwrap();
    let job = job("/opt/rekey", home.path().join("rekey.log"), &["rotate"]);
    for s in [Scheduler::Systemd, Scheduler::Launchd] {
        let uninstall = plan_uninstall(s, home.path(), None).unwrap();
        assert!(!finds_a_job(&uninstall), "{s:?}: nothing installed yet");
        let install = plan_install(s, &job, home.path(), None).unwrap();
        apply(&install, &FakeRunner::default()).unwrap();
        assert!(finds_a_job(&uninstall), "{s:?}: installed");
        apply(&uninstall, &FakeRunner::default()).unwrap();
        assert!(!finds_a_job(&uninstall), "{s:?}: removed");
    }
    let mine = "MAILTO=me@example.com\n";
    assert!(!finds_a_job(&uninstall_cron(mine).unwrap()));
    let installed = install_cron(&job, Some(mine));
    assert!(finds_a_job(&uninstall_cron(&installed).unwrap()));
}

#[test]
fn launchd_ignores_a_failed_unload_but_not_a_failed_load() {
    let home = tempfile::tempdir().unwrap();
    let job = job("/opt/rekey", home.path().join("rekey.log"), &["rotate"]);
    let plan = plan_install(Scheduler::Launchd, &job, home.path(), None).unwrap();
    let plist = home
        .path()
        .join("Library/LaunchAgents/com.github.rekey.rotate.plist");
    let runner = failing("unload", "Could not find specified service");
    apply(&plan, &runner).unwrap();
    assert!(
        fs::read_to_string(&plist)
            .unwrap()
            .contains("<string>/opt/rekey</string>")
    );
    let p = plist.display();
    assert_eq!(
        runner.argvs(),
        [
            format!("launchctl unload {p}"),
            format!("launchctl load -w {p}")
        ]
    );
    let err = apply(&plan, &failing("load", "Load failed: 5")).unwrap_err();
    assert!(matches!(
        &err,
        ScheduleError::CommandFailed {
            status: Some(1),
            ..
        }
    ));
    let uninstall = plan_uninstall(Scheduler::Launchd, home.path(), None).unwrap();
    apply(&uninstall, &failing("unload", "not loaded")).unwrap();
    assert!(!plist.exists());
}

#[test]
fn system_runner_feeds_stdin_and_reports_failures() {
    let sh = |script: &str, stdin| SystemRunner.run(&argv(&["sh", "-c", script]), stdin);
    assert_eq!(sh("tr a-z A-Z", Some("it's\n")).unwrap(), "IT'S\n");
    let err = sh("echo no crontab for u >&2; exit 3", None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "`sh -c 'echo no crontab for u >&2; exit 3'` failed with exit status 3: no crontab for u"
    );
    let missing = SystemRunner.run(&argv(&["/nonexistent/x"]), None);
    assert!(matches!(missing, Err(ScheduleError::Io { .. })));
    assert_eq!(
        read_crontab(&failing("-l", "no crontab for u")).unwrap(),
        None
    );
    assert_eq!(
        read_crontab(&FakeRunner::default()).unwrap(),
        Some(String::new())
    );
}

#[test]
fn the_endpoint_and_profile_are_frozen_only_when_asked() {
    let vars = [
        ("AWS_CONFIG_FILE", "/h/.aws/config"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ("AWS_PROFILE", "dev"),
        ("TZ", "Europe/Paris"),
    ];
    let env = |k: &str| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    let frozen = |asked: &[&str]| -> Vec<String> {
        let asked: Vec<String> = asked.iter().map(|a| a.to_string()).collect();
        choose_env(&env, &asked)
            .unwrap()
            .into_iter()
            .filter(|c| c.frozen)
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(frozen(&[]), ["AWS_CONFIG_FILE"]);
    assert_eq!(
        frozen(&["AWS_ENDPOINT_URL", "TZ"]),
        ["AWS_CONFIG_FILE", "AWS_ENDPOINT_URL", "TZ"]
    );
    let shown = render_choices(Path::new("/s/j"), &choose_env(&env, &[]).unwrap());
    assert!(shown.contains("/s/j"), "{shown}");
    assert!(
        shown.contains("# NOT frozen: AWS_ENDPOINT_URL=http://127.0.0.1:5000"),
        "{shown}"
    );
    assert!(shown.contains("add --env AWS_PROFILE"), "{shown}");
    let missing = choose_env(&env, &["AWS_NOPE".to_string()]).unwrap_err();
    assert!(missing.to_string().contains("AWS_NOPE"), "{missing}");
}
