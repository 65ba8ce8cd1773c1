//! Secret material as types that wipe themselves and never print.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A root secret in memory (a password, recovery codes, a TOTP seed). Wiped
/// on drop; `Debug` prints only its length.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootSecret(Vec<u8>);

impl RootSecret {
    /// Takes ownership of the bytes (the caller's buffer is moved, not copied).
    pub fn new(bytes: Vec<u8>) -> RootSecret {
        RootSecret(bytes)
    }

    /// Reads a secret from text typed or piped in: the trailing newline is
    /// not part of it. The input is wiped.
    pub fn from_input(mut text: String) -> RootSecret {
        let keep = text.trim_end_matches(['\n', '\r']).len();
        let bytes = text.as_bytes()[..keep].to_vec();
        text.zeroize();
        RootSecret(bytes)
    }

    /// The bytes, for the one place that needs them (printing to the
    /// requester, splitting).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for RootSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootSecret(<{} bytes redacted>)", self.0.len())
    }
}

/// One Shamir share: a position (1-based, the custodian's place in the
/// policy's list) and the share bytes (vsss-rs format: identifier byte, then
/// the padded secret's length in bytes). Wiped on drop; never printed.
#[derive(Clone, ZeroizeOnDrop)]
pub struct Share {
    /// 1-based position among the secret's custodians.
    #[zeroize(skip)]
    pub index: u8,
    pub(crate) bytes: Zeroizing<Vec<u8>>,
}

impl Share {
    /// A share from its parts (as carried in an envelope).
    pub fn new(index: u8, bytes: Vec<u8>) -> Share {
        Share {
            index,
            bytes: Zeroizing::new(bytes),
        }
    }

    /// The share bytes.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Share({}, <redacted>)", self.index)
    }
}
