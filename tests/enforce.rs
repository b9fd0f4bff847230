//! Issue 17, `rekey enforce`: an organization's key lifecycle walked over
//! simulated days. `--as-of` alone cannot do it — moto stamps new keys and
//! each use with the real time — so the harness's per-account clock
//! (`/_rekey/clock`) is set to the simulated day before each run: keys a
//! rotation creates that day are that day's, and so is the use the test
//! makes of an old key.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::notify::{Inbox, delivered_for};
use crate::support::runner::Runner;
use crate::support::stores::{ServiceAccount, secret_key};
use crate::support::{Creds, by_user, code, json_out, moto, said, sdk_config};
use rekey::notify::Stage;

/// Day 0 of the simulation: far from the real time, so a date taken from
/// the real clock by mistake shows.
pub(crate) fn day(n: i64) -> OffsetDateTime {
    time::macros::datetime!(2030-01-01 00:00 UTC) + Duration::days(n)
}

pub(crate) fn iso(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

pub(crate) fn set_clock(account: &str, n: i64) {
    moto().control("clock", json!({"account_id": account, "now": iso(day(n))}));
}

/// Dates a key as created on day `created` and used on day `used`.
pub(crate) fn date_key(account: &str, user: &str, key: &str, created: i64, used: Option<i64>) {
    moto().control(
        "key_dates",
        json!({
            "account_id": account, "user_name": user, "access_key_id": key,
            "create_date": iso(day(created)),
            "last_used_date": used.map(|d| iso(day(d))),
            "last_used_service": used.map(|_| "s3"),
            "last_used_region": used.map(|_| "eu-west-1"),
        }),
    );
}

/// Signs one request with `key` (the test's own use of it), as its
/// account's clock says.
async fn use_key(key: &Creds) {
    let sts = aws_sdk_sts::Client::new(&sdk_config(key));
    sts.get_caller_identity()
        .send()
        .await
        .expect("the key works");
}

/// A user's keys as IAM lists them: `(key id, Active|Inactive)`.
async fn keys_of(acct: &ServiceAccount, user: &str) -> Vec<(String, String)> {
    acct.keys(user).await
}

/// What one run did: `(action, key id)` of every result, and each result.
fn results(out: &Value) -> Vec<(String, String, String)> {
    (out["results"].as_array().unwrap().iter())
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["key_id"].as_str().unwrap_or_default().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The world: three member accounts.
/// - A: `svc-a` (bound by tag to a secret of its own), `human-a` (no
///   destination).
/// - B: `svc-b` (bound), whose old key the test uses again after its
///   rotation, with `on_grace_max = "deactivate"` for the account;
///   `vendor-b`, exempt by tag until day 50.
/// - C: `idle-c`, never used, in an OU below one exempt until day 60, with
///   `deactivate_unused` for the account.
struct World {
    org: crate::support::Org,
    a: ServiceAccount,
    b: ServiceAccount,
    c: ServiceAccount,
    runner: Runner,
    config: std::path::PathBuf,
    /// Every original key by its user.
    first: BTreeMap<&'static str, Creds>,
    /// Where the notifications land.
    inbox: Inbox,
    /// Each member account's email, as Organizations has it.
    emails: BTreeMap<String, String>,
}

impl World {
    async fn new() -> World {
        let org = moto().new_org(3);
        let a = ServiceAccount::of(&org, 0).await;
        let b = ServiceAccount::of(&org, 1).await;
        let c = ServiceAccount::of(&org, 2).await;
        for acct in [&a, &b, &c] {
            set_clock(&acct.account_id, 0);
        }
        let mut first = BTreeMap::new();
        for (acct, name) in [(&a, "svc-a"), (&b, "svc-b")] {
            let key = acct.user_in_secret(name, 0).await;
            date_key(&acct.account_id, name, &key.access_key_id, 0, None);
            first.insert(name, key);
        }
        let until = day(50).date();
        let people: [(&ServiceAccount, &'static str, Option<i64>, Option<String>); 3] = [
            (&a, "human-a", Some(0), None),
            (
                &b,
                "vendor-b",
                Some(0),
                Some(format!("until={until};reason=vendor contract")),
            ),
            (&c, "idle-c", None, None),
        ];
        // Owners: svc-a by its `owner` tag, human-a by its `email` tag,
        // svc-b by an [[owner]] entry, vendor-b and idle-c by their
        // accounts' emails.
        a.seeder
            .tag_user("svc-a", "owner", "alice@example.com")
            .await;
        for (acct, name, used, exempt) in people {
            let key = acct
                .seeder
                .user_with_key(name, &["sts:GetCallerIdentity"], 0)
                .await;
            if name == "human-a" {
                acct.seeder
                    .tag_user(name, "email", "human-a@example.com")
                    .await;
            }
            if let Some(value) = exempt {
                acct.seeder.tag_user(name, "rekey:exempt", &value).await;
            }
            date_key(&acct.account_id, name, &key.access_key_id, 0, used);
            first.insert(name, key);
        }
        // C goes into an OU below one exempt until day 60.
        let orgs = aws_sdk_organizations::Client::new(&sdk_config(&org.admin));
        let root = orgs.list_roots().send().await.unwrap().roots()[0]
            .id()
            .unwrap()
            .to_string();
        let new_ou = |parent: String, name: &'static str| {
            let orgs = orgs.clone();
            async move {
                (orgs
                    .create_organizational_unit()
                    .parent_id(parent)
                    .name(name)
                    .send()
                    .await)
                    .unwrap()
                    .organizational_unit()
                    .unwrap()
                    .id()
                    .unwrap()
                    .to_string()
            }
        };
        let ou = new_ou(root.clone(), "sandboxes").await;
        let team = new_ou(ou.clone(), "team-sandbox").await;
        orgs.move_account()
            .account_id(&c.account_id)
            .source_parent_id(&root)
            .destination_parent_id(&team)
            .send()
            .await
            .unwrap();
        let mut emails = BTreeMap::new();
        for acct in [&b, &c] {
            let d = orgs
                .describe_account()
                .account_id(&acct.account_id)
                .send()
                .await
                .unwrap();
            let email = d.account().unwrap().email().unwrap().to_string();
            emails.insert(acct.account_id.clone(), email);
        }
        let inbox = Inbox::new(&org, "lifecycle").await;
        let runner = Runner::new(&org.admin);
        let config = runner.file(
            "rekey.toml",
            &format!(
                r#"{notify}
[[owner]]
users = "svc-*"
account = "{b}"
email = "platform-b@example.com"

[[enforce.exempt]]
ou = "{ou}"
reason = "sandbox"
until = "{ou_until}"

[accounts."{b}".enforce]
on_grace_max = "deactivate"

[accounts."{c}".enforce]
deactivate_unused = true
"#,
                notify = inbox.settings(),
                ou_until = day(60).date(),
                b = b.account_id,
                c = c.account_id,
            ),
        );
        World {
            org,
            a,
            b,
            c,
            runner,
            config,
            first,
            inbox,
            emails,
        }
    }

    /// Whom `user`'s notices go to by email.
    fn owner(&self, user: &str) -> String {
        match user {
            "svc-a" => "alice@example.com".into(),
            "human-a" => "human-a@example.com".into(),
            "svc-b" => "platform-b@example.com".into(),
            other => self.emails[&self.account(other).account_id].clone(),
        }
    }

    /// `rekey enforce --org … --apply --as-of DAY -o json`, every account's
    /// clock at that day.
    fn enforce(&self, n: i64, extra: &[&str]) -> std::process::Output {
        for acct in [&self.a, &self.b, &self.c] {
            set_clock(&acct.account_id, n);
        }
        let as_of = iso(day(n));
        let mut args = vec!["-o", "json"];
        args.extend_from_slice(extra);
        let env = self.inbox.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let at = (
            self.org.management_account_id.as_str(),
            self.config.as_path(),
            as_of.as_str(),
        );
        self.runner.org_run(at, "enforce", &args, &env)
    }

    fn account(&self, user: &str) -> &ServiceAccount {
        match user {
            "svc-a" | "human-a" => &self.a,
            "svc-b" | "vendor-b" => &self.b,
            _ => &self.c,
        }
    }
}

/// `(user, the original key's state)`: `Active`, `Inactive` or `gone`.
type States = &'static [(&'static str, &'static str)];

/// `(action, user)`: what a run does to the user's original key.
type Acts = &'static [(&'static str, &'static str)];

/// The lifecycle table: on each simulated day, what the run does (`(action,
/// user)`, the original key of that user, or `rotate` of it) and every
/// original key's state after the run.
const TABLE: &[(i64, Acts, States)] = &[
    (
        0,
        &[],
        &[
            ("svc-a", "Active"),
            ("human-a", "Active"),
            ("svc-b", "Active"),
            ("vendor-b", "Active"),
            ("idle-c", "Active"),
        ],
    ),
    (28, &[], &[("idle-c", "Active")]),
    // Unused for 45 days, but C's OU is exempt until day 60; the vendor's
    // exemption ended on day 50 (a finding), its key is not due yet.
    (56, &[], &[("idle-c", "Active"), ("vendor-b", "Active")]),
    (63, &[("deactivate", "idle-c")], &[("idle-c", "Inactive")]),
    (70, &[("delete", "idle-c")], &[("idle-c", "gone")]),
    // Older than 90 days on day 91 (as audit counts): warned 14 days ahead.
    (
        77,
        &[
            ("warn", "svc-a"),
            ("warn", "human-a"),
            ("warn", "svc-b"),
            ("warn", "vendor-b"),
        ],
        &[("svc-a", "Active"), ("human-a", "Active")],
    ),
    (84, &[], &[("svc-a", "Active")]),
    (
        91,
        &[("rotate", "svc-a"), ("rotate", "svc-b")],
        &[("svc-a", "Active"), ("svc-b", "Active")],
    ),
    // svc-b's old key is used on day 94 and on each step until day 119
    // (before the run): each use is reported at once, with where and when,
    // and once only (the same day again reports nothing).
    (
        94,
        &[("still_in_use", "svc-b")],
        &[("svc-a", "Active"), ("svc-b", "Active")],
    ),
    (
        98,
        &[("retire", "svc-a"), ("still_in_use", "svc-b")],
        &[("svc-a", "Inactive"), ("svc-b", "Active")],
    ),
    (
        105,
        &[
            ("delete", "svc-a"),
            ("deactivate", "human-a"),
            ("deactivate", "vendor-b"),
            ("still_in_use", "svc-b"),
        ],
        &[
            ("svc-a", "gone"),
            ("human-a", "Inactive"),
            ("vendor-b", "Inactive"),
            ("svc-b", "Active"),
        ],
    ),
    (
        112,
        &[
            ("delete", "human-a"),
            ("delete", "vendor-b"),
            ("still_in_use", "svc-b"),
        ],
        &[
            ("human-a", "gone"),
            ("vendor-b", "gone"),
            ("svc-b", "Active"),
        ],
    ),
    (119, &[("still_in_use", "svc-b")], &[("svc-b", "Active")]),
    // Replaced on day 91, used until day 119: its grace_max is over (had
    // it been quiet for 7 days, it would have been retired).
    (121, &[("deactivate", "svc-b")], &[("svc-b", "Inactive")]),
    (128, &[("delete", "svc-b")], &[("svc-b", "gone")]),
];

/// What each day's run tells (`(user, stage)` of the user's original
/// key): by email to its owner, by SNS per account and stage, and in one
/// chat message — once: svc-b's key, reported still in use at every run
/// from day 94 to 119, is told of it on day 94 only.
const TOLD: &[(i64, &[(&str, Stage)])] = &[
    (63, &[("idle-c", Stage::Deactivated)]),
    (70, &[("idle-c", Stage::Deleted)]),
    (
        77,
        &[
            ("svc-a", Stage::Warning),
            ("human-a", Stage::Warning),
            ("svc-b", Stage::Warning),
            ("vendor-b", Stage::Warning),
        ],
    ),
    (91, &[("svc-a", Stage::Rotated), ("svc-b", Stage::Rotated)]),
    (94, &[("svc-b", Stage::StillInUse)]),
    (98, &[("svc-a", Stage::Deactivated)]),
    (
        105,
        &[
            ("svc-a", Stage::Deleted),
            ("human-a", Stage::Deactivated),
            ("vendor-b", Stage::Deactivated),
        ],
    ),
    (
        112,
        &[("human-a", Stage::Deleted), ("vendor-b", Stage::Deleted)],
    ),
    (121, &[("svc-b", Stage::Deactivated)]),
    (128, &[("svc-b", Stage::Deleted)]),
];

#[tokio::test]
async fn an_organization_walks_through_its_key_lifecycle_over_simulated_days() {
    let mut w = World::new().await;
    let names: BTreeMap<String, &str> = (w.first.iter())
        .map(|(user, k)| (k.access_key_id.clone(), *user))
        .collect();
    let mut said_all = String::new();
    let mut expected: BTreeMap<&str, &str> = BTreeMap::new();
    for (n, want_actions, want_states) in TABLE {
        if [94, 98, 105, 112, 119].contains(n) {
            set_clock(&w.b.account_id, *n);
            use_key(&w.first["svc-b"]).await;
        }
        let out = w.enforce(*n, &["--apply"]);
        assert_eq!(code(&out), 0, "day {n}: {}", said(&out));
        said_all.push_str(&said(&out));
        let table = w.enforce(*n, &["-o", "table"]);
        said_all.push_str(&said(&table));
        let got = json_out(&out);
        let mut did: Vec<(String, String)> = results(&got)
            .into_iter()
            .map(|(action, key, result)| {
                assert_eq!(result, "done", "day {n}: {action} {key}: {got:#}");
                let user = names.get(&key).copied().unwrap_or("a new key");
                (action, user.to_string())
            })
            .collect();
        did.sort();
        let mut want: Vec<(String, String)> = (want_actions.iter())
            .map(|(a, u)| (a.to_string(), u.to_string()))
            .collect();
        want.sort();
        assert_eq!(
            did, want,
            "day {n}: what the run did: {:#}",
            got["plan"]["actions"]
        );
        // The table says what changed; every original key is checked
        // every day, and each rotation's new key from its day on.
        for (user, state) in *want_states {
            expected.insert(user, state);
        }
        for (user, state) in &expected {
            let key = &w.first[user].access_key_id;
            let keys = keys_of(w.account(user), user).await;
            let now = (keys.iter())
                .find(|(id, _)| id == key)
                .map_or("gone", |(_, s)| s.as_str());
            assert_eq!(now, *state, "day {n}: {user}'s first key");
            let others: Vec<&(String, String)> = keys.iter().filter(|(id, _)| id != key).collect();
            let rotated = *n >= 91 && user.starts_with("svc-");
            let want_others = if rotated { 1 } else { 0 };
            assert_eq!(
                others.len(),
                want_others,
                "day {n}: {user}'s keys: {keys:?}"
            );
            assert!(
                others.iter().all(|(_, s)| s == "Active"),
                "day {n}: {user}: {keys:?}"
            );
        }
        // Each notification delivered is the table's, exactly.
        let told = (TOLD.iter())
            .find(|(d, _)| d == n)
            .map_or(&[][..], |(_, t)| t);
        let want = delivered_for(told, |u| w.owner(u), |u| w.account(u).account_id.clone());
        assert_eq!(w.inbox.news().await, want, "day {n}: what was delivered");
        // The same day again: nothing left to do, nothing new to tell.
        let again = w.enforce(*n, &["--apply"]);
        assert_eq!(code(&again), 0, "day {n} again: {}", said(&again));
        assert_eq!(results(&json_out(&again)), vec![], "day {n} again");
        let news = w.inbox.news().await;
        assert!(news.is_empty(), "day {n} again: {news:?}");
        if *n == 56 {
            let findings = got["plan"]["findings"].as_array().unwrap();
            assert!(
                findings
                    .iter()
                    .any(|f| f["user_name"] == "vendor-b" && f["finding"] == "exemption_expired"),
                "{findings:?}"
            );
        }
    }
    // After the rotations, each destination holds its user's new key, and
    // it works.
    for (acct, user) in [(&w.a, "svc-a"), (&w.b, "svc-b")] {
        let held = secret_key(&acct.secrets, user).await;
        assert_ne!(held.access_key_id, w.first[user].access_key_id, "{user}");
        let keys = keys_of(acct, user).await;
        assert_eq!(
            keys,
            vec![(held.access_key_id.clone(), "Active".to_string())],
            "{user}"
        );
    }
    // No secret in any output or in the journal's files: not the first
    // keys', not those the rotations made.
    let mut secrets: Vec<String> = (w.first.values())
        .map(|k| k.secret_access_key.clone())
        .collect();
    for (acct, user) in [(&w.a, "svc-a"), (&w.b, "svc-b")] {
        secrets.push(secret_key(&acct.secrets, user).await.secret_access_key);
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for secret in &secrets {
        assert!(!said_all.contains(secret), "a secret in rekey's output");
        assert!(
            !w.inbox.everything.contains(secret),
            "a secret in a notification"
        );
    }
    assert!(
        !said_all.contains(w.inbox.webhook.token()),
        "the webhook's URL in rekey's output"
    );
    crate::support::stores::assert_no_secret_in(w.runner.state.path(), &secrets);
    // Every act is journaled once, Done, at the simulated moment it was
    // carried out for (and written at the real time).
    let journal = rekey::journal::SqliteJournal::open(
        &w.runner.journal(),
        std::sync::Arc::new(rekey::clock::SystemClock),
    )
    .unwrap();
    let done_on = |acct: &ServiceAccount, user: &str| {
        let events = journal.key_events(&acct.account_id, user).unwrap();
        let key = &w.first[user].access_key_id;
        (events.iter())
            .filter(|e| &e.key_id == key && e.phase == rekey::journal::Phase::Done)
            .filter(|e| e.op != rekey::journal::KeyOp::Notified)
            .map(|e| {
                assert!(
                    e.at > day(-3650) && e.at < day(-365),
                    "written at the real time"
                );
                (e.op.as_str().to_string(), (e.as_of - day(0)).whole_days())
            })
            .collect::<Vec<_>>()
    };
    let s = |v: &[(&str, i64)]| {
        v.iter()
            .map(|(o, d)| (o.to_string(), *d))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        done_on(&w.a, "svc-a"),
        s(&[
            ("warn", 77),
            ("replaced", 91),
            ("retire", 98),
            ("delete", 105)
        ])
    );
    assert_eq!(
        done_on(&w.a, "human-a"),
        s(&[("warn", 77), ("deactivate", 105), ("delete", 112)])
    );
    assert_eq!(
        done_on(&w.b, "svc-b"),
        s(&[
            ("warn", 77),
            ("replaced", 91),
            ("still_in_use", 94),
            ("still_in_use", 98),
            ("still_in_use", 105),
            ("still_in_use", 112),
            ("still_in_use", 119),
            ("deactivate", 121),
            ("delete", 128)
        ])
    );
    assert_eq!(
        done_on(&w.b, "vendor-b"),
        s(&[("warn", 77), ("deactivate", 105), ("delete", 112)])
    );
    assert_eq!(
        done_on(&w.c, "idle-c"),
        s(&[("deactivate", 63), ("delete", 70)])
    );
    // Each delivery is journaled: one record per key, stage and channel.
    let events = journal.key_events(&w.a.account_id, "svc-a").unwrap();
    let told: Vec<(String, String)> = (events.iter())
        .filter(|e| e.op == rekey::journal::KeyOp::Notified)
        .map(|e| {
            assert_eq!(e.phase, rekey::journal::Phase::Done);
            let sent: rekey::notify::Sent =
                serde_json::from_str(e.detail.as_deref().unwrap()).unwrap();
            (
                sent.stage.as_str().to_string(),
                sent.channel.as_str().to_string(),
            )
        })
        .collect();
    let mut want = Vec::new();
    for stage in ["warning", "rotated", "deactivated", "deleted"] {
        for channel in ["sns", "email", "webhook"] {
            want.push((stage.to_string(), channel.to_string()));
        }
    }
    let sorted = |mut v: Vec<(String, String)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(told), sorted(want));
}

/// A member account with people whose keys are past deactivation (no
/// destination, older than 90 + 14 days), oldest first, as the real clock
/// counts: `enforce` without `--as-of`.
struct Stale {
    org: crate::support::Org,
    accounts: Vec<ServiceAccount>,
    runner: Runner,
}

impl Stale {
    /// `people[i]` users in member `i`, named `p{i}-{j}`, keys 110 + j
    /// days old, used yesterday.
    async fn new(people: &[usize]) -> Stale {
        let org = moto().new_org(people.len());
        let mut accounts = Vec::new();
        for (i, n) in people.iter().enumerate() {
            let acct = ServiceAccount::of(&org, i).await;
            for j in 0..*n {
                let name = format!("p{i}-{j}");
                let spec = crate::support::key(110 + j as i64, Some(1));
                acct.seeder.user(&name, "/", &[], &[], &[spec]).await;
            }
            accounts.push(acct);
        }
        let runner = Runner::new(&org.admin);
        Stale {
            org,
            accounts,
            runner,
        }
    }

    fn enforce(&self, args: &[&str]) -> std::process::Output {
        self.enforce_with(&[], args)
    }

    fn enforce_with(&self, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        let journal = self.runner.journal();
        let mut full = vec![
            "enforce",
            "--org",
            "--exclude-account",
            &self.org.management_account_id,
            "--journal",
            journal.to_str().unwrap(),
            "-o",
            "json",
        ];
        full.extend_from_slice(args);
        self.runner.home.rekey_with(env, &full)
    }

    /// `(user, Active|Inactive|gone)` of every seeded person of member `i`.
    async fn states(&self, i: usize) -> Vec<(String, String)> {
        let acct = &self.accounts[i];
        let mut out = Vec::new();
        let users = acct.seeder.iam.list_users().send().await.unwrap();
        for u in users.users() {
            let name = u.user_name();
            if !name.starts_with('p') {
                continue;
            }
            let keys = acct.seeder.keys(name).await;
            let state = keys.first().map_or("gone".to_string(), |(_, s)| s.clone());
            out.push((name.to_string(), state));
        }
        out.sort();
        out
    }
}

fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The Terraform habit: a plan is written, reviewed, then applied exactly.
/// Each action is checked against the plan made now from IAM and
/// rekey.toml: a key changed by hand since, or a user exempted since, is
/// refused alone, saying why; the others are carried out. Nothing was done
/// by writing the plan.
#[tokio::test]
async fn a_reviewed_plan_applied_after_a_key_changed_by_hand_refuses_that_action_alone() {
    let w = Stale::new(&[4]).await;
    let plan_path = w.runner.home.path().join("plan.json");
    let out = w.enforce(&["--plan-out", plan_path.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    assert_eq!(plan["schema"], "rekey.plan/1");
    let deactivations = (plan["actions"].as_array().unwrap().iter())
        .filter(|a| a["action"] == "deactivate")
        .count();
    assert_eq!(deactivations, 4, "{plan:#}");
    assert_eq!(
        w.states(0).await,
        owned(&[
            ("p0-0", "Active"),
            ("p0-1", "Active"),
            ("p0-2", "Active"),
            ("p0-3", "Active")
        ]),
        "planning changed nothing"
    );
    // Someone deactivates p0-1's key by hand after the review.
    let acct = &w.accounts[0];
    let (key, _) = acct.seeder.keys("p0-1").await.remove(0);
    acct.seeder
        .iam
        .update_access_key()
        .user_name("p0-1")
        .access_key_id(&key)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    // And p0-2 is exempted: the file does not know, the plan made now does.
    acct.seeder
        .tag_user("p0-2", "rekey:exempt", "reason=on leave")
        .await;
    let out = w.enforce(&["--apply-plan", plan_path.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let got = json_out(&out);
    assert_eq!(
        by_user(&got),
        owned(&[
            ("done", "p0-0"),
            ("done", "p0-3"),
            ("refused", "p0-1"),
            ("refused", "p0-2")
        ])
    );
    let why_of = |user: &str| {
        (got["results"].as_array().unwrap().iter())
            .find(|r| {
                r["target"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("user {user} "))
            })
            .and_then(|r| r["error"].as_str())
            .unwrap()
            .to_string()
    };
    let why = why_of("p0-1");
    assert!(
        why.contains("the plan made now does not `deactivate` it (nothing due)"),
        "{why}"
    );
    let why = why_of("p0-2");
    assert!(why.contains("exempt: tag rekey:exempt: on leave"), "{why}");
    // The key a person deactivated is not rekey's: never deleted by it.
    let later = w.enforce(&["--apply", "--as-of", "+30d"]);
    assert_eq!(code(&later), 0, "{}", said(&later));
    assert_eq!(
        w.states(0).await,
        owned(&[
            ("p0-0", "gone"),
            ("p0-1", "Inactive"),
            ("p0-2", "Active"),
            ("p0-3", "gone")
        ])
    );
}

/// `--max-actions` takes the oldest keys first and leaves the rest for the
/// next run; `--only` limits the plan to one stage.
#[tokio::test]
async fn max_actions_takes_the_oldest_keys_first_and_the_next_run_takes_the_rest() {
    let w = Stale::new(&[3]).await;
    let only = w.enforce(&["--only", "delete"]);
    assert_eq!(code(&only), 0, "{}", said(&only));
    let plan = json_out(&only);
    assert!(
        (plan["actions"].as_array().unwrap().iter()).all(|a| a["action"] == "skip"),
        "nothing to delete yet: {plan:#}"
    );
    let out = w.enforce(&["--apply", "--max-actions", "2"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(
        by_user(&json_out(&out)),
        owned(&[("done", "p0-1"), ("done", "p0-2"), ("not_run", "p0-0")])
    );
    let next = w.enforce(&["--apply", "--max-actions", "2"]);
    assert_eq!(code(&next), 0, "{}", said(&next));
    assert_eq!(by_user(&json_out(&next)), owned(&[("done", "p0-0")]));
    assert_eq!(
        w.states(0).await,
        owned(&[
            ("p0-0", "Inactive"),
            ("p0-1", "Inactive"),
            ("p0-2", "Inactive")
        ])
    );
}

/// Two `enforce --apply` at once: every action is carried out exactly
/// once (the user's lease; the second finds it done, or the user held).
#[tokio::test]
async fn two_runs_at_once_carry_out_each_action_exactly_once() {
    let w = Stale::new(&[6]).await;
    let journal = w.runner.journal();
    let start = |run: &str| {
        let args = [
            "enforce",
            "--org",
            "--exclude-account",
            &w.org.management_account_id,
            "--journal",
            journal.to_str().unwrap(),
            "--run-id",
            run,
            "--apply",
            "-o",
            "json",
        ];
        w.runner.home.rekey_command(&[], &args).spawn().unwrap()
    };
    let (a, b) = (start("run-a"), start("run-b"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut done = Vec::new();
    for out in [&a, &b] {
        assert!([0, 2].contains(&code(out)), "{}", said(out));
        for (result, user) in by_user(&json_out(out)) {
            assert!(
                ["done", "already_done", "refused"].contains(&result.as_str()),
                "{result} {user}"
            );
            if result == "done" {
                done.push(user);
            }
        }
    }
    done.sort();
    let all: Vec<String> = (0..6).map(|j| format!("p0-{j}")).collect();
    assert_eq!(done, all, "each key deactivated by exactly one run");
    let j = rekey::journal::SqliteJournal::open(
        &journal,
        std::sync::Arc::new(rekey::clock::SystemClock),
    )
    .unwrap();
    for user in &all {
        let events = j.key_events(&w.accounts[0].account_id, user).unwrap();
        let dones = (events.iter())
            .filter(|e| {
                e.op == rekey::journal::KeyOp::Deactivate && e.phase == rekey::journal::Phase::Done
            })
            .count();
        assert_eq!(dones, 1, "{user}: {events:?}");
    }
    // Whoever did not get a user's lease left nothing half done: a run now
    // has nothing to do.
    let after = w.enforce(&["--apply"]);
    assert_eq!(code(&after), 0, "{}", said(&after));
    assert_eq!(by_user(&json_out(&after)), vec![]);
}

/// Bound service users `svc-0`… of member `i` of `w`, each bound by tag to
/// a secret of its own holding its key, 100 days old: due for rotation.
async fn bound_users(acct: &ServiceAccount, n: usize) -> Vec<Creds> {
    let mut keys = Vec::new();
    for j in 0..n {
        keys.push(acct.user_in_secret(&format!("svc-{j}"), 100).await);
    }
    keys
}

/// Every Secrets Manager write in `account` is denied, as by a resource
/// policy: a destination that denies access.
fn deny_secret_writes(account: &str) {
    moto().control(
        "fail",
        json!({"action": "secretsmanager:PutSecretValue", "account_id": account, "count": 1000,
               "status": 400, "code": "AccessDeniedException",
               "message": "User is not authorized to perform secretsmanager:PutSecretValue"}),
    );
}

/// Waves: a canary account whose rotation fails holds the others back;
/// a canary that succeeds lets them go.
#[tokio::test]
async fn a_failed_canary_holds_the_other_accounts_back() {
    let w = Stale::new(&[0, 2]).await;
    let canary = w.accounts[0].account_id.clone();
    let keys = bound_users(&w.accounts[0], 1).await;
    deny_secret_writes(&canary);
    // A canary that is not among the planned accounts (a typo) holds
    // everything back.
    let typo = w.enforce(&["--apply", "--canary", "999999999999"]);
    assert_eq!(code(&typo), 2, "{}", said(&typo));
    let got = json_out(&typo);
    assert_eq!(got["stopped"]["stopped"], "canary", "{got:#}");
    assert!(by_user(&got).iter().all(|(r, _)| r == "not_run"), "{got:#}");
    // The canary goes first even when a cap would take older keys.
    let capped = w.enforce(&["--apply", "--canary", &canary, "--max-actions", "1"]);
    assert_eq!(code(&capped), 2, "{}", said(&capped));
    assert_eq!(
        by_user(&json_out(&capped)),
        owned(&[
            ("failed", "user svc-0"),
            ("not_run", "p1-0"),
            ("not_run", "p1-1")
        ])
    );
    let out = w.enforce(&["--apply", "--canary", &canary]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let got = json_out(&out);
    assert_eq!(got["stopped"]["stopped"], "canary", "{got:#}");
    assert_eq!(
        by_user(&got),
        owned(&[
            ("failed", "user svc-0"),
            ("not_run", "p1-0"),
            ("not_run", "p1-1")
        ])
    );
    // Nothing half done: the canary's user has only its key, the secret
    // holds it, the others were not touched.
    assert_eq!(
        w.accounts[0].keys("svc-0").await,
        vec![(keys[0].access_key_id.clone(), "Active".to_string())]
    );
    assert_eq!(
        secret_key(&w.accounts[0].secrets, "svc-0")
            .await
            .access_key_id,
        keys[0].access_key_id
    );
    assert_eq!(
        w.states(1).await,
        owned(&[("p1-0", "Active"), ("p1-1", "Active")])
    );
    // With the healthy account as the canary, it goes first and the
    // failing one after it: no stop.
    let out = w.enforce(&["--apply", "--canary", &w.accounts[1].account_id]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let got = json_out(&out);
    assert!(got["stopped"].is_null(), "{got:#}");
    assert_eq!(
        by_user(&got),
        owned(&[("done", "p1-0"), ("done", "p1-1"), ("failed", "user svc-0")])
    );
}

/// `--max-failure-rate`: once more than that share of the actions carried
/// out failed (after at least 5), the run stops; exit 3. Every failed
/// rotation is undone: no new key is left behind.
#[tokio::test]
async fn the_run_stops_at_the_failure_rate_and_leaves_no_orphan() {
    let w = Stale::new(&[0]).await;
    let acct = &w.accounts[0];
    let keys = bound_users(acct, 12).await;
    deny_secret_writes(&acct.account_id);
    let out = w.enforce(&["--apply", "--max-failure-rate", "50"]);
    assert_eq!(code(&out), 3, "{}", said(&out));
    let got = json_out(&out);
    assert_eq!(got["stopped"]["stopped"], "failure_rate", "{got:#}");
    let results: Vec<String> = by_user(&got).into_iter().map(|(r, _)| r).collect();
    let failed = results.iter().filter(|r| *r == "failed").count();
    let not_run = results.iter().filter(|r| *r == "not_run").count();
    // Stopped once 5 of 5 failed; what had already started (at most 3
    // other users, APPLY_CONCURRENCY - 1) finished.
    assert_eq!(failed + not_run, 12, "{results:?}");
    assert!((5..=8).contains(&failed), "{results:?}");
    assert_eq!(got["stopped"]["failed"], 5, "{got:#}");
    for (j, key) in keys.iter().enumerate() {
        let user = format!("svc-{j}");
        assert_eq!(
            acct.keys(&user).await,
            vec![(key.access_key_id.clone(), "Active".to_string())],
            "{user}"
        );
    }
}

/// The facts after a run that died or failed and the run after it: the
/// person's key as `person_state` says, the service user holds exactly its
/// old key (as `old_state` says: kept active for its readers, or retired)
/// and the one its secret holds, which works; no act is left open in the
/// journal, no rotation unfinished.
#[cfg(feature = "fault-injection")]
async fn settled(w: &Stale, old: &Creds, (person_state, old_state): (&str, &str), case: &str) {
    let acct = &w.accounts[0];
    assert_eq!(
        w.states(0).await,
        owned(&[("p0-0", person_state)]),
        "{case}"
    );
    let held = secret_key(&acct.secrets, "svc-0").await;
    assert_ne!(held.access_key_id, old.access_key_id, "{case}: rotated");
    assert!(
        crate::support::stores::works(&held).await,
        "{case}: the new key works"
    );
    let mut want = vec![
        (old.access_key_id.clone(), old_state.to_string()),
        (held.access_key_id.clone(), "Active".to_string()),
    ];
    want.sort();
    assert_eq!(acct.keys("svc-0").await, want, "{case}: no orphan");
    let j = rekey::journal::SqliteJournal::open(
        &w.runner.journal(),
        std::sync::Arc::new(rekey::clock::SystemClock),
    )
    .unwrap();
    for user in ["p0-0", "svc-0"] {
        let events = j.key_events(&acct.account_id, user).unwrap();
        assert_eq!(rekey::journal::open_act(&events), None, "{case}: {user}");
    }
    assert!(
        rekey::journal::Journal::unfinished(&j)
            .await
            .unwrap()
            .is_empty(),
        "{case}: no unfinished rotation"
    );
}

/// Killed at each record of `--apply` (and right after each side effect),
/// or failed by injected faults — 5xx, throttling, a lost answer — the
/// next run settles everything: the stale key deactivated once, the
/// service key rotated once with its old key kept, nothing orphaned.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_run_killed_or_failed_at_any_step_is_settled_by_the_next() {
    let crash = |p: &'static str| ("REKEY_CRASH_AT", p);
    let faults = |f: &'static str| ("REKEY_FAULTS", f);
    let cases: &[(&str, &str)] = &[
        crash("deactivate:begin"),
        crash("deactivate:effect"),
        crash("deactivate:done"),
        crash("create_key:done"),
        crash("deliver:effect"),
        crash("promote:done"),
        crash("finish:done"),
        faults("iam:UpdateAccessKey@after"),
        faults("iam:UpdateAccessKey@before*2"),
        faults("iam:GetAccessKeyLastUsed@before*2"),
        faults("secretsmanager:PutSecretValue@after"),
        faults("iam:CreateAccessKey@after"),
    ];
    for (var, value) in cases {
        let case = format!("{var}={value}");
        let w = Stale::new(&[1]).await;
        let old = bound_users(&w.accounts[0], 1).await.remove(0);
        let first = w.enforce_with(&[(var, value)], &["--apply"]);
        if *var == "REKEY_CRASH_AT" {
            assert!(
                crate::support::stderr(&first).contains("crashing at"),
                "{case}: {}",
                said(&first)
            );
        }
        let second = w.enforce(&["--apply"]);
        assert!([0, 2].contains(&code(&second)), "{case}: {}", said(&second));
        let third = w.enforce(&["--apply"]);
        assert_eq!(code(&third), 0, "{case}: {}", said(&third));
        assert_eq!(
            by_user(&json_out(&third)),
            vec![],
            "{case}: all settled: {:#}",
            json_out(&third)["results"]
        );
        settled(&w, &old, ("Inactive", "Active"), &case).await;
    }
    // Through a network that throttles, answers 5xx or resets
    // connections: retried, and whatever failed is settled by a clean run.
    for faults in [
        crate::support::Faults {
            throttle: 0.3,
            ..Default::default()
        },
        crate::support::Faults {
            error_5xx: 0.2,
            ..Default::default()
        },
        crate::support::Faults {
            reset: 0.1,
            ..Default::default()
        },
    ] {
        let case = format!("{faults:?}");
        let w = Stale::new(&[1]).await;
        let old = bound_users(&w.accounts[0], 1).await.remove(0);
        let proxy = crate::support::Proxy::start(faults);
        let endpoint = proxy.endpoint();
        let env = [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_RETRY_MODE", "standard"),
        ];
        let first = w.enforce_with(&env, &["--apply"]);
        assert!([0, 2].contains(&code(&first)), "{case}: {}", said(&first));
        drop(proxy);
        let second = w.enforce(&["--apply"]);
        assert_eq!(code(&second), 0, "{case}: {}", said(&second));
        settled(&w, &old, ("Inactive", "Active"), &case).await;
    }
    // The deletion, a recovery window later, killed at each of its records.
    for point in ["delete:begin", "delete:effect", "delete:done"] {
        let w = Stale::new(&[1]).await;
        let old = bound_users(&w.accounts[0], 1).await.remove(0);
        let out = w.enforce(&["--apply"]);
        assert_eq!(code(&out), 0, "{point}: {}", said(&out));
        let later = ["--apply", "--as-of", "+8d"];
        let first = w.enforce_with(&[("REKEY_CRASH_AT", point)], &later);
        assert!(
            crate::support::stderr(&first).contains("crashing at"),
            "{point}"
        );
        let second = w.enforce(&later);
        assert_eq!(code(&second), 0, "{point}: {}", said(&second));
        // A recovery window later the replaced key is retired too.
        settled(&w, &old, ("gone", "Inactive"), point).await;
    }
}

/// `--reactivate` undoes a deactivation rekey made, within the recovery
/// window, journaled; the key then keeps its grace anew. A key rekey did
/// not deactivate, or one past its window, is refused, saying why.
#[tokio::test]
async fn reactivate_undoes_rekeys_deactivation_within_its_window_only() {
    let w = Stale::new(&[2]).await;
    let acct = &w.accounts[0];
    let out = w.enforce(&["--apply"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let (key, _) = acct.seeder.keys("p0-0").await.remove(0);
    let back = w.enforce(&["--reactivate", &key]);
    assert_eq!(code(&back), 0, "{}", said(&back));
    assert_eq!(by_user(&json_out(&back)), owned(&[("done", "p0-0")]));
    assert_eq!(
        w.states(0).await,
        owned(&[("p0-0", "Active"), ("p0-1", "Inactive")])
    );
    // Not deactivated again within its new grace; after it, it is.
    let now = w.enforce(&["--apply"]);
    assert_eq!(by_user(&json_out(&now)), vec![], "{}", said(&now));
    let later = w.enforce(&["--apply", "--as-of", "+8d"]);
    assert_eq!(code(&later), 0, "{}", said(&later));
    let got = json_out(&later);
    assert!(
        by_user(&got).contains(&("done".to_string(), "p0-0".to_string())),
        "{got:#}"
    );
    let journal = rekey::journal::SqliteJournal::open(
        &w.runner.journal(),
        std::sync::Arc::new(rekey::clock::SystemClock),
    )
    .unwrap();
    let ops: Vec<String> = (journal.key_events(&acct.account_id, "p0-0").unwrap().iter())
        .filter(|e| e.phase == rekey::journal::Phase::Done)
        .map(|e| e.op.as_str().to_string())
        .collect();
    assert!(
        ops.starts_with(&[
            "deactivate".into(),
            "reactivate".into(),
            "deactivate".into()
        ]),
        "{ops:?}"
    );
    // The trail: `history --keys`, newest first, masked in the table.
    let journal_arg = w.runner.journal();
    let journal_arg = journal_arg.to_str().unwrap();
    let trail = w
        .runner
        .home
        .rekey(&["history", "--keys", "--journal", journal_arg, "-o", "json"]);
    assert_eq!(code(&trail), 0, "{}", said(&trail));
    let trail = json_out(&trail);
    let seqs: Vec<i64> = (trail.as_array().unwrap().iter())
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["op"] == "reactivate"),
        "{trail:#}"
    );
    let table = w
        .runner
        .home
        .rekey(&["history", "--keys", "--journal", journal_arg]);
    let text = crate::support::stdout(&table);
    assert!(
        text.contains("reactivate") && text.contains("no destination: deactivate"),
        "{text}"
    );
    assert!(!text.contains(&key), "masked: {text}");
    // Deactivated again as of day 8: past its window as of day 16.
    let late = w.enforce(&["--reactivate", &key, "--as-of", "+16d"]);
    assert_eq!(code(&late), 2, "{}", said(&late));
    let why = json_out(&late)["results"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("its recovery window ended at"), "{why}");
    assert_eq!(
        w.states(0).await[0],
        ("p0-0".to_string(), "Inactive".to_string())
    );
    // One rekey never deactivated (p0-1's old key was deleted as of day 8).
    let new = acct.seeder.add_key("p0-1", 1, false).await;
    let theirs = w.enforce(&["--reactivate", &new.access_key_id]);
    assert_eq!(code(&theirs), 2, "{}", said(&theirs));
    let why = json_out(&theirs)["results"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("rekey did not deactivate it"), "{why}");
    assert!(!why.contains(&new.access_key_id), "key IDs masked: {why}");
}

/// With no selector, `enforce` plans the caller's own account. The plan
/// as a table and as Markdown gives, per key (masked), the action, why,
/// and when its next stage falls due; JSON carries the full IDs.
#[tokio::test]
async fn the_plan_is_read_as_a_table_or_markdown_for_the_callers_own_account() {
    let account = moto().new_account();
    let seeder = crate::support::Seeder::new(&account.account_id, &sdk_config(&account.admin));
    let ids = seeder
        .user(
            "old-timer",
            "/",
            &[],
            &[],
            &[crate::support::key(120, Some(2))],
        )
        .await;
    let soon = seeder
        .user("soon", "/", &[], &[], &[crate::support::key(80, Some(1))])
        .await;
    let runner = Runner::new(&account.admin);
    let journal = runner.journal();
    let run = |format: &str| {
        runner.home.rekey(&[
            "enforce",
            "--journal",
            journal.to_str().unwrap(),
            "-o",
            format,
        ])
    };
    let table = run("table");
    assert_eq!(code(&table), 0, "{}", said(&table));
    let text = crate::support::stdout(&table);
    for want in [
        "ACTION",
        "WHY",
        "NEXT",
        "deactivate",
        "warn",
        "no destination: deactivate",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let masked = rekey::model::mask_key_id(&ids[0]);
    assert!(text.contains(&masked), "{text}");
    assert!(
        !text.contains(&ids[0]) && !text.contains(&soon[0]),
        "masked: {text}"
    );
    assert!(text.contains("action(s) due"), "{text}");
    let md = crate::support::stdout(&run("markdown"));
    assert!(md.contains("| ACTION | KEY | WHY | NEXT |"), "{md}");
    assert!(
        md.contains(&format!("| deactivate | key {masked} of user old-timer")),
        "{md}"
    );
    let json = json_out(&run("json"));
    let of = |id: &str| {
        (json["actions"].as_array().unwrap().iter())
            .find(|a| a["key_id"] == id || a["old_key_id"] == id)
            .map(|a| a["action"].as_str().unwrap().to_string())
    };
    assert_eq!(of(&ids[0]).as_deref(), Some("deactivate"), "{json:#}");
    assert_eq!(of(&soon[0]).as_deref(), Some("warn"), "{json:#}");
    // Planning wrote nothing: no journal file.
    assert!(!journal.exists(), "a plan writes no journal");
}

/// DESIGN.md invariant 1 for retirement: a replaced key that a destination
/// holds again (someone put it back) is never deactivated — refused in
/// the plan, and refused at apply time when the destination was rewritten
/// after a reviewed plan was made.
#[tokio::test]
async fn a_replaced_key_a_destination_holds_again_is_never_retired() {
    let w = Stale::new(&[0]).await;
    let acct = &w.accounts[0];
    let old = bound_users(acct, 1).await.remove(0);
    let out = w.enforce(&["--apply"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_ne!(
        secret_key(&acct.secrets, "svc-0").await.access_key_id,
        old.access_key_id
    );
    // A reviewed plan, a grace later: it retires the old key.
    let plan_path = w.runner.home.path().join("retire.json");
    let made = w.enforce(&["--as-of", "+8d", "--plan-out", plan_path.to_str().unwrap()]);
    assert_eq!(code(&made), 0, "{}", said(&made));
    let plan = std::fs::read_to_string(&plan_path).unwrap();
    assert!(plan.contains("\"action\": \"retire\""), "{plan}");
    // Then someone puts the old key back into the secret.
    let current = (crate::support::stores::secret_versions(&acct.secrets, "svc-0").await)
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id)
        .unwrap();
    let put = acct
        .secrets
        .put_secret_value()
        .secret_id("svc-0")
        .secret_string(crate::support::stores::key_json(&old).to_string())
        .version_stages("RESTORED")
        .send()
        .await
        .unwrap();
    acct.secrets
        .update_secret_version_stage()
        .secret_id("svc-0")
        .version_stage("AWSCURRENT")
        .move_to_version_id(put.version_id().unwrap())
        .remove_from_version_id(current)
        .send()
        .await
        .unwrap();
    let current = crate::support::stores::secret_at(&acct.secrets, "svc-0", "AWSCURRENT").await;
    assert_eq!(
        current.map(|v| crate::support::stores::creds_of(&v).access_key_id),
        Some(old.access_key_id.clone()),
        "the old key is back"
    );
    let applied = w.enforce(&[
        "--apply-plan",
        plan_path.to_str().unwrap(),
        "--as-of",
        "+8d",
    ]);
    assert_eq!(code(&applied), 2, "{}", said(&applied));
    let got = json_out(&applied);
    let why = got["results"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(got["results"][0]["result"], "refused", "{got:#}");
    assert!(
        why.contains("a destination holds this replaced key again"),
        "{why}"
    );
    // Planned now, it is refused in the plan itself.
    let now = w.enforce(&["--apply", "--as-of", "+8d"]);
    assert_eq!(code(&now), 2, "{}", said(&now));
    let plan = json_out(&now)["plan"].clone();
    let skip = (plan["actions"].as_array().unwrap().iter())
        .find(|a| a["old_key_id"] == old.access_key_id.as_str())
        .unwrap_or_else(|| panic!("{plan:#}"));
    let why = skip["reason"]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("a destination holds this replaced key again"),
        "{skip:#}"
    );
    let keys = acct.keys("svc-0").await;
    assert!(
        keys.contains(&(old.access_key_id.clone(), "Active".to_string())),
        "{keys:?}"
    );
}

/// At the two-key limit, a rotation never deletes a key the lifecycle has
/// not made due for deletion: not one still in its recovery window (it
/// could not be reactivated), only once it is due — and then the rotation
/// deletes it as its first step.
#[tokio::test]
async fn a_rotation_frees_its_slot_only_with_a_key_due_for_deletion() {
    let w = Stale::new(&[0]).await;
    let acct = &w.accounts[0];
    let held = acct.user_in_secret("svc-0", 85).await;
    let other = acct.seeder.add_key("svc-0", 120, true).await;
    let out = w.enforce(&["--apply"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let mut did = results(&json_out(&out));
    did.sort();
    let mut want = vec![
        (
            "deactivate".to_string(),
            other.access_key_id.clone(),
            "done".to_string(),
        ),
        (
            "warn".to_string(),
            held.access_key_id.clone(),
            "done".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(
        did, want,
        "the stale other key deactivated, the held one warned"
    );
    // Six days on: the held key is over 90 days old, but the other key's
    // recovery window runs one more day: the rotation is refused.
    let early = w.enforce(&["--apply", "--as-of", "+6d"]);
    assert_eq!(code(&early), 2, "{}", said(&early));
    let plan = json_out(&early)["plan"].clone();
    let refused = (plan["actions"].as_array().unwrap().iter())
        .find(|a| a["old_key_id"] == held.access_key_id.as_str())
        .unwrap_or_else(|| panic!("{plan:#}"));
    let why = refused["reason"]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("is not due for deletion (not before"),
        "{refused:#}"
    );
    assert!(
        acct.keys("svc-0")
            .await
            .contains(&(other.access_key_id.clone(), "Inactive".to_string())),
        "kept for its recovery window"
    );
    // Past the window: one run deletes it (the rotation's first step) and
    // rotates.
    let later = w.enforce(&["--apply", "--as-of", "+8d"]);
    assert_eq!(code(&later), 0, "{}", said(&later));
    let keys = acct.keys("svc-0").await;
    let now_held = secret_key(&acct.secrets, "svc-0").await;
    assert_ne!(now_held.access_key_id, held.access_key_id, "rotated");
    assert!(
        !keys.iter().any(|(id, _)| *id == other.access_key_id),
        "{keys:?}"
    );
    assert_eq!(keys.len(), 2, "the old key kept, the new one: {keys:?}");
}

/// Invariant 1 at the instant of the act, below every plan: the executor
/// itself reads the user's destinations back and refuses to deactivate a
/// key one of them holds — here a reviewed plan's retire carried out
/// directly by the library, after the old key was put back into the
/// secret (no plan made again to catch it first).
#[tokio::test]
async fn the_executor_reads_the_destinations_back_before_any_deactivation() {
    let w = Stale::new(&[0]).await;
    let acct = &w.accounts[0];
    let old = bound_users(acct, 1).await.remove(0);
    assert_eq!(code(&w.enforce(&["--apply"])), 0);
    let path = w.runner.home.path().join("retire.json");
    let made = w.enforce(&["--as-of", "+8d", "--plan-out", path.to_str().unwrap()]);
    assert_eq!(code(&made), 0, "{}", said(&made));
    let plan =
        rekey::rotation::plan::Plan::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let retire = (plan.actions.iter())
        .find_map(|a| match a {
            rekey::rotation::plan::Action::Retire(k) => Some(k.clone()),
            _ => None,
        })
        .expect("a retire in the plan");
    assert_eq!(retire.key_id, old.access_key_id);
    assert!(
        retire.bound.is_some(),
        "the action carries the user's binding"
    );
    // The old key goes back into the secret as its current value.
    let current = (crate::support::stores::secret_versions(&acct.secrets, "svc-0").await)
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(id, _)| id)
        .unwrap();
    let put = (acct.secrets.put_secret_value())
        .secret_id("svc-0")
        .secret_string(crate::support::stores::key_json(&old).to_string())
        .version_stages("RESTORED")
        .send()
        .await
        .unwrap();
    (acct.secrets.update_secret_version_stage())
        .secret_id("svc-0")
        .version_stage("AWSCURRENT")
        .move_to_version_id(put.version_id().unwrap())
        .remove_from_version_id(current)
        .send()
        .await
        .unwrap();
    let journal = rekey::journal::SqliteJournal::open(
        &w.runner.journal(),
        std::sync::Arc::new(rekey::clock::SystemClock),
    )
    .unwrap();
    let deps = rekey::aws::Deps::new(sdk_config(&w.org.admin), Default::default(), None);
    let holder = rekey::journal::Holder::current("direct");
    let actor = rekey::enforce::act::Actor {
        journal: &journal,
        deps: &deps,
        holder: &holder,
        lease_ttl: Duration::minutes(5),
    };
    let err = actor.act(&retire).await.unwrap_err();
    let said = rekey::error::error_chain(&err);
    assert!(
        said.contains("holds this key: deactivating it would lock its readers out"),
        "{said}"
    );
    assert_eq!(
        acct.keys("svc-0")
            .await
            .iter()
            .find(|(id, _)| *id == old.access_key_id)
            .map(|(_, s)| s.as_str()),
        Some("Active"),
        "left active"
    );
    // Nothing was journaled for it: no Begin left to settle.
    let events = journal.key_events(&acct.account_id, "svc-0").unwrap();
    assert!(
        events.iter().all(|e| e.op != rekey::journal::KeyOp::Retire),
        "{events:?}"
    );
}

/// Two machines, two journals: a key the other journal's run deactivated
/// is not this journal's to delete — it never deletes it, nor acts twice;
/// the journal that deactivated it deletes it after the recovery window.
/// The user's name holds the separators IAM allows (`,+=@.`); the keys are
/// read per user (`--source api`): the emulator writes a name with a comma
/// into its credential report unquoted, which no CSV reader can split.
#[tokio::test]
async fn a_second_journal_never_deletes_what_the_first_deactivated() {
    let w = Stale::new(&[0]).await;
    let acct = &w.accounts[0];
    let name = "ops,team+a=b@x.y";
    acct.seeder
        .user(name, "/", &[], &[], &[crate::support::key(120, Some(3))])
        .await;
    let other = w.runner.state.path().join("other-machine.sqlite3");
    let elsewhere_run = |extra: &[&str]| {
        let mut args = vec![
            "enforce",
            "--org",
            "--exclude-account",
            &w.org.management_account_id,
            "--journal",
            other.to_str().unwrap(),
            "--source",
            "api",
            "--apply",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        w.runner.home.rekey(&args)
    };
    let first = w.enforce(&["--apply", "--source", "api"]);
    assert_eq!(code(&first), 0, "{}", said(&first));
    assert_eq!(by_user(&json_out(&first)), owned(&[("done", name)]));
    let elsewhere = elsewhere_run(&[]);
    assert_eq!(code(&elsewhere), 0, "{}", said(&elsewhere));
    assert_eq!(
        by_user(&json_out(&elsewhere)),
        vec![],
        "nothing for it to do"
    );
    let later_elsewhere = elsewhere_run(&["--as-of", "+8d"]);
    assert_eq!(code(&later_elsewhere), 0, "{}", said(&later_elsewhere));
    assert_eq!(by_user(&json_out(&later_elsewhere)), vec![]);
    assert_eq!(
        acct.keys(name).await.len(),
        1,
        "not deleted by the other journal"
    );
    let later = w.enforce(&["--apply", "--source", "api", "--as-of", "+8d"]);
    assert_eq!(code(&later), 0, "{}", said(&later));
    assert_eq!(by_user(&json_out(&later)), owned(&[("done", name)]));
    assert!(
        acct.keys(name).await.is_empty(),
        "deleted by its own journal"
    );
}

/// A bound user whose secret cannot be read (DescribeSecret denied) is
/// not taken for a user without a destination: its key is neither warned
/// nor deactivated, and the plan says the access was denied. (Found by the
/// least-privilege test of `rekey policy iam --mode enforce`.)
#[tokio::test]
async fn a_bound_user_whose_destination_cannot_be_read_is_left_alone_saying_why() {
    let w = Stale::new(&[0]).await;
    let acct = &w.accounts[0];
    let keys = bound_users(acct, 1).await;
    moto().control(
        "fail",
        json!({"action": "secretsmanager:DescribeSecret", "account_id": acct.account_id,
               "count": 1000, "status": 400, "code": "AccessDeniedException",
               "message": "User is not authorized to perform secretsmanager:DescribeSecret"}),
    );
    // 100 + 20 days: past max age + deactivate_after, were it unbound.
    let out = w.enforce(&["--apply", "--as-of", "+20d"]);
    let got = json_out(&out);
    let planned = got["plan"]["actions"].as_array().unwrap();
    assert_eq!(planned.len(), 1, "{got:#}");
    assert_eq!(planned[0]["action"], "skip", "{got:#}");
    assert_eq!(planned[0]["reason"]["reason"], "failed", "{got:#}");
    let why = planned[0]["reason"]["why"].as_str().unwrap();
    assert!(
        why.contains("DescribeSecret: AccessDeniedException"),
        "{why}"
    );
    assert!(got["results"].as_array().unwrap().is_empty(), "{got:#}");
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert_eq!(
        acct.keys("svc-0").await,
        vec![(keys[0].access_key_id.clone(), "Active".to_string())]
    );
}
