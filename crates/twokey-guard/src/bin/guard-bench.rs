//! Benchmark helper for twokey guard (driven by `scripts/bench-guard.sh`).
//!
//! `guard-bench gen --templates FILE --events N --out FILE` writes an NDJSON
//! corpus of N CloudTrail records made from real-shaped templates, with
//! varied ids, times, addresses, users and regions.
//!
//! `guard-bench run [--rules DIR]... [--builtin] FILE` loads the corpus into
//! memory and times, on the calling thread: a byte-reading baseline, a full
//! JSON parse baseline (serde_json), twokey's matcher, and a full scan that
//! also writes NDJSON findings (to a sink). One result line per measurement;
//! rates are per CPU second of the measuring thread, so other load on the
//! machine does not skew them.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use twokey_guard::output::{FindingWriter, Format};
use twokey_guard::{load_rules, RuleArgs, Scanner};
use twokey_sigma::Event;

#[derive(Parser)]
#[command(about = "twokey guard benchmark helper")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a corpus.
    Gen {
        /// NDJSON file of template records.
        #[arg(long)]
        templates: PathBuf,
        /// Number of records to write.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Output NDJSON file.
        #[arg(long)]
        out: PathBuf,
        /// Seed for the value generator.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Time the baselines and twokey over a corpus.
    Run {
        #[command(flatten)]
        rules: RuleArgs,
        /// Repeat each measurement this many times and keep the fastest.
        #[arg(long, default_value_t = 3)]
        repeat: u32,
        /// The corpus (NDJSON).
        corpus: PathBuf,
    },
}

/// xorshift64*: a small, fast, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn set_str(v: &mut serde_json::Value, path: &[&str], new: String) {
    let mut cur = v;
    for (i, k) in path.iter().enumerate() {
        let Some(next) = cur.get_mut(*k) else { return };
        if i + 1 == path.len() {
            if next.is_string() {
                *next = serde_json::Value::String(new);
            }
            return;
        }
        cur = next;
    }
}

fn gen(templates: &PathBuf, events: u64, out: &PathBuf, seed: u64) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(templates)
        .with_context(|| format!("reading {}", templates.display()))?;
    let mut tpls: Vec<serde_json::Value> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut v: serde_json::Value = serde_json::from_str(line)?;
        if let Some(o) = v.as_object_mut() {
            // Drop the Panther-added members: the corpus is raw CloudTrail.
            o.retain(|k, _| !k.starts_with("p_"));
        }
        tpls.push(v);
    }
    anyhow::ensure!(!tpls.is_empty(), "no templates");
    let regions = [
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-northeast-1",
    ];
    let users = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    let mut rng = Rng(seed | 1);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let start = 1_767_225_600i64; // 2026-01-01T00:00:00Z
    for i in 0..events {
        let mut v = tpls[(rng.next() % tpls.len() as u64) as usize].clone();
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            rng.next() as u32,
            rng.next() as u16,
            rng.next() as u16 & 0xfff,
            rng.next() as u16 & 0xfff,
            rng.next() & 0xffff_ffff_ffff
        );
        set_str(&mut v, &["eventID"], id.clone());
        set_str(&mut v, &["requestID"], id.to_uppercase());
        set_str(&mut v, &["eventTime"], rfc3339(start + (i / 20) as i64));
        set_str(&mut v, &["awsRegion"], rng.pick(&regions).to_string());
        let ip = rng.next();
        set_str(
            &mut v,
            &["sourceIPAddress"],
            format!(
                "{}.{}.{}.{}",
                1 + (ip % 223),
                (ip >> 8) % 256,
                (ip >> 16) % 256,
                (ip >> 24) % 256
            ),
        );
        let user = rng.pick(&users);
        set_str(&mut v, &["userIdentity", "userName"], user.to_string());
        if let Some(arn) = v.pointer("/userIdentity/arn").and_then(|a| a.as_str()) {
            if let Some(cut) = arn.rfind('/') {
                let new = format!("{}/{user}", &arn[..cut]);
                set_str(&mut v, &["userIdentity", "arn"], new);
            }
        }
        serde_json::to_writer(&mut w, &v)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

struct Measure {
    name: &'static str,
    /// CPU time of this thread: what one core spent, whatever else the
    /// machine was doing.
    secs: f64,
    wall: f64,
    matches: u64,
}

fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn best<F: FnMut() -> anyhow::Result<u64>>(
    name: &'static str,
    repeat: u32,
    mut f: F,
) -> anyhow::Result<Measure> {
    // GUARD_BENCH_ONLY=name runs one measurement (for profiling).
    let only = std::env::var("GUARD_BENCH_ONLY").ok();
    let repeat = if only.as_deref().is_some_and(|o| o != name) {
        0
    } else {
        repeat.max(1)
    };
    let mut m = Measure {
        name,
        secs: f64::INFINITY,
        wall: f64::INFINITY,
        matches: 0,
    };
    for _ in 0..repeat {
        let t = Instant::now();
        let c = thread_cpu_secs();
        m.matches = f()?;
        m.secs = m.secs.min(thread_cpu_secs() - c);
        m.wall = m.wall.min(t.elapsed().as_secs_f64());
    }
    Ok(m)
}

fn run(rules: &RuleArgs, repeat: u32, corpus: &PathBuf) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(corpus).with_context(|| format!("reading {}", corpus.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let set = load_rules(rules)?;
    for u in set.unsupported() {
        eprintln!("rule not run: {u}");
    }
    eprintln!(
        "corpus: {} events, {:.1} MB; rules: {} detection, {} correlation",
        lines.len(),
        bytes as f64 / 1e6,
        set.rules().len(),
        set.correlations().len()
    );
    // Digest of (record, rule) matches, to compare builds.
    let match_digest = std::cell::RefCell::new(0u64);
    let mut results = Vec::new();
    results.push(best("read-bytes", repeat, || {
        // Touch every byte: the floor any reader has to pay.
        let mut acc = 0u64;
        for l in &lines {
            acc = acc.wrapping_add(l.bytes().map(u64::from).sum::<u64>());
        }
        std::hint::black_box(acc);
        Ok(0)
    })?);
    results.push(best("serde-json-parse", repeat, || {
        for l in &lines {
            let v: serde::de::IgnoredAny = serde_json::from_str(l)?;
            std::hint::black_box(v);
        }
        Ok(0)
    })?);
    results.push(best("twokey-parse", repeat, || {
        for l in &lines {
            std::hint::black_box(Event::parse(l)?);
        }
        Ok(0)
    })?);
    results.push(best("twokey-match", repeat, || {
        let mut hits = Vec::new();
        let mut n = 0u64;
        let mut digest = 0u64;
        for (k, l) in lines.iter().enumerate() {
            let ev = Event::parse(l)?;
            set.matches(&ev, &mut hits);
            n += hits.iter().filter(|&&i| set.rules()[i].emit).count() as u64;
            for &i in &hits {
                // Which rules matched which record, order included.
                digest = (digest ^ ((k as u64) << 16 | i as u64)).wrapping_mul(0x100_0000_01b3);
            }
        }
        *match_digest.borrow_mut() = digest;
        Ok(n)
    })?);
    results.push(best("twokey-scan-ndjson", repeat, || {
        let mut scanner = Scanner::new(&set);
        let mut writer = FindingWriter::new(Format::Ndjson);
        let mut sink = std::io::BufWriter::new(std::io::sink());
        let mut n = 0u64;
        for (i, l) in lines.iter().enumerate() {
            n += scanner.scan_record("corpus", i as u64 + 1, l, &mut |f| {
                writer.write(&mut sink, f)
            })? as u64;
        }
        Ok(n)
    })?);
    for m in results.iter().filter(|m| m.secs.is_finite()) {
        print!(
            "{} cpu_secs={:.4} wall_secs={:.4} events_per_sec={:.0} mb_per_sec={:.1} matches={}",
            m.name,
            m.secs,
            m.wall,
            lines.len() as f64 / m.secs,
            bytes as f64 / 1e6 / m.secs,
            m.matches
        );
        if m.name == "twokey-match" {
            print!(" digest={:016x}", *match_digest.borrow());
        }
        println!();
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Gen {
            templates,
            events,
            out,
            seed,
        } => gen(&templates, events, &out, seed),
        Cmd::Run {
            rules,
            repeat,
            corpus,
        } => run(&rules, repeat, &corpus),
    }
}
