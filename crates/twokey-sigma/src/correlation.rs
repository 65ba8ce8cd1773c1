//! Sigma correlation rules: `event_count`, `value_count`, `temporal` and
//! `temporal_ordered` over a sliding time window.
//!
//! The window is measured in event time (CloudTrail `eventTime`), not wall
//! time, so a scan of old logs finds what a live watch would have found.
//! A correlation fires when its condition becomes true for a group; the
//! group's window is then cleared, so one burst raises one finding. Records
//! without a readable `eventTime` do not take part in correlations.

use std::collections::{HashMap, HashSet, VecDeque};

use yaml_serde::Value as Yaml;

use crate::config::Config;
use crate::detection::FieldSrc;
use crate::json::{Event, JsonValue};
use crate::rules::{Rule, RuleMeta};

/// The kind of a correlation rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationKind {
    /// Count matching events per group.
    EventCount,
    /// Count distinct values of a field per group.
    ValueCount,
    /// All referenced rules matched within the window, in any order.
    Temporal,
    /// All referenced rules matched within the window, in the listed order.
    TemporalOrdered,
}

/// A threshold test (`gt: 10`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// More than.
    Gt(u64),
    /// At least.
    Gte(u64),
    /// Exactly (checked as events arrive).
    Eq(u64),
}

impl Threshold {
    fn holds(&self, n: u64) -> bool {
        match *self {
            Threshold::Gt(x) => n > x,
            Threshold::Gte(x) => n >= x,
            Threshold::Eq(x) => n == x,
        }
    }
}

/// A compiled correlation rule.
#[derive(Debug, Clone)]
pub struct CorrelationDef {
    /// Its metadata.
    pub meta: RuleMeta,
    /// Its kind.
    pub kind: CorrelationKind,
    /// Indices (into [`crate::RuleSet::rules`]) of the rules it counts, in
    /// the order the rule lists them.
    pub rules: Vec<usize>,
    /// The window length in seconds.
    pub timespan_secs: i64,
    /// Fields whose values split events into groups, by Sigma name.
    pub group_by: Vec<String>,
    group_src: Vec<FieldSrc>,
    /// The condition; for temporal kinds it counts distinct rules and
    /// defaults to all of them.
    pub threshold: Threshold,
    /// For `value_count`: the field whose distinct values are counted.
    pub value_field: Option<String>,
    value_src: Option<FieldSrc>,
    /// Whether the referenced rules also report their own matches.
    pub generate: bool,
}

pub(crate) fn parse(
    doc: &Yaml,
    meta: RuleMeta,
    rules: &[Rule],
    cfg: &Config,
) -> Result<CorrelationDef, String> {
    let c = doc.get("correlation").ok_or("no correlation section")?;
    let kind = match c.get("type").and_then(Yaml::as_str) {
        Some("event_count") => CorrelationKind::EventCount,
        Some("value_count") => CorrelationKind::ValueCount,
        Some("temporal") => CorrelationKind::Temporal,
        Some("temporal_ordered") => CorrelationKind::TemporalOrdered,
        Some(other) => return Err(format!("unknown correlation type {other:?}")),
        None => return Err("correlation has no type".into()),
    };
    let refs: Vec<&str> = match c.get("rules") {
        Some(Yaml::Sequence(s)) => s.iter().filter_map(Yaml::as_str).collect(),
        Some(Yaml::String(s)) => vec![s.as_str()],
        _ => return Err("correlation has no 'rules' list".into()),
    };
    if refs.is_empty() {
        return Err("correlation 'rules' is empty".into());
    }
    let mut idx = Vec::new();
    for r in &refs {
        let found = rules
            .iter()
            .position(|x| x.meta.id == *r || x.meta.name.as_deref() == Some(r))
            .ok_or_else(|| {
                format!("correlation refers to rule {r:?}, which is not loaded or cannot run")
            })?;
        idx.push(found);
    }
    if c.get("aliases").is_some() {
        return Err("correlation 'aliases' are not supported".into());
    }
    let timespan = c
        .get("timespan")
        .or_else(|| c.get("timeframe"))
        .and_then(Yaml::as_str)
        .ok_or("correlation has no timespan")?;
    let timespan_secs = parse_timespan(timespan)?;
    let group_by: Vec<String> = match c.get("group-by") {
        Some(Yaml::Sequence(s)) => s
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Yaml::String(s)) => vec![s.clone()],
        None => Vec::new(),
        _ => return Err("group-by must be a list of field names".into()),
    };
    let group_src = group_by.iter().map(|g| FieldSrc::resolve(g, cfg)).collect();
    let (threshold, value_field) = match c.get("condition") {
        None if matches!(
            kind,
            CorrelationKind::Temporal | CorrelationKind::TemporalOrdered
        ) =>
        {
            (Threshold::Gte(idx.len() as u64), None)
        }
        None => return Err("correlation has no condition".into()),
        Some(cond) => read_condition(cond)?,
    };
    if kind == CorrelationKind::ValueCount && value_field.is_none() {
        return Err("value_count needs 'field' in its condition".into());
    }
    let value_src = value_field.as_deref().map(|f| FieldSrc::resolve(f, cfg));
    let generate = match doc.get("generate").or_else(|| c.get("generate")) {
        Some(Yaml::Bool(b)) => *b,
        None => false,
        _ => return Err("generate must be true or false".into()),
    };
    Ok(CorrelationDef {
        meta,
        kind,
        rules: idx,
        timespan_secs,
        group_by,
        group_src,
        threshold,
        value_field,
        value_src,
        generate,
    })
}

fn read_condition(cond: &Yaml) -> Result<(Threshold, Option<String>), String> {
    let Yaml::Mapping(m) = cond else {
        return Err("correlation condition must be a mapping such as {gte: 10}".into());
    };
    let mut th = None;
    let mut field = None;
    for (k, v) in m {
        let k = k.as_str().ok_or("condition key is not a string")?;
        if k == "field" {
            field = Some(
                v.as_str()
                    .ok_or("condition field is not a string")?
                    .to_string(),
            );
            continue;
        }
        let n = v
            .as_u64()
            .ok_or_else(|| format!("condition {k} needs a whole number"))?;
        th = Some(match k {
            "gt" => Threshold::Gt(n),
            "gte" => Threshold::Gte(n),
            "eq" => Threshold::Eq(n),
            "lt" | "lte" => {
                return Err(format!(
                    "condition '{k}' can only be decided when a window closes; \
                     streaming correlation supports gt, gte and eq"
                ))
            }
            other => return Err(format!("unknown condition operator {other:?}")),
        });
    }
    Ok((th.ok_or("condition has no gt/gte/eq")?, field))
}

/// Parses a Sigma timespan such as `30s`, `10m`, `1h`, `2d`.
pub fn parse_timespan(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("bad timespan {s:?}"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(format!("bad timespan unit in {s:?} (use s, m, h, d or w)")),
    };
    if n <= 0 {
        return Err(format!("timespan {s:?} must be positive"));
    }
    Ok(n * mult)
}

/// Parses an RFC 3339 timestamp (`2019-01-01T00:00:00Z`, optional
/// fraction, `Z` or `±hh:mm`) into milliseconds since the Unix epoch.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = s.get(start..i)?;
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = digits.parse().ok()?;
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() => {
            let sign = if c == b'+' { 1 } else { -1 };
            sign * (num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?)
        }
        None => 0,
        _ => return None,
    };
    // Days from civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(((days * 86400 + h * 3600 + mi * 60 + se) - offset_min * 60) * 1000 + ms)
}

/// A correlation rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationHit {
    /// Index into [`crate::RuleSet::correlations`].
    pub correlation: usize,
    /// The group's field values, in `group-by` order.
    pub group: Vec<(String, String)>,
    /// The number that met the condition (events, distinct values or
    /// distinct rules).
    pub count: u64,
    /// Event time of the first event in the window (ms since the epoch).
    pub first_ms: i64,
    /// Event time of the event that completed the condition.
    pub last_ms: i64,
}

#[derive(Default)]
struct Window {
    /// (event time ms, rule position in the correlation, counted value)
    items: VecDeque<(i64, usize, String)>,
}

/// Runs correlation rules over a stream of events. Holds per-group windows.
pub struct Correlator {
    windows: HashMap<(usize, Vec<String>), Window>,
}

impl Default for Correlator {
    fn default() -> Self {
        Self::new()
    }
}

impl Correlator {
    /// An empty state.
    pub fn new() -> Self {
        Correlator {
            windows: HashMap::new(),
        }
    }

    /// Feeds one event with the detection rules it matched (as returned by
    /// [`crate::RuleSet::matches`]); returns the correlations that fired.
    pub fn observe(
        &mut self,
        set: &crate::RuleSet,
        ev: &Event<'_>,
        matched: &[usize],
    ) -> Vec<CorrelationHit> {
        let mut hits = Vec::new();
        if matched.is_empty() || set.correlations().is_empty() {
            return hits;
        }
        let Some(t) = event_time(ev) else {
            return hits;
        };
        for (ci, c) in set.correlations().iter().enumerate() {
            let positions: Vec<usize> = c
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| matched.contains(r))
                .map(|(p, _)| p)
                .collect();
            if positions.is_empty() {
                continue;
            }
            let group: Vec<String> = c
                .group_src
                .iter()
                .map(|g| {
                    g.texts(ev)
                        .first()
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                })
                .collect();
            let value = match &c.value_src {
                Some(v) => match v.texts(ev).first() {
                    Some(s) => s.to_string(),
                    // value_count counts values; an event without one adds nothing.
                    None => continue,
                },
                None => String::new(),
            };
            let span_ms = c.timespan_secs * 1000;
            let w = self.windows.entry((ci, group.clone())).or_default();
            for p in positions {
                let at = w.items.partition_point(|(x, _, _)| *x <= t);
                w.items.insert(at, (t, p, value.clone()));
            }
            let newest = w.items.back().map(|x| x.0).unwrap_or(t);
            while w.items.front().is_some_and(|x| x.0 < newest - span_ms) {
                w.items.pop_front();
            }
            let count = match c.kind {
                CorrelationKind::EventCount => w.items.len() as u64,
                CorrelationKind::ValueCount => w
                    .items
                    .iter()
                    .map(|x| x.2.as_str())
                    .collect::<HashSet<_>>()
                    .len() as u64,
                CorrelationKind::Temporal => {
                    w.items.iter().map(|x| x.1).collect::<HashSet<_>>().len() as u64
                }
                CorrelationKind::TemporalOrdered => {
                    ordered_prefix(&w.items, c.rules.len(), span_ms)
                }
            };
            if c.threshold.holds(count) {
                hits.push(CorrelationHit {
                    correlation: ci,
                    group: c.group_by.iter().cloned().zip(group).collect(),
                    count,
                    first_ms: w.items.front().map(|x| x.0).unwrap_or(t),
                    last_ms: t,
                });
                w.items.clear();
            }
        }
        hits
    }
}

/// Length of the longest prefix of the rule sequence 0, 1, 2, … found in
/// time order within one span.
fn ordered_prefix(items: &VecDeque<(i64, usize, String)>, n: usize, span_ms: i64) -> u64 {
    let mut best = 0;
    for (i, (t0, p0, _)) in items.iter().enumerate() {
        if *p0 != 0 {
            continue;
        }
        let mut want = 1;
        for (t, p, _) in items.iter().skip(i + 1) {
            if *t > t0 + span_ms {
                break;
            }
            if *p == want {
                want += 1;
                if want == n {
                    break;
                }
            }
        }
        best = best.max(want);
    }
    best as u64
}

/// The record's `eventTime` in ms since the epoch.
pub fn event_time(ev: &Event<'_>) -> Option<i64> {
    match ev.top("eventTime")? {
        JsonValue::String(s) => parse_time_ms(&s.decode()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time_ms("2019-01-01T00:00:00Z"),
            Some(1_546_300_800_000)
        );
        assert_eq!(
            parse_time_ms("2019-01-01T00:00:01.5Z"),
            Some(1_546_300_801_500)
        );
        assert_eq!(
            parse_time_ms("2019-01-01T01:00:00+01:00"),
            Some(1_546_300_800_000)
        );
        assert_eq!(parse_time_ms("2019-13-01T00:00:00Z"), None);
        assert_eq!(parse_time_ms("yesterday"), None);
    }

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("30m"), Ok(1800));
        assert_eq!(parse_timespan("1h"), Ok(3600));
        assert!(parse_timespan("5y").is_err());
        assert!(parse_timespan("m").is_err());
    }
}
