//! Writes the agents' state changes to the store (`agent_states`) for the
//! activity reports (`agent::activity`), in order, off the engine task. A
//! write the store refuses for a while (a restart, a lock) is tried again
//! a few times, then dropped with a warning: the reports lose that change,
//! the dialing loses nothing.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::agent::activity::{REASON_DIALER_STOPPED, StateChange};
use crate::store::Store;

/// Tries of one write, and the wait between them.
const WRITE_TRIES: u32 = 3;
const RETRY_AFTER: Duration = Duration::from_secs(1);

enum Entry {
    Changed(StateChange),
    /// The node stops: its agents' states end now.
    Closed {
        at: Timestamp,
    },
}

/// The node's agent state log.
pub struct AgentLog {
    node: String,
    entries: Option<mpsc::UnboundedSender<Entry>>,
    writer: Option<JoinHandle<()>>,
}

impl AgentLog {
    pub fn start(store: Arc<dyn Store>, node: String) -> AgentLog {
        let (entries, mut received) = mpsc::unbounded_channel::<Entry>();
        let writer_node = node.clone();
        let writer = tokio::spawn(async move {
            while let Some(first) = received.recv().await {
                // What arrived meanwhile goes in the same transaction.
                let mut batch = vec![first];
                while let Ok(entry) = received.try_recv() {
                    batch.push(entry);
                }
                write(&store, &writer_node, batch).await;
            }
        });
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
        if let Some(writer) = self.writer.take()
            && tokio::time::timeout(within, writer).await.is_err()
        {
            tracing::warn!("the agent state log was still being written at exit");
        }
    }
}

async fn write(store: &Arc<dyn Store>, node: &str, batch: Vec<Entry>) {
    let mut changes = Vec::new();
    let mut closed_at = None;
    for entry in batch {
        match entry {
            Entry::Changed(change) => changes.push(change),
            Entry::Closed { at } => closed_at = Some(at),
        }
    }
    for attempt in 1..=WRITE_TRIES {
        let (store, node, changes) = (store.clone(), node.to_string(), changes.clone());
        let written = tokio::task::spawn_blocking(move || {
            store.record_agent_states(&changes)?;
            if let Some(at) = closed_at {
                store.close_agent_states(&node, at, REASON_DIALER_STOPPED)?;
            }
            Ok::<(), crate::store::StoreError>(())
        })
        .await;
        match written {
            Ok(Ok(())) => return,
            Ok(Err(error)) if error.is_transient() && attempt < WRITE_TRIES => {
                tokio::time::sleep(RETRY_AFTER).await;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot keep the agents' state changes for the reports");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "the agent state log writer failed");
                return;
            }
        }
    }
}
