//! Issue 15, rotation safety: an active key in use is never freed, whatever
//! the journal knows (#2); an SSM pair killed between its two writes is
//! never called finished (#9); an undo never deletes a key another run
//! delivered (#10); a lost CreateAccessKey answer is swept and asked again
//! (#11). Each test fails on the code before the issue.

#[cfg(feature = "fault-injection")]
use std::path::Path;
#[cfg(feature = "fault-injection")]
use std::time::{Duration, Instant};

use crate::support::runner::{Runner, svc_in};
use crate::support::stores::{
    PARAM_KEY, ServiceAccount, create_secret, creds_of, param_text, put_param_text, secret_current,
    works,
};
use crate::support::{Creds, code, moto, said, sdk_config, stderr};
#[cfg(feature = "fault-injection")]
use crate::support::{ROLE, SIGABRT, json_out, signal, stdout};

/// A service user `svc` in a member account, reached through the role;
/// its secrets and parameters live in the caller's (management) account.
struct Svc {
    member: ServiceAccount,
    key: Creds,
    caller: Creds,
    secrets: aws_sdk_secretsmanager::Client,
    // Only the fault-injection tests read and write parameters.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    ssm: aws_sdk_ssm::Client,
    runner: Runner,
}

impl Svc {
    async fn new() -> Svc {
        let org = moto().new_org(1);
        let member = ServiceAccount::of(&org, 0).await;
        let key = member.seeder.service_user("svc", 100).await;
        let config = sdk_config(&org.admin);
        Svc {
            member,
            key,
            caller: org.admin.clone(),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            runner: Runner::new(&org.admin),
        }
    }

    /// `rotate --account A --user svc --role R --to … [extra]` with this
    /// runner's journal.
    fn rotate(&self, to: &[&str], env: &[(&str, &str)], extra: &[&str]) -> std::process::Output {
        self.rotate_in(&self.runner, to, env, extra)
    }

    /// The same with another runner: another journal, as on another machine.
    fn rotate_in(
        &self,
        runner: &Runner,
        to: &[&str],
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> std::process::Output {
        let mut args = svc_in(&self.member.account_id, &[]);
        for t in to {
            args.extend_from_slice(&["--to", t]);
        }
        args.extend_from_slice(extra);
        runner.rotate_with(env, &args)
    }

    /// `svc`'s keys, `(id, Active|Inactive)`.
    async fn keys(&self) -> Vec<(String, String)> {
        self.member.keys("svc").await
    }

    async fn status_of(&self, key_id: &str) -> Option<String> {
        self.keys()
            .await
            .into_iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, s)| s)
    }

    /// The pair under `path` as a reader gets it.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    async fn pair(&self, path: &str) -> Creds {
        Creds {
            access_key_id: param_text(&self.ssm, &format!("{path}/access_key_id")).await,
            secret_access_key: param_text(&self.ssm, &format!("{path}/secret_access_key")).await,
        }
    }

    /// A pair of parameters under `path` holding `key`: the ID as a String,
    /// the secret as a SecureString.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    async fn put_pair(&self, path: &str, key: &Creds) {
        let id = format!("{path}/access_key_id");
        let secret = format!("{path}/secret_access_key");
        put_param_text(&self.ssm, &id, &key.access_key_id, None).await;
        put_param_text(&self.ssm, &secret, &key.secret_access_key, Some(PARAM_KEY)).await;
    }

    #[cfg(feature = "fault-injection")]
    fn outcomes(&self) -> Vec<String> {
        let out = self.runner.history();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        json_out(&out)
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| r["outcome"].as_str().unwrap_or("running").to_string())
            .collect()
    }
}

/// Whether two pairs are the same key and secret.
#[cfg(feature = "fault-injection")]
fn same(a: &Creds, b: &Creds) -> bool {
    a.access_key_id == b.access_key_id && a.secret_access_key == b.secret_access_key
}

/// Today, as IAM dates a use made now.
fn today() -> String {
    time::OffsetDateTime::now_utc().date().to_string()
}

/// Issue 15 #2: the key an earlier rotation kept is still used by a reader.
/// With an empty journal (a CI job that starts clean) the next rotation
/// still sees the use in IAM — GetAccessKeyLastUsed later than the
/// CreateDate of the key the secret holds — and refuses, with or without
/// `--delete-other-active`, naming the service, region and date. Without
/// any recorded use, the refusal says so and the flag frees the slot.
#[tokio::test]
async fn issue_15_an_other_key_used_since_the_held_key_was_made_is_never_deleted_even_with_an_empty_journal()
 {
    let svc = Svc::new().await;
    create_secret(&svc.secrets, "ci/svc", &svc.key).await;
    let secret = "secretsmanager:ci/svc";
    let first = svc.rotate(&[secret], &[], &[]);
    assert_eq!(code(&first), 0, "{}", said(&first));
    let held = creds_of(&secret_current(&svc.secrets, "ci/svc").await);
    assert_ne!(held.access_key_id, svc.key.access_key_id);
    // A reader still on the kept key uses it now.
    assert!(works(&svc.key).await);

    for extra in [&["--delete-other-active"][..], &[][..]] {
        let fresh = Runner::new(&svc.caller);
        let out = svc.rotate_in(&fresh, &[secret], &[], extra);
        assert_eq!(
            svc.status_of(&svc.key.access_key_id).await.as_deref(),
            Some("Active"),
            "{extra:?}: the key in use is untouched: {}",
            said(&out)
        );
        assert_eq!(svc.keys().await.len(), 2, "{extra:?}");
        let now = creds_of(&secret_current(&svc.secrets, "ci/svc").await);
        assert_eq!(now.access_key_id, held.access_key_id, "{extra:?}");
        assert_eq!(code(&out), 2, "{extra:?}: {}", said(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("was used on {} (sts in us-east-1)", today()))
                && err.contains("will neither delete nor deactivate it"),
            "{extra:?}: {err}"
        );
        assert!(
            !err.contains("pass --delete-other-active"),
            "{extra:?}: {err}"
        );
    }
    // The journal that kept it refuses the same way.
    let out = svc.rotate(&[secret], &[], &["--delete-other-active"]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        stderr(&out).contains("(sts in us-east-1)"),
        "{}",
        said(&out)
    );

    // IAM has no record of any use: said so; deleting it takes the flag.
    moto().key_dates(
        &svc.member.account_id,
        "svc",
        &svc.key.access_key_id,
        100,
        None,
    );
    let fresh = Runner::new(&svc.caller);
    let out = svc.rotate_in(&fresh, &[secret], &[], &[]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    let err = stderr(&out);
    assert!(
        err.contains("(IAM has no record of its use)")
            && err.contains("pass --delete-other-active"),
        "{err}"
    );
    let out = svc.rotate_in(&fresh, &[secret], &[], &["--delete-other-active"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert_eq!(svc.status_of(&svc.key.access_key_id).await, None);
    let now = creds_of(&secret_current(&svc.secrets, "ci/svc").await);
    assert!(works(&now).await);
}

/// Issue 15 #9: the pair form is written ID first, then secret. Killed
/// between the two writes, the new ID stands beside the old secret and the
/// new secret is gone with the process. The next run must not call that
/// finished (before: `finished rotation #1`, exit 0, a pair that never
/// signs, and with `--old-key delete` the old key deleted too): it deletes
/// the new key, puts the old pair back from the history, then rotates.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn issue_15_an_ssm_pair_killed_between_its_id_and_secret_writes_is_undone_not_finished() {
    let svc = Svc::new().await;
    svc.put_pair("/ci/pair", &svc.key).await;
    let to = ["ssm:/ci/pair"];
    let delete = ["--old-key", "delete"];
    let kill = [("REKEY_FAULTS", "ssm:PutParameter@kill+1")];
    let first = svc.rotate(&to, &kill, &delete);
    assert_eq!(signal(&first), SIGABRT, "{}", said(&first));
    let torn = svc.pair("/ci/pair").await;
    assert_ne!(
        torn.access_key_id, svc.key.access_key_id,
        "the ID was written"
    );
    assert_eq!(
        torn.secret_access_key, svc.key.secret_access_key,
        "the secret was not"
    );

    let second = svc.rotate(&to, &[], &delete);
    assert_eq!(code(&second), 0, "{}", said(&second));
    let pair = svc.pair("/ci/pair").await;
    assert!(
        works(&pair).await,
        "the pair a reader gets signs: {}",
        said(&second)
    );
    assert!(
        !stdout(&second).contains("finished rotation #"),
        "{}",
        said(&second)
    );
    assert_eq!(svc.outcomes(), ["completed", "undone"], "newest first");
    // The old key was deleted by the second rotation only, once the pair
    // held its successor; the key of the killed run is gone too.
    let keys = svc.keys().await;
    assert_eq!(keys, [(pair.access_key_id.clone(), "Active".to_string())]);
    assert_ne!(pair.access_key_id, torn.access_key_id);
}

/// Issue 15 #9, the other order: an undo writes the pair back secret first,
/// then ID. Killed between those two writes (the first parameter restored,
/// the second destination's promotion having failed), the next run
/// finishes the undo from the parameters' history and rotates.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn issue_15_an_ssm_pair_killed_between_the_secret_and_id_writes_of_its_undo_is_undone() {
    let svc = Svc::new().await;
    svc.put_pair("/ci/a", &svc.key).await;
    svc.put_pair("/ci/b", &svc.key).await;
    let to = ["ssm:/ci/a", "ssm:/ci/b"];
    // Writes 1-2: /ci/a promoted; 3: /ci/b's ID fails; the undo then puts
    // /ci/a's secret back (4) and dies before its ID (5).
    let faults = [(
        "REKEY_FAULTS",
        "ssm:PutParameter@before+2,ssm:PutParameter@kill+4",
    )];
    let first = svc.rotate(&to, &faults, &[]);
    assert_eq!(signal(&first), SIGABRT, "{}", said(&first));
    let torn = svc.pair("/ci/a").await;
    assert_ne!(
        torn.access_key_id, svc.key.access_key_id,
        "the ID is the new one"
    );
    assert_eq!(
        torn.secret_access_key, svc.key.secret_access_key,
        "the secret was put back"
    );

    let second = svc.rotate(&to, &[], &[]);
    assert_eq!(code(&second), 0, "{}", said(&second));
    let (a, b) = (svc.pair("/ci/a").await, svc.pair("/ci/b").await);
    assert!(same(&a, &b), "{}", said(&second));
    assert!(works(&a).await, "{}", said(&second));
    assert_eq!(svc.outcomes(), ["completed", "undone"], "newest first");
    assert_eq!(svc.status_of(&torn.access_key_id).await, None);
}

/// Issue 15 #9, with the new secret still at hand: a secret and a pair,
/// killed between the pair's two writes. The next run finds the new pair
/// in the secret and must write the pair's secret too (before: the
/// promotion saw the new ID and called the pair done).
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn issue_15_an_ssm_pair_left_half_written_is_written_whole_when_the_secret_is_known() {
    let svc = Svc::new().await;
    create_secret(&svc.secrets, "ci/svc", &svc.key).await;
    svc.put_pair("/ci/pair", &svc.key).await;
    let to = ["secretsmanager:ci/svc", "ssm:/ci/pair"];
    let kill = [("REKEY_FAULTS", "ssm:PutParameter@kill+1")];
    let first = svc.rotate(&to, &kill, &[]);
    assert_eq!(signal(&first), SIGABRT, "{}", said(&first));
    let second = svc.rotate(&to, &[], &[]);
    assert_eq!(code(&second), 0, "{}", said(&second));
    let current = creds_of(&secret_current(&svc.secrets, "ci/svc").await);
    let pair = svc.pair("/ci/pair").await;
    assert!(same(&pair, &current), "{}", said(&second));
    assert!(works(&pair).await);
    assert_eq!(svc.outcomes(), ["completed"]);
}

/// Waits (bounded) for a file another process creates: synchronisation
/// between two runs, not a timing rule.
#[cfg(feature = "fault-injection")]
async fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 15 #10: two `rotate --service` runs on two machines (two journals)
/// over the same users, interleaved exactly: run A plans and holds its
/// first CreateAccessKey; run B rotates every user; then A's request meets
/// the two-key limit B's new key filled. A's undo must not delete B's key,
/// which the secret holds (before: deleted as "made while A ran" — the
/// secret then held a dead key). Every user's secret ends on an Active key
/// that works.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn issue_15_an_undo_never_deletes_the_key_another_runs_journal_delivered() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let users = ["svc1", "svc2"];
    for user in users {
        member.user_in_secret(user, 100).await;
    }
    let (a, b) = (Runner::new(&org.admin), Runner::new(&org.admin));
    let args = [
        "--service",
        "--account",
        member.account_id.as_str(),
        "--role",
        ROLE,
        "--concurrency",
        "1",
    ];
    let go = a.state.path().join("go");
    let mut held = a.rotate_command(&args);
    held.env("REKEY_FAULTS", "iam:CreateAccessKey@wait")
        .env("REKEY_WAIT_FILE", &go);
    let run_a = held
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&a.state.path().join("go.waiting")).await;
    let run_b = b.rotate(&args);
    assert_eq!(code(&run_b), 0, "run B: {}", said(&run_b));
    std::fs::write(&go, b"").unwrap();
    let run_a = run_a.wait_with_output().unwrap();
    for user in users {
        let current = creds_of(&secret_current(&member.secrets, user).await);
        let keys = member.keys(user).await;
        assert!(
            keys.contains(&(current.access_key_id.clone(), "Active".to_string())),
            "{user}: the secret's key is gone: {keys:?}\nrun A: {}",
            said(&run_a)
        );
        assert!(works(&current).await, "{user}");
    }
    assert_eq!(code(&run_a), 2, "run A: {}", said(&run_a));
    assert!(
        stderr(&run_a).contains("two-key limit"),
        "run A: {}",
        said(&run_a)
    );
}

/// Issue 15 #11: CreateAccessKey's answer is lost after IAM made the key.
/// The run finds that key (made then, held and named nowhere), deletes it
/// and asks again, as the README says — before, it waited, undid and
/// exited 2.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn issue_15_a_lost_create_answer_is_swept_and_asked_again() {
    let dev = crate::rotate::Dev::new(100).await;
    let lost = [("REKEY_FAULTS", "iam:CreateAccessKey@after")];
    let out = dev.rotate_with(&lost, &["--profile", "dev"]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    assert!(stdout(&out).contains("[rotated]"), "{}", said(&out));
    dev.assert_profile_works("dev");
    dev.assert_no_orphans().await;
    let history = dev.history();
    let rotations = history.as_array().unwrap();
    assert_eq!(rotations.len(), 1, "{history}");
    assert_eq!(rotations[0]["outcome"], "completed");
}

/// Issue 15, confusing messages: a key the user does not have is named
/// with the destination that holds it. Nothing changes.
#[tokio::test]
async fn issue_15_refusals_name_the_destination_and_its_kind() {
    let svc = Svc::new().await;
    let stranger = stranger();
    create_secret(&svc.secrets, "ci/other", &stranger).await;
    let out = svc.rotate(&["secretsmanager:ci/other"], &[], &[]);
    assert_eq!(code(&out), 2, "{}", said(&out));
    assert!(
        stderr(&out).contains(
            "key AKIA…NGE1, which secretsmanager:ci/other holds, is not one of user svc's keys"
        ),
        "{}",
        said(&out)
    );
    assert_eq!(
        svc.keys().await,
        [(svc.key.access_key_id.clone(), "Active".to_string())]
    );
}

fn stranger() -> Creds {
    Creds {
        access_key_id: "AKIASTRANGERSTRANGE1".into(),
        secret_access_key: "not-a-secret-of-svc".into(),
    }
}

/// Issue 15, confusing messages: a parameter that comes to hold another
/// key while the run is under way (after the run read every destination,
/// before it delivered) is called a parameter, not a profile, and the
/// rotation is undone: the user, the secret and the parameter end as they
/// were. The run is held at CreateAccessKey while the parameter changes;
/// a parameter holding another key from the start is refused before
/// anything is made (issue 15 #5).
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn issue_15_a_parameter_changed_mid_run_is_named_as_a_parameter() {
    let svc = Svc::new().await;
    let stranger = stranger();
    create_secret(&svc.secrets, "ci/svc", &svc.key).await;
    svc.put_pair("/ci/svc6", &svc.key).await;
    let go = svc.runner.state.path().join("go");
    let mut args = svc_in(&svc.member.account_id, &[]);
    args.extend_from_slice(&["--to", "secretsmanager:ci/svc", "--to", "ssm:/ci/svc6"]);
    let held = svc
        .runner
        .rotate_command(&args)
        .env("REKEY_FAULTS", "iam:CreateAccessKey@wait")
        .env("REKEY_WAIT_FILE", &go)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&svc.runner.state.path().join("go.waiting")).await;
    svc.put_pair("/ci/svc6", &stranger).await;
    std::fs::write(&go, b"").unwrap();
    let out = held.wait_with_output().unwrap();
    assert_eq!(code(&out), 2, "{}", said(&out));
    let err = stderr(&out);
    assert!(
        err.contains("parameter /ci/svc6/access_key_id now holds AKIA…NGE1")
            && !err.contains("profile /ci/svc6"),
        "{err}"
    );
    assert_eq!(
        svc.keys().await,
        [(svc.key.access_key_id.clone(), "Active".to_string())]
    );
    let current = creds_of(&secret_current(&svc.secrets, "ci/svc").await);
    assert_eq!(current.access_key_id, svc.key.access_key_id);
    assert_eq!(
        svc.pair("/ci/svc6").await.access_key_id,
        stranger.access_key_id
    );
}
