//! Deterministic signal synthesis for the CPA tests: tones, cadences, SIT,
//! fax signals, noise, and a harmonic "pseudo-speech" with syllables and
//! moving pitch (what the VAD must take for a voice).

#![allow(dead_code)]

use outdial::cpa::{Analyser, CpaSettings, Event, Outcome, Verdict};
use std::f64::consts::PI;

pub const SR: f64 = 8000.0;

pub fn samples(ms: f64) -> usize {
    (ms * SR / 1000.0).round() as usize
}

pub fn silence(ms: f64) -> Vec<f64> {
    vec![0.0; samples(ms)]
}

/// Sum of sines, each at `level_db` (dB re full scale), 5 ms ramps.
pub fn tone(freqs: &[f64], ms: f64, level_db: f64) -> Vec<f64> {
    let n = samples(ms);
    let amp = 10f64.powf(level_db / 20.0);
    let ramp = 40.min(n / 2);
    (0..n)
        .map(|i| {
            let t = i as f64 / SR;
            let mut v: f64 = freqs.iter().map(|f| (2.0 * PI * f * t).sin()).sum();
            v *= amp;
            if i < ramp {
                v *= i as f64 / ramp as f64;
            } else if n - i <= ramp {
                v *= (n - i) as f64 / ramp as f64;
            }
            v
        })
        .collect()
}

/// on/off/on/off… for `total_ms`, every duration multiplied by `scale`.
pub fn cadence(
    freqs: &[f64],
    pattern: &[f64],
    total_ms: f64,
    level_db: f64,
    scale: f64,
) -> Vec<f64> {
    let mut out = Vec::new();
    let mut i = 0;
    while (out.len() as f64) < samples(total_ms) as f64 {
        let d = pattern[i % pattern.len()] * scale;
        if i % 2 == 0 {
            out.extend(tone(freqs, d, level_db));
        } else {
            out.extend(silence(d));
        }
        i += 1;
    }
    out.truncate(samples(total_ms));
    out
}

/// Deterministic white noise at `level_db` RMS.
pub fn noise(ms: f64, level_db: f64, seed: u64) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let rms = 10f64.powf(level_db / 20.0);
    (0..samples(ms))
        .map(|_| {
            // Sum of 4 uniforms: close enough to Gaussian.
            let mut acc = 0.0;
            for _ in 0..4 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                acc += ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
            }
            acc * rms * (12.0f64 / 4.0).sqrt()
        })
        .collect()
}

/// Harmonic voice-like signal: syllables of ~180 ms with a falling or
/// rising pitch around `f0`, formant-weighted harmonics, 50 ms dips.
pub fn pseudo_speech(ms: f64, f0: f64, level_db: f64, seed: u64) -> Vec<f64> {
    let n = samples(ms);
    let mut out = vec![0.0; n];
    let amp = 10f64.powf(level_db / 20.0);
    let mut phase = 0.0;
    let syllable = samples(230.0);
    let formants = [
        (500.0 + (seed % 7) as f64 * 40.0, 120.0),
        (1500.0, 200.0),
        (2500.0, 300.0),
    ];
    for (i, v) in out.iter_mut().enumerate() {
        let s = i / syllable;
        let pos = (i % syllable) as f64 / syllable as f64;
        // 180 ms voiced, 50 ms gap
        let env = if pos < 0.78 {
            (pos / 0.78 * PI).sin()
        } else {
            0.0
        };
        let glide = if (s + seed as usize).is_multiple_of(2) {
            1.15 - 0.3 * pos
        } else {
            0.9 + 0.25 * pos
        };
        let f = f0 * glide * (1.0 + 0.05 * ((s as f64) * 1.7).sin());
        phase += 2.0 * PI * f / SR;
        let mut x = 0.0;
        for k in 1..=(3400.0 / f) as usize {
            let fk = k as f64 * f;
            let w: f64 = formants
                .iter()
                .map(|(c, bw)| 1.0 / (1.0 + ((fk - c) / bw).powi(2)))
                .sum::<f64>()
                + 0.05;
            x += w * (k as f64 * phase).sin();
        }
        *v = x * env;
    }
    let rms = (out.iter().map(|x| x * x).sum::<f64>() / n.max(1) as f64)
        .sqrt()
        .max(1e-9);
    out.iter().map(|x| x / rms * amp * 0.7).collect()
}

/// A clip of `tests/fixtures/cpa` (8 kHz μ-law, cut from the generated
/// corpus: see the README there), as the analyser's input.
pub fn fixture(name: &str) -> Vec<f64> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cpa")
        .join(name);
    let wav = outdial::media::wav::Wav::read(&path).expect("fixture");
    wav.to_mono_8k()
        .iter()
        .map(|&v| f64::from(v) / 32768.0)
        .collect()
}

pub fn mix(a: &[f64], b: &[f64]) -> Vec<f64> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| a.get(i).copied().unwrap_or(0.0) + b.get(i).copied().unwrap_or(0.0))
        .collect()
}

pub fn concat(parts: &[Vec<f64>]) -> Vec<f64> {
    parts.concat()
}

pub fn pcm(x: &[f64]) -> Vec<i16> {
    x.iter()
        .map(|v| (v * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

pub struct Run {
    pub verdict: Verdict,
    pub beep_ms: Option<u32>,
    pub events: Vec<Event>,
}

/// Feeds a signal after answer 20 ms at a time, as the engine does, until
/// the analyser says it is done (or the signal ends), then finishes it.
pub fn analyse_until_done(x: &[f64]) -> Analyser {
    let mut a = Analyser::new(CpaSettings::default());
    for chunk in pcm(x).chunks(160) {
        a.push_samples(chunk);
        if a.is_done() {
            break;
        }
    }
    a.finish();
    a
}

/// Feeds a whole signal and finishes the stream.
pub fn analyse(x: &[f64], early_media: bool) -> Run {
    let settings = CpaSettings::default();
    let mut a = if early_media {
        Analyser::new_early_media(settings)
    } else {
        Analyser::new(settings)
    };
    let mut events = Vec::new();
    a.push_samples(&pcm(x));
    a.finish();
    while let Some(e) = a.poll_event() {
        events.push(e);
    }
    Run {
        verdict: a.verdict().expect("finish always gives a verdict"),
        beep_ms: a.beep().map(|b| b.at_ms),
        events,
    }
}

pub fn outcome(x: &[f64]) -> Outcome {
    analyse(x, false).verdict.outcome
}
