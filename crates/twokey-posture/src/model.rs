//! The words of a posture scan: a [`Check`] (what is verified and why it
//! matters for two-person control), and the [`Finding`] it produces for each
//! resource (pass, fail, or error when the facts could not be collected).

use serde::{Deserialize, Serialize};

use crate::facts::Facts;
use crate::Settings;

/// How bad a failing check is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hygiene; worth fixing, no direct path around two-person control.
    Low,
    /// Weakens evidence or detection.
    Medium,
    /// One person can act alone or hide what they did.
    High,
    /// One person can act alone and erase the evidence.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The lowercase name (`high`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity {s:?}; expected low, medium, high or critical")
            })
    }
}

/// How to fix a failing check, for a person with the AWS CLI and for the
/// infrastructure-as-code that should own the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Remediation {
    /// AWS CLI commands.
    pub cli: &'static str,
    /// A Terraform snippet (AWS provider resources).
    pub terraform: &'static str,
}

/// What a check evaluates: the facts of a scan and its settings, giving one
/// finding per resource. Pure: no IO, no clock (`facts.collected_at_ms` is
/// "now").
pub type Evaluate = fn(&Facts, &Settings) -> Vec<Finding>;

/// One verified property of the baseline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Check {
    /// Stable id (`cloudtrail.object_lock_compliance`); what `--format json`,
    /// SARIF rule ids and OCSF `metadata.event_code` carry.
    pub id: &'static str,
    /// One line a person reads in the table.
    pub title: &'static str,
    /// How bad a failure is.
    pub severity: Severity,
    /// The Prowler check ids that correspond, where one exists.
    pub prowler: &'static [&'static str],
    /// Why it matters for two-person control.
    pub why: &'static str,
    /// How to fix a failure.
    pub remediation: Remediation,
    /// The evaluation.
    #[serde(skip)]
    pub evaluate: Evaluate,
}

/// The outcome for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The resource meets the check.
    Pass,
    /// It does not.
    Fail,
    /// The facts needed could not be collected (the message says which and why).
    Error,
    /// It does not, and the policy's `[posture]` excepts it with a reason
    /// (an exception is a policy change: two people and the ledger).
    Excepted,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 4] = [Self::Pass, Self::Fail, Self::Error, Self::Excepted];

    /// The status named `s` in any case (`PASS` as stored in the posture
    /// results, `pass` as in JSON and the GitHub posture state).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// `PASS`, `FAIL`, `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Error => "ERROR",
            Self::Excepted => "EXCEPTED",
        }
    }
}

/// One check's result for one resource, with the evidence it was decided on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The check's id.
    pub check: String,
    /// The account the resource is in.
    pub account: String,
    /// The region, for regional resources.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub region: Option<String>,
    /// The resource (an ARN where AWS has one, else a name).
    pub resource: String,
    /// Pass, fail or error.
    pub status: Status,
    /// What was found, in a sentence naming the resource.
    pub message: String,
    /// The facts the decision rests on (as collected).
    #[serde(default)]
    pub evidence: serde_json::Value,
}

/// Builds findings of one check, so a check reads as its decisions only.
#[derive(Debug, Clone, Copy)]
pub struct For<'a> {
    /// The check id.
    pub check: &'static str,
    /// The account.
    pub account: &'a str,
    /// The region, if regional.
    pub region: Option<&'a str>,
}

impl<'a> For<'a> {
    /// Findings of `check` in `account`.
    pub fn new(check: &'static str, account: &'a str) -> Self {
        Self {
            check,
            account,
            region: None,
        }
    }

    /// The same, in `region`.
    pub fn region(self, region: &'a str) -> Self {
        Self {
            region: Some(region),
            ..self
        }
    }

    /// A finding with `status`.
    pub fn finding(
        &self,
        resource: impl Into<String>,
        status: Status,
        message: impl Into<String>,
        evidence: serde_json::Value,
    ) -> Finding {
        Finding {
            check: self.check.to_string(),
            account: self.account.to_string(),
            region: self.region.map(str::to_string),
            resource: resource.into(),
            status,
            message: message.into(),
            evidence,
        }
    }

    /// Pass when `ok`, else fail.
    pub fn decide(
        &self,
        resource: impl Into<String>,
        ok: bool,
        message: impl Into<String>,
        evidence: serde_json::Value,
    ) -> Finding {
        let status = if ok { Status::Pass } else { Status::Fail };
        self.finding(resource, status, message, evidence)
    }

    /// An error finding: `what` could not be collected.
    pub fn error(&self, resource: impl Into<String>, what: &str, error: &str) -> Finding {
        self.finding(
            resource,
            Status::Error,
            format!("could not read {what}: {error}"),
            serde_json::Value::Null,
        )
    }
}

/// Up to `n` items joined with "; ", then how many more (a finding's
/// message stays readable; its evidence keeps the full list).
pub fn first(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join("; ");
    if items.len() > n {
        s.push_str(&format!("; and {} more", items.len() - n));
    }
    s
}
