//! `twokey login`: the CLI gets a short-lived API token through the browser.
//!
//! 1. The CLI listens on `127.0.0.1:PORT` and opens
//!    `/ui/cli-login?port=PORT&state=STATE&challenge=BASE64URL(SHA256(VERIFIER))`.
//! 2. The person signs in (SSO) and confirms; the server sends the browser to
//!    `http://127.0.0.1:PORT/callback?code=CODE&state=STATE`. Only the port
//!    comes from the query, so the target is always loopback (no open
//!    redirect).
//! 3. The CLI posts `{code, verifier}` to `/v1/cli-login/token`: the code is
//!    single use, valid for [`CODE_TTL`], and only redeemable with the verifier
//!    whose hash the login started with (PKCE-like binding). The token lasts
//!    [`TOKEN_TTL_MS`] and its issue is a ledger entry.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use twokey_core::event::TokenIssued;
use twokey_core::{Actor, LedgerEvent};

use crate::auth::Session;
use crate::csrf::CheckedForm;
use maud::html;

use crate::html::{error_page, frame, respond, Who};
use crate::AppState;

/// How long a code waits for the CLI to redeem it.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);
/// Lifetime of a token issued through `twokey login`.
pub(crate) const TOKEN_TTL_MS: i64 = 8 * 3_600_000;

/// A code waiting to be exchanged, as kept in the store (kind
/// [`CODE_KIND`], keyed by the code), so the CLI may redeem it on any replica.
#[derive(serde::Serialize, Deserialize)]
pub(crate) struct PendingCode {
    actor: Actor,
    challenge: String,
}

/// Store kind of a `twokey login` code.
const CODE_KIND: &str = "cli-login";

/// Query (and confirm form) of `/ui/cli-login`.
#[derive(Deserialize)]
pub(crate) struct CliLogin {
    #[serde(default)]
    port: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    csrf: String,
}

fn b64url_ok(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks the three parameters; the loopback callback URL on success.
fn validate(q: &CliLogin) -> Result<u16, String> {
    let port: u16 = q
        .port
        .parse()
        .map_err(|_| format!("port {:?} is not a port number", q.port))?;
    if port < 1024 {
        return Err(format!(
            "port {port} is privileged; twokey login listens on a high port"
        ));
    }
    if !b64url_ok(&q.state, 16, 128) {
        return Err("state must be 16 to 128 characters of [A-Za-z0-9_-]".into());
    }
    // BASE64URL(SHA-256(verifier)) without padding: 43 characters.
    if !b64url_ok(&q.challenge, 43, 43) {
        return Err(
            "challenge must be the unpadded base64url SHA-256 of the verifier (43 characters)"
                .into(),
        );
    }
    Ok(port)
}

/// `GET /ui/cli-login`: after sign-in, asks the person to confirm.
pub(crate) async fn start(
    State(_st): State<AppState>,
    s: Session,
    Query(q): Query<CliLogin>,
) -> Response {
    if let Err(m) = validate(&q) {
        return error_page(StatusCode::BAD_REQUEST, &format!("Bad CLI login link: {m}"));
    }
    let who = Who {
        actor: &s.actor,
        csrf: &s.csrf,
    };
    let body = html! {
        p {
            "The twokey command line on this computer asks for a token to act as "
            strong { (s.actor.name) } " for " (TOKEN_TTL_MS / 3_600_000) " hours."
        }
        p.muted {
            "Continue only if you just ran " code { "twokey login" }
            ". The token is sent to the program listening on 127.0.0.1:" (q.port) " of your computer."
        }
        form method="post" action="/ui/cli-login" class="stack" {
            input type="hidden" name="csrf" value=(s.csrf);
            input type="hidden" name="port" value=(q.port);
            input type="hidden" name="state" value=(q.state);
            input type="hidden" name="challenge" value=(q.challenge);
            button type="submit" #cli-allow { "Sign in the command line" }
        }
    };
    respond(
        StatusCode::OK,
        frame("Sign in the command line", Some(who), None, body),
    )
}

/// `POST /ui/cli-login`: issues a one-time code and sends the browser to the
/// CLI's loopback listener.
pub(crate) async fn confirm(
    State(st): State<AppState>,
    CheckedForm(s, q): CheckedForm<CliLogin>,
) -> Response {
    let port = match validate(&q) {
        Ok(p) => p,
        Err(m) => return error_page(StatusCode::BAD_REQUEST, &format!("Bad CLI login: {m}")),
    };
    let code = crate::auth::random_token();
    let pending = PendingCode {
        actor: s.actor.clone(),
        challenge: q.challenge.clone(),
    };
    if let Err(m) = crate::state::put(&st, CODE_KIND, &code, "", &pending, CODE_TTL).await {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, &m);
    }
    // The target is built here from the port alone: always loopback.
    let target = format!(
        "http://127.0.0.1:{port}/callback?code={code}&state={}",
        q.state
    );
    let who = Who {
        actor: &s.actor,
        csrf: &s.csrf,
    };
    // A link (and a refresh) rather than a 303: the CSP's form-action 'self'
    // would block a form's redirect to another origin.
    let body = html! {
        p { "Handing the sign-in to the command line…" }
        p { a #cli-continue href=(target) { "Continue to twokey on this computer" } }
    };
    let html = frame("Sign in the command line", Some(who), Some(&target), body);
    respond(StatusCode::OK, html)
}

/// Body of `POST /v1/cli-login/token`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Exchange {
    /// The one-time code the browser handed to the CLI.
    #[serde(default)]
    code: String,
    /// The verifier whose SHA-256 (base64url) was the login's challenge.
    #[serde(default)]
    verifier: String,
}

/// The token `twokey login` receives.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct IssuedToken {
    /// The API token (bearer).
    token: String,
    /// When it expires, Unix milliseconds.
    expires_at: i64,
    /// The identity key (`issuer|subject`).
    identity: String,
    /// Display name.
    name: String,
}

fn problem(status: StatusCode, detail: &str) -> Response {
    twokey_server::error::Problem::new(status, "cli-login", detail).response()
}

/// Exchanges a `twokey login` code and its verifier for a short-lived API
/// token (single use, within 60 s of the browser's confirmation).
#[utoipa::path(post, path = "/v1/cli-login/token", tag = "identity", security(()),
    request_body = Exchange,
    responses(
        (status = 200, description = "The token", body = IssuedToken),
        (status = 401, description = "Unknown, used or expired code, or a verifier that does not match", body = twokey_server::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The issue could not be recorded; no token was issued", body = twokey_server::error::Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn exchange(
    State(st): State<AppState>,
    twokey_server::api::ApiJson(x): twokey_server::api::ApiJson<Exchange>,
) -> Response {
    let pending: Option<(String, PendingCode)> =
        match crate::state::take(&st, CODE_KIND, &x.code).await {
            Ok(p) => p,
            Err(m) => return problem(StatusCode::SERVICE_UNAVAILABLE, &m),
        };
    let Some((_, p)) = pending else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "unknown, used or expired login code; run twokey login again",
        );
    };
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(x.verifier.as_bytes()));
    if x.verifier.len() < 43 || !bool::from(digest.as_bytes().ct_eq(p.challenge.as_bytes())) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "the verifier does not match the login's challenge",
        );
    }
    let now = st.broker.now();
    let expires = now + TOKEN_TTL_MS;
    let token = twokey_server::new_token();
    let key = p.actor.key.to_string();
    let ev = LedgerEvent::TokenIssued(TokenIssued {
        method: "cli-login".into(),
        expires_at: expires,
        name: p.actor.name.clone(),
    })
    .by(key.clone());
    // Recorded first: a token whose issue cannot be recorded is not issued.
    let hash = st.broker.policy().policy.hash.clone();
    if let Err(err) = st
        .broker
        .store()
        .record(now, &hash, vec![(key.clone(), ev)])
        .await
    {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the token could not be recorded: {err}"),
        );
    }
    if let Err(err) = st
        .broker
        .store()
        .put_token(
            &twokey_server::token_hash(&token),
            &p.actor,
            now,
            Some(expires),
        )
        .await
    {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the token could not be stored: {err}"),
        );
    }
    Json(IssuedToken {
        token,
        expires_at: expires,
        identity: key,
        name: p.actor.name,
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(port: &str, state: &str, challenge: &str) -> CliLogin {
        CliLogin {
            port: port.into(),
            state: state.into(),
            challenge: challenge.into(),
            csrf: String::new(),
        }
    }

    #[test]
    fn only_a_port_and_well_formed_values_are_accepted() {
        let ch = "a".repeat(43);
        let st = "s".repeat(32);
        assert_eq!(validate(&q("49152", &st, &ch)), Ok(49152));
        for bad in [
            q("evil.example", &st, &ch),
            q("80", &st, &ch),
            q("70000", &st, &ch),
            q("49152@evil.example", &st, &ch),
            q("49152", "short", &ch),
            q("49152", &format!("{st}&x=1"), &ch),
            q("49152", &st, "abc"),
            q("49152", &st, &format!("{}/", "a".repeat(42))),
        ] {
            assert!(
                validate(&bad).is_err(),
                "{} {} {}",
                bad.port,
                bad.state,
                bad.challenge
            );
        }
    }
}

crate::csrf::csrf_field!(CliLogin);
