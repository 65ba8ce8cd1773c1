//! The integration tests of `twokey-notify` in one binary (one link instead of
//! 2); each module is one area, as a test file was before.

mod http;
mod slack_app;
