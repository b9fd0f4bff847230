//! Issue 16, plans as data: `rekey rotate --dry-run -o json` prints the
//! run's plan (`rekey.plan/1`), and the run that follows makes exactly
//! the rotations it lists; the plan, read back from its JSON, is carried
//! out by the library's executor, which refuses a rotation whose world
//! changed since.

use std::collections::BTreeSet;
use std::sync::Arc;

use rekey::aws::{AwsOptions, Deps};
use rekey::clock::SystemClock;
use rekey::journal::{Holder, OldKeyAction, SqliteJournal};
use rekey::rotation::engine::{Engine, NoPrompt, Status};
use rekey::rotation::plan::{Action, Plan, execute, execute_plan};
use rekey::rotation::{RotateOptions, RunReport};
use serde_json::Value;

use crate::support::runner::Runner;
use crate::support::stores::{ServiceAccount, put_param, secret_key, works};
use crate::support::{Creds, ROLE, code, json_out, moto, said, sdk_config};

/// Three member accounts: in A a tag-bound user due (`due-a`) and one not
/// due (`young-a`); in B a user bound by a `[[service]]` entry to a
/// parameter (`entry-b`); in C a tag-bound user that is exempt
/// (`exempt-c`, tag `rekey:exempt=true`) and one due whose second key is
/// inactive (`slot-c`: its slot is freed first).
struct World {
    org: crate::support::Org,
    a: ServiceAccount,
    b: ServiceAccount,
    c: ServiceAccount,
    due_a: Creds,
    young_a: Creds,
    entry_b: Creds,
    exempt_c: Creds,
    slot_c: Creds,
    inactive_c: Creds,
    runner: Runner,
    config: std::path::PathBuf,
}

impl World {
    async fn new() -> World {
        let org = moto().new_org(3);
        let (a, b, c) = (
            ServiceAccount::of(&org, 0).await,
            ServiceAccount::of(&org, 1).await,
            ServiceAccount::of(&org, 2).await,
        );
        let due_a = a.user_in_secret("due-a", 100).await;
        let young_a = a.user_in_secret("young-a", 5).await;
        let entry_b = b.user("entry-b", 100, None).await;
        put_param(&b.ssm, "/ci/entry-b", &entry_b).await;
        let exempt_c = c.user_in_secret("exempt-c", 100).await;
        c.seeder.tag_user("exempt-c", "rekey:exempt", "true").await;
        let slot_c = c.user_in_secret("slot-c", 100).await;
        let inactive_c = c.seeder.add_key("slot-c", 200, false).await;
        let runner = Runner::new(&org.admin);
        let config = runner.file(
            "rekey.toml",
            &format!(
                "[[service]]\naccount = \"{}\"\nuser = \"entry-b\"\nto = [\"ssm:/ci/entry-b\"]\n",
                b.account_id
            ),
        );
        World {
            org,
            a,
            b,
            c,
            due_a,
            young_a,
            entry_b,
            exempt_c,
            slot_c,
            inactive_c,
            runner,
            config,
        }
    }

    fn rotate(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            "--service",
            "--org",
            "--role",
            ROLE,
            "--max-age",
            "30d",
            "--config",
            self.config.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.runner.rotate(&args)
    }

    /// The rotations the world expects: (account, user, old key).
    fn due(&self) -> BTreeSet<(String, String, String)> {
        [
            (&self.a, "due-a", &self.due_a),
            (&self.b, "entry-b", &self.entry_b),
            (&self.c, "slot-c", &self.slot_c),
        ]
        .iter()
        .map(|(acct, user, key)| {
            (
                acct.account_id.clone(),
                user.to_string(),
                key.access_key_id.clone(),
            )
        })
        .collect()
    }

    /// Nothing the plan leaves alone was touched: the young and the
    /// exempt user keep their one key, in their secret.
    async fn assert_left_alone(&self) {
        for (acct, user, key) in [
            (&self.a, "young-a", &self.young_a),
            (&self.c, "exempt-c", &self.exempt_c),
        ] {
            assert_eq!(
                acct.keys(user).await,
                [(key.access_key_id.clone(), "Active".to_string())],
                "{user}"
            );
            assert_eq!(
                secret_key(&acct.secrets, user).await.access_key_id,
                key.access_key_id,
                "{user}"
            );
        }
    }
}

/// The plan's rotations, as (account, user, old key).
fn planned(plan: &Plan) -> BTreeSet<(String, String, String)> {
    (plan.rotations().into_iter())
        .map(|(a, u, k)| (a.to_string(), u.to_string(), k.to_string()))
        .collect()
}

/// The plan's skips of `user`: its reason object.
fn skip_of<'a>(plan: &'a Value, user: &str) -> &'a Value {
    let actions = plan["actions"].as_array().expect("actions");
    let skip = actions
        .iter()
        .find(|a| a["action"] == "skip" && a["user_name"] == user)
        .unwrap_or_else(|| panic!("no skip of {user}: {plan}"));
    &skip["reason"]
}

#[tokio::test]
async fn a_dry_run_plan_lists_exactly_the_rotations_the_real_run_makes() {
    let w = World::new().await;
    let dry = w.rotate(&["--dry-run", "-o", "json"]);
    assert_eq!(code(&dry), 0, "{}", said(&dry));
    let json = json_out(&dry);
    assert_eq!(json["schema"], "rekey.plan/1", "{json}");
    let plan: Plan = serde_json::from_value(json.clone()).expect("the plan parses as a Plan");
    assert_eq!(planned(&plan), w.due(), "{json}");
    // Each rotate carries its job and what it was decided from.
    for a in &plan.actions {
        if let Action::Rotate { job, plan, seen } = a {
            assert!(job.label.contains(&plan.user_name), "{json}");
            assert_eq!(seen.destinations.len(), job.destinations.len(), "{json}");
            assert_eq!(
                seen.destinations[0].holds.as_deref(),
                Some(plan.old_key_id.as_str()),
                "{json}"
            );
            let old = seen
                .keys
                .iter()
                .find(|k| k.key_id.as_deref() == Some(&plan.old_key_id));
            assert_eq!(old.and_then(|k| k.age_days), Some(100), "{json}");
        }
    }
    // slot-c's inactive key is freed first, as its own action, then it rotates.
    let actions = json["actions"].as_array().unwrap();
    let free = actions
        .iter()
        .position(|a| a["action"] == "free_slot" && a["key_id"] == w.inactive_c.access_key_id)
        .unwrap_or_else(|| panic!("no free_slot: {json}"));
    assert_eq!(actions[free]["why"], "inactive", "{json}");
    assert_eq!(actions[free + 1]["action"], "rotate", "{json}");
    assert_eq!(actions[free + 1]["plan"]["user_name"], "slot-c", "{json}");
    let young = skip_of(&json, "young-a");
    assert_eq!(young["reason"], "not_due", "{json}");
    assert_eq!(young["max_age_days"], 30, "{json}");
    let exempt = skip_of(&json, "exempt-c");
    assert_eq!(exempt["reason"], "exempt", "{json}");
    assert_eq!(exempt["why"], "tag rekey:exempt=true", "{json}");
    // The plan holds key IDs, never a secret; and it changed nothing.
    let text = String::from_utf8_lossy(&dry.stdout);
    for k in [&w.due_a, &w.entry_b, &w.slot_c, &w.inactive_c, &w.exempt_c] {
        assert!(!text.contains(&k.secret_access_key), "a secret in the plan");
    }
    assert_eq!(w.c.keys("slot-c").await.len(), 2, "nothing freed");
    assert!(!w.runner.journal().exists(), "a dry run writes no journal");
    w.assert_left_alone().await;

    let real = w.rotate(&["-o", "json"]);
    assert_eq!(code(&real), 0, "{}", said(&real));
    let rows = json_out(&real);
    let rotated: BTreeSet<(String, String, String)> = (rows.as_array().unwrap().iter())
        .filter(|r| r["status"] == "rotated")
        .map(|r| {
            let s = |f: &str| r[f].as_str().unwrap_or_default().to_string();
            (s("account_id"), s("user_name"), s("old_key_id"))
        })
        .collect();
    assert_eq!(rotated, planned(&plan), "{rows}");
    let exempt_row = (rows.as_array().unwrap().iter())
        .find(|r| r["user_name"] == "exempt-c")
        .unwrap_or_else(|| panic!("exempt-c not reported: {rows}"));
    assert_eq!(exempt_row["status"], "exempt", "{rows}");
    // What IAM and the stores say agrees.
    assert_ne!(
        secret_key(&w.a.secrets, "due-a").await.access_key_id,
        w.due_a.access_key_id
    );
    let slot_keys: Vec<String> = w.c.keys("slot-c").await.into_iter().map(|k| k.0).collect();
    assert!(
        !slot_keys.contains(&w.inactive_c.access_key_id),
        "{slot_keys:?}"
    );
    w.assert_left_alone().await;
    let history = json_out(&w.runner.history());
    assert_eq!(history.as_array().map(Vec::len), Some(3), "{history}");
}

fn options() -> RotateOptions {
    RotateOptions {
        old_key: OldKeyAction::Keep,
        delete_other_active: false,
        max_age_days: Some(30),
        propagation_timeout: std::time::Duration::from_secs(20),
        verify_successes: 2,
        lease_ttl: time::Duration::minutes(5),
        run_id: "plan-test".into(),
        as_of: None,
    }
}

/// The plan, read back from its JSON, is carried out by the executor:
/// exactly its rotations. The same plan again finds a world that changed
/// (each key it named was rotated) and refuses every rotation before any
/// change; a `free_slot` without its rotation is refused too.
#[tokio::test]
async fn the_executor_carries_out_a_plan_read_from_json_and_refuses_a_stale_one() {
    let w = World::new().await;
    let dry = w.rotate(&["--dry-run", "-o", "json"]);
    assert_eq!(code(&dry), 0, "{}", said(&dry));
    let plan = Plan::parse(&String::from_utf8_lossy(&dry.stdout)).expect("a plan");

    let clock = SystemClock;
    let journal = SqliteJournal::open(&w.runner.journal(), Arc::new(SystemClock)).unwrap();
    let opts = options();
    let engine = Engine {
        journal: &journal,
        clock: &clock,
        opts: &opts,
        prompt: &NoPrompt,
        holder: Holder::current("plan-test"),
    };
    let deps = Deps::new(sdk_config(&w.org.admin), AwsOptions::default(), None);
    let done = execute_plan(&engine, &plan, &deps).await;
    let failures: Vec<String> = (done.failures.iter())
        .map(|f| rekey::error::error_chain(&f.error))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    let rotated: BTreeSet<(String, String, String)> = (done.reports.iter())
        .filter(|r| r.status == Status::Rotated)
        .map(|r| {
            (
                r.account_id.clone().unwrap_or_default(),
                r.user_name.clone().unwrap_or_default(),
                r.old_key_id.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(rotated, w.due());
    let param = crate::support::stores::param_key(&w.b.ssm, "/ci/entry-b").await;
    assert_ne!(param.access_key_id, w.entry_b.access_key_id);
    assert!(works(&param).await);
    w.assert_left_alone().await;

    let before: Vec<_> = [
        w.a.keys("due-a").await,
        w.b.keys("entry-b").await,
        w.c.keys("slot-c").await,
    ]
    .to_vec();
    let again = execute_plan(&engine, &plan, &deps).await;
    assert_eq!(again.failures.len(), 3, "every rotation refused");
    for f in &again.failures {
        assert_eq!(f.report.status, Status::Refused);
        let said = rekey::error::error_chain(&f.error);
        assert!(
            said.contains("the world changed since the plan was made")
                || said.contains("not the key"),
            "{said}"
        );
    }
    let after: Vec<_> = [
        w.a.keys("due-a").await,
        w.b.keys("entry-b").await,
        w.c.keys("slot-c").await,
    ]
    .to_vec();
    assert_eq!(before, after, "a stale plan changes nothing");

    let lone = (plan.actions.iter())
        .find(|a| matches!(a, Action::FreeSlot { .. }))
        .expect("slot-c's free_slot");
    let refused = execute(&engine, lone, &deps).await.expect_err("refused");
    assert_eq!(refused.report.status, Status::Refused);
    assert!(
        rekey::error::error_chain(&refused.error).contains("freed only by the rotation"),
        "{}",
        rekey::error::error_chain(&refused.error)
    );
    assert_eq!(w.c.keys("slot-c").await, after[2]);
}

/// Two runs carry out the same plan at once, through one journal (two
/// processes on one machine): each user is rotated once, whichever run
/// gets its lease; the other is refused or leaves it to the live run.
/// Then a third run with a journal of its own (another machine) finds
/// every key it names replaced, and refuses it all.
#[tokio::test]
async fn one_plan_carried_out_twice_at_once_rotates_each_user_once() {
    let w = World::new().await;
    let dry = w.rotate(&["--dry-run", "-o", "json"]);
    assert_eq!(code(&dry), 0, "{}", said(&dry));
    let plan = Plan::parse(&String::from_utf8_lossy(&dry.stdout)).expect("a plan");

    let clock = SystemClock;
    // Each run's journal records its own run ID, the lease's holder.
    let opts = |run: &str| RotateOptions {
        run_id: run.into(),
        ..options()
    };
    let (opts1, opts2, opts3) = (opts("one"), opts("two"), opts("three"));
    let deps = Deps::new(sdk_config(&w.org.admin), AwsOptions::default(), None);
    let open = || SqliteJournal::open(&w.runner.journal(), Arc::new(SystemClock)).unwrap();
    let (first, second) = (open(), open());
    fn engine<'a>(
        journal: &'a SqliteJournal,
        opts: &'a RotateOptions,
        clock: &'a SystemClock,
    ) -> Engine<'a> {
        Engine {
            journal,
            clock,
            opts,
            prompt: &NoPrompt,
            holder: Holder::current(opts.run_id.clone()),
        }
    }
    let (one, two) = (
        engine(&first, &opts1, &clock),
        engine(&second, &opts2, &clock),
    );
    let (a, b) = tokio::join!(
        execute_plan(&one, &plan, &deps),
        execute_plan(&two, &plan, &deps)
    );
    let rotated = |r: &RunReport| {
        (r.reports.iter())
            .filter(|r| r.status == Status::Rotated)
            .count()
    };
    let said: Vec<String> = (a.failures.iter().chain(&b.failures))
        .map(|f| rekey::error::error_chain(&f.error))
        .collect();
    assert_eq!(rotated(&a) + rotated(&b), 3, "each user once: {said:#?}");
    for f in a.failures.iter().chain(&b.failures) {
        let said = rekey::error::error_chain(&f.error);
        assert!(
            f.error.is_lease_held() || f.report.status == Status::Refused,
            "{said}"
        );
    }
    // One new key each: the old one kept, slot-c's inactive key freed once.
    for (acct, user) in [(&w.a, "due-a"), (&w.b, "entry-b"), (&w.c, "slot-c")] {
        let keys = acct.keys(user).await;
        assert_eq!(keys.len(), 2, "{user}: {keys:?}");
        assert!(keys.iter().all(|k| k.1 == "Active"), "{user}: {keys:?}");
    }
    w.assert_left_alone().await;

    let elsewhere = tempfile::tempdir().unwrap();
    let journal =
        SqliteJournal::open(&elsewhere.path().join("j.sqlite3"), Arc::new(SystemClock)).unwrap();
    let third = engine(&journal, &opts3, &clock);
    let before = w.c.keys("slot-c").await;
    let again = execute_plan(&third, &plan, &deps).await;
    assert_eq!(again.failures.len(), 3, "every rotation refused");
    assert!(
        (again.failures.iter()).all(|f| f.report.status == Status::Refused),
        "{:?}",
        (again.failures.iter())
            .map(|f| rekey::error::error_chain(&f.error))
            .collect::<Vec<_>>()
    );
    assert_eq!(w.c.keys("slot-c").await, before);
}
