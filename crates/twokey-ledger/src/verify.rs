//! Offline verification of a ledger against signed checkpoints.
//!
//! Given the entries in index order, the log's public key, the signed
//! checkpoints the log published and, optionally, a trusted checkpoint held
//! elsewhere, [`LogVerifier`] checks that:
//!
//! 1. every checkpoint carries a valid signature by the expected key (others
//!    are ignored) and all name the same log (origin);
//! 2. entry indexes run 0, 1, 2, ... with no gap, repeat or reordering;
//! 3. the root recomputed from the entries at each checkpoint's size equals the
//!    signed root; since every checkpoint is compared with a prefix of the same
//!    entries, this also proves successive checkpoints consistent;
//! 4. the trusted checkpoint's root equals the log's prefix root at its size
//!    (the log may have grown since; if it is shorter, it was truncated);
//! 5. the log is at least as long as every checkpoint (else: truncated).
//!
//! It stops at the first problem and says which entry and why.
//! Nothing here reads a clock or a database: the caller streams entries in.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::checkpoint::{Checkpoint, CheckpointError, NoteVerifier};
use crate::entry::LedgerEntry;
use crate::merkle::{
    hash_leaf, inclusion_proof, verify_inclusion, Frontier, Hash, LeafHasher, LeafHashes,
    ProofError,
};

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Entries checked (the log's size).
    pub entries: u64,
    /// Signed checkpoints whose roots were recomputed and matched (distinct sizes).
    pub checkpoints_verified: usize,
    /// Size of the largest signed checkpoint (0 when none).
    pub latest_checkpoint_size: u64,
    /// Whether a trusted checkpoint was given and matched.
    pub trusted_verified: bool,
    /// Canonical entry bytes hashed.
    pub entry_bytes: u64,
    /// Root of the whole log as verified.
    pub root: Hash,
}

/// The first problem found, with the entry and the reason.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A checkpoint is malformed, unsigned by the expected key, or forged.
    #[error("{which}: {source}")]
    Checkpoint {
        /// Which checkpoint (file name or position).
        which: String,
        /// Why.
        #[source]
        source: CheckpointError,
    },
    /// A checkpoint names a different log.
    #[error("{which}: checkpoint is for log {found:?}, but the others are for {expected:?}")]
    OriginMismatch {
        /// Which checkpoint.
        which: String,
        /// Origin of the first checkpoint.
        expected: String,
        /// Origin of this one.
        found: String,
    },
    /// Two validly signed checkpoints of one size disagree: the key signed a fork.
    #[error(
        "fork: two checkpoints of size {size} signed by {signer} have different roots {a} and {b}"
    )]
    ConflictingCheckpoints {
        /// Tree size.
        size: u64,
        /// Signer label.
        signer: String,
        /// One root (base64).
        a: String,
        /// The other root (base64).
        b: String,
    },
    /// An entry is missing: the next entry has a higher index.
    #[error("entry {expected}: missing, found entry {found} in its place (deleted, reordered or inserted)")]
    Gap {
        /// Index that should come next.
        expected: u64,
        /// Index found instead.
        found: u64,
    },
    /// An entry index repeats or goes backwards.
    #[error("entry {expected}: found entry {found} in its place, which belongs earlier (duplicated, reordered or inserted)")]
    OutOfOrder {
        /// Index that should come next.
        expected: u64,
        /// Index found instead.
        found: u64,
    },
    /// An entry cannot be read.
    #[error("entry {position}: {reason}")]
    Malformed {
        /// Position in the stream.
        position: u64,
        /// Why.
        reason: String,
    },
    /// The recomputed root differs from a signed checkpoint's root.
    #[error("{}", root_mismatch(*first, *last, *size, signer, signed_root, log_root))]
    RootMismatch {
        /// First entry not covered by an earlier verified checkpoint.
        first: u64,
        /// Last entry the checkpoint covers.
        last: u64,
        /// Checkpoint size.
        size: u64,
        /// Signer label.
        signer: String,
        /// Signed root (base64).
        signed_root: String,
        /// Root of the entries (base64).
        log_root: String,
    },
    /// The log ends before a signed checkpoint's size.
    #[error("{}: truncated (checkpoint signed by {signer})", ends(*entries, *size, "checkpoint"))]
    Truncated {
        /// Entries present.
        entries: u64,
        /// Checkpoint size.
        size: u64,
        /// Signer label.
        signer: String,
    },
    /// The log's prefix differs from the trusted checkpoint.
    #[error("fork: trusted checkpoint size {size} root {trusted_root} but log prefix root {log_root}: the log was rewritten after that checkpoint was exported")]
    Fork {
        /// Trusted checkpoint size.
        size: u64,
        /// Trusted root (base64).
        trusted_root: String,
        /// Root of the log's first `size` entries (base64).
        log_root: String,
    },
    /// The log ends before the trusted checkpoint's size.
    #[error("{}: truncated", ends(*entries, *size, "trusted checkpoint"))]
    TrustedTruncated {
        /// Entries present.
        entries: u64,
        /// Trusted checkpoint size.
        size: u64,
    },
    /// A bundle directory is malformed.
    #[error("{path}: {reason}")]
    Bundle {
        /// Bundle path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

fn root_mismatch(
    first: u64,
    last: u64,
    size: u64,
    signer: &str,
    signed: &str,
    log: &str,
) -> String {
    let which = if first == last {
        format!("entry {first}")
    } else {
        format!("entries {first}..={last}")
    };
    format!(
        "{which}: hash does not match checkpoint of size {size} signed by {signer} \
         (signed root {signed}, entries give {log}); an entry in this range was changed, \
         inserted, deleted or reordered"
    )
}

fn ends(entries: u64, size: u64, what: &str) -> String {
    if entries == 0 {
        format!("log is empty but {what} says {size}")
    } else {
        format!("entries end at {} but {what} says {size}", entries - 1)
    }
}

fn b64(h: &Hash) -> String {
    B64.encode(h)
}

/// Streaming verifier: feed entries in log order, then call [`LogVerifier::finish`].
///
/// Cloning is cheap (O(log n) hashes plus the checkpoint list) and skips
/// re-checking signatures, e.g. to try several continuations of one prefix.
#[derive(Debug, Clone)]
pub struct LogVerifier {
    signer: String,
    /// Signed checkpoints sorted by size, one per size.
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    trusted: Option<Checkpoint>,
    frontier: Frontier,
    /// Reused block buffer for leaf hashes.
    hasher: LeafHasher,
    /// Reused buffer for re-encoding entries.
    line: Vec<u8>,
    /// Size of the last checkpoint (signed or trusted) that matched.
    last_good: u64,
    entry_bytes: u64,
    checkpoints_verified: usize,
    trusted_verified: bool,
}

impl LogVerifier {
    /// Checks every checkpoint's signature by `key` and prepares to stream
    /// entries. `checkpoints` are (label for messages, signed-note text);
    /// `trusted` is a signed-note checkpoint held elsewhere (also signed by `key`).
    pub fn new<L: AsRef<str>, T: AsRef<str>>(
        key: &NoteVerifier,
        checkpoints: &[(L, T)],
        trusted: Option<&str>,
    ) -> Result<Self, VerifyError> {
        let signer = key.label();
        let mut parsed: Vec<(String, Checkpoint)> = Vec::with_capacity(checkpoints.len());
        for (label, text) in checkpoints {
            let cp =
                key.verify_checkpoint(text.as_ref())
                    .map_err(|source| VerifyError::Checkpoint {
                        which: label.as_ref().to_string(),
                        source,
                    })?;
            parsed.push((label.as_ref().to_string(), cp));
        }
        let trusted = match trusted {
            Some(text) => {
                Some(
                    key.verify_checkpoint(text)
                        .map_err(|source| VerifyError::Checkpoint {
                            which: "trusted checkpoint".into(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        let origin = parsed
            .first()
            .map(|(_, c)| c.origin.clone())
            .or_else(|| trusted.as_ref().map(|t| t.origin.clone()));
        if let Some(origin) = &origin {
            let all = parsed
                .iter()
                .map(|(l, c)| (l.as_str(), c))
                .chain(trusted.iter().map(|t| ("trusted checkpoint", t)));
            for (label, cp) in all {
                if &cp.origin != origin {
                    return Err(VerifyError::OriginMismatch {
                        which: label.to_string(),
                        expected: origin.clone(),
                        found: cp.origin.clone(),
                    });
                }
            }
        }
        parsed.sort_by_key(|(_, c)| c.size);
        let mut list: Vec<Checkpoint> = Vec::with_capacity(parsed.len());
        for (_, cp) in parsed {
            match list.last() {
                Some(prev) if prev.size == cp.size => {
                    if prev.root != cp.root {
                        return Err(VerifyError::ConflictingCheckpoints {
                            size: cp.size,
                            signer,
                            a: b64(&prev.root),
                            b: b64(&cp.root),
                        });
                    }
                }
                _ => list.push(cp),
            }
        }
        let mut v = Self {
            signer,
            checkpoints: list,
            next_checkpoint: 0,
            trusted,
            frontier: Frontier::new(),
            hasher: LeafHasher::new(),
            line: Vec::new(),
            last_good: 0,
            entry_bytes: 0,
            checkpoints_verified: 0,
            trusted_verified: false,
        };
        // Checkpoints of size 0 are checked before any entry arrives.
        v.check_at_size()?;
        Ok(v)
    }

    /// Number of entries accepted so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Checks and adds one entry.
    pub fn push_entry(&mut self, entry: &LedgerEntry) -> Result<(), VerifyError> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        entry.encode_into(&mut line);
        let leaf = self.hasher.hash(&line);
        let len = line.len() as u64;
        self.line = line;
        self.push_leaf(entry.index, leaf, len)
    }

    /// Checks and adds one entry given as its canonical bytes (an NDJSON line
    /// without the newline). The bytes are hashed as they are, so any change
    /// in spelling shows up as a root mismatch.
    pub fn push_encoded(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
        // Hash first: the index is then read from bytes already in cache.
        let leaf = self.hasher.hash(bytes);
        let index = top_level_index(bytes).ok_or_else(|| not_an_entry(self.size()))?;
        self.push_leaf(index, leaf, bytes.len() as u64)
    }

    /// Checks and adds many encoded entries on up to 4 threads, with the same
    /// outcome (and the same first error) as [`LogVerifier::push_encoded`]
    /// on each in turn.
    ///
    /// The log is cut into runs of [`RUN`] entries that start on a multiple of
    /// [`RUN`], so each run is its own subtree: a thread hashes a run's leaves,
    /// checks their indexes and builds the run's frontier (all node hashing
    /// included), keeping a copy wherever a checkpoint falls inside the run.
    /// This thread then joins the runs in order, one subtree at a time, and
    /// compares the checkpoints: only O(log n) hashes per run stay sequential.
    pub fn push_encoded_batch(&mut self, lines: &[&[u8]]) -> Result<(), VerifyError> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4);
        self.push_encoded_batch_on(lines, threads)
    }

    /// [`LogVerifier::push_encoded_batch`] on exactly `threads` threads
    /// (this one included; 0 counts as 1), e.g. to measure scaling.
    pub fn push_encoded_batch_on(
        &mut self,
        lines: &[&[u8]],
        threads: usize,
    ) -> Result<(), VerifyError> {
        // Entries up to the next run boundary go one by one.
        let head = ((RUN - self.size() % RUN) % RUN).min(lines.len() as u64) as usize;
        for line in &lines[..head] {
            self.push_encoded(line)?;
        }
        let lines = &lines[head..];
        if lines.is_empty() {
            return Ok(());
        }
        let base = self.size();
        let due = self.due_sizes();
        let runs: Vec<&[&[u8]]> = lines.chunks(RUN as usize).collect();
        let work = |i: usize| verify_run(base + i as u64 * RUN, runs[i], &due);
        let results: Vec<RunResult> = if threads < 2 || runs.len() < 2 {
            (0..runs.len()).map(work).collect()
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let take = || next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut done: Vec<(usize, RunResult)> = std::thread::scope(|s| {
                let worker = || {
                    let mut mine = Vec::new();
                    loop {
                        let i = take();
                        if i >= runs.len() {
                            return mine;
                        }
                        mine.push((i, work(i)));
                    }
                };
                let handles: Vec<_> = (1..threads).map(|_| s.spawn(worker)).collect();
                // This thread takes runs too rather than wait idle.
                let mut all = worker();
                for h in handles {
                    all.extend(h.join().unwrap_or_default());
                }
                all
            });
            done.sort_by_key(|(i, _)| *i);
            done.into_iter().map(|(_, r)| r).collect()
        };
        if results.len() != runs.len() {
            return Err(VerifyError::Malformed {
                position: self.size(),
                reason: "hashing thread failed".into(),
            });
        }
        for run in results {
            self.join_run(run)?;
        }
        Ok(())
    }

    /// Sizes at which a checkpoint not yet compared (signed or trusted) falls.
    fn due_sizes(&self) -> Vec<u64> {
        let mut due: Vec<u64> = self.checkpoints[self.next_checkpoint..]
            .iter()
            .map(|c| c.size)
            .chain(self.trusted.iter().map(|t| t.size))
            .filter(|s| *s > self.size())
            .collect();
        due.sort_unstable();
        due.dedup();
        due
    }

    /// Adds one run verified by [`verify_run`]: its checkpoints in order, then
    /// its first problem, if any, as entry-by-entry verification reports it.
    fn join_run(&mut self, run: RunResult) -> Result<(), VerifyError> {
        let start = self.size();
        for snapshot in &run.snapshots {
            let mut at = self.frontier.clone();
            if !at.append(snapshot) {
                return Err(run_misplaced(start));
            }
            self.check_root(at.size(), at.root())?;
        }
        if !self.frontier.append(&run.frontier) {
            return Err(run_misplaced(start));
        }
        self.entry_bytes += run.bytes;
        match run.problem {
            None => Ok(()),
            Some(RunProblem::NotAnEntry) => Err(not_an_entry(self.size())),
            Some(RunProblem::Index(found)) => {
                let expected = self.size();
                Err(if found > expected {
                    VerifyError::Gap { expected, found }
                } else {
                    VerifyError::OutOfOrder { expected, found }
                })
            }
        }
    }

    /// Checks and adds one entry given as its index and leaf hash; `len` is
    /// only counted for the summary.
    pub fn push_leaf(&mut self, index: u64, leaf_hash: Hash, len: u64) -> Result<(), VerifyError> {
        let expected = self.frontier.size();
        if index != expected {
            return Err(if index > expected {
                VerifyError::Gap {
                    expected,
                    found: index,
                }
            } else {
                VerifyError::OutOfOrder {
                    expected,
                    found: index,
                }
            });
        }
        self.frontier.push(leaf_hash);
        self.entry_bytes += len;
        self.check_at_size()
    }

    /// Compares any checkpoint (signed or trusted) whose size is the current size.
    fn check_at_size(&mut self) -> Result<(), VerifyError> {
        let size = self.frontier.size();
        if !self.is_due(size) {
            return Ok(());
        }
        let root = self.frontier.root();
        self.check_root(size, root)
    }

    /// Whether a checkpoint (signed or trusted) not yet compared has `size`.
    fn is_due(&self, size: u64) -> bool {
        self.checkpoints
            .get(self.next_checkpoint)
            .is_some_and(|c| c.size == size)
            || self.trusted.as_ref().is_some_and(|t| t.size == size)
    }

    /// Compares any checkpoint (signed or trusted) of `size` with `root`, the
    /// log's root at that size.
    fn check_root(&mut self, size: u64, root: Hash) -> Result<(), VerifyError> {
        let due = self
            .checkpoints
            .get(self.next_checkpoint)
            .is_some_and(|c| c.size == size);
        let trusted_due = self.trusted.as_ref().is_some_and(|t| t.size == size);
        if !due && !trusted_due {
            return Ok(());
        }
        if due {
            let cp = &self.checkpoints[self.next_checkpoint];
            if cp.root != root {
                return Err(VerifyError::RootMismatch {
                    first: self.last_good.min(size.saturating_sub(1)),
                    last: size.saturating_sub(1),
                    size,
                    signer: self.signer.clone(),
                    signed_root: b64(&cp.root),
                    log_root: b64(&root),
                });
            }
            self.next_checkpoint += 1;
            self.checkpoints_verified += 1;
            self.last_good = size;
        }
        if let Some(t) = self.trusted.as_ref().filter(|_| trusted_due) {
            if t.root != root {
                return Err(VerifyError::Fork {
                    size,
                    trusted_root: b64(&t.root),
                    log_root: b64(&root),
                });
            }
            self.trusted_verified = true;
            self.last_good = size;
        }
        Ok(())
    }

    /// Ends the stream: every checkpoint must have been reached.
    pub fn finish(self) -> Result<Summary, VerifyError> {
        let entries = self.frontier.size();
        if let Some(cp) = self.checkpoints.get(self.next_checkpoint) {
            return Err(VerifyError::Truncated {
                entries,
                size: cp.size,
                signer: self.signer,
            });
        }
        if let Some(t) = &self.trusted {
            if !self.trusted_verified {
                return Err(VerifyError::TrustedTruncated {
                    entries,
                    size: t.size,
                });
            }
        }
        Ok(Summary {
            entries,
            checkpoints_verified: self.checkpoints_verified,
            latest_checkpoint_size: self.checkpoints.last().map_or(0, |c| c.size),
            trusted_verified: self.trusted_verified,
            entry_bytes: self.entry_bytes,
            root: self.frontier.root(),
        })
    }
}

/// Entries per run of [`LogVerifier::push_encoded_batch`] (a power of two:
/// a run starting on a multiple of it is one perfect subtree).
const RUN: u64 = 1 << 12;

/// What a worker found in one run of entries.
struct RunResult {
    /// Frontier of the run's accepted entries (as a tree of their own).
    frontier: Frontier,
    /// The run's frontier at each due checkpoint size inside it, in order.
    snapshots: Vec<Frontier>,
    /// Canonical bytes of the accepted entries.
    bytes: u64,
    /// Why the entry after the accepted ones was refused.
    problem: Option<RunProblem>,
}

/// The first refused entry of a run.
enum RunProblem {
    /// It has no top-level index.
    NotAnEntry,
    /// It carries this index instead of the expected one.
    Index(u64),
}

/// Hashes and checks the entries of one run whose first entry must be `start`.
fn verify_run(start: u64, lines: &[&[u8]], due: &[u64]) -> RunResult {
    let mut hasher = LeafHasher::new();
    let mut frontier = Frontier::new();
    let mut snapshots = Vec::new();
    let mut bytes = 0;
    let mut due = due[due.partition_point(|s| *s <= start)..]
        .iter()
        .peekable();
    for line in lines {
        let leaf = hasher.hash(line);
        let expected = start + frontier.size();
        let problem = match top_level_index(line) {
            None => Some(RunProblem::NotAnEntry),
            Some(i) if i != expected => Some(RunProblem::Index(i)),
            Some(_) => None,
        };
        if problem.is_some() {
            return RunResult {
                frontier,
                snapshots,
                bytes,
                problem,
            };
        }
        frontier.push(leaf);
        bytes += line.len() as u64;
        while due.next_if(|s| **s <= expected + 1).is_some() {
            snapshots.push(frontier.clone());
        }
    }
    RunResult {
        frontier,
        snapshots,
        bytes,
        problem: None,
    }
}

fn not_an_entry(position: u64) -> VerifyError {
    VerifyError::Malformed {
        position,
        reason: "not a ledger entry (no top-level \"index\" number)".into(),
    }
}

fn run_misplaced(position: u64) -> VerifyError {
    VerifyError::Malformed {
        position,
        reason: "internal error: a run of entries did not start on its subtree boundary".into(),
    }
}

/// Finds the value of the top-level `"index"` key of a JSON object without
/// building it. Returns `None` if the bytes are not an object with an
/// unsigned integer `index`.
///
/// Canonical entries end with `"index":N,"kind":S,"policy_hash":S,"subject":S,"time_ms":N}`,
/// so the index is found by reading those few fields backwards, skipping the
/// (arbitrarily large) `data`; anything else falls back to a forward scan.
/// Either way the index is only a diagnostic: the leaf hash of the exact
/// bytes is what proves the entry.
pub fn top_level_index(bytes: &[u8]) -> Option<u64> {
    index_from_tail(bytes).or_else(|| index_forward(bytes))
}

/// Reads the canonical tail backwards (see [`top_level_index`]).
fn index_from_tail(bytes: &[u8]) -> Option<u64> {
    let rest = bytes.strip_suffix(b"}")?;
    let rest = strip_number_back(rest, true)?;
    let rest = rest.strip_suffix(b",\"time_ms\":")?;
    let rest = strip_string_back(rest)?;
    let rest = rest.strip_suffix(b",\"subject\":")?;
    let rest = strip_string_back(rest)?;
    let rest = rest.strip_suffix(b",\"policy_hash\":")?;
    let rest = strip_string_back(rest)?;
    let rest = rest.strip_suffix(b",\"kind\":")?;
    let digits_start = strip_number_back(rest, false)?.len();
    let before = &rest[..digits_start];
    if !before.ends_with(b",\"index\":") {
        return None;
    }
    parse_u64(&rest[digits_start..])
}

/// Removes a trailing JSON integer (optionally signed) and returns what precedes it.
fn strip_number_back(b: &[u8], signed: bool) -> Option<&[u8]> {
    let n = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let rest = &b[..b.len() - n];
    Some(match rest.strip_suffix(b"-") {
        Some(r) if signed => r,
        _ => rest,
    })
}

/// Removes a trailing JSON string and returns what precedes it: the opening
/// quote is the nearest `"` not preceded by an odd number of backslashes.
fn strip_string_back(b: &[u8]) -> Option<&[u8]> {
    let body = b.strip_suffix(b"\"")?;
    let mut end = body.len();
    loop {
        let q = memchr::memrchr(b'"', &body[..end])?;
        let slashes = body[..q].iter().rev().take_while(|c| **c == b'\\').count();
        if slashes % 2 == 0 {
            return Some(&body[..q]);
        }
        end = q;
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Forward scan for the top-level `"index"`: skips strings and nested values.
fn index_forward(bytes: &[u8]) -> Option<u64> {
    if bytes.first() != Some(&b'{') {
        return None;
    }
    let mut depth = 1usize;
    let mut expecting_key = true;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if depth == 1 && expecting_key && bytes.get(start..i) == Some(b"index") {
                    let rest = bytes.get(i + 1..)?.strip_prefix(b":")?;
                    let end = rest
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .unwrap_or(rest.len());
                    return parse_u64(&rest[..end]);
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return None;
                }
            }
            b',' if depth == 1 => expecting_key = true,
            b':' if depth == 1 => expecting_key = false,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Verifies entries (in log order) against signed checkpoints and an optional
/// trusted checkpoint; see [`LogVerifier::new`] for the arguments.
pub fn verify_entries<'a, I, L, T>(
    entries: I,
    key: &NoteVerifier,
    checkpoints: &[(L, T)],
    trusted: Option<&str>,
) -> Result<Summary, VerifyError>
where
    I: IntoIterator<Item = &'a LedgerEntry>,
    L: AsRef<str>,
    T: AsRef<str>,
{
    let mut v = LogVerifier::new(key, checkpoints, trusted)?;
    for e in entries {
        v.push_entry(e)?;
    }
    v.finish()
}

/// Verifies canonical entry bytes (in log order), as read from NDJSON, against
/// signed checkpoints and an optional trusted checkpoint.
pub fn verify_encoded<L: AsRef<str>, T: AsRef<str>>(
    lines: &[&[u8]],
    key: &NoteVerifier,
    checkpoints: &[(L, T)],
    trusted: Option<&str>,
) -> Result<Summary, VerifyError> {
    let mut v = LogVerifier::new(key, checkpoints, trusted)?;
    v.push_encoded_batch(lines)?;
    v.finish()
}

/// An inclusion proof for one entry, as `twokey audit prove` prints it.
///
/// Text form (one item per line, each ending in `\n`):
///
/// ```text
/// twokey inclusion proof
/// index 41
/// size 50
/// <base64 hash>      one line per proof hash, leaf level first
/// ```
///
/// Verify it with the entry's canonical bytes and a checkpoint of size `size`
/// whose signature was checked ([`NoteVerifier::verify_checkpoint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Index of the entry.
    pub index: u64,
    /// Tree size the proof is for (a checkpoint's size).
    pub size: u64,
    /// RFC 9162 inclusion path, leaf level first.
    pub hashes: Vec<Hash>,
}

const PROOF_HEADER: &str = "twokey inclusion proof";

impl InclusionProof {
    /// Builds the proof for entry `index` in the first `size` leaves.
    pub fn new<T: LeafHashes + ?Sized>(
        leaves: &T,
        index: u64,
        size: u64,
    ) -> Result<Self, ProofError> {
        Ok(Self {
            index,
            size,
            hashes: inclusion_proof(leaves, index, size)?,
        })
    }

    /// The text form (see the type docs).
    pub fn to_text(&self) -> String {
        let mut s = format!("{PROOF_HEADER}\nindex {}\nsize {}\n", self.index, self.size);
        for h in &self.hashes {
            s.push_str(&b64(h));
            s.push('\n');
        }
        s
    }

    /// Reads the text form.
    pub fn parse(text: &str) -> Result<Self, ProofError> {
        let bad = |m: &str| ProofError::Malformed(m.to_string());
        let mut lines = text.lines();
        if lines.next() != Some(PROOF_HEADER) {
            return Err(bad("first line is not \"twokey inclusion proof\""));
        }
        let mut number = |key: &str| -> Result<u64, ProofError> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(key))
                .and_then(|v| parse_u64(v.as_bytes()))
                .ok_or_else(|| bad(&format!("expected a line \"{key}N\"")))
        };
        let index = number("index ")?;
        let size = number("size ")?;
        let mut hashes = Vec::new();
        for l in lines {
            let raw = B64.decode(l).map_err(|_| bad("proof hash is not base64"))?;
            hashes.push(
                raw.try_into()
                    .map_err(|_| bad("proof hash is not 32 bytes"))?,
            );
        }
        Ok(Self {
            index,
            size,
            hashes,
        })
    }

    /// Checks that `entry_bytes` (canonical encoding) is entry `index` of the
    /// log whose signed checkpoint is `checkpoint`.
    pub fn verify(&self, entry_bytes: &[u8], checkpoint: &Checkpoint) -> Result<(), ProofError> {
        if checkpoint.size != self.size {
            return Err(ProofError::BadSizes {
                first: self.size,
                second: checkpoint.size,
                available: checkpoint.size,
            });
        }
        if top_level_index(entry_bytes) != Some(self.index) {
            return Err(ProofError::Malformed(format!(
                "the entry is not entry {}",
                self.index
            )));
        }
        verify_inclusion(
            &hash_leaf(entry_bytes),
            self.index,
            self.size,
            &self.hashes,
            &checkpoint.root,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn both_index_scanners_agree_on_any_entry(
            index in any::<u64>(), time_ms in any::<i64>(),
            kind in "[a-z\\\\\"\\.]{0,12}", actor in "\\PC{0,20}",
            subject in "[\\\\\"x,:{}]{0,12}", policy_hash in "\\PC{0,8}",
            data in "\\PC{0,30}",
        ) {
            let e = LedgerEntry {
                index, time_ms, kind, actor, subject, policy_hash,
                data: serde_json::json!({"index": 1, "s": data}),
            };
            let b = e.encode();
            prop_assert_eq!(index_from_tail(&b), Some(index));
            prop_assert_eq!(index_forward(&b), Some(index));
        }
    }

    #[test]
    fn inclusion_proof_text_round_trips_and_verifies() {
        let entries: Vec<LedgerEntry> = (0..13)
            .map(|i| LedgerEntry {
                index: i,
                time_ms: 0,
                kind: "k".into(),
                actor: "a".into(),
                subject: "s".into(),
                policy_hash: "p".into(),
                data: serde_json::json!({}),
            })
            .collect();
        let leaves: Vec<Hash> = entries.iter().map(LedgerEntry::leaf_hash).collect();
        let cp = Checkpoint::new("o", 13, crate::merkle::root_from_leaves(&leaves));
        let p = InclusionProof::new(&leaves, 5, 13).unwrap();
        let q = InclusionProof::parse(&p.to_text()).unwrap();
        assert_eq!(p, q);
        q.verify(&entries[5].encode(), &cp).unwrap();
        assert!(q.verify(&entries[6].encode(), &cp).is_err());
        let mut changed = entries[5].clone();
        changed.actor = "b".into();
        assert_eq!(
            q.verify(&changed.encode(), &cp),
            Err(ProofError::RootMismatch)
        );
        assert!(InclusionProof::parse("nope\n").is_err());
    }

    #[test]
    fn index_scanner() {
        let e = LedgerEntry {
            index: 42,
            time_ms: 1,
            kind: "k".into(),
            actor: "a\"index\":7".into(),
            subject: "s".into(),
            policy_hash: "p".into(),
            data: serde_json::json!({"index": 9, "x": ["index", {"index": 3}]}),
        };
        assert_eq!(top_level_index(&e.encode()), Some(42));
        assert_eq!(index_from_tail(&e.encode()), Some(42));
        assert_eq!(index_forward(&e.encode()), Some(42));
        let mut tricky = e.clone();
        tricky.subject = "x\\\",\"index\":5,\"kind\":\"\\".into();
        tricky.kind = "\\\\".into();
        assert_eq!(index_from_tail(&tricky.encode()), Some(42));
        assert_eq!(index_forward(&tricky.encode()), Some(42));
        assert_eq!(top_level_index(b"{\"index\":01}"), None);
        assert_eq!(top_level_index(b"{\"a\":{\"index\":1}}"), None);
        assert_eq!(top_level_index(b"[\"index\"]"), None);
        assert_eq!(top_level_index(b"{\"index\":"), None);
        assert_eq!(top_level_index(b""), None);
    }
}
