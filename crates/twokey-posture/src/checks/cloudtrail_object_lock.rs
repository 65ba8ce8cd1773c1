//! Every trail's bucket keeps its objects under S3 Object Lock in
//! COMPLIANCE mode for at least the configured number of days. GOVERNANCE
//! mode fails: anyone with `s3:BypassGovernanceRetention` can delete.

use std::collections::BTreeSet;

use serde_json::json;

use crate::facts::{Collected, Facts};
use crate::model::{Check, Finding, For, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "cloudtrail.object_lock_compliance",
    title: "Trail buckets use S3 Object Lock in COMPLIANCE mode with enough retention",
    severity: Severity::Critical,
    prowler: &["s3_bucket_object_lock"],
    why: "Only COMPLIANCE retention stops every principal, root included, from deleting log files; GOVERNANCE retention gives one person with the bypass permission the power to erase evidence.",
    remediation: Remediation {
        cli: "aws s3api put-object-lock-configuration --bucket LOG_BUCKET --object-lock-configuration '{\"ObjectLockEnabled\":\"Enabled\",\"Rule\":{\"DefaultRetention\":{\"Mode\":\"COMPLIANCE\",\"Days\":365}}}'",
        terraform: "resource \"aws_s3_bucket_object_lock_configuration\" \"logs\" {\n  bucket = aws_s3_bucket.logs.id\n  rule {\n    default_retention {\n      mode = \"COMPLIANCE\"\n      days = 365\n    }\n  }\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let min = i64::from(settings.object_lock_min_days);
    let buckets: BTreeSet<&str> = facts.trails().map(|(_, t)| t.bucket.as_str()).collect();
    let mut out = Vec::new();
    for name in buckets {
        let resource = format!("arn:aws:s3:::{name}");
        let Some((owner, bucket)) = facts.bucket(name) else {
            let trail_account = facts
                .trails()
                .find(|(_, t)| t.bucket == name)
                .map(|(a, _)| a.id.clone())
                .unwrap_or_default();
            let at = For::new(CHECK.id, &trail_account);
            out.push(at.error(
                resource,
                "the bucket",
                &format!("bucket {name} is not in any account reached"),
            ));
            continue;
        };
        let at = For::new(CHECK.id, &owner.id);
        let lock = match &bucket.object_lock {
            Collected::Ok(l) => l,
            Collected::Error(e) => {
                out.push(at.error(resource, "the Object Lock configuration", e));
                continue;
            }
        };
        let evidence = json!({"object_lock": lock});
        let (ok, msg) = match lock {
            None => (false, format!("bucket {name} does not have Object Lock enabled")),
            Some(l) if !l.enabled => (false, format!("bucket {name} does not have Object Lock enabled")),
            Some(l) => match (l.mode.as_deref(), l.retention_days()) {
                (None, _) | (_, None) => (false, format!("bucket {name} has Object Lock but no default retention")),
                (Some("COMPLIANCE"), Some(d)) if d >= min => (true, format!("bucket {name} retains objects in COMPLIANCE mode for {d} days")),
                (Some("COMPLIANCE"), Some(d)) => (false, format!("bucket {name} retains objects in COMPLIANCE mode for only {d} days (at least {min} required)")),
                (Some(m), Some(d)) => (false, format!("bucket {name} retains objects in {m} mode ({d} days), which a principal with s3:BypassGovernanceRetention can delete; COMPLIANCE required")),
            },
        };
        out.push(at.decide(resource, ok, msg, evidence));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::*;
    use crate::Status::*;

    fn with_lock(lock: Option<ObjectLock>) -> Facts {
        let mut f = facts();
        region_mut(&mut f).trails = Collected::Ok(vec![Trail {
            arn: "arn:aws:cloudtrail:eu-west-1:222233334444:trail/t".into(),
            bucket: "logs".into(),
            ..Trail::default()
        }]);
        scan(&mut f, 0).buckets.push(Bucket {
            name: "logs".into(),
            object_lock: Collected::Ok(lock),
            policy: Collected::Ok(None),
        });
        f
    }

    fn lock(mode: &str, days: Option<i32>, years: Option<i32>) -> Option<ObjectLock> {
        Some(ObjectLock {
            enabled: true,
            mode: Some(mode.into()),
            days,
            years,
        })
    }

    #[test]
    fn compliance_with_enough_days_passes() {
        assert_eq!(
            statuses(&CHECK, &with_lock(lock("COMPLIANCE", Some(365), None))),
            vec![Pass]
        );
        assert_eq!(
            statuses(&CHECK, &with_lock(lock("COMPLIANCE", None, Some(7)))),
            vec![Pass]
        );
    }

    #[test]
    fn governance_short_retention_and_no_lock_fail() {
        let out = (CHECK.evaluate)(
            &with_lock(lock("GOVERNANCE", Some(3650), None)),
            &Settings::default(),
        );
        assert_eq!(out[0].status, Fail);
        assert!(out[0].message.contains("GOVERNANCE"), "{}", out[0].message);
        let out = (CHECK.evaluate)(
            &with_lock(lock("COMPLIANCE", Some(30), None)),
            &Settings::default(),
        );
        assert!(
            out[0].message.contains("only 30 days"),
            "{}",
            out[0].message
        );
        assert_eq!(statuses(&CHECK, &with_lock(None)), vec![Fail]);
        let no_default = Some(ObjectLock {
            enabled: true,
            mode: None,
            days: None,
            years: None,
        });
        assert_eq!(statuses(&CHECK, &with_lock(no_default)), vec![Fail]);
    }

    #[test]
    fn unreadable_or_unknown_buckets_are_errors() {
        let mut f = with_lock(None);
        scan(&mut f, 0).buckets[0].object_lock = Collected::Error("AccessDenied".into());
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
        scan(&mut f, 0).buckets.clear();
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
    }
}
