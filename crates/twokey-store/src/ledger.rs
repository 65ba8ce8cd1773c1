//! The only way into the `ledger` table.

use sqlx::{Any, AnyPool, Row, Transaction};
use twokey_ledger::LedgerEntry;

use crate::{Change, StoreError};

/// The ledger's size and Merkle frontier as stored.
#[derive(Debug, Clone)]
pub struct LedgerHead {
    /// Number of entries.
    pub size: u64,
    /// Serialized frontier (hex), empty for an empty log.
    pub frontier: String,
}

/// Appends `change.events` as ledger entries inside `tx`. Must be the first
/// statement of the transaction: updating the head row takes the write lock
/// that orders every append.
pub(crate) async fn append(
    tx: &mut Transaction<'static, Any>,
    change: &Change,
) -> Result<Vec<LedgerEntry>, StoreError> {
    if change.events.is_empty() {
        return Ok(vec![]);
    }
    let n = change.events.len() as i64;
    let row = sqlx::query("UPDATE ledger_head SET size = size + $1 WHERE id = 1 RETURNING size")
        .bind(n)
        .fetch_one(&mut **tx)
        .await?;
    let new_size: i64 = row.try_get(0)?;
    let start = (new_size - n) as u64;
    let mut entries = Vec::with_capacity(change.events.len());
    for (i, (subject, ev)) in change.events.iter().enumerate() {
        let entry = LedgerEntry {
            index: start + i as u64,
            time_ms: change.now,
            kind: ev.kind.clone(),
            actor: ev.actor.clone(),
            subject: subject.clone(),
            policy_hash: change.policy_hash.clone(),
            data: ev.data.clone(),
        };
        let data = serde_json::to_string(&entry.data)
            .map_err(|e| StoreError::Corrupt("ledger".into(), e.to_string()))?;
        sqlx::query(
            "INSERT INTO ledger (idx, time_ms, kind, actor, subject, policy_hash, data, leaf_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.index as i64)
        .bind(entry.time_ms)
        .bind(&entry.kind)
        .bind(&entry.actor)
        .bind(&entry.subject)
        .bind(&entry.policy_hash)
        .bind(data)
        .bind(hex::encode(entry.leaf_hash()))
        .execute(&mut **tx)
        .await?;
        entries.push(entry);
    }
    Ok(entries)
}

fn decode(r: &sqlx::any::AnyRow) -> Result<LedgerEntry, StoreError> {
    let idx: i64 = r.try_get(0)?;
    let data: String = r.try_get(6)?;
    Ok(LedgerEntry {
        index: idx as u64,
        time_ms: r.try_get(1)?,
        kind: r.try_get(2)?,
        actor: r.try_get(3)?,
        subject: r.try_get(4)?,
        policy_hash: r.try_get(5)?,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("ledger entry {idx}"), e.to_string()))?,
    })
}

const COLS: &str = "idx, time_ms, kind, actor, subject, policy_hash, data";

pub(crate) async fn read(
    pool: &AnyPool,
    from: u64,
    limit: i64,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM ledger WHERE idx >= $1 ORDER BY idx LIMIT $2"
    ))
    .bind(from as i64)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn read_subject(
    pool: &AnyPool,
    subject: &str,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM ledger WHERE subject = $1 ORDER BY idx"
    ))
    .bind(subject)
    .fetch_all(pool)
    .await?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn head(pool: &AnyPool) -> Result<LedgerHead, StoreError> {
    let r = sqlx::query("SELECT size, frontier FROM ledger_head WHERE id = 1")
        .fetch_one(pool)
        .await?;
    Ok(LedgerHead {
        size: r.try_get::<i64, _>(0)? as u64,
        frontier: r.try_get(1)?,
    })
}
