//! A ledger entry and its canonical encoding.
//!
//! The canonical encoding is the JSON Canonicalization Scheme (RFC 8785, "JCS")
//! of the entry as a JSON object with exactly the keys `actor`, `data`, `index`,
//! `kind`, `policy_hash`, `subject` and `time_ms`:
//!
//! - no whitespace between tokens, UTF-8, no byte-order mark, no trailing newline;
//! - object keys (at every depth, including inside `data`) sorted by their UTF-16
//!   code units, duplicates impossible (they come from a map);
//! - strings: `"` and `\` escaped as `\"` and `\\`; U+0008, U+0009, U+000A,
//!   U+000C and U+000D as `\b`, `\t`, `\n`, `\f`, `\r`; other code points below
//!   U+0020 as `\u00xx` (lowercase hex); everything else, including `/`, U+007F
//!   and non-ASCII, written as itself;
//! - numbers: integers that serde_json holds as `i64`/`u64` are written in
//!   decimal exactly (JCS would round integers beyond 2^53 to a double; twokey's
//!   own integers stay far below that); other numbers are written as ECMAScript's
//!   `Number.prototype.toString` does (shortest round-trip digits, `1e+21`,
//!   `1.5e-7`, `-0` as `0`), as JCS requires.
//!
//! The encoder is written out here rather than delegated to serde_json so that
//! the bytes cannot change when some other crate in the build turns on
//! serde_json's `preserve_order` feature (which would stop sorting keys).

use serde::{Deserialize, Serialize};

/// One event in the ledger: a request, review, grant, revocation, policy change,
/// login or alert. `index` is its position in the log (0-based, contiguous).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEntry {
    /// Position in the log, 0-based and contiguous.
    pub index: u64,
    /// When the event was recorded, Unix milliseconds.
    pub time_ms: i64,
    /// What happened, dotted: `request.created`, `review.approved`, `grant.activated`, ...
    pub kind: String,
    /// Who did it: an identity key (`issuer|subject`) or `system`.
    pub actor: String,
    /// What it happened to: a request id, a policy hash, ...
    pub subject: String,
    /// Hash of the policy in force when the decision was made.
    pub policy_hash: String,
    /// Event-specific details.
    pub data: serde_json::Value,
}

/// Why bytes could not be read back as a [`LedgerEntry`].
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The bytes are not a JSON object with the entry's fields.
    #[error("not a ledger entry: {0}")]
    Json(#[from] serde_json::Error),
    /// The bytes parse, but are not the canonical encoding of what they contain.
    #[error("not in canonical encoding (RFC 8785 JCS): re-encoding gives different bytes")]
    NotCanonical,
}

impl LedgerEntry {
    /// The canonical bytes of the entry (RFC 8785 JCS, see the module docs).
    /// These bytes are what the Merkle leaf hash covers.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.kind.len() + self.actor.len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical bytes of the entry to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Keys in sorted order: actor, data, index, kind, policy_hash, subject, time_ms.
        out.extend_from_slice(b"{\"actor\":");
        write_string(out, &self.actor);
        out.extend_from_slice(b",\"data\":");
        write_value(out, &self.data);
        out.extend_from_slice(b",\"index\":");
        out.extend_from_slice(self.index.to_string().as_bytes());
        out.extend_from_slice(b",\"kind\":");
        write_string(out, &self.kind);
        out.extend_from_slice(b",\"policy_hash\":");
        write_string(out, &self.policy_hash);
        out.extend_from_slice(b",\"subject\":");
        write_string(out, &self.subject);
        out.extend_from_slice(b",\"time_ms\":");
        out.extend_from_slice(self.time_ms.to_string().as_bytes());
        out.push(b'}');
    }

    /// Reads an entry back from its canonical bytes, refusing any other
    /// spelling of the same content (so that one entry has exactly one hash).
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        let entry: LedgerEntry = serde_json::from_slice(bytes)?;
        if entry.encode() != bytes {
            return Err(EntryError::NotCanonical);
        }
        Ok(entry)
    }

    /// RFC 6962 leaf hash: `SHA-256(0x00 || encode())`.
    pub fn leaf_hash(&self) -> [u8; 32] {
        crate::merkle::hash_leaf(&self.encode())
    }
}

/// Writes any JSON value in RFC 8785 canonical form.
pub fn write_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // JCS orders keys by UTF-16 code units, which differs from UTF-8
            // byte order only for code points above U+FFFF versus U+E000..U+FFFF.
            // For ASCII keys (the usual case) byte order is the same and cheaper.
            if keys.iter().all(|k| k.is_ascii()) {
                keys.sort_unstable();
            } else {
                keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            }
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, k);
                out.push(b':');
                if let Some(item) = map.get(k) {
                    write_value(out, item);
                }
            }
            out.push(b'}');
        }
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        out.extend_from_slice(es_number(f).as_bytes());
    } else {
        out.extend_from_slice(n.to_string().as_bytes());
    }
}

/// ECMAScript `Number.prototype.toString(10)` for a finite double (ECMA-262
/// §6.1.6.1.20), which RFC 8785 §3.2.2.3 adopts for numbers.
fn es_number(f: f64) -> String {
    if f == 0.0 {
        return "0".to_string();
    }
    if !f.is_finite() {
        // serde_json::Number cannot hold these; keep the encoder total anyway.
        return "null".to_string();
    }
    let neg = f < 0.0;
    // Rust's `{:e}` prints the shortest digits that round-trip: "d.ddde-x".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp + 1; // value = 0.digits * 10^n
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if k <= n && n <= 21 {
        s.push_str(&digits);
        for _ in 0..(n - k) {
            s.push('0');
        }
    } else if 0 < n && n <= 21 {
        s.push_str(&digits[..n as usize]);
        s.push('.');
        s.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        for _ in 0..(-n) {
            s.push('0');
        }
        s.push_str(&digits);
    } else {
        s.push_str(&digits[..1]);
        if k > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if n > 0 { '+' } else { '-' });
        s.push_str(&(n - 1).abs().to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> LedgerEntry {
        LedgerEntry {
            index: 7,
            time_ms: -3,
            kind: "grant.activated".into(),
            actor: "https://idp|alice".into(),
            subject: "req-1".into(),
            policy_hash: "ab".into(),
            data: json!({"z": 1, "a": [true, null, "x\n\u{1}"], "m": {"b": 2.5, "a": -0.0}}),
        }
    }

    #[test]
    fn encoding_is_sorted_compact_and_escaped() {
        let got = String::from_utf8(entry().encode()).unwrap();
        assert_eq!(
            got,
            r#"{"actor":"https://idp|alice","data":{"a":[true,null,"x\n\u0001"],"m":{"a":0,"b":2.5},"z":1},"index":7,"kind":"grant.activated","policy_hash":"ab","subject":"req-1","time_ms":-3}"#
        );
    }

    #[test]
    fn decode_round_trips_and_refuses_other_spellings() {
        let e = entry();
        // -0.0 in `data` reads back as 0: same bytes, same hash.
        assert_eq!(
            LedgerEntry::decode(&e.encode()).unwrap().encode(),
            e.encode()
        );
        let pretty = serde_json::to_vec_pretty(&e).unwrap();
        assert!(matches!(
            LedgerEntry::decode(&pretty),
            Err(EntryError::NotCanonical)
        ));
        assert!(LedgerEntry::decode(b"{").is_err());
    }

    #[test]
    fn numbers_follow_ecmascript() {
        // Cases from RFC 8785 Appendix B and ECMA-262.
        for (f, want) in [
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (123.456, "123.456"),
            (-1.0, "-1"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (333333333.3333333, "333333333.3333333"),
            (9007199254740994.0, "9007199254740994"),
        ] {
            assert_eq!(es_number(f), want, "{f}");
        }
    }

    proptest::proptest! {
        #[test]
        fn encoding_survives_a_trip_through_json_text(f in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL, i in proptest::prelude::any::<i64>(), s in "\\PC{0,16}") {
            // What the store does: `data` to a text column and back.
            let mut e = entry();
            e.data = json!({"f": f, "i": i, "s": s, "nested": [{"f": f / 3.0}]});
            let text = serde_json::to_string(&e.data).unwrap();
            let mut back = e.clone();
            back.data = serde_json::from_str(&text).unwrap();
            proptest::prop_assert_eq!(back.encode(), e.encode());
            proptest::prop_assert_eq!(LedgerEntry::decode(&e.encode()).unwrap().encode(), e.encode());
        }
    }

    #[test]
    fn keys_sort_by_utf16_units() {
        // U+1F600 (surrogates D83D..) sorts before U+FFFF in UTF-16, after it in UTF-8.
        let mut out = Vec::new();
        write_value(&mut out, &json!({"\u{ffff}": 1, "\u{1F600}": 2}));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"\u{1F600}\":2,\"\u{ffff}\":1}"
        );
    }
}
