//! Ofcom's repeat-call rule in the engine: a number called again within
//! 72 hours of an abandoned call, or 24 hours of a machine verdict (which
//! may have been a person hung up on), is dialed only with a live agent
//! guaranteed. The store marks such numbers after the call
//! (`[campaign.repeat_calls]`) and leases them with
//! [`Lease::agent_required`](crate::store::Lease::agent_required).
//!
//! In the pacing modes such a lease never reaches the pacer's hopper: it
//! waits in `LiveCampaign::agent_required` until one of the campaign's
//! agents is Ready, and is then dialed with that agent reserved from the
//! dial on. The agent hears the call progress and takes the call at the
//! answer, as a previewed call's agent does: no answering-machine
//! detection hangs up on the person again, and there is no 2-second race
//! to lose. Live answers already waiting for an agent are served first;
//! the repeat calls then go before the pacer's next decision, which sees
//! the agent reserved. In the preview modes every call has its agent
//! already. A lease no agent took within [`REPEAT_CALL_HOLD`] goes back to
//! the list (its record is leased again at its next turn), well before the
//! store would let the lease lapse.

use std::time::{Duration, Instant};

use super::campaign_run::RunState;
use super::dialer::Dialer;
use super::io::{CallId, Effect};
use crate::agent::AgentError;
use crate::store::{Lease, Release};

/// How long a repeat call waits in the engine for an agent before its
/// lease is given back.
pub const REPEAT_CALL_HOLD: Duration = Duration::from_secs(5 * 60);

impl Dialer {
    /// Dials each running pacing campaign's waiting repeat calls, one per
    /// Ready agent of the campaign, the longest idle first, as far as the
    /// trunk takes new calls.
    pub(super) fn dial_repeat_calls(&mut self, now: Instant) {
        let waiting: Vec<String> = self
            .live
            .iter()
            .filter(|(_, live)| !live.agent_required.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for campaign in waiting {
            let dialing = self
                .campaigns
                .get(&campaign)
                .is_some_and(|c| c.state == RunState::Running && !c.mode.is_preview());
            if !dialing {
                continue;
            }
            while self.new_call_refused(now).is_none() {
                let Some(live) = self.live.get(&campaign) else {
                    break;
                };
                if live.agent_required.is_empty() || live.dispatcher.waiting() > 0 {
                    // Nothing to dial, or a live customer is waiting: the
                    // next free agent is theirs.
                    break;
                }
                let Some(agent) = self.longest_idle_ready_agent(&campaign, now) else {
                    break;
                };
                let Some((lease, _)) = self.live.get_mut(&campaign).and_then(|live| {
                    live.stats.repeat_calls_dialed += 1;
                    live.agent_required.pop_front()
                }) else {
                    break;
                };
                tracing::info!(
                    campaign,
                    %agent,
                    record = lease.external_id,
                    "repeat call dialed with its agent reserved (Ofcom repeat-call rule)"
                );
                if let Err(error) = self.dial_with_agent(&campaign, lease, &agent, true, None, now)
                {
                    tracing::warn!(campaign, %agent, %error, "could not reserve the agent");
                }
                // The pacers hear of the reserved agent before they decide.
                self.collect_agent_events(now);
            }
        }
    }

    /// Dials `lease` with `agent` reserved for the call from the dial on,
    /// and shows the agent the record; a per-call phone is rung with it, so
    /// that the agent hears the progress and is connected the moment the
    /// callee answers (`connect_at_answer`; else at the human verdict).
    pub(super) fn dial_with_agent(
        &mut self,
        campaign: &str,
        lease: Lease,
        agent: &str,
        connect_at_answer: bool,
        caller_id: Option<String>,
        now: Instant,
    ) -> Result<Option<CallId>, AgentError> {
        let pop = lease.clone();
        let call = self.dial(
            campaign,
            lease,
            Some(agent.to_string()),
            connect_at_answer,
            caller_id,
            now,
        );
        if let (Some(call), Some(entry)) = (call, self.agents.get_mut(agent)) {
            entry.session.reserve(call, now)?;
            // The agent sees whom the call is for while it rings.
            self.events
                .push_back(super::calls::screen_pop(agent, campaign, call, &pop));
            if entry.per_call && !entry.session.has_leg() {
                self.effects.push_back(Effect::CallAgent {
                    agent: agent.to_string(),
                });
            }
        }
        Ok(call)
    }

    /// Why the trunk takes no new call now, if it does not: every line in
    /// use, a hold on new calls, or the calls per second spent.
    pub(super) fn new_call_refused(&mut self, now: Instant) -> Option<String> {
        if self.trunk_lines_in_use() >= self.trunk_max_calls() {
            return Some("max concurrent calls reached".into());
        }
        if self.trunk_lines_free_for_new_calls() == 0 {
            return Some("the last trunk line is kept for outside transfers".into());
        }
        if let Some(hold) = self.trunk_health.hold(now) {
            return Some(hold.reason().to_string());
        }
        let cps = Some(self.trunk_calls_per_second());
        if self.dial_rate.allowed(cps, now) == 0 {
            return Some("the trunk's calls per second are in use".into());
        }
        None
    }

    /// Gives back the repeat calls that waited [`REPEAT_CALL_HOLD`] for an
    /// agent.
    pub(super) fn repeat_calls_timeout(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for live in self.live.values_mut() {
            while live
                .agent_required
                .front()
                .is_some_and(|(_, since)| now.saturating_duration_since(*since) >= REPEAT_CALL_HOLD)
            {
                if let Some((lease, _)) = live.agent_required.pop_front() {
                    expired.push(lease);
                }
            }
        }
        if !expired.is_empty() {
            tracing::info!(
                records = expired.len(),
                "repeat calls given back: no agent was free to guarantee them"
            );
            self.effects.push_back(Effect::ReleaseLeases {
                leases: expired,
                how: Release::Unused,
            });
        }
    }

    /// How many repeat calls a campaign holds waiting at most: one per
    /// agent taking part (logged in). With that many, its lease requests
    /// leave the others in the list (`skip_agent_required`): a list full
    /// of them must not be leased into the engine faster than its agents
    /// can take them, nor kept from other nodes meanwhile.
    pub(super) fn repeat_calls_cap(&self, campaign: &str) -> usize {
        self.agents
            .values()
            .filter(|a| {
                !matches!(a.session.state(), crate::agent::AgentState::LoggedOut)
                    && self.takes_part(a, campaign)
            })
            .count()
            .max(1)
    }

    pub(super) fn repeat_calls_poll_timeout(&self) -> Option<Instant> {
        self.live
            .values()
            .filter_map(|live| live.agent_required.front())
            .map(|(_, since)| *since + REPEAT_CALL_HOLD)
            .min()
    }
}
