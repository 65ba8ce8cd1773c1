//! The integration tests of `twokey-providers` in one binary (one link instead of
//! 2); each module is one area, as a test file was before.

mod exec;
mod postgres;
