//! The table as a store of versioned items: consistent reads, and writes
//! that each carry a condition and a token. Nothing here knows a rule; the
//! records module decides what to write, this one makes sure it lands only
//! on the state it was decided from.
//!
//! A write whose answer is lost (the connection dropped after DynamoDB
//! applied it) and which the SDK retried meets its own condition failing:
//! the item moved on. Each write therefore stamps its first item with a
//! token no other write has (`tok`); after a failed condition or an
//! unknown outcome, the item is read back, and carrying this write's token
//! it is this write's own success, not a conflict.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use aws_smithy_types::error::display::DisplayErrorContext;

use super::DynamoJournal;
use crate::journal::JournalError;

pub(super) type Item = HashMap<String, AttributeValue>;

/// The attributes every item has: its key (`pk`, `sk`).
pub(super) const PK: &str = "pk";
pub(super) const SK: &str = "sk";
/// The item's version: 1 when written first, one more at each write.
pub(super) const VER: &str = "ver";
/// The token of the write that made this version.
pub(super) const TOK: &str = "tok";
/// When DynamoDB may delete the item (Unix seconds; the table's TTL).
pub(super) const EXPIRES: &str = "expires";

/// What must hold for one item of a write to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cond {
    /// The item does not exist.
    Absent,
    /// The item is at this version (0: it does not exist yet).
    Version(u64),
    /// Whatever is there (an index item, written whole each time).
    Any,
}

/// One item of a write.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Put { item: Item, cond: Cond },
    Delete { pk: String, sk: String },
}

/// How a write ended, when DynamoDB answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    Landed,
    /// A condition failed: something else wrote first. Read again, decide
    /// again.
    Conflict,
}

pub(super) fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

pub(super) fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

pub(super) fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

/// The text attribute `name` of `item`.
pub(super) fn text<'i>(item: &'i Item, name: &str) -> Option<&'i str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// The item's version (0 for none).
pub(super) fn version(item: Option<&Item>) -> u64 {
    item.and_then(|i| i.get(VER))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn condition(cond: Cond) -> (Option<String>, Option<(String, AttributeValue)>) {
    match cond {
        Cond::Absent | Cond::Version(0) => (Some("attribute_not_exists(pk)".into()), None),
        Cond::Version(v) => (Some("ver = :ver".into()), Some((":ver".into(), n(v)))),
        Cond::Any => (None, None),
    }
}

impl DynamoJournal {
    pub(super) fn failed<E, R>(
        &self,
        doing: &'static str,
    ) -> impl Fn(SdkError<E, R>) -> JournalError
    where
        E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        let table = self.table.clone();
        move |e| {
            let code = aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e);
            if code == Some("ResourceNotFoundException") {
                return JournalError::NoTable {
                    table: table.clone(),
                };
            }
            JournalError::Dynamo {
                table: table.clone(),
                doing,
                message: said(&e),
            }
        }
    }

    /// The item at (`pk`, `sk`), read strongly consistent: every decision
    /// is made on what the table holds now, not on a replica behind.
    pub(super) async fn get(
        &self,
        doing: &'static str,
        pk: &str,
        sk: &str,
    ) -> Result<Option<Item>, JournalError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(self.failed(doing))?;
        Ok(out.item)
    }

    /// Every item of partition `pk` whose sort key begins with `prefix`, in
    /// sort-key order (`forward`) or reversed, at most `limit` of them;
    /// strongly consistent, every page.
    pub(super) async fn query(
        &self,
        doing: &'static str,
        pk: &str,
        prefix: &str,
        forward: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, JournalError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let left = limit.map(|l| l.saturating_sub(items.len()));
            if left == Some(0) {
                break;
            }
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk));
            q = match prefix {
                "" => q.key_condition_expression("pk = :pk"),
                _ => q
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
            };
            let page = q
                .scan_index_forward(forward)
                .consistent_read(true)
                .set_limit(left.map(|l| i32::try_from(l.min(1000)).unwrap_or(1000)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(self.failed(doing))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        if let Some(l) = limit {
            items.truncate(l);
        }
        Ok(items)
    }

    /// A token no other write has: this process, and a count.
    pub(super) fn token(&self) -> String {
        let n = self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{n}", self.nonce)
    }

    /// Writes `ops` (the first one a put stamped with `token`) at once:
    /// one conditional PutItem, or a transaction when there are several.
    pub(super) async fn write(
        &self,
        doing: &'static str,
        token: &str,
        ops: Vec<Op>,
    ) -> Result<Written, JournalError> {
        if self.read_only {
            return Err(JournalError::ReadOnly { doing });
        }
        let Some(Op::Put { item: first, .. }) = ops.first() else {
            unreachable!("a write begins with the put of its token's item")
        };
        debug_assert_eq!(text(first, TOK), Some(token));
        let (pk, sk) = (
            text(first, PK).unwrap_or_default().to_string(),
            text(first, SK).unwrap_or_default().to_string(),
        );
        let answer = match ops.as_slice() {
            [Op::Put { item, cond }] => self.put(item.clone(), *cond).await,
            _ => self.transact(ops).await,
        };
        let unknown = match answer {
            Ok(()) => return Ok(Written::Landed),
            Err(Failure::Other(e)) => return Err(e),
            Err(Failure::Condition) => None,
            Err(Failure::Unknown(e)) => Some(e),
        };
        // Was it this write, applied with its answer lost (and the SDK's
        // retry then refused), or applied before the connection broke?
        let now = self.get(doing, &pk, &sk).await?;
        let mine = now.as_ref().and_then(|i| text(i, TOK)) == Some(token);
        match (mine, unknown) {
            (true, _) => {
                self.recovered
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Written::Landed)
            }
            (false, None) => Ok(Written::Conflict),
            // Not applied, and DynamoDB could not be reached: say so.
            (false, Some(e)) => Err(e),
        }
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), Failure> {
        let (expr, value) = condition(cond);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(expr)
            .set_expression_attribute_values(value.map(|(k, v)| HashMap::from([(k, v)])))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Failure::Condition)
            }
            Err(e) => Err(self.classify(e, "writing a journal record")),
        }
    }

    async fn transact(&self, ops: Vec<Op>) -> Result<(), Failure> {
        let mut items = Vec::with_capacity(ops.len());
        for op in ops {
            let item = match op {
                Op::Put { item, cond } => {
                    let (expr, value) = condition(cond);
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .set_condition_expression(expr)
                        .set_expression_attribute_values(
                            value.map(|(k, v)| HashMap::from([(k, v)])),
                        )
                        .build()
                        .expect("a put names its table and item");
                    TransactWriteItem::builder().put(put).build()
                }
                Op::Delete { pk, sk } => {
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(&pk, &sk)))
                        .build()
                        .expect("a delete names its table and key");
                    TransactWriteItem::builder().delete(delete).build()
                }
            };
            items.push(item);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let conflict = e.as_service_error().is_some_and(|s| {
                    aws_sdk_dynamodb::error::ProvideErrorMetadata::code(s) == Some("TransactionConflictException")
                        || match s {
                            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => t
                                .cancellation_reasons()
                                .iter()
                                .any(|r| matches!(r.code(), Some("ConditionalCheckFailed" | "TransactionConflict"))),
                            _ => false,
                        }
                });
                match conflict {
                    true => Err(Failure::Condition),
                    false => Err(self.classify(e, "writing journal records")),
                }
            }
        }
    }

    /// A failed call: its outcome unknown when the answer never came (the
    /// request may have been applied), else what DynamoDB said.
    fn classify<E, R>(&self, e: SdkError<E, R>, doing: &'static str) -> Failure
    where
        E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        let unknown = matches!(
            e,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
        );
        let error = self.failed(doing)(e);
        match unknown {
            true => Failure::Unknown(error),
            false => Failure::Other(error),
        }
    }
}

/// What DynamoDB said (its code and message), else why no answer came.
pub(super) fn said<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

/// Why a write did not answer "done".
enum Failure {
    Condition,
    Unknown(JournalError),
    Other(JournalError),
}
