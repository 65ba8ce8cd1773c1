//! The checks a scan runs. Adding a check: a module in `checks/` with its
//! `CHECK` constant, and one line in [`Registry::builtin`].

use twokey_posture::Finding;

use crate::checks;
use crate::facts::Facts;
use crate::model::Check;
use crate::Baseline;

/// A list of checks with unique ids.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    checks: Vec<Check>,
}

impl Registry {
    /// Every built-in check.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.add(checks::pull_request_required::CHECK);
        r.add(checks::required_approvals::CHECK);
        r.add(checks::dismiss_stale_reviews::CHECK);
        r.add(checks::last_push_approval::CHECK);
        r.add(checks::code_owner_review::CHECK);
        r.add(checks::no_bypass::CHECK);
        r.add(checks::rulesets_enforced::CHECK);
        r.add(checks::force_push_blocked::CHECK);
        r.add(checks::deletion_blocked::CHECK);
        r.add(checks::gate_status_check::CHECK);
        r.add(checks::gate_installed::CHECK);
        r.add(checks::actions_cannot_approve::CHECK);
        r.add(checks::workflow_token_read_only::CHECK);
        r.add(checks::environment_reviewers::CHECK);
        r
    }

    /// Adds a check; a second check with the same id replaces the first.
    pub fn add(&mut self, check: Check) {
        self.checks.retain(|c| c.id != check.id);
        self.checks.push(check);
    }

    /// The checks, in registration order.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Keeps only the checks whose id is in `ids`, or names the unknown one.
    pub fn only(mut self, ids: &[String]) -> Result<Self, String> {
        if let Some(bad) = ids
            .iter()
            .find(|i| !self.checks.iter().any(|c| c.id == i.as_str()))
        {
            let known: Vec<&str> = self.checks.iter().map(|c| c.id).collect();
            return Err(format!(
                "unknown check {bad:?}; known: {}",
                known.join(", ")
            ));
        }
        self.checks.retain(|c| ids.iter().any(|i| i == c.id));
        Ok(self)
    }

    /// Runs every check over `facts`.
    pub fn evaluate(&self, facts: &Facts, base: &Baseline) -> Vec<Finding> {
        self.checks
            .iter()
            .flat_map(|c| (c.evaluate)(facts, base))
            .collect()
    }

    /// The same checks as the posture crate's registry, for its outputs
    /// (table, JSON, SARIF, OCSF).
    pub fn as_posture(&self) -> twokey_posture::Registry {
        let mut r = twokey_posture::Registry::default();
        for c in &self.checks {
            r.add(c.as_posture());
        }
        r
    }
}
