//! The Slack Web API as Approve-from-Slack uses it: a bot token, messages to
//! each linked approver with Approve / Deny buttons (`chat.postMessage`),
//! edits once someone acted (`chat.update`), and ephemeral answers to the
//! person who pressed a button (`chat.postEphemeral`).
//!
//! An incoming webhook (see [`crate::notifications`]) cannot do this: its
//! messages cannot be edited and it does not say where they went.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::{clip, escape, http_client, NotifyError, Secret};

/// `action_id` of the Approve button.
pub const ACTION_APPROVE: &str = "twokey_approve";
/// `action_id` of the Deny button.
pub const ACTION_DENY: &str = "twokey_deny";
/// `block_id` of the buttons' `actions` block.
pub const ACTIONS_BLOCK: &str = "twokey_review";

/// Where a posted message is: the conversation and its `ts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Conversation id (a DM's `D...` when posted to a user id).
    pub channel: String,
    /// The message's timestamp id.
    pub ts: String,
}

/// A Slack Web API client with a bot token.
pub struct SlackApi {
    base: String,
    token: Secret,
    client: reqwest::Client,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    ts: Option<String>,
}

impl SlackApi {
    /// A client for the Web API at `base` (`https://slack.com/api`).
    pub fn new(base: &str, token: Secret) -> Result<Self, String> {
        let u = reqwest::Url::parse(base).map_err(|e| format!("api_url {base:?}: {e}"))?;
        if u.scheme() != "https" && u.scheme() != "http" {
            return Err(format!("api_url {base:?} is not an http(s) URL"));
        }
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            client: http_client(),
        })
    }

    fn name(method: &str) -> String {
        format!("slack {method}")
    }

    /// Calls `method` with a JSON body; an answer with `"ok": false` is an
    /// error naming Slack's `error` code.
    async fn call(&self, method: &str, body: &Value) -> Result<Answer, NotifyError> {
        let sink = Self::name(method);
        let resp = self
            .client
            .post(format!("{}/{method}", self.base))
            .bearer_auth(self.token.expose())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| NotifyError::Transport {
                sink: sink.clone(),
                message: e.without_url().to_string(),
            })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(NotifyError::Status {
                sink,
                status: status.as_u16(),
                body: text.trim().chars().take(200).collect(),
            });
        }
        let a: Answer = serde_json::from_str(&text).map_err(|e| NotifyError::Transport {
            sink: sink.clone(),
            message: format!("answer is not Slack's JSON: {e}"),
        })?;
        if !a.ok {
            return Err(NotifyError::Status {
                sink,
                status: status.as_u16(),
                body: format!("ok=false, error={}", a.error.as_deref().unwrap_or("?")),
            });
        }
        Ok(a)
    }

    /// `chat.postMessage` of `message` (`text` + `blocks`) to `channel` (a
    /// user id posts to the bot's DM with that user).
    pub async fn post_message(
        &self,
        channel: &str,
        message: &Value,
    ) -> Result<Posted, NotifyError> {
        let mut body = message.clone();
        body["channel"] = json!(channel);
        let a = self.call("chat.postMessage", &body).await?;
        match (a.channel, a.ts) {
            (Some(channel), Some(ts)) => Ok(Posted { channel, ts }),
            _ => Err(NotifyError::Transport {
                sink: Self::name("chat.postMessage"),
                message: "answer without channel and ts".into(),
            }),
        }
    }

    /// `chat.update` of the message at (`channel`, `ts`) to `message`.
    pub async fn update(
        &self,
        channel: &str,
        ts: &str,
        message: &Value,
    ) -> Result<(), NotifyError> {
        let mut body = message.clone();
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        self.call("chat.update", &body).await.map(|_| ())
    }

    /// `chat.postEphemeral`: `text` shown only to `user` in `channel`.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), NotifyError> {
        let body = json!({ "channel": channel, "user": user, "text": clip(text, 3000) });
        self.call("chat.postEphemeral", &body).await.map(|_| ())
    }
}

/// What an approver message shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalView {
    /// Request id (the buttons' `value`).
    pub request_id: String,
    /// Who asked.
    pub requester: String,
    /// The entitlement.
    pub entitlement: String,
    /// Why.
    pub reason: String,
    /// Ticket, when given.
    pub ticket: Option<String>,
    /// Grant length, as text.
    pub duration: String,
    /// The request page.
    pub link: String,
    /// The state line (`Waiting for 1 approval`, `Approved by bob`, ...).
    pub state: String,
    /// Who did what so far, one line each.
    pub history: Vec<String>,
    /// Whether the message still carries Approve / Deny.
    pub buttons: bool,
    /// Whether approving needs the security key on the web page.
    pub approver_mfa: bool,
}

/// The Block Kit message for an approver (`text` is the notification
/// fallback).
pub fn approval_message(v: &ApprovalView) -> Value {
    let title = format!(
        "{} asks for {} ({})",
        v.requester, v.entitlement, v.request_id
    );
    let details = format!(
        "*Requester:* {}\n*Entitlement:* {}\n*Reason:* {}\n*Ticket:* {}\n*Duration:* {}\n*Request:* <{}|{}>",
        escape(&v.requester),
        escape(&v.entitlement),
        escape(if v.reason.is_empty() { "-" } else { &v.reason }),
        escape(v.ticket.as_deref().unwrap_or("-")),
        escape(&v.duration),
        escape(&v.link),
        escape(&v.request_id),
    );
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": clip(&format!("Approval: {}", v.entitlement), 150) } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": clip(&details, 3000) } }),
    ];
    if !v.history.is_empty() {
        let lines: Vec<String> = v.history.iter().map(|h| escape(h)).collect();
        blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": clip(&lines.join("\n"), 3000) }] }));
    }
    blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": clip(&format!("*State:* {}", escape(&v.state)), 3000) } }));
    if v.buttons {
        let approve_text = if v.approver_mfa {
            "Approve (security key)"
        } else {
            "Approve"
        };
        blocks.push(json!({
            "type": "actions",
            "block_id": ACTIONS_BLOCK,
            "elements": [
                { "type": "button", "action_id": ACTION_APPROVE, "style": "primary",
                  "text": { "type": "plain_text", "text": approve_text }, "value": v.request_id },
                { "type": "button", "action_id": ACTION_DENY, "style": "danger",
                  "text": { "type": "plain_text", "text": "Deny" }, "value": v.request_id,
                  "confirm": {
                      "title": { "type": "plain_text", "text": "Deny this request?" },
                      "text": { "type": "plain_text", "text": clip(&format!("Deny {} for {}?", v.entitlement, v.requester), 300) },
                      "confirm": { "type": "plain_text", "text": "Deny" },
                      "deny": { "type": "plain_text", "text": "Cancel" }
                  } },
            ],
        }));
        if v.approver_mfa {
            blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": "Approving needs your security key: Approve answers with the link to the web page." }] }));
        }
    }
    json!({ "text": clip(&format!("{title}: {}", v.state), 3000), "blocks": blocks })
}
