//! SCIM 2.0 (RFC 7643, RFC 7644) as plain functions over JSON: the schemas
//! twokey serves (one definition that both validates resources and is
//! published at `/Schemas`), the filter language, PATCH operations and
//! attribute projection. Pure: no clock, no storage; the server crate's
//! `scim` module does the HTTP and the store.

use serde_json::{json, Map, Value};

/// The core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The ListResponse message URN.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The PatchOp message URN.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The Error message URN.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM error: HTTP status, `scimType` (RFC 7644 section 3.12) and detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    /// HTTP status.
    pub status: u16,
    /// `scimType`, when the RFC names one.
    pub scim_type: Option<&'static str>,
    /// What is wrong, for a person to act on.
    pub detail: String,
}

impl ScimError {
    /// 400 with `scimType`.
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// The error as the SCIM Error message.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "schemas": [ERROR],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            v["scimType"] = json!(t);
        }
        v
    }
}

/// An attribute's type (RFC 7643 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// `string`.
    String,
    /// `boolean`.
    Boolean,
    /// `complex`.
    Complex,
    /// `reference`.
    Reference,
}

/// An attribute's mutability (RFC 7643 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// `readOnly`: set by the server only.
    ReadOnly,
    /// `readWrite`.
    ReadWrite,
    /// `immutable`: set at creation or when absent.
    Immutable,
}

/// One attribute definition.
#[derive(Debug, Clone)]
pub struct Attr {
    /// Name, canonical case.
    pub name: &'static str,
    /// Type.
    pub ty: AttrType,
    /// Whether it holds a list.
    pub multi: bool,
    /// Whether a resource must have it.
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    pub case_exact: bool,
    /// Mutability.
    pub mutability: Mutability,
    /// `uniqueness`: `server` or `none`.
    pub unique: bool,
    /// Sub-attributes of a complex attribute.
    pub sub: Vec<Attr>,
    /// `referenceTypes` of a reference.
    pub reference_types: &'static [&'static str],
    /// Description.
    pub description: &'static str,
}

fn attr(name: &'static str, ty: AttrType, description: &'static str) -> Attr {
    Attr {
        name,
        ty,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        unique: false,
        sub: Vec::new(),
        reference_types: &[],
        description,
    }
}

/// A resource type twokey serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `User`.
    User,
    /// `Group`.
    Group,
}

impl Kind {
    /// The resource type name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    /// The endpoint, relative to `/scim/v2`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "/Users",
            Kind::Group => "/Groups",
        }
    }

    /// The core schema URN.
    pub fn schema(self) -> &'static str {
        match self {
            Kind::User => USER_SCHEMA,
            Kind::Group => GROUP_SCHEMA,
        }
    }

    /// The attributes twokey keeps for this kind (what `/Schemas` says).
    pub fn attributes(self) -> Vec<Attr> {
        use AttrType::*;
        match self {
            Kind::User => vec![
                Attr {
                    required: true,
                    unique: true,
                    ..attr(
                        "userName",
                        String,
                        "Unique identifier for the User, typically used to sign in.",
                    )
                },
                Attr {
                    sub: vec![
                        attr("formatted", String, "The full name."),
                        attr("familyName", String, "The family name."),
                        attr("givenName", String, "The given name."),
                    ],
                    ..attr("name", Complex, "The components of the user's name.")
                },
                attr("displayName", String, "The name of the User, for display."),
                Attr {
                    multi: true,
                    sub: vec![
                        attr("value", String, "Email address."),
                        attr("type", String, "work, home or other."),
                        attr("primary", Boolean, "Whether this is the primary address."),
                    ],
                    ..attr("emails", Complex, "Email addresses for the user.")
                },
                attr(
                    "active",
                    Boolean,
                    "Whether the user may act: false cancels their pending requests and revokes their grants.",
                ),
                Attr {
                    multi: true,
                    mutability: Mutability::ReadOnly,
                    sub: vec![
                        Attr {
                            mutability: Mutability::ReadOnly,
                            ..attr("value", String, "The id of the Group.")
                        },
                        Attr {
                            mutability: Mutability::ReadOnly,
                            reference_types: &["Group"],
                            ..attr("$ref", Reference, "The URI of the Group.")
                        },
                        Attr {
                            mutability: Mutability::ReadOnly,
                            ..attr("display", String, "The Group's displayName.")
                        },
                    ],
                    ..attr("groups", Complex, "The Groups the user belongs to.")
                },
            ],
            Kind::Group => vec![
                Attr {
                    required: true,
                    ..attr(
                        "displayName",
                        String,
                        "The group name, as approval rules name it.",
                    )
                },
                Attr {
                    multi: true,
                    sub: vec![
                        Attr {
                            mutability: Mutability::Immutable,
                            case_exact: true,
                            ..attr("value", String, "The id of the member User.")
                        },
                        Attr {
                            mutability: Mutability::Immutable,
                            reference_types: &["User"],
                            ..attr("$ref", Reference, "The URI of the member User.")
                        },
                    ],
                    ..attr("members", Complex, "The members of the Group.")
                },
            ],
        }
    }
}

/// The `/Schemas` representation of `kind` (RFC 7643 section 7).
pub fn schema_resource(kind: Kind, base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": kind.schema(),
        "name": kind.name(),
        "description": format!("{} as twokey keeps it", kind.name()),
        "attributes": kind.attributes().iter().map(attr_json).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base}/Schemas/{}", kind.schema()),
        },
    })
}

fn attr_json(a: &Attr) -> Value {
    let mut v = json!({
        "name": a.name,
        "type": match a.ty {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Complex => "complex",
            AttrType::Reference => "reference",
        },
        "multiValued": a.multi,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": match a.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
        },
        "returned": "default",
        "uniqueness": if a.unique { "server" } else { "none" },
    });
    if !a.sub.is_empty() {
        v["subAttributes"] = Value::Array(a.sub.iter().map(attr_json).collect());
    }
    if a.ty == AttrType::Reference {
        v["referenceTypes"] = json!(a.reference_types);
    }
    v
}

/// The `/ResourceTypes` representation of `kind`.
pub fn resource_type(kind: Kind, base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": kind.endpoint(),
        "description": format!("twokey {}s", kind.name()),
        "schema": kind.schema(),
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base}/ResourceTypes/{}", kind.name()),
        },
    })
}

/// The `/ServiceProviderConfig` document: what twokey's SCIM supports.
pub fn service_provider_config(base: &str, max_results: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://twokey.dev/docs/scim",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token per provisioning client, configured in [[scim.client]]",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

// ----- resources ------------------------------------------------------------

fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Cleans a resource a client sent for `kind`: attribute names in canonical
/// case, unknown and read-only attributes dropped, types checked, required
/// attributes present. `externalId` is kept (a common attribute).
pub fn sanitize(kind: Kind, input: &Value) -> Result<Map<String, Value>, ScimError> {
    let obj = input
        .as_object()
        .ok_or_else(|| ScimError::bad("invalidSyntax", "the body must be a JSON object"))?;
    let attrs = kind.attributes();
    let mut out = Map::new();
    for (k, v) in obj {
        let key = strip_urn(kind, k);
        if key.eq_ignore_ascii_case("externalId") {
            match v {
                Value::String(s) => {
                    out.insert("externalId".into(), json!(s));
                }
                Value::Null => {}
                _ => {
                    return Err(ScimError::bad(
                        "invalidValue",
                        "externalId must be a string",
                    ))
                }
            }
            continue;
        }
        let Some(a) = find(&attrs, key) else { continue };
        if a.mutability == Mutability::ReadOnly || v.is_null() {
            continue;
        }
        out.insert(a.name.into(), check_value(a, v)?);
    }
    for a in attrs.iter().filter(|a| a.required) {
        if !out.contains_key(a.name) {
            return Err(ScimError::bad(
                "invalidValue",
                format!("{} is required", a.name),
            ));
        }
    }
    Ok(out)
}

fn strip_urn(kind: Kind, key: &str) -> &str {
    let urn = kind.schema();
    if key.len() > urn.len() && key[..urn.len()].eq_ignore_ascii_case(urn) {
        key[urn.len()..].trim_start_matches(':')
    } else {
        key
    }
}

/// Checks `v` against `a` (multi-valued: a list of such values), with
/// sub-attribute names in canonical case and unknown ones dropped.
fn check_value(a: &Attr, v: &Value) -> Result<Value, ScimError> {
    if a.multi && !a.sub.is_empty() {
        let items: Vec<Value> = match v {
            Value::Array(items) => items.clone(),
            Value::Object(_) => vec![v.clone()],
            _ => {
                return Err(ScimError::bad(
                    "invalidValue",
                    format!("{} must be a list", a.name),
                ))
            }
        };
        let checked = items
            .iter()
            .map(|i| check_single(a, i))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Value::Array(checked));
    }
    if a.multi {
        let items = v
            .as_array()
            .ok_or_else(|| ScimError::bad("invalidValue", format!("{} must be a list", a.name)))?;
        return Ok(Value::Array(
            items
                .iter()
                .map(|i| check_single(a, i))
                .collect::<Result<_, _>>()?,
        ));
    }
    check_single(a, v)
}

fn check_single(a: &Attr, v: &Value) -> Result<Value, ScimError> {
    let bad = |what: &str| ScimError::bad("invalidValue", format!("{} must be {what}", a.name));
    match a.ty {
        AttrType::String | AttrType::Reference => match v {
            Value::String(_) => Ok(v.clone()),
            _ => Err(bad("a string")),
        },
        AttrType::Boolean => match v {
            Value::Bool(_) => Ok(v.clone()),
            // Some clients (Entra ID) send "True"/"False".
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(json!(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(json!(false)),
            _ => Err(bad("true or false")),
        },
        AttrType::Complex => {
            let obj = v.as_object().ok_or_else(|| bad("an object"))?;
            let mut out = Map::new();
            for (k, sv) in obj {
                let Some(s) = find(&a.sub, k) else { continue };
                if sv.is_null() {
                    continue;
                }
                out.insert(s.name.into(), check_single(s, sv)?);
            }
            Ok(Value::Object(out))
        }
    }
}

/// Applies `attributes` / `excludedAttributes` (comma-separated, RFC 7644
/// section 3.4.2.5) to a resource: `id` and `schemas` are always returned.
pub fn project(mut resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let Some(obj) = resource.as_object_mut() else {
        return resource;
    };
    let names = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|n| {
                let n = n.trim();
                let n = n.rsplit_once(':').map(|(_, a)| a).unwrap_or(n);
                n.split('.').next().unwrap_or(n).to_ascii_lowercase()
            })
            .filter(|n| !n.is_empty())
            .collect()
    };
    const ALWAYS: &[&str] = &["id", "schemas"];
    if let Some(a) = attributes.filter(|a| !a.trim().is_empty()) {
        let keep = names(a);
        obj.retain(|k, _| ALWAYS.contains(&k.as_str()) || keep.contains(&k.to_ascii_lowercase()));
    } else if let Some(e) = excluded.filter(|e| !e.trim().is_empty()) {
        let drop = names(e);
        obj.retain(|k, _| ALWAYS.contains(&k.as_str()) || !drop.contains(&k.to_ascii_lowercase()));
    }
    resource
}

// ----- filters ----------------------------------------------------------------

/// A parsed filter (RFC 7644 section 3.4.2.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attr op value`, or `attr pr`.
    Compare {
        /// Attribute path, lower-cased, dots between parts.
        path: Vec<String>,
        /// Operator.
        op: Op,
        /// The value (`Null` for `pr`).
        value: Value,
    },
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (a)`.
    Not(Box<Filter>),
    /// `emails[type eq "work"]`: some value of a multi-valued attribute matches.
    Valued(String, Box<Filter>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `eq`.
    Eq,
    /// `ne`.
    Ne,
    /// `co`.
    Co,
    /// `sw`.
    Sw,
    /// `ew`.
    Ew,
    /// `gt`.
    Gt,
    /// `ge`.
    Ge,
    /// `lt`.
    Lt,
    /// `le`.
    Le,
    /// `pr`.
    Pr,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad("invalidFilter", detail)
}

fn tokenize(s: &str) -> Result<Vec<Tok>, ScimError> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '[' => {
                out.push(Tok::LBracket);
                i += 1
            }
            ']' => {
                out.push(Tok::RBracket);
                i += 1
            }
            '"' => {
                // A JSON string: find its end, honouring escapes.
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(invalid(format!(
                        "unterminated string at character {}",
                        start + 1
                    )));
                }
                let lit: String = chars[start..=i].iter().collect();
                let v: String = serde_json::from_str(&lit)
                    .map_err(|e| invalid(format!("bad string {lit}: {e}")))?;
                out.push(Tok::Str(v));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !matches!(chars[i], ' ' | '\t' | '(' | ')' | '[' | ']') {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

/// Parses a filter expression.
pub fn parse_filter(s: &str) -> Result<Filter, ScimError> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Err(invalid("the filter is empty"));
    }
    let mut p = Parser { toks, pos: 0 };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err(invalid(format!(
            "unexpected {:?} in filter {s:?}",
            p.toks[p.pos]
        )));
    }
    Ok(f)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn or(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ScimError> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.group()?)));
        }
        if matches!(self.toks.get(self.pos), Some(Tok::LParen)) {
            return self.group();
        }
        self.compare()
    }

    fn group(&mut self) -> Result<Filter, ScimError> {
        if !matches!(self.toks.get(self.pos), Some(Tok::LParen)) {
            return Err(invalid("expected ( after not"));
        }
        self.pos += 1;
        let f = self.or()?;
        if !matches!(self.toks.get(self.pos), Some(Tok::RParen)) {
            return Err(invalid("missing )"));
        }
        self.pos += 1;
        Ok(f)
    }

    fn compare(&mut self) -> Result<Filter, ScimError> {
        let Some(Tok::Word(path)) = self.toks.get(self.pos).cloned() else {
            return Err(invalid("expected an attribute name"));
        };
        self.pos += 1;
        if matches!(self.toks.get(self.pos), Some(Tok::LBracket)) {
            self.pos += 1;
            let inner = self.or()?;
            if !matches!(self.toks.get(self.pos), Some(Tok::RBracket)) {
                return Err(invalid("missing ]"));
            }
            self.pos += 1;
            return Ok(Filter::Valued(attr_name(&path), Box::new(inner)));
        }
        let Some(Tok::Word(op)) = self.toks.get(self.pos).cloned() else {
            return Err(invalid(format!("expected an operator after {path}")));
        };
        self.pos += 1;
        let op = match op.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "pr" => Op::Pr,
            other => return Err(invalid(format!("unknown operator {other:?}"))),
        };
        let value = if op == Op::Pr {
            Value::Null
        } else {
            match self.toks.get(self.pos).cloned() {
                Some(Tok::Str(s)) => {
                    self.pos += 1;
                    Value::String(s)
                }
                Some(Tok::Word(w)) => {
                    self.pos += 1;
                    match w.as_str() {
                        "true" => json!(true),
                        "false" => json!(false),
                        "null" => Value::Null,
                        n => serde_json::from_str::<serde_json::Number>(n)
                            .map(Value::Number)
                            .map_err(|_| invalid(format!("bad value {n:?}; quote strings")))?,
                    }
                }
                _ => return Err(invalid(format!("expected a value after {path}"))),
            }
        };
        Ok(Filter::Compare {
            path: path_parts(&path),
            op,
            value,
        })
    }
}

fn attr_name(path: &str) -> String {
    path.rsplit_once(':')
        .map(|(_, a)| a)
        .unwrap_or(path)
        .to_ascii_lowercase()
}

fn path_parts(path: &str) -> Vec<String> {
    attr_name(path).split('.').map(String::from).collect()
}

/// Looks `key` up case-insensitively.
fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The values at `path` (a multi-valued attribute yields each element's).
fn values_at<'a>(v: &'a Value, path: &[String]) -> Vec<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
    };
    match v {
        Value::Array(items) => items.iter().flat_map(|i| values_at(i, path)).collect(),
        _ => match get_ci(v, first) {
            // `emails eq "x"` compares the elements' `value`.
            Some(Value::Array(items)) if rest.is_empty() => items
                .iter()
                .map(|i| get_ci(i, "value").unwrap_or(i))
                .collect(),
            Some(next) => values_at(next, rest),
            None => Vec::new(),
        },
    }
}

/// Whether `resource` matches `f`. String comparisons are case-insensitive
/// except for `id` (and other caseExact attributes, which twokey compares
/// exactly only for `id` and `members.value`).
pub fn matches(f: &Filter, resource: &Value) -> bool {
    match f {
        Filter::And(a, b) => matches(a, resource) && matches(b, resource),
        Filter::Or(a, b) => matches(a, resource) || matches(b, resource),
        Filter::Not(a) => !matches(a, resource),
        Filter::Valued(attr, inner) => match get_ci(resource, attr) {
            Some(Value::Array(items)) => items.iter().any(|i| matches(inner, i)),
            Some(v @ Value::Object(_)) => matches(inner, v),
            _ => false,
        },
        Filter::Compare { path, op, value } => {
            let found = values_at(resource, path);
            let exact = matches!(path.last().map(String::as_str), Some("id" | "value"))
                && path.len() <= 2
                && path.first().map(String::as_str) != Some("emails");
            if *op == Op::Pr {
                return found
                    .iter()
                    .any(|v| !v.is_null() && v.as_str() != Some("") && *v != &json!([]));
            }
            if *op == Op::Ne {
                return !found.iter().any(|v| compare(Op::Eq, v, value, exact));
            }
            found.iter().any(|v| compare(*op, v, value, exact))
        }
    }
}

fn compare(op: Op, have: &Value, want: &Value, exact: bool) -> bool {
    match (have, want) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                Op::Eq => a == b,
                Op::Co => a.contains(&b),
                Op::Sw => a.starts_with(&b),
                Op::Ew => a.ends_with(&b),
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                Op::Le => a <= b,
                Op::Ne | Op::Pr => false,
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            match op {
                Op::Eq => a == b,
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                Op::Le => a <= b,
                _ => false,
            }
        }
        (a, b) => op == Op::Eq && a == b,
    }
}

// ----- PATCH ------------------------------------------------------------------

/// A PATCH target: `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub`.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    attr: String,
    filter: Option<Filter>,
    sub: Option<String>,
}

fn parse_target(kind: Kind, path: &str) -> Result<Target, ScimError> {
    let no_target = || ScimError::bad("invalidPath", format!("bad PATCH path {path:?}"));
    let path = strip_urn(kind, path.trim());
    let (head, filter, tail) = match path.find('[') {
        Some(open) => {
            let close = path.rfind(']').ok_or_else(no_target)?;
            if close < open {
                return Err(no_target());
            }
            let f = parse_filter(&path[open + 1..close])
                .map_err(|e| ScimError::bad("invalidPath", e.detail))?;
            let tail = path[close + 1..].trim_start_matches('.');
            (&path[..open], Some(f), (!tail.is_empty()).then_some(tail))
        }
        None => match path.split_once('.') {
            Some((h, t)) => (h, None, Some(t)),
            None => (path, None, None),
        },
    };
    let attrs = kind.attributes();
    let a = if head.eq_ignore_ascii_case("externalId") {
        "externalId"
    } else {
        find(&attrs, head).ok_or_else(no_target)?.name
    };
    let sub = match tail {
        Some(t) => {
            let parent = find(&attrs, a).ok_or_else(no_target)?;
            Some(find(&parent.sub, t).ok_or_else(no_target)?.name.to_string())
        }
        None => None,
    };
    Ok(Target {
        attr: a.to_string(),
        filter,
        sub,
    })
}

/// Applies the operations of a PatchOp message to `resource` (the stored
/// attributes, as [`sanitize`] keeps them) and returns the new attributes,
/// checked again with [`sanitize`].
pub fn patch(
    kind: Kind,
    resource: &Map<String, Value>,
    body: &Value,
) -> Result<Map<String, Value>, ScimError> {
    let ops = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::bad("invalidSyntax", "a PatchOp needs an Operations list"))?;
    let mut doc = resource.clone();
    for (n, op) in ops.iter().enumerate() {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::bad("invalidSyntax", format!("operation {n} has no op")))?
            .to_ascii_lowercase();
        let path = op.get("path").and_then(Value::as_str);
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        match (name.as_str(), path) {
            ("add" | "replace", None) => {
                let obj = value.as_object().ok_or_else(|| {
                    ScimError::bad(
                        "invalidValue",
                        format!("operation {n}: without a path the value must be an object"),
                    )
                })?;
                for (k, v) in obj {
                    let t = parse_target(kind, k)?;
                    apply_one(kind, &mut doc, &name, &t, v.clone())?;
                }
            }
            ("add" | "replace" | "remove", Some(p)) => {
                let t = parse_target(kind, p)?;
                apply_one(kind, &mut doc, &name, &t, value)?;
            }
            ("remove", None) => {
                return Err(ScimError::bad(
                    "noTarget",
                    format!("operation {n}: remove needs a path"),
                ))
            }
            (other, _) => {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    format!("operation {n}: unknown op {other:?}"),
                ))
            }
        }
    }
    let mut full = Value::Object(doc);
    full["schemas"] = json!([kind.schema()]);
    sanitize(kind, &full)
}

fn apply_one(
    kind: Kind,
    doc: &mut Map<String, Value>,
    op: &str,
    t: &Target,
    value: Value,
) -> Result<(), ScimError> {
    let attrs = kind.attributes();
    let def = find(&attrs, &t.attr);
    if def.is_some_and(|d| d.mutability == Mutability::ReadOnly) {
        return Err(ScimError::bad(
            "mutability",
            format!("{} is read-only", t.attr),
        ));
    }
    let multi = def.is_some_and(|d| d.multi);
    match (&t.filter, &t.sub) {
        (None, None) => match op {
            "remove" => {
                if let (true, Some(Value::Array(rm))) =
                    (multi, (!value.is_null()).then_some(&value))
                {
                    // Remove the listed values (Entra ID removes members this way).
                    if let Some(Value::Array(items)) = doc.get_mut(&t.attr) {
                        items.retain(|i| !rm.iter().any(|r| same_value(i, r)));
                    }
                } else {
                    doc.remove(&t.attr);
                }
            }
            "add" if multi => {
                let new = match value {
                    Value::Array(v) => v,
                    other => vec![other],
                };
                let entry = doc.entry(t.attr.clone()).or_insert_with(|| json!([]));
                if let Value::Array(items) = entry {
                    for v in new {
                        if !items.iter().any(|i| same_value(i, &v)) {
                            items.push(v);
                        }
                    }
                } else {
                    *entry = Value::Array(new);
                }
            }
            "add" if value.is_object() && doc.get(&t.attr).is_some_and(Value::is_object) => {
                if let (Some(Value::Object(cur)), Value::Object(new)) =
                    (doc.get_mut(&t.attr), value)
                {
                    cur.extend(new);
                }
            }
            _ => {
                doc.insert(t.attr.clone(), value);
            }
        },
        (None, Some(sub)) => {
            let entry = doc.entry(t.attr.clone()).or_insert_with(|| json!({}));
            let Some(obj) = entry.as_object_mut() else {
                return Err(ScimError::bad(
                    "invalidPath",
                    format!("{} has no sub-attributes", t.attr),
                ));
            };
            if op == "remove" {
                obj.remove(sub);
            } else {
                obj.insert(sub.clone(), value);
            }
        }
        (Some(f), sub) => {
            let Some(Value::Array(items)) = doc.get_mut(&t.attr) else {
                return if op == "remove" {
                    Ok(())
                } else {
                    Err(ScimError::bad(
                        "noTarget",
                        format!("no {} value matches the filter", t.attr),
                    ))
                };
            };
            let hits: Vec<usize> = (0..items.len())
                .filter(|i| matches(f, &items[*i]))
                .collect();
            if hits.is_empty() && op != "remove" {
                return Err(ScimError::bad(
                    "noTarget",
                    format!("no {} value matches the filter", t.attr),
                ));
            }
            match (op, sub) {
                ("remove", None) => {
                    let mut i = 0;
                    items.retain(|_| {
                        let keep = !hits.contains(&i);
                        i += 1;
                        keep
                    });
                }
                ("remove", Some(s)) => {
                    for i in hits {
                        if let Some(o) = items[i].as_object_mut() {
                            o.remove(s);
                        }
                    }
                }
                (_, Some(s)) => {
                    for i in hits {
                        if let Some(o) = items[i].as_object_mut() {
                            o.insert(s.clone(), value.clone());
                        }
                    }
                }
                (_, None) => {
                    for i in hits {
                        items[i] = value.clone();
                    }
                }
            }
        }
    }
    Ok(())
}

/// Two values of a multi-valued attribute are the same when their `value`
/// is (members, emails), else when they are equal.
fn same_value(a: &Value, b: &Value) -> bool {
    match (get_ci(a, "value"), get_ci(b, "value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The ETag of a resource version (weak: the representation may vary with
/// `attributes`).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Value {
        json!({"userName": "Alice", "externalId": "00u1", "emails": [{"value": "a@x.com", "type": "work"}], "active": true})
    }

    #[test]
    fn filters_compare_user_name_case_insensitively_and_external_id() {
        let f = parse_filter("userName eq \"alice\"").expect("parses");
        assert!(matches(&f, &user()));
        let f = parse_filter("externalId eq \"00u2\"").expect("parses");
        assert!(!matches(&f, &user()));
        let f =
            parse_filter("emails[type eq \"work\" and value co \"@x\"] and not (active eq false)")
                .expect("parses");
        assert!(matches(&f, &user()));
        let f = parse_filter("urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"AL\"")
            .expect("parses");
        assert!(matches(&f, &user()));
    }

    #[test]
    fn bad_filters_are_invalid_filter_errors_that_say_why() {
        for (f, says) in [
            ("userName", "operator"),
            ("userName xx \"a\"", "unknown operator"),
            ("userName eq \"a", "unterminated"),
            ("userName eq alice", "quote strings"),
            ("(userName eq \"a\"", "missing )"),
            ("", "empty"),
        ] {
            let e = parse_filter(f).expect_err(f);
            assert_eq!(e.scim_type, Some("invalidFilter"), "{f}");
            assert!(e.detail.contains(says), "{f}: {}", e.detail);
        }
    }

    #[test]
    fn patch_adds_replaces_and_removes_with_value_filters() {
        let doc = sanitize(Kind::User, &user()).expect("valid");
        let body = json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "active", "value": "False"},
            {"op": "add", "path": "emails", "value": [{"value": "b@x.com", "type": "home"}]},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "c@x.com"},
            {"op": "add", "value": {"name.givenName": "Alice", "displayName": "A"}},
            {"op": "remove", "path": "emails[type eq \"home\"]"},
        ]});
        let out = patch(Kind::User, &doc, &body).expect("patch applies");
        assert_eq!(out["active"], json!(false));
        assert_eq!(out["emails"], json!([{"value": "c@x.com", "type": "work"}]));
        assert_eq!(out["name"], json!({"givenName": "Alice"}));
        assert_eq!(out["displayName"], json!("A"));
        let e = patch(
            Kind::User,
            &doc,
            &json!({"Operations": [{"op": "remove", "path": "nope"}]}),
        )
        .expect_err("unknown path");
        assert_eq!(e.scim_type, Some("invalidPath"));
        let e = patch(
            Kind::User,
            &doc,
            &json!({"Operations": [{"op": "remove", "path": "userName"}]}),
        )
        .expect_err("required");
        assert!(e.detail.contains("userName is required"), "{e}");
    }

    #[test]
    fn group_members_are_removed_by_value_filter_or_by_value_list() {
        let g = sanitize(Kind::Group, &json!({"displayName": "dba", "members": [{"value": "u1"}, {"value": "u2"}, {"value": "u3"}]}))
            .expect("valid");
        let out = patch(
            Kind::Group,
            &g,
            &json!({"Operations": [
                {"op": "remove", "path": "members[value eq \"u1\"]"},
                {"op": "remove", "path": "members", "value": [{"value": "u2"}]},
            ]}),
        )
        .expect("applies");
        assert_eq!(out["members"], json!([{"value": "u3"}]));
    }

    #[test]
    fn projection_keeps_id_and_schemas() {
        let r = json!({"id": "1", "schemas": [USER_SCHEMA], "userName": "a", "displayName": "A", "meta": {}});
        assert_eq!(
            project(r.clone(), Some("displayName"), None),
            json!({"id": "1", "schemas": [USER_SCHEMA], "displayName": "A"})
        );
        assert_eq!(
            project(r, None, Some("displayName,meta")),
            json!({"id": "1", "schemas": [USER_SCHEMA], "userName": "a"})
        );
    }
}
