//! Prometheus metrics (`GET /metrics`).

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The broker's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests created.
    pub requests_created: Counter,
    /// Grants activated.
    pub grants_activated: Counter,
    /// Grants ended (confirmed by the provider).
    pub grants_ended: Counter,
    /// Provider failures (each retry counts).
    pub provider_failures: Counter,
    /// Refused self-approval attempts.
    pub self_approval_refused: Counter,
    /// Seconds from final approval to active (approvals seen by this replica).
    pub activation_seconds: Histogram,
    /// Seconds from a grant's end time to its confirmed revocation.
    pub expiry_lag_seconds: Histogram,
    /// Failing posture findings per check and severity, from the last scan.
    pub posture_failing: Family<Vec<(String, String)>, Gauge>,
    /// When the last posture scan collected its facts (Unix seconds).
    pub posture_scanned_at: Gauge,
    approved: Mutex<HashMap<String, i64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("twokey");
        let requests_created = Counter::default();
        let grants_activated = Counter::default();
        let grants_ended = Counter::default();
        let provider_failures = Counter::default();
        let self_approval_refused = Counter::default();
        let activation_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let expiry_lag_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "requests_created",
            "Requests created",
            requests_created.clone(),
        );
        registry.register(
            "grants_activated",
            "Grants activated",
            grants_activated.clone(),
        );
        registry.register(
            "grants_ended",
            "Grants ended, confirmed by the provider",
            grants_ended.clone(),
        );
        registry.register(
            "provider_failures",
            "Provider grant/revoke failures (each retry counts)",
            provider_failures.clone(),
        );
        registry.register(
            "self_approval_refused",
            "Refused attempts to approve one's own request",
            self_approval_refused.clone(),
        );
        registry.register(
            "activation_seconds",
            "Final approval to active grant",
            activation_seconds.clone(),
        );
        registry.register(
            "expiry_lag_seconds",
            "Grant end time to confirmed revocation",
            expiry_lag_seconds.clone(),
        );
        let posture_failing = Family::<Vec<(String, String)>, Gauge>::default();
        let posture_scanned_at = Gauge::default();
        registry.register(
            "posture_failing",
            "Failing posture findings per check and severity (last scan)",
            posture_failing.clone(),
        );
        registry.register(
            "posture_scanned_at_seconds",
            "When the last posture scan collected its facts",
            posture_scanned_at.clone(),
        );
        Self {
            registry,
            posture_failing,
            posture_scanned_at,
            requests_created,
            grants_activated,
            grants_ended,
            provider_failures,
            self_approval_refused,
            activation_seconds,
            expiry_lag_seconds,
            approved: Mutex::new(HashMap::new()),
        }
    }

    /// Notes the moment a request got its final approval.
    pub fn approved_at(&self, id: &str, now: i64) {
        if let Ok(mut m) = self.approved.lock() {
            m.insert(id.to_string(), now);
        }
    }

    /// Notes an activation.
    pub fn activated(&self, id: &str, now: i64) {
        self.grants_activated.inc();
        if let Ok(mut m) = self.approved.lock() {
            if let Some(t) = m.remove(id) {
                self.activation_seconds
                    .observe((now - t).max(0) as f64 / 1000.0);
            }
        }
    }

    /// Notes a confirmed end.
    pub fn revoked(&self, ends_at: i64, now: i64, expiry: bool) {
        self.grants_ended.inc();
        if expiry {
            self.expiry_lag_seconds
                .observe((now - ends_at).max(0) as f64 / 1000.0);
        }
    }

    /// Sets the posture gauges from a scan's results: every check seen gets
    /// its failing count (0 included), checks not seen are dropped.
    pub fn posture_scanned(&self, rows: &[twokey_store::PostureRow]) {
        self.posture_failing.clear();
        for r in rows {
            let labels = vec![
                ("check".to_string(), r.check.clone()),
                ("severity".to_string(), r.severity.clone()),
            ];
            let g = self.posture_failing.get_or_create(&labels);
            if r.status == "FAIL" {
                g.inc();
            }
        }
        if let Some(at) = rows.iter().map(|r| r.scanned_at).max() {
            self.posture_scanned_at.set(at / 1000);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if encode(&mut s, &self.registry).is_err() {
            s.clear();
        }
        s
    }
}
