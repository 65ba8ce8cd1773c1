//! `Policy::parse`: a valid policy parses, and every mistake a person can make
//! is reported with the 1-based line where it is and a message that says what
//! to change.

use twokey_core::policy::{policy_hash, Policy};
use twokey_core::IdentityKey;

const FILE: &str = "policy.toml";

/// Identities shared by most cases: alice requests (eng), bob and carol approve.
const PEOPLE: &str = r#"
max_grant = "8h"

[admins]
groups = ["platform"]
approvals = 1

[[identity]]
name = "alice"
email = "alice@example.com"
groups = ["eng"]

[[identity]]
name = "bob"
groups = ["approvers", "platform"]

[[identity]]
name = "carol"
groups = ["approvers", "platform", "ops"]
"#;

/// An entitlement that is valid with `PEOPLE`; cases replace one line of it.
const DEMO: &str = r#"
[[entitlement]]
name = "demo"
description = "the demo file"
provider = "exec"
requester_groups = ["eng"]
default_duration = "30m"
max_duration = "1h"
pending_timeout = "1h"
reason_required = true
ticket_pattern = "^INC-[0-9]+$"
break_glass = true
approval = { count = 1, from = ["approvers"] }
[entitlement.target]
grant = "touch demo"
"#;

fn valid() -> String {
    format!("{PEOPLE}{DEMO}")
}

/// `valid()` with the line starting with `key =` in the demo entitlement
/// replaced by `line` (or removed when `line` is empty).
fn demo_with(key: &str, line: &str) -> String {
    let prefix = format!("{key} =");
    assert!(
        DEMO.lines().any(|l| l.starts_with(&prefix)),
        "no {key} line in DEMO"
    );
    let demo: Vec<&str> = DEMO
        .lines()
        .map(|l| if l.starts_with(&prefix) { line } else { l })
        .collect();
    format!("{PEOPLE}{}\n", demo.join("\n"))
}

/// The 1-based line of the only line containing `#HERE`.
fn marked_line(text: &str) -> usize {
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("#HERE"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "exactly one #HERE marker expected in:\n{text}"
    );
    hits[0]
}

fn issues(text: &str) -> Vec<(usize, String)> {
    match Policy::parse(text, FILE) {
        Ok(_) => panic!("expected the policy to be refused:\n{text}"),
        Err(e) => {
            for i in &e.issues {
                assert_eq!(i.file, FILE);
            }
            e.issues.into_iter().map(|i| (i.line, i.message)).collect()
        }
    }
}

#[test]
fn a_valid_policy_parses() {
    let p = Policy::parse(&valid(), FILE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.hash, policy_hash(&valid()));
    assert_eq!(p.admins.groups, vec!["platform".to_string()]);
    assert_eq!(p.admins.approvals, 1);
    assert_eq!(p.identities.len(), 3);
    let alice = p.identity("alice").unwrap();
    assert_eq!(alice.key, IdentityKey::local("alice"));
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    for g in ["eng", "approvers", "platform", "ops"] {
        assert!(p.groups.contains(g), "group {g} should be known");
    }
    let demo = p.entitlement("demo").unwrap();
    assert_eq!(demo.provider, "exec");
    assert_eq!(demo.description, "the demo file");
    assert_eq!(demo.default_duration_ms, 30 * 60 * 1000);
    assert_eq!(demo.max_duration_ms, 3600 * 1000);
    assert_eq!(demo.pending_timeout_ms, 3600 * 1000);
    assert!(demo.reason_required);
    assert!(demo.break_glass);
    assert_eq!(
        demo.ticket_pattern.as_ref().map(|p| p.as_str()),
        Some("^INC-[0-9]+$")
    );
    assert_eq!(demo.approval.count, 1);
    assert_eq!(demo.approval.from, vec!["approvers".to_string()]);
    assert!(!demo.approval.exclude_requester_groups);
    assert_eq!(
        demo.target.get("grant").and_then(|v| v.as_str()),
        Some("touch demo")
    );
    assert_eq!(
        demo.line,
        marked_line(&valid().replace("[[entitlement]]", "[[entitlement]] #HERE"))
    );
    assert_eq!(
        demo.target_line,
        marked_line(&valid().replace("[entitlement.target]", "#HERE"))
    );
    assert!(demo.may_request(&alice.actor()));
    assert!(!demo.may_request(&p.identity("bob").unwrap().actor()));
    assert!(p.is_admin(&p.identity("bob").unwrap().actor()));
    assert!(!p.is_admin(&alice.actor()));
}

#[test]
fn defaults_apply_when_optional_keys_are_missing() {
    let text = demo_with("default_duration", "");
    let text = text.replace("pending_timeout = \"1h\"\n", "");
    let p = Policy::parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    let demo = p.entitlement("demo").unwrap();
    assert_eq!(
        demo.default_duration_ms, demo.max_duration_ms,
        "default is the maximum"
    );
    assert_eq!(demo.pending_timeout_ms, 24 * 3600 * 1000);
}

/// One refused policy: the text (with a `#HERE` marker on the line the issue
/// must point at, unless `line` is given) and words the message must contain.
struct Case {
    name: &'static str,
    text: String,
    line: Option<usize>,
    must_say: &'static [&'static str],
}

fn case(name: &'static str, text: String, must_say: &'static [&'static str]) -> Case {
    Case {
        name,
        text,
        line: None,
        must_say,
    }
}

/// Two approvers in `approvers`, alice among them and allowed to request.
fn alice_is_also_an_approver(approval: &str) -> String {
    format!(
        r#"
[[identity]]
name = "alice"
groups = ["eng", "approvers"]

[[identity]]
name = "bob"
groups = ["approvers"]

[[entitlement]]
name = "demo"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
{approval}
"#
    )
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "unknown approver group",
            demo_with("approval", r#"approval = { count = 1, from = ["aprovers"] } #HERE"#),
            &["demo", "unknown approver group \"aprovers\"", "known: ", "approvers"],
        ),
        case(
            "unknown requester group",
            demo_with("requester_groups", r#"requester_groups = ["engg"] #HERE"#),
            &["demo", "unknown requester group \"engg\"", "known: ", "eng"],
        ),
        case(
            "unknown identity",
            demo_with("requester_groups", r#"requester_identities = ["alicia"] #HERE"#),
            &["demo", "unknown identity \"alicia\""],
        ),
        case(
            "nobody may request",
            demo_with("requester_groups", "").replace("name = \"demo\"", "name = \"demo\" #HERE"),
            &["demo", "nobody may request it", "requester_groups or requester_identities"],
        ),
        case(
            "default_duration over max_duration",
            demo_with("default_duration", r#"default_duration = "2h" #HERE"#),
            &["demo", "default_duration 2h is over its max_duration 1h"],
        ),
        case(
            "max_duration over max_grant",
            demo_with("max_duration", r#"max_duration = "10h" #HERE"#),
            &["demo", "max_duration 10h is over the policy's max_grant 8h"],
        ),
        case(
            "invalid max_duration",
            demo_with("max_duration", r#"max_duration = "an hour" #HERE"#),
            &["demo", "max_duration", "invalid duration \"an hour\"", "e.g. 30m"],
        ),
        case(
            "invalid pending_timeout",
            demo_with("pending_timeout", r#"pending_timeout = "1 fortnight" #HERE"#),
            &["demo", "pending_timeout", "invalid duration"],
        ),
        case(
            "zero default_duration",
            demo_with("default_duration", r#"default_duration = "0s" #HERE"#),
            &["demo", "default_duration must be longer than zero"],
        ),
        case(
            "invalid max_grant",
            valid().replace(r#"max_grant = "8h""#, r#"max_grant = "forever" #HERE"#),
            &["max_grant", "invalid duration \"forever\""],
        ),
        case(
            "bad ticket regex",
            demo_with("ticket_pattern", r#"ticket_pattern = "^INC-[0-9+$" #HERE"#),
            &["demo", "ticket_pattern is not a valid regex"],
        ),
        case(
            "approval count 0",
            demo_with("approval", r#"approval = { count = 0, from = ["approvers"] } #HERE"#),
            &["demo", "approval.count must be at least 1", "break_glass"],
        ),
        case(
            "approval from no group",
            demo_with("approval", r#"approval = { count = 1, from = [] } #HERE"#),
            &["demo", "approval.from names no approver group"],
        ),
        case(
            "2 approvals but only 1 eligible approver besides the requester",
            alice_is_also_an_approver(r#"approval = { count = 2, from = ["approvers"] } #HERE"#),
            &[
                "entitlement \"demo\" requires 2 approval(s) from approvers",
                "request by \"alice\" has only 1 eligible approver(s) besides the requester (bob)",
            ],
        ),
        case(
            "exclude_requester_groups leaves too few approvers",
            demo_with(
                "approval",
                r#"approval = { count = 2, from = ["approvers"], exclude_requester_groups = true } #HERE"#,
            )
            // bob shares alice's team.
            .replace(r#"groups = ["approvers", "platform"]"#, r#"groups = ["approvers", "platform", "eng"]"#),
            &["requires 2 approval(s)", "request by \"alice\" has only 1 eligible approver(s)", "(carol)"],
        ),
        case(
            "more approvals than approvers",
            demo_with("approval", r#"approval = { count = 3, from = ["approvers"] } #HERE"#),
            &["requires 3 approval(s)", "only 2 eligible approver(s)", "(bob, carol)"],
        ),
        case(
            "duplicate entitlement",
            format!("{}{}", valid(), DEMO.replace("name = \"demo\"", "name = \"demo\" #HERE")),
            &["entitlement \"demo\" is declared twice"],
        ),
        case(
            "bad entitlement name",
            demo_with("description", "").replace("name = \"demo\"", "name = \"demo db\" #HERE"),
            &["entitlement name \"demo db\"", "letters, digits"],
        ),
        case(
            "identity declared twice",
            valid().replacen("name = \"bob\"", "name = \"alice\" #HERE", 1),
            &["identity \"alice\" is declared twice"],
        ),
        case(
            "identity key reused",
            valid().replacen(
                "name = \"bob\"",
                "name = \"bob\" #HERE\nsubject = \"alice\"",
                1,
            ),
            &["identity \"bob\" has the same issuer and subject (twokey|alice)"],
        ),
        case(
            "identity impersonating the scheduler",
            valid().replacen("name = \"bob\"", "name = \"system\" #HERE", 1),
            &["\"system\"", "reserved"],
        ),
        case(
            "admin rule with too few admins",
            valid()
                .replace("[admins]", "[admins] #HERE")
                .replace("approvals = 1", "approvals = 2"),
            &["admins", "proposer plus 2 other admin(s)", "only 2 member(s)"],
        ),
        case(
            "admin approvals 0",
            valid().replace("[admins]", "[admins] #HERE").replace("approvals = 1", "approvals = 0"),
            &["admins.approvals must be at least 1", "two-person"],
        ),
        case(
            "unknown admin group",
            valid().replace(r#"groups = ["platform"]"#, "groups = [\n  \"platfrom\", #HERE\n]"),
            &["admins: unknown group \"platfrom\"", "known: "],
        ),
        case(
            "unknown key in an entitlement",
            demo_with("requester_groups", r#"requester_group = ["eng"] #HERE"#),
            &["unknown field `requester_group`", "requester_groups"],
        ),
        case(
            "unknown key in the approval rule",
            demo_with("approval", r#"approval = { count = 1, form = ["approvers"] } #HERE"#),
            &["unknown field `form`"],
        ),
        case(
            "unknown top-level key",
            valid().replace(r#"max_grant = "8h""#, "max_grant = \"8h\"\nmax_grnat = \"1h\" #HERE"),
            &["unknown field `max_grnat`"],
        ),
        case(
            "missing required key",
            demo_with("max_duration", "").replace("[[entitlement]]", "[[entitlement]] #HERE"),
            &["missing field `max_duration`"],
        ),
        Case {
            name: "TOML syntax error",
            text: demo_with("description", "description = \"the demo file"),
            // The unterminated string is on the line after `name = "demo"`.
            line: Some(PEOPLE.lines().count() + 4),
            must_say: &["string"],
        },
        Case {
            name: "TOML syntax error: duplicate key",
            text: demo_with("provider", "provider = \"exec\"\nprovider = \"postgres\""),
            // The second `provider` line.
            line: Some(PEOPLE.lines().count() + 6),
            must_say: &["duplicate key `provider`"],
        },
    ]
}

#[test]
fn each_mistake_is_reported_with_its_line_and_an_actionable_message() {
    let mut failures = Vec::new();
    for c in cases() {
        let want_line = c.line.unwrap_or_else(|| marked_line(&c.text));
        let got: Vec<(usize, String)> = match Policy::parse(&c.text, FILE) {
            Ok(_) => {
                failures.push(format!("{}: the policy was accepted", c.name));
                continue;
            }
            Err(e) => e.issues.into_iter().map(|i| (i.line, i.message)).collect(),
        };
        let hit = got
            .iter()
            .find(|(line, msg)| *line == want_line && c.must_say.iter().all(|s| msg.contains(s)));
        if hit.is_none() {
            failures.push(format!(
                "{}: want line {want_line} saying {:?}; got {got:?}",
                c.name, c.must_say
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn several_issues_are_reported_at_once_in_file_order() {
    let text = format!(
        r#"{PEOPLE}
[[entitlement]]
name = "a"
provider = "exec"
requester_groups = ["engg"]
max_duration = "1h"
approval = {{ count = 1, from = ["approvers"] }}

[[entitlement]]
name = "b"
provider = "exec"
requester_groups = ["eng"]
default_duration = "2h"
max_duration = "1h"
approval = {{ count = 0, from = ["nobody"] }}
"#
    );
    let got = issues(&text);
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let want = [
        (line_of("[\"engg\"]"), "unknown requester group \"engg\""),
        (
            line_of("default_duration = \"2h\""),
            "default_duration 2h is over",
        ),
        (line_of("count = 0"), "approval.count must be at least 1"),
        (line_of("count = 0"), "unknown approver group \"nobody\""),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (line, needle) in want {
        assert!(
            got.iter().any(|(l, m)| *l == line && m.contains(needle)),
            "missing {needle:?} at line {line} in {got:?}"
        );
    }
    let lines: Vec<usize> = got.iter().map(|(l, _)| *l).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "issues come in file order");

    let err = Policy::parse(&text, FILE).unwrap_err();
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 4);
    assert!(
        shown.starts_with(&format!("{FILE}:{}: ", line_of("[\"engg\"]"))),
        "{shown}"
    );
}

#[test]
fn policy_hash_is_stable_and_changes_with_the_text() {
    let a = Policy::parse(&valid(), FILE).unwrap();
    let b = Policy::parse(&valid(), "elsewhere.toml").unwrap();
    assert_eq!(
        a.hash, b.hash,
        "same text, same hash, whatever the file name"
    );
    assert_eq!(a.hash.len(), 64);
    assert!(a.hash.chars().all(|c| c.is_ascii_hexdigit()));
    // SHA-256 of the exact text, so anyone can recompute it.
    assert_eq!(
        policy_hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let changed = valid().replace("max_duration = \"1h\"", "max_duration = \"2h\"");
    let c = Policy::parse(&changed, FILE).unwrap();
    assert_ne!(a.hash, c.hash);
    let comment_only = format!("{}# a comment\n", valid());
    assert_ne!(a.hash, Policy::parse(&comment_only, FILE).unwrap().hash);
    assert_eq!(a.text, valid());
}

#[test]
fn policies_without_static_identities_skip_the_meetability_check() {
    // SSO members are unknown until they log in: only the groups must exist.
    let text = r#"
groups = ["eng", "dba"]
[[entitlement]]
name = "prod-db"
provider = "postgres"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 3, from = ["dba"], exclude_requester_groups = true }
"#;
    let p = Policy::parse(text, FILE).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        p.entitlement("prod-db")
            .unwrap()
            .approval
            .exclude_requester_groups
    );
}

#[test]
fn durations_read_like_people_write_them() {
    use twokey_core::time::{format_duration, parse_duration};
    assert_eq!(parse_duration("30m"), Ok(30 * 60 * 1000));
    assert_eq!(parse_duration(" 1h "), Ok(3600 * 1000));
    assert_eq!(parse_duration("1h30m"), Ok(90 * 60 * 1000));
    assert_eq!(parse_duration("90s"), Ok(90 * 1000));
    let err = parse_duration("soon").unwrap_err();
    assert!(
        err.contains("invalid duration \"soon\"") && err.contains("e.g. 30m"),
        "{err}"
    );
    assert_eq!(format_duration(90 * 60 * 1000), "1h 30m");
    assert_eq!(format_duration(-5), "0s");
}
