//! What the engine answers: [`Reply`] when a delivery's work is done (or
//! deliberately not done), [`GateError`] when it failed. Only the webhook
//! route ([`super::router`]) turns them into an HTTP status and body.

use twokey_store::StoreError;

use crate::github::GitHubError;
use crate::webhook::WebhookError;

/// A delivery the gate handled without failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Worked on (`200 OK`): what was done, or what was refused as the
    /// rules say (a refusal is answered on the pull request and recorded).
    Done(String),
    /// Not for the gate (`202 Accepted`): an event, action or repository it
    /// ignores.
    Ignored(String),
}

impl Reply {
    /// The short text answered.
    pub fn text(&self) -> &str {
        match self {
            Reply::Done(t) | Reply::Ignored(t) => t,
        }
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// Why the gate could not handle a delivery.
///
/// The client-side ones (`BadRequest`, `Unsigned`, `TooLarge`) refuse the
/// request; every other one leaves the delivery unfinished, so GitHub's
/// redelivery (or the recovery pass) completes it.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// No or a malformed `X-GitHub-Delivery`, or a payload that is not the
    /// JSON of its event (`400`).
    #[error(transparent)]
    BadRequest(WebhookError),
    /// The signature is missing, malformed or does not match (`401`).
    #[error(transparent)]
    Unsigned(WebhookError),
    /// The body is over `gate.max_body_bytes` or the webhook's own cap
    /// (`413`).
    #[error("{0}")]
    TooLarge(String),
    /// GitHub's API failed (`502`).
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    /// The head commit's source tree could not be checked out (`502`; the
    /// cause is answered on the pull request).
    #[error("checkout failed")]
    Checkout,
    /// The store failed, after the retries where there are any (`503`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Evidence or a state move could not be written, or the settings
    /// re-check failed: the delivery stays unfinished (`503`).
    #[error("{0}")]
    Unrecorded(String),
    /// The worker's task failed (`500`).
    #[error("{0}")]
    Internal(String),
}

impl From<WebhookError> for GateError {
    fn from(e: WebhookError) -> GateError {
        match e {
            WebhookError::TooLarge(_) => GateError::TooLarge(e.to_string()),
            WebhookError::MissingSignature
            | WebhookError::MalformedSignature
            | WebhookError::BadSignature => GateError::Unsigned(e),
            WebhookError::MissingDelivery | WebhookError::Payload(_) => GateError::BadRequest(e),
        }
    }
}

impl GateError {
    /// Whether the failure is the gate's (or GitHub's, or the store's), not
    /// the request's: the delivery then stays unfinished.
    pub fn is_server_side(&self) -> bool {
        !matches!(
            self,
            GateError::BadRequest(_) | GateError::Unsigned(_) | GateError::TooLarge(_)
        )
    }
}
