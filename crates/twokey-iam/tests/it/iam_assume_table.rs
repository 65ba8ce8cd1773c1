//! The documents `aws_iam_assume` writes, and the trust policies the README
//! recommends, evaluated for a table of requests through BOTH twokey-iam and
//! iam-simulate: every row must get its expected decision from each (issue
//! 18). The grant policy and the revoke deny come from the provider's own
//! builders (`twokey_aws::iam_assume::{grant_policy, revoked_policy}`), so
//! a change there is evaluated here.
//!
//! The bad case is recorded, not hidden: with the requester's user ARN as the
//! trust principal in the SAME account, AWS allows AssumeRole from the trust
//! policy alone, with no grant and after the grant's end (standing access;
//! the provider must refuse such a target). With the account root as the
//! principal, the identity policy (the grant) is required in both the same-
//! and the cross-account case.

use crate::common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};
use twokey_aws::iam_assume::{grant_policy, revoked_policy};
use twokey_iam::Decision;

const GATEWAY: &str = "111122223333";
const TARGET: &str = "222233334444";
const END: &str = "2026-12-01T13:00:00Z";
const BEFORE_END: &str = "2026-12-01T12:59:59Z";
const AFTER_END: &str = "2026-12-01T13:00:01Z";
const REVOKED_AT: &str = "2026-12-01T12:30:00Z";

fn user(name: &str) -> String {
    format!("arn:aws:iam::{GATEWAY}:user/{name}")
}

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/prod-admin")
}

/// The README's trust policy before issue 18: the user's ARN as principal.
fn user_trust() -> Value {
    trust(json!({"AWS": [user("alice")]}))
}

/// The README's trust policy: the gateway account's root as principal, so
/// the identity policy (twokey's grant) is always required.
fn root_trust() -> Value {
    trust(json!({"AWS": format!("arn:aws:iam::{GATEWAY}:root")}))
}

fn trust(principal: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": principal,
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
        "Condition": {"StringLike": {"sts:SourceIdentity": "*"}}
    }]})
}

fn parse(doc: &str) -> Value {
    serde_json::from_str(doc).expect("the provider writes JSON")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Want {
    Allowed,
    ImplicitDeny,
    ExplicitDeny,
}

impl Want {
    fn oracle(self) -> &'static str {
        match self {
            Want::Allowed => "Allowed",
            Want::ImplicitDeny => "ImplicitlyDenied",
            Want::ExplicitDeny => "ExplicitlyDenied",
        }
    }
}

struct Assume {
    who: &'static str,
    account: &'static str,
    trust: fn() -> Value,
    grant_for: Option<&'static str>,
    at: &'static str,
    source_identity: Option<&'static str>,
}

fn assume_case(a: &Assume) -> Value {
    let role_arn = role(a.account);
    let mut s = sim(&user(a.who), "sts:AssumeRole", &role_arn, a.account);
    s["request"]["contextVariables"]["aws:CurrentTime"] = json!(a.at);
    if let Some(si) = a.source_identity {
        s["request"]["contextVariables"]["sts:SourceIdentity"] = json!(si);
    }
    if let Some(person) = a.grant_for {
        if person == a.who {
            s["identityPolicies"] = json!([{
                "name": "twokey-req-1",
                "policy": parse(&grant_policy(&role_arn, END, person))
            }]);
        }
    }
    s["resourcePolicy"] = (a.trust)();
    complete(s)
}

/// A request made with a session of the target role after a revoke: the
/// role's own permissions allow everything; the revoke deny is attached.
fn session_case(person: &str, issued: &str) -> Value {
    let mut revoked = BTreeMap::new();
    revoked.insert("alice".to_string(), REVOKED_AT.to_string());
    let session = format!("arn:aws:sts::{TARGET}:assumed-role/prod-admin/{person}");
    let mut s = sim(&session, "s3:ListBucket", "arn:aws:s3:::prod-data", TARGET);
    let ctx = &mut s["request"]["contextVariables"];
    ctx["aws:CurrentTime"] = json!("2026-12-01T12:45:00Z");
    ctx["aws:SourceIdentity"] = json!(person);
    ctx["aws:TokenIssueTime"] = json!(issued);
    s["identityPolicies"] = json!([
        {"name": "work", "policy": doc(json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]))},
        {"name": "twokey-revoked-sessions", "policy": parse(&revoked_policy(&revoked))}
    ]);
    complete(s)
}

fn rows() -> Vec<(&'static str, Value, Want)> {
    use Want::*;
    let a = |who, account, trust: fn() -> Value, grant_for, at, si| Assume {
        who,
        account,
        trust,
        grant_for,
        at,
        source_identity: si,
    };
    let g = Some("alice");
    let si = Some("alice");
    let rows = [
        (
            "cross, root trust: grant, before the end, right source identity",
            a("alice", TARGET, root_trust, g, BEFORE_END, si),
            Allowed,
        ),
        (
            "cross, root trust: grant, after the end",
            a("alice", TARGET, root_trust, g, AFTER_END, si),
            ImplicitDeny,
        ),
        (
            "cross, root trust: grant, wrong source identity",
            a("alice", TARGET, root_trust, g, BEFORE_END, Some("bob")),
            ImplicitDeny,
        ),
        (
            "cross, root trust: grant, no source identity",
            a("alice", TARGET, root_trust, g, BEFORE_END, None),
            ImplicitDeny,
        ),
        (
            "cross, root trust: no grant",
            a("alice", TARGET, root_trust, None, BEFORE_END, si),
            ImplicitDeny,
        ),
        (
            "cross, root trust: another person (bob, alice's grant)",
            a("bob", TARGET, root_trust, g, BEFORE_END, Some("bob")),
            ImplicitDeny,
        ),
        (
            "cross, user trust: grant, before the end",
            a("alice", TARGET, user_trust, g, BEFORE_END, si),
            Allowed,
        ),
        (
            "cross, user trust: grant, after the end",
            a("alice", TARGET, user_trust, g, AFTER_END, si),
            ImplicitDeny,
        ),
        (
            "cross, user trust: no grant",
            a("alice", TARGET, user_trust, None, BEFORE_END, si),
            ImplicitDeny,
        ),
        (
            "same, user trust: no grant (BAD: standing access)",
            a("alice", GATEWAY, user_trust, None, BEFORE_END, si),
            Allowed,
        ),
        (
            "same, user trust: grant, after the end (BAD: standing access)",
            a("alice", GATEWAY, user_trust, g, AFTER_END, si),
            Allowed,
        ),
        (
            "same, user trust: another person (bob)",
            a("bob", GATEWAY, user_trust, None, BEFORE_END, Some("bob")),
            ImplicitDeny,
        ),
        (
            "same, root trust: grant, before the end",
            a("alice", GATEWAY, root_trust, g, BEFORE_END, si),
            Allowed,
        ),
        (
            "same, root trust: grant, after the end",
            a("alice", GATEWAY, root_trust, g, AFTER_END, si),
            ImplicitDeny,
        ),
        (
            "same, root trust: grant, wrong source identity",
            a("alice", GATEWAY, root_trust, g, BEFORE_END, Some("bob")),
            ImplicitDeny,
        ),
        (
            "same, root trust: no grant",
            a("alice", GATEWAY, root_trust, None, BEFORE_END, si),
            ImplicitDeny,
        ),
        (
            "same, root trust: another person (bob, alice's grant)",
            a("bob", GATEWAY, root_trust, g, BEFORE_END, Some("bob")),
            ImplicitDeny,
        ),
    ];
    let mut out: Vec<(&'static str, Value, Want)> = rows
        .iter()
        .map(|(n, c, w)| (*n, assume_case(c), *w))
        .collect();
    out.push((
        "revoke: alice's session issued before the revoke",
        session_case("alice", "2026-12-01T12:10:00Z"),
        ExplicitDeny,
    ));
    out.push((
        "revoke: alice's session issued after the revoke",
        session_case("alice", "2026-12-01T12:40:00Z"),
        Allowed,
    ));
    out.push((
        "revoke: bob's session issued before alice's revoke",
        session_case("bob", "2026-12-01T12:10:00Z"),
        Allowed,
    ));
    out
}

fn ours_word(sim: &Value) -> String {
    match ours(sim, &[]) {
        Ok(d) => oracle_word(&d).to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn every_row_gets_its_decision_from_twokey_iam() {
    let mut wrong = Vec::new();
    for (name, sim, want) in rows() {
        let got = ours_word(&sim);
        eprintln!("{:<64} want {:<16} twokey-iam {got}", name, want.oracle());
        if got != want.oracle() {
            wrong.push(name);
        }
    }
    assert!(wrong.is_empty(), "rows twokey-iam gets wrong: {wrong:?}");
}

#[test]
fn every_row_gets_its_decision_from_iam_simulate() {
    let Some(dir) = oracle_dir() else { return };
    let rows = rows();
    let cases: Vec<Case> = rows
        .iter()
        .enumerate()
        .map(|(i, (_, sim, _))| Case {
            id: i.to_string(),
            sim: sim.clone(),
        })
        .collect();
    let (oracle, _) = run_oracle(&dir, &cases, None);
    let mut wrong = Vec::new();
    for ((name, _, want), o) in rows.iter().zip(&oracle) {
        let got = o
            .result
            .clone()
            .unwrap_or_else(|| format!("error {:?}", o.error));
        eprintln!("{:<64} want {:<16} iam-simulate {got}", name, want.oracle());
        if got != want.oracle() {
            wrong.push(*name);
        }
    }
    assert!(
        wrong.is_empty(),
        "rows iam-simulate gets otherwise: {wrong:?}"
    );
}

/// With the source identity unknown, twokey-iam answers "allowed if" the
/// grant's and the trust's source-identity conditions hold, never a yes.
#[test]
fn unknown_source_identity_is_a_conditional_answer() {
    let c = assume_case(&Assume {
        who: "alice",
        account: TARGET,
        trust: root_trust,
        grant_for: Some("alice"),
        at: BEFORE_END,
        source_identity: None,
    });
    let (mut req, policies) = to_ours(&c, &[]).expect("documents parse");
    req.context.mark_unknown("sts:SourceIdentity");
    let d = twokey_iam::evaluate(&req, &policies);
    let Decision::AllowedIf { when, .. } = &d else {
        panic!("expected AllowedIf, got {d}");
    };
    let keys: Vec<String> = when
        .requirements()
        .iter()
        .map(|r| match r {
            twokey_iam::Requirement::Condition { key, .. } => key.clone(),
            twokey_iam::Requirement::Resource { pattern, .. } => pattern.clone(),
        })
        .collect();
    assert!(keys.iter().all(|k| k == "sts:SourceIdentity"), "{when}");
    assert_eq!(
        keys.len(),
        2,
        "the grant's StringEquals and the trust's StringLike: {when}"
    );
}
