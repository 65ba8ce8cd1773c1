//! The engine: webhook in, plan/apply out, every step in the ledger.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use twokey_core::event::{
    ApplyEvidence, ApplyResult, DeliveryResumed, Drift, DriftFailed, DriftTarget, Empty, GatePlan,
    GateRefused, LedgerEvent,
};
use twokey_core::Millis;
use twokey_store::StoreError;

use crate::config::{select, GateConfig, Project, Tool, SELECTION_FILE};
use crate::db::{DeliveryStart, GateDb, Lock, PlanRow, PlanState, StuckPlan};
use crate::github::{GitHub, PullInfo, StatusState};
use crate::redact::{redact, split_comment, GITHUB_COMMENT_LIMIT};
use crate::requirements::{decide, Decision, PullFacts, Requirements};
use crate::runner::Runner;
use crate::webhook::{self, Event, IssueCommentEvent, PullRequestEvent, WebhookError};

mod error;
mod recovery;
pub use error::{GateError, Reply};
pub use recovery::BackgroundPass;

/// Where source trees come from.
#[async_trait]
pub trait Checkout: Send + Sync {
    /// Materialises `repo` at commit `sha` into `dest` (an empty directory).
    async fn checkout(&self, repo: &str, sha: &str, dest: &Path) -> Result<(), String>;
}

/// Source trees from the REST API's tarball of the commit
/// (`GET /repos/{repo}/tarball/{sha}`), with the same credentials as every
/// other call: no git, no clone URL, no token on disk.
pub struct ApiCheckout {
    /// GitHub.
    pub github: Arc<dyn GitHub>,
    /// Largest tarball accepted (compressed and unpacked).
    pub max_bytes: u64,
}

#[async_trait]
impl Checkout for ApiCheckout {
    async fn checkout(&self, repo: &str, sha: &str, dest: &Path) -> Result<(), String> {
        let gz = self
            .github
            .tarball(repo, sha)
            .await
            .map_err(|e| e.to_string())?;
        if gz.len() as u64 > self.max_bytes {
            return Err(format!(
                "the tarball of {sha} is larger than {} bytes",
                self.max_bytes
            ));
        }
        let dest = dest.to_path_buf();
        let max = self.max_bytes;
        tokio::task::spawn_blocking(move || unpack_tarball(&gz, &dest, max))
            .await
            .map_err(|e| e.to_string())?
    }
}

/// Unpacks GitHub's tarball (one top-level directory `owner-repo-sha/`) into
/// `dest`, stripping that directory. Only regular files and directories are
/// accepted: links, devices and paths leaving `dest` are refused.
pub fn unpack_tarball(gz: &[u8], dest: &Path, max_bytes: u64) -> Result<(), String> {
    use std::io::Read;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let mut total: u64 = 0;
    let entries = ar.entries().map_err(|e| format!("bad tarball: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("bad tarball: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("bad tarball path: {e}"))?
            .into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let mut parts = path.components();
        parts.next(); // owner-repo-sha/
        let rel: PathBuf = parts.as_path().to_path_buf();
        if rel.as_os_str().is_empty() {
            continue;
        }
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!("tarball path {} leaves the tree", path.display()));
        }
        let target = dest.join(&rel);
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
        } else if kind.is_file() {
            total += entry.header().size().unwrap_or(0);
            if total > max_bytes {
                return Err(format!("the source tree is larger than {max_bytes} bytes"));
            }
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| format!("bad tarball entry {}: {e}", rel.display()))?;
            std::fs::write(&target, buf).map_err(|e| e.to_string())?;
        } else {
            return Err(format!(
                "{} is a link or special file; the gate only checks out regular files",
                rel.display()
            ));
        }
    }
    Ok(())
}

/// The gate.
pub struct Gate {
    /// Server-side config.
    pub config: GateConfig,
    /// Webhook secret.
    pub secret: Vec<u8>,
    /// Storage and ledger.
    pub db: GateDb,
    /// GitHub.
    pub github: Arc<dyn GitHub>,
    /// Source trees.
    pub checkout: Arc<dyn Checkout>,
    /// Milliseconds since the epoch.
    pub clock: Arc<dyn Fn() -> Millis + Send + Sync>,
    /// This replica's name (drift leases).
    pub node: String,
    /// Webhook deliveries being worked on.
    inflight: Arc<AtomicUsize>,
    /// How long the webhook route waits for the work before answering `202`.
    pub answer_within: Duration,
    /// Pause before asking GitHub again for a mergeability it is computing.
    pub mergeable_retry: Duration,
    /// How long a worker holds a delivery (and the plans it applies) without
    /// renewing; renewed every third of it while the work runs. A worker
    /// that dies is taken over this long after its last renewal.
    pub lease: Duration,
    /// Time between background passes (recovery of interrupted applies,
    /// alerts on unfinished deliveries, due drift checks).
    pub background_every: Duration,
    /// First pause between attempts at a ledger write or state move that
    /// failed; doubles each time ([`RETRIES`] attempts in all).
    pub retry_backoff: Duration,
    /// Distinguishes this gate's workers from earlier processes of the same
    /// node name.
    instance: String,
    /// Numbers this gate's workers.
    workers: AtomicU64,
    /// Who re-checks the repository a settings event is about (the GitHub
    /// posture, when `[posture.github]` is configured).
    settings: Option<Arc<dyn SettingsWatcher>>,
}

/// Takes the settings events ([`webhook::SETTINGS_EVENTS`]) the webhook
/// endpoint receives, after their signature is verified and the delivery is
/// begun: the GitHub posture re-checks what changed.
#[async_trait::async_trait]
pub trait SettingsWatcher: Send + Sync {
    /// Handles one event; the text answers GitHub. An error (for instance
    /// the regression's ledger entry could not be written) leaves the
    /// delivery unfinished, so GitHub's redelivery does it again.
    async fn on_settings(
        &self,
        delivery: &str,
        event: &webhook::SettingsEvent,
    ) -> Result<String, String>;
}

/// Attempts at one ledger write or state move before the gate gives up on
/// it for now (the delivery then stays unfinished, and the recovery pass or
/// a redelivery completes it).
pub const RETRIES: u32 = 4;

/// One worker's hold on one delivery while it does the delivery's work.
struct Work {
    /// Delivery id.
    delivery: String,
    /// This worker (the lease and plan claims it holds).
    owner: String,
    /// Set when a ledger write or state move of this delivery could not be
    /// done: the delivery is then not marked done.
    unrecorded: AtomicBool,
}

impl Work {
    fn missed(&self) {
        self.unrecorded.store(true, Ordering::SeqCst);
    }
}

/// Renews a worker's lease while it lives (aborted on drop).
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A named step where the test hook may stop the process for a kill -9
/// (feature `crash-points`, off in every build but the gate's own tests;
/// inert unless `TWOKEY_GATE_CRASH_AT` names the step).
#[cfg(feature = "crash-points")]
async fn crash_point(step: &str) {
    if std::env::var("TWOKEY_GATE_CRASH_AT").ok().as_deref() != Some(step) {
        return;
    }
    if let Some(mark) = std::env::var_os("TWOKEY_GATE_CRASH_MARK") {
        if let Err(e) = std::fs::write(mark, step) {
            tracing::error!(error = %e, "crash point: cannot write the mark");
        }
    }
    tracing::warn!(step, "crash point reached: waiting to be killed");
    std::future::pending::<()>().await;
}

#[cfg(not(feature = "crash-points"))]
async fn crash_point(_step: &str) {}

/// How an interrupted apply was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Repository.
    pub repo: String,
    /// Pull request.
    pub pull: u64,
    /// Project.
    pub project: String,
    /// Head commit of the plan.
    pub head_sha: String,
    /// The plan's new status (`applied`, `apply_failed`, `planned`), or
    /// `None` when it could not be resolved yet (retried next pass).
    pub status: Option<String>,
    /// What decided it: `ledger` (the result was recorded), `not_started`
    /// (no evidence, so Terraform never ran), `terraform_in_sync` /
    /// `terraform_differs` (a fresh plan of the head commit), or the error.
    pub how: String,
}

fn system_now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

struct Inflight(Arc<AtomicUsize>);

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What to plan.
enum Targets<'a> {
    /// Autoplan: the projects whose files changed.
    Changed(&'a [String]),
    /// A comment command: one project or all.
    Named(Option<&'a str>),
}

const STATUS_CONTEXT: &str = "twokey/plan";

/// A value as ledger data (`null` if it would not serialise, which plain
/// data never does).
fn value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn subject(repo: &str, pull: u64) -> String {
    format!("github:{repo}#{pull}")
}

fn slug(repo: &str) -> String {
    repo.replace('/', "__")
}

/// A comment command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `twokey plan [-p P]`.
    Plan(Option<String>),
    /// `twokey apply [-p P]`.
    Apply(Option<String>),
    /// `twokey unlock`.
    Unlock,
}

/// Parses the first line of a comment; `None` if it is not a command.
pub fn parse_command(body: &str) -> Option<Command> {
    let line = body.lines().next()?.trim();
    let mut words = line.split_whitespace();
    if words.next()? != "twokey" {
        return None;
    }
    let verb = words.next()?;
    let mut project = None;
    while let Some(w) = words.next() {
        match w {
            "-p" | "--project" => project = Some(words.next()?.to_string()),
            _ => return None,
        }
    }
    match verb {
        "plan" => Some(Command::Plan(project)),
        "apply" => Some(Command::Apply(project)),
        "unlock" if project.is_none() => Some(Command::Unlock),
        _ => None,
    }
}

impl Gate {
    /// A gate on the system clock.
    pub fn new(
        config: GateConfig,
        secret: Vec<u8>,
        db: GateDb,
        github: Arc<dyn GitHub>,
        checkout: Arc<dyn Checkout>,
    ) -> Gate {
        Gate {
            config,
            secret,
            db,
            github,
            checkout,
            clock: Arc::new(system_now),
            node: format!("gate-{}", std::process::id()),
            inflight: Arc::new(AtomicUsize::new(0)),
            answer_within: ANSWER_WITHIN,
            mergeable_retry: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            background_every: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(250),
            instance: format!("{}-{}", std::process::id(), system_now()),
            workers: AtomicU64::new(0),
            settings: None,
        }
    }

    /// Sends settings events to `watcher` (the GitHub posture).
    pub fn with_settings_watcher(mut self, watcher: Arc<dyn SettingsWatcher>) -> Gate {
        self.settings = Some(watcher);
        self
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> Millis + Send + Sync>) -> Gate {
        self.clock = clock;
        self
    }

    /// Sets the replica name used for drift leases.
    pub fn with_node(mut self, node: &str) -> Gate {
        self.node = node.to_string();
        self
    }

    /// Waits until no webhook delivery is being worked on (at shutdown, so
    /// an apply is never cut off mid-way), at most `limit`.
    pub async fn drain(&self, limit: Duration) {
        let start = std::time::Instant::now();
        while self.inflight.load(Ordering::SeqCst) > 0 && start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn now(&self) -> Millis {
        (self.clock)()
    }

    async fn policy_hash(&self) -> String {
        match self.db.store().current_policy().await {
            Ok(Some((h, _))) => h,
            _ => String::new(),
        }
    }

    fn lease_ms(&self) -> Millis {
        self.lease.as_millis() as Millis
    }

    /// A new worker name: unique across replicas and restarts.
    fn new_owner(&self, what: &str) -> String {
        let n = self.workers.fetch_add(1, Ordering::SeqCst);
        format!("{}/{}/{what}/{n}", self.node, self.instance)
    }

    /// Runs `f` until it succeeds, at most [`RETRIES`] times with doubling
    /// pauses, like the broker's retries; the last error is returned (and
    /// logged) so the caller leaves its work unfinished rather than
    /// dropping it.
    async fn retried<T, F, Fut, E>(&self, what: &str, mut f: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let mut pause = self.retry_backoff;
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt >= RETRIES => {
                    tracing::error!(what, attempts = attempt, error = %e, "gate: giving up for now; the work stays unfinished");
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(what, attempt, error = %e, "gate: failed; retrying");
                }
            }
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
            attempt += 1;
        }
    }

    /// Writes one ledger event by GitHub user `actor` (its kind, alert and
    /// data come from the typed event), retried; an error is returned (after
    /// the retries) so callers fail closed and leave their delivery
    /// unfinished.
    async fn record(&self, subj: &str, actor: &str, event: LedgerEvent) -> Result<(), StoreError> {
        let kind = event.kind().as_str();
        let ev = event.by(format!("github|{actor}"));
        self.retried(kind, || {
            let ev = ev.clone();
            async move {
                let ph = self.policy_hash().await;
                self.db
                    .store()
                    .record(self.now(), &ph, vec![(subj.to_string(), ev)])
                    .await
                    .map(|_| ())
            }
        })
        .await
    }

    /// Records evidence of a delivery's work; a write that fails after its
    /// retries marks the delivery unfinished.
    async fn evidence(&self, w: &Work, subj: &str, actor: &str, event: LedgerEvent) -> bool {
        let ok = self.record(subj, actor, event).await.is_ok();
        if !ok {
            w.missed();
        }
        ok
    }

    /// Records evidence that belongs to no delivery (a request refused before
    /// it is known to come from GitHub); a failure is logged as an error.
    async fn evidence_outside(&self, refused: GateRefused) {
        let reason = refused.reason();
        if let Err(e) = self
            .record(
                "github:webhook",
                "unknown",
                LedgerEvent::GateRefused(refused),
            )
            .await
        {
            tracing::error!(kind = "gate.refused", reason, error = %e, "gate: cannot record a refused webhook request");
        }
    }

    /// Sets a commit status; a failure is logged (a status is a courtesy to
    /// the pull request, not evidence: the ledger entry is).
    async fn status(&self, repo: &str, sha: &str, state: StatusState, text: &str) {
        if let Err(e) = self
            .github
            .status(repo, sha, state, STATUS_CONTEXT, text)
            .await
        {
            tracing::warn!(%repo, %sha, error = %e, "gate: cannot set the commit status");
        }
    }

    async fn say(&self, repo: &str, pull: u64, body: &str) {
        if let Err(e) = self.github.comment(repo, pull, body).await {
            tracing::warn!(%repo, pull, error = %e, "gate: cannot comment");
        }
    }

    /// Handles one webhook delivery: what was done, or why it failed.
    ///
    /// The delivery is recorded as `working` under this worker's lease
    /// before its work starts and marked done only after all of its evidence
    /// and state moves are written; a redelivery of an unfinished one (its
    /// worker died, or a write failed) resumes it, and its work is
    /// idempotent on the delivery id and the stored state, so it is done
    /// once.
    pub async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Result<Reply, GateError> {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        if body.len() > self.config.max_body_bytes {
            return Err(self.too_large(h("x-github-delivery")).await);
        }
        if let Err(e) = webhook::verify_signature(&self.secret, body, h("x-hub-signature-256")) {
            self.evidence_outside(GateRefused::Signature {
                error: e.to_string(),
                delivery: h("x-github-delivery").map(String::from),
                too_large: matches!(e, WebhookError::TooLarge(_)),
            })
            .await;
            return Err(e.into());
        }
        let delivery = webhook::delivery_id(h("x-github-delivery"))?;
        let name = h("x-github-event").unwrap_or("");
        let event = Event::parse(name, body)?;
        let repo = event.repo().unwrap_or("").to_string();
        let w = Work {
            delivery: delivery.clone(),
            owner: self.new_owner(&delivery),
            unrecorded: AtomicBool::new(false),
        };
        let started = self
            .db
            .begin_delivery(
                &delivery,
                name,
                &repo,
                &w.owner,
                self.now(),
                self.lease_ms(),
            )
            .await?;
        match started {
            DeliveryStart::New => {}
            DeliveryStart::Resumed { attempts } => {
                let resumed = DeliveryResumed {
                    delivery: delivery.clone(),
                    event: name.into(),
                    repo: repo.clone(),
                    attempts,
                };
                self.evidence(
                    &w,
                    "github:webhook",
                    "unknown",
                    LedgerEvent::GateDeliveryResumed(resumed),
                )
                .await;
            }
            start @ (DeliveryStart::Done | DeliveryStart::InProgress) => {
                // Finished, or being worked on by a live worker: a replay.
                self.evidence_outside(GateRefused::ReplayedDelivery {
                    delivery: delivery.clone(),
                    repo: repo.clone(),
                    in_progress: start == DeliveryStart::InProgress,
                })
                .await;
                return Ok(Reply::Done("duplicate delivery ignored".into()));
            }
        }
        let beat = self.heartbeat(&w);
        crash_point("delivery:begun").await;
        let result = self.work(&w, event, &repo).await;
        crash_point("delivery:worked").await;
        drop(beat);
        self.finish(&w, result).await
    }

    /// Marks a delivery's work finished: done when it succeeded and all of
    /// its evidence was written, else failed (a redelivery resumes it).
    async fn finish(&self, w: &Work, result: Result<Reply, GateError>) -> Result<Reply, GateError> {
        let failed = result.as_ref().is_err_and(GateError::is_server_side);
        let complete = !failed && !w.unrecorded.load(Ordering::SeqCst);
        let now = self.now();
        if self
            .retried("finish delivery", || {
                self.db
                    .finish_delivery(&w.delivery, &w.owner, now, complete)
            })
            .await
            .is_err()
        {
            // Its lease lapses; the background pass alerts, a redelivery resumes it.
            let text = match &result {
                Ok(r) => r.to_string(),
                Err(e) => e.to_string(),
            };
            return Err(GateError::Unrecorded(format!(
                "{text}; the delivery could not be marked finished"
            )));
        }
        match result {
            Ok(reply) if !complete => Err(GateError::Unrecorded(format!(
                "{reply}; some of its evidence could not be written: redeliver to finish it"
            ))),
            result => result,
        }
    }

    /// Keeps `w`'s lease (and its plan claims) alive while the work runs.
    fn heartbeat(&self, w: &Work) -> Heartbeat {
        let db = self.db.clone();
        let clock = self.clock.clone();
        let lease = self.lease_ms();
        let every = self.lease / 3;
        let (id, owner) = (w.delivery.clone(), w.owner.clone());
        Heartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = db.renew_delivery(&id, &owner, clock() + lease).await {
                    tracing::warn!(delivery = %id, error = %e, "gate: cannot renew the delivery lease");
                }
            }
        }))
    }

    /// The work of one delivery.
    async fn work(&self, w: &Work, event: Event, repo: &str) -> Result<Reply, GateError> {
        if matches!(event, Event::Ping) {
            return Ok(Reply::Done("pong".into()));
        }
        if let Event::Settings(e) = &event {
            // Settings events concern every repository of the organisation,
            // not only the gate's own: the posture decides what it watches.
            let Some(watcher) = &self.settings else {
                return Ok(Reply::Ignored(
                    "settings event ignored: no [posture.github] configured".into(),
                ));
            };
            return match watcher.on_settings(&w.delivery, e).await {
                Ok(text) => Ok(Reply::Done(text)),
                Err(err) => {
                    w.missed();
                    tracing::error!(delivery = %w.delivery, event = %e.name, error = %err, "gate: the settings re-check failed; the delivery stays unfinished");
                    Err(GateError::Unrecorded(err))
                }
            };
        }
        if repo.is_empty() || !self.config.allows(repo) {
            return Ok(Reply::Ignored(
                "repository not in gate.allow; ignored".into(),
            ));
        }
        match event {
            Event::PullRequest(e) => self.on_pull_request(w, &e).await,
            Event::IssueComment(e) => self.on_comment(w, &e).await,
            _ => Ok(Reply::Ignored("event ignored".into())),
        }
    }

    /// Records a body over `gate.max_body_bytes` and says why it is refused.
    async fn too_large(&self, delivery: Option<&str>) -> GateError {
        self.evidence_outside(GateRefused::BodyTooLarge {
            limit: self.config.max_body_bytes,
            delivery: delivery.map(String::from),
        })
        .await;
        GateError::TooLarge(format!(
            "body larger than gate.max_body_bytes = {}",
            self.config.max_body_bytes
        ))
    }

    async fn on_pull_request(&self, w: &Work, e: &PullRequestEvent) -> Result<Reply, GateError> {
        let repo = &e.repository.full_name;
        let n = e.pull_request.number;
        let head = &e.pull_request.head.sha;
        match e.action.as_str() {
            "opened" | "reopened" | "synchronize" => {
                // Who pushed the head: the sender of the push (for `opened`,
                // the author who pushed the branch).
                self.retried("record pusher", || {
                    self.db
                        .put_pusher(repo, n, head, &e.sender.login, self.now())
                })
                .await?;
                // A new push invalidates every earlier plan (a redelivery of
                // this event keeps the plans it made itself).
                if !self.planned_by(w, repo, n, head).await {
                    self.retried("drop plans", || self.db.drop_plans(repo, n))
                        .await?;
                }
                let files = self.github.files(repo, n).await?;
                self.plan_all(w, repo, n, head, Targets::Changed(&files), &e.sender.login)
                    .await
            }
            "closed" => {
                if e.pull_request.merged == Some(true) && self.config.apply_on_merge {
                    let result = self.apply(w, repo, n, &e.sender.login, None, true).await;
                    let text = match &result {
                        Ok(r) => r.to_string(),
                        Err(e) => e.to_string(),
                    };
                    tracing::info!(%repo, pull = n, result = %text, "gate: apply on merge");
                    // On failure keep the plans: a redelivery finishes the apply.
                    result?;
                }
                self.retried("unlock", || self.db.unlock_pull(repo, n))
                    .await?;
                self.retried("drop plans", || self.db.drop_plans(repo, n))
                    .await?;
                Ok(Reply::Done("unlocked".into()))
            }
            _ => Ok(Reply::Ignored("action ignored".into())),
        }
    }

    fn projects_for(&self, repo: &str, name: Option<&str>) -> Vec<Project> {
        self.config
            .projects(repo)
            .into_iter()
            .filter(|p| name.is_none() || name == Some(p.name.as_str()))
            .cloned()
            .collect()
    }

    /// Whether this delivery already planned `head` of the pull request
    /// (it is being resumed after its worker died).
    async fn planned_by(&self, w: &Work, repo: &str, n: u64, head: &str) -> bool {
        match self.db.plans(repo, n).await {
            Ok(plans) => plans
                .iter()
                .any(|p| p.head_sha == head && p.delivery.as_deref() == Some(w.delivery.as_str())),
            Err(_) => false,
        }
    }

    async fn on_comment(&self, w: &Work, e: &IssueCommentEvent) -> Result<Reply, GateError> {
        if e.action != "created" || e.issue.pull_request.is_none() {
            return Ok(Reply::Ignored("not a new pull request comment".into()));
        }
        let Some(cmd) = parse_command(&e.comment.body) else {
            return Ok(Reply::Ignored("not a command".into()));
        };
        let repo = &e.repository.full_name;
        let n = e.issue.number;
        let who = &e.comment.user.login;
        let subj = subject(repo, n);
        let perm = self.github.permission(repo, who).await?;
        if !perm.can_write() {
            let refused = GateRefused::CommandWithoutWrite {
                command: format!("{cmd:?}"),
                permission: value(&perm),
            };
            self.evidence(w, &subj, who, LedgerEvent::GateRefused(refused))
                .await;
            self.say(
                repo,
                n,
                &format!("twokey: refused: @{who} has {perm:?} permission; commands need write."),
            )
            .await;
            return Ok(Reply::Done("refused: no write permission".into()));
        }
        match cmd {
            Command::Unlock => {
                self.retried("unlock", || self.db.unlock_pull(repo, n))
                    .await?;
                self.evidence(w, &subj, who, LedgerEvent::GateUnlock(Empty {}))
                    .await;
                self.say(repo, n, "twokey: locks released.").await;
                Ok(Reply::Done("unlocked".into()))
            }
            Command::Plan(p) => {
                let pull = self.github.pull(repo, n).await?;
                self.plan_all(
                    w,
                    repo,
                    n,
                    &pull.head_sha,
                    Targets::Named(p.as_deref()),
                    who,
                )
                .await
            }
            Command::Apply(p) => self.apply(w, repo, n, who, p.as_deref(), false).await,
        }
    }

    fn workdir(&self) -> PathBuf {
        PathBuf::from(&self.config.workdir)
    }

    fn runner(&self, p: &Project) -> Runner {
        Runner::new(match p.tool {
            Tool::Terraform => &self.config.terraform_bin,
            Tool::Tofu => &self.config.tofu_bin,
        })
    }

    async fn tree(&self, repo: &str, n: u64, sha: &str) -> Result<PathBuf, String> {
        let dest = self
            .workdir()
            .join("checkouts")
            .join(slug(repo))
            .join(n.to_string())
            .join(sha);
        if !dest.join(".twokey-done").exists() {
            let _ = tokio::fs::remove_dir_all(&dest).await;
            tokio::fs::create_dir_all(&dest)
                .await
                .map_err(|e| e.to_string())?;
            self.checkout.checkout(repo, sha, &dest).await?;
            tokio::fs::write(dest.join(".twokey-done"), b"")
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(dest)
    }

    /// Chooses the projects to plan at `head` and plans them. A selection
    /// file ([`SELECTION_FILE`]) at the root of the head commit may choose
    /// among the configured projects and nothing else; anything more in it
    /// (steps, workflows, commands) refuses the whole plan.
    async fn plan_all(
        &self,
        w: &Work,
        repo: &str,
        n: u64,
        head: &str,
        targets: Targets<'_>,
        actor: &str,
    ) -> Result<Reply, GateError> {
        let tree = self.checkout_for_plan(repo, n, head).await?;
        let selection = match self.selection(repo, &tree).await {
            Ok(sel) => sel,
            Err(msg) => return Ok(self.refuse_selection(w, repo, n, head, actor, &msg).await),
        };
        let projects = self.projects_to_plan(repo, selection, targets);
        // Resumed after a crash: projects this delivery already planned at
        // `head` are not planned again.
        let done: Vec<String> = self
            .db
            .plans(repo, n)
            .await?
            .into_iter()
            .filter(|p| p.head_sha == head && p.delivery.as_deref() == Some(w.delivery.as_str()))
            .map(|p| p.project)
            .collect();
        let mut planned = 0;
        for p in &projects {
            if done.contains(&p.name) {
                continue;
            }
            self.plan(w, repo, n, head, p, actor).await;
            planned += 1;
        }
        let earlier = projects.len() - planned;
        if earlier > 0 {
            return Ok(Reply::Done(format!(
                "planned {planned} project(s); {earlier} planned earlier by this delivery"
            )));
        }
        Ok(Reply::Done(format!("planned {planned} project(s)")))
    }

    /// The head commit's tree; a checkout that fails is answered on the
    /// pull request and its commit status.
    async fn checkout_for_plan(
        &self,
        repo: &str,
        n: u64,
        head: &str,
    ) -> Result<PathBuf, GateError> {
        match self.tree(repo, n, head).await {
            Ok(t) => Ok(t),
            Err(e) => {
                tracing::warn!(%repo, pull = n, error = %e, "gate: checkout failed");
                self.status(repo, head, StatusState::Failure, "checkout failed")
                    .await;
                self.say(
                    repo,
                    n,
                    &format!(
                        "twokey: cannot check out {head}: {}",
                        redact(&e, &self.config.redact_values)
                    ),
                )
                .await;
                Err(GateError::Checkout)
            }
        }
    }

    /// The projects the tree's selection file chooses (`None` without
    /// one), or why the file is refused.
    async fn selection(&self, repo: &str, tree: &Path) -> Result<Option<Vec<Project>>, String> {
        match tokio::fs::read_to_string(tree.join(SELECTION_FILE)).await {
            Ok(text) => match select(&self.config, repo, &text) {
                Ok(sel) => Ok(Some(sel.into_iter().cloned().collect())),
                Err(err) => Err(err.to_string()),
            },
            Err(_) => Ok(None),
        }
    }

    /// Records and answers a refused selection file: nothing is planned.
    async fn refuse_selection(
        &self,
        w: &Work,
        repo: &str,
        n: u64,
        head: &str,
        actor: &str,
        msg: &str,
    ) -> Reply {
        let subj = subject(repo, n);
        let refused = GateRefused::SelectionFile {
            head_sha: head.into(),
            file: SELECTION_FILE.into(),
            error: msg.into(),
        };
        self.evidence(w, &subj, actor, LedgerEvent::GateRefused(refused))
            .await;
        self.status(repo, head, StatusState::Failure, "selection file refused")
            .await;
        self.say(
            repo,
            n,
            &format!(
                "twokey: refused: {msg}

Workflows, steps and commands are defined only in the server's config; nothing was planned for {head}."
            ),
        )
        .await;
        Reply::Done("refused: selection file".into())
    }

    /// The projects to plan: the selection file's (those named, when a
    /// command names one), else the configured ones that changed or are
    /// named.
    fn projects_to_plan(
        &self,
        repo: &str,
        selection: Option<Vec<Project>>,
        targets: Targets<'_>,
    ) -> Vec<Project> {
        match (selection, targets) {
            (Some(sel), Targets::Changed(_)) => sel,
            (Some(sel), Targets::Named(name)) => sel
                .into_iter()
                .filter(|p| name.is_none() || name == Some(p.name.as_str()))
                .collect(),
            (None, Targets::Changed(files)) => self
                .config
                .affected(repo, files)
                .into_iter()
                .cloned()
                .collect(),
            (None, Targets::Named(name)) => self.projects_for(repo, name),
        }
    }

    /// The saved plan as a file on this replica: where it was planned if
    /// that file is here, else restored from the store into this replica's
    /// workdir (the runner checks its SHA-256 against the plan row either way).
    async fn local_plan(&self, repo: &str, n: u64, plan: &PlanRow) -> Result<PathBuf, String> {
        let planned = PathBuf::from(&plan.plan_path);
        if tokio::fs::try_exists(&planned).await.unwrap_or(false) {
            return Ok(planned);
        }
        let (sha, b64) = self
            .db
            .plan_file(repo, n, &plan.project, &plan.head_sha)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "the saved plan of {} is neither here nor in the store",
                    plan.project
                )
            })?;
        if sha != plan.plan_sha256 {
            return Err(format!(
                "the stored plan of {} does not match its plan row",
                plan.project
            ));
        }
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the stored plan of {} is corrupt: {e}", plan.project))?;
        let local = self
            .workdir()
            .join("plans")
            .join(slug(repo))
            .join(n.to_string())
            .join(format!("{}-{}.tfplan", plan.project, plan.head_sha));
        if let Some(parent) = local.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| e.to_string())?;
        }
        tokio::fs::write(&local, bytes)
            .await
            .map_err(|e| e.to_string())?;
        Ok(local)
    }

    /// Plans one project of a pull request at `head`: lock it, run the
    /// plan, record and save it, answer on the pull request.
    async fn plan(&self, w: &Work, repo: &str, n: u64, head: &str, p: &Project, actor: &str) {
        if !self.lock_for_plan(w, repo, n, head, p, actor).await {
            return;
        }
        self.status(repo, head, StatusState::Pending, "planning")
            .await;
        let run = self.run_plan(repo, n, head, p).await;
        let shown = redact(&run.text, &self.config.redact_values);
        if !self
            .save_plan(w, repo, n, head, p, actor, &run, shown != run.text)
            .await
        {
            return;
        }
        self.answer_plan(repo, n, head, p, run.ok, &shown).await;
    }

    /// Takes the project's lock for the pull request; whether it holds it
    /// (a lock held by another pull request is answered on this one).
    async fn lock_for_plan(
        &self,
        w: &Work,
        repo: &str,
        n: u64,
        head: &str,
        p: &Project,
        actor: &str,
    ) -> bool {
        let lock = Lock {
            repo: repo.into(),
            project: p.name.clone(),
            workspace: p.workspace.clone(),
            pull: n,
            head_sha: head.into(),
            locked_by: actor.into(),
        };
        match self.db.lock(&lock, self.now()).await {
            Ok(None) => true,
            Ok(Some(holder)) => {
                self.say(repo, n, &format!("twokey: project `{}` workspace `{}` is locked by #{}; plan there first or `twokey unlock` it.", p.name, p.workspace, holder.pull)).await;
                self.status(
                    repo,
                    head,
                    StatusState::Failure,
                    "locked by another pull request",
                )
                .await;
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "gate: lock failed");
                w.missed();
                false
            }
        }
    }

    /// Runs Terraform's plan of the project in the head commit's tree,
    /// saving the plan file.
    async fn run_plan(&self, repo: &str, n: u64, head: &str, p: &Project) -> PlanRun {
        let result = async {
            let tree = self.tree(repo, n, head).await?;
            let dir = tree.join(&p.dir);
            let plan_path = self
                .workdir()
                .join("plans")
                .join(slug(repo))
                .join(n.to_string())
                .join(format!("{}-{head}.tfplan", p.name));
            let out = self
                .runner(p)
                .plan(p, &dir, &plan_path)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((out, plan_path))
        }
        .await;
        match result {
            Ok((out, path)) => PlanRun {
                ok: out.ok,
                text: out.output,
                sha: out.plan_sha256,
                path,
            },
            Err(e) => PlanRun {
                ok: false,
                text: e,
                sha: None,
                path: PathBuf::new(),
            },
        }
    }

    /// Records the plan in the ledger, then keeps its file and its row in
    /// the store; whether all of it was written (if not, the delivery is
    /// marked unfinished).
    #[allow(clippy::too_many_arguments)]
    async fn save_plan(
        &self,
        w: &Work,
        repo: &str,
        n: u64,
        head: &str,
        p: &Project,
        actor: &str,
        run: &PlanRun,
        redacted: bool,
    ) -> bool {
        let subj = subject(repo, n);
        let (ok, sha, path) = (run.ok, &run.sha, &run.path);
        let row = PlanRow {
            project: p.name.clone(),
            head_sha: head.into(),
            plan_path: path.display().to_string(),
            plan_sha256: sha.clone().unwrap_or_default(),
            status: if ok {
                PlanState::Planned
            } else {
                PlanState::Failed
            },
            delivery: Some(w.delivery.clone()),
        };
        // Ledger first: a plan nobody recorded must not be appliable.
        if !self
            .evidence(
                w,
                &subj,
                actor,
                LedgerEvent::GatePlan(GatePlan {
                    project: p.name.clone(),
                    workspace: p.workspace.clone(),
                    head_sha: head.into(),
                    ok,
                    plan_sha256: sha.clone(),
                    redacted,
                }),
            )
            .await
        {
            return false;
        }
        if ok {
            // The plan file itself goes to the store too, so any replica
            // can apply it (its SHA-256 is checked again before use).
            let stored = match tokio::fs::read(path).await {
                Ok(bytes) => {
                    use base64::Engine;
                    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                    self.retried("store the plan file", || {
                        self.db
                            .put_plan_file(repo, n, &p.name, head, &row.plan_sha256, &b64)
                    })
                    .await
                    .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = stored {
                tracing::warn!(%repo, pull = n, error = %e, "gate: cannot store the plan file");
                w.missed();
                return false;
            }
        }
        if self
            .retried("save the plan", || {
                self.db.put_plan(repo, n, &row, self.now())
            })
            .await
            .is_err()
        {
            w.missed();
            return false;
        }
        true
    }

    /// Answers a plan on the pull request (its redacted output) and in the
    /// head commit's status.
    async fn answer_plan(
        &self,
        repo: &str,
        n: u64,
        head: &str,
        p: &Project,
        ok: bool,
        shown: &str,
    ) {
        let header = format!(
            "### twokey plan `{}` ({}) at {}: {}",
            p.name,
            p.workspace,
            head.get(..7).unwrap_or(head),
            if ok { "succeeded" } else { "FAILED" }
        );
        for c in split_comment(&header, shown, GITHUB_COMMENT_LIMIT) {
            self.say(repo, n, &c).await;
        }
        let st = if ok {
            StatusState::Success
        } else {
            StatusState::Failure
        };
        self.status(
            repo,
            head,
            st,
            if ok { "plan succeeded" } else { "plan failed" },
        )
        .await;
    }

    /// Applies the saved plans of a pull request's head commit (all, or
    /// project `only`), if the apply requirements are met; `merged` when it
    /// runs on merge.
    async fn apply(
        &self,
        w: &Work,
        repo: &str,
        n: u64,
        who: &str,
        only: Option<&str>,
        merged: bool,
    ) -> Result<Reply, GateError> {
        // An apply of this pull request left by a dead worker is resolved
        // first (so a redelivery never applies it a second time).
        self.recover_plans(Some((repo, n))).await;
        let req = self.apply_requirements(merged);
        let (pull, facts) = self.pull_facts(repo, n, &req).await?;
        let decision = decide(&facts, &req);
        let a = ApplyRun {
            w,
            repo,
            n,
            who,
            subj: subject(repo, n),
            merged,
            pull,
            facts,
            decision,
        };
        if !a.decision.allowed() {
            return Ok(self.refuse_apply(&a).await);
        }
        let (plans, earlier) = self.plans_to_apply(&a, only).await?;
        if plans.is_empty() && earlier > 0 {
            return Ok(Reply::Done(format!(
                "{earlier} project(s) applied earlier by this delivery; nothing applied twice"
            )));
        }
        if plans.is_empty() {
            return Ok(self.refuse_no_plan(&a).await);
        }
        let mut applied = 0;
        for plan in plans {
            if self.apply_plan(&a, &plan).await? {
                applied += 1;
            }
        }
        Ok(Reply::Done(format!("applied {applied} project(s)")))
    }

    /// The requirements an apply must meet (fewer once merged).
    fn apply_requirements(&self, merged: bool) -> Requirements {
        let mut req = self.config.requirements();
        if merged {
            // Once merged, GitHub no longer computes mergeability; branch
            // protection decided it at merge time.
            req.require_mergeable = false;
            req.require_up_to_date = false;
        }
        req
    }

    /// What the decision needs to know about the pull request, from GitHub
    /// and the recorded pusher.
    async fn pull_facts(
        &self,
        repo: &str,
        n: u64,
        req: &Requirements,
    ) -> Result<(PullInfo, PullFacts), GateError> {
        let mut pull = self.github.pull(repo, n).await?;
        // GitHub answers `mergeable: null` while it computes it after a
        // push: ask again a few times before refusing as unknown.
        let mut tries = 0;
        while pull.mergeable.is_none() && req.require_mergeable && tries < 5 {
            tokio::time::sleep(self.mergeable_retry).await;
            tries += 1;
            pull = self.github.pull(repo, n).await?;
        }
        let mut reviews = self.github.reviews(repo, n).await?;
        for r in &mut reviews {
            r.permission = self.github.permission(repo, &r.reviewer).await?;
        }
        let pusher = self.db.pusher(repo, n, &pull.head_sha).await.ok().flatten();
        let head_authors = self.github.commit_logins(repo, &pull.head_sha).await?;
        let facts = PullFacts {
            head_sha: pull.head_sha.clone(),
            author: pull.author.clone(),
            last_pusher: pusher,
            head_authors,
            mergeable: pull.mergeable,
            behind: pull.mergeable_state == "behind",
            reviews,
        };
        Ok((pull, facts))
    }

    /// Records and answers an apply whose requirements are not met.
    async fn refuse_apply(&self, a: &ApplyRun<'_>) -> Reply {
        let refused = GateRefused::ApplyRequirements {
            head_sha: a.pull.head_sha.clone(),
            decision: value(&a.decision),
        };
        self.evidence(a.w, &a.subj, a.who, LedgerEvent::GateRefused(refused))
            .await;
        self.say(
            a.repo,
            a.n,
            &format!("twokey: apply refused.\n{}", a.decision.explain()),
        )
        .await;
        Reply::Done("apply refused".into())
    }

    /// The plans of the head commit still to apply, and how many of them
    /// this delivery applied earlier.
    async fn plans_to_apply(
        &self,
        a: &ApplyRun<'_>,
        only: Option<&str>,
    ) -> Result<(Vec<PlanRow>, usize), GateError> {
        let plans: Vec<PlanRow> = self
            .db
            .plans(a.repo, a.n)
            .await?
            .into_iter()
            .filter(|p| only.is_none() || only == Some(p.project.as_str()))
            .filter(|p| p.head_sha == a.pull.head_sha)
            .collect();
        // Resumed after a crash: what this delivery applied is not applied again.
        let earlier = plans
            .iter()
            .filter(|p| {
                p.delivery.as_deref() == Some(a.w.delivery.as_str())
                    && p.status != PlanState::Planned
            })
            .count();
        let plans: Vec<PlanRow> = plans
            .into_iter()
            .filter(|p| p.status == PlanState::Planned)
            .collect();
        Ok((plans, earlier))
    }

    /// Records and answers an apply with no plan of the head commit.
    async fn refuse_no_plan(&self, a: &ApplyRun<'_>) -> Reply {
        let refused = GateRefused::NoPlanForHead {
            head_sha: a.pull.head_sha.clone(),
        };
        self.evidence(a.w, &a.subj, a.who, LedgerEvent::GateRefused(refused))
            .await;
        self.say(
            a.repo,
            a.n,
            "twokey: apply refused: no successful plan for the head commit; run `twokey plan`.",
        )
        .await;
        Reply::Done("no plan".into())
    }

    /// Applies one saved plan: claim it, record the evidence, run the
    /// apply, record its result and move the plan, answer on the pull
    /// request. Returns whether it was applied.
    async fn apply_plan(&self, a: &ApplyRun<'_>, plan: &PlanRow) -> Result<bool, GateError> {
        let Some(project) = self
            .projects_for(a.repo, Some(&plan.project))
            .into_iter()
            .next()
        else {
            return Ok(false);
        };
        if !self.claim_for_apply(a, plan).await? {
            return Ok(false);
        }
        crash_point("apply:claimed").await;
        self.record_apply_evidence(a, plan).await?;
        crash_point("apply:evidence").await;
        let (ok, text) = self.run_apply(a, &project, plan).await;
        crash_point("apply:ran").await;
        let shown = redact(&text, &self.config.redact_values);
        self.record_apply_result(a, plan, ok, shown != text).await;
        self.answer_apply(a, plan, ok, &shown).await;
        Ok(ok)
    }

    /// Claims the plan once (a second `apply` or replica gets nothing);
    /// whether this worker got it.
    async fn claim_for_apply(&self, a: &ApplyRun<'_>, plan: &PlanRow) -> Result<bool, GateError> {
        let claimed = self
            .db
            .claim_plan(
                a.repo,
                a.n,
                &plan.project,
                &a.pull.head_sha,
                &a.w.delivery,
                &a.w.owner,
                self.now() + self.lease_ms(),
            )
            .await?;
        if !claimed {
            // Another comment or replica claimed it first.
            self.say(
                a.repo,
                a.n,
                &format!(
                    "twokey: `{}` at {} is already being applied by another command; not applying it twice.",
                    plan.project,
                    a.pull.head_sha.get(..7).unwrap_or(&a.pull.head_sha)
                ),
            )
            .await;
        }
        Ok(claimed)
    }

    /// Evidence first: no apply without its ledger entry. If it cannot be
    /// written the plan is given back and the apply refused.
    async fn record_apply_evidence(
        &self,
        a: &ApplyRun<'_>,
        plan: &PlanRow,
    ) -> Result<(), GateError> {
        let (w, pull, facts, decision) = (a.w, &a.pull, &a.facts, &a.decision);
        if self
            .evidence(
                w,
                &a.subj,
                a.who,
                LedgerEvent::GateApplyEvidence(ApplyEvidence {
                    project: plan.project.clone(),
                    head_sha: pull.head_sha.clone(),
                    plan_sha256: plan.plan_sha256.clone(),
                    author: pull.author.clone(),
                    last_pusher: value(&facts.last_pusher),
                    head_authors: value(&facts.head_authors),
                    approvals: value(&decision.approvals),
                    ignored: value(&decision.ignored),
                    on_merge: a.merged,
                    delivery: w.delivery.clone(),
                }),
            )
            .await
        {
            return Ok(());
        }
        // Not applied: give the plan back. If even that fails, its
        // claim is released with the delivery and the recovery pass
        // finds no evidence and gives it back.
        if let Err(e) = self
            .retried("unclaim plan", || {
                self.db.settle_plan(
                    a.repo,
                    a.n,
                    &plan.project,
                    &pull.head_sha,
                    &w.owner,
                    PlanState::Planned,
                )
            })
            .await
        {
            tracing::error!(repo = %a.repo, pull = a.n, project = %plan.project, error = %e, "gate: plan left applying; the recovery pass resolves it");
        }
        Err(GateError::Unrecorded(
            "ledger unavailable; not applied".into(),
        ))
    }

    /// Runs Terraform's apply of the saved plan in the head commit's tree:
    /// whether it succeeded, and its output (or why it could not run).
    async fn run_apply(
        &self,
        a: &ApplyRun<'_>,
        project: &Project,
        plan: &PlanRow,
    ) -> (bool, String) {
        let res = match (
            self.tree(a.repo, a.n, &a.pull.head_sha).await,
            self.local_plan(a.repo, a.n, plan).await,
        ) {
            (Ok(tree), Ok(plan_path)) => self
                .runner(project)
                .apply(
                    project,
                    &tree.join(&project.dir),
                    &plan_path,
                    &plan.plan_sha256,
                )
                .await
                .map_err(|e| e.to_string()),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match res {
            Ok(o) => (o.ok, o.output),
            Err(e) => (false, e),
        }
    }

    /// The result is evidence before the plan moves: a plan is never
    /// `applied` without it. If it cannot be written, the plan stays
    /// `applying` and the recovery pass re-checks it with Terraform.
    async fn record_apply_result(
        &self,
        a: &ApplyRun<'_>,
        plan: &PlanRow,
        ok: bool,
        redacted: bool,
    ) {
        let (w, pull) = (a.w, &a.pull);
        if !self
            .evidence(
                w,
                &a.subj,
                a.who,
                LedgerEvent::GateApplyResult(ApplyResult {
                    project: plan.project.clone(),
                    head_sha: pull.head_sha.clone(),
                    plan_sha256: plan.plan_sha256.clone(),
                    ok,
                    redacted,
                }),
            )
            .await
        {
            return;
        }
        let to = if ok {
            PlanState::Applied
        } else {
            PlanState::ApplyFailed
        };
        if let Err(e) = self
            .retried("settle plan", || {
                self.db
                    .settle_plan(a.repo, a.n, &plan.project, &pull.head_sha, &w.owner, to)
            })
            .await
        {
            // Its result is in the ledger: the recovery pass moves it.
            tracing::error!(repo = %a.repo, pull = a.n, project = %plan.project, error = %e, "gate: plan left applying");
            w.missed();
        }
    }

    /// Answers an apply on the pull request with its (redacted) output.
    async fn answer_apply(&self, a: &ApplyRun<'_>, plan: &PlanRow, ok: bool, shown: &str) {
        let header = format!(
            "### twokey apply `{}` at {}: {}",
            plan.project,
            a.pull.head_sha.get(..7).unwrap_or(&a.pull.head_sha),
            if ok { "succeeded" } else { "FAILED" }
        );
        for c in split_comment(&header, shown, GITHUB_COMMENT_LIMIT) {
            self.say(a.repo, a.n, &c).await;
        }
    }
}

/// What one Terraform plan gave.
struct PlanRun {
    /// Whether it succeeded.
    ok: bool,
    /// Its output, or why it could not run.
    text: String,
    /// SHA-256 of the saved plan file, when it succeeded.
    sha: Option<String>,
    /// The saved plan file (empty when it could not run).
    path: PathBuf,
}

/// One apply command (or apply on merge) of a pull request: who asked, the
/// pull request's facts and the decision that allowed it.
struct ApplyRun<'a> {
    /// The delivery.
    w: &'a Work,
    /// Repository.
    repo: &'a str,
    /// Pull request.
    n: u64,
    /// Who asked (or merged).
    who: &'a str,
    /// The ledger subject of the pull request.
    subj: String,
    /// Whether it runs on merge.
    merged: bool,
    /// The pull request as GitHub reports it.
    pull: PullInfo,
    /// What the decision was made on.
    facts: PullFacts,
    /// The decision.
    decision: Decision,
}

/// The outcome of one project's drift check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftOutcome {
    /// Reality matches the code (`plan -detailed-exitcode` exit 0).
    InSync,
    /// Reality differs from the code (exit 2): alerted.
    Drift,
    /// The check could not run or the plan failed: alerted.
    Failed(String),
    /// Not due yet, or another replica holds it.
    Skipped,
}

/// The lines of a plan that say what differs, redacted, at most `max` chars.
fn drift_summary(text: &str, max: usize) -> String {
    let keep: Vec<&str> = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with('#')
                || t.starts_with('+')
                || t.starts_with('-')
                || t.starts_with('~')
                || t.starts_with("Plan:")
                || t.starts_with("Changes to Outputs")
                || t.starts_with("Note:")
        })
        .collect();
    let mut s = keep.join("\n");
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n[...]");
    }
    s
}

impl Gate {
    /// One drift pass: plans the default branch of every project that has
    /// `drift` on, whose check is due and not held by another replica
    /// (a lease in `gate_drift`). Exit 2 of `plan -detailed-exitcode`
    /// (reality differs from the code) and failures are ledger entries that
    /// alert through the broker's alert sinks; a clean check is a ledger entry
    /// too.
    pub async fn drift_once(&self) -> Vec<(String, String, DriftOutcome)> {
        let Some(interval) = self.config.drift_interval_ms() else {
            return Vec::new();
        };
        let lease = self.config.drift_lease_ms();
        let projects: Vec<Project> = self
            .config
            .project
            .iter()
            .filter(|p| p.drift)
            .cloned()
            .collect();
        let mut out = Vec::new();
        for p in projects {
            match self
                .db
                .claim_drift(
                    &p.repo,
                    &p.name,
                    &p.workspace,
                    &self.node,
                    self.now(),
                    lease,
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    out.push((p.repo.clone(), p.name.clone(), DriftOutcome::Skipped));
                    continue;
                }
                Err(e) => {
                    tracing::warn!(repo = %p.repo, project = %p.name, error = %e, "gate: drift claim failed");
                    continue;
                }
            }
            let (sha, outcome, recorded) = self.drift_check(&p).await;
            let result = match &outcome {
                DriftOutcome::InSync => "in_sync",
                DriftOutcome::Drift => "drift",
                DriftOutcome::Failed(_) => "failed",
                DriftOutcome::Skipped => "skipped",
            };
            // If the ledger could not be written, try again soon rather
            // than staying silent for a whole interval.
            let next = self.now()
                + if recorded {
                    interval
                } else {
                    interval.min(60_000)
                };
            if let Err(e) = self
                .db
                .finish_drift(
                    &p.repo,
                    &p.name,
                    &p.workspace,
                    &self.node,
                    next,
                    &sha,
                    result,
                )
                .await
            {
                tracing::warn!(repo = %p.repo, project = %p.name, error = %e, "gate: drift release failed");
            }
            out.push((p.repo.clone(), p.name.clone(), outcome));
        }
        out
    }

    /// Plans the default branch of one project against reality and records
    /// what it found: (the commit checked, the outcome, whether the ledger
    /// entry was written).
    async fn drift_check(&self, p: &Project) -> (String, DriftOutcome, bool) {
        let subj = format!("github:{}:drift:{}", p.repo, p.name);
        let (branch, sha) = match self.github.default_branch(&p.repo).await {
            Ok(b) => b,
            Err(e) => {
                let msg = e.to_string();
                let failed = DriftFailed {
                    repo: p.repo.clone(),
                    project: p.name.clone(),
                    workspace: p.workspace.clone(),
                    branch: None,
                    sha: None,
                    error: msg.clone(),
                    output: None,
                };
                let ok = self
                    .record(&subj, "twokey", LedgerEvent::GateDriftFailed(failed))
                    .await
                    .is_ok();
                return (String::new(), DriftOutcome::Failed(msg), ok);
            }
        };
        let res = async {
            let tree = self.tree(&p.repo, 0, &sha).await?;
            self.runner(p)
                .plan_detailed(p, &tree.join(&p.dir))
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        let target = DriftTarget {
            repo: p.repo.clone(),
            project: p.name.clone(),
            workspace: p.workspace.clone(),
            branch,
            sha: sha.clone(),
        };
        let (event, outcome) = self.drift_event(target, res);
        let ok = self.record(&subj, "twokey", event).await.is_ok();
        (sha, outcome, ok)
    }

    /// The ledger event and outcome of a drift check's plan
    /// (`plan -detailed-exitcode`: its exit code and output, or why it could
    /// not run).
    fn drift_event(
        &self,
        target: DriftTarget,
        res: Result<(i32, String), String>,
    ) -> (LedgerEvent, DriftOutcome) {
        let failed = |target: DriftTarget, error: String, output: Option<String>| {
            LedgerEvent::GateDriftFailed(DriftFailed {
                repo: target.repo,
                project: target.project,
                workspace: target.workspace,
                branch: Some(target.branch),
                sha: Some(target.sha),
                error,
                output,
            })
        };
        match res {
            Ok((0, _)) => (
                LedgerEvent::GateDriftCheck(Drift {
                    target,
                    drift: false,
                    summary: None,
                }),
                DriftOutcome::InSync,
            ),
            Ok((2, text)) => {
                let shown = redact(&text, &self.config.redact_values);
                (
                    LedgerEvent::GateDrift(Drift {
                        target,
                        drift: true,
                        summary: Some(drift_summary(&shown, 4000)),
                    }),
                    DriftOutcome::Drift,
                )
            }
            Ok((code, text)) => {
                let shown = redact(&text, &self.config.redact_values);
                let msg = format!("plan exited {code}");
                (
                    failed(target, msg.clone(), Some(drift_summary(&shown, 4000))),
                    DriftOutcome::Failed(msg),
                )
            }
            Err(e) => {
                let msg = redact(&e, &self.config.redact_values);
                (failed(target, msg.clone(), None), DriftOutcome::Failed(msg))
            }
        }
    }

    /// The binary's name for [`Gate::run_background`] (drift checks were the
    /// first background work): recovery, unfinished-delivery alerts and
    /// drift checks.
    pub async fn run_drift(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        self.run_background(shutdown).await
    }
}

/// How long the webhook route waits for a delivery's work before answering
/// `202 Accepted` (GitHub gives up after 10 s; the work goes on regardless).
const ANSWER_WITHIN: Duration = Duration::from_secs(8);

/// The HTTP status and text of the engine's result: the one place a
/// [`GateError`] becomes a status.
fn status_of(result: Result<Reply, GateError>) -> (StatusCode, String) {
    let e = match result {
        Ok(Reply::Done(text)) => return (StatusCode::OK, text),
        Ok(Reply::Ignored(text)) => return (StatusCode::ACCEPTED, text),
        Err(e) => e,
    };
    let status = match &e {
        GateError::BadRequest(_) => StatusCode::BAD_REQUEST,
        GateError::Unsigned(_) => StatusCode::UNAUTHORIZED,
        GateError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        GateError::GitHub(_) | GateError::Checkout => StatusCode::BAD_GATEWAY,
        GateError::Store(_) | GateError::Unrecorded(_) => StatusCode::SERVICE_UNAVAILABLE,
        GateError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string())
}

/// The webhook's answer: a success as plain text, every error as RFC 9457
/// problem details (`application/problem+json`) like the rest of the API. A
/// server-side failure says only "internal error" with a correlation id that
/// the log line carrying its cause also has (no database text reaches the
/// client).
fn answer((status, text): (StatusCode, String)) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !(status.is_client_error() || status.is_server_error()) {
        return (status, text).into_response();
    }
    let (kind, detail) = if status.is_server_error() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = hex::encode(&Sha256::digest(format!("{nanos}{text}").as_bytes())[..8]);
        tracing::error!(correlation_id = %id, status = status.as_u16(), error = %text, "gate webhook failed");
        (
            "internal",
            format!(
                "internal error: the delivery could not be finished (its evidence could not be written, or its work failed); \
                 it stays unfinished, redeliver it (correlation id {id})"
            ),
        )
    } else {
        ("gate-refused", text)
    };
    let body = json!({
        "type": format!("https://twokey.dev/problems/{kind}"),
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/problem+json"),
    );
    resp
}

/// The webhook route: `POST /v1/gate/github`.
///
/// Each delivery is worked on in its own task, so a slow plan or apply is
/// never cancelled when GitHub closes the connection; the answer is the
/// result when it is ready within a few seconds, `202` otherwise.
pub fn router(gate: Arc<Gate>) -> axum::Router {
    use axum::extract::rejection::BytesRejection;
    use axum::extract::{DefaultBodyLimit, State};
    use axum::routing::post;
    async fn hook(
        State(g): State<Arc<Gate>>,
        headers: HeaderMap,
        body: Result<axum::body::Bytes, BytesRejection>,
    ) -> (StatusCode, String) {
        let body = match body {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                let d = headers
                    .get("x-github-delivery")
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
                return status_of(Err(g.too_large(d.as_deref()).await));
            }
            Err(e) => return (e.status(), e.body_text()),
        };
        g.inflight.fetch_add(1, Ordering::SeqCst);
        let guard = Inflight(g.inflight.clone());
        let within = g.answer_within;
        let task = tokio::spawn(async move {
            let _guard = guard;
            g.handle(&headers, &body).await
        });
        match tokio::time::timeout(within, task).await {
            Ok(Ok(r)) => status_of(r),
            Ok(Err(e)) => status_of(Err(GateError::Internal(e.to_string()))),
            Err(_) => (StatusCode::ACCEPTED, "accepted; working on it".into()),
        }
    }
    let limit = gate.config.max_body_bytes;
    async fn hook_answer(
        state: State<Arc<Gate>>,
        headers: HeaderMap,
        body: Result<axum::body::Bytes, BytesRejection>,
    ) -> axum::response::Response {
        answer(hook(state, headers, body).await)
    }
    axum::Router::new()
        .route("/v1/gate/github", post(hook_answer))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(gate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statuses GitHub sees, one per kind of result.
    #[test]
    fn each_result_has_its_status() {
        let store = || GateError::Store(StoreError::Db(sqlx::Error::Protocol("down".into())));
        let cases: Vec<(Result<Reply, GateError>, StatusCode)> = vec![
            (
                Ok(Reply::Done("planned 1 project(s)".into())),
                StatusCode::OK,
            ),
            (
                Ok(Reply::Ignored("event ignored".into())),
                StatusCode::ACCEPTED,
            ),
            (
                Err(WebhookError::MissingDelivery.into()),
                StatusCode::BAD_REQUEST,
            ),
            (
                Err(WebhookError::Payload("x".into()).into()),
                StatusCode::BAD_REQUEST,
            ),
            (
                Err(WebhookError::BadSignature.into()),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Err(WebhookError::MissingSignature.into()),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Err(WebhookError::TooLarge(10).into()),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                Err(GateError::GitHub(crate::github::GitHubError::Status(
                    500,
                    "x".into(),
                ))),
                StatusCode::BAD_GATEWAY,
            ),
            (Err(GateError::Checkout), StatusCode::BAD_GATEWAY),
            (Err(store()), StatusCode::SERVICE_UNAVAILABLE),
            (
                Err(GateError::Unrecorded(
                    "ledger unavailable; not applied".into(),
                )),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Err(GateError::Internal("panicked".into())),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (result, want) in cases {
            let server = result.as_ref().is_err_and(GateError::is_server_side);
            let (status, _) = status_of(result);
            assert_eq!(status, want);
            assert_eq!(server, status.is_server_error(), "{status}");
        }
        // The texts are the errors' own.
        assert_eq!(
            status_of(Err(WebhookError::TooLarge(10).into())).1,
            "body larger than 10 bytes"
        );
        assert_eq!(status_of(Err(GateError::Checkout)).1, "checkout failed");
    }
}
