//! Every bucket has default encryption; the trail buckets and the buckets
//! the settings name as log or backup stores use SSE-KMS, so reading them
//! needs a key policy a second person controls as well as the bucket policy.

use serde_json::json;

use super::per_account_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "s3.default_encryption",
    title: "S3 buckets are encrypted by default (SSE-KMS for log and backup buckets)",
    severity: Severity::Medium,
    prowler: &["s3_bucket_default_encryption", "s3_bucket_kms_encryption"],
    why: "Evidence and backups encrypted under a KMS key can only be read by someone the key policy also admits: one bucket-policy change by one person does not expose them.",
    remediation: Remediation {
        cli: "aws s3api put-bucket-encryption --bucket BUCKET --server-side-encryption-configuration '{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"KEY_ARN\"},\"BucketKeyEnabled\":true}]}'",
        terraform: "resource \"aws_s3_bucket_server_side_encryption_configuration\" \"this\" {\n  bucket = aws_s3_bucket.this.id\n  rule {\n    apply_server_side_encryption_by_default {\n      sse_algorithm     = \"aws:kms\"\n      kms_master_key_id = aws_kms_key.logs.arn\n    }\n    bucket_key_enabled = true\n  }\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let trail_buckets: Vec<&str> = facts.trails().map(|(_, t)| t.bucket.as_str()).collect();
    per_account_baseline(
        facts,
        CHECK.id,
        "S3 bucket encryption",
        |b| &b.buckets,
        |at, _, _, buckets| {
            buckets
            .iter()
            .map(|b| {
                let needs_kms = trail_buckets.contains(&b.name.as_str())
                    || settings.log_buckets.iter().any(|k| k == &b.name)
                    || settings.kms_buckets.iter().any(|k| k == &b.name);
                let kms = b.encryption.as_deref().is_some_and(|a| a.starts_with("aws:kms"));
                let (ok, msg) = match (&b.encryption, needs_kms) {
                    (None, _) => (false, format!("bucket {} has no default encryption", b.name)),
                    (Some(a), true) if !kms => (
                        false,
                        format!("bucket {} holds logs or backups but is encrypted with {a}, not SSE-KMS", b.name),
                    ),
                    (Some(a), _) => (true, format!("bucket {} is encrypted by default with {a}", b.name)),
                };
                at.decide(
                    format!("arn:aws:s3:::{}", b.name),
                    ok,
                    msg,
                    json!({"encryption": b.encryption, "kms_key": b.kms_key, "needs_kms": needs_kms}),
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
    use crate::facts::baseline::BucketSettings;
    use crate::facts::*;
    use crate::Status::*;

    fn bucket(name: &str, enc: Option<&str>) -> BucketSettings {
        BucketSettings {
            name: name.into(),
            encryption: enc.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn none_fails_sse_s3_passes_except_for_log_buckets() {
        let mut f = facts();
        scan(&mut f, 0).baseline.as_mut().expect("baseline").buckets = Collected::Ok(vec![
            bucket("plain", None),
            bucket("site", Some("AES256")),
            bucket("ledger", Some("AES256")),
            bucket("ledger-kms", Some("aws:kms")),
        ]);
        let settings = Settings {
            kms_buckets: vec!["ledger".into(), "ledger-kms".into()],
            ..Settings::default()
        };
        assert_eq!(
            statuses_with(&CHECK, &f, &settings),
            vec![Fail, Pass, Fail, Pass]
        );
        // A `--log-bucket` (the ledger's) needs SSE-KMS too.
        let settings = Settings {
            log_buckets: vec!["ledger".into()],
            ..Settings::default()
        };
        assert_eq!(
            statuses_with(&CHECK, &f, &settings),
            vec![Fail, Pass, Fail, Pass]
        );
    }

    #[test]
    fn recorded_facts_without_baseline_are_not_judged() {
        let mut f = facts();
        scan(&mut f, 0).baseline = None;
        assert!(statuses(&CHECK, &f).is_empty());
    }
}
