//! The CSRF check as extractors: a handler that takes a [`CheckedForm`] or a
//! [`CheckedJson`] runs only for a signed-in session whose form or JSON body
//! carries that session's CSRF token. No handler checks the token by hand,
//! so a new form cannot forget it.
//!
//! The order is the one the handlers had: the session first (not signed in
//! sends the browser to the login page), then the body (a malformed one is
//! the framework's 4xx), then the token (403).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::de::DeserializeOwned;

use crate::auth::Session;
use crate::AppState;

/// A form or JSON body that carries the session's CSRF token.
pub(crate) trait CsrfToken {
    /// The token the browser submitted.
    fn csrf(&self) -> &str;
}

/// Implements [`CsrfToken`] for bodies with a `csrf: String` field.
macro_rules! csrf_field {
    ($($t:ty),* $(,)?) => {
        $(impl $crate::csrf::CsrfToken for $t {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}
pub(crate) use csrf_field;

/// A signed-in session and a URL-encoded form with its CSRF token checked.
/// A wrong or missing token is a 403 error page.
pub(crate) struct CheckedForm<T>(pub Session, pub T);

/// A signed-in session and a JSON body with its CSRF token checked (the
/// security-key ceremonies). A wrong or missing token is a 403 JSON error.
pub(crate) struct CheckedJson<T>(pub Session, pub T);

async fn session(req: Request, st: &AppState) -> Result<(Session, Request), Response> {
    let (mut parts, body) = req.into_parts();
    let s = Session::from_request_parts(&mut parts, st).await?;
    Ok((s, Request::from_parts(parts, body)))
}

impl<T> FromRequest<AppState> for CheckedForm<T>
where
    T: DeserializeOwned + CsrfToken + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (s, req) = session(req, st).await?;
        let Form(body) = Form::<T>::from_request(req, st)
            .await
            .map_err(IntoResponse::into_response)?;
        s.check_csrf(body.csrf())?;
        Ok(CheckedForm(s, body))
    }
}

impl<T> FromRequest<AppState> for CheckedJson<T>
where
    T: DeserializeOwned + CsrfToken + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (s, req) = session(req, st).await?;
        let Json(body) = Json::<T>::from_request(req, st)
            .await
            .map_err(IntoResponse::into_response)?;
        if s.check_csrf(body.csrf()).is_err() {
            return Err((
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({ "error": "missing or wrong security token" })),
            )
                .into_response());
        }
        Ok(CheckedJson(s, body))
    }
}
