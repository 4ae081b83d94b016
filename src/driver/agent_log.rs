//! Writes the agents' state changes to the store (`agent_states`) for the
//! activity reports (`agent::activity`), in order, off the engine task.
//!
//! A store that is away for a while (a restart, a failover, a lock) loses
//! nothing: the changes wait in a backlog, in order, and are written
//! together once it answers again — tried again every second, then less
//! often up to every 30 s (at once when the node stops). The backlog is
//! bounded ([`MAX_BACKLOG`] changes, hours of a large floor's changes):
//! beyond it the oldest are dropped, counted and logged, so an outage of
//! days cannot eat the node's memory. What is still waiting when the node
//! stops (after [`AgentLog::close`]'s wait) or crashes is lost; the reports
//! then lack those changes, the dialing loses nothing. A batch the store
//! refuses for good (not a passing failure) is dropped with a warning, as
//! retrying it cannot help; the node's end is written on its own after it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::agent::activity::{REASON_DIALER_STOPPED, StateChange};
use crate::store::{Store, StoreError};

/// The first wait before writing a backlog again, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_LONGEST: Duration = Duration::from_secs(30);
/// Most changes kept while the store is away.
pub const MAX_BACKLOG: usize = 100_000;

enum Entry {
    Changed(StateChange),
    /// The node stops: its agents' states end now.
    Closed {
        at: Timestamp,
    },
}

/// Writes one batch: the changes, then (when the node stops) the end of
/// this node's agents' states.
type WriteBatch =
    Arc<dyn Fn(Vec<StateChange>, Option<Timestamp>) -> Result<(), StoreError> + Send + Sync>;

/// The node's agent state log.
pub struct AgentLog {
    node: String,
    entries: Option<mpsc::UnboundedSender<Entry>>,
    writer: Option<JoinHandle<()>>,
}

impl AgentLog {
    pub fn start(store: Arc<dyn Store>, node: String) -> AgentLog {
        let closing_node = node.clone();
        let write: WriteBatch = Arc::new(move |changes, closed_at| {
            if !changes.is_empty() {
                store.record_agent_states(&changes)?;
            }
            if let Some(at) = closed_at {
                store.close_agent_states(&closing_node, at, REASON_DIALER_STOPPED)?;
            }
            Ok(())
        });
        AgentLog::with_writer(node, write, RETRY_FIRST)
    }

    fn with_writer(node: String, write: WriteBatch, retry_first: Duration) -> AgentLog {
        let (entries, received) = mpsc::unbounded_channel::<Entry>();
        let writer = tokio::spawn(run(received, write, retry_first));
        AgentLog {
            node,
            entries: Some(entries),
            writer: Some(writer),
        }
    }

    /// `agent` is now in `state` (the agent view's name), for `reason`.
    pub fn changed(&self, agent: &str, state: &str, reason: Option<&str>) {
        if let Some(entries) = &self.entries {
            let _ = entries.send(Entry::Changed(StateChange {
                agent: agent.to_string(),
                state: state.to_string(),
                reason: reason.map(str::to_string),
                at: Timestamp::now(),
                node: self.node.clone(),
            }));
        }
    }

    /// The node stops: its agents' states are ended now and the log is
    /// written out (waited for at most `within`).
    pub async fn close(&mut self, within: Duration) {
        if let Some(entries) = self.entries.take() {
            let _ = entries.send(Entry::Closed {
                at: Timestamp::now(),
            });
        }
        if let Some(writer) = self.writer.take() {
            let abort = writer.abort_handle();
            if tokio::time::timeout(within, writer).await.is_err() {
                abort.abort();
                tracing::warn!(
                    "the store did not take the agents' last state changes before the exit: \
                     the activity reports lack them"
                );
            }
        }
    }
}

/// What waits for the store, in order.
#[derive(Default)]
struct Backlog {
    changes: VecDeque<StateChange>,
    closed_at: Option<Timestamp>,
    /// Changes dropped as the backlog overflowed, not yet reported.
    dropped: u64,
}

impl Backlog {
    fn add(&mut self, entry: Entry) {
        match entry {
            Entry::Changed(change) => {
                if self.changes.len() == MAX_BACKLOG {
                    self.changes.pop_front();
                    self.dropped += 1;
                }
                self.changes.push_back(change);
            }
            Entry::Closed { at } => self.closed_at = Some(at),
        }
    }

    fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.closed_at.is_none()
    }
}

async fn run(
    mut received: mpsc::UnboundedReceiver<Entry>,
    write: WriteBatch,
    retry_first: Duration,
) {
    let mut backlog = Backlog::default();
    let mut retry_after = retry_first;
    let mut open = true;
    loop {
        if backlog.is_empty() {
            if !open {
                return;
            }
            match received.recv().await {
                Some(entry) => backlog.add(entry),
                None => return,
            }
        }
        // What arrived meanwhile goes in the same transaction.
        while let Ok(entry) = received.try_recv() {
            backlog.add(entry);
        }
        if backlog.dropped > 0 {
            tracing::warn!(
                dropped = backlog.dropped,
                "the store stayed away too long: the oldest agent state changes were dropped \
                 from the activity log"
            );
            backlog.dropped = 0;
        }
        // The changes first, then the node's end: each is forgotten once
        // written, so a retry never writes a change twice.
        let step = if backlog.changes.is_empty() {
            Step::Close
        } else {
            Step::Changes
        };
        let (changes, closed_at) = match step {
            Step::Changes => (backlog.changes.iter().cloned().collect(), None),
            Step::Close => (Vec::new(), backlog.closed_at),
        };
        let writing = write.clone();
        let written = tokio::task::spawn_blocking(move || writing(changes, closed_at)).await;
        match written {
            Ok(Ok(())) => {
                backlog.forget(step);
                retry_after = retry_first;
                continue;
            }
            Ok(Err(error)) if error.is_transient() => {
                tracing::debug!(%error, waiting = backlog.changes.len(), "agent state log: the store is away, trying again");
            }
            Ok(Err(error)) => {
                // Retrying cannot help: this batch is lost, the node's end
                // (if it is next) is still tried.
                tracing::warn!(%error, "cannot keep the agents' state changes for the reports");
                backlog.forget(step);
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "the agent state log writer failed");
                return;
            }
        }
        // The store is away: wait, taking in what arrives meanwhile; the
        // node stopping cuts the wait short (its exit waits only briefly).
        let wait = tokio::time::sleep(retry_after);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                entry = received.recv(), if open => match entry {
                    Some(entry) => backlog.add(entry),
                    // `close` sent the node's end and let go of the
                    // channel: try again now.
                    None => {
                        open = false;
                        break;
                    }
                },
            }
        }
        retry_after = (retry_after * 2).min(RETRY_LONGEST);
    }
}

/// What one write of the backlog carries.
#[derive(Debug, Clone, Copy)]
enum Step {
    Changes,
    Close,
}

impl Backlog {
    /// A step written (or refused for good): not written again.
    fn forget(&mut self, step: Step) {
        match step {
            Step::Changes => self.changes.clear(),
            Step::Close => self.closed_at = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A store that fails its first `failures` writes as busy, then keeps
    /// what it is given.
    fn flaky(failures: usize) -> (WriteBatch, Arc<Mutex<Vec<String>>>) {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(Mutex::new(0usize));
        let keeping = kept.clone();
        let write: WriteBatch = Arc::new(move |changes, closed_at| {
            let mut n = calls.lock().unwrap();
            *n += 1;
            if *n <= failures {
                return Err(StoreError::busy_for_tests());
            }
            let mut kept = keeping.lock().unwrap();
            kept.extend(
                changes
                    .into_iter()
                    .map(|c| format!("{}:{}", c.agent, c.state)),
            );
            if closed_at.is_some() {
                kept.push("closed".into());
            }
            Ok(())
        });
        (write, kept)
    }

    #[tokio::test]
    async fn changes_wait_for_a_store_that_is_away_and_are_written_in_order() {
        assert!(StoreError::busy_for_tests().is_transient());
        let (write, kept) = flaky(4);
        let mut log = AgentLog::with_writer("n1".into(), write, Duration::from_millis(5));
        log.changed("a1", "ready", None);
        tokio::time::sleep(Duration::from_millis(10)).await;
        log.changed("a1", "on_call", None);
        log.changed("a2", "not_ready", Some("break"));
        log.close(Duration::from_secs(5)).await;
        assert_eq!(
            *kept.lock().unwrap(),
            ["a1:ready", "a1:on_call", "a2:not_ready", "closed"],
            "four failed writes lost nothing"
        );
    }

    #[tokio::test]
    async fn a_close_that_fails_once_does_not_write_the_changes_twice() {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let close_failures = Arc::new(Mutex::new(1));
        let keeping = kept.clone();
        // As the store does: the changes in one transaction, then the
        // node's end in another, which fails the first time.
        let write: WriteBatch = Arc::new(move |changes, closed_at| {
            let mut kept = keeping.lock().unwrap();
            kept.extend(changes.into_iter().map(|c| c.agent));
            if closed_at.is_some() {
                let mut left = close_failures.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return Err(StoreError::busy_for_tests());
                }
                kept.push("closed".into());
            }
            Ok(())
        });
        let mut log = AgentLog::with_writer("n1".into(), write, Duration::from_millis(5));
        log.changed("a1", "ready", None);
        log.close(Duration::from_secs(5)).await;
        assert_eq!(*kept.lock().unwrap(), ["a1", "closed"]);
    }

    #[tokio::test]
    async fn a_stop_cuts_the_wait_for_the_store_short() {
        // The store fails once; the writer waits 10 s before the next try,
        // but the node's stop (Closed) tries again at once.
        let (write, kept) = flaky(1);
        let mut log = AgentLog::with_writer("n1".into(), write, Duration::from_secs(10));
        log.changed("a1", "ready", None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        log.close(Duration::from_secs(2)).await;
        assert_eq!(*kept.lock().unwrap(), ["a1:ready", "closed"]);
    }

    #[tokio::test]
    async fn a_close_does_not_wait_past_its_limit_for_a_store_that_stays_away() {
        let (write, kept) = flaky(usize::MAX);
        let mut log = AgentLog::with_writer("n1".into(), write, Duration::from_millis(5));
        log.changed("a1", "ready", None);
        log.close(Duration::from_millis(200)).await;
        assert!(kept.lock().unwrap().is_empty());
    }

    #[test]
    fn the_backlog_keeps_the_newest_changes_when_it_overflows() {
        let change = |n: usize| {
            Entry::Changed(StateChange {
                agent: n.to_string(),
                state: "ready".into(),
                reason: None,
                at: Timestamp::UNIX_EPOCH,
                node: "n1".into(),
            })
        };
        let mut backlog = Backlog::default();
        for n in 0..MAX_BACKLOG + 3 {
            backlog.add(change(n));
        }
        assert_eq!(backlog.changes.len(), MAX_BACKLOG);
        assert_eq!(backlog.dropped, 3);
        assert_eq!(backlog.changes[0].agent, "3");
    }
}
