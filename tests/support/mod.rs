//! Test harness: one moto server per test binary (started on first use by
//! `tests/support/moto_harness.py`, which patches moto where it differs from
//! AWS), helpers that give each test its own organization or account, and a
//! runner for the `rekey` binary with an isolated environment.

#![allow(dead_code)]

#[cfg(feature = "lambda")]
pub mod function;
pub mod http;
pub mod notify;
pub mod runner;
#[cfg(feature = "lambda")]
pub mod runtime_api;
pub mod stores;
pub mod webhook;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use serde_json::{Value, json};

/// The emulator of this test binary.
pub struct Moto {
    pub port: u16,
    // Held so the harness's stdin stays open; it exits at EOF, i.e. when
    // this process ends, even if killed.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

/// The shared emulator, started on first use.
pub fn moto() -> &'static Moto {
    MOTO.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_harness.py");
        let mut child = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/support/moto_harness.py (is python3 with moto installed? run scripts/ensure-tools)");
        let stdout = child.stdout.take().expect("harness stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read READY line");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("moto harness did not start: {line:?}"));
        let stdin = child.stdin.take().expect("harness stdin");
        Moto {
            port,
            _stdin: Mutex::new(stdin),
            _child: Mutex::new(child),
        }
    })
}

impl Moto {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// POSTs to the harness's control API and returns its JSON answer.
    pub fn control(&self, path: &str, body: Value) -> Value {
        let body = body.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            stream,
            "POST /_rekey/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send control request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read control answer");
        let (head, body) = response.split_once("\r\n\r\n").expect("HTTP answer");
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "control {path} failed: {response}"
        );
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("control {path}: {e}: {body}"))
    }

    /// A fresh organization with `members` member accounts.
    pub fn new_org(&self, members: usize) -> Org {
        let v = self.control("new_org", json!({ "members": members }));
        Org {
            management_account_id: s(&v["management_account_id"]),
            admin: Creds::from_json(&v),
            members: v["members"]
                .as_array()
                .expect("members")
                .iter()
                .map(|m| Member {
                    account_id: s(&m["account_id"]),
                    name: s(&m["name"]),
                })
                .collect(),
        }
    }

    /// A fresh account with an admin user; its key is returned.
    pub fn new_account(&self) -> Account {
        let v = self.control("new_account", json!({}));
        Account {
            account_id: s(&v["account_id"]),
            admin: Creds::from_json(&v),
        }
    }

    /// Back-dates a key and sets when it was last used (days before now).
    pub fn key_dates(
        &self,
        account_id: &str,
        user: &str,
        key_id: &str,
        age_days: i64,
        used_days_ago: Option<i64>,
    ) {
        let now = time::OffsetDateTime::now_utc();
        let iso = |d: i64| {
            (now - time::Duration::days(d))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        self.control(
            "key_dates",
            json!({
                "account_id": account_id,
                "user_name": user,
                "access_key_id": key_id,
                "create_date": iso(age_days),
                "last_used_date": used_days_ago.map(iso),
                "last_used_service": used_days_ago.map(|_| "s3"),
                "last_used_region": used_days_ago.map(|_| "us-east-1"),
            }),
        );
    }

    /// For `seconds` after each CreateAccessKey in `account_id`, the new key
    /// is left out of ListAccessKeys and the credential report (`hide`) and
    /// rejected with InvalidClientTokenId (`reject`), as while IAM
    /// propagates it. `seconds == 0.0` clears it.
    pub fn new_key_delay(&self, account_id: &str, seconds: f64, hide: bool, reject: bool) {
        self.control(
            "new_key_delay",
            json!({ "account_id": account_id, "seconds": seconds, "hide": hide, "reject": reject }),
        );
    }

    /// A virtual MFA device enabled for `user`; returns its serial (ARN).
    pub fn mfa_device(&self, account_id: &str, user: &str) -> String {
        let v = self.control(
            "mfa_device",
            json!({ "account_id": account_id, "user_name": user }),
        );
        s(&v["serial_number"])
    }

    /// The current TOTP code of the virtual MFA device `serial`.
    pub fn mfa_code(&self, serial: &str) -> String {
        s(&self.control("mfa_code", json!({ "serial_number": serial }))["code"])
    }

    /// Freezes the account's credential report as it is now, labelled
    /// `hours_ago` hours old: IAM serves it until it is four hours old.
    pub fn report_age(&self, account_id: &str, hours_ago: i64) {
        let at = time::OffsetDateTime::now_utc() - time::Duration::hours(hours_ago);
        self.control(
            "report_age",
            json!({
                "account_id": account_id,
                "generated_at": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
            }),
        );
    }

    /// Marks a secret as rotated by `lambda_arn` (DescribeSecret's
    /// RotationEnabled, RotationLambdaARN), as AWS shows a secret with
    /// rotation configured; nothing is invoked.
    pub fn secret_rotation(&self, account_id: &str, secret_id: &str, lambda_arn: &str) {
        self.control(
            "secret_rotation",
            json!({ "account_id": account_id, "secret_id": secret_id, "lambda_arn": lambda_arn }),
        );
    }

    /// What RotateSecret does before the rotation function runs: version
    /// `token` staged AWSPENDING (no value; `copy`: AWSCURRENT's, as
    /// moto's own RotateSecret makes it), rotation on through `lambda_arn`.
    pub fn secret_pending(
        &self,
        account_id: &str,
        secret_id: &str,
        token: &str,
        lambda_arn: &str,
        copy: bool,
    ) {
        self.control(
            "secret_pending",
            json!({ "account_id": account_id, "secret_id": secret_id, "token": token,
                    "lambda_arn": lambda_arn, "copy": copy }),
        );
    }

    /// Gives the root user of an account keys, each `(active, age_days)`.
    pub fn root_keys(&self, account_id: &str, keys: &[(bool, i64)]) {
        let now = time::OffsetDateTime::now_utc();
        let keys: Vec<Value> = keys
            .iter()
            .map(|(active, age)| {
                json!({
                    "active": active,
                    "last_rotated": (now - time::Duration::days(*age)).format(&time::format_description::well_known::Rfc3339).unwrap(),
                    "last_used_date": null,
                })
            })
            .collect();
        self.control(
            "root_keys",
            json!({ "account_id": account_id, "keys": keys }),
        );
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

/// A static key pair (fake, emulator-only).
#[derive(Debug, Clone)]
pub struct Creds {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Creds {
    fn from_json(v: &Value) -> Creds {
        Creds {
            access_key_id: s(&v["access_key_id"]),
            secret_access_key: s(&v["secret_access_key"]),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub account_id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Org {
    pub management_account_id: String,
    pub admin: Creds,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub account_id: String,
    pub admin: Creds,
}

/// SDK configuration signing with `creds`, pointed at the emulator.
pub fn sdk_config(creds: &Creds) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto().endpoint())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                &creds.access_key_id,
                &creds.secret_access_key,
                None,
                None,
                "tests",
            )),
        )
        .build()
}

/// The role Organizations creates in every member account, which the
/// management account may assume.
pub const ROLE: &str = "OrganizationAccountAccessRole";

/// IAM client of a member account, entered through its [`ROLE`] from the
/// management account.
pub async fn member_config(org: &Org, account_id: &str) -> SdkConfig {
    let sts = aws_sdk_sts::Client::new(&sdk_config(&org.admin));
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account_id}:role/{ROLE}"))
        .role_session_name("tests")
        .send()
        .await
        .expect("assume OrganizationAccountAccessRole");
    let c = out.credentials().expect("credentials");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(moto().endpoint())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_string()),
                None,
                "tests",
            )),
        )
        .build()
}

/// A seeder for a member account, entered through its role.
pub async fn member_seeder(org: &Org, account_id: &str) -> Seeder {
    Seeder::new(account_id, &member_config(org, account_id).await)
}

/// User `name` with one key `spec` in every member account.
pub async fn seed_members(org: &Org, name: &str, spec: KeySpec) {
    for m in &org.members {
        member_seeder(org, &m.account_id)
            .await
            .user(name, "/", &[], &[], &[spec])
            .await;
    }
}

/// Creates IAM users and keys in one account.
pub struct Seeder {
    pub account_id: String,
    pub iam: aws_sdk_iam::Client,
}

/// How a seeded key should look.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub age_days: i64,
    pub used_days_ago: Option<i64>,
    pub active: bool,
}

pub const fn key(age_days: i64, used_days_ago: Option<i64>) -> KeySpec {
    KeySpec {
        age_days,
        used_days_ago,
        active: true,
    }
}

pub const fn inactive(age_days: i64) -> KeySpec {
    KeySpec {
        age_days,
        used_days_ago: None,
        active: false,
    }
}

impl Seeder {
    pub fn new(account_id: &str, config: &SdkConfig) -> Seeder {
        Seeder {
            account_id: account_id.to_string(),
            iam: aws_sdk_iam::Client::new(config),
        }
    }

    /// A user with tags, groups (created when missing) and keys; returns
    /// the key IDs in order.
    pub async fn user(
        &self,
        name: &str,
        path: &str,
        tags: &[(&str, &str)],
        groups: &[&str],
        keys: &[KeySpec],
    ) -> Vec<String> {
        let mut req = self.iam.create_user().user_name(name).path(path);
        for (k, v) in tags {
            req = req.tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(*k)
                    .value(*v)
                    .build()
                    .unwrap(),
            );
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("create user {name}: {e:?}"));
        for g in groups {
            let _ = self.iam.create_group().group_name(*g).send().await;
            self.iam
                .add_user_to_group()
                .group_name(*g)
                .user_name(name)
                .send()
                .await
                .expect("add to group");
        }
        let mut ids = Vec::new();
        for spec in keys {
            let out = self
                .iam
                .create_access_key()
                .user_name(name)
                .send()
                .await
                .expect("create key");
            let id = out.access_key().expect("key").access_key_id().to_string();
            if !spec.active {
                self.iam
                    .update_access_key()
                    .user_name(name)
                    .access_key_id(&id)
                    .status(aws_sdk_iam::types::StatusType::Inactive)
                    .send()
                    .await
                    .expect("deactivate");
            }
            moto().key_dates(
                &self.account_id,
                name,
                &id,
                spec.age_days,
                spec.used_days_ago,
            );
            ids.push(id);
        }
        ids
    }
}

/// A scratch home for one test: credentials and config files, and a runner
/// for the `rekey` binary that sees only this environment.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        let home = Home { dir, env: vec![] };
        std::fs::write(home.credentials_path(), "").unwrap();
        std::fs::write(home.config_path(), "").unwrap();
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.dir.path().join(".aws/credentials")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join(".aws/config")
    }

    /// Appends a static-key profile to the credentials file.
    pub fn add_profile(&self, name: &str, creds: &Creds) {
        let mut text = std::fs::read_to_string(self.credentials_path()).unwrap();
        text.push_str(&format!(
            "[{name}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            creds.access_key_id, creds.secret_access_key
        ));
        std::fs::write(self.credentials_path(), text).unwrap();
    }

    /// Base credentials for the run, as AWS_ACCESS_KEY_ID/SECRET.
    pub fn with_base(mut self, creds: &Creds) -> Home {
        self.env
            .push(("AWS_ACCESS_KEY_ID".into(), creds.access_key_id.clone()));
        self.env.push((
            "AWS_SECRET_ACCESS_KEY".into(),
            creds.secret_access_key.clone(),
        ));
        self
    }

    /// Runs `rekey ARGS` against the emulator with only this home's files.
    pub fn rekey(&self, args: &[&str]) -> Output {
        self.rekey_with(&[], args)
    }

    /// [`Home::rekey`] with extra environment (fault injection).
    pub fn rekey_with(&self, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
        self.rekey_command(extra_env, args)
            .output()
            .expect("run rekey")
    }

    /// The command [`Home::rekey_with`] runs, for a test that starts it in
    /// the background (stdout and stderr piped).
    pub fn rekey_command(&self, extra_env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rekey"));
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("REKEY_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.path())
            .env("AWS_SHARED_CREDENTIALS_FILE", self.credentials_path())
            .env("AWS_CONFIG_FILE", self.config_path())
            .env("AWS_ENDPOINT_URL", moto().endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra_env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .current_dir(self.path());
        cmd
    }

    /// Runs `aws ARGS` (the independent client) with this home's files.
    pub fn aws(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("aws");
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.path())
            .env("AWS_SHARED_CREDENTIALS_FILE", self.credentials_path())
            .env("AWS_CONFIG_FILE", self.config_path())
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .arg("--endpoint-url")
            .arg(moto().endpoint())
            .args(args)
            .stdin(Stdio::null());
        cmd.output()
            .expect("run aws (installed by scripts/ensure-tools)")
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout then stderr, as text: what a failed assertion shows.
pub fn said(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// The signal `REKEY_CRASH_AT` kills rekey with (`std::process::abort`).
pub const SIGABRT: i32 = 6;

/// The signal that killed the process, panicking with the output when it
/// exited instead.
pub fn signal(o: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    o.status.signal().unwrap_or_else(|| {
        panic!(
            "rekey exited ({}) instead of dying by a signal: {}\n{}",
            o.status,
            stdout(o),
            stderr(o)
        )
    })
}

/// The exit code, panicking with the output when killed by a signal.
pub fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("rekey died: {}\n{}", stdout(o), stderr(o)))
}

/// The ID of the `n`-th rotation begun in the journal at `path` (1 = the
/// first), as messages name it (`rotation #ID`): a ULID since issue 16,
/// no longer the number `n`. Read through the library, changing nothing.
pub fn rotation_id(path: &Path, n: usize) -> String {
    let clock = std::sync::Arc::new(rekey::clock::SystemClock);
    let journal = rekey::journal::SqliteJournal::open_read_only(path, clock)
        .unwrap()
        .expect("a journal");
    let mut begun = journal.history(usize::MAX).unwrap();
    begun.reverse();
    begun[n - 1].id.to_string()
}

/// Parses `rekey … --output json` output.
pub fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

/// What a user may do to manage their own keys: the least privilege
/// `rekey rotate` needs (README, "Permissions").
pub const ROTATE_ACTIONS: &[&str] = &[
    "iam:ListAccessKeys",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    // Whether another active key is still used, before freeing its slot.
    "iam:GetAccessKeyLastUsed",
    "sts:GetCallerIdentity",
    "sts:GetSessionToken",
];

impl Seeder {
    /// A user allowed `actions`, with one key `age_days` old; returns it.
    pub async fn user_with_key(&self, name: &str, actions: &[&str], age_days: i64) -> Creds {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        });
        self.user_with_policy(name, &policy, age_days).await
    }

    /// A user whose only permissions are `policy`, with one key `age_days`
    /// old; returns it.
    pub async fn user_with_policy(&self, name: &str, policy: &Value, age_days: i64) -> Creds {
        self.iam
            .create_user()
            .user_name(name)
            .send()
            .await
            .expect("create user");
        self.iam
            .put_user_policy()
            .user_name(name)
            .policy_name("rotate-own-keys")
            .policy_document(policy.to_string())
            .send()
            .await
            .expect("user policy");
        self.add_key(name, age_days, true).await
    }

    /// A service user whose key, `age_days` old, may only ask STS who it
    /// is: every IAM call on its behalf must go through a role.
    pub async fn service_user(&self, name: &str, age_days: i64) -> Creds {
        self.user_with_key(name, &["sts:GetCallerIdentity"], age_days)
            .await
    }

    /// Binds `user` to `value` through its `rekey:destination` tag.
    pub async fn tag_destination(&self, user: &str, value: &str) {
        self.tag_user(user, "rekey:destination", value).await
    }

    /// Tags `user` with `key` = `value`.
    pub async fn tag_user(&self, user: &str, key: &str, value: &str) {
        self.iam
            .tag_user()
            .user_name(user)
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("tag user {user}: {e:?}"));
    }

    /// Another key for `name`, `age_days` old.
    pub async fn add_key(&self, name: &str, age_days: i64, active: bool) -> Creds {
        let out = self
            .iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .expect("create key");
        let k = out.access_key().expect("key");
        if !active {
            self.iam
                .update_access_key()
                .user_name(name)
                .access_key_id(k.access_key_id())
                .status(aws_sdk_iam::types::StatusType::Inactive)
                .send()
                .await
                .expect("deactivate");
        }
        moto().key_dates(&self.account_id, name, k.access_key_id(), age_days, Some(1));
        Creds {
            access_key_id: k.access_key_id().to_string(),
            secret_access_key: k.secret_access_key().to_string(),
        }
    }

    /// `(key id, Active|Inactive)` of every key of `name`.
    pub async fn keys(&self, name: &str) -> Vec<(String, String)> {
        let out = self
            .iam
            .list_access_keys()
            .user_name(name)
            .send()
            .await
            .expect("list keys");
        out.access_key_metadata()
            .iter()
            .map(|m| {
                (
                    m.access_key_id().unwrap_or_default().to_string(),
                    m.status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Fault rates of a [`Proxy`]: fractions of all requests (issue 8).
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Answered with HTTP 400 `Throttling`.
    pub throttle: f64,
    /// Answered with HTTP 500 `InternalFailure` or 503 `ServiceUnavailable`.
    pub error_5xx: f64,
    /// The connection reset without an answer.
    pub reset: f64,
    /// Carried out by the emulator, then the connection reset: the answer
    /// is lost (issue 18).
    pub drop: f64,
    /// Every answer held this long.
    pub latency_ms: u64,
}

/// `tests/support/net_proxy.py` in front of this binary's emulator,
/// injecting `Faults`; stopped when dropped.
pub struct Proxy {
    pub port: u16,
    child: Child,
}

impl Proxy {
    pub fn start(faults: Faults) -> Proxy {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/net_proxy.py");
        let mut child = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(&script)
            .args(["--upstream", &moto().endpoint()])
            .args(["--throttle", &faults.throttle.to_string()])
            .args(["--error-5xx", &faults.error_5xx.to_string()])
            .args(["--reset", &faults.reset.to_string()])
            .args(["--drop", &faults.drop.to_string()])
            .args(["--latency-ms", &faults.latency_ms.to_string()])
            // Piped: the proxy also exits at EOF, should this process die.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/support/net_proxy.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("proxy stdout"))
            .read_line(&mut line)
            .expect("read READY line");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("net_proxy.py did not start: {line:?}"));
        Proxy { port, child }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(result, user)` of each result of an `enforce -o json` run, sorted.
pub fn by_user(out: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = (out["results"].as_array().unwrap().iter())
        .map(|r| {
            let target = r["target"].as_str().unwrap();
            let user = target.split(" of user ").nth(1).unwrap_or(target);
            let user = user.split(" in account").next().unwrap_or(user);
            (r["result"].as_str().unwrap().to_string(), user.to_string())
        })
        .collect();
    v.sort();
    v
}
