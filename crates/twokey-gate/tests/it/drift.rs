//! The scheduled drift check: a plan of each project's default branch with
//! real Terraform; exit 2 (reality differs from the code) is an alerting
//! ledger entry; two replicas on one store never run the same check at once
//! (a lease), and a crashed holder's lease is taken over once it expires.

use crate::terraform::terraform;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use twokey_gate::config::GateConfig;
use twokey_gate::db::GateDb;
use twokey_gate::gate::{ApiCheckout, DriftOutcome};
use twokey_gate::github::{GitHub, RestGitHub};
use twokey_gate::testing::{Fixtures, StandIn};
use twokey_gate::Gate;
use twokey_store::Store;

const REPO: &str = "acme/infra";
const HOUR: i64 = 3_600_000;

fn tf(state: &Path, v: &str) -> String {
    format!(
        "terraform {{\n  backend \"local\" {{\n    path = \"{}\"\n  }}\n}}\noutput \"v\" {{\n  value = \"{v}\"\n}}\noutput \"deploy\" {{\n  value = \"ghp_{}\"\n}}\n",
        state.display(),
        v.chars().next().unwrap_or('x').to_string().repeat(36)
    )
}

fn apply_directly(terraform: &Path, dir: &Path, text: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("main.tf"), text).expect("write");
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    ] {
        let out = std::process::Command::new(terraform)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("terraform");
        assert!(
            out.status.success(),
            "terraform {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_alerts_once_across_replicas() {
    let (Some(fixtures), Some(terraform)) = (Fixtures::load(), terraform()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("prod.tfstate");
    // Reality: what an earlier apply left ("one").
    apply_directly(&terraform, &dir.path().join("scratch"), &tf(&state, "one"));

    let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .expect("store");
    let gh = StandIn::start(fixtures).await.expect("stand-in");
    gh.require_token("tok");
    // The code on main says "two": drift.
    gh.set_default_branch(REPO, "main", &[("envs/prod/main.tf", &tf(&state, "two"))]);
    let conf = format!(
        "[gate]\nallow = [\"{REPO}\"]\nworkdir = \"{}\"\nterraform_bin = \"{}\"\ndrift_interval = \"1h\"\ndrift_lease = \"10m\"\n\n[[gate.project]]\nrepo = \"{REPO}\"\nname = \"prod\"\ndir = \"envs/prod\"\n\n[[gate.project]]\nrepo = \"{REPO}\"\nname = \"off\"\ndir = \"envs/off\"\ndrift = false\n",
        dir.path().join("work").display(),
        terraform.display()
    );
    let now = Arc::new(AtomicI64::new(1_700_000_000_000));
    let replica = |node: &str| {
        let github: Arc<dyn GitHub> = Arc::new(RestGitHub::new(&gh.url, "tok").expect("client"));
        let n = now.clone();
        Gate::new(
            GateConfig::parse(&conf).expect("config"),
            b"0123456789abcdef".to_vec(),
            GateDb::new(store.clone()),
            github.clone(),
            Arc::new(ApiCheckout {
                github,
                max_bytes: 1 << 20,
            }),
        )
        .with_clock(Arc::new(move || n.load(Ordering::SeqCst)))
        .with_node(node)
    };
    let (a, b) = (replica("a"), replica("b"));

    // Both replicas at once: exactly one runs the check.
    let (ra, rb) = tokio::join!(a.drift_once(), b.drift_once());
    let all: Vec<&DriftOutcome> = ra.iter().chain(rb.iter()).map(|r| &r.2).collect();
    assert_eq!(all.len(), 2, "only the drift-enabled project: {all:?}");
    assert_eq!(
        all.iter().filter(|o| ***o == DriftOutcome::Drift).count(),
        1,
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|o| ***o == DriftOutcome::Skipped).count(),
        1,
        "{all:?}"
    );
    let ledger = store.ledger(0, 1000).await.expect("ledger");
    let drift: Vec<_> = ledger.iter().filter(|e| e.kind == "gate.drift").collect();
    assert_eq!(drift.len(), 1);
    assert_eq!(drift[0].data["project"], "prod");
    assert_eq!(drift[0].data["branch"], "main");
    let summary = drift[0].data["summary"].as_str().expect("summary");
    assert!(summary.contains("\"one\" -> \"two\""), "{summary}");
    assert!(
        !summary.contains(&"o".repeat(36)) && !summary.contains(&"t".repeat(36)),
        "token leaked: {summary}"
    );
    assert!(summary.contains("[REDACTED]"), "{summary}");
    // It is in the alert outbox the broker delivers to its sinks.
    let alerts = store
        .due_alerts(i64::MAX, 100)
        .await
        .expect("alerts")
        .into_iter()
        .filter(|a| a.kind == "gate.drift")
        .count();
    assert_eq!(alerts, 1);

    // Not due again before the interval.
    now.fetch_add(HOUR / 2, Ordering::SeqCst);
    assert!(a
        .drift_once()
        .await
        .iter()
        .all(|r| r.2 == DriftOutcome::Skipped));

    // After the interval, with main matching reality: in sync, no alert.
    gh.set_default_branch(REPO, "main", &[("envs/prod/main.tf", &tf(&state, "one"))]);
    now.fetch_add(HOUR, Ordering::SeqCst);
    let r = b.drift_once().await;
    assert_eq!(r[0].2, DriftOutcome::InSync, "{r:?}");
    let ledger = store.ledger(0, 1000).await.expect("ledger");
    assert_eq!(
        ledger
            .iter()
            .filter(|e| e.kind == "gate.drift_check")
            .count(),
        1
    );
    assert_eq!(ledger.iter().filter(|e| e.kind == "gate.drift").count(), 1);

    // A replica that claimed the check and died: the others wait for the
    // lease, then take over.
    now.fetch_add(HOUR + 1, Ordering::SeqCst);
    let db = GateDb::new(store.clone());
    let t = now.load(Ordering::SeqCst);
    assert!(db
        .claim_drift(REPO, "prod", "default", "crashed", t, 10 * 60_000)
        .await
        .expect("claim"));
    assert_eq!(b.drift_once().await[0].2, DriftOutcome::Skipped);
    now.fetch_add(10 * 60_000 + 1, Ordering::SeqCst);
    assert_eq!(b.drift_once().await[0].2, DriftOutcome::InSync);
    // The crashed holder cannot release what it no longer holds.
    assert!(!db
        .finish_drift(REPO, "prod", "default", "crashed", 0, "x", "in_sync")
        .await
        .expect("finish"));

    // A broken default branch: the failure alerts too.
    gh.set_default_branch(REPO, "main", &[("envs/prod/main.tf", "this is not HCL {")]);
    now.fetch_add(2 * HOUR, Ordering::SeqCst);
    let r = a.drift_once().await;
    assert!(matches!(r[0].2, DriftOutcome::Failed(_)), "{r:?}");
    let failed = store
        .ledger(0, 1000)
        .await
        .expect("ledger")
        .into_iter()
        .filter(|e| e.kind == "gate.drift_failed")
        .count();
    assert_eq!(failed, 1);
}
