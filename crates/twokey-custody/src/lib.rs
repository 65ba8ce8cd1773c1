//! Split custody of root secrets (the root password of a cloud account, its
//! MFA recovery codes, a TOTP seed): Shamir M-of-N shares, each sealed to one
//! custodian's age X25519 key, released only to a one-time key of the person
//! whose request was approved.
//!
//! The server stores sealed shares and never the secret; everything readable
//! exists only on a custodian's or the requester's machine, in zeroizing
//! memory ([`RootSecret`], [`Share`]). Every envelope names what it is for
//! ([`ShareContext`], [`ReleaseContext`]) inside the authenticated age
//! payload, and opening it checks that binding, so a share from another
//! request, a replayed share, a share for someone else or a tampered share is
//! refused with a [`CustodyError`] that says which.
//!
//! - [`shamir`]: split and combine with vsss-rs (GF(2^8), constant time),
//!   the secret padded so a share does not reveal its length;
//! - [`envelope`]: the two envelopes (custodian share, release to the
//!   requester) and their checks;
//! - [`keys`]: custodian identities, recipients, and the requester's
//!   one-time identity kept in a 0600 file;
//! - [`provider`]: the `custody` provider, whose grant is the release window.

pub mod envelope;
pub mod keys;
pub mod provider;
pub mod shamir;

mod secret;

pub use envelope::{OpenedShare, ReleaseContext, ShareContext};
pub use keys::{CustodianIdentity, OneTimeKey, Recipient};
pub use secret::{RootSecret, Share};

/// Why a custody step was refused. Each names what was wrong, so a person can
/// tell an attack (a share from elsewhere) from a mistake (the wrong file).
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    /// The envelope is not encrypted to this identity.
    #[error("{what} is not encrypted to this identity ({identity}): it was sealed for someone else, or the wrong identity file was given")]
    NotForThisIdentity {
        /// Which envelope.
        what: String,
        /// The identity's public recipient.
        identity: String,
    },
    /// The envelope failed authentication: it was changed after sealing.
    #[error("{what} is damaged or was tampered with (age authentication failed: {detail})")]
    Tampered {
        /// Which envelope.
        what: String,
        /// age's reason.
        detail: String,
    },
    /// The envelope decrypted but is bound to something else.
    #[error("{what} is bound to {field} {found:?}, not {expected:?}: {why}")]
    WrongBinding {
        /// Which envelope.
        what: String,
        /// The field that differs.
        field: &'static str,
        /// What was expected.
        expected: String,
        /// What the envelope says.
        found: String,
        /// What that means.
        why: &'static str,
    },
    /// The same share index appeared twice.
    #[error(
        "share {index} was given twice (a replayed share): each custodian's share counts once"
    )]
    Replayed {
        /// The share index.
        index: u8,
    },
    /// Fewer shares than the threshold.
    #[error("{have} of {need} shares released: {need} custodians must release before the secret can be opened")]
    NotEnough {
        /// Valid shares at hand.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// Bad parameters or input (threshold, key text, secret size).
    #[error("{0}")]
    Invalid(String),
    /// The envelope plaintext is not a twokey custody envelope.
    #[error("{what} is not a twokey custody envelope: {detail}")]
    Malformed {
        /// Which envelope.
        what: String,
        /// Why.
        detail: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}
