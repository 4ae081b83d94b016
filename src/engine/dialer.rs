//! The dialer's state for one process, sans-IO: every agent session and
//! every campaign's run state, driven by commands (from the API) and timers.
//!
//! One [`Dialer`] value is owned by one shell task (`server::engine_task`),
//! which feeds it commands and deadlines and forwards its events to the API's
//! event streams. Call attempts plug in here as the SIP and media layers
//! land; the agent and campaign rules are complete on their own.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

use super::calls::{CallEntry, LiveCampaign};
use super::campaign_run::{self, RunCommand, RunState};
use super::io::{AttemptRecord, CallId, Effect};
use super::mid_call::REASON_PHONE_ON_HOLD;
use super::preview::{PreviewAction, PreviewView};
use super::trunk_health::{TrunkHealth, TrunkHold};
use crate::agent::{AgentError, AgentEvent, AgentPolicy, AgentSession, AgentState};
use crate::config::{CampaignConfig, Config, DialMode, SimulatedAgent, TrunkConfig};
use crate::pacing::AgentId;
use crate::pacing::dial_rate::DialRate;
use crate::pacing::trunk_share::{TrunkDemand, TrunkShare};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    AgentLogin {
        agent: String,
    },
    AgentReady {
        agent: String,
    },
    AgentNotReady {
        agent: String,
        reason: String,
    },
    AgentLogout {
        agent: String,
    },
    /// The agent ends the customer call they are on.
    AgentHangup {
        agent: String,
    },
    /// The agent puts the customer on hold (`on`) or takes them off it.
    Hold {
        agent: String,
        on: bool,
    },
    /// The agent pauses the call's recording (a card number is read out)
    /// or lets it go on.
    PauseRecording {
        agent: String,
        paused: bool,
    },
    /// The agent drops the campaign's recorded voicemail message into the
    /// answering machine on the line and moves on.
    DropVoicemail {
        agent: String,
    },
    /// The agent hands the customer to another agent (a blind transfer):
    /// `to`, or the Ready agent of the call's campaign idle the longest.
    Transfer {
        agent: String,
        to: Option<String>,
    },
    /// The agent hands the customer to one of the campaign's outside
    /// numbers, by its name (`outside_transfer.rs`).
    TransferOutside {
        agent: String,
        destination: String,
    },
    /// The agent calls off its transfer to an outside number while the
    /// number rings (`outside_transfer.rs`).
    CancelTransfer {
        agent: String,
    },
    /// The agent talks with another agent (`to`, or the Ready agent of the
    /// call's campaign idle the longest) before handing the customer on,
    /// the customer on hold meanwhile (a consultation: see
    /// `consultation.rs`). `Transfer` then completes it.
    Consult {
        agent: String,
        to: Option<String>,
    },
    /// The agent sends DTMF digits to the customer (an IVR menu, an
    /// extension): `0-9 * # A-D`, at most 32.
    SendDtmf {
        agent: String,
        digits: String,
    },
    /// Either agent of a consultation ends it without a transfer.
    EndConsultation {
        agent: String,
    },
    Disposition {
        agent: String,
        code: String,
        notes: String,
        /// Call the record back then (a callback for anyone, or only for
        /// this agent when `personal`).
        callback: Option<CallbackAt>,
        /// SPEC §7's "do not call" box: the number goes on the campaign's
        /// DNC list and the record is removed, whatever the code says.
        do_not_call: bool,
        /// The call guide's answers, in the order given.
        guide: Vec<crate::campaign::guide::GivenAnswer>,
    },
    Campaign {
        name: String,
        command: RunCommand,
    },
    /// The agent confirms joining a campaign that asks for it, or comes
    /// back to one it left.
    JoinCampaign {
        agent: String,
        campaign: String,
    },
    /// The agent leaves a campaign until joining it again (SPEC §2 "Cancel
    /// and leave the campaign"): no records or calls from it; a record of
    /// it on screen goes back to the list.
    LeaveCampaign {
        agent: String,
        campaign: String,
    },
    /// Preview modes: ask for a record, or act on the one on screen.
    Preview {
        agent: String,
        action: PreviewAction,
        /// With Call: the caller ID the agent picked from the campaign's
        /// allowed list.
        caller_id: Option<String>,
    },
    /// Preview modes: the record on screen is not called now but at a time
    /// the customer asked for (Genesys: a preview call postponed with
    /// Schedule callback): a callback is scheduled and the record goes
    /// back to the list until then.
    PostponePreview {
        agent: String,
        callback: CallbackAt,
    },
    /// The agent corrects the contact it handles (preview screen, call,
    /// wrap-up): its name and custom fields.
    ChangeContact {
        agent: String,
        change: super::contact_edit::ContactChange,
    },
}

impl Command {
    /// The agent a command acts for, if any (for authorisation).
    pub fn agent(&self) -> Option<&str> {
        match self {
            Command::AgentLogin { agent }
            | Command::AgentReady { agent }
            | Command::AgentNotReady { agent, .. }
            | Command::AgentLogout { agent }
            | Command::AgentHangup { agent }
            | Command::Hold { agent, .. }
            | Command::PauseRecording { agent, .. }
            | Command::Transfer { agent, .. }
            | Command::TransferOutside { agent, .. }
            | Command::CancelTransfer { agent }
            | Command::Consult { agent, .. }
            | Command::EndConsultation { agent }
            | Command::SendDtmf { agent, .. }
            | Command::DropVoicemail { agent }
            | Command::Disposition { agent, .. }
            | Command::JoinCampaign { agent, .. }
            | Command::LeaveCampaign { agent, .. }
            | Command::Preview { agent, .. }
            | Command::PostponePreview { agent, .. }
            | Command::ChangeContact { agent, .. } => Some(agent),
            Command::Campaign { .. } => None,
        }
    }
}

/// A callback asked for with a disposition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAt {
    pub at: jiff::Timestamp,
    pub personal: bool,
    /// Call back on this number (as the agent typed it: national numbers
    /// are read as the campaign's `default_region`) instead of the record's.
    pub phone: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("no agent `{0}`")]
    UnknownAgent(String),
    #[error("no campaign `{0}`")]
    UnknownCampaign(String),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Campaign(#[from] campaign_run::RunError),
    #[error("{0}")]
    Invalid(String),
    /// Valid, but not possible now (nothing to preview, no line free …).
    #[error("{0}")]
    Unavailable(String),
}

/// The customer of an agent's call as the agent's screen shows it: in the
/// screen pop, and in the agent's view for as long as the call is theirs
/// (reserved for it, on it, wrapping it up) — a desktop opened or
/// reloaded mid-call shows it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallPop {
    pub campaign: String,
    pub call: u64,
    pub record: String,
    pub name: String,
    pub phone: String,
    /// The list's extra columns, as imported (a JSON object).
    pub custom: serde_json::Value,
    /// A scheduled callback's delivery (SPEC §6: the record shows it).
    pub callback: bool,
    /// A personal callback: scheduled by or for this agent.
    pub personal_callback: bool,
    /// A repeat call that needs a guaranteed agent (Ofcom): the number
    /// was abandoned, or taken for a machine, lately.
    pub repeat_call: bool,
    /// The contact's IANA time zones (the desktop shows the local time).
    pub time_zones: Vec<String>,
}

/// Something that happened, for the event streams and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    AgentState {
        agent: String,
        state: String,
        reason: Option<String>,
    },
    LogoutPending {
        agent: String,
        remaining_ms: u64,
    },
    CampaignState {
        campaign: String,
        state: &'static str,
        /// The agents assigned to the campaign, who are notified.
        agents: Vec<String>,
    },
    Disposition {
        agent: String,
        code: String,
        notes: String,
    },
    /// A customer is being connected to the agent: their contact data
    /// (sent at the dial too when the agent is reserved from the dial on).
    ScreenPop {
        agent: String,
        #[serde(flatten)]
        pop: CallPop,
    },
    /// A record on the agent's screen (preview, push preview).
    Preview {
        agent: String,
        #[serde(flatten)]
        preview: PreviewView,
    },
    /// The record left the agent's screen: `called`, `skipped`, `declined`,
    /// `do_not_call`, `removed`, `stopped`, `left`, `postponed` (a callback
    /// scheduled for it), `timed_out` or `withdrawn` (not ready, logout,
    /// campaign paused).
    PreviewEnded {
        agent: String,
        campaign: String,
        record: String,
        how: &'static str,
    },
    /// A dial that never reached the trunk: its number went on a
    /// do-not-call list or the contact's calling window closed since the
    /// record was leased, the lease lapsed, or the call could not be set up
    /// here. `agent`: the agent it was placed for (preview, a repeat call,
    /// progressive reserved at the dial), who is free again.
    CallNotPlaced {
        agent: Option<String>,
        campaign: String,
        record: String,
        reason: String,
    },
    /// The agent put the customer of `call` on hold (`on`) or took them
    /// off it.
    Hold {
        agent: String,
        campaign: String,
        call: u64,
        on: bool,
    },
    /// The agent paused the recording of `call` or let it go on.
    RecordingPaused {
        agent: String,
        campaign: String,
        call: u64,
        paused: bool,
    },
    /// A transfer of `call` from `agent` to `to`: `started` (`to` hears
    /// the zip tone), `done` (the customer is `to`'s; `agent` is off the
    /// call) or `failed` (the customer is back with `agent`, on hold;
    /// `reason` says why). Both agents' streams carry it.
    Transfer {
        agent: String,
        to: String,
        campaign: String,
        call: u64,
        step: &'static str,
        reason: Option<String>,
    },
}

impl Event {
    /// The event's type name, as in its JSON `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::AgentState { .. } => "agent_state",
            Event::LogoutPending { .. } => "logout_pending",
            Event::CampaignState { .. } => "campaign_state",
            Event::Disposition { .. } => "disposition",
            Event::ScreenPop { .. } => "screen_pop",
            Event::Preview { .. } => "preview",
            Event::PreviewEnded { .. } => "preview_ended",
            Event::CallNotPlaced { .. } => "call_not_placed",
            Event::Hold { .. } => "hold",
            Event::RecordingPaused { .. } => "recording_paused",
            Event::Transfer { .. } => "transfer",
        }
    }

    /// Whether an agent's own event stream carries this event.
    pub fn concerns(&self, agent_id: &str) -> bool {
        match self {
            Event::AgentState { agent, .. }
            | Event::LogoutPending { agent, .. }
            | Event::Disposition { agent, .. }
            | Event::ScreenPop { agent, .. }
            | Event::Preview { agent, .. }
            | Event::PreviewEnded { agent, .. }
            | Event::Hold { agent, .. }
            | Event::RecordingPaused { agent, .. } => agent == agent_id,
            Event::CallNotPlaced { agent, .. } => agent.as_deref() == Some(agent_id),
            Event::Transfer { agent, to, .. } => agent == agent_id || to == agent_id,
            Event::CampaignState { agents, .. } => agents.iter().any(|a| a == agent_id),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub state: &'static str,
    pub reason: Option<String>,
    pub seconds_in_state: u64,
    pub phone_connected: bool,
    /// How customers reach the agent's phone: `reservation` (one call held
    /// while logged in), `per_call` (rung for each customer) or `none` (a
    /// simulated agent without a phone).
    pub connection: &'static str,
    pub logout_pending_ms: Option<u64>,
    /// Time left before the campaign's wrap-up timer ends the wrap-up.
    pub wrap_up_remaining_ms: Option<u64>,
    /// How long the customer has been on hold (null: not on hold).
    pub on_hold_s: Option<u64>,
    /// The agent paused the call's recording.
    pub recording_paused: bool,
    /// The agent's phone holds its call (its own Hold button).
    pub phone_on_hold: bool,
    /// The agent's current call is recorded (so its recording may be
    /// paused).
    pub call_recorded: bool,
    /// With a customer on the line: the Ready agents it may be
    /// transferred to.
    pub transfer_to: Vec<TransferTarget>,
    /// The agent is handing its customer to this agent (a transfer under
    /// way).
    pub transferring_to: Option<String>,
    /// With a customer on the line: the names of the campaign's outside
    /// numbers it may be transferred to.
    pub outside_transfers: Vec<String>,
    /// The outside number the agent is transferring its customer to, while
    /// it rings.
    pub transferring_outside_to: Option<String>,
    /// The consultation the agent takes part in (consulting another agent
    /// about its customer, or consulted by one).
    pub consultation: Option<ConsultationView>,
    /// The customer is through to the agent (bridged, the splice done):
    /// what acts on the customer (digits) may be used.
    pub customer_on_line: bool,
    /// The call's campaign has a recorded voicemail message the agent may
    /// drop into an answering machine.
    pub voicemail_drop: bool,
    pub campaigns: Vec<String>,
    /// The agent's campaigns that wait for them to confirm joining.
    pub to_join: Vec<String>,
    /// The campaign whose pacing counts the agent when several running
    /// campaigns that dial by themselves share them (null: not shared).
    pub dialing_for: Option<String>,
    /// The record on screen in the preview modes.
    pub preview: Option<PreviewView>,
    /// The customer of the agent's call, from the reservation to the end
    /// of the wrap-up.
    pub call: Option<CallPop>,
    /// The figures since the agent's latest login (the shift).
    pub shift: ShiftView,
    /// The reasons the agent may give for Not ready (empty: any text).
    pub not_ready_reasons: Vec<String>,
}

/// A consultation as one of its agents' desktops shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsultationView {
    /// The other agent.
    pub with: String,
    /// `consulting` (the customer is this agent's) or `consulted`.
    pub role: &'static str,
    /// The customer is off hold: all three hear each other.
    pub conference: bool,
}

/// An agent a customer may be transferred to, as the desktop lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferTarget {
    pub id: String,
    pub name: String,
    /// The agent takes part in the call's campaign (a transfer with no
    /// agent named goes to one of those).
    pub in_campaign: bool,
}

/// An agent's shift so far, for the supervisor's table and the desktop.
#[derive(Debug, Clone, Serialize)]
pub struct ShiftView {
    /// Customers bridged to the agent.
    pub calls: u32,
    pub logged_in_s: u64,
    pub ready_s: u64,
    /// Reserved, previewing, ringing a call they placed.
    pub reserved_s: u64,
    pub talk_s: u64,
    pub wrap_up_s: u64,
    pub not_ready_s: u64,
    /// Talk and wrap-up per call (null before the first).
    pub average_handle_s: Option<f64>,
    /// Talk and wrap-up ÷ logged-in time.
    pub occupancy: f64,
}

impl ShiftView {
    fn of(shift: &crate::agent::Shift) -> ShiftView {
        let t = &shift.times;
        ShiftView {
            calls: shift.calls,
            logged_in_s: t.logged_in().as_secs(),
            ready_s: t.ready.as_secs(),
            reserved_s: t.reserved.as_secs(),
            talk_s: t.talking.as_secs(),
            wrap_up_s: t.wrap_up.as_secs(),
            not_ready_s: t.not_ready.as_secs(),
            average_handle_s: shift.average_handle().map(|d| d.as_secs_f64()),
            occupancy: shift.occupancy(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignView {
    pub name: String,
    pub mode: String,
    pub state: &'static str,
    pub abandon_target: f64,
    /// The share of live people CPA is expected to take for machines
    /// (counted as abandoned in the UK rate).
    pub amd_fp_estimate: f64,
    pub agents_by_state: BTreeMap<&'static str, usize>,
    /// The call guide the desktop shows during the campaign's calls.
    pub guide: Vec<crate::campaign::guide::GuideQuestion>,
    /// Why calls are held back right now, in words agents understand (SPEC
    /// §5: when the trunk's limit is reached "agents see a reason"): set
    /// while the last pacing decision of a running campaign was bound by
    /// the trunk's lines or calls per second, or by the abandonment cap.
    pub held_back: Option<&'static str>,
    /// The wrap-up codes its agents may set: the system's, then the
    /// campaign's own (`[[campaign.disposition]]`).
    pub dispositions: Vec<crate::campaign::model::Disposition>,
    /// Where it was defined: `file` (`[[campaign]]`, changed there) or
    /// `api` (created by a supervisor; changed and removed through the API).
    pub source: &'static str,
}

pub(super) struct AgentEntry {
    pub name: String,
    pub campaigns: Vec<String>,
    pub session: AgentSession,
    /// Load-test automation (config `[agent.simulated]`).
    pub simulated: Option<SimulatedAgent>,
    /// The agent has a SIP phone.
    pub has_phone: bool,
    /// The phone is rung for each customer (`connection = "per_call"`)
    /// instead of being held on a reservation call.
    pub per_call: bool,
    /// Campaigns the agent confirmed joining since logging in (those with
    /// `agents_confirm_join`).
    pub joined: std::collections::BTreeSet<String>,
    /// Campaigns the agent left since logging in (until joining again).
    pub left: std::collections::BTreeSet<String>,
    /// The one campaign whose pacing counts the agent while two or more
    /// that dial by themselves could (`agent_share.rs`); `None`: not
    /// shared, counted by each of its campaigns.
    pub dialing_for: Option<String>,
    /// The agent's phone holds its reservation call (its own Hold button;
    /// `mid_call.rs`): no customer should reach a phone nobody listens on.
    pub phone_held: bool,
}

impl AgentEntry {
    /// Whether the agent's phone is held on a reservation call while the
    /// agent is logged in (not rung per customer).
    pub fn has_reservation_call(&self) -> bool {
        self.has_phone && !self.per_call
    }
}

pub(super) struct CampaignEntry {
    pub mode: DialMode,
    pub abandon_target: f64,
    pub state: RunState,
    pub config: CampaignConfig,
}

pub struct Dialer {
    pub(super) agents: BTreeMap<String, AgentEntry>,
    pub(super) campaigns: BTreeMap<String, CampaignEntry>,
    pub(super) events: VecDeque<Event>,
    /// Campaigns that have been started at least once: pacer, hopper, stats.
    pub(super) live: BTreeMap<String, LiveCampaign>,
    pub(super) calls: BTreeMap<CallId, CallEntry>,
    pub(super) effects: VecDeque<Effect>,
    pub(super) next_call: CallId,
    pub(super) agent_ids: BTreeMap<String, AgentId>,
    /// Connected calls whose agent is in wrap-up: written with the disposition.
    pub(super) awaiting_disposition: BTreeMap<String, AttemptRecord>,
    trunk: TrunkConfig,
    /// This node's part of a trunk shared with other nodes
    /// (`[trunk] shared_by_nodes`); `None`: the whole trunk is this node's.
    trunk_share: Option<TrunkShare>,
    /// Every call this node started lately (all campaigns, preview dials
    /// too): the trunk's calls per second are held on it.
    pub(super) dial_rate: DialRate,
    /// Who gets the lines an even split cannot divide: moves on each pass.
    pub(super) fair_turn: usize,
    /// Whether the trunk takes new calls now (Retry-After, OPTIONS, a
    /// breaker on calls failing in a row).
    pub(super) trunk_health: TrunkHealth,
    /// Why the trunk held new calls at the last pacing pass.
    pub(super) trunk_hold: Option<TrunkHold>,
    /// `[agent_states] not_ready_reasons` (empty: free text).
    not_ready_reasons: Vec<String>,
    /// The node records bridged calls (`[media] record_dir` is set); each
    /// campaign may still keep its own unrecorded (`record_calls`).
    pub(super) records_calls: bool,
}

impl Dialer {
    pub fn new(config: &Config, now: Instant) -> Self {
        let agents = config
            .agents
            .iter()
            .map(|agent| {
                let policy = AgentPolicy {
                    requires_reservation_leg: agent.has_phone() && !agent.per_call(),
                    wrap_up_limit: agent
                        .simulated
                        .as_ref()
                        .map(|s| Duration::from_secs(s.wrap_up_s)),
                    ..AgentPolicy::default()
                };
                let mut session = AgentSession::new(agent.id.clone(), policy, now);
                if agent.simulated.is_some() {
                    // Cannot fail: a new session is logged out.
                    let _ = session.login(now);
                    if !agent.has_phone() || agent.per_call() {
                        let _ = session.ready(now);
                    }
                }
                let entry = AgentEntry {
                    name: agent.name.clone(),
                    campaigns: agent.campaigns.clone(),
                    session,
                    simulated: agent.simulated.clone(),
                    has_phone: agent.has_phone(),
                    per_call: agent.per_call(),
                    joined: std::collections::BTreeSet::new(),
                    left: std::collections::BTreeSet::new(),
                    dialing_for: None,
                    phone_held: false,
                };
                (agent.id.clone(), entry)
            })
            .collect();
        let campaigns = config
            .campaigns
            .iter()
            .map(|campaign| {
                let entry = CampaignEntry {
                    mode: campaign.mode,
                    abandon_target: campaign.abandon_target,
                    state: RunState::Loaded,
                    config: campaign.clone(),
                };
                (campaign.name.clone(), entry)
            })
            .collect::<BTreeMap<_, _>>();
        let agent_ids = Dialer::pacer_agent_ids(config.agents.iter().map(|a| a.id.clone()))
            .into_iter()
            .collect();
        // Simulated agents with a phone are logged in: call them now.
        let effects = config
            .agents
            .iter()
            .filter(|a| a.simulated.is_some() && a.has_phone() && !a.per_call())
            .map(|a| Effect::CallAgent {
                agent: a.id.clone(),
            })
            .collect();
        Self {
            agents,
            campaigns,
            events: VecDeque::new(),
            live: BTreeMap::new(),
            calls: BTreeMap::new(),
            effects,
            next_call: 0,
            agent_ids,
            awaiting_disposition: BTreeMap::new(),
            trunk: config.trunk.clone(),
            // Shared with other nodes: no line until the first claim.
            trunk_share: config
                .trunk
                .shared_by_nodes
                .then_some(TrunkShare { lines: 0, nodes: 1 }),
            dial_rate: DialRate::new(),
            fair_turn: 0,
            trunk_health: TrunkHealth::new(),
            trunk_hold: None,
            not_ready_reasons: config.agent_states.not_ready_reasons.clone(),
            records_calls: config.media.record_dir.is_some(),
        }
    }

    /// A callback's other number as the agent typed it, in E.164: a
    /// national number is read in `campaign`'s region (US without one).
    pub(super) fn callback_phone(
        &self,
        campaign: Option<&str>,
        typed: Option<&str>,
    ) -> Result<Option<String>, CommandError> {
        let Some(text) = typed.filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        let region = campaign
            .and_then(|name| self.campaigns.get(name))
            .map_or("US", |c| c.config.default_region.as_str());
        crate::campaign::import::e164(text, region)
            .map(Some)
            .map_err(|reason| CommandError::Invalid(format!("callback phone {text:?}: {reason}")))
    }

    pub(super) fn agent_mut(&mut self, id: &str) -> Result<&mut AgentEntry, CommandError> {
        self.agents
            .get_mut(id)
            .ok_or_else(|| CommandError::UnknownAgent(id.to_string()))
    }

    /// Customer calls this node may hold on the trunk at once (all
    /// campaigns): the trunk's limit, or this node's part of it.
    pub(super) fn trunk_max_calls(&self) -> usize {
        let lines = self
            .trunk_share
            .map_or(self.trunk.max_concurrent_calls, |share| {
                share.lines.min(self.trunk.max_concurrent_calls)
            });
        usize::try_from(lines).unwrap_or(usize::MAX)
    }

    /// Calls per second this node may start on the trunk.
    pub(super) fn trunk_calls_per_second(&self) -> f64 {
        let cps = self.trunk.max_calls_per_second;
        self.trunk_share
            .map_or(cps, |share| share.calls_per_second(cps))
    }

    /// What this node asks of a trunk shared with other nodes: the calls
    /// it holds, those its running campaigns' pacers wanted and could not
    /// start at their last decision, one for each record on a preview
    /// agent's screen (the agent may press Call at any moment), and the
    /// repeat calls waiting that a Ready agent could take now (only the
    /// trunk keeps them).
    pub fn trunk_demand(&self) -> TrunkDemand {
        let in_use = u32::try_from(self.trunk_lines_in_use()).unwrap_or(u32::MAX);
        let unmet: u32 = self
            .live
            .iter()
            .filter(|(name, _)| {
                self.campaigns
                    .get(*name)
                    .is_some_and(|c| c.state == RunState::Running)
            })
            .map(|(name, live)| {
                let previews = u32::try_from(live.previews.len()).unwrap_or(u32::MAX);
                let repeat_calls = if live.agent_required.is_empty() {
                    0
                } else {
                    let ready = self
                        .agents
                        .values()
                        .filter(|a| a.session.is_ready() && self.takes_part(a, name))
                        .count();
                    u32::try_from(live.agent_required.len().min(ready)).unwrap_or(u32::MAX)
                };
                live.unmet_demand
                    .saturating_add(previews)
                    .saturating_add(repeat_calls)
            })
            .fold(0, u32::saturating_add);
        TrunkDemand {
            in_use,
            wanted: in_use.saturating_add(unmet),
        }
    }

    /// This node's part of a shared trunk, claimed through the store
    /// (`None`: the whole trunk). More lines than before pace at once.
    pub fn set_trunk_share(&mut self, share: Option<TrunkShare>, now: Instant) {
        let before = self.trunk_max_calls();
        self.trunk_share = share;
        let grew = self.trunk_max_calls() > before;
        let cps = self.trunk_calls_per_second();
        for live in self.live.values_mut() {
            live.pacer.set_max_calls_per_second(Some(cps));
            live.decide_now |= grew;
        }
        self.after_change(now);
    }

    /// Why new calls were held for the trunk's sake at the last pacing
    /// pass (a 503's Retry-After, OPTIONS unanswered, calls failing).
    pub fn trunk_hold(&self) -> Option<TrunkHold> {
        self.trunk_hold
    }

    pub fn trunk_share(&self) -> Option<TrunkShare> {
        self.trunk_share
    }

    /// How long the carrier's Retry-After (a 503) still holds new calls:
    /// shared with the other nodes of the trunk through the store.
    pub fn trunk_retry_after(&self, now: Instant) -> Option<Duration> {
        self.trunk_health.retry_after_remaining(now)
    }

    /// A Retry-After another node of the shared trunk was given (or this
    /// node before a restart): no new call for `remaining` from `now`.
    pub fn hold_trunk_for(&mut self, remaining: Duration, now: Instant) {
        self.trunk_health.hold_for(remaining, now);
        self.after_change(now);
    }

    pub fn handle_command(&mut self, command: Command, now: Instant) -> Result<(), CommandError> {
        let result = self.apply_command(command, now);
        self.collect_agent_events(now);
        self.after_change(now);
        result
    }

    fn apply_command(&mut self, command: Command, now: Instant) -> Result<(), CommandError> {
        match command {
            Command::AgentLogin { agent } => {
                let entry = self.agent_mut(&agent)?;
                entry.session.login(now)?;
                let reservation_call = entry.has_reservation_call();
                let campaigns = entry.campaigns.clone();
                // The login's own state change first, then (SPEC §2) each of
                // the agent's campaigns and its state (loaded, running, …),
                // as on each change.
                self.collect_agent_events(now);
                for name in campaigns {
                    if let Some(campaign) = self.campaigns.get(&name) {
                        self.events.push_back(Event::CampaignState {
                            campaign: name,
                            state: campaign.state.name(),
                            agents: vec![agent.clone()],
                        });
                    }
                }
                if reservation_call {
                    self.effects.push_back(Effect::CallAgent { agent });
                }
            }
            Command::AgentReady { agent } => {
                let entry = self.agent_mut(&agent)?;
                let needs_call = entry.has_reservation_call()
                    && !entry.session.has_leg()
                    && !matches!(entry.session.state(), AgentState::LoggedOut);
                if needs_call {
                    // Ready needs the phone: ring it again (it dropped).
                    self.effects.push_back(Effect::CallAgent {
                        agent: agent.clone(),
                    });
                }
                self.agent_mut(&agent)?.session.ready(now)?
            }
            Command::AgentNotReady { agent, reason } => {
                if !self.not_ready_reasons.is_empty() && !self.not_ready_reasons.contains(&reason) {
                    return Err(CommandError::Invalid(format!(
                        "`{reason}` is not a Not-ready reason here; use one of: {}",
                        self.not_ready_reasons.join(", ")
                    )));
                }
                self.agent_mut(&agent)?.session.not_ready(&reason, now)?
            }
            Command::AgentLogout { agent } => self.agent_mut(&agent)?.session.logout(now)?,
            Command::AgentHangup { agent } => {
                let state = self.agent_mut(&agent)?.session.state().clone();
                match state {
                    AgentState::OnCall { .. } if self.transferring_outside_to(&agent).is_some() => {
                        return Err(CommandError::Unavailable(
                            "the call is being transferred to an outside number: the customer stays with you until it answers (or the transfer fails)".into(),
                        ));
                    }
                    AgentState::OnCall { call } if self.transfer_under_way(call) => {
                        return Err(CommandError::Unavailable(
                            "the call is being transferred: the next agent hangs up".into(),
                        ));
                    }
                    AgentState::OnCall { call } if self.consultation_under_way(call) => {
                        return Err(CommandError::Unavailable(
                            "you are consulting another agent: end the consultation or complete the transfer first".into(),
                        ));
                    }
                    AgentState::OnCall { call } => self.agent_hung_up(call, now),
                    // The consulted agent hangs up: it leaves the
                    // consultation.
                    AgentState::Reserved { call }
                        if self
                            .consultation_on(call)
                            .is_some_and(|(_, to)| to == agent) =>
                    {
                        self.consulted_agent_hung_up(call, now)
                    }
                    // The call placed for the agent (preview, reserved at
                    // the dial, a repeat call) still rings: cancelled.
                    AgentState::Reserved { call } if self.call_unanswered(call) => {
                        self.with_attempt(call, now, |a, now| a.cancel_ringing(now));
                    }
                    other => {
                        return Err(CommandError::Agent(AgentError::WrongState {
                            action: "hang up",
                            state: other.name(),
                            needs: "on_call, or reserved for a call that still rings",
                        }));
                    }
                }
            }
            Command::Disposition {
                agent,
                code,
                notes,
                callback,
                do_not_call,
                guide,
            } => {
                if code.trim().is_empty() {
                    return Err(CommandError::Invalid("a disposition needs a code".into()));
                }
                if do_not_call && callback.is_some() {
                    return Err(CommandError::Invalid(
                        "a contact who is not to be called gets no callback: untick do not call or clear the callback".into(),
                    ));
                }
                // A code the store does not know would leave the call's
                // attempt unwritten: refused here, and the wrap-up goes on.
                let call_campaign = self.wrap_up_campaign(&agent);
                let allowed = crate::campaign::model::agent_dispositions(
                    call_campaign
                        .as_ref()
                        .and_then(|name| self.campaigns.get(name))
                        .map(|c| c.config.dispositions.as_slice())
                        .unwrap_or_default(),
                );
                if !allowed.iter().any(|d| d.code == code) {
                    return Err(CommandError::Invalid(format!(
                        "`{code}` is not a disposition of {}; use one of {}",
                        call_campaign.map_or_else(
                            || "the system list".to_string(),
                            |name| format!("campaign `{name}`")
                        ),
                        allowed
                            .iter()
                            .map(|d| d.code.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                // The guide's answers must follow its branches; checked before
                // the wrap-up ends so a bad request changes nothing.
                let guide_answers = match call_campaign.as_ref() {
                    Some(campaign) if !guide.is_empty() => {
                        let questions = self
                            .campaigns
                            .get(campaign)
                            .map(|c| c.config.guide.as_slice())
                            .unwrap_or_default();
                        crate::campaign::guide::check_answers(questions, &guide)
                            .map_err(CommandError::Invalid)?;
                        serde_json::to_string(&guide).ok()
                    }
                    _ => None,
                };
                // So is the callback's number, in the call's campaign's region.
                let callback_phone = self.callback_phone(
                    call_campaign.as_deref(),
                    callback.as_ref().and_then(|c| c.phone.as_deref()),
                )?;
                self.agent_mut(&agent)?.session.wrap_up_done(now)?;
                let callback = callback.map(|c| super::io::Callback {
                    at: c.at,
                    agent: c.personal.then(|| agent.clone()),
                    phone: callback_phone,
                });
                self.flush_disposition(
                    &agent,
                    super::calls::WrapUpGiven {
                        code: Some(code.clone()),
                        notes: Some(notes.clone()),
                        callback,
                        do_not_call,
                        guide_answers,
                    },
                );
                self.events
                    .push_back(Event::Disposition { agent, code, notes });
            }
            Command::Preview {
                agent,
                action,
                caller_id,
            } => self.preview_command(&agent, action, caller_id, now)?,
            Command::PostponePreview { agent, callback } => {
                self.postpone_preview(&agent, callback, now)?
            }
            Command::ChangeContact { agent, change } => self.change_contact(&agent, change)?,
            Command::Hold { agent, on } => self.hold_call(&agent, on, now)?,
            Command::Transfer { agent, to } => self.transfer_call(&agent, to, now)?,
            Command::TransferOutside { agent, destination } => {
                self.transfer_outside(&agent, &destination, now)?
            }
            Command::CancelTransfer { agent } => self.cancel_outside_transfer(&agent, now)?,
            Command::Consult { agent, to } => self.consult(&agent, to, now)?,
            Command::EndConsultation { agent } => self.end_consultation(&agent, now)?,
            Command::SendDtmf { agent, digits } => self.send_dtmf(&agent, &digits)?,
            Command::DropVoicemail { agent } => self.drop_voicemail(&agent, now)?,
            Command::PauseRecording { agent, paused } => {
                self.pause_recording(&agent, paused, now)?
            }
            Command::JoinCampaign { agent, campaign } => {
                if !self.campaigns.contains_key(&campaign) {
                    return Err(CommandError::UnknownCampaign(campaign));
                }
                let entry = self.agent_mut(&agent)?;
                if !entry.campaigns.contains(&campaign) {
                    return Err(CommandError::Unavailable(format!(
                        "agent `{agent}` is not assigned to campaign `{campaign}`"
                    )));
                }
                if matches!(entry.session.state(), AgentState::LoggedOut) {
                    return Err(CommandError::Unavailable(
                        "log in before joining a campaign".into(),
                    ));
                }
                entry.left.remove(&campaign);
                entry.joined.insert(campaign);
                // The campaign's pacer and dispatcher count the agent now
                // (or, shared, another campaign's may count one less).
                self.agent_changed(&agent, now);
                self.share_agents(now);
            }
            Command::LeaveCampaign { agent, campaign } => {
                self.leave_campaign(&agent, &campaign, now)?;
            }
            Command::Campaign { name, command } => {
                let campaign = self
                    .campaigns
                    .get_mut(&name)
                    .ok_or_else(|| CommandError::UnknownCampaign(name.clone()))?;
                campaign.state = campaign_run::transition(campaign.state, command)?;
                let state = campaign.state.name();
                if campaign.state == RunState::Running {
                    let config = campaign.config.clone();
                    let trunk = TrunkConfig {
                        max_calls_per_second: self.trunk_calls_per_second(),
                        ..self.trunk.clone()
                    };
                    let agents: Vec<String> = self
                        .agents
                        .iter()
                        .filter(|(_, a)| a.campaigns.contains(&name))
                        .map(|(id, _)| id.clone())
                        .collect();
                    if !self.live.contains_key(&name) {
                        self.live
                            .insert(name.clone(), LiveCampaign::new(&config, &trunk, now));
                        // Its first run in this process: the abandonment
                        // windows hold what earlier runs did.
                        self.effects.push_back(Effect::LoadAnswerHistory {
                            campaign: name.clone(),
                        });
                    }
                    if let Some(live) = self.live.get_mut(&name) {
                        live.decide_now = true;
                    }
                    // The pacer learns who is there and in which state.
                    for agent in agents {
                        self.agent_changed(&agent, now);
                    }
                } else {
                    self.release_hopper(&name);
                    self.end_previews(&name, now);
                }
                // Agents shared with other campaigns are shared anew.
                self.share_agents(now);
                let agents = self
                    .agents
                    .iter()
                    .filter(|(_, a)| a.campaigns.contains(&name))
                    .map(|(id, _)| id.clone())
                    .collect();
                self.events.push_back(Event::CampaignState {
                    campaign: name,
                    state,
                    agents,
                });
            }
        }
        Ok(())
    }

    /// A phone registered from a new address: a logged-in agent whose
    /// phone has no reservation call (it was not registered at login, or
    /// the softphone restarted) is called there.
    pub fn phone_registered(&mut self, agent: &str) {
        let Some(entry) = self.agents.get(agent) else {
            tracing::warn!(%agent, "registration of an unknown agent");
            return;
        };
        if entry.has_reservation_call()
            && !entry.session.has_leg()
            && !matches!(entry.session.state(), AgentState::LoggedOut)
        {
            self.effects.push_back(Effect::CallAgent {
                agent: agent.to_string(),
            });
        }
    }

    /// The agent's reservation (nailed-up) call came up or dropped.
    pub fn reservation_leg(
        &mut self,
        agent: &str,
        up: bool,
        now: Instant,
    ) -> Result<(), CommandError> {
        let entry = self.agent_mut(agent)?;
        // A new reservation call, or none: not held by the phone. An agent
        // Not ready because the phone held the old one is now as any agent
        // whose reservation call dropped (Ready again by hand).
        entry.phone_held = false;
        if matches!(entry.session.state(), AgentState::NotReady { reason } if reason == REASON_PHONE_ON_HOLD)
        {
            let _ = entry
                .session
                .not_ready(crate::agent::REASON_LEG_DROPPED, now);
        }
        if up {
            entry.session.leg_up(now);
            if entry.simulated.is_some()
                && matches!(entry.session.state(), AgentState::NotReady { .. })
            {
                entry.session.ready(now)?;
            }
        } else {
            let was_up = entry.session.has_leg();
            entry.session.leg_down(now);
            // A simulated agent has nobody to press Ready: its phone is
            // called again when an established call drops (not after a
            // failed attempt, so an unreachable phone is not called in a
            // loop).
            if was_up
                && entry.simulated.is_some()
                && entry.has_reservation_call()
                && !matches!(entry.session.state(), AgentState::LoggedOut)
            {
                self.effects.push_back(Effect::CallAgent {
                    agent: agent.to_string(),
                });
            }
        }
        self.collect_agent_events(now);
        Ok(())
    }

    /// Publishes the sessions' events and lets pacing and dispatch react,
    /// until nothing changes any more (a dispatch changes a session too).
    pub(super) fn collect_agent_events(&mut self, now: Instant) {
        // Each round either reserves an agent or ends; bounded by the
        // number of agents in practice, and by this limit in any case.
        for _ in 0..64 {
            if !self.collect_agent_events_once(now) {
                return;
            }
        }
    }

    fn collect_agent_events_once(&mut self, now: Instant) -> bool {
        let mut changed: Vec<(String, &'static str, bool)> = Vec::new();
        let mut lost: Vec<CallId> = Vec::new();
        for (id, entry) in &mut self.agents {
            while let Some(event) = entry.session.poll_event() {
                match event {
                    AgentEvent::StateChanged { from, to } => {
                        changed.push((
                            id.clone(),
                            from,
                            entry.has_phone && to == AgentState::LoggedOut,
                        ));
                        let reason = match &to {
                            AgentState::NotReady { reason } => Some(reason.clone()),
                            _ => None,
                        };
                        self.events.push_back(Event::AgentState {
                            agent: id.clone(),
                            state: to.name().to_string(),
                            reason,
                        });
                        // Whatever made the agent Ready (the end of a
                        // wrap-up, the agent's or a supervisor's Ready), a
                        // phone that holds its call takes no customer.
                        if to == AgentState::Ready && entry.phone_held {
                            let _ = entry.session.not_ready(REASON_PHONE_ON_HOLD, now);
                        }
                    }
                    AgentEvent::LogoutPending { remaining } => {
                        self.events.push_back(Event::LogoutPending {
                            agent: id.clone(),
                            remaining_ms: remaining.as_millis() as u64,
                        });
                    }
                    // The negotiated logout ran out while a customer was
                    // being connected: the session already left the call;
                    // the attempt finds no agent when it tries to bridge
                    // and ends as its phase dictates.
                    AgentEvent::ReleaseReservation { call } => {
                        tracing::info!(agent = %id, call, "reservation released");
                        lost.push(call);
                    }
                }
            }
        }
        for call in lost {
            // The customer goes back to the queue for another agent.
            self.agent_lost(call, now);
        }
        let any = !changed.is_empty();
        // A login or a logout changes how many agents the campaigns count:
        // shared agents are balanced again once the pacers have heard.
        let mut share_again = false;
        for (agent, from, logged_out_with_phone) in changed {
            if let Some(entry) = self.agents.get_mut(&agent)
                && matches!(entry.session.state(), AgentState::LoggedOut)
            {
                // Joining and leaving are per login.
                entry.joined.clear();
                entry.left.clear();
                share_again = true;
            }
            share_again |= from == "logged_out";
            let previewing = self
                .agents
                .get(&agent)
                .is_some_and(|a| a.session.state() == &AgentState::Previewing);
            if !previewing {
                // A record on screen belongs to a Previewing agent only.
                self.agent_left_preview(&agent);
            }
            if from == "wrap_up" {
                // Wrap-up ended without a disposition (timeout, logout).
                self.flush_disposition(&agent, super::calls::WrapUpGiven::default());
            }
            if logged_out_with_phone {
                self.effects.push_back(Effect::HangUpAgent {
                    agent: agent.clone(),
                });
            }
            self.agent_changed(&agent, now);
        }
        if share_again {
            self.share_agents(now);
        }
        any
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.agents
            .values()
            .filter_map(|a| a.session.poll_timeout())
            .chain(self.calls_poll_timeout())
            .chain(self.previews_poll_timeout())
            .chain(self.repeat_calls_poll_timeout())
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut simulated_wrap_ups = Vec::new();
        for (id, entry) in &mut self.agents {
            if entry.session.poll_timeout().is_none_or(|t| t > now) {
                continue;
            }
            let in_wrap_up = matches!(entry.session.state(), AgentState::WrapUp { .. });
            entry.session.handle_timeout(now);
            let wrapped_up =
                in_wrap_up && !matches!(entry.session.state(), AgentState::WrapUp { .. });
            if let (true, Some(simulated)) = (wrapped_up, &entry.simulated) {
                let code = simulated.disposition.clone();
                let notes = "automatic wrap-up (simulated agent)".to_string();
                simulated_wrap_ups.push((id.clone(), code, notes));
            }
        }
        for (agent, code, notes) in simulated_wrap_ups {
            self.flush_disposition(
                &agent,
                super::calls::WrapUpGiven {
                    code: Some(code.clone()),
                    notes: Some(notes.clone()),
                    ..Default::default()
                },
            );
            self.events
                .push_back(Event::Disposition { agent, code, notes });
        }
        self.calls_timeout(now);
        self.previews_timeout(now);
        self.repeat_calls_timeout(now);
        self.collect_agent_events(now);
        self.after_change(now);
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn agent_view(&self, id: &str, now: Instant) -> Option<AgentView> {
        let entry = self.agents.get(id)?;
        let session = &entry.session;
        Some(AgentView {
            id: id.to_string(),
            name: entry.name.clone(),
            state: session.state().name(),
            reason: match session.state() {
                AgentState::NotReady { reason } => Some(reason.clone()),
                _ => None,
            },
            seconds_in_state: session.time_in_state(now).as_secs(),
            phone_connected: session.has_leg(),
            connection: if !entry.has_phone {
                "none"
            } else if entry.per_call {
                "per_call"
            } else {
                "reservation"
            },
            logout_pending_ms: session
                .logout_remaining(now)
                .map(|d: Duration| d.as_millis() as u64),
            wrap_up_remaining_ms: session
                .wrap_up_deadline()
                .map(|t| t.saturating_duration_since(now).as_millis() as u64),
            on_hold_s: self.on_hold_for(id, now).map(|held| held.as_secs()),
            recording_paused: self.recording_paused(id),
            phone_on_hold: entry.phone_held,
            call_recorded: self.call_recorded(id),
            transfer_to: self.transfer_targets(id),
            transferring_to: self.transferring_to(id),
            outside_transfers: self.outside_transfer_names(id),
            transferring_outside_to: self.transferring_outside_to(id),
            consultation: self.consultation_view(id),
            customer_on_line: self.customer_on_line(id),
            voicemail_drop: self.voicemail_drop_offered(id),
            campaigns: entry.campaigns.clone(),
            to_join: entry
                .campaigns
                .iter()
                .filter(|c| !self.takes_part(entry, c))
                .cloned()
                .collect(),
            dialing_for: entry.dialing_for.clone(),
            preview: self.preview_view(id, now),
            call: self.call_pop_of(id),
            shift: ShiftView::of(&session.shift(now)),
            not_ready_reasons: self.not_ready_reasons.clone(),
        })
    }

    /// The customer of `agent`'s call: the call it is reserved for or on,
    /// else the one it is wrapping up.
    fn call_pop_of(&self, agent: &str) -> Option<CallPop> {
        let entry = self.agents.get(agent)?;
        if let Some(call) = entry.session.current_call()
            && let Some(c) = self.calls.get(&call)
        {
            return Some(super::calls::call_pop(&c.campaign, call, &c.lease));
        }
        if matches!(entry.session.state(), AgentState::WrapUp { .. }) {
            let record = self.awaiting_disposition.get(agent)?;
            return Some(super::calls::call_pop(
                &record.campaign,
                record.call,
                &record.lease,
            ));
        }
        None
    }

    pub fn agent_views(&self, now: Instant) -> Vec<AgentView> {
        self.agents
            .keys()
            .filter_map(|id| self.agent_view(id, now))
            .collect()
    }

    pub fn campaign_views(&self) -> Vec<CampaignView> {
        self.campaigns
            .iter()
            .map(|(name, campaign)| {
                let mut agents_by_state = BTreeMap::new();
                for agent in self.agents.values().filter(|a| a.campaigns.contains(name)) {
                    *agents_by_state
                        .entry(agent.session.state().name())
                        .or_insert(0) += 1;
                }
                CampaignView {
                    name: name.clone(),
                    mode: campaign.mode.to_string(),
                    state: campaign.state.name(),
                    abandon_target: campaign.abandon_target,
                    amd_fp_estimate: campaign.config.amd_fp_estimate,
                    agents_by_state,
                    guide: campaign.config.guide.clone(),
                    held_back: if campaign.state == RunState::Running {
                        self.trunk_hold
                            .map(TrunkHold::reason)
                            .or_else(|| self.live.get(name).and_then(|live| live.held_back()))
                    } else {
                        None
                    },
                    source: campaign.config.source.name(),
                    dispositions: crate::campaign::model::agent_dispositions(
                        &campaign.config.dispositions,
                    ),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn dialer(now: Instant) -> Dialer {
        let config = Config::parse(
            include_str!("../../config/outdial.toml"),
            Path::new("outdial.toml"),
        )
        .unwrap();
        Dialer::new(&config, now)
    }

    fn events(dialer: &mut Dialer) -> Vec<Event> {
        std::iter::from_fn(|| dialer.poll_event()).collect()
    }

    #[test]
    fn agent_lifecycle_through_commands() {
        let t0 = Instant::now();
        let mut dialer = dialer(t0);
        let login = Command::AgentLogin {
            agent: "1001".into(),
        };
        dialer.handle_command(login.clone(), t0).unwrap();
        // Logging in tells the agent of their campaigns' states.
        let told = events(&mut dialer);
        assert!(
            told.contains(&Event::CampaignState {
                campaign: "demo".into(),
                state: "loaded",
                agents: vec!["1001".into()],
            }),
            "{told:?}"
        );
        assert!(dialer.handle_command(login, t0).is_err());
        // No phone yet: cannot be ready.
        let ready = Command::AgentReady {
            agent: "1001".into(),
        };
        assert!(matches!(
            dialer.handle_command(ready.clone(), t0),
            Err(CommandError::Agent(AgentError::NoReservationLeg))
        ));
        dialer.reservation_leg("1001", true, t0).unwrap();
        dialer.handle_command(ready, t0).unwrap();
        let view = dialer.agent_view("1001", t0).unwrap();
        assert_eq!(view.state, "ready");
        assert!(view.phone_connected);
        let seen = events(&mut dialer);
        assert_eq!(
            seen.last(),
            Some(&Event::AgentState {
                agent: "1001".into(),
                state: "ready".into(),
                reason: None
            })
        );
        assert!(
            seen.iter()
                .all(|e| e.concerns("1001") && !e.concerns("1002"))
        );
        assert!(matches!(
            dialer.handle_command(
                Command::AgentReady {
                    agent: "9999".into()
                },
                t0
            ),
            Err(CommandError::UnknownAgent(_))
        ));
    }

    #[test]
    fn simulated_agents_drive_themselves() {
        let text = include_str!("../../config/outdial.toml").replace(
            "sip_uri = \"sip:1002@127.0.0.1:5082\"",
            "simulated = { wrap_up_s = 3, disposition = \"SALE\" }",
        );
        let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
        let t0 = Instant::now();
        let mut dialer = Dialer::new(&config, t0);
        // No phone: ready at once.
        assert_eq!(dialer.agent_view("1002", t0).unwrap().state, "ready");
        assert_eq!(dialer.agent_view("1001", t0).unwrap().state, "logged_out");
        // Through a call: wrap-up ends by itself with the default disposition.
        let entry = dialer.agents.get_mut("1002").unwrap();
        entry.session.reserve(1, t0).unwrap();
        entry.session.bridged(t0).unwrap();
        entry
            .session
            .call_ended(t0 + Duration::from_secs(30))
            .unwrap();
        events(&mut dialer);
        assert_eq!(dialer.poll_timeout(), Some(t0 + Duration::from_secs(33)));
        dialer.handle_timeout(t0 + Duration::from_secs(33));
        let seen = events(&mut dialer);
        assert!(seen.contains(&Event::Disposition {
            agent: "1002".into(),
            code: "SALE".into(),
            notes: "automatic wrap-up (simulated agent)".into()
        }));
        assert_eq!(dialer.agent_view("1002", t0).unwrap().state, "ready");
    }

    #[test]
    fn campaign_commands_notify_assigned_agents() {
        let t0 = Instant::now();
        let mut dialer = dialer(t0);
        dialer
            .handle_command(
                Command::Campaign {
                    name: "demo".into(),
                    command: RunCommand::Start,
                },
                t0,
            )
            .unwrap();
        let seen = events(&mut dialer);
        assert_eq!(seen.len(), 1);
        assert!(seen[0].concerns("1001") && seen[0].concerns("1002"));
        assert_eq!(dialer.campaign_views()[0].state, "running");
        assert!(
            dialer
                .handle_command(
                    Command::Campaign {
                        name: "nope".into(),
                        command: RunCommand::Start
                    },
                    t0
                )
                .is_err()
        );
    }
}
