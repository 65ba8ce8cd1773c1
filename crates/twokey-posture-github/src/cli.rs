//! `twokey posture github`: collect (or read recorded facts), evaluate,
//! print in the AWS posture's formats, and exit 3 when a check at or above
//! `--fail-on` fails.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use twokey_gate::github::{Auth, RestGitHub};
use twokey_posture::output::{Format, Report};
use twokey_posture::Severity;

use crate::collect::{self, Scope};
use crate::facts::Facts;
use crate::{GithubPostureConfig, Registry};

/// Exit status when a check at or above `--fail-on` fails.
pub const EXIT_FAILED: i32 = 3;

/// `twokey posture github` arguments.
#[derive(Args, Debug, Clone)]
pub struct GithubArgs {
    /// The organisation (default: `[posture.github] org` of `--config`).
    #[arg(long)]
    pub org: Option<String>,
    /// A twokey.toml whose `[posture.github]` (and `[gate]`: its repositories
    /// are IaC, its credentials the fallback) settles everything else.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// REST API base.
    #[arg(long, env = "GITHUB_API_URL")]
    pub api_url: Option<String>,
    /// A token in this environment variable (else the config's credentials).
    #[arg(long, default_value = "GITHUB_TOKEN")]
    pub token_env: String,
    /// Repository name patterns (repeat or comma-separate); default all.
    #[arg(long = "repo", value_delimiter = ',')]
    pub repos: Vec<String>,
    /// Repositories with one of these topics.
    #[arg(long = "topic", value_delimiter = ',')]
    pub topics: Vec<String>,
    /// IaC repository patterns (2 approvals by default).
    #[arg(long = "iac", value_delimiter = ',')]
    pub iac: Vec<String>,
    /// Allowed bypass actors (`Team/42`).
    #[arg(long = "break-glass", value_delimiter = ',')]
    pub break_glass: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit with status 3 when a check of this severity or above fails.
    #[arg(long, default_value = "low", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Run only these checks.
    #[arg(long = "check", value_delimiter = ',')]
    pub checks: Vec<String>,
    /// Evaluate facts recorded earlier (`--save-facts`) instead of calling GitHub.
    #[arg(long, conflicts_with = "save_facts")]
    pub facts: Option<PathBuf>,
    /// Write the collected facts to this file (JSON).
    #[arg(long)]
    pub save_facts: Option<PathBuf>,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// The config, the gate's repositories, and the gate's credentials (if
/// `--config` has a `[gate]`).
pub type Settings = (
    GithubPostureConfig,
    Vec<String>,
    Option<Result<Auth, String>>,
);

/// The config a run uses: `--config`'s `[posture.github]` with the flags
/// over it, the gate's repositories and its credentials as the fallback.
pub fn settings(args: &GithubArgs) -> anyhow::Result<Settings> {
    let mut gate_repos = Vec::new();
    let mut gate_auth = None;
    let mut cfg = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let file = p.display().to_string();
            if let Some(g) = twokey_gate::config::GateConfig::parse_file(&text, &file)
                .map_err(anyhow::Error::msg)?
            {
                gate_repos = g.allow.clone();
                gate_repos.extend(g.project.iter().map(|p| p.repo.clone()));
                gate_auth = Some(g.load_auth());
            }
            GithubPostureConfig::parse_file(&text, &file).map_err(anyhow::Error::msg)?
        }
        None => None,
    }
    .map(Ok)
    .unwrap_or_else(|| {
        let org = args.org.clone().ok_or_else(|| {
            anyhow::anyhow!("give --org ORG (or --config with a [posture.github] table)")
        })?;
        let t = format!("[posture.github]\norg = {}\n", toml::Value::String(org));
        GithubPostureConfig::parse_file(&t, "--org")
            .map_err(anyhow::Error::msg)?
            .ok_or_else(|| anyhow::anyhow!("--org: no config"))
    })?;
    if let Some(o) = &args.org {
        cfg.org = o.clone();
    }
    if let Some(u) = &args.api_url {
        cfg.api_url = u.clone();
    }
    if !args.repos.is_empty() {
        cfg.repos = args.repos.clone();
    }
    if !args.topics.is_empty() {
        cfg.topics = args.topics.clone();
    }
    cfg.iac_repos.extend(args.iac.iter().cloned());
    cfg.break_glass.extend(args.break_glass.iter().cloned());
    if cfg.token.is_none() && cfg.token_file.is_none() && cfg.app_id.is_none() {
        if let Ok(t) = std::env::var(&args.token_env) {
            if !t.is_empty() {
                cfg.token = Some(twokey_core::Secret::new(t));
            }
        }
    }
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("[posture.github]: {e}"))?;
    Ok((cfg, gate_repos, gate_auth))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs `twokey posture github`; the exit status.
pub async fn run(args: &GithubArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let registry = if args.checks.is_empty() {
        Registry::builtin()
    } else {
        Registry::builtin()
            .only(&args.checks)
            .map_err(|e| anyhow::anyhow!("--check: {e}"))?
    };
    let (cfg, gate_repos, gate_auth) = settings(args)?;
    let mut app = false;
    let facts: Facts = match &args.facts {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not GitHub posture facts", f.display()))?
        }
        None => {
            let auth = cfg.auth(gate_auth).map_err(anyhow::Error::msg)?;
            app = matches!(auth, Auth::App { .. });
            let gh = Arc::new(
                RestGitHub::with_auth(&cfg.api_url, auth).map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            let scope = Arc::new(Scope {
                config: cfg.clone(),
                gate_repos,
            });
            let facts = collect::collect(gh.clone(), scope, now_ms())
                .await
                .map_err(anyhow::Error::msg)?;
            let c = gh.counts();
            eprintln!(
                "collected {} repositories with {} API requests ({} not modified)",
                facts.repos.len(),
                c.requests,
                c.not_modified
            );
            facts
        }
    };
    if let Some(f) = &args.save_facts {
        let text = serde_json::to_string_pretty(&facts)?;
        std::fs::write(f, text).with_context(|| format!("cannot write {}", f.display()))?;
    }
    let base = cfg.baseline(app);
    let posture = registry.as_posture();
    let report = Report {
        registry: &posture,
        findings: registry.evaluate(&facts, &base),
        collected_at_ms: facts.collected_at_ms,
    };
    out.write_all(report.render(args.format).as_bytes())?;
    out.flush()?;
    Ok(if report.failing_at(args.fail_on) > 0 {
        EXIT_FAILED
    } else {
        0
    })
}
