//! GitHub webhook intake: signature check, size limit, the few fields of the
//! payloads the gate reads.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Largest body accepted (GitHub caps payloads at 25 MB; the gate's events are
/// far smaller, so anything bigger is refused before the HMAC is computed).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    /// The header is not `sha256=<64 hex digits>`.
    #[error("malformed X-Hub-Signature-256 header")]
    MalformedSignature,
    /// The HMAC does not match.
    #[error("signature does not match")]
    BadSignature,
    /// Body too large.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// No or malformed `X-GitHub-Delivery`.
    #[error("missing or malformed X-GitHub-Delivery header")]
    MissingDelivery,
    /// The payload is not the JSON expected for its event.
    #[error("malformed payload: {0}")]
    Payload(String),
}

/// The `X-Hub-Signature-256` value GitHub sends for `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks `header` (the `X-Hub-Signature-256` value) against `body` in
/// constant time.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge(MAX_BODY_BYTES));
    }
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(WebhookError::MalformedSignature)?;
    let sig = hex::decode(hex_sig.trim()).map_err(|_| WebhookError::MalformedSignature)?;
    if sig.len() != 32 {
        return Err(WebhookError::MalformedSignature);
    }
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&sig)
        .map_err(|_| WebhookError::BadSignature)
}

/// Checks an `X-GitHub-Delivery` id: a GUID-like token of at most 64
/// characters from `[0-9A-Za-z-]`.
pub fn delivery_id(header: Option<&str>) -> Result<String, WebhookError> {
    let id = header.ok_or(WebhookError::MissingDelivery)?;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(WebhookError::MissingDelivery);
    }
    Ok(id.to_string())
}

/// A user as webhook payloads carry it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct User {
    /// Login.
    pub login: String,
    /// Numeric id.
    #[serde(default)]
    pub id: u64,
}

/// The repository a payload is about.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Repository {
    /// `owner/name`.
    pub full_name: String,
}

/// A branch reference of a pull request.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Ref {
    /// Commit.
    pub sha: String,
    /// Branch name.
    #[serde(rename = "ref", default)]
    pub branch: String,
}

/// The pull request fields the gate reads.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PullRequest {
    /// Number.
    pub number: u64,
    /// Author.
    pub user: User,
    /// Head branch.
    pub head: Ref,
    /// Base branch.
    pub base: Ref,
    /// `open` or `closed`.
    #[serde(default)]
    pub state: String,
    /// Whether it was merged.
    #[serde(default)]
    pub merged: Option<bool>,
}

/// `pull_request` event.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    /// `opened`, `synchronize`, `reopened`, `closed`, ...
    pub action: String,
    /// The pull request.
    pub pull_request: PullRequest,
    /// Repository.
    pub repository: Repository,
    /// Who caused the event (for `synchronize`: who pushed).
    pub sender: User,
}

/// The issue an `issue_comment` is on.
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    /// Number (same as the pull request's).
    pub number: u64,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

/// A comment.
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    /// Comment id.
    #[serde(default)]
    pub id: u64,
    /// Text.
    #[serde(default)]
    pub body: String,
    /// Author.
    pub user: User,
}

/// `issue_comment` event.
#[derive(Debug, Clone, Deserialize)]
pub struct IssueCommentEvent {
    /// `created`, `edited`, `deleted`.
    pub action: String,
    /// The issue (a pull request when `issue.pull_request` is present).
    pub issue: Issue,
    /// The comment.
    pub comment: Comment,
    /// Repository.
    pub repository: Repository,
    /// Who commented.
    pub sender: User,
}

/// The `X-GitHub-Event` names of settings changes that the GitHub posture
/// watches: classic protection, rulesets (repository and organisation),
/// repositories (created, renamed, visibility, ...) and the organisation.
pub const SETTINGS_EVENTS: &[&str] = &[
    "branch_protection_rule",
    "branch_protection_configuration",
    "repository_ruleset",
    "repository",
    "organization",
];

/// An organisation as payloads carry it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Organization {
    /// Login.
    pub login: String,
}

/// A settings change (one of [`SETTINGS_EVENTS`]): what it is about.
#[derive(Debug, Clone, Deserialize)]
pub struct SettingsEvent {
    /// The `X-GitHub-Event` name (filled in from the header).
    #[serde(skip)]
    pub name: String,
    /// `created`, `edited`, `deleted`, `renamed`, `privatized`, ...
    #[serde(default)]
    pub action: String,
    /// The repository, for repository-level changes.
    #[serde(default)]
    pub repository: Option<Repository>,
    /// The organisation, when the repository is in one or the change is
    /// organisation-wide (an organisation ruleset).
    #[serde(default)]
    pub organization: Option<Organization>,
    /// Who made the change.
    #[serde(default)]
    pub sender: Option<User>,
    /// The payload's `changes` (what an `edited` changed), as sent.
    #[serde(default)]
    pub changes: Option<serde_json::Value>,
}

impl SettingsEvent {
    /// The organisation (or user) the change is in: the organisation, else
    /// the repository's owner.
    pub fn owner(&self) -> Option<&str> {
        self.organization
            .as_ref()
            .map(|o| o.login.as_str())
            .or_else(|| {
                self.repository
                    .as_ref()
                    .and_then(|r| r.full_name.split('/').next())
            })
    }
}

/// The events the gate handles.
#[derive(Debug, Clone)]
pub enum Event {
    /// `pull_request`.
    PullRequest(Box<PullRequestEvent>),
    /// `issue_comment`.
    IssueComment(Box<IssueCommentEvent>),
    /// A settings change the GitHub posture re-checks.
    Settings(Box<SettingsEvent>),
    /// `ping` (sent when a hook is created).
    Ping,
    /// Anything else (ignored; only its repository is read).
    Other(String),
}

impl Event {
    /// Parses a payload by its `X-GitHub-Event` name.
    pub fn parse(event: &str, body: &[u8]) -> Result<Event, WebhookError> {
        let p = |e: serde_json::Error| WebhookError::Payload(e.to_string());
        Ok(match event {
            "pull_request" => {
                Event::PullRequest(Box::new(serde_json::from_slice(body).map_err(p)?))
            }
            "issue_comment" => {
                Event::IssueComment(Box::new(serde_json::from_slice(body).map_err(p)?))
            }
            "ping" => Event::Ping,
            name if SETTINGS_EVENTS.contains(&name) => {
                let mut e: SettingsEvent = serde_json::from_slice(body).map_err(p)?;
                e.name = name.to_string();
                Event::Settings(Box::new(e))
            }
            other => Event::Other(other.to_string()),
        })
    }

    /// The repository (`owner/name`) the event is about, if any.
    pub fn repo(&self) -> Option<&str> {
        match self {
            Event::PullRequest(e) => Some(&e.repository.full_name),
            Event::IssueComment(e) => Some(&e.repository.full_name),
            Event::Settings(e) => e.repository.as_ref().map(|r| r.full_name.as_str()),
            _ => None,
        }
    }
}
