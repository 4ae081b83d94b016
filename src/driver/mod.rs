//! The tokio task that drives the sans-IO [`Dialer`]: it owns the value,
//! applies commands from the API, fires its deadlines, feeds it what SIP,
//! RTP, CPA and the store observed, carries out its effects through the
//! [`shell`], and broadcasts its events to the API's event streams. Nothing
//! here decides anything.

use std::time::{Duration, Instant};

mod agent_log;
mod media;
pub mod node_presence;
pub mod shell;
pub mod store_retry;
pub mod trunk_share;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::config::definition::CampaignDefinition;
use crate::engine::io::{CampaignStats, Input};
use crate::media::listen_in::ListenMode;
use crate::sip::endpoint::Event as SipEvent;
use crate::store::CampaignId;
use shell::{Shell, ShellChannels};

use crate::engine::dialer::{AgentView, CampaignView, Command, CommandError, Dialer, Event};
use crate::metrics as m;

/// Requests the API can make of the engine task.
pub enum Request {
    /// What this node asks of a trunk shared with other nodes.
    TrunkDemand {
        reply: oneshot::Sender<(crate::pacing::trunk_share::TrunkDemand, Option<Duration>)>,
    },
    /// This node's part of a shared trunk, as claimed through the store.
    SetTrunkShare {
        share: Option<crate::pacing::trunk_share::TrunkShare>,
    },
    /// The carrier's Retry-After given to another node of the shared trunk.
    HoldTrunk { remaining: Duration },
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
    Stats {
        campaign: String,
        reply: oneshot::Sender<Option<CampaignStats>>,
    },
    /// A campaign's settings and assigned agents.
    Definition {
        campaign: String,
        reply: oneshot::Sender<Option<CampaignDefinition>>,
    },
    /// Adds a campaign defined through the API (stored under `id`), or
    /// replaces one (`replace`).
    Define {
        definition: Box<CampaignDefinition>,
        id: CampaignId,
        replace: bool,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Whether `definition` could replace its campaign now.
    CheckDefinition {
        definition: Box<CampaignDefinition>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// An agent's desktop offers its browser as the agent's phone (SDP);
    /// the reply is the answer.
    BrowserPhone {
        agent: String,
        offer: String,
        /// The desktop connects again by itself (see
        /// `Shell::browser_phone_offer`), replacing its own earlier session.
        reconnect: bool,
        replaces: Option<u64>,
        reply: oneshot::Sender<Result<shell::BrowserPhoneAnswer, shell::BrowserPhoneRefused>>,
    },
    /// A supervisor's browser offers (SDP) to listen in on an agent.
    ListenIn {
        agent: String,
        offer: String,
        mode: ListenMode,
        reply: oneshot::Sender<Result<shell::ListenInAnswer, shell::ListenInRefused>>,
    },
    /// Who hears the supervisor listening in as `session`; false: none such.
    ListenMode {
        session: u64,
        mode: ListenMode,
        reply: oneshot::Sender<bool>,
    },
    /// The supervisor listening in as `session` stops; false: none such.
    EndListenIn {
        session: u64,
        reply: oneshot::Sender<bool>,
    },
    ListenIns {
        reply: oneshot::Sender<Vec<shell::ListenInView>>,
    },
    /// The agent stops using its browser as its phone.
    CloseBrowserPhone {
        agent: String,
        session: Option<u64>,
        reply: oneshot::Sender<bool>,
    },
    /// Removes a campaign defined through the API.
    Remove {
        campaign: String,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// The campaigns defined through the API as the store holds them now
    /// (another node sharing the database may have changed them).
    SyncDefinitions {
        stored: Vec<crate::store::StoredDefinition>,
        reply: oneshot::Sender<Vec<DefinitionChange>>,
    },
}

/// What a [`Request::SyncDefinitions`] changed in this node's campaigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinitionChange {
    /// Defined or changed; stored under `id`.
    Defined {
        name: String,
        id: CampaignId,
        default_region: String,
    },
    Removed {
        name: String,
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
        self.ask(|reply| Request::Command { command, reply }).await
    }

    /// Answers an agent's browser phone offer (SDP), or says why not.
    pub async fn browser_phone(
        &self,
        agent: String,
        offer: String,
        reconnect: bool,
        replaces: Option<u64>,
    ) -> Result<Result<shell::BrowserPhoneAnswer, shell::BrowserPhoneRefused>, EngineGone> {
        self.ask(|reply| Request::BrowserPhone {
            agent,
            offer,
            reconnect,
            replaces,
            reply,
        })
        .await
    }

    /// Ends an agent's browser phone; false: it had none.
    pub async fn close_browser_phone(
        &self,
        agent: String,
        session: Option<u64>,
    ) -> Result<bool, EngineGone> {
        self.ask(|reply| Request::CloseBrowserPhone {
            agent,
            session,
            reply,
        })
        .await
    }

    /// Lets a supervisor's browser listen in on `agent` (its offer's
    /// answer), or says why not.
    pub async fn listen_in(
        &self,
        agent: String,
        offer: String,
        mode: ListenMode,
    ) -> Result<Result<shell::ListenInAnswer, shell::ListenInRefused>, EngineGone> {
        self.ask(|reply| Request::ListenIn {
            agent,
            offer,
            mode,
            reply,
        })
        .await
    }

    pub async fn set_listen_mode(
        &self,
        session: u64,
        mode: ListenMode,
    ) -> Result<bool, EngineGone> {
        self.ask(|reply| Request::ListenMode {
            session,
            mode,
            reply,
        })
        .await
    }

    pub async fn end_listen_in(&self, session: u64) -> Result<bool, EngineGone> {
        self.ask(|reply| Request::EndListenIn { session, reply })
            .await
    }

    pub async fn listen_ins(&self) -> Result<Vec<shell::ListenInView>, EngineGone> {
        self.ask(|reply| Request::ListenIns { reply }).await
    }

    /// Sends the request `make` builds around a reply channel, and waits
    /// for the reply.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, EngineGone> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(make(reply))
            .await
            .map_err(|_| EngineGone)?;
        answer.await.map_err(|_| EngineGone)
    }

    pub async fn agents(&self) -> Result<Vec<AgentView>, EngineGone> {
        self.ask(|reply| Request::Agents { reply }).await
    }

    pub async fn campaigns(&self) -> Result<Vec<CampaignView>, EngineGone> {
        self.ask(|reply| Request::Campaigns { reply }).await
    }

    /// A campaign's live figures (`None`: never started or unknown).
    pub async fn stats(&self, campaign: String) -> Result<Option<CampaignStats>, EngineGone> {
        self.ask(|reply| Request::Stats { campaign, reply }).await
    }

    /// A campaign's settings and assigned agents (`None`: no such campaign).
    pub async fn definition(
        &self,
        campaign: String,
    ) -> Result<Option<CampaignDefinition>, EngineGone> {
        self.ask(|reply| Request::Definition { campaign, reply })
            .await
    }

    /// Adds (or, with `replace`, changes) a campaign defined through the
    /// API; the store holds it under `id` already.
    pub async fn define(
        &self,
        definition: CampaignDefinition,
        id: CampaignId,
        replace: bool,
    ) -> Result<Result<(), CommandError>, EngineGone> {
        self.ask(|reply| Request::Define {
            definition: Box::new(definition),
            id,
            replace,
            reply,
        })
        .await
    }

    /// Whether `definition` could replace its campaign now (created
    /// through the API, nothing of it in motion).
    pub async fn check_definition(
        &self,
        definition: CampaignDefinition,
    ) -> Result<Result<(), CommandError>, EngineGone> {
        self.ask(|reply| Request::CheckDefinition {
            definition: Box::new(definition),
            reply,
        })
        .await
    }

    /// Brings this node's campaigns defined through the API to what the
    /// store holds (what can change now: a campaign in motion is changed or
    /// removed at a later sync); returns what changed.
    pub async fn sync_definitions(
        &self,
        stored: Vec<crate::store::StoredDefinition>,
    ) -> Result<Vec<DefinitionChange>, EngineGone> {
        self.ask(|reply| Request::SyncDefinitions { stored, reply })
            .await
    }

    /// Removes a campaign defined through the API.
    pub async fn remove(&self, campaign: String) -> Result<Result<(), CommandError>, EngineGone> {
        self.ask(|reply| Request::Remove { campaign, reply }).await
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// What this node asks of a shared trunk, and how long the carrier's
    /// Retry-After still holds its new calls.
    pub async fn trunk_demand(
        &self,
    ) -> Result<(crate::pacing::trunk_share::TrunkDemand, Option<Duration>), EngineGone> {
        self.ask(|reply| Request::TrunkDemand { reply }).await
    }

    /// The carrier asked another node of the shared trunk to pause.
    pub async fn hold_trunk_for(&self, remaining: Duration) -> Result<(), EngineGone> {
        self.requests
            .send(Request::HoldTrunk { remaining })
            .await
            .map_err(|_| EngineGone)
    }

    pub async fn set_trunk_share(
        &self,
        share: Option<crate::pacing::trunk_share::TrunkShare>,
    ) -> Result<(), EngineGone> {
        self.requests
            .send(Request::SetTrunkShare { share })
            .await
            .map_err(|_| EngineGone)
    }
}

/// How long connected calls may go on after a shutdown request before
/// they are hung up (dialing stops at once).
pub const CALLS_DRAIN: Duration = Duration::from_secs(2);
/// Time given to BYE/CANCEL and the last store writes at shutdown.
const HANGUP_FLUSH: Duration = Duration::from_millis(600);

/// The engine task's state: the sans-IO dialer and the shell that carries
/// out its effects.
struct Engine {
    dialer: Dialer,
    shell: Shell,
    channels: ShellChannels,
    sip_events: mpsc::UnboundedReceiver<SipEvent>,
    events: broadcast::Sender<Event>,
    /// When the gauges were last published: on every engine event, and at
    /// least every [`GAUGE_PERIOD`] (lines in use and rates move without
    /// events).
    gauges_at: Instant,
    /// Warnings about stored definitions already logged.
    warned: std::collections::HashSet<String>,
}

/// The longest the Prometheus gauges go without a refresh while the engine
/// is busy.
const GAUGE_PERIOD: Duration = Duration::from_secs(1);

impl Engine {
    /// Feeds inputs, carries out effects until none are left, and
    /// publishes the dialer's events.
    async fn settle(&mut self, mut inputs: Vec<Input>) {
        loop {
            let now = Instant::now();
            for input in inputs.drain(..) {
                self.shell.observe(&input);
                self.dialer.handle_input(input, now);
            }
            let Some(effect) = self.dialer.poll_effect() else {
                break;
            };
            inputs = self.shell.apply(effect).await;
        }
        self.shell.reap();
        let mut changed = false;
        while let Some(event) = self.dialer.poll_event() {
            tracing::debug!(?event, "engine event");
            if let Event::AgentState {
                agent,
                state,
                reason,
            } = &event
            {
                self.shell.agent_changed(agent, state, reason.as_deref());
            }
            metrics::counter!(m::ENGINE_EVENTS, "type" => event.kind()).increment(1);
            if let Event::Transfer { campaign, step, .. } = &event {
                metrics::counter!(m::TRANSFERS, "campaign" => campaign.clone(), "step" => *step)
                    .increment(1);
            }
            changed = true;
            // No subscriber is fine: nobody is watching.
            let _ = self.events.send(event);
        }
        if changed || self.gauges_at.elapsed() >= GAUGE_PERIOD {
            publish_gauges(&self.dialer);
            self.gauges_at = Instant::now();
        }
    }

    /// Waits for one thing to happen (or `until`) and handles it. Returns
    /// false when every input source is gone.
    async fn step(
        &mut self,
        inbox: Option<&mut mpsc::Receiver<Request>>,
        until: Option<Instant>,
    ) -> bool {
        let deadline = match (self.dialer.poll_timeout(), until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let request = async {
            match inbox {
                Some(inbox) => inbox.recv().await,
                None => std::future::pending().await,
            }
        };
        let mut inputs = Vec::new();
        tokio::select! {
            _ = sleep => self.dialer.handle_timeout(Instant::now()),
            request = request => match request {
                None => return false,
                Some(request) => self.answer(request),
            },
            Some(event) = self.sip_events.recv() => inputs = self.shell.on_sip_event(event),
            Some(input) = self.channels.inputs.recv() => inputs.push(input),
            Some((call, row)) = self.channels.rows.recv() => inputs = self.shell.place(call, row).await,
            Some(lookup) = self.channels.trunk_lookups.recv() => inputs = self.shell.on_trunk_lookup(lookup),
            Some(event) = self.channels.browser_phones.recv() => inputs = self.shell.on_browser_phone(event),
            Some(event) = self.channels.listen_ins.recv() => self.shell.on_listen_in_phone(event),
        }
        self.settle(inputs).await;
        true
    }

    fn answer(&mut self, request: Request) {
        let now = Instant::now();
        match request {
            Request::Command { command, reply } => {
                tracing::info!(?command, "engine command");
                let result = self.dialer.handle_command(command, now);
                let label = if result.is_ok() {
                    "applied"
                } else {
                    "rejected"
                };
                metrics::counter!(m::ENGINE_COMMANDS, "result" => label).increment(1);
                let _ = reply.send(result);
            }
            Request::Agents { reply } => {
                let _ = reply.send(self.dialer.agent_views(now));
            }
            Request::TrunkDemand { reply } => {
                let _ = reply.send((
                    self.dialer.trunk_demand(),
                    self.dialer.trunk_retry_after(now),
                ));
            }
            Request::HoldTrunk { remaining } => self.dialer.hold_trunk_for(remaining, now),
            Request::SetTrunkShare { share } => {
                self.dialer.set_trunk_share(share, now);
            }
            Request::Campaigns { reply } => {
                let _ = reply.send(self.dialer.campaign_views());
            }
            Request::Stats { campaign, reply } => {
                let _ = reply.send(self.dialer.campaign_stats(&campaign, now));
            }
            Request::Definition { campaign, reply } => {
                let _ = reply.send(self.dialer.campaign_definition(&campaign));
            }
            Request::Define {
                definition,
                id,
                replace,
                reply,
            } => {
                let _ = reply.send(self.define(*definition, id, replace));
            }
            Request::SyncDefinitions { stored, reply } => {
                let _ = reply.send(self.sync_definitions(stored));
            }
            Request::CheckDefinition { definition, reply } => {
                let _ = reply.send(self.dialer.check_definition(&definition, true));
            }
            Request::BrowserPhone {
                agent,
                offer,
                reconnect,
                replaces,
                reply,
            } => {
                let answer = self
                    .shell
                    .browser_phone_offer(&agent, &offer, reconnect, replaces);
                if let Err(why) = &answer {
                    tracing::info!(%agent, %why, "browser phone refused");
                }
                let _ = reply.send(answer);
            }
            Request::ListenIn {
                agent,
                offer,
                mode,
                reply,
            } => {
                let answer = self.shell.listen_in_offer(&agent, &offer, mode);
                if let Err(why) = &answer {
                    tracing::info!(%agent, %why, "listening in refused");
                }
                let _ = reply.send(answer);
            }
            Request::ListenMode {
                session,
                mode,
                reply,
            } => {
                let _ = reply.send(self.shell.set_listen_mode(session, mode));
            }
            Request::EndListenIn { session, reply } => {
                let _ = reply.send(self.shell.end_listen_in(session));
            }
            Request::ListenIns { reply } => {
                let _ = reply.send(self.shell.listen_in_views());
            }
            Request::CloseBrowserPhone {
                agent,
                session,
                reply,
            } => {
                let _ = reply.send(self.shell.close_browser_phone(&agent, session));
            }
            Request::Remove { campaign, reply } => {
                let result = self.dialer.remove_campaign(&campaign);
                if result.is_ok() {
                    self.shell.remove_campaign(&campaign);
                    tracing::info!(%campaign, "campaign removed");
                }
                let _ = reply.send(result);
            }
        }
    }

    /// A campaign defined or changed through the API: checked by the
    /// dialer, its prompts loaded by the shell, then applied to both.
    fn define(
        &mut self,
        definition: CampaignDefinition,
        id: CampaignId,
        replace: bool,
    ) -> Result<(), CommandError> {
        self.dialer.check_definition(&definition, replace)?;
        self.shell
            .add_campaign(&definition.campaign, id)
            .map_err(|e| CommandError::Invalid(format!("{e:#}")))?;
        let name = definition.campaign.name.clone();
        let mode = definition.campaign.mode;
        self.dialer.apply_definition(definition, replace)?;
        tracing::info!(campaign = %name, %mode, replace, "campaign defined through the API");
        Ok(())
    }

    /// See [`EngineHandle::sync_definitions`].
    fn sync_definitions(
        &mut self,
        stored: Vec<crate::store::StoredDefinition>,
    ) -> Vec<DefinitionChange> {
        use crate::config::CampaignSource;
        let known_agents = self.dialer.agent_id_set();
        let mut changes = Vec::new();
        let mut warnings = Vec::new();
        for entry in &stored {
            let definition = match crate::config::definition::read_stored(
                &entry.name,
                &entry.definition,
                &known_agents,
                &mut warnings,
            ) {
                Ok(definition) => definition,
                Err(why) => {
                    warnings.push(format!(
                        "campaign `{}` defined through the API is left out: {why}",
                        entry.name
                    ));
                    continue;
                }
            };
            let replace = match self.dialer.campaign_definition(&entry.name) {
                None => false,
                // The file's campaign of that name wins (as at start).
                Some(current) if current.campaign.source == CampaignSource::File => continue,
                Some(current) if current.same_as(&definition) => continue,
                Some(_) => true,
            };
            let default_region = definition.campaign.default_region.clone();
            match self.define(definition, entry.id, replace) {
                Ok(()) => changes.push(DefinitionChange::Defined {
                    name: entry.name.clone(),
                    id: entry.id,
                    default_region,
                }),
                // In motion here: the next sync tries again.
                Err(error) => {
                    tracing::debug!(campaign = %entry.name, %error, "definition not taken yet")
                }
            }
        }
        let gone: Vec<String> = self
            .dialer
            .campaign_views()
            .into_iter()
            .filter(|c| c.source == CampaignSource::Api.name())
            .filter(|c| !stored.iter().any(|s| s.name == c.name))
            .map(|c| c.name)
            .collect();
        for name in gone {
            if self.dialer.remove_campaign(&name).is_ok() {
                self.shell.remove_campaign(&name);
                tracing::info!(campaign = %name, "campaign removed (no longer in the store)");
                changes.push(DefinitionChange::Removed { name });
            }
        }
        for warning in warnings {
            // Said once per process, not at every sync.
            if self.warned.insert(warning.clone()) {
                tracing::warn!("{warning}");
            }
        }
        changes
    }

    /// Stop dialing, let calls finish (bounded), hang up the rest, hang up
    /// the agents' phones and flush the store.
    async fn shut_down(&mut self) {
        let now = Instant::now();
        self.dialer.stop_dialing(now);
        self.settle(Vec::new()).await;
        let drain_until = Instant::now() + CALLS_DRAIN;
        while self.dialer.calls_in_flight() > 0 && Instant::now() < drain_until {
            if !self.step(None, Some(drain_until)).await {
                break;
            }
        }
        let in_flight = self.dialer.calls_in_flight();
        if in_flight > 0 {
            tracing::info!(calls = in_flight, "hanging up the calls still in progress");
        }
        self.dialer.hang_up_all(Instant::now());
        self.settle(Vec::new()).await;
        // Let BYE/CANCEL go out and their answers come back.
        let flush_until = Instant::now() + HANGUP_FLUSH;
        while Instant::now() < flush_until {
            if !self.step(None, Some(flush_until)).await {
                break;
            }
        }
        self.shell.hang_up_agents().await;
        self.shell.close_agent_log(HANGUP_FLUSH).await;
        self.shell.unregister_from_trunk().await;
        self.shell.flush_store(HANGUP_FLUSH).await;
    }
}

/// Spawns the engine task; it shuts down cleanly when `shutdown` turns true
/// (the SIP driver must keep running until this task has ended).
pub fn spawn(
    dialer: Dialer,
    shell: Shell,
    channels: ShellChannels,
    sip_events: mpsc::UnboundedReceiver<SipEvent>,
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
    let mut engine = Engine {
        dialer,
        shell,
        channels,
        sip_events,
        events,
        gauges_at: Instant::now(),
        warned: std::collections::HashSet::new(),
    };
    let task = tokio::spawn(async move {
        engine.settle(Vec::new()).await;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                alive = engine.step(Some(&mut inbox), None) => if !alive { break },
            }
        }
        engine.shut_down().await;
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
    let on_hold = agents.iter().filter(|a| a.on_hold_s.is_some()).count();
    metrics::gauge!(m::CUSTOMERS_ON_HOLD).set(on_hold as f64);
    let held = dialer.trunk_hold();
    for hold in crate::engine::trunk_health::TrunkHold::ALL {
        metrics::gauge!(m::TRUNK_HELD, "reason" => hold.label()).set(if held == Some(hold) {
            1.0
        } else {
            0.0
        });
    }
    for campaign in dialer.campaign_views() {
        let running = if campaign.state == "running" {
            1.0
        } else {
            0.0
        };
        metrics::gauge!(m::CAMPAIGN_RUNNING, "campaign" => campaign.name.clone()).set(running);
        let Some(stats) = dialer.campaign_stats(&campaign.name, now) else {
            continue;
        };
        let name = campaign.name;
        metrics::gauge!(m::ABANDON_RATE, "campaign" => name.clone(), "window" => "us_30d")
            .set(stats.abandon_rate_us);
        metrics::gauge!(m::ABANDON_RATE, "campaign" => name.clone(), "window" => "uk_24h")
            .set(stats.abandon_rate_uk);
        metrics::gauge!(m::LINES_IN_USE, "campaign" => name.clone()).set(stats.lines_in_use as f64);
        metrics::gauge!(m::ANSWERS_WAITING, "campaign" => name.clone())
            .set(stats.answers_waiting_for_agent as f64);
        metrics::gauge!(m::REPEAT_CALLS_WAITING, "campaign" => name.clone())
            .set(stats.repeat_calls_waiting as f64);
        for reason in ["trunk_lines", "calls_per_second", "compliance"] {
            let held = running > 0.0 && stats.limit.as_deref() == Some(reason);
            metrics::gauge!(m::HELD_BACK, "campaign" => name.clone(), "reason" => reason)
                .set(if held { 1.0 } else { 0.0 });
        }
    }
}
