//! Each member account runs without root credentials, or its root secret is
//! under custody in twokey (sealed, split between custodians).

use serde_json::json;

use super::per_iam;
use crate::facts::{CustodyFact, Facts};
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "root.member_credentials",
    title: "Member accounts have no root credentials, or their root secret is under custody",
    severity: Severity::High,
    prowler: &["iam_no_root_access_key", "iam_root_credentials_management_enabled"],
    why: "A member account's root credentials work outside every approval; either remove them (centralized root access) or keep the secret split between custodians in twokey so no one person can use it.",
    remediation: Remediation {
        cli: "# with a twokey aws_root_task entitlement (task = \"IAMDeleteRootUserCredentials\", action = \"perform\"):\ntwokey request delete-root-creds-ACCOUNT --for 15m --reason \"remove member root credentials\"\n# or seal the root password: twokey custody seal --account ACCOUNT --kind password",
        terraform: "resource \"aws_iam_organizations_features\" \"root\" {\n  enabled_features = [\"RootCredentialsManagement\", \"RootSessions\"]\n}",
    },
    evaluate,
};

/// The sealed custody secrets of `account`.
pub(crate) fn sealed<'f>(facts: &'f Facts, account: &str) -> Vec<&'f CustodyFact> {
    facts
        .custody
        .iter()
        .filter(|c| c.account == account && c.state.as_ref().is_some_and(|s| s.generation > 0))
        .collect()
}

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_iam(facts, CHECK.id, |at, account, iam| {
        if account.management {
            // The management account keeps its root: root.management_custody.
            return vec![];
        }
        let id = &account.id;
        let mut found = Vec::new();
        if iam.summary.account_access_keys_present {
            found.push("access keys");
        }
        if iam.summary.account_mfa_enabled || iam.root_virtual_mfa {
            found.push("an MFA device");
        }
        let custody = sealed(facts, id);
        let evidence = json!({
            "AccountAccessKeysPresent": u8::from(iam.summary.account_access_keys_present),
            "AccountMFAEnabled": u8::from(iam.summary.account_mfa_enabled),
            "custody": custody.iter().map(|c| &c.secret).collect::<Vec<_>>(),
        });
        let resource = format!("arn:aws:iam::{id}:root");
        let (ok, msg) = match (found.is_empty(), custody.first()) {
            (_, Some(c)) => (
                true,
                format!(
                    "the root {} of account {id} is under custody in twokey ({}, {}-of-{})",
                    c.kind,
                    c.secret,
                    c.threshold,
                    c.custodians.len()
                ),
            ),
            (true, None) => (
                true,
                format!("the root user of account {id} has no access keys and no MFA device (a root password can only be seen in a root session: IAMAuditRootUserCredentials)"),
            ),
            (false, None) => (
                false,
                format!(
                    "the root user of account {id} has {} and no secret of it is sealed in twokey custody",
                    found.join(" and ")
                ),
            ),
        };
        vec![at.decide(resource, ok, msg, evidence)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::CustodyState;
    use crate::Status::*;

    pub(super) fn custody(account: &str, generation: Option<u64>) -> CustodyFact {
        CustodyFact {
            secret: "root-member".into(),
            account: account.into(),
            kind: "password".into(),
            threshold: 2,
            custodians: vec!["carol".into(), "dave".into(), "erin".into()],
            held_apart_from: vec!["frank".into()],
            state: generation.map(|g| CustodyState {
                generation: g,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn no_credentials_or_sealed_custody_pass_credentials_fail() {
        let mut f = facts();
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        iam(&mut f).summary.account_access_keys_present = true;
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        iam(&mut f).summary.account_access_keys_present = false;
        iam(&mut f).root_virtual_mfa = true;
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        // Declared but never sealed, or the state not read: not under custody.
        f.custody = vec![custody(ACCOUNT, Some(0))];
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        f.custody = vec![custody(ACCOUNT, None)];
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        f.custody = vec![custody("999988887777", Some(1))];
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        f.custody = vec![custody(ACCOUNT, Some(1))];
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        // The management account is judged by root.management_custody.
        f.accounts[0].management = true;
        assert!(statuses(&CHECK, &f).is_empty());
    }
}
