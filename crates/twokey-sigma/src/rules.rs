//! Loading Sigma rule files into a [`RuleSet`] and matching events with it.

use std::collections::HashMap;

use yaml_serde::Value as Yaml;

use crate::config::Config;
use crate::correlation::{self, CorrelationDef};
use crate::detection::{self, Node};
use crate::json::{Event, JsonValue, NO_PATH_ID};

/// What a detection rule says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMeta {
    /// The Sigma `id` (a UUID); the `name`, or failing that the title, when
    /// the rule has none.
    pub id: String,
    /// The Sigma `name`, which correlation rules may refer to.
    pub name: Option<String>,
    /// The `title`.
    pub title: String,
    /// The `level` (`informational`, `low`, `medium`, `high`, `critical`);
    /// `medium` when the rule gives none.
    pub level: String,
    /// The `status` (`stable`, `test`, `experimental`, …), when given.
    pub status: Option<String>,
    /// The `description`, when given.
    pub description: Option<String>,
    /// The `tags` (ATT&CK techniques and the like).
    pub tags: Vec<String>,
    /// Where the rule was read from (a file name, as the caller gave it).
    pub source: String,
}

/// A rule the engine cannot run, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Where it was read from.
    pub source: String,
    /// Its id or title, when those could be read.
    pub rule: Option<String>,
    /// Why it cannot run.
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Some(r) => write!(f, "{}: rule {r}: {}", self.source, self.reason),
            None => write!(f, "{}: {}", self.source, self.reason),
        }
    }
}

/// A compiled detection rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its metadata.
    pub meta: RuleMeta,
    /// Whether a match is reported on its own; false for rules that only
    /// feed a correlation rule (Sigma's `generate: false`, the default).
    pub emit: bool,
    node: Node,
}

impl Rule {
    /// Whether this rule's detection matches the event.
    pub fn matches(&self, ev: &Event<'_>) -> bool {
        self.node.matches(ev)
    }
}

/// Reads rule files; [`RuleSetBuilder::build`] compiles them into a
/// [`RuleSet`].
pub struct RuleSetBuilder {
    cfg: Config,
    rules: Vec<Rule>,
    correlations: Vec<(String, Yaml)>,
    unsupported: Vec<Unsupported>,
}

impl RuleSetBuilder {
    /// Starts an empty set with this configuration.
    pub fn new(cfg: Config) -> Self {
        RuleSetBuilder {
            cfg,
            rules: Vec::new(),
            correlations: Vec::new(),
            unsupported: Vec::new(),
        }
    }

    /// Adds every YAML document of one file. Documents that cannot be run
    /// are recorded with the reason (see [`RuleSet::unsupported`]).
    pub fn add_yaml(&mut self, source: &str, text: &str) {
        let mut docs = Vec::new();
        for doc in yaml_serde::Deserializer::from_str(text) {
            match serde::Deserialize::deserialize(doc) {
                Ok(v) => docs.push(v),
                Err(e) => {
                    self.unsupported.push(Unsupported {
                        source: source.to_string(),
                        rule: None,
                        reason: format!("not valid YAML: {e}"),
                    });
                    return;
                }
            }
        }
        // A document holding only `action: global` etc. or nothing is skipped
        // by Sigma tools too; everything else must be a rule.
        for doc in docs {
            if matches!(doc, Yaml::Null) {
                continue;
            }
            self.add_doc(source, doc);
        }
    }

    fn add_doc(&mut self, source: &str, doc: Yaml) {
        let label = doc
            .get("id")
            .and_then(Yaml::as_str)
            .or_else(|| doc.get("title").and_then(Yaml::as_str))
            .map(str::to_string);
        let fail = |reason: String| Unsupported {
            source: source.to_string(),
            rule: label.clone(),
            reason,
        };
        if !matches!(doc, Yaml::Mapping(_)) {
            self.unsupported
                .push(fail("a rule must be a YAML mapping".into()));
            return;
        }
        if doc.get("correlation").is_some() {
            self.correlations.push((source.to_string(), doc));
            return;
        }
        let Some(detection) = doc.get("detection") else {
            self.unsupported
                .push(fail("has neither 'detection' nor 'correlation'".into()));
            return;
        };
        let meta = match read_meta(&doc, source) {
            Ok(m) => m,
            Err(e) => {
                self.unsupported.push(fail(e));
                return;
            }
        };
        if let Err(e) = check_logsource(&doc, &self.cfg) {
            self.unsupported.push(fail(e));
            return;
        }
        match detection::compile(detection, &self.cfg) {
            Ok(node) => self.rules.push(Rule {
                meta,
                emit: true,
                node,
            }),
            Err(e) => self.unsupported.push(fail(e)),
        }
    }

    /// Compiles the correlation rules and the index.
    pub fn build(mut self) -> RuleSet {
        let mut correlations = Vec::new();
        for (source, doc) in std::mem::take(&mut self.correlations) {
            let label = doc
                .get("id")
                .and_then(Yaml::as_str)
                .or_else(|| doc.get("title").and_then(Yaml::as_str))
                .map(str::to_string);
            let parsed = read_meta(&doc, &source)
                .and_then(|meta| correlation::parse(&doc, meta, &self.rules, &self.cfg));
            match parsed {
                Ok(c) => correlations.push(c),
                Err(reason) => self.unsupported.push(Unsupported {
                    source,
                    rule: label,
                    reason,
                }),
            }
        }
        for c in &correlations {
            if !c.generate {
                for &r in &c.rules {
                    self.rules[r].emit = false;
                }
            }
        }
        let mut ids = HashMap::new();
        for r in &mut self.rules {
            r.node.assign_ids(&mut ids);
        }
        let (guards, always) = build_guards(&self.rules, &ids);
        RuleSet {
            rules: self.rules,
            guards,
            always,
            correlations,
            unsupported: self.unsupported,
        }
    }
}

fn read_meta(doc: &Yaml, source: &str) -> Result<RuleMeta, String> {
    let s = |k: &str| doc.get(k).and_then(Yaml::as_str).map(str::to_string);
    let title = s("title").ok_or("rule has no title")?;
    let name = s("name");
    let id = s("id")
        .or_else(|| name.clone())
        .unwrap_or_else(|| title.clone());
    let tags = match doc.get("tags") {
        Some(Yaml::Sequence(t)) => t
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Ok(RuleMeta {
        id,
        name,
        title,
        level: s("level").unwrap_or_else(|| "medium".into()),
        status: s("status"),
        description: s("description"),
        tags,
        source: source.to_string(),
    })
}

fn check_logsource(doc: &Yaml, cfg: &Config) -> Result<(), String> {
    if cfg.logsources.is_empty() {
        return Ok(());
    }
    let ls = doc.get("logsource");
    let get = |k: &str| ls.and_then(|l| l.get(k)).and_then(Yaml::as_str);
    let (product, service) = (get("product"), get("service"));
    let ok = cfg.logsources.iter().any(|(p, s)| {
        product.is_none_or(|x| x.eq_ignore_ascii_case(p))
            && service.is_none_or(|x| x.eq_ignore_ascii_case(s))
            && (product.is_some() || service.is_some())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "logsource product={} service={} is not one this engine reads ({})",
            product.unwrap_or("-"),
            service.unwrap_or("-"),
            cfg.logsources
                .iter()
                .map(|(p, s)| format!("{p}/{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Compiled rules, ready to match events.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Rules indexed by a value one field must have (`eventName` for most).
    guards: Vec<Guard>,
    /// Rules that must be tried on every event.
    always: Vec<u32>,
    correlations: Vec<CorrelationDef>,
    unsupported: Vec<Unsupported>,
}

impl RuleSet {
    /// Compiles the rule files given as (source name, YAML text).
    pub fn from_sources<'s>(
        cfg: Config,
        files: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> RuleSet {
        let mut b = RuleSetBuilder::new(cfg);
        for (src, text) in files {
            b.add_yaml(src, text);
        }
        b.build()
    }

    /// The detection rules, in load order; match results index into this.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The correlation rules.
    pub fn correlations(&self) -> &[CorrelationDef] {
        &self.correlations
    }

    /// Rules that were read but cannot run, with the reasons.
    pub fn unsupported(&self) -> &[Unsupported] {
        &self.unsupported
    }

    /// Puts the indices of the rules that match `ev` into `out` (cleared
    /// first), in ascending order. Includes rules that only feed
    /// correlations; see [`Rule::emit`].
    pub fn matches(&self, ev: &Event<'_>, out: &mut Vec<usize>) {
        out.clear();
        for &i in &self.always {
            if self.rules[i as usize].node.matches(ev) {
                out.push(i as usize);
            }
        }
        let mut runs = usize::from(!out.is_empty());
        for g in &self.guards {
            let before = out.len();
            g.candidates(ev, &mut |i| {
                if self.rules[i as usize].node.matches(ev) {
                    out.push(i as usize);
                }
            });
            if out.len() > before {
                runs += 1;
            }
        }
        if runs > 1 {
            out.sort_unstable();
        }
    }
}

/// A dotted field path, split.
type Path = Box<[Box<str>]>;

/// Rules that can only match when one field has one of some values.
#[derive(Debug)]
struct Guard {
    path: Box<[Box<str>]>,
    /// The path's memo id (see [`Event::visit_cached`]).
    id: u32,
    /// Lower-cased value → rules requiring it.
    exact: HashMap<Box<[u8]>, Vec<u32>, FxBuild>,
    /// Lower-cased prefix → rules requiring a value that starts with it.
    prefixes: Vec<(Box<[u8]>, Vec<u32>)>,
    /// Every rule of this guard, for values the index cannot decide on
    /// (objects, arrays, paths that cross arrays), in ascending order.
    all: Vec<u32>,
}

impl Guard {
    /// Calls `f` with each rule of this guard that can match `ev`.
    #[inline]
    fn candidates(&self, ev: &Event<'_>, f: &mut dyn FnMut(u32)) {
        let value = if self.path.len() == 1 {
            ev.top(&self.path[0])
        } else {
            match ev.resolve_cached(self.id, &self.path) {
                Some(v) => v,
                None => {
                    // The path crosses an array: several values.
                    self.all.iter().for_each(|&i| f(i));
                    return;
                }
            }
        };
        let text = match value {
            // A missing or null field has no value equal to a literal.
            None | Some(JsonValue::Null) => return,
            Some(v @ (JsonValue::Object(_) | JsonValue::Array(_))) => {
                let _ = v;
                self.all.iter().for_each(|&i| f(i));
                return;
            }
            Some(v) => match v.scalar_text() {
                Some(t) => t,
                None => return,
            },
        };
        let mut buf = [0u8; 128];
        let lowered: String;
        let key: &[u8] = if text.len() <= buf.len() && text.is_ascii() {
            let b = &mut buf[..text.len()];
            b.copy_from_slice(text.as_bytes());
            b.make_ascii_lowercase();
            b
        } else {
            lowered = text.to_lowercase();
            lowered.as_bytes()
        };
        let exact = self.exact.get(key);
        if self.prefixes.is_empty() {
            if let Some(rs) = exact {
                rs.iter().for_each(|&i| f(i));
            }
            return;
        }
        // Rules in ascending order, each once.
        let mut picked: Vec<u32> = exact.cloned().unwrap_or_default();
        for (p, rs) in &self.prefixes {
            if key.starts_with(p) {
                picked.extend_from_slice(rs);
            }
        }
        picked.sort_unstable();
        picked.dedup();
        picked.into_iter().for_each(f);
    }
}

/// Picks for each rule the field whose required values index it best
/// (`eventName`, then other top-level fields, then nested ones); rules with
/// none go to the list tried on every event.
fn build_guards(rules: &[Rule], ids: &HashMap<Box<[Box<str>]>, u32>) -> (Vec<Guard>, Vec<u32>) {
    let mut guards: Vec<Guard> = Vec::new();
    let mut always = Vec::new();
    let event_name: Box<[Box<str>]> = Box::new(["eventName".into()]);
    for (i, r) in rules.iter().enumerate() {
        let i = i as u32;
        let mut paths = Vec::new();
        r.node.field_paths(&mut paths);
        let mut best: Option<(Path, Vec<detection::Lit>)> = None;
        let rank = |p: &[Box<str>]| (p != &*event_name, p.len());
        for p in paths {
            let Some(lits) = r.node.required_literals(&p) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((bp, bl)) => (rank(&p), lits.len()) < (rank(bp), bl.len()),
            };
            if better {
                best = Some((p, lits));
            }
        }
        let Some((path, lits)) = best else {
            always.push(i);
            continue;
        };
        let g = match guards.iter().position(|g| g.path == path) {
            Some(k) => &mut guards[k],
            None => {
                let id = ids.get(&path).copied().unwrap_or(NO_PATH_ID);
                guards.push(Guard {
                    path,
                    id,
                    exact: HashMap::default(),
                    prefixes: Vec::new(),
                    all: Vec::new(),
                });
                let last = guards.len() - 1;
                &mut guards[last]
            }
        };
        g.all.push(i);
        for l in lits {
            let slot = match l {
                detection::Lit::Exact(t) => g.exact.entry(t.into_bytes().into()).or_default(),
                detection::Lit::Prefix(t) => {
                    let t: Box<[u8]> = t.into_bytes().into();
                    match g.prefixes.iter().position(|(p, _)| *p == t) {
                        Some(k) => &mut g.prefixes[k].1,
                        None => {
                            g.prefixes.push((t, Vec::new()));
                            let last = g.prefixes.len() - 1;
                            &mut g.prefixes[last].1
                        }
                    }
                }
            };
            if slot.last() != Some(&i) {
                slot.push(i);
            }
        }
    }
    // eventName first: it is the field every record has at the top.
    guards.sort_by_key(|g| (*g.path != *event_name, g.path.len()));
    (guards, always)
}

/// FxHash (as in rustc): short keys, no need for DoS resistance since the
/// keys are rule values.
#[derive(Debug, Default, Clone, Copy)]
struct FxBuild;

impl std::hash::BuildHasher for FxBuild {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut chunks = bytes.chunks_exact(8);
        for c in chunks.by_ref() {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(a)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}
