//! The current posture results (migration 0020): what the last scan of
//! `twokey serve`'s posture monitor found, one row per check and resource,
//! so every replica (and the web UI) reads the same, and a replica taking
//! over the monitor compares its scan with the last one, not with nothing.

use sqlx::Row;
use twokey_core::Millis;

use crate::{Store, StoreError};

/// One check's result on one resource, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostureRow {
    /// The check id (`cloudtrail.trail`).
    pub check: String,
    /// The account.
    pub account: String,
    /// The region; empty for global resources.
    pub region: String,
    /// The resource.
    pub resource: String,
    /// The check's severity (`critical`).
    pub severity: String,
    /// `PASS`, `FAIL` or `ERROR`.
    pub status: String,
    /// The finding's sentence.
    pub message: String,
    /// The evidence, JSON.
    pub evidence: String,
    /// When the scan collected it (Unix ms).
    pub scanned_at: Millis,
}

impl Store {
    /// Replaces the posture results with `rows` in one transaction (a reader
    /// sees the whole of one scan or of the other).
    pub async fn replace_posture(&self, rows: &[PostureRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM posture_results")
            .execute(&mut *tx)
            .await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO posture_results (check_id, account, region, resource, severity, status, message, evidence, scanned_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&r.check)
            .bind(&r.account)
            .bind(&r.region)
            .bind(&r.resource)
            .bind(&r.severity)
            .bind(&r.status)
            .bind(&r.message)
            .bind(&r.evidence)
            .bind(r.scanned_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The current posture results, ordered by check, account, region, resource.
    pub async fn posture(&self) -> Result<Vec<PostureRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT check_id, account, region, resource, severity, status, message, evidence, scanned_at \
             FROM posture_results ORDER BY check_id, account, region, resource",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PostureRow {
                    check: r.try_get(0)?,
                    account: r.try_get(1)?,
                    region: r.try_get(2)?,
                    resource: r.try_get(3)?,
                    severity: r.try_get(4)?,
                    status: r.try_get(5)?,
                    message: r.try_get(6)?,
                    evidence: r.try_get(7)?,
                    scanned_at: r.try_get(8)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// The last known status of one GitHub posture check on one repository
/// (migration 0025, written by the GitHub posture watcher).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubPostureState {
    /// The check id (`github.no_bypass`).
    pub check: String,
    /// The repository (`owner/name`) or organisation.
    pub resource: String,
    /// `pass`, `fail`, `error` or `excepted`.
    pub status: String,
    /// When it was judged (Unix ms).
    pub checked_at: Millis,
}

impl Store {
    /// Every GitHub posture state, ordered by check and resource; empty when
    /// the GitHub posture does not run here.
    pub async fn github_posture_states(&self) -> Result<Vec<GithubPostureState>, StoreError> {
        let rows = sqlx::query(
            "SELECT check_id, resource, status, checked_at FROM github_posture_state ORDER BY check_id, resource",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GithubPostureState {
                    check: r.try_get(0)?,
                    resource: r.try_get(1)?,
                    status: r.try_get(2)?,
                    checked_at: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// A GitHub posture restore proposal as stored (`github_restores`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubRestoreRow {
    /// Proposal id.
    pub id: String,
    /// The repository (or organisation).
    pub resource: String,
    /// `open`, `proposed`, `approved`, `applied`, `failed`, `rejected`.
    pub state: String,
    /// The proposal, JSON (the GitHub posture crate's `Proposal`).
    pub doc: String,
    /// When it was opened (Unix ms).
    pub created_at: Millis,
}

impl Store {
    /// The GitHub restore proposals, newest first (at most `limit`).
    pub async fn github_restores(&self, limit: i64) -> Result<Vec<GithubRestoreRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, resource, state, doc, created_at FROM github_restores ORDER BY created_at DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GithubRestoreRow {
                    id: r.try_get(0)?,
                    resource: r.try_get(1)?,
                    state: r.try_get(2)?,
                    doc: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// One write of a GitHub posture restore proposal (`github_restores`),
/// committed in the same transaction as the ledger entry of its step, so a
/// proposal never moves without its evidence nor the evidence without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreWrite {
    /// A new proposal.
    Insert {
        /// Proposal id.
        id: String,
        /// The repository (or organisation).
        resource: String,
        /// Its state (`open`).
        state: String,
        /// The proposal, JSON.
        doc: String,
        /// Its version (0).
        version: i64,
        /// When it was opened.
        created_at: Millis,
    },
    /// The proposal at `expected` replaced; the whole change fails with
    /// [`StoreError::Conflict`] when another writer moved it first.
    Update {
        /// Proposal id.
        id: String,
        /// Its new state.
        state: String,
        /// The proposal, JSON.
        doc: String,
        /// Its new version.
        version: i64,
        /// The version the step was computed from.
        expected: i64,
    },
}

pub(crate) async fn apply_restores(
    tx: &mut sqlx::AnyConnection,
    writes: &[RestoreWrite],
) -> Result<(), StoreError> {
    for w in writes {
        match w {
            RestoreWrite::Insert {
                id,
                resource,
                state,
                doc,
                version,
                created_at,
            } => {
                sqlx::query(
                    "INSERT INTO github_restores (id, resource, state, doc, version, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(resource)
                .bind(state)
                .bind(doc)
                .bind(*version)
                .bind(*created_at)
                .execute(&mut *tx)
                .await?;
            }
            RestoreWrite::Update {
                id,
                state,
                doc,
                version,
                expected,
            } => {
                let done = sqlx::query(
                    "UPDATE github_restores SET state = $1, doc = $2, version = $3 WHERE id = $4 AND version = $5",
                )
                .bind(state)
                .bind(doc)
                .bind(*version)
                .bind(id)
                .bind(*expected)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
            }
        }
    }
    Ok(())
}
