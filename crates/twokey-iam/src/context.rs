//! The request: who asks for what on which resource, and the request
//! context (condition keys). Time is a context value, never a clock read.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};

/// A context key's value: one string, or a list (multivalued keys such as
/// `aws:TagKeys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    /// A single value.
    One(String),
    /// A multivalued key.
    Many(Vec<String>),
}

impl ContextValue {
    /// The value when it is single.
    pub fn single(&self) -> Option<&str> {
        match self {
            ContextValue::One(s) => Some(s),
            ContextValue::Many(_) => None,
        }
    }

    /// All values.
    pub fn values(&self) -> &[String] {
        match self {
            ContextValue::One(s) => std::slice::from_ref(s),
            ContextValue::Many(v) => v,
        }
    }
}

/// What the context says about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Known: present with this value, or known to be absent.
    Known(Option<&'a ContextValue>),
    /// Not known for this request (the answer depends on it).
    Unknown,
}

/// The request context: condition keys (case-insensitive) and the keys whose
/// value is not known. A key that is neither set nor unknown is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    values: BTreeMap<String, ContextValue>,
    unknown: BTreeSet<String>,
    unknown_prefixes: BTreeSet<String>,
}

impl Context {
    /// An empty context: every key absent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.values
            .insert(key.to_ascii_lowercase(), ContextValue::One(value.into()));
        self
    }

    /// Sets a multivalued key.
    pub fn set_many(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.values
            .insert(key.to_ascii_lowercase(), ContextValue::Many(values));
        self
    }

    /// Sets a key unless it is already set or marked unknown.
    pub fn set_default(&mut self, key: &str, value: impl Into<String>) {
        let k = key.to_ascii_lowercase();
        if !self.values.contains_key(&k) && self.lookup(key) != Lookup::Unknown {
            self.values.insert(k, ContextValue::One(value.into()));
        }
    }

    /// Marks a key as not known (`aws:SourceIp`), or every key under a
    /// prefix when it ends in `/*` (`aws:RequestTag/*`); a value set for it
    /// is dropped.
    pub fn mark_unknown(&mut self, key: &str) -> &mut Self {
        let k = key.to_ascii_lowercase();
        match k.strip_suffix('*') {
            Some(prefix) => {
                self.values.retain(|v, _| !v.starts_with(prefix));
                self.unknown_prefixes.insert(prefix.to_string());
            }
            None => {
                self.values.remove(&k);
                self.unknown.insert(k);
            }
        }
        self
    }

    /// What is known about `key`.
    pub fn lookup(&self, key: &str) -> Lookup<'_> {
        let k = key.to_ascii_lowercase();
        if let Some(v) = self.values.get(&k) {
            return Lookup::Known(Some(v));
        }
        if self.unknown.contains(&k) || self.unknown_prefixes.iter().any(|p| k.starts_with(p)) {
            return Lookup::Unknown;
        }
        Lookup::Known(None)
    }
}

/// Formats a time the way `aws:CurrentTime` carries it.
pub fn aws_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One request to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The caller: an IAM user or role ARN, an `sts` assumed-role session
    /// ARN, an account root, or a service principal (`s3.amazonaws.com`).
    pub principal: String,
    /// `service:Action`.
    pub action: String,
    /// The resource ARN (`*` for actions without a resource).
    pub resource: String,
    /// The account that owns the resource (the account segment of its ARN
    /// when `None`; S3 ARNs carry none, so give it for them).
    pub resource_account: Option<String>,
    /// The condition keys.
    pub context: Context,
}

impl Request {
    /// A request at time `now`: sets `aws:CurrentTime`, `aws:EpochTime`,
    /// `aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:username` (IAM
    /// users) and `aws:ResourceAccount` unless the context already has them.
    pub fn new(
        principal: &str,
        action: &str,
        resource: &str,
        now: DateTime<Utc>,
        mut context: Context,
    ) -> Request {
        context.set_default("aws:CurrentTime", aws_time(now));
        context.set_default("aws:EpochTime", now.timestamp().to_string());
        let who = crate::principal::Caller::parse(principal);
        if let Some(acct) = &who.account {
            context.set_default("aws:PrincipalAccount", acct.clone());
        }
        if let Some(arn) = who.principal_arn() {
            context.set_default("aws:PrincipalArn", arn);
        }
        if let Some(name) = who.user_name() {
            context.set_default("aws:username", name);
        }
        let mut req = Request {
            principal: principal.to_string(),
            action: action.to_string(),
            resource: resource.to_string(),
            resource_account: None,
            context,
        };
        if let Some(acct) = req.resource_account() {
            req.context.set_default("aws:ResourceAccount", acct);
        }
        req
    }

    /// The resource's account.
    pub fn resource_account(&self) -> Option<String> {
        self.resource_account.clone().or_else(|| {
            let acct = self.resource.split(':').nth(4)?;
            (!acct.is_empty()).then(|| acct.to_string())
        })
    }
}
