//! The SIPp carrier scenarios (tests/sipp/carrier_*.xml) against the real
//! binary: each passes its SIPp script (no unexpected message), ends the
//! call as the carrier would, and what it streams is classed as intended by
//! `outdial cpa`. The end-to-end dialer tests rely on these verdicts.

mod sip_support;
#[path = "sip_support/softphone.rs"]
mod softphone;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sip_support::{
    Sipp, fixture_audio_dir, json_lines, outdial_call, rfc_t1, scenario_with_audio, write_config,
};
use softphone::{CallEvent, Softphone};

const LIMIT: Duration = Duration::from_secs(30);

/// A SIPp carrier on a free port, and an outdial configuration in a
/// temporary directory (where recordings go too).
struct Carrier {
    sipp: Sipp,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Carrier {
    fn start(scenario: &str, calls: u32, extra: &[&str]) -> Carrier {
        let dir = tempfile::tempdir().unwrap();
        let scenario = scenario_with_audio(scenario, &fixture_audio_dir(), dir.path());
        let sipp = Sipp::uas(scenario.to_str().unwrap(), calls, extra);
        let config = write_config(dir.path(), sipp.port);
        rfc_t1(&config);
        Carrier { sipp, config, dir }
    }

    fn target(&self) -> String {
        format!("sip:5551234@127.0.0.1:{}", self.sipp.port)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `outdial call --json` with `args`; returns the call's report once
    /// SIPp has passed its scenario.
    fn call(&mut self, args: &[&str]) -> Value {
        let target = self.target();
        let mut all = vec![target.as_str(), "--json"];
        all.extend_from_slice(args);
        let output = outdial_call(&self.config, &all, LIMIT);
        let report = json_lines(&output).remove(0);
        self.sipp.assert_passed(LIMIT);
        report
    }
}

/// `outdial cpa --json` on a recording.
fn cpa(recording: &Path, early_media: bool) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_outdial"));
    command.arg("cpa").arg("--json");
    if early_media {
        command.arg("--early-media");
    }
    let output = command.arg(recording).output().expect("run outdial cpa");
    assert!(
        output.status.success(),
        "outdial cpa failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("outdial cpa --json prints one object")
}

fn codes(report: &Value) -> Vec<u64> {
    report["progress"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["code"].as_u64()).collect())
        .unwrap_or_default()
}

#[test]
fn human_says_hello_then_hangs_up_and_is_classed_human() {
    let mut carrier = Carrier::start("carrier_human.xml", 1, &["-set", "talk_ms", "1000"]);
    let recording = carrier.path("human.wav");
    let report = carrier.call(&["--hold", "20", "--record", recording.to_str().unwrap()]);
    assert_eq!(report["outcome"], "answered", "{report}");
    assert!(codes(&report).contains(&180), "{report}");
    // The callee's BYE ended the call, long before our 20 s hold.
    assert!(
        report["duration_ms"].as_f64().unwrap() < 15_000.0,
        "{report}"
    );
    let verdict = cpa(&recording, false);
    assert_eq!(verdict["result"], "human", "{verdict}");
}

#[test]
fn human_accepts_our_bye_during_the_greeting() {
    let mut carrier = Carrier::start("carrier_human.xml", 1, &[]);
    let report = carrier.call(&["--hold", "1"]);
    assert_eq!(report["outcome"], "answered", "{report}");
}

#[test]
fn machine_greeting_is_classed_machine_with_the_beep() {
    let mut carrier = Carrier::start("carrier_machine.xml", 1, &[]);
    let recording = carrier.path("machine.wav");
    let report = carrier.call(&["--hold", "8", "--record", recording.to_str().unwrap()]);
    assert_eq!(report["outcome"], "answered", "{report}");
    let verdict = cpa(&recording, false);
    assert_eq!(verdict["result"], "machine", "{verdict}");
    // The beep starts 6.62 s into the greeting file, which starts at the answer.
    let beep = verdict["beep_at_ms"].as_u64().expect("a beep is found");
    assert!((6_100..=7_200).contains(&beep), "{verdict}");
}

#[test]
fn fax_answer_tone_is_classed_fax() {
    let mut carrier = Carrier::start("carrier_fax.xml", 1, &[]);
    let recording = carrier.path("fax.wav");
    let report = carrier.call(&["--hold", "2.5", "--record", recording.to_str().unwrap()]);
    assert_eq!(report["outcome"], "answered", "{report}");
    let verdict = cpa(&recording, false);
    assert_eq!(verdict["result"], "fax", "{verdict}");
}

#[test]
fn busy_carrier_answers_486() {
    let mut carrier = Carrier::start("carrier_busy.xml", 1, &[]);
    let report = carrier.call(&[]);
    assert_eq!(report["outcome"], "busy", "{report}");
    assert_eq!(report["sip_code"], 486, "{report}");
}

#[test]
fn unavailable_carrier_answers_503() {
    let mut carrier = Carrier::start("carrier_503.xml", 1, &[]);
    let report = carrier.call(&[]);
    assert_eq!(report["outcome"], "congestion", "{report}");
    assert_eq!(report["sip_code"], 503, "{report}");
}

#[test]
fn unanswered_call_rings_until_our_cancel() {
    let mut carrier = Carrier::start("carrier_noanswer.xml", 1, &[]);
    let report = carrier.call(&["--ring-timeout", "1"]);
    assert_eq!(report["outcome"], "no_answer", "{report}");
    assert_eq!(report["sip_code"], 487, "{report}");
    assert!(codes(&report).contains(&180), "{report}");
}

#[test]
fn sit_early_media_then_404() {
    let mut carrier = Carrier::start("carrier_sit.xml", 1, &[]);
    let report = carrier.call(&[]);
    assert_eq!(report["outcome"], "invalid_number", "{report}");
    assert_eq!(report["sip_code"], 404, "{report}");
    assert!(codes(&report).contains(&183), "{report}");
}

#[test]
fn sit_accepts_our_cancel_during_the_announcement() {
    let mut carrier = Carrier::start("carrier_sit.xml", 1, &[]);
    let report = carrier.call(&["--ring-timeout", "1"]);
    assert_eq!(report["sip_code"], 487, "{report}");
}

/// `outdial call --record` records from the answer on, so the early media
/// is recorded with the library: the leg is negotiated from the 183.
#[test]
fn sit_early_media_is_classed_sit_intercept() {
    let carrier = Carrier::start("carrier_sit.xml", 1, &[]);
    let recording = carrier.path("early.wav");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let end = runtime.block_on(async {
        let mut phone = Softphone::start(&carrier.config).await;
        let destination = format!("127.0.0.1:{}", carrier.sipp.port).parse().unwrap();
        let call = phone.dial(&carrier.target(), destination).await;
        let end = loop {
            match phone.next_event(call.handle, LIMIT).await {
                CallEvent::Progress {
                    code: 183,
                    sdp: Some(sdp),
                } => {
                    call.apply_answer(&sdp);
                    call.leg.record(recording.clone()).unwrap();
                }
                CallEvent::Progress { .. } => {}
                CallEvent::Answered { .. } => panic!("the SIT carrier answered"),
                CallEvent::Ended(end) => break end,
            }
        };
        let report = call.leg.close().await.unwrap();
        assert!(report.recording.is_some(), "{report:?}");
        phone.stop().await;
        end
    });
    let mut sipp = carrier.sipp;
    sipp.assert_passed(LIMIT);
    assert_eq!(end.sip_code, Some(404), "{end:?}");
    let verdict = cpa(&recording, true);
    assert_eq!(verdict["result"], "sit", "{verdict}");
    assert_eq!(verdict["sit_code"], "IC", "{verdict}");
}

/// The load-run carrier: every call takes one of its branches and passes.
#[test]
fn mixed_carrier_answers_busies_or_rings() {
    let calls = 20;
    let mut carrier = Carrier::start(
        "carrier_mixed.xml",
        calls,
        &["-set", "talk_ms", "200", "-l", "20"],
    );
    let target = carrier.target();
    let output = outdial_call(
        &carrier.config,
        &[
            &target,
            "--json",
            "--count",
            &calls.to_string(),
            "--rate",
            "20",
            "--ring-timeout",
            "1",
            "--hold",
            "0.5",
        ],
        LIMIT,
    );
    let reports = json_lines(&output);
    carrier.sipp.assert_passed(LIMIT);
    assert_eq!(reports.len(), calls as usize);
    let mut answered = 0;
    for report in &reports {
        match report["outcome"].as_str() {
            Some("answered") => answered += 1,
            Some("busy") => assert_eq!(report["sip_code"], 486, "{report}"),
            Some("no_answer") => assert_eq!(report["sip_code"], 487, "{report}"),
            _ => panic!("unexpected outcome: {report}"),
        }
    }
    // 65 % of calls are answered: none in 20 would be a broken branch.
    assert!(answered > 0, "{reports:?}");
}
