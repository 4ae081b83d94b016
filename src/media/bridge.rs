//! The bridge's header rewriting. Every stream we send on a leg goes
//! through one [`OutStream`]: our own generated audio (zip tone, prompts,
//! comfort noise) and audio relayed from whichever customer is bridged in.
//! It keeps one SSRC for the life of the leg and continuous sequence
//! numbers and timestamps across sources, so the agent's phone sees one
//! unbroken stream across many customers (a new source only sets the
//! marker bit). Relayed packets are rewritten in place — payload-type map,
//! G.711 transcoding, RFC 4733 events passed through — with no allocation.

use std::time::Instant;

use super::g711::Law;
use super::rtp::{RtpPacket, rewrite_header};

/// Where the packets of a stream come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Audio we generate; the number changes each time generation restarts.
    Local(u32),
    /// A remote stream, by its SSRC.
    Remote(u32),
}

/// The outgoing stream of one leg: SSRC, sequence and timestamp state.
#[derive(Debug, Clone)]
pub struct OutStream {
    ssrc: u32,
    clock_rate: u32,
    samples_per_packet: u32,
    last_sequence: u16,
    last_timestamp: u32,
    last_sent: Option<Instant>,
    source: Option<Source>,
    sequence_offset: u16,
    timestamp_offset: u32,
    pub packets: u64,
    pub octets: u64,
}

/// The header fields for one outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutHeader {
    pub sequence: u16,
    pub timestamp: u32,
    /// Set on the first packet of a new source (RFC 3550: talkspurt start).
    pub marker: bool,
}

impl OutStream {
    pub fn new(
        ssrc: u32,
        initial_sequence: u16,
        initial_timestamp: u32,
        ptime_ms: u32,
    ) -> OutStream {
        OutStream {
            ssrc,
            clock_rate: 8000,
            samples_per_packet: 8 * ptime_ms.max(10),
            last_sequence: initial_sequence.wrapping_sub(1),
            last_timestamp: initial_timestamp.wrapping_sub(8 * ptime_ms.max(10)),
            last_sent: None,
            source: None,
            sequence_offset: 0,
            timestamp_offset: 0,
            packets: 0,
            octets: 0,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn source(&self) -> Option<Source> {
        self.source
    }

    /// When the last packet of this stream (ours or relayed) went.
    pub fn last_sent(&self) -> Option<Instant> {
        self.last_sent
    }

    /// Maps a packet of `source` with its own sequence and timestamp onto
    /// this stream. A new source continues our sequence at +1 and our
    /// timestamp by the wall time since our last packet (at least one
    /// packet's worth), so the receiver's jitter buffer sees no jump.
    pub fn map(
        &mut self,
        source: Source,
        sequence: u16,
        timestamp: u32,
        now: Instant,
    ) -> OutHeader {
        let mut marker = false;
        if self.source != Some(source) {
            let elapsed = self
                .last_sent
                .map(|t| {
                    now.saturating_duration_since(t).as_micros() as u64 * u64::from(self.clock_rate)
                        / 1_000_000
                })
                .unwrap_or(0);
            // Round to whole packets so the stream's timestamp grid holds.
            let packets = (elapsed + u64::from(self.samples_per_packet) / 2)
                / u64::from(self.samples_per_packet);
            let advance = (packets.max(1) * u64::from(self.samples_per_packet)) as u32;
            let next_timestamp = self.last_timestamp.wrapping_add(advance);
            let next_sequence = self.last_sequence.wrapping_add(1);
            self.sequence_offset = next_sequence.wrapping_sub(sequence);
            self.timestamp_offset = next_timestamp.wrapping_sub(timestamp);
            self.source = Some(source);
            marker = true;
        }
        let out_sequence = sequence.wrapping_add(self.sequence_offset);
        let out_timestamp = timestamp.wrapping_add(self.timestamp_offset);
        // Track the newest packet (a reordered one must not move us back).
        if out_sequence.wrapping_sub(self.last_sequence) < 0x8000 || marker {
            self.last_sequence = out_sequence;
            self.last_timestamp = out_timestamp;
        }
        self.last_sent = Some(now);
        self.packets += 1;
        OutHeader {
            sequence: out_sequence,
            timestamp: out_timestamp,
            marker,
        }
    }
}

impl OutStream {
    /// The current source's packet slot at `timestamp` (its own clock) went
    /// by, though the packet sent in it carried an earlier timestamp (an
    /// RFC 4733 event keeps its start's): the stream's clock is at that
    /// slot, so a next source is placed after it.
    pub fn advance_clock_to(&mut self, timestamp: u32) {
        let slot = timestamp.wrapping_add(self.timestamp_offset);
        if slot.wrapping_sub(self.last_timestamp) < 0x8000_0000 {
            self.last_timestamp = slot;
        }
    }
}

/// How packets from one leg must change to be sent on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    pub from_law: Law,
    pub from_audio_pt: u8,
    pub from_event_pt: Option<u8>,
    pub to_law: Law,
    pub to_audio_pt: u8,
    pub to_event_pt: Option<u8>,
}

/// Why a relayed packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayDrop {
    /// A payload type the two legs did not negotiate (CN, video, …).
    UnknownPayloadType(u8),
    /// A telephone-event but the other leg has none negotiated.
    NoEventOnOtherLeg,
    /// Not an RTP packet.
    Malformed,
}

/// Rewrites one RTP datagram in place for the other leg's stream and
/// returns the length to send.
pub fn relay_in_place(
    buf: &mut [u8],
    translation: &Translation,
    out: &mut OutStream,
    now: Instant,
) -> Result<usize, RelayDrop> {
    let (marker, payload_type, sequence, timestamp, ssrc, payload_offset, payload_len) = {
        let packet = RtpPacket::parse(buf).map_err(|_| RelayDrop::Malformed)?;
        (
            packet.marker,
            packet.payload_type,
            packet.sequence,
            packet.timestamp,
            packet.ssrc,
            packet.payload_offset,
            packet.payload.len(),
        )
    };
    let len = payload_offset + payload_len;
    let out_payload_type = if payload_type == translation.from_audio_pt {
        if translation.from_law != translation.to_law
            && let Some(payload) = buf.get_mut(payload_offset..len)
        {
            translation
                .from_law
                .transcode_in_place(translation.to_law, payload);
        }
        translation.to_audio_pt
    } else if Some(payload_type) == translation.from_event_pt {
        translation
            .to_event_pt
            .ok_or(RelayDrop::NoEventOnOtherLeg)?
    } else {
        return Err(RelayDrop::UnknownPayloadType(payload_type));
    };
    let header = out.map(Source::Remote(ssrc), sequence, timestamp, now);
    // RFC 4733: keep the sender's marker (start of an event); add ours on a
    // new source. Padding is dropped with the length.
    rewrite_header(
        buf,
        header.marker || marker,
        out_payload_type,
        header.sequence,
        header.timestamp,
        out.ssrc(),
    );
    if let Some(first) = buf.first_mut() {
        *first &= !0x20;
    }
    out.octets += payload_len as u64;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::media::g711;
    use crate::media::rtp::write_header;

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, fill: u8) -> Vec<u8> {
        let mut buf = vec![fill; 172];
        write_header(&mut buf, false, pt, seq, ts, ssrc);
        buf
    }

    const ULAW_TO_ALAW: Translation = Translation {
        from_law: Law::Ulaw,
        from_audio_pt: 0,
        from_event_pt: Some(101),
        to_law: Law::Alaw,
        to_audio_pt: 8,
        to_event_pt: Some(96),
    };

    #[test]
    fn one_ssrc_and_continuous_numbers_across_customers() {
        let t0 = Instant::now();
        let mut out = OutStream::new(0xA6E27, 100, 5000, 20);
        let mut sent = Vec::new();
        let mut now = t0;
        // Zip tone (local), customer A, zip tone, customer B.
        let sources: [(Source, u16, u32); 4] = [
            (Source::Local(1), 0, 0),
            (Source::Remote(0xAAAA), 60000, 4_000_000_000),
            (Source::Local(2), 0, 0),
            (Source::Remote(0xBBBB), 7, 123),
        ];
        for (source, seq0, ts0) in sources {
            for i in 0..10u16 {
                let h = out.map(
                    source,
                    seq0.wrapping_add(i),
                    ts0.wrapping_add(160 * u32::from(i)),
                    now,
                );
                sent.push(h);
                now += Duration::from_millis(20);
            }
            now += Duration::from_millis(200); // a pause between sources
        }
        for pair in sent.windows(2) {
            assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
            let step = pair[1].timestamp.wrapping_sub(pair[0].timestamp);
            // 160 within a source; across a source change the 200 ms pause.
            assert!(step == 160 || step == 160 + 1600, "{step}");
        }
        assert_eq!(sent[0].sequence, 100);
        assert_eq!(sent[0].timestamp, 5000);
        assert_eq!(sent.iter().filter(|h| h.marker).count(), 4);
    }

    #[test]
    fn relays_transcodes_and_maps_events_in_place() {
        let t0 = Instant::now();
        let mut out = OutStream::new(42, 1, 1, 20);
        let mut buf = packet(0, 10, 1000, 7, 0x00);
        for (i, b) in buf[12..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let parsed_len = relay_in_place(&mut buf, &ULAW_TO_ALAW, &mut out, t0).unwrap();
        assert_eq!(parsed_len, 172);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(
            (p.payload_type, p.ssrc, p.sequence, p.timestamp, p.marker),
            (8, 42, 1, 1, true)
        );
        for (i, &b) in p.payload.iter().enumerate() {
            assert_eq!(b, g711::ulaw_to_alaw(i as u8));
        }
        // A DTMF event: payload untouched, PT mapped, same timestamp grid.
        let mut event = packet(101, 11, 1000, 7, 0);
        event.truncate(16);
        event[12..16].copy_from_slice(&[5, 0x80, 0, 160]);
        assert_eq!(
            relay_in_place(&mut event, &ULAW_TO_ALAW, &mut out, t0),
            Ok(16)
        );
        let p = RtpPacket::parse(&event).unwrap();
        assert_eq!(
            (p.payload_type, p.sequence, p.timestamp, p.payload),
            (96, 2, 1, &[5, 0x80, 0, 160][..])
        );
        // Comfort noise (PT 13) was not negotiated: dropped.
        let mut cn = packet(13, 12, 1160, 7, 0);
        assert_eq!(
            relay_in_place(&mut cn, &ULAW_TO_ALAW, &mut out, t0),
            Err(RelayDrop::UnknownPayloadType(13))
        );
    }

    #[test]
    fn reordered_packets_keep_their_order_and_do_not_rewind() {
        let t0 = Instant::now();
        let mut out = OutStream::new(1, 500, 0, 20);
        let a = out.map(Source::Remote(9), 10, 0, t0);
        let c = out.map(Source::Remote(9), 12, 320, t0);
        let b = out.map(Source::Remote(9), 11, 160, t0);
        assert_eq!((a.sequence, b.sequence, c.sequence), (500, 501, 502));
        // Next source continues after the newest (502), not the last seen.
        let d = out.map(Source::Local(1), 0, 0, t0);
        assert_eq!(d.sequence, 503);
    }
}
