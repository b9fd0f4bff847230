//! Issue 15, `rekey rotate` keeps its word: the account `--account` names
//! is the one acted in (#1), a rotation whose file moved away names itself
//! and the way out (#3), `-o json` lists every key and user the run
//! considered (#4), a dry run reads every destination a real run reads
//! before its first change (#5), and the smaller promises beside them
//! (rekey.toml's `max_age` for `--service`, a run with nothing to rotate,
//! `--concurrency 0`, no progress lines where nobody watches).

use serde_json::Value;

use crate::support::runner::{Runner, svc_in};
use crate::support::stores::{
    ServiceAccount, create_secret, param_key, put_param, secret_current, works,
};
use crate::support::{Creds, ROLE, Seeder, code, json_out, moto, said, sdk_config, stderr, stdout};

/// A caller whose own account (not an organization's member) holds user
/// `name`, whose key sits in the caller's parameter `/ci/NAME`.
struct Own {
    account_id: String,
    seeder: Seeder,
    ssm: aws_sdk_ssm::Client,
    key: Creds,
    runner: Runner,
}

impl Own {
    async fn new(name: &str) -> Own {
        let acct = moto().new_account();
        let config = sdk_config(&acct.admin);
        let seeder = Seeder::new(&acct.account_id, &config);
        let key = seeder.service_user(name, 100).await;
        let ssm = aws_sdk_ssm::Client::new(&config);
        put_param(&ssm, &format!("/ci/{name}"), &key).await;
        Own {
            account_id: acct.account_id.clone(),
            seeder,
            ssm,
            key,
            runner: Runner::new(&acct.admin),
        }
    }

    /// The user still has its one key, and the parameter holds it.
    async fn assert_untouched(&self, name: &str, out: &std::process::Output) {
        let keys = self.seeder.keys(name).await;
        assert_eq!(
            keys,
            [(self.key.access_key_id.clone(), "Active".to_string())],
            "{}",
            said(out)
        );
        let held = param_key(&self.ssm, &format!("/ci/{name}")).await;
        assert_eq!(held.access_key_id, self.key.access_key_id);
    }
}

/// A key ID as rekey shows it: `AKIA…WXYZ`.
fn masked(id: &str) -> String {
    format!("{}…{}", &id[..4], &id[id.len() - 4..])
}

/// The rotations the runner's journal holds (none when there is none).
fn history(runner: &Runner) -> Vec<Value> {
    if !runner.journal().exists() {
        return vec![];
    }
    let out = runner.history();
    assert_eq!(code(&out), 0, "{}", said(&out));
    json_out(&out).as_array().cloned().unwrap_or_default()
}

/// Item 1: with the caller's own credentials (no --role), `--account`
/// must be the caller's account; another is refused before anything
/// changes, naming both accounts and `--role`; an ID that is not 12 digits
/// is bad input. Before, svc8 of the caller's account was rotated and
/// reported (and journaled) as a user of the account named.
#[tokio::test]
async fn an_account_named_without_a_role_must_be_the_callers_own() {
    let own = Own::new("svc8").await;
    let to = ["--user", "svc8", "--to", "ssm:/ci/svc8"];

    let bad = own.runner.rotate(&[&["--account", "1"][..], &to].concat());
    assert_eq!(code(&bad), 2, "{}", said(&bad));
    assert!(
        stderr(&bad).contains("--account: `1` is not a 12-digit AWS account ID"),
        "{}",
        said(&bad)
    );
    assert!(!own.runner.journal().exists(), "bad input opens nothing");
    own.assert_untouched("svc8", &bad).await;

    let other = "999999999999";
    let out = own
        .runner
        .rotate(&[&["--account", other, "-o", "json"][..], &to].concat());
    let errors = stderr(&out);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        errors.contains(&format!(
            "user svc8 in account {other}: your credentials are of account {}",
            own.account_id
        )) && errors.contains("pass --role"),
        "{errors}"
    );
    own.assert_untouched("svc8", &out).await;
    assert!(history(&own.runner).is_empty(), "nothing journaled");
    let listed = json_out(&out);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["status"], "refused", "{listed}");
    assert_eq!(listed[0]["account_id"], other, "{listed}");
    assert_eq!(listed[0]["user_name"], "svc8", "{listed}");

    // --service names accounts only with the role that enters them.
    let service = own.runner.rotate(&["--service", "--account", other]);
    assert_eq!(code(&service), 2, "{}", said(&service));
    assert!(
        stderr(&service).contains("--account/--accounts needs --role"),
        "{}",
        said(&service)
    );
    own.assert_untouched("svc8", &service).await;

    // The caller's own account, named: rotated there, as before.
    let mine = own
        .runner
        .rotate(&[&["--account", own.account_id.as_str()][..], &to].concat());
    assert_eq!(code(&mine), 0, "{}", said(&mine));
    let new = param_key(&own.ssm, "/ci/svc8").await;
    assert_ne!(new.access_key_id, own.key.access_key_id);
    assert!(works(&new).await);
    assert_eq!(
        history(&own.runner)[0]["account_id"],
        own.account_id.as_str()
    );
}

/// Item 3: a rotation killed while verifying, then its credentials file
/// moved away. Whether the next run names the gone profile or another,
/// the error names the rotation and `rekey rotate --abandon ID` (before:
/// only `profile `dev` not found; known profiles: none`, or `rotation #1:
/// the profile holds no access key`); nothing changes until then, and the
/// way out works.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_rotation_whose_file_moved_away_names_itself_and_the_way_out() {
    let dev = crate::rotate::Dev::new(120).await;
    let first = dev.rotate_with(&[("REKEY_CRASH_AT", "verify:begin")], &["--profile", "dev"]);
    assert!(
        stderr(&first).contains("crashing at verify:begin"),
        "{}",
        said(&first)
    );
    let path = dev.home.credentials_path();
    std::fs::rename(&path, path.with_extension("moved")).unwrap();

    let named = dev.rotate(&["--profile", "dev"]);
    assert_eq!(code(&named), 2, "{}", said(&named));
    let err = stderr(&named);
    let id = crate::support::rotation_id(&dev.journal, 1);
    assert!(
        err.contains("profile `dev` not found")
            && err.contains(&format!("rotation #{id} of dev in account"))
            && err.contains(&format!("`rekey rotate --abandon {id}`")),
        "{err}"
    );

    // A new file with another profile: the run resumes that rotation first.
    std::fs::write(&path, "").unwrap();
    dev.home.add_profile("other", &dev.acct.admin);
    let other = dev.rotate(&["--profile", "other", "--max-age", "30d"]);
    assert_eq!(code(&other), 2, "{}", said(&other));
    let err = stderr(&other);
    assert!(
        err.contains(&format!("rotation #{id} of dev in account"))
            && err.contains("cannot be resumed")
            && err.contains(&format!("`rekey rotate --abandon {id}`")),
        "{err}"
    );
    assert!(!err.contains("holds no access key"), "{err}");
    assert_eq!(dev.seeder.keys("dev").await.len(), 2, "nothing changed");
    assert_eq!(dev.history()[0]["outcome"], Value::Null, "still unfinished");

    let out = dev.rotate(&["--abandon", &id, "--profile", "other"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(
        dev.seeder.keys("dev").await,
        [(dev.key.access_key_id.clone(), "Active".to_string())]
    );
}

/// Member `i`'s user `svc`, reached through the role, whose key is in the
/// caller's (management account's) parameters and secrets.
struct Member {
    account: ServiceAccount,
    key: Creds,
    ssm: aws_sdk_ssm::Client,
    secrets: aws_sdk_secretsmanager::Client,
    runner: Runner,
}

impl Member {
    async fn new() -> Member {
        let org = moto().new_org(1);
        let account = ServiceAccount::of(&org, 0).await;
        let key = account.seeder.service_user("svc", 100).await;
        let caller = sdk_config(&org.admin);
        Member {
            account,
            key,
            ssm: aws_sdk_ssm::Client::new(&caller),
            secrets: aws_sdk_secretsmanager::Client::new(&caller),
            runner: Runner::new(&org.admin),
        }
    }

    fn service(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            "--service",
            "--account",
            self.account.account_id.as_str(),
            "--role",
            ROLE,
        ];
        args.extend_from_slice(extra);
        self.runner.rotate(&args)
    }
}

/// Item 4: an undone rotation (its new key never accepted) is in `-o json`
/// with its keys, its rotation and why. Before, the array was `[]`, exit 2.
#[tokio::test]
async fn json_lists_an_undone_rotation_with_its_keys_and_reason() {
    let m = Member::new().await;
    create_secret(&m.secrets, "ci/svc", &m.key).await;
    moto().new_key_delay(&m.account.account_id, 60.0, false, true);
    let out = m.runner.rotate(&svc_in(
        &m.account.account_id,
        &[
            "--to",
            "secretsmanager:ci/svc",
            "--propagation-timeout",
            "2s",
            "-o",
            "json",
        ],
    ));
    moto().new_key_delay(&m.account.account_id, 0.0, false, true);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let listed = json_out(&out);
    let all = listed.as_array().expect("an array");
    assert_eq!(all.len(), 1, "{listed}");
    let r = &all[0];
    assert_eq!(r["status"], "undone", "{r}");
    assert_eq!(r["user_name"], "svc", "{r}");
    assert_eq!(r["account_id"], m.account.account_id.as_str(), "{r}");
    assert_eq!(r["old_key_id"], m.key.access_key_id.as_str(), "{r}");
    assert_eq!(
        r["rotation_id"],
        crate::support::rotation_id(&m.runner.journal(), 1),
        "{r}"
    );
    let made = r["new_key_id"].as_str().expect("the key it made");
    assert_ne!(made, m.key.access_key_id);
    assert!(
        r["message"].as_str().unwrap().contains("not accepted"),
        "{r}"
    );
    assert_eq!(m.account.keys("svc").await.len(), 1, "the new key deleted");
}

/// Item 4: with `--service`, a user whose tag is malformed is in the array
/// too, refused with the reason, beside the user rotated. Before, it was
/// missing (stderr only).
#[tokio::test]
async fn json_lists_a_service_user_with_a_bad_tag_as_refused() {
    let m = Member::new().await;
    m.account.user_in_secret("good", 100).await;
    m.account.user("broken", 100, Some("ssm:nope")).await;
    let out = m.service(&["-o", "json"]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let listed = json_out(&out);
    let by_user = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["user_name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {listed}"))
            .clone()
    };
    assert_eq!(by_user("good")["status"], "rotated", "{listed}");
    let broken = by_user("broken");
    assert_eq!(broken["status"], "refused", "{broken}");
    assert_eq!(broken["account_id"], m.account.account_id.as_str());
    assert!(
        broken["message"]
            .as_str()
            .unwrap()
            .contains("tag rekey:destination holds `ssm:nope`"),
        "{broken}"
    );
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

/// Item 5: svc's second destination holds another key. The dry run reads
/// it and refuses, naming it, with the exit code of the real run, which
/// refuses the same way before it makes a key. Before, the dry run said
/// `[would] rotate …` and exited 0; the real run made a key, found the
/// mismatch and undid it.
#[tokio::test]
async fn a_dry_run_reads_every_destination_and_refuses_as_the_real_run_does() {
    let m = Member::new().await;
    put_param(&m.ssm, "/ci/svc-a", &m.key).await;
    let another = m.account.seeder.service_user("another", 100).await;
    put_param(&m.ssm, "/ci/svc", &another).await;
    let to = ["--to", "ssm:/ci/svc-a", "--to", "ssm:/ci/svc"];
    let refusal = format!(
        "ssm:/ci/svc holds {}, not the key {} being rotated",
        masked(&another.access_key_id),
        masked(&m.key.access_key_id),
    );
    let unchanged = || async {
        assert_eq!(m.account.keys("svc").await.len(), 1, "no key made");
        assert_eq!(
            param_key(&m.ssm, "/ci/svc-a").await.access_key_id,
            m.key.access_key_id
        );
        assert_eq!(
            param_key(&m.ssm, "/ci/svc").await.access_key_id,
            another.access_key_id
        );
    };

    let dry = m.runner.rotate(&svc_in(
        &m.account.account_id,
        &[&to[..], &["--dry-run"]].concat(),
    ));
    assert_eq!(code(&dry), 2, "{}", said(&dry));
    assert!(stderr(&dry).contains(&refusal), "{}", said(&dry));
    assert!(!stdout(&dry).contains("[would]"), "{}", said(&dry));
    unchanged().await;

    let json = m.runner.rotate(&svc_in(
        &m.account.account_id,
        &[&to[..], &["--dry-run", "-o", "json"]].concat(),
    ));
    assert_eq!(code(&json), 2, "{}", said(&json));
    // A dry run's JSON is its plan: the user skipped, refused, with why.
    let plan = json_out(&json);
    assert_eq!(plan["schema"], "rekey.plan/1", "{plan}");
    let skip = &plan["actions"][0];
    assert_eq!(skip["action"], "skip", "{plan}");
    assert_eq!(skip["reason"]["reason"], "refused", "{plan}");
    assert!(
        skip["reason"]["why"].as_str().unwrap().contains(&refusal),
        "{plan}"
    );

    let real = m.runner.rotate(&svc_in(&m.account.account_id, &to));
    assert_eq!(code(&real), code(&dry), "{}", said(&real));
    assert!(stderr(&real).contains(&refusal), "{}", said(&real));
    unchanged().await;
    assert!(history(&m.runner).is_empty(), "refused before it began");
}

/// `rotate --service` honours `[policy] max_age` of `--config` (a 0-day
/// key is not due under 30d; a 100-day one is), and a bad value there is
/// named by its rekey.toml key and file, before anything changes.
#[tokio::test]
async fn service_rotation_follows_the_policy_max_age_of_rekey_toml() {
    let m = Member::new().await;
    let fresh = m.account.user_in_secret("fresh", 0).await;
    let old = m.account.user_in_secret("old", 100).await;
    let config = m.runner.file("rekey.toml", "[policy]\nmax_age = \"30d\"\n");
    let out = m.service(&["--config", config.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let text = stdout(&out);
    assert!(
        text.contains("user fresh in account") && text.contains("[not due]"),
        "{text}"
    );
    assert_eq!(
        secret_current(&m.account.secrets, "fresh").await["AccessKeyId"],
        fresh.access_key_id.as_str()
    );
    assert_ne!(
        secret_current(&m.account.secrets, "old").await["AccessKeyId"],
        old.access_key_id.as_str()
    );

    let bad = m.runner.file("bad.toml", "[policy]\nmax_age = \"abc\"\n");
    let out = m.service(&["--config", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        stderr(&out).contains(&format!("{} [policy] max_age: `abc`", bad.display())),
        "{}",
        said(&out)
    );
    assert_eq!(m.account.keys("fresh").await.len(), 1);
}

/// `rekey rotate` with nothing to rotate names the three ways to say what
/// (the top-level help names them too); `--concurrency 0` is refused as
/// audit refuses it; `--service` finding no bound user says so.
#[tokio::test]
async fn a_run_with_nothing_to_rotate_says_what_it_can_rotate() {
    let m = Member::new().await;
    let bare = m.runner.home.rekey(&["rotate"]);
    assert_eq!(code(&bare), 2, "{}", said(&bare));
    for mode in ["--profile", "--account", "--user", "--to", "--service"] {
        assert!(stderr(&bare).contains(mode), "{mode}: {}", said(&bare));
    }
    let help = stdout(&m.runner.home.rekey(&["--help"]));
    for mode in ["--profile", "--user", "--service"] {
        assert!(help.contains(mode), "{mode}: {help}");
    }

    let zero = m.service(&["--concurrency", "0"]);
    assert_eq!(code(&zero), 2, "{}", said(&zero));
    assert!(
        stderr(&zero).contains("--concurrency must be at least 1"),
        "{}",
        said(&zero)
    );
    assert!(!m.runner.journal().exists());

    let none = m.service(&[]);
    assert_eq!(code(&none), 0, "{}", said(&none));
    assert!(
        stdout(&none).contains("no bound service users in 1 account"),
        "{}",
        said(&none)
    );
}

/// The wait for IAM to accept a new key is shown on a terminal only: a
/// run whose stderr is a pipe (cron, a log) prints no progress line, even
/// with -v, while its verification waits; on a terminal, each wait says
/// which key (masked) and how far it got. Before, a rotation was silent
/// for as long as IAM took.
#[tokio::test]
async fn the_wait_for_iam_shows_on_a_terminal_only() {
    let m = Member::new().await;
    create_secret(&m.secrets, "ci/svc", &m.key).await;
    let tty_key = m.account.seeder.service_user("tty", 100).await;
    create_secret(&m.secrets, "ci/tty", &tty_key).await;
    moto().new_key_delay(&m.account.account_id, 1.5, false, true);
    let out = m.runner.rotate(&svc_in(
        &m.account.account_id,
        &["--to", "secretsmanager:ci/svc", "-v"],
    ));
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(stdout(&out).contains("[rotated]"), "{}", said(&out));
    assert!(!said(&out).contains("waiting for IAM"), "{}", said(&out));

    let shown = on_terminal(m.runner.rotate_command(&[
        "--account",
        &m.account.account_id,
        "--user",
        "tty",
        "--role",
        ROLE,
        "--to",
        "secretsmanager:ci/tty",
    ]));
    moto().new_key_delay(&m.account.account_id, 0.0, false, true);
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert_eq!(shown.status.code(), Some(0), "{text}");
    let new = secret_current(&m.secrets, "ci/tty").await;
    let new = new["AccessKeyId"].as_str().unwrap();
    for step in ["(0/3)", "(2/3)"] {
        let line = format!("waiting for IAM to accept {} {step}", masked(new));
        assert!(text.contains(&line), "{line}: {text}");
    }
    assert!(!text.contains(new), "the key ID is masked: {text}");
}

/// Runs `cmd` with a terminal as its stdin, stdout and stderr (util-linux
/// `script`); its output, both streams, is the answer's stdout.
fn on_terminal(cmd: std::process::Command) -> std::process::Output {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_str().unwrap().replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect();
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line.join(" "), "/dev/null"]);
    for (name, value) in cmd.get_envs() {
        match value {
            Some(v) => script.env(name, v),
            None => script.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        script.current_dir(dir);
    }
    script
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script (util-linux)")
}
