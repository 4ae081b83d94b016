//! The sockets of a browser's phone ([`crate::media::browser_phone`]): one
//! UDP socket from the RTP port range faces the browser (ICE, DTLS, SRTP),
//! one on the dialer's own address faces the agent's ordinary RTP leg,
//! which sends and receives plain G.711 there as it would with a softphone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::rtp::PortPool;
use crate::media::browser_phone::{BrowserPhone, OfferError, PhoneOutput};

/// What a browser's phone tells the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserPhoneEvent {
    /// ICE and DTLS are up: the agent can be called on it.
    Connected { agent: String, session: u64 },
    /// Gone for good.
    Closed {
        agent: String,
        session: u64,
        why: &'static str,
    },
}

/// What the shell tells a browser's phone.
#[derive(Debug)]
pub enum BrowserPhoneCommand {
    /// The agent's RTP leg sends from here: the browser's audio goes there.
    Leg(SocketAddr),
    /// That leg ended: its port goes back to the pool and may serve a
    /// customer next, so nothing more is sent there or taken from there.
    NoLeg,
    /// End it (a new phone replaces it, or the node stops).
    Close(&'static str),
}

/// A running browser phone, as the shell holds it.
pub struct BrowserPhoneHandle {
    pub session: u64,
    /// Where the agent's RTP leg sends the browser's audio.
    pub leg_side: SocketAddr,
    pub commands: mpsc::UnboundedSender<BrowserPhoneCommand>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Offer(#[from] OfferError),
    #[error("no UDP port for the browser's phone: {0}")]
    Socket(String),
}

/// Answers the browser's `offer` and runs its phone until it closes.
/// `announce` is the address the browser reaches the dialer at (the RTP
/// public address); the leg side binds `leg_ip`.
pub fn start(
    agent: String,
    session: u64,
    offer: &str,
    pool: &Arc<PortPool>,
    announce: IpAddr,
    leg_ip: IpAddr,
    events: mpsc::UnboundedSender<BrowserPhoneEvent>,
) -> Result<(BrowserPhoneHandle, String), StartError> {
    let lease = pool
        .lease()
        .map_err(|e| StartError::Socket(e.to_string()))?;
    let port = lease
        .rtp
        .local_addr()
        .map_err(|e| StartError::Socket(e.to_string()))?
        .port();
    let (phone, answer) =
        BrowserPhone::accept(offer, SocketAddr::new(announce, port), Instant::now())?;
    // The legs bind `leg_ip`; when that is every address, they reach this
    // socket over loopback of the same family.
    let leg_ip = match leg_ip {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let leg_socket = std::net::UdpSocket::bind(SocketAddr::new(leg_ip, 0))
        .and_then(|socket| {
            socket.set_nonblocking(true)?;
            UdpSocket::from_std(socket)
        })
        .map_err(|e| StartError::Socket(e.to_string()))?;
    let leg_side = leg_socket
        .local_addr()
        .map_err(|e| StartError::Socket(e.to_string()))?;
    let (commands, command_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(
        Sockets {
            browser: lease,
            leg: leg_socket,
        },
        phone,
        agent,
        session,
        command_rx,
        events,
    ));
    let handle = BrowserPhoneHandle {
        session,
        leg_side,
        commands,
    };
    Ok((handle, answer))
}

struct Sockets {
    /// The browser side; the lease's RTCP socket stays unused (WebRTC muxes
    /// RTCP) and both ports return to the pool when the phone ends.
    browser: super::rtp::PortLease,
    leg: UdpSocket,
}

/// Says `Closed` if the task ends without saying it (a panic): the shell
/// must not keep calling the agent on a phone nobody serves.
struct ClosedOnDrop {
    agent: String,
    session: u64,
    events: mpsc::UnboundedSender<BrowserPhoneEvent>,
    said: bool,
}

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        if !self.said {
            let _ = self.events.send(BrowserPhoneEvent::Closed {
                agent: std::mem::take(&mut self.agent),
                session: self.session,
                why: "the browser phone's task ended",
            });
        }
    }
}

async fn run(
    sockets: Sockets,
    mut phone: BrowserPhone,
    agent: String,
    session: u64,
    mut commands: mpsc::UnboundedReceiver<BrowserPhoneCommand>,
    events: mpsc::UnboundedSender<BrowserPhoneEvent>,
) {
    let mut guard = ClosedOnDrop {
        agent: agent.clone(),
        session,
        events: events.clone(),
        said: false,
    };
    let browser = &sockets.browser.rtp;
    let mut leg: Option<SocketAddr> = None;
    let mut from_browser = vec![0u8; 2048];
    let mut from_leg = vec![0u8; 2048];
    loop {
        let wait = loop {
            match phone.poll() {
                PhoneOutput::Transmit { to, bytes } => {
                    if let Err(error) = browser.send_to(&bytes, to).await {
                        tracing::debug!(%agent, %error, "cannot send to the browser");
                    }
                }
                PhoneOutput::ToLeg(packet) => {
                    if let Some(leg) = leg {
                        let _ = sockets.leg.send_to(&packet, leg).await;
                    }
                }
                PhoneOutput::Connected => {
                    tracing::info!(%agent, session, "browser phone connected");
                    let _ = events.send(BrowserPhoneEvent::Connected {
                        agent: agent.clone(),
                        session,
                    });
                }
                PhoneOutput::Closed(why) => {
                    guard.said = true;
                    tracing::info!(%agent, session, why, "browser phone closed");
                    let _ = events.send(BrowserPhoneEvent::Closed {
                        agent,
                        session,
                        why,
                    });
                    return;
                }
                PhoneOutput::Wait(at) => break at,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wait.into()) => phone.handle_timeout(Instant::now()),
            received = browser.recv_from(&mut from_browser) => {
                if let Ok((len, source)) = received {
                    phone.handle_datagram(source, &from_browser[..len], Instant::now());
                }
            }
            received = sockets.leg.recv_from(&mut from_leg) => {
                // Only the agent's leg may speak to the browser.
                if let Ok((len, source)) = received
                    && Some(source) == leg
                {
                    phone.handle_leg_rtp(&from_leg[..len], Instant::now());
                }
            }
            command = commands.recv() => match command {
                Some(BrowserPhoneCommand::Leg(address)) => leg = Some(address),
                Some(BrowserPhoneCommand::NoLeg) => leg = None,
                Some(BrowserPhoneCommand::Close(why)) => phone.close(why),
                None => phone.close("the dialer stopped"),
            },
        }
    }
}
