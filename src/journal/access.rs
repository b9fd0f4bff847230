//! How a rotation reached IAM, as the journal keeps it, so a resumed
//! rotation goes the same way (issue 7): never a secret, never an MFA code.
//! Kept as the detail of the rotation's `plan` event, as JSON; a rotation
//! journaled before access modes existed has none there and used its old key.

use serde::{Deserialize, Serialize};

/// One rotation's access mode, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessSpec {
    /// Signed with the key being rotated (then with the new key).
    OldKey,
    /// An MFA session of the key being rotated. A resumed rotation has no
    /// code to start one: it reaches IAM with the new key, as before.
    MfaSession { serial: String },
    /// The caller's own credentials (a user of the caller's own account).
    Caller,
    /// A named profile's credentials (`rotate --service --profile P`): a
    /// resumed rotation opens that profile again, whatever the resuming
    /// run's own credentials are. Only the name: the files hold the rest.
    Profile { name: String },
    /// A role assumed in the user's account with the caller's credentials.
    Role {
        role_arn: String,
        /// Not a secret (AWS: it guards against the confused deputy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
    },
    /// A kind this build does not know (a newer rekey wrote it): refused by
    /// name when a run must act on it, never taken for the old key.
    #[serde(skip)]
    Unknown(String),
}

impl AccessSpec {
    /// Reads the `plan` event's detail: none means the old key.
    pub fn from_plan_detail(detail: Option<&str>) -> AccessSpec {
        let Some(text) = detail else {
            return AccessSpec::OldKey;
        };
        serde_json::from_str(text).unwrap_or_else(|_| AccessSpec::Unknown(text.to_string()))
    }

    /// The `plan` event's detail.
    pub fn to_plan_detail(&self) -> String {
        match self {
            AccessSpec::Unknown(text) => text.clone(),
            known => serde_json::to_string(known).expect("access modes serialize"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_modes_round_trip_and_old_rows_mean_the_old_key() {
        for spec in [
            AccessSpec::OldKey,
            AccessSpec::Caller,
            AccessSpec::Profile {
                name: "ci [prod] #1".into(),
            },
            AccessSpec::MfaSession {
                serial: "arn:aws:iam::1:mfa/dev".into(),
            },
            AccessSpec::Role {
                role_arn: "arn:aws:iam::1:role/Rotator".into(),
                external_id: Some("x-1".into()),
            },
        ] {
            let detail = spec.to_plan_detail();
            assert_eq!(AccessSpec::from_plan_detail(Some(&detail)), spec);
        }
        assert_eq!(AccessSpec::from_plan_detail(None), AccessSpec::OldKey);
        // Rows written before profiles were journaled still read as Caller.
        assert_eq!(
            AccessSpec::from_plan_detail(Some(r#"{"kind":"caller"}"#)),
            AccessSpec::Caller
        );
        let newer = r#"{"kind":"carrier_pigeon"}"#;
        assert_eq!(
            AccessSpec::from_plan_detail(Some(newer)),
            AccessSpec::Unknown(newer.into())
        );
        assert_eq!(AccessSpec::Unknown(newer.into()).to_plan_detail(), newer);
    }
}
