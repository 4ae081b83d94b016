//! Transfer to an outside number (Genesys "single-step transfer" to a
//! number, Webex "Transfer" to a dial number, VICIdial's "blind external
//! transfer"):
//!
//! - the agent with a customer on the line picks one of the campaign's
//!   outside numbers (`[[campaign.outside_transfer]]`: a partner, the
//!   billing department on the PBX — never a number of the agent's own
//!   choosing on the company's trunk) (`Command::TransferOutside`);
//! - the customer goes on hold and the number is dialed through the trunk
//!   (`Phase::TransferringOut`, [`Effect::DialOutside`]), a second trunk
//!   line for as long as the two talk: the transfer is refused when the
//!   trunk's lines are all in use;
//! - when it answers, the customer is spliced into its line (the same
//!   splice as into an agent's, named by
//!   [`outside_party`](super::attempt::outside_party)) and the dialer
//!   bridges the two (`Phase::HandedOff`); the agent goes to wrap-up at
//!   once, and its disposition is written with the call when the call ends
//!   (either side hangs up);
//! - should the number be busy, refuse, not answer within
//!   [`OUTSIDE_RING_WAIT`](super::attempt::OUTSIDE_RING_WAIT) or fail,
//!   the customer stays with the agent, on hold, and the agent is told why.
//!
//! The customer's part with the outside number is not recorded: the
//! recording is of the agent's conversation, and the third party was
//! never told of it.

use std::time::{Duration, Instant};

use super::attempt::Phase;
use super::calls::WrapUpGiven;
use super::dialer::{CommandError, Dialer, Event};
use super::io::{CallId, Effect};
use crate::agent::AgentState;

impl Dialer {
    /// `Command::TransferOutside`: `agent` transfers the customer on its
    /// line to the campaign's outside number named `destination`.
    pub(super) fn transfer_outside(
        &mut self,
        agent: &str,
        destination: &str,
        now: Instant,
    ) -> Result<(), CommandError> {
        let (call, entry) = self.call_on_the_line(agent, "transfer")?;
        let campaign = entry.campaign.clone();
        let config = self.campaigns.get(&campaign).map(|c| &c.config);
        let destinations = config
            .map(|c| c.outside_transfers.as_slice())
            .unwrap_or_default();
        let Some(number) = config
            .and_then(|c| c.outside_transfer(destination))
            .map(|t| t.number.clone())
        else {
            return Err(CommandError::Invalid(if destinations.is_empty() {
                format!("campaign `{campaign}` has no outside numbers to transfer to")
            } else {
                format!(
                    "campaign `{campaign}` has no outside number `{destination}`; use one of {}",
                    destinations
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }));
        };
        let lines = self.trunk_max_calls();
        if self.trunk_lines_in_use() >= lines {
            return Err(CommandError::Unavailable(format!(
                "all {lines} trunk lines are in use: the outside number cannot be called now"
            )));
        }
        if let Some(hold) = self.trunk_health.hold(now) {
            return Err(CommandError::Unavailable(format!(
                "the outside number cannot be called now: {}",
                hold.reason()
            )));
        }
        let Some(entry) = self.calls.get_mut(&call) else {
            return Err(CommandError::Unavailable("the call is over".into()));
        };
        if !entry.attempt.transfer_outside(&number, now) {
            return Err(CommandError::Unavailable(
                "the call cannot be handed on now (transfer)".into(),
            ));
        }
        // "Please hold while I transfer you": the customer hears the hold
        // audio, not the agent's silence, while the number rings.
        self.hold_for_hand_over(call, agent, now);
        tracing::info!(call, from = %agent, %destination, %number, "outside transfer started");
        // A start on the trunk like any dial: the pacer's next calls
        // leave room for it within the calls per second.
        self.dial_rate.record(now);
        self.events.push_back(Event::Transfer {
            agent: agent.to_string(),
            to: number,
            campaign,
            call,
            step: "started",
            reason: None,
        });
        self.drain_attempt(call, now);
        Ok(())
    }

    /// `Command::CancelTransfer`: `agent` calls off its transfer to an
    /// outside number while the number rings (the customer changed their
    /// mind, the wrong number was picked): the line is cancelled and the
    /// customer stays with the agent, on hold. Too late once it answered.
    pub(super) fn cancel_outside_transfer(
        &mut self,
        agent: &str,
        now: Instant,
    ) -> Result<(), CommandError> {
        let state = self
            .agents
            .get(agent)
            .ok_or_else(|| CommandError::UnknownAgent(agent.to_string()))?
            .session
            .state()
            .clone();
        let AgentState::OnCall { call } = state else {
            return Err(CommandError::Unavailable(format!(
                "agent `{agent}` has no transfer to cancel"
            )));
        };
        let Some(entry) = self.calls.get_mut(&call) else {
            return Err(CommandError::Unavailable("the call is over".into()));
        };
        match entry.attempt.phase() {
            Phase::TransferringOut {
                answered: false,
                from,
                ..
            } if from == agent => {}
            Phase::TransferringOut { answered: true, .. } => {
                return Err(CommandError::Unavailable(
                    "the outside number answered: the customer is being put through".into(),
                ));
            }
            _ => {
                return Err(CommandError::Unavailable(format!(
                    "agent `{agent}` has no transfer to an outside number to cancel"
                )));
            }
        }
        entry.attempt.cancel_outside_transfer();
        self.drain_attempt(call, now);
        Ok(())
    }

    /// The customer is through to the outside number: the agent who
    /// transferred it is off the call and wraps it up now, while the call
    /// goes on; the record waits for both (`finished`, `flush_disposition`).
    pub(super) fn handed_off(
        &mut self,
        call: CallId,
        from: String,
        number: String,
        campaign: String,
        now: Instant,
    ) {
        // (An agent whose phone went while the number rang wraps up
        // already.)
        self.wrap_up_going_call(call, &from, true, now);
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        // The hold and the recording pause were of the agent's bridge.
        let was_held = entry.hold.set(false, now);
        entry.recording_paused.set(false, now);
        // (To an agent still with the call: one whose phone went while the
        // number rang may be on another by now.)
        let still_with_call = self
            .agents
            .get(&from)
            .is_some_and(|a| a.session.current_call() == Some(call));
        if was_held && still_with_call {
            self.events.push_back(Event::Hold {
                agent: from.clone(),
                campaign: campaign.clone(),
                call,
                on: false,
            });
        }
        tracing::info!(call, %from, %number, "outside transfer done");
        self.events.push_back(Event::Transfer {
            agent: from,
            to: number,
            campaign,
            call,
            step: "done",
            reason: None,
        });
    }

    /// `agent`, on `call` (which goes on without it: handed to an outside
    /// number, or about to be), wraps it up now: its record waits for both
    /// the call's end and the disposition. `hang_up_phone`: a per-call
    /// phone's call is ended (the customer left it). Nothing unless the
    /// agent is on that call.
    fn wrap_up_going_call(&mut self, call: CallId, agent: &str, hang_up_phone: bool, now: Instant) {
        let Some(campaign) = self.calls.get(&call).map(|entry| entry.campaign.clone()) else {
            return;
        };
        let wrap_up_limit = self
            .campaigns
            .get(&campaign)
            .and_then(|c| c.config.wrap_up_timeout_s)
            .map(Duration::from_secs);
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if a.session.state() != &(AgentState::OnCall { call }) {
            return;
        }
        if a.per_call && hang_up_phone {
            self.effects.push_back(Effect::HangUpAgent {
                agent: agent.to_string(),
            });
        }
        let _ = a.session.call_ended(now);
        if let Some(limit) = wrap_up_limit {
            a.session.limit_wrap_up(limit, now);
        }
        if matches!(a.session.state(), AgentState::WrapUp { .. })
            && let Some(entry) = self.calls.get_mut(&call)
        {
            entry.wrap_up_by = Some(agent.to_string());
        }
    }

    /// The phone of `agent` went away (`Input::AgentLeg` down) while its
    /// customer's outside number rings: the transfer goes on, and the
    /// agent wraps the call up now (no one else will). True when that was
    /// the case.
    pub(super) fn phone_gone_during_outside_transfer(
        &mut self,
        agent: &str,
        call: CallId,
        now: Instant,
    ) -> bool {
        let (ringing_for_agent, answered) = match self.calls.get(&call).map(|e| e.attempt.phase()) {
            Some(Phase::TransferringOut { from, answered, .. }) if from == agent => {
                (true, *answered)
            }
            _ => (false, false),
        };
        if ringing_for_agent {
            tracing::info!(call, %agent, "the agent's phone went during an outside transfer: wrap-up now");
            self.wrap_up_going_call(call, agent, false, now);
            // The hold audio was played in the agent's leg, gone with the
            // phone: the customer's own leg plays it (not dead air) until
            // the number answers. (Not once it answered: the customer's
            // splice into its line is under way, and a prompt would take
            // the customer back out.)
            if !answered {
                self.effects.push_back(Effect::Play {
                    call,
                    prompt: super::attempt::Prompt::Hold,
                });
            }
        }
        ringing_for_agent
    }

    /// The outside transfer failed: the customer stays with `from`, on
    /// hold (spliced back into its leg when it had left: `splice_back`).
    /// An agent who has left the call meanwhile (its phone gone: in
    /// wrap-up) leaves nobody to take the customer back: the call ends.
    pub(super) fn outside_transfer_failed(
        &mut self,
        call: CallId,
        from: String,
        number: String,
        why: String,
        splice_back: bool,
        now: Instant,
    ) {
        let Some(entry) = self.calls.get(&call) else {
            return;
        };
        let campaign = entry.campaign.clone();
        let agent_left = self
            .agents
            .get(&from)
            .is_none_or(|a| a.session.state() != &(AgentState::OnCall { call }));
        tracing::info!(call, %from, %number, %why, agent_left, "outside transfer failed");
        let reason = if agent_left {
            format!("{why}, and `{from}` had left the call: the call ended")
        } else {
            format!("{why}; the customer is back with you, on hold")
        };
        let step = if why == super::attempt::OUTSIDE_TRANSFER_CANCELLED {
            "cancelled"
        } else {
            "failed"
        };
        self.events.push_back(Event::Transfer {
            agent: from.clone(),
            to: number,
            campaign: campaign.clone(),
            call,
            step,
            reason: Some(reason),
        });
        if agent_left {
            if let Some(entry) = self.calls.get_mut(&call) {
                entry.attempt.on_agent_hangup(now);
            }
            return;
        }
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        let held = entry.hold.set(true, now);
        if splice_back {
            // The splice back starts a fresh bridge, on hold.
            self.connect(call, from.clone());
        } else if held {
            self.effects.push_back(Effect::Hold {
                call,
                agent: from.clone(),
                on: true,
            });
        }
        if held {
            self.events.push_back(Event::Hold {
                agent: from,
                campaign,
                call,
                on: true,
            });
        }
    }

    /// The call `agent` handed to an outside number and is wrapping up
    /// (its disposition not given yet), still going on.
    fn handed_off_call_of(&self, agent: &str) -> Option<CallId> {
        self.calls
            .iter()
            .find(|(_, entry)| {
                entry.wrap_up_by.as_deref() == Some(agent) && entry.wrap_up.is_none()
            })
            .map(|(call, _)| *call)
    }

    /// The campaign of the call `agent` is wrapping up: finished and
    /// waiting for its disposition, or handed to an outside number.
    pub(super) fn wrap_up_campaign(&self, agent: &str) -> Option<String> {
        if let Some(record) = self.awaiting_disposition.get(agent) {
            return Some(record.campaign.clone());
        }
        let call = self.handed_off_call_of(agent)?;
        self.calls.get(&call).map(|entry| entry.campaign.clone())
    }

    /// Keeps what `agent` gave as its wrap-up ended with the call it
    /// handed to an outside number, written with the call's record when it
    /// ends. False when the agent wraps up no such call.
    pub(super) fn keep_wrap_up_with_call(&mut self, agent: &str, given: WrapUpGiven) -> bool {
        let Some(call) = self.handed_off_call_of(agent) else {
            return false;
        };
        match self.calls.get_mut(&call) {
            Some(entry) => {
                entry.wrap_up = Some(given);
                true
            }
            None => false,
        }
    }

    /// Trunk lines the pacers leave free for outside transfers: one while
    /// a running campaign of the node offers outside numbers (else a busy
    /// trunk, every line dialed as soon as it frees, would refuse nearly
    /// every transfer).
    pub(super) fn lines_kept_for_transfers(&self) -> u32 {
        let offered = self.live.keys().any(|name| {
            self.campaigns.get(name).is_some_and(|c| {
                c.state == super::campaign_run::RunState::Running
                    && !c.config.outside_transfers.is_empty()
            })
        });
        u32::from(offered)
    }

    /// The outside number `agent` is transferring its customer to, while
    /// it rings.
    pub(super) fn transferring_outside_to(&self, agent: &str) -> Option<String> {
        // (Not an agent whose phone went meanwhile: it wraps the call up.)
        if !matches!(
            self.agents.get(agent)?.session.state(),
            AgentState::OnCall { .. }
        ) {
            return None;
        }
        match self.current_call_entry(agent)?.attempt.phase() {
            Phase::TransferringOut { from, number, .. } if from == agent => Some(number.clone()),
            _ => None,
        }
    }

    /// The names of the outside numbers `agent` may transfer its customer
    /// to now (for the desktop); empty unless a customer is on its line.
    pub(super) fn outside_transfer_names(&self, agent: &str) -> Vec<String> {
        if !self.customer_on_line(agent) {
            return Vec::new();
        }
        let Some(entry) = self.current_call_entry(agent) else {
            return Vec::new();
        };
        if !matches!(entry.attempt.phase(), Phase::Bridged { .. }) {
            return Vec::new();
        }
        self.campaigns
            .get(&entry.campaign)
            .map(|c| {
                c.config
                    .outside_transfers
                    .iter()
                    .map(|t| t.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}
