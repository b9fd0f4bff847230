//! Issue 7, second part: service users' keys rotated into Secrets Manager,
//! as a library run, against the emulator with signatures enforced and
//! inactive keys rejected. The new key is delivered staged (AWSPENDING),
//! proven, and only then made AWSCURRENT; the old key is kept active.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::SdkConfig;
use rekey::aws::AwsOptions;
use rekey::clock::SystemClock;
use rekey::destination::{Destination, SecretsManagerSecret};
use rekey::error::error_chain;
use rekey::journal::{Holder, OldKeyAction, SqliteJournal};
use rekey::rotation::access::Access;
use rekey::rotation::engine::{NoPrompt, Status};
use rekey::rotation::{self, Job, Mode, RotateOptions, RunOptions, RunReport, Subject};
use serde_json::{Value, json};

use crate::support::{Creds, Org, Seeder, member_config, moto, sdk_config};

const ROLE: &str = "OrganizationAccountAccessRole";

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
    home: tempfile::TempDir,
}

impl Service {
    async fn new(members: usize) -> Service {
        let org = moto().new_org(members);
        let account_id = org.members[0].account_id.clone();
        let seeder = Seeder::new(&account_id, &member_config(&org, &account_id).await);
        let key = seeder
            .user_with_key("svc", &["sts:GetCallerIdentity"], 100)
            .await;
        let caller = sdk_config(&org.admin);
        let secrets = aws_sdk_secretsmanager::Client::new(&caller);
        let secret_id = create_secret(&secrets, "ci/svc", &key).await;
        Service {
            org,
            account_id,
            seeder,
            key,
            caller,
            secrets,
            secret_id,
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn user_arn(&self) -> String {
        format!("arn:aws:iam::{}:user/svc", self.account_id)
    }

    fn job(&self, destination: Arc<dyn Destination>) -> Job {
        Job::new(
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
            self.caller.clone(),
            "service svc".into(),
        )
    }

    fn secret(&self) -> Arc<dyn Destination> {
        Arc::new(SecretsManagerSecret::new(
            &self.secret_id,
            None,
            None,
            &self.caller,
        ))
    }

    fn journal_path(&self) -> std::path::PathBuf {
        self.home.path().join("journal.sqlite3")
    }

    async fn run(&self, job: Job) -> RunReport {
        let journal = SqliteJournal::open(&self.journal_path(), Arc::new(SystemClock)).unwrap();
        let opts = RotateOptions {
            old_key: OldKeyAction::Keep,
            delete_other_active: false,
            max_age_days: None,
            propagation_timeout: std::time::Duration::from_secs(30),
            verify_successes: 2,
            lease_ttl: time::Duration::minutes(5),
            run_id: "service-keys-test".into(),
        };
        let aws = AwsOptions::default();
        let options = RunOptions {
            rotate: &opts,
            mode: Mode::Apply,
            concurrency: 1,
            clock: &SystemClock,
            prompt: &NoPrompt,
            holder: Holder::current("service-keys-test"),
            caller: &self.caller,
            profiles: None,
            aws: &aws,
        };
        rotation::run(&[job], &journal, &options).await
    }

    /// Every file of the journal (database, WAL) holds none of `secrets`.
    fn assert_journal_holds_no(&self, secrets: &[&str]) {
        assert_no_secret_in(self.home.path(), secrets);
    }
}

async fn create_secret(client: &aws_sdk_secretsmanager::Client, name: &str, key: &Creds) -> String {
    let value = json!({
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret_access_key,
        "Endpoint": "db.internal:5432",
    });
    let out = client
        .create_secret()
        .name(name)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create secret");
    out.arn().expect("arn").to_string()
}

fn assert_no_secret_in(dir: &Path, secrets: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "{} holds a secret", path.display());
        }
    }
}

/// The secret's JSON at `stage`.
async fn secret_at(client: &aws_sdk_secretsmanager::Client, id: &str, stage: &str) -> Value {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{stage}: {e:?}"));
    serde_json::from_str(out.secret_string().unwrap()).unwrap()
}

fn creds_of(value: &Value) -> Creds {
    Creds {
        access_key_id: value["AccessKeyId"].as_str().unwrap().to_string(),
        secret_access_key: value["SecretAccessKey"].as_str().unwrap().to_string(),
    }
}

/// Whether STS accepts `key` now.
async fn works(key: &Creds) -> bool {
    aws_sdk_sts::Client::new(&sdk_config(key))
        .get_caller_identity()
        .send()
        .await
        .is_ok()
}

fn assert_rotated(report: &RunReport) -> String {
    let errors: Vec<String> = report.failures.iter().map(|e| error_chain(e)).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(report.reports.len(), 1);
    let done = &report.reports[0];
    assert_eq!(done.status, Status::Rotated, "{}", done.message);
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
                let key = creds_of(&secret_at(&client, &id, "AWSCURRENT").await);
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
    let current = secret_at(&svc.secrets, &svc.secret_id, "AWSCURRENT").await;
    assert_eq!(current["AccessKeyId"], new.as_str());
    assert_eq!(current["Endpoint"], "db.internal:5432");
    let previous = secret_at(&svc.secrets, &svc.secret_id, "AWSPREVIOUS").await;
    assert_eq!(previous["AccessKeyId"], svc.key.access_key_id.as_str());
    // No AWSPENDING is left behind.
    let pending = svc
        .secrets
        .get_secret_value()
        .secret_id(&svc.secret_id)
        .version_stage("AWSPENDING")
        .send()
        .await;
    assert!(pending.is_err(), "AWSPENDING left: {pending:?}");
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

#[tokio::test]
async fn a_retried_delivery_with_the_same_token_creates_no_second_version() {
    let svc = Service::new(1).await;
    // PutSecretValue takes effect, then its answer is lost: the SDK sends
    // it again.
    moto().control(
        "fail",
        json!({
            "action": "secretsmanager:PutSecretValue",
            "account_id": svc.org.management_account_id,
            "count": 1,
            "status": 500,
            "code": "InternalServiceError",
            "after_success": true,
        }),
    );
    let report = svc.run(svc.job(svc.secret())).await;
    let new = assert_rotated(&report);
    let versions = svc
        .secrets
        .list_secret_version_ids()
        .secret_id(&svc.secret_id)
        .send()
        .await
        .unwrap();
    let mut stages: Vec<Vec<String>> = versions
        .versions()
        .iter()
        .map(|v| v.version_stages().to_vec())
        .collect();
    stages.sort();
    assert_eq!(
        stages,
        [
            vec!["AWSCURRENT".to_string()],
            vec!["AWSPREVIOUS".to_string()]
        ]
    );
    let current = secret_at(&svc.secrets, &svc.secret_id, "AWSCURRENT").await;
    assert_eq!(current["AccessKeyId"], new.as_str());
}

#[tokio::test]
async fn a_secret_in_a_central_account_is_reached_through_a_role_there() {
    let svc = Service::new(2).await;
    let central = svc.org.members[1].account_id.clone();
    let central_secrets =
        aws_sdk_secretsmanager::Client::new(&member_config(&svc.org, &central).await);
    let arn = create_secret(&central_secrets, "ci/svc", &svc.key).await;
    let secret = SecretsManagerSecret::new(
        &arn,
        None,
        Some(format!("arn:aws:iam::{central}:role/{ROLE}")),
        &svc.caller,
    );
    let report = svc.run(svc.job(Arc::new(secret))).await;
    let new = assert_rotated(&report);
    let current = secret_at(&central_secrets, &arn, "AWSCURRENT").await;
    assert_eq!(current["AccessKeyId"], new.as_str());
    assert!(works(&creds_of(&current)).await);
    // The caller's own account got nothing.
    let previous = secret_at(&central_secrets, &arn, "AWSPREVIOUS").await;
    assert_eq!(previous["AccessKeyId"], svc.key.access_key_id.as_str());
    let own = secret_at(&svc.secrets, &svc.secret_id, "AWSCURRENT").await;
    assert_eq!(own["AccessKeyId"], svc.key.access_key_id.as_str());
}
