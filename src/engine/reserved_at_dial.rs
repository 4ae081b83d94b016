//! Calls dialed with their agent reserved from the dial on: a previewed
//! record's Call (connected at the answer, or — `preview_variant =
//! "standard"` — after the analyser's verdict, as below), a repeat call
//! that needs a guaranteed agent ([`repeat_calls`](super::repeat_calls)),
//! and every call of a progressive campaign with
//! `agent_reserved_at_dial = true`.
//!
//! The last is SPEC §2's non-ASM variant of progressive dialing: the
//! record pops on the agent's desktop first ("outbound campaign call —
//! connecting…"), the agent hears the call progress, and the call is
//! theirs at the answer. outdial's default is the ASM ("engaged")
//! variant: agents are taken at the live answer and the record fills
//! their screen at the zip tone. Reserving the agent at the dial means
//! no live answer can be abandoned — the agent is waiting — at the price
//! of agents waiting through every ring, busy and no answer.
//!
//! Unlike a previewed record or a repeat call, such a call keeps the
//! campaign's call-progress analysis: a person is connected at the human
//! verdict (or at the answer with `[campaign.cpa] connect_first`), a
//! machine goes as `machine_action` says, and an agent whose call is
//! leaving a message or hung up is free again at the machine verdict.

use std::time::Instant;

use super::attempt::{Failure, Phase};
use super::dialer::Dialer;
use super::io::{CallId, Effect};
use crate::config::DialMode;
use crate::store::Lease;

impl Dialer {
    /// Whether `campaign` dials each call for a Ready agent reserved from
    /// the dial.
    pub(super) fn reserves_agent_at_dial(&self, campaign: &str) -> bool {
        self.campaigns
            .get(campaign)
            .is_some_and(|c| c.mode == DialMode::Progressive && c.config.agent_reserved_at_dial)
    }

    /// Dials `lease` for the campaign's longest-idle Ready agent (among
    /// those its pacer counts), reserved from the dial on; with none Ready
    /// (the pacer counted an agent who has just gone) the record goes back
    /// to the front of the hopper.
    pub(super) fn dial_for_a_ready_agent(&mut self, campaign: &str, lease: Lease, now: Instant) {
        let Some(agent) = self.longest_idle_counted_agent(campaign, now) else {
            // Not `decide_now`: the pacer would count the same agent again
            // at once; its next decision (an agent event, or within the
            // second) tries again.
            if let Some(live) = self.live.get_mut(campaign) {
                live.hopper.push_front(lease);
            }
            return;
        };
        if let Err(error) = self.dial_with_agent(campaign, lease, &agent, false, None, now) {
            tracing::warn!(campaign, %agent, %error, "could not reserve the agent");
        }
        // The pacer hears of the reserved agent before the next dial of
        // this pass picks one.
        self.collect_agent_events(now);
    }

    /// The callee of a call with its agent reserved answered, and the
    /// analyser decides before the agent takes it: the ringback the agent
    /// hears stops (the zip tone follows a human verdict).
    pub(super) fn reserved_call_answered(&mut self, call: CallId) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        if entry.agent_hears_ringback && matches!(entry.attempt.phase(), Phase::Analysing) {
            entry.agent_hears_ringback = false;
            if let Some(agent) = entry.reserved_agent.clone() {
                self.effects.push_back(Effect::AgentRingback {
                    agent,
                    call,
                    on: false,
                });
            }
        }
    }

    /// A machine verdict on a call with its agent reserved sent the call
    /// to wait for the beep or to play the voicemail message: the agent is
    /// not needed and is free again now rather than when the message ends.
    pub(super) fn machine_frees_reserved_agent(&mut self, call: CallId, now: Instant) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        if !matches!(
            entry.attempt.phase(),
            Phase::WaitingForBeep { .. } | Phase::Playing(_)
        ) {
            return;
        }
        let Some(agent) = entry.reserved_agent.take() else {
            return;
        };
        if let Some(a) = self.agents.get_mut(&agent)
            && a.session.current_call() == Some(call)
        {
            let _ = a.session.release(now);
        }
    }

    /// The agent reserved for `call` went away (its phone dropped, a
    /// forced logout) before the call was theirs. Before the answer the
    /// reservation passes to another Ready agent of the campaign, or —
    /// nobody free — the call is hung up before anyone answers (as a
    /// ring-out, `no_answer`): a live answer must not find no agent. Once
    /// answered and still being analysed it passes to another Ready agent
    /// if there is one, else the verdict goes to whoever is free as any
    /// live answer does. Whether `call` was such a call.
    pub(super) fn reserved_call_lost_its_agent(&mut self, call: CallId, now: Instant) -> bool {
        let Some(entry) = self.calls.get(&call) else {
            return false;
        };
        let phase = entry.attempt.phase();
        let ringing = matches!(phase, Phase::Ringing);
        let before_answer = matches!(phase, Phase::Dialing | Phase::Ringing);
        let analysing = matches!(phase, Phase::Analysing);
        if entry.reserved_agent.is_none() || !(before_answer || analysing) {
            return false;
        }
        let campaign = entry.campaign.clone();
        let lease = entry.lease.clone();
        if let Some(agent) = self.longest_idle_ready_agent(&campaign, now)
            && let Some(a) = self.agents.get_mut(&agent)
            && a.session.reserve(call, now).is_ok()
        {
            tracing::info!(
                campaign,
                %agent,
                record = lease.external_id,
                "call handed to another agent: its reserved agent went away"
            );
            if a.per_call && !a.session.has_leg() {
                self.effects.push_back(Effect::CallAgent {
                    agent: agent.clone(),
                });
            }
            self.events
                .push_back(super::calls::screen_pop(&agent, &campaign, call, &lease));
            if let Some(entry) = self.calls.get_mut(&call) {
                entry.reserved_agent = Some(agent);
                entry.agent_hears_ringback = false;
            }
            if ringing {
                self.ringback_to_reserved_agent(call);
            }
            return true;
        }
        if analysing {
            // Nobody to hand it to: the verdict asks the dispatcher.
            if let Some(entry) = self.calls.get_mut(&call) {
                entry.reserved_agent = None;
                entry.agent_hears_ringback = false;
            }
            return true;
        }
        tracing::warn!(
            campaign,
            record = lease.external_id,
            "call hung up before the answer: its reserved agent went away and no other is free"
        );
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.attempt.on_failed(Failure::NoAnswer, None, None, now);
            self.effects.push_back(Effect::HangUp { call });
        }
        self.drain_attempt(call, now);
        true
    }
}
