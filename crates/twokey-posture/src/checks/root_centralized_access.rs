//! Centralized root access is enabled for the organisation's member
//! accounts: root credentials can be removed from them, and root tasks run
//! as short sessions (`sts:AssumeRoot`) that twokey puts behind approval.

use serde_json::json;

use crate::facts::{Collected, Facts, RootAccess};
use crate::model::{Check, Finding, For, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "root.centralized_access",
    title: "Centralized root access is enabled for member accounts",
    severity: Severity::High,
    prowler: &["organizations_root_credentials_management_enabled"],
    why: "Without it every member account keeps a root password someone can reset and use alone; with it member accounts run without root credentials and each root task is a 15-minute session that twokey opens only after a second person approved.",
    remediation: Remediation {
        cli: "aws organizations enable-aws-service-access --service-principal iam.amazonaws.com\naws iam enable-organizations-root-credentials-management\naws iam enable-organizations-root-sessions",
        terraform: "resource \"aws_iam_organizations_features\" \"root\" {\n  enabled_features = [\"RootCredentialsManagement\", \"RootSessions\"]\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    let Some(org) = &facts.organization else {
        // Outside an organisation there are no member accounts to manage.
        return vec![];
    };
    let at = For::new(CHECK.id, &org.management_account);
    let resource = format!("organization/{}", org.id);
    match &facts.root_access {
        None => vec![at.error(
            resource,
            "centralized root access",
            "iam:ListOrganizationsFeatures was not read in this scan",
        )],
        Some(Collected::Error(e)) => vec![at.error(resource, "centralized root access", e)],
        Some(Collected::Ok(access)) => vec![decide(at, resource, access)],
    }
}

fn decide(at: For<'_>, resource: String, access: &RootAccess) -> Finding {
    let missing: Vec<&str> = [
        RootAccess::CREDENTIALS_MANAGEMENT,
        RootAccess::ROOT_SESSIONS,
    ]
    .into_iter()
    .filter(|f| !access.has(f))
    .collect();
    let msg = if missing.is_empty() {
        "centralized root access is enabled (RootCredentialsManagement, RootSessions)".to_string()
    } else {
        format!(
            "centralized root access lacks {}: member accounts keep root credentials or root tasks need them",
            missing.join(" and ")
        )
    };
    at.decide(
        resource,
        missing.is_empty(),
        msg,
        json!({"EnabledFeatures": access.enabled_features}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::Organization;
    use crate::Status::*;

    fn org(f: &mut Facts) {
        f.organization = Some(Organization {
            id: "o-aa111bb222".into(),
            management_account: "111122223333".into(),
        });
    }

    #[test]
    fn both_features_pass_one_missing_fails_unread_is_an_error() {
        let mut f = facts();
        assert!(
            statuses(&CHECK, &f).is_empty(),
            "no organisation, nothing to judge"
        );
        org(&mut f);
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
        let access = |features: &[&str]| {
            Some(Collected::Ok(RootAccess {
                organization_id: Some("o-aa111bb222".into()),
                enabled_features: features.iter().map(|s| s.to_string()).collect(),
            }))
        };
        f.root_access = access(&["RootCredentialsManagement", "RootSessions"]);
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        f.root_access = access(&["RootCredentialsManagement"]);
        let out = (CHECK.evaluate)(&f, &Settings::default());
        assert_eq!(out[0].status, Fail);
        assert!(
            out[0].message.contains("RootSessions"),
            "{}",
            out[0].message
        );
        f.root_access = access(&[]);
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        f.root_access = Some(Collected::Error(
            "iam:ListOrganizationsFeatures: 500".into(),
        ));
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
    }
}
