//! The server's reconciler on both databases, with a provider that keeps one
//! file per grant (`grants/<request id>` holding the requester's name) and can
//! list them: uncovered access is removed after its ledger entry, grants being
//! activated are left alone, missing grants are reported once, one replica at
//! a time acts, and nothing is removed when the ledger cannot be written.

use crate::support;
use crate::support::State;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use twokey_core::Policy;
use twokey_providers::{
    Found, GrantOutcome, GrantSpec, Presence, Provider, ProviderContext, ProviderError, Reconcile,
    Registry,
};
use twokey_server::clock::OffsetClock;
use twokey_server::reconciler::{PassReport, Reconciler};
use twokey_server::{Broker, BrokerOptions};
use twokey_store::Store;

/// Grants are files; `grant` waits while `hold` exists (a grant caught in
/// the middle of activation).
struct Files {
    dir: PathBuf,
}

fn perm(e: std::io::Error) -> ProviderError {
    ProviderError::retryable(e.to_string())
}

#[async_trait]
impl Provider for Files {
    async fn grant(&self, spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        std::fs::create_dir_all(self.dir.join("grants")).map_err(perm)?;
        std::fs::write(
            self.dir.join("grants").join(&spec.request_id),
            &spec.requester_name,
        )
        .map_err(perm)?;
        while self.dir.join("hold").exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(GrantOutcome::default())
    }
    async fn revoke(&self, spec: &GrantSpec) -> Result<(), ProviderError> {
        match std::fs::remove_file(self.dir.join("grants").join(&spec.request_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(perm(e)),
            _ => Ok(()),
        }
    }
    async fn check(&self, spec: &GrantSpec) -> Result<Presence, ProviderError> {
        Ok(Presence::of(
            self.dir.join("grants").join(&spec.request_id).exists(),
        ))
    }
    fn reconciler(&self) -> Option<&dyn Reconcile> {
        Some(self)
    }
}

#[async_trait]
impl Reconcile for Files {
    async fn list_present(&self) -> Result<Vec<Found>, ProviderError> {
        if self.dir.join("unreachable").exists() {
            return Err(ProviderError::retryable("target unreachable (test)"));
        }
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.dir.join("grants")) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let who = std::fs::read_to_string(e.path()).unwrap_or_default();
            out.push(Found {
                request_ids: vec![name.clone()],
                requester: Some(who),
                resource: name,
            });
        }
        out.sort();
        Ok(out)
    }
    async fn remove(&self, found: &Found) -> Result<(), ProviderError> {
        match std::fs::remove_file(self.dir.join("grants").join(&found.resource)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(perm(e)),
            _ => Ok(()),
        }
    }
    /// One finding per line of the file `standing`.
    async fn standing_access(&self) -> Result<Vec<String>, ProviderError> {
        Ok(std::fs::read_to_string(self.dir.join("standing"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect())
    }
}

fn factory(
    target: &toml::Table,
    _ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, ProviderError> {
    let dir = target
        .get("dir")
        .and_then(|v| v.as_str())
        .ok_or_else(|| ProviderError::permanent("files target: `dir` is missing"))?;
    Ok(Arc::new(Files {
        dir: PathBuf::from(dir),
    }))
}

fn policy(dir: &std::path::Path) -> String {
    support::policy(&format!(
        r#"
[[entitlement]]
name = "files"
provider = "files"
requester_groups = ["eng"]
max_duration = "1h"
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
dir = "{}"
"#,
        dir.display()
    ))
}

struct H {
    broker: Arc<Broker>,
    /// The broker's clock: the test moves it past the grace period.
    clock: Arc<OffsetClock>,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
    stop: tokio::sync::watch::Sender<bool>,
}

async fn broker(
    url: &str,
    dir: &std::path::Path,
    node: &str,
    clock: Arc<OffsetClock>,
) -> Arc<Broker> {
    let store = Store::open(url).await.expect("store");
    let policy = Policy::parse(&policy(dir), "test policy").expect("policy");
    let mut reg = Registry::with_builtin();
    reg.register("files", factory);
    let mut ctx = ProviderContext::default();
    ctx.env.insert("D".into(), dir.display().to_string());
    let (b, _) = Broker::start(
        store,
        policy,
        reg,
        ctx,
        clock,
        vec![],
        BrokerOptions {
            node: node.into(),
            base_backoff_ms: 100,
            max_backoff_ms: 400,
            poll_ms: 50,
            // Passes are driven by the test.
            reconcile_interval_ms: 0,
            reconcile_grace_ms: 1_000,
            ..Default::default()
        },
    )
    .await
    .expect("broker");
    b
}

async fn start(url: &str) -> H {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("grants")).expect("mkdir");
    let clock = Arc::new(OffsetClock::default());
    let b = broker(url, &dir, "node-a", clock.clone()).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(b.clone().run_scheduler(rx));
    H {
        broker: b,
        clock,
        dir,
        _tmp: tmp,
        stop,
    }
}

fn actor(b: &Broker, name: &str) -> twokey_core::Actor {
    b.policy().policy.identity(name).expect("identity").actor()
}

async fn approved(h: &H, who: &str, minutes: i64) -> String {
    let b = &h.broker;
    let r = b
        .create_request(
            &actor(b, who),
            &twokey_core::NewRequest {
                entitlement: "files".into(),
                duration_ms: Some(minutes * 60_000),
                reason: "INC-1".into(),
                ticket: None,
                break_glass: false,
            },
        )
        .await
        .expect("request");
    b.review(
        &actor(b, "bob"),
        &r.id,
        twokey_core::ReviewDecision::Approve,
        "ok",
    )
    .await
    .expect("approve");
    r.id
}

async fn wait_state(h: &H, id: &str, state: State) {
    twokey_testkit::eventually(
        &format!("{id} to become {}", state.as_str()),
        Duration::from_secs(10),
        || async {
            let r = h.broker.get(id).await.map_err(|e| e.to_string())?;
            if r.state == state {
                Ok(())
            } else {
                Err(format!("state {}", r.state.as_str()))
            }
        },
    )
    .await
}

async fn kinds(h: &H, subject: &str) -> Vec<String> {
    h.broker
        .store()
        .ledger_for(subject)
        .await
        .expect("ledger")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn hand_made(h: &H, id: &str, who: &str) {
    std::fs::write(h.dir.join("grants").join(id), who).expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncovered_access_is_recorded_then_removed_live_grants_stay() {
    let (_d, urls) = support::urls("tk_recon").await;
    for url in urls {
        let h = start(&url).await;
        let live = approved(&h, "alice", 30).await;
        wait_state(&h, &live, State::Active).await;
        // An ended grant whose access came back, access under a made-up id,
        // and alice's access named after erin's live grant.
        let ended = approved(&h, "alice", 30).await;
        wait_state(&h, &ended, State::Active).await;
        h.broker
            .revoke(&actor(&h.broker, "alice"), &ended)
            .await
            .expect("revoke");
        wait_state(&h, &ended, State::Revoked).await;
        hand_made(&h, &ended, "alice");
        hand_made(&h, "req-byhand", "alice");
        let erins = approved(&h, "erin", 30).await;
        wait_state(&h, &erins, State::Active).await;
        std::fs::remove_file(h.dir.join("grants").join(&erins)).expect("rm");
        std::fs::write(h.dir.join("grants").join(&erins), "alice").expect("forge");

        let mut rec = Reconciler::new(h.broker.clone());
        let r = rec.run_once().await.expect("pass");
        assert_eq!(
            r,
            PassReport {
                checked: 1,
                removed: 3,
                ..Default::default()
            },
            "{url}"
        );
        assert!(h.dir.join("grants").join(&live).exists(), "live grant kept");
        assert!(!h.dir.join("grants").join(&ended).exists());
        assert!(!h.dir.join("grants").join("req-byhand").exists());
        assert!(!h.dir.join("grants").join(&erins).exists());
        // Each finding is in the ledger, the finding before the removal.
        for subject in [ended.as_str(), erins.as_str(), "reconcile:files"] {
            let k = kinds(&h, subject).await;
            let found = k.iter().position(|k| k == "reconcile.uncovered");
            let removed = k.iter().position(|k| k == "reconcile.removed");
            assert!(
                matches!((found, removed), (Some(f), Some(r)) if f < r),
                "{subject}: {k:?}"
            );
        }
        let entries = h
            .broker
            .store()
            .ledger_for("reconcile:files")
            .await
            .expect("l");
        assert!(entries
            .iter()
            .any(|e| e.data["resource"] == "req-byhand" && e.data["entitlement"] == "files"));
        assert!(kinds(&h, &live)
            .await
            .iter()
            .all(|k| !k.starts_with("reconcile.")));
        // Alerts are queued for the findings.
        let alerts = h
            .broker
            .store()
            .due_alerts(i64::MAX, 100)
            .await
            .expect("alerts");
        assert_eq!(
            alerts
                .iter()
                .filter(|a| a.kind == "reconcile.uncovered")
                .count(),
            3
        );

        // erin's grant is active but its access is gone now: reported once
        // its grace has passed (maybe already in the first pass on a slow
        // machine), and only once.
        h.clock.advance(1_100);
        let r = rec.run_once().await.expect("pass");
        assert_eq!(r.removed, 0);
        let r2 = rec.run_once().await.expect("pass");
        assert_eq!(r2.missing, 0, "reported once");
        assert_eq!(
            kinds(&h, &erins)
                .await
                .iter()
                .filter(|k| *k == "reconcile.missing")
                .count(),
            1
        );
        let _ = h.stop.send(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_being_activated_is_not_removed() {
    let (_d, urls) = support::urls("tk_recon_act").await;
    for url in urls {
        let h = start(&url).await;
        std::fs::write(h.dir.join("hold"), "").expect("hold");
        let id = approved(&h, "alice", 30).await;
        // The provider has applied the grant but activation is not recorded.
        for _ in 0..200 {
            if h.dir.join("grants").join(&id).exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            h.broker.get(&id).await.expect("get").state.as_str(),
            "approved"
        );
        let r = Reconciler::new(h.broker.clone())
            .run_once()
            .await
            .expect("pass");
        assert_eq!(r.removed, 0, "{url}: {r:?}");
        assert!(h.dir.join("grants").join(&id).exists());
        std::fs::remove_file(h.dir.join("hold")).expect("release");
        wait_state(&h, &id, State::Active).await;
        let r = Reconciler::new(h.broker.clone())
            .run_once()
            .await
            .expect("pass");
        assert_eq!((r.removed, r.missing), (0, 0), "{url}: {r:?}");
        let _ = h.stop.send(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_at_a_time_and_the_lease_lapses() {
    let (_d, urls) = support::urls("tk_recon_lease").await;
    for url in urls {
        let h = start(&url).await;
        let other = broker(&url, &h.dir, "node-b", Arc::new(OffsetClock::default())).await;
        hand_made(&h, "req-byhand", "alice");
        let a = Reconciler::new(h.broker.clone())
            .run_once()
            .await
            .expect("a");
        let b = Reconciler::new(other.clone()).run_once().await.expect("b");
        assert!(!a.skipped && a.removed == 1, "{url}: {a:?}");
        assert!(b.skipped, "{url}: the other replica must not act: {b:?}");
        // A lapsed lease (its holder died) is taken over.
        let store = other.store();
        assert!(!store
            .try_lease("reconciler", "node-b", other.now(), 1_000)
            .await
            .expect("lease"));
        assert!(store
            .try_lease("reconciler", "node-b", other.now() + 120_000, 1_000)
            .await
            .expect("lease"));
        assert!(!store
            .try_lease("reconciler", "node-a", other.now() + 120_500, 1_000)
            .await
            .expect("lease"));
        store
            .release_lease("reconciler", "node-b")
            .await
            .expect("release");
        assert!(store
            .try_lease("reconciler", "node-a", other.now(), 1_000)
            .await
            .expect("lease"));
        let _ = h.stop.send(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_removed_when_the_ledger_cannot_be_written() {
    let (_d, urls) = support::urls("tk_recon_fc").await;
    for url in urls {
        let h = start(&url).await;
        hand_made(&h, "req-byhand", "alice");
        twokey_store::testing::break_ledger(h.broker.store())
            .await
            .expect("break the ledger");
        let r = Reconciler::new(h.broker.clone()).run_once().await;
        assert!(r.is_err(), "{url}: the pass must fail: {r:?}");
        assert!(
            h.dir.join("grants").join("req-byhand").exists(),
            "{url}: removed without a ledger entry"
        );
        let _ = h.stop.send(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_alerts_on_the_first_failure_then_paced() {
    let (_d, urls) = support::urls("tk_recon_down").await;
    for url in urls {
        let h = start(&url).await;
        std::fs::write(h.dir.join("unreachable"), "").expect("flag");
        let mut rec = Reconciler::new(h.broker.clone());
        for _ in 0..4 {
            let r = rec.run_once().await.expect("pass");
            assert_eq!(r.list_failed, 1);
        }
        let entries = h
            .broker
            .store()
            .ledger_for("reconcile:files")
            .await
            .expect("l");
        let failed: Vec<_> = entries
            .iter()
            .filter(|e| e.kind == "reconcile.list_failed")
            .collect();
        // Failures 1 and 3 (alert_after_failures = 3).
        assert_eq!(failed.len(), 2, "{url}");
        assert!(failed[0].data["error"]
            .as_str()
            .unwrap_or("")
            .contains("target unreachable"));
        let _ = h.stop.send(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standing_access_is_alerted_when_it_appears_or_changes_and_cleared() {
    let (_d, urls) = support::urls("tk_recon_standing").await;
    for url in urls {
        let h = start(&url).await;
        let mut rec = Reconciler::new(h.broker.clone());
        let standing = h.dir.join("standing");
        let kinds_now = || async {
            h.broker
                .store()
                .ledger_for("reconcile:files")
                .await
                .expect("ledger")
                .into_iter()
                .map(|e| (e.kind, e.data))
                .collect::<Vec<_>>()
        };
        assert_eq!(rec.run_once().await.expect("pass").standing, 0);
        assert!(kinds_now().await.is_empty(), "{url}");

        std::fs::write(&standing, "trust names alice\n").expect("write");
        for _ in 0..3 {
            assert_eq!(rec.run_once().await.expect("pass").standing, 1);
        }
        let got = kinds_now().await;
        assert_eq!(got.len(), 1, "reported once, not every pass: {got:?}");
        assert_eq!(got[0].0, "reconcile.standing_access");
        assert_eq!(got[0].1["findings"][0], "trust names alice");

        std::fs::write(&standing, "trust names alice\ntrust names bob\n").expect("write");
        assert_eq!(rec.run_once().await.expect("pass").standing, 2);
        std::fs::remove_file(&standing).expect("rm");
        assert_eq!(rec.run_once().await.expect("pass").standing, 0);
        let got: Vec<String> = kinds_now().await.into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            got,
            [
                "reconcile.standing_access",
                "reconcile.standing_access",
                "reconcile.standing_cleared"
            ],
            "{url}"
        );
        h.stop.send(true).expect("stop");
    }
}
