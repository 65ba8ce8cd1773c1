//! `twokey guard scan` and `watch` end to end: inputs, formats, exit
//! status, unsupported rules, the built-in pack and correlations.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use twokey_guard::scan::{scan_with, watch_reader};
use twokey_guard::{Format, RuleArgs, ScanArgs, WatchArgs};

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir.
fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "twokey-guard-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const STOP_RULE: &str = r#"
title: Trail Stopped
id: 11111111-2222-4333-8444-555555555555
logsource: {product: aws, service: cloudtrail}
detection:
  sel:
    eventName: StopLogging
  condition: sel
level: high
"#;

fn rules_dir(extra: &[(&str, &str)]) -> PathBuf {
    let d = tempdir();
    std::fs::write(d.join("stop.yml"), STOP_RULE).unwrap();
    for (name, text) in extra {
        std::fs::write(d.join(name), text).unwrap();
    }
    d
}

fn rec(name: &str, id: &str, time: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"{time}","eventSource":"cloudtrail.amazonaws.com","eventName":"{name}","eventID":"{id}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/alice"}},"sourceIPAddress":"10.0.0.1"}}"#
    )
}

struct Run {
    status: i32,
    out: String,
    err: String,
}

fn scan(rules: Vec<PathBuf>, builtin: bool, format: Format, paths: Vec<PathBuf>) -> Run {
    let args = ScanArgs {
        rules: RuleArgs {
            rules,
            builtin,
            config: None,
            strict: false,
        },
        format,
        grants: Default::default(),
        aws: Default::default(),
        paths,
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let status = scan_with(&args, &mut out, &mut err).unwrap();
    Run {
        status,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn findings(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn ndjson_finding_carries_rule_source_and_event() {
    let rules = rules_dir(&[]);
    let d = tempdir();
    let file = d.join("events.ndjson");
    std::fs::write(
        &file,
        format!(
            "{}\n\n{}\n",
            rec("DescribeTrails", "e1", "2026-01-01T00:00:00Z"),
            rec("StopLogging", "e2", "2026-01-01T00:00:01Z")
        ),
    )
    .unwrap();
    let r = scan(vec![rules], false, Format::Ndjson, vec![file.clone()]);
    assert_eq!(r.status, 1, "{}", r.err);
    let f = findings(&r.out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["rule_id"], "11111111-2222-4333-8444-555555555555");
    assert_eq!(f[0]["rule_title"], "Trail Stopped");
    assert_eq!(f[0]["level"], "high");
    assert_eq!(f[0]["source"]["file"], file.display().to_string());
    assert_eq!(f[0]["source"]["line"], 3, "blank lines count");
    assert_eq!(f[0]["event_id"], "e2");
    assert_eq!(f[0]["event"]["eventName"], "StopLogging");
}

fn records_file(records: &[String]) -> String {
    format!("{{\"Records\":[{}]}}", records.join(",\n"))
}

#[test]
fn records_files_plain_gzip_and_directory_trees() {
    let rules = rules_dir(&[]);
    let d = tempdir();
    let sub = d.join("AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/01");
    std::fs::create_dir_all(&sub).unwrap();
    let body = records_file(&[
        rec("StopLogging", "a0", "2026-01-01T00:00:00Z"),
        rec("DescribeTrails", "a1", "2026-01-01T00:00:00Z"),
        rec("StopLogging", "a2", "2026-01-01T00:00:00Z"),
    ]);
    std::fs::write(sub.join("one.json"), &body).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    std::fs::write(sub.join("two.json.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(sub.join("notes.txt"), "not a log").unwrap();
    let r = scan(vec![rules], false, Format::Ndjson, vec![d.clone()]);
    assert_eq!(r.status, 1, "{}", r.err);
    let got: Vec<(String, u64)> = findings(&r.out)
        .iter()
        .map(|f| {
            let file = f["source"]["file"].as_str().unwrap();
            let name = Path::new(file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, f["source"]["line"].as_u64().unwrap())
        })
        .collect();
    // Record indices, 0-based, in file-name order.
    assert_eq!(
        got,
        [
            ("one.json".to_string(), 0),
            ("one.json".to_string(), 2),
            ("two.json.gz".to_string(), 0),
            ("two.json.gz".to_string(), 2)
        ]
    );
}

#[test]
fn no_findings_exit_zero_and_bad_records_exit_two() {
    let rules = rules_dir(&[]);
    let d = tempdir();
    let clean = d.join("clean.ndjson");
    std::fs::write(&clean, rec("DescribeTrails", "x", "2026-01-01T00:00:00Z")).unwrap();
    let r = scan(vec![rules.clone()], false, Format::Ndjson, vec![clean]);
    assert_eq!((r.status, r.out.as_str()), (0, ""));

    let bad = d.join("bad.ndjson");
    std::fs::write(
        &bad,
        format!(
            "{{\"eventName\":\n{}\n",
            rec("StopLogging", "y", "2026-01-01T00:00:00Z")
        ),
    )
    .unwrap();
    let r = scan(vec![rules.clone()], false, Format::Ndjson, vec![bad]);
    assert_eq!(r.status, 2);
    assert_eq!(findings(&r.out).len(), 1, "good records are still scanned");
    assert!(r.err.contains("bad.ndjson:1:"), "{}", r.err);

    let r = scan(
        vec![rules],
        false,
        Format::Ndjson,
        vec![d.join("missing.json")],
    );
    assert_eq!(r.status, 2);
    assert!(r.err.contains("missing.json"));
}

#[test]
fn unsupported_rules_are_reported_not_dropped() {
    let rules = rules_dir(&[(
        "count.yml",
        "title: Counting\nid: 22222222-2222-4333-8444-555555555555\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: ListBuckets\n  timeframe: 10m\n  condition: sel | count() > 5\n",
    )]);
    let d = tempdir();
    let f = d.join("e.ndjson");
    std::fs::write(&f, rec("StopLogging", "z", "2026-01-01T00:00:00Z")).unwrap();
    let r = scan(vec![rules], false, Format::Ndjson, vec![f]);
    assert_eq!(r.status, 1);
    assert!(r.err.contains("count.yml"), "{}", r.err);
    assert!(r.err.contains("22222222-2222-4333-8444-555555555555"));
    assert!(r.err.contains("correlation"));
}

#[test]
fn ocsf_and_table_formats() {
    let rules = rules_dir(&[]);
    let d = tempdir();
    let f = d.join("e.ndjson");
    std::fs::write(&f, rec("StopLogging", "ev-9", "2026-01-01T00:00:00Z")).unwrap();
    let r = scan(vec![rules.clone()], false, Format::Ocsf, vec![f.clone()]);
    let o = &findings(&r.out)[0];
    assert_eq!(o["class_uid"], 2004);
    assert_eq!(o["type_uid"], 200401);
    assert_eq!(o["severity_id"], 4);
    assert_eq!(o["time"], 1_767_225_600_000i64);
    assert_eq!(
        o["finding_info"]["analytic"]["uid"],
        "11111111-2222-4333-8444-555555555555"
    );
    assert_eq!(o["finding_info"]["title"], "Trail Stopped");
    let raw: serde_json::Value = serde_json::from_str(o["raw_data"].as_str().unwrap()).unwrap();
    assert_eq!(raw["eventID"], "ev-9");

    let r = scan(vec![rules], false, Format::Table, vec![f]);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("LEVEL"));
    assert!(
        lines[1].starts_with("high")
            && lines[1].contains("Trail Stopped")
            && lines[1].contains("ev-9")
    );
}

fn builtin_hits(records: &[String]) -> Vec<String> {
    let d = tempdir();
    let f = d.join("e.ndjson");
    std::fs::write(&f, records.join("\n")).unwrap();
    let r = scan(vec![], false, Format::Ndjson, vec![f]);
    assert!(r.err.is_empty(), "{}", r.err);
    findings(&r.out)
        .iter()
        .map(|x| x["rule_title"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn builtin_pack_covers_the_tpi_baseline() {
    let open_sg = r#"{"eventTime":"2026-01-01T00:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"AuthorizeSecurityGroupIngress","userIdentity":{"type":"IAMUser"},"requestParameters":{"groupId":"sg-1","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":22,"toPort":22,"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}}"#;
    let closed_sg = open_sg.replace("0.0.0.0/0", "10.0.0.0/8");
    let root = r#"{"eventTime":"2026-01-01T00:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","userIdentity":{"type":"Root","arn":"arn:aws:iam::123456789012:root"}}"#;
    let role = r#"{"eventTime":"2026-01-01T00:00:00Z","eventSource":"iam.amazonaws.com","eventName":"AttachRolePolicy","userIdentity":{"type":"IAMUser"},"requestParameters":{"roleName":"twokey-broker","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}}"#;
    let other_role = role.replace("twokey-broker", "app");
    assert_eq!(
        builtin_hits(&[rec("StopLogging", "1", "2026-01-01T00:00:00Z")]),
        ["CloudTrail Logging Stopped Or Trail Deleted"]
    );
    assert_eq!(
        builtin_hits(&[open_sg.to_string()]),
        ["Security Group Opened To The Internet"]
    );
    assert!(builtin_hits(&[closed_sg]).is_empty());
    assert_eq!(builtin_hits(&[root.to_string()]), ["Root User Activity"]);
    assert_eq!(
        builtin_hits(&[role.to_string()]),
        ["twokey Role Changed Outside twokey"]
    );
    assert!(builtin_hits(&[other_role]).is_empty());
}

fn s3_list(i: u32, secs: u32, ip: &str) -> String {
    format!(
        r#"{{"eventTime":"2026-01-01T00:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetBucketPolicy","eventID":"l{i}","sourceIPAddress":"{ip}","userIdentity":{{"type":"IAMUser"}}}}"#,
        secs / 60,
        secs % 60
    )
}

#[test]
fn event_count_correlation_fires_once_per_burst_inside_its_window() {
    // aws_enum_storage: more than 5 storage enumeration calls within 10m.
    let burst: Vec<String> = (0..6).map(|i| s3_list(i, i * 30, "1.2.3.4")).collect();
    let hits = builtin_hits(&burst);
    assert_eq!(
        hits,
        ["Potential Storage Enumeration on AWS"],
        "base rules do not report alone"
    );
    let five: Vec<String> = (0..5).map(|i| s3_list(i, i * 30, "1.2.3.4")).collect();
    assert!(builtin_hits(&five).is_empty());
    // Six calls spread over 50 minutes never have six inside 10 minutes.
    let spread: Vec<String> = (0..6).map(|i| s3_list(i, i * 600, "1.2.3.4")).collect();
    assert!(builtin_hits(&spread).is_empty());
    // Twelve quick calls: two bursts, two findings.
    let twelve: Vec<String> = (0..12).map(|i| s3_list(i, i * 10, "1.2.3.4")).collect();
    assert_eq!(builtin_hits(&twelve).len(), 2);
}

#[test]
fn grouped_and_temporal_correlations() {
    // Macie evasion counts per source IP: 6 calls from two IPs is not 6 from one.
    let macie = |i: u32, ip: &str| {
        format!(
            r#"{{"eventTime":"2026-01-01T00:00:{i:02}Z","eventSource":"macie2.amazonaws.com","eventName":"DisableMacie","sourceIPAddress":"{ip}"}}"#
        )
    };
    let mixed: Vec<String> = (0..6)
        .map(|i| macie(i, if i % 2 == 0 { "1.1.1.1" } else { "2.2.2.2" }))
        .collect();
    assert!(builtin_hits(&mixed).is_empty());
    let same: Vec<String> = (0..6).map(|i| macie(i, "1.1.1.1")).collect();
    assert_eq!(builtin_hits(&same), ["AWS Macie Evasion"]);

    // SES: sending enabled and an identity verified within 5 minutes.
    let ses = |name: &str, t: &str| {
        format!(r#"{{"eventTime":"{t}","eventSource":"ses.amazonaws.com","eventName":"{name}"}}"#)
    };
    let close = [
        ses("UpdateAccountSendingEnabled", "2026-01-01T00:00:00Z"),
        ses("VerifyEmailIdentity", "2026-01-01T00:04:00Z"),
    ];
    assert_eq!(
        builtin_hits(&close),
        ["Potential AWS Cloud Email Service Abuse"]
    );
    let far = [
        ses("UpdateAccountSendingEnabled", "2026-01-01T00:00:00Z"),
        ses("VerifyEmailIdentity", "2026-01-01T00:06:00Z"),
    ];
    assert!(builtin_hits(&far).is_empty());
}

#[test]
fn watch_streams_findings_from_lines_and_log_files() {
    let rules = rules_dir(&[]);
    let args = WatchArgs {
        rules: RuleArgs {
            rules: vec![rules],
            builtin: false,
            config: None,
            strict: false,
        },
        format: Format::Ndjson,
        grants: Default::default(),
        input: "-".into(),
        sqs: None,
        aws: Default::default(),
        until_empty: false,
        wait: 20,
        webhook: None,
        webhook_secret: None,
    };
    let input = format!(
        "{}\n{}\nnot json\n",
        rec("StopLogging", "w1", "2026-01-01T00:00:00Z"),
        records_file(&[rec("StopLogging", "w2", "2026-01-01T00:00:00Z")])
    );
    let mut out = Vec::new();
    let mut err = Vec::new();
    let status = watch_reader(&args, &mut input.as_bytes(), &mut out, &mut err).unwrap();
    assert_eq!(status, 2, "the bad line is reported");
    let f = findings(&String::from_utf8(out).unwrap());
    let ids: Vec<&str> = f.iter().map(|x| x["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["w1", "w2"]);
    assert!(String::from_utf8(err).unwrap().contains("stdin line 3"));
}
