//! `twokey posture aws` through the binary against a real moto server with
//! a seeded organisation: a management account, a log-archive account and
//! two workload accounts in OUs, scanned in two regions through the role
//! assumed in each member account. Every check has a passing and a failing
//! resource here, except where moto cannot represent one (its account
//! summary always says root has no MFA and no keys; its Backup vaults hold
//! no recovery points and a compliance lock date is always ahead): those
//! cases run on recorded facts (`--facts`), the same serde shapes the
//! collector writes (`--save-facts`).

use crate::moto;
use crate::support;
use twokey_testkit::policy::PEOPLE;

use std::process::Command;

use aws_config::SdkConfig;
use moto::Moto;
use serde_json::{json, Value};
use twokey_aws::client::Connection;

const MGMT: &str = "123456789012";
const REGIONS: &str = "us-east-1,eu-west-1";

/// The seeded organisation's member account ids.
struct Org {
    archive: String,
    workload_a: String,
    workload_b: String,
}

async fn member(moto: &Moto, account: &str) -> SdkConfig {
    Connection {
        endpoint_url: Some(moto.url()),
        region: Some("us-east-1".into()),
        assume_role_arn: Some(format!(
            "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        )),
        ..Default::default()
    }
    .load()
    .await
}

async fn seed_org(mgmt: &SdkConfig) -> Org {
    use aws_sdk_organizations::types::OrganizationFeatureSet;
    let org = aws_sdk_organizations::Client::new(mgmt);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create org");
    let root = org.list_roots().send().await.expect("roots").roots()[0]
        .id()
        .expect("root id")
        .to_string();
    let mut ids = Vec::new();
    let mut ous = Vec::new();
    for (ou, name) in [
        ("Security", "log-archive"),
        ("Workloads", "workload-a"),
        ("Workloads", "workload-b"),
    ] {
        let ou_id = match org
            .list_organizational_units_for_parent()
            .parent_id(&root)
            .send()
            .await
            .expect("ous")
            .organizational_units()
            .iter()
            .find(|o| o.name() == Some(ou))
        {
            Some(o) => o.id().expect("ou id").to_string(),
            None => org
                .create_organizational_unit()
                .parent_id(&root)
                .name(ou)
                .send()
                .await
                .expect("create ou")
                .organizational_unit()
                .and_then(|o| o.id())
                .expect("ou id")
                .to_string(),
        };
        let id = org
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .expect("create account")
            .create_account_status()
            .and_then(|s| s.account_id())
            .expect("account id")
            .to_string();
        org.move_account()
            .account_id(&id)
            .source_parent_id(&root)
            .destination_parent_id(&ou_id)
            .send()
            .await
            .expect("move");
        ids.push(id);
        ous.push(ou_id);
    }
    // SCPs: the Workloads OU denies every monitoring-disabling action (its
    // accounts pass scp.monitoring_protected); the Security OU has only
    // FullAWSAccess (the log archive fails).
    let mut actions: Vec<&str> = twokey_posture::checks::scp_monitoring::ACTIONS.to_vec();
    actions.extend(twokey_posture::checks::scp_monitoring::BUCKET_ACTIONS);
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": actions, "Resource": "*"}]});
    let policy = org
        .create_policy()
        .name("protect-monitoring")
        .description("monitoring stays on")
        .r#type(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .content(doc.to_string())
        .send()
        .await
        .expect("create SCP");
    let policy_id = policy
        .policy()
        .and_then(|p| p.policy_summary())
        .and_then(|s| s.id())
        .expect("policy id")
        .to_string();
    org.attach_policy()
        .policy_id(&policy_id)
        .target_id(&ous[1])
        .send()
        .await
        .expect("attach SCP");
    Org {
        archive: ids[0].clone(),
        workload_a: ids[1].clone(),
        workload_b: ids[2].clone(),
    }
}

async fn locked_bucket(s3: &aws_sdk_s3::Client, name: &str, mode: &str, days: i32) {
    use aws_sdk_s3::types::*;
    s3.create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create bucket");
    s3.put_object_lock_configuration()
        .bucket(name)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::from(mode))
                                .days(days)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("object lock");
}

async fn trail(config: &SdkConfig, name: &str, bucket: &str, complete: bool) {
    use aws_sdk_cloudtrail::types::{EventSelector, ReadWriteType};
    let ct = aws_sdk_cloudtrail::Client::new(config);
    ct.create_trail()
        .name(name)
        .s3_bucket_name(bucket)
        .is_multi_region_trail(complete)
        .enable_log_file_validation(complete)
        .send()
        .await
        .expect("create trail");
    ct.start_logging()
        .name(name)
        .send()
        .await
        .expect("start logging");
    let rw = if complete {
        ReadWriteType::All
    } else {
        ReadWriteType::WriteOnly
    };
    ct.put_event_selectors()
        .trail_name(name)
        .event_selectors(
            EventSelector::builder()
                .read_write_type(rw)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .expect("selectors");
}

/// Everything the scan judges; comments say which finding each line makes.
async fn seed(moto: &Moto) -> Org {
    let mgmt = moto.connection().load().await;
    let org = seed_org(&mgmt).await;
    let archive = member(moto, &org.archive).await;
    let wa = member(moto, &org.workload_a).await;

    // CloudTrail: the management account's trail is complete and writes to
    // a COMPLIANCE bucket in the log archive (pass x3); workload-a's own trail
    // is single-region, write-only, unvalidated, into a GOVERNANCE bucket in
    // workload-a itself (fail x3); the log archive and workload-b have no trail.
    locked_bucket(
        &aws_sdk_s3::Client::new(&archive),
        "org-logs",
        "COMPLIANCE",
        365,
    )
    .await;
    locked_bucket(
        &aws_sdk_s3::Client::new(&wa),
        "local-logs",
        "GOVERNANCE",
        3650,
    )
    .await;
    trail(&mgmt, "main", "org-logs", true).await;
    trail(&wa, "local", "local-logs", false).await;

    // Backup (moto has no recovery points: the scan passes --include-empty-vaults):
    // no lock (fail), governance lock (fail), compliance lock still in its
    // cooling-off time (fail).
    let backup = aws_sdk_backup::Client::new(&wa);
    for v in ["unlocked", "governance", "cooling"] {
        backup
            .create_backup_vault()
            .backup_vault_name(v)
            .send()
            .await
            .expect("vault");
    }
    backup
        .put_backup_vault_lock_configuration()
        .backup_vault_name("governance")
        .min_retention_days(35)
        .send()
        .await
        .expect("lock");
    backup
        .put_backup_vault_lock_configuration()
        .backup_vault_name("cooling")
        .min_retention_days(35)
        .changeable_for_days(3)
        .send()
        .await
        .expect("lock");

    // IAM in workload-a: a user with a key never used (workload_users and
    // unused_credentials fail) and a user whose key was just used (unused
    // passes); workload-b has no users (workload_users passes).
    let iam = aws_sdk_iam::Client::new(&wa);
    for u in ["deployer", "ci"] {
        iam.create_user().user_name(u).send().await.expect("user");
    }
    iam.create_access_key()
        .user_name("deployer")
        .send()
        .await
        .expect("key");
    let key = iam
        .create_access_key()
        .user_name("ci")
        .send()
        .await
        .expect("key");
    let key = key.access_key().expect("key");
    let ci = Connection {
        endpoint_url: Some(moto.url()),
        region: Some("us-east-1".into()),
        credentials: Some(aws_credential_types::Credentials::new(
            key.access_key_id(),
            key.secret_access_key(),
            None,
            None,
            "test",
        )),
        ..Default::default()
    }
    .load()
    .await;
    aws_sdk_sts::Client::new(&ci)
        .get_caller_identity()
        .send()
        .await
        .expect("use ci's key");

    // Escalation in the management account: `Action: "*"` (fail), read-only (pass).
    let iam = aws_sdk_iam::Client::new(&mgmt);
    for (name, doc) in [
        (
            "admin-star",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        ),
        (
            "read-only",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "iam:List*"], "Resource": "*"}]}),
        ),
    ] {
        iam.create_policy()
            .policy_name(name)
            .policy_document(doc.to_string())
            .send()
            .await
            .expect("policy");
    }

    // twokey's target roles (in the management account, where the
    // requesters are): the README's account-root trust (pass) and one naming
    // alice directly (standing trust: fail).
    for u in ["alice"] {
        iam.create_user().user_name(u).send().await.expect("user");
    }
    let trust = |p: Value| {
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": p},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Condition": {"StringLike": {"sts:SourceIdentity": "*"}}
        }]})
        .to_string()
    };
    iam.create_role()
        .role_name("prod-admin")
        .assume_role_policy_document(trust(json!(format!("arn:aws:iam::{MGMT}:root"))))
        .send()
        .await
        .expect("role");
    iam.create_role()
        .role_name("standing-admin")
        .assume_role_policy_document(trust(json!(format!("arn:aws:iam::{MGMT}:user/alice"))))
        .send()
        .await
        .expect("role");

    // Monitoring in the management account's us-east-1 only (pass there,
    // fail in every other account and region).
    let cfg = aws_sdk_config::Client::new(&mgmt);
    aws_sdk_s3::Client::new(&mgmt)
        .create_bucket()
        .bucket("config-history")
        .send()
        .await
        .expect("bucket");
    cfg.put_configuration_recorder()
        .configuration_recorder(
            aws_sdk_config::types::ConfigurationRecorder::builder()
                .name("default")
                .role_arn(format!("arn:aws:iam::{MGMT}:role/config"))
                .build(),
        )
        .send()
        .await
        .expect("recorder");
    cfg.put_delivery_channel()
        .delivery_channel(
            aws_sdk_config::types::DeliveryChannel::builder()
                .name("default")
                .s3_bucket_name("config-history")
                .build(),
        )
        .send()
        .await
        .expect("channel");
    cfg.start_configuration_recorder()
        .configuration_recorder_name("default")
        .send()
        .await
        .expect("start");
    aws_sdk_guardduty::Client::new(&mgmt)
        .create_detector()
        .enable(true)
        .send()
        .await
        .expect("detector");
    aws_sdk_securityhub::Client::new(&mgmt)
        .enable_security_hub()
        .send()
        .await
        .expect("hub");
    org
}

fn policy(moto: &Moto) -> String {
    let url = moto.url();
    let ent = |name: &str, role: &str| {
        format!(
            r#"
[[entitlement]]
name = "{name}"
provider = "aws_iam_assume"
requester_identities = ["alice"]
max_duration = "1h"
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
role_arn = "arn:aws:iam::{MGMT}:role/{role}"
principals = {{ alice = "arn:aws:iam::{MGMT}:user/alice" }}
trust = "account_root"
endpoint_url = "{url}"
"#
        )
    };
    format!(
        r#"{PEOPLE}{}{}"#,
        ent("prod-admin", "prod-admin"),
        ent("standing-admin", "standing-admin")
    )
}

/// The binary under test: `TWOKEY_BIN` when set (the shared build cache is
/// written by other builds too), else this package's.
fn bin() -> String {
    std::env::var("TWOKEY_BIN").unwrap_or_else(|_| support::BIN.to_string())
}

fn posture(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(["posture", "aws"])
        .args(args)
        .output()
        .expect("run twokey");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The status of the one finding of `check` whose account, region and
/// resource match (`None` matches any).
fn status(
    findings: &[Value],
    check: &str,
    account: &str,
    region: Option<&str>,
    resource: &str,
) -> String {
    let hits: Vec<&Value> = findings
        .iter()
        .filter(|f| f["check"] == check && f["account"] == account)
        .filter(|f| region.is_none_or(|r| f["region"] == r))
        .filter(|f| f["resource"].as_str().is_some_and(|s| s.contains(resource)))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{check} {account} {region:?} {resource}: {hits:#?}"
    );
    hits[0]["status"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_a_seeded_organisation_through_the_binary() {
    let Some(moto) = Moto::start(&[]) else { return };
    let org = seed(&moto).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(&policy_file, policy(&moto)).expect("policy");
    let saved = dir.path().join("facts.json");
    let url = moto.url();
    let base = [
        "--endpoint-url",
        url.as_str(),
        "--regions",
        REGIONS,
        "--log-archive-account",
        org.archive.as_str(),
        "--include-empty-vaults",
        "--policy",
        policy_file.to_str().expect("path"),
    ];
    let mut args = base.to_vec();
    args.extend([
        "--format",
        "json",
        "--save-facts",
        saved.to_str().expect("path"),
    ]);
    let started = std::time::Instant::now();
    let (code, out, err) = posture(&args);
    eprintln!("scan of 4 accounts x 2 regions: {:?}", started.elapsed());
    assert_eq!(code, 3, "failing checks exit 3: {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let f = v["findings"].as_array().expect("findings").clone();
    let (a, b, arch) = (
        org.workload_a.as_str(),
        org.workload_b.as_str(),
        org.archive.as_str(),
    );
    let cases: Vec<(&str, &str, Option<&str>, &str, &str)> = vec![
        ("cloudtrail.trail", MGMT, None, "account", "pass"),
        ("cloudtrail.trail", a, None, "account", "fail"),
        ("cloudtrail.trail", arch, None, "account", "fail"),
        (
            "cloudtrail.bucket_other_account",
            MGMT,
            None,
            "trail/main",
            "pass",
        ),
        (
            "cloudtrail.bucket_other_account",
            a,
            None,
            "trail/local",
            "fail",
        ),
        (
            "cloudtrail.object_lock_compliance",
            arch,
            None,
            "org-logs",
            "pass",
        ),
        (
            "cloudtrail.object_lock_compliance",
            a,
            None,
            "local-logs",
            "fail",
        ),
        (
            "backup.vault_lock_compliance",
            a,
            Some("us-east-1"),
            "unlocked",
            "fail",
        ),
        (
            "backup.vault_lock_compliance",
            a,
            Some("us-east-1"),
            "governance",
            "fail",
        ),
        (
            "backup.vault_lock_compliance",
            a,
            Some("us-east-1"),
            "cooling",
            "fail",
        ),
        ("root.no_access_keys", a, None, "root", "pass"),
        ("root.hardware_mfa", a, None, "root", "fail"),
        ("iam.workload_users", a, None, "user/deployer", "fail"),
        ("iam.workload_users", b, None, "account", "pass"),
        ("iam.unused_credentials", a, None, "user/deployer", "fail"),
        ("iam.unused_credentials", a, None, "user/ci", "pass"),
        (
            "iam.privilege_escalation",
            MGMT,
            None,
            "policy/admin-star",
            "fail",
        ),
        (
            "iam.privilege_escalation",
            MGMT,
            None,
            "policy/read-only",
            "pass",
        ),
        ("twokey.assume_trust", MGMT, None, "role/prod-admin", "pass"),
        (
            "twokey.assume_trust",
            MGMT,
            None,
            "role/standing-admin",
            "fail",
        ),
        (
            "config.recorder",
            MGMT,
            Some("us-east-1"),
            "recorder",
            "pass",
        ),
        (
            "config.recorder",
            MGMT,
            Some("eu-west-1"),
            "recorder",
            "fail",
        ),
        (
            "guardduty.enabled",
            MGMT,
            Some("us-east-1"),
            "detector",
            "pass",
        ),
        (
            "guardduty.enabled",
            b,
            Some("us-east-1"),
            "detector",
            "fail",
        ),
        (
            "securityhub.enabled",
            MGMT,
            Some("us-east-1"),
            "hub",
            "pass",
        ),
        ("securityhub.enabled", a, Some("eu-west-1"), "hub", "fail"),
        ("scp.monitoring_protected", a, None, "account", "pass"),
        ("scp.monitoring_protected", b, None, "account", "pass"),
        ("scp.monitoring_protected", arch, None, "account", "fail"),
    ];
    for (check, account, region, resource, want) in cases {
        assert_eq!(
            status(&f, check, account, region, resource),
            want,
            "{check} {account} {region:?} {resource}"
        );
    }
    // The log archive is not a workload, the management account neither.
    assert!(!f
        .iter()
        .any(|x| x["check"] == "iam.workload_users"
            && (x["account"] == arch || x["account"] == MGMT)));
    // moto answers iam:ListOrganizationsFeatures with a 500: centralized
    // root access is an error finding naming the call, never a pass (its
    // pass and fail run on recorded facts below); nothing else errs.
    let root_access: Vec<&Value> = f
        .iter()
        .filter(|x| x["check"] == "root.centralized_access")
        .collect();
    assert!(
        root_access.len() == 1
            && root_access[0]["status"] == "error"
            && root_access[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("iam:ListOrganizationsFeatures")),
        "{root_access:#?}"
    );
    assert!(
        f.iter()
            .all(|x| x["status"] != "error" || x["check"] == "root.centralized_access"),
        "{:#?}",
        f.iter()
            .filter(|x| x["status"] == "error")
            .collect::<Vec<_>>()
    );

    // The same facts, evaluated again offline, give the same findings; the
    // table names the failures; SARIF and OCSF carry them.
    let saved = saved.to_str().expect("path");
    let (_, again, _) = posture(&[
        "--facts",
        saved,
        "--format",
        "json",
        "--include-empty-vaults",
        "--log-archive-account",
        arch,
    ]);
    let again: Value = serde_json::from_str(&again).expect("json");
    assert_eq!(again["findings"], v["findings"]);
    let (_, table, _) = posture(&["--facts", saved]);
    // Shown with --nocapture (the README's example comes from here).
    eprintln!("{table}");
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("STATUS")),
        "{table}"
    );
    assert!(table.contains("GOVERNANCE mode"), "{table}");
    let (_, sarif, _) = posture(&["--facts", saved, "--format", "sarif"]);
    let sarif: Value = serde_json::from_str(&sarif).expect("sarif");
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["runs"][0]["results"].as_array().is_some_and(|r| r
        .iter()
        .any(|r| r["kind"] == "fail" && r["ruleId"] == "twokey.assume_trust")));
    let (_, ocsf, _) = posture(&["--facts", saved, "--format", "ocsf"]);
    let ocsf: Value = serde_json::from_str(&ocsf).expect("ocsf");
    assert!(ocsf.as_array().is_some_and(|o| o
        .iter()
        .all(|e| e["class_uid"] == 2003 && e["metadata"]["version"] == "1.5.0")));

    // --fail-on: only Security Hub (low) is judged; at high it does not fail the run.
    let (code, _, err) = posture(&[
        "--facts",
        saved,
        "--check",
        "securityhub.enabled",
        "--fail-on",
        "high",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = posture(&[
        "--facts",
        saved,
        "--check",
        "securityhub.enabled",
        "--fail-on",
        "low",
    ]);
    assert_eq!(code, 3);
}

/// A member account whose role cannot be assumed is an error for that
/// account only; the rest is scanned. moto assumes any role, so the scan
/// runs with auth enforced and the starting user allowed everything except
/// assuming the role in one account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_account_is_an_error_and_the_rest_is_scanned() {
    let Some(moto) = Moto::start(&[]) else { return };
    let mgmt = moto.connection().load().await;
    let org = seed_org(&mgmt).await;
    let iam = aws_sdk_iam::Client::new(&mgmt);
    iam.create_user()
        .user_name("scanner")
        .send()
        .await
        .expect("user");
    let doc = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": format!("arn:aws:iam::{}:role/*", org.workload_b)}
    ]});
    iam.put_user_policy()
        .user_name("scanner")
        .policy_name("scan")
        .policy_document(doc.to_string())
        .send()
        .await
        .expect("policy");
    let key = iam
        .create_access_key()
        .user_name("scanner")
        .send()
        .await
        .expect("key");
    let key = key.access_key().expect("key");
    // The role exists (with everything allowed) in the reachable members.
    for account in [&org.archive, &org.workload_a] {
        let iam = aws_sdk_iam::Client::new(&member(&moto, account).await);
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{MGMT}:root")}, "Action": "sts:AssumeRole"}]});
        let created = iam
            .create_role()
            .role_name("OrganizationAccountAccessRole")
            .assume_role_policy_document(trust.to_string())
            .send()
            .await;
        // moto creates it with the account, as AWS Organizations does.
        if let Err(e) = created {
            assert_eq!(
                aws_sdk_iam::error::ProvideErrorMetadata::code(&e),
                Some("EntityAlreadyExists"),
                "{e:?}"
            );
        }
        let all = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        iam.put_role_policy()
            .role_name("OrganizationAccountAccessRole")
            .policy_name("admin")
            .policy_document(all.to_string())
            .send()
            .await
            .expect("policy");
    }
    moto.enforce_auth().await;
    let url = moto.url();
    let out = Command::new(bin())
        .args([
            "posture",
            "aws",
            "--endpoint-url",
            &url,
            "--regions",
            "us-east-1",
            "--format",
            "json",
            "--check",
            "root.no_access_keys",
        ])
        .env("AWS_ACCESS_KEY_ID", key.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", key.secret_access_key())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    let f = v["findings"].as_array().expect("findings");
    let of = |a: &str| {
        f.iter().find(|x| x["account"] == a).map(|x| {
            (
                x["status"].as_str().unwrap_or("").to_string(),
                x["message"].as_str().unwrap_or("").to_string(),
            )
        })
    };
    let (s, m) = of(&org.workload_b).expect("workload-b finding");
    assert_eq!(s, "error");
    assert!(
        m.contains("could not assume") && m.contains(&org.workload_b),
        "{m}"
    );
    for a in [MGMT, org.archive.as_str(), org.workload_a.as_str()] {
        assert_eq!(of(a).map(|x| x.0), Some("pass".into()), "{a}: {f:#?}");
    }
}

/// What moto cannot show, on recorded facts: root with a hardware MFA
/// device (pass) and with access keys (fail); a Backup vault holding
/// recovery points under a compliance lock whose date has passed (pass).
#[test]
fn recorded_facts_cover_what_moto_cannot_represent() {
    let now = 1_800_000_000_000_i64;
    let region = |vaults: Value| {
        json!({"name": "eu-west-1", "trails": {"ok": []}, "backup_vaults": {"ok": vaults},
        "config": {"ok": {"recorders": [], "delivery_channels": 0}}, "guardduty": {"ok": []}, "securityhub": {"ok": null}})
    };
    let account = |id: &str, mfa: bool, keys: bool, vaults: Value| {
        json!({
            "id": id, "management": false,
            "scan": {"ok": {
                "iam": {"ok": {"summary": {"account_mfa_enabled": mfa, "account_access_keys_present": keys}, "root_virtual_mfa": false}},
                "regions": [region(vaults)],
            }},
        })
    };
    let vault = |name: &str, lock: Option<i64>| {
        json!({"arn": format!("arn:aws:backup:eu-west-1:222233334444:backup-vault:{name}"), "name": name,
        "recovery_points": 40, "locked": true, "lock_date_ms": lock, "min_retention_days": 35})
    };
    let facts = json!({
        "collected_at_ms": now,
        "accounts": [
            account("222233334444", true, false, json!([vault("locked", Some(now - 86_400_000)), vault("governance", None)])),
            account("333344445555", false, true, json!([])),
        ],
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("facts.json");
    std::fs::write(&file, facts.to_string()).expect("write");
    let (code, out, err) = posture(&["--facts", file.to_str().expect("path"), "--format", "json"]);
    assert_eq!(code, 3, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let f = v["findings"].as_array().expect("findings");
    assert_eq!(
        status(f, "root.hardware_mfa", "222233334444", None, "root"),
        "pass"
    );
    assert_eq!(
        status(f, "root.hardware_mfa", "333344445555", None, "root"),
        "fail"
    );
    assert_eq!(
        status(f, "root.no_access_keys", "222233334444", None, "root"),
        "pass"
    );
    assert_eq!(
        status(f, "root.no_access_keys", "333344445555", None, "root"),
        "fail"
    );
    assert_eq!(
        status(
            f,
            "backup.vault_lock_compliance",
            "222233334444",
            None,
            "vault:locked"
        ),
        "pass"
    );
    assert_eq!(
        status(
            f,
            "backup.vault_lock_compliance",
            "222233334444",
            None,
            "vault:governance"
        ),
        "fail"
    );
}

/// The root checks on recorded facts and a custody state in the shape the
/// twokey server answers (`twokey --json custody secrets`): centralized root
/// access read (moto cannot answer it), the management account's root under
/// custody with distinct holders, a member account without root
/// credentials, one whose root keys are under custody, one with neither,
/// and a released secret not yet sealed again.
#[test]
fn root_checks_on_recorded_facts_and_custody_state() {
    let region = json!({"name": "eu-west-1", "trails": {"ok": []}, "backup_vaults": {"ok": []},
        "config": {"ok": {"recorders": [], "delivery_channels": 0}}, "guardduty": {"ok": []}, "securityhub": {"ok": null}});
    let account = |id: &str, management: bool, keys: bool| {
        json!({"id": id, "management": management, "scan": {"ok": {
            "iam": {"ok": {"summary": {"account_mfa_enabled": management, "account_access_keys_present": keys}, "root_virtual_mfa": false}},
            "regions": [region.clone()]}}})
    };
    let facts = |features: &[&str]| {
        json!({
            "collected_at_ms": 1_800_000_000_000_i64,
            "organization": {"id": "o-aa111bb222", "management_account": MGMT},
            "root_access": {"ok": {"organization_id": "o-aa111bb222", "enabled_features": features}},
            "accounts": [account(MGMT, true, false), account("222233334444", false, false),
                         account("333344445555", false, true), account("444455556666", false, true)],
        })
    };
    let key = |s: &str| json!({"issuer": "twokey", "subject": s});
    let custodian = |s: &str| json!({"name": s, "key": key(s), "recipient": "age1"});
    let secret =
        |id: &str, account: &str, kind: &str, apart: &[&str], generation: u64, rotate: bool| {
            json!({"id": id, "account": account, "kind": kind, "threshold": 2,
            "custodians": [custodian("carol"), custodian("dave"), custodian("erin")],
            "held_apart_from": apart.iter().map(|a| key(a)).collect::<Vec<_>>(), "line": 1,
            "generation": generation, "needs_rotation": rotate, "sealed_at": 1, "released_at": null,
            "released_for": if rotate { json!("req-7") } else { Value::Null }})
        };
    let custody = json!([
        secret("root-mgmt", MGMT, "console_password", &["frank"], 1, false),
        secret("root-333", "333344445555", "password", &[], 2, true),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ff, cf) = (
        dir.path().join("facts.json"),
        dir.path().join("custody.json"),
    );
    std::fs::write(&cf, custody.to_string()).expect("write");
    let run = |features: &[&str]| {
        std::fs::write(&ff, facts(features).to_string()).expect("write");
        let (_, out, err) = posture(&[
            "--facts",
            ff.to_str().expect("path"),
            "--custody",
            cf.to_str().expect("path"),
            "--format",
            "json",
        ]);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
        v["findings"].as_array().expect("findings").clone()
    };
    let f = run(&["RootCredentialsManagement", "RootSessions"]);
    let cases = [
        (
            "root.centralized_access",
            MGMT,
            "organization/o-aa111bb222",
            "pass",
        ),
        ("root.management_custody", MGMT, "root", "pass"),
        ("root.member_credentials", "222233334444", "root", "pass"),
        ("root.member_credentials", "333344445555", "root", "pass"),
        ("root.member_credentials", "444455556666", "root", "fail"),
        (
            "custody.rotated_since_release",
            MGMT,
            "custody/root-mgmt",
            "pass",
        ),
        (
            "custody.rotated_since_release",
            "333344445555",
            "custody/root-333",
            "fail",
        ),
    ];
    for (check, account, resource, want) in cases {
        assert_eq!(
            status(&f, check, account, None, resource),
            want,
            "{check} {account}"
        );
    }
    let f = run(&["RootCredentialsManagement"]);
    assert_eq!(
        status(&f, "root.centralized_access", MGMT, None, "organization"),
        "fail"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let (code, _, err) = posture(&["--facts", "/nonexistent/facts.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read /nonexistent/facts.json"), "{err}");
    let (code, _, err) = posture(&["--facts", "/dev/null", "--check", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown check \"nope\""), "{err}");
    let (code, _, err) = posture(&["--fail-on", "severe"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown severity"), "{err}");
    let (code, _, err) = posture(&["--log-archive-account", "12", "--facts", "/dev/null"]);
    assert_eq!(code, 1);
    assert!(err.contains("12-digit"), "{err}");
}

fn scp_generate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(["scp", "generate"])
        .args(args)
        .output()
        .expect("run twokey");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The `scp.monitoring_protected` status of each member account.
fn scp_statuses(url: &str, org: &Org) -> Vec<(String, String, String)> {
    let (_, out, err) = posture(&[
        "--endpoint-url",
        url,
        "--regions",
        "us-east-1",
        "--check",
        "scp.monitoring_protected",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let findings = v["findings"].as_array().cloned().unwrap_or_default();
    [&org.archive, &org.workload_a, &org.workload_b]
        .iter()
        .map(|a| {
            let f = findings
                .iter()
                .find(|f| f["account"] == a.as_str())
                .unwrap_or_else(|| panic!("no finding for {a}: {findings:#?}"));
            (
                a.to_string(),
                f["status"].as_str().unwrap_or("").to_string(),
                f["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_guard_rails_applied_to_moto_organizations_are_in_force() {
    let Some(moto) = Moto::start(&[]) else { return };
    let mgmt = moto.connection().load().await;
    let org = seed_org(&mgmt).await;
    let archive = member(&moto, &org.archive).await;
    locked_bucket(
        &aws_sdk_s3::Client::new(&archive),
        "org-logs",
        "COMPLIANCE",
        365,
    )
    .await;
    trail(&mgmt, "main", "org-logs", true).await;
    let url = moto.url();

    // Before: the log archive (Security OU, FullAWSAccess only) is
    // unprotected; the Workloads OU's own SCP denies everything on "*".
    let before = scp_statuses(&url, &org);
    assert_eq!(before[0].1, "fail", "{before:?}");

    // A break-glass exemption for a role twokey does not gate fails, naming it.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("scp");
    let out_s = out.to_str().expect("path");
    let (code, listed, err) = scp_generate(&[
        "--log-bucket",
        "org-logs",
        "--trail",
        &format!("arn:aws:cloudtrail:us-east-1:{MGMT}:trail/main"),
        "--vault",
        &format!(
            "arn:aws:backup:us-east-1:{}:backup-vault:prod",
            org.workload_a
        ),
        "--break-glass-role",
        "arn:aws:iam::*:role/twokey-break-glass",
        "--out",
        out_s,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        listed.contains("twokey-guardrails-1.json") && listed.contains("twokey-guardrails.tf"),
        "{listed}"
    );
    let tf = std::fs::read_to_string(out.join("twokey-guardrails.tf")).expect("tf");
    assert!(
        tf.contains("resource \"aws_organizations_policy\" \"twokey_guardrails_1\""),
        "{tf}"
    );

    let org_client = aws_sdk_organizations::Client::new(&mgmt);
    let root = org_client.list_roots().send().await.expect("roots").roots()[0]
        .id()
        .expect("root id")
        .to_string();
    let attach = |dir: std::path::PathBuf, tag: &'static str| {
        let org_client = org_client.clone();
        let root = root.clone();
        async move {
            let mut ids = Vec::new();
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .expect("dir")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for f in files {
                let doc = std::fs::read_to_string(&f).expect("doc");
                assert!(doc.len() <= 5120, "{}", doc.len());
                let name = format!(
                    "{tag}-{}",
                    f.file_stem().and_then(|s| s.to_str()).unwrap_or("x")
                );
                let p = org_client
                    .create_policy()
                    .name(name)
                    .description("twokey guard rails")
                    .r#type(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
                    .content(doc)
                    .send()
                    .await
                    .expect("create SCP");
                let id = p
                    .policy()
                    .and_then(|p| p.policy_summary())
                    .and_then(|s| s.id())
                    .expect("id")
                    .to_string();
                org_client
                    .attach_policy()
                    .policy_id(&id)
                    .target_id(&root)
                    .send()
                    .await
                    .expect("attach");
                ids.push(id);
            }
            ids
        }
    };
    let exempting = attach(out.clone(), "bg").await;
    let with_exemption = scp_statuses(&url, &org);
    // The log archive has only the root's SCPs: the exemption lets an ungated
    // role switch monitoring off there.
    let (account, status, message) = &with_exemption[0];
    assert_eq!(status, "fail", "{account}: {message}");
    assert!(
        message.contains(&format!(
            "exempts arn:aws:iam::{account}:role/twokey-break-glass, not a role twokey gates"
        )),
        "{account}: {message}"
    );
    // The workloads' OU denies without exception: the root's exemption does not reach them.
    for (account, status, message) in &with_exemption[1..] {
        assert_eq!(status, "pass", "{account}: {message}");
    }
    for id in &exempting {
        org_client
            .detach_policy()
            .policy_id(id)
            .target_id(&root)
            .send()
            .await
            .expect("detach");
    }

    // Without the exemption: every member account passes.
    let plain = dir.path().join("plain");
    let (code, _, err) = scp_generate(&[
        "--log-bucket",
        "org-logs",
        "--out",
        plain.to_str().expect("path"),
    ]);
    assert_eq!(code, 0, "{err}");
    attach(plain, "plain").await;
    for (account, status, message) in scp_statuses(&url, &org) {
        assert_eq!(status, "pass", "{account}: {message}");
    }

    // Impossible limits are a clear error.
    let (code, _, err) = scp_generate(&[
        "--log-bucket",
        "org-logs",
        "--max-policies",
        "9",
        "--out",
        out_s,
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--max-policies 9 must be between 1 and 5"),
        "{err}"
    );
}
