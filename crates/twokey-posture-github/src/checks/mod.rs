//! One module per check: a `CHECK` constant with a pure `evaluate`.
//! Adding one: a module here and a line in [`crate::Registry::builtin`].

use serde_json::json;
use twokey_posture::{Finding, Status};

use crate::facts::{Facts, WorkflowPermissions};
use crate::model::{decide, finding};

pub mod actions_cannot_approve;
pub mod code_owner_review;
pub mod deletion_blocked;
pub mod dismiss_stale_reviews;
pub mod environment_reviewers;
pub mod force_push_blocked;
pub mod gate_installed;
pub mod gate_status_check;
pub mod last_push_approval;
pub mod no_bypass;
pub mod pull_request_required;
pub mod required_approvals;
pub mod rulesets_enforced;
pub mod workflow_token_read_only;

/// Findings of a workflow-permissions check: the organisation's setting,
/// then each repository whose own setting was read (a repository not read
/// is bound by the organisation's stricter setting, and GitHub does not
/// let it be looser).
fn workflow_findings(
    facts: &Facts,
    check: &str,
    judge: impl Fn(&WorkflowPermissions) -> (bool, &'static str),
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut one =
        |resource: &str, w: Option<&twokey_posture::facts::Collected<WorkflowPermissions>>| {
            let Some(w) = w else { return };
            out.push(match w.as_result() {
                Ok(w) => {
                    let (ok, text) = judge(w);
                    finding(
                        facts,
                        check,
                        resource,
                        decide(ok),
                        format!("{resource}: {text}"),
                        json!(w),
                    )
                }
                Err(e) => finding(
                    facts,
                    check,
                    resource,
                    Status::Error,
                    format!("could not read the Actions workflow permissions of {resource}: {e}"),
                    serde_json::Value::Null,
                ),
            });
        };
    one(&facts.org, facts.org_workflow.as_ref());
    for r in &facts.repos {
        one(&r.full_name, r.workflow.as_ref());
    }
    out
}
