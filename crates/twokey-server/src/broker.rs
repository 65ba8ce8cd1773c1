//! The broker: every action a person or the scheduler takes, as a method that
//! reads, asks the pure core, and commits the result with its ledger entries.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use twokey_core::event::{PolicyLoaded, ProviderFailed, Refused};
use twokey_core::notify::Person;
use twokey_core::request as rq;
use twokey_core::{
    proposal, Actor, DomainError, Event, LedgerEvent, MfaConfirmation, Millis, NewRequest, Policy,
    Proposal, ProposalView, Request, ReviewDecision, State,
};
use twokey_notify::notifications::{Notification, Notifier, Recipient as NotifyRecipient};
use twokey_notify::{Alert, AlertSink, Severity};
use twokey_providers::{GrantSpec, Presence, Provider, ProviderContext, Registry};
use twokey_store::{Change, ProposalWrite, RequestWrite, Store, StoreError};

use crate::clock::Clock;
use crate::metrics::Metrics;

/// Everything the broker (and the background work beside it: reconciler,
/// posture, activity) can refuse or fail with. It knows nothing of HTTP:
/// only the API (`crate::error::ApiError`'s `From`) and the web UI turn it
/// into a status code.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The core refused the action.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Storage failed (including a ledger write: the action was refused).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such request, proposal or secret.
    #[error("{0}")]
    NotFound(String),
    /// The input is malformed (a batch too large, a period that does not
    /// parse).
    #[error("{0}")]
    BadInput(String),
    /// The input is well formed but cannot be used (a proposed policy that
    /// does not load).
    #[error("{0}")]
    Unprocessable(String),
    /// A bug or an unexpected failure; the API shows only a correlation id.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A validated policy together with the providers built for its entitlements.
pub struct LoadedPolicy {
    /// The policy.
    pub policy: Policy,
    /// Provider per entitlement name.
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
}

/// Tunables of the broker.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// This replica's name, used for scheduler leases.
    pub node: String,
    /// How long a claimed piece of scheduled work is reserved for this replica.
    pub lease_ms: i64,
    /// First retry delay after a provider failure; doubles up to `max_backoff_ms`.
    pub base_backoff_ms: i64,
    /// Longest retry delay.
    pub max_backoff_ms: i64,
    /// Provider failures of one grant after which an alert is raised (and again
    /// at every multiple of it).
    pub alert_after_failures: i64,
    /// Longest the scheduler sleeps before looking for due work (other replicas
    /// may have added some).
    pub poll_ms: u64,
    /// Base URL of the web UI/API, for links in alerts.
    pub public_url: String,
    /// Time between reconciler passes ([`crate::reconciler`]); 0 turns the
    /// reconciler off.
    pub reconcile_interval_ms: i64,
    /// How long after activation an active grant whose access is not at its
    /// target is reported missing.
    pub reconcile_grace_ms: i64,
    /// `[activity]`: what each grant did, and when its digest is written.
    pub activity: crate::activity::ActivityConfig,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            node: crate::new_id("node"),
            lease_ms: 30_000,
            base_backoff_ms: 1_000,
            max_backoff_ms: 60_000,
            alert_after_failures: 3,
            poll_ms: 250,
            public_url: "http://127.0.0.1:8080".into(),
            reconcile_interval_ms: crate::reconciler::DEFAULT_INTERVAL_MS,
            reconcile_grace_ms: crate::reconciler::DEFAULT_GRACE_MS,
            activity: crate::activity::ActivityConfig::default(),
        }
    }
}

/// The broker service.
pub struct Broker {
    store: Store,
    policy: RwLock<Arc<LoadedPolicy>>,
    registry: Registry,
    ctx: ProviderContext,
    clock: Arc<dyn Clock>,
    opts: BrokerOptions,
    wake: tokio::sync::Notify,
    /// Ids of the requests this process activated, as they are committed.
    activations: tokio::sync::broadcast::Sender<String>,
    sinks: Vec<Arc<dyn AlertSink>>,
    notifiers: RwLock<Vec<Arc<dyn Notifier>>>,
    /// Approve from Slack, when `[slack]` is configured.
    slack: RwLock<Option<Arc<crate::slack::SlackApp>>>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// When the activity digests were last looked for.
    pub(crate) activity_pass: std::sync::atomic::AtomicI64,
    /// Where the audit page's last check of the ledger ended.
    pub(crate) audit_prefix: tokio::sync::Mutex<Option<crate::reads::AuditPrefix>>,
}

/// Builds the providers of every entitlement; errors name the entitlement and
/// the policy line of its target.
pub fn load_policy(
    policy: Policy,
    registry: &Registry,
    ctx: &ProviderContext,
    file: &str,
) -> Result<LoadedPolicy, String> {
    let mut providers = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, ent) in &policy.entitlements {
        // Credentials given by reference (`url_env`, `password_file`) are
        // read here, so they never travel with the policy text.
        let mut target = ent.target.clone();
        if let Err(e) = twokey_core::secret::resolve_references(
            &mut target,
            &format!("entitlement {name:?} target"),
            &mut crate::config::read_reference,
        ) {
            errors.push(format!("{file}:{}: {e}", ent.target_line));
            continue;
        }
        match registry.build(&ent.provider, &target, ctx) {
            Ok(p) => match p.max_grant() {
                Some(max) if ent.max_duration_ms > max.as_millis() as i64 => errors.push(format!(
                    "{file}:{}: entitlement {name:?}: max_duration {} s is longer than provider {:?} allows ({} s)",
                    ent.line,
                    ent.max_duration_ms / 1000,
                    ent.provider,
                    max.as_secs()
                )),
                _ => {
                    providers.insert(name.clone(), p);
                }
            },
            Err(e) => errors.push(format!(
                "{file}:{}: entitlement {name:?}: provider {:?}: {e}",
                ent.target_line, ent.provider
            )),
        }
    }
    if errors.is_empty() {
        Ok(LoadedPolicy { policy, providers })
    } else {
        Err(errors.join("\n"))
    }
}

/// The outbox delivery key of each channel: its name, with `#2`, `#3`, ...
/// on a repeated name, so two channels never share a key.
fn channel_keys(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    names
        .map(|name| {
            let n = seen.entry(name.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                name
            } else {
                format!("{name}#{n}")
            }
        })
        .collect()
}

/// The provider step that failed: applying a grant or taking it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Apply,
    Revoke,
}

impl Step {
    fn kind(self) -> twokey_core::EventKind {
        match self {
            Step::Apply => twokey_core::EventKind::GrantApplyFailed,
            Step::Revoke => twokey_core::EventKind::GrantRevokeFailed,
        }
    }
}

fn backoff(opts: &BrokerOptions, attempts: i64) -> i64 {
    let shift = attempts.clamp(0, 20) as u32;
    opts.base_backoff_ms
        .saturating_mul(1i64 << shift)
        .min(opts.max_backoff_ms)
}

impl Broker {
    /// Starts a broker on `store`. The policy in force is the one stored; a
    /// store without one is bootstrapped with `initial` (recorded in the
    /// ledger as `policy.loaded`). Returns the broker and, when the given
    /// policy differs from the one in force, a warning for the operator.
    pub async fn start(
        store: Store,
        initial: Policy,
        registry: Registry,
        ctx: ProviderContext,
        clock: Arc<dyn Clock>,
        sinks: Vec<Arc<dyn AlertSink>>,
        opts: BrokerOptions,
    ) -> anyhow::Result<(Arc<Broker>, Option<String>)> {
        let mut warning = None;
        let policy = match store.current_policy().await? {
            Some((hash, text)) => {
                if hash != initial.hash {
                    warning = Some(format!(
                        "the policy file differs from the policy in force ({}); changes take effect only through `twokey policy propose` and a second admin's approval",
                        &hash[..12.min(hash.len())]
                    ));
                }
                Policy::parse(&text, "stored policy")
                    .map_err(|e| anyhow::anyhow!("stored policy no longer parses: {e}"))?
            }
            None => {
                // Validate the providers before the policy is recorded as in force.
                load_policy(initial.clone(), &registry, &ctx, "policy")
                    .map_err(|e| anyhow::anyhow!(e))?;
                let now = clock.now();
                store
                    .commit(Change {
                        now,
                        policy_hash: initial.hash.clone(),
                        apply_policy: Some((initial.text.clone(), initial.hash.clone())),
                        events: vec![(
                            initial.hash.clone(),
                            LedgerEvent::PolicyLoaded(PolicyLoaded {
                                hash: initial.hash.clone(),
                                entitlements: initial.entitlements.keys().cloned().collect(),
                            })
                            .by(Actor::system().key.to_string()),
                        )],
                        ..Default::default()
                    })
                    .await?;
                initial
            }
        };
        let loaded =
            load_policy(policy, &registry, &ctx, "policy").map_err(|e| anyhow::anyhow!(e))?;
        let broker = Arc::new(Broker {
            store,
            policy: RwLock::new(Arc::new(loaded)),
            registry,
            ctx,
            clock,
            opts,
            wake: tokio::sync::Notify::new(),
            activations: tokio::sync::broadcast::channel(1024).0,
            sinks,
            notifiers: RwLock::new(Vec::new()),
            slack: RwLock::new(None),
            metrics: Metrics::new(),
            activity_pass: std::sync::atomic::AtomicI64::new(0),
            audit_prefix: tokio::sync::Mutex::new(None),
        });
        Ok((broker, warning))
    }

    /// Sets where notifications to people go (Slack, email). Without any, no
    /// notification is queued.
    pub fn set_notifiers(&self, notifiers: Vec<Arc<dyn Notifier>>) {
        match self.notifiers.write() {
            Ok(mut g) => *g = notifiers,
            Err(poisoned) => *poisoned.into_inner() = notifiers,
        }
    }

    /// Sets the Slack app (Approve from Slack): its messages go through the
    /// notification outbox like the notifiers'.
    pub fn set_slack(&self, app: Arc<crate::slack::SlackApp>) {
        match self.slack.write() {
            Ok(mut g) => *g = Some(app),
            Err(poisoned) => *poisoned.into_inner() = Some(app),
        }
    }

    fn slack(&self) -> Option<Arc<crate::slack::SlackApp>> {
        match self.slack.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether any notifier (or the Slack app) is set (on every commit: no
    /// copy of the list).
    fn has_notifiers(&self) -> bool {
        let slack = match self.slack.read() {
            Ok(g) => g.is_some(),
            Err(poisoned) => poisoned.into_inner().is_some(),
        };
        slack
            || match self.notifiers.read() {
                Ok(g) => !g.is_empty(),
                Err(poisoned) => !poisoned.into_inner().is_empty(),
            }
    }

    fn notifiers(&self) -> Vec<Arc<dyn Notifier>> {
        match self.notifiers.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The broker's tunables.
    pub fn options(&self) -> &BrokerOptions {
        &self.opts
    }

    /// Now, by the broker's clock.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<LoadedPolicy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The actor a static identity's token stands for, with its groups from the
    /// policy in force (so a policy change applies at once).
    pub fn refresh_actor(&self, actor: Actor) -> Actor {
        let lp = self.policy();
        if let Some(sid) = lp.policy.identities.iter().find(|i| i.key == actor.key) {
            return sid.actor();
        }
        // An identity that a policy identity links to (an SSO subject, say) is
        // the same person: carry the links so separation of duties sees it.
        let mut actor = actor;
        for sid in lp
            .policy
            .identities
            .iter()
            .filter(|i| i.links.contains(&actor.key))
        {
            actor.links.insert(sid.key.clone());
            let others: Vec<_> = sid
                .links
                .iter()
                .filter(|k| **k != actor.key)
                .cloned()
                .collect();
            actor.links.extend(others);
        }
        actor
    }

    /// [`Broker::refresh_actor`], then what the directory (SCIM) says: a
    /// deactivated identity is refused, an active one gets its directory
    /// groups added (approval rules see them like SSO groups).
    pub async fn directory_actor(&self, actor: Actor) -> Result<Actor, BrokerError> {
        let mut actor = self.refresh_actor(actor);
        if let Some(p) = self.store.directory_person(&actor.key.to_string()).await? {
            if !p.active {
                return Err(StoreError::Deactivated(actor.key.to_string()).into());
            }
            actor.groups.extend(p.groups);
        }
        Ok(actor)
    }

    /// The directory deactivated or deleted `identity`: their pending
    /// requests are cancelled and their approved or active grants revoked,
    /// each with `reason` in the ledger. Returns (cancelled, revoked).
    /// Requests or approvals they try from now on are refused in the
    /// transaction ([`twokey_store::Change::acting`]), so none slips in
    /// behind this sweep.
    pub async fn directory_departed(
        &self,
        identity: &twokey_core::IdentityKey,
        reason: &str,
    ) -> Result<(usize, usize), BrokerError> {
        let open = self
            .store
            .requests(
                Some(&identity.to_string()),
                &[State::Pending, State::Approved, State::Active],
                100_000,
            )
            .await?;
        let (mut cancelled, mut revoked) = (0, 0);
        for r in open.iter().filter(|r| &r.requester == identity) {
            let res = self
                .transition(&r.id, None, |_, cur, now| {
                    rq::end_for_departure(cur, reason, now).ok_or_else(|| {
                        DomainError::WrongState(format!("{} has ended already", cur.id))
                    })
                })
                .await;
            match res {
                Ok(next) if next.state == State::Cancelled => cancelled += 1,
                Ok(_) => {
                    revoked += 1;
                    self.kick(&r.id);
                }
                // It ended on its own meanwhile.
                Err(BrokerError::Domain(DomainError::WrongState(_))) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((cancelled, revoked))
    }

    async fn load(&self, id: &str) -> Result<Request, BrokerError> {
        self.store
            .request(id)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("no request {id:?}")))
    }

    /// The ids of requests this process activates from now on, each sent
    /// once its activation is committed (in-process only: another replica's
    /// activations are not seen; read the store for those). A slow receiver
    /// may lag and miss ids.
    pub fn subscribe_activations(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.activations.subscribe()
    }

    /// Records a refused self-approval in the ledger and alerts on it.
    async fn record_refusal(&self, actor: &Actor, subject: &str, what: &str, policy_hash: &str) {
        let ev = LedgerEvent::ReviewRefused(Refused {
            reason: "self-approval".into(),
            attempt: what.into(),
        })
        .by(actor.key.to_string());
        if let Err(e) = self
            .store
            .record(self.now(), policy_hash, vec![(subject.into(), ev)])
            .await
        {
            tracing::error!(error = %e, "could not record refused self-approval");
        }
        self.metrics.self_approval_refused.inc();
        self.wake.notify_one();
    }

    /// Someone asks for an entitlement.
    pub async fn create_request(
        &self,
        actor: &Actor,
        input: &NewRequest,
    ) -> Result<Request, BrokerError> {
        let lp = self.policy();
        let now = self.now();
        let id = crate::new_id("req");
        let (req, events) = rq::create(&lp.policy, actor, input, &id, now)?;
        self.commit_request(
            RequestWrite::Insert(req.clone()),
            &req,
            events,
            &lp.policy.hash,
            None,
            Some(actor),
        )
        .await?;
        self.metrics.requests_created.inc();
        if req.state == State::Approved {
            self.kick(&req.id);
        }
        Ok(self.store.request(&id).await?.unwrap_or(req))
    }

    async fn commit_request(
        &self,
        write: RequestWrite,
        req: &Request,
        events: Vec<Event>,
        policy_hash: &str,
        secret: Option<String>,
        acting: Option<&Actor>,
    ) -> Result<(), StoreError> {
        let notify = self.has_notifiers();
        let alerts = events.iter().any(|e| e.alert)
            || (notify
                && events
                    .iter()
                    .any(|e| twokey_core::notify::is_notification(&e.kind)));
        self.store
            .commit(Change {
                now: self.now(),
                policy_hash: policy_hash.into(),
                request: Some(write),
                events: events.into_iter().map(|e| (req.id.clone(), e)).collect(),
                secret: secret.map(|s| (req.id.clone(), s)),
                notify,
                acting: acting.map(|a| a.key.to_string()),
                ..Default::default()
            })
            .await?;
        if alerts {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Runs a pure transition on the stored request and commits it, retrying
    /// when another writer got there first (the transition is recomputed on
    /// the fresh row, so it may then be refused).
    /// `acting` is the person the transition is for (none for the
    /// scheduler): the commit is refused if the directory has deactivated them.
    async fn transition<F>(
        &self,
        id: &str,
        acting: Option<&Actor>,
        f: F,
    ) -> Result<Request, BrokerError>
    where
        F: Fn(&Policy, &Request, Millis) -> Result<(Request, Vec<Event>), DomainError>,
    {
        for _ in 0..5 {
            let lp = self.policy();
            let cur = self.load(id).await?;
            let now = self.now();
            let (next, events) = f(&lp.policy, &cur, now)?;
            match self
                .commit_request(
                    RequestWrite::Update {
                        expected_version: cur.version,
                        request: next.clone(),
                    },
                    &next,
                    events,
                    &lp.policy.hash,
                    None,
                    acting,
                )
                .await
            {
                Ok(()) => {
                    return Ok(Request {
                        version: cur.version + 1,
                        ..next
                    })
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// A reviewer approves or denies. An approval of an entitlement with
    /// `approver_mfa` is refused here (it needs [`Broker::review_confirmed`]).
    pub async fn review(
        &self,
        actor: &Actor,
        id: &str,
        decision: ReviewDecision,
        comment: &str,
    ) -> Result<Request, BrokerError> {
        self.review_confirmed(actor, id, decision, comment, None)
            .await
    }

    /// [`Broker::review`] with a security-key confirmation that the web UI
    /// verified (WebAuthn assertion bound to the session and this request).
    pub async fn review_confirmed(
        &self,
        actor: &Actor,
        id: &str,
        decision: ReviewDecision,
        comment: &str,
        mfa: Option<MfaConfirmation>,
    ) -> Result<Request, BrokerError> {
        let res = self
            .transition(id, Some(actor), |p, r, now| {
                rq::review_confirmed(p, r, actor, decision, comment, mfa.as_ref(), now)
            })
            .await;
        match &res {
            Err(BrokerError::Domain(DomainError::SelfApproval)) => {
                self.record_refusal(actor, id, "review", &self.policy().policy.hash)
                    .await;
            }
            Ok(r) if r.state == State::Approved => {
                self.metrics.approved_at(id, self.now());
                self.kick(id);
            }
            _ => {}
        }
        res
    }

    /// The requester cancels a pending request.
    pub async fn cancel(&self, actor: &Actor, id: &str) -> Result<Request, BrokerError> {
        self.transition(id, None, |_, r, now| rq::cancel(r, actor, now))
            .await
    }

    /// Ends an active grant early.
    pub async fn revoke(&self, actor: &Actor, id: &str) -> Result<Request, BrokerError> {
        let r = self
            .transition(id, None, |p, r, now| rq::begin_revoke(p, r, actor, now))
            .await?;
        self.kick(id);
        Ok(r)
    }

    /// A second person reviews a break-glass use.
    pub async fn review_break_glass(
        &self,
        actor: &Actor,
        id: &str,
        comment: &str,
    ) -> Result<Request, BrokerError> {
        let res = self
            .transition(id, Some(actor), |p, r, _| {
                rq::review_break_glass(p, r, actor, comment)
            })
            .await;
        if let Err(BrokerError::Domain(DomainError::SelfApproval)) = &res {
            self.record_refusal(actor, id, "break-glass review", &self.policy().policy.hash)
                .await;
        }
        res
    }

    /// Asks to extend an active grant: a new request that needs approval.
    pub async fn extend(
        &self,
        actor: &Actor,
        id: &str,
        duration_ms: Option<i64>,
        reason: &str,
    ) -> Result<Request, BrokerError> {
        let lp = self.policy();
        let orig = self.load(id).await?;
        let new_id = crate::new_id("req");
        let (req, events) = rq::extend(
            &lp.policy,
            actor,
            &orig,
            duration_ms,
            reason,
            &new_id,
            self.now(),
        )?;
        self.commit_request(
            RequestWrite::Insert(req.clone()),
            &req,
            events,
            &lp.policy.hash,
            None,
            Some(actor),
        )
        .await?;
        Ok(req)
    }

    /// One request.
    pub async fn get(&self, id: &str) -> Result<Request, BrokerError> {
        self.load(id).await
    }

    /// The one-time secret of the caller's own grant.
    pub async fn take_secret(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<Option<String>, BrokerError> {
        let req = self.load(id).await?;
        if req.requester != actor.key {
            return Err(DomainError::Forbidden(
                "only the requester can see a grant's secret".into(),
            )
            .into());
        }
        Ok(self.store.take_secret(id).await?)
    }

    /// Pending requests `actor` may review now.
    pub async fn waiting_for(&self, actor: &Actor) -> Result<Vec<Request>, BrokerError> {
        let lp = self.policy();
        let now = self.now();
        let pending = self.store.requests(None, &[State::Pending], 500).await?;
        Ok(pending
            .into_iter()
            .filter(|r| r.pending_until > now && !r.reviews.iter().any(|v| v.reviewer == actor.key))
            .filter(|r| {
                lp.policy.entitlement(&r.entitlement).is_some_and(|e| {
                    e.may_approve(actor, &r.requester, &r.requester_groups)
                        .is_ok()
                })
            })
            .collect())
    }

    // ----- policy changes -------------------------------------------------

    /// An admin proposes a new policy text.
    pub async fn propose_policy(&self, actor: &Actor, text: &str) -> Result<Proposal, BrokerError> {
        let lp = self.policy();
        let proposed = Policy::parse(text, "proposed policy")
            .map_err(|e| BrokerError::Unprocessable(e.to_string()))?;
        load_policy(
            proposed.clone(),
            &self.registry,
            &self.ctx,
            "proposed policy",
        )
        .map_err(BrokerError::Unprocessable)?;
        let id = crate::new_id("pol");
        let (p, events) = proposal::propose(&lp.policy, &proposed, actor, &id, self.now())?;
        self.store
            .commit(Change {
                now: self.now(),
                policy_hash: lp.policy.hash.clone(),
                proposal: Some(ProposalWrite::Insert(p.clone())),
                events: events.into_iter().map(|e| (id.clone(), e)).collect(),
                acting: Some(actor.key.to_string()),
                ..Default::default()
            })
            .await?;
        Ok(p)
    }

    /// An admin other than the proposer approves a proposal; when the admin
    /// rule is met, the policy takes effect in the same transaction.
    pub async fn approve_policy(&self, actor: &Actor, id: &str) -> Result<Proposal, BrokerError> {
        let lp = self.policy();
        let p = self
            .store
            .proposal(id)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("no proposal {id:?}")))?;
        let res = proposal::approve(&lp.policy, &p, actor);
        let (next, events, applied) = match res {
            Err(DomainError::SelfApproval) => {
                self.record_refusal(actor, id, "policy approval", &lp.policy.hash)
                    .await;
                return Err(DomainError::SelfApproval.into());
            }
            other => other?,
        };
        let new_loaded = if applied {
            let pol = Policy::parse(&next.text, "proposed policy")
                .map_err(|e| BrokerError::Unprocessable(e.to_string()))?;
            Some(
                load_policy(pol, &self.registry, &self.ctx, "proposed policy")
                    .map_err(BrokerError::Unprocessable)?,
            )
        } else {
            None
        };
        self.store
            .commit(Change {
                now: self.now(),
                policy_hash: lp.policy.hash.clone(),
                proposal: Some(ProposalWrite::Update {
                    expected_version: p.version,
                    proposal: next.clone(),
                }),
                apply_policy: applied.then(|| (next.text.clone(), next.hash.clone())),
                events: events.into_iter().map(|e| (id.to_string(), e)).collect(),
                acting: Some(actor.key.to_string()),
                ..Default::default()
            })
            .await?;
        if let Some(l) = new_loaded {
            match self.policy.write() {
                Ok(mut g) => *g = Arc::new(l),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(l),
            }
        }
        Ok(next)
    }

    /// An admin rejects a proposal.
    pub async fn reject_policy(&self, actor: &Actor, id: &str) -> Result<Proposal, BrokerError> {
        let lp = self.policy();
        let p = self
            .store
            .proposal(id)
            .await?
            .ok_or_else(|| BrokerError::NotFound(format!("no proposal {id:?}")))?;
        let (next, events) = proposal::reject(&lp.policy, &p, actor)?;
        self.store
            .commit(Change {
                now: self.now(),
                policy_hash: lp.policy.hash.clone(),
                proposal: Some(ProposalWrite::Update {
                    expected_version: p.version,
                    proposal: next.clone(),
                }),
                events: events.into_iter().map(|e| (id.to_string(), e)).collect(),
                acting: Some(actor.key.to_string()),
                ..Default::default()
            })
            .await?;
        Ok(next)
    }

    /// A proposal as every view shows it (credentials redacted, what it
    /// changes in them compared with its base policy).
    pub async fn proposal_view(&self, p: Proposal) -> Result<ProposalView, BrokerError> {
        let lp = self.policy();
        let base = if p.base_hash == lp.policy.hash {
            Some(lp.policy.text.clone())
        } else {
            self.store.policy_text(&p.base_hash).await?
        };
        Ok(p.view(base.as_deref()))
    }

    /// Picks up a policy applied by another replica.
    pub async fn reload_policy_if_changed(&self) -> anyhow::Result<()> {
        if let Some((hash, text)) = self.store.current_policy().await? {
            if hash != self.policy().policy.hash {
                let pol =
                    Policy::parse(&text, "stored policy").map_err(|e| anyhow::anyhow!("{e}"))?;
                let l = load_policy(pol, &self.registry, &self.ctx, "stored policy")
                    .map_err(|e| anyhow::anyhow!(e))?;
                match self.policy.write() {
                    Ok(mut g) => *g = Arc::new(l),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(l),
                }
            }
        }
        Ok(())
    }

    // ----- scheduled work -------------------------------------------------

    /// Starts work on one request right away (after its final approval or a
    /// revoke), on a background task.
    fn kick(&self, _id: &str) {
        self.wake.notify_one();
    }

    fn spec(&self, req: &Request, overlapping: Vec<String>) -> GrantSpec {
        let now = self.now();
        GrantSpec {
            request_id: req.id.clone(),
            entitlement: req.entitlement.clone(),
            requester: req.requester.to_string(),
            requester_name: req.requester_name.clone(),
            starts_at_ms: req.activated_at.unwrap_or(now),
            ends_at_ms: req.ends_at.unwrap_or(now + req.duration_ms),
            overlapping_active: overlapping,
        }
    }

    fn provider_for(&self, req: &Request) -> Result<Arc<dyn Provider>, String> {
        let lp = self.policy();
        lp.providers.get(&req.entitlement).cloned().ok_or_else(|| {
            format!(
                "entitlement {:?} is no longer in the policy; its provider is unknown",
                req.entitlement
            )
        })
    }

    /// Does the scheduled work of one claimed request. Never marks a grant
    /// ended that the provider has not confirmed.
    pub async fn process(self: &Arc<Self>, req: Request, attempts: i64) -> Result<(), BrokerError> {
        let now = self.now();
        let hash = self.policy().policy.hash.clone();
        match req.state {
            State::Pending if now >= req.pending_until => {
                let (next, ev) = rq::time_out(&req, now)?;
                self.commit_request(
                    RequestWrite::Update {
                        expected_version: req.version,
                        request: next.clone(),
                    },
                    &next,
                    ev,
                    &hash,
                    None,
                    None,
                )
                .await?;
            }
            State::Approved => {
                let provider = match self.provider_for(&req) {
                    Ok(p) => p,
                    Err(msg) => return self.fail(&req, attempts, &msg, Step::Apply).await,
                };
                let spec = self.spec(&req, vec![]);
                match provider.grant(&spec).await {
                    Ok(outcome) => {
                        let (next, ev) = rq::activate(&req, self.now(), &outcome.detail)?;
                        match self
                            .commit_request(
                                RequestWrite::Update {
                                    expected_version: req.version,
                                    request: next.clone(),
                                },
                                &next,
                                ev,
                                &hash,
                                outcome.secret,
                                None,
                            )
                            .await
                        {
                            Ok(()) => {
                                self.metrics.activated(&req.id, self.now());
                                let _ = self.activations.send(req.id.clone());
                            }
                            Err(StoreError::Conflict) => {}
                            Err(e) => {
                                // The grant is applied but could not be recorded:
                                // take it back (fail closed) and retry later. If
                                // the take-back fails too, the access stays under
                                // this still-approved request (the reconciler
                                // counts it as covered) until the retry records
                                // it; the failure says so and alerts.
                                let mut msg = format!("could not record activation: {e}");
                                if let Err(re) = provider.revoke(&spec).await {
                                    tracing::error!(request = %req.id, error = %re.message, "taking back an unrecorded grant failed");
                                    msg.push_str(&format!(
                                        "; taking the grant back failed too ({}): it stays applied until a retry records it",
                                        re.message
                                    ));
                                }
                                return self
                                    .fail_alerting(&req, attempts, &msg, Step::Apply, true)
                                    .await;
                            }
                        }
                    }
                    Err(e) => {
                        // A configuration error (the provider says retrying
                        // cannot help) is alerted at once.
                        return self
                            .fail_alerting(&req, attempts, &e.message, Step::Apply, !e.retryable)
                            .await;
                    }
                }
            }
            State::Active if req.ends_at.is_some_and(|e| now >= e) => {
                let (next, ev) = rq::begin_expiry(&req, now)?;
                self.commit_request(
                    RequestWrite::Update {
                        expected_version: req.version,
                        request: next.clone(),
                    },
                    &next,
                    ev,
                    &hash,
                    None,
                    None,
                )
                .await?;
                // The commit released the lease; take it again before calling
                // the provider, or another replica could revoke at the same time.
                if let Some((fresh, attempts)) = self
                    .store
                    .claim(&req.id, self.now(), &self.opts.node, self.opts.lease_ms)
                    .await?
                {
                    return Box::pin(self.process(fresh, attempts)).await;
                }
            }
            State::Revoking => {
                let provider = match self.provider_for(&req) {
                    Ok(p) => p,
                    Err(msg) => return self.fail(&req, attempts, &msg, Step::Revoke).await,
                };
                let overlapping = self
                    .store
                    .overlapping_active(&req.entitlement, &req.requester.to_string(), &req.id)
                    .await?;
                let spec = self.spec(&req, overlapping.clone());
                let confirmed = match provider.revoke(&spec).await {
                    Ok(()) if overlapping.is_empty() => match provider.check(&spec).await {
                        Ok(Presence::Absent) => Ok(()),
                        Ok(Presence::Present) => Err(
                            "the provider reported the revoke done but the access is still present"
                                .to_string(),
                        ),
                        Err(e) => Err(format!("revoked, but could not confirm: {}", e.message)),
                    },
                    Ok(()) => Ok(()),
                    Err(e) => Err(e.message),
                };
                match confirmed {
                    Ok(()) => {
                        let (next, ev) = rq::confirm_ended(&req, self.now())?;
                        self.commit_request(
                            RequestWrite::Update {
                                expected_version: req.version,
                                request: next.clone(),
                            },
                            &next,
                            ev,
                            &hash,
                            None,
                            None,
                        )
                        .await?;
                        if let Some(end) = req.ends_at {
                            self.metrics.revoked(
                                end,
                                self.now(),
                                req.end_reason == Some(rq::EndReason::Expiry),
                            );
                        }
                    }
                    Err(msg) => return self.fail(&req, attempts, &msg, Step::Revoke).await,
                }
            }
            _ => {
                // Claimed but nothing due (the state moved on): hand it back.
                let due = rq::next_due(&req).unwrap_or(i64::MAX);
                self.store
                    .release_failed(&req.id, &self.opts.node, due, "")
                    .await?;
            }
        }
        Ok(())
    }

    async fn fail(
        &self,
        req: &Request,
        attempts: i64,
        msg: &str,
        step: Step,
    ) -> Result<(), BrokerError> {
        self.fail_alerting(req, attempts, msg, step, false).await
    }

    /// Records a failure and schedules the retry; alerts every
    /// `alert_after_failures` failures, and at the first when `alert_now`.
    async fn fail_alerting(
        &self,
        req: &Request,
        attempts: i64,
        msg: &str,
        step: Step,
        alert_now: bool,
    ) -> Result<(), BrokerError> {
        let n = attempts + 1;
        let retry_at = self.now() + backoff(&self.opts, attempts);
        tracing::warn!(request = %req.id, attempts = n, error = msg, "{}; will retry", step.kind());
        self.metrics.provider_failures.inc();
        self.store
            .release_failed(&req.id, &self.opts.node, retry_at, msg)
            .await?;
        if (alert_now && n == 1) || n % self.opts.alert_after_failures.max(1) == 0 {
            let failed = ProviderFailed {
                attempts: n,
                error: msg.to_string(),
                state: req.state.as_str().to_string(),
                retry_at,
            };
            let ev = match step {
                Step::Apply => LedgerEvent::GrantApplyFailed(failed),
                Step::Revoke => LedgerEvent::GrantRevokeFailed(failed),
            }
            .by(Actor::system().key.to_string());
            self.store
                .record(
                    self.now(),
                    &self.policy().policy.hash,
                    vec![(req.id.clone(), ev)],
                )
                .await?;
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Claims and does all due work once. Returns how many requests it handled.
    pub async fn run_due(self: &Arc<Self>) -> Result<usize, BrokerError> {
        let mut total = 0;
        loop {
            let batch = self
                .store
                .claim_due(self.now(), &self.opts.node, self.opts.lease_ms, 64)
                .await?;
            let n = batch.len();
            total += n;
            let mut set = tokio::task::JoinSet::new();
            for (req, attempts) in batch {
                let me = self.clone();
                set.spawn(async move {
                    let id = req.id.clone();
                    if let Err(e) = me.process(req, attempts).await {
                        tracing::warn!(request = %id, error = %e, "scheduled work failed");
                        // Handing the lease back early is an optimisation: if
                        // it fails, the lease lapses and the work is claimed
                        // again then. Never silent.
                        if let Err(re) = me
                            .store
                            .release_failed(
                                &id,
                                &me.opts.node,
                                me.now() + me.opts.base_backoff_ms,
                                &e.to_string(),
                            )
                            .await
                        {
                            tracing::error!(request = %id, error = %re, "could not hand back the lease after a failure; it will lapse");
                        }
                    }
                });
                if set.len() >= 16 {
                    let _ = set.join_next().await;
                }
            }
            while set.join_next().await.is_some() {}
            if n < 64 {
                return Ok(total);
            }
        }
    }

    /// The scheduler: activation after approval, revocation at end time,
    /// pending timeouts, retries. Runs until `shutdown` resolves. Durable: all
    /// its work is found again in the database after a restart.
    pub async fn run_scheduler(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.run_due().await {
                tracing::error!(error = %e, "scheduler pass failed");
            }
            if let Err(e) = self.reload_policy_if_changed().await {
                tracing::error!(error = %e, "policy reload failed");
            }
            if let Err(e) = self.deliver_alerts().await {
                tracing::error!(error = %e, "alert delivery failed");
            }
            if let Err(e) = self.digest_activity_due().await {
                tracing::error!(error = %e, "writing grant activity digests failed; retried on the next pass");
            }
            let now = self.now();
            let next = self
                .store
                .next_due_time()
                .await
                .ok()
                .flatten()
                .unwrap_or(i64::MAX);
            let wait = (next.saturating_sub(now)).clamp(0, self.opts.poll_ms as i64) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Sends due alerts to every sink. Undelivered alerts stay in the outbox
    /// and are retried; they are never dropped. Each sink's delivery is
    /// recorded on its own (`outbox_deliveries`), so a retry after one sink
    /// failed goes only to the sinks that have not taken the alert.
    pub async fn deliver_alerts(&self) -> Result<(), BrokerError> {
        self.deliver_notifications().await?;
        if self.sinks.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let channels = channel_keys(self.sinks.iter().map(|s| s.name()));
        for row in self.store.due_alerts(now, 50).await? {
            if !self.claim_outbox(&row.id, now).await? {
                continue;
            }
            let alert = self.to_alert(&row.entry);
            let mut err = None;
            for (sink, channel) in self.sinks.iter().zip(&channels) {
                if row.delivered.contains(channel) {
                    continue;
                }
                match sink.send(&alert).await {
                    Ok(()) => self.store.outbox_delivered(&row.id, channel, now).await?,
                    Err(e) => err = Some(format!("{}: {e}", sink.name())),
                }
            }
            self.outbox_result(&row, now, err.as_deref()).await?;
        }
        Ok(())
    }

    /// Takes one outbox row for this attempt (see [`Store::claim_outbox`]).
    async fn claim_outbox(&self, id: &str, now: Millis) -> Result<bool, BrokerError> {
        Ok(self
            .store
            .claim_outbox(id, now, now + self.opts.lease_ms)
            .await?)
    }

    /// Marks an outbox row delivered (every channel took it) or schedules
    /// its retry with backoff.
    async fn outbox_result(
        &self,
        row: &twokey_store::AlertRow,
        now: Millis,
        err: Option<&str>,
    ) -> Result<(), BrokerError> {
        let retry_at = now + backoff(&self.opts, row.attempts);
        self.store.alert_result(&row.id, now, err, retry_at).await?;
        Ok(())
    }

    /// Everyone who can be notified: the policy's identities (with their
    /// `email`) and the people seen through single sign-on (email claim),
    /// with groups and links as the broker sees them.
    pub async fn people(&self) -> Result<Vec<Person>, BrokerError> {
        let lp = self.policy();
        let mut out: Vec<Person> = lp
            .policy
            .identities
            .iter()
            .map(|i| Person {
                actor: i.actor(),
                email: i.email.clone(),
            })
            .collect();
        for row in self.store.people().await? {
            let Some(key) = twokey_core::IdentityKey::parse(&row.identity) else {
                continue;
            };
            if out.iter().any(|p| p.actor.key == key) {
                continue;
            }
            let actor = self.refresh_actor(Actor {
                key,
                name: row.name,
                groups: row.groups.into_iter().collect(),
                links: Default::default(),
            });
            out.push(Person {
                actor,
                email: row.email,
            });
        }
        // The directory: people provisioned before their first sign-in are
        // known (and notified); a deactivated one is no one's approver.
        for (identity, d) in self.store.directory_people().await? {
            let Some(key) = twokey_core::IdentityKey::parse(&identity) else {
                continue;
            };
            match out.iter_mut().find(|p| p.actor.key == key) {
                Some(p) => {
                    p.actor.groups.extend(d.groups);
                    if p.email.is_none() {
                        p.email = d.email;
                    }
                }
                None => {
                    let actor = self.refresh_actor(Actor {
                        key,
                        name: d.name,
                        groups: d.groups.into_iter().collect(),
                        links: Default::default(),
                    });
                    out.push(Person {
                        actor,
                        email: d.email,
                    });
                }
            }
        }
        let mut gone = Vec::new();
        for p in &out {
            if let Some(d) = self
                .store
                .directory_person(&p.actor.key.to_string())
                .await?
            {
                if !d.active {
                    gone.push(p.actor.key.clone());
                }
            }
        }
        out.retain(|p| !gone.contains(&p.actor.key));
        Ok(out)
    }

    /// Sends due notifications (new request to approvers, decisions to the
    /// requester, a decision to the other approvers). Undelivered ones stay in
    /// the outbox and are retried. Each (notice, channel) delivery is recorded
    /// as soon as the channel took it, so a retry after one channel failed
    /// goes only to the channels that failed.
    pub async fn deliver_notifications(&self) -> Result<(), BrokerError> {
        let notifiers = self.notifiers();
        let slack = self.slack();
        if notifiers.is_empty() && slack.is_none() {
            return Ok(());
        }
        let now = self.now();
        let rows = self.store.due_notifications(now, 50).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let people = self.people().await?;
        let lp = self.policy();
        let channels = channel_keys(notifiers.iter().map(|n| n.name()));
        let base = self.opts.public_url.trim_end_matches('/').to_string();
        for row in rows {
            if !self.claim_outbox(&row.id, now).await? {
                continue;
            }
            let e = &row.entry;
            let mut err = None;
            if let Some(req) = self.store.request(&e.subject).await? {
                let link = format!("{base}/ui/requests/{}", req.id);
                let notices =
                    twokey_core::notify::plan(&lp.policy, &req, &e.kind, &e.actor, &people, &link);
                for n in notices {
                    let kind = n.kind.as_str();
                    let msg = Notification {
                        kind: kind.into(),
                        request_id: req.id.clone(),
                        title: n.title,
                        text: n.text,
                        link: n.link,
                        to: n
                            .to
                            .into_iter()
                            .map(|r| NotifyRecipient {
                                name: r.name,
                                email: r.email,
                            })
                            .collect(),
                    };
                    for (x, channel) in notifiers.iter().zip(&channels) {
                        let key = format!("{kind}>{channel}");
                        if row.delivered.contains(&key) {
                            continue;
                        }
                        match x.notify(&msg).await {
                            Ok(()) => self.store.outbox_delivered(&row.id, &key, now).await?,
                            Err(er) => {
                                tracing::warn!(notifier = %x.name(), error = %er, "notification failed; will retry");
                                err = Some(er.to_string());
                            }
                        }
                    }
                }
                // Approve from Slack: approver messages and their updates,
                // once per row (the app records each message it posted).
                if let Some(app) = &slack {
                    if !row.delivered.contains(crate::slack::CHANNEL) {
                        match app.deliver(self, &e.kind, &req, &people).await {
                            Ok(()) => {
                                self.store
                                    .outbox_delivered(&row.id, crate::slack::CHANNEL, now)
                                    .await?
                            }
                            Err(er) => {
                                tracing::warn!(error = %er, "Slack delivery failed; will retry");
                                err = Some(format!("{}: {er}", crate::slack::CHANNEL));
                            }
                        }
                    }
                }
            }
            self.outbox_result(&row, now, err.as_deref()).await?;
        }
        Ok(())
    }

    fn to_alert(&self, e: &twokey_ledger::LedgerEntry) -> Alert {
        let (severity, title) = match LedgerEvent::parse(&e.kind, &e.data) {
            Ok(ev) => alert_title(&ev, &e.actor, &e.subject),
            // Still alerted: an entry written by a newer version, or one
            // whose data this build cannot read, is never dropped.
            Err(err) => {
                tracing::warn!(index = e.index, kind = %e.kind, error = %err, "alerting on a ledger entry this build cannot read");
                (Severity::Warning, format!("{}: {}", e.kind, e.subject))
            }
        };
        let is_request = e.subject.starts_with("req-");
        Alert {
            kind: e.kind.replace('.', "_"),
            severity,
            title: title.clone(),
            text: format!("{title}\n{}", e.data),
            request_id: is_request.then(|| e.subject.clone()),
            link: is_request.then(|| {
                format!(
                    "{}/v1/requests/{}",
                    self.opts.public_url.trim_end_matches('/'),
                    e.subject
                )
            }),
            data: serde_json::json!({"ledger_index": e.index, "actor": e.actor, "data": e.data}),
            time_ms: e.time_ms,
        }
    }

    /// Makes the scheduler look for work now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The severity and title of the alert of a ledger event: an exhaustive
/// match, so a new event kind must say how it reads as an alert.
fn alert_title(ev: &LedgerEvent, actor: &str, subject: &str) -> (Severity, String) {
    use LedgerEvent as E;
    match ev {
        E::RequestBreakGlass(d) => (
            Severity::Critical,
            format!("Break-glass access to {} by {actor}", d.entitlement),
        ),
        E::ReviewRefused(_) => (
            Severity::Warning,
            format!("{actor} tried to approve their own request {subject}"),
        ),
        E::GrantRevokeFailed(_) => (
            Severity::Critical,
            format!("Revoking grant {subject} keeps failing"),
        ),
        E::GrantApplyFailed(_) => (
            Severity::Warning,
            format!("Applying grant {subject} keeps failing"),
        ),
        E::GateDrift(d) => (
            Severity::Critical,
            format!(
                "Drift: {} project {} on {} differs from the code",
                d.target.repo, d.target.project, d.target.branch
            ),
        ),
        E::GateDriftFailed(d) => (
            Severity::Warning,
            format!("Drift check of {} project {} failed", d.repo, d.project),
        ),
        E::SlackRefused(d) => (
            Severity::Warning,
            format!(
                "Slack interactivity refused ({}): {}",
                d.reason.as_str(),
                d.detail
            ),
        ),
        E::GateRefused(r) => (
            Severity::Warning,
            format!("Deploy gate refused {subject} ({}) by {actor}", r.reason()),
        ),
        E::ReconcileUncovered(d) => (
            Severity::Critical,
            format!(
                "Access without a twokey grant at {} ({}): removing it",
                d.resource, d.entitlement
            ),
        ),
        E::ReconcileRemoveFailed(d) => (
            Severity::Critical,
            format!(
                "Could not remove access without a twokey grant at {} ({}): {}",
                d.found.resource, d.found.entitlement, d.error
            ),
        ),
        E::ReconcileMissing(d) => (
            Severity::Warning,
            format!(
                "Grant {subject} ({}) is active but its access is missing at the target",
                d.entitlement
            ),
        ),
        E::ReconcileListFailed(d) => (
            Severity::Warning,
            format!(
                "Reconciler cannot read the target of {}: {}",
                d.entitlement, d.error
            ),
        ),
        E::CustodySealed(d) => custody_title(ev, &d.secret, actor, subject),
        E::CustodyRecipientSet(d) => custody_title(ev, &d.secret, actor, subject),
        E::CustodyReleased(d) => custody_title(ev, &d.secret, actor, subject),
        E::CustodyOpened(d) => custody_title(ev, &d.secret, actor, subject),
        // A refusal names no secret: it names the step attempted.
        E::CustodyRefused(r) => (
            Severity::Critical,
            format!(
                "Root custody: {} ({}) by {actor} ({subject})",
                ev.kind(),
                r.attempt
            ),
        ),
        E::RequestCreated(_)
        | E::ReviewApproved(_)
        | E::ReviewDenied(_)
        | E::RequestApproved(_)
        | E::RequestDenied(_)
        | E::RequestCancelled(_)
        | E::RequestTimedOut(_)
        | E::GrantActivated(_)
        | E::GrantRevokeRequested(_)
        | E::GrantExpiring(_)
        | E::GrantRevoked(_)
        | E::GrantExpired(_)
        | E::GrantActivity(_)
        | E::BreakGlassReviewed(_)
        | E::PolicyLoaded(_)
        | E::PolicyProposed(_)
        | E::PolicyApproved(_)
        | E::PolicyApplied(_)
        | E::PolicyRejected(_)
        | E::LedgerPublishFailed(_)
        | E::ReconcileStandingAccess(_)
        | E::ReconcileStandingCleared(_)
        | E::ReconcileRemoved(_)
        | E::SessionLogin(_)
        | E::TokenIssued(_)
        | E::MfaKeyAdded(_)
        | E::MfaKeyRemoved(_)
        | E::GateDeliveryResumed(_)
        | E::GateDeliveryUnfinished(_)
        | E::GateUnlock(_)
        | E::GatePlan(_)
        | E::GateApplyEvidence(_)
        | E::GateApplyResult(_)
        | E::GateApplyRecovered(_)
        | E::GateApplyUnresolved(_)
        | E::GateDriftCheck(_)
        | E::PostureFailing(_)
        | E::PostureFixed(_)
        | E::PostureUndetermined(_)
        | E::PostureGithubRegression(_)
        | E::PostureGithubRecovered(_)
        | E::PostureGithubScan(_)
        | E::PostureGithubRestoreOpened(_)
        | E::PostureGithubRestoreProposed(_)
        | E::PostureGithubRestoreApproved(_)
        | E::PostureGithubRestoreRejected(_)
        | E::PostureGithubRestoreApplied(_)
        | E::PostureGithubRestoreFailed(_)
        | E::PostureGithubRestoreRefused(_)
        | E::DirectoryUserCreated(_)
        | E::DirectoryUserUpdated(_)
        | E::DirectoryUserDeactivated(_)
        | E::DirectoryUserReactivated(_)
        | E::DirectoryUserDeleted(_)
        | E::DirectoryGroupCreated(_)
        | E::DirectoryGroupUpdated(_)
        | E::DirectoryGroupDeleted(_)
        | E::BenchProbe(_) => (Severity::Warning, format!("{}: {subject}", ev.kind())),
    }
}

fn custody_title(ev: &LedgerEvent, secret: &str, actor: &str, subject: &str) -> (Severity, String) {
    (
        Severity::Critical,
        format!(
            "Root custody: {} of {secret} by {actor} ({subject})",
            ev.kind()
        ),
    )
}
