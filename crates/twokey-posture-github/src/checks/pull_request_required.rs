//! `github.pull_request_required`: the default branch takes changes only
//! through pull requests (classic protection or an active ruleset).

use twokey_posture::{Finding, Severity};

use crate::facts::Facts;
use crate::model::{names, per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.pull_request_required",
    title: "Default branch requires a pull request before merging",
    severity: Severity::High,
    corresponds: &[
        "allstar:branch_protection (enforceDefault)",
        "legitify:missing_default_branch_protection",
        "scorecard:Branch-Protection",
    ],
    why: "Without a required pull request anyone with write access pushes to the deployed branch alone.",
    fix_cli: "gh api -X PUT repos/OWNER/REPO/branches/BRANCH/protection --input protection.json",
    fix_terraform: "resource \"github_branch_protection\" \"main\" {\n  repository_id = github_repository.repo.node_id\n  pattern       = \"main\"\n  required_pull_request_reviews { required_approving_review_count = 1 }\n}",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    per_branch(facts, base, CHECK.id, |r, e| {
        Some(if e.pull_request_required() {
            (
                true,
                format!(
                    "{}@{} requires a pull request ({})",
                    r.full_name,
                    r.default_branch,
                    names(e.reviews.iter().map(|x| x.source.name.as_str()))
                ),
            )
        } else {
            (
                false,
                format!(
                    "{}@{} does not require a pull request: neither classic protection nor an active ruleset asks for one",
                    r.full_name, r.default_branch
                ),
            )
        })
    })
}
