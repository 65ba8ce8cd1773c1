//! `github.deletion_blocked`: the default branch cannot be deleted.

use twokey_posture::{Finding, Severity};

use crate::facts::Facts;
use crate::model::{names, per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.deletion_blocked",
    title: "Deletion of the default branch is blocked",
    severity: Severity::Medium,
    corresponds: &[
        "legitify:missing_default_branch_protection_deletion",
        "scorecard:Branch-Protection",
    ],
    why: "Deleting and recreating the branch drops its protection and its reviewed history (Allstar does not check this).",
    fix_cli: "gh api -X PUT repos/OWNER/REPO/branches/BRANCH/protection -F allow_deletions=false ...",
    fix_terraform: "resource \"github_branch_protection\" \"main\" { allows_deletions = false }",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    per_branch(facts, base, CHECK.id, |r, e| {
        let ok = !e.deletion_blocked_by.is_empty();
        Some((
            ok,
            format!(
                "{}@{}: deletion blocked by {}",
                r.full_name,
                r.default_branch,
                names(e.deletion_blocked_by.iter().map(|s| s.name.as_str()))
            ),
        ))
    })
}
