//! `github.gate_installed`: the gate's webhook (or App) reaches every IaC
//! repository.

use serde_json::json;
use twokey_posture::{Finding, Severity, Status};

use crate::facts::Facts;
use crate::model::{decide, finding, Check};
use crate::Baseline;

/// The check.
pub const CHECK: Check = Check {
    id: "github.gate_installed",
    title: "IaC repositories send their events to the twokey gate (webhook or App)",
    severity: Severity::High,
    corresponds: &[],
    why: "A repository whose events never reach the gate is deployed around it, and its settings changes are not watched.",
    fix_cli: "gh api -X POST repos/OWNER/REPO/hooks -f config[url]=https://twokey.example/v1/gate/github -f config[content_type]=json -f config[secret]=... -f 'events[]=*'",
    fix_terraform: "resource \"github_repository_webhook\" \"twokey\" {\n  repository = \"REPO\"\n  events     = [\"*\"]\n  configuration { url = \"https://twokey.example/v1/gate/github\"\n    content_type = \"json\" }\n}",
    evaluate,
};

fn evaluate(facts: &Facts, base: &Baseline) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in facts.repos.iter().filter(|r| r.iac) {
        if base.gate_app {
            // The App's installation token read this repository: it is installed.
            out.push(finding(
                facts,
                CHECK.id,
                &r.full_name,
                Status::Pass,
                format!("{}: read through the gate's App installation", r.full_name),
                json!({ "app": true }),
            ));
            continue;
        }
        let Some(url) = &base.gate_webhook_url else {
            out.push(finding(
                facts,
                CHECK.id,
                &r.full_name,
                Status::Error,
                "no [posture.github] gate_webhook_url configured to look for",
                serde_json::Value::Null,
            ));
            continue;
        };
        match r.hooks.as_ref().map(|h| h.as_result()) {
            Some(Ok(hooks)) => {
                let ok = hooks
                    .iter()
                    .any(|h| h.trim_end_matches('/') == url.trim_end_matches('/'));
                out.push(finding(
                    facts,
                    CHECK.id,
                    &r.full_name,
                    decide(ok),
                    format!(
                        "{} {} a webhook to {url}",
                        r.full_name,
                        if ok { "has" } else { "has no" }
                    ),
                    json!({ "hooks": hooks }),
                ));
            }
            Some(Err(e)) => out.push(finding(
                facts,
                CHECK.id,
                &r.full_name,
                Status::Error,
                format!("could not read the webhooks of {}: {e}", r.full_name),
                serde_json::Value::Null,
            )),
            None => out.push(finding(
                facts,
                CHECK.id,
                &r.full_name,
                Status::Error,
                format!("the webhooks of {} were not collected", r.full_name),
                serde_json::Value::Null,
            )),
        }
    }
    out
}
