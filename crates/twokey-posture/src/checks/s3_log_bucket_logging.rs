//! The CloudTrail buckets and the ledger bucket log who reads and changes
//! them (S3 server access logging).

use serde_json::json;

use super::per_account_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "s3.log_bucket_access_logging",
    title: "CloudTrail and ledger buckets have S3 access logging",
    severity: Severity::Medium,
    prowler: &["cloudtrail_logs_s3_bucket_access_logging_enabled", "s3_bucket_server_access_logging_enabled"],
    why: "CloudTrail's management events do not show who read or tried to delete the evidence itself; access logs on the evidence buckets do, in a second place.",
    remediation: Remediation {
        cli: "aws s3api put-bucket-logging --bucket BUCKET --bucket-logging-status '{\"LoggingEnabled\":{\"TargetBucket\":\"ACCESS_LOG_BUCKET\",\"TargetPrefix\":\"BUCKET/\"}}'",
        terraform: "resource \"aws_s3_bucket_logging\" \"this\" {\n  bucket        = aws_s3_bucket.trail.id\n  target_bucket = aws_s3_bucket.access_logs.id\n  target_prefix = \"trail/\"\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let mut evidence_buckets: Vec<String> = facts.trails().map(|(_, t)| t.bucket.clone()).collect();
    evidence_buckets.extend(settings.log_buckets.iter().cloned());
    evidence_buckets.sort();
    evidence_buckets.dedup();
    per_account_baseline(
        facts,
        CHECK.id,
        "S3 bucket logging",
        |b| &b.buckets,
        |at, _, _, buckets| {
            buckets
                .iter()
                .filter(|b| evidence_buckets.contains(&b.name))
                .map(|b| {
                    at.decide(
                        format!("arn:aws:s3:::{}", b.name),
                        b.logging_target.is_some(),
                        match &b.logging_target {
                            Some(t) => format!("evidence bucket {} logs access to {t}", b.name),
                            None => {
                                format!("evidence bucket {} has no server access logging", b.name)
                            }
                        },
                        json!({"logging_target": b.logging_target}),
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

    #[test]
    fn only_evidence_buckets_are_judged() {
        let mut f = facts();
        let b = |n: &str, t: Option<&str>| BucketSettings {
            name: n.into(),
            logging_target: t.map(str::to_string),
            ..Default::default()
        };
        scan(&mut f, 0).baseline.as_mut().expect("baseline").buckets = Collected::Ok(vec![
            b("ledger", None),
            b("ledger2", Some("access")),
            b("other", None),
        ]);
        let s = Settings {
            log_buckets: vec!["ledger".into(), "ledger2".into()],
            ..Settings::default()
        };
        let got: Vec<_> = (CHECK.evaluate)(&f, &s)
            .into_iter()
            .map(|x| x.status)
            .collect();
        assert_eq!(got, vec![Fail, Pass]);
    }
}
