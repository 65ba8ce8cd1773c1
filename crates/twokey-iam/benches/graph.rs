//! The graph of who can become whom on a generated account, and the full
//! high-risk list answered over it: `scripts/bench-iam.sh` generates the
//! account (`scripts/gen-iam-account.py`), runs this and PMapper on the
//! same files and prints both side by side.
//!
//! `TWOKEY_IAM_BENCH_DIR=DIR cargo bench --workspace --bench graph` prints
//! one JSON line: parse, build and answer seconds, nodes, edges, holders,
//! peak resident memory (VmHWM, kB).

use std::time::Instant;

use twokey_iam::graph::{AccountInput, Graph, HighRisk, Twokey};
use twokey_iam::AuthDetails;

fn peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let Ok(dir) = std::env::var("TWOKEY_IAM_BENCH_DIR") else {
        println!("TWOKEY_IAM_BENCH_DIR not set: run scripts/bench-iam.sh");
        return;
    };
    let dir = std::path::Path::new(&dir);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(f).display()))
    };
    let t0 = Instant::now();
    let details = AuthDetails::parse(&read("auth-details.json")).expect("auth details");
    let risks: Vec<serde_json::Value> = serde_json::from_str(&read("risks.json")).expect("risks");
    let tk: serde_json::Value = serde_json::from_str(&read("twokey.json")).expect("twokey");
    let list = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let twokey = Twokey {
        targets: list(&tk["targets"]),
        gateway: list(&tk["gateway"]),
    };
    let risks: Vec<HighRisk> = risks
        .iter()
        .map(|r| HighRisk {
            action: r["action"].as_str().unwrap_or_default().into(),
            resource: r["resource"].as_str().unwrap_or("*").into(),
            why: "bench".into(),
        })
        .collect();
    let t1 = Instant::now();
    let now = "2026-12-01T00:00:00Z".parse().expect("time");
    let g = Graph::build(
        vec![AccountInput {
            account: "111111111111".into(),
            details,
            scps: vec![],
        }],
        vec![],
        twokey,
        now,
    )
    .expect("graph");
    let t2 = Instant::now();
    let answers = g.answer_all(&risks);
    let t3 = Instant::now();
    let holders: usize = answers.iter().map(|a| a.holders.len()).sum();
    let standing: usize = answers.iter().map(|a| a.standing().count()).sum();
    let clean = answers.iter().filter(|a| a.tpi_clean()).count();
    // What an engine that drops conditional answers would count.
    let unconditional: usize = answers
        .iter()
        .map(|a| a.holders.iter().filter(|h| !h.conditional()).count())
        .sum();
    println!(
        "{}",
        serde_json::json!({
            "load_s": (t1 - t0).as_secs_f64(),
            "graph_s": (t2 - t1).as_secs_f64(),
            "answer_s": (t3 - t2).as_secs_f64(),
            "nodes": g.nodes.len(),
            "edges": g.edges.len(),
            "holders": holders,
            "unconditional": unconditional,
            "standing": standing,
            "tpi_clean": clean,
            "risks": answers.len(),
            "peak_rss_kb": peak_kb(),
        })
    );
}
