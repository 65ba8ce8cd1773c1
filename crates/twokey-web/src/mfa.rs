//! Step-up MFA with WebAuthn (`webauthn-rs`): registering and removing
//! security keys, and the assertion that confirms one approval.
//!
//! - Ceremony state lives in the store (so any replica can finish a ceremony
//!   another started), keyed by a random ceremony id, bound to the session
//!   (hash of the session id) and, for approvals, to the request id; it is
//!   taken out when used (single use, across replicas) and is good for
//!   [`CEREMONY_TTL`] only.
//! - The relying party is the host of `public_url`; WebAuthn needs a host
//!   name there (`localhost` or a real domain, not an IP address).
//! - Adding and removing a key are ledger entries written in the same
//!   transaction as the key row (`Store::commit`).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use twokey_core::event::MfaKey;
use twokey_core::{LedgerEvent, MfaConfirmation};
use twokey_store::{Change, CredentialRow, CredentialWrite, StoreError};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::auth::Session;
use crate::csrf::{CheckedForm, CheckedJson};
use maud::html;

use crate::html::{error_page, frame, respond, time, Who};
use crate::AppState;

/// How long a started ceremony may take.
pub(crate) const CEREMONY_TTL: Duration = Duration::from_secs(120);
const JS: &str = include_str!("../static/webauthn.js");

/// What a ceremony is for.
#[derive(Serialize, Deserialize)]
pub(crate) enum Purpose {
    /// Adding a key named `name`.
    Register(PasskeyRegistration, String),
    /// Confirming the approval of request `id`.
    Approve(PasskeyAuthentication, String),
}

/// A ceremony in flight, as kept in the store (kind [`CEREMONY_KIND`]; the
/// session hash it is bound to is the row's).
#[derive(Serialize, Deserialize)]
pub(crate) struct Ceremony {
    identity: String,
    purpose: Purpose,
}

/// Store kind of a security-key ceremony.
const CEREMONY_KIND: &str = "webauthn";

/// The relying party for `public_url`, or why there is none.
pub(crate) fn relying_party(public_url: &str) -> Result<Webauthn, String> {
    let origin = Url::parse(public_url).map_err(|e| format!("public_url {public_url:?}: {e}"))?;
    let host = origin
        .domain()
        .ok_or_else(|| {
            format!(
                "security keys need public_url to name the server by a host name (such as localhost or twokey.example.com), not an IP address; it is {public_url:?}"
            )
        })?
        .to_string();
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name("twokey").build())
        .map_err(|e| format!("WebAuthn relying party {host}: {e}"))
}

/// The relying party, or the JSON error the ceremony calls answer without one.
fn webauthn(st: &AppState) -> Result<&Webauthn, Response> {
    st.webauthn.as_ref().map_err(|_| {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "security keys are not available",
        )
    })
}

fn json_error(status: StatusCode, msg: &str) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A stable WebAuthn user handle for an identity (no personal data in it).
fn user_handle(identity: &str) -> Uuid {
    let d = Sha256::digest(format!("twokey-webauthn-user:{identity}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Uuid::from_bytes(b)
}

async fn stored_keys(
    st: &AppState,
    identity: &str,
) -> Result<Vec<(CredentialRow, Passkey)>, StoreError> {
    let rows = st.broker.store().credentials(identity).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match serde_json::from_str::<Passkey>(&r.passkey) {
            Ok(pk) => Some((r, pk)),
            Err(err) => {
                tracing::error!(credential = %r.id, error = %err, "stored security key does not decode; ignored");
                None
            }
        })
        .collect())
}

/// Stores a new ceremony for this session and answers the browser with its
/// id and the WebAuthn `options` to pass to `navigator.credentials`.
async fn begin_ceremony(
    st: &AppState,
    s: &Session,
    identity: String,
    purpose: Purpose,
    options: impl serde::Serialize,
) -> Response {
    let id = crate::auth::random_token();
    let c = Ceremony { identity, purpose };
    if let Err(m) = crate::state::put(st, CEREMONY_KIND, &id, &s.sid_hash, &c, CEREMONY_TTL).await {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, &m);
    }
    Json(serde_json::json!({ "ceremony": id, "options": options })).into_response()
}

/// Takes a ceremony out (single use) if it belongs to this session and is fresh.
async fn take_ceremony(st: &AppState, id: &str, s: &Session) -> Result<Ceremony, String> {
    // Expired ones are not returned: the store keeps them CEREMONY_TTL only.
    let (session, c): (String, Ceremony) = crate::state::take(st, CEREMONY_KIND, id)
        .await?
        .ok_or("unknown or already used security-key challenge (or it expired); try again")?;
    if session != s.sid_hash || c.identity != s.actor.key.to_string() {
        return Err("this security-key challenge was issued to another session".into());
    }
    Ok(c)
}

/// The script that talks to `navigator.credentials` (no inline script: CSP).
pub(crate) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

/// `GET /ui/keys`: my security keys.
pub(crate) async fn keys_page(State(st): State<AppState>, s: Session) -> Response {
    let who = Who {
        actor: &s.actor,
        csrf: &s.csrf,
    };
    let keys = match stored_keys(&st, &s.actor.key.to_string()).await {
        Ok(k) => k,
        Err(err) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &err.to_string()),
    };
    let body = html! {
        p { "A security key confirms your approvals of entitlements that require step-up MFA. Each approval asks the key again." }
        @if keys.is_empty() {
            p.muted #no-keys { "You have no security keys yet." }
        } @else {
            table #keys {
                caption { "Your security keys" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Credential id" } th scope="col" { "Added" }
                    th scope="col" { "Last used" } th scope="col" { span.muted { "Action" } }
                } }
                tbody {
                    @for (row, _) in &keys {
                        tr {
                            td { (row.name) }
                            td { code { (row.id.chars().take(16).collect::<String>()) "…" } }
                            td { (time(row.created_at)) }
                            td { (row.last_used_at.map(time).unwrap_or_else(|| "never".into())) }
                            td {
                                form method="post" action={ "/ui/keys/" (row.id) "/remove" } class="inline" {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    button type="submit" class="danger" aria-label={ "Remove key " (row.name) } { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @match &st.webauthn {
            Ok(_) => {
                section {
                    h2 { "Add a security key" }
                    form #register-key class="stack" data-csrf=(s.csrf) {
                        label for="key-name" { "Name for the key" }
                        input #key-name name="name" type="text" maxlength="60" required value="security key";
                        button type="submit" { "Add a security key" }
                        p #webauthn-status role="status" aria-live="polite" {}
                    }
                }
                script src="/ui/static/webauthn.js" {}
            }
            Err(m) => {
                p.error role="alert" { "Security keys are not available on this server: " (m) }
            }
        }
    };
    respond(
        StatusCode::OK,
        frame("Security keys", Some(who), None, body),
    )
}

/// Body of the JSON ceremony calls.
#[derive(Deserialize)]
pub(crate) struct StartBody {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /ui/keys/register/start`: the options for `navigator.credentials.create`.
pub(crate) async fn register_start(
    State(st): State<AppState>,
    CheckedJson(s, b): CheckedJson<StartBody>,
) -> Response {
    let name = b.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the key's name must be 1 to 60 printable characters",
        );
    }
    let wa = match webauthn(&st) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let identity = s.actor.key.to_string();
    let existing = match stored_keys(&st, &identity).await {
        Ok(k) => k,
        Err(err) => return json_error(StatusCode::SERVICE_UNAVAILABLE, &err.to_string()),
    };
    let exclude: Vec<_> = existing
        .iter()
        .map(|(_, pk)| pk.cred_id().clone())
        .collect();
    let (options, state) = match wa.start_passkey_registration(
        user_handle(&identity),
        &identity,
        &s.actor.name,
        Some(exclude),
    ) {
        Ok(x) => x,
        Err(err) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("WebAuthn: {err}"),
            )
        }
    };
    begin_ceremony(&st, &s, identity, Purpose::Register(state, name), options).await
}

/// Body of `POST /ui/keys/register/finish`.
#[derive(Deserialize)]
pub(crate) struct FinishRegister {
    #[serde(default)]
    csrf: String,
    ceremony: String,
    credential: RegisterPublicKeyCredential,
}

/// `POST /ui/keys/register/finish`: verify the attestation, store the key and
/// its ledger entry in one transaction.
pub(crate) async fn register_finish(
    State(st): State<AppState>,
    CheckedJson(s, b): CheckedJson<FinishRegister>,
) -> Response {
    let wa = match webauthn(&st) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let c = match take_ceremony(&st, &b.ceremony, &s).await {
        Ok(c) => c,
        Err(m) => return json_error(StatusCode::FORBIDDEN, &m),
    };
    let Purpose::Register(state, name) = c.purpose else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "that challenge was not for adding a key",
        );
    };
    let pk = match wa.finish_passkey_registration(&b.credential, &state) {
        Ok(pk) => pk,
        Err(err) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("the security key's answer did not verify: {err}"),
            )
        }
    };
    let id = b64url(pk.cred_id().as_ref());
    let doc = match serde_json::to_string(&pk) {
        Ok(d) => d,
        Err(err) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    };
    let now = st.broker.now();
    let identity = s.actor.key.to_string();
    let change = Change {
        now,
        policy_hash: st.broker.policy().policy.hash.clone(),
        credential: Some(CredentialWrite::Add(CredentialRow {
            id: id.clone(),
            identity: identity.clone(),
            name: name.clone(),
            passkey: doc,
            created_at: now,
            last_used_at: None,
        })),
        events: vec![(
            identity.clone(),
            LedgerEvent::MfaKeyAdded(MfaKey {
                method: "webauthn".into(),
                credential_id: id.clone(),
                name: name.clone(),
            })
            .by(identity),
        )],
        ..Default::default()
    };
    match st.broker.store().commit(change).await {
        Ok(_) => Json(serde_json::json!({"ok": true, "credential_id": id})).into_response(),
        Err(err) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the key could not be recorded, so it was not added: {err}"),
        ),
    }
}

/// Form with only a CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/keys/{id}/remove`: remove one of my keys (and record it).
pub(crate) async fn remove_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    CheckedForm(s, _): CheckedForm<CsrfOnly>,
) -> Response {
    let identity = s.actor.key.to_string();
    let keys = match st.broker.store().credentials(&identity).await {
        Ok(k) => k,
        Err(err) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &err.to_string()),
    };
    let Some(row) = keys.into_iter().find(|k| k.id == id) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "you have no security key with that id",
        );
    };
    let change = Change {
        now: st.broker.now(),
        policy_hash: st.broker.policy().policy.hash.clone(),
        credential: Some(CredentialWrite::Remove {
            identity: identity.clone(),
            id: id.clone(),
        }),
        events: vec![(
            identity.clone(),
            LedgerEvent::MfaKeyRemoved(MfaKey {
                method: "webauthn".into(),
                credential_id: id.clone(),
                name: row.name.clone(),
            })
            .by(identity),
        )],
        ..Default::default()
    };
    match st.broker.store().commit(change).await {
        Ok(_) => Redirect::to("/ui/keys").into_response(),
        Err(StoreError::Conflict) => {
            error_page(StatusCode::NOT_FOUND, "that key was already removed")
        }
        Err(err) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the removal could not be recorded, so the key stays: {err}"),
        ),
    }
}

/// Body of `POST /ui/requests/{id}/mfa`.
#[derive(Deserialize)]
pub(crate) struct ApproveStart {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/requests/{id}/mfa`: a challenge bound to this session and this
/// request, for `navigator.credentials.get`.
pub(crate) async fn approve_start(
    State(st): State<AppState>,
    Path(id): Path<String>,
    CheckedJson(s, _): CheckedJson<ApproveStart>,
) -> Response {
    let wa = match webauthn(&st) {
        Ok(w) => w,
        Err(r) => return r,
    };
    if st.broker.get(&id).await.is_err() {
        return json_error(StatusCode::NOT_FOUND, "no such request");
    }
    let identity = s.actor.key.to_string();
    let keys: Vec<Passkey> = match stored_keys(&st, &identity).await {
        Ok(k) => k.into_iter().map(|(_, pk)| pk).collect(),
        Err(err) => return json_error(StatusCode::SERVICE_UNAVAILABLE, &err.to_string()),
    };
    if keys.is_empty() {
        return json_error(
            StatusCode::CONFLICT,
            "you have no security key; add one under Security keys first",
        );
    }
    let (options, state) = match wa.start_passkey_authentication(&keys) {
        Ok(x) => x,
        Err(err) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("WebAuthn: {err}"),
            )
        }
    };
    begin_ceremony(&st, &s, identity, Purpose::Approve(state, id), options).await
}

/// Verifies the assertion posted with an approval form and returns the
/// confirmation the broker needs. `Err` is a message for the approver.
pub(crate) async fn verify_approval(
    st: &AppState,
    s: &Session,
    request_id: &str,
    ceremony: &str,
    assertion: &str,
) -> Result<MfaConfirmation, String> {
    let wa = st.webauthn.as_ref().map_err(|m| m.clone())?;
    if ceremony.is_empty() || assertion.is_empty() {
        return Err("this approval must be confirmed with your security key; use the Approve button on the request page".into());
    }
    let c = take_ceremony(st, ceremony, s).await?;
    let Purpose::Approve(state, rid) = c.purpose else {
        return Err("that challenge was not for an approval".into());
    };
    if rid != request_id {
        return Err(format!(
            "the security-key challenge was issued for request {rid}, not {request_id}"
        ));
    }
    let cred: PublicKeyCredential = serde_json::from_str(assertion)
        .map_err(|e| format!("the security key's answer is not valid JSON: {e}"))?;
    let result = wa
        .finish_passkey_authentication(&cred, &state)
        .map_err(|e| format!("the security key's answer did not verify: {e}"))?;
    let identity = s.actor.key.to_string();
    let cred_id = b64url(result.cred_id().as_ref());
    // Keep the signature counter current (clone detection), and note the use.
    let now = st.broker.now();
    match stored_keys(st, &identity).await {
        Ok(keys) => {
            for (row, mut pk) in keys {
                if row.id != cred_id {
                    continue;
                }
                let updated = pk.update_credential(&result) == Some(true);
                let doc = if updated {
                    serde_json::to_string(&pk).ok()
                } else {
                    None
                };
                if let Err(err) = st
                    .broker
                    .store()
                    .credential_used(&identity, &row.id, doc.as_deref(), now)
                    .await
                {
                    tracing::warn!(error = %err, "could not update the security key's counter");
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not read security keys after verification"),
    }
    Ok(MfaConfirmation {
        method: "webauthn".into(),
        credential_id: cred_id,
        request_id: request_id.to_string(),
        verified_at: now,
    })
}

crate::csrf::csrf_field!(StartBody, FinishRegister, CsrfOnly, ApproveStart);
