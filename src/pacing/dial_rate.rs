//! The trunk's calls-per-second limit as a sliding window of call starts.
//!
//! One window lives in each pacer (its own campaign's calls, for its
//! reasoning) and one in the engine for the whole node (every campaign's
//! calls and the preview agents' together: the carrier counts them all).
//! Calls started in the last second, or under one call per second (a
//! node's part of a trunk shared by more nodes than its calls per second)
//! in the last 1/cps seconds: 0.5 is one call every 2 s.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Calls started recently, to hold a calls-per-second limit.
#[derive(Debug, Clone, Default)]
pub struct DialRate {
    starts: VecDeque<Instant>,
}

/// The longest window kept: a limit of one call an hour.
const LONGEST_WINDOW_S: f64 = 3600.0;

impl DialRate {
    pub fn new() -> Self {
        Self::default()
    }

    /// A call started at `now`.
    pub fn record(&mut self, now: Instant) {
        self.starts.push_back(now);
    }

    /// Calls that may start at `now` under `cps` (`None`, or ≤ 0: no
    /// limit). Above one per second, ⌊cps⌋ a second.
    pub fn allowed(&mut self, cps: Option<f64>, now: Instant) -> u32 {
        let Some(cps) = cps.filter(|cps| *cps > 0.0 && cps.is_finite()) else {
            self.starts.clear();
            return u32::MAX;
        };
        let window = Self::window(cps);
        while let Some(&front) = self.starts.front() {
            if now.saturating_duration_since(front) >= window {
                self.starts.pop_front();
            } else {
                break;
            }
        }
        let per_window = (cps.floor() as u32).max(1);
        per_window.saturating_sub(u32::try_from(self.starts.len()).unwrap_or(u32::MAX))
    }

    /// When the next call may start, if none may at `now`.
    pub fn next_allowed_at(&mut self, cps: Option<f64>, now: Instant) -> Option<Instant> {
        if self.allowed(cps, now) > 0 {
            return None;
        }
        let window = Self::window(cps?);
        // The oldest start in the window leaves it first.
        self.starts.front().map(|oldest| *oldest + window)
    }

    fn window(cps: f64) -> Duration {
        if cps < 1.0 {
            Duration::from_secs_f64((1.0 / cps).min(LONGEST_WINDOW_S))
        } else {
            Duration::from_secs(1)
        }
    }
}

/// Max-min fair shares of `capacity` among claimants wanting `wants`: the
/// smallest wants are met first and the rest share what remains evenly.
/// Units an even split cannot divide go one each to the first unmet
/// claimants in the order `rotate` names (0: the first one), so a caller
/// that moves `rotate` on each time does not always favour the same one.
/// The shares never exceed the wants, nor together the capacity.
pub fn max_min_fair(capacity: u32, wants: &[u32], rotate: usize) -> Vec<u32> {
    let mut shares = vec![0u32; wants.len()];
    let mut order: Vec<usize> = (0..wants.len()).collect();
    order.sort_by_key(|&i| wants[i]);
    let mut left = capacity;
    let mut remaining = wants.len() as u32;
    for (k, &i) in order.iter().enumerate() {
        if u64::from(wants[i]) * u64::from(remaining) <= u64::from(left) {
            // Met in full: it wants no more than an even split.
            shares[i] = wants[i];
            left -= wants[i];
            remaining -= 1;
        } else {
            // The rest want more than an even split: each gets the same.
            let level = left / remaining;
            for &j in &order[k..] {
                shares[j] = level;
            }
            left -= level * remaining;
            break;
        }
    }
    // The remainder of the even split: one unit each, in rotation.
    let n = wants.len();
    for step in 0..n {
        if left == 0 {
            break;
        }
        let i = (rotate + step) % n;
        if shares[i] < wants[i] {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn calls_per_second_count_the_last_second() {
        let t0 = Instant::now();
        let mut rate = DialRate::new();
        assert_eq!(rate.allowed(Some(3.0), t0), 3);
        rate.record(t0);
        rate.record(at(t0, 400));
        assert_eq!(rate.allowed(Some(3.0), at(t0, 500)), 1);
        rate.record(at(t0, 500));
        assert_eq!(rate.allowed(Some(3.0), at(t0, 900)), 0);
        assert_eq!(
            rate.next_allowed_at(Some(3.0), at(t0, 900)),
            Some(at(t0, 1000))
        );
        assert_eq!(rate.allowed(Some(3.0), at(t0, 1000)), 1);
        assert_eq!(rate.allowed(Some(3.0), at(t0, 1500)), 3);
    }

    #[test]
    fn under_one_call_per_second_the_calls_are_spaced() {
        let t0 = Instant::now();
        let mut rate = DialRate::new();
        rate.record(t0);
        assert_eq!(rate.allowed(Some(0.5), at(t0, 1999)), 0);
        assert_eq!(
            rate.next_allowed_at(Some(0.5), at(t0, 1000)),
            Some(at(t0, 2000))
        );
        assert_eq!(rate.allowed(Some(0.5), at(t0, 2000)), 1);
    }

    #[test]
    fn no_limit_allows_any_number() {
        let t0 = Instant::now();
        let mut rate = DialRate::new();
        rate.record(t0);
        assert_eq!(rate.allowed(None, t0), u32::MAX);
        assert_eq!(rate.allowed(Some(0.0), t0), u32::MAX);
        assert_eq!(rate.next_allowed_at(None, t0), None);
    }

    #[test]
    fn fair_shares_meet_small_wants_and_split_the_rest() {
        assert_eq!(max_min_fair(30, &[4, 40], 0), vec![4, 26]);
        assert_eq!(max_min_fair(30, &[40, 40], 0), vec![15, 15]);
        assert_eq!(max_min_fair(30, &[5, 5], 0), vec![5, 5]);
        assert_eq!(max_min_fair(0, &[5, 5], 0), vec![0, 0]);
        assert!(max_min_fair(7, &[], 3).is_empty());
    }

    #[test]
    fn the_indivisible_remainder_rotates() {
        assert_eq!(max_min_fair(1, &[3, 3], 0), vec![1, 0]);
        assert_eq!(max_min_fair(1, &[3, 3], 1), vec![0, 1]);
        assert_eq!(max_min_fair(5, &[3, 3, 3], 2), vec![2, 1, 2]);
        // A claimant whose want is met gets no more.
        assert_eq!(max_min_fair(2, &[0, 3, 3], 0), vec![0, 1, 1]);
    }

    #[test]
    fn fair_shares_never_exceed_wants_or_capacity() {
        // A small exhaustive search.
        for capacity in 0..12 {
            for a in 0..6 {
                for b in 0..6 {
                    for c in 0..6 {
                        for rotate in 0..3 {
                            let wants = [a, b, c];
                            let shares = max_min_fair(capacity, &wants, rotate);
                            let total: u32 = shares.iter().sum();
                            assert!(total <= capacity);
                            assert!(shares.iter().zip(&wants).all(|(s, w)| s <= w));
                            // Work-conserving: capacity left only when every want is met.
                            if total < capacity {
                                assert_eq!(shares, wants);
                            }
                            // Fair: no unmet claimant has two less than another.
                            for i in 0..3 {
                                for j in 0..3 {
                                    if shares[i] < wants[i] {
                                        assert!(shares[j] <= shares[i] + 1, "{wants:?} {shares:?}");
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
