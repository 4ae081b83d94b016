//! The simulator's inputs: scenario files (TOML), pre-drawn call streams and
//! agent events (CSV), and the call sources they become.

use serde::Deserialize;

use super::SimError;
use super::rng::{Dist, Rng};

/// What a dialed call turns out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallClass {
    Human,
    Machine,
    Busy,
    NoAnswer,
    /// A live person CPA wrongly took for a machine.
    AmdFalsePositive,
}

/// One dial's pre-drawn fate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallSpec {
    pub class: CallClass,
    /// Humans: dial → greeting done. Others: dial → line released.
    pub ring_s: f64,
    pub talk_s: f64,
    pub wrap_s: f64,
    /// The number needs an agent reserved from the dial (Ofcom's repeat
    /// call after an abandoned call or a machine verdict): never paced,
    /// dialed only with a Ready agent.
    pub needs_agent: bool,
}

/// Where dials get their fates from.
pub trait CallSource {
    /// The fate of the next dial, started at `t_s` into the shift.
    fn next_call(&mut self, t_s: f64) -> Result<CallSpec, SimError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentEventKind {
    Login,
    Pause,
    Resume,
    Logout,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEvent {
    pub agent: u32,
    pub t_s: f64,
    pub event: AgentEventKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcomes {
    /// Shares of dials (normalised): live person, machine, busy/failed, no answer.
    pub human: f64,
    pub machine: f64,
    pub busy: f64,
    pub noanswer: f64,
    /// The human share at the end of the shift (linear drift; others scale).
    #[serde(default)]
    pub human_at_end: Option<f64>,
    /// Fraction of live persons CPA takes for machines.
    #[serde(default)]
    pub amd_false_positive: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingTimes {
    /// Dial → end of the greeting.
    pub human: Dist,
    /// Dial → machine greeting heard (analysis time is added).
    pub machine: Dist,
    #[serde(default = "default_analysis")]
    pub machine_analysis: Dist,
    pub busy: Dist,
    pub noanswer: Dist,
}

fn default_analysis() -> Dist {
    Dist::Uniform { min: 2.0, max: 4.0 }
}

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub name: Option<String>,
    pub agents: u32,
    pub shift_hours: f64,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default = "default_lines")]
    pub trunk_lines_per_agent: f64,
    #[serde(default)]
    pub max_calls_per_second: Option<f64>,
    #[serde(default = "default_rule")]
    pub abandon_after_s: f64,
    #[serde(default = "default_message")]
    pub abandon_message_s: f64,
    /// What the pacer is told about CPA false positives.
    #[serde(default)]
    pub amd_fp_estimate: f64,
    /// Share of the list's records whose number needs an agent reserved
    /// from the dial (`[campaign.repeat_calls]`): what the UK repeat-call
    /// rule costs a list.
    #[serde(default)]
    pub repeat_call_share: f64,
    pub outcomes: Outcomes,
    pub talk: Dist,
    pub wrap: Dist,
    pub ring: RingTimes,
    #[serde(default, rename = "agent_event")]
    pub agent_events: Vec<AgentEvent>,
}

fn default_seeds() -> Vec<u64> {
    vec![1]
}
fn default_lines() -> f64 {
    3.0
}
fn default_rule() -> f64 {
    2.0
}
fn default_message() -> f64 {
    5.0
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Self, SimError> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| SimError::Scenario(e.to_string()))?;
        scenario.check()?;
        Ok(scenario)
    }

    fn check(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Scenario(m));
        if self.agents == 0 || self.agents > 100_000 {
            return bad(format!("`agents` = {}: give 1 to 100000", self.agents));
        }
        if !(self.shift_hours > 0.0 && self.shift_hours <= 24.0 * 31.0) {
            return bad("`shift_hours`: give hours in (0, 744]".into());
        }
        if self.seeds.is_empty() {
            return bad("`seeds`: give at least one seed".into());
        }
        if !(self.trunk_lines_per_agent >= 1.0 && self.trunk_lines_per_agent <= 100.0) {
            return bad("`trunk_lines_per_agent`: give 1 to 100".into());
        }
        if let Some(cps) = self.max_calls_per_second
            && !(cps >= 1.0 && cps.is_finite())
        {
            return bad("`max_calls_per_second`: give at least 1".into());
        }
        if !(self.abandon_after_s >= 0.0 && self.abandon_after_s <= 30.0) {
            return bad("`abandon_after_s`: give 0 to 30 seconds".into());
        }
        if !(self.abandon_message_s >= 0.0 && self.abandon_message_s <= 600.0) {
            return bad("`abandon_message_s`: give 0 to 600 seconds".into());
        }
        if !(0.0..0.5).contains(&self.amd_fp_estimate) {
            return bad("`amd_fp_estimate`: give a fraction in [0, 0.5)".into());
        }
        if !(0.0..=1.0).contains(&self.repeat_call_share) {
            return bad("`repeat_call_share`: give a fraction in [0, 1]".into());
        }
        let o = &self.outcomes;
        let shares = [o.human, o.machine, o.busy, o.noanswer];
        if shares.iter().any(|s| !(s.is_finite() && *s >= 0.0)) || shares.iter().sum::<f64>() <= 0.0
        {
            return bad("`outcomes`: shares are non-negative numbers, not all zero".into());
        }
        if let Some(end) = o.human_at_end
            && !(0.0..=1.0).contains(&end)
        {
            return bad("`outcomes.human_at_end`: give a fraction in [0, 1]".into());
        }
        if !(0.0..=1.0).contains(&o.amd_false_positive) {
            return bad("`outcomes.amd_false_positive`: give a fraction in [0, 1]".into());
        }
        for (name, dist) in [
            ("talk", &self.talk),
            ("wrap", &self.wrap),
            ("ring.human", &self.ring.human),
            ("ring.machine", &self.ring.machine),
            ("ring.machine_analysis", &self.ring.machine_analysis),
            ("ring.busy", &self.ring.busy),
            ("ring.noanswer", &self.ring.noanswer),
        ] {
            dist.check()
                .map_err(|m| SimError::Scenario(format!("`{name}`: {m}")))?;
        }
        check_agent_events(&self.agent_events, self.agents)
            .map_err(|(i, m)| SimError::Scenario(format!("agent_event[{i}]: {m}")))?;
        Ok(())
    }

    pub fn max_lines(&self) -> u32 {
        (f64::from(self.agents) * self.trunk_lines_per_agent).floor() as u32
    }
}

/// Draws each dial's fate from a scenario; the i-th dial of a seed always
/// gets the same draws, so policies compare on common random numbers.
pub struct ScenarioSource<'a> {
    scenario: &'a Scenario,
    seed: u64,
    index: u64,
}

impl<'a> ScenarioSource<'a> {
    pub fn new(scenario: &'a Scenario, seed: u64) -> Self {
        Self {
            scenario,
            seed,
            index: 0,
        }
    }
}

impl CallSource for ScenarioSource<'_> {
    fn next_call(&mut self, t_s: f64) -> Result<CallSpec, SimError> {
        let s = self.scenario;
        let o = &s.outcomes;
        let mut rng = Rng::for_item(self.seed, self.index);
        self.index += 1;
        let total = o.human + o.machine + o.busy + o.noanswer;
        let mut human = o.human / total;
        if let Some(end) = o.human_at_end {
            let progress = (t_s / (s.shift_hours * 3600.0)).clamp(0.0, 1.0);
            human += (end - human) * progress;
        }
        let rest = (total - o.human).max(1e-12);
        let scale = (1.0 - human) / rest;
        let machine = o.machine * scale;
        let busy = o.busy * scale;
        let u = rng.uniform();
        let fp_draw = rng.uniform();
        let (class, ring_s) = if u < human {
            let ring = s.ring.human.sample(&mut rng);
            if fp_draw < o.amd_false_positive {
                (
                    CallClass::AmdFalsePositive,
                    ring + s.ring.machine_analysis.sample(&mut rng),
                )
            } else {
                (CallClass::Human, ring)
            }
        } else if u < human + machine {
            let ring = s.ring.machine.sample(&mut rng) + s.ring.machine_analysis.sample(&mut rng);
            (CallClass::Machine, ring)
        } else if u < human + machine + busy {
            (CallClass::Busy, s.ring.busy.sample(&mut rng))
        } else {
            (CallClass::NoAnswer, s.ring.noanswer.sample(&mut rng))
        };
        let talk_s = s.talk.sample(&mut rng);
        let wrap_s = s.wrap.sample(&mut rng);
        // Drawn last: a share of 0 leaves every other draw as it was.
        let needs_agent = rng.uniform() < s.repeat_call_share;
        Ok(CallSpec {
            class,
            ring_s,
            talk_s,
            wrap_s,
            needs_agent,
        })
    }
}

/// A pre-drawn stream: the i-th dial gets the i-th row.
pub struct StreamSource<'a> {
    rows: &'a [CallSpec],
    next: usize,
}

impl<'a> StreamSource<'a> {
    pub fn new(rows: &'a [CallSpec]) -> Self {
        Self { rows, next: 0 }
    }
}

impl CallSource for StreamSource<'_> {
    fn next_call(&mut self, t_s: f64) -> Result<CallSpec, SimError> {
        let row = self
            .rows
            .get(self.next)
            .copied()
            .ok_or(SimError::StreamExhausted {
                rows: self.rows.len(),
                t_s,
            })?;
        self.next += 1;
        Ok(row)
    }
}

fn parse_seconds(field: &str, name: &str) -> Result<f64, String> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(0.0);
    }
    match field.parse::<f64>() {
        Ok(v) if (0.0..1e7).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{name}` = {field:?}: give a non-negative number of seconds"
        )),
    }
}

fn split_row(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

/// Parses a call stream: header `attempt,class,ring_s,talk_s,wrap_s`.
pub fn parse_stream(text: &str) -> Result<Vec<CallSpec>, SimError> {
    let mut rows = Vec::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = lines.next().map(|(_, l)| split_row(l));
    if header.as_deref() != Some(&["attempt", "class", "ring_s", "talk_s", "wrap_s"][..]) {
        return Err(SimError::Stream {
            line: 1,
            message: "the header must be `attempt,class,ring_s,talk_s,wrap_s`".into(),
        });
    }
    for (index, line) in lines {
        let fields = split_row(line);
        let err = |message: String| SimError::Stream {
            line: index + 1,
            message,
        };
        let [attempt, class, ring, talk, wrap] = fields[..] else {
            return Err(err(format!("expected 5 columns, found {}", fields.len())));
        };
        attempt
            .parse::<u64>()
            .map_err(|_| err(format!("`attempt` = {attempt:?}: give a whole number")))?;
        let class = match class {
            "human" => CallClass::Human,
            "machine" => CallClass::Machine,
            "busy" => CallClass::Busy,
            "noanswer" => CallClass::NoAnswer,
            "amd_fp" => CallClass::AmdFalsePositive,
            other => {
                return Err(err(format!(
                    "`class` = {other:?}: one of human, machine, busy, noanswer, amd_fp"
                )));
            }
        };
        rows.push(CallSpec {
            class,
            ring_s: parse_seconds(ring, "ring_s").map_err(err)?,
            talk_s: parse_seconds(talk, "talk_s").map_err(err)?,
            wrap_s: parse_seconds(wrap, "wrap_s").map_err(err)?,
            needs_agent: false,
        });
    }
    Ok(rows)
}

/// Parses agent events: header `agent,t_s,event`, rows sorted by time.
pub fn parse_agent_events(text: &str, agents: u32) -> Result<Vec<AgentEvent>, SimError> {
    let mut events = Vec::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = lines.next().map(|(_, l)| split_row(l));
    if header.as_deref() != Some(&["agent", "t_s", "event"][..]) {
        return Err(SimError::AgentEvents {
            line: 1,
            message: "the header must be `agent,t_s,event`".into(),
        });
    }
    let mut lines_of = Vec::new();
    for (index, line) in lines {
        let fields = split_row(line);
        let err = |message: String| SimError::AgentEvents {
            line: index + 1,
            message,
        };
        let [agent, t, event] = fields[..] else {
            return Err(err(format!("expected 3 columns, found {}", fields.len())));
        };
        let agent = agent
            .parse::<u32>()
            .map_err(|_| err(format!("`agent` = {agent:?}: give an agent number")))?;
        let t_s = parse_seconds(t, "t_s").map_err(err)?;
        let event = match event {
            "login" => AgentEventKind::Login,
            "pause" => AgentEventKind::Pause,
            "resume" => AgentEventKind::Resume,
            "logout" => AgentEventKind::Logout,
            other => {
                return Err(err(format!(
                    "`event` = {other:?}: one of login, pause, resume, logout"
                )));
            }
        };
        events.push(AgentEvent { agent, t_s, event });
        lines_of.push(index + 1);
    }
    check_agent_events(&events, agents).map_err(|(i, message)| SimError::AgentEvents {
        line: lines_of.get(i).copied().unwrap_or(0),
        message,
    })?;
    Ok(events)
}

/// Agent numbers in range (0-based, below `agents`; 1-based numbering with
/// `agents` itself is accepted too), times sorted, one login per agent.
fn check_agent_events(events: &[AgentEvent], agents: u32) -> Result<(), (usize, String)> {
    let mut logins = std::collections::HashSet::new();
    let mut last = 0.0;
    for (i, e) in events.iter().enumerate() {
        if e.agent > agents {
            return Err((
                i,
                format!("agent {} does not exist (agents: {agents})", e.agent),
            ));
        }
        if !(e.t_s.is_finite() && e.t_s >= 0.0) {
            return Err((i, "`t_s` must be a non-negative time".into()));
        }
        if e.t_s < last {
            return Err((
                i,
                format!("rows must be sorted by time ({} < {last})", e.t_s),
            ));
        }
        last = e.t_s;
        if e.event == AgentEventKind::Login && !logins.insert(e.agent) {
            return Err((i, format!("agent {} logs in twice", e.agent)));
        }
    }
    Ok(())
}
