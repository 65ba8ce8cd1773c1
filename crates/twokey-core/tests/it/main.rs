//! The integration tests of `twokey-core` in one binary (one link instead of
//! 8); each module is one area, as a test file was before.

mod custody_policy;
mod invariants;
mod ledger_fixture;
mod notify;
mod policy;
mod secrets_and_bounds;
mod separation_of_duties;
mod step_up_mfa;
