//! The API's one error type, rendered as RFC 9457 problem details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use twokey_core::DomainError;
use twokey_store::StoreError;

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
    /// The request body is over the server's limit.
    #[error("{0}")]
    TooLarge(String),
}

impl ApiError {
    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Domain(DomainError::Forbidden(_) | DomainError::SelfApproval) => {
                StatusCode::FORBIDDEN
            }
            ApiError::Domain(DomainError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Domain(DomainError::WrongState(_)) => StatusCode::CONFLICT,
            ApiError::Domain(DomainError::UnknownEntitlement(_)) | ApiError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Store(StoreError::Conflict) => StatusCode::CONFLICT,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    fn problem_type(&self) -> &'static str {
        match self {
            ApiError::Domain(DomainError::SelfApproval) => "self-approval",
            ApiError::Domain(DomainError::Forbidden(_)) => "forbidden",
            ApiError::Domain(DomainError::Invalid(_)) => "invalid",
            ApiError::Domain(DomainError::WrongState(_)) => "wrong-state",
            ApiError::Domain(DomainError::UnknownEntitlement(_)) => "unknown-entitlement",
            ApiError::NotFound(_) => "not-found",
            ApiError::Store(StoreError::Conflict) => "conflict",
            ApiError::Store(_) => "store-unavailable",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::TooLarge(_) => "too-large",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            // Fail closed, and say so: nothing was changed.
            ApiError::Store(e) if !matches!(e, StoreError::Conflict) => {
                tracing::error!(error = %e, "store failure; action refused");
                format!("the action was refused because it could not be recorded durably ({e}); nothing was changed")
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({
            "type": format!("https://twokey.dev/problems/{}", self.problem_type()),
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": detail,
        });
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}
