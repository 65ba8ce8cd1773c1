//! Identities. Separation of duties compares identity keys (issuer + subject),
//! never display names or email addresses: one person with two email
//! addresses at the same issuer is still one subject, and two issuers are two
//! identities.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The stable key of an identity: the issuer that vouches for it and the
/// subject it assigned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityKey {
    /// Who vouches for the identity: an OIDC issuer URL, or `twokey` for
    /// identities defined in the policy file.
    pub issuer: String,
    /// The issuer's stable subject id.
    pub subject: String,
}

impl IdentityKey {
    /// Parses `issuer|subject` (the issuer may itself contain `|`-free URLs).
    pub fn parse(s: &str) -> Option<Self> {
        let (issuer, subject) = s.rsplit_once('|')?;
        (!issuer.is_empty() && !subject.is_empty()).then(|| Self {
            issuer: issuer.into(),
            subject: subject.into(),
        })
    }

    /// Issuer used for identities declared in the policy file.
    pub const STATIC_ISSUER: &'static str = "twokey";

    /// A key for an identity declared in the policy file.
    pub fn local(subject: impl Into<String>) -> Self {
        Self {
            issuer: Self::STATIC_ISSUER.into(),
            subject: subject.into(),
        }
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.issuer, self.subject)
    }
}

/// An authenticated caller: the identity plus what the authenticator said
/// about it (display name, groups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    /// The stable key.
    pub key: IdentityKey,
    /// Short display name (`alice`); for people, never for decisions.
    pub name: String,
    /// Group names.
    pub groups: BTreeSet<String>,
    /// Other identity keys of the same person (declared in the policy with
    /// `links`). Separation of duties treats all of them as one person: none
    /// may approve a request made by another, and they count once together.
    #[serde(default)]
    pub links: BTreeSet<IdentityKey>,
}

impl Actor {
    /// The scheduler and other automatic actions.
    pub fn system() -> Self {
        Self {
            key: IdentityKey {
                issuer: "twokey".into(),
                subject: "system".into(),
            },
            name: "system".into(),
            groups: BTreeSet::new(),
            links: BTreeSet::new(),
        }
    }

    /// Whether `key` is this actor or one of its linked identities.
    pub fn is(&self, key: &IdentityKey) -> bool {
        &self.key == key || self.links.contains(key)
    }

    /// Whether the actor is in any of `groups`.
    pub fn in_any(&self, groups: &[String]) -> bool {
        groups.iter().any(|g| self.groups.contains(g))
    }
}
