//! Every trail's events reach real-time alerting: the trail delivers to
//! CloudWatch Logs, or an EventBridge rule in its home region matches
//! CloudTrail API calls.

use serde_json::json;

use super::per_region;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "cloudtrail.realtime_delivery",
    title: "CloudTrail events reach real-time alerting (CloudWatch Logs or EventBridge)",
    severity: Severity::Medium,
    prowler: &["cloudtrail_cloudwatch_logging_enabled"],
    why: "Files in S3 are read minutes later, if ever; an action one person takes alone must raise an alarm while it can still be stopped.",
    remediation: Remediation {
        cli: "aws cloudtrail update-trail --name TRAIL --cloud-watch-logs-log-group-arn LOG_GROUP_ARN --cloud-watch-logs-role-arn ROLE_ARN\n# or: aws events put-rule --name cloudtrail-api-calls --event-pattern '{\"detail-type\":[\"AWS API Call via CloudTrail\"]}'",
        terraform: "resource \"aws_cloudwatch_event_rule\" \"cloudtrail\" {\n  name          = \"cloudtrail-api-calls\"\n  event_pattern = jsonencode({ \"detail-type\" = [\"AWS API Call via CloudTrail\"] })\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region(
        facts,
        CHECK.id,
        "CloudTrail trails",
        |r| &r.trails,
        |at, account, trails| {
            let region = at.region.unwrap_or_default();
            let Some(b) = facts
                .account(&account.id)
                .and_then(|a| match &a.scan {
                    crate::facts::Collected::Ok(s) => s.regions.iter().find(|r| r.name == region),
                    crate::facts::Collected::Error(_) => None,
                })
                .and_then(|r| r.baseline.as_ref())
            else {
                return vec![];
            };
            trails
                .iter()
                .map(|t| {
                    let log_group = b.trail_log_groups.as_result().ok().and_then(|v| {
                        v.iter()
                            .find(|(arn, _)| arn == &t.arn)
                            .map(|(_, g)| g.clone())
                    });
                    let rules = b
                        .cloudtrail_rules
                        .as_result()
                        .ok()
                        .cloned()
                        .unwrap_or_default();
                    let ok = log_group.is_some() || !rules.is_empty();
                    at.decide(
                        t.arn.clone(),
                        ok,
                        match (&log_group, rules.first()) {
                            (Some(g), _) => {
                                format!("trail {} delivers to CloudWatch Logs group {g}", t.name)
                            }
                            (None, Some(r)) => format!(
                                "trail {}'s events are matched by EventBridge rule {r}",
                                t.name
                            ),
                            (None, None) => format!(
                                "trail {} reaches neither CloudWatch Logs nor an EventBridge rule",
                                t.name
                            ),
                        },
                        json!({"log_group": log_group, "eventbridge_rules": rules}),
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
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn a_log_group_or_a_rule_passes() {
        let mut f = facts();
        let t = Trail {
            arn: "arn:t".into(),
            name: "t".into(),
            ..Default::default()
        };
        region_mut(&mut f).trails = Collected::Ok(vec![t]);
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        region_mut(&mut f)
            .baseline
            .as_mut()
            .expect("baseline")
            .cloudtrail_rules = Collected::Ok(vec!["r".into()]);
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        let b = region_mut(&mut f).baseline.as_mut().expect("baseline");
        b.cloudtrail_rules = Collected::Ok(vec![]);
        b.trail_log_groups = Collected::Ok(vec![("arn:t".into(), "arn:lg".into())]);
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
    }
}
