//! The guard's integration tests, one binary (one module per area).

mod activity;
#[cfg(feature = "aws")]
mod aws_moto;
mod scan;
mod sigma_diff;
mod two_person;
