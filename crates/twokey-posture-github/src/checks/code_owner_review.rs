//! `github.code_owner_review`: where a CODEOWNERS file exists, its owners
//! must review.

use twokey_posture::{Finding, Severity, Status};

use crate::facts::Facts;
use crate::model::{finding, per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.code_owner_review",
    title: "Code owners must review where a CODEOWNERS file exists",
    severity: Severity::Medium,
    corresponds: &[
        "allstar:branch_protection (requireCodeOwnerReviews)",
        "legitify:code_review_not_limited_to_code_owners",
        "scorecard:Branch-Protection",
    ],
    why: "A CODEOWNERS file that is not enforced lets any writer approve changes to the paths it assigns.",
    fix_cli: "gh api -X PATCH repos/OWNER/REPO/branches/BRANCH/protection/required_pull_request_reviews -F require_code_owner_reviews=true",
    fix_terraform: "required_pull_request_reviews { require_code_owner_reviews = true }",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    let mut out: Vec<Finding> = facts
        .repos
        .iter()
        .filter_map(|r| {
            r.codeowners.as_result().err().map(|e| {
                finding(
                    facts,
                    CHECK.id,
                    &format!("{}@{}", r.full_name, r.default_branch),
                    Status::Error,
                    format!(
                        "could not read whether {} has a CODEOWNERS file: {e}",
                        r.full_name
                    ),
                    serde_json::Value::Null,
                )
            })
        })
        .collect();
    out.extend(per_branch(facts, base, CHECK.id, |r, e| {
        if !matches!(r.codeowners.as_result(), Ok(true)) {
            return None;
        }
        let ok = e.any(|x| x.code_owners);
        Some((
            ok,
            format!(
                "{}@{} has a CODEOWNERS file and {} code-owner review",
                r.full_name,
                r.default_branch,
                if ok { "requires" } else { "does not require" }
            ),
        ))
    }));
    out
}
