//! What the softphone tests share (`tests/baresip_agent.rs`,
//! `tests/linphone_agent.rs`): outdial's configuration for one agent `a1`
//! on campaign `soft` with a SIPp carrier, the agent's "voice", the API
//! calls the agent and supervisor make, and the checks on what each side
//! heard.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use outdial::media::wav::{Wav, write_mono_8k};
use serde_json::Value;

use crate::sip_support::{Sipp, carrier_router, free_port};
use crate::support::{Running, http, outdial, rms, tone_share};

pub const SUPERVISOR: &str = "softphone-supervisor-token";
pub const AGENT_TOKEN: &str = "softphone-agent-token";
pub const AGENT_PASSWORD: &str = "agent-secret-1";
/// How long each live person talks after the greeting before hanging up.
pub const TALK_MS: u64 = 5000;
/// The agent's "voice": a steady tone nothing else on the call has.
pub const AGENT_TONE_HZ: f64 = 700.0;
pub const ZIP_HZ: f64 = 440.0;

pub fn config(dir: &Path, carrier_port: u16) -> String {
    let rtp_base = 26000 + (free_port() % 1000) * 8;
    format!(
        r#"
[sip]
listen = "127.0.0.1:0"
transports = ["udp", "tcp"]
[rtp]
bind = "127.0.0.1"
port_min = {rtp_base}
port_max = {rtp_max}
[media]
record_dir = "{records}"
[trunk]
uri = "sip:127.0.0.1:{carrier_port}"
caller_id = "+15551230000"
max_concurrent_calls = 2
max_calls_per_second = 5
options_interval_s = 0
[api]
listen = "127.0.0.1:0"
[[api.token]]
token = "{SUPERVISOR}"
role = "supervisor"
[[api.token]]
token = "{AGENT_TOKEN}"
role = "agent"
agent = "a1"
[store]
url = "sqlite://{db}"
[[campaign]]
name = "soft"
mode = "progressive"
lines_per_agent = 1.0
ring_timeout_s = 15
call_hours = "00:00-23:59"
call_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
default_region = "US"
machine_action = "hangup"
[[agent]]
id = "a1"
name = "Softphone Agent"
password = "{AGENT_PASSWORD}"
campaigns = ["soft"]
"#,
        rtp_max = rtp_base + 7,
        records = dir.join("recordings").display(),
        db = dir.join("outdial.db").display(),
    )
}

/// Two minutes of the agent's "voice" (a steady tone), 16-bit PCM as
/// baresip's aufile wants it.
pub fn agent_voice(dir: &Path) -> PathBuf {
    let voice = dir.join("agent-voice.wav");
    let samples: Vec<i16> = (0..8000 * 120)
        .map(|i| {
            let phase = 2.0 * std::f64::consts::PI * AGENT_TONE_HZ * f64::from(i) / 8000.0;
            (6000.0 * phase.sin()) as i16
        })
        .collect();
    write_mono_8k(&voice, &samples).unwrap();
    voice
}

/// `outdial import` of `list` into campaign soft.
pub fn import(config_path: &Path, list: &Path) {
    let import = outdial()
        .arg("--config")
        .arg(config_path)
        .args(["import", "--campaign", "soft", "--file"])
        .arg(list)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
}

/// Starts campaign soft (the supervisor's command).
pub fn start_campaign(addr: SocketAddr) {
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/soft/start",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
}

pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

pub fn agent(addr: SocketAddr) -> Value {
    let (status, body) = http(addr, "GET", "/api/agents/a1", Some(AGENT_TOKEN), None);
    assert_eq!(status, 200, "{body}");
    json(&body)
}

pub fn agent_post(addr: SocketAddr, action: &str, body: Option<&str>) -> (u16, Value) {
    let (status, text) = http(
        addr,
        "POST",
        &format!("/api/agents/a1/{action}"),
        Some(AGENT_TOKEN),
        body,
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn wait_for<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One channel of a WAV file, in 20 ms windows.
pub fn windows(path: &Path, channel: usize) -> Vec<Vec<f64>> {
    let wav = Wav::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(wav.sample_rate, 8000, "{}", path.display());
    let channels = usize::from(wav.channels);
    let samples: Vec<f64> = wav
        .samples
        .chunks(channels)
        .map(|frame| f64::from(frame[channel]))
        .collect();
    samples.chunks(160).map(<[f64]>::to_vec).collect()
}

/// Runs of consecutive 20 ms windows that are loud and mostly `frequency`.
pub fn tone_runs(windows: &[Vec<f64>], frequency: f64) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, w) in windows.iter().enumerate() {
        let tonal = rms(w) > 300.0 && tone_share(w, frequency) > 0.8;
        match (tonal, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i - s));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, windows.len() - s));
    }
    runs
}

/// The zip tones (~200 ms of 440 Hz) in what the agent's phone heard.
pub fn zip_tones(heard: &[Vec<f64>]) -> Vec<(usize, usize)> {
    tone_runs(heard, ZIP_HZ)
        .into_iter()
        .filter(|&(_, length)| (6..=12).contains(&length))
        .collect()
}

/// What the agent's phone heard: `customers` zip tones, each followed by
/// that customer's speech (the router's live person talks for seconds
/// after the greeting).
pub fn assert_each_customer_heard_after_a_zip(heard: &[Vec<f64>], customers: usize) {
    let zips = zip_tones(heard);
    assert_eq!(
        zips.len(),
        customers,
        "one zip tone of ~200 ms per customer: {zips:?}"
    );
    for (i, &(start, length)) in zips.iter().enumerate() {
        let until = zips.get(i + 1).map_or(heard.len(), |&(next, _)| next);
        let speech = heard[start + length..until]
            .iter()
            .filter(|w| rms(w) > 300.0 && tone_share(w, ZIP_HZ) < 0.5)
            .count();
        assert!(
            speech >= 25,
            "customer {} was not heard after the zip tone ({speech} loud windows)",
            i + 1
        );
    }
}

/// What the customers heard: each of the `calls` bridge recordings in
/// `dir/recordings` carries the agent's 700 Hz in its agent channel.
pub fn assert_the_agent_was_heard_in_the_recordings(dir: &Path, calls: usize) {
    let recordings: Vec<PathBuf> = std::fs::read_dir(dir.join("recordings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(recordings.len(), calls, "{recordings:?}");
    for recording in &recordings {
        let agent_channel = windows(recording, 1);
        let voiced = agent_channel
            .iter()
            .filter(|w| rms(w) > 1000.0 && tone_share(w, AGENT_TONE_HZ) > 0.8)
            .count();
        assert!(
            voiced * 2 >= agent_channel.len(),
            "{}: the agent's voice is missing from the agent channel ({voiced} of {} windows)",
            recording.display(),
            agent_channel.len()
        );
    }
}

/// What every softphone test starts from: the SIPp carrier (its router
/// scenario: numbers ending in 1 are live persons) for `calls` calls,
/// outdial running on [`config`] as `edit` changes it, with `list`
/// imported into campaign `soft`, and the agent's voice file.
pub struct Dialer {
    pub carrier: Sipp,
    pub config_path: PathBuf,
    pub running: Running,
    /// The HTTP API.
    pub addr: SocketAddr,
    /// outdial's SIP UDP address, where the phone registers.
    pub registrar: SocketAddr,
    pub voice: PathBuf,
}

pub fn start_dialer(dir: &Path, calls: u32, edit: impl Fn(String) -> String, list: &str) -> Dialer {
    let carrier = Sipp::uas(
        carrier_router(dir, TALK_MS).to_str().unwrap(),
        calls,
        &["-timeout", "120s"],
    );
    let config_path = dir.join("outdial.toml");
    std::fs::write(&config_path, edit(config(dir, carrier.port))).unwrap();
    let list_path = dir.join("list.csv");
    std::fs::write(&list_path, list).unwrap();
    import(&config_path, &list_path);
    let voice = agent_voice(dir);
    let mut running = Running::start(&config_path);
    let listening = running.wait_for_message("outdial listening", Duration::from_secs(20));
    let addr: SocketAddr = listening["http"].as_str().unwrap().parse().unwrap();
    let registrar: SocketAddr = listening["sip_udp"].as_str().unwrap().parse().unwrap();
    Dialer {
        carrier,
        config_path,
        running,
        addr,
        registrar,
        voice,
    }
}
