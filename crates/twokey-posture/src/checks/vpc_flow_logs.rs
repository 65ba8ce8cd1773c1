//! VPCs that hold twokey's bastion security groups have flow logs (every
//! VPC, when no bastion group is named).

use serde_json::json;

use super::per_region_baseline;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "vpc.flow_logs",
    title: "VPCs holding bastion security groups have flow logs",
    severity: Severity::Medium,
    prowler: &["vpc_flow_logs_enabled"],
    why: "A security-group grant opens a network path for one person for a while; flow logs are the record of what crossed it, kept apart from the host.",
    remediation: Remediation {
        cli: "aws ec2 create-flow-logs --resource-type VPC --resource-ids VPC_ID --traffic-type ALL --log-destination-type s3 --log-destination arn:aws:s3:::FLOW_LOG_BUCKET",
        terraform: "resource \"aws_flow_log\" \"this\" {\n  vpc_id               = aws_vpc.this.id\n  traffic_type         = \"ALL\"\n  log_destination_type = \"s3\"\n  log_destination      = aws_s3_bucket.flow_logs.arn\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    // The security groups' VPCs come from the same region's facts.
    for f in per_region_baseline(
        facts,
        CHECK.id,
        "VPCs",
        |b| &b.vpcs,
        |at, account, vpcs| {
            let region = at.region.unwrap_or_default();
            let groups: Vec<(String, String)> = facts
                .account(&account.id)
                .and_then(|a| match &a.scan {
                    crate::facts::Collected::Ok(s) => s.regions.iter().find(|r| r.name == region),
                    crate::facts::Collected::Error(_) => None,
                })
                .and_then(|r| r.baseline.as_ref())
                .and_then(|b| b.security_groups.as_result().ok().cloned())
                .unwrap_or_default();
            let bastion_vpcs: Vec<&str> = groups
                .iter()
                .filter(|(g, _)| settings.bastion_groups.contains(g))
                .map(|(_, v)| v.as_str())
                .collect();
            vpcs.iter()
            .filter(|v| settings.bastion_groups.is_empty() || bastion_vpcs.contains(&v.id.as_str()))
            .map(|v| {
                at.decide(
                    format!("arn:aws:ec2:{region}:{}:vpc/{}", account.id, v.id),
                    !v.flow_logs.is_empty(),
                    if v.flow_logs.is_empty() {
                        format!("VPC {} has no active flow log", v.id)
                    } else {
                        format!("VPC {} has flow log {}", v.id, v.flow_logs.join(", "))
                    },
                    json!({"flow_logs": v.flow_logs, "bastion": bastion_vpcs.contains(&v.id.as_str())}),
                )
            })
            .collect()
        },
    ) {
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::facts::baseline::Vpc;
    use crate::facts::*;
    use crate::Status::*;

    #[test]
    fn bastion_vpcs_are_judged_or_every_vpc() {
        let mut f = facts();
        let b = region_mut(&mut f).baseline.as_mut().expect("baseline");
        b.vpcs = Collected::Ok(vec![
            Vpc {
                id: "vpc-a".into(),
                flow_logs: vec![],
            },
            Vpc {
                id: "vpc-b".into(),
                flow_logs: vec!["fl-1".into()],
            },
        ]);
        b.security_groups = Collected::Ok(vec![("sg-bastion".into(), "vpc-a".into())]);
        assert_eq!(statuses(&CHECK, &f), vec![Fail, Pass]);
        let s = Settings {
            bastion_groups: vec!["sg-bastion".into()],
            ..Settings::default()
        };
        let got: Vec<_> = (CHECK.evaluate)(&f, &s)
            .into_iter()
            .map(|x| (x.resource.ends_with("vpc-a"), x.status))
            .collect();
        assert_eq!(got, vec![(true, Fail)]);
    }
}
