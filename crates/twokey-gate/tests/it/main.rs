//! The deploy gate's integration tests, one binary (one module per area):
//! a change relinks one test binary instead of ten. The crash tests re-run
//! this binary as a child process (`crash::gate_child_process`).

mod config;
mod crash;
mod db;
mod drift;
mod e2e;
mod evidence;
mod redact;
mod requirements;
mod terraform;
mod webhook;
