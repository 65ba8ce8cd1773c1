//! The `condition` expression of a Sigma detection.
//!
//! Grammar (lowest precedence first): `or`, `and`, `not`, then atoms: a
//! search identifier, `( expr )`, `1 of PATTERN`, `all of PATTERN`, with
//! `them` standing for every identifier. Patterns may use `*` wildcards.

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// Both sides hold.
    And(Box<Cond>, Box<Cond>),
    /// Either side holds.
    Or(Box<Cond>, Box<Cond>),
    /// The inner condition does not hold.
    Not(Box<Cond>),
    /// A search identifier by name.
    Ident(String),
    /// `1 of X` (`any`=true) or `all of X`; `X` is a pattern or `them`.
    Of {
        /// `1 of` when true, `all of` when false.
        any: bool,
        /// The identifier pattern, or `them`.
        pattern: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    And,
    Or,
    Not,
    OneOf,
    AllOf,
    Word(String),
    Pipe,
}

fn lex(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        match c {
            '(' => {
                chars.next();
                out.push(Token::LParen);
            }
            ')' => {
                chars.next();
                out.push(Token::RParen);
            }
            '|' => {
                chars.next();
                out.push(Token::Pipe);
            }
            _ => {
                let mut end = i;
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_whitespace() || d == '(' || d == ')' || d == '|' {
                        break;
                    }
                    end = j + d.len_utf8();
                    chars.next();
                }
                let w = &s[i..end];
                out.push(match w.to_ascii_lowercase().as_str() {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    _ => Token::Word(w.to_string()),
                });
            }
        }
    }
    // Fold "1 of" / "any of" / "all of" into single tokens.
    let mut folded = Vec::with_capacity(out.len());
    let mut it = out.into_iter().peekable();
    while let Some(t) = it.next() {
        if let Token::Word(w) = &t {
            let q = w.to_ascii_lowercase();
            if matches!(q.as_str(), "1" | "any" | "all")
                && matches!(it.peek(), Some(Token::Word(o)) if o.eq_ignore_ascii_case("of"))
            {
                it.next();
                folded.push(if q == "all" {
                    Token::AllOf
                } else {
                    Token::OneOf
                });
                continue;
            }
        }
        folded.push(t);
    }
    Ok(folded)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: u32,
}

/// Nesting (parentheses, `not`) deeper than this is refused rather than
/// risking the stack on a hostile rule.
const MAX_NESTING: u32 = 64;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            let right = self.and()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut left = self.not()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            let right = self.not()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Cond, String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!("condition nests deeper than {MAX_NESTING} levels"));
        }
        let r = if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            self.not().map(|c| Cond::Not(Box::new(c)))
        } else {
            self.atom()
        };
        self.depth -= 1;
        r
    }

    fn atom(&mut self) -> Result<Cond, String> {
        match self.next() {
            Some(Token::LParen) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::RParen) => Ok(inner),
                    _ => Err("missing ')'".into()),
                }
            }
            Some(t @ (Token::OneOf | Token::AllOf)) => match self.next() {
                Some(Token::Word(pattern)) => Ok(Cond::Of {
                    any: t == Token::OneOf,
                    pattern,
                }),
                _ => Err("'of' must be followed by a pattern or 'them'".into()),
            },
            Some(Token::Word(w)) => {
                if w.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!(
                        "'{w} of' is not supported: only '1 of' and 'all of' are Sigma"
                    ));
                }
                Ok(Cond::Ident(w))
            }
            Some(Token::Pipe) => Err(
                "an aggregation ('| count()', '| near') is not a detection condition: \
                 express it as a Sigma correlation rule"
                    .into(),
            ),
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("condition ends too early".into()),
        }
    }
}

/// Parses one condition string.
pub fn parse(s: &str) -> Result<Cond, String> {
    let toks = lex(s)?;
    if toks.contains(&Token::Pipe) {
        return Err(
            "an aggregation ('| count()', '| near') is not a detection condition: \
             express it as a Sigma correlation rule"
                .into(),
        );
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?}", p.toks[p.pos]));
    }
    Ok(c)
}

/// Whether the identifier `name` matches `pattern` (`*` wildcards).
pub fn ident_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Box<Cond> {
        Box::new(Cond::Ident(s.into()))
    }

    #[test]
    fn precedence_not_and_or() {
        assert_eq!(
            parse("a or not b and c").unwrap(),
            Cond::Or(
                id("a"),
                Box::new(Cond::And(Box::new(Cond::Not(id("b"))), id("c")))
            )
        );
    }

    #[test]
    fn parentheses_group() {
        assert_eq!(
            parse("(a or b) and c").unwrap(),
            Cond::And(Box::new(Cond::Or(id("a"), id("b"))), id("c"))
        );
    }

    #[test]
    fn of_forms() {
        assert_eq!(
            parse("sel and not 1 of filter_*").unwrap(),
            Cond::And(
                id("sel"),
                Box::new(Cond::Not(Box::new(Cond::Of {
                    any: true,
                    pattern: "filter_*".into()
                })))
            )
        );
        assert_eq!(
            parse("all of them").unwrap(),
            Cond::Of {
                any: false,
                pattern: "them".into()
            }
        );
        assert_eq!(
            parse("any of sel*").unwrap(),
            Cond::Of {
                any: true,
                pattern: "sel*".into()
            }
        );
    }

    #[test]
    fn errors_say_why() {
        assert!(parse("sel | count() > 5")
            .unwrap_err()
            .contains("correlation"));
        assert!(parse("(a or b").unwrap_err().contains(")"));
        assert!(parse("a and").is_err());
        assert!(parse("2 of sel*").is_err());
        assert!(parse("a b").is_err());
        assert!(parse(&format!("{}a{}", "(".repeat(500), ")".repeat(500)))
            .unwrap_err()
            .contains("deeper"));
        assert!(parse(&"not ".repeat(500)).is_err());
    }

    #[test]
    fn identifier_patterns() {
        assert!(ident_matches("selection_*", "selection_status"));
        assert!(ident_matches("filter*", "filter1"));
        assert!(!ident_matches("filter_*", "selection"));
        assert!(ident_matches("*", "x"));
    }
}
