//! Matching live answers to free agents.
//!
//! Attempts waiting for an agent queue here in the order their greetings
//! ended; a free agent takes the oldest one still inside its abandon window
//! (the attempt's own deadline fires the abandon, so an expired entry is
//! only skipped here, never acted on).

use std::collections::VecDeque;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiting {
    attempt: u64,
    deadline: Instant,
}

#[derive(Debug, Default)]
pub struct Dispatcher {
    queue: VecDeque<Waiting>,
}

impl Dispatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `attempt`, which must be bridged before `deadline`.
    pub fn enqueue(&mut self, attempt: u64, deadline: Instant) {
        if self.queue.iter().any(|w| w.attempt == attempt) {
            return;
        }
        // Keep the queue ordered by deadline (= greeting end + window).
        let at = self
            .queue
            .iter()
            .position(|w| w.deadline > deadline)
            .unwrap_or(self.queue.len());
        self.queue.insert(at, Waiting { attempt, deadline });
    }

    pub fn withdraw(&mut self, attempt: u64) {
        self.queue.retain(|w| w.attempt != attempt);
    }

    /// The attempt a newly free agent should take, if any.
    pub fn next_for_free_agent(&mut self, now: Instant) -> Option<u64> {
        while let Some(first) = self.queue.pop_front() {
            if first.deadline > now {
                return Some(first.attempt);
            }
        }
        None
    }

    /// The deadline of the answer a free agent would take now: how urgent
    /// this queue is beside another campaign's.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        self.queue
            .iter()
            .map(|w| w.deadline)
            .find(|deadline| *deadline > now)
    }

    pub fn waiting(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn oldest_unexpired_first() {
        let t0 = Instant::now();
        let mut dispatcher = Dispatcher::new();
        dispatcher.enqueue(2, t0 + Duration::from_millis(1500));
        dispatcher.enqueue(1, t0 + Duration::from_millis(500));
        dispatcher.enqueue(3, t0 + Duration::from_millis(1900));
        dispatcher.enqueue(3, t0 + Duration::from_millis(1900));
        assert_eq!(dispatcher.waiting(), 3);
        dispatcher.withdraw(2);
        // Attempt 1's window closed at 500 ms: skipped.
        assert_eq!(
            dispatcher.next_for_free_agent(t0 + Duration::from_secs(1)),
            Some(3)
        );
        assert_eq!(
            dispatcher.next_for_free_agent(t0 + Duration::from_secs(1)),
            None
        );
    }
}
