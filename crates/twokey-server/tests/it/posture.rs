//! The posture monitor of `twokey serve` against a real moto server, on both
//! databases: the first scan records each failing check as an alerting
//! `posture.failing` entry, keeps the results in the store and exports the
//! failing counts; GuardDuty switched on in a region makes the next scan
//! record `posture.fixed` and the count drop; a scan that finds nothing new
//! records nothing; a second replica skips while the first holds the lease.
//! Passes are driven by the test (`run_once`), so nothing sleeps.

use crate::moto;
use crate::support;

use std::sync::Arc;

use twokey_core::Policy;
use twokey_providers::{ProviderContext, Registry};
use twokey_server::posture::{Interval, PostureConfig, PostureMonitor};
use twokey_server::{Broker, BrokerOptions, SystemClock};
use twokey_store::Store;

async fn broker(url: &str, node: &str) -> Arc<Broker> {
    let store = Store::open(url).await.expect("store");
    let policy = Policy::parse(&support::policy(""), "test policy").expect("policy");
    let (b, _) = Broker::start(
        store,
        policy,
        Registry::with_builtin(),
        ProviderContext::default(),
        Arc::new(SystemClock),
        vec![],
        BrokerOptions {
            node: node.into(),
            reconcile_interval_ms: 0,
            ..Default::default()
        },
    )
    .await
    .expect("broker");
    b
}

fn config(moto: &moto::Moto) -> PostureConfig {
    let text = format!(
        "interval = \"1h\"\nregions = [\"us-east-1\", \"eu-west-1\"]\nendpoint_url = \"{}\"\n",
        moto.url()
    );
    toml::from_str(&text).expect("config")
}

async fn alerts(b: &Broker, kind: &str, check: &str) -> Vec<serde_json::Value> {
    b.store()
        .ledger(0, 10_000)
        .await
        .expect("ledger")
        .into_iter()
        .filter(|e| e.kind == kind && e.data["check"] == check)
        .map(|e| e.data)
        .collect()
}

fn gauge(b: &Broker, check: &str, severity: &str) -> Option<String> {
    let text = b.metrics.render();
    let needle = format!("twokey_posture_failing{{check=\"{check}\",severity=\"{severity}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle).map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_record_changes_keep_results_and_export_counts_on_both_databases() {
    let Some(moto) = moto::Moto::start(&[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // GuardDuty on in us-east-1; eu-west-1 fails until the test turns it on.
    let sdk = moto.connection().load().await;
    let gd_east = aws_sdk_guardduty::Client::new(&sdk);
    gd_east
        .create_detector()
        .enable(true)
        .send()
        .await
        .expect("detector");
    let mut west_conn = moto.connection();
    west_conn.region = Some("eu-west-1".into());
    let gd_west = aws_sdk_guardduty::Client::new(&west_conn.load().await);

    for url in twokey_store::testing::both(dir.path(), "tk_posture_mon").await {
        // GuardDuty off in eu-west-1 (a detector left by the last database's run goes).
        let ids = gd_west.list_detectors().send().await.expect("list");
        for id in ids.detector_ids() {
            gd_west
                .delete_detector()
                .detector_id(id)
                .send()
                .await
                .expect("delete");
        }
        let a = broker(&url, "replica-a").await;
        let b = broker(&url, "replica-b").await;
        let mon = PostureMonitor::new(a.clone(), config(&moto));
        let other = PostureMonitor::new(b.clone(), config(&moto));

        let first = mon.run_once().await.expect("first scan");
        assert!(
            !first.skipped && first.failing > 0 && first.changes == first.failing,
            "{first:?}"
        );
        let failing = alerts(&a, "posture.failing", "guardduty.enabled").await;
        assert_eq!(failing.len(), 1, "{url}: {failing:?}");
        assert_eq!(failing[0]["region"], "eu-west-1");
        assert_eq!(failing[0]["severity"], "medium");
        // Alerting: the entries are in the alert outbox.
        let due = a
            .store()
            .due_alerts(i64::MAX / 2, 1_000)
            .await
            .expect("outbox");
        assert!(due.iter().any(|r| r.kind == "posture.failing"), "{url}");
        // Kept in the store, for every replica and the web UI.
        let rows = b.store().posture().await.expect("rows");
        assert_eq!(rows.len(), first.findings);
        assert!(rows.iter().any(|r| r.check == "guardduty.enabled"
            && r.region == "eu-west-1"
            && r.status == "FAIL"));
        assert_eq!(
            gauge(&a, "guardduty.enabled", "medium").as_deref(),
            Some("1")
        );

        // The other replica does not scan while the lease is held.
        assert!(other.run_once().await.expect("other").skipped);

        // Nothing changed: nothing recorded.
        let again = mon.run_once().await.expect("again");
        assert_eq!(again.changes, 0, "{again:?}");

        // Fixed: GuardDuty on in eu-west-1 too.
        gd_west
            .create_detector()
            .enable(true)
            .send()
            .await
            .expect("detector");
        let fixed = mon.run_once().await.expect("fixed scan");
        assert_eq!(fixed.changes, 1, "{fixed:?}");
        let f = alerts(&a, "posture.fixed", "guardduty.enabled").await;
        assert_eq!(f.len(), 1, "{url}: {f:?}");
        assert_eq!(
            (f[0]["before"].as_str(), f[0]["status"].as_str()),
            (Some("FAIL"), Some("PASS"))
        );
        assert_eq!(
            gauge(&a, "guardduty.enabled", "medium").as_deref(),
            Some("0")
        );
    }
}

#[test]
fn the_interval_is_a_typed_duration_with_clear_errors() {
    let ok: PostureConfig = toml::from_str("interval = \"90m\"").expect("config");
    assert_eq!(ok.interval, Interval(90 * 60_000));
    assert_eq!(ok.member_role, "OrganizationAccountAccessRole");
    let e = toml::from_str::<PostureConfig>("interval = \"soon\"").expect_err("bad");
    assert!(
        e.to_string().contains("[posture.aws] interval \"soon\""),
        "{e}"
    );
    let e = toml::from_str::<PostureConfig>("interval = \"10ms\"").expect_err("short");
    assert!(e.to_string().contains("shorter than 1s"), "{e}");
    let e = toml::from_str::<PostureConfig>("interval = \"1h\"\nregion_list = []")
        .expect_err("unknown");
    assert!(e.to_string().contains("region_list"), "{e}");
}
