//! AWS Config records in every scanned region and delivers somewhere.

use serde_json::json;

use super::per_region;
use crate::facts::Facts;
use crate::model::{Check, Finding, Remediation, Severity};
use crate::Settings;

/// The check.
pub const CHECK: Check = Check {
    id: "config.recorder",
    title: "AWS Config records in every region with a delivery channel",
    severity: Severity::Medium,
    prowler: &["config_recorder_all_regions_enabled"],
    why: "Config keeps the history of every resource's configuration: a guard rail switched off and on again by one person shows there even when no alert fired.",
    remediation: Remediation {
        cli: "aws configservice put-configuration-recorder --configuration-recorder name=default,roleARN=ROLE_ARN --recording-group allSupported=true,includeGlobalResourceTypes=true\naws configservice put-delivery-channel --delivery-channel name=default,s3BucketName=CONFIG_BUCKET\naws configservice start-configuration-recorder --configuration-recorder-name default",
        terraform: "resource \"aws_config_configuration_recorder_status\" \"default\" {\n  name       = aws_config_configuration_recorder.default.name\n  is_enabled = true\n  depends_on = [aws_config_delivery_channel.default]\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, _: &Settings) -> Vec<Finding> {
    per_region(
        facts,
        CHECK.id,
        "AWS Config",
        |r| &r.config,
        |at, account, c| {
            let region = at.region.unwrap_or_default();
            let recording: Vec<&str> = c
                .recorders
                .iter()
                .filter(|r| r.recording)
                .map(|r| r.name.as_str())
                .collect();
            let (ok, msg) = match (recording.first(), c.delivery_channels) {
                (None, _) if c.recorders.is_empty() => {
                    (false, format!("no AWS Config recorder in {region}"))
                }
                (None, _) => (
                    false,
                    format!("the AWS Config recorder in {region} is stopped"),
                ),
                (Some(_), 0) => (
                    false,
                    format!("the AWS Config recorder in {region} has no delivery channel"),
                ),
                (Some(n), _) => (true, format!("AWS Config recorder {n} records in {region}")),
            };
            vec![at.decide(
                format!("arn:aws:config:{region}:{}:recorder", account.id),
                ok,
                msg,
                json!({"config": c}),
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
    fn recording_with_a_channel_passes_otherwise_fails() {
        let mut f = facts();
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        let rec = Recorder {
            name: "default".into(),
            recording: true,
        };
        region_mut(&mut f).config = Collected::Ok(ConfigService {
            recorders: vec![rec.clone()],
            delivery_channels: 1,
        });
        assert_eq!(statuses(&CHECK, &f), vec![Pass]);
        region_mut(&mut f).config = Collected::Ok(ConfigService {
            recorders: vec![rec.clone()],
            delivery_channels: 0,
        });
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        region_mut(&mut f).config = Collected::Ok(ConfigService {
            recorders: vec![Recorder {
                recording: false,
                ..rec
            }],
            delivery_channels: 1,
        });
        assert_eq!(statuses(&CHECK, &f), vec![Fail]);
        region_mut(&mut f).config = Collected::Error("AccessDenied".into());
        assert_eq!(statuses(&CHECK, &f), vec![Error]);
    }
}
