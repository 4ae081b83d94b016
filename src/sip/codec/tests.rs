use proptest::prelude::*;

use super::*;

const INVITE: &str = "INVITE sip:+15551234567@carrier.example.net SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKnashds8, SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKx\r\n\
Max-Forwards: 70\r\n\
t: <sip:+15551234567@carrier.example.net>\r\n\
from: \"Out, Dial\" <sip:+15551230000@10.0.0.1>;tag=1928301774\r\n\
i: a84b4c76e66710@10.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
m: <sip:outdial@10.0.0.1:5060>\r\n\
Supported: timer, 100rel\r\n\
Content-Type: application/sdp\r\n\
l: 4\r\n\r\nv=0\r\nIGNORED";

#[test]
fn parses_a_sloppy_invite() {
    let m = Message::parse(INVITE.as_bytes()).unwrap();
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(m.body, b"v=0\r");
    assert_eq!(m.call_id(), Some("a84b4c76e66710@10.0.0.1"));
    assert_eq!(m.cseq().unwrap().number, 314159);
    let vias: Vec<_> = m.header_values("Via").collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(Via::parse(vias[2]).unwrap().sent_by, "[2001:db8::1]:5061");
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
    assert_eq!(m.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(m.to().unwrap().tag(), None);
    assert!(m.has_option("Supported", "100rel"));
}

#[test]
fn rejects_a_truncated_body_and_bad_framing() {
    let text = "SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    assert!(matches!(
        Message::parse(text.as_bytes()),
        Err(CodecError::BodyTruncated { .. })
    ));
    assert_eq!(
        frame_stream(b"SIP/2.0 200 OK\r\nCSeq: 1 BYE\r\n\r\n"),
        Err(CodecError::MissingContentLength)
    );
    assert_eq!(frame_stream(b"SIP/2.0 200 OK\r\nl: 3\r\n\r\nab"), Ok(None));
    assert_eq!(
        frame_stream(b"\r\n\r\nSIP/2.0 200 OK\r\nl: 3\r\n\r\nabcNEXT"),
        Ok(Some(31))
    );
    assert_eq!(frame_stream(b"\r\n\r\n"), Ok(Some(4)));
}

#[test]
fn parses_uris_with_ipv6_and_params() {
    let uri = SipUri::parse("sip:alice:secret@[2001:db8::5]:5070;transport=tcp?x=y").unwrap();
    assert_eq!(uri.user, Some("alice"));
    assert_eq!(uri.host, "2001:db8::5");
    assert_eq!(uri.port, Some(5070));
    assert_eq!(uri.transport(), Some("tcp"));
    assert_eq!(uri.host_port(), "[2001:db8::5]:5070");
    assert_eq!(uri.authority(), "[2001:db8::5]:5070");
    // A bare domain keeps no port: an added :5060 would rule out SRV.
    let uri = SipUri::parse("sip:+1555@carrier.example.net;user=phone").unwrap();
    assert_eq!(uri.authority(), "carrier.example.net");
    assert_eq!(uri.host_port(), "carrier.example.net:5060");
    assert!(SipUri::parse("tel:+1555").is_none());
    assert!(SipUri::parse("sip:[::1").is_none());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for input in [
        &b""[..],
        b"\r\n\r\n",
        b"\xff\xfe\r\n\r\n",
        b"SIP/2.0 99999 X\r\n\r\n",
        b"INVITE\r\n\r\n",
        b"INVITE sip:a SIP/2.0\r\nNoColon\r\n\r\n",
        b"INVITE sip:a SIP/2.0\r\nl: -1\r\n\r\n",
    ] {
        assert!(Message::parse(input).is_err(), "{input:?}");
    }
}

#[test]
fn folded_header_lines_join() {
    let m = Message::parse(b"OPTIONS sip:a SIP/2.0\r\nSubject: one\r\n two\r\n\r\n").unwrap();
    assert_eq!(
        m.header("Subject").unwrap().replace(['\r', '\n'], ""),
        "one two"
    );
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9.!%*_+`'~-]{0,12}"
}

fn header_value() -> impl Strategy<Value = String> {
    // Printable, no CR/LF, no leading/trailing whitespace (values are trimmed).
    "[!-~]([ -~]{0,40}[!-~])?"
}

/// (is request, method, Request-URI, status code, headers, body)
type MessageParts = (bool, String, String, u16, Vec<(String, String)>, Vec<u8>);

fn arbitrary_message() -> impl Strategy<Value = MessageParts> {
    (
        any::<bool>(),
        token(),
        "sip:[a-z0-9@.:;=]{1,30}",
        100u16..700,
        prop::collection::vec((token(), header_value()), 0..12),
        prop::collection::vec(any::<u8>(), 0..64),
    )
}

proptest! {
    #[test]
    fn parse_of_serialise_is_identity((is_request, method, uri, code, headers, body) in arbitrary_message()) {
        let reason = "Some Reason";
        let start = if is_request {
            StartLine::Request { method: &method, uri: &uri }
        } else {
            StartLine::Response { code, reason }
        };
        // Content-Length must say the truth, so generated headers never use it.
        let mut hs: Vec<Header<'_>> = headers
            .iter()
            .filter(|(n, _)| !header_name_is(n, "Content-Length"))
            .map(|(name, value)| Header { name, value })
            .collect();
        let length = body.len().to_string();
        hs.push(Header { name: "Content-Length", value: &length });
        let message = Message { start, headers: hs, body: &body };
        let bytes = message.serialise();
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(parsed, message);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::parse(&bytes);
        let _ = frame_stream(&bytes);
    }
}
