//! Scenarios that read like the product: alice asks for access, bob and carol
//! decide, the scheduler activates and ends grants, and nobody gets around the
//! two-person rule.

use std::collections::BTreeSet;

use twokey_core::proposal::{self, ProposalState};
use twokey_core::request::{
    activate, approvals_counted, begin_expiry, begin_revoke, cancel, confirm_ended, create, extend,
    next_due, review, review_break_glass, time_out,
};
use twokey_core::{
    Actor, DomainError, EndReason, Event, IdentityKey, NewRequest, Policy, Request, ReviewDecision,
    State,
};

const MIN: i64 = 60 * 1000;
const T0: i64 = 1_790_000_000_000;

const POLICY: &str = r#"
[admins]
groups = ["platform"]
approvals = 1

[[identity]]
name = "alice"
email = "alice@example.com"
groups = ["eng", "team-a"]

[[identity]]
name = "bob"
groups = ["approvers", "platform"]

[[identity]]
name = "carol"
groups = ["approvers", "platform"]

[[identity]]
name = "dave"
groups = ["approvers", "team-a"]

[[identity]]
name = "mallory"
groups = ["eng"]

[[entitlement]]
name = "demo"
provider = "exec"
requester_groups = ["eng"]
default_duration = "30m"
max_duration = "1h"
pending_timeout = "1h"
reason_required = true
break_glass = true
approval = { count = 1, from = ["approvers"] }

[[entitlement]]
name = "pair"
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

[[entitlement]]
name = "ticketed"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
ticket_pattern = "^INC-[0-9]+$"
approval = { count = 1, from = ["approvers"] }
"#;

fn policy() -> Policy {
    Policy::parse(POLICY, "policy.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn who(p: &Policy, name: &str) -> Actor {
    p.identity(name)
        .unwrap_or_else(|| panic!("no identity {name}"))
        .actor()
}

fn ask(entitlement: &str, minutes: i64) -> NewRequest {
    NewRequest {
        entitlement: entitlement.into(),
        duration_ms: Some(minutes * MIN),
        reason: "debugging the demo".into(),
        ticket: None,
        break_glass: false,
    }
}

/// What the store does on commit: bump the version.
fn stored(r: (Request, Vec<Event>)) -> (Request, Vec<Event>) {
    let (mut req, ev) = r;
    req.version += 1;
    (req, ev)
}

fn kinds(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// alice's pending 30-minute request for demo, made at T0.
fn alice_requests_demo(p: &Policy) -> Request {
    let (req, events) = create(p, &who(p, "alice"), &ask("demo", 30), "r1", T0).unwrap();
    assert_eq!(kinds(&events), ["request.created"]);
    req
}

fn approved_demo(p: &Policy) -> Request {
    let req = alice_requests_demo(p);
    let (req, _) = stored(
        review(
            p,
            &req,
            &who(p, "bob"),
            ReviewDecision::Approve,
            "ok",
            T0 + MIN,
        )
        .unwrap(),
    );
    assert_eq!(req.state, State::Approved);
    req
}

fn active_demo(p: &Policy, at: i64) -> Request {
    let (req, _) = stored(activate(&approved_demo(p), at, "granted").unwrap());
    req
}

#[test]
fn alice_requests_demo_for_30_minutes() {
    let p = policy();
    let req = alice_requests_demo(&p);
    assert_eq!(req.state, State::Pending);
    assert_eq!(req.entitlement, "demo");
    assert_eq!(req.requester, IdentityKey::local("alice"));
    assert_eq!(req.requester_name, "alice");
    assert_eq!(
        req.requester_groups,
        BTreeSet::from(["eng".into(), "team-a".into()])
    );
    assert_eq!(req.duration_ms, 30 * MIN);
    assert_eq!(req.created_at, T0);
    assert_eq!(req.pending_until, T0 + 60 * MIN);
    assert_eq!(req.policy_hash, p.hash);
    assert!(req.reviews.is_empty() && !req.break_glass && !req.needs_review);
    assert_eq!((req.activated_at, req.ends_at), (None, None));
    assert_eq!(
        next_due(&req),
        Some(T0 + 60 * MIN),
        "the scheduler times it out then"
    );

    // The entitlement's default applies when no duration is given.
    let (d, _) = create(
        &p,
        &who(&p, "alice"),
        &NewRequest {
            duration_ms: None,
            ..ask("demo", 0)
        },
        "r2",
        T0,
    )
    .unwrap();
    assert_eq!(d.duration_ms, 30 * MIN);
}

#[test]
fn requests_outside_the_entitlement_are_refused() {
    let p = policy();
    let alice = who(&p, "alice");
    let bob = who(&p, "bob");
    assert!(matches!(
        create(&p, &bob, &ask("demo", 30), "x", T0),
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        create(&p, &alice, &ask("nope", 30), "x", T0),
        Err(DomainError::UnknownEntitlement(_))
    ));
    let err = create(&p, &alice, &ask("demo", 61), "x", T0).unwrap_err();
    assert!(
        matches!(&err, DomainError::Invalid(m) if m.contains("over the maximum")),
        "{err}"
    );
    assert!(matches!(
        create(&p, &alice, &ask("demo", 0), "x", T0),
        Err(DomainError::Invalid(_))
    ));
    assert!(matches!(
        create(&p, &alice, &ask("demo", -5), "x", T0),
        Err(DomainError::Invalid(_))
    ));
    let no_reason = NewRequest {
        reason: "   ".into(),
        ..ask("demo", 30)
    };
    let err = create(&p, &alice, &no_reason, "x", T0).unwrap_err();
    assert!(
        matches!(&err, DomainError::Invalid(m) if m.contains("requires a reason")),
        "{err}"
    );
    // Ticket pattern: required when set, and must match.
    assert!(matches!(
        create(&p, &alice, &ask("ticketed", 30), "x", T0),
        Err(DomainError::Invalid(_))
    ));
    let bad = NewRequest {
        ticket: Some("JIRA-1".into()),
        ..ask("ticketed", 30)
    };
    assert!(matches!(
        create(&p, &alice, &bad, "x", T0),
        Err(DomainError::Invalid(_))
    ));
    let good = NewRequest {
        ticket: Some(" INC-42 ".into()),
        ..ask("ticketed", 30)
    };
    let (r, _) = create(&p, &alice, &good, "x", T0).unwrap();
    assert_eq!(r.ticket.as_deref(), Some("INC-42"));
}

#[test]
fn alice_cannot_approve_her_own_request() {
    let p = policy();
    let req = alice_requests_demo(&p);
    let alice = who(&p, "alice");
    assert_eq!(
        review(&p, &req, &alice, ReviewDecision::Approve, "", T0 + MIN),
        Err(DomainError::SelfApproval)
    );
    assert_eq!(
        DomainError::SelfApproval.to_string(),
        "you requested this; a different approver is required"
    );
    // Even if her groups made her an approver: the key is what counts, not
    // the name or the groups.
    let alice_as_approver = Actor {
        key: alice.key.clone(),
        name: "Alice (admin hat)".into(),
        groups: BTreeSet::from(["approvers".into(), "platform".into()]),
        links: Default::default(),
    };
    assert_eq!(
        review(
            &p,
            &req,
            &alice_as_approver,
            ReviewDecision::Approve,
            "",
            T0 + MIN
        ),
        Err(DomainError::SelfApproval)
    );
}

#[test]
fn the_requester_withdraws_with_cancel_not_deny() {
    let p = policy();
    let req = alice_requests_demo(&p);
    // Not a self-approval attempt (which alerts): she is pointed at cancel.
    let err = review(
        &p,
        &req,
        &who(&p, "alice"),
        ReviewDecision::Deny,
        "",
        T0 + MIN,
    )
    .unwrap_err();
    assert!(
        matches!(&err, DomainError::Forbidden(m) if m.contains("cancel")),
        "{err:?}"
    );
}

/// Separation of duties compares issuer + subject. A second identity of the
/// same person (another issuer, same display name and email) is a different
/// identity to twokey: the core cannot know they are one person. The policy
/// defends against that with groups: `exclude_requester_groups` refuses an
/// approver who shares the requester's team group.
#[test]
fn a_second_identity_of_the_requester_is_only_stopped_by_groups() {
    let p = policy();
    let alice = who(&p, "alice");
    let alice_sso = Actor {
        key: IdentityKey {
            issuer: "https://sso.example.com".into(),
            subject: "a-7f3e".into(),
        },
        name: "alice".into(),
        groups: BTreeSet::from(["approvers".into(), "team-a".into()]),
        links: Default::default(),
    };
    assert_ne!(alice_sso.key, alice.key);
    assert_eq!(alice_sso.name, alice.name);

    // demo has no team rule: the second identity counts as another person.
    let req = alice_requests_demo(&p);
    let (r, _) = review(&p, &req, &alice_sso, ReviewDecision::Approve, "", T0 + MIN).unwrap();
    assert_eq!(r.state, State::Approved);

    // other-team refuses anyone sharing alice's team group, including dave,
    // a genuine colleague, and alice's second identity.
    let (req, _) = create(&p, &alice, &ask("other-team", 30), "r2", T0).unwrap();
    for actor in [&alice_sso, &who(&p, "dave")] {
        let err = review(&p, &req, actor, ReviewDecision::Approve, "", T0 + MIN).unwrap_err();
        assert!(
            matches!(&err, DomainError::Forbidden(m) if m.contains("\"team-a\"") && m.contains("outside the requester's team")),
            "{err:?}"
        );
    }
    // Sharing only the approver group is fine: bob is outside team-a.
    let (r, _) = review(
        &p,
        &req,
        &who(&p, "bob"),
        ReviewDecision::Approve,
        "",
        T0 + MIN,
    )
    .unwrap();
    assert_eq!(r.state, State::Approved);
}

#[test]
fn the_requesters_groups_are_taken_when_asking() {
    // alice leaves team-a after asking: the team rule still uses the groups
    // she had when she asked, so dave stays excluded.
    let p = policy();
    let mut alice = who(&p, "alice");
    let (req, _) = create(&p, &alice, &ask("other-team", 30), "r", T0).unwrap();
    alice.groups.remove("team-a");
    let _ = alice;
    assert!(review(
        &p,
        &req,
        &who(&p, "dave"),
        ReviewDecision::Approve,
        "",
        T0 + MIN
    )
    .is_err());
}

#[test]
fn bob_approves_and_it_is_approved() {
    let p = policy();
    let req = alice_requests_demo(&p);
    let (r, events) = review(
        &p,
        &req,
        &who(&p, "bob"),
        ReviewDecision::Approve,
        "looks fine",
        T0 + MIN,
    )
    .unwrap();
    assert_eq!(r.state, State::Approved);
    assert_eq!(kinds(&events), ["review.approved", "request.approved"]);
    assert_eq!(events[0].actor, "twokey|bob");
    assert!(events.iter().all(|e| !e.alert));
    assert_eq!(r.reviews.len(), 1);
    assert_eq!(r.reviews[0].reviewer, IdentityKey::local("bob"));
    assert_eq!(r.reviews[0].comment, "looks fine");
    assert_eq!(r.reviews[0].at, T0 + MIN);
    assert_eq!(approvals_counted(&r), 1);
    // Approval does not start the clock: nothing is active yet.
    assert_eq!((r.activated_at, r.ends_at), (None, None));
    assert_eq!(next_due(&r), Some(0), "activate as soon as possible");
    // The original value is untouched: transitions never mutate in place.
    assert_eq!(req.state, State::Pending);
}

#[test]
fn each_identity_counts_once_two_approvals_need_two_people() {
    let p = policy();
    let (req, _) = create(&p, &who(&p, "alice"), &ask("pair", 30), "r", T0).unwrap();
    let bob = who(&p, "bob");
    let (req, events) =
        stored(review(&p, &req, &bob, ReviewDecision::Approve, "", T0 + MIN).unwrap());
    assert_eq!(req.state, State::Pending, "one of two approvals");
    assert_eq!(kinds(&events), ["review.approved"]);

    let err = review(
        &p,
        &req,
        &bob,
        ReviewDecision::Approve,
        "again",
        T0 + 2 * MIN,
    )
    .unwrap_err();
    assert!(
        matches!(&err, DomainError::Forbidden(m) if m.contains("already reviewed")),
        "{err:?}"
    );
    // bob under another display name is still bob.
    let bob_renamed = Actor {
        name: "Robert".into(),
        ..bob.clone()
    };
    assert!(review(
        &p,
        &req,
        &bob_renamed,
        ReviewDecision::Approve,
        "",
        T0 + 2 * MIN
    )
    .is_err());
    // bob cannot turn his approval into a denial either.
    assert!(review(&p, &req, &bob, ReviewDecision::Deny, "", T0 + 2 * MIN).is_err());

    let (req, events) = review(
        &p,
        &req,
        &who(&p, "carol"),
        ReviewDecision::Approve,
        "",
        T0 + 3 * MIN,
    )
    .unwrap();
    assert_eq!(req.state, State::Approved);
    assert_eq!(kinds(&events), ["review.approved", "request.approved"]);
    assert_eq!(events[1].data["approvals"], 2);
    assert_eq!(events[1].data["required"], 2);
    assert_eq!(approvals_counted(&req), 2);
}

#[test]
fn approvals_are_counted_from_distinct_reviewers_not_the_requester() {
    // A tampered review list (duplicates, the requester) does not add up.
    let p = policy();
    let (mut req, _) = create(&p, &who(&p, "alice"), &ask("pair", 30), "r", T0).unwrap();
    let (r, _) = review(&p, &req, &who(&p, "bob"), ReviewDecision::Approve, "", T0).unwrap();
    let bobs = r.reviews[0].clone();
    let mut alices = bobs.clone();
    alices.reviewer = req.requester.clone();
    let mut denial = bobs.clone();
    denial.reviewer = IdentityKey::local("carol");
    denial.decision = ReviewDecision::Deny;
    req.reviews = vec![bobs.clone(), bobs, alices, denial];
    assert_eq!(approvals_counted(&req), 1);
}

#[test]
fn an_ineligible_user_is_refused_and_nothing_changes() {
    let p = policy();
    let req = alice_requests_demo(&p);
    let mallory = who(&p, "mallory");
    for decision in [ReviewDecision::Approve, ReviewDecision::Deny] {
        let err = review(&p, &req, &mallory, decision, "", T0 + MIN).unwrap_err();
        assert!(
            matches!(&err, DomainError::Forbidden(m) if m.contains("not an approver") && m.contains("approvers")),
            "{err:?}"
        );
    }
    // An unknown SSO user with no groups at all.
    let stranger = Actor {
        key: IdentityKey {
            issuer: "https://sso.example.com".into(),
            subject: "x".into(),
        },
        name: "stranger".into(),
        groups: BTreeSet::new(),
        links: Default::default(),
    };
    assert!(matches!(
        review(&p, &req, &stranger, ReviewDecision::Approve, "", T0 + MIN),
        Err(DomainError::Forbidden(_))
    ));
}

#[test]
fn a_denial_ends_the_request() {
    let p = policy();
    let (req, _) = create(&p, &who(&p, "alice"), &ask("pair", 30), "r", T0).unwrap();
    let (req, _) = stored(
        review(
            &p,
            &req,
            &who(&p, "bob"),
            ReviewDecision::Approve,
            "",
            T0 + MIN,
        )
        .unwrap(),
    );
    let (req, events) = stored(
        review(
            &p,
            &req,
            &who(&p, "carol"),
            ReviewDecision::Deny,
            "no",
            T0 + MIN,
        )
        .unwrap(),
    );
    assert_eq!(req.state, State::Denied);
    assert_eq!(req.ended_at, Some(T0 + MIN));
    assert_eq!(kinds(&events), ["review.denied", "request.denied"]);
    assert!(req.state.is_terminal());
    assert_eq!(next_due(&req), None);
    assert!(review(
        &p,
        &req,
        &who(&p, "dave"),
        ReviewDecision::Approve,
        "",
        T0 + MIN
    )
    .is_err());
    assert!(activate(&req, T0 + 2 * MIN, "").is_err());
}

#[test]
fn only_the_requester_cancels_and_only_while_pending() {
    let p = policy();
    let req = alice_requests_demo(&p);
    let err = cancel(&req, &who(&p, "bob"), T0 + MIN).unwrap_err();
    assert!(
        matches!(&err, DomainError::Forbidden(m) if m.contains("only the requester")),
        "{err:?}"
    );
    let (c, events) = cancel(&req, &who(&p, "alice"), T0 + MIN).unwrap();
    assert_eq!(c.state, State::Cancelled);
    assert_eq!(c.ended_at, Some(T0 + MIN));
    assert_eq!(kinds(&events), ["request.cancelled"]);
    assert!(matches!(
        cancel(&c, &who(&p, "alice"), T0 + MIN),
        Err(DomainError::WrongState(_))
    ));

    let approved = approved_demo(&p);
    let err = cancel(&approved, &who(&p, "alice"), T0 + 2 * MIN).unwrap_err();
    assert!(
        matches!(&err, DomainError::WrongState(m) if m.contains("revoke")),
        "{err:?}"
    );
}

#[test]
fn a_pending_request_times_out_only_after_its_timeout() {
    let p = policy();
    let req = alice_requests_demo(&p);
    let due = req.pending_until;
    assert!(matches!(
        time_out(&req, due - 1),
        Err(DomainError::WrongState(_))
    ));
    let (t, events) = time_out(&req, due).unwrap();
    assert_eq!(t.state, State::TimedOut);
    assert_eq!(t.ended_at, Some(due));
    assert_eq!(kinds(&events), ["request.timed_out"]);
    assert_eq!(events[0].actor, Actor::system().key.to_string());
    // An approved request does not time out.
    assert!(time_out(&approved_demo(&p), due + 1).is_err());
}

#[test]
fn a_review_after_the_pending_timeout_is_refused() {
    // Even when the scheduler has not yet marked it timed out.
    let p = policy();
    let req = alice_requests_demo(&p);
    let bob = who(&p, "bob");
    assert!(review(
        &p,
        &req,
        &bob,
        ReviewDecision::Approve,
        "",
        req.pending_until - 1
    )
    .is_ok());
    let err = review(
        &p,
        &req,
        &bob,
        ReviewDecision::Approve,
        "",
        req.pending_until,
    )
    .unwrap_err();
    assert!(
        matches!(&err, DomainError::WrongState(m) if m.contains("timed out")),
        "{err:?}"
    );
}

#[test]
fn the_duration_counts_from_activation_not_from_the_request() {
    let p = policy();
    let req = approved_demo(&p);
    // The provider took a while: activation at T0 + 25m.
    let at = T0 + 25 * MIN;
    let (a, events) = activate(&req, at, "touched demo").unwrap();
    assert_eq!(a.state, State::Active);
    assert_eq!(a.activated_at, Some(at));
    assert_eq!(a.ends_at, Some(at + 30 * MIN));
    assert_eq!(next_due(&a), Some(at + 30 * MIN));
    assert_eq!(kinds(&events), ["grant.activated"]);
    assert_eq!(
        events[0].data["approvers"],
        serde_json::json!(["twokey|bob"])
    );
    assert_eq!(events[0].data["break_glass"], false);
    assert_eq!(events[0].data["ends_at"], at + 30 * MIN);
    // A retried activation of the now-active grant is refused.
    assert!(matches!(
        activate(&a, at + 1, ""),
        Err(DomainError::WrongState(_))
    ));
    // Only approved requests activate.
    assert!(activate(&alice_requests_demo(&p), at, "").is_err());
}

#[test]
fn a_grant_expires_at_its_end_time_and_not_before() {
    let p = policy();
    let a = active_demo(&p, T0 + 2 * MIN);
    let end = a.ends_at.unwrap();
    assert!(matches!(
        begin_expiry(&a, end - 1),
        Err(DomainError::WrongState(_))
    ));
    let (r, events) = stored(begin_expiry(&a, end).unwrap());
    assert_eq!(r.state, State::Revoking);
    assert_eq!(r.end_reason, Some(EndReason::Expiry));
    assert_eq!(kinds(&events), ["grant.expiring"]);
    assert_eq!(next_due(&r), Some(0), "keep retrying the provider");
    // Not ended until the provider confirms.
    assert_eq!(r.ended_at, None);
    assert!(begin_expiry(&r, end + 1).is_err(), "no second expiry");
    let (e, events) = confirm_ended(&r, end + 500).unwrap();
    assert_eq!(e.state, State::Expired);
    assert_eq!(e.ended_at, Some(end + 500));
    assert_eq!(kinds(&events), ["grant.expired"]);
    assert!(
        confirm_ended(&e, end + 600).is_err(),
        "confirmation is once"
    );
    assert_eq!(e.activated_at, a.activated_at);
    assert_eq!(e.ends_at, a.ends_at);
}

#[test]
fn a_revoked_grant_ends_as_revoked() {
    let p = policy();
    let a = active_demo(&p, T0 + 2 * MIN);
    // mallory can request demo but has no say over alice's grant.
    let err = begin_revoke(&p, &a, &who(&p, "mallory"), T0 + 3 * MIN).unwrap_err();
    assert!(matches!(err, DomainError::Forbidden(_)));
    // The requester, an approver and an admin may all revoke.
    for name in ["alice", "dave", "bob"] {
        let (r, events) = begin_revoke(&p, &a, &who(&p, name), T0 + 3 * MIN).unwrap();
        assert_eq!(r.state, State::Revoking);
        assert_eq!(r.end_reason, Some(EndReason::Revoke));
        assert_eq!(r.revoked_by, Some(IdentityKey::local(name)));
        assert_eq!(kinds(&events), ["grant.revoke_requested"]);
    }
    let (r, _) = stored(begin_revoke(&p, &a, &who(&p, "alice"), T0 + 3 * MIN).unwrap());
    assert!(
        begin_revoke(&p, &r, &who(&p, "bob"), T0 + 4 * MIN).is_err(),
        "already revoking"
    );
    assert!(
        begin_expiry(&r, a.ends_at.unwrap()).is_err(),
        "revoking, not expiring"
    );
    let (done, events) = confirm_ended(&r, T0 + 4 * MIN).unwrap();
    assert_eq!(done.state, State::Revoked);
    assert_eq!(kinds(&events), ["grant.revoked"]);
    assert_eq!(done.ended_at, Some(T0 + 4 * MIN));
}

#[test]
fn an_approved_grant_can_be_revoked_before_it_activates() {
    let p = policy();
    let req = approved_demo(&p);
    let (r, _) = begin_revoke(&p, &req, &who(&p, "alice"), T0 + 2 * MIN).unwrap();
    assert_eq!(r.state, State::Revoking);
    assert!(
        activate(&r, T0 + 3 * MIN, "").is_err(),
        "a revoking grant never activates"
    );
    let (done, _) = confirm_ended(&r, T0 + 3 * MIN).unwrap();
    assert_eq!(done.state, State::Revoked);
    assert_eq!(done.activated_at, None);
}

type Outcome = Result<(Request, Vec<Event>), DomainError>;

/// Every terminal request, reached the way the product reaches it.
fn terminal_requests(p: &Policy) -> Vec<Request> {
    let alice = who(p, "alice");
    let bob = who(p, "bob");
    let pending = alice_requests_demo(p);
    let denied = review(p, &pending, &bob, ReviewDecision::Deny, "", T0 + MIN)
        .unwrap()
        .0;
    let cancelled = cancel(&pending, &alice, T0 + MIN).unwrap().0;
    let timed_out = time_out(&pending, pending.pending_until).unwrap().0;
    let active = active_demo(p, T0 + 2 * MIN);
    let end = active.ends_at.unwrap();
    let expired = confirm_ended(&begin_expiry(&active, end).unwrap().0, end)
        .unwrap()
        .0;
    let revoking = begin_revoke(p, &active, &alice, T0 + 3 * MIN).unwrap().0;
    let revoked = confirm_ended(&revoking, T0 + 3 * MIN).unwrap().0;
    let v = vec![denied, cancelled, timed_out, expired, revoked];
    let states: Vec<State> = v.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            State::Denied,
            State::Cancelled,
            State::TimedOut,
            State::Expired,
            State::Revoked
        ]
    );
    v
}

#[test]
fn terminal_states_refuse_every_transition() {
    let p = policy();
    let alice = who(&p, "alice");
    let later = T0 + 24 * 60 * MIN;
    for req in terminal_requests(&p) {
        assert!(req.state.is_terminal());
        assert_eq!(next_due(&req), None, "{:?}", req.state);
        let mut attempts: Vec<(&str, Outcome)> = vec![
            ("activate", activate(&req, later, "")),
            ("begin_expiry", begin_expiry(&req, later)),
            ("confirm_ended", confirm_ended(&req, later)),
            ("time_out", time_out(&req, later)),
            ("cancel", cancel(&req, &alice, later)),
            ("extend", extend(&p, &alice, &req, None, "", "x", later)),
            (
                "review_break_glass",
                review_break_glass(&p, &req, &who(&p, "bob"), ""),
            ),
        ];
        for name in ["alice", "bob", "carol", "dave"] {
            attempts.push((
                "begin_revoke",
                begin_revoke(&p, &req, &who(&p, name), later),
            ));
            for d in [ReviewDecision::Approve, ReviewDecision::Deny] {
                // Before the pending timeout, too.
                attempts.push((
                    "review",
                    review(&p, &req, &who(&p, name), d, "", T0 + 2 * MIN),
                ));
            }
        }
        for (op, result) in attempts {
            assert!(
                result.is_err(),
                "{op} on a {} request was allowed",
                req.state.as_str()
            );
        }
    }
}

#[test]
fn break_glass_only_where_the_entitlement_allows_it() {
    let p = policy();
    let alice = who(&p, "alice");
    let bg = |ent: &str, reason: &str| NewRequest {
        break_glass: true,
        reason: reason.into(),
        ..ask(ent, 30)
    };
    let err = create(&p, &alice, &bg("pair", "prod is down"), "x", T0).unwrap_err();
    assert!(
        matches!(&err, DomainError::Forbidden(m) if m.contains("break-glass")),
        "{err:?}"
    );
    // pair does not require a reason, but break-glass always does.
    let err = create(&p, &alice, &bg("pair", ""), "x", T0).unwrap_err();
    assert!(
        matches!(&err, DomainError::Forbidden(m) if m.contains("break-glass")),
        "{err:?}"
    );
    let (ok, _) = create(&p, &alice, &bg("demo", "prod is down"), "x", T0).unwrap();
    assert!(ok.break_glass);
    let err = create(&p, &alice, &bg("demo", " "), "x", T0).unwrap_err();
    assert!(
        matches!(&err, DomainError::Invalid(m) if m.contains("reason")),
        "{err:?}"
    );
    // Break-glass is no way around "who may request".
    assert!(matches!(
        create(&p, &who(&p, "bob"), &bg("demo", "prod is down"), "x", T0),
        Err(DomainError::Forbidden(_))
    ));
}

#[test]
fn break_glass_activates_at_once_alerts_and_needs_a_second_persons_review() {
    let p = policy();
    let alice = who(&p, "alice");
    let input = NewRequest {
        break_glass: true,
        reason: "prod is down".into(),
        ..ask("demo", 30)
    };
    let (req, events) = stored(create(&p, &alice, &input, "bg", T0).unwrap());
    assert_eq!(req.state, State::Approved);
    assert!(req.break_glass && req.needs_review);
    assert!(req.reviews.is_empty(), "nobody approved it");
    assert_eq!(kinds(&events), ["request.created", "request.break_glass"]);
    assert!(events[1].alert, "break-glass alerts at once");
    assert_eq!(events[1].actor, "twokey|alice");
    assert_eq!(events[1].data["reason"], "prod is down");
    assert!(events.iter().filter(|e| e.alert).count() == 1);

    let (active, events) = stored(activate(&req, T0 + 1000, "granted").unwrap());
    assert_eq!(active.ends_at, Some(T0 + 1000 + 30 * MIN));
    assert_eq!(events[0].data["break_glass"], true);
    assert!(active.needs_review, "still needs review while active");

    // alice cannot sign off her own break-glass, mallory is no reviewer.
    assert_eq!(
        review_break_glass(&p, &active, &alice, "fine"),
        Err(DomainError::SelfApproval)
    );
    assert!(matches!(
        review_break_glass(&p, &active, &who(&p, "mallory"), ""),
        Err(DomainError::Forbidden(_))
    ));
    // carol (an approver) can; the grant itself is unaffected.
    let (reviewed, events) =
        review_break_glass(&p, &active, &who(&p, "carol"), "saw the incident").unwrap();
    assert!(!reviewed.needs_review);
    assert_eq!(
        reviewed.break_glass_reviewed_by,
        Some(IdentityKey::local("carol"))
    );
    assert_eq!(reviewed.state, State::Active);
    assert_eq!(reviewed.ends_at, active.ends_at);
    assert_eq!(kinds(&events), ["break_glass.reviewed"]);
    assert!(
        review_break_glass(&p, &reviewed, &who(&p, "bob"), "").is_err(),
        "reviewed once"
    );

    // The after-the-fact review still works once the grant has ended.
    let end = active.ends_at.unwrap();
    let expired = confirm_ended(&begin_expiry(&active, end).unwrap().0, end)
        .unwrap()
        .0;
    let (r, _) = review_break_glass(&p, &expired, &who(&p, "bob"), "ok").unwrap();
    assert_eq!(r.state, State::Expired);
    assert!(!r.needs_review);

    // An ordinary request has nothing to review after the fact.
    assert!(review_break_glass(&p, &active_demo(&p, T0), &who(&p, "bob"), "").is_err());
}

#[test]
fn extending_makes_a_new_pending_request_and_leaves_the_grant_alone() {
    let p = policy();
    let alice = who(&p, "alice");
    let original = active_demo(&p, T0 + 2 * MIN);
    let before = original.clone();
    let (ext, events) = extend(
        &p,
        &alice,
        &original,
        Some(20 * MIN),
        "",
        "r-ext",
        T0 + 20 * MIN,
    )
    .unwrap();
    assert_eq!(original, before, "the current grant is untouched");
    assert_eq!(ext.id, "r-ext");
    assert_eq!(ext.extends.as_deref(), Some(original.id.as_str()));
    assert_eq!(ext.state, State::Pending);
    assert_eq!(ext.entitlement, "demo");
    assert_eq!(ext.duration_ms, 20 * MIN);
    assert_eq!(
        ext.reason, original.reason,
        "the reason carries over when none is given"
    );
    assert_eq!(kinds(&events), ["request.created"]);
    assert_eq!(events[0].data["extends"], original.id.as_str());

    // It needs approval like any request, and alice still cannot give it.
    assert_eq!(
        review(&p, &ext, &alice, ReviewDecision::Approve, "", T0 + 21 * MIN),
        Err(DomainError::SelfApproval)
    );
    let (ext, _) = review(
        &p,
        &ext,
        &who(&p, "carol"),
        ReviewDecision::Approve,
        "",
        T0 + 21 * MIN,
    )
    .unwrap();
    let (ext, _) = activate(&ext, T0 + 22 * MIN, "").unwrap();
    assert_eq!(ext.ends_at, Some(T0 + 42 * MIN));
    // Both grants stand: the original still ends at its own time.
    assert_eq!(original.ends_at, Some(T0 + 32 * MIN));
    assert_eq!(original.state, State::Active);

    // Only the requester extends, only an active grant, within the maximum.
    assert!(matches!(
        extend(&p, &who(&p, "bob"), &original, None, "", "x", T0),
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        extend(&p, &alice, &alice_requests_demo(&p), None, "", "x", T0),
        Err(DomainError::WrongState(_))
    ));
    assert!(extend(&p, &alice, &original, Some(2 * 60 * MIN), "", "x", T0).is_err());
}

const ADMINS_2: &str = "approvals = 2";

#[test]
fn policy_changes_need_a_second_admin() {
    let current = policy();
    let next_text = POLICY.replace("max_duration = \"1h\"", "max_duration = \"45m\"");
    let next_text = next_text.replacen(
        "default_duration = \"30m\"",
        "default_duration = \"15m\"",
        1,
    );
    let proposed = Policy::parse(&next_text, "new.toml").unwrap_or_else(|e| panic!("{e}"));
    let bob = who(&current, "bob");
    let carol = who(&current, "carol");

    // Non-admins can neither propose nor approve.
    let alice = who(&current, "alice");
    assert!(matches!(
        proposal::propose(&current, &proposed, &alice, "p1", T0),
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        proposal::propose(&current, &current, &bob, "p1", T0),
        Err(DomainError::Invalid(_))
    ));

    let (prop, events) = proposal::propose(&current, &proposed, &bob, "p1", T0).unwrap();
    assert_eq!(prop.state, ProposalState::Pending);
    assert_eq!(prop.base_hash, current.hash);
    assert_eq!(prop.hash, proposed.hash);
    assert_eq!(prop.text, next_text);
    assert_eq!(kinds(&events), ["policy.proposed"]);

    assert_eq!(
        proposal::approve(&current, &prop, &bob),
        Err(DomainError::SelfApproval)
    );
    for outsider in ["alice", "dave", "mallory"] {
        assert!(matches!(
            proposal::approve(&current, &prop, &who(&current, outsider)),
            Err(DomainError::Forbidden(_))
        ));
    }
    let (applied, events, done) = proposal::approve(&current, &prop, &carol).unwrap();
    assert!(done);
    assert_eq!(applied.state, ProposalState::Applied);
    assert_eq!(applied.approvals, vec![IdentityKey::local("carol")]);
    assert_eq!(kinds(&events), ["policy.approved", "policy.applied"]);
    assert!(
        proposal::approve(&current, &applied, &carol).is_err(),
        "applied once"
    );
}

#[test]
fn a_proposal_against_an_old_policy_is_refused() {
    let current = policy();
    let a = Policy::parse(&format!("{POLICY}\n# a\n"), "a.toml").unwrap();
    let b = Policy::parse(&format!("{POLICY}\n# b\n"), "b.toml").unwrap();
    let bob = who(&current, "bob");
    let carol = who(&current, "carol");
    let (pa, _) = proposal::propose(&current, &a, &bob, "pa", T0).unwrap();
    let (pb, _) = proposal::propose(&current, &b, &carol, "pb", T0).unwrap();
    let (_, _, applied) = proposal::approve(&current, &pa, &carol).unwrap();
    assert!(applied);
    // `a` is now in force; `pb` was based on the old policy.
    let err = proposal::approve(&a, &pb, &bob).unwrap_err();
    assert!(
        matches!(&err, DomainError::WrongState(m) if m.contains("propose it again")),
        "{err:?}"
    );
}

#[test]
fn the_admin_rule_counts_distinct_admins_other_than_the_proposer() {
    let text = POLICY
        .replace("approvals = 1\n", &format!("{ADMINS_2}\n"))
        .replace(
            r#"groups = ["approvers", "team-a"]"#,
            r#"groups = ["approvers", "team-a", "platform"]"#,
        );
    let current = Policy::parse(&text, "p.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(current.admins.approvals, 2);
    let proposed = Policy::parse(&format!("{text}\n# v2\n"), "p.toml").unwrap();
    let (p, _) = proposal::propose(&current, &proposed, &who(&current, "bob"), "p", T0).unwrap();
    let (p, _, applied) = proposal::approve(&current, &p, &who(&current, "carol")).unwrap();
    assert!(!applied);
    assert_eq!(p.state, ProposalState::Pending);
    let err = proposal::approve(&current, &p, &who(&current, "carol")).unwrap_err();
    assert!(
        matches!(err, DomainError::Forbidden(_)),
        "carol counts once"
    );
    let (p, _, applied) = proposal::approve(&current, &p, &who(&current, "dave")).unwrap();
    assert!(applied);
    assert_eq!(p.state, ProposalState::Applied);
}

#[test]
fn an_admin_can_reject_a_proposal() {
    let current = policy();
    let proposed = Policy::parse(&format!("{POLICY}\n# v2\n"), "p.toml").unwrap();
    let (p, _) = proposal::propose(&current, &proposed, &who(&current, "bob"), "p", T0).unwrap();
    assert!(proposal::reject(&current, &p, &who(&current, "alice")).is_err());
    let (r, events) = proposal::reject(&current, &p, &who(&current, "carol")).unwrap();
    assert_eq!(r.state, ProposalState::Rejected);
    assert_eq!(kinds(&events), ["policy.rejected"]);
    assert!(proposal::approve(&current, &r, &who(&current, "carol")).is_err());
    assert!(proposal::reject(&current, &r, &who(&current, "bob")).is_err());
}

#[test]
fn states_round_trip_through_their_stored_names() {
    let all = [
        State::Pending,
        State::Approved,
        State::Active,
        State::Revoking,
        State::Expired,
        State::Revoked,
        State::Denied,
        State::Cancelled,
        State::TimedOut,
    ];
    for s in all {
        assert_eq!(State::parse(s.as_str()), Some(s));
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            s.as_str(),
            "serde and as_str agree"
        );
    }
    let terminal: Vec<State> = all.into_iter().filter(|s| s.is_terminal()).collect();
    assert_eq!(
        terminal,
        [
            State::Expired,
            State::Revoked,
            State::Denied,
            State::Cancelled,
            State::TimedOut
        ]
    );
    assert_eq!(State::parse("active "), None);
}

/// When the policy links a person's identities (`links`), none of them may
/// approve a request made by another, and they count once together.
#[test]
fn linked_identities_are_one_person() {
    let text = r#"
[[identity]]
name = "alice"
groups = ["eng"]
links = ["https://sso.example.com|a-7f3e"]
[[identity]]
name = "alice-admin"
subject = "alice.admin"
groups = ["approvers"]
links = ["twokey|alice"]
[[identity]]
name = "bob"
groups = ["approvers"]
links = ["https://sso.example.com|b-1111"]
[[identity]]
name = "carol"
groups = ["approvers"]

[[entitlement]]
name = "two"
provider = "exec"
requester_groups = ["eng"]
max_duration = "1h"
approval = { count = 2, from = ["approvers"] }
[entitlement.target]
grant = ["true"]
"#;
    let p = Policy::parse(text, "links.toml").expect("valid");
    let alice = p.identity("alice").unwrap().actor();
    let (req, _) = create(&p, &alice, &ask("two", 30), "r1", T0).unwrap();
    // alice's admin account links back to alice: refused as self-approval.
    let alice_admin = p.identity("alice-admin").unwrap().actor();
    assert_eq!(
        review(
            &p,
            &req,
            &alice_admin,
            ReviewDecision::Approve,
            "",
            T0 + MIN
        )
        .unwrap_err(),
        DomainError::SelfApproval
    );
    // bob approves, then bob's SSO identity (linked) tries to add the second approval.
    let bob = p.identity("bob").unwrap().actor();
    let (r, _) = review(&p, &req, &bob, ReviewDecision::Approve, "", T0 + MIN).unwrap();
    let mut bob_sso = bob.clone();
    bob_sso.key = IdentityKey {
        issuer: "https://sso.example.com".into(),
        subject: "b-1111".into(),
    };
    bob_sso.links = [bob.key.clone()].into();
    let err = review(&p, &r, &bob_sso, ReviewDecision::Approve, "", T0 + MIN).unwrap_err();
    assert!(
        matches!(&err, DomainError::Forbidden(m) if m.contains("counts once")),
        "{err:?}"
    );
    assert_eq!(r.state, State::Pending);
    let carol = p.identity("carol").unwrap().actor();
    let (r, _) = review(&p, &r, &carol, ReviewDecision::Approve, "", T0 + MIN).unwrap();
    assert_eq!(r.state, State::Approved);
    // A link must be a key.
    let bad = text.replace("links = [\"twokey|alice\"]", "links = [\"alice\"]");
    let err = Policy::parse(&bad, "links.toml").unwrap_err();
    assert!(
        err.to_string().contains("links.toml:10:") && err.to_string().contains("issuer|subject"),
        "{err}"
    );
}
