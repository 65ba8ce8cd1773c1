//! Providers: the adapters that apply and remove a grant at its target.
//!
//! A provider is a small trait impl plus one line in [`Registry::with_builtin`].
//! Every operation must be idempotent: the broker retries `grant` after a crash
//! between "approved" and "active", and retries `revoke` until the target
//! confirms, so applying twice or removing something already gone is success.
//!
//! Built in ([`Registry::with_builtin`]):
//! - [`exec`]: configured commands, with the request in `TWOKEY_*` variables;
//! - [`postgres`]: a temporary login role expiring at the grant's end, or
//!   membership of existing roles; revoke also ends open sessions;
//! - [`noop`]: does nothing, for benchmarks only.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

pub mod exec;
pub mod noop;
pub mod postgres;

/// Everything a provider needs to know about one grant.
#[derive(Debug, Clone)]
pub struct GrantSpec {
    /// The request id; unique, safe as part of a name (`[a-z0-9-]`).
    pub request_id: String,
    /// Entitlement name from the policy.
    pub entitlement: String,
    /// Requester identity key, `issuer|subject`.
    pub requester: String,
    /// Requester's short name (policy identity name or SSO preferred username).
    pub requester_name: String,
    /// Grant start, Unix milliseconds (activation time; for `grant` calls, the
    /// planned activation time).
    pub starts_at_ms: i64,
    /// Grant end, Unix milliseconds. Providers that can enforce expiry at the
    /// target (PostgreSQL `VALID UNTIL`, IAM `aws:CurrentTime`) must use it.
    pub ends_at_ms: i64,
    /// Other active grants of the same entitlement to the same requester. A
    /// provider whose access is shared between grants (a role membership) must
    /// not remove it on `revoke` while this is non-empty.
    pub overlapping_active: Vec<String>,
}

/// What a successful grant hands back.
#[derive(Debug, Clone, Default)]
pub struct GrantOutcome {
    /// A secret to show the requester once (a generated password), never logged.
    pub secret: Option<String>,
    /// A short human description of what was applied ("role tk_ab12 valid until ...").
    pub detail: String,
}

/// Whether a grant's access is present at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The access exists.
    Present,
    /// The access does not exist.
    Absent,
}

impl Presence {
    /// `Present` when `present` is true, else `Absent`.
    pub fn of(present: bool) -> Self {
        if present {
            Presence::Present
        } else {
            Presence::Absent
        }
    }
}

/// A provider failure. `retryable` failures are retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// What went wrong, for people.
    pub message: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
}

impl ProviderError {
    /// A failure that may succeed when retried (network, timeouts, throttling).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
    /// A failure that will not go away by itself (bad configuration).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Applies, removes and checks grants at one kind of target.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Applies the grant. Idempotent: applying an already-applied grant succeeds.
    async fn grant(&self, spec: &GrantSpec) -> Result<GrantOutcome, ProviderError>;
    /// Removes the grant, and ends live sessions where the target allows.
    /// Idempotent: removing an absent grant succeeds.
    async fn revoke(&self, spec: &GrantSpec) -> Result<(), ProviderError>;
    /// Reports whether the grant's access is present at the target.
    ///
    /// When the answer is uncertain (partly applied), providers report
    /// [`Presence::Present`]: a revoke that is believed done while access is
    /// still live is the failure twokey exists to prevent.
    async fn check(&self, spec: &GrantSpec) -> Result<Presence, ProviderError>;

    /// Whether [`Provider::check`] can answer at all (an `exec` target without a
    /// `check` command cannot). Callers should not treat the error of a
    /// provider that cannot check as a target failure.
    fn can_check(&self) -> bool {
        true
    }

    /// The longest grant the target can honour (an AWS root session lasts
    /// at most 900 s), if it has a limit. An entitlement whose
    /// `max_duration` is longer is refused when the policy loads.
    fn max_grant(&self) -> Option<std::time::Duration> {
        None
    }

    /// The provider's reconcile capability: listing the twokey-owned access
    /// present at its target and removing what no grant covers. `None` (the
    /// default) means the provider cannot list its target, and the server's
    /// reconciler skips its entitlements.
    fn reconciler(&self) -> Option<&dyn Reconcile> {
        None
    }
}

pub use twokey_core::reconcile::Found;

/// Listing and removing twokey-owned access at a target, for the server's
/// reconciler (which decides with [`twokey_core::reconcile::decide`] what no
/// grant covers). A provider offers it through [`Provider::reconciler`].
#[async_trait]
pub trait Reconcile: Send + Sync {
    /// The twokey-owned access present at the target.
    async fn list_present(&self) -> Result<Vec<Found>, ProviderError>;
    /// Removes access the reconciler found uncovered (and ends its live
    /// sessions where the target allows). Idempotent.
    async fn remove(&self, found: &Found) -> Result<(), ProviderError>;

    /// Ways in that need no grant at all (standing access built into the
    /// target's own configuration, such as a role trust that names a person
    /// directly), one line each. The default: none this provider can see.
    async fn standing_access(&self) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }
}

/// Builds a provider from an entitlement's `[entitlement.target]` table.
pub type Factory = fn(&toml::Table, &ProviderContext) -> Result<Arc<dyn Provider>, ProviderError>;

/// Things a provider may need from its environment.
#[derive(Debug, Clone, Default)]
pub struct ProviderContext {
    /// Extra environment for exec commands (the dev data dir, ...).
    pub env: BTreeMap<String, String>,
}

/// The provider kinds this build knows, by name.
#[derive(Clone, Default, Debug)]
pub struct Registry {
    factories: BTreeMap<&'static str, Factory>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with every provider kind built into this crate: `exec`,
    /// `postgres`, and `noop` (benchmarks only).
    pub fn with_builtin() -> Self {
        let mut r = Self::new();
        r.register("exec", exec::factory);
        r.register("postgres", postgres::factory);
        r.register("noop", noop::factory);
        r
    }

    /// Registers a provider kind.
    pub fn register(&mut self, kind: &'static str, factory: Factory) {
        self.factories.insert(kind, factory);
    }

    /// Names of the registered kinds.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.factories.keys().copied().collect()
    }

    /// Builds the provider for one entitlement.
    pub fn build(
        &self,
        kind: &str,
        target: &toml::Table,
        ctx: &ProviderContext,
    ) -> Result<Arc<dyn Provider>, ProviderError> {
        let f = self.factories.get(kind).ok_or_else(|| {
            ProviderError::permanent(format!(
                "unknown provider {kind:?}; known: {}",
                self.kinds().join(", ")
            ))
        })?;
        f(target, ctx)
    }
}

/// Reads a target table into a provider's config struct, naming the provider in
/// errors (`exec target: missing field `grant``).
pub(crate) fn parse_target<T: serde::de::DeserializeOwned>(
    kind: &str,
    target: &toml::Table,
) -> Result<T, ProviderError> {
    toml::Value::Table(target.clone())
        .try_into()
        .map_err(|e| ProviderError::permanent(format!("{kind} target: {}", e.to_string().trim())))
}

/// Formats Unix milliseconds as RFC 3339 UTC (`2026-11-23T13:00:00Z` with
/// [`chrono::SecondsFormat::Secs`]), a form both PostgreSQL and shells parse.
pub(crate) fn rfc3339(ms: i64, precision: chrono::SecondsFormat) -> Result<String, ProviderError> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(precision, true))
        .ok_or_else(|| ProviderError::permanent(format!("time {ms} ms is out of range")))
}
