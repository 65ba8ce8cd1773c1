//! One region of one account: CloudTrail, AWS Backup, AWS Config,
//! GuardDuty, Security Hub. Each service's facts are collected on their own,
//! so one denied service leaves the others.

use aws_config::SdkConfig;

use super::{code, failed, ms};
use crate::facts::{Collected, ConfigService, Detector, Recorder, Region, Trail, Vault};

/// Everything collected in `region` of `account`.
pub(super) async fn scan(config: &SdkConfig, account: &str, region: &str) -> Region {
    let at = format!("{account} {region}");
    let (trails, backup_vaults, config_service, guardduty, securityhub, baseline) = tokio::join!(
        trails(config, account, &at),
        vaults(config, &at),
        config_service(config, &at),
        detectors(config, &at),
        hub(config, &at),
        super::baseline::region(config, account, region),
    );
    Region {
        name: region.to_string(),
        trails: trails.into(),
        backup_vaults: backup_vaults.into(),
        config: config_service.into(),
        guardduty: guardduty.into(),
        securityhub: securityhub.into(),
        baseline: Some(baseline),
    }
}

impl<T> From<Result<T, String>> for Collected<T> {
    fn from(r: Result<T, String>) -> Self {
        match r {
            Ok(v) => Self::Ok(v),
            Err(e) => Self::Error(e),
        }
    }
}

/// Trails whose home is this region and this account (an organisation
/// trail shows in member accounts too; it is read in the management account).
async fn trails(config: &SdkConfig, account: &str, at: &str) -> Result<Vec<Trail>, String> {
    let ct = aws_sdk_cloudtrail::Client::new(config);
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let out = ct
        .describe_trails()
        .include_shadow_trails(false)
        .send()
        .await
        .map_err(|e| failed("cloudtrail:DescribeTrails", at, e))?;
    let mut v = Vec::new();
    for t in out.trail_list() {
        let arn = t.trail_arn().unwrap_or_default();
        let home = t.home_region().unwrap_or(&region);
        if home != region || !arn.contains(&format!(":{account}:")) {
            continue;
        }
        let status = ct
            .get_trail_status()
            .name(arn)
            .send()
            .await
            .map_err(|e| failed("cloudtrail:GetTrailStatus", arn, e))?;
        let selectors = ct
            .get_event_selectors()
            .trail_name(arn)
            .send()
            .await
            .map_err(|e| failed("cloudtrail:GetEventSelectors", arn, e))?;
        let (read, write) = management_events(&selectors);
        v.push(Trail {
            arn: arn.to_string(),
            name: t.name().unwrap_or_default().to_string(),
            home_region: home.to_string(),
            multi_region: t.is_multi_region_trail().unwrap_or(false),
            organization: t.is_organization_trail().unwrap_or(false),
            logging: status.is_logging().unwrap_or(false),
            log_file_validation: t.log_file_validation_enabled().unwrap_or(false),
            bucket: t.s3_bucket_name().unwrap_or_default().to_string(),
            management_read: read,
            management_write: write,
            kms_key: t.kms_key_id().map(str::to_string),
        });
    }
    Ok(v)
}

/// Whether read and write management events are recorded: basic selectors
/// (`IncludeManagementEvents` with `ReadWriteType`), or advanced selectors
/// (`eventCategory = Management`, `readOnly` unset for both, or one value).
fn management_events(
    s: &aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput,
) -> (bool, bool) {
    let (mut read, mut write) = (false, false);
    for e in s.event_selectors() {
        if e.include_management_events() != Some(true) {
            continue;
        }
        match e.read_write_type().map(|t| t.as_str()) {
            Some("ReadOnly") => read = true,
            Some("WriteOnly") => write = true,
            _ => (read, write) = (true, true),
        }
    }
    for a in s.advanced_event_selectors() {
        let fields = a.field_selectors();
        let management = fields
            .iter()
            .any(|f| f.field() == "eventCategory" && f.equals().iter().any(|v| v == "Management"));
        if !management {
            continue;
        }
        match fields
            .iter()
            .find(|f| f.field() == "readOnly")
            .map(|f| f.equals())
        {
            Some([v]) if v == "true" => read = true,
            Some([v]) if v == "false" => write = true,
            _ => (read, write) = (true, true),
        }
    }
    (read, write)
}

async fn vaults(config: &SdkConfig, at: &str) -> Result<Vec<Vault>, String> {
    let pages = aws_sdk_backup::Client::new(config)
        .list_backup_vaults()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("backup:ListBackupVaults", at, e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.backup_vault_list())
        .map(|v| Vault {
            arn: v.backup_vault_arn().unwrap_or_default().to_string(),
            name: v.backup_vault_name().unwrap_or_default().to_string(),
            recovery_points: v.number_of_recovery_points(),
            locked: v.locked().unwrap_or(false),
            lock_date_ms: ms(v.lock_date()),
            min_retention_days: v.min_retention_days(),
        })
        .collect())
}

async fn config_service(config: &SdkConfig, at: &str) -> Result<ConfigService, String> {
    let c = aws_sdk_config::Client::new(config);
    let status = c
        .describe_configuration_recorder_status()
        .send()
        .await
        .map_err(|e| failed("config:DescribeConfigurationRecorderStatus", at, e))?;
    let channels = c
        .describe_delivery_channels()
        .send()
        .await
        .map_err(|e| failed("config:DescribeDeliveryChannels", at, e))?;
    Ok(ConfigService {
        recorders: status
            .configuration_recorders_status()
            .iter()
            .map(|s| Recorder {
                name: s.name().unwrap_or_default().to_string(),
                recording: s.recording(),
            })
            .collect(),
        delivery_channels: channels.delivery_channels().len(),
    })
}

async fn detectors(config: &SdkConfig, at: &str) -> Result<Vec<Detector>, String> {
    let gd = aws_sdk_guardduty::Client::new(config);
    let ids = gd
        .list_detectors()
        .send()
        .await
        .map_err(|e| failed("guardduty:ListDetectors", at, e))?;
    let mut v = Vec::new();
    for id in ids.detector_ids() {
        let d = gd
            .get_detector()
            .detector_id(id)
            .send()
            .await
            .map_err(|e| failed("guardduty:GetDetector", id, e))?;
        v.push(Detector {
            id: id.clone(),
            enabled: d.status().map(|s| s.as_str()) == Some("ENABLED"),
        });
    }
    Ok(v)
}

/// The hub ARN, or `None` when Security Hub is not enabled (AWS answers
/// `InvalidAccessException` then).
async fn hub(config: &SdkConfig, at: &str) -> Result<Option<String>, String> {
    match aws_sdk_securityhub::Client::new(config)
        .describe_hub()
        .send()
        .await
    {
        Ok(h) => Ok(Some(h.hub_arn().unwrap_or_default().to_string())),
        Err(e)
            if matches!(
                code(&e),
                Some("InvalidAccessException" | "ResourceNotFoundException")
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(failed("securityhub:DescribeHub", at, e)),
    }
}

#[cfg(test)]
mod tests {
    //! Event selectors in the shapes AWS sends, built with the SDK's models
    //! (moto stores advanced selectors but the scan test uses basic ones).

    use super::*;
    use aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput;
    use aws_sdk_cloudtrail::types::{
        AdvancedEventSelector, AdvancedFieldSelector, EventSelector, ReadWriteType,
    };

    fn basic(rw: ReadWriteType, management: bool) -> GetEventSelectorsOutput {
        GetEventSelectorsOutput::builder()
            .event_selectors(
                EventSelector::builder()
                    .read_write_type(rw)
                    .include_management_events(management)
                    .build(),
            )
            .build()
    }

    fn field(name: &str, value: &str) -> AdvancedFieldSelector {
        AdvancedFieldSelector::builder()
            .field(name)
            .equals(value)
            .build()
            .expect("field")
    }

    fn advanced(fields: Vec<AdvancedFieldSelector>) -> GetEventSelectorsOutput {
        let mut s = AdvancedEventSelector::builder().name("management");
        for f in fields {
            s = s.field_selectors(f);
        }
        GetEventSelectorsOutput::builder()
            .advanced_event_selectors(s.build().expect("selector"))
            .build()
    }

    #[test]
    fn basic_selectors() {
        assert_eq!(
            management_events(&basic(ReadWriteType::All, true)),
            (true, true)
        );
        assert_eq!(
            management_events(&basic(ReadWriteType::WriteOnly, true)),
            (false, true)
        );
        assert_eq!(
            management_events(&basic(ReadWriteType::ReadOnly, true)),
            (true, false)
        );
        assert_eq!(
            management_events(&basic(ReadWriteType::All, false)),
            (false, false)
        );
        assert_eq!(
            management_events(&GetEventSelectorsOutput::builder().build()),
            (false, false)
        );
    }

    #[test]
    fn advanced_selectors() {
        let m = || field("eventCategory", "Management");
        assert_eq!(management_events(&advanced(vec![m()])), (true, true));
        assert_eq!(
            management_events(&advanced(vec![m(), field("readOnly", "false")])),
            (false, true)
        );
        assert_eq!(
            management_events(&advanced(vec![m(), field("readOnly", "true")])),
            (true, false)
        );
        assert_eq!(
            management_events(&advanced(vec![field("eventCategory", "Data")])),
            (false, false)
        );
    }
}
