//! The API's one error type (the broker's [`crate::broker::BrokerError`]
//! becomes one through `From`), rendered as RFC 9457 problem details, and the
//! layer that turns every other error response of the API (axum's own 404,
//! 405, 413, ...) into one too.
//!
//! Internal errors (a store failure, a bug) never show their text: the client
//! gets "internal error" and a correlation id; the log carries the same id
//! with the real cause.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twokey_core::DomainError;
use twokey_store::StoreError;

/// Media type of every error the API returns (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The domain refused the action.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Storage failed (including a ledger write: the action was refused).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Missing or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The request body or parameters are wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The request is well formed but a value in it cannot be used (a
    /// duration that does not parse).
    #[error("{0}")]
    Unprocessable(String),
    /// An extractor refused the request with this status (413 body too
    /// large, 415 not JSON, ...).
    #[error("{1}")]
    Rejected(StatusCode, String),
    /// A bug or an unexpected failure; the text goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// An RFC 9457 problem details object, as every API error is answered.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`https://twokey.dev/problems/<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for a person to act on.
    pub detail: String,
    /// For internal errors: the id the server's log carries with the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl Problem {
    /// A problem of `kind` with `status` and `detail`.
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("https://twokey.dev/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            correlation_id: None,
        }
    }

    /// An internal error: logs `cause` under a fresh correlation id and
    /// answers only the id.
    pub fn internal(status: StatusCode, what: &str, cause: &dyn std::fmt::Display) -> Self {
        let id = correlation_id();
        tracing::error!(correlation_id = %id, error = %cause, "{what}");
        let mut p = Problem::new(
            status,
            "internal",
            format!("internal error: {what} (correlation id {id})"),
        );
        p.correlation_id = Some(id);
        p
    }

    /// The response: `status`, `application/problem+json`, this body.
    pub fn response(&self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(self)).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        resp
    }
}

/// A random id tying a client's error to the log line with its cause.
fn correlation_id() -> String {
    use rand::Rng;
    let b: [u8; 8] = rand::thread_rng().gen();
    hex::encode(b)
}

impl ApiError {
    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Domain(DomainError::Forbidden(_) | DomainError::SelfApproval) => {
                StatusCode::FORBIDDEN
            }
            ApiError::Domain(DomainError::Invalid(_)) | ApiError::Unprocessable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Domain(DomainError::WrongState(_)) => StatusCode::CONFLICT,
            ApiError::Domain(DomainError::UnknownEntitlement(_)) | ApiError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Store(StoreError::Conflict | StoreError::Duplicate(_)) => {
                StatusCode::CONFLICT
            }
            ApiError::Store(StoreError::Deactivated(_)) => StatusCode::FORBIDDEN,
            ApiError::Store(StoreError::Missing(_)) => StatusCode::BAD_REQUEST,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Rejected(s, _) => *s,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem_type(&self) -> &'static str {
        match self {
            ApiError::Domain(DomainError::SelfApproval) => "self-approval",
            ApiError::Domain(DomainError::Forbidden(_)) => "forbidden",
            ApiError::Domain(DomainError::Invalid(_)) | ApiError::Unprocessable(_) => "invalid",
            ApiError::Domain(DomainError::WrongState(_)) => "wrong-state",
            ApiError::Domain(DomainError::UnknownEntitlement(_)) => "unknown-entitlement",
            ApiError::NotFound(_) => "not-found",
            ApiError::Store(StoreError::Conflict | StoreError::Duplicate(_)) => "conflict",
            ApiError::Store(StoreError::Deactivated(_)) => "deactivated",
            ApiError::Store(StoreError::Missing(_)) => "bad-request",
            ApiError::Store(_) => "store-unavailable",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::BadRequest(_) | ApiError::Rejected(..) => "bad-request",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The problem details this error is answered with.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        match self {
            // Fail closed, and say so: nothing was changed. The store's own
            // text (SQL, connection strings) stays in the log.
            ApiError::Store(e) if !e.is_refusal() => {
                let mut p = Problem::internal(
                    status,
                    "the action was refused because it could not be recorded durably; nothing was changed",
                    e,
                );
                p.kind = "https://twokey.dev/problems/store-unavailable".into();
                p
            }
            ApiError::Internal(cause) => Problem::internal(status, "the request failed", cause),
            other => Problem::new(status, self.problem_type(), other.to_string()),
        }
    }
}

/// The broker's errors as the API answers them; the one place a broker error
/// meets HTTP (with [`ApiError::status`]).
impl From<crate::broker::BrokerError> for ApiError {
    fn from(e: crate::broker::BrokerError) -> Self {
        use crate::broker::BrokerError as B;
        match e {
            B::Domain(d) => ApiError::Domain(d),
            B::Store(s) => ApiError::Store(s),
            B::NotFound(m) => ApiError::NotFound(m),
            B::BadInput(m) => ApiError::BadRequest(m),
            B::Unprocessable(m) => ApiError::Unprocessable(m),
            B::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.problem().response()
    }
}

/// Middleware for the API routes: an error response that is not problem
/// details yet (axum's 405 for a method a route does not have, the body
/// limit's 413, a panic-free fallback of any layer) becomes one, keeping its
/// status and headers such as `Allow`.
pub async fn problems_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return resp;
    }
    let (kind, detail) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            format!("{path} does not take {method}; see /v1/openapi.json"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body-too-large",
            format!("the request body is larger than {REQUEST_BODY_LIMIT} bytes"),
        ),
        StatusCode::NOT_FOUND => (
            "not-found",
            format!("no such endpoint {path}; see /v1/openapi.json"),
        ),
        s if s.is_server_error() => {
            let p = Problem::internal(s, "the request failed", &format!("{method} {path}: {s}"));
            return with_headers_of(p.response(), resp);
        }
        s => ("bad-request", format!("{method} {path} was refused ({s})")),
    };
    with_headers_of(Problem::new(status, kind, detail).response(), resp)
}

/// `problem` with the headers of `orig` that still apply (`Allow`, ...).
fn with_headers_of(mut problem: Response, orig: Response) -> Response {
    for (name, value) in orig.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().append(name.clone(), value.clone());
        }
    }
    problem
}

/// Largest request body the API reads, in bytes (1 MiB).
pub const REQUEST_BODY_LIMIT: usize = 1024 * 1024;
