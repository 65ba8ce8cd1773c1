//! Shared by the differential tests: cases in iam-simulate's `Simulation`
//! JSON shape (plain data), their conversion into twokey-iam's types, and
//! the oracle driver (`tests/iam-oracle/run.mjs`, run with node against the
//! package `scripts/setup-iam-oracle.sh` installs in TWOKEY_IAM_ORACLE).
#![allow(dead_code)]

pub(crate) mod corpus;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use twokey_iam::principal::Caller;
use twokey_iam::{
    evaluate, Context, Decision, NamedPolicy, OrgLevel, Policies, Policy, PolicyError, Request,
};

/// One case: an id and a simulation.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub id: String,
    pub sim: Value,
}

/// The oracle's answer for one case.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Oracle {
    pub id: String,
    pub result: Option<String>,
    #[serde(default)]
    pub ignored: Vec<String>,
    pub error: Option<String>,
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The oracle's install dir, or `None` (skip) outside CI; panics in CI.
pub(crate) fn oracle_dir() -> Option<PathBuf> {
    match std::env::var_os("TWOKEY_IAM_ORACLE") {
        Some(d)
            if Path::new(&d)
                .join("node_modules/@cloud-copilot/iam-simulate")
                .is_dir() =>
        {
            Some(d.into())
        }
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but iam-simulate is not installed in TWOKEY_IAM_ORACLE={other:?}: \
                 run scripts/setup-iam-oracle.sh and export its output"
            );
            eprintln!("skipping the iam-simulate comparison: TWOKEY_IAM_ORACLE is not set");
            None
        }
    }
}

/// Runs the cases through iam-simulate; `bench` adds `--bench N` and
/// returns its timing line too.
pub(crate) fn run_oracle(dir: &Path, cases: &[Case], bench: Option<u32>) -> (Vec<Oracle>, String) {
    let input: Vec<Value> = cases
        .iter()
        .map(|c| json!({"id": c.id, "simulation": c.sim}))
        .collect();
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/iam-oracle/run.mjs"))
        .env("TWOKEY_IAM_ORACLE", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = bench {
        cmd.arg("--bench").arg(n.to_string());
    }
    let mut child = cmd.spawn().expect("starting node");
    let body = serde_json::to_vec(&input).expect("cases serialize");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&body)
        .expect("writing cases to node");
    let out = child.wait_with_output().expect("node runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the oracle failed: {stderr}");
    let got: Vec<Oracle> = serde_json::from_slice(&out.stdout).expect("oracle output is JSON");
    assert_eq!(got.len(), cases.len());
    (got, stderr)
}

/// Fills the context keys twokey-iam's `Request::new` derives (principal
/// ARN and account, user name, current time, resource account), so both
/// engines see the same context.
pub(crate) fn complete(mut sim: Value) -> Value {
    let principal = sim["request"]["principal"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let acct = sim["request"]["resource"]["accountId"].clone();
    let caller = Caller::parse(&principal);
    let ctx = sim["request"]["contextVariables"]
        .as_object_mut()
        .expect("contextVariables is an object");
    let mut put = |k: &str, v: Value| {
        if !ctx.keys().any(|x| x.eq_ignore_ascii_case(k)) {
            ctx.insert(k.to_string(), v);
        }
    };
    put("aws:CurrentTime", json!("2026-06-01T12:00:00Z"));
    if let Some(a) = &caller.account {
        put("aws:PrincipalAccount", json!(a));
    }
    if let Some(a) = caller.principal_arn() {
        put("aws:PrincipalArn", json!(a));
    }
    if let Some(n) = caller.user_name() {
        put("aws:username", json!(n));
    }
    if acct.is_string() {
        put("aws:ResourceAccount", acct);
    }
    sim
}

fn named(list: &Value) -> Result<Vec<NamedPolicy>, PolicyError> {
    list.as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let id = p["name"].as_str().unwrap_or("?");
            Ok(NamedPolicy {
                id: id.to_string(),
                policy: Policy::from_value(id, &p["policy"])?,
            })
        })
        .collect()
}

fn levels(list: &Value) -> Result<Vec<OrgLevel>, PolicyError> {
    list.as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|l| {
            Ok(OrgLevel {
                id: l["orgIdentifier"].as_str().unwrap_or("?").to_string(),
                policies: named(&l["policies"])?,
            })
        })
        .collect()
}

fn single(id: &str, v: &Value) -> Result<Option<NamedPolicy>, PolicyError> {
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(NamedPolicy {
        id: id.into(),
        policy: Policy::from_value(id, v)?,
    }))
}

/// The case in twokey-iam's types; `ignored` context keys are dropped (the
/// oracle drops keys that do not apply to the action).
pub(crate) fn to_ours(sim: &Value, ignored: &[String]) -> Result<(Request, Policies), PolicyError> {
    let r = &sim["request"];
    let mut ctx = Context::new();
    let mut now: DateTime<Utc> = "2026-06-01T12:00:00Z".parse().expect("fixed time");
    for (k, v) in r["contextVariables"].as_object().into_iter().flatten() {
        if ignored.iter().any(|i| i.eq_ignore_ascii_case(k)) {
            continue;
        }
        match v {
            Value::Array(a) => {
                ctx.set_many(
                    k,
                    a.iter().map(|x| x.as_str().unwrap_or("").into()).collect(),
                );
            }
            v => {
                let s = v
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string());
                if k.eq_ignore_ascii_case("aws:CurrentTime") {
                    if let Ok(t) = s.parse() {
                        now = t;
                    }
                }
                ctx.set(k, s);
            }
        }
    }
    let mut req = Request::new(
        r["principal"].as_str().unwrap_or(""),
        r["action"].as_str().unwrap_or(""),
        r["resource"]["resource"].as_str().unwrap_or(""),
        now,
        ctx,
    );
    req.resource_account = r["resource"]["accountId"].as_str().map(String::from);
    let boundary = named(&sim["permissionBoundaryPolicies"])?
        .into_iter()
        .next();
    let policies = Policies {
        scps: levels(&sim["serviceControlPolicies"])?,
        rcps: levels(&sim["resourceControlPolicies"])?,
        identity: named(&sim["identityPolicies"])?,
        resource: single("resource-policy", &sim["resourcePolicy"])?,
        boundary,
        session: single("session-policy", &sim["sessionPolicy"])?,
    };
    Ok((req, policies))
}

/// twokey-iam's answer in the oracle's words.
pub(crate) fn ours(sim: &Value, ignored: &[String]) -> Result<Decision, PolicyError> {
    let (req, policies) = to_ours(sim, ignored)?;
    Ok(evaluate(&req, &policies))
}

pub(crate) fn oracle_word(d: &Decision) -> &'static str {
    match d {
        Decision::Allowed { .. } => "Allowed",
        Decision::ExplicitDeny { .. } => "ExplicitlyDenied",
        Decision::ImplicitDeny { .. } => "ImplicitlyDenied",
        Decision::AllowedIf { .. } => "AllowedIf",
    }
}

/// A simulation with the usual empty parts.
pub(crate) fn sim(principal: &str, action: &str, resource: &str, account: &str) -> Value {
    json!({
        "request": {
            "principal": principal,
            "action": action,
            "resource": {"resource": resource, "accountId": account},
            "contextVariables": {}
        },
        "identityPolicies": [],
        "serviceControlPolicies": [],
        "resourceControlPolicies": []
    })
}

/// `{"Version": ..., "Statement": [...]}`.
pub(crate) fn doc(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}
