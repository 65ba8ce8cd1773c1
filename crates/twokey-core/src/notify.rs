//! Who is told what when a request moves: the approvers of a new request,
//! the requester of every decision, and the other approvers once someone has
//! decided. Pure: the broker passes the people it knows and sends the result.
//!
//! The requester is never among the approvers told to approve (eligibility is
//! [`Entitlement::may_approve`], which refuses the requester and every
//! identity linked to them).

use serde::{Deserialize, Serialize};

use crate::event::EventKind;
use crate::identity::{Actor, IdentityKey};
use crate::policy::{Entitlement, Policy};
use crate::request::Request;

/// Whether an entry of this kind is worth a notification
/// ([`EventKind::notifies`]; a kind this build does not know is not).
pub fn is_notification(kind: &str) -> bool {
    EventKind::parse(kind).is_some_and(EventKind::notifies)
}

/// Someone who can be told: an identity with its groups and links (as the
/// broker refreshed it) and an email address, if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Who.
    pub actor: Actor,
    /// Where email goes.
    pub email: Option<String>,
}

/// A recipient of a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Identity key.
    pub key: IdentityKey,
    /// Display name.
    pub name: String,
    /// Email address, if known.
    pub email: Option<String>,
}

/// What a notice asks of its recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A new request that the recipients may approve.
    ApprovalNeeded,
    /// A decision about the recipient's own request.
    Decision,
    /// Another approver decided a request the recipients could review.
    DecidedByOther,
}

impl NoticeKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::ApprovalNeeded => "approval_needed",
            NoticeKind::Decision => "decision",
            NoticeKind::DecidedByOther => "decided_by_other",
        }
    }
}

/// One message to a set of people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// What it is.
    pub kind: NoticeKind,
    /// Who gets it (never empty).
    pub to: Vec<Recipient>,
    /// One line (an email subject).
    pub title: String,
    /// The message, ending with the link.
    pub text: String,
    /// The request page.
    pub link: String,
}

fn recipient(p: &Person) -> Recipient {
    Recipient {
        key: p.actor.key.clone(),
        name: p.actor.name.clone(),
        email: p.email.clone(),
    }
}

/// People who may approve `req` now (never the requester or their links).
pub fn eligible_approvers<'a>(
    ent: &Entitlement,
    req: &Request,
    people: &'a [Person],
) -> Vec<&'a Person> {
    people
        .iter()
        .filter(|p| {
            ent.may_approve(&p.actor, &req.requester, &req.requester_groups)
                .is_ok()
        })
        .collect()
}

/// Drops repeated keys and repeated email addresses (one person with a static
/// identity and a linked SSO subject gets one message).
fn dedup(mut v: Vec<Recipient>) -> Vec<Recipient> {
    let mut keys = std::collections::BTreeSet::new();
    let mut mails = std::collections::BTreeSet::new();
    v.retain(|r| {
        keys.insert(r.key.clone())
            && match &r.email {
                Some(m) => mails.insert(m.to_ascii_lowercase()),
                None => true,
            }
    });
    v
}

/// The notices for one ledger entry about `req` (`kind` and the `actor` key
/// string of the entry). `link` is the request page in the web UI.
pub fn plan(
    policy: &Policy,
    req: &Request,
    kind: &str,
    actor: &str,
    people: &[Person],
    link: &str,
) -> Vec<Notice> {
    let ent = policy.entitlement(&req.entitlement);
    let requester: Vec<Recipient> = dedup(
        people
            .iter()
            .filter(|p| p.actor.is(&req.requester) || p.actor.key == req.requester)
            .map(recipient)
            .collect(),
    );
    let actor_name = if actor == req.requester.to_string() {
        req.requester_name.clone()
    } else {
        req.reviews
            .iter()
            .rev()
            .find(|v| v.reviewer.to_string() == actor)
            .map(|v| v.reviewer_name.clone())
            .or_else(|| {
                people
                    .iter()
                    .find(|p| p.actor.key.to_string() == actor)
                    .map(|p| p.actor.name.clone())
            })
            .unwrap_or_else(|| {
                if actor.ends_with("|system") {
                    "twokey".into()
                } else {
                    actor.to_string()
                }
            })
    };
    let what = format!(
        "{} for {} by {}",
        req.id, req.entitlement, req.requester_name
    );
    let details = format!(
        "Entitlement: {}\nRequester: {}\nReason: {}\nTicket: {}\nDuration: {}",
        req.entitlement,
        req.requester_name,
        req.reason,
        req.ticket.as_deref().unwrap_or("-"),
        crate::time::format_duration(req.duration_ms)
    );
    let mut out = Vec::new();
    let mut push = |kind: NoticeKind, to: Vec<Recipient>, title: String, body: String| {
        if !to.is_empty() {
            out.push(Notice {
                kind,
                to,
                text: format!("{body}\n\n{details}\n\nOpen the request: {link}"),
                title,
                link: link.to_string(),
            });
        }
    };
    match kind {
        "request.created" => {
            let Some(ent) = ent else { return vec![] };
            let to = dedup(
                eligible_approvers(ent, req, people)
                    .into_iter()
                    .map(recipient)
                    .collect(),
            );
            if req.break_glass {
                push(
                    NoticeKind::ApprovalNeeded,
                    to,
                    format!("Break-glass: {what} needs your review afterwards"),
                    format!("{} activated {} without approval (break-glass). Review the use afterwards.", req.requester_name, req.entitlement),
                );
            } else {
                let mfa = if ent.approver_mfa {
                    " Approving needs your security key."
                } else {
                    ""
                };
                push(
                    NoticeKind::ApprovalNeeded,
                    to,
                    format!("Approval needed: {what}"),
                    format!(
                        "{} asks for {} and needs {} approval(s). You may approve or deny it.{mfa}",
                        req.requester_name, req.entitlement, ent.approval.count
                    ),
                );
            }
        }
        "review.approved" | "review.denied" => {
            let Some(ent) = ent else { return vec![] };
            let verb = if kind == "review.approved" {
                "approved"
            } else {
                "denied"
            };
            let to = dedup(
                eligible_approvers(ent, req, people)
                    .into_iter()
                    .filter(|p| p.actor.key.to_string() != actor)
                    .filter(|p| !p.actor.links.iter().any(|l| l.to_string() == actor))
                    .map(recipient)
                    .collect(),
            );
            push(
                NoticeKind::DecidedByOther,
                to,
                format!("{actor_name} {verb} {what}"),
                format!(
                    "{actor_name} {verb} the request; it is now {}.",
                    req.state.as_str()
                ),
            );
        }
        "request.approved" | "request.denied" | "request.timed_out" | "grant.activated"
        | "grant.expired" | "grant.revoked" => {
            let (title, body) = match kind {
                "request.approved" => (
                    format!("Approved: your request {} for {}", req.id, req.entitlement),
                    "Your request was approved; the grant is being applied.".to_string(),
                ),
                "request.denied" => (
                    format!("Denied: your request {} for {}", req.id, req.entitlement),
                    format!("{actor_name} denied your request."),
                ),
                "request.timed_out" => (
                    format!("Timed out: your request {} for {}", req.id, req.entitlement),
                    "Nobody approved your request in time.".to_string(),
                ),
                "grant.activated" => (
                    format!("Active: your grant {} for {}", req.id, req.entitlement),
                    format!(
                        "Your grant is active for {}, counted from now.",
                        crate::time::format_duration(req.duration_ms)
                    ),
                ),
                "grant.expired" => (
                    format!("Expired: your grant {} for {}", req.id, req.entitlement),
                    "Your grant reached its end time and was removed.".to_string(),
                ),
                _ => (
                    format!("Revoked: your grant {} for {}", req.id, req.entitlement),
                    "Your grant was revoked early and has been removed.".to_string(),
                ),
            };
            push(NoticeKind::Decision, requester, title, body);
        }
        _ => {}
    }
    out
}
