//! twokey guard: runs Sigma rules (SigmaHQ's and twokey's own pack) over
//! AWS CloudTrail records and reports findings.
//!
//! - [`input`]: CloudTrail log files (`.json`, `.json.gz`), NDJSON, stdin,
//!   directory trees.
//! - [`scan`]: the `scan` and `watch` commands ([`ScanArgs`] + [`run_scan`],
//!   [`WatchArgs`] + [`run_watch`]) and the [`Scanner`] they share.
//! - [`grants`]: grant correlation ("outside two-person control"):
//!   [`grants::GrantIndex`] and the pure [`grants::correlate`].
//! - [`activity`]: `twokey guard activity`, what each grant did (CloudTrail,
//!   PostgreSQL server log, VPC flow logs attributed to grants).
//! - [`output`]: NDJSON, OCSF Detection Finding and table formats.
//! - [`pack`]: twokey's built-in rule pack for the two-person-integrity
//!   baseline, compiled into the binary.
//!
//! Matching itself is done by the `twokey-sigma` crate.
#![warn(missing_docs)]

pub mod activity;
#[cfg(feature = "aws")]
pub mod aws;
pub mod grants;
pub mod input;
pub mod output;
pub mod pack;
mod rt;
pub mod scan;

pub use grants::{correlate, Coverage, GrantIndex};
pub use output::{Finding, Format};
pub use scan::{
    load_rules, run_scan, run_watch, GrantArgs, RuleArgs, ScanArgs, Scanner, WatchArgs,
};
