//! The journal in one DynamoDB table, shared by every runner that names it
//! (`--journal dynamodb:TABLE`): CI runners, machines, Lambda invocations,
//! which have no disk in common (issue 18). The rules are the SQLite
//! journal's, the same functions (`journal::rules`, `journal::lease`,
//! `journal::keys`); this backend only stores and conditions.
//!
//! | module | owns |
//! |---|---|
//! | `store` | items, consistent reads, conditional writes with tokens |
//! | `records` | what each call reads, asks the rules, and writes |
//! | `table` | creating the table and checking an existing one's shape |
//!
//! # The table
//!
//! One table, key `pk` (string) + `sk` (string), on-demand, TTL on
//! `expires`. A user's partition `U#<account>#<user>` holds its head (sort
//! key `HEAD`: the lease and the unfinished rotation) and its rotations
//! (`R#<id>`: the rotation and its events, one item). Small index items
//! find a rotation by ID (`ID#<id>`), the latest ones (`LOG`) and the
//! unfinished ones (`OPEN`); key records sit in `K#<account>` and `KLOG`.
//!
//! # How a write stays exclusive
//!
//! Every item carries a version (`ver`). A write reads the items its rule
//! needs (strongly consistent, or as this process last wrote them), asks
//! the rule, and writes on the condition that each item is still at the
//! version it read: one conditional PutItem, or one transaction when it
//! touches several items. A failed condition means another runner wrote
//! first: read again, ask again. As in the DynamoDB Lock Client, the lease
//! is one such item, taken and extended on its version.

mod journal_impl;
mod records;
mod store;
mod table;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

use super::RotationId;
use crate::clock::Clock;
use records::{Head, Stored};
pub use table::{InitReport, init};

/// How long a finished record is kept before the table's TTL deletes it,
/// unless the spec says otherwise (`retention=`).
pub const DEFAULT_RETENTION_DAYS: u32 = 400;

/// A DynamoDB journal, as `--journal dynamodb:TABLE?region=R` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoSpec {
    pub table: String,
    pub region: Option<String>,
    pub retention_days: u32,
}

/// The journal in a DynamoDB table.
pub struct DynamoJournal {
    client: aws_sdk_dynamodb::Client,
    table: String,
    clock: Arc<dyn Clock>,
    /// This machine, for deciding whether a lease holder is provably dead.
    host: &'static str,
    retention: time::Duration,
    read_only: bool,
    /// This process among all writers, for write tokens.
    nonce: String,
    writes: AtomicU64,
    /// Writes found to have landed after their answer was lost.
    recovered: AtomicU64,
    /// The items this process last read or wrote, with their versions: a
    /// write conditioned on one of them needs no read first (a stale one
    /// fails its condition and is read again).
    heads: Mutex<HashMap<(String, String), Head>>,
    docs: Mutex<HashMap<RotationId, Stored>>,
}

impl std::fmt::Debug for DynamoJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoJournal")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl DynamoJournal {
    /// The journal in table `spec.table`, reached with `client` (whose
    /// region and credentials are the caller's). Makes no call: a missing
    /// table is said at the first read, naming `rekey journal init`.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        spec: &DynamoSpec,
        clock: Arc<dyn Clock>,
        read_only: bool,
    ) -> DynamoJournal {
        let nonce = format!(
            "{}-{}-{}",
            super::lease::hostname(),
            std::process::id(),
            RotationId::new(clock.now())
        );
        DynamoJournal {
            client,
            table: spec.table.clone(),
            clock,
            host: super::lease::hostname(),
            retention: time::Duration::days(i64::from(spec.retention_days)),
            read_only,
            nonce,
            writes: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            heads: Mutex::default(),
            docs: Mutex::default(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// How many writes were found, by their token, to have landed although
    /// their answer was lost (or the SDK's retry of them was refused).
    pub fn recovered_writes(&self) -> u64 {
        self.recovered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Now, at the millisecond precision both backends keep.
    fn now(&self) -> OffsetDateTime {
        let t = self.clock.now();
        t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
            .unwrap_or(t)
    }

    fn heads(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Head>> {
        self.heads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn docs(&self) -> std::sync::MutexGuard<'_, HashMap<RotationId, Stored>> {
        self.docs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How many times a write is decided again after another runner wrote
/// first, before giving up with [`super::JournalError::Contended`].
const TRIES: usize = 8;
