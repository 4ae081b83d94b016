//! A supervisor listening in on an agent: what each party hears, and the
//! supervisor's voice mixed into a relayed stream.
//!
//! The supervisor hears the agent and the customer mixed (the supervisor's
//! leg plays them live, two sources: [`crate::media::leg::LiveSource`]). In
//! the modes where the supervisor speaks, the voice is mixed *into* the
//! packets the bridge relays anyway, in place: the customer's voice reaches
//! the agent as promptly as without a supervisor, and nothing is added to
//! a stream while the supervisor is silent.

use std::collections::VecDeque;

use super::g711::Law;
use super::rtp::RtpPacket;

/// What the supervisor does on the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenMode {
    /// Silent monitoring: the supervisor hears both; nobody hears the
    /// supervisor.
    Monitor,
    /// Coaching: the agent hears the supervisor, the customer does not.
    Whisper,
    /// Three-way: both hear the supervisor.
    Barge,
}

impl ListenMode {
    pub fn agent_hears_supervisor(self) -> bool {
        matches!(self, ListenMode::Whisper | ListenMode::Barge)
    }

    pub fn customer_hears_supervisor(self) -> bool {
        self == ListenMode::Barge
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ListenMode::Monitor => "monitor",
            ListenMode::Whisper => "whisper",
            ListenMode::Barge => "barge",
        }
    }
}

/// Most of the supervisor's voice held for one stream: 120 ms. Beyond it
/// the oldest goes, so a supervisor's clock running ahead of the relayed
/// stream's never builds up delay.
pub const VOICE_QUEUE_SAMPLES: usize = 8 * 120;

/// The supervisor's voice waiting for the next packet relayed to one party.
#[derive(Debug, Default)]
pub struct VoiceQueue {
    samples: VecDeque<i16>,
}

impl VoiceQueue {
    pub fn push(&mut self, samples: &[i16]) {
        self.samples.extend(samples.iter().copied());
        let excess = self.samples.len().saturating_sub(VOICE_QUEUE_SAMPLES);
        self.samples.drain(..excess);
    }

    /// Drops all but the newest `samples` waiting.
    pub fn keep_newest(&mut self, samples: usize) {
        let excess = self.samples.len().saturating_sub(samples);
        self.samples.drain(..excess);
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Adds the waiting voice to `samples` (as much as waits), with
    /// saturation. False: none waited.
    pub fn add_into(&mut self, samples: &mut [i16]) -> bool {
        let mut added = false;
        for sample in samples.iter_mut() {
            let Some(voice) = self.samples.pop_front() else {
                break;
            };
            *sample = sample.saturating_add(voice);
            added = true;
        }
        added
    }

    /// Mixes the waiting voice into `packet`, an RTP packet of `law` audio
    /// under payload type `audio_pt` (anything else — an RFC 4733 event, a
    /// malformed packet — is left as it is). Takes as many samples as the
    /// packet carries, or what waits if less. False: nothing mixed (no
    /// voice waits, or the packet carries no audio).
    pub fn mix_into_packet(&mut self, packet: &mut [u8], law: Law, audio_pt: u8) -> bool {
        if self.samples.is_empty() {
            return false;
        }
        let (offset, len) = match RtpPacket::parse(packet) {
            Ok(p) if p.payload_type == audio_pt => (p.payload_offset, p.payload.len()),
            _ => return false,
        };
        let Some(payload) = packet.get_mut(offset..offset + len) else {
            return false;
        };
        let mut mixed = false;
        for code in payload.iter_mut() {
            let Some(voice) = self.samples.pop_front() else {
                break;
            };
            *code = law.encode(law.decode(*code).saturating_add(voice));
            mixed = true;
        }
        mixed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::write_header;
    use proptest::prelude::*;

    fn packet(law: Law, samples: &[i16]) -> Vec<u8> {
        let mut buf = vec![0u8; 12 + samples.len()];
        write_header(&mut buf, false, law.payload_type(), 7, 1120, 0xABCD);
        law.encode_into(samples, &mut buf[12..]);
        buf
    }

    fn decoded(law: Law, packet: &[u8]) -> Vec<i16> {
        packet[12..].iter().map(|&c| law.decode(c)).collect()
    }

    #[test]
    fn modes_say_who_hears_the_supervisor() {
        assert!(!ListenMode::Monitor.agent_hears_supervisor());
        assert!(!ListenMode::Monitor.customer_hears_supervisor());
        assert!(ListenMode::Whisper.agent_hears_supervisor());
        assert!(!ListenMode::Whisper.customer_hears_supervisor());
        assert!(ListenMode::Barge.agent_hears_supervisor());
        assert!(ListenMode::Barge.customer_hears_supervisor());
        let parsed: ListenMode = serde_json::from_str("\"whisper\"").unwrap();
        assert_eq!(parsed, ListenMode::Whisper);
        assert_eq!(ListenMode::Barge.as_str(), "barge");
    }

    #[test]
    fn the_voice_is_added_to_the_relayed_audio_in_order() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut queue = VoiceQueue::default();
            queue.push(&[1000; 100]);
            queue.push(&[-2000; 100]);
            let mut buf = packet(law, &[500; 160]);
            let header = buf[..12].to_vec();
            assert!(queue.mix_into_packet(&mut buf, law, law.payload_type()));
            assert_eq!(&buf[..12], &header[..], "the header is the relay's");
            let heard = decoded(law, &buf);
            // G.711 steps are a few percent of the level.
            assert!(heard[..100].iter().all(|&s| (1400..=1600).contains(&s)));
            assert!(heard[100..].iter().all(|&s| (-1600..=-1400).contains(&s)));
            assert_eq!(queue.len(), 40, "one packet's worth taken");
            // The rest goes into the next packet; then it runs dry.
            let mut next = packet(law, &[0; 160]);
            assert!(queue.mix_into_packet(&mut next, law, law.payload_type()));
            let heard = decoded(law, &next);
            assert!(heard[..40].iter().all(|&s| (-2100..=-1900).contains(&s)));
            assert!(heard[40..].iter().all(|&s| s.abs() < 10));
            assert!(queue.is_empty());
        }
    }

    #[test]
    fn a_silent_supervisor_leaves_the_packet_untouched() {
        let mut queue = VoiceQueue::default();
        let mut buf = packet(Law::Ulaw, &[0; 160]);
        // 0x7f is μ-law's "negative zero": re-encoding would change it.
        buf[20] = 0x7f;
        let before = buf.clone();
        assert!(!queue.mix_into_packet(&mut buf, Law::Ulaw, 0));
        assert_eq!(buf, before);
    }

    #[test]
    fn events_and_garbage_are_not_mixed_into() {
        let mut queue = VoiceQueue::default();
        queue.push(&[3000; 160]);
        let mut event = vec![0u8; 16];
        write_header(&mut event, true, 101, 1, 160, 5);
        event[12..].copy_from_slice(&[1, 0x8a, 0, 160]);
        let before = event.clone();
        assert!(!queue.mix_into_packet(&mut event, Law::Ulaw, 0));
        assert_eq!(event, before);
        let mut garbage = vec![0xffu8; 7];
        assert!(!queue.mix_into_packet(&mut garbage, Law::Ulaw, 0));
        assert_eq!(queue.len(), 160, "nothing taken");
    }

    #[test]
    fn loud_voices_saturate_instead_of_wrapping() {
        let mut queue = VoiceQueue::default();
        queue.push(&[i16::MAX; 160]);
        let mut buf = packet(Law::Ulaw, &[30_000; 160]);
        queue.mix_into_packet(&mut buf, Law::Ulaw, 0);
        assert!(decoded(Law::Ulaw, &buf).iter().all(|&s| s > 30_000));
    }

    #[test]
    fn a_supervisor_ahead_of_the_stream_never_builds_up_delay() {
        let mut queue = VoiceQueue::default();
        for n in 0..20 {
            queue.push(&[n * 100; 160]);
        }
        assert_eq!(queue.len(), VOICE_QUEUE_SAMPLES);
        // What is left is the newest 120 ms.
        let mut buf = packet(Law::Ulaw, &[0; 160]);
        queue.mix_into_packet(&mut buf, Law::Ulaw, 0);
        let first = Law::Ulaw.decode(buf[12]);
        assert!((1300..=1500).contains(&first), "{first}");
    }

    proptest! {
        #[test]
        fn any_packet_and_voice_never_panic_and_keep_the_length(
            packet in proptest::collection::vec(any::<u8>(), 0..400),
            voice in proptest::collection::vec(any::<i16>(), 0..2000),
            pt in 0u8..128,
        ) {
            let mut queue = VoiceQueue::default();
            queue.push(&voice);
            prop_assert!(queue.len() <= VOICE_QUEUE_SAMPLES);
            let mut buf = packet.clone();
            let before = queue.len();
            let mixed = queue.mix_into_packet(&mut buf, Law::Alaw, pt);
            prop_assert_eq!(buf.len(), packet.len());
            prop_assert_eq!(mixed, before != queue.len());
            if !mixed {
                prop_assert_eq!(buf, packet);
            }
        }
    }
}
