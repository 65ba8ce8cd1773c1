//! Reconciler support: what twokey-owned access is present at a target, and
//! how it compares with the active grants.
//!
//! The types and the pure decision live in `twokey-core` (`reconcile`), the
//! [`Reconcile`] capability in `twokey-providers` (every provider here returns
//! it from `Provider::reconciler`), so the server's reconciler knows no AWS
//! type. They are re-exported here for callers of this crate alone.

pub use twokey_core::reconcile::{decide, reconcile, Active, Found, Reconciliation};
pub use twokey_providers::Reconcile;
