//! twokey guard: runs Sigma rules (SigmaHQ's and twokey's own pack) over
//! AWS CloudTrail records and reports findings.
//!
//! - [`input`]: CloudTrail log files (`.json`, `.json.gz`), NDJSON, stdin,
//!   directory trees.
//! - [`scan`]: the `scan` and `watch` commands ([`ScanArgs`] + [`run_scan`],
//!   [`WatchArgs`] + [`run_watch`]) and the [`Scanner`] they share.
//! - [`output`]: NDJSON, OCSF Detection Finding and table formats.
//! - [`pack`]: twokey's built-in rule pack for the two-person-integrity
//!   baseline, compiled into the binary.
//!
//! Matching itself is done by the `twokey-sigma` crate.
#![warn(missing_docs)]

pub mod input;
pub mod output;
pub mod pack;
pub mod scan;

pub use output::{Finding, Format};
pub use scan::{load_rules, run_scan, run_watch, RuleArgs, ScanArgs, Scanner, WatchArgs};
