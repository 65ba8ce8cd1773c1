//! The gate's rows in the twokey store (migrations `0003_gate.sql`,
//! `0010_gate_drift.sql`, `0012_gate.sql`): deliveries and their leases,
//! locks, saved plans and their claims, pushers, drift leases. Ledger events
//! go through [`twokey_store::Store::record`] like every other component's.

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

/// Where a saved plan is: `planned → applying → applied | apply_failed`
/// (or back to `planned` when its apply never started); `failed` when the
/// plan itself failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanState {
    /// Planned successfully: may be applied.
    Planned,
    /// The plan failed: nothing to apply.
    Failed,
    /// Claimed by a worker that is applying it.
    Applying,
    /// Applied.
    Applied,
    /// The apply failed (or did not finish): plan again.
    ApplyFailed,
}

impl PlanState {
    /// Every state.
    pub const ALL: [PlanState; 5] = [
        PlanState::Planned,
        PlanState::Failed,
        PlanState::Applying,
        PlanState::Applied,
        PlanState::ApplyFailed,
    ];

    /// The name stored in `gate_plans.status` (and the ledger).
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Planned => "planned",
            PlanState::Failed => "failed",
            PlanState::Applying => "applying",
            PlanState::Applied => "applied",
            PlanState::ApplyFailed => "apply_failed",
        }
    }

    /// The state of a stored name; `None` for anything else.
    pub fn parse(s: &str) -> Option<PlanState> {
        PlanState::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for PlanState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// Its state.
    pub status: PlanState,
    /// The webhook delivery that made the plan or last claimed it.
    pub delivery: Option<String>,
}

/// What [`GateDb::begin_delivery`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStart {
    /// A delivery never seen: this worker holds it.
    New,
    /// A delivery whose earlier attempt did not finish (its worker died or
    /// could not record its work): this worker holds it now.
    Resumed {
        /// Attempts including this one.
        attempts: i64,
    },
    /// Its work is done and recorded: a replay.
    Done,
    /// Another live worker holds it.
    InProgress,
}

/// A plan left in `applying` whose claim lapsed: an interrupted apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckPlan {
    /// Repository.
    pub repo: String,
    /// Pull request.
    pub pull: u64,
    /// The plan.
    pub plan: PlanRow,
    /// The claim it had (compare-and-set when taking it over).
    pub claim_owner: Option<String>,
}

/// A delivery left unfinished (not done, lease lapsed), not yet alerted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleDelivery {
    /// Delivery id.
    pub id: String,
    /// Event name.
    pub event: String,
    /// Repository.
    pub repo: String,
    /// `working` (its worker died) or `failed` (its evidence was not recorded).
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
}

/// Gate storage on top of a [`Store`].
#[derive(Clone)]
pub struct GateDb {
    store: Store,
}

fn pull_i64(pull: u64) -> i64 {
    i64::try_from(pull).unwrap_or(i64::MAX)
}

/// A [`PlanRow`] from columns `at..at + 6` (project, head_sha, plan_path,
/// plan_sha256, status, delivery).
fn plan_row(r: &sqlx::any::AnyRow, at: usize) -> Result<PlanRow, StoreError> {
    Ok(PlanRow {
        project: r.try_get(at)?,
        head_sha: r.try_get(at + 1)?,
        plan_path: r.try_get(at + 2)?,
        plan_sha256: r.try_get(at + 3)?,
        status: {
            let s: String = r.try_get(at + 4)?;
            PlanState::parse(&s).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown gate plan status {s:?}").into())
            })?
        },
        delivery: r.try_get(at + 5)?,
    })
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

    /// Starts work on a delivery for `owner` with a lease until
    /// `now + lease_ms`: a new id is inserted as `working`; a known one that
    /// is not done and whose lease lapsed is taken over (resumed).
    pub async fn begin_delivery(
        &self,
        id: &str,
        event: &str,
        repo: &str,
        owner: &str,
        now: Millis,
        lease_ms: i64,
    ) -> Result<DeliveryStart, StoreError> {
        let done = sqlx::query(
            "INSERT INTO gate_deliveries (id, event, repo, received_at, status, lease_owner, lease_until, attempts) \
             VALUES ($1, $2, $3, $4, 'working', $5, $6, 1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(event)
        .bind(repo)
        .bind(now)
        .bind(owner)
        .bind(now + lease_ms)
        .execute(self.store.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(DeliveryStart::New);
        }
        let taken = sqlx::query(
            "UPDATE gate_deliveries SET status = 'working', lease_owner = $1, lease_until = $2, attempts = attempts + 1, alerted_at = NULL \
             WHERE id = $3 AND status <> 'done' AND (lease_until IS NULL OR lease_until < $4) RETURNING attempts",
        )
        .bind(owner)
        .bind(now + lease_ms)
        .bind(id)
        .bind(now)
        .fetch_optional(self.store.pool())
        .await?;
        if let Some(r) = taken {
            return Ok(DeliveryStart::Resumed {
                attempts: r.try_get(0)?,
            });
        }
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM gate_deliveries WHERE id = $1")
                .bind(id)
                .fetch_optional(self.store.pool())
                .await?;
        Ok(match status.as_deref() {
            Some("done") => DeliveryStart::Done,
            _ => DeliveryStart::InProgress,
        })
    }

    /// Extends the lease of a delivery `owner` works on, and the claims of
    /// the plans it is applying. Returns whether the delivery lease was
    /// still `owner`'s.
    pub async fn renew_delivery(
        &self,
        id: &str,
        owner: &str,
        until: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE gate_deliveries SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'working'",
        )
        .bind(until)
        .bind(id)
        .bind(owner)
        .execute(self.store.pool())
        .await?;
        sqlx::query(
            "UPDATE gate_plans SET claim_until = $1 WHERE claim_owner = $2 AND status = 'applying'",
        )
        .bind(until)
        .bind(owner)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends `owner`'s work on a delivery: `done` when all of it is recorded,
    /// else `failed` (a redelivery resumes it at once). The lease is
    /// released either way, and so are the claims of plans it left in
    /// `applying` (the recovery pass resolves those).
    pub async fn finish_delivery(
        &self,
        id: &str,
        owner: &str,
        now: Millis,
        complete: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE gate_deliveries SET status = $1, finished_at = $2, lease_owner = NULL, lease_until = NULL \
             WHERE id = $3 AND lease_owner = $4",
        )
        .bind(if complete { "done" } else { "failed" })
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(self.store.pool())
        .await?;
        self.release_claims(owner).await
    }

    /// Releases the claims `owner` holds on plans in `applying`, so the
    /// recovery pass may resolve them.
    pub async fn release_claims(&self, owner: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE gate_plans SET claim_until = NULL WHERE claim_owner = $1 AND status = 'applying'")
            .bind(owner)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Deliveries left unfinished (not done, lease lapsed) that were not
    /// alerted on yet.
    pub async fn stale_deliveries(&self, now: Millis) -> Result<Vec<StaleDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event, repo, status, attempts FROM gate_deliveries \
             WHERE status <> 'done' AND (lease_until IS NULL OR lease_until < $1) AND alerted_at IS NULL ORDER BY received_at LIMIT 100",
        )
        .bind(now)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StaleDelivery {
                    id: r.try_get(0)?,
                    event: r.try_get(1)?,
                    repo: r.try_get(2)?,
                    status: r.try_get(3)?,
                    attempts: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Notes that a stale delivery was alerted on (once per attempt).
    pub async fn delivery_alerted(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        sqlx::query("UPDATE gate_deliveries SET alerted_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.store.pool())
            .await?;
        Ok(())
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
            "INSERT INTO gate_plans (repo, pull, project, head_sha, plan_path, plan_sha256, status, created_at, delivery) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(&plan.project)
        .bind(&plan.head_sha)
        .bind(&plan.plan_path)
        .bind(&plan.plan_sha256)
        .bind(plan.status.as_str())
        .bind(now)
        .bind(&plan.delivery)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The saved plans of a pull request.
    pub async fn plans(&self, repo: &str, pull: u64) -> Result<Vec<PlanRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT project, head_sha, plan_path, plan_sha256, status, delivery FROM gate_plans WHERE repo = $1 AND pull = $2 ORDER BY project",
        )
        .bind(repo)
        .bind(pull_i64(pull))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(|r| plan_row(r, 0)).collect()
    }

    /// Marks a plan's status, only if it is still for `head_sha` and in
    /// `from` (so two replicas never both apply it). Returns whether it moved.
    /// Moves out of `applying` go through [`GateDb::settle_plan`].
    pub async fn move_plan(
        &self,
        repo: &str,
        pull: u64,
        project: &str,
        head_sha: &str,
        from: PlanState,
        to: PlanState,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE gate_plans SET status = $1 WHERE repo = $2 AND pull = $3 AND project = $4 AND head_sha = $5 AND status = $6",
        )
        .bind(to.as_str())
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(project)
        .bind(head_sha)
        .bind(from.as_str())
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims a `planned` plan for applying: `planned → applying`, held by
    /// `owner` (working on `delivery`) until `until`. Only one claim
    /// succeeds, so two comments or replicas never apply a plan twice.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_plan(
        &self,
        repo: &str,
        pull: u64,
        project: &str,
        head_sha: &str,
        delivery: &str,
        owner: &str,
        until: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE gate_plans SET status = 'applying', delivery = $1, claim_owner = $2, claim_until = $3 \
             WHERE repo = $4 AND pull = $5 AND project = $6 AND head_sha = $7 AND status = 'planned'",
        )
        .bind(delivery)
        .bind(owner)
        .bind(until)
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(project)
        .bind(head_sha)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves a plan out of `applying` (to `applied`, `apply_failed`, or back
    /// to `planned`), only while `owner` holds its claim. Returns whether it
    /// moved.
    pub async fn settle_plan(
        &self,
        repo: &str,
        pull: u64,
        project: &str,
        head_sha: &str,
        owner: &str,
        to: PlanState,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE gate_plans SET status = $1, claim_owner = NULL, claim_until = NULL \
             WHERE repo = $2 AND pull = $3 AND project = $4 AND head_sha = $5 AND status = 'applying' AND claim_owner = $6",
        )
        .bind(to.as_str())
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(project)
        .bind(head_sha)
        .bind(owner)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Plans in `applying` whose claim lapsed (their worker died or gave
    /// up), of one pull request or of all.
    pub async fn stuck_plans(
        &self,
        now: Millis,
        only: Option<(&str, u64)>,
    ) -> Result<Vec<StuckPlan>, StoreError> {
        let (repo, pull) = only.map(|(r, p)| (r, pull_i64(p))).unwrap_or(("", -1));
        let rows = sqlx::query(
            "SELECT project, head_sha, plan_path, plan_sha256, status, delivery, repo, pull, claim_owner FROM gate_plans \
             WHERE status = 'applying' AND (claim_until IS NULL OR claim_until < $1) AND ($2 = '' OR (repo = $3 AND pull = $4)) \
             ORDER BY repo, pull, project",
        )
        .bind(now)
        .bind(repo)
        .bind(repo)
        .bind(pull)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StuckPlan {
                    plan: plan_row(r, 0)?,
                    repo: r.try_get(6)?,
                    pull: u64::try_from(r.try_get::<i64, _>(7)?).unwrap_or(0),
                    claim_owner: r.try_get(8)?,
                })
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    /// Takes over the claim of a stuck plan for `owner` until `until`, if it
    /// is still stuck with the claim `previous` (one replica wins).
    pub async fn take_over_plan(
        &self,
        repo: &str,
        pull: u64,
        stuck: &PlanRow,
        previous: Option<&str>,
        owner: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE gate_plans SET claim_owner = $1, claim_until = $2 \
             WHERE repo = $3 AND pull = $4 AND project = $5 AND head_sha = $6 AND status = 'applying' \
             AND (claim_until IS NULL OR claim_until < $7) AND COALESCE(claim_owner, '') = $8",
        )
        .bind(owner)
        .bind(until)
        .bind(repo)
        .bind(pull_i64(pull))
        .bind(&stuck.project)
        .bind(&stuck.head_sha)
        .bind(now)
        .bind(previous.unwrap_or(""))
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
