//! RTP packets (RFC 3550 §5.1): a borrowed, validated view for reading and
//! in-place setters for the bridge's header rewrite — no allocation on the
//! per-packet path.

use thiserror::Error;

/// Fixed header length without CSRCs.
pub const HEADER_LEN: usize = 12;
/// A 20 ms G.711 packet: 12-byte header + 160 payload bytes.
pub const G711_PACKET_LEN: usize = HEADER_LEN + 160;
/// Largest datagram a leg accepts; anything bigger is not telephony audio.
pub const MAX_PACKET_LEN: usize = 1500;

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum RtpError {
    #[error("RTP packet of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("RTP version {0} (only version 2 exists)")]
    Version(u8),
    #[error("RTP header extension runs past the end of the packet")]
    BadExtension,
    #[error("RTP padding length is invalid")]
    BadPadding,
    #[error("payload type {0} is RTCP (RFC 5761), not RTP")]
    RtcpType(u8),
}

/// A parsed RTP packet borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the payload in the datagram.
    pub payload_offset: usize,
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Validates and parses a datagram.
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        let fixed: &[u8; HEADER_LEN] = buf
            .get(..HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(RtpError::Short(buf.len()))?;
        let version = fixed[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let payload_type = fixed[1] & 0x7F;
        if (72..=76).contains(&payload_type) {
            return Err(RtpError::RtcpType(payload_type));
        }
        let csrc_count = usize::from(fixed[0] & 0x0F);
        let mut offset = HEADER_LEN + 4 * csrc_count;
        if buf.len() < offset {
            return Err(RtpError::Short(buf.len()));
        }
        if fixed[0] & 0x10 != 0 {
            let ext = buf.get(offset..offset + 4).ok_or(RtpError::BadExtension)?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            offset += 4 + 4 * words;
            if buf.len() < offset {
                return Err(RtpError::BadExtension);
            }
        }
        let mut end = buf.len();
        if fixed[0] & 0x20 != 0 {
            let pad = usize::from(*buf.last().ok_or(RtpError::BadPadding)?);
            if pad == 0 || end - offset < pad {
                return Err(RtpError::BadPadding);
            }
            end -= pad;
        }
        Ok(RtpPacket {
            marker: fixed[1] & 0x80 != 0,
            payload_type,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            payload_offset: offset,
            payload: &buf[offset..end],
        })
    }
}

/// Writes a 12-byte header (no CSRC, no extension) and returns its length.
/// `out` must hold at least [`HEADER_LEN`] bytes.
pub fn write_header(
    out: &mut [u8],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) -> usize {
    if let Some(header) = out.get_mut(..HEADER_LEN) {
        header[0] = 0x80;
        header[1] = (u8::from(marker) << 7) | (payload_type & 0x7F);
        header[2..4].copy_from_slice(&sequence.to_be_bytes());
        header[4..8].copy_from_slice(&timestamp.to_be_bytes());
        header[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }
    HEADER_LEN
}

/// Rewrites the header fields the bridge owns, in place. The packet must
/// have been validated by [`RtpPacket::parse`] (so it is ≥ 12 bytes).
pub fn rewrite_header(
    buf: &mut [u8],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    if let Some(header) = buf.get_mut(..HEADER_LEN) {
        header[1] = (u8::from(marker) << 7) | (payload_type & 0x7F);
        header[2..4].copy_from_slice(&sequence.to_be_bytes());
        header[4..8].copy_from_slice(&timestamp.to_be_bytes());
        header[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes() {
        let mut buf = [0u8; G711_PACKET_LEN];
        write_header(&mut buf, true, 8, 65535, 0xDEADBEEF, 0x1234_5678);
        let packet = RtpPacket::parse(&buf).unwrap();
        assert!(packet.marker);
        assert_eq!(packet.payload_type, 8);
        assert_eq!(packet.sequence, 65535);
        assert_eq!(packet.timestamp, 0xDEADBEEF);
        assert_eq!(packet.ssrc, 0x1234_5678);
        assert_eq!(packet.payload.len(), 160);
    }

    #[test]
    fn csrc_extension_and_padding() {
        let mut buf = vec![0xB1, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        buf.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension, one word
        buf.extend_from_slice(&[7, 7, 0, 3]); // one payload byte, then 3 bytes of padding
        let packet = RtpPacket::parse(&buf).unwrap();
        assert_eq!(packet.payload, &[7]);
        assert_eq!(packet.payload_offset, 24);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(RtpPacket::parse(&[]), Err(RtpError::Short(0)));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::Version(1)));
        let mut rtcp = [0x80u8; 12];
        rtcp[1] = 200; // SR sent to the RTP port
        assert_eq!(RtpPacket::parse(&rtcp), Err(RtpError::RtcpType(72)));
        assert_eq!(
            RtpPacket::parse(&[0x8F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(RtpError::Short(12))
        );
        assert_eq!(
            RtpPacket::parse(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
            Err(RtpError::BadExtension)
        );
        assert_eq!(
            RtpPacket::parse(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
            Err(RtpError::BadPadding)
        );
    }
}
