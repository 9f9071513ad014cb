//! Time: the wall clock, and sleeping without blocking the worker.

use std::time::{SystemTime, UNIX_EPOCH};

pub use std::time::Duration;

use crate::abi;

/// Milliseconds since the Unix epoch (JavaScript's `Date.now()`).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Waits `d` (at millisecond resolution); other requests run meanwhile. A handler's wait
/// counts against `runtime.deadline_ms`.
pub async fn sleep(d: Duration) {
    let ms = d.as_millis().min(u64::MAX as u128) as u64;
    // A timer that trail refused (too many calls in flight) ends the wait early.
    let _ = abi::timer(ms).await;
}

/// A timer, as the reference SDK spells it: `Timer::after(d).wait().await`.
pub struct Timer {
    d: Duration,
}

impl Timer {
    pub fn after(d: Duration) -> Timer {
        Timer { d }
    }

    pub async fn wait(self) {
        sleep(self.d).await
    }
}
