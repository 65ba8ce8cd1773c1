//! The integration tests of `twokey-iam` in one binary (one link instead of
//! 6); each module is one area, as a test file was before.

mod common;

mod auth_details;
mod differential;
mod evaluation;
mod gateway_policies;
mod graph;
mod iam_assume_table;
