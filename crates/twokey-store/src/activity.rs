//! What each grant did (migration 0046): the activity records attributed to
//! a grant, bounded per grant, and the counts behind its `grant.activity`
//! digests. The records are an index, not evidence by themselves; the digest
//! written to the ledger when the grant has ended is (see
//! `twokey_core::activity`).

use sqlx::Row;
use twokey_core::activity::{ActivityRecord, ActivitySource};
use twokey_core::{Millis, Request};

use crate::{Store, StoreError};

/// A grant's activity counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityTotals {
    /// The grant.
    pub request_id: String,
    /// Records kept.
    pub kept: i64,
    /// Records beyond the per-grant bound, counted only.
    pub overflow: i64,
    /// `kept + overflow` at the latest digest; -1 before the first.
    pub digested: i64,
    /// The latest digest's ledger index.
    pub digest_index: Option<u64>,
    /// Digests written so far.
    pub revision: i64,
}

/// What [`Store::add_activity`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityAdded {
    /// New records kept.
    pub kept: u64,
    /// Records already kept (same grant, source and event id).
    pub duplicates: u64,
    /// Records beyond the grant's bound: counted, not kept.
    pub overflow: u64,
}

/// Marks a digest as written, in the transaction of its ledger entry
/// ([`crate::Change::activity_digest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityDigestWrite {
    /// The grant.
    pub request_id: String,
    /// `digested` as read: the update is conditional on it, so two
    /// replicas never write the same revision.
    pub expected_digested: i64,
    /// `kept + overflow` the digest covers.
    pub digested: i64,
    /// The digest's revision.
    pub revision: i64,
}

/// Creates the totals row of a grant that has just become active (inside
/// the activation's transaction).
pub(crate) async fn open(tx: &mut sqlx::AnyConnection, request_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grant_activity_totals (request_id, kept, overflow, digested, digest_index, revision) \
         VALUES ($1, 0, 0, -1, NULL, 0) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records a digest as written (see [`ActivityDigestWrite`]).
pub(crate) async fn mark_digested(
    tx: &mut sqlx::AnyConnection,
    w: &ActivityDigestWrite,
    index: u64,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE grant_activity_totals SET digested = $1, digest_index = $2, revision = $3 \
         WHERE request_id = $4 AND digested = $5",
    )
    .bind(w.digested)
    .bind(index as i64)
    .bind(w.revision)
    .bind(&w.request_id)
    .bind(w.expected_digested)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

fn totals_of(r: &sqlx::any::AnyRow) -> Result<ActivityTotals, sqlx::Error> {
    let idx: Option<i64> = r.try_get(4)?;
    Ok(ActivityTotals {
        request_id: r.try_get(0)?,
        kept: r.try_get(1)?,
        overflow: r.try_get(2)?,
        digested: r.try_get(3)?,
        digest_index: idx.and_then(|i| u64::try_from(i).ok()),
        revision: r.try_get(5)?,
    })
}

const RECORD_COLUMNS: &str =
    "request_id, source, event_id, event_time, action, principal, source_ip, location, outcome, detail";

fn record_of(r: &sqlx::any::AnyRow) -> Result<ActivityRecord, StoreError> {
    let source: String = r.try_get(1)?;
    let request_id: String = r.try_get(0)?;
    Ok(ActivityRecord {
        source: ActivitySource::parse(&source).ok_or_else(|| {
            StoreError::Corrupt(request_id.clone(), format!("activity source {source:?}"))
        })?,
        request_id,
        event_id: r.try_get(2)?,
        event_time: r.try_get(3)?,
        action: r.try_get(4)?,
        principal: r.try_get(5)?,
        source_ip: r.try_get(6)?,
        location: r.try_get(7)?,
        outcome: r.try_get(8)?,
        detail: r.try_get(9)?,
    })
}

impl Store {
    /// Files admissible records under their grants in one transaction:
    /// a record already kept is a duplicate; beyond `per_grant` kept
    /// records a grant's records are only counted (`overflow`).
    pub async fn add_activity(
        &self,
        now: Millis,
        submitted_by: &str,
        records: &[ActivityRecord],
        per_grant: i64,
    ) -> Result<ActivityAdded, StoreError> {
        let mut out = ActivityAdded::default();
        let mut tx = self.pool.begin().await?;
        for rec in records {
            // A grant activated before the activity index existed.
            open(&mut tx, &rec.request_id).await?;
            let inserted = sqlx::query(&format!(
                "INSERT INTO grant_activity ({RECORD_COLUMNS}, submitted_by, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (request_id, source, event_id) DO NOTHING"
            ))
            .bind(&rec.request_id)
            .bind(rec.source.as_str())
            .bind(&rec.event_id)
            .bind(rec.event_time)
            .bind(&rec.action)
            .bind(&rec.principal)
            .bind(&rec.source_ip)
            .bind(&rec.location)
            .bind(&rec.outcome)
            .bind(&rec.detail)
            .bind(submitted_by)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                out.duplicates += 1;
                continue;
            }
            // Under the totals row's lock: the bound holds across replicas.
            let counted = sqlx::query(
                "UPDATE grant_activity_totals SET kept = kept + 1 WHERE request_id = $1 AND kept < $2",
            )
            .bind(&rec.request_id)
            .bind(per_grant)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if counted == 1 {
                out.kept += 1;
                continue;
            }
            sqlx::query(
                "DELETE FROM grant_activity WHERE request_id = $1 AND source = $2 AND event_id = $3",
            )
            .bind(&rec.request_id)
            .bind(rec.source.as_str())
            .bind(&rec.event_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE grant_activity_totals SET overflow = overflow + 1 WHERE request_id = $1",
            )
            .bind(&rec.request_id)
            .execute(&mut *tx)
            .await?;
            out.overflow += 1;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// A grant's counts, if it ever was active since the index existed or
    /// got a record.
    pub async fn activity_totals(
        &self,
        request_id: &str,
    ) -> Result<Option<ActivityTotals>, StoreError> {
        let row = sqlx::query(
            "SELECT request_id, kept, overflow, digested, digest_index, revision \
             FROM grant_activity_totals WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(totals_of).transpose()?)
    }

    /// A grant's kept records in time order, at most `limit`.
    pub async fn activity(
        &self,
        request_id: &str,
        limit: i64,
    ) -> Result<Vec<ActivityRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM grant_activity WHERE request_id = $1 \
             ORDER BY event_time, source, event_id LIMIT $2"
        ))
        .bind(request_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_of).collect()
    }

    /// Ended grants whose activity has no digest yet or has changed since
    /// the latest one, with the request (at most `limit`).
    pub async fn activity_to_digest(
        &self,
        limit: i64,
    ) -> Result<Vec<(ActivityTotals, Request)>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.request_id, t.kept, t.overflow, t.digested, t.digest_index, t.revision, r.doc \
             FROM grant_activity_totals t JOIN requests r ON r.id = t.request_id \
             WHERE r.state IN ('expired', 'revoked') AND t.digested <> t.kept + t.overflow \
             ORDER BY t.request_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let totals = totals_of(r)?;
            let doc: String = r.try_get(6)?;
            let req: Request = serde_json::from_str(&doc)
                .map_err(|e| StoreError::Corrupt(totals.request_id.clone(), e.to_string()))?;
            out.push((totals, req));
        }
        Ok(out)
    }
}
