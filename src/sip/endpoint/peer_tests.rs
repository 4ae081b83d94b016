//! The endpoint against a random peer: responses of every code to any
//! request it sent (with or without a to-tag, with odd headers and bodies),
//! requests in and out of its dialogs, garbage, time jumps and hang-ups,
//! in any order. Whatever the peer does, the endpoint must not panic, and
//! once every call is hung up and the timers have run out it must hold no
//! call, transaction or timer: a dialer runs for months, so state the peer
//! can strand is a leak.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::tests::{endpoint, trunk as peer};
use super::*;
use crate::sip::codec::Message;

const RESPONSE_CODES: &[u16] = &[
    100, 180, 181, 183, 199, 200, 202, 299, 301, 302, 400, 401, 403, 404, 405, 407, 408, 415, 420,
    422, 480, 481, 486, 487, 488, 491, 500, 501, 503, 504, 580, 600, 603, 604, 699,
    // Appended, not inserted: the kept regressions name codes by index.
    423,
];

const METHODS: &[&str] = &[
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE", "INFO", "NOTIFY", "PRACK", "REFER",
    "REGISTER", "MESSAGE", "FOO",
];

/// Extra header lines a peer may add (valid, odd and broken).
const EXTRA: &[&str] = &[
    "",
    "Retry-After: 5\r\n",
    "Retry-After: 99999999999999999999\r\n",
    "Retry-After: soon\r\n",
    "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=MD5, qop=\"auth\"\r\n",
    "Proxy-Authenticate: Digest realm=\"r\", nonce=\"n2\", stale=true\r\n",
    "WWW-Authenticate: Digest\r\n",
    "WWW-Authenticate: Basic realm=\"x\"\r\n",
    "Record-Route: <sip:proxy@127.0.0.1:5090;lr>\r\n",
    "Record-Route: <garbage\r\n",
    "Require: 100rel\r\nRSeq: 1\r\n",
    "Require: 100rel\r\nRSeq: x\r\n",
    "Session-Expires: 90;refresher=uac\r\n",
    // A far end refreshed by re-INVITE (no UPDATE in its Allow).
    "Session-Expires: 90;refresher=uac\r\nAllow: INVITE, ACK, BYE, CANCEL\r\n",
    "Session-Expires: 0\r\n",
    // The far end refreshes (we BYE a session it stops refreshing), or
    // leaves the refresher to us to name.
    "Session-Expires: 90;refresher=uas\r\nRequire: timer\r\n",
    "Session-Expires: 1800\r\nSupported: timer\r\n",
    "Session-Expires: 18446744073709551616;refresher=uas\r\n",
    "Min-SE: 4294967296\r\n",
    "Min-SE: 1800\r\n",
    "Contact: *\r\n",
    "Contact: <sip:[::1]:0>\r\n",
    "Expires: 0\r\n",
    "Content-Type: multipart/mixed;boundary=x\r\n",
    // A registrar's (appended: the kept regressions name extras by index).
    "Min-Expires: 120\r\n",
    "Min-Expires: 99999999\r\n",
    "Contact: <sip:user@127.0.0.1:5060>;expires=5\r\n",
    // Redirect targets (with a 3xx): one per address, a host name, a tel:
    // URI, and the call's own URI (a loop).
    "Contact: <sip:r1@127.0.0.2:5070>;q=0.5, <sip:r2@127.0.0.3:5070>;q=0.7\r\n",
    "Contact: <sip:r3@carrier.example>, <tel:+15551234567>\r\n",
    "Contact: <sip:+15551234567@127.0.0.1:5070>\r\n",
];

/// Bodies: a usable answer, hold, a port of 0, garbage.
const BODIES: &[&str] = &[
    "",
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=sendonly\r\n",
    "v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 0 RTP/AVP 18\r\n",
    "v=0\r\nm=audio 99999 RTP/AVP\r\n",
    "\u{0}\u{1}not sdp at all",
];

#[derive(Debug, Clone)]
enum Op {
    /// A response to the n-th request the endpoint sent.
    Respond {
        nth: usize,
        code: usize,
        tag: u8,
        extra: usize,
        body: usize,
    },
    /// A request from the peer inside (or beside) a dialog of the n-th
    /// request the endpoint sent.
    Request {
        nth: usize,
        method: usize,
        tag: u8,
        cseq: u32,
        extra: usize,
        body: usize,
    },
    Garbage(Vec<u8>),
    Advance(u64),
    HangUp(usize),
    /// The ring timeout's CANCEL (a crossing 200 is kept).
    CancelRinging(usize),
    Call,
    /// A registration with the peer as the trunk's registrar.
    Register,
    /// A call whose next hop has two more addresses (SRV targets): a 503
    /// or a silence sends its INVITE on (`failover.rs`).
    CallWithAlternates,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<usize>(), 0..RESPONSE_CODES.len(), 0u8..4, 0..EXTRA.len(), 0..BODIES.len())
            .prop_map(|(nth, code, tag, extra, body)| Op::Respond { nth, code, tag, extra, body }),
        3 => (any::<usize>(), 0..METHODS.len(), 0u8..4, 0u32..5, 0..EXTRA.len(), 0..BODIES.len())
            .prop_map(|(nth, method, tag, cseq, extra, body)| {
                Op::Request { nth, method, tag, cseq, extra, body }
            }),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Op::Garbage),
        3 => prop_oneof![0u64..600, 0u64..40_000].prop_map(Op::Advance),
        1 => any::<usize>().prop_map(Op::HangUp),
        1 => any::<usize>().prop_map(Op::CancelRinging),
        1 => Just(Op::Call),
        1 => Just(Op::Register),
        1 => Just(Op::CallWithAlternates),
    ]
}

fn invite_request() -> InviteRequest {
    InviteRequest {
        uri: "sip:+15551234567@127.0.0.1:5070".into(),
        destination: peer(),
        alternates: Vec::new(),
        transport: TransportKind::Udp,
        route: None,
        caller_id: "+15551230000".into(),
        caller_name: None,
        credentials: Some(Credentials {
            username: "user".into(),
            password: "secret".into(),
        }),
        sdp: crate::sip::offer::fixed_offer("127.0.0.1".parse().expect("address"), 20000, 1),
        ring_timeout: Some(Duration::from_secs(30)),
        hold: None,
        // Asked for, so a 422 with a larger Min-SE is followed.
        session_expires: Some(Duration::from_secs(90)),
        follow_redirects: true,
        symmetric: false,
    }
}

/// What the endpoint sent: the requests kept (a peer answers them).
struct Peer {
    sent_requests: Vec<String>,
}

impl Peer {
    fn drain(&mut self, ep: &mut Endpoint) {
        while let Some(transmit) = ep.poll_transmit() {
            let text = String::from_utf8_lossy(&transmit.payload).into_owned();
            if Message::parse(text.as_bytes()).is_ok_and(|m| m.is_request()) {
                self.sent_requests.push(text);
            }
        }
        while ep.poll_event().is_some() {}
    }
}

/// A response to `request` (the Via, From, Call-ID and CSeq copied).
fn response(request: &str, code: u16, tag: u8, extra: &str, body: &str) -> Option<Vec<u8>> {
    let m = Message::parse(request.as_bytes()).ok()?;
    let mut out = format!("SIP/2.0 {code} Reason\r\n");
    for via in m.header_values("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", m.header("From")?));
    let to = m.header("To")?.split(";tag").next()?.to_string();
    if tag == 0 {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag=peer{tag}\r\n"));
    }
    out.push_str(&format!("Call-ID: {}\r\n", m.call_id()?));
    out.push_str(&format!("CSeq: {}\r\n", m.header("CSeq")?));
    out.push_str(&format!("Contact: <sip:peer{tag}@127.0.0.1:5070>\r\n"));
    out.push_str(extra);
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    Some(out.into_bytes())
}

/// A request from the peer in the dialog of `ours` (its From becomes the
/// To), with the peer's tag.
fn request(
    ours: &str,
    method: &str,
    tag: u8,
    cseq: u32,
    branch: u64,
    extra: &str,
    body: &str,
) -> Option<Vec<u8>> {
    let m = Message::parse(ours.as_bytes()).ok()?;
    let mut out = format!("{method} sip:outdial@127.0.0.1:5060 SIP/2.0\r\n");
    out.push_str(&format!(
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKpeer{branch}\r\n"
    ));
    let their = m.header("To")?.split(";tag").next()?.to_string();
    out.push_str(&format!("From: {their};tag=peer{tag}\r\n"));
    out.push_str(&format!("To: {}\r\n", m.header("From")?));
    out.push_str(&format!("Call-ID: {}\r\n", m.call_id()?));
    out.push_str(&format!("CSeq: {cseq} {method}\r\n"));
    out.push_str("Contact: <sip:peer@127.0.0.1:5070>\r\n");
    out.push_str("Max-Forwards: 70\r\n");
    out.push_str(extra);
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    Some(out.into_bytes())
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    let mut now = t0;
    let mut ep = endpoint();
    let mut peer_state = Peer {
        sent_requests: Vec::new(),
    };
    let mut calls = vec![ep.invite(invite_request(), now).expect("a call")];
    peer_state.drain(&mut ep);
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Respond {
                nth,
                code,
                tag,
                extra,
                body,
            } => {
                let sent = &peer_state.sent_requests;
                if let Some(bytes) = response(
                    &sent[nth % sent.len()],
                    RESPONSE_CODES[*code],
                    *tag,
                    EXTRA[*extra],
                    BODIES[*body],
                ) {
                    ep.handle_datagram(peer(), TransportKind::Udp, &bytes, now);
                }
            }
            Op::Request {
                nth,
                method,
                tag,
                cseq,
                extra,
                body,
            } => {
                let sent = &peer_state.sent_requests;
                if let Some(bytes) = request(
                    &sent[nth % sent.len()],
                    METHODS[*method],
                    *tag,
                    *cseq,
                    step as u64,
                    EXTRA[*extra],
                    BODIES[*body],
                ) {
                    ep.handle_datagram(peer(), TransportKind::Udp, &bytes, now);
                }
            }
            Op::Garbage(bytes) => ep.handle_datagram(peer(), TransportKind::Udp, bytes, now),
            Op::Advance(ms) => {
                now += Duration::from_millis(*ms);
                ep.handle_timeout(now);
            }
            Op::HangUp(nth) => {
                let _ = ep.hangup(calls[nth % calls.len()], now);
            }
            Op::CancelRinging(nth) => {
                let _ = ep.cancel_ringing(calls[nth % calls.len()], now);
            }
            Op::Call => calls.push(ep.invite(invite_request(), now).expect("a call")),
            Op::Register => {
                // A registrar with a second address (an SRV target) to go
                // on to when the first is silent.
                let request = RegistrationRequest {
                    alternates: vec![SocketAddr::from(([127, 0, 0, 2], 5070))],
                    ..super::tests::registration_request(60)
                };
                ep.register(request, now);
            }
            Op::CallWithAlternates => {
                let request = InviteRequest {
                    alternates: vec![
                        SocketAddr::from(([127, 0, 0, 2], 5070)),
                        SocketAddr::from(([127, 0, 0, 3], 5070)),
                    ],
                    ..invite_request()
                };
                calls.push(ep.invite(request, now).expect("a call"));
            }
        }
        peer_state.drain(&mut ep);
    }
    // Every call hung up; the peer falls silent; ten minutes of timers.
    for call in &calls {
        let _ = ep.hangup(*call, now);
    }
    ep.unregister_all(now);
    let end = now + Duration::from_secs(600);
    let mut wakes = 0;
    while let Some(at) = ep.poll_timeout() {
        if at > end {
            break;
        }
        wakes += 1;
        // Retransmissions and call timers over ten minutes: a few hundred
        // wakes at most; more is a timer re-armed at the instant it fired.
        prop_assert!(wakes < 5_000, "a timer keeps firing at {:?}", at - t0);
        now = now.max(at);
        ep.handle_timeout(now);
        peer_state.drain(&mut ep);
    }
    prop_assert_eq!(
        ep.calls.len(),
        0,
        "calls left: {:?}",
        ep.calls.keys().collect::<Vec<_>>()
    );
    prop_assert_eq!(ep.by_call_id.len(), 0, "Call-IDs left");
    prop_assert_eq!(ep.clients.len(), 0, "client transactions left");
    prop_assert_eq!(ep.servers.len(), 0, "server transactions left");
    prop_assert_eq!(ep.accepted.len(), 0, "accepted INVITEs left");
    prop_assert_eq!(ep.registrations.len(), 0, "registrations left");
    prop_assert!(ep.poll_timeout().is_none(), "a timer still armed");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_peer_leaves_no_state_behind(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}

/// Runs `ops` on another thread: a timer that re-arms at the instant it
/// fired makes `handle_timeout` spin forever, which must fail the test, not
/// hang it.
fn run_within(ops: Vec<Op>, limit: Duration) -> Result<(), TestCaseError> {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(run(&ops));
    });
    result
        .recv_timeout(limit)
        .unwrap_or_else(|_| Err(TestCaseError::fail("the endpoint never returned")))
}

/// The cases the property found, kept as they were shrunk.
#[test]
fn the_peers_that_found_leaks_and_a_spin() {
    let respond = |code: usize, extra: usize| Op::Respond {
        nth: 0,
        code,
        tag: 0,
        extra,
        body: 0,
    };
    let request = |method: usize, cseq: u32| Op::Request {
        nth: 0,
        method,
        tag: 0,
        cseq,
        extra: 0,
        body: 0,
    };
    let cases = [
        // A far end refreshed by re-INVITE (no UPDATE in its Allow) that
        // answered the refresh 100 and nothing more: the re-INVITE's
        // transaction, with no timer left after the 1xx, stayed for good.
        vec![
            respond(0, 0),
            Op::Call,
            Op::Advance(7500),
            Op::Respond {
                nth: 779338925340152472,
                code: 5,
                tag: 0,
                extra: 13,
                body: 0,
            },
            Op::Advance(9860),
            Op::Advance(31855),
            Op::Advance(3285),
            Op::Respond {
                nth: 3185310136095584801,
                code: 0,
                tag: 0,
                extra: 0,
                body: 0,
            },
        ],
        // 100 Trying, then a BYE before any answer: the call ended with our
        // INVITE still pending (never cancelled, its transaction kept).
        vec![
            respond(0, 0),
            request(0, 0),
            request(0, 0),
            respond(0, 0),
            request(2, 0),
        ],
        // A re-INVITE we accepted, then its ACK: the server transaction
        // stayed for good.
        vec![request(0, 4), request(1, 4)],
        // A 200 with `Session-Expires: 90;refresher=uac`, 19 s, then our
        // BYE unanswered past the refresh time: the refresh timer fired at
        // the same instant forever.
        vec![
            respond(5, 12),
            Op::Advance(19_299),
            respond(0, 0),
            respond(0, 0),
        ],
    ];
    for ops in cases {
        let shown = format!("{ops:?}");
        if let Err(error) = run_within(ops, Duration::from_secs(20)) {
            panic!("{shown}: {error}");
        }
    }
}
