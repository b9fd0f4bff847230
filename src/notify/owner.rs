//! Who owns a key: the one address its digest goes to. Pure.
//!
//! In this order:
//! 1. the user's tag `owner` or `email` (the tag keys are configurable),
//!    when it holds one address;
//! 2. the first `[[owner]]` entry of rekey.toml whose user glob (and
//!    account, when it names one) matches;
//! 3. the account's email, as Organizations has it;
//! 4. `[notify] default_email`.
//!
//! A value that is not one address (a list, a name, markup) is passed
//! over and said: a digest goes to one owner, never to a list of all.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

/// The tag keys read unless `[notify] owner_tags` says otherwise.
pub const DEFAULT_OWNER_TAGS: &[&str] = &["owner", "email"];

/// One `[[owner]]` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerEntry {
    /// A glob matched against the user name and `path + name`.
    pub users: Option<String>,
    /// The account the entry is for; every account without it.
    pub account: Option<String>,
    pub email: String,
}

/// An `[[owner]]` entry that cannot be used, by its number (from 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[[owner]] entry {number}: {why}")]
pub struct BadOwnerEntry {
    pub number: usize,
    pub why: String,
}

/// How owners are found.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    pub tags: Vec<String>,
    entries: Vec<(OwnerEntry, Option<GlobMatcher>)>,
    pub default: Option<String>,
}

/// Where an owner was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum OwnerSource {
    Tag { key: String },
    Entry { number: usize },
    AccountEmail,
    Default,
}

/// A key's owner, and a word on each value passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub owner: Option<(String, OwnerSource)>,
    pub passed_over: Vec<String>,
}

impl Owners {
    /// Checks `entries` (each email one address, each glob valid, each
    /// account an account ID) and the default address.
    pub fn new(
        tags: Vec<String>,
        entries: &[OwnerEntry],
        default: Option<String>,
    ) -> Result<Owners, BadOwnerEntry> {
        let mut checked = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let bad = |why: String| BadOwnerEntry { number: i + 1, why };
            if single_address(&e.email).is_none() {
                return Err(bad(format!("email `{}` is not one email address", e.email)));
            }
            if let Some(a) = &e.account
                && !crate::model::is_account_id(a)
            {
                return Err(bad(format!("account `{a}` is not a 12-digit account ID")));
            }
            if e.users.is_none() && e.account.is_none() {
                return Err(bad("name `users` (a glob), `account`, or both".into()));
            }
            let glob = match &e.users {
                Some(g) => Some(
                    Glob::new(g)
                        .map_err(|err| bad(format!("users `{g}`: {err}")))?
                        .compile_matcher(),
                ),
                None => None,
            };
            checked.push((e.clone(), glob));
        }
        Ok(Owners {
            tags,
            entries: checked,
            default,
        })
    }

    /// The owner of user `user_name` (at `path`, with `tags`) in account
    /// `account_id`, whose email is `account_email` if known.
    pub fn find(
        &self,
        account_id: &str,
        (user_name, path): (&str, &str),
        tags: &BTreeMap<String, String>,
        account_email: Option<&str>,
    ) -> Found {
        let mut passed_over = Vec::new();
        for key in &self.tags {
            if let Some(value) = tags.get(key) {
                match single_address(value) {
                    Some(a) => {
                        return Found {
                            owner: Some((a, OwnerSource::Tag { key: key.clone() })),
                            passed_over,
                        };
                    }
                    None => passed_over.push(format!(
                        "user {user_name} in account {account_id}: tag `{key}` holds no single email address"
                    )),
                }
            }
        }
        let full = format!("{path}{user_name}");
        for (i, (e, glob)) in self.entries.iter().enumerate() {
            let account_ok = e.account.as_deref().is_none_or(|a| a == account_id);
            let user_ok = glob
                .as_ref()
                .is_none_or(|g| g.is_match(user_name) || g.is_match(&full));
            if account_ok && user_ok {
                let owner = single_address(&e.email).expect("checked when read");
                return Found {
                    owner: Some((owner, OwnerSource::Entry { number: i + 1 })),
                    passed_over,
                };
            }
        }
        if let Some(email) = account_email.and_then(single_address) {
            return Found {
                owner: Some((email, OwnerSource::AccountEmail)),
                passed_over,
            };
        }
        Found {
            owner: self
                .default
                .as_deref()
                .and_then(single_address)
                .map(|d| (d, OwnerSource::Default)),
            passed_over,
        }
    }
}

/// `value` as one email address (trimmed), if it is one: a local part and
/// a dotted domain around one `@`, nothing that would make a list, a
/// display name or markup of it.
pub fn single_address(value: &str) -> Option<String> {
    let v = value.trim();
    let (local, domain) = v.split_once('@')?;
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || ",;<>()[]\"\\:'`@".contains(c);
    let ok = !local.is_empty()
        && local.len() <= 64
        && v.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !local.chars().any(forbidden)
        && !domain.chars().any(forbidden);
    ok.then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter()
            .map(|(k, x)| (k.to_string(), x.to_string()))
            .collect()
    }

    fn owners() -> Owners {
        let entries = [
            OwnerEntry {
                users: Some("svc-*".into()),
                account: Some("222222222222".into()),
                email: "team-b@example.com".into(),
            },
            OwnerEntry {
                users: Some("/vendors/*".into()),
                account: None,
                email: "vendors@example.com".into(),
            },
        ];
        let default = Some("security@example.com".into());
        Owners::new(vec!["owner".into(), "email".into()], &entries, default).unwrap()
    }

    #[test]
    fn the_owner_comes_from_the_tag_then_the_entries_then_the_account_then_the_default() {
        let o = owners();
        let acct = "222222222222";
        let find = |user: (&str, &str), t: &[(&str, &str)], email: Option<&str>| {
            o.find(acct, user, &tags(t), email).owner.unwrap()
        };
        let tagged = find(
            ("svc-b", "/"),
            &[("email", "b@example.com")],
            Some("root@x.io"),
        );
        assert_eq!(tagged.0, "b@example.com");
        assert_eq!(
            tagged.1,
            OwnerSource::Tag {
                key: "email".into()
            }
        );
        // `owner` is read before `email`.
        let both = [("email", "e@example.com"), ("owner", "o@example.com")];
        assert_eq!(find(("svc-b", "/"), &both, None).0, "o@example.com");
        let mapped = find(("svc-b", "/"), &[], Some("root@x.io"));
        assert_eq!(
            mapped,
            (
                "team-b@example.com".into(),
                OwnerSource::Entry { number: 1 }
            )
        );
        // An entry of another account does not match; a path glob does.
        let other = o.find(
            "333333333333",
            ("svc-b", "/"),
            &tags(&[]),
            Some("root@x.io"),
        );
        assert_eq!(other.owner.unwrap().1, OwnerSource::AccountEmail);
        let vendor = find(("acme", "/vendors/"), &[], None);
        assert_eq!(vendor.1, OwnerSource::Entry { number: 2 });
        let none = o
            .find(acct, ("human", "/"), &tags(&[]), None)
            .owner
            .unwrap();
        assert_eq!(none, ("security@example.com".into(), OwnerSource::Default));
    }

    #[test]
    fn a_tag_that_is_not_one_address_is_passed_over_and_said() {
        let o = owners();
        for bad in [
            "a@example.com, b@example.com",
            "a@example.com;b@example.com",
            "Alice <a@example.com>",
            "<script>alert(1)</script>@example.com",
            "alice",
            "a@@example.com",
            "a@example",
            "",
        ] {
            let found = o.find("333333333333", ("u", "/"), &tags(&[("owner", bad)]), None);
            assert_eq!(found.owner.unwrap().1, OwnerSource::Default, "{bad}");
            assert_eq!(found.passed_over.len(), 1, "{bad}");
            assert!(found.passed_over[0].contains("tag `owner`"), "{bad}");
        }
        assert_eq!(
            single_address(" a.b+c@ex-ample.co.uk "),
            Some("a.b+c@ex-ample.co.uk".into())
        );
    }

    #[test]
    fn a_bad_entry_is_named_by_its_number() {
        let entry = |users: Option<&str>, account: Option<&str>, email: &str| OwnerEntry {
            users: users.map(Into::into),
            account: account.map(Into::into),
            email: email.into(),
        };
        let cases = [
            (
                entry(Some("svc-*"), None, "a@x.io, b@x.io"),
                "not one email address",
            ),
            (
                entry(Some("svc-*"), Some("12"), "a@x.io"),
                "not a 12-digit account ID",
            ),
            (entry(None, None, "a@x.io"), "name `users`"),
            (entry(Some("svc-[*"), None, "a@x.io"), "users `svc-[*`"),
        ];
        for (e, want) in cases {
            let good = entry(Some("x"), None, "a@x.io");
            let err = Owners::new(vec![], &[good, e], None).unwrap_err();
            assert_eq!(err.number, 2);
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
