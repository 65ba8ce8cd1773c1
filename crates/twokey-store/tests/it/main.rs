//! The integration tests of `twokey-store` in one binary (one link instead of
//! 5); each module is one area, as a test file was before.

mod group_commit;
mod keys_and_people;
mod posture;
mod slack;
mod web_state;
