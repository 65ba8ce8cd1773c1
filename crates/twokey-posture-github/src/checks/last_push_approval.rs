//! `github.last_push_approval`: the most recent push must be approved by
//! someone other than its pusher.

use twokey_posture::{Finding, Severity};

use crate::facts::Facts;
use crate::model::{per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.last_push_approval",
    title: "Approval of the most recent push is required",
    severity: Severity::High,
    corresponds: &["scorecard:Branch-Protection"],
    why: "A reviewer who pushes the last commit themselves can otherwise approve their own change (Allstar and Legitify never check this).",
    fix_cli: "gh api -X PATCH repos/OWNER/REPO/branches/BRANCH/protection/required_pull_request_reviews -F require_last_push_approval=true",
    fix_terraform: "required_pull_request_reviews { require_last_push_approval = true }",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    per_branch(facts, base, CHECK.id, |r, e| {
        let ok = e.any(|x| x.last_push);
        Some((
            ok,
            format!(
                "{}@{} {} approval of the most recent push",
                r.full_name,
                r.default_branch,
                if ok { "requires" } else { "does not require" }
            ),
        ))
    })
}
