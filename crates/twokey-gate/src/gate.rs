//! The engine: webhook in, plan/apply out, every step in the ledger.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use twokey_core::{Event as LedgerEvent, Millis};

use crate::config::{GateConfig, Project, Tool};
use crate::db::{GateDb, Lock, PlanRow};
use crate::github::{GitHub, StatusState};
use crate::redact::{redact, split_comment, GITHUB_COMMENT_LIMIT};
use crate::requirements::{decide, PullFacts};
use crate::runner::Runner;
use crate::webhook::{self, Event, IssueCommentEvent, PullRequestEvent, WebhookError};

/// Where source trees come from.
#[async_trait]
pub trait Checkout: Send + Sync {
    /// Materialises `repo` at commit `sha` into `dest` (an empty directory).
    async fn checkout(&self, repo: &str, sha: &str, dest: &Path) -> Result<(), String>;
}

/// A shallow `git fetch` of exactly the commit, authenticated with a token
/// passed as a header (never written into the remote URL or config).
pub struct GitCheckout {
    /// `https://github.com`.
    pub base: String,
    /// Token.
    pub token: String,
}

#[async_trait]
impl Checkout for GitCheckout {
    async fn checkout(&self, repo: &str, sha: &str, dest: &Path) -> Result<(), String> {
        let url = format!("{}/{repo}.git", self.base.trim_end_matches('/'));
        let header = format!("http.extraHeader=Authorization: Bearer {}", self.token);
        let run = |args: Vec<String>| async move {
            let out = tokio::process::Command::new("git")
                .args(&args)
                .current_dir(dest)
                .output()
                .await
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        run(s(&["init", "-q"])).await?;
        run(s(&[
            "-c", &header, "fetch", "-q", "--depth", "1", &url, sha,
        ]))
        .await?;
        run(s(&["checkout", "-q", "--detach", "FETCH_HEAD"])).await
    }
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
}

const STATUS_CONTEXT: &str = "twokey/plan";

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
    fn now(&self) -> Millis {
        (self.clock)()
    }

    async fn policy_hash(&self) -> String {
        match self.db.store().current_policy().await {
            Ok(Some((h, _))) => h,
            _ => String::new(),
        }
    }

    /// Writes one ledger event; errors are returned so callers fail closed.
    async fn record(
        &self,
        subj: &str,
        kind: &str,
        actor: &str,
        alert: bool,
        data: serde_json::Value,
    ) -> Result<(), String> {
        let ev = LedgerEvent {
            kind: kind.into(),
            actor: format!("github|{actor}"),
            alert,
            data,
        };
        let ph = self.policy_hash().await;
        self.db
            .store()
            .record(self.now(), &ph, vec![(subj.to_string(), ev)])
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn say(&self, repo: &str, pull: u64, body: &str) {
        if let Err(e) = self.github.comment(repo, pull, body).await {
            tracing::warn!(%repo, pull, error = %e, "gate: cannot comment");
        }
    }

    /// Handles one webhook delivery. Returns the HTTP status and a short text.
    pub async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String) {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        if let Err(e) = webhook::verify_signature(&self.secret, body, h("x-hub-signature-256")) {
            let status = if matches!(e, WebhookError::TooLarge(_)) {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::UNAUTHORIZED
            };
            let _ = self
                .record(
                    "github:webhook",
                    "gate.refused",
                    "unknown",
                    status == StatusCode::UNAUTHORIZED,
                    json!({ "reason": "signature", "error": e.to_string(), "delivery": h("x-github-delivery") }),
                )
                .await;
            return (status, e.to_string());
        }
        let delivery = match webhook::delivery_id(h("x-github-delivery")) {
            Ok(d) => d,
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()),
        };
        let name = h("x-github-event").unwrap_or("");
        let event = match Event::parse(name, body) {
            Ok(e) => e,
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()),
        };
        let repo = event.repo().unwrap_or("").to_string();
        match self
            .db
            .first_delivery(&delivery, name, &repo, self.now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                let _ = self
                    .record(
                        "github:webhook",
                        "gate.refused",
                        "unknown",
                        true,
                        json!({ "reason": "replayed_delivery", "delivery": delivery, "repo": repo }),
                    )
                    .await;
                return (StatusCode::OK, "duplicate delivery ignored".into());
            }
            Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
        if matches!(event, Event::Ping) {
            return (StatusCode::OK, "pong".into());
        }
        if repo.is_empty() || !self.config.allows(&repo) {
            return (
                StatusCode::ACCEPTED,
                "repository not in gate.allow; ignored".into(),
            );
        }
        match event {
            Event::PullRequest(e) => self.on_pull_request(&e).await,
            Event::IssueComment(e) => self.on_comment(&e).await,
            _ => (StatusCode::ACCEPTED, "event ignored".into()),
        }
    }

    async fn on_pull_request(&self, e: &PullRequestEvent) -> (StatusCode, String) {
        let repo = &e.repository.full_name;
        let n = e.pull_request.number;
        let head = &e.pull_request.head.sha;
        match e.action.as_str() {
            "opened" | "reopened" | "synchronize" => {
                // Who pushed the head: the sender of the push (for `opened`,
                // the author who pushed the branch).
                if let Err(err) = self
                    .db
                    .put_pusher(repo, n, head, &e.sender.login, self.now())
                    .await
                {
                    return (StatusCode::SERVICE_UNAVAILABLE, err.to_string());
                }
                // A new push invalidates every earlier plan.
                if let Err(err) = self.db.drop_plans(repo, n).await {
                    return (StatusCode::SERVICE_UNAVAILABLE, err.to_string());
                }
                let files = match self.github.files(repo, n).await {
                    Ok(f) => f,
                    Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()),
                };
                let projects: Vec<Project> = self
                    .config
                    .affected(repo, &files)
                    .into_iter()
                    .cloned()
                    .collect();
                for p in &projects {
                    self.plan(repo, n, head, p, &e.sender.login).await;
                }
                (
                    StatusCode::OK,
                    format!("planned {} project(s)", projects.len()),
                )
            }
            "closed" => {
                let _ = self.db.unlock_pull(repo, n).await;
                let _ = self.db.drop_plans(repo, n).await;
                (StatusCode::OK, "unlocked".into())
            }
            _ => (StatusCode::ACCEPTED, "action ignored".into()),
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

    async fn on_comment(&self, e: &IssueCommentEvent) -> (StatusCode, String) {
        if e.action != "created" || e.issue.pull_request.is_none() {
            return (
                StatusCode::ACCEPTED,
                "not a new pull request comment".into(),
            );
        }
        let Some(cmd) = parse_command(&e.comment.body) else {
            return (StatusCode::ACCEPTED, "not a command".into());
        };
        let repo = &e.repository.full_name;
        let n = e.issue.number;
        let who = &e.comment.user.login;
        let subj = subject(repo, n);
        let perm = match self.github.permission(repo, who).await {
            Ok(p) => p,
            Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()),
        };
        if !perm.can_write() {
            let _ = self
                .record(&subj, "gate.refused", who, true, json!({ "reason": "command_without_write", "command": format!("{cmd:?}"), "permission": perm }))
                .await;
            self.say(
                repo,
                n,
                &format!("twokey: refused: @{who} has {perm:?} permission; commands need write."),
            )
            .await;
            return (StatusCode::OK, "refused: no write permission".into());
        }
        match cmd {
            Command::Unlock => {
                let _ = self.db.unlock_pull(repo, n).await;
                let _ = self
                    .record(&subj, "gate.unlock", who, false, json!({}))
                    .await;
                self.say(repo, n, "twokey: locks released.").await;
                (StatusCode::OK, "unlocked".into())
            }
            Command::Plan(p) => {
                let pull = match self.github.pull(repo, n).await {
                    Ok(p) => p,
                    Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()),
                };
                let projects = self.projects_for(repo, p.as_deref());
                for p in &projects {
                    self.plan(repo, n, &pull.head_sha, p, who).await;
                }
                (
                    StatusCode::OK,
                    format!("planned {} project(s)", projects.len()),
                )
            }
            Command::Apply(p) => self.apply(repo, n, who, p.as_deref()).await,
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

    /// Plans one project of a pull request at `head`.
    pub async fn plan(&self, repo: &str, n: u64, head: &str, p: &Project, actor: &str) {
        let subj = subject(repo, n);
        let lock = Lock {
            repo: repo.into(),
            project: p.name.clone(),
            workspace: p.workspace.clone(),
            pull: n,
            head_sha: head.into(),
            locked_by: actor.into(),
        };
        match self.db.lock(&lock, self.now()).await {
            Ok(None) => {}
            Ok(Some(holder)) => {
                self.say(repo, n, &format!("twokey: project `{}` workspace `{}` is locked by #{}; plan there first or `twokey unlock` it.", p.name, p.workspace, holder.pull)).await;
                let _ = self
                    .github
                    .status(
                        repo,
                        head,
                        StatusState::Failure,
                        STATUS_CONTEXT,
                        "locked by another pull request",
                    )
                    .await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "gate: lock failed");
                return;
            }
        }
        let _ = self
            .github
            .status(repo, head, StatusState::Pending, STATUS_CONTEXT, "planning")
            .await;
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
        let (ok, text, sha, path) = match result {
            Ok((out, path)) => (out.ok, out.output, out.plan_sha256, path),
            Err(e) => (false, e, None, PathBuf::new()),
        };
        let shown = redact(&text, &self.config.redact_values);
        let redacted = shown != text;
        let row = PlanRow {
            project: p.name.clone(),
            head_sha: head.into(),
            plan_path: path.display().to_string(),
            plan_sha256: sha.clone().unwrap_or_default(),
            status: if ok {
                "planned".into()
            } else {
                "failed".into()
            },
        };
        // Ledger first: a plan nobody recorded must not be appliable.
        if self
            .record(&subj, "gate.plan", actor, false, json!({ "project": p.name, "workspace": p.workspace, "head_sha": head, "ok": ok, "plan_sha256": sha, "redacted": redacted }))
            .await
            .is_err()
        {
            return;
        }
        if self.db.put_plan(repo, n, &row, self.now()).await.is_err() {
            return;
        }
        let header = format!(
            "### twokey plan `{}` ({}) at {}: {}",
            p.name,
            p.workspace,
            head.get(..7).unwrap_or(head),
            if ok { "succeeded" } else { "FAILED" }
        );
        for c in split_comment(&header, &shown, GITHUB_COMMENT_LIMIT) {
            self.say(repo, n, &c).await;
        }
        let st = if ok {
            StatusState::Success
        } else {
            StatusState::Failure
        };
        let _ = self
            .github
            .status(
                repo,
                head,
                st,
                STATUS_CONTEXT,
                if ok { "plan succeeded" } else { "plan failed" },
            )
            .await;
    }

    async fn apply(
        &self,
        repo: &str,
        n: u64,
        who: &str,
        only: Option<&str>,
    ) -> (StatusCode, String) {
        let subj = subject(repo, n);
        let pull = match self.github.pull(repo, n).await {
            Ok(p) => p,
            Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()),
        };
        let mut reviews = match self.github.reviews(repo, n).await {
            Ok(r) => r,
            Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()),
        };
        for r in &mut reviews {
            match self.github.permission(repo, &r.reviewer).await {
                Ok(p) => r.permission = p,
                Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()),
            }
        }
        let pusher = self.db.pusher(repo, n, &pull.head_sha).await.ok().flatten();
        let facts = PullFacts {
            head_sha: pull.head_sha.clone(),
            author: pull.author.clone(),
            last_pusher: pusher,
            mergeable: pull.mergeable,
            behind: pull.mergeable_state == "behind",
            reviews,
        };
        let decision = decide(&facts, &self.config.requirements());
        if !decision.allowed() {
            let _ = self
                .record(&subj, "gate.refused", who, true, json!({ "reason": "apply_requirements", "head_sha": pull.head_sha, "decision": decision }))
                .await;
            self.say(
                repo,
                n,
                &format!("twokey: apply refused.\n{}", decision.explain()),
            )
            .await;
            return (StatusCode::OK, "apply refused".into());
        }
        let plans = match self.db.plans(repo, n).await {
            Ok(p) => p,
            Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let plans: Vec<PlanRow> = plans
            .into_iter()
            .filter(|p| only.is_none() || only == Some(p.project.as_str()))
            .filter(|p| p.head_sha == pull.head_sha && p.status == "planned")
            .collect();
        if plans.is_empty() {
            let _ = self
                .record(
                    &subj,
                    "gate.refused",
                    who,
                    false,
                    json!({ "reason": "no_plan_for_head", "head_sha": pull.head_sha }),
                )
                .await;
            self.say(
                repo,
                n,
                "twokey: apply refused: no successful plan for the head commit; run `twokey plan`.",
            )
            .await;
            return (StatusCode::OK, "no plan".into());
        }
        let mut applied = 0;
        for plan in plans {
            let Some(project) = self
                .projects_for(repo, Some(&plan.project))
                .into_iter()
                .next()
            else {
                continue;
            };
            // Claim the plan once (a second `apply` or replica gets nothing).
            match self
                .db
                .move_plan(
                    repo,
                    n,
                    &plan.project,
                    &pull.head_sha,
                    "planned",
                    "applying",
                )
                .await
            {
                Ok(true) => {}
                _ => continue,
            }
            // Evidence first: no apply without its ledger entry.
            if self
                .record(&subj, "gate.apply_evidence", who, false, json!({ "project": plan.project, "head_sha": pull.head_sha, "plan_sha256": plan.plan_sha256, "author": pull.author, "last_pusher": facts.last_pusher, "approvals": decision.approvals }))
                .await
                .is_err()
            {
                let _ = self.db.move_plan(repo, n, &plan.project, &pull.head_sha, "applying", "planned").await;
                return (StatusCode::SERVICE_UNAVAILABLE, "ledger unavailable; not applied".into());
            }
            let res = match self.tree(repo, n, &pull.head_sha).await {
                Ok(tree) => self
                    .runner(&project)
                    .apply(
                        &project,
                        &tree.join(&project.dir),
                        Path::new(&plan.plan_path),
                        &plan.plan_sha256,
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let (ok, text) = match res {
                Ok(o) => (o.ok, o.output),
                Err(e) => (false, e),
            };
            let _ = self
                .db
                .move_plan(
                    repo,
                    n,
                    &plan.project,
                    &pull.head_sha,
                    "applying",
                    if ok { "applied" } else { "apply_failed" },
                )
                .await;
            let shown = redact(&text, &self.config.redact_values);
            let _ = self
                .record(&subj, "gate.apply_result", who, !ok, json!({ "project": plan.project, "head_sha": pull.head_sha, "ok": ok, "redacted": shown != text }))
                .await;
            let header = format!(
                "### twokey apply `{}` at {}: {}",
                plan.project,
                pull.head_sha.get(..7).unwrap_or(&pull.head_sha),
                if ok { "succeeded" } else { "FAILED" }
            );
            for c in split_comment(&header, &shown, GITHUB_COMMENT_LIMIT) {
                self.say(repo, n, &c).await;
            }
            if ok {
                applied += 1;
            }
        }
        (StatusCode::OK, format!("applied {applied} project(s)"))
    }
}

/// The webhook route: `POST /v1/gate/github`.
pub fn router(gate: Arc<Gate>) -> axum::Router {
    use axum::extract::{DefaultBodyLimit, State};
    use axum::routing::post;
    async fn hook(
        State(g): State<Arc<Gate>>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> (StatusCode, String) {
        g.handle(&headers, &body).await
    }
    axum::Router::new()
        .route("/v1/gate/github", post(hook))
        .layer(DefaultBodyLimit::max(webhook::MAX_BODY_BYTES))
        .with_state(gate)
}
