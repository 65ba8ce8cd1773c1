//! `github.rulesets_enforced`: rulesets that target the default branch are
//! `active`, not `evaluate` or `disabled`.

use twokey_posture::{Finding, Severity};

use crate::facts::Facts;
use crate::model::{per_branch, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.rulesets_enforced",
    title: "Rulesets on the default branch are enforced (active)",
    severity: Severity::High,
    corresponds: &[],
    why: "A ruleset in evaluate mode or disabled shows its rules in the settings and enforces none of them.",
    fix_cli: "gh api -X PUT repos/OWNER/REPO/rulesets/ID -f enforcement=active",
    fix_terraform: "resource \"github_repository_ruleset\" \"main\" { enforcement = \"active\" }",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    per_branch(facts, base, CHECK.id, |r, e| {
        if e.not_enforced.is_empty() {
            return Some((
                true,
                format!(
                    "{}@{}: every ruleset that targets it is active",
                    r.full_name, r.default_branch
                ),
            ));
        }
        let list: Vec<String> = e
            .not_enforced
            .iter()
            .map(|(n, m)| format!("{n} is {m}"))
            .collect();
        Some((
            false,
            format!("{}@{}: {}", r.full_name, r.default_branch, list.join("; ")),
        ))
    })
}
