//! The auditor's evidence report through the API, on SQLite and PostgreSQL:
//! a period with an approved and expired grant, a revoked grant, a denied
//! request, a break-glass use with its review and a policy change gives
//! exactly those rows with the right fields, in JSON, CSV and HTML; people
//! who are not admins or auditors get 403; bad parameters get a 400 naming
//! them, and `from` after `to` a 422.

use crate::support;
use crate::support::State;

use reqwest::Method;
use serde_json::{json, Value};
use support::{policy, start, urls};
use twokey_server::report::rfc3339;

const AUDITORS: &str = r#"
[auditors]
groups = ["audit"]

[[identity]]
name = "frank"
groups = ["audit"]
"#;

fn who(v: &Value, name: &str) -> bool {
    v.as_str().is_some_and(|s| s.ends_with(&format!("|{name}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_has_exactly_the_periods_rows_for_auditors_only() {
    let (_d, urls) = urls("tk_report").await;
    for url in urls {
        let h = start(url.clone(), &policy(AUDITORS), vec![]).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let from = rfc3339(h.broker.now());

        // Approved, then expired.
        let expired = h.request("alice", "demo", "1s").await;
        assert_eq!(h.approve("bob", &expired).await.0, 200);
        // Approved, then revoked by carol.
        let revoked = h.request("alice", "demo", "30m").await;
        assert_eq!(h.approve("bob", &revoked).await.0, 200);
        h.wait_state(&revoked, State::Active, 10).await;
        let (s, v) = h
            .call(
                "carol",
                Method::POST,
                &format!("/v1/requests/{revoked}/revoke"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        // Denied by dave.
        let denied = h.request("alice", "demo", "30m").await;
        let (s, v) = h
            .call(
                "dave",
                Method::POST,
                &format!("/v1/requests/{denied}/deny"),
                Some(json!({"comment": "no ticket"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        // Break-glass, reviewed by carol.
        let (s, v) = h
            .call(
                "erin",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "demo", "reason": "prod down", "break_glass": true})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let glass = v["id"].as_str().expect("id").to_string();
        h.wait_state(&glass, State::Active, 10).await;
        let (s, v) = h
            .call(
                "carol",
                Method::POST,
                &format!("/v1/requests/{glass}/review-break-glass"),
                Some(json!({"comment": "justified"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        // A policy change: bob proposes, carol approves (applied).
        let text = format!("{}\n# report test\n", h.broker.policy().policy.text);
        let (s, v) = h
            .call(
                "bob",
                Method::POST,
                "/v1/policy/proposals",
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let proposal = v["id"].as_str().expect("id").to_string();
        let (s, v) = h
            .call(
                "carol",
                Method::POST,
                &format!("/v1/policy/proposals/{proposal}/approve"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        h.wait_state(&expired, State::Expired, 15).await;
        h.wait_state(&revoked, State::Revoked, 10).await;
        let to = rfc3339(h.broker.now() + 1);
        let q = format!("/v1/reports/access?from={from}&to={to}");

        // Auditor and admin read it; nobody else.
        let (s, r) = h.call("frank", Method::GET, &q, None).await;
        assert_eq!(s, 200, "{url}: {r}");
        let (s, _) = h.call("bob", Method::GET, &q, None).await;
        assert_eq!(s, 200);
        for other in ["alice", "dave", "erin"] {
            let (s, v) = h.call(other, Method::GET, &q, None).await;
            assert_eq!(s, 403, "{url}: {other} read the report: {v}");
        }
        let (s, _) = h.call("nobody", Method::GET, &q, None).await;
        assert_eq!(s, 401);

        let grants = r["grants"].as_array().expect("grants");
        let ids: Vec<&str> = grants
            .iter()
            .filter_map(|g| g["request_id"].as_str())
            .collect();
        assert_eq!(
            ids,
            [
                expired.as_str(),
                revoked.as_str(),
                denied.as_str(),
                glass.as_str()
            ],
            "{url}: {r}"
        );
        let row = |id: &str| grants.iter().find(|g| g["request_id"] == id).expect("row");

        let e = row(&expired);
        assert_eq!(e["outcome"], "expired", "{e}");
        assert!(who(&e["requester"], "alice"), "{e}");
        assert_eq!(e["entitlement"], "demo");
        assert_eq!(e["reason"], "INC-1 test");
        assert_eq!(e["approvals"].as_array().map(Vec::len), Some(1));
        assert!(who(&e["approvals"][0]["by"], "bob"), "{e}");
        assert_eq!(e["approvals"][0]["comment"], "ok");
        assert!(
            e["activated_at_ms"].is_i64() && e["ended_at_ms"].is_i64(),
            "{e}"
        );
        assert_eq!(e["started_before_period"], false);
        assert_eq!(e["open_after_period"], false);
        let kinds: Vec<&str> = e["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|x| x["kind"].as_str())
            .collect();
        assert_eq!(kinds.first(), Some(&"request.created"));
        assert_eq!(kinds.last(), Some(&"grant.expired"));
        for x in e["entries"].as_array().expect("entries") {
            assert!(
                x["index"].is_u64() && x["leaf_hash"].as_str().is_some_and(|l| l.len() == 64),
                "{x}"
            );
            // No checkpointer runs in this harness.
            assert!(
                x["checkpoint"].is_null() && x["matches_checkpoint"].is_null(),
                "{x}"
            );
        }

        let v = row(&revoked);
        assert_eq!(v["outcome"], "revoked", "{v}");
        assert!(who(&v["ended_by"], "carol"), "{v}");

        let d = row(&denied);
        assert_eq!(d["outcome"], "denied", "{d}");
        assert!(who(&d["ended_by"], "dave"), "{d}");
        assert_eq!(d["end_reason"], "no ticket");
        assert!(d["activated_at_ms"].is_null());

        let g = row(&glass);
        assert_eq!(g["break_glass"], true, "{g}");
        assert!(who(&g["requester"], "erin"));
        assert_eq!(g["approvals"].as_array().map(Vec::len), Some(0));
        assert!(who(&g["break_glass_reviews"][0]["by"], "carol"), "{g}");
        assert_eq!(g["break_glass_reviews"][0]["comment"], "justified");
        assert_eq!(g["outcome"], "active");
        assert_eq!(g["open_after_period"], true);

        let p = r["policy_changes"].as_array().expect("policy");
        assert_eq!(p.len(), 1, "{url}: {r}");
        assert_eq!(p[0]["proposal"], proposal.as_str());
        assert!(who(&p[0]["proposer"], "bob"));
        assert!(who(&p[0]["approvals"][0]["by"], "carol"), "{}", p[0]);
        assert_eq!(p[0]["outcome"], "applied");
        assert_eq!(r["integrity"]["ok"], true);

        // CSV: one row per grant and one for the policy change.
        let resp = h
            .http
            .get(format!("{}{q}&format=csv", h.base))
            .bearer_auth(&h.tokens["frank"])
            .send()
            .await
            .expect("csv");
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv"));
        let text = resp.text().await.expect("body");
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let sections: Vec<String> = rd
            .records()
            .map(|r| r.expect("row")[0].to_string())
            .collect();
        assert_eq!(
            sections,
            ["grant", "grant", "grant", "grant", "policy"],
            "{text}"
        );
        // HTML: printable, escaped.
        let resp = h
            .http
            .get(format!("{}{q}&format=html", h.base))
            .bearer_auth(&h.tokens["frank"])
            .send()
            .await
            .expect("html");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html"));
        let html = resp.text().await.expect("body");
        assert!(
            html.contains("@media print") && html.contains(&glass),
            "{html}"
        );

        // Bad parameters: a 400 naming the parameter; from after to: 422.
        for (path, status, names) in [
            (
                format!("/v1/reports/access?from=yesterday&to={to}"),
                400,
                "from",
            ),
            (
                format!("/v1/reports/access?from={from}&to=2026-13-40T00:00:00Z"),
                400,
                "to",
            ),
            (format!("/v1/reports/access?from={from}"), 400, "to"),
            (format!("{q}&format=xml"), 400, "format"),
            (
                format!("/v1/reports/access?from={to}&to={from}"),
                422,
                "from",
            ),
        ] {
            let (s, v) = h.call("frank", Method::GET, &path, None).await;
            assert_eq!(s, status, "{url}: {path}: {v}");
            assert!(
                v["detail"].as_str().is_some_and(|d| d.contains(names)),
                "{path}: {v}"
            );
        }
        // A non-auditor learns nothing, not even about the parameters.
        let (s, _) = h
            .call("alice", Method::GET, "/v1/reports/access?from=x&to=y", None)
            .await;
        assert_eq!(s, 403);
        h.stop().await;
    }
}
