//! `github.actions_cannot_approve`: "Allow GitHub Actions to create and
//! approve pull requests" is off, for the organisation and each repository.

use twokey_posture::{Finding, Severity};

use crate::facts::{Facts, WorkflowPermissions};
use crate::model::Check;
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.actions_cannot_approve",
    title: "GitHub Actions may not create or approve pull requests (organisation and repositories)",
    severity: Severity::High,
    corresponds: &["legitify:actions_can_approve_pull_requests"],
    why: "A workflow anyone can push approves its author's pull request: the second person becomes a bot (Allstar and Scorecard do not check this).",
    fix_cli: "gh api -X PUT orgs/ORG/actions/permissions/workflow -F can_approve_pull_request_reviews=false -f default_workflow_permissions=read",
    fix_terraform: "resource \"github_actions_organization_workflow_permissions\" \"org\" {\n  organization_slug = \"ORG\"\n  can_approve_pull_request_reviews = false\n  default_workflow_permissions     = \"read\"\n}",
    evaluate,
};

fn evaluate(facts: &Facts, _: &Baseline) -> Vec<Finding> {
    super::workflow_findings(facts, CHECK.id, |w: &WorkflowPermissions| {
        (
            !w.can_approve_pull_request_reviews,
            if w.can_approve_pull_request_reviews {
                "GitHub Actions may approve pull requests"
            } else {
                "GitHub Actions may not approve pull requests"
            },
        )
    })
}
