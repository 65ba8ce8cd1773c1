//! The baseline facts beyond the guard rails: bucket encryption and access
//! logging, identity providers and the password policy (account-wide), and
//! per region EBS default encryption, RDS, Redshift, KMS keys, Backup vault
//! keys, SNS and SQS encryption, VPC flow logs, log retention, CloudTrail's
//! real-time delivery and Identity Center. Each service on its own, so one
//! denied service leaves the others.

use aws_config::{Region, SdkConfig};

use super::{code, failed};
use crate::facts::baseline::{
    AccountBaseline, BucketSettings, Database, Encrypted, KmsKey, LogGroup, PasswordPolicy,
    RegionBaseline, VaultKey, Vpc, Warehouse,
};

/// The account-wide part; `buckets` are the names `ListBuckets` gave.
pub(super) async fn account(
    config: &SdkConfig,
    account: &str,
    buckets: &[String],
) -> AccountBaseline {
    let at = format!("account {account}");
    let iam = aws_sdk_iam::Client::new(config);
    let (buckets, identity_providers, password_policy) = tokio::join!(
        bucket_settings(config, buckets),
        identity_providers(&iam, &at),
        password_policy(&iam, &at),
    );
    AccountBaseline {
        buckets: buckets.into(),
        identity_providers: identity_providers.into(),
        password_policy: password_policy.into(),
    }
}

async fn bucket_settings(
    config: &SdkConfig,
    names: &[String],
) -> Result<Vec<BucketSettings>, String> {
    let s3 = aws_sdk_s3::Client::new(config);
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        // A bucket answers only in its own region.
        let location = s3
            .get_bucket_location()
            .bucket(name)
            .send()
            .await
            .map_err(|e| failed("s3:GetBucketLocation", name, e))?;
        let region = match location.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(r) => r.to_string(),
        };
        let client =
            aws_sdk_s3::Client::new(&config.to_builder().region(Region::new(region)).build());
        let (encryption, kms_key) = match client.get_bucket_encryption().bucket(name).send().await {
            Ok(o) => {
                let rule = o
                    .server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default());
                (
                    rule.map(|r| r.sse_algorithm().as_str().to_string()),
                    rule.and_then(|r| r.kms_master_key_id()).map(str::to_string),
                )
            }
            Err(e) if code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => {
                (None, None)
            }
            Err(e) => return Err(failed("s3:GetBucketEncryption", name, e)),
        };
        let logging_target = client
            .get_bucket_logging()
            .bucket(name)
            .send()
            .await
            .map_err(|e| failed("s3:GetBucketLogging", name, e))?
            .logging_enabled()
            .map(|l| l.target_bucket().to_string());
        out.push(BucketSettings {
            name: name.clone(),
            encryption,
            kms_key,
            logging_target,
        });
    }
    Ok(out)
}

async fn identity_providers(iam: &aws_sdk_iam::Client, at: &str) -> Result<Vec<String>, String> {
    let saml = iam
        .list_saml_providers()
        .send()
        .await
        .map_err(|e| failed("iam:ListSAMLProviders", at, e))?;
    let oidc = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .map_err(|e| failed("iam:ListOpenIDConnectProviders", at, e))?;
    Ok(saml
        .saml_provider_list()
        .iter()
        .filter_map(|p| p.arn().map(str::to_string))
        .chain(
            oidc.open_id_connect_provider_list()
                .iter()
                .filter_map(|p| p.arn().map(str::to_string)),
        )
        .collect())
}

async fn password_policy(
    iam: &aws_sdk_iam::Client,
    at: &str,
) -> Result<Option<PasswordPolicy>, String> {
    match iam.get_account_password_policy().send().await {
        Ok(o) => Ok(o.password_policy().map(|p| PasswordPolicy {
            minimum_length: p.minimum_password_length().unwrap_or(0),
            require_symbols: p.require_symbols(),
            require_numbers: p.require_numbers(),
            require_uppercase: p.require_uppercase_characters(),
            require_lowercase: p.require_lowercase_characters(),
            reuse_prevention: p.password_reuse_prevention(),
            max_age_days: p.max_password_age(),
        })),
        Err(e) if code(&e) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(failed("iam:GetAccountPasswordPolicy", at, e)),
    }
}

/// The regional part.
pub(super) async fn region(config: &SdkConfig, account: &str, region: &str) -> RegionBaseline {
    let at = format!("{account} {region}");
    let ec2 = aws_sdk_ec2::Client::new(config);
    let (ebs, databases, redshift, kms_keys, vault_keys, topics, queues) = tokio::join!(
        ebs_default(&ec2, &at),
        databases(config, &at),
        warehouses(config, &at),
        kms_keys(config, &at),
        vault_keys(config, &at),
        topics(config, &at),
        queues(config, &at),
    );
    let (vpcs, security_groups, log_groups, trail_log_groups, cloudtrail_rules, identity_center) = tokio::join!(
        vpcs(&ec2, &at),
        security_groups(&ec2, &at),
        log_groups(config, &at),
        trail_log_groups(config, account, region, &at),
        cloudtrail_rules(config, &at),
        identity_center(config, &at),
    );
    RegionBaseline {
        ebs_encryption_by_default: ebs.into(),
        databases: databases.into(),
        redshift: redshift.into(),
        kms_keys: kms_keys.into(),
        vault_keys: vault_keys.into(),
        topics: topics.into(),
        queues: queues.into(),
        vpcs: vpcs.into(),
        security_groups: security_groups.into(),
        log_groups: log_groups.into(),
        trail_log_groups: trail_log_groups.into(),
        cloudtrail_rules: cloudtrail_rules.into(),
        identity_center: identity_center.into(),
    }
}

async fn ebs_default(ec2: &aws_sdk_ec2::Client, at: &str) -> Result<bool, String> {
    Ok(ec2
        .get_ebs_encryption_by_default()
        .send()
        .await
        .map_err(|e| failed("ec2:GetEbsEncryptionByDefault", at, e))?
        .ebs_encryption_by_default()
        .unwrap_or(false))
}

async fn databases(config: &SdkConfig, at: &str) -> Result<Vec<Database>, String> {
    let rds = aws_sdk_rds::Client::new(config);
    let instances = rds
        .describe_db_instances()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("rds:DescribeDBInstances", at, e))?;
    let clusters = rds
        .describe_db_clusters()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("rds:DescribeDBClusters", at, e))?;
    let mut out: Vec<Database> = instances
        .iter()
        // An Aurora member instance's storage is its cluster's.
        .filter(|i| i.db_cluster_identifier().is_none())
        .map(|i| Database {
            arn: i.db_instance_arn().unwrap_or_default().to_string(),
            encrypted: i.storage_encrypted().unwrap_or(false),
            kms_key: i.kms_key_id().map(str::to_string),
            cluster: false,
        })
        .collect();
    out.extend(clusters.iter().map(|c| Database {
        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
        encrypted: c.storage_encrypted().unwrap_or(false),
        kms_key: c.kms_key_id().map(str::to_string),
        cluster: true,
    }));
    Ok(out)
}

async fn warehouses(config: &SdkConfig, at: &str) -> Result<Vec<Warehouse>, String> {
    let clusters = aws_sdk_redshift::Client::new(config)
        .describe_clusters()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("redshift:DescribeClusters", at, e))?;
    Ok(clusters
        .iter()
        .map(|c| Warehouse {
            id: c.cluster_identifier().unwrap_or_default().to_string(),
            encrypted: c.encrypted().unwrap_or(false),
            kms_key: c.kms_key_id().map(str::to_string),
        })
        .collect())
}

async fn kms_keys(config: &SdkConfig, at: &str) -> Result<Vec<KmsKey>, String> {
    use aws_sdk_kms::types::{KeyManagerType, KeySpec, KeyState};
    let kms = aws_sdk_kms::Client::new(config);
    let keys = kms
        .list_keys()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("kms:ListKeys", at, e))?;
    let mut out = Vec::new();
    for k in keys {
        let Some(id) = k.key_id() else { continue };
        let meta = kms
            .describe_key()
            .key_id(id)
            .send()
            .await
            .map_err(|e| failed("kms:DescribeKey", id, e))?;
        let Some(meta) = meta.key_metadata() else {
            continue;
        };
        if meta.key_manager() != Some(&KeyManagerType::Customer) {
            continue;
        }
        let arn = meta.arn().unwrap_or(id).to_string();
        let enabled = meta.key_state() == Some(&KeyState::Enabled);
        let symmetric = meta
            .key_spec()
            .is_none_or(|s| *s == KeySpec::SymmetricDefault);
        let rotation = if enabled && symmetric {
            kms.get_key_rotation_status()
                .key_id(id)
                .send()
                .await
                .map_err(|e| failed("kms:GetKeyRotationStatus", &arn, e))?
                .key_rotation_enabled()
        } else {
            false
        };
        let policy = kms
            .get_key_policy()
            .key_id(id)
            .policy_name("default")
            .send()
            .await
            .map_err(|e| failed("kms:GetKeyPolicy", &arn, e))?
            .policy()
            .map(|p| {
                serde_json::from_str(p)
                    .map_err(|e| format!("kms:GetKeyPolicy on {arn}: not JSON: {e}"))
            })
            .transpose()?
            .unwrap_or(serde_json::Value::Null);
        out.push(KmsKey {
            arn,
            enabled,
            symmetric,
            rotation,
            policy,
        });
    }
    Ok(out)
}

async fn vault_keys(config: &SdkConfig, at: &str) -> Result<Vec<VaultKey>, String> {
    let vaults = aws_sdk_backup::Client::new(config)
        .list_backup_vaults()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("backup:ListBackupVaults", at, e))?;
    let kms = aws_sdk_kms::Client::new(config);
    let mut out = Vec::new();
    for v in vaults {
        let key_arn = v.encryption_key_arn().map(str::to_string);
        let customer_managed = match &key_arn {
            Some(k) => kms
                .describe_key()
                .key_id(k)
                .send()
                .await
                .ok()
                .and_then(|o| o.key_metadata().and_then(|m| m.key_manager().cloned()))
                .map(|m| m == aws_sdk_kms::types::KeyManagerType::Customer),
            None => None,
        };
        out.push(VaultKey {
            vault: v.backup_vault_arn().unwrap_or_default().to_string(),
            key_arn,
            customer_managed,
        });
    }
    Ok(out)
}

async fn topics(config: &SdkConfig, at: &str) -> Result<Vec<Encrypted>, String> {
    let sns = aws_sdk_sns::Client::new(config);
    let topics = sns
        .list_topics()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("sns:ListTopics", at, e))?;
    let mut out = Vec::new();
    for t in topics {
        let Some(arn) = t.topic_arn() else { continue };
        let attrs = sns
            .get_topic_attributes()
            .topic_arn(arn)
            .send()
            .await
            .map_err(|e| failed("sns:GetTopicAttributes", arn, e))?;
        let kms_key = attrs
            .attributes()
            .and_then(|a| a.get("KmsMasterKeyId"))
            .filter(|k| !k.is_empty())
            .cloned();
        out.push(Encrypted {
            arn: arn.to_string(),
            kms_key,
            managed_sse: false,
        });
    }
    Ok(out)
}

async fn queues(config: &SdkConfig, at: &str) -> Result<Vec<Encrypted>, String> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(config);
    let urls = sqs
        .list_queues()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("sqs:ListQueues", at, e))?;
    let mut out = Vec::new();
    for url in urls {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| failed("sqs:GetQueueAttributes", &url, e))?;
        let get = |n: QueueAttributeName| attrs.attributes().and_then(|a| a.get(&n)).cloned();
        out.push(Encrypted {
            arn: get(QueueAttributeName::QueueArn).unwrap_or(url.clone()),
            kms_key: get(QueueAttributeName::KmsMasterKeyId).filter(|k| !k.is_empty()),
            managed_sse: get(QueueAttributeName::SqsManagedSseEnabled).as_deref() == Some("true"),
        });
    }
    Ok(out)
}

async fn vpcs(ec2: &aws_sdk_ec2::Client, at: &str) -> Result<Vec<Vpc>, String> {
    let vpcs = ec2
        .describe_vpcs()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("ec2:DescribeVpcs", at, e))?;
    let logs = ec2
        .describe_flow_logs()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("ec2:DescribeFlowLogs", at, e))?;
    Ok(vpcs
        .iter()
        .filter_map(|v| v.vpc_id())
        .map(|id| Vpc {
            id: id.to_string(),
            flow_logs: logs
                .iter()
                .filter(|l| l.resource_id() == Some(id) && l.flow_log_status() == Some("ACTIVE"))
                .filter_map(|l| l.flow_log_id().map(str::to_string))
                .collect(),
        })
        .collect())
}

async fn security_groups(
    ec2: &aws_sdk_ec2::Client,
    at: &str,
) -> Result<Vec<(String, String)>, String> {
    let groups = ec2
        .describe_security_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("ec2:DescribeSecurityGroups", at, e))?;
    Ok(groups
        .iter()
        .filter_map(|g| Some((g.group_id()?.to_string(), g.vpc_id()?.to_string())))
        .collect())
}

async fn log_groups(config: &SdkConfig, at: &str) -> Result<Vec<LogGroup>, String> {
    let groups = aws_sdk_cloudwatchlogs::Client::new(config)
        .describe_log_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| failed("logs:DescribeLogGroups", at, e))?;
    Ok(groups
        .iter()
        .map(|g| LogGroup {
            arn: g
                .arn()
                .map(|a| a.trim_end_matches(":*").to_string())
                .or_else(|| g.log_group_name().map(str::to_string))
                .unwrap_or_default(),
            retention_days: g.retention_in_days(),
        })
        .collect())
}

async fn trail_log_groups(
    config: &SdkConfig,
    account: &str,
    region: &str,
    at: &str,
) -> Result<Vec<(String, String)>, String> {
    let out = aws_sdk_cloudtrail::Client::new(config)
        .describe_trails()
        .include_shadow_trails(false)
        .send()
        .await
        .map_err(|e| failed("cloudtrail:DescribeTrails", at, e))?;
    Ok(out
        .trail_list()
        .iter()
        .filter(|t| t.home_region() == Some(region))
        .filter(|t| {
            t.trail_arn()
                .is_some_and(|a| a.contains(&format!(":{account}:")))
        })
        .filter_map(|t| {
            Some((
                t.trail_arn()?.to_string(),
                t.cloud_watch_logs_log_group_arn()?.to_string(),
            ))
        })
        .collect())
}

/// Rules on the default event bus whose pattern matches CloudTrail-recorded API calls.
async fn cloudtrail_rules(config: &SdkConfig, at: &str) -> Result<Vec<String>, String> {
    let events = aws_sdk_eventbridge::Client::new(config);
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = events
            .list_rules()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| failed("events:ListRules", at, e))?;
        for r in page.rules() {
            let enabled = r.state().is_none_or(|s| s.as_str() == "ENABLED");
            let matches = r
                .event_pattern()
                .is_some_and(|p| p.contains("AWS API Call via CloudTrail"));
            if enabled && matches {
                out.push(r.arn().or(r.name()).unwrap_or_default().to_string());
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

async fn identity_center(config: &SdkConfig, at: &str) -> Result<Vec<String>, String> {
    let out = aws_sdk_ssoadmin::Client::new(config)
        .list_instances()
        .send()
        .await
        .map_err(|e| failed("sso:ListInstances", at, e))?;
    Ok(out
        .instances()
        .iter()
        .filter_map(|i| i.instance_arn().map(str::to_string))
        .collect())
}
