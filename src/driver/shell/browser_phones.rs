//! Agents' phones in the web desktop (WebRTC): the shell's side. A browser
//! offers its phone through the API; once ICE and DTLS are up it is the
//! agent's phone like a softphone that registered, and the agent's
//! reservation call (or each per-call ring) is an ordinary RTP leg pointed
//! at it — answered at once, as the browser has nothing to ring.

use std::net::SocketAddr;

use super::Shell;
use crate::driver::media::AgentCommand;
use crate::engine::io::Input;
use crate::net::browser_phone::{self, BrowserPhoneCommand, BrowserPhoneEvent, BrowserPhoneHandle};

/// One agent's browser phone.
pub(super) struct BrowserPhoneEntry {
    handle: BrowserPhoneHandle,
    connected: bool,
}

/// The dialer's answer to a browser's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserPhoneAnswer {
    pub sdp: String,
    /// Names this browser phone (to close it, or to replace it from the
    /// same tab after a reload).
    pub session: u64,
    /// A softphone holds the agent's reservation call: the browser phone
    /// takes the next one (the softphone's call is never cut, a customer
    /// may be on it).
    pub softphone_has_the_call: bool,
}

/// Why the dialer refuses a browser's phone.
#[derive(Debug, thiserror::Error)]
pub enum BrowserPhoneRefused {
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error("agent `{0}` is simulated (load tests): it has no phone")]
    Simulated(String),
    #[error("another browser is agent `{0}`'s phone now")]
    TakenOver(String),
    #[error(transparent)]
    Start(#[from] PhoneStartRefused),
}

/// Why the dialer's side of a browser's phone (an agent's, or a
/// supervisor's listening in) cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PhoneStartRefused {
    #[error(
        "browsers cannot reach the dialer at {0}: set [rtp] public_ip to the address they reach it at"
    )]
    NoAddress(std::net::IpAddr),
    #[error(transparent)]
    Start(#[from] browser_phone::StartError),
}

/// A browser's phone started: its session, handle and SDP answer.
pub(super) struct StartedPhone {
    pub session: u64,
    pub handle: BrowserPhoneHandle,
    pub answer: String,
}

impl Shell {
    /// The desktop of `agent` offers its browser as the agent's phone:
    /// answers the offer (SDP) and replaces any browser phone the agent
    /// had (a reloaded page).
    ///
    /// `reconnect`: the desktop connects again by itself (its connection
    /// was lost) — refused while another browser is the agent's phone, so
    /// two desktops of one agent do not take the phone from each other in
    /// turn; the agent's own click takes it over. `replaces`: the session
    /// this desktop had (a reload), which a reconnect may replace.
    pub fn browser_phone_offer(
        &mut self,
        agent: &str,
        offer: &str,
        reconnect: bool,
        replaces: Option<u64>,
    ) -> Result<BrowserPhoneAnswer, BrowserPhoneRefused> {
        let Some(config) = self.config.agents.iter().find(|a| a.id == agent) else {
            return Err(BrowserPhoneRefused::UnknownAgent(agent.to_string()));
        };
        if config.simulated.is_some() {
            return Err(BrowserPhoneRefused::Simulated(agent.to_string()));
        }
        if reconnect
            && self
                .browser_phones
                .get(agent)
                .is_some_and(|e| e.connected && Some(e.handle.session) != replaces)
        {
            return Err(BrowserPhoneRefused::TakenOver(agent.to_string()));
        }
        let StartedPhone {
            session,
            handle,
            answer,
        } = self.start_browser_side(agent, offer, self.browser_phone_events.clone())?;
        if let Some(previous) = self.browser_phones.insert(
            agent.to_string(),
            BrowserPhoneEntry {
                handle,
                connected: false,
            },
        ) {
            // Its Closed event finds another session in place: the leg it
            // carried (if any) is ended below, when the new one connects.
            let _ = previous.handle.commands.send(BrowserPhoneCommand::Close(
                "the agent connected another browser",
            ));
            self.publish_browser_phones();
        }
        let softphone_has_the_call = self
            .agents
            .get(agent)
            .is_some_and(|phone| phone.handle.is_some());
        Ok(BrowserPhoneAnswer {
            sdp: answer,
            session,
            softphone_has_the_call,
        })
    }

    /// The agent stops using its browser as its phone: it closes, and its
    /// `Closed` event ends the leg on it. False: the agent had none.
    /// `session`: only that browser phone (a desktop closes its own, not
    /// the one another tab has taken over since).
    /// Answers a browser's offer and starts the dialer's side of its
    /// phone under a new session, its events going to `events`.
    pub(super) fn start_browser_side(
        &self,
        agent: &str,
        offer: &str,
        events: tokio::sync::mpsc::UnboundedSender<BrowserPhoneEvent>,
    ) -> Result<StartedPhone, PhoneStartRefused> {
        let announce = self.config.rtp.public_ip.unwrap_or(self.config.rtp.bind);
        if announce.is_unspecified() {
            return Err(PhoneStartRefused::NoAddress(announce));
        }
        // Random, not counted: a desktop may `replace` only the session it
        // was given, and a count starting again at every restart would let
        // a stale id name another desktop's phone. Below 2^53 so that
        // JavaScript numbers hold it exactly.
        let session = fastrand::u64(1..(1 << 53));
        let (handle, answer) = browser_phone::start(
            agent.to_string(),
            session,
            offer,
            &self.pool,
            announce,
            self.config.rtp.bind,
            events,
        )?;
        Ok(StartedPhone {
            session,
            handle,
            answer,
        })
    }

    pub fn close_browser_phone(&mut self, agent: &str, session: Option<u64>) -> bool {
        let current = self.browser_phones.get(agent).map(|e| e.handle.session);
        if current.is_none() || (session.is_some() && session != current) {
            return false;
        }
        // Gone at once, not when its task says so: a desktop reloaded right
        // after (its `pagehide` closed the phone) may offer again at once.
        let Some(entry) = self.browser_phones.remove(agent) else {
            return false;
        };
        let _ = entry.handle.commands.send(BrowserPhoneCommand::Close(
            "the agent stopped using the browser",
        ));
        self.publish_browser_phones();
        true
    }

    pub fn on_browser_phone(&mut self, event: BrowserPhoneEvent) -> Vec<Input> {
        match event {
            BrowserPhoneEvent::Connected { agent, session } => {
                let Some(entry) = self
                    .browser_phones
                    .get_mut(&agent)
                    .filter(|entry| entry.handle.session == session)
                else {
                    return Vec::new();
                };
                entry.connected = true;
                self.publish_browser_phones();
                // A softphone's reservation call is left alone (a customer
                // may be on it, or ringing it per call): the engine calls
                // the browser once that call ends (`on_agent_event`).
                // A leg still pointed at the browser this one replaced is
                // dead: end it, and the engine calls the agent again.
                let mut inputs = self.end_browser_leg(&agent, |other| other != session);
                inputs.push(Input::AgentPhoneRegistered { agent });
                inputs
            }
            BrowserPhoneEvent::Closed {
                agent,
                session,
                why,
            } => {
                tracing::info!(%agent, why, "the agent's browser phone is gone");
                if self
                    .browser_phones
                    .get(&agent)
                    .is_some_and(|entry| entry.handle.session == session)
                {
                    self.browser_phones.remove(&agent);
                    self.publish_browser_phones();
                }
                self.end_browser_leg(&agent, |leg| leg == session)
            }
        }
    }

    fn publish_browser_phones(&self) {
        let connected = self.browser_phones.values().filter(|e| e.connected).count();
        metrics::gauge!(crate::metrics::BROWSER_PHONES).set(connected as f64);
    }

    /// Ends the agent's leg when it runs to a browser phone `matching`.
    fn end_browser_leg(&mut self, agent: &str, matching: impl Fn(u64) -> bool) -> Vec<Input> {
        let Some(session) = self
            .agents
            .get(agent)
            .and_then(|phone| phone.browser)
            .filter(|&session| matching(session))
        else {
            return Vec::new();
        };
        if let Some(phone) = self.agents.remove(agent) {
            let _ = phone.media.send(AgentCommand::Close);
        }
        // The leg's port goes back to the pool (a customer may get it
        // next): the browser phone must stop sending there.
        if let Some(entry) = self
            .browser_phones
            .get(agent)
            .filter(|entry| entry.handle.session == session)
        {
            let _ = entry.handle.commands.send(BrowserPhoneCommand::NoLeg);
        }
        vec![Input::AgentLeg {
            agent: agent.to_string(),
            up: false,
        }]
    }

    /// Whether the agent has a connected browser phone (a softphone's
    /// reservation call that ends is then followed by a call to it).
    pub(super) fn has_browser_phone(&self, agent: &str) -> bool {
        self.browser_phones.get(agent).is_some_and(|e| e.connected)
    }

    /// Calls the agent on its connected browser phone, if it has one: the
    /// leg is up at once. `None`: no browser phone; call it some other way.
    pub(super) fn call_browser_phone(&mut self, agent: &str) -> Option<Vec<Input>> {
        let entry = self
            .browser_phones
            .get(agent)
            .filter(|entry| entry.connected)?;
        let session = entry.handle.session;
        let leg_side = entry.handle.leg_side;
        let commands = entry.handle.commands.clone();
        let leg = match self.open_leg() {
            Ok(leg) => leg,
            Err(error) => {
                tracing::warn!(%agent, %error, "no RTP port for the agent's browser phone");
                return Some(vec![Input::AgentLeg {
                    agent: agent.to_string(),
                    up: false,
                }]);
            }
        };
        // The leg sends from its port on the address it reaches the
        // browser phone's leg side by (loopback when it binds them all).
        let leg_address = SocketAddr::new(leg_side.ip(), leg.local_addr().port());
        let _ = commands.send(BrowserPhoneCommand::Leg(leg_address));
        // Only the browser phone speaks for the agent on this leg: a
        // stranger's RTP to its port is never taken for the agent's voice.
        let _ = leg.pin_to_remote();
        self.start_local_agent_leg(agent, leg, leg_side, None, Some(session));
        tracing::info!(%agent, session, "reservation call up on the browser phone");
        Some(vec![Input::AgentLeg {
            agent: agent.to_string(),
            up: true,
        }])
    }

    /// The agent's leg to its browser phone ends (logout, the end of a
    /// per-call connection); the browser phone stays for the next one.
    pub(super) fn hang_up_browser_leg(&mut self, agent: &str) -> Option<Vec<Input>> {
        self.agents.get(agent)?.browser?;
        Some(self.end_browser_leg(agent, |_| true))
    }
}
