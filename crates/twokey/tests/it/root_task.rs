//! `aws_root_task` end to end through the binary: `twokey serve --config`
//! with two root-task entitlements, driven by the CLI (alice requests, alice
//! cannot approve her own root task, bob approves), against the local STS
//! stand-in for `AssumeRoot` (moto answers 500 for it) and a real moto for
//! the S3 calls made with the root session. Also `twokey policy check`
//! refusing a root task grant longer than 900 s.

use crate::moto;
use crate::support;
use twokey_testkit::policy::PEOPLE;

use std::process::{Command, Output};
use std::time::Duration;

use moto::sts_root::StsRoot;
use moto::Moto;
use serde_json::Value;
use support::{wait_until, Server, TestEnv, BIN};

const MEMBER: &str = "222233334444";
const REGION: &str = "eu-west-1";
const BUCKET: &str = "payments-logs";

async fn member_s3(moto: &Moto) -> aws_sdk_s3::Client {
    let sdk = twokey_aws::client::Connection {
        endpoint_url: Some(moto.url()),
        region: Some(REGION.into()),
        assume_role_arn: Some(format!(
            "arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole"
        )),
        ..Default::default()
    }
    .load()
    .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

fn policy(moto: &Moto, sts: &StsRoot, max: &str) -> String {
    format!(
        r#"{PEOPLE}
[[entitlement]]
name = "unlock-logs"
description = "Delete the bucket policy that locked everyone out of payments-logs"
provider = "aws_root_task"
requester_identities = ["alice"]
default_duration = "10m"
max_duration = "{max}"
reason_required = false
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
accounts = ["{MEMBER}"]
task = "S3UnlockBucketPolicy"
action = "perform"
bucket = "{BUCKET}"
region = "{REGION}"
endpoint_url = "{moto}"
sts_endpoint_url = "{sts}"

[[entitlement]]
name = "audit-root"
description = "A root session to review the member account's root credentials"
provider = "aws_root_task"
requester_identities = ["alice"]
default_duration = "5m"
max_duration = "15m"
reason_required = false
approval = {{ count = 1, from = ["approvers"] }}
[entitlement.target]
accounts = ["{MEMBER}"]
task = "IAMAuditRootUserCredentials"
region = "{REGION}"
endpoint_url = "{moto}"
sts_endpoint_url = "{sts}"
"#,
        moto = moto.url(),
        sts = sts.url
    )
}

struct Running {
    _env: TestEnv,
    server: Server,
    alice: String,
    bob: String,
}

fn start(policy_text: &str) -> Running {
    let env = TestEnv::new(None);
    std::fs::write(env.path().join("policy.toml"), policy_text).expect("policy");
    let server = Server::start(&env, "root-task", &["--backoff-ms", "200"]);
    let (alice, bob) = (env.token("alice"), env.token("bob"));
    Running {
        _env: env,
        server,
        alice,
        bob,
    }
}

fn cli(r: &Running, token: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("TWOKEY_SERVER", &r.server.url)
        .env("TWOKEY_TOKEN", token)
        .env("NO_COLOR", "1")
        .output()
        .expect("run twokey")
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// alice requests; alice cannot approve it; bob does. The request id.
fn request_and_approve(r: &Running, ent: &str, duration: &str) -> String {
    let out = ok(
        &cli(
            r,
            &r.alice,
            &[
                "--json", "request", ent, "--for", duration, "--reason", "INC-9",
            ],
        ),
        "twokey request",
    );
    let v: Value = serde_json::from_str(&out).expect("json");
    let id = v["id"].as_str().expect("id").to_string();
    let own = cli(r, &r.alice, &["approve", &id]);
    assert!(!own.status.success(), "alice approved her own root task");
    assert_eq!(
        show(r, &id)["state"],
        "pending",
        "a refused self-approval changed nothing"
    );
    ok(
        &cli(r, &r.bob, &["approve", &id, "--comment", "ok"]),
        "twokey approve",
    );
    id
}

fn show(r: &Running, id: &str) -> Value {
    serde_json::from_str(&ok(&cli(r, &r.alice, &["--json", "show", id]), "show")).expect("json")
}

async fn wait_active(r: &Running, id: &str) -> Value {
    wait_until(&format!("{id} active"), Duration::from_secs(40), || async {
        let v = show(r, id);
        if v["state"] == "active" {
            Ok(v)
        } else {
            Err(format!(
                "state {} (last error {})",
                v["state"], v["last_error"]
            ))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_root_task_unlocks_the_bucket_and_hands_out_a_session_once() {
    let Some(moto) = Moto::start(&[]) else { return };
    let sts = StsRoot::start(REGION, &moto.url(), &[("AKIDTESTING", "testing")]).await;
    let s3 = member_s3(&moto).await;
    s3.create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("bucket");
    s3.put_bucket_policy()
        .bucket(BUCKET)
        .policy(format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::{BUCKET}/*"}}]}}"#))
        .send()
        .await
        .expect("lock");
    let r = start(&policy(&moto, &sts, "15m"));

    // Nothing is asked of STS before the approval.
    let id = request_and_approve(&r, "unlock-logs", "10m");
    let v = wait_active(&r, &id).await;
    let calls = sts.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].duration_seconds <= 600, "{calls:?}");
    // What twokey did is on the request and in the ledger.
    let detail = v["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == "grant.activated")
        .map(|e| e.to_string())
        .expect("a grant.activated entry on the timeline");
    assert!(
        detail.contains(&format!("deleted the bucket policy of s3://{BUCKET}")),
        "{detail}"
    );
    let ledger = ok(
        &cli(&r, &r.bob, &["audit", "show", "--limit", "1000"]),
        "audit show",
    );
    assert!(ledger.contains(&format!("s3://{BUCKET}")), "{ledger}");
    // At moto: the policy that locked everyone out is gone.
    let err = s3
        .get_bucket_policy()
        .bucket(BUCKET)
        .send()
        .await
        .expect_err("gone");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("NoSuchBucketPolicy")
    );
    // perform hands nothing out.
    assert!(!cli(&r, &r.alice, &["secret", &id]).status.success());

    // hand_out: the session's credentials, to alice, once.
    let id = request_and_approve(&r, "audit-root", "5m");
    wait_active(&r, &id).await;
    let bob_try = cli(&r, &r.bob, &["secret", &id]);
    assert!(!bob_try.status.success(), "bob read alice's root session");
    let secret = ok(&cli(&r, &r.alice, &["secret", &id]), "twokey secret");
    let creds: Value = serde_json::from_str(secret.trim()).expect("credentials json");
    let key = creds[MEMBER]["AccessKeyId"].as_str().expect("key");
    assert_eq!(sts.calls().last().expect("call").issued_key, key);
    assert!(!ledger.contains(creds[MEMBER]["SecretAccessKey"].as_str().expect("secret")));
    let again = cli(&r, &r.alice, &["secret", &id]);
    assert!(!again.status.success(), "the session was shown twice");
    drop(moto);
}

#[test]
fn policy_check_refuses_a_root_task_longer_than_900_s() {
    let dir = tempfile::tempdir().expect("dir");
    let text = r#"[[identity]]
name = "alice"
groups = ["eng"]

[[identity]]
name = "bob"
groups = ["approvers"]

[[entitlement]]
name = "unlock-logs"
provider = "aws_root_task"
requester_identities = ["alice"]
default_duration = "10m"
max_duration = "1h"
approval = { count = 1, from = ["approvers"] }
[entitlement.target]
accounts = ["222233334444"]
task = "S3UnlockBucketPolicy"
action = "perform"
bucket = "payments-logs"
"#;
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, text).expect("write");
    let out = Command::new(BIN)
        .args(["policy", "check"])
        .arg(&file)
        .output()
        .expect("run");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("unlock-logs")
            && all.contains("3600 s is longer than provider \"aws_root_task\" allows (900 s)"),
        "{all}"
    );
    std::fs::write(&file, text.replace("\"1h\"", "\"15m\"")).expect("write");
    let out = Command::new(BIN)
        .args(["policy", "check"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
