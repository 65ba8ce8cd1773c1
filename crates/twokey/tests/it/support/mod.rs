//! Helpers for tests that run real `twokey` processes: a temp dir with a
//! policy (exec provider on files under the dir) and a `twokey.toml`, servers
//! that are killed when dropped, and a small JSON API client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use twokey_testkit::policy::PEOPLE;

use serde_json::Value;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_twokey");

/// The entitlement every test requests.
pub(crate) const ENT: &str = "door";

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A test's directory: policy, config, grant files and the provider call log.
pub(crate) struct TestEnv {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub database: String,
}

impl TestEnv {
    /// Writes `policy.toml` and `twokey.toml` for `database` (a URL, or
    /// `None` for a SQLite file in the dir).
    pub(crate) fn new(database: Option<String>) -> TestEnv {
        let dir = tempfile::tempdir().expect("create temp dir");
        let d = dir.path().display().to_string();
        assert!(
            !d.contains('\'') && !d.contains('"'),
            "temp dir path {d:?} has quotes"
        );
        let database = database
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("twokey.db").display()));
        // The exec provider: a grant is a file grants/<request id>; every
        // successful grant or revoke appends a line to calls.log; revoke fails
        // while the file `fail-revoke` exists.
        let policy = format!(
            r#"{PEOPLE}
[[entitlement]]
name = "{ENT}"
description = "A file under grants/ exists while the grant is active"
provider = "exec"
requester_identities = ["alice"]
default_duration = "5s"
max_duration = "1h"
pending_timeout = "1h"
reason_required = false
approval = {{ count = 1, from = ["approvers"] }}

[entitlement.target]
grant = ["sh", "-c", 'mkdir -p "$T_DIR/grants" && touch "$T_DIR/grants/$TWOKEY_REQUEST_ID" && echo "grant $TWOKEY_REQUEST_ID" >> "$T_DIR/calls.log"']
revoke = ["sh", "-c", 'if [ -e "$T_DIR/fail-revoke" ]; then echo "revoke-failed $TWOKEY_REQUEST_ID" >> "$T_DIR/calls.log"; echo "the test says no (fail-revoke exists)" >&2; exit 1; fi; rm -f "$T_DIR/grants/$TWOKEY_REQUEST_ID" && echo "revoke $TWOKEY_REQUEST_ID" >> "$T_DIR/calls.log"']
check = ["sh", "-c", 'test -e "$T_DIR/grants/$TWOKEY_REQUEST_ID"']
timeout = "10s"
env = {{ T_DIR = "{d}" }}
"#
        );
        std::fs::create_dir_all(dir.path().join("grants")).expect("create grants dir");
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(&policy_path, policy).expect("write policy");
        let config = dir.path().join("twokey.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndatabase = \"{database}\"\npolicy = \"{}\"\npublic_url = \"http://127.0.0.1\"\n",
                policy_path.display()
            ),
        )
        .expect("write config");
        TestEnv {
            dir,
            config,
            database,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn grant_file(&self, id: &str) -> PathBuf {
        self.path().join("grants").join(id)
    }

    /// `twokey token issue` for an identity of the policy.
    pub(crate) fn token(&self, identity: &str) -> String {
        let out = Command::new(BIN)
            .args(["token", "issue", "--config"])
            .arg(&self.config)
            .args(["--identity", identity])
            .env("NO_COLOR", "1")
            .output()
            .expect("run twokey token issue");
        assert!(
            out.status.success(),
            "twokey token issue --identity {identity} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tok = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(tok.starts_with("tk_"), "unexpected token output {tok:?}");
        tok
    }

    /// Lines of calls.log as (action, request id).
    pub(crate) fn calls(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.path().join("calls.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_string(), b.trim().to_string()))
            .collect()
    }

    /// How many calls.log lines have this action and id.
    pub(crate) fn count_calls(&self, action: &str, id: &str) -> usize {
        self.calls()
            .iter()
            .filter(|(a, i)| a == action && i == id)
            .count()
    }
}

/// A running `twokey serve`, killed (SIGKILL) and reaped when dropped.
pub(crate) struct Server {
    pub name: String,
    child: Option<Child>,
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `twokey serve --config` on a free loopback port and waits until it
    /// listens.
    pub(crate) fn start(env: &TestEnv, name: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&env.config)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env("TWOKEY_LOG", "info,sqlx=warn,tower_http=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twokey serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = twokey_testkit::listening_address(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                if let Ok(mut l) = log2.lock() {
                    l.push(line);
                }
            }
        });
        let mut server = Server {
            name: name.to_string(),
            child: Some(child),
            url: String::new(),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => server.url = format!("http://{addr}"),
            Err(_) => panic!(
                "server {name} did not report `listening on` within 60 s; its log:\n{}",
                server.log_text()
            ),
        }
        server
    }

    /// The server's stderr so far.
    pub(crate) fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// `kill -9` and reap.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "----- last lines of server {} ({}) -----\n{}\n-----",
                self.name,
                self.url,
                tail.join("\n")
            );
        }
    }
}

/// The typed API client ([`twokey_testkit::Api`]) for one identity on one
/// server, on this suite's entitlement; a refusal fails the test.
#[derive(Clone)]
pub(crate) struct Api {
    inner: twokey_testkit::Api,
}

impl Api {
    pub(crate) fn new(base: &str, token: &str) -> Api {
        Api {
            inner: twokey_testkit::Api::new(base, token),
        }
    }

    /// Creates a request; returns its id.
    pub(crate) async fn create(&self, duration: &str) -> String {
        let req = twokey_testkit::NewRequest {
            reason: Some("process test"),
            ..twokey_testkit::NewRequest::new(ENT, duration)
        };
        self.inner
            .create(&req)
            .await
            .unwrap_or_else(|e| panic!("create request at {}: {e}", self.inner.base()))
    }

    pub(crate) async fn approve(&self, id: &str) -> Value {
        self.inner
            .approve(id)
            .await
            .success("approve")
            .unwrap_or_else(|e| panic!("{e} at {}", self.inner.base()))
    }

    pub(crate) async fn get(&self, id: &str) -> Value {
        self.inner
            .show(id)
            .await
            .unwrap_or_else(|e| panic!("{e} at {}", self.inner.base()))
    }
}

/// The request's state.
pub(crate) fn state(v: &Value) -> &str {
    v["state"].as_str().unwrap_or("?")
}

/// How many timeline entries of this kind a request shows.
pub(crate) fn count_kind(v: &Value, kind: &str) -> usize {
    v["timeline"]
        .as_array()
        .map(|t| t.iter().filter(|e| e["kind"] == kind).count())
        .unwrap_or(0)
}

pub(crate) use twokey_testkit::eventually as wait_until;
pub(crate) use twokey_testkit::timeline_kinds as kinds;

/// GETs every request (concurrently).
pub(crate) async fn get_all(api: &Api, ids: &[String]) -> Vec<Value> {
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let api = api.clone();
            let id = id.clone();
            tokio::spawn(async move { api.get(&id).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("get task"));
    }
    out
}

/// A fresh PostgreSQL database URL.
pub(crate) async fn fresh_pg(prefix: &str) -> String {
    twokey_store::testing::fresh_postgres(prefix)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for this test ({}): {e}",
                twokey_store::testing::pg_server_url()
            )
        })
}
