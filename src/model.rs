//! The plain data every stage passes along: accounts, IAM users, access keys
//! and what the audit concluded about each. No AWS types leak past here, so
//! policy, plan and report code is pure and testable without the emulator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::named_enum;
use time::OffsetDateTime;

named_enum! {
    /// Status of an access key, spelled as IAM spells it.
    pub enum KeyStatus as "key status" {
        Active = "Active",
        Inactive = "Inactive",
    }
}

/// When and where a key was last used, as IAM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUsed {
    #[serde(with = "time::serde::rfc3339")]
    pub date: OffsetDateTime,
    pub service: Option<String>,
    pub region: Option<String>,
}

/// An IAM user and the attributes exemptions look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user_name: String,
    pub user_arn: String,
    pub path: String,
    pub tags: BTreeMap<String, String>,
    pub groups: Vec<String>,
}

/// One long-term access key. Root keys come from the credential report (or
/// only as "present" from GetAccountSummary), so their ID and dates may be
/// unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub access_key_id: Option<String>,
    pub status: KeyStatus,
    /// CreateDate from ListAccessKeys (DESIGN.md invariant 6); for root keys
    /// the report's `last_rotated`, the only date AWS gives.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    pub last_used: Option<LastUsed>,
}

/// The root user's pseudo user name, as the credential report spells it.
pub const ROOT_USER: &str = "<root_account>";

/// A user with their keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserKeys {
    pub user: User,
    pub is_root: bool,
    pub keys: Vec<Key>,
}

/// Everything collected from one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub account_id: String,
    /// `aws`, `aws-cn`, `aws-us-gov`…: taken from ARNs, never assumed.
    pub partition: String,
    pub users: Vec<UserKeys>,
    /// Users that exist, including those without keys.
    pub user_count: usize,
}

/// Masks an access key ID for human output: `AKIAIOSFODNN7EXAMPLE` →
/// `AKIA…MPLE` (DESIGN.md invariant 6). Short or odd IDs are masked whole.
pub fn mask_key_id(id: &str) -> String {
    if id.len() < 12 || !id.is_ascii() {
        return "…".to_string();
    }
    format!("{}…{}", &id[..4], &id[id.len() - 4..])
}

/// `text` with every access key ID in it masked as [`mask_key_id`] does:
/// words of capitals and digits starting `AKIA` or `ASIA`, 16 or more long.
/// For free text shown to a person (a journal step's detail).
pub fn mask_key_ids_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let is_key = word.len() >= 16 && (word.starts_with("AKIA") || word.starts_with("ASIA"));
        out.push_str(&if is_key {
            mask_key_id(word)
        } else {
            word.clone()
        });
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The partition of an ARN (`arn:PARTITION:service:…`).
pub fn partition_of(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    match (parts.next(), parts.next()) {
        (Some("arn"), Some(p)) if !p.is_empty() => Some(p),
        _ => None,
    }
}

/// Checks that `s` is a 12-digit AWS account ID.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_prefix_and_suffix_only() {
        assert_eq!(mask_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask_key_id("short"), "…");
    }

    #[test]
    fn key_ids_in_text_are_masked_and_nothing_else() {
        assert_eq!(mask_key_ids_in("AKIATE4J4QTQBSYU6ACE"), "AKIA…6ACE");
        assert_eq!(
            mask_key_ids_in("deleted ASIAXXXXXXXXXXXX1234, kept AKIAIOSFODNN7EXAMPLE."),
            "deleted ASIA…1234, kept AKIA…MPLE."
        );
        let plain = "ssm:/ci/AKIA (completed) AKIASHORT";
        assert_eq!(mask_key_ids_in(plain), plain);
    }

    #[test]
    fn partition_comes_from_the_arn() {
        assert_eq!(
            partition_of("arn:aws-cn:iam::123456789012:user/a"),
            Some("aws-cn")
        );
        assert_eq!(partition_of("nonsense"), None);
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(is_account_id("123456789012"));
        assert!(!is_account_id("12345678901"));
        assert!(!is_account_id("12345678901a"));
    }
}
