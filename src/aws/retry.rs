//! Transient failures: which are retried, how many times, and how long to
//! wait between attempts. (A refusal of a signature's time is corrected
//! and retried too: see [`crate::aws::clock`].)
//!
//! The same policy governs the API calls (through the SDK's standard retry
//! mode) and the tunnel handshake (in [`crate::connect`]): at most
//! [`ATTEMPTS`] attempts in all, with exponential backoff and jitter, and
//! only before any byte has reached the user.

use std::time::Duration;

use aws_config::retry::RetryConfig;

/// Attempts in all, the first included.
pub const ATTEMPTS: u32 = 3;
/// The first backoff; each further one doubles, up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The SDK's retry settings: standard mode (throttling and 5xx answers,
/// timeouts and dropped connections are retried) with our bounds.
pub fn sdk_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// How long to wait after failed attempt number `attempt` (1-based): half
/// the exponential step, plus a random part up to the other half, so that
/// clients refused together do not come back together.
pub fn backoff(attempt: u32) -> Duration {
    backoff_with(attempt, rand::random::<f64>())
}

/// [`backoff`] with the random draw (in `[0, 1)`) given.
pub fn backoff_with(attempt: u32, draw: f64) -> Duration {
    let step = INITIAL_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    step / 2 + step.mul_f64(draw.clamp(0.0, 1.0) / 2.0)
}

/// Whether a refused tunnel handshake is worth another attempt: the
/// service is throttling (429) or failing for a moment (5xx).
pub fn transient_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        assert_eq!(backoff_with(1, 0.0), Duration::from_millis(125));
        assert_eq!(backoff_with(1, 1.0), Duration::from_millis(250));
        assert_eq!(backoff_with(2, 0.0), Duration::from_millis(250));
        assert_eq!(backoff_with(3, 0.5), Duration::from_millis(750));
        assert_eq!(backoff_with(30, 1.0), MAX_BACKOFF);
        let draws: std::collections::HashSet<_> = (0..20).map(|_| backoff(2)).collect();
        assert!(draws.len() > 1, "no jitter: {draws:?}");
    }

    #[test]
    fn only_throttling_and_server_errors_are_transient() {
        for s in [429, 500, 502, 503, 504] {
            assert!(transient_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 101] {
            assert!(!transient_status(s), "{s}");
        }
    }
}
