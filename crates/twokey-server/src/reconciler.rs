//! The reconciler: a periodic look at every target whose provider can list
//! the twokey-owned access present there ([`Provider::reconciler`]).
//!
//! Per entitlement, one pass lists the access at the target, loads the
//! entitlement's live grants and every request the listing names, and asks
//! the pure [`twokey_core::reconcile::decide`] what no grant covers and which
//! active grants have no access. Then:
//! - uncovered access: a `reconcile.uncovered` ledger entry (alerting) is
//!   written *first* (fail closed: no ledger entry, no removal), then the
//!   provider removes the access, then `reconcile.removed` or
//!   `reconcile.remove_failed` (alerting) records the outcome;
//! - an active grant missing at its target: `reconcile.missing` (alerting),
//!   once per grant;
//! - a target that cannot be listed: `reconcile.list_failed` (alerting) on the
//!   first failure and every `alert_after_failures`-th in a row after it;
//! - a way in that needs no grant at all ([`Reconcile::standing_access`], e.g.
//!   a role trust naming a person in the role's own account):
//!   `reconcile.standing_access` (alerting) when first seen and whenever the
//!   findings change; `reconcile.standing_cleared` when they are gone.
//!
//! Replicas share the work through the store lease [`LEASE`]: only the holder
//! runs a pass, and it renews the lease before each entitlement and each
//! removal, so two replicas never remove the same access at once. Grants in
//! the middle of activation or revocation cover their access (see `decide`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use twokey_core::event::{
    ListFailed, Missing, NamedGrant, RemoveFailed, StandingAccess, StandingCleared, Uncovered,
};
use twokey_core::reconcile::{covers, decide, Found};
use twokey_core::{Actor, LedgerEvent, Request, State};
use twokey_providers::{Provider, Reconcile};

use crate::broker::{Broker, BrokerError};

/// Name of the store lease that makes one replica at a time reconcile.
pub const LEASE: &str = "reconciler";

/// Default time between passes.
pub const DEFAULT_INTERVAL_MS: i64 = 5 * 60_000;
/// Default grace: an active grant is reported missing only this long after
/// its activation (target listings lag behind writes).
pub const DEFAULT_GRACE_MS: i64 = 60_000;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Whether another replica held the lease (then nothing else was done).
    pub skipped: bool,
    /// Entitlements whose target was listed.
    pub checked: usize,
    /// Uncovered access removed.
    pub removed: usize,
    /// Uncovered access whose removal failed.
    pub remove_failed: usize,
    /// Active grants newly reported missing.
    pub missing: usize,
    /// Targets that could not be listed.
    pub list_failed: usize,
    /// Standing ways in (no grant needed) seen at the targets.
    pub standing: usize,
}

/// The reconciler of one replica.
pub struct Reconciler {
    broker: Arc<Broker>,
    /// Consecutive listing failures per entitlement (for alert pacing).
    failures: BTreeMap<String, i64>,
    /// Standing-access findings last recorded per entitlement.
    standing: BTreeMap<String, Vec<String>>,
}

fn subject_for(ent: &str) -> String {
    format!("reconcile:{ent}")
}

impl Reconciler {
    /// A reconciler acting through `broker` (its store, policy, clock, options).
    pub fn new(broker: Arc<Broker>) -> Self {
        Self {
            broker,
            failures: BTreeMap::new(),
            standing: BTreeMap::new(),
        }
    }

    fn lease_ttl(&self) -> i64 {
        self.broker.options().reconcile_interval_ms.max(0) + 60_000
    }

    async fn hold_lease(&self) -> Result<bool, BrokerError> {
        let b = &self.broker;
        Ok(b.store()
            .try_lease(LEASE, &b.options().node, b.now(), self.lease_ttl())
            .await?)
    }

    async fn record(&self, subject: &str, ev: LedgerEvent) -> Result<(), BrokerError> {
        let b = &self.broker;
        let ev = ev.by(Actor::system().key.to_string());
        let alert = ev.alert;
        b.store()
            .record(b.now(), &b.policy().policy.hash, vec![(subject.into(), ev)])
            .await?;
        if alert {
            b.wake();
        }
        Ok(())
    }

    /// Records standing access at the target when it appears or changes, and
    /// its clearing. A failure to look is logged; the listing already proved
    /// the target reachable, and the next pass looks again.
    async fn check_standing(
        &mut self,
        name: &str,
        rec: &dyn Reconcile,
        report: &mut PassReport,
    ) -> Result<(), BrokerError> {
        let found = match rec.standing_access().await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(entitlement = name, error = %e.message, "could not check the target for standing access");
                return Ok(());
            }
        };
        report.standing += found.len();
        let before = self.standing.get(name).cloned().unwrap_or_default();
        if found == before {
            return Ok(());
        }
        if found.is_empty() {
            self.record(
                &subject_for(name),
                LedgerEvent::ReconcileStandingCleared(StandingCleared {
                    entitlement: name.into(),
                }),
            )
            .await?;
        } else {
            self.record(
                &subject_for(name),
                LedgerEvent::ReconcileStandingAccess(StandingAccess {
                    entitlement: name.into(),
                    findings: serde_json::json!(found),
                }),
            )
            .await?;
        }
        self.standing.insert(name.to_string(), found);
        Ok(())
    }

    /// One pass over every entitlement whose provider can be reconciled.
    pub async fn run_once(&mut self) -> Result<PassReport, BrokerError> {
        let mut report = PassReport::default();
        if !self.hold_lease().await? {
            report.skipped = true;
            return Ok(report);
        }
        let lp = self.broker.policy();
        for (name, provider) in &lp.providers {
            if provider.reconciler().is_none() {
                continue;
            }
            if !self.hold_lease().await? {
                report.skipped = true;
                return Ok(report);
            }
            self.entitlement(name, provider.as_ref(), &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn entitlement(
        &mut self,
        name: &str,
        provider: &dyn Provider,
        report: &mut PassReport,
    ) -> Result<(), BrokerError> {
        let Some(rec) = provider.reconciler() else {
            return Ok(());
        };
        let b = self.broker.clone();
        let grace = b.options().reconcile_grace_ms;
        // List first, then read the grants: a grant applied after the listing
        // began is then either absent from the listing or live in the store.
        let listed_at = b.now();
        let present = match rec.list_present().await {
            Ok(p) => {
                self.failures.remove(name);
                p
            }
            Err(e) => {
                report.list_failed += 1;
                let n = {
                    let n = self.failures.entry(name.to_string()).or_insert(0);
                    *n += 1;
                    *n
                };
                tracing::warn!(entitlement = name, failures = n, error = %e.message, "reconciler could not list the target");
                let every = b.options().alert_after_failures.max(1);
                if n == 1 || n % every == 0 {
                    self.record(
                        &subject_for(name),
                        LedgerEvent::ReconcileListFailed(ListFailed {
                            entitlement: name.into(),
                            error: e.message.clone(),
                            failures: n,
                        }),
                    )
                    .await?;
                }
                return Ok(());
            }
        };
        report.checked += 1;
        self.check_standing(name, rec, report).await?;
        let mut grants: Vec<Request> = b
            .store()
            .requests_of(name, &[State::Approved, State::Active, State::Revoking])
            .await?;
        let mut named: Vec<&str> = present
            .iter()
            .flat_map(|f| f.request_ids.iter().map(String::as_str))
            .collect();
        named.sort_unstable();
        named.dedup();
        for id in named {
            if grants.iter().any(|g| g.id == id) {
                continue;
            }
            if let Some(r) = b.store().request(id).await? {
                grants.push(r);
            }
        }
        let decision = decide(name, &present, &grants, listed_at, grace);
        for f in &decision.to_remove {
            if !self.hold_lease().await? {
                report.skipped = true;
                return Ok(());
            }
            self.remove(name, rec, f, &grants, report).await?;
        }
        for id in &decision.missing {
            let already = b
                .store()
                .ledger_for(id)
                .await?
                .iter()
                .any(|e| e.kind == twokey_core::EventKind::ReconcileMissing.as_str());
            if already {
                continue;
            }
            let who = grants
                .iter()
                .find(|g| g.id == *id)
                .map(|g| g.requester_name.clone())
                .unwrap_or_default();
            self.record(
                id,
                LedgerEvent::ReconcileMissing(Missing {
                    entitlement: name.into(),
                    requester: who,
                    why: "the grant is active but its access is not at the target".into(),
                }),
            )
            .await?;
            report.missing += 1;
        }
        Ok(())
    }

    async fn remove(
        &self,
        name: &str,
        rec: &dyn twokey_providers::Reconcile,
        f: &Found,
        grants: &[Request],
        report: &mut PassReport,
    ) -> Result<(), BrokerError> {
        // The subject is the request the access is named after, when there is
        // one, so the request's timeline shows it; else the entitlement.
        let known = f
            .request_ids
            .iter()
            .find(|id| grants.iter().any(|g| g.id == **id));
        let subject = known.cloned().unwrap_or_else(|| subject_for(name));
        let states: Vec<NamedGrant> = f
            .request_ids
            .iter()
            .map(|id| {
                let st = grants
                    .iter()
                    .find(|g| g.id == *id)
                    .map(|g| g.state.as_str())
                    .unwrap_or("unknown");
                NamedGrant {
                    id: id.clone(),
                    state: st.into(),
                    covers: grants.iter().any(|g| g.id == *id && covers(g.state)),
                }
            })
            .collect();
        let found = Uncovered {
            entitlement: name.into(),
            resource: f.resource.clone(),
            requester: f.requester.clone(),
            request_ids: states,
            why: "access at the target that no active grant covers".into(),
        };
        // Fail closed: the finding is in the ledger before anything changes.
        self.record(&subject, LedgerEvent::ReconcileUncovered(found.clone()))
            .await?;
        match rec.remove(f).await {
            Ok(()) => {
                self.record(&subject, LedgerEvent::ReconcileRemoved(found))
                    .await?;
                report.removed += 1;
            }
            Err(e) => {
                tracing::warn!(entitlement = name, resource = %f.resource, error = %e.message, "reconciler could not remove access");
                let failed = RemoveFailed {
                    found,
                    error: e.message.clone(),
                };
                self.record(&subject, LedgerEvent::ReconcileRemoveFailed(failed))
                    .await?;
                report.remove_failed += 1;
            }
        }
        Ok(())
    }

    /// Runs a pass every `reconcile_interval_ms` until `shutdown` fires, then
    /// gives the lease up.
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let interval = self.broker.options().reconcile_interval_ms;
        if interval <= 0 {
            return;
        }
        let pause = Duration::from_millis(interval as u64);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            match self.run_once().await {
                Ok(r) if r.removed + r.remove_failed + r.missing + r.list_failed > 0 => {
                    tracing::info!(?r, "reconciler pass")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "reconciler pass failed"),
            }
        }
        let b = &self.broker;
        if let Err(e) = b.store().release_lease(LEASE, &b.options().node).await {
            tracing::warn!(error = %e, "could not release the reconciler lease");
        }
    }
}
