//! `aws_root_task` against the local STS stand-in for `AssumeRoot`
//! (`common/sts_root.rs`, built from the SDK's model; moto answers 500 for
//! it), then a real moto server for the S3 and IAM calls made with the
//! returned credentials. What this cannot show is in the README: AWS's own
//! authorization of AssumeRoot (centralized root access, the delegated
//! administrator, SCPs), the task policy's limits, CloudTrail records.

use crate::common;

use std::time::Duration;

use common::sts_root::{Answer, StsRoot};
use common::{now_ms, spec, Moto};
use twokey_aws::root_task::{RootTaskConfig, RootTaskProvider};
use twokey_providers::{GrantSpec, Presence, Provider};

const MEMBER: &str = "222233334444";
const REGION: &str = "eu-west-1";

/// An SDK config acting in `account` at moto (moto assumes any role).
async fn member(moto: &Moto, account: &str) -> aws_config::SdkConfig {
    twokey_aws::client::Connection {
        endpoint_url: Some(moto.url()),
        region: Some(REGION.into()),
        assume_role_arn: Some(format!(
            "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        )),
        ..Default::default()
    }
    .load()
    .await
}

fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// A bucket in the member account whose policy denies everyone.
async fn locked_bucket(moto: &Moto, name: &str) {
    let s3 = s3(&member(moto, MEMBER).await);
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
    let deny = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::{name}","arn:aws:s3:::{name}/*"]}}]}}"#
    );
    s3.put_bucket_policy()
        .bucket(name)
        .policy(deny)
        .send()
        .await
        .expect("lock the bucket");
}

fn provider(moto: &Moto, sts: &StsRoot, extra: &str) -> RootTaskProvider {
    let target: toml::Table = toml::from_str(&format!(
        "accounts = [\"{MEMBER}\"]\nregion = \"{REGION}\"\nendpoint_url = \"{}\"\nsts_endpoint_url = \"{}\"\n{extra}",
        moto.url(),
        sts.url
    ))
    .expect("target");
    RootTaskProvider::new(RootTaskConfig::from_target(&target).expect("valid target"))
}

/// A grant spec ending `secs` from now.
fn grant(id: &str, secs: i64) -> GrantSpec {
    let mut s = spec(id, "alice", &[]);
    s.starts_at_ms = now_ms();
    s.ends_at_ms = s.starts_at_ms + secs * 1000;
    s
}

async fn start() -> Option<(Moto, StsRoot)> {
    let moto = Moto::start(&[])?;
    let sts = StsRoot::start(REGION, &moto.url(), &[("AKIDTESTING", "testing")]).await;
    Some((moto, sts))
}

#[tokio::test]
async fn performs_the_bucket_unlock_in_the_member_account_with_the_root_session() {
    let Some((moto, sts)) = start().await else {
        return;
    };
    locked_bucket(&moto, "payments-logs").await;
    let p = provider(
        &moto,
        &sts,
        "task = \"S3UnlockBucketPolicy\"\naction = \"perform\"\nbucket = \"payments-logs\"",
    );
    let out = p.grant(&grant("r1", 600)).await.expect("grant");
    assert!(out.secret.is_none(), "perform hands nothing out");
    assert!(
        out.detail.contains(&format!(
            "root session in {MEMBER} for S3UnlockBucketPolicy"
        )) && out
            .detail
            .contains("deleted the bucket policy of s3://payments-logs"),
        "{}",
        out.detail
    );
    // moto's state: the policy that locked everyone out is gone.
    let err = s3(&member(&moto, MEMBER).await)
        .get_bucket_policy()
        .bucket("payments-logs")
        .send()
        .await
        .expect_err("policy deleted");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
        Some("NoSuchBucketPolicy"),
        "{err:?}"
    );
    // What STS was asked: this account, this task, a session ending by the grant's end.
    let calls = sts.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].target, MEMBER);
    assert_eq!(
        calls[0].task_policy_arn,
        "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy"
    );
    assert!(
        (590..=600).contains(&calls[0].duration_seconds),
        "{calls:?}"
    );
    assert_eq!(calls[0].caller_key, "AKIDTESTING");
    assert!(out.detail.contains(&calls[0].issued_key), "{}", out.detail);
    // twokey dropped the session: nobody holds it.
    assert_eq!(
        p.check(&grant("r1", 600)).await.expect("check"),
        Presence::Absent
    );
}

#[tokio::test]
async fn hands_out_a_session_that_acts_in_the_member_account_and_lasts_at_most_900_s() {
    let Some((moto, sts)) = start().await else {
        return;
    };
    let p = provider(&moto, &sts, "task = \"IAMAuditRootUserCredentials\"");
    let g = grant("r2", 900);
    let out = p.grant(&g).await.expect("grant");
    let secret: serde_json::Value =
        serde_json::from_str(out.secret.as_deref().expect("a one-time secret")).expect("json");
    let c = &secret[MEMBER];
    assert_eq!(c["Version"], 1, "{c}");
    let key = c["AccessKeyId"].as_str().expect("key");
    assert!(!out
        .detail
        .contains(c["SecretAccessKey"].as_str().expect("secret")));
    assert!(out.detail.contains("handed to alice"), "{}", out.detail);
    let exp = chrono::DateTime::parse_from_rfc3339(c["Expiration"].as_str().expect("exp"))
        .expect("rfc3339")
        .timestamp_millis();
    assert!(exp <= g.ends_at_ms + 1000, "the session outlasts the grant");
    let asked = sts.calls()[0].duration_seconds;
    assert!((898..=900).contains(&asked), "{asked}");
    // The handed-out credentials are moto's and act in the member account.
    let sdk = common::sdk_config(
        REGION,
        &moto.url(),
        aws_credential_types::Credentials::new(
            key,
            c["SecretAccessKey"].as_str().expect("secret"),
            c["SessionToken"].as_str().map(str::to_string),
            None,
            "handed-out",
        ),
    )
    .await;
    let me = aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await
        .expect("moto knows the session");
    assert_eq!(me.account(), Some(MEMBER));
    assert_eq!(p.check(&g).await.expect("check"), Presence::Present);
    // A grant that has ended is absent (the session expired with it).
    let mut ended = g.clone();
    ended.ends_at_ms = now_ms() - 1;
    assert_eq!(p.check(&ended).await.expect("check"), Presence::Absent);
}

#[tokio::test]
async fn a_replayed_or_forged_answer_is_not_taken_as_another_grants_session() {
    let Some((moto, sts)) = start().await else {
        return;
    };
    let p = provider(&moto, &sts, "task = \"IAMAuditRootUserCredentials\"");
    p.grant(&grant("first", 600)).await.expect("honest grant");

    sts.answer(Answer::Replay);
    let e = p.grant(&grant("second", 600)).await.expect_err("replay");
    assert!(
        !e.retryable && e.message.contains("already issued for request first"),
        "{}",
        e.message
    );

    sts.answer(Answer::Forge);
    let e = p.grant(&grant("third", 600)).await.expect_err("forged");
    assert!(
        !e.retryable
            && e.message.contains("not accepted")
            && e.message.contains("InvalidClientTokenId"),
        "{}",
        e.message
    );

    // An answer for a different session length (a replay of an older or
    // longer call) is refused on its expiry alone.
    sts.answer(Answer::Replay);
    let e = p
        .grant(&grant("fourth", 120))
        .await
        .expect_err("mismatched expiry");
    assert!(
        e.message.contains("not an answer to this request"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_grant_longer_than_900_s_is_refused_and_sts_is_never_asked() {
    let Some((moto, sts)) = start().await else {
        return;
    };
    let p = provider(&moto, &sts, "task = \"IAMAuditRootUserCredentials\"");
    let e = p.grant(&grant("long", 901)).await.expect_err("too long");
    assert!(e.message.contains("longer than the 900 s"), "{}", e.message);
    assert!(sts.calls().is_empty());
    assert_eq!(p.max_grant(), Some(Duration::from_secs(900)));
}

/// The stand-in is not a rubber stamp: it refuses what STS refuses.
#[tokio::test]
async fn the_stand_in_refuses_what_sts_refuses() {
    let Some((moto, sts)) = start().await else {
        return;
    };
    let client = |secret: &str, region: &str| {
        let (secret, region, url) = (secret.to_string(), region.to_string(), sts.url.clone());
        async move {
            let sdk = common::sdk_config(
                &region,
                &url,
                aws_credential_types::Credentials::new("AKIDTESTING", secret, None, None, "test"),
            )
            .await;
            aws_sdk_sts::Client::new(&sdk)
        }
    };
    let task = |name: &str| {
        aws_sdk_sts::types::PolicyDescriptorType::builder()
            .arn(format!("arn:aws:iam::aws:policy/root-task/{name}"))
            .build()
    };
    let code = |e: &aws_sdk_sts::error::SdkError<_, _>| {
        aws_sdk_sts::error::ProvideErrorMetadata::code(e.as_service_error().expect("service error"))
            .map(str::to_string)
    };
    let good = client("testing", REGION).await;
    let e = good
        .assume_root()
        .target_principal(MEMBER)
        .task_policy_arn(task("S3UnlockBucketPolicy"))
        .duration_seconds(901)
        .send()
        .await
        .expect_err("901 s");
    assert_eq!(code(&e).as_deref(), Some("ValidationError"));
    let e = good
        .assume_root()
        .target_principal(MEMBER)
        .task_policy_arn(task("AdministratorAccess"))
        .send()
        .await
        .expect_err("not a task policy");
    assert_eq!(code(&e).as_deref(), Some("ValidationError"));
    let e = client("wrong", REGION)
        .await
        .assume_root()
        .target_principal(MEMBER)
        .task_policy_arn(task("S3UnlockBucketPolicy"))
        .send()
        .await
        .expect_err("bad signature");
    assert_eq!(code(&e).as_deref(), Some("SignatureDoesNotMatch"));
    let e = client("testing", "us-west-2")
        .await
        .assume_root()
        .target_principal(MEMBER)
        .task_policy_arn(task("S3UnlockBucketPolicy"))
        .send()
        .await
        .expect_err("other region");
    assert_eq!(code(&e).as_deref(), Some("SignatureDoesNotMatch"));
    // And a good call with the default duration gets 900 s.
    let ok = good
        .assume_root()
        .target_principal(format!("arn:aws:iam::{MEMBER}:root"))
        .task_policy_arn(task("S3UnlockBucketPolicy"))
        .send()
        .await
        .expect("valid call");
    assert!(ok.credentials().is_some());
    assert_eq!(sts.calls().last().expect("call").duration_seconds, 900);
    assert_eq!(sts.refusals().len(), 4, "{:?}", sts.refusals());
    drop(moto);
}
