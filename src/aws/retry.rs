//! Transient failures: which are retried, how many times, how long to wait
//! between attempts, and the clock correction a time-window refusal teaches.
//!
//! The same policy governs the API calls (through the SDK's standard retry
//! mode) and the tunnel handshake (in [`crate::connect`]): at most
//! [`ATTEMPTS`] attempts in all, with exponential backoff and jitter, and
//! only before any byte has reached the user.

use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;

/// Attempts in all, the first included.
pub const ATTEMPTS: u32 = 3;
/// The first backoff; each further one doubles, up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A clock further than this from the service's is worth correcting: the
/// presigned URL is valid for 60 s only.
pub const SIGNIFICANT_SKEW_SECS: i64 = 30;

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

/// Seconds to add to this machine's clock to match the service's, when they
/// differ enough to break a presigned URL; `None` otherwise.
pub fn significant_skew(service: SystemTime, local: SystemTime) -> Option<i64> {
    let skew = match service.duration_since(local) {
        Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
        Err(behind) => -i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX),
    };
    (skew.abs() > SIGNIFICANT_SKEW_SECS).then_some(skew)
}

/// `now` moved by `skew` seconds.
pub fn corrected(now: SystemTime, skew: i64) -> SystemTime {
    let by = Duration::from_secs(skew.unsigned_abs());
    match skew >= 0 {
        true => now + by,
        false => now.checked_sub(by).unwrap_or(now),
    }
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

    #[test]
    fn skew_is_signed_and_small_skews_are_ignored() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(significant_skew(t + Duration::from_secs(300), t), Some(300));
        assert_eq!(
            significant_skew(t - Duration::from_secs(300), t),
            Some(-300)
        );
        assert_eq!(significant_skew(t + Duration::from_secs(5), t), None);
        assert_eq!(corrected(t, -300), t - Duration::from_secs(300));
        assert_eq!(corrected(t, 300), t + Duration::from_secs(300));
    }
}
