//! The versioned JSON API (`/v1/...`). Handlers extract, call the broker and
//! map the error; no rule lives here.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use twokey_core::request::approvals_counted;
use twokey_core::{Actor, NewRequest, Request, ReviewDecision, State as RState};

use crate::broker::Broker;
use crate::error::ApiError;

/// The OpenAPI document served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Builds the router.
pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/whoami", get(whoami))
        .route("/v1/requests", get(list_requests).post(create_request))
        .route("/v1/requests/{id}", get(show_request))
        .route("/v1/requests/{id}/approve", post(approve))
        .route("/v1/requests/{id}/deny", post(deny))
        .route("/v1/requests/{id}/cancel", post(cancel))
        .route("/v1/requests/{id}/revoke", post(revoke))
        .route("/v1/requests/{id}/extend", post(extend))
        .route(
            "/v1/requests/{id}/review-break-glass",
            post(review_break_glass),
        )
        .route("/v1/requests/{id}/secret", post(take_secret))
        .route("/v1/policy", get(show_policy))
        .route("/v1/policy/proposals", get(list_proposals).post(propose))
        .route("/v1/policy/proposals/{id}/approve", post(approve_proposal))
        .route("/v1/policy/proposals/{id}/reject", post(reject_proposal))
        .route("/v1/ledger", get(ledger))
        .merge(crate::custody::routes())
        .fallback(fallback)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1024 * 1024))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(broker)
}

/// A JSON body whose rejection is a problem-details error saying what is
/// wrong with the body (axum's default is plain text).
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(ApiError::BadRequest(format!(
                "invalid request body: {}",
                rej.body_text()
            ))),
        }
    }
}

/// An optional JSON body: empty means `T::default()`.
pub struct OptJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for OptJson<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::BadRequest(format!("invalid request body: {}", e.body_text()))
            })?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(OptJson(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))
    }
}

/// Unknown paths get a problem-details 404 too.
async fn fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no such endpoint {}; see /v1/openapi.json",
        uri.path()
    ))
}

/// The authenticated caller, from `Authorization: Bearer <token>`.
pub struct Auth(pub Actor);

impl FromRequestParts<Arc<Broker>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        broker: &Arc<Broker>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "missing Authorization: Bearer <token> header (set TWOKEY_TOKEN)".into(),
                )
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be \"Bearer <token>\"".into())
        })?;
        let actor = broker
            .store()
            .actor_for_token(&crate::token_hash(token.trim()), broker.now())
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or expired token".into()))?;
        Ok(Auth(broker.refresh_actor(actor)))
    }
}

/// A request as the API shows it: the stored request plus derived fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestView {
    /// The request.
    #[serde(flatten)]
    pub request: Request,
    /// Approvals counted so far.
    pub approvals: usize,
    /// Approvals required by the entitlement in force.
    pub approvals_required: u32,
    /// Milliseconds of grant left, for active grants.
    pub time_left_ms: Option<i64>,
    /// The last provider error, while the broker is retrying.
    pub last_error: Option<String>,
}

async fn view(b: &Broker, r: Request) -> Result<RequestView, ApiError> {
    let now = b.now();
    let required = b
        .policy()
        .policy
        .entitlement(&r.entitlement)
        .map(|e| e.approval.count)
        .unwrap_or(0);
    let last_error = if matches!(r.state, RState::Approved | RState::Revoking) {
        b.store()
            .last_error(&r.id)
            .await?
            .map(|(e, n)| format!("{e} (attempt {n})"))
    } else {
        None
    };
    Ok(RequestView {
        approvals: approvals_counted(&r),
        approvals_required: required,
        time_left_ms: (r.state == RState::Active)
            .then(|| r.ends_at.map(|e| (e - now).max(0)))
            .flatten(),
        last_error,
        request: r,
    })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(b): State<Arc<Broker>>) -> Response {
    match b.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unavailable: {e}"),
        )
            .into_response(),
    }
}

async fn metrics(State(b): State<Arc<Broker>>) -> Response {
    let mut body = b.metrics.render();
    if let Ok(counts) = b.store().state_counts().await {
        body.push_str("# HELP twokey_requests Requests by state.\n# TYPE twokey_requests gauge\n");
        for (state, n) in counts {
            body.push_str(&format!("twokey_requests{{state=\"{state}\"}} {n}\n"));
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn whoami(Auth(actor): Auth) -> Json<Actor> {
    Json(actor)
}

#[derive(Deserialize)]
struct ListQuery {
    /// `mine` (default), `waiting` (for me to review), `all`, `active`.
    scope: Option<String>,
}

async fn list_requests(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let reqs = match q.scope.as_deref().unwrap_or("mine") {
        "mine" => {
            b.store()
                .requests(Some(&actor.key.to_string()), &[], 200)
                .await?
        }
        "waiting" => b.waiting_for(&actor).await?,
        "all" => b.store().requests(None, &[], 200).await?,
        "active" => b.store().requests(None, &[RState::Active], 500).await?,
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown scope {other:?}: use mine, waiting, active or all"
            )))
        }
    };
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        out.push(view(&b, r).await?);
    }
    Ok(Json(out))
}

/// Body of `POST /v1/requests`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateBody {
    /// Entitlement name.
    pub entitlement: String,
    /// Duration such as `30m`; the entitlement's default when absent.
    pub duration: Option<String>,
    /// Reason.
    #[serde(default)]
    pub reason: String,
    /// Ticket id.
    pub ticket: Option<String>,
    /// Break-glass self-activation.
    #[serde(default)]
    pub break_glass: bool,
}

fn parse_dur(d: Option<&str>) -> Result<Option<i64>, ApiError> {
    d.map(|s| twokey_core::time::parse_duration(s).map_err(ApiError::BadRequest))
        .transpose()
}

async fn create_request(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    let input = NewRequest {
        entitlement: body.entitlement,
        duration_ms: parse_dur(body.duration.as_deref())?,
        reason: body.reason,
        ticket: body.ticket,
        break_glass: body.break_glass,
    };
    let r = b.create_request(&actor, &input).await?;
    Ok((StatusCode::CREATED, Json(view(&b, r).await?)).into_response())
}

async fn show_request(
    State(b): State<Arc<Broker>>,
    Auth(_actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r = b.get(&id).await?;
    let timeline = b.store().ledger_for(&id).await?;
    let mut v = serde_json::to_value(view(&b, r).await?)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    v["timeline"] = serde_json::to_value(timeline).unwrap_or_default();
    Ok(Json(v))
}

/// Body of review calls.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CommentBody {
    /// Optional comment.
    #[serde(default)]
    pub comment: String,
}

async fn approve(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    OptJson(body): OptJson<CommentBody>,
) -> Result<Json<RequestView>, ApiError> {
    let c = body.comment;
    let r = b.review(&actor, &id, ReviewDecision::Approve, &c).await?;
    Ok(Json(view(&b, r).await?))
}

async fn deny(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    OptJson(body): OptJson<CommentBody>,
) -> Result<Json<RequestView>, ApiError> {
    let c = body.comment;
    let r = b.review(&actor, &id, ReviewDecision::Deny, &c).await?;
    Ok(Json(view(&b, r).await?))
}

async fn cancel(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let r = b.cancel(&actor, &id).await?;
    Ok(Json(view(&b, r).await?))
}

async fn revoke(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let r = b.revoke(&actor, &id).await?;
    Ok(Json(view(&b, r).await?))
}

async fn review_break_glass(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    OptJson(body): OptJson<CommentBody>,
) -> Result<Json<RequestView>, ApiError> {
    let c = body.comment;
    let r = b.review_break_glass(&actor, &id, &c).await?;
    Ok(Json(view(&b, r).await?))
}

/// Body of `POST /v1/requests/{id}/extend`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ExtendBody {
    /// Duration of the extension grant.
    pub duration: Option<String>,
    /// Reason; the original's when empty.
    #[serde(default)]
    pub reason: String,
}

async fn extend(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<Response, ApiError> {
    let r = b
        .extend(
            &actor,
            &id,
            parse_dur(body.duration.as_deref())?,
            &body.reason,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(&b, r).await?)).into_response())
}

async fn take_secret(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match b.take_secret(&actor, &id).await? {
        Some(s) => Ok(Json(serde_json::json!({"secret": s}))),
        None => Err(ApiError::NotFound(format!("request {id} has no secret to show: it was shown once already, or its provider issues none"))),
    }
}

async fn show_policy(State(b): State<Arc<Broker>>, Auth(_a): Auth) -> Json<serde_json::Value> {
    let lp = b.policy();
    Json(
        serde_json::json!({"hash": lp.policy.hash, "text": lp.policy.text, "entitlements": lp.policy.entitlements}),
    )
}

async fn list_proposals(
    State(b): State<Arc<Broker>>,
    Auth(_a): Auth,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        serde_json::to_value(b.store().proposals().await?).unwrap_or_default(),
    ))
}

/// Body of `POST /v1/policy/proposals`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProposeBody {
    /// The full proposed policy TOML.
    pub text: String,
}

async fn propose(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<ProposeBody>,
) -> Result<Response, ApiError> {
    let p = b.propose_policy(&actor, &body.text).await?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

async fn approve_proposal(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(b.approve_policy(&actor, &id).await?).into_response())
}

async fn reject_proposal(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(b.reject_policy(&actor, &id).await?).into_response())
}

#[derive(Deserialize)]
struct LedgerQuery {
    from: Option<u64>,
    limit: Option<i64>,
}

async fn ledger(
    State(b): State<Arc<Broker>>,
    Auth(_a): Auth,
    Query(q): Query<LedgerQuery>,
) -> Result<Response, ApiError> {
    let entries = b
        .store()
        .ledger(q.from.unwrap_or(0), q.limit.unwrap_or(100).clamp(1, 1000))
        .await?;
    Ok(Json(entries).into_response())
}
