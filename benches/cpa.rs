//! Cost of one 20 ms frame through the CPA analyser (one channel), on speech-
//! like audio, on a tone cadence and on noise.

use criterion::{Criterion, criterion_group, criterion_main};
use outdial::cpa::{Analyser, CpaSettings, FRAME, MachineMode};
use std::hint::black_box;

fn signal(kind: u32) -> Vec<i16> {
    let n = 8000 * 10;
    let mut state = 12345u32;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let noise = ((state >> 16) as f32 / 32768.0 - 1.0) * 300.0;
            let v = match kind {
                0 => {
                    let f0 = 120.0 + 30.0 * (t * 3.0).sin();
                    let env = (t * 4.0 * std::f32::consts::PI).sin().abs();
                    (1..12)
                        .map(|k| (2.0 * std::f32::consts::PI * f0 * k as f32 * t).sin() / k as f32)
                        .sum::<f32>()
                        * 4000.0
                        * env
                }
                1 if ((t * 2.0) as u32).is_multiple_of(2) => {
                    3000.0
                        * ((2.0 * std::f32::consts::PI * 480.0 * t).sin()
                            + (2.0 * std::f32::consts::PI * 620.0 * t).sin())
                }
                _ => 0.0,
            };
            (v + noise) as i16
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let settings = CpaSettings {
        machine_mode: MachineMode::WaitForBeep,
        max_analysis_ms: 30_000,
        beep_timeout_ms: 30_000,
        ..CpaSettings::default()
    };
    for (name, kind) in [("speech", 0), ("busy_tone", 1), ("noise", 2)] {
        let audio = signal(kind);
        let frames: Vec<[i16; FRAME]> = audio
            .chunks_exact(FRAME)
            .map(|c| c.try_into().unwrap())
            .collect();
        c.bench_function(&format!("cpa_frame_{name}"), |b| {
            let mut analyser = Analyser::new(settings.clone());
            let mut i = 0;
            b.iter(|| {
                // A fresh analyser every 10 s of audio keeps it analysing
                // (after a verdict most work stops, which would flatter it).
                if i == frames.len() {
                    analyser = Analyser::new(settings.clone());
                    i = 0;
                }
                analyser.push_frame(black_box(&frames[i]));
                while analyser.poll_event().is_some() {}
                i += 1;
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
