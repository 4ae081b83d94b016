//! `outdial cpa --json` and `--eval` on WAV files written here.

mod cpa_synth;

use cpa_synth::*;
use std::process::Command;

fn write(dir: &std::path::Path, name: &str, x: &[f64]) {
    outdial::media::wav::write_mono_8k(&dir.join(name), &pcm(x)).unwrap();
}

#[test]
fn json_and_eval_on_generated_clips() {
    let dir = tempfile::tempdir().unwrap();
    let busy = cadence(&[480.0, 620.0], &[500.0, 500.0], 4000.0, -20.0, 1.0);
    let human = concat(&[
        silence(500.0),
        pseudo_speech(600.0, 150.0, -20.0, 2),
        silence(2500.0),
    ]);
    write(dir.path(), "busy.wav", &busy);
    write(dir.path(), "human.wav", &human);
    write(dir.path(), "dead.wav", &silence(6000.0));

    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["cpa", "--json"])
        .arg(dir.path().join("busy.wav"))
        .arg(dir.path().join("human.wav"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["result"], "busy");
    assert_eq!(lines[0]["beep_at_ms"], serde_json::Value::Null);
    assert_eq!(lines[0]["sit_code"], serde_json::Value::Null);
    assert!(
        lines[0]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "busy")
    );
    assert_eq!(lines[1]["result"], "human");
    assert!(lines[1]["decided_at_ms"].as_u64().unwrap() < 2000);

    // Three-column labels (no header) and the extended form with a header.
    std::fs::write(
        dir.path().join("labels.csv"),
        "busy.wav,busy\nhuman.wav,human,\ndead.wav,silence\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["cpa", "--eval"])
        .arg(dir.path().join("labels.csv"))
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("| **all** | 3 | 100.0 % (3/3) |"),
        "{report}"
    );
    std::fs::write(
        dir.path().join("labels2.csv"),
        "file,class,beep_ms,speech_end_ms,sit_code\nhuman.wav,human,,1100,\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["cpa", "--eval"])
        .arg(dir.path().join("labels2.csv"))
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report.contains("| human, after the caller stops |"),
        "{report}"
    );

    // A greeting whose sentence pause ends it as an answer, read on into
    // a machine: scored machine, and counted among the machines announced
    // human first (the engine would have handed it to a free agent).
    let greeting = concat(&[
        silence(400.0),
        pseudo_speech(600.0, 150.0, -20.0, 2),
        silence(450.0),
        pseudo_speech(4200.0, 150.0, -20.0, 3),
        silence(1500.0),
    ]);
    write(dir.path(), "greeting.wav", &greeting);
    std::fs::write(
        dir.path().join("labels3.csv"),
        "greeting.wav,machine\nbusy.wav,busy\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["cpa", "--eval"])
        .arg(dir.path().join("labels3.csv"))
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report.contains("| machine | 1 | 100.0 % (1/1) |"),
        "{report}"
    );
    assert!(
        report.contains("| machines first announced human, then corrected | 100.0 % (1/1) |"),
        "{report}"
    );

    // A bad label is a usage error that names the line.
    std::fs::write(dir.path().join("bad.csv"), "busy.wav,robot\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["cpa", "--eval"])
        .arg(dir.path().join("bad.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

#[test]
fn the_feature_dump_follows_the_speech_structure_past_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    // 500 ms of quiet, a 600 ms answer, 2.5 s of quiet: 180 frames.
    let human = concat(&[
        silence(500.0),
        pseudo_speech(600.0, 150.0, -20.0, 2),
        silence(2500.0),
    ]);
    write(dir.path(), "human.wav", &human);
    std::fs::write(dir.path().join("labels.csv"), "human.wav,human\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["cpa", "--dump-features", "--eval"])
        .arg(dir.path().join("labels.csv"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 180);
    let col = |row: &Vec<&str>, name: &str| -> f64 {
        let i = header.iter().position(|h| *h == name).unwrap();
        row[i].parse().unwrap()
    };
    let last = &rows[179];
    assert_eq!(last[2], "human", "the clip's normal verdict");
    // The normal analyser decides ~0.4 s after the answer ends; the dump
    // goes on: the pause grows to the end of the clip.
    assert!(col(last, "verdict_ms") < 1800.0);
    assert!(col(last, "pause_ms") >= 2300.0, "{:?}", last);
    let onset = col(last, "onset_ms");
    assert!((440.0..=560.0).contains(&onset), "onset {onset}");
    let span = col(last, "span_ms");
    assert!((500.0..=700.0).contains(&span), "span {span}");
    assert_eq!(col(&rows[0], "onset_ms"), -1.0);
}

#[test]
fn a_missing_or_broken_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.wav"), b"RIFF....not a wav").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .args(["cpa"])
        .arg(dir.path().join("x.wav"))
        .arg(dir.path().join("missing.wav"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "one line per file: {err}");
    // Each names its file and says what is wrong, once (the file name and
    // the reason used to come twice: "x.wav: x.wav: not a WAV file: …: not a
    // WAV file: …").
    for (line, file, reason) in [
        (lines[0], "x.wav", "not a WAV file"),
        (lines[1], "missing.wav", "cannot read"),
    ] {
        assert_eq!(line.matches(file).count(), 1, "{line}");
        assert_eq!(line.matches(reason).count(), 1, "{line}");
    }
}
