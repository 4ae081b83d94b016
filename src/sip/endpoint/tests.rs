//! The endpoint against a scripted peer on a virtual clock.

use std::time::{Duration, Instant};

use super::*;
use crate::sdp::Direction;
use crate::sip::codec::Message;

const MS: Duration = Duration::from_millis(1);

pub(super) fn trunk() -> SocketAddr {
    "127.0.0.1:5070".parse().unwrap()
}

pub(super) fn endpoint() -> Endpoint {
    Endpoint::new(EndpointConfig {
        local_addr: "127.0.0.1:5060".parse().unwrap(),
        timers: Timers::default(),
        user_agent: "outdial-test".into(),
        realm: "outdial".into(),
        agents: vec![AgentCredentials {
            id: "1001".into(),
            password: "pw".into(),
            static_uri: "sip:1001@127.0.0.1:5081".into(),
        }],
        seed: 7,
        nonce_key: [7; 32],
    })
}

fn request(ring: Option<u64>, hold: Option<u64>) -> InviteRequest {
    InviteRequest {
        uri: "sip:+15551234567@127.0.0.1:5070".into(),
        destination: trunk(),
        alternates: Vec::new(),
        transport: TransportKind::Udp,
        route: None,
        caller_id: "+15551230000".into(),
        caller_name: Some("outdial".into()),
        credentials: Some(Credentials {
            username: "user".into(),
            password: "secret".into(),
        }),
        sdp: crate::sip::offer::fixed_offer("127.0.0.1".parse().unwrap(), 20000, 1),
        ring_timeout: ring.map(Duration::from_secs),
        hold: hold.map(Duration::from_secs),
        session_expires: None,
        follow_redirects: true,
        symmetric: false,
    }
}

/// Everything the endpoint sent, as text.
fn sent(ep: &mut Endpoint) -> Vec<String> {
    std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| String::from_utf8(t.payload).unwrap())
        .collect()
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn method(text: &str) -> &str {
    text.split(' ').next().unwrap()
}

/// A response to `request` as a UAS would send it.
fn reply(request: &str, code: u16, to_tag: &str, extra: &str, body: &str) -> Vec<u8> {
    let m = Message::parse(request.as_bytes()).unwrap();
    let mut out = format!("SIP/2.0 {code} Reason\r\n");
    for via in m.header_values("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", m.header("From").unwrap()));
    out.push_str(&format!(
        "To: {};tag={to_tag}\r\n",
        m.header("To").unwrap().split(";tag").next().unwrap()
    ));
    out.push_str(&format!("Call-ID: {}\r\n", m.call_id().unwrap()));
    out.push_str(&format!("CSeq: {}\r\n", m.header("CSeq").unwrap()));
    out.push_str(&format!("Contact: <sip:uas-{to_tag}@127.0.0.1:5070>\r\n"));
    out.push_str(extra);
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

fn deliver(ep: &mut Endpoint, bytes: &[u8], now: Instant) {
    ep.handle_datagram(trunk(), TransportKind::Udp, bytes, now);
}

fn ended(events: &[Event]) -> Option<&CallEnd> {
    events.iter().find_map(|e| match e {
        Event::Ended { end, .. } => Some(end),
        _ => None,
    })
}

#[test]
fn answered_call_acks_the_200_then_byes_after_hold() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let call = ep.invite(request(Some(30), Some(2)), t0).unwrap();
    let out = sent(&mut ep);
    assert_eq!(out.len(), 1);
    let invite = out[0].clone();
    assert!(invite.contains("P-Asserted-Identity: <sip:+15551230000@127.0.0.1>"));
    assert!(invite.contains("m=audio 20000 RTP/AVP 0 8 101"));
    deliver(&mut ep, &reply(&invite, 100, "", "", ""), t0 + 5 * MS);
    deliver(&mut ep, &reply(&invite, 180, "a", "", ""), t0 + 10 * MS);
    deliver(
        &mut ep,
        &reply(&invite, 200, "a", "", "v=0\r\n"),
        t0 + 20 * MS,
    );
    let out = sent(&mut ep);
    assert_eq!(out.iter().map(|m| method(m)).collect::<Vec<_>>(), ["ACK"]);
    assert!(out[0].starts_with("ACK sip:uas-a@127.0.0.1:5070 SIP/2.0"));
    // The 200 again (our ACK was lost): ACK again.
    deliver(
        &mut ep,
        &reply(&invite, 200, "a", "", "v=0\r\n"),
        t0 + 520 * MS,
    );
    assert_eq!(
        sent(&mut ep).iter().map(|m| method(m)).collect::<Vec<_>>(),
        ["ACK"]
    );
    let ev = events(&mut ep);
    assert!(matches!(ev[0], Event::Progress { code: 100, .. }));
    assert!(matches!(ev[1], Event::Progress { code: 180, .. }));
    assert_eq!(
        ev[2],
        Event::Answered {
            call,
            sdp: b"v=0\r\n".to_vec()
        }
    );
    // Nothing until the hold ends.
    let at = ep.poll_timeout().unwrap();
    assert_eq!(at, t0 + 20 * MS + Duration::from_secs(2));
    ep.handle_timeout(at);
    let bye = sent(&mut ep).pop().unwrap();
    assert!(bye.starts_with("BYE sip:uas-a@127.0.0.1:5070"));
    assert!(bye.contains(";tag=a"));
    deliver(&mut ep, &reply(&bye, 200, "a", "", ""), at + 5 * MS);
    let ev = events(&mut ep);
    let end = ended(&ev).unwrap();
    assert_eq!(end.outcome, Outcome::Answered);
    assert!(!end.hung_up_by_remote);
    assert_eq!(ep.active_calls(), 0);
}

#[test]
fn busy_is_acked_and_reported_with_its_code() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    deliver(&mut ep, &reply(&invite, 486, "b", "", ""), t0 + 5 * MS);
    let ack = sent(&mut ep).remove(0);
    assert!(ack.starts_with("ACK sip:+15551234567@127.0.0.1:5070"));
    let branch = |m: &str| {
        Message::parse(m.as_bytes())
            .unwrap()
            .top_via()
            .unwrap()
            .branch()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        branch(&ack),
        branch(&invite),
        "non-2xx ACK shares the INVITE's branch"
    );
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!((end.outcome, end.sip_code), (Outcome::Busy, Some(486)));
}

#[test]
fn ring_timeout_cancels_and_acks_the_487() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(Some(20), None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    deliver(&mut ep, &reply(&invite, 180, "r", "", ""), t0 + 10 * MS);
    let mut now = t0 + 10 * MS;
    // Drive timers: no retransmits after the 180, then the CANCEL at 20 s.
    while let Some(at) = ep.poll_timeout() {
        now = at;
        ep.handle_timeout(at);
        if !ep.transmits.is_empty() {
            break;
        }
    }
    assert_eq!(now, t0 + Duration::from_secs(20));
    let cancel = sent(&mut ep).remove(0);
    assert!(cancel.starts_with("CANCEL sip:+15551234567@127.0.0.1:5070"));
    assert!(cancel.contains("CSeq: 1 CANCEL"));
    deliver(&mut ep, &reply(&cancel, 200, "r", "", ""), now + MS);
    deliver(&mut ep, &reply(&invite, 487, "r", "", ""), now + 2 * MS);
    let out = sent(&mut ep);
    assert_eq!(out.iter().map(|m| method(m)).collect::<Vec<_>>(), ["ACK"]);
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!((end.outcome, end.sip_code), (Outcome::NoAnswer, Some(487)));
}

#[test]
fn hangup_before_any_provisional_waits_for_one_to_cancel() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let call = ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    ep.hangup(call, t0 + MS).unwrap();
    assert!(sent(&mut ep).is_empty(), "no CANCEL before a provisional");
    deliver(&mut ep, &reply(&invite, 100, "", "", ""), t0 + 2 * MS);
    let out = sent(&mut ep);
    assert_eq!(
        out.iter().map(|m| method(m)).collect::<Vec<_>>(),
        ["CANCEL"]
    );
}

/// A call ringing since `t0 + MS` (180 with tag `x`), and its INVITE.
fn ringing(t0: Instant) -> (Endpoint, CallHandle, String) {
    let mut ep = endpoint();
    let call = ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    deliver(&mut ep, &reply(&invite, 180, "x", "", ""), t0 + MS);
    (ep, call, invite)
}

#[test]
fn cancel_crossing_a_200_ends_in_ack_and_bye() {
    let t0 = Instant::now();
    let (mut ep, call, invite) = ringing(t0);
    ep.hangup(call, t0 + 2 * MS).unwrap();
    let cancel = sent(&mut ep).remove(0);
    // The 200 for the INVITE was already on its way.
    deliver(&mut ep, &reply(&invite, 200, "x", "", ""), t0 + 3 * MS);
    deliver(&mut ep, &reply(&cancel, 481, "x", "", ""), t0 + 4 * MS);
    let out = sent(&mut ep);
    assert_eq!(
        out.iter().map(|m| method(m)).collect::<Vec<_>>(),
        ["ACK", "BYE"]
    );
    deliver(&mut ep, &reply(&out[1], 200, "x", "", ""), t0 + 5 * MS);
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!(end.outcome, Outcome::Answered);
}

/// The ring timeout's CANCEL (`cancel_ringing`) crossed by a 200: the
/// person who picked up is kept (ACK, no BYE) and the call goes on until
/// the dialer hangs up; it used to be BYEd at once, a silent call.
#[test]
fn a_200_crossing_the_ring_timeouts_cancel_is_kept() {
    let t0 = Instant::now();
    let (mut ep, call, invite) = ringing(t0);
    ep.cancel_ringing(call, t0 + 2 * MS).unwrap();
    let cancel = sent(&mut ep).remove(0);
    assert_eq!(method(&cancel), "CANCEL");
    deliver(&mut ep, &reply(&invite, 200, "x", "", ""), t0 + 3 * MS);
    deliver(&mut ep, &reply(&cancel, 200, "x", "", ""), t0 + 4 * MS);
    let out = sent(&mut ep);
    assert_eq!(out.iter().map(|m| method(m)).collect::<Vec<_>>(), ["ACK"]);
    let evs = events(&mut ep);
    assert!(
        evs.iter().any(|e| matches!(e, Event::Answered { .. })),
        "{evs:?}"
    );
    assert!(ended(&evs).is_none(), "the call goes on: {evs:?}");
    // No timer of the CANCEL ends it later.
    let later = t0 + Duration::from_secs(120);
    while let Some(at) = ep.poll_timeout().filter(|at| *at <= later) {
        ep.handle_timeout(at);
    }
    assert!(ended(&events(&mut ep)).is_none());
    assert!(
        !sent(&mut ep).iter().any(|m| method(m) == "BYE"),
        "nothing hung up on its own"
    );
    // The dialer ends it when it is done with it.
    ep.hangup(call, later).unwrap();
    let out = sent(&mut ep);
    assert_eq!(out.iter().map(|m| method(m)).collect::<Vec<_>>(), ["BYE"]);
}

/// A ring-timeout CANCEL taken back by a plain hang-up (the campaign
/// stopped meanwhile): a crossing 200 is ACKed and BYEd as before.
#[test]
fn a_hangup_after_the_ring_timeouts_cancel_byes_a_crossing_200() {
    let t0 = Instant::now();
    let (mut ep, call, invite) = ringing(t0);
    ep.cancel_ringing(call, t0 + 2 * MS).unwrap();
    sent(&mut ep);
    ep.hangup(call, t0 + 3 * MS).unwrap();
    assert!(sent(&mut ep).is_empty(), "one CANCEL");
    deliver(&mut ep, &reply(&invite, 200, "x", "", ""), t0 + 4 * MS);
    let out = sent(&mut ep);
    assert_eq!(
        out.iter().map(|m| method(m)).collect::<Vec<_>>(),
        ["ACK", "BYE"]
    );
}

#[test]
fn forked_answers_first_2xx_wins_the_other_is_acked_and_byed() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    deliver(&mut ep, &reply(&invite, 180, "one", "", ""), t0 + MS);
    deliver(
        &mut ep,
        &reply(&invite, 183, "two", "", "v=0\r\n"),
        t0 + 2 * MS,
    );
    deliver(&mut ep, &reply(&invite, 200, "two", "", ""), t0 + 3 * MS);
    deliver(&mut ep, &reply(&invite, 200, "one", "", ""), t0 + 4 * MS);
    let out = sent(&mut ep);
    assert_eq!(
        out.iter().map(|m| method(m)).collect::<Vec<_>>(),
        ["ACK", "ACK", "BYE"]
    );
    assert!(out[0].starts_with("ACK sip:uas-two@"));
    assert!(out[1].starts_with("ACK sip:uas-one@"));
    assert!(out[2].starts_with("BYE sip:uas-one@") && out[2].contains("tag=one"));
    let answered: Vec<_> = events(&mut ep)
        .into_iter()
        .filter(|e| matches!(e, Event::Answered { .. }))
        .collect();
    assert_eq!(answered.len(), 1);
    assert_eq!(ep.active_calls(), 1);
}

#[test]
fn reliable_provisional_gets_a_prack_once() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    assert!(invite.contains("Supported: 100rel"));
    let rel = "Require: 100rel\r\nRSeq: 1\r\n";
    deliver(&mut ep, &reply(&invite, 183, "p", rel, "v=0\r\n"), t0 + MS);
    let prack = sent(&mut ep).remove(0);
    assert!(
        prack.starts_with("PRACK sip:uas-p@127.0.0.1:5070"),
        "{prack}"
    );
    assert!(prack.contains("RAck: 1 1 INVITE"));
    assert!(prack.contains("CSeq: 2 PRACK"));
    // The 183 retransmitted (same RSeq): no second PRACK.
    deliver(
        &mut ep,
        &reply(&invite, 183, "p", rel, "v=0\r\n"),
        t0 + 2 * MS,
    );
    assert!(sent(&mut ep).is_empty());
    deliver(
        &mut ep,
        &reply(&invite, 180, "p", "Require: 100rel\r\nRSeq: 2\r\n", ""),
        t0 + 3 * MS,
    );
    assert!(sent(&mut ep).remove(0).contains("RAck: 2 1 INVITE"));
}

#[test]
fn proxy_challenge_is_answered_once_with_a_new_cseq() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    let challenge = "Proxy-Authenticate: Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth\", algorithm=MD5\r\n";
    deliver(&mut ep, &reply(&invite, 407, "c", challenge, ""), t0 + MS);
    let out = sent(&mut ep);
    assert_eq!(
        out.iter().map(|m| method(m)).collect::<Vec<_>>(),
        ["ACK", "INVITE"]
    );
    let again = &out[1];
    assert!(again.contains("CSeq: 2 INVITE"));
    assert!(again.contains(
        "Proxy-Authorization: Digest username=\"user\", realm=\"carrier\", nonce=\"n1\""
    ));
    // Same credentials refused again and again: give up, rejected.
    deliver(&mut ep, &reply(again, 407, "c", challenge, ""), t0 + 2 * MS);
    let third = sent(&mut ep).remove(1);
    deliver(
        &mut ep,
        &reply(&third, 407, "c", challenge, ""),
        t0 + 3 * MS,
    );
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!((end.outcome, end.sip_code), (Outcome::Rejected, Some(407)));
}

#[test]
fn silent_trunk_is_a_network_failure_at_timer_b() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    sent(&mut ep);
    let mut invites = 0;
    while let Some(at) = ep.poll_timeout() {
        ep.handle_timeout(at);
        invites += sent(&mut ep).len();
        if ep.active_calls() == 0 {
            assert_eq!(at, t0 + Duration::from_secs(32));
            break;
        }
    }
    assert_eq!(invites, 6);
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!((end.outcome, end.sip_code), (Outcome::NetworkFailure, None));
}

#[test]
fn congestion_keeps_retry_after() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    deliver(
        &mut ep,
        &reply(&invite, 503, "c", "Retry-After: 120 (maintenance)\r\n", ""),
        t0 + MS,
    );
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!(end.outcome, Outcome::Congestion);
    assert_eq!(end.retry_after, Some(Duration::from_secs(120)));
}

/// An answered call and a closure building in-dialog requests from the
/// far end (method, CSeq, body).
fn answered_call(ep: &mut Endpoint, t0: Instant) -> impl Fn(&str, u32, &str) -> String + use<> {
    answered_call_with(ep, t0, "")
}

/// [`answered_call`] with `headers` in the far end's 200.
fn answered_call_with(
    ep: &mut Endpoint,
    t0: Instant,
    headers: &str,
) -> impl Fn(&str, u32, &str) -> String + use<> {
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(ep).remove(0);
    deliver(ep, &reply(&invite, 200, "d", headers, ""), t0 + MS);
    sent(ep);
    events(ep);
    let m = Message::parse(invite.as_bytes()).unwrap();
    let call_id = m.call_id().unwrap().to_string();
    let local_tag = m.from().unwrap().tag().unwrap().to_string();
    move |method: &str, cseq: u32, body: &str| {
        format!(
            "{method} sip:outdial@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{method}{cseq}\r\nFrom: <sip:x@127.0.0.1>;tag=d\r\nTo: <sip:+15551230000@127.0.0.1>;tag={local_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:uas-d@127.0.0.1:5070>\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }
}

/// The carrier putting us on hold: RFC 3264 `a=sendonly` from its media address.
const HOLD_SDP: &str = "v=0\r\no=carrier 9 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";

fn sdp_body(response: &str) -> crate::sdp::SessionDescription {
    let m = Message::parse(response.as_bytes()).unwrap();
    crate::sdp::SessionDescription::parse(m.body).unwrap()
}

fn media_changes(ep: &mut Endpoint) -> Vec<Negotiated> {
    events(ep)
        .into_iter()
        .filter_map(|e| match e {
            Event::MediaChanged { media, .. } => Some(media),
            _ => None,
        })
        .collect()
}

#[test]
fn remote_bye_and_reinvite_are_answered() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let in_dialog = answered_call(&mut ep, t0);
    deliver(
        &mut ep,
        in_dialog("INVITE", 10, HOLD_SDP).as_bytes(),
        t0 + 2 * MS,
    );
    let out = sent(&mut ep);
    assert!(out[0].starts_with("SIP/2.0 100"));
    assert!(out[1].starts_with("SIP/2.0 200") && out[1].contains("m=audio 20000"));
    // Until the ACK, the 200 is retransmitted.
    ep.handle_timeout(t0 + 502 * MS);
    assert!(sent(&mut ep)[0].starts_with("SIP/2.0 200"));
    let ack = in_dialog("ACK", 10, "").replace("branch=z9hG4bKACK10", "branch=z9hG4bKack");
    deliver(&mut ep, ack.as_bytes(), t0 + 600 * MS);
    ep.handle_timeout(t0 + 1600 * MS);
    assert!(sent(&mut ep).is_empty(), "ACKed: no more 200s");
    deliver(&mut ep, in_dialog("INFO", 11, "").as_bytes(), t0 + 2 * MS);
    assert!(sent(&mut ep)[0].starts_with("SIP/2.0 200"));
    deliver(&mut ep, in_dialog("BYE", 12, "").as_bytes(), t0 + 3 * MS);
    assert!(sent(&mut ep)[0].starts_with("SIP/2.0 200"));
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert!(end.hung_up_by_remote);
}

/// RFC 3261 §12.2.2: a re-INVITE from a far end that moved (a new
/// Contact) is a target refresh — our BYE goes to the new address.
#[test]
fn a_reinvite_with_a_new_contact_moves_where_our_bye_goes() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let in_dialog = answered_call(&mut ep, t0);
    let moved = in_dialog("INVITE", 10, HOLD_SDP).replace(
        "Contact: <sip:uas-d@127.0.0.1:5070>",
        "Contact: <sip:moved@127.0.0.2:5072>",
    );
    deliver(&mut ep, moved.as_bytes(), t0 + 2 * MS);
    assert!(sent(&mut ep).iter().any(|r| r.starts_with("SIP/2.0 200")));
    let handle = *ep.calls.keys().next().unwrap();
    ep.hangup(handle, t0 + 3 * MS).unwrap();
    let bye = std::iter::from_fn(|| ep.poll_transmit())
        .find(|t| t.payload.starts_with(b"BYE"))
        .expect("a BYE");
    assert!(
        bye.payload
            .starts_with(b"BYE sip:moved@127.0.0.2:5072 SIP/2.0"),
        "{}",
        String::from_utf8_lossy(&bye.payload)
    );
    assert_eq!(bye.destination, "127.0.0.2:5072".parse().unwrap());
}

#[test]
fn a_reinvite_before_the_answer_gets_491_and_the_call_goes_on() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    deliver(&mut ep, &reply(&invite, 180, "d", "", ""), t0 + MS);
    sent(&mut ep);
    events(&mut ep);
    let m = Message::parse(invite.as_bytes()).unwrap();
    let call_id = m.call_id().unwrap().to_string();
    let local_tag = m.from().unwrap().tag().unwrap().to_string();
    let reinvite = format!(
        "INVITE sip:outdial@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKearly\r\nFrom: <sip:x@127.0.0.1>;tag=d\r\nTo: <sip:+15551230000@127.0.0.1>;tag={local_tag}\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:uas-d@127.0.0.1:5070>\r\nContent-Length: {}\r\n\r\n{HOLD_SDP}",
        HOLD_SDP.len()
    );
    deliver(&mut ep, reinvite.as_bytes(), t0 + 2 * MS);
    let out = sent(&mut ep);
    assert!(out.iter().any(|r| r.starts_with("SIP/2.0 491")), "{out:?}");
    assert!(!out.iter().any(|r| r.starts_with("SIP/2.0 200")), "{out:?}");
    assert!(media_changes(&mut ep).is_empty(), "no media negotiated");
    // The call is answered as usual afterwards.
    deliver(&mut ep, &reply(&invite, 200, "d", "", ""), t0 + 3 * MS);
    let out = sent(&mut ep);
    assert!(out.iter().any(|r| method(r) == "ACK"), "{out:?}");
    assert!(
        events(&mut ep)
            .iter()
            .any(|e| matches!(e, Event::Answered { .. })),
        "answered"
    );
}

#[test]
fn a_hold_reinvite_is_answered_recvonly_and_the_leg_is_told() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let in_dialog = answered_call(&mut ep, t0);
    deliver(
        &mut ep,
        in_dialog("INVITE", 10, HOLD_SDP).as_bytes(),
        t0 + 2 * MS,
    );
    let out = sent(&mut ep);
    let answer = sdp_body(&out[1]);
    assert_eq!(answer.media[0].direction(), Direction::RecvOnly);
    assert_eq!(
        answer.media[0].formats,
        ["8", "101"],
        "one codec: the offerer's first"
    );
    assert_eq!(answer.origin.session_version, 2, "our offer was version 1");
    let changes = media_changes(&mut ep);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].direction, Direction::RecvOnly);
    assert_eq!(changes[0].remote, Some("127.0.0.1:30000".parse().unwrap()));
    // Taken off hold: sendrecv again, the version one on.
    let unhold = HOLD_SDP.replace("a=sendonly", "a=sendrecv");
    deliver(
        &mut ep,
        in_dialog("INVITE", 11, &unhold).as_bytes(),
        t0 + 3 * MS,
    );
    let out = sent(&mut ep);
    let answer = sdp_body(&out[1]);
    assert_eq!(answer.media[0].direction(), Direction::SendRecv);
    assert_eq!(answer.origin.session_version, 3);
    assert_eq!(media_changes(&mut ep)[0].direction, Direction::SendRecv);
    // An UPDATE with the same offer is a refresh: same SDP, same version.
    deliver(
        &mut ep,
        in_dialog("UPDATE", 12, &unhold).as_bytes(),
        t0 + 4 * MS,
    );
    let out = sent(&mut ep);
    assert!(out[0].starts_with("SIP/2.0 200"));
    assert_eq!(sdp_body(&out[0]).origin.session_version, 3);
}

#[test]
fn an_unusable_reoffer_gets_488_and_the_call_goes_on() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let in_dialog = answered_call(&mut ep, t0);
    let g729 = HOLD_SDP
        .replace("RTP/AVP 8 0 101", "RTP/AVP 18")
        .replace("a=rtpmap:101 telephone-event/8000", "a=rtpmap:18 G729/8000");
    deliver(
        &mut ep,
        in_dialog("INVITE", 10, &g729).as_bytes(),
        t0 + 2 * MS,
    );
    let out = sent(&mut ep);
    assert!(out[1].starts_with("SIP/2.0 488"), "{}", out[1]);
    assert!(out[1].contains("Warning: 399 outdial \"no common audio codec"));
    deliver(
        &mut ep,
        in_dialog("UPDATE", 11, "v=0\r\n").as_bytes(),
        t0 + 3 * MS,
    );
    assert!(sent(&mut ep)[0].starts_with("SIP/2.0 488"));
    assert!(media_changes(&mut ep).is_empty());
    // The dialog survives: a BYE still ends it.
    deliver(&mut ep, in_dialog("BYE", 12, "").as_bytes(), t0 + 4 * MS);
    assert!(sent(&mut ep)[0].starts_with("SIP/2.0 200"));
    assert!(ended(&events(&mut ep)).is_some());
}

#[test]
fn an_offerless_reinvite_gets_our_offer_and_the_ack_answers_it() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let in_dialog = answered_call(&mut ep, t0);
    deliver(&mut ep, in_dialog("INVITE", 10, "").as_bytes(), t0 + 2 * MS);
    let out = sent(&mut ep);
    let offer = sdp_body(&out[1]);
    assert_eq!(offer.media[0].port, 20000);
    assert!(
        media_changes(&mut ep).is_empty(),
        "nothing changes before the answer"
    );
    let ack = in_dialog("ACK", 10, HOLD_SDP).replace("branch=z9hG4bKACK10", "branch=z9hG4bKack");
    deliver(&mut ep, ack.as_bytes(), t0 + 3 * MS);
    let changes = media_changes(&mut ep);
    assert_eq!(changes.len(), 1);
    // The answer says sendonly: the far end only sends, so we only receive.
    assert_eq!(changes[0].direction, Direction::RecvOnly);
}

#[test]
fn strangers_get_403_options_get_200_garbage_is_counted() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let stranger = "INVITE sip:outdial@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKs;rport\r\nFrom: <sip:evil@10.9.9.9>;tag=e\r\nTo: <sip:outdial@127.0.0.1>\r\nCall-ID: stranger\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    ep.handle_datagram(
        "10.9.9.9:5060".parse().unwrap(),
        TransportKind::Udp,
        stranger.as_bytes(),
        t0,
    );
    let out = sent(&mut ep);
    assert!(out[0].starts_with("SIP/2.0 100"));
    assert!(out[1].starts_with("SIP/2.0 403"));
    assert!(out[1].contains("rport=5060;received=10.9.9.9"));
    ep.handle_datagram(trunk(), TransportKind::Udp, b"\x00\xffgarbage\r\n\r\n", t0);
    ep.handle_datagram(
        trunk(),
        TransportKind::Udp,
        b"INVITE sip:x SIP/2.0\r\n\r\n",
        t0,
    );
    assert_eq!(ep.stats().malformed, 2);
    let options = stranger
        .replace("INVITE", "OPTIONS")
        .replace("branch=z9hG4bKs", "branch=z9hG4bKo");
    ep.handle_datagram(trunk(), TransportKind::Udp, options.as_bytes(), t0);
    assert!(sent(&mut ep)[0].starts_with("SIP/2.0 200"));
}

#[test]
fn ping_reports_the_code_or_a_timeout() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let id = ep.ping("sip:127.0.0.1:5070", trunk(), TransportKind::Udp, t0);
    let options = sent(&mut ep).remove(0);
    deliver(&mut ep, &reply(&options, 200, "o", "", ""), t0 + MS);
    assert_eq!(
        events(&mut ep),
        [Event::PingResult {
            id,
            code: Some(200)
        }]
    );
    let id = ep.ping("sip:127.0.0.1:5070", trunk(), TransportKind::Udp, t0);
    while let Some(at) = ep.poll_timeout() {
        ep.handle_timeout(at);
    }
    assert_eq!(events(&mut ep), [Event::PingResult { id, code: None }]);
}

#[test]
fn a_100_alone_allows_cancel_and_a_silent_cancel_gives_up_after_64_t1() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(Some(20), None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    deliver(&mut ep, &reply(&invite, 100, "", "", ""), t0 + MS);
    let mut cancel_at = None;
    while let Some(at) = ep.poll_timeout() {
        ep.handle_timeout(at);
        for message in sent(&mut ep) {
            if method(&message) == "CANCEL" {
                cancel_at.get_or_insert(at);
            }
        }
        if ep.active_calls() == 0 {
            assert_eq!(at, t0 + Duration::from_secs(20 + 32));
            break;
        }
    }
    assert_eq!(cancel_at, Some(t0 + Duration::from_secs(20)));
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!((end.outcome, end.sip_code), (Outcome::NoAnswer, None));
    assert!(
        ep.clients.keys().all(|(_, m)| *m != "INVITE"),
        "no INVITE transaction left behind"
    );
}

#[test]
fn session_timer_refresher_uac_sends_update_at_half_the_interval() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    assert!(invite.contains("Supported: 100rel, timer"));
    let timer = "Session-Expires: 120;refresher=uac\r\nRequire: timer\r\n";
    deliver(&mut ep, &reply(&invite, 200, "s", timer, ""), t0 + MS);
    sent(&mut ep);
    let (at, update) = loop {
        let at = ep.poll_timeout().unwrap();
        ep.handle_timeout(at);
        if let Some(update) = sent(&mut ep).pop() {
            break (at, update);
        }
    };
    assert_eq!(at, t0 + MS + Duration::from_secs(60));
    assert!(
        update.starts_with("UPDATE sip:uas-s@127.0.0.1:5070"),
        "{update}"
    );
    assert!(update.contains("Session-Expires: 120;refresher=uac"));
    // The far end lost the dialog: 481 ends the call with a BYE.
    deliver(&mut ep, &reply(&update, 481, "s", "", ""), at + MS);
    assert_eq!(method(&sent(&mut ep)[0]), "BYE");
}

/// The carrier's answer to a refresh re-INVITE: its media, unchanged.
const REFRESH_ANSWER: &str = "v=0\r\no=carrier 9 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// The first request the endpoint sends as its timers run from `after`,
/// with when (responses it retransmits meanwhile are skipped).
fn next_sent(ep: &mut Endpoint, after: Instant) -> (Instant, String) {
    loop {
        let at = ep.poll_timeout().unwrap().max(after);
        ep.handle_timeout(at);
        if let Some(message) = sent(ep).into_iter().find(|m| !m.starts_with("SIP/2.0")) {
            return (at, message);
        }
    }
}

fn cseq_of(message: &str) -> String {
    Message::parse(message.as_bytes())
        .unwrap()
        .header("CSeq")
        .unwrap()
        .to_string()
}

/// RFC 4028 §7.4: a far end that refuses UPDATE (405) is refreshed by
/// re-INVITE at once and from then on — our description unchanged, down to
/// its `o=` version — and the re-INVITE's 2xx is ACKed with its CSeq.
#[test]
fn a_far_end_that_refuses_update_is_refreshed_by_reinvite() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    let timer = "Session-Expires: 120;refresher=uac\r\nRequire: timer\r\n";
    deliver(&mut ep, &reply(&invite, 200, "s", timer, ""), t0 + MS);
    sent(&mut ep);
    events(&mut ep);
    let (at, update) = next_sent(&mut ep, t0);
    assert_eq!(method(&update), "UPDATE");
    deliver(&mut ep, &reply(&update, 405, "s", "", ""), at + MS);
    let out = sent(&mut ep);
    let reinvite = out
        .iter()
        .find(|m| method(m) == "INVITE")
        .unwrap_or_else(|| panic!("no re-INVITE after the 405: {out:?}"))
        .clone();
    assert!(
        reinvite.starts_with("INVITE sip:uas-s@127.0.0.1:5070"),
        "{reinvite}"
    );
    assert!(reinvite.contains("Session-Expires: 120;refresher=uac"));
    assert!(reinvite.contains(";tag=s"), "in the dialog: {reinvite}");
    assert_eq!(
        sdp_body(&reinvite),
        crate::sdp::SessionDescription::parse(&request(None, None).sdp).unwrap(),
        "the same description, the same o= version"
    );
    let cseq = cseq_of(&reinvite);
    let ok = reply(
        &reinvite,
        200,
        "s",
        "Content-Type: application/sdp\r\n",
        REFRESH_ANSWER,
    );
    deliver(&mut ep, &ok, at + 2 * MS);
    let ack = sent(&mut ep)
        .into_iter()
        .find(|m| method(m) == "ACK")
        .expect("the 2xx ACKed");
    assert_eq!(cseq_of(&ack), cseq.replace("INVITE", "ACK"));
    assert_eq!(media_changes(&mut ep).len(), 1, "the answer taken");
    // A retransmitted 2xx is ACKed again, the media not changed twice.
    deliver(&mut ep, &ok, at + 3 * MS);
    assert!(sent(&mut ep).iter().any(|m| method(m) == "ACK"));
    assert!(media_changes(&mut ep).is_empty());
    // The next refresh is a re-INVITE too.
    let (_, next) = next_sent(&mut ep, at + 4 * MS);
    assert_eq!(method(&next), "INVITE", "{next}");
    assert_eq!(ep.active_calls(), 1);
}

/// A far end whose `Allow` leaves UPDATE out is refreshed by re-INVITE
/// from the first refresh; a 491 (its own re-INVITE crossed ours) is
/// tried again 2.1–4 s later, its re-INVITE meanwhile gets 491, and 481
/// ends the session with a BYE.
#[test]
fn a_far_end_without_update_is_refreshed_by_reinvite_and_glare_is_retried() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    let m = Message::parse(invite.as_bytes()).unwrap();
    let (call_id, local_tag) = (
        m.call_id().unwrap().to_string(),
        m.from().unwrap().tag().unwrap().to_string(),
    );
    let headers = "Session-Expires: 120;refresher=uac\r\nAllow: INVITE, ACK, CANCEL, BYE\r\n";
    deliver(&mut ep, &reply(&invite, 200, "s", headers, ""), t0 + MS);
    sent(&mut ep);
    let (at, reinvite) = next_sent(&mut ep, t0);
    assert_eq!(method(&reinvite), "INVITE", "{reinvite}");
    assert_eq!(at, t0 + MS + Duration::from_secs(60));
    // The far end's own re-INVITE while ours is pending: 491.
    let theirs = format!(
        "INVITE sip:outdial@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKglare\r\nFrom: <sip:x@127.0.0.1>;tag=s\r\nTo: <sip:+15551230000@127.0.0.1>;tag={local_tag}\r\nCall-ID: {call_id}\r\nCSeq: 7 INVITE\r\nContact: <sip:uas-s@127.0.0.1:5070>\r\nContent-Length: {}\r\n\r\n{HOLD_SDP}",
        HOLD_SDP.len()
    );
    deliver(&mut ep, theirs.as_bytes(), at + MS);
    assert!(
        sent(&mut ep).iter().any(|r| r.starts_with("SIP/2.0 491")),
        "glare answered 491"
    );
    // Ours refused 491 as well: ACKed on its branch, tried again later.
    deliver(&mut ep, &reply(&reinvite, 491, "s", "", ""), at + 2 * MS);
    let ack = sent(&mut ep)
        .into_iter()
        .find(|m| method(m) == "ACK")
        .expect("the 491 ACKed");
    let branch = |m: &str| {
        Message::parse(m.as_bytes())
            .unwrap()
            .top_via()
            .unwrap()
            .branch()
            .unwrap()
            .to_string()
    };
    assert_eq!(branch(&ack), branch(&reinvite));
    assert_eq!(cseq_of(&ack), cseq_of(&reinvite).replace("INVITE", "ACK"));
    let (again_at, again) = next_sent(&mut ep, at + 3 * MS);
    assert_eq!(method(&again), "INVITE", "{again}");
    let waited = again_at - (at + 2 * MS);
    assert!(
        waited >= Duration::from_millis(2100) && waited <= Duration::from_millis(4000),
        "{waited:?}"
    );
    assert_ne!(cseq_of(&again), cseq_of(&reinvite), "a new CSeq");
    // The far end forgot the dialog: BYE.
    deliver(&mut ep, &reply(&again, 481, "s", "", ""), again_at + MS);
    assert!(sent(&mut ep).iter().any(|m| method(m) == "BYE"));
}

#[test]
fn registrar_nonces_come_from_the_secret_key_not_the_seed() {
    let mut a = endpoint();
    let mut b = endpoint();
    b.config.nonce_key = [8; 32];
    let (first, second) = (a.fresh_nonce(), a.fresh_nonce());
    assert_eq!(first.len(), 32);
    assert!(first.bytes().all(|c| c.is_ascii_hexdigit()), "{first}");
    assert_ne!(first, second);
    // Same seed, another key: nothing in common.
    assert_ne!(b.fresh_nonce(), first);
}

/// `request` (from an `answered_call` closure) with `headers` added.
fn with_headers(request: String, headers: &str) -> String {
    request.replacen("Contact: ", &format!("{headers}Contact: "), 1)
}

/// RFC 4028 §10: when the far end is the refresher (`refresher=uas` in its
/// 200) and stops refreshing, we BYE the session a third of the interval
/// or 32 s before it expires; each refresh it sends (answered with the
/// refresher named and `Require: timer`) puts that off by an interval.
#[test]
fn a_session_the_far_end_stops_refreshing_is_ended_with_a_bye() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let in_dialog = answered_call_with(
        &mut ep,
        t0,
        "Session-Expires: 120;refresher=uas\r\nRequire: timer\r\n",
    );
    // The far end refreshes at 50 s (no refresher named, timers supported).
    let update = with_headers(
        in_dialog("UPDATE", 10, ""),
        "Session-Expires: 120\r\nSupported: timer\r\n",
    );
    deliver(&mut ep, update.as_bytes(), t0 + Duration::from_secs(50));
    let ok = sent(&mut ep).remove(0);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(
        ok.contains("Session-Expires: 120;refresher=uac\r\n"),
        "{ok}"
    );
    assert!(ok.contains("Require: timer\r\n"), "{ok}");
    // Then nothing: the BYE 88 s (120 − 32) after that refresh, and no
    // refresh of ours before it.
    let (at, bye) = next_sent(&mut ep, t0 + Duration::from_secs(50));
    assert_eq!(method(&bye), "BYE", "{bye}");
    assert_eq!(at, t0 + Duration::from_secs(50 + 88));
    deliver(&mut ep, &reply(&bye, 200, "d", "", ""), at + MS);
    let end = ended(&events(&mut ep)).cloned().expect("the call ended");
    assert!(!end.hung_up_by_remote);
    assert!(end.reason.contains("session expired"), "{end:?}");
    assert_eq!(ep.active_calls(), 0);
}

/// A far end's refresh can hand the refreshing to us (`refresher=uas` in
/// its request): we refresh at half the interval and never BYE on our own;
/// a far end's refresh without `Session-Expires` turns its timer off.
#[test]
fn the_refresher_follows_each_refresh() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let in_dialog = answered_call_with(
        &mut ep,
        t0,
        "Session-Expires: 90;refresher=uas\r\nRequire: timer\r\n",
    );
    let update = with_headers(
        in_dialog("UPDATE", 10, ""),
        "Session-Expires: 300;refresher=uas\r\n",
    );
    deliver(&mut ep, update.as_bytes(), t0 + Duration::from_secs(10));
    let ok = sent(&mut ep).remove(0);
    assert!(
        ok.contains("Session-Expires: 300;refresher=uas\r\n"),
        "{ok}"
    );
    assert!(!ok.contains("Require: timer"), "{ok}");
    let (at, ours) = next_sent(&mut ep, t0 + Duration::from_secs(10));
    assert_eq!(method(&ours), "UPDATE", "{ours}");
    assert_eq!(at, t0 + Duration::from_secs(10 + 150));
    assert!(
        ours.contains("Session-Expires: 300;refresher=uac"),
        "{ours}"
    );
    let timer = "Session-Expires: 300;refresher=uac\r\n";
    deliver(&mut ep, &reply(&ours, 200, "d", timer, ""), at + MS);
    // The far end takes it back, then refreshes once more without a timer.
    let update = with_headers(
        in_dialog("UPDATE", 11, ""),
        "Session-Expires: 90;refresher=uac\r\n",
    );
    let back = at + 2 * MS;
    deliver(&mut ep, update.as_bytes(), back);
    assert!(sent(&mut ep).iter().any(|m| m.starts_with("SIP/2.0 200")));
    // (Its BYE would be due 60 s later; `a_session_the_far_end_stops_…`
    // tests that.) Then a refresh without a timer.
    deliver(&mut ep, in_dialog("UPDATE", 12, "").as_bytes(), back + MS);
    let ok = sent(&mut ep)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .expect("answered");
    assert!(!ok.contains("Session-Expires"), "{ok}");
    ep.handle_timeout(back + Duration::from_secs(3600));
    assert!(
        sent(&mut ep)
            .iter()
            .all(|m| method(m) != "BYE" && method(m) != "UPDATE"),
        "no timer: neither a BYE nor a refresh of ours"
    );
    assert_eq!(ep.active_calls(), 1);
}

/// RFC 4028 §8.1: a far end's refresh asking for less than 90 s gets 422
/// with our Min-SE, and changes nothing (its session timer nor its media);
/// the same refresh at 90 s is taken.
#[test]
fn a_refresh_under_90_s_is_refused_with_422_and_our_min_se() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let in_dialog = answered_call_with(
        &mut ep,
        t0,
        "Session-Expires: 1800;refresher=uas\r\nRequire: timer\r\n",
    );
    let update = with_headers(
        in_dialog("UPDATE", 10, ""),
        "Session-Expires: 60;refresher=uac\r\n",
    );
    deliver(&mut ep, update.as_bytes(), t0 + Duration::from_secs(10));
    let refused = sent(&mut ep).remove(0);
    assert!(
        refused.starts_with("SIP/2.0 422 Session Interval Too Small"),
        "{refused}"
    );
    assert!(refused.contains("\r\nMin-SE: 90\r\n"), "{refused}");
    // The 1800-s session stands: no BYE at 60 s or at 90 s.
    ep.handle_timeout(t0 + Duration::from_secs(200));
    assert!(
        sent(&mut ep).iter().all(|m| method(m) != "BYE"),
        "the refused interval was not taken"
    );
    let update = with_headers(
        in_dialog("UPDATE", 11, ""),
        "Session-Expires: 90;refresher=uac\r\n",
    );
    deliver(&mut ep, update.as_bytes(), t0 + Duration::from_secs(201));
    let ok = sent(&mut ep).remove(0);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains("Session-Expires: 90;refresher=uac"), "{ok}");
}

/// RFC 4028 §7.4: a 422 to our refresh is followed once — at once, with the
/// far end's `Min-SE` as the interval and in a `Min-SE` header — and the
/// next refresh comes at half that interval. A 422 asking for no more than
/// we sent is not followed (it would loop).
#[test]
fn a_422_to_our_refresh_is_retried_with_its_min_se() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    let timer = "Session-Expires: 120;refresher=uac\r\nRequire: timer\r\n";
    deliver(&mut ep, &reply(&invite, 200, "s", timer, ""), t0 + MS);
    sent(&mut ep);
    let (at, update) = next_sent(&mut ep, t0);
    assert_eq!(method(&update), "UPDATE");
    deliver(
        &mut ep,
        &reply(&update, 422, "s", "Min-SE: 1800\r\n", ""),
        at + MS,
    );
    let again = sent(&mut ep)
        .into_iter()
        .find(|m| method(m) == "UPDATE")
        .expect("refreshed again at once");
    assert!(
        again.contains("Session-Expires: 1800;refresher=uac\r\n"),
        "{again}"
    );
    assert!(again.contains("Min-SE: 1800\r\n"), "{again}");
    deliver(
        &mut ep,
        &reply(
            &again,
            200,
            "s",
            "Session-Expires: 1800;refresher=uac\r\n",
            "",
        ),
        at + 2 * MS,
    );
    let (next_at, next) = next_sent(&mut ep, at + 2 * MS);
    assert_eq!(method(&next), "UPDATE");
    assert_eq!(next_at, at + 2 * MS + Duration::from_secs(900));
    // A 422 asking for less than we sent: not followed.
    deliver(
        &mut ep,
        &reply(&next, 422, "s", "Min-SE: 600\r\n", ""),
        next_at + MS,
    );
    assert!(sent(&mut ep).iter().all(|m| method(m) != "UPDATE"));
    assert_eq!(ep.active_calls(), 1);
}

/// The same for a refresh by re-INVITE: the 422 is ACKed and the re-INVITE
/// sent again at once with the far end's `Min-SE`.
#[test]
fn a_422_to_our_refresh_reinvite_is_retried_with_its_min_se() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request(None, None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    let headers = "Session-Expires: 120;refresher=uac\r\nAllow: INVITE, ACK, CANCEL, BYE\r\n";
    deliver(&mut ep, &reply(&invite, 200, "s", headers, ""), t0 + MS);
    sent(&mut ep);
    let (at, reinvite) = next_sent(&mut ep, t0);
    assert_eq!(method(&reinvite), "INVITE", "{reinvite}");
    deliver(
        &mut ep,
        &reply(&reinvite, 422, "s", "Min-SE: 600\r\n", ""),
        at + MS,
    );
    let out = sent(&mut ep);
    assert!(out.iter().any(|m| method(m) == "ACK"), "{out:?}");
    let again = out
        .iter()
        .find(|m| method(m) == "INVITE")
        .unwrap_or_else(|| panic!("re-INVITE again at once: {out:?}"));
    assert!(
        again.contains("Session-Expires: 600;refresher=uac\r\n"),
        "{again}"
    );
    assert!(again.contains("Min-SE: 600\r\n"), "{again}");
    assert_ne!(cseq_of(again), cseq_of(&reinvite));
}

pub(super) fn registration_request(expires: u64) -> RegistrationRequest {
    RegistrationRequest {
        registrar: "sip:carrier.example.net".into(),
        aor: "sip:user@carrier.example.net".into(),
        contact_user: "user".into(),
        destination: trunk(),
        alternates: Vec::new(),
        transport: TransportKind::Udp,
        credentials: Some(Credentials {
            username: "user".into(),
            password: "secret".into(),
        }),
        expires: Duration::from_secs(expires),
    }
}

fn registration_states(ep: &mut Endpoint) -> Vec<RegistrationState> {
    events(ep)
        .into_iter()
        .filter_map(|e| match e {
            Event::TrunkRegistration { state, .. } => Some(state),
            _ => None,
        })
        .collect()
}

/// RFC 3261 §10.2: a trunk that wants us registered challenges the
/// REGISTER; the answer (digest over REGISTER and the registrar's URI) goes
/// in the same Call-ID with the next CSeq; the binding granted by the
/// 200's Contact is renewed a quarter of it before it lapses.
#[test]
fn a_trunk_registration_is_challenged_bound_and_renewed() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.register(registration_request(3600), t0);
    let first = sent(&mut ep).remove(0);
    assert!(
        first.starts_with("REGISTER sip:carrier.example.net SIP/2.0\r\n"),
        "{first}"
    );
    assert!(first.contains("\r\nExpires: 3600\r\n"), "{first}");
    assert!(
        first.contains("\r\nContact: <sip:user@127.0.0.1:5060>\r\n"),
        "{first}"
    );
    assert!(
        first.contains("\r\nTo: <sip:user@carrier.example.net>\r\n"),
        "{first}"
    );
    let challenge = "WWW-Authenticate: Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth\"\r\n";
    deliver(&mut ep, &reply(&first, 401, "r", challenge, ""), t0 + MS);
    let second = sent(&mut ep).remove(0);
    let m = Message::parse(second.as_bytes()).unwrap();
    assert_eq!(
        m.call_id(),
        Message::parse(first.as_bytes()).unwrap().call_id()
    );
    assert_eq!(m.header("CSeq"), Some("2 REGISTER"));
    let credentials =
        crate::sip::auth::DigestParams::parse(m.header("Authorization").unwrap()).unwrap();
    assert_eq!(credentials.get("uri"), Some("sip:carrier.example.net"));
    assert!(crate::sip::auth::verify(
        &credentials,
        "REGISTER",
        "carrier",
        "n1",
        "secret"
    ));
    assert!(registration_states(&mut ep).is_empty(), "no outcome yet");
    let bound = "Contact: <sip:user@127.0.0.1:5060>;expires=120\r\n";
    deliver(&mut ep, &reply(&second, 200, "r", bound, ""), t0 + 2 * MS);
    assert_eq!(
        registration_states(&mut ep),
        [RegistrationState::Registered {
            expires: Duration::from_secs(120)
        }]
    );
    let (at, renewal) = next_sent(&mut ep, t0 + 2 * MS);
    assert_eq!(at, t0 + 2 * MS + Duration::from_secs(90));
    assert!(renewal.starts_with("REGISTER "), "{renewal}");
    assert!(renewal.contains("\r\nCSeq: 3 REGISTER\r\n"), "{renewal}");
    assert!(
        !renewal.contains("Authorization"),
        "a fresh challenge: {renewal}"
    );
    assert_eq!(ep.registrations(), 1);
}

/// A registrar that refuses, asks for a longer binding (423) or does not
/// answer is tried again — at once with its Min-Expires, after its
/// Retry-After, else after 30 s doubling — and at shutdown the binding is
/// removed with `Expires: 0`, leaving nothing behind.
#[test]
fn a_failing_registrar_is_tried_again_and_the_binding_removed_at_shutdown() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.register(registration_request(60), t0);
    let first = sent(&mut ep).remove(0);
    deliver(&mut ep, &reply(&first, 403, "r", "", ""), t0 + MS);
    assert!(matches!(
        registration_states(&mut ep)[..],
        [RegistrationState::Failed { code: Some(403), retry_in, .. }] if retry_in == Duration::from_secs(30)
    ));
    let (at, again) = next_sent(&mut ep, t0 + MS);
    assert_eq!(at, t0 + MS + Duration::from_secs(30));
    deliver(
        &mut ep,
        &reply(&again, 423, "r", "Min-Expires: 300\r\n", ""),
        at + MS,
    );
    let longer = sent(&mut ep).remove(0);
    assert!(longer.contains("\r\nExpires: 300\r\n"), "{longer}");
    deliver(
        &mut ep,
        &reply(&longer, 503, "r", "Retry-After: 5\r\n", ""),
        at + 2 * MS,
    );
    assert!(matches!(
        registration_states(&mut ep)[..],
        [RegistrationState::Failed { code: Some(503), retry_in, .. }] if retry_in == Duration::from_secs(5)
    ));
    let (at, unanswered) = next_sent(&mut ep, at + 2 * MS);
    assert!(unanswered.starts_with("REGISTER "), "{unanswered}");
    // Nothing answers: retransmissions, then Timer F; the third failure
    // waits 120 s.
    let mut failed = Vec::new();
    let mut now = at;
    while failed.is_empty() {
        now = ep.poll_timeout().unwrap();
        ep.handle_timeout(now);
        sent(&mut ep);
        failed = registration_states(&mut ep);
    }
    assert!(matches!(
        failed[..],
        [RegistrationState::Failed { code: None, retry_in, .. }] if retry_in == Duration::from_secs(120)
    ));
    let (at, last) = next_sent(&mut ep, now);
    assert_eq!(at, now + Duration::from_secs(120));
    deliver(
        &mut ep,
        &reply(&last, 200, "r", "Expires: 300\r\n", ""),
        at + MS,
    );
    assert_eq!(
        registration_states(&mut ep),
        [RegistrationState::Registered {
            expires: Duration::from_secs(300)
        }]
    );
    ep.unregister_all(at + 2 * MS);
    let removal = sent(&mut ep).remove(0);
    assert!(removal.contains("\r\nExpires: 0\r\n"), "{removal}");
    deliver(&mut ep, &reply(&removal, 200, "r", "", ""), at + 3 * MS);
    assert_eq!(
        registration_states(&mut ep),
        [RegistrationState::Unregistered]
    );
    assert_eq!(ep.registrations(), 0);
    // Only the transactions' own timers are left, then nothing.
    ep.handle_timeout(at + Duration::from_secs(3600));
    assert!(sent(&mut ep).is_empty());
    assert_eq!(ep.poll_timeout(), None);
}

// ---- failing over to the next hop's next address (RFC 3263 §4.3) -------

fn sbc(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, n], 5070))
}

/// What the endpoint sent, with where to.
fn sent_to(ep: &mut Endpoint) -> Vec<(SocketAddr, String)> {
    std::iter::from_fn(|| ep.poll_transmit())
        .map(|t| (t.destination, String::from_utf8(t.payload).unwrap()))
        .collect()
}

fn header<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap()
}

fn branch_of(text: &str) -> String {
    Message::parse(text.as_bytes())
        .unwrap()
        .top_via()
        .unwrap()
        .branch()
        .unwrap()
        .to_string()
}

fn request_with_alternates(alternates: &[SocketAddr]) -> InviteRequest {
    InviteRequest {
        destination: sbc(1),
        alternates: alternates.to_vec(),
        ..request(Some(60), None)
    }
}

#[test]
fn a_503_sends_the_invite_to_the_next_address_in_the_same_call() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request_with_alternates(&[sbc(2)]), t0).unwrap();
    let (to, first) = sent_to(&mut ep).remove(0);
    assert_eq!(to, sbc(1));
    ep.handle_datagram(
        sbc(1),
        TransportKind::Udp,
        &reply(&first, 503, "x", "", ""),
        t0 + 5 * MS,
    );
    let out = sent_to(&mut ep);
    let methods: Vec<(SocketAddr, &str)> = out.iter().map(|(to, m)| (*to, method(m))).collect();
    assert_eq!(
        methods,
        [(sbc(1), "ACK"), (sbc(2), "INVITE")],
        "the 503 is ACKed where it came from, the INVITE goes on"
    );
    let second = &out[1].1;
    assert_eq!(header(second, "Call-ID"), header(&first, "Call-ID"));
    assert_eq!(header(second, "From"), header(&first, "From"));
    assert_ne!(branch_of(second), branch_of(&first), "a new transaction");
    assert_eq!(header(second, "CSeq"), "2 INVITE");
    assert!(
        events(&mut ep)
            .iter()
            .all(|e| !matches!(e, Event::Ended { .. })),
        "the call goes on"
    );
    assert_eq!(ep.stats().failovers, 1);
    // The 503 again (our ACK was lost): ACKed again, where it came from.
    ep.handle_datagram(
        sbc(1),
        TransportKind::Udp,
        &reply(&first, 503, "x", "", ""),
        t0 + 505 * MS,
    );
    let again = sent_to(&mut ep);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].0, method(&again[0].1)), (sbc(1), "ACK"));
    // The second address answers as usual; a 503 from it ends the call.
    ep.handle_datagram(
        sbc(2),
        TransportKind::Udp,
        &reply(second, 503, "y", "", ""),
        t0 + 600 * MS,
    );
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!(
        (end.outcome, end.sip_code),
        (Outcome::Congestion, Some(503))
    );
}

#[test]
fn an_address_that_times_out_is_left_for_the_next_one_and_tried_last_for_a_while() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let call = ep
        .invite(request_with_alternates(&[sbc(2), sbc(3)]), t0)
        .unwrap();
    let (to, first) = sent_to(&mut ep).remove(0);
    assert_eq!(to, sbc(1));
    // sbc 1 never answers: retransmissions to it, then Timer B (64·T1).
    let mut now = t0;
    let mut second = None;
    while let Some(at) = ep.poll_timeout() {
        now = at;
        ep.handle_timeout(at);
        let out = sent_to(&mut ep);
        if let Some((to, invite)) = out.into_iter().find(|(to, _)| *to != sbc(1)) {
            second = Some((to, invite));
            break;
        }
    }
    let (to, second) = second.expect("the INVITE went on");
    assert_eq!(to, sbc(2));
    assert_eq!(now, t0 + 64 * Timers::default().t1, "after Timer B");
    assert_eq!(header(&second, "Call-ID"), header(&first, "Call-ID"));
    ep.handle_datagram(
        sbc(2),
        TransportKind::Udp,
        &reply(&second, 180, "z", "", ""),
        now + 10 * MS,
    );
    assert!(
        events(&mut ep)
            .iter()
            .any(|e| matches!(e, Event::Progress { call: c, code: 180, .. } if *c == call))
    );
    // The next call starts with an address that answers.
    ep.invite(request_with_alternates(&[sbc(2), sbc(3)]), now + MS)
        .unwrap();
    assert_eq!(sent_to(&mut ep)[0].0, sbc(2));
    assert_eq!(ep.resting_addresses(now + MS), [sbc(1)], "for the gauge");
    // A minute later sbc 1 is first again.
    let later = now + super::failover::UNRESPONSIVE_FOR + MS;
    assert!(ep.resting_addresses(later).is_empty());
    ep.invite(request_with_alternates(&[sbc(2), sbc(3)]), later)
        .unwrap();
    assert_eq!(sent_to(&mut ep)[0].0, sbc(1));
}

#[test]
fn a_response_from_a_resting_address_puts_it_first_again() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.invite(request_with_alternates(&[sbc(2)]), t0).unwrap();
    let (_, first) = sent_to(&mut ep).remove(0);
    // A 503 asking for 10 minutes' rest.
    ep.handle_datagram(
        sbc(1),
        TransportKind::Udp,
        &reply(&first, 503, "x", "Retry-After: 600\r\n", ""),
        t0 + 5 * MS,
    );
    let _ = sent_to(&mut ep);
    ep.invite(request_with_alternates(&[sbc(2)]), t0 + MS * 10)
        .unwrap();
    assert_eq!(sent_to(&mut ep)[0].0, sbc(2), "resting");
    // An OPTIONS answer (any response) from it: alive.
    ep.ping("sip:127.0.0.1", sbc(1), TransportKind::Udp, t0 + MS * 20);
    let (_, options) = sent_to(&mut ep).remove(0);
    ep.handle_datagram(
        sbc(1),
        TransportKind::Udp,
        &reply(&options, 200, "o", "", ""),
        t0 + MS * 30,
    );
    ep.invite(request_with_alternates(&[sbc(2)]), t0 + MS * 40)
        .unwrap();
    assert_eq!(sent_to(&mut ep)[0].0, sbc(1));
}

#[test]
fn a_call_given_up_or_without_alternates_is_not_retried() {
    let t0 = Instant::now();
    // No alternates: a 503 ends the call, as before.
    let mut ep = endpoint();
    ep.invite(request_with_alternates(&[]), t0).unwrap();
    let (_, invite) = sent_to(&mut ep).remove(0);
    ep.handle_datagram(
        sbc(1),
        TransportKind::Udp,
        &reply(&invite, 503, "x", "", ""),
        t0 + 5 * MS,
    );
    let out = sent_to(&mut ep);
    assert_eq!(out.len(), 1, "only the ACK: {out:?}");
    assert_eq!(
        ended(&events(&mut ep)).map(|e| e.outcome),
        Some(Outcome::Congestion)
    );
    // Hung up while waiting: the CANCEL's 487 … or here a 503 crossing it.
    let mut ep = endpoint();
    let call = ep.invite(request_with_alternates(&[sbc(2)]), t0).unwrap();
    let (_, invite) = sent_to(&mut ep).remove(0);
    ep.handle_datagram(
        sbc(1),
        TransportKind::Udp,
        &reply(&invite, 180, "x", "", ""),
        t0 + 5 * MS,
    );
    ep.hangup(call, t0 + 10 * MS).unwrap();
    let _ = sent_to(&mut ep);
    ep.handle_datagram(
        sbc(1),
        TransportKind::Udp,
        &reply(&invite, 503, "x", "", ""),
        t0 + 15 * MS,
    );
    let out = sent_to(&mut ep);
    assert!(
        out.iter().all(|(_, m)| method(m) != "INVITE"),
        "no INVITE after a hang-up: {out:?}"
    );
    assert!(ended(&events(&mut ep)).is_some());
    // Hung up before any provisional (the CANCEL waits for one), then a 503.
    let mut ep = endpoint();
    let call = ep.invite(request_with_alternates(&[sbc(2)]), t0).unwrap();
    let (_, invite) = sent_to(&mut ep).remove(0);
    ep.hangup(call, t0 + 10 * MS).unwrap();
    ep.handle_datagram(
        sbc(1),
        TransportKind::Udp,
        &reply(&invite, 503, "x", "", ""),
        t0 + 15 * MS,
    );
    let out = sent_to(&mut ep);
    assert!(
        out.iter().all(|(_, m)| method(m) != "INVITE"),
        "no INVITE after a hang-up before any provisional: {out:?}"
    );
    assert!(ended(&events(&mut ep)).is_some());
}

#[test]
fn a_keepalive_ping_goes_on_to_the_next_address_when_one_is_silent() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let id = ep.ping_next_hop(
        "sip:carrier.test",
        sbc(1),
        vec![sbc(2), sbc(3)],
        TransportKind::Udp,
        t0,
    );
    assert_eq!(sent_to(&mut ep)[0].0, sbc(1));
    // sbc 1 stays silent: after Timer F the OPTIONS goes to sbc 2.
    let mut now;
    let mut wakes = 0;
    let options = loop {
        wakes += 1;
        assert!(wakes < 100, "no OPTIONS to the second address");
        let at = ep.poll_timeout().expect("a timer");
        now = at;
        ep.handle_timeout(at);
        if let Some((_, text)) = sent_to(&mut ep).into_iter().find(|(to, _)| *to == sbc(2)) {
            break text;
        }
    };
    assert_eq!(now, t0 + 64 * Timers::default().t1, "after Timer F");
    assert!(
        events(&mut ep).is_empty(),
        "no result while an address is left"
    );
    assert_eq!(ep.stats().failovers, 1);
    ep.handle_datagram(
        sbc(2),
        TransportKind::Udp,
        &reply(&options, 200, "o", "", ""),
        now + MS,
    );
    assert_eq!(
        events(&mut ep),
        [Event::PingResult {
            id,
            code: Some(200)
        }]
    );
    // The next ping starts with the address that answers; when all stay
    // silent, one "no answer".
    let id = ep.ping_next_hop(
        "sip:carrier.test",
        sbc(1),
        vec![sbc(2)],
        TransportKind::Udp,
        now + 2 * MS,
    );
    assert_eq!(sent_to(&mut ep)[0].0, sbc(2));
    while let Some(at) = ep.poll_timeout() {
        ep.handle_timeout(at);
        let _ = sent_to(&mut ep);
    }
    assert_eq!(events(&mut ep), [Event::PingResult { id, code: None }]);
    assert!(ep.pings.is_empty());
}

/// A registrar published as two SRV targets: a REGISTER the first leaves
/// unanswered goes to the second at once; when both stay silent, the
/// retries back off as for one address.
#[test]
fn a_silent_registrar_address_is_left_for_the_next_one() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    ep.register(
        RegistrationRequest {
            destination: sbc(1),
            alternates: vec![sbc(2)],
            ..registration_request(600)
        },
        t0,
    );
    assert_eq!(sent_to(&mut ep)[0].0, sbc(1));
    let mut now;
    let mut wakes = 0;
    let register = loop {
        wakes += 1;
        assert!(wakes < 100, "no REGISTER to the second address");
        now = ep.poll_timeout().expect("a timer");
        ep.handle_timeout(now);
        if let Some((_, text)) = sent_to(&mut ep).into_iter().find(|(to, _)| *to == sbc(2)) {
            break text;
        }
    };
    assert_eq!(
        now,
        t0 + 64 * Timers::default().t1,
        "at Timer F, not after a back-off"
    );
    assert!(
        registration_states(&mut ep).is_empty(),
        "no failure reported yet"
    );
    assert_eq!(ep.stats().failovers, 1);
    ep.handle_datagram(
        sbc(2),
        TransportKind::Udp,
        &reply(&register, 200, "r", "Expires: 600\r\n", ""),
        now + MS,
    );
    assert_eq!(
        registration_states(&mut ep),
        [RegistrationState::Registered {
            expires: Duration::from_secs(600)
        }]
    );
    // Both silent now (the renewal goes to sbc 2, then sbc 1): a failure,
    // and a back-off.
    let mut failed = Vec::new();
    let mut addresses = Vec::new();
    while failed.is_empty() {
        wakes += 1;
        assert!(wakes < 200, "no failure reported: {addresses:?}");
        now = ep.poll_timeout().expect("a timer");
        ep.handle_timeout(now);
        for (to, text) in sent_to(&mut ep) {
            if text.starts_with("REGISTER ") && addresses.last() != Some(&to) {
                addresses.push(to);
            }
        }
        failed = registration_states(&mut ep);
    }
    assert_eq!(addresses, [sbc(2), sbc(1)]);
    assert!(matches!(
        failed[..],
        [RegistrationState::Failed { code: None, retry_in, .. }] if retry_in == Duration::from_secs(30)
    ));
}

/// RFC 4028 §7.1, §7.4: the session timer we ask for in the INVITE; a 422
/// is followed once with the far end's Min-SE; its 200 then sets who
/// refreshes (here us, at half the interval). A second 422 ends the call.
#[test]
fn our_invite_asks_for_a_session_timer_and_follows_one_422() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let asking = InviteRequest {
        session_expires: Some(Duration::from_secs(1800)),
        ..request(Some(60), None)
    };
    ep.invite(asking.clone(), t0).unwrap();
    let first = sent(&mut ep).remove(0);
    assert!(first.contains("\r\nSession-Expires: 1800\r\n"), "{first}");
    assert!(!first.contains("Min-SE"), "{first}");
    deliver(
        &mut ep,
        &reply(&first, 422, "x", "Min-SE: 3600\r\n", ""),
        t0 + 5 * MS,
    );
    let out = sent(&mut ep);
    assert_eq!(
        out.iter().map(|m| method(m)).collect::<Vec<_>>(),
        ["ACK", "INVITE"]
    );
    let second = &out[1];
    assert!(second.contains("\r\nSession-Expires: 3600\r\n"), "{second}");
    assert!(second.contains("\r\nMin-SE: 3600\r\n"), "{second}");
    assert_eq!(header(second, "CSeq"), "2 INVITE");
    assert_eq!(header(second, "Call-ID"), header(&first, "Call-ID"));
    assert!(ended(&events(&mut ep)).is_none(), "the call goes on");
    let answered = t0 + 10 * MS;
    deliver(
        &mut ep,
        &reply(
            second,
            200,
            "a",
            "Session-Expires: 3600;refresher=uac\r\nRequire: timer\r\n",
            "v=0\r\n",
        ),
        answered,
    );
    let _ = sent(&mut ep);
    let (at, refresh) = next_sent(&mut ep, answered);
    assert_eq!(method(&refresh), "UPDATE", "{refresh}");
    assert_eq!(at, answered + Duration::from_secs(1800));
    assert!(refresh.contains("Min-SE: 3600"), "{refresh}");

    // A far end that answers 422 twice: the second ends the call.
    let mut ep = endpoint();
    ep.invite(asking, t0).unwrap();
    let first = sent(&mut ep).remove(0);
    deliver(
        &mut ep,
        &reply(&first, 422, "x", "Min-SE: 3600\r\n", ""),
        t0 + 5 * MS,
    );
    let second = sent(&mut ep).remove(1);
    deliver(
        &mut ep,
        &reply(&second, 422, "x", "Min-SE: 7200\r\n", ""),
        t0 + 10 * MS,
    );
    let end = ended(&events(&mut ep)).cloned().expect("ended");
    assert_eq!(end.sip_code, Some(422));
    assert!(
        sent(&mut ep).iter().all(|m| method(m) != "INVITE"),
        "no third INVITE"
    );
}

/// A 302 from `from` to `invite` naming `contacts`.
fn redirect(ep: &mut Endpoint, from: SocketAddr, invite: &str, contacts: &str, now: Instant) {
    let extra = format!("Contact: {contacts}\r\n");
    let response = String::from_utf8(reply(invite, 302, "r", "", "")).unwrap();
    // `reply` names the UAS as Contact; a 3xx's Contacts are its targets.
    let response = response.replace("Contact: <sip:uas-r@127.0.0.1:5070>\r\n", &extra);
    ep.handle_datagram(from, TransportKind::Udp, response.as_bytes(), now);
}

/// An endpoint with a call placed at `t0`, and the call's INVITE.
fn one_call(t0: Instant) -> (Endpoint, String) {
    let mut ep = endpoint();
    ep.invite(request(Some(60), None), t0).unwrap();
    let invite = sent(&mut ep).remove(0);
    (ep, invite)
}

fn request_line(text: &str) -> &str {
    text.lines().next().unwrap()
}

#[test]
fn a_302_sends_the_invite_to_its_contact_in_the_same_call() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let call = ep.invite(request(Some(60), None), t0).unwrap();
    let first = sent(&mut ep).remove(0);
    redirect(
        &mut ep,
        trunk(),
        &first,
        "<sip:+15551234567@127.0.0.9:5080;user=phone?X-Header=dropped>",
        t0 + 5 * MS,
    );
    let out = sent_to(&mut ep);
    let methods: Vec<(SocketAddr, &str)> = out.iter().map(|(to, m)| (*to, method(m))).collect();
    let gateway = SocketAddr::from(([127, 0, 0, 9], 5080));
    assert_eq!(methods, [(trunk(), "ACK"), (gateway, "INVITE")]);
    assert_eq!(
        request_line(&out[0].1),
        "ACK sip:+15551234567@127.0.0.1:5070 SIP/2.0",
        "the 302 is ACKed as the INVITE it answers"
    );
    let second = &out[1].1;
    assert_eq!(
        request_line(second),
        "INVITE sip:+15551234567@127.0.0.9:5080;user=phone SIP/2.0"
    );
    assert!(!second.contains("X-Header"), "{second}");
    assert_eq!(header(second, "To"), header(&first, "To"), "the To stays");
    assert_eq!(header(second, "From"), header(&first, "From"));
    assert_eq!(header(second, "Call-ID"), header(&first, "Call-ID"));
    assert_ne!(branch_of(second), branch_of(&first), "a new transaction");
    assert_eq!(header(second, "CSeq"), "2 INVITE");
    assert!(events(&mut ep).is_empty(), "the call goes on unseen");
    assert_eq!(ep.stats().redirects, 1);
    // The gateway challenges: the answer names the new Request-URI.
    ep.handle_datagram(
        gateway,
        TransportKind::Udp,
        &reply(
            second,
            401,
            "g",
            "WWW-Authenticate: Digest realm=\"gw\", nonce=\"n1\"\r\n",
            "",
        ),
        t0 + 10 * MS,
    );
    let out = sent_to(&mut ep);
    let third = &out.iter().find(|(_, m)| method(m) == "INVITE").unwrap().1;
    assert!(
        header(third, "Authorization")
            .contains("uri=\"sip:+15551234567@127.0.0.9:5080;user=phone\""),
        "{third}"
    );
    // It rings, then the ring timeout's CANCEL goes to it, for its URI.
    ep.handle_datagram(
        gateway,
        TransportKind::Udp,
        &reply(third, 180, "g", "", ""),
        t0 + 20 * MS,
    );
    ep.hangup(call, t0 + 30 * MS).unwrap();
    let cancel = sent_to(&mut ep)
        .into_iter()
        .find(|(_, m)| method(m) == "CANCEL")
        .unwrap();
    assert_eq!(cancel.0, gateway);
    assert_eq!(
        request_line(&cancel.1),
        "CANCEL sip:+15551234567@127.0.0.9:5080;user=phone SIP/2.0"
    );
}

#[test]
fn redirect_targets_are_called_by_q_until_one_serves_and_a_6xx_ends_the_call() {
    let t0 = Instant::now();
    let (mut ep, first) = one_call(t0);
    redirect(
        &mut ep,
        trunk(),
        &first,
        "<sip:a@127.0.0.11>;q=0.5, <sip:b@gateway.example>;q=1, <tel:+15551234567>, \
         <sip:c@127.0.0.12:5070;transport=tcp>;q=0.9, <sip:d@127.0.0.13>;q=0.9, \
         <sip:e@127.0.0.14>;q=0.1",
        t0 + 5 * MS,
    );
    let invite_to = |out: Vec<(SocketAddr, String)>| {
        out.into_iter()
            .find(|(_, m)| method(m) == "INVITE")
            .expect("an INVITE")
    };
    // b needs DNS, tel: is no SIP URI, c another transport: d (0.9) first.
    let (to, second) = invite_to(sent_to(&mut ep));
    assert_eq!(to, SocketAddr::from(([127, 0, 0, 13], 5060)));
    assert!(second.starts_with("INVITE sip:d@127.0.0.13 SIP/2.0"));
    // d is busy: a (0.5) next.
    ep.handle_datagram(
        to,
        TransportKind::Udp,
        &reply(&second, 486, "d", "", ""),
        t0 + 10 * MS,
    );
    let (to, third) = invite_to(sent_to(&mut ep));
    assert_eq!(to, SocketAddr::from(([127, 0, 0, 11], 5060)));
    assert!(third.starts_with("INVITE sip:a@127.0.0.11 SIP/2.0"));
    assert_eq!(header(&third, "CSeq"), "3 INVITE");
    assert!(events(&mut ep).is_empty());
    // a declines everywhere (603): e is not called.
    ep.handle_datagram(
        to,
        TransportKind::Udp,
        &reply(&third, 603, "a", "", ""),
        t0 + 20 * MS,
    );
    let out = sent_to(&mut ep);
    assert!(out.iter().all(|(_, m)| method(m) == "ACK"), "{out:?}");
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!((end.outcome, end.sip_code), (Outcome::Rejected, Some(603)));
    assert_eq!(ep.stats().redirects, 2);
}

#[test]
fn a_silent_redirect_target_passes_the_call_to_the_next() {
    let t0 = Instant::now();
    let (mut ep, first) = one_call(t0);
    redirect(
        &mut ep,
        trunk(),
        &first,
        "<sip:a@127.0.0.11>, <sip:b@127.0.0.12>",
        t0 + 5 * MS,
    );
    let mut wakes = 0;
    let mut reached_b = None;
    while let Some(at) = ep.poll_timeout() {
        wakes += 1;
        assert!(wakes < 100, "bounded");
        ep.handle_timeout(at);
        if let Some((_, invite)) = sent_to(&mut ep)
            .into_iter()
            .find(|(to, _)| *to == SocketAddr::from(([127, 0, 0, 12], 5060)))
        {
            reached_b = Some((at, invite));
            break;
        }
    }
    let (at, invite) = reached_b.expect("b was called");
    assert_eq!(at, t0 + 5 * MS + 64 * Timers::default().t1, "after Timer B");
    assert!(invite.starts_with("INVITE sip:b@127.0.0.12 SIP/2.0"));
    assert!(events(&mut ep).is_empty());
}

#[test]
fn redirect_loops_chains_and_calls_that_do_not_follow_end_on_the_3xx() {
    let t0 = Instant::now();
    // A call that does not follow redirects (an agent's phone).
    let mut ep = endpoint();
    let not_following = InviteRequest {
        follow_redirects: false,
        ..request(Some(60), None)
    };
    ep.invite(not_following, t0).unwrap();
    let first = sent(&mut ep).remove(0);
    redirect(&mut ep, trunk(), &first, "<sip:a@127.0.0.11>", t0 + 5 * MS);
    assert!(sent(&mut ep).iter().all(|m| method(m) == "ACK"));
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!((end.outcome, end.sip_code), (Outcome::Failed, Some(302)));

    // A 302 back to the URI already called: a loop, not followed.
    let (mut ep, first) = one_call(t0);
    redirect(
        &mut ep,
        trunk(),
        &first,
        "<sip:+15551234567@127.0.0.1:5070>",
        t0 + 5 * MS,
    );
    assert!(sent(&mut ep).iter().all(|m| method(m) == "ACK"));
    let end = ended(&events(&mut ep)).cloned().unwrap();
    assert_eq!((end.outcome, end.sip_code), (Outcome::Failed, Some(302)));

    // A chain of redirects, each to a new address: three are followed.
    let mut ep = endpoint();
    ep.invite(request(Some(60), None), t0).unwrap();
    let (mut at, mut invite) = sent_to(&mut ep).remove(0);
    for hop in 1..=4u8 {
        let contact = format!("<sip:hop{hop}@127.0.1.{hop}>");
        redirect(&mut ep, at, &invite, &contact, t0 + u32::from(hop) * MS);
        let next = sent_to(&mut ep)
            .into_iter()
            .find(|(_, m)| method(m) == "INVITE");
        match next {
            Some(next) => (at, invite) = next,
            None => {
                assert_eq!(hop, 4, "the fourth 302 ends the call");
                let end = ended(&events(&mut ep)).cloned().unwrap();
                assert_eq!(end.sip_code, Some(302));
                assert_eq!(ep.stats().redirects, 3);
                return;
            }
        }
    }
    panic!("a fourth redirect was followed");
}

#[test]
fn through_an_outbound_proxy_a_redirect_to_a_host_name_goes_to_the_proxy() {
    let t0 = Instant::now();
    let mut ep = endpoint();
    let proxied = InviteRequest {
        route: Some("<sip:127.0.0.1:5070;lr>".into()),
        ..request(Some(60), None)
    };
    ep.invite(proxied, t0).unwrap();
    let first = sent(&mut ep).remove(0);
    redirect(
        &mut ep,
        trunk(),
        &first,
        "<sip:+15551234567@gw.carrier.example>",
        t0 + 5 * MS,
    );
    let (to, second) = sent_to(&mut ep)
        .into_iter()
        .find(|(_, m)| method(m) == "INVITE")
        .expect("followed");
    assert_eq!(to, trunk());
    assert!(second.starts_with("INVITE sip:+15551234567@gw.carrier.example SIP/2.0"));
    assert_eq!(header(&second, "Route"), "<sip:127.0.0.1:5070;lr>");
}
