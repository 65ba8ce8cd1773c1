//! Approve from Slack: each linked approver of a new request gets a message
//! with Approve / Deny buttons; a press comes back to
//! `POST /slack/interactivity`, is verified (Slack's v0 signature, the
//! five-minute timestamp window, replays refused across replicas), mapped to
//! a twokey identity through a configured link only, and reviewed through
//! the broker like every other path; every message of the request is
//! updated once anyone acted, on any path.
//!
//! ```toml
//! [slack]
//! bot_token_env = "TWOKEY_SLACK_BOT_TOKEN"        # or bot_token_file (xoxb-...)
//! signing_secret_file = "/etc/twokey/slack-signing-secret"   # or signing_secret_env
//! api_url = "https://slack.com/api"              # default
//!
//! [[slack.link]]
//! user = "U0123ABCD"           # the Slack user id (not a name or an email)
//! team = "T0123ABCD"           # optional: only from this workspace
//! identity = "https://idp.example.com|00u1abcd"   # issuer|subject (policy identities: twokey|bob)
//! ```
//!
//! Messages go out through the broker's notification outbox (a failure is
//! retried with backoff, never dropped): a message is recorded per (request,
//! Slack user) as soon as Slack took it, so a retry posts only the missing
//! ones, and every message is rendered from the request as it is now, so
//! deliveries in any order end with the same messages.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use twokey_core::event::{LedgerEvent, SlackRefusal, SlackRefused};
use twokey_core::notify::Person;
use twokey_core::{
    Actor, DomainError, Entitlement, IdentityKey, Millis, Request, ReviewDecision, Secret,
    State as RqState,
};
use twokey_notify::slack_app::{self, ApprovalView, SlackApi};
use twokey_store::SlackMessageRow;

use crate::broker::{Broker, BrokerError};

/// The route Slack's interactivity requests come to.
pub const PATH: &str = "/slack/interactivity";

/// How far `X-Slack-Request-Timestamp` may be from now, either way.
pub const MAX_SKEW_SECS: i64 = 300;

/// Largest interactivity body taken (a `block_actions` payload carries the
/// whole message; Slack's are a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The outbox delivery key of the Slack app channel.
pub const CHANNEL: &str = "slack app";

/// `[slack]` in `twokey.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The bot token (`xoxb-...`; give it as `bot_token_env` or `bot_token_file`).
    pub bot_token: Secret,
    /// The app's signing secret (`signing_secret_env` or `signing_secret_file`).
    pub signing_secret: Secret,
    /// The Web API base.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// `[[slack.link]]`: the only way a Slack user maps to a twokey identity.
    #[serde(default)]
    pub link: Vec<SlackLink>,
}

/// One `[[slack.link]]`: a Slack user (of a workspace, optionally) is this
/// twokey identity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackLink {
    /// Slack user id (`U...` or `W...`).
    pub user: String,
    /// Slack team (workspace) id (`T...`); when given, only a payload from
    /// that team matches.
    #[serde(default)]
    pub team: Option<String>,
    /// The twokey identity, `issuer|subject`.
    pub identity: String,
}

fn default_api_url() -> String {
    "https://slack.com/api".into()
}

fn slack_id(s: &str, first: &[char]) -> bool {
    s.len() >= 3
        && s.len() <= 32
        && s.starts_with(first)
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl SlackConfig {
    /// Checks the settings; errors name them.
    pub fn validate(&self) -> Result<(), String> {
        if !self.bot_token.expose().starts_with("xoxb-") {
            return Err("[slack] bot_token is not a bot token (xoxb-...)".into());
        }
        if self.signing_secret.expose().len() < 16 {
            return Err("[slack] signing_secret is shorter than 16 characters".into());
        }
        if let Err(e) = url_check(&self.api_url) {
            return Err(format!("[slack] api_url {:?}: {e}", self.api_url));
        }
        if self.link.is_empty() {
            return Err("[slack] has no [[slack.link]]: no Slack user could approve".into());
        }
        let mut seen: Vec<(&str, Option<&str>, &str)> = Vec::new();
        for (i, l) in self.link.iter().enumerate() {
            let at = format!("[[slack.link]] #{} (user {:?})", i + 1, l.user);
            if !slack_id(&l.user, &['U', 'W']) {
                return Err(format!(
                    "{at}: user must be a Slack user id like U0123ABCD (not a name or an email)"
                ));
            }
            if let Some(t) = &l.team {
                if !slack_id(t, &['T', 'E']) {
                    return Err(format!("{at}: team must be a Slack team id like T0123ABCD"));
                }
            }
            if IdentityKey::parse(&l.identity).is_none() {
                return Err(format!(
                    "{at}: identity {:?} is not issuer|subject (a policy identity is twokey|<name>)",
                    l.identity
                ));
            }
            for (u, t, id) in &seen {
                if *u == l.user && (t.is_none() || l.team.is_none() || *t == l.team.as_deref()) {
                    if *id == l.identity {
                        return Err(format!("{at}: the same link is given twice"));
                    }
                    return Err(format!(
                        "{at}: this Slack user is already linked to {id:?}; a Slack user is one identity"
                    ));
                }
            }
            seen.push((&l.user, l.team.as_deref(), &l.identity));
        }
        Ok(())
    }
}

/// An http(s) URL with a host (reqwest, in `twokey-notify`, parses it fully).
fn url_check(u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or("not an http(s) URL")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("no host".into());
    }
    Ok(())
}

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Slack-Request-Timestamp`.
    #[error("missing X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    /// Not a number of seconds.
    #[error("malformed X-Slack-Request-Timestamp header")]
    MalformedTimestamp,
    /// Older than the window.
    #[error("X-Slack-Request-Timestamp {timestamp} is more than {MAX_SKEW_SECS} s before now ({now}): stale")]
    Stale {
        /// The header's value.
        timestamp: i64,
        /// Now, Unix seconds.
        now: i64,
    },
    /// Newer than the window.
    #[error(
        "X-Slack-Request-Timestamp {timestamp} is more than {MAX_SKEW_SECS} s after now ({now})"
    )]
    Future {
        /// The header's value.
        timestamp: i64,
        /// Now, Unix seconds.
        now: i64,
    },
    /// No `X-Slack-Signature`.
    #[error("missing X-Slack-Signature header")]
    MissingSignature,
    /// Not `v0=<64 hex digits>`.
    #[error("malformed X-Slack-Signature header (expected v0=<64 hex digits>)")]
    MalformedSignature,
    /// The HMAC does not match.
    #[error("X-Slack-Signature does not match")]
    BadSignature,
}

impl SignatureError {
    /// The ledger's reason.
    pub fn refusal(&self) -> SlackRefusal {
        match self {
            SignatureError::MissingTimestamp
            | SignatureError::MalformedTimestamp
            | SignatureError::Stale { .. }
            | SignatureError::Future { .. } => SlackRefusal::Timestamp,
            SignatureError::MissingSignature
            | SignatureError::MalformedSignature
            | SignatureError::BadSignature => SlackRefusal::Signature,
        }
    }
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(b"v0:");
    m.update(timestamp.as_bytes());
    m.update(b":");
    m.update(body);
    m
}

/// The `X-Slack-Signature` Slack sends: `v0=` + hex HMAC-SHA256(signing
/// secret, `v0:{timestamp}:{body}`).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Verifies a request: the signature over the timestamp header and the raw
/// body (compared in constant time), then the timestamp within
/// [`MAX_SKEW_SECS`] of `now_secs`. Returns the timestamp. Replays are the
/// caller's to refuse (they need the store).
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<i64, SignatureError> {
    let ts_text = timestamp.ok_or(SignatureError::MissingTimestamp)?.trim();
    if ts_text.is_empty() || ts_text.len() > 12 || !ts_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::MalformedTimestamp);
    }
    let ts: i64 = ts_text
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    let sig = signature.ok_or(SignatureError::MissingSignature)?.trim();
    let hex_sig = sig
        .strip_prefix("v0=")
        .ok_or(SignatureError::MalformedSignature)?;
    let raw = hex::decode(hex_sig).map_err(|_| SignatureError::MalformedSignature)?;
    if raw.len() != 32 {
        return Err(SignatureError::MalformedSignature);
    }
    mac(secret, ts_text, body)
        .verify_slice(&raw)
        .map_err(|_| SignatureError::BadSignature)?;
    if ts < now_secs - MAX_SKEW_SECS {
        return Err(SignatureError::Stale {
            timestamp: ts,
            now: now_secs,
        });
    }
    if ts > now_secs + MAX_SKEW_SECS {
        return Err(SignatureError::Future {
            timestamp: ts,
            now: now_secs,
        });
    }
    Ok(ts)
}

/// The Slack app: config, Web API client.
pub struct SlackApp {
    cfg: SlackConfig,
    api: SlackApi,
    public_url: String,
}

impl std::fmt::Debug for SlackApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApp")
            .field("api_url", &self.cfg.api_url)
            .field("links", &self.cfg.link.len())
            .finish_non_exhaustive()
    }
}

/// What the interactivity payload is read for (Slack's `block_actions`
/// shape: `@slack/bolt`'s `BlockAction`).
#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: PayloadUser,
    #[serde(default)]
    team: Option<PayloadTeam>,
    #[serde(default)]
    actions: Vec<PayloadAction>,
    #[serde(default)]
    container: Option<PayloadContainer>,
    #[serde(default)]
    channel: Option<PayloadChannel>,
}

#[derive(Debug, Deserialize)]
struct PayloadUser {
    id: String,
    #[serde(default)]
    team_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PayloadTeam {
    id: String,
}

#[derive(Debug, Deserialize)]
struct PayloadAction {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PayloadContainer {
    #[serde(default)]
    channel_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PayloadChannel {
    id: String,
}

impl SlackApp {
    /// The app for a validated `cfg`; `public_url` is the web UI's base.
    pub fn new(cfg: SlackConfig, public_url: &str) -> Result<SlackApp, String> {
        cfg.validate()?;
        let api = SlackApi::new(&cfg.api_url, cfg.bot_token.clone())
            .map_err(|e| format!("[slack] {e}"))?;
        Ok(SlackApp {
            cfg,
            api,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }

    /// How many links are configured.
    pub fn links(&self) -> usize {
        self.cfg.link.len()
    }

    /// The link of a Slack user from `team` (a link with a team matches
    /// only a payload from that team).
    pub fn link_of(&self, user: &str, team: Option<&str>) -> Option<&SlackLink> {
        self.cfg.link.iter().find(|l| {
            l.user == user
                && match (&l.team, team) {
                    (None, _) => true,
                    (Some(t), Some(pt)) => t == pt,
                    (Some(_), None) => false,
                }
        })
    }

    /// The request's web page (where a security key approves).
    pub fn link_page(&self, id: &str) -> String {
        format!("{}/ui/requests/{id}", self.public_url)
    }

    /// The message for `approver` about `req` as it is now.
    fn render(
        &self,
        req: &Request,
        ent: Option<&Entitlement>,
        approver: &str,
        now: Millis,
    ) -> serde_json::Value {
        let approvals = req
            .reviews
            .iter()
            .filter(|r| r.decision == ReviewDecision::Approve)
            .count();
        let needed = ent.map(|e| e.approval.count as usize).unwrap_or(1);
        let last = req.reviews.last().map(|r| r.reviewer_name.clone());
        let state = match req.state {
            RqState::Pending if now >= req.pending_until => {
                "Timed out: nobody approved in time".to_string()
            }
            RqState::Pending => format!("Waiting for approval ({approvals} of {needed})"),
            RqState::Approved => "Approved; the grant is being applied".into(),
            RqState::Active => "Approved; the grant is active".into(),
            RqState::Revoking => "The grant is being revoked".into(),
            RqState::Expired => "The grant ended (expired)".into(),
            RqState::Revoked => "The grant was revoked".into(),
            RqState::Denied => format!("Denied by {}", last.unwrap_or_else(|| "a reviewer".into())),
            RqState::Cancelled => "Cancelled".into(),
            RqState::TimedOut => "Timed out: nobody approved in time".into(),
        };
        let history = req
            .reviews
            .iter()
            .map(|r| {
                let verb = match r.decision {
                    ReviewDecision::Approve => "approved",
                    ReviewDecision::Deny => "denied",
                };
                if r.comment.is_empty() {
                    format!("{} {verb}", r.reviewer_name)
                } else {
                    format!("{} {verb}: {}", r.reviewer_name, r.comment)
                }
            })
            .collect();
        let reviewed = req
            .reviews
            .iter()
            .any(|r| r.reviewer.to_string() == approver);
        let view = ApprovalView {
            request_id: req.id.clone(),
            requester: req.requester_name.clone(),
            entitlement: req.entitlement.clone(),
            reason: req.reason.clone(),
            ticket: req.ticket.clone(),
            duration: twokey_core::time::format_duration(req.duration_ms),
            link: self.link_page(&req.id),
            state,
            history,
            buttons: req.state == RqState::Pending && now < req.pending_until && !reviewed,
            approver_mfa: ent.is_some_and(|e| e.approver_mfa),
        };
        slack_app::approval_message(&view)
    }

    /// Delivers one outbox row about `req` (ledger `kind`): posts the
    /// approver messages of a new request that are not posted yet, then
    /// brings every recorded message of the request up to date. Errors are
    /// retried by the outbox.
    pub async fn deliver(
        &self,
        broker: &Broker,
        kind: &str,
        req: &Request,
        people: &[Person],
    ) -> Result<(), String> {
        let lp = broker.policy();
        let ent = lp.policy.entitlement(&req.entitlement);
        let store = broker.store();
        let now = broker.now();
        let existing = store
            .slack_messages(&req.id)
            .await
            .map_err(|e| e.to_string())?;
        let mut first_error = None;
        if kind == "request.created" && !req.break_glass {
            if let Some(ent) = ent {
                let mut users = BTreeSet::new();
                for p in twokey_core::notify::eligible_approvers(ent, req, people) {
                    for l in self
                        .cfg
                        .link
                        .iter()
                        .filter(|l| l.identity == p.actor.key.to_string())
                    {
                        if !users.insert(l.user.clone())
                            || existing.iter().any(|m| m.slack_user == l.user)
                        {
                            continue;
                        }
                        let msg = self.render(req, Some(ent), &l.identity, now);
                        match self.api.post_message(&l.user, &msg).await {
                            Ok(posted) => {
                                store
                                    .slack_put_message(&SlackMessageRow {
                                        request_id: req.id.clone(),
                                        slack_user: l.user.clone(),
                                        approver: l.identity.clone(),
                                        channel: posted.channel,
                                        ts: posted.ts,
                                        posted_at: now,
                                    })
                                    .await
                                    .map_err(|e| e.to_string())?;
                            }
                            Err(e) => {
                                tracing::warn!(request = %req.id, slack_user = %l.user, error = %e, "Slack approver message failed; will retry");
                                first_error.get_or_insert(e.to_string());
                            }
                        }
                    }
                }
            }
        }
        // The messages posted before this row (a new request's were just
        // rendered from the request as it is).
        let to_update = if kind == "request.created" {
            existing
        } else {
            store
                .slack_messages(&req.id)
                .await
                .map_err(|e| e.to_string())?
        };
        for m in to_update {
            let msg = self.render(req, ent, &m.approver, now);
            if let Err(e) = self.api.update(&m.channel, &m.ts, &msg).await {
                tracing::warn!(request = %req.id, slack_user = %m.slack_user, error = %e, "Slack message update failed; will retry");
                first_error.get_or_insert(e.to_string());
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

struct Ctx {
    broker: Arc<Broker>,
    app: Arc<SlackApp>,
}

/// The interactivity route ([`PATH`]).
pub fn router(broker: Arc<Broker>, app: Arc<SlackApp>) -> Router {
    Router::new()
        .route(PATH, post(interactivity))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(Ctx { broker, app }))
}

fn refused(status: StatusCode, text: String) -> Response {
    (status, Json(serde_json::json!({ "error": text }))).into_response()
}

/// The answer Slack gets for a press (the person sees it through
/// `chat.postEphemeral`; the body is for logs and tests).
fn answer(text: &str, outcome: &str) -> Response {
    (
        StatusCode::OK,
        Json(serde_json::json!({ "response_type": "ephemeral", "replace_original": false, "text": text, "outcome": outcome })),
    )
        .into_response()
}

impl Ctx {
    /// Writes a `slack.refused` entry (it alerts). A failed write is the
    /// caller's error: the refusal is not answered as if it were recorded.
    async fn record(
        &self,
        reason: SlackRefusal,
        detail: String,
        user: Option<&str>,
        team: Option<&str>,
    ) -> Result<(), String> {
        let ev = LedgerEvent::SlackRefused(SlackRefused {
            reason,
            detail,
            slack_user: user.map(str::to_string),
            slack_team: team.map(str::to_string),
        });
        let actor = match user {
            Some(u) => format!("slack|{u}"),
            None => "slack|unverified".to_string(),
        };
        let b = &self.broker;
        b.store()
            .record(
                b.now(),
                &b.policy().policy.hash,
                vec![("slack:interactivity".into(), ev.by(actor))],
            )
            .await
            .map_err(|e| e.to_string())?;
        b.wake();
        Ok(())
    }

    async fn refuse_request(&self, reason: SlackRefusal, detail: String) -> Response {
        tracing::warn!(reason = ?reason, %detail, "Slack interactivity refused");
        match self.record(reason, detail.clone(), None, None).await {
            Ok(()) => refused(StatusCode::UNAUTHORIZED, detail),
            Err(e) => {
                tracing::error!(error = %e, "could not record a refused Slack request");
                refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "refused, and the refusal could not be recorded".into(),
                )
            }
        }
    }

    /// Tells the person who pressed (best effort: the decision itself is in
    /// the ledger, and the updated messages show it).
    async fn tell(&self, channel: Option<&str>, user: &str, text: &str) {
        let Some(channel) = channel else { return };
        if let Err(e) = self.app.api.post_ephemeral(channel, user, text).await {
            tracing::warn!(slack_user = %user, error = %e, "Slack ephemeral answer failed");
        }
    }

    /// The actor a linked identity stands for: as the broker knows the
    /// person (policy identity, SSO sign-in, directory), else the bare key.
    async fn actor_of(&self, key: &IdentityKey) -> Result<Actor, BrokerError> {
        let people = self.broker.people().await?;
        let actor = people
            .into_iter()
            .find(|p| &p.actor.key == key)
            .map(|p| p.actor)
            .unwrap_or_else(|| Actor {
                key: key.clone(),
                name: key.to_string(),
                groups: Default::default(),
                links: Default::default(),
            });
        self.broker.directory_actor(actor).await
    }
}

async fn interactivity(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = ctx.broker.now();
    let ts = match verify(
        ctx.app.cfg.signing_secret.expose().as_bytes(),
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now.div_euclid(1000),
    ) {
        Ok(ts) => ts,
        Err(e) => return ctx.refuse_request(e.refusal(), e.to_string()).await,
    };
    let sig_hash = hex::encode(Sha256::digest(
        header("x-slack-signature")
            .unwrap_or_default()
            .trim()
            .as_bytes(),
    ));
    let expires = (ts + MAX_SKEW_SECS + 60).saturating_mul(1000);
    match ctx
        .broker
        .store()
        .slack_take_signature(&sig_hash, now, expires)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return ctx
                .refuse_request(
                    SlackRefusal::Replayed,
                    format!(
                        "this signed request (timestamp {ts}) was taken before: replay refused"
                    ),
                )
                .await
        }
        Err(e) => {
            tracing::error!(error = %e, "could not check a Slack request for replay");
            return refused(StatusCode::SERVICE_UNAVAILABLE, "try again".into());
        }
    }
    let payload = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned());
    let Some(payload) = payload else {
        return refused(
            StatusCode::BAD_REQUEST,
            "no payload= field in the form body".into(),
        );
    };
    let p: Payload = match serde_json::from_str(&payload) {
        Ok(p) => p,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                format!("payload is not a Slack interaction: {e}"),
            )
        }
    };
    if p.kind != "block_actions" {
        return answer("", "ignored");
    }
    let Some((decision, id)) = p.actions.iter().find_map(|a| {
        let d = match a.action_id.as_str() {
            slack_app::ACTION_APPROVE => ReviewDecision::Approve,
            slack_app::ACTION_DENY => ReviewDecision::Deny,
            _ => return None,
        };
        a.value.clone().map(|v| (d, v))
    }) else {
        return answer("", "ignored");
    };
    let team = p
        .user
        .team_id
        .as_deref()
        .or(p.team.as_ref().map(|t| t.id.as_str()));
    let channel = p
        .container
        .as_ref()
        .and_then(|c| c.channel_id.as_deref())
        .or(p.channel.as_ref().map(|c| c.id.as_str()))
        .map(str::to_string);
    let user = p.user.id.clone();
    let reply = |text: String, outcome: &'static str| {
        let ctx = ctx.clone();
        let channel = channel.clone();
        let user = user.clone();
        async move {
            ctx.tell(channel.as_deref(), &user, &text).await;
            answer(&text, outcome)
        }
    };
    let Some(link) = ctx.app.link_of(&user, team) else {
        let detail = format!(
            "Slack user {user} (team {}) has no [[slack.link]]",
            team.unwrap_or("?")
        );
        if let Err(e) = ctx
            .record(SlackRefusal::UnlinkedUser, detail, Some(&user), team)
            .await
        {
            tracing::error!(error = %e, "could not record a refused Slack user");
            return refused(StatusCode::SERVICE_UNAVAILABLE, "try again".into());
        }
        return reply(
            "Your Slack account is not linked to a twokey identity, so nothing was approved or denied. Ask a twokey admin to add a [[slack.link]] for you.".into(),
            "unlinked",
        )
        .await;
    };
    let Some(key) = IdentityKey::parse(&link.identity) else {
        return refused(StatusCode::INTERNAL_SERVER_ERROR, "bad link".into());
    };
    let actor = match ctx.actor_of(&key).await {
        Ok(a) => a,
        Err(e) => return reply(format!("Refused: {}", user_text(&e)), "refused").await,
    };
    let req = match ctx.broker.get(&id).await {
        Ok(r) => r,
        Err(e) => return reply(format!("Refused: {}", user_text(&e)), "refused").await,
    };
    let mfa = ctx
        .broker
        .policy()
        .policy
        .entitlement(&req.entitlement)
        .is_some_and(|e| e.approver_mfa);
    if decision == ReviewDecision::Approve && mfa && !actor.is(&req.requester) {
        return reply(
            format!(
                "{} needs your security key to approve: nothing was approved from Slack. Approve it on the web page: {}",
                req.entitlement,
                ctx.app.link_page(&req.id)
            ),
            "mfa_required",
        )
        .await;
    }
    match ctx.broker.review(&actor, &id, decision, "from Slack").await {
        Ok(r) => {
            let verb = match decision {
                ReviewDecision::Approve => "approved",
                ReviewDecision::Deny => "denied",
            };
            reply(
                format!(
                    "You {verb} {} ({} for {}); it is now {}.",
                    r.id,
                    r.entitlement,
                    r.requester_name,
                    r.state.as_str()
                ),
                verb,
            )
            .await
        }
        Err(BrokerError::Domain(DomainError::SelfApproval)) => {
            reply(
                format!(
                "You requested {id}; a different approver is required. The attempt is recorded."
            ),
                "self_approval",
            )
            .await
        }
        Err(e) => reply(format!("Refused: {}", user_text(&e)), "refused").await,
    }
}

/// What the person is told about an error: the domain's words, never the
/// store's.
fn user_text(e: &BrokerError) -> String {
    match e {
        BrokerError::Domain(d) => d.to_string(),
        BrokerError::NotFound(m) | BrokerError::BadInput(m) | BrokerError::Unprocessable(m) => {
            m.clone()
        }
        BrokerError::Store(twokey_store::StoreError::Deactivated(_)) => {
            "your identity has been deactivated in the directory".into()
        }
        BrokerError::Store(twokey_store::StoreError::Conflict) => {
            "the request changed while you acted; try again".into()
        }
        _ => "internal error; nothing was changed".into(),
    }
}
