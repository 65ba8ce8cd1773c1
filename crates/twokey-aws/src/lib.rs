//! AWS providers for twokey, on the official Rust AWS SDK:
//!
//! - [`iam_assume`] (`aws_iam_assume`): a temporary inline policy on the
//!   requester's gateway principal allowing `sts:AssumeRole` on a target role,
//!   bounded by `aws:CurrentTime` and `sts:SourceIdentity`; revoke also denies
//!   the person's role sessions issued before the revoke;
//! - [`security_group`] (`aws_security_group`): an ingress rule for one port from
//!   the requester's single-host address, owned through its description;
//! - [`identity_center`] (`aws_identity_center`): an IAM Identity Center account
//!   assignment of a permission set to the requester's user;
//! - [`root_task`] (`aws_root_task`): a root session in member accounts for
//!   one AWS task policy (`sts:AssumeRoot`, at most 900 s), handed to the
//!   requester once or used by twokey to do the task itself.
//!
//! Every provider also implements [`Reconcile`] and returns it from
//! `Provider::reconciler`: it lists the twokey-owned access present at its
//! target so the server's reconciler can compare it with the grants
//! ([`decide`]) and remove what no grant covers.
//!
//! Register them with the broker's [`twokey_providers::Registry`]:
//!
//! ```
//! let mut registry = twokey_providers::Registry::with_builtin();
//! twokey_aws::register(&mut registry);
//! assert!(registry.kinds().contains(&"aws_iam_assume"));
//! ```

pub mod client;
pub mod iam_assume;
pub mod identity_center;
pub mod reconcile;
pub mod root_task;
pub mod security_group;
pub mod trust;

pub use reconcile::{decide, reconcile, Active, Found, Reconcile, Reconciliation};

/// Registers `aws_iam_assume`, `aws_security_group`, `aws_identity_center`
/// and `aws_root_task`.
pub fn register(registry: &mut twokey_providers::Registry) {
    registry.register("aws_iam_assume", iam_assume::factory);
    registry.register("aws_security_group", security_group::factory);
    registry.register("aws_identity_center", identity_center::factory);
    registry.register("aws_root_task", root_task::factory);
}
