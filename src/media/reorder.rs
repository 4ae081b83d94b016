//! A small reorder window for the decode path (CPA frames, recordings):
//! holds up to `N` packets that arrive ahead of a gap and releases them in
//! sequence, giving up on a missing packet once the window is full or it
//! has waited `max_wait`. Fixed-size slots: no allocation per packet.
//!
//! The relay does not use it: it forwards immediately (the far end's
//! jitter buffer reorders), so the bridge adds no latency.

use std::time::{Duration, Instant};

/// Largest payload a slot holds (60 ms of G.711).
pub const MAX_PAYLOAD: usize = 480;

#[derive(Clone)]
struct Slot {
    extended: u64,
    timestamp: u32,
    len: usize,
    arrived: Instant,
    payload: [u8; MAX_PAYLOAD],
}

/// A released packet: its extended sequence, timestamp and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released<'a> {
    pub extended: u64,
    pub timestamp: u32,
    pub payload: &'a [u8],
    /// Packets skipped just before this one (given up as lost).
    pub gap: u64,
}

pub struct ReorderWindow<const N: usize> {
    slots: [Option<Slot>; N],
    next: Option<u64>,
    max_wait: Duration,
    out: Slot,
    pub given_up: u64,
    pub late: u64,
}

impl<const N: usize> ReorderWindow<N> {
    pub fn new(max_wait: Duration, now: Instant) -> ReorderWindow<N> {
        ReorderWindow {
            slots: std::array::from_fn(|_| None),
            next: None,
            max_wait,
            out: Slot {
                extended: 0,
                timestamp: 0,
                len: 0,
                arrived: now,
                payload: [0; MAX_PAYLOAD],
            },
            given_up: 0,
            late: 0,
        }
    }

    /// Offers a packet; returns true when it was kept. Call [`Self::pop`]
    /// until it returns `None` after every push and on every deadline.
    pub fn push(&mut self, extended: u64, timestamp: u32, payload: &[u8], now: Instant) -> bool {
        let next = *self.next.get_or_insert(extended);
        if extended < next || payload.len() > MAX_PAYLOAD {
            self.late += 1;
            return false;
        }
        if self.slots.iter().flatten().any(|s| s.extended == extended) {
            self.late += 1;
            return false;
        }
        let slot = match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(free) => free,
            None => {
                // Full: release the oldest by force on the next pop.
                self.late += 1;
                return false;
            }
        };
        let mut held = Slot {
            extended,
            timestamp,
            len: payload.len(),
            arrived: now,
            payload: [0; MAX_PAYLOAD],
        };
        held.payload[..payload.len()].copy_from_slice(payload);
        *slot = Some(held);
        true
    }

    /// The next packet in order, if it is here, or — when the window is
    /// full or the earliest held packet has waited `max_wait` — the earliest
    /// held packet, skipping the gap.
    pub fn pop(&mut self, now: Instant) -> Option<Released<'_>> {
        let next = self.next?;
        let (index, earliest) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s.extended)))
            .min_by_key(|&(_, e)| e)?;
        let full = self.slots.iter().all(Option::is_some);
        let waited = self.slots[index]
            .as_ref()
            .is_some_and(|s| now.saturating_duration_since(s.arrived) >= self.max_wait);
        if earliest != next && !full && !waited {
            return None;
        }
        let slot = self.slots[index].take()?;
        let gap = earliest - next;
        self.given_up += gap;
        self.next = Some(earliest + 1);
        self.out.extended = slot.extended;
        self.out.timestamp = slot.timestamp;
        self.out.len = slot.len;
        self.out.payload[..slot.len].copy_from_slice(&slot.payload[..slot.len]);
        Some(Released {
            extended: self.out.extended,
            timestamp: self.out.timestamp,
            payload: &self.out.payload[..self.out.len],
            gap,
        })
    }

    /// When [`Self::pop`] should be called again even if nothing arrives.
    pub fn deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .map(|s| s.arrived + self.max_wait)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(window: &mut ReorderWindow<4>, now: Instant) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        while let Some(r) = window.pop(now) {
            out.push((r.extended, r.gap));
        }
        out
    }

    #[test]
    fn reorders_swaps_and_gives_up_on_losses() {
        let t0 = Instant::now();
        let mut w = ReorderWindow::<4>::new(Duration::from_millis(60), t0);
        let mut order = Vec::new();
        for seq in [1u64, 3, 2, 4] {
            w.push(seq, 0, &[seq as u8], t0);
            order.extend(drain(&mut w, t0));
        }
        assert_eq!(order, vec![(1, 0), (2, 0), (3, 0), (4, 0)]);
        // 5 is lost: 6 waits until max_wait, then is released with a gap.
        w.push(6, 0, &[6], t0);
        assert!(drain(&mut w, t0).is_empty());
        assert_eq!(w.deadline(), Some(t0 + Duration::from_millis(60)));
        assert_eq!(drain(&mut w, t0 + Duration::from_millis(60)), vec![(6, 1)]);
        // A straggler after giving up is late.
        assert!(!w.push(5, 0, &[5], t0));
        assert_eq!(w.late, 1);
    }

    #[test]
    fn full_window_forces_release() {
        let t0 = Instant::now();
        let mut w = ReorderWindow::<4>::new(Duration::from_secs(1), t0);
        w.push(1, 0, &[1], t0);
        assert_eq!(drain(&mut w, t0), vec![(1, 0)]);
        for seq in 3..7 {
            w.push(seq, 0, &[0], t0);
        }
        assert_eq!(drain(&mut w, t0), vec![(3, 1), (4, 0), (5, 0), (6, 0)]);
    }
}
