//! The retry settings (`--retries`, `--retry-max-wait`) and their defaults;
//! the client (src/client/retry.rs) applies them.

use std::time::Duration;

/// `--retries` when not given.
pub const DEFAULT_RETRIES: u32 = 3;
/// `--retry-max-wait` when not given.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(30);
/// The backoff before the first retry is drawn from `[0, BASE)`, before the
/// second from `[0, 2 × BASE)`, and so on, up to the cap.
pub const DEFAULT_BASE: Duration = Duration::from_millis(500);

/// The retry settings: `--retries`, `--retry-max-wait` and the backoff base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Further attempts after the first one.
    pub retries: u32,
    /// No wait is longer than this, whatever the backoff or the server says.
    pub max_wait: Duration,
    pub base: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: DEFAULT_RETRIES,
            max_wait: DEFAULT_MAX_WAIT,
            base: DEFAULT_BASE,
        }
    }
}
