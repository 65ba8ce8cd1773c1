//! The UI in dev mode, in-process: dev sign-in, CSRF on every form, and the
//! requester can neither see nor use approve on their own request.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;
use twokey_providers::{ProviderContext, Registry};
use twokey_server::{dev, Broker, BrokerOptions, SystemClock};
use twokey_store::Store;

struct Resp {
    status: StatusCode,
    location: String,
    cookies: Vec<String>,
    body: String,
}

async fn call(app: &Router, method: &str, uri: &str, cookie: &str, form: &str) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    if method == "POST" {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(form.to_string())).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let cookies = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .collect();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    Resp {
        status,
        location,
        cookies,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    body[at..].split('"').next().unwrap_or("").to_string()
}

fn cookie_named(r: &Resp, name: &str) -> String {
    r.cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .cloned()
        .unwrap_or_default()
}

async fn app(dir: &std::path::Path) -> Router {
    let url = format!("sqlite://{}", dir.join("t.db").display());
    app_with(dir, &url, dev::demo(None)).await
}

async fn app_with(dir: &std::path::Path, url: &str, policy: twokey_core::Policy) -> Router {
    let store = Store::open(url).await.expect("store");
    let mut ctx = ProviderContext::default();
    ctx.env
        .insert("TWOKEY_DATA_DIR".into(), dir.display().to_string());
    let (broker, _) = Broker::start(
        store,
        policy,
        Registry::with_builtin(),
        ctx,
        Arc::new(SystemClock),
        vec![],
        BrokerOptions::default(),
    )
    .await
    .expect("broker");
    twokey_web::router(
        broker,
        twokey_web::WebConfig {
            public_url: "http://127.0.0.1:8080".into(),
            sso: None,
            dev_login: true,
        },
    )
}

async fn sign_in(app: &Router, name: &str) -> String {
    let page = call(app, "GET", "/ui/login?return_to=/ui/request", "", "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("DEV MODE"));
    let pre = cookie_named(&page, "tk_prelogin");
    let csrf = csrf_of(&page.body);
    // Without the double-submit cookie the form is refused.
    let forged = call(
        app,
        "POST",
        "/ui/dev-login",
        "",
        &format!("csrf={csrf}&name={name}"),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let r = call(
        app,
        "POST",
        "/ui/dev-login",
        &pre,
        &format!("csrf={csrf}&name={name}&return_to=https://evil.example/"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location, "/ui/", "no open redirect");
    let sid = cookie_named(&r, "tk_session");
    assert!(sid.len() > 20);
    sid
}

#[tokio::test]
async fn requester_cannot_approve_and_every_form_needs_csrf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(dir.path()).await;

    let anon = call(&app, "GET", "/ui/", "", "").await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert!(anon.location.starts_with("/ui/login?return_to=/ui/"));
    assert!(call(&app, "GET", "/ui/", "", "").await.cookies.is_empty());

    let alice = sign_in(&app, "alice").await;
    let form = call(&app, "GET", "/ui/request", &alice, "").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"<label for="reason">"#));
    let csrf = csrf_of(&form.body);
    let body = "entitlement=demo&duration=10m&reason=INC-1";
    let no_csrf = call(&app, "POST", "/ui/request", &alice, body).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let created = call(
        &app,
        "POST",
        "/ui/request",
        &alice,
        &format!("{body}&csrf={csrf}"),
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let url = created.location.clone();
    assert!(url.starts_with("/ui/requests/req-"));

    let own = call(&app, "GET", &url, &alice, "").await;
    assert!(own.body.contains("pending"));
    assert!(
        !own.body.contains(">Approve<"),
        "no approve button on one's own request"
    );
    let self_approve = call(
        &app,
        "POST",
        &format!("{url}/approve"),
        &alice,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(self_approve.status, StatusCode::FORBIDDEN);

    let bob = sign_in(&app, "bob").await;
    let page = call(&app, "GET", &url, &bob, "").await;
    assert!(page.body.contains(">Approve<"));
    let bob_csrf = csrf_of(&page.body);
    let missing = call(&app, "POST", &format!("{url}/approve"), &bob, "comment=ok").await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let cross = call(
        &app,
        "POST",
        &format!("{url}/approve"),
        &bob,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(
        cross.status,
        StatusCode::FORBIDDEN,
        "alice's token is not bob's"
    );
    let ok = call(
        &app,
        "POST",
        &format!("{url}/approve"),
        &bob,
        &format!("csrf={bob_csrf}&comment=ok"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let after = call(&app, "GET", &url, &bob, "").await;
    assert!(
        after.body.contains("review.approved"),
        "timeline from the ledger"
    );
    assert!(after.body.contains("bob</strong> approved"));
    let audit = call(&app, "GET", "/ui/audit", &bob, "").await;
    assert!(audit.body.contains("session.login"));
}

const PASSWORD: &str = "Pg-Adm1n-Passw0rd";

/// The demo policy with a PostgreSQL entitlement whose admin URL holds a
/// password, an auditor (frank) and a person who may neither request nor
/// review (erin).
fn policy_with_a_password() -> twokey_core::Policy {
    let text = format!(
        "{}\n[auditors]\ngroups = [\"audit\"]\n\n[[identity]]\nname = \"frank\"\ngroups = [\"audit\"]\n\n[[identity]]\nname = \"erin\"\ngroups = [\"eng\"]\n",
        dev::demo_policy(Some(&format!("postgres://admin:{PASSWORD}@127.0.0.1:1/app")))
    );
    twokey_core::Policy::parse(&text, "test policy").expect("valid policy")
}

#[tokio::test]
async fn pages_show_no_password_and_read_by_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in twokey_store::testing::both(dir.path(), "tk_web_read").await {
        let app = app_with(dir.path(), &url, policy_with_a_password()).await;
        let alice = sign_in(&app, "alice").await;
        let form = call(&app, "GET", "/ui/request", &alice, "").await;
        let csrf = csrf_of(&form.body);
        let created = call(
            &app,
            "POST",
            "/ui/request",
            &alice,
            &format!("entitlement=demo&duration=10m&reason=INC-7+customer+X&csrf={csrf}"),
        )
        .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let req = created.location.clone();
        let (bob, frank, erin) = (
            sign_in(&app, "bob").await,
            sign_in(&app, "frank").await,
            sign_in(&app, "erin").await,
        );
        for (who, cookie) in [
            ("alice", &alice),
            ("bob", &bob),
            ("erin", &erin),
            ("frank", &frank),
        ] {
            for page in [
                "/ui/",
                "/ui/policy",
                "/ui/audit",
                "/ui/request",
                req.as_str(),
            ] {
                let r = call(&app, "GET", page, cookie, "").await;
                assert!(
                    !r.body.contains(PASSWORD),
                    "{url}: {who} sees the password on {page}"
                );
            }
        }
        let policy = call(&app, "GET", "/ui/policy", &alice, "").await;
        assert!(
            policy.body.contains("postgres://admin:***@127.0.0.1:1/app"),
            "{}",
            policy.body
        );
        for (who, cookie, audit, request) in [
            ("alice", &alice, StatusCode::FORBIDDEN, StatusCode::OK),
            ("erin", &erin, StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
            ("bob", &bob, StatusCode::OK, StatusCode::OK),
            ("frank", &frank, StatusCode::OK, StatusCode::OK),
        ] {
            let a = call(&app, "GET", "/ui/audit", cookie, "").await;
            assert_eq!(a.status, audit, "{url}: {who} /ui/audit");
            let r = call(&app, "GET", &req, cookie, "").await;
            assert_eq!(r.status, request, "{url}: {who} {req}");
            assert_eq!(
                r.body.contains("customer X"),
                request == StatusCode::OK,
                "{who}"
            );
        }
        let frank_audit = call(&app, "GET", "/ui/audit", &frank, "").await;
        assert!(frank_audit.body.contains("request.created"));
    }
}

/// `/ui/posture`: the posture monitor's stored results, for admins and
/// auditors only, failing first, every value escaped.
#[tokio::test]
async fn the_posture_page_is_for_auditors_and_admins_and_escapes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let app = app_with(dir.path(), &url, policy_with_a_password()).await;
    let (alice, frank, bob) = (
        sign_in(&app, "alice").await,
        sign_in(&app, "frank").await,
        sign_in(&app, "bob").await,
    );
    let empty = call(&app, "GET", "/ui/posture", &frank, "").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No posture scan yet"), "{}", empty.body);
    let row = |check: &str, status: &str, resource: &str| twokey_store::PostureRow {
        check: check.into(),
        account: "222233334444".into(),
        region: "eu-west-1".into(),
        resource: resource.into(),
        severity: "critical".into(),
        status: status.into(),
        message: format!("{resource} {status}"),
        evidence: "{}".into(),
        scanned_at: 1_800_000_000_000,
    };
    let replica = Store::open(&url).await.expect("replica");
    replica
        .replace_posture(&[
            row(
                "cloudtrail.trail",
                "PASS",
                "arn:aws:cloudtrail:eu-west-1:222233334444:trail/org",
            ),
            row(
                "scp.monitoring_protected",
                "FAIL",
                "<script>alert(1)</script>",
            ),
        ])
        .await
        .expect("rows");
    for (who, cookie, want) in [
        ("alice", &alice, StatusCode::FORBIDDEN),
        ("frank", &frank, StatusCode::OK),
        ("bob", &bob, StatusCode::OK),
    ] {
        let r = call(&app, "GET", "/ui/posture", cookie, "").await;
        assert_eq!(r.status, want, "{who}");
    }
    let page = call(&app, "GET", "/ui/posture", &frank, "").await.body;
    assert!(
        page.contains("<strong>1 failing</strong>, 1 passing"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "not escaped");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let fail = page.find("scp.monitoring_protected").expect("failing row");
    let pass = page.find("cloudtrail.trail").expect("passing row");
    assert!(fail < pass, "failing first");
}

/// `/ui/posture` also shows the GitHub posture watcher's last status of each
/// check per repository, failing first, escaped, for the same readers.
#[tokio::test]
async fn the_posture_page_shows_the_github_posture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let app = app_with(dir.path(), &url, policy_with_a_password()).await;
    let (alice, frank) = (sign_in(&app, "alice").await, sign_in(&app, "frank").await);
    let replica = Store::open(&url).await.expect("replica");
    for (check, resource, status) in [
        ("github.pull_request_required", "acme/infra", "pass"),
        ("github.no_bypass", "acme/<b>app</b>", "fail"),
        ("github.force_push_blocked", "acme/app", "excepted"),
    ] {
        sqlx::query(
            "INSERT INTO github_posture_state (check_id, resource, status, checked_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(check)
        .bind(resource)
        .bind(status)
        .bind(1_800_000_000_000_i64)
        .execute(replica.pool())
        .await
        .expect("state row");
    }
    let denied = call(&app, "GET", "/ui/posture", &alice, "").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let page = call(&app, "GET", "/ui/posture", &frank, "").await;
    assert_eq!(page.status, StatusCode::OK);
    let page = page.body;
    assert!(page.contains("No AWS posture scan yet"), "{page}");
    assert!(
        page.contains("<strong>1 failing</strong>, 1 passing, 1 excepted"),
        "{page}"
    );
    assert!(!page.contains("<b>app</b>"), "not escaped");
    assert!(page.contains("acme/&lt;b&gt;app&lt;/b&gt;"), "{page}");
    let fail = page.find("github.no_bypass").expect("failing row");
    let excepted = page
        .find("github.force_push_blocked")
        .expect("excepted row");
    let pass = page
        .find("github.pull_request_required")
        .expect("passing row");
    assert!(fail < excepted && excepted < pass, "failing first");
    assert!(
        !page.contains("GitHub restore proposals"),
        "no restores yet"
    );

    // Restore proposals: listed with who proposed and approved, the calls
    // and the result, every value escaped.
    let doc = serde_json::json!({
        "id": "restore-1", "resource": "acme/<i>infra</i>", "state": "applied",
        "proposed_by": {"issuer": "dev", "subject": "bob"},
        "approved_by": {"issuer": "dev", "subject": "carol"},
        "calls": [{"method": "PUT", "path": "/repos/acme/infra/branches/main/protection", "body": {}}],
        "result": "1 call(s) made; the re-check passes",
    });
    sqlx::query(
        "INSERT INTO github_restores (id, resource, state, doc, version, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind("restore-1")
    .bind("acme/<i>infra</i>")
    .bind("applied")
    .bind(doc.to_string())
    .bind(3_i64)
    .bind(1_800_000_000_000_i64)
    .execute(replica.pool())
    .await
    .expect("restore row");
    let page = call(&app, "GET", "/ui/posture", &frank, "").await.body;
    assert!(page.contains("GitHub restore proposals"), "{page}");
    let row = &page[page.find("restore-1").expect("the proposal")..];
    assert!(row.contains("acme/&lt;i&gt;infra&lt;/i&gt;"), "{row}");
    assert!(!page.contains("<i>infra</i>"), "not escaped");
    assert!(
        row.contains("dev|bob") && row.contains("dev|carol"),
        "{row}"
    );
    assert!(
        row.contains("PUT /repos/acme/infra/branches/main/protection"),
        "{row}"
    );
    assert!(row.contains("the re-check passes"), "{row}");
}

#[tokio::test]
async fn the_report_page_is_for_auditors_and_admins_escapes_and_downloads() {
    use twokey_core::{event as ev, LedgerEvent};
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let app = app_with(dir.path(), &url, policy_with_a_password()).await;
    let (alice, frank) = (sign_in(&app, "alice").await, sign_in(&app, "frank").await);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let replica = Store::open(&url).await.expect("replica");
    let created = LedgerEvent::RequestCreated(ev::RequestCreated {
        entitlement: "demo".into(),
        duration_ms: 60_000,
        reason: "<script>alert(1)</script>".into(),
        ticket: None,
        break_glass: false,
        extends: None,
    })
    .by("dev|alice");
    replica
        .record(now, "h", vec![("req-web1".into(), created)])
        .await
        .expect("entry");
    let from = twokey_server::report::rfc3339(now - 3_600_000);
    let to = twokey_server::report::rfc3339(now + 3_600_000);
    let q = format!("/ui/report?from={from}&to={to}");
    assert_eq!(
        call(&app, "GET", &q, &alice, "").await.status,
        StatusCode::FORBIDDEN
    );
    let form = call(&app, "GET", "/ui/report", &frank, "").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"from\""), "{}", form.body);
    let page = call(&app, "GET", &q, &frank, "").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("req-web1"), "{}", page.body);
    assert!(!page.body.contains("<script>alert"), "not escaped");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        page.body.contains("/ui/report/download?from="),
        "{}",
        page.body
    );
    let bad = call(
        &app,
        "GET",
        &format!("/ui/report?from=soon&to={to}"),
        &frank,
        "",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("from:"), "{}", bad.body);
    let csv = call(
        &app,
        "GET",
        &format!("/ui/report/download?from={from}&to={to}&format=csv"),
        &frank,
        "",
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with("section,id,"), "{}", csv.body);
    assert!(
        csv.body.contains("grant,req-web1,demo,dev|alice"),
        "{}",
        csv.body
    );
    let denied = call(
        &app,
        "GET",
        &format!("/ui/report/download?from={from}&to={to}&format=csv"),
        &alice,
        "",
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
}
