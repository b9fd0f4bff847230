//! What the README promises, kept (issue 10): the right account per
//! profile, every documented `--as-of` form, the exit code of the view asked
//! for, errors that name the flag given, `--ou` without `--org`, rekey.toml's
//! paths, CSV safe to open, the scheduled job's journal, tables that fit.

use serde_json::Value;

use crate::support::{
    Creds, Home, Seeder, code, json_out, key, member_seeder, moto, sdk_config, stderr, stdout,
};

/// What a user may do to audit an account.
const AUDIT_ACTIONS: &[&str] = &["iam:*", "sts:GetCallerIdentity"];

fn accounts(report: &Value) -> Vec<(String, String)> {
    report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["account_id"].as_str().unwrap_or("-").to_string(),
                a["via"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn users(report: &Value) -> Vec<String> {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["user_name"].as_str().unwrap().to_string())
        .collect()
}

/// Issue 10 #1: `--profile` uses the profile's own keys, as `aws --profile`
/// does, even when AWS_ACCESS_KEY_ID names another account.
#[tokio::test]
async fn issue10_a_named_profile_audits_its_own_account_despite_env_keys() {
    let (dev, prod, env) = (
        moto().new_account(),
        moto().new_account(),
        moto().new_account(),
    );
    // A second profile of dev's account: reported as such, not dropped.
    let dev2 = Seeder::new(&dev.account_id, &sdk_config(&dev.admin))
        .user_with_key("auditor", AUDIT_ACTIONS, 1)
        .await;
    let home = Home::new().with_base(&env.admin);
    home.add_profile("dev", &dev.admin);
    home.add_profile("prod", &prod.admin);
    home.add_profile("dev2", &dev2);

    let out = home.rekey(&[
        "audit",
        "--profile",
        "dev",
        "--profile",
        "prod",
        "--profile",
        "dev2",
        "--output",
        "json",
    ]);
    let report = json_out(&out);
    let mut want = vec![
        (dev.account_id.clone(), "profiles dev, dev2".to_string()),
        (prod.account_id.clone(), "profile prod".to_string()),
    ];
    want.sort();
    let mut got = accounts(&report);
    got.sort();
    assert_eq!(got, want, "{}", stderr(&out));
    let whoami = home.aws(&["sts", "get-caller-identity", "--profile", "prod"]);
    let whoami: Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(whoami["Account"], prod.account_id.as_str());
}

/// Issue 10 #2: every documented `--as-of` form works as written, and a key
/// that did not exist yet on that date is not judged.
#[tokio::test]
async fn issue10_as_of_forms_and_keys_not_yet_created() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    s.user("old-timer", "/", &[], &[], &[key(100, Some(1))])
        .await;
    s.user("newcomer", "/", &[], &[], &[key(10, Some(1))]).await;
    let home = Home::new().with_base(&acct.admin);

    for form in [["--as-of", "-30d"], ["--as-of", "+0d"]] {
        let out = home.rekey(&["audit", form[0], form[1], "--output", "json"]);
        assert_ne!(code(&out), 2, "{form:?}: {}", stderr(&out));
    }
    let out = home.rekey(&["audit", "--as-of", "-30d", "--output", "json"]);
    let report = json_out(&out);
    let seen = users(&report);
    assert!(seen.contains(&"old-timer".to_string()), "{seen:?}");
    assert!(
        !seen.contains(&"newcomer".to_string()),
        "a key made 10 days ago was judged as of 30 days ago: {report}"
    );
    let ta = json_out(&home.rekey(&[
        "audit",
        "--as-of",
        "-30d",
        "--view",
        "trusted-advisor",
        "--output",
        "json",
    ]));
    assert!(!ta.to_string().contains("newcomer"), "{ta}");
    let config = json_out(&home.rekey(&[
        "audit", "--as-of", "-30d", "--view", "config", "--output", "json",
    ]));
    assert!(!config.to_string().contains("newcomer"), "{config}");
}

/// Issue 10 #3: the exit code follows the view asked for.
#[tokio::test]
async fn issue10_the_exit_code_follows_the_view() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    s.user(
        "legacy",
        "/",
        &[("rekey:exempt", "true")],
        &[],
        &[key(120, Some(1))],
    )
    .await;
    let home = Home::new().with_base(&acct.admin);
    let run = |view: &str| {
        let out = home.rekey(&["audit", "--view", view, "--output", "json"]);
        (code(&out), stdout(&out))
    };
    let (keys, text) = run("keys");
    assert_eq!(keys, 0, "the key is exempt: {text}");
    let (config, text) = run("config");
    assert!(text.contains("NON_COMPLIANT"), "{text}");
    assert_eq!(config, 1, "config shows NON_COMPLIANT: {text}");
    let (advisor, text) = run("trusted-advisor");
    assert!(text.contains("yellow"), "{text}");
    assert_eq!(advisor, 1, "trusted advisor shows yellow: {text}");
}

/// Issue 10 #4 and #5: bad selector input names the flag that was given;
/// `--ou` without `--org` is an error, before any AWS call.
#[test]
fn issue10_selector_errors_name_the_flag_given() {
    let home = Home::new();
    let out = home.rekey(&["audit", "--exclude-account", "1234"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("--exclude-account"), "{err}");
    assert!(!err.contains("`--account`"), "{err}");
    assert!(err.contains("1234"), "{err}");

    let out = home.rekey(&["audit", "--ou", "ou-ab12-cdef3456"]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("--ou") && err.contains("--org"), "{err}");
}

/// Issue 10 #6: rekey.toml's `accounts_file` is relative to rekey.toml.
#[tokio::test]
async fn issue10_accounts_file_is_found_beside_rekey_toml() {
    let org = moto().new_org(1);
    let member = &org.members[0].account_id;
    member_seeder(&org, member)
        .await
        .user("member-user", "/", &[], &[], &[key(5, Some(1))])
        .await;
    let home = Home::new().with_base(&org.admin);
    let conf = home.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("accounts.txt"), format!("{member}\n")).unwrap();
    std::fs::write(
        conf.join("rekey.toml"),
        "[audit]\naccounts_file = \"accounts.txt\"\nrole = \"OrganizationAccountAccessRole\"\n",
    )
    .unwrap();
    // Run from the home directory, not from conf/.
    let out = home.rekey(&["audit", "--config", "conf/rekey.toml", "--output", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json_out(&out);
    assert_eq!(
        accounts(&report),
        vec![(
            member.clone(),
            "role OrganizationAccountAccessRole".to_string()
        )]
    );
    assert_eq!(users(&report), vec!["member-user"]);
}

/// Issue 10 #7: IAM-legal user names that a spreadsheet would run as
/// formulas are neutralised in every view of `--output csv`.
#[tokio::test]
async fn issue10_csv_cells_never_start_a_formula() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    let names = ["=1+1", "+SUM(A1)", "-2+3", "@cmd"];
    for name in names {
        s.user(name, "/", &[], &[], &[key(100, Some(1))]).await;
    }
    let home = Home::new().with_base(&acct.admin);
    for view in ["keys", "config", "trusted-advisor"] {
        let out = home.rekey(&["audit", "--view", view, "--output", "csv"]);
        let text = stdout(&out);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let mut seen = Vec::new();
        for record in reader.records() {
            for cell in record.unwrap().iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{view}: cell {cell:?} would run in a spreadsheet:\n{text}"
                );
                seen.push(cell.to_string());
            }
        }
        for name in names {
            assert!(
                seen.contains(&format!("'{name}")),
                "{view}: {name} not shown as '{name}:\n{text}"
            );
        }
    }
}

/// The value after `flag` in a unit file's `ExecStart=` line.
fn exec_start_value(service: &str, flag: &str) -> Option<String> {
    let line = service.lines().find(|l| l.starts_with("ExecStart="))?;
    let words: Vec<&str> = line["ExecStart=".len()..]
        .split(' ')
        .map(|w| w.trim_matches('"'))
        .collect();
    let at = words.iter().position(|w| *w == flag)?;
    words.get(at + 1).map(|w| w.to_string())
}

/// Issue 10 #9: the scheduled job names its journal, the same one an
/// interactive run finds by default; the endpoint and profile of the
/// installing shell are frozen only when asked.
#[test]
fn issue10_the_scheduled_job_uses_the_interactive_journal() {
    let mut home = Home::new();
    // A profile the job can rotate (fake: nothing here calls AWS).
    home.add_profile(
        "dev",
        &Creds {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "not-a-secret-emulator-only".into(),
        },
    );
    let state = home.path().join("state");
    home.env
        .push(("XDG_STATE_HOME".into(), state.display().to_string()));
    home.env.push(("AWS_PROFILE".into(), "dev".into()));
    let out = home.rekey(&["schedule", "print", "--systemd", "--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let printed = stdout(&out);
    let journal = state.join("rekey/journal.sqlite3");
    assert_eq!(
        exec_start_value(&printed, "--journal").as_deref(),
        Some(journal.to_str().unwrap()),
        "{printed}"
    );
    // What is frozen, and what is not, is said.
    assert!(
        !printed.contains("Environment=\"AWS_ENDPOINT_URL="),
        "{printed}"
    );
    assert!(!printed.contains("Environment=\"AWS_PROFILE="), "{printed}");
    assert!(printed.contains("AWS_ENDPOINT_URL"), "{printed}");
    assert!(printed.contains("AWS_SHARED_CREDENTIALS_FILE"), "{printed}");
    let out = home.rekey(&[
        "schedule",
        "print",
        "--systemd",
        "--profile",
        "dev",
        "--env",
        "AWS_ENDPOINT_URL",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "Environment=\"AWS_ENDPOINT_URL={}\"",
            moto().endpoint()
        )),
        "{}",
        stdout(&out)
    );
}

/// Issue 10 #10: the table fits the terminal's width (COLUMNS), and piped
/// output has no colour.
#[tokio::test]
async fn issue10_tables_fit_the_width() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    s.user(
        "a-rather-long-user-name-for-a-service",
        "/",
        &[],
        &[],
        &[key(800, Some(1))],
    )
    .await;
    s.user("fresh", "/", &[], &[], &[key(3, Some(1))]).await;
    let home = Home::new().with_base(&acct.admin);
    for view in ["keys", "config", "trusted-advisor"] {
        let out = home.rekey_with(
            &[("COLUMNS", "100")],
            &["audit", "--view", view, "--output", "table"],
        );
        let text = stdout(&out);
        assert!(text.contains("fresh"), "{view}: {text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "{view}: a line of {} characters:\n{text}",
                line.chars().count()
            );
        }
        assert!(!text.contains('\x1b'), "{view}: colour in a pipe:\n{text}");
    }
}
