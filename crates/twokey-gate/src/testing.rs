//! A local, stateful GitHub stand-in for tests: an axum server answering the
//! REST endpoints the gate uses, whose responses and webhook payloads start
//! from real GitHub examples (`@octokit/webhooks-examples`, installed by
//! `scripts/setup-gate-fixtures.sh`) with the test's state written over them.
//!
//! It can insist on credentials: a fixed token ([`StandIn::require_token`]),
//! or a GitHub App ([`StandIn::set_app`]) whose RS256 JWTs it verifies with
//! the App's public key before issuing installation tokens, which every
//! other call must then carry. Source trees are served as GitHub does: the
//! tarball endpoint redirects to a download of a gzipped tar with one
//! top-level `owner-repo-sha/` directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::gate::Checkout;

/// Real example payloads.
pub struct Fixtures {
    events: Vec<Value>,
}

impl Fixtures {
    /// The fixtures directory (`tests/fixtures/node_modules`).
    pub fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/node_modules")
    }

    /// Loads the examples; `None` (skip) when not installed, a panic under CI.
    pub fn load() -> Option<Fixtures> {
        let p = Fixtures::dir().join("@octokit/webhooks-examples/api.github.com/index.json");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("{}: {e}; run scripts/setup-gate-fixtures.sh", p.display());
                }
                eprintln!(
                    "skipping: {} missing (run scripts/setup-gate-fixtures.sh)",
                    p.display()
                );
                return None;
            }
        };
        let events: Vec<Value> = serde_json::from_str(&text).ok()?;
        Some(Fixtures { events })
    }

    /// The first example of `event` with `action` satisfying `pick`.
    pub fn example(
        &self,
        event: &str,
        action: &str,
        pick: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        self.events
            .iter()
            .find(|e| e["name"] == event)?
            .get("examples")?
            .as_array()?
            .iter()
            .find(|x| x["action"] == action && pick(x))
            .cloned()
    }
}

#[derive(Default)]
struct Pull {
    author: String,
    head: String,
    mergeable: Option<bool>,
    mergeable_state: String,
    state: String,
    merged: bool,
    computing: bool,
    files: Vec<String>,
    reviews: Vec<Value>,
    comments: Vec<(String, String)>,
}

#[derive(Default)]
struct World {
    pulls: BTreeMap<(String, u64), Pull>,
    trees: BTreeMap<String, BTreeMap<String, String>>,
    permissions: BTreeMap<String, String>,
    statuses: BTreeMap<String, Vec<(String, String)>>,
    template_pull: Value,
    template_review: Value,
    template_repo: Value,
    branches: BTreeMap<String, (String, String)>,
    commit_authors: BTreeMap<String, String>,
    required_token: Option<String>,
    app: Option<App>,
    issued: Vec<String>,
    auth_log: Vec<String>,
    throttle: u32,
    throttled: u32,
}

struct App {
    id: u64,
    key: jsonwebtoken::DecodingKey,
    installation: u64,
}

fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(String::from)
}

/// Checks credentials the way GitHub would for the configured auth mode.
async fn auth(State(w): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let tok = bearer(&req);
    {
        let mut w = lock(&w);
        if w.throttle > 0 && !path.starts_with("/_codeload/") {
            w.throttle -= 1;
            w.throttled += 1;
            return (
                StatusCode::FORBIDDEN,
                [(header::RETRY_AFTER, "1")],
                Json(json!({ "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api" })),
            )
                .into_response();
        }
        let app_call = path.starts_with("/app/") || path.ends_with("/installation");
        if path.starts_with("/_codeload/") {
            // A download URL carries its own short-lived token.
        } else if let Some(app) = &w.app {
            let ok = if app_call {
                let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                v.set_issuer(&[app.id.to_string()]);
                v.set_required_spec_claims(&["exp", "iat", "iss"]);
                tok.as_deref()
                    .is_some_and(|t| jsonwebtoken::decode::<Value>(t, &app.key, &v).is_ok())
            } else {
                tok.as_ref().is_some_and(|t| w.issued.contains(t))
            };
            w.auth_log.push(format!(
                "{path} {}",
                if !ok {
                    "refused"
                } else if app_call {
                    "app-jwt"
                } else {
                    "installation-token"
                }
            ));
            if !ok {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({ "message": "Bad credentials" })),
                )
                    .into_response();
            }
        } else if let Some(req_tok) = &w.required_token {
            if tok.as_ref() != Some(req_tok) {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({ "message": "Bad credentials" })),
                )
                    .into_response();
            }
        }
    }
    next.run(req).await
}

async fn get_installation(
    State(w): State<Shared>,
    UrlPath((_o, _r)): UrlPath<(String, String)>,
) -> Result<Json<Value>, StatusCode> {
    let w = lock(&w);
    let app = w.app.as_ref().ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(json!({ "id": app.installation, "app_id": app.id })))
}

async fn post_access_token(
    State(w): State<Shared>,
    UrlPath(id): UrlPath<u64>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let mut w = lock(&w);
    let inst = w
        .app
        .as_ref()
        .map(|a| a.installation)
        .ok_or(StatusCode::NOT_FOUND)?;
    if inst != id {
        return Err(StatusCode::NOT_FOUND);
    }
    let token = format!("ghs_standin{:04}", w.issued.len() + 1);
    w.issued.push(token.clone());
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "expires_at": "2099-01-01T00:00:00Z" })),
    ))
}

async fn get_commit(
    State(w): State<Shared>,
    UrlPath((_o, _r, sha)): UrlPath<(String, String, String)>,
) -> Result<Json<Value>, StatusCode> {
    let w = lock(&w);
    if !w.trees.contains_key(&sha) {
        return Err(StatusCode::NOT_FOUND);
    }
    let author = w.commit_authors.get(&sha).cloned();
    let user = |l: &Option<String>| match l {
        Some(l) => json!({ "login": l, "type": "User" }),
        None => Value::Null,
    };
    // Pushed from a workstation: the committer is the author.
    Ok(Json(json!({
        "sha": sha,
        "commit": { "message": "change" },
        "author": user(&author),
        "committer": user(&author),
    })))
}

async fn get_repo(
    State(w): State<Shared>,
    UrlPath((o, r)): UrlPath<(String, String)>,
) -> Result<Json<Value>, StatusCode> {
    let w = lock(&w);
    let repo = format!("{o}/{r}");
    let (branch, _) = w.branches.get(&repo).ok_or(StatusCode::NOT_FOUND)?;
    let mut v = w.template_repo.clone();
    v["full_name"] = json!(repo);
    v["name"] = json!(r);
    v["default_branch"] = json!(branch);
    Ok(Json(v))
}

async fn get_branch(
    State(w): State<Shared>,
    UrlPath((o, r, b)): UrlPath<(String, String, String)>,
) -> Result<Json<Value>, StatusCode> {
    let w = lock(&w);
    let (branch, sha) = w
        .branches
        .get(&format!("{o}/{r}"))
        .ok_or(StatusCode::NOT_FOUND)?;
    if *branch != b {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(Json(
        json!({ "name": branch, "commit": { "sha": sha }, "protected": true }),
    ))
}

async fn get_tarball(
    State(w): State<Shared>,
    UrlPath((o, r, sha)): UrlPath<(String, String, String)>,
) -> Response {
    if !lock(&w).trees.contains_key(&sha) {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            format!("/_codeload/{o}/{r}/legacy.tar.gz/{sha}"),
        )],
    )
        .into_response()
}

async fn get_codeload(
    State(w): State<Shared>,
    UrlPath((o, r, sha)): UrlPath<(String, String, String)>,
) -> Response {
    let Some(tree) = lock(&w).trees.get(&sha).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tarball(&format!("{o}-{r}-{}", sha.get(..7).unwrap_or(&sha)), &tree) {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-gzip")],
            bytes,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A gzipped tar of `tree` under the directory `prefix/`, as GitHub serves.
pub fn tarball(prefix: &str, tree: &BTreeMap<String, String>) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir, format!("{prefix}/"), std::io::empty())?;
    for (path, content) in tree {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        b.append_data(&mut h, format!("{prefix}/{path}"), content.as_bytes())?;
    }
    b.into_inner()?.finish()
}

/// The stand-in. Cloning shares state.
#[derive(Clone)]
pub struct StandIn {
    world: Arc<Mutex<World>>,
    fixtures: Arc<Fixtures>,
    /// Base URL of the REST API.
    pub url: String,
    /// Login of the gate's bot (its comments are its own).
    pub bot: String,
}

fn sha_of(tree: &BTreeMap<String, String>, parent: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    for (k, v) in tree {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..20])
}

type Shared = Arc<Mutex<World>>;

fn lock(w: &Shared) -> std::sync::MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

async fn get_pull(
    State(w): State<Shared>,
    UrlPath((o, r, n)): UrlPath<(String, String, u64)>,
) -> Result<Json<Value>, StatusCode> {
    let mut w = lock(&w);
    let mut v = w.template_pull.clone();
    let p = w
        .pulls
        .get_mut(&(format!("{o}/{r}"), n))
        .ok_or(StatusCode::NOT_FOUND)?;
    let computing = std::mem::take(&mut p.computing);
    v["number"] = json!(n);
    v["user"]["login"] = json!(p.author);
    v["head"]["sha"] = json!(p.head);
    v["state"] = json!(p.state);
    v["mergeable"] = json!(p.mergeable);
    v["mergeable_state"] = json!(p.mergeable_state);
    v["merged"] = json!(p.merged);
    if computing {
        // GitHub computes mergeability in the background after a push and
        // answers null until it is done.
        v["mergeable"] = Value::Null;
        v["mergeable_state"] = json!("unknown");
    }
    Ok(Json(v))
}

async fn get_reviews(
    State(w): State<Shared>,
    UrlPath((o, r, n)): UrlPath<(String, String, u64)>,
) -> Result<Json<Value>, StatusCode> {
    let w = lock(&w);
    let p = w
        .pulls
        .get(&(format!("{o}/{r}"), n))
        .ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(json!(p.reviews)))
}

async fn get_files(
    State(w): State<Shared>,
    UrlPath((o, r, n)): UrlPath<(String, String, u64)>,
) -> Result<Json<Value>, StatusCode> {
    let w = lock(&w);
    let p = w
        .pulls
        .get(&(format!("{o}/{r}"), n))
        .ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(json!(p
        .files
        .iter()
        .map(|f| json!({ "filename": f, "status": "modified" }))
        .collect::<Vec<_>>())))
}

async fn get_permission(
    State(w): State<Shared>,
    UrlPath((_o, _r, u)): UrlPath<(String, String, String)>,
) -> Json<Value> {
    let w = lock(&w);
    let perm = w
        .permissions
        .get(&u.to_ascii_lowercase())
        .cloned()
        .unwrap_or_else(|| "none".into());
    let legacy = match perm.as_str() {
        "maintain" => "write",
        "triage" => "read",
        p => p,
    };
    Json(json!({ "permission": legacy, "role_name": perm, "user": { "login": u } }))
}

async fn post_comment(
    State(w): State<Shared>,
    UrlPath((o, r, n)): UrlPath<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let text = body["body"]
        .as_str()
        .ok_or(StatusCode::UNPROCESSABLE_ENTITY)?
        .to_string();
    if text.chars().count() > 65_536 {
        return Err(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let mut w = lock(&w);
    let p = w
        .pulls
        .get_mut(&(format!("{o}/{r}"), n))
        .ok_or(StatusCode::NOT_FOUND)?;
    p.comments.push(("twokey-bot".into(), text.clone()));
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": p.comments.len(), "body": text })),
    ))
}

async fn post_status(
    State(w): State<Shared>,
    UrlPath((_o, _r, sha)): UrlPath<(String, String, String)>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let state = body["state"]
        .as_str()
        .ok_or(StatusCode::UNPROCESSABLE_ENTITY)?
        .to_string();
    let ctx = body["context"].as_str().unwrap_or("default").to_string();
    lock(&w)
        .statuses
        .entry(sha)
        .or_default()
        .push((ctx, state.clone()));
    Ok((StatusCode::CREATED, Json(json!({ "state": state }))))
}

impl StandIn {
    /// Starts the stand-in on a loopback port.
    pub async fn start(fixtures: Fixtures) -> std::io::Result<StandIn> {
        let template_pull = fixtures
            .example("pull_request", "opened", |_| true)
            .map(|e| e["pull_request"].clone())
            .unwrap_or_else(|| json!({ "user": {}, "head": {}, "base": {} }));
        let template_review = json!({ "id": 1, "user": { "login": "" }, "body": "", "state": "APPROVED", "commit_id": "" });
        let template_repo = fixtures
            .example("pull_request", "opened", |_| true)
            .map(|e| e["repository"].clone())
            .unwrap_or_else(|| json!({}));
        let world: Shared = Arc::new(Mutex::new(World {
            template_pull,
            template_review,
            template_repo,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/repos/{o}/{r}/pulls/{n}", get(get_pull))
            .route("/repos/{o}/{r}/pulls/{n}/reviews", get(get_reviews))
            .route("/repos/{o}/{r}/pulls/{n}/files", get(get_files))
            .route(
                "/repos/{o}/{r}/collaborators/{u}/permission",
                get(get_permission),
            )
            .route("/repos/{o}/{r}/issues/{n}/comments", post(post_comment))
            .route("/repos/{o}/{r}/statuses/{sha}", post(post_status))
            .route("/repos/{o}/{r}", get(get_repo))
            .route("/repos/{o}/{r}/branches/{b}", get(get_branch))
            .route("/repos/{o}/{r}/commits/{sha}", get(get_commit))
            .route("/repos/{o}/{r}/tarball/{sha}", get(get_tarball))
            .route("/_codeload/{o}/{r}/legacy.tar.gz/{sha}", get(get_codeload))
            .route("/repos/{o}/{r}/installation", get(get_installation))
            .route(
                "/app/installations/{id}/access_tokens",
                post(post_access_token),
            )
            .layer(axum::middleware::from_fn_with_state(world.clone(), auth))
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StandIn {
            world,
            fixtures: Arc::new(fixtures),
            url,
            bot: "twokey-bot".into(),
        })
    }

    /// Refuses every call that does not carry `token`.
    pub fn require_token(&self, token: &str) {
        lock(&self.world).required_token = Some(token.into());
    }

    /// Acts as GitHub for App `id` installed as `installation`: App calls
    /// need a JWT that verifies with `public_pem` (RS256, issuer `id`), every
    /// other call an installation token issued here.
    pub fn set_app(&self, id: u64, public_pem: &[u8], installation: u64) -> Result<(), String> {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_pem).map_err(|e| e.to_string())?;
        lock(&self.world).app = Some(App {
            id,
            key,
            installation,
        });
        Ok(())
    }

    /// Each authenticated call: `path mode` (mode `app-jwt`,
    /// `installation-token` or `refused`), in App mode.
    pub fn auth_log(&self) -> Vec<String> {
        lock(&self.world).auth_log.clone()
    }

    /// Sets the default branch of `repo` to a commit with `files`; returns its sha.
    pub fn set_default_branch(&self, repo: &str, branch: &str, files: &[(&str, &str)]) -> String {
        let tree: BTreeMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sha = sha_of(&tree, branch);
        let mut w = lock(&self.world);
        w.trees.insert(sha.clone(), tree);
        w.branches.insert(repo.into(), (branch.into(), sha.clone()));
        sha
    }

    /// Sets the GitHub login of the author and committer of commit `sha`.
    pub fn set_commit_author(&self, sha: &str, login: &str) {
        lock(&self.world)
            .commit_authors
            .insert(sha.into(), login.into());
    }

    /// Merges pull request `n` (closed, merged, no longer mergeable-computed).
    pub fn merge(&self, repo: &str, n: u64) {
        if let Some(p) = lock(&self.world).pulls.get_mut(&(repo.into(), n)) {
            p.state = "closed".into();
            p.merged = true;
            p.mergeable = None;
            p.mergeable_state = "unknown".into();
        }
    }

    /// Answers the next `n` REST calls with GitHub's secondary rate limit
    /// (403, `Retry-After: 1`).
    pub fn throttle(&self, n: u32) {
        lock(&self.world).throttle = n;
    }

    /// How many calls were answered with a rate limit.
    pub fn throttled(&self) -> u32 {
        lock(&self.world).throttled
    }

    /// Gives `user` a permission (`read`, `triage`, `write`, `maintain`, `admin`).
    pub fn set_permission(&self, user: &str, perm: &str) {
        lock(&self.world)
            .permissions
            .insert(user.to_ascii_lowercase(), perm.into());
    }

    /// Opens pull request `n` by `author` with `files`; returns the head sha.
    pub fn open(&self, repo: &str, n: u64, author: &str, files: &[(&str, &str)]) -> String {
        let tree: BTreeMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sha = sha_of(&tree, "");
        let mut w = lock(&self.world);
        w.trees.insert(sha.clone(), tree.clone());
        w.commit_authors.insert(sha.clone(), author.into());
        w.pulls.insert(
            (repo.into(), n),
            Pull {
                author: author.into(),
                head: sha.clone(),
                mergeable: Some(true),
                mergeable_state: "clean".into(),
                state: "open".into(),
                files: tree.keys().cloned().collect(),
                ..Default::default()
            },
        );
        sha
    }

    /// Pushes a new head commit changing `files`; returns its sha.
    pub fn push(&self, repo: &str, n: u64, files: &[(&str, &str)]) -> String {
        let mut w = lock(&self.world);
        let Some(head) = w.pulls.get(&(repo.into(), n)).map(|p| p.head.clone()) else {
            return String::new();
        };
        let mut tree = w.trees.get(&head).cloned().unwrap_or_default();
        for (k, v) in files {
            tree.insert(k.to_string(), v.to_string());
        }
        let sha = sha_of(&tree, &head);
        w.trees.insert(sha.clone(), tree.clone());
        let author = w.commit_authors.get(&head).cloned().unwrap_or_default();
        w.commit_authors.insert(sha.clone(), author);
        if let Some(p) = w.pulls.get_mut(&(repo.into(), n)) {
            p.head = sha.clone();
            p.files = tree.keys().cloned().collect();
            p.computing = true;
        }
        sha
    }

    /// Submits a review by `reviewer` (`APPROVED`, `CHANGES_REQUESTED`, ...)
    /// on the current head.
    pub fn review(&self, repo: &str, n: u64, reviewer: &str, state: &str) {
        let mut w = lock(&self.world);
        let mut r = w.template_review.clone();
        if let Some(p) = w.pulls.get_mut(&(repo.into(), n)) {
            r["id"] = json!(p.reviews.len() + 1);
            r["user"]["login"] = json!(reviewer);
            r["state"] = json!(state);
            r["commit_id"] = json!(p.head);
            p.reviews.push(r);
        }
    }

    /// Sets whether the pull request is behind its base.
    pub fn set_behind(&self, repo: &str, n: u64, behind: bool) {
        if let Some(p) = lock(&self.world).pulls.get_mut(&(repo.into(), n)) {
            p.mergeable_state = if behind {
                "behind".into()
            } else {
                "clean".into()
            };
        }
    }

    /// The comments on a pull request.
    pub fn comments(&self, repo: &str, n: u64) -> Vec<String> {
        lock(&self.world)
            .pulls
            .get(&(repo.into(), n))
            .map(|p| p.comments.iter().map(|c| c.1.clone()).collect())
            .unwrap_or_default()
    }

    /// Commit statuses posted for `sha` (context, state).
    pub fn statuses(&self, sha: &str) -> Vec<(String, String)> {
        lock(&self.world)
            .statuses
            .get(sha)
            .cloned()
            .unwrap_or_default()
    }

    /// A `pull_request` webhook body (`opened`, `synchronize`, `closed`) for
    /// the pull request's current state, built over the real example.
    pub fn pull_request_event(&self, repo: &str, n: u64, action: &str, sender: &str) -> Vec<u8> {
        let mut v = self
            .fixtures
            .example("pull_request", "opened", |_| true)
            .unwrap_or_else(|| json!({}));
        let w = lock(&self.world);
        if let Some(p) = w.pulls.get(&(repo.into(), n)) {
            v["action"] = json!(action);
            v["number"] = json!(n);
            v["pull_request"]["number"] = json!(n);
            v["pull_request"]["user"]["login"] = json!(p.author);
            v["pull_request"]["head"]["sha"] = json!(p.head);
            v["pull_request"]["state"] = json!(if action == "closed" { "closed" } else { "open" });
            v["pull_request"]["merged"] = json!(p.merged);
            v["repository"]["full_name"] = json!(repo);
            v["sender"]["login"] = json!(sender);
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// An `issue_comment` `created` webhook body on pull request `n`, built
    /// over the real example.
    pub fn comment_event(&self, repo: &str, n: u64, user: &str, body: &str) -> Vec<u8> {
        let mut v = self
            .fixtures
            .example("issue_comment", "created", |x| {
                !x["issue"]["pull_request"].is_null()
            })
            .or_else(|| self.fixtures.example("issue_comment", "created", |_| true))
            .unwrap_or_else(|| json!({}));
        v["issue"]["number"] = json!(n);
        if v["issue"]["pull_request"].is_null() {
            v["issue"]["pull_request"] =
                json!({ "url": format!("{}/repos/{repo}/pulls/{n}", self.url) });
        }
        v["comment"]["body"] = json!(body);
        v["comment"]["user"]["login"] = json!(user);
        v["repository"]["full_name"] = json!(repo);
        v["sender"]["login"] = json!(user);
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

#[async_trait]
impl Checkout for StandIn {
    async fn checkout(&self, _repo: &str, sha: &str, dest: &Path) -> Result<(), String> {
        let tree = lock(&self.world)
            .trees
            .get(sha)
            .cloned()
            .ok_or_else(|| format!("no commit {sha}"))?;
        for (path, content) in tree {
            if path.split('/').any(|c| c == "..") {
                return Err(format!("bad path {path}"));
            }
            let f = dest.join(&path);
            if let Some(parent) = f.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            tokio::fs::write(&f, content)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Posts one webhook delivery to the gate the way GitHub does (event,
/// delivery id and `X-Hub-Signature-256` headers) and reads the answer: the
/// status and its text, which for an error is the problem's `detail`.
/// Panics if an error answer is not problem details, or a success is: the
/// gate's contract.
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    id: &str,
    signature: &str,
    body: &[u8],
) -> Result<(u16, String), reqwest::Error> {
    let res = http
        .post(url)
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", id)
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    let status = res.status().as_u16();
    let problem = res
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    let text = res.text().await?;
    assert_eq!(
        problem,
        status >= 400,
        "errors, and only errors, are problem details: {status} {text}"
    );
    if !problem {
        return Ok((status, text));
    }
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_string))
        .unwrap_or(text);
    Ok((status, detail))
}
