//! Security as code: the guard-rail SCPs, the posture configuration and the
//! twokey policy live in GitHub repositories the deploy gate protects, so a
//! change to a guard rail takes a second person like any other change.
//!
//! The repositories are declared in the policy (`[posture.as_code]`); whether
//! each is protected is read from the GitHub posture's findings (`twokey
//! posture github --format json`, given with `--github-results`): the
//! repository must pass every check of [`REQUIRED`].

use serde_json::json;

use crate::facts::Facts;
use crate::model::{Check, Finding, For, Remediation, Severity, Status};
use crate::Settings;

/// The GitHub posture checks a guard-rail repository must pass: changes go
/// through a reviewed pull request nobody may bypass, and the deploy gate is
/// installed and required.
pub const REQUIRED: &[&str] = &[
    "github.pull_request_required",
    "github.required_approvals",
    "github.no_bypass",
    "github.gate_installed",
    "github.gate_status_check",
];

/// The check.
pub const CHECK: Check = Check {
    id: "code.guardrails_protected",
    title: "The guard-rail SCPs, the posture configuration and the twokey policy live in repositories the deploy gate protects",
    severity: Severity::High,
    prowler: &[],
    why: "A guard rail one person can edit is no guard rail: whoever can change the SCP, the posture configuration or the twokey policy alone can switch monitoring off or approve themselves. Kept as code behind the gate, each change needs a reviewed pull request and a second person.",
    remediation: Remediation {
        cli: "# declare where the guard rails live, in the twokey policy:\n#   [posture.as_code]\n#   guardrails = \"ORG/guardrails\"\n#   posture    = \"ORG/guardrails\"\n#   policy     = \"ORG/twokey-policy\"\n# list the repositories as IaC in [posture.github] and protect them:\ntwokey posture github --format json > github.json\ntwokey posture aws --policy policy.toml --github-results github.json",
        terraform: "resource \"github_branch_protection\" \"guardrails\" {\n  repository_id  = \"guardrails\"\n  pattern        = \"main\"\n  enforce_admins = true\n  required_pull_request_reviews {\n    required_approving_review_count = 2\n  }\n  required_status_checks {\n    strict   = true\n    contexts = [\"twokey/gate\"]\n  }\n}",
    },
    evaluate,
};

fn evaluate(facts: &Facts, settings: &Settings) -> Vec<Finding> {
    let at = For::new(CHECK.id, facts.home_account());
    settings
        .posture
        .as_code
        .items()
        .into_iter()
        .map(|(key, what, repo)| judge(&at, facts, key, what, repo))
        .collect()
}

fn judge(at: &For<'_>, facts: &Facts, key: &str, what: &str, repo: Option<&str>) -> Finding {
    let Some(repo) = repo else {
        return at.finding(
            key,
            Status::Fail,
            format!("{what} is not declared to live in a repository ([posture.as_code] {key} in the policy)"),
            serde_json::Value::Null,
        );
    };
    let Some(github) = &facts.github else {
        return at.finding(
            key,
            Status::Error,
            format!("{what} lives in {repo}, but no GitHub posture results were given (--github-results)"),
            json!({ "repository": repo }),
        );
    };
    // Branch checks name `owner/name@branch` (the default branch), the others
    // `owner/name`.
    let of_repo: Vec<&Finding> = github
        .iter()
        .filter(|f| {
            let name = f
                .resource
                .split_once('@')
                .map_or(f.resource.as_str(), |(r, _)| r);
            name.eq_ignore_ascii_case(repo)
        })
        .collect();
    if of_repo.is_empty() {
        return at.finding(
            key,
            Status::Error,
            format!("{what} lives in {repo}, which the GitHub posture scan did not cover"),
            json!({ "repository": repo }),
        );
    }
    let mut missing = Vec::new();
    let mut results = serde_json::Map::new();
    for check in REQUIRED {
        let found: Vec<&Finding> = of_repo
            .iter()
            .copied()
            .filter(|f| f.check == *check)
            .collect();
        // An excepted finding is an approved exception, not protection.
        let (status, why) = match (
            found.first(),
            found.iter().find(|f| f.status != Status::Pass),
        ) {
            (None, _) => (
                "absent".to_string(),
                Some(format!(
                    "{check} (not judged: list {repo} as IaC in [posture.github])"
                )),
            ),
            (Some(_), Some(f)) => (
                f.status.as_str().to_ascii_lowercase(),
                Some(format!("{check} ({})", f.message)),
            ),
            (Some(_), None) => ("pass".to_string(), None),
        };
        results.insert((*check).to_string(), json!(status));
        missing.extend(why);
    }
    let evidence = json!({ "repository": repo, "github": results });
    if missing.is_empty() {
        at.finding(
            key,
            Status::Pass,
            format!("{what} lives in {repo}, protected by the deploy gate with required reviews"),
            evidence,
        )
    } else {
        at.finding(
            key,
            Status::Fail,
            format!(
                "{what} lives in {repo}, which is not protected: {}",
                missing.join("; ")
            ),
            evidence,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixture::*;
    use crate::Status::*;

    fn github(repo: &str, status: Status, except: &str) -> Finding {
        Finding {
            check: except.to_string(),
            account: "acme".into(),
            region: None,
            resource: repo.into(),
            status,
            message: format!("{except} on {repo}"),
            evidence: serde_json::Value::Null,
        }
    }

    /// Passing findings of every required check; the branch checks name the
    /// default branch, as the GitHub posture does.
    fn all(repo: &str) -> Vec<Finding> {
        REQUIRED
            .iter()
            .map(|c| {
                if c.starts_with("github.gate_") {
                    github(repo, Pass, c)
                } else {
                    github(&format!("{repo}@main"), Pass, c)
                }
            })
            .collect()
    }

    fn settings(guardrails: Option<&str>, policy: Option<&str>) -> Settings {
        let mut s = Settings::default();
        s.posture.as_code.guardrails = guardrails.map(str::to_string);
        s.posture.as_code.posture = guardrails.map(str::to_string);
        s.posture.as_code.policy = policy.map(str::to_string);
        s
    }

    #[test]
    fn undeclared_guard_rails_fail_and_missing_results_are_errors() {
        let f = facts();
        assert_eq!(statuses(&CHECK, &f), vec![Fail, Fail, Fail]);
        let s = settings(Some("acme/guardrails"), None);
        assert_eq!(statuses_with(&CHECK, &f, &s), vec![Error, Error, Fail]);
    }

    #[test]
    fn a_repository_passing_every_required_check_is_protected() {
        let mut f = facts();
        let mut found = all("acme/guardrails");
        found.extend(all("acme/twokey-policy"));
        f.github = Some(found);
        let s = settings(Some("acme/guardrails"), Some("acme/twokey-policy"));
        assert_eq!(statuses_with(&CHECK, &f, &s), vec![Pass, Pass, Pass]);
    }

    #[test]
    fn one_failing_or_excepted_or_absent_requirement_fails() {
        let s = settings(Some("acme/guardrails"), Some("acme/twokey-policy"));
        for (i, status) in [Fail, Excepted].into_iter().enumerate() {
            let mut f = facts();
            let mut found = all("acme/guardrails");
            let mut policy = all("acme/twokey-policy");
            policy[i + 1].status = status;
            found.extend(policy);
            f.github = Some(found);
            let out = (CHECK.evaluate)(&f, &s);
            assert_eq!(out[2].status, Fail, "{status:?}");
            assert!(
                out[2].message.contains(REQUIRED[i + 1]),
                "{}",
                out[2].message
            );
        }
        // The gate is judged only on IaC repositories: a repository not listed
        // as one has no gate findings, and is not protected.
        let mut f = facts();
        let mut found = all("acme/guardrails");
        found.extend(
            all("acme/twokey-policy")
                .into_iter()
                .filter(|x| !x.check.starts_with("github.gate_")),
        );
        f.github = Some(found);
        let out = (CHECK.evaluate)(&f, &s);
        assert_eq!(out[2].status, Fail);
        assert!(out[2].message.contains("not judged"), "{}", out[2].message);
        // A repository the scan did not cover is an error, not a pass.
        f.github = Some(all("acme/guardrails"));
        assert_eq!(statuses_with(&CHECK, &f, &s), vec![Pass, Pass, Error]);
    }
}
