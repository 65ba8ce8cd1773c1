//! Durable ledger appends per second through `Store::commit` on SQLite and
//! PostgreSQL, with batching (many entries per transaction) and concurrent
//! committers, next to this machine's raw SHA-256 speed measured in the same
//! run.
//!
//! `cargo run --release -p twokey-ledger-s3 --bin ledger-append-bench [ENTRIES]`
//! (PostgreSQL from `TWOKEY_TEST_PG`, default the local trust-auth server;
//! `TWOKEY_TEST_SKIP_PG=1` for SQLite only).

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use twokey_core::Event;
use twokey_store::testing::{fresh_postgres, fresh_sqlite};
use twokey_store::Store;

fn raw_sha256_mb_s() -> f64 {
    let buf = vec![0x5au8; 64 << 20];
    let t = Instant::now();
    let d = Sha256::digest(&buf);
    std::hint::black_box(d);
    64.0 / t.elapsed().as_secs_f64()
}

fn events(n: usize, base: usize) -> Vec<(String, Event)> {
    (0..n)
        .map(|i| {
            (
                format!("req-{}", base + i),
                Event {
                    kind: "review.approved".into(),
                    actor: "https://idp.example.com|alice".into(),
                    alert: false,
                    data: serde_json::json!({"comment": "looks good, INC-2211", "approvals": 2, "required": 2, "n": base + i}),
                },
            )
        })
        .collect()
}

async fn run(store: Arc<Store>, total: usize, batch: usize, committers: usize) -> f64 {
    let per = total / committers;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..committers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < per {
                let n = batch.min(per - done);
                let ev = events(n, c * per + done);
                if let Err(e) = store.record(1_700_000_000_000, "policy", ev).await {
                    eprintln!("commit failed: {e}");
                    return;
                }
                done += n;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (per * committers) as f64 / t.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    println!(
        "raw SHA-256 (1 thread, 64 MiB buffer): {:.0} MB/s",
        raw_sha256_mb_s()
    );
    let dir = std::env::temp_dir().join(format!("twokey-append-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut backends = vec![("sqlite", fresh_sqlite(&dir))];
    if std::env::var("TWOKEY_TEST_SKIP_PG").ok().as_deref() != Some("1") {
        match fresh_postgres("twokey_bench").await {
            Ok(u) => backends.push(("postgres", u)),
            Err(e) => eprintln!("PostgreSQL unavailable ({e}); SQLite only"),
        }
    }
    println!(
        "{:<9} {:>6} {:>10} {:>9} {:>14}",
        "backend", "batch", "committers", "entries", "appends/s"
    );
    for (name, url) in backends {
        let store = match Store::open(&url).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        for (batch, committers) in [(1, 1), (1, 8), (100, 1), (1000, 1), (1000, 4)] {
            let n = if batch == 1 {
                (total / 20).max(100)
            } else {
                total
            };
            let rate = run(store.clone(), n, batch, committers).await;
            println!("{name:<9} {batch:>6} {committers:>10} {n:>9} {rate:>14.0}");
        }
        let head = store.ledger_root().await.map(|r| r.size).unwrap_or(0);
        println!("{name}: ledger size {head} after the run (frontier stored with every commit)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
