//! RDS DB instances and Aurora clusters have storage encryption on.

use serde_json::json;

use super::per_region_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "rds.storage_encrypted",
    title: "RDS and Aurora storage is encrypted",
    severity: Severity::Medium,
    prowler: &["rds_instance_storage_encrypted", "rds_cluster_storage_encrypted"],
    why: "An unencrypted database's snapshots can be shared to another account by one person with snapshot rights; encrypted under a customer key, the key policy is a second lock.",
    remediation: Remediation {
        cli: "# storage encryption is set at creation: snapshot, copy encrypted, restore\naws rds create-db-snapshot --db-instance-identifier DB --db-snapshot-identifier DB-snap\naws rds copy-db-snapshot --source-db-snapshot-identifier DB-snap --target-db-snapshot-identifier DB-snap-enc --kms-key-id KEY_ARN\naws rds restore-db-instance-from-db-snapshot --db-instance-identifier DB-enc --db-snapshot-identifier DB-snap-enc",
        terraform: "resource \"aws_db_instance\" \"this\" {\n  # ...\n  storage_encrypted = true\n  kms_key_id        = aws_kms_key.data.arn\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region_baseline(
        facts,
        CHECK.id,
        "RDS databases",
        |b| &b.databases,
        |at, _, dbs| {
            dbs.iter()
                .map(|d| {
                    let kind = if d.cluster {
                        "Aurora cluster"
                    } else {
                        "DB instance"
                    };
                    at.decide(
                        d.arn.clone(),
                        d.encrypted,
                        if d.encrypted {
                            format!("{kind} {} is encrypted", d.arn)
                        } else {
                            format!("{kind} {} has unencrypted storage", d.arn)
                        },
                        json!(d),
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
    use crate::facts::baseline::Database;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn unencrypted_fails_encrypted_passes() {
        let mut f = facts();
        region_mut(&mut f)
            .baseline
            .as_mut()
            .expect("baseline")
            .databases = Collected::Ok(vec![
            Database {
                arn: "arn:aws:rds:eu-west-1:1:db:a".into(),
                encrypted: false,
                kms_key: None,
                cluster: false,
            },
            Database {
                arn: "arn:aws:rds:eu-west-1:1:cluster:b".into(),
                encrypted: true,
                kms_key: Some("k".into()),
                cluster: true,
            },
        ]);
        assert_eq!(statuses(&CHECK, &f), vec![Fail, Pass]);
    }
}
