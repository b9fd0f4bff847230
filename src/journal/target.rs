//! What a step acted on, when a rotation has several such things (issue
//! 16): a destination, identified by the [`DestinationSpec`] the rotation
//! journaled, or a key, by its ID — typed, so that a profile or secret name
//! holding `#` or `,` still names exactly one destination, and a resumed
//! run recognises its earlier steps by the same value it acts on.
//!
//! Stored (and printed by `rekey history -o json`) as JSON, tagged by what
//! it is:
//!
//! ```text
//! {"destination": {"kind": "shared_file", "file": "credentials", "path": "/home/u/.aws/credentials", "profiles": ["dev"]}}
//! {"key": "AKIAIOSFODNN7EXAMPLE"}
//! ```
//!
//! Rows written before (journal schema 1) hold plain text: a key ID, or a
//! destination's display name (`credentials:PATH#a,b`, `secretsmanager:ID`,
//! `ssm:PATH`). [`Target::from_stored`] reads both, matching an old name
//! against the rotation's own destinations.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Step;
use crate::destination::DestinationSpec;

/// The thing one step acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One of the rotation's destinations (`Deliver`, `Promote`,
    /// `Rollback`), as the rotation journaled it.
    Destination(DestinationSpec),
    /// A key, by ID (`DeleteInactiveKey`, `DeleteActiveKey`,
    /// `DeleteOrphanKey`, `DeleteNewKey`).
    Key(String),
}

impl Target {
    /// The stored form: JSON.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).expect("targets serialize")
    }

    /// Reads a stored target of a `step` of a rotation with `destinations`:
    /// JSON, or the plain text of a row written before targets were typed.
    /// An old destination name that matches none of the rotation's
    /// destinations is kept as a legacy destination: it then matches no
    /// step on them, as a name that changed never did.
    pub fn from_stored(text: &str, step: Step, destinations: &[DestinationSpec]) -> Target {
        if let Ok(target) = serde_json::from_str(text) {
            return target;
        }
        if acts_on_a_key(step) {
            return Target::Key(text.to_string());
        }
        let named = destinations.iter().find(|d| old_name(d) == text);
        Target::Destination(
            named
                .cloned()
                .unwrap_or_else(|| DestinationSpec::Legacy(text.to_string())),
        )
    }
}

/// Whether `step`'s target is a key (else a destination).
fn acts_on_a_key(step: Step) -> bool {
    matches!(
        step,
        Step::DeleteInactiveKey
            | Step::DeleteActiveKey
            | Step::DeleteOrphanKey
            | Step::DeleteNewKey
    )
}

/// How rekey named a destination in events before targets were typed
/// (each destination's `describe()` then), and names one for people now.
fn old_name(spec: &DestinationSpec) -> String {
    match spec {
        DestinationSpec::SharedFile {
            file,
            path,
            profiles,
        } => {
            let prefix = match file {
                crate::awsfiles::FileKind::Credentials => "credentials",
                crate::awsfiles::FileKind::Config => "config",
            };
            format!("{prefix}:{}#{}", path.display(), profiles.join(","))
        }
        DestinationSpec::SecretsManager { secret_id, .. } => format!("secretsmanager:{secret_id}"),
        DestinationSpec::Ssm { path, .. } => format!("ssm:{path}"),
        DestinationSpec::Legacy(text) => text.clone(),
        DestinationSpec::Unknown { kind, .. } => format!("{kind} destination"),
    }
}

/// For people: a destination by name (`ssm:/ci/bot`), a key by its full ID
/// (mask it where people read it).
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Destination(spec) => f.write_str(&old_name(spec)),
            Target::Key(id) => f.write_str(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::awsfiles::FileKind;

    fn file(profiles: &[&str]) -> DestinationSpec {
        DestinationSpec::SharedFile {
            file: FileKind::Credentials,
            path: PathBuf::from("/home/u/.aws/credentials"),
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn secret() -> DestinationSpec {
        DestinationSpec::SecretsManager {
            secret_id: "ci/bot".into(),
            region: Some("eu-west-1".into()),
            role: None,
            external_id: None,
            rotation_token: None,
        }
    }

    #[test]
    fn targets_are_stored_as_tagged_json_and_read_back() {
        for target in [
            Target::Destination(file(&["dev#1", "ci,dev"])),
            Target::Destination(secret()),
            Target::Key("AKIAIOSFODNN7EXAMPLE".into()),
        ] {
            let stored = target.to_stored();
            assert_eq!(Target::from_stored(&stored, Step::Deliver, &[]), target);
            assert_eq!(
                Target::from_stored(&stored, Step::DeleteNewKey, &[]),
                target
            );
        }
        assert_eq!(
            Target::Key("AKIAIOSFODNN7EXAMPLE".into()).to_stored(),
            r#"{"key":"AKIAIOSFODNN7EXAMPLE"}"#
        );
        let json = Target::Destination(secret()).to_stored();
        assert!(
            json.starts_with(r#"{"destination":{"kind":"secretsmanager","#),
            "{json}"
        );
    }

    #[test]
    fn old_rows_are_read_as_the_rotations_own_destinations_and_keys() {
        let dev = file(&["dev"]);
        let both = file(&["dev", "ci"]);
        let ssm = DestinationSpec::Ssm {
            path: "/ci/bot".into(),
            form: None,
            region: None,
            role: None,
            external_id: None,
        };
        let destinations = [dev.clone(), both.clone(), secret(), ssm.clone()];
        let read = |text: &str, step| Target::from_stored(text, step, &destinations);
        let path = "/home/u/.aws/credentials";
        assert_eq!(
            read(&format!("credentials:{path}#dev"), Step::Deliver),
            Target::Destination(dev)
        );
        assert_eq!(
            read(&format!("credentials:{path}#dev,ci"), Step::Rollback),
            Target::Destination(both)
        );
        assert_eq!(
            read("secretsmanager:ci/bot", Step::Promote),
            Target::Destination(secret())
        );
        assert_eq!(read("ssm:/ci/bot", Step::Deliver), Target::Destination(ssm));
        for step in [
            Step::DeleteInactiveKey,
            Step::DeleteActiveKey,
            Step::DeleteOrphanKey,
            Step::DeleteNewKey,
        ] {
            assert_eq!(
                read("AKIAIOSFODNN7EXAMPLE", step),
                Target::Key("AKIAIOSFODNN7EXAMPLE".into())
            );
        }
        // A name none of its destinations has (the file was renamed):
        // kept, and equal to no destination of the rotation.
        let gone = read("credentials:/elsewhere#dev", Step::Deliver);
        assert_eq!(
            gone,
            Target::Destination(DestinationSpec::Legacy("credentials:/elsewhere#dev".into()))
        );
        // A rotation journaled before destinations were typed names them
        // by the same text in its events.
        let legacy = DestinationSpec::Legacy(format!("credentials:{path}#dev"));
        assert_eq!(
            Target::from_stored(
                &format!("credentials:{path}#dev"),
                Step::Deliver,
                std::slice::from_ref(&legacy)
            ),
            Target::Destination(legacy)
        );
    }

    #[test]
    fn people_read_a_destination_by_name() {
        assert_eq!(
            Target::Destination(file(&["dev", "ci"])).to_string(),
            "credentials:/home/u/.aws/credentials#dev,ci"
        );
        assert_eq!(
            Target::Destination(secret()).to_string(),
            "secretsmanager:ci/bot"
        );
        assert_eq!(Target::Key("AKIAX".into()).to_string(), "AKIAX");
    }
}
