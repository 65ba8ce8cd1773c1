//! `twokey-bench api`: the HTTP API of a real `twokey serve` process under
//! load (issue 16).
//!
//! 1. **seed**: a fresh database with `--requests` requests (10,000 by
//!    default) made through the API by 16 clients: all but 200 go the whole
//!    way (create → approve → active → revoke → revoked), 200 stay pending
//!    so `scope=waiting` has something to show.
//! 2. **read load**: `wrk` (Debian's) against `GET /v1/requests?scope=waiting`
//!    and `GET /v1/requests/{id}` (rotating over 1,000 stored ids) with real
//!    API tokens (issued in the store like `twokey token issue`): requests/s,
//!    p50 and p99 as wrk measures them.
//! 3. **soak**: `--soak-secs` (600 by default) of mixed create/approve/revoke
//!    cycles from 16 clients; the server's RSS (`/proc/PID/status`) sampled
//!    every 10 s, and its growth after the first minute (warm-up) printed.
//!
//! The server runs with the `noop` provider, so the figures are what twokey
//! itself costs. wrk, the clients and the server share the machine's cores.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use twokey_core::Policy;
use twokey_store::Store;

use crate::{ms, pct, policy_text, sorted, Backend, ENTS, USERS};

/// Clients that seed and soak.
const CLIENTS: usize = 16;
/// Requests left pending by the seed.
const PENDING: usize = 200;

/// What `twokey-bench api` was asked to do.
pub(crate) struct ApiOpts {
    pub(crate) requests: usize,
    pub(crate) load_secs: u64,
    pub(crate) soak_secs: u64,
    pub(crate) soak_backends: Vec<Backend>,
}

/// A `twokey serve` child process, killed when dropped.
struct ServerProc {
    child: Child,
    url: String,
}

impl ServerProc {
    /// Starts `bin serve --config config` and waits (30 s at most) for its
    /// "listening on" line; the rest of its log goes to `log`.
    fn start(bin: &Path, config: &Path, log: &Path) -> anyhow::Result<ServerProc> {
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(config)
            .env("NO_COLOR", "1")
            .env("TWOKEY_LOG", "warn,twokey=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let mut logf = std::fs::File::create(log)?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = twokey_testkit::listening_address(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                if writeln!(logf, "{line}").is_err() {
                    break;
                }
            }
        });
        let mut server = ServerProc {
            child,
            url: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => server.url = format!("http://{addr}"),
            Err(_) => bail!(
                "twokey serve did not say it was listening within 30 s; its log: {}",
                log.display()
            ),
        }
        Ok(server)
    }

    /// Resident set size in MiB, from `/proc/PID/status`.
    fn rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no VmRSS in /proc/{}/status", self.child.id()))?;
        Ok(kib / 1024.0)
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // A benchmark's server: nothing to keep if the kill fails (it is
        // already gone).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One identity's view of the API.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
    }

    async fn create(&self, token: &str, ent: usize) -> anyhow::Result<String> {
        let v = self
            .call(
                token,
                reqwest::Method::POST,
                "/v1/requests",
                Some(serde_json::json!({"entitlement": format!("e{ent}"), "reason": "bench"})),
            )
            .await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("create answered without an id: {v}"))
    }

    async fn state(&self, token: &str, id: &str) -> anyhow::Result<String> {
        let v = self
            .call(
                token,
                reqwest::Method::GET,
                &format!("/v1/requests/{id}"),
                None,
            )
            .await?;
        Ok(v["state"].as_str().unwrap_or("").to_string())
    }

    /// Polls (every 5 ms, 30 s at most) until `id` is in `want`.
    async fn wait_state(&self, token: &str, id: &str, want: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.state(token, id).await?;
            if s == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{id} not {want} after 30 s (state {s})");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// One whole cycle for requester `u` on entitlement `e`: create, approve
    /// (bob), wait until active, revoke (the requester), wait until revoked.
    async fn cycle(&self, toks: &Tokens, u: usize, e: usize) -> anyhow::Result<String> {
        let id = self.create(&toks.users[u], e).await?;
        self.call(
            &toks.bob,
            reqwest::Method::POST,
            &format!("/v1/requests/{id}/approve"),
            None,
        )
        .await?;
        self.wait_state(&toks.users[u], &id, "active").await?;
        self.call(
            &toks.users[u],
            reqwest::Method::POST,
            &format!("/v1/requests/{id}/revoke"),
            None,
        )
        .await?;
        self.wait_state(&toks.users[u], &id, "revoked").await?;
        Ok(id)
    }
}

/// Real API tokens, stored the way `twokey token issue` stores them.
struct Tokens {
    bob: String,
    users: Vec<String>,
}

async fn issue_tokens(url: &str, policy: &Policy) -> anyhow::Result<Tokens> {
    let store = Store::open(url).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let issue = |name: String| {
        let store = &store;
        async move {
            let actor = policy
                .identity(&name)
                .map(|i| i.actor())
                .ok_or_else(|| anyhow!("no identity {name}"))?;
            let tok = twokey_server::new_token();
            store
                .put_token(&twokey_server::token_hash(&tok), &actor, now, None)
                .await?;
            anyhow::Ok(tok)
        }
    };
    let bob = issue("bob".into()).await?;
    let mut users = Vec::with_capacity(USERS);
    for u in 0..USERS {
        users.push(issue(format!("u{u}")).await?);
    }
    Ok(Tokens { bob, users })
}

/// A scenario's server: database, config, process, tokens.
struct Setup {
    _dir: tempfile::TempDir,
    server: ServerProc,
    api: Api,
    toks: Arc<Tokens>,
}

async fn setup(b: Backend, bin: &Path) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let url = b.fresh(dir.path()).await?;
    let text = policy_text("noop");
    let policy = Policy::parse(&text, "bench policy").map_err(|e| anyhow!("{e}"))?;
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, &text)?;
    let config = dir.path().join("twokey.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{url}\"\npolicy = \"{}\"\npublic_url = \"http://127.0.0.1\"\n",
            policy_path.display()
        ),
    )?;
    let server = ServerProc::start(bin, &config, &dir.path().join("server.log"))?;
    let toks = Arc::new(issue_tokens(&url, &policy).await?);
    let api = Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS * 2)
            .build()?,
        base: server.url.clone(),
    };
    Ok(Setup {
        _dir: dir,
        server,
        api,
        toks,
    })
}

/// Seeds `n` requests and returns the ids of the finished ones. The last
/// [`PENDING`] stay pending, on the last entitlement (which the soak leaves
/// alone); the others are one whole cycle each for a distinct (requester,
/// entitlement) pair.
async fn seed(s: &Setup, n: usize) -> anyhow::Result<Vec<String>> {
    let most = USERS * (ENTS - 1) + PENDING;
    if n > most || n < PENDING {
        bail!("--requests {n}: from {PENDING} to {most} (one per requester and entitlement)");
    }
    let full = n - PENDING;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (api, toks) = (s.api.clone(), s.toks.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for i in (c..n).step_by(CLIENTS) {
                if i < full {
                    done.push(api.cycle(&toks, i % USERS, i / USERS).await?);
                } else {
                    api.create(&toks.users[i - full], ENTS - 1).await?;
                }
            }
            anyhow::Ok(done)
        }));
    }
    let mut ids = Vec::with_capacity(full);
    for t in tasks {
        ids.extend(t.await??);
    }
    Ok(ids)
}

/// What wrk measured.
struct WrkFigures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

/// Runs wrk for `secs` against `path` (or, with `paths`, each request a
/// path from the list in turn, through a Lua script).
fn wrk(
    base: &str,
    token: &str,
    path: &str,
    paths: &[String],
    secs: u64,
    dir: &Path,
) -> anyhow::Result<WrkFigures> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c16", &format!("-d{secs}s"), "--latency"])
        .args(["-H", &format!("Authorization: Bearer {token}")]);
    if !paths.is_empty() {
        let script = dir.join("paths.lua");
        let list = paths
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(",\n");
        std::fs::write(
            &script,
            format!(
                "local paths = {{\n{list}\n}}\nlocal i = 0\n\
                 request = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n"
            ),
        )?;
        cmd.arg("-s").arg(&script);
    }
    let out = cmd
        .arg(format!("{base}{path}"))
        .output()
        .context("run wrk (Debian package wrk; scripts/bench-api.sh installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("wrk output not understood:\n{text}"))
}

/// Reads requests/s, the 50% and 99% latencies and the non-2xx/3xx count
/// from wrk's `--latency` report.
fn parse_wrk(text: &str) -> anyhow::Result<WrkFigures> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    let rps: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no Requests/sec"))?;
    let lat = |p: &str| {
        field(p)
            .and_then(|v| wrk_duration_ms(&v))
            .ok_or_else(|| anyhow!("no {p} latency"))
    };
    let non_2xx = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(WrkFigures {
        rps,
        p50_ms: lat("50%")?,
        p99_ms: lat("99%")?,
        non_2xx,
    })
}

/// wrk's durations: `812.00us`, `3.12ms`, `1.02s`, `2.00m`.
fn wrk_duration_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// Load and soak on one backend.
pub(crate) async fn run(b: Backend, bin: &Path, o: &ApiOpts) -> anyhow::Result<()> {
    let s = setup(b, bin).await?;
    let t0 = Instant::now();
    let ids = seed(&s, o.requests).await?;
    let seed_s = t0.elapsed().as_secs_f64();
    println!(
        "{:<9} api seed: {} requests through the API ({} revoked, {} pending) in {seed_s:.1} s = {:.0} requests/s, {CLIENTS} clients; server RSS {:.1} MiB",
        b.name(),
        o.requests,
        ids.len(),
        o.requests - ids.len(),
        o.requests as f64 / seed_s,
        s.server.rss_mib()?,
    );
    let waiting = s
        .api
        .call(
            &s.toks.bob,
            reqwest::Method::GET,
            "/v1/requests?scope=waiting",
            None,
        )
        .await?;
    let n_waiting = waiting.as_array().map(Vec::len).unwrap_or(0);
    let dir = tempfile::tempdir()?;
    let w = wrk(
        &s.server.url,
        &s.toks.bob,
        "/v1/requests?scope=waiting",
        &[],
        o.load_secs,
        dir.path(),
    )?;
    print_wrk(
        b,
        &format!("GET /v1/requests?scope=waiting ({n_waiting} waiting for bob)"),
        &w,
    );
    let paths: Vec<String> = ids
        .iter()
        .take(1000)
        .map(|id| format!("/v1/requests/{id}"))
        .collect();
    if let Some(first) = paths.first() {
        let w = wrk(
            &s.server.url,
            &s.toks.bob,
            first,
            &paths,
            o.load_secs,
            dir.path(),
        )?;
        print_wrk(
            b,
            &format!("GET /v1/requests/{{id}} ({} ids in turn)", paths.len()),
            &w,
        );
    }
    if o.soak_backends.contains(&b) && o.soak_secs > 0 {
        soak(b, &s, o.soak_secs).await?;
    }
    Ok(())
}

fn print_wrk(b: Backend, what: &str, w: &WrkFigures) {
    println!(
        "{:<9} api {what}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms{} (wrk -t1 -c16, real API token)",
        b.name(),
        w.rps,
        w.p50_ms,
        w.p99_ms,
        if w.non_2xx > 0 {
            format!(", {} answers not 2xx", w.non_2xx)
        } else {
            String::new()
        }
    );
}

/// Mixed create/approve/revoke cycles for `secs`, RSS every 10 s.
async fn soak(b: Backend, s: &Setup, secs: u64) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (api, toks, stop, cycles) =
            (s.api.clone(), s.toks.clone(), stop.clone(), cycles.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            // Client c owns requesters c, c+16, ...: no two clients share a
            // (requester, entitlement) pair, so no two grants overlap.
            let mut k = 0usize;
            let mine: Vec<usize> = (c..USERS).step_by(CLIENTS).collect();
            while !stop.load(Ordering::Relaxed) {
                let (u, e) = (mine[k % mine.len()], (k / mine.len()) % (ENTS - 1));
                let t = Instant::now();
                api.cycle(&toks, u, e).await?;
                lat.push(ms(t.elapsed()));
                cycles.fetch_add(1, Ordering::Relaxed);
                k += 1;
            }
            anyhow::Ok(lat)
        }));
    }
    let start = Instant::now();
    let mut samples: Vec<(u64, f64, u64)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    samples.push((0, s.server.rss_mib()?, 0));
    while start.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        if tasks.iter().any(|t| t.is_finished()) {
            break; // a client failed: its error is reported below
        }
        samples.push((
            start.elapsed().as_secs(),
            s.server.rss_mib()?,
            cycles.load(Ordering::Relaxed),
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let lat = sorted(lat);
    println!(
        "{:<9} api soak: {:.0} s of create/approve/revoke cycles through the API, {CLIENTS} clients: {} cycles = {:.1} cycles/s, a cycle p50 {:.1} ms p99 {:.1} ms",
        b.name(),
        elapsed,
        lat.len(),
        lat.len() as f64 / elapsed,
        pct(&lat, 50.0),
        pct(&lat, 99.0),
    );
    println!("{:<9} api soak: server RSS every 10 s (s: MiB):", b.name());
    for row in samples.chunks(10) {
        println!(
            "{:<9}   {}",
            "",
            row.iter()
                .map(|(t, r, _)| format!("{t:>4}: {r:6.1}"))
                .collect::<Vec<_>>()
                .join("  ")
        );
    }
    let warm = samples
        .iter()
        .find(|(t, _, _)| *t >= 60)
        .or(samples.last())
        .copied();
    if let (Some((tw, rw, _)), Some((te, re, _))) = (warm, samples.last().copied()) {
        let peak = samples.iter().map(|(_, r, _)| *r).fold(0.0, f64::max);
        println!(
            "{:<9} api soak: RSS after warm-up ({tw} s) {rw:.1} MiB, at the end ({te} s) {re:.1} MiB: {:+.1} MiB ({:+.1}%), peak {peak:.1} MiB",
            b.name(),
            re - rw,
            100.0 * (re - rw) / rw,
        );
    }
    Ok(())
}

/// The `twokey` binary beside this one (both in the same target dir), or
/// `TWOKEY_BIN`.
pub(crate) fn twokey_bin() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("TWOKEY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe()?;
    let bin = me
        .parent()
        .map(|d| d.join("twokey"))
        .ok_or_else(|| anyhow!("no directory of {}", me.display()))?;
    if !bin.exists() {
        bail!(
            "no twokey binary at {} (build it: cargo build --release -p twokey, or set TWOKEY_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let text = "Running 10s test @ http://127.0.0.1:1/v1/requests\n  1 threads and 16 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     3.10ms    1.20ms  40.00ms   90.00%\n\
  Latency Distribution\n     50%  812.00us\n     75%    3.00ms\n     90%    4.00ms\n     99%    1.02s\n\
  12345 requests in 10.00s, 1.00MB read\n  Non-2xx or 3xx responses: 7\nRequests/sec:   1234.50\nTransfer/sec:    100.00KB\n";
        let w = parse_wrk(text).expect("parses");
        assert_eq!(w.rps, 1234.5);
        assert_eq!(w.p50_ms, 0.812);
        assert_eq!(w.p99_ms, 1020.0);
        assert_eq!(w.non_2xx, 7);
        assert!(parse_wrk("Requests/sec: 1\n").is_err(), "no latency lines");
    }
}
