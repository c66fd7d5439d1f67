//! Snapshots: every stateful type serialises to bytes and restores exactly.
//!
//! Format: the magic `MKV1`, one byte of length and the type's name, then the postcard
//! encoding of the value (f64s as their exact IEEE bits), so a restored object continues
//! bit-identically and a snapshot of one type cannot be restored as another.

use serde::{de::DeserializeOwned, Serialize};

const MAGIC: &[u8; 4] = b"MKV1";

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotError(pub String);

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SnapshotError {}

/// Serialise `value`, tagged with `kind` (the type's name).
pub fn to_bytes<T: Serialize>(kind: &str, value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.push(kind.len() as u8);
    out.extend_from_slice(kind.as_bytes());
    postcard::to_extend(value, out).expect("serialising to a Vec cannot fail")
}

/// Restore a value written by [`to_bytes`] with the same `kind`.
pub fn from_bytes<T: DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<T, SnapshotError> {
    if bytes.len() < 5 || &bytes[..4] != MAGIC {
        return Err(SnapshotError("not a markov snapshot (bad magic)".into()));
    }
    let len = bytes[4] as usize;
    let name = bytes
        .get(5..5 + len)
        .ok_or_else(|| SnapshotError("truncated snapshot header".into()))?;
    if name != kind.as_bytes() {
        return Err(SnapshotError(format!(
            "snapshot holds a {}, not a {kind}",
            String::from_utf8_lossy(name)
        )));
    }
    postcard::from_bytes(&bytes[5 + len..])
        .map_err(|e| SnapshotError(format!("corrupt {kind} snapshot: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_kind_check() {
        let v = (1.5_f64, vec![f64::MIN_POSITIVE, -0.0], 7_u64);
        let b = to_bytes("Thing", &v);
        let back: (f64, Vec<f64>, u64) = from_bytes("Thing", &b).unwrap();
        assert_eq!(back.0.to_bits(), v.0.to_bits());
        assert_eq!(back.1[1].to_bits(), (-0.0_f64).to_bits());
        assert!(from_bytes::<(f64, Vec<f64>, u64)>("Other", &b).is_err());
        assert!(from_bytes::<(f64, Vec<f64>, u64)>("Thing", &b[..b.len() - 1]).is_err());
        assert!(from_bytes::<u8>("Thing", b"nope").is_err());
    }
}
