use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_config::SdkConfig;
use serde_json::{Value, json};

use super::*;
use crate::aws::{AwsOptions, Deps};
use crate::awsfiles::SharedFile;
use crate::clock::SystemClock;
use crate::destination::{Binding, SecretRole, SsmForm};
use crate::journal::{AccessSpec, Holder, NewRotation, SqliteJournal};
use crate::rotation::Job;

const ACCOUNT: &str = "222222222222";
const USER_ARN: &str = "arn:aws:iam::222222222222:user/ci/bot";
const ENTERED: &str = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole";
const CENTRAL: &str = "arn:aws:secretsmanager:eu-west-1:333333333333:secret:ci/bot-AbCdEf";
const OLD: &str = "AKIAOLDOLDOLDOLD0001";

fn subjects() -> Vec<Subject> {
    vec![
        Subject::OfKey,
        Subject::Known {
            account_id: ACCOUNT.into(),
            user_arn: USER_ARN.into(),
            old_key_id: OLD.into(),
        },
        Subject::User {
            account_id: ACCOUNT.into(),
            user_arn: USER_ARN.into(),
        },
    ]
}

fn accesses() -> Vec<Access> {
    vec![
        Access::OldKey,
        Access::MfaSession {
            serial: "arn:aws:iam::222222222222:mfa/dev".into(),
        },
        Access::Caller,
        Access::Profile {
            name: "ci [prod] #1".into(),
        },
        Access::Role {
            role: "/ops/Rotator".into(),
            external_id: None,
        },
        Access::Role {
            role: ENTERED.into(),
            external_id: Some("rekey-x".into()),
        },
        Access::Unknown(r#"{"kind":"carrier_pigeon","loft":"north"}"#.into()),
    ]
}

/// One destination of every kind, names that a joined string would break.
fn every_destination() -> Vec<DestinationSpec> {
    vec![
        DestinationSpec::SharedFile {
            file: FileKind::Credentials,
            path: PathBuf::from("/home/ü ser/.aws/credentials"),
            profiles: vec!["dev#1".into(), "ci,dev".into()],
        },
        DestinationSpec::SharedFile {
            file: FileKind::Config,
            path: PathBuf::from("/home/u/.aws/config"),
            profiles: vec!["a b".into()],
        },
        DestinationSpec::SecretsManager {
            secret_id: CENTRAL.into(),
            region: Some("eu-west-1".into()),
            role: Some("arn:aws:iam::333333333333:role/SecretsWriter".into()),
            external_id: Some("x-1".into()),
            rotation_token: None,
        },
        DestinationSpec::SecretsManager {
            secret_id: "ci/bot".into(),
            region: None,
            role: None,
            external_id: None,
            rotation_token: None,
        },
        DestinationSpec::Ssm {
            path: "/ci/bot".into(),
            form: Some(SsmForm::Pair),
            region: Some("eu-west-1".into()),
            role: Some(ENTERED.into()),
            external_id: None,
        },
        DestinationSpec::Ssm {
            path: "/ci/json".into(),
            form: None,
            region: None,
            role: None,
            external_id: None,
        },
        DestinationSpec::Legacy("credentials:/h/.aws/credentials#dev,ci".into()),
        DestinationSpec::Unknown {
            kind: "carrier_pigeon".into(),
            raw: json!({"kind": "carrier_pigeon", "loft": "north"}),
        },
    ]
}

fn round_trip(spec: &JobSpec) -> JobSpec {
    let text = serde_json::to_string(spec).expect("a spec serializes");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn every_subject_access_and_destination_kind_survives_a_json_round_trip() {
    for subject in subjects() {
        for access in accesses() {
            let mut spec = JobSpec::new(
                "user ci/bot in account 222222222222".into(),
                subject.clone(),
                access,
                every_destination(),
            );
            assert_eq!(round_trip(&spec), spec);
            spec.settings_profile = Some("dev".into());
            spec.old_key = Some(OldKeyAction::Keep);
            spec.max_age_days = Some(90);
            assert_eq!(round_trip(&spec), spec);
        }
    }
    // Each destination alone too: the kind is told from its own fields.
    for destination in every_destination() {
        let spec = JobSpec::new(
            "d".into(),
            Subject::OfKey,
            Access::OldKey,
            vec![destination],
        );
        assert_eq!(round_trip(&spec), spec);
    }
}

#[test]
fn the_json_form_is_the_documented_one() {
    let spec = JobSpec {
        old_key: Some(OldKeyAction::Keep),
        max_age_days: Some(90),
        ..JobSpec::new(
            "user ci-bot in account 222222222222".into(),
            Subject::User {
                account_id: ACCOUNT.into(),
                user_arn: "arn:aws:iam::222222222222:user/ci-bot".into(),
            },
            Access::Role {
                role: ENTERED.into(),
                external_id: None,
            },
            vec![Binding::SecretsManager("ci/bot".into()).spec(
                ACCOUNT,
                None,
                Some((ENTERED, None)),
            )],
        )
    };
    let documented = json!({
        "label": "user ci-bot in account 222222222222",
        "subject": {"kind": "user", "account_id": "222222222222",
                    "user_arn": "arn:aws:iam::222222222222:user/ci-bot"},
        "access": {"kind": "role", "role": ENTERED},
        "destinations": [
            {"kind": "secretsmanager", "secret_id": "ci/bot", "region": null, "role": ENTERED}
        ],
        "old_key": "keep",
        "max_age_days": 90
    });
    assert_eq!(serde_json::to_value(&spec).unwrap(), documented);
    assert_eq!(serde_json::from_value::<JobSpec>(documented).unwrap(), spec);
    // What is unset is left out, and read back as unset.
    let bare = json!({
        "label": "profile dev",
        "subject": {"kind": "of_key"},
        "access": {"kind": "old_key"},
        "destinations": []
    });
    let spec: JobSpec = serde_json::from_value(bare.clone()).unwrap();
    assert_eq!(
        spec,
        JobSpec::new("profile dev".into(), Subject::OfKey, Access::OldKey, vec![])
    );
    assert_eq!(serde_json::to_value(&spec).unwrap(), bare);
}

fn deps(profiles: Option<Profiles>) -> Deps {
    let base = SdkConfig::builder().build();
    Deps::new(base, AwsOptions::default(), profiles.map(Arc::new))
}

/// `new` begun in a journal, under its user's lease, and read back.
fn journaled(new: NewRotation) -> Rotation {
    let journal = SqliteJournal::in_memory(Arc::new(SystemClock)).unwrap();
    let holder = Holder::current(new.run_id.clone());
    let ttl = time::Duration::minutes(5);
    journal
        .acquire_lease(&new.account_id, &new.user_name, &holder, ttl)
        .unwrap();
    let begun = journal.begin_rotation(&new).unwrap();
    journal.get(begun.id).unwrap()
}

/// What the journal keeps of a job the engine begins: the specs of its
/// opened destinations and the way in, as `rotate_leased` writes them.
fn begin(job: &Job, access: AccessSpec) -> Rotation {
    let (account_id, user_arn) = match &job.subject {
        Subject::Known {
            account_id,
            user_arn,
            ..
        }
        | Subject::User {
            account_id,
            user_arn,
        } => (account_id.clone(), user_arn.clone()),
        Subject::OfKey => (
            ACCOUNT.to_string(),
            "arn:aws:iam::222222222222:user/dev".into(),
        ),
    };
    journaled(NewRotation {
        account_id,
        user_name: "bot".into(),
        user_arn,
        old_key_id: OLD.into(),
        keys_before: vec![OLD.into()],
        destinations: job.destinations.iter().map(|d| d.spec()).collect(),
        old_key_action: OldKeyAction::Keep,
        access,
        run_id: "spec-test".into(),
    })
}

/// Each opened destination as the journal and messages name it.
fn opened(job: &Job) -> Vec<(DestinationSpec, String)> {
    let d = job.destinations.iter();
    d.map(|d| (d.spec(), d.describe())).collect()
}

fn profiles() -> Profiles {
    let credentials = "[dev]\naws_access_key_id = AKIAOLDOLDOLDOLD0001\naws_secret_access_key = s\n\
                       [dev-copy]\naws_access_key_id = AKIAOLDOLDOLDOLD0001\naws_secret_access_key = s\n";
    let config = "[profile dev]\nregion = eu-west-1\n\n[profile legacy]\naws_access_key_id = AKIAOLDOLDOLDOLD0001\naws_secret_access_key = s\n";
    Profiles::from_files(
        SharedFile::parse(Path::new("/h/.aws/credentials"), credentials).unwrap(),
        SharedFile::parse_as(FileKind::Config, Path::new("/h/.aws/config"), config).unwrap(),
    )
}

#[tokio::test]
async fn a_fresh_spec_and_the_spec_rebuilt_from_its_journal_row_open_the_same_destinations() {
    // A --service user's job in an account entered through a role: a
    // secret there, one in a central account (through the secret role),
    // and a parameter.
    let secret_role = SecretRole {
        role: "SecretsWriter".into(),
        external_id: Some("x-1".into()),
    };
    let own = Some((ENTERED, Some("rekey-x")));
    let bindings = [
        Binding::SecretsManager("ci/bot".into()),
        Binding::SecretsManager(CENTRAL.into()),
        Binding::Ssm("/ci/bot/".into()),
    ];
    let service = JobSpec::new(
        "user bot in account 222222222222".into(),
        Subject::User {
            account_id: ACCOUNT.into(),
            user_arn: USER_ARN.into(),
        },
        Access::Role {
            role: ENTERED.into(),
            external_id: Some("rekey-x".into()),
        },
        bindings
            .iter()
            .map(|b| b.spec(ACCOUNT, Some(&secret_role), own))
            .collect(),
    );
    let service_access = AccessSpec::Role {
        role_arn: ENTERED.into(),
        external_id: Some("rekey-x".into()),
    };
    // A profile's key, held by two credentials-file profiles and one of
    // the config file; the holder's region is the job's.
    let key = KeyTarget {
        access_key_id: OLD.into(),
        holder: "dev".into(),
        profiles: vec!["dev".into(), "dev-copy".into()],
        config_profiles: vec!["legacy".into()],
        requested: vec!["dev".into()],
        mfa_serial: None,
    };
    let profile = JobSpec::of_key(
        &key,
        &profiles(),
        Access::OldKey,
        "profiles dev, dev-copy, legacy".into(),
    );
    let deps = deps(Some(profiles()));
    for (fresh, access) in [(service, service_access), (profile, AccessSpec::OldKey)] {
        let job = Job::open(round_trip(&fresh), &deps).await.unwrap();
        let rotation = begin(&job, access);
        let resumed = round_trip(&JobSpec::resumed(&rotation));
        let again = Job::open(resumed.clone(), &deps).await.unwrap();
        assert_eq!(opened(&again), opened(&job), "{}", fresh.label);
        assert_eq!(resumed.destinations, fresh.destinations, "{}", fresh.label);
        assert_eq!(resumed.access, fresh.access, "{}", fresh.label);
        assert_eq!(
            again.config.region(),
            job.config.region(),
            "{}",
            fresh.label
        );
        assert_eq!(resumed.label, format!("rotation #{}", rotation.id));
    }
    let job = Job::open(
        JobSpec::of_key(&key, &profiles(), Access::OldKey, "dev".into()),
        &deps,
    )
    .await
    .unwrap();
    assert_eq!(job.config.region().map(|r| r.as_ref()), Some("eu-west-1"));
}

#[tokio::test]
async fn a_spec_rebuilt_from_a_row_of_the_previous_journal_format_opens() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("credentials");
    std::fs::write(
        &path,
        "[dev]\naws_access_key_id = AKIAOLDOLDOLDOLD0001\naws_secret_access_key = s\n\
         [ci]\naws_access_key_id = AKIAOLDOLDOLDOLD0001\naws_secret_access_key = s\n",
    )
    .unwrap();
    let legacy = format!("credentials:{}#dev,ci", path.display());
    // The row's destinations column as the previous release wrote it: a
    // file as a joined string, a secret whose role has no external ID, a
    // parameter from before roles were journaled; and no plan detail (it
    // knew no access modes: the old key signed).
    let column = json!([
        legacy,
        {"kind": "secretsmanager", "secret_id": CENTRAL, "region": "eu-west-1",
         "role": "arn:aws:iam::333333333333:role/SecretsWriter"},
        {"kind": "ssm", "path": "/ci/bot", "form": "pair", "region": null}
    ])
    .to_string();
    let rotation = journaled(NewRotation {
        account_id: ACCOUNT.into(),
        user_name: "dev".into(),
        user_arn: "arn:aws:iam::222222222222:user/dev".into(),
        old_key_id: OLD.into(),
        keys_before: vec![OLD.into()],
        destinations: serde_json::from_str(&column).unwrap(),
        old_key_action: OldKeyAction::Deactivate,
        access: AccessSpec::from_plan_detail(None),
        run_id: "previous-release".into(),
    });
    let spec = round_trip(&JobSpec::resumed(&rotation));
    assert_eq!(spec.access, Access::OldKey);
    assert_eq!(spec.old_key, Some(OldKeyAction::Deactivate));
    let text = serde_json::to_value(&spec).unwrap();
    assert_eq!(text["destinations"][0], Value::String(legacy.clone()));
    let job = Job::open(spec, &deps(None)).await.unwrap();
    let [file, secret, parameter] = &opened(&job)[..] else {
        panic!("{:?}", opened(&job))
    };
    // Events of the rotation name the file by its old text.
    assert_eq!(file.1, legacy);
    assert_eq!(
        file.0,
        DestinationSpec::SharedFile {
            file: FileKind::Credentials,
            path: path.clone(),
            profiles: vec!["dev".into(), "ci".into()],
        }
    );
    assert_eq!(
        secret.0,
        DestinationSpec::SecretsManager {
            secret_id: CENTRAL.into(),
            region: Some("eu-west-1".into()),
            role: Some("arn:aws:iam::333333333333:role/SecretsWriter".into()),
            external_id: None,
            rotation_token: None,
        }
    );
    assert!(matches!(
        &parameter.0,
        DestinationSpec::Ssm {
            role: None,
            external_id: None,
            form: Some(SsmForm::Pair),
            ..
        }
    ));
}

#[tokio::test]
async fn a_destination_of_a_kind_this_build_does_not_know_is_refused_by_name() {
    let spec = JobSpec::new(
        "rotation #3".into(),
        Subject::OfKey,
        Access::OldKey,
        vec![every_destination().pop().unwrap()],
    );
    let Err(e) = Job::open(spec, &deps(None)).await else {
        panic!("opened a destination of an unknown kind")
    };
    assert!(e.to_string().contains("`carrier_pigeon`"), "{e}");
}
