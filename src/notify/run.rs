//! One delivery: for the accounts a run looked at, what each channel owes
//! (from the journal), in one digest per recipient, sent, and each
//! notice's delivery journaled — after sending, so a run killed between
//! the two sends it again: at least once, never lost.
//!
//! Enforcement never waits for it: `rekey enforce --apply` delivers after
//! its actions, and a channel that fails is said, counted and owed to the
//! next run.

use std::collections::BTreeMap;

use futures::{StreamExt, stream};
use serde::Serialize;
use time::OffsetDateTime;

use super::channel::{Message, Outbox};
use super::digest::{Digest, Notice, Recipient, Who, digests, notice};
use super::owner::OwnerSource;
use super::settings::NotifyRequest;
use super::stage::{KeyStage, current, owed, with_planned};
use super::{Channel, SCHEMA, Sent};
use crate::aws::Deps;
use crate::config::Lifecycles;
use crate::error::error_chain;
use crate::journal::{Journal, KeyEvent, KeyOp, NewKeyEvent, Phase};

/// Messages sent at once.
const SEND_CONCURRENCY: usize = 4;

/// What the run knows of the accounts and users it looked at.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub accounts: BTreeMap<String, AccountEntry>,
}

#[derive(Debug, Clone, Default)]
pub struct AccountEntry {
    pub name: Option<String>,
    pub users: BTreeMap<String, UserEntry>,
}

#[derive(Debug, Clone, Default)]
pub struct UserEntry {
    pub arn: String,
    pub path: String,
    pub tags: BTreeMap<String, String>,
    /// A destination of rekey's holds its key.
    pub bound: bool,
}

/// What the delivery needs besides its request.
pub struct Cx<'a> {
    pub journal: &'a dyn Journal,
    pub deps: &'a Deps,
    pub lifecycles: &'a Lifecycles,
    /// The run's moment (`--as-of`), which stages and deliveries are for.
    pub as_of: OffsetDateTime,
    pub run_id: &'a str,
}

/// Send, or only render.
pub enum Mode {
    Send,
    /// Render what would be sent; `planned` are the stages a plan would
    /// put keys in before it.
    Preview {
        planned: Vec<KeyStage>,
    },
}

/// One message's fate.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub channel: Channel,
    /// The address, the topic's account and stage, or the team's chat.
    pub to: String,
    pub keys: usize,
    pub delivered: bool,
    /// Why it was not (no secret), or why its record failed.
    pub error: Option<String>,
    /// The message (`rekey notify --preview`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

/// The delivery's summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NotifyOutcome {
    pub messages: Vec<Delivery>,
    /// Keys no owner was found for (no tag, entry, account email or
    /// default): no email went out for them.
    pub no_owner: Vec<String>,
    /// Values passed over when looking for owners.
    pub passed_over: Vec<String>,
    /// What could not be read or recorded (the journal, a channel).
    pub problems: Vec<String>,
    pub preview: bool,
}

impl NotifyOutcome {
    pub fn delivered(&self) -> usize {
        self.messages.iter().filter(|m| m.delivered).count()
    }

    /// Messages not delivered, keys without an owner, and problems: what
    /// the exit code counts.
    pub fn undelivered(&self) -> usize {
        self.messages.iter().filter(|m| !m.delivered).count()
            + self.no_owner.len()
            + self.problems.len()
    }
}

/// The stages every account's keys are in, with the account's records.
struct Account<'a> {
    id: &'a str,
    entry: &'a AccountEntry,
    events: Vec<KeyEvent>,
    stages: Vec<KeyStage>,
}

/// Delivers (or previews) what `req`'s channels owe for `dir`'s accounts.
pub async fn deliver(
    req: &NotifyRequest,
    dir: &Directory,
    cx: &Cx<'_>,
    mode: Mode,
) -> NotifyOutcome {
    let mut out = NotifyOutcome {
        preview: matches!(mode, Mode::Preview { .. }),
        ..NotifyOutcome::default()
    };
    let mut planned = match mode {
        Mode::Preview { planned } => planned,
        Mode::Send => Vec::new(),
    };
    let mut accounts = Vec::new();
    for (id, entry) in &dir.accounts {
        let events = match cx.journal.key_events_in(id).await {
            Ok(e) => e,
            Err(e) => {
                out.problems.push(format!(
                    "account {id}: cannot read the journal: {}",
                    error_chain(&e)
                ));
                continue;
            }
        };
        let (mine, rest): (Vec<KeyStage>, Vec<KeyStage>) =
            planned.into_iter().partition(|k| k.account_id == *id);
        planned = rest;
        let stages = with_planned(current(&events), mine);
        accounts.push(Account {
            id,
            entry,
            events,
            stages,
        });
    }
    let mut all: Vec<Digest> = Vec::new();
    let channels = [
        (Channel::Sns, req.sns_topic.is_some()),
        (Channel::Email, req.email_from.is_some()),
        (Channel::Webhook, req.webhook.is_some()),
    ];
    let mut emails: BTreeMap<String, AccountEmail> = BTreeMap::new();
    for (channel, on) in channels {
        if !on {
            continue;
        }
        let notices = owed_notices(&accounts, channel, cx, req);
        let d = match channel {
            Channel::Sns => digests(channel, notices, |n| {
                Some(Recipient::Topic {
                    account_id: n.account_id.clone(),
                    stage: n.stage,
                })
            }),
            Channel::Webhook => digests(channel, notices, |_| Some(Recipient::Team)),
            Channel::Email => {
                let owners = owners_of(req, &notices, dir, cx.deps, &mut emails, &mut out).await;
                digests(channel, notices, |n| {
                    owners
                        .get(&n.key_id)
                        .map(|a| Recipient::Owner { address: a.clone() })
                })
            }
        };
        all.extend(d);
    }
    if all.is_empty() {
        return out;
    }
    let messages: Vec<(Digest, Result<Message, String>)> = (all.into_iter())
        .map(|d| {
            let m = message(req, &d, cx);
            (d, m)
        })
        .collect();
    if out.preview {
        for (d, m) in messages {
            out.messages.push(Delivery {
                channel: d.channel,
                to: d.to.describe(),
                keys: d.len(),
                delivered: false,
                error: m.as_ref().err().cloned(),
                message: m.ok(),
            });
        }
        return out;
    }
    let outbox = match Outbox::open(req, cx.deps).await {
        Ok(o) => o,
        Err(why) => {
            for (d, _) in &messages {
                out.messages.push(failed(d, why.clone()));
                record(cx, d, Err(&why)).await;
            }
            return out;
        }
    };
    let sent: Vec<Delivery> = stream::iter(messages)
        .map(|(d, m)| {
            let outbox = &outbox;
            async move { send_and_record(outbox, cx, &d, m).await }
        })
        .buffer_unordered(SEND_CONCURRENCY)
        .collect()
        .await;
    out.messages.extend(sent);
    out.messages
        .sort_by(|a, b| (a.channel, &a.to).cmp(&(b.channel, &b.to)));
    out
}

fn failed(d: &Digest, why: String) -> Delivery {
    Delivery {
        channel: d.channel,
        to: d.to.describe(),
        keys: d.len(),
        delivered: false,
        error: Some(why),
        message: None,
    }
}

/// Sends one digest's message and records each of its notices.
async fn send_and_record(
    outbox: &Outbox,
    cx: &Cx<'_>,
    d: &Digest,
    m: Result<Message, String>,
) -> Delivery {
    let result = match &m {
        Ok(m) => outbox.send(m).await,
        Err(why) => Err(why.clone()),
    };
    if result.is_ok() {
        // Sent, not yet journaled: a kill here sends it again next run.
        crate::faults::crash_point("notify", "sent");
    }
    let unrecorded = record(cx, d, result.as_ref().map(|_| ()).map_err(|e| e.as_str())).await;
    let mut delivery = match result {
        Ok(()) => Delivery {
            channel: d.channel,
            to: d.to.describe(),
            keys: d.len(),
            delivered: true,
            error: None,
            message: None,
        },
        Err(why) => failed(d, why),
    };
    if let Some(why) = unrecorded {
        let said = delivery
            .error
            .take()
            .map(|e| format!("{e}; "))
            .unwrap_or_default();
        delivery.error = Some(format!("{said}{why}"));
    }
    delivery
}

/// Journals each notice of `d` as delivered or not; what failed to be
/// recorded, if anything did (a delivered one is then sent again).
async fn record(cx: &Cx<'_>, d: &Digest, result: Result<(), &str>) -> Option<String> {
    let to = match &d.to {
        Recipient::Owner { address } => Some(address.clone()),
        Recipient::Topic { .. } => None,
        Recipient::Team => None,
    };
    let mut problems = Vec::new();
    for n in d.notices() {
        let sent = Sent {
            stage: n.stage,
            since: n.since,
            channel: d.channel,
            to: to.clone(),
            error: result.err().map(str::to_string),
        };
        let event = NewKeyEvent {
            account_id: n.account_id.clone(),
            user_name: n.user_name.clone(),
            key_id: n.key_id.clone(),
            op: KeyOp::Notified,
            phase: if result.is_ok() {
                Phase::Done
            } else {
                Phase::Failed
            },
            run_id: cx.run_id.to_string(),
            as_of: cx.as_of,
            detail: Some(serde_json::to_string(&sent).expect("a delivery serializes")),
        };
        if let Err(e) = cx.journal.record_key(&event).await {
            problems.push(format!(
                "{}: not recorded in the journal: {}",
                n.key,
                error_chain(&e)
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Every notice `channel` owes for `accounts`.
fn owed_notices(
    accounts: &[Account],
    channel: Channel,
    cx: &Cx<'_>,
    req: &NotifyRequest,
) -> Vec<Notice> {
    let mut notices = Vec::new();
    for a in accounts {
        let rules = cx.lifecycles.for_account(a.id);
        for ks in &a.stages {
            if !owed(ks, channel, &a.events, cx.as_of, req.resend) {
                continue;
            }
            let user = a.entry.users.get(&ks.user_name);
            let who = Who {
                account_name: a.entry.name.clone(),
                user_arn: user.map(|u| u.arn.clone()).unwrap_or_default(),
                bound: user.is_some_and(|u| u.bound),
            };
            notices.push(notice(ks, &who, rules));
        }
    }
    notices
}

/// The owner's address of each notice's key, by key ID; keys without
/// one are said in `out.no_owner`. The account's email is asked of
/// Organizations once per account, and only when no tag or entry names
/// an owner.
async fn owners_of(
    req: &NotifyRequest,
    notices: &[Notice],
    dir: &Directory,
    deps: &Deps,
    emails: &mut BTreeMap<String, AccountEmail>,
    out: &mut NotifyOutcome,
) -> BTreeMap<String, String> {
    let mut owners = BTreeMap::new();
    for n in notices {
        let user = (dir.accounts.get(&n.account_id)).and_then(|a| a.users.get(&n.user_name));
        let (path, tags) = match user {
            Some(u) => (u.path.as_str(), u.tags.clone()),
            None => ("/", BTreeMap::new()),
        };
        let mut found = req
            .owners
            .find(&n.account_id, (&n.user_name, path), &tags, None);
        if matches!(found.owner, None | Some((_, OwnerSource::Default))) {
            if !emails.contains_key(&n.account_id) {
                let email = account_email(deps, &n.account_id).await;
                emails.insert(n.account_id.clone(), email);
            }
            let email = emails[&n.account_id]
                .as_ref()
                .ok()
                .and_then(Option::as_deref);
            found = req
                .owners
                .find(&n.account_id, (&n.user_name, path), &tags, email);
        }
        for p in found.passed_over {
            if !out.passed_over.contains(&p) {
                out.passed_over.push(p);
            }
        }
        match found.owner {
            Some((address, _)) => {
                owners.insert(n.key_id.clone(), address);
            }
            None => {
                // Why the account's email was no help, when it was asked.
                let why = match emails.get(&n.account_id) {
                    Some(Err(why)) => format!(" (its account's email could not be read: {why})"),
                    _ => String::new(),
                };
                out.no_owner.push(format!(
                    "key {} of user {} in account {}{why}",
                    n.key, n.user_name, n.account_id
                ))
            }
        }
    }
    owners
}

/// What Organizations says of an account's email: none when the account
/// has none to say (not in an organization); an error, said with the key
/// left without an owner, when asking failed (access denied).
type AccountEmail = Result<Option<String>, String>;

async fn account_email(deps: &Deps, account_id: &str) -> AccountEmail {
    let org = aws_sdk_organizations::Client::new(deps.base());
    match org.describe_account().account_id(account_id).send().await {
        Ok(out) => Ok(out.account().and_then(|a| a.email()).map(str::to_string)),
        Err(e) => {
            let e = crate::error::CallError::from_sdk("organizations:DescribeAccount", e);
            match e.code() {
                Some("AWSOrganizationsNotInUseException" | "AccountNotFoundException") => Ok(None),
                _ => Err(error_chain(&e)),
            }
        }
    }
}

/// The message of `d` on its channel.
fn message(req: &NotifyRequest, d: &Digest, cx: &Cx<'_>) -> Result<Message, String> {
    let bad = |e: super::render::TemplateError| error_chain(&e);
    match &d.to {
        Recipient::Owner { address } => Ok(Message::Email {
            to: address.clone(),
            email: req.templates.email(d, cx.as_of).map_err(bad)?,
        }),
        Recipient::Team => Ok(Message::Webhook {
            body: req.templates.chat(d, cx.as_of).map_err(bad)?,
        }),
        Recipient::Topic { account_id, stage } => Ok(sns_message(d, account_id, *stage, cx)),
    }
}

/// The `rekey.notification/1` message of one account's keys at one stage.
pub fn sns_message(d: &Digest, account_id: &str, stage: super::Stage, cx: &Cx<'_>) -> Message {
    let account_name = d.notices().find_map(|n| n.account_name.clone());
    let keys: Vec<serde_json::Value> = (d.notices())
        .map(|n| {
            serde_json::json!({
                "user_name": n.user_name,
                "user_arn": n.user_arn,
                "key_id": n.key_id,
                "since": n.since.format(&time::format_description::well_known::Rfc3339).expect("a time formats"),
                "next": n.next,
                "happened": n.happened,
                "coming": n.coming,
                "todo": n.todo,
                "command": n.command,
            })
        })
        .collect();
    let severity = stage.severity();
    let message = serde_json::json!({
        "schema": SCHEMA,
        "account_id": account_id,
        "account_name": account_name,
        "stage": stage,
        "severity": severity,
        "run_id": cx.run_id,
        "as_of": cx.as_of.format(&time::format_description::well_known::Rfc3339).expect("a time formats"),
        "keys": keys,
    });
    let n = d.len();
    let subject = format!(
        "rekey: {n} access key{} {} in account {account_id}",
        if n == 1 { "" } else { "s" },
        stage.heading().to_lowercase()
    );
    Message::Sns {
        subject,
        message,
        attributes: vec![
            ("schema".into(), SCHEMA.into()),
            ("account_id".into(), account_id.into()),
            ("stage".into(), stage.as_str().into()),
            ("severity".into(), severity.as_str().into()),
        ],
    }
}
