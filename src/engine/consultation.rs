//! Consultation (warm) transfer and three-way conference (Genesys
//! "Consult" then "Complete transfer" or "Conference", Webex "Consult",
//! VICIdial's "3-way call" with another agent then "leave 3-way"):
//!
//! - the agent with a customer on the line **consults** another Ready
//!   agent (`Command::Consult`; named, or the campaign's Ready agent idle
//!   the longest): the other agent is reserved for the call and sees its
//!   screen pop, the customer goes on hold and the two agents talk
//!   (`Phase::Consulting`, [`Effect::Consult`]: the consulted agent's leg
//!   is heard in the consulting agent's, as a barging supervisor's is);
//! - **resume** during the consultation is a **conference**: the customer
//!   hears both agents and both hear the customer; hold makes it private
//!   again;
//! - **complete** (`Command::Transfer` during the consultation, or the
//!   consulting agent's phone hanging up) hands the customer to the
//!   consulted agent as a blind transfer does (zip tone, splice, the call
//!   and its wrap-up theirs);
//! - **end** (`Command::EndConsultation`, by either agent, or the
//!   consulted agent's phone going away) frees the consulted agent; the
//!   customer stays with the consulting agent, as it was (on hold, or off
//!   hold after a conference).
//!
//! The call stays the consulting agent's until the transfer is done: a
//! customer who hangs up meanwhile is their call and wrap-up, and the
//! consulted agent is freed.

use std::time::Instant;

use super::attempt::Phase;
use super::dialer::{CommandError, ConsultationView, Dialer, Event};
use super::io::{CallId, Effect};

impl Dialer {
    /// `Command::Consult`: `agent` consults `to` (or the call's campaign's
    /// Ready agent idle the longest) about the customer on its line.
    pub(super) fn consult(
        &mut self,
        agent: &str,
        to: Option<String>,
        now: Instant,
    ) -> Result<(), CommandError> {
        let (call, campaign, to) =
            self.reserve_next_agent(agent, to, "consult", now, |attempt, to| attempt.consult(to))?;
        // The two agents talk privately first.
        self.hold_for_hand_over(call, agent, now);
        let Some(entry) = self.calls.get(&call) else {
            return Err(CommandError::Unavailable("the call is over".into()));
        };
        let pop = super::calls::screen_pop(&to, &campaign, call, &entry.lease);
        self.effects.push_back(Effect::Consult {
            call,
            number: entry.attempt.consultation_number(),
            from: agent.to_string(),
            to: to.clone(),
            on: true,
        });
        self.events.push_back(pop);
        tracing::info!(call, from = %agent, %to, "consultation started");
        self.events.push_back(Event::Transfer {
            agent: agent.to_string(),
            to,
            campaign,
            call,
            step: "consulting",
            reason: None,
        });
        Ok(())
    }

    /// `Command::EndConsultation`: either agent of a consultation ends it;
    /// the consulted agent is free, the customer stays with the other.
    pub(super) fn end_consultation(
        &mut self,
        agent: &str,
        now: Instant,
    ) -> Result<(), CommandError> {
        if !self.agents.contains_key(agent) {
            return Err(CommandError::UnknownAgent(agent.to_string()));
        }
        let Some((call, from, _)) = self.consultation_of(agent) else {
            return Err(CommandError::Unavailable(
                "no consultation to end: you are not consulting nor consulted".into(),
            ));
        };
        let why = if from == agent {
            "the consulting agent ended the consultation"
        } else {
            "the consulted agent left the consultation"
        };
        self.with_attempt(call, now, |a, _| {
            a.end_consultation(why);
        });
        Ok(())
    }

    /// The transfer at the end of `agent`'s consultation on `call`: the
    /// customer goes to the agent consulted (`to`, if given, must be that
    /// agent).
    pub(super) fn complete_consultation(
        &mut self,
        agent: &str,
        call: CallId,
        to: Option<String>,
        now: Instant,
    ) -> Result<(), CommandError> {
        let Some((_, consulted)) = self
            .calls
            .get(&call)
            .and_then(|entry| entry.attempt.consultation())
            .map(|(from, to)| (from.to_string(), to.to_string()))
        else {
            return Err(CommandError::Unavailable("the consultation is over".into()));
        };
        if let Some(to) = to.filter(|to| *to != consulted) {
            return Err(CommandError::Unavailable(format!(
                "you are consulting `{consulted}`: end the consultation before transferring to `{to}`"
            )));
        }
        let Some(entry) = self.calls.get_mut(&call) else {
            return Err(CommandError::Unavailable("the call is over".into()));
        };
        if entry.splices_in_flight > 0 || !entry.attempt.transfer(&consulted, now) {
            return Err(CommandError::Unavailable(
                "the call cannot be transferred now".into(),
            ));
        }
        let campaign = entry.campaign.clone();
        tracing::info!(call, from = %agent, to = %consulted, "consultation completed: transfer started");
        self.transfer_started(agent, consulted, campaign, call, now);
        Ok(())
    }

    /// The call `agent` consults another agent on, if it does.
    pub(super) fn consulting_call(&self, agent: &str) -> Option<CallId> {
        self.consultation_of(agent)
            .filter(|(_, from, _)| from == agent)
            .map(|(call, ..)| call)
    }

    /// The consultation `agent` takes part in (consulting or consulted):
    /// its call, the consulting agent and the consulted one.
    pub(super) fn consultation_of(&self, agent: &str) -> Option<(CallId, String, String)> {
        let call = self.agents.get(agent)?.session.current_call()?;
        let (from, to) = self.calls.get(&call)?.attempt.consultation()?;
        (from == agent || to == agent).then(|| (call, from.to_string(), to.to_string()))
    }

    /// The consultation on `call`, if one runs: (consulting, consulted).
    pub(super) fn consultation_on(&self, call: CallId) -> Option<(&str, &str)> {
        self.calls.get(&call)?.attempt.consultation()
    }

    /// What `agent`'s desktop shows of its consultation.
    pub(super) fn consultation_view(&self, agent: &str) -> Option<ConsultationView> {
        let (call, from, to) = self.consultation_of(agent)?;
        let conference = self
            .calls
            .get(&call)
            .is_some_and(|entry| !entry.hold.is_on());
        Some(if from == agent {
            ConsultationView {
                with: to,
                role: "consulting",
                conference,
            }
        } else {
            ConsultationView {
                with: from,
                role: "consulted",
                conference,
            }
        })
    }

    /// The consulted agent's phone hung up during the consultation (or
    /// the agent pressed Hang up): it leaves the consultation.
    pub(super) fn consulted_agent_hung_up(&mut self, call: CallId, now: Instant) {
        self.with_attempt(call, now, |a, _| {
            a.end_consultation("the consulted agent left the consultation");
        });
    }

    /// Whether `call`'s phase is a consultation.
    pub(super) fn consultation_under_way(&self, call: CallId) -> bool {
        self.calls
            .get(&call)
            .is_some_and(|entry| matches!(entry.attempt.phase(), Phase::Consulting { .. }))
    }
}
