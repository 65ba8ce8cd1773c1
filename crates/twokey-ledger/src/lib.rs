//! twokey's ledger: the one record of everything the broker does.
//!
//! This crate is pure (no database, no clock): the store hands it entries and
//! gets back canonical bytes and hashes to persist in the same transaction as the
//! state change the entry describes.

pub mod bundle;
pub mod checkpoint;
pub mod entry;
pub mod merkle;
pub mod verify;

pub use entry::LedgerEntry;
