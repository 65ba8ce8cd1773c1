//! Backup vaults encrypt with a customer-managed KMS key.

use serde_json::json;

use super::per_region_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity, Status};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "backup.vault_customer_key",
    title: "Backup vaults encrypt with a customer-managed KMS key",
    severity: Severity::Medium,
    prowler: &["backup_vaults_encrypted"],
    why: "With the AWS-managed aws/backup key, anyone in the account with Backup rights can restore and read; a customer key's policy decides, and changing it is a separate, reviewed act.",
    remediation: Remediation {
        cli: "# a vault's key is set at creation: create a new vault and copy recovery points into it\naws backup create-backup-vault --backup-vault-name VAULT --encryption-key-arn KEY_ARN",
        terraform: "resource \"aws_backup_vault\" \"this\" {\n  name        = \"VAULT\"\n  kms_key_arn = aws_kms_key.backup.arn\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region_baseline(
        facts,
        CHECK.id,
        "Backup vault keys",
        |b| &b.vault_keys,
        |at, _, vs| {
            vs.iter()
            .map(|v| {
                let evidence = json!(v);
                match (&v.key_arn, v.customer_managed) {
                    (None, _) => at.decide(v.vault.clone(), false, format!("vault {} names no encryption key", v.vault), evidence),
                    (Some(k), Some(customer)) => at.decide(
                        v.vault.clone(),
                        customer,
                        if customer {
                            format!("vault {} encrypts with customer-managed key {k}", v.vault)
                        } else {
                            format!("vault {} encrypts with the AWS-managed key {k}", v.vault)
                        },
                        evidence,
                    ),
                    (Some(k), None) => at.finding(
                        v.vault.clone(),
                        Status::Error,
                        format!("vault {} encrypts with {k}, whose manager could not be read (kms:DescribeKey)", v.vault),
                        evidence,
                    ),
                }
            })
            .collect()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::baseline::VaultKey;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn aws_managed_fails_customer_passes_unknown_is_an_error() {
        let mut f = facts();
        let k = |c| VaultKey {
            vault: "v".into(),
            key_arn: Some("arn:aws:kms:eu-west-1:1:key/x".into()),
            customer_managed: c,
        };
        region_mut(&mut f)
            .baseline
            .as_mut()
            .expect("baseline")
            .vault_keys = Collected::Ok(vec![
            k(Some(false)),
            k(Some(true)),
            k(None),
            VaultKey {
                vault: "n".into(),
                key_arn: None,
                customer_managed: None,
            },
        ]);
        assert_eq!(statuses(&CHECK, &f), vec![Fail, Pass, Error, Fail]);
    }
}
