//! End to end through the webhook route: a pull request in the GitHub
//! stand-in goes plan → comment + status → approval by a second person on the
//! head commit → `twokey apply` → apply of the saved plan → result comment,
//! with each attack refused on the way and every step in the ledger.

use std::path::PathBuf;
use std::sync::Arc;

use twokey_gate::config::GateConfig;
use twokey_gate::db::GateDb;
use twokey_gate::github::RestGitHub;
use twokey_gate::testing::{Fixtures, StandIn};
use twokey_gate::webhook::sign;
use twokey_gate::{router, Gate};
use twokey_store::Store;

const REPO: &str = "acme/infra";
const SECRET: &[u8] = b"webhook-secret";

const MAIN_TF: &str = r#"
variable "env" {
  default = "prod"
}
locals {
  bucket = "twokey-${var.env}-logs"
}
output "bucket" {
  value = local.bucket
}
output "leaky" {
  value = "password = \"hunter2-in-plain\""
}
"#;

fn terraform() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/terraform/terraform");
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("terraform missing: run scripts/setup-gate-fixtures.sh");
    }
    eprintln!("skipping: terraform missing (run scripts/setup-gate-fixtures.sh)");
    None
}

struct Hook {
    url: String,
    http: reqwest::Client,
    n: u32,
}

impl Hook {
    async fn send(&mut self, event: &str, body: &[u8], secret: &[u8]) -> (u16, String, String) {
        self.n += 1;
        let id = format!("delivery-{}", self.n);
        self.send_as(&id, event, body, secret).await
    }
    async fn send_as(
        &self,
        id: &str,
        event: &str,
        body: &[u8],
        secret: &[u8],
    ) -> (u16, String, String) {
        let res = self
            .http
            .post(&self.url)
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", id)
            .header("X-Hub-Signature-256", sign(secret, body))
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("send");
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default(), id.to_string())
    }
}

async fn kinds(store: &Store) -> Vec<(String, serde_json::Value)> {
    store
        .ledger(0, 10_000)
        .await
        .expect("ledger")
        .into_iter()
        .map(|e| (e.kind, e.data))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_plan_approve_apply_with_attacks_refused() {
    let (Some(fixtures), Some(tf)) = (Fixtures::load(), terraform()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .expect("store");
    let gh = StandIn::start(fixtures).await.expect("stand-in");
    for (u, p) in [
        ("alice", "write"),
        ("bob", "write"),
        ("rita", "read"),
        ("mallory", "write"),
    ] {
        gh.set_permission(u, p);
    }
    let conf = format!(
        "[gate]\nallow = [\"{REPO}\"]\nworkdir = \"{}\"\nterraform_bin = \"{}\"\n\n[[gate.project]]\nrepo = \"{REPO}\"\nname = \"prod\"\ndir = \"envs/prod\"\n",
        dir.path().join("work").display(),
        tf.display()
    );
    let gate = Arc::new(Gate {
        config: GateConfig::parse(&conf).expect("config"),
        secret: SECRET.to_vec(),
        db: GateDb::new(store.clone()),
        github: Arc::new(RestGitHub::new(&gh.url, "test-token").expect("client")),
        checkout: Arc::new(gh.clone()),
        clock: Arc::new(|| 1_700_000_000_000),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(gate)).await;
    });
    let mut hook = Hook {
        url: format!("http://{addr}/v1/gate/github"),
        http: reqwest::Client::new(),
        n: 0,
    };

    // Forged signature.
    let head1 = gh.open(REPO, 1, "alice", &[("envs/prod/main.tf", MAIN_TF)]);
    let opened = gh.pull_request_event(REPO, 1, "opened", "alice");
    let (st, _, _) = hook.send("pull_request", &opened, b"wrong-secret").await;
    assert_eq!(st, 401);
    assert!(kinds(&store)
        .await
        .iter()
        .any(|(k, d)| k == "gate.refused" && d["reason"] == "signature"));

    // Repository outside the allow-list: ignored, nothing planned.
    let (st, text, _) = hook
        .send(
            "pull_request",
            &String::from_utf8_lossy(&opened)
                .replace(REPO, "evil/infra")
                .into_bytes(),
            SECRET,
        )
        .await;
    assert_eq!(st, 202, "{text}");

    // Opened: autoplan, redacted comment, status.
    let (st, text, id) = hook.send("pull_request", &opened, SECRET).await;
    assert_eq!((st, text.as_str()), (200, "planned 1 project(s)"));
    let comments = gh.comments(REPO, 1);
    let plan = comments
        .iter()
        .find(|c| c.contains("twokey plan `prod`"))
        .expect("plan comment");
    assert!(
        plan.contains("succeeded") && plan.contains("twokey-prod-logs"),
        "{plan}"
    );
    assert!(
        !plan.contains("hunter2-in-plain") && plan.contains("[REDACTED]"),
        "{plan}"
    );
    assert!(gh
        .statuses(&head1)
        .contains(&("twokey/plan".into(), "success".into())));

    // Replayed delivery.
    let (st, text, _) = hook.send_as(&id, "pull_request", &opened, SECRET).await;
    assert_eq!((st, text.as_str()), (200, "duplicate delivery ignored"));

    let apply = |who: &str| gh.comment_event(REPO, 1, who, "twokey apply");
    let last = |gh: &StandIn| gh.comments(REPO, 1).last().cloned().unwrap_or_default();

    // Apply by a read-only user.
    hook.send("issue_comment", &apply("rita"), SECRET).await;
    assert!(last(&gh).contains("commands need write"), "{}", last(&gh));

    // Approval by the author, and by a reader.
    gh.review(REPO, 1, "alice", "APPROVED");
    gh.review(REPO, 1, "rita", "APPROVED");
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "apply refused");
    let c = last(&gh);
    assert!(
        c.contains("@alice ignored: they are the author")
            && c.contains("@rita ignored: permission Read"),
        "{c}"
    );

    // bob approves, then mallory pushes: bob's approval is stale, mallory's
    // own approval doesn't count.
    gh.review(REPO, 1, "bob", "APPROVED");
    let head2 = gh.push(
        REPO,
        1,
        &[(
            "envs/prod/main.tf",
            &MAIN_TF.replace("\"prod\"", "\"prod2\""),
        )],
    );
    let (st, _, _) = hook
        .send(
            "pull_request",
            &gh.pull_request_event(REPO, 1, "synchronize", "mallory"),
            SECRET,
        )
        .await;
    assert_eq!(st, 200);
    gh.review(REPO, 1, "mallory", "APPROVED");
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "apply refused");
    let c = last(&gh);
    assert!(c.contains("@bob ignored: it is for older commit"), "{c}");
    assert!(
        c.contains("@mallory ignored: they pushed the head commit"),
        "{c}"
    );

    // Changes requested outstanding.
    gh.review(REPO, 1, "bob", "APPROVED");
    gh.review(REPO, 1, "carol", "CHANGES_REQUESTED");
    gh.set_permission("carol", "write");
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "apply refused");
    assert!(last(&gh).contains("@carol has requested changes"));
    gh.review(REPO, 1, "carol", "APPROVED");

    // Behind its base.
    gh.set_behind(REPO, 1, true);
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "apply refused");
    gh.set_behind(REPO, 1, false);

    // Now: bob and carol approved head2, pushed by mallory, authored by alice.
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "applied 1 project(s)");
    let c = last(&gh);
    assert!(
        c.contains("twokey apply `prod`")
            && c.contains("succeeded")
            && c.contains("Apply complete"),
        "{c}"
    );
    assert!(c.contains("twokey-prod2-logs"), "{c}");

    // A second apply finds no unapplied plan.
    let (_, text, _) = hook.send("issue_comment", &apply("alice"), SECRET).await;
    assert_eq!(text, "no plan");

    let ledger = kinds(&store).await;
    let evidence = ledger
        .iter()
        .find(|(k, _)| k == "gate.apply_evidence")
        .expect("evidence")
        .1
        .clone();
    assert_eq!(evidence["head_sha"], head2.as_str());
    assert_eq!(evidence["last_pusher"], "mallory");
    let approvers: Vec<&str> = evidence["approvals"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["reviewer"].as_str())
        .collect();
    assert!(approvers.contains(&"bob"), "{evidence}");
    assert!(evidence["approvals"]
        .as_array()
        .expect("a")
        .iter()
        .all(|a| a["commit"] == head2.as_str()));
    for kind in ["gate.plan", "gate.apply_result"] {
        assert!(ledger.iter().any(|(k, _)| k == kind), "{kind}");
    }
    let refusals = ledger.iter().filter(|(k, _)| k == "gate.refused").count();
    assert!(refusals >= 6, "{refusals}");

    // Close: locks released.
    hook.send(
        "pull_request",
        &gh.pull_request_event(REPO, 1, "closed", "alice"),
        SECRET,
    )
    .await;
    let db = GateDb::new(store.clone());
    assert_eq!(
        db.lock_holder(REPO, "prod", "default").await.expect("lock"),
        None
    );
}
