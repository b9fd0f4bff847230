//! Metrics as CloudWatch Embedded Metric Format lines: one JSON line per
//! account handled, on stdout, which Lambda's log agent turns into the
//! metrics `KeysRotated`, `KeysRetired`, `KeysFailed` and `Duration`
//! (milliseconds) of namespace `rekey`, by `AccountId`. No secret: counts
//! and an account ID only.

use serde_json::{Value, json};
use time::OffsetDateTime;

/// The namespace every metric is put in.
pub const NAMESPACE: &str = "rekey";

/// One account's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountMetrics {
    pub account_id: String,
    pub rotated: u64,
    /// Old keys deactivated or deleted.
    pub retired: u64,
    pub failed: u64,
    pub duration_ms: f64,
}

impl AccountMetrics {
    /// The EMF document. Pure.
    pub fn emf(&self, at: OffsetDateTime) -> Value {
        let millis = (at.unix_timestamp_nanos() / 1_000_000) as i64;
        json!({
            "_aws": {
                "Timestamp": millis,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["AccountId"]],
                    "Metrics": [
                        {"Name": "KeysRotated", "Unit": "Count"},
                        {"Name": "KeysRetired", "Unit": "Count"},
                        {"Name": "KeysFailed", "Unit": "Count"},
                        {"Name": "Duration", "Unit": "Milliseconds"},
                    ],
                }],
            },
            "AccountId": self.account_id,
            "KeysRotated": self.rotated,
            "KeysRetired": self.retired,
            "KeysFailed": self.failed,
            "Duration": self.duration_ms,
        })
    }

    /// Prints the EMF line (stdout: where Lambda's agent reads it).
    pub fn emit(&self, at: OffsetDateTime) {
        println!("{}", self.emf(at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_s_figures_are_one_emf_document_naming_each_metric() {
        let m = AccountMetrics {
            account_id: "222222222222".into(),
            rotated: 2,
            retired: 1,
            failed: 0,
            duration_ms: 1234.5,
        };
        let at = time::macros::datetime!(2026-12-08 00:00 UTC);
        let doc = m.emf(at);
        assert_eq!(doc["_aws"]["Timestamp"], 1_796_688_000_000_i64);
        let names: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in &names {
            assert!(doc.get(*name).is_some(), "{name} has a value");
        }
        assert_eq!(doc["KeysRotated"], 2);
        assert_eq!(doc["AccountId"], "222222222222");
    }
}
