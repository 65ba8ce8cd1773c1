//! S3 and SQS inputs (cargo feature `aws`), on the official AWS SDK.
//!
//! - `s3://BUCKET/PREFIX`: every `.json`/`.json.gz` object under the prefix,
//!   in key order (CloudTrail's layout
//!   `AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/…json.gz` sorts
//!   by time within a region); `CloudTrail-Digest/` files are skipped.
//! - `--sqs QUEUE_URL`: S3 `ObjectCreated` notifications, directly or in an
//!   SNS envelope. Each object is fetched and scanned, and its message is
//!   deleted only after every object it names was processed (findings
//!   written, alerts delivered): delivery is at least once, and any number
//!   of workers can share the queue.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc::Receiver;

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region};

use crate::input::{self, InputText};
use crate::rt::Rt;
use crate::scan::AwsArgs;

/// Objects fetched ahead of the one being scanned.
const PREFETCH: usize = 4;

/// S3 and SQS clients plus the runtime they run on.
pub(crate) struct Aws {
    rt: Rt,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
}

/// Splits `s3://bucket/prefix`; `None` if `s` is not an S3 URL.
pub fn parse_s3_url(s: &str) -> Option<(String, String)> {
    let rest = s.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.to_string()))
}

/// Whether an object key is a CloudTrail log (not a digest, not a folder).
pub fn is_log_key(key: &str) -> bool {
    !key.contains("/CloudTrail-Digest/")
        && [
            ".json",
            ".json.gz",
            ".ndjson",
            ".ndjson.gz",
            ".jsonl",
            ".jsonl.gz",
        ]
        .iter()
        .any(|s| key.ends_with(s))
}

impl Aws {
    /// Loads the SDK configuration (default credential chain) with the
    /// endpoint and region of `args`.
    pub(crate) fn new(args: &AwsArgs) -> anyhow::Result<Self> {
        let rt = Rt::new()?;
        let args = args.clone();
        let (s3, sqs) = rt.run(async move {
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https();
            let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
            if let Some(r) = &args.region {
                loader = loader.region(Region::new(r.clone()));
            }
            if let Some(u) = &args.endpoint_url {
                loader = loader.endpoint_url(u);
            }
            let mut conf = loader.load().await;
            if conf.region().is_none() {
                conf = conf.to_builder().region(Region::new("us-east-1")).build();
            }
            let s3conf = aws_sdk_s3::config::Builder::from(&conf)
                // Custom endpoints (moto, MinIO) rarely resolve bucket
                // subdomains.
                .force_path_style(args.endpoint_url.is_some())
                .build();
            Ok((
                aws_sdk_s3::Client::from_conf(s3conf),
                aws_sdk_sqs::Client::new(&conf),
            ))
        })?;
        Ok(Aws { rt, s3, sqs })
    }

    /// The log object keys under `prefix`, in key order.
    pub(crate) fn list(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let s3 = self.s3.clone();
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        self.rt.run(async move {
            let mut keys = Vec::new();
            let mut pages = s3
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    anyhow::anyhow!(
                        "listing s3://{bucket}/{prefix}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                })?;
                for o in page.contents() {
                    if let Some(k) = o.key().filter(|k| is_log_key(k)) {
                        keys.push(k.to_string());
                    }
                }
            }
            keys.sort();
            Ok(keys)
        })
    }

    /// Starts fetching one object; the receiver yields its decoded text.
    fn start_get(&self, bucket: &str, key: &str) -> Receiver<anyhow::Result<InputText>> {
        let s3 = self.s3.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.rt.start(async move {
            let name = format!("s3://{bucket}/{key}");
            let obj = s3
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "reading {name}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                })?;
            let bytes = obj
                .body
                .collect()
                .await
                .with_context(|| format!("reading {name}"))?
                .into_bytes()
                .to_vec();
            Ok(InputText {
                text: input::decode_bytes(&name, bytes)?,
                name,
            })
        })
    }

    /// Fetches objects in order, [`PREFETCH`] at a time, calling `f` on each.
    pub(crate) fn for_each_object(
        &self,
        bucket: &str,
        keys: &[String],
        f: &mut dyn FnMut(anyhow::Result<InputText>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut pending: VecDeque<Receiver<anyhow::Result<InputText>>> = VecDeque::new();
        let mut next = keys.iter();
        loop {
            while pending.len() < PREFETCH {
                match next.next() {
                    Some(k) => pending.push_back(self.start_get(bucket, k)),
                    None => break,
                }
            }
            let Some(rx) = pending.pop_front() else {
                return Ok(());
            };
            let r = rx
                .recv()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("S3 fetch ended without a result")));
            f(r)?;
        }
    }

    /// Receives up to 10 messages, waiting up to `wait` seconds.
    pub(crate) fn receive(&self, queue: &str, wait: u8) -> anyhow::Result<Vec<Message>> {
        let sqs = self.sqs.clone();
        let queue = queue.to_string();
        self.rt.run(async move {
            let out = sqs
                .receive_message()
                .queue_url(&queue)
                .max_number_of_messages(10)
                .wait_time_seconds(i32::from(wait.min(20)))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "receiving from {queue}: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?;
            Ok(out
                .messages()
                .iter()
                .map(|m| Message {
                    id: m.message_id().unwrap_or("-").to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receipt: m.receipt_handle().unwrap_or_default().to_string(),
                })
                .collect())
        })
    }

    /// Deletes a processed message.
    pub(crate) fn delete(&self, queue: &str, receipt: &str) -> anyhow::Result<()> {
        let sqs = self.sqs.clone();
        let (queue, receipt) = (queue.to_string(), receipt.to_string());
        self.rt.run(async move {
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(&receipt)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "deleting a message from {queue}: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(e)
                    )
                })?;
            Ok(())
        })
    }

    /// Sends alerts to the sinks; the failures, described.
    pub(crate) fn alert(
        &self,
        sinks: &[std::sync::Arc<dyn twokey_notify::AlertSink>],
        alerts: Vec<twokey_notify::Alert>,
    ) -> Vec<String> {
        let sinks = sinks.to_vec();
        self.rt
            .run(async move {
                let mut errs = Vec::new();
                for a in &alerts {
                    for (_, e) in twokey_notify::send_all(&sinks, a).await {
                        errs.push(e.to_string());
                    }
                }
                Ok(errs)
            })
            .unwrap_or_else(|e| vec![e.to_string()])
    }
}

/// One SQS message.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) id: String,
    pub(crate) body: String,
    pub(crate) receipt: String,
}

/// The `(bucket, key)` objects an S3 event notification names (keys
/// URL-decoded), also when wrapped in an SNS envelope. `s3:TestEvent` and
/// non-`ObjectCreated` records name none.
pub fn notification_objects(body: &str) -> anyhow::Result<Vec<(String, String)>> {
    let v: serde_json::Value = serde_json::from_str(body).context("message body is not JSON")?;
    if v.get("Type").and_then(|t| t.as_str()) == Some("Notification") {
        let inner = v
            .get("Message")
            .and_then(|m| m.as_str())
            .context("SNS envelope without a Message")?;
        return notification_objects(inner);
    }
    if v.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let records = v
        .get("Records")
        .and_then(|r| r.as_array())
        .context("not an S3 event notification (no Records)")?;
    let mut out = Vec::new();
    for r in records {
        let name = r.get("eventName").and_then(|n| n.as_str()).unwrap_or("");
        if !name.starts_with("ObjectCreated") {
            continue;
        }
        let s3 = r.get("s3").context("S3 record without s3")?;
        let bucket = s3
            .pointer("/bucket/name")
            .and_then(|b| b.as_str())
            .context("S3 record without bucket name")?;
        let key = s3
            .pointer("/object/key")
            .and_then(|k| k.as_str())
            .context("S3 record without object key")?;
        out.push((bucket.to_string(), url_decode(key)?));
    }
    Ok(out)
}

/// Decodes an S3 event key (`+` is a space, `%XX` a byte).
fn url_decode(s: &str) -> anyhow::Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .with_context(|| format!("bad escape in object key {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).with_context(|| format!("object key {s:?} is not UTF-8"))
}

/// Writes `msg` to `err`, ignoring failures (diagnostics only).
pub(crate) fn warn(err: &mut dyn Write, msg: std::fmt::Arguments<'_>) {
    let _ = writeln!(err, "twokey guard: {msg}");
}

/// `twokey guard watch --sqs QUEUE_URL`: receives S3 notifications, scans
/// each object, writes findings (and alerts them to `--webhook`), then
/// deletes the message. A message whose objects could not all be processed
/// is left for redelivery (the queue's redrive policy decides when it goes
/// to a dead-letter queue). Runs until interrupted, or with
/// `--until-empty` until a receive finds nothing; returns 2 if any message
/// or record could not be processed.
pub fn watch_sqs(
    args: &crate::scan::WatchArgs,
    queue: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    use crate::output::FindingWriter;
    use crate::scan::{load_rules, report_unsupported, Refresher, Scanner};

    let set = load_rules(&args.rules)?;
    report_unsupported(&set, err);
    let mut status = if args.rules.strict && !set.unsupported().is_empty() {
        2
    } else {
        0
    };
    let aws = Aws::new(&args.aws)?;
    let sinks: Vec<std::sync::Arc<dyn twokey_notify::AlertSink>> =
        match (&args.webhook, &args.webhook_secret) {
            (Some(url), Some(secret)) => vec![std::sync::Arc::new(
                twokey_notify::WebhookSink::new(url.clone(), secret.clone()),
            )],
            (Some(_), None) => anyhow::bail!("--webhook needs --webhook-secret"),
            _ => Vec::new(),
        };
    let mut scanner = Scanner::new(&set);
    let mut grants = Refresher::new(&args.grants)?;
    scanner.set_grants(grants.current());
    let mut writer = FindingWriter::new(args.format).with_two_person_column(scanner.has_grants());
    let mut nd = FindingWriter::new(crate::output::Format::Ndjson);
    loop {
        if let Some(tp) = grants.refresh(err) {
            scanner.set_grants(Some(tp));
        }
        let msgs = match aws.receive(queue, args.wait) {
            Ok(m) => m,
            Err(e) => {
                warn(err, format_args!("{e:#}"));
                status = 2;
                if args.until_empty {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_secs(5));
                continue;
            }
        };
        if msgs.is_empty() {
            if args.until_empty {
                break;
            }
            continue;
        }
        for m in msgs {
            let objects = match notification_objects(&m.body) {
                Ok(o) => o,
                Err(e) => {
                    warn(
                        err,
                        format_args!("message {}: {e:#}; left in the queue", m.id),
                    );
                    status = 2;
                    continue;
                }
            };
            let mut ok = true;
            let mut alerts = Vec::new();
            for (bucket, key) in objects {
                if !is_log_key(&key) {
                    continue;
                }
                let inp = match aws.start_get(&bucket, &key).recv() {
                    Ok(Ok(i)) => i,
                    Ok(Err(e)) => {
                        warn(err, format_args!("message {}: {e:#}", m.id));
                        ok = false;
                        continue;
                    }
                    Err(_) => {
                        warn(err, format_args!("message {}: fetch ended", m.id));
                        ok = false;
                        continue;
                    }
                };
                let mut bad = false;
                let r = scanner.scan_text(
                    &inp.name,
                    &inp.text,
                    &mut |f| {
                        writer.write(out, f)?;
                        if !sinks.is_empty() {
                            alerts.push(finding_alert(&mut nd, f)?);
                        }
                        Ok(())
                    },
                    &mut |b| {
                        bad = true;
                        warn(
                            err,
                            format_args!("{}:{}: {}", inp.name, b.position, b.reason),
                        );
                    },
                );
                out.flush()?;
                // Output failures end the watch; the message stays.
                r?;
                if bad {
                    // Unreadable records do not get better on redelivery.
                    status = 2;
                }
            }
            if !alerts.is_empty() {
                for e in aws.alert(&sinks, alerts) {
                    warn(
                        err,
                        format_args!("message {}: alert not delivered: {e}", m.id),
                    );
                    ok = false;
                }
            }
            if ok {
                if let Err(e) = aws.delete(queue, &m.receipt) {
                    warn(err, format_args!("{e:#}"));
                    status = 2;
                }
            } else {
                warn(
                    err,
                    format_args!("message {} left in the queue for redelivery", m.id),
                );
                status = 2;
            }
        }
    }
    out.flush()?;
    Ok(status)
}

/// A finding as a twokey-notify alert (`guard_finding`); the NDJSON finding
/// is its `data`.
fn finding_alert(
    nd: &mut crate::output::FindingWriter,
    f: &crate::output::Finding<'_>,
) -> anyhow::Result<twokey_notify::Alert> {
    use crate::grants::Coverage;
    let mut buf = Vec::new();
    nd.write(&mut buf, f)?;
    let data: serde_json::Value = serde_json::from_slice(&buf)?;
    let outside = matches!(f.two_person, Some(Coverage::Outside { .. }));
    let severity = match f.level {
        "critical" => twokey_notify::Severity::Critical,
        _ if outside => twokey_notify::Severity::Critical,
        "high" => twokey_notify::Severity::Warning,
        _ => twokey_notify::Severity::Info,
    };
    let mut title = format!("{}: {}", f.level, f.rule_title);
    if outside {
        title.push_str(" (outside two-person control)");
    }
    let time = f
        .event_time
        .and_then(twokey_sigma::correlation::parse_time_ms)
        .unwrap_or(0);
    let mut a = twokey_notify::Alert::new(
        "guard_finding",
        severity,
        title,
        format!(
            "{} ({}) in {} record {}",
            f.event_name.unwrap_or("-"),
            f.event_id.unwrap_or("-"),
            f.file,
            f.line
        ),
        time,
    );
    if let Some(Coverage::Covered { request_id, .. }) = f.two_person {
        a.request_id = Some(request_id.clone());
    }
    a.data = data;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_s3_url("s3://b/AWSLogs/1/"),
            Some(("b".into(), "AWSLogs/1/".into()))
        );
        assert_eq!(parse_s3_url("s3://b"), Some(("b".into(), "".into())));
        assert_eq!(parse_s3_url("s3:///x"), None);
        assert_eq!(parse_s3_url("/tmp/x"), None);
        assert!(is_log_key(
            "AWSLogs/1/CloudTrail/us-east-1/2026/01/01/x.json.gz"
        ));
        assert!(!is_log_key(
            "AWSLogs/1/CloudTrail-Digest/us-east-1/2026/01/01/x.json.gz"
        ));
        assert!(!is_log_key("AWSLogs/1/CloudTrail/"));
    }

    #[test]
    fn notifications_direct_sns_and_test_events() {
        let direct = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"AWSLogs/a+b%3D.json.gz","size":1}}},{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"x"}}}]}"#;
        assert_eq!(
            notification_objects(direct).unwrap(),
            vec![("b".to_string(), "AWSLogs/a b=.json.gz".to_string())]
        );
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": direct})
            .to_string();
        assert_eq!(notification_objects(&sns).unwrap().len(), 1);
        assert!(
            notification_objects(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(notification_objects("nope").is_err());
        assert!(notification_objects(r#"{"a":1}"#).is_err());
        assert!(url_decode("%zz").is_err());
    }
}
