//! Abandonment accounting for one campaign: live answers, abandons and
//! estimated CPA false positives in the US (rolling 30 days) and UK
//! (rolling 24 hours) windows.
//!
//! Counts are kept in one-minute buckets so a 30-day window costs at most
//! 43 200 small entries however busy the campaign is.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The US (FTC/FCC) window: abandoned ÷ live answers over 30 days.
pub const US_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// The UK (Ofcom) window: 24 hours, with CPA false positives counted as abandons.
pub const UK_WINDOW: Duration = Duration::from_secs(24 * 3600);
const BUCKET: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowCounts {
    pub live_answers: u64,
    pub abandoned: u64,
}

impl WindowCounts {
    /// US formula: abandoned ÷ live answers (0 when nothing was answered).
    pub fn us_rate(&self) -> f64 {
        ratio(self.abandoned as f64, self.live_answers as f64)
    }
    /// UK formula with `fp` estimated false positives: (abandoned + fp) ÷ (live + fp).
    pub fn uk_rate(&self, fp: f64) -> f64 {
        ratio(self.abandoned as f64 + fp, self.live_answers as f64 + fp)
    }
}

/// The CPA false positives expected among `live` live answers when a share
/// `estimate` of the live people is wrongly taken for machines: they were
/// live answers too, unseen (`live · f / (1 − f)`).
pub fn expected_false_positives(live: f64, estimate: f64) -> f64 {
    let f = estimate.clamp(0.0, 0.999);
    live * f / (1.0 - f)
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    index: u64,
    counts: WindowCounts,
}

/// One rolling window made of one-minute buckets.
#[derive(Debug, Clone)]
struct Window {
    span_buckets: u64,
    buckets: VecDeque<Bucket>,
    total: WindowCounts,
}

impl Window {
    fn new(span: Duration) -> Self {
        Self {
            span_buckets: span.as_secs() / BUCKET.as_secs(),
            buckets: VecDeque::new(),
            total: WindowCounts::default(),
        }
    }

    fn expire(&mut self, now_bucket: u64) {
        while let Some(front) = self.buckets.front() {
            if front.index + self.span_buckets <= now_bucket {
                self.total.live_answers -= front.counts.live_answers;
                self.total.abandoned -= front.counts.abandoned;
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    /// Counts of a bucket, kept in order among those already held (the
    /// current one lands at the back; history restored from the store
    /// before it).
    fn insert(&mut self, bucket: u64, live: u64, abandoned: u64) {
        let at = self.buckets.partition_point(|b| b.index < bucket);
        match self.buckets.get_mut(at) {
            Some(b) if b.index == bucket => {
                b.counts.live_answers += live;
                b.counts.abandoned += abandoned;
            }
            _ => self.buckets.insert(
                at,
                Bucket {
                    index: bucket,
                    counts: WindowCounts {
                        live_answers: live,
                        abandoned,
                    },
                },
            ),
        }
        self.total.live_answers += live;
        self.total.abandoned += abandoned;
    }

    /// Takes one live answer back out of `bucket` (still in the window).
    fn retract_live_answer(&mut self, bucket: u64) {
        if let Some(b) = self
            .buckets
            .iter_mut()
            .find(|b| b.index == bucket && b.counts.live_answers > 0)
        {
            b.counts.live_answers -= 1;
            self.total.live_answers -= 1;
        }
    }

    fn add(&mut self, now_bucket: u64, live: u64, abandoned: u64) {
        self.expire(now_bucket);
        self.insert(now_bucket, live, abandoned);
    }
}

/// Per-campaign abandonment ledger (both regulatory windows).
#[derive(Debug, Clone)]
pub struct AbandonLedger {
    epoch: Instant,
    us: Window,
    uk: Window,
    /// Recent abandons and live answers (instants), for burst detection.
    recent_abandons: VecDeque<Instant>,
    recent_answers: VecDeque<Instant>,
}

impl AbandonLedger {
    pub fn new(epoch: Instant) -> Self {
        Self {
            // Buckets count from a month before the pacer was made, so the
            // history restored from the store has buckets of its own.
            epoch: epoch.checked_sub(US_WINDOW + BUCKET).unwrap_or(epoch),
            us: Window::new(US_WINDOW),
            uk: Window::new(UK_WINDOW),
            recent_abandons: VecDeque::new(),
            recent_answers: VecDeque::new(),
        }
    }

    fn bucket(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / BUCKET.as_secs()
    }

    /// A live person finished the greeting (whatever happens next).
    pub fn live_answer(&mut self, now: Instant) {
        let b = self.bucket(now);
        self.us.add(b, 1, 0);
        self.uk.add(b, 1, 0);
        self.recent_answers.push_back(now);
    }

    /// The live answer counted at `at` was no person after all: a
    /// "human" that turned out to be a machine (its beep came, the agent
    /// dropped a voicemail into it) or a fax. Abandonment is over live
    /// persons, so it leaves the windows' denominators (the store's row,
    /// a machine, is not counted as live when a restart restores them).
    pub fn retract_live_answer(&mut self, at: Instant) {
        let b = self.bucket(at);
        self.us.retract_live_answer(b);
        self.uk.retract_live_answer(b);
        if let Some(i) = self.recent_answers.iter().position(|&t| t == at) {
            self.recent_answers.remove(i);
        }
    }

    /// A live answer found no agent within the 2-second window.
    pub fn abandoned(&mut self, now: Instant) {
        let b = self.bucket(now);
        self.us.add(b, 0, 1);
        self.uk.add(b, 0, 1);
        self.recent_abandons.push_back(now);
    }

    /// Live answers and abandons from before this ledger (the store's
    /// record of earlier runs), at `at`. Not recent for burst detection.
    /// History older than the ledger's reach (a month before it was made)
    /// is counted at its first bucket, inside the window a little longer.
    pub fn restore(&mut self, at: Instant, live_answers: u64, abandoned: u64) {
        let b = self.bucket(at);
        self.us.insert(b, live_answers, abandoned);
        self.uk.insert(b, live_answers, abandoned);
    }

    /// Counts in the US window at `now`.
    pub fn us(&mut self, now: Instant) -> WindowCounts {
        let b = self.bucket(now);
        self.us.expire(b);
        self.us.total
    }

    /// Counts in the UK window at `now`.
    pub fn uk(&mut self, now: Instant) -> WindowCounts {
        let b = self.bucket(now);
        self.uk.expire(b);
        self.uk.total
    }

    /// Abandons and live answers in the last `span` before `now`.
    pub fn recent(&mut self, now: Instant, span: Duration) -> (usize, usize) {
        for queue in [&mut self.recent_abandons, &mut self.recent_answers] {
            while let Some(&front) = queue.front() {
                if now.saturating_duration_since(front) > span {
                    queue.pop_front();
                } else {
                    break;
                }
            }
        }
        (self.recent_abandons.len(), self.recent_answers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retracted_live_answer_leaves_both_windows_and_the_recent_ones() {
        let t0 = Instant::now();
        let mut ledger = AbandonLedger::new(t0);
        ledger.live_answer(t0);
        let t1 = t0 + Duration::from_secs(90);
        ledger.live_answer(t1);
        ledger.retract_live_answer(t0);
        let one = WindowCounts {
            live_answers: 1,
            abandoned: 0,
        };
        assert_eq!((ledger.us(t1), ledger.uk(t1)), (one, one));
        assert_eq!(ledger.recent(t1, Duration::from_secs(600)), (0, 1));
        // Nothing left to take out of that minute: no underflow.
        ledger.retract_live_answer(t0);
        assert_eq!(ledger.us(t1), one);
    }

    #[test]
    fn windows_expire_independently() {
        let t0 = Instant::now();
        let mut ledger = AbandonLedger::new(t0);
        for _ in 0..100 {
            ledger.live_answer(t0);
        }
        ledger.abandoned(t0);
        let later = t0 + Duration::from_secs(25 * 3600);
        assert_eq!(ledger.uk(later), WindowCounts::default());
        assert_eq!(
            ledger.us(later),
            WindowCounts {
                live_answers: 100,
                abandoned: 1
            }
        );
        let much_later = t0 + US_WINDOW + BUCKET;
        assert_eq!(ledger.us(much_later), WindowCounts::default());
    }

    #[test]
    fn restored_history_counts_in_both_windows_and_expires_in_order() {
        let t0 = Instant::now();
        let mut ledger = AbandonLedger::new(t0);
        let hour = Duration::from_secs(3600);
        // Events of this run first, then the store's answer about earlier
        // runs (it arrives after the campaign started).
        ledger.live_answer(t0);
        ledger.abandoned(t0);
        ledger.restore(t0 - 29 * 24 * hour, 200, 4);
        ledger.restore(t0 - 2 * hour, 50, 1);
        let counts = |live_answers, abandoned| WindowCounts {
            live_answers,
            abandoned,
        };
        assert_eq!(ledger.us(t0), counts(251, 6));
        assert_eq!(ledger.uk(t0), counts(51, 2));
        // The oldest minute leaves the US window first, then the others.
        assert_eq!(ledger.us(t0 + 2 * 24 * hour), counts(51, 2));
        assert_eq!(ledger.uk(t0 + 23 * hour), counts(1, 1));
        assert_eq!(ledger.us(t0 + 31 * 24 * hour), WindowCounts::default());
        // History is no burst.
        assert_eq!(ledger.recent(t0, Duration::from_secs(300)), (1, 1));
    }

    #[test]
    fn uk_rate_counts_false_positives_as_abandons() {
        let counts = WindowCounts {
            live_answers: 98,
            abandoned: 1,
        };
        assert!((counts.uk_rate(2.0) - 0.03).abs() < 1e-12);
        assert!((counts.us_rate() - 1.0 / 98.0).abs() < 1e-12);
    }
}
