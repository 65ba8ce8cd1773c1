//! Bundles: what the ledger publishes at each checkpoint, and where.
//!
//! A bundle is a signed checkpoint plus the entries added since the previous
//! checkpoint. In a directory sink each bundle is one subdirectory named by
//! the checkpoint's tree size, zero-padded to 20 digits so names sort in log
//! order:
//!
//! ```text
//! DIR/00000000000000000050/checkpoint      signed note (C2SP tlog-checkpoint)
//! DIR/00000000000000000050/entries.ndjson  entries [previous size, 50), one
//!                                          canonical encoding per line, each
//!                                          line ending in "\n"
//! ```
//!
//! The first entry of a bundle is the previous bundle's size (0 for the first
//! bundle); a checkpoint with no new entries has an empty `entries.ndjson`.
//! Bundles are written once: a bundle is built in a hidden temporary directory
//! and renamed into place, and publishing a different bundle under an existing
//! name is refused (publishing the same one again is a no-op, so retries are safe).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::checkpoint::{Checkpoint, NoteVerifier};
use crate::entry::LedgerEntry;
use crate::verify::{LogVerifier, Summary, VerifyError};

/// File name of the signed checkpoint in a bundle directory.
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// File name of the entries in a bundle directory.
pub const ENTRIES_FILE: &str = "entries.ndjson";

/// A signed checkpoint and the entries since the previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The checkpoint (parsed from `note`).
    pub checkpoint: Checkpoint,
    /// The signed-note text of the checkpoint, as published.
    pub note: String,
    /// Index of the first entry in the bundle (the previous checkpoint's size).
    pub from: u64,
    /// Entries `from..checkpoint.size`, canonical encoding, one per line.
    pub entries_ndjson: Vec<u8>,
}

/// Why a bundle could not be built or published.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The bundle's entries do not match its checkpoint.
    #[error("bundle for checkpoint {size}: {reason}")]
    Invalid {
        /// Checkpoint size.
        size: u64,
        /// Why.
        reason: String,
    },
    /// A different bundle is already published under this name.
    #[error("{path}: a different bundle is already published here; refusing to overwrite")]
    Conflict {
        /// Where.
        path: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Any other sink's failure (network, object store, ...).
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl Bundle {
    /// Builds a bundle from a signed checkpoint and the entries `from..size`.
    pub fn new(
        note: String,
        checkpoint: Checkpoint,
        from: u64,
        entries: &[LedgerEntry],
    ) -> Result<Self, SinkError> {
        let size = checkpoint.size;
        let invalid = |reason: String| SinkError::Invalid { size, reason };
        if from > size || size - from != entries.len() as u64 {
            return Err(invalid(format!(
                "{} entries given but {from}..{size} needs {}",
                entries.len(),
                size.saturating_sub(from)
            )));
        }
        let mut ndjson = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if e.index != from + i as u64 {
                return Err(invalid(format!(
                    "entry {} has index {}",
                    from + i as u64,
                    e.index
                )));
            }
            e.encode_into(&mut ndjson);
            ndjson.push(b'\n');
        }
        Ok(Self {
            checkpoint,
            note,
            from,
            entries_ndjson: ndjson,
        })
    }

    /// The bundle's directory name: the size, zero-padded to 20 digits.
    pub fn dir_name(&self) -> String {
        format!("{:020}", self.checkpoint.size)
    }
}

/// Somewhere bundles are published: a local directory, an object store.
pub trait Sink {
    /// Publishes `bundle`; must be idempotent for an identical bundle and
    /// must refuse to replace a different one.
    fn publish(&self, bundle: &Bundle) -> Result<(), SinkError>;
}

/// A local directory sink (see the module docs for the layout).
#[derive(Debug, Clone)]
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    /// A sink writing under `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let mut f = fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn same_bundle(dir: &Path, bundle: &Bundle) -> Result<bool, SinkError> {
    let cp = dir.join(CHECKPOINT_FILE);
    let en = dir.join(ENTRIES_FILE);
    let read = |p: &Path| match fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(p)(e)),
    };
    Ok(read(&cp)?.as_deref() == Some(bundle.note.as_bytes())
        && read(&en)?.as_deref() == Some(bundle.entries_ndjson.as_slice()))
}

/// A bundle directory exists already: fine if it is this very bundle (a
/// retry), a conflict otherwise.
fn already_published(target: &Path, bundle: &Bundle) -> Result<(), SinkError> {
    if same_bundle(target, bundle)? {
        Ok(())
    } else {
        Err(SinkError::Conflict {
            path: target.display().to_string(),
        })
    }
}

impl Sink for DirSink {
    fn publish(&self, bundle: &Bundle) -> Result<(), SinkError> {
        fs::create_dir_all(&self.root).map_err(io(&self.root))?;
        let target = self.root.join(bundle.dir_name());
        if target.exists() {
            return already_published(&target, bundle);
        }
        // Unique per process and call, so concurrent publishers never share one.
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self.root.join(format!(
            ".tmp-{}-{}-{seq}",
            bundle.dir_name(),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).map_err(io(&tmp))?;
        write_synced(&tmp.join(ENTRIES_FILE), &bundle.entries_ndjson)?;
        write_synced(&tmp.join(CHECKPOINT_FILE), bundle.note.as_bytes())?;
        // rename(2) refuses to replace a non-empty directory, so a bundle that
        // appeared meanwhile is never overwritten.
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_dir_all(&tmp);
            if target.exists() {
                return already_published(&target, bundle);
            }
            return Err(io(&target)(e));
        }
        fs::File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.root))
    }
}

/// Bundle directories under `dir`, in log order (other names are ignored).
pub fn list_bundles(dir: &Path) -> Result<Vec<(u64, PathBuf)>, VerifyError> {
    let ioerr = |source| VerifyError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for item in fs::read_dir(dir).map_err(ioerr)? {
        let item = item.map_err(ioerr)?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(size) = name.parse::<u64>() {
                out.push((size, item.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One published bundle as a verifier sees it, from any sink.
#[derive(Debug, Clone)]
pub struct PublishedBundle {
    /// Where it came from, for messages (a path, an object key).
    pub label: String,
    /// The tree size its name claims (directory name, object key).
    pub size: u64,
    /// The signed-note text of its checkpoint.
    pub note: String,
}

/// Verifies a sequence of bundles (in log order) from any sink: the
/// checkpoints are checked up front, then `entries(i)` is called for bundle
/// `i` to fetch its `entries.ndjson` bytes, so a large export is streamed one
/// bundle at a time. Checks everything [`LogVerifier`] checks, plus that each
/// bundle's name matches its checkpoint and that its entries end exactly at
/// its checkpoint.
pub fn verify_bundles(
    bundles: &[PublishedBundle],
    key: &NoteVerifier,
    trusted: Option<&str>,
    mut entries: impl FnMut(usize) -> Result<Vec<u8>, VerifyError>,
) -> Result<Summary, VerifyError> {
    let notes: Vec<(&str, &str)> = bundles
        .iter()
        .map(|b| (b.label.as_str(), b.note.as_str()))
        .collect();
    let mut v = LogVerifier::new(key, &notes, trusted)?;
    for (i, b) in bundles.iter().enumerate() {
        // Signatures were checked by LogVerifier::new; only the size is needed.
        let claimed = b
            .note
            .split_once("\n\n")
            .and_then(|(body, _)| Checkpoint::parse_body(&format!("{body}\n")).ok())
            .map(|c| c.size);
        if claimed != Some(b.size) {
            return Err(VerifyError::Bundle {
                path: b.label.clone(),
                reason: format!(
                    "named for size {} but its checkpoint says {}",
                    b.size,
                    claimed.map_or("nothing readable".to_string(), |c| c.to_string())
                ),
            });
        }
        let data = entries(i)?;
        if !data.is_empty() && !data.ends_with(b"\n") {
            return Err(VerifyError::Bundle {
                path: b.label.clone(),
                reason: "last entry line is cut short (no final newline)".into(),
            });
        }
        let lines: Vec<&[u8]> = data
            .split(|c| *c == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        v.push_encoded_batch(&lines)?;
        if v.size() != b.size {
            let reason = if v.size() < b.size {
                match v.size() {
                    0 => format!("log is empty but checkpoint says {}: truncated", b.size),
                    n => format!(
                        "entries end at {} but checkpoint says {}: truncated",
                        n - 1,
                        b.size
                    ),
                }
            } else {
                format!(
                    "holds entries up to {} beyond its checkpoint size {}",
                    v.size() - 1,
                    b.size
                )
            };
            return Err(VerifyError::Bundle {
                path: b.label.clone(),
                reason,
            });
        }
    }
    v.finish()
}

/// Verifies every bundle under `dir` (layout in the module docs) with only
/// the log's public key and, optionally, a trusted checkpoint held elsewhere.
pub fn verify_bundle_dir(
    dir: &Path,
    key: &NoteVerifier,
    trusted: Option<&str>,
) -> Result<Summary, VerifyError> {
    let read = |p: &Path| {
        fs::read(p).map_err(|source| VerifyError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    let found = list_bundles(dir)?;
    let mut bundles = Vec::with_capacity(found.len());
    for (size, path) in &found {
        let cp_path = path.join(CHECKPOINT_FILE);
        let note = String::from_utf8(read(&cp_path)?).map_err(|_| VerifyError::Bundle {
            path: cp_path.display().to_string(),
            reason: "checkpoint is not UTF-8".into(),
        })?;
        bundles.push(PublishedBundle {
            label: path.display().to_string(),
            size: *size,
            note,
        });
    }
    verify_bundles(&bundles, key, trusted, |i| {
        read(&found[i].1.join(ENTRIES_FILE))
    })
}
