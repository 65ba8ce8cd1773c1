//! Alert sinks: where twokey sends alerts people must see at once (break-glass,
//! revocations that keep failing, attempts at self-approval).
//!
//! A sink is a config entry plus a small [`AlertSink`] impl. Two are built in:
//!
//! - [`WebhookSink`]: POSTs the [`Alert`] as JSON, signed with HMAC-SHA256 in
//!   `X-Twokey-Signature-256` so the receiver can tell it came from twokey
//!   (check it with [`verify_signature`]).
//! - [`SlackSink`]: POSTs to a Slack incoming webhook.
//!
//! ```toml
//! [[alerts.sink]]
//! kind = "webhook"
//! url = "https://siem.example.com/twokey"
//! secret = "shared-secret"
//!
//! [[alerts.sink]]
//! kind = "slack"
//! webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"
//! ```
//!
//! Sending is one attempt; retrying (with [`NotifyError::is_retryable`]) is
//! the caller's choice, so an alert is never sent twice behind its back.

pub mod notifications;
pub mod slack_app;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
pub use twokey_core::Secret;

/// Header carrying `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Twokey-Signature-256";
/// Header carrying the alert's [`Alert::kind`].
pub const EVENT_HEADER: &str = "X-Twokey-Event";
/// How long one delivery may take before it counts as a (retryable) failure.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs a look soon.
    Warning,
    /// Needs a person now.
    Critical,
}

impl Severity {
    /// Lowercase name, as serialized (`critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert, as sent to every sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Machine-readable kind: `break_glass`, `revoke_failing`,
    /// `self_approval_attempt`, ...
    pub kind: String,
    /// How urgent it is.
    pub severity: Severity,
    /// One line for people.
    pub title: String,
    /// The details for people.
    pub text: String,
    /// The request it is about, if any.
    pub request_id: Option<String>,
    /// Where to look (the request in the web UI), if anywhere.
    pub link: Option<String>,
    /// Structured details for machines.
    pub data: serde_json::Value,
    /// When it happened, Unix milliseconds.
    pub time_ms: i64,
}

impl Alert {
    /// An alert with no request, link or data; set those fields as needed.
    pub fn new(
        kind: impl Into<String>,
        severity: Severity,
        title: impl Into<String>,
        text: impl Into<String>,
        time_ms: i64,
    ) -> Self {
        Self {
            kind: kind.into(),
            severity,
            title: title.into(),
            text: text.into(),
            request_id: None,
            link: None,
            data: serde_json::Value::Null,
            time_ms,
        }
    }
}

/// A failed delivery.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The receiver answered with a non-2xx status.
    #[error("{sink}: receiver answered HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// Sink name.
        sink: String,
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The request did not complete (connect, TLS, timeout, ...).
    #[error("{sink}: {message}")]
    Transport {
        /// Sink name.
        sink: String,
        /// What went wrong (never includes the URL, which may hold a secret).
        message: String,
    },
    /// The alert could not be encoded.
    #[error("{sink}: cannot encode the alert: {message}")]
    Encode {
        /// Sink name.
        sink: String,
        /// The encoder's message.
        message: String,
    },
}

impl NotifyError {
    /// Whether trying again later may succeed: network failures, timeouts,
    /// HTTP 5xx and 429. Other 4xx mean the sink is misconfigured.
    pub fn is_retryable(&self) -> bool {
        match self {
            NotifyError::Status { status, .. } => *status >= 500 || *status == 429,
            NotifyError::Transport { .. } => true,
            NotifyError::Encode { .. } => false,
        }
    }
}

/// Somewhere alerts go.
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// A name for logs and errors, without secrets (`webhook siem.example.com`).
    fn name(&self) -> String;
    /// Delivers one alert, once.
    async fn send(&self, alert: &Alert) -> Result<(), NotifyError>;
}

/// The `sha256=<hex>` signature of `body` under `secret`, as sent in
/// [`SIGNATURE_HEADER`].
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

/// Checks a [`SIGNATURE_HEADER`] value against `body`, in constant time.
/// For receivers of [`WebhookSink`] deliveries.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    mac(secret, body).verify_slice(&sig).is_ok()
}

fn mac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut m = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    m.update(body);
    m
}

/// The HTTP client sinks share: rustls, a send timeout, no redirects (a
/// redirect would re-send the signed body somewhere else).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("twokey/", env!("CARGO_PKG_VERSION")))
        .build()
        // Building only fails if the TLS backend cannot start, which a
        // rustls-only build does not do; fall back to reqwest's defaults.
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// POSTs `body` as JSON and maps the outcome.
async fn post_json(
    client: &reqwest::Client,
    sink: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<(), NotifyError> {
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| NotifyError::Transport {
            sink: sink.to_string(),
            // The URL may carry a secret (Slack's does): keep it out of messages.
            message: e.without_url().to_string(),
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let body: String = text.trim().chars().take(200).collect();
    Err(NotifyError::Status {
        sink: sink.to_string(),
        status: status.as_u16(),
        body,
    })
}

/// The host of a URL, for sink names that carry no secret.
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "(bad url)".to_string())
}

/// Sends alerts as signed JSON to any HTTP endpoint.
///
/// Body: the [`Alert`] as JSON. Headers: [`SIGNATURE_HEADER`]
/// (`sha256=<hex HMAC-SHA256(secret, body)>`) and [`EVENT_HEADER`] (the kind).
#[derive(Clone)]
pub struct WebhookSink {
    url: String,
    secret: Secret,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("host", &host_of(&self.url))
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink posting to `url`, signing with `secret`.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::with_client(http_client(), url, secret)
    }

    /// The same, sharing an existing client.
    pub fn with_client(
        client: reqwest::Client,
        url: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            secret: Secret::new(secret.into()),
            client,
        }
    }
}

#[async_trait]
impl AlertSink for WebhookSink {
    fn name(&self) -> String {
        format!("webhook {}", host_of(&self.url))
    }

    async fn send(&self, alert: &Alert) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(alert).map_err(|e| NotifyError::Encode {
            sink: self.name(),
            message: e.to_string(),
        })?;
        let headers = [
            (
                SIGNATURE_HEADER,
                sign(self.secret.expose().as_bytes(), &body),
            ),
            (EVENT_HEADER, alert.kind.clone()),
        ];
        post_json(&self.client, &self.name(), &self.url, &headers, body).await
    }
}

/// Sends alerts to a Slack incoming webhook: a plain `text` fallback plus
/// `blocks` (title, text, a button to the link when there is one, context).
#[derive(Clone)]
pub struct SlackSink {
    webhook_url: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for SlackSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The webhook URL is itself the credential.
        f.debug_struct("SlackSink").finish_non_exhaustive()
    }
}

impl SlackSink {
    /// A sink posting to a Slack incoming-webhook URL.
    pub fn new(webhook_url: impl Into<String>) -> Self {
        Self::with_client(http_client(), webhook_url)
    }

    /// The same, sharing an existing client.
    pub fn with_client(client: reqwest::Client, webhook_url: impl Into<String>) -> Self {
        Self {
            webhook_url: webhook_url.into(),
            client,
        }
    }

    /// The Slack message for an alert.
    pub fn message(alert: &Alert) -> serde_json::Value {
        let sev = alert.severity.as_str().to_uppercase();
        let mut context = format!("*{sev}* · `{}`", escape(&alert.kind));
        if let Some(id) = &alert.request_id {
            context.push_str(&format!(" · request `{}`", escape(id)));
        }
        let mut blocks = vec![
            serde_json::json!({
                "type": "header",
                "text": { "type": "plain_text", "text": clip(&format!("[{sev}] {}", alert.title), 150) },
            }),
            serde_json::json!({
                "type": "section",
                "text": { "type": "mrkdwn", "text": clip(&escape(&alert.text), 3000) },
            }),
        ];
        if let Some(link) = &alert.link {
            blocks.push(serde_json::json!({
                "type": "actions",
                "elements": [{
                    "type": "button",
                    "text": { "type": "plain_text", "text": "Open in twokey" },
                    "url": link,
                }],
            }));
        }
        blocks.push(serde_json::json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": context }],
        }));
        let mut text = format!("[{sev}] {}: {}", escape(&alert.title), escape(&alert.text));
        if let Some(link) = &alert.link {
            text.push_str(&format!(" <{}|open>", escape(link)));
        }
        serde_json::json!({ "text": clip(&text, 3000), "blocks": blocks })
    }
}

#[async_trait]
impl AlertSink for SlackSink {
    fn name(&self) -> String {
        "slack".to_string()
    }

    async fn send(&self, alert: &Alert) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(&Self::message(alert)).map_err(|e| NotifyError::Encode {
            sink: self.name(),
            message: e.to_string(),
        })?;
        post_json(&self.client, &self.name(), &self.webhook_url, &[], body).await
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts `s` to at most `max` characters, marking the cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// One `[[alerts.sink]]` entry of the configuration.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// A signed JSON webhook.
    Webhook {
        /// Where to POST.
        url: String,
        /// HMAC-SHA256 key shared with the receiver (or `secret_env`,
        /// `secret_file`: resolved when the config is read).
        secret: Secret,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The incoming-webhook URL (a credential: keep it out of logs).
        webhook_url: String,
    },
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkConfig::Webhook { url, .. } => f
                .debug_struct("Webhook")
                .field("host", &host_of(url))
                .finish_non_exhaustive(),
            SinkConfig::Slack { .. } => f.debug_struct("Slack").finish_non_exhaustive(),
        }
    }
}

impl SinkConfig {
    /// Checks the entry: an http(s) URL and, for webhooks, a non-empty secret.
    /// Messages never contain the URL or secret.
    pub fn validate(&self) -> Result<(), String> {
        let (key, url) = match self {
            SinkConfig::Webhook { url, secret } => {
                if secret.is_empty() {
                    return Err("webhook alert sink: `secret` is empty".to_string());
                }
                ("url", url)
            }
            SinkConfig::Slack { webhook_url } => ("webhook_url", webhook_url),
        };
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
            Ok(_) => Err(format!(
                "alert sink: `{key}` must be an http:// or https:// URL"
            )),
            Err(e) => Err(format!("alert sink: `{key}` is not a URL ({e})")),
        }
    }
}

/// Builds one sink per config entry, sharing a single HTTP client.
pub fn build_sinks(configs: &[SinkConfig]) -> Vec<Arc<dyn AlertSink>> {
    let client = http_client();
    configs
        .iter()
        .map(|c| -> Arc<dyn AlertSink> {
            match c {
                SinkConfig::Webhook { url, secret } => Arc::new(WebhookSink::with_client(
                    client.clone(),
                    url,
                    secret.expose(),
                )),
                SinkConfig::Slack { webhook_url } => {
                    Arc::new(SlackSink::with_client(client.clone(), webhook_url))
                }
            }
        })
        .collect()
}

/// Sends `alert` to every sink concurrently, returning the failures by sink
/// name (empty when all succeeded).
pub async fn send_all(sinks: &[Arc<dyn AlertSink>], alert: &Alert) -> Vec<(String, NotifyError)> {
    let sends = sinks
        .iter()
        .map(|s| async move { (s.name(), s.send(alert).await) });
    futures_util::future::join_all(sends)
        .await
        .into_iter()
        .filter_map(|(name, result)| result.err().map(|e| (name, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let sig = sign(b"s3cret", b"{\"a\":1}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify_signature(b"s3cret", b"{\"a\":1}", &sig));
        assert!(!verify_signature(b"other", b"{\"a\":1}", &sig));
        assert!(!verify_signature(b"s3cret", b"{\"a\":2}", &sig));
        assert!(!verify_signature(b"s3cret", b"{\"a\":1}", "sha256=zz"));
        assert!(!verify_signature(b"s3cret", b"{\"a\":1}", &sig[7..]));
    }

    #[test]
    fn sink_config_reads_toml_and_hides_secrets() {
        #[derive(Deserialize)]
        struct Alerts {
            sink: Vec<SinkConfig>,
        }
        let a: Alerts = toml::from_str(
            "[[sink]]\nkind = \"webhook\"\nurl = \"https://siem.example.com/x\"\nsecret = \"k\"\n\
             [[sink]]\nkind = \"slack\"\nwebhook_url = \"https://hooks.slack.com/services/T/B/SECRET\"\n",
        )
        .unwrap();
        assert_eq!(
            a.sink[0],
            SinkConfig::Webhook {
                url: "https://siem.example.com/x".into(),
                secret: "k".into()
            }
        );
        assert!(a.sink.iter().all(|s| s.validate().is_ok()));
        assert!(!format!("{:?}", a.sink).contains("SECRET"));
        let sinks = build_sinks(&a.sink);
        assert_eq!(sinks[0].name(), "webhook siem.example.com");
        assert_eq!(sinks[1].name(), "slack");
        let bad: Result<Alerts, _> = toml::from_str("[[sink]]\nkind = \"pager\"\n");
        assert!(bad.is_err());
        let typo: Result<Alerts, _> = toml::from_str(
            "[[sink]]\nkind = \"slack\"\nwebhook_url = \"https://x\"\nchannel = \"#a\"\n",
        );
        assert!(typo.is_err(), "unknown keys must be refused");
        let bad = SinkConfig::Slack {
            webhook_url: "ftp://x".into(),
        }
        .validate()
        .unwrap_err();
        assert!(bad.contains("webhook_url"), "{bad}");
    }

    #[test]
    fn slack_message_escapes_and_links() {
        let mut alert = Alert::new(
            "break_glass",
            Severity::Critical,
            "Break-glass",
            "a<b & c>d",
            0,
        );
        alert.link = Some("https://twokey.example.com/r/1".into());
        let m = SlackSink::message(&alert);
        assert_eq!(m["blocks"][1]["text"]["text"], "a&lt;b &amp; c&gt;d");
        assert_eq!(
            m["blocks"][2]["elements"][0]["url"],
            "https://twokey.example.com/r/1"
        );
        assert!(m["text"]
            .as_str()
            .unwrap()
            .starts_with("[CRITICAL] Break-glass"));
    }
}
