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

use Permission::{Admin, Maintain, Read, Triage, Write};
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

/// One row of the approval table: a decision rendered as text.
fn row(name: &str, facts: &PullFacts, req: &Requirements) -> String {
    let d = decide(facts, req);
    let approvals: Vec<String> = d.approvals.iter().map(|a| a.reviewer.clone()).collect();
    let ignored: Vec<String> = d
        .ignored
        .iter()
        .map(|i| match i {
            Ignored::ByAuthor { reviewer } => format!("{reviewer}:author"),
            Ignored::ByLastPusher { reviewer } => format!("{reviewer}:last_pusher"),
            Ignored::ByHeadAuthor { reviewer } => format!("{reviewer}:head_author"),
            Ignored::NoWritePermission {
                reviewer,
                permission,
            } => format!("{reviewer}:no_write({permission:?})"),
            Ignored::Stale { reviewer, commit } => {
                format!("{reviewer}:stale({})", commit.get(..4).unwrap_or(commit))
            }
            Ignored::PusherUnknown { reviewer } => format!("{reviewer}:pusher_unknown"),
        })
        .collect();
    let refusals: Vec<String> = d
        .refusals
        .iter()
        .map(|r| match r {
            Refusal::NotEnoughApprovals { have, need } => format!("approvals {have}/{need}"),
            Refusal::ChangesRequested { reviewer } => format!("changes_requested({reviewer})"),
            Refusal::NotMergeable => "not_mergeable".into(),
            Refusal::MergeableUnknown => "mergeable_unknown".into(),
            Refusal::Behind => "behind".into(),
        })
        .collect();
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "{name:<40} | {:<7} | {:<11} | {:<26} | {}",
        if d.allowed() { "apply" } else { "refused" },
        list(&approvals),
        list(&ignored),
        list(&refusals),
    )
}

/// The whole approval table as text: any change to the decision (who
/// counts, why one is ignored, what refuses) changes the snapshot.
#[test]
fn approval_table_snapshot() {
    let one = Requirements::default();
    let two = Requirements {
        approvals: 2,
        ..one
    };
    let on_merge = Requirements {
        require_mergeable: false,
        require_up_to_date: false,
        ..one
    };
    let with = |f: &dyn Fn(&mut PullFacts), reviews: Vec<Review>| {
        let mut x = facts(reviews);
        f(&mut x);
        x
    };
    let same = |_: &mut PullFacts| {};
    let pushed_by_carol = |x: &mut PullFacts| x.last_pusher = Some("carol".into());
    let cases: Vec<(&str, PullFacts, Requirements)> = vec![
        (
            "writer approves the head",
            with(&same, vec![review("bob", HEAD, Approved, Write)]),
            one,
        ),
        (
            "author approves own pull request",
            with(&same, vec![review("alice", HEAD, Approved, Admin)]),
            one,
        ),
        (
            "stale approval after a push",
            with(&same, vec![review("bob", OLD, Approved, Write)]),
            one,
        ),
        (
            "approval by the last pusher",
            with(
                &pushed_by_carol,
                vec![review("carol", HEAD, Approved, Write)],
            ),
            one,
        ),
        (
            "approval by the last pusher, other case",
            with(
                &pushed_by_carol,
                vec![review("CAROL", HEAD, Approved, Write)],
            ),
            one,
        ),
        (
            "approval by a head-commit author",
            with(
                &|x: &mut PullFacts| x.head_authors = vec!["dave".into()],
                vec![review("dave", HEAD, Approved, Maintain)],
            ),
            one,
        ),
        (
            "pusher unknown",
            with(
                &|x: &mut PullFacts| x.last_pusher = None,
                vec![review("bob", HEAD, Approved, Write)],
            ),
            one,
        ),
        (
            "approval by a reader",
            with(&same, vec![review("erin", HEAD, Approved, Read)]),
            one,
        ),
        (
            "approval by a triager",
            with(&same, vec![review("erin", HEAD, Approved, Triage)]),
            one,
        ),
        (
            "too few approvals (1 of 2)",
            with(&same, vec![review("bob", HEAD, Approved, Write)]),
            two,
        ),
        (
            "one reviewer approving twice (of 2)",
            with(
                &same,
                vec![
                    review("bob", HEAD, Approved, Write),
                    review("BOB", HEAD, Approved, Write),
                ],
            ),
            two,
        ),
        (
            "enough approvals (2 of 2)",
            with(
                &same,
                vec![
                    review("bob", HEAD, Approved, Write),
                    review("carol", HEAD, Approved, Admin),
                ],
            ),
            two,
        ),
        (
            "dismissed review",
            with(
                &same,
                vec![
                    review("bob", HEAD, Approved, Write),
                    review("bob", HEAD, Dismissed, Write),
                ],
            ),
            one,
        ),
        (
            "comment after an approval",
            with(
                &same,
                vec![
                    review("bob", HEAD, Approved, Write),
                    review("bob", HEAD, Commented, Write),
                ],
            ),
            one,
        ),
        (
            "pending review after an approval",
            with(
                &same,
                vec![
                    review("bob", HEAD, Approved, Write),
                    review("bob", HEAD, ReviewState::Pending, Write),
                ],
            ),
            one,
        ),
        (
            "changes requested by another reviewer",
            with(
                &same,
                vec![
                    review("bob", HEAD, Approved, Write),
                    review("carol", HEAD, ChangesRequested, Read),
                ],
            ),
            one,
        ),
        (
            "changes requested, then approved",
            with(
                &same,
                vec![
                    review("bob", OLD, ChangesRequested, Write),
                    review("bob", HEAD, Approved, Write),
                ],
            ),
            one,
        ),
        (
            "approved, then changes requested",
            with(
                &same,
                vec![
                    review("bob", HEAD, Approved, Write),
                    review("bob", HEAD, ChangesRequested, Write),
                ],
            ),
            one,
        ),
        (
            "not mergeable",
            with(
                &|x: &mut PullFacts| x.mergeable = Some(false),
                vec![review("bob", HEAD, Approved, Write)],
            ),
            one,
        ),
        (
            "mergeable not computed yet",
            with(
                &|x: &mut PullFacts| x.mergeable = None,
                vec![review("bob", HEAD, Approved, Write)],
            ),
            one,
        ),
        (
            "behind its base",
            with(
                &|x: &mut PullFacts| x.behind = true,
                vec![review("bob", HEAD, Approved, Write)],
            ),
            one,
        ),
        (
            "on merge: mergeability not required",
            with(
                &|x: &mut PullFacts| {
                    x.mergeable = None;
                    x.behind = true;
                },
                vec![review("bob", HEAD, Approved, Write)],
            ),
            on_merge,
        ),
        ("no reviews at all", with(&same, vec![]), one),
    ];
    let table: Vec<String> = cases
        .iter()
        .map(|(name, facts, req)| row(name, facts, req))
        .collect();
    expect_test::expect![[r#"
        writer approves the head                 | apply   | bob         | -                          | -
        author approves own pull request         | refused | -           | alice:author               | approvals 0/1
        stale approval after a push              | refused | -           | bob:stale(aaaa)            | approvals 0/1
        approval by the last pusher              | refused | -           | carol:last_pusher          | approvals 0/1
        approval by the last pusher, other case  | refused | -           | CAROL:last_pusher          | approvals 0/1
        approval by a head-commit author         | refused | -           | dave:head_author           | approvals 0/1
        pusher unknown                           | refused | -           | bob:pusher_unknown         | approvals 0/1
        approval by a reader                     | refused | -           | erin:no_write(Read)        | approvals 0/1
        approval by a triager                    | refused | -           | erin:no_write(Triage)      | approvals 0/1
        too few approvals (1 of 2)               | refused | bob         | -                          | approvals 1/2
        one reviewer approving twice (of 2)      | refused | BOB         | -                          | approvals 1/2
        enough approvals (2 of 2)                | apply   | bob, carol  | -                          | -
        dismissed review                         | refused | -           | -                          | approvals 0/1
        comment after an approval                | apply   | bob         | -                          | -
        pending review after an approval         | apply   | bob         | -                          | -
        changes requested by another reviewer    | refused | bob         | -                          | changes_requested(carol)
        changes requested, then approved         | apply   | bob         | -                          | -
        approved, then changes requested         | refused | -           | -                          | approvals 0/1, changes_requested(bob)
        not mergeable                            | refused | bob         | -                          | not_mergeable
        mergeable not computed yet               | refused | bob         | -                          | mergeable_unknown
        behind its base                          | refused | bob         | -                          | behind
        on merge: mergeability not required      | apply   | bob         | -                          | -
        no reviews at all                        | refused | -           | -                          | approvals 0/1
    "#]].assert_eq(&(table.join("\n") + "\n"));
}
