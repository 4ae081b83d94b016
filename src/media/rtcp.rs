//! RTCP (RFC 3550 §6): parse compound packets (SR, RR, SDES, BYE; others
//! skipped) without ever panicking, and build the receiver report + SDES
//! CNAME compound a leg sends every few seconds.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum RtcpError {
    #[error("RTCP packet shorter than its 4-byte header")]
    Short,
    #[error("RTCP version {0} (only version 2 exists)")]
    Version(u8),
    #[error("RTCP length field runs past the datagram")]
    BadLength,
    #[error("RTCP compound does not start with SR or RR")]
    NotReport,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed cumulative loss.
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    pub jitter: u32,
    pub last_sr: u32,
    pub delay_since_last_sr: u32,
}

/// Sender info of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp_timestamp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// What one RTCP packet of a compound said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        blocks: ReportBlocks<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        blocks: ReportBlocks<'a>,
    },
    Bye {
        ssrcs: &'a [u8],
    },
    /// SDES, APP, feedback and anything newer: skipped.
    Other {
        packet_type: u8,
    },
}

/// Report blocks, decoded lazily from the borrowed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlocks<'a>(&'a [u8]);

impl<'a> Iterator for ReportBlocks<'a> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.0.split_first_chunk::<24>()?;
        self.0 = rest;
        let word =
            |i: usize| u32::from_be_bytes([block[i], block[i + 1], block[i + 2], block[i + 3]]);
        let lost = word(4) & 0x00FF_FFFF;
        // Sign-extend the 24-bit count.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        Some(ReportBlock {
            ssrc: word(0),
            fraction_lost: block[4],
            cumulative_lost,
            extended_highest_sequence: word(8),
            jitter: word(12),
            last_sr: word(16),
            delay_since_last_sr: word(20),
        })
    }
}

/// Iterates the packets of a compound RTCP datagram.
#[derive(Debug, Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Parses a compound packet. The first packet must be SR or RR
/// (RFC 3550 §6.1); each item is a packet or the error that ended the walk.
pub fn parse(datagram: &[u8]) -> Result<Compound<'_>, RtcpError> {
    let first = datagram.get(..2).ok_or(RtcpError::Short)?;
    if first[0] >> 6 != 2 {
        return Err(RtcpError::Version(first[0] >> 6));
    }
    if !matches!(first[1], 200 | 201) {
        return Err(RtcpError::NotReport);
    }
    Ok(Compound {
        rest: datagram,
        failed: false,
    })
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let result = self.next_packet();
        self.failed = result.is_err();
        Some(result)
    }
}

impl<'a> Compound<'a> {
    fn next_packet(&mut self) -> Result<RtcpPacket<'a>, RtcpError> {
        let header = self.rest.get(..4).ok_or(RtcpError::Short)?;
        let version = header[0] >> 6;
        if version != 2 {
            return Err(RtcpError::Version(version));
        }
        let count = usize::from(header[0] & 0x1F);
        let packet_type = header[1];
        let len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        let packet = self.rest.get(..len).ok_or(RtcpError::BadLength)?;
        self.rest = &self.rest[len..];
        let body = &packet[4..];
        let word = |b: &[u8], i: usize| -> Result<u32, RtcpError> {
            let w = b.get(i..i + 4).ok_or(RtcpError::BadLength)?;
            Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        };
        let blocks = |from: usize| -> Result<ReportBlocks<'a>, RtcpError> {
            body.get(from..from + 24 * count)
                .map(ReportBlocks)
                .ok_or(RtcpError::BadLength)
        };
        Ok(match packet_type {
            200 => RtcpPacket::SenderReport {
                ssrc: word(body, 0)?,
                info: SenderInfo {
                    ntp_timestamp: (u64::from(word(body, 4)?) << 32) | u64::from(word(body, 8)?),
                    rtp_timestamp: word(body, 12)?,
                    packet_count: word(body, 16)?,
                    octet_count: word(body, 20)?,
                },
                blocks: blocks(24)?,
            },
            201 => RtcpPacket::ReceiverReport {
                ssrc: word(body, 0)?,
                blocks: blocks(4)?,
            },
            203 => RtcpPacket::Bye {
                ssrcs: body.get(..4 * count).ok_or(RtcpError::BadLength)?,
            },
            other => RtcpPacket::Other { packet_type: other },
        })
    }
}

/// Writes an RR (with up to one report block) followed by an SDES CNAME
/// into `out`; returns the length. `out` should hold 128 bytes; a CNAME
/// longer than 64 bytes is truncated.
pub fn write_receiver_report(
    out: &mut [u8],
    ssrc: u32,
    block: Option<&ReportBlock>,
    cname: &str,
) -> usize {
    let mut buf = [0u8; 128];
    let blocks = usize::from(block.is_some());
    let rr_len = 8 + 24 * blocks;
    buf[0] = 0x80 | blocks as u8;
    buf[1] = 201;
    buf[2..4].copy_from_slice(&((rr_len / 4 - 1) as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    if let Some(b) = block {
        buf[8..12].copy_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        buf[12..16].copy_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        buf[16..20].copy_from_slice(&b.extended_highest_sequence.to_be_bytes());
        buf[20..24].copy_from_slice(&b.jitter.to_be_bytes());
        buf[24..28].copy_from_slice(&b.last_sr.to_be_bytes());
        buf[28..32].copy_from_slice(&b.delay_since_last_sr.to_be_bytes());
    }
    // SDES: one chunk, CNAME item, END, padded to a word.
    let cname = &cname.as_bytes()[..cname.len().min(64)];
    let items = 2 + cname.len() + 1;
    let chunk = 4 + items.div_ceil(4) * 4;
    let sdes_len = 4 + chunk;
    let s = rr_len;
    buf[s] = 0x81;
    buf[s + 1] = 202;
    buf[s + 2..s + 4].copy_from_slice(&((sdes_len / 4 - 1) as u16).to_be_bytes());
    buf[s + 4..s + 8].copy_from_slice(&ssrc.to_be_bytes());
    buf[s + 8] = 1; // CNAME
    buf[s + 9] = cname.len() as u8;
    buf[s + 10..s + 10 + cname.len()].copy_from_slice(cname);
    let total = rr_len + sdes_len;
    let n = total.min(out.len());
    out[..n].copy_from_slice(&buf[..n]);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_report_round_trip() {
        let block = ReportBlock {
            ssrc: 7,
            fraction_lost: 25,
            cumulative_lost: -3,
            extended_highest_sequence: 0x1_0005,
            jitter: 40,
            last_sr: 0xAABBCCDD,
            delay_since_last_sr: 65536,
        };
        let mut out = [0u8; 128];
        let n = write_receiver_report(&mut out, 99, Some(&block), "outdial@host");
        assert_eq!(n % 4, 0);
        let packets: Vec<_> = parse(&out[..n]).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(packets.len(), 2);
        match packets[0] {
            RtcpPacket::ReceiverReport { ssrc, mut blocks } => {
                assert_eq!(ssrc, 99);
                assert_eq!(blocks.next(), Some(block));
                assert_eq!(blocks.next(), None);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(packets[1], RtcpPacket::Other { packet_type: 202 });
    }

    #[test]
    fn sender_report_and_bye() {
        let mut sr = vec![0x80, 200, 0, 6];
        sr.extend_from_slice(&5u32.to_be_bytes());
        sr.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]);
        sr.extend_from_slice(&[0x81, 203, 0, 1, 0, 0, 0, 5]);
        let packets: Vec<_> = parse(&sr).unwrap().collect::<Result<_, _>>().unwrap();
        assert!(
            matches!(packets[0], RtcpPacket::SenderReport { ssrc: 5, info, .. } if info.packet_count == 4 && info.ntp_timestamp == (1 << 32) | 2)
        );
        assert_eq!(
            packets[1],
            RtcpPacket::Bye {
                ssrcs: &[0, 0, 0, 5]
            }
        );
    }

    #[test]
    fn malformed_compounds_end_in_an_error() {
        assert_eq!(parse(&[]).err(), Some(RtcpError::Short));
        assert_eq!(parse(&[0x80, 202, 0, 0]).err(), Some(RtcpError::NotReport));
        // Claims 2 report blocks but carries none.
        let walk: Vec<_> = parse(&[0x82, 201, 0, 1, 0, 0, 0, 1]).unwrap().collect();
        assert_eq!(walk, vec![Err(RtcpError::BadLength)]);
        let walk: Vec<_> = parse(&[0x80, 201, 0, 9, 0, 0, 0, 1]).unwrap().collect();
        assert_eq!(walk, vec![Err(RtcpError::BadLength)]);
    }
}
