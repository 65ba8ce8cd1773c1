//! `github.no_bypass`: the review requirement binds everyone: classic
//! protection with `enforce_admins` on, or an active ruleset with no bypass
//! actors beyond the break-glass ones the config names.

use twokey_posture::{Finding, Severity};

use crate::facts::Facts;
use crate::model::{per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.no_bypass",
    title: "Nobody can bypass the review (enforce_admins on; rulesets without bypass actors)",
    severity: Severity::High,
    corresponds: &[
        "allstar:branch_protection (enforceOnAdmins)",
        "scorecard:Branch-Protection",
    ],
    why: "An administrator or a bypass actor merges alone; a review every source lets them skip is no review.",
    fix_cli: "gh api -X POST repos/OWNER/REPO/branches/BRANCH/protection/enforce_admins; gh api -X PUT repos/OWNER/REPO/rulesets/ID --input ruleset-without-bypass.json",
    fix_terraform: "resource \"github_branch_protection\" \"main\" { enforce_admins = true }\nresource \"github_repository_ruleset\" \"main\" { enforcement = \"active\" } # no bypass_actors block",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    per_branch(facts, base, CHECK.id, |r, e| {
        if !e.pull_request_required() {
            return Some((
                false,
                format!(
                    "{}@{} requires no review at all",
                    r.full_name, r.default_branch
                ),
            ));
        }
        let need = r.required_approvals;
        if e.unbypassable_review(need) {
            return Some((
                true,
                format!(
                    "{}@{}: the review of {need} approval(s) binds everyone",
                    r.full_name, r.default_branch
                ),
            ));
        }
        let who: Vec<String> = e
            .reviews
            .iter()
            .map(|x| format!("{} ({})", x.source.name, x.source.bypass.join(", ")))
            .collect();
        Some((
            false,
            format!(
                "{}@{}: every source of the review can be bypassed: {}",
                r.full_name,
                r.default_branch,
                who.join("; ")
            ),
        ))
    })
}
