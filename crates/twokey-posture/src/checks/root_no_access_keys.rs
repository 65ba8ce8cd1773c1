//! The root user of every account has no access keys.

use serde_json::json;

use super::per_iam;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "root.no_access_keys",
    title: "The root user has no access keys",
    severity: Severity::Critical,
    prowler: &["iam_no_root_access_key"],
    why: "A root access key is a single secret that does anything in the account without MFA, outside every approval; whoever holds it acts alone.",
    remediation: Remediation {
        cli: "# as root (or with sts:AssumeRoot and the IAMDeleteRootUserCredentials task policy):\naws iam list-access-keys\naws iam delete-access-key --access-key-id AKIA...",
        terraform: "# Root credentials are not managed by Terraform; enable centralized root access:\nresource \"aws_iam_organizations_features\" \"root\" {\n  enabled_features = [\"RootCredentialsManagement\", \"RootSessions\"]\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_iam(facts, CHECK.id, |at, account, iam| {
        let present = iam.summary.account_access_keys_present;
        let msg = if present {
            format!("the root user of account {} has access keys", account.id)
        } else {
            format!("the root user of account {} has no access keys", account.id)
        };
        vec![at.decide(
            format!("arn:aws:iam::{}:root", account.id),
            !present,
            msg,
            json!({"AccountAccessKeysPresent": u8::from(present)}),
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::Status::*;

    #[test]
    fn keys_fail_no_keys_pass() {
        let mut f = facts();
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        iam(&mut f).summary.account_access_keys_present = true;
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
    }
}
