//! Pure judgement: key × policy × now → verdict, and the compliance views
//! people already know (AWS Config `access-keys-rotated`, Trusted Advisor's
//! "IAM Access Key Rotation"). Nothing here talks to AWS or reads a clock.

use globset::{Glob, GlobSet, GlobSetBuilder};
use time::{Date, Duration, OffsetDateTime, format_description::well_known::Rfc3339};

use crate::error::{InputError, Origin};
use crate::model::{Key, KeyStatus, User, UserKeys};
use crate::names::named_enum;

/// CIS AWS 1.14 and AWS Config's default `maxAccessKeyAge`.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 90;
/// CIS AWS 1.12 (credentials unused for 45 days or more).
pub const DEFAULT_UNUSED_DAYS: i64 = 45;
pub const DEFAULT_EXEMPT_TAG: &str = "rekey:exempt";

/// What counts as non-compliant, and who is exempt.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_age_days: i64,
    pub unused_days: i64,
    /// A user tagged `<exempt_tag>=true` is exempt.
    pub exempt_tag: String,
    pub exempt_groups: Vec<String>,
    /// Globs matched against the user name and against `path + name`.
    pub exempt_users: Vec<String>,
    exempt_set: GlobSet,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(
            DEFAULT_MAX_AGE_DAYS,
            DEFAULT_UNUSED_DAYS,
            DEFAULT_EXEMPT_TAG.into(),
            vec![],
            vec![],
        )
        .expect("the default policy is valid")
    }
}

impl Policy {
    pub fn new(
        max_age_days: i64,
        unused_days: i64,
        exempt_tag: String,
        exempt_groups: Vec<String>,
        exempt_users: Vec<String>,
    ) -> Result<Self, InputError> {
        // Values are checked where they are read, each named there; this
        // names a caller's argument.
        if max_age_days < 1 {
            return Err(InputError::BadDuration {
                origin: Origin::Flag("max_age_days".into()),
                value: max_age_days.to_string(),
            });
        }
        if unused_days < 1 {
            return Err(InputError::BadDuration {
                origin: Origin::Flag("unused_days".into()),
                value: unused_days.to_string(),
            });
        }
        let mut builder = GlobSetBuilder::new();
        for pattern in &exempt_users {
            let glob = Glob::new(pattern).map_err(|source| InputError::BadGlob {
                pattern: pattern.clone(),
                source,
            })?;
            builder.add(glob);
        }
        let exempt_set = builder.build().map_err(|source| InputError::BadGlob {
            pattern: exempt_users.join(", "),
            source,
        })?;
        Ok(Policy {
            max_age_days,
            unused_days,
            exempt_tag,
            exempt_groups,
            exempt_users,
            exempt_set,
        })
    }

    /// Why a user is exempt at `now`, if they are.
    pub fn exemption(&self, user: &UserKeys, now: OffsetDateTime) -> Option<String> {
        if user.is_root {
            // Root keys are never exempt: CIS 1.4 wants none at all.
            return None;
        }
        self.exempts(&user.user, now)
    }

    /// Why IAM user `u` (never the root user) is exempt at `now`, if they
    /// are: its tag (`true`, or a reason with a last day not past, see
    /// [`exempt_tag_value`]; a tag that cannot be read exempts no one), a
    /// group, or a name pattern.
    pub fn exempts(&self, u: &User, now: OffsetDateTime) -> Option<String> {
        if let Some(value) = u.tags.get(&self.exempt_tag) {
            match exempt_tag_value(value) {
                Ok(Some(TagExemption { reason: None, .. })) => {
                    return Some(format!("tag {}={}", self.exempt_tag, value));
                }
                Ok(Some(TagExemption {
                    reason: Some(reason),
                    until,
                })) if until.is_none_or(|d| now.date() <= d) => {
                    let until = until.map(|d| format!(", until {d}")).unwrap_or_default();
                    return Some(format!("tag {}: {reason}{until}", self.exempt_tag));
                }
                _ => {}
            }
        }
        if let Some(group) = u.groups.iter().find(|g| self.exempt_groups.contains(g)) {
            return Some(format!("group {group}"));
        }
        let full = format!("{}{}", u.path, u.user_name);
        let hits = self.exempt_set.matches(&u.user_name);
        let hits = if hits.is_empty() {
            self.exempt_set.matches(&full)
        } else {
            hits
        };
        hits.first()
            .map(|&i| format!("user matches {}", self.exempt_users[i]))
    }
}

/// What an exempt tag's value says: `true` (no reason, no last day), or
/// `reason=TEXT` with an optional `until=YYYY-MM-DD`, split by `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagExemption {
    /// None for `true`.
    pub reason: Option<String>,
    /// The last day it holds.
    pub until: Option<Date>,
}

/// Reads an exempt tag's value (issue 17): `true`; `false` or empty (no
/// exemption); or `until=2027-03-31;reason=vendor contract`. Anything else
/// is an error saying what is wrong (the caller names the user and tag).
/// Pure.
pub fn exempt_tag_value(value: &str) -> Result<Option<TagExemption>, String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        return Ok(Some(TagExemption {
            reason: None,
            until: None,
        }));
    }
    if v.is_empty() || v.eq_ignore_ascii_case("false") {
        return Ok(None);
    }
    let (mut reason, mut until) = (None, None);
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, val)) = part.split_once('=') else {
            return Err(format!("`{part}` is not key=value"));
        };
        match k.trim() {
            "reason" => reason = Some(val.trim().to_string()),
            "until" => until = Some(parse_date(val.trim())?),
            other => return Err(format!("unknown key `{other}`")),
        }
    }
    let reason = reason.filter(|r| !r.is_empty()).ok_or("no reason")?;
    Ok(Some(TagExemption {
        reason: Some(reason),
        until,
    }))
}

/// A day written `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &fmt).map_err(|_| format!("`{text}` is not a date (YYYY-MM-DD)"))
}

named_enum! {
    /// One reason a key is non-compliant. The names are the JSON names.
    pub enum Finding as "finding" {
        TooOld = "too_old",
        Unused = "unused",
        TwoActiveKeys = "two_active_keys",
        RootKey = "root_key",
    }
}

named_enum! {
    /// How a key stands against the policy.
    pub enum Verdict as "verdict" {
        Compliant = "compliant",
        NonCompliant = "non_compliant",
        Exempt = "exempt",
    }
}

/// The judgement of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// What would be wrong; kept for exempt keys too, so a report can say
    /// what the exemption hides.
    pub findings: Vec<Finding>,
    pub exempt_reason: Option<String>,
    pub age_days: Option<i64>,
    pub unused_days: Option<i64>,
}

/// Whole days from `from` to `now` (never negative: a key "created in the
/// future" relative to `--as-of` in the past is zero days old).
pub fn days_between(from: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (now - from).whole_days().max(0)
}

/// Whether `key` existed at `as_of`. A key created later (judging a past
/// date) is not judged at all: it was not there to be old or unused
/// (issue 10 #2). A key of unknown creation date is kept.
pub fn existed_at(key: &Key, as_of: OffsetDateTime) -> bool {
    key.created.is_none_or(|c| c <= as_of)
}

/// Judges every key of one user.
pub fn judge_user(user: &UserKeys, policy: &Policy, now: OffsetDateTime) -> Vec<Judgement> {
    let active = user
        .keys
        .iter()
        .filter(|k| k.status == KeyStatus::Active)
        .count();
    let exemption = policy.exemption(user, now);
    user.keys
        .iter()
        .map(|key| judge_key(key, user.is_root, active, exemption.clone(), policy, now))
        .collect()
}

fn judge_key(
    key: &Key,
    is_root: bool,
    active_keys_of_user: usize,
    exemption: Option<String>,
    policy: &Policy,
    now: OffsetDateTime,
) -> Judgement {
    let age_days = key.created.map(|c| days_between(c, now));
    // A never-used key counts as unused from its creation.
    let unused_days = key
        .last_used
        .as_ref()
        .map(|u| u.date)
        .or(key.created)
        .map(|d| days_between(d, now));
    let mut findings = Vec::new();
    if is_root {
        findings.push(Finding::RootKey);
    }
    if key.status == KeyStatus::Active {
        if age_days.is_some_and(|d| d > policy.max_age_days) {
            findings.push(Finding::TooOld);
        }
        if unused_days.is_some_and(|d| d >= policy.unused_days) {
            findings.push(Finding::Unused);
        }
        if active_keys_of_user > 1 && !is_root {
            findings.push(Finding::TwoActiveKeys);
        }
    }
    findings.sort();
    let verdict = match (&exemption, findings.is_empty()) {
        (Some(_), _) => Verdict::Exempt,
        (None, true) => Verdict::Compliant,
        (None, false) => Verdict::NonCompliant,
    };
    Judgement {
        verdict,
        findings,
        exempt_reason: exemption,
        age_days,
        unused_days,
    }
}

/// The keys that make a user NON_COMPLIANT under AWS Config
/// `access-keys-rotated`: *active* keys older than `maxAccessKeyAge` days,
/// with their age; inactive keys do not count. The managed rule knows
/// nothing of rekey's exemptions.
pub fn config_stale_keys(keys: &[Key], max_age_days: i64, now: OffsetDateTime) -> Vec<(&Key, i64)> {
    keys.iter()
        .filter(|k| k.status == KeyStatus::Active)
        .filter_map(|k| Some((k, days_between(k.created?, now))))
        .filter(|(_, age)| *age > max_age_days)
        .collect()
}

named_enum! {
    /// An AWS Config evaluation result, named as Config spells it.
    pub enum ConfigCompliance as "Config compliance type" {
        Compliant = "COMPLIANT",
        NonCompliant = "NON_COMPLIANT",
    }
}

/// The user's `access-keys-rotated` result: NON_COMPLIANT when any key is
/// stale ([`config_stale_keys`]).
pub fn config_compliance(keys: &[Key], max_age_days: i64, now: OffsetDateTime) -> ConfigCompliance {
    if config_stale_keys(keys, max_age_days, now).is_empty() {
        ConfigCompliance::Compliant
    } else {
        ConfigCompliance::NonCompliant
    }
}

named_enum! {
    /// A key's status in Trusted Advisor's "IAM Access Key Rotation" check.
    pub enum AdvisorStatus as "Trusted Advisor status" {
        Green = "green",
        Yellow = "yellow",
        Red = "red",
    }
}

impl AdvisorStatus {
    /// The check's reason for the status, in its own words.
    pub fn reason(self) -> &'static str {
        match self {
            AdvisorStatus::Green => "Key has been rotated in the last 90 days",
            AdvisorStatus::Yellow => "Key has not been rotated in the last 90 days",
            AdvisorStatus::Red => "Key has not been rotated in the last 2 years",
        }
    }
}

/// Trusted Advisor's "IAM Access Key Rotation" status of an active key:
/// green (rotated within 90 days), yellow (90 days to 2 years), red (over 2
/// years). Inactive keys are not part of the check (`None`).
pub fn trusted_advisor_status(key: &Key, now: OffsetDateTime) -> Option<AdvisorStatus> {
    if key.status != KeyStatus::Active {
        return None;
    }
    let days = key.created.map(|c| days_between(c, now))?;
    Some(if days > 730 {
        AdvisorStatus::Red
    } else if days > 90 {
        AdvisorStatus::Yellow
    } else {
        AdvisorStatus::Green
    })
}

/// Parses a number of days: `90`, `90d`, `12w`, written at `origin`
/// (`--max-age`, `rekey.toml [policy] max_age`), which a bad value's error
/// names.
pub fn parse_days(origin: &Origin, value: &str) -> Result<i64, InputError> {
    let bad = || InputError::BadDuration {
        origin: origin.clone(),
        value: value.to_string(),
    };
    let v = value.trim();
    let (digits, factor) = match v.as_bytes().last() {
        Some(b'd') => (&v[..v.len() - 1], 1),
        Some(b'w') => (&v[..v.len() - 1], 7),
        _ => (v, 1),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    if !(1..=36_500).contains(&n) {
        return Err(bad());
    }
    Ok(n * factor)
}

/// Parses the moment keys are judged at, written at `origin` (`--as-of`):
/// `YYYY-MM-DD` (midnight UTC), an RFC 3339 instant, or `+Nd` / `-Nd`
/// relative to `now`.
pub fn parse_as_of(
    origin: &Origin,
    value: &str,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, InputError> {
    let bad = || InputError::BadAsOf {
        origin: origin.clone(),
        value: value.to_string(),
    };
    let v = value.trim();
    if let Some(rest) = v.strip_prefix('+').or_else(|| v.strip_prefix('-')) {
        // `+0d` is "now", as written in the README (issue 10 #2).
        let days = match rest {
            "0" | "0d" | "0w" => 0,
            _ => parse_days(origin, rest).map_err(|_| bad())?,
        };
        let delta = Duration::days(days);
        return Ok(if v.starts_with('+') {
            now + delta
        } else {
            now - delta
        });
    }
    if let Ok(t) = OffsetDateTime::parse(v, &Rfc3339) {
        return Ok(t);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(v, &fmt)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag() -> Origin {
        Origin::Flag("--max-age".into())
    }
    use crate::model::{LastUsed, User};
    use std::collections::BTreeMap;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-26 12:00 UTC);

    fn key(status: KeyStatus, age: i64, used_ago: Option<i64>) -> Key {
        Key {
            access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
            status,
            created: Some(NOW - Duration::days(age)),
            last_used: used_ago.map(|d| LastUsed {
                date: NOW - Duration::days(d),
                service: Some("s3".into()),
                region: Some("us-east-1".into()),
            }),
        }
    }

    fn user(name: &str, keys: Vec<Key>) -> UserKeys {
        UserKeys {
            user: User {
                user_name: name.into(),
                user_arn: format!("arn:aws:iam::123456789012:user/{name}"),
                path: "/".into(),
                tags: BTreeMap::new(),
                groups: vec![],
            },
            is_root: false,
            keys,
        }
    }

    #[test]
    fn age_is_strictly_over_max_age() {
        let p = Policy::default();
        let j = judge_user(
            &user("a", vec![key(KeyStatus::Active, 90, Some(1))]),
            &p,
            NOW,
        );
        assert_eq!(j[0].verdict, Verdict::Compliant);
        let j = judge_user(
            &user("a", vec![key(KeyStatus::Active, 91, Some(1))]),
            &p,
            NOW,
        );
        assert_eq!(j[0].findings, vec![Finding::TooOld]);
    }

    #[test]
    fn never_used_key_counts_from_creation() {
        let p = Policy::default();
        let j = judge_user(&user("a", vec![key(KeyStatus::Active, 50, None)]), &p, NOW);
        assert_eq!(j[0].findings, vec![Finding::Unused]);
        let j = judge_user(&user("a", vec![key(KeyStatus::Active, 10, None)]), &p, NOW);
        assert!(j[0].findings.is_empty());
    }

    #[test]
    fn inactive_keys_have_no_age_findings() {
        let p = Policy::default();
        let j = judge_user(
            &user("a", vec![key(KeyStatus::Inactive, 400, None)]),
            &p,
            NOW,
        );
        assert_eq!(j[0].verdict, Verdict::Compliant);
    }

    #[test]
    fn two_active_keys_flag_both() {
        let p = Policy::default();
        let u = user(
            "a",
            vec![
                key(KeyStatus::Active, 1, Some(0)),
                key(KeyStatus::Active, 2, Some(0)),
            ],
        );
        let j = judge_user(&u, &p, NOW);
        assert!(j.iter().all(|j| j.findings == vec![Finding::TwoActiveKeys]));
    }

    #[test]
    fn exemptions_by_tag_group_and_glob() {
        let p = Policy::new(
            90,
            45,
            "rekey:exempt".into(),
            vec!["break-glass".into()],
            vec!["svc-*".into(), "/legacy/*".into()],
        )
        .unwrap();
        let old = || vec![key(KeyStatus::Active, 400, Some(1))];
        let mut tagged = user("alice", old());
        tagged
            .user
            .tags
            .insert("rekey:exempt".into(), "TRUE".into());
        let mut grouped = user("bob", old());
        grouped.user.groups.push("break-glass".into());
        let named = user("svc-ci", old());
        let mut pathed = user("carol", old());
        pathed.user.path = "/legacy/".into();
        for u in [&tagged, &grouped, &named, &pathed] {
            let j = &judge_user(u, &p, NOW)[0];
            assert_eq!(j.verdict, Verdict::Exempt, "{}", u.user.user_name);
            assert_eq!(j.findings, vec![Finding::TooOld]);
        }
        assert_eq!(
            judge_user(&user("dave", old()), &p, NOW)[0].verdict,
            Verdict::NonCompliant
        );
        let mut not_true = user("erin", old());
        not_true
            .user
            .tags
            .insert("rekey:exempt".into(), "false".into());
        assert_eq!(
            judge_user(&not_true, &p, NOW)[0].verdict,
            Verdict::NonCompliant
        );
        // A reason with a last day (issue 17): exempt through that day,
        // not after it; a value that cannot be read exempts no one.
        let day = NOW.date();
        let with = |value: String| {
            let mut u = user("frank", old());
            u.user.tags.insert("rekey:exempt".into(), value);
            judge_user(&u, &p, NOW)[0].clone()
        };
        let until = with(format!("until={day}; reason=vendor contract"));
        assert_eq!(until.verdict, Verdict::Exempt);
        assert_eq!(
            until.exempt_reason.as_deref(),
            Some(format!("tag rekey:exempt: vendor contract, until {day}").as_str())
        );
        let past = day.previous_day().unwrap();
        assert_eq!(
            with(format!("until={past};reason=vendor contract")).verdict,
            Verdict::NonCompliant
        );
        assert_eq!(with("reason".into()).verdict, Verdict::NonCompliant);
        assert_eq!(
            exempt_tag_value("until=2027-02-30;reason=x"),
            Err("`2027-02-30` is not a date (YYYY-MM-DD)".to_string())
        );
    }

    #[test]
    fn config_view_ignores_inactive_keys() {
        let u = user(
            "a",
            vec![
                key(KeyStatus::Inactive, 400, None),
                key(KeyStatus::Active, 5, None),
            ],
        );
        assert_eq!(
            config_compliance(&u.keys, 90, NOW),
            ConfigCompliance::Compliant
        );
        let u = user("a", vec![key(KeyStatus::Active, 91, None)]);
        assert_eq!(
            config_compliance(&u.keys, 90, NOW),
            ConfigCompliance::NonCompliant
        );
    }

    #[test]
    fn trusted_advisor_thresholds() {
        let s = |age| {
            trusted_advisor_status(&key(KeyStatus::Active, age, None), NOW)
                .unwrap()
                .as_str()
        };
        assert_eq!(s(90), "green");
        assert_eq!(s(91), "yellow");
        assert_eq!(s(730), "yellow");
        assert_eq!(s(731), "red");
        assert!(trusted_advisor_status(&key(KeyStatus::Inactive, 800, None), NOW).is_none());
    }

    #[test]
    fn a_key_made_after_the_as_of_moment_did_not_exist_then() {
        let made_10_days_ago = key(KeyStatus::Active, 10, None);
        assert!(existed_at(&made_10_days_ago, NOW));
        assert!(existed_at(&made_10_days_ago, NOW - Duration::days(10)));
        assert!(!existed_at(&made_10_days_ago, NOW - Duration::days(30)));
        let unknown = Key {
            created: None,
            ..made_10_days_ago
        };
        assert!(existed_at(&unknown, NOW - Duration::days(30)));
    }

    #[test]
    fn durations_and_as_of_parse_or_say_why() {
        assert_eq!(parse_days(&flag(), "90d").unwrap(), 90);
        assert_eq!(parse_days(&flag(), "2w").unwrap(), 14);
        assert_eq!(parse_days(&flag(), "30").unwrap(), 30);
        for bad in ["", "0", "-5", "abc", "9x", "d"] {
            assert!(parse_days(&flag(), bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_as_of(&flag(), "+30d", NOW).unwrap(),
            NOW + Duration::days(30)
        );
        assert_eq!(
            parse_as_of(&flag(), "-1d", NOW).unwrap(),
            NOW - Duration::days(1)
        );
        assert_eq!(parse_as_of(&flag(), "+0d", NOW).unwrap(), NOW);
        assert_eq!(parse_as_of(&flag(), "-0", NOW).unwrap(), NOW);
        assert_eq!(
            parse_as_of(&flag(), "2027-01-01", NOW).unwrap(),
            datetime!(2027-01-01 0:00 UTC)
        );
        assert!(parse_as_of(&flag(), "2027-13-01", NOW).is_err());
        assert!(parse_as_of(&flag(), "tomorrow", NOW).is_err());
    }
}
