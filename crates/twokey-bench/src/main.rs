//! `twokey-bench`: what the broker itself costs, on SQLite and PostgreSQL,
//! with a provider that does nothing.
//!
//! Runs the real [`Broker`] and its scheduler in-process (no HTTP) and prints:
//!
//! 1. **activation latency**: from the final approval's commit (the moment
//!    `Broker::review` returns `approved`) to the grant being `active` in the
//!    database. Measured with `Instant`: after `review` returns, the client
//!    waits on the broker's in-process activation feed
//!    (`Broker::subscribe_activations`, sent once the activation is
//!    committed). Polling the row instead (an earlier version, every 0.5 ms
//!    per client) put more load on the database than the broker itself.
//! 2. **cycles per second**: N concurrent clients, each looping
//!    create → approve → wait until active (same feed).
//! 3. **expiry lag**: N grants (10,000 by default) whose end times are spread
//!    evenly over one minute. Their durations are about an hour; once all are
//!    active the broker's clock (an `OffsetClock`) jumps forward so the minute
//!    of end times starts two seconds later in real time, and that minute then
//!    runs in real time. Lag = the `grant.expired` ledger entry's `time_ms`
//!    minus the request's `ends_at` (both by the broker's clock; ms resolution).
//! 4. **where the time goes**: latency of the pieces an activation is made of
//!    (a ledger commit, a claim query, a read, the provider call).
//!
//! Requests rotate over 200 requesters × 50 entitlements, so (below 10,000
//! grants) no two active grants overlap and every revoke takes the
//! revoke-then-check path.
//!
//! `--quick` runs a small smoke version (CI); `--sqlite-only` / `--pg-only`
//! pick one backend. PostgreSQL: `TWOKEY_TEST_PG` (default the local
//! trust-auth server); a fresh database is created per scenario.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use twokey_core::{Actor, NewRequest, Policy, ReviewDecision, State};
use twokey_providers::{
    GrantOutcome, GrantSpec, Presence, Provider, ProviderContext, ProviderError, Registry,
};
use twokey_server::clock::OffsetClock;
use twokey_server::{Broker, BrokerOptions, Clock};
use twokey_store::Store;

mod api;

const USERS: usize = 200;
const ENTS: usize = 50;

/// The built-in `noop` provider's `check` always answers "present", so the
/// broker (rightly) never confirms a revoke of a non-overlapping grant made
/// with it. This one does nothing too, and answers "absent" (it is only
/// asked after a revoke).
struct BenchNoop;

#[async_trait::async_trait]
impl Provider for BenchNoop {
    async fn grant(&self, _spec: &GrantSpec) -> Result<GrantOutcome, ProviderError> {
        Ok(GrantOutcome {
            secret: None,
            detail: "bench noop".into(),
        })
    }
    async fn revoke(&self, _spec: &GrantSpec) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn check(&self, _spec: &GrantSpec) -> Result<Presence, ProviderError> {
        Ok(Presence::Absent)
    }
}

fn bench_noop(_t: &toml::Table, _c: &ProviderContext) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(Arc::new(BenchNoop))
}

/// The bench policy: bob and carol approve, u0..u199 request e0..e49 from
/// `provider`.
fn policy_text(provider: &str) -> String {
    let mut s = String::from(
        "[admins]\ngroups = [\"admins\"]\napprovals = 1\n\n\
         [[identity]]\nname = \"bob\"\nemail = \"bob@example.com\"\ngroups = [\"approvers\", \"admins\"]\n\n\
         [[identity]]\nname = \"carol\"\nemail = \"carol@example.com\"\ngroups = [\"approvers\", \"admins\"]\n\n",
    );
    for u in 0..USERS {
        s.push_str(&format!(
            "[[identity]]\nname = \"u{u}\"\nemail = \"u{u}@example.com\"\ngroups = [\"eng\"]\n\n"
        ));
    }
    for e in 0..ENTS {
        s.push_str(&format!(
            "[[entitlement]]\nname = \"e{e}\"\nprovider = \"{provider}\"\nrequester_groups = [\"eng\"]\n\
             default_duration = \"1h\"\nmax_duration = \"12h\"\npending_timeout = \"12h\"\n\
             approval = {{ count = 1, from = [\"approvers\"] }}\n\n[entitlement.target]\n\n"
        ));
    }
    s
}

struct Bench {
    broker: Arc<Broker>,
    clock: Arc<OffsetClock>,
    users: Vec<Actor>,
    bob: Actor,
    stop: tokio::sync::watch::Sender<bool>,
    sched: tokio::task::JoinHandle<()>,
}

impl Bench {
    async fn start(url: &str) -> anyhow::Result<Bench> {
        let policy = Policy::parse(&policy_text("bench-noop"), "bench policy")
            .map_err(|e| anyhow!("bench policy: {e}"))?;
        let mut registry = Registry::with_builtin();
        registry.register("bench-noop", bench_noop);
        let store = Store::open(url)
            .await
            .with_context(|| format!("open {url}"))?;
        let clock = Arc::new(OffsetClock::default());
        let users = (0..USERS)
            .map(|u| {
                policy
                    .identity(&format!("u{u}"))
                    .map(|i| i.actor())
                    .ok_or_else(|| anyhow!("no identity u{u}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let bob = policy
            .identity("bob")
            .map(|i| i.actor())
            .ok_or_else(|| anyhow!("no identity bob"))?;
        let (broker, _) = Broker::start(
            store,
            policy,
            registry,
            ProviderContext::default(),
            clock.clone(),
            vec![],
            BrokerOptions {
                node: "bench".into(),
                ..Default::default()
            },
        )
        .await?;
        let (stop, rx) = tokio::sync::watch::channel(false);
        let sched = tokio::spawn(broker.clone().run_scheduler(rx));
        Ok(Bench {
            broker,
            clock,
            users,
            bob,
            stop,
            sched,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.sched.await;
    }

    /// Creates request number `i` (requester and entitlement rotate) and returns its id.
    async fn create(&self, i: usize, duration_ms: i64) -> anyhow::Result<String> {
        let input = NewRequest {
            entitlement: format!("e{}", (i / USERS) % ENTS),
            duration_ms: Some(duration_ms),
            reason: "bench".into(),
            ticket: None,
            break_glass: false,
        };
        let r = self
            .broker
            .create_request(&self.users[i % USERS], &input)
            .await
            .map_err(|e| anyhow!("create: {e}"))?;
        Ok(r.id)
    }

    async fn approve(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .broker
            .review(&self.bob, id, ReviewDecision::Approve, "")
            .await
            .map_err(|e| anyhow!("approve: {e}"))?;
        if !matches!(r.state, State::Approved | State::Active) {
            bail!("approval left {id} {}", r.state.as_str());
        }
        Ok(())
    }

    /// Waits until `id` is active (30 s at most): woken by the broker's
    /// activation feed (subscribed before the approval, so nothing is
    /// missed), with a read of the row when the feed lagged or was quiet for
    /// 100 ms. No polling load on the database.
    async fn wait_active(
        &self,
        id: &str,
        feed: &mut tokio::sync::broadcast::Receiver<String>,
    ) -> anyhow::Result<()> {
        use tokio::sync::broadcast::error::RecvError;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout(Duration::from_millis(100), feed.recv()).await {
                Ok(Ok(done)) if done == id => return Ok(()),
                Ok(Ok(_)) => continue,
                Ok(Err(RecvError::Closed)) => bail!("activation feed closed"),
                Ok(Err(RecvError::Lagged(_))) | Err(_) => {}
            }
            let r = self
                .broker
                .store()
                .request(id)
                .await?
                .ok_or_else(|| anyhow!("{id} vanished"))?;
            if r.state == State::Active {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{id} not active after 30 s (state {})", r.state.as_str());
            }
        }
    }

    async fn count(&self, state: State) -> anyhow::Result<i64> {
        Ok(self
            .broker
            .store()
            .state_counts()
            .await?
            .into_iter()
            .find(|(s, _)| s == state.as_str())
            .map(|(_, n)| n)
            .unwrap_or(0))
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Opts {
    quick: bool,
}

/// Where to get a fresh database for one scenario.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
    async fn fresh(self, dir: &std::path::Path) -> anyhow::Result<String> {
        Ok(match self {
            Backend::Sqlite => twokey_store::testing::fresh_sqlite(dir),
            Backend::Postgres => twokey_store::testing::fresh_postgres("twokey_bench")
                .await
                .with_context(|| {
                    format!("PostgreSQL at {}", twokey_store::testing::pg_server_url())
                })?,
        })
    }
}

async fn activation_latency(b: Backend, dir: &std::path::Path, o: &Opts) -> anyhow::Result<()> {
    let bench = Bench::start(&b.fresh(dir).await?).await?;
    let n = if o.quick { 30 } else { 500 };
    let mut lat = Vec::with_capacity(n);
    let mut approve = Vec::with_capacity(n);
    for i in 0..n {
        let id = bench.create(i, 3_600_000).await?;
        let mut feed = bench.broker.subscribe_activations();
        let t0 = Instant::now();
        bench.approve(&id).await?;
        let t1 = Instant::now();
        bench.wait_active(&id, &mut feed).await?;
        lat.push(ms(t1.elapsed()));
        approve.push(ms(t1 - t0));
    }
    let lat = sorted(lat);
    let approve = sorted(approve);
    println!(
        "{:<9} (1) approval commit -> active   n={n:<6} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms   (the approve call itself: p50 {:.2} ms, p99 {:.2} ms)",
        b.name(),
        pct(&lat, 50.0),
        pct(&lat, 99.0),
        pct(&lat, 100.0),
        pct(&approve, 50.0),
        pct(&approve, 99.0),
    );
    bench.stop().await;
    Ok(())
}

async fn cycles(b: Backend, dir: &std::path::Path, o: &Opts, clients: usize) -> anyhow::Result<()> {
    let bench = Arc::new(Bench::start(&b.fresh(dir).await?).await?);
    let run_for = if o.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(10)
    };
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let bench = bench.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut i = c;
            while start.elapsed() < run_for {
                let t = Instant::now();
                let id = bench.create(i, 3_600_000).await?;
                let mut feed = bench.broker.subscribe_activations();
                bench.approve(&id).await?;
                bench.wait_active(&id, &mut feed).await?;
                times.push(ms(t.elapsed()));
                i += clients;
            }
            anyhow::Ok(times)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    let all = sorted(all);
    println!(
        "{:<9} (2) full cycles, {clients:>2} clients   {:>6} cycles in {secs:.1} s = {:>7.0} cycles/s   cycle p50 {:.1} ms, p99 {:.1} ms",
        b.name(),
        all.len(),
        all.len() as f64 / secs,
        pct(&all, 50.0),
        pct(&all, 99.0),
    );
    if let Ok(bench) = Arc::try_unwrap(bench) {
        bench.stop().await;
    }
    Ok(())
}

async fn expiry_lag(b: Backend, dir: &std::path::Path, o: &Opts) -> anyhow::Result<()> {
    let bench = Arc::new(Bench::start(&b.fresh(dir).await?).await?);
    let (n, window_ms) = if o.quick {
        (500usize, 5_000i64)
    } else {
        (10_000usize, 60_000i64)
    };
    // Target end of grant i: base + i * window / n, about an hour from now.
    let base = bench.clock.now() + 3_600_000;
    let setup = Instant::now();
    let clients = 32;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let bench = bench.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < n {
                let target = base + (i as i64) * window_ms / n as i64;
                let id = bench.create(i, target - bench.clock.now()).await?;
                bench.approve(&id).await?;
                i += clients;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while bench.count(State::Active).await? < n as i64 {
        if Instant::now() > deadline {
            bail!("grants not all active after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let setup_s = setup.elapsed().as_secs_f64();
    // Jump: the first end time is 2 s from now (real time from here on).
    let jump = base - bench.clock.now() - 2_000;
    bench.clock.advance(jump);
    bench.broker.wake();
    let wait_start = Instant::now();
    let deadline =
        Instant::now() + Duration::from_millis(window_ms as u64) + Duration::from_secs(300);
    while bench.count(State::Expired).await? < n as i64 {
        if Instant::now() > deadline {
            bail!(
                "only {} of {n} grants expired 5 minutes after the last end time",
                bench.count(State::Expired).await?
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = wait_start.elapsed().as_secs_f64();
    // Lag from the ledger: grant.expired time_ms - ends_at.
    let store = bench.broker.store();
    let reqs = store
        .requests(None, &[State::Expired], n as i64 + 10)
        .await?;
    let mut expired_at = std::collections::HashMap::new();
    let mut from = 0u64;
    loop {
        let page = store.ledger(from, 5_000).await?;
        let Some(last) = page.last() else { break };
        from = last.index + 1;
        for e in &page {
            if e.kind == "grant.expired" {
                expired_at.insert(e.subject.clone(), e.time_ms);
            }
        }
    }
    let mut lags = Vec::with_capacity(n);
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for r in &reqs {
        let end = r
            .ends_at
            .ok_or_else(|| anyhow!("{} has no ends_at", r.id))?;
        let at = expired_at
            .get(&r.id)
            .ok_or_else(|| anyhow!("{} has no grant.expired entry", r.id))?;
        lo = lo.min(end);
        hi = hi.max(end);
        lags.push((at - end) as f64);
    }
    let lags = sorted(lags);
    println!(
        "{:<9} (3) expiry lag, {n} grants      ends spread {:.1} s   p50 {:>6.0} ms  p99 {:>6.0} ms  max {:>6.0} ms   (setup {setup_s:.1} s, all expired {wall:.1} s after the jump)",
        b.name(),
        (hi - lo) as f64 / 1000.0,
        pct(&lags, 50.0),
        pct(&lags, 99.0),
        pct(&lags, 100.0),
    );
    if let Ok(bench) = Arc::try_unwrap(bench) {
        bench.stop().await;
    }
    Ok(())
}

/// Latency of the pieces one activation is made of, measured one at a time
/// on an idle store.
async fn breakdown(b: Backend, dir: &std::path::Path, o: &Opts) -> anyhow::Result<()> {
    let bench = Bench::start(&b.fresh(dir).await?).await?;
    let _ = bench.stop.send(true); // no scheduler: we call the pieces ourselves
    let n = if o.quick { 20 } else { 300 };
    let store = bench.broker.store().clone();
    let hash = bench.broker.policy().policy.hash.clone();
    let id = bench.create(0, 3_600_000).await?;
    let (mut commit, mut claim, mut read, mut provider, mut run_due) =
        (vec![], vec![], vec![], vec![], vec![]);
    let p = bench
        .broker
        .policy()
        .providers
        .get("e0")
        .cloned()
        .ok_or_else(|| anyhow!("no provider for e0"))?;
    let spec = GrantSpec {
        request_id: id.clone(),
        entitlement: "e0".into(),
        requester: "x".into(),
        requester_name: "x".into(),
        starts_at_ms: 0,
        ends_at_ms: 0,
        overlapping_active: vec![],
    };
    for i in 0..n {
        let t = Instant::now();
        store
            .record(
                bench.clock.now(),
                &hash,
                vec![(
                    format!("bench-{i}"),
                    twokey_core::Event {
                        kind: "bench.probe".into(),
                        actor: "bench".into(),
                        alert: false,
                        data: serde_json::Value::Null,
                    },
                )],
            )
            .await?;
        commit.push(ms(t.elapsed()));
        let t = Instant::now();
        store
            .claim_due(bench.clock.now(), "probe", 1_000, 64)
            .await?;
        claim.push(ms(t.elapsed()));
        let t = Instant::now();
        store.request(&id).await?;
        read.push(ms(t.elapsed()));
        let t = Instant::now();
        p.grant(&spec).await.map_err(|e| anyhow!("{}", e.message))?;
        provider.push(ms(t.elapsed()));
    }
    // One whole activation done by hand: claim + provider + commit.
    for i in 0..n.min(200) {
        let id = bench.create(1 + i, 3_600_000).await?;
        bench.approve(&id).await?;
        let t = Instant::now();
        bench
            .broker
            .run_due()
            .await
            .map_err(|e| anyhow!("run_due: {e}"))?;
        run_due.push(ms(t.elapsed()));
    }
    let line = |name: &str, v: Vec<f64>| {
        let v = sorted(v);
        format!(
            "{name} p50 {:.2} / p99 {:.2} ms",
            pct(&v, 50.0),
            pct(&v, 99.0)
        )
    };
    println!(
        "{:<9} (4) pieces: {}; {}; {}; {}; {}",
        b.name(),
        line("ledger commit (1 entry)", commit),
        line("claim_due (UPDATE..RETURNING)", claim),
        line("read one request", read),
        line("provider call", provider),
        line("run_due = one activation (claim+provider+commit)", run_due),
    );
    bench.stop().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Opts { quick: false };
    let mut backends = vec![Backend::Sqlite, Backend::Postgres];
    let api_mode = args.first().is_some_and(|a| a == "api");
    let mut soak_secs = None;
    let mut requests = None;
    let mut clients: Vec<usize> = vec![8, 32];
    let mut cycles_only = false;
    let mut it = args.iter().skip(usize::from(api_mode));
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--sqlite-only" => backends = vec![Backend::Sqlite],
            "--pg-only" => backends = vec![Backend::Postgres],
            "--soak-secs" if api_mode => soak_secs = Some(number(a, it.next())?),
            "--requests" if api_mode => requests = Some(number(a, it.next())?),
            "--clients" if !api_mode => clients = client_counts(it.next())?,
            "--cycles-only" if !api_mode => cycles_only = true,
            "-h" | "--help" => {
                println!("twokey-bench [--quick] [--sqlite-only | --pg-only] [--clients 8,32,...] [--cycles-only]\n\
                          twokey-bench api [--quick] [--sqlite-only | --pg-only] [--requests N] [--soak-secs S]");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if api_mode {
        let bin = api::twokey_bin()?;
        let opts = api::ApiOpts {
            requests: requests.map_or(if o.quick { 1_000 } else { 10_000 }, |n| n as usize),
            load_secs: if o.quick { 2 } else { 10 },
            soak_secs: soak_secs.unwrap_or(if o.quick { 20 } else { 600 }),
            soak_backends: vec![Backend::Postgres],
        };
        println!(
            "twokey-bench api{}: {} serve as a process, no-op provider, {cpus} CPUs shared by server, clients and wrk",
            if o.quick { " --quick" } else { "" },
            bin.display()
        );
        for b in backends {
            api::run(b, &bin, &opts).await?;
        }
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    println!(
        "twokey-bench{}: in-process broker + scheduler, no-op provider, {cpus} CPUs",
        if o.quick { " --quick" } else { "" },
    );
    for b in backends {
        if !cycles_only {
            activation_latency(b, dir.path(), &o).await?;
        }
        for &c in &clients {
            cycles(b, dir.path(), &o, c).await?;
        }
        if !cycles_only {
            expiry_lag(b, dir.path(), &o).await?;
            breakdown(b, dir.path(), &o).await?;
        }
    }
    Ok(())
}

/// `--clients 8,32,128`: the client counts of the cycle runs, each 1..=1024.
fn client_counts(v: Option<&String>) -> anyhow::Result<Vec<usize>> {
    let v = v.ok_or_else(|| anyhow!("--clients takes a list such as 8,32,128"))?;
    v.split(',')
        .map(|c| match c.trim().parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => Ok(n),
            _ => Err(anyhow!(
                "--clients: {c:?} is not a client count from 1 to 1024"
            )),
        })
        .collect()
}

/// The number after `flag`.
fn number(flag: &str, v: Option<&String>) -> anyhow::Result<u64> {
    v.and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("{flag} takes a number"))
}

#[cfg(test)]
mod client_count_tests {
    use super::client_counts;

    #[test]
    fn client_counts_are_a_list_of_sane_numbers() {
        let v = |s: &str| client_counts(Some(&s.to_string()));
        assert_eq!(v("8,32,128").expect("list"), [8, 32, 128]);
        assert_eq!(v(" 64 ").expect("one"), [64]);
        for bad in ["0", "2000", "8,x", ""] {
            let e = v(bad).expect_err(bad).to_string();
            assert!(e.contains("client count"), "{bad}: {e}");
        }
        assert!(client_counts(None).is_err());
    }
}
