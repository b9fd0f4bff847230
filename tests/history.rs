//! `rekey history`: what each rotation did, as a person reads it.

use serde_json::Value;

use crate::support::runner::{Runner, svc_in};
use crate::support::stores::{ServiceAccount, put_param};
use crate::support::{Home, code, json_out, moto, sdk_config, stderr, stdout};

/// Whether `word` is an RFC 3339 time in UTC to the second
/// (`2026-11-26T12:00:00Z`).
fn is_rfc3339(word: &str) -> bool {
    use time::format_description::well_known::Rfc3339;
    word.len() == 20 && word.ends_with('Z') && time::OffsetDateTime::parse(word, &Rfc3339).is_ok()
}

/// Issue 15: the history of a service user rotated twice, the second time
/// freeing the slot of the key the first one kept active. The step says an
/// *active* key was deleted; times are RFC 3339; the table fits the
/// terminal's width.
#[tokio::test]
async fn issue15_history_names_a_deleted_active_key_and_fits_the_terminal() {
    let org = moto().new_org(1);
    let member = ServiceAccount::of(&org, 0).await;
    let key = member.seeder.service_user("svc", 100).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk_config(&org.admin));
    put_param(&ssm, "/ci/svc", &key).await;
    let runner = Runner::new(&org.admin);
    let rotate = || runner.rotate(&svc_in(&member.account_id, &["--to", "ssm:/ci/svc"]));
    let first = rotate();
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    // The kept key was last used before it was replaced: the next rotation
    // frees its slot by deleting it, active as it is.
    moto().key_dates(&member.account_id, "svc", &key.access_key_id, 100, Some(1));
    let second = rotate();
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let keys = member.keys("svc").await;
    assert!(
        keys.iter().all(|(id, _)| *id != key.access_key_id),
        "the kept key is gone: {keys:?}"
    );

    let history = json_out(&runner.history());
    let rotations = history.as_array().unwrap();
    assert_eq!(rotations.len(), 2, "{history:#}");
    let events = |r: &Value| r["events"].as_array().unwrap().clone();
    let freed: Vec<Value> = rotations
        .iter()
        .flat_map(events)
        .filter(|e| e["target"]["key"] == key.access_key_id.as_str())
        .collect();
    assert!(!freed.is_empty(), "{history:#}");
    for e in &freed {
        assert_eq!(e["step"], "delete_active_key", "{e}");
    }

    let journal = runner.journal();
    let table = |columns: &str| {
        runner.home.rekey_with(
            &[("COLUMNS", columns)],
            &["history", "--steps", "--journal", journal.to_str().unwrap()],
        )
    };
    let out = table("200");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("delete_active_key"), "{text}");
    assert!(!text.contains("delete_inactive_key"), "{text}");
    for id in keys.iter().map(|(id, _)| id).chain([&key.access_key_id]) {
        assert!(!text.contains(id.as_str()), "key IDs are masked: {text}");
    }
    assert!(!text.contains("+00:00:00"), "{text}");
    let steps: Vec<&str> = text.lines().filter(|l| l.starts_with("  ")).collect();
    assert!(!steps.is_empty(), "{text}");
    for line in steps {
        let at = line.split_whitespace().next().unwrap();
        assert!(is_rfc3339(at), "`{at}` in `{line}`");
    }
    let started: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split('┆').nth(1).map(str::trim))
        .filter(|c| c.starts_with("20"))
        .collect();
    assert_eq!(started.len(), 2, "{text}");
    assert!(started.iter().all(|s| is_rfc3339(s)), "{started:?}");

    let out = table("72");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let table_lines: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
    assert!(table_lines.len() > 3, "{text}");
    for line in table_lines {
        assert!(line.chars().count() <= 72, "wider than 72: {line}\n{text}");
    }
}

/// Issue 15: before the first rotation there is no journal; that is no
/// error, and history creates none.
#[test]
fn issue15_history_without_a_journal_says_nothing_was_rotated() {
    let home = Home::new();
    let journal = home.path().join("state/journal.sqlite3");
    let path = journal.to_str().unwrap();
    let out = home.rekey(&["history", "--journal", path]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("no rotations recorded"),
        "{}",
        stdout(&out)
    );
    let out = home.rekey(&["history", "--journal", path, "--output", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out), serde_json::json!([]));
    assert!(!journal.exists() && !journal.parent().unwrap().exists());
}
