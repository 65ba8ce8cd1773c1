//! Where CloudTrail records come from: log files (`.json`, `.json.gz`) with a
//! `Records` array, NDJSON (one record a line), stdin, directory trees.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use twokey_sigma::json::{parse_document, ArrayIter, JsonValue, ObjectIter};

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
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        f(i as u64 + 1, line);
    }
    Layout::Lines
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
