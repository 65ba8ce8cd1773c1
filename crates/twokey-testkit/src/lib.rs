//! What twokey's integration tests share (a dev-dependency of the tests;
//! the benchmark binary uses it too, never a shipped crate).
//!
//! - [`eventually`]: wait for a condition with a deadline, polling, instead
//!   of a fixed sleep; the panic names what was awaited and the last reason
//!   it was not there yet.
//! - [`timeline_kinds`]: the ledger kinds of a request as the API shows it.
//! - [`listening_address`]: where a `twokey serve` child listens, from its log.
//! - [`Api`]: a typed client of the JSON API for one identity
//!   ([`NewRequest`], [`State`](twokey_core::request::State) waits).
//! - [`policy`]: the demo's people, which the test policies are built
//!   from instead of a copy in each test file.
//!
//! Tests that need time to pass use the server's `OffsetClock` (a manual
//! clock) rather than sleeping; `eventually` is for work another task or
//! process does (the scheduler, a child `twokey serve`).

pub mod api;
pub mod policy;

pub use api::{Answer, Api, NewRequest};

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

/// The address in `twokey serve`'s "listening on http://ADDR" log line
/// (`127.0.0.1:PORT`), or `None` for any other line.
pub fn listening_address(line: &str) -> Option<String> {
    const MARK: &str = "listening on http://";
    let pos = line.find(MARK)?;
    Some(
        line[pos + MARK.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect(),
    )
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
    fn finds_the_listening_address() {
        let l = "2026-12-03T10:00:00Z INFO twokey: listening on http://127.0.0.1:40123 (api, ui)";
        assert_eq!(listening_address(l).as_deref(), Some("127.0.0.1:40123"));
        assert_eq!(listening_address("starting"), None);
    }

    #[test]
    fn reads_timeline_kinds() {
        let v = serde_json::json!({"timeline": [{"kind": "request.created"}, {"x": 1}]});
        assert_eq!(timeline_kinds(&v), ["request.created", "?"]);
        assert!(timeline_kinds(&serde_json::json!({})).is_empty());
    }
}
