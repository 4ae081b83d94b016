//! Customer calls inside the [`Dialer`]: pacing decides, leased records are
//! dialed, each call's [`Attempt`] is driven by what the shell observed, live
//! answers are matched to free agents, and finished attempts go to the store.
//!
//! Data flow of one call: [`Effect::Lease`] → [`Input::Leased`] (hopper
//! buffer) → pacer says dial → [`Effect::Dial`] → `Ringing`/`Answered`/`Cpa`
//! inputs → the attempt asks for an agent → the longest-idle ready agent of
//! the campaign is reserved → [`Effect::Connect`] (zip tone + splice) →
//! [`Input::Spliced`] → the customer hangs up → the agent wraps up →
//! [`Effect::Record`] with the disposition.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::attempt::{
    Action, Attempt, AttemptResult, AttemptSettings, Phase, Prompt, Verdict, outside_party,
};
use super::campaign_run::RunState;
use super::dialer::{Dialer, Event};
use super::dispatch::Dispatcher;
use super::io::{AttemptRecord, CallId, CampaignStats, ConnectFailure, Effect, Input};
use super::trunk_health::CallSignal;
use crate::agent::AgentState;
use crate::config::{CampaignConfig, DialMode};
use crate::pacing::{AgentActivity, AgentId, Decision, NotLive, Pacer, PacerConfig, PacerEvent};
use crate::store::{Lease, Release};

/// How long leased records stay ours without a dial (the store lets another
/// node take them after this).
pub const LEASE_FOR: Duration = Duration::from_secs(30 * 60);
/// After the store had nothing to dial (or failed), ask again this late.
const EMPTY_HOPPER_RETRY: Duration = Duration::from_secs(5);
/// Why a per-call agent is made Not ready when its phone did not answer.
pub const REASON_PHONE_UNANSWERED: &str = "phone did not answer";
/// Not ready: a customer could not be spliced into the agent's phone
/// (its media was gone).
pub const REASON_PHONE_LOST: &str = "phone media lost";
/// Records kept leased beyond what the pacer asks for right now.
pub(super) const HOPPER_SPARE: usize = 10;
pub(super) const MAX_LEASE_BATCH: usize = 100;
/// The analyser decides "human" only once it predicts the end of the first
/// utterance, a little after the caller stopped. The abandon clock is armed
/// from the end of the greeting, so the verdict time is moved back by this
/// allowance: an early, conservative start of the 2-second window.
pub const END_OF_GREETING_ALLOWANCE: Duration = Duration::from_millis(600);

/// One running campaign's calls and pacing.
pub(super) struct LiveCampaign {
    pub pacer: Pacer,
    pub settings: AttemptSettings,
    /// Leased records waiting to be dialed.
    pub hopper: VecDeque<Lease>,
    pub lease_pending: bool,
    /// Do not ask the store again before this (it was empty or failing).
    pub lease_not_before: Option<Instant>,
    pub dispatcher: Dispatcher,
    pub next_decision: Option<Instant>,
    pub decide_now: bool,
    pub stats: CampaignStats,
    pub last_decision: Option<Decision>,
    /// Agent assigned → splice, µs.
    pub connect_latency: Option<hdrhistogram::Histogram<u64>>,
    /// Human verdict → agent assigned, µs.
    pub agent_wait: Option<hdrhistogram::Histogram<u64>>,
    /// Preview modes: the record on each agent's screen.
    pub previews: std::collections::BTreeMap<String, super::preview::Preview>,
    /// Repeat calls that need a guaranteed agent (Ofcom), leased and
    /// waiting for a Ready agent to reserve, with when they arrived
    /// (`repeat_calls.rs`).
    pub agent_required: VecDeque<(Lease, Instant)>,
    /// Due personal callbacks leased for their agent, waiting for that
    /// agent to be Ready, with when they arrived.
    pub personal: VecDeque<(Lease, Instant)>,
    /// When to ask the store for the Ready agents' personal callbacks next.
    pub personal_poll_at: Instant,
    /// Agents whose personal-callback lease is in flight.
    pub personal_pending: std::collections::BTreeSet<String>,
    /// Calls the pacer wanted at its last decision and the trunk's lines or
    /// calls per second did not let it start: this node's unmet demand on a
    /// trunk shared with other nodes.
    pub unmet_demand: u32,
}

impl LiveCampaign {
    pub fn new(config: &CampaignConfig, trunk: &crate::config::TrunkConfig, now: Instant) -> Self {
        let settings = AttemptSettings {
            ring_timeout: Duration::from_secs(config.ring_timeout_s),
            max_analysis: Duration::from_millis(u64::from(config.cpa.max_analysis_ms)),
            machine_action: config.machine_action,
            max_beep_wait: Duration::from_millis(u64::from(config.cpa.beep_timeout_ms)),
            has_abandon_prompt: config.abandon_prompt.is_some(),
            connect_first: config.cpa.connect_first,
            ..AttemptSettings::default()
        };
        // The pacer hears of a live answer at the analyser's verdict; the
        // window the engine gives it runs from the (estimated) end of the
        // greeting, so the pacer must plan with what is left of it.
        let mut pacer_config = PacerConfig::from_campaign(config, trunk);
        pacer_config.abandon_after_s =
            (super::attempt::ABANDON_WINDOW - END_OF_GREETING_ALLOWANCE).as_secs_f64();
        LiveCampaign {
            pacer: Pacer::new(pacer_config, now),
            settings,
            hopper: VecDeque::new(),
            lease_pending: false,
            lease_not_before: None,
            dispatcher: Dispatcher::new(),
            next_decision: Some(now),
            decide_now: true,
            stats: CampaignStats::default(),
            last_decision: None,
            connect_latency: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).ok(),
            agent_wait: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).ok(),
            previews: std::collections::BTreeMap::new(),
            agent_required: VecDeque::new(),
            personal: VecDeque::new(),
            personal_poll_at: now,
            personal_pending: std::collections::BTreeSet::new(),
            unmet_demand: 0,
        }
    }
}

/// One customer call in flight.
pub(super) struct CallEntry {
    pub attempt: Attempt,
    pub campaign: String,
    pub lease: Lease,
    pub cpa: Option<(&'static str, u32)>,
    pub answered_at: Option<Instant>,
    /// A live answer the pacer was told about (it expects Bridged/Abandoned).
    pub live_reported: bool,
    /// The agent reserved for this call from the dial on, who takes it at
    /// the answer: in the preview modes the agent who pressed Call; a
    /// repeat call that needs a guaranteed agent (`repeat_calls`).
    pub reserved_agent: Option<String>,
    /// That agent hears ringback now.
    pub agent_hears_ringback: bool,
    /// The customer's time on hold (`mid_call.rs`).
    pub hold: super::mid_call::OnOffClock,
    /// The call recording's time paused by the agent (`mid_call.rs`).
    pub recording_paused: super::mid_call::OnOffClock,
    /// The agent whose leg the shell last reported the customer spliced
    /// into (a call bridged when the abandon window closed may be
    /// `Bridged` before its splice is done).
    pub spliced_to: Option<String>,
    /// Splices of the customer asked of the shell and not yet reported
    /// (`Input::Spliced` or `ConnectFailed`): while any is under way (a
    /// failed transfer's splice back, the late-splice repair) nothing acts
    /// on the customer — its leg is about to move.
    pub splices_in_flight: u32,
    /// The agent who handed the customer to an outside number and wraps
    /// the call up while it goes on there (`Action::HandedOff`).
    pub wrap_up_by: Option<String>,
    /// That agent's disposition, given before the call ended: written
    /// with the call's record when it does.
    pub wrap_up: Option<WrapUpGiven>,
}

/// What an agent gave as its wrap-up ended (no code: it ran out, or the
/// agent logged out), kept with a call that went on without the agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct WrapUpGiven {
    pub code: Option<String>,
    pub notes: Option<String>,
    pub callback: Option<super::io::Callback>,
    pub do_not_call: bool,
    pub guide_answers: Option<String>,
}

/// A duration in whole milliseconds, for the store's columns.
fn millis(duration: Duration) -> u32 {
    duration.as_millis().min(u128::from(u32::MAX)) as u32
}

pub fn result_name(result: AttemptResult) -> &'static str {
    match result {
        AttemptResult::Connected => "connected",
        AttemptResult::Abandoned => "abandoned",
        AttemptResult::Machine => "machine",
        AttemptResult::VoicemailLeft => "voicemail_left",
        AttemptResult::Fax => "fax",
        AttemptResult::Sit { .. } => "sit",
        AttemptResult::Busy => "busy",
        AttemptResult::NoAnswer => "no_answer",
        AttemptResult::InvalidNumber => "invalid_number",
        AttemptResult::Rejected => "rejected",
        AttemptResult::TrunkRefused => "trunk_refused",
        AttemptResult::Congestion => "congestion",
        AttemptResult::NetworkFailure => "network_failure",
        AttemptResult::DeadAir => "dead_air",
        AttemptResult::HungUpBeforeConnect => "hung_up_before_connect",
        AttemptResult::MediaTimeout => "media_timeout",
    }
}

fn not_live(result: AttemptResult) -> Option<NotLive> {
    match result {
        AttemptResult::Connected
        | AttemptResult::Abandoned
        | AttemptResult::HungUpBeforeConnect => None,
        AttemptResult::Machine
        | AttemptResult::VoicemailLeft
        | AttemptResult::Fax
        | AttemptResult::DeadAir => Some(NotLive::Machine),
        AttemptResult::Busy => Some(NotLive::Busy),
        AttemptResult::NoAnswer => Some(NotLive::NoAnswer),
        _ => Some(NotLive::Failed),
    }
}

/// The contact data of `lease` for its agent's screen: at the zip tone,
/// and for a call the agent is reserved for from the dial (a previewed
/// record, a repeat call, a progressive call reserved at the dial) already
/// at the dial.
pub(super) fn screen_pop(
    agent: &str,
    campaign: &str,
    call: CallId,
    lease: &Lease,
) -> super::dialer::Event {
    super::dialer::Event::ScreenPop {
        agent: agent.to_string(),
        pop: call_pop(campaign, call, lease),
    }
}

/// What the agent's screen shows of `lease`'s customer on `call`.
pub(super) fn call_pop(campaign: &str, call: CallId, lease: &Lease) -> super::dialer::CallPop {
    super::dialer::CallPop {
        campaign: campaign.to_string(),
        call,
        record: lease.external_id.clone(),
        name: lease.name.clone(),
        phone: lease.phone.clone(),
        custom: serde_json::from_str(&lease.custom_json).unwrap_or(serde_json::Value::Null),
        callback: lease.callback.is_some(),
        personal_callback: lease.callback_agent.is_some(),
        repeat_call: lease.agent_required,
        time_zones: lease
            .time_zones
            .split_whitespace()
            .map(String::from)
            .collect(),
    }
}

/// p50, p99 and max of a µs histogram, in ms.
fn percentiles(histogram: Option<&hdrhistogram::Histogram<u64>>) -> Option<[f64; 3]> {
    histogram.filter(|h| !h.is_empty()).map(|h| {
        [
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
        ]
    })
}

/// What a failed call shows of the trunk: a congestion code (with the
/// carrier's Retry-After), no response at all, a refusal of our calls
/// (401/407 our credentials could not answer, 403; 488 our media offer,
/// 400/415/420 our request), or a response.
fn trunk_signal(
    failure: super::attempt::Failure,
    sip_code: Option<u16>,
    retry_after: Option<Duration>,
) -> CallSignal {
    match (failure, sip_code) {
        (super::attempt::Failure::Congestion, _) => CallSignal::Congestion { retry_after },
        (_, None) => CallSignal::NoResponse,
        _ if failure.is_trunk_refusal(sip_code) => CallSignal::Refused,
        (_, Some(_)) => CallSignal::Responded,
    }
}

/// Why the campaign's calls are held back, for agents: only the limits
/// that are not the pacing working as meant.
fn held_back_reason(limit: crate::pacing::Limit) -> Option<&'static str> {
    use crate::pacing::Limit;
    match limit {
        Limit::TrunkLines => Some("max concurrent calls reached: waiting for a free line"),
        Limit::CallsPerSecond => Some("max calls per second reached"),
        Limit::Compliance => Some("abandonment near the cap: dialing held back"),
        Limit::NoPacing | Limit::Progressive | Limit::ColdStart | Limit::AbandonRisk => None,
    }
}

impl LiveCampaign {
    /// What agents are told while calls are held back (see
    /// [`held_back_reason`]).
    pub(super) fn held_back(&self) -> Option<&'static str> {
        self.last_decision
            .and_then(|decision| held_back_reason(decision.reasoning.limit))
    }
}

/// What bound the last pacing decision, for supervisors.
fn limit_reason(limit: crate::pacing::Limit) -> &'static str {
    use crate::pacing::Limit;
    match limit {
        Limit::NoPacing => "preview mode: agents take records themselves",
        Limit::Progressive => "progressive: lines per ready agent",
        Limit::ColdStart => "learning the list: progressive until enough answers",
        Limit::AbandonRisk => "predictive: the next call's abandon risk",
        Limit::Compliance => "abandonment near the cap: held back",
        Limit::TrunkLines => "max concurrent calls reached",
        Limit::CallsPerSecond => "max calls per second reached",
    }
}

/// The pacer's view of an agent state.
pub(super) fn activity(state: &AgentState) -> AgentActivity {
    match state {
        AgentState::LoggedOut => AgentActivity::LoggedOut,
        AgentState::NotReady { .. } => AgentActivity::Paused,
        AgentState::Ready => AgentActivity::Ready,
        AgentState::Previewing | AgentState::Reserved { .. } | AgentState::Connecting { .. } => {
            AgentActivity::Reserved
        }
        AgentState::OnCall { .. } => AgentActivity::OnCall,
        AgentState::WrapUp { .. } => AgentActivity::WrapUp,
    }
}

impl Dialer {
    /// Applies what the shell observed.
    pub fn handle_input(&mut self, input: Input, now: Instant) {
        // A transfer's splice: the customer is the next agent's now, off
        // the hold the transferring agent may have put them on.
        if let Input::Spliced { call, agent } = &input
            && let Some(entry) = self.calls.get_mut(call)
            && let Phase::Transferring { from, to, .. } = entry.attempt.phase()
            && to == agent
            && entry.hold.set(false, now)
        {
            self.events.push_back(Event::Hold {
                agent: from.clone(),
                campaign: entry.campaign.clone(),
                call: *call,
                on: false,
            });
        }
        // Spliced into the phone of the agent the call is for (not a stale
        // splice into another's), which holds its call.
        let phone_held = match &input {
            Input::Spliced { call, agent } => {
                let theirs = self.connecting_to(*call, agent)
                    || self.calls.get(call).and_then(|e| e.attempt.bridged_agent())
                        == Some(agent.as_str());
                theirs && self.agents.get(agent).is_some_and(|a| a.phone_held)
            }
            _ => false,
        };
        if let Input::Spliced { call, .. } | Input::ConnectFailed { call, .. } = &input
            && let Some(entry) = self.calls.get_mut(call)
        {
            entry.splices_in_flight = entry.splices_in_flight.saturating_sub(1);
        }
        if let Input::Spliced { call, agent } = &input
            && let Some(entry) = self.calls.get_mut(call)
        {
            // Spliced into a phone that holds its call (the agent pressed
            // Hold as the customer came): the customer waits on hold, not
            // in silence, until the phone resumes.
            if phone_held && !entry.hold.is_on() {
                entry.hold.set(true, now);
                self.events.push_back(Event::Hold {
                    agent: agent.clone(),
                    campaign: entry.campaign.clone(),
                    call: *call,
                    on: true,
                });
            }
            // Whoever the dialer gave the call to, the customer's audio is
            // in this agent's leg now (what a hold acts on).
            entry.spliced_to = Some(agent.clone());
            // A splice starts a fresh bridge (a late splice moved the
            // customer and it is spliced back): a hold or a paused
            // recording the engine still has goes on in the new one.
            // (Not into an outside line: the hold and the pause were the
            // agent's, and end with its bridge — `Action::HandedOff`.)
            let outside = agent.starts_with(&outside_party(""));
            if entry.hold.is_on() && !outside {
                self.effects.push_back(Effect::Hold {
                    call: *call,
                    agent: agent.clone(),
                    on: true,
                });
            }
            if entry.recording_paused.is_on() && !outside {
                self.effects.push_back(Effect::PauseRecording {
                    call: *call,
                    agent: agent.clone(),
                    paused: true,
                });
            }
        }
        match input {
            Input::Leased {
                campaign,
                leases,
                for_agent,
            } => {
                let running = self
                    .campaigns
                    .get(&campaign)
                    .is_some_and(|c| c.state == RunState::Running);
                let mode = self.campaigns.get(&campaign).map(|c| c.mode);
                let Some(live) = self.live.get_mut(&campaign) else {
                    self.effects.push_back(Effect::ReleaseLeases {
                        leases,
                        how: Release::Unused,
                    });
                    return;
                };
                match &for_agent {
                    Some(agent) => {
                        live.personal_pending.remove(agent);
                    }
                    None => {
                        live.lease_pending = false;
                        if leases.is_empty() {
                            live.lease_not_before = Some(now + EMPTY_HOPPER_RETRY);
                        }
                    }
                }
                if running {
                    // A personal callback waits for its agent; it is never
                    // paced or handed to anyone else.
                    let (personal, regular): (Vec<Lease>, Vec<Lease>) = leases
                        .into_iter()
                        .partition(|lease| lease.callback_agent.is_some());
                    live.personal
                        .extend(personal.into_iter().map(|lease| (lease, now)));
                    // A repeat call that needs a guaranteed agent waits for
                    // one; the pacer never dials it on its own. (In the
                    // preview modes every call has its agent already.)
                    let (repeat, regular): (Vec<Lease>, Vec<Lease>) =
                        regular.into_iter().partition(|lease| {
                            lease.agent_required && !mode.is_some_and(DialMode::is_preview)
                        });
                    live.agent_required
                        .extend(repeat.into_iter().map(|lease| (lease, now)));
                    live.hopper.extend(regular);
                    live.decide_now = true;
                } else if !leases.is_empty() {
                    self.effects.push_back(Effect::ReleaseLeases {
                        leases,
                        how: Release::Unused,
                    });
                }
            }
            Input::AnswerHistory {
                campaign,
                minutes,
                calls,
            } => {
                if let Some(live) = self.live.get_mut(&campaign) {
                    live.pacer.restore_calls(&calls);
                    for minute in minutes {
                        // Before what the clock can express: counted as
                        // now, so kept in the windows longer, never lost.
                        let at = now.checked_sub(minute.ago).unwrap_or(now);
                        live.pacer
                            .restore_history(at, minute.live_answers, minute.abandoned);
                    }
                    live.decide_now = true;
                }
            }
            Input::LeaseFailed {
                campaign,
                for_agent,
            } => {
                if let Some(live) = self.live.get_mut(&campaign) {
                    match for_agent {
                        Some(agent) => {
                            live.personal_pending.remove(&agent);
                        }
                        None => {
                            live.lease_pending = false;
                            live.lease_not_before = Some(now + EMPTY_HOPPER_RETRY);
                        }
                    }
                }
            }
            Input::NotPlaced { call, reason } => {
                tracing::warn!(call, %reason, "call not placed");
                if let Some(entry) = self.calls.remove(&call) {
                    self.events.push_back(Event::CallNotPlaced {
                        agent: entry.reserved_agent.clone(),
                        campaign: entry.campaign.clone(),
                        record: entry.lease.external_id.clone(),
                        reason,
                    });
                    self.not_placed(call, entry, now);
                }
            }
            Input::Ringing { call } => {
                self.trunk_health.on_call(CallSignal::Responded, now);
                self.ringback_to_reserved_agent(call);
                self.with_attempt(call, now, |a, now| a.on_provisional(now))
            }
            Input::Answered { call } => {
                self.trunk_health.on_call(CallSignal::Responded, now);
                if let Some(entry) = self.calls.get_mut(&call) {
                    entry.answered_at = Some(now);
                }
                self.with_attempt(call, now, |a, now| a.on_answered(now));
                self.reserved_call_answered(call);
            }
            Input::Failed {
                call,
                failure,
                sip_code,
                retry_after,
            } => {
                self.trunk_health
                    .on_call(trunk_signal(failure, sip_code, retry_after), now);
                self.with_attempt(call, now, |a, now| {
                    a.on_failed(failure, sip_code, retry_after, now)
                })
            }
            Input::TrunkPing { answered } => self.trunk_health.on_ping(answered),
            Input::TrunkRoute { known } => self.trunk_health.on_route(known),
            Input::RemoteHangUp { call } => {
                self.with_attempt(call, now, |a, now| a.on_remote_hangup(now))
            }
            Input::Cpa {
                call,
                verdict,
                label,
                at_ms,
            } => {
                if let Some(entry) = self.calls.get_mut(&call)
                    && entry.cpa.is_none()
                    && verdict != Verdict::Beep
                {
                    entry.cpa = Some((label, at_ms));
                }
                let verdict = match verdict {
                    Verdict::Human { greeting_ended } => Verdict::Human {
                        greeting_ended: greeting_ended
                            .checked_sub(END_OF_GREETING_ALLOWANCE)
                            .unwrap_or(greeting_ended),
                    },
                    other => other,
                };
                self.with_attempt(call, now, |a, now| a.on_verdict(verdict, now));
                self.machine_frees_reserved_agent(call, now);
            }
            // A report about an agent the call no longer waits for is stale:
            // that agent went away meanwhile and the customer was given to
            // another (whose own report follows).
            Input::Spliced { call, agent } if self.connecting_to(call, &agent) => {
                self.with_attempt(call, now, |a, now| a.on_zip_tone_done(now))
            }
            Input::ConnectFailed { call, agent, cause } if self.connecting_to(call, &agent) => {
                match cause {
                    ConnectFailure::CustomerGone => {
                        // The attempt hangs up as if the media died; the
                        // agent is released.
                        self.with_attempt(call, now, |a, now| a.on_media_timeout(now))
                    }
                    ConnectFailure::AgentPhoneGone => {
                        // The customer is whole: another agent takes it
                        // inside the same window; this one takes no call
                        // until its phone is back.
                        if let Some(a) = self.agents.get_mut(&agent)
                            && a.session.current_call() == Some(call)
                        {
                            let _ = a.session.release(now);
                            let _ = a.session.not_ready(REASON_PHONE_LOST, now);
                        }
                        self.agent_lost(call, now);
                    }
                }
            }
            Input::ConnectFailed { call, agent, .. }
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|e| e.attempt.bridged_agent() == Some(agent.as_str())) =>
            {
                // The window closed before the splice was done and the call
                // was bridged without waiting for it: nobody hears anybody.
                self.with_attempt(call, now, |a, now| a.on_media_timeout(now))
            }
            // An older splice carried out after a newer one (the agent's
            // phone went and came back while the first Connect was under
            // way; its failure was taken for the second's, and the call went
            // to another agent): the customer's audio now goes to `agent`'s
            // leg, not to the agent the call is with. Splice it back — the
            // agent would otherwise talk to silence, and `agent` hear a
            // customer who is not theirs.
            Input::Spliced { call, agent }
                if self
                    .calls
                    .get(&call)
                    .and_then(|e| e.attempt.bridged_agent())
                    .is_some_and(|bridged| bridged != agent) =>
            {
                if let Some(bridged) = self
                    .calls
                    .get(&call)
                    .and_then(|e| e.attempt.bridged_agent())
                    .map(str::to_string)
                {
                    tracing::info!(call, stale = %agent, agent = %bridged, "a late splice moved the customer; splicing it back");
                    self.connect(call, bridged);
                }
            }
            Input::Spliced { call, agent } | Input::ConnectFailed { call, agent, .. } => {
                tracing::debug!(call, %agent, "stale splice report ignored");
            }
            Input::ConsultationFailed { call, number } => {
                if self.consultation_on(call).is_some()
                    && self
                        .calls
                        .get(&call)
                        .is_some_and(|e| e.attempt.consultation_number() == number)
                {
                    self.with_attempt(call, now, |a, _| {
                        a.end_consultation("the consulted agent's phone could not join the call");
                    });
                }
            }
            Input::PromptDone { call } => {
                self.with_attempt(call, now, |a, now| a.on_prompt_done(now))
            }
            Input::OutsideAnswered { call, line } => {
                let wanted = self
                    .calls
                    .get_mut(&call)
                    .is_some_and(|entry| entry.attempt.on_outside_answered(line, now));
                if wanted {
                    self.drain_attempt(call, now);
                } else {
                    // Answered as the transfer was given up, or for a call
                    // that is over: nobody is to be put through.
                    self.effects.push_back(Effect::HangUpOutside { call, line });
                }
            }
            Input::OutsideEnded { call, line, why } => {
                self.with_attempt(call, now, |a, _| a.on_outside_ended(line, why))
            }
            Input::MediaTimeout { call } => {
                self.with_attempt(call, now, |a, now| a.on_media_timeout(now))
            }
            Input::AgentLeg { agent, up } => {
                let bridged_call = self
                    .agents
                    .get(&agent)
                    .and_then(|a| match a.session.state() {
                        AgentState::OnCall { call } => Some(*call),
                        _ => None,
                    });
                // A per-call phone rung for the customer being connected.
                let rung_for = self
                    .agents
                    .get(&agent)
                    .filter(|a| a.per_call)
                    .and_then(|a| match a.session.state() {
                        AgentState::Connecting { call } => Some(*call),
                        _ => None,
                    })
                    .filter(|call| {
                        self.calls
                            .get(call)
                            .is_some_and(|e| e.attempt.agent_phone_ringing())
                    });
                // A per-call phone that answered and hung up again before
                // the customer was spliced in.
                let gone_while_connecting = self
                    .agents
                    .get(&agent)
                    .filter(|a| !up && a.per_call)
                    .and_then(|a| match a.session.state() {
                        AgentState::Connecting { call } => Some(*call),
                        _ => None,
                    })
                    .filter(|call| rung_for != Some(*call));
                if let Err(error) = self.reservation_leg(&agent, up, now) {
                    tracing::warn!(%agent, %error, "reservation leg change for an unknown agent");
                }
                if let Some(call) = gone_while_connecting {
                    // The customer waits for another agent inside the same
                    // window (the splice under way fails or is given back).
                    if let Some(a) = self.agents.get_mut(&agent) {
                        let _ = a.session.release(now);
                        let _ = a.session.not_ready(REASON_PHONE_LOST, now);
                    }
                    self.agent_lost(call, now);
                }
                if !up
                    && let Some(call) = bridged_call
                    && !self.phone_gone_during_outside_transfer(&agent, call, now)
                {
                    // Its consultation completes as a transfer (below).
                    if self.transfer_under_way(call) || self.consulting_call(&agent) == Some(call) {
                        // Hanging up during one's own transfer leaves the
                        // customer to the next agent (a blind transfer
                        // done on the phone): off the call now.
                        if let Some(a) = self.agents.get_mut(&agent) {
                            let _ = a.session.leave_call_without_wrap_up(now);
                        }
                    }
                    self.with_attempt(call, now, |a, now| a.on_agent_hangup(now));
                }
                if let Some(call) = rung_for {
                    self.per_call_phone(&agent, call, up, now);
                }
                if up {
                    self.ringback_to_late_phone(&agent);
                }
            }
            Input::AgentPhoneRegistered { agent } => self.phone_registered(&agent),
            Input::AgentPhoneHold { agent, held } => self.phone_hold(&agent, held, now),
        }
        self.collect_agent_events(now);
        self.after_change(now);
    }

    /// A dial that never reached the trunk (its attempt row could not be
    /// written): no store row, the pacer's line is free again, and the
    /// agent who pressed Call on a previewed record — reserved for this
    /// call from the dial on — is free again too, or it would stay
    /// reserved for a call that never existed.
    fn not_placed(&mut self, call: CallId, entry: CallEntry, now: Instant) {
        if let Some(agent) = entry.reserved_agent.as_deref()
            && let Some(a) = self.agents.get_mut(agent)
            && a.session.current_call() == Some(call)
        {
            let _ = a.session.release(now);
        }
        if let Some(live) = self.live.get_mut(&entry.campaign) {
            let id = crate::pacing::CallId(call);
            live.pacer.on_event(
                PacerEvent::NotLive {
                    call: id,
                    why: NotLive::Failed,
                },
                now,
            );
            live.pacer.on_event(PacerEvent::CallEnded { call: id }, now);
            live.decide_now = true;
        }
    }

    /// The agent reserved for a call (who called a previewed record, or was
    /// reserved for a repeat call) hears it ring (SPEC: "hears the call
    /// progress"): ringback generated on the agent's leg from the first
    /// provisional response until the answer's zip tone.
    pub(super) fn ringback_to_reserved_agent(&mut self, call: CallId) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(agent) = entry.reserved_agent.clone() else {
            return;
        };
        let reserved = self
            .agents
            .get(&agent)
            .is_some_and(|a| a.session.state() == &AgentState::Reserved { call });
        if reserved && !entry.agent_hears_ringback && entry.answered_at.is_none() {
            entry.agent_hears_ringback = true;
            self.effects.push_back(Effect::AgentRingback {
                agent,
                call,
                on: true,
            });
        }
    }

    /// Asks the shell to splice `call`'s customer into `agent`'s leg.
    pub(super) fn connect(&mut self, call: CallId, agent: String) {
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.splices_in_flight += 1;
        }
        self.effects.push_back(Effect::Connect { call, agent });
    }

    /// Whether `call` is being connected to `agent` now.
    fn connecting_to(&self, call: CallId, agent: &str) -> bool {
        self.calls.get(&call).is_some_and(|e| {
            e.attempt.connecting_agent() == Some(agent)
                || e.attempt
                    .connecting_outside()
                    .is_some_and(|number| outside_party(number) == agent)
        })
    }

    /// Trunk lines this node's calls hold: one per customer call, and one
    /// more per outside transfer.
    pub(super) fn trunk_lines_in_use(&self) -> usize {
        self.calls.len()
            + self
                .calls
                .values()
                .filter(|e| e.attempt.holds_outside_line())
                .count()
    }

    /// The agent reserved for `call` is gone before the splice.
    pub(super) fn agent_lost(&mut self, call: CallId, now: Instant) {
        if self.reserved_call_lost_its_agent(call, now) {
            return;
        }
        self.with_attempt(call, now, |a, now| a.on_agent_lost(now));
    }

    /// The per-call phone rung for `call` answered (`up`): the zip tone
    /// and the splice follow. It did not (busy, rejected, unreachable): the
    /// agent is made Not ready and the customer waits for another agent
    /// inside the same 2-second window.
    fn per_call_phone(&mut self, agent: &str, call: CallId, up: bool, now: Instant) {
        if up {
            if let Some(entry) = self.calls.get_mut(&call)
                && entry.attempt.on_agent_phone_answered()
            {
                self.connect(call, agent.to_string());
            }
            return;
        }
        if let Some(a) = self.agents.get_mut(agent) {
            let _ = a.session.release(now);
            let _ = a.session.not_ready(REASON_PHONE_UNANSWERED, now);
        }
        self.agent_lost(call, now);
    }

    /// A per-call phone rung with a previewed call answers while that call
    /// still rings: the agent hears the ringback from now on.
    fn ringback_to_late_phone(&mut self, agent: &str) {
        let Some(call) = self
            .agents
            .get(agent)
            .and_then(|a| match a.session.state() {
                AgentState::Reserved { call } if a.per_call => Some(*call),
                _ => None,
            })
        else {
            return;
        };
        if self
            .calls
            .get(&call)
            .is_some_and(|e| e.agent_hears_ringback && e.answered_at.is_none())
        {
            self.effects.push_back(Effect::AgentRingback {
                agent: agent.to_string(),
                call,
                on: true,
            });
        }
    }

    /// The agent on `call` hung up the customer.
    pub(super) fn agent_hung_up(&mut self, call: CallId, now: Instant) {
        self.with_attempt(call, now, |a, now| a.on_agent_hangup(now));
    }

    /// Whether `call` is still unanswered (dialing, ringing, cancelling).
    pub(super) fn call_unanswered(&self, call: CallId) -> bool {
        self.calls
            .get(&call)
            .is_some_and(|entry| entry.attempt.is_unanswered())
    }

    /// Runs `f` on the attempt, then carries out what it asked for.
    pub(super) fn with_attempt(
        &mut self,
        call: CallId,
        now: Instant,
        f: impl FnOnce(&mut Attempt, Instant),
    ) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        f(&mut entry.attempt, now);
        self.drain_attempt(call, now);
    }

    pub(super) fn drain_attempt(&mut self, call: CallId, now: Instant) {
        loop {
            let Some(entry) = self.calls.get_mut(&call) else {
                return;
            };
            let Some(action) = entry.attempt.poll_action() else {
                return;
            };
            let campaign = entry.campaign.clone();
            let consultation_number = entry.attempt.consultation_number();
            let pacer_call = crate::pacing::CallId(call);
            match action {
                Action::Cancel | Action::Hangup => self.effects.push_back(Effect::HangUp { call }),
                Action::CancelRinging => self.effects.push_back(Effect::CancelRinging { call }),
                Action::RequestAgent => {
                    let own_agent = entry.reserved_agent.clone().filter(|agent| {
                        self.agents
                            .get(agent)
                            .is_some_and(|a| a.session.current_call() == Some(call))
                    });
                    let Some(entry) = self.calls.get_mut(&call) else {
                        return;
                    };
                    let live_since = entry.attempt.waiting_live_since();
                    let deadline = entry.attempt.poll_timeout().unwrap_or(now);
                    // Once per call: a customer asking again for an agent
                    // (the one reserved went away) is the same live answer,
                    // and counting it twice would make the abandonment
                    // rates read low.
                    let first_report = live_since.is_some() && !entry.live_reported;
                    if first_report {
                        self.effects.push_back(Effect::LiveAnswer { call });
                        entry.live_reported = true;
                    }
                    if let Some(live) = self.live.get_mut(&campaign) {
                        if first_report {
                            live.pacer
                                .on_event(PacerEvent::LiveAnswer { call: pacer_call }, now);
                            live.stats.live_answers += 1;
                        }
                        if own_agent.is_none() {
                            live.dispatcher.enqueue(call, deadline);
                        }
                        live.decide_now = true;
                    }
                    match own_agent {
                        // A previewed call goes to the agent who called it.
                        Some(agent) => {
                            if let Some(entry) = self.calls.get_mut(&call) {
                                entry.attempt.on_agent_assigned(&agent, now);
                            }
                        }
                        None => self.dispatch(&campaign, now),
                    }
                }
                Action::WithdrawAgentRequest => {
                    if let Some(live) = self.live.get_mut(&campaign) {
                        live.dispatcher.withdraw(call);
                    }
                }
                Action::PlayZipTone { agent } => {
                    if let Some(a) = self.agents.get_mut(&agent) {
                        let _ = a.session.connecting(now);
                    }
                    self.events
                        .push_back(screen_pop(&agent, &campaign, call, &entry.lease));
                    let ring_first = self
                        .agents
                        .get(&agent)
                        .is_some_and(|a| a.per_call && !a.session.has_leg());
                    if ring_first {
                        // A per-call phone: ring it; the zip tone and the
                        // splice wait for its answer (`Input::AgentLeg`).
                        entry.attempt.on_agent_phone_ringing();
                        self.effects.push_back(Effect::CallAgent { agent });
                    } else {
                        self.connect(call, agent);
                    }
                }
                Action::Bridge { agent } => {
                    if let Some(a) = self.agents.get_mut(&agent) {
                        let _ = a.session.bridged(now);
                    }
                    self.effects.push_back(Effect::Bridged {
                        call,
                        agent: agent.clone(),
                    });
                    let latency = entry.attempt.connect_latency_so_far(now);
                    let wait = entry.attempt.agent_wait();
                    let live_reported = entry.live_reported;
                    if let Some(live) = self.live.get_mut(&campaign) {
                        if live_reported {
                            live.pacer
                                .on_event(PacerEvent::Bridged { call: pacer_call }, now);
                        }
                        if let (Some(latency), Some(histogram)) =
                            (latency, live.connect_latency.as_mut())
                        {
                            let _ = histogram.record(latency.as_micros().max(1) as u64);
                        }
                        if let (Some(wait), Some(histogram)) = (wait, live.agent_wait.as_mut()) {
                            let _ = histogram.record(wait.as_micros().max(1) as u64);
                        }
                    }
                }
                Action::Transferred { from, to } => {
                    if let Some(a) = self.agents.get_mut(&to) {
                        let _ = a.session.bridged(now);
                    }
                    if let Some(a) = self.agents.get_mut(&from)
                        && a.session.current_call() == Some(call)
                    {
                        // An agent rung per call keeps that phone call: the
                        // next customer comes into it without ringing (a
                        // hang-up now would race the next customer's
                        // splice into it).
                        let _ = a.session.leave_call_without_wrap_up(now);
                    }
                    // The store's row names the agent the call is with.
                    self.effects.push_back(Effect::Bridged {
                        call,
                        agent: to.clone(),
                    });
                    tracing::info!(call, %from, %to, "transfer done");
                    self.events.push_back(Event::Transfer {
                        agent: from,
                        to,
                        campaign,
                        call,
                        step: "done",
                        reason: None,
                    });
                }
                Action::TransferFailed { from, to }
                    if self
                        .agents
                        .get(&from)
                        .is_none_or(|a| a.session.current_call() != Some(call)) =>
                {
                    // The agent who transferred has hung up meanwhile:
                    // nobody is left to take the customer back.
                    tracing::info!(call, %from, %to, "transfer failed after its agent left: hanging up");
                    self.events.push_back(Event::Transfer {
                        agent: from.clone(),
                        reason: Some(format!(
                            "agent `{to}` could not take the call, and `{from}` had left it: the call ended"
                        )),
                        to,
                        campaign,
                        call,
                        step: "failed",
                    });
                    if let Some(entry) = self.calls.get_mut(&call) {
                        entry.attempt.on_agent_hangup(now);
                    }
                }
                Action::TransferFailed { from, to } => {
                    // The customer may have left `from`'s leg already: it
                    // is spliced back, and waits on hold for `from` to
                    // resume (or try another agent).
                    let Some(entry) = self.calls.get_mut(&call) else {
                        return;
                    };
                    let held = entry.hold.set(true, now);
                    self.connect(call, from.clone());
                    if held {
                        self.events.push_back(Event::Hold {
                            agent: from.clone(),
                            campaign: campaign.clone(),
                            call,
                            on: true,
                        });
                    }
                    tracing::info!(call, %from, %to, "transfer failed: the customer goes back");
                    self.events.push_back(Event::Transfer {
                        agent: from,
                        reason: Some(format!(
                            "agent `{to}` could not take the call; the customer is back with you, on hold"
                        )),
                        to,
                        campaign,
                        call,
                        step: "failed",
                    });
                }
                Action::TransferCancelled { from, to, why } => {
                    self.release_for(&to, call, now);
                    tracing::info!(call, %from, %to, why, "transfer cancelled");
                    self.events.push_back(Event::Transfer {
                        agent: from,
                        to,
                        campaign,
                        call,
                        step: "failed",
                        reason: Some(why.to_string()),
                    });
                }
                Action::ConsultationOver {
                    from,
                    to,
                    release,
                    why,
                } => {
                    self.effects.push_back(Effect::Consult {
                        call,
                        number: consultation_number,
                        from: from.clone(),
                        to: to.clone(),
                        on: false,
                    });
                    if release {
                        self.release_for(&to, call, now);
                        tracing::info!(call, %from, %to, why, "consultation ended");
                        self.events.push_back(Event::Transfer {
                            agent: from,
                            to,
                            campaign,
                            call,
                            step: "consultation_ended",
                            reason: why.map(str::to_string),
                        });
                    }
                }
                Action::DialOutside { number, line } => {
                    tracing::info!(call, %number, line, "dialing the outside number of a transfer");
                    self.effects
                        .push_back(Effect::DialOutside { call, number, line });
                }
                Action::ConnectOutside { number } => self.connect(call, outside_party(&number)),
                Action::HangUpOutside { line } => {
                    self.effects.push_back(Effect::HangUpOutside { call, line })
                }
                Action::HandedOff { from, number } => {
                    self.handed_off(call, from, number, campaign, now)
                }
                Action::OutsideTransferFailed {
                    from,
                    number,
                    why,
                    splice_back,
                } => self.outside_transfer_failed(call, from, number, why, splice_back, now),
                Action::ReleaseAgent { agent } => {
                    if let Some(a) = self.agents.get_mut(&agent) {
                        let _ = a.session.release(now);
                        if a.per_call && !a.session.has_leg() {
                            // Its phone may still be ringing for this call.
                            // (One that answered is kept for the next
                            // customer: hanging it up as the agent goes
                            // Ready would race that customer's splice.)
                            self.effects.push_back(Effect::HangUpAgent { agent });
                        }
                    }
                }
                Action::Play(prompt) => {
                    if prompt == Prompt::Abandon
                        && let Some(live) = self.live.get_mut(&campaign)
                    {
                        live.pacer
                            .on_event(PacerEvent::Abandoned { call: pacer_call }, now);
                        live.stats.abandoned += 1;
                        entry.live_reported = false;
                    }
                    self.effects.push_back(Effect::Play { call, prompt });
                }
                Action::Finished(outcome) => {
                    let Some(entry) = self.calls.remove(&call) else {
                        return;
                    };
                    self.finished(call, entry, outcome, now);
                    return;
                }
            }
        }
    }

    fn finished(
        &mut self,
        call: CallId,
        entry: CallEntry,
        outcome: super::attempt::Outcome,
        now: Instant,
    ) {
        let pacer_call = crate::pacing::CallId(call);
        self.effects.push_back(Effect::CallOver { call });
        let handed_off_by = entry.wrap_up_by.clone();
        let wrap_up_given = entry.wrap_up.clone();
        if let Some(live) = self.live.get_mut(&entry.campaign) {
            if outcome.result == AttemptResult::Abandoned && entry.live_reported {
                // Abandoned without a prompt (none configured).
                live.pacer
                    .on_event(PacerEvent::Abandoned { call: pacer_call }, now);
                live.stats.abandoned += 1;
            }
            if let Some(why) = not_live(outcome.result) {
                live.pacer.on_event(
                    PacerEvent::NotLive {
                        call: pacer_call,
                        why,
                    },
                    now,
                );
                if entry.live_reported && why == NotLive::Machine {
                    // A "human" that turned out a machine (its beep, the
                    // agent's voicemail drop) or a fax.
                    live.stats.live_answers = live.stats.live_answers.saturating_sub(1);
                }
            }
            live.pacer
                .on_event(PacerEvent::CallEnded { call: pacer_call }, now);
            live.dispatcher.withdraw(call);
            *live
                .stats
                .outcomes
                .entry(result_name(outcome.result))
                .or_insert(0) += 1;
            live.decide_now = true;
        }
        let talk_ms = entry.answered_at.map(|at| {
            now.saturating_duration_since(at)
                .as_millis()
                .min(u32::MAX as u128) as u32
        });
        let mut record = AttemptRecord {
            call,
            campaign: entry.campaign,
            lease: entry.lease,
            cpa_verdict: entry.cpa.map(|(label, _)| label),
            cpa_ms: entry.cpa.map(|(_, ms)| ms),
            disposition: None,
            notes: None,
            callback: None,
            do_not_call: false,
            guide_answers: None,
            talk_ms,
            // Hold and paused recording are the agent's: for every call
            // spliced to one (a live person, a machine given to an agent,
            // a call a background verdict ended), none for the others.
            hold_ms: entry
                .spliced_to
                .is_some()
                .then(|| millis(entry.hold.total(now))),
            recording_paused_ms: entry
                .spliced_to
                .is_some()
                .then(|| millis(entry.recording_paused.total(now))),
            outcome,
        };
        if record.outcome.agent.is_none() {
            // A previewed call is its agent's even when it failed.
            record.outcome.agent = entry.reserved_agent.clone();
            if entry.agent_hears_ringback
                && let Some(agent) = entry.reserved_agent.clone()
            {
                // Never connected: the ringback stops with the call.
                self.effects.push_back(Effect::AgentRingback {
                    agent,
                    call: record.call,
                    on: false,
                });
            }
        }
        // Handed to an outside number: its agent wrapped it up (or is
        // wrapping it up) meanwhile.
        if let Some(agent) = handed_off_by {
            if let Some(given) = wrap_up_given {
                record.fill_wrap_up(given);
            } else if self
                .agents
                .get(&agent)
                .is_some_and(|a| a.session.state() == &(AgentState::WrapUp { call }))
            {
                self.awaiting_disposition.insert(agent, record);
                return;
            }
            self.effects.push_back(Effect::Record(Box::new(record)));
            return;
        }
        // The agent who had this call moves on: wrap-up after a talk, back
        // to ready when the customer went away before the splice (or a
        // previewed call failed: the agent takes the next record).
        if let Some(agent) = record.outcome.agent.clone()
            && let Some(a) = self.agents.get_mut(&agent)
            && a.session.current_call() == Some(call)
        {
            if a.per_call {
                // The customer is gone: so is the call to the agent's phone.
                self.effects.push_back(Effect::HangUpAgent {
                    agent: agent.clone(),
                });
            }
            let _ = a.session.call_ended(now);
            let wrap_up_timer = self
                .campaigns
                .get(&record.campaign)
                .and_then(|c| c.config.wrap_up_timeout_s);
            if let Some(seconds) = wrap_up_timer {
                a.session.limit_wrap_up(Duration::from_secs(seconds), now);
            }
            if matches!(a.session.state(), AgentState::WrapUp { .. }) {
                // Written with the agent's disposition when wrap-up ends.
                self.awaiting_disposition.insert(agent, record);
                return;
            }
        }
        if record.outcome.result == AttemptResult::Abandoned {
            record.disposition = Some("DROP".into());
        }
        self.effects.push_back(Effect::Record(Box::new(record)));
    }

    /// Gives free agents of `campaign` to its waiting answers.
    fn dispatch(&mut self, campaign: &str, now: Instant) {
        loop {
            let Some(agent) = self.longest_idle_ready_agent(campaign, now) else {
                return;
            };
            let Some(live) = self.live.get_mut(campaign) else {
                return;
            };
            let Some(call) = live.dispatcher.next_for_free_agent(now) else {
                return;
            };
            let Some(entry) = self.calls.get_mut(&call) else {
                continue;
            };
            let Some(a) = self.agents.get_mut(&agent) else {
                return;
            };
            if a.session.reserve(call, now).is_err() {
                return;
            }
            if !entry.attempt.on_agent_assigned(&agent, now) {
                let _ = a.session.release(now);
                continue;
            }
            self.drain_attempt(call, now);
        }
    }

    /// Whether `agent` takes part in `campaign` now: assigned to it and,
    /// where the campaign asks agents to confirm joining, joined.
    pub(super) fn takes_part(&self, agent: &super::dialer::AgentEntry, campaign: &str) -> bool {
        agent.campaigns.iter().any(|c| c == campaign)
            && !agent.left.contains(campaign)
            && self
                .campaigns
                .get(campaign)
                .is_some_and(|c| !c.config.agents_confirm_join || agent.joined.contains(campaign))
    }

    /// The Ready agent of `campaign` idle the longest, among those its
    /// pacing counts first (an agent shared with another campaign that
    /// counts it comes only when none is free; `agent_share.rs`).
    pub(super) fn longest_idle_ready_agent(&self, campaign: &str, now: Instant) -> Option<String> {
        self.agents
            .iter()
            .filter(|(_, a)| a.session.is_ready() && self.takes_part(a, campaign))
            .max_by_key(|(_, a)| (Self::counts(a, campaign), a.session.time_in_state(now)))
            .map(|(id, _)| id.clone())
    }

    /// The Ready agent idle the longest among those `campaign`'s pacing
    /// counts: whom a call it dials for an agent, or a record it pushes,
    /// may take.
    pub(super) fn longest_idle_counted_agent(
        &self,
        campaign: &str,
        now: Instant,
    ) -> Option<String> {
        self.agents
            .iter()
            .filter(|(_, a)| {
                a.session.is_ready() && self.takes_part(a, campaign) && Self::counts(a, campaign)
            })
            .max_by_key(|(_, a)| a.session.time_in_state(now))
            .map(|(id, _)| id.clone())
    }

    /// An agent changed state: the pacers of its campaigns hear it, and a
    /// newly ready agent takes the waiting answer closest to its deadline.
    pub(super) fn agent_changed(&mut self, agent: &str, now: Instant) {
        self.share_agent(agent);
        let Some(entry) = self.agents.get(agent) else {
            return;
        };
        let Some(&id) = self.agent_ids.get(agent) else {
            return;
        };
        let ready = entry.session.is_ready();
        let campaigns: Vec<(String, bool)> = entry
            .campaigns
            .iter()
            .map(|c| (c.clone(), self.takes_part(entry, c)))
            .collect();
        let counted_by = |campaign: &str| Self::counts(entry, campaign);
        let event = |counted: bool| PacerEvent::Agent {
            agent: id,
            // An agent yet to confirm joining is no agent of the campaign,
            // nor is one shared with the campaign that counts it.
            activity: if counted {
                activity(entry.session.state())
            } else {
                AgentActivity::LoggedOut
            },
            leaving: entry.session.logout_pending(),
            // The state's start, not now: a shared agent moved to a
            // campaign mid-call is that far into its call.
            since: now
                .checked_sub(entry.session.time_in_state(now))
                .unwrap_or(now),
        };
        let events: Vec<(String, bool, PacerEvent)> = campaigns
            .into_iter()
            .map(|(c, takes_part)| {
                let counted = takes_part && counted_by(&c);
                (c, takes_part, event(counted))
            })
            .collect();
        for (campaign, _, event) in &events {
            if let Some(live) = self.live.get_mut(campaign) {
                live.pacer.on_event(*event, now);
                live.decide_now = true;
            }
        }
        if ready {
            // An agent of several campaigns goes first to the customer
            // closest to being abandoned, whichever campaign called them.
            let mut urgent: Vec<(Option<Instant>, String)> = events
                .iter()
                .filter(|(_, takes_part, _)| *takes_part)
                .map(|(campaign, _, _)| {
                    let deadline = self
                        .live
                        .get(campaign)
                        .and_then(|live| live.dispatcher.next_deadline(now));
                    (deadline, campaign.clone())
                })
                .collect();
            urgent.sort_by_key(|(deadline, _)| (deadline.is_none(), *deadline));
            for (_, campaign) in urgent {
                self.dispatch(&campaign, now);
            }
        }
    }

    /// Fires due attempt deadlines and pacing decisions.
    pub(super) fn calls_timeout(&mut self, now: Instant) {
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, e)| e.attempt.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for call in due {
            self.with_attempt(call, now, |a, now| a.handle_timeout(now));
        }
    }

    /// The live state of the campaigns running now.
    pub(super) fn running_campaigns(&self) -> impl Iterator<Item = &LiveCampaign> {
        self.live
            .iter()
            .filter(|(name, _)| {
                self.campaigns
                    .get(*name)
                    .is_some_and(|c| c.state == RunState::Running)
            })
            .map(|(_, live)| live)
    }

    pub(super) fn calls_poll_timeout(&self) -> Option<Instant> {
        let attempts = self.calls.values().filter_map(|e| e.attempt.poll_timeout());
        let pacing = self
            .running_campaigns()
            .flat_map(|live| {
                [
                    live.next_decision,
                    live.lease_not_before.filter(|_| live.hopper.is_empty()),
                    Some(live.personal_poll_at),
                ]
            })
            .flatten();
        attempts.chain(pacing).min()
    }

    /// After anything changed: repeat calls take the agents they need
    /// first, then every running campaign is paced.
    pub(super) fn after_change(&mut self, now: Instant) {
        self.dial_repeat_calls(now);
        self.pace_running_campaigns(now);
        let names: Vec<String> = self.live.keys().cloned().collect();
        for name in names {
            let running = self
                .campaigns
                .get(&name)
                .is_some_and(|c| c.state == RunState::Running);
            if running {
                self.poll_personal_callbacks(&name, now);
                self.deliver_personal_callbacks(&name, now);
                let push = self
                    .campaigns
                    .get(&name)
                    .is_some_and(|c| c.mode == crate::config::DialMode::PushPreview);
                if push {
                    self.push_previews(&name, now);
                }
            }
        }
    }

    /// Dials `lease`; with `reserved_agent` (a previewed record's, a
    /// repeat call's, a progressive call's reserved at the dial) taken by
    /// that agent — at the answer with `connect_at_answer`, else at the
    /// analyser's human verdict.
    pub(super) fn dial(
        &mut self,
        campaign: &str,
        lease: Lease,
        reserved_agent: Option<String>,
        connect_at_answer: bool,
        caller_id: Option<String>,
        now: Instant,
    ) -> Option<CallId> {
        let live = self.live.get_mut(campaign)?;
        self.next_call += 1;
        let call = self.next_call;
        let pacer_call = crate::pacing::CallId(call);
        live.pacer.on_event(
            if reserved_agent.is_some() {
                PacerEvent::CallDialedWithAgent { call: pacer_call }
            } else {
                PacerEvent::CallDialed { call: pacer_call }
            },
            now,
        );
        live.stats.dials += 1;
        self.dial_rate.record(now);
        self.trunk_health.on_dial(now);
        let mut settings = live.settings.clone();
        // The agent of a previewed call takes it at the answer.
        settings.connect_first |= reserved_agent.is_some() && connect_at_answer;
        let attempt = Attempt::new(call, settings, now);
        self.calls.insert(
            call,
            CallEntry {
                attempt,
                campaign: campaign.to_string(),
                lease: lease.clone(),
                cpa: None,
                answered_at: None,
                live_reported: false,
                reserved_agent,
                agent_hears_ringback: false,
                hold: Default::default(),
                recording_paused: Default::default(),
                spliced_to: None,
                splices_in_flight: 0,
                wrap_up_by: None,
                wrap_up: None,
            },
        );
        self.effects.push_back(Effect::Dial {
            call,
            campaign: campaign.to_string(),
            lease: Box::new(lease),
            caller_id,
        });
        Some(call)
    }

    /// Dials `lease` as call `call` whatever the pacer says (tests).
    #[cfg(test)]
    pub(super) fn test_dial(&mut self, campaign: &str, lease: Lease, call: CallId, now: Instant) {
        self.next_call = call - 1;
        self.dial(campaign, lease, None, false, None, now);
    }

    /// The campaign stopped or paused: leased records go back.
    pub(super) fn release_hopper(&mut self, campaign: &str) {
        if let Some(live) = self.live.get_mut(campaign) {
            let mut leases: Vec<Lease> = live.hopper.drain(..).collect();
            leases.extend(live.personal.drain(..).map(|(lease, _)| lease));
            leases.extend(live.agent_required.drain(..).map(|(lease, _)| lease));
            if !leases.is_empty() {
                self.effects.push_back(Effect::ReleaseLeases {
                    leases,
                    how: Release::Unused,
                });
            }
        }
    }

    /// Shutdown: no campaign dials any more; calls in flight go on.
    pub fn stop_dialing(&mut self, now: Instant) {
        let running: Vec<String> = self
            .campaigns
            .iter()
            .filter(|(_, c)| c.state == RunState::Running)
            .map(|(name, _)| name.clone())
            .collect();
        for name in running {
            let _ = self.handle_command(
                super::dialer::Command::Campaign {
                    name,
                    command: super::campaign_run::RunCommand::Pause,
                },
                now,
            );
        }
    }

    /// Calls in flight (all campaigns).
    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
    }

    /// Hangs up every call in flight (shutdown): each attempt ends as its
    /// phase dictates (ringing → cancelled, bridged → connected …).
    pub fn hang_up_all(&mut self, now: Instant) {
        let calls: Vec<CallId> = self.calls.keys().copied().collect();
        for call in calls {
            let Some(entry) = self.calls.get_mut(&call) else {
                continue;
            };
            match entry.attempt.phase() {
                Phase::Dialing | Phase::Ringing | Phase::Cancelling { .. } => {
                    entry
                        .attempt
                        .on_failed(super::attempt::Failure::NoAnswer, None, None, now);
                    self.effects.push_back(Effect::HangUp { call });
                }
                Phase::Bridged { .. } => entry.attempt.on_agent_hangup(now),
                _ => {
                    entry.attempt.on_media_timeout(now);
                }
            }
            self.drain_attempt(call, now);
        }
        // Connected calls still in wrap-up are written now, without a code.
        let pending: Vec<String> = self.awaiting_disposition.keys().cloned().collect();
        for agent in pending {
            self.flush_disposition(&agent, WrapUpGiven::default());
        }
    }

    /// Writes the connected call `agent` wrapped up, with its disposition.
    /// (A call the agent handed to an outside number that is still going
    /// on keeps it until it ends.)
    pub(super) fn flush_disposition(&mut self, agent: &str, given: WrapUpGiven) {
        if let Some(mut record) = self.awaiting_disposition.remove(agent) {
            record.fill_wrap_up(given);
            self.effects.push_back(Effect::Record(Box::new(record)));
        } else {
            self.keep_wrap_up_with_call(agent, given);
        }
    }

    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// Live figures of one campaign.
    pub fn campaign_stats(&self, campaign: &str, now: Instant) -> Option<CampaignStats> {
        let live = self.live.get(campaign)?;
        let mut stats = live.stats.clone();
        // Trunk lines: an outside transfer's line counts too.
        stats.lines_in_use = self
            .calls
            .values()
            .filter(|e| e.campaign == campaign)
            .map(|e| 1 + usize::from(e.attempt.holds_outside_line()))
            .sum();
        stats.answers_waiting_for_agent = live.dispatcher.waiting();
        stats.records_buffered = live.hopper.len();
        stats.repeat_calls_waiting = live.agent_required.len();
        if let Some(decision) = live.last_decision {
            stats.abandon_rate_us = decision.reasoning.abandon_rate_us;
            stats.abandon_rate_uk = decision.reasoning.abandon_rate_uk;
            stats.limit = serde_json::to_value(decision.reasoning.limit)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            stats.limit_reason = Some(limit_reason(decision.reasoning.limit));
            stats.reasoning = Some(decision.reasoning);
        }
        let (talk, logged_in) = self
            .agents
            .values()
            .filter(|a| a.campaigns.iter().any(|c| c == campaign))
            .map(|a| {
                let times = a.session.times(now);
                (times.talking, times.logged_in())
            })
            .fold((Duration::ZERO, Duration::ZERO), |(t, l), (a, b)| {
                (t + a, l + b)
            });
        if !logged_in.is_zero() {
            stats.occupancy = talk.as_secs_f64() / logged_in.as_secs_f64();
        }
        stats.agent_wait_ms = percentiles(live.agent_wait.as_ref());
        stats.connect_latency_ms =
            live.connect_latency
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| {
                    [
                        h.value_at_quantile(0.5) as f64 / 1000.0,
                        h.value_at_quantile(0.99) as f64 / 1000.0,
                        h.max() as f64 / 1000.0,
                    ]
                });
        Some(stats)
    }

    /// The pacer id of every agent, in a stable order.
    pub(super) fn pacer_agent_ids(agents: impl Iterator<Item = String>) -> Vec<(String, AgentId)> {
        agents
            .enumerate()
            .map(|(i, id)| (id, AgentId(u32::try_from(i).unwrap_or(u32::MAX))))
            .collect()
    }
}
