//! The checkpointer: signs ledger checkpoints and publishes bundles.
//!
//! Every `checkpoint_every` entries or `checkpoint_interval` (whichever comes
//! first), and once more at shutdown, the checkpointer signs a C2SP
//! checkpoint of the whole log and stores it in the `checkpoints` table
//! ([`Store::create_checkpoint`] runs under the ledger head's lock, so the
//! size and root are exact and only one replica signs a given size). Then
//! each unpublished checkpoint, in size order, is published as a bundle (the
//! checkpoint plus the entries since the previous checkpoint) to every sink.
//!
//! A publish that fails is never dropped: the checkpoint stays unpublished,
//! is retried with exponential backoff, later checkpoints wait behind it (so
//! sinks never have gaps), and the failure is recorded in the ledger as
//! `ledger.publish_failed` with `alert: true` (on the first failure and every
//! tenth after), which the alert outbox delivers.
//!
//! Sinks implement [`BundleSink`], an async trait object; the local
//! directory sink wraps [`twokey_ledger::DirSink`] on a blocking thread.
//! Object-store sinks (S3 with Object Lock, crate `twokey-ledger-s3`) are
//! built by the binary and passed in, so this crate does not depend on a
//! cloud SDK.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use twokey_core::event::PublishFailed;
use twokey_core::{Actor, LedgerEvent};
use twokey_ledger::bundle::SinkError;
use twokey_ledger::checkpoint::load_or_generate_key_file;
use twokey_ledger::{Bundle, Checkpoint, DirSink, NoteSigner, Sink};
use twokey_store::Store;

use crate::clock::Clock;

/// `[ledger]` in `twokey.toml`.
///
/// ```toml
/// [ledger]
/// checkpoint_every = 1000
/// checkpoint_interval = "60s"
/// key_file = "/var/lib/twokey/ledger.key"   # generated (mode 0600) on first start
/// origin = "twokey.example.com/ledger"
///
/// [[ledger.sink]]
/// kind = "dir"
/// path = "/var/lib/twokey/ledger-bundles"
///
/// [[ledger.sink]]
/// kind = "s3"
/// bucket = "audit-worm"
/// prefix = "twokey/ledger"
/// region = "eu-west-1"
/// retention_days = 2555
/// # endpoint_url = "http://127.0.0.1:5000"   # tests (moto)
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Sign a checkpoint once this many entries were added.
    #[serde(default = "default_every")]
    pub checkpoint_every: u64,
    /// ... or once this much time passed with new entries (`60s`, `5m`).
    #[serde(default = "default_interval")]
    pub checkpoint_interval: String,
    /// Signing key file; generated on first start. Default `ledger.key` next
    /// to the config file.
    #[serde(default)]
    pub key_file: Option<String>,
    /// Log origin (first line of every checkpoint, and the key's name).
    #[serde(default)]
    pub origin: Option<String>,
    /// Where bundles are published.
    #[serde(default)]
    pub sink: Vec<LedgerSinkConfig>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: default_every(),
            checkpoint_interval: default_interval(),
            key_file: None,
            origin: None,
            sink: vec![],
        }
    }
}

fn default_every() -> u64 {
    1000
}

fn default_interval() -> String {
    "60s".into()
}

fn default_retention() -> u32 {
    2555
}

/// `[[ledger.sink]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LedgerSinkConfig {
    /// A local directory (see `twokey_ledger::bundle` for the layout).
    Dir {
        /// Directory path.
        path: String,
    },
    /// An S3 bucket with Object Lock (COMPLIANCE mode) enabled.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix (no leading or trailing slash needed).
        #[serde(default)]
        prefix: String,
        /// Region.
        #[serde(default)]
        region: Option<String>,
        /// Endpoint override (moto in tests, S3-compatible stores).
        #[serde(default)]
        endpoint_url: Option<String>,
        /// Object Lock retention in days.
        #[serde(default = "default_retention")]
        retention_days: u32,
    },
}

/// A boxed future, for object-safe async sinks.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Somewhere bundles are published, asynchronously. Publishing must be
/// idempotent for an identical bundle (retries are safe) and must refuse to
/// replace a different one.
pub trait BundleSink: Send + Sync {
    /// Name for messages and alerts.
    fn name(&self) -> String;
    /// Publishes one bundle.
    fn publish<'a>(&'a self, bundle: &'a Bundle) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// [`DirSink`] as a [`BundleSink`] (file I/O on a blocking thread).
pub struct DirBundleSink {
    dir: PathBuf,
}

impl DirBundleSink {
    /// A directory sink at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

impl BundleSink for DirBundleSink {
    fn name(&self) -> String {
        format!("dir:{}", self.dir.display())
    }

    fn publish<'a>(&'a self, bundle: &'a Bundle) -> BoxFuture<'a, Result<(), SinkError>> {
        let dir = self.dir.clone();
        let bundle = bundle.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || DirSink::new(dir).publish(&bundle))
                .await
                .map_err(|e| SinkError::Other(Box::new(e)))?
        })
    }
}

/// Tunables of the checkpointer.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// Log origin (checkpoint first line).
    pub origin: String,
    /// Sign once this many entries were added.
    pub every: u64,
    /// ... or once this much time passed with new entries.
    pub interval: Duration,
    /// How often the checkpointer looks at the log.
    pub poll: Duration,
    /// First retry delay after a failed publish; doubles up to `max_backoff`.
    pub base_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        Self {
            origin: "twokey/ledger".into(),
            every: 1000,
            interval: Duration::from_secs(60),
            poll: Duration::from_millis(500),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Signs checkpoints and publishes bundles (see the module docs).
pub struct Checkpointer {
    store: Store,
    signer: NoteSigner,
    sinks: Vec<Arc<dyn BundleSink>>,
    clock: Arc<dyn Clock>,
    opts: CheckpointOptions,
}

/// Loads the signing key at `path`, generating it (mode 0600) on first start.
pub fn load_key(path: &Path, origin: &str) -> anyhow::Result<NoteSigner> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let signer = load_or_generate_key_file(path, origin)?;
    if signer.name() != origin {
        tracing::warn!(
            key = signer.name(),
            origin,
            "the ledger key's name differs from the configured origin; checkpoints use the origin, signatures the key's name"
        );
    }
    Ok(signer)
}

/// Parses `checkpoint_interval`.
pub fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let ms = twokey_core::time::parse_duration(s)
        .map_err(|e| anyhow::anyhow!("[ledger] checkpoint_interval {s:?}: {e}"))?;
    Ok(Duration::from_millis(ms.max(1) as u64))
}

impl Checkpointer {
    /// A checkpointer over `store`, signing with `signer`, publishing to `sinks`.
    pub fn new(
        store: Store,
        signer: NoteSigner,
        sinks: Vec<Arc<dyn BundleSink>>,
        clock: Arc<dyn Clock>,
        opts: CheckpointOptions,
    ) -> Self {
        Self {
            store,
            signer,
            sinks,
            clock,
            opts,
        }
    }

    /// The public key auditors verify with.
    pub fn public_key(&self) -> String {
        self.signer.verifier().to_string()
    }

    /// Signs a checkpoint if the log grew by at least `min_new` entries since
    /// the latest one. Returns the size signed.
    pub async fn sign_if_grown(&self, min_new: u64) -> anyhow::Result<Option<u64>> {
        let origin = self.opts.origin.clone();
        let signer = &self.signer;
        Ok(self
            .store
            .create_checkpoint(self.clock.now(), min_new, |size, root| {
                signer.sign_checkpoint(&Checkpoint::new(origin, size, root))
            })
            .await?)
    }

    fn backoff_ms(&self, attempts: i64) -> i64 {
        let base = self.opts.base_backoff.as_millis() as i64;
        let shift = attempts.clamp(0, 20) as u32;
        base.saturating_mul(1i64 << shift)
            .min(self.opts.max_backoff.as_millis() as i64)
    }

    /// Publishes every unpublished checkpoint whose retry time has come, in
    /// size order, stopping at the first failure (later bundles wait, so a
    /// sink never has a gap). Returns how many were published.
    pub async fn publish_pending(&self) -> anyhow::Result<usize> {
        let mut done = 0;
        for cp in self.store.unpublished_checkpoints().await? {
            let now = self.clock.now();
            if cp.next_attempt > now {
                break;
            }
            match self.publish_one(cp.size, &cp.note).await {
                Ok(()) => {
                    self.store
                        .checkpoint_publish_result(cp.size, self.clock.now(), None, 0)
                        .await?;
                    if cp.publish_attempts > 0 {
                        tracing::info!(
                            size = cp.size,
                            attempts = cp.publish_attempts + 1,
                            "ledger bundle published after retries"
                        );
                    }
                    done += 1;
                }
                Err(e) => {
                    let now = self.clock.now();
                    let retry_at = now + self.backoff_ms(cp.publish_attempts);
                    let attempts = self
                        .store
                        .checkpoint_publish_result(cp.size, now, Some(&e), retry_at)
                        .await?;
                    tracing::error!(size = cp.size, attempts, error = %e, "ledger bundle publish failed; will retry");
                    if attempts == 1 || attempts % 10 == 0 {
                        let ev = LedgerEvent::LedgerPublishFailed(PublishFailed {
                            checkpoint_size: cp.size,
                            attempts,
                            error: e.to_string(),
                            next_attempt_ms: retry_at,
                        })
                        .by(Actor::system().key.to_string());
                        // The policy hash is not known here; the entry is about the ledger.
                        self.store
                            .record(now, "", vec![(format!("checkpoint-{}", cp.size), ev)])
                            .await?;
                    }
                    break;
                }
            }
        }
        Ok(done)
    }

    async fn publish_one(&self, size: u64, note: &str) -> Result<(), String> {
        let from = self
            .store
            .previous_checkpoint_size(size)
            .await
            .map_err(|e| e.to_string())?;
        let mut entries = Vec::with_capacity((size - from) as usize);
        let mut next = from;
        while next < size {
            let page = self
                .store
                .ledger(next, ((size - next) as i64).min(10_000))
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            next = last.index + 1;
            entries.extend(page.into_iter().filter(|e| e.index < size));
        }
        let checkpoint = self
            .signer
            .verifier()
            .verify_checkpoint(note)
            .map_err(|e| format!("stored checkpoint {size}: {e}"))?;
        let bundle =
            Bundle::new(note.to_string(), checkpoint, from, &entries).map_err(|e| e.to_string())?;
        let mut errors = Vec::new();
        for sink in &self.sinks {
            if let Err(e) = sink.publish(&bundle).await {
                errors.push(format!("{}: {e}", sink.name()));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// One pass: sign if due, then publish what is pending.
    pub async fn tick(&self, last_signed: &mut tokio::time::Instant) -> anyhow::Result<()> {
        let due_by_time = last_signed.elapsed() >= self.opts.interval;
        let min_new = if due_by_time { 1 } else { self.opts.every };
        if self.sign_if_grown(min_new).await?.is_some() || due_by_time {
            *last_signed = tokio::time::Instant::now();
        }
        self.publish_pending().await?;
        Ok(())
    }

    /// Runs until `shutdown` fires, then signs a final checkpoint and tries
    /// once more to publish everything pending.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut last_signed = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = self.tick(&mut last_signed).await {
                tracing::error!(error = %e, "ledger checkpointer pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.opts.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
        if let Err(e) = self.sign_if_grown(1).await {
            tracing::error!(error = %e, "could not sign the shutdown checkpoint");
        }
        // Publish regardless of backoff: this may be the last chance for a while.
        if let Err(e) = self.publish_all_now().await {
            tracing::error!(error = %e, "could not publish at shutdown; will retry at next start");
        }
    }

    /// Publishes every pending checkpoint now, ignoring backoff.
    pub async fn publish_all_now(&self) -> anyhow::Result<usize> {
        let mut done = 0;
        for cp in self.store.unpublished_checkpoints().await? {
            self.publish_one(cp.size, &cp.note)
                .await
                .map_err(|e| anyhow::anyhow!("checkpoint {}: {e}", cp.size))?;
            self.store
                .checkpoint_publish_result(cp.size, self.clock.now(), None, 0)
                .await?;
            done += 1;
        }
        Ok(done)
    }
}
