//! `github.required_approvals`: at least N approving reviews (per
//! repository class; 2 for the gate's IaC repositories by default).

use twokey_posture::{Finding, Severity};

use crate::facts::Facts;
use crate::model::{per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.required_approvals",
    title: "Pull requests need the class's number of approving reviews",
    severity: Severity::High,
    corresponds: &[
        "allstar:branch_protection (requireApproval, approvalCount)",
        "legitify:code_review_not_required",
        "legitify:code_review_by_two_members_not_required",
        "scorecard:Branch-Protection",
    ],
    why: "An approval count of 0 (or 1 where the class asks for 2) lets the author's pull request merge with fewer other people than the baseline.",
    fix_cli: "gh api -X PATCH repos/OWNER/REPO/branches/BRANCH/protection/required_pull_request_reviews -F required_approving_review_count=2",
    fix_terraform: "required_pull_request_reviews { required_approving_review_count = 2 }",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    per_branch(facts, base, CHECK.id, |r, e| {
        let need = r.required_approvals;
        let got = e.approvals();
        Some((
            e.pull_request_required() && got >= need,
            format!(
                "{}@{} requires {got} approving review(s); its class asks for {need}",
                r.full_name, r.default_branch
            ),
        ))
    })
}
