//! The tokio task that drives the sans-IO [`Dialer`]: it owns the value,
//! applies commands from the API, fires its deadlines, and broadcasts its
//! events to the API's event streams. Nothing here decides anything.

use std::time::Instant;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::engine::dialer::{AgentView, CampaignView, Command, CommandError, Dialer, Event};
use crate::metrics as m;

/// Requests the API can make of the engine task.
pub enum Request {
    Command {
        command: Command,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    Agents {
        reply: oneshot::Sender<Vec<AgentView>>,
    },
    Campaigns {
        reply: oneshot::Sender<Vec<CampaignView>>,
    },
}

/// The API's handle on the engine task.
#[derive(Clone)]
pub struct EngineHandle {
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<Event>,
}

#[derive(Debug, thiserror::Error)]
#[error("the engine is shutting down")]
pub struct EngineGone;

impl EngineHandle {
    pub async fn command(&self, command: Command) -> Result<Result<(), CommandError>, EngineGone> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Command { command, reply })
            .await
            .map_err(|_| EngineGone)?;
        answer.await.map_err(|_| EngineGone)
    }

    pub async fn agents(&self) -> Result<Vec<AgentView>, EngineGone> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Agents { reply })
            .await
            .map_err(|_| EngineGone)?;
        answer.await.map_err(|_| EngineGone)
    }

    pub async fn campaigns(&self) -> Result<Vec<CampaignView>, EngineGone> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Campaigns { reply })
            .await
            .map_err(|_| EngineGone)?;
        answer.await.map_err(|_| EngineGone)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

/// Spawns the engine task; it ends when `shutdown` turns true.
pub fn spawn(
    mut dialer: Dialer,
    mut shutdown: watch::Receiver<bool>,
) -> (EngineHandle, tokio::task::JoinHandle<()>) {
    let (requests, mut inbox) = mpsc::channel::<Request>(256);
    let (events, _) = broadcast::channel(1024);
    let handle = EngineHandle {
        requests,
        events: events.clone(),
    };
    // Before the task starts, so the very first scrape sees every gauge.
    publish_gauges(&dialer);
    let task = tokio::spawn(async move {
        loop {
            let deadline = dialer.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = sleep => dialer.handle_timeout(Instant::now()),
                request = inbox.recv() => match request {
                    None => break,
                    Some(Request::Command { command, reply }) => {
                        tracing::info!(?command, "engine command");
                        let result = dialer.handle_command(command, Instant::now());
                        let label = if result.is_ok() { "applied" } else { "rejected" };
                        metrics::counter!(m::ENGINE_COMMANDS, "result" => label).increment(1);
                        let _ = reply.send(result);
                    }
                    Some(Request::Agents { reply }) => {
                        let _ = reply.send(dialer.agent_views(Instant::now()));
                    }
                    Some(Request::Campaigns { reply }) => {
                        let _ = reply.send(dialer.campaign_views());
                    }
                },
            }
            let mut changed = false;
            while let Some(event) = dialer.poll_event() {
                tracing::debug!(?event, "engine event");
                metrics::counter!(m::ENGINE_EVENTS, "type" => event.kind()).increment(1);
                changed = true;
                // No subscriber is fine: nobody is watching.
                let _ = events.send(event);
            }
            if changed {
                publish_gauges(&dialer);
            }
        }
    });
    (handle, task)
}

/// Agents per state and campaigns running, as gauges.
fn publish_gauges(dialer: &Dialer) {
    let now = Instant::now();
    let agents = dialer.agent_views(now);
    for state in m::AGENT_STATES {
        let count = agents.iter().filter(|a| a.state == state).count();
        metrics::gauge!(m::AGENTS, "state" => state).set(count as f64);
    }
    for campaign in dialer.campaign_views() {
        let running = if campaign.state == "running" {
            1.0
        } else {
            0.0
        };
        metrics::gauge!(m::CAMPAIGN_RUNNING, "campaign" => campaign.name).set(running);
    }
}
