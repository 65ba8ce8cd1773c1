//! Redshift clusters are encrypted at rest.

use serde_json::json;

use super::per_region_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "redshift.encrypted",
    title: "Redshift clusters are encrypted at rest",
    severity: Severity::Medium,
    prowler: &["redshift_cluster_encrypted_at_rest"],
    why: "A warehouse's snapshots leave the account with one person's restore or share; encryption under a customer key makes the key's policy a second gate.",
    remediation: Remediation {
        cli: "aws redshift modify-cluster --cluster-identifier CLUSTER --encrypted --kms-key-id KEY_ARN",
        terraform: "resource \"aws_redshift_cluster\" \"this\" {\n  # ...\n  encrypted  = true\n  kms_key_id = aws_kms_key.data.arn\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region_baseline(
        facts,
        CHECK.id,
        "Redshift clusters",
        |b| &b.redshift,
        |at, account, cs| {
            let region = at.region.unwrap_or_default();
            cs.iter()
                .map(|c| {
                    at.decide(
                        format!("arn:aws:redshift:{region}:{}:cluster:{}", account.id, c.id),
                        c.encrypted,
                        if c.encrypted {
                            format!("Redshift cluster {} is encrypted", c.id)
                        } else {
                            format!("Redshift cluster {} is not encrypted at rest", c.id)
                        },
                        json!(c),
                    )
                })
                .collect()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::baseline::Warehouse;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn unencrypted_fails_encrypted_passes() {
        let mut f = facts();
        region_mut(&mut f)
            .baseline
            .as_mut()
            .expect("baseline")
            .redshift = Collected::Ok(vec![
            Warehouse {
                id: "a".into(),
                encrypted: false,
                kms_key: None,
            },
            Warehouse {
                id: "b".into(),
                encrypted: true,
                kms_key: None,
            },
        ]);
        assert_eq!(statuses(&CHECK, &f), vec![Fail, Pass]);
    }
}
