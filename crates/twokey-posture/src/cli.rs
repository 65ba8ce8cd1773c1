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
    /// The findings of a GitHub posture scan (`twokey posture github
    /// --format json` saved to a file): `code.guardrails_protected` reads
    /// from them whether the repositories of `[posture.as_code]` are
    /// protected by the deploy gate.
    #[arg(long, value_name = "FILE")]
    pub github_results: Option<PathBuf>,
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
    /// Least CloudWatch Logs retention in days (the policy's `[posture] log_retention_days` wins).
    #[arg(long, default_value_t = Settings::default().log_retention_min_days)]
    pub log_retention_days: u32,
    /// A bucket that holds evidence besides the trail buckets (twokey's ledger bucket): it needs
    /// SSE-KMS and access logging. Repeat or comma-separate.
    #[arg(long = "log-bucket", value_delimiter = ',')]
    pub log_buckets: Vec<String>,
    /// A bucket that must use SSE-KMS (backups). Repeat or comma-separate.
    #[arg(long = "kms-bucket", value_delimiter = ',')]
    pub kms_buckets: Vec<String>,
    /// Least IAM password length where users remain.
    #[arg(long, default_value_t = Settings::default().password_min_length)]
    pub password_min_length: u32,
    /// Evaluate facts recorded earlier (`--save-facts`) instead of calling AWS.
    #[arg(long, conflicts_with = "save_facts")]
    pub facts: Option<PathBuf>,
    /// Write the collected facts to this file (JSON).
    #[arg(long)]
    pub save_facts: Option<PathBuf>,
    /// A high-risk action for `iam.standing_high_risk`, `service:Action` or
    /// `service:Action=RESOURCE_ARN` (repeatable); replaces the defaults.
    #[arg(long = "high-risk", value_name = "ACTION[=RESOURCE]", value_parser = parse_risk)]
    pub high_risk: Vec<twokey_iam::graph::HighRisk>,
    /// A principal twokey runs as (its gateway role), reported as such by
    /// the IAM graph (repeatable; the policy's `assume_role_arn`s are added).
    #[arg(long = "twokey-gateway", value_name = "ARN")]
    pub twokey_gateway: Vec<String>,
    /// Also ask GenerateServiceLastAccessedDetails for every role (slow).
    #[arg(long)]
    pub service_last_accessed: bool,
}

fn parse_risk(s: &str) -> Result<twokey_iam::graph::HighRisk, String> {
    crate::checks::iam_standing_access::parse_risk(s)
}

/// The checks `twokey posture iam` runs.
pub const IAM_CHECKS: &[&str] = &[
    "iam.standing_high_risk",
    "iam.unused_roles",
    "iam.unused_credentials",
    "iam.privilege_escalation",
    "iam.workload_users",
    "twokey.assume_trust",
];

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
        let mut s = Settings {
            object_lock_min_days: self.object_lock_days,
            backup_min_retention_days: self.backup_retention_days,
            backup_include_empty_vaults: self.include_empty_vaults,
            unused_days: self.unused_days,
            log_archive_account: self.log_archive_account.clone(),
            log_retention_min_days: self.log_retention_days,
            log_buckets: self.log_buckets.clone(),
            kms_buckets: self.kms_buckets.clone(),
            password_min_length: self.password_min_length,
            high_risk: self.high_risk.clone(),
            ..Settings::default()
        };
        if let Some(file) = &self.policy {
            apply_policy(&mut s, &read_policy(file)?, file)?;
        }
        Ok(s)
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

/// A twokey policy file, validated.
fn read_policy(file: &std::path::Path) -> anyhow::Result<twokey_core::Policy> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    twokey_core::Policy::parse(&text, &file.display().to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// What the policy in force tells the checks: its `[posture]` switches,
/// exceptions and break-glass users, and the bastion security groups of its
/// `aws_security_group` entitlements. A `[posture]` naming a check that does
/// not exist is refused (a typo would silently judge what was meant to be off).
pub fn apply_policy(
    settings: &mut Settings,
    policy: &twokey_core::Policy,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    let unknown = Registry::builtin().unknown_in(&policy.posture);
    if !unknown.is_empty() {
        bail!("{}: {}", file.display(), unknown.join("; "));
    }
    settings.posture = policy.posture.clone();
    settings.break_glass_users = policy.posture.break_glass_users.clone();
    if let Some(d) = policy.posture.log_retention_days {
        settings.log_retention_min_days = d;
    }
    settings.bastion_groups = policy
        .entitlements
        .values()
        .filter(|e| e.provider == "aws_security_group")
        .filter_map(|e| {
            e.target
                .get("group_id")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .collect();
    Ok(())
}

/// The `aws_iam_assume` targets of a twokey policy file.
pub fn policy_targets(file: &std::path::Path) -> anyhow::Result<Vec<Target>> {
    let policy = read_policy(file)?;
    targets_of(&policy, &file.display().to_string())
}

/// The `aws_iam_assume` targets of a parsed twokey policy (`file` names it
/// in errors): the roles twokey gates, whose trust the scan reads.
pub fn targets_of(policy: &twokey_core::Policy, file: &str) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    for (name, e) in &policy.entitlements {
        if e.provider != "aws_iam_assume" {
            continue;
        }
        let c = twokey_aws::iam_assume::AssumeConfig::from_target(&e.target).map_err(|err| {
            anyhow::anyhow!(
                "{file}:{}: entitlement {name:?}: {}",
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
            let targets = match &args.policy {
                Some(p) => policy_targets(p)?,
                None => vec![],
            };
            let mut gateway = args.twokey_gateway.clone();
            gateway.extend(
                targets
                    .iter()
                    .filter_map(|t| t.connection.assume_role_arn.clone()),
            );
            gateway.sort();
            gateway.dedup();
            let opts = Options {
                connection: args.connection()?,
                regions: args.regions.clone(),
                member_role: args.member_role.clone(),
                concurrency: args.concurrency,
                targets,
                gateway,
                service_last_accessed: args.service_last_accessed,
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
    if let Some(f) = &args.github_results {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        facts.github = Some(github_findings(&text).with_context(|| {
            format!(
                "{}: not the JSON of `twokey posture github --format json`",
                f.display()
            )
        })?);
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

/// The findings of a GitHub posture report: its JSON object's `findings`,
/// or a bare array of findings.
pub fn github_findings(text: &str) -> anyhow::Result<Vec<crate::Finding>> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let findings = match v {
        serde_json::Value::Object(mut o) => o
            .remove("findings")
            .ok_or_else(|| anyhow::anyhow!("no \"findings\" in the report"))?,
        v @ serde_json::Value::Array(_) => v,
        _ => bail!("expected a report object or an array of findings"),
    };
    let findings: Vec<crate::Finding> = serde_json::from_value(findings)?;
    if let Some(f) = findings.iter().find(|f| !f.check.starts_with("github.")) {
        bail!(
            "finding of {:?} on {:?} is not a GitHub posture finding",
            f.check,
            f.resource
        );
    }
    Ok(findings)
}

/// `twokey scp generate` arguments.
#[derive(Args, Debug, Clone)]
pub struct ScpGenerateArgs {
    /// A CloudTrail log bucket to protect (repeat for more).
    #[arg(long = "log-bucket")]
    pub log_buckets: Vec<String>,
    /// The organisation trail's ARN.
    #[arg(long)]
    pub trail: Option<String>,
    /// A Backup vault ARN to protect (repeat for more).
    #[arg(long = "vault")]
    pub vaults: Vec<String>,
    /// The break-glass role exempted from the denies (ARN; account may be
    /// `*`). Make it a role twokey gates, or the posture check fails it.
    #[arg(long)]
    pub break_glass_role: Option<String>,
    /// SCPs that may be generated: 5 per target minus those already there.
    #[arg(long, default_value_t = 4)]
    pub max_policies: usize,
    /// Directory for `twokey-guardrails-N.json` and `twokey-guardrails.tf`.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `twokey scp generate`: writes the documents and the Terraform, and
/// lists what it wrote on `out`.
pub fn run_scp_generate(args: &ScpGenerateArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let rails = crate::scp::GuardRails {
        log_buckets: args.log_buckets.clone(),
        trail: args.trail.clone(),
        vaults: args.vaults.clone(),
        break_glass_role: args.break_glass_role.clone(),
        max_policies: args.max_policies,
    };
    if rails.log_buckets.is_empty() {
        bail!("--log-bucket is required: the guard rails protect the CloudTrail log bucket");
    }
    let scps = crate::scp::generate(&rails)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for s in &scps {
        let file = args.out.join(format!("{}.json", s.name));
        std::fs::write(&file, &s.document)
            .with_context(|| format!("cannot write {}", file.display()))?;
        writeln!(out, "{} ({} characters)", file.display(), s.document.len())?;
    }
    let tf = args.out.join("twokey-guardrails.tf");
    std::fs::write(&tf, crate::scp::terraform(&scps))
        .with_context(|| format!("cannot write {}", tf.display()))?;
    writeln!(out, "{}", tf.display())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::github_findings;

    const FINDING: &str = r#"{"check":"github.no_bypass","account":"acme","resource":"acme/x","status":"pass","message":"m"}"#;

    #[test]
    fn github_results_are_a_report_or_an_array_of_github_findings() {
        let report = format!("{{\"findings\":[{FINDING}]}}");
        assert_eq!(github_findings(&report).map(|v| v.len()).ok(), Some(1));
        assert_eq!(
            github_findings(&format!("[{FINDING}]"))
                .map(|v| v.len())
                .ok(),
            Some(1)
        );
        assert!(github_findings("{}").is_err());
        let aws = FINDING.replace("github.no_bypass", "s3.default_encryption");
        assert!(github_findings(&format!("[{aws}]")).is_err());
    }
}
