//! Notices (one key's stage, in words) and digests (one message's worth:
//! every notice for one recipient, grouped by stage). Pure.
//!
//! Each notice says what happened, what will happen and when, and what
//! the owner must do — the same words on every channel; the templates
//! only lay them out.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::stage::KeyStage;
use super::{Channel, Severity, Stage};
use crate::enforce::lifecycle::{DeactivateWhy, Due, Lifecycle, OnGraceMax};
use crate::model::mask_key_id;

/// What is known of a key's user and account besides the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub account_name: Option<String>,
    pub user_arn: String,
    /// A destination of rekey's holds its key: rekey rotates it.
    pub bound: bool,
}

/// The next stage, and when it falls due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Next {
    /// rotation, deactivation, retirement, deletion.
    pub what: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// One key's stage, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub account_id: String,
    pub account_name: Option<String>,
    pub user_name: String,
    pub user_arn: String,
    pub key_id: String,
    /// The key ID masked, as people read it (`AKIA…MPLE`).
    pub key: String,
    pub stage: Stage,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub next: Option<Next>,
    /// What happened.
    pub happened: String,
    /// What will happen, and when.
    pub coming: Option<String>,
    /// What the owner must do.
    pub todo: Option<String>,
    /// The command that does it, when one does.
    pub command: Option<String>,
}

/// `t` as a day (`2030-04-02`), as the messages say dates.
pub fn day(t: OffsetDateTime) -> String {
    t.date().to_string()
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// The notice of `ks`, with `who` and the account's lifecycle `rules`.
pub fn notice(ks: &KeyStage, who: &Who, rules: &Lifecycle) -> Notice {
    let mut n = Notice {
        account_id: ks.account_id.clone(),
        account_name: who.account_name.clone(),
        user_name: ks.user_name.clone(),
        user_arn: who.user_arn.clone(),
        key_id: ks.key_id.clone(),
        key: mask_key_id(&ks.key_id),
        stage: ks.stage,
        since: ks.since,
        next: None,
        happened: String::new(),
        coming: None,
        todo: None,
        command: None,
    };
    let since = day(ks.since);
    let next = |what, at| Some(Next { what, at });
    match ks.stage {
        Stage::Warning => {
            let at = match &ks.due {
                Some(Due::Warn { at }) => *at,
                _ => ks.since + days(rules.warn_before_days),
            };
            if who.bound {
                n.happened = format!(
                    "reaches its maximum age of {} days on {}.",
                    rules.max_age_days,
                    day(at)
                );
                n.next = next("rotation", at);
                n.coming = Some(format!(
                    "rekey rotates it on {}: its destinations get a new key, and this one stays active {} more days for their readers.",
                    day(at),
                    rules.grace_days
                ));
            } else {
                n.happened = format!(
                    "is older than {} days and no destination of rekey's holds it: rekey cannot rotate it for you.",
                    rules.max_age_days
                );
                n.next = next("deactivation", at);
                n.coming = Some(format!("It is deactivated on {}.", day(at)));
                n.todo = Some(format!(
                    "Rotate it yourself before {}, on the machine whose AWS credentials file holds it, with the command below (the profile whose key it is).",
                    day(at)
                ));
                n.command = Some("rekey rotate --profile PROFILE".into());
            }
        }
        Stage::Rotated => {
            let at = ks.since + days(rules.grace_days);
            n.happened = format!("was replaced on {since}: its destinations hold a new key.");
            n.next = next("retirement", at);
            n.coming = Some(format!(
                "It is deactivated from {} on, once nothing has used it since its replacement.",
                day(at)
            ));
            n.todo = Some("Check that whatever reads its destinations uses the new key.".into());
        }
        Stage::StillInUse => {
            let (used, until) = match &ks.due {
                Some(Due::StillInUse { last_used, until }) => (Some(last_used.clone()), *until),
                _ => (None, ks.since + days(rules.grace_max_days)),
            };
            let used = used.map_or_else(
                || "was used".to_string(),
                |u| {
                    let whence = [u.service.as_deref(), u.region.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ");
                    let whence = if whence.is_empty() {
                        String::new()
                    } else {
                        format!(" ({whence})")
                    };
                    format!("was used on {}{whence}", day(u.date))
                },
            );
            n.happened = format!("{used} after its replacement was delivered.");
            match rules.on_grace_max {
                OnGraceMax::Deactivate => {
                    n.next = next("deactivation", until);
                    n.coming = Some(format!("It is deactivated on {}, used or not.", day(until)));
                }
                OnGraceMax::Report => {
                    n.coming = Some(format!(
                        "It stays active; after {} it is reported at every run.",
                        day(until)
                    ));
                }
            }
            n.todo = Some(format!(
                "Move whatever uses it to the new key in its destinations before {}.",
                day(until)
            ));
        }
        Stage::Deactivated => {
            let why = match &ks.due {
                Some(Due::Deactivate {
                    why: DeactivateWhy::Stale { age_days },
                }) => {
                    format!(" It was {age_days} days old and no destination of rekey's holds it.")
                }
                Some(Due::Deactivate {
                    why: DeactivateWhy::Unused { idle_days },
                }) => {
                    format!(" It had not been used for {idle_days} days.")
                }
                Some(Due::Deactivate {
                    why: DeactivateWhy::GraceOver { .. },
                }) => " It was still used after its grace was over.".to_string(),
                Some(Due::Retire { .. }) => {
                    " It had been replaced and was not used since.".to_string()
                }
                _ => String::new(),
            };
            let at = ks.since + days(rules.recovery_days);
            n.happened = format!("was deactivated on {since}.{why}");
            n.next = next("deletion", at);
            n.coming = Some(format!(
                "It is deleted on {} unless it is made active again.",
                day(at)
            ));
            n.todo = Some(format!(
                "If something stopped working, have it made active again before {} with the command below, then move that to a new key.",
                day(at)
            ));
            n.command = Some(format!("rekey enforce --reactivate {}", ks.key_id));
        }
        Stage::Deleted => {
            n.happened = format!("was deleted on {since}.");
        }
        Stage::Reactivated => {
            let at = ks.since + days(rules.grace_days);
            n.happened = format!("was made active again on {since}.");
            n.next = next("deactivation", at);
            n.coming = Some(format!("It may be deactivated again from {} on.", day(at)));
            n.todo = Some("Move whatever uses it to a new key.".into());
        }
    }
    n
}

/// Who a digest goes to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipient {
    /// The keys' owner, by email.
    Owner { address: String },
    /// The SNS topic, for one account's keys at one stage (so that
    /// subscribers filter by account and stage).
    Topic { account_id: String, stage: Stage },
    /// The team's chat (the webhook): every key.
    Team,
}

impl Recipient {
    /// For messages and the journal (never the webhook's URL).
    pub fn describe(&self) -> String {
        match self {
            Recipient::Owner { address } => address.clone(),
            Recipient::Topic { account_id, stage } => {
                format!("account {account_id}, {}", stage.as_str())
            }
            Recipient::Team => "the team's chat".into(),
        }
    }
}

/// The notices of one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub stage: Stage,
    pub heading: &'static str,
    pub severity: Severity,
    pub notices: Vec<Notice>,
}

/// One message: every notice for one recipient on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digest {
    pub channel: Channel,
    pub to: Recipient,
    pub groups: Vec<Group>,
}

impl Digest {
    pub fn notices(&self) -> impl Iterator<Item = &Notice> {
        self.groups.iter().flat_map(|g| g.notices.iter())
    }

    pub fn len(&self) -> usize {
        self.notices().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The highest severity among its stages.
    pub fn severity(&self) -> Severity {
        (self.groups.iter())
            .map(|g| g.severity)
            .max()
            .unwrap_or(Severity::Info)
    }
}

/// The order stages are listed in: what asks most of the owner first.
const ORDER: [Stage; 6] = [
    Stage::StillInUse,
    Stage::Warning,
    Stage::Deactivated,
    Stage::Reactivated,
    Stage::Rotated,
    Stage::Deleted,
];

/// `notices` grouped by stage (in [`ORDER`]), each group by account, user
/// and key.
pub fn groups(mut notices: Vec<Notice>) -> Vec<Group> {
    notices.sort_by(|a, b| {
        (&a.account_id, &a.user_name, &a.key_id).cmp(&(&b.account_id, &b.user_name, &b.key_id))
    });
    ORDER
        .iter()
        .filter_map(|stage| {
            let of: Vec<Notice> = notices
                .iter()
                .filter(|n| n.stage == *stage)
                .cloned()
                .collect();
            (!of.is_empty()).then(|| Group {
                stage: *stage,
                heading: stage.heading(),
                severity: stage.severity(),
                notices: of,
            })
        })
        .collect()
}

/// The digests of `channel`: `recipient` says whom each notice goes to
/// (None: nobody, it is left out).
pub fn digests(
    channel: Channel,
    notices: Vec<Notice>,
    recipient: impl Fn(&Notice) -> Option<Recipient>,
) -> Vec<Digest> {
    let mut by: std::collections::BTreeMap<Recipient, Vec<Notice>> = Default::default();
    for n in notices {
        if let Some(r) = recipient(&n) {
            by.entry(r).or_default().push(n);
        }
    }
    (by.into_iter())
        .map(|(to, notices)| Digest {
            channel,
            to,
            groups: groups(notices),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ks(key: &str, stage: Stage, due: Option<Due>) -> KeyStage {
        KeyStage {
            account_id: "111111111111".into(),
            user_name: "svc".into(),
            key_id: key.into(),
            stage,
            since: datetime!(2030-03-19 00:00 UTC),
            due,
            latest: datetime!(2030-03-19 00:00 UTC),
        }
    }

    #[test]
    fn each_stage_says_what_happened_what_comes_and_when_and_what_to_do() {
        let rules = Lifecycle::default();
        let at = datetime!(2030-04-02 00:00 UTC);
        let who = Who::default();
        let human = notice(
            &ks(
                "AKIAHUMANHUMAN000001",
                Stage::Warning,
                Some(Due::Warn { at }),
            ),
            &who,
            &rules,
        );
        assert_eq!(
            human.next,
            Some(Next {
                what: "deactivation",
                at
            })
        );
        assert!(
            human.todo.as_deref().unwrap().contains("before 2030-04-02"),
            "{human:?}"
        );
        assert_eq!(
            human.command.as_deref(),
            Some("rekey rotate --profile PROFILE")
        );
        let bound = Who {
            bound: true,
            ..Who::default()
        };
        let svc = notice(
            &ks(
                "AKIASERVICESERVIC01",
                Stage::Warning,
                Some(Due::Warn { at }),
            ),
            &bound,
            &rules,
        );
        assert_eq!(svc.next.as_ref().unwrap().what, "rotation");
        assert_eq!(svc.todo, None, "rekey rotates it: nothing to do");
        let off = notice(
            &ks("AKIAOFFOFFOFFOFF0001", Stage::Deactivated, None),
            &who,
            &rules,
        );
        assert_eq!(
            off.next.as_ref().unwrap().at,
            datetime!(2030-03-26 00:00 UTC)
        );
        assert_eq!(
            off.command.as_deref(),
            Some("rekey enforce --reactivate AKIAOFFOFFOFFOFF0001")
        );
        assert_eq!(off.key, "AKIA…0001");
        let gone = notice(
            &ks("AKIAGONEGONEGONE0001", Stage::Deleted, None),
            &who,
            &rules,
        );
        assert_eq!((gone.next, gone.todo), (None, None));
    }

    #[test]
    fn digests_group_by_recipient_then_stage_most_pressing_first() {
        let rules = Lifecycle::default();
        let who = Who::default();
        let notices = vec![
            notice(
                &ks("AKIAAAAAAAAAAAAA0001", Stage::Deleted, None),
                &who,
                &rules,
            ),
            notice(
                &ks("AKIAAAAAAAAAAAAA0002", Stage::StillInUse, None),
                &who,
                &rules,
            ),
            notice(
                &ks("AKIAAAAAAAAAAAAA0003", Stage::Deleted, None),
                &who,
                &rules,
            ),
        ];
        let d = digests(Channel::Webhook, notices.clone(), |_| Some(Recipient::Team));
        assert_eq!(d.len(), 1);
        let stages: Vec<Stage> = d[0].groups.iter().map(|g| g.stage).collect();
        assert_eq!(stages, vec![Stage::StillInUse, Stage::Deleted]);
        assert_eq!(d[0].len(), 3);
        assert_eq!(d[0].severity(), Severity::Critical);
        let by_stage = digests(Channel::Sns, notices, |n| {
            Some(Recipient::Topic {
                account_id: n.account_id.clone(),
                stage: n.stage,
            })
        });
        assert_eq!(by_stage.len(), 2);
    }
}
