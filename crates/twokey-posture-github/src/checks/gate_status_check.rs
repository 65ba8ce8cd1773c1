//! `github.gate_status_check`: on the gate's IaC repositories the gate's
//! commit status is a required check.

use twokey_posture::{Finding, Severity};

use crate::facts::Facts;
use crate::model::{per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.gate_status_check",
    title: "IaC repositories require the twokey gate's status check",
    severity: Severity::High,
    corresponds: &[
        "allstar:branch_protection (requireStatusChecks)",
        "legitify:requires_status_checks",
        "scorecard:Branch-Protection",
    ],
    why: "Without the gate's check a pull request merges without the gate's plan and two-person apply.",
    fix_cli: "gh api -X PATCH repos/OWNER/REPO/branches/BRANCH/protection/required_status_checks -f 'contexts[]=twokey/plan'",
    fix_terraform: "required_status_checks { strict = true\n  contexts = [\"twokey/plan\"] }",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    per_branch(facts, base, CHECK.id, |r, e| {
        if !r.iac {
            return None;
        }
        let ok = e.requires_check(&base.gate_check);
        Some((
            ok,
            format!(
                "{}@{} {} the gate's status check {:?}",
                r.full_name,
                r.default_branch,
                if ok { "requires" } else { "does not require" },
                base.gate_check
            ),
        ))
    })
}
