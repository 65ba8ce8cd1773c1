//! A small client for the twokey API.

use anyhow::{anyhow, Context};
use reqwest::Method;
use serde_json::Value;

/// An API error with the server's problem detail.
#[derive(Debug)]
pub(crate) struct Refused {
    pub status: u16,
    pub detail: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {})", self.detail, self.status)
    }
}

impl std::error::Error for Refused {}

pub(crate) struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(base: &str, token: Option<String>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base, path);
        let mut rb = self.http.request(method, &url);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        } else {
            return Err(anyhow!(
                "no token: run `twokey login`, or set TWOKEY_TOKEN (in dev mode, see DATA_DIR/dev-tokens.json)"
            ));
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.with_context(|| {
            format!(
                "cannot reach the twokey server at {} (set --server or TWOKEY_SERVER)",
                self.base
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
        } else {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(String::from))
                .unwrap_or(text);
            Err(Refused {
                status: status.as_u16(),
                detail,
            }
            .into())
        }
    }
}
