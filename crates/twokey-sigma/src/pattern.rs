//! Sigma string values: wildcards, escapes, and the compiled matchers built
//! from them.

use aho_corasick::AhoCorasick;
use regex::Regex;

/// One element of a Sigma string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A literal character.
    Char(char),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Splits a Sigma string into literal characters and wildcards. A backslash
/// escapes `*`, `?` and `\`; before anything else it is a literal backslash,
/// as the Sigma specification says.
pub(crate) fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::One),
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push(Tok::Char(n));
                }
                _ => out.push(Tok::Char('\\')),
            },
            c => out.push(Tok::Char(c)),
        }
    }
    out
}

/// The literal text of tokens that hold no wildcard.
pub(crate) fn literal(toks: &[Tok]) -> Option<String> {
    toks.iter()
        .map(|t| match t {
            Tok::Char(c) => Some(*c),
            _ => None,
        })
        .collect()
}

/// A compiled string matcher. Case-insensitive unless built `cased`.
#[derive(Debug, Clone)]
pub(crate) enum StrPat {
    /// `*` alone: any value at all (including objects and arrays).
    Any,
    /// The whole value equals the text.
    Exact { text: Box<str>, cased: bool },
    /// The value starts with the text.
    Prefix { text: Box<str>, cased: bool },
    /// The value ends with the text.
    Suffix { text: Box<str>, cased: bool },
    /// The value contains the text.
    Contains { finder: Box<AhoCorasick> },
    /// Anything else: wildcards inside, or non-ASCII text matched without
    /// case, compiled to an anchored regular expression.
    Glob(Box<Regex>),
}

impl StrPat {
    /// Compiles tokens into the cheapest matcher that has their meaning.
    pub(crate) fn compile(toks: &[Tok], cased: bool) -> Result<StrPat, String> {
        let inner_start = toks.iter().take_while(|t| **t == Tok::Star).count();
        if inner_start == toks.len() && !toks.is_empty() {
            return Ok(StrPat::Any);
        }
        let inner_end = toks.len() - toks.iter().rev().take_while(|t| **t == Tok::Star).count();
        let core = &toks[inner_start..inner_end];
        let lead = inner_start > 0;
        let trail = inner_end < toks.len();
        if let Some(text) = literal(core) {
            // Plain ASCII case folding is exact for ASCII patterns; other
            // text needs Unicode folding, which the regex engine does.
            if cased || text.is_ascii() {
                let text_l: Box<str> = if cased {
                    text.into()
                } else {
                    text.to_ascii_lowercase().into()
                };
                return Ok(match (lead, trail) {
                    (false, false) => StrPat::Exact {
                        text: text_l,
                        cased,
                    },
                    (false, true) => StrPat::Prefix {
                        text: text_l,
                        cased,
                    },
                    (true, false) => StrPat::Suffix {
                        text: text_l,
                        cased,
                    },
                    (true, true) => StrPat::Contains {
                        finder: Box::new(
                            AhoCorasick::builder()
                                .ascii_case_insensitive(!cased)
                                .build([text_l.as_bytes()])
                                .map_err(|e| e.to_string())?,
                        ),
                    },
                });
            }
        }
        let mut re = String::from(if cased { "^(?s:" } else { "^(?si:" });
        for t in toks {
            match t {
                Tok::Char(c) => re.push_str(&regex::escape(&c.to_string())),
                Tok::Star => re.push_str(".*"),
                Tok::One => re.push('.'),
            }
        }
        re.push_str(")$");
        Regex::new(&re)
            .map(|r| StrPat::Glob(Box::new(r)))
            .map_err(|e| e.to_string())
    }

    /// Whether `s` matches.
    #[inline]
    pub(crate) fn is_match(&self, s: &str) -> bool {
        let h = s.as_bytes();
        match self {
            StrPat::Any => true,
            StrPat::Exact { text, cased } => {
                let p = text.as_bytes();
                if *cased {
                    h == p
                } else {
                    h.len() == p.len() && eq_lower(h, p)
                }
            }
            StrPat::Prefix { text, cased } => {
                let p = text.as_bytes();
                h.len() >= p.len()
                    && if *cased {
                        &h[..p.len()] == p
                    } else {
                        eq_lower(&h[..p.len()], p)
                    }
            }
            StrPat::Suffix { text, cased } => {
                let p = text.as_bytes();
                h.len() >= p.len()
                    && if *cased {
                        &h[h.len() - p.len()..] == p
                    } else {
                        eq_lower(&h[h.len() - p.len()..], p)
                    }
            }
            StrPat::Contains { finder } => finder.is_match(h),
            StrPat::Glob(re) => re.is_match(s),
        }
    }
}

/// `h` equals the already lower-cased ASCII pattern `p`, ignoring ASCII case.
#[inline]
fn eq_lower(h: &[u8], p: &[u8]) -> bool {
    h.iter().zip(p).all(|(a, b)| a.to_ascii_lowercase() == *b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str, cased: bool) -> StrPat {
        StrPat::compile(&tokenize(s), cased).unwrap()
    }

    #[test]
    fn plain_values_ignore_case_and_are_whole_value() {
        let p = pat("StopLogging", false);
        assert!(matches!(p, StrPat::Exact { .. }));
        assert!(p.is_match("stoplogging"));
        assert!(p.is_match("STOPLOGGING"));
        assert!(!p.is_match("StopLoggingX"));
        assert!(!p.is_match("Stop"));
    }

    #[test]
    fn cased_is_exact() {
        let p = pat("Stop", true);
        assert!(p.is_match("Stop"));
        assert!(!p.is_match("stop"));
    }

    #[test]
    fn wildcards_pick_the_cheap_form() {
        assert!(matches!(pat("abc*", false), StrPat::Prefix { .. }));
        assert!(matches!(pat("*abc", false), StrPat::Suffix { .. }));
        assert!(matches!(pat("*abc*", false), StrPat::Contains { .. }));
        assert!(matches!(pat("**", false), StrPat::Any));
        assert!(matches!(pat("a*c", false), StrPat::Glob(_)));
        assert!(pat("list*", false).is_match("ListBuckets"));
        assert!(pat("*Buckets", false).is_match("listbuckets"));
        assert!(pat("*STB*", false).is_match("ListBuckets"));
        assert!(pat("a*c", false).is_match("AxyC"));
        assert!(!pat("a*c", false).is_match("AxyCd"));
        assert!(pat("a?c", false).is_match("aéc"));
        assert!(!pat("a?c", false).is_match("ac"));
        assert!(pat("a*c", true).is_match("a\nc"));
    }

    #[test]
    fn escapes_make_wildcards_literal() {
        let p = pat(r"a\*b", false);
        assert!(p.is_match("a*b"));
        assert!(!p.is_match("axb"));
        assert!(pat(r"a\?", false).is_match("a?"));
        assert!(pat(r"c:\\x", false).is_match(r"c:\x"));
        // A backslash before another character stays a backslash.
        assert!(pat(r"c:\windows", false).is_match(r"C:\Windows"));
    }

    #[test]
    fn non_ascii_folds_case() {
        let p = pat("ÉTÉ", false);
        assert!(p.is_match("été"));
        assert!(!p.is_match("ete"));
    }

    #[test]
    fn regex_metacharacters_are_literal_in_globs() {
        let p = pat("a.b*(", false);
        assert!(p.is_match("A.Bxx("));
        assert!(!p.is_match("aXbxx("));
    }
}
