//! Short-lived, single-use state of the web UI's ceremonies (migration
//! 0013): OpenID Connect logins in flight, WebAuthn ceremonies and
//! `twokey login` codes. In the database rather than in one process's
//! memory, so that replicas behind a load balancer need no sticky sessions.
//!
//! A row is found by the SHA-256 of its kind and the value the browser holds
//! (state, ceremony id, code), is bound to a session hash, expires, and is
//! taken at most once: `take` deletes it and only the caller whose delete
//! removed the row gets it, on any replica.

use sqlx::Row;
use twokey_core::Millis;

use crate::{Store, StoreError};

/// Most rows of one kind in flight; more are refused (a flood of started
/// logins must not fill the database).
pub const MAX_IN_FLIGHT: i64 = 10_000;

/// A ceremony's state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebState {
    /// Hash of the session it is bound to (empty when none, as for logins).
    pub session_hash: String,
    /// The state itself, JSON.
    pub doc: String,
    /// When it stops being usable, Unix ms.
    pub expires_at: Millis,
}

/// Why a state could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// Too many of this kind in flight.
    #[error("too many {0} in progress; try again later")]
    Full(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn key_hash(kind: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(
        format!("twokey-web-state:{kind}:{key}").as_bytes(),
    ))
}

impl Store {
    /// Stores `state` of `kind` under the browser-held `key`, after dropping
    /// expired rows. Refuses when [`MAX_IN_FLIGHT`] of the kind are live.
    pub async fn put_web_state(
        &self,
        kind: &str,
        key: &str,
        state: &WebState,
        now: Millis,
    ) -> Result<(), PutError> {
        sqlx::query("DELETE FROM web_state WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        let live: i64 = sqlx::query("SELECT COUNT(*) FROM web_state WHERE kind = $1")
            .bind(kind)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from)?
            .try_get(0)
            .map_err(StoreError::from)?;
        if live >= MAX_IN_FLIGHT {
            return Err(PutError::Full(kind.to_string()));
        }
        sqlx::query(
            "INSERT INTO web_state (key_hash, kind, session_hash, doc, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key_hash(kind, key))
        .bind(kind)
        .bind(&state.session_hash)
        .bind(&state.doc)
        .bind(state.expires_at)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }

    /// Takes (deletes and returns) the state of `kind` under `key`, if it
    /// exists and has not expired. Single use across replicas: of two
    /// concurrent takers, one gets it.
    pub async fn take_web_state(
        &self,
        kind: &str,
        key: &str,
        now: Millis,
    ) -> Result<Option<WebState>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM web_state WHERE key_hash = $1 AND kind = $2 RETURNING session_hash, doc, expires_at",
        )
        .bind(key_hash(kind, key))
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let state = WebState {
            session_hash: row.try_get(0)?,
            doc: row.try_get(1)?,
            expires_at: row.try_get(2)?,
        };
        Ok((state.expires_at > now).then_some(state))
    }
}
