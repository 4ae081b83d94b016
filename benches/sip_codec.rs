//! Parse and serialise a typical trunk INVITE and 200 OK.

use criterion::{Criterion, criterion_group, criterion_main};
use outdial::sip::codec::{Message, MessageBuilder};
use std::hint::black_box;

const INVITE: &[u8] = b"INVITE sip:+15551234567@carrier.example.net SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa8c3e1f09b2d4c7e;rport\r\n\
Max-Forwards: 70\r\n\
From: \"outdial demo\" <sip:+15551230000@carrier.example.net>;tag=x7k2p9q4m1\r\n\
To: <sip:+15551234567@carrier.example.net>\r\n\
Call-ID: 3f9a8c7e6d5b4a3f2e1d0c9b@outdial\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:outdial@192.0.2.10:5060>\r\n\
P-Asserted-Identity: <sip:+15551230000@carrier.example.net>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REGISTER\r\n\
Supported: 100rel, timer\r\n\
User-Agent: outdial/0.1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 226\r\n\r\n\
v=0\r\no=outdial 1 1 IN IP4 192.0.2.10\r\ns=outdial\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa8c3e1f09b2d4c7e;rport=5060;received=192.0.2.10\r\n\
Record-Route: <sip:198.51.100.1;lr>\r\n\
From: \"outdial demo\" <sip:+15551230000@carrier.example.net>;tag=x7k2p9q4m1\r\n\
To: <sip:+15551234567@carrier.example.net>;tag=as5e8f7a21\r\n\
Call-ID: 3f9a8c7e6d5b4a3f2e1d0c9b@outdial\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:+15551234567@198.51.100.7:5060>\r\n\
Server: carrier-sbc\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 130\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn codec(c: &mut Criterion) {
    c.bench_function("sip parse INVITE", |b| {
        b.iter(|| Message::parse(black_box(INVITE)).map(|m| m.headers.len()))
    });
    c.bench_function("sip parse 200 OK + routing fields", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(OK)).ok()?;
            Some((
                m.top_via()?.branch()?.len(),
                m.to()?.tag()?.len(),
                m.cseq()?.number,
            ))
        })
    });
    let invite = Message::parse(INVITE).expect("INVITE parses");
    c.bench_function("sip serialise INVITE", |b| {
        b.iter(|| black_box(&invite).serialise())
    });
    c.bench_function("sip build 200 OK", |b| {
        b.iter(|| {
            MessageBuilder::response(200, "OK")
                .header("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa8c3e1f09b2d4c7e;rport=5060;received=192.0.2.10")
                .header("From", "\"outdial demo\" <sip:+15551230000@carrier.example.net>;tag=x7k2p9q4m1")
                .header("To", "<sip:+15551234567@carrier.example.net>;tag=as5e8f7a21")
                .header("Call-ID", black_box("3f9a8c7e6d5b4a3f2e1d0c9b@outdial"))
                .header("CSeq", "1 INVITE")
                .header("Contact", "<sip:+15551234567@198.51.100.7:5060>")
                .body(Some("application/sdp"), b"v=0\r\n")
        })
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
