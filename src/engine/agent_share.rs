//! An agent assigned to several campaigns that dial for Ready agents on
//! their own — progressive, predictive, push preview — is counted by one
//! of them at a time.
//!
//! Each such campaign's pacer plans its dials on the agents it counts. An
//! agent counted by two is promised to both: their live answers compete
//! for one person, and each campaign abandons more than its pacer planned
//! for (two predictive campaigns sharing a team would each dial for the
//! whole team). So a shared agent *dials for* one campaign: that
//! campaign's pacer counts it, and its reserved-at-dial calls and pushed
//! records go to it; the other campaigns' pacers do not see it. A live
//! answer still takes any Ready agent of its campaign when none of the
//! agents it counts is free: an idle agent never watches a customer be
//! abandoned.
//!
//! The shares are balanced on the agents each campaign counts (its own
//! agents included), in proportion to the campaigns' `agent_share_weight`
//! (default 1: equal): an agent who logs in or joins goes to the campaign
//! furthest under its share; when a campaign starts, pauses or stops, or
//! an agent logs in or out, joins or leaves, agents move from campaigns
//! over their share to campaigns under it while a move brings the two
//! closer — agents who are not Ready first, since a Ready agent is the one
//! the calls in flight are counting on. "Closer" is the fall of
//! Σ count² ⁄ weight, which every move lowers, so the moves end. Manual
//! preview campaigns are not part of it: their agents ask for records
//! themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::campaign_run::RunState;
use super::dialer::{AgentEntry, Dialer};
use crate::agent::AgentState;
use crate::config::DialMode;

impl Dialer {
    /// Whether `campaign` is running and dials for Ready agents by itself.
    fn dials_for_ready_agents(&self, campaign: &str) -> bool {
        self.campaigns.get(campaign).is_some_and(|c| {
            c.state == RunState::Running
                && matches!(
                    c.mode,
                    DialMode::Progressive | DialMode::Predictive | DialMode::PushPreview
                )
        })
    }

    /// The campaigns that could count `entry`: those it takes part in that
    /// dial for Ready agents by themselves (none while logged out).
    fn campaigns_that_could_count(&self, entry: &AgentEntry) -> Vec<String> {
        if matches!(entry.session.state(), AgentState::LoggedOut) {
            return Vec::new();
        }
        entry
            .campaigns
            .iter()
            .filter(|c| self.dials_for_ready_agents(c) && self.takes_part(entry, c))
            .cloned()
            .collect()
    }

    /// Whether `campaign`'s pacing counts `entry`: the campaign it dials
    /// for, or any of its campaigns when it is not shared.
    pub(super) fn counts(entry: &AgentEntry, campaign: &str) -> bool {
        entry.dialing_for.as_deref().is_none_or(|c| c == campaign)
    }

    /// `campaign`'s `agent_share_weight`.
    fn share_weight(&self, campaign: &str) -> f64 {
        self.campaigns
            .get(campaign)
            .map_or(1.0, |c| c.config.agent_share_weight)
    }

    /// What one more agent costs `campaign`'s balance, counting `count`:
    /// the rise of count² ⁄ weight.
    fn cost_of_one_more(&self, campaign: &str, count: usize) -> f64 {
        (2 * count + 1) as f64 / self.share_weight(campaign)
    }

    /// Logged-in agents each running campaign that dials by itself counts.
    fn agents_counted(&self) -> BTreeMap<String, usize> {
        let mut counted: BTreeMap<String, usize> = self
            .campaigns
            .keys()
            .filter(|c| self.dials_for_ready_agents(c))
            .map(|c| (c.clone(), 0))
            .collect();
        for entry in self.agents.values() {
            for campaign in self.campaigns_that_could_count(entry) {
                if Self::counts(entry, &campaign)
                    && let Some(n) = counted.get_mut(&campaign)
                {
                    *n += 1;
                }
            }
        }
        counted
    }

    /// Brings `agent`'s share up to date: not shared unless two campaigns
    /// could count it; kept where it is while that campaign still can;
    /// else given to the campaign furthest under its share (the first in
    /// the agent's list on a tie). Whether it changed.
    pub(super) fn share_agent(&mut self, agent: &str) -> bool {
        let Some(entry) = self.agents.get(agent) else {
            return false;
        };
        let could = self.campaigns_that_could_count(entry);
        let next = if could.len() < 2 {
            None
        } else if let Some(kept) = entry.dialing_for.as_ref().filter(|c| could.contains(c)) {
            Some(kept.clone())
        } else {
            let counted = self.agents_counted();
            let cost = |c: &String| self.cost_of_one_more(c, counted.get(c).copied().unwrap_or(0));
            could
                .iter()
                .min_by(|a, b| cost(a).total_cmp(&cost(b)))
                .cloned()
        };
        let Some(entry) = self.agents.get_mut(agent) else {
            return false;
        };
        if entry.dialing_for == next {
            return false;
        }
        tracing::debug!(agent, from = ?entry.dialing_for, to = ?next, "shared agent dials for another campaign");
        entry.dialing_for = next;
        true
    }

    /// Every agent's share brought up to date, then shared agents moved
    /// from campaigns over their share to campaigns under it while a move
    /// brings them closer; the pacers hear of each agent that moved.
    pub(super) fn share_agents(&mut self, now: Instant) {
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        let mut moved: BTreeSet<String> = BTreeSet::new();
        for id in &ids {
            if self.share_agent(id) {
                moved.insert(id.clone());
            }
        }
        // Each move lowers the sum of squared counts, so this ends; the
        // bound is for safety.
        for _ in 0..=ids.len() {
            let Some((agent, to)) = self.narrowing_move() else {
                break;
            };
            if let Some(entry) = self.agents.get_mut(&agent) {
                tracing::debug!(agent, from = ?entry.dialing_for, to, "shared agent moved to balance the campaigns");
                entry.dialing_for = Some(to);
                moved.insert(agent);
            }
        }
        for agent in moved {
            self.agent_changed(&agent, now);
        }
    }

    /// The shared agent to move, and where, that brings the shares
    /// closest (the largest fall of Σ count² ⁄ weight; with equal weights,
    /// from a campaign counting two or more agents more than the other):
    /// an agent who is not Ready on a tie.
    fn narrowing_move(&self) -> Option<(String, String)> {
        let counted = self.agents_counted();
        let mut best: Option<(f64, bool, String, String)> = None;
        for (id, entry) in &self.agents {
            let Some(from) = entry.dialing_for.as_deref() else {
                continue;
            };
            let from_count = counted.get(from).copied().unwrap_or(0);
            if from_count == 0 {
                continue;
            }
            // What taking the agent away saves `from`.
            let saved = (2 * from_count - 1) as f64 / self.share_weight(from);
            for to in self.campaigns_that_could_count(entry) {
                let to_count = counted.get(&to).copied().unwrap_or(0);
                let fall = saved - self.cost_of_one_more(&to, to_count);
                // Not for rounding noise: a move must gain a real share.
                if to == from || fall <= 1e-9 {
                    continue;
                }
                let not_ready = !entry.session.is_ready();
                let better = best.as_ref().is_none_or(|(f, n, _, _)| {
                    fall > *f + 1e-9 || ((fall - *f).abs() <= 1e-9 && not_ready && !*n)
                });
                if better {
                    best = Some((fall, not_ready, id.clone(), to));
                }
            }
        }
        best.map(|(_, _, agent, to)| (agent, to))
    }
}
