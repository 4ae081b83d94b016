//! Any bytes as a call's audio: the first byte picks how the stream is cut
//! into pushes and whether it starts at early media, the rest is PCM16. The
//! analyser must never panic, keep its clock equal to the audio fed, and
//! give exactly one final verdict no later than the audio's end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outdial::cpa::{Analyser, CpaSettings, FRAME};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let samples: Vec<i16> = rest
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let early = mode & 1 == 1;
    let mut analyser = if early {
        Analyser::new_early_media(CpaSettings::default())
    } else {
        Analyser::new(CpaSettings::default())
    };
    // Push sizes 1..=320 samples: odd sizes exercise the frame reassembly.
    let step = 1 + (mode as usize >> 1) % (2 * FRAME);
    for (i, chunk) in samples.chunks(step).enumerate() {
        if early && i == 3 {
            analyser.answered();
        }
        analyser.push_samples(chunk);
        while analyser.poll_event().is_some() {}
    }
    let fed_frames = (samples.len() / FRAME) as u32;
    assert_eq!(analyser.now_ms(), fed_frames * 20);
    analyser.finish();
    let verdict = analyser.verdict().expect("finish gives a verdict");
    assert!(verdict.at_ms <= analyser.now_ms() + 20);
    if let Some(beep) = analyser.beep() {
        assert!(beep.at_ms <= analyser.now_ms());
    }
});
