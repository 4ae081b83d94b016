//! SDP parsing and negotiation tables on real-world-shaped offers.

use super::*;
use crate::media::g711::Law;

fn sdp(text: &str) -> SessionDescription {
    SessionDescription::parse(text.as_bytes()).unwrap()
}

fn local() -> std::net::SocketAddr {
    "192.0.2.10:20000".parse().unwrap()
}

// A carrier SBC: static types without rtpmap, several codecs, CN, DTMF.
const SBC_OFFER: &str = "v=0\r\no=Sonus_UAC 245821 1 IN IP4 203.0.113.7\r\ns=SIP Media Capabilities\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\nm=audio 36412 RTP/AVP 18 0 8 101 13\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=maxptime:20\r\n";
// Asterisk-style with LF only and G.722 first.
const ASTERISK_OFFER: &str = "v=0\no=- 1 2 IN IP4 198.51.100.2\ns=Asterisk\nc=IN IP4 198.51.100.2\nt=0 0\nm=audio 10010 RTP/AVP 9 8 0 101\na=rtpmap:9 G722/8000\na=rtpmap:8 PCMA/8000\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\na=ptime:20\na=sendrecv\n";
// A softphone offering video too: the video line must be refused with port 0.
const VIDEO_OFFER: &str = "v=0\r\no=user 5 5 IN IP4 10.0.0.5\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 96\r\nc=IN IP4 10.0.0.5\r\na=rtpmap:96 telephone-event/8000\r\nm=video 4002 RTP/AVP 97\r\nc=IN IP4 10.0.0.5\r\na=rtpmap:97 H264/90000\r\n";
// RFC 2543 hold in a re-INVITE.
const HOLD_OFFER: &str = "v=0\r\no=- 1 3 IN IP4 203.0.113.7\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 36412 RTP/AVP 0\r\n";
// RFC 3264 hold.
const SENDONLY_OFFER: &str = "v=0\r\no=- 1 3 IN IP4 203.0.113.7\r\ns=-\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\nm=audio 36412 RTP/AVP 0 8\r\na=sendonly\r\n";
// Only codecs we cannot carry.
const G729_ONLY: &str = "v=0\r\no=- 1 1 IN IP4 203.0.113.7\r\ns=-\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\nm=audio 36412 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
// SRTP only.
const SAVP_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 203.0.113.7\r\ns=-\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\nm=audio 36412 RTP/SAVP 0\r\n";
// A dynamic payload type mapped to PCMU, ptime 30.
const DYNAMIC_PCMU: &str = "v=0\r\no=- 1 1 IN IP4 203.0.113.7\r\ns=-\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\nm=audio 36412 RTP/AVP 112\r\na=rtpmap:112 pcmu/8000\r\na=ptime:30\r\n";

/// Expected codec, payload type, telephone-event, remote, direction, ptime.
type Expected = (Law, u8, Option<u8>, Option<&'static str>, Direction, u32);

#[test]
fn negotiation_table() {
    struct Row {
        name: &'static str,
        offer: &'static str,
        allowed: &'static [Law],
        expect: Result<Expected, ()>,
    }
    let rows = [
        Row {
            name: "sbc static types",
            offer: SBC_OFFER,
            allowed: &[Law::Ulaw, Law::Alaw],
            expect: Ok((
                Law::Ulaw,
                0,
                Some(101),
                Some("203.0.113.7:36412"),
                Direction::SendRecv,
                20,
            )),
        },
        Row {
            name: "sbc, PCMA only",
            offer: SBC_OFFER,
            allowed: &[Law::Alaw],
            expect: Ok((
                Law::Alaw,
                8,
                Some(101),
                Some("203.0.113.7:36412"),
                Direction::SendRecv,
                20,
            )),
        },
        Row {
            name: "asterisk LF, offerer order",
            offer: ASTERISK_OFFER,
            allowed: &[Law::Ulaw, Law::Alaw],
            expect: Ok((
                Law::Alaw,
                8,
                Some(101),
                Some("198.51.100.2:10010"),
                Direction::SendRecv,
                20,
            )),
        },
        Row {
            name: "video refused",
            offer: VIDEO_OFFER,
            allowed: &[Law::Ulaw, Law::Alaw],
            expect: Ok((
                Law::Ulaw,
                0,
                Some(96),
                Some("10.0.0.5:4000"),
                Direction::SendRecv,
                20,
            )),
        },
        Row {
            name: "c=0.0.0.0 hold",
            offer: HOLD_OFFER,
            allowed: &[Law::Ulaw],
            expect: Ok((Law::Ulaw, 0, None, None, Direction::RecvOnly, 20)),
        },
        Row {
            name: "sendonly hold",
            offer: SENDONLY_OFFER,
            allowed: &[Law::Ulaw, Law::Alaw],
            expect: Ok((
                Law::Ulaw,
                0,
                None,
                Some("203.0.113.7:36412"),
                Direction::RecvOnly,
                20,
            )),
        },
        Row {
            name: "dynamic pcmu ptime 30",
            offer: DYNAMIC_PCMU,
            allowed: &[Law::Ulaw],
            expect: Ok((
                Law::Ulaw,
                112,
                None,
                Some("203.0.113.7:36412"),
                Direction::SendRecv,
                30,
            )),
        },
        Row {
            name: "g729 only",
            offer: G729_ONLY,
            allowed: &[Law::Ulaw, Law::Alaw],
            expect: Err(()),
        },
        Row {
            name: "srtp only",
            offer: SAVP_OFFER,
            allowed: &[Law::Ulaw],
            expect: Err(()),
        },
    ];
    for row in rows {
        let codec = Codec {
            laws: row.allowed.to_vec(),
            ..Codec::default()
        };
        let result = answer_offer(&sdp(row.offer), local(), 7, 1, &codec);
        match (result, row.expect) {
            (Ok((answer, n)), Ok((law, pt, te, remote, direction, ptime))) => {
                assert_eq!(n.law, law, "{}", row.name);
                assert_eq!(n.payload_type, pt, "{}", row.name);
                assert_eq!(n.telephone_event, te, "{}", row.name);
                assert_eq!(
                    n.remote.map(|r| r.to_string()).as_deref(),
                    remote,
                    "{}",
                    row.name
                );
                assert_eq!(n.direction, direction, "{}", row.name);
                assert_eq!(n.ptime_ms, ptime, "{}", row.name);
                // The answer has as many m= lines as the offer (RFC 3264 §6).
                let offer = sdp(row.offer);
                assert_eq!(answer.media.len(), offer.media.len(), "{}", row.name);
                // And the peer, reading our answer, agrees on the codec.
                let reparsed = sdp(&answer.to_string());
                let audio = &reparsed.media[0];
                assert_eq!(audio.payload_types().next(), Some(pt), "{}", row.name);
                assert_eq!(audio.port, 20000);
                assert_eq!(audio.direction(), direction, "{}", row.name);
            }
            (Err(_), Err(())) => {}
            (got, want) => panic!("{}: got {got:?}, want {want:?}", row.name),
        }
    }
}

#[test]
fn refused_streams_keep_port_zero_and_their_type() {
    let (answer, _) = answer_offer(&sdp(VIDEO_OFFER), local(), 1, 1, &Codec::default()).unwrap();
    let text = answer.to_string();
    assert!(text.contains("m=video 0 RTP/AVP 97\r\n"), "{text}");
    assert!(text.contains("m=audio 20000 RTP/AVP 0 96\r\n"), "{text}");
}

#[test]
fn errors_name_the_problem() {
    let err = answer_offer(&sdp(G729_ONLY), local(), 1, 1, &Codec::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no common audio codec: the peer offers 18; we support PCMU and PCMA"
    );
    let err = answer_offer(&sdp(SAVP_OFFER), local(), 1, 1, &Codec::default()).unwrap_err();
    assert!(err.to_string().contains("RTP/SAVP"));
    assert_eq!(SessionDescription::parse(b""), Err(SdpError::Empty));
    assert_eq!(
        SessionDescription::parse(b"hello"),
        Err(SdpError::NoVersion)
    );
    assert!(matches!(
        SessionDescription::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n"),
        Err(SdpError::BadMedia(_))
    ));
}

#[test]
fn offer_answer_round_trip_with_a_pcma_only_peer() {
    // Acceptance 3's signalling half: we offer PCMU+PCMA, the trunk answers PCMA.
    let mut session = MediaSession::new(local(), 42, Codec::default());
    let offer = session.offer(Direction::SendRecv);
    let text = offer.to_string();
    assert!(
        text.starts_with("v=0\r\no=outdial 42 1 IN IP4 192.0.2.10\r\n"),
        "{text}"
    );
    assert!(text.contains("m=audio 20000 RTP/AVP 0 8 101\r\n"), "{text}");
    let answer = sdp(
        "v=0\r\no=- 9 9 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 5004 RTP/AVP 8\r\n",
    );
    let negotiated = session.on_answer(&answer).unwrap();
    assert_eq!(negotiated.law, Law::Alaw);
    assert_eq!(negotiated.payload_type, 8);
    assert_eq!(negotiated.telephone_event, None);
    assert_eq!(negotiated.remote, Some("203.0.113.9:5004".parse().unwrap()));
    // A second answer without a new offer is a protocol error, not a panic.
    assert_eq!(
        session.on_answer(&answer),
        Err(NegotiationError::NoPendingOffer)
    );
    // A re-offer bumps the o= version.
    assert_eq!(session.offer(Direction::SendOnly).origin.session_version, 2);
}

#[test]
fn reinvite_with_a_new_address_retargets() {
    let mut session = MediaSession::new(local(), 1, Codec::default());
    let (_, first) = session.answer(&sdp(SBC_OFFER)).unwrap();
    let moved = SBC_OFFER
        .replace("203.0.113.7", "203.0.113.99")
        .replace("36412", "40000");
    let (answer, second) = session.answer(&sdp(&moved)).unwrap();
    assert_ne!(first.remote, second.remote);
    assert_eq!(second.remote, Some("203.0.113.99:40000".parse().unwrap()));
    assert_eq!(answer.origin.session_version, 2);
}

#[test]
fn serialise_then_parse_is_identity() {
    for text in [SBC_OFFER, ASTERISK_OFFER, VIDEO_OFFER, HOLD_OFFER] {
        let parsed = sdp(text);
        assert_eq!(sdp(&parsed.to_string()), parsed);
    }
}

/// Our offer on a customer call: PCMU, PCMA and telephone-event at
/// 192.0.2.10:20000, as the dialer sends it.
fn our_offer() -> String {
    build_offer(local(), 77, 1, &Codec::default(), Direction::SendRecv).to_string()
}

fn direction_of(text: &str) -> Direction {
    sdp(text).media[0].direction()
}

#[test]
fn a_hold_reoffer_is_answered_recvonly_from_our_address_and_codecs() {
    let mut dialog = DialogSdp::from_offer(our_offer().as_bytes()).unwrap();
    let (answer, media) = dialog.answer(SENDONLY_OFFER.as_bytes()).unwrap();
    let parsed = sdp(&answer);
    assert_eq!(direction_of(&answer), Direction::RecvOnly);
    assert_eq!(media.direction, Direction::RecvOnly);
    assert!(!media.direction.we_send() && media.direction.we_receive());
    // One codec in the answer (the offerer's first that we carry), our
    // address and port, our o= line one version on.
    assert_eq!(parsed.media[0].formats, ["0"]);
    assert_eq!(parsed.media[0].port, 20000);
    assert_eq!(parsed.origin.session_id, "77");
    assert_eq!(parsed.origin.session_version, 2);
    assert_eq!(media.remote, Some("203.0.113.7:36412".parse().unwrap()));
}

#[test]
fn inactive_and_rfc2543_holds_stop_our_sending_and_unhold_restores_it() {
    let mut dialog = DialogSdp::from_offer(our_offer().as_bytes()).unwrap();
    let inactive = SENDONLY_OFFER.replace("a=sendonly", "a=inactive");
    let (answer, media) = dialog.answer(inactive.as_bytes()).unwrap();
    assert_eq!(direction_of(&answer), Direction::Inactive);
    assert!(!media.direction.we_send() && !media.direction.we_receive());
    let (answer, media) = dialog.answer(HOLD_OFFER.as_bytes()).unwrap();
    assert_eq!(direction_of(&answer), Direction::RecvOnly);
    assert_eq!(media.remote, None, "c=0.0.0.0: nowhere to send");
    let unhold = SENDONLY_OFFER.replace("a=sendonly", "a=sendrecv");
    let (answer, media) = dialog.answer(unhold.as_bytes()).unwrap();
    assert_eq!(direction_of(&answer), Direction::SendRecv);
    assert_eq!(media.direction, Direction::SendRecv);
    assert_eq!(
        sdp(&answer).origin.session_version,
        4,
        "three changes after the offer (1)"
    );
}

#[test]
fn a_session_refresh_reoffer_keeps_the_version() {
    let mut dialog = DialogSdp::from_offer(our_offer().as_bytes()).unwrap();
    let (first, _) = dialog.answer(SBC_OFFER.as_bytes()).unwrap();
    let (again, _) = dialog.answer(SBC_OFFER.as_bytes()).unwrap();
    assert_eq!(
        first, again,
        "nothing changed: the same SDP, the same version"
    );
    assert_eq!(sdp(&again).origin.session_version, 2);
}

#[test]
fn an_unusable_reoffer_is_refused_and_changes_nothing() {
    let mut dialog = DialogSdp::from_offer(our_offer().as_bytes()).unwrap();
    let (before, _) = dialog.answer(SBC_OFFER.as_bytes()).unwrap();
    assert!(matches!(
        dialog.answer(G729_ONLY.as_bytes()),
        Err(ReofferError::Negotiation(
            NegotiationError::NoCommonCodec { .. }
        ))
    ));
    assert!(matches!(
        dialog.answer(b"garbage"),
        Err(ReofferError::Sdp(_))
    ));
    let (after, _) = dialog.answer(SBC_OFFER.as_bytes()).unwrap();
    assert_eq!(before, after);
}

#[test]
fn a_reoffer_may_switch_to_any_codec_of_our_first_offer() {
    let mut dialog = DialogSdp::from_offer(our_offer().as_bytes()).unwrap();
    let (_, first) = dialog.answer(SBC_OFFER.as_bytes()).unwrap();
    assert_eq!(first.law, Law::Ulaw);
    let pcma_only = SBC_OFFER.replace("RTP/AVP 18 0 8 101 13", "RTP/AVP 8 101");
    let (answer, second) = dialog.answer(pcma_only.as_bytes()).unwrap();
    assert_eq!(second.law, Law::Alaw);
    assert_eq!(sdp(&answer).media[0].formats, ["8", "101"]);
}

#[test]
fn an_offerless_reinvite_gets_our_last_sdp_and_its_answer_comes_in_the_ack() {
    let mut dialog = DialogSdp::from_offer(our_offer().as_bytes()).unwrap();
    let (answered, _) = dialog.answer(SENDONLY_OFFER.as_bytes()).unwrap();
    assert!(!dialog.offer_pending());
    let offer = dialog.offer_again();
    assert_eq!(offer, answered);
    assert!(dialog.offer_pending());
    let ack_answer = SENDONLY_OFFER.replace("a=sendonly", "a=sendrecv");
    let media = dialog.on_answer(ack_answer.as_bytes()).unwrap();
    assert_eq!(media.remote, Some("203.0.113.7:36412".parse().unwrap()));
    assert!(!dialog.offer_pending());
}

/// Linphone 5.1's hold offer, as it sent it to outdial in
/// `tests/linphone_agent.rs`: opus first, G.729 and the static types
/// without rtpmap, telephone-event at 48, 16 and 8 kHz, RTCP feedback
/// and XR attributes.
const LINPHONE_HOLD_OFFER: &str = "v=0\r\n\
o=a1 1833 765 IN IP4 127.0.0.1\r\n\
s=Talk\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
m=audio 52990 RTP/AVP 96 97 98 0 8 18 99 100 101\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=fmtp:97 vbr=on\r\n\
a=rtpmap:98 speex/8000\r\n\
a=fmtp:98 vbr=on\r\n\
a=fmtp:18 annexb=yes\r\n\
a=rtpmap:99 telephone-event/48000\r\n\
a=rtpmap:100 telephone-event/16000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendonly\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm tmmbr\r\n";

#[test]
fn linphones_hold_offer_is_answered_with_pcmu_and_the_8_khz_telephone_event() {
    let mut dialog = DialogSdp::from_offer(our_offer().as_bytes()).unwrap();
    let (answer, media) = dialog.answer(LINPHONE_HOLD_OFFER.as_bytes()).unwrap();
    let parsed = sdp(&answer);
    assert_eq!(parsed.media[0].formats, ["0", "101"], "{answer}");
    assert!(
        answer.contains("a=rtpmap:101 telephone-event/8000"),
        "{answer}"
    );
    assert_eq!(media.payload_type, 0);
    assert_eq!(media.telephone_event, Some(101));
    assert_eq!(media.direction, Direction::RecvOnly);
    assert_eq!(media.remote, Some("127.0.0.1:52990".parse().unwrap()));
}
