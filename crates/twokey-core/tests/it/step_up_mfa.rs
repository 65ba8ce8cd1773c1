//! Step-up MFA (`approver_mfa = true`): an approval counts only with a fresh
//! security-key confirmation bound to the same request; denying needs none;
//! the ledger entry names the credential.

use twokey_core::request::{create, review, review_confirmed, MFA_MAX_AGE_MS};
use twokey_core::{DomainError, MfaConfirmation, NewRequest, Policy, ReviewDecision, State};

const T0: i64 = 1_790_000_000_000;

const POLICY: &str = r#"
[[identity]]
name = "alice"
groups = ["eng"]

[[identity]]
name = "bob"
groups = ["approvers"]

[[entitlement]]
name = "prod"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approver_mfa = true
approval = { count = 1, from = ["approvers"] }

[[entitlement]]
name = "plain"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 1, from = ["approvers"] }
"#;

fn setup(ent: &str) -> (Policy, twokey_core::Request) {
    let p = Policy::parse(POLICY, "p.toml").expect("policy");
    let alice = p.identity("alice").expect("alice").actor();
    let input = NewRequest {
        entitlement: ent.into(),
        duration_ms: None,
        reason: "x".into(),
        ..Default::default()
    };
    let (r, _) = create(&p, &alice, &input, "req-1", T0).expect("create");
    (p, r)
}

fn mfa(request_id: &str, at: i64) -> MfaConfirmation {
    MfaConfirmation {
        method: "webauthn".into(),
        credential_id: "Y3JlZC0x".into(),
        request_id: request_id.into(),
        verified_at: at,
    }
}

#[test]
fn the_policy_field_parses_and_defaults_to_off() {
    let p = Policy::parse(POLICY, "p.toml").expect("policy");
    assert!(p.entitlement("prod").expect("prod").approver_mfa);
    assert!(!p.entitlement("plain").expect("plain").approver_mfa);
}

#[test]
fn a_wrong_type_is_reported_with_its_line() {
    let text = POLICY.replace("approver_mfa = true", "approver_mfa = \"yes\"");
    let err = Policy::parse(&text, "p.toml").expect_err("must fail");
    let line = text
        .lines()
        .position(|l| l.starts_with("approver_mfa"))
        .expect("line")
        + 1;
    assert_eq!(err.issues[0].line, line, "{err}");
    assert!(err.to_string().contains("bool"), "{err}");
}

#[test]
fn approval_without_a_key_is_refused_and_says_where_to_approve() {
    let (p, r) = setup("prod");
    let bob = p.identity("bob").expect("bob").actor();
    let err = review(&p, &r, &bob, ReviewDecision::Approve, "", T0 + 1).expect_err("refused");
    match err {
        DomainError::Forbidden(m) => {
            assert!(m.contains("security key"), "{m}");
            assert!(m.contains("/ui/requests/req-1"), "{m}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn approval_with_a_fresh_key_confirmation_counts_and_is_recorded() {
    let (p, r) = setup("prod");
    let bob = p.identity("bob").expect("bob").actor();
    let m = mfa("req-1", T0 + 5);
    let (next, events) = review_confirmed(
        &p,
        &r,
        &bob,
        ReviewDecision::Approve,
        "ok",
        Some(&m),
        T0 + 10,
    )
    .expect("approved");
    assert_eq!(next.state, State::Approved);
    let ev = events
        .iter()
        .find(|e| e.kind == "review.approved")
        .expect("review event");
    assert_eq!(ev.data["mfa"]["credential_id"], "Y3JlZC0x");
    assert_eq!(ev.data["mfa"]["method"], "webauthn");
}

#[test]
fn a_confirmation_for_another_request_or_a_stale_one_is_refused() {
    let (p, r) = setup("prod");
    let bob = p.identity("bob").expect("bob").actor();
    let other = mfa("req-2", T0);
    assert!(matches!(
        review_confirmed(
            &p,
            &r,
            &bob,
            ReviewDecision::Approve,
            "",
            Some(&other),
            T0 + 1
        ),
        Err(DomainError::Forbidden(_))
    ));
    let stale = mfa("req-1", T0);
    assert!(matches!(
        review_confirmed(
            &p,
            &r,
            &bob,
            ReviewDecision::Approve,
            "",
            Some(&stale),
            T0 + MFA_MAX_AGE_MS + 1
        ),
        Err(DomainError::Forbidden(_))
    ));
    let future = mfa("req-1", T0 + 10_000);
    assert!(matches!(
        review_confirmed(
            &p,
            &r,
            &bob,
            ReviewDecision::Approve,
            "",
            Some(&future),
            T0 + 1
        ),
        Err(DomainError::Forbidden(_))
    ));
}

#[test]
fn a_key_does_not_let_the_requester_approve() {
    let (p, r) = setup("prod");
    let alice = p.identity("alice").expect("alice").actor();
    let m = mfa("req-1", T0);
    assert_eq!(
        review_confirmed(
            &p,
            &r,
            &alice,
            ReviewDecision::Approve,
            "",
            Some(&m),
            T0 + 1
        ),
        Err(DomainError::SelfApproval)
    );
}

#[test]
fn denying_needs_no_key_and_plain_entitlements_are_unchanged() {
    let (p, r) = setup("prod");
    let bob = p.identity("bob").expect("bob").actor();
    let (next, _) = review(&p, &r, &bob, ReviewDecision::Deny, "no", T0 + 1).expect("deny");
    assert_eq!(next.state, State::Denied);
    let (p, r) = setup("plain");
    let (next, events) = review(&p, &r, &bob, ReviewDecision::Approve, "", T0 + 1).expect("ok");
    assert_eq!(next.state, State::Approved);
    assert!(events[0].data.get("mfa").is_none());
}
