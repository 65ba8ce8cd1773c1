//! A local GitHub stand-in for the settings endpoints the posture reads
//! and writes (feature `testing`; tests and the benchmark only).
//!
//! Every answer starts from the REST API's own examples in
//! `@octokit/openapi` (`components.examples`: `branch-protection`,
//! `repository-ruleset`, `org-ruleset`, `repository-ruleset-items`,
//! `repository-rule-items`, `actions-default-workflow-permissions`,
//! `environments`, `minimal-repository-items`, `full-repository`,
//! `hook-items`, `codeowners-errors`), installed by
//! `scripts/setup-gate-fixtures.sh`, with the test's state written over
//! them. The `pull_request` rule has no example there; it is built from the
//! `repository-rule-pull-request` schema (its required parameters, checked
//! against the schema when the stand-in starts). It answers `ETag`s and
//! `304 Not Modified` to `If-None-Match` as GitHub does, counts requests,
//! and can insist on a token.
//!
//! What it cannot show: GitHub's real evaluation of ruleset conditions
//! (it knows `~ALL`, `~DEFAULT_BRANCH`, exact refs and exact repository
//! names), repository properties, custom roles, the merge queue, rate
//! limits over an hour, or that GitHub really refuses a repository setting
//! looser than its organisation's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The `@octokit/openapi` examples and schemas the stand-in starts from.
pub struct Spec {
    examples: serde_json::Map<String, Value>,
    pr_rule_required: Vec<String>,
}

impl Spec {
    /// The description file (`api.github.com.json`).
    pub fn path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../twokey-gate/tests/fixtures/node_modules/@octokit/openapi/generated/api.github.com.json")
    }

    /// Loads it; `None` (skip) when not installed, a panic under CI.
    pub fn load() -> Option<Spec> {
        let p = Spec::path();
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("{}: {e}; run scripts/setup-gate-fixtures.sh", p.display());
                }
                eprintln!(
                    "skipping: {} missing (run scripts/setup-gate-fixtures.sh)",
                    p.display()
                );
                return None;
            }
        };
        let mut doc: Value = serde_json::from_str(&text).ok()?;
        let examples = doc["components"]["examples"]
            .as_object_mut()
            .map(std::mem::take)?;
        let pr_rule_required = doc["components"]["schemas"]["repository-rule-pull-request"]
            ["properties"]["parameters"]["required"]
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        Some(Spec {
            examples,
            pr_rule_required,
        })
    }

    /// The value of example `name` (panics when the spec lacks it: the
    /// stand-in would no longer be built from GitHub's examples).
    pub fn example(&self, name: &str) -> Value {
        self.examples
            .get(name)
            .map(|e| e["value"].clone())
            .unwrap_or_else(|| panic!("@octokit/openapi has no example {name:?}"))
    }
}

#[derive(Default, Clone)]
struct Repo {
    branch: String,
    topics: Vec<String>,
    protection: Option<Value>,
    codeowners: bool,
    workflow: Value,
    environments: Vec<Value>,
    hooks: Vec<String>,
}

#[derive(Default)]
struct World {
    org: String,
    repos: BTreeMap<String, Repo>,
    /// Rulesets by id: (repository or `None` for the organisation, document).
    rulesets: BTreeMap<u64, (Option<String>, Value)>,
    next_id: u64,
    org_workflow: Value,
    token: Option<String>,
    requests: u64,
    not_modified: u64,
    writes: Vec<String>,
}

type Shared = Arc<Mutex<World>>;

fn lock(w: &Shared) -> std::sync::MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running stand-in.
#[derive(Clone)]
pub struct StandIn {
    world: Shared,
    spec: Arc<Spec>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex_of(&Sha256::digest(body)[..16]))
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Token check, request counting, ETags and `304 Not Modified`.
async fn middleware(State(w): State<Shared>, req: Request, next: Next) -> Response {
    let inm = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let is_get = req.method() == axum::http::Method::GET;
    {
        let mut w = lock(&w);
        w.requests += 1;
        if let Some(t) = &w.token {
            let got = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if got != Some(t.as_str()) {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({ "message": "Bad credentials" })),
                )
                    .into_response();
            }
        }
    }
    let res = next.run(req).await;
    if !is_get || res.status() != StatusCode::OK {
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let tag = etag_of(&bytes);
    if inm.as_deref() == Some(tag.as_str()) {
        lock(&w).not_modified += 1;
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&tag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return r;
    }
    let mut r = Response::from_parts(parts, axum::body::Body::from(bytes));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

type Answer = Result<Json<Value>, StatusCode>;

fn repo_key(o: &str, r: &str) -> String {
    format!("{o}/{r}")
}

/// Whether ruleset `rs` applies to `repo`'s default branch (the stand-in's
/// own, deliberately simple reading of conditions).
fn applies(rs: &Value, repo_name: &str, branch: &str) -> bool {
    let c = &rs["conditions"];
    let has = |v: &Value, k: &str, want: &[&str]| {
        v[k].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|s| want.contains(&s)))
        })
    };
    let bref = format!("refs/heads/{branch}");
    let refs_ok = c["ref_name"].is_null()
        || (has(
            &c["ref_name"],
            "include",
            &["~ALL", "~DEFAULT_BRANCH", &bref],
        ) && !has(
            &c["ref_name"],
            "exclude",
            &["~ALL", "~DEFAULT_BRANCH", &bref],
        ));
    let repo_ok = c["repository_name"].is_null()
        || (has(&c["repository_name"], "include", &["~ALL", repo_name])
            && !has(&c["repository_name"], "exclude", &[repo_name]));
    refs_ok && repo_ok
}

async fn list_repos(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath(org): UrlPath<String>,
    q: axum::extract::RawQuery,
) -> Answer {
    let (w, spec) = (lock(&w.0), w.1);
    if w.org != org {
        return Err(StatusCode::NOT_FOUND);
    }
    let page: usize =
        q.0.as_deref()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("page="))
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
    let per: usize = 100;
    let template = spec.example("minimal-repository-items")[0].clone();
    let items: Vec<Value> = w
        .repos
        .iter()
        .skip((page.max(1) - 1) * per)
        .take(per)
        .map(|(name, r)| repo_json(&template, name, r))
        .collect();
    Ok(Json(json!(items)))
}

fn repo_json(template: &Value, full: &str, r: &Repo) -> Value {
    let mut v = template.clone();
    v["full_name"] = json!(full);
    v["name"] = json!(full.split('/').nth(1).unwrap_or(full));
    v["default_branch"] = json!(r.branch);
    v["topics"] = json!(r.topics);
    v["archived"] = json!(false);
    v
}

async fn get_repo(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r)): UrlPath<(String, String)>,
) -> Answer {
    let (w, spec) = (lock(&w.0), w.1);
    let k = repo_key(&o, &r);
    let repo = w.repos.get(&k).ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(repo_json(&spec.example("full-repository"), &k, repo)))
}

async fn get_protection(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r, b)): UrlPath<(String, String, String)>,
) -> Answer {
    let w = lock(&w.0);
    let repo = w
        .repos
        .get(&repo_key(&o, &r))
        .ok_or(StatusCode::NOT_FOUND)?;
    if repo.branch != b {
        return Err(StatusCode::NOT_FOUND);
    }
    repo.protection
        .clone()
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

/// The `GET` shape of protection from a `PUT` body, over the example.
fn protection_from_put(template: &Value, body: &Value) -> Result<Value, StatusCode> {
    for k in [
        "required_status_checks",
        "enforce_admins",
        "required_pull_request_reviews",
        "restrictions",
    ] {
        if body.get(k).is_none() {
            // GitHub requires all four keys (null allowed).
            return Err(StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
    let mut v = template.clone();
    let en = |b: bool| json!({ "enabled": b });
    v["enforce_admins"]["enabled"] = json!(body["enforce_admins"].as_bool().unwrap_or(false));
    v["allow_force_pushes"] = en(body["allow_force_pushes"].as_bool().unwrap_or(false));
    v["allow_deletions"] = en(body["allow_deletions"].as_bool().unwrap_or(false));
    let r = &body["required_pull_request_reviews"];
    if r.is_null() {
        if let Some(m) = v.as_object_mut() {
            m.remove("required_pull_request_reviews");
        }
    } else {
        let t = &mut v["required_pull_request_reviews"];
        for k in [
            "dismiss_stale_reviews",
            "require_code_owner_reviews",
            "require_last_push_approval",
        ] {
            t[k] = json!(r[k].as_bool().unwrap_or(false));
        }
        t["required_approving_review_count"] =
            json!(r["required_approving_review_count"].as_u64().unwrap_or(1));
        if let Some(m) = t.as_object_mut() {
            m.remove("bypass_pull_request_allowances");
        }
    }
    let s = &body["required_status_checks"];
    if s.is_null() {
        if let Some(m) = v.as_object_mut() {
            m.remove("required_status_checks");
        }
    } else {
        v["required_status_checks"]["contexts"] = s["contexts"].clone();
        v["required_status_checks"]["strict"] = json!(s["strict"].as_bool().unwrap_or(false));
        if let Some(m) = v["required_status_checks"].as_object_mut() {
            m.remove("checks");
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("restrictions");
    }
    Ok(v)
}

async fn put_protection(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r, b)): UrlPath<(String, String, String)>,
    Json(body): Json<Value>,
) -> Answer {
    let (mut w, spec) = (lock(&w.0), w.1);
    let v = protection_from_put(&spec.example("branch-protection"), &body)?;
    let k = repo_key(&o, &r);
    let repo = w.repos.get_mut(&k).ok_or(StatusCode::NOT_FOUND)?;
    if repo.branch != b {
        return Err(StatusCode::NOT_FOUND);
    }
    repo.protection = Some(v.clone());
    w.writes
        .push(format!("PUT /repos/{k}/branches/{b}/protection"));
    Ok(Json(v))
}

async fn rules_for_branch(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r, b)): UrlPath<(String, String, String)>,
) -> Answer {
    let w = lock(&w.0);
    let k = repo_key(&o, &r);
    let repo = w.repos.get(&k).ok_or(StatusCode::NOT_FOUND)?;
    let mut out = Vec::new();
    if repo.branch == b {
        for (id, (owner, rs)) in &w.rulesets {
            let mine = owner.as_deref().is_none_or(|x| x == k);
            if !mine || rs["enforcement"] != "active" || !applies(rs, &r, &b) {
                continue;
            }
            for rule in rs["rules"].as_array().into_iter().flatten() {
                let mut x = rule.clone();
                x["ruleset_source_type"] = rs["source_type"].clone();
                x["ruleset_source"] = rs["source"].clone();
                x["ruleset_id"] = json!(id);
                out.push(x);
            }
        }
    }
    Ok(Json(json!(out)))
}

async fn list_rulesets(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r)): UrlPath<(String, String)>,
    q: axum::extract::RawQuery,
) -> Answer {
    let (w, spec) = (lock(&w.0), w.1);
    let k = repo_key(&o, &r);
    let repo = w.repos.get(&k).ok_or(StatusCode::NOT_FOUND)?;
    let parents =
        q.0.as_deref()
            .unwrap_or("")
            .contains("includes_parents=true");
    let template = spec.example("repository-ruleset-items")[0].clone();
    let mut out = Vec::new();
    for (id, (owner, rs)) in &w.rulesets {
        let show = match owner {
            Some(x) => *x == k,
            None => parents && applies(rs, &r, &repo.branch),
        };
        if show {
            let mut t = template.clone();
            for f in ["name", "source_type", "source", "enforcement"] {
                t[f] = rs[f].clone();
            }
            t["id"] = json!(id);
            out.push(t);
        }
    }
    Ok(Json(json!(out)))
}

async fn get_repo_ruleset(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r, id)): UrlPath<(String, String, u64)>,
) -> Answer {
    let w = lock(&w.0);
    match w.rulesets.get(&id) {
        Some((Some(x), rs)) if *x == repo_key(&o, &r) => Ok(Json(rs.clone())),
        _ => Err(StatusCode::NOT_FOUND),
    }
}

async fn put_repo_ruleset(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r, id)): UrlPath<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Answer {
    let mut w = lock(&w.0);
    let k = repo_key(&o, &r);
    let out = match w.rulesets.get_mut(&id) {
        Some((Some(x), rs)) if *x == k => {
            merge(rs, &body);
            rs.clone()
        }
        _ => return Err(StatusCode::NOT_FOUND),
    };
    w.writes.push(format!("PUT /repos/{k}/rulesets/{id}"));
    Ok(Json(out))
}

fn merge(rs: &mut Value, body: &Value) {
    for k in [
        "name",
        "enforcement",
        "bypass_actors",
        "conditions",
        "rules",
    ] {
        if let Some(v) = body.get(k) {
            rs[k] = v.clone();
        }
    }
}

async fn org_rulesets(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath(org): UrlPath<String>,
) -> Answer {
    let w = lock(&w.0);
    if w.org != org {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(Json(json!(w
        .rulesets
        .values()
        .filter(|(o, _)| o.is_none())
        .map(|(_, rs)| rs.clone())
        .collect::<Vec<_>>())))
}

async fn get_org_ruleset(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((org, id)): UrlPath<(String, u64)>,
) -> Answer {
    let w = lock(&w.0);
    match w.rulesets.get(&id) {
        Some((None, rs)) if w.org == org => Ok(Json(rs.clone())),
        _ => Err(StatusCode::NOT_FOUND),
    }
}

async fn put_org_ruleset(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((org, id)): UrlPath<(String, u64)>,
    Json(body): Json<Value>,
) -> Answer {
    let mut w = lock(&w.0);
    if w.org != org {
        return Err(StatusCode::NOT_FOUND);
    }
    let out = match w.rulesets.get_mut(&id) {
        Some((None, rs)) => {
            merge(rs, &body);
            rs.clone()
        }
        _ => return Err(StatusCode::NOT_FOUND),
    };
    w.writes.push(format!("PUT /orgs/{org}/rulesets/{id}"));
    Ok(Json(out))
}

fn workflow_put(cur: &mut Value, body: &Value) -> Result<(), StatusCode> {
    if let Some(d) = body.get("default_workflow_permissions") {
        if d != "read" && d != "write" {
            return Err(StatusCode::UNPROCESSABLE_ENTITY);
        }
        cur["default_workflow_permissions"] = d.clone();
    }
    if let Some(c) = body.get("can_approve_pull_request_reviews") {
        cur["can_approve_pull_request_reviews"] =
            json!(c.as_bool().ok_or(StatusCode::UNPROCESSABLE_ENTITY)?);
    }
    Ok(())
}

async fn get_org_workflow(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath(org): UrlPath<String>,
) -> Answer {
    let w = lock(&w.0);
    if w.org != org {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(Json(w.org_workflow.clone()))
}

async fn put_org_workflow(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath(org): UrlPath<String>,
    Json(body): Json<Value>,
) -> Result<StatusCode, StatusCode> {
    let mut w = lock(&w.0);
    if w.org != org {
        return Err(StatusCode::NOT_FOUND);
    }
    workflow_put(&mut w.org_workflow, &body)?;
    w.writes
        .push(format!("PUT /orgs/{org}/actions/permissions/workflow"));
    Ok(StatusCode::NO_CONTENT)
}

async fn get_repo_workflow(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r)): UrlPath<(String, String)>,
) -> Answer {
    let w = lock(&w.0);
    let repo = w
        .repos
        .get(&repo_key(&o, &r))
        .ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(repo.workflow.clone()))
}

async fn put_repo_workflow(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r)): UrlPath<(String, String)>,
    Json(body): Json<Value>,
) -> Result<StatusCode, StatusCode> {
    let mut w = lock(&w.0);
    let k = repo_key(&o, &r);
    let repo = w.repos.get_mut(&k).ok_or(StatusCode::NOT_FOUND)?;
    workflow_put(&mut repo.workflow, &body)?;
    w.writes
        .push(format!("PUT /repos/{k}/actions/permissions/workflow"));
    Ok(StatusCode::NO_CONTENT)
}

async fn environments(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r)): UrlPath<(String, String)>,
) -> Answer {
    let w = lock(&w.0);
    let repo = w
        .repos
        .get(&repo_key(&o, &r))
        .ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(
        json!({ "total_count": repo.environments.len(), "environments": repo.environments }),
    ))
}

/// `PUT /repos/{o}/{r}/environments/{name}`: sets the required reviewers
/// (by type and id, known reviewers keep their login) and
/// `prevent_self_review`; other fields are left as they are.
async fn put_environment(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r, name)): UrlPath<(String, String, String)>,
    Json(body): Json<Value>,
) -> Answer {
    let (mut w, spec) = (lock(&w.0), w.1);
    let k = repo_key(&o, &r);
    let repo = w.repos.get_mut(&k).ok_or(StatusCode::NOT_FOUND)?;
    let pos = match repo
        .environments
        .iter()
        .position(|e| e["name"] == name.as_str())
    {
        Some(i) => i,
        None => {
            let mut env = spec.example("environments")["environments"][0].clone();
            env["name"] = json!(name);
            env["protection_rules"] = json!([]);
            repo.environments.push(env);
            repo.environments.len() - 1
        }
    };
    let env = &mut repo.environments[pos];
    let mut rules: Vec<Value> = env["protection_rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let old = rules
        .iter()
        .find(|x| x["type"] == "required_reviewers")
        .cloned()
        .unwrap_or(Value::Null);
    let known: Vec<Value> = old["reviewers"].as_array().cloned().unwrap_or_default();
    let reviewers = match body.get("reviewers") {
        Some(Value::Array(list)) => {
            let mut out = Vec::new();
            for want in list {
                let (Some(t), Some(id)) = (want["type"].as_str(), want["id"].as_u64()) else {
                    return Err(StatusCode::UNPROCESSABLE_ENTITY);
                };
                out.push(
                    known
                        .iter()
                        .find(|x| x["type"] == t && x["reviewer"]["id"] == id)
                        .cloned()
                        .unwrap_or_else(|| {
                            let key = if t == "Team" { "slug" } else { "login" };
                            json!({ "type": t, "reviewer": { "id": id, key: format!("{}-{id}", t.to_ascii_lowercase()) } })
                        }),
                );
            }
            out
        }
        Some(Value::Null) => vec![],
        Some(_) => return Err(StatusCode::UNPROCESSABLE_ENTITY),
        None => known,
    };
    let prevent = body
        .get("prevent_self_review")
        .and_then(Value::as_bool)
        .or_else(|| old["prevent_self_review"].as_bool())
        .unwrap_or(false);
    rules.retain(|x| x["type"] != "required_reviewers");
    if !reviewers.is_empty() {
        rules.push(json!({
            "id": 1, "type": "required_reviewers", "prevent_self_review": prevent, "reviewers": reviewers,
        }));
    }
    env["protection_rules"] = json!(rules);
    let answer = env.clone();
    w.writes.push(format!("PUT /repos/{k}/environments/{name}"));
    Ok(Json(answer))
}

async fn codeowners(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r)): UrlPath<(String, String)>,
) -> Answer {
    let w = lock(&w.0);
    let repo = w
        .repos
        .get(&repo_key(&o, &r))
        .ok_or(StatusCode::NOT_FOUND)?;
    if !repo.codeowners {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok(Json(json!({ "errors": [] })))
}

async fn hooks(
    State(w): State<(Shared, Arc<Spec>)>,
    UrlPath((o, r)): UrlPath<(String, String)>,
) -> Answer {
    let (w, spec) = (lock(&w.0), w.1);
    let repo = w
        .repos
        .get(&repo_key(&o, &r))
        .ok_or(StatusCode::NOT_FOUND)?;
    let t = spec.example("hook-items")[0].clone();
    Ok(Json(json!(repo
        .hooks
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut h = t.clone();
            h["id"] = json!(i + 1);
            h["config"]["url"] = json!(u);
            h
        })
        .collect::<Vec<_>>())))
}

/// Who may bypass a ruleset.
#[derive(Debug, Clone)]
pub struct Bypass {
    /// `Team`, `OrganizationAdmin`, `Integration`, `RepositoryRole`.
    pub actor_type: String,
    /// Its id.
    pub actor_id: Option<u64>,
}

impl StandIn {
    /// Starts it for organisation `org` on a loopback port.
    pub async fn start(spec: Spec, org: &str) -> std::io::Result<StandIn> {
        // The pull_request rule is built from the schema's required
        // parameters: the stand-in refuses to start if they changed.
        let mut want = vec![
            "dismiss_stale_reviews_on_push",
            "require_code_owner_review",
            "require_last_push_approval",
            "required_approving_review_count",
            "required_review_thread_resolution",
        ];
        want.sort_unstable();
        let mut got: Vec<&str> = spec.pr_rule_required.iter().map(String::as_str).collect();
        got.sort_unstable();
        assert_eq!(
            got, want,
            "repository-rule-pull-request's required parameters changed"
        );
        let spec = Arc::new(spec);
        let world: Shared = Arc::new(Mutex::new(World {
            org: org.into(),
            org_workflow: spec.example("actions-default-workflow-permissions"),
            next_id: 1000,
            ..Default::default()
        }));
        let st = (world.clone(), spec.clone());
        let app = axum::Router::new()
            .route("/orgs/{org}/repos", get(list_repos))
            .route("/orgs/{org}/rulesets", get(org_rulesets))
            .route(
                "/orgs/{org}/rulesets/{id}",
                get(get_org_ruleset).put(put_org_ruleset),
            )
            .route(
                "/orgs/{org}/actions/permissions/workflow",
                get(get_org_workflow).put(put_org_workflow),
            )
            .route("/repos/{o}/{r}", get(get_repo))
            .route(
                "/repos/{o}/{r}/branches/{b}/protection",
                get(get_protection).put(put_protection),
            )
            .route("/repos/{o}/{r}/rules/branches/{b}", get(rules_for_branch))
            .route("/repos/{o}/{r}/rulesets", get(list_rulesets))
            .route(
                "/repos/{o}/{r}/rulesets/{id}",
                get(get_repo_ruleset).put(put_repo_ruleset),
            )
            .route(
                "/repos/{o}/{r}/actions/permissions/workflow",
                get(get_repo_workflow).put(put_repo_workflow),
            )
            .route("/repos/{o}/{r}/environments", get(environments))
            .route(
                "/repos/{o}/{r}/environments/{name}",
                axum::routing::put(put_environment),
            )
            .route("/repos/{o}/{r}/codeowners/errors", get(codeowners))
            .route("/repos/{o}/{r}/hooks", get(hooks))
            .layer(axum::middleware::from_fn_with_state(
                world.clone(),
                middleware,
            ))
            .with_state(st);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("github settings stand-in stopped: {e}");
            }
        });
        Ok(StandIn { world, spec, url })
    }

    /// Refuses calls without `Authorization: Bearer token`.
    pub fn require_token(&self, token: &str) {
        lock(&self.world).token = Some(token.into());
    }

    /// Adds repository `name` (in the organisation) with `branch`, no
    /// protection, workflow permissions as the example (read, Actions may
    /// approve: set them), no environments.
    pub fn add_repo(&self, name: &str, branch: &str) -> String {
        let mut w = lock(&self.world);
        let full = format!("{}/{name}", w.org);
        let workflow = w.org_workflow.clone();
        w.repos.insert(
            full.clone(),
            Repo {
                branch: branch.into(),
                workflow,
                ..Default::default()
            },
        );
        full
    }

    /// Sets a repository's topics.
    pub fn set_topics(&self, repo: &str, topics: &[&str]) {
        if let Some(r) = lock(&self.world).repos.get_mut(repo) {
            r.topics = topics.iter().map(|s| s.to_string()).collect();
        }
    }

    /// Classic protection from a `PUT .../protection` body (as an admin
    /// would send it).
    pub fn set_protection(&self, repo: &str, body: Value) {
        let v = protection_from_put(&self.spec.example("branch-protection"), &body)
            .unwrap_or_else(|s| panic!("bad protection body ({s}): {body}"));
        if let Some(r) = lock(&self.world).repos.get_mut(repo) {
            r.protection = Some(v);
        }
    }

    /// Removes classic protection (`DELETE .../protection`).
    pub fn delete_protection(&self, repo: &str) {
        if let Some(r) = lock(&self.world).repos.get_mut(repo) {
            r.protection = None;
        }
    }

    /// Edits the stored classic protection in place (its `GET` shape).
    pub fn edit_protection(&self, repo: &str, f: impl FnOnce(&mut Value)) {
        if let Some(p) = lock(&self.world)
            .repos
            .get_mut(repo)
            .and_then(|r| r.protection.as_mut())
        {
            f(p);
        }
    }

    /// The stored classic protection (its `GET` shape).
    /// An environment of `repo` as `GET .../environments` lists it.
    pub fn environment(&self, repo: &str, name: &str) -> Option<Value> {
        lock(&self.world)
            .repos
            .get(repo)
            .and_then(|r| r.environments.iter().find(|e| e["name"] == name).cloned())
    }

    /// The classic protection of `repo`'s default branch.
    pub fn protection(&self, repo: &str) -> Option<Value> {
        lock(&self.world)
            .repos
            .get(repo)
            .and_then(|r| r.protection.clone())
    }

    /// A `pull_request` rule, its parameters the schema's required ones.
    pub fn pull_request_rule(
        approvals: u32,
        dismiss_stale: bool,
        last_push: bool,
        code_owner: bool,
    ) -> Value {
        json!({
            "type": "pull_request",
            "parameters": {
                "dismiss_stale_reviews_on_push": dismiss_stale,
                "require_code_owner_review": code_owner,
                "require_last_push_approval": last_push,
                "required_approving_review_count": approvals,
                "required_review_thread_resolution": false,
            }
        })
    }

    /// A rule without parameters (`non_fast_forward`, `deletion`).
    pub fn rule(kind: &str) -> Value {
        json!({ "type": kind })
    }

    /// A `required_status_checks` rule.
    pub fn status_checks_rule(contexts: &[&str]) -> Value {
        json!({
            "type": "required_status_checks",
            "parameters": {
                "strict_required_status_checks_policy": true,
                "required_status_checks": contexts.iter().map(|c| json!({ "context": c })).collect::<Vec<_>>(),
            }
        })
    }

    /// Adds a ruleset on the default branch of `repo` (or, with `None`, an
    /// organisation ruleset on every repository's default branch), over the
    /// `repository-ruleset` / `org-ruleset` example; returns its id.
    pub fn add_ruleset(
        &self,
        repo: Option<&str>,
        enforcement: &str,
        bypass: &[Bypass],
        rules: Vec<Value>,
    ) -> u64 {
        let mut w = lock(&self.world);
        w.next_id += 1;
        let id = w.next_id;
        let mut rs = match repo {
            Some(_) => self.spec.example("repository-ruleset"),
            None => self.spec.example("org-ruleset"),
        };
        rs["id"] = json!(id);
        rs["name"] = json!(format!("ruleset {id}"));
        rs["enforcement"] = json!(enforcement);
        rs["bypass_actors"] = json!(bypass
            .iter()
            .map(|b| json!({ "actor_id": b.actor_id, "actor_type": b.actor_type, "bypass_mode": "always" }))
            .collect::<Vec<_>>());
        rs["rules"] = json!(rules);
        match repo {
            Some(r) => {
                rs["source_type"] = json!("Repository");
                rs["source"] = json!(r);
                rs["conditions"] =
                    json!({ "ref_name": { "include": ["~DEFAULT_BRANCH"], "exclude": [] } });
            }
            None => {
                rs["source_type"] = json!("Organization");
                rs["source"] = json!(w.org);
                rs["conditions"] = json!({
                    "ref_name": { "include": ["~DEFAULT_BRANCH"], "exclude": [] },
                    "repository_name": { "include": ["~ALL"], "exclude": [] },
                });
            }
        }
        w.rulesets.insert(id, (repo.map(str::to_string), rs));
        id
    }

    /// Replaces a ruleset's conditions.
    pub fn set_conditions(&self, id: u64, conditions: Value) {
        if let Some((_, rs)) = lock(&self.world).rulesets.get_mut(&id) {
            rs["conditions"] = conditions;
        }
    }

    /// Changes a ruleset's enforcement.
    pub fn set_enforcement(&self, id: u64, enforcement: &str) {
        if let Some((_, rs)) = lock(&self.world).rulesets.get_mut(&id) {
            rs["enforcement"] = json!(enforcement);
        }
    }

    /// A ruleset's document.
    pub fn ruleset(&self, id: u64) -> Option<Value> {
        lock(&self.world).rulesets.get(&id).map(|(_, v)| v.clone())
    }

    /// Sets workflow permissions of a repository, or of the organisation
    /// with `None`.
    pub fn set_workflow(&self, repo: Option<&str>, default: &str, can_approve: bool) {
        let mut w = lock(&self.world);
        let v = json!({ "default_workflow_permissions": default, "can_approve_pull_request_reviews": can_approve });
        match repo {
            Some(r) => {
                if let Some(r) = w.repos.get_mut(r) {
                    r.workflow = v;
                }
            }
            None => w.org_workflow = v,
        }
    }

    /// A repository's workflow permissions (or the organisation's).
    pub fn workflow(&self, repo: Option<&str>) -> Value {
        let w = lock(&self.world);
        match repo {
            Some(r) => w
                .repos
                .get(r)
                .map(|r| r.workflow.clone())
                .unwrap_or(Value::Null),
            None => w.org_workflow.clone(),
        }
    }

    /// Adds an environment over the `environments` example: required
    /// reviewers (logins; none: no such rule) and `prevent_self_review`.
    pub fn add_environment(
        &self,
        repo: &str,
        name: &str,
        reviewers: &[&str],
        prevent_self_review: bool,
    ) {
        let mut env = self.spec.example("environments")["environments"][0].clone();
        env["name"] = json!(name);
        let mut rules: Vec<Value> = env["protection_rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let user = rules
            .iter()
            .find(|r| r["type"] == "required_reviewers")
            .and_then(|r| r["reviewers"].get(0).cloned())
            .unwrap_or_else(|| json!({ "type": "User", "reviewer": {} }));
        rules.retain(|r| r["type"] != "required_reviewers");
        if !reviewers.is_empty() {
            rules.push(json!({
                "id": 1, "type": "required_reviewers", "prevent_self_review": prevent_self_review,
                "reviewers": reviewers.iter().map(|l| { let mut u = user.clone(); u["reviewer"]["login"] = json!(l); u }).collect::<Vec<_>>(),
            }));
        }
        env["protection_rules"] = json!(rules);
        if let Some(r) = lock(&self.world).repos.get_mut(repo) {
            r.environments.push(env);
        }
    }

    /// Whether `repo` has a CODEOWNERS file.
    pub fn set_codeowners(&self, repo: &str, exists: bool) {
        if let Some(r) = lock(&self.world).repos.get_mut(repo) {
            r.codeowners = exists;
        }
    }

    /// Adds a webhook to `url`.
    pub fn add_hook(&self, repo: &str, url: &str) {
        if let Some(r) = lock(&self.world).repos.get_mut(repo) {
            r.hooks.push(url.into());
        }
    }

    /// (requests, of which `304 Not Modified`).
    pub fn counts(&self) -> (u64, u64) {
        let w = lock(&self.world);
        (w.requests, w.not_modified)
    }

    /// The writes (`PUT path`) made so far.
    pub fn writes(&self) -> Vec<String> {
        lock(&self.world).writes.clone()
    }

    /// A protection body at the baseline (what a careful admin sets).
    pub fn baseline_protection(approvals: u32, contexts: &[&str]) -> Value {
        json!({
            "required_status_checks": if contexts.is_empty() { Value::Null } else { json!({ "strict": true, "contexts": contexts }) },
            "enforce_admins": true,
            "required_pull_request_reviews": {
                "dismiss_stale_reviews": true,
                "require_code_owner_reviews": true,
                "required_approving_review_count": approvals,
                "require_last_push_approval": true,
            },
            "restrictions": null,
            "allow_force_pushes": false,
            "allow_deletions": false,
        })
    }
}
