//! Requests, reviews and grants: the state machine and its separation-of-duties
//! checks.
//!
//! ```text
//! Pending ──approve (rule met)──▶ Approved ──provider applied──▶ Active ──end time──▶ Revoking ──confirmed──▶ Expired
//!    │                                                             └──revoke──────────▶ Revoking ──confirmed──▶ Revoked
//!    ├──deny──▶ Denied
//!    ├──cancel──▶ Cancelled
//!    └──pending timeout──▶ TimedOut
//! ```
//!
//! Every transition is a function `(&Request, inputs, now) -> Result<(Request,
//! Vec<Event>), DomainError>`: it never mutates in place, so a refused action
//! leaves nothing half-applied. The store persists the new request and its
//! events in one transaction, conditional on the version it read, which is how
//! concurrent reviews and retries can never activate a request twice.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::event::{self as ev, LedgerEvent};
use crate::identity::{Actor, IdentityKey};
use crate::policy::{Entitlement, Policy};
use crate::time::{format_duration, Millis};

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for approvals.
    Pending,
    /// Approved; the provider is applying the grant.
    Approved,
    /// The grant is in force until `ends_at`.
    Active,
    /// The grant is being removed; not ended until the provider confirms.
    Revoking,
    /// Ended at its end time, confirmed by the provider.
    Expired,
    /// Ended early, confirmed by the provider.
    Revoked,
    /// A reviewer denied it.
    Denied,
    /// The requester withdrew it.
    Cancelled,
    /// Nobody approved it in time.
    TimedOut,
}

impl State {
    /// Whether no further transition is possible.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Expired | State::Revoked | State::Denied | State::Cancelled | State::TimedOut
        )
    }

    /// Lower-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Active => "active",
            State::Revoking => "revoking",
            State::Expired => "expired",
            State::Revoked => "revoked",
            State::Denied => "denied",
            State::Cancelled => "cancelled",
            State::TimedOut => "timed_out",
        }
    }

    /// Parses [`State::as_str`] output.
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "pending" => State::Pending,
            "approved" => State::Approved,
            "active" => State::Active,
            "revoking" => State::Revoking,
            "expired" => State::Expired,
            "revoked" => State::Revoked,
            "denied" => State::Denied,
            "cancelled" => State::Cancelled,
            "timed_out" => State::TimedOut,
            _ => return None,
        })
    }
}

/// Why a grant ended or is ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Its end time came.
    Expiry,
    /// Someone revoked it early.
    Revoke,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    /// Counts towards the approval rule.
    Approve,
    /// Ends the request.
    Deny,
}

/// One review of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Review {
    /// Who reviewed.
    pub reviewer: IdentityKey,
    /// Reviewer's display name at the time.
    pub reviewer_name: String,
    /// Approve or deny.
    pub decision: ReviewDecision,
    /// Optional comment.
    pub comment: String,
    /// When.
    pub at: Millis,
}

/// A request for an entitlement, and the grant it may become.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Request {
    /// Unique id (assigned by the caller).
    pub id: String,
    /// Entitlement name.
    pub entitlement: String,
    /// Who asked.
    pub requester: IdentityKey,
    /// Requester's display name.
    pub requester_name: String,
    /// Requester's groups when asking (used by "not from the requester's team").
    pub requester_groups: BTreeSet<String>,
    /// Why.
    pub reason: String,
    /// Ticket id, when given.
    pub ticket: Option<String>,
    /// Grant length, counted from activation, ms.
    pub duration_ms: i64,
    /// When asked.
    pub created_at: Millis,
    /// When it times out if still pending.
    pub pending_until: Millis,
    /// Current state.
    pub state: State,
    /// Reviews so far, in order.
    pub reviews: Vec<Review>,
    /// Self-activated under break-glass.
    pub break_glass: bool,
    /// A break-glass grant waiting for its after-the-fact review.
    pub needs_review: bool,
    /// Who reviewed the break-glass use afterwards.
    pub break_glass_reviewed_by: Option<IdentityKey>,
    /// When the grant became active.
    pub activated_at: Option<Millis>,
    /// When the grant ends (`activated_at + duration_ms`).
    pub ends_at: Option<Millis>,
    /// Why it ended or is ending.
    pub end_reason: Option<EndReason>,
    /// Who asked for the early revoke.
    pub revoked_by: Option<IdentityKey>,
    /// When the provider confirmed the end.
    pub ended_at: Option<Millis>,
    /// The request this one extends.
    pub extends: Option<String>,
    /// Hash of the policy the request was made under.
    pub policy_hash: String,
    /// Optimistic-concurrency version: bumped by every stored transition.
    pub version: i64,
}

/// Something that happened, to be written to the ledger (and possibly alerted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Dotted kind: `request.created`, `review.approved`, `grant.activated`, ...
    pub kind: String,
    /// Who caused it (identity key string, or `twokey|system`).
    pub actor: String,
    /// Whether this event should raise an alert at once.
    pub alert: bool,
    /// Details.
    pub data: serde_json::Value,
}

impl Event {
    /// The typed event this stored one holds (see [`LedgerEvent::parse`]).
    pub fn typed(&self) -> Result<LedgerEvent, crate::event::EventParseError> {
        LedgerEvent::parse(&self.kind, &self.data)
    }
}

/// Why an action was refused. Messages are meant for the person who tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// No such entitlement.
    #[error("unknown entitlement {0:?}")]
    UnknownEntitlement(String),
    /// The input is wrong (duration, reason, ticket).
    #[error("{0}")]
    Invalid(String),
    /// The actor may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request is in a state where this action is not possible.
    #[error("{0}")]
    WrongState(String),
    /// The actor tried to approve their own request: refused, and worth an alert.
    #[error("you requested this; a different approver is required")]
    SelfApproval,
}

/// What the requester asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRequest {
    /// Entitlement name.
    pub entitlement: String,
    /// Requested duration in ms; the entitlement's default when `None`.
    pub duration_ms: Option<i64>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Ticket id.
    #[serde(default)]
    pub ticket: Option<String>,
    /// Ask for break-glass self-activation.
    #[serde(default)]
    pub break_glass: bool,
}

fn entitlement<'p>(policy: &'p Policy, name: &str) -> Result<&'p Entitlement, DomainError> {
    policy
        .entitlement(name)
        .ok_or_else(|| DomainError::UnknownEntitlement(name.into()))
}

/// Checks free text a person typed (`field` names it in the error): at most
/// `max` characters, and no control characters (NUL and the like, which
/// PostgreSQL cannot store and terminals interpret), except newline and tab
/// where `multiline` allows them.
pub fn check_text(
    field: &str,
    value: &str,
    max: usize,
    multiline: bool,
) -> Result<(), DomainError> {
    let n = value.chars().count();
    if n > max {
        return Err(DomainError::Invalid(format!(
            "{field} is {n} characters long; the policy allows at most {max}"
        )));
    }
    if let Some((i, c)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !(multiline && matches!(c, '\n' | '\t')))
    {
        return Err(DomainError::Invalid(format!(
            "{field} contains a control character (U+{:04X}) at character {}; {}",
            c as u32,
            i + 1,
            if multiline {
                "only newlines and tabs are allowed"
            } else {
                "use plain text on one line"
            }
        )));
    }
    Ok(())
}

/// Creates a request. Break-glass requests come back already `Approved`, with
/// an alerting event.
pub fn create(
    policy: &Policy,
    actor: &Actor,
    input: &NewRequest,
    id: &str,
    now: Millis,
) -> Result<(Request, Vec<Event>), DomainError> {
    let ent = entitlement(policy, &input.entitlement)?;
    if !ent.may_request(actor) {
        return Err(DomainError::Forbidden(format!(
            "you may not request {:?}: it is open to {}",
            ent.name,
            describe_requesters(ent)
        )));
    }
    let duration = input.duration_ms.unwrap_or(ent.default_duration_ms);
    if duration <= 0 {
        return Err(DomainError::Invalid(
            "duration must be longer than zero".into(),
        ));
    }
    if duration > ent.max_duration_ms {
        return Err(DomainError::Invalid(format!(
            "{} is over the maximum of {} for {:?}",
            format_duration(duration),
            format_duration(ent.max_duration_ms),
            ent.name
        )));
    }
    if input.break_glass && !ent.break_glass {
        return Err(DomainError::Forbidden(format!(
            "{:?} does not allow break-glass",
            ent.name
        )));
    }
    let reason = input.reason.trim().to_string();
    check_text("reason", &reason, policy.limits.reason, false)?;
    if let Some(t) = &input.ticket {
        check_text("ticket", t.trim(), policy.limits.reason, false)?;
    }
    if (ent.reason_required || input.break_glass) && reason.is_empty() {
        return Err(DomainError::Invalid(format!(
            "{:?} requires a reason (--reason)",
            ent.name
        )));
    }
    let ticket = input
        .ticket
        .as_ref()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if let Some(pattern) = &ent.ticket_pattern {
        match &ticket {
            None => {
                return Err(DomainError::Invalid(format!(
                    "{:?} requires a ticket id matching {pattern}",
                    ent.name
                )))
            }
            Some(t) if !pattern.is_match(t) => {
                return Err(DomainError::Invalid(format!(
                    "ticket {t:?} does not match {pattern}"
                )))
            }
            Some(_) => {}
        }
    }
    let mut req = Request {
        id: id.into(),
        entitlement: ent.name.clone(),
        requester: actor.key.clone(),
        requester_name: actor.name.clone(),
        requester_groups: actor.groups.clone(),
        reason,
        ticket,
        duration_ms: duration,
        created_at: now,
        pending_until: now.saturating_add(ent.pending_timeout_ms),
        state: State::Pending,
        reviews: vec![],
        break_glass: false,
        needs_review: false,
        break_glass_reviewed_by: None,
        activated_at: None,
        ends_at: None,
        end_reason: None,
        revoked_by: None,
        ended_at: None,
        extends: None,
        policy_hash: policy.hash.clone(),
        version: 0,
    };
    let mut events = vec![LedgerEvent::RequestCreated(ev::RequestCreated {
        entitlement: req.entitlement.clone(),
        duration_ms: duration,
        reason: req.reason.clone(),
        ticket: req.ticket.clone(),
        break_glass: input.break_glass,
        extends: None,
    })
    .by(actor.key.to_string())];
    if input.break_glass {
        req.state = State::Approved;
        req.break_glass = true;
        req.needs_review = true;
        events.push(
            LedgerEvent::RequestBreakGlass(ev::BreakGlass {
                entitlement: req.entitlement.clone(),
                reason: req.reason.clone(),
            })
            .by(actor.key.to_string()),
        );
    }
    Ok((req, events))
}

/// Creates an extension of an active grant: a new request for the same
/// entitlement that needs approval again. The current grant is untouched.
pub fn extend(
    policy: &Policy,
    actor: &Actor,
    original: &Request,
    duration_ms: Option<i64>,
    reason: &str,
    id: &str,
    now: Millis,
) -> Result<(Request, Vec<Event>), DomainError> {
    if !actor.is(&original.requester) {
        return Err(DomainError::Forbidden(
            "only the requester can extend a grant".into(),
        ));
    }
    if original.state != State::Active {
        return Err(DomainError::WrongState(format!(
            "request {} is {}; only an active grant can be extended",
            original.id,
            original.state.as_str()
        )));
    }
    let reason = if reason.trim().is_empty() {
        original.reason.clone()
    } else {
        reason.to_string()
    };
    let input = NewRequest {
        entitlement: original.entitlement.clone(),
        duration_ms,
        reason,
        ticket: original.ticket.clone(),
        break_glass: false,
    };
    let (mut req, events) = create(policy, actor, &input, id, now)?;
    req.extends = Some(original.id.clone());
    let events = events
        .into_iter()
        .map(|e| match e.typed() {
            Ok(LedgerEvent::RequestCreated(mut c)) => {
                c.extends = Some(original.id.clone());
                LedgerEvent::RequestCreated(c).by(e.actor)
            }
            _ => e,
        })
        .collect();
    Ok((req, events))
}

/// How long a verified security-key assertion stays good for the approval it
/// was made for (the WebAuthn ceremony itself is single use).
pub const MFA_MAX_AGE_MS: Millis = 120_000;

/// Proof that the approver confirmed this approval with a security key. The
/// web UI builds it only after verifying a WebAuthn assertion whose challenge
/// was issued for this session and this request; nothing else makes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaConfirmation {
    /// `webauthn`.
    pub method: String,
    /// The credential that signed the assertion (base64url).
    pub credential_id: String,
    /// The request the assertion was bound to.
    pub request_id: String,
    /// When the assertion was verified.
    pub verified_at: Millis,
}

/// Records a review. Refuses the requester, identities that already reviewed,
/// ineligible reviewers and anything not pending (or past its timeout). An
/// approval of an entitlement with `approver_mfa` is refused: it needs
/// [`review_confirmed`] with a fresh security-key confirmation.
pub fn review(
    policy: &Policy,
    req: &Request,
    actor: &Actor,
    decision: ReviewDecision,
    comment: &str,
    now: Millis,
) -> Result<(Request, Vec<Event>), DomainError> {
    review_confirmed(policy, req, actor, decision, comment, None, now)
}

/// [`review`] with an optional step-up confirmation. For an entitlement with
/// `approver_mfa`, an approval needs `mfa` bound to this request and verified
/// at most [`MFA_MAX_AGE_MS`] ago; the ledger entry records the credential.
pub fn review_confirmed(
    policy: &Policy,
    req: &Request,
    actor: &Actor,
    decision: ReviewDecision,
    comment: &str,
    mfa: Option<&MfaConfirmation>,
    now: Millis,
) -> Result<(Request, Vec<Event>), DomainError> {
    check_text("comment", comment, policy.limits.comment, true)?;
    if req.state != State::Pending {
        return Err(DomainError::WrongState(format!(
            "request {} is {}; only pending requests can be reviewed",
            req.id,
            req.state.as_str()
        )));
    }
    if now >= req.pending_until {
        return Err(DomainError::WrongState(format!(
            "request {} has timed out waiting for approval",
            req.id
        )));
    }
    if actor.is(&req.requester) {
        // Denying one's own request is not an attempt at self-approval (which
        // alerts): point the requester at cancel instead.
        if decision == ReviewDecision::Deny {
            return Err(DomainError::Forbidden(
                "you requested this; to withdraw it, cancel it (a reviewer denies)".into(),
            ));
        }
        return Err(DomainError::SelfApproval);
    }
    let ent = entitlement(policy, &req.entitlement)?;
    ent.may_approve(actor, &req.requester, &req.requester_groups)
        .map_err(DomainError::Forbidden)?;
    if req.reviews.iter().any(|r| actor.is(&r.reviewer)) {
        return Err(DomainError::Forbidden(
            "you have already reviewed this request; each identity counts once".into(),
        ));
    }
    let mfa = match (decision, ent.approver_mfa, mfa) {
        (ReviewDecision::Approve, true, None) => {
            return Err(DomainError::Forbidden(format!(
                "{:?} requires approvers to confirm with a security key (step-up MFA); approve request {} in the web UI (/ui/requests/{}), which asks for your key",
                ent.name, req.id, req.id
            )))
        }
        (ReviewDecision::Approve, true, Some(m)) => {
            if m.request_id != req.id {
                return Err(DomainError::Forbidden(format!(
                    "the security-key confirmation was made for request {}, not {}",
                    m.request_id, req.id
                )));
            }
            if m.verified_at > now || now - m.verified_at > MFA_MAX_AGE_MS {
                return Err(DomainError::Forbidden(
                    "the security-key confirmation is too old; confirm with your key again".into(),
                ));
            }
            Some(m)
        }
        _ => None,
    };
    let mut next = req.clone();
    next.reviews.push(Review {
        reviewer: actor.key.clone(),
        reviewer_name: actor.name.clone(),
        decision,
        comment: comment.to_string(),
        at: now,
    });
    let data = ev::ReviewData {
        comment: comment.to_string(),
        mfa: mfa.map(|m| ev::MfaRecord {
            method: m.method.clone(),
            credential_id: m.credential_id.clone(),
            verified_at: m.verified_at,
        }),
    };
    let mut events = vec![match decision {
        ReviewDecision::Approve => LedgerEvent::ReviewApproved(data),
        ReviewDecision::Deny => LedgerEvent::ReviewDenied(data),
    }
    .by(actor.key.to_string())];
    match decision {
        ReviewDecision::Deny => {
            next.state = State::Denied;
            next.ended_at = Some(now);
            events.push(LedgerEvent::RequestDenied(ev::Empty {}).by(actor.key.to_string()));
        }
        ReviewDecision::Approve => {
            let approvals = approvals_counted(&next);
            if approvals >= ent.approval.count as usize {
                next.state = State::Approved;
                events.push(
                    LedgerEvent::RequestApproved(ev::RequestApproved {
                        approvals,
                        required: ent.approval.count,
                    })
                    .by(actor.key.to_string()),
                );
            }
        }
    }
    Ok((next, events))
}

/// Approvals that count under the current policy: distinct, eligible, not the
/// requester. Re-derived from the reviews rather than kept as a counter, so a
/// corrupted count cannot activate anything.
///
/// Eligibility (groups, team exclusion) is checked by [`review`] when the
/// review is recorded, with the reviewer's groups at that moment.
pub fn approvals_counted(req: &Request) -> usize {
    let mut seen = BTreeSet::new();
    req.reviews
        .iter()
        .filter(|r| r.decision == ReviewDecision::Approve && r.reviewer != req.requester)
        .filter(|r| seen.insert(r.reviewer.clone()))
        .count()
}

/// The requester withdraws a pending request.
pub fn cancel(
    req: &Request,
    actor: &Actor,
    now: Millis,
) -> Result<(Request, Vec<Event>), DomainError> {
    if !actor.is(&req.requester) {
        return Err(DomainError::Forbidden(
            "only the requester can cancel a request; approvers deny".into(),
        ));
    }
    if req.state != State::Pending {
        return Err(DomainError::WrongState(format!(
            "request {} is {}; only pending requests can be cancelled (revoke an active grant)",
            req.id,
            req.state.as_str()
        )));
    }
    let mut next = req.clone();
    next.state = State::Cancelled;
    next.ended_at = Some(now);
    Ok((
        next,
        vec![LedgerEvent::RequestCancelled(ev::Empty {}).by(actor.key.to_string())],
    ))
}

/// The directory (SCIM) deactivated or deleted the requester: a pending
/// request is cancelled, an approved or active grant starts its revoke; both
/// say why. Any other state is left alone (`None`).
pub fn end_for_departure(
    req: &Request,
    reason: &str,
    now: Millis,
) -> Option<(Request, Vec<Event>)> {
    let system = crate::IdentityKey::local("system");
    let data = serde_json::json!({"reason": reason, "by": "directory", "at": now});
    let mut next = req.clone();
    let kind = match req.state {
        State::Pending => {
            next.state = State::Cancelled;
            next.ended_at = Some(now);
            "request.cancelled"
        }
        State::Approved | State::Active => {
            next.state = State::Revoking;
            next.end_reason = Some(EndReason::Revoke);
            next.revoked_by = Some(system.clone());
            "grant.revoke_requested"
        }
        _ => return None,
    };
    // The typed kinds' data plus why and by whom (extra keys a typed reader
    // ignores, so the entry still parses as its kind).
    let event = Event {
        kind: kind.into(),
        actor: system.to_string(),
        alert: false,
        data,
    };
    Some((next, vec![event]))
}

/// A pending request whose timeout has passed times out.
pub fn time_out(req: &Request, now: Millis) -> Result<(Request, Vec<Event>), DomainError> {
    if req.state != State::Pending || now < req.pending_until {
        return Err(DomainError::WrongState(format!(
            "request {} is not due to time out",
            req.id
        )));
    }
    let mut next = req.clone();
    next.state = State::TimedOut;
    next.ended_at = Some(now);
    Ok((
        next,
        vec![LedgerEvent::RequestTimedOut(ev::Empty {}).by(Actor::system().key.to_string())],
    ))
}

/// The provider applied the grant: it becomes active, and its duration starts
/// now (not at request time).
pub fn activate(
    req: &Request,
    now: Millis,
    detail: &str,
) -> Result<(Request, Vec<Event>), DomainError> {
    if req.state != State::Approved {
        return Err(DomainError::WrongState(format!(
            "request {} is {}; only approved requests can be activated",
            req.id,
            req.state.as_str()
        )));
    }
    let mut next = req.clone();
    next.state = State::Active;
    next.activated_at = Some(now);
    next.ends_at = Some(now.saturating_add(req.duration_ms));
    let approvers: Vec<String> = req
        .reviews
        .iter()
        .filter(|r| r.decision == ReviewDecision::Approve)
        .map(|r| r.reviewer.to_string())
        .collect();
    Ok((
        next.clone(),
        vec![LedgerEvent::GrantActivated(ev::GrantActivated {
            activated_at: now,
            ends_at: next.ends_at,
            break_glass: req.break_glass,
            approvers,
            detail: detail.to_string(),
        })
        .by(Actor::system().key.to_string())],
    ))
}

/// Someone asks to end an active grant early. The requester may give up their
/// own grant; otherwise an eligible approver or a policy admin must do it.
pub fn begin_revoke(
    policy: &Policy,
    req: &Request,
    actor: &Actor,
    now: Millis,
) -> Result<(Request, Vec<Event>), DomainError> {
    if !matches!(req.state, State::Active | State::Approved) {
        return Err(DomainError::WrongState(format!(
            "request {} is {}; only an active grant can be revoked",
            req.id,
            req.state.as_str()
        )));
    }
    if !actor.is(&req.requester) && !policy.is_admin(actor) {
        let ent = entitlement(policy, &req.entitlement)?;
        if !actor.in_any(&ent.approval.from) {
            return Err(DomainError::Forbidden(format!(
                "only the requester, an approver of {:?} or a policy admin can revoke",
                req.entitlement
            )));
        }
    }
    let mut next = req.clone();
    next.state = State::Revoking;
    next.end_reason = Some(EndReason::Revoke);
    next.revoked_by = Some(actor.key.clone());
    Ok((
        next,
        vec![
            LedgerEvent::GrantRevokeRequested(ev::RevokeRequested { at: now })
                .by(actor.key.to_string()),
        ],
    ))
}

/// The scheduler found an active grant at or past its end time.
pub fn begin_expiry(req: &Request, now: Millis) -> Result<(Request, Vec<Event>), DomainError> {
    match (req.state, req.ends_at) {
        (State::Active, Some(end)) if now >= end => {
            let mut next = req.clone();
            next.state = State::Revoking;
            next.end_reason = Some(EndReason::Expiry);
            Ok((
                next,
                vec![LedgerEvent::GrantExpiring(ev::Expiring { ends_at: end })
                    .by(Actor::system().key.to_string())],
            ))
        }
        _ => Err(DomainError::WrongState(format!(
            "request {} is not due to expire",
            req.id
        ))),
    }
}

/// The provider confirmed the grant's access is gone.
pub fn confirm_ended(req: &Request, now: Millis) -> Result<(Request, Vec<Event>), DomainError> {
    if req.state != State::Revoking {
        return Err(DomainError::WrongState(format!(
            "request {} is not being revoked",
            req.id
        )));
    }
    let mut next = req.clone();
    next.ended_at = Some(now);
    let ended = ev::Ended {
        ended_at: now,
        ends_at: req.ends_at,
    };
    let event = match req.end_reason {
        Some(EndReason::Revoke) => {
            next.state = State::Revoked;
            LedgerEvent::GrantRevoked(ended)
        }
        _ => {
            next.state = State::Expired;
            LedgerEvent::GrantExpired(ended)
        }
    };
    Ok((next, vec![event.by(Actor::system().key.to_string())]))
}

/// A second person reviews a break-glass use after the fact.
pub fn review_break_glass(
    policy: &Policy,
    req: &Request,
    actor: &Actor,
    comment: &str,
) -> Result<(Request, Vec<Event>), DomainError> {
    check_text("comment", comment, policy.limits.comment, true)?;
    if !req.needs_review {
        return Err(DomainError::WrongState(format!(
            "request {} does not need a break-glass review",
            req.id
        )));
    }
    if actor.is(&req.requester) {
        return Err(DomainError::SelfApproval);
    }
    let ent = entitlement(policy, &req.entitlement)?;
    if !policy.is_admin(actor) {
        ent.may_approve(actor, &req.requester, &req.requester_groups)
            .map_err(DomainError::Forbidden)?;
    }
    let mut next = req.clone();
    next.needs_review = false;
    next.break_glass_reviewed_by = Some(actor.key.clone());
    Ok((
        next,
        vec![LedgerEvent::BreakGlassReviewed(ev::Comment {
            comment: comment.to_string(),
        })
        .by(actor.key.to_string())],
    ))
}

/// Whether `actor` may read `req` (its reason, reviews and timeline): the
/// requester (any of their linked identities), whoever may review it under
/// the entitlement's approval rule, and the admins and auditors. The API and
/// the UI ask this; they hold no read rule of their own.
pub fn may_read(policy: &Policy, actor: &Actor, req: &Request) -> bool {
    actor.is(&req.requester)
        || policy.may_read_all(actor)
        || policy.entitlement(&req.entitlement).is_some_and(|e| {
            e.may_approve(actor, &req.requester, &req.requester_groups)
                .is_ok()
        })
}

/// Something a person can do to a request: the web UI's buttons and the
/// CLI's hints come from [`allowed_actions`], never from rules of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Approve a pending request.
    Approve,
    /// Deny a pending request.
    Deny,
    /// Withdraw one's own pending request.
    Cancel,
    /// End an approved or active grant early.
    Revoke,
    /// Ask for more time on one's own active grant (a new request).
    Extend,
    /// Mark a break-glass use reviewed.
    ReviewBreakGlass,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 6] = [
        Action::Approve,
        Action::Deny,
        Action::Cancel,
        Action::Revoke,
        Action::Extend,
        Action::ReviewBreakGlass,
    ];

    /// The name in URLs and the CLI (`approve`, `review-break-glass`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Deny => "deny",
            Action::Cancel => "cancel",
            Action::Revoke => "revoke",
            Action::Extend => "extend",
            Action::ReviewBreakGlass => "review-break-glass",
        }
    }

    /// The action of a name.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What `actor` may do to `req` at `now`, by the rules the transitions
/// ([`review_confirmed`], [`cancel`], [`begin_revoke`], [`extend`],
/// [`review_break_glass`]) enforce; `tests/invariants.rs` holds the two to
/// each other over random histories. An approval of an entitlement with
/// `approver_mfa` is listed: it still needs a security-key confirmation.
/// Input that can be wrong (a comment too long, an extension over the
/// maximum) is the transition's to refuse.
pub fn allowed_actions(
    policy: &Policy,
    req: &Request,
    actor: &Actor,
    now: Millis,
) -> BTreeSet<Action> {
    let mut out = BTreeSet::new();
    let mine = actor.is(&req.requester);
    let ent = policy.entitlement(&req.entitlement);
    let eligible = ent.is_some_and(|e| {
        e.may_approve(actor, &req.requester, &req.requester_groups)
            .is_ok()
    });
    let reviewed = req.reviews.iter().any(|r| actor.is(&r.reviewer));
    if req.state == State::Pending && now < req.pending_until && !mine && eligible && !reviewed {
        out.insert(Action::Approve);
        out.insert(Action::Deny);
    }
    if req.state == State::Pending && mine {
        out.insert(Action::Cancel);
    }
    if matches!(req.state, State::Active | State::Approved)
        && (mine || policy.is_admin(actor) || ent.is_some_and(|e| actor.in_any(&e.approval.from)))
    {
        out.insert(Action::Revoke);
    }
    if req.state == State::Active && mine && ent.is_some_and(|e| e.may_request(actor)) {
        out.insert(Action::Extend);
    }
    if req.needs_review && !mine && ent.is_some() && (eligible || policy.is_admin(actor)) {
        out.insert(Action::ReviewBreakGlass);
    }
    out
}

/// When the scheduler next has something to do for this request, if ever
/// (`Some(0)`: as soon as possible).
pub fn next_due(req: &Request) -> Option<Millis> {
    match req.state {
        State::Pending => Some(req.pending_until),
        State::Approved | State::Revoking => Some(0),
        State::Active => req.ends_at,
        _ => None,
    }
}

fn describe_requesters(ent: &Entitlement) -> String {
    let mut parts: Vec<String> = ent
        .requester_groups
        .iter()
        .map(|g| format!("group {g}"))
        .collect();
    parts.extend(ent.requester_identities.iter().map(|k| k.subject.clone()));
    if parts.is_empty() {
        "nobody".into()
    } else {
        parts.join(", ")
    }
}
