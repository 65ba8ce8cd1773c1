//! Approve from Slack through the binary: `twokey serve` with `[slack]`
//! pointing `api_url` at a local Slack Web API stand-in (records
//! `chat.postMessage`, `chat.update`, `chat.postEphemeral` and answers as
//! Slack documents), and signed `block_actions` payloads POSTed to
//! `/slack/interactivity` exactly as Slack sends them (form-encoded
//! `payload=`).
//!
//! The payload is built from `@slack/bolt`'s published `BlockAction` model
//! and each message twokey posts is checked against `@slack/types`' Block
//! Kit models; signatures are checked with Bolt's own `verifySlackRequest`
//! (node) as well. Those come from `scripts/setup-slack-fixtures.sh`; without
//! them the shape checks are skipped (and required when `CI` is set).

use crate::support;
use twokey_testkit::policy::PEOPLE;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::{fresh_pg, now_ms, wait_until, Server, TestEnv};

const BOT_TOKEN: &str = "xoxb-1234-5678-slackstandin";
const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TEAM: &str = "T0TWOKEY";
const ALICE: &str = "U0ALICE";
const BOB: &str = "U0BOB";
const CAROL: &str = "U0CAROL";
const EVE: &str = "U0EVE";

// ---------------------------------------------------------------------------
// The Slack Web API stand-in.

#[derive(Debug, Clone)]
struct Call {
    method: String,
    body: Value,
    ok: bool,
}

#[derive(Default)]
struct Slack {
    calls: Mutex<Vec<Call>>,
    /// `chat.postMessage` calls still to refuse with HTTP 429 `ratelimited`.
    fail_posts: AtomicUsize,
    next_ts: AtomicUsize,
    /// Messages posted: (channel, ts) → blocks of the latest version.
    messages: Mutex<BTreeMap<(String, String), Value>>,
}

async fn slack_method(
    State(s): State<Arc<Slack>>,
    UrlPath(method): UrlPath<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let record = |ok: bool| {
        s.calls.lock().unwrap().push(Call {
            method: method.clone(),
            body: body.clone(),
            ok,
        })
    };
    if auth != format!("Bearer {BOT_TOKEN}") {
        record(false);
        return (
            StatusCode::OK,
            Json(json!({"ok": false, "error": "invalid_auth"})),
        );
    }
    match method.as_str() {
        "chat.postMessage" => {
            if s.fail_posts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                record(false);
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"ok": false, "error": "ratelimited"})),
                );
            }
            let Some(user) = body["channel"].as_str() else {
                record(false);
                return (
                    StatusCode::OK,
                    Json(json!({"ok": false, "error": "channel_not_found"})),
                );
            };
            // A DM to a user id lands in the bot's DM channel with them.
            let channel = format!("D{}", user.trim_start_matches('U'));
            let ts = format!(
                "1700000000.{:06}",
                s.next_ts.fetch_add(1, Ordering::SeqCst) + 1
            );
            s.messages
                .lock()
                .unwrap()
                .insert((channel.clone(), ts.clone()), body["blocks"].clone());
            record(true);
            (
                StatusCode::OK,
                Json(json!({"ok": true, "channel": channel, "ts": ts,
                    "message": {"type": "message", "text": body["text"], "blocks": body["blocks"], "ts": ts}})),
            )
        }
        "chat.update" => {
            let key = (
                body["channel"].as_str().unwrap_or("").to_string(),
                body["ts"].as_str().unwrap_or("").to_string(),
            );
            let mut m = s.messages.lock().unwrap();
            if !m.contains_key(&key) {
                drop(m);
                record(false);
                return (
                    StatusCode::OK,
                    Json(json!({"ok": false, "error": "message_not_found"})),
                );
            }
            m.insert(key.clone(), body["blocks"].clone());
            drop(m);
            record(true);
            (
                StatusCode::OK,
                Json(json!({"ok": true, "channel": key.0, "ts": key.1, "text": body["text"]})),
            )
        }
        "chat.postEphemeral" => {
            record(true);
            (
                StatusCode::OK,
                Json(json!({"ok": true, "message_ts": "1700000999.000001"})),
            )
        }
        _ => {
            record(false);
            (
                StatusCode::OK,
                Json(json!({"ok": false, "error": "unknown_method"})),
            )
        }
    }
}

async fn start_slack() -> (Arc<Slack>, String) {
    let s = Arc::new(Slack::default());
    let app = Router::new()
        .route("/api/{method}", post(slack_method))
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the Slack stand-in");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (s, format!("http://{addr}/api"))
}

impl Slack {
    fn calls(&self, method: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Successful `chat.postMessage` calls whose buttons carry `id`.
    fn posts_for(&self, id: &str) -> Vec<Call> {
        self.calls("chat.postMessage")
            .into_iter()
            .filter(|c| c.ok && c.body.to_string().contains(id))
            .collect()
    }

    /// The current blocks of every message about `id`: (channel, blocks).
    fn messages_for(&self, id: &str) -> Vec<(String, Value)> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| b.to_string().contains(id))
            .map(|((c, _), b)| (c.clone(), b.clone()))
            .collect()
    }
}

fn has_buttons(blocks: &Value) -> bool {
    blocks
        .as_array()
        .into_iter()
        .flatten()
        .any(|b| b["type"] == "actions")
}

// ---------------------------------------------------------------------------
// Signed interactivity requests, as Slack sends them.

fn sign(secret: &str, ts: &str, body: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("hmac key");
    m.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(m.finalize().into_bytes()))
}

/// A `block_actions` payload of a button press, in the shape of
/// `@slack/bolt`'s `BlockAction` (every required field, as Slack fills it).
fn block_actions(user: &str, action_id: &str, request_id: &str) -> Value {
    let channel = format!("D{}", user.trim_start_matches('U'));
    json!({
        "type": "block_actions",
        "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": TEAM },
        "api_app_id": "A0TWOKEY",
        "token": "legacyVerificationToken",
        "container": { "type": "message", "message_ts": "1700000000.000001", "channel_id": channel, "is_ephemeral": false },
        "trigger_id": "1234567890123.1234567890123.abcdef0123456789abcdef0123456789",
        "team": { "id": TEAM, "domain": "twokey-test" },
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": { "id": channel, "name": "directmessage" },
        "message": { "type": "message", "user": "U0TWOKEYBOT", "ts": "1700000000.000001", "text": "approval" },
        "state": { "values": {} },
        "response_url": "https://hooks.slack.com/actions/T0TWOKEY/1234567890/abcdefABCDEF",
        "actions": [{
            "type": "button",
            "block_id": "twokey_review",
            "action_id": action_id,
            "text": { "type": "plain_text", "text": "Approve", "emoji": true },
            "value": request_id,
            "action_ts": "1700000001.123456"
        }]
    })
}

fn form(payload: &Value) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

struct Press {
    status: u16,
    body: Value,
}

async fn post_raw(server: &str, body: &str, ts: Option<&str>, sig: Option<&str>) -> Press {
    let mut req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{server}/slack/interactivity"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    if let Some(ts) = ts {
        req = req.header("X-Slack-Request-Timestamp", ts);
    }
    if let Some(sig) = sig {
        req = req.header("X-Slack-Signature", sig);
    }
    let resp = req.send().await.expect("POST /slack/interactivity");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Press {
        status,
        body: serde_json::from_str(&text).unwrap_or(json!({ "raw": text })),
    }
}

/// Signs `body` now with the app's secret and POSTs it.
async fn press(server: &str, body: &str) -> Press {
    let ts = (now_ms() / 1000).to_string();
    let sig = sign(SIGNING_SECRET, &ts, body);
    post_raw(server, body, Some(&ts), Some(&sig)).await
}

// ---------------------------------------------------------------------------
// The published models (scripts/setup-slack-fixtures.sh).

fn node_modules() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slack/node_modules");
    if p.join("@slack/bolt/package.json").exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} missing: run scripts/setup-slack-fixtures.sh",
            p.display()
        );
    }
    eprintln!("skipping the Slack model checks: run scripts/setup-slack-fixtures.sh");
    None
}

/// The fields (name, optional) of `interface name` in TypeScript
/// declarations, with those of the interfaces it extends.
fn ts_fields(decls: &str, name: &str) -> Vec<(String, bool)> {
    let start = [
        format!("export interface {name} "),
        format!("export interface {name}<"),
    ]
    .iter()
    .find_map(|p| decls.find(p.as_str()))
    .unwrap_or_else(|| panic!("no interface {name} in the published model"));
    let rest = &decls[start..];
    let head = &rest[..rest.find('{').unwrap_or(0)];
    let end = rest.find("\n}").unwrap_or(rest.len());
    let mut out: Vec<(String, bool)> = Vec::new();
    for line in rest[..end].lines().skip(1) {
        let Some(f) = line.strip_prefix("    ") else {
            continue;
        };
        if f.starts_with(' ') || f.starts_with('*') || f.starts_with('/') {
            continue;
        }
        let Some(colon) = f.find(':') else { continue };
        let key = &f[..colon];
        let (key, optional) = match key.strip_suffix('?') {
            Some(k) => (k, true),
            None => (key, false),
        };
        if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !key.is_empty() {
            out.push((key.to_string(), optional));
        }
    }
    // `interface X<T extends U = V> extends A<'a'>, B`: drop the generic
    // parts, keep the parents.
    let mut plain = String::new();
    let mut depth = 0usize;
    for ch in head.chars() {
        match ch {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => plain.push(ch),
            _ => {}
        }
    }
    if let Some(ext) = plain.split(" extends ").nth(1) {
        for parent in ext.split(',') {
            let parent = parent.trim();
            if !parent.is_empty() {
                out.extend(ts_fields(decls, parent));
            }
        }
    }
    out
}

/// The nested object type of field `field` inside `interface name`.
fn ts_nested_fields(decls: &str, name: &str, field: &str) -> Vec<(String, bool)> {
    let start = decls
        .find(&format!("export interface {name}"))
        .expect("interface");
    let rest = &decls[start..];
    let open = format!("\n    {field}: {{");
    let at = rest
        .find(&open)
        .unwrap_or_else(|| panic!("{name}.{field} is not an object"));
    let body = &rest[at + open.len()..];
    let end = body.find("\n    }").unwrap_or(body.len());
    body[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("        "))
        .filter(|l| !l.starts_with(' ') && !l.starts_with('*') && !l.starts_with('/'))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .map(|k| match k.strip_suffix('?') {
            Some(k) => (k.to_string(), true),
            None => (k.to_string(), false),
        })
        .collect()
}

/// `value`'s keys are fields of the model, and every required field is there.
fn conforms(what: &str, value: &Value, fields: &[(String, bool)]) {
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object"));
    for k in obj.keys() {
        assert!(
            fields.iter().any(|(f, _)| f == k),
            "{what}: field {k:?} is not in the published model ({fields:?})"
        );
    }
    for (f, optional) in fields {
        assert!(
            *optional || obj.contains_key(f),
            "{what}: required field {f:?} of the published model is missing"
        );
    }
}

fn read_all(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(".d.ts") {
            out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

/// The payload is a `BlockAction` with a `ButtonAction`, per `@slack/bolt`.
fn check_payload_shape(nm: &Path, payload: &Value) {
    let bolt = std::fs::read_to_string(nm.join("@slack/bolt/dist/types/actions/block-action.d.ts"))
        .expect("block-action.d.ts");
    conforms(
        "block_actions payload",
        payload,
        &ts_fields(&bolt, "BlockAction"),
    );
    conforms(
        "payload.user",
        &payload["user"],
        &ts_nested_fields(&bolt, "BlockAction", "user"),
    );
    conforms(
        "payload.team",
        &payload["team"],
        &ts_nested_fields(&bolt, "BlockAction", "team"),
    );
    let button = ts_fields(&bolt, "ButtonAction");
    conforms("payload.actions[0]", &payload["actions"][0], &button);
}

/// The buttons twokey posts are Block Kit `Button`s in an `ActionsBlock`,
/// per `@slack/types`.
fn check_message_shape(nm: &Path, blocks: &Value) {
    let types = read_all(&nm.join("@slack/types/dist/block-kit"));
    let actions_block = ts_fields(&types, "ActionsBlock");
    let button = ts_fields(&types, "Button");
    let confirm = ts_fields(&types, "Confirm");
    let mut seen = 0;
    for b in blocks.as_array().into_iter().flatten() {
        if b["type"] != "actions" {
            continue;
        }
        conforms("actions block", b, &actions_block);
        for e in b["elements"].as_array().into_iter().flatten() {
            conforms("button", e, &button);
            if !e["confirm"].is_null() {
                conforms("button.confirm", &e["confirm"], &confirm);
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 2, "Approve and Deny: {blocks}");
}

/// Bolt's own verifier accepts (or refuses) what twokey does.
fn bolt_verifies(nm: &Path, body: &str, ts: &str, sig: &str) -> bool {
    let script = format!(
        "const v = require({:?}); try {{ v.verifySlackRequest({{ signingSecret: process.env.S, body: process.env.B, headers: {{ 'x-slack-signature': process.env.G, 'x-slack-request-timestamp': Number(process.env.T) }} }}); process.exit(0) }} catch (e) {{ console.error(e.message); process.exit(3) }}",
        nm.join("@slack/bolt/dist/receivers/verify-request.js").display().to_string()
    );
    let out = std::process::Command::new("node")
        .args(["-e", &script])
        .env("S", SIGNING_SECRET)
        .env("B", body)
        .env("G", sig)
        .env("T", ts)
        .output()
        .expect("run node");
    match out.status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => panic!("node failed: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

// ---------------------------------------------------------------------------
// The API of the server, as a person uses it.

/// One person at the server: the typed client, a refusal fails the test.
struct Person(twokey_testkit::Api);

impl Person {
    fn new(base: &str, token: &str) -> Person {
        Person(twokey_testkit::Api::new(base, token))
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.0
            .call(method, path, body)
            .await
            .success(path)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn create(&self, entitlement: &str) -> String {
        let req = twokey_testkit::NewRequest {
            reason: Some("slack test"),
            ticket: Some("INC-7"),
            ..twokey_testkit::NewRequest::new(entitlement, "30m")
        };
        self.0.create(&req).await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn get(&self, id: &str) -> Value {
        self.0.show(id).await.unwrap_or_else(|e| panic!("{e}"))
    }
}

fn policy(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"{PEOPLE}
# An approver without a Slack link: no Slack message.
[[identity]]
name = "dave"
groups = ["approvers"]

[[entitlement]]
name = "door"
description = "A file under grants/ exists while the grant is active"
provider = "exec"
requester_identities = ["alice"]
default_duration = "30m"
max_duration = "1h"
pending_timeout = "1h"
reason_required = false
approval = {{ count = 1, from = ["approvers"] }}

[entitlement.target]
grant = ["sh", "-c", 'mkdir -p "$T_DIR/grants" && touch "$T_DIR/grants/$TWOKEY_REQUEST_ID"']
revoke = ["sh", "-c", 'rm -f "$T_DIR/grants/$TWOKEY_REQUEST_ID"']
check = ["sh", "-c", 'test -e "$T_DIR/grants/$TWOKEY_REQUEST_ID"']
timeout = "10s"
env = {{ T_DIR = "{d}" }}

[[entitlement]]
name = "vault"
description = "Approvers confirm with a security key"
provider = "exec"
requester_identities = ["alice"]
default_duration = "30m"
max_duration = "1h"
pending_timeout = "1h"
reason_required = false
approver_mfa = true
approval = {{ count = 1, from = ["approvers"] }}

[entitlement.target]
grant = ["sh", "-c", 'mkdir -p "$T_DIR/grants" && touch "$T_DIR/grants/$TWOKEY_REQUEST_ID"']
revoke = ["sh", "-c", 'rm -f "$T_DIR/grants/$TWOKEY_REQUEST_ID"']
check = ["sh", "-c", 'test -e "$T_DIR/grants/$TWOKEY_REQUEST_ID"']
timeout = "10s"
env = {{ T_DIR = "{d}" }}
"#
    )
}

/// Waits until every Slack message about `id` shows `want` and has no
/// buttons; returns them.
async fn wait_settled(slack: &Slack, id: &str, n: usize, want: &str) -> Vec<(String, Value)> {
    wait_until(
        &format!("the {n} Slack messages of {id} to show {want:?} without buttons"),
        Duration::from_secs(30),
        || async {
            let m = slack.messages_for(id);
            if m.len() == n
                && m.iter()
                    .all(|(_, b)| !has_buttons(b) && b.to_string().contains(want))
            {
                Ok(m)
            } else {
                Err(format!("{m:?}"))
            }
        },
    )
    .await
}

async fn slack_flow(database: Option<String>) {
    let nm = node_modules();
    let (slack, api_url) = start_slack().await;
    // The first message Slack is asked for is refused (rate limit): the
    // outbox retries it.
    slack.fail_posts.store(1, Ordering::SeqCst);

    let env = TestEnv::new(database);
    std::fs::write(env.path().join("policy.toml"), policy(env.path())).expect("policy");
    let token_file = env.path().join("slack-bot-token");
    let secret_file = env.path().join("slack-signing-secret");
    std::fs::write(&token_file, format!("{BOT_TOKEN}\n")).expect("token");
    std::fs::write(&secret_file, format!("{SIGNING_SECRET}\n")).expect("secret");
    let mut cfg = std::fs::read_to_string(&env.config).expect("config");
    cfg.push_str(&format!(
        r#"
[slack]
bot_token_file = "{}"
signing_secret_file = "{}"
api_url = "{api_url}"

[[slack.link]]
user = "{ALICE}"
team = "{TEAM}"
identity = "twokey|alice"

[[slack.link]]
user = "{BOB}"
team = "{TEAM}"
identity = "twokey|bob"

[[slack.link]]
user = "{CAROL}"
identity = "twokey|carol"
"#,
        token_file.display(),
        secret_file.display()
    ));
    std::fs::write(&env.config, cfg).expect("write config");
    let alice = env.token("alice");
    let bob = env.token("bob");
    let carol = env.token("carol");
    let server = Server::start(&env, "slack", &["--backoff-ms", "200"]);
    // On PostgreSQL, a second replica on the same database: a replay must
    // be refused by either, so what was seen is in the store, not in one
    // process.
    let replica = env
        .database
        .starts_with("postgres")
        .then(|| Server::start(&env, "slack-replica", &["--backoff-ms", "200"]));
    let base = server.url.clone();
    let alice = Person::new(&base, &alice);
    let bob = Person::new(&base, &bob);
    let carol = Person::new(&base, &carol);

    // A request: each linked eligible approver gets one DM with buttons.
    let id = alice.create("door").await;
    let posts = wait_until(
        "messages to bob and carol",
        Duration::from_secs(30),
        || async {
            let p = slack.posts_for(&id);
            if p.len() >= 2 {
                Ok(p)
            } else {
                Err(format!("{p:?}"))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let posts_again = slack.posts_for(&id);
    assert_eq!(
        posts_again.len(),
        2,
        "one message per approver, the retry posted only the refused one: {posts_again:?}"
    );
    let mut to: Vec<&str> = posts
        .iter()
        .filter_map(|c| c.body["channel"].as_str())
        .collect();
    to.sort();
    assert_eq!(
        to,
        [BOB, CAROL],
        "the requester and the unlinked dave get none"
    );
    assert!(
        slack.calls("chat.postMessage").iter().any(|c| !c.ok),
        "the rate-limited first attempt happened"
    );
    for p in &posts {
        let blocks = &p.body["blocks"];
        assert!(has_buttons(blocks), "{blocks}");
        let text = blocks.to_string();
        let page = format!("/ui/requests/{id}");
        for want in ["alice", "door", "slack test", "INC-7", page.as_str()] {
            assert!(text.contains(want), "the message shows {want:?}: {text}");
        }
        let buttons: Vec<(&str, &str)> = blocks
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().into_iter().flatten())
            .map(|e| {
                (
                    e["action_id"].as_str().unwrap_or(""),
                    e["value"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            buttons,
            [
                ("twokey_approve", id.as_str()),
                ("twokey_deny", id.as_str())
            ]
        );
        if let Some(nm) = &nm {
            check_message_shape(nm, blocks);
        }
    }

    // Forged, stale, future-dated and unsigned requests: 401, nothing done.
    let approve_by_bob = form(&block_actions(BOB, "twokey_approve", &id));
    if let Some(nm) = &nm {
        check_payload_shape(nm, &block_actions(BOB, "twokey_approve", &id));
    }
    let now = now_ms() / 1000;
    let ts = now.to_string();
    let forged = sign("not-the-signing-secret-0000000000", &ts, &approve_by_bob);
    let r = post_raw(&base, &approve_by_bob, Some(&ts), Some(&forged)).await;
    assert_eq!(r.status, 401, "forged: {:?}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("does not match"),
        "{:?}",
        r.body
    );
    let stale_ts = (now - 400).to_string();
    let stale_sig = sign(SIGNING_SECRET, &stale_ts, &approve_by_bob);
    let r = post_raw(&base, &approve_by_bob, Some(&stale_ts), Some(&stale_sig)).await;
    assert_eq!(r.status, 401, "stale: {:?}", r.body);
    assert!(
        r.body["error"].as_str().unwrap_or("").contains("stale"),
        "{:?}",
        r.body
    );
    let future_ts = (now + 400).to_string();
    let future_sig = sign(SIGNING_SECRET, &future_ts, &approve_by_bob);
    let r = post_raw(&base, &approve_by_bob, Some(&future_ts), Some(&future_sig)).await;
    assert_eq!(r.status, 401, "future: {:?}", r.body);
    let r = post_raw(&base, &approve_by_bob, None, None).await;
    assert_eq!(r.status, 401, "unsigned: {:?}", r.body);
    // A body changed after signing.
    let other = form(&block_actions(BOB, "twokey_approve", "req-other"));
    let good_sig = sign(SIGNING_SECRET, &ts, &approve_by_bob);
    let r = post_raw(&base, &other, Some(&ts), Some(&good_sig)).await;
    assert_eq!(r.status, 401, "body swapped: {:?}", r.body);
    if let Some(nm) = &nm {
        // Bolt's verifier agrees with each decision.
        assert!(bolt_verifies(nm, &approve_by_bob, &ts, &good_sig));
        assert!(!bolt_verifies(nm, &approve_by_bob, &ts, &forged));
        assert!(!bolt_verifies(nm, &approve_by_bob, &stale_ts, &stale_sig));
        assert!(!bolt_verifies(nm, &other, &ts, &good_sig));
    }
    assert_eq!(support::state(&bob.get(&id).await), "pending");

    // An unlinked Slack user: answered, nothing approved.
    let r = press(&base, &form(&block_actions(EVE, "twokey_approve", &id))).await;
    assert_eq!(
        (r.status, r.body["outcome"].as_str()),
        (200, Some("unlinked")),
        "{:?}",
        r.body
    );
    assert!(slack
        .calls("chat.postEphemeral")
        .iter()
        .any(|c| c.body["user"] == EVE
            && c.body["text"].as_str().unwrap_or("").contains("not linked")));
    // bob's user id from another workspace is not bob.
    let mut other_team = block_actions(BOB, "twokey_approve", &id);
    other_team["user"]["team_id"] = json!("T0ELSEWHERE");
    other_team["team"]["id"] = json!("T0ELSEWHERE");
    let r = press(&base, &form(&other_team)).await;
    assert_eq!(r.body["outcome"].as_str(), Some("unlinked"), "{:?}", r.body);

    // The requester approving her own request from Slack: refused by the core.
    let r = press(&base, &form(&block_actions(ALICE, "twokey_approve", &id))).await;
    assert_eq!(
        (r.status, r.body["outcome"].as_str()),
        (200, Some("self_approval")),
        "{:?}",
        r.body
    );
    let v = bob.get(&id).await;
    assert_eq!(support::state(&v), "pending");
    assert_eq!(support::count_kind(&v, "review.refused"), 1, "{v}");

    // bob approves from Slack; the same signed request again is a replay.
    let ts = (now_ms() / 1000).to_string();
    let sig = sign(SIGNING_SECRET, &ts, &approve_by_bob);
    let r = post_raw(&base, &approve_by_bob, Some(&ts), Some(&sig)).await;
    assert_eq!(
        (r.status, r.body["outcome"].as_str()),
        (200, Some("approved")),
        "{:?}",
        r.body
    );
    let replay_to = replica.as_ref().map_or(base.as_str(), |r| r.url.as_str());
    let r = post_raw(replay_to, &approve_by_bob, Some(&ts), Some(&sig)).await;
    assert_eq!(r.status, 401, "replay to the other replica: {:?}", r.body);
    assert!(
        r.body["error"].as_str().unwrap_or("").contains("replay"),
        "{:?}",
        r.body
    );
    let v = bob.get(&id).await;
    assert!(["approved", "active"].contains(&support::state(&v)), "{v}");
    let approvals: Vec<&Value> = v["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "review.approved")
        .collect();
    assert_eq!(approvals.len(), 1, "{v}");
    assert_eq!(approvals[0]["actor"], "twokey|bob");
    // Every approver's message now says who did what, without buttons.
    let settled = wait_settled(&slack, &id, 2, "bob approved").await;
    assert!(
        settled
            .iter()
            .all(|(_, b)| b.to_string().contains("Approved")),
        "{settled:?}"
    );
    assert!(
        slack
            .calls("chat.update")
            .iter()
            .any(|c| c.body["channel"] == "D0CAROL"),
        "carol's message was updated too"
    );

    // approver_mfa: Slack answers with the security-key page, approves nothing.
    let vault = alice.create("vault").await;
    wait_until("vault messages", Duration::from_secs(30), || async {
        let n = slack.posts_for(&vault).len();
        if n == 2 {
            Ok(())
        } else {
            Err(format!("{n} posts"))
        }
    })
    .await;
    let r = press(&base, &form(&block_actions(BOB, "twokey_approve", &vault))).await;
    assert_eq!(
        (r.status, r.body["outcome"].as_str()),
        (200, Some("mfa_required")),
        "{:?}",
        r.body
    );
    let text = r.body["text"].as_str().unwrap_or("");
    assert!(
        text.contains(&format!(
            "{base_public}/ui/requests/{vault}",
            base_public = "http://127.0.0.1"
        )),
        "{text}"
    );
    assert!(slack
        .calls("chat.postEphemeral")
        .iter()
        .any(|c| c.body["user"] == BOB
            && c.body["text"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("/ui/requests/{vault}"))));
    let v = bob.get(&vault).await;
    assert_eq!(support::state(&v), "pending");
    assert_eq!(support::count_kind(&v, "review.approved"), 0, "{v}");

    // Other paths update the messages too: carol denies through the API.
    carol
        .call(
            reqwest::Method::POST,
            &format!("/v1/requests/{vault}/deny"),
            Some(json!({"comment": "not now"})),
        )
        .await;
    wait_settled(&slack, &vault, 2, "Denied by carol").await;

    // The requester cancels: the messages say so.
    let third = alice.create("door").await;
    wait_until("third messages", Duration::from_secs(30), || async {
        let n = slack.posts_for(&third).len();
        if n == 2 {
            Ok(())
        } else {
            Err(format!("{n} posts"))
        }
    })
    .await;
    alice
        .call(
            reqwest::Method::POST,
            &format!("/v1/requests/{third}/cancel"),
            None,
        )
        .await;
    wait_settled(&slack, &third, 2, "Cancelled").await;

    // Every refusal is in the ledger, and alerts.
    let ledger = bob
        .call(reqwest::Method::GET, "/v1/ledger?limit=1000", None)
        .await;
    let refusals: Vec<&str> = ledger
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "slack.refused")
        .filter_map(|e| e["data"]["reason"].as_str())
        .collect();
    let count = |r: &str| refusals.iter().filter(|x| **x == r).count();
    assert_eq!(
        count("signature"),
        2,
        "forged and swapped body: {refusals:?}"
    );
    assert_eq!(
        count("timestamp"),
        3,
        "stale, future, unsigned: {refusals:?}"
    );
    assert_eq!(count("replayed"), 1, "{refusals:?}");
    assert_eq!(count("unlinked_user"), 2, "{refusals:?}");
    assert!(
        !ledger.to_string().contains(SIGNING_SECRET),
        "the secret is never in the ledger"
    );
    assert!(
        !ledger.to_string().contains(BOT_TOKEN),
        "the token is never in the ledger"
    );
    let store = twokey_store::Store::open(&env.database)
        .await
        .expect("open store");
    let alerts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM alerts WHERE kind = 'slack.refused'")
            .fetch_one(store.pool())
            .await
            .expect("count alerts");
    assert_eq!(alerts, 8, "each refusal alerts");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM slack_messages")
        .fetch_one(store.pool())
        .await
        .expect("count messages");
    assert_eq!(
        rows, 6,
        "(request, approver) recorded for every posted message"
    );
    assert!(!server.log_text().contains(SIGNING_SECRET) && !server.log_text().contains(BOT_TOKEN));
    drop(replica);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_from_slack_on_sqlite() {
    slack_flow(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_from_slack_on_postgres() {
    slack_flow(Some(fresh_pg("twokey_slack").await)).await;
}

#[test]
fn a_bad_slack_config_stops_serve_with_the_setting_named() {
    let env = TestEnv::new(None);
    let mut cfg = std::fs::read_to_string(&env.config).expect("config");
    cfg.push_str("\n[slack]\nbot_token_env = \"TK_SLACK_TEST_UNSET\"\nsigning_secret = \"0123456789abcdef0123\"\n");
    std::fs::write(&env.config, cfg).expect("write");
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--config"])
        .arg(&env.config)
        .env_remove("TK_SLACK_TEST_UNSET")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("slack.bot_token_env") || err.contains("bot_token_env"),
        "{err}"
    );
    assert!(err.contains("TK_SLACK_TEST_UNSET"), "{err}");
}
