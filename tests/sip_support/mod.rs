//! Helpers for the SIP integration tests: free loopback ports, SIPp in the
//! foreground (killed on drop, bounded by timeouts), and `outdial call`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A UDP port free on 127.0.0.1 right now (and its TCP twin, best effort).
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A SIPp process in the foreground; killed when dropped.
pub struct Sipp {
    child: Child,
    pub port: u16,
    /// The calls it was started for (`-m`).
    calls: u32,
    errors: PathBuf,
    /// Its working directory: the error and message logs.
    dir: tempfile::TempDir,
}

impl Sipp {
    /// SIPp playing `scenario` as a UAS on a free port, for `calls` calls.
    pub fn uas(scenario_name: &str, calls: u32, extra: &[&str]) -> Sipp {
        Self::spawn(scenario_name, calls, None, extra)
    }

    /// SIPp playing `scenario` as a UAC towards `remote`.
    pub fn uac(scenario_name: &str, remote: &str, extra: &[&str]) -> Sipp {
        Self::spawn(scenario_name, 1, Some(remote), extra)
    }

    /// SIPp playing `scenario` as a UAS on `port`, for `calls` calls.
    pub fn uas_at(port: u16, scenario_name: &str, calls: u32, extra: &[&str]) -> Sipp {
        Self::spawn_at(port, scenario_name, calls, None, extra)
    }

    /// SIPp playing `scenario` as a UAC from `port` towards `remote`.
    pub fn uac_at(port: u16, scenario_name: &str, remote: &str, extra: &[&str]) -> Sipp {
        Self::spawn_at(port, scenario_name, 1, Some(remote), extra)
    }

    fn spawn(scenario_name: &str, calls: u32, remote: Option<&str>, extra: &[&str]) -> Sipp {
        Self::spawn_at(free_port(), scenario_name, calls, remote, extra)
    }

    fn spawn_at(
        port: u16,
        scenario_name: &str,
        calls: u32,
        remote: Option<&str>,
        extra: &[&str],
    ) -> Sipp {
        let dir = tempfile::tempdir().unwrap();
        let errors = dir.path().join("errors.log");
        let mut command = Command::new("sipp");
        command
            .arg("-sf")
            .arg(scenario(scenario_name))
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args([
                "-m",
                &calls.to_string(),
                "-nostdin",
                "-timeout",
                "25s",
                "-trace_err",
                // The final statistics screen, for the calls that passed.
                "-trace_screen",
                "-error_file",
            ])
            .arg(&errors)
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(remote) = remote {
            command.arg(remote);
        }
        let child = command
            .spawn()
            .expect("run sipp (Debian package sip-tester)");
        // Give SIPp a moment to bind its port.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Sipp {
            child,
            port,
            calls,
            errors,
            dir,
        }
    }

    /// Waits for SIPp to finish; panics with its error log unless it
    /// exits 0 within `within` having passed every call it was started for.
    /// (SIPp exits 0 at its `-timeout` when the calls it had passed: a
    /// scenario that saw fewer calls than expected is no pass.)
    pub fn assert_passed(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&self.errors).unwrap_or_default();
                assert!(status.success(), "SIPp failed ({status}):\n{log}");
                let passed = self.successful_calls();
                assert_eq!(
                    passed,
                    Some(u64::from(self.calls)),
                    "SIPp passed {passed:?} of the {} calls it expected (None: no final \
                     screen in {}):\n{log}",
                    self.calls,
                    self.dir.path().display()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let log = std::fs::read_to_string(&self.errors).unwrap_or_default();
                panic!("SIPp still running after {within:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The calls SIPp counted as successful, from its final screen
    /// (`-trace_screen`, written as it exits).
    fn successful_calls(&self) -> Option<u64> {
        let entries = std::fs::read_dir(self.dir.path()).ok()?;
        let screen = entries
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with("_screen.log"))?;
        let text = std::fs::read_to_string(screen.path()).ok()?;
        // "  Successful call | <periodic> | <cumulative>"
        text.lines()
            .rev()
            .find(|line| line.trim_start().starts_with("Successful call"))?
            .rsplit('|')
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The messages SIPp received and sent so far, as its `-trace_msg`
    /// log holds them (started with `-trace_msg` among `extra`).
    #[allow(dead_code)] // not every test binary that includes this module uses it
    pub fn messages(&self) -> String {
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return String::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped config with ephemeral ports, the trunk at `127.0.0.1:trunk_port`,
/// trunk credentials user/secret, T1 = 100 ms (so timer-driven paths stay
/// short) and a password for agent 1001.
pub fn config_text(dir: &Path, trunk_port: u16) -> String {
    include_str!("../../config/outdial.toml")
        // Not the shipped phone ports, where `scripts/try-it` runs SIPp.
        .replace("@127.0.0.1:5081\"", "@127.0.0.1:9\"")
        .replace("@127.0.0.1:5082\"", "@127.0.0.1:9\"")
        .replace("listen = \"127.0.0.1:5060\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "uri = \"sip:127.0.0.1:5070\"",
            &format!("uri = \"sip:127.0.0.1:{trunk_port}\""),
        )
        .replace("# username = \"outdial\"", "username = \"user\"")
        .replace("# password = \"...\"", "password = \"secret\"")
        .replace("t1_ms = 500", "t1_ms = 100")
        .replace("max_calls_per_second = 10", "max_calls_per_second = 500")
        .replace("max_concurrent_calls = 60", "max_concurrent_calls = 500")
        .replace("id = \"1001\"\n", "id = \"1001\"\npassword = \"pw1001\"\n")
        .replace(
            "url = \"sqlite://outdial.db\"",
            &format!("url = \"sqlite://{}/outdial.db\"", dir.display()),
        )
}

pub fn write_config(dir: &Path, trunk_port: u16) -> PathBuf {
    let path = dir.join("outdial.toml");
    std::fs::write(&path, config_text(dir, trunk_port)).unwrap();
    path
}

/// Runs `outdial call` with a hard timeout; returns its output.
pub fn outdial_call(config: &Path, args: &[&str], within: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_outdial"))
        .arg("call")
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .env_remove("OUTDIAL_TRUNK_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn outdial call");
    let deadline = Instant::now() + within;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "outdial call still running after {within:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The JSON objects `outdial call --json` printed.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    assert!(
        output.status.success(),
        "outdial call failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The committed audio the carrier scenarios stream.
pub fn fixture_audio_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio")
}

/// A copy of scenario `name` in `dir` whose audio paths (relative to the
/// repository root, `tests/fixtures/audio/…`) point into `audio_dir`: SIPp
/// runs in a temporary directory, and a test may substitute its own audio.
pub fn scenario_with_audio(name: &str, audio_dir: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(scenario(name)).expect("read the scenario");
    let path = dir.join(name);
    let audio = format!("{}/", audio_dir.display());
    std::fs::write(&path, text.replace("tests/fixtures/audio/", &audio)).unwrap();
    path
}

/// A μ-law WAV of a `frequency_hz` tone lasting `ms` (format tag 7,
/// 44-byte header, as SIPp's rtp_stream wants).
pub fn write_ulaw_tone(path: &Path, frequency_hz: f64, ms: usize) {
    let n = ms * 8;
    let codes: Vec<u8> = (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            outdial::media::g711::ulaw_encode(
                (8000.0 * (2.0 * std::f64::consts::PI * frequency_hz * t).sin()) as i16,
            )
        })
        .collect();
    write_ulaw(path, &codes);
}

/// A μ-law WAV file of these codes.
pub fn write_ulaw(path: &Path, codes: &[u8]) {
    std::fs::write(path, ulaw_wav(codes)).unwrap();
}

/// A WAV holding 8 kHz mono μ-law (format tag 7, 44-byte header).
pub fn ulaw_wav(codes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + codes.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + codes.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&7u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(codes.len() as u32).to_le_bytes());
    out.extend_from_slice(codes);
    out
}

/// Puts T1 back to the RFC's 500 ms in a config from [`write_config`]. With
/// 100 ms a CPU-starved SIPp may get an INVITE retransmission after it sent
/// both 100 and 180, which SIPp cannot match any more (it resends only the
/// first message sent after a receive) and counts as unexpected.
pub fn rfc_t1(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    assert!(
        text.contains("t1_ms = 100"),
        "write_config sets t1_ms = 100"
    );
    std::fs::write(config, text.replace("t1_ms = 100", "t1_ms = 500")).unwrap();
}

/// `tests/sipp/carrier_router.xml` made runnable in `dir`: audio from
/// `tests/e2e/audio`, live persons talking `talk_ms` (numbers ending 1),
/// half that (8) or twice that (9).
pub fn carrier_router(dir: &Path, talk_ms: u64) -> PathBuf {
    carrier_router_ringing(dir, talk_ms, 300)
}

/// [`carrier_router`] whose live persons answer after `ring_ms` of ringing.
pub fn carrier_router_ringing(dir: &Path, talk_ms: u64, ring_ms: u64) -> PathBuf {
    let audio = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/audio");
    let text = std::fs::read_to_string(scenario("carrier_router.xml"))
        .expect("read carrier_router.xml")
        .replace("AUDIO_DIR", audio.to_str().expect("UTF-8 path"))
        .replace("TALK_SHORT_MS", &(talk_ms / 2).to_string())
        .replace("TALK_LONG_MS", &(talk_ms * 2).to_string())
        .replace("TALK_MS", &talk_ms.to_string())
        .replace("HUMAN_RING_MS", &ring_ms.to_string());
    let path = dir.join("carrier.xml");
    std::fs::write(&path, text).expect("write carrier.xml");
    path
}

/// A SIPp carrier whose one customer answers and "talks" a 1000 Hz tone
/// for 25 s (its "Hello?" lasts the whole file, not the usual 2540 ms),
/// hanging up after 20 s unless we do first.
pub fn customer_talking_a_tone(dir: &Path) -> Sipp {
    customers_talking_a_tone(dir, 1)
}

/// [`customer_talking_a_tone`] for `calls` calls, one after the other.
pub fn customers_talking_a_tone(dir: &Path, calls: u32) -> Sipp {
    let audio = dir.join("audio");
    std::fs::create_dir_all(&audio).unwrap();
    write_ulaw_tone(&audio.join("human_hello.wav"), 1000.0, 25_000);
    write_ulaw(&audio.join("silence.wav"), &[0xff; 8000]);
    let scenario = scenario_with_audio("carrier_human.xml", &audio, dir);
    let text = std::fs::read_to_string(&scenario).unwrap();
    let greeting = r#"<pause milliseconds="2540"/>"#;
    assert!(text.contains(greeting));
    std::fs::write(
        &scenario,
        text.replace(greeting, r#"<pause milliseconds="25000"/>"#),
    )
    .unwrap();
    Sipp::uas(
        scenario.to_str().unwrap(),
        calls,
        &["-set", "talk_ms", "20000", "-timeout", "60s"],
    )
}
