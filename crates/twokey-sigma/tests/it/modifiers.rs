//! One test per Sigma value modifier and per condition form: each rule is
//! tried on records it must match and records it must not.

use std::collections::HashMap;

use twokey_sigma::{Config, Event, RuleSet};

fn rule(detection: &str) -> String {
    let body: String = detection.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "title: t\nid: 00000000-0000-4000-8000-000000000001\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n{body}"
    )
}

fn compile_with(cfg: Config, detection: &str) -> RuleSet {
    let text = rule(detection);
    let set = RuleSet::from_sources(cfg, [("t.yml", text.as_str())]);
    assert!(set.unsupported().is_empty(), "{:?}", set.unsupported());
    set
}

fn check_with(cfg: Config, detection: &str, yes: &[&str], no: &[&str]) {
    let set = compile_with(cfg, detection);
    let mut hits = Vec::new();
    for e in yes {
        set.matches(&Event::parse(e).unwrap(), &mut hits);
        assert_eq!(hits, [0], "should match: {e}\nrule:\n{detection}");
    }
    for e in no {
        set.matches(&Event::parse(e).unwrap(), &mut hits);
        assert!(hits.is_empty(), "should not match: {e}\nrule:\n{detection}");
    }
}

fn check(detection: &str, yes: &[&str], no: &[&str]) {
    check_with(Config::cloudtrail(), detection, yes, no);
}

fn unsupported(detection: &str) -> String {
    let text = rule(detection);
    let set = RuleSet::from_sources(Config::cloudtrail(), [("t.yml", text.as_str())]);
    assert!(set.rules().is_empty());
    set.unsupported()[0].reason.clone()
}

#[test]
fn plain_value_is_whole_and_ignores_case() {
    check(
        "sel:\n  eventName: StopLogging\ncondition: sel",
        &[
            r#"{"eventName":"stoplogging"}"#,
            r#"{"eventName":"STOPLOGGING"}"#,
        ],
        &[
            r#"{"eventName":"StopLoggingNow"}"#,
            r#"{"other":"StopLogging"}"#,
        ],
    );
}

#[test]
fn list_values_are_ored_and_maps_anded() {
    check(
        "sel:\n  eventSource: s3.amazonaws.com\n  eventName: [A, B]\ncondition: sel",
        &[
            r#"{"eventSource":"s3.amazonaws.com","eventName":"A"}"#,
            r#"{"eventSource":"s3.amazonaws.com","eventName":"b"}"#,
        ],
        &[
            r#"{"eventSource":"s3.amazonaws.com","eventName":"C"}"#,
            r#"{"eventSource":"ec2.amazonaws.com","eventName":"A"}"#,
        ],
    );
}

#[test]
fn list_of_maps_is_ored() {
    check(
        "sel:\n  - eventName: A\n  - eventSource: x\ncondition: sel",
        &[r#"{"eventName":"A"}"#, r#"{"eventSource":"x"}"#],
        &[r#"{"eventName":"B","eventSource":"y"}"#],
    );
}

#[test]
fn nested_dotted_fields_and_arrays() {
    check(
        "sel:\n  userIdentity.sessionContext.sessionIssuer.type: Role\ncondition: sel",
        &[r#"{"userIdentity":{"sessionContext":{"sessionIssuer":{"type":"Role"}}}}"#],
        &[r#"{"userIdentity":{"sessionContext":{"type":"Role"}}}"#],
    );
    check(
        "sel:\n  requestParameters.items.name|contains: secret\ncondition: sel",
        &[r#"{"requestParameters":{"items":[{"name":"a"},{"name":"my-secret"}]}}"#],
        &[r#"{"requestParameters":{"items":[{"name":"a"}]}}"#],
    );
}

#[test]
fn wildcards_star_and_question_mark() {
    check(
        "sel:\n  eventName: 'list*'\ncondition: sel",
        &[r#"{"eventName":"ListBuckets"}"#],
        &[r#"{"eventName":"GetList"}"#],
    );
    check(
        "sel:\n  eventName: 'Get?ucket'\ncondition: sel",
        &[r#"{"eventName":"GetBucket"}"#],
        &[r#"{"eventName":"GetBBucket"}"#],
    );
    check(
        r"sel:
  userAgent: 'a\*b'
condition: sel",
        &[r#"{"userAgent":"a*b"}"#],
        &[r#"{"userAgent":"axb"}"#],
    );
}

#[test]
fn null_matches_missing_or_null() {
    check(
        "sel:\n  errorCode: null\ncondition: sel",
        &[r#"{"a":1}"#, r#"{"errorCode":null}"#],
        &[r#"{"errorCode":"AccessDenied"}"#, r#"{"errorCode":""}"#],
    );
}

#[test]
fn numbers_and_booleans_compare_as_text() {
    check(
        "sel:\n  responseElements.publiclyAccessible: 'true'\n  n: 42\ncondition: sel",
        &[r#"{"responseElements":{"publiclyAccessible":true},"n":42}"#],
        &[r#"{"responseElements":{"publiclyAccessible":false},"n":42}"#],
    );
}

#[test]
fn contains_startswith_endswith() {
    check(
        "sel:\n  userAgent|contains: TruffleHog\ncondition: sel",
        &[r#"{"userAgent":"x trufflehog/3.1"}"#],
        &[r#"{"userAgent":"aws-cli"}"#],
    );
    check(
        "sel:\n  eventName|startswith: Update\ncondition: sel",
        &[r#"{"eventName":"updateTrail"}"#],
        &[r#"{"eventName":"PutUpdate"}"#],
    );
    check(
        "sel:\n  eventName|endswith: Trail\ncondition: sel",
        &[r#"{"eventName":"DeleteTRAIL"}"#],
        &[r#"{"eventName":"TrailDelete"}"#],
    );
}

#[test]
fn contains_on_an_object_searches_its_scalars() {
    check(
        "sel:\n  requestParameters|contains: Suspended\ncondition: sel",
        &[
            r#"{"requestParameters":{"VersioningConfiguration":{"Status":"Suspended"}}}"#,
            r#"{"requestParameters":{"list":["x","suspended"]}}"#,
        ],
        &[
            r#"{"requestParameters":{"Suspended":"Enabled"}}"#,
            r#"{"a":"Suspended"}"#,
        ],
    );
    // A JSON policy held as a string is searched decoded.
    check(
        "sel:\n  requestParameters|contains|all:\n    - '\"s3:GetObject\"'\n    - '\"Allow\"'\ncondition: sel",
        &[r#"{"requestParameters":{"policyDocument":"{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\"}"}}"#],
        &[r#"{"requestParameters":{"policyDocument":"{\"Effect\":\"Deny\",\"Action\":\"s3:GetObject\"}"}}"#],
    );
}

#[test]
fn lone_wildcard_matches_any_non_null_value() {
    check(
        "sel:\n  requestParameters.layers|contains: '*'\ncondition: sel",
        &[
            r#"{"requestParameters":{"layers":["arn"]}}"#,
            r#"{"requestParameters":{"layers":[]}}"#,
            r#"{"requestParameters":{"layers":""}}"#,
        ],
        &[
            r#"{"requestParameters":{"layers":null}}"#,
            r#"{"requestParameters":{}}"#,
        ],
    );
}

#[test]
fn all_requires_every_value() {
    check(
        "sel:\n  userAgent|contains|all: [a, b]\ncondition: sel",
        &[r#"{"userAgent":"xaybz"}"#],
        &[r#"{"userAgent":"xa"}"#],
    );
}

#[test]
fn re_with_flags() {
    check(
        "sel:\n  userIdentity.arn|re: '.+:assumed-role/aws:.+'\ncondition: sel",
        &[r#"{"userIdentity":{"arn":"arn:aws:sts::1:assumed-role/aws:ec2-instance/i-1"}}"#],
        &[r#"{"userIdentity":{"arn":"arn:aws:sts::1:ASSUMED-ROLE/aws:x"}}"#],
    );
    check(
        "sel:\n  a|re|i: '^abc$'\ncondition: sel",
        &[r#"{"a":"ABC"}"#],
        &[r#"{"a":"xabc"}"#],
    );
    check(
        "sel:\n  a|re|m: '^two$'\ncondition: sel",
        &[r#"{"a":"one\ntwo"}"#],
        &[r#"{"a":"one two"}"#],
    );
    check(
        "sel:\n  a|re|s: 'one.two'\ncondition: sel",
        &[r#"{"a":"one\ntwo"}"#],
        &[r#"{"a":"one\n\ntwo"}"#],
    );
    assert!(unsupported("sel:\n  a|re: '(?<=x)y'\ncondition: sel").contains("regular expression"));
}

#[test]
fn exists() {
    check(
        "sel:\n  errorCode|exists: true\ncondition: sel",
        &[r#"{"errorCode":"X"}"#, r#"{"errorCode":""}"#],
        &[r#"{"a":1}"#, r#"{"errorCode":null}"#],
    );
    check(
        "sel:\n  errorCode|exists: false\ncondition: sel",
        &[r#"{"a":1}"#],
        &[r#"{"errorCode":"X"}"#],
    );
}

#[test]
fn cidr() {
    check(
        "sel:\n  sourceIPAddress|cidr:\n    - 10.0.0.0/8\n    - '2001:db8::/32'\ncondition: sel",
        &[
            r#"{"sourceIPAddress":"10.1.2.3"}"#,
            r#"{"sourceIPAddress":"2001:db8::1"}"#,
        ],
        &[
            r#"{"sourceIPAddress":"11.0.0.1"}"#,
            r#"{"sourceIPAddress":"AWS Internal"}"#,
            r#"{"sourceIPAddress":"ec2.amazonaws.com"}"#,
        ],
    );
}

#[test]
fn cased() {
    check(
        "sel:\n  eventName|cased: StopLogging\ncondition: sel",
        &[r#"{"eventName":"StopLogging"}"#],
        &[r#"{"eventName":"stoplogging"}"#],
    );
    check(
        "sel:\n  a|contains|cased: Ab\ncondition: sel",
        &[r#"{"a":"xAby"}"#],
        &[r#"{"a":"xaby"}"#],
    );
}

#[test]
fn neq() {
    check(
        "sel:\n  eventType|neq: AwsServiceEvent\ncondition: sel",
        &[r#"{"eventType":"AwsApiCall"}"#],
        // As in SQL, a missing field matches neither the value nor neq.
        &[r#"{"eventType":"awsserviceevent"}"#, r#"{"a":1}"#],
    );
    check(
        "sel:\n  eventName|neq: [A, B]\ncondition: sel",
        &[r#"{"eventName":"C"}"#],
        &[r#"{"eventName":"A"}"#, r#"{"eventName":"B"}"#],
    );
}

#[test]
fn numeric_comparisons() {
    for (m, yes, no) in [
        ("lt", "9", "10"),
        ("lte", "10", "11"),
        ("gt", "11", "10"),
        ("gte", "10", "9"),
    ] {
        check(
            &format!("sel:\n  n|{m}: 10\ncondition: sel"),
            &[&format!(r#"{{"n":{yes}}}"#), &format!(r#"{{"n":"{yes}"}}"#)],
            &[&format!(r#"{{"n":{no}}}"#), r#"{"n":"ten"}"#, r#"{"m":1}"#],
        );
    }
    assert!(unsupported("sel:\n  n|gt: ten\ncondition: sel").contains("number"));
}

#[test]
fn base64_and_base64offset() {
    // "secret" in base64 is c2VjcmV0.
    check(
        "sel:\n  a|base64: secret\ncondition: sel",
        &[r#"{"a":"c2VjcmV0"}"#],
        &[r#"{"a":"secret"}"#],
    );
    // The value at each offset inside a longer encoded text.
    let encoded = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let yes: Vec<String> = ["secret..", "x secret yy", "ab secret z"]
        .iter()
        .map(|s| format!(r#"{{"a":"{}"}}"#, encoded(s)))
        .collect();
    let yes: Vec<&str> = yes.iter().map(String::as_str).collect();
    let no = format!(r#"{{"a":"{}"}}"#, encoded("public data"));
    check(
        "sel:\n  a|base64offset|contains: secret\ncondition: sel",
        &yes,
        &[&no],
    );
}

#[test]
fn windash() {
    check(
        "sel:\n  cmd|windash|contains: ' -force'\ncondition: sel",
        &[
            r#"{"cmd":"run -force"}"#,
            r#"{"cmd":"run /force"}"#,
            "{\"cmd\":\"run \u{2013}force\"}",
            "{\"cmd\":\"run \u{2014}force\"}",
            "{\"cmd\":\"run \u{2015}force\"}",
        ],
        &[r#"{"cmd":"run force"}"#],
    );
}

#[test]
fn expand_uses_the_placeholder_config() {
    let mut cfg = Config::cloudtrail();
    cfg.placeholders
        .insert("admins".into(), vec!["alice".into(), "bob".into()]);
    check_with(
        cfg,
        "sel:\n  userIdentity.userName|expand: '%admins%'\ncondition: sel",
        &[
            r#"{"userIdentity":{"userName":"Alice"}}"#,
            r#"{"userIdentity":{"userName":"bob"}}"#,
        ],
        &[r#"{"userIdentity":{"userName":"carol"}}"#],
    );
    assert!(unsupported("sel:\n  a|expand: '%nobody%'\ncondition: sel")
        .contains("placeholder %nobody%"));
}

#[test]
fn fieldref() {
    check(
        "sel:\n  userIdentity.userName|fieldref: requestParameters.userName\ncondition: sel",
        &[r#"{"userIdentity":{"userName":"Alice"},"requestParameters":{"userName":"alice"}}"#],
        &[
            r#"{"userIdentity":{"userName":"alice"},"requestParameters":{"userName":"bob"}}"#,
            r#"{"userIdentity":{"userName":"alice"}}"#,
        ],
    );
    check(
        "sel:\n  userIdentity.arn|fieldref|endswith: requestParameters.userName\ncondition: sel",
        &[
            r#"{"userIdentity":{"arn":"arn:aws:iam::1:user/alice"},"requestParameters":{"userName":"alice"}}"#,
        ],
        &[
            r#"{"userIdentity":{"arn":"arn:aws:iam::1:user/alice"},"requestParameters":{"userName":"bob"}}"#,
        ],
    );
}

#[test]
fn keywords_search_every_value() {
    check(
        "keywords:\n  - trufflehog\n  - 'evil*tool'\ncondition: keywords",
        &[
            r#"{"userAgent":"TruffleHog v3"}"#,
            r#"{"a":{"b":["x","an EVIL hacking tool!"]}}"#,
        ],
        &[r#"{"truffle":"hog"}"#],
    );
}

#[test]
fn field_mapping_status_and_src_ip() {
    check(
        "sel:\n  status: success\n  src_ip|cidr: 10.0.0.0/8\ncondition: sel",
        &[r#"{"sourceIPAddress":"10.0.0.1"}"#],
        &[
            r#"{"sourceIPAddress":"10.0.0.1","errorCode":"AccessDenied"}"#,
            r#"{"sourceIPAddress":"8.8.8.8"}"#,
        ],
    );
    check(
        "sel:\n  status: failure\ncondition: sel",
        &[r#"{"errorCode":"AccessDenied"}"#],
        &[r#"{"errorCode":null}"#],
    );
    let cfg = Config::from_yaml("fields:\n  actor: userIdentity.arn\n").unwrap();
    check_with(
        cfg,
        "sel:\n  actor|endswith: /alice\ncondition: sel",
        &[r#"{"userIdentity":{"arn":"arn:aws:iam::1:user/alice"}}"#],
        &[r#"{"userIdentity":{"arn":"arn:aws:iam::1:user/bob"}}"#],
    );
}

// ---- condition forms ----

const AB: &str = "a:\n  x: '1'\nb:\n  y: '1'\n";

#[test]
fn condition_and_or_not() {
    check(
        &format!("{AB}condition: a and b"),
        &[r#"{"x":"1","y":"1"}"#],
        &[r#"{"x":"1"}"#, r#"{"y":"1"}"#],
    );
    check(
        &format!("{AB}condition: a or b"),
        &[r#"{"x":"1"}"#, r#"{"y":"1"}"#],
        &[r#"{"z":"1"}"#],
    );
    check(
        &format!("{AB}condition: a and not b"),
        &[r#"{"x":"1"}"#],
        &[r#"{"x":"1","y":"1"}"#],
    );
}

#[test]
fn condition_parentheses() {
    let det = "a:\n  x: '1'\nb:\n  y: '1'\nc:\n  z: '1'\n";
    check(
        &format!("{det}condition: a and (b or c)"),
        &[r#"{"x":"1","z":"1"}"#],
        &[r#"{"z":"1"}"#],
    );
    check(
        &format!("{det}condition: not (a or b) and c"),
        &[r#"{"z":"1"}"#],
        &[r#"{"z":"1","x":"1"}"#],
    );
}

#[test]
fn condition_one_of_and_all_of_patterns() {
    let det = "sel_a:\n  x: '1'\nsel_b:\n  y: '1'\nfilter:\n  z: '1'\n";
    check(
        &format!("{det}condition: 1 of sel_* and not filter"),
        &[r#"{"x":"1"}"#, r#"{"y":"1"}"#],
        &[r#"{"x":"1","z":"1"}"#, r#"{"q":"1"}"#],
    );
    check(
        &format!("{det}condition: all of sel_*"),
        &[r#"{"x":"1","y":"1"}"#],
        &[r#"{"x":"1"}"#],
    );
}

#[test]
fn condition_them() {
    let det = "a:\n  x: '1'\nb:\n  y: '1'\n_hidden:\n  z: '1'\n";
    check(
        &format!("{det}condition: all of them"),
        &[r#"{"x":"1","y":"1"}"#],
        &[r#"{"x":"1"}"#],
    );
    check(
        &format!("{det}condition: 1 of them"),
        &[r#"{"y":"1"}"#],
        // Identifiers starting with _ are not part of `them`.
        &[r#"{"z":"1"}"#],
    );
}

#[test]
fn condition_list_is_ored() {
    check(
        &format!("{AB}condition:\n  - a\n  - b"),
        &[r#"{"x":"1"}"#, r#"{"y":"1"}"#],
        &[r#"{"z":"1"}"#],
    );
}

#[test]
fn unsupported_rules_say_why() {
    assert!(unsupported("sel:\n  a: 1\ncondition: sel | count() > 5").contains("correlation"));
    assert!(unsupported("sel:\n  a: 1\ncondition: nope").contains("unknown search identifier"));
    assert!(unsupported("sel:\n  a|bogus: 1\ncondition: sel").contains("unknown modifier"));
    assert!(unsupported("sel:\n  a|wide|base64: x\ncondition: sel").contains("UTF-16"));
    assert!(unsupported("sel:\n  a: 1\ncondition: 1 of x*").contains("no search identifier"));
    let azure = "title: t\nlogsource: {product: azure, service: signinlogs}\ndetection:\n  s:\n    a: 1\n  condition: s\n";
    let set = RuleSet::from_sources(Config::cloudtrail(), [("az.yml", azure)]);
    assert!(set.unsupported()[0].reason.contains("product=azure"));
    let set = RuleSet::from_sources(Config::cloudtrail(), [("bad.yml", "title: [unclosed")]);
    assert!(set.unsupported()[0].reason.contains("YAML"));
}

#[test]
fn rules_are_only_tried_on_their_event_names_without_changing_results() {
    // Two rules, one indexed by eventName, one not; results are the same as
    // evaluating each rule alone.
    let a = rule("sel:\n  eventName: [A, B]\n  x: '1'\ncondition: sel");
    let b = rule("sel:\n  x: '1'\ncondition: sel").replace("0001", "0002");
    let set = RuleSet::from_sources(
        Config::cloudtrail(),
        [("a.yml", a.as_str()), ("b.yml", b.as_str())],
    );
    let mut hits = Vec::new();
    let expect: HashMap<&str, Vec<usize>> = [
        (r#"{"eventName":"a","x":"1"}"#, vec![0, 1]),
        (r#"{"eventName":"C","x":"1"}"#, vec![1]),
        (r#"{"x":"1"}"#, vec![1]),
        (r#"{"eventName":"B"}"#, vec![]),
    ]
    .into_iter()
    .collect();
    for (e, want) in expect {
        let ev = Event::parse(e).unwrap();
        set.matches(&ev, &mut hits);
        assert_eq!(hits, want, "{e}");
        for (i, r) in set.rules().iter().enumerate() {
            assert_eq!(r.matches(&ev), want.contains(&i));
        }
    }
}
