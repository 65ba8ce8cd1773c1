//! Gate rows on both databases, and the migration numbering.

use twokey_gate::db::{DeliveryStart, GateDb, Lock, PlanRow, PlanState};
use twokey_store::Store;

fn lock(pull: u64) -> Lock {
    Lock {
        repo: "acme/infra".into(),
        project: "prod".into(),
        workspace: "default".into(),
        pull,
        head_sha: "abc".into(),
        locked_by: "alice".into(),
    }
}

#[tokio::test]
async fn deliveries_locks_plans_and_pushers_on_both_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "gate").await {
        let db = GateDb::new(Store::open(&url).await.expect("open"));

        // A delivery: new, in progress while its lease lives, resumed once
        // the lease lapsed (its worker died), a replay once done.
        let start = |id: &'static str, owner: &'static str, now: i64| {
            let db = db.clone();
            async move {
                db.begin_delivery(id, "pull_request", "acme/infra", owner, now, 100)
                    .await
                    .expect("begin")
            }
        };
        assert_eq!(start("d-1", "w1", 1).await, DeliveryStart::New);
        assert_eq!(start("d-1", "w2", 50).await, DeliveryStart::InProgress);
        assert!(db.renew_delivery("d-1", "w1", 150).await.expect("renew"));
        assert_eq!(start("d-1", "w2", 120).await, DeliveryStart::InProgress);
        assert!(db.stale_deliveries(120).await.expect("stale").is_empty());
        // w1 died: after its lease, the delivery is stale and can be resumed.
        let stale = db.stale_deliveries(151).await.expect("stale");
        assert_eq!(stale.len(), 1, "{url}");
        assert_eq!(
            (stale[0].id.as_str(), stale[0].status.as_str()),
            ("d-1", "working")
        );
        db.delivery_alerted("d-1", 151).await.expect("alerted");
        assert!(db.stale_deliveries(152).await.expect("stale").is_empty());
        assert_eq!(
            start("d-1", "w2", 151).await,
            DeliveryStart::Resumed { attempts: 2 }
        );
        // The dead worker can no longer renew or finish it.
        assert!(!db.renew_delivery("d-1", "w1", 999).await.expect("renew"));
        db.finish_delivery("d-1", "w1", 160, true)
            .await
            .expect("finish");
        assert_eq!(
            start("d-1", "w3", 300).await,
            DeliveryStart::Resumed { attempts: 3 }
        );
        // Finished without all its evidence: resumable at once, and stale.
        db.finish_delivery("d-1", "w3", 301, false)
            .await
            .expect("finish");
        assert_eq!(db.stale_deliveries(302).await.expect("stale").len(), 1);
        assert_eq!(
            start("d-1", "w4", 302).await,
            DeliveryStart::Resumed { attempts: 4 }
        );
        db.finish_delivery("d-1", "w4", 303, true)
            .await
            .expect("finish");
        assert_eq!(start("d-1", "w5", 10_000).await, DeliveryStart::Done);
        assert_eq!(start("d-2", "w5", 10_000).await, DeliveryStart::New);

        // Locks: first pull request wins until it unlocks.
        assert_eq!(db.lock(&lock(1), 1).await.expect("lock"), None);
        assert_eq!(db.lock(&lock(1), 2).await.expect("relock"), None);
        let held = db.lock(&lock(2), 3).await.expect("lock");
        assert_eq!(held.map(|h| h.pull), Some(1), "{url}");
        // Another workspace is another lock.
        let other = Lock {
            workspace: "staging".into(),
            ..lock(2)
        };
        assert_eq!(db.lock(&other, 3).await.expect("lock"), None);
        assert_eq!(db.unlock_pull("acme/infra", 1).await.expect("unlock"), 1);
        assert_eq!(db.lock(&lock(2), 4).await.expect("lock"), None);

        // Plans move once.
        let plan = PlanRow {
            project: "prod".into(),
            head_sha: "abc".into(),
            plan_path: "/tmp/p".into(),
            plan_sha256: "00".into(),
            status: PlanState::Planned,
            delivery: None,
        };
        db.put_plan("acme/infra", 2, &plan, 5).await.expect("plan");
        let claim = |sha: &'static str, owner: &'static str| {
            let db = db.clone();
            async move {
                db.claim_plan("acme/infra", 2, "prod", sha, "d-9", owner, 100)
                    .await
                    .expect("claim")
            }
        };
        assert!(!claim("other-sha", "w1").await);
        assert!(claim("abc", "w1").await);
        assert!(!claim("abc", "w2").await, "claimed twice");
        let row = &db.plans("acme/infra", 2).await.expect("plans")[0];
        assert_eq!(
            (row.status.as_str(), row.delivery.as_deref()),
            ("applying", Some("d-9"))
        );
        // A live claim is not stuck; a lapsed one is, and one replica takes it over.
        assert!(db.stuck_plans(50, None).await.expect("stuck").is_empty());
        let stuck = db.stuck_plans(101, None).await.expect("stuck");
        assert_eq!(stuck.len(), 1, "{url}");
        assert_eq!(stuck[0].claim_owner.as_deref(), Some("w1"));
        assert_eq!(
            db.stuck_plans(101, Some(("acme/infra", 3)))
                .await
                .expect("stuck")
                .len(),
            0
        );
        let take = |owner: &'static str| {
            let (db, p) = (db.clone(), stuck[0].plan.clone());
            async move {
                db.take_over_plan("acme/infra", 2, &p, Some("w1"), owner, 101, 200)
                    .await
                    .expect("take")
            }
        };
        assert!(take("r1").await);
        assert!(!take("r2").await, "taken over twice");
        // The dead worker cannot settle it any more; the new holder can, once.
        assert!(!db
            .settle_plan("acme/infra", 2, "prod", "abc", "w1", PlanState::Applied)
            .await
            .expect("settle"));
        assert!(db
            .settle_plan("acme/infra", 2, "prod", "abc", "r1", PlanState::Applied)
            .await
            .expect("settle"));
        assert!(!db
            .settle_plan("acme/infra", 2, "prod", "abc", "r1", PlanState::ApplyFailed)
            .await
            .expect("settle"));
        assert_eq!(
            db.plans("acme/infra", 2).await.expect("plans")[0].status,
            PlanState::Applied
        );
        assert!(!db
            .move_plan(
                "acme/infra",
                2,
                "prod",
                "abc",
                PlanState::Planned,
                PlanState::Applying
            )
            .await
            .expect("m"));
        db.drop_plans("acme/infra", 2).await.expect("drop");
        assert!(db.plans("acme/infra", 2).await.expect("plans").is_empty());

        // Pushers: first writer wins.
        db.put_pusher("acme/infra", 2, "abc", "mallory", 6)
            .await
            .expect("p");
        db.put_pusher("acme/infra", 2, "abc", "bob", 7)
            .await
            .expect("p");
        assert_eq!(
            db.pusher("acme/infra", 2, "abc")
                .await
                .expect("p")
                .as_deref(),
            Some("mallory")
        );
        assert_eq!(db.pusher("acme/infra", 2, "zzz").await.expect("p"), None);
    }
}

/// `0003_gate.sql` may be applied before another branch's `0002_*.sql`
/// lands: sqlx skips gaps and later applies a lower-numbered migration it has
/// not seen (it only refuses applied migrations missing from the source, or
/// changed checksums).
#[tokio::test]
async fn migration_gap_then_late_0002_is_accepted() {
    use sqlx::migrate::Migrator;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../twokey-store/migrations");
    let dir = tempfile::tempdir().expect("tempdir");
    let mig = dir.path().join("migrations");
    std::fs::create_dir(&mig).expect("mkdir");
    for f in ["0001_init.sql", "0003_gate.sql"] {
        std::fs::copy(src.join(f), mig.join(f)).expect("copy");
    }
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&url)
        .await
        .expect("sqlite");
    Migrator::new(mig.as_path())
        .await
        .expect("m")
        .run(&pool)
        .await
        .expect("0001 + 0003");
    std::fs::write(
        mig.join("0002_late.sql"),
        "CREATE TABLE late_table (x BIGINT);",
    )
    .expect("w");
    Migrator::new(mig.as_path())
        .await
        .expect("m")
        .run(&pool)
        .await
        .expect("late 0002 applied");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n, 3);
    sqlx::query("SELECT x FROM late_table")
        .fetch_all(&pool)
        .await
        .expect("late table exists");
}

/// Drift leases: of many replicas claiming at once, one wins; nobody else
/// until it finishes (then only when due again) or its lease expires.
#[tokio::test]
async fn drift_leases_on_both_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "gatedrift").await {
        let db = GateDb::new(Store::open(&url).await.expect("open"));
        let claims = futures_join(&db, 100).await;
        assert_eq!(claims.iter().filter(|c| **c).count(), 1, "{url}");
        let winner = format!("r{}", claims.iter().position(|c| *c).expect("a winner"));
        // Held: nobody else, not even later within the lease.
        assert!(!db
            .claim_drift("acme/infra", "prod", "default", "late", 150, 1000)
            .await
            .expect("claim"));
        // A replica that does not hold it cannot finish it.
        assert!(!db
            .finish_drift("acme/infra", "prod", "default", "late", 0, "s", "drift")
            .await
            .expect("finish"));
        assert!(db
            .finish_drift("acme/infra", "prod", "default", &winner, 5000, "s", "drift")
            .await
            .expect("finish"));
        // Released but not due until 5000.
        assert!(!db
            .claim_drift("acme/infra", "prod", "default", "late", 4999, 1000)
            .await
            .expect("claim"));
        assert!(db
            .claim_drift("acme/infra", "prod", "default", "late", 5000, 1000)
            .await
            .expect("claim"));
        // `late` dies; its lease runs out at 6000.
        assert!(!db
            .claim_drift("acme/infra", "prod", "default", "other", 6000, 1000)
            .await
            .expect("claim"));
        assert!(db
            .claim_drift("acme/infra", "prod", "default", "other", 6001, 1000)
            .await
            .expect("claim"));
    }
}

async fn futures_join(db: &GateDb, at: i64) -> Vec<bool> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let db = db.clone();
        set.spawn(async move {
            (
                i,
                db.claim_drift("acme/infra", "prod", "default", &format!("r{i}"), at, 1000)
                    .await
                    .expect("claim"),
            )
        });
    }
    let mut out = vec![false; 8];
    while let Some(r) = set.join_next().await {
        let (i, won) = r.expect("task");
        out[i] = won;
    }
    out
}
