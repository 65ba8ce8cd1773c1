//! Wildcards (`*`, `?`) and policy variables (`${aws:username}`,
//! `${*}` `${?}` `${$}`, `${key, 'default'}`).

use crate::context::{Context, Lookup};

/// `${*}` after substitution: a literal `*` that [`glob`] does not expand.
pub const LITERAL_STAR: char = '\u{E000}';
/// `${?}` after substitution: a literal `?`.
pub const LITERAL_QUESTION: char = '\u{E001}';

/// A substituted pattern with its escaped wildcards back as plain
/// characters (for the operators that do not expand wildcards).
pub fn literal(s: &str) -> String {
    s.replace(LITERAL_STAR, "*").replace(LITERAL_QUESTION, "?")
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and
/// `?` any one character. `fold` compares ASCII case-insensitively (actions).
pub fn glob(pattern: &str, text: &str, fold: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        let a = match a {
            LITERAL_STAR => '*',
            LITERAL_QUESTION => '?',
            a => a,
        };
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches an ARN against an ARN pattern segment by segment (partition,
/// service, region, account, resource), so a wildcard in one segment never
/// spans into the next; the resource segment keeps its own `:` and `/`.
/// A pattern without six segments is matched as a whole (`*`).
pub fn arn_like(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    if p.len() != 6 || a.len() != 6 {
        return glob(pattern, arn, false);
    }
    p.iter().zip(&a).all(|(p, a)| glob(p, a, false))
}

/// A pattern after substituting its policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Substituted {
    /// Every variable had a value (or none was used).
    Text(String),
    /// A variable's key is absent from the context and has no default: the
    /// element cannot match.
    Missing,
    /// A variable's key is unknown: the answer depends on it.
    Unknown(String),
}

/// Substitutes `${...}` in `pattern` from `ctx`. `${*}`, `${?}`, `${$}` stand
/// for the literal characters. Keys absent from the context take the
/// `${key, 'default'}` default if there is one.
pub fn substitute(pattern: &str, ctx: &Context) -> Substituted {
    if !pattern.contains("${") {
        return Substituted::Text(pattern.to_string());
    }
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Substituted::Text(out);
        };
        let inner = &after[..end];
        rest = &after[end + 1..];
        match inner {
            "*" => out.push(LITERAL_STAR),
            "?" => out.push(LITERAL_QUESTION),
            "$" => out.push('$'),
            _ => {
                let (key, default) = split_default(inner);
                match ctx.lookup(key) {
                    Lookup::Unknown => return Substituted::Unknown(key.to_string()),
                    Lookup::Known(Some(v)) => match v.single() {
                        Some(s) => out.push_str(s),
                        None => return Substituted::Missing,
                    },
                    Lookup::Known(None) => match default {
                        Some(d) => out.push_str(d),
                        None => return Substituted::Missing,
                    },
                }
            }
        }
    }
    out.push_str(rest);
    Substituted::Text(out)
}

fn split_default(inner: &str) -> (&str, Option<&str>) {
    match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .unwrap_or(d);
            (k.trim(), Some(d))
        }
        None => (inner.trim(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("s3:Get*", "s3:getobject", true));
        assert!(!glob("s3:Get*", "s3:getobject", false));
        assert!(glob("a?c*", "abcdef", false));
        assert!(!glob("a?c", "ac", false));
        assert!(glob("*", "", false));
        assert!(glob("*a*b", "xxaxxb", false));
        assert!(!glob("*a*b", "xxaxxbc", false));
    }

    #[test]
    fn arns_match_by_segment() {
        assert!(arn_like(
            "arn:aws:s3:::bucket/*",
            "arn:aws:s3:::bucket/a/b:c"
        ));
        assert!(arn_like("arn:aws:iam::*:role/x", "arn:aws:iam::1:role/x"));
        assert!(arn_like("*", "anything"));
    }
}
#[cfg(test)]
mod escape_tests {
    use super::*;
    #[test]
    fn escapes_are_literal() {
        let ctx = Context::new();
        let s = substitute("a/${*}l${?}${$}", &ctx);
        let Substituted::Text(t) = s else {
            panic!("{s:?}")
        };
        assert!(glob(&t, "a/*l?$", false), "{t:?}");
        assert!(!glob(&t, "a/xlx$", false), "{t:?}");
        assert!(arn_like(
            &format!("arn:aws:s3:::{t}"),
            "arn:aws:s3:::a/*l?$"
        ));
    }
}
