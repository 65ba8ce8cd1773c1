//! twokey's ledger: the one record of everything the broker does, made
//! tamper-evident.
//!
//! This crate is pure library code (no database, no clock, no network): the
//! store hands it entries and gets back canonical bytes, hashes and a
//! [`Frontier`] to persist in the same transaction as the state change the
//! entry describes; the server asks it to sign checkpoints and build bundles;
//! `twokey audit verify` asks it to check a log with only the public key.
//!
//! - [`entry`]: [`LedgerEntry`] and its canonical encoding (RFC 8785 JCS).
//! - [`merkle`]: RFC 6962 / RFC 9162 tree, [`Frontier`] for O(log n) appends,
//!   inclusion and consistency proofs.
//! - [`checkpoint`]: C2SP `tlog-checkpoint` in a C2SP `signed-note`, Ed25519,
//!   key strings compatible with Go's `sumdb/note`, key files (mode 0600).
//! - [`bundle`]: checkpoint + entries since the previous one, the [`Sink`]
//!   trait and the local-directory sink.
//! - [`verify`]: offline verification that reports the first bad entry.
//!
//! See the crate's README for the formats and the auditor's walkthrough.

#![warn(missing_docs)]

pub mod bundle;
pub mod checkpoint;
pub mod entry;
pub mod merkle;
pub mod verify;

pub use bundle::{Bundle, DirSink, Sink};
pub use checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
pub use entry::LedgerEntry;
pub use merkle::{Frontier, Hash};
pub use verify::{InclusionProof, LogVerifier, Summary, VerifyError};
