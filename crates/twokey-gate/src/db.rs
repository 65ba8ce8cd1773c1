//! The gate's rows in the twokey store (migration `0003_gate.sql`): delivery
//! de-duplication, locks, saved plans and pushers. Ledger events go through
//! [`twokey_store::Store::record`] like every other component's.

use sqlx::Row;
use twokey_core::Millis;
use twokey_store::{Store, StoreError};

/// A lock on one (repository, project, workspace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// Repository.
    pub repo: String,
    /// Project.
    pub project: String,
    /// Workspace.
    pub workspace: String,
    /// Pull request holding it.
    pub pull: u64,
    /// Head commit when taken.
    pub head_sha: String,
    /// Who caused it.
    pub locked_by: String,
}

/// A saved plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// Project.
    pub project: String,
    /// The head commit the plan was made from.
    pub head_sha: String,
    /// Saved plan file.
    pub plan_path: String,
    /// SHA-256 of the plan file when saved.
    pub plan_sha256: String,
    /// `planned`, `failed`, `applied`, `apply_failed`.
    pub status: String,
}

/// Gate storage on top of a [`Store`].
#[derive(Clone)]
pub struct GateDb {
    store: Store,
}

fn pull_i64(pull: u64) -> i64 {
    i64::try_from(pull).unwrap_or(i64::MAX)
}

impl GateDb {
    /// Wraps a store (whose migrations created the gate tables).
    pub fn new(store: Store) -> GateDb {
        GateDb { store }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records a delivery id; `false` if it was seen before (a replay).
    pub async fn first_delivery(
        &self,
        id: &str,
        event: &str,
        repo: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO gate_deliveries (id, event, repo, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(event)
        .bind(repo)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes (or keeps) the lock for `pull`; returns the holder if another
    /// pull request holds it.
    pub async fn lock(&self, lock: &Lock, now: Millis) -> Result<Option<Lock>, StoreError> {
        sqlx::query(
            "INSERT INTO gate_locks (repo, project, workspace, pull, head_sha, locked_by, locked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (repo, project, workspace) DO NOTHING",
        )
        .bind(&lock.repo)
        .bind(&lock.project)
        .bind(&lock.workspace)
        .bind(pull_i64(lock.pull))
        .bind(&lock.head_sha)
        .bind(&lock.locked_by)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        let holder = self
            .lock_holder(&lock.repo, &lock.project, &lock.workspace)
            .await?;
        Ok(holder.filter(|h| h.pull != lock.pull))
    }

    /// Who holds a lock.
    pub async fn lock_holder(
        &self,
        repo: &str,
        project: &str,
        workspace: &str,
    ) -> Result<Option<Lock>, StoreError> {
        let row = sqlx::query(
            "SELECT pull, head_sha, locked_by FROM gate_locks WHERE repo = $1 AND project = $2 AND workspace = $3",
        )
        .bind(repo)
        .bind(project)
        .bind(workspace)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(Lock {
                repo: repo.into(),
                project: project.into(),
                workspace: workspace.into(),
                pull: u64::try_from(r.try_get::<i64, _>(0)?).unwrap_or(0),
                head_sha: r.try_get(1)?,
                locked_by: r.try_get(2)?,
            }),
            None => None,
        })
    }

    /// Releases every lock a pull request holds (merge, close, unlock).
    pub async fn unlock_pull(&self, repo: &str, pull: u64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM gate_locks WHERE repo = $1 AND pull = $2")
            .bind(repo)
            .bind(pull_i64(pull))
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Saves (replaces) the plan of one project of a pull request.
    pub async fn put_plan(
        &self,
        repo: &str,
        pull: u64,
        plan: &PlanRow,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.pool().begin().await?;
        sqlx::query("DELETE FROM gate_plans WHERE repo = $1 AND pull = $2 AND project = $3")
            .bind(repo)
            .bind(pull_i64(pull))
            .bind(&plan.project)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO gate_plans (repo, pull, project, head_sha, plan_path, plan_sha256, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(&plan.project)
        .bind(&plan.head_sha)
        .bind(&plan.plan_path)
        .bind(&plan.plan_sha256)
        .bind(&plan.status)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The saved plans of a pull request.
    pub async fn plans(&self, repo: &str, pull: u64) -> Result<Vec<PlanRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT project, head_sha, plan_path, plan_sha256, status FROM gate_plans WHERE repo = $1 AND pull = $2 ORDER BY project",
        )
        .bind(repo)
        .bind(pull_i64(pull))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PlanRow {
                    project: r.try_get(0)?,
                    head_sha: r.try_get(1)?,
                    plan_path: r.try_get(2)?,
                    plan_sha256: r.try_get(3)?,
                    status: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Marks a plan's status, only if it is still for `head_sha` and in
    /// `from` (so two replicas never both apply it). Returns whether it moved.
    pub async fn move_plan(
        &self,
        repo: &str,
        pull: u64,
        project: &str,
        head_sha: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE gate_plans SET status = $1 WHERE repo = $2 AND pull = $3 AND project = $4 AND head_sha = $5 AND status = $6",
        )
        .bind(to)
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(project)
        .bind(head_sha)
        .bind(from)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Drops every saved plan of a pull request (a new push invalidates them).
    pub async fn drop_plans(&self, repo: &str, pull: u64) -> Result<(), StoreError> {
        for table in ["gate_plans", "gate_plan_files"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE repo = $1 AND pull = $2"
            ))
            .bind(repo)
            .bind(pull_i64(pull))
            .execute(self.store.pool())
            .await?;
        }
        Ok(())
    }

    /// Keeps the saved plan file itself (base64) so another replica can
    /// apply it; replaces the project's earlier one.
    pub async fn put_plan_file(
        &self,
        repo: &str,
        pull: u64,
        project: &str,
        head_sha: &str,
        plan_sha256: &str,
        data_b64: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.store.pool().begin().await?;
        sqlx::query("DELETE FROM gate_plan_files WHERE repo = $1 AND pull = $2 AND project = $3")
            .bind(repo)
            .bind(pull_i64(pull))
            .bind(project)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO gate_plan_files (repo, pull, project, head_sha, plan_sha256, data) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(project)
        .bind(head_sha)
        .bind(plan_sha256)
        .bind(data_b64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The saved plan file of a project for `head_sha`: (SHA-256, base64).
    pub async fn plan_file(
        &self,
        repo: &str,
        pull: u64,
        project: &str,
        head_sha: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT plan_sha256, data FROM gate_plan_files WHERE repo = $1 AND pull = $2 AND project = $3 AND head_sha = $4",
        )
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(project)
        .bind(head_sha)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    /// Remembers who pushed `head_sha` (first writer wins: a later event
    /// cannot rewrite who pushed a commit).
    pub async fn put_pusher(
        &self,
        repo: &str,
        pull: u64,
        head_sha: &str,
        pusher: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gate_pushes (repo, pull, head_sha, pusher, pushed_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (repo, pull, head_sha) DO NOTHING",
        )
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(head_sha)
        .bind(pusher)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Who pushed `head_sha`, if a webhook told us.
    pub async fn pusher(
        &self,
        repo: &str,
        pull: u64,
        head_sha: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT pusher FROM gate_pushes WHERE repo = $1 AND pull = $2 AND head_sha = $3",
        )
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(head_sha)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Claims the drift check of one project if it is due and nobody holds
    /// it: sets a lease until `now + lease_ms`. Returns whether this replica
    /// (`owner`) got it.
    pub async fn claim_drift(
        &self,
        repo: &str,
        project: &str,
        workspace: &str,
        owner: &str,
        now: Millis,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "INSERT INTO gate_drift (repo, project, workspace, next_run) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo, project, workspace) DO NOTHING",
        )
        .bind(repo)
        .bind(project)
        .bind(workspace)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        let done = sqlx::query(
            "UPDATE gate_drift SET lease_owner = $1, lease_until = $2 \
             WHERE repo = $3 AND project = $4 AND workspace = $5 AND next_run <= $6 \
             AND (lease_until IS NULL OR lease_until < $7)",
        )
        .bind(owner)
        .bind(now + lease_ms)
        .bind(repo)
        .bind(project)
        .bind(workspace)
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a drift check this replica holds: releases the lease and sets
    /// the next run. Returns false if the lease had been taken over.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_drift(
        &self,
        repo: &str,
        project: &str,
        workspace: &str,
        owner: &str,
        next_run: Millis,
        sha: &str,
        result: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE gate_drift SET lease_owner = NULL, lease_until = NULL, next_run = $1, last_sha = $2, last_result = $3 \
             WHERE repo = $4 AND project = $5 AND workspace = $6 AND lease_owner = $7",
        )
        .bind(next_run)
        .bind(sha)
        .bind(result)
        .bind(repo)
        .bind(project)
        .bind(workspace)
        .bind(owner)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
