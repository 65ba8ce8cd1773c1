//! Migration 0020 on SQLite and PostgreSQL: the posture monitor's current
//! results. Two stores on one database stand for two replicas: what one
//! writes the other reads; a scan replaces the previous one whole.

use twokey_store::{PostureRow, Store};

fn row(check: &str, resource: &str, status: &str, at: i64) -> PostureRow {
    PostureRow {
        check: check.into(),
        account: "222233334444".into(),
        region: "eu-west-1".into(),
        resource: resource.into(),
        severity: "critical".into(),
        status: status.into(),
        message: format!("{resource} is {status}"),
        evidence: r#"{"k":"v"}"#.into(),
        scanned_at: at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_replaces_the_last_and_every_replica_reads_it_on_both_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "tk_posture").await {
        let a = Store::open(&url).await.expect("replica a");
        let b = Store::open(&url).await.expect("replica b");
        assert!(b.posture().await.expect("read").is_empty(), "{url}");
        let first = vec![
            row("guardduty.enabled", "det-1", "FAIL", 1_000),
            row("cloudtrail.trail", "org", "PASS", 1_000),
        ];
        a.replace_posture(&first).await.expect("write");
        let got = b.posture().await.expect("read");
        assert_eq!(got.len(), 2, "{url}");
        assert_eq!(got[0], first[1], "ordered by check: {url}");
        assert_eq!(got[1], first[0], "{url}");
        let second = vec![row("guardduty.enabled", "det-1", "PASS", 2_000)];
        b.replace_posture(&second).await.expect("write");
        assert_eq!(a.posture().await.expect("read"), second, "{url}");
    }
}
