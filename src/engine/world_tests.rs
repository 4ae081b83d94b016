//! The dialer against a random world: a shell that carries out every effect
//! the way the driver does — late, out of order, or failing where a network
//! or a phone can fail — beside agents and supervisors pressing buttons at
//! random, in every dialing mode. Whatever happens:
//!
//! - every leased record is dialed or given back exactly once, and every
//!   placed call is written to the store exactly once (nothing is lost);
//! - no agent is connected to two customers at once;
//! - no effect names a call after it was over (but its store row);
//! - timers never spin (a deadline handled is never due again at once);
//! - once the campaign stops, the calls end and the agents log out, nothing
//!   is left: no call in flight, no disposition waiting, no lease held.
//!
//! In half the cases a second campaign in another mode shares the trunk
//! and two of the agents.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::attempt::{AttemptResult, Failure, Verdict, outside_party};
use super::campaign_run::{RunCommand, RunState};
use super::dialer::{CallbackAt, Command, Dialer};
use super::io::{CallId, ConnectFailure, Effect, HistoryMinute, Input};
use super::preview::PreviewAction;
use crate::agent::AgentState;
use crate::config::{Config, DialMode};
use crate::store::Lease;

const AGENTS: [&str; 4] = ["a1", "a2", "a3", "sim"];
const CAMPAIGN: &str = "demo";
/// A second campaign (in half the cases) sharing the trunk and two agents.
const OTHER: &str = "other";
const CAMPAIGNS: [&str; 2] = [CAMPAIGN, OTHER];

fn config(mode: u32, options: u32) -> Config {
    let modes = ["progressive", "predictive", "preview", "push_preview"];
    let other_mode = modes[(mode as usize + 1 + (options as usize >> 5)) % 4];
    let mode = modes[mode as usize % 4];
    let two = options & 32 != 0;
    let shared = if two {
        format!(r#"["{CAMPAIGN}", "{OTHER}"]"#)
    } else {
        format!(r#"["{CAMPAIGN}"]"#)
    };
    let other = if two {
        format!(
            r#"[[campaign]]
name = "{OTHER}"
mode = "{other_mode}"
ring_timeout_s = 15
"#
        )
    } else {
        String::new()
    };
    let wrap_up_timeout = if options & 1 != 0 {
        "wrap_up_timeout_s = 20"
    } else {
        ""
    };
    let confirm_join = if options & 2 != 0 {
        "agents_confirm_join = true"
    } else {
        ""
    };
    let abandon_prompt = if options & 4 != 0 {
        "abandon_prompt = \"abandon.wav\""
    } else {
        ""
    };
    // Progressive campaigns with every call dialed for its agent; preview
    // campaigns whose calls the analyser decides at the answer.
    let reserved_at_dial = match mode {
        _ if options & 128 == 0 => "",
        "progressive" => "agent_reserved_at_dial = true",
        "preview" | "push_preview" => "preview_variant = \"standard\"",
        _ => "",
    };
    let machine_action = ["hangup", "leave_message", "connect_agent"][(options as usize >> 3) % 3];
    // Left by the dialer after the beep, or dropped by an agent given the
    // machine (or a person the agent takes for one).
    let voicemail_prompt = if machine_action != "hangup" {
        "voicemail_prompt = \"vm.wav\""
    } else {
        ""
    };
    let text = format!(
        r#"{node}
[[campaign]]
name = "{CAMPAIGN}"
mode = "{mode}"
ring_timeout_s = 20
machine_action = "{machine_action}"
{voicemail_prompt}
{wrap_up_timeout}
{confirm_join}
{abandon_prompt}
{reserved_at_dial}
[[campaign.outside_transfer]]
name = "Billing"
number = "+15557770001"
[[campaign.disposition]]
code = "CALLBACK"
label = "Call back"
effect = "retry"
{other}
[[agent]]
id = "a1"
name = "One"
sip_uri = "sip:a1@127.0.0.1:5080"
campaigns = {shared}
[[agent]]
id = "a2"
name = "Two"
sip_uri = "sip:a2@127.0.0.1:5081"
campaigns = {shared}
[[agent]]
id = "a3"
name = "Three, rung per call"
sip_uri = "sip:a3@127.0.0.1:5082"
connection = "per_call"
campaigns = ["{CAMPAIGN}"]
[[agent]]
id = "sim"
name = "Simulated"
sip_uri = "sip:sim@127.0.0.1:5083"
campaigns = {shared}
simulated = {{ wrap_up_s = 3, disposition = "SALE" }}
[media]
record_dir = "recordings"
"#,
        node = super::test_node_toml(6, 5.0),
    );
    match Config::parse(&text, Path::new("outdial.toml")) {
        Ok(config) => config,
        Err(error) => panic!("{error}\n{text}"),
    }
}

/// What became of a leased record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseFate {
    Held,
    Dialed(CallId),
    Released,
}

/// What the shell knows of one customer call.
#[derive(Debug, Default)]
struct CallModel {
    record: i64,
    over: bool,
    written: usize,
    answered: bool,
    /// Answered while the dialer still had the call (not a late report).
    answered_live: bool,
    /// The network said how the call went before any answer (the shell
    /// reports a call's final response once).
    failed: bool,
    not_placed: bool,
    /// Given to this agent's leg (or being so), by the leg's generation:
    /// a leg that goes away gives the customer back.
    agent: Option<(String, u64)>,
    /// The splice the shell reported done, on that leg.
    spliced: Option<(String, u64)>,
    /// The outside line of a transfer: which one (a count per call), and
    /// whether it answered. None: no line (never dialed, or hung up).
    outside: Option<(u32, bool)>,
    /// The latest outside line dialed for the call (lines are never
    /// reused: a stale report must not land on a newer one).
    last_outside_line: u32,
}

/// A report the shell owes the dialer.
#[derive(Debug, Clone)]
enum Owed {
    Lease {
        campaign: String,
        max: usize,
        for_agent: Option<String>,
    },
    History {
        campaign: String,
    },
    AgentCall {
        agent: String,
    },
    AgentHangUp {
        agent: String,
    },
    Connect {
        call: CallId,
        agent: String,
        generation: u64,
    },
    Prompt {
        call: CallId,
    },
    /// The outside number of a transfer answers or fails.
    Outside {
        call: CallId,
        line: u32,
    },
    /// An answered outside number may hang up.
    OutsideBye {
        call: CallId,
        line: u32,
    },
}

struct World {
    dialer: Dialer,
    now: Instant,
    next_record: i64,
    leases: BTreeMap<i64, LeaseFate>,
    calls: BTreeMap<CallId, CallModel>,
    owed: Vec<Owed>,
    legs_up: BTreeSet<String>,
    /// Bumped each time an agent's phone call comes up or goes down.
    leg_generation: BTreeMap<String, u64>,
    /// Preview modes: agents mostly ask for records and call them.
    preview_mode: bool,
    log: Vec<String>,
}

impl World {
    fn new(config: &Config, t0: Instant) -> Self {
        let preview_mode = config.campaigns.iter().any(|c| {
            matches!(
                c.mode,
                crate::config::DialMode::Preview | crate::config::DialMode::PushPreview
            )
        });
        World {
            preview_mode,
            dialer: Dialer::new(config, t0),
            now: t0,
            next_record: 1,
            leases: BTreeMap::new(),
            calls: BTreeMap::new(),
            owed: Vec::new(),
            legs_up: BTreeSet::new(),
            leg_generation: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn lease(&mut self, personal: Option<&str>) -> Lease {
        let id = self.next_record;
        self.next_record += 1;
        self.leases.insert(id, LeaseFate::Held);
        Lease {
            callback: personal.map(|_| id),
            callback_agent: personal.map(String::from),
            // Every fifth number was abandoned or taken for a machine
            // lately: its call needs an agent reserved (Ofcom).
            agent_required: id % 5 == 0,
            ..super::calls_tests::lease(id)
        }
    }

    fn fail(&self, what: String) -> TestCaseError {
        let tail: Vec<&String> = self.log.iter().rev().take(40).rev().collect();
        TestCaseError::fail(format!("{what}\nlast steps:\n{tail:#?}"))
    }

    /// Reads every effect, checks it against what the world knows and
    /// notes what the shell now owes.
    fn take_effects(&mut self) -> Result<(), TestCaseError> {
        while let Some(effect) = self.dialer.poll_effect() {
            self.log.push(format!("  -> {effect:?}"));
            match effect {
                Effect::Lease {
                    campaign,
                    max,
                    for_agent,
                    ..
                } => {
                    self.owed.push(Owed::Lease {
                        campaign,
                        max,
                        for_agent,
                    });
                }
                Effect::LoadAnswerHistory { campaign } => {
                    self.owed.push(Owed::History { campaign })
                }
                // A correction of the contact: nothing the world owes.
                Effect::UpdateContact { .. } => {}
                Effect::Postpone { lease, .. } => {
                    let fate = self.leases.get(&lease.record_id).copied();
                    if fate != Some(LeaseFate::Held) {
                        return Err(self.fail(format!(
                            "record {} postponed while {fate:?}",
                            lease.record_id
                        )));
                    }
                    self.leases.insert(lease.record_id, LeaseFate::Released);
                }
                Effect::ReleaseLeases { leases, .. } => {
                    for lease in leases {
                        let fate = self.leases.get(&lease.record_id).copied();
                        if fate != Some(LeaseFate::Held) {
                            return Err(self.fail(format!(
                                "record {} given back while {fate:?}",
                                lease.record_id
                            )));
                        }
                        self.leases.insert(lease.record_id, LeaseFate::Released);
                    }
                }
                Effect::Dial { call, lease, .. } => {
                    let fate = self.leases.get(&lease.record_id).copied();
                    if fate != Some(LeaseFate::Held) {
                        return Err(
                            self.fail(format!("record {} dialed while {fate:?}", lease.record_id))
                        );
                    }
                    if self.calls.contains_key(&call) {
                        return Err(self.fail(format!("call id {call} used twice")));
                    }
                    self.leases.insert(lease.record_id, LeaseFate::Dialed(call));
                    self.calls.insert(
                        call,
                        CallModel {
                            record: lease.record_id,
                            ..CallModel::default()
                        },
                    );
                }
                Effect::HangUp { call } => self.call_alive(call, "hang up")?,
                Effect::DialOutside { call, line, .. } => {
                    self.call_alive(call, "dial the outside number of")?;
                    if let Some(model) = self.calls.get_mut(&call) {
                        if model.outside.is_some() {
                            return Err(
                                self.fail(format!("a second outside line dialed for call {call}"))
                            );
                        }
                        let last = model.last_outside_line;
                        if line <= last {
                            return Err(self.fail(format!(
                                "outside line {line} of call {call} dialed after line {last}"
                            )));
                        }
                        model.last_outside_line = line;
                        model.outside = Some((line, false));
                        self.owed.push(Owed::Outside { call, line });
                    }
                }
                // Also for a call over (an outside number answering late),
                // or an earlier line: the shell hangs up that line if it is
                // still the call's.
                Effect::HangUpOutside { call, line } => {
                    if let Some(model) = self.calls.get_mut(&call)
                        && model.outside.is_some_and(|(current, _)| current == line)
                    {
                        model.outside = None;
                    }
                }
                Effect::Hold { call, agent, .. }
                | Effect::PauseRecording { call, agent, .. }
                | Effect::SendDtmf { call, agent, .. } => {
                    self.call_alive(call, "hold or pause the recording of")?;
                    let spliced_to = self.calls.get(&call).and_then(|c| c.spliced.clone());
                    if spliced_to.as_ref().map(|(a, _)| a) != Some(&agent) {
                        return Err(self.fail(format!(
                            "mid-call control of call {call} for {agent} while spliced to {spliced_to:?}"
                        )));
                    }
                }
                // The consulting agent is the one the customer is spliced
                // to; the end comes also after the call's.
                Effect::Consult {
                    call,
                    from,
                    on: true,
                    ..
                } => {
                    self.call_alive(call, "consult on")?;
                    let spliced_to = self.calls.get(&call).and_then(|c| c.spliced.clone());
                    if spliced_to.as_ref().map(|(a, _)| a) != Some(&from) {
                        return Err(self.fail(format!(
                            "consultation on call {call} by {from} while spliced to {spliced_to:?}"
                        )));
                    }
                }
                Effect::Consult { on: false, .. } => {}
                Effect::CancelRinging { call } => self.call_alive(call, "cancel ringing")?,
                Effect::TakeBack { call, agent } => {
                    self.call_alive(call, "take back")?;
                    let spliced_to = self.calls.get(&call).and_then(|c| c.spliced.clone());
                    if spliced_to.as_ref().map(|(a, _)| a) != Some(&agent) {
                        return Err(self.fail(format!(
                            "call {call} taken back from {agent} while spliced to {spliced_to:?}"
                        )));
                    }
                    // Out of the agent's leg: the agent may take another.
                    if let Some(model) = self.calls.get_mut(&call) {
                        model.agent = None;
                        model.spliced = None;
                    }
                }
                Effect::Connect { call, agent } => {
                    self.call_alive(call, "connect")?;
                    let generation = self.leg_generation.get(&agent).copied().unwrap_or(0);
                    let leg = Some((agent.clone(), generation));
                    let outside = agent.starts_with(&outside_party(""));
                    if outside
                        && !self
                            .calls
                            .get(&call)
                            .and_then(|c| c.outside)
                            .is_some_and(|(_, answered)| answered)
                    {
                        return Err(self.fail(format!(
                            "call {call} connected to {agent} with no answered outside line"
                        )));
                    }
                    // (Outside lines are per call: two calls may each have
                    // one to the same number.)
                    if let Some((other, _)) = self
                        .calls
                        .iter()
                        .find(|(id, c)| **id != call && !c.over && c.agent == leg && !outside)
                    {
                        return Err(self.fail(format!(
                            "agent {agent} connected to call {call} while still on call {other}"
                        )));
                    }
                    if let Some(model) = self.calls.get_mut(&call) {
                        model.agent = leg;
                    }
                    self.owed.push(Owed::Connect {
                        call,
                        agent,
                        generation,
                    });
                }
                Effect::Play { call, .. } => {
                    self.call_alive(call, "play")?;
                    self.owed.push(Owed::Prompt { call });
                }
                Effect::CallOver { call } => {
                    self.call_alive(call, "end")?;
                    if let Some(model) = self.calls.get_mut(&call) {
                        model.over = true;
                    }
                }
                Effect::LiveAnswer { call } => self.call_alive(call, "report live")?,
                Effect::Bridged { call, .. } => self.call_alive(call, "bridge")?,
                Effect::Record(record) => {
                    let call = record.call;
                    let Some(model) = self.calls.get_mut(&call) else {
                        return Err(self.fail(format!("store row for unknown call {call}")));
                    };
                    model.written += 1;
                    let (over, written, record_id) = (model.over, model.written, model.record);
                    if !over {
                        return Err(self.fail(format!("call {call} written before it was over")));
                    }
                    if written > 1 {
                        return Err(self.fail(format!("call {call} written {written} times")));
                    }
                    // What the row says happened agrees with what the
                    // network did: an answer, or none.
                    let needs_an_answer = matches!(
                        record.outcome.result,
                        AttemptResult::Connected
                            | AttemptResult::Abandoned
                            | AttemptResult::Machine
                            | AttemptResult::VoicemailLeft
                            | AttemptResult::DeadAir
                            | AttemptResult::HungUpBeforeConnect
                            | AttemptResult::MediaTimeout
                    );
                    // (A tone heard after the answer — busy, reorder, SIT,
                    // fax — ends an answered call too.)
                    let never_answered = matches!(
                        record.outcome.result,
                        AttemptResult::NoAnswer
                            | AttemptResult::InvalidNumber
                            | AttemptResult::Rejected
                            | AttemptResult::TrunkRefused
                            | AttemptResult::NetworkFailure
                    );
                    let answered_live = model.answered_live;
                    if (needs_an_answer && !answered_live) || (never_answered && answered_live) {
                        return Err(self.fail(format!(
                            "call {call} written {:?} ({:?}), answered: {answered_live}",
                            record.outcome.result, record.outcome.sip_code
                        )));
                    }
                    if answered_live && record.outcome.sip_code != Some(200) {
                        return Err(self.fail(format!(
                            "answered call {call} written with SIP code {:?}",
                            record.outcome.sip_code
                        )));
                    }
                    if record.lease.record_id != record_id {
                        return Err(self.fail(format!(
                            "call {call} written for record {} (dialed {record_id})",
                            record.lease.record_id
                        )));
                    }
                }
                Effect::AgentRingback { .. } => {}
                Effect::CallAgent { agent } => {
                    // As the shell: a phone already rung or up is not
                    // called again.
                    let ringing = self
                        .owed
                        .iter()
                        .any(|o| matches!(o, Owed::AgentCall { agent: a } if *a == agent));
                    if !ringing && !self.legs_up.contains(&agent) {
                        self.owed.push(Owed::AgentCall { agent });
                    }
                }
                Effect::HangUpAgent { agent } => self.owed.push(Owed::AgentHangUp { agent }),
            }
        }
        Ok(())
    }

    /// What the dialer's parts hold of each other agrees after every step.
    fn check_consistent(&self) -> Result<(), TestCaseError> {
        // A phone that holds its call takes no customer: its agent is never
        // Ready (mid_call.rs).
        if let Some((id, _)) = self
            .dialer
            .agents
            .iter()
            .find(|(_, a)| a.phone_held && a.session.state() == &AgentState::Ready)
        {
            return Err(self.fail(format!("agent {id} Ready while the phone holds")));
        }
        for (name, live) in &self.dialer.live {
            let calls: Vec<u64> = self
                .dialer
                .calls
                .iter()
                .filter(|(_, entry)| &entry.campaign == name)
                .map(|(id, _)| *id)
                .collect();
            let [lines, ringing, waiting, with_agent] = live.pacer.calls_tracked();
            if lines != calls {
                return Err(self.fail(format!(
                    "the pacer counts calls {lines:?} on lines, the dialer has {calls:?}"
                )));
            }
            if let Some(stale) = ringing
                .iter()
                .chain(&waiting)
                .chain(&with_agent)
                .find(|c| !calls.contains(c))
            {
                return Err(self.fail(format!("the pacer still tracks ended call {stale}")));
            }
        }
        // An agent is counted by at most one running campaign that dials
        // by itself (agent_share.rs): two would each plan on it.
        let dialing: Vec<&String> = self
            .dialer
            .campaigns
            .iter()
            .filter(|(_, c)| {
                c.state == RunState::Running
                    && matches!(
                        c.mode,
                        DialMode::Progressive | DialMode::Predictive | DialMode::PushPreview
                    )
            })
            .map(|(name, _)| name)
            .collect();
        let mut counted_by: BTreeMap<u32, &String> = BTreeMap::new();
        for name in dialing {
            let Some(live) = self.dialer.live.get(name) else {
                continue;
            };
            for agent in live.pacer.agents_present() {
                if let Some(other) = counted_by.insert(agent, name) {
                    return Err(self.fail(format!(
                        "agent #{agent} counted by the pacers of {other} and {name}"
                    )));
                }
            }
        }
        // The outside line the engine's attempt has is the one the shell
        // has: none once the attempt left it (hung up, failed, the call
        // over).
        for (call, model) in &self.calls {
            let engine_line =
                self.dialer
                    .calls
                    .get(call)
                    .and_then(|entry| match entry.attempt.phase() {
                        super::attempt::Phase::TransferringOut { line, .. }
                        | super::attempt::Phase::HandedOff { line, .. } => Some(*line),
                        _ => None,
                    });
            let shell_line = model.outside.map(|(line, _)| line);
            if engine_line != shell_line {
                return Err(self.fail(format!(
                    "call {call}: the engine's outside line {engine_line:?}, the shell's {shell_line:?}"
                )));
            }
        }
        // An agent wrapping up a call handed to an outside number, its
        // disposition not given yet, is in that call's wrap-up.
        for (call, entry) in &self.dialer.calls {
            if let (Some(agent), None) = (&entry.wrap_up_by, &entry.wrap_up) {
                let state = self.dialer.agents.get(agent).map(|a| a.session.state());
                if state != Some(&AgentState::WrapUp { call: *call }) {
                    return Err(self.fail(format!(
                        "agent {agent} wraps up call {call} handed off, but is {state:?}"
                    )));
                }
            }
        }
        for (id, agent) in &self.dialer.agents {
            // On a call only once spliced into it on the leg it has now
            // (or with that splice still under way: the window closed
            // first and the dialer bridged without waiting).
            if let AgentState::OnCall { call } = agent.session.state() {
                let leg = Some((
                    id.clone(),
                    self.leg_generation.get(id).copied().unwrap_or(0),
                ));
                let spliced = self.calls.get(call).is_some_and(|c| c.spliced == leg);
                let under_way = self.owed.iter().any(|owed| {
                    matches!(owed, Owed::Connect { call: c, agent: a, generation: g }
                        if c == call && Some((a.clone(), *g)) == leg)
                });
                if !spliced && !under_way {
                    return Err(self.fail(format!(
                        "agent {id} is on call {call} without a splice into its leg"
                    )));
                }
            }
            if let Some(call) = agent.session.current_call()
                && !self.dialer.calls.contains_key(&call)
                && !self.dialer.awaiting_disposition.contains_key(id)
            {
                return Err(self.fail(format!(
                    "agent {id} is {} with call {call}, which is over",
                    agent.session.state().name()
                )));
            }
        }
        Ok(())
    }

    fn call_alive(&self, call: CallId, what: &str) -> Result<(), TestCaseError> {
        match self.calls.get(&call) {
            None => Err(self.fail(format!("asked to {what} unknown call {call}"))),
            Some(model) if model.over => {
                Err(self.fail(format!("asked to {what} call {call} after it was over")))
            }
            Some(_) => Ok(()),
        }
    }

    fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
        self.log.push(format!("input {input:?}"));
        if let Input::AgentLeg { agent, .. } = &input {
            *self.leg_generation.entry(agent.clone()).or_default() += 1;
        }
        self.dialer.handle_input(input, self.now);
        self.take_effects()
    }

    fn command(&mut self, command: Command) -> Result<(), TestCaseError> {
        self.log.push(format!("command {command:?}"));
        let result = self.dialer.handle_command(command, self.now);
        if let Err(error) = &result {
            self.log.push(format!("  refused: {error}"));
        }
        self.take_effects()
    }

    /// Moves the clock on, firing every timer at its own deadline as the
    /// driver does. Handling a timer may arm another at the same instant
    /// (a pacing pass right away), but not for ever.
    fn advance(&mut self, by: Duration) -> Result<(), TestCaseError> {
        let until = self.now + by;
        let mut at_this_instant = 0;
        let mut fired = 0;
        while let Some(deadline) = self.dialer.poll_timeout() {
            if deadline > until {
                break;
            }
            let at = self.now.max(deadline);
            at_this_instant = if at == self.now {
                at_this_instant + 1
            } else {
                0
            };
            fired += 1;
            if at_this_instant > 100 || fired > 20_000 {
                return Err(self.fail(format!(
                    "timers spin: {fired} fired, {at_this_instant} at one instant"
                )));
            }
            self.now = at;
            self.dialer.handle_timeout(self.now);
            self.take_effects()?;
        }
        self.now = until;
        Ok(())
    }

    /// The shell pays one of its debts.
    fn pay(&mut self, index: usize, choice: u32) -> Result<(), TestCaseError> {
        if self.owed.is_empty() {
            return Ok(());
        }
        let owed = self.owed.remove(index % self.owed.len());
        match owed {
            Owed::Lease {
                campaign,
                max,
                for_agent,
            } => {
                if choice.is_multiple_of(7) {
                    return self.input(Input::LeaseFailed {
                        campaign,
                        for_agent,
                    });
                }
                // Mostly records; now and then an exhausted list.
                let count = if choice % 7 == 1 {
                    0
                } else {
                    1 + (choice as usize / 7) % max.clamp(1, 5)
                };
                let personal = for_agent.clone();
                let leases = (0..count)
                    .map(|_| self.lease(personal.as_deref()))
                    .collect();
                self.input(Input::Leased {
                    campaign,
                    leases,
                    for_agent,
                })
            }
            Owed::History { campaign } => self.input(Input::AnswerHistory {
                campaign,
                minutes: vec![HistoryMinute {
                    ago: Duration::from_secs(u64::from(choice % 3600)),
                    live_answers: u64::from(choice % 5),
                    abandoned: u64::from(choice % 2),
                }],
                // Sometimes enough earlier calls to end the cold start.
                calls: (0..choice % 300)
                    .map(|i| crate::pacing::RestoredCall {
                        ring_s: f64::from(i % 30),
                        live: i % 5 == 0,
                        talk_s: (i % 5 == 0).then_some(f64::from(i % 200)),
                    })
                    .collect(),
            }),
            Owed::AgentCall { agent } => {
                let up = !choice.is_multiple_of(4);
                if up {
                    self.legs_up.insert(agent.clone());
                }
                self.input(Input::AgentLeg { agent, up })
            }
            Owed::AgentHangUp { agent } => {
                if self.legs_up.remove(&agent) {
                    self.input(Input::AgentLeg { agent, up: false })
                } else {
                    Ok(())
                }
            }
            Owed::Connect {
                call,
                agent,
                generation,
            } => {
                // The splice is made on the leg the agent had at the
                // Connect; a leg that went down meanwhile fails it and the
                // customer's leg comes back whole. Now and then the
                // customer's media dies first.
                let same_leg = self.leg_generation.get(&agent).copied().unwrap_or(0) == generation;
                let over = self.calls.get(&call).is_none_or(|c| c.over);
                if over && choice.is_multiple_of(2) {
                    // The customer's task ended with the call: no report.
                    return Ok(());
                }
                let leg_up = if agent.starts_with(&outside_party("")) {
                    self.calls
                        .get(&call)
                        .and_then(|c| c.outside)
                        .is_some_and(|(_, answered)| answered)
                } else {
                    self.legs_up.contains(&agent)
                };
                if !over && same_leg && leg_up && !choice.is_multiple_of(5) {
                    if let Some(model) = self.calls.get_mut(&call) {
                        model.spliced = Some((agent.clone(), generation));
                    }
                    return self.input(Input::Spliced { call, agent });
                }
                // A failed splice leaves the customer on its own leg.
                if let Some(model) = self.calls.get_mut(&call)
                    && model.agent == Some((agent.clone(), generation))
                {
                    model.agent = None;
                }
                let cause = if over || (choice / 5).is_multiple_of(3) {
                    ConnectFailure::CustomerGone
                } else {
                    ConnectFailure::AgentPhoneGone
                };
                self.input(Input::ConnectFailed { call, agent, cause })
            }
            Owed::Prompt { call } => self.input(Input::PromptDone { call }),
            Owed::Outside { call, line } => {
                // A line hung up (or replaced) meanwhile reports nothing —
                // but what it reported just before: now and then a stale
                // answer or failure, which changes nothing.
                let current = self.calls.get(&call).and_then(|c| c.outside);
                if current != Some((line, false)) {
                    return match choice % 4 {
                        0 => self.input(Input::OutsideAnswered { call, line }),
                        1 => self.input(Input::OutsideEnded {
                            call,
                            line,
                            why: "the outside number is busy (486)".into(),
                        }),
                        _ => Ok(()),
                    };
                }
                if choice.is_multiple_of(3) {
                    if let Some(model) = self.calls.get_mut(&call) {
                        model.outside = None;
                    }
                    return self.input(Input::OutsideEnded {
                        call,
                        line,
                        why: "the outside number is busy (486)".into(),
                    });
                }
                if let Some(model) = self.calls.get_mut(&call) {
                    model.outside = Some((line, true));
                }
                self.owed.push(Owed::OutsideBye { call, line });
                self.input(Input::OutsideAnswered { call, line })
            }
            Owed::OutsideBye { call, line } => {
                let current = self.calls.get(&call).and_then(|c| c.outside);
                if current != Some((line, true)) || !choice.is_multiple_of(2) {
                    // Still talking: maybe later.
                    if current == Some((line, true)) {
                        self.owed.push(Owed::OutsideBye { call, line });
                    }
                    return Ok(());
                }
                if let Some(model) = self.calls.get_mut(&call) {
                    model.outside = None;
                }
                self.input(Input::OutsideEnded {
                    call,
                    line,
                    why: "the outside number hung up".into(),
                })
            }
        }
    }

    /// The network does something to a call (alive or, as a late report,
    /// over).
    fn network(&mut self, pick: usize, choice: u32) -> Result<(), TestCaseError> {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        if ids.is_empty() {
            return Ok(());
        }
        // Mostly the calls still alive; now and then a late report.
        let alive: Vec<CallId> = ids
            .iter()
            .copied()
            .filter(|id| !self.calls[id].over)
            .collect();
        let call = if alive.is_empty() || choice.is_multiple_of(13) {
            ids[pick % ids.len()]
        } else {
            alive[pick % alive.len()]
        };
        let (answered, failed, placed) = {
            let model = &self.calls[&call];
            (
                model.answered,
                model.failed,
                model.answered || model.failed || model.agent.is_some(),
            )
        };
        let input = match (choice / 13) % 10 {
            0 => Input::Ringing { call },
            1 | 2 if !failed => {
                if let Some(model) = self.calls.get_mut(&call) {
                    model.answered = true;
                    model.answered_live |= !model.over;
                }
                Input::Answered { call }
            }
            3 if !answered && !failed => {
                if let Some(model) = self.calls.get_mut(&call) {
                    model.failed = true;
                }
                let failures = [
                    (Failure::Busy, Some(486)),
                    (Failure::NoAnswer, Some(480)),
                    (Failure::InvalidNumber, Some(404)),
                    (Failure::Rejected, Some(603)),
                    (Failure::Rejected, Some(403)),
                    (Failure::Congestion, Some(503)),
                    (Failure::NetworkFailure, None),
                ];
                let (failure, sip_code) = failures[(choice as usize / 130) % failures.len()];
                Input::Failed {
                    call,
                    failure,
                    sip_code,
                    retry_after: choice.is_multiple_of(3).then_some(Duration::from_secs(60)),
                }
            }
            4..=6 => {
                let verdict = match (choice / 130) % 9 {
                    0..=2 => Verdict::Human {
                        greeting_ended: self
                            .now
                            .checked_sub(Duration::from_millis(u64::from(choice % 900)))
                            .unwrap_or(self.now),
                    },
                    3 => Verdict::Machine,
                    4 => Verdict::Beep,
                    5 => Verdict::Fax,
                    6 => Verdict::Busy,
                    7 => Verdict::Sit {
                        permanent: choice.is_multiple_of(2),
                    },
                    _ => Verdict::Silence,
                };
                Input::Cpa {
                    call,
                    verdict,
                    label: "random",
                    at_ms: choice % 5000,
                }
            }
            7 if answered => Input::RemoteHangUp { call },
            // The media of a consultation (maybe an earlier one, maybe
            // none) could not be set up.
            8 if (choice / 130).is_multiple_of(5) => Input::ConsultationFailed {
                call,
                number: (choice / 650) % 3,
            },
            8 => Input::MediaTimeout { call },
            9 if !placed => {
                // Nothing went out: the shell gave the lease back itself.
                if let Some(model) = self.calls.get_mut(&call)
                    && !model.over
                {
                    model.not_placed = true;
                    model.over = true;
                }
                Input::NotPlaced {
                    call,
                    reason: "no RTP port".into(),
                }
            }
            _ => Input::Ringing { call },
        };
        self.input(input)
    }

    fn agent_command(&mut self, agent: &str, choice: u32) -> Result<(), TestCaseError> {
        let agent = agent.to_string();
        if self.preview_mode && choice.is_multiple_of(2) {
            // Mostly what an agent does next: call the record on screen, or
            // ask for one.
            let previewing = self
                .dialer
                .agent_view(&agent, self.now)
                .is_some_and(|view| view.state == "previewing");
            let action = match (previewing, choice % 6) {
                (_, 0) => PreviewAction::Next,
                (true, _) => PreviewAction::Call,
                (false, _) => PreviewAction::Next,
            };
            return self.command(Command::Preview {
                agent,
                action,
                caller_id: None,
            });
        }
        // An agent with a customer on the line (or in a consultation) mostly
        // acts on it: transfers, consultations, hold, digits, hang-up — rare
        // otherwise, as an agent is on a call at few of the random steps.
        let in_call = self
            .dialer
            .agent_view(&agent, self.now)
            .is_some_and(|view| view.state == "on_call" || view.consultation.is_some());
        // (From the top bits, which the choices below do not use: every
        // command below still reaches an agent on a call.)
        if in_call && !(choice >> 24).is_multiple_of(3) {
            let other = (!(choice / 3).is_multiple_of(3))
                .then(|| AGENTS[(choice as usize / 9) % AGENTS.len()].to_string());
            let command = match (choice / 27) % 11 {
                0 => Command::Transfer { agent, to: other },
                1 | 2 => Command::Consult { agent, to: other },
                3 => Command::EndConsultation { agent },
                4 => Command::Hold {
                    agent,
                    on: (choice / 243).is_multiple_of(2),
                },
                5 => Command::SendDtmf {
                    agent,
                    digits: "1#".into(),
                },
                6 => Command::AgentHangup { agent },
                7 => Command::DropVoicemail { agent },
                8 => Command::PauseRecording {
                    agent,
                    paused: (choice / 297).is_multiple_of(2),
                },
                9 if (choice / 297).is_multiple_of(2) => Command::Transfer { agent, to: None },
                // The campaign's outside number (or one it does not have),
                // or calling one off while it rings.
                _ if (choice / 297) % 3 == 2 => Command::CancelTransfer { agent },
                _ => Command::TransferOutside {
                    agent,
                    destination: if (choice / 297).is_multiple_of(5) {
                        "Nowhere"
                    } else {
                        "Billing"
                    }
                    .into(),
                },
            };
            return self.command(command);
        }
        let command = match choice % 18 {
            0 | 1 => Command::AgentLogin { agent },
            2..=4 => Command::AgentReady { agent },
            5 => Command::AgentNotReady {
                agent,
                reason: "break".into(),
            },
            6 => Command::AgentLogout { agent },
            // A transfer to a named agent (maybe not Ready, maybe the
            // agent itself) or to the campaign's next Ready agent.
            7 if (choice / 18).is_multiple_of(2) => Command::Transfer {
                agent,
                to: (!(choice / 36).is_multiple_of(4))
                    .then(|| AGENTS[(choice as usize / 36) % AGENTS.len()].to_string()),
            },
            7 if (choice / 18) % 4 == 1 => Command::DropVoicemail { agent },
            // A consultation of a named agent or the campaign's next, or
            // its end by either agent (`Transfer` above completes it).
            7 if (choice / 72) % 3 == 1 => Command::Consult {
                agent,
                to: (!(choice / 216).is_multiple_of(3))
                    .then(|| AGENTS[(choice as usize / 216) % AGENTS.len()].to_string()),
            },
            7 if (choice / 72) % 3 == 2 => Command::EndConsultation { agent },
            16 if (choice / 18) % 5 == 4 => Command::SendDtmf {
                agent,
                digits: ["1", "#", "9x", ""][(choice as usize / 90) % 4].into(),
            },
            7 => Command::AgentHangup { agent },
            16 => Command::Hold {
                agent,
                on: (choice / 18).is_multiple_of(2),
            },
            17 => Command::PauseRecording {
                agent,
                paused: (choice / 18).is_multiple_of(2),
            },
            8 | 9 => Command::Disposition {
                agent,
                code: ["SALE", "CALLBACK", "NOPE", "DNC"][(choice as usize / 16) % 4].into(),
                notes: String::new(),
                callback: choice.is_multiple_of(3).then(|| CallbackAt {
                    at: jiff::Timestamp::UNIX_EPOCH,
                    personal: choice.is_multiple_of(2),
                    phone: None,
                }),
                do_not_call: choice.is_multiple_of(7),
                guide: Vec::new(),
            },
            10 => Command::JoinCampaign {
                agent,
                campaign: CAMPAIGNS[(choice as usize / 16) % 2].into(),
            },
            11 if choice.is_multiple_of(5) => Command::LeaveCampaign {
                agent,
                campaign: CAMPAIGNS[(choice as usize / 16) % 2].into(),
            },
            11 if choice.is_multiple_of(7) => Command::ChangeContact {
                agent,
                change: super::contact_edit::ContactChange {
                    name: Some(format!("Contact {choice}")),
                    fields: serde_json::Map::new(),
                },
            },
            11 if choice.is_multiple_of(3) => Command::PostponePreview {
                agent,
                callback: CallbackAt {
                    at: jiff::Timestamp::UNIX_EPOCH,
                    personal: choice.is_multiple_of(2),
                    phone: None,
                },
            },
            _ => {
                let actions = [
                    PreviewAction::Next,
                    PreviewAction::Call,
                    PreviewAction::Call,
                    PreviewAction::Skip,
                    PreviewAction::Decline,
                    PreviewAction::DoNotCall,
                    PreviewAction::Remove,
                    PreviewAction::Stop,
                    PreviewAction::Leave,
                ];
                Command::Preview {
                    agent,
                    action: actions[(choice as usize / 16) % actions.len()],
                    caller_id: None,
                }
            }
        };
        self.command(command)
    }

    /// One random step.
    fn step(&mut self, op: u32, a: u32, b: u32) -> Result<(), TestCaseError> {
        match op % 20 {
            0..=4 => self.pay(a as usize, b),
            5..=11 => self.network(a as usize, b),
            12..=14 => self.agent_command(AGENTS[a as usize % AGENTS.len()], b),
            15 if b.is_multiple_of(4) => {
                let command = match b % 8 {
                    0 => RunCommand::Pause,
                    1 => RunCommand::Stop,
                    _ => RunCommand::Start,
                };
                self.command(Command::Campaign {
                    name: CAMPAIGNS[a as usize % 2].into(),
                    command,
                })
            }
            16 => {
                // A phone registers again (softphone restarted).
                let agent = AGENTS[a as usize % AGENTS.len()].to_string();
                self.input(Input::AgentPhoneRegistered { agent })
            }
            17 if b % 3 == 1 => {
                // The agent presses Hold or Resume on the phone.
                let agent = AGENTS[a as usize % AGENTS.len()].to_string();
                if self.legs_up.contains(&agent) {
                    self.input(Input::AgentPhoneHold {
                        agent,
                        held: b.is_multiple_of(2),
                    })
                } else {
                    Ok(())
                }
            }
            17 if b.is_multiple_of(3) => {
                // A phone's reservation call drops.
                let agent = AGENTS[a as usize % AGENTS.len()].to_string();
                if self.legs_up.remove(&agent) {
                    self.input(Input::AgentLeg { agent, up: false })
                } else {
                    Ok(())
                }
            }
            18 if b.is_multiple_of(5) => self.input(Input::TrunkRoute {
                known: !b.is_multiple_of(2),
            }),
            18 => self.input(Input::TrunkPing {
                answered: !b.is_multiple_of(3),
            }),
            // Mostly the seconds a call's events are apart; now and then
            // long enough for rings, wrap-ups and previews to time out.
            _ if b.is_multiple_of(6) => self.advance(Duration::from_millis(u64::from(b % 40_000))),
            _ => self.advance(Duration::from_millis(u64::from(b % 4_000))),
        }
    }

    /// Stops the campaign, ends every call, wraps every agent up and logs
    /// them out; the world pays what it owes as the driver would.
    fn wind_down(&mut self) -> Result<(), TestCaseError> {
        self.log.push("wind down".into());
        for name in CAMPAIGNS {
            let _ = self.dialer.handle_command(
                Command::Campaign {
                    name: name.into(),
                    command: RunCommand::Stop,
                },
                self.now,
            );
            self.take_effects()?;
        }
        for _ in 0..50 {
            while !self.owed.is_empty() {
                self.pay(0, 30)?;
            }
            let alive: Vec<(CallId, bool)> = self
                .calls
                .iter()
                .filter(|(_, c)| !c.over)
                .map(|(id, c)| (*id, c.answered))
                .collect();
            for (call, answered) in alive {
                let input = if answered {
                    Input::RemoteHangUp { call }
                } else {
                    Input::Failed {
                        call,
                        failure: Failure::NoAnswer,
                        sip_code: Some(487),
                        retry_after: None,
                    }
                };
                self.input(input)?;
            }
            for agent in AGENTS {
                for command in [
                    Command::AgentHangup {
                        agent: agent.into(),
                    },
                    Command::Disposition {
                        agent: agent.into(),
                        code: "SALE".into(),
                        notes: String::new(),
                        callback: None,
                        do_not_call: false,
                        guide: Vec::new(),
                    },
                    Command::Preview {
                        agent: agent.into(),
                        action: PreviewAction::Stop,
                        caller_id: None,
                    },
                    Command::AgentLogout {
                        agent: agent.into(),
                    },
                ] {
                    self.command(command)?;
                }
            }
            self.advance(Duration::from_secs(60))?;
            let settled = self.owed.is_empty()
                && self.calls.values().all(|c| c.over)
                && self.dialer.calls_in_flight() == 0;
            if settled {
                break;
            }
        }
        Ok(())
    }

    /// Nothing lost, nothing left.
    fn check_settled(&self) -> Result<(), TestCaseError> {
        if let Some((id, _)) = self.leases.iter().find(|(_, f)| **f == LeaseFate::Held) {
            return Err(self.fail(format!("record {id} still leased at the end")));
        }
        for (call, model) in &self.calls {
            if !model.over {
                return Err(self.fail(format!("call {call} never ended")));
            }
            let expected = usize::from(!model.not_placed);
            if model.written != expected {
                return Err(self.fail(format!(
                    "call {call} written {} times (expected {expected})",
                    model.written
                )));
            }
        }
        if self.dialer.calls_in_flight() != 0 {
            return Err(self.fail("calls left in flight".into()));
        }
        for agent in ["a1", "a2", "a3"] {
            let state = self
                .dialer
                .agent_view(agent, self.now)
                .map(|view| view.state);
            if state != Some("logged_out") {
                return Err(self.fail(format!("agent {agent} is {state:?} after logging out")));
            }
        }
        if !self.dialer.awaiting_disposition.is_empty() {
            return Err(self.fail(format!(
                "dispositions still awaited: {:?}",
                self.dialer.awaiting_disposition.keys().collect::<Vec<_>>()
            )));
        }
        Ok(())
    }
}

fn steps() -> impl Strategy<Value = Vec<(u32, u32, u32)>> {
    proptest::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 1..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nothing_is_lost_whatever_the_world_does(
        mode in 0u32..4,
        options in 0u32..256,
        steps in steps(),
    ) {
        let t0 = Instant::now();
        let mut world = World::new(&config(mode, options), t0);
        world.take_effects()?;
        for name in CAMPAIGNS {
            // The second campaign exists in half the cases.
            world.command(Command::Campaign {
                name: name.into(),
                command: RunCommand::Start,
            })?;
        }
        // The shift starts: every agent logs in, its phone answers, Ready.
        for agent in ["a1", "a2", "a3"] {
            world.command(Command::AgentLogin { agent: agent.into() })?;
        }
        while !world.owed.is_empty() {
            world.pay(0, 30)?;
        }
        for agent in ["a1", "a2", "a3"] {
            for name in CAMPAIGNS {
                world.command(Command::JoinCampaign {
                    agent: agent.into(),
                    campaign: name.into(),
                })?;
            }
            world.command(Command::AgentReady { agent: agent.into() })?;
        }
        for (op, a, b) in steps {
            world.step(op, a, b)?;
            world.check_consistent()?;
        }
        world.wind_down()?;
        world.check_settled()?;
    }
}
