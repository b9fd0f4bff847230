use serde_json::Value;
use time::macros::datetime;

use super::*;
use crate::journal::{AccessSpec, OldKeyAction, StepTarget};
use crate::rotation::Subject;
use crate::rotation::access::Access;

const NOW: OffsetDateTime = datetime!(2026-12-07 12:00 UTC);
const OLD: &str = "AKIAOLDOLDOLDOLD0001";
const OTHER: &str = "AKIAOTHEROTHERO0002";
const ORPHAN: &str = "AKIAORPHANORPHA0003";

fn secret() -> DestinationSpec {
    DestinationSpec::SecretsManager {
        secret_id: "ci/bot".into(),
        region: None,
        role: None,
        external_id: None,
        rotation_token: None,
    }
}

fn job() -> JobSpec {
    JobSpec::new(
        "user ci-bot in account 222222222222".into(),
        Subject::User {
            account_id: "222222222222".into(),
            user_arn: "arn:aws:iam::222222222222:user/ci-bot".into(),
        },
        Access::Role {
            role: "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole".into(),
            external_id: None,
        },
        vec![
            secret(),
            // Separators a journal once joined names with, and unicode.
            DestinationSpec::SharedFile {
                file: crate::awsfiles::FileKind::Credentials,
                path: "/home/a b/#x,y/crédentials".into(),
                profiles: vec!["dev #1".into(), "ci,prod".into(), "ü k".into()],
            },
        ],
    )
}

fn key(id: &str, status: KeyStatus, age: i64) -> Key {
    Key {
        access_key_id: Some(id.into()),
        status,
        created: Some(NOW - time::Duration::days(age)),
        last_used: None,
    }
}

fn key_plan(free: Option<(&str, KeyStatus)>, orphans: &[&str]) -> KeyPlan {
    KeyPlan {
        account_id: "222222222222".into(),
        user_name: "ci-bot".into(),
        user_arn: "arn:aws:iam::222222222222:user/ci-bot".into(),
        old_key_id: OLD.into(),
        old_key_age_days: Some(100),
        free_slot: free.map(|(key_id, status)| FreeSlot {
            key_id: key_id.into(),
            status,
        }),
        orphans: orphans.iter().map(|o| o.to_string()).collect(),
        old_key_action: OldKeyAction::Keep,
        keys_before: vec![OLD.into(), OTHER.into()],
    }
}

fn seen(kept: &[&str]) -> Seen {
    Seen {
        keys: [
            key(OLD, KeyStatus::Active, 100),
            key(OTHER, KeyStatus::Active, 200),
        ]
        .iter()
        .map(|k| SeenKey::of(k, NOW))
        .collect(),
        orphans: vec![],
        kept: kept.iter().map(|k| k.to_string()).collect(),
        destinations: vec![Holding {
            destination: secret(),
            holds: Some(OLD.into()),
        }],
    }
}

fn rotation(completed: &[Step]) -> Rotation {
    Rotation {
        id: RotationId::new(NOW),
        account_id: "222222222222".into(),
        user_name: "ci-bot".into(),
        user_arn: "arn:aws:iam::222222222222:user/ci-bot".into(),
        old_key_id: OLD.into(),
        new_key_id: completed
            .contains(&Step::CreateKey)
            .then(|| "AKIANEWNEWNEWNEW0004".into()),
        keys_before: vec![OLD.into()],
        destinations: vec![secret()],
        old_key_action: OldKeyAction::Keep,
        access: AccessSpec::OldKey,
        run_id: "r".into(),
        last_step: *completed.last().unwrap_or(&Step::Plan),
        last_phase: Phase::Done,
        completed: completed
            .iter()
            .map(|&step| StepTarget {
                step,
                target: (step == Step::Deliver).then(|| Target::Destination(secret())),
            })
            .collect(),
        open: vec![],
        outcome: None,
        error: None,
        started_at: NOW,
        updated_at: NOW,
        finished_at: None,
    }
}

fn every_action() -> Vec<Action> {
    let r = rotation(&[Step::Plan, Step::CreateKey, Step::Deliver]);
    let skip = |reason| Action::Skip {
        target: "user ci-bot in account 222222222222".into(),
        job: Some(job()),
        account_id: Some("222222222222".into()),
        user_name: Some("ci-bot".into()),
        old_key_id: Some(OLD.into()),
        reason,
    };
    vec![
        Action::Rotate {
            job: job(),
            plan: key_plan(Some((OTHER, KeyStatus::Active)), &[ORPHAN]),
            seen: seen(&[OTHER]),
        },
        unfinished_action(&r),
        unfinished_action(&rotation(&[Step::Plan])),
        Action::FreeSlot {
            job: job(),
            key_id: OTHER.into(),
            status: KeyStatus::Inactive,
            why: FreeWhy::Inactive,
        },
        skip(SkipReason::NotDue {
            key_id: OLD.into(),
            age_days: 5,
            max_age_days: 90,
        }),
        skip(SkipReason::Exempt {
            why: "tag rekey:exempt=true".into(),
        }),
        skip(SkipReason::AlreadyRotated {
            rotation_id: RotationId::numbered(7),
            new_key_id: OTHER.into(),
        }),
        skip(SkipReason::Refused { why: "no".into() }),
        Action::Skip {
            target: "account 333333333333".into(),
            job: None,
            account_id: Some("333333333333".into()),
            user_name: None,
            old_key_id: None,
            reason: SkipReason::Failed {
                why: "cannot enter it".into(),
            },
        },
    ]
}

#[test]
fn every_action_survives_a_json_round_trip_under_its_tag() {
    let tags = [
        "rotate",
        "resume",
        "undo",
        "free_slot",
        "skip",
        "skip",
        "skip",
        "skip",
        "skip",
    ];
    let reasons = ["not_due", "exempt", "already_rotated", "refused", "failed"];
    let actions = every_action();
    let mut seen_reasons = Vec::new();
    for (action, tag) in actions.iter().zip(tags) {
        let json: Value = serde_json::to_value(action).unwrap();
        assert_eq!(json["action"], tag, "{json}");
        if let Some(reason) = json["reason"]["reason"].as_str() {
            seen_reasons.push(reason.to_string());
        }
        let back: Action = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, action, "{json}");
    }
    assert_eq!(seen_reasons, reasons);
    let plan = Plan {
        made_at: None,
        as_of: None,
        findings: vec![],
        schema: SCHEMA.into(),
        actions,
    };
    let text = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&text).unwrap(), plan);
    assert!(text.starts_with(r#"{"schema":"rekey.plan/1","actions":["#));
}

#[test]
fn an_unfinished_rotation_is_undone_or_resumed_as_its_journal_says() {
    let created = rotation(&[Step::Plan, Step::CreateKey, Step::Deliver]);
    assert!(matches!(
        unfinished_action(&created),
        Action::Resume { rotation_id, .. } if rotation_id == created.id
    ));
    let before_key = rotation(&[Step::Plan]);
    assert!(matches!(
        unfinished_action(&before_key),
        Action::Undo {
            why: UndoWhy::StoppedBeforeDelivery,
            ..
        }
    ));
    let mut rolling = created.clone();
    rolling.open.push(StepTarget {
        step: Step::Rollback,
        target: Some(Target::Destination(secret())),
    });
    let Action::Undo {
        why, unfinished, ..
    } = unfinished_action(&rolling)
    else {
        panic!("a rollback begun is undone");
    };
    assert_eq!(why, UndoWhy::RollingBack);
    // The job that goes on with it: the rotation's own destinations.
    assert_eq!(unfinished.job.destinations, [secret()]);
    assert_eq!(
        unfinished.new_key_id.as_deref(),
        Some("AKIANEWNEWNEWNEW0004")
    );
}

#[test]
fn a_freed_slot_says_why_it_may_be_freed_before_its_rotation() {
    let why_of = |plan: &KeyPlan, seen: &Seen| -> Vec<(String, FreeWhy)> {
        (rotate_actions(&job(), plan, seen).iter())
            .filter_map(|a| match a {
                Action::FreeSlot { key_id, why, .. } => Some((key_id.clone(), *why)),
                _ => None,
            })
            .collect()
    };
    let inactive = key_plan(Some((OTHER, KeyStatus::Inactive)), &[ORPHAN]);
    assert_eq!(
        why_of(&inactive, &seen(&[])),
        [
            (ORPHAN.to_string(), FreeWhy::Orphan),
            (OTHER.to_string(), FreeWhy::Inactive)
        ]
    );
    let active = key_plan(Some((OTHER, KeyStatus::Active)), &[]);
    assert_eq!(
        why_of(&active, &seen(&[OTHER])),
        [(OTHER.to_string(), FreeWhy::Kept)]
    );
    assert_eq!(
        why_of(&active, &seen(&[])),
        [(OTHER.to_string(), FreeWhy::Allowed)]
    );
    let actions = rotate_actions(&job(), &active, &seen(&[]));
    assert!(matches!(actions.last(), Some(Action::Rotate { .. })));
}

#[test]
fn a_plan_changed_since_is_said_and_the_same_one_is_not() {
    let planned = key_plan(Some((OTHER, KeyStatus::Inactive)), &[]);
    assert_eq!(changed(&planned, &planned), None);
    assert_eq!(departs(&planned, &Decision::Rotate(planned.clone())), None);
    let other_key = KeyPlan {
        old_key_id: OTHER.into(),
        free_slot: None,
        ..planned.clone()
    };
    let said = changed(&planned, &other_key).expect("changed");
    assert!(
        said.contains("the key to rotate is AKIA…0002 now"),
        "{said}"
    );
    assert!(said.contains("the slot to free is none now"), "{said}");
    let not_due = Decision::NotDue {
        age_days: 0,
        max_age_days: 30,
    };
    let said = departs(&planned, &not_due).expect("departs");
    assert!(said.contains("not due"), "{said}");
    let refused = Decision::Refuse(crate::rotation::Refusal::Root);
    assert_eq!(departs(&planned, &refused), None);
}

#[test]
fn a_plan_of_another_schema_or_not_a_plan_is_refused_by_name() {
    let plan = Plan {
        made_at: None,
        as_of: None,
        findings: vec![],
        schema: SCHEMA.into(),
        actions: every_action(),
    };
    let text = serde_json::to_string(&plan).unwrap();
    assert_eq!(Plan::parse(&text).unwrap(), plan);
    let newer = text.replace("rekey.plan/1", "rekey.plan/2");
    let said = Plan::parse(&newer).unwrap_err().to_string();
    assert!(
        said.contains("schema `rekey.plan/2`") && said.contains("it reads `rekey.plan/1`"),
        "{said}"
    );
    let unknown = text.replacen(r#""action":"rotate""#, r#""action":"wipe""#, 1);
    let said = Plan::parse(&unknown).unwrap_err().to_string();
    assert!(
        said.starts_with("not a rekey plan: unknown variant `wipe`"),
        "{said}"
    );
}
