//! `github.force_push_blocked`: force pushes to the default branch are
//! refused.

use twokey_posture::{Finding, Severity};

use crate::facts::Facts;
use crate::model::{names, per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.force_push_blocked",
    title: "Force pushes to the default branch are blocked",
    severity: Severity::High,
    corresponds: &[
        "allstar:branch_protection (blockForce)",
        "legitify:missing_default_branch_protection_force_push",
        "scorecard:Branch-Protection",
    ],
    why: "A force push rewrites the reviewed history: what was approved is no longer what is deployed.",
    fix_cli: "gh api -X PUT repos/OWNER/REPO/branches/BRANCH/protection -F allow_force_pushes=false ...",
    fix_terraform: "resource \"github_branch_protection\" \"main\" { allows_force_pushes = false }",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    per_branch(facts, base, CHECK.id, |r, e| {
        let ok = !e.force_push_blocked_by.is_empty();
        Some((
            ok,
            format!(
                "{}@{}: force pushes blocked by {}",
                r.full_name,
                r.default_branch,
                names(e.force_push_blocked_by.iter().map(|s| s.name.as_str()))
            ),
        ))
    })
}
