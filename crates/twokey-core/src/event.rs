//! Ledger events as one typed enum: what happened (the variant, whose
//! [`EventKind`] is the entry's dotted `kind`) and its details (the variant's
//! data, the entry's `data`).
//!
//! Every crate that writes to the ledger builds a [`LedgerEvent`] and turns
//! it into the stored [`Event`] with [`LedgerEvent::by`]; whoever reads an
//! entry back (alerts, notifications) gets the typed value with
//! [`LedgerEvent::parse`]. A renamed or retyped field is then a compile error
//! at the writer and a parse error (not a silent `"?"`) at the reader.
//!
//! The serialised form is the one the string literals wrote before: the same
//! kinds, the same keys, the same JSON types, so the canonical bytes of an
//! entry (and so its Merkle leaf) are unchanged. `tests/ledger_fixture.rs`
//! checks this against a ledger written by the earlier code.
//!
//! Adding an event: one line in the `ledger_events!` list below (variant,
//! data type, kind), its data struct, and its arm in [`LedgerEvent::alert`];
//! the compiler then asks for its arm in every exhaustive match
//! ([`EventKind::notifies`], the broker's alert titles).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::request::Event;
use crate::time::Millis;

macro_rules! ledger_events {
    ($( $(#[$doc:meta])* $variant:ident($data:ty) = $kind:literal, )*) => {
        /// One ledger event: its kind (the variant) and its data.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "data")]
        pub enum LedgerEvent {
            $( $(#[$doc])* #[serde(rename = $kind)] $variant($data), )*
        }

        /// The kind of a [`LedgerEvent`], without its data.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind {
            $( $(#[$doc])* $variant, )*
        }

        impl EventKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),*];

            /// The dotted name stored in the ledger (`request.created`, ...).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( EventKind::$variant => $kind, )*
                }
            }

            /// The kind of a dotted name; `None` for a kind this build does
            /// not know (written by a newer version).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $( $kind => Some(EventKind::$variant), )*
                    _ => None,
                }
            }
        }

        impl LedgerEvent {
            /// The kind of this event.
            pub fn kind(&self) -> EventKind {
                match self {
                    $( LedgerEvent::$variant(_) => EventKind::$variant, )*
                }
            }

            /// The event's data as stored in the entry's `data`.
            pub fn data(&self) -> serde_json::Value {
                let v = match self {
                    $( LedgerEvent::$variant(d) => serde_json::to_value(d), )*
                };
                // Plain structs of strings, numbers, lists and JSON values
                // always serialise; keep the evidence if one ever did not.
                v.unwrap_or_else(|e| serde_json::json!({ "unserialisable": e.to_string() }))
            }
        }
    };
}

ledger_events! {
    /// A person asked for an entitlement (or an extension of a grant).
    RequestCreated(RequestCreated) = "request.created",
    /// A break-glass request activated without approval.
    RequestBreakGlass(BreakGlass) = "request.break_glass",
    /// A reviewer approved.
    ReviewApproved(ReviewData) = "review.approved",
    /// A reviewer denied.
    ReviewDenied(ReviewData) = "review.denied",
    /// A self-approval (or other refused review) was attempted.
    ReviewRefused(Refused) = "review.refused",
    /// The request has all the approvals it needs.
    RequestApproved(RequestApproved) = "request.approved",
    /// The request was denied.
    RequestDenied(Empty) = "request.denied",
    /// The requester cancelled.
    RequestCancelled(Empty) = "request.cancelled",
    /// Nobody decided before the pending timeout.
    RequestTimedOut(Empty) = "request.timed_out",
    /// The provider applied the grant.
    GrantActivated(GrantActivated) = "grant.activated",
    /// Someone asked for an early end.
    GrantRevokeRequested(RevokeRequested) = "grant.revoke_requested",
    /// The grant reached its end time.
    GrantExpiring(Expiring) = "grant.expiring",
    /// The provider confirmed the end of a revoked grant.
    GrantRevoked(Ended) = "grant.revoked",
    /// The provider confirmed the end of an expired grant.
    GrantExpired(Ended) = "grant.expired",
    /// Applying a grant keeps failing.
    GrantApplyFailed(ProviderFailed) = "grant.apply_failed",
    /// Revoking a grant keeps failing.
    GrantRevokeFailed(ProviderFailed) = "grant.revoke_failed",
    /// What an ended grant did (its activity digest).
    GrantActivity(crate::activity::ActivityDigest) = "grant.activity",
    /// A second person reviewed a break-glass use.
    BreakGlassReviewed(Comment) = "break_glass.reviewed",
    /// The first policy was loaded from its file.
    PolicyLoaded(PolicyLoaded) = "policy.loaded",
    /// An admin proposed a policy change.
    PolicyProposed(PolicyProposed) = "policy.proposed",
    /// An admin approved a policy change.
    PolicyApproved(PolicyApproved) = "policy.approved",
    /// A policy change took effect.
    PolicyApplied(PolicyApplied) = "policy.applied",
    /// An admin rejected a policy change.
    PolicyRejected(PolicyRejected) = "policy.rejected",
    /// A root secret was (re-)sealed.
    CustodySealed(CustodySealed) = "custody.sealed",
    /// The requester set the one-time key of a release.
    CustodyRecipientSet(CustodyRecipientSet) = "custody.recipient_set",
    /// A custodian released a share.
    CustodyReleased(CustodyReleased) = "custody.released",
    /// The requester fetched the releases.
    CustodyOpened(CustodyOpened) = "custody.opened",
    /// A custody step was refused.
    CustodyRefused(Refused) = "custody.refused",
    /// Publishing a ledger bundle keeps failing.
    LedgerPublishFailed(PublishFailed) = "ledger.publish_failed",
    /// The reconciler found standing access to a target.
    ReconcileStandingAccess(StandingAccess) = "reconcile.standing_access",
    /// Standing access found earlier is gone.
    ReconcileStandingCleared(StandingCleared) = "reconcile.standing_cleared",
    /// The reconciler cannot list a target.
    ReconcileListFailed(ListFailed) = "reconcile.list_failed",
    /// An active grant's access is missing at its target.
    ReconcileMissing(Missing) = "reconcile.missing",
    /// Access no grant covers (recorded before it is removed).
    ReconcileUncovered(Uncovered) = "reconcile.uncovered",
    /// Access no grant covered was removed.
    ReconcileRemoved(Uncovered) = "reconcile.removed",
    /// Access no grant covers could not be removed.
    ReconcileRemoveFailed(RemoveFailed) = "reconcile.remove_failed",
    /// A person signed in to the web UI.
    SessionLogin(SessionLogin) = "session.login",
    /// A CLI token was issued.
    TokenIssued(TokenIssued) = "token.issued",
    /// A security key was registered.
    MfaKeyAdded(MfaKey) = "mfa.key_added",
    /// A security key was removed.
    MfaKeyRemoved(MfaKey) = "mfa.key_removed",
    /// The deploy gate refused a webhook, a command or an apply.
    GateRefused(GateRefused) = "gate.refused",
    /// An unfinished webhook delivery is being resumed.
    GateDeliveryResumed(DeliveryResumed) = "gate.delivery_resumed",
    /// A delivery stayed unfinished.
    GateDeliveryUnfinished(DeliveryUnfinished) = "gate.delivery_unfinished",
    /// Locks were released by a command.
    GateUnlock(Empty) = "gate.unlock",
    /// A project was planned.
    GatePlan(GatePlan) = "gate.plan",
    /// The evidence of an apply, written before it runs.
    GateApplyEvidence(ApplyEvidence) = "gate.apply_evidence",
    /// The result of an apply.
    GateApplyResult(ApplyResult) = "gate.apply_result",
    /// A plan left `applying` was resolved by the recovery pass.
    GateApplyRecovered(ApplyRecovered) = "gate.apply_recovered",
    /// A plan left `applying` could not be resolved.
    GateApplyUnresolved(ApplyUnresolved) = "gate.apply_unresolved",
    /// A drift check found the target as the code says.
    GateDriftCheck(Drift) = "gate.drift_check",
    /// A drift check found the target differs from the code.
    GateDrift(Drift) = "gate.drift",
    /// A drift check could not run.
    GateDriftFailed(DriftFailed) = "gate.drift_failed",
    /// An Approve-from-Slack interactivity request was refused (signature,
    /// timestamp, replay, or a Slack user without a configured link).
    SlackRefused(SlackRefused) = "slack.refused",
    /// An AWS posture check started failing on a resource.
    PostureFailing(PostureChange) = "posture.failing",
    /// An AWS posture check passes again (or its resource is gone).
    PostureFixed(PostureChange) = "posture.fixed",
    /// An AWS posture check could not decide (an error collecting facts).
    PostureUndetermined(PostureChange) = "posture.undetermined",
    /// A GitHub protection check went from passing to failing.
    PostureGithubRegression(GithubRegression) = "posture.github.regression",
    /// A GitHub protection check passes again.
    PostureGithubRecovered(GithubRecovered) = "posture.github.recovered",
    /// A scheduled GitHub posture scan finished.
    PostureGithubScan(GithubScan) = "posture.github.scan",
    /// twokey opened a proposal to restore a repository's protection.
    PostureGithubRestoreOpened(RestoreOpened) = "posture.github.restore_opened",
    /// A person proposed a restore for approval.
    PostureGithubRestoreProposed(RestoreRef) = "posture.github.restore_proposed",
    /// A second person approved a restore.
    PostureGithubRestoreApproved(RestoreApproved) = "posture.github.restore_approved",
    /// A person rejected a restore.
    PostureGithubRestoreRejected(RestoreRef) = "posture.github.restore_rejected",
    /// An approved restore was applied.
    PostureGithubRestoreApplied(RestoreResult) = "posture.github.restore_applied",
    /// Applying an approved restore failed.
    PostureGithubRestoreFailed(RestoreResult) = "posture.github.restore_failed",
    /// A restore step was refused (the proposer approving their own).
    PostureGithubRestoreRefused(RestoreRefused) = "posture.github.restore_refused",
    /// The directory (SCIM) created a user.
    DirectoryUserCreated(DirectoryUser) = "directory.user.created",
    /// The directory changed a user.
    DirectoryUserUpdated(DirectoryUser) = "directory.user.updated",
    /// The directory deactivated a user.
    DirectoryUserDeactivated(DirectoryUser) = "directory.user.deactivated",
    /// The directory reactivated a user.
    DirectoryUserReactivated(DirectoryUser) = "directory.user.reactivated",
    /// The directory deleted a user.
    DirectoryUserDeleted(DirectoryUser) = "directory.user.deleted",
    /// The directory created a group.
    DirectoryGroupCreated(DirectoryGroup) = "directory.group.created",
    /// The directory changed a group's members or name.
    DirectoryGroupUpdated(DirectoryGroup) = "directory.group.updated",
    /// The directory deleted a group.
    DirectoryGroupDeleted(DirectoryGroup) = "directory.group.deleted",
    /// A benchmark's probe entry (`twokey-bench` only).
    BenchProbe(serde_json::Value) = "bench.probe",
}

impl LedgerEvent {
    /// Whether this event raises an alert at once.
    pub fn alert(&self) -> bool {
        use LedgerEvent as E;
        match self {
            E::RequestBreakGlass(_)
            | E::ReviewRefused(_)
            | E::GrantApplyFailed(_)
            | E::GrantRevokeFailed(_)
            | E::CustodySealed(_)
            | E::CustodyRecipientSet(_)
            | E::CustodyReleased(_)
            | E::CustodyOpened(_)
            | E::CustodyRefused(_)
            | E::LedgerPublishFailed(_)
            | E::ReconcileStandingAccess(_)
            | E::ReconcileListFailed(_)
            | E::ReconcileMissing(_)
            | E::ReconcileUncovered(_)
            | E::ReconcileRemoveFailed(_)
            | E::GateDeliveryUnfinished(_)
            | E::GateApplyRecovered(_)
            | E::GateApplyUnresolved(_)
            | E::GateDrift(_)
            | E::GateDriftFailed(_)
            | E::SlackRefused(_)
            | E::PostureFailing(_)
            | E::PostureFixed(_)
            | E::PostureUndetermined(_)
            | E::PostureGithubRegression(_)
            | E::PostureGithubRestoreOpened(_)
            | E::PostureGithubRestoreRejected(_)
            | E::PostureGithubRestoreFailed(_)
            | E::PostureGithubRestoreRefused(_) => true,
            E::GateRefused(r) => r.alerts(),
            E::GateApplyResult(r) => !r.ok,
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
            | E::ReconcileStandingCleared(_)
            | E::ReconcileRemoved(_)
            | E::SessionLogin(_)
            | E::TokenIssued(_)
            | E::MfaKeyAdded(_)
            | E::MfaKeyRemoved(_)
            | E::GateDeliveryResumed(_)
            | E::GateUnlock(_)
            | E::GatePlan(_)
            | E::GateApplyEvidence(_)
            | E::GateDriftCheck(_)
            | E::PostureGithubRecovered(_)
            | E::PostureGithubScan(_)
            | E::PostureGithubRestoreProposed(_)
            | E::PostureGithubRestoreApproved(_)
            | E::PostureGithubRestoreApplied(_)
            | E::DirectoryUserCreated(_)
            | E::DirectoryUserUpdated(_)
            | E::DirectoryUserDeactivated(_)
            | E::DirectoryUserReactivated(_)
            | E::DirectoryUserDeleted(_)
            | E::DirectoryGroupCreated(_)
            | E::DirectoryGroupUpdated(_)
            | E::DirectoryGroupDeleted(_)
            | E::BenchProbe(_) => false,
        }
    }

    /// The stored event, by `actor` (an identity key string).
    pub fn by(self, actor: impl Into<String>) -> Event {
        Event {
            kind: self.kind().as_str().into(),
            actor: actor.into(),
            alert: self.alert(),
            data: self.data(),
        }
    }

    /// Reads a stored entry's kind and data back as a typed event.
    pub fn parse(kind: &str, data: &serde_json::Value) -> Result<Self, EventParseError> {
        if EventKind::parse(kind).is_none() {
            return Err(EventParseError::UnknownKind(kind.to_string()));
        }
        serde_json::from_value(serde_json::json!({ "kind": kind, "data": data })).map_err(|e| {
            EventParseError::Data {
                kind: kind.to_string(),
                error: e.to_string(),
            }
        })
    }
}

impl EventKind {
    /// Whether an entry of this kind is worth a notification to people.
    pub fn notifies(self) -> bool {
        use EventKind as K;
        match self {
            K::RequestCreated
            | K::ReviewApproved
            | K::ReviewDenied
            | K::RequestApproved
            | K::RequestDenied
            | K::RequestTimedOut
            | K::RequestCancelled
            | K::GrantActivated
            | K::GrantExpired
            | K::GrantRevoked => true,
            K::RequestBreakGlass
            | K::ReviewRefused
            | K::GrantRevokeRequested
            | K::GrantExpiring
            | K::GrantApplyFailed
            | K::GrantRevokeFailed
            | K::GrantActivity
            | K::BreakGlassReviewed
            | K::PolicyLoaded
            | K::PolicyProposed
            | K::PolicyApproved
            | K::PolicyApplied
            | K::PolicyRejected
            | K::CustodySealed
            | K::CustodyRecipientSet
            | K::CustodyReleased
            | K::CustodyOpened
            | K::CustodyRefused
            | K::LedgerPublishFailed
            | K::ReconcileStandingAccess
            | K::ReconcileStandingCleared
            | K::ReconcileListFailed
            | K::ReconcileMissing
            | K::ReconcileUncovered
            | K::ReconcileRemoved
            | K::ReconcileRemoveFailed
            | K::SessionLogin
            | K::TokenIssued
            | K::MfaKeyAdded
            | K::MfaKeyRemoved
            | K::GateRefused
            | K::GateDeliveryResumed
            | K::GateDeliveryUnfinished
            | K::GateUnlock
            | K::GatePlan
            | K::GateApplyEvidence
            | K::GateApplyResult
            | K::GateApplyRecovered
            | K::GateApplyUnresolved
            | K::GateDriftCheck
            | K::GateDrift
            | K::GateDriftFailed
            | K::SlackRefused
            | K::PostureFailing
            | K::PostureFixed
            | K::PostureUndetermined
            | K::PostureGithubRegression
            | K::PostureGithubRecovered
            | K::PostureGithubScan
            | K::PostureGithubRestoreOpened
            | K::PostureGithubRestoreProposed
            | K::PostureGithubRestoreApproved
            | K::PostureGithubRestoreRejected
            | K::PostureGithubRestoreApplied
            | K::PostureGithubRestoreFailed
            | K::PostureGithubRestoreRefused
            | K::DirectoryUserCreated
            | K::DirectoryUserUpdated
            | K::DirectoryUserDeactivated
            | K::DirectoryUserReactivated
            | K::DirectoryUserDeleted
            | K::DirectoryGroupCreated
            | K::DirectoryGroupUpdated
            | K::DirectoryGroupDeleted
            | K::BenchProbe => false,
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a stored entry is not a typed event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventParseError {
    /// A kind this build does not know.
    #[error("unknown ledger event kind {0:?}")]
    UnknownKind(String),
    /// A known kind whose data does not have its fields.
    #[error("ledger event {kind}: {error}")]
    Data {
        /// The kind.
        kind: String,
        /// What serde said.
        error: String,
    },
}

/// No details (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `request.created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCreated {
    /// Entitlement name.
    pub entitlement: String,
    /// Granted duration.
    pub duration_ms: Millis,
    /// Why.
    pub reason: String,
    /// Ticket id.
    pub ticket: Option<String>,
    /// Whether it was a break-glass request.
    pub break_glass: bool,
    /// The request this one extends (only on extensions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
}

/// `request.break_glass`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    /// Entitlement name.
    pub entitlement: String,
    /// Why.
    pub reason: String,
}

/// `review.approved`, `review.denied`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewData {
    /// The reviewer's comment.
    pub comment: String,
    /// The security-key confirmation of an approval that needed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<MfaRecord>,
}

/// The step-up confirmation recorded with an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaRecord {
    /// `webauthn`.
    pub method: String,
    /// The credential that signed (base64url).
    pub credential_id: String,
    /// When it was verified.
    pub verified_at: Millis,
}

/// `review.refused`, `custody.refused`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// Why it was refused.
    pub reason: String,
    /// What was attempted.
    pub attempt: String,
}

/// `request.approved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestApproved {
    /// Approvals that count.
    pub approvals: usize,
    /// Approvals required.
    pub required: u32,
}

/// `grant.activated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantActivated {
    /// When.
    pub activated_at: Millis,
    /// When it ends.
    pub ends_at: Option<Millis>,
    /// Whether it was break-glass.
    pub break_glass: bool,
    /// Identity keys of the approvers.
    pub approvers: Vec<String>,
    /// What the provider said it did.
    pub detail: String,
}

/// `grant.revoke_requested`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequested {
    /// When.
    pub at: Millis,
}

/// `grant.expiring`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiring {
    /// The end time reached.
    pub ends_at: Millis,
}

/// `grant.revoked`, `grant.expired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// When the provider confirmed the end.
    pub ended_at: Millis,
    /// The planned end.
    pub ends_at: Option<Millis>,
}

/// `grant.apply_failed`, `grant.revoke_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderFailed {
    /// Failures so far.
    pub attempts: i64,
    /// The provider's error.
    pub error: String,
    /// The request's state.
    pub state: String,
    /// When the next attempt is due.
    pub retry_at: Millis,
}

/// `break_glass.reviewed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// The comment.
    pub comment: String,
}

/// `policy.loaded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyLoaded {
    /// Policy hash.
    pub hash: String,
    /// Entitlement names.
    pub entitlements: Vec<String>,
}

/// `policy.proposed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyProposed {
    /// Proposal id.
    pub proposal: String,
    /// Proposed policy hash.
    pub hash: String,
    /// Hash of the policy it replaces.
    pub base_hash: String,
}

/// `policy.approved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyApproved {
    /// Proposal id.
    pub proposal: String,
    /// Proposed policy hash.
    pub hash: String,
}

/// `policy.applied`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyApplied {
    /// Proposal id.
    pub proposal: String,
    /// New policy hash.
    pub hash: String,
    /// Previous policy hash.
    pub previous: String,
}

/// `policy.rejected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRejected {
    /// Proposal id.
    pub proposal: String,
}

/// `custody.sealed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodySealed {
    /// Secret id.
    pub secret: String,
    /// New generation.
    pub generation: u64,
    /// Custodians it was split between.
    pub custodians: usize,
    /// Threshold.
    pub threshold: u32,
}

/// `custody.recipient_set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyRecipientSet {
    /// Secret id.
    pub secret: String,
    /// Generation the request opens.
    pub generation: u64,
}

/// `custody.released`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyReleased {
    /// Secret id.
    pub secret: String,
    /// Share index.
    pub index: u8,
    /// Releases so far, this one included.
    pub released: usize,
    /// Threshold.
    pub threshold: u32,
    /// `"<released> of <threshold>"`.
    pub progress: String,
}

/// `custody.opened`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyOpened {
    /// Secret id.
    pub secret: String,
    /// Shares handed over.
    pub shares: usize,
}

/// `ledger.publish_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishFailed {
    /// The checkpoint's size.
    pub checkpoint_size: u64,
    /// Failures so far.
    pub attempts: i64,
    /// The sink's error.
    pub error: String,
    /// When the next attempt is due.
    pub next_attempt_ms: Millis,
}

/// `reconcile.standing_access`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandingAccess {
    /// Entitlement name.
    pub entitlement: String,
    /// What the target reported (provider-specific).
    pub findings: serde_json::Value,
}

/// `reconcile.standing_cleared`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingCleared {
    /// Entitlement name.
    pub entitlement: String,
}

/// `reconcile.list_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFailed {
    /// Entitlement name.
    pub entitlement: String,
    /// The target's error.
    pub error: String,
    /// Failures in a row.
    pub failures: i64,
}

/// `reconcile.missing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    /// Entitlement name.
    pub entitlement: String,
    /// The requester's name.
    pub requester: String,
    /// Explanation.
    pub why: String,
}

/// A grant named by access found at a target, and whether it covers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedGrant {
    /// Request id.
    pub id: String,
    /// Its state (`unknown` when no such grant).
    pub state: String,
    /// Whether it covers the access.
    pub covers: bool,
}

/// `reconcile.uncovered`, `reconcile.removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uncovered {
    /// Entitlement name.
    pub entitlement: String,
    /// The access at the target.
    pub resource: String,
    /// Whose it is, when the target says.
    pub requester: Option<String>,
    /// The grants it names.
    pub request_ids: Vec<NamedGrant>,
    /// Explanation.
    pub why: String,
}

/// `reconcile.remove_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveFailed {
    /// What was found.
    #[serde(flatten)]
    pub found: Uncovered,
    /// The target's error.
    pub error: String,
}

/// `session.login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLogin {
    /// How (`oidc`, `dev`, ...).
    pub method: String,
    /// Display name.
    pub name: String,
    /// Groups at sign-in.
    pub groups: BTreeSet<String>,
}

/// `token.issued`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenIssued {
    /// How (`cli-login`).
    pub method: String,
    /// When it expires.
    pub expires_at: Millis,
    /// Display name.
    pub name: String,
}

/// `mfa.key_added`, `mfa.key_removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaKey {
    /// `webauthn`.
    pub method: String,
    /// Credential id (base64url).
    pub credential_id: String,
    /// The key's name.
    pub name: String,
}

/// `gate.refused`: why, with the reason's details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum GateRefused {
    /// The webhook signature did not verify.
    Signature {
        /// What was wrong.
        error: String,
        /// The delivery id, if given.
        delivery: Option<String>,
        /// The body was too large to check (not stored: no alert then).
        #[serde(skip)]
        too_large: bool,
    },
    /// The body was over the limit.
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
        /// The delivery id, if given.
        delivery: Option<String>,
    },
    /// A delivery id already done or in progress.
    ReplayedDelivery {
        /// The delivery id.
        delivery: String,
        /// Repository.
        repo: String,
        /// Whether a live worker has it.
        in_progress: bool,
    },
    /// A command from someone without write permission.
    CommandWithoutWrite {
        /// The command.
        command: String,
        /// Their permission (GitHub's name).
        permission: serde_json::Value,
    },
    /// The repository's selection file was refused.
    SelectionFile {
        /// Head commit.
        head_sha: String,
        /// The file.
        file: String,
        /// Why.
        error: String,
    },
    /// The apply requirements were not met.
    ApplyRequirements {
        /// Head commit.
        head_sha: String,
        /// The gate's decision (approvals counted and ignored, what is missing).
        decision: serde_json::Value,
    },
    /// No saved plan for the head commit.
    NoPlanForHead {
        /// Head commit.
        head_sha: String,
    },
}

impl GateRefused {
    /// Whether this refusal alerts: everything but an oversized body and a
    /// missing plan (a person's mistake, answered on the pull request).
    pub fn alerts(&self) -> bool {
        match self {
            GateRefused::Signature { too_large, .. } => !too_large,
            GateRefused::BodyTooLarge { .. } | GateRefused::NoPlanForHead { .. } => false,
            GateRefused::ReplayedDelivery { .. }
            | GateRefused::CommandWithoutWrite { .. }
            | GateRefused::SelectionFile { .. }
            | GateRefused::ApplyRequirements { .. } => true,
        }
    }

    /// The reason as stored (`signature`, `no_plan_for_head`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            GateRefused::Signature { .. } => "signature",
            GateRefused::BodyTooLarge { .. } => "body_too_large",
            GateRefused::ReplayedDelivery { .. } => "replayed_delivery",
            GateRefused::CommandWithoutWrite { .. } => "command_without_write",
            GateRefused::SelectionFile { .. } => "selection_file",
            GateRefused::ApplyRequirements { .. } => "apply_requirements",
            GateRefused::NoPlanForHead { .. } => "no_plan_for_head",
        }
    }
}

/// `slack.refused`: an interactivity request twokey did not act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackRefused {
    /// Why.
    pub reason: SlackRefusal,
    /// What was wrong, in words (never the signing secret or a signature).
    pub detail: String,
    /// The Slack user id the payload named, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_user: Option<String>,
    /// The Slack team (workspace) id the payload named, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_team: Option<String>,
}

/// Why Slack interactivity was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlackRefusal {
    /// `X-Slack-Signature` missing, malformed or not matching.
    Signature,
    /// `X-Slack-Request-Timestamp` missing, malformed or outside the window.
    Timestamp,
    /// The same signed request was taken before.
    Replayed,
    /// The Slack user has no configured link to a twokey identity.
    UnlinkedUser,
}

impl SlackRefusal {
    /// The reason as stored (`signature`, `unlinked_user`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SlackRefusal::Signature => "signature",
            SlackRefusal::Timestamp => "timestamp",
            SlackRefusal::Replayed => "replayed",
            SlackRefusal::UnlinkedUser => "unlinked_user",
        }
    }
}

/// `gate.delivery_resumed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryResumed {
    /// Delivery id.
    pub delivery: String,
    /// GitHub event name.
    pub event: String,
    /// Repository.
    pub repo: String,
    /// Attempts so far.
    pub attempts: i64,
}

/// `gate.delivery_unfinished`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryUnfinished {
    /// Delivery id.
    pub delivery: String,
    /// GitHub event name.
    pub event: String,
    /// Repository.
    pub repo: String,
    /// Its status.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
}

/// `gate.plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatePlan {
    /// Project.
    pub project: String,
    /// Terraform workspace.
    pub workspace: String,
    /// Head commit.
    pub head_sha: String,
    /// Whether the plan succeeded.
    pub ok: bool,
    /// SHA-256 of the saved plan file (none when the plan failed).
    pub plan_sha256: Option<String>,
    /// Whether the output shown was redacted.
    pub redacted: bool,
}

/// `gate.apply_evidence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyEvidence {
    /// Project.
    pub project: String,
    /// Head commit.
    pub head_sha: String,
    /// SHA-256 of the saved plan file.
    pub plan_sha256: String,
    /// Pull request author.
    pub author: String,
    /// Who pushed the head last.
    pub last_pusher: serde_json::Value,
    /// The head commit's authors and committers.
    pub head_authors: serde_json::Value,
    /// Approvals that counted.
    pub approvals: serde_json::Value,
    /// Approvals that did not count, and why.
    pub ignored: serde_json::Value,
    /// Whether the apply runs on merge.
    pub on_merge: bool,
    /// Delivery id.
    pub delivery: String,
}

/// `gate.apply_result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResult {
    /// Project.
    pub project: String,
    /// Head commit.
    pub head_sha: String,
    /// SHA-256 of the saved plan file.
    pub plan_sha256: String,
    /// Whether the apply succeeded.
    pub ok: bool,
    /// Whether the output shown was redacted.
    pub redacted: bool,
}

/// `gate.apply_recovered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyRecovered {
    /// Project.
    pub project: String,
    /// Head commit.
    pub head_sha: String,
    /// SHA-256 of the saved plan file.
    pub plan_sha256: String,
    /// The delivery that claimed it.
    pub delivery: Option<String>,
    /// The state it was moved to.
    pub resolved: String,
    /// How it was decided.
    pub how: String,
    /// `plan -detailed-exitcode` of the head, when that decided.
    pub plan_exit: Option<i32>,
}

/// `gate.apply_unresolved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyUnresolved {
    /// Project.
    pub project: String,
    /// Head commit.
    pub head_sha: String,
    /// SHA-256 of the saved plan file.
    pub plan_sha256: String,
    /// The delivery that claimed it.
    pub delivery: Option<String>,
    /// Why it could not be resolved.
    pub error: String,
}

/// What a drift check was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftTarget {
    /// Repository.
    pub repo: String,
    /// Project.
    pub project: String,
    /// Terraform workspace.
    pub workspace: String,
    /// Branch checked.
    pub branch: String,
    /// Commit checked.
    pub sha: String,
}

/// `gate.drift_check`, `gate.drift`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// What was checked.
    #[serde(flatten)]
    pub target: DriftTarget,
    /// Whether it differs.
    pub drift: bool,
    /// The plan's summary (when it differs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// `gate.drift_failed`: either before the head was known (no branch or
/// commit) or after Terraform ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftFailed {
    /// Repository.
    pub repo: String,
    /// Project.
    pub project: String,
    /// Terraform workspace.
    pub workspace: String,
    /// Branch checked, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Commit checked, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// What went wrong.
    pub error: String,
    /// Terraform's output (redacted, shortened), when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// `posture.failing`, `posture.fixed`, `posture.undetermined`: a change of an
/// AWS posture check's result on one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostureChange {
    /// The check's id.
    pub check: String,
    /// The check's severity (none for a check this build no longer has).
    pub severity: Option<String>,
    /// The account.
    pub account: String,
    /// The region, for regional resources.
    pub region: Option<String>,
    /// The resource.
    pub resource: String,
    /// What was found now (none when the resource is gone).
    pub message: Option<String>,
    /// The status before (`PASS`, `FAIL`, `ERROR`, `EXCEPTED`; none when first seen).
    pub before: Option<String>,
    /// The status now (none when the resource is gone).
    pub status: Option<String>,
    /// Whether the resource is gone (a fix by removal).
    pub gone: bool,
}

/// `posture.github.regression`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GithubRegression {
    /// The check's id.
    pub check: String,
    /// The repository (or organisation setting).
    pub resource: String,
    /// The organisation.
    pub org: String,
    /// What was found.
    pub message: String,
    /// What set off the check (`repository_ruleset webhook`, `scheduled scan`).
    pub cause: String,
    /// Who changed the setting, when an event said.
    pub sender: Option<String>,
    /// The facts the decision rests on.
    pub evidence: serde_json::Value,
}

/// `posture.github.recovered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubRecovered {
    /// The check's id.
    pub check: String,
    /// The repository (or organisation setting).
    pub resource: String,
    /// What was found.
    pub message: String,
    /// What set off the check.
    pub cause: String,
}

/// `posture.github.scan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GithubScan {
    /// The organisation.
    pub org: String,
    /// Repositories scanned.
    pub repositories: usize,
    /// Findings evaluated.
    pub findings: usize,
    /// Regressions found.
    pub regressions: usize,
    /// The GitHub API calls made (by kind).
    pub api: serde_json::Value,
}

/// `posture.github.restore_opened`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreOpened {
    /// Proposal id.
    pub id: String,
    /// The repository.
    pub resource: String,
    /// The regressions it restores (`check resource`).
    pub regressions: Vec<String>,
    /// The exact API calls it would make.
    pub calls: serde_json::Value,
    /// What set off the check.
    pub cause: String,
}

/// `posture.github.restore_proposed`, `posture.github.restore_rejected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRef {
    /// Proposal id.
    pub id: String,
    /// The repository.
    pub resource: String,
}

/// `posture.github.restore_approved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreApproved {
    /// Proposal id.
    pub id: String,
    /// The repository.
    pub resource: String,
    /// Who proposed it (never the approver).
    pub proposed_by: Option<crate::IdentityKey>,
}

/// `posture.github.restore_applied`, `posture.github.restore_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreResult {
    /// Proposal id.
    pub id: String,
    /// The repository.
    pub resource: String,
    /// What GitHub answered.
    pub result: String,
}

/// `posture.github.restore_refused`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRefused {
    /// Proposal id.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// `directory.user.*`: a SCIM write of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    /// The SCIM id.
    pub id: String,
    /// `userName`.
    #[serde(rename = "userName")]
    pub user_name: String,
    /// `externalId`.
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    /// The twokey identity it maps to.
    pub identity: Option<String>,
    /// Whether it is active (not on deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// How it was written (`POST`, `PUT`, `PATCH`; not on deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// `directory.group.*`: a SCIM write of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryGroup {
    /// The SCIM id.
    pub id: String,
    /// `displayName`.
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// Members added (not on deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<Vec<String>>,
    /// Members removed (every member, on deletion).
    pub removed: Vec<String>,
}
