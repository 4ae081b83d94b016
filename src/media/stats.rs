//! Per-stream receive statistics, RFC 3550 Appendix A: sequence validation
//! and extended sequence numbers (A.1), expected/lost and the fraction lost
//! between reports (A.3), and interarrival jitter (A.8). Sans-IO: arrival
//! times come in as `Instant`s.

use std::time::Instant;

use super::rtcp::ReportBlock;

const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const MIN_SEQUENTIAL: u8 = 2;
const SEQ_MOD: u32 = 1 << 16;

/// What the caller should do with a packet after [`ReceiveStats::on_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// In sequence (or a tolerable gap / reorder): use it.
    Accept { extended: u64 },
    /// Still probing a new source (RFC 3550 `probation`), or a big jump
    /// that is not yet confirmed: hold or drop it.
    Probation,
    /// Duplicate or very late: drop it.
    Late,
}

/// RFC 3550 A.1/A.3/A.8 state for one SSRC.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    pub ssrc: u32,
    clock_rate: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u8,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Jitter in timestamp units, scaled by 16 as in A.8.
    jitter_q4: u64,
    transit: Option<i64>,
    epoch: Instant,
    duplicates: u64,
}

/// A snapshot for the call record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamSummary {
    pub received: u64,
    pub expected: u64,
    pub lost: i64,
    pub duplicates_or_late: u64,
    /// Interarrival jitter in microseconds.
    pub jitter_us: u64,
}

impl ReceiveStats {
    /// Starts tracking a new source whose first packet had `sequence`.
    pub fn new(ssrc: u32, sequence: u16, clock_rate: u32, now: Instant) -> ReceiveStats {
        let mut stats = ReceiveStats {
            ssrc,
            clock_rate: clock_rate.max(1),
            max_seq: sequence.wrapping_sub(1),
            cycles: 0,
            base_seq: 0,
            bad_seq: SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            transit: None,
            epoch: now,
            duplicates: 0,
        };
        stats.init_seq(sequence);
        stats.max_seq = sequence.wrapping_sub(1);
        stats.probation = MIN_SEQUENTIAL;
        stats
    }

    fn init_seq(&mut self, sequence: u16) {
        self.base_seq = u32::from(sequence);
        self.max_seq = sequence;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    fn extended(&self) -> u64 {
        u64::from(self.cycles) + u64::from(self.max_seq)
    }

    /// Feeds one packet (A.1 `update_seq`, then A.8 jitter).
    pub fn on_packet(
        &mut self,
        sequence: u16,
        timestamp: u32,
        arrival: Instant,
    ) -> SequenceVerdict {
        let udelta = sequence.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if sequence == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = sequence;
                if self.probation == 0 {
                    self.init_seq(sequence);
                    // The probation packets count too.
                    self.base_seq = u32::from(sequence.wrapping_sub(u16::from(MIN_SEQUENTIAL) - 1));
                    self.received = u64::from(MIN_SEQUENTIAL) - 1;
                    self.update_jitter(timestamp, arrival);
                    self.received += 1;
                    return SequenceVerdict::Accept {
                        extended: self.extended(),
                    };
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = sequence;
            }
            self.update_jitter(timestamp, arrival);
            return SequenceVerdict::Probation;
        }
        if udelta < MAX_DROPOUT {
            if udelta == 0 {
                self.duplicates += 1;
                return SequenceVerdict::Late;
            }
            if sequence < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = sequence;
        } else if udelta <= (SEQ_MOD as u16).wrapping_sub(MAX_MISORDER) {
            // A very large jump: restart if the next packet confirms it.
            if u32::from(sequence) == self.bad_seq {
                self.init_seq(sequence);
            } else {
                self.bad_seq = (u32::from(sequence) + 1) & (SEQ_MOD - 1);
                return SequenceVerdict::Probation;
            }
        } else {
            // Reordered or duplicate within MAX_MISORDER: counted, not advanced.
            self.received += 1;
            let back = u64::from(self.max_seq.wrapping_sub(sequence));
            return match self.extended().checked_sub(back) {
                Some(extended) => SequenceVerdict::Accept { extended },
                None => SequenceVerdict::Late,
            };
        }
        self.received += 1;
        self.update_jitter(timestamp, arrival);
        SequenceVerdict::Accept {
            extended: self.extended(),
        }
    }

    /// A.8: J += (|D| - J) / 16, in timestamp units.
    fn update_jitter(&mut self, timestamp: u32, arrival: Instant) {
        let arrival_units = arrival.saturating_duration_since(self.epoch).as_micros() as i64
            * i64::from(self.clock_rate)
            / 1_000_000;
        let transit = arrival_units.wrapping_sub(i64::from(timestamp));
        if let Some(previous) = self.transit {
            let d = (transit - previous).unsigned_abs();
            // Ignore timestamp jumps (a new talkspurt after a long gap, a
            // wrapped 32-bit timestamp): they are not network jitter.
            if d < u64::from(self.clock_rate) * 10 {
                // RFC 3550 A.8, in the 1/16-scaled form it gives.
                self.jitter_q4 = (self.jitter_q4 + d).saturating_sub((self.jitter_q4 + 8) >> 4);
            }
        }
        self.transit = Some(transit);
    }

    fn expected(&self) -> u64 {
        (self.extended() + 1).saturating_sub(u64::from(self.base_seq))
    }

    pub fn summary(&self) -> StreamSummary {
        let expected = self.expected();
        StreamSummary {
            received: self.received,
            expected,
            lost: expected as i64 - self.received as i64,
            duplicates_or_late: self.duplicates,
            jitter_us: self.jitter_q4 * 1_000_000 / 16 / u64::from(self.clock_rate),
        }
    }

    /// A.3: the report block for our next RR, and the interval is reset.
    pub fn report_block(&mut self) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: (expected as i64 - self.received as i64).clamp(-0x80_0000, 0x7F_FFFF)
                as i32,
            extended_highest_sequence: self.extended() as u32,
            jitter: (self.jitter_q4 >> 4) as u32,
            last_sr: 0,
            delay_since_last_sr: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn feed(
        stats: &mut ReceiveStats,
        start: Instant,
        seqs: &[u16],
        jitter_ms: impl Fn(usize) -> u64,
    ) {
        for (i, &seq) in seqs.iter().enumerate() {
            let ts = u32::from(seq.wrapping_sub(seqs[0])) * 160;
            let at = start
                + Duration::from_millis(20 * u64::from(seq.wrapping_sub(seqs[0])) + jitter_ms(i));
            stats.on_packet(seq, ts, at);
        }
    }

    #[test]
    fn clean_stream_has_no_loss_and_no_jitter() {
        let t0 = Instant::now();
        let seqs: Vec<u16> = (65500..=65535).chain(0..100).collect();
        let mut stats = ReceiveStats::new(1, seqs[0], 8000, t0);
        feed(&mut stats, t0, &seqs, |_| 0);
        let s = stats.summary();
        assert_eq!(
            (s.received, s.expected, s.lost, s.jitter_us),
            (136, 136, 0, 0)
        );
        let block = stats.report_block();
        assert_eq!(block.extended_highest_sequence, 65536 + 99);
        assert_eq!(block.fraction_lost, 0);
    }

    #[test]
    fn loss_counts_and_fraction() {
        let t0 = Instant::now();
        // 100 packets with every 10th missing: 10 % loss → 25/256.
        let seqs: Vec<u16> = (1000..1100).filter(|s| s % 10 != 5).collect();
        let mut stats = ReceiveStats::new(1, 1000, 8000, t0);
        feed(&mut stats, t0, &seqs, |_| 0);
        let s = stats.summary();
        assert_eq!((s.expected, s.lost), (100, 10));
        assert_eq!(stats.report_block().fraction_lost, 25);
    }

    #[test]
    fn alternating_delay_converges_to_rfc_jitter() {
        let t0 = Instant::now();
        let seqs: Vec<u16> = (0..2000).collect();
        let mut stats = ReceiveStats::new(1, 0, 8000, t0);
        // Every other packet 2 ms late: |D| = 2 ms each step → J → 2 ms.
        feed(&mut stats, t0, &seqs, |i| if i % 2 == 1 { 2 } else { 0 });
        let jitter = stats.summary().jitter_us;
        assert!((1900..=2000).contains(&jitter), "{jitter}");
    }

    #[test]
    fn duplicates_and_reorders() {
        let t0 = Instant::now();
        let mut stats = ReceiveStats::new(1, 10, 8000, t0);
        for seq in [10u16, 11, 12, 14, 13, 14, 15] {
            stats.on_packet(seq, u32::from(seq) * 160, t0);
        }
        let s = stats.summary();
        assert_eq!((s.expected, s.received, s.duplicates_or_late), (6, 6, 1));
    }
}
