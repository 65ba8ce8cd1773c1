//! Shamir M-of-N over GF(2^8) with vsss-rs (constant time: no lookup tables,
//! no secret-dependent branches), on the secret padded to a fixed size so
//! the shares the server stores do not reveal how long the password is.

use rand_core::UnwrapErr;
use vsss_rs::Gf256;
use zeroize::Zeroizing;

use crate::{CustodyError, RootSecret, Share};

/// Longest secret custody takes, in bytes (recovery codes fit comfortably).
pub const MAX_SECRET_BYTES: usize = 4094;

/// Padded sizes: every secret up to 254 bytes looks alike, longer ones are
/// rounded up to a multiple of 256.
const PAD_BLOCK: usize = 256;

fn pad(secret: &RootSecret) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
    let s = secret.expose();
    if s.is_empty() {
        return Err(CustodyError::Invalid("the secret is empty".into()));
    }
    if s.len() > MAX_SECRET_BYTES {
        return Err(CustodyError::Invalid(format!(
            "the secret is {} bytes; custody takes at most {MAX_SECRET_BYTES}",
            s.len()
        )));
    }
    let total = (s.len() + 2).div_ceil(PAD_BLOCK) * PAD_BLOCK;
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
    out.resize(total, 0);
    Ok(out)
}

fn unpad(padded: &[u8]) -> Result<RootSecret, CustodyError> {
    let bad = || {
        CustodyError::Invalid("the combined shares do not form a sealed secret: the shares belong to different sealings".into())
    };
    let (len, rest) = padded.split_first_chunk::<2>().ok_or_else(bad)?;
    let len = u16::from_be_bytes(*len) as usize;
    if len == 0 || len > rest.len() || rest[len..].iter().any(|b| *b != 0) {
        return Err(bad());
    }
    Ok(RootSecret::new(rest[..len].to_vec()))
}

/// Splits `secret` into `n` shares of which any `threshold` recover it.
/// Share `i` (1-based) goes to the `i`-th custodian. A threshold below 2
/// is refused: one share must never be the secret.
pub fn split(secret: &RootSecret, threshold: usize, n: usize) -> Result<Vec<Share>, CustodyError> {
    if threshold < 2 || threshold > n || n > 255 {
        return Err(CustodyError::Invalid(format!(
            "threshold {threshold} of {n} custodians: need 2 <= threshold <= custodians <= 255"
        )));
    }
    let padded = pad(secret)?;
    let rng = UnwrapErr(getrandom::SysRng);
    let shares = Zeroizing::new(
        Gf256::split_bytes(threshold, n, padded.as_slice(), rng)
            .map_err(|e| CustodyError::Invalid(format!("splitting failed: {e:?}")))?,
    );
    Ok(shares
        .iter()
        .enumerate()
        .map(|(i, s)| Share::new((i + 1) as u8, s.clone()))
        .collect())
}

/// Combines shares (at least the threshold, distinct indexes) into the
/// secret. The caller has checked each share's binding
/// ([`crate::envelope`]); this checks their number and that no index repeats.
pub fn combine(shares: &[Share], threshold: usize) -> Result<RootSecret, CustodyError> {
    let mut seen = std::collections::BTreeSet::new();
    for s in shares {
        if !seen.insert(s.index) {
            return Err(CustodyError::Replayed { index: s.index });
        }
    }
    if shares.len() < threshold.max(2) {
        return Err(CustodyError::NotEnough {
            have: shares.len(),
            need: threshold.max(2),
        });
    }
    let raw: Zeroizing<Vec<Vec<u8>>> =
        Zeroizing::new(shares.iter().map(|s| s.bytes.to_vec()).collect());
    let padded = Zeroizing::new(Gf256::combine_bytes(raw.as_slice()).map_err(|e| {
        CustodyError::Invalid(format!(
            "the shares do not combine ({e:?}): they belong to different sealings"
        ))
    })?);
    unpad(&padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_two_of_three_recover_and_lengths_do_not_show() {
        let s = RootSecret::new(b"correct horse battery staple".to_vec());
        let shares = split(&s, 2, 3).expect("split");
        assert_eq!(shares.len(), 3);
        for (a, b) in [(0, 1), (0, 2), (1, 2), (2, 0)] {
            let got = combine(&[shares[a].clone(), shares[b].clone()], 2).expect("combine");
            assert_eq!(got.expose(), s.expose());
        }
        let short = split(&RootSecret::new(b"x".to_vec()), 2, 3).expect("split");
        assert_eq!(short[0].expose().len(), shares[0].expose().len());
        assert!(!format!("{:?}", shares[0]).contains(&format!("{:?}", shares[0].expose())));
    }

    #[test]
    fn one_share_or_a_repeated_share_opens_nothing() {
        let s = RootSecret::new(b"hunter2".to_vec());
        let shares = split(&s, 2, 3).expect("split");
        assert!(matches!(
            combine(&shares[..1], 2),
            Err(CustodyError::NotEnough { have: 1, need: 2 })
        ));
        assert!(matches!(
            combine(&[shares[1].clone(), shares[1].clone()], 2),
            Err(CustodyError::Replayed { index: 2 })
        ));
        assert!(split(&s, 1, 3).is_err());
        assert!(split(&s, 4, 3).is_err());
        assert!(split(&RootSecret::new(vec![]), 2, 3).is_err());
    }

    #[test]
    fn shares_of_two_sealings_do_not_combine_into_a_secret() {
        let a = split(&RootSecret::new(b"first".to_vec()), 2, 3).expect("split");
        let b = split(&RootSecret::new(b"second".to_vec()), 2, 3).expect("split");
        match combine(&[a[0].clone(), b[1].clone()], 2) {
            Err(_) => {}
            Ok(s) => assert!(s.expose() != b"first" && s.expose() != b"second"),
        }
    }
}
