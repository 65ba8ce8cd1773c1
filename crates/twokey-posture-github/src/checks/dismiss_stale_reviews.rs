//! `github.dismiss_stale_reviews`: a push after approval dismisses it.

use twokey_posture::{Finding, Severity};

use crate::facts::Facts;
use crate::model::{per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.dismiss_stale_reviews",
    title: "Stale approvals are dismissed when new commits are pushed",
    severity: Severity::High,
    corresponds: &[
        "allstar:branch_protection (dismissStale)",
        "legitify:dismisses_stale_reviews",
        "scorecard:Branch-Protection",
    ],
    why: "Otherwise the author pushes different code after the approval and merges what nobody reviewed.",
    fix_cli: "gh api -X PATCH repos/OWNER/REPO/branches/BRANCH/protection/required_pull_request_reviews -F dismiss_stale_reviews=true",
    fix_terraform: "required_pull_request_reviews { dismiss_stale_reviews = true }",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    per_branch(facts, base, CHECK.id, |r, e| {
        let ok = e.any(|x| x.dismiss_stale);
        Some((
            ok,
            format!(
                "{}@{} {} stale approvals on push",
                r.full_name,
                r.default_branch,
                if ok { "dismisses" } else { "does not dismiss" }
            ),
        ))
    })
}
