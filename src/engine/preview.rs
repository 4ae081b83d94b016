//! Preview and push preview (SPEC §2): the agent sees a record before
//! anything is dialed. No pacing: one record per agent.
//!
//! - **Preview**: a Ready agent asks for a record ([`PreviewAction::Next`])
//!   and then presses Call, Skip (next record), Decline (back to the list),
//!   Do not call (removed, number on the campaign's DNC list), Remove (never
//!   called again) or Stop (back to the list, agent Not ready).
//! - **Push preview**: the engine pushes a record to every Ready agent of
//!   the campaign; Accept dials, Decline/Reject puts the record back at the
//!   **top** of the list, and so does no action within the campaign's
//!   `preview_timeout_s` (or, per campaign, the timeout accepts or removes).
//!
//! **Personal callbacks**, in every mode: the store hands an agent's due
//! personal callbacks out only to a lease asked for that agent, so every
//! [`PERSONAL_CALLBACK_POLL`] each Ready agent's are asked for, and one that
//! arrives is pushed to its agent as a preview (in a progressive or
//! predictive campaign too: it must reach that agent, never a random one),
//! with the campaign's preview timeout or [`PERSONAL_CALLBACK_TIMEOUT`].
//!
//! A called record is dialed with its agent already reserved, and the call
//! goes to that agent at the answer ("connect first"): the agent hears the
//! callee from the first word and judges a machine by ear (and may leave a
//! voicemail by hand); the analyser still listens and ends fax and SIT
//! calls. A failed call (busy, no answer) frees the agent for the next
//! record without a wrap-up.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::dialer::{CommandError, Dialer, Event};
use crate::agent::AgentState;
use crate::config::{DialMode, PreviewTimeoutAction};
use crate::store::{Lease, Release};

/// What an agent does with the record on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewAction {
    /// Show me a record (preview mode; push preview pushes by itself).
    Next,
    /// Dial it (push preview's Accept).
    Call,
    /// Give it back and show the next one.
    Skip,
    /// Not now: back to the list (push preview: to its top).
    Decline,
    /// Remove it and put the number on the campaign's do-not-call list.
    DoNotCall,
    /// Never call this record again.
    Remove,
    /// Give it back and stop receiving records (agent Not ready).
    Stop,
    /// Give it back and leave the campaign (until joining it again).
    Leave,
}

impl PreviewAction {
    pub fn parse(text: &str) -> Option<PreviewAction> {
        Some(match text {
            "next" => PreviewAction::Next,
            "call" | "accept" => PreviewAction::Call,
            "skip" => PreviewAction::Skip,
            "decline" | "reject" => PreviewAction::Decline,
            "dnc" | "do-not-call" => PreviewAction::DoNotCall,
            "remove" => PreviewAction::Remove,
            "stop" => PreviewAction::Stop,
            "leave" => PreviewAction::Leave,
            _ => return None,
        })
    }
}

/// How often each Ready agent's due personal callbacks are asked for.
pub const PERSONAL_CALLBACK_POLL: Duration = Duration::from_secs(20);
/// A personal callback whose agent was not Ready within this long goes
/// back to the store (it is asked for again at the agent's next poll).
pub const PERSONAL_CALLBACK_HOLD: Duration = Duration::from_secs(60);
/// Time on screen for a personal callback when the campaign sets no
/// preview timeout (the dialing modes).
pub const PERSONAL_CALLBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the agent says Not ready after Stop.
pub const REASON_PREVIEW_STOPPED: &str = "preview stopped";

/// A record on an agent's screen.
#[derive(Debug, Clone)]
pub(super) struct Preview {
    pub lease: Lease,
    /// Pushed by the engine (push preview) rather than asked for.
    pub pushed: bool,
    /// When the campaign's timeout action applies.
    pub deadline: Option<Instant>,
}

/// A previewed record as the agent's desktop shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewView {
    pub campaign: String,
    pub record: String,
    pub name: String,
    pub phone: String,
    /// The list's extra columns, as imported (a JSON object).
    pub custom: serde_json::Value,
    /// Dials of this record before.
    pub attempts: u32,
    /// A scheduled callback's delivery.
    pub callback: bool,
    /// A personal callback (this agent's own).
    pub personal_callback: bool,
    /// The number was abandoned, or taken for a machine, lately (Ofcom's
    /// repeat-call rule): the person may have been hung up on before.
    pub repeat_call: bool,
    /// The contact's IANA time zones (the desktop shows the local time).
    pub time_zones: Vec<String>,
    pub pushed: bool,
    /// Time left before the campaign's timeout action, if it has one.
    pub remaining_ms: Option<u64>,
    /// The actions the campaign allows.
    pub can_skip: bool,
    pub can_remove: bool,
    /// Caller IDs the agent may pick for this call (the first is the
    /// campaign's own when it has one); empty: no choice.
    pub caller_ids: Vec<String>,
}

impl Dialer {
    /// `agent` acts on the preview modes' record.
    pub(super) fn preview_command(
        &mut self,
        agent: &str,
        action: PreviewAction,
        caller_id: Option<String>,
        now: Instant,
    ) -> Result<(), CommandError> {
        if !self.agents.contains_key(agent) {
            return Err(CommandError::UnknownAgent(agent.to_string()));
        }
        if action == PreviewAction::Next {
            return self.preview_next(agent, now);
        }
        let Some(campaign) = self.preview_campaign_of(agent) else {
            return Err(CommandError::Unavailable(format!(
                "agent `{agent}` has no record on screen; ask for one first"
            )));
        };
        let mode = self.campaigns.get(&campaign).map(|c| c.mode);
        let (allow_skip, allow_remove) = self
            .campaigns
            .get(&campaign)
            .map(|c| (c.config.preview_allow_skip, c.config.preview_allow_remove))
            .unwrap_or((true, true));
        match action {
            PreviewAction::Next => Ok(()),
            PreviewAction::Call => self.preview_call(&campaign, agent, caller_id, now),
            PreviewAction::Skip if !allow_skip => Err(CommandError::Unavailable(format!(
                "campaign `{campaign}` does not allow skipping records"
            ))),
            PreviewAction::Remove if !allow_remove => Err(CommandError::Unavailable(format!(
                "campaign `{campaign}` does not allow removing records"
            ))),
            PreviewAction::Skip => {
                let how = back_to_the_list(mode);
                self.end_preview(&campaign, agent, how, "skipped", now);
                if mode == Some(DialMode::Preview) {
                    // "Skip (next record)"; an empty list just leaves the
                    // agent Ready.
                    let _ = self.preview_next(agent, now);
                }
                Ok(())
            }
            PreviewAction::Decline => {
                let how = back_to_the_list(mode);
                self.end_preview(&campaign, agent, how, "declined", now);
                Ok(())
            }
            PreviewAction::DoNotCall => {
                self.end_preview(&campaign, agent, Release::DoNotCall, "do_not_call", now);
                Ok(())
            }
            PreviewAction::Remove => {
                self.end_preview(&campaign, agent, Release::Removed, "removed", now);
                Ok(())
            }
            PreviewAction::Stop => {
                self.take_preview(&campaign, agent, Release::Unused, "stopped");
                if let Some(entry) = self.agents.get_mut(agent) {
                    entry.session.not_ready(REASON_PREVIEW_STOPPED, now)?;
                }
                Ok(())
            }
            PreviewAction::Leave => self.leave_campaign(agent, &campaign, now),
        }
    }

    /// `agent` leaves `campaign` for this login: a record of it on screen
    /// goes back to the list (unchanged place), the campaign's pacer stops
    /// counting the agent, and Join brings the agent back.
    pub(super) fn leave_campaign(
        &mut self,
        agent: &str,
        campaign: &str,
        now: Instant,
    ) -> Result<(), CommandError> {
        if !self.campaigns.contains_key(campaign) {
            return Err(CommandError::UnknownCampaign(campaign.to_string()));
        }
        let entry = self
            .agents
            .get(agent)
            .ok_or_else(|| CommandError::UnknownAgent(agent.to_string()))?;
        if !entry.campaigns.iter().any(|c| c == campaign) {
            return Err(CommandError::Unavailable(format!(
                "agent `{agent}` is not assigned to campaign `{campaign}`"
            )));
        }
        if matches!(entry.session.state(), AgentState::LoggedOut) {
            return Err(CommandError::Unavailable(
                "log in before leaving a campaign".into(),
            ));
        }
        if self.preview_campaign_of(agent).as_deref() == Some(campaign) {
            self.end_preview(campaign, agent, Release::Unused, "left", now);
        }
        if let Some(entry) = self.agents.get_mut(agent) {
            entry.joined.remove(campaign);
            entry.left.insert(campaign.to_string());
        }
        self.agent_changed(agent, now);
        self.share_agents(now);
        Ok(())
    }

    /// The running preview-mode campaign holding `agent`'s record.
    pub(super) fn preview_campaign_of(&self, agent: &str) -> Option<String> {
        self.live
            .iter()
            .find(|(_, live)| live.previews.contains_key(agent))
            .map(|(name, _)| name.clone())
    }

    /// The record on `agent`'s screen, if any.
    pub fn preview_view(&self, agent: &str, now: Instant) -> Option<PreviewView> {
        let campaign = self.preview_campaign_of(agent)?;
        let preview = self.live.get(&campaign)?.previews.get(agent)?;
        let config = &self.campaigns.get(&campaign)?.config;
        Some(view(&campaign, preview, config, now))
    }

    /// Preview mode's "get record": the next record of the agent's first
    /// running preview campaign that has one.
    fn preview_next(&mut self, agent: &str, now: Instant) -> Result<(), CommandError> {
        let Some(entry) = self.agents.get(agent) else {
            return Err(CommandError::UnknownAgent(agent.to_string()));
        };
        if entry.session.state() != &AgentState::Ready {
            return Err(CommandError::Agent(crate::agent::AgentError::WrongState {
                action: "preview a record",
                state: entry.session.state().name(),
                needs: "ready",
            }));
        }
        let campaigns: Vec<String> = entry
            .campaigns
            .iter()
            .filter(|name| {
                self.takes_part(entry, name)
                    && self.campaigns.get(*name).is_some_and(|c| {
                        matches!(c.mode, DialMode::Preview | DialMode::PushPreview)
                            && c.state == super::campaign_run::RunState::Running
                    })
            })
            .cloned()
            .collect();
        if campaigns.is_empty() {
            return Err(CommandError::Unavailable(format!(
                "agent `{agent}` has no running preview campaign"
            )));
        }
        for campaign in &campaigns {
            let Some(live) = self.live.get_mut(campaign) else {
                continue;
            };
            // Whatever happens, keep the hopper filling.
            live.decide_now = true;
            if let Some(lease) = live.hopper.pop_front() {
                return self.show_preview(campaign, agent, lease, false, now);
            }
        }
        Err(CommandError::Unavailable(
            "no record to preview right now (the list is empty, outside its calling hours, \
             or still loading); try again in a few seconds"
                .into(),
        ))
    }

    fn show_preview(
        &mut self,
        campaign: &str,
        agent: &str,
        lease: Lease,
        pushed: bool,
        now: Instant,
    ) -> Result<(), CommandError> {
        let Some(entry) = self.agents.get_mut(agent) else {
            return Err(CommandError::UnknownAgent(agent.to_string()));
        };
        let Some(campaign_entry) = self.campaigns.get(campaign) else {
            return Err(CommandError::UnknownCampaign(campaign.to_string()));
        };
        let Some(live) = self.live.get_mut(campaign) else {
            return Err(CommandError::UnknownCampaign(campaign.to_string()));
        };
        let personal = lease.callback_agent.is_some();
        if let Err(error) = entry.session.preview(now) {
            if personal {
                live.personal.push_front((lease, now));
            } else {
                live.hopper.push_front(lease);
            }
            return Err(error.into());
        }
        let timeout = campaign_entry
            .config
            .preview_timeout()
            .or(personal.then_some(PERSONAL_CALLBACK_TIMEOUT));
        let preview = Preview {
            lease,
            pushed,
            deadline: timeout.map(|d| now + d),
        };
        let shown = view(campaign, &preview, &campaign_entry.config, now);
        live.previews.insert(agent.to_string(), preview);
        self.events.push_back(Event::Preview {
            agent: agent.to_string(),
            preview: shown,
        });
        Ok(())
    }

    /// Removes `agent`'s record from the screen and gives its lease back.
    fn take_preview(
        &mut self,
        campaign: &str,
        agent: &str,
        how: Release,
        ended: &'static str,
    ) -> Option<Lease> {
        let preview = self.live.get_mut(campaign)?.previews.remove(agent)?;
        self.events.push_back(Event::PreviewEnded {
            agent: agent.to_string(),
            campaign: campaign.to_string(),
            record: preview.lease.external_id.clone(),
            how: ended,
        });
        if ended != "called" && ended != "postponed" {
            self.effects.push_back(super::io::Effect::ReleaseLeases {
                leases: vec![preview.lease.clone()],
                how,
            });
        }
        Some(preview.lease)
    }

    /// Postpone: a callback for the record on `agent`'s screen at the
    /// time the customer asked for; the record leaves the screen and is
    /// due again then (the shell schedules, then gives the lease back).
    pub(super) fn postpone_preview(
        &mut self,
        agent: &str,
        callback: super::dialer::CallbackAt,
        now: Instant,
    ) -> Result<(), CommandError> {
        if !self.agents.contains_key(agent) {
            return Err(CommandError::UnknownAgent(agent.to_string()));
        }
        let Some(campaign) = self.preview_campaign_of(agent) else {
            return Err(CommandError::Unavailable(format!(
                "agent `{agent}` has no record on screen to call back later"
            )));
        };
        let phone = self.callback_phone(Some(&campaign), callback.phone.as_deref())?;
        let Some(lease) = self.take_preview(&campaign, agent, Release::Unused, "postponed") else {
            return Ok(());
        };
        if let Some(entry) = self.agents.get_mut(agent) {
            let _ = entry.session.preview_over(now);
        }
        self.effects.push_back(super::io::Effect::Postpone {
            lease: Box::new(lease),
            callback: super::io::Callback {
                at: callback.at,
                agent: callback.personal.then(|| agent.to_string()),
                phone,
            },
        });
        Ok(())
    }

    /// Gives the record back as `how` says; the agent is Ready again.
    fn end_preview(
        &mut self,
        campaign: &str,
        agent: &str,
        how: Release,
        ended: &'static str,
        now: Instant,
    ) {
        self.take_preview(campaign, agent, how, ended);
        if let Some(entry) = self.agents.get_mut(agent) {
            let _ = entry.session.preview_over(now);
        }
    }

    /// Call (Accept): dial the record with its agent already reserved.
    fn preview_call(
        &mut self,
        campaign: &str,
        agent: &str,
        caller_id: Option<String>,
        now: Instant,
    ) -> Result<(), CommandError> {
        if let Some(picked) = &caller_id {
            let config = self.campaigns.get(campaign).map(|c| &c.config);
            if !config.is_some_and(|c| c.allows_caller_id(picked)) {
                let allowed = config.map(|c| c.caller_ids.join(", ")).unwrap_or_default();
                return Err(CommandError::Invalid(format!(
                    "caller ID `{picked}` is not allowed in campaign `{campaign}` (allowed: {})",
                    if allowed.is_empty() {
                        "none"
                    } else {
                        allowed.as_str()
                    }
                )));
            }
        }
        if let Some(reason) = self.new_call_refused(now) {
            return Err(CommandError::Unavailable(format!(
                "{reason}; press Call again in a moment"
            )));
        }
        let Some(lease) = self.take_preview(campaign, agent, Release::Unused, "called") else {
            return Ok(());
        };
        // "Direct preview" connects the agent at the answer (a per-call
        // phone is rung with the customer); "standard" lets the analyser
        // decide first — but never for a repeat call, whose person must
        // not be taken for a machine and hung up on again.
        let direct = lease.agent_required
            || self
                .campaigns
                .get(campaign)
                .is_none_or(|c| c.config.preview_variant == crate::config::PreviewVariant::Direct);
        self.dial_with_agent(campaign, lease, agent, direct, caller_id, now)?;
        Ok(())
    }

    /// An agent who left Previewing by other means (Not ready, logout, a
    /// dropped phone): the record goes back as it was.
    pub(super) fn agent_left_preview(&mut self, agent: &str) {
        if let Some(campaign) = self.preview_campaign_of(agent) {
            self.take_preview(&campaign, agent, Release::Unused, "withdrawn");
        }
    }

    /// The campaign paused or stopped: records on screen go back.
    pub(super) fn end_previews(&mut self, campaign: &str, now: Instant) {
        let agents: Vec<String> = self
            .live
            .get(campaign)
            .map(|live| live.previews.keys().cloned().collect())
            .unwrap_or_default();
        for agent in agents {
            self.end_preview(campaign, &agent, Release::Unused, "withdrawn", now);
        }
    }

    /// Push preview: every Ready agent of `campaign` gets a record (the
    /// longest idle first); simulated agents accept at once.
    pub(super) fn push_previews(&mut self, campaign: &str, now: Instant) {
        self.retry_simulated_accepts(campaign, now);
        let mut ready: Vec<(Duration, String)> = self
            .agents
            .iter()
            .filter(|(_, a)| {
                // A shared agent takes pushes only from the campaign that
                // counts it.
                a.session.is_ready() && self.takes_part(a, campaign) && Self::counts(a, campaign)
            })
            .map(|(id, a)| (a.session.time_in_state(now), id.clone()))
            .collect();
        ready.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, agent) in ready {
            let Some(live) = self.live.get_mut(campaign) else {
                return;
            };
            let Some(lease) = live.hopper.pop_front() else {
                live.decide_now = true;
                return;
            };
            live.decide_now = true;
            if self
                .show_preview(campaign, &agent, lease, true, now)
                .is_err()
            {
                continue;
            }
            let simulated = self
                .agents
                .get(&agent)
                .is_some_and(|a| a.simulated.is_some());
            if simulated && let Err(error) = self.preview_call(campaign, &agent, None, now) {
                tracing::debug!(%agent, %error, "simulated agent cannot accept its preview yet");
            }
        }
    }

    /// Simulated agents whose record is still on screen (the trunk had no
    /// line or call start for it) accept it again.
    fn retry_simulated_accepts(&mut self, campaign: &str, now: Instant) {
        let Some(live) = self.live.get(campaign) else {
            return;
        };
        let waiting: Vec<String> = live
            .previews
            .keys()
            .filter(|agent| {
                self.agents
                    .get(*agent)
                    .is_some_and(|a| a.simulated.is_some())
            })
            .cloned()
            .collect();
        for agent in waiting {
            if self.preview_call(campaign, &agent, None, now).is_err() {
                // The trunk is still full: the others would fail alike.
                break;
            }
        }
    }

    /// Asks the store for the due personal callbacks of `campaign`'s Ready
    /// agents, every [`PERSONAL_CALLBACK_POLL`].
    pub(super) fn poll_personal_callbacks(&mut self, campaign: &str, now: Instant) {
        let ready: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, a)| a.session.is_ready() && self.takes_part(a, campaign))
            .map(|(id, _)| id.clone())
            .collect();
        let Some(live) = self.live.get_mut(campaign) else {
            return;
        };
        if now < live.personal_poll_at {
            return;
        }
        live.personal_poll_at = now + PERSONAL_CALLBACK_POLL;
        // An answer still missing after a whole period is not waited for
        // (at most one request per agent per period either way).
        live.personal_pending.clear();
        for agent in ready {
            if live.personal_pending.insert(agent.clone()) {
                // Personal callbacks only (`LeaseRequest::personal_only`):
                // the poll must not pull ordinary records into the hopper.
                self.effects.push_back(super::io::Effect::Lease {
                    campaign: campaign.to_string(),
                    max: 3,
                    for_agent: Some(agent),
                    skip_agent_required: false,
                });
            }
        }
    }

    /// Shows each waiting personal callback to its agent once Ready; gives
    /// back those whose agent stayed away.
    pub(super) fn deliver_personal_callbacks(&mut self, campaign: &str, now: Instant) {
        let Some(live) = self.live.get_mut(campaign) else {
            return;
        };
        if live.personal.is_empty() {
            return;
        }
        let waiting: Vec<(Lease, Instant)> = live.personal.drain(..).collect();
        for (lease, since) in waiting {
            let agent = lease.callback_agent.clone().unwrap_or_default();
            let ready = self
                .agents
                .get(&agent)
                .is_some_and(|a| a.session.is_ready() && self.takes_part(a, campaign));
            if ready {
                let record = lease.external_id.clone();
                if self
                    .show_preview(campaign, &agent, lease, true, now)
                    .is_err()
                {
                    continue;
                }
                tracing::info!(%agent, campaign, %record, "personal callback shown to its agent");
                let simulated = self
                    .agents
                    .get(&agent)
                    .is_some_and(|a| a.simulated.is_some());
                if simulated {
                    let _ = self.preview_call(campaign, &agent, None, now);
                }
            } else if now.saturating_duration_since(since) >= PERSONAL_CALLBACK_HOLD {
                self.effects.push_back(super::io::Effect::ReleaseLeases {
                    leases: vec![lease],
                    how: Release::Unused,
                });
            } else if let Some(live) = self.live.get_mut(campaign) {
                live.personal.push_back((lease, since));
            }
        }
    }

    /// Applies the campaigns' timeout action to records left on screen.
    pub(super) fn previews_timeout(&mut self, now: Instant) {
        let mut due: Vec<(String, String)> = Vec::new();
        for (name, live) in &self.live {
            for (agent, preview) in &live.previews {
                if preview.deadline.is_some_and(|t| t <= now) {
                    due.push((name.clone(), agent.clone()));
                }
            }
        }
        for (campaign, agent) in due {
            let (action, mode) = match self.campaigns.get(&campaign) {
                Some(c) => (c.config.preview_timeout_action, c.mode),
                None => continue,
            };
            match action {
                PreviewTimeoutAction::Accept
                    if self.preview_call(&campaign, &agent, None, now).is_ok() => {}
                PreviewTimeoutAction::Remove => {
                    self.end_preview(&campaign, &agent, Release::Removed, "timed_out", now)
                }
                // Skip, or an Accept the trunk had no line for.
                _ => self.end_preview(
                    &campaign,
                    &agent,
                    back_to_the_list(Some(mode)),
                    "timed_out",
                    now,
                ),
            }
        }
    }

    pub(super) fn previews_poll_timeout(&self) -> Option<Instant> {
        self.live
            .values()
            .flat_map(|live| live.previews.values().filter_map(|p| p.deadline))
            .min()
    }
}

/// Push preview puts a declined record back at the top of the list (SPEC
/// §2); preview gives it back where it was.
fn back_to_the_list(mode: Option<DialMode>) -> Release {
    if mode == Some(DialMode::PushPreview) {
        Release::Declined
    } else {
        Release::Unused
    }
}

fn view(
    campaign: &str,
    preview: &Preview,
    config: &crate::config::CampaignConfig,
    now: Instant,
) -> PreviewView {
    let lease = &preview.lease;
    PreviewView {
        campaign: campaign.to_string(),
        record: lease.external_id.clone(),
        name: lease.name.clone(),
        phone: lease.phone.clone(),
        custom: serde_json::from_str(&lease.custom_json).unwrap_or(serde_json::Value::Null),
        attempts: lease.attempts,
        time_zones: lease
            .time_zones
            .split_whitespace()
            .map(String::from)
            .collect(),
        callback: lease.callback.is_some(),
        personal_callback: lease.callback_agent.is_some(),
        repeat_call: lease.agent_required,
        pushed: preview.pushed,
        remaining_ms: preview
            .deadline
            .map(|t| t.saturating_duration_since(now).as_millis() as u64),
        can_skip: config.preview_allow_skip,
        can_remove: config.preview_allow_remove,
        caller_ids: if config.caller_ids.is_empty() {
            Vec::new()
        } else {
            config
                .caller_id
                .iter()
                .chain(
                    config
                        .caller_ids
                        .iter()
                        .filter(|c| Some(*c) != config.caller_id.as_ref()),
                )
                .cloned()
                .collect()
        },
    }
}
