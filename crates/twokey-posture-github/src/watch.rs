//! The GitHub posture at run time: settings events from the gate's webhook
//! (signatures verified by the gate) re-check the repository they are about
//! within seconds; a scheduled full scan under a store lease catches what
//! events missed. A regression (a check that passed now fails) is a ledger
//! entry that alerts, written before anything else moves (no ledger, no
//! state change: the delivery stays unfinished and GitHub redelivers it).
//! With `action = "propose"` it also opens a restore proposal; the HTTP
//! endpoints here let one admin propose it and a different admin approve
//! it, after which twokey makes the calls and re-checks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde_json::json;
use sqlx::Row;
use twokey_core::event::{GithubRecovered, GithubRegression, GithubScan, RestoreRefused};
use twokey_core::{Actor, Event, LedgerEvent, Millis};
use twokey_gate::github::RestGitHub;
use twokey_gate::webhook::SettingsEvent;
use twokey_posture::{Finding, Status};
use twokey_server::{ApiError, Broker};
use twokey_store::{Change, RestoreWrite, Store, StoreError};

use crate::collect::{self, Scope};
use crate::facts::Facts;
use crate::restore::{self, Proposal, RestoreState};
use crate::{Action, Baseline, Registry};

/// Actor of the entries the posture writes itself.
pub const ACTOR: &str = "twokey|posture-github";

/// The name of the scheduled scan's store lease.
pub const SCAN_LEASE: &str = "posture.github.scan";

/// What one re-check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Findings evaluated.
    pub findings: usize,
    /// `check resource` pairs that passed before and fail now.
    pub regressions: Vec<String>,
    /// `check resource` pairs that failed before and pass now.
    pub recovered: Vec<String>,
    /// Restore proposals opened.
    pub proposals: Vec<String>,
}

/// The GitHub posture service.
pub struct Watcher {
    /// Scope and classes.
    pub scope: Arc<Scope>,
    /// What the checks compare against.
    pub baseline: Baseline,
    /// `alert` or `propose`.
    pub action: Action,
    /// The checks.
    pub registry: Registry,
    /// GitHub.
    pub github: Arc<RestGitHub>,
    /// The broker's store (its ledger and alert outbox).
    pub store: Store,
    /// Milliseconds since the epoch.
    pub clock: Arc<dyn Fn() -> Millis + Send + Sync>,
    /// This replica's name (the scan lease).
    pub node: String,
}

fn system_now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

fn key(f: &Finding) -> String {
    format!("{} {}", f.check, f.resource)
}

impl Watcher {
    /// A watcher on the system clock.
    pub fn new(
        scope: Scope,
        baseline: Baseline,
        github: Arc<RestGitHub>,
        store: Store,
        node: &str,
    ) -> Watcher {
        Watcher {
            action: scope.config.action,
            scope: Arc::new(scope),
            baseline,
            registry: Registry::builtin(),
            github,
            store,
            clock: Arc::new(system_now),
            node: node.to_string(),
        }
    }

    fn now(&self) -> Millis {
        (self.clock)()
    }

    async fn policy_hash(&self) -> String {
        match self.store.current_policy().await {
            Ok(Some((h, _))) => h,
            _ => String::new(),
        }
    }

    /// Writes ledger events; an error means nothing may move.
    async fn record(&self, events: Vec<(String, Event)>) -> Result<(), String> {
        let ph = self.policy_hash().await;
        self.store
            .record(self.now(), &ph, events)
            .await
            .map(|_| ())
            .map_err(|e| format!("the ledger could not be written: {e}"))
    }

    async fn previous(&self, findings: &[Finding]) -> Result<BTreeMap<String, Status>, String> {
        let mut out = BTreeMap::new();
        for f in findings {
            let row = sqlx::query(
                "SELECT status FROM github_posture_state WHERE check_id = $1 AND resource = $2",
            )
            .bind(&f.check)
            .bind(&f.resource)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| format!("posture state: {e}"))?;
            if let Some(r) = row {
                let s: String = r.try_get(0).map_err(|e| e.to_string())?;
                out.insert(key(f), Status::parse(&s).unwrap_or(Status::Error));
            }
        }
        Ok(out)
    }

    async fn save_state(&self, findings: &[Finding], now: Millis) -> Result<(), String> {
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(|e| format!("posture state: {e}"))?;
        for f in findings {
            let st = f.status.as_str().to_ascii_lowercase();
            sqlx::query(
                "INSERT INTO github_posture_state (check_id, resource, status, checked_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (check_id, resource) DO UPDATE SET status = excluded.status, checked_at = excluded.checked_at",
            )
            .bind(&f.check)
            .bind(&f.resource)
            .bind(st)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| format!("posture state: {e}"))?;
        }
        tx.commit().await.map_err(|e| format!("posture state: {e}"))
    }

    /// Evaluates `facts` against the last known state. `from_event`: a
    /// failing check with no earlier state counts as a regression (the event
    /// is what changed it); a scheduled scan only compares with what it knew.
    pub async fn process(
        &self,
        facts: &Facts,
        cause: &str,
        sender: Option<&str>,
        from_event: bool,
    ) -> Result<Outcome, String> {
        let findings = self.registry.evaluate(facts, &self.baseline);
        let prev = self.previous(&findings).await?;
        let mut out = Outcome {
            findings: findings.len(),
            ..Default::default()
        };
        let mut regressed: Vec<&Finding> = Vec::new();
        let mut events = Vec::new();
        for f in &findings {
            let before = prev.get(&key(f)).copied();
            match (before, f.status) {
                (Some(Status::Pass), Status::Fail) | (None, Status::Fail)
                    if before.is_some() || from_event =>
                {
                    regressed.push(f);
                    out.regressions.push(key(f));
                    events.push((
                        format!("posture:github:{}", f.resource),
                        LedgerEvent::PostureGithubRegression(GithubRegression {
                            check: f.check.clone(),
                            resource: f.resource.clone(),
                            org: f.account.clone(),
                            message: f.message.clone(),
                            cause: cause.into(),
                            sender: sender.map(String::from),
                            evidence: f.evidence.clone(),
                        })
                        .by(ACTOR),
                    ));
                }
                (Some(Status::Fail), Status::Pass) => {
                    out.recovered.push(key(f));
                    events.push((
                        format!("posture:github:{}", f.resource),
                        LedgerEvent::PostureGithubRecovered(GithubRecovered {
                            check: f.check.clone(),
                            resource: f.resource.clone(),
                            message: f.message.clone(),
                            cause: cause.into(),
                        })
                        .by(ACTOR),
                    ));
                }
                _ => {}
            }
        }
        // Evidence first: the regression is in the ledger (and its alert in
        // the outbox, same transaction) before the state moves.
        if !events.is_empty() {
            self.record(events).await?;
        }
        if self.action == Action::Propose && !regressed.is_empty() {
            out.proposals = self.open_proposals(facts, &regressed, cause).await?;
        }
        self.save_state(&findings, facts.collected_at_ms).await?;
        Ok(out)
    }

    async fn open_proposals(
        &self,
        facts: &Facts,
        regressed: &[&Finding],
        cause: &str,
    ) -> Result<Vec<String>, String> {
        // One proposal per repository (and one for the organisation).
        let mut by_resource: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
        for f in regressed {
            let res = f.resource.split('@').next().unwrap_or(&f.resource);
            let res = res
                .split("/environments/")
                .next()
                .unwrap_or(res)
                .to_string();
            by_resource.entry(res).or_default().push(f);
        }
        let mut opened = Vec::new();
        for (resource, fs) in by_resource {
            let calls = restore::plan(facts, &self.baseline, &fs);
            if calls.is_empty() {
                continue;
            }
            if self.pending_for(&resource).await? {
                continue;
            }
            let id = twokey_server::new_id("restore");
            let (p, ev) = restore::open(
                &id,
                &resource,
                fs.iter().map(|f| key(f)).collect(),
                calls,
                cause,
                self.now(),
            );
            // No proposal without its ledger entry: one transaction.
            let write = RestoreWrite::Insert {
                id: p.id.clone(),
                resource: p.resource.clone(),
                state: p.state.as_str().into(),
                doc: serde_json::to_string(&p).map_err(|e| e.to_string())?,
                version: p.version,
                created_at: p.opened_at,
            };
            self.commit(restore::subject(&id), ev, write)
                .await
                .map_err(|e| e.to_string())?;
            opened.push(id);
        }
        Ok(opened)
    }

    async fn pending_for(&self, resource: &str) -> Result<bool, String> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM github_restores WHERE resource = $1 AND state IN ('open', 'proposed', 'approved')",
        )
        .bind(resource)
        .fetch_one(self.store.pool())
        .await
        .map_err(|e| format!("restores: {e}"))?;
        let n: i64 = row.try_get(0).map_err(|e| e.to_string())?;
        Ok(n > 0)
    }

    /// Writes a proposal's row and the ledger entry of its step in one
    /// transaction.
    async fn commit(
        &self,
        subject: String,
        ev: Event,
        write: RestoreWrite,
    ) -> Result<(), StoreError> {
        self.store
            .commit(Change {
                now: self.now(),
                policy_hash: self.policy_hash().await,
                events: vec![(subject, ev)],
                restores: vec![write],
                ..Default::default()
            })
            .await
            .map(|_| ())
    }

    /// The write that replaces the proposal at version `expected` by `next`.
    fn update_write(next: &Proposal, expected: i64) -> Result<RestoreWrite, String> {
        Ok(RestoreWrite::Update {
            id: next.id.clone(),
            state: next.state.as_str().into(),
            doc: serde_json::to_string(next).map_err(|e| e.to_string())?,
            version: next.version,
            expected,
        })
    }

    /// Replaces the proposal at `expected` version with `next`; false when
    /// another writer moved it first.
    async fn update(&self, next: &Proposal, expected: i64) -> Result<bool, String> {
        let r = sqlx::query(
            "UPDATE github_restores SET state = $1, doc = $2, version = $3 WHERE id = $4 AND version = $5",
        )
        .bind(next.state.as_str())
        .bind(serde_json::to_string(next).map_err(|e| e.to_string())?)
        .bind(next.version)
        .bind(&next.id)
        .bind(expected)
        .execute(self.store.pool())
        .await
        .map_err(|e| format!("restores: {e}"))?;
        Ok(r.rows_affected() == 1)
    }

    /// One proposal.
    pub async fn proposal(&self, id: &str) -> Result<Option<Proposal>, String> {
        let row = sqlx::query("SELECT doc FROM github_restores WHERE id = $1")
            .bind(id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| format!("restores: {e}"))?;
        row.map(|r| {
            let d: String = r.try_get(0).map_err(|e| e.to_string())?;
            serde_json::from_str(&d).map_err(|e| format!("restore {id}: {e}"))
        })
        .transpose()
    }

    /// The latest proposals, newest first.
    pub async fn proposals(&self) -> Result<Vec<Proposal>, String> {
        let rows = self
            .store
            .github_restores(200)
            .await
            .map_err(|e| format!("restores: {e}"))?;
        rows.iter()
            .map(|r| serde_json::from_str(&r.doc).map_err(|e| format!("restore {}: {e}", r.id)))
            .collect()
    }

    /// Moves a proposal one step (`f` is the pure transition): the row at
    /// its version and its ledger entry in one transaction, so neither is
    /// written without the other.
    async fn step(
        &self,
        id: &str,
        f: impl Fn(&Proposal) -> Result<(Proposal, Event), twokey_core::request::DomainError>,
    ) -> Result<Proposal, ApiError> {
        let p = self
            .proposal(id)
            .await
            .map_err(ApiError::Internal)?
            .ok_or_else(|| ApiError::NotFound(format!("no restore proposal {id:?}")))?;
        let (next, ev) = match f(&p) {
            Ok(x) => x,
            Err(e) => {
                if matches!(e, twokey_core::request::DomainError::SelfApproval) {
                    let refused = LedgerEvent::PostureGithubRestoreRefused(RestoreRefused {
                        id: id.to_string(),
                        reason: "the proposer may not approve their own restore".into(),
                    })
                    .by(ACTOR);
                    if let Err(err) = self.record(vec![(restore::subject(id), refused)]).await {
                        tracing::error!(%id, error = %err, "posture: cannot record a refused self-approval");
                    }
                }
                return Err(e.into());
            }
        };
        let write = Self::update_write(&next, p.version).map_err(ApiError::Internal)?;
        match self.commit(restore::subject(id), ev, write).await {
            Ok(()) => Ok(next),
            Err(StoreError::Conflict) => Err(twokey_core::request::DomainError::WrongState(
                format!("restore {id} changed meanwhile; read it again"),
            )
            .into()),
            Err(e) => Err(ApiError::Internal(format!(
                "the ledger could not be written, so the restore did not move: {e}"
            ))),
        }
    }

    /// Makes an approved proposal's calls, re-checks the repository, and
    /// records the outcome.
    pub async fn apply(&self, p: &Proposal) -> Result<Proposal, String> {
        // Take it up first (conditional on the version read), so the approve
        // handler and a resume pass never both make the calls.
        let claimed = Proposal {
            version: p.version + 1,
            applying_since: Some(self.now()),
            ..p.clone()
        };
        if !self.update(&claimed, p.version).await? {
            return self
                .proposal(&p.id)
                .await?
                .ok_or_else(|| format!("restore {} is gone", p.id));
        }
        let p = &claimed;
        let mut errors = Vec::new();
        for c in &p.calls {
            let method = reqwest::Method::from_bytes(c.method.as_bytes())
                .map_err(|e| format!("{}: {e}", c.method))?;
            let owner = c
                .path
                .trim_start_matches('/')
                .split('/')
                .collect::<Vec<_>>();
            let owner = match owner.as_slice() {
                ["repos", o, r, ..] => format!("{o}/{r}"),
                ["orgs", o, ..] => o.to_string(),
                _ => self.scope.config.org.clone(),
            };
            if let Err(e) = self
                .github
                .write_json(&owner, method, &c.path, &c.body)
                .await
            {
                errors.push(format!("{} {}: {e}", c.method, c.path));
            }
        }
        let recheck = if p.resource.contains('/') {
            collect::collect_one(&self.github, &self.scope, &p.resource, self.now()).await
        } else {
            Ok(None)
        };
        let still: Vec<String> = match &recheck {
            Ok(Some(facts)) => self
                .registry
                .evaluate(facts, &self.baseline)
                .into_iter()
                .filter(|f| f.status != Status::Pass && p.regressions.contains(&key(f)))
                .map(|f| key(&f))
                .collect(),
            Ok(None) => vec![],
            Err(e) => vec![format!("re-check failed: {e}")],
        };
        let ok = errors.is_empty() && still.is_empty();
        let text = if ok {
            format!("{} call(s) made; the re-check passes", p.calls.len())
        } else {
            format!(
                "calls failed: [{}]; still failing: [{}]",
                errors.join("; "),
                still.join("; ")
            )
        };
        let (next, ev) = restore::finish(p, ok, &text);
        // The outcome and its evidence together; a conflict means another
        // pass finished it first.
        match self
            .commit(
                restore::subject(&p.id),
                ev,
                Self::update_write(&next, p.version)?,
            )
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return self
                    .proposal(&p.id)
                    .await?
                    .ok_or_else(|| format!("restore {} is gone", p.id))
            }
            Err(e) => return Err(format!("the ledger could not be written: {e}")),
        }
        if let Ok(Some(facts)) = recheck {
            let findings = self.registry.evaluate(&facts, &self.baseline);
            self.save_state(&findings, facts.collected_at_ms).await?;
        }
        Ok(next)
    }

    /// Applies approved restores whose apply was interrupted (the process
    /// stopped between the approval and the calls, or during them): those
    /// approved and not taken up, or taken up longer ago than the scan lease.
    /// The calls are idempotent `PUT`s, so making them again is safe.
    pub async fn resume_approved(&self) -> Result<usize, String> {
        let now = self.now();
        let lease_ms = self.scope.config.lease.as_millis() as i64;
        let mut resumed = 0;
        for p in self.proposals().await? {
            if p.state != RestoreState::Approved
                || p.applying_since
                    .is_some_and(|t| now.saturating_sub(t) < lease_ms)
            {
                continue;
            }
            let done = self.apply(&p).await?;
            tracing::warn!(id = %p.id, state = done.state.as_str(), "posture github: resumed an interrupted restore");
            resumed += 1;
        }
        Ok(resumed)
    }

    /// One scheduled full scan, if this replica holds the lease.
    pub async fn scan_once(&self) -> Result<Option<Outcome>, String> {
        let now = self.now();
        let lease_ms = self.scope.config.lease.as_millis() as i64;
        if !self
            .store
            .try_lease(SCAN_LEASE, &self.node, now, lease_ms)
            .await
            .map_err(|e| format!("scan lease: {e}"))?
        {
            return Ok(None);
        }
        // Never silent: a failed resume is logged and found again next pass.
        if let Err(e) = self.resume_approved().await {
            tracing::error!(error = %e, "posture github: resuming approved restores failed; retried on the next scan");
        }
        let facts = collect::collect(self.github.clone(), self.scope.clone(), now).await?;
        let out = self.process(&facts, "scheduled scan", None, false).await?;
        let summary = LedgerEvent::PostureGithubScan(GithubScan {
            org: facts.org.clone(),
            repositories: facts.repos.len(),
            findings: out.findings,
            regressions: out.regressions.len(),
            api: json!(self.github.counts()),
        })
        .by(ACTOR);
        self.record(vec![(format!("posture:github:{}", facts.org), summary)])
            .await?;
        Ok(Some(out))
    }

    /// The scheduled scan loop of `twokey serve` (`interval`), until shutdown.
    pub async fn run_schedule(
        self: Arc<Self>,
        interval: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            match self.scan_once().await {
                Ok(Some(o)) => tracing::info!(
                    findings = o.findings,
                    regressions = o.regressions.len(),
                    "posture github: scheduled scan"
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "posture github: scheduled scan failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// The repositories a settings event is about (none: the whole
    /// organisation is re-checked).
    pub async fn on_event(&self, delivery: &str, e: &SettingsEvent) -> Result<String, String> {
        if e.owner()
            .is_some_and(|o| !o.eq_ignore_ascii_case(&self.scope.config.org))
        {
            return Ok(format!(
                "{} event for another organisation; ignored",
                e.name
            ));
        }
        let cause = format!("{} {} (delivery {delivery})", e.name, e.action);
        let sender = e.sender.as_ref().map(|s| s.login.as_str());
        let now = self.now();
        let facts = match &e.repository {
            Some(r) if e.action != "deleted" || e.name != "repository" => {
                match collect::collect_one(&self.github, &self.scope, &r.full_name, now).await? {
                    Some(f) => f,
                    None => return Ok(format!("{} is not in scope; ignored", r.full_name)),
                }
            }
            // An organisation ruleset or setting: every repository.
            _ => collect::collect(self.github.clone(), self.scope.clone(), now).await?,
        };
        let o = self.process(&facts, &cause, sender, true).await?;
        Ok(format!(
            "re-checked {} repositories: {} regression(s), {} restore proposal(s)",
            facts.repos.len(),
            o.regressions.len(),
            o.proposals.len()
        ))
    }
}

#[async_trait::async_trait]
impl twokey_gate::gate::SettingsWatcher for Watcher {
    async fn on_settings(&self, delivery: &str, event: &SettingsEvent) -> Result<String, String> {
        self.on_event(delivery, event).await
    }
}

/// The HTTP endpoints of restore proposals, authenticated like the rest of
/// the API (a bearer token of a twokey identity), for policy admins.
pub fn router(watcher: Arc<Watcher>, broker: Arc<Broker>) -> axum::Router {
    #[derive(Clone)]
    struct S {
        w: Arc<Watcher>,
        b: Arc<Broker>,
    }
    async fn who(s: &S, h: &HeaderMap) -> Result<Actor, ApiError> {
        let header = h
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized("missing Authorization: Bearer <token> header".into())
            })?;
        let token = twokey_server::api::bearer_token(header).ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be \"Bearer <token>\"".into())
        })?;
        let actor =
            s.b.store()
                .actor_for_token(&twokey_server::token_hash(token), s.b.now())
                .await?
                .ok_or_else(|| ApiError::Unauthorized("unknown or expired token".into()))?;
        Ok(s.b.refresh_actor(actor))
    }
    fn admin(s: &S, a: &Actor) -> bool {
        s.b.policy().policy.is_admin(a)
    }
    async fn list(State(s): State<S>, h: HeaderMap) -> Result<Response, ApiError> {
        let a = who(&s, &h).await?;
        s.b.require_read_all(&a, "restore proposals")?;
        Ok(Json(s.w.proposals().await.map_err(ApiError::Internal)?).into_response())
    }
    async fn one(
        State(s): State<S>,
        h: HeaderMap,
        Path(id): Path<String>,
    ) -> Result<Response, ApiError> {
        let a = who(&s, &h).await?;
        s.b.require_read_all(&a, "restore proposals")?;
        let p =
            s.w.proposal(&id)
                .await
                .map_err(ApiError::Internal)?
                .ok_or_else(|| ApiError::NotFound(format!("no restore proposal {id:?}")))?;
        Ok(Json(p).into_response())
    }
    async fn propose(
        State(s): State<S>,
        h: HeaderMap,
        Path(id): Path<String>,
    ) -> Result<Response, ApiError> {
        let a = who(&s, &h).await?;
        let adm = admin(&s, &a);
        let p = s.w.step(&id, |p| restore::propose(p, &a, adm)).await?;
        Ok(Json(p).into_response())
    }
    async fn reject(
        State(s): State<S>,
        h: HeaderMap,
        Path(id): Path<String>,
    ) -> Result<Response, ApiError> {
        let a = who(&s, &h).await?;
        let adm = admin(&s, &a);
        let p = s.w.step(&id, |p| restore::reject(p, &a, adm)).await?;
        Ok(Json(p).into_response())
    }
    async fn approve(
        State(s): State<S>,
        h: HeaderMap,
        Path(id): Path<String>,
    ) -> Result<Response, ApiError> {
        let a = who(&s, &h).await?;
        let adm = admin(&s, &a);
        let p = s.w.step(&id, |p| restore::approve(p, &a, adm)).await?;
        debug_assert_eq!(p.state, RestoreState::Approved);
        let done = s.w.apply(&p).await.map_err(ApiError::Internal)?;
        Ok(Json(done).into_response())
    }
    axum::Router::new()
        .route("/v1/posture/github/restores", get(list))
        .route("/v1/posture/github/restores/{id}", get(one))
        .route("/v1/posture/github/restores/{id}/propose", post(propose))
        .route("/v1/posture/github/restores/{id}/approve", post(approve))
        .route("/v1/posture/github/restores/{id}/reject", post(reject))
        .with_state(S {
            w: watcher,
            b: broker,
        })
}
