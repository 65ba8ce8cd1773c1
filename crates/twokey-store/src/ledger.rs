//! The only way into the `ledger` table.

use sqlx::{AnyPool, Row};
use twokey_ledger::{Frontier, Hash, LedgerEntry};

use crate::{Change, StoreError};

/// The ledger's size and Merkle frontier as stored.
#[derive(Debug, Clone)]
pub struct LedgerHead {
    /// Number of entries.
    pub size: u64,
    /// Serialized frontier (hex), empty for an empty log.
    pub frontier: String,
}

/// Rows per multi-row INSERT: 8 parameters each stays far below the
/// parameter limits of SQLite (32,766) and PostgreSQL (65,535).
const INSERT_CHUNK: usize = 500;

/// Reads a stored frontier (hex of [`Frontier::to_bytes`], empty for none).
pub(crate) fn parse_frontier(text: &str) -> Result<Frontier, StoreError> {
    if text.is_empty() {
        return Ok(Frontier::new());
    }
    let bytes = hex::decode(text)
        .map_err(|e| StoreError::Corrupt("ledger_head.frontier".into(), e.to_string()))?;
    Frontier::from_bytes(&bytes)
        .map_err(|e| StoreError::Corrupt("ledger_head.frontier".into(), e.to_string()))
}

/// The ledger's head inside one group-commit transaction: read (and locked)
/// once at the start, entries staged in memory change by change, and the
/// rows, size and frontier written once per batch by [`Staged::flush`].
pub(crate) struct Staged {
    /// Entries in the table before this batch.
    start: u64,
    frontier: Frontier,
    /// (entry, data as JSON text, leaf hash hex) of the staged entries.
    rows: Vec<(LedgerEntry, String, String)>,
}

/// Where [`Staged`] was before a change, to undo that change's entries.
pub(crate) struct Mark {
    frontier: Frontier,
    rows: usize,
}

impl Staged {
    /// Takes the ledger head: the first statement of the transaction, so it
    /// serialises every state change and fixes the entries' indexes.
    pub(crate) async fn open(tx: &mut sqlx::AnyConnection) -> Result<Staged, StoreError> {
        let row =
            sqlx::query("UPDATE ledger_head SET size = size WHERE id = 1 RETURNING size, frontier")
                .fetch_one(&mut *tx)
                .await?;
        let size: i64 = row.try_get(0)?;
        let frontier = parse_frontier(&row.try_get::<String, _>(1)?)?;
        if frontier.size() != size as u64 {
            return Err(StoreError::Corrupt(
                "ledger_head".into(),
                format!(
                    "frontier covers {} entries but the head says {size}",
                    frontier.size()
                ),
            ));
        }
        Ok(Staged {
            start: size as u64,
            frontier,
            rows: Vec::new(),
        })
    }

    /// The state before the next change.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            frontier: self.frontier.clone(),
            rows: self.rows.len(),
        }
    }

    /// Forgets the entries staged since `mark` (their change rolled back).
    pub(crate) fn rewind(&mut self, mark: Mark) {
        self.frontier = mark.frontier;
        self.rows.truncate(mark.rows);
    }

    /// Stages the entries of `change` at the next indexes and returns them.
    pub(crate) fn stage(&mut self, change: &Change) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut entries = Vec::with_capacity(change.events.len());
        for (subject, ev) in &change.events {
            let entry = LedgerEntry {
                index: self.frontier.size(),
                time_ms: change.now,
                kind: ev.kind.clone(),
                actor: ev.actor.clone(),
                subject: subject.clone(),
                policy_hash: change.policy_hash.clone(),
                data: ev.data.clone(),
            };
            let data = serde_json::to_string(&entry.data)
                .map_err(|e| StoreError::Corrupt("ledger".into(), e.to_string()))?;
            let leaf = entry.leaf_hash();
            self.frontier.push(leaf);
            self.rows.push((entry.clone(), data, hex::encode(leaf)));
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Writes the staged rows (multi-row INSERTs of up to [`INSERT_CHUNK`])
    /// and the new head (size and frontier) in one statement.
    pub(crate) async fn flush(self, tx: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        for chunk in self.rows.chunks(INSERT_CHUNK) {
            let mut sql = String::from(
                "INSERT INTO ledger (idx, time_ms, kind, actor, subject, policy_hash, data, leaf_hash) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                ));
            }
            let mut q = sqlx::query(&sql);
            for (entry, data, leaf) in chunk {
                q = q
                    .bind(entry.index as i64)
                    .bind(entry.time_ms)
                    .bind(entry.kind.clone())
                    .bind(entry.actor.clone())
                    .bind(entry.subject.clone())
                    .bind(entry.policy_hash.clone())
                    .bind(data.clone())
                    .bind(leaf.clone());
            }
            q.execute(&mut *tx).await?;
        }
        debug_assert_eq!(self.frontier.size(), self.start + self.rows.len() as u64);
        sqlx::query("UPDATE ledger_head SET size = $1, frontier = $2 WHERE id = 1")
            .bind(self.frontier.size() as i64)
            .bind(hex::encode(self.frontier.to_bytes()))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
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

/// The ledger's size and Merkle root, read together from the head row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerRoot {
    /// Number of committed entries.
    pub size: u64,
    /// RFC 6962 root of those entries.
    pub root: Hash,
}

pub(crate) async fn root(pool: &AnyPool) -> Result<LedgerRoot, StoreError> {
    let h = head(pool).await?;
    let f = parse_frontier(&h.frontier)?;
    if f.size() != h.size {
        return Err(StoreError::Corrupt(
            "ledger_head".into(),
            format!(
                "frontier covers {} entries but the head says {}",
                f.size(),
                h.size
            ),
        ));
    }
    Ok(LedgerRoot {
        size: h.size,
        root: f.root(),
    })
}

/// One ledger row exactly as stored, for auditors: nothing is decoded or
/// trusted (the `leaf_hash` column is returned only to be compared).
#[derive(Debug, Clone)]
pub struct RawLedgerRow {
    /// `idx` column.
    pub idx: i64,
    /// `time_ms` column.
    pub time_ms: i64,
    /// `kind` column.
    pub kind: String,
    /// `actor` column.
    pub actor: String,
    /// `subject` column.
    pub subject: String,
    /// `policy_hash` column.
    pub policy_hash: String,
    /// `data` column (JSON text).
    pub data: String,
    /// `leaf_hash` column (hex), as stored.
    pub leaf_hash: String,
}

impl RawLedgerRow {
    /// Rebuilds the entry from the row's columns (the hash is then computed
    /// from the entry, never taken from `leaf_hash`).
    pub fn to_entry(&self) -> Result<LedgerEntry, String> {
        let index = u64::try_from(self.idx).map_err(|_| format!("idx {} is negative", self.idx))?;
        let data = serde_json::from_str(&self.data)
            .map_err(|e| format!("data column is not JSON ({e})"))?;
        Ok(LedgerEntry {
            index,
            time_ms: self.time_ms,
            kind: self.kind.clone(),
            actor: self.actor.clone(),
            subject: self.subject.clone(),
            policy_hash: self.policy_hash.clone(),
            data,
        })
    }
}

pub(crate) async fn read_raw(
    pool: &AnyPool,
    from: i64,
    limit: i64,
) -> Result<Vec<RawLedgerRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT idx, time_ms, kind, actor, subject, policy_hash, data, leaf_hash FROM ledger \
         WHERE idx >= $1 ORDER BY idx LIMIT $2",
    )
    .bind(from)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RawLedgerRow {
                idx: r.try_get(0)?,
                time_ms: r.try_get(1)?,
                kind: r.try_get(2)?,
                actor: r.try_get(3)?,
                subject: r.try_get(4)?,
                policy_hash: r.try_get(5)?,
                data: r.try_get(6)?,
                leaf_hash: r.try_get(7)?,
            })
        })
        .collect()
}

/// A stored signed checkpoint and its publication state.
#[derive(Debug, Clone)]
pub struct CheckpointRow {
    /// Tree size.
    pub size: u64,
    /// Signed-note text.
    pub note: String,
    /// When it was signed (Unix ms).
    pub created_at: i64,
    /// When every sink accepted its bundle.
    pub published_at: Option<i64>,
    /// Failed publish attempts so far.
    pub publish_attempts: i64,
    /// Earliest time of the next publish attempt (Unix ms).
    pub next_attempt: i64,
    /// Last publish error.
    pub last_error: Option<String>,
}

const CP_COLS: &str =
    "size, note, created_at, published_at, publish_attempts, next_attempt, last_error";

fn decode_cp(r: &sqlx::any::AnyRow) -> Result<CheckpointRow, StoreError> {
    Ok(CheckpointRow {
        size: r.try_get::<i64, _>(0)? as u64,
        note: r.try_get(1)?,
        created_at: r.try_get(2)?,
        published_at: r.try_get(3)?,
        publish_attempts: r.try_get(4)?,
        next_attempt: r.try_get(5)?,
        last_error: r.try_get(6)?,
    })
}

/// Under the ledger head's lock (so no append runs meanwhile and no other
/// replica signs concurrently): if the log has grown past the latest stored
/// checkpoint, `sign(size, root)` makes the note and it is stored. Returns
/// the new checkpoint's size, or `None` when there was nothing to sign.
pub(crate) async fn create_checkpoint(
    pool: &AnyPool,
    now: i64,
    min_new: u64,
    sign: impl FnOnce(u64, Hash) -> String,
) -> Result<Option<u64>, StoreError> {
    let mut tx = pool.begin().await?;
    let row =
        sqlx::query("UPDATE ledger_head SET size = size WHERE id = 1 RETURNING size, frontier")
            .fetch_one(&mut *tx)
            .await?;
    let size = row.try_get::<i64, _>(0)? as u64;
    let frontier = parse_frontier(&row.try_get::<String, _>(1)?)?;
    if frontier.size() != size {
        return Err(StoreError::Corrupt(
            "ledger_head".into(),
            format!(
                "frontier covers {} entries but the head says {size}",
                frontier.size()
            ),
        ));
    }
    let latest: Option<i64> = sqlx::query("SELECT MAX(size) FROM checkpoints")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let latest = latest.map(|l| l as u64);
    let grown = match latest {
        Some(l) => size > l && size - l >= min_new.max(1),
        None => size > 0 && size >= min_new.max(1),
    };
    if !grown {
        tx.rollback().await?;
        return Ok(None);
    }
    let note = sign(size, frontier.root());
    let done = sqlx::query(
        "INSERT INTO checkpoints (size, note, created_at, publish_attempts, next_attempt) \
         VALUES ($1, $2, $3, 0, $3) ON CONFLICT (size) DO NOTHING",
    )
    .bind(size as i64)
    .bind(note)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((done.rows_affected() == 1).then_some(size))
}

pub(crate) async fn checkpoints(pool: &AnyPool) -> Result<Vec<CheckpointRow>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {CP_COLS} FROM checkpoints ORDER BY size"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode_cp).collect()
}

pub(crate) async fn unpublished(pool: &AnyPool) -> Result<Vec<CheckpointRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {CP_COLS} FROM checkpoints WHERE published_at IS NULL ORDER BY size"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(decode_cp).collect()
}

pub(crate) async fn previous_checkpoint_size(pool: &AnyPool, size: u64) -> Result<u64, StoreError> {
    let prev: Option<i64> = sqlx::query("SELECT MAX(size) FROM checkpoints WHERE size < $1")
        .bind(size as i64)
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    Ok(prev.map_or(0, |p| p as u64))
}

pub(crate) async fn publish_result(
    pool: &AnyPool,
    size: u64,
    now: i64,
    error: Option<&str>,
    retry_at: i64,
) -> Result<i64, StoreError> {
    let row = match error {
        None => sqlx::query(
            "UPDATE checkpoints SET published_at = $1, last_error = NULL WHERE size = $2 RETURNING publish_attempts",
        )
        .bind(now)
        .bind(size as i64)
        .fetch_optional(pool)
        .await?,
        Some(e) => sqlx::query(
            "UPDATE checkpoints SET publish_attempts = publish_attempts + 1, last_error = $1, next_attempt = $2 \
             WHERE size = $3 RETURNING publish_attempts",
        )
        .bind(e)
        .bind(retry_at)
        .bind(size as i64)
        .fetch_optional(pool)
        .await?,
    };
    Ok(row
        .map(|r| r.try_get::<i64, _>(0))
        .transpose()?
        .unwrap_or(0))
}
