//! Policy documents as AWS writes them, and their parsed form.
//!
//! [`Policy::parse`] accepts the JSON AWS returns as-is: `Statement` as an
//! object or a list, `Action`/`Resource` as a string or a list, condition
//! values as strings, numbers or booleans, and URL-encoded documents (as in
//! `GetAccountAuthorizationDetails`). Anything the evaluator could not read
//! faithfully is an error naming the policy and the place in it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::condition::Operator;

/// A malformed policy: which policy, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {policy}: {at}: {message}")]
pub struct PolicyError {
    /// The policy's id as given to [`Policy::parse`].
    pub policy: String,
    /// Where in the document (`Statement[2].Condition.StringEquals`).
    pub at: String,
    /// What is wrong.
    pub message: String,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Effect {
    /// Grants when it applies.
    Allow,
    /// Denies when it applies, whatever else allows.
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "Statement")]
    statement: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "Sid")]
    sid: Option<String>,
    #[serde(rename = "Effect")]
    effect: Effect,
    #[serde(rename = "Principal")]
    principal: Option<Value>,
    #[serde(rename = "NotPrincipal")]
    not_principal: Option<Value>,
    #[serde(rename = "Action")]
    action: Option<OneOrMany<String>>,
    #[serde(rename = "NotAction")]
    not_action: Option<OneOrMany<String>>,
    #[serde(rename = "Resource")]
    resource: Option<OneOrMany<String>>,
    #[serde(rename = "NotResource")]
    not_resource: Option<OneOrMany<String>>,
    #[serde(rename = "Condition")]
    condition: Option<BTreeMap<String, BTreeMap<String, Value>>>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `Version` (`2012-10-17`; the older `2008-10-17` has no policy variables).
    pub version: Option<String>,
    /// The document's own `Id`, if any.
    pub id: Option<String>,
    /// Statements in document order.
    pub statements: Vec<Statement>,
}

/// Whom a statement names in `Principal` / `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    /// `"Principal": "*"` (or `{"AWS": "*"}`): everyone, signed or not.
    Everyone,
    /// Entries by type (`AWS`, `Service`, `Federated`, `CanonicalUser`).
    Listed(Vec<(PrincipalType, String)>),
}

/// The key of a `Principal` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    /// IAM users, roles, sessions, account roots, account ids.
    Aws,
    /// AWS services (`s3.amazonaws.com`).
    Service,
    /// Web identity and SAML providers.
    Federated,
    /// S3 canonical user ids.
    CanonicalUser,
}

/// One of a statement's matchers: the listed patterns, or everything but them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher<T> {
    /// `Action` / `Resource` / `Principal`.
    Is(T),
    /// `NotAction` / `NotResource` / `NotPrincipal`.
    Not(T),
}

/// One condition of a statement: operator, key, values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionEntry {
    /// The parsed operator (with its set qualifier and `IfExists`).
    pub operator: Operator,
    /// The context key as written.
    pub key: String,
    /// The values, as strings (numbers and booleans in their JSON spelling).
    pub values: Vec<String>,
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `Sid`, if any.
    pub sid: Option<String>,
    /// `Allow` or `Deny`.
    pub effect: Effect,
    /// `Principal` / `NotPrincipal`; `None` in identity policies and SCPs.
    pub principal: Option<Matcher<Principals>>,
    /// `Action` / `NotAction` patterns.
    pub action: Matcher<Vec<String>>,
    /// `Resource` / `NotResource` patterns; `None` (resource policies that
    /// omit it) means the resource the policy is attached to.
    pub resource: Option<Matcher<Vec<String>>>,
    /// Conditions; all must hold.
    pub conditions: Vec<ConditionEntry>,
}

impl Policy {
    /// Parses a policy document (JSON text, or URL-encoded JSON text).
    /// `policy` names it in errors.
    pub fn parse(policy: &str, text: &str) -> Result<Policy, PolicyError> {
        let decoded;
        let text = if text.trim_start().starts_with('%') {
            decoded = url_decode(policy, text)?;
            decoded.as_str()
        } else {
            text
        };
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: RawPolicy = serde_path_to_error::deserialize(de).map_err(|e| PolicyError {
            policy: policy.to_string(),
            at: display_path(&e.path().to_string()),
            message: e.inner().to_string(),
        })?;
        Policy::from_raw(policy, raw)
    }

    /// Parses a document that is already a JSON value (the AWS CLI decodes
    /// `GetAccountAuthorizationDetails` documents into objects); a string
    /// value is parsed as [`Policy::parse`] does.
    pub fn from_value(policy: &str, value: &Value) -> Result<Policy, PolicyError> {
        if let Value::String(s) = value {
            return Policy::parse(policy, s);
        }
        let raw: RawPolicy = serde_path_to_error::deserialize(value).map_err(|e| PolicyError {
            policy: policy.to_string(),
            at: display_path(&e.path().to_string()),
            message: e.inner().to_string(),
        })?;
        Policy::from_raw(policy, raw)
    }

    fn from_raw(policy: &str, raw: RawPolicy) -> Result<Policy, PolicyError> {
        // Each statement on its own, so an error's path names its index.
        let list = match raw.statement {
            Value::Array(a) => a,
            Value::Object(o) => vec![Value::Object(o)],
            _ => {
                return Err(PolicyError {
                    policy: policy.into(),
                    at: "Statement".into(),
                    message: "must be an object or a list of objects".into(),
                })
            }
        };
        let statements = list
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let raw: RawStatement =
                    serde_path_to_error::deserialize(v).map_err(|e| PolicyError {
                        policy: policy.to_string(),
                        at: match e.path().to_string().as_str() {
                            "." => format!("Statement[{i}]"),
                            path => format!("Statement[{i}].{path}"),
                        },
                        message: e.inner().to_string(),
                    })?;
                Statement::from_raw(policy, i, raw)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            version: raw.version,
            id: raw.id,
            statements,
        })
    }
}

fn display_path(p: &str) -> String {
    if p == "." || p.is_empty() {
        "document".into()
    } else {
        p.to_string()
    }
}

fn url_decode(policy: &str, text: &str) -> Result<String, PolicyError> {
    let plus = text.trim().replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|e| PolicyError {
            policy: policy.into(),
            at: "document".into(),
            message: format!("URL-encoded document is not UTF-8 once decoded: {e}"),
        })
}

struct Where<'a> {
    policy: &'a str,
    index: usize,
}

impl Where<'_> {
    fn err(&self, field: impl fmt::Display, message: impl Into<String>) -> PolicyError {
        PolicyError {
            policy: self.policy.into(),
            at: format!("Statement[{}].{field}", self.index),
            message: message.into(),
        }
    }
}

impl Statement {
    fn from_raw(policy: &str, index: usize, s: RawStatement) -> Result<Statement, PolicyError> {
        let w = Where { policy, index };
        let action = match (s.action, s.not_action) {
            (Some(a), None) => Matcher::Is(a.into_vec()),
            (None, Some(a)) => Matcher::Not(a.into_vec()),
            (Some(_), Some(_)) => return Err(w.err("Action", "both Action and NotAction")),
            (None, None) => return Err(w.err("Action", "needs Action or NotAction")),
        };
        let (Matcher::Is(a) | Matcher::Not(a)) = &action;
        check_actions(&w, a)?;
        let resource = match (s.resource, s.not_resource) {
            (Some(r), None) => Some(Matcher::Is(r.into_vec())),
            (None, Some(r)) => Some(Matcher::Not(r.into_vec())),
            (Some(_), Some(_)) => return Err(w.err("Resource", "both Resource and NotResource")),
            (None, None) => None,
        };
        let principal = match (s.principal, s.not_principal) {
            (Some(p), None) => Some(Matcher::Is(principals(&w, "Principal", &p)?)),
            (None, Some(p)) => Some(Matcher::Not(principals(&w, "NotPrincipal", &p)?)),
            (Some(_), Some(_)) => return Err(w.err("Principal", "both Principal and NotPrincipal")),
            (None, None) => None,
        };
        let conditions = conditions(&w, s.condition.unwrap_or_default())?;
        Ok(Statement {
            sid: s.sid,
            effect: s.effect,
            principal,
            action,
            resource,
            conditions,
        })
    }
}

fn check_actions(w: &Where<'_>, actions: &[String]) -> Result<(), PolicyError> {
    for (i, a) in actions.iter().enumerate() {
        if a != "*" && !a.contains(':') {
            return Err(w.err(
                format_args!("Action[{i}]"),
                format!("{a:?} is not \"service:action\" or \"*\""),
            ));
        }
    }
    Ok(())
}

fn principals(w: &Where<'_>, field: &str, v: &Value) -> Result<Principals, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Everyone),
        Value::Object(map) => {
            let mut out = Vec::new();
            for (k, vals) in map {
                let ty = match k.as_str() {
                    "AWS" => PrincipalType::Aws,
                    "Service" => PrincipalType::Service,
                    "Federated" => PrincipalType::Federated,
                    "CanonicalUser" => PrincipalType::CanonicalUser,
                    other => {
                        return Err(w.err(
                            format_args!("{field}.{other}"),
                            "unknown principal type (AWS, Service, Federated, CanonicalUser)",
                        ))
                    }
                };
                let list = match vals {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .map(|x| match x {
                            Value::String(s) => Ok(s.clone()),
                            _ => Err(w.err(format_args!("{field}.{k}"), "entries must be strings")),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => {
                        return Err(w.err(format_args!("{field}.{k}"), "must be a string or a list"))
                    }
                };
                for p in list {
                    if ty == PrincipalType::Aws && p == "*" {
                        return Ok(Principals::Everyone);
                    }
                    out.push((ty, p));
                }
            }
            Ok(Principals::Listed(out))
        }
        _ => Err(w.err(field, "must be \"*\" or an object")),
    }
}

fn conditions(
    w: &Where<'_>,
    block: BTreeMap<String, BTreeMap<String, Value>>,
) -> Result<Vec<ConditionEntry>, PolicyError> {
    let mut out = Vec::new();
    for (op, keys) in block {
        let operator =
            Operator::parse(&op).map_err(|m| w.err(format_args!("Condition.{op}"), m))?;
        for (key, v) in keys {
            let at = || format!("Condition.{op}.{key}");
            let scalar = |x: &Value| match x {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(w.err(at(), "values must be strings, numbers or booleans")),
            };
            let values = match &v {
                Value::Array(a) => a.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
                x => vec![scalar(x)?],
            };
            out.push(ConditionEntry {
                operator,
                key,
                values,
            });
        }
    }
    Ok(out)
}
