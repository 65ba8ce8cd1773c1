//! Custody of root secrets on the server: the `/v1/custody/...` endpoints and
//! the steps behind them. The server only stores and hands out sealed
//! envelopes; it never holds a key that opens one. The rules (who may seal,
//! release, open; the release window) are `twokey_core::custody`'s; each
//! step commits its rows with an alerting ledger entry in one transaction.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use twokey_core::custody::{self as cu, CustodyEvent, CustodySecret};
use twokey_core::event::Refused;
use twokey_core::{Actor, Event, LedgerEvent, Request};
use twokey_store::custody::{CustodyWrite, ReleaseRow, RequestRow, ShareRow};
use twokey_store::Change;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiJson, Auth};
use crate::broker::Broker;
use crate::error::{ApiError, Problem};

/// Largest envelope accepted (base64 of an age file holding one share).
const MAX_ENVELOPE: usize = 16 * 1024;

/// The custody routes, merged into [`crate::api::router`].
/// Each route is registered with its `#[utoipa::path]`, so the generated
/// contract documents it.
pub fn routes() -> OpenApiRouter<Arc<Broker>> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets))
        .routes(routes!(seal))
        .routes(routes!(progress))
        .routes(routes!(set_recipient))
        .routes(routes!(my_share))
        .routes(routes!(release))
        .routes(routes!(releases))
}

fn secret<'p>(b: &'p twokey_core::Policy, id: &str) -> Result<&'p CustodySecret, ApiError> {
    b.custody
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("no custody secret {id:?} in the policy")))
}

fn envelope_ok(what: &str, e: &str) -> Result<(), ApiError> {
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    if e.is_empty() || e.len() > MAX_ENVELOPE || !e.chars().all(b64) {
        return Err(ApiError::BadRequest(format!(
            "{what}: an envelope is a base64 age file of at most {MAX_ENVELOPE} characters"
        )));
    }
    Ok(())
}

async fn commit(
    b: &Broker,
    subject: &str,
    event: Event,
    writes: Vec<CustodyWrite>,
) -> Result<(), ApiError> {
    let lp = b.policy();
    b.store()
        .commit(Change {
            now: b.now(),
            policy_hash: lp.policy.hash.clone(),
            events: vec![(subject.to_string(), event)],
            custody: writes,
            ..Default::default()
        })
        .await?;
    // Every custody entry alerts: deliver it now, not at the next poll.
    b.wake();
    Ok(())
}

/// A declared secret and its sealing state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretView {
    /// The policy's declaration.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub declared: serde_json::Value,
    /// Current generation (0: never sealed).
    pub generation: u64,
    /// Released since the last sealing: rotate it and seal again.
    pub needs_rotation: bool,
    /// When it was sealed.
    pub sealed_at: Option<i64>,
    /// When it was last released, and for which request.
    pub released_at: Option<i64>,
    /// The request it was last released for.
    pub released_for: Option<String>,
}

#[utoipa::path(get, path = "/v1/custody/secrets", tag = "custody",
    responses(
        (status = 200, description = "The declared secrets and their sealing state", body = Vec<SecretView>),
    ))]
async fn list_secrets(
    State(b): State<Arc<Broker>>,
    Auth(_a): Auth,
) -> Result<Json<Vec<SecretView>>, ApiError> {
    let lp = b.policy();
    let mut out = Vec::new();
    for s in lp.policy.custody.values() {
        let row = b.store().custody_secret(&s.id).await?;
        out.push(SecretView {
            declared: serde_json::to_value(s).unwrap_or_default(),
            generation: row.as_ref().map(|r| r.generation).unwrap_or(0),
            needs_rotation: row.as_ref().is_some_and(|r| r.needs_rotation),
            sealed_at: row.as_ref().map(|r| r.sealed_at),
            released_at: row.as_ref().and_then(|r| r.released_at),
            released_for: row.and_then(|r| r.released_for),
        });
    }
    Ok(Json(out))
}

/// Body of `POST /v1/custody/secrets/{id}/seal`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SealBody {
    /// The new generation (current + 1).
    #[serde(deserialize_with = "twokey_core::time::whole_number")]
    pub generation: u64,
    /// One sealed share per custodian, in policy order.
    pub shares: Vec<SealedShare>,
}

/// One sealed share of a sealing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SealedShare {
    /// 1-based index.
    #[schema(minimum = 1, maximum = 255)]
    #[serde(deserialize_with = "twokey_core::time::whole_number")]
    pub index: u8,
    /// The age file, base64.
    pub envelope: String,
}

#[utoipa::path(post, path = "/v1/custody/secrets/{id}/seal", tag = "custody", params(("id" = String, Path, description = "Secret id")), request_body = SealBody,
    responses(
        (status = 201, description = "Sealed: the new generation is stored", body = Sealed),
        (status = 403, description = "The caller may not take this step", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such secret or request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not in a state that allows this step", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: the body does not fit the policy or the step", body = Problem, content_type = "application/problem+json"),
    ))]
async fn seal(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SealBody>,
) -> Result<Response, ApiError> {
    let lp = b.policy();
    let s = secret(&lp.policy, &id)?;
    cu::may_seal(&lp.policy, s, &actor)?;
    let current = b
        .store()
        .custody_secret(&id)
        .await?
        .map(|r| r.generation)
        .unwrap_or(0);
    let indexes: Vec<u8> = body.shares.iter().map(|x| x.index).collect();
    cu::check_seal(s, current, body.generation, &indexes)?;
    let mut rows = Vec::new();
    for (sh, c) in body.shares.iter().zip(&s.custodians) {
        envelope_ok(&format!("share {}", sh.index), &sh.envelope)?;
        rows.push(ShareRow {
            index: sh.index,
            custodian: c.key.to_string(),
            recipient: c.recipient.clone(),
            envelope: sh.envelope.clone(),
        });
    }
    let ev = CustodyEvent::Sealed {
        secret: id.clone(),
        generation: body.generation,
        custodians: rows.len(),
        threshold: s.threshold,
    };
    commit(
        &b,
        &s.subject(),
        ev.event(&actor.key),
        vec![CustodyWrite::Seal {
            secret: id.clone(),
            generation: body.generation,
            sealed_by: actor.key.to_string(),
            shares: rows,
        }],
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Sealed {
            secret: id,
            generation: body.generation,
        }),
    )
        .into_response())
}

/// Answer of a sealing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Sealed {
    /// Secret id.
    pub secret: String,
    /// The generation now in force.
    pub generation: u64,
}

async fn custody_request(
    b: &Broker,
    id: &str,
) -> Result<(Request, CustodySecret, Option<RequestRow>), ApiError> {
    let req = b.get(id).await?;
    let lp = b.policy();
    let s = cu::secret_of_request(&lp.policy, &req)?.clone();
    let row = b.store().custody_request(id).await?;
    Ok((req, s, row))
}

/// Progress of a custody request (k of M).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Request id.
    pub request: String,
    /// Its state.
    pub state: String,
    /// Secret id.
    pub secret: String,
    /// The generation it opens (when the one-time key is set).
    pub generation: Option<u64>,
    /// Releases so far.
    pub released: usize,
    /// Threshold.
    pub threshold: u32,
    /// Who released (names), by share index.
    pub released_by: Vec<String>,
    /// Whether the requester's one-time key is set.
    pub recipient_set: bool,
}

#[utoipa::path(get, path = "/v1/custody/requests/{id}", tag = "custody", params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "k of M released", body = Progress),
        (status = 403, description = "The caller may not take this step", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such secret or request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: the body does not fit the policy or the step", body = Problem, content_type = "application/problem+json"),
    ))]
async fn progress(
    State(b): State<Arc<Broker>>,
    Auth(_a): Auth,
    Path(id): Path<String>,
) -> Result<Json<Progress>, ApiError> {
    let (req, s, row) = custody_request(&b, &id).await?;
    let rel = b.store().custody_releases(&id).await?;
    Ok(Json(Progress {
        request: id,
        state: req.state.as_str().into(),
        secret: s.id.clone(),
        generation: row.as_ref().map(|r| r.generation),
        released: rel.len(),
        threshold: s.threshold,
        released_by: rel
            .iter()
            .map(|r| {
                s.custodian(r.index)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| r.custodian.clone())
            })
            .collect(),
        recipient_set: row.is_some(),
    }))
}

/// Body of `POST /v1/custody/requests/{id}/recipient`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecipientBody {
    /// The requester's one-time age recipient.
    pub recipient: String,
}

#[utoipa::path(post, path = "/v1/custody/requests/{id}/recipient", tag = "custody", params(("id" = String, Path, description = "Request id")), request_body = RecipientBody,
    responses(
        (status = 200, description = "The one-time recipient is set", body = Progress),
        (status = 403, description = "The caller may not take this step", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such secret or request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not in a state that allows this step", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: the body does not fit the policy or the step", body = Problem, content_type = "application/problem+json"),
    ))]
async fn set_recipient(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RecipientBody>,
) -> Result<Json<Progress>, ApiError> {
    let (req, s, row) = custody_request(&b, &id).await?;
    cu::may_set_recipient(&req, &actor, row.is_some())?;
    if !cu::looks_like_age_recipient(&body.recipient) {
        return Err(ApiError::BadRequest(format!(
            "recipient {:?} is not an age X25519 public key (age1...)",
            body.recipient
        )));
    }
    let generation = b
        .store()
        .custody_secret(&s.id)
        .await?
        .map(|r| r.generation)
        .ok_or_else(|| {
            twokey_core::DomainError::WrongState(format!(
                "custody secret {:?} has not been sealed yet (twokey custody seal)",
                s.id
            ))
        })?;
    let ev = CustodyEvent::RecipientSet {
        secret: s.id.clone(),
        generation,
    };
    commit(
        &b,
        &id,
        ev.event(&actor.key),
        vec![CustodyWrite::Recipient {
            request: id.clone(),
            row: RequestRow {
                secret: s.id.clone(),
                generation,
                recipient: body.recipient,
            },
        }],
    )
    .await?;
    progress(State(b), Auth(actor), Path(id)).await
}

/// What a custodian needs to release their share: the sealed share and
/// what the release must be bound to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShareForRelease {
    /// Request id.
    pub request: String,
    /// Secret id.
    pub secret: String,
    /// Seal generation.
    pub generation: u64,
    /// The custodian's share index.
    pub index: u8,
    /// The custodian's identity key.
    pub custodian: String,
    /// The recipient the share is sealed to (the custodian's).
    pub recipient: String,
    /// The sealed share, base64.
    pub envelope: String,
    /// The requester's one-time recipient to re-seal it to.
    pub release_to: String,
    /// Who asked, and why (for the custodian to check before releasing).
    pub requester: String,
    /// The request's reason.
    pub reason: String,
}

/// Records a refused custody step by someone who may not take it (not a
/// custodian, not the requester): an alerting ledger entry on the request.
/// The refusal stands whether or not the entry could be written.
async fn refused<T>(
    b: &Broker,
    id: &str,
    actor: &Actor,
    attempt: &str,
    res: Result<T, ApiError>,
) -> Result<T, ApiError> {
    if let Err(ApiError::Domain(twokey_core::DomainError::Forbidden(reason))) = &res {
        let ev = LedgerEvent::CustodyRefused(Refused {
            reason: reason.clone(),
            attempt: attempt.into(),
        })
        .by(actor.key.to_string());
        if let Err(e) = commit(b, id, ev, vec![]).await {
            tracing::error!(error = %e, request = id, "could not record a refused custody step");
        }
    }
    res
}

async fn check_release(
    b: &Broker,
    id: &str,
    actor: &Actor,
) -> Result<(Request, CustodySecret, RequestRow, u8, Vec<ReleaseRow>), ApiError> {
    let res = check_release_inner(b, id, actor).await;
    refused(b, id, actor, "release", res).await
}

async fn check_release_inner(
    b: &Broker,
    id: &str,
    actor: &Actor,
) -> Result<(Request, CustodySecret, RequestRow, u8, Vec<ReleaseRow>), ApiError> {
    let (req, s, row) = custody_request(b, id).await?;
    let current = b
        .store()
        .custody_secret(&s.id)
        .await?
        .map(|r| r.generation)
        .unwrap_or(0);
    let released = b.store().custody_releases(id).await?;
    let idx: Vec<u8> = released.iter().map(|r| r.index).collect();
    let index = cu::may_release(
        &s,
        &req,
        actor,
        row.as_ref().map(|r| r.generation),
        current,
        &idx,
    )?;
    let row = row.ok_or_else(|| ApiError::NotFound(format!("request {id} has no one-time key")))?;
    Ok((req, s, row, index, released))
}

#[utoipa::path(get, path = "/v1/custody/requests/{id}/share", tag = "custody", params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The caller's sealed share and what to bind the release to", body = ShareForRelease),
        (status = 403, description = "The caller may not take this step", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such secret or request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not in a state that allows this step", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: the body does not fit the policy or the step", body = Problem, content_type = "application/problem+json"),
    ))]
async fn my_share(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<ShareForRelease>, ApiError> {
    let (req, s, row, index, _) = check_release(&b, &id, &actor).await?;
    let share = b
        .store()
        .custody_share(&s.id, index)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no share {index} of {:?} is stored", s.id)))?;
    Ok(Json(ShareForRelease {
        request: id,
        secret: s.id.clone(),
        generation: row.generation,
        index,
        custodian: share.custodian,
        recipient: share.recipient,
        envelope: share.envelope,
        release_to: row.recipient,
        requester: req.requester_name.clone(),
        reason: req.reason.clone(),
    }))
}

/// Body of `POST /v1/custody/requests/{id}/release`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleaseBody {
    /// The custodian's share index.
    #[schema(minimum = 1, maximum = 255)]
    #[serde(deserialize_with = "twokey_core::time::whole_number")]
    pub index: u8,
    /// The share re-sealed to the one-time recipient, base64.
    pub envelope: String,
}

#[utoipa::path(post, path = "/v1/custody/requests/{id}/release", tag = "custody", params(("id" = String, Path, description = "Request id")), request_body = ReleaseBody,
    responses(
        (status = 200, description = "Released; the progress after it", body = Progress),
        (status = 403, description = "The caller may not take this step", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such secret or request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not in a state that allows this step", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: the body does not fit the policy or the step", body = Problem, content_type = "application/problem+json"),
    ))]
async fn release(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Json<Progress>, ApiError> {
    let (_req, s, _row, index, released) = check_release(&b, &id, &actor).await?;
    if body.index != index {
        return Err(twokey_core::DomainError::Forbidden(format!(
            "your share is index {index}, not {}: a custodian releases only their own share",
            body.index
        ))
        .into());
    }
    envelope_ok("release", &body.envelope)?;
    let count = released.len() + 1;
    let ev = CustodyEvent::Released {
        secret: s.id.clone(),
        index,
        released: count,
        threshold: s.threshold,
    };
    commit(
        &b,
        &id,
        ev.event(&actor.key),
        vec![CustodyWrite::Release {
            request: id.clone(),
            secret: s.id.clone(),
            row: ReleaseRow {
                index,
                custodian: actor.key.to_string(),
                envelope: body.envelope,
                released_at: b.now(),
            },
            threshold_reached: count == s.threshold as usize,
        }],
    )
    .await?;
    progress(State(b), Auth(actor), Path(id)).await
}

/// The releases handed to the requester.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Releases {
    /// Request id.
    pub request: String,
    /// Secret id.
    pub secret: String,
    /// Generation.
    pub generation: u64,
    /// Threshold.
    pub threshold: u32,
    /// Custodian identity keys in share order (share `i` is `custodians[i-1]`'s).
    pub custodians: Vec<String>,
    /// The releases.
    #[schema(value_type = Vec<Object>)]
    pub releases: Vec<ReleaseRow>,
}

#[utoipa::path(get, path = "/v1/custody/requests/{id}/releases", tag = "custody", params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The releases, for the requester to open", body = Releases),
        (status = 403, description = "The caller may not take this step", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such secret or request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not in a state that allows this step", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: the body does not fit the policy or the step", body = Problem, content_type = "application/problem+json"),
    ))]
async fn releases(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Releases>, ApiError> {
    let (req, s, row) = custody_request(&b, &id).await?;
    refused(
        &b,
        &id,
        &actor,
        "open",
        cu::may_open(&req, &actor).map_err(ApiError::from),
    )
    .await?;
    let row = row.ok_or_else(|| ApiError::NotFound(format!("request {id} has no one-time key")))?;
    let rel = b.store().custody_releases(&id).await?;
    if rel.len() >= s.threshold as usize {
        let ev = CustodyEvent::Opened {
            secret: s.id.clone(),
            shares: rel.len(),
        };
        commit(&b, &id, ev.event(&actor.key), vec![]).await?;
    }
    Ok(Json(Releases {
        request: id,
        secret: s.id.clone(),
        generation: row.generation,
        threshold: s.threshold,
        custodians: s.custodians.iter().map(|c| c.key.to_string()).collect(),
        releases: rel,
    }))
}
