//! Where CloudTrail records come from: log files (`.json`, `.json.gz`) with a
//! `Records` array, NDJSON (one record a line), stdin, directory trees.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use twokey_sigma::json::{lines, parse_document, ArrayIter, JsonValue, ObjectIter};

/// The text of one input, decompressed, with its name for findings.
#[derive(Debug, Clone)]
pub struct InputText {
    /// The file path as given (or `-` for stdin).
    pub name: String,
    /// Its whole text.
    pub text: String,
}

/// How a record's position is counted in `source.line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A CloudTrail log file: the position is the 0-based index in `Records`.
    Records,
    /// One record a line: the position is the 1-based line number.
    Lines,
}

/// A record that could not be read, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// The position as in findings (line or record index).
    pub position: u64,
    /// What was wrong.
    pub reason: String,
}

/// Lists the files under `paths`: files as given, directories walked
/// recursively for `*.json`, `*.json.gz`, `*.ndjson`, `*.jsonl` (sorted, so
/// output order is stable). `-` stands for stdin and is kept as is.
pub fn expand_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" || !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut found = Vec::new();
        walk(p, &mut found)?;
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading directory {}", dir.display()))?;
        let path = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if is_log_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_log_name(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    [
        ".json",
        ".json.gz",
        ".ndjson",
        ".ndjson.gz",
        ".jsonl",
        ".jsonl.gz",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

/// Reads a file (or stdin for `-`), gunzipping when it starts with the gzip
/// magic bytes.
pub fn read_input(path: &Path) -> anyhow::Result<InputText> {
    let name = path.display().to_string();
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading stdin")?;
        b
    } else {
        std::fs::read(path).with_context(|| format!("reading {name}"))?
    };
    Ok(InputText {
        text: decode_bytes(&name, bytes)?,
        name,
    })
}

/// Decompresses gzip data when present and checks the text is UTF-8.
pub fn decode_bytes(name: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 8);
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{name}: not valid gzip"))?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{name}: not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Calls `f(position, record_text)` for every record of an input, and
/// `bad` for every record that cannot be read. Returns the layout found.
///
/// A text that is one JSON object with a `Records` array is a CloudTrail
/// log file; one JSON object without it is a single record; anything else is
/// read as NDJSON, blank lines skipped.
pub fn for_each_record<'t>(
    text: &'t str,
    f: &mut dyn FnMut(u64, &'t str),
    bad: &mut dyn FnMut(BadRecord),
) -> Layout {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        if let Ok(JsonValue::Object(obj)) = parse_document(text) {
            let mut records = None;
            for (k, v) in ObjectIter::new(obj).flatten() {
                if k.eq_str("Records") {
                    records = Some(v);
                }
            }
            match records {
                Some(JsonValue::Array(arr)) => {
                    for (i, el) in ArrayIter::new(arr).enumerate() {
                        match el {
                            Ok(JsonValue::Object(rec)) => f(i as u64, rec),
                            Ok(_) => bad(BadRecord {
                                position: i as u64,
                                reason: "record is not a JSON object".into(),
                            }),
                            Err(e) => {
                                bad(BadRecord {
                                    position: i as u64,
                                    reason: e.to_string(),
                                });
                                break;
                            }
                        }
                    }
                    return Layout::Records;
                }
                Some(_) => {
                    bad(BadRecord {
                        position: 0,
                        reason: "'Records' is not an array".into(),
                    });
                    return Layout::Records;
                }
                None if !text.trim().contains('\n') => {
                    // A single record on one line: same as one NDJSON line.
                }
                None => {
                    // A pretty-printed single record.
                    f(1, obj);
                    return Layout::Lines;
                }
            }
        }
    }
    for_each_line(text, 1, f);
    Layout::Lines
}

/// Calls `f(line number, line)` for every line of `text` that is not
/// blank, numbering from `first`; returns the number of lines (blank ones
/// included).
pub fn for_each_line<'t>(text: &'t str, first: u64, f: &mut dyn FnMut(u64, &'t str)) -> u64 {
    let mut n = 0;
    for line in lines(text) {
        let no = first + n;
        n += 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        f(no, line);
    }
    n
}

/// An input opened for scanning.
pub enum Opened {
    /// Read whole: a CloudTrail log file, gzip data, a single record, or
    /// anything that is not plainly NDJSON.
    Whole(InputText),
    /// NDJSON, read a run of whole lines at a time (memory stays bounded
    /// whatever the file's size).
    Lines(LineReader),
}

/// How much is read at a time.
const CHUNK: usize = 1 << 20;

/// Opens a file (or stdin for `-`). Input whose first line is a whole JSON
/// object without a top-level `Records` member, and that goes on past the
/// first read, is NDJSON (as [`for_each_record`] would find on the whole
/// text) and is read in runs of lines; anything else is read whole, as by
/// [`read_input`].
///
/// Read in runs, a file that is not UTF-8 from some line on has the lines
/// before it scanned (read whole, none are).
pub fn open_input(path: &Path) -> anyhow::Result<Opened> {
    let name = path.display().to_string();
    let what = || {
        if path.as_os_str() == "-" {
            "reading stdin".to_string()
        } else {
            format!("reading {name}")
        }
    };
    let mut src: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(what)?)
    };
    let mut buf = Vec::new();
    let eof = fill(&mut *src, &mut buf, CHUNK).with_context(what)?;
    if eof || !first_line_is_a_record(&buf) {
        src.read_to_end(&mut buf).with_context(what)?;
        return Ok(Opened::Whole(InputText {
            text: decode_bytes(&name, buf)?,
            name,
        }));
    }
    Ok(Opened::Lines(LineReader {
        name,
        src,
        buf,
        done: 0,
        offset: 0,
        eof: false,
    }))
}

/// Reads from `src` until `buf` holds `target` bytes or the input ends;
/// returns whether it ended.
fn fill(src: &mut dyn Read, buf: &mut Vec<u8>, target: usize) -> std::io::Result<bool> {
    let want = target.saturating_sub(buf.len());
    buf.reserve(want);
    src.take(want as u64).read_to_end(buf)?;
    Ok(buf.len() < target)
}

/// Whether `b` starts with a line that is a whole JSON object without a
/// top-level `Records` member.
fn first_line_is_a_record(b: &[u8]) -> bool {
    if b.first() != Some(&b'{') {
        return false;
    }
    let Some(nl) = b.iter().position(|&c| c == b'\n') else {
        return false;
    };
    let Ok(line) = std::str::from_utf8(&b[..nl]) else {
        return false;
    };
    match parse_document(line) {
        Ok(JsonValue::Object(obj)) => !ObjectIter::new(obj)
            .flatten()
            .any(|(k, _)| k.eq_str("Records")),
        _ => false,
    }
}

/// NDJSON read in runs of whole lines (see [`open_input`]).
pub struct LineReader {
    /// The file path as given (or `-` for stdin).
    pub name: String,
    src: Box<dyn Read>,
    buf: Vec<u8>,
    /// Bytes at the start of `buf` already handed out.
    done: usize,
    /// Offset in the input of `buf[0]`.
    offset: u64,
    eof: bool,
}

impl LineReader {
    /// The next run of whole lines (the last one may lack its `\n`), or
    /// `None` at the end. Lines are numbered on from the previous run: a
    /// run holds as many lines as [`lines`] finds in it.
    pub fn next_chunk(&mut self) -> anyhow::Result<Option<&str>> {
        if self.done > 0 {
            self.buf.drain(..self.done);
            self.offset += self.done as u64;
            self.done = 0;
        }
        let what = || format!("reading {}", self.name);
        if !self.eof && self.buf.len() < CHUNK {
            self.eof = fill(&mut *self.src, &mut self.buf, CHUNK).with_context(what)?;
        }
        let cut = loop {
            match self.buf.iter().rposition(|&c| c == b'\n') {
                Some(k) => break k + 1,
                None if self.eof => break self.buf.len(),
                None => {
                    // A line longer than what is held: read on.
                    let target = self.buf.len() + CHUNK;
                    self.eof = fill(&mut *self.src, &mut self.buf, target).with_context(what)?;
                }
            }
        };
        if cut == 0 {
            return Ok(None);
        }
        if let Err(e) = std::str::from_utf8(&self.buf[..cut]) {
            self.eof = true;
            self.buf.clear();
            anyhow::bail!(
                "{}: not UTF-8 text (byte {})",
                self.name,
                self.offset + e.valid_up_to() as u64
            )
        }
        self.done = cut;
        // SAFETY: `buf[..cut]` was checked to be UTF-8 just above.
        Ok(Some(unsafe {
            std::str::from_utf8_unchecked(&self.buf[..cut])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> (Layout, Vec<(u64, String)>, Vec<BadRecord>) {
        let mut recs = Vec::new();
        let mut bad = Vec::new();
        let layout = for_each_record(text, &mut |p, t| recs.push((p, t.to_string())), &mut |b| {
            bad.push(b)
        });
        (layout, recs, bad)
    }

    #[test]
    fn records_file_positions_are_indices() {
        let (layout, recs, bad) = collect(r#"{"Records":[{"eventName":"A"}, {"eventName":"B"}]}"#);
        assert_eq!(layout, Layout::Records);
        assert_eq!(
            recs,
            vec![
                (0, r#"{"eventName":"A"}"#.to_string()),
                (1, r#"{"eventName":"B"}"#.to_string())
            ]
        );
        assert!(bad.is_empty());
    }

    #[test]
    fn ndjson_positions_are_line_numbers() {
        let (layout, recs, _) = collect("{\"a\":1}\n\n{\"a\":2}\r\n");
        assert_eq!(layout, Layout::Lines);
        assert_eq!(
            recs,
            vec![(1, "{\"a\":1}".to_string()), (3, "{\"a\":2}".to_string())]
        );
    }

    #[test]
    fn non_object_records_are_reported() {
        let (_, recs, bad) = collect(r#"{"Records":[1,{"a":1}]}"#);
        assert_eq!(recs.len(), 1);
        assert_eq!(bad[0].position, 0);
    }

    /// Every input read through [`open_input`] gives the records, positions
    /// and layout that reading it whole gives, whether it is read in runs
    /// or not.
    #[test]
    fn streamed_ndjson_reads_as_the_whole_text() {
        let dir = std::env::temp_dir().join(format!("twokey-guard-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rec = |i: usize| format!(r#"{{"eventName":"E{i}","pad":"{}"}}"#, "x".repeat(i % 700));
        let mut big = String::new();
        for i in 0..4000 {
            big.push_str(&rec(i));
            big.push_str(match i % 5 {
                0 => "\r\n",
                1 => "\n\n   \n",
                _ => "\n",
            });
        }
        let long_line = format!(r#"{{"eventName":"L","pad":"{}"}}"#, "y".repeat(3 * CHUNK));
        let cases = [
            big.clone(),
            big.trim_end().to_string(),
            format!("{big}{long_line}\n{}", rec(1)),
            format!(r#"{{"Records":[{}]}}"#, rec(1)) + "\n" + &big,
            format!(r#"{{"Records":[{},{}]}}"#, rec(1), rec(2)) + &" ".repeat(2 * CHUNK),
            format!("\n{big}"),
            format!("{{\n\"eventName\":\"P\"\n}}\n{}", " ".repeat(CHUNK)),
            format!("{}\n{big}", "{\"a\":1"),
            rec(3),
        ];
        for (k, text) in cases.iter().enumerate() {
            let path = dir.join(format!("case-{k}.ndjson"));
            std::fs::write(&path, text).unwrap();
            let (want_layout, want, want_bad) = collect(text);
            let mut got = Vec::new();
            let mut got_bad = Vec::new();
            let layout = match open_input(&path).unwrap() {
                Opened::Whole(t) => for_each_record(
                    &t.text,
                    &mut |p, r| got.push((p, r.to_string())),
                    &mut |b| got_bad.push(b),
                ),
                Opened::Lines(mut r) => {
                    let mut line = 1;
                    while let Some(chunk) = r.next_chunk().unwrap() {
                        line +=
                            for_each_line(chunk, line, &mut |p, r| got.push((p, r.to_string())));
                    }
                    Layout::Lines
                }
            };
            assert_eq!(layout, want_layout, "case {k}");
            assert_eq!(got_bad, want_bad, "case {k}");
            assert!(got == want, "case {k}: records differ");
        }
        // Not UTF-8 after the first run: the runs before it are read.
        let path = dir.join("bad-utf8.ndjson");
        let mut bytes = big.clone().into_bytes();
        let at = bytes.len() - 10;
        bytes[at] = 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let Opened::Lines(mut r) = open_input(&path).unwrap() else {
            panic!("expected lines");
        };
        let e = loop {
            match r.next_chunk() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert!(
            e.to_string()
                .ends_with(&format!("not UTF-8 text (byte {at})")),
            "{e}"
        );
        assert!(r.next_chunk().unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"Records\":[]}").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decode_bytes("x.json.gz", gz).unwrap(), "{\"Records\":[]}");
        assert!(decode_bytes("x", vec![0x1f, 0x8b, 0, 0]).is_err());
    }
}
