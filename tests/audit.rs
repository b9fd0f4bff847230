//! `rekey audit` end to end against the emulator.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{
    Home, Seeder, code, inactive, json_out, key, member_config, member_seeder, moto, sdk_config,
    seed_members, stderr, stdout,
};

/// (user, key id) → (verdict, findings) for every key of a JSON report.
fn verdicts(report: &Value) -> BTreeSet<(String, String, String, String)> {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let findings: Vec<&str> = k["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            (
                k["account_id"].as_str().unwrap().to_string(),
                k["user_name"].as_str().unwrap().to_string(),
                k["verdict"].as_str().unwrap().to_string(),
                findings.join(","),
            )
        })
        .collect()
}

fn key_of<'a>(report: &'a Value, user: &str) -> Vec<&'a Value> {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["user_name"] == user)
        .collect()
}

fn account<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == id)
        .unwrap_or_else(|| panic!("account {id} not in {report}"))
}

#[tokio::test]
async fn org_audit_finds_every_key_in_every_member_account() {
    let org = moto().new_org(3);
    let mgmt = Seeder::new(&org.management_account_id, &sdk_config(&org.admin));
    mgmt.user("ops-old", "/", &[], &[], &[key(120, Some(1))])
        .await;
    let mut expected = vec![(
        org.management_account_id.clone(),
        "ops-old".to_string(),
        "non_compliant",
        "too_old",
    )];
    for (i, m) in org.members.iter().enumerate() {
        let s = member_seeder(&org, &m.account_id).await;
        s.user("fresh", "/", &[], &[], &[key(10, Some(1))]).await;
        s.user("idle", "/", &[], &[], &[key(60 + i as i64, None)])
            .await;
        s.user("twice", "/", &[], &[], &[key(5, Some(0)), key(6, Some(0))])
            .await;
        expected.push((m.account_id.clone(), "fresh".into(), "compliant", ""));
        expected.push((
            m.account_id.clone(),
            "idle".into(),
            "non_compliant",
            "unused",
        ));
        expected.push((
            m.account_id.clone(),
            "twice".into(),
            "non_compliant",
            "two_active_keys",
        ));
        expected.push((
            m.account_id.clone(),
            "twice".into(),
            "non_compliant",
            "two_active_keys",
        ));
    }
    let home = Home::new().with_base(&org.admin);
    let out = home.rekey(&[
        "audit",
        "--org",
        "--role",
        "OrganizationAccountAccessRole",
        "--output",
        "json",
    ]);
    assert_eq!(code(&out), 1, "findings → exit 1\n{}", stderr(&out));
    let report = json_out(&out);
    assert_eq!(
        report["accounts"].as_array().unwrap().len(),
        4,
        "management + 3 members"
    );
    for a in report["accounts"].as_array().unwrap() {
        assert_eq!(a["status"], "ok", "{a}");
    }
    assert_eq!(
        account(&report, &org.management_account_id)["via"],
        "base credentials"
    );
    let got: BTreeSet<_> = verdicts(&report)
        .into_iter()
        .filter(|(_, u, _, _)| u != "org-admin")
        .collect();
    let want: BTreeSet<_> = expected
        .into_iter()
        .map(|(a, u, v, f)| (a, u, v.to_string(), f.to_string()))
        .collect();
    assert_eq!(got, want);
    // Full IDs and ages in JSON.
    let old = key_of(&report, "ops-old")[0];
    assert!(old["access_key_id"].as_str().unwrap().starts_with("AKIA"));
    assert_eq!(old["age_days"], 120);
    assert_eq!(old["status"], "Active");
    assert_eq!(report["summary"]["accounts_failed"], 0);
}

#[tokio::test]
async fn org_audit_narrowed_by_exclude_reports_only_the_rest() {
    let org = moto().new_org(2);
    let home = Home::new().with_base(&org.admin);
    let skip = &org.members[0].account_id;
    let out = home.rekey(&[
        "audit",
        "--org",
        "--role",
        "OrganizationAccountAccessRole",
        "--exclude-account",
        skip,
        "--output",
        "json",
    ]);
    let report = json_out(&out);
    let ids: BTreeSet<&str> = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(skip.as_str()));
    assert!(ids.contains(org.members[1].account_id.as_str()));
    assert!(ids.contains(org.management_account_id.as_str()));
}

#[tokio::test]
async fn a_member_without_the_role_is_reported_and_the_others_audited() {
    let org = moto().new_org(2);
    let broken = &org.members[0].account_id;
    let fine = &org.members[1].account_id;
    // Only `fine` has the audit role; `broken` never got it.
    let role = "AuditRole";
    let iam = aws_sdk_iam::Client::new(&member_config(&org, fine).await);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}}]}}"#,
        org.management_account_id
    );
    iam.create_role()
        .role_name(role)
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("create role");
    iam.put_role_policy()
        .role_name(role)
        .policy_name("audit")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#)
        .send()
        .await
        .expect("role policy");

    member_seeder(&org, fine)
        .await
        .user("fine", "/", &[], &[], &[key(1, Some(0))])
        .await;

    let home = Home::new().with_base(&org.admin);
    let out = home.rekey(&["audit", "--org", "--role", role, "--output", "json"]);
    assert_eq!(code(&out), 2, "an account failed → exit 2");
    let report = json_out(&out);
    let bad = account(&report, broken);
    assert_eq!(bad["status"], "error");
    assert!(
        bad["error"].as_str().unwrap().contains("AssumeRole"),
        "{bad}"
    );
    assert_eq!(account(&report, fine)["status"], "ok");
    assert_eq!(key_of(&report, "fine").len(), 1);
    assert_eq!(report["summary"]["accounts_failed"], 1);
}

#[tokio::test]
async fn profiles_are_audited_once_per_account() {
    let a = moto().new_account();
    let b = moto().new_account();
    Seeder::new(&a.account_id, &sdk_config(&a.admin))
        .user("dev", "/", &[], &[], &[key(100, Some(2))])
        .await;
    let home = Home::new();
    home.add_profile("a", &a.admin);
    home.add_profile("a-again", &a.admin);
    home.add_profile("b", &b.admin);
    let out = home.rekey(&[
        "audit",
        "--profile",
        "a",
        "--profile",
        "a-again",
        "--profile",
        "b",
        "--output",
        "json",
    ]);
    let report = json_out(&out);
    let accounts = report["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    // Both profiles are named: the merge is reported (issue 10 #1).
    assert_eq!(
        account(&report, &a.account_id)["via"],
        "profiles a, a-again"
    );
    let dev = key_of(&report, "dev");
    assert_eq!(dev.len(), 1);
    assert_eq!(dev[0]["findings"][0], "too_old");
    assert_eq!(code(&out), 1);
}

#[tokio::test]
async fn an_account_list_file_is_entered_through_the_role() {
    let org = moto().new_org(2);
    seed_members(&org, "listed", key(3, Some(1))).await;
    let home = Home::new().with_base(&org.admin);
    let file = home.path().join("accounts.txt");
    std::fs::write(
        &file,
        format!(
            "# production\n{}  # first\n\n{}\n",
            org.members[0].account_id, org.members[1].account_id
        ),
    )
    .unwrap();
    let out = home.rekey(&[
        "audit",
        "--accounts",
        file.to_str().unwrap(),
        "--role",
        "OrganizationAccountAccessRole",
        "--output",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json_out(&out);
    assert_eq!(report["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(key_of(&report, "listed").len(), 2);
    assert_eq!(
        account(&report, &org.members[0].account_id)["via"],
        "role OrganizationAccountAccessRole"
    );
}

#[tokio::test]
async fn exemptions_by_tag_group_name_and_path() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    let old = [key(200, Some(1))];
    s.user("tagged", "/", &[("rekey:exempt", "true")], &[], &old)
        .await;
    s.user("custom-tagged", "/", &[("no-rotate", "true")], &[], &old)
        .await;
    s.user("glass", "/", &[], &["break-glass"], &old).await;
    s.user("svc-legacy", "/", &[], &[], &old).await;
    s.user("pathy", "/system/", &[], &[], &old).await;
    s.user("plain", "/", &[], &[], &old).await;
    let home = Home::new().with_base(&acct.admin);
    let out = home.rekey(&[
        "audit",
        "--exempt-group",
        "break-glass",
        "--exempt-user",
        "svc-*",
        "--exempt-user",
        "/system/*",
        "--output",
        "json",
    ]);
    let report = json_out(&out);
    let reason = |u: &str| {
        key_of(&report, u)[0]["exempt_reason"]
            .as_str()
            .map(str::to_string)
    };
    for u in ["tagged", "glass", "svc-legacy", "pathy"] {
        let k = key_of(&report, u)[0];
        assert_eq!(k["verdict"], "exempt", "{u}: {k}");
        assert_eq!(k["findings"][0], "too_old", "the finding stays visible");
    }
    assert!(reason("tagged").unwrap().contains("rekey:exempt"));
    assert!(reason("glass").unwrap().contains("break-glass"));
    assert!(reason("svc-legacy").unwrap().contains("svc-*"));
    assert!(reason("pathy").unwrap().contains("/system/*"));
    assert_eq!(key_of(&report, "plain")[0]["verdict"], "non_compliant");
    assert_eq!(
        key_of(&report, "custom-tagged")[0]["verdict"],
        "non_compliant"
    );
    // A configurable tag key, from rekey.toml.
    let cfg = home.path().join("rekey.toml");
    std::fs::write(&cfg, "[policy]\nexempt_tag = \"no-rotate\"\n").unwrap();
    let out = home.rekey(&[
        "audit",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let report = json_out(&out);
    assert_eq!(key_of(&report, "custom-tagged")[0]["verdict"], "exempt");
    assert_eq!(key_of(&report, "tagged")[0]["verdict"], "non_compliant");
}

#[tokio::test]
async fn as_of_judges_keys_at_a_later_moment() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    s.user("soon", "/", &[], &[], &[key(70, Some(0))]).await;
    let home = Home::new().with_base(&acct.admin);
    let now = json_out(&home.rekey(&["audit", "--output", "json"]));
    assert_eq!(key_of(&now, "soon")[0]["verdict"], "compliant");
    let later = home.rekey(&[
        "audit", "--as-of", "+30d", "--unused", "365d", "--output", "json",
    ]);
    let later_report = json_out(&later);
    let k = key_of(&later_report, "soon")[0];
    assert_eq!(k["verdict"], "non_compliant");
    assert_eq!(k["age_days"], 100);
    assert_eq!(k["findings"], serde_json::json!(["too_old"]));
    assert_eq!(code(&later), 1);
}

#[tokio::test]
async fn both_sources_give_the_same_verdicts_and_report_is_cheaper() {
    let acct = moto().new_account();
    moto().root_keys(&acct.account_id, &[(true, 400)]);
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    for i in 0..6 {
        s.user(
            &format!("u{i}"),
            "/",
            &[],
            &[],
            &[key(30 * i, if i % 2 == 0 { Some(i) } else { None })],
        )
        .await;
    }
    s.user("both", "/", &[], &[], &[inactive(300), key(100, Some(1))])
        .await;
    s.user("nokeys", "/", &[], &[], &[]).await;
    let home = Home::new().with_base(&acct.admin);
    let report = json_out(&home.rekey(&["audit", "--source", "report", "--output", "json"]));
    let api = json_out(&home.rekey(&["audit", "--source", "api", "--output", "json"]));
    let strip_root = |v: &Value| {
        verdicts(v)
            .into_iter()
            .filter(|(_, u, _, _)| u != "<root_account>")
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(strip_root(&report), strip_root(&api));
    for r in [&report, &api] {
        let root = key_of(r, "<root_account>");
        assert_eq!(root.len(), 1, "root key in {}", r["source"]);
        assert!(
            root[0]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "root_key")
        );
    }
    // Only the report knows the root key's age.
    assert_eq!(key_of(&report, "<root_account>")[0]["age_days"], 400);
    let calls = |r: &Value| account(r, &acct.account_id)["aws_calls"].as_u64().unwrap();
    // 8 users with keys: report ≈ 4 + 8, api ≈ 1 + 8·4 + keys + 1.
    assert!(
        calls(&report) <= 4 + 8 + 2,
        "report source made {} calls",
        calls(&report)
    );
    assert!(
        calls(&api) > calls(&report),
        "api {} vs report {}",
        calls(&api),
        calls(&report)
    );
}

#[tokio::test]
async fn config_and_trusted_advisor_views_use_their_own_words() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    s.user("green", "/", &[], &[], &[key(10, Some(1))]).await;
    s.user("yellow", "/", &[], &[], &[key(100, Some(1))]).await;
    s.user("red", "/", &[], &[], &[key(800, Some(1))]).await;
    s.user("retired", "/", &[], &[], &[inactive(500)]).await;
    let home = Home::new().with_base(&acct.admin);
    let config = json_out(&home.rekey(&["audit", "--view", "config", "--output", "json"]));
    assert_eq!(config["view"], "config");
    let eval = |u: &str| {
        config["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["user_name"] == u)
            .unwrap_or_else(|| panic!("{u} in {config}"))
            .clone()
    };
    assert_eq!(eval("green")["compliance_type"], "COMPLIANT");
    assert_eq!(eval("yellow")["compliance_type"], "NON_COMPLIANT");
    assert_eq!(
        eval("retired")["compliance_type"],
        "COMPLIANT",
        "inactive keys do not count"
    );
    assert_eq!(eval("red")["max_access_key_age"], 90);
    let ta = json_out(&home.rekey(&["audit", "--view", "trusted-advisor", "--output", "json"]));
    let status = |u: &str| {
        ta["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["iam_user"] == u)
            .map(|k| k["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("green").as_deref(), Some("green"));
    assert_eq!(status("yellow").as_deref(), Some("yellow"));
    assert_eq!(status("red").as_deref(), Some("red"));
    assert_eq!(
        status("retired"),
        None,
        "Trusted Advisor checks active keys only"
    );
}

#[tokio::test]
async fn every_output_format_parses_back() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    let ids = s.user("alice", "/", &[], &[], &[key(120, Some(1))]).await;
    let full = &ids[0];
    let masked = format!("{}…{}", &full[..4], &full[full.len() - 4..]);
    let home = Home::new().with_base(&acct.admin);

    let table = stdout(&home.rekey(&["audit", "--output", "table"]));
    assert!(
        table.contains(&masked) && !table.contains(full.as_str()),
        "{table}"
    );
    assert!(table.contains("alice") && table.contains("too_old"));

    let csv_text = stdout(&home.rekey(&["audit", "--output", "csv"]));
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name} in {headers:?}"))
    };
    let alice = rows
        .iter()
        .find(|r| &r[col("user_name")] == "alice")
        .expect("alice row");
    assert_eq!(&alice[col("access_key_id")], full.as_str());
    assert_eq!(&alice[col("verdict")], "non_compliant");

    let md = stdout(&home.rekey(&["audit", "--output", "markdown"]));
    let alice_rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with('|') && l.contains("alice"))
        .collect();
    assert_eq!(alice_rows.len(), 1, "{md}");
    assert!(alice_rows[0].contains(&masked));

    let html_path = home.path().join("report.html");
    let out = home.rekey(&["audit", "--out", html_path.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).is_empty(), "--out writes the file, not stdout");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") || html.starts_with("<!doctype html>"));
    assert!(html.contains("<svg") && html.contains("alice") && html.contains(&masked));
    assert!(html.contains("console.aws.amazon.com/iam/home#/users/details/alice"));
    assert!(
        !html.contains("<script src") && !html.contains("<link"),
        "self-contained"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_any_output() {
    let acct = moto().new_account();
    let home = Home::new().with_base(&acct.admin);
    home.add_profile("p", &acct.admin);
    for args in [
        vec!["-vv", "audit", "--output", "json"],
        vec!["-vv", "audit", "--profile", "p", "--output", "table"],
        vec!["-vv", "audit", "--profile", "nope"],
    ] {
        let out = home.rekey(&args);
        for text in [stdout(&out), stderr(&out)] {
            assert!(
                !text.contains(&acct.admin.secret_access_key),
                "secret leaked by {args:?}"
            );
        }
    }
}

/// Each bad input: one clear line on stderr, exit 2, nothing written.
#[tokio::test]
async fn bad_input_is_refused_with_a_clear_error_and_nothing_written() {
    let acct = moto().new_account();
    let home = Home::new().with_base(&acct.admin);
    home.add_profile("good", &acct.admin);
    std::fs::write(home.config_path(), "[profile empty]\nregion = us-east-1\n").unwrap();
    let bad_toml = home.path().join("bad.toml");
    std::fs::write(&bad_toml, "[policy]\nmax_age = \"forever\"\n").unwrap();
    let broken_toml = home.path().join("broken.toml");
    std::fs::write(&broken_toml, "[policy\n").unwrap();
    let bad_list = home.path().join("accounts.txt");
    std::fs::write(&bad_list, "111111111111\nnot-an-account\n").unwrap();
    let out_file = home.path().join("out.json");
    let out_arg = out_file.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--profile", "ghost"], "profile `ghost` not found"),
        (
            vec!["--profile", "empty"],
            "profile `empty` has no credentials",
        ),
        (vec!["--config", bad_toml.to_str().unwrap()], "forever"),
        (
            vec!["--config", broken_toml.to_str().unwrap()],
            "broken.toml",
        ),
        (
            vec!["--accounts", bad_list.to_str().unwrap(), "--role", "R"],
            "accounts.txt:2",
        ),
        (vec!["--as-of", "next tuesday"], "--as-of"),
        (vec!["--max-age", "0"], "--max-age"),
        (vec!["--max-age", "ninety"], "--max-age"),
        (vec!["--account", "12345", "--role", "R"], "12345"),
        (vec!["--account", "123456789012"], "--role"),
        (
            vec!["--endpoint-url", "http://127.0.0.1:9", "--profile", "good"],
            "cannot reach the AWS endpoint",
        ),
    ];
    for (args, needle) in cases {
        let mut full = vec!["audit", "--out", out_arg];
        full.extend(args.iter().copied());
        let out = home.rekey(&full);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected `{needle}` in: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(!out_file.exists(), "{args:?} wrote a report");
    }
    // A malformed credentials file is named with its line.
    std::fs::write(
        home.credentials_path(),
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n[good]\n",
    )
    .unwrap();
    let out = home.rekey(&["audit", "--profile", "good"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("credentials") && stderr(&out).contains(":1"),
        "{}",
        stderr(&out)
    );
}

/// Issue 15: a bad value in rekey.toml is named by its file and key, not
/// by the flag that would override it; a `[[service]]` entry without its
/// user is named by its number and account. Nothing is called.
#[tokio::test]
async fn issue15_config_errors_name_the_file_and_its_key() {
    let acct = moto().new_account();
    let home = Home::new().with_base(&acct.admin);
    let calls =
        || moto().control("calls", serde_json::json!({}))["by_account"][&acct.account_id].as_u64();
    let before = calls();
    let cases = [
        (
            "[policy]\nmax_age = \"abc\"\n",
            "[policy] max_age: `abc` is not a number of days",
            "--max-age",
        ),
        (
            "[accounts.\"111111111111\"]\nunused = \"soon\"\n",
            "[accounts.\"111111111111\"] unused: `soon` is not a number of days",
            "--unused",
        ),
        (
            "[audit]\nconcurrency = 0\n",
            "[audit] concurrency must be at least 1",
            "--concurrency",
        ),
        (
            "[[service]]\naccount = \"111111111111\"\nto = [\"ssm:/x\"]\n",
            ": [[service]] entry 1 (account 111111111111): no `user`",
            "missing field",
        ),
    ];
    for (i, (text, says, not)) in cases.into_iter().enumerate() {
        let file = home.path().join(format!("bad{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = home.rekey(&["audit", "--config", file.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{text}: {err}");
        assert!(
            err.contains(&format!(
                "{}{}{says}",
                file.display(),
                if says.starts_with(':') { "" } else { " " }
            )),
            "{text}: expected `{says}` in: {err}"
        );
        assert!(!err.contains(not), "{text}: names `{not}`: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    // A flag's bad value still names the flag.
    let out = home.rekey(&["audit", "--concurrency", "0"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--concurrency must be at least 1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(calls(), before, "no AWS call for bad input");
}

#[tokio::test]
async fn ou_selection_is_recursive_and_leaves_out_the_rest() {
    let org = moto().new_org(3);
    let orgs = aws_sdk_organizations::Client::new(&sdk_config(&org.admin));
    let roots = orgs.list_roots().send().await.expect("list roots");
    let root = roots.roots()[0].id().unwrap().to_string();
    let ou = |parent: String, name: &'static str| {
        let orgs = orgs.clone();
        async move {
            orgs.create_organizational_unit()
                .parent_id(parent)
                .name(name)
                .send()
                .await
                .expect("create OU")
                .organizational_unit()
                .unwrap()
                .id()
                .unwrap()
                .to_string()
        }
    };
    let prod = ou(root.clone(), "prod").await;
    let prod_eu = ou(prod.clone(), "prod-eu").await;
    for (member, dest) in [(&org.members[0], &prod), (&org.members[1], &prod_eu)] {
        orgs.move_account()
            .account_id(&member.account_id)
            .source_parent_id(&root)
            .destination_parent_id(dest)
            .send()
            .await
            .expect("move account");
    }
    let home = Home::new().with_base(&org.admin);
    let out = home.rekey(&["audit", "--org", "--ou", &prod, "--output", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json_out(&out);
    let ids: BTreeSet<&str> = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    let want: BTreeSet<&str> = [
        org.members[0].account_id.as_str(),
        org.members[1].account_id.as_str(),
    ]
    .into();
    assert_eq!(ids, want, "the OU and the OU below it, nothing else");
}

#[tokio::test]
async fn aws_profile_gives_the_base_credentials() {
    let org = moto().new_org(1);
    let home = Home::new();
    home.add_profile("mgmt", &org.admin);
    let mut home = home;
    home.env.push(("AWS_PROFILE".into(), "mgmt".into()));
    let out = home.rekey(&["audit", "--org", "--output", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json_out(&out);
    assert_eq!(report["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(
        account(&report, &org.members[0].account_id)["via"],
        "role OrganizationAccountAccessRole"
    );
    home.env.retain(|(k, _)| k != "AWS_PROFILE");
    home.env.push(("AWS_PROFILE".into(), "nope".into()));
    let out = home.rekey(&["audit", "--org"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("profile `nope` not found"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn throttling_is_retried_and_an_account_throttled_out_fails_alone() {
    let org = moto().new_org(2);
    let (slow, dead) = (&org.members[0].account_id, &org.members[1].account_id);
    seed_members(&org, "u", key(1, Some(0))).await;
    let fail = |account: &str, count: u32| {
        moto().control(
            "fail",
            serde_json::json!({"action": "iam:ListAccessKeys", "account_id": account, "count": count,
                               "status": 400, "code": "Throttling", "message": "Rate exceeded"}),
        );
    };
    fail(slow, 2);
    fail(dead, 50);
    let mut home = Home::new().with_base(&org.admin);
    // Standard mode keeps the test quick: adaptive mode, the default,
    // waits ~20 s per retry of a client that has sent almost nothing.
    home.env.push(("AWS_RETRY_MODE".into(), "standard".into()));
    home.env.push(("AWS_MAX_ATTEMPTS".into(), "3".into()));
    let out = home.rekey(&["audit", "--org", "--output", "json"]);
    moto().control("fail_clear", serde_json::json!({}));
    assert_eq!(code(&out), 2);
    let report = json_out(&out);
    assert_eq!(
        account(&report, slow)["status"],
        "ok",
        "two throttles are retried"
    );
    let failed = account(&report, dead);
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["error_code"], "Throttling");
    assert_eq!(account(&report, &org.management_account_id)["status"], "ok");
}

#[tokio::test]
async fn per_account_overrides_in_rekey_toml_apply_to_that_account_only() {
    let org = moto().new_org(2);
    seed_members(&org, "mid", key(40, Some(0))).await;
    let home = Home::new().with_base(&org.admin);
    let cfg = home.path().join("rekey.toml");
    std::fs::write(
        &cfg,
        format!(
            "[audit]\norg = true\n\n[accounts.\"{}\"]\nmax_age = \"30d\"\n",
            org.members[0].account_id
        ),
    )
    .unwrap();
    let report = json_out(&home.rekey(&[
        "audit",
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        "json",
    ]));
    let verdict = |acct: &str| {
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["account_id"] == acct && k["user_name"] == "mid")
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict(&org.members[0].account_id), "non_compliant");
    assert_eq!(verdict(&org.members[1].account_id), "compliant");
    assert_eq!(
        account(&report, &org.members[0].account_id)["max_age_days"],
        30
    );
    // A flag wins over the file, overrides included.
    let report = json_out(&home.rekey(&[
        "audit",
        "--config",
        cfg.to_str().unwrap(),
        "--max-age",
        "100d",
        "--output",
        "json",
    ]));
    assert_eq!(
        account(&report, &org.members[0].account_id)["max_age_days"],
        100
    );
}

/// (user, key id, verdict, findings) of every key of a JSON report.
fn key_verdicts(report: &Value) -> BTreeSet<(String, String, String, String)> {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["user_name"].as_str().unwrap().to_string(),
                k["access_key_id"].as_str().unwrap_or("").to_string(),
                k["verdict"].as_str().unwrap().to_string(),
                k["findings"].to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_credential_report_hours_old_still_shows_todays_users_and_keys() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    s.user("steady", "/", &[], &[], &[key(100, Some(2))]).await;
    s.user("grows", "/", &[], &[], &[key(10, Some(1))]).await;
    let gone = s.user("gone", "/", &[], &[], &[key(120, Some(1))]).await;
    s.user("keyless", "/", &[], &[], &[]).await;
    // IAM made the report two hours ago and serves it until it is four
    // hours old; everything below happened since.
    moto().report_age(&acct.account_id, 2);
    s.iam
        .delete_access_key()
        .user_name("gone")
        .access_key_id(&gone[0])
        .send()
        .await
        .expect("delete key");
    let grown = s.add_key("grows", 200, true).await;
    s.user("newcomer", "/", &[], &[], &[key(95, None)]).await;
    let late = s.add_key("keyless", 300, true).await;

    let home = Home::new().with_base(&acct.admin);
    let out = home.rekey(&["audit", "--source", "report", "--output", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let stale = key_verdicts(&json_out(&out));
    let out = home.rekey(&["audit", "--source", "api", "--output", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let api = key_verdicts(&json_out(&out));

    let of = |set: &BTreeSet<(String, String, String, String)>, user: &str| {
        set.iter()
            .filter(|k| k.0 == user)
            .map(|k| (k.1.clone(), k.2.clone(), k.3.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(of(&stale, "gone"), vec![], "a key deleted since the report");
    assert_eq!(
        of(&stale, "newcomer")
            .iter()
            .map(|k| k.2.as_str())
            .collect::<Vec<_>>(),
        vec![r#"["too_old","unused"]"#],
        "a user created since the report is looked up"
    );
    assert!(
        of(&stale, "grows")
            .iter()
            .any(|k| k.0 == grown.access_key_id && k.2 == r#"["too_old","two_active_keys"]"#),
        "a key added since the report: {:?}",
        of(&stale, "grows")
    );
    // README: a key made since the report for a user it shows without keys
    // is missed until the next report.
    assert_eq!(of(&stale, "keyless"), vec![]);
    let mut expected = api.clone();
    expected.retain(|k| k.1 != late.access_key_id);
    assert_eq!(
        stale, expected,
        "apart from that, the same verdicts as the API"
    );

    // Past four hours, IAM makes a new report: now it has everything.
    moto().report_age(&acct.account_id, 5);
    let out = home.rekey(&["audit", "--source", "report", "--output", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(key_verdicts(&json_out(&out)), api);
}

/// Requests the emulator has received, signed by keys of `account_id`.
fn requests_of(account_id: &str) -> u64 {
    moto().control("calls", serde_json::json!({}))["by_account"][account_id]
        .as_u64()
        .unwrap_or(0)
}

/// Issue 9, item 12: `--source api` judged the same keys as the report
/// source but made 3.8 requests per key; the per-user boto3 script it
/// replaces needs about 2.
#[tokio::test]
async fn issue_9_api_source_matches_the_report_at_two_requests_per_key() {
    let acct = moto().new_account();
    let s = Seeder::new(&acct.account_id, &sdk_config(&acct.admin));
    let old = key(200, Some(1));
    s.user(
        "tagged",
        "/",
        &[("rekey:exempt", "true"), ("team", "ops")],
        &[],
        &[old],
    )
    .await;
    s.user("not-exempt", "/", &[("rekey:exempt", "false")], &[], &[old])
        .await;
    s.user(
        "glass",
        "/",
        &[],
        &["break-glass", "devs"],
        &[old, inactive(300)],
    )
    .await;
    s.user("svc-batch", "/", &[], &[], &[old]).await;
    s.user("sysuser", "/system/", &[], &[], &[old, key(3, Some(0))])
        .await;
    s.user("deep", "/team/a/", &[("team", "web")], &["devs"], &[old])
        .await;
    s.user(
        "dev",
        "/",
        &[],
        &["devs"],
        &[inactive(300), key(100, Some(1))],
    )
    .await;
    s.user("twice", "/", &[], &[], &[key(5, Some(0)), key(6, Some(0))])
        .await;
    s.user("idle", "/", &[], &[], &[key(60, None)]).await;
    s.user("fresh", "/", &[], &[], &[key(10, Some(1))]).await;
    s.user("nokeys", "/", &[], &["devs"], &[]).await;
    let home = Home::new().with_base(&acct.admin);
    let audit = |source: &str| {
        let out = home.rekey(&[
            "audit",
            "--source",
            source,
            "--exempt-group",
            "break-glass",
            "--exempt-user",
            "svc-*",
            "--exempt-user",
            "/system/*",
            "--output",
            "json",
        ]);
        assert_eq!(code(&out), 1, "{source}: {}", stderr(&out));
        json_out(&out)
    };
    // What a user compares between the two: who, which key, and the verdict
    // with its reasons. (The admin key's last use moves with every run.)
    let judged = |report: &Value| -> BTreeSet<String> {
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let fields = [
                    "user_name",
                    "user_arn",
                    "path",
                    "groups",
                    "tags",
                    "access_key_id",
                    "status",
                    "created",
                    "verdict",
                    "findings",
                    "exempt_reason",
                ];
                fields.map(|f| format!("{f}={}", k[f])).join(" ")
            })
            .collect()
    };
    let report = audit("report");
    let before = requests_of(&acct.account_id);
    let api = audit("api");
    let requests = requests_of(&acct.account_id) - before;

    assert_eq!(judged(&report), judged(&api));
    for (user, verdict) in [
        ("tagged", "exempt"),
        ("glass", "exempt"),
        ("svc-batch", "exempt"),
        ("sysuser", "exempt"),
        ("not-exempt", "non_compliant"),
        ("deep", "non_compliant"),
        ("fresh", "compliant"),
    ] {
        assert_eq!(key_of(&api, user)[0]["verdict"], verdict, "{user}");
    }
    assert_eq!(key_of(&api, "deep")[0]["path"], "/team/a/");
    assert_eq!(key_of(&api, "deep")[0]["tags"]["team"], "web");
    assert_eq!(account(&api, &acct.account_id)["users"], 12);
    let keys = api["keys"].as_array().unwrap().len();
    assert_eq!(keys, 15, "keys in {api}");
    assert!(
        requests * 10 <= keys as u64 * 21,
        "--source api made {requests} requests for {keys} keys ({:.2} per key; at most 2.1 expected)",
        requests as f64 / keys as f64
    );
}

#[tokio::test]
async fn a_user_deleted_while_its_account_is_read_is_left_out_not_an_account_failure() {
    // IAM is not a snapshot: a user listed a moment ago can be gone when
    // its keys are asked for; IAM then answers NoSuchEntity.
    let org = moto().new_org(1);
    let member = &org.members[0].account_id;
    let seeder = member_seeder(&org, member).await;
    for user in ["stays-1", "goes", "stays-2"] {
        seeder.user(user, "/", &[], &[], &[key(120, Some(1))]).await;
    }
    for source in ["report", "api"] {
        moto().control(
            "fail",
            serde_json::json!({"action": "iam:ListAccessKeys", "account_id": member,
                               "user_name": "goes", "count": 1, "status": 404,
                               "code": "NoSuchEntity",
                               "message": "The user with name goes cannot be found."}),
        );
        let home = Home::new().with_base(&org.admin);
        let out = home.rekey(&["audit", "--org", "--source", source, "--output", "json"]);
        moto().control("fail_clear", serde_json::json!({}));
        let report = json_out(&out);
        assert_eq!(
            account(&report, member)["status"],
            "ok",
            "{source}: {}",
            stderr(&out)
        );
        let users: BTreeSet<&str> = report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["account_id"] == member.as_str())
            .map(|k| k["user_name"].as_str().unwrap())
            .collect();
        assert_eq!(users, BTreeSet::from(["stays-1", "stays-2"]), "{source}");
        // The two keys left are 120 days old: non-compliant, exit 1 as ever.
        assert_eq!(code(&out), 1, "{source}: {}", stderr(&out));
    }
}
