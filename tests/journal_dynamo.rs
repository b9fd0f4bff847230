//! The DynamoDB journal end to end (issue 18): `rekey journal init` and its
//! checks, bad names refused before anything changes, two machines' runs
//! on one table at once (rotate --service and enforce --apply, twenty
//! times each), a run killed at each step finished by another machine, a
//! SQLite journal copied in, and `history` the same from both backends.

use std::process::Output;

use crate::support::runner::Runner;
use crate::support::stores::{ServiceAccount, secret_key, works};
use crate::support::{
    Creds, ROLE, by_user, code, json_out, moto, said, sdk_config, stderr, stdout,
};

/// A fresh journal table, made by `rekey journal init` as `runner`'s
/// caller; returns `dynamodb:NAME`.
fn new_table(runner: &Runner) -> String {
    let name = format!(
        "rekey-j-{}",
        rekey::journal::RotationId::new(time::OffsetDateTime::now_utc())
    );
    let out = runner.home.rekey(&["journal", "init", "--dynamodb", &name]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    format!("dynamodb:{name}")
}

fn table_name(journal: &str) -> &str {
    journal.strip_prefix("dynamodb:").unwrap()
}

/// Every item of the journal's table, as text: what a secret scan reads.
async fn table_text(caller: &Creds, journal: &str) -> String {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(caller));
    let mut text = String::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table_name(journal))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in page.items() {
            text.push_str(&format!("{item:?}\n"));
        }
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => break,
        }
    }
    text
}

/// The journal holds no secret: none of `secrets` is in any item.
async fn assert_no_secret_in_table(caller: &Creds, journal: &str, secrets: &[String]) {
    let text = table_text(caller, journal).await;
    assert!(
        text.contains("\"doc\""),
        "the scan read the journal's records"
    );
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is in the journal's table"
        );
    }
}

#[tokio::test]
async fn journal_init_is_idempotent_and_refuses_a_table_of_another_shape() {
    let account = moto().new_account();
    let runner = Runner::new(&account.admin);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_config(&account.admin));
    let name = "rekey-journal";
    let first = runner.home.rekey(&["journal", "init", "--dynamodb", name]);
    assert_eq!(code(&first), 0, "{}", said(&first));
    let text = stdout(&first);
    for line in [
        "table rekey-journal: created",
        "billing: PAY_PER_REQUEST",
        "time to live on `expires`: turned on",
        "point-in-time recovery: turned on",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let t = ddb.describe_table().table_name(name).send().await.unwrap();
    let t = t.table().unwrap();
    let key: Vec<(&str, &str)> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(key, [("pk", "HASH"), ("sk", "RANGE")]);
    let ttl = ddb
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires"));
    let pitr = ddb
        .describe_continuous_backups()
        .table_name(name)
        .send()
        .await
        .unwrap();
    let pitr = pitr.continuous_backups_description().unwrap();
    assert_eq!(
        pitr.point_in_time_recovery_description()
            .and_then(|p| p.point_in_time_recovery_status())
            .map(|s| s.as_str()),
        Some("ENABLED")
    );
    // Again: nothing to do, and it says so.
    let again = runner
        .home
        .rekey(&["journal", "init", "--dynamodb", &format!("dynamodb:{name}")]);
    assert_eq!(code(&again), 0, "{}", said(&again));
    let text = stdout(&again);
    assert!(
        text.contains("already a rekey journal") && text.contains("already on"),
        "{text}"
    );

    // A table of another shape: said exactly, and left as it was.
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    ddb.create_table()
        .table_name("orders")
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let refused = runner
        .home
        .rekey(&["journal", "init", "--dynamodb", "orders"]);
    assert_eq!(code(&refused), 2, "{}", said(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains("the DynamoDB table orders is not shaped as a rekey journal")
            && err.contains("it has no key pk (partition, S)")
            && err.contains("it has no key sk (sort, S)")
            && err.contains("its key has id (partition, N)"),
        "{err}"
    );
    let ttl = ddb
        .describe_time_to_live()
        .table_name("orders")
        .send()
        .await
        .unwrap();
    assert_ne!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some("expires"),
        "left as it was"
    );
    // And a run pointed at it writes nothing there.
    let run = runner
        .home
        .rekey(&["history", "--journal", "dynamodb:orders"]);
    assert_eq!(code(&run), 2, "{}", said(&run));
    assert!(
        stderr(&run).contains("not shaped as a rekey journal"),
        "{}",
        said(&run)
    );
}

#[tokio::test]
async fn a_bad_or_missing_dynamodb_journal_is_refused_before_anything_changes() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let old = member.user_in_secret("svc-x", 100).await;
    let runner = Runner::new(&org.admin);
    let rotate = |journal: &str, extra: &[&str]| {
        let mut args = vec![
            "rotate",
            "--service",
            "--account",
            &member.account_id,
            "--role",
            ROLE,
            "--journal",
            journal,
        ];
        args.extend_from_slice(extra);
        runner.home.rekey(&args)
    };
    for (journal, extra, said_) in [
        (
            "dynamodb:ab",
            &[][..],
            "a table name has 3 to 255 characters",
        ),
        ("dynamodb:my journal", &[], "not ` `"),
        (
            "dynamodb:rekey-j?region=Mars",
            &[],
            "`Mars` is not an AWS region name",
        ),
        (
            "dynamodb:rekey-j?consistency=eventual",
            &[],
            "`consistency=eventual` is not an option",
        ),
        (
            "dynamodb:no-such-table",
            &[],
            "the DynamoDB table no-such-table does not exist; create it with `rekey journal init --dynamodb no-such-table`",
        ),
        (
            "/tmp/rekey-test-journal.sqlite3",
            &["--journal-role", "arn:aws:iam::111111111111:role/j"],
            "is for a DynamoDB journal; the journal is the file /tmp/rekey-test-journal.sqlite3",
        ),
    ] {
        let out = rotate(journal, extra);
        assert_ne!(code(&out), 0, "{journal}: {}", said(&out));
        assert!(stderr(&out).contains(said_), "{journal}: {}", said(&out));
        assert!(!stdout(&out).contains("[rotated]"), "{journal}");
    }
    assert_eq!(member.keys("svc-x").await.len(), 1, "no key made");
    assert_eq!(
        secret_key(&member.secrets, "svc-x").await.access_key_id,
        old.access_key_id
    );
    assert!(!std::path::Path::new("/tmp/rekey-test-journal.sqlite3").exists());
}

/// `rotate --service` of the member account's bound users due at 90 days,
/// journaled in `journal`.
fn service_rotation<'a>(account_id: &'a str, journal: &'a str) -> [&'a str; 12] {
    [
        "rotate",
        "--service",
        "--account",
        account_id,
        "--role",
        ROLE,
        "--max-age",
        "90d",
        "--journal",
        journal,
        "--propagation-timeout",
        "20s",
    ]
}

/// The `[rotated]` lines of `user` in runs' stdout.
fn rotated_in(outs: &[Output], user: &str) -> usize {
    outs.iter()
        .filter(|o| {
            stdout(o).lines().any(|l| {
                l.starts_with(&format!("user {user} in account")) && l.contains("[rotated]")
            })
        })
        .count()
}

/// Two machines (two homes, two working directories, one table) run
/// `rotate --service` at once, twenty times over new stale users: each
/// user is rotated exactly once, by one of them.
#[tokio::test]
async fn two_service_runs_on_one_dynamodb_journal_rotate_each_user_once_twenty_times() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let machines = [Runner::new(&org.admin), Runner::new(&org.admin)];
    let journal = new_table(&machines[0]);
    let mut secrets = Vec::new();
    for round in 0..20 {
        let users = [format!("svc-{round}-a"), format!("svc-{round}-b")];
        let mut old: Vec<Creds> = Vec::new();
        for user in &users {
            old.push(member.user_in_secret(user, 100).await);
        }
        secrets.extend(old.iter().map(|c| c.secret_access_key.clone()));
        let args = service_rotation(&member.account_id, &journal);
        let runs: Vec<_> = machines
            .iter()
            .map(|m| m.home.rekey_command(&[], &args).spawn().unwrap())
            .collect();
        let outs: Vec<Output> = runs
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        for out in &outs {
            match code(out) {
                0 => {}
                2 => {
                    for line in stderr(out).lines() {
                        assert!(
                            line.contains("is being rotated by run "),
                            "round {round}: {}",
                            said(out)
                        );
                    }
                }
                other => panic!("round {round}: exit {other}: {}", said(out)),
            }
        }
        for (user, old) in users.iter().zip(&old) {
            let keys = member.keys(user).await;
            assert_eq!(keys.len(), 2, "round {round} {user}: {keys:?}");
            let held = secret_key(&member.secrets, user).await;
            assert_ne!(
                held.access_key_id, old.access_key_id,
                "round {round} {user}"
            );
            assert!(works(&held).await, "round {round} {user}");
            assert_eq!(
                rotated_in(&outs, user),
                1,
                "round {round} {user}: {}\n---\n{}",
                said(&outs[0]),
                said(&outs[1])
            );
        }
    }
    // The table's history: forty rotations, all completed, one per user.
    let out = machines[1].home.rekey(&[
        "history",
        "--journal",
        &journal,
        "--limit",
        "100",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let all = json_out(&out);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 40);
    assert!(all.iter().all(|r| r["outcome"] == "completed"), "{all:?}");
    let mut users: Vec<&str> = all
        .iter()
        .map(|r| r["user_name"].as_str().unwrap())
        .collect();
    users.sort();
    users.dedup();
    assert_eq!(users.len(), 40, "each user once");
    assert_no_secret_in_table(&org.admin, &journal, &secrets).await;
}

/// Two machines run `enforce --apply` at once on one table, twenty times
/// over new stale keys: each key is deactivated by exactly one of them.
#[tokio::test]
async fn two_enforce_applies_on_one_dynamodb_journal_act_once_twenty_times() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let machines = [Runner::new(&org.admin), Runner::new(&org.admin)];
    let journal = new_table(&machines[0]);
    for round in 0..20 {
        let users: Vec<String> = (0..2).map(|j| format!("p{round}-{j}")).collect();
        for (j, user) in users.iter().enumerate() {
            let spec = crate::support::key(110 + j as i64, Some(1));
            member.seeder.user(user, "/", &[], &[], &[spec]).await;
        }
        let runs: Vec<_> = machines
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let run = format!("machine-{i}-round-{round}");
                let args = [
                    "enforce",
                    "--org",
                    "--exclude-account",
                    &org.management_account_id,
                    "--journal",
                    &journal,
                    "--run-id",
                    &run,
                    "--apply",
                    "-o",
                    "json",
                ];
                m.home.rekey_command(&[], &args).spawn().unwrap()
            })
            .collect();
        let outs: Vec<Output> = runs
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let mut done = Vec::new();
        for out in &outs {
            assert!([0, 2].contains(&code(out)), "round {round}: {}", said(out));
            for (result, user) in by_user(&json_out(out)) {
                assert!(
                    ["done", "already_done", "refused"].contains(&result.as_str()),
                    "round {round}: {result} {user}: {}",
                    said(out)
                );
                if result == "done" && users.contains(&user) {
                    done.push(user);
                }
            }
        }
        done.sort();
        assert_eq!(
            done, users,
            "round {round}: each key deactivated by exactly one run"
        );
        for user in &users {
            let keys = member.keys(user).await;
            assert_eq!(keys.len(), 1, "round {round} {user}");
            assert_eq!(keys[0].1, "Inactive", "round {round} {user}");
        }
    }
    let out = machines[0].home.rekey(&[
        "history",
        "--keys",
        "--journal",
        &journal,
        "--limit",
        "200",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let records = json_out(&out);
    let deactivations = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["op"] == "deactivate" && r["phase"] == "done")
        .count();
    assert_eq!(deactivations, 40, "one per key, journaled once");
}

/// `history` says the same from a SQLite journal and from the table it was
/// copied into; the copy refuses a table that is not empty.
#[tokio::test]
async fn history_reads_the_same_from_a_file_and_the_table_it_was_copied_into() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let runner = Runner::new(&org.admin);
    for user in ["svc-h1", "svc-h2"] {
        member.user_in_secret(user, 100).await;
    }
    let file = runner.journal();
    let file = file.to_str().unwrap();
    let out = runner.home.rekey(&[
        "rotate",
        "--service",
        "--account",
        &member.account_id,
        "--role",
        ROLE,
        "--journal",
        file,
        "--propagation-timeout",
        "20s",
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let journal = new_table(&runner);
    // A dry run on the table reads it and writes nothing to it.
    let mut dry = service_rotation(&member.account_id, &journal).to_vec();
    dry.push("--dry-run");
    let out = runner.home.rekey(&dry);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let text = table_text(&org.admin, &journal).await;
    assert!(!text.contains("\"doc\""), "a dry run wrote: {text}");
    let copied = runner
        .home
        .rekey(&["journal", "copy", "--from", file, "--to", &journal]);
    assert_eq!(code(&copied), 0, "{}", said(&copied));
    assert!(
        stdout(&copied).contains("copied 2 rotations (0 unfinished) and 0 key records"),
        "{}",
        said(&copied)
    );
    for extra in [&["-o", "json"][..], &["--steps"][..], &[][..]] {
        let history = |j: &str| {
            let mut args = vec!["history", "--journal", j];
            args.extend_from_slice(extra);
            let out = runner.home.rekey(&args);
            assert_eq!(code(&out), 0, "{}", said(&out));
            stdout(&out)
        };
        assert_eq!(history(file), history(&journal), "{extra:?}");
    }
    let again = runner
        .home
        .rekey(&["journal", "copy", "--from", file, "--to", &journal]);
    assert_eq!(code(&again), 2);
    assert!(stderr(&again).contains("is not empty"), "{}", said(&again));
    // An empty table reads as no rotations, as a file not made yet does.
    let empty = new_table(&runner);
    let out = runner.home.rekey(&["history", "--journal", &empty]);
    assert_eq!(
        stdout(&out).trim(),
        format!("no rotations recorded in {empty}")
    );
    let _ = table_name(&empty);
}

/// A `rotate --service` journaled in DynamoDB, killed right after each
/// record (and right after each side effect), is finished by the next run
/// of another holder: another home, working directory, process and run
/// ID on the same table. The secret ends holding a working new key, every
/// key of the user is one the secret holds, and nothing is left unfinished.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_rotation_killed_at_each_step_is_finished_by_another_holder_through_dynamodb() {
    use crate::support::stores::{creds_of, secret_at};
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let machines = [Runner::new(&org.admin), Runner::new(&org.admin)];
    let journal = new_table(&machines[0]);
    let points = [
        "create_key:begin",
        "create_key:done",
        "deliver:begin",
        "deliver:effect",
        "deliver:done",
        "verify:begin",
        "verify:done",
        "promote:begin",
        "promote:effect",
        "promote:done",
        "finish:done",
    ];
    for (i, point) in points.iter().enumerate() {
        let user = format!("svc-kill-{i}");
        let old = member.user_in_secret(&user, 100).await;
        // Each run is its own process, hence its own run ID (PID-UNIXTIME);
        // the users of earlier rounds are not due any more.
        let run = |m: &Runner, env: &[(&str, &str)]| {
            m.home
                .rekey_with(env, &service_rotation(&member.account_id, &journal))
        };
        let first = run(&machines[0], &[("REKEY_CRASH_AT", point)]);
        assert_eq!(
            first.status.code(),
            None,
            "{point}: killed: {}",
            said(&first)
        );
        let second = run(&machines[1], &[]);
        assert_eq!(code(&second), 0, "{point}: {}", said(&second));
        let current = secret_key(&member.secrets, &user).await;
        assert!(works(&current).await, "{point}");
        let secrets = [
            old.secret_access_key.clone(),
            current.secret_access_key.clone(),
        ];
        assert_no_secret_in_table(&org.admin, &journal, &secrets).await;
        assert_ne!(current.access_key_id, old.access_key_id, "{point}: rotated");
        let previous = secret_at(&member.secrets, &user, "AWSPREVIOUS")
            .await
            .map(|v| creds_of(&v));
        let held: Vec<String> = [Some(current), previous]
            .into_iter()
            .flatten()
            .map(|c| c.access_key_id)
            .collect();
        for (key, _) in member.keys(&user).await {
            assert!(
                held.contains(&key),
                "{point}: key {key} is held nowhere (orphan)"
            );
        }
    }
    let out = machines[1].home.rekey(&[
        "history",
        "--journal",
        &journal,
        "--limit",
        "100",
        "-o",
        "json",
    ]);
    let all = json_out(&out);
    let unfinished: Vec<&serde_json::Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"].is_null())
        .collect();
    assert!(unfinished.is_empty(), "{unfinished:?}");
}

/// A journal kept in a central account: named by `journal =` in rekey.toml
/// and reached through `--journal-role`; without the role, the caller's own
/// account has no such table and says so.
#[tokio::test]
async fn a_journal_in_a_central_account_is_named_in_rekey_toml_and_reached_through_a_role() {
    let org = moto().new_org(2);
    let member = ServiceAccount::of(&org, 0).await;
    let central = org.members[1].account_id.clone();
    let central_config = crate::support::member_config(&org, &central).await;
    rekey::journal::dynamo::init(
        &aws_sdk_dynamodb::Client::new(&central_config),
        "central-journal",
    )
    .await
    .unwrap();
    member.user_in_secret("svc-c", 100).await;
    let runner = Runner::new(&org.admin);
    let config = runner.file(
        "rekey.toml",
        "journal = \"dynamodb:central-journal\"\njournal_retention = \"30d\"\n",
    );
    let role = format!("arn:aws:iam::{central}:role/{ROLE}");
    let out = runner.home.rekey(&[
        "rotate",
        "--service",
        "--account",
        &member.account_id,
        "--role",
        ROLE,
        "--config",
        config.to_str().unwrap(),
        "--journal-role",
        &role,
        "--propagation-timeout",
        "20s",
    ]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(rotated_in(&[out], "svc-c"), 1);
    let history = |extra: &[&str]| {
        let mut args = vec![
            "history",
            "--journal",
            "dynamodb:central-journal",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        runner.home.rekey(&args)
    };
    let through = history(&["--journal-role", &role]);
    assert_eq!(code(&through), 0, "{}", said(&through));
    let all = json_out(&through);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["user_name"], "svc-c");
    let own = history(&[]);
    assert_eq!(code(&own), 2, "{}", said(&own));
    assert!(
        stderr(&own).contains("the DynamoDB table central-journal does not exist"),
        "{}",
        said(&own)
    );
    assert!(!runner.journal().exists(), "no file journal was made");
    // The finished rotation expires after the file's journal_retention.
    let items = aws_sdk_dynamodb::Client::new(&central_config)
        .scan()
        .table_name("central-journal")
        .send()
        .await
        .unwrap();
    let expires: Vec<i64> = items
        .items()
        .iter()
        .filter(|i| {
            i.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|s| s.starts_with("R#"))
        })
        .filter_map(|i| i.get("expires")?.as_n().ok()?.parse().ok())
        .collect();
    let in_30_days = (time::OffsetDateTime::now_utc() + time::Duration::days(30)).unix_timestamp();
    assert_eq!(expires.len(), 1, "{items:?}");
    assert!(
        (expires[0] - in_30_days).abs() < 3600,
        "{expires:?} vs {in_30_days}"
    );
}
