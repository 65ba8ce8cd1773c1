//! A private tokio runtime for the network calls (twokey API, AWS), usable
//! from synchronous code even when the caller itself runs inside a tokio
//! runtime (as `twokey guard` does inside the `twokey` binary): futures are
//! spawned onto the private runtime and their results waited for on a
//! standard channel, so no `block_on` ever nests.

use std::future::Future;

/// The runtime; shut down in the background when dropped (dropping a
/// runtime normally panics inside another runtime).
pub(crate) struct Rt(Option<tokio::runtime::Runtime>);

impl Rt {
    /// A runtime with one worker thread and I/O and timers enabled.
    pub(crate) fn new() -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("twokey-guard-io")
            .enable_all()
            .build()?;
        Ok(Rt(Some(rt)))
    }

    /// Starts `f` on the runtime; the receiver yields its output.
    pub(crate) fn start<F>(&self, f: F) -> std::sync::mpsc::Receiver<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if let Some(rt) = &self.0 {
            rt.spawn(async move {
                let _ = tx.send(f.await);
            });
        }
        rx
    }

    /// Runs `f` on the runtime and waits for its output.
    pub(crate) fn run<F, T>(&self, f: F) -> anyhow::Result<T>
    where
        F: Future<Output = anyhow::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.start(f)
            .recv()
            .map_err(|_| anyhow::anyhow!("background network task ended without a result"))?
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
