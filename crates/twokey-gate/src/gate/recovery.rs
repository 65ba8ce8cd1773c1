//! Recovery after a crash: plans left `applying` by a worker that died (or
//! could not write its result) are resolved from the ledger and Terraform
//! state, and deliveries left unfinished are alerted on, so no evidence is
//! dropped and no apply stays stuck.
//!
//! A stuck plan is resolved in this order (each outcome is an alerting
//! `gate.apply_recovered` ledger entry, written before the plan moves):
//! 1. its `gate.apply_result` (or an earlier recovery) is in the ledger:
//!    the plan takes that outcome;
//! 2. no `gate.apply_evidence` for it: Terraform never ran (evidence comes
//!    first), so it goes back to `planned`;
//! 3. evidence but no result: a fresh `plan -detailed-exitcode` of the head
//!    commit against the current state decides: no changes (exit 0) means
//!    the apply took effect (`applied`), changes left (exit 2) mean it did
//!    not finish (`apply_failed`; plan again). Anything else leaves it
//!    `applying` with a `gate.apply_unresolved` alert, retried next pass.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use twokey_core::event::{ApplyRecovered, ApplyUnresolved, DeliveryUnfinished, LedgerEvent};

use super::{subject, Gate, Inflight, PlanState, Recovered, StuckPlan};

/// The background pass's findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackgroundPass {
    /// Interrupted applies handled.
    pub recovered: Vec<Recovered>,
    /// Unfinished deliveries alerted on.
    pub unfinished: Vec<String>,
}

/// Whether an apply's ledger entry (its project, head, saved plan) is
/// about stuck plan `s`.
fn about(project: &str, head_sha: &str, plan_sha256: &str, s: &StuckPlan) -> bool {
    project == s.plan.project && head_sha == s.plan.head_sha && plan_sha256 == s.plan.plan_sha256
}

/// What an apply's ledger entry says about stuck plan `s`.
enum Seen {
    /// Its evidence: the apply was about to run.
    Evidence,
    /// Its outcome (the state it ended in), from its result or an earlier
    /// recovery; `None` for a recovery that did not end it.
    Outcome(Option<PlanState>),
}

/// Reads a ledger entry as one about stuck plan `s`; `None` for any other
/// entry (another plan, another kind, data that is not the kind's).
fn seen(kind: &str, data: &serde_json::Value, s: &StuckPlan) -> Option<Seen> {
    match LedgerEvent::parse(kind, data).ok()? {
        LedgerEvent::GateApplyEvidence(e) if about(&e.project, &e.head_sha, &e.plan_sha256, s) => {
            Some(Seen::Evidence)
        }
        LedgerEvent::GateApplyResult(r) if about(&r.project, &r.head_sha, &r.plan_sha256, s) => {
            Some(Seen::Outcome(Some(if r.ok {
                PlanState::Applied
            } else {
                PlanState::ApplyFailed
            })))
        }
        LedgerEvent::GateApplyRecovered(r) if about(&r.project, &r.head_sha, &r.plan_sha256, s) => {
            Some(Seen::Outcome(PlanState::parse(&r.resolved).filter(|to| {
                matches!(to, PlanState::Applied | PlanState::ApplyFailed)
            })))
        }
        _ => None,
    }
}

impl Gate {
    /// Resolves the plans in `applying` whose claim lapsed, of one pull
    /// request or of all (see the module docs).
    pub async fn recover_plans(&self, only: Option<(&str, u64)>) -> Vec<Recovered> {
        let stuck = match self.db.stuck_plans(self.now(), only).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "gate: cannot look for interrupted applies");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for s in stuck {
            let owner = self.new_owner("recovery");
            let now = self.now();
            match self
                .db
                .take_over_plan(
                    &s.repo,
                    s.pull,
                    &s.plan,
                    s.claim_owner.as_deref(),
                    &owner,
                    now,
                    now + self.lease_ms(),
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => continue, // another replica is on it
                Err(e) => {
                    tracing::warn!(error = %e, "gate: cannot take over an interrupted apply");
                    continue;
                }
            }
            out.push(self.resolve(&s, &owner).await);
            if let Err(e) = self.db.release_claims(&owner).await {
                tracing::warn!(error = %e, "gate: cannot release a recovery claim (it lapses)");
            }
        }
        out
    }

    /// Resolves one stuck plan this pass holds: decides its outcome,
    /// records it, moves the plan and says so on the pull request.
    async fn resolve(&self, s: &StuckPlan, owner: &str) -> Recovered {
        let subj = subject(&s.repo, s.pull);
        let mut r = Recovered {
            repo: s.repo.clone(),
            pull: s.pull,
            project: s.plan.project.clone(),
            head_sha: s.plan.head_sha.clone(),
            status: None,
            how: String::new(),
        };
        let (to, how, exit) = match self.decide(s, &subj).await {
            Ok(d) => d,
            Err(e) => {
                r.how = e.clone();
                self.record_unresolved(s, &subj, e).await;
                return r;
            }
        };
        r.how = how.to_string();
        let recovered = ApplyRecovered {
            project: s.plan.project.clone(),
            head_sha: s.plan.head_sha.clone(),
            plan_sha256: s.plan.plan_sha256.clone(),
            delivery: s.plan.delivery.clone(),
            resolved: to.as_str().into(),
            how: how.into(),
            plan_exit: exit,
        };
        if self
            .record(&subj, "twokey", LedgerEvent::GateApplyRecovered(recovered))
            .await
            .is_err()
        {
            return r; // still applying; next pass
        }
        match self
            .retried("settle a recovered plan", || {
                self.db.settle_plan(
                    &s.repo,
                    s.pull,
                    &s.plan.project,
                    &s.plan.head_sha,
                    owner,
                    to,
                )
            })
            .await
        {
            Ok(true) => r.status = Some(to.as_str().to_string()),
            // Its outcome is in the ledger now: the next pass settles it.
            Ok(false) | Err(_) => return r,
        }
        self.answer_recovered(s, to, how).await;
        r
    }

    /// Records a stuck plan that could not be resolved (an alert; retried
    /// next pass).
    async fn record_unresolved(&self, s: &StuckPlan, subj: &str, error: String) {
        let unresolved = ApplyUnresolved {
            project: s.plan.project.clone(),
            head_sha: s.plan.head_sha.clone(),
            plan_sha256: s.plan.plan_sha256.clone(),
            delivery: s.plan.delivery.clone(),
            error,
        };
        if let Err(e) = self
            .record(subj, "twokey", LedgerEvent::GateApplyUnresolved(unresolved))
            .await
        {
            tracing::error!(error = %e, "gate: cannot record an unresolved apply");
        }
    }

    /// Says on the pull request how an interrupted apply was resolved.
    async fn answer_recovered(&self, s: &StuckPlan, to: PlanState, how: &str) {
        let short = s.plan.head_sha.get(..7).unwrap_or(&s.plan.head_sha);
        let why = match how {
            "ledger" => "its recorded result",
            "not_started" => "the ledger shows it never started; `twokey apply` runs it",
            "terraform_in_sync" => "a fresh plan of the head commit shows no changes left",
            _ => "a fresh plan of the head commit still shows changes; plan and apply again",
        };
        self.say(
            &s.repo,
            s.pull,
            &format!(
                "twokey: the apply of `{}` at {short} was interrupted; resolved as **{to}** ({why}).",
                s.plan.project
            ),
        )
        .await;
    }

    /// How a stuck plan ends: (new status, how, plan exit code).
    async fn decide(
        &self,
        s: &StuckPlan,
        subj: &str,
    ) -> Result<(PlanState, &'static str, Option<i32>), String> {
        let entries = self
            .db
            .store()
            .ledger_for(subj)
            .await
            .map_err(|e| e.to_string())?;
        let seen: Vec<Option<Seen>> = entries.iter().map(|e| seen(&e.kind, &e.data, s)).collect();
        let evidence = seen.iter().rposition(|e| matches!(e, Some(Seen::Evidence)));
        let Some(at) = evidence else {
            return Ok((PlanState::Planned, "not_started", None));
        };
        let outcome = seen[at + 1..].iter().find_map(|e| match e {
            Some(Seen::Outcome(to)) => *to,
            _ => None,
        });
        if let Some(to) = outcome {
            return Ok((to, "ledger", None));
        }
        let project = self
            .projects_for(&s.repo, Some(&s.plan.project))
            .into_iter()
            .next()
            .ok_or_else(|| format!("project {} is no longer configured", s.plan.project))?;
        let tree = self.tree(&s.repo, s.pull, &s.plan.head_sha).await?;
        let (code, _) = self
            .runner(&project)
            .plan_detailed(&project, &tree.join(&project.dir))
            .await
            .map_err(|e| e.to_string())?;
        match code {
            0 => Ok((PlanState::Applied, "terraform_in_sync", Some(0))),
            2 => Ok((PlanState::ApplyFailed, "terraform_differs", Some(2))),
            c => Err(format!(
                "the re-check plan exited {c}; the apply stays unresolved"
            )),
        }
    }

    /// Alerts once on each delivery left unfinished (its worker died or
    /// could not record all of its work): GitHub does not redeliver on its
    /// own, so a person redelivers it (the gate then finishes it once).
    pub async fn alert_unfinished(&self) -> Vec<String> {
        let stale = match self.db.stale_deliveries(self.now()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "gate: cannot look for unfinished deliveries");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for d in stale {
            let unfinished = DeliveryUnfinished {
                delivery: d.id.clone(),
                event: d.event.clone(),
                repo: d.repo.clone(),
                status: d.status.clone(),
                attempts: d.attempts,
            };
            if self
                .record(
                    "github:webhook",
                    "twokey",
                    LedgerEvent::GateDeliveryUnfinished(unfinished),
                )
                .await
                .is_err()
            {
                continue;
            }
            if let Err(e) = self.db.delivery_alerted(&d.id, self.now()).await {
                tracing::warn!(error = %e, "gate: cannot note an alerted delivery (it may alert again)");
            }
            out.push(d.id);
        }
        out
    }

    /// One background pass: interrupted applies, unfinished deliveries, and
    /// due drift checks.
    pub async fn background_once(&self) -> BackgroundPass {
        let recovered = self.recover_plans(None).await;
        let unfinished = self.alert_unfinished().await;
        self.drift_once().await;
        BackgroundPass {
            recovered,
            unfinished,
        }
    }

    /// The gate's background work until `shutdown`: a pass at start (after
    /// a restart, the interrupted applies of the dead process are resolved
    /// once their claims lapse) and then every `background_every` (or the
    /// drift tick, a tenth of `gate.drift_interval` between 0.5 s and 60 s,
    /// if shorter).
    pub async fn run_background(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let drift_tick = self
            .config
            .drift_interval_ms()
            .map(|i| Duration::from_millis((i / 10).clamp(500, 60_000) as u64));
        let tick = drift_tick.map_or(self.background_every, |d| d.min(self.background_every));
        loop {
            if *shutdown.borrow() {
                return;
            }
            {
                // Counted like a delivery, so shutdown waits for the pass.
                self.inflight.fetch_add(1, Ordering::SeqCst);
                let _guard = Inflight(self.inflight.clone());
                self.background_once().await;
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
