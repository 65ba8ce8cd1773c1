//! `noop`: a provider that does nothing and always succeeds.
//!
//! For benchmarks only: it measures what twokey itself adds, with no target in
//! the way. Never use it for a real entitlement; its grants grant nothing.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{GrantOutcome, GrantSpec, Presence, Provider, ProviderContext, ProviderError};

/// The benchmark-only provider: grant and revoke succeed without touching
/// any target; it remembers (in memory) which grants it applied, so `check`
/// answers truthfully and the broker can confirm revocations.
#[derive(Debug, Default)]
pub struct NoopProvider {
    applied: std::sync::Mutex<std::collections::HashSet<String>>,
}

#[async_trait]
impl Provider for NoopProvider {
    async fn grant(&self, spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        if let Ok(mut a) = self.applied.lock() {
            a.insert(spec.request_id.clone());
        }
        Ok(GrantOutcome {
            secret: None,
            detail: "noop: nothing applied (benchmark provider)".into(),
        })
    }

    async fn revoke(&self, spec: &GrantSpec) -> Result<(), ProviderError> {
        if let Ok(mut a) = self.applied.lock() {
            a.remove(&spec.request_id);
        }
        Ok(())
    }

    async fn check(&self, spec: &GrantSpec) -> Result<Presence, ProviderError> {
        let present = self
            .applied
            .lock()
            .map(|a| a.contains(&spec.request_id))
            .unwrap_or(true);
        Ok(Presence::of(present))
    }
}

/// Builds a [`NoopProvider`]; the target table is ignored.
pub fn factory(
    _target: &toml::Table,
    _ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(NoopProvider::default()))
}
