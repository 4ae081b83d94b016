//! The agent's phone in the web desktop: a WebRTC peer (ICE, DTLS-SRTP)
//! whose audio, on the dialer's side, is plain G.711 RTP.
//!
//! The browser's microphone and speaker become an agent phone like any
//! softphone: the shell points the agent's ordinary RTP leg (zip tone,
//! bridge, hold, recording — all unchanged) at this peer, which turns each
//! RTP packet of the leg into a WebRTC media write and each media frame of
//! the browser into an RTP packet for the leg.
//!
//! Sans-IO like the rest of the media plane: str0m's [`Rtc`] holds the
//! protocol state, [`BrowserPhone`] the translation; the shell
//! (`net::browser_phone`) owns the sockets and the clock, so tests drive two
//! peers through a virtual clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use super::rtp::{self, RtpPacket};

/// How long a browser has, after its offer is answered, to get ICE and DTLS
/// up; a phone that never connects is given up.
pub const CONNECT_WAIT: Duration = Duration::from_secs(20);

/// How long a browser whose ICE consent lapsed (RFC 7675) has to come
/// back before its phone is given up: a short network outage keeps it.
pub const RECONNECT_WAIT: Duration = Duration::from_secs(10);

/// G.711 μ-law's static payload type on the agent's RTP leg.
const LEG_PAYLOAD_TYPE: u8 = 0;

/// Why an offer from a browser is refused.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("not an SDP offer: {0}")]
    NotSdp(String),
    #[error("the offer cannot be answered: {0}")]
    Refused(String),
    #[error("the offer has no audio in PCMU (G.711 μ-law), the codec of the dialer's calls")]
    NoPcmu,
    #[error("the dialer's WebRTC address is unusable: {0}")]
    Candidate(String),
}

/// What the peer asks of the shell.
#[derive(Debug, PartialEq, Eq)]
pub enum PhoneOutput {
    /// A datagram for the browser.
    Transmit { to: SocketAddr, bytes: Vec<u8> },
    /// An RTP packet (PCMU, 8 kHz) of the browser's microphone for the
    /// agent's leg.
    ToLeg(Vec<u8>),
    /// ICE and DTLS are up: the phone carries audio from now on.
    Connected,
    /// The phone is gone for good (the browser left, or never connected).
    Closed(&'static str),
    /// Nothing more until this instant or new input.
    Wait(Instant),
}

/// One browser's phone: the str0m peer and the RTP it exchanges with the
/// agent's leg.
pub struct BrowserPhone {
    rtc: Rtc,
    /// The socket the browser's datagrams arrive on (the ICE candidate).
    local: SocketAddr,
    audio: Mid,
    /// PCMU's payload type in the browser's offer.
    pcmu: Pt,
    outputs: VecDeque<PhoneOutput>,
    connected: bool,
    closed: bool,
    /// str0m panicked: the peer's state is unknown, nothing touches it.
    failed: bool,
    connect_by: Instant,
    /// Since when ICE says the browser is unreachable.
    disconnected_since: Option<Instant>,
    /// The latest instant the peer was given.
    last_input: Instant,
    /// The SSRC of the RTP stream sent to the leg.
    leg_ssrc: u32,
}

impl BrowserPhone {
    /// Answers a browser's offer. `local` is the UDP socket the shell
    /// receives the browser's datagrams on, announced as the only ICE
    /// candidate. Returns the peer and the SDP answer for the browser.
    pub fn accept(
        offer: &str,
        local: SocketAddr,
        now: Instant,
    ) -> Result<(BrowserPhone, String), OfferError> {
        // str0m parses the offer: a panic there refuses it (see `guarded`).
        std::panic::catch_unwind(|| Self::accept_unguarded(offer, local, now)).unwrap_or_else(
            |_| {
                Err(OfferError::Refused(
                    "the offer made the WebRTC stack fail".into(),
                ))
            },
        )
    }

    fn accept_unguarded(
        offer: &str,
        local: SocketAddr,
        now: Instant,
    ) -> Result<(BrowserPhone, String), OfferError> {
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| OfferError::NotSdp(e.to_string()))?;
        // PCMU only: the trunk's calls are G.711, so anything richer would
        // be transcoded down to it anyway.
        let mut rtc = Rtc::builder().clear_codecs().enable_pcmu(true).build(now);
        let candidate = Candidate::host(local, "udp")
            .map_err(|e| OfferError::Candidate(format!("{local}: {e}")))?;
        rtc.add_local_candidate(candidate)
            .ok_or_else(|| OfferError::Candidate(format!("{local} was refused")))?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| OfferError::Refused(e.to_string()))?;
        let answer = answer.to_sdp_string();
        let audio = answered_audio(&answer).ok_or(OfferError::NoPcmu)?;
        let pcmu = rtc
            .writer(audio)
            .and_then(|writer| {
                writer
                    .payload_params()
                    .find(|params| params.spec().codec == Codec::PCMU)
                    .map(|params| params.pt())
            })
            .ok_or(OfferError::NoPcmu)?;
        let phone = BrowserPhone {
            rtc,
            local,
            audio,
            pcmu,
            outputs: VecDeque::new(),
            connected: false,
            closed: false,
            failed: false,
            connect_by: now + CONNECT_WAIT,
            disconnected_since: None,
            last_input: now,
            leg_ssrc: fastrand::u32(..),
        };
        Ok((phone, answer))
    }

    /// A datagram from the browser (STUN, DTLS or SRTP).
    pub fn handle_datagram(&mut self, source: SocketAddr, bytes: &[u8], now: Instant) {
        if self.closed {
            return;
        }
        self.last_input = now;
        if too_short_for_srtcp(bytes) {
            // str0m 0.19 panics on these (see `guarded`); no browser sends
            // one, so nobody gets to try.
            return;
        }
        let Ok(contents) = bytes.try_into() else {
            // Neither STUN, DTLS nor RTP: not ours to read.
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        // Only the browser's address (the ICE pair, or a STUN check with
        // our credentials): a stranger's datagram never reaches str0m.
        if !self.rtc.accepts(&input) {
            return;
        }
        if let Some(Err(error)) = self.guarded(|rtc| rtc.handle_input(input)) {
            tracing::debug!(%error, "datagram from the browser dropped");
        }
    }

    /// An RTP packet from the agent's leg, for the browser's speaker.
    /// Before the phone is connected there is nobody to hear it.
    pub fn handle_leg_rtp(&mut self, bytes: &[u8], now: Instant) {
        if !self.connected || self.closed {
            return;
        }
        let Ok(packet) = RtpPacket::parse(bytes) else {
            return;
        };
        if packet.payload_type != LEG_PAYLOAD_TYPE || packet.payload.is_empty() {
            // DTMF or comfort noise from the leg: the browser's speaker
            // has no use for it.
            return;
        }
        let time = MediaTime::new(u64::from(packet.timestamp), Frequency::EIGHT_KHZ);
        let (audio, pcmu, payload) = (self.audio, self.pcmu, packet.payload.to_vec());
        let written = self.guarded(|rtc| {
            rtc.writer(audio)
                .map(|writer| writer.write(pcmu, now, time, payload))
        });
        if let Some(Some(Err(error))) = written {
            tracing::debug!(%error, "audio for the browser dropped");
        }
    }

    /// The clock reached the instant of the last [`PhoneOutput::Wait`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.last_input = now;
        if !self.connected && now >= self.connect_by {
            self.close("the browser did not connect");
            return;
        }
        if self
            .disconnected_since
            .is_some_and(|since| now >= since + RECONNECT_WAIT)
        {
            self.close("the browser went away");
            return;
        }
        if let Some(Err(error)) = self.guarded(|rtc| rtc.handle_input(Input::Timeout(now))) {
            tracing::debug!(%error, "browser phone timeout");
        }
    }

    /// Ends the phone (the agent logged out, or connected another one).
    pub fn close(&mut self, why: &'static str) {
        if !self.closed {
            self.closed = true;
            if !self.failed {
                self.rtc.disconnect();
            }
            self.outputs.push_back(PhoneOutput::Closed(why));
        }
    }

    /// Runs `step` on the peer; a panic inside str0m (a crafted datagram
    /// did it in 0.19's SRTCP code: a 20-byte packet that claims to be
    /// RTCP) ends this phone instead of the task, and the peer is never
    /// touched again.
    fn guarded<T>(&mut self, step: impl FnOnce(&mut Rtc) -> T) -> Option<T> {
        if self.failed {
            return None;
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&mut self.rtc))) {
            Ok(value) => Some(value),
            Err(_) => {
                tracing::warn!(
                    "the WebRTC stack panicked on the browser phone's input; closing it"
                );
                self.failed = true;
                self.close("the WebRTC stack failed");
                None
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The next thing to do; call until it returns [`PhoneOutput::Wait`].
    pub fn poll(&mut self) -> PhoneOutput {
        loop {
            if let Some(output) = self.outputs.pop_front() {
                return output;
            }
            if self.closed {
                // Nothing will happen any more; the shell drops the phone.
                return PhoneOutput::Wait(self.last_input + Duration::from_secs(24 * 3600));
            }
            let Some(output) = self.guarded(Rtc::poll_output) else {
                continue;
            };
            match output {
                Ok(Output::Timeout(at)) => {
                    let mut at = at;
                    if !self.connected {
                        at = at.min(self.connect_by);
                    }
                    if let Some(since) = self.disconnected_since {
                        at = at.min(since + RECONNECT_WAIT);
                    }
                    return PhoneOutput::Wait(at);
                }
                Ok(Output::Transmit(transmit)) => {
                    return PhoneOutput::Transmit {
                        to: transmit.destination,
                        bytes: transmit.contents.to_vec(),
                    };
                }
                Ok(Output::Event(event)) => self.on_event(event),
                Err(error) => {
                    tracing::debug!(%error, "browser phone failed");
                    self.close("the WebRTC session failed");
                }
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected if !self.connected => {
                self.connected = true;
                self.outputs.push_back(PhoneOutput::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.disconnected_since.get_or_insert(self.last_input);
            }
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) => {
                self.disconnected_since = None;
            }
            Event::MediaData(data) => {
                if data.mid != self.audio || data.pt != self.pcmu || data.data.is_empty() {
                    return;
                }
                let mut packet = vec![0u8; rtp::HEADER_LEN + data.data.len()];
                // The browser's own sequence numbers: a packet lost on the
                // way shows in the leg's RFC 3550 statistics.
                let header = rtp::write_header(
                    &mut packet,
                    false,
                    LEG_PAYLOAD_TYPE,
                    data.seq_range.start().as_u16(),
                    data.time.numer() as u32,
                    self.leg_ssrc,
                );
                packet[header..].copy_from_slice(&data.data);
                self.outputs.push_back(PhoneOutput::ToLeg(packet));
            }
            _ => {}
        }
    }
}

/// An RTP-version datagram with an RTCP packet type (RFC 5761: 64–95 after
/// the marker bit) shorter than the smallest SRTCP packet str0m can take:
/// an 8-byte header, a 16-byte AEAD tag and the 4-byte index.
fn too_short_for_srtcp(bytes: &[u8]) -> bool {
    const SMALLEST_SRTCP: usize = 8 + 16 + 4;
    match bytes {
        [first, second, ..] => {
            first >> 6 == 2 && (64..=95).contains(&(second & 0x7f)) && bytes.len() < SMALLEST_SRTCP
        }
        _ => false,
    }
}

/// The `mid` of the answer's first accepted audio section (str0m names
/// its media in events only once DTLS is up; the answer says it at once).
fn answered_audio(answer: &str) -> Option<Mid> {
    let mut in_accepted_audio = false;
    for line in answer.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=") {
            let mut fields = media.split(' ');
            in_accepted_audio =
                fields.next() == Some("audio") && fields.next().is_some_and(|port| port != "0");
        } else if in_accepted_audio && let Some(mid) = line.strip_prefix("a=mid:") {
            return Some(Mid::from(mid));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::change::SdpAnswer;
    use str0m::media::{Direction, MediaKind};

    const PHONE_ADDR: &str = "10.0.0.1:6000";
    const BROWSER_ADDR: &str = "10.0.0.2:5000";

    /// A browser's side: a str0m peer that offers audio as Chromium does
    /// (Opus first, PCMU among the others).
    struct Browser {
        rtc: Rtc,
        audio: Mid,
        heard: Vec<Vec<u8>>,
        connected: bool,
    }

    fn browser_offer(
        now: Instant,
        codecs: impl FnOnce(str0m::RtcConfig) -> str0m::RtcConfig,
    ) -> (Browser, str0m::change::SdpPendingOffer, String) {
        let mut rtc = codecs(Rtc::builder()).build(now);
        let addr: SocketAddr = BROWSER_ADDR.parse().expect("address");
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        let audio = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().expect("an offer");
        let browser = Browser {
            rtc,
            audio,
            heard: Vec::new(),
            connected: false,
        };
        (browser, pending, offer.to_sdp_string())
    }

    /// Both peers, joined by a loss-free network on a virtual clock.
    struct Call {
        phone: BrowserPhone,
        browser: Browser,
        now: Instant,
        phone_connected: bool,
        phone_closed: Option<&'static str>,
        to_leg: Vec<Vec<u8>>,
        /// Drop everything the browser sends (it went away).
        browser_gone: bool,
        /// Drop the browser's DTLS records only (ICE works, DTLS never
        /// completes: a firewall that lets STUN through, say).
        browser_dtls_lost: bool,
    }

    fn a_call() -> Call {
        let now = Instant::now();
        let (mut browser, pending, offer) = browser_offer(now, |config| {
            config.enable_opus(true).enable_pcmu(true).enable_pcma(true)
        });
        let (phone, answer) =
            BrowserPhone::accept(&offer, PHONE_ADDR.parse().expect("address"), now)
                .expect("the offer is answered");
        let answer = SdpAnswer::from_sdp_string(&answer).expect("an SDP answer");
        browser
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("the answer is taken");
        Call {
            phone,
            browser,
            now,
            phone_connected: false,
            phone_closed: None,
            to_leg: Vec::new(),
            browser_gone: false,
            browser_dtls_lost: false,
        }
    }

    impl Call {
        /// Runs both peers until neither has anything to do before `until`.
        fn run_until(&mut self, until: Instant) {
            let phone_addr: SocketAddr = PHONE_ADDR.parse().expect("address");
            let browser_addr: SocketAddr = BROWSER_ADDR.parse().expect("address");
            loop {
                let mut next = until;
                // The phone's side.
                loop {
                    match self.phone.poll() {
                        PhoneOutput::Transmit { to, bytes } => {
                            assert_eq!(to, browser_addr);
                            if let Ok(contents) = bytes.as_slice().try_into() {
                                let _ = self.browser.rtc.handle_input(Input::Receive(
                                    self.now,
                                    Receive {
                                        proto: Protocol::Udp,
                                        source: phone_addr,
                                        destination: browser_addr,
                                        contents,
                                    },
                                ));
                            }
                        }
                        PhoneOutput::ToLeg(packet) => self.to_leg.push(packet),
                        PhoneOutput::Connected => self.phone_connected = true,
                        PhoneOutput::Closed(why) => self.phone_closed = Some(why),
                        PhoneOutput::Wait(at) => {
                            next = next.min(at);
                            break;
                        }
                    }
                }
                // The browser's side.
                let mut sent = false;
                loop {
                    match self.browser.rtc.poll_output().expect("the browser runs") {
                        Output::Timeout(at) => {
                            next = next.min(at);
                            break;
                        }
                        Output::Transmit(transmit) => {
                            sent = true;
                            // RFC 7983: DTLS records start with 20..=63.
                            let dtls = matches!(transmit.contents.first(), Some(20..=63));
                            let lost = self.browser_gone || (dtls && self.browser_dtls_lost);
                            if !lost {
                                self.phone.handle_datagram(
                                    transmit.source,
                                    &transmit.contents,
                                    self.now,
                                );
                            }
                        }
                        Output::Event(Event::Connected) => self.browser.connected = true,
                        Output::Event(Event::MediaData(data)) => self.browser.heard.push(data.data),
                        Output::Event(_) => {}
                    }
                }
                if sent {
                    continue;
                }
                if next >= until {
                    self.now = until;
                    self.phone.handle_timeout(until);
                    let _ = self.browser.rtc.handle_input(Input::Timeout(until));
                    return;
                }
                self.now = next.max(self.now);
                self.phone.handle_timeout(self.now);
                let _ = self.browser.rtc.handle_input(Input::Timeout(self.now));
            }
        }

        fn run_for(&mut self, span: Duration) {
            let until = self.now + span;
            self.run_until(until);
        }

        /// One 20 ms G.711 packet from the agent's leg, every byte `sample`.
        fn leg_sends(&mut self, sequence: u16, sample: u8) {
            let mut packet = vec![sample; rtp::G711_PACKET_LEN];
            rtp::write_header(
                &mut packet,
                false,
                LEG_PAYLOAD_TYPE,
                sequence,
                u32::from(sequence) * 160,
                0x1234,
            );
            let now = self.now;
            self.phone.handle_leg_rtp(&packet, now);
        }

        /// The browser's microphone sends one 20 ms PCMU frame.
        fn browser_says(&mut self, index: u64, sample: u8) {
            let pt = self
                .browser
                .rtc
                .writer(self.browser.audio)
                .and_then(|w| {
                    w.payload_params()
                        .find(|p| p.spec().codec == Codec::PCMU)
                        .map(|p| p.pt())
                })
                .expect("the browser sends PCMU");
            let writer = self
                .browser
                .rtc
                .writer(self.browser.audio)
                .expect("a writer");
            writer
                .write(
                    pt,
                    self.now,
                    MediaTime::new(index * 160, Frequency::EIGHT_KHZ),
                    vec![sample; 160],
                )
                .expect("the frame is written");
        }
    }

    #[test]
    fn a_browser_connects_and_the_audio_crosses_both_ways() {
        let mut call = a_call();
        call.run_for(Duration::from_secs(3));
        assert!(call.phone_connected, "ICE and DTLS came up");
        assert!(call.browser.connected);
        assert_eq!(call.phone_closed, None);

        // The leg's audio reaches the browser's speaker, byte for byte.
        for sequence in 0..10u16 {
            call.leg_sends(sequence, 0x55);
            call.run_for(Duration::from_millis(20));
        }
        assert!(
            call.browser.heard.len() >= 5,
            "the browser heard {} frames",
            call.browser.heard.len()
        );
        assert!(
            call.browser
                .heard
                .iter()
                .all(|frame| frame.len() == 160 && frame.iter().all(|&b| b == 0x55))
        );

        // The browser's microphone reaches the leg as RTP, PCMU at 8 kHz.
        for index in 0..10u64 {
            call.browser_says(index, 0x2a);
            call.run_for(Duration::from_millis(20));
        }
        assert!(
            call.to_leg.len() >= 5,
            "the leg got {} packets",
            call.to_leg.len()
        );
        let mut previous: Option<(u16, u32)> = None;
        for bytes in &call.to_leg {
            let packet = RtpPacket::parse(bytes).expect("an RTP packet for the leg");
            assert_eq!(packet.payload_type, LEG_PAYLOAD_TYPE);
            assert_eq!(packet.payload, &[0x2a; 160][..]);
            if let Some((sequence, timestamp)) = previous {
                assert_eq!(packet.sequence, sequence.wrapping_add(1));
                assert_eq!(packet.timestamp.wrapping_sub(timestamp), 160);
            }
            previous = Some((packet.sequence, packet.timestamp));
        }
    }

    #[test]
    fn a_browser_that_goes_away_closes_the_phone() {
        let mut call = a_call();
        call.run_for(Duration::from_secs(3));
        assert!(call.phone_connected);
        call.browser_gone = true;
        // ICE consent (RFC 7675) lapses in about 22 s of silence, then the
        // browser has RECONNECT_WAIT to come back.
        call.run_for(Duration::from_secs(30));
        assert_eq!(call.phone_closed, None);
        call.run_for(Duration::from_secs(10));
        assert_eq!(call.phone_closed, Some("the browser went away"));
    }

    #[test]
    fn a_browser_back_before_the_reconnect_wait_keeps_the_phone() {
        let mut call = a_call();
        call.run_for(Duration::from_secs(3));
        assert!(call.phone_connected);
        call.browser_gone = true;
        call.run_for(Duration::from_secs(27));
        assert!(
            call.phone.disconnected_since.is_some(),
            "ICE consent lapsed"
        );
        call.browser_gone = false;
        call.run_for(Duration::from_secs(20));
        assert_eq!(call.phone_closed, None);
        assert_eq!(call.phone.disconnected_since, None);
        // And the audio flows again.
        call.browser.heard.clear();
        for sequence in 0..10u16 {
            call.leg_sends(sequence, 0x55);
            call.run_for(Duration::from_millis(20));
        }
        assert!(!call.browser.heard.is_empty());
    }

    #[test]
    fn a_browser_that_never_answers_is_given_up() {
        let mut call = a_call();
        call.browser_gone = true;
        call.run_for(CONNECT_WAIT + Duration::from_secs(1));
        assert!(!call.phone_connected);
        assert!(call.phone_closed.is_some());
    }

    #[test]
    fn a_browser_whose_dtls_never_completes_is_given_up() {
        let mut call = a_call();
        call.browser_dtls_lost = true;
        call.run_for(CONNECT_WAIT - Duration::from_secs(1));
        assert_eq!(call.phone_closed, None);
        call.run_for(Duration::from_secs(2));
        assert!(!call.phone_connected);
        assert_eq!(call.phone_closed, Some("the browser did not connect"));
    }

    #[test]
    fn audio_from_the_leg_before_the_browser_connects_is_dropped() {
        let mut call = a_call();
        // Before ICE and DTLS: sent into the void, never queued (str0m
        // drops media written before it is connected, as our guard does).
        for sequence in 0..5u16 {
            call.leg_sends(sequence, 0x55);
        }
        call.run_for(Duration::from_secs(3));
        assert!(call.phone_connected);
        for sequence in 5..15u16 {
            call.leg_sends(sequence, 0x66);
            call.run_for(Duration::from_millis(20));
        }
        assert!(!call.browser.heard.is_empty());
        assert!(
            call.browser
                .heard
                .iter()
                .all(|frame| frame.iter().all(|&b| b == 0x66)),
            "audio from before the connection reached the browser"
        );
    }

    /// An offer as headless Chromium 14x made it (Opus, RED, G.722, PCMU,
    /// PCMA, CN, telephone-event; host candidates over UDP and TCP).
    const CHROMIUM_OFFER: &str = include_str!("../../tests/fixtures/webrtc/chromium-offer.sdp");

    #[test]
    fn chromiums_offer_is_answered_with_pcmu_and_our_one_candidate() {
        let now = Instant::now();
        let (_phone, answer) =
            BrowserPhone::accept(CHROMIUM_OFFER, PHONE_ADDR.parse().expect("address"), now)
                .expect("the offer is answered");
        let media: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(media, ["m=audio 9 UDP/TLS/RTP/SAVPF 0"], "{answer}");
        let candidates: Vec<&str> = answer
            .lines()
            .filter(|l| l.starts_with("a=candidate:"))
            .collect();
        assert_eq!(candidates.len(), 1, "{answer}");
        assert!(
            candidates[0].contains(" 10.0.0.1 6000 typ host"),
            "{answer}"
        );
        assert!(answer.contains("a=setup:passive") || answer.contains("a=setup:active"));
        assert!(answer.contains("a=mid:0"), "{answer}");
    }

    proptest::proptest! {
        /// Chromium's offer with lines dropped, repeated or cut short:
        /// answered or refused, never a panic (str0m's parser is not ours,
        /// so this runs on stable too; `fuzz/` has the deeper search).
        #[test]
        fn a_mangled_offer_never_panics(
            cuts in proptest::collection::vec((0usize..60, 0usize..3, 0usize..80), 1..6)
        ) {
            let mut lines: Vec<String> = CHROMIUM_OFFER.lines().map(str::to_string).collect();
            for (at, what, keep) in cuts {
                let at = at % lines.len().max(1);
                match what {
                    0 if !lines.is_empty() => {
                        lines.remove(at);
                    }
                    1 if !lines.is_empty() => {
                        let line = lines[at].clone();
                        lines.insert(at, line);
                    }
                    _ if !lines.is_empty() => {
                        let line = &mut lines[at];
                        let keep = keep.min(line.len());
                        let keep = (0..=keep).rev().find(|&k| line.is_char_boundary(k)).unwrap_or(0);
                        line.truncate(keep);
                    }
                    _ => {}
                }
            }
            let offer = lines.join("\r\n") + "\r\n";
            let now = Instant::now();
            let _ = BrowserPhone::accept(&offer, PHONE_ADDR.parse().expect("address"), now);
        }
    }

    #[test]
    fn a_panic_inside_str0m_closes_the_phone_not_the_task() {
        // The property test below found 20 bytes that look like SRTCP (a
        // version-2 header, packet type 64) on which str0m 0.19's SRTCP
        // code indexes out of range; those are filtered out now (the next
        // test), so the panic is made here by hand.
        let mut call = a_call();
        call.run_for(Duration::from_secs(3));
        assert!(call.phone_connected);
        let outcome = call.phone.guarded(|_| -> () {
            panic!("as str0m 0.19 did on a short SRTCP packet");
        });
        assert!(outcome.is_none());
        call.run_for(Duration::from_millis(20));
        assert_eq!(call.phone_closed, Some("the WebRTC stack failed"));
        // Nothing touches the failed peer again.
        let now = call.now;
        call.leg_sends(1, 0x55);
        call.phone.handle_timeout(now + Duration::from_secs(1));
        assert!(matches!(call.phone.poll(), PhoneOutput::Wait(_)));
    }

    #[test]
    fn a_strangers_datagrams_never_reach_the_peer() {
        // The packet that panics str0m, from an address that is not the
        // browser's: dropped before str0m, the phone carries on. And the
        // same bytes from the browser's own address are dropped too
        // (too short to be SRTCP), where str0m would have panicked.
        let mut call = a_call();
        call.run_for(Duration::from_secs(3));
        assert!(call.phone_connected);
        let mut datagram = [0u8; 20];
        datagram[0] = 128;
        datagram[1] = 64;
        let now = call.now;
        for from in ["203.0.113.9:4000", BROWSER_ADDR] {
            call.phone
                .handle_datagram(from.parse().expect("address"), &datagram, now);
        }
        call.run_for(Duration::from_millis(20));
        assert_eq!(call.phone_closed, None);
        for sequence in 0..10u16 {
            call.leg_sends(sequence, 0x55);
            call.run_for(Duration::from_millis(20));
        }
        assert!(!call.browser.heard.is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// On a connected phone, any bytes from the agent's leg and from
        /// the browser's address (a forged or broken datagram): never a
        /// panic, and real audio still crosses afterwards.
        #[test]
        fn junk_on_a_connected_phone_never_panics(
            junk in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..40)
        ) {
            let mut call = a_call();
            call.run_for(Duration::from_secs(3));
            proptest::prop_assert!(call.phone_connected);
            let browser: SocketAddr = BROWSER_ADDR.parse().expect("address");
            for bytes in &junk {
                let now = call.now;
                call.phone.handle_leg_rtp(bytes, now);
                call.phone.handle_datagram(browser, bytes, now);
                call.run_for(Duration::from_millis(5));
            }
            if call.phone_closed == Some("the WebRTC stack failed") {
                // str0m panicked on the junk (see the test above): the
                // phone is closed, the process goes on.
                return Ok(());
            }
            proptest::prop_assert_eq!(call.phone_closed, None);
            call.browser.heard.clear();
            for sequence in 0..10u16 {
                call.leg_sends(sequence, 0x55);
                call.run_for(Duration::from_millis(20));
            }
            proptest::prop_assert!(!call.browser.heard.is_empty());
        }
    }

    #[test]
    fn an_offer_without_pcmu_is_refused() {
        let now = Instant::now();
        let (_browser, _pending, offer) =
            browser_offer(now, |config| config.clear_codecs().enable_opus(true));
        let refused = BrowserPhone::accept(&offer, PHONE_ADDR.parse().expect("address"), now);
        assert!(
            matches!(refused, Err(OfferError::NoPcmu)),
            "{:?}",
            refused.err()
        );
    }

    #[test]
    fn what_is_not_an_offer_is_refused_with_a_reason() {
        let now = Instant::now();
        let addr = PHONE_ADDR.parse().expect("address");
        for junk in [
            "",
            "hello",
            "v=0\r\n",
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n",
        ] {
            let refused = BrowserPhone::accept(junk, addr, now);
            assert!(refused.is_err(), "{junk:?} was answered");
        }
    }
}
