//! RFC 6962 / RFC 9162 Merkle tree over leaf hashes.
//!
//! - leaf hash: `SHA-256(0x00 || entry bytes)`
//! - node hash: `SHA-256(0x01 || left || right)`
//! - the root of `n > 1` leaves splits at `k`, the largest power of two below
//!   `n`: `node(root(D[0..k]), root(D[k..n]))`; the empty tree's root is
//!   `SHA-256("")`.
//!
//! [`Frontier`] is the right edge of the tree (one perfect-subtree root per set
//! bit of the size): enough to append in O(log n) and to compute the root
//! without reading history. Proof generation works over any [`LeafHashes`];
//! proof verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 literally.

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, node hash or tree root.
pub type Hash = [u8; 32];

/// Root of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// RFC 6962 leaf hash of `data`: `SHA-256(0x00 || data)`.
pub fn hash_leaf(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// SHA-256's initial state (FIPS 180-4 §5.3.3).
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// One SHA-256 input block.
type Block = sha2::digest::generic_array::GenericArray<u8, sha2::digest::consts::U64>;

fn state_bytes(state: [u32; 8]) -> Hash {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Leaf hashing for many entries in a row: the same bytes as [`hash_leaf`],
/// but each entry's `0x00 || entry || padding` is laid out in a block buffer
/// reused from entry to entry and compressed in one call, so there is no
/// allocation, no incremental-hasher bookkeeping and one compression call per
/// entry (verification hashes every entry of the log this way).
#[derive(Debug, Default, Clone)]
pub struct LeafHasher {
    blocks: Vec<Block>,
}

impl LeafHasher {
    /// A hasher with an empty block buffer (it grows to the longest entry).
    pub fn new() -> Self {
        Self::default()
    }

    /// RFC 6962 leaf hash of `data`, equal to [`hash_leaf`]`(data)`.
    pub fn hash(&mut self, data: &[u8]) -> Hash {
        // The message is 0x00 || data: block k holds data[64k-1 .. 64k+63].
        let len = data.len() + 1;
        let full = len / 64;
        if self.blocks.len() < full + 2 {
            self.blocks.resize(full + 2, Block::default());
        }
        if full > 0 {
            let first = &mut self.blocks[0];
            first[0] = 0;
            first[1..].copy_from_slice(&data[..63]);
            for (k, b) in self.blocks[1..full].iter_mut().enumerate() {
                let at = 64 * k + 63;
                b.copy_from_slice(&data[at..at + 64]);
            }
        }
        let rem = len - 64 * full;
        let tail = &mut self.blocks[full];
        if full == 0 {
            tail[0] = 0;
            tail[1..rem].copy_from_slice(data);
        } else {
            tail[..rem].copy_from_slice(&data[64 * full - 1..]);
        }
        tail[rem] = 0x80;
        let bits = (len as u64 * 8).to_be_bytes();
        let n = if rem + 1 + 8 <= 64 {
            tail[rem + 1..56].fill(0);
            tail[56..].copy_from_slice(&bits);
            full + 1
        } else {
            tail[rem + 1..].fill(0);
            let last = &mut self.blocks[full + 1];
            last[..56].fill(0);
            last[56..].copy_from_slice(&bits);
            full + 2
        };
        let mut state = IV;
        sha2::compress256(&mut state, &self.blocks[..n]);
        state_bytes(state)
    }
}

/// RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
///
/// The input is always 65 bytes, i.e. exactly two SHA-256 blocks once padded,
/// so the blocks are laid out by hand and compressed directly: this is the
/// one hash per appended leaf that verification cannot parallelise.
pub fn hash_children(left: &Hash, right: &Hash) -> Hash {
    let mut blocks = [[0u8; 64]; 2];
    blocks[0][0] = 1;
    blocks[0][1..33].copy_from_slice(left);
    blocks[0][33..64].copy_from_slice(&right[..31]);
    blocks[1][0] = right[31];
    blocks[1][1] = 0x80;
    // Message length in bits (65 * 8 = 520), big-endian, in the last 8 bytes.
    blocks[1][56..64].copy_from_slice(&520u64.to_be_bytes());
    let mut state = IV;
    sha2::compress256(&mut state, &[blocks[0].into(), blocks[1].into()]);
    state_bytes(state)
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Random access to the leaf hashes of a log, for proof generation.
pub trait LeafHashes {
    /// Number of leaves.
    fn size(&self) -> u64;
    /// Leaf hash at `i` (`i < size()`).
    fn leaf(&self, i: u64) -> Hash;
}

impl LeafHashes for [Hash] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn leaf(&self, i: u64) -> Hash {
        self[i as usize]
    }
}

impl LeafHashes for Vec<Hash> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn leaf(&self, i: u64) -> Hash {
        self[i as usize]
    }
}

/// Root of the tree whose leaf hashes are `leaves`.
pub fn root_from_leaves(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for l in leaves {
        f.push(*l);
    }
    f.root()
}

/// Root of leaves `[start, end)` of `t` (`start < end`), via a frontier so it
/// needs no recursion and O(log n) memory.
fn subtree_root<T: LeafHashes + ?Sized>(t: &T, start: u64, end: u64) -> Hash {
    let mut f = Frontier::new();
    for i in start..end {
        f.push(t.leaf(i));
    }
    f.root()
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// Requested leaf.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// The requested tree sizes are impossible (old larger than new, or larger than the log).
    #[error("cannot relate tree size {first} to tree size {second} (log has {available} leaves)")]
    BadSizes {
        /// Older size.
        first: u64,
        /// Newer size.
        second: u64,
        /// Leaves available.
        available: u64,
    },
    /// The proof has the wrong number of hashes for the sizes involved.
    #[error("proof has the wrong length for these tree sizes")]
    WrongLength,
    /// The proof is well formed but leads to a different root.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// A proof's text form could not be read.
    #[error("malformed proof: {0}")]
    Malformed(String),
}

/// Inclusion proof (audit path) for leaf `index` in the first `size` leaves of
/// `t`, per RFC 9162 §2.1.3.1.
pub fn inclusion_proof<T: LeafHashes + ?Sized>(
    t: &T,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if size > t.size() {
        return Err(ProofError::BadSizes {
            first: index,
            second: size,
            available: t.size(),
        });
    }
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    // Walk down from the whole range; collect siblings, then reverse so the
    // proof goes from the leaf up.
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index - lo < k {
            proof.push(subtree_root(t, lo + k, hi));
            hi = lo + k;
        } else {
            proof.push(subtree_root(t, lo, lo + k));
            lo += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Consistency proof between the first `first` and first `second` leaves of
/// `t`, per RFC 9162 §2.1.4.1. Empty when `first == 0` or `first == second`.
pub fn consistency_proof<T: LeafHashes + ?Sized>(
    t: &T,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofError> {
    if first > second || second > t.size() {
        return Err(ProofError::BadSizes {
            first,
            second,
            available: t.size(),
        });
    }
    if first == 0 || first == second {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo..hi], b), iteratively; siblings collected top-down.
    let mut proof = Vec::new();
    let (mut lo, mut hi, mut m, mut b) = (0u64, second, first, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !b {
                proof.push(subtree_root(t, lo, hi));
            }
            break;
        }
        let k = split(n);
        if m <= k {
            proof.push(subtree_root(t, lo + k, hi));
            hi = lo + k;
        } else {
            proof.push(subtree_root(t, lo, lo + k));
            lo += k;
            m -= k;
            b = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Verifies an inclusion proof per RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = hash_children(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = hash_children(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof per RFC 9162 §2.1.4.2: the tree of size
/// `first` with root `first_root` is a prefix of the tree of size `second`
/// with root `second_root`.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::BadSizes {
            first,
            second,
            available: second,
        });
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if first == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if *first_root == EMPTY_ROOT {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = hash_children(c, &fr);
            sr = hash_children(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = hash_children(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *first_root || sr != *second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The right edge of a Merkle tree: the roots of its perfect subtrees, largest
/// (leftmost) first, one per set bit of the size.
///
/// The store persists [`Frontier::to_bytes`] in the same transaction as each
/// append, so the current root is always known without reading history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

/// Why bytes are not a serialized [`Frontier`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a serialized frontier: {0}")]
pub struct FrontierError(&'static str);

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash, merging completed subtrees: O(log n) hashes at
    /// worst, one on average.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut h = leaf_hash;
        // Every trailing one bit of the old size is a subtree of equal height
        // that the new leaf completes.
        let mut s = self.size;
        while s & 1 == 1 {
            // `nodes` holds one hash per set bit, so this pop always succeeds.
            if let Some(left) = self.nodes.pop() {
                h = hash_children(&left, &h);
            }
            s >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// Appends the root of a perfect subtree of `2^height` leaves; the size
    /// must be a multiple of `2^height` (else the tree would not be RFC 6962's
    /// and this returns `false`, changing nothing).
    pub fn push_subtree(&mut self, root: Hash, height: u32) -> bool {
        if height >= 63 || !self.size.is_multiple_of(1u64 << height) {
            return false;
        }
        let mut h = root;
        let mut s = self.size >> height;
        while s & 1 == 1 {
            if let Some(left) = self.nodes.pop() {
                h = hash_children(&left, &h);
            }
            s >>= 1;
        }
        self.nodes.push(h);
        self.size += 1u64 << height;
        true
    }

    /// Appends the leaves summarised by `other` (a frontier of the leaves that
    /// follow this one's): its subtrees in order. `false` (with this frontier
    /// partly extended) if this size is not a multiple of 2^h for `other`'s
    /// largest subtree height h, i.e. `other` does not start on a boundary.
    pub fn append(&mut self, other: &Frontier) -> bool {
        let mut bits = other.size;
        for node in &other.nodes {
            let height = 63 - bits.leading_zeros();
            if !self.push_subtree(*node, height) {
                return false;
            }
            bits &= !(1u64 << height);
        }
        true
    }

    /// The tree root (RFC 6962 `MTH`) for the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return EMPTY_ROOT;
        };
        let mut acc = *last;
        for left in it {
            acc = hash_children(left, &acc);
        }
        acc
    }

    /// Serialized form: size as 8 bytes big-endian, then the subtree roots,
    /// largest first (32 bytes each, one per set bit of size).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.nodes.len());
        out.extend_from_slice(&self.size.to_be_bytes());
        for n in &self.nodes {
            out.extend_from_slice(n);
        }
        out
    }

    /// Reads [`Frontier::to_bytes`] back, checking the length matches the size.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FrontierError> {
        let (head, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or(FrontierError("shorter than 8 bytes"))?;
        let size = u64::from_be_bytes(*head);
        if rest.len() != 32 * size.count_ones() as usize {
            return Err(FrontierError(
                "length does not match the number of subtrees for its size",
            ));
        }
        let nodes = rest
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Self { size, nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    // transparency-dev/merkle testonly roots for sizes 0..=8.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn h(s: &str) -> Hash {
        let v = hex::decode(s).unwrap();
        v.try_into().unwrap()
    }

    fn leaves() -> Vec<Hash> {
        LEAVES
            .iter()
            .map(|l| hash_leaf(&hex::decode(l).unwrap()))
            .collect()
    }

    /// RFC 6962 §2.1 written as the recursive definition, independent of Frontier.
    fn naive_root(d: &[Hash]) -> Hash {
        match d.len() {
            0 => EMPTY_ROOT,
            1 => d[0],
            n => {
                let k = split(n as u64) as usize;
                hash_children(&naive_root(&d[..k]), &naive_root(&d[k..]))
            }
        }
    }

    fn naive_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        if d.len() <= 1 {
            return vec![];
        }
        let k = split(d.len() as u64) as usize;
        if m < k {
            let mut p = naive_path(m, &d[..k]);
            p.push(naive_root(&d[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &d[k..]);
            p.push(naive_root(&d[..k]));
            p
        }
    }

    fn naive_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![naive_root(d)] };
        }
        let k = split(n as u64) as usize;
        if m <= k {
            let mut p = naive_subproof(m, &d[..k], b);
            p.push(naive_root(&d[k..]));
            p
        } else {
            let mut p = naive_subproof(m - k, &d[k..], false);
            p.push(naive_root(&d[..k]));
            p
        }
    }

    #[test]
    fn roots_match_rfc6962_vectors() {
        let l = leaves();
        let mut f = Frontier::new();
        assert_eq!(f.root(), h(ROOTS[0]));
        assert_eq!(EMPTY_ROOT, h(ROOTS[0]));
        for n in 1..=8 {
            f.push(l[n - 1]);
            assert_eq!(f.root(), h(ROOTS[n]), "size {n}");
            assert_eq!(root_from_leaves(&l[..n]), h(ROOTS[n]));
            assert_eq!(naive_root(&l[..n]), h(ROOTS[n]));
        }
    }

    #[test]
    fn proofs_match_published_vectors() {
        let l = leaves();
        let p = inclusion_proof(&l, 0, 8).unwrap();
        assert_eq!(
            p,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ]
        );
        let p = inclusion_proof(&l, 5, 8).unwrap();
        assert_eq!(
            p,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
        verify_inclusion(&l[5], 5, 8, &p, &h(ROOTS[8])).unwrap();
        let c = consistency_proof(&l, 2, 8).unwrap();
        assert_eq!(
            c,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ]
        );
        let c = consistency_proof(&l, 6, 8).unwrap();
        assert_eq!(
            c,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
        let c = consistency_proof(&l, 2, 5).unwrap();
        assert_eq!(
            c,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ]
        );
        for (a, b) in [(2, 8), (6, 8), (2, 5), (1, 8), (4, 8), (3, 7)] {
            let c = consistency_proof(&l, a, b).unwrap();
            verify_consistency(a, b, &h(ROOTS[a as usize]), &h(ROOTS[b as usize]), &c).unwrap();
        }
    }

    #[test]
    fn proofs_agree_with_naive_definition() {
        let l: Vec<Hash> = (0u32..70).map(|i| hash_leaf(&i.to_be_bytes())).collect();
        for n in 1..=l.len() {
            for m in 0..n {
                assert_eq!(
                    inclusion_proof(&l, m as u64, n as u64).unwrap(),
                    naive_path(m, &l[..n])
                );
            }
            for m in 1..n {
                assert_eq!(
                    consistency_proof(&l, m as u64, n as u64).unwrap(),
                    naive_subproof(m, &l[..n], true)
                );
            }
        }
    }

    #[test]
    fn degenerate_consistency_cases() {
        let l = leaves();
        let r4 = root_from_leaves(&l[..4]);
        let r5 = root_from_leaves(&l[..5]);
        verify_consistency(4, 4, &r4, &r4, &[]).unwrap();
        assert!(verify_consistency(4, 4, &r4, &r5, &[]).is_err());
        assert!(verify_consistency(4, 4, &r4, &r4, &[r4]).is_err());
        verify_consistency(0, 8, &EMPTY_ROOT, &h(ROOTS[8]), &[]).unwrap();
        assert!(verify_consistency(0, 8, &r4, &h(ROOTS[8]), &[]).is_err());
        assert!(verify_consistency(6, 8, &h(ROOTS[6]), &h(ROOTS[8]), &[]).is_err());
        assert!(verify_consistency(8, 6, &h(ROOTS[8]), &h(ROOTS[6]), &[]).is_err());
        assert!(inclusion_proof(&l, 8, 8).is_err());
        assert!(inclusion_proof(&l, 0, 9).is_err());
        assert!(consistency_proof(&l, 5, 3).is_err());
    }

    #[test]
    fn hand_padded_node_hash_equals_plain_sha256() {
        for i in 0u8..50 {
            let (l, r) = ([i; 32], [i.wrapping_mul(7) ^ 0x5a; 32]);
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(l);
            h.update(r);
            let want: Hash = h.finalize().into();
            assert_eq!(hash_children(&l, &r), want);
        }
    }

    #[test]
    fn leaf_hasher_equals_hash_leaf_at_every_length() {
        let data: Vec<u8> = (0..700u32).map(|i| (i * 31 + 7) as u8).collect();
        let mut lh = LeafHasher::new();
        // Every length around each block boundary, twice over (buffer reuse).
        for _ in 0..2 {
            for n in (0..data.len()).rev() {
                assert_eq!(lh.hash(&data[..n]), hash_leaf(&data[..n]), "length {n}");
            }
        }
        assert_eq!(LeafHasher::new().hash(b""), hash_leaf(b""));
    }

    #[test]
    fn appended_frontiers_equal_pushing_every_leaf() {
        let l: Vec<Hash> = (0u32..300).map(|i| hash_leaf(&i.to_be_bytes())).collect();
        for chunk in [1usize, 2, 4, 8, 32, 64] {
            let mut whole = Frontier::new();
            for (c, part) in l.chunks(chunk).enumerate() {
                let mut local = Frontier::new();
                for h in part {
                    local.push(*h);
                }
                assert!(whole.append(&local), "chunk {chunk} part {c}");
                assert_eq!(whole.root(), root_from_leaves(&l[..whole.size() as usize]));
            }
            assert_eq!(whole.size(), 300);
        }
        // A part that does not start on its own boundary is refused.
        let mut f = Frontier::new();
        f.push(l[0]);
        let mut two = Frontier::new();
        two.push(l[1]);
        two.push(l[2]);
        assert!(!f.append(&two));
    }

    #[test]
    fn frontier_bytes_round_trip() {
        let mut f = Frontier::new();
        for (i, l) in leaves().into_iter().enumerate() {
            f.push(l);
            let g = Frontier::from_bytes(&f.to_bytes()).unwrap();
            assert_eq!(g, f, "size {}", i + 1);
        }
        assert!(Frontier::from_bytes(&[0; 7]).is_err());
        let mut bad = f.to_bytes();
        bad.push(0);
        assert!(Frontier::from_bytes(&bad).is_err());
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_tampering_breaks_it(
            n in 1u64..200, a in 0u64..200, b in 0u64..200, byte in 0usize..32, bit in 0u8..8
        ) {
            let l: Vec<Hash> = (0..n).map(|i| hash_leaf(&i.to_le_bytes())).collect();
            let root = root_from_leaves(&l);
            prop_assert_eq!(root, naive_root(&l));
            let i = a % n;
            let p = inclusion_proof(&l, i, n).unwrap();
            prop_assert!(verify_inclusion(&l[i as usize], i, n, &p, &root).is_ok());
            // wrong leaf, wrong index, flipped bit, truncated, extended
            let mut other = l[i as usize];
            other[byte] ^= 1 << bit;
            prop_assert!(verify_inclusion(&other, i, n, &p, &root).is_err());
            if n > 1 {
                prop_assert!(verify_inclusion(&l[i as usize], (i + 1) % n, n, &p, &root).is_err());
                let mut q = p.clone();
                let j = byte % q.len();
                q[j][byte] ^= 1 << bit;
                prop_assert!(verify_inclusion(&l[i as usize], i, n, &q, &root).is_err());
                prop_assert!(verify_inclusion(&l[i as usize], i, n, &p[..p.len() - 1], &root).is_err());
            }
            let mut ext = p.clone();
            ext.push([0xab; 32]);
            prop_assert!(verify_inclusion(&l[i as usize], i, n, &ext, &root).is_err());

            let m = b % (n + 1);
            let rm = root_from_leaves(&l[..m as usize]);
            let c = consistency_proof(&l, m, n).unwrap();
            prop_assert!(verify_consistency(m, n, &rm, &root, &c).is_ok());
            if 0 < m && m < n {
                let mut bad_root = rm;
                bad_root[byte] ^= 1 << bit;
                prop_assert!(verify_consistency(m, n, &bad_root, &root, &c).is_err());
                let mut q = c.clone();
                let j = byte % q.len();
                q[j][byte] ^= 1 << bit;
                prop_assert!(verify_consistency(m, n, &rm, &root, &q).is_err());
                prop_assert!(verify_consistency(m, n, &rm, &root, &c[..c.len() - 1]).is_err());
                let mut ext = c.clone();
                ext.push([0xcd; 32]);
                prop_assert!(verify_consistency(m, n, &rm, &root, &ext).is_err());
            }
        }
    }
}
