//! Table-driven tests of the apply requirements: each attack Atlantis'
//! `approved` check lets through is refused here.

use twokey_gate::requirements::{
    decide, Ignored, Permission, PullFacts, Refusal, Requirements, Review, ReviewState,
};

const HEAD: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const OLD: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn review(who: &str, commit: &str, state: ReviewState, perm: Permission) -> Review {
    Review {
        reviewer: who.into(),
        commit: commit.into(),
        state,
        permission: perm,
    }
}

fn facts(reviews: Vec<Review>) -> PullFacts {
    PullFacts {
        head_sha: HEAD.into(),
        author: "alice".into(),
        last_pusher: Some("alice".into()),
        head_authors: vec![],
        mergeable: Some(true),
        behind: false,
        reviews,
    }
}

use Permission::{Admin, Read, Triage, Write};
use ReviewState::{Approved, ChangesRequested, Commented, Dismissed};

#[test]
fn each_attack_is_refused_and_honest_approval_passes() {
    struct Case {
        name: &'static str,
        facts: PullFacts,
        req: Requirements,
        allowed: bool,
        expect_ignored: Option<Ignored>,
        expect_refusal: Option<Refusal>,
    }
    let one = Requirements::default();
    let two = Requirements {
        approvals: 2,
        ..one
    };
    let cases = vec![
        Case {
            name: "approval by a writer on the head commit",
            facts: facts(vec![review("bob", HEAD, Approved, Write)]),
            req: one,
            allowed: true,
            expect_ignored: None,
            expect_refusal: None,
        },
        Case {
            name: "approval by the author",
            facts: facts(vec![review("alice", HEAD, Approved, Admin)]),
            req: one,
            allowed: false,
            expect_ignored: Some(Ignored::ByAuthor {
                reviewer: "alice".into(),
            }),
            expect_refusal: Some(Refusal::NotEnoughApprovals { have: 0, need: 1 }),
        },
        Case {
            name: "approval by the author, login in other case",
            facts: facts(vec![review("ALICE", HEAD, Approved, Admin)]),
            req: one,
            allowed: false,
            expect_ignored: Some(Ignored::ByAuthor {
                reviewer: "ALICE".into(),
            }),
            expect_refusal: None,
        },
        Case {
            name: "approval by a reader",
            facts: facts(vec![review("rita", HEAD, Approved, Read)]),
            req: one,
            allowed: false,
            expect_ignored: Some(Ignored::NoWritePermission {
                reviewer: "rita".into(),
                permission: Read,
            }),
            expect_refusal: Some(Refusal::NotEnoughApprovals { have: 0, need: 1 }),
        },
        Case {
            name: "approval by a triager",
            facts: facts(vec![review("tim", HEAD, Approved, Triage)]),
            req: one,
            allowed: false,
            expect_ignored: Some(Ignored::NoWritePermission {
                reviewer: "tim".into(),
                permission: Triage,
            }),
            expect_refusal: None,
        },
        Case {
            name: "approval on an older commit after a new push",
            facts: facts(vec![review("bob", OLD, Approved, Write)]),
            req: one,
            allowed: false,
            expect_ignored: Some(Ignored::Stale {
                reviewer: "bob".into(),
                commit: OLD.into(),
            }),
            expect_refusal: Some(Refusal::NotEnoughApprovals { have: 0, need: 1 }),
        },
        Case {
            name: "approval by the person who pushed the head commit",
            facts: PullFacts {
                last_pusher: Some("mallory".into()),
                head_authors: vec![],
                ..facts(vec![review("mallory", HEAD, Approved, Write)])
            },
            req: one,
            allowed: false,
            expect_ignored: Some(Ignored::ByLastPusher {
                reviewer: "mallory".into(),
            }),
            expect_refusal: None,
        },
        Case {
            name: "approval by the author of the head commit, pushed and opened by someone else",
            facts: PullFacts {
                head_authors: vec!["Mallory".into()],
                ..facts(vec![review("mallory", HEAD, Approved, Write)])
            },
            req: one,
            allowed: false,
            expect_ignored: Some(Ignored::ByHeadAuthor {
                reviewer: "mallory".into(),
            }),
            expect_refusal: None,
        },
        Case {
            name: "unknown pusher fails closed",
            facts: PullFacts {
                last_pusher: None,
                head_authors: vec![],
                ..facts(vec![review("bob", HEAD, Approved, Write)])
            },
            req: one,
            allowed: false,
            expect_ignored: Some(Ignored::PusherUnknown {
                reviewer: "bob".into(),
            }),
            expect_refusal: None,
        },
        Case {
            name: "changes requested outstanding",
            facts: facts(vec![
                review("bob", HEAD, Approved, Write),
                review("carol", OLD, ChangesRequested, Write),
            ]),
            req: one,
            allowed: false,
            expect_ignored: None,
            expect_refusal: Some(Refusal::ChangesRequested {
                reviewer: "carol".into(),
            }),
        },
        Case {
            name: "changes requested then approved by the same reviewer",
            facts: facts(vec![
                review("carol", OLD, ChangesRequested, Write),
                review("carol", HEAD, Approved, Write),
            ]),
            req: one,
            allowed: true,
            expect_ignored: None,
            expect_refusal: None,
        },
        Case {
            name: "approval withdrawn by a later request for changes",
            facts: facts(vec![
                review("bob", HEAD, Approved, Write),
                review("bob", HEAD, ChangesRequested, Write),
            ]),
            req: one,
            allowed: false,
            expect_ignored: None,
            expect_refusal: Some(Refusal::ChangesRequested {
                reviewer: "bob".into(),
            }),
        },
        Case {
            name: "a comment after an approval keeps the approval",
            facts: facts(vec![
                review("bob", HEAD, Approved, Write),
                review("bob", HEAD, Commented, Write),
            ]),
            req: one,
            allowed: true,
            expect_ignored: None,
            expect_refusal: None,
        },
        Case {
            name: "dismissed approval does not count",
            facts: facts(vec![
                review("bob", HEAD, Approved, Write),
                review("bob", HEAD, Dismissed, Write),
            ]),
            req: one,
            allowed: false,
            expect_ignored: None,
            expect_refusal: Some(Refusal::NotEnoughApprovals { have: 0, need: 1 }),
        },
        Case {
            name: "two approvals by one reviewer are one approval",
            facts: facts(vec![
                review("bob", HEAD, Approved, Write),
                review("Bob", HEAD, Approved, Write),
            ]),
            req: two,
            allowed: false,
            expect_ignored: None,
            expect_refusal: Some(Refusal::NotEnoughApprovals { have: 1, need: 2 }),
        },
        Case {
            name: "two distinct writers meet two approvals",
            facts: facts(vec![
                review("bob", HEAD, Approved, Write),
                review("carol", HEAD, Approved, Admin),
            ]),
            req: two,
            allowed: true,
            expect_ignored: None,
            expect_refusal: None,
        },
        Case {
            name: "not mergeable",
            facts: PullFacts {
                mergeable: Some(false),
                ..facts(vec![review("bob", HEAD, Approved, Write)])
            },
            req: one,
            allowed: false,
            expect_ignored: None,
            expect_refusal: Some(Refusal::NotMergeable),
        },
        Case {
            name: "mergeability not computed yet",
            facts: PullFacts {
                mergeable: None,
                ..facts(vec![review("bob", HEAD, Approved, Write)])
            },
            req: one,
            allowed: false,
            expect_ignored: None,
            expect_refusal: Some(Refusal::MergeableUnknown),
        },
        Case {
            name: "behind its base",
            facts: PullFacts {
                behind: true,
                ..facts(vec![review("bob", HEAD, Approved, Write)])
            },
            req: one,
            allowed: false,
            expect_ignored: None,
            expect_refusal: Some(Refusal::Behind),
        },
        Case {
            name: "mergeability and freshness checks can be switched off",
            facts: PullFacts {
                behind: true,
                mergeable: Some(false),
                ..facts(vec![review("bob", HEAD, Approved, Write)])
            },
            req: Requirements {
                require_mergeable: false,
                require_up_to_date: false,
                ..one
            },
            allowed: true,
            expect_ignored: None,
            expect_refusal: None,
        },
        Case {
            name: "no reviews at all",
            facts: facts(vec![]),
            req: one,
            allowed: false,
            expect_ignored: None,
            expect_refusal: Some(Refusal::NotEnoughApprovals { have: 0, need: 1 }),
        },
    ];
    for c in cases {
        let d = decide(&c.facts, &c.req);
        assert_eq!(d.allowed(), c.allowed, "{}: {d:?}", c.name);
        if let Some(i) = &c.expect_ignored {
            assert!(d.ignored.contains(i), "{}: expected {i:?} in {d:?}", c.name);
        }
        if let Some(r) = &c.expect_refusal {
            assert!(
                d.refusals.contains(r),
                "{}: expected {r:?} in {d:?}",
                c.name
            );
        }
        if c.allowed {
            assert!(d.approvals.iter().all(|a| a.commit == HEAD), "{}", c.name);
        } else {
            assert!(!d.explain().is_empty(), "{}: refusal must explain", c.name);
        }
    }
}

#[test]
fn approval_evidence_names_reviewer_and_commit() {
    let d = decide(
        &facts(vec![review("bob", HEAD, Approved, Write)]),
        &Requirements::default(),
    );
    assert_eq!(d.approvals.len(), 1);
    assert_eq!(d.approvals[0].reviewer, "bob");
    assert_eq!(d.approvals[0].commit, HEAD);
}

#[test]
fn github_strings_parse() {
    assert_eq!(ReviewState::parse("APPROVED"), Approved);
    assert_eq!(ReviewState::parse("changes_requested"), ChangesRequested);
    assert_eq!(ReviewState::parse("weird"), Commented);
    assert_eq!(Permission::parse("push"), Write);
    assert_eq!(Permission::parse("maintain"), Permission::Maintain);
    assert_eq!(Permission::parse("none"), Permission::None);
    assert_eq!(Permission::parse("???"), Permission::None);
}
