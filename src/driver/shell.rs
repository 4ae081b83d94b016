//! Carries out the dialer's [`Effect`]s with real sockets and the store, and
//! turns SIP events into [`Input`]s. Store calls are blocking (SQLite,
//! PostgreSQL) and run on tokio's blocking pool; everything else is a
//! message to a SIP, RTP or media task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::SendError;

use super::media::{AgentCommand, CustomerCommand, CustomerMedia, agent_phone};
use crate::campaign::local_presence::LocalPresence;
use crate::config::Config;
use crate::engine::attempt::{AttemptResult, Failure, Prompt};
use crate::engine::calls::LEASE_FOR;
use crate::engine::io::{AttemptRecord, CallId, ConnectFailure, Effect, HistoryMinute, Input};
use crate::media::prompt::Prompt as PromptAudio;
use crate::net::SipHandle;
use crate::net::browser_phone::BrowserPhoneEvent;
use crate::net::locate::{Destinations, Locator};
use crate::net::route::{Route, RouteCache, route_for};
use crate::net::rtp::{self, PortPool, RtpLeg};
use crate::pacing::ledger::US_WINDOW;
use crate::sdp::{Codec, Direction, MediaSession, Negotiated, SessionDescription};
use crate::sip::endpoint::{CallHandle, Credentials, Event as SipEvent, InviteRequest};
use crate::sip::outcome::Outcome as SipOutcome;
use crate::sip::registrar::{BindingChange, Received};
use crate::store::spool::{RowSpool, SpooledRow, callback_not_before};
use crate::store::{self, CampaignId, Lease, LeaseRequest, Release, Store};

/// How often the leases of calls in progress are pushed out (well inside
/// the lease's own length).
const LEASE_EXTENSION_EVERY: Duration = Duration::from_secs(5 * 60);

/// Whose call a SIP dialog is.
#[derive(Debug, Clone)]
enum Party {
    Customer(CallId),
    Agent(String),
    /// The outside number a call's customer is being transferred to.
    Outside(CallId),
}

struct CustomerCall {
    handle: Option<CallHandle>,
    media: mpsc::UnboundedSender<CustomerCommand>,
    answered: bool,
    /// The ring timeout's CANCEL went out: an answer now crossed it.
    ring_timed_out: bool,
    campaign: String,
    lease: Lease,
    /// Picked by the agent (preview); once the call is placed, the caller
    /// ID it presents.
    caller_id: Option<String>,
}

mod browser_phones;
mod listen_ins;
mod outside_lines;
pub use browser_phones::{BrowserPhoneAnswer, BrowserPhoneRefused, PhoneStartRefused};
pub use listen_ins::{ListenInAnswer, ListenInRefused, ListenInView};

struct AgentPhone {
    /// The SIP call to the phone (none for a browser phone or a simulated
    /// agent's sink).
    handle: Option<CallHandle>,
    media: mpsc::UnboundedSender<AgentCommand>,
    up: bool,
    /// The phone holds the call (its last re-offer was sendonly or
    /// inactive: the agent pressed Hold on the phone).
    held: bool,
    /// The session of the browser phone this leg runs to.
    browser: Option<u64>,
}

/// What the shell keeps of one campaign: its settings and its prompts,
/// loaded when the campaign is defined (at start, or through the API).
struct ShellCampaign {
    config: crate::config::CampaignConfig,
    /// With `local_presence`: its numbers, parsed once.
    local_presence: Option<LocalPresence>,
    abandon: Option<PromptAudio>,
    voicemail: Option<PromptAudio>,
    /// What its customers hear on hold (`hold_music`, else the chime).
    hold: PromptAudio,
}

pub struct Shell {
    config: Arc<Config>,
    sip: SipHandle,
    pool: Arc<PortPool>,
    store: Arc<dyn Store>,
    node: String,
    campaign_ids: HashMap<String, CampaignId>,
    /// Each campaign's settings and prompts, for the choices made per call
    /// (CPA settings, caller ID, what to play).
    campaigns: HashMap<String, ShellCampaign>,
    inputs: mpsc::UnboundedSender<Input>,
    rows: mpsc::UnboundedSender<(CallId, Result<store::AttemptId, String>)>,
    parties: HashMap<CallHandle, Party>,
    /// The store's attempt row of each call (written before the INVITE).
    attempt_rows: HashMap<CallId, store::AttemptId>,
    /// The bridge recordings of each recorded call, for its row.
    recordings: HashMap<CallId, CallRecordings>,
    /// Ends when the latest contact correction is written; the next one
    /// waits for it.
    contact_writes: Option<tokio::sync::oneshot::Receiver<()>>,
    /// When each finished call ended (until its record is written).
    ended_at: HashMap<CallId, Timestamp>,
    customers: HashMap<CallId, CustomerCall>,
    /// Calls' outside lines (transfers to outside numbers).
    outside_lines: HashMap<CallId, outside_lines::OutsideLine>,
    agents: HashMap<String, AgentPhone>,
    /// Agents' phones registered with our registrar: agent → contact URI
    /// and the address the REGISTER came from.
    registered: HashMap<String, (String, Received)>,
    /// The trunk's route, looked up in the background (`RouteCache`).
    trunk_routes: RouteCache<Route>,
    /// Where the background lookups of the trunk report (`None`: the
    /// first lookup is still running at start).
    trunk_lookups: mpsc::UnboundedSender<Option<anyhow::Result<Route>>>,
    /// DNS for SIP hosts (SRV, RFC 3263), with its cache.
    locator: Locator,
    /// When the leases of the calls in progress are extended next.
    next_lease_extension: Option<Instant>,
    /// Where simulated agents' legs send their audio (drained, discarded).
    sink: Option<SocketAddr>,
    store_tasks: tokio::task::JoinSet<()>,
    /// Finished calls' rows until the store has them.
    spool: Arc<std::sync::Mutex<RowSpool>>,
    /// The agents' state changes, kept for the activity reports.
    agent_log: super::agent_log::AgentLog,
    /// Agents' phones in their web desktops (WebRTC).
    browser_phones: HashMap<String, browser_phones::BrowserPhoneEntry>,
    browser_phone_events: mpsc::UnboundedSender<BrowserPhoneEvent>,
    /// Supervisors listening in on agents, by session.
    listen_ins: listen_ins::ListenIns,
    listen_in_events: mpsc::UnboundedSender<BrowserPhoneEvent>,
}

/// Messages the shell's own tasks send back to the engine task.
pub struct ShellChannels {
    pub inputs: mpsc::UnboundedReceiver<Input>,
    pub rows: mpsc::UnboundedReceiver<(CallId, Result<store::AttemptId, String>)>,
    /// The trunk's lookups: hand each to [`Shell::on_trunk_lookup`].
    pub trunk_lookups: mpsc::UnboundedReceiver<Option<anyhow::Result<Route>>>,
    /// Agents' browser phones: hand each to [`Shell::on_browser_phone`].
    pub browser_phones: mpsc::UnboundedReceiver<BrowserPhoneEvent>,
    /// Supervisors' browsers listening in: hand each to
    /// [`Shell::on_listen_in_phone`].
    pub listen_ins: mpsc::UnboundedReceiver<BrowserPhoneEvent>,
}

/// How long the start waits for the trunk's first lookup before leaving it
/// to the background.
const FIRST_LOOKUP_WAIT: Duration = Duration::from_secs(1);

impl Shell {
    pub async fn new(
        config: Arc<Config>,
        sip: SipHandle,
        store: Arc<dyn Store>,
        spool: Arc<std::sync::Mutex<RowSpool>>,
        node: String,
        campaign_ids: HashMap<String, CampaignId>,
    ) -> anyhow::Result<(Shell, ShellChannels)> {
        if let Some(dir) = &config.media.record_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("media.record_dir {}: cannot create it: {e}", dir.display())
            })?;
        }
        let pool = PortPool::new(config.rtp.bind, config.rtp.port_min, config.rtp.port_max);
        let (inputs_tx, inputs) = mpsc::unbounded_channel();
        let (rows_tx, rows) = mpsc::unbounded_channel();
        let (lookups_tx, mut trunk_lookups) = mpsc::unbounded_channel();
        let (browser_phones_tx, browser_phones) = mpsc::unbounded_channel();
        let (listen_ins_tx, listen_ins) = mpsc::unbounded_channel();
        let locator = Locator::new(&config.sip.dns_servers);
        let agent_log = super::agent_log::AgentLog::start(store.clone(), node.clone());
        let mut shell = Shell {
            config,
            sip,
            pool,
            store,
            spool,
            node,
            campaign_ids: HashMap::new(),
            campaigns: HashMap::new(),
            inputs: inputs_tx,
            rows: rows_tx,
            parties: HashMap::new(),
            attempt_rows: HashMap::new(),
            recordings: HashMap::new(),
            contact_writes: None,
            ended_at: HashMap::new(),
            customers: HashMap::new(),
            outside_lines: HashMap::new(),
            agents: HashMap::new(),
            registered: HashMap::new(),
            trunk_routes: RouteCache::default(),
            trunk_lookups: lookups_tx,
            locator,
            next_lease_extension: None,
            sink: None,
            store_tasks: tokio::task::JoinSet::new(),
            agent_log,
            browser_phones: HashMap::new(),
            browser_phone_events: browser_phones_tx,
            listen_ins: HashMap::new(),
            listen_in_events: listen_ins_tx,
        };
        for campaign in &shell.config.campaigns.clone() {
            let id = campaign_ids.get(&campaign.name).copied().ok_or_else(|| {
                anyhow::anyhow!("campaign `{}` has no id in the store", campaign.name)
            })?;
            shell.add_campaign(campaign, id)?;
        }
        // The trunk's first lookup, started before the engine runs and
        // waited for a moment (an IP, or DNS that answers, is done by
        // then); one still running goes on in the background, and the
        // engine holds dialing until a lookup succeeds.
        shell.look_up_trunk_after(Duration::ZERO);
        match tokio::time::timeout(FIRST_LOOKUP_WAIT, trunk_lookups.recv()).await {
            Ok(Some(result)) => {
                for input in shell.on_trunk_lookup(result) {
                    let _ = shell.inputs.send(input);
                }
            }
            _ => {
                tracing::warn!(
                    "the trunk's lookup is slow (DNS down?): no call is dialed until it succeeds"
                );
                // Through the lookups' own channel, so that the engine
                // hears it before or after the lookup's result, never
                // stale: the route in hand is read when it is handled.
                let _ = shell.trunk_lookups.send(None);
            }
        }
        let channels = ShellChannels {
            inputs,
            rows,
            trunk_lookups,
            browser_phones,
            listen_ins,
        };
        Ok((shell, channels))
    }

    /// Looks the trunk (or its outbound proxy) up after `delay`, in the
    /// background; the result comes back through `trunk_lookups`.
    fn look_up_trunk_after(&self, delay: Duration) {
        let (locator, config) = (self.locator.clone(), self.config.clone());
        let report = self.trunk_lookups.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // The route does not depend on the number dialed, only its
            // Request-URI does (`trunk_route`).
            let any_number = config.trunk.caller_id.clone();
            let _ = report.send(Some(route_for(&locator, &config, &any_number).await));
        });
    }

    /// A lookup of the trunk ended (`None`: the first one is still
    /// running): the route is kept (or the one in hand stays), the next
    /// lookup is started, and the engine hears whether the trunk has an
    /// address now.
    pub fn on_trunk_lookup(&mut self, result: Option<anyhow::Result<Route>>) -> Vec<Input> {
        let Some(result) = result else {
            return vec![Input::TrunkRoute {
                known: self.trunk_routes.current().is_some(),
            }];
        };
        let route = match result {
            Ok(route) => Some(route),
            Err(error) => {
                tracing::warn!(
                    error = %format!("{error:#}"),
                    "cannot look the trunk up; keeping its last route, if any, and trying again in {} s",
                    crate::net::route::ROUTE_RETRY.as_secs()
                );
                None
            }
        };
        let next = self.trunk_routes.looked_up(route);
        self.look_up_trunk_after(next);
        vec![Input::TrunkRoute {
            known: self.trunk_routes.current().is_some(),
        }]
    }

    /// Takes a campaign's settings (new, or changed through the API) and
    /// loads its prompts; an unreadable prompt is an error and changes
    /// nothing.
    pub fn add_campaign(
        &mut self,
        campaign: &crate::config::CampaignConfig,
        id: CampaignId,
    ) -> anyhow::Result<()> {
        let load = |path: &Option<std::path::PathBuf>| -> anyhow::Result<Option<PromptAudio>> {
            path.as_ref()
                .map(|p| {
                    PromptAudio::load(p).map_err(|e| {
                        anyhow::anyhow!("campaign `{}`: prompt {}: {e}", campaign.name, p.display())
                    })
                })
                .transpose()
        };
        let own = campaign
            .caller_id
            .as_deref()
            .unwrap_or(&self.config.trunk.caller_id);
        let entry = ShellCampaign {
            config: campaign.clone(),
            local_presence: campaign.local_presence.then(|| {
                LocalPresence::new(
                    std::iter::once(own).chain(campaign.caller_ids.iter().map(String::as_str)),
                )
            }),
            abandon: load(&campaign.abandon_prompt)?,
            voicemail: load(&campaign.voicemail_prompt)?,
            hold: load(&campaign.hold_music)?
                .unwrap_or_else(|| PromptAudio::from_samples(crate::media::tones::hold_chime())),
        };
        self.campaign_ids.insert(campaign.name.clone(), id);
        self.campaigns.insert(campaign.name.clone(), entry);
        Ok(())
    }

    /// Forgets a campaign removed through the API.
    pub fn remove_campaign(&mut self, name: &str) {
        self.campaign_ids.remove(name);
        self.campaigns.remove(name);
    }

    /// Carries out one effect. Returns inputs to feed back at once.
    /// What the shell keeps of an input on its way to the engine: a
    /// splice that was done makes its recording the call's.
    pub fn observe(&mut self, input: &Input) {
        let (call, agent, done) = match input {
            Input::Spliced { call, agent } => (call, agent, true),
            Input::ConnectFailed { call, agent, .. } => (call, agent, false),
            _ => return,
        };
        if let Some(recordings) = self.recordings.get_mut(call) {
            recordings.reported(agent, done);
        }
    }

    pub async fn apply(&mut self, effect: Effect) -> Vec<Input> {
        match effect {
            Effect::Lease {
                campaign,
                max,
                for_agent,
                skip_agent_required,
            } => self.lease(campaign, max, for_agent, skip_agent_required),
            Effect::ReleaseLeases { leases, how } => self.release(leases, how),
            Effect::Postpone { lease, callback } => self.postpone(*lease, callback),
            Effect::UpdateContact {
                record,
                name,
                custom_json,
            } => self.update_contact(record, name, custom_json),
            Effect::LoadAnswerHistory { campaign } => self.load_answer_history(campaign),
            Effect::Dial {
                call,
                campaign,
                lease,
                caller_id,
            } => return self.begin_dial(call, campaign, *lease, caller_id),
            Effect::HangUp { call } => {
                let handle = self.customers.get(&call).and_then(|c| c.handle);
                self.hang_up(handle).await;
            }
            Effect::CancelRinging { call } => {
                let handle = self.customers.get_mut(&call).and_then(|customer| {
                    customer.ring_timed_out = true;
                    customer.handle
                });
                if let Some(handle) = handle {
                    let _ = self
                        .sip
                        .call(move |endpoint, now| endpoint.cancel_ringing(handle, now))
                        .await;
                }
            }
            Effect::DialOutside { call, number, line } => {
                return self.dial_outside(call, number, line).await;
            }
            Effect::HangUpOutside { call, line } => self.hang_up_outside(call, Some(line)).await,
            Effect::Connect { call, agent } if Self::is_outside_party(&agent) => {
                // Into the outside line: not recorded (see
                // `engine::outside_transfer`).
                let connect = match (self.customers.get(&call), self.outside_media(call, &agent)) {
                    (Some(customer), Some(phone)) => customer
                        .media
                        .send(CustomerCommand::Connect {
                            agent: agent.clone(),
                            phone,
                            record: None,
                        })
                        .map_err(|_| ConnectFailure::CustomerGone),
                    (None, _) => Err(ConnectFailure::CustomerGone),
                    (Some(_), None) => Err(ConnectFailure::AgentPhoneGone),
                };
                if let Err(cause) = connect {
                    return vec![Input::ConnectFailed { call, agent, cause }];
                }
            }
            Effect::Connect { call, agent } => {
                // On the agent's channel before the splice that follows.
                self.before_connecting(&agent);
                let Some(phone) = self.agent_media(&agent) else {
                    let cause = ConnectFailure::AgentPhoneGone;
                    return vec![Input::ConnectFailed { call, agent, cause }];
                };
                // Named by the store's attempt row, unique for good (the
                // engine's call ids start again at every start: a record
                // dialed again after a restart overwrote its earlier
                // recording).
                let attempt = self.attempt_rows.get(&call).copied();
                match self.customers.get(&call) {
                    Some(customer) => {
                        // The campaign may keep its calls unrecorded
                        // (`record_calls = false`: consent rules, sensitive
                        // lists).
                        let recorded = self
                            .campaigns
                            .get(&customer.campaign)
                            .is_none_or(|c| c.config.record_calls);
                        let record_dir = self.config.media.record_dir.as_ref().filter(|_| recorded);
                        let earlier = self.recordings.get(&call);
                        let record = record_dir.map(|dir| {
                            // External ids come from imported lists: keep
                            // them from naming a path outside the directory.
                            let id: String = customer
                                .lease
                                .external_id
                                .chars()
                                .map(|c| {
                                    if c.is_ascii_alphanumeric() || c == '-' {
                                        c
                                    } else {
                                        '_'
                                    }
                                })
                                .take(64)
                                .collect();
                            let attempt =
                                attempt.map_or_else(|| format!("c{call}"), |a| a.to_string());
                            let part = CallRecordings::next_part(earlier);
                            let part = if part > 1 {
                                format!("-{part}")
                            } else {
                                String::new()
                            };
                            dir.join(format!("{}-{id}-{attempt}{part}.wav", customer.campaign))
                        });
                        let recorded_as = record
                            .as_ref()
                            .and_then(|path| path.file_name())
                            .map(|name| name.to_string_lossy().into_owned());
                        let agent_name = agent.clone();
                        let connect = CustomerCommand::Connect {
                            agent,
                            phone,
                            record,
                        };
                        // The customer's media task has ended: nothing
                        // else would report on this splice.
                        if let Err(SendError(CustomerCommand::Connect { agent, .. })) =
                            customer.media.send(connect)
                        {
                            let cause = ConnectFailure::CustomerGone;
                            return vec![Input::ConnectFailed { call, agent, cause }];
                        }
                        if let Some(name) = recorded_as {
                            self.recordings
                                .entry(call)
                                .or_default()
                                .connecting(name, agent_name);
                        }
                    }
                    None => {
                        let cause = ConnectFailure::CustomerGone;
                        return vec![Input::ConnectFailed { call, agent, cause }];
                    }
                }
            }
            Effect::Play { call, prompt } => {
                let audio = self
                    .customers
                    .get(&call)
                    .and_then(|_| self.prompt_for(call, prompt));
                match (self.customers.get(&call), audio) {
                    (Some(customer), Some(audio)) => {
                        let _ = customer.media.send(CustomerCommand::Play(audio));
                    }
                    // Nothing to play: the prompt is over at once.
                    _ => return vec![Input::PromptDone { call }],
                }
            }
            Effect::CallOver { call } => {
                // The call's end time, for a record written later (after
                // the agent's wrap-up).
                self.ended_at.insert(call, Timestamp::now());
                self.hang_up_outside(call, None).await;
                if let Some(customer) = self.customers.remove(&call) {
                    let _ = customer.media.send(CustomerCommand::Close);
                    if let Some(handle) = customer.handle {
                        self.parties.remove(&handle);
                    }
                }
            }
            Effect::LiveAnswer { call } => self.mark_attempt(call, None),
            Effect::Bridged { call, agent } => self.mark_attempt(call, Some(agent)),
            Effect::Record(record) => self.record(*record),
            Effect::AgentRingback { agent, call, on } => {
                if let Some(phone) = self.agent_media(&agent) {
                    let _ = phone.send(AgentCommand::Ringback(on));
                    // The carrier's early media, if it sends any, replaces
                    // the generated ringback (announcements, its own tones).
                    if let Some(customer) = self.customers.get(&call) {
                        let _ = customer
                            .media
                            .send(CustomerCommand::ShareEarlyMedia(on.then_some(phone)));
                    }
                }
            }
            Effect::Hold { call, agent, on } => {
                let audio = on.then(|| {
                    self.customers
                        .get(&call)
                        .and_then(|customer| self.campaigns.get(&customer.campaign))
                        .map_or_else(
                            || PromptAudio::from_samples(crate::media::tones::hold_chime()),
                            |campaign| campaign.hold.clone(),
                        )
                });
                if let Some(phone) = self.agents.get(&agent).filter(|phone| phone.up) {
                    let _ = phone.media.send(AgentCommand::Hold { call, audio });
                }
            }
            Effect::SendDtmf { call, agent, codes } => {
                if let Some(phone) = self.agents.get(&agent).filter(|phone| phone.up) {
                    let _ = phone.media.send(AgentCommand::Dtmf { call, codes });
                }
            }
            Effect::Consult {
                call,
                number,
                from,
                to,
                on,
            } => {
                // Its end names it to the consulting phone, which may hear
                // of the end before the lent leg.
                let consultation = (call, number);
                // Both phones' commands run in order: a splice asked for
                // later (the transfer completed) finds the lent leg home.
                let consulting = self.agent_media(&from);
                let consulted = self.agent_media(&to);
                match (on, consulting, consulted) {
                    (true, Some(consulting), Some(consulted)) => {
                        // A supervisor listening in on either agent stops:
                        // the consultation takes its place.
                        let _ = consulting.send(AgentCommand::EndListenIn);
                        let _ = consulted.send(AgentCommand::EndListenIn);
                        let _ = consulted.send(AgentCommand::LendTo {
                            consultation,
                            consulting,
                            failed: self.inputs.clone(),
                        });
                    }
                    // The consulted phone is gone here already (its report
                    // follows): the consultation cannot be heard.
                    (true, _, None) => {
                        return vec![Input::ConsultationFailed { call, number }];
                    }
                    // The consulting phone is gone: its own report follows,
                    // which completes the transfer.
                    (true, None, Some(_)) => {}
                    // (A consulting phone already gone gave the lent leg
                    // back as it closed.)
                    (false, consulting, _) => {
                        if let Some(consulting) = consulting {
                            let _ = consulting.send(AgentCommand::EndConsultation(consultation));
                        }
                    }
                }
            }
            Effect::TakeBack { call, agent } => {
                // Straight to the agent's phone task, whose commands run in
                // order: done before a next customer's splice can reach it
                // (the customer's own task, asked to play the message,
                // finds its leg handed back).
                if let Some(phone) = self.agents.get(&agent).filter(|phone| phone.up) {
                    let _ = phone.media.send(AgentCommand::GiveBack { call });
                }
            }
            Effect::PauseRecording {
                call,
                agent,
                paused,
            } => {
                if let Some(phone) = self.agents.get(&agent).filter(|phone| phone.up) {
                    let _ = phone
                        .media
                        .send(AgentCommand::PauseRecording { call, paused });
                }
            }
            Effect::CallAgent { agent } => return self.call_agent(agent).await,
            Effect::HangUpAgent { agent } => {
                if let Some(inputs) = self.hang_up_browser_leg(&agent) {
                    return inputs;
                }
                let handle = self.agents.get(&agent).and_then(|a| a.handle);
                self.hang_up(handle).await;
            }
        }
        Vec::new()
    }

    fn campaign_id(&self, campaign: &str) -> Option<CampaignId> {
        self.campaign_ids.get(campaign).copied()
    }

    fn lease(
        &mut self,
        campaign: String,
        max: usize,
        for_agent: Option<String>,
        skip_agent_required: bool,
    ) {
        let Some(id) = self.campaign_id(&campaign) else {
            let _ = self.inputs.send(Input::LeaseFailed {
                campaign,
                for_agent,
            });
            return;
        };
        let store = self.store.clone();
        let node = self.node.clone();
        let inputs = self.inputs.clone();
        self.store_tasks.spawn(async move {
            let agent = for_agent.clone();
            let leased = tokio::task::spawn_blocking(move || {
                store.lease(&LeaseRequest {
                    campaign: id,
                    node: &node,
                    agent: agent.as_deref(),
                    max,
                    now: Timestamp::now(),
                    lease_for: SignedDuration::try_from(LEASE_FOR)
                        .unwrap_or(SignedDuration::from_secs(1800)),
                    // A lease for an agent is the poll for their personal
                    // callbacks only.
                    personal_only: agent.is_some(),
                    skip_agent_required,
                })
            })
            .await;
            let input = match leased {
                Ok(Ok(leases)) => Input::Leased {
                    campaign,
                    leases,
                    for_agent,
                },
                Ok(Err(error)) => {
                    tracing::error!(%campaign, %error, "cannot lease records");
                    Input::LeaseFailed {
                        campaign,
                        for_agent,
                    }
                }
                Err(error) => {
                    tracing::error!(%campaign, %error, "lease task failed");
                    Input::LeaseFailed {
                        campaign,
                        for_agent,
                    }
                }
            };
            let _ = inputs.send(input);
        });
    }

    fn load_answer_history(&mut self, campaign: String) {
        let Some(id) = self.campaign_id(&campaign) else {
            tracing::warn!(%campaign, "campaign not in the store: no abandonment history to restore");
            return;
        };
        let store = self.store.clone();
        let inputs = self.inputs.clone();
        let node = self.node.clone();
        let store_for_calls = self.store.clone();
        // Dials this process starts from now on are the pacer's own.
        let until = Timestamp::now();
        self.store_tasks.spawn(async move {
            let since = until
                .checked_sub(SignedDuration::try_from(US_WINDOW).unwrap_or(SignedDuration::ZERO))
                .unwrap_or(Timestamp::UNIX_EPOCH);
            let loaded =
                tokio::task::spawn_blocking(move || store.answer_history(id, &node, since, until))
                    .await;
            let minutes = match loaded {
                Ok(Ok(minutes)) => minutes,
                Ok(Err(error)) => {
                    // Pacing goes on from empty windows: cautious (cold
                    // start), but blind to earlier abandons. Say so.
                    tracing::error!(%campaign, %error, "cannot read the campaign's abandonment history");
                    return;
                }
                Err(error) => {
                    tracing::error!(%campaign, %error, "abandonment history task failed");
                    return;
                }
            };
            // Ages against the wall clock now; the dialer turns them into
            // instants against its own clock when it takes the input.
            let now = Timestamp::now();
            let minutes: Vec<HistoryMinute> = minutes
                .into_iter()
                .map(|m| HistoryMinute {
                    ago: now
                        .duration_since(m.minute)
                        .try_into()
                        .unwrap_or(std::time::Duration::ZERO),
                    live_answers: m.live_answers,
                    abandoned: m.abandoned,
                })
                .collect();
            let answers: u64 = minutes.iter().map(|m| m.live_answers).sum();
            let abandoned: u64 = minutes.iter().map(|m| m.abandoned).sum();
            tracing::info!(%campaign, answers, abandoned, "abandonment history of the last 30 days restored");
            let calls = recent_calls(store_for_calls, id, &campaign, until).await;
            let _ = inputs.send(Input::AnswerHistory {
                campaign,
                minutes,
                calls,
            });
        });
    }

    fn release(&mut self, leases: Vec<Lease>, how: Release) {
        let store = self.store.clone();
        self.store_tasks.spawn(async move {
            let _ = tokio::task::spawn_blocking(move || {
                for lease in &leases {
                    if let Err(error) = store.release(lease, how, Timestamp::now()) {
                        tracing::warn!(record = lease.record_id, %error, "cannot give a lease back");
                    }
                }
            })
            .await;
        });
    }

    /// An agent's correction of a contact, written in the background (the
    /// engine's copy already shows it), in the order made: each carries
    /// the whole custom fields, so a later edit must not be overtaken by
    /// an earlier one. A failure is logged.
    fn update_contact(
        &mut self,
        record: store::RecordId,
        name: Option<String>,
        custom_json: String,
    ) {
        let store = self.store.clone();
        let previous = self.contact_writes.take();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        self.contact_writes = Some(finished);
        self.store_tasks.spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(error) = store.update_contact(record, name.as_deref(), &custom_json) {
                    tracing::warn!(record, %error, "cannot write the agent's change to the contact");
                }
            })
            .await;
            let _ = done.send(());
        });
    }

    /// A previewed record postponed by its agent: its callback is
    /// scheduled while the record is still leased by this node and the
    /// lease is given back, in one transaction — the record is due at the
    /// callback's time, first in the hopper. A callback the store refuses
    /// (a time passed meanwhile) leaves the record back in the list as a
    /// skip would.
    fn postpone(&mut self, lease: Lease, callback: crate::engine::io::Callback) {
        let store = self.store.clone();
        self.store_tasks.spawn(async move {
            let _ = tokio::task::spawn_blocking(move || {
                let now = Timestamp::now();
                let request = store::CallbackRequest {
                    record: lease.record_id,
                    at: callback.at,
                    phone: callback.phone,
                    agent: callback.agent,
                };
                match store.postpone(&lease, &request, now) {
                    Ok(id) => tracing::info!(
                        record = lease.record_id,
                        callback = id,
                        at = %request.at,
                        "previewed record postponed"
                    ),
                    Err(error) => {
                        tracing::warn!(
                            record = lease.record_id,
                            %error,
                            "cannot postpone the previewed record; giving it back to the list"
                        );
                        if let Err(error) = store.release(&lease, Release::Unused, now) {
                            tracing::warn!(record = lease.record_id, %error, "cannot give a lease back");
                        }
                    }
                }
            })
            .await;
        });
    }

    /// Writes the attempt row; the INVITE leaves when it is written
    /// ([`Shell::place`]), never before: a crash in between leaves a row
    /// that recovery closes as interrupted, never an unrecorded dial.
    fn begin_dial(
        &mut self,
        call: CallId,
        campaign: String,
        lease: Lease,
        caller_id: Option<String>,
    ) -> Vec<Input> {
        let (media, _unused) = mpsc::unbounded_channel();
        self.customers.insert(
            call,
            CustomerCall {
                handle: None,
                media,
                answered: false,
                ring_timed_out: false,
                campaign: campaign.clone(),
                lease: lease.clone(),
                caller_id,
            },
        );
        let store = self.store.clone();
        let rows = self.rows.clone();
        self.store_tasks.spawn(async move {
            let row = tokio::task::spawn_blocking(move || {
                store
                    .begin_attempt(&lease, Timestamp::now())
                    .map_err(|error| {
                        if let store::StoreError::NotDialable { reason, .. } = &error {
                            metrics::counter!(
                                crate::metrics::DIALS_STOPPED,
                                "campaign" => campaign.clone(),
                                "reason" => reason.label(),
                            )
                            .increment(1);
                        }
                        error.to_string()
                    })
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            let _ = rows.send((call, row));
        });
        Vec::new()
    }

    /// The attempt row is written (or not): place the call.
    pub async fn place(
        &mut self,
        call: CallId,
        row: Result<store::AttemptId, String>,
    ) -> Vec<Input> {
        let row = match row {
            Ok(row) => row,
            Err(reason) => {
                self.customers.remove(&call);
                return vec![Input::NotPlaced { call, reason }];
            }
        };
        self.attempt_rows.insert(call, row);
        let Some(customer) = self.customers.get(&call) else {
            // Cancelled (shutdown) before the row was written.
            return Vec::new();
        };
        if customer.ring_timed_out {
            // Cancelled (the agent it was placed for, or the ring timeout)
            // while its row was being written: nothing goes to the trunk,
            // and the attempt ends as the CANCEL's 487 would have ended it.
            self.customers.remove(&call);
            return vec![Input::Failed {
                call,
                failure: Failure::NoAnswer,
                sip_code: Some(487),
                retry_after: None,
            }];
        }
        let campaign = customer.campaign.clone();
        let phone = customer.lease.phone.clone();
        let picked_caller_id = customer.caller_id.clone();
        let failed = |reason: String| {
            tracing::warn!(call, %reason, "call could not be placed");
            vec![Input::Failed {
                call,
                failure: Failure::NetworkFailure,
                sip_code: None,
                retry_after: None,
            }]
        };
        let route = match self.trunk_route(&phone) {
            Ok(route) => route,
            Err(error) => return failed(format!("{error:#}")),
        };
        let leg = match self.open_leg() {
            Ok(leg) => leg,
            Err(error) => return failed(error.to_string()),
        };
        let offer = self.offer_for(&leg);
        let sdp = offer.to_string().into_bytes();
        let shell_campaign = self.campaigns.get(&campaign);
        let campaign_config = shell_campaign.map(|c| &c.config);
        let cpa = campaign_config.map(|c| c.cpa.clone()).unwrap_or_default();
        // The agent's pick, else the campaign's number nearest the callee
        // (local presence), else the campaign's, else the trunk's.
        let caller_id = picked_caller_id
            .or_else(|| {
                let presence = shell_campaign?.local_presence.as_ref()?;
                presence.caller_id_for(&phone).map(str::to_string)
            })
            .or_else(|| campaign_config.and_then(|c| c.caller_id.clone()))
            .unwrap_or_else(|| self.config.trunk.caller_id.clone());
        if let Some(customer) = self.customers.get_mut(&call) {
            customer.caller_id = Some(caller_id.clone());
        }
        let (media_tx, media_rx) = mpsc::unbounded_channel();
        let task = CustomerMedia {
            call,
            leg,
            offer,
            cpa,
            inputs: self.inputs.clone(),
        };
        tokio::spawn(task.run(media_rx));
        let request = self.invite(route, caller_id, sdp);
        let handle = self
            .sip
            .call(move |endpoint, now| endpoint.invite(request, now))
            .await;
        match handle {
            Some(Ok(handle)) => {
                self.parties.insert(handle, Party::Customer(call));
                if let Some(customer) = self.customers.get_mut(&call) {
                    customer.handle = Some(handle);
                    customer.media = media_tx;
                }
                Vec::new()
            }
            Some(Err(error)) => {
                let _ = media_tx.send(CustomerCommand::Close);
                failed(error.to_string())
            }
            None => {
                let _ = media_tx.send(CustomerCommand::Close);
                failed("the SIP driver stopped".into())
            }
        }
    }

    /// The route to the trunk for a number, from the route in hand: the
    /// trunk's (or outbound proxy's) address is looked up in the
    /// background (`RouteCache`), never while the engine task waits.
    fn trunk_route(&self, phone: &str) -> anyhow::Result<Route> {
        let cached = self.trunk_routes.current().ok_or_else(|| {
            anyhow::anyhow!(
                "the trunk's address is not known yet: its lookup has not succeeded (tried every {} s)",
                crate::net::route::ROUTE_RETRY.as_secs()
            )
        })?;
        let host = cached
            .uri
            .split_once('@')
            .map(|(_, host)| host)
            .ok_or_else(|| anyhow::anyhow!("trunk route {} has no host", cached.uri))?;
        let number: String = phone
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        Ok(Route {
            uri: format!("sip:{number}@{host}"),
            next_hop: cached.next_hop.clone(),
            transport: cached.transport,
            route: cached.route.clone(),
        })
    }

    fn invite(&self, route: Route, caller_id: String, sdp: Vec<u8>) -> InviteRequest {
        // Ordered afresh per call: calls spread over the SRV targets of one
        // priority as their weights ask, though the route is cached.
        let (destination, alternates) = route.next_hop.ordered(fastrand::u32);
        InviteRequest {
            uri: route.uri,
            destination,
            alternates,
            transport: route.transport,
            route: route.route,
            caller_id,
            caller_name: self.config.trunk.caller_name.clone(),
            credentials: self
                .config
                .trunk
                .username
                .clone()
                .map(|username| Credentials {
                    username,
                    password: self.config.trunk.password.clone().unwrap_or_default(),
                }),
            sdp,
            // The attempt's own clock cancels (ring timeout); a generous
            // endpoint limit only guards against a lost engine.
            ring_timeout: Some(Duration::from_secs(300)),
            hold: None,
            session_expires: self.config.trunk.session_timer_asked(),
            follow_redirects: self.config.trunk.follow_redirects,
            symmetric: false,
        }
    }

    /// A fresh RTP leg from the port pool, with a random SSRC.
    fn open_leg(&self) -> Result<RtpLeg, rtp::RtpLegError> {
        RtpLeg::open(
            &self.pool,
            rtp::leg_settings(&self.config.media, fastrand::u32(..)),
        )
    }

    fn offer_for(&self, leg: &RtpLeg) -> SessionDescription {
        let announced = SocketAddr::new(
            self.config.rtp.public_ip.unwrap_or(self.config.rtp.bind),
            leg.local_addr().port(),
        );
        let codec = Codec {
            ptime_ms: self.config.media.ptime_ms,
            ..Codec::default()
        };
        MediaSession::new(announced, fastrand::u64(1..u64::MAX / 2), codec)
            .offer(Direction::SendRecv)
    }

    fn prompt_for(&self, call: CallId, prompt: Prompt) -> Option<PromptAudio> {
        let campaign = &self.customers.get(&call)?.campaign;
        let prompts = self.campaigns.get(campaign)?;
        match prompt {
            Prompt::Abandon => prompts.abandon.clone(),
            Prompt::Voicemail => prompts.voicemail.clone(),
            Prompt::Hold => Some(prompts.hold.clone()),
        }
    }

    /// The agent's leg; a simulated agent without a phone gets one that
    /// sends to the engine's sink socket, so the relay path is real.
    fn agent_media(&mut self, agent: &str) -> Option<mpsc::UnboundedSender<AgentCommand>> {
        if let Some(phone) = self.agents.get(agent) {
            return phone.up.then(|| phone.media.clone());
        }
        let has_phone = self
            .config
            .agents
            .iter()
            .any(|a| a.id == agent && a.has_phone());
        if has_phone {
            return None;
        }
        let sink = self.sink?;
        let leg = self.open_leg().ok()?;
        Some(self.start_local_agent_leg(agent, leg, sink, Some(101), None))
    }

    /// An agent's leg to a peer of our own — the simulated agents' sink, a
    /// browser phone's task (`browser`: its session) — PCMU to `remote`,
    /// up at once: nothing rings, nothing negotiates.
    fn start_local_agent_leg(
        &mut self,
        agent: &str,
        leg: RtpLeg,
        remote: SocketAddr,
        telephone_event: Option<u8>,
        browser: Option<u64>,
    ) -> mpsc::UnboundedSender<AgentCommand> {
        let _ = leg.set_negotiated(Negotiated {
            remote: Some(remote),
            law: crate::media::g711::Law::Ulaw,
            payload_type: 0,
            telephone_event,
            ptime_ms: self.config.media.ptime_ms,
            direction: Direction::SendRecv,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(agent_phone(
            agent.to_string(),
            leg,
            None,
            self.config.media.zip_tone.clone(),
            rx,
        ));
        self.agents.insert(
            agent.to_string(),
            AgentPhone {
                handle: None,
                media: tx.clone(),
                up: true,
                held: false,
                browser,
            },
        );
        tx
    }

    /// Binds the sink for simulated agents' audio and drains it.
    pub async fn open_sink(&mut self) -> anyhow::Result<()> {
        let socket = tokio::net::UdpSocket::bind(SocketAddr::new(self.config.rtp.bind, 0)).await?;
        self.sink = Some(socket.local_addr()?);
        tokio::spawn(async move {
            let mut buffer = [0u8; 2048];
            while socket.recv_from(&mut buffer).await.is_ok() {}
        });
        Ok(())
    }

    async fn call_agent(&mut self, agent: String) -> Vec<Input> {
        if self
            .agents
            .get(&agent)
            .is_some_and(|a| a.handle.is_some() || a.browser.is_some())
        {
            // Already ringing or up.
            return Vec::new();
        }
        // A connected browser phone comes before a softphone's
        // registration: the agent chose it in the desktop.
        if let Some(inputs) = self.call_browser_phone(&agent) {
            return inputs;
        }
        // A registered phone is reached where it registered from: the
        // Request-URI is its Contact, but the request goes to the address
        // the REGISTER came from (a NAT's pinhole when the Contact names a
        // private address; over TCP, the phone's own connection), as
        // registrars with "force rport" / RFC 5626 connection reuse do.
        let registered = self.registered.get(&agent).cloned();
        let symmetric = registered.is_some();
        let route = if let Some((contact, received)) = registered {
            Route {
                uri: contact,
                next_hop: Destinations::single(received.addr),
                transport: received.transport,
                route: None,
            }
        } else {
            let Some(uri) = self
                .config
                .agents
                .iter()
                .find(|a| a.id == agent)
                .and_then(|a| a.sip_uri.clone())
            else {
                tracing::warn!(%agent, "the agent's phone is not registered and has no sip_uri");
                return vec![Input::AgentLeg { agent, up: false }];
            };
            match route_for(&self.locator, &self.config, &uri).await {
                Ok(route) => route,
                Err(error) => {
                    tracing::warn!(%agent, error = %format!("{error:#}"), "cannot reach the agent's phone");
                    return vec![Input::AgentLeg { agent, up: false }];
                }
            }
        };
        let leg = match self.open_leg() {
            Ok(leg) => leg,
            Err(error) => {
                tracing::warn!(%agent, %error, "no RTP port for the agent's phone");
                return vec![Input::AgentLeg { agent, up: false }];
            }
        };
        let offer = self.offer_for(&leg);
        let sdp = offer.to_string().into_bytes();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(agent_phone(
            agent.clone(),
            leg,
            Some(offer),
            self.config.media.zip_tone.clone(),
            rx,
        ));
        let mut request = self.invite(route, self.config.trunk.caller_id.clone(), sdp);
        request.credentials = None;
        // An agent's phone is ours to watch (registration, dead media).
        request.session_expires = None;
        // An agent's phone that redirects (call forwarding) must not take
        // the agent's calls elsewhere.
        request.follow_redirects = false;
        request.symmetric = symmetric;
        request.ring_timeout = Some(Duration::from_secs(60));
        let handle = self
            .sip
            .call(move |endpoint, now| endpoint.invite(request, now))
            .await;
        match handle {
            Some(Ok(handle)) => {
                self.parties.insert(handle, Party::Agent(agent.clone()));
                self.agents.insert(
                    agent,
                    AgentPhone {
                        handle: Some(handle),
                        media: tx,
                        up: false,
                        held: false,
                        browser: None,
                    },
                );
                Vec::new()
            }
            _ => {
                let _ = tx.send(AgentCommand::Close);
                vec![Input::AgentLeg { agent, up: false }]
            }
        }
    }

    /// Writes what a call in flight has become (a live answer, or bridged
    /// to `agent`) to its attempt row, so that a dialer killed now leaves
    /// the truth about it behind (see `Store::attempt_live`). The two
    /// writes may land in either order: each is conditional on the other.
    fn mark_attempt(&mut self, call: CallId, agent: Option<String>) {
        let Some(&row) = self.attempt_rows.get(&call) else {
            return;
        };
        let store = self.store.clone();
        let now = Timestamp::now();
        self.store_tasks.spawn(async move {
            let written = tokio::task::spawn_blocking(move || match &agent {
                None => store.attempt_live(row, now),
                Some(agent) => store.attempt_bridged(row, agent),
            })
            .await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(row, %error, "cannot mark the attempt in flight"),
                Err(error) => tracing::error!(row, %error, "attempt mark task failed"),
            }
        });
    }

    fn record(&mut self, record: AttemptRecord) {
        let outcome = &record.outcome;
        metrics::counter!(
            crate::metrics::ATTEMPTS,
            "campaign" => record.campaign.clone(),
            "result" => crate::engine::calls::result_name(outcome.result)
        )
        .increment(1);
        if let Some(latency) = outcome.connect_latency {
            metrics::histogram!(crate::metrics::CONNECT_LATENCY).record(latency.as_secs_f64());
        }
        if let (Some(verdict), Some(wait), Some(connect)) = (
            outcome.verdict_after_answer,
            outcome.agent_wait,
            outcome.connect_latency,
        ) {
            metrics::histogram!(crate::metrics::ANSWER_TO_AGENT)
                .record((verdict + wait + connect).as_secs_f64());
        }
        if let Some(pdd) = outcome.pdd {
            metrics::histogram!(crate::metrics::POST_DIAL_DELAY).record(pdd.as_secs_f64());
        }
        let recording = self
            .recordings
            .remove(&record.call)
            .and_then(CallRecordings::listed);
        let Some(row) = self.attempt_rows.remove(&record.call) else {
            tracing::warn!(
                call = record.call,
                "finished attempt without an attempt row"
            );
            return;
        };
        let ended = self
            .ended_at
            .remove(&record.call)
            .unwrap_or_else(Timestamp::now);
        let mut result = store_result(&record, ended);
        result.recording = recording;
        let callback = record.callback.as_ref().map(|c| store::CallbackRequest {
            record: record.lease.record_id,
            at: c.at,
            phone: c.phone.clone(),
            agent: c.agent.clone(),
        });
        let what = format!(
            "record {} ({}) {}{}{}",
            record.lease.record_id,
            record.lease.external_id,
            result.outcome.as_str(),
            result
                .disposition
                .as_deref()
                .map(|code| format!(", disposition {code}"))
                .unwrap_or_default(),
            callback
                .as_ref()
                .map(|c| format!(", callback at {}", c.at))
                .unwrap_or_default(),
        );
        let store = self.store.clone();
        let spool = self.spool.clone();
        let spooled = SpooledRow {
            attempt: row,
            result,
            callback,
            what: what.clone(),
        };
        let mut callback_owed = spooled.callback.is_some();
        let write = move |retry: bool| {
            if !retry {
                // On this node's disk first: whatever becomes of the store
                // (down past the retries, a shutdown, a crash), the next
                // start writes the row (`store::spool`).
                let kept = lock(&spool).keep(&spooled);
                if let Err(error) = kept {
                    tracing::error!(row, what = spooled.what, %error, "cannot keep the row in the spool");
                }
            }
            // Scheduled while the record is still leased: completing the
            // attempt then turns the record into a callback.
            if let Some(request) = spooled.callback.as_ref().filter(|_| callback_owed) {
                // A retry may come after the time the agent chose: the
                // customer is still owed the call, now.
                let (request, _) = callback_not_before(request, Timestamp::now());
                match store.schedule_callback(&request, Timestamp::now()) {
                    Err(error) if error.is_transient() => return Err(error),
                    Err(error) => {
                        tracing::warn!(record = request.record, %error, "cannot schedule the callback");
                    }
                    Ok(_) => {}
                }
                callback_owed = false;
            }
            let written = match store.complete_attempt(row, &spooled.result, Timestamp::now()) {
                // An earlier try's commit landed after all.
                Err(store::StoreError::AttemptAlreadyComplete(_)) if retry => Ok(()),
                written => written.map(|_| ()),
            };
            let marked = match &written {
                Ok(()) => lock(&spool).written(row),
                // Refused for good (the attempt is unknown to this
                // database): kept in the spool's `.rejected` file.
                Err(error) if !error.is_transient() => {
                    lock(&spool).refused(&spooled, &error.to_string())
                }
                Err(_) => Ok(()),
            };
            if let Err(error) = marked {
                tracing::warn!(row, %error, "cannot update the row spool");
            }
            written
        };
        self.store_tasks.spawn(async move {
            super::store_retry::write_with_retries(row, &what, write).await;
        });
    }

    /// A SIP event, as inputs for the dialer.
    pub fn on_sip_event(&mut self, event: SipEvent) -> Vec<Input> {
        let call_handle = match &event {
            SipEvent::Progress { call, .. }
            | SipEvent::Answered { call, .. }
            | SipEvent::MediaChanged { call, .. }
            | SipEvent::Ended { call, .. } => *call,
            SipEvent::Registration(change) => {
                match change {
                    BindingChange::Registered {
                        agent,
                        contact,
                        expires,
                        received,
                    } => {
                        tracing::info!(
                            %agent,
                            %contact,
                            expires,
                            received = %received.addr,
                            transport = ?received.transport,
                            "agent phone registered"
                        );
                        let binding = (contact.clone(), *received);
                        let previous = self.registered.insert(agent.clone(), binding.clone());
                        if previous.as_ref() != Some(&binding) {
                            return vec![Input::AgentPhoneRegistered {
                                agent: agent.clone(),
                            }];
                        }
                    }
                    BindingChange::Unregistered { agent } => {
                        tracing::info!(%agent, "agent phone unregistered");
                        self.registered.remove(agent);
                    }
                    BindingChange::Queried => {}
                }
                return Vec::new();
            }
            SipEvent::PingResult { code, .. } => {
                return vec![Input::TrunkPing {
                    answered: code.is_some(),
                }];
            }
            // Logged where the SIP events are read (`net::sip_sockets`).
            SipEvent::TrunkRegistration { .. } => return Vec::new(),
        };
        let Some(party) = self.parties.get(&call_handle).cloned() else {
            return Vec::new();
        };
        match party {
            Party::Customer(call) => self.on_customer_event(call, call_handle, event),
            Party::Agent(agent) => self.on_agent_event(agent, call_handle, event),
            Party::Outside(call) => self.on_outside_event(call, call_handle, event),
        }
    }

    fn on_customer_event(
        &mut self,
        call: CallId,
        handle: CallHandle,
        event: SipEvent,
    ) -> Vec<Input> {
        let Some(customer) = self.customers.get_mut(&call) else {
            self.parties.remove(&handle);
            return Vec::new();
        };
        match event {
            SipEvent::Progress { code, sdp, .. } => {
                if let Some(sdp) = sdp {
                    let _ = customer.media.send(CustomerCommand::Answer(sdp));
                }
                if code > 100 {
                    return vec![Input::Ringing { call }];
                }
                Vec::new()
            }
            SipEvent::Answered { sdp, .. } => {
                customer.answered = true;
                if customer.ring_timed_out {
                    tracing::info!(call, "answered as the ring timeout gave up: kept");
                    metrics::counter!(
                        crate::metrics::RING_TIMEOUT_ANSWERS,
                        "campaign" => customer.campaign.clone()
                    )
                    .increment(1);
                }
                let _ = customer.media.send(CustomerCommand::Answer(sdp));
                let _ = customer.media.send(CustomerCommand::Answered);
                vec![Input::Answered { call }]
            }
            SipEvent::MediaChanged { media, .. } => {
                tracing::info!(call, direction = media.direction.attribute(), remote = ?media.remote, "customer re-offer");
                let _ = customer.media.send(CustomerCommand::Renegotiated(media));
                Vec::new()
            }
            SipEvent::Ended { end, .. } => {
                self.parties.remove(&handle);
                if customer.answered {
                    return vec![Input::RemoteHangUp { call }];
                }
                if let Some(code @ (607 | 608)) = end.sip_code {
                    let caller_id = customer.caller_id.clone().unwrap_or_default();
                    // A number the call analytics of carriers flag as spam
                    // gets its calls blocked: the supervisor must know which.
                    tracing::warn!(
                        call,
                        campaign = %customer.campaign,
                        %caller_id,
                        code,
                        "the call was refused as unwanted: the caller ID may be flagged as spam"
                    );
                    metrics::counter!(
                        crate::metrics::CALLS_REFUSED_AS_UNWANTED,
                        "campaign" => customer.campaign.clone(),
                        "caller_id" => caller_id,
                        "sip_code" => code.to_string()
                    )
                    .increment(1);
                }
                let failure = match end.outcome {
                    SipOutcome::Busy => Failure::Busy,
                    SipOutcome::NoAnswer | SipOutcome::Cancelled => Failure::NoAnswer,
                    SipOutcome::InvalidNumber => Failure::InvalidNumber,
                    SipOutcome::Rejected => Failure::Rejected,
                    SipOutcome::Congestion => Failure::Congestion,
                    SipOutcome::NetworkFailure | SipOutcome::Failed | SipOutcome::Answered => {
                        Failure::NetworkFailure
                    }
                };
                vec![Input::Failed {
                    call,
                    failure,
                    sip_code: end.sip_code,
                    retry_after: end.retry_after,
                }]
            }
            SipEvent::PingResult { .. }
            | SipEvent::Registration(_)
            | SipEvent::TrunkRegistration { .. } => Vec::new(),
        }
    }

    fn on_agent_event(&mut self, agent: String, handle: CallHandle, event: SipEvent) -> Vec<Input> {
        let Some(phone) = self.agents.get_mut(&agent) else {
            return Vec::new();
        };
        match event {
            SipEvent::Progress { .. } => Vec::new(),
            SipEvent::Answered { sdp, .. } => {
                let _ = phone.media.send(AgentCommand::Negotiated(sdp));
                phone.up = true;
                tracing::info!(%agent, "reservation call up");
                vec![Input::AgentLeg { agent, up: true }]
            }
            SipEvent::MediaChanged { media, .. } => {
                tracing::info!(%agent, direction = media.direction.attribute(), remote = ?media.remote, "agent re-offer");
                // The phone's Hold button: it no longer wants what we send.
                let held = !media.direction.we_send();
                let _ = phone.media.send(AgentCommand::Renegotiated(media));
                if held == phone.held {
                    return Vec::new();
                }
                phone.held = held;
                vec![Input::AgentPhoneHold { agent, held }]
            }
            SipEvent::Ended { end, .. } => {
                self.parties.remove(&handle);
                if let Some(phone) = self.agents.remove(&agent) {
                    let _ = phone.media.send(AgentCommand::Close);
                }
                tracing::info!(%agent, reason = %end.reason, "reservation call ended");
                let mut inputs = vec![Input::AgentLeg {
                    agent: agent.clone(),
                    up: false,
                }];
                // A browser phone connected while the softphone had the
                // call (or connected all along): the engine calls the
                // agent on it now.
                if self.has_browser_phone(&agent) {
                    inputs.push(Input::AgentPhoneRegistered { agent });
                }
                inputs
            }
            SipEvent::PingResult { .. }
            | SipEvent::Registration(_)
            | SipEvent::TrunkRegistration { .. } => Vec::new(),
        }
    }

    /// CANCEL or BYE, whichever the call's state needs (a call never
    /// placed has no handle: nothing to do).
    async fn hang_up(&self, handle: Option<CallHandle>) {
        if let Some(handle) = handle {
            let _ = self
                .sip
                .call(move |endpoint, now| endpoint.hangup(handle, now))
                .await;
        }
    }

    /// Removes our registrations with the trunk (shutdown) and waits, at
    /// most 2 s, for the registrar's answer: it stops sending calls to an
    /// address nobody will answer.
    pub async fn unregister_from_trunk(&self) {
        let held = self
            .sip
            .call(|endpoint, now| {
                endpoint.unregister_all(now);
                endpoint.registrations()
            })
            .await;
        if held.unwrap_or(0) == 0 {
            return;
        }
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let held = self.sip.call(|endpoint, _| endpoint.registrations()).await;
            if held.unwrap_or(0) == 0 {
                return;
            }
        }
    }

    /// Hangs up every agent's reservation call (shutdown).
    pub async fn hang_up_agents(&mut self) {
        let handles: Vec<CallHandle> = self.agents.values().filter_map(|a| a.handle).collect();
        for handle in handles {
            self.hang_up(Some(handle)).await;
        }
        for (_, phone) in self.agents.drain() {
            let _ = phone.media.send(AgentCommand::Close);
        }
    }

    /// An agent's state changed (the engine's `agent_state` event).
    pub fn agent_changed(&self, agent: &str, state: &str, reason: Option<&str>) {
        self.agent_log.changed(agent, state, reason);
    }

    /// The node stops: its agents' states end now, written out.
    pub async fn close_agent_log(&mut self, within: Duration) {
        self.agent_log.close(within).await;
    }

    /// Waits (bounded) for the store writes in flight.
    pub async fn flush_store(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.store_tasks.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, self.store_tasks.join_next())
                .await
                .is_err()
            {
                let spool = lock(&self.spool);
                tracing::warn!(
                    pending = self.store_tasks.len(),
                    spooled = spool.pending(),
                    spool = %spool.path().display(),
                    "store writes still pending at exit; the spooled rows are written at the next start"
                );
                return;
            }
        }
    }

    /// Reaps finished store tasks (keeps the set small) and, every few
    /// minutes, extends the leases of the calls still up so that a long
    /// call's record is never taken for a crashed node's.
    pub fn reap(&mut self) {
        while self.store_tasks.try_join_next().is_some() {}
        if self
            .next_lease_extension
            .is_some_and(|at| at > Instant::now())
        {
            return;
        }
        self.next_lease_extension = Some(Instant::now() + LEASE_EXTENSION_EVERY);
        let leases: Vec<Lease> = self.customers.values().map(|c| c.lease.clone()).collect();
        if leases.is_empty() {
            return;
        }
        let store = self.store.clone();
        self.store_tasks.spawn(async move {
            let _ = tokio::task::spawn_blocking(move || {
                let until = Timestamp::now()
                    .checked_add(
                        SignedDuration::try_from(LEASE_FOR).unwrap_or(SignedDuration::ZERO),
                    )
                    .unwrap_or_else(|_| Timestamp::now());
                for lease in &leases {
                    if let Err(error) = store.extend_lease(lease, until) {
                        tracing::warn!(record = lease.record_id, %error, "cannot extend a lease");
                    }
                }
            })
            .await;
        });
    }
}

/// The store row of a finished attempt that ended at `ended`.
pub fn store_result(record: &AttemptRecord, ended: Timestamp) -> store::AttemptResult {
    use crate::campaign::model::Outcome as Stored;
    let outcome = &record.outcome;
    let (stored, note) = match outcome.result {
        AttemptResult::Connected => (Stored::Human, None),
        AttemptResult::Abandoned => (Stored::Abandoned, None),
        AttemptResult::Machine => (Stored::Machine, None),
        AttemptResult::VoicemailLeft => (Stored::Machine, Some("voicemail left")),
        AttemptResult::Fax => (Stored::Fax, None),
        AttemptResult::Sit { permanent: true } => (Stored::Sit, None),
        // RO/NC/IO: a network condition, not a dead number.
        AttemptResult::Sit { permanent: false } => (Stored::Congestion, Some("SIT (temporary)")),
        AttemptResult::Busy => (Stored::Busy, None),
        AttemptResult::NoAnswer => (Stored::NoAnswer, None),
        AttemptResult::InvalidNumber => (Stored::InvalidNumber, None),
        AttemptResult::Rejected => (Stored::Declined, None),
        AttemptResult::TrunkRefused => (Stored::TrunkRefused, None),
        AttemptResult::Congestion => (Stored::Congestion, None),
        AttemptResult::NetworkFailure => (Stored::NetworkFailure, None),
        AttemptResult::DeadAir => (Stored::NoAnswer, Some("dead air")),
        AttemptResult::HungUpBeforeConnect => (
            Stored::NoAnswer,
            Some("hung up before an agent was connected"),
        ),
        AttemptResult::MediaTimeout => (Stored::NetworkFailure, Some("no RTP (media timeout)")),
    };
    let mut result = store::AttemptResult::new(stored);
    result.sip_code = outcome.sip_code;
    result.cpa_verdict = record.cpa_verdict.map(str::to_string);
    result.cpa_ms = record.cpa_ms;
    result.agent = outcome.agent.clone();
    result.disposition = record.disposition.clone();
    result.do_not_call = record.do_not_call;
    result.notes = match (&record.notes, note) {
        (Some(notes), _) if !notes.is_empty() => Some(notes.clone()),
        (_, Some(note)) => Some(note.to_string()),
        _ => None,
    };
    result.abandoned = outcome.result == AttemptResult::Abandoned;
    result.ended_at = Some(ended);
    result.talk_ms = record.talk_ms;
    result.hold_ms = record.hold_ms;
    result.recording_paused_ms = record.recording_paused_ms;
    result.transferred_to = outcome.transferred_to.clone();
    result.transferred_from = (!outcome.transferred_from.is_empty())
        .then(|| serde_json::to_string(&outcome.transferred_from).ok())
        .flatten();
    result.guide_answers = record.guide_answers.clone();
    result.answered_at = record.talk_ms.and_then(|ms| {
        ended
            .checked_sub(SignedDuration::from_millis(i64::from(ms)))
            .ok()
    });
    result.callee_retry_after = outcome
        .callee_retry_after
        .and_then(|wait| SignedDuration::try_from(wait).ok());
    result.ring_ms = outcome
        .answered_after
        .map(|d| d.as_millis().min(u32::MAX as u128) as u32);
    result
}

/// The spool's lock; a panic while it was held leaves the file as it was
/// (every change is one append), so its state is still good to use.
/// How far back a campaign's calls teach a starting pacer's models: a
/// restart within the shift learns from the same hours of the same list;
/// yesterday's calls may answer at another rate.
const RECENT_CALLS_SPAN: SignedDuration = SignedDuration::from_hours(4);
/// At most this many (the outcome model's memory).
const RECENT_CALLS_MAX: u32 = 2000;

/// The campaign's calls of the last [`RECENT_CALLS_SPAN`] started before
/// `until`, for the pacer; none (a cold start) when the store cannot say.
async fn recent_calls(
    store: Arc<dyn Store>,
    id: CampaignId,
    campaign: &str,
    until: Timestamp,
) -> Vec<crate::pacing::RestoredCall> {
    let since = until
        .checked_sub(RECENT_CALLS_SPAN)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let loaded =
        tokio::task::spawn_blocking(move || store.recent_calls(id, since, until, RECENT_CALLS_MAX))
            .await;
    let calls = match loaded {
        Ok(Ok(calls)) => calls,
        Ok(Err(error)) => {
            tracing::warn!(%campaign, %error, "cannot read the campaign's recent calls: pacing starts cold");
            return Vec::new();
        }
        Err(error) => {
            tracing::warn!(%campaign, %error, "recent calls task failed: pacing starts cold");
            return Vec::new();
        }
    };
    let live = calls.iter().filter(|c| c.live).count();
    tracing::info!(
        %campaign,
        calls = calls.len(),
        live,
        hours = RECENT_CALLS_SPAN.as_hours(),
        "the pacer learned from the campaign's recent calls"
    );
    calls
        .into_iter()
        .map(|call| crate::pacing::RestoredCall {
            ring_s: call.ring_ms as f64 / 1000.0,
            live: call.live,
            talk_s: call.talk_ms.map(|t| t as f64 / 1000.0),
        })
        .collect()
}

fn lock(spool: &std::sync::Mutex<RowSpool>) -> std::sync::MutexGuard<'_, RowSpool> {
    spool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A call's bridge recordings: one file per splice of the customer into an
/// agent's leg, in order — a transfer, a transfer that failed back, the
/// late-splice repair each start the next part (`…-2.wav`, `…-3.wav`), so
/// no conversation is overwritten. The CDR's `recording` lists the files
/// whose splice was done, separated by `;`.
#[derive(Debug, Default)]
struct CallRecordings {
    /// Splices asked for so far (the next one records part `connects + 1`).
    connects: usize,
    /// Files of splices that were done.
    names: Vec<String>,
    /// Splices under way: the agent and the file.
    pending: Vec<(String, String)>,
}

impl CallRecordings {
    /// The part (1, 2, …) the next splice records into.
    fn next_part(recordings: Option<&CallRecordings>) -> usize {
        recordings.map_or(1, |r| r.connects + 1)
    }

    /// A splice into `agent`'s leg, recording into `name`, was asked for.
    fn connecting(&mut self, name: String, agent: String) {
        self.connects += 1;
        self.pending.push((agent, name));
    }

    /// The CDR's `recording`: the files of the splices that were done,
    /// then those still under way as the call ended (their report may
    /// trail the end, and the file is written as the bridge closes, after
    /// the row); `None` when there is none.
    fn listed(mut self) -> Option<String> {
        self.names
            .extend(self.pending.into_iter().map(|(_, name)| name));
        (!self.names.is_empty()).then(|| self.names.join(";"))
    }

    /// The splice into `agent`'s leg was done (`done`) or failed: the
    /// oldest under way into that leg, as the customer's media task
    /// carries its splices out in order. A done one's file is the call's.
    fn reported(&mut self, agent: &str, done: bool) {
        if let Some(at) = self.pending.iter().position(|(a, _)| a == agent) {
            let (_, name) = self.pending.remove(at);
            if done {
                self.names.push(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CallRecordings;

    #[test]
    fn each_splice_records_its_own_part_and_only_done_splices_are_listed() {
        let mut recordings = CallRecordings::default();
        assert_eq!(CallRecordings::next_part(None), 1);
        recordings.connecting("c-1-7.wav".into(), "ann".into());
        recordings.reported("ann", true);
        // Transferred to bob, whose phone fails; back to ann twice (the
        // deadline's splice back, then the repair after bob's late report).
        assert_eq!(CallRecordings::next_part(Some(&recordings)), 2);
        recordings.connecting("c-1-7-2.wav".into(), "bob".into());
        recordings.connecting("c-1-7-3.wav".into(), "ann".into());
        recordings.connecting("c-1-7-4.wav".into(), "ann".into());
        assert_eq!(CallRecordings::next_part(Some(&recordings)), 5);
        recordings.reported("bob", false);
        recordings.reported("ann", true);
        recordings.reported("ann", false);
        recordings.reported("carl", true);
        assert_eq!(recordings.names, ["c-1-7.wav", "c-1-7-3.wav"]);
        assert!(recordings.pending.is_empty());
    }

    #[test]
    fn a_splice_still_reported_at_the_end_is_listed_and_no_name_is_empty() {
        assert_eq!(
            CallRecordings::default().listed(),
            None,
            "never an empty name"
        );
        // The customer hung up as the splice was done: its report (and
        // the file, written as the bridge closes) trails the row.
        let mut recordings = CallRecordings::default();
        recordings.connecting("c-1-9.wav".into(), "ann".into());
        recordings.reported("ann", true);
        recordings.connecting("c-1-9-2.wav".into(), "bob".into());
        assert_eq!(
            recordings.listed(),
            Some("c-1-9.wav;c-1-9-2.wav".to_string())
        );
    }
}
