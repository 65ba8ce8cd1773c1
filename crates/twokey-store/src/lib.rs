//! Storage for twokey: embedded SQLite by default, PostgreSQL by URL, through
//! one migrations history (`migrations/`) that both run.
//!
//! Architecture invariants enforced here:
//! - Every state change goes through [`Store::commit`], which writes the
//!   change and its ledger entries in one transaction. If the ledger cannot be
//!   written, the transaction fails and nothing changes (fail closed).
//! - [`Store::commit`] is the only code that inserts into the `ledger` table.
//! - Request updates are conditional on the version the caller read
//!   (optimistic concurrency), so two replicas or two racing reviewers can
//!   never both move the same request: the loser gets [`StoreError::Conflict`].
//! - Ledger appends are serialised by the `ledger_head` row, which every
//!   transaction updates first: entry indexes are contiguous and in commit order.

pub mod activity;
pub mod custody;
pub mod directory;
mod ledger;
mod posture;
pub mod slack;
pub mod testing;
pub mod web_state;

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};
use twokey_core::{Actor, Event, Millis, Proposal, Request, State};
use twokey_ledger::LedgerEntry;

pub use ledger::{CheckpointRow, LedgerHead, LedgerRoot, RawLedgerRow};
pub use posture::{GithubPostureState, GithubRestoreRow, PostureRow, RestoreWrite};
pub use slack::SlackMessageRow;
pub use web_state::{PutError, WebState};

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the row since it was read; reload and retry.
    #[error("the request changed while you were acting on it; reload and try again")]
    Conflict,
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored document did not decode.
    #[error("corrupt stored record {0}: {1}")]
    Corrupt(String, String),
    /// Migration failure.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The identity acting in a change has been deactivated in the
    /// directory (SCIM); nothing was changed.
    #[error("{0} has been deactivated in the directory")]
    Deactivated(String),
    /// A value that must be unique is taken (a SCIM userName).
    #[error("{0}")]
    Duplicate(String),
    /// A row the change refers to does not exist (a group member).
    #[error("{0}")]
    Missing(String),
}

impl StoreError {
    /// Whether this is a refusal whose text may be shown to the caller (a
    /// lost race, a deactivated identity, a taken or missing value), rather
    /// than a failure of the database.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict
                | StoreError::Deactivated(_)
                | StoreError::Duplicate(_)
                | StoreError::Missing(_)
        )
    }
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// How a request row is written in a [`Change`].
#[derive(Debug, Clone)]
pub enum RequestWrite {
    /// A new request.
    Insert(Request),
    /// An update, only if the stored version is still `expected_version`.
    Update {
        /// The version the change was computed from.
        expected_version: i64,
        /// The new request (its `version` is set by the store).
        request: Request,
    },
}

/// How a proposal row is written in a [`Change`].
#[derive(Debug, Clone)]
pub enum ProposalWrite {
    /// A new proposal.
    Insert(Proposal),
    /// An update conditional on the version.
    Update {
        /// Version read.
        expected_version: i64,
        /// New proposal.
        proposal: Proposal,
    },
}

/// One atomic change: rows plus the ledger entries that record it.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// Time of the change.
    pub now: Millis,
    /// Hash of the policy the decision was made under.
    pub policy_hash: String,
    /// Request row to write.
    pub request: Option<RequestWrite>,
    /// Proposal row to write.
    pub proposal: Option<ProposalWrite>,
    /// A policy text that takes effect with this change.
    pub apply_policy: Option<(String, String)>,
    /// Ledger events, with the subject each is about.
    pub events: Vec<(String, Event)>,
    /// A one-time secret for the requester (request id, secret).
    pub secret: Option<(String, String)>,
    /// Overrides the scheduler's next due time for the request row.
    pub next_due: Option<Option<Millis>>,
    /// A security key added or removed with this change.
    pub credential: Option<CredentialWrite>,
    /// Queue notifications (new request, decisions) for the entries of this
    /// change in the outbox, in the same transaction.
    pub notify: bool,
    /// Custody rows (sealed shares, one-time recipients, releases).
    pub custody: Vec<custody::CustodyWrite>,
    /// Directory rows (SCIM users, groups, members).
    pub directory: Vec<directory::DirectoryWrite>,
    /// The identity (`issuer|subject`) this change acts for: the change
    /// fails with [`StoreError::Deactivated`] if the directory has
    /// deactivated it, checked inside the transaction after the ledger head
    /// is taken, so it is ordered against the deactivation itself.
    pub acting: Option<String>,
    /// A grant's activity digest written with this change's (one) entry.
    pub activity_digest: Option<activity::ActivityDigestWrite>,
    /// GitHub posture restore proposals moved with this change's entries.
    pub restores: Vec<RestoreWrite>,
}

/// A registered WebAuthn credential (security key) of one identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRow {
    /// Credential id, base64url.
    pub id: String,
    /// Owner, `issuer|subject`.
    pub identity: String,
    /// The owner's name for it.
    pub name: String,
    /// The verifier's stored credential (JSON).
    pub passkey: String,
    /// When it was registered.
    pub created_at: Millis,
    /// When it last confirmed an approval.
    pub last_used_at: Option<Millis>,
}

/// How a credential row is written in a [`Change`].
#[derive(Debug, Clone)]
pub enum CredentialWrite {
    /// Register a key.
    Add(CredentialRow),
    /// Remove a key of `identity` (fails with [`StoreError::Conflict`] when
    /// that identity has no such key).
    Remove {
        /// Owner.
        identity: String,
        /// Credential id.
        id: String,
    },
}

/// A person as their identity provider last described them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRow {
    /// `issuer|subject`.
    pub identity: String,
    /// Display name.
    pub name: String,
    /// Email address, if the provider gave one.
    pub email: Option<String>,
    /// Groups at the latest sign-in.
    pub groups: Vec<String>,
    /// When they last signed in.
    pub seen_at: Millis,
}

/// Prefix of the outbox kind of a notification row (the rest is the ledger
/// entry's kind).
pub const NOTIFY_PREFIX: &str = "notify:";

/// A due alert waiting for delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertRow {
    /// Alert id (the ledger index it came from).
    pub id: String,
    /// Kind.
    pub kind: String,
    /// The ledger entry it came from.
    pub entry: LedgerEntry,
    /// Attempts so far.
    pub attempts: i64,
    /// The delivery keys (channels) that already took this row
    /// (`outbox_deliveries`): a retry skips them.
    pub delivered: std::collections::BTreeSet<String>,
}

/// A handle on the database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writer: tokio::sync::mpsc::UnboundedSender<PendingChange>,
}

/// A change waiting for the group-commit writer, with where to send its result.
type PendingChange = (
    Change,
    tokio::sync::oneshot::Sender<Result<Vec<LedgerEntry>, StoreError>>,
);

/// Most changes one transaction of the group-commit writer carries.
const MAX_BATCH: usize = 256;

fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::Db(e)
}

impl Store {
    /// Opens (and creates, for SQLite) the database at `url` and runs the
    /// migrations. `sqlite://PATH` or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = if backend == Backend::Sqlite && !url.contains('?') {
            format!("{url}?mode=rwc")
        } else {
            url.to_string()
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL for concurrent readers; FULL so a committed ledger
                        // entry survives power loss, not just a process crash.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = FULL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 30000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let (writer, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(group_commit(pool.clone(), rx));
        Ok(Store {
            pool,
            backend,
            writer,
        })
    }

    /// The database behind the store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The raw pool, for tests and benchmarks that need to reach under the API
    /// (tampering tests, fault injection).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies one change atomically with its ledger entries. Returns the
    /// entries written.
    ///
    /// Changes are group-committed: while one transaction is being made
    /// durable, the changes that arrive meanwhile wait and then go together in
    /// the next transaction. A change that conflicts or fails is rolled back
    /// alone (the batch is then made again with a savepoint per change); a failed
    /// COMMIT fails every change of the batch. Either way each caller learns
    /// the fate of exactly its change, and nothing is applied without its
    /// ledger entries.
    pub async fn commit(&self, change: Change) -> Result<Vec<LedgerEntry>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.writer.send((change, tx)).is_err() {
            return Err(StoreError::Corrupt(
                "store".into(),
                "the commit writer has stopped".into(),
            ));
        }
        rx.await.unwrap_or_else(|_| {
            Err(StoreError::Corrupt(
                "store".into(),
                "the commit writer has stopped".into(),
            ))
        })
    }
}

/// The group-commit writer: one transaction per batch of pending changes.
async fn group_commit(pool: AnyPool, mut rx: tokio::sync::mpsc::UnboundedReceiver<PendingChange>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let changes: Vec<&Change> = batch.iter().map(|(c, _)| c).collect();
        let results = commit_batch(&pool, &changes).await;
        for ((_, reply), result) in batch.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// Commits a batch in one transaction, the ledger rows and head written once
/// at the end. The batch is first tried without savepoints (two statements
/// fewer per change); if one change fails, that try is rolled back whole and
/// the batch is made again with each change in its own savepoint, so the
/// failing change is rolled back alone. If the final ledger write fails
/// (e.g. one change's entry is refused), the batch is rolled back and each
/// change is retried alone, so one change's failure is its own. A failed
/// COMMIT is not retried (it may have taken effect): it fails all.
async fn commit_batch(
    pool: &AnyPool,
    changes: &[&Change],
) -> Vec<Result<Vec<LedgerEntry>, StoreError>> {
    let n = changes.len();
    let tried = match try_batch(pool, changes, Savepoints::No).await {
        Err(BatchError::OneFailed) => {
            tracing::debug!(
                changes = n,
                "a change of the batch failed; making the batch again with savepoints"
            );
            try_batch(pool, changes, Savepoints::Each).await
        }
        other => other,
    };
    match tried {
        Ok(results) => results,
        Err(BatchError::Ledger(e)) if n > 1 => {
            tracing::debug!(error = %e, changes = n, "batch ledger write failed; committing its changes one by one");
            let mut out = Vec::with_capacity(n);
            for c in changes {
                out.push(match try_batch(pool, &[c], Savepoints::No).await {
                    Ok(mut r) => r.pop().unwrap_or_else(|| {
                        Err(StoreError::Corrupt(
                            "store".into(),
                            "a batch of one change gave no result".into(),
                        ))
                    }),
                    Err(e) => Err(e.into_error()),
                });
            }
            out
        }
        Err(e) => {
            let e = e.into_error();
            // sqlx errors are not Clone: every other change gets the message.
            let msg = e.to_string();
            let mut out: Vec<_> = (1..n)
                .map(|_| Err(StoreError::Db(sqlx::Error::Protocol(msg.clone()))))
                .collect();
            out.push(Err(e));
            out
        }
    }
}

/// Why a batch failed as a whole.
enum BatchError {
    /// Writing the batch's ledger rows or head failed (nothing committed).
    Ledger(StoreError),
    /// Beginning, taking the head or committing failed.
    All(StoreError),
    /// Without savepoints, one change of several failed: nothing committed,
    /// the batch is to be made again with savepoints.
    OneFailed,
}

impl BatchError {
    /// The error each change of the batch is told. `OneFailed` never
    /// reaches here (a batch of one reports its change's own error, and a
    /// batch with savepoints never fails that way); were it to, nothing was
    /// committed and the change fails.
    fn into_error(self) -> StoreError {
        match self {
            BatchError::Ledger(e) | BatchError::All(e) => e,
            BatchError::OneFailed => StoreError::Corrupt(
                "store".into(),
                "a change of the batch failed and the batch was not made again".into(),
            ),
        }
    }
}

/// Whether each change of a batch gets its own savepoint.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Savepoints {
    /// None: any failure rolls the whole transaction back (a batch of one
    /// reports its change's error; a larger one is made again with `Each`).
    No,
    /// One per change, so a failing change is rolled back alone.
    Each,
}

async fn try_batch(
    pool: &AnyPool,
    changes: &[&Change],
    savepoints: Savepoints,
) -> Result<Vec<Result<Vec<LedgerEntry>, StoreError>>, BatchError> {
    let mut tx = pool.begin().await.map_err(|e| BatchError::All(e.into()))?;
    let mut staged = ledger::Staged::open(&mut tx)
        .await
        .map_err(BatchError::All)?;
    let mut results = Vec::with_capacity(changes.len());
    for change in changes {
        let each = savepoints == Savepoints::Each;
        if each {
            if let Err(e) = sqlx::query("SAVEPOINT change").execute(&mut *tx).await {
                results.push(Err(StoreError::Db(e)));
                continue;
            }
        }
        let mark = staged.mark();
        let r = match staged.stage(change) {
            Ok(entries) => apply(&mut tx, change, entries).await,
            Err(e) => Err(e),
        };
        if !each {
            if r.is_err() {
                // Nothing of this try is kept: a lone change reports its own
                // error; several are made again, each in a savepoint.
                tx.rollback().await.map_err(|e| BatchError::All(e.into()))?;
                return if changes.len() == 1 {
                    Ok(vec![r])
                } else {
                    Err(BatchError::OneFailed)
                };
            }
            results.push(r);
            continue;
        }
        let end = if r.is_ok() {
            "RELEASE SAVEPOINT change"
        } else {
            staged.rewind(mark);
            "ROLLBACK TO SAVEPOINT change"
        };
        match sqlx::query(end).execute(&mut *tx).await {
            Ok(_) => results.push(r),
            Err(e) => {
                // The savepoint's fate is unknown: nothing of this batch may
                // be committed with entries that do not match its rows.
                return Err(BatchError::All(StoreError::Db(e)));
            }
        }
    }
    staged.flush(&mut tx).await.map_err(BatchError::Ledger)?;
    tx.commit().await.map_err(|e| BatchError::All(e.into()))?;
    Ok(results)
}

/// Writes one change and its ledger entries inside the open transaction.
/// Queues `entry` in the outbox (alerts and notifications) as row `id`,
/// due at once.
async fn queue_outbox(
    tx: &mut sqlx::AnyConnection,
    id: &str,
    kind: &str,
    entry: &LedgerEntry,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alerts (id, created_at, kind, doc, attempts, next_attempt) VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(id)
    .bind(now)
    .bind(kind)
    .bind(serde_json::to_string(entry).unwrap_or_default())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn apply(
    tx: &mut sqlx::AnyConnection,
    change: &Change,
    entries: Vec<LedgerEntry>,
) -> Result<Vec<LedgerEntry>, StoreError> {
    {
        // The entries are staged (indexes fixed under the head's lock taken
        // at the start of the batch) and written with the batch.

        if let Some(w) = &change.request {
            let (req, expected) = match w {
                RequestWrite::Insert(r) => (r, None),
                RequestWrite::Update {
                    expected_version,
                    request,
                } => (request, Some(*expected_version)),
            };
            let mut req = req.clone();
            req.version = expected.map(|v| v + 1).unwrap_or(0);
            let doc = serde_json::to_string(&req)
                .map_err(|e| StoreError::Corrupt(req.id.clone(), e.to_string()))?;
            let due = change
                .next_due
                .unwrap_or_else(|| twokey_core::request::next_due(&req));
            if req.state == State::Active {
                activity::open(tx, &req.id).await?;
            }
            match expected {
                None => {
                    sqlx::query(
                        "INSERT INTO requests (id, entitlement, requester, state, created_at, next_due, version, doc) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&req.id)
                    .bind(&req.entitlement)
                    .bind(req.requester.to_string())
                    .bind(req.state.as_str())
                    .bind(req.created_at)
                    .bind(due)
                    .bind(req.version)
                    .bind(&doc)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(v) => {
                    let done = sqlx::query(
                        "UPDATE requests SET state = $1, next_due = $2, version = $3, doc = $4, \
                         lease_owner = NULL, lease_until = NULL, attempts = 0, last_error = NULL \
                         WHERE id = $5 AND version = $6",
                    )
                    .bind(req.state.as_str())
                    .bind(due)
                    .bind(req.version)
                    .bind(&doc)
                    .bind(&req.id)
                    .bind(v)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict);
                    }
                }
            }
        }

        if let Some(w) = &change.proposal {
            let (p, expected) = match w {
                ProposalWrite::Insert(p) => (p, None),
                ProposalWrite::Update {
                    expected_version,
                    proposal,
                } => (proposal, Some(*expected_version)),
            };
            let mut p = p.clone();
            p.version = expected.map(|v| v + 1).unwrap_or(0);
            let doc = serde_json::to_string(&p)
                .map_err(|e| StoreError::Corrupt(p.id.clone(), e.to_string()))?;
            let state = serde_json::to_value(p.state)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            match expected {
                None => {
                    sqlx::query(
                        "INSERT INTO proposals (id, state, version, doc) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&p.id)
                    .bind(&state)
                    .bind(p.version)
                    .bind(&doc)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(v) => {
                    let done = sqlx::query("UPDATE proposals SET state = $1, version = $2, doc = $3 WHERE id = $4 AND version = $5")
                        .bind(&state)
                        .bind(p.version)
                        .bind(&doc)
                        .bind(&p.id)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict);
                    }
                }
            }
        }

        if let Some((text, hash)) = &change.apply_policy {
            let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM policies")
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            sqlx::query(
                "INSERT INTO policies (seq, hash, text, applied_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(seq + 1)
            .bind(hash)
            .bind(text)
            .bind(change.now)
            .execute(&mut *tx)
            .await?;
        }

        if let Some((id, secret)) = &change.secret {
            sqlx::query("DELETE FROM grant_secrets WHERE request_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO grant_secrets (request_id, secret) VALUES ($1, $2)")
                .bind(id)
                .bind(secret)
                .execute(&mut *tx)
                .await?;
        }

        if let Some(w) = &change.credential {
            match w {
                CredentialWrite::Add(c) => {
                    sqlx::query(
                        "INSERT INTO webauthn_credentials (id, identity, name, passkey, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, NULL)",
                    )
                    .bind(&c.id)
                    .bind(&c.identity)
                    .bind(&c.name)
                    .bind(&c.passkey)
                    .bind(c.created_at)
                    .execute(&mut *tx)
                    .await?;
                }
                CredentialWrite::Remove { identity, id } => {
                    let done = sqlx::query(
                        "DELETE FROM webauthn_credentials WHERE id = $1 AND identity = $2",
                    )
                    .bind(id)
                    .bind(identity)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict);
                    }
                }
            }
        }

        custody::apply(tx, change.now, &change.custody).await?;
        directory::apply(tx, change.now, change.acting.as_deref(), &change.directory).await?;
        posture::apply_restores(tx, &change.restores).await?;

        if let Some(w) = &change.activity_digest {
            let index = entries.first().map(|e| e.index).ok_or_else(|| {
                StoreError::Corrupt(
                    w.request_id.clone(),
                    "an activity digest without its entry".into(),
                )
            })?;
            activity::mark_digested(tx, w, index).await?;
        }

        for (entry, (_, ev)) in entries.iter().zip(change.events.iter()) {
            if change.notify && twokey_core::notify::is_notification(&entry.kind) {
                let kind = format!("{NOTIFY_PREFIX}{}", entry.kind);
                queue_outbox(tx, &format!("n{}", entry.index), &kind, entry, change.now).await?;
            }
            if ev.alert {
                queue_outbox(tx, &entry.index.to_string(), &entry.kind, entry, change.now).await?;
            }
        }
        Ok(entries)
    }
}

impl Store {
    /// Writes ledger events that change no row (a refused self-approval, a
    /// failing revoke, a login).
    pub async fn record(
        &self,
        now: Millis,
        policy_hash: &str,
        events: Vec<(String, Event)>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        self.commit(Change {
            now,
            policy_hash: policy_hash.into(),
            events,
            ..Default::default()
        })
        .await
    }

    /// One request by id.
    pub async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        let row = sqlx::query("SELECT doc FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode_request(&r)).transpose()
    }

    /// Requests, newest first, optionally only one requester's and/or in some states.
    pub async fn requests(
        &self,
        requester: Option<&str>,
        states: &[State],
        limit: i64,
    ) -> Result<Vec<Request>, StoreError> {
        let mut sql = String::from("SELECT doc FROM requests WHERE 1 = 1");
        let mut n = 0;
        if requester.is_some() {
            n += 1;
            sql.push_str(&format!(" AND requester = ${n}"));
        }
        if !states.is_empty() {
            let ph: Vec<String> = states
                .iter()
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect();
            sql.push_str(&format!(" AND state IN ({})", ph.join(", ")));
        }
        n += 1;
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${n}"));
        let mut q = sqlx::query(&sql);
        if let Some(r) = requester {
            q = q.bind(r.to_string());
        }
        for s in states {
            q = q.bind(s.as_str());
        }
        q = q.bind(limit);
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(decode_request).collect()
    }

    /// Active (or activating) grants of `entitlement` to `requester` other than `except`.
    pub async fn overlapping_active(
        &self,
        entitlement: &str,
        requester: &str,
        except: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM requests WHERE entitlement = $1 AND requester = $2 AND id <> $3 AND state IN ('approved', 'active')",
        )
        .bind(entitlement)
        .bind(requester)
        .bind(except)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(db_err))
            .collect()
    }

    /// Requests of one entitlement in some states (the reconciler's view of a
    /// target's grants).
    pub async fn requests_of(
        &self,
        entitlement: &str,
        states: &[State],
    ) -> Result<Vec<Request>, StoreError> {
        let ph: Vec<String> = (0..states.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT doc FROM requests WHERE entitlement = $1 AND state IN ({}) ORDER BY created_at, id",
            ph.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(entitlement.to_string());
        for s in states {
            q = q.bind(s.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(decode_request).collect()
    }

    /// Takes or renews the named lease for `owner` until `now + ttl_ms`.
    /// Returns whether `owner` holds it: it was free, lapsed, or already
    /// `owner`'s. One replica at a time does the work a lease guards.
    pub async fn try_lease(
        &self,
        name: &str,
        owner: &str,
        now: Millis,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "INSERT INTO leases (name, lease_owner, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until \
             WHERE leases.lease_until < $4 OR leases.lease_owner = excluded.lease_owner \
             RETURNING lease_owner",
        )
        .bind(name)
        .bind(owner)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => r.try_get::<String, _>(0)? == owner,
            None => false,
        })
    }

    /// Gives up the named lease if `owner` holds it (at shutdown).
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND lease_owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Claims up to `limit` requests whose scheduled work is due, leasing them to
    /// `owner` until `now + lease_ms`. Another replica cannot claim them until
    /// the lease lapses or the owner commits.
    pub async fn claim_due(
        &self,
        now: Millis,
        owner: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<(Request, i64)>, StoreError> {
        let rows = sqlx::query(
            "UPDATE requests SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM requests WHERE next_due <= $3 AND (lease_until IS NULL OR lease_until < $3) \
                          ORDER BY next_due LIMIT $4) \
               AND next_due <= $3 AND (lease_until IS NULL OR lease_until < $3) \
             RETURNING doc, attempts",
        )
        .bind(owner)
        .bind(now + lease_ms)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((decode_request(r)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// Claims one request for immediate work (right after its final approval).
    pub async fn claim(
        &self,
        id: &str,
        now: Millis,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<(Request, i64)>, StoreError> {
        let row = sqlx::query(
            "UPDATE requests SET lease_owner = $1, lease_until = $2 \
             WHERE id = $3 AND next_due IS NOT NULL AND (lease_until IS NULL OR lease_until < $4) RETURNING doc, attempts",
        )
        .bind(owner)
        .bind(now + lease_ms)
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some((decode_request(&r)?, r.try_get::<i64, _>(1)?))),
            None => Ok(None),
        }
    }

    /// Gives a claimed request back after a failure, to be retried at `retry_at`.
    pub async fn release_failed(
        &self,
        id: &str,
        owner: &str,
        retry_at: Millis,
        error: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "UPDATE requests SET lease_owner = NULL, lease_until = NULL, next_due = $1, attempts = attempts + 1, last_error = $2 \
             WHERE id = $3 AND lease_owner = $4 RETURNING attempts",
        )
        .bind(retry_at)
        .bind(error)
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .unwrap_or(0))
    }

    /// The last provider error recorded for a request, if any.
    pub async fn last_error(&self, id: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row = sqlx::query("SELECT last_error, attempts FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r
                .try_get::<Option<String>, _>(0)?
                .map(|e| (e, r.try_get::<i64, _>(1).unwrap_or(0))),
            None => None,
        })
    }

    /// The earliest scheduled time of any request, for the scheduler's sleep.
    pub async fn next_due_time(&self) -> Result<Option<Millis>, StoreError> {
        let row = sqlx::query("SELECT MIN(next_due) FROM requests WHERE next_due IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    /// Takes the one-time secret of a grant (returns it once, then it is gone).
    pub async fn take_secret(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT secret FROM grant_secrets WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let secret: String = row.try_get(0)?;
        let gone = sqlx::query("DELETE FROM grant_secrets WHERE request_id = $1")
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Two concurrent takers: only the one whose delete removed the row gets it.
        Ok(if gone.rows_affected() == 1 {
            Some(secret)
        } else {
            None
        })
    }

    /// Stores an API token (by its hash) for an actor.
    pub async fn put_token(
        &self,
        hash: &str,
        actor: &Actor,
        now: Millis,
        expires_at: Option<Millis>,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(actor)
            .map_err(|e| StoreError::Corrupt(hash.into(), e.to_string()))?;
        sqlx::query("DELETE FROM tokens WHERE hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO tokens (hash, identity, actor, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(hash)
            .bind(actor.key.to_string())
            .bind(doc)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The actor a token hash belongs to, if the token exists and has not expired.
    pub async fn actor_for_token(
        &self,
        hash: &str,
        now: Millis,
    ) -> Result<Option<Actor>, StoreError> {
        let row = sqlx::query(
            "SELECT actor FROM tokens WHERE hash = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => {
                let doc: String = r.try_get(0)?;
                serde_json::from_str(&doc)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt("token".into(), e.to_string()))
            }
            None => Ok(None),
        }
    }

    /// The policy text in force, if any was ever applied.
    pub async fn current_policy(&self) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT hash, text FROM policies ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    /// The text of the policy with this hash, if it was ever in force.
    pub async fn policy_text(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT text FROM policies WHERE hash = $1 ORDER BY seq DESC LIMIT 1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// One proposal.
    pub async fn proposal(&self, id: &str) -> Result<Option<Proposal>, StoreError> {
        let row = sqlx::query("SELECT doc FROM proposals WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let doc: String = r.try_get(0)?;
            serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(id.into(), e.to_string()))
        })
        .transpose()
    }

    /// Proposals, pending first.
    pub async fn proposals(&self) -> Result<Vec<Proposal>, StoreError> {
        let rows = sqlx::query("SELECT doc FROM proposals ORDER BY state DESC, id DESC LIMIT 200")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let doc: String = r.try_get(0)?;
                serde_json::from_str(&doc)
                    .map_err(|e| StoreError::Corrupt("proposal".into(), e.to_string()))
            })
            .collect()
    }

    /// Ledger entries with index >= `from`, up to `limit`.
    pub async fn ledger(&self, from: u64, limit: i64) -> Result<Vec<LedgerEntry>, StoreError> {
        ledger::read(&self.pool, from, limit).await
    }

    /// Ledger entries about one subject (a request id), in order.
    pub async fn ledger_for(&self, subject: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        ledger::read_subject(&self.pool, subject).await
    }

    /// The ledger's size and frontier.
    pub async fn ledger_head(&self) -> Result<LedgerHead, StoreError> {
        ledger::head(&self.pool).await
    }

    /// The ledger's size and Merkle root (from the frontier saved with every append).
    pub async fn ledger_root(&self) -> Result<LedgerRoot, StoreError> {
        ledger::root(&self.pool).await
    }

    /// Up to `limit` ledger rows with `idx >= from`, in index order, exactly
    /// as stored: for verifiers, which page through with `from = last idx + 1`.
    pub async fn ledger_raw(&self, from: i64, limit: i64) -> Result<Vec<RawLedgerRow>, StoreError> {
        ledger::read_raw(&self.pool, from, limit).await
    }

    /// Signs a checkpoint of the whole log if it grew by at least `min_new`
    /// entries since the latest stored one; `sign(size, root)` returns the
    /// signed note. Runs under the ledger head's lock, so the size and root
    /// are exact and two replicas never sign overlapping sizes. Returns the
    /// size signed, or `None`.
    pub async fn create_checkpoint(
        &self,
        now: Millis,
        min_new: u64,
        sign: impl FnOnce(u64, twokey_ledger::Hash) -> String,
    ) -> Result<Option<u64>, StoreError> {
        ledger::create_checkpoint(&self.pool, now, min_new, sign).await
    }

    /// Every stored checkpoint, by size.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        ledger::checkpoints(&self.pool).await
    }

    /// Checkpoints whose bundles are not yet published, by size.
    pub async fn unpublished_checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        ledger::unpublished(&self.pool).await
    }

    /// Size of the checkpoint before `size` (0 when none): where its bundle starts.
    pub async fn previous_checkpoint_size(&self, size: u64) -> Result<u64, StoreError> {
        ledger::previous_checkpoint_size(&self.pool, size).await
    }

    /// Records a publish outcome: published at `now`, or failed with `error`
    /// and retried at `retry_at`. Returns the failed attempts so far.
    pub async fn checkpoint_publish_result(
        &self,
        size: u64,
        now: Millis,
        error: Option<&str>,
        retry_at: Millis,
    ) -> Result<i64, StoreError> {
        ledger::publish_result(&self.pool, size, now, error, retry_at).await
    }

    /// Alerts due for delivery.
    pub async fn due_alerts(&self, now: Millis, limit: i64) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, doc, attempts FROM alerts WHERE delivered_at IS NULL AND next_attempt <= $1 AND kind NOT LIKE 'notify:%' ORDER BY created_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        self.with_deliveries(decode_alerts(&rows)?).await
    }

    /// Notifications due for delivery (outbox rows queued with `Change::notify`).
    pub async fn due_notifications(
        &self,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, doc, attempts FROM alerts WHERE delivered_at IS NULL AND next_attempt <= $1 AND kind LIKE 'notify:%' ORDER BY created_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        self.with_deliveries(decode_alerts(&rows)?).await
    }

    /// Fills in which channels already took each row.
    async fn with_deliveries(&self, mut rows: Vec<AlertRow>) -> Result<Vec<AlertRow>, StoreError> {
        for row in &mut rows {
            row.delivered = self.outbox_deliveries(&row.id).await?;
        }
        Ok(rows)
    }

    /// The delivery keys (channels) that took outbox row `id`.
    pub async fn outbox_deliveries(
        &self,
        id: &str,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let rows = sqlx::query("SELECT channel FROM outbox_deliveries WHERE outbox_id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }

    /// Records that `channel` took outbox row `id` (right after it accepted
    /// it, before any other channel is tried), so no retry sends it there
    /// again. Recording it twice is harmless.
    pub async fn outbox_delivered(
        &self,
        id: &str,
        channel: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox_deliveries (outbox_id, channel, delivered_at) VALUES ($1, $2, $3) ON CONFLICT (outbox_id, channel) DO NOTHING",
        )
        .bind(id)
        .bind(channel)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims outbox row `id` for one delivery attempt: moves its next
    /// attempt to `until` if it is still due at `now`. Only one replica's
    /// claim succeeds, so two replicas never send the same row at once; a
    /// replica that dies mid-attempt leaves the row due again at `until`.
    pub async fn claim_outbox(
        &self,
        id: &str,
        now: Millis,
        until: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE alerts SET next_attempt = $1 WHERE id = $2 AND delivered_at IS NULL AND next_attempt <= $3",
        )
        .bind(until)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn decode_alerts(rows: &[sqlx::any::AnyRow]) -> Result<Vec<AlertRow>, StoreError> {
    {
        rows.iter()
            .map(|r| {
                let doc: String = r.try_get(2)?;
                Ok(AlertRow {
                    id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    entry: serde_json::from_str(&doc)
                        .map_err(|e| StoreError::Corrupt("alert".into(), e.to_string()))?,
                    attempts: r.try_get(3)?,
                    delivered: Default::default(),
                })
            })
            .collect()
    }
}

impl Store {
    /// Marks an alert delivered, or schedules its next attempt.
    pub async fn alert_result(
        &self,
        id: &str,
        now: Millis,
        error: Option<&str>,
        retry_at: Millis,
    ) -> Result<(), StoreError> {
        match error {
            None => sqlx::query("UPDATE alerts SET delivered_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?,
            Some(e) => sqlx::query("UPDATE alerts SET attempts = attempts + 1, last_error = $1, next_attempt = $2 WHERE id = $3")
                .bind(e)
                .bind(retry_at)
                .bind(id)
                .execute(&self.pool)
                .await?,
        };
        Ok(())
    }

    /// The security keys of `identity`, oldest first.
    pub async fn credentials(&self, identity: &str) -> Result<Vec<CredentialRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, identity, name, passkey, created_at, last_used_at FROM webauthn_credentials WHERE identity = $1 ORDER BY created_at, id",
        )
        .bind(identity)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CredentialRow {
                    id: r.try_get(0)?,
                    identity: r.try_get(1)?,
                    name: r.try_get(2)?,
                    passkey: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    last_used_at: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// After a verified assertion: the credential's new state (signature
    /// counter) and when it was used. Only the owner's row is touched.
    pub async fn credential_used(
        &self,
        identity: &str,
        id: &str,
        passkey: Option<&str>,
        now: Millis,
    ) -> Result<(), StoreError> {
        match passkey {
            Some(p) => sqlx::query("UPDATE webauthn_credentials SET passkey = $1, last_used_at = $2 WHERE id = $3 AND identity = $4")
                .bind(p)
                .bind(now)
                .bind(id)
                .bind(identity)
                .execute(&self.pool)
                .await?,
            None => sqlx::query("UPDATE webauthn_credentials SET last_used_at = $1 WHERE id = $2 AND identity = $3")
                .bind(now)
                .bind(id)
                .bind(identity)
                .execute(&self.pool)
                .await?,
        };
        Ok(())
    }

    /// Records how the identity provider described a person at sign-in.
    pub async fn upsert_person(&self, p: &PersonRow) -> Result<(), StoreError> {
        let groups = serde_json::to_string(&p.groups)
            .map_err(|e| StoreError::Corrupt(p.identity.clone(), e.to_string()))?;
        sqlx::query("DELETE FROM people WHERE identity = $1")
            .bind(&p.identity)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO people (identity, name, email, groups, seen_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&p.identity)
        .bind(&p.name)
        .bind(&p.email)
        .bind(groups)
        .bind(p.seen_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Everyone who has signed in through single sign-on.
    pub async fn people(&self) -> Result<Vec<PersonRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT identity, name, email, groups, seen_at FROM people ORDER BY identity",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let groups: String = r.try_get(3)?;
                Ok(PersonRow {
                    identity: r.try_get(0)?,
                    name: r.try_get(1)?,
                    email: r.try_get(2)?,
                    groups: serde_json::from_str(&groups)
                        .map_err(|e| StoreError::Corrupt("person".into(), e.to_string()))?,
                    seen_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Counts of requests by state, for metrics.
    pub async fn state_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM requests GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

fn decode_request(row: &sqlx::any::AnyRow) -> Result<Request, StoreError> {
    let doc: String = row.try_get(0)?;
    serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt("request".into(), e.to_string()))
}
