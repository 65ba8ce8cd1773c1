//! Sign-in (OpenID Connect, or the dev login), sessions, CSRF tokens.

use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use twokey_core::event::SessionLogin;
use twokey_core::{Actor, IdentityKey, LedgerEvent};

use crate::csrf::CheckedForm;
use maud::html;

use crate::html::{error_page, frame, respond};
use crate::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tk_session";
const FLOW_COOKIE: &str = "tk_flow";
const PRELOGIN_COOKIE: &str = "tk_prelogin";
const FLOW_TTL: Duration = Duration::from_secs(600);
const DISCOVERY_TTL: Duration = Duration::from_secs(300);

/// Claims beyond the standard ones (the groups claim is configurable, so keep them all).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Extra {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}

impl AdditionalClaims for Extra {}

type Fields = IdTokenFields<
    Extra,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenResp = StandardTokenResponse<Fields, CoreTokenType>;
type OidcClient = Client<
    Extra,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResp,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider as discovered, with its keys.
pub(crate) struct Discovered {
    client: OidcClient,
    issuer: String,
    at: Instant,
}

/// A login in flight, as kept in the store (kind [`FLOW_KIND`], keyed by
/// the `state` parameter, which the browser also holds in a cookie).
#[derive(Serialize, Deserialize)]
pub(crate) struct Flow {
    nonce: String,
    pkce: String,
    return_to: String,
}

/// Store kind of a login in flight.
const FLOW_KIND: &str = "oidc-login";

// ----- cookies ---------------------------------------------------------------

/// The value of cookie `name` in the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(st: &AppState, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if st.cfg.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("tk_invalid=1"))
}

pub(crate) fn random_token() -> String {
    use rand::Rng;
    let b: [u8; 32] = rand::thread_rng().gen();
    hex::encode(b)
}

/// Hash under which a session id is stored in the token table. The prefix
/// keeps a session cookie from working as an API bearer token.
fn session_hash(sid: &str) -> String {
    twokey_server::token_hash(&format!("web-session:{sid}"))
}

/// The CSRF token of a session: derived from the (secret) session id.
fn csrf_for(sid: &str) -> String {
    hex::encode(Sha256::digest(format!("twokey-csrf:{sid}").as_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Accepts only a relative path on this server (`/ui/...`); anything else
/// (absolute URLs, `//host`, backslashes, control characters) becomes `/ui/`.
pub fn safe_return_path(p: Option<&str>) -> String {
    let fallback = "/ui/".to_string();
    let Some(p) = p else { return fallback };
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control() || c.is_whitespace())
        && p.len() <= 512;
    if ok {
        p.to_string()
    } else {
        fallback
    }
}

// ----- the session extractor -------------------------------------------------

/// A signed-in person.
pub(crate) struct Session {
    /// Who, with groups refreshed from the policy in force.
    pub actor: Actor,
    /// The session's CSRF token.
    pub csrf: String,
    /// Hash of the session id (binds security-key challenges to the session).
    pub sid_hash: String,
}

impl Session {
    /// Checks a submitted CSRF token.
    pub(crate) fn check_csrf(&self, submitted: &str) -> Result<(), Response> {
        if same(submitted, &self.csrf) {
            Ok(())
        } else {
            Err(error_page(
                StatusCode::FORBIDDEN,
                "The form's security token is missing or wrong. Reload the page and try again.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let sid = cookie(&parts.headers, SESSION_COOKIE).filter(|s| !s.is_empty());
        let actor = match &sid {
            Some(sid) => st
                .broker
                .store()
                .actor_for_token(&session_hash(sid), st.broker.now())
                .await
                .map_err(|e| {
                    error_page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &format!("session store unavailable: {e}"),
                    )
                })?,
            None => None,
        };
        match (sid, actor) {
            (Some(sid), Some(actor)) => Ok(Session {
                // The directory's word on the person (deactivated: refused;
                // SCIM groups added).
                actor: st
                    .broker
                    .directory_actor(actor)
                    .await
                    .map_err(crate::pages::api_error)?,
                csrf: csrf_for(&sid),
                sid_hash: session_hash(&sid),
            }),
            _ => {
                if parts.method == axum::http::Method::GET {
                    let target = parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/ui/");
                    let to = format!("/ui/login?return_to={}", url_encode(target));
                    Err(Redirect::to(&to).into_response())
                } else {
                    Err(error_page(StatusCode::UNAUTHORIZED, "Sign in first."))
                }
            }
        }
    }
}

/// Percent-encodes a query value.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Creates a session for `actor` (always a fresh id) and records the login.
async fn start_session(st: &AppState, actor: &Actor, how: &str, return_to: &str) -> Response {
    let sid = random_token();
    let now = st.broker.now();
    let ttl = st.cfg.session_ttl_ms();
    if let Err(err) = st
        .broker
        .store()
        .put_token(&session_hash(&sid), actor, now, Some(now + ttl))
        .await
    {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("could not create the session: {err}"),
        );
    }
    let ev = LedgerEvent::SessionLogin(SessionLogin {
        method: how.into(),
        name: actor.name.clone(),
        groups: actor.groups.clone(),
    })
    .by(actor.key.to_string());
    let hash = st.broker.policy().policy.hash.clone();
    if let Err(err) = st
        .broker
        .store()
        .record(now, &hash, vec![(actor.key.to_string(), ev)])
        .await
    {
        // Fail closed: a login that cannot be recorded does not happen. The
        // browser never gets this session's cookie; it is expired as well.
        if let Err(e) = st
            .broker
            .store()
            .put_token(&session_hash(&sid), actor, now, Some(now))
            .await
        {
            tracing::error!(error = %e, "could not expire an unrecorded session");
        }
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the login could not be recorded: {err}"),
        );
    }
    let mut resp = Redirect::to(&safe_return_path(Some(return_to))).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(st, SESSION_COOKIE, &sid, ttl / 1000),
    );
    h.append(header::SET_COOKIE, set_cookie(st, FLOW_COOKIE, "", 0));
    h.append(header::SET_COOKIE, set_cookie(st, PRELOGIN_COOKIE, "", 0));
    resp
}

// ----- OpenID Connect --------------------------------------------------------

fn http_client() -> Result<openidconnect::reqwest::Client, String> {
    openidconnect::reqwest::ClientBuilder::new()
        // Following redirects would let a provider bounce requests anywhere (SSRF).
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

async fn discovered(st: &AppState) -> Result<(OidcClient, String), String> {
    let Some(sso) = &st.cfg.sso else {
        return Err("single sign-on is not configured".into());
    };
    let mut guard = st.oidc.lock().await;
    if let Some(d) = guard.as_ref() {
        if d.at.elapsed() < DISCOVERY_TTL {
            return Ok((d.client.clone(), d.issuer.clone()));
        }
    }
    let http = http_client()?;
    let issuer = IssuerUrl::new(sso.issuer_url.clone()).map_err(|e| format!("issuer_url: {e}"))?;
    let meta = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .map_err(|e| format!("OpenID Connect discovery at {} failed: {e}", sso.issuer_url))?;
    let issuer = meta.issuer().to_string();
    let redirect = format!(
        "{}{}",
        st.cfg.public_url.trim_end_matches('/'),
        sso.redirect_path
    );
    let client = OidcClient::from_provider_metadata(
        meta,
        ClientId::new(sso.client_id.clone()),
        sso.client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose().to_string())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| format!("redirect URL: {e}"))?);
    *guard = Some(Discovered {
        client: client.clone(),
        issuer: issuer.clone(),
        at: Instant::now(),
    });
    Ok((client, issuer))
}

/// Query of `GET /ui/login`.
#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    return_to: Option<String>,
}

/// `GET /ui/login`: to the provider, or the dev login page.
pub(crate) async fn login(State(st): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let return_to = safe_return_path(q.return_to.as_deref());
    if st.cfg.sso.is_none() {
        return dev_login_page(&st, &return_to);
    }
    let (client, _) = match discovered(&st).await {
        Ok(c) => c,
        Err(err) => return error_page(StatusCode::BAD_GATEWAY, &err),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge);
    if let Some(sso) = &st.cfg.sso {
        for s in &sso.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
    }
    let (url, state, nonce) = req.url();
    let flow = Flow {
        nonce: nonce.secret().clone(),
        pkce: verifier.secret().clone(),
        return_to,
    };
    if let Err(m) = crate::state::put(&st, FLOW_KIND, state.secret(), "", &flow, FLOW_TTL).await {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, &m);
    }
    let mut resp = Redirect::to(url.as_str()).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&st, FLOW_COOKIE, state.secret(), FLOW_TTL.as_secs() as i64),
    );
    resp
}

/// Query of the redirect back from the provider.
#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /ui/callback`: the provider sends the browser back with a code.
pub(crate) async fn callback(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    match finish_login(&st, &headers, q).await {
        Ok((actor, email, return_to)) => {
            // The directory notifications use: name, email and groups as the
            // provider said at this sign-in.
            let person = twokey_store::PersonRow {
                identity: actor.key.to_string(),
                name: actor.name.clone(),
                email,
                groups: actor.groups.iter().cloned().collect(),
                seen_at: st.broker.now(),
            };
            if let Err(err) = st.broker.store().upsert_person(&person).await {
                tracing::warn!(error = %err, "could not record the person for notifications");
            }
            start_session(&st, &actor, "oidc", &return_to).await
        }
        Err((status, msg)) => {
            tracing::warn!(reason = %msg, "sign-in refused");
            let mut resp = error_page(status, &format!("Sign-in failed: {msg}"));
            resp.headers_mut()
                .append(header::SET_COOKIE, set_cookie(&st, FLOW_COOKIE, "", 0));
            resp
        }
    }
}

type Refusal = (StatusCode, String);

async fn finish_login(
    st: &AppState,
    headers: &HeaderMap,
    q: CallbackQuery,
) -> Result<(Actor, Option<String>, String), Refusal> {
    let bad = |m: &str| (StatusCode::BAD_REQUEST, m.to_string());
    if let Some(err) = q.error {
        return Err(bad(&format!(
            "the provider said {err}: {}",
            q.error_description.unwrap_or_default()
        )));
    }
    let state = q.state.ok_or_else(|| bad("no state"))?;
    let code = q.code.ok_or_else(|| bad("no code"))?;
    // The state must be the one this browser started with (login CSRF) ...
    let bound = cookie(headers, FLOW_COOKIE).unwrap_or_default();
    if !same(&bound, &state) {
        return Err(bad("the login was not started in this browser"));
    }
    // ... and is used once, on whichever replica the provider sends it to.
    let flow: Flow = crate::state::take(st, FLOW_KIND, &state)
        .await
        .map_err(|m| (StatusCode::SERVICE_UNAVAILABLE, m))?
        .map(|(_, f)| f)
        .ok_or_else(|| bad("unknown, used or expired login state"))?;
    let (client, issuer) = discovered(st)
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
    let http = http_client().map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| (StatusCode::BAD_GATEWAY, format!("token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce))
        .request_async(&http)
        .await
        .map_err(|e| {
            (
                StatusCode::UNAUTHORIZED,
                format!("code exchange refused: {e}"),
            )
        })?;
    let id_token = token
        .id_token()
        .ok_or_else(|| (StatusCode::UNAUTHORIZED, "no ID token".to_string()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(flow.nonce))
        .map_err(|e| (StatusCode::UNAUTHORIZED, format!("ID token rejected: {e}")))?;
    let sso = st
        .cfg
        .sso
        .as_ref()
        .ok_or_else(|| bad("single sign-on is not configured"))?;
    let subject = claims.subject().to_string();
    let name = claims
        .preferred_username()
        .map(|u| u.to_string())
        .or_else(|| claims.email().map(|m| m.to_string()))
        .unwrap_or_else(|| subject.clone());
    let mut groups = groups_from(&claims.additional_claims().claims, &sso.groups_claim);
    let mut email = claims.email().map(|m| m.to_string());
    if groups.is_none() || email.is_none() {
        // Not in the ID token: ask userinfo, which must be about the same subject.
        if let Ok(req) =
            client.user_info(token.access_token().clone(), Some(claims.subject().clone()))
        {
            let info: Result<openidconnect::UserInfoClaims<Extra, CoreGenderClaim>, _> =
                req.request_async(&http).await;
            match info {
                Ok(info) => {
                    if groups.is_none() {
                        groups = groups_from(&info.additional_claims().claims, &sso.groups_claim);
                    }
                    if email.is_none() {
                        email = info.email().map(|m| m.to_string());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "userinfo request failed; no groups"),
            }
        }
    }
    let actor = Actor {
        key: IdentityKey { issuer, subject },
        name,
        groups: groups.unwrap_or_default(),
        links: Default::default(),
    };
    Ok((st.broker.refresh_actor(actor), email, flow.return_to))
}

fn groups_from(
    claims: &serde_json::Map<String, serde_json::Value>,
    claim: &str,
) -> Option<std::collections::BTreeSet<String>> {
    match claims.get(claim)? {
        serde_json::Value::Array(a) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        serde_json::Value::String(s) => Some(
            s.split([',', ' '])
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

// ----- dev login -------------------------------------------------------------

fn dev_login_page(st: &AppState, return_to: &str) -> Response {
    if !st.cfg.dev_login {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "No sign-in method is configured: add an [sso] table to twokey.toml.",
        );
    }
    let token = random_token();
    let body = html! {
        p.dev role="note" {
            strong { "DEV MODE." }
            " Anyone who can reach this server can sign in as anyone. Never use this in production; configure [sso] instead."
        }
        ul.plain {
            @for id in &st.broker.policy().policy.identities {
                li {
                    form method="post" action="/ui/dev-login" {
                        input type="hidden" name="csrf" value=(token);
                        input type="hidden" name="return_to" value=(return_to);
                        input type="hidden" name="name" value=(id.name);
                        button type="submit" { "Sign in as " (id.name) " (dev)" }
                    }
                }
            }
        }
    };
    let mut resp = respond(StatusCode::OK, frame("Sign in (dev)", None, None, body));
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st, PRELOGIN_COOKIE, &token, 600),
    );
    resp
}

/// Form of `POST /ui/dev-login`.
#[derive(Deserialize)]
pub(crate) struct DevLoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    return_to: Option<String>,
}

/// `POST /ui/dev-login`: sign in as a static identity (dev mode only).
pub(crate) async fn dev_login(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<DevLoginForm>,
) -> Response {
    if !st.cfg.dev_login || st.cfg.sso.is_some() {
        return error_page(StatusCode::NOT_FOUND, "the dev login is off");
    }
    // Double-submit token: the form's value must match the cookie set with it.
    let pre = cookie(&headers, PRELOGIN_COOKIE).unwrap_or_default();
    if !same(&pre, &f.csrf) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The form's security token is missing or wrong.",
        );
    }
    let lp = st.broker.policy();
    let Some(id) = lp.policy.identity(&f.name) else {
        return error_page(StatusCode::NOT_FOUND, "no such identity");
    };
    start_session(
        &st,
        &id.actor(),
        "dev",
        &safe_return_path(f.return_to.as_deref()),
    )
    .await
}

/// Form with only a CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: ends the session server-side and clears the cookie.
pub(crate) async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    CheckedForm(s, _): CheckedForm<CsrfForm>,
) -> Response {
    if let Some(sid) = cookie(&headers, SESSION_COOKIE) {
        let now = st.broker.now();
        // Expire the stored session at once; a session that could not be
        // ended is not reported as ended.
        if let Err(e) = st
            .broker
            .store()
            .put_token(&session_hash(&sid), &s.actor, now, Some(now))
            .await
        {
            tracing::error!(error = %e, "could not end a session");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "You are not signed out: the session could not be ended. Try again.",
            );
        }
    }
    let mut resp = respond(
        StatusCode::OK,
        frame(
            "Signed out",
            None,
            None,
            html! { p { "You are signed out." } p { a href="/ui/login" { "Sign in again" } } },
        ),
    );
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&st, SESSION_COOKIE, "", 0));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_must_be_local() {
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "evil.example",
            "javascript:alert(1)",
            "/ui/\nSet-Cookie:x",
            "",
        ] {
            assert_eq!(safe_return_path(Some(bad)), "/ui/", "{bad:?}");
        }
        assert_eq!(
            safe_return_path(Some("/ui/requests/req-1?x=1")),
            "/ui/requests/req-1?x=1"
        );
        assert_eq!(safe_return_path(None), "/ui/");
    }

    #[test]
    fn cookies_parse_and_csrf_is_session_bound() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tk_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, "tk_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "tk"), None);
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert!(same(&csrf_for("a"), &csrf_for("a")));
        assert!(!same("", ""));
    }

    #[test]
    fn groups_from_array_or_string() {
        let m: serde_json::Map<_, _> =
            serde_json::from_str(r#"{"groups":["eng","ops"],"roles":"a b"}"#).unwrap();
        assert_eq!(groups_from(&m, "groups").unwrap().len(), 2);
        assert_eq!(groups_from(&m, "roles").unwrap().len(), 2);
        assert!(groups_from(&m, "none").is_none());
    }
}

crate::csrf::csrf_field!(CsrfForm);
