//! Who `enforce` leaves alone (issue 17): exemptions at the user (tag or
//! name glob), group, account and OU levels, each with a reason and an
//! optional expiry. In rekey.toml they are `[[enforce.exempt]]` entries;
//! in a user's tag (the policy's exempt tag, `rekey:exempt`) the value
//! holds them: `true`, or `until=2027-03-31;reason=vendor contract`.
//!
//! An exemption past its expiry no longer exempts, and is itself a
//! finding ([`Exempt::Expired`]). A tag value that cannot be read is an
//! error naming the user and the tag: a typo must not silently exempt a
//! key, nor silently end an exemption. Pure.

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, Time};

use crate::model::User;
use crate::policy::{Policy, exempt_tag_value, parse_date};

/// One `[[enforce.exempt]]` entry: exactly one of the levels, a reason,
/// and an optional last day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExemptEntry {
    /// A glob over the user name (or path + name).
    pub user: Option<String>,
    pub group: Option<String>,
    pub account: Option<String>,
    /// An organizational unit ID (`ou-…`): every account in it or in the
    /// OUs below it.
    pub ou: Option<String>,
    pub reason: String,
    /// The last day it holds (`YYYY-MM-DD`); none: until removed.
    pub until: Option<String>,
}

/// An exemption that applies to a user, where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exemption {
    /// `tag rekey:exempt`, `group G`, `user matches P`, `account A`,
    /// `ou ou-…`.
    pub by: String,
    pub reason: String,
    /// The last day it holds.
    pub until: Option<Date>,
}

/// Whether a user's keys are exempt at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "exempt", rename_all = "snake_case")]
pub enum Exempt {
    No,
    Yes(Exemption),
    /// An exemption applied until `until`: the keys go through the
    /// lifecycle again, and the lapse is reported.
    Expired(Exemption),
}

/// A tag or entry that cannot be read. Nothing is done for that user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExemptError {
    #[error(
        "user {user}: tag {tag} holds `{value}`, which is not an exemption ({why}); write `true` or `until=YYYY-MM-DD;reason=TEXT`"
    )]
    Tag {
        user: String,
        tag: String,
        value: String,
        why: String,
    },
    #[error("[[enforce.exempt]] entry {number}: {why}")]
    Entry { number: usize, why: String },
}

/// The exemptions of rekey.toml, checked: each entry's glob compiled and
/// its date read.
#[derive(Debug, Clone, Default)]
pub struct Exemptions {
    entries: Vec<(Level, Exemption)>,
}

#[derive(Debug, Clone)]
enum Level {
    User(GlobMatcher),
    Group(String),
    Account(String),
    Ou(String),
}

impl Exemptions {
    /// Reads the entries; a bad one is named by its number (from 1).
    pub fn new(entries: &[ExemptEntry]) -> Result<Exemptions, ExemptError> {
        let mut out = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let bad = |why: String| ExemptError::Entry { number: i + 1, why };
            let levels = [&e.user, &e.group, &e.account, &e.ou];
            if levels.iter().filter(|l| l.is_some()).count() != 1 {
                return Err(bad("name exactly one of user, group, account or ou".into()));
            }
            if e.reason.trim().is_empty() {
                return Err(bad("give a reason".into()));
            }
            let until = match &e.until {
                Some(d) => Some(date(d).map_err(|why| bad(format!("until: {why}")))?),
                None => None,
            };
            let (level, by) = if let Some(glob) = &e.user {
                let m = Glob::new(glob)
                    .map_err(|err| bad(format!("user: {err}")))?
                    .compile_matcher();
                (Level::User(m), format!("user matches {glob}"))
            } else if let Some(g) = &e.group {
                (Level::Group(g.clone()), format!("group {g}"))
            } else if let Some(a) = &e.account {
                if !crate::model::is_account_id(a) {
                    return Err(bad(format!("account `{a}` is not a 12-digit account ID")));
                }
                (Level::Account(a.clone()), format!("account {a}"))
            } else {
                let ou = e.ou.clone().unwrap_or_default();
                if !ou.starts_with("ou-") {
                    return Err(bad(format!("ou `{ou}` is not an OU ID (ou-…)")));
                }
                (Level::Ou(ou.clone()), format!("ou {ou}"))
            };
            let reason = e.reason.trim().to_string();
            out.push((level, Exemption { by, reason, until }));
        }
        Ok(Exemptions { entries: out })
    }

    /// Whether `user` of `account` (in the OUs `ous`, its own and those
    /// above it, when known) is exempt at `now`: the user's tag first, then
    /// the entries in order. An exemption in force wins over an expired one.
    pub fn of(
        &self,
        policy: &Policy,
        (account, ous): (&str, &[String]),
        user: &User,
        now: OffsetDateTime,
    ) -> Result<Exempt, ExemptError> {
        let mut found = Vec::new();
        if let Some(value) = user.tags.get(&policy.exempt_tag) {
            found.extend(tag(&user.user_name, &policy.exempt_tag, value)?);
        }
        // The policy's groups and globs (audit's), without reason or expiry.
        if let Some(why) = policy.exempts(user, now)
            && !why.starts_with("tag ")
        {
            found.push(Exemption {
                reason: "the policy exempts it".into(),
                by: why,
                until: None,
            });
        }
        let full = format!("{}{}", user.path, user.user_name);
        for (level, e) in &self.entries {
            let hit = match level {
                Level::User(m) => m.is_match(&user.user_name) || m.is_match(&full),
                Level::Group(g) => user.groups.contains(g),
                Level::Account(a) => a == account,
                Level::Ou(o) => ous.contains(o),
            };
            if hit {
                found.push(e.clone());
            }
        }
        let in_force = |e: &Exemption| e.until.is_none_or(|d| now.date() <= d);
        if let Some(e) = found.iter().find(|e| in_force(e)) {
            return Ok(Exempt::Yes(e.clone()));
        }
        Ok(found.into_iter().next().map_or(Exempt::No, Exempt::Expired))
    }

    /// Whether any entry is at the OU level (then the planner asks
    /// Organizations which OU each account is in).
    pub fn names_ous(&self) -> bool {
        self.entries.iter().any(|(l, _)| matches!(l, Level::Ou(_)))
    }
}

/// A tag value as [`exempt_tag_value`] reads it, as an exemption; one
/// that cannot be read is an error naming the user and the tag.
fn tag(user: &str, name: &str, value: &str) -> Result<Option<Exemption>, ExemptError> {
    let read = exempt_tag_value(value).map_err(|why| ExemptError::Tag {
        user: user.to_string(),
        tag: name.to_string(),
        value: value.to_string(),
        why,
    })?;
    Ok(read.map(|t| Exemption {
        by: format!("tag {name}"),
        reason: t.reason.unwrap_or_else(|| "tagged true".into()),
        until: t.until,
    }))
}

fn date(text: &str) -> Result<Date, String> {
    parse_date(text)
}

/// The first moment an exemption no longer holds. Pure.
pub fn lapses_at(until: Date) -> OffsetDateTime {
    until
        .next_day()
        .unwrap_or(until)
        .with_time(Time::MIDNIGHT)
        .assume_utc()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::macros::{date, datetime};

    use super::*;

    fn user(name: &str, tags: &[(&str, &str)], groups: &[&str]) -> User {
        User {
            user_name: name.into(),
            user_arn: format!("arn:aws:iam::111111111111:user/{name}"),
            path: "/".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    const NOW: OffsetDateTime = datetime!(2027-03-31 23:00 UTC);

    #[test]
    fn a_tag_exempts_until_its_last_day_then_the_lapse_is_reported() {
        let policy = Policy::default();
        let none = Exemptions::default();
        let u = user(
            "vendor #1",
            &[("rekey:exempt", "until=2027-03-31; reason=vendor contract")],
            &[],
        );
        let at = |now| none.of(&policy, ("111111111111", &[]), &u, now).unwrap();
        let e = Exemption {
            by: "tag rekey:exempt".into(),
            reason: "vendor contract".into(),
            until: Some(date!(2027 - 03 - 31)),
        };
        assert_eq!(at(NOW), Exempt::Yes(e.clone()));
        assert_eq!(at(lapses_at(date!(2027 - 03 - 31))), Exempt::Expired(e));
        let plain = user("p", &[("rekey:exempt", "TRUE")], &[]);
        assert!(matches!(
            none.of(&policy, ("1", &[]), &plain, NOW).unwrap(),
            Exempt::Yes(_)
        ));
    }

    #[test]
    fn a_malformed_tag_names_the_user_and_the_tag() {
        let policy = Policy::default();
        for (value, why) in [
            ("until=2027-13-01;reason=x", "is not a date"),
            ("reason=", "no reason"),
            ("until=2027-01-01", "no reason"),
            ("yes please", "is not key=value"),
            ("reason=x;owner=bob", "unknown key `owner`"),
        ] {
            let u = user("bob", &[("rekey:exempt", value)], &[]);
            let err = (Exemptions::default().of(&policy, ("1", &[]), &u, NOW)).unwrap_err();
            let said = err.to_string();
            assert!(
                said.starts_with("user bob: tag rekey:exempt holds"),
                "{said}"
            );
            assert!(said.contains(why), "{value}: {said}");
        }
    }

    #[test]
    fn entries_exempt_by_user_group_account_and_ou_and_bad_ones_are_named() {
        let entry = |f: fn(&mut ExemptEntry)| {
            let mut e = ExemptEntry {
                reason: "r".into(),
                ..ExemptEntry::default()
            };
            f(&mut e);
            e
        };
        let all = Exemptions::new(&[
            entry(|e| e.user = Some("legacy-*".into())),
            entry(|e| e.group = Some("break-glass".into())),
            entry(|e| e.account = Some("222222222222".into())),
            entry(|e| {
                e.ou = Some("ou-ab12-sandbox".into());
                e.until = Some("2027-01-01".into());
            }),
        ])
        .unwrap();
        assert!(all.names_ous());
        let policy = Policy::default();
        let of = |account, ou: Option<&str>, u: &User| {
            let ous: Vec<String> = ou.iter().map(|o| o.to_string()).collect();
            all.of(&policy, (account, &ous), u, NOW).unwrap()
        };
        let by = |e: Exempt| match e {
            Exempt::Yes(e) => format!("yes {}", e.by),
            Exempt::Expired(e) => format!("expired {}", e.by),
            Exempt::No => "no".into(),
        };
        let plain = user("app", &[], &[]);
        assert_eq!(
            by(of("1", None, &user("legacy-ftp", &[], &[]))),
            "yes user matches legacy-*"
        );
        assert_eq!(
            by(of("1", None, &user("x", &[], &["break-glass"]))),
            "yes group break-glass"
        );
        assert_eq!(
            by(of("222222222222", None, &plain)),
            "yes account 222222222222"
        );
        assert_eq!(
            by(of("1", Some("ou-ab12-sandbox"), &plain)),
            "expired ou ou-ab12-sandbox"
        );
        assert_eq!(by(of("1", Some("ou-other"), &plain)), "no");
        // An account in an OU below the one named is in it too.
        let nested = ["ou-ab12-child".to_string(), "ou-ab12-sandbox".to_string()];
        let below = all.of(&policy, ("1", &nested), &plain, NOW).unwrap();
        assert_eq!(by(below), "expired ou ou-ab12-sandbox");
        for (bad, why) in [
            (entry(|_| {}), "exactly one of"),
            (
                entry(|e| {
                    e.user = Some("a".into());
                    e.group = Some("b".into())
                }),
                "exactly one of",
            ),
            (
                ExemptEntry {
                    account: Some("222222222222".into()),
                    ..ExemptEntry::default()
                },
                "give a reason",
            ),
            (entry(|e| e.account = Some("12".into())), "12-digit"),
            (entry(|e| e.ou = Some("r-root".into())), "not an OU ID"),
            (
                entry(|e| {
                    e.group = Some("g".into());
                    e.until = Some("soon".into())
                }),
                "until: `soon` is not a date",
            ),
        ] {
            let err = Exemptions::new(&[entry(|e| e.group = Some("ok".into())), bad]).unwrap_err();
            let said = err.to_string();
            assert!(said.starts_with("[[enforce.exempt]] entry 2: "), "{said}");
            assert!(said.contains(why), "{said}");
        }
    }
}
