//! The integration tests of `twokey-server` in one binary (one link instead of
//! 9); each module is one area, as a test file was before.

#[path = "../../../twokey-aws/tests/it/common/mod.rs"]
mod moto;
mod support;

mod audit;
mod broker;
mod contract;
mod directory;
mod notifications;
mod posture;
mod read_access;
mod reconciler;
mod report;
mod slack;
