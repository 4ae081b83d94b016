//! Trunk-side policy, sans-IO: the per-trunk call-rate and concurrency
//! limits (`max_calls_per_second`, `max_concurrent_calls`) and the up/down
//! state the OPTIONS keepalive keeps.

use std::time::{Duration, Instant};

/// A token bucket for new INVITEs plus a ceiling on calls up at once.
#[derive(Debug, Clone)]
pub struct TrunkLimiter {
    interval: Duration,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
    max_concurrent: usize,
}

impl TrunkLimiter {
    /// `calls_per_second` ≤ 0 means no rate limit; the bucket holds one
    /// second's worth (at least one call).
    pub fn new(calls_per_second: f64, max_concurrent: usize) -> Self {
        let rate = if calls_per_second > 0.0 {
            calls_per_second
        } else {
            f64::INFINITY
        };
        TrunkLimiter {
            interval: if rate.is_finite() {
                Duration::from_secs_f64(1.0 / rate)
            } else {
                Duration::ZERO
            },
            burst: rate.clamp(1.0, 1e9),
            tokens: 1.0,
            last: None,
            max_concurrent,
        }
    }

    /// `Ok(())` takes a token: place the call now. `Err(Some(at))`: try again
    /// at `at`; `Err(None)`: wait for a call to end (concurrency ceiling).
    pub fn admit(&mut self, active_calls: usize, now: Instant) -> Result<(), Option<Instant>> {
        if active_calls >= self.max_concurrent {
            return Err(None);
        }
        if self.interval.is_zero() {
            return Ok(());
        }
        if let Some(last) = self.last {
            let earned =
                now.saturating_duration_since(last).as_secs_f64() / self.interval.as_secs_f64();
            self.tokens = (self.tokens + earned).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) * self.interval.as_secs_f64();
            Err(Some(now + Duration::from_secs_f64(wait)))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkState {
    Unknown,
    Up,
    Down,
}

/// Up when the trunk answers OPTIONS with anything (even 404/405: it is
/// there), down when the ping times out.
pub fn state_after_ping(code: Option<u16>) -> TrunkState {
    match code {
        Some(_) => TrunkState::Up,
        None => TrunkState::Down,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_spaces_calls() {
        let t0 = Instant::now();
        let mut limiter = TrunkLimiter::new(10.0, 100);
        assert_eq!(limiter.admit(0, t0), Ok(()));
        let Err(Some(at)) = limiter.admit(0, t0) else {
            panic!()
        };
        assert_eq!(at, t0 + Duration::from_millis(100));
        assert_eq!(limiter.admit(0, at), Ok(()));
    }

    #[test]
    fn concurrency_ceiling_waits_for_a_call_to_end() {
        let mut limiter = TrunkLimiter::new(0.0, 2);
        let now = Instant::now();
        assert_eq!(limiter.admit(1, now), Ok(()));
        assert_eq!(limiter.admit(2, now), Err(None));
    }
}
