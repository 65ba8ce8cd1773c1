//! The GitHub posture benchmark (ignored in the normal run; prints figures):
//!
//! ```sh
//! bash scripts/setup-gate-fixtures.sh
//! cargo test --workspace --test it bench_github -- --ignored --nocapture
//! ```
//!
//! An organisation of 1,000 repositories in the stand-in (a third with
//! classic protection, a third with a repository ruleset, every one under an
//! organisation ruleset; IaC repositories with the gate's hook): the time of
//! a full scan, API requests per repository on the first scan and on a
//! conditional re-scan side by side (a `304 Not Modified` does not count
//! against GitHub's limit), against the 5,000 requests an hour of a GitHub
//! App installation and against reading every ruleset per repository
//! (no organisation-level reuse); then the time from a signed webhook to its
//! alert in the outbox (p50/p99), through the gate's endpoint.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use sqlx::Row;
use twokey_gate::config::GateConfig;
use twokey_gate::db::GateDb;
use twokey_gate::gate::ApiCheckout;
use twokey_gate::github::RestGitHub;
use twokey_gate::testing::{deliver, Fixtures};
use twokey_gate::webhook::sign;
use twokey_gate::Gate;
use twokey_posture_github::collect::{self, Scope};
use twokey_posture_github::standin::{Spec, StandIn};
use twokey_posture_github::watch::Watcher;
use twokey_posture_github::{GithubPostureConfig, Registry};
use twokey_store::Store;

const ORG: &str = "bigorg";
const SECRET: &[u8] = b"a-webhook-secret-of-some-length";
const HOOK: &str = "https://twokey.example.com/v1/gate/github";

/// The hourly request limit of a GitHub App installation on an organisation
/// with `repos` repositories, as GitHub documents it ("Rate limits for
/// GitHub Apps"): 5,000, plus 50 for each repository beyond 20, at most
/// 12,500 (the 50 per user beyond 20 are left out: the stand-in has none).
fn installation_limit(repos: u64) -> u64 {
    (5_000 + 50 * repos.saturating_sub(20)).min(12_500)
}

#[test]
fn the_installation_limit_is_the_documented_one() {
    assert_eq!(installation_limit(1), 5_000);
    assert_eq!(installation_limit(20), 5_000);
    assert_eq!(installation_limit(21), 5_050);
    assert_eq!(installation_limit(100), 9_000);
    assert_eq!(installation_limit(170), 12_500);
    assert_eq!(installation_limit(1_000), 12_500);
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_github_posture() {
    let n: usize = std::env::var("TWOKEY_BENCH_REPOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let Some(spec) = Spec::load() else { return };
    let Some(fixtures) = Fixtures::load() else {
        return;
    };
    let gh = StandIn::start(spec, ORG).await.expect("stand-in");
    gh.set_workflow(None, "read", false);
    gh.add_ruleset(
        None,
        "active",
        &[],
        vec![StandIn::rule("deletion"), StandIn::rule("non_fast_forward")],
    );
    let mut names = Vec::new();
    for i in 0..n {
        let name = if i % 10 == 0 {
            format!("infra-{i:04}")
        } else {
            format!("app-{i:04}")
        };
        let full = gh.add_repo(&name, "main");
        match i % 3 {
            0 => gh.set_protection(
                &full,
                StandIn::baseline_protection(if i % 10 == 0 { 2 } else { 1 }, &["twokey/plan"]),
            ),
            1 => {
                gh.add_ruleset(
                    Some(&full),
                    "active",
                    &[],
                    vec![StandIn::pull_request_rule(1, true, true, false)],
                );
            }
            _ => {}
        }
        if i % 10 == 0 {
            gh.add_hook(&full, HOOK);
        }
        if i % 7 == 0 {
            gh.add_environment(&full, "production", &["octocat"], true);
        }
        names.push(full);
    }
    let cfg = GithubPostureConfig::parse_file(
        &format!("[posture.github]\norg = \"{ORG}\"\niac_repos = [\"infra-*\"]\ngate_webhook_url = \"{HOOK}\"\nconcurrency = 16\n"),
        "bench.toml",
    )
    .expect("config")
    .expect("table");
    let base = cfg.baseline(false);
    let scope = Arc::new(Scope {
        config: cfg.clone(),
        gate_repos: vec![],
    });
    let client = Arc::new(RestGitHub::new(&gh.url, "t").expect("client"));

    let t = Instant::now();
    let facts = collect::collect(client.clone(), scope.clone(), 0)
        .await
        .expect("scan");
    let first_s = t.elapsed().as_secs_f64();
    let c1 = client.counts();
    let findings = Registry::builtin().evaluate(&facts, &base);
    let t = Instant::now();
    collect::collect(client.clone(), scope.clone(), 0)
        .await
        .expect("rescan");
    let second_s = t.elapsed().as_secs_f64();
    let c2 = client.counts();
    let re_requests = c2.requests - c1.requests;
    let re_counted = re_requests - (c2.not_modified - c1.not_modified);
    // Without organisation-level reuse every repository would also read the
    // organisation ruleset and its own workflow permissions.
    let naive = c1.requests + 2 * n as u64;
    let per = |x: u64| x as f64 / n as f64;
    println!(
        "github posture benchmark: {n} repositories, {} findings",
        findings.len()
    );
    let limit = installation_limit(n as u64);
    let hours = |counted: u64, per_hour: u64| counted as f64 / per_hour as f64;
    println!(
        "| scan | time (s) | requests | per repo | counted by GitHub | repos/hour within 5,000 req/h | share of an hour at the installation's {limit} req/h |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| first (no cache) | {first_s:.2} | {} | {:.2} | {} | {:.0} | {:.2} |",
        c1.requests,
        per(c1.requests),
        c1.requests,
        5000.0 / per(c1.requests),
        hours(c1.requests, limit)
    );
    println!(
        "| conditional re-scan | {second_s:.2} | {re_requests} | {:.2} | {re_counted} | {} | {:.2} |",
        per(re_requests),
        if re_counted == 0 {
            "unbounded (all 304)".to_string()
        } else {
            format!("{:.0}", 5000.0 / per(re_counted))
        },
        hours(re_counted, limit)
    );
    println!(
        "| without org-level reuse (computed) | - | {naive} | {:.2} | {naive} | {:.0} | {:.2} |",
        per(naive),
        5000.0 / per(naive),
        hours(naive, limit)
    );
    println!(
        "first scan within one hour: at 5,000 req/h (a token, or the smallest installation) {}; at this organisation's installation limit ({limit} req/h) {}",
        if c1.requests <= 5_000 { "yes" } else { "no (the client waits for the reset)" },
        if c1.requests <= limit { "yes" } else { "no (the client waits for the reset)" }
    );
    println!(
        "ratios: re-scan/first time {:.2}x; counted requests re-scan/first {:.3}; ours/naive requests {:.2}",
        second_s / first_s,
        re_counted as f64 / c1.requests as f64,
        c1.requests as f64 / naive as f64
    );

    // Webhook to alert, through the gate's endpoint.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("b.db").display()))
        .await
        .expect("store");
    let mut wcfg = cfg.clone();
    wcfg.action = twokey_posture_github::Action::Alert;
    let watcher = Arc::new(Watcher::new(
        Scope {
            config: wcfg,
            gate_repos: vec![],
        },
        base.clone(),
        client.clone(),
        store.clone(),
        "bench",
    ));
    let gate_gh: Arc<dyn twokey_gate::github::GitHub> =
        Arc::new(RestGitHub::new(&gh.url, "t").expect("client"));
    let mut gate = Gate::new(
        GateConfig::parse(&format!(
            "[gate]\nworkdir = \"{}\"\n",
            dir.path().join("w").display()
        ))
        .expect("gate"),
        SECRET.to_vec(),
        GateDb::new(store.clone()),
        gate_gh.clone(),
        Arc::new(ApiCheckout {
            github: gate_gh,
            max_bytes: 1 << 20,
        }),
    )
    .with_settings_watcher(watcher.clone());
    gate.answer_within = std::time::Duration::from_secs(60);
    let app = twokey_gate::router(Arc::new(gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/v1/gate/github",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("{e}");
        }
    });
    let http = reqwest::Client::new();
    let rounds = 100.min(n / 3);
    let mut lat = Vec::new();
    for k in 0..rounds {
        let repo = &names[k * 3]; // classic protection
                                  // Known good first (a re-check records the baseline), then turned off.
        let mut ev = fixtures
            .example("branch_protection_rule", "edited", |_| true)
            .expect("example");
        ev["repository"]["full_name"] = json!(repo);
        ev["organization"]["login"] = json!(ORG);
        let body = serde_json::to_vec(&ev).expect("json");
        let (s, t0) = deliver(
            &http,
            &url,
            "branch_protection_rule",
            &format!("warm-{k}"),
            &sign(SECRET, &body),
            &body,
        )
        .await
        .expect("deliver");
        assert_eq!(s, 200, "{t0}");
        gh.delete_protection(repo);
        let before: i64 = sqlx::query("SELECT COUNT(*) FROM alerts")
            .fetch_one(store.pool())
            .await
            .expect("q")
            .try_get(0)
            .expect("n");
        let t = Instant::now();
        let (s, text) = deliver(
            &http,
            &url,
            "branch_protection_rule",
            &format!("off-{k}"),
            &sign(SECRET, &body),
            &body,
        )
        .await
        .expect("deliver");
        let took = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(s, 200, "{text}");
        let after: i64 = sqlx::query("SELECT COUNT(*) FROM alerts")
            .fetch_one(store.pool())
            .await
            .expect("q")
            .try_get(0)
            .expect("n");
        assert!(
            after > before,
            "the alert is in the outbox when the webhook is answered"
        );
        lat.push(took);
    }
    let (p50, p99) = (pct(&mut lat.clone(), 0.5), pct(&mut lat, 0.99));
    println!(
        "webhook → alert in the outbox ({rounds} events, SQLite): p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
}
