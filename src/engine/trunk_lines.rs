//! The node's trunk among its campaigns: each running campaign's pacer
//! decides how many calls it wants, and this pass gives them the node's
//! free lines and calls per second.
//!
//! The carrier counts every call of the node, whichever campaign (or
//! preview agent) starts it, so the limits are held here, once: lines by
//! the calls in flight, calls per second by one window of call starts
//! ([`DialRate`](crate::pacing::dial_rate::DialRate), preview dials
//! included). When the campaigns together want more than is free, each
//! is entitled to a max-min fair part of the node's lines by what it holds
//! plus what it wants; a campaign holding
//! more than its part (it started first) gets no new line until the others
//! have theirs, and lines nobody else wants now go to whoever wants them.
//! A campaign left wanting is paced again as soon as a line or a call
//! start frees, not at its next periodic decision: otherwise the campaign
//! whose call just ended would always be first to take the line back.

use std::time::Instant;

use super::dialer::Dialer;
use super::io::Effect;
use crate::pacing::Limit;
use crate::pacing::dial_rate::max_min_fair;

use super::calls::{HOPPER_SPARE, MAX_LEASE_BATCH};

/// One running campaign in a pacing pass.
struct Claim {
    name: String,
    /// Its pacer decided in this pass.
    due: bool,
    /// Calls of this campaign in flight.
    in_use: u32,
    /// Calls its pacer wants to start now.
    ask: u32,
    /// Of those, what its hopper holds records for.
    ask_with_records: u32,
    /// Calls its pacer wanted before its own trunk limits: its demand.
    wanted: u32,
    /// Its hopper is short and records are being leased: the lines it is
    /// entitled to are kept for it rather than given to the others.
    records_on_the_way: bool,
}

impl Dialer {
    /// Paces every running campaign that is due and starts the calls the
    /// node's lines and calls per second allow, divided fairly.
    pub(super) fn pace_running_campaigns(&mut self, now: Instant) {
        let node_lines = u32::try_from(self.trunk_max_calls()).unwrap_or(u32::MAX);
        let free_lines = self.trunk_lines_free_for_new_calls();
        let cps = Some(self.trunk_calls_per_second());
        let free_starts = self
            .dial_rate
            .allowed(cps, now)
            .min(self.trunk_health.allowed_starts(now));
        let can_start = free_lines.min(free_starts);
        let hold = self.trunk_health.hold(now);
        if hold != self.trunk_hold {
            match hold {
                Some(hold) => tracing::warn!(reason = hold.reason(), "new calls held"),
                None => tracing::info!("the trunk takes new calls again"),
            }
            self.trunk_hold = hold;
        }

        let names: Vec<String> = self.running_campaigns_by_name().collect();
        let mut claims = Vec::with_capacity(names.len());
        for name in names {
            let Some(live) = self.live.get_mut(&name) else {
                continue;
            };
            // A campaign left wanting, or waiting for records, is due
            // whenever something is free: it may be entitled to it.
            // So is one whose store retry came due with nothing to dial:
            // that deadline is one of the dialer's timers, and a timer
            // handled without effect would fire again at once (the shell's
            // loop spun until the next pacing decision).
            let lease_retry_due =
                live.hopper.is_empty() && live.lease_not_before.is_some_and(|t| t <= now);
            let due = live.decide_now
                || live.next_decision.is_some_and(|t| t <= now)
                || lease_retry_due
                || ((live.unmet_demand > 0 || live.lease_pending) && can_start > 0);
            let mut claim = Claim {
                name,
                due,
                in_use: 0,
                ask: 0,
                ask_with_records: 0,
                wanted: 0,
                records_on_the_way: false,
            };
            if due {
                live.decide_now = false;
                let decision = live.pacer.decide(now);
                if decision.dial > 0 {
                    tracing::debug!(
                        campaign = claim.name,
                        dial = decision.dial,
                        reasoning = ?decision.reasoning,
                        "pacing decision"
                    );
                }
                live.next_decision = Some(now + decision.next_decision_within);
                live.last_decision = Some(decision);
                claim.ask = decision.dial;
                claim.ask_with_records = decision
                    .dial
                    .min(u32::try_from(live.hopper.len()).unwrap_or(u32::MAX));
                claim.wanted = decision.reasoning.wanted;
                claim.records_on_the_way = claim.ask_with_records < claim.ask && live.lease_pending;
            }
            claims.push(claim);
        }
        let grants = if claims.iter().any(|c| c.ask_with_records > 0) {
            self.count_calls_by_campaign(&mut claims);
            self.divide_among_campaigns(&claims, node_lines, can_start)
        } else {
            vec![0; claims.len()]
        };
        let cps_bound = free_starts < free_lines;
        for (claim, grant) in claims.iter().zip(grants) {
            if claim.due {
                self.settle_claim(claim, grant, free_lines, cps_bound, now);
            }
        }
        // Refused a call start: decide again when the window opens or the
        // trunk's hold lifts (a line that frees is an event of its own).
        let resume = [
            self.dial_rate.next_allowed_at(cps, now),
            self.trunk_health.next_change(now),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = resume {
            for claim in &claims {
                if let Some(live) = self.live.get_mut(&claim.name)
                    && live.unmet_demand > 0
                {
                    live.next_decision = Some(live.next_decision.map_or(at, |t| t.min(at)));
                }
            }
        }
    }

    /// Calls each claim may start now: max-min fair targets on the node's
    /// lines by holding plus demand, then what is free shared by those
    /// under their target, then what is still free by whoever wants more.
    fn divide_among_campaigns(
        &mut self,
        claims: &[Claim],
        node_lines: u32,
        can_start: u32,
    ) -> Vec<u32> {
        let rotate = self.fair_turn;
        self.fair_turn = self.fair_turn.wrapping_add(1);
        let demands: Vec<u32> = claims
            .iter()
            .map(|c| c.in_use.saturating_add(c.wanted.max(c.ask)))
            .collect();
        let targets = max_min_fair(node_lines, &demands, rotate);
        // Up to its target; a campaign whose records are on their way
        // claims its part too, and what it cannot use yet is kept for it.
        let under_target: Vec<u32> = claims
            .iter()
            .zip(&targets)
            .map(|(c, target)| {
                let ask = if c.records_on_the_way {
                    c.ask
                } else {
                    c.ask_with_records
                };
                ask.min(target.saturating_sub(c.in_use))
            })
            .collect();
        let mut grants = max_min_fair(can_start, &under_target, rotate);
        let mut kept = 0;
        for (grant, claim) in grants.iter_mut().zip(claims) {
            let usable = (*grant).min(claim.ask_with_records);
            kept += *grant - usable;
            *grant = usable;
        }
        // What is still free goes to whoever wants more.
        let left = can_start
            .saturating_sub(grants.iter().sum())
            .saturating_sub(kept);
        let more: Vec<u32> = claims
            .iter()
            .zip(&grants)
            .map(|(c, g)| {
                if c.records_on_the_way {
                    0
                } else {
                    c.ask_with_records - g
                }
            })
            .collect();
        for (grant, extra) in grants.iter_mut().zip(max_min_fair(left, &more, rotate)) {
            *grant += extra;
        }
        grants
    }

    /// Starts `grant` calls of the claim's campaign, keeps its hopper
    /// ahead, and notes what the trunk refused it.
    fn settle_claim(
        &mut self,
        claim: &Claim,
        grant: u32,
        free_lines: u32,
        cps_bound: bool,
        now: Instant,
    ) {
        let repeat_calls_cap = self.repeat_calls_cap(&claim.name);
        let Some(live) = self.live.get_mut(&claim.name) else {
            return;
        };
        let refused = claim.ask_with_records.saturating_sub(grant);
        if refused > 0
            && let Some(last) = live.last_decision.as_mut()
        {
            last.reasoning.limit = if cps_bound {
                Limit::CallsPerSecond
            } else {
                Limit::TrunkLines
            };
        }
        // The pacer's own trunk limits and the node's refusal; records the
        // hopper lacks are not the trunk's to give.
        live.unmet_demand = claim
            .wanted
            .saturating_sub(claim.ask)
            .saturating_add(refused);
        let dial = (grant as usize).min(live.hopper.len());
        let mut leases: Vec<_> = live.hopper.drain(..dial).collect();
        // Keep the hopper ahead of the pacer.
        let wanted = claim.ask.min(free_lines) as usize;
        let short = wanted.saturating_sub(dial) + HOPPER_SPARE.max(wanted);
        if !live.lease_pending
            && live.hopper.len() < short
            && live.lease_not_before.is_none_or(|t| t <= now)
        {
            live.lease_pending = true;
            live.lease_not_before = None;
            self.effects.push_back(Effect::Lease {
                campaign: claim.name.clone(),
                max: (short - live.hopper.len()).clamp(1, MAX_LEASE_BATCH),
                for_agent: None,
                skip_agent_required: live.agent_required.len() >= repeat_calls_cap,
            });
        }
        let agent_at_dial = self.reserves_agent_at_dial(&claim.name);
        for lease in leases.drain(..) {
            if agent_at_dial {
                self.dial_for_a_ready_agent(&claim.name, lease, now);
            } else {
                self.dial(&claim.name, lease, None, false, None, now);
            }
        }
    }

    /// Trunk lines a new customer call may take now (paced, previewed or a
    /// repeat call): the node's lines less those in use and the one kept
    /// for outside transfers.
    pub(super) fn trunk_lines_free_for_new_calls(&self) -> u32 {
        let node_lines = u32::try_from(self.trunk_max_calls()).unwrap_or(u32::MAX);
        let in_flight = u32::try_from(self.trunk_lines_in_use()).unwrap_or(u32::MAX);
        // (A node with a single line keeps none back: it would never dial.)
        let kept = if node_lines > 1 {
            self.lines_kept_for_transfers()
        } else {
            0
        };
        node_lines.saturating_sub(in_flight).saturating_sub(kept)
    }

    /// Fills in each claim's calls in flight, in one pass over the calls.
    fn count_calls_by_campaign(&self, claims: &mut [Claim]) {
        let index: std::collections::HashMap<&str, usize> = claims
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        let mut counts = vec![0u32; claims.len()];
        for call in self.calls.values() {
            if let Some(&i) = index.get(call.campaign.as_str()) {
                // An outside transfer's line is the campaign's too.
                let lines = 1 + u32::from(call.attempt.holds_outside_line());
                counts[i] = counts[i].saturating_add(lines);
            }
        }
        for (claim, count) in claims.iter_mut().zip(counts) {
            claim.in_use = count;
        }
    }

    /// The names of the running campaigns, in order.
    fn running_campaigns_by_name(&self) -> impl Iterator<Item = String> + '_ {
        self.live
            .keys()
            .filter(|name| {
                self.campaigns
                    .get(*name)
                    .is_some_and(|c| c.state == super::campaign_run::RunState::Running)
            })
            .cloned()
    }
}
