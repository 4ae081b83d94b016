//! `outdial cpa`: run the call-progress analyser over WAV files, or score a
//! labelled corpus with `--eval labels.csv` (the project's quality gate).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use super::{EXIT_CONFIG, EXIT_RUNTIME};
use crate::cpa::{Analyser, CpaSettings, Event, EventKind, Outcome, Verdict};
use crate::media::wav::Wav;

#[derive(Debug, clap::Args)]
pub struct CpaArgs {
    /// One JSON object per file instead of a line of text.
    #[arg(long)]
    pub json: bool,
    /// Each file starts at early media (before answer), not at the answer.
    #[arg(long)]
    pub early_media: bool,
    /// Score a labelled corpus: CSV `file,class[,beep_ms[,speech_end_ms[,sit_code]]]`,
    /// files relative to the CSV's directory; a header line is optional.
    #[arg(long, value_name = "LABELS_CSV", conflicts_with = "files")]
    pub eval: Option<PathBuf>,
    /// With `--eval`: print per-frame speech features of every clip as TSV
    /// (for the model training in `tools/cpa_model/`) instead of the report.
    #[arg(long, requires = "eval", hide = true)]
    pub dump_features: bool,
    /// WAV files: 8 kHz mono PCM16, μ-law or A-law; other rates are resampled.
    #[arg(value_name = "FILE", required_unless_present = "eval")]
    pub files: Vec<PathBuf>,
}

/// What the analyser said about one file.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub verdict: Verdict,
    pub beep_at_ms: Option<u32>,
    pub events: Vec<Event>,
}

/// Runs one file through a fresh analyser, to the end of the audio or until
/// nothing more can be learned.
pub fn analyse_file(path: &Path, early_media: bool) -> anyhow::Result<FileResult> {
    let wav = Wav::read(path)?;
    let samples = wav.to_mono_8k();
    Ok(analyse_samples(&samples, early_media))
}

pub fn analyse_samples(samples: &[i16], early_media: bool) -> FileResult {
    let settings = CpaSettings::default();
    let mut analyser = if early_media {
        Analyser::new_early_media(settings)
    } else {
        Analyser::new(settings)
    };
    let mut events = Vec::new();
    for chunk in samples.chunks(crate::cpa::FRAME) {
        analyser.push_samples(chunk);
        while let Some(e) = analyser.poll_event() {
            events.push(e);
        }
        if analyser.is_done() {
            break;
        }
    }
    analyser.finish();
    while let Some(e) = analyser.poll_event() {
        events.push(e);
    }
    let verdict = analyser.verdict().unwrap_or(Verdict {
        outcome: Outcome::Unknown,
        at_ms: analyser.now_ms(),
        sit_code: None,
        fax: None,
    });
    FileResult {
        verdict,
        beep_at_ms: analyser.beep().map(|b| b.at_ms),
        events,
    }
}

fn event_json(e: &Event) -> serde_json::Value {
    let mut v = json!({"at_ms": e.at_ms, "event": e.kind.name()});
    match e.kind {
        EventKind::Sit(code) => v["sit_code"] = json!(code.map(|c| c.as_str())),
        EventKind::Fax(signal) => v["signal"] = json!(signal.as_str()),
        EventKind::Beep { freq_hz } => v["freq_hz"] = json!(freq_hz.round()),
        _ => {}
    }
    v
}

pub fn run(args: &CpaArgs) -> ExitCode {
    if let Some(labels) = &args.eval {
        let result = if args.dump_features {
            dump_features(labels)
        } else {
            eval(labels, args.early_media)
        };
        return match result {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(EXIT_CONFIG)
            }
        };
    }
    let mut failed = false;
    for file in &args.files {
        match analyse_file(file, args.early_media) {
            Ok(r) => {
                let v = r.verdict;
                if args.json {
                    let obj = json!({
                        "file": file.display().to_string(),
                        "result": v.outcome.as_str(),
                        "decided_at_ms": v.at_ms,
                        "beep_at_ms": r.beep_at_ms,
                        "sit_code": v.sit_code.map(|c| c.as_str()),
                        "events": r.events.iter().map(event_json).collect::<Vec<_>>(),
                    });
                    println!("{obj}");
                } else {
                    let mut line = format!(
                        "{}: {} at {} ms",
                        file.display(),
                        v.outcome.as_str(),
                        v.at_ms
                    );
                    if let Some(code) = v.sit_code {
                        let _ = write!(line, " (code {})", code.as_str());
                    }
                    if let Some(signal) = v.fax {
                        let _ = write!(line, " ({})", signal.as_str());
                    }
                    if let Some(b) = r.beep_at_ms {
                        let _ = write!(line, ", beep at {b} ms");
                    }
                    println!("{line}");
                }
            }
            Err(e) => {
                // The error names the file.
                eprintln!("error: {e:#}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    }
}

/// One labelled clip.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub file: PathBuf,
    pub class: Outcome,
    pub beep_ms: Option<u32>,
    pub speech_end_ms: Option<u32>,
    pub sit_code: Option<String>,
}

/// Parses `file,class[,beep_ms[,speech_end_ms[,sit_code]]]` (or any column
/// order when a header names them). Files are relative to `base`.
pub fn parse_labels(text: &str, base: &Path) -> anyhow::Result<Vec<Label>> {
    let mut cols: HashMap<String, usize> =
        ["file", "class", "beep_ms", "speech_end_ms", "sit_code"]
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_string(), i))
            .collect();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if n == 0 && fields.first() == Some(&"file") {
            cols = fields
                .iter()
                .enumerate()
                .map(|(i, c)| (c.to_string(), i))
                .collect();
            continue;
        }
        let get = |name: &str| {
            cols.get(name)
                .and_then(|&i| fields.get(i))
                .copied()
                .filter(|s| !s.is_empty())
        };
        let file = get("file").ok_or_else(|| anyhow::anyhow!("line {}: no file", n + 1))?;
        let class_text = get("class").ok_or_else(|| anyhow::anyhow!("line {}: no class", n + 1))?;
        let class = Outcome::parse(&class_text.to_lowercase()).ok_or_else(|| {
            anyhow::anyhow!(
                "line {}: unknown class `{class_text}`; use one of human, machine, fax, busy, reorder, sit, ringback, silence, unknown",
                n + 1
            )
        })?;
        let number = |name: &str| -> anyhow::Result<Option<u32>> {
            get(name)
                .map(|s| {
                    s.parse::<f64>().map(|v| v.max(0.0) as u32).map_err(|_| {
                        anyhow::anyhow!("line {}: `{name}` is not a number: `{s}`", n + 1)
                    })
                })
                .transpose()
        };
        out.push(Label {
            file: base.join(file),
            class,
            beep_ms: number("beep_ms")?,
            speech_end_ms: number("speech_end_ms")?,
            sit_code: get("sit_code").map(str::to_uppercase),
        });
    }
    Ok(out)
}

fn percentile(values: &mut [u32], p: f64) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let idx = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(idx).copied()
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.1} % ({n}/{d})", 100.0 * n as f64 / d as f64)
    }
}

fn ms(v: Option<u32>) -> String {
    v.map_or("–".into(), |v| format!("{v} ms"))
}

/// Per-frame speech features of every labelled clip (from answer), one TSV
/// row per frame, with the clip's normal verdict: `clip`, `class`, `verdict`,
/// `verdict_ms`, `speech_end_ms`, then the frame's fields. The analyser runs
/// with speech verdicts withheld so the structure is traced to the clip's end.
pub fn dump_features(labels_path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(labels_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", labels_path.display()))?;
    let base = labels_path.parent().unwrap_or(Path::new("."));
    let labels = parse_labels(&text, base)?;
    let mut out = String::from(
        "clip\tclass\tverdict\tverdict_ms\tspeech_end_ms\tat_ms\tband_db\tfloor_db\tflatness\tf1\tseries\thigh\tin_speech\tspan_ms\tspeech_ms\tpause_ms\tonset_ms\tutterances\ttonal\tcaller_peak_db\tbackground\n",
    );
    for (i, label) in labels.iter().enumerate() {
        let wav = Wav::read(&label.file)?;
        let samples = wav.to_mono_8k();
        let normal = analyse_samples(&samples, false).verdict;
        let mut a = Analyser::new(CpaSettings::default());
        a.set_trace_only();
        for frame in samples.chunks_exact(crate::cpa::FRAME) {
            a.push_samples(frame);
            let t = a.trace();
            let _ = writeln!(
                out,
                "{i}\t{}\t{}\t{}\t{}\t{}\t{:.2}\t{:.2}\t{:.4}\t{:.1}\t{:.4}\t{:.4}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.2}\t{}",
                label.class.as_str(),
                normal.outcome.as_str(),
                normal.at_ms,
                label.speech_end_ms.map_or(-1, i64::from),
                a.now_ms(),
                t.band_db,
                t.floor_db,
                t.flatness,
                t.f1,
                t.series_share,
                t.high_share,
                u8::from(t.in_speech),
                t.span_ms,
                t.speech_ms,
                t.pause_ms,
                t.first_onset_ms.map_or(-1, i64::from),
                t.utterances,
                u8::from(t.tonal),
                t.caller_peak_db,
                u8::from(t.background_speech),
            );
        }
    }
    Ok(out)
}

/// Scores every labelled clip and renders the report.
pub fn eval(labels_path: &Path, early_media: bool) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(labels_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", labels_path.display()))?;
    let base = labels_path.parent().unwrap_or(Path::new("."));
    let labels = parse_labels(&text, base)?;
    let mut results = Vec::with_capacity(labels.len());
    for label in &labels {
        let r = analyse_file(&label.file, early_media)?;
        results.push(r);
    }
    Ok(score(&labels, &results))
}

/// The report for labels and their results (same order).
pub fn score(labels: &[Label], results: &[FileResult]) -> String {
    let mut out = String::new();
    let classes = Outcome::ALL;
    let idx = |o: Outcome| classes.iter().position(|c| *c == o).unwrap_or(0);
    let mut confusion = [[0usize; 9]; 9];
    let mut mistakes = Vec::new();
    for (l, r) in labels.iter().zip(results) {
        confusion[idx(l.class)][idx(r.verdict.outcome)] += 1;
        if l.class != r.verdict.outcome {
            mistakes.push(format!(
                "  {}: expected {}, got {} at {} ms",
                l.file.display(),
                l.class.as_str(),
                r.verdict.outcome.as_str(),
                r.verdict.at_ms
            ));
        }
    }
    let total = labels.len();
    let correct: usize = (0..9).map(|i| confusion[i][i]).sum();
    let _ = writeln!(
        out,
        "clips: {total}\n\n| class | clips | accuracy |\n|---|---|---|"
    );
    for (i, c) in classes.iter().enumerate() {
        let n: usize = confusion[i].iter().sum();
        if n > 0 {
            let _ = writeln!(
                out,
                "| {} | {n} | {} |",
                c.as_str(),
                pct(confusion[i][i], n)
            );
        }
    }
    let _ = writeln!(out, "| **all** | {total} | {} |", pct(correct, total));

    let (h, m, u) = (
        idx(Outcome::Human),
        idx(Outcome::Machine),
        idx(Outcome::Unknown),
    );
    let hm_total: usize = confusion[h].iter().sum::<usize>() + confusion[m].iter().sum::<usize>();
    let humans: usize = confusion[h].iter().sum();
    let _ = writeln!(out, "\n| human vs machine | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| accuracy | {} |",
        pct(confusion[h][h] + confusion[m][m], hm_total)
    );
    let _ = writeln!(
        out,
        "| humans classed as machine | {} |",
        pct(confusion[h][m], humans)
    );
    let _ = writeln!(
        out,
        "| not sure | {} |",
        pct(confusion[h][u] + confusion[m][u], hm_total)
    );
    // A machine whose first speech verdict was `human` (a greeting's
    // sentence pause), corrected later by the read-on or its beep: the
    // engine hands such a call to a free agent before the correction.
    let machines_first_human = labels
        .iter()
        .zip(results)
        .filter(|(l, r)| {
            l.class == Outcome::Machine
                && r.verdict.outcome == Outcome::Machine
                && r.events
                    .iter()
                    .find(|e| matches!(e.kind, EventKind::Human | EventKind::Machine))
                    .is_some_and(|e| e.kind == EventKind::Human)
        })
        .count();
    let _ = writeln!(
        out,
        "| machines first announced human, then corrected | {} |",
        pct(machines_first_human, confusion[m].iter().sum())
    );

    let mut human_after_answer = Vec::new();
    let mut human_after_stop = Vec::new();
    let mut machine_after_answer = Vec::new();
    for (l, r) in labels.iter().zip(results) {
        if l.class == Outcome::Human && r.verdict.outcome == Outcome::Human {
            human_after_answer.push(r.verdict.at_ms);
            if let Some(end) = l.speech_end_ms {
                human_after_stop.push(r.verdict.at_ms.saturating_sub(end));
            }
        }
        if l.class == Outcome::Machine && r.verdict.outcome == Outcome::Machine {
            machine_after_answer.push(r.verdict.at_ms);
        }
    }
    let _ = writeln!(out, "\n| verdict latency | median | p90 |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| human, after the caller stops | {} | {} |",
        ms(percentile(&mut human_after_stop, 0.5)),
        ms(percentile(&mut human_after_stop, 0.9))
    );
    let _ = writeln!(
        out,
        "| human, after answer | {} | {} |",
        ms(percentile(&mut human_after_answer, 0.5)),
        ms(percentile(&mut human_after_answer, 0.9))
    );
    let _ = writeln!(
        out,
        "| machine, after answer | {} | {} |",
        ms(percentile(&mut machine_after_answer, 0.5)),
        ms(percentile(&mut machine_after_answer, 0.9))
    );

    let (mut with_beep, mut hit, mut premature, mut late_or_missed, mut false_beep, mut human_beep) =
        (0, 0, 0, 0, 0, 0);
    for (l, r) in labels.iter().zip(results) {
        match (l.beep_ms, r.beep_at_ms) {
            (Some(want), Some(got)) => {
                with_beep += 1;
                if got + 100 < want {
                    premature += 1;
                } else if got <= want + 400 {
                    hit += 1;
                } else {
                    late_or_missed += 1;
                }
            }
            (Some(_), None) => {
                with_beep += 1;
                late_or_missed += 1;
            }
            (None, Some(_)) => {
                false_beep += 1;
                if l.class == Outcome::Human {
                    human_beep += 1;
                }
            }
            (None, None) => {}
        }
    }
    let no_beep = total - with_beep;
    let _ = writeln!(out, "\n| beep | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| found within −100/+400 ms | {} |",
        pct(hit, with_beep)
    );
    let _ = writeln!(out, "| premature | {} |", pct(premature, with_beep));
    let _ = writeln!(
        out,
        "| late or missed | {} |",
        pct(late_or_missed, with_beep)
    );
    let _ = writeln!(
        out,
        "| false (clip has none) | {} |",
        pct(false_beep, no_beep)
    );
    let _ = writeln!(out, "| on humans | {human_beep} |");

    let mut sit_total = 0;
    let mut sit_ok = 0;
    for (l, r) in labels.iter().zip(results) {
        if let Some(want) = &l.sit_code
            && l.class == Outcome::Sit
        {
            sit_total += 1;
            let got = r.verdict.sit_code.map_or("ITU", |c| c.as_str());
            if got == want.as_str() {
                sit_ok += 1;
            }
        }
    }
    if sit_total > 0 {
        let _ = writeln!(out, "\nSIT code correct: {}", pct(sit_ok, sit_total));
    }

    let _ = write!(out, "\nconfusion (rows expected, columns got)\n\n| |");
    for c in classes {
        let _ = write!(out, " {} |", c.as_str());
    }
    let _ = write!(out, "\n|---|");
    for _ in classes {
        let _ = write!(out, "---|");
    }
    out.push('\n');
    for (i, c) in classes.iter().enumerate() {
        if confusion[i].iter().sum::<usize>() == 0 {
            continue;
        }
        let _ = write!(out, "| {} |", c.as_str());
        for v in confusion[i] {
            let _ = write!(out, " {v} |");
        }
        out.push('\n');
    }
    if !mistakes.is_empty() {
        let _ = writeln!(out, "\nmisclassified:");
        for m in mistakes {
            let _ = writeln!(out, "{m}");
        }
    }
    out
}
