//! An SSM Parameter Store destination, in one of two forms:
//! - one SecureString parameter holding JSON with `AccessKeyId` and
//!   `SecretAccessKey` (other fields kept);
//! - a pair of parameters, `PATH/access_key_id` and `PATH/secret_access_key`.
//!
//! A parameter has no staging label, and its readers use whatever it holds:
//! so the new key is written only once it is verified
//! ([`Destination::promote`]); delivery checks the parameter holds the old
//! key and keeps its value. (Until then the new secret lives only in
//! memory; a run that dies holds it nowhere, and the next run deletes the
//! key.) The write is a new version (PutParameter with Overwrite), keeping
//! each parameter's type and KMS key (read from DescribeParameters and
//! passed back). Undo puts the previous value back: from memory while the
//! run that delivered lives, else from the parameter's history
//! (GetParameterHistory), never from the journal. A pair is written ID
//! first, then secret: a reader may see the new ID with the old secret for
//! the moment between the two writes (the single JSON form has no such
//! moment). A path not set yet (a first delivery, issue 7) becomes one
//! SecureString JSON parameter; undoing removes it.
//!
//! A pair counts as holding a key only when a reader gets that key's whole
//! pair (issue 15 #9): a run killed between the two writes leaves the new
//! ID beside the old secret. With the new pair in memory, [`promote`] and
//! the read-back compare both values; without it (a resumed run), the
//! pair holds the new key only if the secret parameter was written after
//! the ID parameter took the new ID — the order [`promote`] writes in —
//! so a torn pair is never where a resumed run finds its new secret: that
//! secret is gone, the key is deleted and the old pair put back.
//!
//! [`promote`]: Destination::promote

use std::sync::Mutex;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use super::route::{Reach, Route, RoutedClient};
use super::{Destination, DestinationError, DestinationSpec, Io, KeyPair};
use crate::aws::ClientFactory;
use crate::error::CallError;
use crate::model::mask_key_id;

/// How the pair is laid out in Parameter Store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsmForm {
    /// One SecureString JSON parameter at the path.
    Json,
    /// `PATH/access_key_id` and `PATH/secret_access_key`.
    Pair,
}

impl SsmForm {
    pub fn as_str(self) -> &'static str {
        match self {
            SsmForm::Json => "json",
            SsmForm::Pair => "pair",
        }
    }

    pub fn parse(text: &str) -> Option<SsmForm> {
        match text {
            "json" => Some(SsmForm::Json),
            "pair" => Some(SsmForm::Pair),
            _ => None,
        }
    }
}

const ID: &str = "access_key_id";
const SECRET: &str = "secret_access_key";

/// Each parameter's value as it was (None: it did not exist).
type Values = Vec<(String, Option<Zeroizing<String>>)>;

/// The values a parameter had before this run delivered: in memory only.
struct Previous {
    old_key_id: String,
    values: Values,
}

/// One parameter (or pair) by path.
pub struct SsmParameter {
    path: String,
    form: OnceCell<SsmForm>,
    /// Over its region and the role that reaches it (the account a
    /// `--service` job entered through its role), journaled.
    client: RoutedClient<Client>,
    previous: Mutex<Option<Previous>>,
}

impl SsmParameter {
    /// `form` None: found on first use (the JSON parameter at `path` if it
    /// exists, else the pair under it if that exists, else JSON: a first
    /// delivery to a path not set yet creates one SecureString parameter).
    /// `region` overrides `reach`'s; `role` (an ARN, with its external ID)
    /// is assumed with `reach`'s credentials to reach the parameter.
    pub(super) fn new(
        path: &str,
        form: Option<SsmForm>,
        region: Option<String>,
        role: Option<(String, Option<String>)>,
        reach: &Reach,
    ) -> Self {
        let cell = OnceCell::new();
        if let Some(form) = form {
            let _ = cell.set(form);
        }
        let mut route = Route::new(reach, region);
        route.role = role;
        SsmParameter {
            path: path.trim_end_matches('/').to_string(),
            form: cell,
            client: RoutedClient::new(route, ClientFactory::ssm),
            previous: Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<&Client, DestinationError> {
        (self.client.get().await)
            .map_err(|source| self.failed("assuming the role to reach", source))
    }

    fn failed(&self, doing: &'static str, source: CallError) -> DestinationError {
        DestinationError::Call {
            what: self.describe(),
            doing,
            source,
        }
    }

    fn names(&self, form: SsmForm) -> Vec<String> {
        match form {
            SsmForm::Json => vec![self.path.clone()],
            SsmForm::Pair => vec![
                format!("{}/{ID}", self.path),
                format!("{}/{SECRET}", self.path),
            ],
        }
    }

    async fn form(&self) -> Result<SsmForm, DestinationError> {
        self.form
            .get_or_try_init(|| async {
                let pair = &self.names(SsmForm::Pair)[0];
                Ok(
                    if self.get(&self.path).await?.is_none() && self.get(pair).await?.is_some() {
                        SsmForm::Pair
                    } else {
                        SsmForm::Json
                    },
                )
            })
            .await
            .copied()
    }

    /// A parameter's decrypted value, or None when it does not exist.
    async fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>, DestinationError> {
        Ok(self.get_written(name).await?.map(|(value, _)| value))
    }

    /// A parameter's decrypted value and when it was last written
    /// (nanoseconds since the epoch), or None when it does not exist.
    async fn get_written(
        &self,
        name: &str,
    ) -> Result<Option<(Zeroizing<String>, Option<i128>)>, DestinationError> {
        match self
            .client()
            .await?
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter().and_then(|p| {
                let written = p.last_modified_date().map(|d| d.as_nanos());
                p.value().map(|v| (Zeroizing::new(v.to_string()), written))
            })),
            Err(e) => {
                let e = CallError::from_sdk("ssm:GetParameter", e);
                if e.code() == Some("ParameterNotFound") {
                    Ok(None)
                } else {
                    Err(self.failed("reading", e))
                }
            }
        }
    }

    fn malformed(&self, reason: &str) -> DestinationError {
        DestinationError::Malformed {
            what: self.describe(),
            reason: reason.into(),
        }
    }

    /// The JSON form's fields. The error never quotes the value.
    fn parse(&self, text: &str) -> Result<Map<String, Value>, DestinationError> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(fields)) => Ok(fields),
            _ => Err(self
                .malformed("its value is not a JSON object with AccessKeyId and SecretAccessKey")),
        }
    }

    async fn read_pair(&self) -> Result<Option<KeyPair>, DestinationError> {
        match self.form().await? {
            SsmForm::Json => {
                let Some(text) = self.get(&self.path).await? else {
                    return Ok(None);
                };
                let fields = self.parse(&text)?;
                let id = fields.get("AccessKeyId").and_then(Value::as_str);
                let secret = fields.get("SecretAccessKey").and_then(Value::as_str);
                Ok(id.zip(secret).map(|(id, secret)| KeyPair {
                    access_key_id: id.to_string(),
                    secret: SecretString::from(secret.to_string()),
                }))
            }
            SsmForm::Pair => {
                let names = self.names(SsmForm::Pair);
                let id = self.get(&names[0]).await?;
                let secret = self.get(&names[1]).await?;
                Ok(id.zip(secret).map(|(id, secret)| KeyPair {
                    access_key_id: id.trim().to_string(),
                    secret: SecretString::from(secret.to_string()),
                }))
            }
        }
    }

    /// For the pair form, the pair as written by one complete promotion of
    /// `key_id`: the ID parameter holds it and the secret parameter was
    /// written after it (see the module docs). None when the ID parameter
    /// holds another key, or the secret was never written after it.
    async fn whole_pair(&self, key_id: &str) -> Result<Option<KeyPair>, DestinationError> {
        let names = self.names(SsmForm::Pair);
        let Some((id, id_written)) = self.get_written(&names[0]).await? else {
            return Ok(None);
        };
        if id.trim() != key_id {
            return Ok(None);
        }
        let Some((secret, secret_written)) = self.get_written(&names[1]).await? else {
            return Ok(None);
        };
        let written_after = match (id_written, secret_written) {
            (Some(id_at), Some(secret_at)) => secret_at >= id_at,
            // Without dates nothing shows which came last: not whole.
            _ => false,
        };
        Ok(written_after.then(|| KeyPair {
            access_key_id: key_id.to_string(),
            secret: SecretString::from(secret.to_string()),
        }))
    }

    /// Whether a reader gets exactly `pair`: both values, not the ID only.
    async fn holds_whole(&self, pair: &KeyPair) -> Result<bool, DestinationError> {
        Ok(self.read_pair().await?.is_some_and(|held| {
            held.access_key_id == pair.access_key_id
                && held.secret.expose_secret() == pair.secret.expose_secret()
        }))
    }

    /// A parameter's type and KMS key, to write it back the same way; a
    /// parameter not set yet becomes a SecureString with the account's
    /// default key.
    async fn kind_of(
        &self,
        name: &str,
    ) -> Result<(ParameterType, Option<String>), DestinationError> {
        let filter = ParameterStringFilter::builder()
            .key("Name")
            .option("Equals")
            .values(name)
            .build()
            .map_err(|e| self.malformed(&e.to_string()))?;
        let out = self
            .client()
            .await?
            .describe_parameters()
            .parameter_filters(filter)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    "describing",
                    CallError::from_sdk("ssm:DescribeParameters", e),
                )
            })?;
        let Some(p) = out.parameters().first() else {
            return Ok((ParameterType::SecureString, None));
        };
        let kind = p.r#type().cloned().unwrap_or(ParameterType::SecureString);
        let key = p
            .key_id()
            .map(str::to_string)
            .filter(|_| kind == ParameterType::SecureString);
        Ok((kind, key))
    }

    /// Writes `value` as a new version of `name`, same type and KMS key.
    async fn put(&self, name: &str, value: &str) -> Result<(), DestinationError> {
        let (kind, key) = self.kind_of(name).await?;
        self.client()
            .await?
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .set_key_id(key)
            .overwrite(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.failed("writing", CallError::from_sdk("ssm:PutParameter", e)))
    }

    /// Puts `value` back, or removes a parameter that did not exist.
    async fn put_back(&self, name: &str, value: Option<&str>) -> Result<(), DestinationError> {
        let Some(value) = value else {
            return match self
                .client()
                .await?
                .delete_parameter()
                .name(name)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    let e = CallError::from_sdk("ssm:DeleteParameter", e);
                    if e.code() == Some("ParameterNotFound") {
                        Ok(())
                    } else {
                        Err(self.failed("removing", e))
                    }
                }
            };
        };
        self.put(name, value).await
    }

    /// The values to write for `new`, in write order (the ID first).
    async fn values_for(
        &self,
        new: &KeyPair,
    ) -> Result<Vec<(String, Zeroizing<String>)>, DestinationError> {
        Ok(match self.form().await? {
            SsmForm::Json => {
                // Not set yet: a first delivery creates it (issue 7).
                let mut fields = match self.get(&self.path).await? {
                    Some(text) => self.parse(&text)?,
                    None => Map::new(),
                };
                fields.insert(
                    "AccessKeyId".into(),
                    Value::String(new.access_key_id.clone()),
                );
                fields.insert(
                    "SecretAccessKey".into(),
                    Value::String(new.secret.expose_secret().to_string()),
                );
                vec![(
                    self.path.clone(),
                    Zeroizing::new(Value::Object(fields).to_string()),
                )]
            }
            SsmForm::Pair => {
                let names = self.names(SsmForm::Pair);
                vec![
                    (names[0].clone(), Zeroizing::new(new.access_key_id.clone())),
                    (
                        names[1].clone(),
                        Zeroizing::new(new.secret.expose_secret().to_string()),
                    ),
                ]
            }
        })
    }

    /// From the history: each parameter's value from before the version
    /// that first held `new_key_id` (for the pair, before the ID's).
    async fn previous_from_history(
        &self,
        old_key_id: &str,
        new_key_id: &str,
    ) -> Result<Values, DestinationError> {
        let form = self.form().await?;
        let names = self.names(form);
        let history = |name: String| async move {
            let pages: Vec<_> = self
                .client()
                .await?
                .get_parameter_history()
                .name(&name)
                .with_decryption(true)
                .into_paginator()
                .send()
                .collect::<Vec<_>>()
                .await;
            let mut versions = Vec::new();
            for page in pages {
                let page = page.map_err(|e| {
                    self.failed(
                        "reading the history of",
                        CallError::from_sdk("ssm:GetParameterHistory", e),
                    )
                })?;
                for p in page.parameters() {
                    versions.push((
                        p.version(),
                        p.last_modified_date().map(|d| d.as_nanos()),
                        Zeroizing::new(p.value().unwrap_or_default().to_string()),
                    ));
                }
            }
            versions.sort_by_key(|v| v.0);
            Ok::<_, DestinationError>(versions)
        };
        let holds = |value: &str, key: &str| match form {
            SsmForm::Json => serde_json::from_str::<Value>(value)
                .ok()
                .is_some_and(|v| v["AccessKeyId"] == key),
            SsmForm::Pair => value.trim() == key,
        };
        let first = history(names[0].clone()).await?;
        let Some(delivered) = first.iter().position(|v| holds(&v.2, new_key_id)) else {
            return Err(self.nothing(old_key_id));
        };
        if delivered == 0 {
            // Created by a first delivery: it did not exist before.
            return Ok(names.into_iter().map(|n| (n, None)).collect());
        }
        let Some(before) = first[..delivered]
            .iter()
            .rev()
            .find(|v| holds(&v.2, old_key_id))
        else {
            return Err(self.nothing(old_key_id));
        };
        let mut values = vec![(names[0].clone(), Some(before.2.clone()))];
        if form == SsmForm::Pair {
            let at = first[delivered].1;
            let second = history(names[1].clone()).await?;
            let secret = second
                .iter()
                .rev()
                .find(|v| v.1 < at)
                .ok_or_else(|| self.nothing(old_key_id))?;
            values.push((names[1].clone(), Some(secret.2.clone())));
        }
        Ok(values)
    }

    fn nothing(&self, old_key_id: &str) -> DestinationError {
        DestinationError::NothingToRestore {
            what: self.describe(),
            key_id: mask_key_id(old_key_id),
        }
    }
}

impl Destination for SsmParameter {
    fn spec(&self) -> DestinationSpec {
        DestinationSpec::Ssm {
            path: self.path.clone(),
            form: self.form.get().copied(),
            region: self.client.route.region.clone(),
            role: self.client.route.role_arn(),
            external_id: self.client.route.external_id(),
        }
    }

    fn describe(&self) -> String {
        format!("ssm:{}", self.path)
    }

    fn current_key_id(&self) -> Io<'_, Option<String>> {
        Box::pin(async move { Ok(self.read_pair().await?.map(|p| p.access_key_id)) })
    }

    fn current(&self) -> Io<'_, Option<KeyPair>> {
        Box::pin(self.read_pair())
    }

    fn check(&self) -> Io<'_, ()> {
        Box::pin(async move {
            // Finds the form before the rotation is journaled. A path
            // holding no pair yet is a first delivery's to fill.
            self.form().await?;
            Ok(())
        })
    }

    fn deliver<'a>(&'a self, new: &'a KeyPair, old_key_id: &'a str) -> Io<'a, ()> {
        Box::pin(async move {
            let form = self.form().await?;
            let holds = self.current_key_id().await?;
            if holds.as_deref() == Some(new.access_key_id.as_str()) {
                return Ok(());
            }
            if holds.is_some() && holds.as_deref() != Some(old_key_id) {
                return Err(DestinationError::Changed {
                    what: self.describe(),
                    place: match form {
                        SsmForm::Json => format!("parameter {}", self.path),
                        SsmForm::Pair => format!("parameter {}/{ID}", self.path),
                    },
                    holds: holds.as_deref().map(mask_key_id),
                });
            }
            let mut before = Vec::new();
            for name in self.names(form) {
                let value = self.get(&name).await?;
                before.push((name, value));
            }
            *self.previous.lock().expect("previous lock") = Some(Previous {
                old_key_id: old_key_id.to_string(),
                values: before,
            });
            Ok(())
        })
    }

    fn stages_delivery(&self) -> bool {
        true
    }

    fn promote<'a>(&'a self, new: &'a KeyPair) -> Io<'a, ()> {
        Box::pin(async move {
            // Done only when a reader gets the whole new pair: the new ID
            // beside the old secret (a run killed between the two writes)
            // is written again (issue 15 #9).
            if self.holds_whole(new).await? {
                return Ok(());
            }
            for (name, value) in self.values_for(new).await? {
                self.put(&name, &value).await?;
            }
            Ok(())
        })
    }

    fn missing<'a>(&'a self, new: &'a KeyPair) -> Io<'a, Vec<String>> {
        Box::pin(async move {
            if self.holds_whole(new).await? {
                return Ok(vec![]);
            }
            let holds = self.current_key_id().await?;
            Ok(vec![
                if holds.as_deref() == Some(new.access_key_id.as_str()) {
                    format!(
                        "{} holds the new key ID {} beside a secret that is not its own",
                        self.describe(),
                        mask_key_id(&new.access_key_id)
                    )
                } else {
                    format!(
                        "{} holds {}",
                        self.describe(),
                        holds.as_deref().map_or("no key".into(), mask_key_id)
                    )
                },
            ])
        })
    }

    fn holding<'a>(&'a self, key_id: &'a str) -> Io<'a, Option<KeyPair>> {
        Box::pin(async move {
            match self.form().await? {
                SsmForm::Json => Ok(self
                    .read_pair()
                    .await?
                    .filter(|p| p.access_key_id == key_id)),
                SsmForm::Pair => self.whole_pair(key_id).await,
            }
        })
    }

    fn restore<'a>(&'a self, old_key_id: &'a str, new_key_id: &'a str) -> Io<'a, ()> {
        Box::pin(async move {
            let kept = {
                let previous = self.previous.lock().expect("previous lock");
                previous
                    .as_ref()
                    .filter(|p| p.old_key_id == old_key_id)
                    .map(|p| p.values.clone())
            };
            let values = match kept {
                Some(values) => values,
                None => self.previous_from_history(old_key_id, new_key_id).await?,
            };
            // The secret first, the ID last: the ID says which key it holds.
            for (name, value) in values.iter().rev() {
                self.put_back(name, value.as_ref().map(|v| v.as_str()))
                    .await?;
            }
            Ok(())
        })
    }

    fn release_old<'a>(&'a self, _old_key_id: &'a str) -> Io<'a, ()> {
        Box::pin(async move {
            *self.previous.lock().expect("previous lock") = None;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_round_trip_by_name() {
        for form in [SsmForm::Json, SsmForm::Pair] {
            assert_eq!(SsmForm::parse(form.as_str()), Some(form));
        }
        assert_eq!(SsmForm::parse("yaml"), None);
    }
}
