//! One RTP leg's protocol state, sans-IO: validating and latching incoming
//! packets (symmetric RTP), receive statistics, the inactivity timeout,
//! decoded 20 ms frames for CPA and the recorder (through a small reorder
//! window), generated audio (prompt, zip tone, comfort noise) on the leg's
//! one outgoing stream, and RTCP receiver reports. The shell in
//! `net::rtp` owns the sockets and calls in with datagrams and `Instant`s.

use crate::media::dtmf::{DtmfPacket, DtmfSender, event_payload, fill_tone};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::bridge::{OutStream, Source};
use super::g711::Law;
use super::listen_in::VoiceQueue;
use super::prompt::{Prompt, PromptPlayer};
use super::reorder::ReorderWindow;
use super::rtcp::{self, RtcpPacket};
use super::rtp::{RtpPacket, write_header};
use super::stats::{ReceiveStats, SequenceVerdict, StreamSummary};
use super::tones::{ComfortNoise, FRAME_SAMPLES, ZipTone};
use crate::sdp::Negotiated;

/// How long the latched source may be silent before another address may
/// take over (a NAT rebinding, or media moved without a re-INVITE).
const RELATCH_AFTER: Duration = Duration::from_secs(1);
/// A supervisor's voice goes alone once nothing has been sent on the leg's
/// stream for this many packet times (the other party sends nothing in
/// silence, nobody is bridged): three, so a relayed packet a little late
/// is never overtaken, and an RFC 4733 event (relayed every 20 ms or so,
/// carrying no voice) is never split by one.
pub const OVERLAY_ALONE_AFTER_PTIMES: u32 = 3;
/// Most of a supervisor's voice kept waiting once some of it has been
/// sent, in packet times: a supervisor whose clock runs ahead, or a burst
/// after a network stall, never builds up delay.
const OVERLAY_KEPT_PTIMES: usize = 3;
/// RTCP report interval (RFC 3550 §6.2 minimum is 5 s).
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Longest a decoded frame waits for a missing packet before it.
const REORDER_WAIT: Duration = Duration::from_millis(60);
/// Comfort-noise payload type (RFC 3389): accepted, never decoded as G.711.
const PT_COMFORT_NOISE: u8 = 13;

/// One decoded 20 ms frame of the remote party's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFrame {
    pub ssrc: u32,
    /// RTP timestamp of the first sample.
    pub timestamp: u32,
    /// Frames lost (given up) just before this one.
    pub gap: u64,
    pub samples: [i16; FRAME_SAMPLES],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// Packets now come from (and go to) this address.
    Latched(SocketAddr),
    /// No RTP for the inactivity timeout: a dead call.
    Inactive,
    /// The peer sent RTCP BYE.
    RemoteBye,
    /// A prompt or the zip tone finished playing.
    PlaybackFinished,
}

/// Why an incoming datagram was dropped (counted, never fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Malformed,
    UnexpectedPayloadType(u8),
    /// From an address other than the latched one.
    NotLatchedSource,
    Probation,
    Late,
}

/// A validated, latched RTP packet's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub payload_type: u8,
    pub is_event: bool,
    pub ssrc: u32,
}

/// What plays on the leg's outgoing stream when nothing is relayed.
enum Generator {
    Nothing,
    ComfortNoise,
    Prompt(PromptPlayer),
    /// Audio handed over as it arrives from elsewhere (a carrier's early
    /// media relayed to the agent who placed the call).
    Live(LiveAudio),
    /// Digits the agent sends the customer (RFC 4733 events or in-band
    /// tones); nothing is relayed onto the stream meanwhile.
    Dtmf(DtmfSender),
}

/// Most live audio buffered: beyond it the oldest is dropped, so a source
/// running ahead of this leg's clock never builds up delay.
pub const LIVE_BUFFER_SAMPLES: usize = 8 * 120;

/// One of the two live sources a leg mixes (a supervisor listening in
/// hears the agent as one and the customer as the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveSource {
    First,
    Second,
}

/// Live audio waiting to be sent, from up to two sources each with its own
/// queue, summed; a source that runs dry (late, paused, silent) adds
/// silence, never an end.
#[derive(Default)]
struct LiveAudio {
    queues: [VecDeque<i16>; 2],
}

impl LiveAudio {
    fn push(&mut self, source: LiveSource, samples: &[i16]) {
        let queue = &mut self.queues[source as usize];
        queue.extend(samples.iter().copied());
        let excess = queue.len().saturating_sub(LIVE_BUFFER_SAMPLES);
        queue.drain(..excess);
    }

    fn fill(&mut self, frame: &mut [i16]) {
        let [first, second] = &mut self.queues;
        for sample in frame.iter_mut() {
            let a = first.pop_front().unwrap_or(0);
            let b = second.pop_front().unwrap_or(0);
            *sample = a.saturating_add(b);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegSettings {
    pub ssrc: u32,
    pub inactivity_timeout: Duration,
    /// Send comfort noise when nothing else plays (keeps NAT pinholes and
    /// the peer's own inactivity timer happy).
    pub keepalive: bool,
    pub cname: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegCounters {
    pub received: u64,
    pub dropped: u64,
    pub sent: u64,
}

pub struct LegCore {
    settings: LegSettings,
    negotiated: Negotiated,
    latched: Option<SocketAddr>,
    last_receive: Instant,
    inactive_reported: bool,
    stats: Option<ReceiveStats>,
    /// Stats of previous sources (earlier customers on an agent leg).
    finished_streams: StreamSummary,
    decode: bool,
    reorder: ReorderWindow<4>,
    pending_samples: [i16; 480],
    pending_len: usize,
    pending_timestamp: u32,
    pending_gap: u64,
    out: OutStream,
    generator: Generator,
    local_generation: u32,
    local_sequence: u16,
    local_timestamp: u32,
    /// The timestamp (ours) of the RFC 4733 event being sent: all its
    /// packets carry it.
    event_timestamp: u32,
    /// An event cut off (hold, a transfer) still to be ended: its end
    /// packet, the generation it was sent under, and since when it is due.
    event_end_pending: Option<([u8; 4], u32, Instant)>,
    /// How many times that end was sent.
    end_repeats: u8,
    next_send: Option<Instant>,
    noise: ComfortNoise,
    next_rtcp: Instant,
    last_sr: Option<(u32, Instant)>,
    events: VecDeque<LegEvent>,
    /// A supervisor's voice for this leg's party (see `push_overlay`).
    overlay: VoiceQueue,
    /// When the last packet of that voice alone went, and when the next is
    /// due (see `overlay_alone_due`).
    overlay_alone: Option<(Instant, Instant)>,
    /// Samples in the packets last relayed onto this leg with that voice.
    relayed_packet_samples: usize,
    /// RTP only from the negotiated address (see `pin_to_remote`).
    pinned: bool,
    pub counters: LegCounters,
}

impl LegCore {
    pub fn new(settings: LegSettings, negotiated: Negotiated, now: Instant) -> LegCore {
        let ssrc = settings.ssrc;
        let ptime = negotiated.ptime_ms;
        let mut leg = LegCore {
            out: OutStream::new(ssrc, (ssrc >> 16) as u16, ssrc.rotate_left(7), ptime),
            noise: ComfortNoise::new(ssrc),
            settings,
            negotiated,
            latched: None,
            last_receive: now,
            inactive_reported: false,
            stats: None,
            finished_streams: StreamSummary::default(),
            decode: false,
            reorder: ReorderWindow::new(REORDER_WAIT, now),
            pending_samples: [0; 480],
            pending_len: 0,
            pending_timestamp: 0,
            pending_gap: 0,
            generator: Generator::Nothing,
            local_generation: 0,
            local_sequence: 0,
            local_timestamp: 0,
            event_timestamp: 0,
            event_end_pending: None,
            end_repeats: 0,
            next_send: None,
            next_rtcp: now + RTCP_INTERVAL,
            last_sr: None,
            events: VecDeque::new(),
            overlay: VoiceQueue::default(),
            overlay_alone: None,
            relayed_packet_samples: 0,
            pinned: false,
            counters: LegCounters::default(),
        };
        leg.idle(now);
        leg
    }

    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    pub fn law(&self) -> Law {
        self.negotiated.law
    }

    /// A re-INVITE changed the media: new address, codec or direction. The
    /// latch is released so the new address is used at once.
    pub fn renegotiate(&mut self, negotiated: Negotiated, now: Instant) {
        if negotiated.remote != self.negotiated.remote {
            self.latched = None;
        }
        // Off hold: the silence while the far end was not sending to us is
        // no dead line, so the inactivity clock starts again.
        if negotiated.direction.we_receive() && !self.negotiated.direction.we_receive() {
            self.last_receive = now;
            self.inactive_reported = false;
        }
        if negotiated.telephone_event.is_none()
            && let Generator::Dtmf(sender) = &mut self.generator
        {
            sender.to_in_band();
        }
        self.negotiated = negotiated;
    }

    /// Where our packets go: the latched source, else the SDP address.
    pub fn remote(&self) -> Option<SocketAddr> {
        if !self.negotiated.direction.we_send() {
            return None;
        }
        self.latched.or(self.negotiated.remote)
    }

    /// Turns decoding (CPA frames, recording) on or off.
    pub fn set_decode(&mut self, on: bool) {
        self.decode = on;
    }

    pub fn out_stream(&mut self) -> &mut OutStream {
        &mut self.out
    }

    /// Validates an RTP datagram from `from`, latches, updates stats and,
    /// when decoding, queues its audio. The caller may relay `buf` when
    /// this returns `Ok`.
    pub fn on_rtp(
        &mut self,
        buf: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<Accepted, DropReason> {
        let result = self.accept(buf, from, now);
        match result {
            Ok(_) => self.counters.received += 1,
            Err(_) => self.counters.dropped += 1,
        }
        result
    }

    fn accept(
        &mut self,
        buf: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Result<Accepted, DropReason> {
        let packet = RtpPacket::parse(buf).map_err(|_| DropReason::Malformed)?;
        let is_event = Some(packet.payload_type) == self.negotiated.telephone_event;
        if packet.payload_type != self.negotiated.payload_type
            && !is_event
            && packet.payload_type != PT_COMFORT_NOISE
        {
            return Err(DropReason::UnexpectedPayloadType(packet.payload_type));
        }
        if self.pinned && self.negotiated.remote != Some(from) {
            return Err(DropReason::NotLatchedSource);
        }
        match self.latched {
            Some(latched) if latched == from => {}
            Some(_) if now.saturating_duration_since(self.last_receive) < RELATCH_AFTER => {
                return Err(DropReason::NotLatchedSource);
            }
            _ => {
                self.latched = Some(from);
                self.events.push_back(LegEvent::Latched(from));
            }
        }
        self.last_receive = now;
        self.inactive_reported = false;
        let stats = match &mut self.stats {
            Some(stats) if stats.ssrc == packet.ssrc => stats,
            slot => {
                if let Some(old) = slot.take() {
                    let s = old.summary();
                    self.finished_streams.received += s.received;
                    self.finished_streams.expected += s.expected;
                    self.finished_streams.lost += s.lost;
                    self.finished_streams.duplicates_or_late += s.duplicates_or_late;
                    self.finished_streams.jitter_us =
                        self.finished_streams.jitter_us.max(s.jitter_us);
                }
                self.reorder = ReorderWindow::new(REORDER_WAIT, now);
                self.pending_len = 0;
                slot.insert(ReceiveStats::new(packet.ssrc, packet.sequence, 8000, now))
            }
        };
        let extended = match stats.on_packet(packet.sequence, packet.timestamp, now) {
            SequenceVerdict::Accept { extended } => extended,
            // A new source's first packet: relay it, decode from the next.
            SequenceVerdict::Probation => u64::MAX,
            SequenceVerdict::Late => return Err(DropReason::Late),
        };
        if self.decode
            && !is_event
            && packet.payload_type == self.negotiated.payload_type
            && extended != u64::MAX
        {
            self.reorder
                .push(extended, packet.timestamp, packet.payload, now);
        }
        Ok(Accepted {
            payload_type: packet.payload_type,
            is_event,
            ssrc: packet.ssrc,
        })
    }

    /// Next decoded 20 ms frame, if one is ready.
    pub fn poll_frame(&mut self, now: Instant) -> Option<AudioFrame> {
        let ssrc = self.stats.as_ref().map_or(0, |s| s.ssrc);
        loop {
            if self.pending_len >= FRAME_SAMPLES {
                let mut samples = [0i16; FRAME_SAMPLES];
                samples.copy_from_slice(&self.pending_samples[..FRAME_SAMPLES]);
                self.pending_samples
                    .copy_within(FRAME_SAMPLES..self.pending_len, 0);
                self.pending_len -= FRAME_SAMPLES;
                let frame = AudioFrame {
                    ssrc,
                    timestamp: self.pending_timestamp,
                    gap: std::mem::take(&mut self.pending_gap),
                    samples,
                };
                self.pending_timestamp = self.pending_timestamp.wrapping_add(FRAME_SAMPLES as u32);
                return Some(frame);
            }
            let law = self.negotiated.law;
            let released = self.reorder.pop(now)?;
            let room = self.pending_samples.len() - self.pending_len;
            let take = released.payload.len().min(room);
            if self.pending_len == 0 {
                self.pending_timestamp = released.timestamp;
            }
            law.decode_into(
                &released.payload[..take],
                &mut self.pending_samples[self.pending_len..self.pending_len + take],
            );
            self.pending_len += take;
            self.pending_gap += released.gap;
        }
    }

    /// Parses an RTCP datagram: BYE ends the call; SR timing feeds our RR.
    pub fn on_rtcp(&mut self, buf: &[u8], now: Instant) {
        let Ok(compound) = rtcp::parse(buf) else {
            return;
        };
        for packet in compound {
            match packet {
                Ok(RtcpPacket::SenderReport { info, .. }) => {
                    self.last_sr = Some(((info.ntp_timestamp >> 16) as u32, now));
                }
                Ok(RtcpPacket::Bye { .. }) => self.events.push_back(LegEvent::RemoteBye),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }

    /// Plays a prompt (replacing whatever played); `PlaybackFinished` when done.
    pub fn play(&mut self, prompt: Prompt, now: Instant) {
        self.start_generator(Generator::Prompt(PromptPlayer::new(prompt)), now);
    }

    /// Plays live audio from now on: what [`LegCore::push_live`] hands
    /// over, in order, silence while none is waiting (replacing whatever
    /// played; it never finishes by itself).
    pub fn play_live(&mut self, now: Instant) {
        self.start_generator(Generator::Live(LiveAudio::default()), now);
    }

    /// More live audio, after what is waiting (ignored unless playing live).
    pub fn push_live(&mut self, samples: &[i16]) {
        self.push_live_from(LiveSource::First, samples);
    }

    /// More live audio from `source`, mixed with the other's (ignored
    /// unless playing live).
    pub fn push_live_from(&mut self, source: LiveSource, samples: &[i16]) {
        if let Generator::Live(live) = &mut self.generator {
            live.push(source, samples);
        }
    }

    /// A supervisor's voice for this leg's party (whisper, barge): mixed
    /// into what the leg sends next — generated audio and relayed packets
    /// alike ([`LegCore::mix_overlay_into`]) — and sent alone when neither
    /// flows (see [`OVERLAY_ALONE_AFTER_PTIMES`]).
    pub fn push_overlay(&mut self, samples: &[i16]) {
        self.overlay.push(samples);
    }

    /// Drops the supervisor's voice waiting for this leg.
    pub fn clear_overlay(&mut self) {
        self.overlay.clear();
    }

    /// Mixes the waiting supervisor's voice into a packet relayed onto this
    /// leg (already in this leg's law and payload type).
    pub fn mix_overlay_into(&mut self, packet: &mut [u8]) -> bool {
        let law = self.negotiated.law;
        let audio_pt = self.negotiated.payload_type;
        let before = self.overlay.len();
        let mixed = self.overlay.mix_into_packet(packet, law, audio_pt);
        if mixed {
            // The relayed packets' own length (the other party's packet
            // time, which may be longer than ours) sets how long a quiet
            // spell must be before the voice goes alone.
            self.relayed_packet_samples = before - self.overlay.len();
            self.overlay
                .keep_newest(OVERLAY_KEPT_PTIMES * self.relayed_packet_samples.max(1));
        }
        mixed
    }

    /// Whether the voice is going alone now: its last packet was the last
    /// one sent on the stream.
    fn overlay_going_alone(&self) -> bool {
        self.overlay_alone
            .is_some_and(|(at, _)| self.out.last_sent() == Some(at))
    }

    /// When a supervisor's voice that waits goes alone (see
    /// [`OVERLAY_ALONE_AFTER_PTIMES`]): `None` while none waits or the leg
    /// generates its own audio (which carries it).
    fn overlay_alone_due(&self) -> Option<Instant> {
        if self.overlay.is_empty() || self.next_send.is_some() {
            return None;
        }
        if self.overlay_going_alone() {
            return self.overlay_alone.map(|(_, next_due)| next_due);
        }
        let Some(last_sent) = self.out.last_sent() else {
            // Nothing ever sent on this stream: at once (any instant
            // passed will do; this one always is).
            return Some(self.last_receive);
        };
        // The longer of our packet time and the relayed packets'.
        let packet_samples =
            (8 * self.negotiated.ptime_ms as usize).max(self.relayed_packet_samples);
        let packet_time = Duration::from_micros(packet_samples as u64 * 125);
        Some(last_sent + packet_time * OVERLAY_ALONE_AFTER_PTIMES)
    }

    /// Takes RTP only from the negotiated address, never latching onto
    /// another: for legs whose peer is a socket of our own (a browser
    /// phone's leg side), which nobody else may stand in for.
    pub fn pin_to_remote(&mut self) {
        self.pinned = true;
    }

    /// Plays the zip tone (to this leg only).
    pub fn play_zip(&mut self, tone: &ZipTone, now: Instant) {
        self.play(Prompt::from_samples(tone.samples()), now);
    }

    /// Stops generating: the bridge relays onto this leg now.
    pub fn stop_generating(&mut self) {
        self.leave_dtmf();
        self.generator = Generator::Nothing;
        self.next_send = None;
    }

    /// Digits cut off by another generator: an event under way is ended
    /// (sent before anything else, `poll_transmit`), never left "held
    /// down" at the far end.
    fn leave_dtmf(&mut self) {
        if let Generator::Dtmf(sender) = &self.generator
            && let Some((code, duration)) = sender.interrupted_event()
        {
            let since = self.out.last_sent().unwrap_or(self.last_receive);
            self.event_end_pending = Some((
                event_payload(code, true, duration),
                self.local_generation,
                since,
            ));
        }
    }

    /// Back to the idle keepalive (comfort noise or nothing).
    pub fn idle(&mut self, now: Instant) {
        if self.settings.keepalive {
            self.start_generator(Generator::ComfortNoise, now);
        } else {
            self.stop_generating();
        }
    }

    pub fn is_playing(&self) -> bool {
        matches!(self.generator, Generator::Prompt(_))
    }

    /// Sends these digits ([`crate::media::dtmf::parse_digits`]) to the
    /// remote party: RFC 4733 events if it negotiated them, else in-band
    /// tones. Packets relayed onto this leg are to be held back meanwhile
    /// ([`LegCore::is_sending_dtmf`]); at the end the leg goes quiet (a
    /// relay takes the stream again).
    pub fn send_dtmf(&mut self, codes: &[u8], now: Instant) {
        // Digits asked for while others sound go after them.
        if let Generator::Dtmf(sender) = &mut self.generator {
            sender.extend(codes);
            return;
        }
        let events = self.negotiated.telephone_event.is_some();
        self.start_generator(Generator::Dtmf(DtmfSender::new(codes, events)), now);
    }

    pub fn is_sending_dtmf(&self) -> bool {
        matches!(self.generator, Generator::Dtmf(_))
    }

    fn start_generator(&mut self, generator: Generator, now: Instant) {
        self.leave_dtmf();
        self.generator = generator;
        self.local_generation = self.local_generation.wrapping_add(1);
        self.next_send = Some(now);
    }

    /// A generated packet when one is due: written into `out`, with the
    /// address to send it to.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<(usize, SocketAddr)> {
        if let Some((payload, generation, _)) = self.event_end_pending {
            // The cut-off event's end, three times, on its own timestamp.
            let sent = self.write_event_as(payload, false, 0, generation, now, out);
            self.end_repeats += 1;
            if sent.is_none() || self.end_repeats >= 3 {
                self.event_end_pending = None;
                self.end_repeats = 0;
            }
            if sent.is_some() {
                return sent;
            }
        }
        let samples_per_packet = (8 * self.negotiated.ptime_ms) as usize;
        let mut samples = [0i16; 480];
        let samples = &mut samples[..samples_per_packet.min(480)];
        let Some(due) = self.next_send else {
            // Nothing generated (the leg relays, or is quiet): a
            // supervisor's voice that nothing has carried for a while goes
            // alone, on a schedule of its own.
            let due = self.overlay_alone_due()?;
            if now < due {
                return None;
            }
            if self.remote().is_none() {
                // Nowhere to send it (the phone holds the call): dropped,
                // not kept to be heard late.
                self.overlay.clear();
                return None;
            }
            let ptime = Duration::from_millis(u64::from(self.negotiated.ptime_ms));
            // On schedule: the next packet of voice going alone, woken
            // about when it was due (a timer's usual lateness). Else — the
            // first after relayed packets, or after a slot with nothing to
            // send — a new source for the stream, so its timestamp is
            // placed by the wall clock (and marked), not one packet after
            // the last one however long ago that was.
            let on_schedule = self.overlay_going_alone() && now < due + ptime / 2;
            let next_due = if on_schedule {
                due + ptime
            } else {
                self.local_generation = self.local_generation.wrapping_add(1);
                now + ptime
            };
            self.overlay.add_into(samples);
            self.overlay
                .keep_newest(OVERLAY_KEPT_PTIMES * samples.len());
            let sent = self.write_generated(samples, now, out);
            self.overlay_alone = self.out.last_sent().map(|at| (at, next_due));
            return sent;
        };
        if now < due {
            return None;
        }
        let ptime = Duration::from_millis(u64::from(self.negotiated.ptime_ms));
        // After a stall, resume on time rather than bursting to catch up.
        self.next_send = Some(if now.saturating_duration_since(due) > 3 * ptime {
            now + ptime
        } else {
            due + ptime
        });
        if let Generator::Dtmf(sender) = &mut self.generator {
            match sender.next(samples.len() as u32) {
                DtmfPacket::Done => {
                    self.stop_generating();
                    // A supervisor's words queued meanwhile were not heard
                    // then, and are not heard late.
                    self.overlay.clear();
                    return None;
                }
                DtmfPacket::Event {
                    code,
                    end,
                    duration,
                    first,
                } => {
                    let payload = event_payload(code, end, duration);
                    return self.write_event(payload, first, samples.len(), now, out);
                }
                DtmfPacket::Audio { code, offset } => {
                    fill_tone(code, offset, samples);
                    return self.write_generated(samples, now, out);
                }
            }
        }
        let mut frame = [0i16; FRAME_SAMPLES];
        for chunk in samples.chunks_mut(FRAME_SAMPLES) {
            let n = chunk.len();
            match &mut self.generator {
                Generator::Nothing => {
                    self.next_send = None;
                    return None;
                }
                Generator::ComfortNoise => self.noise.fill(&mut frame[..n]),
                Generator::Live(live) => live.fill(&mut frame[..n]),
                // Sent above.
                Generator::Dtmf(_) => return None,
                Generator::Prompt(player) => {
                    if !player.next_frame(&mut frame) {
                        self.events.push_back(LegEvent::PlaybackFinished);
                        self.idle(now);
                        return None;
                    }
                }
            }
            chunk.copy_from_slice(&frame[..n]);
        }
        self.overlay.add_into(samples);
        self.overlay
            .keep_newest(OVERLAY_KEPT_PTIMES * samples.len());
        self.write_generated(samples, now, out)
    }

    /// Writes a packet of our own audio into `out` (our stream's numbering).
    fn write_generated(
        &mut self,
        samples: &[i16],
        now: Instant,
        out: &mut [u8],
    ) -> Option<(usize, SocketAddr)> {
        let remote = self.remote()?;
        self.local_sequence = self.local_sequence.wrapping_add(1);
        self.local_timestamp = self.local_timestamp.wrapping_add(samples.len() as u32);
        let header = self.out.map(
            Source::Local(self.local_generation),
            self.local_sequence,
            self.local_timestamp,
            now,
        );
        let len = 12 + samples.len();
        let buf = out.get_mut(..len)?;
        write_header(
            buf,
            header.marker,
            self.negotiated.payload_type,
            header.sequence,
            header.timestamp,
            self.out.ssrc(),
        );
        self.negotiated.law.encode_into(samples, &mut buf[12..]);
        self.out.octets += samples.len() as u64;
        self.counters.sent += 1;
        Some((len, remote))
    }

    /// Writes an RFC 4733 event packet into `out`, in the slot of `samples`
    /// samples: our stream's numbering, the event's start as timestamp
    /// (`first`: this slot starts it, with the marker bit).
    fn write_event(
        &mut self,
        payload: [u8; 4],
        first: bool,
        samples: usize,
        now: Instant,
        out: &mut [u8],
    ) -> Option<(usize, SocketAddr)> {
        let generation = self.local_generation;
        self.write_event_as(payload, first, samples, generation, now, out)
    }

    /// [`LegCore::write_event`] under `generation` (an event cut off by a
    /// new generator is ended under its own).
    fn write_event_as(
        &mut self,
        payload: [u8; 4],
        first: bool,
        samples: usize,
        generation: u32,
        now: Instant,
        out: &mut [u8],
    ) -> Option<(usize, SocketAddr)> {
        let remote = self.remote()?;
        let payload_type = self.negotiated.telephone_event?;
        self.local_sequence = self.local_sequence.wrapping_add(1);
        self.local_timestamp = self.local_timestamp.wrapping_add(samples as u32);
        if first {
            self.event_timestamp = self.local_timestamp;
        }
        let header = self.out.map(
            Source::Local(generation),
            self.local_sequence,
            self.event_timestamp,
            now,
        );
        // The stream's clock goes on under the event: what follows it is
        // placed after this slot, not after the event's start.
        self.out.advance_clock_to(self.local_timestamp);
        let buf = out.get_mut(..16)?;
        write_header(
            buf,
            header.marker || first,
            payload_type,
            header.sequence,
            header.timestamp,
            self.out.ssrc(),
        );
        buf[12..].copy_from_slice(&payload);
        self.out.octets += 4;
        self.counters.sent += 1;
        Some((16, remote))
    }

    /// An RTCP receiver report when one is due, for the RTCP port.
    pub fn poll_rtcp(&mut self, now: Instant, out: &mut [u8]) -> Option<(usize, SocketAddr)> {
        if now < self.next_rtcp {
            return None;
        }
        self.next_rtcp = now + RTCP_INTERVAL;
        let remote = self.latched.or(self.negotiated.remote)?;
        let rtcp_remote = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
        let mut block = self.stats.as_mut().map(ReceiveStats::report_block);
        if let (Some(block), Some((lsr, at))) = (block.as_mut(), self.last_sr) {
            block.last_sr = lsr;
            block.delay_since_last_sr =
                (now.saturating_duration_since(at).as_micros() * 65536 / 1_000_000) as u32;
        }
        let len = rtcp::write_receiver_report(
            out,
            self.settings.ssrc,
            block.as_ref(),
            &self.settings.cname,
        );
        Some((len, rtcp_remote))
    }

    pub fn poll_event(&mut self, now: Instant) -> Option<LegEvent> {
        if !self.inactive_reported
            && self.negotiated.direction.we_receive()
            && now.saturating_duration_since(self.last_receive) >= self.settings.inactivity_timeout
        {
            self.inactive_reported = true;
            self.events.push_back(LegEvent::Inactive);
        }
        self.events.pop_front()
    }

    /// The earliest time something is due: a packet to send, an RTCP
    /// report, a reorder release or the inactivity timeout.
    pub fn deadline(&self) -> Instant {
        let mut deadline = self.next_rtcp;
        if let Some(t) = self.next_send {
            deadline = deadline.min(t);
        }
        if let Some(t) = self.reorder.deadline() {
            deadline = deadline.min(t);
        }
        if let Some(t) = self.overlay_alone_due() {
            deadline = deadline.min(t);
        }
        if let Some((.., since)) = self.event_end_pending {
            deadline = deadline.min(since);
        }
        // On hold (not receiving) the inactivity clock is stopped: a past
        // deadline here would wake the task in a loop.
        if !self.inactive_reported && self.negotiated.direction.we_receive() {
            deadline = deadline.min(self.last_receive + self.settings.inactivity_timeout);
        }
        deadline
    }

    /// Receive statistics of every source this leg has had.
    pub fn summary(&self) -> StreamSummary {
        let mut total = self.finished_streams;
        if let Some(stats) = &self.stats {
            let s = stats.summary();
            total.received += s.received;
            total.expected += s.expected;
            total.lost += s.lost;
            total.duplicates_or_late += s.duplicates_or_late;
            total.jitter_us = total.jitter_us.max(s.jitter_us);
        }
        total
    }
}

#[cfg(test)]
mod tests;
