//! The broker end to end over its HTTP API, on SQLite and on PostgreSQL.
//! Each test reads like the product: who asks, who may approve, what the
//! target sees.

use crate::support;
use crate::support::State;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::{policy, start, urls, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_requests_bob_approves_grant_lives_then_is_revoked() {
    let (_d, urls) = urls("tk_cycle").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let id = h.request("alice", "demo", "30m").await;
        assert_eq!(h.show(&id).await["state"], "pending");

        // alice cannot approve her own request, whichever of her tokens she uses.
        let (s, v) = h.approve("alice", &id).await;
        assert_eq!(
            s,
            403,
            "{}: self-approval must be refused: {v}",
            h.backend()
        );
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or("")
                .contains("a different approver is required"),
            "{v}"
        );
        let second = twokey_server::new_token();
        let alice = h
            .broker
            .policy()
            .policy
            .identity("alice")
            .expect("alice")
            .actor();
        h.broker
            .store()
            .put_token(
                &twokey_server::token_hash(&second),
                &alice,
                h.broker.now(),
                None,
            )
            .await
            .expect("token");
        let resp = h
            .http
            .post(format!("{}/v1/requests/{id}/approve", h.base))
            .bearer_auth(&second)
            .json(&json!({}))
            .send()
            .await
            .expect("reachable");
        assert_eq!(
            resp.status().as_u16(),
            403,
            "second token of the same identity must be refused too"
        );
        // erin shares no approver group: not eligible.
        let (s, _) = h.approve("erin", &id).await;
        assert_eq!(s, 403);
        assert!(!h.grant_file(&id), "nothing may be granted before approval");
        assert_eq!(h.show(&id).await["state"], "pending");

        let (s, v) = h.approve("bob", &id).await;
        assert_eq!(s, 200, "{v}");
        let v = h.wait_state(&id, State::Active, 10).await;
        assert!(h.grant_file(&id), "the provider applied the grant");
        // Duration counts from activation, not from the request.
        let activated = v["activated_at"].as_i64().expect("activated_at");
        assert_eq!(
            v["ends_at"].as_i64().expect("ends_at") - activated,
            30 * 60 * 1000
        );
        assert!(activated >= v["created_at"].as_i64().expect("created_at"));
        let kinds = Harness::kinds(&v);
        assert_eq!(
            kinds,
            [
                "request.created",
                "review.refused",
                "review.refused",
                "review.approved",
                "request.approved",
                "grant.activated"
            ],
            "{}",
            h.backend()
        );
        // Every entry carries the policy hash it was decided under.
        for e in v["timeline"].as_array().expect("timeline") {
            assert_eq!(e["policy_hash"], h.broker.policy().policy.hash);
        }

        // bob cannot approve twice; a second review is refused.
        let (s, _) = h.approve("bob", &id).await;
        assert_eq!(s, 409);

        // carol revokes; the grant ends only once the provider confirmed.
        let (s, v) = h
            .call(
                "carol",
                Method::POST,
                &format!("/v1/requests/{id}/revoke"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let v = h.wait_state(&id, State::Revoked, 10).await;
        assert!(!h.grant_file(&id), "access removed at the target");
        assert!(Harness::kinds(&v).ends_with(&[
            "grant.revoke_requested".to_string(),
            "grant.revoked".to_string()
        ]));
        // A revoked request can never become active again.
        let (s, _) = h.approve("carol", &id).await;
        assert_eq!(s, 409);
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_approvals_activate_exactly_once() {
    let (_d, urls) = urls("tk_race").await;
    for url in urls {
        let h = Arc::new(start(url, &policy(""), vec![]).await);
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(h.request("alice", "two-key", "10m").await);
        }
        // bob, carol and dave all approve every request at the same time.
        let mut tasks = Vec::new();
        for id in &ids {
            for who in ["bob", "carol", "dave", "bob"] {
                let h = h.clone();
                let id = id.clone();
                tasks.push(tokio::spawn(async move { h.approve(who, &id).await.0 }));
            }
        }
        for t in tasks {
            let s = t.await.expect("task");
            assert!(matches!(s, 200 | 409 | 403), "unexpected status {s}");
        }
        for id in &ids {
            let v = h.wait_state(id, State::Active, 15).await;
            let kinds = Harness::kinds(&v);
            assert_eq!(
                kinds.iter().filter(|k| *k == "grant.activated").count(),
                1,
                "{}: {kinds:?}",
                h.backend()
            );
            assert_eq!(
                kinds.iter().filter(|k| *k == "request.approved").count(),
                1,
                "{kinds:?}"
            );
            let approvers: std::collections::BTreeSet<String> = v["reviews"]
                .as_array()
                .expect("reviews")
                .iter()
                .map(|r| r["reviewer"]["subject"].as_str().unwrap_or("").to_string())
                .collect();
            assert_eq!(
                approvers.len(),
                v["reviews"].as_array().map(|a| a.len()).unwrap_or(0),
                "each identity counts once"
            );
            assert!(approvers.len() >= 2 && !approvers.contains("alice"));
        }
        let log = std::fs::read_to_string(h.dir.join("calls.log")).unwrap_or_default();
        for id in &ids {
            assert_eq!(
                log.lines().filter(|l| *l == format!("grant {id}")).count(),
                1,
                "provider applied {id} once"
            );
        }
        if let Ok(h) = Arc::try_unwrap(h) {
            h.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_happens_when_the_ledger_cannot_be_written() {
    let (_d, urls) = urls("tk_failclosed").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let pending = h.request("alice", "demo", "10m").await;
        support::break_ledger(&h).await;
        let before = h
            .broker
            .store()
            .requests(None, &[], 100)
            .await
            .expect("list")
            .len();
        let (s, v) = h
            .call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "demo", "reason": "x"})),
            )
            .await;
        assert_eq!(s, 503, "{}: {v}", h.backend());
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or("")
                .contains("nothing was changed"),
            "{v}"
        );
        assert_eq!(
            h.broker
                .store()
                .requests(None, &[], 100)
                .await
                .expect("list")
                .len(),
            before,
            "no request row without its ledger entry"
        );

        let (s, _) = h.approve("bob", &pending).await;
        assert_eq!(s, 503);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            h.show(&pending).await["state"],
            "pending",
            "approval refused"
        );
        assert!(!h.grant_file(&pending), "nothing applied at the provider");

        // Ledger back: the same approval goes through.
        support::mend_ledger(&h).await;
        let (s, _) = h.approve("bob", &pending).await;
        assert_eq!(s, 200);
        h.wait_state(&pending, State::Active, 10).await;
        assert!(h.grant_file(&pending));
        // The ledger has no gap.
        let entries = h.broker.store().ledger(0, 1000).await.expect("ledger");
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.index, i as u64, "contiguous ledger");
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_expire_pending_requests_time_out_and_ended_requests_stay_ended() {
    let (_d, urls) = urls("tk_expiry").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let id = h.request("alice", "demo", "1s").await;
        h.approve("bob", &id).await;
        h.wait_state(&id, State::Active, 10).await;
        let v = h.wait_state(&id, State::Expired, 10).await;
        assert!(!h.grant_file(&id));
        let lag = v["ended_at"].as_i64().expect("ended") - v["ends_at"].as_i64().expect("ends");
        assert!((0..5000).contains(&lag), "revoked {lag} ms after its end");

        // "short" times out after 1 s without approval.
        let t = h.request("alice", "short", "5m").await;
        h.wait_state(&t, State::TimedOut, 10).await;
        assert_eq!(
            h.approve("bob", &t).await.0,
            409,
            "a timed-out request can never become active"
        );

        // Denied and cancelled requests cannot be approved afterwards.
        let d = h.request("alice", "demo", "5m").await;
        let (s, _) = h
            .call(
                "carol",
                Method::POST,
                &format!("/v1/requests/{d}/deny"),
                Some(json!({"comment": "no"})),
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(h.approve("bob", &d).await.0, 409);
        let c = h.request("alice", "demo", "5m").await;
        assert_eq!(
            h.call(
                "bob",
                Method::POST,
                &format!("/v1/requests/{c}/cancel"),
                None
            )
            .await
            .0,
            403,
            "only the requester cancels"
        );
        assert_eq!(
            h.call(
                "alice",
                Method::POST,
                &format!("/v1/requests/{c}/cancel"),
                None
            )
            .await
            .0,
            200
        );
        assert_eq!(h.approve("bob", &c).await.0, 409);
        for x in [&t, &d, &c] {
            assert!(!h.grant_file(x));
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_members_cannot_approve_when_the_rule_excludes_the_team() {
    let (_d, urls) = urls("tk_team").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let id = h.request("alice", "short", "5m").await;
        // dave approves, but he is in alice's team "eng".
        let (s, v) = h.approve("dave", &id).await;
        assert_eq!(s, 403, "{v}");
        assert!(v["detail"].as_str().unwrap_or("").contains("eng"), "{v}");
        assert_eq!(h.approve("carol", &id).await.0, 200);
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_needs_approval_and_overlapping_grants_do_not_revoke_each_other() {
    let (_d, urls) = urls("tk_extend").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let first = h.request("alice", "demo", "10m").await;
        h.approve("bob", &first).await;
        let f = h.wait_state(&first, State::Active, 10).await;
        let (s, v) = h
            .call(
                "alice",
                Method::POST,
                &format!("/v1/requests/{first}/extend"),
                Some(json!({"duration": "20m"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let ext = v["id"].as_str().expect("id").to_string();
        assert_eq!(v["state"], "pending", "an extension needs approval again");
        assert_eq!(v["extends"], first.as_str());
        assert_eq!(h.approve("alice", &ext).await.0, 403);
        h.approve("carol", &ext).await;
        h.wait_state(&ext, State::Active, 10).await;
        let f2 = h.show(&first).await;
        assert_eq!(
            f2["ends_at"], f["ends_at"],
            "the current grant is not cut short"
        );
        assert_eq!(f2["state"], "active");
        // Ending the first grant leaves the extension's access in place.
        h.call(
            "alice",
            Method::POST,
            &format!("/v1/requests/{first}/revoke"),
            None,
        )
        .await;
        h.wait_state(&first, State::Revoked, 10).await;
        assert!(!h.grant_file(&first));
        assert!(h.grant_file(&ext), "the overlapping grant keeps its access");
        assert_eq!(h.show(&ext).await["state"], "active");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_revoke_is_retried_alerted_and_never_reported_done_early() {
    let (_d, urls) = urls("tk_retry").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let id = h.request("alice", "demo", "10m").await;
        h.approve("bob", &id).await;
        h.wait_state(&id, State::Active, 10).await;
        std::fs::write(h.dir.join("fail-revoke"), "").expect("flag");
        h.call(
            "carol",
            Method::POST,
            &format!("/v1/requests/{id}/revoke"),
            None,
        )
        .await;
        // Retries with backoff; after 3 failures an alerting ledger entry.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let v = h.show(&id).await;
            assert_eq!(
                v["state"], "revoking",
                "never reported revoked while the target still has the access"
            );
            if Harness::kinds(&v)
                .iter()
                .any(|k| k == "grant.revoke_failed")
            {
                assert!(
                    v["last_error"]
                        .as_str()
                        .unwrap_or("")
                        .contains("target unreachable"),
                    "{v}"
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no revoke_failed alert: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(h.grant_file(&id));
        std::fs::remove_file(h.dir.join("fail-revoke")).expect("unflag");
        h.wait_state(&id, State::Revoked, 15).await;
        assert!(!h.grant_file(&id));
        h.stop().await;
    }
}

/// A local webhook receiver: records (signature header, body).
async fn receiver() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    use axum::routing::post;
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let g = g.clone();
            async move {
                let sig = headers
                    .get("x-twokey-signature-256")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                g.lock().expect("lock").push((sig, body));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_activates_at_once_alerts_and_needs_a_second_persons_review() {
    let (_d, urls) = urls("tk_glass").await;
    for url in urls {
        let (hook, got) = receiver().await;
        let sink: Arc<dyn twokey_notify::AlertSink> =
            Arc::new(twokey_notify::WebhookSink::new(hook, "s3cret"));
        let h = start(url, &policy(""), vec![sink]).await;
        let (s, v) = h
            .call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "demo", "reason": "prod down", "break_glass": true})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().expect("id").to_string();
        let v = h.wait_state(&id, State::Active, 10).await;
        assert_eq!(v["break_glass"], true);
        assert_eq!(v["needs_review"], true);
        // Break-glass needs a reason; a self-approval attempt also alerts.
        let (s, _) = h
            .call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "demo", "break_glass": true})),
            )
            .await;
        assert_eq!(s, 422);
        let (s, _) = h
            .call(
                "alice",
                Method::POST,
                &format!("/v1/requests/{id}/review-break-glass"),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            s, 403,
            "the requester cannot review their own break-glass use"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let kinds: Vec<String> = got
                .lock()
                .expect("lock")
                .iter()
                .map(|(sig, body)| {
                    assert!(
                        twokey_notify::verify_signature(b"s3cret", body.as_bytes(), sig),
                        "signed with the shared secret"
                    );
                    assert!(!twokey_notify::verify_signature(
                        b"wrong",
                        body.as_bytes(),
                        sig
                    ));
                    serde_json::from_str::<serde_json::Value>(body).expect("json")["kind"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect();
            if kinds.iter().any(|k| k == "request_break_glass")
                && kinds.iter().any(|k| k == "review_refused")
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "alerts not delivered: {kinds:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                &format!("/v1/requests/{id}/review-break-glass"),
                Some(json!({"comment": "seen"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["needs_review"], false);
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_policy_takes_two_admins() {
    let (_d, urls) = urls("tk_policy").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let extra = r#"
[[entitlement]]
name = "new-thing"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 1, from = ["approvers"] }
[entitlement.target]
grant = ["true"]
revoke = ["true"]
"#;
        let text = policy(extra);
        // Not an admin: refused.
        let (s, _) = h
            .call(
                "alice",
                Method::POST,
                "/v1/policy/proposals",
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(s, 403);
        // An invalid policy is refused with its line.
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                "/v1/policy/proposals",
                Some(json!({"text": "[[entitlement]]\nname = 1\n"})),
            )
            .await;
        assert_eq!(s, 422);
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or("")
                .contains("proposed policy:"),
            "{v}"
        );
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                "/v1/policy/proposals",
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let pid = v["id"].as_str().expect("id").to_string();
        // The proposer cannot approve it; the policy is unchanged.
        let (s, _) = h
            .call(
                "bob",
                Method::POST,
                &format!("/v1/policy/proposals/{pid}/approve"),
                None,
            )
            .await;
        assert_eq!(s, 403);
        let (s, _) = h
            .call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "new-thing"})),
            )
            .await;
        assert_eq!(s, 404, "not in force before a second admin approves");
        let (s, v) = h
            .call(
                "carol",
                Method::POST,
                &format!("/v1/policy/proposals/{pid}/approve"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["state"], "applied");
        let (s, _) = h
            .call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "new-thing"})),
            )
            .await;
        assert_eq!(s, 201);
        let kinds: Vec<String> = h
            .broker
            .store()
            .ledger(0, 1000)
            .await
            .expect("ledger")
            .into_iter()
            .map(|e| e.kind)
            .collect();
        for k in [
            "policy.loaded",
            "policy.proposed",
            "review.refused",
            "policy.approved",
            "policy.applied",
        ] {
            assert!(kinds.iter().any(|x| x == k), "ledger lacks {k}: {kinds:?}");
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_basics_problem_details_health_metrics_openapi() {
    let (_d, urls) = urls("tk_api").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let r = h
            .http
            .get(format!("{}/v1/requests", h.base))
            .send()
            .await
            .expect("up");
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let (s, v) = h
            .call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "demo", "duration": "3h", "reason": "x"})),
            )
            .await;
        assert_eq!(s, 422);
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or("")
                .contains("over the maximum"),
            "{v}"
        );
        assert_eq!(v["status"], 422);
        let (s, _) = h
            .call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "nope"})),
            )
            .await;
        assert_eq!(s, 404);
        let (s, _) = h
            .call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "demo"})),
            )
            .await;
        assert_eq!(s, 422, "reason required");
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "demo", "reason": "x"})),
            )
            .await;
        assert_eq!(s, 403, "bob may not request demo: {v}");
        for p in ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"] {
            let r = h
                .http
                .get(format!("{}{p}", h.base))
                .send()
                .await
                .expect("up");
            assert_eq!(r.status().as_u16(), 200, "{p}");
        }
        let metrics = h
            .http
            .get(format!("{}/metrics", h.base))
            .send()
            .await
            .expect("up")
            .text()
            .await
            .expect("text");
        assert!(
            metrics.contains("twokey_requests_created_total"),
            "{metrics}"
        );
        let doc = serde_json::to_value(twokey_server::api::openapi_doc()).expect("openapi json");
        for p in [
            "/v1/requests",
            "/v1/requests/{id}/approve",
            "/v1/policy/proposals",
            "/v1/ledger",
            "/v1/whoami",
        ] {
            assert!(doc["paths"].get(p).is_some(), "OpenAPI lacks {p}");
        }
        // Malformed input: a problem-details 400 that says what is wrong.
        let r = h
            .http
            .post(format!("{}/v1/requests", h.base))
            .bearer_auth(&h.tokens["alice"])
            .header("content-type", "application/json")
            .body("{\"entitlement\": 42}")
            .send()
            .await
            .expect("up");
        assert_eq!(r.status().as_u16(), 400);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let v: serde_json::Value = r.json().await.expect("json");
        assert!(
            v["detail"].as_str().unwrap_or("").contains("entitlement"),
            "{v}"
        );
        let (s, v) = h.call("alice", Method::GET, "/v1/nope", None).await;
        assert_eq!(s, 404);
        assert!(
            v["detail"].as_str().unwrap_or("").contains("/v1/nope"),
            "{v}"
        );
        let (s, v) = h.call("alice", Method::GET, "/v1/whoami", None).await;
        assert_eq!(s, 200);
        assert_eq!(v["key"]["subject"], "alice");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_login_works_during_the_grant_and_its_session_is_gone_after() {
    use sqlx::Connection;
    let (_d, urls) = urls("tk_pglogin").await;
    let admin = twokey_store::testing::pg_server_url();
    let extra = format!(
        r#"
[[entitlement]]
name = "db"
provider = "postgres"
requester_groups = ["eng"]
max_duration = "1h"
reason_required = true
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
url = "{admin}"
mode = "login"
roles = []
"#
    );
    for url in urls {
        let h = start(url, &policy(&extra), vec![]).await;
        let id = h.request("alice", "db", "30m").await;
        h.approve("bob", &id).await;
        h.wait_state(&id, State::Active, 15).await;
        // The secret is for alice alone, and shown once.
        assert_eq!(
            h.call(
                "bob",
                Method::POST,
                &format!("/v1/requests/{id}/secret"),
                None
            )
            .await
            .0,
            403
        );
        let (s, v) = h
            .call(
                "alice",
                Method::POST,
                &format!("/v1/requests/{id}/secret"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let dsn = v["secret"].as_str().expect("secret").to_string();
        assert_eq!(
            h.call(
                "alice",
                Method::POST,
                &format!("/v1/requests/{id}/secret"),
                None
            )
            .await
            .0,
            409,
            "only once"
        );
        let role = twokey_providers::postgres::PostgresProvider::login_role_name(&id);
        assert!(dsn.contains(&role), "{dsn}");
        // VALID UNTIL is the grant's end: access ends even if twokey is down.
        let mut adm = sqlx::PgConnection::connect(&admin).await.expect("admin");
        let until: Option<String> =
            sqlx::query_scalar("SELECT rolvaliduntil::text FROM pg_roles WHERE rolname = $1")
                .bind(&role)
                .fetch_one(&mut adm)
                .await
                .expect("role exists");
        assert!(until.is_some(), "VALID UNTIL set");
        // Log in during the grant and keep the session open.
        let mut session = sqlx::PgConnection::connect(&dsn)
            .await
            .expect("login works during the grant");
        let who: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&mut session)
            .await
            .expect("query");
        assert_eq!(who, role);
        h.call(
            "alice",
            Method::POST,
            &format!("/v1/requests/{id}/revoke"),
            None,
        )
        .await;
        h.wait_state(&id, State::Revoked, 20).await;
        assert!(
            sqlx::query("SELECT 1").execute(&mut session).await.is_err(),
            "the open session is gone after the revoke"
        );
        assert!(
            sqlx::PgConnection::connect(&dsn).await.is_err(),
            "login fails after the revoke"
        );
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_identity_linked_to_the_requester_cannot_approve() {
    let (_d, urls) = urls("tk_linked").await;
    let extra = r#"
[[identity]]
name = "alice-ops"
subject = "alice.ops"
groups = ["approvers"]
links = ["twokey|alice"]
"#;
    for url in urls {
        let h = start(url, &policy(extra), vec![]).await;
        let id = h.request("alice", "demo", "10m").await;
        let (s, v) = h.approve("alice-ops", &id).await;
        assert_eq!(s, 403, "{}: {v}", h.backend());
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or("")
                .contains("a different approver"),
            "{v}"
        );
        assert!(
            Harness::kinds(&h.show(&id).await).contains(&"review.refused".to_string()),
            "refusal is in the ledger"
        );
        assert_eq!(h.show(&id).await["state"], "pending");
        h.stop().await;
    }
}

#[test]
fn the_test_people_are_the_demo_people() {
    let demo = twokey_server::dev::demo_policy(None);
    assert!(
        demo.contains(twokey_testkit::policy::PEOPLE),
        "the demo policy's people changed; change twokey_testkit::policy::PEOPLE with them:\n{demo}"
    );
}
