//! twokey posture: whether the guard rails around two-person control stand in
//! an AWS organisation.
//!
//! - [`model`]: a [`Check`] (id, title, severity, Prowler ids, why it
//!   matters, remediation) and the [`Finding`] it gives per resource;
//! - [`facts`]: what a scan collected, as serde structs: the only input of
//!   the checks, so they are pure and tested without AWS;
//! - [`checks`]: one module per check; [`Registry::builtin`] lists them;
//! - [`output`]: terminal table, JSON, SARIF 2.1.0, OCSF 1.5 Compliance Finding;
//! - [`html`]: the self-contained HTML report (maud, auto-escaped);
//! - [`collect`]: the facts from AWS, on the official SDK (organisation,
//!   member accounts through an assumed role, regions, bounded concurrency);
//! - [`scp`]: the guard-rail SCPs `twokey scp generate` writes;
//! - [`changes`]: what changed between two scans (the monitor's ledger events);
//! - [`cli`]: `twokey posture aws`, `twokey scp generate`.
//!
//! ```
//! use twokey_posture::{facts::Facts, Registry, Settings};
//! let findings = Registry::builtin().evaluate(&Facts::default(), &Settings::default());
//! // No accounts: nothing in AWS to judge; only that the guard rails are not
//! // declared as code (`[posture.as_code]`).
//! assert!(findings.iter().all(|f| f.check == "code.guardrails_protected"));
//! assert_eq!(findings.len(), 3);
//! ```

pub mod changes;
pub mod checks;
pub mod cli;
pub mod collect;
pub mod facts;
pub mod html;
pub mod model;
pub mod output;
pub mod registry;
pub mod scp;

pub use model::{Check, Finding, Remediation, Severity, Status};
pub use registry::Registry;

/// Thresholds and names the checks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Least Object Lock default retention of a trail bucket, in days.
    pub object_lock_min_days: u32,
    /// Least Vault Lock minimum retention, in days.
    pub backup_min_retention_days: u32,
    /// Also judge Backup vaults that hold no recovery points.
    pub backup_include_empty_vaults: bool,
    /// A credential not used for more days than this fails.
    pub unused_days: u32,
    /// The log-archive account: trail buckets must be there; not a workload.
    pub log_archive_account: Option<String>,
    /// The high-risk actions `iam.standing_high_risk` answers; empty: its
    /// defaults for the facts.
    pub high_risk: Vec<twokey_iam::graph::HighRisk>,
    /// Least CloudWatch Logs retention, in days.
    pub log_retention_min_days: u32,
    /// IAM users allowed a console password (the policy's `[posture]`).
    pub break_glass_users: Vec<String>,
    /// Buckets that hold evidence besides the trail buckets (the ledger's):
    /// they need SSE-KMS and access logging.
    pub log_buckets: Vec<String>,
    /// Buckets that must use SSE-KMS besides the trail and log buckets (backups).
    pub kms_buckets: Vec<String>,
    /// twokey's bastion security groups (from the policy's
    /// `aws_security_group_ingress` entitlements): their VPCs need flow logs.
    pub bastion_groups: Vec<String>,
    /// Least IAM password length where users remain.
    pub password_min_length: u32,
    /// The policy's switches and exceptions.
    pub posture: twokey_core::posture::PostureConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            object_lock_min_days: 365,
            backup_min_retention_days: 35,
            backup_include_empty_vaults: false,
            unused_days: 90,
            log_archive_account: None,
            high_risk: vec![],
            log_retention_min_days: 365,
            break_glass_users: vec![],
            log_buckets: vec![],
            kms_buckets: vec![],
            bastion_groups: vec![],
            password_min_length: 14,
            posture: twokey_core::posture::PostureConfig::default(),
        }
    }
}
