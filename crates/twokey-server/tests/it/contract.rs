//! The API contract, on SQLite and PostgreSQL: the generated OpenAPI
//! document has every route the server answers (and nothing it does not),
//! every error of every route is RFC 9457 problem details, and an internal
//! error shows a correlation id, never the database's text, while the log
//! carries both. (Schemathesis runs against the same document in
//! `scripts/api-contract.sh`.)

use crate::support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::Method;
use serde_json::{json, Value};
use support::{policy, start, urls, Harness};

/// Every route the CLI and the UI call, and the operational ones.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/whoami"),
    ("get", "/v1/requests"),
    ("post", "/v1/requests"),
    ("get", "/v1/requests/{id}"),
    ("post", "/v1/requests/{id}/approve"),
    ("post", "/v1/requests/{id}/deny"),
    ("post", "/v1/requests/{id}/cancel"),
    ("post", "/v1/requests/{id}/revoke"),
    ("post", "/v1/requests/{id}/extend"),
    ("post", "/v1/requests/{id}/review-break-glass"),
    ("post", "/v1/requests/{id}/secret"),
    ("get", "/v1/policy"),
    ("get", "/v1/policy/proposals"),
    ("post", "/v1/policy/proposals"),
    ("post", "/v1/policy/proposals/{id}/approve"),
    ("post", "/v1/policy/proposals/{id}/reject"),
    ("get", "/v1/ledger"),
    ("get", "/v1/reports/access"),
    ("post", "/v1/activity"),
    ("get", "/v1/requests/{id}/activity"),
];

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

async fn served_doc(h: &Harness) -> Value {
    let r = h
        .http
        .get(format!("{}/v1/openapi.json", h.base))
        .send()
        .await
        .expect("up");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.expect("the document is JSON")
}

async fn raw(h: &Harness, method: &str, path: &str, token: bool) -> reqwest::Response {
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let mut rb = h.http.request(m, format!("{}{path}", h.base));
    if token {
        rb = rb.bearer_auth(&h.tokens["alice"]);
    }
    rb.send().await.expect("up")
}

/// Asserts `r` is problem details with `status`; returns the body.
async fn problem(r: reqwest::Response, status: u16, what: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "{what}");
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{what}"
    );
    let v: Value = r.json().await.expect("problem is JSON");
    assert_eq!(v["status"], status, "{what}: {v}");
    assert!(
        v["type"]
            .as_str()
            .unwrap_or("")
            .starts_with("https://twokey.dev/problems/"),
        "{what}: {v}"
    );
    assert!(!v["title"].as_str().unwrap_or("").is_empty(), "{what}: {v}");
    assert!(
        !v["detail"].as_str().unwrap_or("").is_empty(),
        "{what}: {v}"
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_every_documented_operation_is_served() {
    let (_d, urls) = urls("tk_contract_routes").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let id = h.request("alice", "demo", "30m").await;
        let doc = served_doc(&h).await;
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc,
            serde_json::to_value(twokey_server::api::openapi_doc()).expect("doc"),
            "the served document is the generated one"
        );
        let paths = doc["paths"].as_object().expect("paths");
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is not in the OpenAPI document"
            );
        }
        for (path, item) in paths {
            let concrete = path.replace("{id}", &id);
            for method in METHODS {
                let documented = item.get(*method);
                let r = raw(&h, method, &concrete, true).await;
                let status = r.status().as_u16();
                match documented {
                    // Served: never the fallback's 404 or a 405.
                    Some(op) => {
                        assert_ne!(status, 405, "{method} {path} is documented but not served");
                        let body = r.text().await.unwrap_or_default();
                        assert!(
                            !body.contains("no such endpoint"),
                            "{method} {path} is documented but not routed: {body}"
                        );
                        // What it answered is documented (as the status or 4XX/5XX).
                        let responses = op["responses"].as_object().expect("responses");
                        assert!(
                            responses.contains_key(&status.to_string()),
                            "{method} {path} answered {status}, which it does not document: {body}"
                        );
                        // Every error it documents is problem details.
                        for (code, resp) in responses {
                            if code.starts_with('4') || code.starts_with('5') {
                                assert!(
                                    resp["content"].get("application/problem+json").is_some(),
                                    "{method} {path} {code} is not problem details"
                                );
                            }
                        }
                        assert!(responses.contains_key("500"), "{method} {path} lacks 500");
                    }
                    // Not documented: a 405 problem naming the methods it has.
                    None => {
                        let allow = r
                            .headers()
                            .get("allow")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_lowercase();
                        let v = problem(r, 405, &format!("{method} {path}")).await;
                        for m in METHODS.iter().filter(|m| item.get(**m).is_some()) {
                            assert!(
                                allow.contains(m),
                                "{method} {path}: Allow {allow:?} lacks {m}: {v}"
                            );
                        }
                    }
                }
            }
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_problem_details_including_the_frameworks_own() {
    let (_d, urls) = urls("tk_contract_errors").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        let base = &h.base;
        let alice = &h.tokens["alice"];
        let post = |path: &str| h.http.post(format!("{base}{path}")).bearer_auth(alice);

        // Unknown routes, inside /v1 and outside it.
        for p in ["/v1/nope", "/nope", "/v1/requests/x/y/z"] {
            let v = problem(raw(&h, "get", p, true).await, 404, p).await;
            assert!(v["detail"].as_str().unwrap_or("").contains(p), "{v}");
        }
        // A method the route does not have.
        let r = raw(&h, "delete", "/v1/requests", true).await;
        let allow = r.headers()["allow"].to_str().unwrap_or("").to_string();
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        problem(r, 405, "DELETE /v1/requests").await;
        // No token, a token of another scheme, an unknown token.
        problem(raw(&h, "get", "/v1/whoami", false).await, 401, "no token").await;
        let r = h
            .http
            .get(format!("{base}/v1/whoami"))
            .header("authorization", "Basic YTpi")
            .send()
            .await
            .expect("up");
        problem(r, 401, "basic auth").await;
        let r = h
            .http
            .get(format!("{base}/v1/whoami"))
            .bearer_auth("tk_nope")
            .send()
            .await
            .expect("up");
        problem(r, 401, "unknown token").await;

        // Bodies: not JSON, not the right shape, not declared JSON, too large.
        let r = post("/v1/requests")
            .header("content-type", "application/json")
            .body("{\"entitlement\":")
            .send()
            .await
            .expect("up");
        problem(r, 400, "truncated JSON").await;
        let r = post("/v1/requests")
            .header("content-type", "application/json")
            .body("[1, 2]")
            .send()
            .await
            .expect("up");
        problem(r, 400, "JSON of the wrong shape").await;
        let r = post("/v1/requests")
            .body("{\"entitlement\":\"demo\"}")
            .send()
            .await
            .expect("up");
        problem(r, 415, "no content type").await;
        let (status, ctype, body) =
            support::post_declaring(base, "/v1/requests", alice, 2 * 1024 * 1024).await;
        assert_eq!(
            (status, ctype.as_str()),
            (413, "application/problem+json"),
            "2 MiB body: {body}"
        );
        // Optional bodies too (declared, not sent: the answer comes before the body).
        let (status, ctype, body) =
            support::post_declaring(base, "/v1/requests/x/approve", alice, 2 * 1024 * 1024).await;
        assert_eq!(
            (status, ctype.as_str()),
            (413, "application/problem+json"),
            "2 MiB comment: {body}"
        );

        // Query strings and paths that do not parse.
        for q in [
            "/v1/requests?scope=everything",
            "/v1/requests?scope=mine&scope=all",
            "/v1/ledger?limit=abc",
            "/v1/ledger?limit=0",
            "/v1/ledger?limit=1001",
            "/v1/ledger?from=-1",
            "/v1/ledger?from=9007199254740992",
        ] {
            problem(raw(&h, "get", q, true).await, 400, q).await;
        }
        problem(
            raw(&h, "get", "/v1/requests/%FF%FE", true).await,
            400,
            "bad path",
        )
        .await;
        // A duration that does not parse is a value the API cannot use.
        let (s, v) = h
            .call(
                "alice",
                Method::POST,
                "/v1/requests",
                Some(json!({"entitlement": "demo", "duration": "soon", "reason": "x"})),
            )
            .await;
        assert_eq!(s, 422, "{v}");
        h.stop().await;
    }
}

/// The log lines of this test binary (installed once).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogWriter(w.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_error_shows_a_correlation_id_that_the_log_has_never_the_database_text() {
    let logs = logs();
    let (_d, urls) = urls("tk_contract_internal").await;
    for url in urls {
        let h = start(url, &policy(""), vec![]).await;
        support::break_ledger(&h).await;
        let r = h
            .http
            .post(format!("{}/v1/requests", h.base))
            .bearer_auth(&h.tokens["alice"])
            .json(&json!({"entitlement": "demo", "reason": "x"}))
            .send()
            .await
            .expect("up");
        let v = problem(r, 503, "ledger down").await;
        let detail = v["detail"].as_str().unwrap_or("");
        assert!(detail.starts_with("internal error"), "{v}");
        assert!(detail.contains("nothing was changed"), "{v}");
        for leak in [
            "ledger unavailable",
            "trigger",
            "INSERT",
            "sqlite",
            "postgres",
        ] {
            assert!(
                !v.to_string().to_lowercase().contains(&leak.to_lowercase()),
                "{}: the client sees {leak:?}: {v}",
                h.backend()
            );
        }
        let id = v["correlation_id"].as_str().expect("correlation id");
        assert!(detail.contains(id), "{v}");
        let log = String::from_utf8_lossy(&logs.lock().expect("logs")).to_string();
        let line = log
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("no log line carries {id}"));
        assert!(
            line.contains("ledger unavailable"),
            "the log line has the cause: {line}"
        );
        h.stop().await;
    }
}
