//! The rest of the enterprise baseline (encryption, logging, identity)
//! through the binary against a real moto server: a management account and
//! one member account, two regions, each check with a passing and a failing
//! resource; the policy's `[posture]` excepts one failure and names the
//! break-glass user. What moto cannot represent is covered by the checks'
//! unit tests on facts (a bucket without any default encryption: moto, like
//! AWS since 2023, encrypts every new bucket with SSE-S3).

use crate::moto;
use crate::support;

use std::process::Command;

use aws_config::SdkConfig;
use moto::Moto;
use serde_json::{json, Value};

const MGMT: &str = "123456789012";
const REGIONS: &str = "us-east-1,eu-west-1";

fn bin() -> String {
    std::env::var("TWOKEY_BIN").unwrap_or_else(|_| support::BIN.to_string())
}

async fn regional(c: &SdkConfig, region: &str) -> SdkConfig {
    c.to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

/// Creates the organisation and one member account; the member's config.
async fn member_account(moto: &Moto, mgmt: &SdkConfig) -> (String, SdkConfig) {
    use aws_sdk_organizations::types::OrganizationFeatureSet;
    let org = aws_sdk_organizations::Client::new(mgmt);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create org");
    let id = org
        .create_account()
        .account_name("workload")
        .email("workload@example.com")
        .send()
        .await
        .expect("create account")
        .create_account_status()
        .and_then(|s| s.account_id())
        .expect("account id")
        .to_string();
    let config = twokey_aws::client::Connection {
        endpoint_url: Some(moto.url()),
        region: Some("us-east-1".into()),
        assume_role_arn: Some(format!(
            "arn:aws:iam::{id}:role/OrganizationAccountAccessRole"
        )),
        ..Default::default()
    }
    .load()
    .await;
    (id, config)
}

async fn bucket(s3: &aws_sdk_s3::Client, name: &str, kms: Option<&str>, log_to: Option<&str>) {
    use aws_sdk_s3::types::*;
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("bucket");
    // moto creates buckets without default encryption (AWS gives SSE-S3):
    // a bucket without a KMS key gets SSE-S3 as on AWS.
    let (algorithm, key) = match kms {
        Some(k) => (ServerSideEncryption::AwsKms, Some(k)),
        None => (ServerSideEncryption::Aes256, None),
    };
    {
        s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(
                                ServerSideEncryptionByDefault::builder()
                                    .sse_algorithm(algorithm)
                                    .set_kms_master_key_id(key.map(str::to_string))
                                    .build()
                                    .expect("sse"),
                            )
                            .build(),
                    )
                    .build()
                    .expect("sse config"),
            )
            .send()
            .await
            .expect("encryption");
    }
    if let Some(target) = log_to {
        // The target lets the logging service write, as S3 (and moto) require.
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": ["s3:PutObject"],
                "Resource": format!("arn:aws:s3:::{target}/*"),
            }],
        });
        s3.put_bucket_policy()
            .bucket(target)
            .policy(policy.to_string())
            .send()
            .await
            .expect("log target policy");
        s3.put_bucket_logging()
            .bucket(name)
            .bucket_logging_status(
                BucketLoggingStatus::builder()
                    .logging_enabled(
                        LoggingEnabled::builder()
                            .target_bucket(target)
                            .target_prefix(format!("{name}/"))
                            .build()
                            .expect("logging"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("logging");
    }
}

/// Everything the scan judges; the comments say which finding each makes.
async fn seed(mgmt: &SdkConfig, member: &SdkConfig) -> Value {
    let eu = regional(mgmt, "eu-west-1").await;
    // KMS (us-east-1): a rotating key (rotation pass, policy pass), a key
    // without rotation (fail) whose policy opens kms:* to everyone (fail).
    let kms = aws_sdk_kms::Client::new(mgmt);
    let good = kms.create_key().send().await.expect("key");
    let good = good
        .key_metadata()
        .expect("meta")
        .arn()
        .expect("arn")
        .to_string();
    kms.enable_key_rotation()
        .key_id(&good)
        .send()
        .await
        .expect("rotation");
    let open_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "open", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]});
    let open = kms
        .create_key()
        .policy(open_policy.to_string())
        .send()
        .await
        .expect("open key");
    let open = open
        .key_metadata()
        .expect("meta")
        .arn()
        .expect("arn")
        .to_string();

    // S3: an SSE-KMS ledger bucket with access logging (encryption pass,
    // logging pass); a second "ledger" bucket on SSE-S3 without logging
    // (encryption fail: it must be SSE-KMS; logging fail); a plain bucket (pass: SSE-S3).
    let s3 = aws_sdk_s3::Client::new(mgmt);
    bucket(&s3, "access-logs", None, None).await;
    bucket(&s3, "ledger-kms", Some(&good), Some("access-logs")).await;
    bucket(&s3, "ledger-sse-s3", None, None).await;

    // EBS encryption by default: on in us-east-1 (pass), off in eu-west-1 (fail).
    aws_sdk_ec2::Client::new(mgmt)
        .enable_ebs_encryption_by_default()
        .send()
        .await
        .expect("ebs default");

    // RDS: an encrypted instance (pass) and an unencrypted one (fail).
    let rds = aws_sdk_rds::Client::new(mgmt);
    for (id, enc) in [("db-enc", true), ("db-plain", false)] {
        rds.create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("admin_user")
            .master_user_password("Password-12345")
            .storage_encrypted(enc)
            .send()
            .await
            .expect("db instance");
    }

    // Redshift: encrypted (pass), not (fail).
    let rs = aws_sdk_redshift::Client::new(mgmt);
    for (id, enc) in [("wh-enc", true), ("wh-plain", false)] {
        rs.create_cluster()
            .cluster_identifier(id)
            .node_type("dc2.large")
            .master_username("admin")
            .master_user_password("Password12345")
            .encrypted(enc)
            .send()
            .await
            .expect("cluster");
    }

    // Backup: a vault under the customer key (pass), one without a key (not pass).
    let backup = aws_sdk_backup::Client::new(mgmt);
    backup
        .create_backup_vault()
        .backup_vault_name("cmk")
        .encryption_key_arn(&good)
        .send()
        .await
        .expect("vault");
    backup
        .create_backup_vault()
        .backup_vault_name("default-key")
        .send()
        .await
        .expect("vault");

    // SQS: KMS (pass), SQS-managed SSE explicitly off (fail). SNS: KMS (pass), plain (fail).
    let sqs = aws_sdk_sqs::Client::new(mgmt);
    use aws_sdk_sqs::types::QueueAttributeName as Q;
    sqs.create_queue()
        .queue_name("guard-events")
        .attributes(Q::KmsMasterKeyId, &good)
        .send()
        .await
        .expect("queue");
    sqs.create_queue()
        .queue_name("plain-events")
        .attributes(Q::SqsManagedSseEnabled, "false")
        .send()
        .await
        .expect("queue");
    let sns = aws_sdk_sns::Client::new(mgmt);
    sns.create_topic()
        .name("alerts")
        .attributes("KmsMasterKeyId", &good)
        .send()
        .await
        .expect("topic");
    sns.create_topic()
        .name("plain-alerts")
        .send()
        .await
        .expect("topic");

    // VPC flow logs: a VPC with one (pass); the default VPC has none (fail).
    let ec2 = aws_sdk_ec2::Client::new(mgmt);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .expect("vpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    ec2.create_flow_logs()
        .resource_type(aws_sdk_ec2::types::FlowLogsResourceType::Vpc)
        .resource_ids(&vpc)
        .traffic_type(aws_sdk_ec2::types::TrafficType::All)
        .log_destination_type(aws_sdk_ec2::types::LogDestinationType::S3)
        .log_destination("arn:aws:s3:::access-logs")
        .send()
        .await
        .expect("flow log");
    let default_vpc = ec2
        .describe_vpcs()
        .send()
        .await
        .expect("vpcs")
        .vpcs()
        .iter()
        .find(|v| v.is_default() == Some(true))
        .and_then(|v| v.vpc_id())
        .expect("default vpc")
        .to_string();

    // CloudWatch Logs: 30 days (fail; excepted by the policy), 400 days
    // (pass), 7 days in eu-west-1 (fail); the trail's group keeps forever (pass).
    let logs = aws_sdk_cloudwatchlogs::Client::new(mgmt);
    for (g, days) in [("short", Some(30)), ("long", Some(400)), ("trail", None)] {
        logs.create_log_group()
            .log_group_name(g)
            .send()
            .await
            .expect("group");
        if let Some(d) = days {
            logs.put_retention_policy()
                .log_group_name(g)
                .retention_in_days(d)
                .send()
                .await
                .expect("retention");
        }
    }
    let eu_logs = aws_sdk_cloudwatchlogs::Client::new(&eu);
    eu_logs
        .create_log_group()
        .log_group_name("eu-short")
        .send()
        .await
        .expect("group");
    eu_logs
        .put_retention_policy()
        .log_group_name("eu-short")
        .retention_in_days(7)
        .send()
        .await
        .expect("retention");

    // CloudTrail real-time delivery: "realtime" delivers to CloudWatch Logs (pass),
    // "quiet" does not (fail); in eu-west-1 "bridged" is matched by an EventBridge rule (pass).
    let ct = aws_sdk_cloudtrail::Client::new(mgmt);
    let trail_group = format!("arn:aws:logs:us-east-1:{MGMT}:log-group:trail");
    ct.create_trail()
        .name("realtime")
        .s3_bucket_name("ledger-kms")
        .kms_key_id(&good)
        .cloud_watch_logs_log_group_arn(&trail_group)
        .cloud_watch_logs_role_arn(format!("arn:aws:iam::{MGMT}:role/trail-to-logs"))
        .send()
        .await
        .expect("trail");
    ct.create_trail()
        .name("quiet")
        .s3_bucket_name("ledger-kms")
        .send()
        .await
        .expect("trail");
    aws_sdk_cloudtrail::Client::new(&eu)
        .create_trail()
        .name("bridged")
        .s3_bucket_name("ledger-kms")
        .send()
        .await
        .expect("trail");
    aws_sdk_eventbridge::Client::new(&eu)
        .put_rule()
        .name("cloudtrail-api-calls")
        .event_pattern(json!({"detail-type": ["AWS API Call via CloudTrail"]}).to_string())
        .send()
        .await
        .expect("rule");

    // Identity: the management account federates through SAML (pass), the
    // member has no IdP but moto's Identity Center instance (pass). Console
    // users: "breakglass" (named in the policy: pass), "alice" (fail).
    // Password policy: strong in the management account (pass), weak in the
    // member, which keeps a user (fail).
    let iam = aws_sdk_iam::Client::new(mgmt);
    let metadata = r#"<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>"#;
    iam.create_saml_provider()
        .name("corp-idp")
        .saml_metadata_document(metadata)
        .send()
        .await
        .expect("saml");
    for u in ["breakglass", "alice"] {
        iam.create_user().user_name(u).send().await.expect("user");
        iam.create_login_profile()
            .user_name(u)
            .password("Very-long-password-123!")
            .send()
            .await
            .expect("login profile");
    }
    iam.update_account_password_policy()
        .minimum_password_length(14)
        .require_symbols(true)
        .require_numbers(true)
        .require_uppercase_characters(true)
        .require_lowercase_characters(true)
        .password_reuse_prevention(24)
        .send()
        .await
        .expect("password policy");
    let miam = aws_sdk_iam::Client::new(member);
    miam.create_user()
        .user_name("legacy")
        .send()
        .await
        .expect("user");
    miam.update_account_password_policy()
        .minimum_password_length(8)
        .send()
        .await
        .expect("weak password policy");

    json!({"good_key": good, "open_key": open, "vpc": vpc, "default_vpc": default_vpc})
}

fn policy() -> String {
    r#"[admins]
groups = ["admins"]
approvals = 1

[[identity]]
name = "bob"
groups = ["admins"]

[[identity]]
name = "carol"
groups = ["admins"]

[posture]
break_glass_users = ["breakglass"]

[[posture.exception]]
check = "logs.retention_days"
account = "123456789012"
resource = "*:log-group:short"
reason = "scratch logs, exported nightly (CHG-42)"
"#
    .to_string()
}

fn finding<'a>(fs: &'a [Value], check: &str, account: &str, resource: &str) -> &'a Value {
    let hits: Vec<&Value> = fs
        .iter()
        .filter(|f| f["check"] == check && f["account"] == account)
        .filter(|f| {
            f["resource"]
                .as_str()
                .is_some_and(|r| r.ends_with(resource))
        })
        .collect();
    assert_eq!(hits.len(), 1, "{check} {account} {resource}: {hits:#?}");
    hits[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_baseline_check_passes_and_fails_on_moto_through_the_binary() {
    let Some(moto) = Moto::start(&[]) else { return };
    let mgmt = moto.connection().load().await;
    let (member, member_config) = member_account(&moto, &mgmt).await;
    let seeded = seed(&mgmt, &member_config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(&policy_file, policy()).expect("policy");
    let url = moto.url();
    let out = Command::new(bin())
        .args([
            "posture",
            "aws",
            "--endpoint-url",
            &url,
            "--regions",
            REGIONS,
        ])
        .args(["--policy", policy_file.to_str().expect("path")])
        .args([
            "--log-bucket",
            "ledger-kms,ledger-sse-s3",
            "--format",
            "json",
        ])
        .args([
            "--save-facts",
            dir.path().join("facts.json").to_str().expect("path"),
        ])
        .output()
        .expect("run twokey");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "failing checks exit 3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let fs = v["findings"].as_array().expect("findings").clone();
    let key = |k: &str| seeded[k].as_str().expect("seeded").to_string();
    let (good, open) = (key("good_key"), key("open_key"));
    // The trail's KMS key is collected (the log data's key, asked as high
    // risk by `iam.standing_high_risk`).
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("facts.json")).expect("saved facts"),
    )
    .expect("facts json");
    let realtime: Vec<&Value> = saved["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["scan"]["ok"]["regions"].as_array().into_iter().flatten())
        .flat_map(|r| r["trails"]["ok"].as_array().into_iter().flatten())
        .filter(|t| t["name"] == "realtime")
        .collect();
    assert_eq!(realtime.len(), 1, "{saved}");
    assert_eq!(realtime[0]["kms_key"], good.as_str(), "{}", realtime[0]);
    let (vpc, default_vpc) = (key("vpc"), key("default_vpc"));
    let m = member.as_str();
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "s3.default_encryption",
            MGMT,
            ":::ledger-kms".into(),
            "pass",
        ),
        (
            "s3.default_encryption",
            MGMT,
            ":::ledger-sse-s3".into(),
            "fail",
        ),
        (
            "s3.default_encryption",
            MGMT,
            ":::access-logs".into(),
            "pass",
        ),
        (
            "s3.log_bucket_access_logging",
            MGMT,
            ":::ledger-kms".into(),
            "pass",
        ),
        (
            "s3.log_bucket_access_logging",
            MGMT,
            ":::ledger-sse-s3".into(),
            "fail",
        ),
        (
            "ec2.ebs_encryption_by_default",
            MGMT,
            "us-east-1:123456789012:ebs-encryption-by-default".into(),
            "pass",
        ),
        (
            "ec2.ebs_encryption_by_default",
            MGMT,
            "eu-west-1:123456789012:ebs-encryption-by-default".into(),
            "fail",
        ),
        ("rds.storage_encrypted", MGMT, ":db:db-enc".into(), "pass"),
        ("rds.storage_encrypted", MGMT, ":db:db-plain".into(), "fail"),
        ("redshift.encrypted", MGMT, ":cluster:wh-enc".into(), "pass"),
        (
            "redshift.encrypted",
            MGMT,
            ":cluster:wh-plain".into(),
            "fail",
        ),
        (
            "backup.vault_customer_key",
            MGMT,
            ":backup-vault:cmk".into(),
            "pass",
        ),
        ("kms.rotation_enabled", MGMT, good.clone(), "pass"),
        ("kms.rotation_enabled", MGMT, open.clone(), "fail"),
        ("kms.policy_not_open", MGMT, good.clone(), "pass"),
        ("kms.policy_not_open", MGMT, open.clone(), "fail"),
        ("sqs.encrypted", MGMT, ":guard-events".into(), "pass"),
        ("sqs.encrypted", MGMT, ":plain-events".into(), "fail"),
        ("sns.encrypted", MGMT, ":alerts".into(), "pass"),
        ("sns.encrypted", MGMT, ":plain-alerts".into(), "fail"),
        ("vpc.flow_logs", MGMT, format!("vpc/{vpc}"), "pass"),
        (
            "cloudtrail.realtime_delivery",
            MGMT,
            ":trail/realtime".into(),
            "pass",
        ),
        (
            "cloudtrail.realtime_delivery",
            MGMT,
            ":trail/quiet".into(),
            "fail",
        ),
        (
            "cloudtrail.realtime_delivery",
            MGMT,
            ":trail/bridged".into(),
            "pass",
        ),
        (
            "logs.retention_days",
            MGMT,
            ":log-group:long".into(),
            "pass",
        ),
        (
            "logs.retention_days",
            MGMT,
            ":log-group:trail".into(),
            "pass",
        ),
        (
            "logs.retention_days",
            MGMT,
            ":log-group:eu-short".into(),
            "fail",
        ),
        (
            "logs.retention_days",
            MGMT,
            ":log-group:short".into(),
            "excepted",
        ),
        ("identity.federation", MGMT, ":root".into(), "pass"),
        // moto always answers one Identity Center instance in the management
        // account, which serves the member too; the failing case (no instance,
        // no IdP) is the check's unit test.
        ("identity.federation", m, ":root".into(), "pass"),
        (
            "iam.console_users_break_glass",
            MGMT,
            "user/breakglass".into(),
            "pass",
        ),
        (
            "iam.console_users_break_glass",
            MGMT,
            "user/alice".into(),
            "fail",
        ),
        (
            "iam.password_policy",
            MGMT,
            ":account-password-policy".into(),
            "pass",
        ),
        (
            "iam.password_policy",
            m,
            ":account-password-policy".into(),
            "fail",
        ),
    ];
    let mut wrong = Vec::new();
    for (check, account, resource, want) in &cases {
        let f = finding(&fs, check, account, resource);
        if f["status"] != *want {
            wrong.push(format!(
                "{check} {account} {resource}: {} ({})",
                f["status"], f["message"]
            ));
        }
    }
    // The default VPC (one per region) has no flow log.
    let default_vpc_findings: Vec<&Value> = fs
        .iter()
        .filter(|f| {
            f["check"] == "vpc.flow_logs"
                && f["resource"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&default_vpc))
        })
        .collect();
    assert!(
        !default_vpc_findings.is_empty()
            && default_vpc_findings.iter().all(|f| f["status"] == "fail"),
        "{default_vpc_findings:#?}"
    );
    // A vault without a customer key is never a pass.
    let vault = finding(
        &fs,
        "backup.vault_customer_key",
        MGMT,
        ":backup-vault:default-key",
    );
    if vault["status"] == "pass" {
        wrong.push(format!("default-key vault passed: {}", vault["message"]));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The exception's reason is shown with the finding.
    let excepted = finding(&fs, "logs.retention_days", MGMT, ":log-group:short");
    assert!(
        excepted["message"]
            .as_str()
            .is_some_and(|m| m.contains("CHG-42")),
        "{excepted}"
    );
    assert_eq!(v["summary"]["excepted"], 1, "{}", v["summary"]);
}

#[test]
fn a_posture_section_naming_an_unknown_check_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(
        &policy_file,
        policy().replace("logs.retention_days", "logs.retension_days"),
    )
    .expect("policy");
    let facts = dir.path().join("facts.json");
    std::fs::write(&facts, r#"{"collected_at_ms": 0}"#).expect("facts");
    let out = Command::new(bin())
        .args(["posture", "aws", "--facts", facts.to_str().expect("path")])
        .args(["--policy", policy_file.to_str().expect("path")])
        .output()
        .expect("run twokey");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("unknown check \"logs.retension_days\"") && err.contains("line"),
        "{err}"
    );
}
