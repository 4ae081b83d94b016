//! A small in-process caller built from the library, for tests that need
//! more than `outdial call` offers (early-media recording, bridging): the
//! SIP endpoint and its driver, and one RTP leg per call whose SDP offer goes
//! into the INVITE, as `src/cli/call.rs` and `src/cli/call_media.rs` do.
//! Include with `#[path = "sip_support/softphone.rs"] mod softphone;`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use outdial::config::Config;
use outdial::net::SipSockets;
use outdial::net::rtp::{self, PortPool, RtpLeg};
use outdial::sdp::{
    Codec, Direction, MediaSession, Negotiated, SessionDescription, process_answer,
};
use outdial::sip::endpoint::{
    CallHandle, Endpoint, EndpointConfig, Event, InviteRequest, TransportKind,
};
use outdial::sip::outcome::CallEnd;
use tokio::sync::{mpsc, watch};

/// The endpoint, its driver task and the media port pool of one test.
pub struct Softphone {
    pub config: Config,
    handle: outdial::net::SipHandle,
    events: mpsc::UnboundedReceiver<Event>,
    /// Events read while waiting for another call's.
    pending: VecDeque<Event>,
    pool: Arc<PortPool>,
    shutdown: watch::Sender<bool>,
    driver: tokio::task::JoinHandle<()>,
}

/// One call placed by the softphone, with its media leg.
pub struct Call {
    pub handle: CallHandle,
    pub leg: RtpLeg,
    offer: SessionDescription,
}

/// What happened to a call, as far as a test waits for it.
#[derive(Debug)]
pub enum CallEvent {
    Progress { code: u16, sdp: Option<Vec<u8>> },
    Answered { sdp: Vec<u8> },
    Ended(CallEnd),
}

impl Softphone {
    /// Binds an ephemeral SIP port with `config_path`'s settings and starts
    /// the driver. Needs a tokio runtime.
    pub async fn start(config_path: &Path) -> Softphone {
        let config = Config::load(config_path).expect("the test configuration loads");
        let mut sip_config = config.sip.clone();
        sip_config.listen.set_port(0);
        let sockets = SipSockets::bind(&sip_config).await.expect("bind SIP");
        let bound = sockets.udp_addr().expect("a UDP SIP socket");
        let mut endpoint_config = EndpointConfig::from_config(&config, bound, fastrand::u64(..));
        endpoint_config.local_addr = bound;
        let (driver, handle, events) = sockets.into_driver(Endpoint::new(endpoint_config));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let driver = tokio::spawn(driver.run(shutdown_rx));
        let pool = PortPool::new(config.rtp.bind, config.rtp.port_min, config.rtp.port_max);
        Softphone {
            config,
            handle,
            events,
            pending: VecDeque::new(),
            pool,
            shutdown,
            driver,
        }
    }

    /// Opens an RTP leg and sends an INVITE to `uri` (a `sip:` URI on
    /// 127.0.0.1) with the leg's SDP offer.
    pub async fn dial(&self, uri: &str, destination: SocketAddr) -> Call {
        let settings = rtp::leg_settings(&self.config.media, fastrand::u32(..));
        let leg = RtpLeg::open(&self.pool, settings).expect("an RTP port pair");
        let codec = Codec {
            ptime_ms: self.config.media.ptime_ms,
            ..Codec::default()
        };
        let offer = MediaSession::new(leg.local_addr(), fastrand::u64(1..u64::MAX / 2), codec)
            .offer(Direction::SendRecv);
        let request = InviteRequest {
            uri: uri.to_string(),
            destination,
            alternates: Vec::new(),
            transport: TransportKind::Udp,
            route: None,
            caller_id: self.config.trunk.caller_id.clone(),
            caller_name: None,
            credentials: None,
            sdp: offer.to_string().into_bytes(),
            ring_timeout: Some(Duration::from_secs(20)),
            hold: None,
            session_expires: None,
            follow_redirects: false,
            symmetric: false,
        };
        let handle = self
            .handle
            .call(move |endpoint, now| endpoint.invite(request, now))
            .await
            .expect("the SIP driver runs")
            .expect("the INVITE is accepted");
        Call { handle, leg, offer }
    }

    /// The next event of `call`, keeping other calls' events for later.
    pub async fn next_event(&mut self, call: CallHandle, within: Duration) -> CallEvent {
        if let Some(at) = self
            .pending
            .iter()
            .position(|e| event_call(e) == Some(call))
            && let Some(event) = self.pending.remove(at).and_then(call_event)
        {
            return event;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no event for call {call:?} within {within:?}"))
                .expect("the SIP driver runs");
            if event_call(&event) == Some(call) {
                if let Some(event) = call_event(event) {
                    return event;
                }
            } else if event_call(&event).is_some() {
                self.pending.push_back(event);
            }
        }
    }

    /// Waits for the 200 of `call` (early 18x are skipped) and returns its SDP.
    pub async fn answered(&mut self, call: CallHandle, within: Duration) -> Vec<u8> {
        loop {
            match self.next_event(call, within).await {
                CallEvent::Progress { .. } => {}
                CallEvent::Answered { sdp } => return sdp,
                CallEvent::Ended(end) => panic!("call {call:?} ended before the answer: {end:?}"),
            }
        }
    }

    /// Waits for the end of `call`.
    pub async fn ended(&mut self, call: CallHandle, within: Duration) -> CallEnd {
        loop {
            if let CallEvent::Ended(end) = self.next_event(call, within).await {
                return end;
            }
        }
    }

    /// Sends BYE (or CANCEL before the answer).
    pub async fn hang_up(&self, call: CallHandle) {
        let _ = self
            .handle
            .call(move |endpoint, now| endpoint.hangup(call, now))
            .await;
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.driver.await;
    }
}

impl Call {
    /// Offer/answer with the SDP of an 18x or the 200.
    pub fn negotiate(&self, answer_sdp: &[u8]) -> Negotiated {
        let answer = SessionDescription::parse(answer_sdp).expect("the SDP answer parses");
        process_answer(&self.offer, &answer).expect("the SDP answer matches the offer")
    }

    /// Negotiates and hands the result to the leg.
    pub fn apply_answer(&self, answer_sdp: &[u8]) -> Negotiated {
        let negotiated = self.negotiate(answer_sdp);
        self.leg
            .set_negotiated(negotiated.clone())
            .expect("the leg runs");
        negotiated
    }
}

fn event_call(event: &Event) -> Option<CallHandle> {
    match event {
        Event::Progress { call, .. }
        | Event::Answered { call, .. }
        | Event::MediaChanged { call, .. }
        | Event::Ended { call, .. } => Some(*call),
        Event::PingResult { .. } | Event::Registration(_) | Event::TrunkRegistration { .. } => None,
    }
}

fn call_event(event: Event) -> Option<CallEvent> {
    match event {
        Event::Progress { code, sdp, .. } => Some(CallEvent::Progress { code, sdp }),
        Event::Answered { sdp, .. } => Some(CallEvent::Answered { sdp }),
        Event::Ended { end, .. } => Some(CallEvent::Ended(end)),
        Event::MediaChanged { .. }
        | Event::PingResult { .. }
        | Event::Registration(_)
        | Event::TrunkRegistration { .. } => None,
    }
}
