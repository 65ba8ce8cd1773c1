//! People sign in through federation: the organisation has an IAM Identity
//! Center instance, or the account an IAM identity provider.

use serde_json::json;

use super::per_account_baseline;
use crate::facts::{Collected, Facts};
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "identity.federation",
    title: "People sign in through federation (Identity Center or an IAM identity provider)",
    severity: Severity::Medium,
    prowler: &["iam_check_saml_providers_sts"],
    why: "With federation, a leaver loses access when the directory says so and every session names a person; local IAM users are standing, shared and outside the approvals.",
    remediation: Remediation {
        cli: "aws sso-admin create-instance  # in the management account, or:\naws iam create-saml-provider --name IDP --saml-metadata-document file://metadata.xml",
        terraform: "resource \"aws_iam_saml_provider\" \"idp\" {\n  name                   = \"IDP\"\n  saml_metadata_document = file(\"metadata.xml\")\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    // An Identity Center instance lives in one region of the management account
    // and serves the whole organisation.
    let identity_center: Vec<String> = facts
        .accounts
        .iter()
        .filter(|a| a.management)
        .filter_map(|a| match &a.scan {
            Collected::Ok(s) => Some(s),
            Collected::Error(_) => None,
        })
        .flat_map(|s| s.regions.iter())
        .filter_map(|r| r.baseline.as_ref())
        .filter_map(|b| b.identity_center.as_result().ok())
        .flatten()
        .cloned()
        .collect();
    per_account_baseline(
        facts,
        CHECK.id,
        "IAM identity providers",
        |b| &b.identity_providers,
        |at, account, _, idps| {
            let ok = !identity_center.is_empty() || !idps.is_empty();
            vec![at.decide(
            format!("arn:aws:iam::{}:root", account.id),
            ok,
            match (identity_center.first(), idps.first()) {
                (Some(i), _) => format!("account {} is served by IAM Identity Center {i}", account.id),
                (None, Some(p)) => format!("account {} federates through {p}", account.id),
                (None, None) => format!("account {} has no identity provider and the organisation no Identity Center instance", account.id),
            },
            json!({"identity_center": identity_center, "identity_providers": idps}),
        )]
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn an_idp_or_identity_center_passes() {
        let mut f = facts();
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        scan(&mut f, 0)
            .baseline
            .as_mut()
            .expect("baseline")
            .identity_providers = Collected::Ok(vec!["arn:aws:iam::1:saml-provider/okta".into()]);
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        scan(&mut f, 0)
            .baseline
            .as_mut()
            .expect("baseline")
            .identity_providers = Collected::Ok(vec![]);
        let mut mgmt = account("111111111111", true);
        if let Collected::Ok(s) = &mut mgmt.scan {
            s.regions[0]
                .baseline
                .as_mut()
                .expect("baseline")
                .identity_center = Collected::Ok(vec!["arn:aws:sso:::instance/ssoins-1".into()]);
        }
        f.accounts.push(mgmt);
        assert_eq!(statuses(&CHECK, &f), vec![Pass, Pass]);
    }
}
