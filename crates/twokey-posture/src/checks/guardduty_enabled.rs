//! GuardDuty has an enabled detector in every scanned region.

use serde_json::json;

use super::per_region;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "guardduty.enabled",
    title: "GuardDuty is enabled in every region",
    severity: Severity::Medium,
    prowler: &["guardduty_is_enabled"],
    why: "GuardDuty alerts on credential misuse and unusual API activity in real time; in a region without it, one person's misuse raises no alarm for the second.",
    remediation: Remediation {
        cli: "aws guardduty create-detector --enable --region REGION",
        terraform: "resource \"aws_guardduty_detector\" \"this\" {\n  enable = true\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region(
        facts,
        CHECK.id,
        "GuardDuty detectors",
        |r| &r.guardduty,
        |at, account, ds| {
            let region = at.region.unwrap_or_default();
            let on = ds.iter().find(|d| d.enabled);
            let (ok, msg) = match (on, ds.is_empty()) {
                (Some(d), _) => (
                    true,
                    format!("GuardDuty detector {} is enabled in {region}", d.id),
                ),
                (None, true) => (false, format!("GuardDuty has no detector in {region}")),
                (None, false) => (
                    false,
                    format!("GuardDuty's detector in {region} is suspended"),
                ),
            };
            vec![at.decide(
                format!("arn:aws:guardduty:{region}:{}:detector", account.id),
                ok,
                msg,
                json!({"detectors": ds}),
            )]
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
    fn an_enabled_detector_passes_none_or_suspended_fails() {
        let mut f = facts();
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        let d = Detector {
            id: "d1".into(),
            enabled: false,
        };
        region_mut(&mut f).guardduty = Collected::Ok(vec![d.clone()]);
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        region_mut(&mut f).guardduty = Collected::Ok(vec![Detector { enabled: true, ..d }]);
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
    }
}
