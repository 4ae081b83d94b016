//! Any bytes as a WAV file: decoded audio or a WavError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(wav) = outdial::media::wav::Wav::parse(data) {
        // Keep the resampler's work bounded for the fuzzer's sake.
        if wav.samples.len() < 20_000 {
            let _ = wav.to_mono_8k();
        }
    }
});
