//! Rotation IDs (issue 16): one stable name per rotation, the same in
//! every journal backend, in messages, in JSON and for `rotate --abandon
//! ID`; never a database's row number.
//!
//! A new rotation's ID is a [ULID](https://github.com/ulid/spec): 48 bits
//! of Unix milliseconds, then 80 random bits, written as 26 characters of
//! Crockford's base32 (`01JDQ6Y5V8K3M2N4P6R8S0T2W4`). Made on one machine
//! or on many Lambda runners sharing a DynamoDB journal, two never meet in
//! practice, and as text they sort by when they were made. They are made
//! here, from the journal's clock and the OS-seeded keys of std's
//! `RandomState`, rather than with a crate: an ID is a name, not a secret,
//! so it needs uniqueness, not unpredictability, and 30 lines need no new
//! dependency.
//!
//! A rotation recorded before IDs were ULIDs (journal schema 1 numbered
//! them 1, 2, 3…) keeps its number: its ID is the ULID whose time part is
//! zero — no clock makes one — and whose random part is the number, and it
//! is written as the number, `7`. So `rotation #7` in an old log, `rekey
//! history` and `rekey rotate --abandon 7` still name the same rotation.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// The ID of one rotation: a ULID, or the number of a rotation recorded
/// before IDs were ULIDs. `Copy`, compared and ordered as the 128-bit value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RotationId(u128);

/// Crockford's base32, as ULIDs are written (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const LEN: usize = 26;
const RANDOM_BITS: u32 = 80;

impl RotationId {
    /// A new ID for a rotation begun at `now`.
    pub fn new(now: OffsetDateTime) -> RotationId {
        let ms = now.unix_timestamp_nanos().div_euclid(1_000_000);
        // 48 bits of milliseconds last until the year 10889.
        let ms = u128::try_from(ms).unwrap_or(0) & ((1 << 48) - 1);
        // Time zero is kept for numbered rotations: a clock before 1970
        // still makes a ULID.
        let ms = ms.max(1);
        RotationId(ms << RANDOM_BITS | random_bits())
    }

    /// The ID of rotation number `n` of a journal from before IDs were
    /// ULIDs (the number it was shown with).
    pub fn numbered(n: u64) -> RotationId {
        RotationId(u128::from(n))
    }

    /// The number, for a rotation recorded before IDs were ULIDs.
    pub fn number(self) -> Option<u64> {
        u64::try_from(self.0)
            .ok()
            .filter(|_| self.0 >> RANDOM_BITS == 0)
    }
}

/// 80 bits that no other call, in this process or another, gives: hashes of
/// a per-process counter under `RandomState` keys, which std seeds from the
/// OS's random source.
fn random_bits() -> u128 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let word = |half: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(half);
        h.write_u64(call);
        h.write_u32(std::process::id());
        u128::from(h.finish())
    };
    (word(0) << 64 | word(1)) & ((1 << RANDOM_BITS) - 1)
}

impl fmt::Display for RotationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.number() {
            return write!(f, "{n}");
        }
        let mut text = [0u8; LEN];
        for (i, c) in text.iter_mut().enumerate() {
            let shift = 5 * (LEN - 1 - i);
            *c = ALPHABET[(self.0 >> shift) as usize & 31];
        }
        f.write_str(std::str::from_utf8(&text).expect("base32 is ASCII"))
    }
}

/// Text that names no rotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a rotation ID (`rekey history` shows them: 26 letters and digits, or a number for a rotation from an older journal)"
)]
pub struct BadRotationId(pub String);

impl FromStr for RotationId {
    type Err = BadRotationId;

    /// A ULID (any case), or a number of an older journal.
    fn from_str(text: &str) -> Result<RotationId, BadRotationId> {
        let bad = || BadRotationId(text.to_string());
        if text.len() != LEN {
            return match text.bytes().all(|b| b.is_ascii_digit()) {
                true => text.parse().map(RotationId::numbered).map_err(|_| bad()),
                false => Err(bad()),
            };
        }
        let mut value: u128 = 0;
        for (i, b) in text.bytes().enumerate() {
            let digit = ALPHABET
                .iter()
                .position(|a| *a == b.to_ascii_uppercase())
                .ok_or_else(bad)?;
            // 26 × 5 = 130 bits: the first character holds only three.
            if i == 0 && digit > 7 {
                return Err(bad());
            }
            value = value << 5 | digit as u128;
        }
        Ok(RotationId(value))
    }
}

impl Serialize for RotationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read from a string; a number is taken too, as the number of a rotation
/// of an older journal (`"abandon": 7` in a JSON request).
impl<'de> Deserialize<'de> for RotationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RotationId, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = RotationId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rotation ID (a ULID, or an older journal's number)")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RotationId, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<RotationId, E> {
                Ok(RotationId::numbered(n))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<RotationId, E> {
                u64::try_from(n)
                    .map(RotationId::numbered)
                    .map_err(|_| E::custom(BadRotationId(n.to_string())))
            }
        }
        d.deserialize_any(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_new_id_is_a_ulid_of_its_time_and_round_trips() {
        let at = datetime!(2026-12-02 10:00:00.123 UTC);
        let id = RotationId::new(at);
        let text = id.to_string();
        assert_eq!(text.len(), 26, "{text}");
        assert!(text.bytes().all(|b| ALPHABET.contains(&b)), "{text}");
        assert_eq!(text.parse::<RotationId>(), Ok(id));
        assert_eq!(text.to_lowercase().parse::<RotationId>(), Ok(id));
        assert_eq!(id.number(), None);
        let ms = (id.0 >> RANDOM_BITS) as i128;
        assert_eq!(ms, at.unix_timestamp_nanos() / 1_000_000);
        // The spec's own example, made at 1469922850259 ms.
        let spec: RotationId = "01ARZ3NDEKTSV4RRFFQ69G5FAV".parse().unwrap();
        assert_eq!(spec.0 >> RANDOM_BITS, 1_469_922_850_259);
        assert_eq!(spec.to_string(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
    }

    #[test]
    fn ids_made_in_the_same_millisecond_differ_and_later_ones_sort_after() {
        let at = datetime!(2026-12-02 10:00 UTC);
        let ids: std::collections::BTreeSet<RotationId> =
            (0..1000).map(|_| RotationId::new(at)).collect();
        assert_eq!(ids.len(), 1000);
        let later = RotationId::new(at + time::Duration::milliseconds(1));
        assert!(ids.iter().all(|id| *id < later));
        assert!(ids.iter().all(|id| id.to_string() < later.to_string()));
    }

    #[test]
    fn an_old_journals_number_is_its_id_and_reads_as_itself() {
        let seven = RotationId::numbered(7);
        assert_eq!(seven.to_string(), "7");
        assert_eq!("7".parse::<RotationId>(), Ok(seven));
        assert_eq!(seven.number(), Some(7));
        assert_eq!("00000000000000000000000007".parse(), Ok(seven));
        // Never confused with a rotation begun at any time since 1970.
        let epoch = RotationId::new(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(epoch.number(), None);
        assert!(seven < epoch);
    }

    #[test]
    fn serde_writes_a_string_and_reads_both_forms() {
        let id = RotationId::new(datetime!(2026-12-02 10:00 UTC));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<RotationId>(&json).unwrap(), id);
        let old = RotationId::numbered(12);
        assert_eq!(serde_json::to_string(&old).unwrap(), "\"12\"");
        assert_eq!(serde_json::from_str::<RotationId>("\"12\"").unwrap(), old);
        assert_eq!(serde_json::from_str::<RotationId>("12").unwrap(), old);
        assert!(serde_json::from_str::<RotationId>("-12").is_err());
        assert!(serde_json::from_str::<RotationId>("\"x\"").is_err());
    }

    #[test]
    fn anything_else_is_refused_by_name() {
        for text in [
            "",
            "-1",
            "1.5",
            "#7",
            "01ARYZ6S41TSV4RRFFQ69G5FA",
            "01ARYZ6S41TSV4RRFFQ69G5FAVX",
            "01ARYZ6S41TSV4RRFFQ69G5FAU",
            "81ARYZ6S41TSV4RRFFQ69G5FAV",
            "99999999999999999999999",
        ] {
            let err = text.parse::<RotationId>().unwrap_err();
            assert_eq!(err, BadRotationId(text.into()));
            assert!(err.to_string().contains("is not a rotation ID"), "{err}");
        }
    }
}
