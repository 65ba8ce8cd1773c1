//! S3 and SQS inputs against a real moto server (feature `aws`).
//!
//! moto comes from `/work/main/.venv/moto` (`scripts/setup-moto.sh`), or
//! `MOTO_SERVER` naming the `moto_server` program. Without it the tests are
//! skipped with a printed reason, unless `CI` is set (then they fail).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use twokey_guard::scan::{scan_with, AwsArgs, GrantArgs};
use twokey_guard::{Format, RuleArgs, ScanArgs, WatchArgs};

const ACCOUNT_PREFIX: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/01/";

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_program() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/moto/bin/moto_server");
    p.exists().then_some(p)
}

/// Starts moto on a free loopback port, or explains why not.
fn moto() -> Option<Moto> {
    let Some(prog) = moto_program() else {
        let why =
            "moto is missing: run scripts/setup-moto.sh (creates .venv/moto) or set MOTO_SERVER";
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipping: {why}");
        return None;
    };
    // Fake credentials for the SDK's default chain (moto accepts any).
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let child = Command::new(&prog)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", prog.display()));
    let m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(m)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn clients(url: &str) -> (aws_sdk_s3::Client, aws_sdk_sqs::Client) {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    (s3, aws_sdk_sqs::Client::new(&conf))
}

fn panther_lines() -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cloudtrail/panther-test-events.ndjson");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn gz_log(records: &[String]) -> Vec<u8> {
    let body = format!("{{\"Records\":[{}]}}", records.join(","));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(body.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// Uploads the Panther events as two CloudTrail log files (plus a digest
/// and a non-log object that must be skipped); returns their keys.
async fn upload(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let lines = panther_lines();
    let half = lines.len() / 2;
    let keys = vec![
        format!("{ACCOUNT_PREFIX}123456789012_CloudTrail_us-east-1_20260101T0000Z_a.json.gz"),
        format!("{ACCOUNT_PREFIX}123456789012_CloudTrail_us-east-1_20260101T0005Z_b.json.gz"),
    ];
    for (k, part) in keys.iter().zip([&lines[..half], &lines[half..]]) {
        s3.put_object()
            .bucket(bucket)
            .key(k)
            .body(gz_log(part).into())
            .send()
            .await
            .unwrap();
    }
    for (k, body) in [
        (
            "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/01/d.json.gz",
            gz_log(&[]),
        ),
        (
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/01/README.txt",
            b"not a log".to_vec(),
        ),
    ] {
        s3.put_object()
            .bucket(bucket)
            .key(k)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    keys
}

fn rules() -> RuleArgs {
    RuleArgs {
        rules: vec![],
        builtin: true,
        config: None,
        strict: false,
    }
}

/// (rule id, event id, event) of each finding, sorted: what must agree
/// between a local scan and the S3/SQS ones.
fn matches(out: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = out
        .lines()
        .map(|l| {
            let x: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                x["rule_id"].as_str().unwrap().to_string(),
                x["event_id"].as_str().unwrap_or("-").to_string(),
                x["event"].to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn local_matches() -> Vec<(String, String, String)> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cloudtrail/panther-test-events.ndjson");
    let args = ScanArgs {
        rules: rules(),
        format: Format::Ndjson,
        grants: GrantArgs::default(),
        aws: AwsArgs::default(),
        paths: vec![p],
    };
    let mut out = Vec::new();
    scan_with(&args, &mut out, &mut Vec::new()).unwrap();
    matches(&String::from_utf8(out).unwrap())
}

#[test]
fn scan_reads_a_cloudtrail_bucket_prefix() {
    let Some(m) = moto() else { return };
    let rt = rt();
    let (s3, _) = rt.block_on(clients(&m.url));
    rt.block_on(upload(&s3, "trail"));
    let args = ScanArgs {
        rules: rules(),
        format: Format::Ndjson,
        grants: GrantArgs::default(),
        aws: AwsArgs {
            endpoint_url: Some(m.url.clone()),
            region: Some("us-east-1".into()),
        },
        paths: vec![PathBuf::from("s3://trail/AWSLogs/123456789012/CloudTrail/")],
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let status = scan_with(&args, &mut out, &mut err).unwrap();
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(status, 1, "{err}");
    let got = matches(&out);
    assert!(!got.is_empty());
    assert_eq!(got, local_matches(), "same findings as the local file");
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(first["source"]["file"]
        .as_str()
        .unwrap()
        .starts_with(&format!("s3://trail/{ACCOUNT_PREFIX}")));

    // A missing bucket is reported, exit status 2.
    let mut args = args;
    args.paths = vec![PathBuf::from("s3://no-such-bucket/AWSLogs/")];
    let mut err = Vec::new();
    assert_eq!(scan_with(&args, &mut Vec::new(), &mut err).unwrap(), 2);
    assert!(String::from_utf8(err).unwrap().contains("no-such-bucket"));
}

fn notification(bucket: &str, key: &str) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T00:05:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "size": 1024, "sequencer": "0055AED6DCD90281E5"}}}]})
    .to_string()
}

fn watch_args(url: &str, queue: &str) -> WatchArgs {
    WatchArgs {
        rules: rules(),
        format: Format::Ndjson,
        grants: GrantArgs::default(),
        input: "-".into(),
        sqs: Some(queue.to_string()),
        aws: AwsArgs {
            endpoint_url: Some(url.to_string()),
            region: Some("us-east-1".into()),
        },
        until_empty: true,
        wait: 1,
        webhook: None,
        webhook_secret: None,
    }
}

async fn queue_counts(sqs: &aws_sdk_sqs::Client, q: &str) -> BTreeMap<String, String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let a = sqs
        .get_queue_attributes()
        .queue_url(q)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    a.attributes()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.clone()))
        .collect()
}

#[test]
fn watch_sqs_scans_notified_objects_and_deletes_the_messages() {
    let Some(m) = moto() else { return };
    let rt = rt();
    let (s3, sqs) = rt.block_on(clients(&m.url));
    let keys = rt.block_on(upload(&s3, "trail-sqs"));
    let q = rt
        .block_on(sqs.create_queue().queue_name("trail-events").send())
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    // One direct S3 notification (key URL-encoded as S3 does), one in an
    // SNS envelope, and S3's test event.
    let direct = notification("trail-sqs", &keys[0].replace('_', "%5F"));
    let sns = serde_json::json!({"Type": "Notification", "MessageId": "1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:trail", "Message": notification("trail-sqs", &keys[1])})
    .to_string();
    let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"trail-sqs"}"#;
    for body in [direct.as_str(), sns.as_str(), test_event] {
        rt.block_on(sqs.send_message().queue_url(&q).message_body(body).send())
            .unwrap();
    }
    let mut out = Vec::new();
    let mut err = Vec::new();
    let status =
        twokey_guard::aws::watch_sqs(&watch_args(&m.url, &q), &q, &mut out, &mut err).unwrap();
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        matches(&out),
        local_matches(),
        "same findings as the local file"
    );
    let counts = rt.block_on(queue_counts(&sqs, &q));
    assert_eq!(counts["ApproximateNumberOfMessages"], "0", "{counts:?}");
    assert_eq!(
        counts["ApproximateNumberOfMessagesNotVisible"], "0",
        "every message deleted: {counts:?}"
    );

    // A notification for an object that cannot be read stays in the queue.
    rt.block_on(
        sqs.send_message()
            .queue_url(&q)
            .message_body(notification("trail-sqs", "AWSLogs/missing.json.gz"))
            .send(),
    )
    .unwrap();
    let mut err = Vec::new();
    let status =
        twokey_guard::aws::watch_sqs(&watch_args(&m.url, &q), &q, &mut Vec::new(), &mut err)
            .unwrap();
    let err = String::from_utf8(err).unwrap();
    assert_eq!(status, 2);
    assert!(err.contains("left in the queue"), "{err}");
    let counts = rt.block_on(queue_counts(&sqs, &q));
    assert_eq!(
        counts["ApproximateNumberOfMessagesNotVisible"], "1",
        "not deleted: {counts:?}"
    );
}
