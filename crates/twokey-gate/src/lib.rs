//! twokey's deploy gate: infrastructure as code deployed from pull requests,
//! applied only after another person approved the head commit.
//!
//! - [`requirements`]: the apply requirements, a pure function.
//! - [`webhook`]: GitHub webhook signature verification and parsing.
//! - [`redact`]: redaction of secrets in plan output, comment splitting.
//! - [`config`]: server-side projects; the pull request may only select.
//! - [`db`]: deliveries and their leases, locks, plans and their claims in
//!   the store.
//! - [`github`]: the GitHub client trait and its REST implementation.
//! - [`runner`]: Terraform / OpenTofu plan and apply of a saved plan.
//! - [`gate`]: the engine tying these together, and [`router`]; its
//!   background pass (`Gate::run_background`) resolves applies left
//!   `applying` by a dead worker and alerts on unfinished deliveries.
//! - `testing` (feature `testing`, for tests only): a local, stateful
//!   GitHub stand-in.

pub mod config;
pub mod db;
pub mod gate;
pub mod github;
pub mod redact;
pub mod requirements;
pub mod runner;
pub mod webhook;

pub use gate::{router, Gate};
#[cfg(feature = "testing")]
pub mod testing;
