//! `twokey serve` and `twokey token issue`: wiring of store, policy, providers,
//! alert sinks and the HTTP server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use twokey_core::Policy;
use twokey_providers::{ProviderContext, Registry};
use twokey_server::{config::Config, dev, Broker, BrokerOptions, SystemClock};
use twokey_store::Store;

/// `twokey serve` options.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Complete local instance: SQLite in the data dir, demo policy and identities, loopback only.
    #[arg(long)]
    dev: bool,
    /// Data dir for --dev.
    #[arg(long, default_value = ".twokey-dev")]
    data_dir: PathBuf,
    /// Address to listen on (--dev: loopback only).
    #[arg(long)]
    listen: Option<String>,
    /// Server config file (production).
    #[arg(long, conflicts_with = "dev")]
    config: Option<PathBuf>,
    /// PostgreSQL admin URL for the demo-db entitlement in --dev (used when reachable).
    #[arg(
        long,
        env = "TWOKEY_DEV_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    dev_postgres: String,
    /// Scheduler lease in milliseconds (how long a crashed replica's claimed work waits).
    #[arg(long, default_value_t = 30_000, hide = true)]
    lease_ms: i64,
    /// First provider retry delay in milliseconds.
    #[arg(long, default_value_t = 1_000, hide = true)]
    backoff_ms: i64,
    /// Replica name for scheduler leases.
    #[arg(long, hide = true)]
    node: Option<String>,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TWOKEY_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn pg_reachable(url: &str) -> bool {
    let hostport = url
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_string();
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(hostport)
        )
        .await,
        Ok(Ok(_))
    )
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<i32> {
    init_tracing();
    let registry = registry();
    let mut ctx = ProviderContext::default();
    let opts = BrokerOptions {
        lease_ms: args.lease_ms,
        base_backoff_ms: args.backoff_ms,
        node: args
            .node
            .clone()
            .unwrap_or_else(|| twokey_server::new_id("node")),
        ..Default::default()
    };
    let mut ledger_cfg = twokey_server::checkpoints::LedgerConfig::default();
    let mut gate_cfg: Option<twokey_gate::config::GateConfig> = None;
    let mut posture_cfg: Option<twokey_server::posture::PostureConfig> = None;
    let mut github_posture_cfg: Option<twokey_posture_github::GithubPostureConfig> = None;
    let key_default: PathBuf;
    let mut notifiers = Vec::new();
    let mut scim_cfg: Option<twokey_server::scim::ScimConfig> = None;
    let mut slack_cfg: Option<twokey_server::slack::SlackConfig> = None;
    let mut sso_table = None;
    let (store, policy, listen, sinks, mut opts, dev_dir) = if args.dev {
        let listen = args
            .listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let addr: std::net::SocketAddr = listen.parse().with_context(|| {
            format!("--listen {listen:?} is not an address like 127.0.0.1:8080")
        })?;
        if !addr.ip().is_loopback() {
            bail!("--dev listens on loopback only; {listen} is not a loopback address");
        }
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
        let dir = std::fs::canonicalize(&args.data_dir)?;
        ctx.env
            .insert("TWOKEY_DATA_DIR".into(), dir.display().to_string());
        let pg = pg_reachable(&args.dev_postgres)
            .await
            .then_some(args.dev_postgres.as_str());
        let policy = dev::demo(pg);
        let store = Store::open(&format!("sqlite://{}", dir.join("twokey.db").display())).await?;
        eprintln!("{}", dev::banner(&listen, &dir, pg.is_some()));
        key_default = dir.join("ledger.key");
        ledger_cfg.origin = Some("twokey/dev".into());
        ledger_cfg.sink = vec![twokey_server::checkpoints::LedgerSinkConfig::Dir {
            path: dir.join("ledger-bundles").display().to_string(),
        }];
        (store, policy, listen, vec![], opts, Some(dir))
    } else {
        let Some(cfg_path) = &args.config else {
            bail!("give --config twokey.toml, or --dev for a local instance")
        };
        // The file is read once; the server, the gate and the GitHub posture
        // each parse their own sections of the same text.
        let (cfg, text) = load_config(cfg_path)?;
        if cfg.gate.is_some() || cfg.posture.as_ref().is_some_and(|p| p.github.is_some()) {
            gate_cfg =
                twokey_gate::config::GateConfig::parse_file(&text, &cfg_path.display().to_string())
                    .map_err(anyhow::Error::msg)?;
            github_posture_cfg = twokey_posture_github::GithubPostureConfig::parse_file(
                &text,
                &cfg_path.display().to_string(),
            )
            .map_err(anyhow::Error::msg)?;
        }
        let text = std::fs::read_to_string(&cfg.policy)
            .with_context(|| format!("cannot read policy {}", cfg.policy))?;
        let policy = Policy::parse(&text, &cfg.policy).map_err(|e| anyhow::anyhow!("{e}"))?;
        let store = Store::open(&cfg.database).await?;
        let sinks = twokey_notify::build_sinks(&cfg.alerts.sink);
        notifiers = twokey_notify::notifications::build_notifiers(&cfg.notifications)
            .map_err(anyhow::Error::msg)?;
        ledger_cfg = cfg.ledger.clone();
        posture_cfg = cfg.posture.as_ref().and_then(|p| p.aws.clone());
        scim_cfg = cfg.scim.clone();
        slack_cfg = cfg.slack.clone();
        sso_table = cfg.sso.clone();
        key_default = cfg_path
            .parent()
            .map(|d| d.join("ledger.key"))
            .unwrap_or_else(|| PathBuf::from("ledger.key"));
        if ledger_cfg.origin.is_none() {
            let host = cfg
                .public_url
                .split("://")
                .nth(1)
                .unwrap_or(&cfg.public_url)
                .trim_end_matches('/')
                .to_string();
            ledger_cfg.origin = Some(format!("twokey/{host}"));
        }
        let mut o = opts;
        o.public_url = cfg.public_url.clone();
        let (interval, grace) = cfg.reconciler.millis().map_err(anyhow::Error::msg)?;
        o.reconcile_interval_ms = interval;
        o.reconcile_grace_ms = grace;
        cfg.activity.validate().map_err(anyhow::Error::msg)?;
        o.activity = cfg.activity.clone();
        (
            store,
            policy,
            args.listen.clone().unwrap_or(cfg.listen.clone()),
            sinks,
            o,
            None,
        )
    };
    if opts.public_url.is_empty() {
        opts.public_url = format!("http://{listen}");
    }
    let web = twokey_web::WebConfig {
        public_url: opts.public_url.clone(),
        sso: sso_table
            .map(twokey_web::SsoConfig::from_table)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        dev_login: args.dev,
    };
    let file = args
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let watcher = match github_posture_cfg {
        Some(p) => Some(build_watcher(
            p,
            gate_cfg.as_ref(),
            store.clone(),
            &opts.node,
            &file,
        )?),
        None => None,
    };
    let gate = match gate_cfg {
        Some(g) => Some(build_gate(
            g,
            store.clone(),
            &opts.node,
            &file,
            watcher.clone(),
        )?),
        None => None,
    };
    let public_url = opts.public_url.clone();
    let clock: Arc<dyn twokey_server::Clock> = Arc::new(SystemClock);
    let checkpointer =
        crate::audit::checkpointer(&ledger_cfg, &key_default, store.clone(), clock).await?;
    let (broker, warning) = Broker::start(
        store,
        policy,
        registry,
        ctx,
        Arc::new(SystemClock),
        sinks,
        opts,
    )
    .await?;
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    broker.set_notifiers(notifiers);
    let slack = match slack_cfg {
        Some(s) => {
            let app = twokey_server::slack::SlackApp::new(s, &public_url)
                .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
            let app = Arc::new(app);
            broker.set_slack(app.clone());
            Some(app)
        }
        None => None,
    };
    if let Some(dir) = &dev_dir {
        write_dev_tokens(&broker, dir).await?;
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!("twokey listening on http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        let _ = tx.send(true);
    });
    let mut ui = twokey_web::router(broker.clone(), web);
    if let Some(g) = &gate {
        ui = ui.merge(twokey_gate::router(g.clone()));
        tokio::spawn(g.clone().run_drift(rx.clone()));
        tracing::info!(
            projects = g.config.project.len(),
            drift = g.config.drift_interval.as_deref().unwrap_or("off"),
            "deploy gate on /v1/gate/github"
        );
    }
    if let Some(p) = posture_cfg {
        tracing::info!(interval_ms = p.interval.0, "posture monitor on");
        let monitor = twokey_server::posture::PostureMonitor::new(broker.clone(), p);
        tokio::spawn(monitor.run(rx.clone()));
    }
    if let Some(s) = scim_cfg {
        tracing::info!(clients = s.client.len(), "SCIM provisioning on /scim/v2");
        ui = ui.merge(twokey_server::scim::router(broker.clone(), s, &public_url));
    }
    if let Some(app) = slack {
        tracing::info!(
            links = app.links(),
            "Approve from Slack on {}",
            twokey_server::slack::PATH
        );
        ui = ui.merge(twokey_server::slack::router(broker.clone(), app));
    }
    if let Some(w) = &watcher {
        ui = ui.merge(twokey_posture_github::watch::router(
            w.clone(),
            broker.clone(),
        ));
        if let Some(every) = w.scope.config.interval {
            tokio::spawn(w.clone().run_schedule(every, rx.clone()));
        }
        tracing::info!(
            org = %w.scope.config.org,
            action = ?w.action,
            interval = ?w.scope.config.interval,
            "GitHub posture: settings events through /v1/gate/github, restores on /v1/posture/github/restores"
        );
    }
    let doc = Some(twokey_web::openapi());
    twokey_server::serve_documented(broker, ui, doc, listener, rx, Some(checkpointer)).await?;
    if let Some(g) = &gate {
        // Never cut a running plan or apply short at shutdown.
        g.drain(Duration::from_secs(3600)).await;
    }
    Ok(0)
}

/// The deploy gate from `[gate]`: credentials, GitHub client, checkouts
/// through the REST API, on the broker's store (so its ledger entries are
/// the same ledger's and its alerts go through the same sinks).
fn build_gate(
    mut cfg: twokey_gate::config::GateConfig,
    store: Store,
    node: &str,
    file: &str,
    watcher: Option<Arc<twokey_posture_github::watch::Watcher>>,
) -> anyhow::Result<Arc<twokey_gate::Gate>> {
    use twokey_gate::github::{GitHub, RestGitHub};
    let secret = cfg
        .load_webhook_secret()
        .map_err(|e| anyhow::anyhow!("{file}: [gate]: {e}"))?;
    let auth = cfg
        .load_auth()
        .map_err(|e| anyhow::anyhow!("{file}: [gate]: {e}"))?;
    let github: Arc<dyn GitHub> = Arc::new(
        RestGitHub::with_auth(&cfg.api_url, auth)
            .map_err(|e| anyhow::anyhow!("{file}: [gate]: {e}"))?,
    );
    std::fs::create_dir_all(&cfg.workdir).with_context(|| {
        format!(
            "{file}: [gate]: cannot create workdir {:?} (gate.workdir)",
            cfg.workdir
        )
    })?;
    // Plans are saved and applied from inside checkouts: the path must be absolute.
    cfg.workdir = std::fs::canonicalize(&cfg.workdir)
        .with_context(|| format!("{file}: [gate]: gate.workdir {:?}", cfg.workdir))?
        .display()
        .to_string();
    let checkout = Arc::new(twokey_gate::gate::ApiCheckout {
        github: github.clone(),
        max_bytes: 512 << 20,
    });
    let mut gate = twokey_gate::Gate::new(
        cfg,
        secret,
        twokey_gate::db::GateDb::new(store),
        github,
        checkout,
    )
    .with_node(node);
    if let Some(w) = watcher {
        gate = gate.with_settings_watcher(w);
    }
    Ok(Arc::new(gate))
}

/// The GitHub posture from `[posture.github]`: its own credentials or the
/// gate's, the gate's repositories as IaC, on the broker's store.
fn build_watcher(
    cfg: twokey_posture_github::GithubPostureConfig,
    gate: Option<&twokey_gate::config::GateConfig>,
    store: Store,
    node: &str,
    file: &str,
) -> anyhow::Result<Arc<twokey_posture_github::watch::Watcher>> {
    use twokey_gate::github::{Auth, RestGitHub};
    let auth = cfg
        .auth(gate.map(|g| g.load_auth()))
        .map_err(|e| anyhow::anyhow!("{file}: [posture.github]: {e}"))?;
    let app = matches!(auth, Auth::App { .. });
    let github = Arc::new(
        RestGitHub::with_auth(&cfg.api_url, auth)
            .map_err(|e| anyhow::anyhow!("{file}: [posture.github]: {e}"))?,
    );
    let mut gate_repos: Vec<String> = Vec::new();
    if let Some(g) = gate {
        gate_repos.extend(g.allow.iter().cloned());
        gate_repos.extend(g.project.iter().map(|p| p.repo.clone()));
    }
    let baseline = cfg.baseline(app);
    let scope = twokey_posture_github::collect::Scope {
        config: cfg,
        gate_repos,
    };
    Ok(Arc::new(twokey_posture_github::watch::Watcher::new(
        scope, baseline, github, store, node,
    )))
}

/// Every provider kind this binary knows: the built-in ones and the AWS
/// providers (`aws_iam_assume`, `aws_security_group`, `aws_identity_center`).
pub(crate) fn registry() -> Registry {
    let mut r = Registry::with_builtin();
    twokey_aws::register(&mut r);
    r.register("custody", twokey_custody::provider::factory);
    r
}

/// The server configuration, and the file's text for the sections other
/// crates parse (`[gate]`, `[posture.github]`).
fn load_config(path: &Path) -> anyhow::Result<(Config, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let cfg = Config::parse(&text, &path.display().to_string()).map_err(|e| anyhow::anyhow!(e))?;
    Ok((cfg, text))
}

async fn write_dev_tokens(broker: &Broker, dir: &Path) -> anyhow::Result<()> {
    let lp = broker.policy();
    let mut tokens = dev::read_tokens(dir).unwrap_or_default();
    let mut out = BTreeMap::new();
    for id in &lp.policy.identities {
        let tok = tokens
            .remove(&id.name)
            .unwrap_or_else(twokey_server::new_token);
        broker
            .store()
            .put_token(
                &twokey_server::token_hash(&tok),
                &id.actor(),
                broker.now(),
                None,
            )
            .await?;
        out.insert(id.name.clone(), tok);
    }
    dev::write_tokens(dir, &out)
        .with_context(|| format!("cannot write {}/dev-tokens.json", dir.display()))?;
    Ok(())
}

pub(crate) async fn issue_token(
    config: &Path,
    identity: &str,
    ttl: Option<&str>,
) -> anyhow::Result<i32> {
    let (cfg, _) = load_config(config)?;
    let store = Store::open(&cfg.database).await?;
    let text = match store.current_policy().await? {
        Some((_, t)) => t,
        None => std::fs::read_to_string(&cfg.policy)?,
    };
    let policy = Policy::parse(&text, &cfg.policy).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(id) = policy.identity(identity) else {
        bail!(
            "no identity {identity:?} in the policy in force (known: {})",
            policy
                .identities
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let now = SystemClock.now_ms();
    let expires = ttl
        .map(twokey_core::time::parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?
        .map(|d| now + d);
    let tok = twokey_server::new_token();
    store
        .put_token(&twokey_server::token_hash(&tok), &id.actor(), now, expires)
        .await?;
    println!("{tok}");
    Ok(0)
}

trait NowMs {
    fn now_ms(&self) -> i64;
}

impl NowMs for SystemClock {
    fn now_ms(&self) -> i64 {
        use twokey_server::Clock;
        self.now()
    }
}
