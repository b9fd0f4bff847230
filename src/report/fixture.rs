//! A small hand-built audit for the renderers' tests: two accounts (one
//! failed), keys of every verdict, a root key, an exempt key and a user
//! whose name tries to break Markdown and HTML.

use std::collections::BTreeMap;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::audit::{AccountResult, AccountStatus, AuditReport, Summary, judge};
use crate::inventory::Source;
use crate::model::{Inventory, Key, KeyStatus, LastUsed, ROOT_USER, User, UserKeys};
use crate::policy::{Policy, Verdict};

pub const AS_OF: OffsetDateTime = datetime!(2026-11-26 12:00 UTC);
pub const OK_ACCOUNT: &str = "111111111111";
pub const FAILED_ACCOUNT: &str = "222222222222";
pub const FAILURE: &str = "cannot assume arn:aws:iam::222222222222:role/OrganizationAccountAccessRole: AccessDenied: not authorized to perform sts:AssumeRole";
/// Not a valid IAM name, which is the point: renderers must not trust names.
pub const EVIL: &str = "ev|l<script>alert(\"x\")</script>'";

pub mod ids {
    pub const ALICE: &str = "AKIAALICEOLDKEY00001";
    pub const BOB: &str = "AKIABOBNEWKEY0000002";
    pub const CAROL: &str = "AKIACAROLINACTIVE003";
    pub const LEGACY: &str = "AKIALEGACYEXEMPT0004";
    pub const EVIL: &str = "AKIAEVILUSERKEY00005";
    pub const ALL: [&str; 5] = [ALICE, BOB, CAROL, LEGACY, EVIL];
}

fn key(id: Option<&str>, status: KeyStatus, age: i64, used_ago: i64) -> Key {
    Key {
        access_key_id: id.map(str::to_string),
        status,
        created: Some(AS_OF - Duration::days(age)),
        last_used: Some(LastUsed {
            date: AS_OF - Duration::days(used_ago),
            service: Some("s3".into()),
            region: Some("us-east-1".into()),
        }),
    }
}

fn user(name: &str, keys: Vec<Key>) -> UserKeys {
    UserKeys {
        user: User {
            user_name: name.into(),
            user_arn: format!("arn:aws:iam::{OK_ACCOUNT}:user/{name}"),
            path: "/".into(),
            tags: BTreeMap::new(),
            groups: vec![],
        },
        is_root: false,
        keys,
    }
}

pub fn report() -> AuditReport {
    let mut legacy = user(
        "svc-legacy",
        vec![key(Some(ids::LEGACY), KeyStatus::Active, 800, 2)],
    );
    legacy
        .user
        .tags
        .insert("rekey:exempt".into(), "true".into());
    let mut root = user(ROOT_USER, vec![key(None, KeyStatus::Active, 200, 5)]);
    root.is_root = true;
    root.user.user_arn = format!("arn:aws:iam::{OK_ACCOUNT}:root");
    let inventory = Inventory {
        account_id: OK_ACCOUNT.into(),
        partition: "aws".into(),
        users: vec![
            root,
            user(
                "alice",
                vec![key(Some(ids::ALICE), KeyStatus::Active, 120, 1)],
            ),
            user("bob", vec![key(Some(ids::BOB), KeyStatus::Active, 10, 0)]),
            user(
                "carol",
                vec![key(Some(ids::CAROL), KeyStatus::Inactive, 400, 300)],
            ),
            legacy,
            user(EVIL, vec![key(Some(ids::EVIL), KeyStatus::Active, 100, 3)]),
        ],
        user_count: 7,
    };
    let keys = judge(&inventory, &Policy::default(), AS_OF);
    let count = |v: Verdict| keys.iter().filter(|k| k.verdict == v).count();
    let ok = AccountResult {
        account_id: Some(OK_ACCOUNT.into()),
        name: Some("dev".into()),
        via: "profile dev".into(),
        status: AccountStatus::Ok,
        error: None,
        error_code: None,
        partition: Some("aws".into()),
        max_age_days: 90,
        users: inventory.user_count,
        keys: keys.len(),
        non_compliant_keys: count(Verdict::NonCompliant),
        aws_calls: 12,
        securityhub_error: None,
        securityhub_error_code: None,
    };
    let failed = AccountResult {
        account_id: Some(FAILED_ACCOUNT.into()),
        name: Some("prod".into()),
        via: "role OrganizationAccountAccessRole".into(),
        status: AccountStatus::Error,
        error: Some(FAILURE.into()),
        error_code: Some("AccessDenied".into()),
        partition: None,
        max_age_days: 90,
        users: 0,
        keys: 0,
        non_compliant_keys: 0,
        aws_calls: 1,
        securityhub_error: None,
        securityhub_error_code: None,
    };
    let mut findings = BTreeMap::new();
    for k in keys.iter().filter(|k| k.verdict == Verdict::NonCompliant) {
        for f in &k.findings {
            *findings.entry(f.as_str()).or_default() += 1;
        }
    }
    let summary = Summary {
        accounts: 2,
        accounts_ok: 1,
        accounts_failed: 1,
        securityhub_failed: 0,
        users_with_keys: inventory.users.len(),
        keys: keys.len(),
        active_keys: keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .count(),
        compliant: count(Verdict::Compliant),
        non_compliant: count(Verdict::NonCompliant),
        exempt: count(Verdict::Exempt),
        findings,
        aws_calls: 13,
    };
    AuditReport {
        generated_at: AS_OF + Duration::minutes(5),
        as_of: AS_OF,
        source: Source::Report,
        accounts: vec![ok, failed],
        keys,
        summary,
    }
}

#[test]
fn the_fixture_has_every_verdict() {
    let r = report();
    assert_eq!(
        (
            r.summary.compliant,
            r.summary.non_compliant,
            r.summary.exempt
        ),
        (2, 3, 1)
    );
    assert!(
        r.keys
            .iter()
            .any(|k| k.is_root && k.access_key_id.is_none())
    );
}
