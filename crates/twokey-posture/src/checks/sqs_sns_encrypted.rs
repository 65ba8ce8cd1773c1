//! SQS queues and SNS topics are encrypted at rest (the guard reads its
//! CloudTrail notifications from them).

use serde_json::json;

use super::per_region_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The queue check.
pub const QUEUES: Check = Check {
    id: "sqs.encrypted",
    title: "SQS queues are encrypted at rest",
    severity: Severity::Low,
    prowler: &["sqs_queues_server_side_encryption_enabled"],
    why: "The guard reads CloudTrail notifications from SQS; encrypted messages are readable only through the key policy, not by anyone who can receive from the queue.",
    remediation: Remediation {
        cli: "aws sqs set-queue-attributes --queue-url URL --attributes KmsMasterKeyId=alias/KEY  # or SqsManagedSseEnabled=true",
        terraform: "resource \"aws_sqs_queue\" \"this\" {\n  kms_master_key_id = aws_kms_key.events.arn\n}",
    },
    evaluate: queues,
};

/// The topic check.
pub const TOPICS: Check = Check {
    id: "sns.encrypted",
    title: "SNS topics are encrypted with KMS",
    severity: Severity::Low,
    prowler: &["sns_topics_kms_encryption_at_rest_enabled"],
    why: "Topics fan CloudTrail and alert notifications out to the guard and to people; encryption under a KMS key keeps who can read them a decision of the key policy.",
    remediation: Remediation {
        cli: "aws sns set-topic-attributes --topic-arn ARN --attribute-name KmsMasterKeyId --attribute-value alias/KEY",
        terraform: "resource \"aws_sns_topic\" \"this\" {\n  kms_master_key_id = aws_kms_key.events.arn\n}",
    },
    evaluate: topics,
};

fn queues(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region_baseline(
        facts,
        QUEUES.id,
        "SQS queues",
        |b| &b.queues,
        |at, _, qs| {
            qs.iter()
                .map(|q| {
                    let ok = q.kms_key.is_some() || q.managed_sse;
                    at.decide(
                        q.arn.clone(),
                        ok,
                        match (&q.kms_key, q.managed_sse) {
                            (Some(k), _) => {
                                format!("queue {} is encrypted with KMS key {k}", q.arn)
                            }
                            (None, true) => {
                                format!("queue {} is encrypted with SQS-managed keys", q.arn)
                            }
                            (None, false) => format!("queue {} is not encrypted at rest", q.arn),
                        },
                        json!(q),
                    )
                })
                .collect()
        },
    )
}

fn topics(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region_baseline(
        facts,
        TOPICS.id,
        "SNS topics",
        |b| &b.topics,
        |at, _, ts| {
            ts.iter()
                .map(|t| {
                    at.decide(
                        t.arn.clone(),
                        t.kms_key.is_some(),
                        match &t.kms_key {
                            Some(k) => format!("topic {} is encrypted with KMS key {k}", t.arn),
                            None => format!("topic {} is not encrypted with KMS", t.arn),
                        },
                        json!(t),
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
    use crate::facts::baseline::Encrypted;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn unencrypted_queues_and_topics_fail() {
        let mut f = facts();
        let e = |k: Option<&str>, m| Encrypted {
            arn: "a".into(),
            kms_key: k.map(str::to_string),
            managed_sse: m,
        };
        let b = region_mut(&mut f).baseline.as_mut().expect("baseline");
        b.queues = Collected::Ok(vec![e(None, false), e(None, true), e(Some("k"), false)]);
        b.topics = Collected::Ok(vec![e(None, false), e(Some("k"), false)]);
        assert_eq!(statuses(&QUEUES, &f), vec![Fail, Pass, Pass]);
        assert_eq!(statuses(&TOPICS, &f), vec![Fail, Pass]);
    }
}
