//! Policy changes are two-person operations: an admin proposes a new policy,
//! and it takes effect only when enough *other* admins approve it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::{self as ev, LedgerEvent};
use crate::identity::{Actor, IdentityKey};
use crate::policy::Policy;
use crate::request::{DomainError, Event};
use crate::secret::{credential_changes, redact_text, CredentialChange};
use crate::time::Millis;

/// Where a proposal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    /// Waiting for approval.
    Pending,
    /// Approved and in force.
    Applied,
    /// Rejected by an admin.
    Rejected,
    /// Another proposal was applied first; this one was based on an old policy.
    Superseded,
}

/// A proposed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proposal {
    /// Id.
    pub id: String,
    /// Hash of the proposed text.
    pub hash: String,
    /// Hash of the policy in force when proposed; applying requires it still is.
    pub base_hash: String,
    /// The proposed policy text.
    pub text: String,
    /// Who proposed it.
    pub proposed_by: IdentityKey,
    /// When.
    pub created_at: Millis,
    /// Admins who approved it.
    pub approvals: Vec<IdentityKey>,
    /// State.
    pub state: ProposalState,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// A proposal as every view (API, UI, CLI) shows it: the proposed text with
/// its credentials redacted, and which credentials it changes, by path, as
/// `added`, `removed` or `changed`, never with their values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalView {
    /// Id.
    pub id: String,
    /// Hash of the proposed text (of the real text, so it still identifies it).
    pub hash: String,
    /// Hash of the policy in force when proposed.
    pub base_hash: String,
    /// The proposed text, credentials redacted.
    pub text: String,
    /// Credentials it changes compared with its base policy.
    pub credential_changes: BTreeMap<String, CredentialChange>,
    /// Who proposed it.
    pub proposed_by: IdentityKey,
    /// When.
    pub created_at: Millis,
    /// Admins who approved it.
    pub approvals: Vec<IdentityKey>,
    /// State.
    pub state: ProposalState,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Proposal {
    /// The view of this proposal; `base_text` is the text of the policy it
    /// was proposed against (when known, else every credential counts as
    /// added).
    pub fn view(&self, base_text: Option<&str>) -> ProposalView {
        ProposalView {
            id: self.id.clone(),
            hash: self.hash.clone(),
            base_hash: self.base_hash.clone(),
            text: redact_text(&self.text),
            credential_changes: credential_changes(base_text.unwrap_or(""), &self.text),
            proposed_by: self.proposed_by.clone(),
            created_at: self.created_at,
            approvals: self.approvals.clone(),
            state: self.state,
            version: self.version,
        }
    }
}

/// An admin proposes `text` (already validated into `proposed`) to replace `current`.
pub fn propose(
    current: &Policy,
    proposed: &Policy,
    actor: &Actor,
    id: &str,
    now: Millis,
) -> Result<(Proposal, Vec<Event>), DomainError> {
    if !current.is_admin(actor) {
        return Err(DomainError::Forbidden(format!(
            "only policy admins ({}) can propose a policy change",
            current.admins.groups.join(", ")
        )));
    }
    if proposed.hash == current.hash {
        return Err(DomainError::Invalid(
            "the proposed policy is identical to the one in force".into(),
        ));
    }
    let p = Proposal {
        id: id.into(),
        hash: proposed.hash.clone(),
        base_hash: current.hash.clone(),
        text: proposed.text.clone(),
        proposed_by: actor.key.clone(),
        created_at: now,
        approvals: vec![],
        state: ProposalState::Pending,
        version: 0,
    };
    let ev = LedgerEvent::PolicyProposed(ev::PolicyProposed {
        proposal: id.to_string(),
        hash: p.hash.clone(),
        base_hash: p.base_hash.clone(),
    })
    .by(actor.key.to_string());
    Ok((p, vec![ev]))
}

/// An admin other than the proposer approves. Returns `applied = true` when the
/// admin rule of the policy in force is met: the caller then swaps the policy.
pub fn approve(
    current: &Policy,
    p: &Proposal,
    actor: &Actor,
) -> Result<(Proposal, Vec<Event>, bool), DomainError> {
    if p.state != ProposalState::Pending {
        return Err(DomainError::WrongState(format!(
            "proposal {} is not pending",
            p.id
        )));
    }
    if p.base_hash != current.hash {
        return Err(DomainError::WrongState(format!(
            "proposal {} was made against policy {} but {} is now in force; propose it again",
            p.id,
            short(&p.base_hash),
            short(&current.hash)
        )));
    }
    if actor.is(&p.proposed_by) {
        return Err(DomainError::SelfApproval);
    }
    if !current.is_admin(actor) {
        return Err(DomainError::Forbidden(
            "only policy admins can approve a policy change".into(),
        ));
    }
    if p.approvals.iter().any(|k| actor.is(k)) {
        return Err(DomainError::Forbidden(
            "you have already approved this proposal".into(),
        ));
    }
    let mut next = p.clone();
    next.approvals.push(actor.key.clone());
    let distinct: BTreeSet<&IdentityKey> = next
        .approvals
        .iter()
        .filter(|k| **k != p.proposed_by)
        .collect();
    let applied = distinct.len() as u32 >= current.admins.approvals;
    let mut events = vec![LedgerEvent::PolicyApproved(ev::PolicyApproved {
        proposal: p.id.clone(),
        hash: p.hash.clone(),
    })
    .by(actor.key.to_string())];
    if applied {
        next.state = ProposalState::Applied;
        events.push(
            LedgerEvent::PolicyApplied(ev::PolicyApplied {
                proposal: p.id.clone(),
                hash: p.hash.clone(),
                previous: p.base_hash.clone(),
            })
            .by(actor.key.to_string()),
        );
    }
    Ok((next, events, applied))
}

/// An admin (the proposer included) rejects a pending proposal.
pub fn reject(
    current: &Policy,
    p: &Proposal,
    actor: &Actor,
) -> Result<(Proposal, Vec<Event>), DomainError> {
    if p.state != ProposalState::Pending {
        return Err(DomainError::WrongState(format!(
            "proposal {} is not pending",
            p.id
        )));
    }
    if !current.is_admin(actor) {
        return Err(DomainError::Forbidden(
            "only policy admins can reject a policy change".into(),
        ));
    }
    let mut next = p.clone();
    next.state = ProposalState::Rejected;
    Ok((
        next,
        vec![LedgerEvent::PolicyRejected(ev::PolicyRejected {
            proposal: p.id.clone(),
        })
        .by(actor.key.to_string())],
    ))
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}
