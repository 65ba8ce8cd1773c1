//! An AWS IAM policy evaluator, following AWS's documented evaluation logic
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>):
//! explicit deny anywhere wins; every SCP level of the principal's account
//! must allow and no RCP may deny; then identity and resource policies (same
//! account: either, with the role-trust and KMS key-policy special cases;
//! cross account: both), the permissions boundary and the session policy.
//!
//! When a condition depends on a context key marked unknown
//! ([`Context::mark_unknown`]), the answer is [`Decision::AllowedIf`] with
//! the formula the unknown keys must satisfy, never a silent yes or no.
//!
//! The crate is pure: no IO and no clock; the request carries the time.
//!
//! ```
//! use twokey_iam::{evaluate, Context, Decision, NamedPolicy, Policies, Policy, Request};
//! let doc = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
//!   "Action":"s3:Get*","Resource":"arn:aws:s3:::logs/*",
//!   "Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}}"#;
//! let policies = Policies {
//!     identity: vec![NamedPolicy { id: "read-logs".into(), policy: Policy::parse("read-logs", doc)? }],
//!     ..Policies::default()
//! };
//! let mut ctx = Context::new();
//! ctx.mark_unknown("aws:MultiFactorAuthPresent");
//! let now = "2026-12-01T12:00:00Z".parse().unwrap();
//! let req = Request::new("arn:aws:iam::111122223333:user/alice", "s3:GetObject",
//!     "arn:aws:s3:::logs/a.gz", now, ctx);
//! assert!(matches!(evaluate(&req, &policies), Decision::AllowedIf { .. }));
//! # Ok::<(), twokey_iam::PolicyError>(())
//! ```
#![warn(missing_docs)]

pub mod auth_details;
pub mod condition;
pub mod context;
pub mod decision;
pub mod eval;
pub mod graph;
pub mod pattern;
pub mod policy;
pub mod principal;

pub use auth_details::{AuthDetails, AuthDetailsError, Entity, EntityKind};
pub use context::{Context, ContextValue, Request};
pub use decision::{Decision, Formula, Gap, PolicyKind, Requirement, StatementRef};
pub use eval::{evaluate_request as evaluate, NamedPolicy, OrgLevel, Policies};
pub use policy::{Policy, PolicyError};
