//! The audit view (`Broker::audit_view`, the `/ui/audit` page): the whole
//! ledger is hashed on the first view; later views hash only the entries
//! appended since onto that result, so a view costs what was appended, not
//! the ledger's size. A rewritten last entry is found at once; a rewritten
//! older one by the next whole pass, `AUDIT_FULL_EVERY_MS` later. On SQLite
//! and PostgreSQL. (Background work may append entries between the views,
//! so sizes are compared as at least, never as equal.)

use std::sync::Arc;

use twokey_server::clock::OffsetClock;
use twokey_server::reads::{AuditVerdict, AUDIT_FULL_EVERY_MS};

use crate::support;

fn size_of(v: &AuditVerdict) -> u64 {
    match v {
        AuditVerdict::Verified { size, .. } => *size,
        other => panic!("not verified: {other:?}"),
    }
}

async fn rewrite(h: &support::Harness, idx: u64, data: &str) {
    sqlx::query(&format!("UPDATE ledger SET data = $1 WHERE idx = {idx}"))
        .bind(data)
        .execute(h.broker.store().pool())
        .await
        .expect("rewrite an entry");
}

async fn data_of(h: &support::Harness, idx: u64) -> String {
    let rows = h
        .broker
        .store()
        .ledger_raw(idx as i64, 1)
        .await
        .expect("row");
    rows.first().expect("the entry").data.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_view_extends_its_last_check_and_finds_rewritten_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "tk_auditview").await {
        let clock = Arc::new(OffsetClock::default());
        let h = support::start_with_clock(url.clone(), &support::policy(""), vec![], clock.clone())
            .await;
        let bob = h
            .broker
            .policy()
            .policy
            .identity("bob")
            .expect("bob")
            .actor();
        h.request("alice", "demo", "30m").await;

        let first = h.broker.audit_view(&bob).await.expect("view");
        let n1 = size_of(&first.verdict);
        assert!(n1 >= 2, "{url}: {first:?}");

        // Appended entries are in the next view, which extends the first
        // one's pass instead of hashing everything again.
        h.request("alice", "demo", "30m").await;
        let second = h.broker.audit_view(&bob).await.expect("view");
        let n2 = size_of(&second.verdict);
        assert!(n2 > n1, "{url}: {n2} after {n1}");
        assert_eq!(
            second.full_at_ms, first.full_at_ms,
            "{url}: hashed whole again"
        );
        assert_eq!(
            second.latest.last().map(|e| e.index),
            Some(n2 - 1),
            "{url}: the latest entries end with the last one"
        );

        // A rewritten last entry is found at once.
        let last = data_of(&h, n2 - 1).await;
        rewrite(&h, n2 - 1, r#"{"rewritten":true}"#).await;
        let v = h.broker.audit_view(&bob).await.expect("view");
        assert!(
            matches!(v.verdict, AuditVerdict::Failed(_)),
            "{url}: a rewritten last entry passed: {:?}",
            v.verdict
        );
        rewrite(&h, n2 - 1, &last).await;
        let mended = h.broker.audit_view(&bob).await.expect("view");
        assert!(size_of(&mended.verdict) >= n2, "{url}");

        // A rewritten older entry: the views within the period extend the
        // pass that was made before the rewrite; the next whole pass finds it.
        let old = data_of(&h, 0).await;
        rewrite(&h, 0, r#"{"rewritten":true}"#).await;
        let within = h.broker.audit_view(&bob).await.expect("view");
        assert!(
            size_of(&within.verdict) >= n2,
            "{url}: {:?}",
            within.verdict
        );
        clock.advance(AUDIT_FULL_EVERY_MS + 1);
        let whole = h.broker.audit_view(&bob).await.expect("view");
        assert!(
            matches!(whole.verdict, AuditVerdict::Failed(_)),
            "{url}: the whole pass missed a rewritten first entry: {:?}",
            whole.verdict
        );
        assert!(whole.full_at_ms > first.full_at_ms, "{url}");
        // A failed ledger is hashed whole on every view until it is mended.
        rewrite(&h, 0, &old).await;
        let again = h.broker.audit_view(&bob).await.expect("view");
        assert!(size_of(&again.verdict) >= n2, "{url}: {:?}", again.verdict);
        h.stop().await;
    }
}
