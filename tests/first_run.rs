//! A first run, as a new user meets rekey (issue 9, items 5, 9 and 11): a
//! system cron job rewriting a user's file, no credentials at all, SDK
//! chatter and colours on stderr, and input that is checked before any work.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use crate::rotate::Dev;
use crate::support::{Home, code, moto, stderr, stdout};

/// An owner nobody on the test machine logs in as (`nobody:nogroup`).
const OTHER: u32 = 65534;

/// Requests the emulator received signed by `account_id`'s keys.
fn calls_of(account_id: &str) -> u64 {
    moto().control("calls", serde_json::json!({}))["by_account"][account_id]
        .as_u64()
        .unwrap_or(0)
}

/// A loopback address where nothing listens: an unreachable instance
/// metadata service that fails at once rather than after a timeout.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// stderr's lines with `WARN` in them (the log level tracing prints).
fn warnings(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.contains("WARN"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn issue9_5_a_rotation_by_root_keeps_the_owner_of_the_users_files() {
    let dev = Dev::new(100).await;
    let aws_dir = dev.home.path().join(".aws");
    // The user's own directory and files, as `rekey rotate` run from a
    // system crontab (as root) finds them.
    for path in [
        aws_dir.clone(),
        dev.home.credentials_path(),
        dev.home.config_path(),
    ] {
        std::os::unix::fs::chown(&path, Some(OTHER), Some(OTHER))
            .expect("chown to 65534:65534: the suite runs as root, as CI does");
    }

    // Killed after delivery: the old pair kept beside the file while the
    // rotation runs belongs to the user too.
    let crash = [("REKEY_CRASH_AT", "deliver:done")];
    let out = dev.rotate_with(&crash, &["--profile", "dev"]);
    assert!(out.status.code().is_none(), "{}", stderr(&out));
    let kept = aws_dir.join(format!("credentials.rekey-old-{}", dev.key.access_key_id));
    let meta = std::fs::metadata(&kept).expect("the old pair is kept while the rotation runs");
    assert_eq!((meta.uid(), meta.gid()), (OTHER, OTHER));
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let out = dev.rotate(&["--profile", "dev", "--max-age", "30d"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_ne!(dev.held("dev").access_key_id, dev.key.access_key_id);

    // The credentials file, its backup and anything else rekey left next
    // to them still belong to the user; the files holding keys stay 0600.
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&aws_dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (OTHER, OTHER),
            "{} changed owner",
            path.display()
        );
        seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    // The kept old pair is gone once the rotation has ended.
    seen.sort();
    assert_eq!(seen, ["config", "credentials"]);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dev.home.credentials_path()), 0o600);
}

#[tokio::test]
async fn a_rotation_by_root_over_a_users_home_leaves_the_journal_the_users() {
    // `sudo rekey rotate` keeping HOME, or a system crontab: the default
    // journal's directories and file are created by root inside the home
    // of a user who must be able to run rekey afterwards.
    let dev = Dev::new(100).await;
    let home = dev.home.path();
    for path in [
        home.to_path_buf(),
        home.join(".aws"),
        dev.home.credentials_path(),
    ] {
        std::os::unix::fs::chown(&path, Some(OTHER), Some(OTHER))
            .expect("chown to 65534:65534: the suite runs as root, as CI does");
    }
    let out = dev.home.rekey_with(&[], &["rotate", "--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let state = home.join(".local/state/rekey");
    let journal = state.join("journal.sqlite3");
    assert!(
        journal.exists(),
        "the default journal is {}",
        journal.display()
    );
    for path in [
        home.join(".local"),
        home.join(".local/state"),
        state,
        journal.clone(),
    ] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (OTHER, OTHER),
            "{} is root's",
            path.display()
        );
    }
    // SQLite's side files, while they exist, follow the database file.
    for suffix in ["-wal", "-shm"] {
        let side = home.join(format!(".local/state/rekey/journal.sqlite3{suffix}"));
        if let Ok(meta) = std::fs::metadata(&side) {
            assert_eq!(
                (meta.uid(), meta.gid()),
                (OTHER, OTHER),
                "{}",
                side.display()
            );
        }
    }
}

/// The old pair's file has a name anyone can predict
/// (`credentials.rekey-old-<OLD KEY ID>`). A link planted there must be
/// replaced, not written through: root's cron job would otherwise write the
/// key pair over, and hand to the user, whatever the link points to.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_link_planted_where_the_old_pair_is_kept_is_replaced_not_followed() {
    let dev = Dev::new(100).await;
    let aws_dir = dev.home.path().join(".aws");
    let victim = dev.home.path().join("victim");
    std::fs::write(&victim, "not rekey's\n").unwrap();
    let kept = aws_dir.join(format!("credentials.rekey-old-{}", dev.key.access_key_id));
    std::os::unix::fs::symlink(&victim, &kept).unwrap();
    for path in [aws_dir.clone(), dev.home.credentials_path()] {
        std::os::unix::fs::chown(&path, Some(OTHER), Some(OTHER))
            .expect("chown to 65534:65534: the suite runs as root, as CI does");
    }
    let crash = [("REKEY_CRASH_AT", "deliver:done")];
    let out = dev.rotate_with(&crash, &["--profile", "dev"]);
    assert!(out.status.code().is_none(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not rekey's\n");
    let victim_meta = std::fs::metadata(&victim).unwrap();
    assert_eq!((victim_meta.uid(), victim_meta.gid()), (0, 0));
    let meta = std::fs::symlink_metadata(&kept).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the link was replaced by rekey's file"
    );
    assert_eq!((meta.uid(), meta.gid()), (OTHER, OTHER));
    // The next run finishes the rotation with the pair it kept.
    let out = dev.rotate(&["--profile", "dev", "--max-age", "30d"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    dev.assert_profile_works("dev");
    assert!(
        !kept.exists(),
        "the kept pair is deleted once the rotation ends"
    );
}

/// `rekey ARGS` as a new user runs it: only HOME (with `home`'s empty
/// files), no AWS_* variables, no region; the instance metadata service is
/// looked for, as the AWS CLI does, and does not answer. The endpoint is the
/// emulator's, so that nothing could ever reach real AWS. With `terminal`,
/// stdin, stdout and stderr are a terminal (`script` allocates one) and the
/// output is what it showed.
fn first_run(home: &Home, terminal: bool, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
    let rekey = env!("CARGO_BIN_EXE_rekey");
    let mut cmd = if terminal {
        let mut script = Command::new("script");
        script
            .args(["--quiet", "--return", "--command"])
            .arg(format!("{rekey} {}", args.join(" ")))
            .arg("/dev/null");
        script
    } else {
        let mut cmd = Command::new(rekey);
        cmd.args(args);
        cmd
    };
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("REKEY_") || k == "NO_COLOR" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home.path())
        .env("AWS_ENDPOINT_URL", moto().endpoint())
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", closed_port())
        .envs(extra_env.iter().copied())
        .stdin(std::process::Stdio::null())
        .current_dir(home.path())
        .output()
        .expect("run rekey (under `script` from util-linux for a terminal)")
}

#[test]
fn issue9_9_no_credentials_anywhere_is_one_line_naming_where_rekey_looked() {
    let home = Home::new();
    let out = first_run(&home, false, &[], &["audit"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("rekey: error: no AWS credentials found"),
        "{err}"
    );
    for place in [
        "environment variables",
        home.credentials_path().to_str().unwrap(),
        home.config_path().to_str().unwrap(),
        "instance metadata",
        "aws configure",
    ] {
        assert!(err.contains(place), "`{place}` not named in: {err}");
    }
    assert_eq!(stdout(&out), "");
}

#[tokio::test]
async fn issue9_9_profile_names_the_sdk_cannot_parse_rotate_without_warnings() {
    // Names the AWS CLI accepts; the SDK's parser warns about the file.
    for name in ["dev#1", "team dev"] {
        let dev = Dev::new(100).await;
        let text = dev.original.replace("[dev]", &format!("[{name}]"));
        std::fs::write(dev.home.credentials_path(), &text).unwrap();
        let out = dev.rotate(&["--profile", name]);
        assert_eq!(code(&out), 0, "{name}: {}{}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).contains("[rotated]"),
            "{name}: {}",
            stdout(&out)
        );
        assert_eq!(warnings(&out), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn a_profile_name_the_sdk_cannot_parse_is_named_not_taken_for_an_unreachable_endpoint() {
    // The AWS CLI reads `[dev#1]`; the SDK takes `#` for a comment, refuses
    // the whole file, and reports it as a failed dispatch.
    let home = Home::new();
    std::fs::write(
        home.credentials_path(),
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = never-shown-0123\n\n[dev#1]\naws_access_key_id = AKIAI44QH8DHBEXAMPLE\naws_secret_access_key = never-shown-4567\n",
    )
    .unwrap();
    let out = first_run(&home, false, &[("AWS_REGION", "us-east-1")], &["audit"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let place = format!("{} line 5: [dev#1]", home.credentials_path().display());
    assert!(err.contains(&place), "`{place}` not named in: {err}");
    assert!(!err.contains("cannot reach"), "{err}");
    assert!(!err.contains("never-shown"), "a secret in: {err}");
    assert_eq!(stdout(&out), "");
}

#[test]
fn issue9_9_no_colour_codes_when_stderr_is_not_a_terminal() {
    // -v lets the SDK's warnings through: there is something to colour.
    let out = first_run(&Home::new(), false, &[], &["-v", "audit"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        !warnings(&out).is_empty(),
        "-v shows the SDK's warnings: {err}"
    );
    assert!(!err.contains("\x1b["), "ANSI escapes in a pipe: {err:?}");
}

#[test]
fn issue9_9_no_color_turns_colours_off_on_a_terminal() {
    let home = Home::new();
    let coloured = first_run(&home, true, &[], &["-v", "audit"]);
    assert_eq!(code(&coloured), 2, "{}", stdout(&coloured));
    assert!(
        stdout(&coloured).contains("\x1b["),
        "a terminal gets colours: {:?}",
        stdout(&coloured)
    );
    let plain = first_run(&home, true, &[("NO_COLOR", "1")], &["-v", "audit"]);
    assert_eq!(code(&plain), 2, "{}", stdout(&plain));
    assert!(stdout(&plain).contains("WARN"), "{:?}", stdout(&plain));
    assert!(
        !stdout(&plain).contains("\x1b["),
        "NO_COLOR=1: {:?}",
        stdout(&plain)
    );
}

#[tokio::test]
async fn issue9_11_an_unwritable_out_path_is_refused_before_any_aws_call() {
    let acct = moto().new_account();
    let home = Home::new().with_base(&acct.admin);
    let file = home.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let cases = [
        (
            home.path().join("no-such-dir/report.html"),
            "does not exist",
        ),
        (home.path().to_path_buf(), "is a directory"),
        (file.join("report.html"), "is not a directory"),
    ];
    for (path, needle) in cases {
        let before = calls_of(&acct.account_id);
        let out = home.rekey(&["audit", "--out", path.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{}: {err}", path.display());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(&format!("cannot write the report to {}", path.display()))
                && err.contains(needle),
            "{err}"
        );
        assert_eq!(
            calls_of(&acct.account_id),
            before,
            "{}: AWS was called before the check",
            path.display()
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

/// Issue 15: `--out reports/`, a directory that does not exist yet named
/// as one, is refused before the first AWS call, not after the audit.
#[tokio::test]
async fn issue15_an_out_path_naming_a_missing_directory_is_refused_before_any_aws_call() {
    let acct = moto().new_account();
    let home = Home::new().with_base(&acct.admin);
    for named in ["reports/", "reports/."] {
        let path = format!("{}/{named}", home.path().display());
        let before = calls_of(&acct.account_id);
        let out = home.rekey(&["audit", "--output", "json", "--out", &path]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{path}: {err}");
        assert!(
            err.contains(&format!("cannot write the report to {path}"))
                && err.contains("names a directory, not a file"),
            "{err}"
        );
        assert_eq!(calls_of(&acct.account_id), before, "{path}: AWS was called");
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }
    let left: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("rekey-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn issue9_11_a_byte_order_mark_is_named_in_every_file_kind() {
    let acct = moto().new_account();
    let home = Home::new().with_base(&acct.admin);
    let bom = "\u{feff}";
    let accounts = home.path().join("accounts.txt");
    let credentials = format!(
        "[dev]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        acct.admin.access_key_id, acct.admin.secret_access_key
    );
    let cases = [
        (
            home.credentials_path(),
            credentials,
            vec!["--profile", "dev"],
        ),
        (
            home.config_path(),
            "[default]\nregion = us-east-1\n".to_string(),
            vec![],
        ),
        (
            accounts.clone(),
            format!("{}\n", acct.account_id),
            vec!["--accounts", accounts.to_str().unwrap(), "--role", "R"],
        ),
    ];
    for (path, text, args) in cases {
        std::fs::write(&path, format!("{bom}{text}")).unwrap();
        let before = calls_of(&acct.account_id);
        let mut full = vec!["audit"];
        full.extend_from_slice(&args);
        let out = home.rekey(&full);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{}: {err}", path.display());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(path.to_str().unwrap())
                && err.contains("starts with a UTF-8 byte-order mark (BOM)"),
            "{}: {err}",
            path.display()
        );
        assert_eq!(calls_of(&acct.account_id), before, "{}", path.display());
        // Without the BOM, for the next kind.
        std::fs::write(&path, text).unwrap();
    }
}
