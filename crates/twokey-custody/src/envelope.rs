//! The two envelopes a share travels in, both age files whose authenticated
//! payload carries the share *and* what it is bound to:
//!
//! - a **custodian share** (sealed at `twokey custody seal`, stored by the
//!   server): secret id, seal generation, share index, custodian identity and
//!   the recipient it is sealed to;
//! - a **release** (made by a custodian at `twokey custody release`, stored
//!   by the server until the requester opens it): the same plus the request
//!   id and the requester's one-time recipient.
//!
//! Opening checks every field against what the opener expects. age's
//! ChaCha20-Poly1305 payload and header MAC make a changed byte fail
//! authentication, so a binding cannot be edited; a share lifted from
//! another request, another sealing or another custodian's slot decrypts
//! (or not) to a binding that does not match and is refused by name.
//!
//! What this does not do: age is not signed, so anyone who knows a
//! recipient's public key can seal *some* share to it. A forged share makes
//! the combination fail (the padding check in [`crate::shamir`]) rather than
//! yield a chosen secret only with negligible probability for random data;
//! a malicious server replacing every share is a denial of service, visible
//! in the ledger, not a disclosure.

use std::collections::BTreeSet;

use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::{CustodianIdentity, Recipient};
use crate::{CustodyError, RootSecret, Share};

const SHARE_PURPOSE: &str = "twokey-custody/share/v1";
const RELEASE_PURPOSE: &str = "twokey-custody/release/v1";

/// What a custodian share is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareContext {
    /// The custody secret id from the policy.
    pub secret: String,
    /// Seal generation (1 for the first sealing, +1 for each re-sealing).
    pub generation: u64,
    /// 1-based share index: the custodian's place in the policy.
    pub index: u8,
    /// The custodian's identity key, `issuer|subject`.
    pub custodian: String,
    /// The custodian's age recipient the share is sealed to.
    pub recipient: String,
}

/// What a release (a share re-sealed to the requester) is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseContext {
    /// The request this release is for.
    pub request: String,
    /// The custody secret id.
    pub secret: String,
    /// Seal generation.
    pub generation: u64,
    /// Share index.
    pub index: u8,
    /// The custodian who released it.
    pub custodian: String,
    /// The requester's one-time recipient it is sealed to.
    pub to: String,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct SharePlain {
    purpose: String,
    #[zeroize(skip)]
    context: ShareContext,
    share: String,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct ReleasePlain {
    purpose: String,
    #[zeroize(skip)]
    context: ReleaseContext,
    share: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn encrypt(to: &Recipient, plain: &[u8]) -> Result<Vec<u8>, CustodyError> {
    age::encrypt(&to.0, plain)
        .map_err(|e| CustodyError::Invalid(format!("age encryption failed: {e}")))
}

fn decrypt(
    what: &str,
    identity: &CustodianIdentity,
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
    match age::decrypt(&identity.0, envelope) {
        Ok(p) => Ok(Zeroizing::new(p)),
        Err(age::DecryptError::NoMatchingKeys) => Err(CustodyError::NotForThisIdentity {
            what: what.into(),
            identity: identity.recipient().to_string(),
        }),
        Err(e) => Err(CustodyError::Tampered {
            what: what.into(),
            detail: e.to_string(),
        }),
    }
}

fn check<T: PartialEq + std::fmt::Debug>(
    what: &str,
    field: &'static str,
    expected: T,
    found: T,
    why: &'static str,
) -> Result<(), CustodyError> {
    if expected == found {
        Ok(())
    } else {
        Err(CustodyError::WrongBinding {
            what: what.into(),
            field,
            expected: format!("{expected:?}").trim_matches('"').into(),
            found: format!("{found:?}").trim_matches('"').into(),
            why,
        })
    }
}

fn decode_share(what: &str, index: u8, text: &str) -> Result<Share, CustodyError> {
    let bytes = b64().decode(text).map_err(|e| CustodyError::Malformed {
        what: what.into(),
        detail: format!("share is not base64: {e}"),
    })?;
    Ok(Share::new(index, bytes))
}

/// Seals one custodian's share to their recipient (`ctx.recipient`).
pub fn seal_share(share: &Share, ctx: &ShareContext) -> Result<Vec<u8>, CustodyError> {
    let to = Recipient::parse(&ctx.recipient, &ctx.custodian)?;
    if share.index != ctx.index {
        return Err(CustodyError::Invalid(format!(
            "share {} cannot be sealed as share {}",
            share.index, ctx.index
        )));
    }
    let plain = SharePlain {
        purpose: SHARE_PURPOSE.into(),
        context: ctx.clone(),
        share: b64().encode(share.expose()),
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&plain).map_err(|e| CustodyError::Invalid(e.to_string()))?,
    );
    encrypt(&to, &json)
}

/// Opens a custodian's own share with their identity, checking it is the
/// share the server says it is (`expected`) and sealed to this identity.
pub fn open_share(
    envelope: &[u8],
    identity: &CustodianIdentity,
    expected: &ShareContext,
) -> Result<Share, CustodyError> {
    let what = format!("share {} of {:?}", expected.index, expected.secret);
    let mine = identity.recipient().to_string();
    if expected.recipient != mine {
        return Err(CustodyError::NotForThisIdentity {
            what: format!("{what} (sealed to {})", expected.recipient),
            identity: mine,
        });
    }
    let json = decrypt(&what, identity, envelope)?;
    let plain: SharePlain = serde_json::from_slice(&json).map_err(|e| CustodyError::Malformed {
        what: what.clone(),
        detail: e.to_string(),
    })?;
    check(
        &what,
        "purpose",
        SHARE_PURPOSE,
        plain.purpose.as_str(),
        "this is not a custodian share",
    )?;
    let c = &plain.context;
    check(
        &what,
        "secret",
        &expected.secret,
        &c.secret,
        "it belongs to another secret",
    )?;
    check(
        &what,
        "generation",
        expected.generation,
        c.generation,
        "it is from another sealing (an old or replayed share)",
    )?;
    check(
        &what,
        "index",
        expected.index,
        c.index,
        "it is another custodian's slot",
    )?;
    check(
        &what,
        "custodian",
        &expected.custodian,
        &c.custodian,
        "it was sealed for another custodian",
    )?;
    check(
        &what,
        "recipient",
        &mine,
        &c.recipient,
        "it was sealed for another recipient",
    )?;
    decode_share(&what, c.index, &plain.share)
}

/// Re-seals a custodian's share to the requester's one-time recipient
/// (`ctx.to`) for one request.
pub fn seal_release(share: &Share, ctx: &ReleaseContext) -> Result<Vec<u8>, CustodyError> {
    let to = Recipient::parse(&ctx.to, "the requester's one-time key")?;
    if share.index != ctx.index {
        return Err(CustodyError::Invalid(format!(
            "share {} cannot be released as share {}",
            share.index, ctx.index
        )));
    }
    let plain = ReleasePlain {
        purpose: RELEASE_PURPOSE.into(),
        context: ctx.clone(),
        share: b64().encode(share.expose()),
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&plain).map_err(|e| CustodyError::Invalid(e.to_string()))?,
    );
    encrypt(&to, &json)
}

/// What the requester expects every release of their request to be bound to.
#[derive(Debug, Clone)]
pub struct ReleaseExpectation {
    /// Their request.
    pub request: String,
    /// The secret it opens.
    pub secret: String,
    /// The generation sealed when the request was made.
    pub generation: u64,
    /// The secret's custodians in policy order (identity keys): share `i`
    /// must come from `custodians[i - 1]`.
    pub custodians: Vec<String>,
    /// Shares needed.
    pub threshold: usize,
}

/// One release, opened and checked.
#[derive(Debug)]
pub struct OpenedShare {
    /// The share.
    pub share: Share,
    /// Who released it.
    pub custodian: String,
}

/// Opens one release with the requester's one-time identity and checks its
/// binding. `label` names it in errors (`release 2 (from carol)`).
pub fn open_release(
    label: &str,
    envelope: &[u8],
    one_time: &CustodianIdentity,
    expected: &ReleaseExpectation,
) -> Result<OpenedShare, CustodyError> {
    let json = decrypt(label, one_time, envelope)?;
    let plain: ReleasePlain =
        serde_json::from_slice(&json).map_err(|e| CustodyError::Malformed {
            what: label.into(),
            detail: e.to_string(),
        })?;
    check(
        label,
        "purpose",
        RELEASE_PURPOSE,
        plain.purpose.as_str(),
        "this is not a release",
    )?;
    let c = &plain.context;
    check(
        label,
        "request",
        &expected.request,
        &c.request,
        "it was released for another request",
    )?;
    check(
        label,
        "secret",
        &expected.secret,
        &c.secret,
        "it belongs to another secret",
    )?;
    check(
        label,
        "generation",
        expected.generation,
        c.generation,
        "it is from another sealing (an old or replayed share)",
    )?;
    check(
        label,
        "recipient",
        one_time.recipient().to_string(),
        c.to.clone(),
        "it was released to another key",
    )?;
    let slot = expected
        .custodians
        .get(usize::from(c.index).wrapping_sub(1))
        .ok_or_else(|| CustodyError::Malformed {
            what: label.into(),
            detail: format!(
                "share index {} is not one of the {} custodians' slots",
                c.index,
                expected.custodians.len()
            ),
        })?;
    check(
        label,
        "custodian",
        slot,
        &c.custodian,
        "the share's slot belongs to another custodian",
    )?;
    Ok(OpenedShare {
        share: decode_share(label, c.index, &plain.share)?,
        custodian: c.custodian.clone(),
    })
}

/// Opens every release of a request and combines them. Any release that
/// fails its checks refuses the whole opening (a tampered or foreign share
/// is an attack to look at, not noise to skip); a share index seen twice is
/// a replay.
pub fn open_all(
    releases: &[(String, Vec<u8>)],
    one_time: &CustodianIdentity,
    expected: &ReleaseExpectation,
) -> Result<RootSecret, CustodyError> {
    let mut shares = Vec::new();
    let mut seen = BTreeSet::new();
    for (label, envelope) in releases {
        let opened = open_release(label, envelope, one_time, expected)?;
        if !seen.insert(opened.share.index) {
            return Err(CustodyError::Replayed {
                index: opened.share.index,
            });
        }
        shares.push(opened.share);
    }
    crate::shamir::combine(&shares, expected.threshold)
}
