//! The domain core of twokey: who may request what, who may approve it, and
//! how a request moves from pending to an ended grant.
//!
//! Architecture invariant: this crate does no IO. There is no clock, no
//! database, no network and no randomness here: time (`now`, Unix
//! milliseconds) and ids come in as arguments, and every decision is a plain
//! function from data to data. That is what makes the separation-of-duties
//! rules property-testable (see `tests/invariants.rs`).

pub mod activity;
pub mod custody;
pub mod event;
pub mod identity;
pub mod notify;
pub mod policy;
pub mod posture;
pub mod proposal;
pub mod reconcile;
pub mod request;
pub mod scim;
pub mod secret;
pub mod time;

pub use event::{EventKind, LedgerEvent};
pub use identity::{Actor, IdentityKey};
pub use policy::{ApprovalRule, Entitlement, Policy, PolicyError, PolicyIssue};
pub use proposal::{Proposal, ProposalState, ProposalView};
pub use request::{
    allowed_actions, Action, DomainError, EndReason, Event, MfaConfirmation, NewRequest, Request,
    Review, ReviewDecision, State,
};
pub use secret::Secret;
pub use time::Millis;
