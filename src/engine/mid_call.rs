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
    fn call_on_the_line(
        &mut self,
        agent: &str,
        action: &'static str,
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
        self.calls
            .get_mut(&call)
            .filter(|entry| {
                matches!(entry.attempt.phase(), Phase::Bridged { .. })
                    && entry.spliced_to.as_deref() == Some(agent)
            })
            .map(|entry| (call, entry))
            // Still hearing the zip tone, the splice not done yet (the
            // customer is not through) or already ending.
            .ok_or_else(|| {
                CommandError::Unavailable(format!("no customer on the line to {action}"))
            })
    }

    /// `Command::Hold`: the agent's bridged call goes on hold (`on`) or off.
    pub(super) fn hold_call(
        &mut self,
        agent: &str,
        on: bool,
        now: Instant,
    ) -> Result<(), CommandError> {
        let phone_held = self.agents.get(agent).is_some_and(|a| a.phone_held);
        let (call, entry) = self.call_on_the_line(agent, if on { "hold" } else { "resume" })?;
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
        let campaign = self.call_on_the_line(agent, action)?.1.campaign.clone();
        if !self.campaign_records(&campaign) {
            return Err(CommandError::Unavailable(
                "this call is not recorded: nothing to pause".into(),
            ));
        }
        let (call, entry) = self.call_on_the_line(agent, action)?;
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
                let differs = self
                    .call_on_the_line(agent, "hold")
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
        let call = self.agents.get(agent)?.session.current_call()?;
        self.calls.get(&call)?.hold.current(now)
    }

    /// Whether this node records `campaign`'s bridged calls.
    fn campaign_records(&self, campaign: &str) -> bool {
        self.records_calls
            && self
                .campaigns
                .get(campaign)
                .is_none_or(|c| c.config.record_calls)
    }

    /// Whether the agent's current call is recorded.
    pub(super) fn call_recorded(&self, agent: &str) -> bool {
        self.agents
            .get(agent)
            .and_then(|a| a.session.current_call())
            .and_then(|call| self.calls.get(&call))
            .is_some_and(|entry| self.campaign_records(&entry.campaign))
    }

    /// Whether the recording of the agent's call is paused now.
    pub(super) fn recording_paused(&self, agent: &str) -> bool {
        self.agents
            .get(agent)
            .and_then(|a| a.session.current_call())
            .and_then(|call| self.calls.get(&call))
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
