//! Security Hub is enabled in every scanned region.

use serde_json::json;

use super::per_region;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "securityhub.enabled",
    title: "Security Hub is enabled in every region",
    severity: Severity::Low,
    prowler: &["securityhub_enabled"],
    why: "Security Hub gathers the findings of GuardDuty, Config and others where the second line of defence reads them; a region without it reports to nobody.",
    remediation: Remediation {
        cli: "aws securityhub enable-security-hub --region REGION",
        terraform: "resource \"aws_securityhub_account\" \"this\" {}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region(
        facts,
        CHECK.id,
        "Security Hub",
        |r| &r.securityhub,
        |at, account, hub| {
            let region = at.region.unwrap_or_default();
            let resource = hub.clone().unwrap_or_else(|| {
                format!("arn:aws:securityhub:{region}:{}:hub/default", account.id)
            });
            let msg = match hub {
                Some(h) => format!("Security Hub {h} is enabled in {region}"),
                None => format!("Security Hub is not enabled in {region}"),
            };
            vec![at.decide(resource, hub.is_some(), msg, json!({"hub": hub}))]
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::Collected;
    use crate::Status::*;

    #[test]
    fn a_hub_passes_none_fails() {
        let mut f = facts();
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        region_mut(&mut f).securityhub = Collected::Ok(Some(
            "arn:aws:securityhub:eu-west-1:222233334444:hub/default".into(),
        ));
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
    }
}
