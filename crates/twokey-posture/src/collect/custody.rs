//! The secrets under custody in twokey, as posture facts: declared in the
//! policy (`[[custody]]`), with their sealing state when read from the twokey
//! server (`twokey --json custody secrets`, i.e. `GET /v1/custody/secrets`).

use anyhow::Context;
use serde::Deserialize;

use crate::facts::{CustodyFact, CustodyState};

/// An identity key as the API writes it.
#[derive(Deserialize)]
struct Key {
    issuer: String,
    subject: String,
}

impl Key {
    fn text(&self) -> String {
        format!("{}|{}", self.issuer, self.subject)
    }
}

#[derive(Deserialize)]
struct ApiCustodian {
    key: Key,
}

/// One element of `GET /v1/custody/secrets`.
#[derive(Deserialize)]
struct ApiSecret {
    id: String,
    account: String,
    kind: String,
    threshold: u32,
    custodians: Vec<ApiCustodian>,
    #[serde(default)]
    held_apart_from: Vec<Key>,
    generation: u64,
    needs_rotation: bool,
    #[serde(default)]
    sealed_at: Option<i64>,
    #[serde(default)]
    released_at: Option<i64>,
    #[serde(default)]
    released_for: Option<String>,
}

/// The custody facts in the JSON the twokey server answers
/// (`twokey --json custody secrets`), declarations and state.
pub fn from_server_json(text: &str, file: &str) -> anyhow::Result<Vec<CustodyFact>> {
    let list: Vec<ApiSecret> = serde_json::from_str(text).with_context(|| {
        format!("{file}: not the custody list of `twokey --json custody secrets`")
    })?;
    Ok(list
        .into_iter()
        .map(|s| CustodyFact {
            secret: s.id,
            account: s.account,
            kind: s.kind,
            threshold: s.threshold,
            custodians: s.custodians.iter().map(|c| c.key.text()).collect(),
            held_apart_from: s.held_apart_from.iter().map(Key::text).collect(),
            state: Some(CustodyState {
                generation: s.generation,
                needs_rotation: s.needs_rotation,
                sealed_at_ms: s.sealed_at,
                released_at_ms: s.released_at,
                released_for: s.released_for,
            }),
        })
        .collect())
}

/// The custody declarations of a policy, their state unknown.
pub fn from_policy(policy: &twokey_core::Policy) -> Vec<CustodyFact> {
    policy
        .custody
        .values()
        .map(|s| CustodyFact {
            secret: s.id.clone(),
            account: s.account.clone(),
            kind: s.kind.as_str().to_string(),
            threshold: s.threshold,
            custodians: s.custodians.iter().map(|c| c.key.to_string()).collect(),
            held_apart_from: s.held_apart_from.iter().map(|k| k.to_string()).collect(),
            state: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_servers_answer_and_refuses_junk() {
        let text = r#"[{"id": "root-prod", "account": "111122223333", "kind": "password", "threshold": 2,
            "custodians": [{"name": "carol", "key": {"issuer": "twokey", "subject": "carol"}, "recipient": "age1x"},
                           {"name": "dave", "key": {"issuer": "twokey", "subject": "dave"}, "recipient": "age1y"}],
            "held_apart_from": [{"issuer": "twokey", "subject": "frank"}], "line": 12,
            "generation": 1, "needs_rotation": true, "sealed_at": 5, "released_at": 9, "released_for": "req-1"}]"#;
        let f = from_server_json(text, "c.json").expect("parses");
        assert_eq!(f[0].custodians, ["twokey|carol", "twokey|dave"]);
        assert_eq!(f[0].held_apart_from, ["twokey|frank"]);
        let s = f[0].state.as_ref().expect("state");
        assert!(s.needs_rotation && s.released_for.as_deref() == Some("req-1"));
        let e = from_server_json("{}", "c.json").expect_err("junk");
        assert!(e.to_string().contains("c.json"), "{e}");
    }
}
