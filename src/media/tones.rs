//! Generated audio: the zip tone the agent hears before a customer is
//! bridged, the ringback an agent hears while a previewed call rings,
//! comfort noise that keeps NAT pinholes open without an audible hiss, and
//! a Goertzel detector used to check them.

use serde::Deserialize;

use super::wav::TELEPHONY_RATE;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// The zip tone's shape. Defaults: one 440 Hz beep of 200 ms at −12 dBm0
/// with 5 ms ramps (no click at either end).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZipTone {
    pub frequency_hz: f64,
    pub duration_ms: u32,
    /// Level in dBm0 (0 dBm0 ≈ a 3.14 dBov sine in G.711).
    pub level_dbm0: f64,
}

impl Default for ZipTone {
    fn default() -> ZipTone {
        ZipTone {
            frequency_hz: 440.0,
            duration_ms: 200,
            level_dbm0: -12.0,
        }
    }
}

/// North American ringback (440 + 480 Hz at −19 dBm0 each, 2 s on, 4 s
/// off) for `seconds`: what an agent hears while the call they placed
/// from a preview rings.
pub fn ringback(seconds: u32) -> Vec<i16> {
    let rate = TELEPHONY_RATE as usize;
    let amplitude = dbm0_amplitude(-19.0);
    let ramp = rate * 5 / 1000;
    let on = 2 * rate;
    let cycle = 6 * rate;
    (0..seconds as usize * rate)
        .map(|n| {
            let in_cycle = n % cycle;
            if in_cycle >= on {
                return 0;
            }
            let envelope = (in_cycle.min(on - 1 - in_cycle) as f64 / ramp as f64).min(1.0);
            let t = n as f64 / rate as f64;
            let tau = 2.0 * std::f64::consts::PI;
            let value = (tau * 440.0 * t).sin() + (tau * 480.0 * t).sin();
            (amplitude * envelope * value).round() as i16
        })
        .collect()
}

/// What a customer on hold hears when the campaign gives no `hold_music`:
/// a soft two-note chime (523 then 659 Hz, 200 ms each at −20 dBm0) every
/// 4 s — silence on hold sounds like a dropped call and makes people hang
/// up, while a chime says the line is alive without being music anyone
/// must license. One 4 s cycle; the leg plays it again and again.
pub fn hold_chime() -> Vec<i16> {
    let rate = TELEPHONY_RATE as usize;
    let amplitude = dbm0_amplitude(-20.0);
    let note = rate / 5;
    let ramp = rate * 5 / 1000;
    let tau = 2.0 * std::f64::consts::PI;
    (0..4 * rate)
        .map(|n| {
            let (frequency, in_note) = match n / note {
                0 => (523.25, n),
                1 => (659.25, n - note),
                _ => return 0,
            };
            let envelope = (in_note.min(note - 1 - in_note) as f64 / ramp as f64).min(1.0);
            let t = n as f64 / rate as f64;
            (amplitude * envelope * (tau * frequency * t).sin()).round() as i16
        })
        .collect()
}

/// Peak amplitude of a sine at `dbm0` (G.711: 0 dBm0 ≈ 3.17 dB below the
/// full-scale sine of 32767).
pub fn dbm0_amplitude(dbm0: f64) -> f64 {
    32767.0 * 10f64.powf((dbm0 - 3.17) / 20.0)
}

impl ZipTone {
    /// The whole tone as 8 kHz samples, ramped in and out.
    pub fn samples(&self) -> Vec<i16> {
        let total = (TELEPHONY_RATE * self.duration_ms / 1000) as usize;
        let ramp = (TELEPHONY_RATE as usize * 5 / 1000).min(total / 2).max(1);
        let amplitude = dbm0_amplitude(self.level_dbm0);
        let step = 2.0 * std::f64::consts::PI * self.frequency_hz / f64::from(TELEPHONY_RATE);
        (0..total)
            .map(|n| {
                let envelope = (n.min(total - 1 - n) as f64 / ramp as f64).min(1.0);
                (amplitude * envelope * (step * n as f64).sin()).round() as i16
            })
            .collect()
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(100.0..=3400.0).contains(&self.frequency_hz) {
            return Err(format!(
                "zip tone frequency {} Hz is outside the telephone band (100–3400 Hz)",
                self.frequency_hz
            ));
        }
        if !(20..=2000).contains(&self.duration_ms) {
            return Err(format!(
                "zip tone duration {} ms: give 20–2000 ms (it delays the customer)",
                self.duration_ms
            ));
        }
        if !(-40.0..=0.0).contains(&self.level_dbm0) {
            return Err(format!(
                "zip tone level {} dBm0: give −40 to 0",
                self.level_dbm0
            ));
        }
        Ok(())
    }
}

/// Low-level white noise (about −70 dBm0): real packets so NAT bindings and
/// the peer's inactivity timers stay alive, without audible hiss. A
/// xorshift generator, so no allocation and no dependency.
#[derive(Debug, Clone)]
pub struct ComfortNoise {
    state: u32,
}

impl ComfortNoise {
    pub fn new(seed: u32) -> ComfortNoise {
        ComfortNoise { state: seed | 1 }
    }

    pub fn fill(&mut self, frame: &mut [i16]) {
        for sample in frame {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            self.state = x;
            // Uniform in ±8: about −70 dBov RMS.
            *sample = (x >> 28) as i16 - 8;
        }
    }
}

/// Goertzel power of `frequency_hz` in `samples` (normalised by length²).
pub fn goertzel_power(samples: &[i16], frequency_hz: f64, sample_rate: u32) -> f64 {
    let coefficient =
        2.0 * (2.0 * std::f64::consts::PI * frequency_hz / f64::from(sample_rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &sample in samples {
        let s0 = f64::from(sample) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = samples.len().max(1) as f64;
    (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / (n * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_chime_is_two_soft_notes_then_quiet_every_four_seconds() {
        let chime = hold_chime();
        assert_eq!(chime.len(), 4 * 8000);
        let power = |from: usize, hz: f64| {
            let part = &chime[from..from + 1600];
            let energy: f64 = part.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 1600.0;
            (goertzel_power(part, hz, 8000), energy)
        };
        let (c5, energy) = power(0, 523.25);
        assert!(c5 > 0.4 * energy && energy > 0.0, "{c5} of {energy}");
        let (e5, energy) = power(1600, 659.25);
        assert!(e5 > 0.4 * energy && energy > 0.0, "{e5} of {energy}");
        assert!(
            chime[3200..].iter().all(|&s| s == 0),
            "quiet after the notes"
        );
        // −20 dBm0: well under the zip tone's −12.
        let peak = chime.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(f64::from(peak) <= dbm0_amplitude(-20.0) + 1.0, "{peak}");
    }

    #[test]
    fn zip_tone_spectrum_and_duration() {
        let tone = ZipTone::default();
        let samples = tone.samples();
        assert_eq!(samples.len(), 1600); // 200 ms
        let at_tone = goertzel_power(&samples, 440.0, 8000);
        for other in [300.0, 350.0, 620.0, 1000.0, 2000.0, 3000.0] {
            let power = goertzel_power(&samples, other, 8000);
            assert!(at_tone > 100.0 * power, "{other} Hz: {power} vs {at_tone}");
        }
        // Ramped: first and last samples are near zero.
        assert!(samples[0].abs() < 50 && samples[1599].abs() < 200);
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
        let expected = dbm0_amplitude(-12.0);
        assert!(
            (f64::from(peak) - expected).abs() < expected * 0.02,
            "{peak}"
        );
        let custom = ZipTone {
            frequency_hz: 1000.0,
            duration_ms: 100,
            level_dbm0: -6.0,
        };
        assert_eq!(custom.samples().len(), 800);
        assert!(custom.validate().is_ok());
        assert!(
            ZipTone {
                duration_ms: 5000,
                ..ZipTone::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn comfort_noise_is_quiet_and_not_silent() {
        let mut noise = ComfortNoise::new(7);
        let mut frame = [0i16; FRAME_SAMPLES];
        noise.fill(&mut frame);
        assert!(frame.iter().all(|s| s.abs() <= 8));
        assert!(frame.iter().any(|&s| s != 0));
    }

    #[test]
    fn ringback_is_two_seconds_of_440_and_480_hz_then_four_of_silence() {
        let tone = ringback(12);
        assert_eq!(tone.len(), 12 * 8000);
        let on = &tone[8000..9000];
        let off = &tone[3 * 8000..4 * 8000];
        let (low, high) = (
            goertzel_power(on, 440.0, 8000),
            goertzel_power(on, 480.0, 8000),
        );
        for elsewhere in [350.0, 620.0, 1000.0] {
            let power = goertzel_power(on, elsewhere, 8000);
            assert!(
                low > 100.0 * power && high > 100.0 * power,
                "{elsewhere} Hz"
            );
        }
        assert!((0.5..2.0).contains(&(low / high)));
        assert!(off.iter().all(|&x| x == 0));
        // The second cadence starts at 6 s.
        assert!(tone[6 * 8000 + 400..6 * 8000 + 600].iter().any(|&x| x != 0));
    }
}
