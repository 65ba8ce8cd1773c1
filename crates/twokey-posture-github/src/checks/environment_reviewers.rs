//! `github.environment_reviewers`: production environments have required
//! reviewers and prevent self-review.

use serde_json::json;
use twokey_posture::{Finding, Severity, Status};

use crate::effective::glob;
use crate::facts::Facts;
use crate::model::{decide, finding, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.environment_reviewers",
    title: "Production environments require a reviewer other than the deployer",
    severity: Severity::High,
    corresponds: &[],
    why: "A production environment without required reviewers (or that lets the deployer approve their own run) deploys on one person's word.",
    fix_cli: "gh api -X PUT repos/OWNER/REPO/environments/production --input env.json  # reviewers + prevent_self_review=true",
    fix_terraform: "resource \"github_repository_environment\" \"prod\" {\n  environment = \"production\"\n  prevent_self_review = true\n  reviewers { teams = [github_team.approvers.id] }\n}",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in &facts.repos {
        let envs = match r.environments.as_result() {
            Ok(e) => e,
            Err(e) => {
                out.push(finding(
                    facts,
                    CHECK.id,
                    &r.full_name,
                    Status::Error,
                    format!("could not read the environments of {}: {e}", r.full_name),
                    serde_json::Value::Null,
                ));
                continue;
            }
        };
        for env in envs.iter().filter(|e| {
            base.production_environments
                .iter()
                .any(|p| glob(&p.to_ascii_lowercase(), &e.name.to_ascii_lowercase()))
        }) {
            let ok = !env.reviewers.is_empty() && env.prevent_self_review;
            let why = match (env.reviewers.is_empty(), env.prevent_self_review) {
                (true, _) => "has no required reviewers",
                (false, false) => {
                    "lets the deployer approve their own run (prevent_self_review off)"
                }
                (false, true) => "requires a reviewer other than the deployer",
            };
            out.push(finding(
                facts,
                CHECK.id,
                &format!("{}/environments/{}", r.full_name, env.name),
                decide(ok),
                format!("{} environment {:?} {why}", r.full_name, env.name),
                json!(env),
            ));
        }
    }
    out
}
