//! The GitHub endpoints the gate uses, behind a trait, with a REST
//! implementation (`reqwest`, token auth).

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
}

/// The REST API over `reqwest` with a token (a GitHub App installation token
/// or a fine-grained personal access token).
pub struct RestGitHub {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl RestGitHub {
    /// A client for `base` (`https://api.github.com`) with `token`.
    pub fn new(base: &str, token: &str) -> Result<RestGitHub, GitHubError> {
        let http = reqwest::Client::builder()
            .user_agent("twokey-gate")
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| GitHubError::Http(e.to_string()))?;
        Ok(RestGitHub {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<serde_json::Value, GitHubError> {
        let res = rb
            .send()
            .await
            .map_err(|e| GitHubError::Http(e.to_string()))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| GitHubError::Http(e.to_string()))?;
        if !status.is_success() {
            let mut t = text;
            t.truncate(500);
            return Err(GitHubError::Status(status.as_u16(), t));
        }
        if text.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| GitHubError::Decode(e.to_string()))
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, GitHubError> {
        let v = self.send(self.req(reqwest::Method::GET, path)).await?;
        serde_json::from_value(v).map_err(|e| GitHubError::Decode(format!("{path}: {e}")))
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
        let p: ApiPull = self.get(&format!("/repos/{repo}/pulls/{n}")).await?;
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
                .get(&format!(
                    "/repos/{repo}/pulls/{n}/reviews?per_page=100&page={page}"
                ))
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
                .get(&format!(
                    "/repos/{repo}/pulls/{n}/files?per_page=100&page={page}"
                ))
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
            .get(&format!("/repos/{repo}/collaborators/{user}/permission"))
            .await?;
        Ok(Permission::parse(
            p.role_name.as_deref().unwrap_or(&p.permission),
        ))
    }

    async fn comment(&self, repo: &str, n: u64, body: &str) -> Result<(), GitHubError> {
        self.send(
            self.req(
                reqwest::Method::POST,
                &format!("/repos/{repo}/issues/{n}/comments"),
            )
            .json(&serde_json::json!({ "body": body })),
        )
        .await
        .map(|_| ())
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
        self.send(
            self.req(reqwest::Method::POST, &format!("/repos/{repo}/statuses/{sha}")).json(
                &serde_json::json!({ "state": state.as_str(), "context": context, "description": d }),
            ),
        )
        .await
        .map(|_| ())
    }
}
