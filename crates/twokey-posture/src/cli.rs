//! `twokey posture aws`: collect (or read recorded facts), evaluate, print,
//! and exit non-zero when a check at or above `--fail-on` fails.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use twokey_aws::client::Connection;

use crate::collect::{self, Options, Target, DEFAULT_MEMBER_ROLE};
use crate::facts::Facts;
use crate::output::{Format, Report};
use crate::{Registry, Settings, Severity};

/// Exit status when a check at or above `--fail-on` fails (Prowler's too).
pub const EXIT_FAILED: i32 = 3;

/// `twokey posture aws` arguments.
#[derive(Args, Debug, Clone)]
pub struct AwsArgs {
    /// Endpoint override for every AWS call (a VPC endpoint, moto).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Region for global calls (IAM, Organizations, STS).
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Regions to scan, comma-separated; default: every region enabled in the management account.
    #[arg(long, value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Role assumed in each member account.
    #[arg(long, default_value = DEFAULT_MEMBER_ROLE)]
    pub member_role: String,
    /// Accounts scanned at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// The twokey policy in force: its `aws_iam_assume` targets' trust is
    /// checked, and its `[[custody]]` declarations are judged.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The custody state of the twokey server (`twokey --json custody
    /// secrets` saved to a file); without it the custody of `--policy` is
    /// judged with its sealing state unknown.
    #[arg(long, value_name = "FILE")]
    pub custody: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit with status 3 when a check of this severity or above fails.
    #[arg(long, default_value = "low", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Run only these checks (repeat or comma-separate).
    #[arg(long = "check", value_delimiter = ',')]
    pub checks: Vec<String>,
    /// Least Object Lock (COMPLIANCE) retention of trail buckets, in days.
    #[arg(long, default_value_t = Settings::default().object_lock_min_days)]
    pub object_lock_days: u32,
    /// Least Backup Vault Lock minimum retention, in days.
    #[arg(long, default_value_t = Settings::default().backup_min_retention_days)]
    pub backup_retention_days: u32,
    /// Also judge Backup vaults that hold no recovery points.
    #[arg(long)]
    pub include_empty_vaults: bool,
    /// A password or access key unused for more days than this fails.
    #[arg(long, default_value_t = Settings::default().unused_days)]
    pub unused_days: u32,
    /// The log-archive account: trail buckets must be in it; it runs no workloads.
    #[arg(long)]
    pub log_archive_account: Option<String>,
    /// Evaluate facts recorded earlier (`--save-facts`) instead of calling AWS.
    #[arg(long, conflicts_with = "save_facts")]
    pub facts: Option<PathBuf>,
    /// Write the collected facts to this file (JSON).
    #[arg(long)]
    pub save_facts: Option<PathBuf>,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

impl AwsArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        if let Some(a) = &self.log_archive_account {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--log-archive-account {a:?} is not a 12-digit AWS account id");
            }
        }
        Ok(Settings {
            object_lock_min_days: self.object_lock_days,
            backup_min_retention_days: self.backup_retention_days,
            backup_include_empty_vaults: self.include_empty_vaults,
            unused_days: self.unused_days,
            log_archive_account: self.log_archive_account.clone(),
        })
    }

    fn connection(&self) -> anyhow::Result<Connection> {
        let c = Connection {
            region: Some(self.region.clone()),
            endpoint_url: self.endpoint_url.clone(),
            ..Default::default()
        };
        c.validate("posture")
            .map_err(|e| anyhow::anyhow!(e.message))?;
        Ok(c)
    }
}

/// The `aws_iam_assume` targets of a twokey policy file.
pub fn policy_targets(file: &std::path::Path) -> anyhow::Result<Vec<Target>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let policy = twokey_core::Policy::parse(&text, &file.display().to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::new();
    for (name, e) in &policy.entitlements {
        if e.provider != "aws_iam_assume" {
            continue;
        }
        let c = twokey_aws::iam_assume::AssumeConfig::from_target(&e.target).map_err(|err| {
            anyhow::anyhow!(
                "{}:{}: entitlement {name:?}: {}",
                file.display(),
                e.target_line,
                err.message
            )
        })?;
        out.push(Target {
            entitlement: name.clone(),
            role_arn: c.role_arn.clone(),
            principals: c
                .principals
                .iter()
                .map(|(who, (arn, _))| (who.clone(), arn.clone()))
                .collect(),
            connection: c.connection.clone(),
        });
    }
    Ok(out)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs `twokey posture aws`; the exit status.
pub async fn run(args: &AwsArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let settings = args.settings()?;
    let registry = if args.checks.is_empty() {
        Registry::builtin()
    } else {
        Registry::builtin()
            .only(&args.checks)
            .map_err(|e| anyhow::anyhow!("--check: {e}"))?
    };
    let facts: Facts = match &args.facts {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not posture facts", f.display()))?
        }
        None => {
            let opts = Options {
                connection: args.connection()?,
                regions: args.regions.clone(),
                member_role: args.member_role.clone(),
                concurrency: args.concurrency,
                targets: match &args.policy {
                    Some(p) => policy_targets(p)?,
                    None => vec![],
                },
            };
            let tty = std::io::stderr().is_terminal();
            let progress: collect::Progress = Arc::new(move |account, done, total| {
                if tty {
                    eprint!("\rscanned {done}/{total} accounts (last {account})");
                    if done == total {
                        eprintln!();
                    }
                }
            });
            collect::collect(&opts, now_ms(), progress).await?
        }
    };
    let mut facts = facts;
    match (&args.custody, &args.policy) {
        (Some(f), _) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            facts.custody = collect::custody::from_server_json(&text, &f.display().to_string())?;
        }
        (None, Some(p)) if args.facts.is_none() => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let policy = twokey_core::Policy::parse(&text, &p.display().to_string())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            facts.custody = collect::custody::from_policy(&policy);
        }
        _ => {}
    }
    if let Some(f) = &args.save_facts {
        let text = serde_json::to_string_pretty(&facts)?;
        std::fs::write(f, text).with_context(|| format!("cannot write {}", f.display()))?;
    }
    let report = Report {
        registry: &registry,
        findings: registry.evaluate(&facts, &settings),
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
