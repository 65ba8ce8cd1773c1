//! Time for the broker. The core takes `now` as an argument; this is where it
//! comes from.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use twokey_core::Millis;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, Unix milliseconds.
    fn now(&self) -> Millis;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// The system clock shifted by an adjustable offset, so tests can jump ahead
/// ("30 minutes later") while real processes and targets keep running.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Millis {
        SystemClock.now() + self.offset_ms.load(Ordering::SeqCst)
    }
}
