//! Credentials in the policy and the server config: one type for a secret
//! value whose `Debug` and `Display` never show it, the rule for which
//! settings are credentials, their redaction in every view of the policy,
//! the `policy check` warnings about inline ones, and the resolution of
//! references (`*_env`, `*_file`).
//!
//! Pure like the rest of the core: resolving a reference reads a file or the
//! environment, so the caller passes that reading in as a function.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

use crate::policy::PolicyIssue;

/// What a redacted credential (or the password part of a URL) shows instead.
pub const REDACTED: &str = "***";

/// A secret value (a password, token, signing secret). `Debug`, `Display` and
/// `Serialize` show [`REDACTED`]; only [`Secret::expose`] gives the value,
/// so reading it is always a visible choice in the code.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

/// Whether a setting called `key` holds a credential as a whole: its value is
/// redacted in every view, and `policy check` warns when it is inline.
pub fn is_secret_key(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "access_key",
        "secret_access_key",
        "session_token",
        "slack_webhook_url",
        "webhook_url",
    ];
    const SUFFIXES: &[&str] = &["_password", "_secret", "_token", "_api_key", "_access_key"];
    let k = key.to_ascii_lowercase();
    EXACT.contains(&k.as_str()) || SUFFIXES.iter().any(|s| k.ends_with(s))
}

/// Whether a setting called `key` may be given by reference (`key_env`,
/// `key_file`): every credential, plus URLs and database URLs, which may hold
/// a password.
pub fn accepts_reference(key: &str) -> bool {
    is_secret_key(key) || key == "url" || key.ends_with("_url") || key == "database"
}

/// `text` with the password of every URL in it (`scheme://user:pass@host`)
/// replaced by [`REDACTED`]; `None` when no URL in it holds a password.
pub fn redact_url_passwords(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => match authority[..at].find(':') {
                Some(colon) => {
                    out.push_str(&authority[..=colon]);
                    out.push_str(REDACTED);
                    out.push_str(&authority[at..]);
                    changed = true;
                }
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    // A password in a URL's query (`?password=...`, libpq style).
    let mut text = out;
    let mut from = 0;
    while let Some(i) = text[from..].to_ascii_lowercase().find("password=") {
        let start = from + i + "password=".len();
        let end = text[start..]
            .find(|c: char| matches!(c, '&' | '#' | '"' | '\'' | '`') || c.is_whitespace())
            .map_or(text.len(), |e| start + e);
        if end > start && &text[start..end] != REDACTED {
            text.replace_range(start..end, REDACTED);
            changed = true;
        }
        from = start + REDACTED.len().min(text.len() - start);
    }
    changed.then_some(text)
}

/// A credential found in a TOML document.
struct Found {
    /// Where, as a path such as `entitlement[prod-db].target.url`.
    path: String,
    /// Byte range of the value in the document.
    span: Range<usize>,
    /// The credential itself (the whole URL for a URL with a password).
    value: String,
    /// The setting's own name (last path segment).
    key: String,
    /// Whether the whole value is a credential (a secret key), or only the
    /// password part of a URL.
    whole: bool,
}

fn find_credentials(text: &str) -> Vec<Found> {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk_table(doc.as_table(), "", &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk_table(t: &toml_edit::Table, path: &str, out: &mut Vec<Found>) {
    for (k, item) in t.iter() {
        walk_item(item, &join(path, k), k, out);
    }
}

fn walk_item(item: &toml_edit::Item, path: &str, key: &str, out: &mut Vec<Found>) {
    match item {
        toml_edit::Item::Value(v) => walk_value(v, path, key, out),
        toml_edit::Item::Table(t) => walk_table(t, path, out),
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let label = t
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string());
                walk_table(t, &format!("{path}[{label}]"), out);
            }
        }
        toml_edit::Item::None => {}
    }
}

fn walk_value(v: &toml_edit::Value, path: &str, key: &str, out: &mut Vec<Found>) {
    match v {
        toml_edit::Value::InlineTable(t) => {
            for (k, v) in t.iter() {
                walk_value(v, &join(path, k), k, out);
            }
        }
        toml_edit::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk_value(v, &format!("{path}[{i}]"), key, out);
            }
        }
        scalar => {
            let Some(span) = scalar.span() else { return };
            let whole = is_secret_key(key);
            let value = match scalar.as_str() {
                Some(s) => s.to_string(),
                None => scalar.to_string().trim().to_string(),
            };
            if whole || redact_url_passwords(&value).is_some() {
                out.push(Found {
                    path: path.to_string(),
                    span,
                    value,
                    key: key.to_string(),
                    whole,
                });
            }
        }
    }
}

/// The policy (or any TOML) text as every view shows it: values of
/// credential settings replaced by `"***"` and passwords in URLs (also in
/// comments) by `***`; the rest, comments and layout included, unchanged.
pub fn redact_text(text: &str) -> String {
    let mut found = find_credentials(text);
    found.retain(|f| f.whole);
    found.sort_by_key(|f| f.span.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in found {
        if f.span.start < at || f.span.end > text.len() {
            continue;
        }
        out.push_str(&text[at..f.span.start]);
        out.push('"');
        out.push_str(REDACTED);
        out.push('"');
        at = f.span.end;
    }
    out.push_str(&text[at..]);
    redact_url_passwords(&out).unwrap_or(out)
}

/// A TOML value as views show it: credential settings replaced by `"***"`,
/// URL passwords by `***`.
pub fn redact_value(key: &str, v: &toml::Value) -> toml::Value {
    if is_secret_key(key) {
        return toml::Value::String(REDACTED.into());
    }
    match v {
        toml::Value::String(s) => {
            toml::Value::String(redact_url_passwords(s).unwrap_or_else(|| s.clone()))
        }
        toml::Value::Array(a) => {
            toml::Value::Array(a.iter().map(|x| redact_value(key, x)).collect())
        }
        toml::Value::Table(t) => toml::Value::Table(redact_table(t)),
        other => other.clone(),
    }
}

/// A TOML table (a provider target) as views show it.
pub fn redact_table(t: &toml::Table) -> toml::Table {
    t.iter()
        .map(|(k, v)| (k.clone(), redact_value(k, v)))
        .collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Warnings (file and line) for every credential written inline in `text`:
/// a credential setting with a value, or a URL with a password. Each says how
/// to give it by reference instead.
pub fn inline_credentials(text: &str, file: &str) -> Vec<PolicyIssue> {
    find_credentials(text)
        .into_iter()
        .map(|f| {
            let what = if f.whole {
                format!("{} is an inline credential", f.path)
            } else {
                format!(
                    "{} holds a password in a URL ({})",
                    f.path,
                    redact_url_passwords(&f.value).unwrap_or_default()
                )
            };
            let key = f.key.as_str();
            PolicyIssue {
                file: file.to_string(),
                line: line_of(text, f.span.start),
                message: format!(
                    "warning: {what}; it would be stored with the policy and in every proposal. Give it by reference: {key}_env = \"VARIABLE\" or {key}_file = \"/path\""
                ),
            }
        })
        .collect()
}

/// How a proposal changes one credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CredentialChange {
    /// A credential that was not there before.
    Added,
    /// A credential that is no longer there.
    Removed,
    /// The same setting with another value (never shown).
    Changed,
}

/// What changes between two policy texts in their credentials, by path;
/// the values themselves never leave this function.
pub fn credential_changes(before: &str, after: &str) -> BTreeMap<String, CredentialChange> {
    let map = |text: &str| -> BTreeMap<String, String> {
        find_credentials(text)
            .into_iter()
            .map(|f| (f.path, f.value))
            .collect()
    };
    let (old, new) = (map(before), map(after));
    let mut out = BTreeMap::new();
    for (path, v) in &new {
        match old.get(path) {
            None => {
                out.insert(path.clone(), CredentialChange::Added);
            }
            Some(o) if o != v => {
                out.insert(path.clone(), CredentialChange::Changed);
            }
            Some(_) => {}
        }
    }
    for path in old.keys().filter(|p| !new.contains_key(*p)) {
        out.insert(path.clone(), CredentialChange::Removed);
    }
    out
}

/// Where a referenced credential is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// An environment variable's name (`key_env = "NAME"`).
    Env(String),
    /// A file's path (`key_file = "/path"`); its content, trailing newline
    /// trimmed, is the value.
    File(String),
}

/// Replaces every reference (`key_env`, `key_file`) in `table` and its
/// sub-tables with `key = <value>`, where `read` gives a reference's value.
/// `context` prefixes error messages (`entitlement "prod-db" target`).
/// A setting given both inline and by reference, or by two references, is an
/// error naming it; so is a reference that is not a string.
pub fn resolve_references(
    table: &mut toml::Table,
    context: &str,
    read: &mut dyn FnMut(&Reference) -> Result<String, String>,
) -> Result<(), String> {
    resolve_in(table, context, "", read)
}

fn resolve_in(
    table: &mut toml::Table,
    context: &str,
    path: &str,
    read: &mut dyn FnMut(&Reference) -> Result<String, String>,
) -> Result<(), String> {
    let refs: Vec<(String, String, bool)> = table
        .keys()
        .filter_map(|k| {
            let (base, env) = match (k.strip_suffix("_env"), k.strip_suffix("_file")) {
                (Some(b), _) => (b, true),
                (_, Some(b)) => (b, false),
                _ => return None,
            };
            accepts_reference(base).then(|| (k.clone(), base.to_string(), env))
        })
        .collect();
    for (k, base, env) in refs {
        if table.contains_key(&base) {
            return Err(format!(
                "{context}: {} is given twice ({base} and {k}); keep one",
                join(path, &base)
            ));
        }
        let Some(v) = table.remove(&k) else { continue };
        let toml::Value::String(name) = v else {
            return Err(format!(
                "{context}: {} must be a string (an environment variable's name or a file's path)",
                join(path, &k)
            ));
        };
        let r = if env {
            Reference::Env(name)
        } else {
            Reference::File(name)
        };
        let value = read(&r).map_err(|e| format!("{context}: {}: {e}", join(path, &k)))?;
        table.insert(base, toml::Value::String(value));
    }
    for (k, v) in table.iter_mut() {
        match v {
            toml::Value::Table(t) => resolve_in(t, context, &join(path, k), read)?,
            toml::Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    if let toml::Value::Table(t) = x {
                        resolve_in(t, context, &format!("{}[{i}]", join(path, k)), read)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
