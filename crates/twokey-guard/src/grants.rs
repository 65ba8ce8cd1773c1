//! Grant correlation: is a high-risk CloudTrail call covered by an active
//! twokey grant, or was it made outside two-person control?
//!
//! A [`GrantIndex`] holds the broker's grants and the entitlement targets of
//! its policy (from the twokey API, `GET /v1/requests?scope=active` and
//! `GET /v1/policy`, or a file holding both). [`correlate`] is a pure
//! function of one event, the index and the event time.
//!
//! **Who made the call** (the event's person), from `userIdentity`:
//!
//! 1. `sessionContext.sourceIdentity` (the `aws_iam_assume` provider sets it
//!    to the requester's name, and AWS carries it through role chaining);
//! 2. the role session name of an `assumed-role/ROLE/SESSION` ARN;
//! 3. any person whose entry in an entitlement target's
//!    `principals = { alice = "arn:..." }` table is the caller's IAM user or
//!    role ARN (or the role behind an assumed-role session).
//!
//! A person matches a grant when the name equals the grant's
//! `requester_name` or its requester's subject.
//!
//! **A grant covers the call** when it was active at the event time
//! (`activated_at <= t < ends_at`, and before `ended_at` when it ended
//! early), a person of the call is its requester, and its entitlement
//! targets the call, by provider:
//!
//! - `aws_iam_assume`: the call was made in a session of `target.role_arn`
//!   (compared by account and role name; paths are ignored), or it is the
//!   `AssumeRole` call for that role itself;
//! - every provider (including `aws_iam_assume`): the caller's ARN (or the
//!   session's role) is the requester's entry in `target.principals`;
//! - other providers that name a `target.role_arn` are treated like
//!   `aws_iam_assume`. Entitlements with neither key (e.g. `exec`,
//!   `postgres`, `aws_security_group`) cover no CloudTrail call.
//!
//! **Root task sessions** are matched by account and task, not by person:
//! twokey itself (the management account's gateway) calls `sts:AssumeRoot`
//! after approval. An `AssumeRoot` record is covered when an
//! `aws_root_task` grant was active at the event time whose `target.accounts`
//! holds `requestParameters.targetPrincipal` (an account id or its root ARN)
//! and whose `target.task` is the task of `requestParameters.taskPolicyArn`;
//! any other `AssumeRoot` is [`Coverage::Outside`], whoever made it. A call
//! made *with* a root session (`sessionContext.assumedRoot` `"true"`, in the
//! member account) is covered by an active `aws_root_task` grant for that
//! account.
//!
//! Calls that no principal makes (`eventType` `AwsServiceEvent`,
//! `userIdentity.type` `AWSService`) are [`Coverage::NotApplicable`]; every
//! other call that no grant covers is [`Coverage::Outside`]. A break-glass
//! grant covers the call, marked `break_glass` and with no approvers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An approver of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approver {
    /// Display name at review time.
    pub name: String,
    /// Identity key, `issuer|subject`.
    pub identity: String,
}

/// One grant (a request that became active).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Request id.
    pub request_id: String,
    /// Entitlement name.
    pub entitlement: String,
    /// Requester's display name.
    pub requester_name: String,
    /// Requester's subject.
    pub requester_subject: String,
    /// Reviewers who approved.
    pub approvers: Vec<Approver>,
    /// Self-activated under break-glass.
    pub break_glass: bool,
    /// Start, ms since the epoch.
    pub from_ms: i64,
    /// End (exclusive), ms since the epoch.
    pub until_ms: i64,
}

/// What an entitlement targets, as far as CloudTrail can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Provider kind (`aws_iam_assume`, `exec`, ...).
    pub provider: String,
    /// `target.role_arn`, as a comparison key (see [`arn_key`]).
    pub role: Option<String>,
    /// `target.principals`: person name to ARN comparison key.
    pub principals: BTreeMap<String, String>,
    /// `target.accounts` (`aws_root_task`): the member accounts.
    pub accounts: BTreeSet<String>,
    /// `target.task` (`aws_root_task`): the task policy's name.
    pub task: Option<String>,
    /// `target.addresses` (`aws_security_group`): person to CIDR.
    pub addresses: BTreeMap<String, String>,
    /// `target.port` (`aws_security_group`).
    pub port: Option<u16>,
    /// `target.mode` (`postgres`: `login` or `membership`).
    pub mode: Option<String>,
    /// `target.users` (`postgres` membership): person to database user.
    pub users: BTreeMap<String, String>,
}

/// The provider whose grants open root sessions.
pub const ROOT_TASK_PROVIDER: &str = "aws_root_task";

/// Grants and entitlement targets to correlate events with.
#[derive(Debug, Clone, Default)]
pub struct GrantIndex {
    grants: Vec<Grant>,
    targets: BTreeMap<String, Target>,
    /// ARN key to the people mapped to it in any `principals` table.
    mapped: BTreeMap<String, BTreeSet<String>>,
    /// Policy hash, when known.
    pub policy_hash: String,
}

#[derive(Deserialize)]
struct ApiIdentity {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    subject: String,
}

#[derive(Deserialize)]
struct ApiReview {
    reviewer: ApiIdentity,
    #[serde(default)]
    reviewer_name: String,
    #[serde(default)]
    decision: String,
}

#[derive(Deserialize)]
struct ApiRequest {
    id: String,
    entitlement: String,
    requester: ApiIdentity,
    #[serde(default)]
    requester_name: String,
    #[serde(default)]
    reviews: Vec<ApiReview>,
    #[serde(default)]
    activated_at: Option<i64>,
    #[serde(default)]
    ends_at: Option<i64>,
    #[serde(default)]
    ended_at: Option<i64>,
    #[serde(default)]
    break_glass: bool,
}

#[derive(Deserialize)]
struct ApiEntitlement {
    #[serde(default)]
    provider: String,
    #[serde(default)]
    target: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct ApiPolicy {
    #[serde(default)]
    hash: String,
    #[serde(default)]
    entitlements: BTreeMap<String, ApiEntitlement>,
}

/// The `--grants FILE` format: the two API answers side by side.
#[derive(Deserialize)]
struct GrantsFile {
    requests: Value,
    policy: Value,
}

/// A comparison key for an IAM ARN: `ACCOUNT:KIND/NAME` for users and roles
/// (paths dropped), `ACCOUNT:root` for the root user, the ARN itself
/// otherwise (e.g. an assumed-role session ARN).
pub fn arn_key(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "iam" {
        let account = parts[4];
        let resource = parts[5];
        if resource == "root" {
            return format!("{account}:root");
        }
        if let Some((kind, rest)) = resource.split_once('/') {
            if let Some(name) = rest.rsplit('/').next().filter(|n| !n.is_empty()) {
                return format!("{account}:{kind}/{name}");
            }
        }
    }
    arn.to_string()
}

impl GrantIndex {
    /// Builds the index from the bodies of `GET /v1/requests?scope=active`
    /// (an array of requests) and `GET /v1/policy`. Requests never
    /// activated are ignored.
    pub fn from_api(requests: &Value, policy: &Value) -> anyhow::Result<Self> {
        let reqs: Vec<ApiRequest> = serde_json::from_value(requests.clone())
            .context("grants: the requests are not a list of twokey requests")?;
        let pol: ApiPolicy = serde_json::from_value(policy.clone())
            .context("grants: the policy is not a twokey policy answer")?;
        let mut idx = GrantIndex {
            policy_hash: pol.hash,
            ..Default::default()
        };
        for (name, e) in pol.entitlements {
            let role = e
                .target
                .get("role_arn")
                .and_then(Value::as_str)
                .map(arn_key);
            let mut principals = BTreeMap::new();
            if let Some(Value::Object(m)) = e.target.get("principals") {
                for (person, arn) in m {
                    if let Some(a) = arn.as_str() {
                        let k = arn_key(a);
                        idx.mapped
                            .entry(k.clone())
                            .or_default()
                            .insert(person.clone());
                        principals.insert(person.clone(), k);
                    }
                }
            }
            let accounts = match e.target.get("accounts") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                _ => BTreeSet::new(),
            };
            let task = e
                .target
                .get("task")
                .and_then(Value::as_str)
                .map(str::to_string);
            let table = |key: &str| -> BTreeMap<String, String> {
                match e.target.get(key) {
                    Some(Value::Object(m)) => m
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect(),
                    _ => BTreeMap::new(),
                }
            };
            let addresses = table("addresses");
            let users = table("users");
            let port = e
                .target
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok());
            let mode = e
                .target
                .get("mode")
                .and_then(Value::as_str)
                .map(str::to_string);
            idx.targets.insert(
                name,
                Target {
                    provider: e.provider,
                    role,
                    principals,
                    accounts,
                    task,
                    addresses,
                    port,
                    mode,
                    users,
                },
            );
        }
        for r in reqs {
            let (Some(from), Some(ends)) = (r.activated_at, r.ends_at) else {
                continue;
            };
            let until = r.ended_at.map_or(ends, |e| e.min(ends));
            idx.grants.push(Grant {
                request_id: r.id,
                entitlement: r.entitlement,
                requester_name: r.requester_name,
                requester_subject: r.requester.subject,
                approvers: r
                    .reviews
                    .into_iter()
                    .filter(|v| v.decision == "approve")
                    .map(|v| Approver {
                        name: v.reviewer_name,
                        identity: format!("{}|{}", v.reviewer.issuer, v.reviewer.subject),
                    })
                    .collect(),
                break_glass: r.break_glass,
                from_ms: from,
                until_ms: until,
            });
        }
        idx.grants
            .sort_by(|a, b| (a.from_ms, &a.request_id).cmp(&(b.from_ms, &b.request_id)));
        Ok(idx)
    }

    /// Reads the `--grants FILE` format:
    /// `{"requests": [...as GET /v1/requests?scope=active...], "policy": {...as GET /v1/policy...}}`.
    pub fn from_file_text(text: &str) -> anyhow::Result<Self> {
        let f: GrantsFile = serde_json::from_str(text)
            .context("grants file: expected {\"requests\": [...], \"policy\": {...}}")?;
        Self::from_api(&f.requests, &f.policy)
    }

    /// The grants, ordered by activation.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// The entitlement targets by name.
    pub fn targets(&self) -> &BTreeMap<String, Target> {
        &self.targets
    }
}

/// Whether a call was under two-person control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Coverage {
    /// An active grant covered the call.
    Covered {
        /// The grant's request id.
        request_id: String,
        /// Its entitlement.
        entitlement: String,
        /// Who approved it.
        approvers: Vec<Approver>,
        /// Self-activated under break-glass (no approvers).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        break_glass: bool,
        /// The caller's ARN.
        principal: String,
        /// The person the call was attributed to (the requester).
        person: String,
    },
    /// No active grant covered the call: outside two-person control.
    Outside {
        /// The caller's ARN (or `unknown`).
        principal: String,
        /// The person the call was attributed to, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        person: Option<String>,
    },
    /// Not a call a person makes (AWS service events).
    NotApplicable,
}

/// Who made a call, as read from `userIdentity`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// `userIdentity.arn`.
    pub arn: Option<String>,
    /// `sessionContext.sourceIdentity`.
    pub source_identity: Option<String>,
    /// Role session name of an assumed-role ARN.
    pub session_name: Option<String>,
    /// The session's role (session issuer ARN, or derived from the
    /// assumed-role ARN), as an [`arn_key`].
    pub role: Option<String>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

impl Caller {
    /// Reads the caller of a CloudTrail record.
    pub fn of(event: &Value) -> Caller {
        let ui = event.get("userIdentity").unwrap_or(&Value::Null);
        let arn = str_at(ui, &["arn"]).map(str::to_string);
        let source_identity = str_at(ui, &["sessionContext", "sourceIdentity"])
            .or_else(|| str_at(ui, &["sourceIdentity"]))
            .map(str::to_string);
        let mut session_name = None;
        let mut role = None;
        if let Some(a) = &arn {
            let parts: Vec<&str> = a.splitn(6, ':').collect();
            if parts.len() == 6 && parts[2] == "sts" {
                if let Some(rest) = parts[5].strip_prefix("assumed-role/") {
                    let mut it = rest.splitn(2, '/');
                    if let Some(r) = it.next().filter(|r| !r.is_empty()) {
                        role = Some(format!("{}:role/{r}", parts[4]));
                    }
                    session_name = it.next().filter(|s| !s.is_empty()).map(str::to_string);
                }
            }
        }
        if str_at(ui, &["sessionContext", "sessionIssuer", "type"]) == Some("Role") {
            if let Some(issuer) = str_at(ui, &["sessionContext", "sessionIssuer", "arn"]) {
                role = Some(arn_key(issuer));
            }
        }
        Caller {
            arn,
            source_identity,
            session_name,
            role,
        }
    }

    /// The ARN keys this caller acts as: its own and its session's role.
    fn keys(&self) -> Vec<String> {
        let mut k = Vec::new();
        if let Some(a) = &self.arn {
            k.push(arn_key(a));
        }
        if let Some(r) = &self.role {
            k.push(r.clone());
        }
        k
    }
}

/// Decides whether `event` (a CloudTrail record) was covered by a grant of
/// `index` active at `at_ms` (normally the event time). See the module
/// documentation for the rules.
pub fn correlate(event: &Value, index: &GrantIndex, at_ms: i64) -> Coverage {
    let ui_type = str_at(event, &["userIdentity", "type"]);
    if str_at(event, &["eventType"]) == Some("AwsServiceEvent") || ui_type == Some("AWSService") {
        return Coverage::NotApplicable;
    }
    let caller = Caller::of(event);
    if let Some(root) = RootSession::of(event) {
        return root.correlate(&caller, index, at_ms);
    }
    let keys = caller.keys();
    // Ordered candidates: source identity, session name, mapped people.
    let mut persons: Vec<String> = Vec::new();
    let push = |p: &str, persons: &mut Vec<String>| {
        if !persons.iter().any(|q| q == p) {
            persons.push(p.to_string());
        }
    };
    if let Some(s) = &caller.source_identity {
        push(s, &mut persons);
    }
    if let Some(s) = &caller.session_name {
        push(s, &mut persons);
    }
    for k in &keys {
        if let Some(ps) = index.mapped.get(k) {
            for p in ps {
                push(p, &mut persons);
            }
        }
    }
    let assumed_role = (str_at(event, &["eventName"]) == Some("AssumeRole"))
        .then(|| str_at(event, &["requestParameters", "roleArn"]).map(arn_key))
        .flatten();
    let principal = caller.arn.clone().unwrap_or_else(|| "unknown".to_string());
    for g in &index.grants {
        if !(g.from_ms <= at_ms && at_ms < g.until_ms) {
            continue;
        }
        let Some(person) = persons
            .iter()
            .find(|p| **p == g.requester_name || **p == g.requester_subject)
        else {
            continue;
        };
        let Some(t) = index.targets.get(&g.entitlement) else {
            continue;
        };
        let by_role = t
            .role
            .as_ref()
            .is_some_and(|r| caller.role.as_ref() == Some(r) || assumed_role.as_ref() == Some(r));
        let by_principal = [&g.requester_name, &g.requester_subject]
            .iter()
            .filter_map(|n| t.principals.get(n.as_str()))
            .any(|k| keys.contains(k));
        if by_role || by_principal {
            return Coverage::Covered {
                request_id: g.request_id.clone(),
                entitlement: g.entitlement.clone(),
                approvers: g.approvers.clone(),
                break_glass: g.break_glass,
                principal,
                person: person.clone(),
            };
        }
    }
    Coverage::Outside {
        principal,
        person: persons.into_iter().next(),
    }
}

/// A record that opens or uses a root session.
#[derive(Debug)]
enum RootSession {
    /// `sts:AssumeRoot` for an account (`None` when unreadable) and task.
    Opened {
        account: Option<String>,
        task: Option<String>,
    },
    /// A call made with a root session in an account.
    Used { account: String },
}

impl RootSession {
    fn of(event: &Value) -> Option<RootSession> {
        if str_at(event, &["eventName"]) == Some("AssumeRoot")
            && str_at(event, &["eventSource"]).is_some_and(|s| s.starts_with("sts."))
        {
            let account = str_at(event, &["requestParameters", "targetPrincipal"]).and_then(|t| {
                let a = t
                    .strip_prefix("arn:aws:iam::")
                    .and_then(|r| r.strip_suffix(":root"))
                    .unwrap_or(t);
                (a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())).then(|| a.to_string())
            });
            let task = str_at(event, &["requestParameters", "taskPolicyArn", "arn"])
                .and_then(|a| a.strip_prefix("arn:aws:iam::aws:policy/root-task/"))
                .map(str::to_string);
            return Some(RootSession::Opened { account, task });
        }
        let assumed = event
            .pointer("/userIdentity/sessionContext/assumedRoot")
            .is_some_and(|v| v == "true" || v == &Value::Bool(true));
        if assumed && str_at(event, &["userIdentity", "type"]) == Some("Root") {
            let account = str_at(event, &["userIdentity", "accountId"])
                .or_else(|| str_at(event, &["recipientAccountId"]))?;
            return Some(RootSession::Used {
                account: account.to_string(),
            });
        }
        None
    }

    fn correlate(&self, caller: &Caller, index: &GrantIndex, at_ms: i64) -> Coverage {
        let principal = caller.arn.clone().unwrap_or_else(|| "unknown".to_string());
        let covers = |t: &Target| {
            t.provider == ROOT_TASK_PROVIDER
                && match self {
                    RootSession::Opened {
                        account: Some(a),
                        task: Some(task),
                    } => t.accounts.contains(a) && t.task.as_deref() == Some(task.as_str()),
                    RootSession::Opened { .. } => false,
                    RootSession::Used { account } => t.accounts.contains(account),
                }
        };
        let grant = index.grants.iter().find(|g| {
            g.from_ms <= at_ms
                && at_ms < g.until_ms
                && index.targets.get(&g.entitlement).is_some_and(covers)
        });
        match grant {
            Some(g) => Coverage::Covered {
                request_id: g.request_id.clone(),
                entitlement: g.entitlement.clone(),
                approvers: g.approvers.clone(),
                break_glass: g.break_glass,
                principal,
                person: g.requester_name.clone(),
            },
            None => Coverage::Outside {
                principal,
                person: None,
            },
        }
    }
}

/// Where grants come from.
#[derive(Debug, Clone)]
pub enum GrantSource {
    /// A file in the `--grants` format.
    File(PathBuf),
    /// The twokey API.
    Server {
        /// Base URL.
        url: String,
        /// Bearer token.
        token: String,
    },
}

impl GrantSource {
    /// Loads the index of the active grants (network calls run on a
    /// private runtime).
    pub fn load(&self) -> anyhow::Result<GrantIndex> {
        self.load_scope("active")
    }

    /// Loads the index of the requests in `scope` (`active`, or `all` for
    /// grants that have ended too; `all` needs an admin's or auditor's
    /// token).
    pub fn load_scope(&self, scope: &str) -> anyhow::Result<GrantIndex> {
        match self {
            GrantSource::File(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading grants file {}", p.display()))?;
                GrantIndex::from_file_text(&text).with_context(|| p.display().to_string())
            }
            GrantSource::Server { url, token } => {
                let rt = crate::rt::Rt::new()?;
                let (url, token) = (url.trim_end_matches('/').to_string(), token.clone());
                let scope = scope.to_string();
                let (reqs, pol) = rt.run(async move {
                    let client = reqwest::Client::builder()
                        .timeout(std::time::Duration::from_secs(30))
                        .build()?;
                    let get = |path: &str| {
                        let client = client.clone();
                        let u = format!("{url}{path}");
                        let token = token.clone();
                        async move {
                            let resp = client
                                .get(&u)
                                .bearer_auth(token)
                                .send()
                                .await
                                .with_context(|| format!("grants: GET {u}"))?;
                            let status = resp.status();
                            let body = resp.text().await.unwrap_or_default();
                            if !status.is_success() {
                                anyhow::bail!(
                                    "grants: GET {u}: HTTP {status}: {}",
                                    body.chars().take(300).collect::<String>()
                                );
                            }
                            serde_json::from_str::<Value>(&body)
                                .with_context(|| format!("grants: GET {u}: not JSON"))
                        }
                    };
                    let reqs = get(&format!("/v1/requests?scope={scope}")).await?;
                    let pol = get("/v1/policy").await?;
                    Ok((reqs, pol))
                })?;
                GrantIndex::from_api(&reqs, &pol)
            }
        }
    }
}

/// Grant correlation as the scanner applies it: the index and which rule
/// levels count as high-risk.
#[derive(Debug, Clone)]
pub struct TwoPerson {
    /// The grants.
    pub index: Arc<GrantIndex>,
    /// Rule levels that count as high-risk (lower case).
    pub levels: Vec<String>,
}

impl TwoPerson {
    /// Whether findings of a rule at `level` are correlated.
    pub fn is_high_risk(&self, level: &str) -> bool {
        self.levels.iter().any(|l| l.eq_ignore_ascii_case(level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::123456789012:role/admin/prod-admin";
    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn index() -> GrantIndex {
        let policy = json!({
            "hash": "h1",
            "entitlements": {
                "prod-admin": {"provider": "aws_iam_assume", "target": {"role_arn": ROLE}},
                "break-root": {"provider": "exec", "target": {
                    "grant": ["true"], "revoke": ["true"],
                    "principals": {"carol": "arn:aws:iam::123456789012:user/carol-admin"}}},
                "demo": {"provider": "exec", "target": {"grant": ["true"]}},
            }
        });
        let requests = json!([
            {"id": "r-alice", "entitlement": "prod-admin",
             "requester": {"issuer": "twokey", "subject": "alice"}, "requester_name": "alice",
             "reviews": [
                {"reviewer": {"issuer": "twokey", "subject": "bob"}, "reviewer_name": "bob", "decision": "approve"},
                {"reviewer": {"issuer": "twokey", "subject": "dave"}, "reviewer_name": "dave", "decision": "deny"}],
             "activated_at": T0, "ends_at": T0 + 3_600_000, "state": "active"},
            {"id": "r-carol", "entitlement": "break-root",
             "requester": {"issuer": "twokey", "subject": "carol"}, "requester_name": "carol",
             "reviews": [{"reviewer": {"issuer": "twokey", "subject": "bob"}, "reviewer_name": "bob", "decision": "approve"}],
             "activated_at": T0, "ends_at": T0 + 600_000},
            {"id": "r-pending", "entitlement": "prod-admin",
             "requester": {"issuer": "twokey", "subject": "erin"}, "requester_name": "erin",
             "reviews": []}
        ]);
        GrantIndex::from_api(&requests, &policy).unwrap()
    }

    fn session(role: &str, session: &str, source_identity: Option<&str>) -> Value {
        let mut ctx = json!({"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::123456789012:role/admin/{role}")}});
        if let Some(s) = source_identity {
            ctx["sourceIdentity"] = json!(s);
        }
        json!({"eventName": "StopLogging", "eventType": "AwsApiCall", "userIdentity": {
            "type": "AssumedRole",
            "arn": format!("arn:aws:sts::123456789012:assumed-role/{role}/{session}"),
            "sessionContext": ctx}})
    }

    fn user(name: &str) -> Value {
        json!({"eventName": "StopLogging", "userIdentity": {"type": "IAMUser",
            "arn": format!("arn:aws:iam::123456789012:user/{name}")}})
    }

    #[test]
    fn covered_by_source_identity_carries_request_and_approvers() {
        let c = correlate(
            &session("prod-admin", "x-123", Some("alice")),
            &index(),
            T0 + 1,
        );
        match c {
            Coverage::Covered {
                request_id,
                entitlement,
                approvers,
                person,
                ..
            } => {
                assert_eq!(request_id, "r-alice");
                assert_eq!(entitlement, "prod-admin");
                assert_eq!(person, "alice");
                assert_eq!(
                    approvers,
                    vec![Approver {
                        name: "bob".into(),
                        identity: "twokey|bob".into()
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn covered_by_role_session_name() {
        let c = correlate(&session("prod-admin", "alice", None), &index(), T0);
        assert!(matches!(c, Coverage::Covered { ref request_id, .. } if request_id == "r-alice"));
    }

    #[test]
    fn the_assume_role_call_itself_is_covered() {
        let mut ev = user("alice");
        ev["eventName"] = json!("AssumeRole");
        ev["requestParameters"] = json!({"roleArn": ROLE, "sourceIdentity": "alice"});
        ev["userIdentity"]["sessionContext"] = json!({"sourceIdentity": "alice"});
        assert!(matches!(
            correlate(&ev, &index(), T0),
            Coverage::Covered { .. }
        ));
    }

    #[test]
    fn no_grant_is_outside() {
        let c = correlate(&session("prod-admin", "s", Some("mallory")), &index(), T0);
        assert_eq!(
            c,
            Coverage::Outside {
                principal: "arn:aws:sts::123456789012:assumed-role/prod-admin/s".into(),
                person: Some("mallory".into())
            }
        );
        // A request never activated covers nothing.
        let c = correlate(&session("prod-admin", "s", Some("erin")), &index(), T0);
        assert!(matches!(c, Coverage::Outside { .. }));
    }

    #[test]
    fn expired_or_not_yet_active_grant_is_outside() {
        let ev = session("prod-admin", "s", Some("alice"));
        assert!(matches!(
            correlate(&ev, &index(), T0 + 3_600_000),
            Coverage::Outside { .. }
        ));
        assert!(matches!(
            correlate(&ev, &index(), T0 - 1),
            Coverage::Outside { .. }
        ));
    }

    #[test]
    fn early_end_counts() {
        let policy = json!({"entitlements": {"p": {"provider": "aws_iam_assume", "target": {"role_arn": ROLE}}}});
        let reqs = json!([{"id": "r", "entitlement": "p", "requester": {"issuer": "twokey", "subject": "alice"},
            "requester_name": "alice", "activated_at": T0, "ends_at": T0 + 3_600_000, "ended_at": T0 + 60_000}]);
        let idx = GrantIndex::from_api(&reqs, &policy).unwrap();
        let ev = session("prod-admin", "s", Some("alice"));
        assert!(matches!(
            correlate(&ev, &idx, T0 + 1),
            Coverage::Covered { .. }
        ));
        assert!(matches!(
            correlate(&ev, &idx, T0 + 60_000),
            Coverage::Outside { .. }
        ));
    }

    #[test]
    fn wrong_role_is_outside() {
        let c = correlate(&session("billing-admin", "s", Some("alice")), &index(), T0);
        assert!(
            matches!(c, Coverage::Outside { ref person, .. } if person.as_deref() == Some("alice"))
        );
    }

    #[test]
    fn mapped_arn_is_covered_and_unmapped_user_is_outside() {
        let c = correlate(&user("carol-admin"), &index(), T0);
        assert!(
            matches!(c, Coverage::Covered { ref request_id, ref person, .. } if request_id == "r-carol" && person == "carol"),
            "{c:?}"
        );
        // Same user after carol's grant ended.
        assert!(matches!(
            correlate(&user("carol-admin"), &index(), T0 + 600_000),
            Coverage::Outside { .. }
        ));
        // alice's grant is for a role, not for her IAM user.
        let c = correlate(&user("alice"), &index(), T0);
        assert!(
            matches!(c, Coverage::Outside { ref person, .. } if person.is_none()),
            "{c:?}"
        );
    }

    #[test]
    fn service_events_are_not_applicable() {
        let ev = json!({"eventType": "AwsServiceEvent", "userIdentity": {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}});
        assert_eq!(correlate(&ev, &index(), T0), Coverage::NotApplicable);
    }

    #[test]
    fn arn_keys_ignore_paths() {
        assert_eq!(arn_key(ROLE), "123456789012:role/prod-admin");
        assert_eq!(
            arn_key("arn:aws:iam::123456789012:root"),
            "123456789012:root"
        );
        let c = Caller::of(
            &json!({"userIdentity": {"arn": "arn:aws:sts::123456789012:assumed-role/tester"}}),
        );
        assert_eq!(c.role.as_deref(), Some("123456789012:role/tester"));
        assert_eq!(c.session_name, None);
    }

    #[test]
    fn grants_file_reads_and_rejects_junk() {
        assert!(GrantIndex::from_file_text("{}").is_err());
        let idx = GrantIndex::from_file_text(r#"{"requests": [], "policy": {"entitlements": {}}}"#)
            .unwrap();
        assert!(idx.grants().is_empty());
    }
}
