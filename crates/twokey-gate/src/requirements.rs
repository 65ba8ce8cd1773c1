//! The apply requirements as a pure function over plain data.
//!
//! Atlantis' `approved` requirement counts any approving review: one on an
//! older commit, one by a user with read access only, one by the author's
//! co-pusher. Here an approval counts only when it is
//!
//! - the reviewer's latest decisive review (a later `CHANGES_REQUESTED` or
//!   `DISMISSED` cancels it; plain comments do not),
//! - on the current head commit (a new push makes earlier approvals stale),
//! - by someone other than the pull request's author, whoever pushed the
//!   head commit, and the head commit's author and committer,
//! - by someone with write permission (write, maintain or admin),
//!
//! and `approvals` such reviewers must be distinct identities. Any reviewer
//! whose latest decisive review requests changes blocks the apply, and the
//! pull request must be mergeable and not behind its base. Logins are compared
//! case-insensitively, as GitHub does.

use serde::{Deserialize, Serialize};

/// A review's state as GitHub reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReviewState {
    /// Approved.
    Approved,
    /// Changes requested.
    ChangesRequested,
    /// A comment only; does not change the reviewer's decision.
    Commented,
    /// Dismissed; cancels the reviewer's earlier decision.
    Dismissed,
    /// Not yet submitted.
    Pending,
}

impl ReviewState {
    /// Parses GitHub's `state` string (unknown states are treated as comments,
    /// which never count as approvals).
    pub fn parse(s: &str) -> ReviewState {
        match s.to_ascii_uppercase().as_str() {
            "APPROVED" => ReviewState::Approved,
            "CHANGES_REQUESTED" => ReviewState::ChangesRequested,
            "DISMISSED" => ReviewState::Dismissed,
            "PENDING" => ReviewState::Pending,
            _ => ReviewState::Commented,
        }
    }
}

/// A collaborator's permission on the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// No access.
    None,
    /// Read.
    Read,
    /// Triage.
    Triage,
    /// Write.
    Write,
    /// Maintain.
    Maintain,
    /// Admin.
    Admin,
}

impl Permission {
    /// Parses GitHub's permission (`role_name` or legacy `permission`);
    /// anything unknown is [`Permission::None`].
    pub fn parse(s: &str) -> Permission {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Permission::Admin,
            "maintain" => Permission::Maintain,
            "write" | "push" => Permission::Write,
            "triage" => Permission::Triage,
            "read" | "pull" => Permission::Read,
            _ => Permission::None,
        }
    }

    /// Whether this permission may approve an apply or run comment commands.
    pub fn can_write(self) -> bool {
        self >= Permission::Write
    }
}

/// One submitted review, in the order GitHub lists them (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Reviewer login.
    pub reviewer: String,
    /// The commit the review was made on (`commit_id`).
    pub commit: String,
    /// Review state.
    pub state: ReviewState,
    /// The reviewer's permission on the repository, looked up at decision time.
    pub permission: Permission,
}

/// Everything the decision needs about a pull request, as plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullFacts {
    /// Current head commit.
    pub head_sha: String,
    /// Author of the pull request.
    pub author: String,
    /// Who pushed the head commit (from the push webhook's sender), if known.
    /// Unknown means no approval can be counted (fail closed).
    pub last_pusher: Option<String>,
    /// GitHub logins of the head commit's author and committer (they wrote
    /// the change even when someone else pushed it or opened the pull
    /// request); their approvals do not count.
    #[serde(default)]
    pub head_authors: Vec<String>,
    /// GitHub's `mergeable`; `None` while GitHub is still computing it.
    pub mergeable: Option<bool>,
    /// Whether the head is behind its base branch.
    pub behind: bool,
    /// Reviews, oldest first.
    pub reviews: Vec<Review>,
}

/// Which requirements are enforced. All on by default, one approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    /// Approvals needed from distinct eligible reviewers.
    pub approvals: u32,
    /// Refuse unless GitHub reports the pull request mergeable.
    pub require_mergeable: bool,
    /// Refuse when the head is behind the base branch.
    pub require_up_to_date: bool,
}

impl Default for Requirements {
    fn default() -> Self {
        Requirements {
            approvals: 1,
            require_mergeable: true,
            require_up_to_date: true,
        }
    }
}

/// Why one approving review was not counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Ignored {
    /// The pull request's author approved it.
    ByAuthor {
        /// Reviewer.
        reviewer: String,
    },
    /// The person who pushed the head commit approved it.
    ByLastPusher {
        /// Reviewer.
        reviewer: String,
    },
    /// The author or committer of the head commit approved it.
    ByHeadAuthor {
        /// Reviewer.
        reviewer: String,
    },
    /// The reviewer lacks write permission.
    NoWritePermission {
        /// Reviewer.
        reviewer: String,
        /// Their permission.
        permission: Permission,
    },
    /// The approval was on an older commit.
    Stale {
        /// Reviewer.
        reviewer: String,
        /// The commit approved.
        commit: String,
    },
    /// Nobody knows who pushed the head commit, so no approval can be
    /// shown to come from someone else.
    PusherUnknown {
        /// Reviewer.
        reviewer: String,
    },
}

/// Why the apply is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// Fewer eligible approvals than required.
    NotEnoughApprovals {
        /// Eligible approvals counted.
        have: u32,
        /// Required.
        need: u32,
    },
    /// Someone's latest decisive review requests changes.
    ChangesRequested {
        /// Reviewer.
        reviewer: String,
    },
    /// GitHub reports the pull request not mergeable.
    NotMergeable,
    /// GitHub has not computed mergeability yet.
    MergeableUnknown,
    /// The head is behind the base branch.
    Behind,
}

/// An approval that counted: who approved which commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Reviewer login.
    pub reviewer: String,
    /// The commit approved (always the head commit).
    pub commit: String,
    /// The reviewer's permission at decision time.
    pub permission: Permission,
}

/// The decision and its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Approvals that counted.
    pub approvals: Vec<Approval>,
    /// Approving reviews that did not count, and why.
    pub ignored: Vec<Ignored>,
    /// Why the apply is refused; empty means allowed.
    pub refusals: Vec<Refusal>,
}

impl Decision {
    /// Whether every requirement is met.
    pub fn allowed(&self) -> bool {
        self.refusals.is_empty()
    }

    /// A human summary for a pull request comment.
    pub fn explain(&self) -> String {
        let mut out = Vec::new();
        for r in &self.refusals {
            out.push(match r {
                Refusal::NotEnoughApprovals { have, need } => format!(
                    "needs {need} approval(s) on the head commit from reviewers with write permission who are neither the author nor the last pusher; has {have}"
                ),
                Refusal::ChangesRequested { reviewer } => {
                    format!("@{reviewer} has requested changes")
                }
                Refusal::NotMergeable => "the pull request is not mergeable".into(),
                Refusal::MergeableUnknown => {
                    "GitHub has not yet computed whether the pull request is mergeable; retry".into()
                }
                Refusal::Behind => "the branch is behind its base; update it".into(),
            });
        }
        for i in &self.ignored {
            out.push(match i {
                Ignored::ByAuthor { reviewer } => {
                    format!("approval by @{reviewer} ignored: they are the author")
                }
                Ignored::ByLastPusher { reviewer } => {
                    format!("approval by @{reviewer} ignored: they pushed the head commit")
                }
                Ignored::ByHeadAuthor { reviewer } => {
                    format!("approval by @{reviewer} ignored: they wrote the head commit")
                }
                Ignored::NoWritePermission {
                    reviewer,
                    permission,
                } => format!(
                    "approval by @{reviewer} ignored: permission {permission:?} lacks write"
                ),
                Ignored::Stale { reviewer, commit } => format!(
                    "approval by @{reviewer} ignored: it is for older commit {}",
                    short(commit)
                ),
                Ignored::PusherUnknown { reviewer } => format!(
                    "approval by @{reviewer} ignored: the pusher of the head commit is unknown"
                ),
            });
        }
        out.join("\n")
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Decides whether a pull request's head commit may be applied.
pub fn decide(facts: &PullFacts, req: &Requirements) -> Decision {
    // Each reviewer's latest decisive review (approve, request changes,
    // dismissed). Comments and pending reviews never change a decision.
    let mut latest: Vec<&Review> = Vec::new();
    for r in &facts.reviews {
        if matches!(r.state, ReviewState::Commented | ReviewState::Pending) {
            continue;
        }
        match latest.iter_mut().find(|l| same(&l.reviewer, &r.reviewer)) {
            Some(slot) => *slot = r,
            None => latest.push(r),
        }
    }

    let mut approvals: Vec<Approval> = Vec::new();
    let mut ignored = Vec::new();
    let mut refusals = Vec::new();
    for r in &latest {
        match r.state {
            ReviewState::ChangesRequested => refusals.push(Refusal::ChangesRequested {
                reviewer: r.reviewer.clone(),
            }),
            ReviewState::Approved => {
                let reviewer = r.reviewer.clone();
                if same(&r.reviewer, &facts.author) {
                    ignored.push(Ignored::ByAuthor { reviewer });
                } else if facts.last_pusher.is_none() {
                    ignored.push(Ignored::PusherUnknown { reviewer });
                } else if facts
                    .last_pusher
                    .as_deref()
                    .is_some_and(|p| same(p, &r.reviewer))
                {
                    ignored.push(Ignored::ByLastPusher { reviewer });
                } else if facts.head_authors.iter().any(|a| same(a, &r.reviewer)) {
                    ignored.push(Ignored::ByHeadAuthor { reviewer });
                } else if !r.permission.can_write() {
                    ignored.push(Ignored::NoWritePermission {
                        reviewer,
                        permission: r.permission,
                    });
                } else if r.commit != facts.head_sha {
                    ignored.push(Ignored::Stale {
                        reviewer,
                        commit: r.commit.clone(),
                    });
                } else if !approvals.iter().any(|a| same(&a.reviewer, &r.reviewer)) {
                    approvals.push(Approval {
                        reviewer,
                        commit: r.commit.clone(),
                        permission: r.permission,
                    });
                }
            }
            _ => {}
        }
    }
    let have = approvals.len() as u32;
    if have < req.approvals {
        refusals.insert(
            0,
            Refusal::NotEnoughApprovals {
                have,
                need: req.approvals,
            },
        );
    }
    if req.require_mergeable {
        match facts.mergeable {
            Some(true) => {}
            Some(false) => refusals.push(Refusal::NotMergeable),
            None => refusals.push(Refusal::MergeableUnknown),
        }
    }
    if req.require_up_to_date && facts.behind {
        refusals.push(Refusal::Behind);
    }
    Decision {
        approvals,
        ignored,
        refusals,
    }
}
