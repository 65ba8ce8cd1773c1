//! The integration tests of `twokey-web` in one binary (one link instead of
//! 2); each module is one area, as a test file was before.

mod cli_login_and_mfa;
mod dev_ui;
