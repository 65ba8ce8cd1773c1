//! The GitHub endpoints the gate uses, behind a trait, with a REST
//! implementation (`reqwest`; a token, or a GitHub App: an RS256 JWT signed
//! with the App's private key, exchanged for short-lived installation tokens).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use crate::requirements::{Permission, Review, ReviewState};

/// GitHub failures.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// Transport.
    #[error("github request failed: {0}")]
    Http(String),
    /// Non-success status.
    #[error("github answered {0}: {1}")]
    Status(u16, String),
    /// Unexpected body.
    #[error("unexpected github response: {0}")]
    Decode(String),
}

/// The pull request fields the gate reads through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullInfo {
    /// Author login.
    pub author: String,
    /// Head commit.
    pub head_sha: String,
    /// `open` / `closed`.
    pub state: String,
    /// GitHub's `mergeable` (`None` while computing).
    pub mergeable: Option<bool>,
    /// GitHub's `mergeable_state` (`behind`, `clean`, `blocked`, ...).
    pub mergeable_state: String,
}

/// A commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    /// Running.
    Pending,
    /// Passed.
    Success,
    /// Failed.
    Failure,
}

impl StatusState {
    fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
        }
    }
}

/// What the gate needs from GitHub.
#[async_trait]
pub trait GitHub: Send + Sync {
    /// `GET /repos/{repo}/pulls/{n}`.
    async fn pull(&self, repo: &str, n: u64) -> Result<PullInfo, GitHubError>;
    /// `GET /repos/{repo}/pulls/{n}/reviews` (oldest first); permission is
    /// filled in by the caller.
    async fn reviews(&self, repo: &str, n: u64) -> Result<Vec<Review>, GitHubError>;
    /// `GET /repos/{repo}/pulls/{n}/files`: changed paths.
    async fn files(&self, repo: &str, n: u64) -> Result<Vec<String>, GitHubError>;
    /// `GET /repos/{repo}/collaborators/{user}/permission`.
    async fn permission(&self, repo: &str, user: &str) -> Result<Permission, GitHubError>;
    /// `POST /repos/{repo}/issues/{n}/comments`.
    async fn comment(&self, repo: &str, n: u64, body: &str) -> Result<(), GitHubError>;
    /// `POST /repos/{repo}/statuses/{sha}`.
    async fn status(
        &self,
        repo: &str,
        sha: &str,
        state: StatusState,
        context: &str,
        description: &str,
    ) -> Result<(), GitHubError>;
    /// GitHub logins of a commit's author and committer
    /// (`GET /repos/{repo}/commits/{sha}`; unlinked identities and GitHub's
    /// own `web-flow` committer are left out).
    async fn commit_logins(&self, repo: &str, sha: &str) -> Result<Vec<String>, GitHubError>;
    /// The default branch and its head commit (`GET /repos/{repo}`, then
    /// `GET /repos/{repo}/branches/{branch}`).
    async fn default_branch(&self, repo: &str) -> Result<(String, String), GitHubError>;
    /// The source tree at `sha` as a gzipped tar (`GET /repos/{repo}/tarball/{sha}`).
    async fn tarball(&self, repo: &str, sha: &str) -> Result<Vec<u8>, GitHubError>;
}

/// How the gate authenticates to the REST API.
pub enum Auth {
    /// A fine-grained personal access token (or any bearer token).
    Token(String),
    /// A GitHub App: JWTs signed with its key buy installation tokens.
    App {
        /// App id (the JWT's `iss`).
        app_id: u64,
        /// The App's RSA private key.
        key: jsonwebtoken::EncodingKey,
        /// Fixed installation, or looked up per repository.
        installation_id: Option<u64>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(<redacted>)"),
            Auth::App {
                app_id,
                installation_id,
                ..
            } => write!(
                f,
                "Auth::App {{ app_id: {app_id}, installation_id: {installation_id:?}, key: <redacted> }}"
            ),
        }
    }
}

impl Auth {
    /// A GitHub App from its id and PEM private key (PKCS#1 or PKCS#8 RSA).
    pub fn app(app_id: u64, pem: &[u8], installation_id: Option<u64>) -> Result<Auth, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem)
            .map_err(|e| format!("not an RSA private key in PEM form: {e}"))?;
        Ok(Auth::App {
            app_id,
            key,
            installation_id,
        })
    }
}

/// The JWT a GitHub App authenticates with: RS256, `iat` 60 s in the past
/// (clock drift), `exp` 9 minutes ahead (GitHub allows at most 10).
pub fn app_jwt(
    app_id: u64,
    key: &jsonwebtoken::EncodingKey,
    now_secs: u64,
) -> Result<String, GitHubError> {
    #[derive(serde::Serialize)]
    struct Claims {
        iat: u64,
        exp: u64,
        iss: String,
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &Claims {
            iat: now_secs.saturating_sub(60),
            exp: now_secs + 540,
            iss: app_id.to_string(),
        },
        key,
    )
    .map_err(|e| GitHubError::Decode(format!("cannot sign the App JWT: {e}")))
}

/// Installation tokens last an hour; renew well before.
const INSTALLATION_TOKEN_TTL: Duration = Duration::from_secs(50 * 60);

/// The REST API over `reqwest`, authenticated as a token or a GitHub App.
pub struct RestGitHub {
    base: String,
    auth: Auth,
    http: reqwest::Client,
    /// Installation tokens by repository owner.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// ETag and body of earlier `GET`s by path, for conditional requests.
    etags: Mutex<HashMap<String, (String, serde_json::Value)>>,
    /// Calls sent and how many GitHub answered `304 Not Modified`.
    counts: Mutex<ApiCounts>,
}

/// How many REST calls a client made (every attempt, App token calls
/// included) and how many were `304 Not Modified` (which GitHub does not
/// count against the rate limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApiCounts {
    /// Requests sent.
    pub requests: u64,
    /// Of those, answered `304 Not Modified`.
    pub not_modified: u64,
}

/// One answer: status, `ETag` and body.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
}

/// Rate-limited calls are retried this many times...
const MAX_RATE_LIMIT_RETRIES: u32 = 3;
/// ...when GitHub asks to wait at most this long; longer waits fail the call.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// How long GitHub asks to wait, if `status` and `headers` are a rate limit
/// answer: 429, or 403 with `Retry-After` or `x-ratelimit-remaining: 0`
/// (then until `x-ratelimit-reset`).
pub fn rate_limit_wait(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    now_secs: u64,
) -> Option<Duration> {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    };
    if status != 429 && status != 403 {
        return None;
    }
    if let Some(s) = h("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(s.max(1)));
    }
    if h("x-ratelimit-remaining").as_deref() == Some("0") {
        let reset = h("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok());
        return Some(Duration::from_secs(
            reset
                .map(|r| r.saturating_sub(now_secs))
                .unwrap_or(60)
                .max(1),
        ));
    }
    // A 429 without advice: a minute, as GitHub documents.
    (status == 429).then(|| Duration::from_secs(60))
}

fn owner_of(repo: &str) -> String {
    repo.split('/').next().unwrap_or(repo).to_ascii_lowercase()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RestGitHub {
    /// A client for `base` (`https://api.github.com`) with `token`.
    pub fn new(base: &str, token: &str) -> Result<RestGitHub, GitHubError> {
        RestGitHub::with_auth(base, Auth::Token(token.to_string()))
    }

    /// A client for `base` with any [`Auth`].
    pub fn with_auth(base: &str, auth: Auth) -> Result<RestGitHub, GitHubError> {
        let http = reqwest::Client::builder()
            .user_agent("twokey-gate")
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| GitHubError::Http(e.to_string()))?;
        Ok(RestGitHub {
            base: base.trim_end_matches('/').to_string(),
            auth,
            http,
            tokens: Mutex::new(HashMap::new()),
            etags: Mutex::new(HashMap::new()),
            counts: Mutex::new(ApiCounts::default()),
        })
    }

    fn bare(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    /// The bearer token for calls about `repo`.
    async fn token_for(&self, repo: &str) -> Result<String, GitHubError> {
        let (app_id, key, fixed) = match &self.auth {
            Auth::Token(t) => return Ok(t.clone()),
            Auth::App {
                app_id,
                key,
                installation_id,
            } => (*app_id, key, *installation_id),
        };
        let owner = owner_of(repo);
        if let Some((t, at)) = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&owner)
        {
            if at.elapsed() < INSTALLATION_TOKEN_TTL {
                return Ok(t.clone());
            }
        }
        let jwt = app_jwt(app_id, key, now_secs())?;
        let id = match fixed {
            Some(id) => id,
            None => {
                #[derive(Deserialize)]
                struct Inst {
                    id: u64,
                }
                // An organisation (no `/`) has its own installation endpoint.
                let at = if repo.contains('/') {
                    format!("/repos/{repo}/installation")
                } else {
                    format!("/orgs/{repo}/installation")
                };
                let v = self
                    .send(self.bare(reqwest::Method::GET, &at).bearer_auth(&jwt))
                    .await?;
                let i: Inst = serde_json::from_value(v)
                    .map_err(|e| GitHubError::Decode(format!("{at}: {e}")))?;
                i.id
            }
        };
        #[derive(Deserialize)]
        struct Tok {
            token: String,
        }
        let v = self
            .send(
                self.bare(
                    reqwest::Method::POST,
                    &format!("/app/installations/{id}/access_tokens"),
                )
                .bearer_auth(&jwt),
            )
            .await?;
        let t: Tok = serde_json::from_value(v).map_err(|e| {
            GitHubError::Decode(format!("/app/installations/{id}/access_tokens: {e}"))
        })?;
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(owner, (t.token.clone(), Instant::now()));
        Ok(t.token)
    }

    async fn req(
        &self,
        repo: &str,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, GitHubError> {
        let token = self.token_for(repo).await?;
        Ok(self.bare(method, path).bearer_auth(token))
    }

    async fn send_raw(&self, rb: reqwest::RequestBuilder) -> Result<Vec<u8>, GitHubError> {
        self.send_answer(rb).await.map(|a| a.body)
    }

    /// Sends with the rate-limit retries; a success or `304` is an answer,
    /// any other status an error.
    async fn send_answer(&self, mut rb: reqwest::RequestBuilder) -> Result<Answer, GitHubError> {
        let mut attempt = 0;
        loop {
            let again = rb.try_clone();
            let res = rb
                .send()
                .await
                .map_err(|e| GitHubError::Http(e.to_string()))?;
            let status = res.status();
            {
                let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                c.requests += 1;
                if status == reqwest::StatusCode::NOT_MODIFIED {
                    c.not_modified += 1;
                }
            }
            let etag = res
                .headers()
                .get(reqwest::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let wait = rate_limit_wait(status.as_u16(), res.headers(), now_secs());
            let body = res
                .bytes()
                .await
                .map_err(|e| GitHubError::Http(e.to_string()))?;
            if let (Some(wait), Some(next)) = (wait, again) {
                if attempt < MAX_RATE_LIMIT_RETRIES && wait <= MAX_RATE_LIMIT_WAIT {
                    tracing::warn!(
                        status = status.as_u16(),
                        wait_s = wait.as_secs(),
                        "github rate limit; waiting"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    rb = next;
                    continue;
                }
            }
            if !status.is_success() && status != reqwest::StatusCode::NOT_MODIFIED {
                let mut t = String::from_utf8_lossy(&body).into_owned();
                t.truncate(500);
                if let Some(w) = wait {
                    t = format!("rate limited (retry in {} s): {t}", w.as_secs());
                }
                return Err(GitHubError::Status(status.as_u16(), t));
            }
            return Ok(Answer {
                status: status.as_u16(),
                etag,
                body: body.to_vec(),
            });
        }
    }

    /// Calls made so far.
    pub fn counts(&self) -> ApiCounts {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A conditional `GET` of `path` for `owner` (an `owner/name`
    /// repository or an organisation, whose installation token it uses):
    /// the body, `None` when GitHub answers 404. A path read before is asked
    /// with `If-None-Match`, and a `304 Not Modified` answer (free under
    /// GitHub's rate limit) gives the body kept from then.
    pub async fn get_json(
        &self,
        owner: &str,
        path: &str,
    ) -> Result<Option<serde_json::Value>, GitHubError> {
        let mut rb = self.req(owner, reqwest::Method::GET, path).await?;
        let cached = self
            .etags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned();
        if let Some((etag, _)) = &cached {
            rb = rb.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let a = match self.send_answer(rb).await {
            Ok(a) => a,
            Err(GitHubError::Status(404, _)) => return Ok(None),
            Err(e) => {
                self.forget(owner, &e);
                return Err(e);
            }
        };
        if a.status == 304 {
            return match cached {
                Some((_, v)) => Ok(Some(v)),
                None => Err(GitHubError::Decode(format!(
                    "{path}: 304 Not Modified to an unconditional request"
                ))),
            };
        }
        let v: serde_json::Value = if a.body.iter().all(|b| b.is_ascii_whitespace()) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&a.body)
                .map_err(|e| GitHubError::Decode(format!("{path}: {e}")))?
        };
        if let Some(etag) = a.etag {
            self.etags
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_string(), (etag, v.clone()));
        }
        Ok(Some(v))
    }

    /// A call that changes something (`PUT`, `PATCH`, `POST`, `DELETE`)
    /// with a JSON body, for `owner` (repository or organisation); the
    /// answer's body (`null` when empty).
    pub async fn write_json(
        &self,
        owner: &str,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, GitHubError> {
        let rb = self.req(owner, method, path).await?;
        self.send(rb.json(body))
            .await
            .inspect_err(|e| self.forget(owner, e))
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<serde_json::Value, GitHubError> {
        let body = self.send_raw(rb).await?;
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| GitHubError::Decode(e.to_string()))
    }

    /// Drops a cached installation token after GitHub refused it.
    fn forget(&self, repo: &str, e: &GitHubError) {
        if matches!(e, GitHubError::Status(401, _)) {
            self.tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&owner_of(repo));
        }
    }

    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        repo: &str,
        path: &str,
    ) -> Result<T, GitHubError> {
        let rb = self.req(repo, reqwest::Method::GET, path).await?;
        let v = self.send(rb).await.inspect_err(|e| self.forget(repo, e))?;
        serde_json::from_value(v).map_err(|e| GitHubError::Decode(format!("{path}: {e}")))
    }

    async fn post(
        &self,
        repo: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(), GitHubError> {
        let rb = self.req(repo, reqwest::Method::POST, path).await?;
        self.send(rb.json(&body))
            .await
            .inspect_err(|e| self.forget(repo, e))
            .map(|_| ())
    }
}

#[derive(Deserialize)]
struct ApiUser {
    login: String,
}
#[derive(Deserialize)]
struct ApiRef {
    sha: String,
}
#[derive(Deserialize)]
struct ApiPull {
    user: ApiUser,
    head: ApiRef,
    #[serde(default)]
    state: String,
    #[serde(default)]
    mergeable: Option<bool>,
    #[serde(default)]
    mergeable_state: Option<String>,
}
#[derive(Deserialize)]
struct ApiReview {
    user: Option<ApiUser>,
    #[serde(default)]
    commit_id: Option<String>,
    state: String,
}
#[derive(Deserialize)]
struct ApiFile {
    filename: String,
}
#[derive(Deserialize)]
struct ApiPermission {
    #[serde(default)]
    permission: String,
    #[serde(default)]
    role_name: Option<String>,
}

#[async_trait]
impl GitHub for RestGitHub {
    async fn pull(&self, repo: &str, n: u64) -> Result<PullInfo, GitHubError> {
        let p: ApiPull = self.get(repo, &format!("/repos/{repo}/pulls/{n}")).await?;
        Ok(PullInfo {
            author: p.user.login,
            head_sha: p.head.sha,
            state: p.state,
            mergeable: p.mergeable,
            mergeable_state: p.mergeable_state.unwrap_or_default(),
        })
    }

    async fn reviews(&self, repo: &str, n: u64) -> Result<Vec<Review>, GitHubError> {
        let mut out = Vec::new();
        for page in 1..=10 {
            let rs: Vec<ApiReview> = self
                .get(
                    repo,
                    &format!("/repos/{repo}/pulls/{n}/reviews?per_page=100&page={page}"),
                )
                .await?;
            let last = rs.len() < 100;
            for r in rs {
                // Reviews by deleted users have no user: they cannot count.
                let Some(user) = r.user else { continue };
                out.push(Review {
                    reviewer: user.login,
                    commit: r.commit_id.unwrap_or_default(),
                    state: ReviewState::parse(&r.state),
                    permission: Permission::None,
                });
            }
            if last {
                break;
            }
        }
        Ok(out)
    }

    async fn files(&self, repo: &str, n: u64) -> Result<Vec<String>, GitHubError> {
        let mut out = Vec::new();
        for page in 1..=30 {
            let fs: Vec<ApiFile> = self
                .get(
                    repo,
                    &format!("/repos/{repo}/pulls/{n}/files?per_page=100&page={page}"),
                )
                .await?;
            let last = fs.len() < 100;
            out.extend(fs.into_iter().map(|f| f.filename));
            if last {
                break;
            }
        }
        Ok(out)
    }

    async fn permission(&self, repo: &str, user: &str) -> Result<Permission, GitHubError> {
        let p: ApiPermission = self
            .get(
                repo,
                &format!("/repos/{repo}/collaborators/{user}/permission"),
            )
            .await?;
        Ok(Permission::parse(
            p.role_name.as_deref().unwrap_or(&p.permission),
        ))
    }

    async fn comment(&self, repo: &str, n: u64, body: &str) -> Result<(), GitHubError> {
        self.post(
            repo,
            &format!("/repos/{repo}/issues/{n}/comments"),
            serde_json::json!({ "body": body }),
        )
        .await
    }

    async fn status(
        &self,
        repo: &str,
        sha: &str,
        state: StatusState,
        context: &str,
        description: &str,
    ) -> Result<(), GitHubError> {
        let mut d = description.to_string();
        d.truncate(140);
        self.post(
            repo,
            &format!("/repos/{repo}/statuses/{sha}"),
            serde_json::json!({ "state": state.as_str(), "context": context, "description": d }),
        )
        .await
    }

    async fn commit_logins(&self, repo: &str, sha: &str) -> Result<Vec<String>, GitHubError> {
        #[derive(Deserialize)]
        struct ApiCommit {
            #[serde(default)]
            author: Option<ApiUser>,
            #[serde(default)]
            committer: Option<ApiUser>,
        }
        let c: ApiCommit = self
            .get(repo, &format!("/repos/{repo}/commits/{sha}"))
            .await?;
        let mut out: Vec<String> = Vec::new();
        for u in [c.author, c.committer].into_iter().flatten() {
            if u.login != "web-flow" && !out.iter().any(|o| o.eq_ignore_ascii_case(&u.login)) {
                out.push(u.login);
            }
        }
        Ok(out)
    }

    async fn default_branch(&self, repo: &str) -> Result<(String, String), GitHubError> {
        #[derive(Deserialize)]
        struct ApiRepo {
            default_branch: String,
        }
        #[derive(Deserialize)]
        struct ApiBranch {
            commit: ApiRef,
        }
        let r: ApiRepo = self.get(repo, &format!("/repos/{repo}")).await?;
        let b: ApiBranch = self
            .get(
                repo,
                &format!("/repos/{repo}/branches/{}", r.default_branch),
            )
            .await?;
        Ok((r.default_branch, b.commit.sha))
    }

    async fn tarball(&self, repo: &str, sha: &str) -> Result<Vec<u8>, GitHubError> {
        // GitHub answers with a redirect to a short-lived download URL;
        // reqwest follows it and drops the Authorization header when the
        // host changes.
        let rb = self
            .req(
                repo,
                reqwest::Method::GET,
                &format!("/repos/{repo}/tarball/{sha}"),
            )
            .await?;
        self.send_raw(rb)
            .await
            .inspect_err(|e| self.forget(repo, e))
    }
}
