//! The integration tests of `twokey-aws` in one binary (one link instead of
//! 4); each module is one area, as a test file was before.

mod common;

mod iam_assume;
mod identity_center;
mod root_task;
mod security_group;
