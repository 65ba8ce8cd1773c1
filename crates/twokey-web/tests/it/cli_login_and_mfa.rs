//! In-process, adversarial: the `twokey login` code is loopback-only, single
//! use and bound to the verifier; an `approver_mfa` approval in the UI needs a
//! verified security-key assertion from this session (forged, made-up and
//! cross-session attempts are refused). The real WebAuthn ceremony runs in
//! the browser e2e test (`tests/e2e/mfa.spec.mjs`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use twokey_core::Policy;
use twokey_providers::{ProviderContext, Registry};
use twokey_server::{Broker, BrokerOptions, SystemClock};
use twokey_store::Store;

struct Resp {
    status: StatusCode,
    location: String,
    cookies: Vec<String>,
    body: String,
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: &str,
    ctype: &str,
    body: &str,
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    if !ctype.is_empty() {
        req = req.header(header::CONTENT_TYPE, ctype);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).expect("request"))
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

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    body[at..].split('"').next().unwrap_or("").to_string()
}

const POLICY: &str = r#"
[[identity]]
name = "alice"
groups = ["eng"]
[[identity]]
name = "bob"
groups = ["approvers"]

[[entitlement]]
name = "prod"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approver_mfa = true
approval = { count = 1, from = ["approvers"] }
[entitlement.target]
grant = ["true"]
revoke = ["true"]
check = ["false"]
"#;

async fn app(dir: &std::path::Path) -> (Router, Arc<Broker>) {
    let store = Store::open(&format!("sqlite://{}", dir.join("t.db").display()))
        .await
        .expect("store");
    let (broker, _) = Broker::start(
        store,
        Policy::parse(POLICY, "p").expect("policy"),
        Registry::with_builtin(),
        ProviderContext::default(),
        Arc::new(SystemClock),
        vec![],
        BrokerOptions::default(),
    )
    .await
    .expect("broker");
    let router = twokey_web::router(
        broker.clone(),
        twokey_web::WebConfig {
            public_url: "http://localhost:8080".into(),
            sso: None,
            dev_login: true,
        },
    );
    (router, broker)
}

async fn sign_in(app: &Router, name: &str) -> String {
    let page = call(app, "GET", "/ui/login", "", "", "").await;
    let pre = page
        .cookies
        .iter()
        .find(|c| c.starts_with("tk_prelogin="))
        .cloned()
        .expect("prelogin cookie");
    let csrf = csrf_of(&page.body);
    let r = call(
        app,
        "POST",
        "/ui/dev-login",
        &pre,
        FORM,
        &format!("csrf={csrf}&name={name}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    r.cookies
        .iter()
        .find(|c| c.starts_with("tk_session="))
        .cloned()
        .expect("session")
}

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Starts and confirms a CLI login as the signed-in person; returns the code.
async fn code_for(app: &Router, sid: &str, verifier: &str) -> String {
    let state = "s".repeat(32);
    let q = format!("port=49152&state={state}&challenge={}", challenge(verifier));
    let page = call(app, "GET", &format!("/ui/cli-login?{q}"), sid, "", "").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("cli-allow"));
    let csrf = csrf_of(&page.body);
    let no_csrf = call(app, "POST", "/ui/cli-login", sid, FORM, &q).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let ok = call(
        app,
        "POST",
        "/ui/cli-login",
        sid,
        FORM,
        &format!("{q}&csrf={csrf}"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let prefix = "http://127.0.0.1:49152/callback?code=";
    let at = ok.body.find(prefix).expect("loopback link") + prefix.len();
    let code: String = ok.body[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert!(ok.body.contains(&format!("&amp;state={state}")));
    code
}

#[tokio::test]
async fn cli_login_is_loopback_only_single_use_and_bound_to_the_verifier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, broker) = app(dir.path()).await;
    let bob = sign_in(&app, "bob").await;

    // No redirect anywhere but the CLI's loopback port.
    let ch = challenge(&"v".repeat(43));
    for bad in [
        format!("port=evil.example&state={}&challenge={ch}", "s".repeat(32)),
        format!("port=80&state={}&challenge={ch}", "s".repeat(32)),
        format!(
            "port=49152@evil.example&state={}&challenge={ch}",
            "s".repeat(32)
        ),
        format!("port=49152&state=short&challenge={ch}"),
        format!("port=49152&state={}&challenge=abc", "s".repeat(32)),
    ] {
        let r = call(&app, "GET", &format!("/ui/cli-login?{bad}"), &bob, "", "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!r.body.contains("evil.example/"), "{bad}");
    }

    // A wrong verifier burns the code; the right one afterwards is too late.
    let verifier = "v".repeat(43);
    let code = code_for(&app, &bob, &verifier).await;
    let wrong = call(
        &app,
        "POST",
        "/v1/cli-login/token",
        "",
        JSON,
        &format!(r#"{{"code":"{code}","verifier":"{}"}}"#, "w".repeat(43)),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    let late = call(
        &app,
        "POST",
        "/v1/cli-login/token",
        "",
        JSON,
        &format!(r#"{{"code":"{code}","verifier":"{verifier}"}}"#),
    )
    .await;
    assert_eq!(
        late.status,
        StatusCode::UNAUTHORIZED,
        "single use: {}",
        late.body
    );

    // The right verifier gets a short-lived token for bob, once.
    let code = code_for(&app, &bob, &verifier).await;
    let body = format!(r#"{{"code":"{code}","verifier":"{verifier}"}}"#);
    let ok = call(&app, "POST", "/v1/cli-login/token", "", JSON, &body).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let v: serde_json::Value = serde_json::from_str(&ok.body).expect("json");
    let token = v["token"].as_str().expect("token");
    let now = broker.now();
    let actor = broker
        .store()
        .actor_for_token(&twokey_server::token_hash(token), now)
        .await
        .expect("store")
        .expect("token is valid");
    assert_eq!(actor.name, "bob");
    let expires = v["expires_at"].as_i64().expect("expiry");
    assert!(
        expires > now && expires <= now + 8 * 3_600_000 + 1000,
        "short-lived"
    );
    assert!(broker
        .store()
        .actor_for_token(&twokey_server::token_hash(token), expires + 1)
        .await
        .expect("store")
        .is_none());
    let again = call(&app, "POST", "/v1/cli-login/token", "", JSON, &body).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let ledger = broker.store().ledger(0, 100).await.expect("ledger");
    assert!(ledger.iter().any(|e| e.kind == "token.issued"));

    // Not signed in: the link leads to sign-in first, and comes back.
    let q = format!("port=49152&state={}&challenge={ch}", "s".repeat(32));
    let anon = call(&app, "GET", &format!("/ui/cli-login?{q}"), "", "", "").await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert!(
        anon.location
            .starts_with("/ui/login?return_to=/ui/cli-login"),
        "{}",
        anon.location
    );
}

#[tokio::test]
async fn an_mfa_approval_needs_a_verified_key_from_this_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (app, broker) = app(dir.path()).await;
    let alice = sign_in(&app, "alice").await;
    let form = call(&app, "GET", "/ui/request", &alice, "", "").await;
    assert!(form.body.contains("approvers confirm with a security key"));
    let csrf = csrf_of(&form.body);
    let created = call(
        &app,
        "POST",
        "/ui/request",
        &alice,
        FORM,
        &format!("entitlement=prod&reason=x&csrf={csrf}"),
    )
    .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let url = created.location;
    let id = url.rsplit('/').next().expect("id").to_string();

    let bob = sign_in(&app, "bob").await;
    let page = call(&app, "GET", &url, &bob, "", "").await;
    assert!(
        page.body.contains("Add a security key"),
        "points to the keys page"
    );
    assert!(
        !page.body.contains("Approve with security key"),
        "no key, no approve"
    );
    assert!(page
        .body
        .contains(r#"<script src="/ui/static/webauthn.js"></script>"#));
    let csrf = csrf_of(&page.body);

    // Forged: no assertion; made up: an unknown ceremony.
    let forged = call(
        &app,
        "POST",
        &format!("{url}/approve"),
        &bob,
        FORM,
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("security key"), "{}", forged.body);
    let made_up = call(
        &app,
        "POST",
        &format!("{url}/approve"),
        &bob,
        FORM,
        &format!(
            "csrf={csrf}&ceremony={}&assertion=%7B%22id%22%3A%22x%22%7D",
            "a".repeat(64)
        ),
    )
    .await;
    assert_eq!(made_up.status, StatusCode::FORBIDDEN);
    assert!(
        made_up.body.contains("unknown or already used"),
        "{}",
        made_up.body
    );

    // No key: no challenge.
    let start = call(
        &app,
        "POST",
        &format!("{url}/mfa"),
        &bob,
        JSON,
        &format!(r#"{{"csrf":"{csrf}"}}"#),
    )
    .await;
    assert_eq!(start.status, StatusCode::CONFLICT, "{}", start.body);

    // Registration needs the CSRF token, and its challenge is this session's only.
    let no_csrf = call(
        &app,
        "POST",
        "/ui/keys/register/start",
        &bob,
        JSON,
        r#"{"name":"k"}"#,
    )
    .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let reg = call(
        &app,
        "POST",
        "/ui/keys/register/start",
        &bob,
        JSON,
        &format!(r#"{{"csrf":"{csrf}","name":"k"}}"#),
    )
    .await;
    assert_eq!(reg.status, StatusCode::OK, "{}", reg.body);
    let v: serde_json::Value = serde_json::from_str(&reg.body).expect("json");
    assert_eq!(v["options"]["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(
        v["options"]["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let ceremony = v["ceremony"].as_str().expect("ceremony");
    let alice_csrf = csrf_of(&call(&app, "GET", "/ui/keys", &alice, "", "").await.body);
    let stolen = call(
        &app,
        "POST",
        "/ui/keys/register/finish",
        &alice,
        JSON,
        &format!(r#"{{"csrf":"{alice_csrf}","ceremony":"{ceremony}","credential":{{"id":"AA","rawId":"AA","type":"public-key","extensions":{{}},"response":{{"attestationObject":"AA","clientDataJSON":"AA"}}}}}}"#),
    )
    .await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN, "{}", stolen.body);
    assert!(stolen.body.contains("another session"), "{}", stolen.body);

    // Nothing was approved, and nobody has a key.
    assert_eq!(
        broker.get(&id).await.expect("request").state.as_str(),
        "pending"
    );
    let keys = call(&app, "GET", "/ui/keys", &bob, "", "").await;
    assert!(keys.body.contains("no security keys yet"));
    let resp_js = call(&app, "GET", "/ui/static/webauthn.js", "", "", "").await;
    assert!(resp_js.body.contains("navigator.credentials.get"));
}
