//! Who is told what (`notify::plan`): approvers of a new request (never the
//! requester, not even as an approver or through a linked identity), the
//! requester of every decision, the other approvers once someone decided.

use twokey_core::notify::{is_notification, plan, NoticeKind, Person};
use twokey_core::request::{create, review};
use twokey_core::{IdentityKey, NewRequest, Policy, ReviewDecision};

const T0: i64 = 1_790_000_000_000;
const LINK: &str = "https://twokey.example.com/ui/requests/req-1";

const POLICY: &str = r#"
[[identity]]
name = "alice"
email = "alice@example.com"
groups = ["eng", "approvers"]
links = ["https://idp|alice-sso"]
[[identity]]
name = "bob"
email = "bob@example.com"
groups = ["approvers"]
[[identity]]
name = "carol"
email = "carol@example.com"
groups = ["approvers", "eng"]
[[identity]]
name = "dave"
groups = ["approvers"]

[[entitlement]]
name = "demo"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 2, from = ["approvers"] }

[[entitlement]]
name = "other-team"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 1, from = ["approvers"], exclude_requester_groups = true }
"#;

fn people(p: &Policy) -> Vec<Person> {
    let mut v: Vec<Person> = p
        .identities
        .iter()
        .map(|i| Person {
            actor: i.actor(),
            email: i.email.clone(),
        })
        .collect();
    // alice's SSO identity, as the broker refreshes it (linked to alice).
    let mut sso = v[0].actor.clone();
    sso.key = IdentityKey::parse("https://idp|alice-sso").expect("key");
    sso.links = [IdentityKey::local("alice")].into_iter().collect();
    v.push(Person {
        actor: sso,
        email: Some("alice.sso@example.com".into()),
    });
    v
}

fn names(n: &twokey_core::notify::Notice) -> Vec<String> {
    n.to.iter().map(|r| r.name.clone()).collect()
}

#[test]
fn a_new_request_goes_to_eligible_approvers_but_never_the_requester() {
    let p = Policy::parse(POLICY, "p").expect("policy");
    let alice = p.identity("alice").expect("alice").actor();
    let input = NewRequest {
        entitlement: "demo".into(),
        reason: "INC-1".into(),
        ..Default::default()
    };
    let (r, _) = create(&p, &alice, &input, "req-1", T0).expect("create");
    let ppl = people(&p);
    let n = plan(
        &p,
        &r,
        "request.created",
        &alice.key.to_string(),
        &ppl,
        LINK,
    );
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].kind, NoticeKind::ApprovalNeeded);
    assert_eq!(names(&n[0]), ["bob", "carol", "dave"]);
    assert!(n[0].text.contains(LINK), "{}", n[0].text);
    assert!(n[0].text.contains("INC-1"));

    // Team exclusion: carol shares "eng" with alice, so she is not asked.
    let input = NewRequest {
        entitlement: "other-team".into(),
        ..Default::default()
    };
    let (r, _) = create(&p, &alice, &input, "req-2", T0).expect("create");
    let n = plan(
        &p,
        &r,
        "request.created",
        &alice.key.to_string(),
        &ppl,
        LINK,
    );
    assert_eq!(names(&n[0]), ["bob", "dave"]);
}

#[test]
fn decisions_go_to_the_requester_and_to_the_other_approvers() {
    let p = Policy::parse(POLICY, "p").expect("policy");
    let alice = p.identity("alice").expect("alice").actor();
    let bob = p.identity("bob").expect("bob").actor();
    let input = NewRequest {
        entitlement: "demo".into(),
        ..Default::default()
    };
    let (r, _) = create(&p, &alice, &input, "req-1", T0).expect("create");
    let (r, _) = review(&p, &r, &bob, ReviewDecision::Approve, "", T0 + 1).expect("review");
    let ppl = people(&p);
    let n = plan(&p, &r, "review.approved", &bob.key.to_string(), &ppl, LINK);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].kind, NoticeKind::DecidedByOther);
    assert_eq!(names(&n[0]), ["carol", "dave"], "not bob, not alice");
    assert!(n[0].title.contains("bob approved"), "{}", n[0].title);

    for kind in [
        "request.approved",
        "request.denied",
        "grant.activated",
        "grant.expired",
        "grant.revoked",
    ] {
        let n = plan(&p, &r, kind, "twokey|system", &ppl, LINK);
        assert_eq!(n.len(), 1, "{kind}");
        assert_eq!(n[0].kind, NoticeKind::Decision);
        // alice under both of her identities (two addresses).
        assert_eq!(names(&n[0]), ["alice", "alice"], "{kind}");
        assert!(n[0].text.contains(LINK));
    }
    assert!(plan(&p, &r, "grant.revoke_requested", "x", &ppl, LINK).is_empty());
    assert!(!is_notification("session.login"));
    assert!(is_notification("request.created"));
}
