//! The checks a scan runs. Adding a check: a module in `checks/` with its
//! `CHECK` constant, and one line in [`Registry::builtin`].

use crate::checks;
use crate::facts::Facts;
use crate::model::{Check, Finding};
use crate::Settings;

/// A list of checks with unique ids.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    checks: Vec<Check>,
}

impl Registry {
    /// Every built-in check.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.add(checks::cloudtrail_trail::CHECK);
        r.add(checks::cloudtrail_bucket_account::CHECK);
        r.add(checks::cloudtrail_object_lock::CHECK);
        r.add(checks::backup_vault_lock::CHECK);
        r.add(checks::root_no_access_keys::CHECK);
        r.add(checks::root_hardware_mfa::CHECK);
        r.add(checks::root_centralized_access::CHECK);
        r.add(checks::root_member_credentials::CHECK);
        r.add(checks::root_management_custody::CHECK);
        r.add(checks::custody_rotated::CHECK);
        r.add(checks::iam_workload_users::CHECK);
        r.add(checks::iam_unused_credentials::CHECK);
        r.add(checks::iam_privilege_escalation::CHECK);
        r.add(checks::twokey_assume_trust::CHECK);
        r.add(checks::scp_monitoring::CHECK);
        r.add(checks::config_recorder::CHECK);
        r.add(checks::guardduty_enabled::CHECK);
        r.add(checks::securityhub_enabled::CHECK);
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

    /// The check with this id.
    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// Keeps only the checks whose id is in `ids`, or names the unknown one.
    pub fn only(mut self, ids: &[String]) -> Result<Self, String> {
        if let Some(bad) = ids.iter().find(|i| self.get(i).is_none()) {
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
    pub fn evaluate(&self, facts: &Facts, settings: &Settings) -> Vec<Finding> {
        self.checks
            .iter()
            .flat_map(|c| (c.evaluate)(facts, settings))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_named_by_service() {
        let r = Registry::builtin();
        let mut ids: Vec<&str> = r.checks().iter().map(|c| c.id).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
        for c in r.checks() {
            assert!(c.id.contains('.'), "{}", c.id);
            assert!(
                !c.why.is_empty()
                    && !c.remediation.cli.is_empty()
                    && !c.remediation.terraform.is_empty(),
                "{}",
                c.id
            );
        }
    }

    #[test]
    fn only_names_an_unknown_check() {
        let e = Registry::builtin()
            .only(&["nope".into()])
            .expect_err("unknown");
        assert!(
            e.contains("unknown check \"nope\"") && e.contains("cloudtrail.trail"),
            "{e}"
        );
        let r = Registry::builtin()
            .only(&["root.hardware_mfa".into()])
            .expect("known");
        assert_eq!(r.checks().len(), 1);
    }
}
