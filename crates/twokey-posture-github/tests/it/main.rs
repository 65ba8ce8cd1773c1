//! The integration tests of `twokey-posture-github` in one binary (one link instead of
//! 4); each module is one area, as a test file was before.

mod bench_github;
mod checks;
mod guardrails_as_code;
mod realtime;
