//! The posture monitor: `twokey posture aws` run by `twokey serve` every
//! `[posture.aws] interval`, so the guard rails around two-person control are
//! watched continuously, not once.
//!
//! Per pass, under the store lease [`LEASE`] (one replica scans; the others
//! skip), it collects the organisation's facts, evaluates every built-in
//! check ([`twokey_posture::Registry::builtin`]) and compares each result
//! with the last scan's, as stored ([`twokey_posture::changes`]). Each
//! change is a ledger entry that alerts through the existing alert path:
//! `posture.failing` (a check newly fails on a resource), `posture.fixed`
//! (it passes again, or the resource is gone), `posture.undetermined` (a
//! failing result can no longer be read). The ledger is written first and a
//! failure to write it fails the pass before the stored results move on, so
//! the next pass finds the same change again (evidence is never dropped;
//! at worst a change is recorded twice). Then the results replace the last
//! ones in the store (migration 0020), where the web UI reads them, and the
//! failing counts per check and severity go to `/metrics`.
//!
//! The twokey policy in force gives the `aws_iam_assume` targets whose
//! trust is checked and the roles twokey gates (a break-glass exemption in
//! an SCP passes only for those).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use twokey_core::event::PostureChange;
use twokey_core::{Actor, Event, Millis};
use twokey_posture::changes::{changes, ChangeKind};
use twokey_posture::collect::{self, Options, DEFAULT_MEMBER_ROLE};
use twokey_posture::{Finding, Registry, Settings, Status};
use twokey_store::PostureRow;

use crate::broker::{Broker, BrokerError};

/// Name of the store lease that makes one replica at a time scan.
pub const LEASE: &str = "posture";

/// A duration written as `"1h"`, `"30m"`, `"90s"` in `twokey.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub Millis);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ms = twokey_core::time::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("[posture.aws] interval {s:?}: {e}")))?;
        if ms < 1_000 {
            return Err(serde::de::Error::custom(format!(
                "[posture.aws] interval {s:?} is shorter than 1s"
            )));
        }
        Ok(Interval(ms))
    }
}

/// `[posture.aws]` in `twokey.toml`.
///
/// ```toml
/// [posture.aws]
/// interval = "1h"                        # time between scans
/// regions = ["us-east-1", "eu-west-1"]   # default: every enabled region
/// member_role = "OrganizationAccountAccessRole"
/// log_archive_account = "222233334444"
/// # region = "us-east-1"; endpoint_url = "https://..."; concurrency = 8
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostureConfig {
    /// Time between scans.
    pub interval: Interval,
    /// Regions to scan; empty: every region enabled in the management account.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Role assumed in each member account.
    #[serde(default = "default_member_role")]
    pub member_role: String,
    /// Region for global calls.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override for every AWS call (a VPC endpoint, moto).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Accounts scanned at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The log-archive account (trail buckets must be in it).
    #[serde(default)]
    pub log_archive_account: Option<String>,
}

fn default_member_role() -> String {
    DEFAULT_MEMBER_ROLE.to_string()
}

fn default_concurrency() -> usize {
    8
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Whether another replica held the lease (then nothing was done).
    pub skipped: bool,
    /// Findings of the scan.
    pub findings: usize,
    /// Of them failing.
    pub failing: usize,
    /// Changes written to the ledger.
    pub changes: usize,
}

/// The posture monitor of one replica.
pub struct PostureMonitor {
    broker: Arc<Broker>,
    config: PostureConfig,
}

fn subject(f: &Finding) -> String {
    format!("posture:{}", f.check)
}

/// The GitHub posture's stored states as findings; `None` when there are none.
fn github_findings(states: &[twokey_store::GithubPostureState]) -> Option<Vec<Finding>> {
    if states.is_empty() {
        return None;
    }
    Some(
        states
            .iter()
            .map(|s| Finding {
                check: s.check.clone(),
                account: String::new(),
                region: None,
                resource: s.resource.clone(),
                status: Status::parse(&s.status).unwrap_or(Status::Error),
                message: format!(
                    "{} on {}: {} (GitHub posture)",
                    s.check, s.resource, s.status
                ),
                evidence: serde_json::Value::Null,
            })
            .collect(),
    )
}

fn finding_of(r: &PostureRow) -> Finding {
    Finding {
        check: r.check.clone(),
        account: r.account.clone(),
        region: (!r.region.is_empty()).then(|| r.region.clone()),
        resource: r.resource.clone(),
        status: Status::parse(&r.status).unwrap_or(Status::Error),
        message: r.message.clone(),
        evidence: serde_json::from_str(&r.evidence).unwrap_or(serde_json::Value::Null),
    }
}

impl PostureMonitor {
    /// A monitor scanning as `config` says, recording through `broker`.
    pub fn new(broker: Arc<Broker>, config: PostureConfig) -> Self {
        Self { broker, config }
    }

    fn lease_ttl(&self) -> i64 {
        self.config.interval.0 + 10 * 60_000
    }

    async fn hold_lease(&self) -> Result<bool, BrokerError> {
        let b = &self.broker;
        Ok(b.store()
            .try_lease(LEASE, &b.options().node, b.now(), self.lease_ttl())
            .await?)
    }

    fn options(&self) -> Result<Options, BrokerError> {
        let policy = self.broker.policy();
        let targets = twokey_posture::cli::targets_of(&policy.policy, "the policy in force")
            .map_err(|e| BrokerError::Internal(format!("posture: {e}")))?;
        Ok(Options {
            connection: twokey_aws::client::Connection {
                region: Some(
                    self.config
                        .region
                        .clone()
                        .unwrap_or_else(|| "us-east-1".into()),
                ),
                endpoint_url: self.config.endpoint_url.clone(),
                ..Default::default()
            },
            regions: self.config.regions.clone(),
            member_role: self.config.member_role.clone(),
            concurrency: self.config.concurrency.max(1),
            targets,
            gateway: vec![],
            service_last_accessed: false,
        })
    }

    fn settings(&self) -> Settings {
        let mut s = Settings {
            log_archive_account: self.config.log_archive_account.clone(),
            ..Settings::default()
        };
        // The policy's `[posture]` (switches, exceptions, break-glass users);
        // the policy in force was validated when it was loaded.
        let policy = self.broker.policy();
        if let Err(e) = twokey_posture::cli::apply_policy(
            &mut s,
            &policy.policy,
            std::path::Path::new("the policy in force"),
        ) {
            tracing::warn!(error = %e, "posture: the policy's [posture] is not applied");
        }
        s
    }

    /// One scan: collect, evaluate, record the changes, store the results,
    /// export the counts.
    pub async fn run_once(&self) -> Result<PassReport, BrokerError> {
        if !self.hold_lease().await? {
            return Ok(PassReport {
                skipped: true,
                ..Default::default()
            });
        }
        let b = &self.broker;
        let started = b.now();
        let opts = self.options()?;
        let quiet: collect::Progress = Arc::new(|_, _, _| {});
        let mut facts = collect::collect(&opts, started, quiet)
            .await
            .map_err(|e| BrokerError::Internal(format!("posture scan: {e:#}")))?;
        // When the GitHub posture runs here too, its last state judges the
        // guard rails kept as code (`code.guardrails_protected`).
        facts.github = github_findings(&b.store().github_posture_states().await?);
        let registry = Registry::builtin();
        let now = registry.evaluate(&facts, &self.settings());
        let before: Vec<Finding> = b.store().posture().await?.iter().map(finding_of).collect();
        let found = changes(&before, &now);
        // Renew before writing: the scan may have taken a while.
        if !self.hold_lease().await? {
            return Ok(PassReport {
                skipped: true,
                ..Default::default()
            });
        }
        let events: Vec<(String, Event)> = found
            .iter()
            .filter_map(|c| {
                let f = c.finding()?;
                let severity = registry.get(&f.check).map(|k| k.severity.as_str());
                let data = PostureChange {
                    check: f.check.clone(),
                    severity: severity.map(String::from),
                    account: f.account.clone(),
                    region: f.region.clone(),
                    resource: f.resource.clone(),
                    message: c.now.as_ref().map(|n| n.message.clone()),
                    before: c.before.as_ref().map(|x| x.status.as_str().into()),
                    status: c.now.as_ref().map(|x| x.status.as_str().into()),
                    gone: c.now.is_none() && c.kind == ChangeKind::Fixed,
                };
                Some((
                    subject(f),
                    c.kind.event(data).by(Actor::system().key.to_string()),
                ))
            })
            .collect();
        if !events.is_empty() {
            b.store()
                .record(b.now(), &b.policy().policy.hash, events)
                .await?;
            b.wake();
        }
        let rows: Vec<PostureRow> = now
            .iter()
            .map(|f| PostureRow {
                check: f.check.clone(),
                account: f.account.clone(),
                region: f.region.clone().unwrap_or_default(),
                resource: f.resource.clone(),
                severity: registry
                    .get(&f.check)
                    .map_or("low", |c| c.severity.as_str())
                    .to_string(),
                status: f.status.as_str().to_string(),
                message: f.message.clone(),
                evidence: f.evidence.to_string(),
                scanned_at: facts.collected_at_ms,
            })
            .collect();
        // One result per check and resource: a check that judged a resource
        // twice is a bug to name, not a database constraint to surface.
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = rows
            .iter()
            .find(|r| !seen.insert((&r.check, &r.account, &r.region, &r.resource)))
        {
            return Err(BrokerError::Internal(format!(
                "posture scan: check {} judged {} in account {} region {:?} twice",
                dup.check, dup.resource, dup.account, dup.region
            )));
        }
        b.store().replace_posture(&rows).await?;
        b.metrics.posture_scanned(&rows);
        Ok(PassReport {
            skipped: false,
            findings: rows.len(),
            failing: rows.iter().filter(|r| r.status == "FAIL").count(),
            changes: found.len(),
        })
    }

    /// Scans at once and then every interval until `shutdown` fires, then
    /// gives the lease up.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let pause = Duration::from_millis(self.config.interval.0.max(1_000) as u64);
        loop {
            match self.run_once().await {
                Ok(r) if !r.skipped => tracing::info!(?r, "posture scan"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "posture scan failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        let b = &self.broker;
        if let Err(e) = b.store().release_lease(LEASE, &b.options().node).await {
            tracing::warn!(error = %e, "could not release the posture lease");
        }
    }
}
