//! The `custody` provider. Its grant is the *release window*: while a
//! custody request is active, the server hands custodians their sealed
//! shares and accepts their releases. Nothing exists at a target, so grant,
//! revoke and check only describe that window; the window itself is the
//! request's state, which the server checks on every custody call.
//!
//! ```toml
//! [[entitlement]]
//! name = "root-prod-open"
//! provider = "custody"
//! [entitlement.target]
//! secret = "root-prod"      # a [[custody]] secret of the policy
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use twokey_providers::{
    GrantOutcome, GrantSpec, Presence, Provider, ProviderContext, ProviderError,
};

/// Target settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustodyTarget {
    /// The custody secret id this entitlement releases.
    pub secret: String,
}

/// The provider.
#[derive(Debug)]
pub struct CustodyProvider {
    target: CustodyTarget,
}

/// Builds the provider from `[entitlement.target]` (registry factory).
pub fn factory(
    target: &toml::Table,
    _ctx: &ProviderContext,
) -> Result<Arc<dyn Provider>, ProviderError> {
    let target: CustodyTarget =
        toml::Value::Table(target.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                ProviderError::permanent(format!("custody target: {}", e.to_string().trim()))
            })?;
    if target.secret.is_empty() {
        return Err(ProviderError::permanent(
            "custody target: secret must name a [[custody]] secret",
        ));
    }
    Ok(Arc::new(CustodyProvider { target }))
}

#[async_trait]
impl Provider for CustodyProvider {
    async fn grant(&self, spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        Ok(GrantOutcome {
            secret: None,
            detail: format!(
                "release window for custody secret {:?} open: custodians run `twokey custody release {}`",
                self.target.secret, spec.request_id
            ),
        })
    }

    async fn revoke(&self, _spec: &GrantSpec) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The window closes with the request's state; nothing outlives it at a
    /// target, so after a revoke there is nothing present.
    async fn check(&self, _spec: &GrantSpec) -> Result<Presence, ProviderError> {
        Ok(Presence::Absent)
    }

    fn can_check(&self) -> bool {
        false
    }
}
