//! Issue 10 through the real API, on SQLite and PostgreSQL: a provider
//! password in the policy never reaches any reader (requester or admin) on
//! any endpoint; people read only their own requests and those they may
//! review, while admins and auditors read everything and the ledger; reasons
//! and comments are bounded; the body limit is a 413 problem; the `Bearer`
//! scheme is case-insensitive.

use crate::support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{policy, start, urls};

/// A frank auditor; erin (eng) is neither approver nor auditor.
const AUDITORS: &str = r#"
[auditors]
groups = ["audit"]

[[identity]]
name = "frank"
groups = ["audit"]
"#;

const PASSWORD: &str = "Hunter2-pg-admin-pw";

/// Reads every view of the policy, requests and the ledger as `who`, and the
/// stored ledger rows: none may hold the password.
async fn read_everything(h: &support::Harness, url: &str, who: &str) {
    for path in [
        "/v1/policy",
        "/v1/policy/proposals",
        "/v1/ledger?limit=1000",
        "/v1/requests?scope=all",
    ] {
        let (_, v) = h.call(who, Method::GET, path, None).await;
        assert!(
            !v.to_string().contains(PASSWORD),
            "{url}: {who} read the password at {path}: {v}"
        );
    }
    let rows = h.broker.store().ledger(0, 10_000).await.expect("ledger");
    let text = serde_json::to_string(&rows).expect("json");
    assert!(!text.contains(PASSWORD), "{url}: the ledger holds it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_a_proposed_policy_reaches_no_reader() {
    let (_d, urls) = urls("tk_secret_views").await;
    for url in urls {
        let h = start(url.clone(), &policy(AUDITORS), vec![]).await;
        let base = h.broker.policy().policy.text.clone();
        let proposed = format!(
            "{base}\n[[entitlement]]\nname = \"db\"\nprovider = \"postgres\"\nrequester_groups = [\"eng\"]\nmax_duration = \"1h\"\napproval = {{ count = 1, from = [\"approvers\"] }}\n# admin login: postgres://admin:{PASSWORD}@db.internal/app\n[entitlement.target]\nurl = \"postgres://admin:{PASSWORD}@127.0.0.1:1/app\"\nmode = \"login\"\n"
        );
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                "/v1/policy/proposals",
                Some(json!({"text": proposed})),
            )
            .await;
        assert_eq!(s, 201, "{url}: {v}");
        assert!(
            !v.to_string().contains(PASSWORD),
            "{url}: propose answer {v}"
        );
        assert!(
            v["text"]
                .as_str()
                .unwrap_or("")
                .contains("postgres://admin:***@127.0.0.1:1/app"),
            "{v}"
        );
        assert_eq!(
            v["credential_changes"]["entitlement[db].target.url"],
            "added"
        );
        let id = v["id"].as_str().expect("id").to_string();
        read_everything(&h, &url, "alice").await;
        read_everything(&h, &url, "bob").await;
        let (s, v) = h
            .call(
                "carol",
                Method::POST,
                &format!("/v1/policy/proposals/{id}/approve"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{url}: {v}");
        assert_eq!(v["state"], "applied");
        assert!(
            !v.to_string().contains(PASSWORD),
            "{url}: approve answer {v}"
        );
        read_everything(&h, &url, "alice").await;
        read_everything(&h, &url, "carol").await;
        let (_, pol) = h.call("alice", Method::GET, "/v1/policy", None).await;
        assert_eq!(
            pol["entitlements"]["db"]["target"]["url"],
            "postgres://admin:***@127.0.0.1:1/app"
        );
        // The policy in force still works with the real value (it is kept
        // in the store for applying): the provider was built from it.
        assert!(h.broker.policy().policy.text.contains(PASSWORD));

        // A second proposal that only changes the password shows "changed".
        let next = h
            .broker
            .policy()
            .policy
            .text
            .replace(PASSWORD, "another-pw-entirely");
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                "/v1/policy/proposals",
                Some(json!({"text": next})),
            )
            .await;
        assert_eq!(s, 201, "{url}: {v}");
        assert_eq!(
            v["credential_changes"]["entitlement[db].target.url"], "changed",
            "{v}"
        );
        assert!(!v.to_string().contains("another-pw-entirely"), "{v}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_read_their_own_and_reviewable_requests_auditors_read_all() {
    let (_d, urls) = urls("tk_read_access").await;
    for url in urls {
        let h = start(url.clone(), &policy(AUDITORS), vec![]).await;
        let id = h.request("alice", "demo", "10m").await;
        let show = format!("/v1/requests/{id}");
        // Each reader is told what they may do, as the core decides.
        for (who, status, actions) in [
            ("alice", 200, json!(["cancel"])),         // requester
            ("dave", 200, json!(["approve", "deny"])), // eligible approver
            ("bob", 200, json!(["approve", "deny"])),  // admin (and approver)
            ("frank", 200, json!([])),                 // auditor
            ("erin", 403, Value::Null),                // same team, may not review
        ] {
            let (s, v) = h.call(who, Method::GET, &show, None).await;
            assert_eq!(s, status, "{url}: {who} GET {show}: {v}");
            if s == 200 {
                assert_eq!(v["actions"], actions, "{url}: {who}'s actions");
            }
            if s == 403 {
                assert!(!v.to_string().contains("INC-1"), "{v}");
                assert_eq!(v["status"], 403);
            }
        }
        for path in [
            "/v1/requests?scope=all",
            "/v1/requests?scope=active",
            "/v1/ledger",
        ] {
            for (who, status) in [
                ("alice", 403),
                ("erin", 403),
                ("dave", 403),
                ("bob", 200),
                ("frank", 200),
            ] {
                let (s, v) = h.call(who, Method::GET, path, None).await;
                assert_eq!(s, status, "{url}: {who} GET {path}: {v}");
                if s == 403 {
                    assert!(
                        v["detail"].as_str().unwrap_or("").contains("auditors"),
                        "{v}"
                    );
                }
            }
        }
        let (_, all) = h
            .call("frank", Method::GET, "/v1/requests?scope=all", None)
            .await;
        assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
        let (_, mine) = h
            .call("erin", Method::GET, "/v1/requests?scope=mine", None)
            .await;
        assert_eq!(mine, json!([]), "erin sees none of alice's");
        let (_, waiting) = h
            .call("dave", Method::GET, "/v1/requests?scope=waiting", None)
            .await;
        assert_eq!(waiting[0]["id"], id.as_str(), "dave may review it");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasons_comments_bodies_and_the_bearer_scheme_are_bounded() {
    let (_d, urls) = urls("tk_bounds").await;
    for url in urls {
        let limits = "\n[limits]\nreason = 100\ncomment = 50\n";
        let h = start(url.clone(), &policy(limits), vec![]).await;
        let ask = |reason: String| {
            h.call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "demo", "reason": reason})),
            )
        };
        let (s, v) = ask("x".repeat(101)).await;
        assert_eq!(s, 422, "{url}: {v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or("")
                .contains("reason is 101 characters"),
            "{v}"
        );
        let (s, v) = ask("INC-1\u{0}".into()).await;
        assert_eq!(s, 422, "{url}: a NUL: {v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or("")
                .contains("reason contains a control character"),
            "{v}"
        );
        let (s, _) = ask("x".repeat(100)).await;
        assert_eq!(s, 201, "{url}: at the limit");
        let id = h.request("alice", "demo", "10m").await;
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                &format!("/v1/requests/{id}/approve"),
                Some(json!({"comment": "y".repeat(51)})),
            )
            .await;
        assert_eq!(s, 422, "{url}: {v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap_or("")
                .contains("comment is 51 characters"),
            "{v}"
        );
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                &format!("/v1/requests/{id}/deny"),
                Some(json!({"comment": "no\u{0}"})),
            )
            .await;
        assert_eq!(s, 422, "{url}: {v}");
        // Nothing half-applied: still pending, no review recorded.
        let v = h.show(&id).await;
        assert_eq!(v["state"], "pending", "{v}");
        assert_eq!(v["reviews"], json!([]), "{v}");

        // A body over the limit: 413 as problem details.
        let (status, ctype, body) =
            support::post_declaring(&h.base, "/v1/requests", &h.tokens["alice"], 2 * 1024 * 1024)
                .await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(ctype, "application/problem+json");
        let v: serde_json::Value = serde_json::from_str(&body).expect("problem json");
        assert_eq!(v["status"], 413, "{v}");

        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let r = h
                .http
                .get(format!("{}/v1/whoami", h.base))
                .header("authorization", format!("{scheme} {}", h.tokens["alice"]))
                .send()
                .await
                .expect("up");
            assert_eq!(r.status().as_u16(), 200, "{scheme}");
        }
        let r = h
            .http
            .get(format!("{}/v1/whoami", h.base))
            .header("authorization", format!("Basic {}", h.tokens["alice"]))
            .send()
            .await
            .expect("up");
        assert_eq!(r.status().as_u16(), 401);
        h.stop().await;
    }
}
