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
//! residual talk/wrap time); the expected abandons are the expected shortfall
//! at the worst t. It dials the largest k whose marginal call has an abandon
//! probability under a threshold λ, which a closed loop steers so the realised
//! rate meets the set-point (2.5 % by default), and which a guard caps so the
//! projected rate in every window stays under the hard cap even if the
//! horizon goes badly (mean + z·σ). A burst of abandons tightens at once;
//! until enough answers have been seen it paces progressively.

pub mod estimate;
pub mod ledger;

use std::collections::{HashMap, VecDeque};
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
    /// this call's wrap-up ends, so it is not about to be free.
    Agent {
        agent: AgentId,
        activity: AgentActivity,
        leaving: bool,
    },
    /// A call was started (it holds a trunk line until [`PacerEvent::CallEnded`]).
    CallDialed { call: CallId },
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
/// Margin of the compliance guard, in standard deviations.
const GUARD_Z: f64 = 2.0;
/// Room under the cap (in abandons) below which pacing is progressive.
const MIN_HEADROOM: f64 = 1.0;
/// The same while few answers were seen, when one burst moves the rate most.
const MIN_HEADROOM_EARLY: f64 = 2.0;
/// Live answers (US window) after which the early headroom no longer applies.
const EARLY_ANSWERS: u64 = 400;
/// Abandons the compliance guard keeps in reserve.
const RESERVE_ABANDONS: f64 = 1.0;
/// Margin on the estimated CPA false positives, in standard deviations.
const FP_MARGIN_Z: f64 = 1.5;
/// Nominal marginal abandon risk.
const BASE_RISK: f64 = 0.03;
/// Gain of the closed loop: the threshold scales by exp(gain × relative error).
const CONTROL_GAIN: f64 = 6.0;
/// Window in which abandons count as a burst.
const BURST_WINDOW: Duration = Duration::from_secs(300);
const MAX_DIAL_PER_DECISION: u32 = 1000;

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
    lines_in_use: HashMap<CallId, ()>,
    recent_dials: VecDeque<Instant>,
    live_answers_seen: u64,
    /// Horizon-indexed scratch: expected and variance of answers / free agents.
    answers_mean: Vec<f64>,
    answers_var: Vec<f64>,
    free_mean: Vec<f64>,
    free_var: Vec<f64>,
    age_counts: Vec<u32>,
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
            lines_in_use: HashMap::new(),
            recent_dials: VecDeque::new(),
            live_answers_seen: 0,
            answers_mean: vec![0.0; HORIZON_BINS + 1],
            answers_var: vec![0.0; HORIZON_BINS + 1],
            free_mean: vec![0.0; supply_bins],
            free_var: vec![0.0; supply_bins],
            age_counts: vec![0; AGE_BINS],
        }
    }

    pub fn config(&self) -> &PacerConfig {
        &self.config
    }

    /// Feeds one event that happened at `now`.
    pub fn on_event(&mut self, event: PacerEvent, now: Instant) {
        match event {
            PacerEvent::Agent {
                agent,
                activity,
                leaving,
            } => self.agent_changed(agent, activity, leaving, now),
            PacerEvent::CallDialed { call } => {
                self.ringing.insert(call, now);
                self.lines_in_use.insert(call, ());
                self.recent_dials.push_back(now);
            }
            PacerEvent::LiveAnswer { call } => {
                if let Some(dialed) = self.ringing.remove(&call) {
                    self.outcomes
                        .observe(now.saturating_duration_since(dialed).as_secs_f64(), true);
                }
                self.waiting.insert(call, now);
                self.ledger.live_answer(now);
                self.live_answers_seen += 1;
            }
            PacerEvent::Bridged { call } => {
                self.waiting.remove(&call);
            }
            PacerEvent::Abandoned { call } => {
                self.waiting.remove(&call);
                self.ledger.abandoned(now);
            }
            PacerEvent::NotLive { call, .. } => {
                if let Some(dialed) = self.ringing.remove(&call) {
                    self.outcomes
                        .observe(now.saturating_duration_since(dialed).as_secs_f64(), false);
                }
            }
            PacerEvent::CallEnded { call } => {
                self.lines_in_use.remove(&call);
                self.ringing.remove(&call);
                self.waiting.remove(&call);
            }
            PacerEvent::Tick => {}
        }
    }

    fn agent_changed(
        &mut self,
        agent: AgentId,
        activity: AgentActivity,
        leaving: bool,
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
        let Some(slot) = self.agents.get_mut(index) else {
            return;
        };
        if slot.activity != activity {
            let spent = now.saturating_duration_since(slot.since).as_secs_f64();
            match (slot.activity, activity) {
                (AgentActivity::OnCall, AgentActivity::WrapUp) => self.talk.observe(spent),
                (AgentActivity::WrapUp, _) => self.wrap.observe(spent),
                _ => {}
            }
            slot.activity = activity;
            slot.since = now;
        }
        slot.leaving = leaving;
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
                if self.live_answers_seen < COLD_START_ANSWERS
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
        Decision {
            dial,
            next_decision_within: Duration::from_secs(1),
            reasoning,
        }
    }

    /// Expected CPA false positives behind `live` detected live answers.
    fn false_positives(&self, live: f64) -> f64 {
        let f = self.config.amd_fp_estimate.clamp(0.0, 0.999);
        live * f / (1.0 - f)
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
        while let Some(&front) = self.recent_dials.front() {
            if now.saturating_duration_since(front) >= Duration::from_secs(1) {
                self.recent_dials.pop_front();
            } else {
                break;
            }
        }
        if let Some(cps) = self.config.max_calls_per_second {
            let allowed = (cps.max(0.0).floor() as u32)
                .max(1)
                .saturating_sub(self.recent_dials.len() as u32);
            if dial > allowed {
                dial = allowed;
                limit = Limit::CallsPerSecond;
            }
        }
        (dial, limit)
    }

    /// Fills the horizon curves for the current state (without new calls).
    fn predict_base(&mut self, now: Instant) {
        let rule = rule_bins(self.config.abandon_after_s);
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
        for (age, &count) in self.age_counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let n = f64::from(count);
            let curve = self.outcomes.live_curve(age);
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
        let _ = rule;
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
            let q = fresh[j - 1];
            let mean = self.answers_mean[j - 1] + k * q - self.free_mean[j + rule];
            let var = self.answers_var[j - 1] + k * q * (1.0 - q) + self.free_var[j + rule];
            let p = if var < 1e-12 {
                if mean > -0.5 { 1.0 } else { 0.0 }
            } else {
                normal_cdf((mean + 0.5) / var.sqrt())
            };
            total += arrivals * p;
            variance += arrivals * p * (1.0 - p);
        }
        (total, variance)
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

        // Closed loop: the marginal risk threshold follows the realised rate
        // (with pseudo-counts at the set-point so one early abandon does not
        // swing it), and tightens at once after a burst.
        let us = self.ledger.us(now);
        let uk = self.ledger.uk(now);
        let fp_uk = self.false_positives(uk.live_answers as f64);
        let fp_uk = fp_uk + FP_MARGIN_Z * fp_uk.sqrt();
        let realised_us = (us.abandoned as f64 + PRIOR_ANSWERS * set_point)
            / (us.live_answers as f64 + PRIOR_ANSWERS);
        let realised_uk = (uk.abandoned as f64 + fp_uk + PRIOR_ANSWERS * set_point)
            / (uk.live_answers as f64 + fp_uk + PRIOR_ANSWERS);
        let realised = realised_us.max(realised_uk);
        let error = (set_point - realised) / set_point;
        let mut threshold = BASE_RISK * (CONTROL_GAIN * error).exp().clamp(0.02, 4.0);
        let (burst, recent_answers) = self.ledger.recent(now, BURST_WINDOW);
        let expected = set_point * recent_answers as f64;
        if burst as f64 > 2.0 + expected + 2.0 * expected.sqrt() {
            threshold *= 0.25;
        }
        reasoning.risk_threshold = threshold;

        // Compliance guard: in each window, abandons so far plus the horizon's
        // (mean + z·σ) must stay under the cap over answers so far plus the
        // horizon's expected answers.
        // One abandon is always held in reserve, and the false positives,
        // which nobody can see, are budgeted at their estimate plus 1.5 σ.
        let guard_cap = cap * 0.97;
        let fp_guarded = fp + FP_MARGIN_Z * fp.sqrt();
        let budget = |expected_live: f64| -> f64 {
            let us_budget = guard_cap * (us.live_answers as f64 + expected_live)
                - us.abandoned as f64
                - RESERVE_ABANDONS;
            let fp_new = self.false_positives(expected_live);
            let uk_budget = guard_cap
                * (uk.live_answers as f64 + fp_guarded + expected_live + fp_new)
                - uk.abandoned as f64
                - fp_guarded
                - fp_new
                - RESERVE_ABANDONS;
            us_budget.min(uk_budget)
        };
        let base_live = self.answers_mean[HORIZON_BINS];
        // Fall back to progressive while the abandons already counted leave
        // less than a couple of abandons of room under the cap.
        let min_headroom = if us.live_answers < EARLY_ANSWERS {
            MIN_HEADROOM_EARLY
        } else {
            MIN_HEADROOM
        };
        if budget(0.0) + RESERVE_ABANDONS < min_headroom {
            reasoning.risk_threshold = threshold;
            return (0, Limit::Compliance);
        }

        let (a0, _) = self.expected_abandons(0.0);
        let mut previous = a0;
        let mut k = 0u32;
        let mut limit = Limit::AbandonRisk;
        let mut marginal = 0.0;
        loop {
            if k >= MAX_DIAL_PER_DECISION {
                break;
            }
            let next = f64::from(k + 1);
            let (a, var) = self.expected_abandons(next);
            let risk = (a - previous) / p_live;
            if risk > threshold {
                marginal = risk;
                break;
            }
            let live = base_live + next * p_live;
            let spread = GUARD_Z * var.sqrt();
            if a + spread > budget(live) {
                marginal = risk;
                limit = Limit::Compliance;
                break;
            }
            previous = a;
            marginal = risk;
            k += 1;
        }
        reasoning.marginal_risk = marginal;
        reasoning.expected_abandons = previous;
        reasoning.expected_answers = base_live + f64::from(k) * p_live;
        (k, limit)
    }
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
