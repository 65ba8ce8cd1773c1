//! The condition operators of the IAM reference
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>)
//! and their evaluation against a context that may not know every key.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use ipnet::IpNet;

use crate::context::{Context, Lookup};
use crate::pattern::{arn_like, glob, literal, substitute, Substituted};

/// The base operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Null,
}

const BASES: &[(&str, Base)] = &[
    ("StringEquals", Base::StringEquals),
    ("StringNotEquals", Base::StringNotEquals),
    ("StringEqualsIgnoreCase", Base::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Base::StringNotEqualsIgnoreCase),
    ("StringLike", Base::StringLike),
    ("StringNotLike", Base::StringNotLike),
    ("NumericEquals", Base::NumericEquals),
    ("NumericNotEquals", Base::NumericNotEquals),
    ("NumericLessThan", Base::NumericLessThan),
    ("NumericLessThanEquals", Base::NumericLessThanEquals),
    ("NumericGreaterThan", Base::NumericGreaterThan),
    ("NumericGreaterThanEquals", Base::NumericGreaterThanEquals),
    ("DateEquals", Base::DateEquals),
    ("DateNotEquals", Base::DateNotEquals),
    ("DateLessThan", Base::DateLessThan),
    ("DateLessThanEquals", Base::DateLessThanEquals),
    ("DateGreaterThan", Base::DateGreaterThan),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals),
    ("Bool", Base::Bool),
    ("BinaryEquals", Base::BinaryEquals),
    ("IpAddress", Base::IpAddress),
    ("NotIpAddress", Base::NotIpAddress),
    ("ArnEquals", Base::ArnEquals),
    ("ArnNotEquals", Base::ArnNotEquals),
    ("ArnLike", Base::ArnLike),
    ("ArnNotLike", Base::ArnNotLike),
    ("Null", Base::Null),
];

impl Base {
    fn name(self) -> &'static str {
        BASES
            .iter()
            .find(|(_, b)| *b == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// The negated operators match when the key is absent.
    fn negated(self) -> bool {
        use Base::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// Operators whose values may hold policy variables.
    fn takes_variables(self) -> bool {
        use Base::*;
        matches!(
            self,
            StringEquals
                | StringNotEquals
                | StringEqualsIgnoreCase
                | StringNotEqualsIgnoreCase
                | StringLike
                | StringNotLike
                | ArnEquals
                | ArnNotEquals
                | ArnLike
                | ArnNotLike
        )
    }
}

/// `ForAllValues:` / `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SetQualifier {
    /// Every value of the key must match (true when the key is absent).
    ForAllValues,
    /// Some value of the key must match (false when the key is absent).
    ForAnyValue,
}

/// A condition operator: `[ForAllValues:|ForAnyValue:]Base[IfExists]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operator {
    /// The set qualifier, if any.
    pub set: Option<SetQualifier>,
    /// The operator proper.
    pub base: Base,
    /// `...IfExists`: true when the key is absent.
    pub if_exists: bool,
}

impl Operator {
    /// Parses an operator name; the error says what is wrong with it.
    pub fn parse(name: &str) -> Result<Operator, String> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else {
            (None, name)
        };
        let (rest, if_exists) = match rest.strip_suffix("IfExists") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let base = BASES
            .iter()
            .find(|(n, _)| *n == rest)
            .map(|(_, b)| *b)
            .ok_or_else(|| format!("unknown condition operator {name:?}"))?;
        if base == Base::Null && (if_exists || set.is_some()) {
            return Err(format!("{name:?}: Null takes no IfExists or set qualifier"));
        }
        Ok(Operator {
            set,
            base,
            if_exists,
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            None => {}
        }
        f.write_str(self.base.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

/// Three-valued result of one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// Holds.
    Yes,
    /// Does not hold.
    No,
    /// Depends on context that is not known.
    Unknown,
}

impl From<bool> for Truth {
    fn from(b: bool) -> Self {
        if b {
            Truth::Yes
        } else {
            Truth::No
        }
    }
}

/// Operators that expand `*` and `?` in their values.
fn wildcards(base: Base) -> bool {
    use Base::*;
    matches!(
        base,
        StringLike | StringNotLike | ArnEquals | ArnNotEquals | ArnLike | ArnNotLike
    )
}

/// Evaluates `op key values` against `ctx`.
pub fn evaluate(op: Operator, key: &str, values: &[String], ctx: &Context) -> Truth {
    let found = match ctx.lookup(key) {
        Lookup::Unknown => return Truth::Unknown,
        Lookup::Known(v) => v,
    };
    if op.base == Base::Null {
        let absent = found.is_none();
        return values
            .iter()
            .any(|v| v.eq_ignore_ascii_case(&absent.to_string()))
            .into();
    }
    let Some(found) = found else {
        return match op.set {
            Some(SetQualifier::ForAllValues) => Truth::Yes,
            Some(SetQualifier::ForAnyValue) => Truth::No,
            None => (op.if_exists || op.base.negated()).into(),
        };
    };
    // Substitute policy variables in the condition's values.
    let mut pats = Vec::with_capacity(values.len());
    for v in values {
        if !op.base.takes_variables() {
            pats.push(v.clone());
            continue;
        }
        match substitute(v, ctx) {
            Substituted::Text(t) if wildcards(op.base) => pats.push(t),
            Substituted::Text(t) => pats.push(literal(&t)),
            Substituted::Missing => {}
            Substituted::Unknown(_) => return Truth::Unknown,
        }
    }
    let each = |cv: &str| one(op.base, cv, &pats);
    let got = found.values();
    match op.set {
        Some(SetQualifier::ForAllValues) => got.iter().all(|c| each(c)),
        Some(SetQualifier::ForAnyValue) => got.iter().any(|c| each(c)),
        None if op.base.negated() => got.iter().all(|c| each(c)),
        None => got.iter().any(|c| each(c)),
    }
    .into()
}

/// One context value against the condition's values: a positive operator
/// holds when some value matches; a negated one when none of the values
/// matches its positive form.
fn one(base: Base, cv: &str, pats: &[String]) -> bool {
    use Base::*;
    let any = |f: &dyn Fn(&str) -> bool| pats.iter().any(|p| f(p));
    match base {
        StringEquals => any(&|p| p == cv),
        StringNotEquals => !any(&|p| p == cv),
        StringEqualsIgnoreCase => any(&|p| p.to_lowercase() == cv.to_lowercase()),
        StringNotEqualsIgnoreCase => !any(&|p| p.to_lowercase() == cv.to_lowercase()),
        StringLike => any(&|p| glob(p, cv, false)),
        StringNotLike => !any(&|p| glob(p, cv, false)),
        NumericEquals => num(cv, pats, |a, b| a == b),
        NumericNotEquals => !num(cv, pats, |a, b| a == b),
        NumericLessThan => num(cv, pats, |a, b| a < b),
        NumericLessThanEquals => num(cv, pats, |a, b| a <= b),
        NumericGreaterThan => num(cv, pats, |a, b| a > b),
        NumericGreaterThanEquals => num(cv, pats, |a, b| a >= b),
        DateEquals => date(cv, pats, |a, b| a == b),
        DateNotEquals => !date(cv, pats, |a, b| a == b),
        DateLessThan => date(cv, pats, |a, b| a < b),
        DateLessThanEquals => date(cv, pats, |a, b| a <= b),
        DateGreaterThan => date(cv, pats, |a, b| a > b),
        DateGreaterThanEquals => date(cv, pats, |a, b| a >= b),
        Bool => any(&|p| p.eq_ignore_ascii_case(cv)),
        BinaryEquals => any(&|p| p == cv),
        IpAddress => ip(cv, pats),
        NotIpAddress => !ip(cv, pats),
        ArnEquals | ArnLike => any(&|p| arn_like(p, cv)),
        ArnNotEquals | ArnNotLike => !any(&|p| arn_like(p, cv)),
        Null => false,
    }
}

fn num(cv: &str, pats: &[String], cmp: impl Fn(f64, f64) -> bool) -> bool {
    let Ok(c) = cv.trim().parse::<f64>() else {
        return false;
    };
    pats.iter()
        .filter_map(|p| p.trim().parse::<f64>().ok())
        .any(|p| cmp(c, p))
}

fn date(cv: &str, pats: &[String], cmp: impl Fn(i64, i64) -> bool) -> bool {
    let Some(c) = parse_date(cv) else {
        return false;
    };
    pats.iter().filter_map(|p| parse_date(p)).any(|p| cmp(c, p))
}

/// A date as milliseconds since the epoch: RFC 3339 / ISO 8601 date-times,
/// plain dates, or epoch seconds.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return n.checked_mul(1000);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.fZ",
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%MZ",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&t).timestamp_millis());
        }
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(
        Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?)
            .timestamp_millis(),
    )
}

fn ip(cv: &str, pats: &[String]) -> bool {
    let Ok(addr) = cv.trim().parse::<IpAddr>() else {
        return false;
    };
    pats.iter().any(|p| {
        let p = p.trim();
        match p.parse::<IpNet>() {
            Ok(net) => net.contains(&addr),
            Err(_) => p.parse::<IpAddr>().is_ok_and(|a| a == addr),
        }
    })
}
