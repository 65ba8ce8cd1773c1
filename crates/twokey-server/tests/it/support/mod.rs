//! A broker served on loopback, on SQLite or PostgreSQL, with tokens for the
//! policy's identities and an exec provider that keeps one file per grant.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
pub(crate) use twokey_core::request::State;
use twokey_core::Policy;
use twokey_providers::{ProviderContext, Registry};
use twokey_server::{Broker, BrokerOptions, SystemClock};
use twokey_store::Store;
use twokey_testkit::policy::PEOPLE;
use twokey_testkit::{Api, NewRequest};

pub(crate) struct Harness {
    pub broker: Arc<Broker>,
    pub base: String,
    pub tokens: BTreeMap<String, String>,
    pub dir: PathBuf,
    pub url: String,
    pub http: reqwest::Client,
    api: Api,
    _tmp: tempfile::TempDir,
    stop: tokio::sync::watch::Sender<bool>,
}

/// A policy: the test people ([`PEOPLE`]: alice requests, bob and carol
/// approve and are admins), erin (team eng) and dave (approves, team eng).
/// `grants/<id>` exists while a grant is active; the revoke fails while
/// `fail-revoke` exists.
pub(crate) fn policy(extra: &str) -> String {
    format!(
        r#"{PEOPLE}
[[identity]]
name = "erin"
groups = ["eng"]
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
    start_with_clock(url, policy_text, sinks, Arc::new(SystemClock)).await
}

/// [`start`] with the broker on `clock` (an `OffsetClock` the test moves).
pub(crate) async fn start_with_clock(
    url: String,
    policy_text: &str,
    sinks: Vec<Arc<dyn twokey_notify::AlertSink>>,
    clock: Arc<dyn twokey_server::Clock>,
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
        clock,
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
    let api = Api::new(&base, "").anonymous();
    Harness {
        broker,
        base,
        tokens,
        dir,
        url,
        http: reqwest::Client::new(),
        api,
        _tmp: tmp,
        stop,
    }
}

impl Harness {
    /// The API as `who` (anonymous when `who` has no token).
    pub(crate) fn api(&self, who: &str) -> Api {
        match self.tokens.get(who) {
            Some(t) => self.api.with_token(t),
            None => self.api.clone(),
        }
    }

    pub(crate) async fn call(
        &self,
        who: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let a = self.api(who).call(method, path, body).await;
        (a.status, a.body)
    }

    pub(crate) async fn request(&self, who: &str, entitlement: &str, duration: &str) -> String {
        let req = NewRequest {
            reason: Some("INC-1 test"),
            ..NewRequest::new(entitlement, duration)
        };
        self.api(who)
            .create(&req)
            .await
            .unwrap_or_else(|e| panic!("request refused: {e}"))
    }

    pub(crate) async fn approve(&self, who: &str, id: &str) -> (u16, Value) {
        let a = self.api(who).approve(id).await;
        (a.status, a.body)
    }

    pub(crate) async fn show(&self, id: &str) -> Value {
        self.api("bob")
            .show(id)
            .await
            .unwrap_or_else(|e| panic!("show {id}: {e}"))
    }

    /// Waits until the request reaches `state`, or panics after `secs`.
    pub(crate) async fn wait_state(&self, id: &str, state: State, secs: u64) -> Value {
        self.api("bob")
            .wait_state(id, state, Duration::from_secs(secs))
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
