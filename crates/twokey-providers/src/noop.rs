//! `noop`: a provider that does nothing and always succeeds.
//!
//! For benchmarks only: it measures what twokey itself adds, with no target in
//! the way. Never use it for a real entitlement; its grants grant nothing.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{GrantOutcome, GrantSpec, Presence, Provider, ProviderContext, ProviderError};

/// The benchmark-only provider: grant and revoke succeed without doing
/// anything, check always reports [`Presence::Present`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopProvider;

#[async_trait]
impl Provider for NoopProvider {
    async fn grant(&self, _spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        Ok(GrantOutcome {
            secret: None,
            detail: "noop: nothing applied (benchmark provider)".into(),
        })
    }

    async fn revoke(&self, _spec: &GrantSpec) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn check(&self, _spec: &GrantSpec) -> Result<Presence, ProviderError> {
        Ok(Presence::Present)
    }
}

/// Builds a [`NoopProvider`]; the target table is ignored.
pub fn factory(
    _target: &toml::Table,
    _ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(NoopProvider))
}
