//! `twokey guard scan` and `twokey guard watch`.

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use twokey_sigma::{
    Config, CorrelationKind, Correlator, Event, JsonValue, RuleSet, RuleSetBuilder,
};

use crate::grants::{correlate, Coverage, GrantSource, TwoPerson};
use crate::input::{self, BadRecord, Opened};
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

/// Options for grant correlation ("outside two-person control").
///
/// Correlation runs when `--grants FILE` is given or a token is (`--token`
/// or `TWOKEY_TOKEN`), unless `--no-grants`. Inside the `twokey` binary,
/// `--server`/`--token` are the same as its global options.
#[derive(Debug, Clone, clap::Args)]
pub struct GrantArgs {
    /// twokey server whose active grants and policy are fetched.
    #[arg(long, env = "TWOKEY_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// API token for --server (any identity may read active grants).
    #[arg(long, env = "TWOKEY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Offline grants: {"requests": [GET /v1/requests?scope=active],
    /// "policy": GET /v1/policy}.
    #[arg(long, value_name = "FILE")]
    pub grants: Option<PathBuf>,
    /// Rule levels whose findings are checked against grants.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "high,critical",
        value_name = "LEVELS"
    )]
    pub high_risk: Vec<String>,
    /// Do not correlate with grants even if a token is set.
    #[arg(long)]
    pub no_grants: bool,
    /// watch: seconds between refreshes of the grants from the server.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub grants_refresh: u64,
}

impl Default for GrantArgs {
    fn default() -> Self {
        GrantArgs {
            server: "http://127.0.0.1:8080".into(),
            token: None,
            grants: None,
            high_risk: vec!["high".into(), "critical".into()],
            no_grants: false,
            grants_refresh: 30,
        }
    }
}

impl GrantArgs {
    /// Where grants come from, or `None` when correlation is off.
    pub fn source(&self) -> Option<GrantSource> {
        if self.no_grants {
            return None;
        }
        if let Some(f) = &self.grants {
            return Some(GrantSource::File(f.clone()));
        }
        self.token
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| GrantSource::Server {
                url: self.server.clone(),
                token: t.clone(),
            })
    }

    /// Loads the grants; `None` when correlation is off.
    pub fn load(&self) -> anyhow::Result<Option<TwoPerson>> {
        let Some(src) = self.source() else {
            return Ok(None);
        };
        Ok(Some(TwoPerson {
            index: std::sync::Arc::new(src.load()?),
            levels: self.high_risk.iter().map(|l| l.to_lowercase()).collect(),
        }))
    }
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
    /// Grant correlation.
    #[command(flatten)]
    pub grants: GrantArgs,
    /// AWS endpoint and region for `s3://` paths.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// CloudTrail log files (.json, .json.gz), NDJSON files, directories
    /// (walked recursively), `-` for stdin, or `s3://BUCKET/PREFIX` (all
    /// `.json`/`.json.gz` objects under it, e.g. a trail's
    /// `AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/`; needs the
    /// `aws` feature).
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
    /// Grant correlation.
    #[command(flatten)]
    pub grants: GrantArgs,
    /// Where records come from when --sqs is not given: `-` (stdin, one
    /// record or one CloudTrail log file a line).
    #[arg(long, default_value = "-", value_name = "SOURCE")]
    pub input: String,
    /// SQS queue URL of S3 `ObjectCreated` notifications (direct or in an
    /// SNS envelope): each object is fetched and scanned, and the message
    /// deleted only after that (needs the `aws` feature).
    #[arg(long, value_name = "QUEUE_URL")]
    pub sqs: Option<String>,
    /// AWS endpoint and region.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// --sqs: stop when a receive finds the queue empty (batch runs, tests).
    #[arg(long)]
    pub until_empty: bool,
    /// --sqs: long-poll wait per receive, seconds (0-20).
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub wait: u8,
    /// Also send each finding as an alert to this signed JSON webhook
    /// (twokey-notify format; needs --webhook-secret).
    #[arg(long, value_name = "URL", requires = "webhook_secret")]
    pub webhook: Option<String>,
    /// HMAC secret for --webhook.
    #[arg(
        long,
        env = "TWOKEY_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "S"
    )]
    pub webhook_secret: Option<String>,
}

/// Where AWS is (for `s3://` paths and `--sqs`); credentials come from the
/// SDK's default chain (environment, profile, instance role).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AwsArgs {
    /// AWS endpoint override, e.g. a moto server `http://127.0.0.1:5000`.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS region (default: from the environment/profile, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
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

pub(crate) fn report_unsupported(set: &RuleSet, err: &mut dyn Write) {
    for u in set.unsupported() {
        let _ = writeln!(err, "twokey guard: rule not run: {u}");
    }
}

/// Hands records (position, text) to the first callback and unreadable
/// ones to the second.
type RecordWalk<'w, 't> = dyn FnMut(&mut dyn FnMut(u64, &'t str), &mut dyn FnMut(BadRecord)) + 'w;

/// Runs a [`RuleSet`] and its correlations over records, one at a time.
pub struct Scanner<'r> {
    set: &'r RuleSet,
    correlator: Correlator,
    hits: Vec<usize>,
    two_person: Option<TwoPerson>,
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
            two_person: None,
        }
    }

    /// Correlates high-risk findings with grants from now on (`None`: off).
    pub fn set_grants(&mut self, two_person: Option<TwoPerson>) {
        self.two_person = two_person;
    }

    /// Whether grant correlation is on.
    pub fn has_grants(&self) -> bool {
        self.two_person.is_some()
    }

    /// The coverage of a record, if some finding of it at one of `levels` is
    /// high-risk.
    fn coverage<'a>(
        &self,
        raw: &str,
        event_time: Option<&str>,
        mut levels: impl Iterator<Item = &'a str>,
    ) -> Option<Coverage> {
        let tp = self.two_person.as_ref()?;
        if !levels.any(|l| tp.is_high_risk(l)) {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(raw).ok()?;
        let at = event_time
            .and_then(twokey_sigma::correlation::parse_time_ms)
            .unwrap_or_else(now_ms);
        Some(correlate(&v, &tp.index, at))
    }

    fn is_high_risk(&self, level: &str) -> bool {
        self.two_person
            .as_ref()
            .is_some_and(|tp| tp.is_high_risk(level))
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
        let corr_hits = self.correlator.observe(self.set, &ev, &self.hits);
        // Hits of correlation base rules alone (not emitting) write nothing:
        // the record is neither validated nor copied.
        if corr_hits.is_empty() && !self.hits.iter().any(|&i| self.set.rules()[i].emit) {
            return Ok(0);
        }
        // The reader checks structure, not every nested literal: the record
        // is validated in full once, before it is copied into findings.
        let raw = twokey_sigma::json::validate(text)?;
        let event_id = top_str(&ev, "eventID");
        let event_name = top_str(&ev, "eventName");
        let event_time = top_str(&ev, "eventTime");
        let coverage = self.coverage(
            raw,
            event_time.as_deref(),
            self.hits
                .iter()
                .map(|&i| &self.set.rules()[i])
                .filter(|r| r.emit)
                .map(|r| r.meta.level.as_str())
                .chain(
                    corr_hits
                        .iter()
                        .map(|h| self.set.correlations()[h.correlation].meta.level.as_str()),
                ),
        );
        let coverage = coverage.filter(|c| *c != Coverage::NotApplicable);
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
                two_person: coverage
                    .as_ref()
                    .filter(|_| self.is_high_risk(&rule.meta.level)),
            })?;
        }
        for hit in corr_hits {
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
                two_person: coverage
                    .as_ref()
                    .filter(|_| self.is_high_risk(&c.meta.level)),
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
        self.scan_each(file, emit, bad, &mut |f, layout_bad| {
            input::for_each_record(text, f, layout_bad);
        })
    }

    /// Matches every line of a run of NDJSON lines (see
    /// [`input::LineReader`]), the first numbered `first_line`; unreadable
    /// records go to `bad`. Returns the number of findings and of lines.
    pub fn scan_lines(
        &mut self,
        file: &str,
        first_line: u64,
        text: &str,
        emit: &mut dyn FnMut(&Finding<'_>) -> anyhow::Result<()>,
        bad: &mut dyn FnMut(BadRecord),
    ) -> anyhow::Result<(usize, u64)> {
        let mut lines = 0;
        let found = self.scan_each(file, emit, bad, &mut |f, _| {
            lines = input::for_each_line(text, first_line, f);
        })?;
        Ok((found, lines))
    }

    /// Scans the records `each` hands out (and the records it reports as
    /// unreadable); bad records are reported in position order at the end.
    fn scan_each<'t>(
        &mut self,
        file: &str,
        emit: &mut dyn FnMut(&Finding<'_>) -> anyhow::Result<()>,
        bad: &mut dyn FnMut(BadRecord),
        each: &mut RecordWalk<'_, 't>,
    ) -> anyhow::Result<usize> {
        let mut total = 0;
        let mut failure = None;
        let mut bad_records = Vec::new();
        let mut bad_layout = Vec::new();
        each(
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

/// Keeps a watch's grants fresh: reloads from the server every
/// `--grants-refresh` seconds; a failed reload keeps the last index and is
/// reported.
pub(crate) struct Refresher {
    args: GrantArgs,
    current: Option<TwoPerson>,
    loaded: std::time::Instant,
}

impl Refresher {
    pub(crate) fn new(args: &GrantArgs) -> anyhow::Result<Self> {
        Ok(Refresher {
            current: args.load()?,
            args: args.clone(),
            loaded: std::time::Instant::now(),
        })
    }

    pub(crate) fn current(&self) -> Option<TwoPerson> {
        self.current.clone()
    }

    /// A new index when one was due and loaded.
    pub(crate) fn refresh(&mut self, err: &mut dyn Write) -> Option<TwoPerson> {
        if !matches!(self.args.source(), Some(GrantSource::Server { .. }))
            || self.loaded.elapsed().as_secs() < self.args.grants_refresh
        {
            return None;
        }
        self.loaded = std::time::Instant::now();
        match self.args.load() {
            Ok(tp) => {
                self.current = tp;
                self.current.clone()
            }
            Err(e) => {
                let _ = writeln!(
                    err,
                    "twokey guard: refreshing grants failed, keeping the last ones: {e:#}"
                );
                None
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
    // 1 MiB: a finding carries its record (about a kilobyte), so a scan with
    // many findings writes in few calls.
    let mut buffered = std::io::BufWriter::with_capacity(1 << 20, out);
    let out: &mut dyn Write = &mut buffered;
    let set = load_rules(&args.rules)?;
    report_unsupported(&set, err);
    let mut status = if args.rules.strict && !set.unsupported().is_empty() {
        2
    } else {
        0
    };
    let mut scanner = Scanner::new(&set);
    scanner.set_grants(args.grants.load()?);
    let mut writer = FindingWriter::new(args.format).with_two_person_column(scanner.has_grants());
    let mut findings = 0usize;
    let mut one = |inp: anyhow::Result<Opened>,
                   status: &mut i32,
                   err: &mut dyn Write|
     -> anyhow::Result<()> {
        let inp = match inp {
            Ok(i) => i,
            Err(e) => {
                writeln!(err, "twokey guard: {e:#}")?;
                *status = 2;
                return Ok(());
            }
        };
        let mut bad_seen = false;
        match inp {
            Opened::Whole(inp) => {
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
            }
            Opened::Lines(mut reader) => {
                let name = reader.name.clone();
                let mut line = 1;
                loop {
                    let chunk = match reader.next_chunk() {
                        Ok(Some(c)) => c,
                        Ok(None) => break,
                        Err(e) => {
                            writeln!(err, "twokey guard: {e:#}")?;
                            bad_seen = true;
                            break;
                        }
                    };
                    let (n, lines) = scanner.scan_lines(
                        &name,
                        line,
                        chunk,
                        &mut |f| writer.write(out, f),
                        &mut |b| {
                            bad_seen = true;
                            let _ = writeln!(
                                err,
                                "twokey guard: {}:{}: {}",
                                name, b.position, b.reason
                            );
                        },
                    )?;
                    findings += n;
                    line += lines;
                }
            }
        }
        if bad_seen {
            *status = 2;
        }
        Ok(())
    };
    #[cfg(feature = "aws")]
    let mut aws: Option<crate::aws::Aws> = None;
    for p in &args.paths {
        let Some(url) = p.to_str().filter(|s| s.starts_with("s3://")) else {
            for path in input::expand_paths(std::slice::from_ref(p))? {
                one(input::open_input(&path), &mut status, err)?;
            }
            continue;
        };
        #[cfg(feature = "aws")]
        {
            let Some((bucket, prefix)) = crate::aws::parse_s3_url(url) else {
                writeln!(err, "twokey guard: {url}: not s3://BUCKET/PREFIX")?;
                status = 2;
                continue;
            };
            if aws.is_none() {
                aws = Some(crate::aws::Aws::new(&args.aws)?);
            }
            let Some(a) = aws.as_ref() else { continue };
            let keys = match a.list(&bucket, &prefix) {
                Ok(k) => k,
                Err(e) => {
                    writeln!(err, "twokey guard: {e:#}")?;
                    status = 2;
                    continue;
                }
            };
            a.for_each_object(&bucket, &keys, &mut |inp| {
                one(inp.map(Opened::Whole), &mut status, err)
            })?;
        }
        #[cfg(not(feature = "aws"))]
        {
            writeln!(
                err,
                "twokey guard: {url}: S3 input needs twokey-guard's `aws` feature"
            )?;
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
    if let Some(queue) = &args.sqs {
        #[cfg(feature = "aws")]
        return quiet_broken_pipe(crate::aws::watch_sqs(
            args,
            queue,
            out,
            &mut std::io::stderr(),
        ));
        #[cfg(not(feature = "aws"))]
        anyhow::bail!("--sqs {queue}: SQS input needs twokey-guard's `aws` feature");
    }
    if args.webhook.is_some() {
        anyhow::bail!("--webhook is available with --sqs only");
    }
    if args.input != "-" {
        anyhow::bail!(
            "watch input {:?} is not available: use - (stdin) or --sqs QUEUE_URL",
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
    let mut grants = Refresher::new(&args.grants)?;
    scanner.set_grants(grants.current());
    let mut writer = FindingWriter::new(args.format).with_two_person_column(scanner.has_grants());
    let mut line = String::new();
    let mut n: u64 = 0;
    loop {
        if let Some(tp) = grants.refresh(err) {
            scanner.set_grants(Some(tp));
        }
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
