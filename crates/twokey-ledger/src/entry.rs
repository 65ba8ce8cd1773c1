//! A ledger entry and its canonical encoding.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One event in the ledger: a request, review, grant, revocation, policy change,
/// login or alert. `index` is its position in the log (0-based, contiguous).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl LedgerEntry {
    /// The canonical bytes of the entry: JSON with keys sorted, no insignificant
    /// whitespace. These bytes are what the Merkle leaf hash covers.
    pub fn encode(&self) -> Vec<u8> {
        // serde_json::Value's map is a BTreeMap (no `preserve_order` feature), so
        // converting through Value sorts every object's keys.
        let v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// RFC 6962 leaf hash: `SHA-256(0x00 || encode())`.
    pub fn leaf_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(self.encode());
        h.finalize().into()
    }
}
