//! A GitHub check: like the AWS posture's [`twokey_posture::Check`], with the
//! Allstar, Legitify and Scorecard checks it corresponds to in place of
//! Prowler's, and a remediation as a `gh api` call and Terraform (the
//! `integrations/github` provider). Findings are the posture crate's
//! [`Finding`]: `account` is the organisation, `resource` the repository.

use serde::Serialize;
use serde_json::Value;
use twokey_posture::{Finding, Severity, Status};

use crate::effective::{effective, Effective};
use crate::facts::{Facts, RepoFacts};
use crate::Baseline;

/// Evaluates a check over a scan. Pure: no IO, no clock.
pub type Evaluate = fn(&Facts, &Baseline) -> Vec<Finding>;

/// One verified property of the GitHub baseline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Check {
    /// Stable id (`github.required_approvals`).
    pub id: &'static str,
    /// One line for the table.
    pub title: &'static str,
    /// How bad a failure is.
    pub severity: Severity,
    /// The checks of other monitors that correspond, as `tool:name`
    /// (`allstar:` an OpenSSF Allstar branch-protection setting,
    /// `legitify:` a Legitify policy, `scorecard:` an OpenSSF Scorecard
    /// check); a tool not named has none.
    pub corresponds: &'static [&'static str],
    /// Why it matters for two-person control.
    pub why: &'static str,
    /// A `gh api` call that fixes it.
    pub fix_cli: &'static str,
    /// Terraform (`integrations/github` provider) that owns the fix.
    pub fix_terraform: &'static str,
    /// The evaluation.
    #[serde(skip)]
    pub evaluate: Evaluate,
}

impl Check {
    /// The posture crate's check (for its table, JSON, SARIF and OCSF
    /// outputs): the corresponding checks go where Prowler's ids go.
    pub fn as_posture(&self) -> twokey_posture::Check {
        fn none(_: &twokey_posture::facts::Facts, _: &twokey_posture::Settings) -> Vec<Finding> {
            Vec::new()
        }
        twokey_posture::Check {
            id: self.id,
            title: self.title,
            severity: self.severity,
            prowler: self.corresponds,
            why: self.why,
            remediation: twokey_posture::Remediation {
                cli: self.fix_cli,
                terraform: self.fix_terraform,
            },
            evaluate: none,
        }
    }
}

/// A finding of `check` about `resource` in `facts.org`.
pub fn finding(
    facts: &Facts,
    check: &str,
    resource: &str,
    status: Status,
    message: impl Into<String>,
    evidence: Value,
) -> Finding {
    Finding {
        check: check.to_string(),
        account: facts.org.clone(),
        region: None,
        resource: resource.to_string(),
        status,
        message: message.into(),
        evidence,
    }
}

/// Pass or fail.
pub fn decide(ok: bool) -> Status {
    if ok {
        Status::Pass
    } else {
        Status::Fail
    }
}

/// The protection of each repository's default branch, with the error
/// finding for the repositories whose protection could not be read.
/// `f` decides one repository: `None` skips it (the check does not apply).
pub fn per_branch(
    facts: &Facts,
    base: &Baseline,
    check: &str,
    f: impl Fn(&RepoFacts, &Effective) -> Option<(bool, String)>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for repo in &facts.repos {
        let res = format!("{}@{}", repo.full_name, repo.default_branch);
        let failed = [
            ("classic branch protection", repo.classic.as_result().err()),
            ("the rules for the branch", repo.rules.as_result().err()),
            ("the rulesets", repo.rulesets.as_result().err()),
        ];
        if let Some((what, Some(err))) = failed.iter().find(|(_, e)| e.is_some()) {
            out.push(finding(
                facts,
                check,
                &res,
                Status::Error,
                format!("could not read {what} of {res}: {err}"),
                Value::Null,
            ));
            continue;
        }
        let eff = effective(repo, &base.break_glass);
        if let Some((ok, msg)) = f(repo, &eff) {
            out.push(finding(
                facts,
                check,
                &res,
                decide(ok),
                msg,
                serde_json::to_value(&eff).unwrap_or(Value::Null),
            ));
        }
    }
    out
}

/// The sources' names, joined.
pub fn names<'a>(s: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = s.collect();
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}
