//! The shell's side of a transfer to an outside number
//! (`engine::outside_transfer`): the outside line is a second call
//! through the trunk, with a fresh RTP leg served by an agent-phone task
//! (`driver::media::agent_phone`) — the customer is spliced into it as
//! into an agent's leg, and the dialer relays the two.

use tokio::sync::mpsc;

use super::{Party, Shell};
use crate::driver::media::{AgentCommand, agent_phone};
use crate::engine::attempt::outside_party;
use crate::engine::io::{CallId, Input};
use crate::media::tones::ZipTone;
use crate::sip::endpoint::CallHandle;
use crate::sip::endpoint::Event as SipEvent;
use crate::sip::outcome::Outcome as SipOutcome;

/// One call's outside line.
pub(super) struct OutsideLine {
    pub number: String,
    /// Which of the call's outside lines (the engine's count).
    pub line: u32,
    pub handle: Option<CallHandle>,
    pub media: mpsc::UnboundedSender<AgentCommand>,
    pub answered: bool,
}

/// What the outside party hears as the customer comes through: nothing
/// (a zip tone is the agent's cue; the splice still wants one, and a
/// frame at −80 dBm0 is inaudible).
fn silent_splice() -> ZipTone {
    ZipTone {
        frequency_hz: 440.0,
        duration_ms: 20,
        level_dbm0: -80.0,
    }
}

impl Shell {
    /// `Effect::DialOutside`: INVITE `number` through the trunk for
    /// `call`'s transfer, presenting the caller ID the customer saw.
    pub(super) async fn dial_outside(
        &mut self,
        call: CallId,
        number: String,
        line: u32,
    ) -> Vec<Input> {
        let ended = |why: String| {
            tracing::warn!(call, %why, "the outside number of a transfer could not be called");
            vec![Input::OutsideEnded { call, line, why }]
        };
        let Some(customer) = self.customers.get(&call) else {
            return ended("the call is over".into());
        };
        let caller_id = customer
            .caller_id
            .clone()
            .unwrap_or_else(|| self.config.trunk.caller_id.clone());
        let route = match self.trunk_route(&number) {
            Ok(route) => route,
            Err(error) => return ended(format!("{error:#}")),
        };
        let leg = match self.open_leg() {
            Ok(leg) => leg,
            Err(error) => return ended(format!("no media for the outside line: {error}")),
        };
        let offer = self.offer_for(&leg);
        let sdp = offer.to_string().into_bytes();
        let (media, commands) = mpsc::unbounded_channel();
        tokio::spawn(agent_phone(
            outside_party(&number),
            leg,
            Some(offer),
            silent_splice(),
            commands,
        ));
        let request = self.invite(route, caller_id, sdp);
        let handle = self
            .sip
            .call(move |endpoint, now| endpoint.invite(request, now))
            .await;
        let handle = match handle {
            Some(Ok(handle)) => handle,
            Some(Err(error)) => {
                let _ = media.send(AgentCommand::Close);
                return ended(format!("the INVITE could not be sent: {error}"));
            }
            None => {
                let _ = media.send(AgentCommand::Close);
                return ended("the SIP driver stopped".into());
            }
        };
        self.parties.insert(handle, Party::Outside(call));
        // A line left from an earlier transfer of the call is ended first.
        if let Some(earlier) = self.outside_lines.insert(
            call,
            OutsideLine {
                number,
                line,
                handle: Some(handle),
                media,
                answered: false,
            },
        ) {
            self.end_outside_line(earlier).await;
        }
        Vec::new()
    }

    /// `Effect::HangUpOutside` (`line`), and the call's end (`None`: any):
    /// the outside line of `call` is cancelled or hung up and its media
    /// closed.
    pub(super) async fn hang_up_outside(&mut self, call: CallId, line: Option<u32>) {
        let current = self.outside_lines.get(&call).map(|l| l.line);
        if current.is_some()
            && (line.is_none() || line == current)
            && let Some(outside) = self.outside_lines.remove(&call)
        {
            self.end_outside_line(outside).await;
        }
    }

    async fn end_outside_line(&mut self, line: OutsideLine) {
        let _ = line.media.send(AgentCommand::Close);
        self.hang_up(line.handle).await;
    }

    /// The media task of `call`'s outside line, when `party` names it (a
    /// splice of the customer into it).
    pub(super) fn outside_media(
        &self,
        call: CallId,
        party: &str,
    ) -> Option<mpsc::UnboundedSender<AgentCommand>> {
        self.outside_lines
            .get(&call)
            .filter(|line| line.answered && outside_party(&line.number) == party)
            .map(|line| line.media.clone())
    }

    /// Whether `party` names an outside line rather than an agent.
    pub(super) fn is_outside_party(party: &str) -> bool {
        party.starts_with(&outside_party(""))
    }

    pub(super) fn on_outside_event(
        &mut self,
        call: CallId,
        handle: CallHandle,
        event: SipEvent,
    ) -> Vec<Input> {
        let Some(line) = self
            .outside_lines
            .get_mut(&call)
            .filter(|line| line.handle == Some(handle))
        else {
            // Ended by us already (its BYE's answer, a crossing 200 that
            // the endpoint hangs up itself).
            if matches!(event, SipEvent::Ended { .. }) {
                self.parties.remove(&handle);
            }
            return Vec::new();
        };
        match event {
            SipEvent::Answered { sdp, .. } => {
                line.answered = true;
                let _ = line.media.send(AgentCommand::Negotiated(sdp));
                tracing::info!(call, number = %line.number, "the outside number answered");
                vec![Input::OutsideAnswered {
                    call,
                    line: line.line,
                }]
            }
            SipEvent::MediaChanged { media, .. } => {
                let _ = line.media.send(AgentCommand::Renegotiated(media));
                Vec::new()
            }
            SipEvent::Ended { end, .. } => {
                self.parties.remove(&handle);
                let Some(line) = self.outside_lines.remove(&call) else {
                    return Vec::new();
                };
                let _ = line.media.send(AgentCommand::Close);
                let why = if line.answered {
                    "the outside number hung up".to_string()
                } else {
                    let what = match end.outcome {
                        SipOutcome::Busy => "is busy",
                        SipOutcome::NoAnswer | SipOutcome::Cancelled => "did not answer",
                        SipOutcome::InvalidNumber => "is not a valid number",
                        SipOutcome::Rejected => "refused the call",
                        SipOutcome::Congestion => "could not be reached (congestion)",
                        SipOutcome::NetworkFailure | SipOutcome::Failed | SipOutcome::Answered => {
                            "could not be reached"
                        }
                    };
                    match end.sip_code {
                        Some(code) => format!("the outside number {what} ({code})"),
                        None => format!("the outside number {what}"),
                    }
                };
                vec![Input::OutsideEnded {
                    call,
                    line: line.line,
                    why,
                }]
            }
            SipEvent::Progress { .. }
            | SipEvent::PingResult { .. }
            | SipEvent::Registration(_)
            | SipEvent::TrunkRegistration { .. } => Vec::new(),
        }
    }
}
