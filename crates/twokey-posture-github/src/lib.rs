//! twokey posture github: whether GitHub still enforces two-person review
//! on the repositories twokey deploys from, computed from the **effective**
//! protection (classic branch protection and repository and organisation
//! rulesets, merged to the most restrictive), watched in real time through
//! the gate's webhook, and restored under two-person control.
//!
//! - [`facts`]: what a scan collected (serde structs; the only input of the
//!   checks);
//! - [`effective`]: the merge of classic protection and rulesets;
//! - [`checks`]: one module per check; [`Registry::builtin`] lists them;
//! - [`collect`]: the facts from the REST API through the gate's client
//!   (`twokey_gate::github::RestGitHub`: its App tokens, rate-limit retries,
//!   and conditional requests);
//! - [`restore`]: the API calls that bring a repository back to the
//!   baseline, and the two-person restore proposal (pure);
//! - [`watch`]: the settings events from the gate's webhook, the scheduled
//!   scan, regressions to the ledger, restore proposals in the store, and
//!   their HTTP endpoints;
//! - [`cli`]: `twokey posture github`;
//! - `standin` (feature `testing`): a GitHub stand-in for the settings
//!   endpoints, built from `@octokit/openapi`.
//!
//! Output formats are the AWS posture's ([`twokey_posture::output`]).

pub mod checks;
pub mod cli;
pub mod collect;
pub mod config;
pub mod effective;
pub mod facts;
pub mod model;
pub mod registry;
pub mod restore;
#[cfg(feature = "testing")]
pub mod standin;
pub mod watch;

pub use config::{Action, GithubPostureConfig};
pub use model::Check;
pub use registry::Registry;

/// What the checks compare against (besides each repository's required
/// approval count, which its class sets at collection).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Baseline {
    /// Bypass actors allowed (`Team/42`): the break-glass ones twokey gates.
    pub break_glass: Vec<String>,
    /// The gate's commit status context.
    pub gate_check: String,
    /// The gate's webhook URL.
    pub gate_webhook_url: Option<String>,
    /// The scan reads through the gate's GitHub App installation (so the App
    /// is installed on every repository it could read).
    pub gate_app: bool,
    /// Production environment name patterns.
    pub production_environments: Vec<String>,
    /// Reviewers (`Team/42`, `User/7`) a restore gives a production
    /// environment that has none (one that has some keeps them).
    pub environment_reviewers: Vec<String>,
}
