//! The auditor's evidence report (`GET /v1/reports/access`, `twokey report
//! access`, `/ui/report`): every request and grant of a period with who
//! asked, who approved, how it ended; the policy changes and who approved
//! them; the posture, directory and custody entries; each row with the
//! ledger indexes it is built from and, for each, the first signed
//! checkpoint that includes it, so `twokey audit prove INDEX` and
//! `twokey audit verify-proof` check it without trusting the server.
//!
//! [`build`] is pure: it reads only the entries and checkpoints it is given
//! (the whole ledger, in order), so every field of a row is derived from the
//! entries the row names. [`load`] reads them from the store.
//!
//! **Boundary rows.** A request (or policy proposal) is in the report when
//! its life, from its first entry to the entry that ended it (or to now, if
//! it has not ended), overlaps the period. Such a row is shown whole: all of
//! its entries, also those before `from` or after `to`, and
//! `started_before_period` / `open_after_period` say which boundary it
//! crosses (`open_after_period`: it ended after `to`, or has not ended).
//! Posture, directory and custody rows are single entries and appear only
//! when their entry's time is inside the period. Both ends are inclusive.
//!
//! **Integrity.** While building, the leaves of the entries are hashed in
//! order and the tree's root at each checkpoint's size is compared with the
//! root that checkpoint states; an entry from the last matching checkpoint
//! on is marked `matches_checkpoint: false` (its content, or an earlier
//! one's since that checkpoint, is not what was signed). The signatures are
//! checked when [`load`] is given the public key (`twokey report access
//! --database ... --public-key ...`); `twokey audit verify-proof` always
//! checks them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use twokey_core::time::Millis;
use twokey_core::LedgerEvent;
use twokey_ledger::{Frontier, Hash, LedgerEntry, NoteVerifier};
use twokey_store::{Store, StoreError};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::Auth;
use crate::error::{ApiError, Problem};
use crate::Broker;

/// The period of a report, both ends inclusive, Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First millisecond.
    pub from: Millis,
    /// Last millisecond.
    pub to: Millis,
}

/// Why a period was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// A parameter is not an RFC 3339 time.
    #[error("{0}")]
    Unparsable(String),
    /// `from` is after `to`.
    #[error("{0}")]
    Reversed(String),
}

/// Reads an RFC 3339 time (`2026-01-31T00:00:00Z`, any offset) as Unix ms;
/// the error names `name`.
pub fn parse_time(name: &str, value: &str) -> Result<Millis, PeriodError> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            PeriodError::Unparsable(format!(
                "{name}: {value:?} is not an RFC 3339 time such as 2026-01-31T00:00:00Z ({e})"
            ))
        })
}

impl Period {
    /// The period of two RFC 3339 times; `from` after `to` is refused.
    pub fn parse(from: &str, to: &str) -> Result<Period, PeriodError> {
        let f = parse_time("from", from)?;
        let t = parse_time("to", to)?;
        if f > t {
            return Err(PeriodError::Reversed(format!(
                "from ({from}) is after to ({to})"
            )));
        }
        Ok(Period { from: f, to: t })
    }

    fn contains(&self, t: Millis) -> bool {
        self.from <= t && t <= self.to
    }

    /// Whether a life from `start` to `end` (`None`: not ended) overlaps it.
    fn overlaps(&self, start: Millis, end: Option<Millis>) -> bool {
        start <= self.to && end.is_none_or(|e| e >= self.from)
    }
}

/// RFC 3339 in UTC with milliseconds; the number itself when out of range.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// A signed checkpoint as the report sees it.
#[derive(Debug, Clone)]
pub struct CheckpointInfo {
    /// Entries it covers.
    pub size: u64,
    /// The root its note states, or why it cannot be used (the note does not
    /// parse, or its signature does not verify with the key given).
    pub root: Result<Hash, String>,
}

/// One ledger entry a row is built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// Ledger index (`twokey audit prove INDEX`).
    pub index: u64,
    /// The entry's kind.
    pub kind: String,
    /// The entry's time, Unix ms.
    pub time_ms: Millis,
    /// RFC 6962 leaf hash of the entry's canonical bytes (hex):
    /// SHA-256 of 0x00 followed by the `entry.json` line `prove` writes.
    pub leaf_hash: String,
    /// Size of the first signed checkpoint that includes it; `null`: not yet
    /// checkpointed.
    pub checkpoint: Option<u64>,
    /// Whether the stored entries up to that checkpoint hash to the root it
    /// states; `null` when not yet checkpointed.
    pub matches_checkpoint: Option<bool>,
}

/// A review, a denial, a refused attempt or a break-glass review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// Identity key of the reviewer.
    pub by: String,
    /// When, Unix ms.
    pub at_ms: Millis,
    /// The comment (for a refused attempt: why it was refused).
    pub comment: String,
    /// Whether a security key confirmed it.
    pub mfa: bool,
    /// Ledger index of the entry.
    pub index: u64,
}

/// How a request or grant stands (at the last entry the report read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Waiting for reviews.
    Pending,
    /// Approved, not yet applied.
    Approved,
    /// Still active.
    Active,
    /// An early end was asked for; the provider has not confirmed it yet.
    Revoking,
    /// Its end time passed; the provider has not confirmed the end yet.
    Expiring,
    /// Ended at its end time (confirmed).
    Expired,
    /// Ended early (confirmed).
    Revoked,
    /// Denied by a reviewer.
    Denied,
    /// Cancelled by the requester (or the directory).
    Cancelled,
    /// Nobody decided in time.
    TimedOut,
    /// Approved, and applying it keeps failing.
    ApplyFailed,
}

impl Outcome {
    /// The stored name (`timed_out`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Approved => "approved",
            Outcome::Active => "active",
            Outcome::Revoking => "revoking",
            Outcome::Expiring => "expiring",
            Outcome::Expired => "expired",
            Outcome::Revoked => "revoked",
            Outcome::Denied => "denied",
            Outcome::Cancelled => "cancelled",
            Outcome::TimedOut => "timed_out",
            Outcome::ApplyFailed => "apply_failed",
        }
    }

    fn ended(self) -> bool {
        matches!(
            self,
            Outcome::Expired
                | Outcome::Revoked
                | Outcome::Denied
                | Outcome::Cancelled
                | Outcome::TimedOut
        )
    }
}

/// One request and its grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GrantRow {
    /// Request id (the entries' subject).
    pub request_id: String,
    /// Entitlement name.
    pub entitlement: String,
    /// Identity key of the requester.
    pub requester: String,
    /// Why.
    pub reason: String,
    /// Ticket id.
    pub ticket: Option<String>,
    /// The request this one extends.
    pub extends: Option<String>,
    /// Duration asked for, ms.
    pub duration_ms: Option<Millis>,
    /// When it was requested, Unix ms.
    pub requested_at_ms: Option<Millis>,
    /// Break-glass (activated without approval).
    pub break_glass: bool,
    /// Approvals, in order.
    pub approvals: Vec<Decision>,
    /// Denials.
    pub denials: Vec<Decision>,
    /// Refused review attempts (self-approval, not eligible, ...).
    pub refused: Vec<Decision>,
    /// After-the-fact reviews of a break-glass use.
    pub break_glass_reviews: Vec<Decision>,
    /// When the approvals were complete, Unix ms.
    pub approved_at_ms: Option<Millis>,
    /// When the provider applied it, Unix ms.
    pub activated_at_ms: Option<Millis>,
    /// Its planned end, Unix ms.
    pub planned_end_ms: Option<Millis>,
    /// When it ended (confirmed end, denial, cancellation, timeout), Unix ms.
    pub ended_at_ms: Option<Millis>,
    /// How it ended, or how it stands.
    pub outcome: Outcome,
    /// Who ended it: the revoker, the denier, the canceller.
    pub ended_by: Option<String>,
    /// Why, when the ledger says (a directory departure, a denial's comment).
    pub end_reason: Option<String>,
    /// The last provider error (apply or revoke failing).
    pub provider_error: Option<String>,
    /// Its first entry is before `from`.
    pub started_before_period: bool,
    /// It ended after `to`, or has not ended.
    pub open_after_period: bool,
    /// The entries it is built from, in order.
    pub entries: Vec<Evidence>,
    /// Entries that could not be read as their kind.
    pub problems: Vec<String>,
}

/// How a policy change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyOutcome {
    /// The first policy, loaded from its file.
    Loaded,
    /// Proposed, not decided.
    Pending,
    /// Took effect.
    Applied,
    /// Rejected.
    Rejected,
}

impl PolicyOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyOutcome::Loaded => "loaded",
            PolicyOutcome::Pending => "pending",
            PolicyOutcome::Applied => "applied",
            PolicyOutcome::Rejected => "rejected",
        }
    }
}

/// One policy change (a proposal) or the initial load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyRow {
    /// Proposal id (the entries' subject).
    pub proposal: String,
    /// Identity key of the proposer (the loader for `loaded`).
    pub proposer: Option<String>,
    /// When it was proposed, Unix ms.
    pub proposed_at_ms: Option<Millis>,
    /// SHA-256 of the proposed policy.
    pub hash: String,
    /// Hash of the policy it replaces.
    pub base_hash: Option<String>,
    /// Admin approvals.
    pub approvals: Vec<Decision>,
    /// The outcome.
    pub outcome: PolicyOutcome,
    /// When it was applied or rejected, Unix ms.
    pub decided_at_ms: Option<Millis>,
    /// Who rejected it, or whose approval applied it.
    pub decided_by: Option<String>,
    /// Its first entry is before `from`.
    pub started_before_period: bool,
    /// Decided after `to`, or not decided.
    pub open_after_period: bool,
    /// The entries it is built from.
    pub entries: Vec<Evidence>,
    /// Entries that could not be read as their kind.
    pub problems: Vec<String>,
}

/// One posture, directory or custody entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventRow {
    /// When, Unix ms.
    pub at_ms: Millis,
    /// The entry's kind (`posture.failing`, `directory.user.deactivated`, ...).
    pub kind: String,
    /// Who (identity key, or the system).
    pub actor: String,
    /// What it is about (`posture:<check>`, a user id, a request id).
    pub subject: String,
    /// The entry's top-level scalar details, `key=value`, in key order.
    pub summary: String,
    /// The entry.
    pub entry: Evidence,
}

/// What the report found about the ledger itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Integrity {
    /// Every checkpoint's root matched the stored entries and the indexes
    /// are contiguous.
    pub ok: bool,
    /// Whether the checkpoints' signatures were checked (with a public key).
    pub signatures_checked: bool,
    /// Sizes of the checkpoints compared.
    pub checkpoints: Vec<u64>,
    /// From this index on, entries are not confirmed by a checkpoint.
    pub unconfirmed_from: Option<u64>,
    /// What did not match.
    pub problems: Vec<String>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccessReport {
    /// Start of the period (RFC 3339, UTC).
    pub from: String,
    /// End of the period (RFC 3339, UTC).
    pub to: String,
    /// Start, Unix ms.
    pub from_ms: Millis,
    /// End, Unix ms.
    pub to_ms: Millis,
    /// Entries in the ledger when the report was built.
    pub ledger_size: u64,
    /// Size of the latest signed checkpoint.
    pub latest_checkpoint: Option<u64>,
    /// The ledger's own check.
    pub integrity: Integrity,
    /// Requests and grants.
    pub grants: Vec<GrantRow>,
    /// Policy changes.
    pub policy_changes: Vec<PolicyRow>,
    /// Posture entries (AWS and GitHub posture).
    pub posture_changes: Vec<EventRow>,
    /// Directory (SCIM) entries.
    pub directory_changes: Vec<EventRow>,
    /// Custody entries (seals, releases, openings, refusals).
    pub custody: Vec<EventRow>,
}

/// Compares the root of `frontier` with what checkpoint `c` states.
fn compare(
    frontier: &Frontier,
    c: &CheckpointInfo,
    broken: &mut bool,
    good: &mut u64,
    problems: &mut Vec<String>,
) {
    match &c.root {
        Ok(root) if *root == frontier.root() => {
            if !*broken {
                *good = c.size;
            }
        }
        Ok(_) => {
            *broken = true;
            problems.push(format!(
                "the first {0} stored entries do not hash to the root the checkpoint of size {0} states: an entry below index {0} was changed, added or removed after it was signed",
                c.size
            ));
        }
        Err(e) => {
            *broken = true;
            problems.push(format!("checkpoint of size {}: {e}", c.size));
        }
    }
}

/// Walks the leaves and compares each checkpoint's root: returns the
/// integrity and, per entry position, whether its first checkpoint matches.
fn check(entries: &[LedgerEntry], cps: &[CheckpointInfo]) -> (Integrity, Vec<String>, Option<u64>) {
    let mut problems = Vec::new();
    let mut sizes: Vec<&CheckpointInfo> = cps.iter().collect();
    sizes.sort_by_key(|c| c.size);
    let mut frontier = Frontier::new();
    let mut leaves = Vec::with_capacity(entries.len());
    // Entries below this size are confirmed by a matching checkpoint.
    let mut good: u64 = 0;
    let mut broken = false;
    let mut next = sizes.iter().peekable();
    while let Some(c) = next.next_if(|c| c.size == 0) {
        compare(&frontier, c, &mut broken, &mut good, &mut problems);
    }
    let mut contiguous = true;
    for (pos, e) in entries.iter().enumerate() {
        if e.index != pos as u64 && contiguous {
            contiguous = false;
            broken = true;
            problems.push(format!(
                "entry at position {pos} has index {} (entries are missing or out of order)",
                e.index
            ));
        }
        let leaf = e.leaf_hash();
        leaves.push(hex::encode(leaf));
        frontier.push(leaf);
        while let Some(c) = next.next_if(|c| c.size == frontier.size()) {
            compare(&frontier, c, &mut broken, &mut good, &mut problems);
        }
    }
    for c in next {
        broken = true;
        problems.push(format!(
            "the checkpoint of size {} covers more entries than the ledger holds ({}): entries were removed",
            c.size,
            entries.len()
        ));
    }
    let unconfirmed_from = broken.then_some(good);
    (
        Integrity {
            ok: !broken,
            signatures_checked: false,
            checkpoints: sizes.iter().map(|c| c.size).collect(),
            unconfirmed_from,
            problems,
        },
        leaves,
        unconfirmed_from,
    )
}

struct Ctx<'a> {
    sizes: Vec<u64>,
    leaves: Vec<String>,
    unconfirmed_from: Option<u64>,
    entries: &'a [LedgerEntry],
}

impl Ctx<'_> {
    fn evidence(&self, pos: usize) -> Evidence {
        let e = &self.entries[pos];
        let checkpoint = self.sizes.iter().copied().find(|s| *s > e.index);
        Evidence {
            index: e.index,
            kind: e.kind.clone(),
            time_ms: e.time_ms,
            leaf_hash: self.leaves.get(pos).cloned().unwrap_or_default(),
            checkpoint,
            matches_checkpoint: checkpoint
                .map(|_| self.unconfirmed_from.is_none_or(|u| e.index < u)),
        }
    }
}

fn is_request_kind(kind: &str) -> bool {
    ["request.", "review.", "grant.", "break_glass."]
        .iter()
        .any(|p| kind.starts_with(p))
}

fn text(data: &serde_json::Value, key: &str) -> Option<String> {
    data.get(key).and_then(|v| v.as_str()).map(String::from)
}

fn decision(e: &LedgerEntry, comment: String, mfa: bool) -> Decision {
    Decision {
        by: e.actor.clone(),
        at_ms: e.time_ms,
        comment,
        mfa,
        index: e.index,
    }
}

/// Folds one request's entries (in ledger order) into its row.
fn grant_row(ctx: &Ctx<'_>, id: &str, positions: &[usize], period: Period) -> Option<GrantRow> {
    let first = &ctx.entries[*positions.first()?];
    let mut r = GrantRow {
        request_id: id.to_string(),
        entitlement: String::new(),
        requester: String::new(),
        reason: String::new(),
        ticket: None,
        extends: None,
        duration_ms: None,
        requested_at_ms: None,
        break_glass: false,
        approvals: vec![],
        denials: vec![],
        refused: vec![],
        break_glass_reviews: vec![],
        approved_at_ms: None,
        activated_at_ms: None,
        planned_end_ms: None,
        ended_at_ms: None,
        outcome: Outcome::Pending,
        ended_by: None,
        end_reason: None,
        provider_error: None,
        started_before_period: first.time_ms < period.from,
        open_after_period: false,
        entries: vec![],
        problems: vec![],
    };
    let mut end_entry_time: Option<Millis> = None;
    for &pos in positions {
        let e = &ctx.entries[pos];
        r.entries.push(ctx.evidence(pos));
        let ev = match LedgerEvent::parse(&e.kind, &e.data) {
            Ok(ev) => ev,
            Err(err) => {
                r.problems.push(format!("entry {}: {err}", e.index));
                continue;
            }
        };
        use LedgerEvent as E;
        match ev {
            E::RequestCreated(c) => {
                r.entitlement = c.entitlement;
                r.requester = e.actor.clone();
                r.reason = c.reason;
                r.ticket = c.ticket;
                r.extends = c.extends;
                r.duration_ms = Some(c.duration_ms);
                r.requested_at_ms = Some(e.time_ms);
                r.break_glass |= c.break_glass;
            }
            E::RequestBreakGlass(_) => r.break_glass = true,
            E::ReviewApproved(d) => r.approvals.push(decision(e, d.comment, d.mfa.is_some())),
            E::ReviewDenied(d) => r.denials.push(decision(e, d.comment, d.mfa.is_some())),
            E::ReviewRefused(d) => {
                r.refused
                    .push(decision(e, format!("{} ({})", d.reason, d.attempt), false))
            }
            E::RequestApproved(_) => {
                r.approved_at_ms = Some(e.time_ms);
                r.outcome = Outcome::Approved;
            }
            E::RequestDenied(_) => {
                r.outcome = Outcome::Denied;
                r.ended_at_ms = Some(e.time_ms);
                end_entry_time = Some(e.time_ms);
                r.ended_by = r
                    .denials
                    .last()
                    .map(|d| d.by.clone())
                    .or_else(|| Some(e.actor.clone()));
                r.end_reason = r.denials.last().map(|d| d.comment.clone());
            }
            E::RequestCancelled(_) => {
                r.outcome = Outcome::Cancelled;
                r.ended_at_ms = Some(e.time_ms);
                end_entry_time = Some(e.time_ms);
                r.ended_by = Some(e.actor.clone());
                r.end_reason = text(&e.data, "reason");
            }
            E::RequestTimedOut(_) => {
                r.outcome = Outcome::TimedOut;
                r.ended_at_ms = Some(e.time_ms);
                end_entry_time = Some(e.time_ms);
            }
            E::GrantActivated(a) => {
                r.outcome = Outcome::Active;
                r.activated_at_ms = Some(a.activated_at);
                r.planned_end_ms = a.ends_at;
                r.break_glass |= a.break_glass;
                r.provider_error = None;
            }
            E::GrantApplyFailed(f) => {
                if r.activated_at_ms.is_none() {
                    r.outcome = Outcome::ApplyFailed;
                }
                r.provider_error = Some(f.error);
            }
            E::GrantRevokeFailed(f) => r.provider_error = Some(f.error),
            E::GrantRevokeRequested(_) => {
                r.outcome = Outcome::Revoking;
                r.ended_by = Some(e.actor.clone());
                r.end_reason = text(&e.data, "reason");
            }
            E::GrantExpiring(x) => {
                r.outcome = Outcome::Expiring;
                r.planned_end_ms = Some(x.ends_at);
            }
            E::GrantRevoked(x) => {
                r.outcome = Outcome::Revoked;
                r.ended_at_ms = Some(x.ended_at);
                end_entry_time = Some(e.time_ms);
            }
            E::GrantExpired(x) => {
                r.outcome = Outcome::Expired;
                r.ended_at_ms = Some(x.ended_at);
                end_entry_time = Some(e.time_ms);
            }
            E::BreakGlassReviewed(c) => r.break_glass_reviews.push(decision(e, c.comment, false)),
            other => r.problems.push(format!(
                "entry {}: {} is not a request entry",
                e.index,
                other.kind()
            )),
        }
    }
    if r.requested_at_ms.is_none() {
        r.problems
            .push(format!("no request.created entry for {id} in the ledger"));
    }
    let end = if r.outcome.ended() {
        end_entry_time
    } else {
        None
    };
    if !period.overlaps(first.time_ms, end) {
        return None;
    }
    r.open_after_period = end.is_none_or(|t| t > period.to);
    Some(r)
}

/// Folds one proposal's entries into its row.
fn policy_row(ctx: &Ctx<'_>, id: &str, positions: &[usize], period: Period) -> Option<PolicyRow> {
    let first = &ctx.entries[*positions.first()?];
    let mut r = PolicyRow {
        proposal: id.to_string(),
        proposer: None,
        proposed_at_ms: None,
        hash: String::new(),
        base_hash: None,
        approvals: vec![],
        outcome: PolicyOutcome::Pending,
        decided_at_ms: None,
        decided_by: None,
        started_before_period: first.time_ms < period.from,
        open_after_period: false,
        entries: vec![],
        problems: vec![],
    };
    for &pos in positions {
        let e = &ctx.entries[pos];
        r.entries.push(ctx.evidence(pos));
        let ev = match LedgerEvent::parse(&e.kind, &e.data) {
            Ok(ev) => ev,
            Err(err) => {
                r.problems.push(format!("entry {}: {err}", e.index));
                continue;
            }
        };
        use LedgerEvent as E;
        match ev {
            E::PolicyLoaded(l) => {
                r.outcome = PolicyOutcome::Loaded;
                r.proposer = Some(e.actor.clone());
                r.proposed_at_ms = Some(e.time_ms);
                r.hash = l.hash;
                r.decided_at_ms = Some(e.time_ms);
                r.decided_by = Some(e.actor.clone());
            }
            E::PolicyProposed(p) => {
                r.proposer = Some(e.actor.clone());
                r.proposed_at_ms = Some(e.time_ms);
                r.hash = p.hash;
                r.base_hash = Some(p.base_hash);
            }
            E::PolicyApproved(_) => r.approvals.push(decision(e, String::new(), false)),
            E::PolicyApplied(a) => {
                r.outcome = PolicyOutcome::Applied;
                r.decided_at_ms = Some(e.time_ms);
                r.decided_by = Some(e.actor.clone());
                if r.base_hash.is_none() {
                    r.base_hash = Some(a.previous);
                }
                if r.hash.is_empty() {
                    r.hash = a.hash;
                }
            }
            E::PolicyRejected(_) => {
                r.outcome = PolicyOutcome::Rejected;
                r.decided_at_ms = Some(e.time_ms);
                r.decided_by = Some(e.actor.clone());
            }
            other => r.problems.push(format!(
                "entry {}: {} is not a policy entry",
                e.index,
                other.kind()
            )),
        }
    }
    let end = match r.outcome {
        PolicyOutcome::Pending => None,
        _ => positions.last().map(|p| ctx.entries[*p].time_ms),
    };
    if !period.overlaps(first.time_ms, end) {
        return None;
    }
    r.open_after_period = end.is_none_or(|t| t > period.to);
    Some(r)
}

/// `key=value` of the top-level scalars of `data`, in key order, at most
/// 400 characters.
fn summary(data: &serde_json::Value) -> String {
    let Some(map) = data.as_object() else {
        return String::new();
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut parts = Vec::new();
    for k in keys {
        let v = &map[k];
        let shown = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        parts.push(format!("{k}={shown}"));
    }
    let mut s = parts.join(" ");
    if s.chars().count() > 400 {
        s = s.chars().take(399).collect::<String>() + "…";
    }
    s
}

/// Builds the report of `period` from the whole ledger (`entries`, in index
/// order) and its signed checkpoints. Pure.
pub fn build(
    entries: &[LedgerEntry],
    checkpoints: &[CheckpointInfo],
    period: Period,
) -> AccessReport {
    let (integrity, leaves, unconfirmed_from) = check(entries, checkpoints);
    let mut sizes: Vec<u64> = checkpoints.iter().map(|c| c.size).collect();
    sizes.sort_unstable();
    let ctx = Ctx {
        sizes,
        leaves,
        unconfirmed_from,
        entries,
    };
    // Subjects in order of their first entry.
    let mut requests: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut request_order: Vec<&str> = Vec::new();
    let mut proposals: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut proposal_order: Vec<&str> = Vec::new();
    let mut posture = Vec::new();
    let mut directory = Vec::new();
    let mut custody = Vec::new();
    for (pos, e) in entries.iter().enumerate() {
        let k = e.kind.as_str();
        if is_request_kind(k) {
            let v = requests.entry(e.subject.as_str()).or_default();
            if v.is_empty() {
                request_order.push(e.subject.as_str());
            }
            v.push(pos);
        } else if k.starts_with("policy.") {
            // `policy.loaded` is its own row (its subject is the hash).
            let v = proposals.entry(e.subject.as_str()).or_default();
            if v.is_empty() {
                proposal_order.push(e.subject.as_str());
            }
            v.push(pos);
        } else if period.contains(e.time_ms) {
            let row = || EventRow {
                at_ms: e.time_ms,
                kind: e.kind.clone(),
                actor: e.actor.clone(),
                subject: e.subject.clone(),
                summary: summary(&e.data),
                entry: ctx.evidence(pos),
            };
            if k.starts_with("posture.") {
                posture.push(row());
            } else if k.starts_with("directory.") {
                directory.push(row());
            } else if k.starts_with("custody.") {
                custody.push(row());
            }
        }
    }
    let grants = request_order
        .iter()
        .filter_map(|id| {
            grant_row(
                &ctx,
                id,
                requests.get(id).map_or(&[][..], Vec::as_slice),
                period,
            )
        })
        .collect();
    let policy_changes = proposal_order
        .iter()
        .filter_map(|id| {
            policy_row(
                &ctx,
                id,
                proposals.get(id).map_or(&[][..], Vec::as_slice),
                period,
            )
        })
        .collect();
    AccessReport {
        from: rfc3339(period.from),
        to: rfc3339(period.to),
        from_ms: period.from,
        to_ms: period.to,
        ledger_size: entries.len() as u64,
        latest_checkpoint: ctx.sizes.last().copied(),
        integrity,
        grants,
        policy_changes,
        posture_changes: posture,
        directory_changes: directory,
        custody,
    }
}

/// Rows read per query.
const PAGE: i64 = 10_000;

/// Reads the ledger and its checkpoints and builds the report. With
/// `verifier`, each checkpoint's signature is checked too (a checkpoint
/// that does not verify counts as not matching).
pub async fn load(
    store: &Store,
    period: Period,
    verifier: Option<&NoteVerifier>,
) -> Result<AccessReport, StoreError> {
    let mut entries: Vec<LedgerEntry> = Vec::new();
    loop {
        let from = entries.last().map_or(0, |e| e.index.saturating_add(1));
        let page = store.ledger(from, PAGE).await?;
        let n = page.len();
        entries.extend(page);
        if n < PAGE as usize {
            break;
        }
    }
    let cps: Vec<CheckpointInfo> = store
        .checkpoints()
        .await?
        .into_iter()
        .map(|c| CheckpointInfo {
            size: c.size,
            root: checkpoint_root(&c.note, c.size, verifier),
        })
        .collect();
    let mut r = build(&entries, &cps, period);
    r.integrity.signatures_checked = verifier.is_some();
    Ok(r)
}

fn checkpoint_root(note: &str, size: u64, verifier: Option<&NoteVerifier>) -> Result<Hash, String> {
    let cp = match verifier {
        Some(v) => v
            .verify_checkpoint(note)
            .map_err(|e| format!("its signed note does not verify: {e}"))?,
        None => {
            let n = twokey_ledger::checkpoint::SignedNote::parse(note)
                .map_err(|e| format!("its note does not parse: {e}"))?;
            twokey_ledger::Checkpoint::parse_body(&n.body)
                .map_err(|e| format!("its note does not parse: {e}"))?
        }
    };
    if cp.size != size {
        return Err(format!("its note is for size {}", cp.size));
    }
    Ok(cp.root)
}

fn opt_time(t: Option<Millis>) -> String {
    t.map(rfc3339).unwrap_or_default()
}

fn decisions(ds: &[Decision]) -> String {
    ds.iter()
        .map(|d| {
            let mut s = format!("{} at {}", d.by, rfc3339(d.at_ms));
            if d.mfa {
                s.push_str(" (security key)");
            }
            if !d.comment.is_empty() {
                s.push_str(": ");
                s.push_str(&d.comment);
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn indexes(es: &[Evidence]) -> String {
    es.iter()
        .map(|e| e.index.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn checkpoints_of(es: &[Evidence]) -> String {
    es.iter()
        .map(|e| e.checkpoint.map_or("-".to_string(), |c| c.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `yes` when every checkpointed entry matches, `NO` when one does not,
/// `not yet` when none is checkpointed.
fn matches_of(es: &[Evidence]) -> &'static str {
    if es.iter().any(|e| e.matches_checkpoint == Some(false)) {
        "NO"
    } else if es.iter().all(|e| e.matches_checkpoint == Some(true)) {
        "yes"
    } else if es.iter().any(|e| e.matches_checkpoint == Some(true)) {
        "partly (later entries not yet checkpointed)"
    } else {
        "not yet checkpointed"
    }
}

/// The CSV columns: one table for every section, told apart by `section`
/// (`grant`, `policy`, `posture`, `directory`, `custody`).
pub const CSV_COLUMNS: &[&str] = &[
    "section",
    "id",
    "what",
    "actor",
    "reason",
    "ticket",
    "requested_at",
    "approvals",
    "denials",
    "break_glass",
    "break_glass_reviews",
    "activated_at",
    "planned_end",
    "ended_at",
    "outcome",
    "ended_by",
    "end_reason",
    "started_before_period",
    "open_after_period",
    "ledger_indexes",
    "checkpoints",
    "matches_checkpoint",
];

/// The report as CSV (RFC 4180, header row, [`CSV_COLUMNS`]). Values are
/// written as the ledger holds them.
pub fn to_csv(r: &AccessReport) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| e.to_string();
    w.write_record(CSV_COLUMNS).map_err(err)?;
    for g in &r.grants {
        let row: [&str; 22] = [
            "grant",
            &g.request_id,
            &g.entitlement,
            &g.requester,
            &g.reason,
            g.ticket.as_deref().unwrap_or(""),
            &opt_time(g.requested_at_ms),
            &decisions(&g.approvals),
            &decisions(&g.denials),
            if g.break_glass { "yes" } else { "no" },
            &decisions(&g.break_glass_reviews),
            &opt_time(g.activated_at_ms),
            &opt_time(g.planned_end_ms),
            &opt_time(g.ended_at_ms),
            g.outcome.as_str(),
            g.ended_by.as_deref().unwrap_or(""),
            g.end_reason.as_deref().unwrap_or(""),
            if g.started_before_period { "yes" } else { "no" },
            if g.open_after_period { "yes" } else { "no" },
            &indexes(&g.entries),
            &checkpoints_of(&g.entries),
            matches_of(&g.entries),
        ];
        w.write_record(row).map_err(err)?;
    }
    for p in &r.policy_changes {
        let replaces = p
            .base_hash
            .as_deref()
            .map(|b| format!("replaces {b}"))
            .unwrap_or_default();
        let row: [&str; 22] = [
            "policy",
            &p.proposal,
            &p.hash,
            p.proposer.as_deref().unwrap_or(""),
            &replaces,
            "",
            &opt_time(p.proposed_at_ms),
            &decisions(&p.approvals),
            "",
            "",
            "",
            "",
            "",
            &opt_time(p.decided_at_ms),
            p.outcome.as_str(),
            p.decided_by.as_deref().unwrap_or(""),
            "",
            if p.started_before_period { "yes" } else { "no" },
            if p.open_after_period { "yes" } else { "no" },
            &indexes(&p.entries),
            &checkpoints_of(&p.entries),
            matches_of(&p.entries),
        ];
        w.write_record(row).map_err(err)?;
    }
    for (section, rows) in [
        ("posture", &r.posture_changes),
        ("directory", &r.directory_changes),
        ("custody", &r.custody),
    ] {
        for e in rows {
            let ev = std::slice::from_ref(&e.entry);
            let row: [&str; 22] = [
                section,
                &e.subject,
                &e.kind,
                &e.actor,
                &e.summary,
                "",
                &rfc3339(e.at_ms),
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "no",
                "no",
                &indexes(ev),
                &checkpoints_of(ev),
                matches_of(ev),
            ];
            w.write_record(row).map_err(err)?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

const PRINT_CSS: &str = r#"
body{font:13px/1.4 system-ui,sans-serif;margin:1.5rem;color:#111}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #bbb;padding:.25rem .4rem;vertical-align:top;text-align:left}
th{background:#eee}
.bad{color:#a00;font-weight:bold}.ok{color:#060}
.idx{font-family:ui-monospace,monospace;white-space:nowrap}
@media print{
 body{margin:0;font-size:9pt}
 table{page-break-inside:auto}
 tr{page-break-inside:avoid}
 thead{display:table-header-group}
 a{color:inherit;text-decoration:none}
 .noprint{display:none}
}
"#;

fn evidence_cell(es: &[Evidence]) -> maud::Markup {
    maud::html! {
        @for e in es {
            span.idx title=(format!("{} leaf {}", e.kind, e.leaf_hash)) {
                "#" (e.index) " "
                @match (e.checkpoint, e.matches_checkpoint) {
                    (Some(c), Some(true)) => { "cp " (c) }
                    (Some(c), _) => { span.bad { "cp " (c) " MISMATCH" } }
                    (None, _) => { "not yet checkpointed" }
                }
            }
            br;
        }
    }
}

fn decisions_cell(ds: &[Decision]) -> maud::Markup {
    maud::html! {
        @for d in ds {
            div {
                (d.by) " at " (rfc3339(d.at_ms))
                @if d.mfa { " (security key)" }
                @if !d.comment.is_empty() { ": " (d.comment) }
                " " span.idx { "#" (d.index) }
            }
        }
    }
}

/// The report's sections as HTML tables (every value escaped by maud), for
/// [`to_html`] and the web UI's page.
pub fn html_body(r: &AccessReport) -> maud::Markup {
    maud::html! {
        p {
            "Period " strong { (r.from) } " to " strong { (r.to) } " (both inclusive). "
            "Ledger size " (r.ledger_size) "; latest signed checkpoint "
            (r.latest_checkpoint.map_or("none".to_string(), |c| c.to_string())) "."
        }
        @if r.integrity.ok {
            p.ok { "Every checkpoint's root matches the stored entries"
                @if r.integrity.signatures_checked { " and its signature verifies" }
                "." }
        } @else {
            div.bad {
                p { "The stored entries do not match the signed checkpoints; rows marked MISMATCH cannot be relied on:" }
                ul { @for p in &r.integrity.problems { li { (p) } } }
            }
        }
        p { "Check any row: " code { "twokey audit prove INDEX --database URL --out DIR" } " then "
            code { "twokey audit verify-proof --proof DIR/proof --entry DIR/entry.json --checkpoint DIR/checkpoint --public-key KEY" } "." }
        h2 { "Grants (" (r.grants.len()) ")" }
        table {
            thead { tr {
                th { "Request" } th { "Requester" } th { "Reason / ticket" } th { "Requested" }
                th { "Approvals" } th { "Break-glass" } th { "Active" } th { "Ended" } th { "Ledger" }
            } }
            tbody {
                @for g in &r.grants {
                    tr {
                        td { (g.request_id) br; (g.entitlement)
                            @if g.started_before_period { br; em { "started before the period" } }
                            @if g.open_after_period { br; em { "open after the period" } } }
                        td { (g.requester) }
                        td { (g.reason) @if let Some(t) = &g.ticket { br; "ticket " (t) } }
                        td { (opt_time(g.requested_at_ms)) }
                        td { (decisions_cell(&g.approvals))
                            @if !g.denials.is_empty() { "Denied: " (decisions_cell(&g.denials)) }
                            @if !g.refused.is_empty() { "Refused: " (decisions_cell(&g.refused)) } }
                        td { @if g.break_glass { strong { "yes" } br; @if g.break_glass_reviews.is_empty() { span.bad { "not reviewed" } } @else { "Reviewed: " (decisions_cell(&g.break_glass_reviews)) } } @else { "no" } }
                        td { (opt_time(g.activated_at_ms)) @if let Some(p) = g.planned_end_ms { br; "until " (rfc3339(p)) } }
                        td { strong { (g.outcome.as_str()) } br; (opt_time(g.ended_at_ms))
                            @if let Some(b) = &g.ended_by { br; "by " (b) }
                            @if let Some(w) = &g.end_reason { br; "why: " (w) }
                            @if let Some(pe) = &g.provider_error { br; "provider: " (pe) } }
                        td { (evidence_cell(&g.entries))
                            @for p in &g.problems { div.bad { (p) } } }
                    }
                }
            }
        }
        h2 { "Policy changes (" (r.policy_changes.len()) ")" }
        table {
            thead { tr { th { "Proposal" } th { "Proposer" } th { "Proposed" } th { "Approvals" } th { "Outcome" } th { "Ledger" } } }
            tbody {
                @for p in &r.policy_changes {
                    tr {
                        td { (p.proposal) br; "hash " (p.hash)
                            @if let Some(b) = &p.base_hash { br; "replaces " (b) } }
                        td { (p.proposer.as_deref().unwrap_or("")) }
                        td { (opt_time(p.proposed_at_ms)) }
                        td { (decisions_cell(&p.approvals)) }
                        td { strong { (p.outcome.as_str()) } br; (opt_time(p.decided_at_ms))
                            @if let Some(b) = &p.decided_by { br; "by " (b) } }
                        td { (evidence_cell(&p.entries)) @for x in &p.problems { div.bad { (x) } } }
                    }
                }
            }
        }
        @for (title, rows) in [("Posture changes", &r.posture_changes), ("Directory changes", &r.directory_changes), ("Custody", &r.custody)] {
            h2 { (title) " (" (rows.len()) ")" }
            table {
                thead { tr { th { "When" } th { "Kind" } th { "Subject" } th { "Actor" } th { "Details" } th { "Ledger" } } }
                tbody {
                    @for e in rows {
                        tr {
                            td { (rfc3339(e.at_ms)) } td { (e.kind) } td { (e.subject) } td { (e.actor) }
                            td { (e.summary) } td { (evidence_cell(std::slice::from_ref(&e.entry))) }
                        }
                    }
                }
            }
        }
    }
}

/// The report as a standalone, printable HTML page (styles inline, a print
/// stylesheet, no script).
pub fn to_html(r: &AccessReport) -> String {
    maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "twokey access report " (r.from) " to " (r.to) }
                style { (maud::PreEscaped(PRINT_CSS)) }
            }
            body {
                h1 { "twokey access report" }
                (html_body(r))
            }
        }
    }
    .into_string()
}

/// The formats of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// [`AccessReport`] as JSON.
    #[default]
    Json,
    /// One CSV table, a `section` column.
    Csv,
    /// A printable HTML page.
    Html,
}

impl ReportFormat {
    /// `json`, `csv` or `html` (default `json`); the error names `format`.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.map(str::trim) {
            None | Some("") | Some("json") => Ok(Self::Json),
            Some("csv") => Ok(Self::Csv),
            Some("html") => Ok(Self::Html),
            Some(other) => Err(format!("format: {other:?} is not one of json, csv, html")),
        }
    }

    /// The report in this format, with its media type.
    pub fn render(self, r: &AccessReport) -> Result<(&'static str, String), String> {
        match self {
            Self::Json => serde_json::to_string_pretty(r)
                .map(|s| ("application/json", s))
                .map_err(|e| e.to_string()),
            Self::Csv => to_csv(r).map(|s| ("text/csv; charset=utf-8", s)),
            Self::Html => Ok(("text/html; charset=utf-8", to_html(r))),
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Html => "html",
        }
    }
}

/// Query of `GET /v1/reports/access`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// Start of the period, RFC 3339 (`2026-01-01T00:00:00Z`), inclusive.
    #[param(value_type = String, format = DateTime, required = true)]
    from: Option<String>,
    /// End of the period, RFC 3339, inclusive; not before `from`.
    #[param(value_type = String, format = DateTime, required = true)]
    to: Option<String>,
    /// `json` (default), `csv` or `html`.
    #[param(value_type = Option<ReportFormat>, inline)]
    format: Option<String>,
}

/// The routes of the report.
pub fn routes() -> OpenApiRouter<Arc<Broker>> {
    OpenApiRouter::new().routes(routes!(access_report))
}

/// The ledger's parameters turned into API errors.
pub fn period_error(e: PeriodError) -> ApiError {
    match e {
        PeriodError::Unparsable(m) => ApiError::BadRequest(m),
        PeriodError::Reversed(m) => ApiError::Unprocessable(m),
    }
}

/// The auditor's evidence report of a period: every request and grant, the
/// policy changes, posture, directory and custody entries, each row with its
/// ledger indexes and checkpoint (admins and auditors).
#[utoipa::path(get, path = "/v1/reports/access", tag = "ledger", params(ReportQuery),
    responses(
        (status = 200, description = "The report (JSON, CSV or printable HTML)", content(
            (AccessReport = "application/json"),
            (String = "text/csv"),
            (String = "text/html"),
        )),
        (status = 400, description = "`from` or `to` is missing or not an RFC 3339 time, or `format` is unknown", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or auditor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`from` is after `to`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn access_report(
    State(b): State<Arc<Broker>>,
    Auth(actor): Auth,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    b.require_read_all(&actor, "the access report")?;
    let missing = |name: &str| {
        ApiError::BadRequest(format!(
            "{name}: missing; give an RFC 3339 time such as 2026-01-31T00:00:00Z"
        ))
    };
    let from = q.from.as_deref().ok_or_else(|| missing("from"))?;
    let to = q.to.as_deref().ok_or_else(|| missing("to"))?;
    let period = Period::parse(from, to).map_err(period_error)?;
    let format = ReportFormat::parse(q.format.as_deref()).map_err(ApiError::BadRequest)?;
    let report = load(b.store(), period, None).await?;
    let (media, body) = format
        .render(&report)
        .map_err(|e| ApiError::Internal(format!("rendering the report: {e}")))?;
    Ok(([(header::CONTENT_TYPE, media)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use twokey_core::event as ev;

    const BOB: &str = "local|bob";
    const CAROL: &str = "local|carol";
    const ALICE: &str = "local|alice";
    const SYSTEM: &str = "local|system";

    #[derive(Default)]
    struct Log(Vec<LedgerEntry>);

    impl Log {
        fn push(&mut self, t: Millis, subject: &str, actor: &str, e: LedgerEvent) -> u64 {
            let e = e.by(actor);
            self.raw(t, subject, &e.kind, &e.actor, e.data)
        }
        fn raw(
            &mut self,
            t: Millis,
            subject: &str,
            kind: &str,
            actor: &str,
            data: serde_json::Value,
        ) -> u64 {
            let index = self.0.len() as u64;
            self.0.push(LedgerEntry {
                index,
                time_ms: t,
                kind: kind.into(),
                actor: actor.into(),
                subject: subject.into(),
                policy_hash: "policy".into(),
                data,
            });
            index
        }
        /// A request by alice.
        fn create(&mut self, t: Millis, id: &str, reason: &str, break_glass: bool) {
            self.push(
                t,
                id,
                ALICE,
                LedgerEvent::RequestCreated(ev::RequestCreated {
                    entitlement: "prod-db".into(),
                    duration_ms: 3_600_000,
                    reason: reason.into(),
                    ticket: Some("INC-7".into()),
                    break_glass,
                    extends: None,
                }),
            );
        }
        fn approve(&mut self, t: Millis, id: &str, by: &str, comment: &str) {
            self.push(
                t,
                id,
                by,
                LedgerEvent::ReviewApproved(ev::ReviewData {
                    comment: comment.into(),
                    mfa: None,
                }),
            );
            self.push(
                t,
                id,
                SYSTEM,
                LedgerEvent::RequestApproved(ev::RequestApproved {
                    approvals: 1,
                    required: 1,
                }),
            );
        }
        fn activate(&mut self, t: Millis, id: &str, break_glass: bool) {
            self.push(
                t,
                id,
                SYSTEM,
                LedgerEvent::GrantActivated(ev::GrantActivated {
                    activated_at: t,
                    ends_at: Some(t + 3_600_000),
                    break_glass,
                    approvers: vec![],
                    detail: "granted".into(),
                }),
            );
        }
        fn expire(&mut self, t: Millis, id: &str) {
            self.push(
                t,
                id,
                SYSTEM,
                LedgerEvent::GrantExpiring(ev::Expiring { ends_at: t }),
            );
            self.push(
                t + 1,
                id,
                SYSTEM,
                LedgerEvent::GrantExpired(ev::Ended {
                    ended_at: t + 1,
                    ends_at: Some(t),
                }),
            );
        }
        /// A correct checkpoint of the first `size` entries.
        fn checkpoint(&self, size: u64) -> CheckpointInfo {
            let mut f = Frontier::new();
            for e in &self.0[..size as usize] {
                f.push(e.leaf_hash());
            }
            CheckpointInfo {
                size,
                root: Ok(f.root()),
            }
        }
    }

    fn period(from: Millis, to: Millis) -> Period {
        Period { from, to }
    }

    fn grant<'a>(r: &'a AccessReport, id: &str) -> &'a GrantRow {
        r.grants
            .iter()
            .find(|g| g.request_id == id)
            .unwrap_or_else(|| panic!("no row for {id}: {:?}", r.grants))
    }

    #[test]
    fn an_approved_and_expired_grant_has_its_approver_times_and_checkpoints() {
        let mut l = Log::default();
        l.create(1_000, "req-a", "INC-7 fix the index", false); // 0
        l.approve(1_100, "req-a", BOB, "looks right"); // 1, 2
        l.activate(1_200, "req-a", false); // 3
        l.expire(5_000, "req-a"); // 4, 5
        let cps = [l.checkpoint(3), l.checkpoint(6)];
        let r = build(&l.0, &cps, period(0, 10_000));
        assert!(r.integrity.ok, "{:?}", r.integrity);
        assert_eq!(r.grants.len(), 1);
        let g = grant(&r, "req-a");
        assert_eq!(g.entitlement, "prod-db");
        assert_eq!(g.requester, ALICE);
        assert_eq!(g.reason, "INC-7 fix the index");
        assert_eq!(g.ticket.as_deref(), Some("INC-7"));
        assert_eq!(g.requested_at_ms, Some(1_000));
        assert_eq!(g.approvals.len(), 1);
        assert_eq!(g.approvals[0].by, BOB);
        assert_eq!(g.approvals[0].comment, "looks right");
        assert_eq!(g.approvals[0].at_ms, 1_100);
        assert_eq!(g.approvals[0].index, 1);
        assert_eq!(g.activated_at_ms, Some(1_200));
        assert_eq!(g.ended_at_ms, Some(5_001));
        assert_eq!(g.outcome, Outcome::Expired);
        assert!(!g.break_glass && !g.started_before_period && !g.open_after_period);
        let idx: Vec<u64> = g.entries.iter().map(|e| e.index).collect();
        assert_eq!(idx, [0, 1, 2, 3, 4, 5]);
        let cp: Vec<Option<u64>> = g.entries.iter().map(|e| e.checkpoint).collect();
        assert_eq!(cp, [Some(3), Some(3), Some(3), Some(6), Some(6), Some(6)]);
        assert!(g.entries.iter().all(|e| e.matches_checkpoint == Some(true)));
        assert_eq!(g.entries[0].leaf_hash, hex::encode(l.0[0].leaf_hash()));
        assert!(g.problems.is_empty(), "{:?}", g.problems);
    }

    #[test]
    fn boundary_grants_are_shown_whole_and_flagged_and_others_left_out() {
        let mut l = Log::default();
        // Ended before the period.
        l.create(10, "req-before", "old", false);
        l.approve(11, "req-before", BOB, "");
        l.activate(12, "req-before", false);
        l.expire(50, "req-before");
        // Started before, ends inside.
        l.create(60, "req-into", "into", false);
        l.approve(61, "req-into", BOB, "");
        l.activate(62, "req-into", false);
        l.expire(150, "req-into");
        // Active across the whole period, no entry inside it.
        l.create(70, "req-across", "across", false);
        l.approve(71, "req-across", BOB, "");
        l.activate(72, "req-across", false);
        l.expire(900, "req-across");
        // Starts inside, still active.
        l.create(180, "req-open", "open", false);
        l.approve(181, "req-open", BOB, "");
        l.activate(182, "req-open", false);
        // After the period.
        l.create(400, "req-after", "later", false);
        let r = build(&l.0, &[], period(100, 300));
        let ids: Vec<&str> = r.grants.iter().map(|g| g.request_id.as_str()).collect();
        assert_eq!(ids, ["req-into", "req-across", "req-open"]);
        let into = grant(&r, "req-into");
        assert!(into.started_before_period && !into.open_after_period);
        assert_eq!(
            into.entries.first().map(|e| e.time_ms),
            Some(60),
            "shown whole"
        );
        assert_eq!(into.outcome, Outcome::Expired);
        let across = grant(&r, "req-across");
        assert!(across.started_before_period && across.open_after_period);
        assert_eq!(
            across.outcome,
            Outcome::Expired,
            "how it ended after the period"
        );
        let open = grant(&r, "req-open");
        assert!(!open.started_before_period && open.open_after_period);
        assert_eq!(open.outcome, Outcome::Active);
        assert_eq!(open.ended_at_ms, None);
        // Not checkpointed at all.
        assert!(open
            .entries
            .iter()
            .all(|e| e.checkpoint.is_none() && e.matches_checkpoint.is_none()));
    }

    #[test]
    fn a_denied_request_says_who_denied_and_why() {
        let mut l = Log::default();
        l.create(100, "req-d", "want it", false);
        l.push(
            110,
            "req-d",
            ALICE,
            LedgerEvent::ReviewRefused(ev::Refused {
                reason: "self-approval".into(),
                attempt: "approve".into(),
            }),
        );
        l.push(
            120,
            "req-d",
            CAROL,
            LedgerEvent::ReviewDenied(ev::ReviewData {
                comment: "no ticket context".into(),
                mfa: None,
            }),
        );
        l.push(
            120,
            "req-d",
            CAROL,
            LedgerEvent::RequestDenied(ev::Empty {}),
        );
        let r = build(&l.0, &[], period(0, 1_000));
        let g = grant(&r, "req-d");
        assert_eq!(g.outcome, Outcome::Denied);
        assert_eq!(g.ended_by.as_deref(), Some(CAROL));
        assert_eq!(g.end_reason.as_deref(), Some("no ticket context"));
        assert_eq!(g.ended_at_ms, Some(120));
        assert_eq!(g.denials.len(), 1);
        assert_eq!(g.refused.len(), 1);
        assert_eq!(g.refused[0].by, ALICE);
        assert!(g.approvals.is_empty() && g.activated_at_ms.is_none());
    }

    #[test]
    fn a_break_glass_grant_carries_its_review_and_an_unreviewed_one_none() {
        let mut l = Log::default();
        for id in ["req-bg", "req-bg2"] {
            l.create(100, id, "prod down", true);
            l.push(
                100,
                id,
                ALICE,
                LedgerEvent::RequestBreakGlass(ev::BreakGlass {
                    entitlement: "prod-db".into(),
                    reason: "prod down".into(),
                }),
            );
            l.activate(101, id, true);
        }
        l.push(
            200,
            "req-bg",
            CAROL,
            LedgerEvent::BreakGlassReviewed(ev::Comment {
                comment: "justified, INC-9".into(),
            }),
        );
        let r = build(&l.0, &[], period(0, 1_000));
        let g = grant(&r, "req-bg");
        assert!(g.break_glass);
        assert!(g.approvals.is_empty());
        assert_eq!(g.break_glass_reviews.len(), 1);
        assert_eq!(g.break_glass_reviews[0].by, CAROL);
        assert_eq!(g.break_glass_reviews[0].comment, "justified, INC-9");
        assert_eq!(g.break_glass_reviews[0].index, 6);
        assert_eq!(g.outcome, Outcome::Active);
        let g2 = grant(&r, "req-bg2");
        assert!(g2.break_glass && g2.break_glass_reviews.is_empty());
    }

    #[test]
    fn a_revoked_grant_says_by_whom_and_a_departure_why() {
        let mut l = Log::default();
        l.create(100, "req-r", "r", false);
        l.approve(110, "req-r", BOB, "ok");
        l.activate(120, "req-r", false);
        l.push(
            130,
            "req-r",
            BOB,
            LedgerEvent::GrantRevokeRequested(ev::RevokeRequested { at: 130 }),
        );
        l.push(
            131,
            "req-r",
            SYSTEM,
            LedgerEvent::GrantRevoked(ev::Ended {
                ended_at: 131,
                ends_at: Some(3_600_120),
            }),
        );
        // Revoked by the directory, with the reason in the entry.
        l.create(200, "req-dep", "d", false);
        l.approve(210, "req-dep", BOB, "ok");
        l.activate(220, "req-dep", false);
        l.raw(
            230,
            "req-dep",
            "grant.revoke_requested",
            SYSTEM,
            serde_json::json!({"reason": "alice left (SCIM)", "by": "directory", "at": 230}),
        );
        let r = build(&l.0, &[], period(0, 1_000));
        let g = grant(&r, "req-r");
        assert_eq!(g.outcome, Outcome::Revoked);
        assert_eq!(g.ended_by.as_deref(), Some(BOB));
        assert_eq!(g.ended_at_ms, Some(131));
        let d = grant(&r, "req-dep");
        assert_eq!(d.outcome, Outcome::Revoking);
        assert_eq!(d.ended_by.as_deref(), Some(SYSTEM));
        assert_eq!(d.end_reason.as_deref(), Some("alice left (SCIM)"));
        assert!(d.open_after_period);
    }

    #[test]
    fn a_policy_change_has_its_proposer_approver_and_outcome() {
        let mut l = Log::default();
        l.push(
            100,
            "prop-1",
            BOB,
            LedgerEvent::PolicyProposed(ev::PolicyProposed {
                proposal: "prop-1".into(),
                hash: "new".into(),
                base_hash: "old".into(),
            }),
        );
        l.push(
            150,
            "prop-1",
            CAROL,
            LedgerEvent::PolicyApproved(ev::PolicyApproved {
                proposal: "prop-1".into(),
                hash: "new".into(),
            }),
        );
        l.push(
            150,
            "prop-1",
            CAROL,
            LedgerEvent::PolicyApplied(ev::PolicyApplied {
                proposal: "prop-1".into(),
                hash: "new".into(),
                previous: "old".into(),
            }),
        );
        l.push(
            160,
            "prop-2",
            BOB,
            LedgerEvent::PolicyProposed(ev::PolicyProposed {
                proposal: "prop-2".into(),
                hash: "other".into(),
                base_hash: "new".into(),
            }),
        );
        l.push(
            170,
            "prop-2",
            CAROL,
            LedgerEvent::PolicyRejected(ev::PolicyRejected {
                proposal: "prop-2".into(),
            }),
        );
        l.raw(
            180,
            "posture:s3.public",
            "posture.failing",
            SYSTEM,
            serde_json::json!({"check": "s3.public", "resource": "bucket-1", "before": null}),
        );
        let r = build(&l.0, &[], period(0, 1_000));
        assert_eq!(r.policy_changes.len(), 2);
        let p = &r.policy_changes[0];
        assert_eq!(p.proposer.as_deref(), Some(BOB));
        assert_eq!(p.approvals.len(), 1);
        assert_eq!(p.approvals[0].by, CAROL);
        assert_eq!(p.outcome, PolicyOutcome::Applied);
        assert_eq!(p.decided_at_ms, Some(150));
        assert_eq!(
            (p.hash.as_str(), p.base_hash.as_deref()),
            ("new", Some("old"))
        );
        assert_eq!(r.policy_changes[1].outcome, PolicyOutcome::Rejected);
        assert_eq!(r.policy_changes[1].decided_by.as_deref(), Some(CAROL));
        assert_eq!(r.posture_changes.len(), 1);
        assert_eq!(
            r.posture_changes[0].summary,
            "check=s3.public resource=bucket-1"
        );
        assert_eq!(r.posture_changes[0].entry.index, 5);
        assert!(r.grants.is_empty());
    }

    #[test]
    fn a_changed_entry_is_flagged_from_the_last_matching_checkpoint_on() {
        let mut l = Log::default();
        l.create(100, "req-1", "one", false); // 0
        l.create(101, "req-2", "two", false); // 1
        l.create(102, "req-3", "three", false); // 2
        l.create(103, "req-4", "four", false); // 3
        l.create(104, "req-5", "five", false); // 4
        let cps = [l.checkpoint(2), l.checkpoint(4)];
        // The reason of entry 2 rewritten after checkpoint 4 was signed.
        l.0[2].data["reason"] = serde_json::json!("forged");
        let r = build(&l.0, &cps, period(0, 1_000));
        assert!(!r.integrity.ok);
        assert_eq!(r.integrity.unconfirmed_from, Some(2));
        assert_eq!(r.integrity.problems.len(), 1, "{:?}", r.integrity.problems);
        let m = |id: &str| grant(&r, id).entries[0].matches_checkpoint;
        assert_eq!(m("req-1"), Some(true));
        assert_eq!(m("req-2"), Some(true));
        assert_eq!(m("req-3"), Some(false));
        assert_eq!(m("req-4"), Some(false));
        assert_eq!(m("req-5"), None, "not checkpointed");
        assert_eq!(
            grant(&r, "req-3").reason,
            "forged",
            "shown as stored, but flagged"
        );
        // A removed entry: the checkpoint covers more than the ledger holds.
        let r = build(
            &l.0[..3],
            &[l.checkpoint(2), l.checkpoint(4)],
            period(0, 1_000),
        );
        assert!(!r.integrity.ok);
        assert!(
            r.integrity.problems.iter().any(|p| p.contains("removed")),
            "{:?}",
            r.integrity.problems
        );
        // A checkpoint whose signature did not verify.
        let bad = [CheckpointInfo {
            size: 2,
            root: Err("bad signature".into()),
        }];
        let r = build(&l.0, &bad, period(0, 1_000));
        assert_eq!(r.integrity.unconfirmed_from, Some(0));
        assert_eq!(
            grant(&r, "req-1").entries[0].matches_checkpoint,
            Some(false)
        );
    }

    #[test]
    fn csv_has_one_row_per_grant_with_indexes_and_html_escapes() {
        let mut l = Log::default();
        l.create(100, "req-x", "<script>alert(1)</script>, \"quoted\"", false);
        l.approve(110, "req-x", BOB, "ok");
        l.activate(120, "req-x", false);
        let r = build(&l.0, &[l.checkpoint(2)], period(0, 1_000));
        let text = to_csv(&r).expect("csv");
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = rd
            .headers()
            .expect("header")
            .iter()
            .map(String::from)
            .collect();
        assert_eq!(header, CSV_COLUMNS);
        let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 1);
        let col = |name: &str| {
            let i = CSV_COLUMNS.iter().position(|c| *c == name).expect("column");
            rows[0][i].to_string()
        };
        assert_eq!(col("section"), "grant");
        assert_eq!(col("reason"), "<script>alert(1)</script>, \"quoted\"");
        assert_eq!(col("ledger_indexes"), "0 1 2 3");
        assert_eq!(col("checkpoints"), "2 2 - -");
        assert_eq!(
            col("matches_checkpoint"),
            "partly (later entries not yet checkpointed)"
        );
        assert_eq!(col("outcome"), "active");
        let html = to_html(&r);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("@media print"));
    }

    #[test]
    fn periods_and_formats_are_checked_with_the_parameter_named() {
        let p = Period::parse("2026-01-01T00:00:00Z", "2026-01-31T23:59:59.999+00:00").expect("ok");
        assert_eq!(p.from, 1_767_225_600_000);
        assert_eq!(rfc3339(p.from), "2026-01-01T00:00:00.000Z");
        match Period::parse("yesterday", "2026-01-31T00:00:00Z") {
            Err(PeriodError::Unparsable(m)) => assert!(m.starts_with("from:"), "{m}"),
            other => panic!("{other:?}"),
        }
        match Period::parse("2026-01-01T00:00:00Z", "2026-13-01T00:00:00Z") {
            Err(PeriodError::Unparsable(m)) => assert!(m.starts_with("to:"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Period::parse("2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"),
            Err(PeriodError::Reversed(_))
        ));
        assert_eq!(ReportFormat::parse(Some("csv")), Ok(ReportFormat::Csv));
        assert!(ReportFormat::parse(Some("xml"))
            .unwrap_err()
            .starts_with("format:"));
    }
    /// How long `build` takes on a ledger of 100,000 entries (20,000
    /// grants of five entries): `cargo test -p twokey-server --lib
    /// report::tests::build_time -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn build_time() {
        let mut l = Log::default();
        for i in 0..20_000i64 {
            let id = format!("req-{i}");
            let t = i * 1_000;
            l.create(t, &id, "load", false);
            l.approve(t + 1, &id, BOB, "ok");
            l.activate(t + 2, &id, false);
            l.push(
                t + 3,
                &id,
                SYSTEM,
                LedgerEvent::GrantExpired(ev::Ended {
                    ended_at: t + 3,
                    ends_at: Some(t + 3),
                }),
            );
        }
        let cps: Vec<CheckpointInfo> = (1..=10).map(|k| l.checkpoint(k * 10_000)).collect();
        let started = std::time::Instant::now();
        let r = build(&l.0, &cps, period(5_000_000, 6_000_000));
        let took = started.elapsed();
        assert!(r.integrity.ok);
        assert_eq!(r.grants.len(), 1_001);
        let csv = to_csv(&r).expect("csv");
        println!(
            "build over {} entries, {} checkpoints: {:?}; {} grant rows; CSV {} bytes",
            l.0.len(),
            cps.len(),
            took,
            r.grants.len(),
            csv.len()
        );
    }
}
