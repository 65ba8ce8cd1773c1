//! A ledger write the gate cannot make is never ignored: on SQLite and
//! PostgreSQL, with a trigger that makes ledger inserts fail (as a full disk
//! or a lost database would), the delivery answers 503 and stays unfinished,
//! a plan whose apply result could not be written stays `applying`, and the
//! recovery pass resolves it (against Terraform state) only once its own
//! alerting entry can be written; the redelivery then finishes the work
//! once, and a refusal that could not be recorded is recorded on redelivery.

use crate::terraform::terraform;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use twokey_gate::config::GateConfig;
use twokey_gate::db::GateDb;
use twokey_gate::gate::ApiCheckout;
use twokey_gate::github::{GitHub, RestGitHub};
use twokey_gate::testing::{Fixtures, StandIn};
use twokey_gate::webhook::sign;
use twokey_gate::{router, Gate};
use twokey_store::{Backend, Store};

const REPO: &str = "acme/infra";
const SECRET: &[u8] = b"webhook-secret";

/// A trigger that makes ledger inserts of kinds `LIKE` the pattern in table
/// `ledger_down_ctl` fail (empty pattern: none fail). Switched with data,
/// not schema changes.
async fn ledger_trigger(store: &Store) {
    let pool = store.pool();
    let mut stmts: Vec<&str> = vec![
        "CREATE TABLE ledger_down_ctl (pattern TEXT NOT NULL)",
        "INSERT INTO ledger_down_ctl (pattern) VALUES ('')",
    ];
    if store.backend() == Backend::Sqlite {
        stmts.push("CREATE TRIGGER ledger_down BEFORE INSERT ON ledger WHEN NEW.kind LIKE (SELECT pattern FROM ledger_down_ctl) BEGIN SELECT RAISE(ABORT, 'ledger unavailable'); END;");
    } else {
        stmts.push("CREATE FUNCTION ledger_down() RETURNS trigger AS $$ BEGIN IF NEW.kind LIKE (SELECT pattern FROM ledger_down_ctl) THEN RAISE EXCEPTION 'ledger unavailable'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql");
        stmts.push("CREATE TRIGGER ledger_down BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_down()");
    }
    for s in stmts {
        sqlx::query(s).execute(pool).await.expect("trigger");
    }
}

/// Makes ledger inserts of kinds `LIKE pattern` fail until [`ledger_up`].
async fn ledger_down(store: &Store, pattern: &str) {
    sqlx::query("UPDATE ledger_down_ctl SET pattern = $1")
        .bind(pattern)
        .execute(store.pool())
        .await
        .expect("ledger down");
}

async fn ledger_up(store: &Store) {
    ledger_down(store, "").await;
}

async fn send(url: &str, id: &str, event: &str, body: &[u8]) -> (u16, String) {
    twokey_gate::testing::deliver(
        &reqwest::Client::new(),
        url,
        event,
        id,
        &sign(SECRET, body),
        body,
    )
    .await
    .expect("send")
}

fn tf(state: &Path) -> String {
    format!(
        "terraform {{\n  backend \"local\" {{\n    path = \"{}\"\n  }}\n}}\noutput \"v\" {{\n  value = \"three\"\n}}\n",
        state.display()
    )
}

async fn count(store: &Store, kind: &str) -> usize {
    store
        .ledger(0, 100_000)
        .await
        .expect("ledger")
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_evidence_leaves_the_work_unfinished_until_it_is_written() {
    let (Some(_), Some(terraform)) = (Fixtures::load(), terraform()) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(tmp.path(), "tk_gate_evidence").await {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&url).await.expect("store");
        let gh = StandIn::start(Fixtures::load().expect("fixtures"))
            .await
            .expect("stand-in");
        gh.require_token("test-token");
        for (u, p) in [("alice", "write"), ("bob", "write"), ("rita", "read")] {
            gh.set_permission(u, p);
        }
        let conf = format!(
            "[gate]\nallow = [\"{REPO}\"]\nworkdir = \"{}\"\nterraform_bin = \"{}\"\n\n[[gate.project]]\nrepo = \"{REPO}\"\nname = \"c\"\ndir = \"envs/c\"\n",
            dir.path().join("work").display(),
            terraform.display()
        );
        let github: Arc<dyn GitHub> =
            Arc::new(RestGitHub::new(&gh.url, "test-token").expect("client"));
        let mut gate = Gate::new(
            GateConfig::parse(&conf).expect("config"),
            SECRET.to_vec(),
            GateDb::new(store.clone()),
            github.clone(),
            Arc::new(ApiCheckout {
                github,
                max_bytes: 10 << 20,
            }),
        );
        gate.answer_within = Duration::from_secs(300);
        gate.retry_backoff = Duration::from_millis(5);
        let gate = Arc::new(gate);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let hook = format!(
            "http://{}/v1/gate/github",
            listener.local_addr().expect("addr")
        );
        let app = router(gate.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        ledger_trigger(&store).await;
        let db = GateDb::new(store.clone());
        let status = || async { db.plans(REPO, 3).await.expect("plans")[0].status.as_str() };

        let state = dir.path().join("c.tfstate");
        gh.open(REPO, 3, "alice", &[("envs/c/main.tf", &tf(&state))]);
        let opened = gh.pull_request_event(REPO, 3, "opened", "alice");
        assert_eq!(
            send(&hook, "open-3", "pull_request", &opened).await,
            (200, "planned 1 project(s)".into())
        );
        gh.review(REPO, 3, "bob", "APPROVED");

        // The apply result cannot be written: 503, the plan stays applying
        // (never `applied` without its result), the delivery unfinished.
        ledger_down(&store, "gate.apply_result").await;
        let apply = gh.comment_event(REPO, 3, "alice", "twokey apply");
        let (st, text) = send(&hook, "apply-3", "issue_comment", &apply).await;
        assert_eq!(st, 503, "{url}: {text}");
        assert!(text.contains("could not be written"), "{text}");
        assert_eq!(status().await, "applying");
        assert_eq!(count(&store, "gate.apply_result").await, 0);
        ledger_up(&store).await;

        // The whole ledger is down: recovery cannot record its outcome, so
        // the plan stays applying and nothing is alerted yet.
        ledger_down(&store, "%").await;
        let pass = gate.background_once().await;
        assert_eq!(pass.recovered.len(), 1, "{pass:?}");
        assert_eq!(pass.recovered[0].status, None, "{pass:?}");
        assert!(pass.unfinished.is_empty(), "{pass:?}");
        assert_eq!(status().await, "applying");
        // A refusal that cannot be recorded leaves its delivery unfinished.
        let by_reader = gh.comment_event(REPO, 3, "rita", "twokey apply");
        let (st, _) = send(&hook, "reader-3", "issue_comment", &by_reader).await;
        assert_eq!(st, 503);
        ledger_up(&store).await;

        // Ledger back: the apply is resolved from Terraform state (its
        // output is there), alerted, and the unfinished deliveries alerted.
        let pass = gate.background_once().await;
        assert_eq!(pass.recovered.len(), 1, "{pass:?}");
        assert_eq!(pass.recovered[0].status.as_deref(), Some("applied"));
        assert_eq!(pass.recovered[0].how, "terraform_in_sync");
        assert_eq!(status().await, "applied");
        let mut unfinished = pass.unfinished.clone();
        unfinished.sort();
        assert_eq!(unfinished, ["apply-3", "reader-3"]);
        assert_eq!(count(&store, "gate.apply_recovered").await, 1);
        // Redelivered: finished once, no second apply, refusal recorded.
        assert_eq!(
            send(&hook, "apply-3", "issue_comment", &apply).await,
            (
                200,
                "1 project(s) applied earlier by this delivery; nothing applied twice".into()
            )
        );
        assert_eq!(count(&store, "gate.apply_evidence").await, 1);
        let refused = count(&store, "gate.refused").await;
        let (st, _) = send(&hook, "reader-3", "issue_comment", &by_reader).await;
        assert_eq!(st, 200);
        assert_eq!(count(&store, "gate.refused").await, refused + 1);
        assert!(gate.background_once().await.unfinished.is_empty());
    }
}
