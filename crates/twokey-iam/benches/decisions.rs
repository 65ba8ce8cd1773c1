//! Evaluator throughput on the differential corpus, next to iam-simulate's
//! on the same cases: `cargo bench -p twokey-iam --bench decisions`.
//! Prints decisions per second for twokey-iam (evaluation only, and parse +
//! evaluation, which is what iam-simulate does per call) and for
//! iam-simulate (when TWOKEY_IAM_ORACLE is set), and the ratio.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::Instant;

use common::corpus::{categories, random_cases};
use common::*;

fn main() {
    let mut cases = categories();
    cases.extend(random_cases(2000));
    let prepared: Vec<_> = cases
        .iter()
        .filter_map(|c| to_ours(&c.sim, &[]).ok())
        .collect();
    let passes = 50;
    let t = Instant::now();
    let mut allowed = 0usize;
    for _ in 0..passes {
        for (req, pol) in &prepared {
            allowed += usize::from(twokey_iam::evaluate(req, pol).is_allowed());
        }
    }
    let eval_rate = (passes * prepared.len()) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..passes {
        for c in &cases {
            if let Ok(d) = ours(&c.sim, &[]) {
                allowed += usize::from(d.is_allowed());
            }
        }
    }
    let full_rate = (passes * cases.len()) as f64 / t.elapsed().as_secs_f64();
    println!(
        "corpus: {} cases ({allowed} allowed over all passes)",
        cases.len()
    );
    println!("twokey-iam evaluate:          {eval_rate:>12.0} decisions/s");
    println!("twokey-iam parse + evaluate:  {full_rate:>12.0} decisions/s");
    let Ok(dir) = std::env::var("TWOKEY_IAM_ORACLE") else {
        println!("iam-simulate: TWOKEY_IAM_ORACLE not set, not measured");
        return;
    };
    let (_, timing) = run_oracle(std::path::Path::new(&dir), &cases, Some(3));
    let line = timing.lines().last().unwrap_or("{}");
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let (n, s) = (
        v["decisions"].as_f64().unwrap_or(0.0),
        v["seconds"].as_f64().unwrap_or(0.0),
    );
    if s <= 0.0 {
        println!("iam-simulate: no timing ({timing})");
        return;
    }
    let sim_rate = n / s;
    println!("iam-simulate runSimulation:   {sim_rate:>12.0} decisions/s");
    println!(
        "ratio: {:.1}x (evaluate), {:.1}x (parse + evaluate)",
        eval_rate / sim_rate,
        full_rate / sim_rate
    );
}
