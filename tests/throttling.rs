//! Issue 8: under sustained throttling, 5xx answers and connection resets
//! (injected by `tests/support/net_proxy.py` in front of the emulator),
//! `rekey audit --org` gives exactly the clean run's answer, and a rotation
//! completes. No timing assertions: `scripts/bench --only faults` measures.

use std::collections::BTreeSet;
use std::process::Output;

use serde_json::Value;

use crate::rotate::Dev;
use crate::support::{
    Faults, Home, Org, Proxy, Seeder, code, json_out, key, member_seeder, moto, sdk_config, stderr,
};

/// An organization of 3 accounts × 4 users, keys of several verdicts.
async fn small_org() -> Org {
    let org = moto().new_org(2);
    let mut seeders = vec![Seeder::new(
        &org.management_account_id,
        &sdk_config(&org.admin),
    )];
    for m in &org.members {
        seeders.push(member_seeder(&org, &m.account_id).await);
    }
    for s in &seeders {
        s.user("fresh", "/", &[], &[], &[key(10, Some(1))]).await;
        s.user("old", "/", &[], &[], &[key(400, Some(2))]).await;
        s.user("idle", "/", &[], &[], &[key(70, None)]).await;
        s.user("twice", "/", &[], &[], &[key(5, Some(0)), key(30, Some(0))])
            .await;
    }
    org
}

fn audit(home: &Home, endpoint: &str, source: &str) -> Output {
    home.rekey_with(
        &[("AWS_ENDPOINT_URL", endpoint)],
        &[
            "audit",
            "--org",
            "--role",
            "OrganizationAccountAccessRole",
            "--source",
            source,
            "--output",
            "json",
        ],
    )
}

/// What a user compares between two runs: each account's status, and
/// every key with its verdict and findings.
fn answer(out: &Output) -> (BTreeSet<String>, BTreeSet<String>) {
    let report = json_out(out);
    let accounts = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {}", a["account_id"], a["status"]))
        .collect();
    let keys = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k: &Value| {
            format!(
                "{} {} {} {} {} {}",
                k["account_id"],
                k["user_name"],
                k["access_key_id"],
                k["status"],
                k["verdict"],
                k["findings"]
            )
        })
        .collect();
    (accounts, keys)
}

#[tokio::test]
async fn audit_under_throttling_5xx_and_resets_gives_the_clean_answer() {
    let org = small_org().await;
    let home = Home::new().with_base(&org.admin);
    for source in ["report", "api"] {
        let clean = audit(&home, &moto().endpoint(), source);
        assert_eq!(code(&clean), 1, "findings → exit 1\n{}", stderr(&clean));
        let want = answer(&clean);
        assert_eq!(want.0.len(), 3, "{:?}", want.0);
        assert!(want.0.iter().all(|a| a.ends_with("\"ok\"")), "{:?}", want.0);
        assert_eq!(want.1.len(), 3 * 5 + 1, "5 keys per account + org-admin's");
        for faults in [
            Faults {
                throttle: 0.3,
                ..Faults::default()
            },
            Faults {
                error_5xx: 0.2,
                ..Faults::default()
            },
            Faults {
                reset: 0.1,
                ..Faults::default()
            },
        ] {
            let proxy = Proxy::start(faults);
            let out = audit(&home, &proxy.endpoint(), source);
            assert_eq!(
                code(&out),
                1,
                "--source {source}, {faults:?}: exit\n{}",
                stderr(&out)
            );
            assert_eq!(answer(&out), want, "--source {source}, {faults:?}");
        }
    }
}

#[tokio::test]
async fn rotation_through_30_percent_throttling_completes() {
    let dev = Dev::new(100).await;
    let proxy = Proxy::start(Faults {
        throttle: 0.3,
        ..Faults::default()
    });
    let out = dev.rotate_with(
        &[("AWS_ENDPOINT_URL", &proxy.endpoint())],
        &["--profile", "dev"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_ne!(
        dev.held("dev").access_key_id,
        dev.key.access_key_id,
        "rotated"
    );
    dev.assert_profile_works("dev");
    dev.assert_no_orphans().await;
}

#[tokio::test]
async fn a_retry_mode_alone_keeps_rekeys_attempts_under_throttling() {
    // Issue 8: AWS_RETRY_MODE=standard used to drop attempts to the SDK's 3,
    // and accounts failed through 30% throttling.
    let org = small_org().await;
    let home = Home::new().with_base(&org.admin);
    let want = answer(&audit(&home, &moto().endpoint(), "api"));
    let proxy = Proxy::start(Faults {
        throttle: 0.3,
        ..Faults::default()
    });
    let home = Home {
        env: [("AWS_RETRY_MODE".into(), "standard".into())]
            .into_iter()
            .chain(home.env.clone())
            .collect(),
        ..home
    };
    let out = audit(&home, &proxy.endpoint(), "api");
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(answer(&out), want);
}

#[test]
fn unusable_retry_settings_are_refused_before_any_call() {
    let home = Home::new();
    for (var, value) in [("AWS_MAX_ATTEMPTS", "0"), ("AWS_RETRY_MODE", "fast")] {
        let out = home.rekey_with(&[(var, value)], &["audit", "--output", "json"]);
        assert_eq!(code(&out), 2, "{var}={value}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{var} is `{value}`")),
            "{var}={value}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "no report");
    }
}
