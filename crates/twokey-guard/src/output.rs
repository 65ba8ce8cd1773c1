//! Finding formats: NDJSON, OCSF Detection Finding, and a table for people.

use std::io::Write;

use serde::Serialize;

use crate::grants::Coverage;

/// One finding: a rule (detection or correlation) that matched a record.
#[derive(Debug, Clone)]
pub struct Finding<'a> {
    /// The Sigma rule id.
    pub rule_id: &'a str,
    /// The rule title.
    pub rule_title: &'a str,
    /// The rule level.
    pub level: &'a str,
    /// The input the record came from.
    pub file: &'a str,
    /// 1-based line (NDJSON) or 0-based `Records` index (log files).
    pub line: u64,
    /// CloudTrail `eventID`, when present.
    pub event_id: Option<&'a str>,
    /// `eventName`, when present (for the table).
    pub event_name: Option<&'a str>,
    /// `eventTime`, when present.
    pub event_time: Option<&'a str>,
    /// The record's text, checked to be valid JSON (one value, no
    /// surrounding whitespace).
    pub event: &'a str,
    /// Set for correlation findings: what was counted.
    pub correlation: Option<CorrelationInfo>,
    /// Set for high-risk findings when grant correlation is on: covered by
    /// a grant, or outside two-person control.
    pub two_person: Option<&'a Coverage>,
}

/// What a correlation finding adds.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelationInfo {
    /// `event_count`, `value_count`, `temporal` or `temporal_ordered`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The group-by field values.
    pub group: serde_json::Map<String, serde_json::Value>,
    /// Events, distinct values or distinct rules counted.
    pub count: u64,
    /// Event time of the first event in the window (ms since the epoch).
    pub first_ms: i64,
    /// Event time of the event that completed the condition.
    pub last_ms: i64,
}

/// Output format of `scan` and `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON finding a line.
    Ndjson,
    /// One OCSF 1.1 Detection Finding (class 2004) a line.
    Ocsf,
    /// An aligned text table.
    Table,
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it (`"`,
/// `\\` and control characters; nothing else), so the NDJSON bytes are the
/// same as serializing the finding with serde_json.
fn push_json_str(buf: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, s);
        return;
    }
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

/// Whether `s` holds a byte serde_json escapes: `"`, `\\` or one below
/// 0x20. Eight bytes at a time (the has-less-than and has-zero-byte bit
/// tricks are exact as yes/no answers).
fn needs_escape(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    for c in chunks.by_ref() {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        let w = u64::from_le_bytes(a);
        let ctl = w.wrapping_sub(LO * 0x20) & !w;
        let q = w ^ (LO * u64::from(b'"'));
        let bs = w ^ (LO * u64::from(b'\\'));
        let hit = ctl | (q.wrapping_sub(LO) & !q) | (bs.wrapping_sub(LO) & !bs);
        if hit & HI != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&c| c < 0x20 || c == b'"' || c == b'\\')
}

/// Writes findings in one format.
pub struct FindingWriter {
    format: Format,
    header_done: bool,
    two_person_column: bool,
    /// The NDJSON line being made, up to the record.
    buf: Vec<u8>,
}

impl FindingWriter {
    /// A writer for `format`.
    pub fn new(format: Format) -> Self {
        FindingWriter {
            format,
            header_done: false,
            two_person_column: false,
            buf: Vec::new(),
        }
    }

    /// Adds a `TWO-PERSON` column to the table (grant correlation on).
    pub fn with_two_person_column(mut self, on: bool) -> Self {
        self.two_person_column = on;
        self
    }

    /// Writes one finding.
    pub fn write(&mut self, out: &mut dyn Write, f: &Finding<'_>) -> anyhow::Result<()> {
        let raw = f.event;
        match self.format {
            Format::Ndjson => {
                // The bytes serde_json writes for {rule_id, rule_title,
                // level, source: {file, line}, event_id, correlation (when
                // set), two_person (when set), event}, made by hand: the
                // record is copied as it is, and the keys are constants.
                let b = &mut self.buf;
                b.clear();
                b.extend_from_slice(b"{\"rule_id\":");
                push_json_str(b, f.rule_id);
                b.extend_from_slice(b",\"rule_title\":");
                push_json_str(b, f.rule_title);
                b.extend_from_slice(b",\"level\":");
                push_json_str(b, f.level);
                b.extend_from_slice(b",\"source\":{\"file\":");
                push_json_str(b, f.file);
                write!(b, ",\"line\":{}}},\"event_id\":", f.line)?;
                match f.event_id {
                    Some(id) => push_json_str(b, id),
                    None => b.extend_from_slice(b"null"),
                }
                if let Some(c) = &f.correlation {
                    b.extend_from_slice(b",\"correlation\":");
                    serde_json::to_writer(&mut *b, c)?;
                }
                if let Some(tp) = f.two_person {
                    b.extend_from_slice(b",\"two_person\":");
                    serde_json::to_writer(&mut *b, tp)?;
                }
                b.extend_from_slice(b",\"event\":");
                out.write_all(b)?;
                out.write_all(raw.as_bytes())?;
                out.write_all(b"}\n")?;
            }
            Format::Ocsf => {
                serde_json::to_writer(&mut *out, &ocsf(f, raw))?;
                out.write_all(b"\n")?;
            }
            Format::Table => {
                if !self.header_done {
                    let head = format!(
                        "{:<8} {:<44} {:<32} {:<28} {:<36}",
                        "LEVEL", "RULE", "EVENT", "SOURCE", "EVENT ID"
                    );
                    if self.two_person_column {
                        writeln!(out, "{head} TWO-PERSON")?;
                    } else {
                        writeln!(out, "{}", head.trim_end())?;
                    }
                    self.header_done = true;
                }
                let src = format!("{}:{}", short_tail(f.file, 22), f.line);
                let line = format!(
                    "{:<8} {:<44} {:<32} {:<28} {:<36}",
                    f.level,
                    short(f.rule_title, 44),
                    short(f.event_name.unwrap_or("-"), 32),
                    src,
                    f.event_id.unwrap_or("-")
                );
                if self.two_person_column {
                    writeln!(out, "{line} {}", two_person_cell(f.two_person))?;
                } else {
                    writeln!(out, "{}", line.trim_end())?;
                }
            }
        }
        Ok(())
    }
}

/// The table cell: `covered REQ (by a, b)`, `OUTSIDE principal`, or `-`.
fn two_person_cell(c: Option<&Coverage>) -> String {
    match c {
        Some(Coverage::Covered {
            request_id,
            approvers,
            break_glass,
            ..
        }) => {
            let names: Vec<&str> = approvers.iter().map(|a| a.name.as_str()).collect();
            if *break_glass {
                format!("covered {request_id} (break-glass)")
            } else {
                format!("covered {request_id} (by {})", names.join(", "))
            }
        }
        Some(Coverage::Outside { principal, person }) => match person {
            Some(p) => format!("OUTSIDE {p} ({principal})"),
            None => format!("OUTSIDE {principal}"),
        },
        _ => "-".into(),
    }
}

/// Keeps the last `n` characters of a file name, marking the cut with `…`.
fn short_tail(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    let keep: String = s.chars().skip(count - (n - 1)).collect();
    format!("…{keep}")
}

/// Keeps the first `n` characters of `s`, marking the cut with `…`.
fn short(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    let keep: String = s.chars().take(n - 1).collect();
    format!("{keep}…")
}

fn severity_id(level: &str) -> u8 {
    match level {
        "informational" => 1,
        "low" => 2,
        "medium" => 3,
        "high" => 4,
        "critical" => 5,
        _ => 0,
    }
}

/// An OCSF 1.1 Detection Finding for a Sigma match.
fn ocsf(f: &Finding<'_>, raw: &str) -> serde_json::Value {
    let time = f
        .event_time
        .and_then(twokey_sigma::correlation::parse_time_ms)
        .unwrap_or(0);
    let sev = severity_id(f.level);
    serde_json::json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": sev,
        "severity": f.level,
        "status_id": 1,
        "status": "New",
        "time": time,
        "message": f.rule_title,
        "metadata": {
            "version": "1.1.0",
            "product": {"name": "twokey guard", "vendor_name": "twokey"},
            "log_name": f.file,
        },
        "finding_info": {
            "uid": format!("{}:{}:{}", f.rule_id, f.file, f.line),
            "title": f.rule_title,
            "analytic": {
                "uid": f.rule_id,
                "name": f.rule_title,
                "type_id": if f.correlation.is_some() { 5 } else { 1 },
                "type": if f.correlation.is_some() { "Other" } else { "Rule" },
            },
            "src_url": null,
        },
        "evidences": [{"data": {"event_id": f.event_id, "file": f.file, "line": f.line}}],
        "unmapped": {"correlation": f.correlation, "two_person": f.two_person},
        "raw_data": raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    /// The finding as serde_json writes it: what the NDJSON writer made by
    /// hand must equal, byte for byte.
    #[derive(Serialize)]
    struct Reference<'a> {
        rule_id: &'a str,
        rule_title: &'a str,
        level: &'a str,
        source: Source<'a>,
        event_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        correlation: Option<&'a CorrelationInfo>,
        #[serde(skip_serializing_if = "Option::is_none")]
        two_person: Option<&'a Coverage>,
        event: &'a RawValue,
    }

    #[derive(Serialize)]
    struct Source<'a> {
        file: &'a str,
        line: u64,
    }

    #[test]
    fn escape_check_finds_every_escaped_byte_at_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for c in 0u8..=255 {
                    if c >= 0x80 {
                        continue;
                    }
                    let mut s = vec![b'a'; len];
                    s[at] = c;
                    let want = c < 0x20 || c == b'"' || c == b'\\';
                    assert_eq!(needs_escape(&s), want, "{len} {at} {c}");
                }
            }
        }
        assert!(!needs_escape("é😀\u{7f}".as_bytes()));
    }

    #[test]
    fn ndjson_is_what_serde_json_writes() {
        let raw: &RawValue =
            serde_json::from_str(r#"{"eventName":"A\"b","x":[1, 2],"u":"é\u0001"}"#).unwrap();
        let mut group = serde_json::Map::new();
        group.insert("k\"".into(), serde_json::Value::String("v\n".into()));
        let corr = CorrelationInfo {
            kind: "event_count",
            group,
            count: 3,
            first_ms: -5,
            last_ms: 7,
        };
        let covered = Coverage::Outside {
            principal: "arn:aws:iam::1:user/\u{7f}x".into(),
            person: None,
        };
        let strings = [
            "plain",
            "",
            "quote \" and \\ backslash",
            "ctl \u{0}\u{8}\t\n\u{c}\r\u{1f} end",
            "non-ASCII é 😀 \u{7f}",
        ];
        for s in strings {
            for (event_id, correlation, two_person) in [
                (Some(s), None, None),
                (None, Some(&corr), None),
                (Some("id"), Some(&corr), Some(&covered)),
                (None, None, Some(&covered)),
            ] {
                let f = Finding {
                    rule_id: s,
                    rule_title: "title: \"x\"",
                    level: s,
                    file: s,
                    line: u64::MAX,
                    event_id,
                    event_name: None,
                    event_time: None,
                    event: raw.get(),
                    correlation: correlation.cloned(),
                    two_person,
                };
                let mut want = serde_json::to_vec(&Reference {
                    rule_id: f.rule_id,
                    rule_title: f.rule_title,
                    level: f.level,
                    source: Source {
                        file: f.file,
                        line: f.line,
                    },
                    event_id: f.event_id,
                    correlation: f.correlation.as_ref(),
                    two_person: f.two_person,
                    event: raw,
                })
                .unwrap();
                want.push(b'\n');
                let mut got = Vec::new();
                let mut w = FindingWriter::new(Format::Ndjson);
                w.write(&mut got, &f).unwrap();
                w.write(&mut got, &f).unwrap();
                let mut twice = want.clone();
                twice.extend_from_slice(&want);
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    String::from_utf8(twice).unwrap()
                );
            }
        }
    }
}
