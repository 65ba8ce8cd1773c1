//! Tests with real `twokey serve` processes: `kill -9` durability (SQLite and
//! PostgreSQL), two replicas on one PostgreSQL database, and a provider whose
//! revoke keeps failing. Every server is killed when its guard drops, and
//! every wait has a deadline.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::*;

/// Creates `n` requests, approves them all concurrently and waits until every
/// one is active; returns the ids and the earliest and latest end time.
async fn create_and_activate(
    env: &TestEnv,
    creators: &[Api],
    approvers: &[Api],
    n: usize,
    duration: impl Fn(usize) -> String,
) -> (Vec<String>, i64, i64) {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(creators[i % creators.len()].create(&duration(i)).await);
    }
    let handles: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let api = approvers[(i + 1) % approvers.len()].clone();
            let id = id.clone();
            tokio::spawn(async move { api.approve(&id).await })
        })
        .collect();
    for h in handles {
        let v = h.await.expect("approve task");
        assert!(
            matches!(state(&v), "approved" | "active"),
            "approval left state {}",
            state(&v)
        );
    }
    let reader = approvers[0].clone();
    let views = wait_until("every grant to be active", Duration::from_secs(30), || {
        let ids = ids.clone();
        let reader = reader.clone();
        async move {
            let views = get_all(&reader, &ids).await;
            let not: Vec<String> = views
                .iter()
                .filter(|v| state(v) != "active")
                .map(|v| format!("{} {}", v["id"], state(v)))
                .collect();
            if not.is_empty() {
                Ok(views)
            } else {
                Err(format!("{} not active: {:?}", not.len(), not))
            }
        }
    })
    .await;
    for id in &ids {
        assert!(
            env.grant_file(id).exists(),
            "{id} is active but its grant file is missing"
        );
    }
    let ends: Vec<i64> = views
        .iter()
        .map(|v| v["ends_at"].as_i64().expect("active request has ends_at"))
        .collect();
    (
        ids,
        *ends.iter().min().unwrap_or(&0),
        *ends.iter().max().unwrap_or(&0),
    )
}

/// Waits until every request is `expired` with its grant file gone; returns
/// the final views.
async fn wait_all_expired(
    env: &TestEnv,
    api: &Api,
    ids: &[String],
    timeout: Duration,
) -> Vec<serde_json::Value> {
    wait_until("every grant to be expired", timeout, || {
        let ids = ids.to_vec();
        let api = api.clone();
        async move {
            let views = get_all(&api, &ids).await;
            let not: Vec<String> = views
                .iter()
                .filter(|v| state(v) != "expired")
                .map(|v| format!("{} {}", v["id"], state(v)))
                .collect();
            let files: Vec<&String> = ids
                .iter()
                .filter(|id| env.grant_file(id).exists())
                .collect();
            if not.is_empty() && files.is_empty() {
                Ok(views)
            } else {
                Err(format!(
                    "{} not expired {:?}; {} grant files still present",
                    not.len(),
                    not.iter().take(5).collect::<Vec<_>>(),
                    files.len()
                ))
            }
        }
    })
    .await
}

/// Exactly one activation and one expiry per request, in the ledger.
fn assert_one_activation_one_expiry(views: &[serde_json::Value]) {
    for v in views {
        assert_eq!(state(v), "expired", "{}: {:?}", v["id"], kinds(v));
        assert_eq!(
            count_kind(v, "grant.activated"),
            1,
            "{}: expected exactly one grant.activated: {:?}",
            v["id"],
            kinds(v)
        );
        assert_eq!(
            count_kind(v, "grant.expired"),
            1,
            "{}: expected exactly one grant.expired: {:?}",
            v["id"],
            kinds(v)
        );
        assert_eq!(
            count_kind(v, "request.approved"),
            1,
            "{}: {:?}",
            v["id"],
            kinds(v)
        );
    }
}

/// kill -9 while grants are active; nothing revokes them while the server is
/// down; after a restart every due grant is revoked within seconds.
async fn kill9_durability(database: Option<String>) {
    let env = TestEnv::new(database);
    let alice = env.token("alice");
    let bob = env.token("bob");
    let mut server = Server::start(&env, "first", &[]);
    let (ids, first_end, last_end) = create_and_activate(
        &env,
        &[Api::new(&server.url, &alice)],
        &[Api::new(&server.url, &bob)],
        20,
        |_| "8s".into(),
    )
    .await;
    assert!(
        now_ms() < first_end,
        "too slow: a grant was due before the kill, the test would prove nothing"
    );
    server.kill9();
    let killed_at = now_ms();
    // Wait past every end time with the server down.
    let wait = (last_end - now_ms()).max(0) + 1_500;
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    let present = ids.iter().filter(|id| env.grant_file(id).exists()).count();
    assert_eq!(
        present,
        ids.len(),
        "grants were revoked while no server ran (killed at {killed_at})"
    );
    assert_eq!(
        env.calls().iter().filter(|(a, _)| a == "revoke").count(),
        0,
        "revoke calls before the restart"
    );

    let restarted = Instant::now();
    let server2 = Server::start(&env, "restarted", &["--lease-ms", "1000"]);
    let api = Api::new(&server2.url, &bob);
    let views = wait_all_expired(&env, &api, &ids, Duration::from_secs(15)).await;
    eprintln!(
        "kill -9 durability on {}: {} overdue grants revoked {:?} after the restart began",
        env.database.split(':').next().unwrap_or("?"),
        ids.len(),
        restarted.elapsed()
    );
    assert_one_activation_one_expiry(&views);
    for id in &ids {
        assert_eq!(env.count_calls("grant", id), 1, "{id}: grant calls");
        assert!(env.count_calls("revoke", id) >= 1, "{id}: no revoke call");
    }
    for v in &views {
        let ends = v["ends_at"].as_i64().expect("ends_at");
        let ended = v["ended_at"].as_i64().expect("ended_at");
        assert!(ended >= ends, "{}: ended before its end time", v["id"]);
    }
    drop(server2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_then_restart_revokes_due_grants_sqlite() {
    kill9_durability(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_then_restart_revokes_due_grants_postgres() {
    let db = fresh_pg("twokey_proc_kill").await;
    kill9_durability(Some(db)).await;
}

/// Two replicas on one PostgreSQL database: requests and approvals spread over
/// both; each grant is activated once and expired once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_activate_or_expire_twice() {
    let env = TestEnv::new(Some(fresh_pg("twokey_proc_replicas").await));
    let alice = env.token("alice");
    let bob = env.token("bob");
    let carol = env.token("carol");
    // Start one first: it bootstraps the policy into the empty database.
    let a = Server::start(&env, "a", &["--node", "a", "--lease-ms", "5000"]);
    let b = Server::start(&env, "b", &["--node", "b", "--lease-ms", "5000"]);
    let creators = [Api::new(&a.url, &alice), Api::new(&b.url, &alice)];
    let approvers = [Api::new(&a.url, &bob), Api::new(&b.url, &carol)];
    let (ids, _, _) = create_and_activate(&env, &creators, &approvers, 50, |i| {
        format!("{}s", 3 + i % 3)
    })
    .await;
    let views = wait_all_expired(&env, &creators[1], &ids, Duration::from_secs(60)).await;
    assert_one_activation_one_expiry(&views);
    let mut grants = BTreeMap::new();
    let mut revokes = BTreeMap::new();
    for (action, id) in env.calls() {
        match action.as_str() {
            "grant" => *grants.entry(id).or_insert(0usize) += 1,
            "revoke" => *revokes.entry(id).or_insert(0usize) += 1,
            _ => {}
        }
    }
    for id in &ids {
        // No provider failures happen here, so leases and versioned commits
        // must give exactly one grant and one revoke call per request.
        assert_eq!(
            grants.get(id).copied().unwrap_or(0),
            1,
            "{id}: granted other than once across the two replicas"
        );
        assert_eq!(
            revokes.get(id).copied().unwrap_or(0),
            1,
            "{id}: revoked other than once across the two replicas"
        );
    }
    let total_g: usize = grants.values().sum();
    let total_r: usize = revokes.values().sum();
    eprintln!(
        "two replicas: {} requests; provider calls: {total_g} grant ({} requests granted more than once), {total_r} revoke ({} requests revoked more than once)",
        ids.len(),
        grants.values().filter(|n| **n > 1).count(),
        revokes.values().filter(|n| **n > 1).count(),
    );
    // Which replica did the work (grant.activated entries name no node, so
    // count the servers' scheduler warnings instead, for the report).
    for s in [&a, &b] {
        let log = s.log_text();
        let warns: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        eprintln!(
            "replica {}: {} WARN/ERROR log lines, first: {:?}",
            s.name,
            warns.len(),
            warns.iter().take(3).collect::<Vec<_>>()
        );
    }
}

/// A revoke that fails stays `revoking` with the error shown, alerts after 3
/// failures, and completes once the provider works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_revoke_is_retried_alerted_and_never_marked_expired() {
    let env = TestEnv::new(None);
    let alice = env.token("alice");
    let bob = env.token("bob");
    let server = Server::start(&env, "single", &["--backoff-ms", "100"]);
    let api = Api::new(&server.url, &bob);
    let (ids, _, end) = create_and_activate(
        &env,
        &[Api::new(&server.url, &alice)],
        std::slice::from_ref(&api),
        1,
        |_| "3s".into(),
    )
    .await;
    let id = ids[0].clone();
    std::fs::write(env.path().join("fail-revoke"), "").expect("create flag");
    // Past the end: revoking, never expired, error shown, alert after 3 failures.
    let v = wait_until(
        "grant.revoke_failed in the timeline",
        Duration::from_secs(20),
        || {
            let api = api.clone();
            let id = id.clone();
            async move {
                let v = api.get(&id).await;
                assert_ne!(state(&v), "expired", "marked expired while revoke fails");
                if count_kind(&v, "grant.revoke_failed") >= 1 {
                    Ok(v)
                } else {
                    Err(format!("state {}, timeline {:?}", state(&v), kinds(&v)))
                }
            }
        },
    )
    .await;
    assert!(now_ms() >= end, "revoke_failed before the end time");
    assert_eq!(state(&v), "revoking", "{:?}", kinds(&v));
    let err = v["last_error"].as_str().unwrap_or("");
    assert!(
        err.contains("the test says no"),
        "last_error should show the provider's error, got {:?}",
        v["last_error"]
    );
    assert!(
        env.count_calls("revoke-failed", &id) >= 3,
        "alert before 3 failures"
    );
    assert!(
        env.grant_file(&id).exists(),
        "grant file gone while failing"
    );
    // It stays revoking while the provider keeps failing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let v = api.get(&id).await;
    assert_eq!(state(&v), "revoking");
    assert_eq!(count_kind(&v, "grant.expired"), 0);
    // The provider recovers: the grant ends.
    std::fs::remove_file(env.path().join("fail-revoke")).expect("remove flag");
    let views = wait_all_expired(&env, &api, &ids, Duration::from_secs(30)).await;
    let v = &views[0];
    assert_eq!(count_kind(v, "grant.expired"), 1, "{:?}", kinds(v));
    assert!(
        v["last_error"].is_null(),
        "last_error after success: {}",
        v["last_error"]
    );
    eprintln!(
        "failing revoke: {} failed revoke calls, {} revoke_failed alerts, timeline {:?}",
        env.count_calls("revoke-failed", &id),
        count_kind(v, "grant.revoke_failed"),
        kinds(v)
    );
}
