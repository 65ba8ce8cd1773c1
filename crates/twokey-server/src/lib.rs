//! The twokey broker as a service: the [`Broker`] (domain core + store +
//! providers + alerts, with time from a [`Clock`]), its scheduler, and the
//! versioned HTTP API.
//!
//! Handlers in [`api`] are thin: extract, call the broker, map the error. No
//! business rule lives in this crate that is not in `twokey-core`; what lives
//! here is orchestration (transactions, retries, leases, provider calls).

pub mod activity;
pub mod api;
pub mod broker;
pub mod checkpoints;
pub mod clock;
pub mod config;
pub mod contract;
pub mod custody;
pub mod dev;
pub mod error;
pub mod metrics;
pub mod posture;
pub mod reads;
pub mod reconciler;
pub mod report;
pub mod scim;
pub mod slack;

pub use broker::{Broker, BrokerError, BrokerOptions};
pub use clock::{Clock, OffsetClock, SystemClock};
pub use error::ApiError;

use sha2::{Digest, Sha256};

/// Hash of an API token as stored (tokens themselves are never stored).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random API token.
pub fn new_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::thread_rng().gen();
    format!("tk_{}", hex::encode(bytes))
}

/// A new request or proposal id: a prefix and 12 random lowercase base-36
/// characters (safe inside provider resource names).
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let s: String = (0..12)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}-{s}")
}

/// Serves the API on `listener` and runs the scheduler and the reconciler
/// until `shutdown` fires (no web UI, no checkpointer: what the server's own
/// tests run).
pub async fn serve(
    broker: std::sync::Arc<Broker>,
    listener: tokio::net::TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    serve_documented(broker, axum::Router::new(), None, listener, shutdown, None).await
}

/// Everything: the API with `extra` routes (the web UI) merged in, with
/// `extra_doc` (the OpenAPI operations of the `extra` routes) merged into
/// `/v1/openapi.json`, the scheduler, the reconciler, and the ledger
/// checkpointer when given.
pub async fn serve_documented(
    broker: std::sync::Arc<Broker>,
    extra: axum::Router,
    extra_doc: Option<utoipa::openapi::OpenApi>,
    listener: tokio::net::TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
    checkpointer: Option<checkpoints::Checkpointer>,
) -> anyhow::Result<()> {
    let cps = checkpointer.map(|c| tokio::spawn(c.run(shutdown.clone())));
    let sched = tokio::spawn(broker.clone().run_scheduler(shutdown.clone()));
    let recon = tokio::spawn(reconciler::Reconciler::new(broker.clone()).run(shutdown.clone()));
    let mut stop = shutdown.clone();
    axum::serve(listener, api::router_with(broker, extra, extra_doc))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|v| *v).await;
        })
        .await?;
    let _ = sched.await;
    let _ = recon.await;
    if let Some(c) = cps {
        let _ = c.await;
    }
    Ok(())
}
