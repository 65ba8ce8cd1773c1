//! CloudWatch Logs groups keep their events at least N days.

use serde_json::json;

use super::per_region_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "logs.retention_days",
    title: "CloudWatch Logs groups keep events at least N days",
    severity: Severity::Low,
    prowler: &["cloudwatch_log_group_retention_policy_specific_days_enabled"],
    why: "Evidence that expires before the auditor asks is no evidence; a short retention also lets one person wait out their own trail.",
    remediation: Remediation {
        cli: "aws logs put-retention-policy --log-group-name GROUP --retention-in-days 365",
        terraform: "resource \"aws_cloudwatch_log_group\" \"this\" {\n  retention_in_days = 365\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let min = settings.log_retention_min_days;
    per_region_baseline(
        facts,
        CHECK.id,
        "CloudWatch Logs groups",
        |b| &b.log_groups,
        |at, _, groups| {
            groups
                .iter()
                .map(|g| {
                    let ok = g.retention_days.is_none_or(|d| d >= 0 && d as u32 >= min);
                    at.decide(
                        g.arn.clone(),
                        ok,
                        match g.retention_days {
                            None => format!("log group {} keeps events forever", g.arn),
                            Some(d) => format!(
                                "log group {} keeps events {d} days (at least {min} wanted)",
                                g.arn
                            ),
                        },
                        json!({"retention_days": g.retention_days, "min_days": min}),
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
    use crate::facts::baseline::LogGroup;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn short_retention_fails_forever_passes() {
        let mut f = facts();
        let g = |d| LogGroup {
            arn: "g".into(),
            retention_days: d,
        };
        region_mut(&mut f)
            .baseline
            .as_mut()
            .expect("baseline")
            .log_groups = Collected::Ok(vec![g(Some(30)), g(Some(365)), g(None), g(Some(3653))]);
        assert_eq!(statuses(&CHECK, &f), vec![Fail, Pass, Pass, Pass]);
    }
}
