//! The facts from GitHub's REST API, through the gate's client
//! ([`RestGitHub`]: a token or the gate's App installation, its rate-limit
//! retries, and conditional requests, so a repeated scan is mostly
//! `304 Not Modified`, which GitHub does not count against the limit).
//!
//! Per repository: classic protection, the rules for the default branch,
//! the rulesets list, CODEOWNERS, environments (five calls), the workflow
//! permissions only when the organisation's setting does not already bind
//! it, and the webhooks of IaC repositories. Organisation rulesets are read
//! once per scan (`/orgs/{org}/rulesets/{id}`), not once per repository.
//! A failed call becomes an error for the checks that needed it; it never
//! stops the other repositories.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use twokey_gate::github::{GitHubError, RestGitHub};

use crate::effective::{has_topic, name_matches};
use crate::facts::{
    BranchRule, ClassicProtection, ClassicReviews, Collected, Environment, Facts, RepoFacts,
    Ruleset, WorkflowPermissions,
};
use crate::GithubPostureConfig;

/// What selects and classifies repositories.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The config.
    pub config: GithubPostureConfig,
    /// The gate's repositories (`owner/name`): always in scope, always IaC.
    pub gate_repos: Vec<String>,
}

impl Scope {
    /// Whether a repository with `topics` is scanned.
    pub fn selects(&self, full_name: &str, topics: &[String]) -> bool {
        let c = &self.config;
        (c.repos.is_empty() && c.topics.is_empty())
            || name_matches(&c.repos, full_name)
            || has_topic(topics, &c.topics)
            || self.is_iac(full_name)
    }

    /// Whether it is infrastructure as code.
    pub fn is_iac(&self, full_name: &str) -> bool {
        self.gate_repos
            .iter()
            .any(|g| g.eq_ignore_ascii_case(full_name))
            || name_matches(&self.config.iac_repos, full_name)
    }

    /// Required approvals: the first class that matches, else the default;
    /// IaC repositories at least `iac_approvals`.
    pub fn approvals(&self, full_name: &str, topics: &[String]) -> u32 {
        let c = &self.config;
        let class = c
            .class
            .iter()
            .find(|k| name_matches(&k.repos, full_name) || has_topic(topics, &k.topics))
            .map(|k| k.approvals)
            .unwrap_or(c.approvals);
        if self.is_iac(full_name) {
            class.max(c.iac_approvals)
        } else {
            class
        }
    }
}

fn err(what: &str, e: GitHubError) -> String {
    format!("{what}: {e}")
}

/// A `GET` for the checks: 404 is `None`.
async fn get(gh: &RestGitHub, owner: &str, path: &str) -> Result<Option<Value>, String> {
    gh.get_json(owner, path).await.map_err(|e| err(path, e))
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("{path}: unexpected answer: {e}"))
}

/// Classic protection as the API answers it, into the facts' shape.
pub fn classic_from_api(v: &Value) -> ClassicProtection {
    let enabled = |k: &str| v[k]["enabled"].as_bool().unwrap_or(false);
    let r = &v["required_pull_request_reviews"];
    let reviews = (!r.is_null()).then(|| ClassicReviews {
        required_approving_review_count: r["required_approving_review_count"].as_u64().unwrap_or(0)
            as u32,
        dismiss_stale_reviews: r["dismiss_stale_reviews"].as_bool().unwrap_or(false),
        require_code_owner_reviews: r["require_code_owner_reviews"].as_bool().unwrap_or(false),
        require_last_push_approval: r["require_last_push_approval"].as_bool().unwrap_or(false),
    });
    let mut allowances = Vec::new();
    let b = &r["bypass_pull_request_allowances"];
    for (k, f) in [("users", "login"), ("teams", "slug"), ("apps", "slug")] {
        for x in b[k].as_array().into_iter().flatten() {
            if let Some(n) = x[f].as_str() {
                allowances.push(format!("{k}:{n}"));
            }
        }
    }
    let sc = &v["required_status_checks"];
    let checks = (!sc.is_null()).then(|| {
        let mut c: Vec<String> = sc["contexts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect();
        for x in sc["checks"].as_array().into_iter().flatten() {
            if let Some(n) = x["context"].as_str() {
                if !c.iter().any(|y| y == n) {
                    c.push(n.to_string());
                }
            }
        }
        c
    });
    ClassicProtection {
        required_pull_request_reviews: reviews,
        enforce_admins: enabled("enforce_admins"),
        allow_force_pushes: enabled("allow_force_pushes"),
        allow_deletions: enabled("allow_deletions"),
        required_status_checks: checks,
        bypass_pull_request_allowances: allowances,
    }
}

/// Environments as the API answers them.
pub fn environments_from_api(v: &Value) -> Vec<Environment> {
    v["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut reviewers = Vec::new();
            let mut reviewer_ids = Vec::new();
            let mut prevent = false;
            for rule in e["protection_rules"].as_array().into_iter().flatten() {
                if rule["type"] == "required_reviewers" {
                    prevent |= rule["prevent_self_review"].as_bool().unwrap_or(false);
                    for r in rule["reviewers"].as_array().into_iter().flatten() {
                        let who = &r["reviewer"];
                        if let Some(n) = who["login"].as_str().or_else(|| who["slug"].as_str()) {
                            reviewers.push(n.to_string());
                        }
                        if let (Some(t), Some(id)) = (r["type"].as_str(), who["id"].as_u64()) {
                            reviewer_ids.push(format!("{t}/{id}"));
                        }
                    }
                }
            }
            Environment {
                name: e["name"].as_str().unwrap_or_default().to_string(),
                reviewers,
                prevent_self_review: prevent,
                reviewer_ids,
            }
        })
        .collect()
}

/// Reads organisation rulesets once for a scan.
#[derive(Default)]
pub struct OrgRulesets {
    by_id: Mutex<HashMap<u64, Result<Ruleset, String>>>,
}

impl OrgRulesets {
    async fn get(&self, gh: &RestGitHub, org: &str, id: u64) -> Result<Ruleset, String> {
        if let Some(r) = self.by_id.lock().await.get(&id) {
            return r.clone();
        }
        let path = format!("/orgs/{org}/rulesets/{id}");
        let r = match get(gh, org, &path).await {
            Ok(Some(v)) => decode::<Ruleset>(&path, v),
            Ok(None) => Err(format!("{path}: not found")),
            Err(e) => Err(e),
        };
        self.by_id.lock().await.insert(id, r.clone());
        r
    }
}

/// The organisation-level facts every repository's collection reads.
pub struct OrgContext {
    /// `GET /orgs/{org}/actions/permissions/workflow`.
    pub workflow: Collected<WorkflowPermissions>,
    /// Organisation rulesets by id.
    pub rulesets: OrgRulesets,
}

/// Reads the organisation's workflow permissions.
pub async fn org_context(gh: &RestGitHub, org: &str) -> OrgContext {
    let path = format!("/orgs/{org}/actions/permissions/workflow");
    let workflow = match get(gh, org, &path).await {
        Ok(Some(v)) => match decode(&path, v) {
            Ok(w) => Collected::Ok(w),
            Err(e) => Collected::Error(e),
        },
        Ok(None) => Collected::Error(format!("{path}: not found")),
        Err(e) => Collected::Error(e),
    };
    OrgContext {
        workflow,
        rulesets: OrgRulesets::default(),
    }
}

fn collected<T>(r: Result<T, String>) -> Collected<T> {
    match r {
        Ok(v) => Collected::Ok(v),
        Err(e) => Collected::Error(e),
    }
}

/// The facts of one repository (`repo` is the API's repository object).
pub async fn repo_facts(
    gh: &RestGitHub,
    scope: &Scope,
    org: &OrgContext,
    repo: &Value,
) -> RepoFacts {
    let full = repo["full_name"].as_str().unwrap_or_default().to_string();
    let branch = repo["default_branch"]
        .as_str()
        .unwrap_or("main")
        .to_string();
    let topics: Vec<String> = repo["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let org_name = full.split('/').next().unwrap_or_default().to_string();
    let iac = scope.is_iac(&full);

    let p_classic = format!("/repos/{full}/branches/{branch}/protection");
    let classic = collected(
        get(gh, &full, &p_classic)
            .await
            .map(|v| v.map(|v| classic_from_api(&v))),
    );
    let p_rules = format!("/repos/{full}/rules/branches/{branch}?per_page=100");
    let rules = collected(match get(gh, &full, &p_rules).await {
        Ok(Some(v)) => decode::<Vec<BranchRule>>(&p_rules, v),
        Ok(None) => Ok(vec![]),
        Err(e) => Err(e),
    });
    let rulesets = collected(rulesets(gh, &full, &org_name, org).await);
    let p_co = format!("/repos/{full}/codeowners/errors");
    let codeowners = collected(get(gh, &full, &p_co).await.map(|v| v.is_some()));
    // GitHub lets no repository be looser than its organisation: when the
    // organisation is read-only and Actions may not approve, every
    // repository is too, and its own setting is not read.
    let binds = matches!(org.workflow.as_result(), Ok(w) if w.default_workflow_permissions == "read" && !w.can_approve_pull_request_reviews);
    let workflow = if binds {
        None
    } else {
        let p = format!("/repos/{full}/actions/permissions/workflow");
        Some(collected(match get(gh, &full, &p).await {
            Ok(Some(v)) => decode(&p, v),
            Ok(None) => Err(format!("{p}: not found")),
            Err(e) => Err(e),
        }))
    };
    let p_env = format!("/repos/{full}/environments?per_page=100");
    let environments = collected(
        get(gh, &full, &p_env)
            .await
            .map(|v| v.map(|v| environments_from_api(&v)).unwrap_or_default()),
    );
    let hooks = if iac {
        let p = format!("/repos/{full}/hooks?per_page=100");
        Some(collected(get(gh, &full, &p).await.map(|v| {
            v.and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|h| h["config"]["url"].as_str().map(str::to_string))
                .collect()
        })))
    } else {
        None
    };
    RepoFacts {
        required_approvals: scope.approvals(&full, &topics),
        full_name: full,
        default_branch: branch,
        topics,
        iac,
        classic,
        rules,
        rulesets,
        codeowners,
        workflow,
        environments,
        hooks,
    }
}

async fn rulesets(
    gh: &RestGitHub,
    full: &str,
    org_name: &str,
    org: &OrgContext,
) -> Result<Vec<Ruleset>, String> {
    let p = format!("/repos/{full}/rulesets?includes_parents=true&per_page=100");
    let list = get(gh, full, &p).await?.unwrap_or(Value::Array(vec![]));
    let mut out = Vec::new();
    for s in list.as_array().into_iter().flatten() {
        let Some(id) = s["id"].as_u64() else { continue };
        if s["source_type"] == "Organization" {
            out.push(org.rulesets.get(gh, org_name, id).await?);
        } else {
            let p = format!("/repos/{full}/rulesets/{id}");
            match get(gh, full, &p).await? {
                Some(v) => out.push(decode(&p, v)?),
                None => return Err(format!("{p}: not found")),
            }
        }
    }
    Ok(out)
}

/// The repositories of the organisation that the scope selects (archived
/// ones are read-only and left out).
pub async fn list_repos(gh: &RestGitHub, scope: &Scope) -> Result<Vec<Value>, String> {
    let org = &scope.config.org;
    let mut out = Vec::new();
    for page in 1..=1000 {
        let p = format!("/orgs/{org}/repos?type=all&per_page=100&page={page}");
        let v = get(gh, org, &p)
            .await?
            .ok_or_else(|| format!("{p}: organisation {org:?} not found"))?;
        let items = v.as_array().cloned().unwrap_or_default();
        let last = items.len() < 100;
        for r in items {
            let full = r["full_name"].as_str().unwrap_or_default();
            let topics: Vec<String> = r["topics"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
            if !r["archived"].as_bool().unwrap_or(false) && scope.selects(full, &topics) {
                out.push(r);
            }
        }
        if last {
            break;
        }
    }
    Ok(out)
}

/// A full scan: every selected repository, `concurrency` at a time.
pub async fn collect(gh: Arc<RestGitHub>, scope: Arc<Scope>, now_ms: i64) -> Result<Facts, String> {
    let org = Arc::new(org_context(&gh, &scope.config.org).await);
    let repos = list_repos(&gh, &scope).await?;
    let sem = Arc::new(Semaphore::new(scope.config.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, r) in repos.into_iter().enumerate() {
        let (gh, scope, org, sem) = (gh.clone(), scope.clone(), org.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, repo_facts(&gh, &scope, &org, &r).await)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r.map_err(|e| format!("a repository's collection failed: {e}"))?);
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(Facts {
        org: scope.config.org.clone(),
        collected_at_ms: now_ms,
        org_workflow: Some(org_context_workflow(&org)),
        repos: out.into_iter().map(|(_, r)| r).collect(),
    })
}

fn org_context_workflow(org: &OrgContext) -> Collected<WorkflowPermissions> {
    match org.workflow.as_result() {
        Ok(w) => Collected::Ok(w.clone()),
        Err(e) => Collected::Error(e.to_string()),
    }
}

/// The facts of one repository (`owner/name`) for a re-check after an
/// event, with the organisation's workflow permissions.
pub async fn collect_one(
    gh: &RestGitHub,
    scope: &Scope,
    full_name: &str,
    now_ms: i64,
) -> Result<Option<Facts>, String> {
    let p = format!("/repos/{full_name}");
    let Some(repo) = get(gh, full_name, &p).await? else {
        return Ok(None);
    };
    let topics: Vec<String> = repo["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    if repo["archived"].as_bool().unwrap_or(false) || !scope.selects(full_name, &topics) {
        return Ok(None);
    }
    let org = org_context(gh, &scope.config.org).await;
    let r = repo_facts(gh, scope, &org, &repo).await;
    Ok(Some(Facts {
        org: scope.config.org.clone(),
        collected_at_ms: now_ms,
        org_workflow: Some(org_context_workflow(&org)),
        repos: vec![r],
    }))
}
