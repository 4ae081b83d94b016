//! The sans-IO pacer: for one campaign, how many calls to start now.
//!
//! The engine (or the simulator) reports every event with the current
//! [`Instant`] through [`Pacer::on_event`] and asks [`Pacer::decide`] after
//! each batch of events (and on a periodic tick, see
//! [`Decision::next_decision_within`]). The pacer keeps its own view of the
//! campaign (agents by state with time in state, calls ringing with their
//! age, live answers waiting for an agent, lines in use), learns the
//! campaign's statistics online ([`estimate`]) and keeps the abandonment
//! accounting in the regulatory windows ([`ledger`]). No clock, no I/O.
//!
//! Predictive mode, in one paragraph: for each horizon time t it predicts the
//! live answers arriving by t (queued ones, ringing calls by age, and k new
//! calls) and the agents free by t + 2 s (ready ones, busy ones by their
//! residual talk/wrap time, learned with the running ones as censored
//! samples); an answer is abandoned when the answers before it already use
//! up the agents free by its deadline. It dials the largest k whose marginal
//! call has an abandon probability under a threshold λ. λ is a closed loop:
//! an integral part (each live answer raises it a little, each abandon lowers
//! it, balancing exactly at the set-point, 2.5 % by default), a proportional
//! part on the window's rate that can only tighten, and a burst cut. The
//! room left under the hard cap (in abandons, in both windows, CPA false
//! positives budgeted in the UK one) scales λ down as it shrinks, with more
//! in reserve early in the window and for large teams (whose abandons come
//! in clusters); with no room beyond the reserve pacing is progressive and
//! the loop does not wind up. While few answers have been seen the loop aims
//! lower than the set-point (by the running rate's noise, `loop_set_point`),
//! and a last bound cuts the calls while a streak of answers that alone
//! would spend the room is not unlikely enough (`cluster_tail_too_likely`).
//! Until enough answers have been seen it paces progressively.

pub mod dial_rate;
pub mod estimate;
pub mod ledger;
pub mod trunk_share;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use estimate::{AGE_BIN_S, AGE_BINS, DurationModel, HORIZON_BINS, OutcomeModel};
use ledger::AbandonLedger;

/// An agent, as the engine names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub u32);

/// One call attempt, as the engine names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// What an agent is doing, as far as pacing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentActivity {
    /// Waiting for a call.
    Ready,
    /// Held for a preview or a call being set up; not counted.
    Reserved,
    OnCall,
    WrapUp,
    Paused,
    LoggedOut,
}

/// Why a call that was dialed is not a live answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotLive {
    /// CPA said machine (this includes CPA false positives, which the pacer
    /// cannot see; it budgets them with `amd_fp_estimate`).
    Machine,
    Busy,
    NoAnswer,
    Failed,
}

/// Everything the pacer hears about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PacerEvent {
    /// An agent changed activity. `leaving`: it will pause or log out when
    /// this call's wrap-up ends, so it is not about to be free. `since`:
    /// when it entered `activity` — the event's own instant, except for an
    /// agent the campaign starts counting mid-call (an agent shared by
    /// campaigns, moved to this one), whose call began before.
    Agent {
        agent: AgentId,
        activity: AgentActivity,
        leaving: bool,
        since: Instant,
    },
    /// A call was started (it holds a trunk line until [`PacerEvent::CallEnded`]).
    CallDialed { call: CallId },
    /// A call was started with its own agent reserved from the dial (a
    /// previewed record, a repeat call that needs a guaranteed agent): it
    /// holds a line, and its live answer goes to that agent, not to one
    /// the pacer plans for.
    CallDialedWithAgent { call: CallId },
    /// A live person finished the greeting; the 2-second clock runs.
    LiveAnswer { call: CallId },
    /// The live answer reached an agent.
    Bridged { call: CallId },
    /// The live answer found no agent within 2 s.
    Abandoned { call: CallId },
    /// The call resolved without a live person.
    NotLive { call: CallId, why: NotLive },
    /// The call's trunk line is free again.
    CallEnded { call: CallId },
    /// Nothing happened; time passed.
    Tick,
}

/// How the campaign paces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum PacingMode {
    /// One record per agent on request: the pacer never dials.
    Preview,
    /// One record pushed per ready agent: the pacer never dials.
    PushPreview,
    /// `lines_per_agent` lines per ready agent (1.0 never abandons).
    Progressive { lines_per_agent: f64 },
    /// Predictive: steer the realised abandonment to `set_point`, never above `cap`.
    Predictive { set_point: f64, cap: f64 },
}

/// Static settings of one campaign's pacer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PacerConfig {
    pub mode: PacingMode,
    /// Trunk lines this campaign may hold at once.
    pub max_lines: u32,
    /// Calls started per second at most (`None`: no limit).
    pub max_calls_per_second: Option<f64>,
    /// The 2-second rule.
    pub abandon_after_s: f64,
    /// Expected fraction of live persons CPA takes for machines (UK rate).
    pub amd_fp_estimate: f64,
}

impl PacerConfig {
    /// Predictive pacing at the defaults: set-point 2.5 % under a 3 % cap.
    pub fn predictive(max_lines: u32) -> Self {
        Self {
            mode: PacingMode::Predictive {
                set_point: 0.025,
                cap: 0.03,
            },
            max_lines,
            max_calls_per_second: None,
            abandon_after_s: 2.0,
            amd_fp_estimate: 0.0,
        }
    }
}

impl PacerConfig {
    /// The pacer settings of a configured campaign. `abandon_target` is the
    /// hard cap; predictive pacing aims at five sixths of it (2.5 % under 3 %).
    pub fn from_campaign(
        campaign: &crate::config::CampaignConfig,
        trunk: &crate::config::TrunkConfig,
    ) -> Self {
        use crate::config::DialMode;
        let cap = campaign.abandon_target;
        let mode = match campaign.mode {
            DialMode::Preview => PacingMode::Preview,
            DialMode::PushPreview => PacingMode::PushPreview,
            DialMode::Progressive => PacingMode::Progressive {
                lines_per_agent: campaign.lines_per_agent,
            },
            DialMode::Predictive => PacingMode::Predictive {
                set_point: cap * 5.0 / 6.0,
                cap,
            },
        };
        Self {
            mode,
            max_lines: trunk.max_concurrent_calls,
            max_calls_per_second: Some(trunk.max_calls_per_second),
            abandon_after_s: 2.0,
            amd_fp_estimate: campaign.amd_fp_estimate,
        }
    }
}

/// Checks a campaign's `amd_fp_estimate`: a fraction below 3 % (at 3 % the
/// false positives alone would use the whole UK allowance).
pub fn check_amd_fp_estimate(value: f64) -> Result<(), String> {
    if value.is_finite() && (0.0..0.03).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{value} is out of range; give the expected fraction of live persons CPA takes \
             for machines, at least 0 and below 0.03 (0.02 means 2 %)"
        ))
    }
}

/// What bound this decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Preview modes: the engine hands out records itself.
    NoPacing,
    /// Progressive pacing (by mode, or during the cold start).
    Progressive,
    /// Still learning: progressive until enough answers have been seen.
    ColdStart,
    /// The marginal call's abandon risk reached the threshold.
    AbandonRisk,
    /// The compliance guard (hard cap in the windows) bound.
    Compliance,
    /// All trunk lines are in use.
    TrunkLines,
    /// The calls-per-second limit.
    CallsPerSecond,
}

/// The numbers behind a decision, for the supervisor view and logs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Reasoning {
    pub limit: Limit,
    /// Calls the mode asked for before the trunk's limits (lines, calls
    /// per second) cut them to `Decision::dial`: the node's demand when
    /// the nodes sharing a trunk divide its lines.
    pub wanted: u32,
    pub ready_agents: u32,
    pub busy_agents: u32,
    pub calls_ringing: u32,
    pub answers_waiting: u32,
    pub lines_in_use: u32,
    /// Agents expected free within the horizon (ready ones included).
    pub agents_free_soon: f64,
    /// Live answers expected within the horizon, new calls included.
    pub expected_answers: f64,
    /// Abandons expected within the horizon, new calls included.
    pub expected_abandons: f64,
    /// Probability that the last call dialed is abandoned if it is live.
    pub marginal_risk: f64,
    /// The threshold the marginal risk is held under.
    pub risk_threshold: f64,
    /// Learned fraction of dials that are live answers.
    pub live_rate: f64,
    pub abandon_rate_us: f64,
    pub abandon_rate_uk: f64,
}

/// One call of an earlier run, for [`Pacer::restore_calls`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestoredCall {
    /// From the dial until the call resolved: a person's answer (the
    /// analyser's human verdict), or anything else (machine, busy, no
    /// answer, failure).
    pub ring_s: f64,
    /// A person answered (a human verdict, or an abandoned call).
    pub live: bool,
    /// How long the agent talked, when the call reached one.
    pub talk_s: Option<f64>,
}

/// The pacer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Decision {
    /// Calls to start now.
    pub dial: u32,
    /// Ask again within this long even if nothing happens.
    #[serde(skip)]
    pub next_decision_within: Duration,
    pub reasoning: Reasoning,
}

/// Live answers seen before predictive pacing starts.
const COLD_START_ANSWERS: u64 = 20;
/// Resolved calls seen before predictive pacing starts.
const COLD_START_RESOLUTIONS: u64 = 100;
/// Talk samples seen before predictive pacing starts.
const COLD_START_TALKS: usize = 10;
/// Pseudo-counts in the closed loop's rate estimate (live answers at the set-point).
const PRIOR_ANSWERS: f64 = 200.0;
/// Margin of the compliance guard on the horizon's abandons, in standard deviations.
const GUARD_Z: f64 = 1.0;
/// Room under the cap (in abandons) below which pacing is progressive.
const MIN_ROOM: f64 = 1.0;
/// Margin on the abandons the calls in flight are expected to cause, in
/// standard deviations, when reckoning the room left under the cap.
const IN_FLIGHT_Z: f64 = 1.5;
/// Abandons of room under the cap kept free of any planned risk.
const ROOM_RESERVE: f64 = 0.5;
/// Room (in abandons, beyond the reserve) below which the threshold shrinks
/// in proportion: the last abandons under the cap are spent ever more warily.
const ROOM_SPAN: f64 = 3.0;
/// Extra reserve at the start, fading out over `EARLY_ANSWERS` live answers.
const EARLY_RESERVE: f64 = 1.5;
const EARLY_ANSWERS: f64 = 400.0;
/// Room reserve and span added per agent.
const ROOM_PER_AGENT: f64 = 0.03;
/// The smallest fraction of the threshold left when no room is left.
const ROOM_MIN_FACTOR: f64 = 0.02;
/// Margin on the estimated CPA false positives, in standard deviations.
const FP_MARGIN_Z: f64 = 1.5;
/// The largest probability, per decision, that the live answers landing by
/// some time in the horizon outnumber the agents free 2 s later by the whole
/// room left under the cap (see [`Pacer::cluster_tail_too_likely`]). The closed loop
/// steers the mean; this bounds the tail: a streak of answers (a run of live
/// persons in the list, ringing calls answering together) that would carry
/// the running rate over the cap in one cluster. Decisions come every second
/// or so, and one cluster's chance is spread over the tens of decisions that
/// see it coming, so the chance per decision has to be small. At 1e-4 the
/// property search found 15 agents at a 7.6 % hit rate reaching 3.18 % (9
/// live answers among 17 consecutive dials), and at 1e-5 11 agents at 5.4 %
/// reaching 5.0 % at the 100th answer (10 answers in 4.6 s on 4 ready agents,
/// 1.5 expected in 30 s); each step of 10 keeps about one more abandon of
/// room back in such moments (`a_streak_of_answers_…` in
/// `tests/simulate_property.rs` replays them).
const CLUSTER_TAIL_MAX: f64 = 1e-6;
/// The marginal abandon risk the closed loop starts from.
const BASE_RISK: f64 = 0.03;
/// The threshold's range (the integral state is held inside it: no wind-up).
const MIN_THRESHOLD: f64 = 0.005;
const MAX_THRESHOLD: f64 = 0.5;
/// Integral step: an abandon scales the threshold by exp(−step); a live
/// answer by exp(step × set-point), so they balance at the set-point.
const INTEGRAL_STEP: f64 = 0.2;
/// Proportional gain on the whole window's rate: the threshold scales by
/// exp(gain × relative error).
const CONTROL_GAIN: f64 = 3.0;
/// What a burst of abandons leaves of the threshold.
const BURST_FACTOR: f64 = 0.25;
/// Window in which abandons count as a burst.
const BURST_WINDOW: Duration = Duration::from_secs(300);
const MAX_DIAL_PER_DECISION: u32 = 1000;
/// How far under the cap the closed loop aims while few answers were seen,
/// in standard deviations of the running rate's noise (see `loop_set_point`).
const SET_POINT_NOISE_Z: f64 = 1.0;
/// The loop's set-point never falls below this share of the configured one
/// (the noise bound goes below zero before ~40 answers).
const SET_POINT_FLOOR_SHARE: f64 = 0.5;

#[derive(Debug, Clone)]
struct AgentSlot {
    activity: AgentActivity,
    since: Instant,
    leaving: bool,
}

/// One campaign's pacer.
#[derive(Debug, Clone)]
pub struct Pacer {
    config: PacerConfig,
    ledger: AbandonLedger,
    outcomes: OutcomeModel,
    talk: DurationModel,
    wrap: DurationModel,
    agents: Vec<AgentSlot>,
    agent_index: HashMap<AgentId, usize>,
    ringing: HashMap<CallId, Instant>,
    waiting: HashMap<CallId, Instant>,
    /// When each call in flight was counted as a live answer (so a
    /// "human" that turns out a machine can be taken back out).
    live_at: HashMap<CallId, Instant>,
    /// Calls with their own agent reserved, by dial time: on a line, never
    /// among the answers competing for the agents the pacer counts.
    with_agent: HashMap<CallId, Instant>,
    lines_in_use: HashMap<CallId, ()>,
    recent_dials: dial_rate::DialRate,
    live_answers_seen: u64,
    /// Live answers restored from the store (earlier runs): they count
    /// toward the loop's set-point (how noisy the running rate still is),
    /// not toward the cold start (the outcome model has not seen them).
    restored_answers: u64,
    /// Live answers among the calls restored into the outcome model
    /// ([`Pacer::restore_calls`]): the model has seen them, so they count
    /// toward the cold start.
    restored_model_answers: u64,
    /// Integral state of the closed loop: ln of the marginal-risk threshold.
    log_threshold: f64,
    /// Pacing is held progressive for want of room: the threshold is not
    /// used, so answers must not raise it (no wind-up).
    held: bool,
    /// Horizon-indexed scratch: expected and variance of answers / free agents.
    answers_mean: Vec<f64>,
    answers_var: Vec<f64>,
    /// By horizon bin, over the answers from ringing calls arriving there:
    /// the mean probability that the arriving call itself is counted among
    /// the answers before it, and the variance it adds — taken out of its
    /// own rivals (an answer does not compete with itself).
    own_mean: Vec<f64>,
    own_var: Vec<f64>,
    free_mean: Vec<f64>,
    free_var: Vec<f64>,
    age_counts: Vec<u32>,
    /// Bumped whenever an agent changes (the supply curves depend on it).
    agents_version: u64,
    /// The version and instant the supply curves were computed for.
    supply_cached: Option<(u64, Instant)>,
}

impl Pacer {
    /// A pacer whose ledger windows start at `epoch`.
    pub fn new(config: PacerConfig, epoch: Instant) -> Self {
        let supply_bins = HORIZON_BINS + 1 + rule_bins(config.abandon_after_s);
        Self {
            config,
            ledger: AbandonLedger::new(epoch),
            outcomes: OutcomeModel::new(2000.0),
            talk: DurationModel::new(1000, 1.0, 3600.0, 120.0),
            wrap: DurationModel::new(1000, AGE_BIN_S, 600.0, 10.0),
            agents: Vec::new(),
            agent_index: HashMap::new(),
            ringing: HashMap::new(),
            waiting: HashMap::new(),
            live_at: HashMap::new(),
            with_agent: HashMap::new(),
            lines_in_use: HashMap::new(),
            recent_dials: dial_rate::DialRate::new(),
            live_answers_seen: 0,
            restored_answers: 0,
            restored_model_answers: 0,
            log_threshold: BASE_RISK.ln(),
            held: false,
            answers_mean: vec![0.0; HORIZON_BINS + 1],
            answers_var: vec![0.0; HORIZON_BINS + 1],
            own_mean: vec![0.0; HORIZON_BINS + 1],
            own_var: vec![0.0; HORIZON_BINS + 1],
            free_mean: vec![0.0; supply_bins],
            free_var: vec![0.0; supply_bins],
            age_counts: vec![0; AGE_BINS],
            agents_version: 0,
            supply_cached: None,
        }
    }

    pub fn config(&self) -> &PacerConfig {
        &self.config
    }

    /// The agents this pacer counts (any activity but logged out): the
    /// engine's tests hold a shared agent to one running campaign's pacer.
    #[cfg(test)]
    pub(crate) fn agents_present(&self) -> Vec<u32> {
        let mut present: Vec<u32> = self
            .agent_index
            .iter()
            .filter(|(_, i)| self.agents[**i].activity != AgentActivity::LoggedOut)
            .map(|(id, _)| id.0)
            .collect();
        present.sort_unstable();
        present
    }

    /// What this pacer knows of `agent`: its activity and since when.
    #[cfg(test)]
    pub(crate) fn agent_slot(&self, agent: AgentId) -> Option<(AgentActivity, Instant)> {
        let slot = self.agents.get(*self.agent_index.get(&agent)?)?;
        Some((slot.activity, slot.since))
    }

    /// The calls this pacer counts on a line, ringing and waiting for an
    /// agent (the engine's tests hold them to the dialer's own calls: a
    /// call it never hears end holds a line in its plans for ever).
    #[cfg(test)]
    pub(crate) fn calls_tracked(&self) -> [Vec<u64>; 4] {
        let sorted = |ids: Vec<u64>| {
            let mut ids = ids;
            ids.sort_unstable();
            ids
        };
        [
            sorted(self.lines_in_use.keys().map(|c| c.0).collect()),
            sorted(self.ringing.keys().map(|c| c.0).collect()),
            sorted(self.waiting.keys().map(|c| c.0).collect()),
            sorted(self.with_agent.keys().map(|c| c.0).collect()),
        ]
    }

    /// The calls per second this campaign may start: the trunk's, or this
    /// node's part of it when several nodes share the trunk.
    pub fn set_max_calls_per_second(&mut self, cps: Option<f64>) {
        self.config.max_calls_per_second = cps;
    }

    /// Feeds one event that happened at `now`.
    pub fn on_event(&mut self, event: PacerEvent, now: Instant) {
        match event {
            PacerEvent::Agent {
                agent,
                activity,
                leaving,
                since,
            } => self.agent_changed(agent, activity, leaving, since.min(now), now),
            PacerEvent::CallDialed { call } => {
                self.ringing.insert(call, now);
                self.lines_in_use.insert(call, ());
                self.recent_dials.record(now);
            }
            PacerEvent::CallDialedWithAgent { call } => {
                self.with_agent.insert(call, now);
                self.lines_in_use.insert(call, ());
                self.recent_dials.record(now);
            }
            PacerEvent::LiveAnswer { call } => {
                if let Some(dialed) = self.ringing.remove(&call) {
                    self.outcomes
                        .observe(now.saturating_duration_since(dialed).as_secs_f64(), true);
                    self.waiting.insert(call, now);
                } else if let Some(dialed) = self.with_agent.remove(&call) {
                    // Its agent takes it: it counts as a live answer (the
                    // rates' denominator, what the list yields), never as
                    // one waiting for the agents planned for.
                    self.outcomes
                        .observe(now.saturating_duration_since(dialed).as_secs_f64(), true);
                } else {
                    self.waiting.insert(call, now);
                }
                self.ledger.live_answer(now);
                self.live_at.insert(call, now);
                self.live_answers_seen += 1;
                self.integrate(false);
            }
            PacerEvent::Bridged { call } => {
                self.waiting.remove(&call);
            }
            PacerEvent::Abandoned { call } => {
                self.waiting.remove(&call);
                self.ledger.abandoned(now);
                self.integrate(true);
            }
            PacerEvent::NotLive { call, why } => {
                if let Some(at) = self.live_at.remove(&call)
                    && why == NotLive::Machine
                {
                    self.ledger.retract_live_answer(at);
                    self.live_answers_seen = self.live_answers_seen.saturating_sub(1);
                }
                if let Some(dialed) = self
                    .ringing
                    .remove(&call)
                    .or_else(|| self.with_agent.remove(&call))
                {
                    self.outcomes
                        .observe(now.saturating_duration_since(dialed).as_secs_f64(), false);
                }
            }
            PacerEvent::CallEnded { call } => {
                self.lines_in_use.remove(&call);
                self.live_at.remove(&call);
                self.ringing.remove(&call);
                self.waiting.remove(&call);
                self.with_agent.remove(&call);
            }
            PacerEvent::Tick => {}
        }
    }

    /// Live answers and abandons from before this pacer (earlier runs of
    /// the campaign, from the store), at `at`: they count in the US and UK
    /// windows as if this pacer had seen them, so a restart neither forgets
    /// the abandons the 24-hour and 30-day rates still hold nor starts a
    /// campaign with a long record as if it were new.
    pub fn restore_history(&mut self, at: Instant, live_answers: u64, abandoned: u64) {
        self.ledger.restore(at, live_answers, abandoned);
        self.restored_answers += live_answers;
    }

    /// The campaign's recent calls (earlier runs, from the store), oldest
    /// first: the outcome model learns how they resolved and the talk model
    /// how long they lasted, as if this pacer had dialed them. A restart
    /// then paces predictively from its first decision instead of starting
    /// progressive until it has seen its own answers again (in a small
    /// team at a low hit rate, tens of minutes). The cold start still
    /// holds when the store had too few of them.
    pub fn restore_calls(&mut self, calls: &[RestoredCall]) {
        for call in calls {
            if !call.ring_s.is_finite() || call.ring_s < 0.0 {
                continue;
            }
            self.outcomes.observe(call.ring_s, call.live);
            if call.live {
                self.restored_model_answers += 1;
            }
            if let Some(talk_s) = call.talk_s {
                self.talk.observe(talk_s);
            }
        }
    }

    /// The closed loop's integral action, once per live answer and once per
    /// abandon: each answer raises the threshold a little, each abandon
    /// lowers it, so that they balance exactly at the set-point (the false
    /// positives CPA will hide are charged to every answer).
    fn integrate(&mut self, abandoned: bool) {
        let PacingMode::Predictive { set_point, cap } = self.config.mode else {
            return;
        };
        let set_point = loop_set_point(
            set_point,
            cap,
            self.live_answers_seen + self.restored_answers,
        );
        if abandoned {
            self.log_threshold -= INTEGRAL_STEP;
        } else if !self.held {
            let f = self.false_positives(1.0);
            let step = INTEGRAL_STEP * (set_point * (1.0 + f) - f);
            self.log_threshold += step;
        }
        self.log_threshold = self
            .log_threshold
            .clamp(MIN_THRESHOLD.ln(), MAX_THRESHOLD.ln());
    }

    fn agent_changed(
        &mut self,
        agent: AgentId,
        activity: AgentActivity,
        leaving: bool,
        entered: Instant,
        now: Instant,
    ) {
        let index = match self.agent_index.get(&agent) {
            Some(&i) => i,
            None => {
                self.agents.push(AgentSlot {
                    activity: AgentActivity::LoggedOut,
                    since: now,
                    leaving: false,
                });
                self.agent_index.insert(agent, self.agents.len() - 1);
                self.agents.len() - 1
            }
        };
        let Some(&AgentSlot {
            activity: before,
            since,
            ..
        }) = self.agents.get(index)
        else {
            return;
        };
        self.agents_version += 1;
        if before != activity {
            let spent = entered.saturating_duration_since(since).as_secs_f64();
            // The others still in the state this agent leaves are censored samples.
            let others = self
                .agents
                .iter()
                .enumerate()
                .filter(|&(i, a)| i != index && a.activity == before)
                .map(|(_, a)| now.saturating_duration_since(a.since).as_secs_f64());
            match (before, activity) {
                (AgentActivity::OnCall, AgentActivity::WrapUp) => {
                    self.talk.observe_censored(spent, others)
                }
                (AgentActivity::WrapUp, _) => self.wrap.observe_censored(spent, others),
                _ => {}
            }
        }
        if let Some(slot) = self.agents.get_mut(index) {
            if slot.activity != activity {
                slot.activity = activity;
                slot.since = entered;
            }
            slot.leaving = leaving;
        }
    }

    /// How many calls to start now, and why.
    pub fn decide(&mut self, now: Instant) -> Decision {
        let mut ready = 0u32;
        let mut busy = 0u32;
        for slot in &self.agents {
            match slot.activity {
                AgentActivity::Ready => ready += 1,
                AgentActivity::OnCall | AgentActivity::WrapUp if !slot.leaving => busy += 1,
                _ => {}
            }
        }
        let us = self.ledger.us(now);
        let uk = self.ledger.uk(now);
        let fp = self.false_positives(uk.live_answers as f64);
        let mut reasoning = Reasoning {
            limit: Limit::NoPacing,
            wanted: 0,
            ready_agents: ready,
            busy_agents: busy,
            calls_ringing: self.ringing.len() as u32,
            answers_waiting: self.waiting.len() as u32,
            lines_in_use: self.lines_in_use.len() as u32,
            agents_free_soon: f64::from(ready),
            expected_answers: 0.0,
            expected_abandons: 0.0,
            marginal_risk: 0.0,
            risk_threshold: 0.0,
            live_rate: self.outcomes.live_rate(),
            abandon_rate_us: us.us_rate(),
            abandon_rate_uk: uk.uk_rate(fp),
        };
        let in_flight = (self.ringing.len() + self.waiting.len()) as u32;
        let progressive = |lines_per_agent: f64| -> u32 {
            let want = (f64::from(ready) * lines_per_agent + 1e-9).floor() as u32;
            want.saturating_sub(in_flight)
        };
        let (wanted, limit) = match self.config.mode {
            PacingMode::Preview | PacingMode::PushPreview => (0, Limit::NoPacing),
            PacingMode::Progressive { lines_per_agent } => {
                (progressive(lines_per_agent), Limit::Progressive)
            }
            PacingMode::Predictive { set_point, cap } => {
                if self.live_answers_seen + self.restored_model_answers < COLD_START_ANSWERS
                    || self.outcomes.observations() < COLD_START_RESOLUTIONS
                    || self.talk.samples() < COLD_START_TALKS
                {
                    (progressive(1.0), Limit::ColdStart)
                } else {
                    let (k, limit) = self.predictive(now, set_point, cap, fp, &mut reasoning);
                    let floor = progressive(1.0);
                    if floor > k {
                        (floor, Limit::Progressive)
                    } else {
                        (k, limit)
                    }
                }
            }
        };
        let (dial, limit) = self.apply_trunk_limits(now, wanted, limit);
        reasoning.limit = limit;
        reasoning.wanted = wanted;
        Decision {
            dial,
            next_decision_within: Duration::from_secs(1),
            reasoning,
        }
    }

    /// Expected CPA false positives behind `live` detected live answers.
    fn false_positives(&self, live: f64) -> f64 {
        ledger::expected_false_positives(live, self.config.amd_fp_estimate)
    }

    fn apply_trunk_limits(&mut self, now: Instant, wanted: u32, limit: Limit) -> (u32, Limit) {
        let free_lines = self
            .config
            .max_lines
            .saturating_sub(self.lines_in_use.len() as u32);
        let mut dial = wanted.min(MAX_DIAL_PER_DECISION);
        let mut limit = limit;
        if dial > free_lines {
            dial = free_lines;
            limit = Limit::TrunkLines;
        }
        let allowed = self
            .recent_dials
            .allowed(self.config.max_calls_per_second, now);
        if dial > allowed {
            dial = allowed;
            limit = Limit::CallsPerSecond;
        }
        (dial, limit)
    }

    /// Fills the horizon curves for the current state (without new calls).
    fn predict_base(&mut self, now: Instant) {
        // Answers: those waiting now, then ringing calls by age.
        self.age_counts.iter_mut().for_each(|c| *c = 0);
        for dialed in self.ringing.values() {
            let age = now.saturating_duration_since(*dialed).as_secs_f64();
            if let Some(c) = self.age_counts.get_mut(estimate::age_bin(age)) {
                *c += 1;
            }
        }
        let waiting = self.waiting.len() as f64;
        self.answers_mean.iter_mut().for_each(|m| *m = waiting);
        self.answers_var.iter_mut().for_each(|v| *v = 0.0);
        self.own_mean.iter_mut().for_each(|q| *q = 0.0);
        self.own_var.iter_mut().for_each(|v| *v = 0.0);
        for (age, &count) in self.age_counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let n = f64::from(count);
            let curve = self.outcomes.live_curve(age);
            for j in 1..=HORIZON_BINS {
                let arrivals = n * (curve[j] - curve[j - 1]);
                let q = 0.5 * (curve[j - 1] + curve[j]);
                self.own_mean[j] += arrivals * q;
                self.own_var[j] += arrivals * q * (1.0 - q);
            }
            for ((m, v), &q) in self
                .answers_mean
                .iter_mut()
                .zip(self.answers_var.iter_mut())
                .zip(curve)
            {
                *m += n * q;
                *v += n * q * (1.0 - q);
            }
        }
        for j in 1..=HORIZON_BINS {
            let arrivals = self.answers_mean[j] - self.answers_mean[j - 1];
            if arrivals > 1e-12 {
                self.own_mean[j] /= arrivals;
                self.own_var[j] /= arrivals;
            }
        }
        self.predict_supply(now);
    }

    /// Fills the supply curves (agents free by each horizon time). They
    /// change only when an agent changes or time moves on by a bin, so
    /// between those they are reused: most events are calls, not agents.
    fn predict_supply(&mut self, now: Instant) {
        if let Some((version, at)) = self.supply_cached
            && version == self.agents_version
            && now >= at
            && now.saturating_duration_since(at).as_secs_f64() < AGE_BIN_S
        {
            return;
        }
        self.supply_cached = Some((self.agents_version, now));
        // Supply: ready agents now, busy ones as their residual times allow.
        let mean_wrap = self.wrap.mean_s();
        let mut ready = 0.0;
        self.free_var.iter_mut().for_each(|v| *v = 0.0);
        self.free_mean.iter_mut().for_each(|m| *m = 0.0);
        for slot in &self.agents {
            if slot.leaving {
                continue;
            }
            let elapsed = now.saturating_duration_since(slot.since).as_secs_f64();
            match slot.activity {
                AgentActivity::Ready => ready += 1.0,
                AgentActivity::OnCall => {
                    for (j, (m, v)) in self
                        .free_mean
                        .iter_mut()
                        .zip(self.free_var.iter_mut())
                        .enumerate()
                    {
                        let t = j as f64 * AGE_BIN_S - mean_wrap;
                        if t <= 0.0 {
                            continue;
                        }
                        let p = self.talk.finish_within(elapsed, t);
                        *m += p;
                        *v += p * (1.0 - p);
                    }
                }
                AgentActivity::WrapUp => {
                    for (j, (m, v)) in self
                        .free_mean
                        .iter_mut()
                        .zip(self.free_var.iter_mut())
                        .enumerate()
                    {
                        let p = self.wrap.finish_within(elapsed, j as f64 * AGE_BIN_S);
                        *m += p;
                        *v += p * (1.0 - p);
                    }
                }
                _ => {}
            }
        }
        self.free_mean.iter_mut().for_each(|m| *m += ready);
    }

    /// Expected abandons within the horizon with `k` extra calls: each
    /// answer arriving in bin j is abandoned when the answers before it
    /// already match the agents free by its 2-second deadline
    /// (normal approximation, continuity-corrected). Abandoned answers are
    /// counted as if they had taken an agent, which errs on the safe side.
    fn expected_abandons(&self, k: f64) -> (f64, f64) {
        let rule = rule_bins(self.config.abandon_after_s);
        let fresh = self.outcomes.live_curve(0);
        let mut total = 0.0;
        let mut variance = 0.0;
        for j in 1..=HORIZON_BINS {
            let arrivals =
                (self.answers_mean[j] - self.answers_mean[j - 1]) + k * (fresh[j] - fresh[j - 1]);
            if arrivals <= 1e-12 {
                continue;
            }
            // Answers arriving in the same bin compete with each other too:
            // on average half of them come before a given one. Without this
            // a ring time that hardly varies (every answer in one bin) looks
            // risk-free at any number of calls.
            let q = 0.5 * (fresh[j - 1] + fresh[j]);
            let before = 0.5 * (self.answers_mean[j - 1] + self.answers_mean[j]);
            let before_var = 0.5 * (self.answers_var[j - 1] + self.answers_var[j]);
            let free = self.free_mean[j + rule];
            let free_var = self.free_var[j + rule];
            // An answer does not compete with itself: one from a ringing
            // call faces the other ringing calls and all k new ones, one from
            // a new call every ringing call and the k − 1 other new ones.
            // Counting it among its own rivals over-stated a small team's
            // abandons 2–3× (`docs/pacing-history.md`, "Calibration"); the
            // tail of a streak of answers, which that over-statement used to
            // cover, is bounded on its own by `cluster_tail_too_likely`.
            let from_ringing = self.answers_mean[j] - self.answers_mean[j - 1];
            let from_new = arrivals - from_ringing;
            let p_ringing = if from_ringing > 1e-12 {
                abandon_probability(
                    before - self.own_mean[j] + k * q - free,
                    (before_var - self.own_var[j]).max(0.0) + k * q * (1.0 - q) + free_var,
                )
            } else {
                0.0
            };
            let p_new = if from_new > 1e-12 {
                let rivals = (k - 1.0).max(0.0);
                abandon_probability(
                    before + rivals * q - free,
                    before_var + rivals * q * (1.0 - q) + free_var,
                )
            } else {
                0.0
            };
            let p = (from_ringing * p_ringing + from_new * p_new) / arrivals;
            total += arrivals * p;
            variance += arrivals * p * (1.0 - p);
        }
        (total, variance)
    }

    /// Whether, with `k` extra calls, the probability that the live answers
    /// landing by some horizon time t outnumber the agents free by t + 2 s
    /// by `room` or more exceeds `CLUSTER_TAIL_MAX` — then at least that many
    /// of them are abandoned, whatever the order they land in. Answers by t
    /// are taken as Poisson: the sum of many unlikely calls, whose tail is
    /// heavier than the normal's the rest of the pacer uses (and a little
    /// heavier than the true one); the agents free at their expectation less
    /// one standard deviation. Stops at the first time over.
    fn cluster_tail_too_likely(&self, k: f64, room: f64) -> bool {
        let rule = rule_bins(self.config.abandon_after_s);
        let fresh = self.outcomes.live_curve(0);
        fresh
            .iter()
            .enumerate()
            .take(HORIZON_BINS + 1)
            .skip(1)
            .any(|(j, &fresh_live)| {
                let answers = self.answers_mean[j] + k * fresh_live;
                let free = self.free_mean[j + rule] - self.free_var[j + rule].sqrt();
                let clustered = (room + free.max(0.0)).ceil();
                // At or under the mean the tail is about a half or more.
                clustered <= answers || poisson_at_least(answers, clustered) > CLUSTER_TAIL_MAX
            })
    }

    fn predictive(
        &mut self,
        now: Instant,
        set_point: f64,
        cap: f64,
        fp: f64,
        reasoning: &mut Reasoning,
    ) -> (u32, Limit) {
        self.predict_base(now);
        let rule = rule_bins(self.config.abandon_after_s);
        reasoning.agents_free_soon = self.free_mean[HORIZON_BINS + rule];
        let p_live = self.outcomes.live_curve(0)[HORIZON_BINS].max(1e-6);

        let us = self.ledger.us(now);
        let uk = self.ledger.uk(now);
        let set_point = loop_set_point(set_point, cap, us.live_answers);
        let fp_uk = self.false_positives(uk.live_answers as f64);
        let fp_uk = fp_uk + FP_MARGIN_Z * fp_uk.sqrt();
        let realised_us = (us.abandoned as f64 + PRIOR_ANSWERS * set_point)
            / (us.live_answers as f64 + PRIOR_ANSWERS);
        let realised_uk = (uk.abandoned as f64 + fp_uk + PRIOR_ANSWERS * set_point)
            / (uk.live_answers as f64 + fp_uk + PRIOR_ANSWERS);
        let realised = realised_us.max(realised_uk);
        let error = (set_point - realised) / set_point;
        let mut threshold =
            self.log_threshold.exp() * (CONTROL_GAIN * error).exp().clamp(0.05, 1.0);
        let (burst, recent_answers) = self.ledger.recent(now, BURST_WINDOW);
        let expected = set_point * recent_answers as f64;
        if burst as f64 > 2.0 + expected + 2.0 * expected.sqrt() {
            threshold *= BURST_FACTOR;
        }

        // Room under the cap, in abandons, in each window (false positives
        // budgeted in the UK one), less what the calls in flight already risk.
        let fp_guarded = fp + FP_MARGIN_Z * fp.sqrt();
        let room_us = cap * us.live_answers as f64 - us.abandoned as f64;
        let room_uk =
            cap * (uk.live_answers as f64 + fp_guarded) - uk.abandoned as f64 - fp_guarded;
        let room = room_us.min(room_uk);
        // Less than one abandon of room: progressive, whatever the model
        // says (it may be what is wrong, as early in a campaign).
        self.held = room < MIN_ROOM;
        if self.held {
            reasoning.risk_threshold = 0.0;
            return (0, Limit::Compliance);
        }
        let (a0, a0_var) = self.expected_abandons(0.0);
        // Abandons come in clusters (no agent free: every answer in the
        // next seconds is lost), and the clusters grow with the team.
        let team = f64::from(reasoning.ready_agents + reasoning.busy_agents);
        // Early on one cluster moves the rate most: more in reserve, fading
        // out over the first EARLY_ANSWERS live answers.
        let early = EARLY_RESERVE * (1.0 - us.live_answers as f64 / EARLY_ANSWERS).max(0.0);
        // What the calls already in flight will abandon is uncertain: their
        // expectation plus IN_FLIGHT_Z standard deviations is spoken for.
        // With the expectation alone a large team at a low hit rate (many
        // calls in flight) could overrun the cap by one cluster mid-shift.
        let in_flight = a0 + IN_FLIGHT_Z * a0_var.sqrt();
        let spare = room - in_flight - ROOM_RESERVE - early - ROOM_PER_AGENT * team;
        if spare <= 0.0 {
            // No room beyond the reserve: progressive until answers make some.
            self.held = true;
            reasoning.risk_threshold = 0.0;
            return (0, Limit::Compliance);
        }
        let factor = (spare / (ROOM_SPAN + ROOM_PER_AGENT * team)).clamp(ROOM_MIN_FACTOR, 1.0);
        threshold *= factor;
        reasoning.risk_threshold = threshold;
        let base_live = self.answers_mean[HORIZON_BINS];
        let budget = |expected_live: f64| -> f64 {
            let fp_new = self.false_positives(expected_live);
            (room_us + cap * expected_live)
                .min(room_uk + cap * expected_live - (1.0 - cap) * fp_new)
        };

        // The largest k whose last call passes both tests. The marginal risk
        // grows with k and so does the horizon's abandon count, so the tests
        // flip once: found by doubling then bisection, with every k's
        // abandon count computed once.
        let mut memo: Vec<(u32, f64, f64)> = vec![(0, a0, 0.0)];
        let mut abandons = |k: u32| -> (f64, f64) {
            if let Some(&(_, a, v)) = memo.iter().find(|(m, _, _)| *m == k) {
                return (a, v);
            }
            let (a, v) = self.expected_abandons(f64::from(k));
            memo.push((k, a, v));
            (a, v)
        };
        // Some(risk) when dialing k calls passes, Err(limit, risk) when not.
        let mut passes = |k: u32| -> Result<f64, (Limit, f64)> {
            let (previous, _) = abandons(k - 1);
            let (a, var) = abandons(k);
            let risk = (a - previous) / p_live;
            if risk > threshold {
                return Err((Limit::AbandonRisk, risk));
            }
            let live = base_live + f64::from(k) * p_live;
            if a + GUARD_Z * var.sqrt() > budget(live) {
                return Err((Limit::Compliance, risk));
            }
            Ok(risk)
        };
        let mut good = 0u32;
        let mut marginal = 0.0;
        let mut failure = None;
        let mut probe = 1u32;
        while probe <= MAX_DIAL_PER_DECISION {
            match passes(probe) {
                Ok(risk) => {
                    good = probe;
                    marginal = risk;
                    probe *= 2;
                }
                Err(e) => {
                    failure = Some((probe, e));
                    break;
                }
            }
        }
        let mut limit = if factor < 1.0 {
            Limit::Compliance
        } else {
            Limit::AbandonRisk
        };
        if let Some((mut bad, (bad_limit, bad_risk))) = failure {
            let (mut bad_limit, mut bad_risk) = (bad_limit, bad_risk);
            while bad - good > 1 {
                let mid = good + (bad - good) / 2;
                match passes(mid) {
                    Ok(risk) => {
                        good = mid;
                        marginal = risk;
                    }
                    Err((l, r)) => {
                        bad = mid;
                        bad_limit = l;
                        bad_risk = r;
                    }
                }
            }
            if bad_limit == Limit::Compliance {
                limit = Limit::Compliance;
            }
            marginal = marginal.max(bad_risk);
        } else {
            good = good.min(MAX_DIAL_PER_DECISION);
        }
        // The tail of one cluster: fewer calls until a streak of answers
        // that alone would spend the room is unlikely enough (it grows with
        // k, so the calls that pass are found by bisection; none new always
        // passes, whatever is already in flight).
        let mut k = good;
        if k > 0 && self.cluster_tail_too_likely(f64::from(k), room) {
            let (mut passing, mut failing) = (0u32, k);
            while failing - passing > 1 {
                let mid = passing + (failing - passing) / 2;
                if self.cluster_tail_too_likely(f64::from(mid), room) {
                    failing = mid;
                } else {
                    passing = mid;
                }
            }
            k = passing;
            limit = Limit::Compliance;
        }
        let previous = abandons(k).0;
        reasoning.marginal_risk = marginal;
        reasoning.expected_abandons = previous;
        reasoning.expected_answers = base_live + f64::from(k) * p_live;
        (k, limit)
    }
}

/// Probability that an arriving answer finds no agent: the answers before
/// it less the agents free by its deadline are ≥ 0 (normal, mean and
/// variance given, continuity-corrected).
fn abandon_probability(mean: f64, var: f64) -> f64 {
    if var < 1e-12 {
        if mean > -0.5 { 1.0 } else { 0.0 }
    } else {
        normal_cdf((mean + 0.5) / var.sqrt())
    }
}

/// The set-point the closed loop steers to after `answers` live answers.
/// The running rate's noise at n answers is about √(p(1 − p)/n) — 0.9
/// points at 300 answers, more than the 0.5 between the default set-point
/// and the cap — so while few answers were seen the loop aims
/// `SET_POINT_NOISE_Z` of those deviations under the cap: min(set-point,
/// cap − z·√(set-point(1 − set-point)/n)), never under half the set-point.
/// With 2.5 % under 3 %: 2.10 % at 300 answers, the full 2.5 % from 975.
fn loop_set_point(set_point: f64, cap: f64, answers: u64) -> f64 {
    let n = answers.max(1) as f64;
    let noise = (set_point * (1.0 - set_point) / n).sqrt();
    (cap - SET_POINT_NOISE_Z * noise)
        .min(set_point)
        .max(SET_POINT_FLOOR_SHARE * set_point)
}

/// The 2-second rule in horizon bins.
fn rule_bins(abandon_after_s: f64) -> usize {
    let s = if abandon_after_s.is_finite() {
        abandon_after_s.clamp(0.0, 30.0)
    } else {
        2.0
    };
    (s / AGE_BIN_S).round() as usize
}

/// P(X ≥ n) for X Poisson with mean `mean`. Summed upwards from n when n is
/// above the mean (a few terms: they shrink by mean/(i + 1)), downwards
/// otherwise; probabilities under ~1e-12 are 0.
fn poisson_at_least(mean: f64, n: f64) -> f64 {
    if n <= 0.0 {
        return 1.0;
    }
    if mean.is_nan() || mean <= 0.0 || n > mean + 7.0 * mean.sqrt() + 7.0 {
        return 0.0;
    }
    let n = n.ceil();
    if n <= mean {
        let mut term = (-mean).exp();
        let mut below = 0.0;
        let mut i = 0.0;
        while i < n {
            below += term;
            i += 1.0;
            term *= mean / i;
        }
        return (1.0 - below).clamp(0.0, 1.0);
    }
    let mut term = (n * mean.ln() - mean - ln_factorial(n)).exp();
    let mut tail: f64 = 0.0;
    let mut i = n;
    while term > 1e-16 * tail.max(1e-300) {
        tail += term;
        i += 1.0;
        term *= mean / i;
    }
    tail.min(1.0)
}

/// ln(n!) for a whole n ≥ 0: exact product below 20, Stirling's series above
/// (error < 1e-10 there).
fn ln_factorial(n: f64) -> f64 {
    if n < 20.0 {
        let mut product = 1.0;
        let mut i = 2.0;
        while i <= n {
            product *= i;
            i += 1.0;
        }
        return product.ln();
    }
    n * n.ln() - n + 0.5 * (std::f64::consts::TAU * n).ln() + 1.0 / (12.0 * n)
        - 1.0 / (360.0 * n * n * n)
}

/// Φ(z) via the Abramowitz–Stegun erfc approximation (|error| < 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

#[cfg(test)]
mod tests;
