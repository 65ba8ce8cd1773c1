//! A lazy, zero-copy reader for JSON events.
//!
//! Sigma rules over CloudTrail look at a handful of fields per record, so the
//! engine never builds a tree: [`Event::parse`] indexes the top-level keys of a
//! record (checking that the structure is well formed) and every field lookup
//! walks only the text of the value it needs. Strings are borrowed from the
//! input and decoded only when they contain escapes.

use std::borrow::Cow;
use std::cell::RefCell;

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
    #[inline]
    pub fn eq_str(&self, s: &str) -> bool {
        if self.escaped {
            self.decode() == s
        } else {
            eq_bytes(self.raw.as_bytes(), s.as_bytes())
        }
    }
}

/// `a == b`, deciding most unequal keys of the same length (`eventName`,
/// `eventTime`, `eventType`) on their first eight bytes without calling
/// `memcmp`.
#[inline(always)]
fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() >= 8 && load8(a, 0) != load8(b, 0) {
        return false;
    }
    a == b
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
    // Compact JSON (CloudTrail's) has no whitespace between tokens: one
    // comparison decides most calls.
    if b.get(i).is_none_or(|&c| c > b' ') {
        return i;
    }
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// `b[i]` is the opening quote; returns the index after the closing quote and
/// whether the string holds escapes.
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of the result is set where `w` has a zero byte (the
/// lowest set bit is exact; higher ones may be false after a true one).
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(LO) & !w & HI
}

#[inline(always)]
fn load8(b: &[u8], j: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[j..j + 8]);
    u64::from_le_bytes(a)
}

/// `b[i]` is the opening quote; returns the index after the closing quote and
/// whether the string holds escapes.
#[inline]
fn scan_string(b: &[u8], i: usize) -> Result<(usize, bool), JsonError> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        // Sixteen bytes at a time (SSE2) or eight (plain integers) for the
        // common short strings, memchr for the tail of long ones.
        let mut found = None;
        let mut rounds = 0;
        #[cfg(target_arch = "x86_64")]
        while j + 16 <= b.len() && rounds < 4 {
            let m = simd::quote_or_backslash16(&b[j..j + 16]);
            if m != 0 {
                found = Some(j + m.trailing_zeros() as usize);
                break;
            }
            j += 16;
            rounds += 1;
        }
        while found.is_none() && j + 8 <= b.len() && rounds < 8 {
            let w = load8(b, j);
            let m =
                zero_bytes(w ^ (LO * u64::from(b'"'))) | zero_bytes(w ^ (LO * u64::from(b'\\')));
            if m != 0 {
                found = Some(j + (m.trailing_zeros() / 8) as usize);
                break;
            }
            j += 8;
            rounds += 1;
        }
        let at = match found {
            Some(at) => at,
            None => match memchr::memchr2(b'"', b'\\', b.get(j..).unwrap_or_default()) {
                Some(k) => j + k,
                None => return err(i, "unterminated string"),
            },
        };
        if b[at] == b'"' {
            return Ok((at + 1, escaped));
        }
        escaped = true;
        j = at + 2;
        if j > b.len() {
            return err(i, "unterminated string");
        }
    }
}

/// [`scan_string`] without the error; with `clean` (the text is known to
/// hold no backslash) only looks for the closing quote.
#[inline]
fn string_end(b: &[u8], i: usize, clean: bool) -> Option<(usize, bool)> {
    if !clean {
        return scan_string(b, i).ok();
    }
    #[cfg(target_arch = "x86_64")]
    {
        let mut j = i + 1;
        while j + 16 <= b.len() {
            let m = simd::quote16(&b[j..j + 16]);
            if m != 0 {
                return Some((j + m.trailing_zeros() as usize + 1, false));
            }
            j += 16;
        }
    }
    let j = i + 1;
    memchr::memchr(b'"', b.get(j..)?).map(|k| (j + k + 1, false))
}

/// `text[a..b]`, for ends at ASCII delimiters (quotes, brackets, the end of
/// a number) found by the scanners; an empty string if they are not
/// character boundaries (which would be a bug). The standard slicing does
/// the same checks but is not inlined in the scanners' loops.
#[inline(always)]
fn sub(text: &str, a: usize, b: usize) -> &str {
    let bytes = text.as_bytes();
    // `is_char_boundary`, inline: not a UTF-8 continuation byte.
    let boundary = |i: usize| i == bytes.len() || bytes.get(i).is_some_and(|&c| (c as i8) >= -0x40);
    match bytes.get(a..b) {
        Some(part) if boundary(a) && boundary(b) => {
            // SAFETY: `text` is valid UTF-8 and `a` and `b` are character
            // boundaries inside it (checked just above), so the bytes
            // between them are valid UTF-8 too.
            unsafe { std::str::from_utf8_unchecked(part) }
        }
        _ => "",
    }
}

/// Skips an object or array starting at `b[i]`, checking that strings end
/// and brackets balance. (The vector pass does not compare bracket kinds;
/// a record that matches a rule is validated in full before it is output.)
fn skip_container(b: &[u8], i: usize) -> Result<usize, JsonError> {
    #[cfg(target_arch = "x86_64")]
    if let Some(end) = simd::container_end(b, i) {
        return Ok(end);
    }
    skip_container_scalar(b, i)
}

/// Scalar version of [`skip_container`], also used when the vector pass
/// meets a backslash (escapes need the byte-by-byte string rules).
fn skip_container_scalar(b: &[u8], i: usize) -> Result<usize, JsonError> {
    // Bit n of `stack` says whether depth n+1 is an array; 64 levels is far
    // more than any CloudTrail record has.
    let mut stack: u64 = 0;
    let mut depth: u32 = 0;
    let mut j = i;
    while j < b.len() {
        // Jump to the next quote or bracket eight bytes at a time: `[`/`{`
        // and `]`/`}` differ only in bit 0x20.
        while j + 8 <= b.len() {
            let w = load8(b, j);
            let x = w | (LO * 0x20);
            let m = zero_bytes(w ^ (LO * u64::from(b'"')))
                | zero_bytes(x ^ (LO * u64::from(b'{')))
                | zero_bytes(x ^ (LO * u64::from(b'}')));
            if m != 0 {
                j += (m.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        let Some(&c) = b.get(j) else { break };
        match c {
            b'"' => {
                j = scan_string(b, j)?.0;
                continue;
            }
            b'{' | b'[' => {
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
            b'}' | b']' => {
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

#[cfg(target_arch = "x86_64")]
mod simd {
    //! Finds the end of an object or array 64 bytes at a time with SSE2
    //! (part of every x86-64 CPU): bit masks of quotes, backslashes and
    //! brackets, a prefix XOR of the quote mask for "inside a string", and
    //! bracket depth counted with popcounts. A block holding a backslash, or
    //! a container whose brackets do not balance, is left to the scalar code,
    //! which also reports the errors.
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// Bit n is set where `block[n]` (n < 16) is a quote or a backslash.
    #[inline(always)]
    pub(super) fn quote_or_backslash16(block: &[u8]) -> u32 {
        assert!(block.len() >= 16);
        // SAFETY: SSE2 is part of the x86-64 baseline; the load reads the
        // first 16 bytes of `block`, which has at least 16 (asserted).
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr() as *const __m128i);
            let q = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let bs = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            _mm_movemask_epi8(_mm_or_si128(q, bs)) as u32
        }
    }

    /// Bit n is set where `block[n]` (n < 16) is a quote, a backslash or
    /// a control character (below 0x20).
    #[inline(always)]
    pub(super) fn string_special16(block: &[u8]) -> u32 {
        assert!(block.len() >= 16);
        // SAFETY: SSE2 is part of the x86-64 baseline; the load reads the
        // first 16 bytes of `block`, which has at least 16 (asserted).
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr() as *const __m128i);
            let q = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let bs = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // v <= 0x1f (unsigned) exactly when max(v, 0x1f) == 0x1f.
            let lim = _mm_set1_epi8(0x1f);
            let ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, lim), lim);
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, bs), ctl)) as u32
        }
    }

    /// Bit n is set where `block[n]` (n < 16) is a quote.
    #[inline(always)]
    pub(super) fn quote16(block: &[u8]) -> u32 {
        assert!(block.len() >= 16);
        // SAFETY: SSE2 is part of the x86-64 baseline; the load reads the
        // first 16 bytes of `block`, which has at least 16 (asserted).
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr() as *const __m128i);
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8))) as u32
        }
    }

    struct Masks {
        quote: u64,
        backslash: u64,
        open: u64,
        close: u64,
    }

    fn masks(block: &[u8]) -> Masks {
        assert!(block.len() >= 64);
        let mut m = Masks {
            quote: 0,
            backslash: 0,
            open: 0,
            close: 0,
        };
        // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 16
        // bytes inside the first 64 bytes of `block`, which has at least 64
        // (checked by the only caller).
        unsafe {
            let q = _mm_set1_epi8(b'"' as i8);
            let bs = _mm_set1_epi8(b'\\' as i8);
            let lower = _mm_set1_epi8(0x20);
            let op = _mm_set1_epi8(b'{' as i8);
            let cl = _mm_set1_epi8(b'}' as i8);
            for k in 0..4 {
                let v = _mm_loadu_si128(block.as_ptr().add(16 * k) as *const __m128i);
                // `[`/`{` and `]`/`}` differ only in bit 0x20.
                let folded = _mm_or_si128(v, lower);
                let shift = 16 * k;
                m.quote |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, q)) as u16 as u64) << shift;
                m.backslash |= (_mm_movemask_epi8(_mm_cmpeq_epi8(v, bs)) as u16 as u64) << shift;
                m.open |= (_mm_movemask_epi8(_mm_cmpeq_epi8(folded, op)) as u16 as u64) << shift;
                m.close |= (_mm_movemask_epi8(_mm_cmpeq_epi8(folded, cl)) as u16 as u64) << shift;
            }
        }
        m
    }

    fn prefix_xor(mut x: u64) -> u64 {
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x ^= x << 16;
        x ^= x << 32;
        x
    }

    /// Like [`container_end`], also appending to `ends` the (open, end)
    /// byte offsets of the container and of every container inside it, in
    /// order of their opening brackets. On `None` nothing is appended.
    pub(super) fn container_end_recording(
        b: &[u8],
        i: usize,
        ends: &mut Vec<(u32, u32)>,
    ) -> Option<usize> {
        let base = ends.len();
        let r = record(b, i, ends);
        if r.is_none() {
            ends.truncate(base);
        }
        r
    }

    fn record(b: &[u8], i: usize, ends: &mut Vec<(u32, u32)>) -> Option<usize> {
        // Offsets must fit the table's u32s.
        if b.len() > u32::MAX as usize {
            return None;
        }
        let mut pos = i;
        let mut depth: usize = 0;
        // Index in `ends` of the open container at each depth.
        let mut stack = [0u32; 64];
        let mut in_string_carry: u64 = 0;
        while pos < b.len() {
            let m = if b.len() - pos >= 64 {
                masks(&b[pos..pos + 64])
            } else {
                let mut block = [b' '; 64];
                block[..b.len() - pos].copy_from_slice(&b[pos..]);
                masks(&block)
            };
            if m.backslash != 0 {
                return None;
            }
            let in_string = prefix_xor(m.quote) ^ in_string_carry;
            in_string_carry = 0u64.wrapping_sub(in_string >> 63);
            let open = m.open & !in_string;
            let close = m.close & !in_string;
            let mut bits = open | close;
            while bits != 0 {
                let at = bits.trailing_zeros();
                let abs = pos + at as usize;
                if open >> at & 1 == 1 {
                    // Deeper than the table: let the scalar code decide.
                    let slot = stack.get_mut(depth)?;
                    *slot = ends.len() as u32;
                    ends.push((abs as u32, 0));
                    depth += 1;
                } else {
                    depth = depth.checked_sub(1)?;
                    let k = stack[depth] as usize;
                    ends[k].1 = abs as u32 + 1;
                    if depth == 0 {
                        return Some(abs + 1);
                    }
                }
                bits &= bits - 1;
            }
            pos += 64;
        }
        None
    }

    /// Index just after the bracket that closes the container opening at
    /// `b[i]`, or `None` to let the scalar code decide.
    pub(super) fn container_end(b: &[u8], i: usize) -> Option<usize> {
        let mut pos = i;
        let mut depth: u32 = 0;
        let mut in_string_carry: u64 = 0;
        while pos < b.len() {
            let m = if b.len() - pos >= 64 {
                masks(&b[pos..pos + 64])
            } else {
                // The tail, padded with spaces (which are nothing to the masks).
                let mut block = [b' '; 64];
                block[..b.len() - pos].copy_from_slice(&b[pos..]);
                masks(&block)
            };
            if m.backslash != 0 {
                return None;
            }
            let in_string = prefix_xor(m.quote) ^ in_string_carry;
            in_string_carry = 0u64.wrapping_sub(in_string >> 63);
            let open = m.open & !in_string;
            let close = m.close & !in_string;
            if close.count_ones() < depth {
                depth = depth + open.count_ones() - close.count_ones();
            } else {
                let mut bits = open | close;
                while bits != 0 {
                    let at = bits.trailing_zeros();
                    if open >> at & 1 == 1 {
                        depth += 1;
                    } else {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(pos + at as usize + 1);
                        }
                    }
                    bits &= bits - 1;
                }
            }
            pos += 64;
        }
        None
    }
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
            let raw = sub(text, i + 1, end - 1);
            Ok((JsonValue::String(RawStr { raw, escaped }), end))
        }
        b'{' => {
            let end = skip_container(b, i)?;
            Ok((JsonValue::Object(sub(text, i, end)), end))
        }
        b'[' => {
            let end = skip_container(b, i)?;
            Ok((JsonValue::Array(sub(text, i, end)), end))
        }
        b't' if b[i..].starts_with(b"true") => Ok((JsonValue::Bool(true), i + 4)),
        b'f' if b[i..].starts_with(b"false") => Ok((JsonValue::Bool(false), i + 5)),
        b'n' if b[i..].starts_with(b"null") => Ok((JsonValue::Null, i + 4)),
        b'-' | b'0'..=b'9' => {
            let mut j = i + 1;
            while j < b.len() && matches!(b[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                j += 1;
            }
            Ok((JsonValue::Number(sub(text, i, j)), j))
        }
        _ => err(i, "expected a value"),
    }
}

/// Iterates over the members of an object's text, in order.
pub struct ObjectIter<'a> {
    text: &'a str,
    i: usize,
    state: IterState,
    /// The text is known to hold no backslash (no escapes to follow).
    clean: bool,
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
            clean: false,
        }
    }

    /// Index just after the closing brace, once iteration has finished.
    pub fn end(&self) -> usize {
        self.i
    }

    fn step(&mut self) -> Result<Option<(RawStr<'a>, JsonValue<'a>)>, JsonError> {
        self.step_with(None)
    }

    #[inline]
    fn string_at(&self, b: &[u8], i: usize) -> Result<(usize, bool), JsonError> {
        if self.clean {
            string_end(b, i, true).ok_or(JsonError {
                offset: i,
                what: "unterminated string",
            })
        } else {
            scan_string(b, i)
        }
    }

    /// [`ObjectIter::step`], recording the extent of every container read
    /// (offsets in `self.text`) when `ends` is given.
    fn step_with(
        &mut self,
        ends: Option<&mut Vec<(u32, u32)>>,
    ) -> Result<Option<(RawStr<'a>, JsonValue<'a>)>, JsonError> {
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
        let (kend, escaped) = self.string_at(b, i)?;
        let key = RawStr {
            raw: sub(self.text, i + 1, kend - 1),
            escaped,
        };
        i = skip_ws(b, kend);
        if b.get(i) != Some(&b':') {
            return err(i, "expected ':'");
        }
        i = skip_ws(b, i + 1);
        let (value, end) = match (ends, b.get(i)) {
            (_, Some(b'"')) if self.clean => {
                let (end, escaped) = self.string_at(b, i)?;
                let raw = sub(self.text, i + 1, end - 1);
                (JsonValue::String(RawStr { raw, escaped }), end)
            }
            #[cfg(target_arch = "x86_64")]
            (Some(ends), Some(&c @ (b'{' | b'['))) => {
                match simd::container_end_recording(b, i, ends) {
                    Some(end) => {
                        let t = sub(self.text, i, end);
                        let v = if c == b'{' {
                            JsonValue::Object(t)
                        } else {
                            JsonValue::Array(t)
                        };
                        (v, end)
                    }
                    None => read_value(self.text, i)?,
                }
            }
            _ => read_value(self.text, i)?,
        };
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

/// The lines of `text` as [`str::lines`] gives them (split at `\n`, a
/// `\r` before it dropped, no empty last line after a final `\n`), found
/// with `memchr` (for NDJSON: a line is a record).
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(k) = memchr::memchr(b'\n', rest.as_bytes()) else {
            return Some(std::mem::take(&mut rest));
        };
        let line = &rest[..k];
        rest = &rest[k + 1..];
        Some(line.strip_suffix('\r').unwrap_or(line))
    })
}

/// Checks that `text` is one JSON value (RFC 8259) with optional
/// whitespace around it, and returns the value's text without that
/// whitespace. Accepts what serde_json accepts as a `RawValue`: any depth,
/// escapes checked for form (`\uXXXX` with four hex digits, surrogates not
/// paired), no control characters inside strings, numbers as the grammar
/// says.
///
/// [`Event::parse`] checks a record's structure but not every nested
/// literal; this is the full check, for records that are copied into
/// output. Strings, the bulk of CloudTrail records, are scanned sixteen
/// bytes at a time.
pub fn validate(text: &str) -> Result<&str, JsonError> {
    let b = text.as_bytes();
    let start = skip_ws(b, 0);
    let mut i = start;
    // Bit n: whether the container at depth n+1 is an array. Deeper than
    // 128 levels the bits go to `deep`.
    let mut bits = [0u64; 2];
    let mut deep: Vec<u64> = Vec::new();
    let mut depth: usize = 0;
    let set = |bits: &mut [u64; 2], deep: &mut Vec<u64>, d: usize, array: bool| {
        let (w, k) = (d / 64, d % 64);
        let word = if w < 2 {
            &mut bits[w]
        } else {
            if deep.len() <= w - 2 {
                deep.resize(w - 1, 0);
            }
            &mut deep[w - 2]
        };
        if array {
            *word |= 1 << k;
        } else {
            *word &= !(1 << k);
        }
    };
    let is_array = |bits: &[u64; 2], deep: &Vec<u64>, d: usize| {
        let (w, k) = (d / 64, d % 64);
        let word = if w < 2 {
            bits[w]
        } else {
            deep.get(w - 2).copied().unwrap_or(0)
        };
        word >> k & 1 == 1
    };
    'value: loop {
        // A value starts at `i` (whitespace skipped).
        match b.get(i) {
            Some(b'"') => i = validate_string(b, i)?,
            Some(&c @ (b'{' | b'[')) => {
                let j = skip_ws(b, i + 1);
                let close = if c == b'{' { b'}' } else { b']' };
                if b.get(j) == Some(&close) {
                    i = j + 1;
                } else {
                    set(&mut bits, &mut deep, depth, c == b'[');
                    depth += 1;
                    i = j;
                    if c == b'{' {
                        i = validate_key(b, i)?;
                    }
                    continue 'value;
                }
            }
            Some(b't') if b[i..].starts_with(b"true") => i += 4,
            Some(b'f') if b[i..].starts_with(b"false") => i += 5,
            Some(b'n') if b[i..].starts_with(b"null") => i += 4,
            Some(b'-' | b'0'..=b'9') => i = validate_number(b, i)?,
            _ => return err(i, "expected a value"),
        }
        // After a value: a comma, the end of containers, or the end.
        loop {
            if depth == 0 {
                let end = i;
                i = skip_ws(b, i);
                if i != b.len() {
                    return err(i, "trailing characters after the value");
                }
                return Ok(sub(text, start, end));
            }
            i = skip_ws(b, i);
            let array = is_array(&bits, &deep, depth - 1);
            match b.get(i) {
                Some(b',') => {
                    i = skip_ws(b, i + 1);
                    if !array {
                        i = validate_key(b, i)?;
                    }
                    continue 'value;
                }
                Some(b']') if array => {
                    depth -= 1;
                    i += 1;
                }
                Some(b'}') if !array => {
                    depth -= 1;
                    i += 1;
                }
                _ if array => return err(i, "expected ',' or ']'"),
                _ => return err(i, "expected ',' or '}'"),
            }
        }
    }
}

/// A key, the colon and the whitespace after it, from `b[i]`; returns the
/// index where the value starts.
#[inline]
fn validate_key(b: &[u8], i: usize) -> Result<usize, JsonError> {
    if b.get(i) != Some(&b'"') {
        return err(i, "expected a key");
    }
    let i = skip_ws(b, validate_string(b, i)?);
    if b.get(i) != Some(&b':') {
        return err(i, "expected ':'");
    }
    Ok(skip_ws(b, i + 1))
}

/// A number from `b[i]`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
/// Returns the index after it.
#[inline]
fn validate_number(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    let digits = |b: &[u8], mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let at = i;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => {
            i += 1;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                return err(at, "invalid number");
            }
        }
        Some(b'1'..=b'9') => i = digits(b, i + 1),
        _ => return err(at, "invalid number"),
    }
    if b.get(i) == Some(&b'.') {
        let j = digits(b, i + 1);
        if j == i + 1 {
            return err(at, "invalid number");
        }
        i = j;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let j = digits(b, i);
        if j == i {
            return err(at, "invalid number");
        }
        i = j;
    }
    Ok(i)
}

/// A string from its opening quote at `b[i]`, escapes and control
/// characters checked; returns the index after the closing quote.
#[inline]
fn validate_string(b: &[u8], i: usize) -> Result<usize, JsonError> {
    let mut j = i + 1;
    loop {
        #[cfg(target_arch = "x86_64")]
        while j + 16 <= b.len() {
            let m = simd::string_special16(&b[j..j + 16]);
            if m != 0 {
                j += m.trailing_zeros() as usize;
                break;
            }
            j += 16;
        }
        while j < b.len() && !matches!(b[j], b'"' | b'\\' | 0..=0x1f) {
            j += 1;
        }
        match b.get(j) {
            None => return err(i, "unterminated string"),
            Some(b'"') => return Ok(j + 1),
            Some(b'\\') => match b.get(j + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                Some(b'u') => {
                    let hex = b.get(j + 2..j + 6).ok_or(JsonError {
                        offset: j,
                        what: "unterminated string",
                    })?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return err(j, "invalid escape");
                    }
                    j += 6;
                }
                None => return err(i, "unterminated string"),
                Some(_) => return err(j, "invalid escape"),
            },
            Some(_) => return err(j, "control character in a string"),
        }
    }
}

/// One record (a JSON object).
///
/// Reading indexes the top-level members and checks the structure: top-level
/// syntax fully, nested values for terminated strings and balanced brackets
/// (skipped 64 bytes at a time with SSE2 on x86-64). A nested value is looked into only when a
/// rule asks for a field inside it, scanning its text up to the wanted key,
/// so the large `requestParameters` and `responseElements` of most records
/// are never taken apart. Resolved nested paths are remembered for the
/// record's lifetime, so rules sharing a field pay for it once. A nested
/// value whose syntax is broken yields no values.
///
/// Lookups follow dotted paths; when a path crosses an array, every element
/// is looked into, so one path can yield several values. When a key repeats
/// in an object, the first member is used.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    text: &'a str,
    top: Vec<(RawStr<'a>, JsonValue<'a>)>,
    /// (opening offset, offset after the closing bracket) of nested
    /// containers, sorted by the first; may leave some out.
    ends: Vec<(u32, u32)>,
    /// (path id, value) of nested paths already resolved to one value.
    memo: RefCell<Vec<(u32, Option<JsonValue<'a>>)>>,
    /// Nested objects read so far: (address of the text, range in `members`).
    objs: RefCell<Vec<(usize, u32, u32)>>,
    /// Members of the nested objects read so far.
    members: RefCell<Vec<(RawStr<'a>, JsonValue<'a>)>>,
}

impl Drop for Event<'_> {
    fn drop(&mut self) {
        Spare::give(Spare {
            top: relife(std::mem::take(&mut self.top)),
            ends: std::mem::take(&mut self.ends),
            memo: relife(self.memo.take()),
            objs: self.objs.take(),
            members: relife(self.members.take()),
        });
    }
}

type Member<'a> = (RawStr<'a>, JsonValue<'a>);

/// The buffers of dropped events, kept per thread for the next ones to
/// use, so that reading a record allocates nothing in the steady state.
#[derive(Default)]
struct Spare {
    top: Vec<Member<'static>>,
    ends: Vec<(u32, u32)>,
    memo: Vec<(u32, Option<JsonValue<'static>>)>,
    objs: Vec<(usize, u32, u32)>,
    members: Vec<Member<'static>>,
}

thread_local! {
    static SPARE: RefCell<Vec<Spare>> = const { RefCell::new(Vec::new()) };
}

impl Spare {
    fn take() -> Spare {
        SPARE
            .try_with(|s| s.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| Spare {
                top: Vec::with_capacity(32),
                ends: Vec::with_capacity(32),
                memo: Vec::with_capacity(16),
                objs: Vec::with_capacity(8),
                members: Vec::with_capacity(32),
            })
    }

    fn give(mut self) {
        self.ends.clear();
        self.objs.clear();
        // Buffers grown by an unusually large record are not kept.
        if self.top.capacity() + self.members.capacity() + self.ends.capacity() > 4096 {
            return;
        }
        let _ = SPARE.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if s.len() < 8 {
                    s.push(self);
                }
            }
        });
    }
}

/// Empties `v` and gives back its buffer with another element type of the
/// same layout (in practice: the same type with another lifetime). The
/// standard library collects a `Vec`'s iterator into the same allocation
/// when the layouts match; otherwise this allocates, which is only slower.
fn relife<A, B>(v: Vec<A>) -> Vec<B> {
    v.into_iter().filter_map(|_| None).collect()
}

/// Path id meaning "do not remember this lookup".
pub const NO_PATH_ID: u32 = u32::MAX;

/// Looks into a nested value by scanning its text, stopping at the first
/// member with the wanted key; nested containers on the way are skipped
/// without being taken apart.
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
            for (k, val) in ObjectIter::new(text).map_while(Result::ok) {
                if k.eq_str(seg) {
                    return visit_in(val, rest, f);
                }
            }
            false
        }
        JsonValue::Array(text) => ArrayIter::new(text)
            .map_while(Result::ok)
            .any(|el| visit_in(el, path, f)),
        _ => false,
    }
}

impl<'a> Event<'a> {
    /// Reads `text` as one JSON object.
    pub fn parse(text: &'a str) -> Result<Self, JsonError> {
        let b = text.as_bytes();
        let start = skip_ws(b, 0);
        let spare = Spare::take();
        let mut top = relife(spare.top);
        let mut ends = spare.ends;
        let mut it = ObjectIter::new(&text[start..]);
        it.clean = memchr::memchr(b'\\', b).is_none();
        while let Some(kv) = it.step_with(Some(&mut ends)).map_err(|e| JsonError {
            offset: e.offset + start,
            what: e.what,
        })? {
            top.push(kv);
        }
        if start > 0 {
            for e in &mut ends {
                e.0 += start as u32;
                e.1 += start as u32;
            }
        }
        let end = skip_ws(b, start + it.end());
        if end != b.len() {
            return err(end, "trailing characters after the object");
        }
        Ok(Event {
            text,
            top,
            ends,
            memo: RefCell::new(relife(spare.memo)),
            objs: RefCell::new(spare.objs),
            members: RefCell::new(relife(spare.members)),
        })
    }

    /// The record's text as given.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The value of a top-level member (the first one when a key repeats).
    #[inline]
    pub fn top(&self, key: &str) -> Option<JsonValue<'a>> {
        self.top
            .iter()
            .find(|(k, _)| k.eq_str(key))
            .map(|(_, v)| *v)
    }

    /// Like [`Event::visit`], remembering the value of a nested path that
    /// does not cross an array under `id` (an id the caller gives each
    /// distinct path; [`NO_PATH_ID`] to not remember).
    #[inline]
    pub fn visit_cached(
        &self,
        id: u32,
        path: &[Box<str>],
        f: &mut dyn FnMut(JsonValue<'a>) -> bool,
    ) -> bool {
        if path.len() < 2 {
            return self.visit(path, f);
        }
        match self.resolve_cached(id, path) {
            Some(Some(v)) => f(v),
            Some(None) => false,
            // The path crosses an array: it can have several values.
            None => self.visit(path, f),
        }
    }

    /// The single value at `path` (`Some(None)` when missing), or `None`
    /// when the path crosses an array; remembered under `id` (unless it is
    /// [`NO_PATH_ID`]).
    #[inline]
    pub fn resolve_cached(&self, id: u32, path: &[Box<str>]) -> Option<Option<JsonValue<'a>>> {
        if id != NO_PATH_ID {
            if let Some(v) = self
                .memo
                .borrow()
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, v)| *v)
            {
                return Some(v);
            }
        }
        let found = self.resolve_one(path)?;
        if id != NO_PATH_ID {
            let mut memo = self.memo.borrow_mut();
            if memo.capacity() == 0 {
                memo.reserve(16);
            }
            memo.push((id, found));
        }
        Some(found)
    }

    /// The member `key` of the object `text` (a nested object of this
    /// record). The members of each object looked into are read once and
    /// remembered for the record's lifetime.
    fn member(&self, text: &'a str, key: &str) -> Option<JsonValue<'a>> {
        let at = text.as_ptr() as usize;
        let mut objs = self.objs.borrow_mut();
        let (start, end) = match objs.iter().find(|o| o.0 == at) {
            Some(&(_, s, e)) => (s, e),
            None => {
                let mut members = self.members.borrow_mut();
                if members.capacity() == 0 {
                    members.reserve(32);
                    objs.reserve(8);
                }
                let s = members.len() as u32;
                self.read_members(text, &mut members);
                let e = members.len() as u32;
                objs.push((at, s, e));
                (s, e)
            }
        };
        drop(objs);
        self.members.borrow()[start as usize..end as usize]
            .iter()
            .find(|(k, _)| k.eq_str(key))
            .map(|(_, v)| *v)
    }

    /// Appends the members of the nested object `text` to `out`, up to the
    /// first syntax error (as `ObjectIter` with `map_while(Result::ok)`),
    /// skipping nested containers with the table made while parsing.
    fn read_members(&self, text: &'a str, out: &mut Vec<(RawStr<'a>, JsonValue<'a>)>) {
        let base = (text.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize);
        let lim = base.wrapping_add(text.len());
        if self.ends.is_empty() || base > self.text.len() || lim > self.text.len() || lim < base {
            out.extend(ObjectIter::new(text).map_while(Result::ok));
            return;
        }
        // Work on the whole record's bytes (so that the vector code rarely
        // meets the end of the input), never reading past the object.
        let rt = self.text;
        let b = rt.as_bytes();
        // Search the table only from the object's own entry on.
        let from = self.ends.partition_point(|e| (e.0 as usize) < base);
        let ends = &self.ends[from..];
        // An object in the table was read by the vector pass, which gives
        // up on any backslash: its strings hold no escapes, so each ends at
        // the next quote.
        let clean = ends.first().is_some_and(|e| e.0 as usize == base);
        let mut i = skip_ws(b, base);
        if b.get(i) != Some(&b'{') {
            return;
        }
        i = skip_ws(b, i + 1);
        if i >= lim || b[i] == b'}' {
            return;
        }
        loop {
            if b.get(i) != Some(&b'"') {
                return;
            }
            let Some((kend, escaped)) = string_end(b, i, clean) else {
                return;
            };
            if kend > lim {
                return;
            }
            let key = RawStr {
                raw: sub(rt, i + 1, kend - 1),
                escaped,
            };
            i = skip_ws(b, kend);
            if b.get(i) != Some(&b':') {
                return;
            }
            i = skip_ws(b, i + 1);
            let known = match b.get(i) {
                Some(b'{' | b'[') => ends
                    .binary_search_by_key(&(i as u32), |e| e.0)
                    .ok()
                    .map(|k| ends[k].1 as usize)
                    .filter(|&end| end > i && end <= lim),
                _ => None,
            };
            let (value, end) = match known {
                Some(end) if b[i] == b'{' => (JsonValue::Object(sub(rt, i, end)), end),
                Some(end) => (JsonValue::Array(sub(rt, i, end)), end),
                None if clean && b.get(i) == Some(&b'"') => {
                    let Some((end, escaped)) = string_end(b, i, true) else {
                        return;
                    };
                    let raw = sub(rt, i + 1, end - 1);
                    (JsonValue::String(RawStr { raw, escaped }), end)
                }
                None => match read_value(rt, i) {
                    Ok(x) => x,
                    Err(_) => return,
                },
            };
            if end > lim {
                return;
            }
            out.push((key, value));
            i = skip_ws(b, end);
            if i >= lim || b[i] != b',' {
                return;
            }
            i = skip_ws(b, i + 1);
        }
    }

    /// The single value at `path` (`Some(None)` when missing), or `None`
    /// when the path crosses an array.
    fn resolve_one(&self, path: &[Box<str>]) -> Option<Option<JsonValue<'a>>> {
        let (first, rest) = path.split_first()?;
        let Some(mut cur) = self.top(first) else {
            return Some(None);
        };
        for seg in rest {
            match cur {
                JsonValue::Object(text) => match self.member(text, seg) {
                    Some(v) => cur = v,
                    None => return Some(None),
                },
                JsonValue::Array(_) => return None,
                _ => return Some(None),
            }
        }
        Some(Some(cur))
    }

    /// Calls `f` with every value found at `path` (dotted segments already
    /// split) until it returns true; returns whether it did. A missing path
    /// calls `f` zero times.
    #[inline]
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
        self.top.iter().any(|(_, v)| v.any_scalar(f))
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
    fn remembered_lookups_give_the_same_values() {
        let ev =
            Event::parse(r#"{"u":{"t":"Root","s":{"i":{"t":"Role"}}},"l":[{"c":"1"},{"c":"2"}]}"#)
                .unwrap();
        let cached = |id: u32, p: &str| {
            let mut out = Vec::new();
            ev.visit_cached(id, &path(p), &mut |v| {
                out.push(v.scalar_text().map(|t| t.into_owned()));
                false
            });
            out
        };
        for _ in 0..2 {
            assert_eq!(cached(0, "u.t"), [Some("Root".to_string())]);
            assert_eq!(cached(1, "u.s.i.t"), [Some("Role".to_string())]);
            assert!(cached(2, "u.missing").is_empty());
            // Crossing an array is never remembered: every element counts.
            assert_eq!(
                cached(3, "l.c"),
                [Some("1".to_string()), Some("2".to_string())]
            );
        }
        assert_eq!(ev.memo.borrow().len(), 3);
    }

    #[test]
    fn vector_and_scalar_skips_agree() {
        let mut cases: Vec<String> = vec![
            r#"{"a":"}{][","b":[1,2,{"c":"\"}"}],"d":{}}"#.into(),
            format!(
                r#"{{"long":"{}","x":[{}]}}"#,
                "y".repeat(200),
                "{\"k\":\"]\"},".repeat(40) + "0"
            ),
            format!("[{}]", "[".repeat(63) + &"]".repeat(63)),
            r#"{"a":[1,2}"#.into(),
            r#"{"unterminated":"abc}"#.into(),
        ];
        // Every cut of a long record, so containers end at every offset of a block.
        let long = format!(
            r#"{{"p":{{"q":"{}","r":[{{"s":"t"}}]}},"u":"v"}}"#,
            "w".repeat(100)
        );
        for cut in 1..long.len() {
            cases.push(long[..cut].to_string());
        }
        cases.push(long);
        for c in &cases {
            let b = c.as_bytes();
            let scalar = skip_container_scalar(b, 0).ok();
            #[cfg(target_arch = "x86_64")]
            if let Some(v) = simd::container_end(b, 0) {
                assert_eq!(Some(v), scalar, "{c}");
            }
            assert_eq!(skip_container(b, 0).ok(), scalar, "{c}");
        }
    }

    #[test]
    fn table_reads_agree_with_the_iterator() {
        let long = "z".repeat(90);
        let records = [
            r#"{"u":{"a":"1","s":{"i":{"t":"Role"},"x":[1,{"y":"2"}]},"t":"AssumedRole"}}"#
                .to_string(),
            format!(
                r#"{{"p":"{long}","u":{{"k":"{long}","n":null,"b":true,"m":-1.5e3,"o":{{}},"l":[]}}}}"#
            ),
            r#"{"u":{"e":"a"b","t":"x"},"v":"\"}"#.to_string(),
            r#"{"u":{"a":"1" , "t" : "2" ,"bad" "x","t2":"3"}}"#.to_string(),
            r#"{"u":{"a":{"b":[}]},"t":"x"}}"#.to_string(),
        ];
        for r in &records {
            let Ok(ev) = Event::parse(r) else { continue };
            for (_, v) in ev.top.clone() {
                let JsonValue::Object(text) = v else { continue };
                let want: Vec<String> = ObjectIter::new(text)
                    .map_while(Result::ok)
                    .map(|(k, v)| format!("{}={v:?}", k.decode()))
                    .collect();
                let mut got = Vec::new();
                ev.read_members(text, &mut got);
                let got: Vec<String> = got
                    .iter()
                    .map(|(k, v)| format!("{}={v:?}", k.decode()))
                    .collect();
                assert_eq!(got, want, "{r}");
            }
        }
        // Buffers come back from dropped events and are handed out clean.
        for _ in 0..3 {
            let ev = Event::parse(&records[0]).unwrap();
            assert_eq!(texts(&ev, "u.s.i.t"), ["Role"]);
            assert_eq!(ev.memo.borrow().len(), 0);
        }
    }

    #[test]
    fn sub_slices_at_boundaries_only() {
        let t = "a\"é\"{}";
        assert_eq!(sub(t, 0, 1), "a");
        assert_eq!(sub(t, 2, 4), "é");
        assert_eq!(sub(t, 2, t.len()), "é\"{}");
        assert_eq!(sub(t, 3, 4), "");
        assert_eq!(sub(t, 2, 3), "");
        assert_eq!(sub(t, 4, 2), "");
        assert_eq!(sub(t, 0, 99), "");
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

    /// `validate` accepts what serde_json accepts as a `RawValue`, and
    /// gives the same text: samples, every cut of them, and every byte of
    /// them replaced by each of a set of troublesome bytes.
    #[test]
    fn validate_agrees_with_serde_json() {
        let long = "s".repeat(40);
        let samples = [
            format!(
                r#" {{"a":[1,-2.5e+3,0,-0,1E2,0.25,true,false,null,{{}},[]],"b":{{"c":"x\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00","d":[[[{{"e":"{long}"}}]]]}},"f":"é😀{long}"}} "#
            ),
            r#"[ { "k" : "v" } , [ ] , "" ]"#.to_string(),
            format!("{}1{}", "[".repeat(200), "]".repeat(200)),
            format!(r#"{{"{long}":"{long}\"{long}","x":12345678901234567890}}"#),
            "\"\\u12\"".to_string(),
            "-".to_string(),
            "01".to_string(),
            "1.".to_string(),
            "1e".to_string(),
            "\t0\r\n".to_string(),
        ];
        let bytes: &[u8] = b"\"\\/{}[],:0123456789.-+eEtfnu \t\n\x00\x01\x1f\x7fxa";
        let check = |t: &str| {
            let ours = validate(t).ok();
            let theirs = serde_json::from_str::<&serde_json::value::RawValue>(t)
                .ok()
                .map(|r| r.get());
            assert_eq!(ours, theirs, "{t:?}");
        };
        for s in &samples {
            check(s);
            for cut in 0..s.len() {
                if s.is_char_boundary(cut) {
                    check(&s[..cut]);
                    check(&s[cut..]);
                }
            }
            let sb = s.as_bytes();
            for at in 0..sb.len() {
                for &c in bytes {
                    let mut m = sb.to_vec();
                    m[at] = c;
                    if let Ok(t) = std::str::from_utf8(&m) {
                        check(t);
                    }
                    let mut ins = sb.to_vec();
                    ins.insert(at, c);
                    if let Ok(t) = std::str::from_utf8(&ins) {
                        check(t);
                    }
                }
            }
        }
    }

    #[test]
    fn lines_are_those_of_str_lines() {
        for t in [
            "",
            "\n",
            "a",
            "a\n",
            "a\r\n",
            "a\r",
            "\r\n\r\n",
            "a\nb",
            "a\n\nb\r\n\r",
            "\r\r\n",
            "é\n😀",
        ] {
            assert_eq!(
                lines(t).collect::<Vec<_>>(),
                t.lines().collect::<Vec<_>>(),
                "{t:?}"
            );
        }
    }

    #[test]
    fn first_duplicate_key_wins() {
        let ev = Event::parse(r#"{"a":"1","a":"2","o":{"k":"x","k":"y"}}"#).unwrap();
        assert_eq!(texts(&ev, "a"), ["1"]);
        assert_eq!(texts(&ev, "o.k"), ["x"]);
    }
}
