//! The agent's controls during a call, once the customer is on the line:
//!
//! - **hold** and resume (Genesys "Hold"/"Resume", Webex "Hold"): the call
//!   stays the agent's and the agent stays on call; on hold neither hears
//!   the other and the customer hears the campaign's hold audio (the
//!   shell's media does that, on [`Effect::Hold`]). The time on hold is
//!   added up per call for the CDR's `hold_ms` (average handle time = talk,
//!   including hold, + wrap-up);
//! - **recording pause** and resume (PCI DSS: no card number in a call
//!   recording): while paused the bridge recording gets silence, on
//!   [`Effect::PauseRecording`]; the CDR keeps how long it was paused.
//!
//! Both act only on a customer whose splice the shell reported: the engine
//! never claims a state of media it has not touched.

use std::time::{Duration, Instant};

use super::attempt::Phase;
use super::calls::CallEntry;
use super::dialer::{CommandError, Dialer, Event};
use super::io::{CallId, Effect};
use crate::agent::{AgentError, AgentState};

/// Not ready: the agent's phone holds its reservation call (its own Hold
/// button); Ready again when the phone resumes.
pub const REASON_PHONE_ON_HOLD: &str = "phone on hold";

/// One call's time in a state the agent turns on and off (on hold, the
/// recording paused): since when, and earlier spells added up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnOffClock {
    /// On hold since then (`None`: not on hold now).
    since: Option<Instant>,
    /// Earlier holds of the call, added up.
    earlier: Duration,
}

impl OnOffClock {
    pub fn is_on(&self) -> bool {
        self.since.is_some()
    }

    /// How long the current hold has lasted (`None`: not on hold).
    pub fn current(&self, now: Instant) -> Option<Duration> {
        self.since.map(|at| now.saturating_duration_since(at))
    }

    /// Puts the call on hold (`on`) or takes it off; false when it already
    /// was so (nothing changes).
    pub fn set(&mut self, on: bool, now: Instant) -> bool {
        match (on, self.since) {
            (true, None) => self.since = Some(now),
            (false, Some(at)) => {
                self.earlier += now.saturating_duration_since(at);
                self.since = None;
            }
            _ => return false,
        }
        true
    }

    /// All the call's time on hold, a hold still running counted to `now`.
    pub fn total(&self, now: Instant) -> Duration {
        self.earlier + self.current(now).unwrap_or_default()
    }
}

impl Dialer {
    /// The agent's call, when its customer is on the line: bridged, and
    /// spliced into this agent's leg (a call bridged as its abandon window
    /// closed may not be yet). `action` names the control in the refusal.
    pub(super) fn call_on_the_line(
        &mut self,
        agent: &str,
        action: &'static str,
    ) -> Result<(CallId, &mut CallEntry), CommandError> {
        self.call_on_the_line_in(agent, action, false)
    }

    /// [`Dialer::call_on_the_line`], also during the agent's consultation
    /// of another (`consulting_too`: hold and recording pause work then).
    pub(super) fn call_on_the_line_in(
        &mut self,
        agent: &str,
        action: &'static str,
        consulting_too: bool,
    ) -> Result<(CallId, &mut CallEntry), CommandError> {
        let state = self
            .agents
            .get(agent)
            .ok_or_else(|| CommandError::UnknownAgent(agent.to_string()))?
            .session
            .state()
            .clone();
        let AgentState::OnCall { call } = state else {
            return Err(CommandError::Agent(AgentError::WrongState {
                action,
                state: state.name(),
                needs: "on_call",
            }));
        };
        if self.transfer_under_way(call) {
            return Err(CommandError::Unavailable(format!(
                "the call is being transferred: no {action} now"
            )));
        }
        if !consulting_too && self.consultation_on(call).is_some() {
            return Err(CommandError::Unavailable(format!(
                "you are consulting another agent: end the consultation or complete the transfer before you {action}"
            )));
        }
        self.calls
            .get_mut(&call)
            .filter(|entry| {
                matches!(
                    entry.attempt.phase(),
                    Phase::Bridged { .. } | Phase::Consulting { .. }
                ) && entry.spliced_to.as_deref() == Some(agent)
                    && entry.splices_in_flight == 0
            })
            .map(|entry| (call, entry))
            // Still hearing the zip tone, the splice not done yet (the
            // customer is not through) or already ending.
            .ok_or_else(|| {
                CommandError::Unavailable(format!("no customer on the line to {action}"))
            })
    }

    /// Whether the customer of `agent`'s call is through to it (bridged,
    /// the splice into its leg reported, none under way), for the
    /// desktop's controls that act on the customer (the keypad).
    pub(super) fn customer_on_line(&self, agent: &str) -> bool {
        let Some(AgentState::OnCall { call }) = self.agents.get(agent).map(|a| a.session.state())
        else {
            return false;
        };
        self.calls.get(call).is_some_and(|entry| {
            matches!(
                entry.attempt.phase(),
                Phase::Bridged { .. } | Phase::Consulting { .. }
            ) && entry.spliced_to.as_deref() == Some(agent)
                && entry.splices_in_flight == 0
        })
    }

    /// `Command::DropVoicemail`: the agent hears a voicemail greeting (and
    /// its beep) and drops the campaign's recorded message into it
    /// (VICIdial's "VM message drop", Genesys' voicemail drop): the
    /// customer leg leaves the agent's, hears `voicemail_prompt` and is
    /// hung up; the agent is free at once, with no wrap-up — the attempt's
    /// result, a voicemail left, is its disposition.
    pub(super) fn drop_voicemail(&mut self, agent: &str, now: Instant) -> Result<(), CommandError> {
        let (call, entry) = self.call_on_the_line(agent, "drop a voicemail")?;
        let campaign = entry.campaign.clone();
        if !self.campaign_drops_voicemail(&campaign) {
            return Err(CommandError::Unavailable(format!(
                "campaign `{campaign}` has no voicemail_prompt to drop"
            )));
        }
        let Some(entry) = self.calls.get_mut(&call) else {
            return Err(CommandError::Unavailable("the call is over".into()));
        };
        if !entry.attempt.drop_voicemail() {
            return Err(CommandError::Unavailable("no voicemail to drop now".into()));
        }
        // The message is the machine's, not a held customer's, and the
        // recording ends with the agent's part.
        entry.hold.set(false, now);
        entry.recording_paused.set(false, now);
        self.effects.push_back(Effect::TakeBack {
            call,
            agent: agent.to_string(),
        });
        if let Some(a) = self.agents.get_mut(agent) {
            // An agent rung per call keeps that phone call for the next
            // customer (see `Action::Transferred`).
            let _ = a.session.leave_call_without_wrap_up(now);
        }
        tracing::info!(call, %agent, %campaign, "voicemail dropped");
        self.drain_attempt(call, now);
        Ok(())
    }

    /// Whether `campaign` has a recorded voicemail message to drop.
    fn campaign_drops_voicemail(&self, campaign: &str) -> bool {
        self.campaigns
            .get(campaign)
            .is_some_and(|c| c.config.voicemail_prompt.is_some())
    }

    /// Whether the agent's current call may get a voicemail drop (its
    /// campaign has a message): for the desktop's button.
    pub(super) fn voicemail_drop_offered(&self, agent: &str) -> bool {
        self.current_call_entry(agent)
            .is_some_and(|entry| self.campaign_drops_voicemail(&entry.campaign))
    }

    /// Whether `call` is being handed from one agent to another.
    pub(super) fn transfer_under_way(&self, call: CallId) -> bool {
        self.calls.get(&call).is_some_and(|entry| {
            matches!(
                entry.attempt.phase(),
                Phase::Transferring { .. } | Phase::TransferringOut { .. }
            )
        })
    }

    /// `Command::Transfer`: the agent hands its customer to `to` (or to
    /// the Ready agent of the call's campaign idle the longest), a blind
    /// transfer. The next agent is reserved and hears the zip tone; the
    /// customer is moved into its leg and the call, wrap-up and
    /// disposition included, is its from then on (`calls.rs`,
    /// `Action::Transferred`). The transferring agent goes on to Ready
    /// then, without a wrap-up. Should the next agent's phone fail, the
    /// customer comes back to the transferring agent, on hold.
    pub(super) fn transfer_call(
        &mut self,
        agent: &str,
        to: Option<String>,
        now: Instant,
    ) -> Result<(), CommandError> {
        if let Some(call) = self.consulting_call(agent) {
            return self.complete_consultation(agent, call, to, now);
        }
        let (call, campaign, to) =
            self.reserve_next_agent(agent, to, "transfer", now, |attempt, to| {
                attempt.transfer(to, now)
            })?;
        tracing::info!(call, from = %agent, %to, "transfer started");
        self.transfer_started(agent, to, campaign, call, now);
        Ok(())
    }

    /// The attempt moved to `Phase::Transferring` (a blind transfer, or a
    /// consultation completed): both agents hear of it, and the zip tone
    /// and the splice follow.
    pub(super) fn transfer_started(
        &mut self,
        agent: &str,
        to: String,
        campaign: String,
        call: CallId,
        now: Instant,
    ) {
        self.events.push_back(Event::Transfer {
            agent: agent.to_string(),
            to,
            campaign,
            call,
            step: "started",
            reason: None,
        });
        self.drain_attempt(call, now);
    }

    /// The customer on `agent`'s line goes on to another agent (`action`:
    /// a transfer, a consultation): that agent ([`Dialer::pick_next_agent`])
    /// is reserved for the call and `moves` the attempt on; should the
    /// attempt refuse, the reservation is given up. The call, its campaign
    /// and the next agent.
    pub(super) fn reserve_next_agent(
        &mut self,
        agent: &str,
        to: Option<String>,
        action: &'static str,
        now: Instant,
        moves: impl FnOnce(&mut super::attempt::Attempt, &str) -> bool,
    ) -> Result<(CallId, String, String), CommandError> {
        let (call, entry) = self.call_on_the_line(agent, action)?;
        let campaign = entry.campaign.clone();
        let to = self.pick_next_agent(agent, to, &campaign, action, now)?;
        self.agent_mut(&to)?.session.reserve(call, now)?;
        let moved = self
            .calls
            .get_mut(&call)
            .is_some_and(|entry| moves(&mut entry.attempt, &to));
        if !moved {
            self.release_for(&to, call, now);
            return Err(CommandError::Unavailable(format!(
                "the call cannot be handed on now ({action})"
            )));
        }
        Ok((call, campaign, to))
    }

    /// `agent`, reserved for (or connecting to) `call`, is free again; an
    /// agent already elsewhere is left as it is.
    pub(super) fn release_for(&mut self, agent: &str, call: CallId, now: Instant) {
        if let Some(a) = self.agents.get_mut(agent)
            && a.session.current_call() == Some(call)
        {
            let _ = a.session.release(now);
        }
    }

    /// The agent a call of `campaign` goes to from `agent` (a transfer, a
    /// consultation): `to`, checked, or the campaign's Ready agent idle
    /// the longest.
    pub(super) fn pick_next_agent(
        &self,
        agent: &str,
        to: Option<String>,
        campaign: &str,
        action: &str,
        now: Instant,
    ) -> Result<String, CommandError> {
        let to = match to {
            Some(to) if to == agent => {
                return Err(CommandError::Invalid(format!(
                    "the call is yours already: {action} another agent"
                )));
            }
            Some(to) => to,
            None => self
                .agents
                .iter()
                .filter(|(id, a)| {
                    id.as_str() != agent
                        && a.session.is_ready()
                        && Self::takes_transfers(a)
                        && self.takes_part(a, campaign)
                })
                .max_by_key(|(_, a)| a.session.time_in_state(now))
                .map(|(id, _)| id.clone())
                .ok_or_else(|| {
                    CommandError::Unavailable(format!(
                        "no other agent of campaign `{campaign}` is ready to take the call"
                    ))
                })?,
        };
        let target = self
            .agents
            .get(&to)
            .ok_or_else(|| CommandError::Invalid(format!("no agent `{to}` to {action}")))?;
        if !target.session.is_ready() {
            return Err(CommandError::Unavailable(format!(
                "agent `{to}` is {}: only a Ready agent takes a call ({action})",
                target.session.state().name()
            )));
        }
        if !Self::takes_transfers(target) {
            return Err(CommandError::Unavailable(format!(
                "agent `{to}` has no reservation call to splice the customer into"
            )));
        }
        Ok(to)
    }

    /// Whether a Ready agent can take a transferred customer: its phone is
    /// on a reservation call (or it is a simulated agent, without one). An
    /// agent rung per call would have to answer first, inside the
    /// transfer's wait; not offered.
    pub(super) fn takes_transfers(agent: &super::dialer::AgentEntry) -> bool {
        !agent.per_call && (agent.session.has_leg() || !agent.has_phone)
    }

    /// The Ready agents `agent` may transfer its customer to (for the
    /// desktop's list); empty unless it has a customer on the line.
    pub(super) fn transfer_targets(&self, agent: &str) -> Vec<super::dialer::TransferTarget> {
        let campaign = self
            .agents
            .get(agent)
            .and_then(|a| match a.session.state() {
                AgentState::OnCall { call } => Some(*call),
                _ => None,
            })
            .and_then(|call| self.calls.get(&call))
            .filter(|entry| matches!(entry.attempt.phase(), Phase::Bridged { .. }))
            .map(|entry| entry.campaign.as_str());
        let Some(campaign) = campaign else {
            return Vec::new();
        };
        self.agents
            .iter()
            .filter(|(id, a)| {
                id.as_str() != agent && a.session.is_ready() && Self::takes_transfers(a)
            })
            .map(|(id, a)| super::dialer::TransferTarget {
                id: id.clone(),
                name: a.name.clone(),
                in_campaign: self.takes_part(a, campaign),
            })
            .collect()
    }

    /// The agent `agent` is handing its customer to, during a transfer.
    pub(super) fn transferring_to(&self, agent: &str) -> Option<String> {
        match self.current_call_entry(agent)?.attempt.phase() {
            Phase::Transferring { from, to, .. } if from == agent => Some(to.clone()),
            _ => None,
        }
    }

    /// Puts `call`'s customer, in `agent`'s leg, on hold as the call is
    /// handed on (a consultation, an outside number ringing), and tells
    /// the agent's desktop; nothing if on hold already.
    pub(super) fn hold_for_hand_over(&mut self, call: CallId, agent: &str, now: Instant) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        if !entry.hold.set(true, now) {
            return;
        }
        let campaign = entry.campaign.clone();
        self.effects.push_back(Effect::Hold {
            call,
            agent: agent.to_string(),
            on: true,
        });
        self.events.push_back(Event::Hold {
            agent: agent.to_string(),
            campaign,
            call,
            on: true,
        });
    }

    /// `Command::Hold`: the agent's bridged call goes on hold (`on`) or off.
    pub(super) fn hold_call(
        &mut self,
        agent: &str,
        on: bool,
        now: Instant,
    ) -> Result<(), CommandError> {
        let phone_held = self.agents.get(agent).is_some_and(|a| a.phone_held);
        // During a consultation too: off hold, it is a conference.
        let (call, entry) =
            self.call_on_the_line_in(agent, if on { "hold" } else { "resume" }, true)?;
        if !on && phone_held && entry.hold.is_on() {
            // Off hold here, the customer would reach a phone that neither
            // sends nor listens: a silent call.
            return Err(CommandError::Unavailable(
                "the phone holds the call: resume it on the phone".into(),
            ));
        }
        if !entry.hold.set(on, now) {
            return Err(CommandError::Unavailable(if on {
                "the customer is on hold already".into()
            } else {
                "the customer is not on hold".into()
            }));
        }
        let campaign = entry.campaign.clone();
        self.effects.push_back(Effect::Hold {
            call,
            agent: agent.to_string(),
            on,
        });
        self.events.push_back(Event::Hold {
            agent: agent.to_string(),
            campaign,
            call,
            on,
        });
        Ok(())
    }

    /// `Command::SendDtmf`: digits to the customer on the line (not on
    /// hold: the hold audio plays there).
    pub(super) fn send_dtmf(&mut self, agent: &str, digits: &str) -> Result<(), CommandError> {
        let codes = crate::media::dtmf::parse_digits(digits)
            .map_err(|error| CommandError::Invalid(error.to_string()))?;
        let (call, entry) = self.call_on_the_line(agent, "send digits")?;
        if entry.hold.is_on() {
            return Err(CommandError::Unavailable(
                "the customer is on hold: resume before sending digits".into(),
            ));
        }
        self.effects.push_back(Effect::SendDtmf {
            call,
            agent: agent.to_string(),
            codes,
        });
        Ok(())
    }

    /// `Command::PauseRecording`: the call's recording pauses (`paused`)
    /// or goes on.
    pub(super) fn pause_recording(
        &mut self,
        agent: &str,
        paused: bool,
        now: Instant,
    ) -> Result<(), CommandError> {
        let action = if paused {
            "pause the recording"
        } else {
            "resume the recording"
        };
        let campaign = self
            .call_on_the_line_in(agent, action, true)?
            .1
            .campaign
            .clone();
        if !self.campaign_records(&campaign) {
            return Err(CommandError::Unavailable(
                "this call is not recorded: nothing to pause".into(),
            ));
        }
        let (call, entry) = self.call_on_the_line_in(agent, action, true)?;
        if !entry.recording_paused.set(paused, now) {
            return Err(CommandError::Unavailable(if paused {
                "the recording is paused already".into()
            } else {
                "the recording is not paused".into()
            }));
        }
        let campaign = entry.campaign.clone();
        self.effects.push_back(Effect::PauseRecording {
            call,
            agent: agent.to_string(),
            paused,
        });
        self.events.push_back(Event::RecordingPaused {
            agent: agent.to_string(),
            campaign,
            call,
            paused,
        });
        Ok(())
    }

    /// The agent pressed Hold (or Resume) on the phone. With a customer on
    /// the line, the customer goes on hold (or comes off it) as from the
    /// desktop. A Ready agent whose phone holds its reservation call takes
    /// no customer — one spliced into a phone nobody listens on would hear
    /// a silent call — so the agent is made Not ready ("phone on hold")
    /// until the phone resumes. A customer spliced while the phone holds
    /// goes on hold at once (`calls.rs`, the splice).
    pub(super) fn phone_hold(&mut self, agent: &str, held: bool, now: Instant) {
        let Some(entry) = self.agents.get_mut(agent) else {
            return;
        };
        entry.phone_held = held;
        let state = entry.session.state().clone();
        match state {
            AgentState::OnCall { .. } => {
                // During a consultation too (a conference held on the
                // phone is private again).
                let differs = self
                    .call_on_the_line_in(agent, "hold", true)
                    .is_ok_and(|(_, entry)| entry.hold.is_on() != held);
                if differs && let Err(error) = self.hold_call(agent, held, now) {
                    tracing::debug!(%agent, %error, "the phone's hold changed nothing");
                }
            }
            AgentState::Ready if held => {
                let _ = entry.session.not_ready(REASON_PHONE_ON_HOLD, now);
            }
            AgentState::NotReady { reason } if !held && reason == REASON_PHONE_ON_HOLD => {
                let _ = entry.session.ready(now);
            }
            _ => {}
        }
    }

    /// How long the agent's customer has been on hold (`None`: not on hold).
    pub(super) fn on_hold_for(&self, agent: &str, now: Instant) -> Option<Duration> {
        self.current_call_entry(agent)?.hold.current(now)
    }

    /// Whether this node records `campaign`'s bridged calls.
    fn campaign_records(&self, campaign: &str) -> bool {
        self.records_calls
            && self
                .campaigns
                .get(campaign)
                .is_none_or(|c| c.config.record_calls)
    }

    /// The call the agent is reserved for, on or wrapping up, while it is
    /// in flight.
    pub(super) fn current_call_entry(&self, agent: &str) -> Option<&CallEntry> {
        let call = self.agents.get(agent)?.session.current_call()?;
        self.calls.get(&call)
    }

    /// Whether the agent's current call is recorded.
    pub(super) fn call_recorded(&self, agent: &str) -> bool {
        self.current_call_entry(agent)
            .is_some_and(|entry| self.campaign_records(&entry.campaign))
    }

    /// Whether the recording of the agent's call is paused now.
    pub(super) fn recording_paused(&self, agent: &str) -> bool {
        self.current_call_entry(agent)
            .is_some_and(|entry| entry.recording_paused.is_on())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_add_up_and_a_running_hold_counts_to_now() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut clock = OnOffClock::default();
        assert!(!clock.set(false, t0), "not on hold yet");
        assert!(clock.set(true, t0 + s(10)));
        assert!(!clock.set(true, t0 + s(11)), "on hold already");
        assert_eq!(clock.current(t0 + s(15)), Some(s(5)));
        assert!(clock.set(false, t0 + s(40)));
        assert_eq!(clock.current(t0 + s(41)), None);
        assert_eq!(clock.total(t0 + s(50)), s(30));
        assert!(clock.set(true, t0 + s(60)));
        assert_eq!(clock.total(t0 + s(65)), s(35));
    }
}
