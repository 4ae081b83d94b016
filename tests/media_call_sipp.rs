//! `outdial call --play/--record` against real SIPp peers: SIP and media
//! together. What is played to SIPp's RTP echo comes back; what SIPp streams
//! with `rtp_stream` is recorded.

mod sip_support;

use std::path::Path;
use std::time::Duration;

use outdial::media::g711;
use outdial::media::wav::{Wav, write_mono_8k};
use sip_support::{Sipp, free_port, json_lines, outdial_call, write_config};

const LIMIT: Duration = Duration::from_secs(40);

/// A deterministic speech-like signal: three partials under a syllable
/// envelope, so a wrong alignment cannot correlate well.
fn test_signal(seconds: f64) -> Vec<i16> {
    let n = (seconds * 8000.0) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            let syllable = (std::f64::consts::PI * t * 3.3).sin().abs();
            let voice = (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                + 0.6 * (2.0 * std::f64::consts::PI * 660.0 * t + t * 3.0).sin()
                + 0.3 * (2.0 * std::f64::consts::PI * 1250.0 * t).sin();
            (voice * syllable * 6000.0) as i16
        })
        .collect()
}

/// The best normalised cross-correlation of `reference` within `recorded`,
/// over lags 0..max_lag.
fn best_correlation(reference: &[i16], recorded: &[i16], max_lag: usize) -> (f64, usize) {
    let mut best = (0.0, 0);
    for lag in 0..max_lag.min(recorded.len()) {
        let overlap = reference.len().min(recorded.len() - lag);
        if overlap < 4000 {
            break;
        }
        let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..overlap {
            let x = f64::from(reference[i]);
            let y = f64::from(recorded[i + lag]);
            xy += x * y;
            xx += x * x;
            yy += y * y;
        }
        let c = if xx > 0.0 && yy > 0.0 {
            xy / (xx * yy).sqrt()
        } else {
            0.0
        };
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

fn recorded_samples(path: &Path) -> Vec<i16> {
    Wav::read(path)
        .expect("the recording is a WAV")
        .to_mono_8k()
}

#[test]
fn what_is_played_to_sipp_echo_comes_back_in_the_recording() {
    let media_port = free_port().to_string();
    let mut sipp = Sipp::uas("uas_rtp_echo.xml", 1, &["-rtp_echo", "-mp", &media_port]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sipp.port);
    let played = test_signal(2.0);
    let input = dir.path().join("in.wav");
    write_mono_8k(&input, &played).unwrap();
    let output = dir.path().join("out.wav");
    let target = format!("sip:echo@127.0.0.1:{}", sipp.port);
    let run = outdial_call(
        &config,
        &[
            &target,
            "--json",
            "--play",
            input.to_str().unwrap(),
            "--record",
            output.to_str().unwrap(),
        ],
        LIMIT,
    );
    let report = json_lines(&run).remove(0);
    sipp.assert_passed(LIMIT);
    assert_eq!(report["outcome"], "answered", "{report}");
    assert!(
        report["recording"]["ms"].as_u64().unwrap() >= 2000,
        "{report}"
    );
    let recorded = recorded_samples(&output);
    let (correlation, lag) = best_correlation(&played, &recorded, 4000);
    assert!(
        correlation >= 0.9,
        "echo correlation {correlation:.3} at lag {lag} samples"
    );
}

#[test]
fn what_sipp_streams_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // A μ-law WAV, as SIPp's rtp_stream sends the payload after the header.
    let sent = test_signal(2.0);
    let codes: Vec<u8> = sent.iter().map(|&s| g711::ulaw_encode(s)).collect();
    let audio = dir.path().join("stream.wav");
    std::fs::write(&audio, sip_support::ulaw_wav(&codes)).unwrap();
    let template = std::fs::read_to_string(sip_support::scenario("uas_rtp_stream.xml")).unwrap();
    let scenario = dir.path().join("uas_rtp_stream.xml");
    std::fs::write(
        &scenario,
        template.replace("AUDIO_FILE", audio.to_str().unwrap()),
    )
    .unwrap();
    let mut sipp = Sipp::uas(scenario.to_str().unwrap(), 1, &[]);
    let config = write_config(dir.path(), sipp.port);
    let output = dir.path().join("out.wav");
    let target = format!("sip:stream@127.0.0.1:{}", sipp.port);
    let run = outdial_call(
        &config,
        &[
            &target,
            "--json",
            "--hold",
            "3",
            "--record",
            output.to_str().unwrap(),
        ],
        LIMIT,
    );
    let report = json_lines(&run).remove(0);
    sipp.assert_passed(LIMIT);
    assert_eq!(report["outcome"], "answered", "{report}");
    let recorded = recorded_samples(&output);
    // Compare with what μ-law carries (the quantised signal).
    let reference: Vec<i16> = codes.iter().map(|&c| g711::ulaw_decode(c)).collect();
    let (correlation, lag) = best_correlation(&reference, &recorded, 8000);
    assert!(
        correlation >= 0.9,
        "stream correlation {correlation:.3} at lag {lag} samples"
    );
}
