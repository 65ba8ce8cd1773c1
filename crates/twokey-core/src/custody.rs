//! Custody of root secrets, as the policy declares it and as the rules that
//! decide who may seal, release and open. Pure: the server passes the stored
//! facts (generation, releases so far) and commits what these functions allow.
//!
//! ```toml
//! [[custody]]
//! secret = "root-prod"            # id used by `twokey custody` and the entitlement
//! account = "222233334444"
//! kind = "password"               # password | mfa_recovery | totp_seed | console_password
//! threshold = 2                   # custodians needed to open (at least 2)
//! custodians = [
//!   { identity = "carol", recipient = "age1..." },
//!   { identity = "dave",  recipient = "age1..." },
//!   { identity = "erin",  recipient = "age1..." },
//! ]
//! held_apart_from = ["frank"]     # who holds the other part (the hardware key): never a custodian
//!
//! [[entitlement]]
//! name = "root-prod-open"
//! provider = "custody"
//! target = { secret = "root-prod" }
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::event::{self as ev, LedgerEvent};
use crate::identity::{Actor, IdentityKey};
use crate::policy::{Entitlement, Policy};
use crate::request::{DomainError, Event, Request, State};

/// The provider kind whose grants release custody secrets.
pub const PROVIDER: &str = "custody";

/// What a custody secret is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// The root user's password.
    Password,
    /// MFA recovery codes.
    MfaRecovery,
    /// The seed of a virtual (TOTP) MFA device.
    TotpSeed,
    /// The management account's console password.
    ConsolePassword,
}

impl SecretKind {
    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::MfaRecovery => "mfa_recovery",
            SecretKind::TotpSeed => "totp_seed",
            SecretKind::ConsolePassword => "console_password",
        }
    }
}

/// One custodian of a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Custodian {
    /// Policy identity name.
    pub name: String,
    /// Identity key.
    pub key: IdentityKey,
    /// Their age X25519 recipient (`age1...`): their share is sealed to it.
    pub recipient: String,
}

/// A secret under custody, from a `[[custody]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustodySecret {
    /// Id (`root-prod`).
    pub id: String,
    /// The cloud account it belongs to.
    pub account: String,
    /// What it is.
    pub kind: SecretKind,
    /// Shares needed to open it (2 or more).
    pub threshold: u32,
    /// Custodians in share order: share `i` belongs to `custodians[i - 1]`.
    pub custodians: Vec<Custodian>,
    /// Identities holding the account's other parts (the hardware key),
    /// who must not be custodians.
    pub held_apart_from: Vec<IdentityKey>,
    /// Line of the table in the policy file.
    pub line: usize,
}

impl CustodySecret {
    /// The 1-based share index of `actor`, if they are a custodian.
    pub fn slot_of(&self, actor: &Actor) -> Option<u8> {
        self.custodians
            .iter()
            .position(|c| actor.is(&c.key))
            .and_then(|i| u8::try_from(i + 1).ok())
    }

    /// The custodian at a 1-based index.
    pub fn custodian(&self, index: u8) -> Option<&Custodian> {
        self.custodians.get(usize::from(index).checked_sub(1)?)
    }

    /// Subject of this secret's ledger entries.
    pub fn subject(&self) -> String {
        format!("custody:{}", self.id)
    }
}

/// Whether an age recipient looks right (`age1` + 58 bech32 characters).
/// The custody crate parses it fully where it is used.
pub fn looks_like_age_recipient(s: &str) -> bool {
    const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    s.len() == 62 && s.starts_with("age1") && s[4..].chars().all(|c| BECH32.contains(c))
}

/// The custody secret an entitlement releases (`provider = "custody"`,
/// `target.secret`).
pub fn secret_of<'p>(policy: &'p Policy, ent: &Entitlement) -> Option<&'p CustodySecret> {
    if ent.provider != PROVIDER {
        return None;
    }
    let id = ent.target.get("secret")?.as_str()?;
    policy.custody.get(id)
}

/// The custody secret a request releases, or why it releases none.
pub fn secret_of_request<'p>(
    policy: &'p Policy,
    req: &Request,
) -> Result<&'p CustodySecret, DomainError> {
    let ent = policy
        .entitlement(&req.entitlement)
        .ok_or_else(|| DomainError::UnknownEntitlement(req.entitlement.clone()))?;
    secret_of(policy, ent).ok_or_else(|| {
        DomainError::Invalid(format!(
            "request {} is for {:?}, which is not a custody entitlement",
            req.id, req.entitlement
        ))
    })
}

/// Who may seal (or re-seal) a secret: its custodians and the policy admins.
pub fn may_seal(policy: &Policy, secret: &CustodySecret, actor: &Actor) -> Result<(), DomainError> {
    if secret.slot_of(actor).is_some() || policy.is_admin(actor) {
        Ok(())
    } else {
        Err(DomainError::Forbidden(format!(
            "only a custodian of {:?} or a policy admin may seal it",
            secret.id
        )))
    }
}

/// Checks an uploaded sealing: one envelope per custodian, in order, for the
/// next generation.
pub fn check_seal(
    secret: &CustodySecret,
    current_generation: u64,
    generation: u64,
    indexes: &[u8],
) -> Result<(), DomainError> {
    if generation != current_generation + 1 {
        return Err(DomainError::WrongState(format!(
            "{:?} is at seal generation {current_generation}; a new sealing must be generation {} (someone sealed it meanwhile: run seal again)",
            secret.id,
            current_generation + 1
        )));
    }
    let want: Vec<u8> = (1..=secret.custodians.len())
        .filter_map(|i| u8::try_from(i).ok())
        .collect();
    if indexes != want.as_slice() {
        return Err(DomainError::Invalid(format!(
            "a sealing of {:?} needs one share for each of its {} custodians, indexes 1..={}, in order",
            secret.id,
            secret.custodians.len(),
            secret.custodians.len()
        )));
    }
    Ok(())
}

/// Who may set the one-time recipient of a request: its requester, once,
/// before the grant ends.
pub fn may_set_recipient(req: &Request, actor: &Actor, already: bool) -> Result<(), DomainError> {
    if req.requester != actor.key {
        return Err(DomainError::Forbidden(
            "only the requester sets the one-time key a custody secret is released to".into(),
        ));
    }
    if already {
        return Err(DomainError::WrongState(format!(
            "request {} already has its one-time key; it cannot be changed",
            req.id
        )));
    }
    if !matches!(req.state, State::Pending | State::Approved | State::Active) {
        return Err(DomainError::WrongState(format!(
            "request {} is {}; make a new request",
            req.id,
            req.state.as_str()
        )));
    }
    Ok(())
}

/// Whether a custodian may take their share to release it for `req`: the
/// grant is active (the release window), the requester's one-time key is
/// set, the request's sealing is still the current one, and they have not
/// released for it yet. Returns their share index.
pub fn may_release(
    secret: &CustodySecret,
    req: &Request,
    actor: &Actor,
    request_generation: Option<u64>,
    current_generation: u64,
    released: &[u8],
) -> Result<u8, DomainError> {
    let index = secret.slot_of(actor).ok_or_else(|| {
        DomainError::Forbidden(format!(
            "you are not a custodian of {:?}; its custodians are {}",
            secret.id,
            secret
                .custodians
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if req.state != State::Active {
        return Err(DomainError::WrongState(format!(
            "request {} is {}: shares are released only while its grant is active (after approval)",
            req.id,
            req.state.as_str()
        )));
    }
    let generation = request_generation.ok_or_else(|| {
        DomainError::WrongState(format!(
            "request {} has no one-time key to release to (the requester runs `twokey custody request`)",
            req.id
        ))
    })?;
    if generation != current_generation {
        return Err(DomainError::WrongState(format!(
            "{:?} was sealed again (generation {current_generation}) after request {} was made (generation {generation}); make a new request",
            secret.id, req.id
        )));
    }
    if released.contains(&index) {
        return Err(DomainError::WrongState(format!(
            "you already released your share for request {}; a share counts once",
            req.id
        )));
    }
    Ok(index)
}

/// Whether `actor` may fetch the releases of `req` to open the secret: only
/// the requester, while the grant is active.
pub fn may_open(req: &Request, actor: &Actor) -> Result<(), DomainError> {
    if req.requester != actor.key {
        return Err(DomainError::Forbidden(
            "only the requester can open a released custody secret".into(),
        ));
    }
    if req.state != State::Active {
        return Err(DomainError::WrongState(format!(
            "request {} is {}: a custody secret is opened only while its grant is active",
            req.id,
            req.state.as_str()
        )));
    }
    Ok(())
}

/// The custody ledger events. All alert: a root secret being sealed,
/// released or opened is loud by design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustodyEvent {
    /// A secret was (re-)sealed.
    Sealed {
        /// Secret id.
        secret: String,
        /// New generation.
        generation: u64,
        /// Custodians it was split between.
        custodians: usize,
        /// Threshold.
        threshold: u32,
    },
    /// The requester set the one-time key of a request.
    RecipientSet {
        /// Secret id.
        secret: String,
        /// Generation the request opens.
        generation: u64,
    },
    /// A custodian released their share for a request.
    Released {
        /// Secret id.
        secret: String,
        /// Share index.
        index: u8,
        /// Releases so far, this one included.
        released: usize,
        /// Threshold.
        threshold: u32,
    },
    /// The requester fetched the releases to open the secret.
    Opened {
        /// Secret id.
        secret: String,
        /// Shares handed over.
        shares: usize,
    },
}

impl CustodyEvent {
    /// The ledger event, by `actor`.
    pub fn event(&self, actor: &IdentityKey) -> Event {
        let e = match self.clone() {
            CustodyEvent::Sealed {
                secret,
                generation,
                custodians,
                threshold,
            } => LedgerEvent::CustodySealed(ev::CustodySealed {
                secret,
                generation,
                custodians,
                threshold,
            }),
            CustodyEvent::RecipientSet { secret, generation } => {
                LedgerEvent::CustodyRecipientSet(ev::CustodyRecipientSet { secret, generation })
            }
            CustodyEvent::Released {
                secret,
                index,
                released,
                threshold,
            } => LedgerEvent::CustodyReleased(ev::CustodyReleased {
                secret,
                index,
                released,
                threshold,
                progress: format!("{released} of {threshold}"),
            }),
            CustodyEvent::Opened { secret, shares } => {
                LedgerEvent::CustodyOpened(ev::CustodyOpened { secret, shares })
            }
        };
        e.by(actor.to_string())
    }
}

/// Raw `[[custody]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCustody {
    pub(crate) secret: toml::Spanned<String>,
    pub(crate) account: String,
    pub(crate) kind: SecretKind,
    pub(crate) threshold: toml::Spanned<u32>,
    pub(crate) custodians: Vec<toml::Spanned<RawCustodian>>,
    #[serde(default)]
    pub(crate) held_apart_from: Vec<toml::Spanned<String>>,
}

/// Raw custodian entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCustodian {
    pub(crate) identity: String,
    pub(crate) recipient: String,
}

/// Whether two actors are the same person (same key or linked).
fn same_person(a: &Actor, b: &Actor) -> bool {
    a.is(&b.key) || b.is(&a.key)
}

/// Validates the custody tables; `issue(offset, message)` records a problem
/// at a byte offset of the policy file.
pub(crate) fn validate(
    raw: &[toml::Spanned<RawCustody>],
    identities: &[crate::policy::StaticIdentity],
    line_of: &dyn Fn(usize) -> usize,
    issue: &mut dyn FnMut(usize, String),
) -> std::collections::BTreeMap<String, CustodySecret> {
    let mut out = std::collections::BTreeMap::new();
    let by_name = |n: &str| identities.iter().find(|i| i.name == n);
    for t in raw {
        let r = t.get_ref();
        let id = r.secret.get_ref().clone();
        let at = r.secret.span().start;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            issue(
                at,
                format!("custody secret {id:?}: the id must be letters, digits, '-' or '_'"),
            );
        }
        if out.contains_key(&id) {
            issue(at, format!("custody secret {id:?} is declared twice"));
        }
        let mut custodians: Vec<Custodian> = Vec::new();
        let mut actors: Vec<Actor> = Vec::new();
        let mut recipients = BTreeSet::new();
        for c in &r.custodians {
            let cr = c.get_ref();
            let cat = c.span().start;
            let Some(sid) = by_name(&cr.identity) else {
                issue(
                    cat,
                    format!(
                        "custody secret {id:?}: custodian {:?} is not an identity of the policy",
                        cr.identity
                    ),
                );
                continue;
            };
            if !looks_like_age_recipient(&cr.recipient) {
                issue(cat, format!("custody secret {id:?}: custodian {:?} has recipient {:?}, which is not an age X25519 public key (age1..., from `twokey custody keygen` or `age-keygen`)", cr.identity, cr.recipient));
            }
            if !recipients.insert(cr.recipient.clone()) {
                issue(cat, format!("custody secret {id:?}: custodian {:?} has the same recipient as another custodian; each custodian needs their own key", cr.identity));
            }
            let actor = sid.actor();
            if let Some(prev) = actors.iter().find(|a| same_person(a, &actor)) {
                issue(cat, format!("custody secret {id:?}: custodian {:?} is the same person as custodian {:?} (same or linked identity); shares must be held by different people", cr.identity, prev.name));
            }
            actors.push(actor);
            custodians.push(Custodian {
                name: sid.name.clone(),
                key: sid.key.clone(),
                recipient: cr.recipient.clone(),
            });
        }
        let threshold = *r.threshold.get_ref();
        if threshold < 2 || threshold as usize > r.custodians.len() {
            issue(r.threshold.span().start, format!("custody secret {id:?}: threshold {threshold} must be at least 2 and at most its {} custodian(s): one person alone must never hold the secret", r.custodians.len()));
        }
        let mut held_apart = Vec::new();
        for h in &r.held_apart_from {
            let Some(sid) = by_name(h.get_ref()) else {
                issue(h.span().start, format!("custody secret {id:?}: held_apart_from {:?} is not an identity of the policy", h.get_ref()));
                continue;
            };
            let holder = sid.actor();
            if let Some(c) = actors.iter().find(|a| same_person(a, &holder)) {
                issue(h.span().start, format!("custody secret {id:?}: {:?} holds another part of account {} (held_apart_from) and is also a custodian{}; the parts must be held by different people", h.get_ref(), r.account, if c.name == holder.name { String::new() } else { format!(" (as {:?}, a linked identity)", c.name) }));
            }
            held_apart.push(sid.key.clone());
        }
        out.insert(
            id.clone(),
            CustodySecret {
                id,
                account: r.account.clone(),
                kind: r.kind,
                threshold,
                custodians,
                held_apart_from: held_apart,
                line: line_of(t.span().start),
            },
        );
    }
    out
}
