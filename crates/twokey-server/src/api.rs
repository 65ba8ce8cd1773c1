//! The versioned JSON API (`/v1/...`). Handlers extract, call the broker and
//! map the error; no rule lives here.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use twokey_core::request::approvals_counted;
use twokey_core::{Actor, NewRequest, ProposalView, Request, ReviewDecision, State as RState};
use twokey_ledger::LedgerEntry;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::broker::Broker;
use crate::contract::ApiDoc;
use crate::error::{problems_only, ApiError, Problem, REQUEST_BODY_LIMIT};
use crate::reads::Listing;

/// The API's routes with their OpenAPI operations: a route exists only
/// through `routes!`, which registers its `#[utoipa::path]` with it, so the
/// document cannot miss one.
fn api_routes() -> OpenApiRouter<Arc<Broker>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
        .routes(routes!(whoami))
        .routes(routes!(list_requests, create_request))
        .routes(routes!(show_request))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(cancel))
        .routes(routes!(revoke))
        .routes(routes!(extend))
        .routes(routes!(review_break_glass))
        .routes(routes!(take_secret))
        .routes(routes!(show_policy))
        .routes(routes!(list_proposals, propose))
        .routes(routes!(approve_proposal))
        .routes(routes!(reject_proposal))
        .routes(routes!(ledger))
        .merge(crate::custody::routes())
        .merge(crate::activity::routes())
        .merge(crate::report::routes())
}

/// The OpenAPI document of the API alone (what `/v1/openapi.json` serves
/// without routes merged in by [`router_with`]).
pub fn openapi_doc() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = api_routes().split_for_parts();
    crate::contract::finish(&mut doc);
    doc
}

/// Builds the router.
pub fn router(broker: Arc<Broker>) -> Router {
    router_with(broker, Router::new(), None)
}

/// The API plus `extra` routes (the web UI, the gate) and their OpenAPI
/// operations `extra_doc`, all served in one document at `/v1/openapi.json`.
/// Every error of an API route is problem details ([`problems_only`]); the
/// `extra` routes answer their own errors.
pub fn router_with(
    broker: Arc<Broker>,
    extra: Router,
    extra_doc: Option<utoipa::openapi::OpenApi>,
) -> Router {
    let (api, mut doc) = api_routes().split_for_parts();
    if let Some(d) = extra_doc {
        doc.merge(d);
    }
    crate::contract::finish(&mut doc);
    let json = match doc.to_json() {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document does not serialise");
            String::from("{}")
        }
    };
    api.fallback(fallback)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            REQUEST_BODY_LIMIT,
        ))
        .layer(axum::middleware::from_fn(problems_only))
        .layer(axum::Extension(Arc::new(OpenApiJson(json))))
        .with_state(broker)
        .merge(extra)
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// The serialised document, shared by the `/v1/openapi.json` handler.
#[derive(Clone)]
pub struct OpenApiJson(pub String);

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
        use axum::extract::rejection::JsonRejection;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej @ (JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_))) => {
                Err(ApiError::BadRequest(format!(
                    "invalid request body: {}",
                    rej.body_text()
                )))
            }
            // Not JSON (415), too large (413), unreadable: keep the status.
            Err(rej) => Err(ApiError::Rejected(
                rej.status(),
                format!("request body refused: {}", rej.body_text()),
            )),
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
                ApiError::Rejected(
                    e.status(),
                    format!("request body refused: {}", e.body_text()),
                )
            })?;
        // Empty, or JSON `null` (the body is optional in the contract).
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed == b"null" {
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

/// The authenticated caller, from `Authorization: Bearer <token>` (the
/// scheme is case-insensitive, RFC 9110 section 11.1).
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
        let token = bearer_token(header).ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be \"Bearer <token>\"".into())
        })?;
        let actor = broker
            .actor_for_token(token.trim())
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or expired token".into()))?;
        Ok(Auth(actor))
    }
}

/// The token of an `Authorization` header value whose scheme is `Bearer` in
/// any case.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// A request as the API shows it: the stored request plus derived fields.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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

/// One request with its ledger timeline (`GET /v1/requests/{id}`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestDetail {
    /// The request.
    #[serde(flatten)]
    pub view: RequestView,
    /// Its ledger entries, in order.
    pub timeline: Vec<LedgerEntry>,
    /// What the caller may do to it now (the core's `allowed_actions`; the
    /// broker checks again when one is taken).
    pub actions: Vec<twokey_core::Action>,
}

async fn view(b: &Broker, r: Request) -> Result<RequestView, ApiError> {
    let now = b.now();
    let required = b
        .policy()
        .policy
        .entitlement(&r.entitlement)
        .map(|e| e.approval.count)
        .unwrap_or(0);
    let last_error = b.retrying_error(&r).await?;
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

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process is up", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "The database answers", body = String, content_type = "text/plain"),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(State(b): State<Arc<Broker>>) -> Response {
    match b.ready().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => Problem::internal(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer",
            &e,
        )
        .response(),
    }
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Metrics", body = String, content_type = "text/plain")))]
async fn metrics(State(b): State<Arc<Broker>>) -> Response {
    let mut body = b.metrics.render();
    if let Ok(counts) = b.state_counts().await {
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

/// This document (OpenAPI 3.1), generated from the handlers.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi(Extension(doc): Extension<Arc<OpenApiJson>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.0.clone(),
    )
        .into_response()
}

/// The authenticated identity, with its groups from the policy in force.
#[utoipa::path(get, path = "/v1/whoami", tag = "identity",
    responses((status = 200, description = "Who the token belongs to", body = Actor)))]
async fn whoami(Auth(actor): Auth) -> Json<Actor> {
    Json(actor)
}

/// Which requests to list.
#[derive(Debug, Default, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// My own requests.
    #[default]
    Mine,
    /// Pending requests I may review now.
    Waiting,
    /// Active grants.
    Active,
    /// Every request.
    All,
}

/// Query of `GET /v1/requests`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Which requests: `mine` (default), `waiting` (for me to review), `active`, `all`.
    #[param(inline)]
    scope: Option<Scope>,
}

/// Requests in a scope, newest first.
#[utoipa::path(get, path = "/v1/requests", tag = "requests", params(ListQuery),
    responses(
        (status = 200, description = "The requests", body = Vec<RequestView>),
        (status = 403, description = "scope=all or scope=active by someone who is not an admin or auditor", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_requests(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let which = match q.scope.unwrap_or_default() {
        Scope::Mine => Listing::Mine { limit: 200 },
        Scope::Waiting => Listing::Waiting,
        Scope::All => Listing::All,
        Scope::Active => Listing::Active,
    };
    let reqs = b.list(&actor, which).await?;
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        out.push(view(&b, r).await?);
    }
    Ok(Json(out))
}

/// Body of `POST /v1/requests`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"entitlement": "demo", "duration": "30m", "reason": "INC-2211 fix"}))]
pub struct CreateBody {
    /// Entitlement name.
    pub entitlement: String,
    /// Duration such as `30m` or `2h30m`, counted from activation; the
    /// entitlement's default when absent.
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

/// A duration from the API: a value that does not parse is unprocessable
/// (422), like any other value the policy refuses.
fn parse_dur(d: Option<&str>) -> Result<Option<i64>, ApiError> {
    d.map(|s| twokey_core::time::parse_duration(s).map_err(ApiError::Unprocessable))
        .transpose()
}

/// Asks for an entitlement.
#[utoipa::path(post, path = "/v1/requests", tag = "requests", request_body = CreateBody,
    responses(
        (status = 201, description = "The request (pending, or active for break-glass)", body = RequestView),
        (status = 403, description = "The caller may not request this entitlement", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entitlement", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the policy (duration, reason, ticket, break-glass)", body = Problem, content_type = "application/problem+json"),
    ))]
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

/// One request, with its ledger timeline.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests", params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = RequestDetail),
        (status = 403, description = "Neither the caller's request nor one they may review", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ))]
async fn show_request(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestDetail>, ApiError> {
    let (r, timeline) = b.read_with_timeline(&actor, &id).await?;
    let actions = twokey_core::allowed_actions(&b.policy().policy, &r, &actor, b.now())
        .into_iter()
        .collect();
    Ok(Json(RequestDetail {
        view: view(&b, r).await?,
        timeline,
        actions,
    }))
}

/// Body of review calls (optional).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct CommentBody {
    /// Optional comment.
    #[serde(default)]
    pub comment: String,
}

/// Approves a request (as a reviewer other than the requester).
#[utoipa::path(post, path = "/v1/requests/{id}/approve", tag = "reviews",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Option<CommentBody>, description = "Optional comment; the body may be empty"),
    responses(
        (status = 200, description = "The request after the approval", body = RequestView),
        (status = 403, description = "The caller may not approve it (own request, not eligible, needs a security key)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending any more, or reviewed concurrently", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the policy", body = Problem, content_type = "application/problem+json"),
    ))]
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

/// Denies a request.
#[utoipa::path(post, path = "/v1/requests/{id}/deny", tag = "reviews",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Option<CommentBody>, description = "Optional comment; the body may be empty"),
    responses(
        (status = 200, description = "The request after the denial", body = RequestView),
        (status = 403, description = "The caller may not review it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending any more, or reviewed concurrently", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the policy", body = Problem, content_type = "application/problem+json"),
    ))]
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

/// Withdraws one's own pending request.
#[utoipa::path(post, path = "/v1/requests/{id}/cancel", tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The cancelled request", body = RequestView),
        (status = 403, description = "Not the caller's request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending", body = Problem, content_type = "application/problem+json"),
    ))]
async fn cancel(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let r = b.cancel(&actor, &id).await?;
    Ok(Json(view(&b, r).await?))
}

/// Ends an active grant early.
#[utoipa::path(post, path = "/v1/requests/{id}/revoke", tag = "grants",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request, revoking", body = RequestView),
        (status = 403, description = "The caller may not revoke it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not active", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let r = b.revoke(&actor, &id).await?;
    Ok(Json(view(&b, r).await?))
}

/// Reviews a break-glass grant after the fact (someone other than its user).
#[utoipa::path(post, path = "/v1/requests/{id}/review-break-glass", tag = "reviews",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = Option<CommentBody>, description = "Optional comment; the body may be empty"),
    responses(
        (status = 200, description = "The reviewed request", body = RequestView),
        (status = 403, description = "The caller may not review it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a break-glass grant waiting for review", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the policy", body = Problem, content_type = "application/problem+json"),
    ))]
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
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"duration": "30m", "reason": "INC-2211 needs longer"}))]
pub struct ExtendBody {
    /// Duration of the extension grant.
    pub duration: Option<String>,
    /// Reason; the original's when empty.
    #[serde(default)]
    pub reason: String,
}

/// Asks to extend an active grant: a new request that needs approval again.
#[utoipa::path(post, path = "/v1/requests/{id}/extend", tag = "grants",
    params(("id" = String, Path, description = "Request id")),
    request_body = ExtendBody,
    responses(
        (status = 201, description = "The extension request", body = RequestView),
        (status = 403, description = "The caller may not extend it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused by the policy (duration)", body = Problem, content_type = "application/problem+json"),
    ))]
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

/// A grant's one-time secret (such as a database password). Its `Debug`
/// never prints the value.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SecretView {
    /// The secret; shown once.
    pub secret: String,
}

impl std::fmt::Debug for SecretView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretView")
            .field("secret", &"***")
            .finish()
    }
}

/// Shows the secret of the caller's own grant, once.
#[utoipa::path(post, path = "/v1/requests/{id}/secret", tag = "grants",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The secret", body = SecretView),
        (status = 403, description = "Not the caller's grant", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No secret to show: shown once already, not issued yet, or its provider issues none", body = Problem, content_type = "application/problem+json"),
    ))]
async fn take_secret(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    match b.take_secret(&actor, &id).await? {
        Some(secret) => Ok(Json(SecretView { secret })),
        None => Err(ApiError::Domain(twokey_core::DomainError::WrongState(format!("request {id} has no secret to show: it was shown once already, it is not active yet, or its provider issues none")))),
    }
}

/// The policy in force.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// SHA-256 of the policy text.
    pub hash: String,
    /// The policy text (TOML).
    pub text: String,
    /// The entitlements, as parsed, by name.
    #[schema(value_type = HashMap<String, Object>)]
    pub entitlements: serde_json::Value,
}

/// The policy in force.
#[utoipa::path(get, path = "/v1/policy", tag = "policy",
    responses((status = 200, description = "The policy", body = PolicyView)))]
async fn show_policy(State(b): State<Arc<Broker>>, Auth(_a): Auth) -> Json<serde_json::Value> {
    let lp = b.policy();
    Json(
        serde_json::json!({"hash": lp.policy.hash, "text": lp.policy.redacted_text(), "entitlements": lp.policy.redacted_entitlements()}),
    )
}

/// Policy proposals, pending first.
#[utoipa::path(get, path = "/v1/policy/proposals", tag = "policy",
    responses((status = 200, description = "The proposals, credentials redacted", body = Vec<ProposalView>)))]
async fn list_proposals(
    State(b): State<Arc<Broker>>,
    Auth(_a): Auth,
) -> Result<Json<Vec<ProposalView>>, ApiError> {
    Ok(Json(b.proposal_views().await?))
}

/// Body of `POST /v1/policy/proposals`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProposeBody {
    /// The full proposed policy TOML.
    pub text: String,
}

/// Proposes a new policy (admins); it takes effect after other admins approve.
#[utoipa::path(post, path = "/v1/policy/proposals", tag = "policy", request_body = ProposeBody,
    responses(
        (status = 201, description = "The proposal", body = ProposalView),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The policy text is not a valid policy (with file and line)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn propose(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<ProposeBody>,
) -> Result<Response, ApiError> {
    let p = b.propose_policy(&actor, &body.text).await?;
    Ok((StatusCode::CREATED, Json(b.proposal_view(p).await?)).into_response())
}

/// Approves a proposal (an admin other than the proposer).
#[utoipa::path(post, path = "/v1/policy/proposals/{id}/approve", tag = "policy",
    params(("id" = String, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "The proposal after the approval (applied when the admin rule is met)", body = ProposalView),
        (status = 403, description = "Not an admin, or the proposer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such proposal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending, or based on a policy no longer in force", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The proposed policy no longer loads", body = Problem, content_type = "application/problem+json"),
    ))]
async fn approve_proposal(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<ProposalView>, ApiError> {
    let p = b.approve_policy(&actor, &id).await?;
    Ok(Json(b.proposal_view(p).await?))
}

/// Rejects a proposal (an admin).
#[utoipa::path(post, path = "/v1/policy/proposals/{id}/reject", tag = "policy",
    params(("id" = String, Path, description = "Proposal id")),
    responses(
        (status = 200, description = "The rejected proposal", body = ProposalView),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such proposal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not pending", body = Problem, content_type = "application/problem+json"),
    ))]
async fn reject_proposal(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<ProposalView>, ApiError> {
    let p = b.reject_policy(&actor, &id).await?;
    Ok(Json(b.proposal_view(p).await?))
}

/// The largest `from` the API takes: integers above 2^53 - 1 are not exact
/// in JSON numbers.
const MAX_INDEX: u64 = (1 << 53) - 1;

/// Query of `GET /v1/ledger`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LedgerQuery {
    /// First entry index (default 0).
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    from: Option<u64>,
    /// How many entries, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Ledger entries from an index, in order.
#[utoipa::path(get, path = "/v1/ledger", tag = "ledger", params(LedgerQuery),
    responses(
        (status = 200, description = "The entries", body = Vec<LedgerEntry>),
        (status = 403, description = "Not an admin or auditor", body = Problem, content_type = "application/problem+json"),
    ))]
async fn ledger(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<Vec<LedgerEntry>>, ApiError> {
    let from = q.from.unwrap_or(0);
    let limit = q.limit.unwrap_or(100);
    if from > MAX_INDEX || !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "from must be 0 to {MAX_INDEX} and limit 1 to 1000 (got from={from}, limit={limit})"
        )));
    }
    Ok(Json(b.ledger_page(&actor, from, i64::from(limit)).await?))
}

#[cfg(test)]
mod tests {
    use super::SecretView;

    #[test]
    fn a_one_time_secret_never_prints_in_debug() {
        let v = SecretView {
            secret: "postgres://u:hunter2@db/x".into(),
        };
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
