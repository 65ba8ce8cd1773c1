//! `[[custody]]` in the policy: each mistake that would let one person hold
//! a root secret alone is refused with its file and line.

use twokey_core::Policy;

fn rcp(c: char) -> String {
    format!("age1{}", c.to_string().repeat(58))
}

fn policy(custody: &str, entitlement_extra: &str) -> String {
    format!(
        r#"[[identity]]
name = "alice"
groups = ["eng"]

[[identity]]
name = "bob"
groups = ["approvers"]

[[identity]]
name = "carol"
groups = ["custodians"]

[[identity]]
name = "dave"
groups = ["custodians"]

[[identity]]
name = "frank"
groups = ["security"]

[[identity]]
name = "frank-admin"
groups = ["security"]
links = ["twokey|frank"]

[[entitlement]]
name = "root-open"
provider = "custody"
requester_identities = ["alice"]
max_duration = "1h"
approval = {{ count = 1, from = ["approvers"] }}
{entitlement_extra}

{custody}
"#
    )
}

fn custody(threshold: u32, custodians: &[(&str, char)], held_apart: &[&str]) -> String {
    let list: Vec<String> = custodians
        .iter()
        .map(|(n, c)| format!("  {{ identity = \"{n}\", recipient = \"{}\" }},", rcp(*c)))
        .collect();
    format!(
        "[[custody]]\nsecret = \"root-prod\"\naccount = \"111122223333\"\nkind = \"password\"\nthreshold = {threshold}\ncustodians = [\n{}\n]\nheld_apart_from = [{}]\n",
        list.join("\n"),
        held_apart
            .iter()
            .map(|h| format!("\"{h}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

const TARGET: &str = "target = { secret = \"root-prod\" }";

fn issues(text: &str) -> Vec<String> {
    match Policy::parse(text, "p.toml") {
        Ok(_) => vec![],
        Err(e) => e.issues.iter().map(|i| i.to_string()).collect(),
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

#[test]
fn a_sound_declaration_parses() {
    let text = policy(
        &custody(2, &[("carol", 'q'), ("dave", 'p')], &["frank"]),
        TARGET,
    );
    let p = Policy::parse(&text, "p.toml").expect("valid");
    let s = &p.custody["root-prod"];
    assert_eq!(s.threshold, 2);
    assert_eq!(s.custodians.len(), 2);
    assert_eq!(s.line, line_of(&text, "[[custody]]"));
    let ent = p.entitlement("root-open").expect("ent");
    assert_eq!(
        twokey_core::custody::secret_of(&p, ent).map(|s| s.id.as_str()),
        Some("root-prod")
    );
}

#[test]
fn each_mistake_is_refused_with_its_line() {
    struct Case {
        what: &'static str,
        custody: String,
        target: &'static str,
        at: &'static str,
        says: &'static str,
    }
    let cases = [
        Case {
            what: "the hardware key holder is a custodian",
            custody: custody(2, &[("carol", 'q'), ("frank", 'p')], &["frank"]),
            target: TARGET,
            at: "held_apart_from",
            says: "\"frank\" holds another part of account 111122223333 (held_apart_from) and is also a custodian",
        },
        Case {
            what: "the holder is a custodian through a linked identity",
            custody: custody(2, &[("carol", 'q'), ("frank-admin", 'p')], &["frank"]),
            target: TARGET,
            at: "held_apart_from",
            says: "(as \"frank-admin\", a linked identity)",
        },
        Case {
            what: "one person as two custodians",
            custody: custody(2, &[("frank", 'q'), ("frank-admin", 'p')], &[]),
            target: TARGET,
            at: "identity = \"frank-admin\"",
            says: "is the same person as custodian \"frank\"",
        },
        Case {
            what: "threshold 1",
            custody: custody(1, &[("carol", 'q'), ("dave", 'p')], &[]),
            target: TARGET,
            at: "threshold",
            says: "threshold 1 must be at least 2",
        },
        Case {
            what: "threshold above the custodians",
            custody: custody(3, &[("carol", 'q'), ("dave", 'p')], &[]),
            target: TARGET,
            at: "threshold",
            says: "at most its 2 custodian(s)",
        },
        Case {
            what: "a shared recipient",
            custody: custody(2, &[("carol", 'q'), ("dave", 'q')], &[]),
            target: TARGET,
            at: "identity = \"dave\"",
            says: "the same recipient as another custodian",
        },
        Case {
            what: "an unknown custodian",
            custody: custody(2, &[("carol", 'q'), ("mallory", 'p')], &[]),
            target: TARGET,
            at: "identity = \"mallory\"",
            says: "custodian \"mallory\" is not an identity",
        },
        Case {
            what: "not an age recipient",
            custody: custody(2, &[("carol", 'q'), ("dave", 'p')], &[]).replace(&rcp('p'), "ssh-ed25519 AAAA"),
            target: TARGET,
            at: "ssh-ed25519",
            says: "not an age X25519 public key",
        },
        Case {
            what: "a custody entitlement naming no secret",
            custody: custody(2, &[("carol", 'q'), ("dave", 'p')], &[]),
            target: "target = { secret = \"root-dev\" }",
            at: "root-dev",
            says: "there is no custody secret \"root-dev\"",
        },
        Case {
            what: "break-glass on a custody entitlement",
            custody: custody(2, &[("carol", 'q'), ("dave", 'p')], &[]),
            target: "break_glass = true\ntarget = { secret = \"root-prod\" }",
            at: "[[entitlement]]",
            says: "never self-released",
        },
    ];
    for c in cases {
        let text = policy(&c.custody, c.target);
        let got = issues(&text);
        let want = format!("p.toml:{}:", line_of(&text, c.at));
        assert!(
            got.iter()
                .any(|i| i.starts_with(&want) && i.contains(c.says)),
            "{}: expected {want} ... {:?}, got {got:#?}",
            c.what,
            c.says
        );
    }
}
