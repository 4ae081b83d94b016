//! RFC 3264 offer/answer for one audio stream: G.711 (PCMU, PCMA) and
//! RFC 4733 telephone-event. Extra `m=` lines are refused with port 0,
//! hold is understood in both its forms (`a=sendonly`/`inactive` and the
//! RFC 2543 `c=0.0.0.0`), and a re-offer with a new address yields a new
//! [`Negotiated`] for the leg to re-target.

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use super::{Attribute, Connection, MediaDescription, Origin, SessionDescription};
use crate::media::g711::Law;

/// Media direction attributes (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub(super) fn from_attribute(name: &str) -> Option<Direction> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// What the answerer says to an offer with this direction.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    pub fn we_send(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn we_receive(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// The codecs we can carry, in our order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub laws: Vec<Law>,
    /// Payload type we offer for telephone-event (101 by convention);
    /// `None` to not offer it.
    pub telephone_event: Option<u8>,
    pub ptime_ms: u32,
}

impl Default for Codec {
    fn default() -> Codec {
        Codec {
            laws: vec![Law::Ulaw, Law::Alaw],
            telephone_event: Some(101),
            ptime_ms: 20,
        }
    }
}

/// The outcome of offer/answer for the audio stream: everything an RTP leg
/// needs. Our direction is from our point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP; `None` while on hold with `c=0.0.0.0` or port 0.
    pub remote: Option<SocketAddr>,
    pub law: Law,
    /// Payload type of the audio codec (0 or 8, or the peer's dynamic one).
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    pub ptime_ms: u32,
    pub direction: Direction,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NegotiationError {
    #[error("the SDP has no audio stream")]
    NoAudio,
    #[error("no common audio codec: the peer offers {offered}; we support PCMU and PCMA")]
    NoCommonCodec { offered: String },
    #[error("the audio stream uses {0}; only RTP/AVP (plain RTP) is supported")]
    UnsupportedProfile(String),
    #[error("the answer rejected the audio stream (port 0)")]
    Rejected,
    #[error("an SDP answer arrived but no offer of ours is pending")]
    NoPendingOffer,
    #[error("the answer has {answer} m= lines but our offer had {offer}")]
    MediaCountMismatch { offer: usize, answer: usize },
}

/// Resolves a payload type to a G.711 law: static types need no rtpmap
/// (many trunks omit it); dynamic ones must be mapped to PCMU/PCMA at 8 kHz.
fn law_of(media: &MediaDescription, payload_type: u8) -> Option<Law> {
    match media.rtpmap(payload_type) {
        Some((encoding, 8000)) if encoding.eq_ignore_ascii_case("PCMU") => Some(Law::Ulaw),
        Some((encoding, 8000)) if encoding.eq_ignore_ascii_case("PCMA") => Some(Law::Alaw),
        Some(_) => None,
        None => match payload_type {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        },
    }
}

fn telephone_event_of(media: &MediaDescription) -> Option<u8> {
    media.payload_types().find(|&pt| {
        media.rtpmap(pt).is_some_and(|(enc, clock)| {
            enc.eq_ignore_ascii_case("telephone-event") && clock == 8000
        })
    })
}

fn is_audio_rtp(media: &MediaDescription) -> bool {
    media.media.eq_ignore_ascii_case("audio")
}

fn remote_address(sdp: &SessionDescription, media: &MediaDescription) -> Option<SocketAddr> {
    let ip = sdp.connection_for(media)?.ip_addr()?;
    if ip.is_unspecified() || media.port == 0 {
        return None;
    }
    Some(SocketAddr::new(ip, media.port))
}

fn effective_direction(sdp: &SessionDescription, media: &MediaDescription) -> Direction {
    let hold_address = sdp.connection_for(media).is_some_and(Connection::is_hold);
    let declared = media
        .attributes
        .iter()
        .rev()
        .find_map(|a| Direction::from_attribute(&a.name))
        .or(sdp.session_direction())
        .unwrap_or(Direction::SendRecv);
    if hold_address {
        // RFC 2543 hold: the peer does not want to receive.
        match declared {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            _ => Direction::Inactive,
        }
    } else {
        declared
    }
}

fn offered_ptime(media: &MediaDescription, ours: u32) -> u32 {
    match media.ptime_ms() {
        Some(p) if (10..=60).contains(&p) && p % 10 == 0 => p,
        _ => ours,
    }
}

fn audio_section(port: u16, formats: Vec<String>, attributes: Vec<Attribute>) -> MediaDescription {
    MediaDescription {
        media: "audio".into(),
        port,
        port_count: None,
        proto: "RTP/AVP".into(),
        formats,
        connection: None,
        bandwidth: Vec::new(),
        attributes,
    }
}

fn rtpmap_for(law: Law, payload_type: u8) -> Attribute {
    let name = match law {
        Law::Ulaw => "PCMU",
        Law::Alaw => "PCMA",
    };
    Attribute::value("rtpmap", format!("{payload_type} {name}/8000"))
}

fn session(
    local: SocketAddr,
    session_id: u64,
    version: u64,
    media: MediaDescription,
) -> SessionDescription {
    let connection = Connection::ip(local.ip());
    SessionDescription {
        origin: Origin {
            username: "outdial".into(),
            session_id: session_id.to_string(),
            session_version: version,
            address_type: connection.address_type.clone(),
            address: connection.address.clone(),
        },
        session_name: "outdial".into(),
        connection: Some(connection),
        bandwidth: Vec::new(),
        timing: "0 0".into(),
        attributes: Vec::new(),
        media: vec![media],
    }
}

/// Our offer: one audio stream at `local` with our codecs in preference order.
pub fn build_offer(
    local: SocketAddr,
    session_id: u64,
    version: u64,
    codec: &Codec,
    direction: Direction,
) -> SessionDescription {
    let mut formats = Vec::new();
    let mut attributes = Vec::new();
    for &law in &codec.laws {
        formats.push(law.payload_type().to_string());
        attributes.push(rtpmap_for(law, law.payload_type()));
    }
    if let Some(pt) = codec.telephone_event {
        formats.push(pt.to_string());
        attributes.push(Attribute::value(
            "rtpmap",
            format!("{pt} telephone-event/8000"),
        ));
        attributes.push(Attribute::value("fmtp", format!("{pt} 0-16")));
    }
    attributes.push(Attribute::value("ptime", codec.ptime_ms.to_string()));
    attributes.push(Attribute::flag(direction.attribute()));
    session(
        local,
        session_id,
        version,
        audio_section(local.port(), formats, attributes),
    )
}

/// Answers a remote offer (RFC 3264 §6): the first audio stream with a
/// codec we support is accepted — the offerer's preference order wins among
/// the codecs we allow — every other `m=` line is refused with port 0.
pub fn answer_offer(
    offer: &SessionDescription,
    local: SocketAddr,
    session_id: u64,
    version: u64,
    codec: &Codec,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let mut chosen: Option<(usize, Law, u8)> = None;
    let mut first_error = None;
    for (index, media) in offer.media.iter().enumerate() {
        if !is_audio_rtp(media) || media.port == 0 {
            continue;
        }
        if !media.proto.eq_ignore_ascii_case("RTP/AVP") {
            first_error.get_or_insert(NegotiationError::UnsupportedProfile(media.proto.clone()));
            continue;
        }
        let pick = media.payload_types().find_map(|pt| {
            let law = law_of(media, pt)?;
            codec.laws.contains(&law).then_some((law, pt))
        });
        match pick {
            Some((law, pt)) => {
                chosen = Some((index, law, pt));
                break;
            }
            None => {
                first_error.get_or_insert(NegotiationError::NoCommonCodec {
                    offered: media.formats.join(" "),
                });
            }
        }
    }
    let Some((chosen_index, law, payload_type)) = chosen else {
        return Err(first_error.unwrap_or(NegotiationError::NoAudio));
    };
    let mut answer = session(
        local,
        session_id,
        version,
        audio_section(0, Vec::new(), Vec::new()),
    );
    answer.media.clear();
    let mut negotiated = None;
    for (index, media) in offer.media.iter().enumerate() {
        if index != chosen_index {
            // Refused stream: same media and proto, port 0, one format.
            answer.media.push(MediaDescription {
                media: media.media.clone(),
                port: 0,
                port_count: None,
                proto: media.proto.clone(),
                formats: media.formats.first().cloned().into_iter().collect(),
                connection: None,
                bandwidth: Vec::new(),
                attributes: Vec::new(),
            });
            continue;
        }
        let telephone_event = codec.telephone_event.and(telephone_event_of(media));
        let ptime_ms = offered_ptime(media, codec.ptime_ms);
        let direction = effective_direction(offer, media).reversed();
        let mut formats = vec![payload_type.to_string()];
        let mut attributes = vec![rtpmap_for(law, payload_type)];
        if let Some(pt) = telephone_event {
            formats.push(pt.to_string());
            attributes.push(Attribute::value(
                "rtpmap",
                format!("{pt} telephone-event/8000"),
            ));
            attributes.push(Attribute::value("fmtp", format!("{pt} 0-16")));
        }
        attributes.push(Attribute::value("ptime", ptime_ms.to_string()));
        attributes.push(Attribute::flag(direction.attribute()));
        answer
            .media
            .push(audio_section(local.port(), formats, attributes));
        negotiated = Some(Negotiated {
            remote: remote_address(offer, media),
            law,
            payload_type,
            telephone_event,
            ptime_ms,
            direction,
        });
    }
    let negotiated = negotiated.ok_or(NegotiationError::NoAudio)?;
    Ok((answer, negotiated))
}

/// Reads the answer to our offer (RFC 3264 §5): the codec is the first
/// format of the answer's audio stream that we offered.
pub fn process_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    if answer.media.len() != offer.media.len() {
        return Err(NegotiationError::MediaCountMismatch {
            offer: offer.media.len(),
            answer: answer.media.len(),
        });
    }
    let (index, media) = answer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| is_audio_rtp(m))
        .ok_or(NegotiationError::NoAudio)?;
    if media.port == 0 {
        return Err(NegotiationError::Rejected);
    }
    let ours = &offer.media[index];
    let (law, payload_type) = media
        .payload_types()
        .find_map(|pt| {
            let law = law_of(media, pt).or_else(|| law_of(ours, pt))?;
            ours.payload_types()
                .any(|o| law_of(ours, o) == Some(law))
                .then_some((law, pt))
        })
        .ok_or_else(|| NegotiationError::NoCommonCodec {
            offered: media.formats.join(" "),
        })?;
    let telephone_event = telephone_event_of(media).filter(|_| telephone_event_of(ours).is_some());
    Ok(Negotiated {
        remote: remote_address(answer, media),
        law,
        payload_type,
        telephone_event,
        ptime_ms: offered_ptime(media, ours.ptime_ms().unwrap_or(20)),
        direction: effective_direction(answer, media).reversed(),
    })
}

/// One side's SDP state across a dialog: keeps the `o=` session id and bumps
/// the version on every new local description (RFC 3264 §8), and remembers
/// our last offer so the answer can be matched to it.
#[derive(Debug, Clone)]
pub struct MediaSession {
    local: SocketAddr,
    session_id: u64,
    version: u64,
    codec: Codec,
    pending_offer: Option<SessionDescription>,
    negotiated: Option<Negotiated>,
}

impl MediaSession {
    /// `local` is the address announced in SDP (the public IP when behind
    /// NAT, and the RTP leg's port).
    pub fn new(local: SocketAddr, session_id: u64, codec: Codec) -> MediaSession {
        MediaSession {
            local,
            session_id,
            version: 0,
            codec,
            pending_offer: None,
            negotiated: None,
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn set_announced_ip(&mut self, ip: IpAddr) {
        self.local.set_ip(ip);
    }

    /// Builds our offer (initial INVITE or re-INVITE).
    pub fn offer(&mut self, direction: Direction) -> SessionDescription {
        self.version += 1;
        let offer = build_offer(
            self.local,
            self.session_id,
            self.version,
            &self.codec,
            direction,
        );
        self.pending_offer = Some(offer.clone());
        offer
    }

    /// Answers the peer's offer (an INVITE with SDP, or a re-INVITE moving
    /// the media or putting it on hold).
    pub fn answer(
        &mut self,
        remote_offer: &SessionDescription,
    ) -> Result<(SessionDescription, Negotiated), NegotiationError> {
        self.version += 1;
        let (answer, negotiated) = answer_offer(
            remote_offer,
            self.local,
            self.session_id,
            self.version,
            &self.codec,
        )?;
        self.negotiated = Some(negotiated.clone());
        Ok((answer, negotiated))
    }

    /// Takes the peer's answer to our pending offer.
    pub fn on_answer(
        &mut self,
        remote_answer: &SessionDescription,
    ) -> Result<Negotiated, NegotiationError> {
        let offer = self
            .pending_offer
            .take()
            .ok_or(NegotiationError::NoPendingOffer)?;
        let negotiated = process_answer(&offer, remote_answer)?;
        self.negotiated = Some(negotiated.clone());
        Ok(negotiated)
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }
}

/// Why a re-offer inside a dialog was refused (the re-INVITE or UPDATE gets
/// 488 and the session goes on as before, RFC 3261 §14.2).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReofferError {
    #[error("unreadable SDP offer: {0}")]
    Sdp(#[from] super::SdpError),
    #[error(transparent)]
    Negotiation(#[from] NegotiationError),
}

/// Our SDP in a dialog we opened with an offer (the dialer's calls to the
/// trunk and to agents): it answers the peer's re-offers — hold
/// (`sendonly`, `inactive`, `c=0.0.0.0`), unhold, a new address, a session
/// refresh — from the codecs and address of our first offer, and keeps the
/// `o=` line across the dialog, its version one higher whenever the
/// description changes and unchanged when it does not (RFC 3264 §8).
#[derive(Debug, Clone)]
pub struct DialogSdp {
    /// Our first offer: the capabilities every later answer is drawn from.
    offer: SessionDescription,
    /// The last description we sent (the offer, then each answer).
    last: SessionDescription,
    /// Set while an offer of ours (in a 2xx to an offerless re-INVITE)
    /// waits for the peer's answer in the ACK.
    offer_pending: bool,
}

impl DialogSdp {
    pub fn from_offer(offer: &[u8]) -> Result<DialogSdp, super::SdpError> {
        let offer = SessionDescription::parse(offer)?;
        Ok(DialogSdp {
            last: offer.clone(),
            offer,
            offer_pending: false,
        })
    }

    /// The last description we sent, as the offer of a 2xx to a re-INVITE
    /// without SDP (RFC 3261 §14.2); its answer comes in the ACK.
    pub fn offer_again(&mut self) -> String {
        self.offer_pending = true;
        self.last.to_string()
    }

    /// Takes the answer to [`DialogSdp::offer_again`] from the ACK.
    pub fn on_answer(&mut self, answer: &[u8]) -> Result<Negotiated, ReofferError> {
        self.offer_pending = false;
        let answer = SessionDescription::parse(answer)?;
        Ok(process_answer(&self.last, &answer)?)
    }

    /// The last description we sent, unchanged (its `o=` version too): the
    /// offer of a session refresh by re-INVITE (RFC 4028 §7.4), whose
    /// answer goes to [`DialogSdp::on_answer`].
    pub fn last_sent(&self) -> String {
        self.last.to_string()
    }

    pub fn offer_pending(&self) -> bool {
        self.offer_pending
    }

    /// Answers the peer's re-offer: our answer's text and what the leg must
    /// now do. On error nothing changes.
    pub fn answer(&mut self, remote_offer: &[u8]) -> Result<(String, Negotiated), ReofferError> {
        let remote_offer = SessionDescription::parse(remote_offer)?;
        let (local, codec) = self.capabilities()?;
        let (mut answer, negotiated) = answer_offer(&remote_offer, local, 0, 0, &codec)?;
        answer.origin = self.last.origin.clone();
        if answer != self.last {
            answer.origin.session_version = self.last.origin.session_version.wrapping_add(1);
        }
        self.offer_pending = false;
        self.last = answer;
        Ok((self.last.to_string(), negotiated))
    }

    /// Our address and codecs, read back from our first offer.
    fn capabilities(&self) -> Result<(SocketAddr, Codec), NegotiationError> {
        let media = self
            .offer
            .media
            .iter()
            .find(|m| is_audio_rtp(m) && m.port != 0)
            .ok_or(NegotiationError::NoAudio)?;
        let ip = self
            .offer
            .connection_for(media)
            .and_then(Connection::ip_addr)
            .ok_or(NegotiationError::NoAudio)?;
        let mut laws = Vec::new();
        for law in media.payload_types().filter_map(|pt| law_of(media, pt)) {
            if !laws.contains(&law) {
                laws.push(law);
            }
        }
        let codec = Codec {
            laws,
            telephone_event: telephone_event_of(media),
            ptime_ms: media.ptime_ms().unwrap_or(20),
        };
        Ok((SocketAddr::new(ip, media.port), codec))
    }
}
