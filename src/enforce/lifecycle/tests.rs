//! The lifecycle as a table of days: each row is a day since the key was
//! created, and what is due that day.

use time::macros::datetime;

use super::*;

const DAY0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn day(n: i64) -> OffsetDateTime {
    DAY0 + days(n)
}

fn key(has_destination: bool) -> KeyFacts {
    KeyFacts {
        status: KeyStatus::Active,
        created: Some(DAY0),
        last_used: None,
        has_destination,
        replaced_at: None,
        deactivated_by_rekey_at: None,
        reactivated_at: None,
    }
}

fn used(on: i64) -> Option<LastUsed> {
    Some(LastUsed {
        date: day(on),
        service: Some("s3".into()),
        region: Some("eu-west-1".into()),
    })
}

fn nothing_until(n: i64) -> Due {
    Due::Nothing { next: Some(day(n)) }
}

/// `(day, due)` rows, each checked against [`due`] for `key`.
fn walk(key: &KeyFacts, rules: &Lifecycle, table: &[(i64, Due)]) {
    for (n, want) in table {
        assert_eq!(&due(key, rules, day(*n)), want, "day {n}: {key:?}");
    }
}

#[test]
fn a_service_key_is_warned_then_rotated_then_retired_after_its_grace() {
    let rules = Lifecycle::default();
    walk(
        &key(true),
        &rules,
        &[
            (0, nothing_until(77)),
            (76, nothing_until(77)),
            // A key of exactly 90 days is still compliant (audit, AWS
            // Config): the rotation falls due when it is older.
            (77, Due::Warn { at: day(91) }),
            (90, Due::Warn { at: day(91) }),
            (91, Due::Rotate { age_days: 91 }),
            (130, Due::Rotate { age_days: 130 }),
        ],
    );
    let replaced = KeyFacts {
        replaced_at: Some(day(90)),
        // Used before the new key was delivered: not a use since.
        last_used: used(89),
        ..key(true)
    };
    walk(
        &replaced,
        &rules,
        &[
            (90, nothing_until(97)),
            (96, nothing_until(97)),
            (
                97,
                Due::Retire {
                    replaced_at: day(90),
                },
            ),
        ],
    );
    let retired = KeyFacts {
        status: KeyStatus::Inactive,
        deactivated_by_rekey_at: Some(day(97)),
        ..replaced
    };
    walk(
        &retired,
        &rules,
        &[
            (97, nothing_until(104)),
            (103, nothing_until(104)),
            (
                104,
                Due::Delete {
                    deactivated_at: day(97),
                },
            ),
        ],
    );
}

#[test]
fn a_replaced_key_used_after_delivery_is_reported_until_grace_max_then_as_asked() {
    // Replaced on day 90; (today, its last use, what is due).
    let at = |rules: &Lifecycle, today: i64, last: i64| {
        let k = KeyFacts {
            replaced_at: Some(day(90)),
            last_used: used(last),
            ..key(true)
        };
        due(&k, rules, day(today))
    };
    let in_use = |last: i64| Due::StillInUse {
        last_used: used(last).unwrap(),
        until: day(120),
    };
    let retire = Due::Retire {
        replaced_at: day(90),
    };
    let report = Lifecycle::default();
    // Used on day 95, then no more: reported until its readers have been
    // quiet for the grace (7 days), then retired.
    assert_eq!(at(&report, 95, 95), in_use(95));
    assert_eq!(at(&report, 101, 95), in_use(95));
    assert_eq!(at(&report, 102, 95), retire);
    // Used every day: reported, past grace_max too, as `report` asks.
    assert_eq!(at(&report, 119, 119), in_use(119));
    assert_eq!(at(&report, 150, 150), in_use(150));
    // With `deactivate`, deactivated once grace_max (day 120) is over.
    let deactivate = Lifecycle {
        on_grace_max: OnGraceMax::Deactivate,
        ..Lifecycle::default()
    };
    assert_eq!(at(&deactivate, 119, 118), in_use(118));
    assert_eq!(
        at(&deactivate, 120, 119),
        Due::Deactivate {
            why: DeactivateWhy::GraceOver {
                last_used: used(119).unwrap(),
            },
        }
    );
    // Quiet for the grace at grace_max: retired, not "still in use".
    assert_eq!(at(&deactivate, 130, 110), retire);
}

#[test]
fn an_idle_key_in_a_destination_is_rotated_not_deactivated_as_unused() {
    let asked = Lifecycle {
        deactivate_unused: true,
        ..Lifecycle::default()
    };
    assert_eq!(due(&key(true), &asked, day(60)), nothing_until(77));
    assert_eq!(
        due(&key(true), &asked, day(91)),
        Due::Rotate { age_days: 91 }
    );
}

#[test]
fn a_key_without_destination_is_warned_of_its_deactivation_then_deactivated() {
    let rules = Lifecycle::default();
    walk(
        &key(false),
        &rules,
        &[
            (76, nothing_until(77)),
            (77, Due::Warn { at: day(105) }),
            (90, Due::Warn { at: day(105) }),
            (104, Due::Warn { at: day(105) }),
            (
                105,
                Due::Deactivate {
                    why: DeactivateWhy::Stale { age_days: 105 },
                },
            ),
        ],
    );
}

#[test]
fn a_key_rekey_did_not_deactivate_is_never_deleted() {
    let theirs = KeyFacts {
        status: KeyStatus::Inactive,
        ..key(false)
    };
    walk(
        &theirs,
        &Lifecycle::default(),
        &[
            (0, Due::Nothing { next: None }),
            (1000, Due::Nothing { next: None }),
        ],
    );
    // Nor one used after rekey deactivated it (reactivated meanwhile).
    let reused = KeyFacts {
        deactivated_by_rekey_at: Some(day(97)),
        last_used: used(99),
        ..theirs
    };
    assert_eq!(
        due(&reused, &Lifecycle::default(), day(200)),
        Due::Nothing { next: None }
    );
}

#[test]
fn an_unused_key_is_deactivated_only_when_asked_and_an_undated_key_is_left_alone() {
    let idle = KeyFacts {
        last_used: used(10),
        ..key(false)
    };
    let asked = Lifecycle {
        deactivate_unused: true,
        ..Lifecycle::default()
    };
    walk(
        &idle,
        &asked,
        &[
            (54, nothing_until(77)),
            (
                55,
                Due::Deactivate {
                    why: DeactivateWhy::Unused { idle_days: 45 },
                },
            ),
        ],
    );
    assert_eq!(
        due(&idle, &Lifecycle::default(), day(55)),
        nothing_until(77)
    );
    let undated = KeyFacts {
        created: None,
        ..key(true)
    };
    assert_eq!(
        due(&undated, &Lifecycle::default(), day(500)),
        Due::Nothing { next: None }
    );
}

#[test]
fn what_is_due_has_a_stable_json_form() {
    let due = Due::StillInUse {
        last_used: used(95).unwrap(),
        until: day(120),
    };
    let json = serde_json::to_value(&due).unwrap();
    assert_eq!(json["stage"], "still_in_use");
    assert_eq!(json["until"], "2026-05-01T00:00:00Z");
    assert_eq!(serde_json::from_value::<Due>(json).unwrap(), due);
    let rules: Lifecycle = serde_json::from_str(
        r#"{"max_age_days":90,"warn_before_days":14,"grace_days":7,"grace_max_days":30,
            "on_grace_max":"deactivate","deactivate_after_days":14,"unused_days":45,
            "deactivate_unused":false,"recovery_days":7}"#,
    )
    .unwrap();
    assert_eq!(rules.on_grace_max, OnGraceMax::Deactivate);
}

#[test]
fn a_reactivated_key_keeps_its_grace_anew_before_any_deactivation() {
    let rules = Lifecycle::default();
    // Replaced on day 90, retired on day 97, reactivated by a person on
    // day 99: not retired again before day 106, then retired if unused.
    let reactivated = KeyFacts {
        replaced_at: Some(day(90)),
        reactivated_at: Some(day(99)),
        ..key(true)
    };
    walk(
        &reactivated,
        &rules,
        &[
            (99, nothing_until(106)),
            (105, nothing_until(106)),
            (
                106,
                Due::Retire {
                    replaced_at: day(90),
                },
            ),
        ],
    );
    // A stale human key reactivated on day 105 waits until day 112.
    let human = KeyFacts {
        reactivated_at: Some(day(105)),
        ..key(false)
    };
    walk(
        &human,
        &rules,
        &[
            (105, nothing_until(112)),
            (
                112,
                Due::Deactivate {
                    why: DeactivateWhy::Stale { age_days: 112 },
                },
            ),
        ],
    );
}
