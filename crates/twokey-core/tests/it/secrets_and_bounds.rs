//! Credentials never leave the policy in a view, inline ones are warned
//! about with their line, references resolve; free text is bounded; who may
//! read a request is the core's rule.

use std::collections::BTreeSet;

use twokey_core::policy::Limits;
use twokey_core::request::{check_text, may_read};
use twokey_core::secret::{
    credential_changes, inline_credentials, redact_table, redact_text, resolve_references,
    CredentialChange, Reference, Secret,
};
use twokey_core::{Actor, IdentityKey, NewRequest, Policy, ReviewDecision};

const PASSWORD: &str = "hunter2-s3cr3t";

fn policy_text(password: &str, extra: &str) -> String {
    format!(
        r#"[admins]
groups = ["admins"]

[auditors]
groups = ["audit"]
identities = ["erin"]

[limits]
reason = 20
comment = 30

[[identity]]
name = "alice"
groups = ["eng"]

[[identity]]
name = "bob"
groups = ["dba", "admins"]

[[identity]]
name = "carol"
groups = ["admins"]

[[identity]]
name = "dave"
groups = ["audit"]

[[identity]]
name = "erin"
groups = []

[[identity]]
name = "mallory"
groups = ["eng"]

[[entitlement]]
name = "prod-db"
provider = "postgres"
requester_groups = ["eng"]
max_duration = "1h"
approval = {{ count = 1, from = ["dba"] }}
# the admin is postgres://admin:{password}@db.internal/app
[entitlement.target]
url = "postgres://admin:{password}@db.internal:5432/app"
mode = "login"
api_token = "{password}"
{extra}
"#
    )
}

#[test]
fn every_view_of_the_policy_hides_credentials() {
    let text = policy_text(PASSWORD, r#"env = { DB_PASSWORD = "hunter2-s3cr3t" }"#);
    let p = Policy::parse(&text, "policy.toml").unwrap();
    let shown = p.redacted_text();
    assert_eq!(shown, redact_text(&text));
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(shown.contains(r#"url = "postgres://admin:***@db.internal:5432/app""#));
    assert!(shown.contains(r#"api_token = "***""#));
    assert!(shown.contains("# the admin is postgres://admin:***@db.internal/app"));
    assert!(shown.contains(r#"mode = "login""#), "the rest is unchanged");
    let json = serde_json::to_string(&p.redacted_entitlements()).unwrap();
    assert!(!json.contains(PASSWORD), "{json}");
    assert!(json.contains("postgres://admin:***@db.internal:5432/app"));
    assert_eq!(
        twokey_core::secret::redact_url_passwords(
            "postgres:///app?host=/run&password=pw2&sslmode=off"
        ),
        Some("postgres:///app?host=/run&password=***&sslmode=off".to_string())
    );
    assert_eq!(
        twokey_core::secret::redact_url_passwords("https://h/x?a=b"),
        None
    );
    let t = redact_table(&p.entitlements["prod-db"].target);
    assert_eq!(t["env"]["DB_PASSWORD"].as_str(), Some("***"));
}

#[test]
fn inline_credentials_are_warned_about_with_their_line() {
    let text = policy_text(PASSWORD, "");
    let w = inline_credentials(&text, "policy.toml");
    let lines: Vec<usize> = w.iter().map(|i| i.line).collect();
    let url_line = text.lines().position(|l| l.starts_with("url =")).unwrap() + 1;
    let tok_line = text
        .lines()
        .position(|l| l.starts_with("api_token"))
        .unwrap()
        + 1;
    assert_eq!(lines, vec![url_line, tok_line], "{w:?}");
    assert!(w[0]
        .to_string()
        .starts_with(&format!("policy.toml:{url_line}: warning:")));
    assert!(w[0].message.contains("url_env"), "{}", w[0].message);
    assert!(w.iter().all(|i| !i.message.contains(PASSWORD)));
    let clean = "[x]\nurl_env = \"PG_URL\"\nurl2 = \"postgres://admin@h/db\"\n";
    assert!(inline_credentials(clean, "p.toml").is_empty());
}

#[test]
fn a_changed_credential_shows_as_changed_never_its_value() {
    let before = policy_text(PASSWORD, "");
    let after = policy_text("another-one", "password = \"x\"");
    let c = credential_changes(&before, &after);
    assert_eq!(
        c.get("entitlement[prod-db].target.url"),
        Some(&CredentialChange::Changed)
    );
    assert_eq!(
        c.get("entitlement[prod-db].target.password"),
        Some(&CredentialChange::Added)
    );
    assert!(credential_changes(&before, &before).is_empty());
    let json = serde_json::to_string(&c).unwrap();
    assert!(!json.contains(PASSWORD) && !json.contains("another-one"));
}

#[test]
fn references_resolve_and_mistakes_name_the_setting() {
    let mut t: toml::Table = toml::from_str(
        "url_env = \"PG\"\n[email]\npassword_file = \"/run/pw\"\nkey_file = \"k\"\n",
    )
    .unwrap();
    let mut read = |r: &Reference| match r {
        Reference::Env(n) if n == "PG" => Ok("postgres://a:b@h/d".to_string()),
        Reference::File(f) if f == "/run/pw" => Ok("pw".to_string()),
        other => Err(format!("{other:?} is not there")),
    };
    resolve_references(&mut t, "twokey.toml", &mut read).unwrap();
    assert_eq!(t["url"].as_str(), Some("postgres://a:b@h/d"));
    assert_eq!(t["email"]["password"].as_str(), Some("pw"));
    assert_eq!(
        t["email"]["key_file"].as_str(),
        Some("k"),
        "not a credential: untouched"
    );

    let mut both: toml::Table = toml::from_str("token = \"a\"\ntoken_env = \"T\"\n").unwrap();
    let e = resolve_references(&mut both, "twokey.toml", &mut read).unwrap_err();
    assert!(e.contains("token is given twice"), "{e}");
    let mut missing: toml::Table = toml::from_str("[sso]\nclient_secret_env = \"NOPE\"\n").unwrap();
    let e = resolve_references(&mut missing, "twokey.toml", &mut read).unwrap_err();
    assert!(e.starts_with("twokey.toml: sso.client_secret_env: "), "{e}");
}

#[test]
fn a_secret_never_prints() {
    let s = Secret::new(PASSWORD);
    assert_eq!(format!("{s} {s:?}"), "*** ***");
    assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
    assert_eq!(s.expose(), PASSWORD);
}

fn actor(p: &Policy, name: &str) -> Actor {
    p.identity(name).unwrap().actor()
}

#[test]
fn reasons_and_comments_are_bounded_and_plain() {
    let p = Policy::parse(&policy_text("pw", ""), "policy.toml").unwrap();
    assert_eq!(
        p.limits,
        Limits {
            reason: 20,
            comment: 30
        }
    );
    let alice = actor(&p, "alice");
    let ask = |reason: &str| {
        twokey_core::request::create(
            &p,
            &alice,
            &NewRequest {
                entitlement: "prod-db".into(),
                reason: reason.into(),
                ..Default::default()
            },
            "req-1",
            0,
        )
    };
    let e = ask(&"x".repeat(21)).unwrap_err().to_string();
    assert!(
        e.contains("reason is 21 characters long; the policy allows at most 20"),
        "{e}"
    );
    let e = ask("INC-1\0drop").unwrap_err().to_string();
    assert!(
        e.contains("reason contains a control character (U+0000)"),
        "{e}"
    );
    assert!(ask("INC-1\nsecond line").is_err(), "a reason is one line");
    let (req, _) = ask(&"é".repeat(20)).unwrap();

    let bob = actor(&p, "bob");
    let review =
        |c: &str| twokey_core::request::review(&p, &req, &bob, ReviewDecision::Approve, c, 1);
    let e = review(&"y".repeat(31)).unwrap_err().to_string();
    assert!(e.contains("comment is 31 characters"), "{e}");
    assert!(review("bell\u{7}").is_err());
    assert!(review("line one\n\tline two").is_ok());
    assert!(check_text("comment", "ok", 2, true).is_ok());
    let default = Policy::parse("", "empty.toml").unwrap().limits;
    assert_eq!(
        default,
        Limits {
            reason: 2000,
            comment: 2000
        }
    );
    let e = Policy::parse("[limits]\nreason = 0\n", "p.toml").unwrap_err();
    assert!(e.to_string().contains("p.toml:2: limits.reason = 0"), "{e}");
}

#[test]
fn who_reads_a_request_is_the_cores_rule() {
    let p = Policy::parse(&policy_text("pw", ""), "policy.toml").unwrap();
    let (req, _) = twokey_core::request::create(
        &p,
        &actor(&p, "alice"),
        &NewRequest {
            entitlement: "prod-db".into(),
            reason: "INC-1".into(),
            ..Default::default()
        },
        "req-1",
        0,
    )
    .unwrap();
    let reads = |name: &str| may_read(&p, &actor(&p, name), &req);
    assert!(reads("alice"), "the requester");
    assert!(reads("bob"), "an eligible approver (dba)");
    assert!(reads("carol"), "an admin");
    assert!(reads("dave"), "an auditor by group");
    assert!(reads("erin"), "an auditor by identity");
    assert!(!reads("mallory"), "another engineer");
    assert!(!p.may_read_all(&actor(&p, "mallory")));
    assert!(!p.may_read_all(&actor(&p, "bob")) || p.is_admin(&actor(&p, "bob")));
    let stranger = Actor {
        key: IdentityKey {
            issuer: "https://sso".into(),
            subject: "x".into(),
        },
        name: "x".into(),
        groups: BTreeSet::new(),
        links: BTreeSet::new(),
    };
    assert!(!may_read(&p, &stranger, &req));
    let e = Policy::parse("[auditors]\ngroups = [\"nope\"]\n", "p.toml").unwrap_err();
    assert!(
        e.to_string()
            .contains("p.toml:2: auditors: unknown group \"nope\""),
        "{e}"
    );
}
