//! The root user of every account has MFA, and not a virtual device: a
//! hardware key can be held by a custodian apart from the password.

use serde_json::json;

use super::per_iam;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "root.hardware_mfa",
    title: "The root user has a hardware MFA device (no virtual device)",
    severity: Severity::Critical,
    prowler: &["iam_root_mfa_enabled", "iam_root_hardware_mfa_enabled"],
    why: "Two-person custody of root splits the password from a hardware key held by another custodian; a virtual MFA (an app on one person's phone) lets its holder pair it with the password alone.",
    remediation: Remediation {
        cli: "# as root, in the console: Security credentials > Assign MFA device > Security key (FIDO2) or Hardware TOTP token;\n# then remove the virtual device:\naws iam deactivate-mfa-device --serial-number arn:aws:iam::ACCOUNT:mfa/root-account-mfa-device",
        terraform: "# Root MFA cannot be set by Terraform. For member accounts, remove root credentials instead:\nresource \"aws_iam_organizations_features\" \"root\" {\n  enabled_features = [\"RootCredentialsManagement\", \"RootSessions\"]\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_iam(facts, CHECK.id, |at, account, iam| {
        let id = &account.id;
        let (ok, msg) = match (iam.summary.account_mfa_enabled, iam.root_virtual_mfa) {
            (false, _) => (false, format!("the root user of account {id} has no MFA")),
            (true, true) => (
                false,
                format!("the root user of account {id} uses a virtual MFA device"),
            ),
            (true, false) => (
                true,
                format!("the root user of account {id} has a hardware MFA device"),
            ),
        };
        vec![at.decide(
            format!("arn:aws:iam::{id}:root"),
            ok,
            msg,
            json!({"AccountMFAEnabled": u8::from(iam.summary.account_mfa_enabled), "root_virtual_mfa": iam.root_virtual_mfa}),
        )]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::Status::*;

    #[test]
    fn hardware_passes_virtual_and_none_fail() {
        let mut f = facts();
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        iam(&mut f).summary.account_mfa_enabled = true;
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        iam(&mut f).root_virtual_mfa = true;
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
    }
}
