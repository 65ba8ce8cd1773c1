//! A typed client of twokey's JSON API (`/v1`), for one identity's bearer
//! token, shared by the server's, the binary's and the benchmark's tests.
//!
//! Two layers: [`Api::call`] answers whatever the server said (status and
//! body), for tests that expect a refusal; the operations above it
//! ([`Api::create`], [`Api::approve`], [`Api::show`], [`Api::wait_state`])
//! fail with the status and body when the server refuses, so a test that
//! expects them to succeed reads as the steps of the flow.

use std::time::Duration;

use serde_json::{json, Value};
use twokey_core::request::State;

use crate::eventually;

/// What the server answered: the HTTP status and the body (JSON, or the
/// text as a JSON string when it was not JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// The answer if its status is 2xx, else an error naming `what`, the
    /// status and the body.
    pub fn success(self, what: &str) -> Result<Value, String> {
        if (200..300).contains(&self.status) {
            Ok(self.body)
        } else {
            Err(format!("{what}: HTTP {}: {}", self.status, self.body))
        }
    }
}

/// A new access request (`POST /v1/requests`).
#[derive(Debug, Clone, Default)]
pub struct NewRequest<'a> {
    /// The entitlement's name.
    pub entitlement: &'a str,
    /// `"30m"`, `"6s"`; the entitlement's default when `None`.
    pub duration: Option<&'a str>,
    /// The reason; `"test"` when `None`.
    pub reason: Option<&'a str>,
    /// A ticket reference, when the entitlement wants one.
    pub ticket: Option<&'a str>,
    /// Break-glass: active at once, reviewed afterwards.
    pub break_glass: bool,
}

impl<'a> NewRequest<'a> {
    /// A request for `entitlement` for `duration`, reason `"test"`.
    pub fn new(entitlement: &'a str, duration: &'a str) -> NewRequest<'a> {
        NewRequest {
            entitlement,
            duration: Some(duration),
            ..NewRequest::default()
        }
    }

    fn body(&self) -> Value {
        let mut b = json!({
            "entitlement": self.entitlement,
            "reason": self.reason.unwrap_or("test"),
        });
        if let Some(d) = self.duration {
            b["duration"] = json!(d);
        }
        if let Some(t) = self.ticket {
            b["ticket"] = json!(t);
        }
        if self.break_glass {
            b["break_glass"] = json!(true);
        }
        b
    }
}

/// A client of one server for one identity.
#[derive(Clone, Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client of the server at `base` (`http://127.0.0.1:PORT`) with the
    /// bearer token `token`; no proxy, a 30 s timeout per call.
    pub fn new(base: &str, token: &str) -> Api {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("an HTTP client: {e}"));
        Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: Some(token.to_string()),
        }
    }

    /// The same server without a token (what an unauthenticated caller sees).
    pub fn anonymous(&self) -> Api {
        Api {
            token: None,
            ..self.clone()
        }
    }

    /// The same server, as the identity of `token`.
    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `method path` with an optional JSON body; whatever the server
    /// answered. Panics only when the server cannot be reached.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut rb = self.http.request(method.clone(), &url);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: the server is not reachable: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    /// `GET path`, answered 2xx.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.call(reqwest::Method::GET, path, None)
            .await
            .success(&format!("GET {path}"))
    }

    /// `POST path` with `body`, answered 2xx.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, path, Some(body))
            .await
            .success(&format!("POST {path}"))
    }

    /// Creates a request; its id.
    pub async fn create(&self, req: &NewRequest<'_>) -> Result<String, String> {
        let v = self.post("/v1/requests", req.body()).await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("POST /v1/requests answered without an id: {v}"))
    }

    /// Approves request `id` (comment `"ok"`); whatever the server answered,
    /// since tests approve to see refusals too.
    pub async fn approve(&self, id: &str) -> Answer {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/requests/{id}/approve"),
            Some(json!({"comment": "ok"})),
        )
        .await
    }

    /// Revokes request `id`; whatever the server answered.
    pub async fn revoke(&self, id: &str) -> Answer {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/requests/{id}/revoke"),
            None,
        )
        .await
    }

    /// `GET /v1/requests/{id}`.
    pub async fn show(&self, id: &str) -> Result<Value, String> {
        self.get(&format!("/v1/requests/{id}")).await
    }

    /// The state of request `id`.
    pub async fn state(&self, id: &str) -> Result<State, String> {
        let v = self.show(id).await?;
        state_of(&v)
    }

    /// Waits until request `id` is in `want` and returns its view; panics
    /// after `timeout` with the last state seen (and the request's last
    /// error, when it has one).
    pub async fn wait_state(&self, id: &str, want: State, timeout: Duration) -> Value {
        eventually(
            &format!("{id} to be {}", want.as_str()),
            timeout,
            || async {
                let v = self.show(id).await?;
                match state_of(&v)? {
                    s if s == want => Ok(v),
                    s => Err(format!(
                        "state {} (last error {})",
                        s.as_str(),
                        v["last_error"]
                    )),
                }
            },
        )
        .await
    }
}

/// The `state` of a request view, typed.
pub fn state_of(v: &Value) -> Result<State, String> {
    let s = v["state"]
        .as_str()
        .ok_or_else(|| format!("a request view without a state: {v}"))?;
    State::parse(s).ok_or_else(|| format!("an unknown request state {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_request_says_only_what_is_set() {
        let b = NewRequest::new("demo", "30m").body();
        assert_eq!(
            b,
            json!({"entitlement": "demo", "duration": "30m", "reason": "test"})
        );
        let b = NewRequest {
            entitlement: "db",
            reason: Some("INC-1 outage"),
            ticket: Some("INC-1"),
            break_glass: true,
            ..NewRequest::default()
        }
        .body();
        assert_eq!(
            b,
            json!({"entitlement": "db", "reason": "INC-1 outage", "ticket": "INC-1", "break_glass": true})
        );
    }

    #[test]
    fn states_are_read_typed() {
        assert_eq!(state_of(&json!({"state": "active"})), Ok(State::Active));
        assert_eq!(
            state_of(&json!({"state": "timed_out"})),
            Ok(State::TimedOut)
        );
        assert!(state_of(&json!({"state": "activ"}))
            .unwrap_err()
            .contains("unknown request state"));
        assert!(state_of(&json!({}))
            .unwrap_err()
            .contains("without a state"));
    }

    #[test]
    fn a_refusal_names_the_call_status_and_body() {
        let a = Answer {
            status: 403,
            body: json!({"detail": "you requested this"}),
        };
        let e = a.success("POST /v1/requests/r1/approve").unwrap_err();
        assert!(
            e.contains("HTTP 403") && e.contains("you requested this"),
            "{e}"
        );
        let ok = Answer {
            status: 201,
            body: json!({"id": "r1"}),
        };
        assert_eq!(ok.success("x"), Ok(json!({"id": "r1"})));
    }
}
