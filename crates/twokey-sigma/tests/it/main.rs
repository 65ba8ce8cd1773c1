//! The Sigma engine's integration tests, one binary (one module per area).

mod correlation;
mod modifiers;
