use std::collections::BTreeMap;

use time::Duration;
use time::macros::datetime;

use super::*;
use crate::enforce::exempt::ExemptEntry;
use crate::enforce::lifecycle::DeactivateWhy;

const DAY0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn day(n: i64) -> OffsetDateTime {
    DAY0 + Duration::days(n)
}

fn key(id: &str, has_destination: bool) -> GatheredKey {
    GatheredKey {
        key_id: id.into(),
        gone: false,
        facts: KeyFacts {
            status: KeyStatus::Active,
            created: Some(DAY0),
            last_used: None,
            has_destination,
            replaced_at: None,
            deactivated_by_rekey_at: None,
            reactivated_at: None,
        },
        recorded: Recorded::default(),
    }
}

fn user(name: &str, tags: &[(&str, &str)], keys: Vec<GatheredKey>) -> GatheredUser {
    GatheredUser {
        user: User {
            user_name: name.into(),
            user_arn: format!("arn:aws:iam::111111111111:user/{name}"),
            path: "/".into(),
            tags: (tags.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            groups: vec![],
        },
        keys,
        rotation: vec![],
        bound: None,
    }
}

fn account(users: Vec<GatheredUser>) -> GatheredAccount {
    GatheredAccount {
        account_id: "111111111111".into(),
        ous: vec!["ou-ab12-sandbox".into(), "ou-ab12-parent".into()],
        access: Access::Caller,
        users,
    }
}

fn names(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Skip { reason, .. } => format!(
                "skip {}",
                serde_json::to_value(reason).unwrap()["reason"]
                    .as_str()
                    .unwrap()
            ),
            a => a.name().to_string(),
        })
        .collect()
}

#[test]
fn each_key_gets_its_stage_and_exempt_or_malformed_users_are_skipped_with_why() {
    let lifecycle = Lifecycle::default();
    let policy = Policy::default();
    let exemptions = Exemptions::new(&[ExemptEntry {
        ou: Some("ou-ab12-sandbox".into()),
        reason: "sandbox".into(),
        until: Some("2026-03-31".into()),
        ..ExemptEntry::default()
    }])
    .unwrap();
    // The plan of `acct` on day `n`, exemptions judged that day too.
    let plan_on = |acct: &GatheredAccount, n: i64| {
        let rules = Rules {
            lifecycle: &lifecycle,
            policy: &policy,
            exemptions: &exemptions,
            exempt_at: day(n),
        };
        plan_account(acct, &rules, day(n))
    };
    let acct = account(vec![
        user("human", &[], vec![key("AKIAHUMANHUMANHUMAN1", false)]),
        user(
            "vendor",
            &[("rekey:exempt", "until=2026-06-30;reason=vendor contract")],
            vec![key("AKIAVENDORVENDORVEN1", false)],
        ),
        user(
            "typo",
            &[("rekey:exempt", "untill=2026-06-30")],
            vec![key("AKIATYPOTYPOTYPOTYP1", false)],
        ),
    ]);
    // Day 80: the OU exemption holds; everyone is exempt but the typo.
    let (actions, findings) = plan_on(&acct, 80);
    assert_eq!(
        names(&actions),
        ["skip exempt", "skip exempt", "skip refused"]
    );
    let Action::Skip { reason, .. } = &actions[2] else {
        unreachable!()
    };
    assert!(
        format!("{reason:?}").contains("user typo: tag rekey:exempt holds"),
        "{reason:?}"
    );
    assert!(findings.is_empty());
    // Day 95: the OU exemption lapsed (a finding); the human key is warned
    // of its deactivation on day 105, the vendor stays exempt by its tag.
    let (actions, findings) = plan_on(&acct, 95);
    assert_eq!(names(&actions), ["warn", "skip exempt", "skip refused"]);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].detail.contains("ended on 2026-03-31"),
        "{findings:?}"
    );
    let Action::Warn(w) = &actions[0] else {
        unreachable!()
    };
    assert_eq!(w.due, Due::Warn { at: day(105) });
    assert_eq!(
        w.lapsed.as_ref().map(|e| e.reason.as_str()),
        Some("sandbox")
    );
    assert!(w.label.contains("AKIA…MAN1"), "{}", w.label);
    // Warned once: the next run has nothing to say until day 105, then
    // deactivates.
    let mut warned = acct.clone();
    warned.users[0].keys[0].recorded.warned_for = Some(day(105));
    let (actions, _) = plan_on(&warned, 96);
    assert_eq!(names(&actions)[0], "skip warned");
    let (actions, _) = plan_on(&warned, 105);
    let Action::Deactivate(d) = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(
        d.due,
        Due::Deactivate {
            why: DeactivateWhy::Stale { age_days: 105 }
        }
    );
}

#[test]
fn an_inactive_key_whose_deactivation_a_dead_run_left_open_counts_as_rekeys() {
    let mut k = key("AKIAOPENOPENOPENOPE1", false);
    k.facts.status = KeyStatus::Inactive;
    k.recorded.unsettled = Some((
        crate::journal::KeyOp::Deactivate,
        crate::enforce::record::UnsettledAt(day(104)),
    ));
    let f = facts_with_records(&k.facts, &k.recorded);
    assert_eq!(f.deactivated_by_rekey_at, Some(day(104)));
    // Still active: the deactivation did not happen.
    k.facts.status = KeyStatus::Active;
    let f = facts_with_records(&k.facts, &k.recorded);
    assert_eq!(f.deactivated_by_rekey_at, None);
}
