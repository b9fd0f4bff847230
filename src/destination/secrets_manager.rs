//! A Secrets Manager secret holding an IAM user's key pair as JSON
//! (`AccessKeyId`, `SecretAccessKey`; any other field is kept).
//!
//! Delivery writes a new version staged AWSPENDING, with a
//! `ClientRequestToken` derived from the new key ID: a retried or resumed
//! delivery names the same version, so it creates no second one. Consumers
//! read AWSCURRENT, which still holds the old key until the new one is
//! verified; then [`Destination::promote`] moves AWSCURRENT to the new
//! version (AWSPREVIOUS follows) and removes AWSPENDING. Undo removes
//! AWSPENDING and leaves AWSCURRENT alone (unless this rotation promoted
//! it: then it goes back to the version holding the old key). The undone
//! version is left without any staging label, on purpose (issue 15):
//! Secrets Manager has no call to delete one version; a version without
//! labels is deprecated and removed by Secrets Manager itself, and no
//! reader asks for it, since readers ask for a stage. Its key is deleted
//! by the same undo.
//!
//! A secret with no value yet, or holding other fields but no pair, takes
//! a first delivery (issue 7); one that does not exist is an error naming
//! it (rekey does not create secrets).
//!
//! A secret whose rotation another Lambda performs is refused before any
//! change: two rotators would fight. A secret in another account than its
//! user's (a central secrets account) is named by its ARN, and reached
//! through a [`SecretRole`] assumed in that account with the run's own
//! credentials; the role's ARN and external ID are part of the journaled
//! [`DestinationSpec`], so a resumed rotation reaches the secret the same
//! way. Without a role, such a secret is reached as any other, and a call
//! it denies says which account it is in ([`DestinationError::Unreachable`]).

use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::route::{Reach, Route, RoutedClient};
use super::{Destination, DestinationError, DestinationSpec, Io, KeyPair};
use crate::aws::ClientFactory;
use crate::error::{CallError, FailureKind};
use crate::model::mask_key_id;

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// The role that reaches a user's secret kept in another account (`rotate
/// --secret-role`, `secret_role` in rekey.toml): a role name (in the
/// secret's account) or an ARN. Never taken from a user's tag: whoever may
/// tag users would then choose what rekey assumes (a confused deputy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRole {
    pub role: String,
    /// Not a secret (AWS: it guards against the confused deputy).
    pub external_id: Option<String>,
}

impl SecretRole {
    /// The role to assume for `secret_id`, a secret of a user of
    /// `user_account`: None unless the secret is named by an ARN of another
    /// account; a name then means that role in the secret's account, an
    /// ARN is used as is. Pure.
    pub fn arn_for(&self, secret_id: &str, user_account: &str) -> Option<String> {
        let (partition, account) = other_account(secret_id, user_account)?;
        if self.role.starts_with("arn:") {
            return Some(self.role.clone());
        }
        let name = self.role.trim_start_matches('/');
        Some(format!("arn:{partition}:iam::{account}:role/{name}"))
    }
}

/// The account an ARN names (`arn:aws:iam::ACCOUNT:role/…`). Pure.
fn account_of_arn(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:")?
        .split(':')
        .nth(3)
        .filter(|a| !a.is_empty())
}

/// The partition and account of a secret named by an ARN of another
/// account than `user_account`. Pure.
fn other_account<'a>(secret_id: &'a str, user_account: &str) -> Option<(&'a str, &'a str)> {
    let mut parts = secret_id.split(':');
    if parts.next() != Some("arn") {
        return None;
    }
    let partition = parts.next()?;
    let account = parts.nth(2)?;
    (!account.is_empty() && account != user_account).then_some((partition, account))
}

/// One secret, by name or ARN.
pub struct SecretsManagerSecret {
    secret_id: String,
    /// The secret's account, when it is another than its user's and no role
    /// reaches it: a denied call then names it.
    foreign_account: Option<String>,
    client: RoutedClient<Client>,
    /// The version a Secrets Manager rotation asked for, when rekey is the
    /// secret's rotation function ([`DestinationSpec::SecretsManager`]).
    rotation_token: Option<String>,
}

impl SecretsManagerSecret {
    /// `secret_id` is a name (in the account of `reach`'s credentials) or
    /// an ARN; `region` overrides `reach`'s (an ARN's region is used when
    /// none is given); `role` (an ARN, with its external ID) is assumed
    /// with `reach`'s credentials to reach the secret. A secret named by
    /// an ARN of another account than its user's, reached without a role
    /// in that account, names that account when a call is denied.
    pub(super) fn new(
        secret_id: &str,
        region: Option<String>,
        role: Option<(String, Option<String>)>,
        reach: &Reach,
    ) -> Self {
        let region = region.or_else(|| region_of_arn(secret_id).map(str::to_string));
        let mut route = Route::new(reach, region);
        let foreign_account = route
            .user_account()
            .and_then(|user| other_account(secret_id, user))
            .map(|(_, account)| account)
            .filter(|account| {
                role.as_ref().and_then(|(arn, _)| account_of_arn(arn)) != Some(account)
            })
            .map(str::to_string);
        route.role = role;
        SecretsManagerSecret {
            secret_id: secret_id.to_string(),
            foreign_account,
            client: RoutedClient::new(route, ClientFactory::secrets_manager),
            rotation_token: None,
        }
    }

    /// The secret as its own rotation function rotates it: the new pair
    /// goes into version `token` (the rotation event's ClientRequestToken),
    /// and its rotation being enabled is expected.
    pub(super) fn rotated_with(mut self, token: Option<String>) -> Self {
        self.rotation_token = token;
        self
    }

    /// The version a delivery of `new_key_id` writes: the rotation's own
    /// token, else [`Self::version_for`].
    fn version_of(&self, new_key_id: &str) -> String {
        match &self.rotation_token {
            Some(token) => token.clone(),
            None => Self::version_for(new_key_id),
        }
    }

    async fn client(&self) -> Result<&Client, DestinationError> {
        (self.client.get().await)
            .map_err(|source| self.failed("assuming the role to reach", source))
    }

    fn failed(&self, doing: &'static str, source: CallError) -> DestinationError {
        if let Some(account) = &self.foreign_account
            && (source.kind() == FailureKind::Denied || is_not_found(&source))
        {
            // Another account's secret says "denied" (or, where the caller
            // cannot even see it, "not found"): a role there may reach it.
            return DestinationError::Unreachable {
                what: self.describe(),
                account: account.clone(),
                source,
            };
        }
        DestinationError::Call {
            what: self.describe(),
            doing,
            source,
        }
    }

    /// DescribeSecret's error; a secret that does not exist says so.
    fn describe_failed(
        &self,
        e: aws_sdk_secretsmanager::error::SdkError<
            aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError,
        >,
    ) -> DestinationError {
        // `failed` first: another account's secret that cannot be seen may
        // well exist, and it says which account a role may reach it in.
        match self.failed(
            "describing",
            CallError::from_sdk("secretsmanager:DescribeSecret", e),
        ) {
            DestinationError::Call { source, .. } if is_not_found(&source) => {
                DestinationError::NotFound {
                    what: self.describe(),
                    why: "rekey does not create secrets (their resource policy and KMS key are the owner's choice): create it, empty or holding the user's key pair, then run again",
                }
            }
            other => other,
        }
    }

    /// The version ID a delivery of `new_key_id` writes: the same on every
    /// retry and resume of the rotation, and 32–64 characters as Secrets
    /// Manager requires.
    pub fn version_for(new_key_id: &str) -> String {
        let token = format!("rekey-version-{new_key_id}");
        format!("{token:-<32}")
    }

    /// The secret's JSON at `stage`, or None when no version has it.
    async fn read(&self, stage: &str) -> Result<Option<Zeroizing<String>>, DestinationError> {
        let client = self.client().await?;
        match client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(out) => Ok(out.secret_string().map(|s| Zeroizing::new(s.to_string()))),
            Err(e) => {
                let e = CallError::from_sdk("secretsmanager:GetSecretValue", e);
                if !is_not_found(&e) {
                    return Err(self.failed("reading", e));
                }
                // A secret created without a value has no AWSCURRENT yet;
                // one that does not exist is the owner's to create.
                if stage == CURRENT {
                    self.stages().await?;
                }
                Ok(None)
            }
        }
    }

    async fn pair_at(&self, stage: &str) -> Result<Option<KeyPair>, DestinationError> {
        let Some(text) = self.read(stage).await? else {
            return Ok(None);
        };
        let fields = self.parse(&text)?;
        let id = fields.get("AccessKeyId").and_then(Value::as_str);
        let secret = fields.get("SecretAccessKey").and_then(Value::as_str);
        Ok(match (id, secret) {
            (Some(id), Some(secret)) => Some(KeyPair {
                access_key_id: id.to_string(),
                secret: SecretString::from(secret.to_string()),
            }),
            _ => None,
        })
    }

    /// The secret's fields. The error never quotes the text (it is secret).
    fn parse(&self, text: &str) -> Result<Map<String, Value>, DestinationError> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(fields)) => Ok(fields),
            _ => Err(DestinationError::Malformed {
                what: self.describe(),
                reason: "its value is not a JSON object with AccessKeyId and SecretAccessKey"
                    .into(),
            }),
        }
    }

    /// Which stages each version holds.
    async fn stages(&self) -> Result<Vec<(String, Vec<String>)>, DestinationError> {
        let client = self.client().await?;
        let out = client
            .describe_secret()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| self.describe_failed(e))?;
        Ok(out
            .version_ids_to_stages()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn move_stage(
        &self,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), DestinationError> {
        let client = self.client().await?;
        client
            .update_secret_version_stage()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .set_move_to_version_id(to.map(str::to_string))
            .set_remove_from_version_id(from.map(str::to_string))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                self.failed(
                    "moving a staging label of",
                    CallError::from_sdk("secretsmanager:UpdateSecretVersionStage", e),
                )
            })
    }

    /// Makes current a version holding AWSCURRENT's fields without the
    /// key pair: undoing the first delivery into a secret that had no
    /// value (its first version became AWSCURRENT at once).
    async fn put_without_pair(&self, new_key_id: &str) -> Result<(), DestinationError> {
        let mut fields = self.current_fields().await?;
        if fields.get("AccessKeyId").and_then(Value::as_str) != Some(new_key_id) {
            return Ok(());
        }
        fields.remove("AccessKeyId");
        fields.remove("SecretAccessKey");
        let token = format!("{:-<32}", format!("rekey-undo-{new_key_id}"));
        self.put_value(&token, &Value::Object(fields).to_string(), None)
            .await
    }

    /// AWSCURRENT's JSON fields; none when it holds no value yet.
    async fn current_fields(&self) -> Result<Map<String, Value>, DestinationError> {
        match self.read(CURRENT).await? {
            Some(text) => self.parse(&text),
            None => Ok(Map::new()),
        }
    }

    /// PutSecretValue with an idempotency `token` (a retry with the same
    /// token makes no second version); the new version gets `stage`, else
    /// Secrets Manager's default (AWSCURRENT).
    async fn put_value(
        &self,
        token: &str,
        text: &str,
        stage: Option<&str>,
    ) -> Result<(), DestinationError> {
        let client = self.client().await?;
        client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .client_request_token(token)
            .secret_string(text)
            .set_version_stages(stage.map(|s| vec![s.to_string()]))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                self.failed(
                    "writing",
                    CallError::from_sdk("secretsmanager:PutSecretValue", e),
                )
            })
    }

    /// Removes AWSPENDING from `version` if it holds it.
    async fn unstage(
        &self,
        stages: &[(String, Vec<String>)],
        version: &str,
    ) -> Result<(), DestinationError> {
        if holder_of(stages, PENDING) == Some(version) {
            self.move_stage(PENDING, None, Some(version)).await?;
        }
        Ok(())
    }
}

/// Why a secret must not be rotated by rekey: another function rotates it
/// (DescribeSecret's RotationEnabled and RotationLambdaARN). Pure.
fn rotated_elsewhere(enabled: Option<bool>, lambda: Option<&str>) -> Option<String> {
    (enabled == Some(true)).then(|| {
        format!(
            "its rotation is enabled through {}; two rotators would fight, so rekey leaves it alone (turn that rotation off first)",
            lambda.filter(|l| !l.is_empty()).unwrap_or("another function")
        )
    })
}

fn holder_of<'s>(stages: &'s [(String, Vec<String>)], stage: &str) -> Option<&'s str> {
    stages
        .iter()
        .find(|(_, s)| s.iter().any(|x| x == stage))
        .map(|(v, _)| v.as_str())
}

fn is_not_found(e: &CallError) -> bool {
    e.kind() == FailureKind::NotFound || e.code() == Some("ResourceNotFoundException")
}

/// The region of `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`.
pub fn region_of_arn(id: &str) -> Option<&str> {
    let mut parts = id.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.nth(2))
        .flatten()
        .filter(|r| !r.is_empty())
}

/// The secret's new JSON: `fields` with the new pair in place of the old.
fn with_pair(mut fields: Map<String, Value>, new: &KeyPair) -> Zeroizing<String> {
    fields.insert(
        "AccessKeyId".into(),
        Value::String(new.access_key_id.clone()),
    );
    fields.insert(
        "SecretAccessKey".into(),
        Value::String(new.secret.expose_secret().to_string()),
    );
    Zeroizing::new(Value::Object(fields).to_string())
}

impl Destination for SecretsManagerSecret {
    fn spec(&self) -> DestinationSpec {
        DestinationSpec::SecretsManager {
            secret_id: self.secret_id.clone(),
            region: self.client.route.region.clone(),
            role: self.client.route.role_arn(),
            external_id: self.client.route.external_id(),
            rotation_token: self.rotation_token.clone(),
        }
    }

    fn describe(&self) -> String {
        format!("secretsmanager:{}", self.secret_id)
    }

    fn current_key_id(&self) -> Io<'_, Option<String>> {
        Box::pin(async move { Ok(self.pair_at(CURRENT).await?.map(|p| p.access_key_id)) })
    }

    fn current(&self) -> Io<'_, Option<KeyPair>> {
        Box::pin(self.pair_at(CURRENT))
    }

    fn staged(&self) -> Io<'_, Option<KeyPair>> {
        Box::pin(self.pair_at(PENDING))
    }

    fn stages_delivery(&self) -> bool {
        true
    }

    fn check(&self) -> Io<'_, ()> {
        Box::pin(async move {
            let client = self.client().await?;
            let out = client
                .describe_secret()
                .secret_id(&self.secret_id)
                .send()
                .await
                .map_err(|e| self.describe_failed(e))?;
            if self.rotation_token.is_some() {
                // The secret's own rotation (this function) asked.
                return Ok(());
            }
            match rotated_elsewhere(out.rotation_enabled(), out.rotation_lambda_arn()) {
                Some(reason) => Err(DestinationError::Refused {
                    what: self.describe(),
                    reason,
                }),
                None => Ok(()),
            }
        })
    }

    fn deliver<'a>(&'a self, new: &'a KeyPair, old_key_id: &'a str) -> Io<'a, ()> {
        Box::pin(async move {
            // A secret with no value yet, or one holding other fields
            // only, gets its first key pair (issue 7).
            let fields = self.current_fields().await?;
            let holds = fields.get("AccessKeyId").and_then(Value::as_str);
            if holds.is_some()
                && holds != Some(old_key_id)
                && holds != Some(new.access_key_id.as_str())
            {
                return Err(DestinationError::Changed {
                    what: self.describe(),
                    place: format!("stage {CURRENT}"),
                    holds: holds.map(mask_key_id),
                });
            }
            let value = with_pair(fields, new);
            let token = self.version_of(&new.access_key_id);
            self.put_value(&token, value.as_str(), Some(PENDING)).await
        })
    }

    fn promote<'a>(&'a self, new: &'a KeyPair) -> Io<'a, ()> {
        Box::pin(async move {
            let new_key_id = new.access_key_id.as_str();
            let version = self.version_of(new_key_id);
            let stages = self.stages().await?;
            if !stages.iter().any(|(v, _)| *v == version) {
                return Err(DestinationError::NothingToRestore {
                    what: self.describe(),
                    key_id: mask_key_id(new_key_id),
                });
            }
            let current = holder_of(&stages, CURRENT).map(str::to_string);
            if current.as_deref() != Some(version.as_str()) {
                self.move_stage(CURRENT, Some(&version), current.as_deref())
                    .await?;
            }
            self.unstage(&stages, &version).await
        })
    }

    fn restore<'a>(&'a self, old_key_id: &'a str, new_key_id: &'a str) -> Io<'a, ()> {
        Box::pin(async move {
            let version = self.version_of(new_key_id);
            let stages = self.stages().await?;
            if holder_of(&stages, CURRENT) == Some(version.as_str()) {
                // Promoted already: AWSCURRENT goes back to the version
                // that holds the old key (AWSPREVIOUS).
                let Some(previous) = holder_of(&stages, "AWSPREVIOUS").map(str::to_string) else {
                    // A first delivery into a secret that had no value:
                    // its value without the pair, as nothing was held.
                    self.put_without_pair(new_key_id).await?;
                    return self.unstage(&self.stages().await?, &version).await;
                };
                // The old key, or (a first delivery) no key pair at all.
                let old = self.pair_at("AWSPREVIOUS").await?;
                if old.is_some_and(|p| p.access_key_id != old_key_id) {
                    return Err(DestinationError::NothingToRestore {
                        what: self.describe(),
                        key_id: mask_key_id(old_key_id),
                    });
                }
                self.move_stage(CURRENT, Some(&previous), Some(&version))
                    .await?;
            }
            self.unstage(&stages, &version).await
        })
    }

    fn release_old<'a>(&'a self, _old_key_id: &'a str) -> Io<'a, ()> {
        // The old pair stays as AWSPREVIOUS, as Secrets Manager keeps it.
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_token_is_stable_and_within_limits() {
        let token = SecretsManagerSecret::version_for("AKIAIOSFODNN7EXAMPLE");
        assert_eq!(token, "rekey-version-AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            token,
            SecretsManagerSecret::version_for("AKIAIOSFODNN7EXAMPLE")
        );
        assert!((32..=64).contains(&token.len()), "{token}");
        assert!((32..=64).contains(&SecretsManagerSecret::version_for("AKIA1").len()));
    }

    #[test]
    fn a_secret_another_lambda_rotates_is_refused_naming_it() {
        let lambda = "arn:aws:lambda:us-east-1:111111111111:function:rotate-ci";
        let why = rotated_elsewhere(Some(true), Some(lambda)).unwrap();
        assert!(
            why.contains(lambda) && why.contains("two rotators"),
            "{why}"
        );
        assert!(
            rotated_elsewhere(Some(true), None)
                .unwrap()
                .contains("another function")
        );
        assert_eq!(rotated_elsewhere(Some(false), Some(lambda)), None);
        assert_eq!(rotated_elsewhere(None, None), None);
    }

    #[test]
    fn the_secret_role_is_assumed_only_for_a_secret_of_another_account() {
        let central = "arn:aws:secretsmanager:eu-west-1:333333333333:secret:ci/bot-AbCdEf";
        let by_name = SecretRole {
            role: "SecretsWriter".into(),
            external_id: None,
        };
        assert_eq!(
            by_name.arn_for(central, "222222222222").as_deref(),
            Some("arn:aws:iam::333333333333:role/SecretsWriter")
        );
        let with_path = SecretRole {
            role: "/ops/SecretsWriter".into(),
            external_id: None,
        };
        assert_eq!(
            with_path.arn_for(central, "222222222222").as_deref(),
            Some("arn:aws:iam::333333333333:role/ops/SecretsWriter")
        );
        let china = "arn:aws-cn:secretsmanager:cn-north-1:333333333333:secret:ci-AbCdEf";
        assert_eq!(
            by_name.arn_for(china, "222222222222").as_deref(),
            Some("arn:aws-cn:iam::333333333333:role/SecretsWriter")
        );
        let by_arn = SecretRole {
            role: "arn:aws:iam::444444444444:role/Hub".into(),
            external_id: Some("x".into()),
        };
        assert_eq!(
            by_arn.arn_for(central, "222222222222").as_deref(),
            Some("arn:aws:iam::444444444444:role/Hub")
        );
        // The user's own account, or a secret by name: never a role.
        assert_eq!(by_name.arn_for(central, "333333333333"), None);
        assert_eq!(by_arn.arn_for("ci/bot", "222222222222"), None);
        assert_eq!(
            by_arn.arn_for("arn:aws:secretsmanager:eu-west-1", "2"),
            None
        );
    }

    #[test]
    fn a_secret_of_another_account_is_named_unless_a_role_there_reaches_it() {
        let reach = Reach {
            config: aws_config::SdkConfig::builder().build(),
            signer: crate::aws::Signer::Caller,
            deps: crate::aws::Deps::new(
                aws_config::SdkConfig::builder().build(),
                crate::aws::AwsOptions::default(),
                None,
            ),
            user_account: Some("222222222222".into()),
        };
        let central = "arn:aws:secretsmanager:eu-west-1:333333333333:secret:ci/bot-AbCdEf";
        let foreign = |id: &str, role: Option<&str>| {
            let role = role.map(|r| (r.to_string(), None));
            SecretsManagerSecret::new(id, None, role, &reach).foreign_account
        };
        assert_eq!(foreign(central, None).as_deref(), Some("333333333333"));
        // Through the role its account was entered with: still the other's.
        let entered = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole";
        assert_eq!(
            foreign(central, Some(entered)).as_deref(),
            Some("333333333333")
        );
        assert_eq!(
            foreign(
                central,
                Some("arn:aws:iam::333333333333:role/SecretsWriter")
            ),
            None
        );
        assert_eq!(foreign("ci/bot", None), None);
        let own = "arn:aws:secretsmanager:eu-west-1:222222222222:secret:ci/bot-AbCdEf";
        assert_eq!(foreign(own, None), None);
    }

    #[test]
    fn an_arn_names_its_region() {
        assert_eq!(
            region_of_arn("arn:aws:secretsmanager:eu-west-1:111111111111:secret:ci-AbCdEf"),
            Some("eu-west-1")
        );
        assert_eq!(region_of_arn("ci/bot"), None);
    }

    #[test]
    fn other_fields_are_kept_and_the_pair_replaced() {
        let fields = serde_json::from_str::<Value>(
            r#"{"AccessKeyId":"AKIAOLD","SecretAccessKey":"old","Host":"db"}"#,
        )
        .unwrap();
        let Value::Object(fields) = fields else {
            panic!()
        };
        let new = KeyPair {
            access_key_id: "AKIANEW".into(),
            secret: SecretString::from("new".to_string()),
        };
        let out: Value = serde_json::from_str(&with_pair(fields, &new)).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"AccessKeyId":"AKIANEW","SecretAccessKey":"new","Host":"db"})
        );
    }
}
