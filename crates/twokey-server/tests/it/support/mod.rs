//! A broker served on loopback, on SQLite or PostgreSQL, with tokens for the
//! policy's identities and an exec provider that keeps one file per grant.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use twokey_core::Policy;
use twokey_providers::{ProviderContext, Registry};
use twokey_server::{Broker, BrokerOptions, SystemClock};
use twokey_store::Store;

pub(crate) struct Harness {
    pub broker: Arc<Broker>,
    pub base: String,
    pub tokens: BTreeMap<String, String>,
    pub dir: PathBuf,
    pub url: String,
    pub http: reqwest::Client,
    _tmp: tempfile::TempDir,
    stop: tokio::sync::watch::Sender<bool>,
}

/// A policy: alice and erin (team eng) request; bob, carol, dave approve; bob
/// and carol are admins. `grants/<id>` exists while a grant is active; the
/// revoke fails while `fail-revoke` exists.
pub(crate) fn policy(extra: &str) -> String {
    format!(
        r#"
[admins]
groups = ["admins"]
approvals = 1

[[identity]]
name = "alice"
groups = ["eng"]
[[identity]]
name = "erin"
groups = ["eng"]
[[identity]]
name = "bob"
groups = ["approvers", "admins"]
[[identity]]
name = "carol"
groups = ["approvers", "admins"]
[[identity]]
name = "dave"
groups = ["approvers", "eng"]

[[entitlement]]
name = "demo"
provider = "exec"
requester_groups = ["eng"]
default_duration = "30m"
max_duration = "1h"
pending_timeout = "1h"
reason_required = true
break_glass = true
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
grant = ["sh", "-c", "mkdir -p \"$D/grants\" && touch \"$D/grants/$TWOKEY_REQUEST_ID\" && echo grant $TWOKEY_REQUEST_ID >> \"$D/calls.log\""]
revoke = ["sh", "-c", "if [ -e \"$D/fail-revoke\" ]; then echo target unreachable >&2; exit 3; fi; rm -f \"$D/grants/$TWOKEY_REQUEST_ID\"; echo revoke $TWOKEY_REQUEST_ID >> \"$D/calls.log\""]
check = ["sh", "-c", "test -e \"$D/grants/$TWOKEY_REQUEST_ID\""]

[[entitlement]]
name = "two-key"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approval = {{ count = 2, from = ["approvers"] }}
[entitlement.target]
grant = ["sh", "-c", "mkdir -p \"$D/grants\" && touch \"$D/grants/$TWOKEY_REQUEST_ID\" && echo grant $TWOKEY_REQUEST_ID >> \"$D/calls.log\""]
revoke = ["sh", "-c", "rm -f \"$D/grants/$TWOKEY_REQUEST_ID\""]
check = ["sh", "-c", "test -e \"$D/grants/$TWOKEY_REQUEST_ID\""]

[[entitlement]]
name = "short"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
pending_timeout = "1s"
approval = {{ count = 1, from = ["approvers"], exclude_requester_groups = true }}
[entitlement.target]
grant = ["sh", "-c", "mkdir -p \"$D/grants\" && touch \"$D/grants/$TWOKEY_REQUEST_ID\""]
revoke = ["sh", "-c", "rm -f \"$D/grants/$TWOKEY_REQUEST_ID\""]
check = ["sh", "-c", "test -e \"$D/grants/$TWOKEY_REQUEST_ID\""]
{extra}
"#
    )
}

pub(crate) async fn start(
    url: String,
    policy_text: &str,
    sinks: Vec<Arc<dyn twokey_notify::AlertSink>>,
) -> Harness {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let store = Store::open(&url).await.expect("open store");
    let policy = Policy::parse(policy_text, "test policy").expect("valid test policy");
    let mut ctx = ProviderContext::default();
    ctx.env.insert("D".into(), dir.display().to_string());
    let opts = BrokerOptions {
        base_backoff_ms: 100,
        max_backoff_ms: 400,
        poll_ms: 50,
        ..Default::default()
    };
    let (broker, _) = Broker::start(
        store,
        policy,
        Registry::with_builtin(),
        ctx,
        Arc::new(SystemClock),
        sinks,
        opts,
    )
    .await
    .expect("broker starts");
    let mut tokens = BTreeMap::new();
    for id in &broker.policy().policy.identities {
        let t = twokey_server::new_token();
        broker
            .store()
            .put_token(
                &twokey_server::token_hash(&t),
                &id.actor(),
                broker.now(),
                None,
            )
            .await
            .expect("token");
        tokens.insert(id.name.clone(), t);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(twokey_server::serve(broker.clone(), listener, rx));
    Harness {
        broker,
        base,
        tokens,
        dir,
        url,
        http: reqwest::Client::new(),
        _tmp: tmp,
        stop,
    }
}

impl Harness {
    pub(crate) async fn call(
        &self,
        who: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = self.tokens.get(who) {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("server reachable");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(crate) async fn request(&self, who: &str, entitlement: &str, duration: &str) -> String {
        let (s, v) = self
            .call(who, reqwest::Method::POST, "/v1/requests", Some(json!({"entitlement": entitlement, "duration": duration, "reason": "INC-1 test"})))
            .await;
        assert_eq!(s, 201, "request refused: {v}");
        v["id"].as_str().expect("id").to_string()
    }

    pub(crate) async fn approve(&self, who: &str, id: &str) -> (u16, Value) {
        self.call(
            who,
            reqwest::Method::POST,
            &format!("/v1/requests/{id}/approve"),
            Some(json!({"comment": "ok"})),
        )
        .await
    }

    pub(crate) async fn show(&self, id: &str) -> Value {
        let (s, v) = self
            .call(
                "bob",
                reqwest::Method::GET,
                &format!("/v1/requests/{id}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "show {id}: {v}");
        v
    }

    /// Waits until the request reaches `state`, or panics after `secs`.
    pub(crate) async fn wait_state(&self, id: &str, state: &str, secs: u64) -> Value {
        twokey_testkit::eventually(
            &format!("{id} to become {state}"),
            Duration::from_secs(secs),
            || async {
                let v = self.show(id).await;
                if v["state"] == state {
                    Ok(v)
                } else {
                    Err(format!("state {}", v["state"]))
                }
            },
        )
        .await
    }

    pub(crate) fn grant_file(&self, id: &str) -> bool {
        self.dir.join("grants").join(id).exists()
    }

    pub(crate) fn kinds(v: &Value) -> Vec<String> {
        twokey_testkit::timeline_kinds(v)
    }

    pub(crate) fn backend(&self) -> &'static str {
        if self.url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        }
    }

    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes every ledger insert fail (see [`twokey_store::testing::break_ledger`]);
/// [`mend_ledger`] undoes it.
pub(crate) async fn break_ledger(h: &Harness) {
    twokey_store::testing::break_ledger(h.broker.store())
        .await
        .expect("break the ledger");
}

/// Undoes [`break_ledger`].
pub(crate) async fn mend_ledger(h: &Harness) {
    twokey_store::testing::mend_ledger(h.broker.store())
        .await
        .expect("mend the ledger");
}

pub(crate) async fn urls(prefix: &str) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let urls = twokey_store::testing::both(dir.path(), prefix).await;
    (dir, urls)
}

/// `POST path` declaring a `Content-Length` of `declared` bytes but sending
/// none of them, over a raw connection: the server must refuse the body from
/// its length alone. (Sending a real oversized body races the server's
/// early answer: it closes with unread data, the client sees a reset.)
/// Returns the status, the content type and the response body.
#[allow(dead_code)]
pub(crate) async fn post_declaring(
    base: &str,
    path: &str,
    token: &str,
    declared: usize,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("send the head");
    let mut buf = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("the server answers without waiting for the body")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}
