//! The fixed SDP offer of a signalling-only call (`outdial call` without
//! `--play`/`--record`, which opens no RTP leg): PCMU (0), PCMA (8) and
//! telephone-event (101) on one RTP port. Calls with media build their
//! offer with [`crate::sdp::MediaSession`].

use std::net::IpAddr;

/// An SDP offer for audio on `ip:rtp_port` (RFC 4566/3264/4733).
/// `session_id` keeps o= lines unique per call; the version starts at 1
/// and each changed description of ours in the dialog bumps it (RFC 3264 §8).
pub fn fixed_offer(ip: IpAddr, rtp_port: u16, session_id: u64) -> Vec<u8> {
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    format!(
        "v=0\r\n\
         o=outdial {session_id} 1 IN {family} {ip}\r\n\
         s=outdial\r\n\
         c=IN {family} {ip}\r\n\
         t=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    )
    .into_bytes()
}
