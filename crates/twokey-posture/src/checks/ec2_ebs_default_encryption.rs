//! EBS encryption by default is on in every scanned region.

use serde_json::json;

use super::per_region_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "ec2.ebs_encryption_by_default",
    title: "EBS encryption by default is on in every region",
    severity: Severity::Medium,
    prowler: &["ec2_ebs_default_encryption"],
    why: "With encryption by default, a volume or snapshot copied out of the account stays unreadable without the key, whose policy one person cannot loosen alone.",
    remediation: Remediation {
        cli: "aws ec2 enable-ebs-encryption-by-default --region REGION",
        terraform: "resource \"aws_ebs_encryption_by_default\" \"this\" {\n  enabled = true\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region_baseline(
        facts,
        CHECK.id,
        "EBS encryption by default",
        |b| &b.ebs_encryption_by_default,
        |at, account, on| {
            let region = at.region.unwrap_or_default();
            vec![at.decide(
                format!(
                    "arn:aws:ec2:{region}:{}:ebs-encryption-by-default",
                    account.id
                ),
                *on,
                format!(
                    "EBS encryption by default is {} in {region}",
                    if *on { "on" } else { "off" }
                ),
                json!({"ebs_encryption_by_default": on}),
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
    fn off_fails_on_passes() {
        let mut f = facts();
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        region_mut(&mut f)
            .baseline
            .as_mut()
            .expect("baseline")
            .ebs_encryption_by_default = Collected::Ok(true);
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
    }
}
