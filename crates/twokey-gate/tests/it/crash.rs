//! No dropped evidence across a real kill -9: the gate runs in a child
//! process (this test binary re-run as `crash::gate_child_process`) on SQLite and
//! PostgreSQL, with real Terraform 1.0.3, and is killed with SIGKILL at a
//! named step (the `crash-points` test hook stops it there). A fresh process
//! then resolves what the dead one left: an apply that ran but whose result
//! was never written is re-checked against Terraform state and marked
//! applied (alerting ledger entry, no second apply); an apply claimed but
//! never started goes back to `planned` and the redelivered comment applies
//! it once; a plan delivery that finished its work but was not marked done
//! is redelivered without planning twice.

use crate::terraform::terraform;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use twokey_gate::config::GateConfig;
use twokey_gate::db::GateDb;
use twokey_gate::gate::ApiCheckout;
use twokey_gate::github::{GitHub, RestGitHub};
use twokey_gate::testing::{Fixtures, StandIn};
use twokey_gate::webhook::sign;
use twokey_gate::{router, Gate};
use twokey_ledger::LedgerEntry;
use twokey_store::Store;

const REPO: &str = "acme/infra";
const SECRET: &[u8] = b"webhook-secret";
const CHILD: &str = "TWOKEY_GATE_CHILD";

/// The child: a gate on the store, GitHub stand-in and config in `$TWOKEY_GATE_CHILD`
/// (JSON), serving the webhook route and running the background pass,
/// until it is killed. Its port goes to `port_file`.
#[test]
#[ignore = "the child process of the crash tests, started by them"]
fn gate_child_process() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).expect("child spec");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let s = |k: &str| spec[k].as_str().expect("spec field").to_string();
        let store = Store::open(&s("db")).await.expect("store");
        let github: Arc<dyn GitHub> =
            Arc::new(RestGitHub::new(&s("github"), "test-token").expect("client"));
        let mut gate = Gate::new(
            GateConfig::parse(&s("config")).expect("config"),
            SECRET.to_vec(),
            GateDb::new(store),
            github.clone(),
            Arc::new(ApiCheckout {
                github,
                max_bytes: 10 << 20,
            }),
        )
        .with_node("child");
        gate.answer_within = Duration::from_secs(300);
        gate.lease = Duration::from_millis(900);
        gate.background_every = Duration::from_millis(100);
        gate.retry_backoff = Duration::from_millis(20);
        let gate = Arc::new(gate);
        let (_stop, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(gate.clone().run_background(rx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::fs::write(s("port_file"), port.to_string()).expect("port file");
        axum::serve(listener, router(gate)).await.expect("serve");
    });
}

/// One run of the child, killed with SIGKILL on drop.
struct GateProcess {
    child: Child,
    url: String,
    mark: PathBuf,
}

impl Drop for GateProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl GateProcess {
    /// SIGKILL (`Child::kill` on Unix), then reap it.
    fn kill9(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("kill: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("wait: {e}");
        }
    }

    /// Waits until the child stopped at its crash point.
    async fn wait_crash_point(&self, step: &str) {
        let mark = self.mark.clone();
        wait_until(&format!("the crash point {step}"), || {
            let m = mark.clone();
            async move {
                std::fs::read_to_string(&m)
                    .map(|s| s == step)
                    .unwrap_or(false)
            }
        })
        .await;
    }
}

struct World {
    dir: tempfile::TempDir,
    gh: StandIn,
    store: Store,
    url: String,
    config: String,
    runs: u32,
    http: reqwest::Client,
}

impl World {
    /// Starts a gate process; with `crash_at`, it stops at that step.
    async fn start(&mut self, crash_at: Option<&str>) -> GateProcess {
        self.runs += 1;
        let port_file = self.dir.path().join(format!("port-{}", self.runs));
        let mark = self.dir.path().join(format!("mark-{}", self.runs));
        let log = std::fs::File::create(self.dir.path().join(format!("child-{}.log", self.runs)))
            .expect("log");
        let spec = json!({ "db": self.url, "github": self.gh.url, "config": self.config, "port_file": port_file });
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([
            "--exact",
            "crash::gate_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, spec.to_string())
        .env("TWOKEY_GATE_CRASH_MARK", &mark)
        .env_remove("TWOKEY_GATE_CRASH_AT")
        .stdout(Stdio::null())
        .stderr(log);
        if let Some(step) = crash_at {
            cmd.env("TWOKEY_GATE_CRASH_AT", step);
        }
        let child = cmd.spawn().expect("start the gate process");
        let pf = port_file.clone();
        wait_until("the gate process to listen", || {
            let pf = pf.clone();
            async move { std::fs::read_to_string(&pf).is_ok_and(|p| !p.is_empty()) }
        })
        .await;
        let port = std::fs::read_to_string(&port_file).expect("port");
        GateProcess {
            child,
            url: format!("http://127.0.0.1:{port}/v1/gate/github"),
            mark,
        }
    }

    /// Posts a signed delivery; `None` when the process died before answering.
    async fn send(
        &self,
        gate: &GateProcess,
        id: &str,
        event: &str,
        body: &[u8],
    ) -> Option<(u16, String)> {
        send(&self.http, &gate.url, id, event, body).await
    }

    /// Posts a delivery the process will be killed in the middle of.
    fn send_in_background(&self, gate: &GateProcess, id: &str, event: &str, body: Vec<u8>) {
        let (http, url, id, event) = (
            self.http.clone(),
            gate.url.clone(),
            id.to_string(),
            event.to_string(),
        );
        tokio::spawn(async move { send(&http, &url, &id, &event, &body).await });
    }

    async fn ledger(&self) -> Vec<LedgerEntry> {
        self.store.ledger(0, 100_000).await.expect("ledger")
    }

    async fn count(&self, kind: &str, project: &str) -> usize {
        self.ledger()
            .await
            .iter()
            .filter(|e| e.kind == kind && e.data["project"] == project)
            .count()
    }

    async fn plan_status(&self, pull: u64, project: &str) -> String {
        GateDb::new(self.store.clone())
            .plans(REPO, pull)
            .await
            .expect("plans")
            .into_iter()
            .find(|p| p.project == project)
            .map(|p| p.status.as_str().to_string())
            .unwrap_or_default()
    }

    /// Waits for a ledger entry of `kind` whose data has `key == value`.
    async fn wait_entry(&self, kind: &str, key: &str, value: &str) -> LedgerEntry {
        twokey_testkit::eventually(
            &format!("a {kind} entry with {key} = {value}"),
            Duration::from_secs(30),
            || async {
                self.ledger()
                    .await
                    .into_iter()
                    .find(|e| e.kind == kind && e.data[key] == value)
                    .ok_or_else(|| "not in the ledger yet".to_string())
            },
        )
        .await
    }
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    event: &str,
    body: &[u8],
) -> Option<(u16, String)> {
    twokey_gate::testing::deliver(http, url, event, id, &sign(SECRET, body), body)
        .await
        .ok()
}

async fn wait_until<F, Fut>(what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    twokey_testkit::eventually(what, Duration::from_secs(30), || {
        let done = f();
        async move {
            if done.await {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        }
    })
    .await
}

/// An outputs-only configuration with its state at `state` (outside the
/// checkout, like a remote backend).
fn tf(state: &Path, v: &str) -> String {
    format!(
        "terraform {{\n  backend \"local\" {{\n    path = \"{}\"\n  }}\n}}\noutput \"v\" {{\n  value = \"{v}\"\n}}\n",
        state.display()
    )
}

async fn world(prefix: &str) -> Option<Vec<World>> {
    let (Some(_), Some(tf)) = (Fixtures::load(), terraform()) else {
        return None;
    };
    let mut out = Vec::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(tmp.path(), prefix).await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&url).await.expect("store");
        let fixtures = Fixtures::load()?;
        let gh = StandIn::start(fixtures).await.expect("stand-in");
        gh.require_token("test-token");
        for u in ["alice", "bob"] {
            gh.set_permission(u, "write");
        }
        let mut config = format!(
            "[gate]\nallow = [\"{REPO}\"]\nworkdir = \"{}\"\nterraform_bin = \"{}\"\n",
            dir.path().join("work").display(),
            tf.display()
        );
        for p in ["a", "b"] {
            config.push_str(&format!(
                "\n[[gate.project]]\nrepo = \"{REPO}\"\nname = \"{p}\"\ndir = \"envs/{p}\"\n"
            ));
        }
        out.push(World {
            dir,
            gh,
            store,
            url: url.clone(),
            config,
            runs: 0,
            http: reqwest::Client::new(),
        });
    }
    // Keep the SQLite file's directory alive as long as the worlds.
    std::mem::forget(tmp);
    Some(out)
}

fn state_output(state: &Path) -> Option<String> {
    let text = std::fs::read_to_string(state).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["outputs"]["v"]["value"].as_str().map(String::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_after_terraform_ran_is_resolved_from_terraform_state_once() {
    let Some(worlds) = world("tk_gate_crash_ran").await else {
        return;
    };
    for mut w in worlds {
        let state = w.dir.path().join("a.tfstate");
        let head =
            w.gh.open(REPO, 1, "alice", &[("envs/a/main.tf", &tf(&state, "one"))]);
        let gate = w.start(None).await;
        let opened = w.gh.pull_request_event(REPO, 1, "opened", "alice");
        let r = w.send(&gate, "open-1", "pull_request", &opened).await;
        assert_eq!(r, Some((200, "planned 1 project(s)".into())), "{}", w.url);
        drop(gate);
        w.gh.review(REPO, 1, "bob", "APPROVED");

        // Terraform applied; the process dies before the result is written.
        let gate = w.start(Some("apply:ran")).await;
        let apply = w.gh.comment_event(REPO, 1, "alice", "twokey apply");
        w.send_in_background(&gate, "apply-1", "issue_comment", apply.clone());
        gate.wait_crash_point("apply:ran").await;
        drop(gate); // kill -9
        assert_eq!(
            state_output(&state).as_deref(),
            Some("one"),
            "terraform ran"
        );
        assert_eq!(w.plan_status(1, "a").await, "applying");
        assert_eq!(w.count("gate.apply_result", "a").await, 0);

        // A new process: once the dead claim lapses, the plan is re-checked
        // against Terraform state (no changes left) and marked applied, with
        // an alerting ledger entry; the unfinished delivery is alerted on.
        let gate = w.start(None).await;
        let e = w.wait_entry("gate.apply_recovered", "project", "a").await;
        assert_eq!(e.data["resolved"], "applied", "{}", e.data);
        assert_eq!(e.data["how"], "terraform_in_sync", "{}", e.data);
        assert_eq!(e.data["head_sha"], head.as_str());
        let unfinished = w
            .wait_entry("gate.delivery_unfinished", "delivery", "apply-1")
            .await;
        assert_eq!(unfinished.data["status"], "working");
        let alerts = w
            .store
            .due_alerts(i64::MAX, 100)
            .await
            .expect("outbox")
            .into_iter()
            .map(|a| a.entry.kind)
            .collect::<Vec<_>>();
        assert!(
            alerts.contains(&"gate.apply_recovered".to_string()),
            "{alerts:?}"
        );
        assert!(
            alerts.contains(&"gate.delivery_unfinished".to_string()),
            "{alerts:?}"
        );
        wait_until("the plan marked applied", || async {
            w.plan_status(1, "a").await == "applied"
        })
        .await;
        assert!(w
            .gh
            .comments(REPO, 1)
            .iter()
            .any(|c| c.contains("was interrupted; resolved as **applied**")));

        // GitHub redelivers the comment: it is finished without applying twice.
        let r = w.send(&gate, "apply-1", "issue_comment", &apply).await;
        assert_eq!(
            r,
            Some((
                200,
                "1 project(s) applied earlier by this delivery; nothing applied twice".into()
            ))
        );
        assert_eq!(
            w.count("gate.apply_evidence", "a").await,
            1,
            "applied twice"
        );
        let r = w.send(&gate, "apply-1", "issue_comment", &apply).await;
        assert_eq!(r, Some((200, "duplicate delivery ignored".into())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_killed_before_they_finished_are_redelivered_and_done_once() {
    let Some(worlds) = world("tk_gate_crash_claimed").await else {
        return;
    };
    for mut w in worlds {
        let state = w.dir.path().join("b.tfstate");
        w.gh.open(REPO, 2, "alice", &[("envs/b/main.tf", &tf(&state, "two"))]);

        // The plan is made and recorded; the process dies before the
        // delivery is marked done. The redelivery does not plan again.
        let gate = w.start(Some("delivery:worked")).await;
        let opened = w.gh.pull_request_event(REPO, 2, "opened", "alice");
        w.send_in_background(&gate, "open-2", "pull_request", opened.clone());
        gate.wait_crash_point("delivery:worked").await;
        drop(gate); // kill -9
        assert_eq!(w.count("gate.plan", "b").await, 1);

        // Next run dies after claiming the plan for apply, before evidence.
        let gate = w.start(Some("apply:claimed")).await;
        w.wait_entry("gate.delivery_unfinished", "delivery", "open-2")
            .await;
        let r = w.send(&gate, "open-2", "pull_request", &opened).await;
        assert_eq!(
            r,
            Some((
                200,
                "planned 0 project(s); 1 planned earlier by this delivery".into()
            )),
            "{}",
            w.url
        );
        assert_eq!(w.count("gate.plan", "b").await, 1, "planned twice");
        w.gh.review(REPO, 2, "bob", "APPROVED");
        let apply = w.gh.comment_event(REPO, 2, "alice", "twokey apply");
        w.send_in_background(&gate, "apply-2", "issue_comment", apply.clone());
        gate.wait_crash_point("apply:claimed").await;
        drop(gate); // kill -9
        assert_eq!(w.plan_status(2, "b").await, "applying");
        assert_eq!(state_output(&state), None, "nothing applied yet");

        // A new process: no evidence, so Terraform never ran: back to
        // planned (alerted); the redelivered comment applies it once.
        let gate = w.start(None).await;
        let e = w.wait_entry("gate.apply_recovered", "project", "b").await;
        assert_eq!(
            (e.data["resolved"].as_str(), e.data["how"].as_str()),
            (Some("planned"), Some("not_started"))
        );
        w.wait_entry("gate.delivery_unfinished", "delivery", "apply-2")
            .await;
        let r = w.send(&gate, "apply-2", "issue_comment", &apply).await;
        assert_eq!(r, Some((200, "applied 1 project(s)".into())));
        assert_eq!(state_output(&state).as_deref(), Some("two"));
        assert_eq!(w.plan_status(2, "b").await, "applied");
        assert_eq!(w.count("gate.apply_evidence", "b").await, 1);
        assert_eq!(w.count("gate.apply_result", "b").await, 1);
        assert!(w
            .ledger()
            .await
            .iter()
            .any(|e| e.kind == "gate.delivery_resumed" && e.data["delivery"] == "apply-2"));
        let r = w.send(&gate, "apply-2", "issue_comment", &apply).await;
        assert_eq!(r, Some((200, "duplicate delivery ignored".into())));
    }
}
