//! Keeping secrets out of pull request comments, and fitting plans into
//! GitHub's comment size limit.
//!
//! Plan output is redacted before it leaves the runner: values the operator
//! declared secret, assignments to secret-named attributes
//! (`password = "..."`, `token: ...`), well-known credential formats (AWS
//! access keys, GitHub/Slack tokens, private keys, JWTs) and long
//! high-entropy strings are replaced by `[REDACTED]`.

use std::sync::OnceLock;

use regex::Regex;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// GitHub refuses comments longer than 65,536 characters; stay under 65,535
/// bytes (bytes ≥ characters, so this is always safe).
pub const GITHUB_COMMENT_LIMIT: usize = 65_535;

fn patterns() -> &'static [Regex] {
    static P: OnceLock<Vec<Regex>> = OnceLock::new();
    P.get_or_init(|| {
        [
            // PEM private keys, whole block.
            r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
            // AWS access key ids.
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",
            // GitHub tokens.
            r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
            r"\bgithub_pat_[A-Za-z0-9_]{30,}\b",
            // Slack tokens.
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
            // JWTs.
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            // Credentials in URLs: scheme://user:password@host
            r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",
        ]
        .iter()
        .filter_map(|p| Regex::new(p).ok())
        .collect()
    })
}

fn assignment() -> Option<&'static Regex> {
    static A: OnceLock<Option<Regex>> = OnceLock::new();
    A.get_or_init(|| {
        // `password = "x"`, `"db_password": "x"`, `api_key: x`, `SECRET=x`
        // (optionally with a Terraform diff marker and `->` transitions).
        Regex::new(
            r#"(?i)(?P<k>"?[a-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential|auth)[a-z0-9_.-]*"?\s*[:=]\s*)(?P<v>"(?:[^"\\]|\\.)*"|[^\s,}\]]+)"#,
        )
        .ok()
    })
    .as_ref()
}

fn token_re() -> Option<&'static Regex> {
    static T: OnceLock<Option<Regex>> = OnceLock::new();
    T.get_or_init(|| Regex::new(r"[A-Za-z0-9+/=_-]{24,}").ok())
        .as_ref()
}

/// Shannon entropy of `s` in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / f64::from(n);
            -p * p.log2()
        })
        .sum()
}

/// Whether a token looks like a random secret: long, high entropy, with
/// upper- and lower-case letters and digits (hex digests, UUIDs and
/// identifiers do not qualify).
fn looks_random(tok: &str) -> bool {
    let upper = tok.bytes().any(|b| b.is_ascii_uppercase());
    let lower = tok.bytes().any(|b| b.is_ascii_lowercase());
    let digit = tok.bytes().any(|b| b.is_ascii_digit());
    upper && lower && digit && entropy(tok) >= 4.0
}

/// Redacts secrets in `text`. `known` are literal values that must never
/// appear (for instance secret variables the operator passes to Terraform);
/// empty strings and values shorter than 4 characters are ignored.
pub fn redact(text: &str, known: &[String]) -> String {
    let mut out = text.to_string();
    for k in known {
        if k.len() >= 4 {
            out = out.replace(k.as_str(), MASK);
        }
    }
    for re in patterns() {
        out = re.replace_all(&out, MASK).into_owned();
    }
    if let Some(a) = assignment() {
        out = a
            .replace_all(&out, |c: &regex::Captures<'_>| {
                let k = c.name("k").map(|m| m.as_str()).unwrap_or("");
                let v = c.name("v").map(|m| m.as_str()).unwrap_or("");
                // Terraform's own markers stay readable.
                if v.starts_with("(sensitive")
                    || v == "(known"
                    || v == "null"
                    || v == format!("\"{MASK}\"")
                    || v == MASK
                {
                    format!("{k}{v}")
                } else if v.starts_with('"') {
                    format!("{k}\"{MASK}\"")
                } else {
                    format!("{k}{MASK}")
                }
            })
            .into_owned();
    }
    if let Some(t) = token_re() {
        out = t
            .replace_all(&out, |c: &regex::Captures<'_>| {
                let tok = c.get(0).map(|m| m.as_str()).unwrap_or("");
                if looks_random(tok) {
                    MASK.to_string()
                } else {
                    tok.to_string()
                }
            })
            .into_owned();
    }
    out
}

/// Whether `text` still contains anything [`redact`] would change.
pub fn contains_secret(text: &str, known: &[String]) -> bool {
    redact(text, known) != text
}

/// Splits `body` into comments of at most `limit` bytes each, every one
/// starting with `header` and a part counter and wrapping its share of the
/// body in a code fence. Lines are kept whole unless a single line is longer
/// than a comment can hold.
pub fn split_comment(header: &str, body: &str, limit: usize) -> Vec<String> {
    // Room for "header (part 99/99)\n```\n" + "\n```\n".
    let overhead = header.len() + 40;
    let budget = limit.saturating_sub(overhead).max(64);
    let mut chunks: Vec<String> = Vec::new();
    let mut cur = String::new();
    for line in body.split_inclusive('\n') {
        let mut line = line;
        while !line.is_empty() {
            let room = budget - cur.len();
            if line.len() <= room {
                cur.push_str(line);
                break;
            }
            if !cur.is_empty() && line.len() <= budget {
                chunks.push(std::mem::take(&mut cur));
                continue;
            }
            // A line longer than the room left: cut at a char boundary.
            let mut cut = room;
            while cut > 0 && !line.is_char_boundary(cut) {
                cut -= 1;
            }
            if cut == 0 {
                chunks.push(std::mem::take(&mut cur));
                continue;
            }
            cur.push_str(&line[..cut]);
            chunks.push(std::mem::take(&mut cur));
            line = &line[cut..];
        }
    }
    if !cur.is_empty() || chunks.is_empty() {
        chunks.push(cur);
    }
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let title = if n > 1 {
                format!("{header} (part {}/{n})", i + 1)
            } else {
                header.to_string()
            };
            let nl = if c.ends_with('\n') { "" } else { "\n" };
            format!("{title}\n```\n{c}{nl}```\n")
        })
        .collect()
}
