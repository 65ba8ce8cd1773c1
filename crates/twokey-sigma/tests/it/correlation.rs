//! Correlation rules: each type over event-time windows, grouping, and the
//! reasons given for correlations that cannot run.

use twokey_sigma::{Config, CorrelationHit, Correlator, Event, RuleSet};

const BASE: &str = r#"
title: Login
name: login
logsource: {product: aws, service: cloudtrail}
detection:
  sel:
    eventName: ConsoleLogin
  condition: sel
---
title: Key created
name: key
logsource: {product: aws, service: cloudtrail}
detection:
  sel:
    eventName: CreateAccessKey
  condition: sel
"#;

fn set(correlation: &str) -> RuleSet {
    let text = format!("{BASE}---\n{correlation}");
    let s = RuleSet::from_sources(Config::cloudtrail(), [("c.yml", text.as_str())]);
    assert!(s.unsupported().is_empty(), "{:?}", s.unsupported());
    s
}

fn ev(name: &str, secs: u32, user: &str, ip: &str) -> String {
    format!(
        r#"{{"eventName":"{name}","eventTime":"2026-01-01T00:{:02}:{:02}Z","userIdentity":{{"arn":"arn:aws:iam::1:user/{user}"}},"sourceIPAddress":"{ip}"}}"#,
        secs / 60,
        secs % 60
    )
}

fn run(set: &RuleSet, events: &[String]) -> Vec<CorrelationHit> {
    let mut c = Correlator::new();
    let mut hits = Vec::new();
    let mut out = Vec::new();
    for e in events {
        let ev = Event::parse(e).unwrap();
        set.matches(&ev, &mut hits);
        out.extend(c.observe(set, &ev, &hits));
    }
    out
}

#[test]
fn event_count_with_group_by() {
    let s = set(
        "title: Many logins\ncorrelation:\n  type: event_count\n  rules: [login]\n  group-by: [userIdentity.arn]\n  timespan: 5m\n  condition: {gte: 3}\n",
    );
    assert!(!s.rules()[0].emit, "base rules feed the correlation only");
    let alice: Vec<String> = (0..3)
        .map(|i| ev("ConsoleLogin", i * 60, "alice", "1.1.1.1"))
        .collect();
    let hits = run(&s, &alice);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].count, 3);
    assert_eq!(
        hits[0].group,
        [(
            "userIdentity.arn".to_string(),
            "arn:aws:iam::1:user/alice".to_string()
        )]
    );
    assert_eq!(hits[0].last_ms - hits[0].first_ms, 120_000);
    let mixed = [
        ev("ConsoleLogin", 0, "alice", "1.1.1.1"),
        ev("ConsoleLogin", 10, "bob", "1.1.1.1"),
        ev("ConsoleLogin", 20, "alice", "1.1.1.1"),
    ];
    assert!(run(&s, &mixed).is_empty());
    let slow: Vec<String> = (0..3)
        .map(|i| ev("ConsoleLogin", i * 200, "alice", "1.1.1.1"))
        .collect();
    assert!(run(&s, &slow).is_empty(), "not three within five minutes");
}

#[test]
fn value_count_counts_distinct_values() {
    let s = set(
        "title: Logins from many IPs\ncorrelation:\n  type: value_count\n  rules: [login]\n  group-by: [userIdentity.arn]\n  timespan: 10m\n  condition: {field: sourceIPAddress, gt: 2}\n",
    );
    let same_ip: Vec<String> = (0..5)
        .map(|i| ev("ConsoleLogin", i, "alice", "1.1.1.1"))
        .collect();
    assert!(run(&s, &same_ip).is_empty());
    let many: Vec<String> = (0..3)
        .map(|i| ev("ConsoleLogin", i, "alice", &format!("1.1.1.{i}")))
        .collect();
    let hits = run(&s, &many);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].count, 3);
}

#[test]
fn temporal_any_order_and_ordered() {
    let t = set("title: Login and key\ncorrelation:\n  type: temporal\n  rules: [login, key]\n  group-by: [userIdentity.arn]\n  timespan: 5m\n");
    let key_first = [
        ev("CreateAccessKey", 0, "alice", "x"),
        ev("ConsoleLogin", 60, "alice", "x"),
    ];
    assert_eq!(run(&t, &key_first).len(), 1);
    let other_user = [
        ev("CreateAccessKey", 0, "bob", "x"),
        ev("ConsoleLogin", 60, "alice", "x"),
    ];
    assert!(run(&t, &other_user).is_empty());
    let too_far = [
        ev("ConsoleLogin", 0, "alice", "x"),
        ev("CreateAccessKey", 400, "alice", "x"),
    ];
    assert!(run(&t, &too_far).is_empty());

    let o = set("title: Login then key\ncorrelation:\n  type: temporal_ordered\n  rules: [login, key]\n  timespan: 5m\n");
    let in_order = [
        ev("ConsoleLogin", 0, "alice", "x"),
        ev("CreateAccessKey", 60, "alice", "x"),
    ];
    assert_eq!(run(&o, &in_order).len(), 1);
    assert!(run(&o, &key_first).is_empty(), "wrong order");
}

#[test]
fn generate_true_keeps_base_findings() {
    let s = set("title: Many logins\ngenerate: true\ncorrelation:\n  type: event_count\n  rules: [login]\n  timespan: 5m\n  condition: {gte: 2}\n");
    assert!(s.rules()[0].emit);
}

#[test]
fn correlations_that_cannot_run_say_why() {
    let reason = |c: &str| {
        let text = format!("{BASE}---\n{c}");
        let s = RuleSet::from_sources(Config::cloudtrail(), [("c.yml", text.as_str())]);
        assert!(s.correlations().is_empty());
        s.unsupported()[0].reason.clone()
    };
    assert!(reason("title: x\ncorrelation:\n  type: event_count\n  rules: [nope]\n  timespan: 5m\n  condition: {gte: 2}\n").contains("\"nope\""));
    assert!(reason("title: x\ncorrelation:\n  type: event_count\n  rules: [login]\n  timespan: 5m\n  condition: {lt: 2}\n").contains("window closes"));
    assert!(reason("title: x\ncorrelation:\n  type: value_count\n  rules: [login]\n  timespan: 5m\n  condition: {gte: 2}\n").contains("field"));
    assert!(reason("title: x\ncorrelation:\n  type: event_count\n  rules: [login]\n  timespan: 5 minutes\n  condition: {gte: 2}\n").contains("timespan"));
    assert!(reason(
        "title: x\ncorrelation:\n  type: sometimes\n  rules: [login]\n  timespan: 5m\n"
    )
    .contains("unknown correlation type"));
}
