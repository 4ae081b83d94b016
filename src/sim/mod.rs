//! The deterministic discrete-event campaign simulator behind
//! `outdial simulate`: a virtual clock drives the real [`Pacer`] with the
//! events a campaign would produce (dials resolving after their ring time,
//! live answers waiting up to 2 s for an agent, talk and wrap-up, agents
//! logging in, pausing and out) and measures what a supervisor cares about.
//!
//! Time is kept in whole microseconds so event order never depends on float
//! rounding; ties resolve in scheduling order.

pub mod grid;
pub mod input;
pub mod report;
pub mod rng;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::pacing::{
    AgentActivity, AgentId, CallId, NotLive, Pacer, PacerConfig, PacerEvent, PacingMode,
};
pub use input::{AgentEvent, AgentEventKind, CallClass, CallSource, CallSpec, Scenario};
pub use report::Report;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("scenario: {0}")]
    Scenario(String),
    #[error("stream line {line}: {message}")]
    Stream { line: usize, message: String },
    #[error(
        "the call stream ran out after {rows} rows (dial at t = {t_s:.1} s); supply a longer stream or fewer hours/agents"
    )]
    StreamExhausted { rows: usize, t_s: f64 },
    #[error("agent events line {line}: {message}")]
    AgentEvents { line: usize, message: String },
    #[error(
        "policy {0:?}: give predictive, predictive:SETPOINT (e.g. predictive:0.02), progressive, reserved (progressive with the agent reserved at the dial) or ratio:K (e.g. ratio:2.5)"
    )]
    Policy(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A pacing policy to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    Predictive {
        set_point: f64,
        cap: f64,
    },
    /// `lines` per ready agent (1.0 is progressive).
    Ratio {
        lines: f64,
    },
    /// Progressive with each call dialed for a Ready agent, reserved from
    /// the dial on (`agent_reserved_at_dial`): the agent waits through the
    /// ring and takes the live answer at once.
    ReservedAtDial,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let bad = || SimError::Policy(text.to_string());
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (text, None),
        };
        let number = |a: &str| a.parse::<f64>().ok().filter(|v| v.is_finite());
        match (name, arg) {
            ("predictive", None) => Ok(Policy::Predictive {
                set_point: 0.025,
                cap: 0.03,
            }),
            ("predictive", Some(a)) => match number(a) {
                Some(sp) if sp > 0.0 && sp <= 0.2 => Ok(Policy::Predictive {
                    set_point: sp,
                    // The legal 3 % stays the cap unless a what-if aims above it.
                    cap: if sp < 0.03 { 0.03 } else { (sp * 1.2).min(0.2) },
                }),
                _ => Err(bad()),
            },
            ("progressive", None) => Ok(Policy::Ratio { lines: 1.0 }),
            ("reserved", None) => Ok(Policy::ReservedAtDial),
            ("ratio", Some(a)) => match number(a) {
                Some(k) if (1.0..=20.0).contains(&k) => Ok(Policy::Ratio { lines: k }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    pub fn name(&self) -> String {
        match *self {
            Policy::Predictive { set_point, .. } if (set_point - 0.025).abs() < 1e-12 => {
                "predictive".into()
            }
            Policy::Predictive { set_point, .. } => format!("predictive:{set_point}"),
            Policy::Ratio { lines: 1.0 } => "progressive".into(),
            Policy::Ratio { lines } => format!("ratio:{lines}"),
            Policy::ReservedAtDial => "reserved".into(),
        }
    }

    fn mode(&self) -> PacingMode {
        match *self {
            Policy::Predictive { set_point, cap } => PacingMode::Predictive { set_point, cap },
            Policy::Ratio { lines } => PacingMode::Progressive {
                lines_per_agent: lines,
            },
            Policy::ReservedAtDial => PacingMode::Progressive {
                lines_per_agent: 1.0,
            },
        }
    }
}

/// The campaign around the call source.
#[derive(Debug, Clone)]
pub struct Setup {
    pub agents: u32,
    pub shift_s: f64,
    pub max_lines: u32,
    pub max_calls_per_second: Option<f64>,
    pub abandon_after_s: f64,
    pub abandon_message_s: f64,
    pub amd_fp_estimate: f64,
    pub agent_events: Vec<AgentEvent>,
}

impl Setup {
    pub fn from_scenario(s: &Scenario) -> Self {
        Self {
            agents: s.agents,
            shift_s: s.shift_hours * 3600.0,
            max_lines: s.max_lines(),
            max_calls_per_second: s.max_calls_per_second,
            abandon_after_s: s.abandon_after_s,
            abandon_message_s: s.abandon_message_s,
            amd_fp_estimate: s.amd_fp_estimate,
            agent_events: s.agent_events.clone(),
        }
    }
}

/// Live answers after which the running rates count as "peak" rates.
pub const PEAK_RATE_MIN_ANSWERS: u64 = 100;

const TICK_US: u64 = 1_000_000;

/// No dial resolves sooner than this after it is placed (a SIP round trip
/// takes longer). A scenario may draw zero ring times (`kind = "fixed"`,
/// `value = 0`, or a uniform from 0): without a floor a dial that resolves
/// at once frees its line or its agent at the same instant, the pacer dials
/// again at that instant, and the virtual clock never moves on.
const MIN_RING_S: f64 = 0.02;

fn us(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1e6).round() as u64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Tick,
    Agent(usize),
    Resolve(u64),
    AbandonCheck(u64),
    TalkEnd(u32),
    WrapEnd(u32),
    LineFree(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AState {
    Out,
    Ready,
    /// Reserved from the dial for the call it waits on (`ReservedAtDial`).
    Reserved,
    Talk,
    Wrap,
    Paused,
    LoggedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    Pause,
    Logout,
}

#[derive(Debug, Clone)]
struct Agent {
    state: AState,
    since: u64,
    leave: Option<Leave>,
    logged_in_from: Option<u64>,
    call: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CState {
    Ringing,
    Waiting,
    Bridged,
    Abandoned,
    Done,
}

#[derive(Debug, Clone)]
struct Call {
    spec: CallSpec,
    state: CState,
    answered: u64,
    /// The agent reserved for it from the dial (`ReservedAtDial`).
    agent: Option<u32>,
}

/// Runs one policy over one call source.
pub fn run(setup: &Setup, source: &mut dyn CallSource, policy: Policy) -> Result<Report, SimError> {
    let mut sim = Sim::new(setup, policy);
    sim.run(source)?;
    Ok(sim.report(policy))
}

struct Sim<'a> {
    setup: &'a Setup,
    epoch: Instant,
    pacer: Pacer,
    now: u64,
    shift_end: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    agents: Vec<Agent>,
    ready: BTreeSet<(u64, u32)>,
    calls: Vec<Call>,
    waiting: VecDeque<u64>,
    lines: u32,
    /// Every dial takes a Ready agent with it (`Policy::ReservedAtDial`).
    reserve_at_dial: bool,
    /// Records whose number needs an agent reserved from the dial, drawn
    /// and waiting for a Ready agent (in list order).
    repeats: VecDeque<CallSpec>,
    // Measurements.
    m: report::Counters,
}

impl<'a> Sim<'a> {
    fn new(setup: &'a Setup, policy: Policy) -> Self {
        let epoch = Instant::now();
        let config = PacerConfig {
            mode: policy.mode(),
            max_lines: setup.max_lines,
            max_calls_per_second: setup.max_calls_per_second,
            abandon_after_s: setup.abandon_after_s,
            amd_fp_estimate: setup.amd_fp_estimate,
        };
        let agents = vec![
            Agent {
                state: AState::Out,
                since: 0,
                leave: None,
                logged_in_from: None,
                call: None,
            };
            setup.agents as usize
        ];
        Self {
            setup,
            epoch,
            pacer: Pacer::new(config, epoch),
            now: 0,
            shift_end: us(setup.shift_s),
            seq: 0,
            queue: BinaryHeap::new(),
            agents,
            ready: BTreeSet::new(),
            calls: Vec::new(),
            waiting: VecDeque::new(),
            lines: 0,
            reserve_at_dial: policy == Policy::ReservedAtDial,
            repeats: VecDeque::new(),
            m: report::Counters::default(),
        }
    }

    fn instant(&self) -> Instant {
        self.epoch + Duration::from_micros(self.now)
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    fn tell(&mut self, event: PacerEvent) {
        let now = self.instant();
        self.pacer.on_event(event, now);
    }

    fn tell_agent(&mut self, agent: u32, activity: AgentActivity) {
        let leaving = self
            .agents
            .get(agent as usize)
            .is_some_and(|a| a.leave.is_some());
        let since = self.instant();
        self.tell(PacerEvent::Agent {
            agent: AgentId(agent),
            activity,
            leaving,
            since,
        });
    }

    /// Time in [from, to) that falls inside the shift.
    fn in_shift(&self, from: u64, to: u64) -> u64 {
        to.min(self.shift_end)
            .saturating_sub(from.min(self.shift_end))
    }

    fn run(&mut self, source: &mut dyn CallSource) -> Result<(), SimError> {
        // Agent numbering: 0-based when any event names agent 0, else 1-based.
        let base = if self.setup.agent_events.iter().any(|e| e.agent == 0) {
            0
        } else {
            1
        };
        let mut has_login = vec![false; self.agents.len()];
        for (i, e) in self.setup.agent_events.iter().enumerate() {
            let Some(index) = e.agent.checked_sub(base) else {
                continue;
            };
            if (index as usize) < self.agents.len() {
                if e.event == AgentEventKind::Login {
                    has_login[index as usize] = true;
                }
                self.schedule(us(e.t_s), Ev::Agent(i));
            } else {
                return Err(SimError::AgentEvents {
                    line: i + 2,
                    message: format!("agent {} does not exist", e.agent),
                });
            }
        }
        for (agent, logged) in has_login.iter().enumerate() {
            if !logged {
                self.login(agent as u32);
            }
        }
        self.schedule(0, Ev::Tick);
        let mut last = 0u64;
        while let Some(Reverse((at, _, ev))) = self.queue.pop() {
            // Integrate lines in use over the shift.
            self.m.line_time_us += u128::from(self.lines) * u128::from(self.in_shift(last, at));
            last = at;
            self.now = at;
            match ev {
                Ev::Tick => {
                    self.tell(PacerEvent::Tick);
                    if at + TICK_US < self.shift_end {
                        self.schedule(at + TICK_US, Ev::Tick);
                    }
                }
                Ev::Agent(i) => {
                    if let Some(&e) = self.setup.agent_events.get(i) {
                        self.agent_event(e.agent - base, e.event);
                    }
                }
                Ev::Resolve(call) => self.resolve(call),
                Ev::AbandonCheck(call) => self.abandon_check(call),
                Ev::TalkEnd(agent) => self.talk_end(agent),
                Ev::WrapEnd(agent) => self.wrap_end(agent),
                Ev::LineFree(call) => self.line_free(call),
            }
            let batch_done = self.queue.peek().is_none_or(|Reverse((t, _, _))| *t != at);
            if batch_done && at < self.shift_end {
                self.dial(source)?;
            }
        }
        // Close logged-in time at the end of the shift.
        for agent in &self.agents {
            if let Some(from) = agent.logged_in_from {
                self.m.logged_in_us += self.shift_end.saturating_sub(from.min(self.shift_end));
            }
        }
        self.m.shift_us = self.shift_end;
        Ok(())
    }

    fn dial(&mut self, source: &mut dyn CallSource) -> Result<(), SimError> {
        // Repeat calls first, each with the longest idle Ready agent, as
        // the engine dials them before the pacer's next decision (which
        // then sees those agents reserved).
        while !self.repeats.is_empty()
            && !self.ready.is_empty()
            && self.lines < self.setup.max_lines
        {
            let Some(agent) = self.reserve_longest_idle() else {
                break;
            };
            if let Some(spec) = self.repeats.pop_front() {
                self.m.repeat_calls += 1;
                self.start_call(spec, Some(agent));
            }
        }
        let now = self.instant();
        let decision = self.pacer.decide(now);
        for _ in 0..decision.dial {
            if self.lines >= self.setup.max_lines {
                break;
            }
            if self.reserve_at_dial && self.ready.is_empty() {
                break;
            }
            let spec = source.next_call(self.now as f64 / 1e6)?;
            if spec.needs_agent && !self.reserve_at_dial {
                // Never paced: it waits for a Ready agent (the next
                // decision's first dials); the pacer's dial goes unused.
                self.repeats.push_back(spec);
                continue;
            }
            let agent = if self.reserve_at_dial {
                self.reserve_longest_idle()
            } else {
                None
            };
            if spec.needs_agent {
                self.m.repeat_calls += 1;
            }
            self.start_call(spec, agent);
        }
        Ok(())
    }

    /// Reserves the longest idle Ready agent from the dial on; it keeps
    /// its `since` (the wait it is in goes on through the ring).
    fn reserve_longest_idle(&mut self) -> Option<u32> {
        let &(since, agent) = self.ready.iter().next()?;
        self.ready.remove(&(since, agent));
        if let Some(a) = self.agents.get_mut(agent as usize) {
            a.state = AState::Reserved;
        }
        self.tell_agent(agent, AgentActivity::Reserved);
        Some(agent)
    }

    /// A dial: the line held, the pacer told, the outcome scheduled.
    fn start_call(&mut self, spec: CallSpec, agent: Option<u32>) {
        let id = self.calls.len() as u64;
        self.calls.push(Call {
            spec,
            state: CState::Ringing,
            answered: 0,
            agent,
        });
        if let Some(a) = agent.and_then(|a| self.agents.get_mut(a as usize)) {
            a.call = Some(id);
        }
        self.lines += 1;
        self.m.max_lines_in_use = self.m.max_lines_in_use.max(self.lines);
        self.m.dials += 1;
        let call = CallId(id);
        self.tell(if agent.is_some() {
            PacerEvent::CallDialedWithAgent { call }
        } else {
            PacerEvent::CallDialed { call }
        });
        self.schedule(self.now + us(spec.ring_s.max(MIN_RING_S)), Ev::Resolve(id));
    }

    fn resolve(&mut self, id: u64) {
        let Some(call) = self.calls.get(id as usize) else {
            return;
        };
        let class = call.spec.class;
        let reserved = call.agent;
        match class {
            CallClass::Human => {
                self.m.live_answers += 1;
                if let Some(c) = self.calls.get_mut(id as usize) {
                    c.state = CState::Waiting;
                    c.answered = self.now;
                }
                self.tell(PacerEvent::LiveAnswer { call: CallId(id) });
                if let Some(agent) = reserved {
                    self.bridge(id, agent);
                } else if let Some(&(since, agent)) = self.ready.iter().next() {
                    self.ready.remove(&(since, agent));
                    self.bridge(id, agent);
                } else {
                    self.waiting.push_back(id);
                    let deadline = self.now + us(self.setup.abandon_after_s);
                    self.schedule(deadline, Ev::AbandonCheck(id));
                }
            }
            other => {
                let why = match other {
                    CallClass::Busy => NotLive::Busy,
                    CallClass::NoAnswer => NotLive::NoAnswer,
                    _ => NotLive::Machine,
                };
                if other == CallClass::AmdFalsePositive {
                    self.m.amd_false_positives += 1;
                    self.track_peaks();
                }
                self.tell(PacerEvent::NotLive {
                    call: CallId(id),
                    why,
                });
                self.line_free(id);
                if let Some(agent) = reserved {
                    self.reserved_call_failed(agent);
                }
            }
        }
    }

    /// The call an agent was reserved for did not reach a person: the
    /// agent is Ready again (or leaves, as asked meanwhile), still in the
    /// same wait — it has been waiting since before the dial.
    fn reserved_call_failed(&mut self, agent: u32) {
        let Some(waiting_since) = self.agents.get_mut(agent as usize).map(|a| {
            a.call = None;
            a.since
        }) else {
            return;
        };
        self.wrap_end(agent);
        if let Some(a) = self.agents.get_mut(agent as usize)
            && a.state == AState::Ready
            && self.ready.remove(&(a.since, agent))
        {
            a.since = waiting_since;
            self.ready.insert((waiting_since, agent));
        }
    }

    fn line_free(&mut self, id: u64) {
        if let Some(c) = self.calls.get_mut(id as usize) {
            c.state = CState::Done;
        }
        self.lines = self.lines.saturating_sub(1);
        self.tell(PacerEvent::CallEnded { call: CallId(id) });
    }

    fn bridge(&mut self, id: u64, agent: u32) {
        let (talk_s, answered) = match self.calls.get_mut(id as usize) {
            Some(c) => {
                c.state = CState::Bridged;
                (c.spec.talk_s, c.answered)
            }
            None => return,
        };
        let now = self.now;
        let talk_end = now + us(talk_s);
        let in_shift = self.in_shift(now, talk_end);
        if let Some(a) = self.agents.get_mut(agent as usize) {
            if matches!(a.state, AState::Ready | AState::Reserved) && a.since < self.shift_end {
                self.m.agent_waits_us.push(now - a.since);
            }
            a.state = AState::Talk;
            a.since = now;
            a.call = Some(id);
        }
        self.m.connected += 1;
        self.m.talk_us += in_shift;
        self.m.answer_to_agent_us.push(now - answered);
        self.tell(PacerEvent::Bridged { call: CallId(id) });
        self.tell_agent(agent, AgentActivity::OnCall);
        self.schedule(talk_end, Ev::TalkEnd(agent));
    }

    fn abandon_check(&mut self, id: u64) {
        let waiting = self
            .calls
            .get(id as usize)
            .is_some_and(|c| c.state == CState::Waiting);
        if !waiting {
            return;
        }
        if let Some(c) = self.calls.get_mut(id as usize) {
            c.state = CState::Abandoned;
        }
        self.m.abandoned += 1;
        self.track_peaks();
        self.tell(PacerEvent::Abandoned { call: CallId(id) });
        self.schedule(
            self.now + us(self.setup.abandon_message_s),
            Ev::LineFree(id),
        );
    }

    fn track_peaks(&mut self) {
        let m = &mut self.m;
        if m.live_answers >= PEAK_RATE_MIN_ANSWERS {
            let us_rate = m.abandoned as f64 / m.live_answers as f64;
            let fp = m.amd_false_positives as f64;
            let uk_rate = (m.abandoned as f64 + fp) / (m.live_answers as f64 + fp);
            m.peak_rate_us = m.peak_rate_us.max(us_rate);
            m.peak_rate_uk = m.peak_rate_uk.max(uk_rate);
        }
    }

    fn talk_end(&mut self, agent: u32) {
        let Some(a) = self.agents.get_mut(agent as usize) else {
            return;
        };
        let call = a.call.take();
        let wrap_s = call
            .and_then(|id| self.calls.get(id as usize))
            .map_or(0.0, |c| c.spec.wrap_s);
        a.state = AState::Wrap;
        a.since = self.now;
        if let Some(id) = call {
            self.line_free(id);
        }
        let wrap_end = self.now + us(wrap_s);
        self.m.wrap_us += self.in_shift(self.now, wrap_end);
        self.tell_agent(agent, AgentActivity::WrapUp);
        self.schedule(wrap_end, Ev::WrapEnd(agent));
    }

    fn wrap_end(&mut self, agent: u32) {
        let leave = self.agents.get(agent as usize).and_then(|a| a.leave);
        match leave {
            Some(Leave::Pause) => self.set_paused(agent),
            Some(Leave::Logout) => self.logout(agent),
            None => self.become_ready(agent),
        }
    }

    fn set_paused(&mut self, agent: u32) {
        if let Some(a) = self.agents.get_mut(agent as usize) {
            a.state = AState::Paused;
            a.since = self.now;
            a.leave = None;
        }
        self.tell_agent(agent, AgentActivity::Paused);
    }

    fn logout(&mut self, agent: u32) {
        let now = self.now;
        let shift_end = self.shift_end;
        if let Some(a) = self.agents.get_mut(agent as usize) {
            if let Some(from) = a.logged_in_from.take() {
                self.m.logged_in_us += now.min(shift_end).saturating_sub(from.min(shift_end));
            }
            a.state = AState::LoggedOut;
            a.since = now;
            a.leave = None;
        }
        self.tell_agent(agent, AgentActivity::LoggedOut);
    }

    fn login(&mut self, agent: u32) {
        let now = self.now;
        if let Some(a) = self.agents.get_mut(agent as usize) {
            if !matches!(a.state, AState::Out | AState::LoggedOut) {
                return;
            }
            a.logged_in_from = Some(now);
        }
        self.become_ready(agent);
    }

    fn become_ready(&mut self, agent: u32) {
        let now = self.now;
        if let Some(a) = self.agents.get_mut(agent as usize) {
            a.state = AState::Ready;
            a.since = now;
            a.leave = None;
        }
        self.tell_agent(agent, AgentActivity::Ready);
        // The oldest queued customer still inside the 2-second window.
        while let Some(id) = self.waiting.pop_front() {
            if self
                .calls
                .get(id as usize)
                .is_some_and(|c| c.state == CState::Waiting)
            {
                self.bridge(id, agent);
                return;
            }
        }
        self.ready.insert((now, agent));
    }

    fn agent_event(&mut self, agent: u32, kind: AgentEventKind) {
        let Some(state) = self.agents.get(agent as usize).map(|a| a.state) else {
            return;
        };
        match (kind, state) {
            (AgentEventKind::Login, AState::Out | AState::LoggedOut) => self.login(agent),
            (AgentEventKind::Pause, AState::Ready) => {
                self.leave_ready(agent);
                self.set_paused(agent);
            }
            (AgentEventKind::Logout, AState::Ready | AState::Paused) => {
                self.leave_ready(agent);
                self.logout(agent);
            }
            (
                AgentEventKind::Pause | AgentEventKind::Logout,
                AState::Talk | AState::Wrap | AState::Reserved,
            ) => {
                let leave = if kind == AgentEventKind::Pause {
                    Leave::Pause
                } else {
                    Leave::Logout
                };
                if let Some(a) = self.agents.get_mut(agent as usize) {
                    // A logout is never downgraded to a pause.
                    if a.leave != Some(Leave::Logout) {
                        a.leave = Some(leave);
                    }
                }
                self.tell_agent(agent, activity_of(state));
            }
            (AgentEventKind::Resume, AState::Paused) => self.become_ready(agent),
            (AgentEventKind::Resume, AState::Talk | AState::Wrap | AState::Reserved) => {
                if let Some(a) = self.agents.get_mut(agent as usize)
                    && a.leave == Some(Leave::Pause)
                {
                    a.leave = None;
                }
                self.tell_agent(agent, activity_of(state));
            }
            _ => {}
        }
    }

    fn leave_ready(&mut self, agent: u32) {
        if let Some(a) = self.agents.get(agent as usize)
            && a.state == AState::Ready
        {
            self.ready.remove(&(a.since, agent));
        }
    }

    fn report(&mut self, policy: Policy) -> Report {
        Report::from_counters(policy.name(), self.setup, &mut self.m)
    }
}

/// What the pacer hears of an agent busy in `state` (on a call, in
/// wrap-up, reserved for a call that rings).
fn activity_of(state: AState) -> AgentActivity {
    match state {
        AState::Talk => AgentActivity::OnCall,
        AState::Reserved => AgentActivity::Reserved,
        _ => AgentActivity::WrapUp,
    }
}

#[cfg(test)]
mod tests;
