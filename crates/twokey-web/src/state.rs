//! Ceremony state in the store (`twokey_store::web_state`), not in this
//! process: an OpenID Connect login, a security-key ceremony or a
//! `twokey login` code started on one replica finishes on any other.
//! Each is taken once, and only before its time runs out.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use twokey_store::{PutError, WebState};

use crate::AppState;

/// Stores `doc` of `kind` under the browser-held `key`, bound to
/// `session_hash`, for `ttl`. `Err` is a message for the person.
pub(crate) async fn put(
    st: &AppState,
    kind: &str,
    key: &str,
    session_hash: &str,
    doc: &impl Serialize,
    ttl: Duration,
) -> Result<(), String> {
    let doc = serde_json::to_string(doc).map_err(|e| {
        tracing::error!(kind, error = %e, "ceremony state does not serialise");
        "internal error: the sign-in state could not be kept".to_string()
    })?;
    let now = st.broker.now();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let state = WebState {
        session_hash: session_hash.to_string(),
        doc,
        expires_at: now.saturating_add(ttl_ms),
    };
    st.broker
        .store()
        .put_web_state(kind, key, &state, now)
        .await
        .map_err(|e| match e {
            PutError::Full(_) => e.to_string(),
            PutError::Store(e) => {
                tracing::error!(kind, error = %e, "ceremony state could not be stored");
                "the store is unavailable; try again".to_string()
            }
        })
}

/// Takes the state of `kind` under `key` (single use): the session hash it
/// is bound to and its document, or `None` when unknown, used or expired.
pub(crate) async fn take<T: DeserializeOwned>(
    st: &AppState,
    kind: &str,
    key: &str,
) -> Result<Option<(String, T)>, String> {
    let now = st.broker.now();
    let row = st
        .broker
        .store()
        .take_web_state(kind, key, now)
        .await
        .map_err(|e| {
            tracing::error!(kind, error = %e, "ceremony state could not be read");
            "the store is unavailable; try again".to_string()
        })?;
    let Some(row) = row else { return Ok(None) };
    let doc = serde_json::from_str(&row.doc).map_err(|e| {
        tracing::error!(kind, error = %e, "stored ceremony state does not decode");
        "internal error: the stored sign-in state is unreadable; start again".to_string()
    })?;
    Ok(Some((row.session_hash, doc)))
}
