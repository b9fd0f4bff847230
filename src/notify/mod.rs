//! Notifications (issue 19): the owners and teams of keys told once per
//! stage — by SNS (a JSON message, `rekey.notification/1`), by SES email to
//! the key's owner, and by a Slack-compatible webhook — each as one digest
//! per recipient per run, each delivery journaled.
//!
//! What is told comes from the journal, not from the run that acted: the
//! key records `rekey enforce` writes (warn, replaced, still_in_use,
//! retire, deactivate, delete, reactivate) give each key its stage; a
//! `notified` record per channel says it was told. A stage no channel has
//! delivered is owed until it is (a failed channel is retried on the next
//! run); a key is told again only when its stage changes, or with
//! `--renotify-after` while it still waits for its owner.
//!
//! - [`stage`]: each key's stage and what is owed on a channel (pure);
//! - [`owner`]: who owns a key — its tag, `[[owner]]`, the account's
//!   email, a default (pure);
//! - [`digest`]: notices grouped into one message per recipient, with
//!   what happened, what comes next and when, and what to do (pure);
//! - [`render`]: the messages from the templates (`templates/`,
//!   overridable), every inserted value escaped;
//! - [`channel`]: SNS, SES v2 and the webhook, retried with backoff;
//! - [`settings`]: `[notify]`, `[[owner]]` and the flags, checked up front;
//! - [`run`]: owed → digests → sent → journaled;
//! - [`words`]: the summary and the preview.
//!
//! No secret ever travels in a notification: not a key's secret (rekey
//! never mails a new key pair), not the webhook's URL.

pub mod channel;
pub mod digest;
pub mod owner;
pub mod render;
pub mod run;
pub mod settings;
pub mod stage;
pub mod words;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::journal::KeyOp;
use crate::names::named_enum;

/// The SNS message's schema name.
pub const SCHEMA: &str = "rekey.notification/1";

named_enum! {
    /// Where a key stands, as its owner is told.
    pub enum Stage as "stage" {
        /// Its rotation (or, with no destination, its deactivation) falls
        /// due soon.
        Warning = "warning",
        /// A rotation delivered its replacement; it stays active for its
        /// grace.
        Rotated = "rotated",
        /// Replaced, and used since its replacement was delivered.
        StillInUse = "still_in_use",
        /// Deactivated by rekey (stale, unused, retired or its grace over).
        Deactivated = "deactivated",
        Deleted = "deleted",
        /// Made active again (`enforce --reactivate`).
        Reactivated = "reactivated",
    }
}

named_enum! {
    /// How much a stage asks of its owner (an SNS message attribute).
    pub enum Severity as "severity" {
        Info = "info",
        Warning = "warning",
        Critical = "critical",
    }
}

named_enum! {
    /// A way a notification travels.
    pub enum Channel as "channel" {
        Sns = "sns",
        Email = "email",
        Webhook = "webhook",
    }
}

impl Stage {
    /// The stage a key record puts its key in (`Done` records only).
    pub fn of(op: KeyOp) -> Option<Stage> {
        Some(match op {
            KeyOp::Warn => Stage::Warning,
            KeyOp::Replaced => Stage::Rotated,
            KeyOp::StillInUse => Stage::StillInUse,
            KeyOp::Retire | KeyOp::Deactivate => Stage::Deactivated,
            KeyOp::Delete => Stage::Deleted,
            KeyOp::Reactivate => Stage::Reactivated,
            KeyOp::Notified => return None,
        })
    }

    pub fn severity(self) -> Severity {
        match self {
            Stage::Warning => Severity::Warning,
            Stage::StillInUse | Stage::Deactivated => Severity::Critical,
            Stage::Rotated | Stage::Deleted | Stage::Reactivated => Severity::Info,
        }
    }

    /// Whether the stage waits for its owner to act: what
    /// `--renotify-after` sends again while it lasts.
    pub fn awaits_owner(self) -> bool {
        matches!(self, Stage::Warning | Stage::StillInUse)
    }

    /// A digest's heading for the keys at this stage.
    pub fn heading(self) -> &'static str {
        match self {
            Stage::Warning => "Due soon",
            Stage::Rotated => "Rotated",
            Stage::StillInUse => "Replaced but still in use",
            Stage::Deactivated => "Deactivated",
            Stage::Deleted => "Deleted",
            Stage::Reactivated => "Made active again",
        }
    }
}

/// What the journal keeps of one delivery: the detail of a `notified`
/// record (never a secret: the recipient is an address or a topic, never
/// the webhook's URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub stage: Stage,
    /// The moment the key entered the stage: a stage entered again later
    /// is a new one.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub channel: Channel,
    /// The address or topic it went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Why it was not delivered (a `Failed` record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
