//! `rekey policy iam`: the least-privilege IAM policy of each way rekey
//! runs, one statement per thing it does, resources scoped wherever IAM
//! allows it. The deploy templates take their policies from here
//! (`scripts/deploy-policies` writes them; `--check` fails when they
//! differ), and the tests run each mode's workload with exactly its policy
//! and with each action taken away in turn.
//!
//! `sts:GetCallerIdentity`, which rekey calls everywhere, is in none: AWS
//! asks no permission for it (an explicit deny cannot stop it).
//!
//! Pure: nothing here talks to AWS.

mod render;

use serde_json::{Value, json};

use crate::names::named_enum;

pub use render::cloudformation;

named_enum! {
    /// Who the policy is for.
    pub enum Mode as "mode" {
        /// `rekey audit` in one account (a profile, or the role `--role` enters).
        Audit = "audit",
        /// `rekey rotate --profile`: a person rotating their own keys.
        RotateSelf = "rotate-self" | "rotate_self",
        /// `rekey rotate --user … --to …` and `--service`: service users'
        /// keys delivered to Secrets Manager or Parameter Store.
        Service = "service",
        /// `rekey enforce --apply` in one account: the audit's reads, the
        /// rotations, deactivation and deletion.
        Enforce = "enforce",
        /// The role the Lambda enters in each member account (the StackSet's):
        /// enforce's, and the Config rule's evaluations.
        Member = "member",
        /// The Lambda function's own role: the organization, the queue, the
        /// member roles, the journal, the notifications, the rotation
        /// function's secrets and its own account's users.
        Lambda = "lambda",
        /// `rekey notify` (and enforce's notifications): SNS, SES, the
        /// owners' account email, the webhook's secret.
        Notify = "notify",
        /// A DynamoDB journal, used by rotate, enforce, notify and history.
        Journal = "journal",
    }
}

named_enum! {
    /// How the policy is written.
    pub enum Format as "format" {
        /// An IAM policy document; `${…}` in the options stays as given
        /// (a Terraform template's placeholders).
        Json = "json",
        /// The same document for a CloudFormation template: a `${Name}` is
        /// a `Ref`, `${Name.Attr}` a `Fn::GetAtt`, `${AWS::…}` a pseudo
        /// parameter; partition, account and region default to the
        /// stack's.
        Cloudformation = "cloudformation" | "cfn",
    }
}

/// What fills the ARNs. Each is checked by [`Scope::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub partition: String,
    pub account: String,
    pub region: String,
    /// The journal's DynamoDB table.
    pub table: String,
    /// Secrets Manager names rekey writes start with.
    pub secrets_prefix: String,
    /// Parameter Store paths rekey writes start with (a leading `/`).
    pub parameters_prefix: String,
    /// The notification topic: a name, or an ARN.
    pub topic: String,
    /// The fan-out queue: a name, or an ARN.
    pub queue: String,
    /// The role the Lambda assumes in member accounts.
    pub member_role: String,
}

/// The documented defaults of [`Scope`]: any account and region of the
/// commercial partition, and the names the deploy templates use.
pub const DEFAULT_TABLE: &str = "rekey-journal";
pub const DEFAULT_SECRETS_PREFIX: &str = "rekey/";
pub const DEFAULT_PARAMETERS_PREFIX: &str = "/rekey/";
pub const DEFAULT_TOPIC: &str = "rekey-notifications";
pub const DEFAULT_QUEUE: &str = "rekey-work";
pub const DEFAULT_MEMBER_ROLE: &str = "rekey-member";

impl Scope {
    /// The defaults for `format`: a CloudFormation policy lives in its
    /// stack's partition, account and region.
    pub fn defaults(format: Format) -> Scope {
        let (partition, account, region) = match format {
            Format::Json => ("aws", "*", "*"),
            Format::Cloudformation => ("${AWS::Partition}", "${AWS::AccountId}", "${AWS::Region}"),
        };
        Scope {
            partition: partition.into(),
            account: account.into(),
            region: region.into(),
            table: DEFAULT_TABLE.into(),
            secrets_prefix: DEFAULT_SECRETS_PREFIX.into(),
            parameters_prefix: DEFAULT_PARAMETERS_PREFIX.into(),
            topic: DEFAULT_TOPIC.into(),
            queue: DEFAULT_QUEUE.into(),
            member_role: DEFAULT_MEMBER_ROLE.into(),
        }
    }

    /// Refuses a value that would make a broken or wider ARN, naming the
    /// option. A `${…}` placeholder stands for a value filled in later.
    pub fn check(&self) -> Result<(), ScopeError> {
        let placeholder = |v: &str| v.starts_with("${") && v.ends_with('}') && v.len() > 3;
        let checks: [Check<'_>; 9] = [
            (
                "--partition",
                &self.partition,
                is_partition,
                "aws, aws-cn, aws-us-gov or aws-iso…",
            ),
            ("--account", &self.account, is_account, "12 digits or *"),
            (
                "--region",
                &self.region,
                is_region,
                "a region such as us-east-1, or *",
            ),
            (
                "--table",
                &self.table,
                is_table,
                "3 to 255 of A-Z a-z 0-9 _ . -",
            ),
            (
                "--secrets-prefix",
                &self.secrets_prefix,
                is_secret_prefix,
                "letters, digits and /_+=.@-",
            ),
            (
                "--parameters-prefix",
                &self.parameters_prefix,
                is_parameter_prefix,
                "a path starting with /",
            ),
            (
                "--topic",
                &self.topic,
                is_topic,
                "a topic name or an SNS ARN",
            ),
            (
                "--queue",
                &self.queue,
                is_queue,
                "a queue name or an SQS ARN",
            ),
            (
                "--member-role",
                &self.member_role,
                is_role,
                "a role name (letters, digits and +=,.@_-)",
            ),
        ];
        for (option, value, ok, expected) in checks {
            if !(placeholder(value) || ok(value)) {
                return Err(ScopeError {
                    option,
                    value: value.to_string(),
                    expected,
                });
            }
        }
        Ok(())
    }

    fn arn(&self, service: &str, regional: bool, resource: &str) -> String {
        let region = if regional { self.region.as_str() } else { "" };
        format!(
            "arn:{}:{service}:{region}:{}:{resource}",
            self.partition, self.account
        )
    }

    fn users(&self, name: &str) -> String {
        self.arn("iam", false, &format!("user/{name}"))
    }

    fn table_arn(&self) -> String {
        self.arn("dynamodb", true, &format!("table/{}", self.table))
    }

    fn topic_arn(&self) -> String {
        full_arn(&self.topic).unwrap_or_else(|| self.arn("sns", true, &self.topic))
    }

    fn queue_arn(&self) -> String {
        full_arn(&self.queue).unwrap_or_else(|| self.arn("sqs", true, &self.queue))
    }

    fn secrets(&self) -> String {
        self.arn(
            "secretsmanager",
            true,
            &format!("secret:{}*", self.secrets_prefix),
        )
    }

    fn parameters(&self) -> String {
        self.arn(
            "ssm",
            true,
            &format!("parameter{}*", self.parameters_prefix),
        )
    }

    fn member_roles(&self) -> String {
        format!("arn:{}:iam::*:role/{}", self.partition, self.member_role)
    }
}

/// One option's check: its flag, its value, the test, what it expects.
type Check<'a> = (&'static str, &'a str, fn(&str) -> bool, &'static str);

/// A value given as an ARN (or a placeholder for one) is used as it is.
fn full_arn(value: &str) -> Option<String> {
    (value.starts_with("arn:") || value.starts_with("${")).then(|| value.to_string())
}

/// A value of `rekey policy iam` that would make a broken or wider ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option} {value:?}: expected {expected}; nothing was printed")]
pub struct ScopeError {
    pub option: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn chars_in(v: &str, extra: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

fn is_partition(v: &str) -> bool {
    matches!(v, "aws" | "aws-cn" | "aws-us-gov") || (v.starts_with("aws-iso") && chars_in(v, "-"))
}

fn is_account(v: &str) -> bool {
    v == "*" || (v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()))
}

fn is_region(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    v == "*"
        || (parts.len() >= 3
            && parts.iter().all(|p| chars_in(p, ""))
            && parts
                .last()
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())))
}

fn is_table(v: &str) -> bool {
    (3..=255).contains(&v.len()) && chars_in(v, "_.-")
}

fn is_secret_prefix(v: &str) -> bool {
    v.len() <= 256 && chars_in(v, "/_+=.@-")
}

fn is_parameter_prefix(v: &str) -> bool {
    v.starts_with('/') && v.len() <= 1011 && chars_in(v, "/_.-")
}

fn is_topic(v: &str) -> bool {
    (v.starts_with("arn:") && v.split(':').count() == 6) || (v.len() <= 256 && chars_in(v, "_-"))
}

fn is_queue(v: &str) -> bool {
    (v.starts_with("arn:") && v.split(':').count() == 6) || (v.len() <= 80 && chars_in(v, "_-"))
}

fn is_role(v: &str) -> bool {
    v.len() <= 64 && chars_in(v, "+=,.@_-")
}

/// One statement: what it is for (its `Sid`), its actions, its resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: &'static str,
    pub actions: Vec<&'static str>,
    pub resources: Vec<String>,
}

fn st(sid: &'static str, actions: &[&'static str], resources: &[String]) -> Statement {
    Statement {
        sid,
        actions: actions.to_vec(),
        resources: resources.to_vec(),
    }
}

fn any() -> String {
    "*".to_string()
}

/// The account-wide reads of an audit: the credential report and every
/// user with their tags and groups; with `--source api` (`summary`), the
/// account summary for its root keys. IAM scopes none of these.
fn account_reads(summary: bool) -> Statement {
    let mut actions = vec![
        "iam:GenerateCredentialReport",
        "iam:GetCredentialReport",
        "iam:GetAccountAuthorizationDetails",
    ];
    if summary {
        actions.push("iam:GetAccountSummary");
    }
    st("ReadAccount", &actions, &[any()])
}

/// Users' keys read.
const KEY_READS: &[&str] = &["iam:ListAccessKeys", "iam:GetAccessKeyLastUsed"];
/// Users' keys changed: a rotation's new key, the old key deactivated,
/// then deleted.
const KEY_WRITES: &[&str] = &[
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
];

fn users_keys(scope: &Scope, sid: &'static str, extra: &[&'static str]) -> Statement {
    let mut actions: Vec<&'static str> = extra.to_vec();
    actions.extend(KEY_READS);
    actions.extend(KEY_WRITES);
    st(sid, &actions, &[scope.users("*")])
}

/// The secrets rekey delivers keys to (a destination, or a rotation
/// function's own secret), as statement `sid`.
fn secrets(scope: &Scope, sid: &'static str) -> Statement {
    st(
        sid,
        &[
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage",
        ],
        &[scope.secrets()],
    )
}

fn parameters(scope: &Scope) -> Vec<Statement> {
    vec![
        st(
            "ParameterStoreDestinations",
            &[
                "ssm:GetParameter",
                "ssm:GetParameterHistory",
                "ssm:PutParameter",
            ],
            &[scope.parameters()],
        ),
        // DescribeParameters names no parameter: IAM takes only "*".
        st("ParameterTypes", &["ssm:DescribeParameters"], &[any()]),
    ]
}

fn journal(scope: &Scope) -> Statement {
    // TransactWriteItems is authorised as the Put and Delete it holds.
    st(
        "Journal",
        &[
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
        ],
        &[scope.table_arn()],
    )
}

/// The notification channels; the webhook's secret too unless the caller
/// can read it already (`webhook_secret` false: the Lambda's
/// RotationSecrets covers it).
fn notify(scope: &Scope, webhook_secret: bool) -> Vec<Statement> {
    let mut out = vec![
        st("NotifyTopic", &["sns:Publish"], &[scope.topic_arn()]),
        st(
            "NotifyEmail",
            &["ses:SendEmail"],
            &[scope.arn("ses", true, "identity/*")],
        ),
        // The owner of last resort: the account's email (Organizations
        // scopes DescribeAccount to accounts of an organization ID this
        // command does not know).
        st("OwnerEmail", &["organizations:DescribeAccount"], &[any()]),
    ];
    if webhook_secret {
        out.push(st(
            "WebhookSecret",
            &["secretsmanager:GetSecretValue"],
            &[scope.secrets()],
        ));
    }
    out
}

/// The statements of `mode`, in a stable order.
pub fn statements(mode: Mode, scope: &Scope) -> Vec<Statement> {
    let mut out = Vec::new();
    match mode {
        Mode::Audit => {
            out.push(account_reads(true));
            out.push(st("ReadKeys", KEY_READS, &[scope.users("*")]));
        }
        Mode::RotateSelf => {
            let mut actions = KEY_READS.to_vec();
            actions.extend(KEY_WRITES);
            out.push(st("OwnKeys", &actions, &[scope.users("${aws:username}")]));
        }
        Mode::Service => {
            out.push(st(
                "ReadServiceUsers",
                &["iam:GetAccountAuthorizationDetails"],
                &[any()],
            ));
            out.push(users_keys(scope, "ServiceKeys", &["iam:GetUser"]));
            out.push(secrets(scope, "SecretsManagerDestinations"));
            out.extend(parameters(scope));
        }
        Mode::Enforce | Mode::Member => {
            out.push(account_reads(false));
            // A member's users are also the rotation function's, which
            // reads the bound user first.
            let get_user: &[&'static str] = match mode {
                Mode::Member => &["iam:GetUser"],
                _ => &[],
            };
            out.push(users_keys(scope, "Keys", get_user));
            out.push(secrets(scope, "SecretsManagerDestinations"));
            out.extend(parameters(scope));
            if mode == Mode::Member {
                // The Config rule: its reads, and its evaluations put here.
                out.push(st(
                    "ConfigRuleUsers",
                    &["iam:ListUsers"],
                    &[scope.users("*")],
                ));
                // Its root keys (IAM scopes the summary to no resource).
                out.push(st(
                    "ConfigRuleRootKeys",
                    &["iam:GetAccountSummary"],
                    &[any()],
                ));
                out.push(st(
                    "ConfigRuleEvaluations",
                    &["config:PutEvaluations"],
                    &[any()],
                ));
            }
        }
        Mode::Lambda => out.extend(lambda(scope)),
        Mode::Notify => out.extend(notify(scope, true)),
        Mode::Journal => out.push(journal(scope)),
    }
    out
}

/// The function's own role (`rekey-lambda`, every handler).
fn lambda(scope: &Scope) -> Vec<Statement> {
    let mut out = vec![
        // The schedule: the organization's accounts (and OUs).
        st(
            "Organization",
            &[
                "organizations:ListAccounts",
                "organizations:ListAccountsForParent",
                "organizations:ListOrganizationalUnitsForParent",
            ],
            &[any()],
        ),
        st(
            "WorkQueue",
            &[
                "sqs:SendMessage",
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ],
            &[scope.queue_arn()],
        ),
        st("MemberRoles", &["sts:AssumeRole"], &[scope.member_roles()]),
        journal(scope),
    ];
    out.extend(notify(scope, false));
    // The rotation function's secrets (the webhook's secret is among them).
    out.push(secrets(scope, "RotationSecrets"));
    // Users of the function's own account: the rotation function's keys
    // and the Config rule's reads. Other accounts' go through MemberRoles.
    // The rotation function keeps the old key for enforce to retire: no
    // UpdateAccessKey.
    out.push(st(
        "OwnAccountKeys",
        &[
            "iam:GetUser",
            "iam:ListUsers",
            "iam:ListAccessKeys",
            "iam:GetAccessKeyLastUsed",
            "iam:CreateAccessKey",
            "iam:DeleteAccessKey",
        ],
        &[scope.users("*")],
    ));
    // The Config rule's account-wide reads (IAM scopes neither).
    out.push(st(
        "OwnAccountReads",
        &[
            "iam:GetAccountAuthorizationDetails",
            "iam:GetAccountSummary",
        ],
        &[any()],
    ));
    out.push(st(
        "ConfigRuleEvaluations",
        &["config:PutEvaluations"],
        &[any()],
    ));
    out.push(st(
        "Logs",
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        &[scope.arn("logs", true, "log-group:/aws/lambda/*")],
    ));
    out
}

/// The policy document of `mode`.
pub fn document(mode: Mode, scope: &Scope) -> Value {
    let statements: Vec<Value> = statements(mode, scope)
        .into_iter()
        .map(|s| {
            json!({
                "Sid": s.sid,
                "Effect": "Allow",
                "Action": s.actions,
                "Resource": if s.resources.len() == 1 { json!(s.resources[0]) } else { json!(s.resources) },
            })
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The document of `mode` in `format`, checked.
pub fn render(mode: Mode, format: Format, scope: &Scope) -> Result<Value, ScopeError> {
    scope.check()?;
    let doc = document(mode, scope);
    Ok(match format {
        Format::Json => doc,
        Format::Cloudformation => cloudformation(&doc),
    })
}

#[cfg(test)]
mod tests;
