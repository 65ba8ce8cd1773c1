//! The integration tests of `twokey` in one binary (one link instead of
//! 13); each module is one area, as a test file was before.

#[path = "../../../twokey-aws/tests/it/common/mod.rs"]
mod moto;
mod support;

mod audit;
mod aws;
mod can;
mod custody;
mod gate;
mod posture;
mod posture_baseline;
mod processes;
mod quickstart;
mod report;
mod root_task;
mod slack;
mod who_can;
