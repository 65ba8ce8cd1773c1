//! Custody rows (migration `0014_custody.sql`): sealed shares, one-time
//! recipients of requests and releases. Writes go through
//! [`crate::Change::custody`], so each lands with its ledger entry in one
//! transaction; the envelopes are opaque age files (base64).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use twokey_core::Millis;

use crate::{Store, StoreError};

/// One custodian's sealed share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRow {
    /// 1-based share index.
    pub index: u8,
    /// Custodian identity key.
    pub custodian: String,
    /// The age recipient it is sealed to.
    pub recipient: String,
    /// The sealed envelope, base64.
    pub envelope: String,
}

/// A sealed secret's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRow {
    /// Secret id.
    pub secret: String,
    /// Current seal generation.
    pub generation: u64,
    /// When it was sealed.
    pub sealed_at: Millis,
    /// Who sealed it.
    pub sealed_by: String,
    /// Released since it was sealed: rotate the secret and seal it again.
    pub needs_rotation: bool,
    /// When it was last released.
    pub released_at: Option<Millis>,
    /// The request it was last released for.
    pub released_for: Option<String>,
}

/// A custody request's one-time recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRow {
    /// Secret id.
    pub secret: String,
    /// Generation the request opens.
    pub generation: u64,
    /// The requester's one-time age recipient.
    pub recipient: String,
}

/// One release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRow {
    /// Share index.
    pub index: u8,
    /// Who released it.
    pub custodian: String,
    /// The envelope sealed to the one-time key, base64.
    pub envelope: String,
    /// When.
    pub released_at: Millis,
}

/// A custody row written in a [`crate::Change`].
#[derive(Debug, Clone)]
pub enum CustodyWrite {
    /// A (re-)sealing: replaces every share, only if the stored generation is
    /// still `generation - 1` (0: never sealed).
    Seal {
        /// Secret id.
        secret: String,
        /// The new generation.
        generation: u64,
        /// Who seals it.
        sealed_by: String,
        /// One per custodian.
        shares: Vec<ShareRow>,
    },
    /// A request's one-time recipient (once).
    Recipient {
        /// Request id.
        request: String,
        /// The row.
        row: RequestRow,
    },
    /// A release for a request; `threshold_reached` marks the secret as
    /// needing rotation.
    Release {
        /// Request id.
        request: String,
        /// Secret id.
        secret: String,
        /// The release.
        row: ReleaseRow,
        /// Whether this release completes the threshold.
        threshold_reached: bool,
    },
}

fn gen_i64(g: u64) -> i64 {
    i64::try_from(g).unwrap_or(i64::MAX)
}

/// Applies custody writes inside the change's transaction.
pub(crate) async fn apply(
    tx: &mut sqlx::AnyConnection,
    now: Millis,
    writes: &[CustodyWrite],
) -> Result<(), StoreError> {
    for w in writes {
        match w {
            CustodyWrite::Seal {
                secret,
                generation,
                sealed_by,
                shares,
            } => {
                let done = if *generation == 1 {
                    sqlx::query("INSERT INTO custody_secrets (secret_id, generation, sealed_at, sealed_by, needs_rotation) SELECT $1, 1, $2, $3, 0 WHERE NOT EXISTS (SELECT 1 FROM custody_secrets WHERE secret_id = $4)")
                        .bind(secret)
                        .bind(now)
                        .bind(sealed_by)
                        .bind(secret)
                        .execute(&mut *tx)
                        .await?
                } else {
                    sqlx::query("UPDATE custody_secrets SET generation = $1, sealed_at = $2, sealed_by = $3, needs_rotation = 0 WHERE secret_id = $4 AND generation = $5")
                        .bind(gen_i64(*generation))
                        .bind(now)
                        .bind(sealed_by)
                        .bind(secret)
                        .bind(gen_i64(generation.saturating_sub(1)))
                        .execute(&mut *tx)
                        .await?
                };
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
                sqlx::query("DELETE FROM custody_shares WHERE secret_id = $1")
                    .bind(secret)
                    .execute(&mut *tx)
                    .await?;
                for s in shares {
                    sqlx::query("INSERT INTO custody_shares (secret_id, generation, share_index, custodian, recipient, envelope) VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(secret)
                        .bind(gen_i64(*generation))
                        .bind(i64::from(s.index))
                        .bind(&s.custodian)
                        .bind(&s.recipient)
                        .bind(&s.envelope)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            CustodyWrite::Recipient { request, row } => {
                let done = sqlx::query("INSERT INTO custody_requests (request_id, secret_id, generation, recipient) SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM custody_requests WHERE request_id = $5)")
                    .bind(request)
                    .bind(&row.secret)
                    .bind(gen_i64(row.generation))
                    .bind(&row.recipient)
                    .bind(request)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
            }
            CustodyWrite::Release {
                request,
                secret,
                row,
                threshold_reached,
            } => {
                let done = sqlx::query("INSERT INTO custody_releases (request_id, share_index, custodian, envelope, released_at) SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM custody_releases WHERE request_id = $6 AND share_index = $7)")
                    .bind(request)
                    .bind(i64::from(row.index))
                    .bind(&row.custodian)
                    .bind(&row.envelope)
                    .bind(row.released_at)
                    .bind(request)
                    .bind(i64::from(row.index))
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
                if *threshold_reached {
                    sqlx::query("UPDATE custody_secrets SET needs_rotation = 1, released_at = $1, released_for = $2 WHERE secret_id = $3")
                        .bind(now)
                        .bind(request)
                        .bind(secret)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
    }
    Ok(())
}

fn u8_of(v: i64) -> u8 {
    u8::try_from(v).unwrap_or(0)
}

impl Store {
    /// A sealed secret's state (`None`: never sealed).
    pub async fn custody_secret(&self, secret: &str) -> Result<Option<SecretRow>, StoreError> {
        let row = sqlx::query("SELECT secret_id, generation, sealed_at, sealed_by, needs_rotation, released_at, released_for FROM custody_secrets WHERE secret_id = $1")
            .bind(secret)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| -> Result<SecretRow, StoreError> {
            Ok(SecretRow {
                secret: r.try_get(0)?,
                generation: u64::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
                sealed_at: r.try_get(2)?,
                sealed_by: r.try_get(3)?,
                needs_rotation: r.try_get::<i64, _>(4)? != 0,
                released_at: r.try_get(5)?,
                released_for: r.try_get(6)?,
            })
        })
        .transpose()
    }

    /// One share of the current generation.
    pub async fn custody_share(
        &self,
        secret: &str,
        index: u8,
    ) -> Result<Option<ShareRow>, StoreError> {
        let row = sqlx::query("SELECT share_index, custodian, recipient, envelope FROM custody_shares WHERE secret_id = $1 AND share_index = $2")
            .bind(secret)
            .bind(i64::from(index))
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| -> Result<ShareRow, StoreError> {
            Ok(ShareRow {
                index: u8_of(r.try_get(0)?),
                custodian: r.try_get(1)?,
                recipient: r.try_get(2)?,
                envelope: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// A custody request's one-time recipient.
    pub async fn custody_request(&self, request: &str) -> Result<Option<RequestRow>, StoreError> {
        let row = sqlx::query(
            "SELECT secret_id, generation, recipient FROM custody_requests WHERE request_id = $1",
        )
        .bind(request)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| -> Result<RequestRow, StoreError> {
            Ok(RequestRow {
                secret: r.try_get(0)?,
                generation: u64::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
                recipient: r.try_get(2)?,
            })
        })
        .transpose()
    }

    /// The releases of a request, by share index.
    pub async fn custody_releases(&self, request: &str) -> Result<Vec<ReleaseRow>, StoreError> {
        let rows = sqlx::query("SELECT share_index, custodian, envelope, released_at FROM custody_releases WHERE request_id = $1 ORDER BY share_index")
            .bind(request)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ReleaseRow {
                    index: u8_of(r.try_get(0)?),
                    custodian: r.try_get(1)?,
                    envelope: r.try_get(2)?,
                    released_at: r.try_get(3)?,
                })
            })
            .collect()
    }
}
