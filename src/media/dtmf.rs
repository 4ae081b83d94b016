//! Digits an agent sends to the customer (an IVR menu on a business line,
//! an extension): RFC 4733 telephone-events when the customer's side
//! negotiated them, else in-band DTMF tones (ITU-T Q.23 pairs), which
//! G.711 carries intact. Sans-IO: [`DtmfSender`] says, packet by packet,
//! what the leg sends next; the leg writes it (`media::leg`).
//!
//! Timing: each digit is a 100 ms tone (5 packets at 20 ms; Q.24 asks for
//! ≥ 40 ms) followed by a 60 ms pause; RFC 4733 §2.5.1.4: the end of an
//! event is sent three times, with the same timestamp and duration.

use std::collections::VecDeque;

use thiserror::Error;

/// How long each digit sounds.
pub const TONE_MS: u32 = 100;
/// The pause after each digit.
pub const PAUSE_MS: u32 = 60;
/// Most digits one request may send.
pub const MAX_DIGITS: usize = 32;
/// The volume field of an event: −10 dBm0 (RFC 4733 §2.3.4: 0–63, the
/// power level below 0 dBm0).
const VOLUME_DBM0: u8 = 10;
/// How many times an event's end is sent.
const END_REPEATS: u8 = 3;
/// The amplitude of each of an in-band pair's two tones (≈ −10 dBm0 each
/// in μ-law's scale, where a full-scale sine is +3 dBm0).
const TONE_AMPLITUDE: f64 = 7_000.0;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DtmfError {
    #[error("no digits to send")]
    Empty,
    #[error("at most {MAX_DIGITS} digits at once")]
    TooMany,
    #[error("`{0}` is not a DTMF digit (0-9, *, #, A-D)")]
    NotADigit(char),
}

/// The RFC 4733 event code of a key (0–9, `*` 10, `#` 11, A–D 12–15).
pub fn event_code(key: char) -> Option<u8> {
    match key.to_ascii_uppercase() {
        c @ '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        c @ 'A'..='D' => Some(12 + (c as u8 - b'A')),
        _ => None,
    }
}

/// The digits of `keys`, checked (spaces and dashes, as typed between
/// groups, are left out).
pub fn parse_digits(keys: &str) -> Result<Vec<u8>, DtmfError> {
    let codes = keys
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| event_code(c).ok_or(DtmfError::NotADigit(c)))
        .collect::<Result<Vec<u8>, DtmfError>>()?;
    match codes.len() {
        0 => Err(DtmfError::Empty),
        n if n > MAX_DIGITS => Err(DtmfError::TooMany),
        _ => Ok(codes),
    }
}

/// The Q.23 frequency pair (low, high) of an event code.
pub fn frequencies(code: u8) -> (f64, f64) {
    const LOW: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const HIGH: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    // Row and column on the keypad: 1 2 3 A / 4 5 6 B / 7 8 9 C / * 0 # D.
    let (row, column) = match code {
        1..=9 => ((code - 1) / 3, (code - 1) % 3),
        0 => (3, 1),
        10 => (3, 0),
        11 => (3, 2),
        12..=15 => (code - 12, 3),
        _ => (3, 1),
    };
    (LOW[usize::from(row)], HIGH[usize::from(column)])
}

/// What to send in the next packet slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfPacket {
    /// An RFC 4733 event packet: `first` carries the marker bit and starts
    /// the event's timestamp; `duration` is in samples since that start.
    Event {
        code: u8,
        end: bool,
        duration: u16,
        first: bool,
    },
    /// Audio: the in-band tone of `code` (`None`: silence, the pause),
    /// from `offset` samples into the digit.
    Audio { code: Option<u8>, offset: u32 },
    /// All sent.
    Done,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Sounding: samples sent so far.
    Tone { code: u8, sent: u32 },
    /// An event's end, sent again `left` more times.
    End { code: u8, duration: u16, left: u8 },
    /// The pause after a digit: samples left.
    Pause { left: u32 },
}

/// Digits on their way out, one packet slot at a time.
#[derive(Debug)]
pub struct DtmfSender {
    waiting: VecDeque<u8>,
    step: Option<Step>,
    /// RFC 4733 events (else in-band tones).
    events: bool,
}

impl DtmfSender {
    /// `codes` from [`parse_digits`]; `events`: the far end takes RFC 4733.
    pub fn new(codes: &[u8], events: bool) -> DtmfSender {
        DtmfSender {
            waiting: codes.iter().copied().collect(),
            step: None,
            events,
        }
    }

    pub fn sends_events(&self) -> bool {
        self.events
    }

    /// More digits, after those still to send (a second request while the
    /// first sounds), at most [`MAX_DIGITS`] waiting.
    pub fn extend(&mut self, codes: &[u8]) {
        let room = MAX_DIGITS.saturating_sub(self.waiting.len());
        self.waiting.extend(codes.iter().take(room));
    }

    /// The far end no longer takes RFC 4733 events (a re-offer without
    /// telephone-event): the rest goes in band, the digit sounding now
    /// included.
    pub fn to_in_band(&mut self) {
        self.events = false;
        if matches!(self.step, Some(Step::End { .. })) {
            self.step = Some(Step::Pause { left: 8 * PAUSE_MS });
        }
    }

    /// The event under way if stopped now, for its end packets (RFC 4733
    /// §2.5.1.4: an interrupted event is still ended): code and duration.
    pub fn interrupted_event(&self) -> Option<(u8, u16)> {
        if !self.events {
            return None;
        }
        match self.step {
            Some(Step::Tone { code, sent }) if sent > 0 => {
                Some((code, sent.min(u32::from(u16::MAX)) as u16))
            }
            Some(Step::End {
                code,
                duration,
                left,
            }) if left > 0 => Some((code, duration)),
            _ => None,
        }
    }

    /// The next packet slot of `samples` samples (the leg's ptime).
    pub fn next(&mut self, samples: u32) -> DtmfPacket {
        let tone = 8 * TONE_MS;
        loop {
            let step = match self.step {
                Some(step) => step,
                None => match self.waiting.pop_front() {
                    Some(code) => Step::Tone { code, sent: 0 },
                    None => return DtmfPacket::Done,
                },
            };
            match step {
                Step::Tone { code, sent } if sent < tone => {
                    let now_sent = sent + samples;
                    self.step = Some(Step::Tone {
                        code,
                        sent: now_sent,
                    });
                    return if self.events {
                        DtmfPacket::Event {
                            code,
                            end: false,
                            duration: now_sent.min(u32::from(u16::MAX)) as u16,
                            first: sent == 0,
                        }
                    } else {
                        DtmfPacket::Audio {
                            code: Some(code),
                            offset: sent,
                        }
                    };
                }
                Step::Tone { code, sent } => {
                    self.step = Some(if self.events {
                        Step::End {
                            code,
                            duration: sent.min(u32::from(u16::MAX)) as u16,
                            left: END_REPEATS,
                        }
                    } else {
                        Step::Pause { left: 8 * PAUSE_MS }
                    });
                }
                Step::End { left: 0, .. } => self.step = Some(Step::Pause { left: 8 * PAUSE_MS }),
                Step::End {
                    code,
                    duration,
                    left,
                } => {
                    self.step = Some(Step::End {
                        code,
                        duration,
                        left: left - 1,
                    });
                    return DtmfPacket::Event {
                        code,
                        end: true,
                        duration,
                        first: false,
                    };
                }
                Step::Pause { left } if left > 0 => {
                    self.step = Some(Step::Pause {
                        left: left.saturating_sub(samples),
                    });
                    return DtmfPacket::Audio {
                        code: None,
                        offset: 0,
                    };
                }
                Step::Pause { .. } => self.step = None,
            }
        }
    }
}

/// The 4-byte payload of an RFC 4733 event packet.
pub fn event_payload(code: u8, end: bool, duration: u16) -> [u8; 4] {
    let [high, low] = duration.to_be_bytes();
    [code, (u8::from(end) << 7) | VOLUME_DBM0, high, low]
}

/// `out.len()` samples of the in-band tone of `code`, from `offset`
/// samples into the digit (`None`: silence).
pub fn fill_tone(code: Option<u8>, offset: u32, out: &mut [i16]) {
    let Some(code) = code else {
        out.fill(0);
        return;
    };
    let (low, high) = frequencies(code);
    for (i, sample) in out.iter_mut().enumerate() {
        let t = f64::from(offset + i as u32) / 8000.0;
        let value = TONE_AMPLITUDE
            * ((2.0 * std::f64::consts::PI * low * t).sin()
                + (2.0 * std::f64::consts::PI * high * t).sin());
        *sample = value as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tones::goertzel_power;

    #[test]
    fn keys_map_to_rfc_4733_codes_and_bad_ones_are_named() {
        assert_eq!(parse_digits("0123456789*#abcD"), Ok((0..16).collect()));
        assert_eq!(parse_digits("1-800 555"), Ok(vec![1, 8, 0, 0, 5, 5, 5]));
        assert_eq!(parse_digits("12x"), Err(DtmfError::NotADigit('x')));
        assert_eq!(parse_digits(" "), Err(DtmfError::Empty));
        assert_eq!(parse_digits(&"1".repeat(33)), Err(DtmfError::TooMany));
    }

    proptest::proptest! {
        /// Whatever an agent types: an answer, never a panic, and only
        /// codes a leg can send.
        #[test]
        fn any_text_is_digits_or_a_reason(keys in ".{0,40}") {
            if let Ok(codes) = parse_digits(&keys) {
                proptest::prop_assert!(!codes.is_empty() && codes.len() <= MAX_DIGITS);
                proptest::prop_assert!(codes.iter().all(|&c| c < 16));
            }
        }
    }

    #[test]
    fn each_digit_is_five_event_packets_three_ends_and_a_pause() {
        let mut sender = DtmfSender::new(&[1, 11], true);
        let mut packets = Vec::new();
        loop {
            let packet = sender.next(160);
            if packet == DtmfPacket::Done {
                break;
            }
            packets.push(packet);
        }
        let event = |code, end, duration, first| DtmfPacket::Event {
            code,
            end,
            duration,
            first,
        };
        let pause = DtmfPacket::Audio {
            code: None,
            offset: 0,
        };
        let mut expected = Vec::new();
        for code in [1, 11] {
            for (n, duration) in [160, 320, 480, 640, 800].into_iter().enumerate() {
                expected.push(event(code, false, duration, n == 0));
            }
            expected.extend([event(code, true, 800, false); 3]);
            expected.extend([pause; 3]);
        }
        assert_eq!(packets, expected);
        assert_eq!(event_payload(11, true, 800), [11, 0x80 | 10, 0x03, 0x20]);
        assert_eq!(event_payload(1, false, 160), [1, 10, 0x00, 0xA0]);
    }

    #[test]
    fn in_band_digits_sound_their_two_frequencies_and_no_others() {
        let mut sender = DtmfSender::new(&[5, 10], false);
        let mut sounds: Vec<Vec<i16>> = vec![Vec::new(), Vec::new()];
        let mut digit = 0;
        loop {
            match sender.next(160) {
                DtmfPacket::Done => break,
                DtmfPacket::Audio {
                    code: Some(code),
                    offset,
                } => {
                    let mut frame = [0i16; 160];
                    fill_tone(Some(code), offset, &mut frame);
                    sounds[digit].extend_from_slice(&frame);
                }
                DtmfPacket::Audio { code: None, .. } => {
                    if !sounds[digit].is_empty() && digit == 0 {
                        digit = 1;
                    }
                }
                DtmfPacket::Event { .. } => panic!("no events in band"),
            }
        }
        // "5": 770 + 1336 Hz; "*": 941 + 1209 Hz; 100 ms each.
        for (sound, (low, high)) in sounds.iter().zip([(770.0, 1336.0), (941.0, 1209.0)]) {
            assert_eq!(sound.len(), 800);
            let power = |hz| goertzel_power(sound, hz, 8000);
            assert!(power(low) > 100.0 * power(852.0), "{low}");
            assert!(power(high) > 100.0 * power(1477.0), "{high}");
        }
        assert_eq!(frequencies(12), (697.0, 1633.0));
        assert_eq!(frequencies(0), (941.0, 1336.0));
    }
}
