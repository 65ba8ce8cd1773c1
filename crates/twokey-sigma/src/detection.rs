//! Compiles a Sigma `detection` section into a matcher tree and evaluates it
//! against events.
//!
//! # Values that are objects or arrays
//!
//! CloudTrail nests data: `requestParameters` is an object, many members are
//! arrays. A field whose value is an array matches when any element matches.
//! A string comparison (plain value, `contains`, `startswith`, `endswith`,
//! `re`, `neq`, …) applied to an **object** matches when any scalar inside it,
//! at any depth, matches: `requestParameters|contains: Suspended` matches
//! `{"VersioningConfiguration":{"Status":"Suspended"}}`, and so does a string
//! member holding a JSON policy document. The lone wildcard `*` matches any
//! non-null value, objects and arrays included (even empty ones).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use regex::Regex;
use yaml_serde::Value as Yaml;

use crate::condition::{self, Cond};
use crate::config::{Config, MappedField};
use crate::json::{Event, JsonValue, RawStr, NO_PATH_ID};
use crate::pattern::{literal, tokenize, StrPat, Tok};

/// Where a field's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldSrc {
    /// Dotted path segments and the path's id for the per-record memo.
    Path(Box<[Box<str>]>, u32),
    Outcome,
}

impl FieldSrc {
    /// Gives a nested path its id from `ids` (the same id for the same path
    /// in every rule).
    pub(crate) fn assign_id(&mut self, ids: &mut HashMap<Box<[Box<str>]>, u32>) {
        if let FieldSrc::Path(p, id) = self {
            if p.len() > 1 {
                let next = ids.len() as u32;
                *id = *ids.entry(p.clone()).or_insert(next);
            }
        }
    }

    pub(crate) fn resolve(name: &str, cfg: &Config) -> FieldSrc {
        match cfg.fields.get(name) {
            Some(MappedField::Outcome) => FieldSrc::Outcome,
            Some(MappedField::Path(p)) => FieldSrc::Path(split_path(p), NO_PATH_ID),
            None => FieldSrc::Path(split_path(name), NO_PATH_ID),
        }
    }

    /// Calls `f` with each value of the field until it returns true.
    #[inline]
    pub(crate) fn visit<'a>(
        &self,
        ev: &Event<'a>,
        f: &mut dyn FnMut(JsonValue<'a>) -> bool,
    ) -> bool {
        match self {
            FieldSrc::Path(p, id) => ev.visit_cached(*id, p, f),
            FieldSrc::Outcome => {
                let failed =
                    matches!(ev.top("errorCode"), Some(v) if !matches!(v, JsonValue::Null));
                let raw = if failed { "failure" } else { "success" };
                f(JsonValue::String(RawStr::plain(raw)))
            }
        }
    }

    /// The scalar texts of the field (used by `fieldref`).
    pub(crate) fn texts<'a>(&self, ev: &Event<'a>) -> Vec<Cow<'a, str>> {
        let mut out = Vec::new();
        self.visit(ev, &mut |v| {
            v.any_scalar(&mut |s| {
                if let Some(t) = s.scalar_text() {
                    out.push(t);
                }
                false
            });
            false
        });
        out
    }
}

fn split_path(p: &str) -> Box<[Box<str>]> {
    p.split('.').map(Into::into).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefHow {
    Equals,
    StartsWith,
    EndsWith,
    Contains,
}

/// One value test of a field.
#[derive(Debug, Clone)]
pub(crate) enum Leaf {
    /// The field is missing or null.
    Null,
    /// The field has (true) or lacks (false) a non-null value.
    Exists(bool),
    /// A string comparison.
    Str(StrPat),
    /// Numeric comparison with the value.
    Cmp(CmpOp, f64),
    /// The value is an IP address inside the network.
    Cidr(IpNet),
    /// A regular expression search, with a literal every match contains
    /// (checked first, as it is much cheaper), when one can be read off.
    Re(Box<Regex>, Option<Box<memchr::memmem::Finder<'static>>>),
    /// Compares with another field's value.
    FieldRef {
        other: FieldSrc,
        how: RefHow,
        cased: bool,
    },
}

impl Leaf {
    /// Whether this leaf is decided by looking at each value alone (so
    /// several leaves can share one walk over the field's values).
    fn per_value(&self) -> bool {
        !matches!(self, Leaf::Null | Leaf::Exists(_) | Leaf::FieldRef { .. })
    }

    #[inline]
    fn match_value(&self, v: JsonValue<'_>) -> bool {
        match self {
            Leaf::Str(StrPat::Any) => !matches!(v, JsonValue::Null),
            Leaf::Str(p) => any_text(v, &mut |s| p.is_match(s)),
            Leaf::Re(re, lit) => any_text(v, &mut |s| {
                lit.as_ref().is_none_or(|f| f.find(s.as_bytes()).is_some()) && re.is_match(s)
            }),
            Leaf::Cmp(op, n) => any_text(v, &mut |s| match s.trim().parse::<f64>() {
                Ok(x) => match op {
                    CmpOp::Lt => x < *n,
                    CmpOp::Lte => x <= *n,
                    CmpOp::Gt => x > *n,
                    CmpOp::Gte => x >= *n,
                },
                Err(_) => false,
            }),
            Leaf::Cidr(net) => any_text(v, &mut |s| {
                s.trim().parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip))
            }),
            Leaf::Null | Leaf::Exists(_) | Leaf::FieldRef { .. } => false,
        }
    }

    fn matches(&self, field: &FieldSrc, ev: &Event<'_>) -> bool {
        match self {
            Leaf::Null => !field.visit(ev, &mut |v| !matches!(v, JsonValue::Null)),
            Leaf::Exists(want) => field.visit(ev, &mut |v| !matches!(v, JsonValue::Null)) == *want,
            Leaf::FieldRef { other, how, cased } => {
                let refs = other.texts(ev);
                if refs.is_empty() {
                    return false;
                }
                field.visit(ev, &mut |v| {
                    any_text(v, &mut |s| {
                        refs.iter().any(|r| {
                            let (s, r): (Cow<str>, Cow<str>) = if *cased {
                                (Cow::Borrowed(s), Cow::Borrowed(r))
                            } else {
                                (Cow::Owned(s.to_lowercase()), Cow::Owned(r.to_lowercase()))
                            };
                            match how {
                                RefHow::Equals => s == r,
                                RefHow::StartsWith => s.starts_with(&*r),
                                RefHow::EndsWith => s.ends_with(&*r),
                                RefHow::Contains => s.contains(&*r),
                            }
                        })
                    })
                })
            }
            other => field.visit(ev, &mut |v| other.match_value(v)),
        }
    }
}

/// Calls `f` on the text of every scalar in `v` until it returns true.
#[inline]
fn any_text(v: JsonValue<'_>, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match v {
        JsonValue::String(s) => f(&s.decode()),
        JsonValue::Null => false,
        JsonValue::Object(_) | JsonValue::Array(_) => {
            v.any_scalar(&mut |s| match s.scalar_text() {
                Some(t) => f(&t),
                None => false,
            })
        }
        scalar => scalar.scalar_text().is_some_and(|t| f(&t)),
    }
}

/// A node of a compiled detection.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Field {
        field: FieldSrc,
        leaves: Vec<Leaf>,
        /// All leaves must match (the `all` modifier) instead of any.
        all: bool,
        /// The `neq` modifier: the field has a value and the leaves do not
        /// match it.
        negated: bool,
    },
    /// Keywords: any scalar of the event matches any leaf.
    Keywords(Vec<Leaf>),
}

impl Node {
    /// Numbers every nested field path (see [`FieldSrc::assign_id`]).
    pub(crate) fn assign_ids(&mut self, ids: &mut HashMap<Box<[Box<str>]>, u32>) {
        match self {
            Node::And(ns) | Node::Or(ns) => ns.iter_mut().for_each(|n| n.assign_ids(ids)),
            Node::Not(n) => n.assign_ids(ids),
            Node::Field { field, leaves, .. } => {
                field.assign_id(ids);
                for l in leaves {
                    if let Leaf::FieldRef { other, .. } = l {
                        other.assign_id(ids);
                    }
                }
            }
            Node::Keywords(_) => {}
        }
    }

    pub(crate) fn matches(&self, ev: &Event<'_>) -> bool {
        match self {
            Node::And(ns) => ns.iter().all(|n| n.matches(ev)),
            Node::Or(ns) => ns.iter().any(|n| n.matches(ev)),
            Node::Not(n) => !n.matches(ev),
            Node::Field {
                field,
                leaves,
                all,
                negated,
            } => {
                let hit = if *all {
                    leaves.iter().all(|l| l.matches(field, ev))
                } else if leaves.iter().all(Leaf::per_value) {
                    field.visit(ev, &mut |v| leaves.iter().any(|l| l.match_value(v)))
                } else {
                    leaves.iter().any(|l| l.matches(field, ev))
                };
                if *negated {
                    // As in SQL, a missing or null field matches neither a
                    // value nor its negation.
                    !hit && field.visit(ev, &mut |v| !matches!(v, JsonValue::Null))
                } else {
                    hit
                }
            }
            Node::Keywords(leaves) => {
                ev.any_scalar(&mut |v| leaves.iter().any(|l| l.match_value(v)))
            }
        }
    }

    /// Lower-cased literal values or prefixes one of which the field at
    /// `path` must have for this node to match, when that can be read off
    /// the tree. Used to index rules (by `eventName` first) so that most
    /// rules are never tried on most events.
    pub(crate) fn required_literals(&self, path: &[Box<str>]) -> Option<Vec<Lit>> {
        match self {
            Node::Field {
                field: FieldSrc::Path(p, _),
                leaves,
                all: false,
                negated: false,
            } if **p == *path => leaves
                .iter()
                .map(|l| match l {
                    Leaf::Str(StrPat::Exact { text, .. }) => Some(Lit::Exact(text.to_lowercase())),
                    Leaf::Str(StrPat::Prefix { text, .. }) => {
                        Some(Lit::Prefix(text.to_lowercase()))
                    }
                    _ => None,
                })
                .collect(),
            Node::And(ns) => ns
                .iter()
                .filter_map(|n| n.required_literals(path))
                .min_by_key(Vec::len),
            Node::Or(ns) => {
                let mut out = Vec::new();
                for n in ns {
                    out.extend(n.required_literals(path)?);
                }
                Some(out)
            }
            _ => None,
        }
    }

    /// Every field path this node tests (candidates for the index).
    pub(crate) fn field_paths(&self, out: &mut Vec<Box<[Box<str>]>>) {
        match self {
            Node::And(ns) | Node::Or(ns) => ns.iter().for_each(|n| n.field_paths(out)),
            Node::Field {
                field: FieldSrc::Path(p, _),
                ..
            } if !out.contains(p) => out.push(p.clone()),
            _ => {}
        }
    }
}

/// A value a field must have (lower-cased) for a rule to match: equal to
/// it, or starting with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lit {
    Exact(String),
    Prefix(String),
}

/// Compiles a detection section (`condition` and the search identifiers).
pub(crate) fn compile(detection: &Yaml, cfg: &Config) -> Result<Node, String> {
    let Yaml::Mapping(map) = detection else {
        return Err("detection is not a mapping".into());
    };
    let mut idents: Vec<(String, Node)> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    for (k, v) in map {
        let Some(name) = k.as_str() else {
            return Err("detection has a non-string key".into());
        };
        match name {
            "condition" => match v {
                Yaml::String(s) => conditions.push(s.clone()),
                Yaml::Sequence(seq) => {
                    for c in seq {
                        match c.as_str() {
                            Some(s) => conditions.push(s.to_string()),
                            None => return Err("condition list holds a non-string".into()),
                        }
                    }
                }
                _ => return Err("condition is not a string".into()),
            },
            "timeframe" => return Err(
                "'timeframe' belongs to aggregations: express the rule as a Sigma correlation rule"
                    .into(),
            ),
            _ => {
                let node = compile_search(v, cfg).map_err(|e| format!("{name}: {e}"))?;
                idents.push((name.to_string(), node));
            }
        }
    }
    if conditions.is_empty() {
        return Err("detection has no condition".into());
    }
    let table: HashMap<&str, &Node> = idents.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut alts = Vec::new();
    for c in &conditions {
        let cond = condition::parse(c).map_err(|e| format!("condition {c:?}: {e}"))?;
        alts.push(resolve(&cond, &table, &idents).map_err(|e| format!("condition {c:?}: {e}"))?);
    }
    Ok(if alts.len() == 1 {
        alts.remove(0)
    } else {
        Node::Or(alts)
    })
}

fn resolve(
    cond: &Cond,
    table: &HashMap<&str, &Node>,
    order: &[(String, Node)],
) -> Result<Node, String> {
    Ok(match cond {
        Cond::And(a, b) => Node::And(vec![resolve(a, table, order)?, resolve(b, table, order)?]),
        Cond::Or(a, b) => Node::Or(vec![resolve(a, table, order)?, resolve(b, table, order)?]),
        Cond::Not(a) => Node::Not(Box::new(resolve(a, table, order)?)),
        Cond::Ident(name) => (*table
            .get(name.as_str())
            .ok_or_else(|| format!("unknown search identifier {name:?}"))?)
        .clone(),
        Cond::Of { any, pattern } => {
            let picked: Vec<Node> = order
                .iter()
                .filter(|(name, _)| {
                    if pattern == "them" {
                        !name.starts_with('_')
                    } else {
                        condition::ident_matches(pattern, name)
                    }
                })
                .map(|(_, n)| n.clone())
                .collect();
            if picked.is_empty() {
                return Err(format!("no search identifier matches {pattern:?}"));
            }
            if *any {
                Node::Or(picked)
            } else {
                Node::And(picked)
            }
        }
    })
}

/// A search identifier: a map (fields ANDed), a list of maps (ORed), or a
/// list of keywords.
fn compile_search(v: &Yaml, cfg: &Config) -> Result<Node, String> {
    match v {
        Yaml::Mapping(m) => {
            let mut items = Vec::with_capacity(m.len());
            for (k, val) in m {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    _ => return Err("field name is not a string".into()),
                };
                items.push(compile_field(&key, val, cfg).map_err(|e| format!("{key}: {e}"))?);
            }
            if items.is_empty() {
                return Err("empty selection".into());
            }
            Ok(Node::And(items))
        }
        Yaml::Sequence(seq)
            if seq.iter().all(|x| matches!(x, Yaml::Mapping(_))) && !seq.is_empty() =>
        {
            Ok(Node::Or(
                seq.iter()
                    .map(|x| compile_search(x, cfg))
                    .collect::<Result<_, _>>()?,
            ))
        }
        Yaml::Sequence(_) | Yaml::String(_) | Yaml::Number(_) => {
            // Keywords search the whole record: each is a substring of some
            // scalar, unless it has wildcards of its own.
            let values: Vec<&Yaml> = match v {
                Yaml::Sequence(s) => s.iter().collect(),
                other => vec![other],
            };
            let mods = Mods {
                position: Some("contains"),
                ..Mods::default()
            };
            let mut leaves = Vec::new();
            for v in values {
                leaves.extend(compile_value(v, &mods, cfg)?);
            }
            Ok(Node::Keywords(leaves))
        }
        _ => Err("a search identifier must be a map, a list of maps or a list of keywords".into()),
    }
}

/// Modifiers parsed from a `field|mod|mod` key.
#[derive(Default)]
struct Mods {
    position: Option<&'static str>,
    all: bool,
    cased: bool,
    neq: bool,
    re: bool,
    re_flags: String,
    exists: bool,
    cidr: bool,
    cmp: Option<CmpOp>,
    fieldref: bool,
    /// Value transformations, in the order written.
    transforms: Vec<&'static str>,
}

fn parse_mods(list: &[&str]) -> Result<Mods, String> {
    let mut m = Mods::default();
    for &raw in list {
        match raw {
            "contains" | "startswith" | "endswith" => {
                if m.position.is_some() {
                    return Err("more than one of contains/startswith/endswith".into());
                }
                m.position = Some(match raw {
                    "contains" => "contains",
                    "startswith" => "startswith",
                    _ => "endswith",
                });
            }
            "all" => m.all = true,
            "cased" => m.cased = true,
            "neq" => m.neq = true,
            "re" => m.re = true,
            "i" | "ignorecase" => m.re_flags.push('i'),
            "m" | "multiline" => m.re_flags.push('m'),
            "s" | "dotall" => m.re_flags.push('s'),
            "exists" => m.exists = true,
            "cidr" => m.cidr = true,
            "lt" => m.cmp = Some(CmpOp::Lt),
            "lte" => m.cmp = Some(CmpOp::Lte),
            "gt" => m.cmp = Some(CmpOp::Gt),
            "gte" => m.cmp = Some(CmpOp::Gte),
            "fieldref" => m.fieldref = true,
            "base64" => m.transforms.push("base64"),
            "base64offset" => m.transforms.push("base64offset"),
            "windash" => m.transforms.push("windash"),
            "expand" => m.transforms.push("expand"),
            "wide" | "utf16" | "utf16le" | "utf16be" => {
                return Err(format!(
                    "modifier '{raw}' (UTF-16 encoding) has no meaning for UTF-8 JSON records"
                ))
            }
            "minute" | "hour" | "day" | "week" | "month" | "year" => {
                return Err(format!("timestamp modifier '{raw}' is not supported"))
            }
            other => return Err(format!("unknown modifier '{other}'")),
        }
    }
    if !m.re_flags.is_empty() && !m.re {
        return Err("regular expression flags without 're'".into());
    }
    Ok(m)
}

fn compile_field(key: &str, val: &Yaml, cfg: &Config) -> Result<Node, String> {
    let mut parts = key.split('|');
    let name = parts.next().unwrap_or_default();
    let mod_list: Vec<&str> = parts.collect();
    let mods = parse_mods(&mod_list)?;
    if name.is_empty() && (mods.exists || mods.fieldref || mods.neq || mods.all) {
        return Err("keywords take no exists/fieldref/neq/all modifier".into());
    }
    let field = FieldSrc::resolve(name, cfg);
    let values: Vec<&Yaml> = match val {
        Yaml::Sequence(s) => s.iter().collect(),
        other => vec![other],
    };
    if values.is_empty() {
        return Err("empty value list".into());
    }
    let mut leaves = Vec::new();
    for v in values {
        leaves.extend(compile_value(v, &mods, cfg)?);
    }
    if name.is_empty() {
        return Ok(Node::Keywords(leaves));
    }
    Ok(Node::Field {
        field,
        leaves,
        all: mods.all,
        negated: mods.neq,
    })
}

fn scalar_string(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compile_value(v: &Yaml, m: &Mods, cfg: &Config) -> Result<Vec<Leaf>, String> {
    if m.exists {
        return match v {
            Yaml::Bool(b) => Ok(vec![Leaf::Exists(*b)]),
            Yaml::String(s) if s == "true" || s == "false" => Ok(vec![Leaf::Exists(s == "true")]),
            _ => Err("'exists' takes true or false".into()),
        };
    }
    if matches!(v, Yaml::Null) {
        return Ok(vec![Leaf::Null]);
    }
    let Some(text) = scalar_string(v) else {
        return Err("a value must be a string, number, boolean or null".into());
    };
    if m.re {
        let mut flags: Vec<char> = m.re_flags.chars().collect();
        flags.sort_unstable();
        flags.dedup();
        let flags: String = flags.into_iter().collect();
        let pat = if flags.is_empty() {
            text
        } else {
            format!("(?{flags}){text}")
        };
        return Regex::new(&pat)
            .map(|r| {
                let lit = required_literal(&pat)
                    .map(|l| Box::new(memchr::memmem::Finder::new(l.as_bytes()).into_owned()));
                vec![Leaf::Re(Box::new(r), lit)]
            })
            .map_err(|e| format!("regular expression {pat:?}: {e}"));
    }
    if m.cidr {
        return text
            .trim()
            .parse::<IpNet>()
            .map(|n| vec![Leaf::Cidr(n)])
            .map_err(|e| format!("cidr {text:?}: {e}"));
    }
    if let Some(op) = m.cmp {
        return match v {
            Yaml::Number(n) => n
                .as_f64()
                .map(|x| vec![Leaf::Cmp(op, x)])
                .ok_or_else(|| "comparison needs a number".into()),
            _ => Err("comparison modifiers take a number".into()),
        };
    }
    if m.fieldref {
        let how = match m.position {
            None => RefHow::Equals,
            Some("startswith") => RefHow::StartsWith,
            Some("endswith") => RefHow::EndsWith,
            Some(_) => RefHow::Contains,
        };
        return Ok(vec![Leaf::FieldRef {
            other: FieldSrc::resolve(&text, cfg),
            how,
            cased: m.cased,
        }]);
    }
    // Numbers and booleans compare by their text and never hold wildcards.
    let mut strings: Vec<Vec<Tok>> = match v {
        Yaml::String(s) => vec![tokenize(s)],
        _ => vec![text.chars().map(Tok::Char).collect()],
    };
    for t in &m.transforms {
        strings = apply_transform(t, strings, cfg)?;
    }
    strings
        .into_iter()
        .map(|mut toks| {
            match m.position {
                Some("contains") => {
                    toks.insert(0, Tok::Star);
                    toks.push(Tok::Star);
                }
                Some("startswith") => toks.push(Tok::Star),
                Some("endswith") => toks.insert(0, Tok::Star),
                _ => {}
            }
            StrPat::compile(&toks, m.cased).map(Leaf::Str)
        })
        .collect()
}

/// A literal that every match of the regular expression `pat` contains,
/// read off the common form `.*LITERAL.*` (any of `^`, `.*`, `.+` around a
/// run of plain characters) of a case-sensitive pattern; `None` otherwise.
pub(crate) fn required_literal(pat: &str) -> Option<String> {
    let mut core = pat;
    core = core.strip_prefix('^').unwrap_or(core);
    while let Some(r) = core.strip_prefix(".*").or_else(|| core.strip_prefix(".+")) {
        core = r;
    }
    // A trailing `$` only anchors; a trailing `.*`/`.+` only widens.
    if let Some(r) = core.strip_suffix('$') {
        if !r.ends_with('\\') {
            core = r;
        }
    }
    loop {
        match core.strip_suffix(".*").or_else(|| core.strip_suffix(".+")) {
            // `\.*` is an escaped dot and a star: not a wildcard.
            Some(r) if !r.ends_with('\\') => core = r,
            _ => break,
        }
    }
    let plain = |c: char| c.is_alphanumeric() || " :/-_@=,'\"<>%!~#&;`".contains(c);
    if core.is_empty() || !core.chars().all(plain) {
        return None;
    }
    Some(core.to_string())
}

/// At most this many alternatives come out of one value's expansion.
const MAX_EXPANSION: usize = 4096;

fn apply_transform(t: &str, input: Vec<Vec<Tok>>, cfg: &Config) -> Result<Vec<Vec<Tok>>, String> {
    let mut out = Vec::new();
    for toks in input {
        match t {
            "base64" => {
                let lit = literal(&toks).ok_or("base64 of a value with wildcards")?;
                let enc = base64::engine::general_purpose::STANDARD.encode(lit.as_bytes());
                out.push(enc.chars().map(Tok::Char).collect());
            }
            "base64offset" => {
                let lit = literal(&toks).ok_or("base64offset of a value with wildcards")?;
                out.extend(
                    base64_offsets(lit.as_bytes())
                        .into_iter()
                        .map(|s| s.chars().map(Tok::Char).collect()),
                );
            }
            "windash" => out.extend(windash(&toks)?),
            "expand" => out.extend(expand(&toks, cfg)?),
            _ => return Err(format!("unknown transformation {t}")),
        }
        if out.len() > MAX_EXPANSION {
            return Err(format!(
                "value expands to more than {MAX_EXPANSION} alternatives"
            ));
        }
    }
    Ok(out)
}

/// The three encodings of `data` at byte offsets 0, 1 and 2 inside a longer
/// base64 text, cut to the characters that do not depend on the neighbours
/// (the same cut pySigma and SigmaHQ tooling make).
pub(crate) fn base64_offsets(data: &[u8]) -> Vec<String> {
    let start = [0usize, 2, 3];
    let end_cut = [0usize, 3, 2];
    (0..3)
        .map(|i| {
            let mut buf = vec![b' '; i];
            buf.extend_from_slice(data);
            let enc = base64::engine::general_purpose::STANDARD.encode(&buf);
            let cut = end_cut[(data.len() + i) % 3];
            let end = enc.len().saturating_sub(cut);
            enc.get(start[i]..end).unwrap_or_default().to_string()
        })
        .collect()
}

const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// Every variant of the value with each `-` or `/` that starts a word
/// (after a non-word character, before a word character) replaced by each
/// dash Windows accepts.
fn windash(toks: &[Tok]) -> Result<Vec<Vec<Tok>>, String> {
    let is_word =
        |t: Option<&Tok>| matches!(t, Some(Tok::Char(c)) if c.is_alphanumeric() || *c == '_');
    let positions: Vec<usize> = (0..toks.len())
        .filter(|&i| {
            matches!(toks[i], Tok::Char('-') | Tok::Char('/'))
                && !is_word(if i == 0 { None } else { toks.get(i - 1) })
                && is_word(toks.get(i + 1))
        })
        .collect();
    if positions.len() > 3 {
        return Err("windash expands at most three dashes in one value".into());
    }
    let mut out = vec![toks.to_vec()];
    for &p in &positions {
        out = out
            .into_iter()
            .flat_map(|v| {
                DASHES.iter().map(move |d| {
                    let mut w = v.clone();
                    w[p] = Tok::Char(*d);
                    w
                })
            })
            .collect();
    }
    Ok(out)
}

/// Replaces `%name%` placeholders with each configured value.
fn expand(toks: &[Tok], cfg: &Config) -> Result<Vec<Vec<Tok>>, String> {
    let mut out: Vec<Vec<Tok>> = vec![Vec::new()];
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == Tok::Char('%') {
            let name_end = toks[i + 1..].iter().position(|t| *t == Tok::Char('%'));
            if let Some(len) = name_end {
                let name = literal(&toks[i + 1..i + 1 + len]).unwrap_or_default();
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    let values = cfg.placeholders.get(&name).ok_or_else(|| {
                        format!("placeholder %{name}% has no values in the configuration")
                    })?;
                    if values.is_empty() {
                        return Err(format!("placeholder %{name}% has an empty value list"));
                    }
                    out = out
                        .into_iter()
                        .flat_map(|prefix| {
                            values.iter().map(move |val| {
                                let mut w = prefix.clone();
                                w.extend(tokenize(val));
                                w
                            })
                        })
                        .collect();
                    if out.len() > MAX_EXPANSION {
                        return Err(format!(
                            "value expands to more than {MAX_EXPANSION} alternatives"
                        ));
                    }
                    i += len + 2;
                    continue;
                }
            }
        }
        for w in &mut out {
            w.push(toks[i].clone());
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::required_literal;

    #[test]
    fn regex_required_literals() {
        let lit = |p: &str| required_literal(p);
        assert_eq!(
            lit(".+:assumed-role/aws:.+").as_deref(),
            Some(":assumed-role/aws:")
        );
        assert_eq!(lit("^abc$").as_deref(), Some("abc"));
        assert_eq!(lit(".*x y.*").as_deref(), Some("x y"));
        for none in [
            "(?i)abc", "a|b", "a.c", r"abc\.*", "[a]", "ab?", "", ".*", r"a\$",
        ] {
            assert_eq!(lit(none), None, "{none}");
        }
    }
}
