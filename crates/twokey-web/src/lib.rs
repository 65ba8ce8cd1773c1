//! twokey's web UI: OpenID Connect single sign-on and server-rendered pages
//! for requesters and approvers (dashboard, request form, request page with
//! its ledger timeline, audit log, policy).
//!
//! Security model, in one place:
//! - identity is the ID token's issuer + subject, never an email address;
//! - the ID token is checked by `openidconnect` (signature against the
//!   provider's JWKS, issuer, audience, expiry, nonce); the code exchange uses
//!   PKCE; `state` is single-use and bound to the browser by a cookie;
//! - sessions are server-side (the store's token table holds a hash of the
//!   session id, under a prefix so a session cookie is never an API token); a
//!   fresh session id is issued at every login (no fixation);
//! - every state-changing form carries a CSRF token bound to the session;
//! - the return URL after login must be a relative path on this server;
//! - every page carries CSP, `X-Frame-Options: DENY`, `Referrer-Policy`,
//!   `X-Content-Type-Options: nosniff`; the only JavaScript is the static
//!   `webauthn.js` for security keys (`script-src 'self'`, no inline script);
//! - step-up MFA (`approver_mfa`): an approval is confirmed by a WebAuthn
//!   assertion whose challenge is bound to the session and the request, used
//!   once and within two minutes (see [`mfa`]); the core refuses the approval
//!   without it, whichever way it arrives.
//!
//! The broker decides everything: the UI hides buttons a person may not use,
//! and the broker refuses them anyway.

// Handlers return ready-made error pages as `Err(Response)`; they are built
// once per refused request, so their size does not matter.
#![allow(clippy::result_large_err)]

mod auth;
mod cli_login;
mod csrf;
mod html;
mod mfa;
mod pages;
mod report;
mod state;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use twokey_server::Broker;

pub use auth::{safe_return_path, SESSION_COOKIE};

/// The `[sso]` table of `twokey.toml`: the company's OpenID Connect provider.
///
/// ```toml
/// [sso]
/// issuer_url = "https://login.example.com/realms/company"
/// client_id = "twokey"
/// client_secret_env = "TWOKEY_SSO_SECRET"   # or client_secret_file, or (inline) client_secret
/// groups_claim = "groups"        # default
/// redirect_path = "/ui/callback" # default; register public_url + this at the provider
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// The provider's issuer URL (discovery at `/.well-known/openid-configuration`).
    pub issuer_url: String,
    /// Client id registered at the provider.
    pub client_id: String,
    /// Client secret (confidential client); absent for a public client (PKCE only).
    #[serde(default)]
    pub client_secret: Option<twokey_core::Secret>,
    /// Claim holding the person's groups (ID token first, then userinfo).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Path of the redirect URI under `public_url`.
    #[serde(default = "default_redirect_path")]
    pub redirect_path: String,
    /// Extra scopes to ask for besides `openid profile email`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Session lifetime such as `8h` (default); a value that is not a
    /// duration is refused when the configuration loads.
    #[serde(default)]
    pub session_ttl: Option<twokey_core::time::ConfigDuration>,
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_redirect_path() -> String {
    "/ui/callback".into()
}

impl SsoConfig {
    /// Reads the `[sso]` table as the server config holds it.
    pub fn from_table(table: toml::Table) -> Result<SsoConfig, String> {
        let cfg: SsoConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| format!("[sso]: {}", e.message()))?;
        if !cfg.redirect_path.starts_with('/') {
            return Err("[sso] redirect_path must start with /".into());
        }
        Ok(cfg)
    }
}

/// How the web UI runs.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Base URL people reach the server at (`https://...` makes cookies `Secure`).
    pub public_url: String,
    /// Single sign-on; without it, only the dev login (if enabled) can sign in.
    pub sso: Option<SsoConfig>,
    /// Offer "sign in as" buttons for the policy's static identities. Only for
    /// `twokey serve --dev`: anyone who can reach the server becomes anyone.
    pub dev_login: bool,
}

impl WebConfig {
    /// Session lifetime in milliseconds.
    fn session_ttl_ms(&self) -> i64 {
        self.sso
            .as_ref()
            .and_then(|s| s.session_ttl)
            .map_or(8 * 3_600_000, |ttl| ttl.as_ms())
    }

    fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// Shared state of the UI handlers.
pub(crate) struct Web {
    pub broker: Arc<Broker>,
    pub cfg: WebConfig,
    /// The discovered provider (refreshed every few minutes).
    pub oidc: tokio::sync::Mutex<Option<auth::Discovered>>,
    /// The WebAuthn relying party (`public_url`'s host), or why there is none.
    pub webauthn: Result<webauthn_rs::Webauthn, String>,
}

pub(crate) type AppState = Arc<Web>;

/// The UI's routes (under `/ui`, plus `/` redirecting there), to be merged
/// into the API router. Has no fallback of its own.
pub fn router(broker: Arc<Broker>, cfg: WebConfig) -> Router<()> {
    let webauthn = mfa::relying_party(&cfg.public_url);
    if let Err(m) = &webauthn {
        tracing::warn!("{m}");
    }
    let state: AppState = Arc::new(Web {
        broker,
        cfg,
        oidc: Default::default(),
        webauthn,
    });
    Router::new()
        .route("/", get(pages::root))
        .route("/ui", get(pages::root))
        .route("/ui/", get(pages::dashboard))
        .route("/ui/static/style.css", get(pages::style))
        .route("/ui/login", get(auth::login))
        .route("/ui/dev-login", post(auth::dev_login))
        .route("/ui/logout", post(auth::logout))
        .route("/ui/callback", get(auth::callback))
        .route("/ui/request", get(pages::request_form).post(pages::create))
        .route("/ui/static/webauthn.js", get(mfa::script))
        .route("/ui/keys", get(mfa::keys_page))
        .route("/ui/keys/register/start", post(mfa::register_start))
        .route("/ui/keys/register/finish", post(mfa::register_finish))
        .route("/ui/keys/{id}/remove", post(mfa::remove_key))
        .route("/ui/requests/{id}", get(pages::request_page))
        .route("/ui/requests/{id}/mfa", post(mfa::approve_start))
        .route("/ui/requests/{id}/{action}", post(pages::act))
        .route(
            "/ui/cli-login",
            get(cli_login::start).post(cli_login::confirm),
        )
        .route(
            "/v1/cli-login/token",
            post(cli_login::exchange).layer(axum::middleware::from_fn(
                twokey_server::error::problems_only,
            )),
        )
        .route("/ui/audit", get(pages::audit))
        .route("/ui/posture", get(pages::posture))
        .route("/ui/policy", get(pages::policy))
        .route("/ui/report", get(report::page_handler))
        .route("/ui/report/download", get(report::download))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The OpenAPI operations of the UI's JSON API routes (`/v1/cli-login/token`),
/// for `twokey_server::serve_documented` to merge into `/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    WebApi::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(cli_login::exchange))]
struct WebApi;

/// Security headers on every UI response.
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sso(extra: &str) -> Result<SsoConfig, String> {
        let table: toml::Table =
            format!("issuer_url = \"http://127.0.0.1:1\"\nclient_id = \"twokey\"\n{extra}")
                .parse()
                .expect("test TOML");
        SsoConfig::from_table(table)
    }

    fn ttl_ms(cfg: SsoConfig) -> i64 {
        WebConfig {
            public_url: "http://127.0.0.1".into(),
            sso: Some(cfg),
            dev_login: false,
        }
        .session_ttl_ms()
    }

    #[test]
    fn session_ttl_is_parsed_when_the_config_loads() {
        assert_eq!(ttl_ms(sso("session_ttl = \"90m\"").unwrap()), 90 * 60_000);
        assert_eq!(ttl_ms(sso("").unwrap()), 8 * 3_600_000);
    }

    #[test]
    fn a_bad_session_ttl_is_an_error_not_eight_hours() {
        let err = sso("session_ttl = \"eight hours\"").unwrap_err();
        assert!(err.starts_with("[sso]"), "{err}");
        assert!(err.contains("eight hours"), "{err}");
    }
}
