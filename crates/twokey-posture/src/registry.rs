//! The checks a scan runs. Adding a check: a module in `checks/` with its
//! `CHECK` constant, and one line in [`Registry::builtin`].

use crate::checks;
use crate::facts::Facts;
use crate::model::{Check, Finding, Status};
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
        r.add(checks::iam_standing_access::CHECK);
        r.add(checks::iam_unused_roles::CHECK);
        r.add(checks::twokey_assume_trust::CHECK);
        r.add(checks::scp_monitoring::CHECK);
        r.add(checks::config_recorder::CHECK);
        r.add(checks::guardduty_enabled::CHECK);
        r.add(checks::securityhub_enabled::CHECK);
        // The rest of the enterprise baseline: encryption, logging, identity.
        r.add(checks::s3_default_encryption::CHECK);
        r.add(checks::ec2_ebs_default_encryption::CHECK);
        r.add(checks::rds_storage_encrypted::CHECK);
        r.add(checks::redshift_encrypted::CHECK);
        r.add(checks::backup_vault_customer_key::CHECK);
        r.add(checks::kms_rotation::CHECK);
        r.add(checks::kms_policy_not_open::CHECK);
        r.add(checks::sqs_sns_encrypted::QUEUES);
        r.add(checks::sqs_sns_encrypted::TOPICS);
        r.add(checks::s3_log_bucket_logging::CHECK);
        r.add(checks::vpc_flow_logs::CHECK);
        r.add(checks::cloudtrail_realtime::CHECK);
        r.add(checks::logs_retention::CHECK);
        r.add(checks::identity_federation::CHECK);
        r.add(checks::iam_console_users::CHECK);
        r.add(checks::iam_password_policy::CHECK);
        // Security as code: the guard rails live where the deploy gate protects them.
        r.add(checks::code_guardrails_protected::CHECK);
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

    /// Runs every check over `facts`, except those the policy's `[posture]`
    /// switches off; a failure the policy excepts becomes
    /// [`Status::Excepted`] with the exception's reason.
    pub fn evaluate(&self, facts: &Facts, settings: &Settings) -> Vec<Finding> {
        let posture = &settings.posture;
        self.checks
            .iter()
            .filter(|c| !posture.disabled.iter().any(|d| d == c.id))
            .flat_map(|c| (c.evaluate)(facts, settings))
            .map(|mut f| {
                if f.status == Status::Fail {
                    if let Some(e) =
                        posture.exception(&f.check, &f.account, &f.resource, facts.collected_at_ms)
                    {
                        f.status = Status::Excepted;
                        f.message = format!(
                            "{} (excepted by the policy, line {}: {})",
                            f.message, e.line, e.reason
                        );
                    }
                }
                f
            })
            .collect()
    }

    /// The check ids a policy's `[posture]` names that no check has, as
    /// "line N: unknown check ..." messages.
    pub fn unknown_in(&self, posture: &twokey_core::posture::PostureConfig) -> Vec<String> {
        posture
            .named_checks()
            .into_iter()
            .filter(|(id, _)| self.get(id).is_none())
            .map(|(id, line)| {
                let at = if line > 0 {
                    format!("line {line}: ")
                } else {
                    String::new()
                };
                format!("{at}[posture] names unknown check {id:?}")
            })
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
    fn the_policy_switches_checks_off_and_excepts_failures_with_a_reason() {
        use crate::checks::fixture::*;
        use twokey_core::posture::{PostureConfig, PostureException};
        let f = facts(); // guardduty and securityhub fail in the one region
        let exception = |account: &str, until_ms| PostureException {
            check: "guardduty.enabled".into(),
            account: account.into(),
            resource: "arn:aws:guardduty:*".into(),
            reason: "sandbox account (CHG-7)".into(),
            until_ms,
            line: 12,
        };
        let settings = |posture| Settings {
            posture,
            ..Settings::default()
        };
        let r = Registry::builtin();
        let run = |s: &Settings, id: &str| {
            r.evaluate(&f, s)
                .into_iter()
                .filter(|x| x.check == id)
                .map(|x| (x.status, x.message))
                .collect::<Vec<_>>()
        };
        let plain = settings(PostureConfig::default());
        assert_eq!(run(&plain, "guardduty.enabled")[0].0, Status::Fail);
        let off = settings(PostureConfig {
            disabled: vec!["guardduty.enabled".into()],
            ..Default::default()
        });
        assert!(run(&off, "guardduty.enabled").is_empty());
        assert_eq!(run(&off, "securityhub.enabled")[0].0, Status::Fail);
        let excepted = settings(PostureConfig {
            exceptions: vec![exception(ACCOUNT, None)],
            ..Default::default()
        });
        let got = run(&excepted, "guardduty.enabled");
        assert_eq!(got[0].0, Status::Excepted);
        assert!(
            got[0].1.contains("line 12: sandbox account (CHG-7)"),
            "{}",
            got[0].1
        );
        // Another account's exception, or one that lapsed, does not apply.
        let other = settings(PostureConfig {
            exceptions: vec![exception("999999999999", None)],
            ..Default::default()
        });
        assert_eq!(run(&other, "guardduty.enabled")[0].0, Status::Fail);
        let lapsed = settings(PostureConfig {
            exceptions: vec![exception("*", Some(NOW - 1))],
            ..Default::default()
        });
        assert_eq!(run(&lapsed, "guardduty.enabled")[0].0, Status::Fail);
        // Unknown ids are named with their line.
        let typo = PostureConfig {
            exceptions: vec![PostureException {
                check: "guardduty.enable".into(),
                ..exception("*", None)
            }],
            ..Default::default()
        };
        assert_eq!(
            r.unknown_in(&typo),
            vec!["line 12: [posture] names unknown check \"guardduty.enable\"".to_string()]
        );
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
