//! `twokey guard scan` and `twokey guard watch`.

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use twokey_sigma::{
    Config, CorrelationKind, Correlator, Event, JsonValue, RuleSet, RuleSetBuilder,
};

use crate::input::{self, BadRecord};
use crate::output::{CorrelationInfo, Finding, FindingWriter, Format};

/// Options shared by `scan` and `watch` for choosing rules.
#[derive(Debug, Clone, clap::Args)]
pub struct RuleArgs {
    /// Directory (searched recursively for *.yml, *.yaml) or file of Sigma
    /// rules; repeat for several. Without it, twokey's built-in pack runs.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Also run the built-in pack when --rules is given.
    #[arg(long)]
    pub builtin: bool,
    /// Engine configuration (field mapping, placeholders) in YAML.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Exit with status 2 when a rule cannot run (by default it is reported
    /// on stderr and the others run).
    #[arg(long)]
    pub strict: bool,
}

/// `twokey guard scan`: runs Sigma rules over CloudTrail files.
#[derive(Debug, Clone, clap::Args)]
pub struct ScanArgs {
    /// Which rules to run.
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: Format,
    /// CloudTrail log files (.json, .json.gz), NDJSON files, directories
    /// (walked recursively), or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `twokey guard watch`: runs Sigma rules continuously over a stream.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Which rules to run.
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: Format,
    /// Where records come from. Only `-` (stdin, one record or one
    /// CloudTrail log file a line) is available in this build.
    #[arg(long, default_value = "-", value_name = "SOURCE")]
    pub input: String,
}

/// Reads the rule files named by `args` (or the built-in pack) and compiles
/// them. Unsupported rules are in [`RuleSet::unsupported`].
pub fn load_rules(args: &RuleArgs) -> anyhow::Result<RuleSet> {
    let cfg = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Config::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => Config::cloudtrail(),
    };
    let mut b = RuleSetBuilder::new(cfg);
    if args.rules.is_empty() || args.builtin {
        for (name, text) in crate::pack::PACK {
            b.add_yaml(&format!("builtin:{name}"), text);
        }
    }
    for dir in &args.rules {
        let mut files = Vec::new();
        if dir.is_dir() {
            walk_rules(dir, &mut files)?;
            files.sort();
        } else {
            files.push(dir.clone());
        }
        for f in files {
            let text =
                std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            b.add_yaml(&f.display().to_string(), &text);
        }
    }
    Ok(b.build())
}

fn walk_rules(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk_rules(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn report_unsupported(set: &RuleSet, err: &mut dyn Write) {
    for u in set.unsupported() {
        let _ = writeln!(err, "twokey guard: rule not run: {u}");
    }
}

/// Runs a [`RuleSet`] and its correlations over records, one at a time.
pub struct Scanner<'r> {
    set: &'r RuleSet,
    correlator: Correlator,
    hits: Vec<usize>,
}

fn top_str<'a>(ev: &Event<'a>, key: &str) -> Option<Cow<'a, str>> {
    match ev.top(key)? {
        JsonValue::String(s) => Some(s.decode()),
        _ => None,
    }
}

impl<'r> Scanner<'r> {
    /// A scanner with empty correlation windows.
    pub fn new(set: &'r RuleSet) -> Self {
        Scanner {
            set,
            correlator: Correlator::new(),
            hits: Vec::with_capacity(8),
        }
    }

    /// Matches one record; calls `emit` for each finding. Returns the number
    /// of findings, or why the record is not a JSON object.
    pub fn scan_record(
        &mut self,
        file: &str,
        line: u64,
        text: &str,
        emit: &mut dyn FnMut(&Finding<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize> {
        let ev = Event::parse(text)?;
        self.set.matches(&ev, &mut self.hits);
        if self.hits.is_empty() {
            return Ok(0);
        }
        // The reader checks structure, not every nested literal: the record
        // is validated in full once, before it is copied into findings.
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(text).map_err(|e| twokey_sigma::JsonError {
                offset: e.column(),
                what: "invalid JSON inside a nested value",
            })?;
        let event_id = top_str(&ev, "eventID");
        let event_name = top_str(&ev, "eventName");
        let event_time = top_str(&ev, "eventTime");
        let mut n = 0;
        for &i in &self.hits {
            let rule = &self.set.rules()[i];
            if !rule.emit {
                continue;
            }
            n += 1;
            emit(&Finding {
                rule_id: &rule.meta.id,
                rule_title: &rule.meta.title,
                level: &rule.meta.level,
                file,
                line,
                event_id: event_id.as_deref(),
                event_name: event_name.as_deref(),
                event_time: event_time.as_deref(),
                event: raw,
                correlation: None,
            })?;
        }
        for hit in self.correlator.observe(self.set, &ev, &self.hits) {
            let c = &self.set.correlations()[hit.correlation];
            n += 1;
            emit(&Finding {
                rule_id: &c.meta.id,
                rule_title: &c.meta.title,
                level: &c.meta.level,
                file,
                line,
                event_id: event_id.as_deref(),
                event_name: event_name.as_deref(),
                event_time: event_time.as_deref(),
                event: raw,
                correlation: Some(CorrelationInfo {
                    kind: match c.kind {
                        CorrelationKind::EventCount => "event_count",
                        CorrelationKind::ValueCount => "value_count",
                        CorrelationKind::Temporal => "temporal",
                        CorrelationKind::TemporalOrdered => "temporal_ordered",
                    },
                    group: hit
                        .group
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::String(v)))
                        .collect(),
                    count: hit.count,
                    first_ms: hit.first_ms,
                    last_ms: hit.last_ms,
                }),
            })?;
        }
        Ok(n)
    }

    /// Matches every record of one input text; unreadable records go to
    /// `bad`. Returns the number of findings.
    pub fn scan_text(
        &mut self,
        file: &str,
        text: &str,
        emit: &mut dyn FnMut(&Finding<'_>) -> anyhow::Result<()>,
        bad: &mut dyn FnMut(BadRecord),
    ) -> anyhow::Result<usize> {
        let mut total = 0;
        let mut failure = None;
        let mut bad_records = Vec::new();
        let mut bad_layout = Vec::new();
        input::for_each_record(
            text,
            &mut |pos, rec| {
                if failure.is_some() {
                    return;
                }
                match self.scan_record(file, pos, rec, emit) {
                    Ok(n) => total += n,
                    Err(e) => match e.downcast::<twokey_sigma::JsonError>() {
                        Ok(je) => bad_records.push(BadRecord {
                            position: pos,
                            reason: je.to_string(),
                        }),
                        Err(other) => failure = Some(other),
                    },
                }
            },
            &mut |b| bad_layout.push(b),
        );
        bad_records.extend(bad_layout);
        bad_records.sort_by_key(|b| b.position);
        for b in bad_records {
            bad(b);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

/// `twokey guard scan`. Findings go to `out`, diagnostics to stderr.
/// Exit status: 0 no findings, 1 findings, 2 an input or rule could not be
/// read (findings from the rest are still written).
pub fn run_scan(args: &ScanArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    quiet_broken_pipe(scan_with(args, out, &mut std::io::stderr()))
}

/// A reader that went away (`| head`) ends the command like grep's: findings
/// were written, so status 1, and no error message.
fn quiet_broken_pipe(r: anyhow::Result<i32>) -> anyhow::Result<i32> {
    match r {
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                    || c.downcast_ref::<serde_json::Error>()
                        .and_then(|j| j.io_error_kind())
                        .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(1)
        }
        other => other,
    }
}

/// [`run_scan`] with diagnostics written to `err`.
pub fn scan_with(args: &ScanArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    // stdout is line-buffered: without this, every finding is a write call.
    let mut buffered = std::io::BufWriter::with_capacity(1 << 16, out);
    let out: &mut dyn Write = &mut buffered;
    let set = load_rules(&args.rules)?;
    report_unsupported(&set, err);
    let mut status = if args.rules.strict && !set.unsupported().is_empty() {
        2
    } else {
        0
    };
    let mut scanner = Scanner::new(&set);
    let mut writer = FindingWriter::new(args.format);
    let mut findings = 0usize;
    for path in input::expand_paths(&args.paths)? {
        let inp = match input::read_input(&path) {
            Ok(i) => i,
            Err(e) => {
                writeln!(err, "twokey guard: {e:#}")?;
                status = 2;
                continue;
            }
        };
        let mut bad_seen = false;
        findings += scanner.scan_text(
            &inp.name,
            &inp.text,
            &mut |f| writer.write(out, f),
            &mut |b| {
                bad_seen = true;
                let _ = writeln!(
                    err,
                    "twokey guard: {}:{}: {}",
                    inp.name, b.position, b.reason
                );
            },
        )?;
        if bad_seen {
            status = 2;
        }
    }
    out.flush()?;
    Ok(if status != 0 {
        status
    } else if findings > 0 {
        1
    } else {
        0
    })
}

/// `twokey guard watch` over stdin: each line is a record or a whole
/// CloudTrail log file; findings are written and flushed as they happen.
/// Returns 0 at end of input (2 if a rule or record could not be read).
pub fn run_watch(args: &WatchArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    if args.input != "-" {
        anyhow::bail!(
            "watch input {:?} is not available: this build reads stdin (-) only; \
             S3 and SQS inputs need the `aws` feature",
            args.input
        );
    }
    let stdin = std::io::stdin();
    quiet_broken_pipe(watch_reader(
        args,
        &mut stdin.lock(),
        out,
        &mut std::io::stderr(),
    ))
}

/// [`run_watch`] over any reader, diagnostics to `err`.
pub fn watch_reader(
    args: &WatchArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let set = load_rules(&args.rules)?;
    report_unsupported(&set, err);
    let mut status = if args.rules.strict && !set.unsupported().is_empty() {
        2
    } else {
        0
    };
    let mut scanner = Scanner::new(&set);
    let mut writer = FindingWriter::new(args.format);
    let mut line = String::new();
    let mut n: u64 = 0;
    loop {
        line.clear();
        if input.read_line(&mut line).context("reading stdin")? == 0 {
            break;
        }
        n += 1;
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let mut bad_seen = false;
        let found = if text.trim_start().starts_with("{\"Records\"") {
            scanner.scan_text("-", text, &mut |f| writer.write(out, f), &mut |b| {
                bad_seen = true;
                let _ = writeln!(
                    err,
                    "twokey guard: stdin line {n} record {}: {}",
                    b.position, b.reason
                );
            })?
        } else {
            match scanner.scan_record("-", n, text, &mut |f| writer.write(out, f)) {
                Ok(k) => k,
                Err(e) => {
                    bad_seen = true;
                    writeln!(err, "twokey guard: stdin line {n}: {e}")?;
                    0
                }
            }
        };
        if bad_seen {
            status = 2;
        }
        if found > 0 {
            out.flush()?;
        }
    }
    out.flush()?;
    Ok(status)
}
