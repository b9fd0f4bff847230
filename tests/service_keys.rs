//! Issue 7, second part: service users' keys rotated into Secrets Manager,
//! as a library run, against the emulator with signatures enforced and
//! inactive keys rejected. The new key is delivered staged (AWSPENDING),
//! proven, and only then made AWSCURRENT; the old key is kept active.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::SdkConfig;
use rekey::aws::{AwsOptions, Deps};
use rekey::clock::SystemClock;
use rekey::destination::DestinationSpec;
use rekey::error::error_chain;
use rekey::journal::{Holder, OldKeyAction, SqliteJournal};
use rekey::rotation::access::Access;
use rekey::rotation::engine::{NoPrompt, Status};
use rekey::rotation::{self, Job, JobSpec, Mode, RotateOptions, RunOptions, RunReport, Subject};
use serde_json::Value;

use crate::support::runner::{Runner, svc_in};
use crate::support::stores::{
    PARAM_KEY, ServiceAccount, assert_no_secret_in, create_secret, creds_of, param_at, param_key,
    param_kms_key, param_text, put_param, put_param_text, secret_at, secret_current, secret_key,
    works,
};
#[cfg(feature = "fault-injection")]
use crate::support::stores::{key_json, secret_versions};
use crate::support::{
    Creds, Org, ROLE, Seeder, code, member_config, moto, said, sdk_config, stderr, stdout,
};

/// A service user `svc` in member 0 of a fresh organization, whose key may
/// only ask STS who it is, and a secret holding that key.
struct Service {
    org: Org,
    account_id: String,
    seeder: Seeder,
    key: Creds,
    /// The caller: the management account's admin.
    caller: SdkConfig,
    /// Where the secret lives, and the clients that reach it.
    secrets: aws_sdk_secretsmanager::Client,
    secret_id: String,
    /// SSM parameters, in the caller's account.
    ssm: aws_sdk_ssm::Client,
    /// The CLI as the caller, and the journal of every run, library or CLI.
    runner: Runner,
}

impl Service {
    async fn new(members: usize) -> Service {
        let org = moto().new_org(members);
        let account_id = org.members[0].account_id.clone();
        let seeder = Seeder::new(&account_id, &member_config(&org, &account_id).await);
        let key = seeder.service_user("svc", 100).await;
        let caller = sdk_config(&org.admin);
        let secrets = aws_sdk_secretsmanager::Client::new(&caller);
        let secret_id = create_secret(&secrets, "ci/svc", &key).await;
        Service {
            runner: Runner::new(&org.admin),
            org,
            account_id,
            seeder,
            key,
            secrets,
            secret_id,
            ssm: aws_sdk_ssm::Client::new(&caller),
            caller,
        }
    }

    fn user_arn(&self) -> String {
        format!("arn:aws:iam::{}:user/svc", self.account_id)
    }

    fn job(&self, destination: DestinationSpec) -> JobSpec {
        JobSpec::new(
            "service svc".into(),
            Subject::Known {
                account_id: self.account_id.clone(),
                user_arn: self.user_arn(),
                old_key_id: self.key.access_key_id.clone(),
            },
            Access::Role {
                role: ROLE.into(),
                external_id: None,
            },
            vec![destination],
        )
    }

    fn secret(&self) -> DestinationSpec {
        DestinationSpec::SecretsManager {
            secret_id: self.secret_id.clone(),
            region: None,
            role: None,
            external_id: None,
            rotation_token: None,
        }
    }

    fn journal_path(&self) -> std::path::PathBuf {
        self.runner.journal()
    }

    /// Opens `spec` as the CLI does and runs it.
    async fn run(&self, spec: JobSpec) -> RunReport {
        let deps = Deps::new(self.caller.clone(), AwsOptions::default(), None);
        let job = Job::open(spec, &deps).await.expect("a job opens");
        let journal = SqliteJournal::open(&self.journal_path(), Arc::new(SystemClock)).unwrap();
        let opts = RotateOptions {
            old_key: OldKeyAction::Keep,
            delete_other_active: false,
            max_age_days: None,
            propagation_timeout: std::time::Duration::from_secs(30),
            verify_successes: 2,
            lease_ttl: time::Duration::minutes(5),
            run_id: "service-keys-test".into(),
            as_of: None,
        };
        let options = RunOptions {
            rotate: &opts,
            mode: Mode::Apply,
            concurrency: 1,
            clock: &SystemClock,
            prompt: &NoPrompt,
            holder: Holder::current("service-keys-test"),
            deps: &deps,
        };
        rotation::run(&[job], &journal, &options).await
    }

    /// Every file of the journal (database, WAL) holds none of `secrets`.
    fn assert_journal_holds_no(&self, secrets: &[&str]) {
        assert_no_secret_in(self.runner.state.path(), secrets);
    }
}

fn assert_rotated(report: &RunReport) -> String {
    let errors: Vec<String> = report
        .failures
        .iter()
        .map(|f| error_chain(&f.error))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(report.reports.len(), 1);
    let done = &report.reports[0];
    assert_eq!(done.status, Status::Rotated, "{:?}", done.outcome);
    done.new_key_id.clone().expect("a new key")
}

#[tokio::test]
async fn a_reader_of_awscurrent_always_holds_a_working_key_and_awsprevious_keeps_the_old() {
    let svc = Service::new(1).await;
    // IAM rejects a new key for a while after creating it: a secret made
    // current before the key is proven would hand readers a key that fails.
    moto().new_key_delay(&svc.account_id, 2.0, false, true);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (client, id, stop) = (svc.secrets.clone(), svc.secret_id.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let last = stop.load(Ordering::SeqCst);
                let key = secret_key(&client, &id).await;
                seen.push((key.access_key_id.clone(), works(&key).await));
                if last {
                    return seen;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };
    let report = svc.run(svc.job(svc.secret())).await;
    stop.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    moto().new_key_delay(&svc.account_id, 0.0, false, false);
    let new = assert_rotated(&report);

    let failed: Vec<_> = seen.iter().filter(|(_, ok)| !ok).collect();
    assert!(failed.is_empty(), "keys read that did not work: {failed:?}");
    assert!(seen.iter().any(|(k, _)| *k == new), "{seen:?}");
    let current = secret_current(&svc.secrets, &svc.secret_id).await;
    assert_eq!(current["AccessKeyId"], new.as_str());
    assert_eq!(current["Endpoint"], "db.internal:5432");
    let previous = secret_at(&svc.secrets, &svc.secret_id, "AWSPREVIOUS")
        .await
        .expect("AWSPREVIOUS");
    assert_eq!(previous["AccessKeyId"], svc.key.access_key_id.as_str());
    // No AWSPENDING is left behind.
    let pending = secret_at(&svc.secrets, &svc.secret_id, "AWSPENDING").await;
    assert!(pending.is_none(), "AWSPENDING left: {pending:?}");
    // The old key is kept active (its readers re-read on their own
    // schedule); the new one works.
    let mut keys = svc.seeder.keys("svc").await;
    keys.sort();
    let mut expected = vec![
        (svc.key.access_key_id.clone(), "Active".to_string()),
        (new.clone(), "Active".to_string()),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert!(works(&creds_of(&current)).await);
    svc.assert_journal_holds_no(&[
        &svc.key.secret_access_key,
        current["SecretAccessKey"].as_str().unwrap(),
    ]);
}

/// A delivery redone by a resumed run — killed after PutSecretValue took
/// effect, before the journal knew — sends the same ClientRequestToken, so
/// the secret gets no second version. (Within one call the SDK reuses its
/// own token on retries anyway; only a retry across runs tests rekey's.)
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_retried_delivery_with_the_same_token_creates_no_second_version() {
    let svc = Service::new(1).await;
    let first = cli(&svc, &[("REKEY_CRASH_AT", "deliver:effect")], &[]);
    assert_eq!(first.status.code(), None, "{}", stderr(&first));
    let second = cli(&svc, &[], &[]);
    assert_eq!(code(&second), 0, "{}", said(&second));
    let id = crate::support::rotation_id(&svc.runner.journal(), 1);
    assert!(
        stdout(&second).contains(&format!("finished rotation #{id}")),
        "{}",
        stdout(&second)
    );
    let mut stages: Vec<Vec<String>> = secret_versions(&svc.secrets, &svc.secret_id)
        .await
        .into_iter()
        .map(|(_, stages)| stages)
        .collect();
    stages.sort();
    assert_eq!(
        stages,
        [
            vec!["AWSCURRENT".to_string()],
            vec!["AWSPREVIOUS".to_string()]
        ],
        "the original version and the one new version, nothing else"
    );
    svc.assert_safe().await;
}

#[tokio::test]
async fn a_secret_in_a_central_account_is_reached_through_a_role_there() {
    let svc = Service::new(2).await;
    let central = svc.org.members[1].account_id.clone();
    let central_secrets =
        aws_sdk_secretsmanager::Client::new(&member_config(&svc.org, &central).await);
    let arn = create_secret(&central_secrets, "ci/svc", &svc.key).await;
    let secret = DestinationSpec::SecretsManager {
        secret_id: arn.clone(),
        region: None,
        role: Some(format!("arn:aws:iam::{central}:role/{ROLE}")),
        external_id: None,
        rotation_token: None,
    };
    let report = svc.run(svc.job(secret)).await;
    let new = assert_rotated(&report);
    let current = secret_current(&central_secrets, &arn).await;
    assert_eq!(current["AccessKeyId"], new.as_str());
    assert!(works(&creds_of(&current)).await);
    // The caller's own account got nothing.
    let previous = secret_at(&central_secrets, &arn, "AWSPREVIOUS")
        .await
        .expect("AWSPREVIOUS");
    assert_eq!(previous["AccessKeyId"], svc.key.access_key_id.as_str());
    let own = secret_current(&svc.secrets, &svc.secret_id).await;
    assert_eq!(own["AccessKeyId"], svc.key.access_key_id.as_str());
}

/// `rekey rotate --account A --user svc --role R --to secretsmanager:…`,
/// run by the management account's admin (the default chain).
fn cli(svc: &Service, env: &[(&str, &str)], extra: &[&str]) -> std::process::Output {
    cli_to(
        svc,
        &format!("secretsmanager:{}", svc.secret_id),
        env,
        extra,
    )
}

fn cli_to(svc: &Service, to: &str, env: &[(&str, &str)], extra: &[&str]) -> std::process::Output {
    let mut args = svc_in(&svc.account_id, &["--to", to]);
    args.extend_from_slice(extra);
    svc.runner.rotate_with(env, &args)
}

impl Service {
    /// The invariants after any run: AWSCURRENT holds a key that works and
    /// the journal holds no secret.
    async fn assert_working(&self, case: &str) -> Value {
        let current = secret_current(&self.secrets, &self.secret_id).await;
        let held = creds_of(&current);
        assert!(
            works(&held).await,
            "{case}: AWSCURRENT holds a key that fails"
        );
        self.assert_journal_holds_no(&[&self.key.secret_access_key, &held.secret_access_key]);
        current
    }

    /// After a run that ended every rotation: working, and every key of the
    /// user is held by the secret, as AWSCURRENT or as the kept AWSPREVIOUS
    /// (no orphan).
    async fn assert_safe(&self) -> Value {
        self.assert_ended_safe("").await
    }

    async fn assert_ended_safe(&self, case: &str) -> Value {
        let current = self.assert_working(case).await;
        let held = creds_of(&current);
        let previous = secret_at(&self.secrets, &self.secret_id, "AWSPREVIOUS")
            .await
            .map(|value| creds_of(&value).access_key_id);
        for (key, _) in self.seeder.keys("svc").await {
            assert!(
                key == held.access_key_id || Some(&key) == previous.as_ref(),
                "{case}: orphan key {key}"
            );
        }
        self.assert_journal_holds_no(&[&self.key.secret_access_key, &held.secret_access_key]);
        current
    }
}

#[tokio::test]
async fn the_cli_rotates_a_service_users_key_into_a_secret_and_keeps_the_old_key() {
    let svc = Service::new(1).await;
    let out = cli(&svc, &[], &[]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let text = stdout(&out);
    assert!(
        text.contains("[rotated]") && text.contains("kept active"),
        "{text}"
    );
    let current = svc.assert_safe().await;
    assert_ne!(current["AccessKeyId"], svc.key.access_key_id.as_str());
    assert!(works(&svc.key).await, "the old key is kept active");
}

#[tokio::test]
async fn the_cli_refuses_a_destination_it_cannot_parse_and_changes_nothing() {
    let svc = Service::new(1).await;
    let out = svc.runner.home.rekey(&[
        "rotate",
        "--journal",
        svc.journal_path().to_str().unwrap(),
        "--account",
        &svc.account_id,
        "--user",
        "svc",
        "--to",
        "vault:secret/ci",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("expected secretsmanager:NAME"),
        "{}",
        stderr(&out)
    );
    assert_eq!(svc.seeder.keys("svc").await.len(), 1);
    assert!(!svc.journal_path().exists());
}

/// Killed after each journaled step, or with a Secrets Manager call that
/// fails before or after taking effect: the next run finishes or undoes
/// it, and at every moment the secret holds a working key.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_rotation_into_a_secret_killed_or_failed_anywhere_ends_safe_on_the_next_run() {
    let crashes = [
        "create_key:begin",
        "create_key:done",
        "deliver:begin",
        "deliver:done",
        "deliver:effect",
        "verify:begin",
        "verify:done",
        "promote:begin",
        "promote:effect",
        "promote:done",
        "finish:done",
    ];
    let faults = [
        "secretsmanager:PutSecretValue@before",
        "secretsmanager:PutSecretValue@after",
        "secretsmanager:UpdateSecretVersionStage@before",
        "secretsmanager:UpdateSecretVersionStage@after",
        "secretsmanager:UpdateSecretVersionStage@after+1",
    ];
    let cases = crashes
        .iter()
        .map(|c| ("REKEY_CRASH_AT", *c))
        .chain(faults.iter().map(|f| ("REKEY_FAULTS", *f)));
    for (var, value) in cases {
        let svc = Service::new(1).await;
        let case = format!("{var}={value}");
        let first = cli(&svc, &[(var, value)], &[]);
        // Each case did interrupt the first run: killed, or failed.
        let ended = first.status.code();
        let expected = if var == "REKEY_CRASH_AT" {
            None
        } else {
            Some(2)
        };
        assert_eq!(ended, expected, "{case}: {}", stderr(&first));
        svc.assert_working(&case).await;
        let second = cli(&svc, &[], &[]);
        assert_eq!(
            code(&second),
            0,
            "{var}={value}: {}{}",
            stdout(&first),
            stderr(&second)
        );
        let current = svc.assert_ended_safe(&case).await;
        // Ended rotated, now or by the first run's own rollback and then
        // the second run: the secret no longer holds the original key.
        assert_ne!(
            current["AccessKeyId"],
            svc.key.access_key_id.as_str(),
            "{var}={value}: {}",
            stdout(&second)
        );
        let history = svc.runner.history();
        let text = stdout(&history);
        assert!(!text.contains("\"running\""), "{var}={value}: {text}");
    }
}

/// Rotated again while the key the last rotation kept is still active:
/// that key is freed first only if nothing used it since it was replaced.
#[tokio::test]
async fn a_kept_key_is_freed_by_the_next_rotation_only_if_unused_since() {
    let svc = Service::new(1).await;
    let first = cli(&svc, &[], &[]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let gen1 = creds_of(&svc.assert_safe().await);
    // A reader still on the old key uses it after it was replaced.
    assert!(works(&svc.key).await);
    let refused = cli(&svc, &[], &[]);
    assert_eq!(code(&refused), 2);
    let err = stderr(&refused);
    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert!(
        err.contains(&format!("was used on {today} (sts in us-east-1)"))
            && err.contains("will neither delete nor deactivate it"),
        "{err}"
    );
    assert_eq!(svc.seeder.keys("svc").await.len(), 2);
    assert_eq!(
        secret_current(&svc.secrets, &svc.secret_id).await["AccessKeyId"],
        gen1.access_key_id.as_str()
    );
    // Last used before it was replaced: freed, then the rotation goes on.
    moto().key_dates(&svc.account_id, "svc", &svc.key.access_key_id, 100, Some(1));
    let again = cli(&svc, &[], &[]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    let gen2 = creds_of(&svc.assert_safe().await);
    let mut keys: Vec<String> = svc
        .seeder
        .keys("svc")
        .await
        .into_iter()
        .map(|k| k.0)
        .collect();
    keys.sort();
    let mut expected = vec![gen1.access_key_id, gen2.access_key_id];
    expected.sort();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn a_reader_of_an_ssm_json_parameter_always_holds_a_working_key_and_its_kms_key_is_kept() {
    let svc = Service::new(1).await;
    put_param(&svc.ssm, "/ci/svc", &svc.key).await;
    moto().new_key_delay(&svc.account_id, 2.0, false, true);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (ssm, stop) = (svc.ssm.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let last = stop.load(Ordering::SeqCst);
                let key = param_key(&ssm, "/ci/svc").await;
                seen.push((key.access_key_id.clone(), works(&key).await));
                if last {
                    return seen;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };
    let destination = DestinationSpec::Ssm {
        path: "/ci/svc".into(),
        form: None,
        region: None,
        role: None,
        external_id: None,
    };
    let report = svc.run(svc.job(destination)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    moto().new_key_delay(&svc.account_id, 0.0, false, false);
    let new = assert_rotated(&report);
    let failed: Vec<_> = seen.iter().filter(|(_, ok)| !ok).collect();
    assert!(failed.is_empty(), "keys read that did not work: {failed:?}");
    let (value, _) = param_at(&svc.ssm, "/ci/svc").await;
    assert_eq!(value["AccessKeyId"], new.as_str());
    assert_eq!(value["Endpoint"], "db.internal:5432");
    assert!(works(&creds_of(&value)).await);
    assert_eq!(
        param_kms_key(&svc.ssm, "/ci/svc").await.as_deref(),
        Some(PARAM_KEY)
    );
    svc.assert_journal_holds_no(&[
        &svc.key.secret_access_key,
        value["SecretAccessKey"].as_str().unwrap(),
    ]);
}

#[tokio::test]
async fn an_ssm_pair_of_parameters_is_rotated_through_the_cli_keeping_its_kms_key() {
    let svc = Service::new(1).await;
    put_param_text(
        &svc.ssm,
        "/ci/pair/access_key_id",
        &svc.key.access_key_id,
        None,
    )
    .await;
    put_param_text(
        &svc.ssm,
        "/ci/pair/secret_access_key",
        &svc.key.secret_access_key,
        Some(PARAM_KEY),
    )
    .await;
    let out = cli_to(&svc, "ssm:/ci/pair", &[], &[]);
    assert_eq!(code(&out), 0, "{}", said(&out));
    let held = Creds {
        access_key_id: param_text(&svc.ssm, "/ci/pair/access_key_id").await,
        secret_access_key: param_text(&svc.ssm, "/ci/pair/secret_access_key").await,
    };
    assert_ne!(held.access_key_id, svc.key.access_key_id);
    assert!(works(&held).await);
    assert_eq!(
        param_kms_key(&svc.ssm, "/ci/pair/secret_access_key")
            .await
            .as_deref(),
        Some(PARAM_KEY)
    );
    assert!(works(&svc.key).await, "the old key is kept active");
    svc.assert_journal_holds_no(&[&svc.key.secret_access_key, &held.secret_access_key]);
}

/// Two destinations: the parameter is written (promoted), the run is
/// killed, and the next run cannot make the secret current: it undoes the
/// parameter from its history (nothing of the old value is in the journal,
/// and the first run's memory is gone).
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_resumed_undo_puts_the_previous_ssm_value_back_from_its_history() {
    let svc = Service::new(1).await;
    put_param(&svc.ssm, "/ci/svc", &svc.key).await;
    let value = key_json(&svc.key);
    let secret = format!("secretsmanager:{}", svc.secret_id);
    let both = ["--to", &secret];
    let first = cli_to(
        &svc,
        "ssm:/ci/svc",
        &[("REKEY_CRASH_AT", "promote:done")],
        &both,
    );
    assert!(first.status.code().is_none(), "{}", stderr(&first));
    let (promoted, _) = param_at(&svc.ssm, "/ci/svc").await;
    assert_ne!(promoted["AccessKeyId"], svc.key.access_key_id.as_str());
    assert!(works(&creds_of(&promoted)).await);
    let second = cli_to(
        &svc,
        "ssm:/ci/svc",
        &[(
            "REKEY_FAULTS",
            "secretsmanager:UpdateSecretVersionStage@before",
        )],
        &both,
    );
    assert_eq!(code(&second), 2, "{}", stdout(&second));
    let (now, _) = param_at(&svc.ssm, "/ci/svc").await;
    assert_eq!(now, value, "{}{}", stdout(&second), stderr(&second));
    assert!(works(&creds_of(&now)).await);
    assert_eq!(
        svc.seeder.keys("svc").await,
        [(svc.key.access_key_id.clone(), "Active".to_string())]
    );
    assert_eq!(
        param_kms_key(&svc.ssm, "/ci/svc").await.as_deref(),
        Some(PARAM_KEY)
    );
    let current = secret_current(&svc.secrets, &svc.secret_id).await;
    assert_eq!(current["AccessKeyId"], svc.key.access_key_id.as_str());
    svc.assert_journal_holds_no(&[
        &svc.key.secret_access_key,
        promoted["SecretAccessKey"].as_str().unwrap(),
    ]);
}

/// The same matrix into an SSM JSON parameter: killed after each journaled
/// step, or PutParameter failing before or after taking effect, the
/// parameter always holds a working key and the next run ends it.
#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_rotation_into_an_ssm_parameter_killed_or_failed_anywhere_ends_safe_on_the_next_run() {
    let crashes = [
        "create_key:done",
        "deliver:done",
        "verify:done",
        "promote:begin",
        "promote:effect",
        "promote:done",
        "finish:done",
    ];
    let faults = ["ssm:PutParameter@before", "ssm:PutParameter@after"];
    let cases = crashes
        .iter()
        .map(|c| ("REKEY_CRASH_AT", *c))
        .chain(faults.iter().map(|f| ("REKEY_FAULTS", *f)));
    for (var, value) in cases {
        let case = format!("{var}={value}");
        let svc = Service::new(1).await;
        put_param(&svc.ssm, "/ci/svc", &svc.key).await;
        let held = || param_key(&svc.ssm, "/ci/svc");
        let first = cli_to(&svc, "ssm:/ci/svc", &[(var, value)], &[]);
        let expected = if var == "REKEY_CRASH_AT" {
            None
        } else {
            Some(2)
        };
        assert_eq!(first.status.code(), expected, "{case}: {}", stderr(&first));
        let after_first = held().await;
        assert!(
            works(&after_first).await,
            "{case}: the parameter holds a key that fails"
        );
        let second = cli_to(&svc, "ssm:/ci/svc", &[], &[]);
        assert_eq!(
            code(&second),
            0,
            "{case}: {}{}",
            stdout(&second),
            stderr(&second)
        );
        let now = held().await;
        assert!(works(&now).await, "{case}");
        assert_ne!(now.access_key_id, svc.key.access_key_id, "{case}");
        assert_eq!(
            param_kms_key(&svc.ssm, "/ci/svc").await.as_deref(),
            Some(PARAM_KEY),
            "{case}"
        );
        // No orphan: every key is the one the parameter holds, or one a
        // completed rotation kept (the original, or the first run's key
        // when the second run finished that rotation and then rotated).
        for (key, _) in svc.seeder.keys("svc").await {
            assert!(
                key == now.access_key_id
                    || key == svc.key.access_key_id
                    || key == after_first.access_key_id,
                "{case}: orphan key {key}"
            );
        }
        svc.assert_journal_holds_no(&[&svc.key.secret_access_key, &now.secret_access_key]);
    }
}

/// The bound users of one member account of `rekey rotate --service`.
struct Member3 {
    account: ServiceAccount,
    /// Bound by tag, into the secret `svc/tagged`.
    tagged: Creds,
    /// Bound by a `[[service]]` entry, into the parameter `/svc/toml`.
    toml: Creds,
    /// Tagged `ssm:no-slash`: refused, left alone.
    broken: Creds,
}

impl Member3 {
    async fn new(org: &Org, i: usize) -> Member3 {
        let account = ServiceAccount::of(org, i).await;
        let tagged = account
            .user("svc-tagged", 100, Some("secretsmanager:svc/tagged"))
            .await;
        create_secret(&account.secrets, "svc/tagged", &tagged).await;
        let toml = account.user("svc-toml", 100, None).await;
        put_param(&account.ssm, "/svc/toml", &toml).await;
        let broken = account.user("svc-broken", 100, Some("ssm:no-slash")).await;
        Member3 {
            account,
            tagged,
            toml,
            broken,
        }
    }

    /// What the secret and the parameter hold now.
    async fn held(&self) -> (Creds, Creds) {
        (
            secret_key(&self.account.secrets, "svc/tagged").await,
            param_key(&self.account.ssm, "/svc/toml").await,
        )
    }
}

#[tokio::test]
async fn rotate_service_over_an_organization_rotates_every_bound_user_and_a_bad_tag_fails_only_its_user()
 {
    let org = moto().new_org(3);
    let mut members = Vec::new();
    for i in 0..org.members.len() {
        members.push(Member3::new(&org, i).await);
    }
    let runner = Runner::new(&org.admin);
    let entries: String = members
        .iter()
        .map(|m| {
            format!(
                "[[service]]\naccount = \"{}\"\nuser = \"svc-toml\"\nto = [\"ssm:/svc/toml\"]\n",
                m.account.account_id
            )
        })
        .collect();
    let config = runner.file("rekey.toml", &entries);
    let rotate = |extra: &[&str]| {
        let mut args = vec![
            "--service",
            "--org",
            "--role",
            ROLE,
            "--config",
            config.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        runner.rotate(&args)
    };

    let out = rotate(&[]);
    let (text, errors) = (stdout(&out), stderr(&out));
    assert_eq!(code(&out), 2, "{text}{errors}");
    assert_eq!(text.matches("[rotated]").count(), 6, "{text}{errors}");
    for m in &members {
        let (secret, param) = m.held().await;
        assert_ne!(secret.access_key_id, m.tagged.access_key_id, "{text}");
        assert_ne!(param.access_key_id, m.toml.access_key_id, "{text}");
        assert!(works(&secret).await && works(&param).await);
        // The default for a secret or a parameter: the old key stays active.
        assert!(works(&m.tagged).await && works(&m.toml).await);
        // The malformed tag failed its user only, by name, changing nothing.
        assert!(
            errors.contains(&format!(
                "account {}: user svc-broken: tag rekey:destination holds `ssm:no-slash`",
                m.account.account_id
            )),
            "{errors}"
        );
        assert_eq!(m.account.seeder.keys("svc-broken").await.len(), 1);
        assert!(works(&m.broken).await);
    }
    let (new_secret, _) = members[0].held().await;
    assert_no_secret_in(
        runner.state.path(),
        &[
            &members[0].tagged.secret_access_key,
            &new_secret.secret_access_key,
        ],
    );

    let again = rotate(&["--max-age", "90d"]);
    let text = format!("{}{}", stdout(&again), stderr(&again));
    assert_eq!(text.matches("[not due]").count(), 6, "{text}");
    assert!(!text.contains("[rotated]"), "{text}");
    for m in &members {
        assert_eq!(m.account.seeder.keys("svc-tagged").await.len(), 2, "{text}");
    }
}
