//! A lazy, zero-copy reader for JSON events.
//!
//! Sigma rules over CloudTrail look at a handful of fields per record, so the
//! engine never builds a tree: [`Event::parse`] indexes the top-level keys of a
//! record (checking that the structure is well formed) and every field lookup
//! walks only the text of the value it needs. Strings are borrowed from the
//! input and decoded only when they contain escapes.

use std::borrow::Cow;

/// Why a record could not be read as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {what}")]
pub struct JsonError {
    /// Byte offset in the record where reading stopped.
    pub offset: usize,
    /// What was expected or found there.
    pub what: &'static str,
}

fn err<T>(offset: usize, what: &'static str) -> Result<T, JsonError> {
    Err(JsonError { offset, what })
}

/// A JSON string as it appears in the input, escapes not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct RawStr<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> RawStr<'a> {
    /// A string that needs no decoding.
    pub(crate) fn plain(raw: &'a str) -> Self {
        RawStr {
            raw,
            escaped: false,
        }
    }

    /// The decoded string; borrowed when the input had no escapes.
    pub fn decode(&self) -> Cow<'a, str> {
        if !self.escaped {
            return Cow::Borrowed(self.raw);
        }
        Cow::Owned(unescape(self.raw))
    }

    /// Whether the decoded string equals `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        if self.escaped {
            self.decode() == s
        } else {
            self.raw == s
        }
    }
}

/// Decodes JSON string escapes; invalid escapes are kept as written.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let Ok(hi) = u32::from_str_radix(&hex, 16) else {
                    out.push_str("\\u");
                    out.push_str(&hex);
                    continue;
                };
                if (0xD800..0xDC00).contains(&hi) {
                    // A surrogate pair: the low half must follow as \uXXXX.
                    let rest = chars.as_str();
                    if let Some(lo) = rest
                        .strip_prefix("\\u")
                        .and_then(|r| r.get(..4))
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .filter(|lo| (0xDC00..0xE000).contains(lo))
                    {
                        let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        chars = rest[6..].chars();
                        continue;
                    }
                }
                out.push(char::from_u32(hi).unwrap_or('\u{FFFD}'));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A JSON value found in a record, borrowed from its text.
#[derive(Debug, Clone, Copy)]
pub enum JsonValue<'a> {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as written.
    Number(&'a str),
    /// A string.
    String(RawStr<'a>),
    /// An object: its full text, braces included.
    Object(&'a str),
    /// An array: its full text, brackets included.
    Array(&'a str),
}

impl<'a> JsonValue<'a> {
    /// The text Sigma compares for a scalar (`true`, `42`, the decoded
    /// string); `None` for null, objects and arrays.
    pub fn scalar_text(&self) -> Option<Cow<'a, str>> {
        match self {
            JsonValue::Bool(true) => Some(Cow::Borrowed("true")),
            JsonValue::Bool(false) => Some(Cow::Borrowed("false")),
            JsonValue::Number(n) => Some(Cow::Borrowed(n)),
            JsonValue::String(s) => Some(s.decode()),
            _ => None,
        }
    }

    /// Whether this is an object or an array.
    pub fn is_container(&self) -> bool {
        matches!(self, JsonValue::Object(_) | JsonValue::Array(_))
    }

    /// Calls `f` on every scalar inside this value (itself when it is a
    /// scalar), depth first, until `f` returns true. Returns whether it did.
    pub fn any_scalar(&self, f: &mut dyn FnMut(JsonValue<'a>) -> bool) -> bool {
        match *self {
            JsonValue::Null => false,
            JsonValue::Object(text) => ObjectIter::new(text)
                .flatten()
                .any(|(_, v)| v.any_scalar(f)),
            JsonValue::Array(text) => ArrayIter::new(text).flatten().any(|v| v.any_scalar(f)),
            scalar => f(scalar),
        }
    }
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// `b[i]` is the opening quote; returns the index after the closing quote and
/// whether the string holds escapes.
#[inline]
fn scan_string(b: &[u8], i: usize) -> Result<(usize, bool), JsonError> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        match memchr::memchr2(b'"', b'\\', &b[j..]) {
            None => return err(i, "unterminated string"),
            Some(k) => {
                let at = j + k;
                if b[at] == b'"' {
                    return Ok((at + 1, escaped));
                }
                escaped = true;
                j = at + 2;
                if j > b.len() {
                    return err(at, "unterminated string");
                }
            }
        }
    }
}

/// Skips an object or array starting at `b[i]`, checking that brackets pair up.
fn skip_container(b: &[u8], i: usize) -> Result<usize, JsonError> {
    // Bit n of `stack` says whether depth n+1 is an array; 64 levels is far
    // more than any CloudTrail record has.
    let mut stack: u64 = 0;
    let mut depth: u32 = 0;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'"' => {
                j = scan_string(b, j)?.0;
                continue;
            }
            c @ (b'{' | b'[') => {
                if depth == 64 {
                    return err(j, "nested more than 64 levels");
                }
                if c == b'[' {
                    stack |= 1 << depth;
                } else {
                    stack &= !(1 << depth);
                }
                depth += 1;
            }
            c @ (b'}' | b']') => {
                if depth == 0 {
                    return err(j, "unbalanced bracket");
                }
                depth -= 1;
                let is_array = stack & (1 << depth) != 0;
                if is_array != (c == b']') {
                    return err(j, "mismatched bracket");
                }
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
    err(i, "unterminated object or array")
}

/// Reads the value starting at `b[i]` (no leading whitespace) and returns it
/// with the index just after it.
fn read_value<'a>(text: &'a str, i: usize) -> Result<(JsonValue<'a>, usize), JsonError> {
    let b = text.as_bytes();
    let Some(&c) = b.get(i) else {
        return err(i, "expected a value");
    };
    match c {
        b'"' => {
            let (end, escaped) = scan_string(b, i)?;
            let raw = &text[i + 1..end - 1];
            Ok((JsonValue::String(RawStr { raw, escaped }), end))
        }
        b'{' => {
            let end = skip_container(b, i)?;
            Ok((JsonValue::Object(&text[i..end]), end))
        }
        b'[' => {
            let end = skip_container(b, i)?;
            Ok((JsonValue::Array(&text[i..end]), end))
        }
        b't' if b[i..].starts_with(b"true") => Ok((JsonValue::Bool(true), i + 4)),
        b'f' if b[i..].starts_with(b"false") => Ok((JsonValue::Bool(false), i + 5)),
        b'n' if b[i..].starts_with(b"null") => Ok((JsonValue::Null, i + 4)),
        b'-' | b'0'..=b'9' => {
            let mut j = i + 1;
            while j < b.len() && matches!(b[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                j += 1;
            }
            Ok((JsonValue::Number(&text[i..j]), j))
        }
        _ => err(i, "expected a value"),
    }
}

/// Iterates over the members of an object's text, in order.
pub struct ObjectIter<'a> {
    text: &'a str,
    i: usize,
    state: IterState,
}

#[derive(PartialEq)]
enum IterState {
    Start,
    Next,
    Done,
}

impl<'a> ObjectIter<'a> {
    /// Starts iterating over `text`, which must begin with `{`.
    pub fn new(text: &'a str) -> Self {
        ObjectIter {
            text,
            i: 0,
            state: IterState::Start,
        }
    }

    /// Index just after the closing brace, once iteration has finished.
    pub fn end(&self) -> usize {
        self.i
    }

    fn step(&mut self) -> Result<Option<(RawStr<'a>, JsonValue<'a>)>, JsonError> {
        let b = self.text.as_bytes();
        let mut i = skip_ws(b, self.i);
        match self.state {
            IterState::Done => return Ok(None),
            IterState::Start => {
                if b.get(i) != Some(&b'{') {
                    return err(i, "expected '{'");
                }
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    self.i = i + 1;
                    self.state = IterState::Done;
                    return Ok(None);
                }
            }
            IterState::Next => match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    self.i = i + 1;
                    self.state = IterState::Done;
                    return Ok(None);
                }
                _ => return err(i, "expected ',' or '}'"),
            },
        }
        if b.get(i) != Some(&b'"') {
            return err(i, "expected a key");
        }
        let (kend, escaped) = scan_string(b, i)?;
        let key = RawStr {
            raw: &self.text[i + 1..kend - 1],
            escaped,
        };
        i = skip_ws(b, kend);
        if b.get(i) != Some(&b':') {
            return err(i, "expected ':'");
        }
        i = skip_ws(b, i + 1);
        let (value, end) = read_value(self.text, i)?;
        self.i = end;
        self.state = IterState::Next;
        Ok(Some((key, value)))
    }
}

impl<'a> Iterator for ObjectIter<'a> {
    type Item = Result<(RawStr<'a>, JsonValue<'a>), JsonError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => None,
            Err(e) => {
                self.state = IterState::Done;
                Some(Err(e))
            }
        }
    }
}

/// Iterates over the elements of an array's text, in order.
pub struct ArrayIter<'a> {
    text: &'a str,
    i: usize,
    state: IterState,
}

impl<'a> ArrayIter<'a> {
    /// Starts iterating over `text`, which must begin with `[`.
    pub fn new(text: &'a str) -> Self {
        ArrayIter {
            text,
            i: 0,
            state: IterState::Start,
        }
    }

    /// Byte offset of the element most recently returned ends at; after the
    /// last one, the index just after the closing bracket.
    pub fn position(&self) -> usize {
        self.i
    }

    fn step(&mut self) -> Result<Option<JsonValue<'a>>, JsonError> {
        let b = self.text.as_bytes();
        let mut i = skip_ws(b, self.i);
        match self.state {
            IterState::Done => return Ok(None),
            IterState::Start => {
                if b.get(i) != Some(&b'[') {
                    return err(i, "expected '['");
                }
                i = skip_ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    self.i = i + 1;
                    self.state = IterState::Done;
                    return Ok(None);
                }
            }
            IterState::Next => match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b']') => {
                    self.i = i + 1;
                    self.state = IterState::Done;
                    return Ok(None);
                }
                _ => return err(i, "expected ',' or ']'"),
            },
        }
        let (value, end) = read_value(self.text, i)?;
        self.i = end;
        self.state = IterState::Next;
        Ok(Some(value))
    }
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Result<JsonValue<'a>, JsonError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(v)) => Some(Ok(v)),
            Ok(None) => None,
            Err(e) => {
                self.state = IterState::Done;
                Some(Err(e))
            }
        }
    }
}

/// Parses a whole JSON document that must be a single value (with optional
/// surrounding whitespace), returning it.
pub fn parse_document(text: &str) -> Result<JsonValue<'_>, JsonError> {
    let b = text.as_bytes();
    let i = skip_ws(b, 0);
    let (v, end) = read_value(text, i)?;
    let end = skip_ws(b, end);
    if end != b.len() {
        return err(end, "trailing characters after the value");
    }
    Ok(v)
}

/// One record (a JSON object) with its top-level members indexed.
///
/// Lookups follow dotted paths; when a path crosses an array, every element
/// is looked into, so one path can yield several values.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    text: &'a str,
    fields: Vec<(RawStr<'a>, JsonValue<'a>)>,
}

impl<'a> Event<'a> {
    /// Reads `text` as one JSON object. Only structure is checked (brackets,
    /// strings, separators); numbers are taken as written.
    pub fn parse(text: &'a str) -> Result<Self, JsonError> {
        let b = text.as_bytes();
        let start = skip_ws(b, 0);
        let mut fields = Vec::with_capacity(24);
        let mut it = ObjectIter::new(&text[start..]);
        for kv in it.by_ref() {
            fields.push(kv.map_err(|e| JsonError {
                offset: e.offset + start,
                what: e.what,
            })?);
        }
        let end = skip_ws(b, start + it.end());
        if end != b.len() {
            return err(end, "trailing characters after the object");
        }
        Ok(Event { text, fields })
    }

    /// The record's text as given.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The value of a top-level member (the last one when a key repeats).
    pub fn top(&self, key: &str) -> Option<JsonValue<'a>> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k.eq_str(key))
            .map(|(_, v)| *v)
    }

    /// Calls `f` with every value found at `path` (dotted segments already
    /// split) until it returns true; returns whether it did. A missing path
    /// calls `f` zero times.
    pub fn visit(&self, path: &[Box<str>], f: &mut dyn FnMut(JsonValue<'a>) -> bool) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        match self.top(first) {
            Some(v) => visit_in(v, rest, f),
            None => false,
        }
    }

    /// Calls `f` on every scalar of the record until it returns true.
    pub fn any_scalar(&self, f: &mut dyn FnMut(JsonValue<'a>) -> bool) -> bool {
        self.fields.iter().any(|(_, v)| v.any_scalar(f))
    }
}

fn visit_in<'a>(
    v: JsonValue<'a>,
    path: &[Box<str>],
    f: &mut dyn FnMut(JsonValue<'a>) -> bool,
) -> bool {
    let Some((seg, rest)) = path.split_first() else {
        return f(v);
    };
    match v {
        JsonValue::Object(text) => {
            // The last member wins when a key repeats, as in most JSON readers.
            let mut found = None;
            for (k, val) in ObjectIter::new(text).flatten() {
                if k.eq_str(seg) {
                    found = Some(val);
                }
            }
            found.is_some_and(|val| visit_in(val, rest, f))
        }
        JsonValue::Array(text) => ArrayIter::new(text)
            .flatten()
            .any(|el| visit_in(el, path, f)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<Box<str>> {
        p.split('.').map(Into::into).collect()
    }

    fn texts(ev: &Event, p: &str) -> Vec<String> {
        let mut out = Vec::new();
        ev.visit(&path(p), &mut |v| {
            out.push(match v.scalar_text() {
                Some(t) => t.into_owned(),
                None => format!("{v:?}"),
            });
            false
        });
        out
    }

    #[test]
    fn reads_nested_fields_and_arrays() {
        let ev = Event::parse(
            r#" {"a":{"b":"x","n":12,"t":true},"l":[{"c":"1"},{"c":"2"}],"s":"q\"\u00e9"} "#,
        )
        .unwrap();
        assert_eq!(texts(&ev, "a.b"), ["x"]);
        assert_eq!(texts(&ev, "a.n"), ["12"]);
        assert_eq!(texts(&ev, "a.t"), ["true"]);
        assert_eq!(texts(&ev, "l.c"), ["1", "2"]);
        assert_eq!(texts(&ev, "s"), ["q\"é"]);
        assert!(texts(&ev, "a.missing").is_empty());
        assert!(texts(&ev, "a.b.c").is_empty());
    }

    #[test]
    fn surrogate_pairs_decode() {
        let ev = Event::parse(r#"{"e":"\ud83d\ude00!"}"#).unwrap();
        assert_eq!(texts(&ev, "e"), ["😀!"]);
    }

    #[test]
    fn rejects_malformed_records() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"a":1"#,
            r#"{"a":[1}"#,
            r#"{"a":"x}"#,
            r#"{"a" 1}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":{"b":[}]}}"#,
        ] {
            assert!(Event::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn last_duplicate_key_wins() {
        let ev = Event::parse(r#"{"a":"1","a":"2","o":{"k":"x","k":"y"}}"#).unwrap();
        assert_eq!(texts(&ev, "a"), ["2"]);
        assert_eq!(texts(&ev, "o.k"), ["y"]);
    }
}
