//! Property tests: random sequences of requests, reviews (by anyone, the
//! requester included), cancellations, clock steps, timeouts, activations,
//! revocations and expiries, some computed from stale copies of a request to
//! model races and retries, applied through a model of the store's optimistic
//! concurrency (a transition computed from version v commits only if the
//! stored version is still v, and each commit bumps the version). After every
//! step the safety invariants of BRIEF.md (1 and 5) must hold over everything
//! ever committed.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use twokey_core::request::{
    activate, begin_expiry, begin_revoke, cancel, confirm_ended, create, extend, review,
    review_break_glass, time_out,
};
use twokey_core::{
    allowed_actions, Action, Actor, DomainError, Event, IdentityKey, NewRequest, Policy, Request,
    ReviewDecision, State,
};

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const T0: i64 = 1_790_000_000_000;

/// Three identities in `approvers` (r2, a1, a2); two requesters (r1, r2), so
/// r2 is both; a2 shares r1's team.
const POLICY: &str = r#"
[admins]
groups = ["approvers"]

[[identity]]
name = "r1"
groups = ["req", "team-x"]

[[identity]]
name = "r2"
groups = ["req", "approvers"]

[[identity]]
name = "a1"
groups = ["approvers"]

[[identity]]
name = "a2"
groups = ["approvers", "team-x"]

[[identity]]
name = "m"
groups = ["other"]

[[entitlement]]
name = "one"
provider = "exec"
requester_groups = ["req"]
max_duration = "1h"
pending_timeout = "30m"
break_glass = true
approval = { count = 1, from = ["approvers"] }

[[entitlement]]
name = "two"
provider = "exec"
requester_groups = ["req"]
max_duration = "1h"
pending_timeout = "30m"
approval = { count = 2, from = ["approvers"] }

[[entitlement]]
name = "team"
provider = "exec"
requester_groups = ["req"]
max_duration = "1h"
pending_timeout = "30m"
break_glass = true
approval = { count = 1, from = ["approvers"], exclude_requester_groups = true }
"#;

const ENTITLEMENTS: [&str; 3] = ["one", "two", "team"];
const DURATIONS: [Option<i64>; 5] = [
    None,
    Some(MIN),
    Some(10 * MIN),
    Some(60 * MIN),
    Some(120 * MIN),
];
const CLOCK_STEPS: [i64; 6] = [0, SEC, MIN, 5 * MIN, 31 * MIN, 61 * MIN];

fn actors(p: &Policy) -> Vec<Actor> {
    let mut v: Vec<Actor> = p.identities.iter().map(|i| i.actor()).collect();
    // r1's second identity at another issuer: same display name, in r1's
    // team and in the approver group. A different identity to twokey.
    v.push(Actor {
        key: IdentityKey {
            issuer: "https://sso.example.com".into(),
            subject: "r1".into(),
        },
        name: "r1".into(),
        groups: BTreeSet::from(["approvers".into(), "team-x".into()]),
        links: Default::default(),
    });
    v.push(Actor::system());
    v
}

/// Which request an operation touches: mostly one of the newest few (so
/// requests live long enough to be approved, activated and ended), sometimes
/// any.
#[derive(Debug, Clone)]
struct Pick {
    recent: bool,
    index: Index,
}

impl Pick {
    fn index(&self, len: usize) -> usize {
        if self.recent {
            len - 1 - self.index.index(len.min(3))
        } else {
            self.index.index(len)
        }
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    (prop::bool::weighted(0.7), any::<Index>()).prop_map(|(recent, index)| Pick { recent, index })
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        who: usize,
        ent: usize,
        dur: usize,
        break_glass: bool,
    },
    Review {
        req: Pick,
        stale: usize,
        who: usize,
        approve: bool,
    },
    Cancel {
        req: Pick,
        stale: usize,
        who: usize,
    },
    TimeOut {
        req: Pick,
        stale: usize,
    },
    Activate {
        req: Pick,
        stale: usize,
    },
    BeginExpiry {
        req: Pick,
        stale: usize,
    },
    BeginRevoke {
        req: Pick,
        stale: usize,
        who: usize,
    },
    ConfirmEnded {
        req: Pick,
        stale: usize,
    },
    ReviewBreakGlass {
        req: Pick,
        stale: usize,
        who: usize,
    },
    Extend {
        req: Pick,
        stale: usize,
        who: usize,
        dur: usize,
    },
    Clock {
        step: usize,
    },
}

/// How many versions back the operation reads: mostly the current one.
fn stale() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 2 => 1usize..4]
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..7;
    prop_oneof![
        4 => (who.clone(), 0usize..3, 0usize..5, prop::bool::weighted(0.25))
            .prop_map(|(who, ent, dur, break_glass)| Op::Create { who, ent, dur, break_glass }),
        8 => (pick(), stale(), who.clone(), prop::bool::weighted(0.85))
            .prop_map(|(req, stale, who, approve)| Op::Review { req, stale, who, approve }),
        1 => (pick(), stale(), who.clone())
            .prop_map(|(req, stale, who)| Op::Cancel { req, stale, who }),
        1 => (pick(), stale()).prop_map(|(req, stale)| Op::TimeOut { req, stale }),
        4 => (pick(), stale()).prop_map(|(req, stale)| Op::Activate { req, stale }),
        2 => (pick(), stale()).prop_map(|(req, stale)| Op::BeginExpiry { req, stale }),
        1 => (pick(), stale(), who.clone())
            .prop_map(|(req, stale, who)| Op::BeginRevoke { req, stale, who }),
        3 => (pick(), stale()).prop_map(|(req, stale)| Op::ConfirmEnded { req, stale }),
        1 => (pick(), stale(), who.clone())
            .prop_map(|(req, stale, who)| Op::ReviewBreakGlass { req, stale, who }),
        1 => (pick(), stale(), who, 0usize..5)
            .prop_map(|(req, stale, who, dur)| Op::Extend { req, stale, who, dur }),
        3 => (0usize..CLOCK_STEPS.len()).prop_map(|step| Op::Clock { step }),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..100)
}

/// What happened, to show the generator reaches the interesting states.
#[derive(Debug, Default)]
struct Stats {
    commits: usize,
    refused: usize,
    lost_races: usize,
    self_approvals_refused: usize,
    activations: usize,
    break_glass_activations: usize,
    two_approval_activations: usize,
    /// `allowed_actions` checks against the transition: listed and accepted.
    actions_allowed: BTreeMap<Action, usize>,
    /// Not listed and refused.
    actions_refused: BTreeMap<Action, usize>,
    final_states: BTreeMap<&'static str, usize>,
}

/// The store: every committed version of every request, and its events.
struct Model<'p> {
    policy: &'p Policy,
    actors: Vec<Actor>,
    now: i64,
    history: Vec<Vec<Request>>,
    events: Vec<Vec<Event>>,
    stats: Stats,
    /// The request the last operation committed to, if any.
    touched: Option<usize>,
}

type Outcome = Result<(Request, Vec<Event>), DomainError>;

impl<'p> Model<'p> {
    fn new(policy: &'p Policy) -> Self {
        Model {
            policy,
            actors: actors(policy),
            now: T0,
            history: vec![],
            events: vec![],
            stats: Stats::default(),
            touched: None,
        }
    }

    /// The request at `idx` as read `stale` versions ago.
    fn read(&self, req: &Pick, stale: usize) -> Option<(usize, Request)> {
        if self.history.is_empty() {
            return None;
        }
        let idx = req.index(self.history.len());
        let h = &self.history[idx];
        Some((idx, h[h.len() - 1 - stale.min(h.len() - 1)].clone()))
    }

    fn insert(&mut self, outcome: Outcome) {
        match outcome {
            Ok((req, events)) => {
                assert_eq!(req.version, 0);
                assert_eq!(
                    req.id,
                    format!("r{}", self.history.len()),
                    "ids are the caller's"
                );
                self.history.push(vec![req]);
                self.touched = Some(self.history.len() - 1);
                self.events.push(events);
                self.stats.commits += 1;
            }
            Err(_) => self.stats.refused += 1,
        }
    }

    /// Commit `outcome`, computed from `base`, if nobody committed since.
    fn commit(&mut self, idx: usize, base: &Request, outcome: Outcome) {
        match outcome {
            Ok((mut next, events)) => {
                assert_eq!(
                    next.version, base.version,
                    "the core leaves versions to the store"
                );
                assert_eq!(next.id, base.id);
                let current = self.history[idx].last().unwrap();
                if current.version != base.version {
                    self.stats.lost_races += 1;
                    return;
                }
                next.version += 1;
                if next.activated_at.is_some() && base.activated_at.is_none() {
                    self.stats.activations += 1;
                    if next.break_glass {
                        self.stats.break_glass_activations += 1;
                    } else if self
                        .policy
                        .entitlement(&next.entitlement)
                        .unwrap()
                        .approval
                        .count
                        == 2
                    {
                        self.stats.two_approval_activations += 1;
                    }
                }
                self.history[idx].push(next);
                self.touched = Some(idx);
                self.events[idx].extend(events);
                self.stats.commits += 1;
            }
            Err(DomainError::SelfApproval) => self.stats.self_approvals_refused += 1,
            Err(_) => self.stats.refused += 1,
        }
    }

    fn apply(&mut self, op: &Op) {
        let p = self.policy;
        let now = self.now;
        match op {
            Op::Create {
                who,
                ent,
                dur,
                break_glass,
            } => {
                let input = NewRequest {
                    entitlement: ENTITLEMENTS[*ent].into(),
                    duration_ms: DURATIONS[*dur],
                    reason: "work".into(),
                    ticket: None,
                    break_glass: *break_glass,
                };
                let id = format!("r{}", self.history.len());
                let out = create(p, &self.actors[*who], &input, &id, now);
                self.insert(out);
            }
            Op::Extend {
                req,
                stale,
                who,
                dur,
            } => {
                let Some((_, base)) = self.read(req, *stale) else {
                    return;
                };
                self.check_allowed(op, &base);
                let id = format!("r{}", self.history.len());
                let out = extend(p, &self.actors[*who], &base, DURATIONS[*dur], "", &id, now);
                if let Ok((r, _)) = &out {
                    assert_eq!(
                        r.state,
                        State::Pending,
                        "an extension always needs approval"
                    );
                    assert_eq!(r.extends.as_deref(), Some(base.id.as_str()));
                }
                self.insert(out);
            }
            Op::Clock { step } => self.now += CLOCK_STEPS[*step],
            _ => {
                let (req, stale) = match op {
                    Op::Review { req, stale, .. }
                    | Op::Cancel { req, stale, .. }
                    | Op::TimeOut { req, stale }
                    | Op::Activate { req, stale }
                    | Op::BeginExpiry { req, stale }
                    | Op::BeginRevoke { req, stale, .. }
                    | Op::ConfirmEnded { req, stale }
                    | Op::ReviewBreakGlass { req, stale, .. } => (req, *stale),
                    Op::Create { .. } | Op::Extend { .. } | Op::Clock { .. } => unreachable!(),
                };
                let Some((idx, base)) = self.read(req, stale) else {
                    return;
                };
                self.check_allowed(op, &base);
                let out = match op {
                    Op::Review { who, approve, .. } => {
                        let d = if *approve {
                            ReviewDecision::Approve
                        } else {
                            ReviewDecision::Deny
                        };
                        review(p, &base, &self.actors[*who], d, "", now)
                    }
                    Op::Cancel { who, .. } => cancel(&base, &self.actors[*who], now),
                    Op::TimeOut { .. } => time_out(&base, now),
                    Op::Activate { .. } => activate(&base, now, "applied"),
                    Op::BeginExpiry { .. } => begin_expiry(&base, now),
                    Op::BeginRevoke { who, .. } => begin_revoke(p, &base, &self.actors[*who], now),
                    Op::ConfirmEnded { .. } => confirm_ended(&base, now),
                    Op::ReviewBreakGlass { who, .. } => {
                        review_break_glass(p, &base, &self.actors[*who], "")
                    }
                    Op::Create { .. } | Op::Extend { .. } | Op::Clock { .. } => unreachable!(),
                };
                self.commit(idx, &base, out);
            }
        }
    }

    /// `allowed_actions` lists a person's action exactly when its transition
    /// accepts it (with neutral input: no comment, the default duration).
    fn check_allowed(&mut self, op: &Op, base: &Request) {
        let (p, now) = (self.policy, self.now);
        let (who, action) = match op {
            Op::Review { who, approve, .. } => (
                *who,
                if *approve {
                    Action::Approve
                } else {
                    Action::Deny
                },
            ),
            Op::Cancel { who, .. } => (*who, Action::Cancel),
            Op::BeginRevoke { who, .. } => (*who, Action::Revoke),
            Op::ReviewBreakGlass { who, .. } => (*who, Action::ReviewBreakGlass),
            Op::Extend { who, .. } => (*who, Action::Extend),
            _ => return,
        };
        let actor = &self.actors[who];
        let accepted = match action {
            Action::Approve => review(p, base, actor, ReviewDecision::Approve, "", now).is_ok(),
            Action::Deny => review(p, base, actor, ReviewDecision::Deny, "", now).is_ok(),
            Action::Cancel => cancel(base, actor, now).is_ok(),
            Action::Revoke => begin_revoke(p, base, actor, now).is_ok(),
            Action::ReviewBreakGlass => review_break_glass(p, base, actor, "").is_ok(),
            Action::Extend => extend(p, actor, base, None, "", "probe", now).is_ok(),
        };
        let listed = allowed_actions(p, base, actor, now).contains(&action);
        assert_eq!(
            listed, accepted,
            "allowed_actions says {listed} for {action:?} by {} on {base:?}; the transition says {accepted}",
            actor.name
        );
        let tally = if accepted {
            &mut self.stats.actions_allowed
        } else {
            &mut self.stats.actions_refused
        };
        *tally.entry(action).or_default() += 1;
    }

    fn actor(&self, key: &IdentityKey) -> &Actor {
        self.actors
            .iter()
            .find(|a| &a.key == key)
            .expect("reviewer is a known actor")
    }

    /// The invariants, over everything ever committed.
    fn check(&self) {
        for i in 0..self.history.len() {
            self.check_one(i);
        }
    }

    /// The invariants for one request, over all its committed versions.
    fn check_one(&self, i: usize) {
        {
            let (h, events) = (&self.history[i], &self.events[i]);
            let first = &h[0];
            let ent = self.policy.entitlement(&first.entitlement).unwrap();
            let requester = self.actor(&first.requester);
            assert!(
                ent.may_request(requester),
                "{} could not request {}",
                requester.name,
                ent.name
            );

            for (i, r) in h.iter().enumerate() {
                assert_eq!(r.version, i as i64, "one version per commit");
                assert_eq!(r.id, first.id);
                assert_eq!(r.requester, first.requester);
                assert_eq!(r.duration_ms, first.duration_ms);
                assert_eq!(
                    r.break_glass, first.break_glass,
                    "break-glass is decided at creation"
                );

                // (4) The grant ends exactly its duration after activation.
                match r.activated_at {
                    Some(at) => assert_eq!(r.ends_at, Some(at + r.duration_ms)),
                    None => assert_eq!(r.ends_at, None),
                }
                assert!(r.duration_ms > 0 && r.duration_ms <= ent.max_duration_ms);

                // (1) Approved or active only with the approvals the rule needs.
                if matches!(r.state, State::Approved | State::Active) && !r.break_glass {
                    let approvers: Vec<&IdentityKey> = r
                        .reviews
                        .iter()
                        .filter(|v| v.decision == ReviewDecision::Approve)
                        .map(|v| &v.reviewer)
                        .collect();
                    let distinct: BTreeSet<&IdentityKey> = approvers.iter().copied().collect();
                    assert_eq!(
                        distinct.len(),
                        approvers.len(),
                        "an identity approved twice: {r:?}"
                    );
                    assert!(
                        !distinct.contains(&r.requester),
                        "the requester approved: {r:?}"
                    );
                    assert!(
                        distinct.len() >= ent.approval.count as usize,
                        "{} approval(s) for a rule of {}: {r:?}",
                        distinct.len(),
                        ent.approval.count
                    );
                    for k in &distinct {
                        assert!(
                            eligible(ent, self.actor(k), r),
                            "ineligible approver {k}: {r:?}"
                        );
                    }
                    for v in &r.reviews {
                        assert!(
                            v.at >= r.created_at && v.at < r.pending_until,
                            "review outside the pending window: {r:?}"
                        );
                    }
                    assert!(
                        r.reviews
                            .iter()
                            .all(|v| v.decision == ReviewDecision::Approve),
                        "a denied request was approved: {r:?}"
                    );
                }
                if r.break_glass {
                    assert!(
                        ent.break_glass,
                        "break-glass on {} which does not allow it",
                        ent.name
                    );
                    assert!(r.reviews.is_empty());
                    assert!(!r.reason.trim().is_empty(), "break-glass without a reason");
                }
                if !r.needs_review {
                    if let Some(k) = &r.break_glass_reviewed_by {
                        assert_ne!(k, &r.requester, "break-glass reviewed by its requester");
                    }
                } else {
                    assert!(r.break_glass);
                }
                if r.state.is_terminal() {
                    assert!(
                        r.ended_at.is_some(),
                        "{} without an end time",
                        r.state.as_str()
                    );
                }
            }

            for w in h.windows(2) {
                let (a, b) = (&w[0], &w[1]);
                // (3) Terminal states never change.
                if a.state.is_terminal() {
                    assert_eq!(b.state, a.state, "left terminal state: {a:?} -> {b:?}");
                    assert_eq!(b.ended_at, a.ended_at);
                }
                // (2) Activation happens once and is never moved.
                if a.activated_at.is_some() {
                    assert_eq!(b.activated_at, a.activated_at, "re-activated");
                    assert_eq!(b.ends_at, a.ends_at, "end time moved");
                }
                let allowed = a.state == b.state
                    || matches!(
                        (a.state, b.state),
                        (State::Pending, State::Approved)
                            | (State::Pending, State::Denied)
                            | (State::Pending, State::Cancelled)
                            | (State::Pending, State::TimedOut)
                            | (State::Approved, State::Active)
                            | (State::Approved, State::Revoking)
                            | (State::Active, State::Revoking)
                            | (State::Revoking, State::Expired)
                            | (State::Revoking, State::Revoked)
                    );
                assert!(allowed, "transition {:?} -> {:?}", a.state, b.state);
                if b.state == State::Active && a.state != State::Active {
                    assert_eq!(a.state, State::Approved);
                    assert!(b.activated_at.is_some());
                }
                // Nothing but the after-the-fact review changes a terminal request.
                if a.state.is_terminal() {
                    let mut b2 = b.clone();
                    b2.needs_review = a.needs_review;
                    b2.break_glass_reviewed_by = a.break_glass_reviewed_by.clone();
                    b2.version = a.version;
                    assert_eq!(&b2, a);
                }
            }

            // (2) At most one activation event.
            let activated = events
                .iter()
                .filter(|e| e.kind == "grant.activated")
                .count();
            assert!(activated <= 1, "{} activated {activated} times", first.id);
            let last = h.last().unwrap();
            assert_eq!(activated == 1, last.activated_at.is_some());
            if let Some(e) = events.iter().find(|e| e.kind == "grant.activated") {
                assert_eq!(e.data["activated_at"], last.activated_at.unwrap());
                assert_eq!(e.data["ends_at"], last.ends_at.unwrap());
            }
            // (5) Break-glass always alerted, at creation.
            if first.break_glass {
                assert!(
                    events
                        .iter()
                        .any(|e| e.alert && e.kind == "request.break_glass"),
                    "break-glass {} without an alert",
                    first.id
                );
            } else {
                assert!(
                    events.iter().all(|e| !e.alert),
                    "unexpected alert for {}",
                    first.id
                );
            }
            if last.activated_at.is_some() && first.break_glass {
                let alert = events.iter().position(|e| e.alert).unwrap();
                let act = events
                    .iter()
                    .position(|e| e.kind == "grant.activated")
                    .unwrap();
                assert!(alert < act, "the alert comes before the access");
            }
        }
    }

    fn finish(&mut self) {
        for h in &self.history {
            *self
                .stats
                .final_states
                .entry(h.last().unwrap().state.as_str())
                .or_default() += 1;
        }
    }
}

/// Eligibility as the issue states it, written out independently of
/// `Entitlement::may_approve` so the check is not circular: not the
/// requester, a member of an approver group, and with "not from the
/// requester's own group" no group shared with the requester other than the
/// approver groups.
fn eligible(ent: &twokey_core::Entitlement, approver: &Actor, req: &Request) -> bool {
    let from: BTreeSet<&String> = ent.approval.from.iter().collect();
    approver.key != req.requester
        && approver.groups.iter().any(|g| from.contains(g))
        && !(ent.approval.exclude_requester_groups
            && approver
                .groups
                .iter()
                .any(|g| !from.contains(g) && req.requester_groups.contains(g)))
}

fn policy() -> Policy {
    Policy::parse(POLICY, "invariants.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn run(policy: &Policy, ops: &[Op]) -> Stats {
    let mut m = Model::new(policy);
    for op in ops {
        m.apply(op);
        // Only the request just written can have changed.
        if let Some(i) = m.touched.take() {
            m.check_one(i);
        }
    }
    m.check();
    m.finish();
    m.stats
}

proptest! {
    #![proptest_config(Config {
        cases: 200,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    })]

    #[test]
    fn safety_invariants_hold_over_random_histories(ops in ops()) {
        let p = policy();
        run(&p, &ops);
    }
}

/// The properties above are only as good as the histories they see: make
/// sure the generator reaches activations, two-approval grants, break-glass,
/// lost races, self-approval attempts and every end state.
#[test]
fn the_generator_reaches_the_interesting_states() {
    let p = policy();
    let mut runner = TestRunner::deterministic();
    let strategy = ops();
    let mut total = Stats::default();
    for _ in 0..120 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let s = run(&p, &ops);
        total.commits += s.commits;
        total.refused += s.refused;
        total.lost_races += s.lost_races;
        total.self_approvals_refused += s.self_approvals_refused;
        total.activations += s.activations;
        total.break_glass_activations += s.break_glass_activations;
        total.two_approval_activations += s.two_approval_activations;
        for (k, v) in s.final_states {
            *total.final_states.entry(k).or_default() += v;
        }
        for (k, v) in s.actions_allowed {
            *total.actions_allowed.entry(k).or_default() += v;
        }
        for (k, v) in s.actions_refused {
            *total.actions_refused.entry(k).or_default() += v;
        }
    }
    println!("{total:#?}");
    assert!(total.activations >= 30, "{total:#?}");
    assert!(total.break_glass_activations >= 10, "{total:#?}");
    assert!(total.two_approval_activations >= 2, "{total:#?}");
    assert!(total.lost_races >= 20, "{total:#?}");
    assert!(total.self_approvals_refused >= 10, "{total:#?}");
    // `allowed_actions` was held to every person's transition both ways.
    for a in Action::ALL {
        assert!(
            total.actions_allowed.get(&a).copied().unwrap_or(0) > 0,
            "never allowed {a:?}: {total:#?}"
        );
        assert!(
            total.actions_refused.get(&a).copied().unwrap_or(0) > 0,
            "never refused {a:?}: {total:#?}"
        );
    }
    for s in [
        "pending",
        "approved",
        "active",
        "revoking",
        "expired",
        "revoked",
        "denied",
        "cancelled",
        "timed_out",
    ] {
        assert!(
            total.final_states.get(s).copied().unwrap_or(0) > 0,
            "never ended {s}: {total:#?}"
        );
    }
}

/// The store's version check is what stops a stale or retried activation;
/// the core alone would accept the stale copy. Shown once, concretely.
#[test]
fn without_the_version_check_a_stale_activation_would_win() {
    let p = policy();
    let a = actors(&p);
    let (r1, a1) = (&a[0], &a[2]);
    let input = NewRequest {
        entitlement: "one".into(),
        duration_ms: Some(MIN),
        ..Default::default()
    };
    let (req, _) = create(&p, r1, &input, "r0", T0).unwrap();
    let (approved, _) = review(&p, &req, a1, ReviewDecision::Approve, "", T0).unwrap();
    let (active, _) = activate(&approved, T0 + SEC, "").unwrap();
    // A retry computed from the approved copy succeeds in the core...
    let (again, _) = activate(&approved, T0 + 2 * SEC, "").unwrap();
    assert_ne!(again.activated_at, active.activated_at);
    // ...so the model store must refuse it: both came from the same version.
    let mut m = Model::new(&p);
    m.history.push(vec![approved.clone()]);
    m.events.push(vec![]);
    m.commit(0, &approved, activate(&approved, T0 + SEC, ""));
    m.commit(0, &approved, activate(&approved, T0 + 2 * SEC, ""));
    m.check();
    assert_eq!(m.history[0].len(), 2);
    assert_eq!(m.stats.lost_races, 1);
    assert_eq!(m.history[0][1].activated_at, Some(T0 + SEC));
}
