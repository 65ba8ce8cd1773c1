//! `github.workflow_token_read_only`: the default `GITHUB_TOKEN` of
//! workflows is read-only (organisation and repositories).

use twokey_posture::{Finding, Severity};

use crate::facts::{Facts, WorkflowPermissions};
use crate::model::Check;
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.workflow_token_read_only",
    title: "The default workflow token is read-only (organisation and repositories)",
    severity: Severity::Medium,
    corresponds: &[
        "legitify:token_default_permissions_is_read_write",
        "scorecard:Token-Permissions (workflow files only)",
    ],
    why: "A write token in every workflow lets a pushed workflow change the repository without review.",
    fix_cli: "gh api -X PUT repos/OWNER/REPO/actions/permissions/workflow -f default_workflow_permissions=read -F can_approve_pull_request_reviews=false",
    fix_terraform: "resource \"github_actions_organization_workflow_permissions\" \"org\" { default_workflow_permissions = \"read\" }",
    evaluate,
};

fn evaluate(facts: &Facts, _: &Baseline) -> Vec<Finding> {
    super::workflow_findings(facts, CHECK.id, |w: &WorkflowPermissions| {
        let ok = w.default_workflow_permissions == "read";
        (
            ok,
            if ok {
                "the default workflow token is read-only"
            } else {
                "the default workflow token can write"
            },
        )
    })
}
