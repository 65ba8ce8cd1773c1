//! What twokey's integration tests share (a dev-dependency only).
//!
//! - [`eventually`]: wait for a condition with a deadline, polling, instead
//!   of a fixed sleep; the panic names what was awaited and the last reason
//!   it was not there yet.
//! - [`timeline_kinds`]: the ledger kinds of a request as the API shows it.
//!
//! Tests that need time to pass use the server's `OffsetClock` (a manual
//! clock) rather than sleeping; `eventually` is for work another task or
//! process does (the scheduler, a child `twokey serve`).

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`eventually`] asks again.
pub const POLL: Duration = Duration::from_millis(25);

/// Polls `check` every [`POLL`] until it returns `Ok`, and returns that
/// value; panics with `what` and the last `Err` once `timeout` has passed.
/// `check` runs at least once, even with a zero timeout.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(msg) => {
                if start.elapsed() >= timeout {
                    panic!("timed out after {timeout:?} waiting for {what}: {msg}");
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The `kind` of each entry of `v["timeline"]` (a `GET /v1/requests/{id}`
/// answer), in order; `?` for an entry without one.
pub fn timeline_kinds(v: &serde_json::Value) -> Vec<String> {
    v["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|e| e["kind"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_once_the_condition_holds() {
        let n = AtomicU32::new(0);
        let got = eventually("the third try", Duration::from_secs(5), || async {
            match n.fetch_add(1, Ordering::SeqCst) {
                i if i >= 2 => Ok(i),
                i => Err(format!("try {i}")),
            }
        })
        .await;
        assert_eq!(got, 2);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for never: still no")]
    async fn panics_with_the_last_reason() {
        eventually("never", Duration::from_millis(60), || async {
            Err::<(), _>("still no".to_string())
        })
        .await;
    }

    #[test]
    fn reads_timeline_kinds() {
        let v = serde_json::json!({"timeline": [{"kind": "request.created"}, {"x": 1}]});
        assert_eq!(timeline_kinds(&v), ["request.created", "?"]);
        assert!(timeline_kinds(&serde_json::json!({})).is_empty());
    }
}
