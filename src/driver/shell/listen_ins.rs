//! Supervisors listening in on agents (monitor, whisper, barge) from the
//! supervisor dashboard: the shell's side. The supervisor's browser is a
//! phone like an agent's ([`crate::net::browser_phone`]); once it is
//! connected, an RTP leg pointed at it joins the agent's media task, which
//! mixes the agent and the customer for it and, in whisper and barge, the
//! supervisor's voice into what the parties hear
//! ([`crate::media::listen_in`]).
//!
//! Listening in is on the agent, not on one call: it goes on across the
//! customers bridged to the agent's phone, and ends with that phone's leg
//! (logout, the phone hanging up), when the supervisor stops, or when the
//! supervisor's browser goes away.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::sync::{mpsc, oneshot};

use super::Shell;
use super::browser_phones::{PhoneStartRefused, StartedPhone};
use crate::driver::media::AgentCommand;
use crate::media::listen_in::ListenMode;
use crate::net::browser_phone::{BrowserPhoneCommand, BrowserPhoneEvent, BrowserPhoneHandle};
use crate::sdp::{Direction, Negotiated};

/// One supervisor listening in.
pub(super) struct ListenInEntry {
    agent: String,
    /// The agent's phone (its media task) when the supervisor asked: the
    /// one listened in on, not one the agent has by the time the
    /// supervisor's browser connects (a logout and login in between).
    agent_phone: mpsc::UnboundedSender<AgentCommand>,
    phone: BrowserPhoneHandle,
    mode: ListenMode,
    /// The agent's media task it is part of, once the supervisor's browser
    /// is connected.
    joined: Option<mpsc::UnboundedSender<AgentCommand>>,
}

/// The supervisors listening in, by session.
pub(super) type ListenIns = HashMap<u64, ListenInEntry>;

/// The dialer's answer to a supervisor's offer to listen in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenInAnswer {
    pub sdp: String,
    /// Names this listening in (to change its mode, or to end it).
    pub session: u64,
}

/// One supervisor listening in, as `GET /api/listen-ins` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListenInView {
    pub session: u64,
    pub agent: String,
    pub mode: ListenMode,
    /// The supervisor's browser is connected and hears the agent.
    pub hearing: bool,
}

/// Why the dialer refuses to let a supervisor listen in.
#[derive(Debug, thiserror::Error)]
pub enum ListenInRefused {
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error("agent `{0}` is simulated (load tests): there is no call to hear")]
    Simulated(String),
    #[error(
        "agent `{0}` has no phone call to listen in on (not logged in, or the phone is not up)"
    )]
    NoCall(String),
    #[error("a supervisor already listens in on agent `{0}` (session {1})")]
    AlreadyListened(String, u64),
    #[error(transparent)]
    Start(#[from] PhoneStartRefused),
}

impl Shell {
    /// A supervisor's browser offers (SDP) to listen in on `agent` in
    /// `mode`. The agent must have its phone up (its reservation call, or
    /// the browser phone's leg); one supervisor per agent at a time.
    pub fn listen_in_offer(
        &mut self,
        agent: &str,
        offer: &str,
        mode: ListenMode,
    ) -> Result<ListenInAnswer, ListenInRefused> {
        let Some(config) = self.config.agents.iter().find(|a| a.id == agent) else {
            return Err(ListenInRefused::UnknownAgent(agent.to_string()));
        };
        if config.simulated.is_some() {
            return Err(ListenInRefused::Simulated(agent.to_string()));
        }
        let Some(agent_phone) = self
            .agents
            .get(agent)
            .filter(|phone| phone.up)
            .map(|phone| phone.media.clone())
        else {
            return Err(ListenInRefused::NoCall(agent.to_string()));
        };
        if let Some((&session, _)) = self.listen_ins.iter().find(|(_, e)| e.agent == agent) {
            return Err(ListenInRefused::AlreadyListened(agent.to_string(), session));
        }
        let StartedPhone {
            session,
            handle: phone,
            answer: sdp,
        } = self.start_browser_side(agent, offer, self.listen_in_events.clone())?;
        tracing::info!(%agent, session, mode = mode.as_str(), "a supervisor listens in");
        self.listen_ins.insert(
            session,
            ListenInEntry {
                agent: agent.to_string(),
                agent_phone,
                phone,
                mode,
                joined: None,
            },
        );
        self.publish_listen_ins();
        Ok(ListenInAnswer { sdp, session })
    }

    /// Who hears the supervisor from now on. False: no such session.
    pub fn set_listen_mode(&mut self, session: u64, mode: ListenMode) -> bool {
        let Some(entry) = self.listen_ins.get_mut(&session) else {
            return false;
        };
        tracing::info!(agent = %entry.agent, session, mode = mode.as_str(), "listen-in mode");
        entry.mode = mode;
        if let Some(media) = &entry.joined {
            let _ = media.send(AgentCommand::ListenMode(mode));
        }
        true
    }

    /// The supervisor stops listening in. False: no such session.
    pub fn end_listen_in(&mut self, session: u64) -> bool {
        self.drop_listen_in(session, "the supervisor stopped listening")
    }

    pub fn listen_in_views(&self) -> Vec<ListenInView> {
        let mut views: Vec<ListenInView> = self
            .listen_ins
            .iter()
            .map(|(&session, entry)| ListenInView {
                session,
                agent: entry.agent.clone(),
                mode: entry.mode,
                hearing: entry.joined.is_some(),
            })
            .collect();
        views.sort_by(|a, b| a.agent.cmp(&b.agent));
        views
    }

    /// The supervisor's browser connected (the leg joins the agent's
    /// media), or went away.
    pub fn on_listen_in_phone(&mut self, event: BrowserPhoneEvent) {
        match event {
            BrowserPhoneEvent::Connected { agent, session } => self.join(&agent, session),
            BrowserPhoneEvent::Closed { session, why, .. } => {
                self.drop_listen_in(session, why);
            }
        }
    }

    fn join(&mut self, agent: &str, session: u64) {
        let Some(entry) = self.listen_ins.get(&session) else {
            return;
        };
        let still_up = self
            .agents
            .get(agent)
            .is_some_and(|phone| phone.up && phone.media.same_channel(&entry.agent_phone));
        if !still_up {
            self.drop_listen_in(session, "the agent's phone call ended");
            return;
        }
        let media = entry.agent_phone.clone();
        let leg = match self.open_leg() {
            Ok(leg) => leg,
            Err(error) => {
                tracing::warn!(%agent, %error, "no RTP port for a supervisor listening in");
                self.drop_listen_in(session, "no RTP port left");
                return;
            }
        };
        let leg_side = entry.phone.leg_side;
        let _ = leg.set_negotiated(Negotiated {
            remote: Some(leg_side),
            law: crate::media::g711::Law::Ulaw,
            payload_type: 0,
            telephone_event: None,
            ptime_ms: self.config.media.ptime_ms,
            direction: Direction::SendRecv,
        });
        // The leg sends from its port on the address it reaches the
        // browser phone's leg side by (as an agent's leg to its browser).
        let leg_address = SocketAddr::new(leg_side.ip(), leg.local_addr().port());
        let _ = entry
            .phone
            .commands
            .send(BrowserPhoneCommand::Leg(leg_address));
        let (ended, agent_gone) = oneshot::channel();
        let mode = entry.mode;
        // Before the leg's ports go back to the pool (they may carry a
        // customer next), the supervisor's phone stops sending there.
        let on_end = {
            let phone = entry.phone.commands.clone();
            crate::net::rtp::OnEnd::new(move || {
                let _ = phone.send(BrowserPhoneCommand::NoLeg);
            })
        };
        let listen = AgentCommand::ListenIn {
            on_end,
            leg,
            mode,
            ended,
        };
        if media.send(listen).is_err() {
            self.drop_listen_in(session, "the agent's phone call ended");
            return;
        }
        // The agent's leg ends (logout, the phone hung up): so does the
        // listening in, and the supervisor's browser is told by its close.
        let phone = entry.phone.commands.clone();
        tokio::spawn(async move {
            let _ = agent_gone.await;
            let _ = phone.send(BrowserPhoneCommand::Close("the agent's phone call ended"));
        });
        if let Some(entry) = self.listen_ins.get_mut(&session) {
            entry.joined = Some(media);
        }
        self.publish_listen_ins();
        tracing::info!(%agent, session, "the supervisor hears the agent");
    }

    /// A customer is about to be connected to `agent`: a supervisor who
    /// barged in on the call before goes back to whispering — the next
    /// customer never hears a stranger without the supervisor choosing so.
    pub(super) fn before_connecting(&mut self, agent: &str) {
        let barging = self
            .listen_ins
            .iter()
            .find(|(_, entry)| entry.agent == agent && entry.mode == ListenMode::Barge)
            .map(|(&session, _)| session);
        if let Some(session) = barging {
            tracing::info!(%agent, session, "a new customer: the supervisor whispers now");
            self.set_listen_mode(session, ListenMode::Whisper);
        }
    }

    fn drop_listen_in(&mut self, session: u64, why: &'static str) -> bool {
        let Some(entry) = self.listen_ins.remove(&session) else {
            return false;
        };
        tracing::info!(agent = %entry.agent, session, why, "listening in ended");
        if let Some(media) = entry.joined {
            let _ = media.send(AgentCommand::EndListenIn);
        }
        let _ = entry.phone.commands.send(BrowserPhoneCommand::Close(why));
        self.publish_listen_ins();
        true
    }

    fn publish_listen_ins(&self) {
        let hearing = self
            .listen_ins
            .values()
            .filter(|e| e.joined.is_some())
            .count();
        metrics::gauge!(crate::metrics::LISTEN_INS).set(hearing as f64);
    }
}
