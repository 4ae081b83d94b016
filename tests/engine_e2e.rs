//! The dialer end to end against real SIP peers: SIPp plays the carrier
//! (one scenario answering by the dialed number's last digit: live person,
//! answering machine with beep, fax, busy, ring-no-answer, SIT on early
//! media, 503) and a second SIPp plays the agent's phone on a nailed-up
//! reservation call, echoing what it hears. `outdial run` imports a list,
//! dials it when the campaign starts, and every attempt must end with the
//! right outcome; the live persons must reach the agent, who hears the zip
//! tone then the customer (read from the bridge recording, where the
//! agent's channel is its echo of what it heard).

mod sip_support;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use outdial::media::wav::Wav;
use serde_json::{Value, json};
use sip_support::{Sipp, free_port};
use support::{Running, http, rms, tone_share};

const SUPERVISOR: &str = "e2e-supervisor-token";
/// How long the live persons stay on the line before hanging up.
const TALK_MS: u64 = 6000;

/// (external id, last digit of the number → carrier behaviour, expected outcome, CPA verdict)
const LIST: [(&str, u8, &str, Option<&str>); 8] = [
    ("human-1", 1, "human", Some("human")),
    ("machine", 2, "machine", Some("machine")),
    ("fax", 3, "fax", Some("fax")),
    ("busy", 4, "busy", None),
    ("no-answer", 5, "no_answer", None),
    ("sit", 6, "sit", Some("sit")),
    ("unavailable", 7, "congestion", None),
    ("human-2", 1, "human", Some("human")),
];

fn config(dir: &Path, carrier_port: u16, agent_port: u16) -> String {
    // A port range of our own, so parallel tests do not collide.
    let rtp_base = 24000 + (free_port() % 1000) * 16;
    format!(
        r#"
[sip]
listen = "127.0.0.1:0"
transports = ["udp"]
[rtp]
bind = "127.0.0.1"
port_min = {rtp_base}
port_max = {rtp_max}
[media]
record_dir = "{records}"
[trunk]
uri = "sip:127.0.0.1:{carrier_port}"
caller_id = "+15551230000"
max_concurrent_calls = 4
max_calls_per_second = 5
options_interval_s = 0
[api]
listen = "127.0.0.1:0"
[[api.token]]
token = "{SUPERVISOR}"
role = "supervisor"
[store]
url = "sqlite://{db}"
[[campaign]]
name = "e2e"
mode = "progressive"
lines_per_agent = 1.0
ring_timeout_s = 15
call_hours = "00:00-23:59"
call_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
default_region = "US"
machine_action = "hangup"
[[agent]]
id = "a1"
name = "Echo Agent"
sip_uri = "sip:agent@127.0.0.1:{agent_port}"
campaigns = ["e2e"]
simulated = {{ wrap_up_s = 1, disposition = "SALE" }}
"#,
        rtp_max = rtp_base + 15,
        records = dir.join("recordings").display(),
        db = dir.join("outdial.db").display(),
    )
}

/// The SIPp carrier router (live persons talk `TALK_MS`) for
/// `carrier_calls` calls and a SIPp agent phone echoing RTP for
/// `phone_calls` calls, both giving up after `timeout`.
fn carrier_and_echo_phone(
    dir: &Path,
    carrier_calls: u32,
    phone_calls: u32,
    timeout: &str,
) -> (Sipp, Sipp) {
    let carrier = Sipp::uas(
        sip_support::carrier_router(dir, TALK_MS).to_str().unwrap(),
        carrier_calls,
        &["-timeout", timeout],
    );
    let echo_port = free_port().to_string();
    let agent_phone = Sipp::uas(
        "uas_rtp_echo.xml",
        phone_calls,
        &["-rtp_echo", "-mp", &echo_port, "-timeout", timeout],
    );
    (carrier, agent_phone)
}

/// Imports `list` (CSV text) into campaign e2e.
fn import_list(config_path: &Path, dir: &Path, list: &str) {
    support::import_list(config_path, "e2e", list, dir);
}

/// The simulated agent logs in at start; its phone is called and, once it
/// answers, the agent is ready: then campaign e2e is started.
fn start_when_the_agent_is_ready(addr: std::net::SocketAddr) {
    start_campaign_when_the_agent_is_ready(addr, "e2e");
}

/// `start_when_the_agent_is_ready` for any campaign.
fn start_campaign_when_the_agent_is_ready(addr: std::net::SocketAddr, campaign: &str) {
    wait_for(Duration::from_secs(10), "agent a1 ready", || {
        let (_, body) = http(addr, "GET", "/api/agents/a1", Some(SUPERVISOR), None);
        let agent = json(&body);
        (agent["state"] == "ready" && agent["phone_connected"] == true).then_some(body)
    });
    start_campaign(addr, campaign);
}

/// Starts `campaign` as the supervisor.
fn start_campaign(addr: std::net::SocketAddr, campaign: &str) {
    let (status, body) = http(
        addr,
        "POST",
        &format!("/api/campaigns/{campaign}/start"),
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{body}");
}

/// Campaign e2e's stats: `Ok` once `records` attempts have ended and no
/// line is in use, else `Err`, both with the stats' JSON text.
fn all_attempted(addr: std::net::SocketAddr, records: u64) -> Result<String, String> {
    campaign_attempted(addr, "e2e", records)
}

/// `all_attempted` for any campaign.
fn campaign_attempted(
    addr: std::net::SocketAddr,
    campaign: &str,
    records: u64,
) -> Result<String, String> {
    let (_, body) = http(
        addr,
        "GET",
        &format!("/api/campaigns/{campaign}/stats"),
        Some(SUPERVISOR),
        None,
    );
    let stats = json(&body);
    let finished: u64 = stats["outcomes"]
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    if finished == records && stats["lines_in_use"] == 0 {
        Ok(body)
    } else {
        Err(body)
    }
}

/// Lets the last wrap-up (1 s) write its record, stops outdial with SIGTERM
/// and checks both SIPp peers passed: the carrier's scenario ran to its
/// end, and the reservation call was ended cleanly by outdial's BYE.
fn shut_down(running: &mut Running, carrier: &mut Sipp, agent_phone: &mut Sipp) {
    std::thread::sleep(Duration::from_millis(1500));
    running.signal("TERM");
    let status = running.child.wait().unwrap();
    assert!(status.success(), "outdial exit status {status}");
    carrier.assert_passed(Duration::from_secs(10));
    agent_phone.assert_passed(Duration::from_secs(10));
}

/// `outdial export --attempts` of campaign e2e: the header and the rows by
/// external id.
fn export_attempts(
    config_path: &Path,
    dir: &Path,
) -> (csv::StringRecord, BTreeMap<String, Vec<csv::StringRecord>>) {
    let (headers, rows) = support::export_csv(config_path, "e2e", true, &dir.join("attempts.csv"));
    let id = headers.iter().position(|h| h == "external_id").unwrap();
    let mut attempts: BTreeMap<String, Vec<csv::StringRecord>> = BTreeMap::new();
    for row in rows {
        attempts.entry(row[id].to_string()).or_default().push(row);
    }
    (headers, attempts)
}

/// The bridge recordings written under `dir/recordings` (none: the
/// directory may not exist).
fn recordings(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("recordings"))
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

fn wait_for(within: Duration, what: &str, check: impl FnMut() -> Option<String>) -> String {
    try_wait_for(within, check).unwrap_or_else(|| panic!("{what} did not happen within {within:?}"))
}

fn try_wait_for(within: Duration, mut check: impl FnMut() -> Option<String>) -> Option<String> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(found) = check() {
            return Some(found);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The agent's channel of a bridge recording: the zip tone (440 Hz) comes
/// back first, then the customer's "Hello?".
fn assert_zip_then_customer(path: &Path) {
    let wav = Wav::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(wav.channels, 2, "stereo: customer left, agent right");
    let agent: Vec<f64> = wav
        .samples
        .chunks(2)
        .map(|frame| f64::from(frame[1]))
        .collect();
    let customer: Vec<f64> = wav
        .samples
        .chunks(2)
        .map(|frame| f64::from(frame[0]))
        .collect();
    // 20 ms windows: the first loud one must be the zip tone.
    let windows: Vec<&[f64]> = agent.chunks(160).collect();
    let first_loud = windows
        .iter()
        .position(|w| rms(w) > 300.0)
        .unwrap_or_else(|| panic!("{}: the agent's channel is silent", path.display()));
    // The 200 ms tone fills about ten windows (the ones at its edges only
    // partly, depending on how the echo's packets fall).
    let shares: Vec<f64> = windows[first_loud..]
        .iter()
        .take(10)
        .map(|w| tone_share(w, 440.0))
        .collect();
    let tonal = shares.iter().filter(|&&share| share > 0.8).count();
    assert!(
        tonal >= 6,
        "{}: the agent's channel does not start with the 440 Hz zip tone (shares {shares:.2?})",
        path.display()
    );
    // After the tone: speech that is not the zip tone, which the customer
    // channel has too.
    let after_tone = windows[first_loud + 10..]
        .iter()
        .filter(|w| rms(w) > 300.0 && tone_share(w, 440.0) < 0.5)
        .count();
    assert!(
        after_tone >= 10,
        "{}: the customer's voice never reached the agent ({after_tone} windows)",
        path.display()
    );
    assert!(
        customer.chunks(160).filter(|w| rms(w) > 300.0).count() >= 10,
        "{}: the customer channel is silent",
        path.display()
    );
}

#[test]
fn a_campaign_reaches_every_outcome_against_sipp_carrier_and_agent() {
    let dir = tempfile::tempdir().unwrap();
    let (mut carrier, mut agent_phone) =
        carrier_and_echo_phone(dir.path(), LIST.len() as u32, 1, "150s");
    let config_path = dir.path().join("outdial.toml");
    std::fs::write(
        &config_path,
        config(dir.path(), carrier.port, agent_phone.port),
    )
    .unwrap();

    let mut list = String::from("id,phone\n");
    for (i, (id, digit, _, _)) in LIST.iter().enumerate() {
        list.push_str(&format!("{id},+1202555{:03}{digit}\n", 100 + i));
    }
    import_list(&config_path, dir.path(), &list);
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    start_when_the_agent_is_ready(addr);

    // On a timeout, the last stats say which outcome never came (a rare CI
    // timeout, 2026-12-01, left no trace of it).
    let mut last_stats = String::new();
    let stats = try_wait_for(Duration::from_secs(90), || {
        let body = all_attempted(addr, LIST.len() as u64);
        last_stats.clone_from(body.as_ref().unwrap_or_else(|e| e));
        body.ok()
    })
    .unwrap_or_else(|| {
        panic!("every record attempted did not happen within 90s; last stats: {last_stats}")
    });
    let stats = json(&stats);
    assert_eq!(stats["dials"], LIST.len() as u64, "{stats}");
    assert_eq!(stats["abandoned"], 0, "{stats}");
    assert_eq!(stats["live_answers"], 2, "{stats}");
    assert!(stats["connect_latency_ms"].is_array(), "{stats}");
    // The agent's shift: the two live persons, and the time they took.
    let (_, body) = http(addr, "GET", "/api/agents/a1", Some(SUPERVISOR), None);
    let shift = json(&body)["shift"].clone();
    assert_eq!(shift["calls"], 2, "{shift}");
    let talk_s = shift["talk_s"].as_u64().unwrap_or_default();
    // Each talks TALK_MS from the answer; the agent has them from the
    // splice, after the greeting and the verdict.
    assert!((4..=2 * TALK_MS / 1000).contains(&talk_s), "{shift}");
    assert!(
        shift["average_handle_s"].as_f64().unwrap_or_default() > 0.0,
        "{shift}"
    );
    let occupancy = shift["occupancy"].as_f64().unwrap_or_default();
    assert!(occupancy > 0.0 && occupancy <= 1.0, "{shift}");
    // Prometheus sees the campaign's figures (refreshed at least every second).
    let metrics = wait_for(Duration::from_secs(5), "campaign gauges", || {
        let (_, body) = http(addr, "GET", "/metrics", None, None);
        body.contains("outdial_lines_in_use{campaign=\"e2e\"} 0")
            .then_some(body)
    });
    for line in [
        "outdial_abandon_rate{campaign=\"e2e\",window=\"us_30d\"} 0",
        "outdial_abandon_rate{campaign=\"e2e\",window=\"uk_24h\"} 0",
        "outdial_answers_waiting{campaign=\"e2e\"} 0",
        "outdial_held_back{campaign=\"e2e\",reason=\"trunk_lines\"} 0",
        "outdial_campaign_running{campaign=\"e2e\"} 1",
    ] {
        assert!(metrics.contains(line), "no `{line}` in:\n{metrics}");
    }
    shut_down(&mut running, &mut carrier, &mut agent_phone);

    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (id, _, outcome, verdict) in LIST {
        let rows = attempts
            .get(id)
            .unwrap_or_else(|| panic!("{id} was never dialed: {attempts:?}"));
        assert_eq!(rows.len(), 1, "{id} dialed more than once: {rows:?}");
        let row = &rows[0];
        assert_eq!(&row[column("outcome")], outcome, "{id}: {row:?}");
        if let Some(verdict) = verdict {
            assert_eq!(&row[column("cpa_verdict")], verdict, "{id}: {row:?}");
        }
        if outcome == "human" {
            assert_eq!(&row[column("agent")], "a1", "{id}: {row:?}");
            assert_eq!(&row[column("disposition")], "SALE", "{id}: {row:?}");
            assert_eq!(&row[column("abandoned")], "0", "{id}: {row:?}");
        } else {
            assert_eq!(&row[column("agent")], "", "{id} reached an agent: {row:?}");
        }
    }
    // Each live person's bridge was recorded: zip tone, then the customer.
    let recordings = recordings(dir.path());
    assert_eq!(recordings.len(), 2, "{recordings:?}");
    for recording in &recordings {
        assert_zip_then_customer(recording);
    }
}

/// How long the carrier holds the call (a=inactive, no RTP) in the hold
/// test: longer than the media inactivity timeout that test sets (5 s).
const HOLD_MS: u64 = 8000;

#[test]
fn a_carriers_hold_mid_call_is_answered_and_not_taken_for_dead_media() {
    // The carrier puts the bridged call on hold with a re-INVITE
    // (a=inactive) and sends no RTP for 8 s, then takes it off hold and the
    // callee hangs up. outdial must answer inactive then sendrecv (checked by
    // SIPp), and keep the call: its dead-media clock stops while the far end
    // does not send. Before, the re-INVITE was answered sendrecv and the
    // call was hung up as media_timeout 5 s into the hold.
    let dir = tempfile::tempdir().unwrap();
    let audio = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/audio");
    let scenario = std::fs::read_to_string(sip_support::scenario("carrier_hold.xml"))
        .unwrap()
        .replace("AUDIO_DIR", audio.to_str().unwrap())
        .replace("HOLD_MS", &HOLD_MS.to_string());
    let scenario_path = dir.path().join("carrier_hold.xml");
    std::fs::write(&scenario_path, scenario).unwrap();
    let mut carrier = Sipp::uas(scenario_path.to_str().unwrap(), 1, &["-timeout", "60s"]);
    let echo_port = free_port().to_string();
    let mut agent_phone = Sipp::uas(
        "uas_rtp_echo.xml",
        1,
        &["-rtp_echo", "-mp", &echo_port, "-timeout", "60s"],
    );
    let config_path = dir.path().join("outdial.toml");
    let config_text = config(dir.path(), carrier.port, agent_phone.port);
    assert!(config_text.contains("[media]\n"));
    std::fs::write(
        &config_path,
        config_text.replace("[media]\n", "[media]\ninactivity_timeout_s = 5\n"),
    )
    .unwrap();
    import_list(&config_path, dir.path(), "id,phone\nheld,+12025550101\n");
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    start_when_the_agent_is_ready(addr);

    wait_for(Duration::from_secs(45), "the held call to end", || {
        all_attempted(addr, 1).ok()
    });
    shut_down(&mut running, &mut carrier, &mut agent_phone);

    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows = &attempts["held"];
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(&row[column("outcome")], "human", "{row:?}");
    assert_eq!(&row[column("agent")], "a1", "{row:?}");
    let talk_ms: u64 = row[column("talk_ms")].parse().unwrap();
    assert!(talk_ms >= HOLD_MS, "talk {talk_ms} ms: {row:?}");
}

/// Agent a1 of [`config`], driven by hand through the API (not simulated),
/// in a preview campaign.
fn preview_config(dir: &Path, carrier_port: u16, agent_port: u16) -> String {
    let text = config(dir, carrier_port, agent_port);
    assert!(text.contains("mode = \"progressive\"") && text.contains("simulated = "));
    text.replace("mode = \"progressive\"", "mode = \"preview\"")
        .lines()
        .filter(|line| !line.starts_with("simulated = "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `POST /api/agents/a1/{path}` as the supervisor; the agent view.
fn agent_post(addr: std::net::SocketAddr, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, text) = http(
        addr,
        "POST",
        &format!("/api/agents/a1/{path}"),
        Some(SUPERVISOR),
        body,
    );
    (status, json(&text))
}

/// Asks for a record until one is on screen (the hopper may still be
/// loading); its external id.
fn next_preview(addr: std::net::SocketAddr) -> String {
    wait_for(Duration::from_secs(15), "a record to preview", || {
        let (status, view) = agent_post(addr, "preview", None);
        (status == 200).then(|| view["preview"]["record"].as_str().unwrap().to_string())
    })
}

fn agent_state(addr: std::net::SocketAddr) -> Value {
    let (_, body) = http(addr, "GET", "/api/agents/a1", Some(SUPERVISOR), None);
    json(&body)
}

/// A SIPp carrier expecting `calls` calls, a SIPp phone for agent a1, and
/// `outdial run` in `mode` with a1 driven by hand, `list` imported.
fn hand_driven(
    dir: &Path,
    mode: &str,
    calls: u32,
    list: &str,
) -> (Sipp, Sipp, PathBuf, Running, std::net::SocketAddr) {
    hand_driven_with(dir, mode, calls, list, |text| text)
}

/// `hand_driven` with the configuration's text edited by `edit` first.
fn hand_driven_with(
    dir: &Path,
    mode: &str,
    calls: u32,
    list: &str,
    edit: impl FnOnce(String) -> String,
) -> (Sipp, Sipp, PathBuf, Running, std::net::SocketAddr) {
    let (carrier, agent_phone) = carrier_and_echo_phone(dir, calls, 1, "150s");
    let config_path = dir.join("outdial.toml");
    let text = preview_config(dir, carrier.port, agent_phone.port)
        .replace("mode = \"preview\"", &format!("mode = \"{mode}\""));
    std::fs::write(&config_path, edit(text)).unwrap();
    import_list(&config_path, dir, list);
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    (carrier, agent_phone, config_path, running, addr)
}

/// Waits for a1 on a call (`what`), hangs it up from the agent's side and
/// gives the wrap-up code `A`.
/// The agent's view names the call's customer throughout.
fn talk_then_code_a(addr: std::net::SocketAddr, what: &str) {
    let on_call = json(&wait_for(Duration::from_secs(60), what, || {
        let view = agent_state(addr);
        (view["state"] == "on_call").then(|| view.to_string())
    }));
    assert_eq!(on_call["call"]["campaign"], "e2e", "{on_call}");
    // The supervisor's agent table reads the same.
    let (_, all) = http(addr, "GET", "/api/agents", Some(SUPERVISOR), None);
    let all = json(&all);
    let listed = all
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["id"] == "a1"))
        .unwrap_or_else(|| panic!("a1 in {all}"));
    assert_eq!(listed["call"]["record"], on_call["call"]["record"], "{all}");
    let (status, view) = agent_post(addr, "hangup", None);
    assert_eq!(status, 200, "{view}");
    let wrap_up = json(&wait_for(Duration::from_secs(15), "wrap-up", || {
        let view = agent_state(addr);
        (view["state"] == "wrap_up").then(|| view.to_string())
    }));
    assert_eq!(
        wrap_up["call"]["record"], on_call["call"]["record"],
        "{wrap_up}"
    );
    assert_eq!(
        wrap_up["call"]["phone"], on_call["call"]["phone"],
        "{wrap_up}"
    );
    let (status, view) = agent_post(addr, "disposition", Some(r#"{"code":"A"}"#));
    assert_eq!(status, 200, "{view}");
}

/// Logs a1 in, waits for its phone, makes it Ready.
fn log_in_and_ready(addr: std::net::SocketAddr) {
    let (status, view) = agent_post(addr, "login", None);
    assert_eq!(status, 200, "{view}");
    wait_for(Duration::from_secs(10), "the agent's phone up", || {
        (agent_state(addr)["phone_connected"] == true).then_some(String::new())
    });
    let (status, view) = agent_post(addr, "ready", None);
    assert_eq!(status, 200, "{view}");
}

#[test]
fn a_preview_campaign_shows_records_first_and_dials_only_what_the_agent_calls() {
    // Preview mode against the SIPp carrier and a SIPp phone for the agent:
    // the agent skips one record, marks one do-not-call, calls a live
    // person (connected at the answer, zip tone first), calls a busy number
    // (back to ready, no wrap-up) and removes the skipped record when it
    // comes round again. A record whose number a supervisor puts on the
    // DNC list while it is on screen is not dialed when the agent calls it.
    // Only the two called records are dialed.
    let dir = tempfile::tempdir().unwrap();
    let (mut carrier, mut agent_phone, config_path, mut running, addr) = hand_driven(
        dir.path(),
        "preview",
        2,
        "id,phone\nskipped,+12025550111\ndnc,+12025550121\nlive,+12025550131\nbusy,+12025550144\n\
         listed_meanwhile,+12025550151\n",
    );
    let agent_events = support::EventStream::open(addr, "/api/agents/a1/events", SUPERVISOR);
    log_in_and_ready(addr);
    // Not started: nothing to preview, and a clear refusal.
    let (status, refused) = agent_post(addr, "preview", None);
    assert_eq!(status, 409, "{refused}");
    start_campaign(addr, "e2e");

    assert_eq!(next_preview(addr), "skipped");
    let (status, view) = agent_post(addr, "preview/skip", None);
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "previewing", "{view}");
    assert_eq!(
        view["preview"]["record"], "dnc",
        "skip shows the next: {view}"
    );
    assert_eq!(view["preview"]["phone"], "+12025550121", "{view}");
    let (status, view) = agent_post(addr, "preview/dnc", None);
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("ready")),
        "{view}"
    );
    let (status, view) = agent_post(addr, "preview/nonsense", None);
    assert_eq!(status, 400, "{view}");

    assert_eq!(next_preview(addr), "live");
    let (status, view) = agent_post(addr, "preview/call", None);
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("reserved")),
        "{view}"
    );
    wait_for(
        Duration::from_secs(15),
        "the live person on the agent's line",
        || (agent_state(addr)["state"] == "on_call").then_some(String::new()),
    );
    wait_for(Duration::from_secs(20), "the callee to hang up", || {
        (agent_state(addr)["state"] == "wrap_up").then_some(String::new())
    });
    // A sale, and the "do not call" box ticked; not with a callback too.
    let (status, refused) = agent_post(
        addr,
        "disposition",
        Some(r#"{"code":"SALE","do_not_call":true,"callback_at":"2099-01-01T10:00:00Z"}"#),
    );
    assert_eq!(status, 400, "{refused}");
    let (status, view) = agent_post(
        addr,
        "disposition",
        Some(r#"{"code":"SALE","notes":"previewed","do_not_call":true}"#),
    );
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("ready")),
        "{view}"
    );
    wait_for(
        Duration::from_secs(10),
        "the number on the DNC list",
        || {
            let (_, body) = http(
                addr,
                "GET",
                "/api/dnc/+12025550131?campaign=e2e",
                Some(SUPERVISOR),
                None,
            );
            body.contains("\"listed\":true").then_some(body)
        },
    );

    assert_eq!(next_preview(addr), "busy");
    let (status, view) = agent_post(addr, "preview/call", None);
    assert_eq!(status, 200, "{view}");
    wait_for(
        Duration::from_secs(15),
        "the busy call to free the agent",
        || all_attempted(addr, 2).ok(),
    );
    assert_eq!(agent_state(addr)["state"], "ready");
    // The live call's recording, named in the CDR, downloaded by a
    // supervisor for review; the busy call has none.
    let (status, cdr) = http(
        addr,
        "GET",
        "/api/campaigns/e2e/export?attempts=true",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 200, "{cdr}");
    let mut rows = csv::Reader::from_reader(cdr.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let field = |row: &csv::StringRecord, name: &str| {
        row[headers.iter().position(|h| h == name).unwrap()].to_string()
    };
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let live = rows
        .iter()
        .find(|r| field(r, "external_id") == "live")
        .unwrap();
    let busy = rows
        .iter()
        .find(|r| field(r, "external_id") == "busy")
        .unwrap();
    assert!(
        field(live, "recording").starts_with("e2e-live-"),
        "{live:?}"
    );
    let (status, wav) = support::http_get_bytes(
        addr,
        &format!("/api/attempts/{}/recording", field(live, "attempt_id")),
        SUPERVISOR,
    );
    assert_eq!(status, 200);
    assert_eq!(&wav[..4], b"RIFF");
    let (status, _) = http(
        addr,
        "GET",
        &format!("/api/attempts/{}/recording", field(busy, "attempt_id")),
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(status, 404);
    // On screen, its number goes on the DNC list: the agent's call stops
    // before the trunk, the agent hears why and is free again.
    assert_eq!(next_preview(addr), "listed_meanwhile");
    let (status, added) = http(
        addr,
        "POST",
        "/api/dnc",
        Some(SUPERVISOR),
        Some(r#"{"numbers": ["+12025550151"]}"#),
    );
    assert_eq!(status, 200, "{added}");
    let (status, view) = agent_post(addr, "preview/call", None);
    assert_eq!(status, 200, "{view}");
    let not_placed = std::iter::from_fn(|| agent_events.next(Duration::from_secs(10)))
        .find(|event| event["type"] == "call_not_placed")
        .expect("the agent is told the call was not placed");
    assert_eq!(not_placed["record"], "listed_meanwhile", "{not_placed}");
    assert_eq!(not_placed["agent"], "a1", "{not_placed}");
    assert!(
        not_placed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("do-not-call")),
        "{not_placed}"
    );
    wait_for(Duration::from_secs(5), "the agent free again", || {
        (agent_state(addr)["state"] == "ready").then_some(String::new())
    });
    let (_, metrics) = http(addr, "GET", "/metrics", None, None);
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("outdial_dials_stopped_total")
                && line.contains("reason=\"do_not_call\"")
                && line.ends_with(" 1")),
        "{metrics}"
    );
    // The skipped record comes round again; this time it is removed.
    assert_eq!(next_preview(addr), "skipped");
    let (status, view) = agent_post(addr, "preview/remove", None);
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("ready")),
        "{view}"
    );
    // Nothing left to preview.
    std::thread::sleep(Duration::from_millis(500));
    let (status, view) = agent_post(addr, "preview", None);
    assert_eq!(status, 409, "{view}");
    shut_down(&mut running, &mut carrier, &mut agent_phone);

    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(
        attempts.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["busy", "live"],
        "only the called records were dialed: {attempts:?}"
    );
    let live = &attempts["live"][0];
    assert_eq!(&live[column("outcome")], "human", "{live:?}");
    assert_eq!(&live[column("agent")], "a1", "{live:?}");
    assert_eq!(&live[column("disposition")], "SALE", "{live:?}");
    assert_eq!(&live[column("abandoned")], "0", "{live:?}");
    let busy = &attempts["busy"][0];
    assert_eq!(&busy[column("outcome")], "busy", "{busy:?}");
    assert_eq!(&busy[column("agent")], "a1", "{busy:?}");

    let states = support::record_states(&config_path, "e2e", &dir.path().join("records.csv"));
    assert_eq!(states["skipped"], "removed", "{states:?}");
    assert_eq!(states["dnc"], "removed", "{states:?}");
    // Back in the list, never dialed (the attempts above); the hopper's
    // next look at it removes it, if it came before the stop.
    assert!(
        ["new", "removed"].contains(&states["listed_meanwhile"].as_str()),
        "{states:?}"
    );
    assert_eq!(states["live"], "removed", "the do-not-call box: {states:?}");
    // The live person's bridge was recorded: zip tone, then the customer.
    let recordings = recordings(dir.path());
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    assert_zip_then_customer(&recordings[0]);
    let named = recordings[0].file_name().unwrap().to_str().unwrap();
    assert_eq!(&live[column("recording")], named, "{live:?}");
}

#[test]
fn a_preview_agent_cancels_the_call_while_it_rings() {
    // Webex: "the ringing status is replaced by the Cancel button". A SIPp
    // carrier that rings until it is cancelled (`carrier_noanswer.xml`:
    // 180, then CANCEL → 200, 487, ACK): the agent's hang-up while the call
    // rings sends the CANCEL, and the agent is free long before the 60 s
    // ring timeout.
    let dir = tempfile::tempdir().unwrap();
    let mut carrier = Sipp::uas("carrier_noanswer.xml", 1, &["-timeout", "60s"]);
    let echo_port = free_port().to_string();
    let mut agent_phone = Sipp::uas(
        "uas_rtp_echo.xml",
        1,
        &["-rtp_echo", "-mp", &echo_port, "-timeout", "60s"],
    );
    let config_path = dir.path().join("outdial.toml");
    let text = preview_config(dir.path(), carrier.port, agent_phone.port)
        .replace("ring_timeout_s = 15", "ring_timeout_s = 60");
    assert!(text.contains("ring_timeout_s = 60"));
    std::fs::write(&config_path, text).unwrap();
    import_list(&config_path, dir.path(), "id,phone\nringing,+12025550161\n");
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    log_in_and_ready(addr);
    start_campaign(addr, "e2e");
    assert_eq!(next_preview(addr), "ringing");
    let (status, view) = agent_post(addr, "preview/call", None);
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("reserved")),
        "{view}"
    );
    // The agent hears it ring (the carrier's 180), then cancels.
    std::thread::sleep(Duration::from_millis(1000));
    let (status, view) = agent_post(addr, "hangup", None);
    assert_eq!(status, 200, "{view}");
    wait_for(
        Duration::from_secs(10),
        "the agent free after the cancel",
        || (agent_state(addr)["state"] == "ready").then_some(String::new()),
    );
    // Nothing to cancel any more: the agent is not on a call.
    let (status, refused) = agent_post(addr, "hangup", None);
    assert_eq!(status, 409, "{refused}");
    shut_down(&mut running, &mut carrier, &mut agent_phone);
    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let cancelled = &attempts["ringing"][0];
    assert_eq!(&cancelled[column("outcome")], "no_answer", "{cancelled:?}");
    assert_eq!(&cancelled[column("sip_code")], "487", "{cancelled:?}");
    assert_eq!(&cancelled[column("agent")], "a1", "{cancelled:?}");
}

/// Campaign e2e's CDR over the API, once it `contains` a marker (the
/// row is written as the store gets it): a reader of its first row's
/// fields by column name.
fn first_cdr_row_once(
    addr: std::net::SocketAddr,
    contains: &str,
) -> (csv::StringRecord, impl Fn(&str) -> String) {
    let cdr = wait_for(Duration::from_secs(15), "the call written", || {
        let (status, cdr) = http(
            addr,
            "GET",
            "/api/campaigns/e2e/export?attempts=true",
            Some(SUPERVISOR),
            None,
        );
        (status == 200 && cdr.contains(contains)).then_some(cdr)
    });
    let mut rows = csv::Reader::from_reader(cdr.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let row = rows.records().next().unwrap().unwrap();
    let fields = row.clone();
    (row, move |name: &str| {
        let at = headers.iter().position(|h| h == name);
        fields[at.unwrap_or_else(|| panic!("no column {name}"))].to_string()
    })
}

#[test]
fn the_agent_holds_the_customer_and_pauses_the_recording() {
    // A preview call (connected at the answer) to a SIPp customer who
    // "talks" a 1000 Hz tone for 25 s; the agent is a SIPp phone that
    // echoes what it hears. Through the API the agent holds the customer
    // for about 3 s, then pauses the recording for about 2 s. In the
    // bridge recording the agent's channel (the echo of what the agent
    // hears) has no customer while on hold; the customer's channel has the
    // tone throughout but for the pause. The CDR has both times.
    let dir = tempfile::tempdir().unwrap();
    let mut carrier = sip_support::customer_talking_a_tone(dir.path());
    let echo_port = free_port().to_string();
    let mut agent_phone = Sipp::uas(
        "uas_rtp_echo.xml",
        1,
        &["-rtp_echo", "-mp", &echo_port, "-timeout", "60s"],
    );
    let config_path = dir.path().join("outdial.toml");
    std::fs::write(
        &config_path,
        preview_config(dir.path(), carrier.port, agent_phone.port),
    )
    .unwrap();
    import_list(&config_path, dir.path(), "id,phone\nheld,+12025550171\n");
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    log_in_and_ready(addr);
    start_campaign(addr, "e2e");
    assert_eq!(next_preview(addr), "held");
    let (status, view) = agent_post(addr, "preview/call", None);
    assert_eq!(status, 200, "{view}");
    // Nothing to hold while it rings.
    let (status, refused) = agent_post(addr, "hold", None);
    assert_eq!(status, 409, "{refused}");
    wait_for(Duration::from_secs(20), "a1 on the call", || {
        (agent_state(addr)["state"] == "on_call").then_some(String::new())
    });
    std::thread::sleep(Duration::from_millis(2500));
    let (status, view) = agent_post(addr, "hold", None);
    assert_eq!(
        (status, view["on_hold_s"].as_u64()),
        (200, Some(0)),
        "{view}"
    );
    let (status, refused) = agent_post(addr, "hold", None);
    assert_eq!(status, 409, "on hold already: {refused}");
    wait_for(Duration::from_secs(3), "the on-hold gauge", || {
        let (_, metrics) = http(addr, "GET", "/metrics", None, None);
        metrics
            .lines()
            .any(|line| line == "outdial_customers_on_hold 1")
            .then_some(String::new())
    });
    std::thread::sleep(Duration::from_millis(3000));
    let (status, view) = agent_post(addr, "resume", None);
    assert_eq!(status, 200, "{view}");
    assert!(view["on_hold_s"].is_null(), "{view}");
    std::thread::sleep(Duration::from_millis(2000));
    let (status, view) = agent_post(addr, "recording/pause", None);
    assert_eq!(
        (status, &view["recording_paused"]),
        (200, &Value::Bool(true)),
        "{view}"
    );
    std::thread::sleep(Duration::from_millis(2000));
    let (status, view) = agent_post(addr, "recording/resume", None);
    assert_eq!(
        (status, &view["recording_paused"]),
        (200, &Value::Bool(false)),
        "{view}"
    );
    std::thread::sleep(Duration::from_millis(2000));
    let (status, view) = agent_post(addr, "hangup", None);
    assert_eq!(status, 200, "{view}");
    let (status, view) = agent_post(addr, "disposition", Some(r#"{"code":"A"}"#));
    assert_eq!(status, 200, "{view}");
    shut_down(&mut running, &mut carrier, &mut agent_phone);

    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let held = &attempts["held"][0];
    let hold_ms: u64 = held[column("hold_ms")].parse().unwrap();
    let talk_ms: u64 = held[column("talk_ms")].parse().unwrap();
    let paused_ms: u64 = held[column("recording_paused_ms")].parse().unwrap();
    assert!((2800..=4500).contains(&hold_ms), "{held:?}");
    assert!((1800..=3500).contains(&paused_ms), "{held:?}");
    assert!(talk_ms > hold_ms + paused_ms + 5000, "{held:?}");

    // Each channel in 20 ms windows: where the customer's tone is, and the
    // quiet stretches between its first and last window.
    let recorded = recordings(dir.path());
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let wav = Wav::read(&recorded[0]).unwrap();
    let gaps_ms = |channel: usize| -> (Vec<usize>, usize) {
        let samples: Vec<f64> = wav
            .samples
            .chunks(2)
            .map(|f| f64::from(f[channel]))
            .collect();
        let tone: Vec<bool> = samples
            .chunks(160)
            .map(|w| rms(w) > 300.0 && tone_share(w, 1000.0) > 0.8)
            .collect();
        let first = tone.iter().position(|&t| t).expect("the tone recorded");
        let last = tone.iter().rposition(|&t| t).unwrap();
        let mut gaps = Vec::new();
        let mut gap = 0;
        for &t in &tone[first..=last] {
            if t && gap > 0 {
                gaps.push(gap * 20);
                gap = 0;
            } else if !t {
                gap += 1;
            }
        }
        gaps.retain(|&g| g >= 500);
        (gaps, tone.iter().filter(|&&t| t).count() * 20)
    };
    // The agent's echo: nobody on hold, nothing recorded while paused.
    let (agent_gaps, agent_tone_ms) = gaps_ms(1);
    assert_eq!(agent_gaps.len(), 2, "hold and pause: {agent_gaps:?}");
    assert!((2500..=4500).contains(&agent_gaps[0]), "{agent_gaps:?}");
    assert!((1500..=3000).contains(&agent_gaps[1]), "{agent_gaps:?}");
    assert!(agent_tone_ms >= 4000, "{agent_tone_ms} ms");
    // The customer talks on through the hold: only the pause is missing.
    let (customer_gaps, _) = gaps_ms(0);
    assert_eq!(customer_gaps.len(), 1, "the pause: {customer_gaps:?}");
    assert!(
        (1500..=3000).contains(&customer_gaps[0]),
        "{customer_gaps:?}"
    );
}

#[test]
fn a_personal_callback_comes_back_to_its_agent_in_a_progressive_campaign() {
    // The agent talks to a live person, asks for a personal callback in a
    // few seconds, and later gets that record pushed as a preview (before
    // session 11 personal callbacks were scheduled and never dialed); she
    // calls it and reaches the person again.
    let dir = tempfile::tempdir().unwrap();
    let (mut carrier, mut agent_phone, config_path, mut running, addr) =
        hand_driven(dir.path(), "progressive", 2, "id,phone\ncb,+12025550151\n");
    log_in_and_ready(addr);
    start_campaign(addr, "e2e");
    wait_for(Duration::from_secs(30), "the first call's wrap-up", || {
        (agent_state(addr)["state"] == "wrap_up").then_some(String::new())
    });
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
    let (status, view) = agent_post(
        addr,
        "disposition",
        Some(&format!(
            r#"{{"code":"NA","notes":"call me back","callback_at":"{at}","callback_personal":true}}"#
        )),
    );
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("ready")),
        "{view}"
    );
    // Within a poll period or two the callback is on her screen.
    wait_for(
        Duration::from_secs(60),
        "the personal callback on screen",
        || {
            let view = agent_state(addr);
            (view["preview"]["record"] == "cb" && view["preview"]["callback"] == true)
                .then_some(String::new())
        },
    );
    let (status, view) = agent_post(addr, "preview/call", None);
    assert_eq!(
        (status, view["state"].as_str()),
        (200, Some("reserved")),
        "{view}"
    );
    wait_for(Duration::from_secs(30), "the callback's wrap-up", || {
        (agent_state(addr)["state"] == "wrap_up").then_some(String::new())
    });
    let (status, view) = agent_post(addr, "disposition", Some(r#"{"code":"SALE"}"#));
    assert_eq!(status, 200, "{view}");
    shut_down(&mut running, &mut carrier, &mut agent_phone);

    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows = &attempts["cb"];
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in rows {
        assert_eq!(&row[column("outcome")], "human", "{row:?}");
        assert_eq!(&row[column("agent")], "a1", "{row:?}");
    }
    assert_eq!(&rows[0][column("disposition")], "NA");
    assert_eq!(&rows[1][column("disposition")], "SALE");
}

/// Ofcom's repeat-call rule (`[campaign.repeat_calls]`): the first call
/// to a number is taken for a machine and hung up by the dialer, as the
/// campaign says; its redial a second later is dialed with the agent
/// reserved from the dial, and the agent takes the answer at once — no
/// machine detection decides for them on the repeat call.
#[test]
fn a_repeat_call_after_a_machine_verdict_goes_to_an_agent_reserved_from_the_dial() {
    let dir = tempfile::tempdir().unwrap();
    // Numbers ending in 2: the carrier answers with a machine greeting.
    let (mut carrier, mut agent_phone, config_path, mut running, addr) = hand_driven_with(
        dir.path(),
        "progressive",
        2,
        "id,phone\nrepeat,+12025550162\n",
        |text| {
            text.replace(
                "[[agent]]",
                "[campaign.retry]\nmachine_s = 1\n\
                 [campaign.repeat_calls]\nagent_after_machine_s = 3600\n[[agent]]",
            )
        },
    );
    log_in_and_ready(addr);
    start_campaign(addr, "e2e");
    talk_then_code_a(addr, "the repeat call on the agent's line");
    let (_, stats) = http(
        addr,
        "GET",
        "/api/campaigns/e2e/stats",
        Some(SUPERVISOR),
        None,
    );
    let stats = json(&stats);
    assert_eq!(stats["repeat_calls_dialed"], 1, "{stats}");
    assert_eq!(stats["repeat_calls_waiting"], 0, "{stats}");
    shut_down(&mut running, &mut carrier, &mut agent_phone);

    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows = &attempts["repeat"];
    assert_eq!(rows.len(), 2, "{rows:?}");
    // The first: the dialer's machine verdict, no agent.
    assert_eq!(&rows[0][column("outcome")], "machine", "{:?}", rows[0]);
    assert_eq!(&rows[0][column("agent")], "", "{:?}", rows[0]);
    // The repeat: the agent had it from the answer and judged it.
    assert_eq!(&rows[1][column("agent")], "a1", "{:?}", rows[1]);
    assert_eq!(&rows[1][column("outcome")], "human", "{:?}", rows[1]);
    assert_eq!(&rows[1][column("disposition")], "A", "{:?}", rows[1]);
}

/// `agent_reserved_at_dial` (SPEC §2's non-ASM progressive): every call
/// is dialed for the Ready agent, who has it from the dial — the live
/// person is connected at the human verdict (never abandoned), and the
/// machine and the busy number are the agent's attempts too, each freeing
/// the agent for the next dial.
#[test]
fn a_progressive_campaign_with_the_agent_reserved_at_the_dial() {
    let dir = tempfile::tempdir().unwrap();
    let (mut carrier, mut agent_phone, config_path, mut running, addr) = hand_driven_with(
        dir.path(),
        "progressive",
        3,
        "id,phone\nlive,+12025550131\nmachine,+12025550162\nbusy,+12025550144\n",
        |text| text.replace("[[agent]]", "agent_reserved_at_dial = true\n[[agent]]"),
    );
    log_in_and_ready(addr);
    start_campaign(addr, "e2e");
    talk_then_code_a(addr, "the live person on the agent's line");
    let stats = wait_for(Duration::from_secs(60), "all three attempted", || {
        all_attempted(addr, 3).ok()
    });
    let stats = json(&stats);
    assert_eq!(stats["live_answers"], 1, "{stats}");
    assert_eq!(stats["abandoned"], 0, "{stats}");
    shut_down(&mut running, &mut carrier, &mut agent_phone);

    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (id, outcome) in [("live", "human"), ("machine", "machine"), ("busy", "busy")] {
        let row = &attempts[id][0];
        assert_eq!(&row[column("outcome")], outcome, "{id}: {row:?}");
        // Reserved from the dial: the attempt is the agent's whatever came.
        assert_eq!(&row[column("agent")], "a1", "{id}: {row:?}");
        assert_eq!(&row[column("abandoned")], "0", "{id}: {row:?}");
    }
    assert_eq!(&attempts["live"][0][column("disposition")], "A");
}

/// Webex's "standard preview" (`preview_variant = "standard"`): the
/// machine the agent called is taken for one by the analyser and hung up,
/// the agent back to Ready without ever being put through to it; the live
/// person is connected at the human verdict. (Direct preview would have
/// put the agent through to the machine at its answer.)
#[test]
fn a_standard_preview_call_is_decided_by_the_analyser_at_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (mut carrier, mut agent_phone, config_path, mut running, addr) = hand_driven_with(
        dir.path(),
        "preview",
        2,
        "id,phone\nmachine,+12025550162\nlive,+12025550131\n",
        |text| text.replace("[[agent]]", "preview_variant = \"standard\"\n[[agent]]"),
    );
    log_in_and_ready(addr);
    start_campaign(addr, "e2e");
    assert_eq!(next_preview(addr), "machine");
    let (status, view) = agent_post(addr, "preview/call", None);
    assert_eq!(status, 200, "{view}");
    let mut states = Vec::new();
    wait_for(Duration::from_secs(30), "the machine hung up", || {
        let (_, body) = http(
            addr,
            "GET",
            "/api/campaigns/e2e/stats",
            Some(SUPERVISOR),
            None,
        );
        let state = agent_state(addr)["state"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        let stats = json(&body);
        (stats["outcomes"]["machine"] == 1 && state == "ready").then_some(body)
    });
    assert!(
        !states.iter().any(|s| s == "on_call" || s == "wrap_up"),
        "never put through to the machine: {states:?}"
    );
    assert_eq!(next_preview(addr), "live");
    let (status, view) = agent_post(addr, "preview/call", None);
    assert_eq!(status, 200, "{view}");
    talk_then_code_a(addr, "the live person on the agent's line");
    shut_down(&mut running, &mut carrier, &mut agent_phone);

    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let machine = &attempts["machine"][0];
    assert_eq!(&machine[column("outcome")], "machine", "{machine:?}");
    let live = &attempts["live"][0];
    assert_eq!(&live[column("outcome")], "human", "{live:?}");
    assert_eq!(&live[column("agent")], "a1", "{live:?}");
    assert_eq!(&live[column("disposition")], "A", "{live:?}");
}

/// `connection = "per_call"` (SPEC §3): no reservation call; the agent's
/// phone (a SIPp UAS echoing RTP, answering at once like an auto-answer
/// softphone) is rung for each live person and hung up after, and each
/// customer still reaches the agent within the 2-second window, zip tone
/// first.
#[test]
fn a_per_call_agent_phone_is_rung_for_each_customer() {
    let dir = tempfile::tempdir().unwrap();
    // Two calls to the phone: one per customer.
    let (mut carrier, mut agent_phone) = carrier_and_echo_phone(dir.path(), 2, 2, "90s");
    let config_path = dir.path().join("outdial.toml");
    let text = config(dir.path(), carrier.port, agent_phone.port)
        .replace("simulated = {", "connection = \"per_call\"\nsimulated = {");
    std::fs::write(&config_path, text).unwrap();
    import_list(
        &config_path,
        dir.path(),
        "id,phone\nlive-1,+12025550111\nlive-2,+12025550121\n",
    );
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    // Ready at once, with no call to its phone yet.
    wait_for(Duration::from_secs(10), "agent a1 ready", || {
        let (_, body) = http(addr, "GET", "/api/agents/a1", Some(SUPERVISOR), None);
        let agent = json(&body);
        (agent["state"] == "ready").then_some(body)
    });
    let (_, body) = http(addr, "GET", "/api/agents/a1", Some(SUPERVISOR), None);
    assert_eq!(json(&body)["phone_connected"], false, "{body}");
    assert_eq!(json(&body)["connection"], "per_call", "{body}");
    start_campaign(addr, "e2e");
    let stats = wait_for(Duration::from_secs(60), "both customers handled", || {
        all_attempted(addr, 2).ok()
    });
    let stats = json(&stats);
    assert_eq!(stats["live_answers"], 2, "{stats}");
    assert_eq!(stats["abandoned"], 0, "{stats}");
    // Between customers the phone is not held.
    wait_for(Duration::from_secs(5), "the phone hung up", || {
        let (_, body) = http(addr, "GET", "/api/agents/a1", Some(SUPERVISOR), None);
        (json(&body)["phone_connected"] == false).then_some(body)
    });
    shut_down(&mut running, &mut carrier, &mut agent_phone);
    let (headers, attempts) = export_attempts(&config_path, dir.path());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for id in ["live-1", "live-2"] {
        let row = &attempts[id][0];
        assert_eq!(&row[column("outcome")], "human", "{id}: {row:?}");
        assert_eq!(&row[column("agent")], "a1", "{id}: {row:?}");
        assert_eq!(&row[column("abandoned")], "0", "{id}: {row:?}");
    }
    let recordings = recordings(dir.path());
    assert_eq!(recordings.len(), 2, "{recordings:?}");
    for recording in &recordings {
        assert_zip_then_customer(recording);
    }
}

#[test]
fn a_campaign_defined_through_the_api_dials_like_one_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A live person and a busy number; one reservation call to the phone.
    let (mut carrier, mut agent_phone) = carrier_and_echo_phone(dir.path(), 2, 1, "90s");
    let config_path = dir.path().join("outdial.toml");
    std::fs::write(
        &config_path,
        config(dir.path(), carrier.port, agent_phone.port),
    )
    .unwrap();
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    // Defined, given its list and started while the dialer runs; the agent
    // of the file's campaign is assigned to it too.
    let definition = r#"{
        "name": "made-live",
        "mode": "progressive",
        "ring_timeout_s": 15,
        "call_hours": "00:00-23:59",
        "call_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "machine_action": "hangup",
        "record_calls": false,
        "agents": ["a1"]
    }"#;
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns",
        Some(SUPERVISOR),
        Some(definition),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = http(
        addr,
        "POST",
        "/api/campaigns/made-live/list",
        Some(SUPERVISOR),
        Some("id,phone\nlive,+12025550111\nbusy,+12025550124\n"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["imported"], 2, "{body}");
    start_campaign_when_the_agent_is_ready(addr, "made-live");
    let stats = wait_for(Duration::from_secs(60), "both records dialed", || {
        campaign_attempted(addr, "made-live", 2).ok()
    });
    let stats = json(&stats);
    assert_eq!(stats["live_answers"], 1, "{stats}");
    assert_eq!(stats["abandoned"], 0, "{stats}");
    shut_down(&mut running, &mut carrier, &mut agent_phone);
    let (headers, rows) =
        support::export_csv(&config_path, "made-live", true, &dir.path().join("cdr.csv"));
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let outcome = |id: &str| {
        rows.iter()
            .find(|r| &r[column("external_id")] == id)
            .map(|r| {
                (
                    r[column("outcome")].to_string(),
                    r[column("agent")].to_string(),
                )
            })
    };
    assert_eq!(outcome("live"), Some(("human".into(), "a1".into())));
    assert_eq!(outcome("busy").map(|(o, _)| o), Some("busy".into()));
    // `record_calls = false`: the bridged call left no recording (the
    // dialer records into `[media] record_dir` otherwise).
    let recordings = recordings(dir.path());
    assert!(recordings.is_empty(), "{recordings:?}");
}

#[test]
fn a_transfer_moves_the_customer_to_another_agents_phone() {
    // A preview call to a SIPp customer who "talks" a 1000 Hz tone for
    // 25 s; two agents, each a SIPp phone echoing what it hears. Agent a1
    // talks, then transfers the customer to a2 through the API: a2's phone
    // hears the customer from then on (its echo is in the second part of
    // the recording), a1 is Ready again without a wrap-up, and the CDR
    // names a2 as the agent, a1 as the one who transferred, and both
    // recordings.
    let dir = tempfile::tempdir().unwrap();
    let mut carrier = sip_support::customer_talking_a_tone(dir.path());
    let echo = |port: &str| {
        Sipp::uas(
            "uas_rtp_echo.xml",
            1,
            &["-rtp_echo", "-mp", port, "-timeout", "60s"],
        )
    };
    let mut a1_phone = echo(&free_port().to_string());
    let mut a2_phone = echo(&free_port().to_string());
    let config_path = dir.path().join("outdial.toml");
    let config = format!(
        "{}\n[[agent]]\nid = \"a2\"\nname = \"Second Agent\"\n\
         sip_uri = \"sip:agent@127.0.0.1:{}\"\ncampaigns = [\"e2e\"]\n",
        preview_config(dir.path(), carrier.port, a1_phone.port),
        a2_phone.port
    );
    std::fs::write(&config_path, config).unwrap();
    import_list(&config_path, dir.path(), "id,phone\nmoved,+12025550171\n");
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    let a2_post = |path: &str, body: Option<&str>| {
        let (status, text) = http(
            addr,
            "POST",
            &format!("/api/agents/a2/{path}"),
            Some(SUPERVISOR),
            body,
        );
        (status, json(&text))
    };
    let a2_state = || {
        let (_, body) = http(addr, "GET", "/api/agents/a2", Some(SUPERVISOR), None);
        json(&body)
    };
    log_in_and_ready(addr);
    let (status, view) = a2_post("login", None);
    assert_eq!(status, 200, "{view}");
    wait_for(Duration::from_secs(10), "a2's phone up", || {
        (a2_state()["phone_connected"] == true).then_some(String::new())
    });
    let (status, view) = a2_post("ready", None);
    assert_eq!(status, 200, "{view}");
    start_campaign(addr, "e2e");
    assert_eq!(next_preview(addr), "moved");
    let (status, view) = agent_post(addr, "preview/call", None);
    assert_eq!(status, 200, "{view}");
    // Nobody on the line yet: nothing to transfer.
    let (status, refused) = agent_post(addr, "transfer", Some(r#"{"to":"a2"}"#));
    assert_eq!(status, 409, "{refused}");
    let on_call = json(&wait_for(Duration::from_secs(20), "a1 on the call", || {
        let view = agent_state(addr);
        (view["state"] == "on_call").then(|| view.to_string())
    }));
    assert_eq!(
        on_call["transfer_to"],
        serde_json::json!([{"id": "a2", "name": "Second Agent", "in_campaign": true}]),
        "{on_call}"
    );
    std::thread::sleep(Duration::from_millis(3000));
    let (status, view) = agent_post(addr, "transfer", Some(r#"{"to":"a2"}"#));
    assert_eq!(status, 200, "{view}");
    let taken = json(&wait_for(Duration::from_secs(10), "a2 on the call", || {
        let view = a2_state();
        (view["state"] == "on_call").then(|| view.to_string())
    }));
    assert_eq!(taken["call"]["record"], "moved", "{taken}");
    assert_eq!(agent_state(addr)["state"], "ready", "a1 is free at once");
    wait_for(Duration::from_secs(3), "the transfers counter", || {
        let (_, metrics) = http(addr, "GET", "/metrics", None, None);
        metrics
            .lines()
            .any(|line| line == r#"outdial_transfers_total{campaign="e2e",step="done"} 1"#)
            .then_some(String::new())
    });
    std::thread::sleep(Duration::from_millis(4000));
    let (status, view) = a2_post("hangup", None);
    assert_eq!(status, 200, "{view}");
    let (status, view) = a2_post("disposition", Some(r#"{"code":"A"}"#));
    assert_eq!(status, 200, "{view}");
    // The row is written once the store has the disposition.
    let (row, field) = first_cdr_row_once(addr, ",A,");
    assert_eq!(
        (
            field("agent"),
            field("transferred_from"),
            field("disposition")
        ),
        ("a2".to_string(), r#"["a1"]"#.to_string(), "A".to_string()),
        "{row:?}"
    );
    let parts: Vec<String> = field("recording").split(';').map(str::to_string).collect();
    assert_eq!(parts.len(), 2, "{row:?}");
    assert!(parts[1].ends_with("-2.wav"), "{parts:?}");
    let attempt = field("attempt_id");
    for (part, status) in [("", 200), ("?part=2", 200), ("?part=3", 404)] {
        let (got, _) = support::http_get_bytes(
            addr,
            &format!("/api/attempts/{attempt}/recording{part}"),
            SUPERVISOR,
        );
        assert_eq!(got, status, "part {part}");
    }
    shut_down(&mut running, &mut carrier, &mut a1_phone);
    a2_phone.assert_passed(Duration::from_secs(10));

    // Each agent's echo of the customer's tone is in its own part: a1's
    // for the ~3 s before the transfer, a2's for the ~4 s after.
    let echoed_ms = |name: &str| {
        let wav = Wav::read(&dir.path().join("recordings").join(name)).unwrap();
        let agent: Vec<f64> = wav.samples.chunks(2).map(|f| f64::from(f[1])).collect();
        agent
            .chunks(160)
            .filter(|w| rms(w) > 300.0 && tone_share(w, 1000.0) > 0.8)
            .count()
            * 20
    };
    let (first, second) = (echoed_ms(&parts[0]), echoed_ms(&parts[1]));
    assert!((2000..=5000).contains(&first), "a1 heard {first} ms");
    assert!((3000..=6000).contains(&second), "a2 heard {second} ms");
}

#[test]
fn the_agent_drops_a_voicemail_into_the_machine_and_takes_the_next_call() {
    // A progressive campaign that gives machines to agents: the SIPp
    // carrier's answering machine (greeting, beep, then silence until our
    // BYE) reaches a1, who drops the campaign's recorded message. a1 is
    // Ready at once; the machine hears the message to its end, then our
    // BYE; the CDR says a voicemail was left by a1.
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("vm.wav");
    // 1.5 s of a 600 Hz tone.
    let samples: Vec<i16> = (0..12_000)
        .map(|n| {
            (8000.0 * (2.0 * std::f64::consts::PI * 600.0 * f64::from(n) / 8000.0).sin()) as i16
        })
        .collect();
    outdial::media::wav::write_mono_8k(&message, &samples).unwrap();
    let (mut carrier, mut agent_phone, _config_path, mut running, addr) = hand_driven_with(
        dir.path(),
        "progressive",
        1,
        "id,phone\nmachine,+12025550172\n",
        |text| {
            text.replace(
                "machine_action = \"hangup\"",
                &format!(
                    "machine_action = \"connect_agent\"\nvoicemail_prompt = \"{}\"",
                    message.display()
                ),
            )
        },
    );
    log_in_and_ready(addr);
    // Nothing on the line yet: nothing to drop.
    let (status, refused) = agent_post(addr, "voicemail-drop", None);
    assert_eq!(status, 409, "{refused}");
    start_campaign(addr, "e2e");
    let on_call = json(&wait_for(
        Duration::from_secs(30),
        "the machine given to a1",
        || {
            let view = agent_state(addr);
            (view["state"] == "on_call").then(|| view.to_string())
        },
    ));
    assert_eq!(on_call["voicemail_drop"], true, "{on_call}");
    std::thread::sleep(Duration::from_millis(1000));
    let dropped_at = Instant::now();
    let (status, view) = agent_post(addr, "voicemail-drop", None);
    assert_eq!((status, &view["state"]), (200, &json!("ready")), "{view}");
    // The call goes on while the message plays, and ends after it.
    let (row, field) = first_cdr_row_once(addr, "voicemail left");
    assert!(
        dropped_at.elapsed() >= Duration::from_millis(1400),
        "written {:?} after the drop: before the message ended",
        dropped_at.elapsed()
    );
    assert_eq!(
        (field("outcome"), field("agent"), field("notes")),
        (
            "machine".to_string(),
            "a1".to_string(),
            "voicemail left".to_string()
        ),
        "{row:?}"
    );
    shut_down(&mut running, &mut carrier, &mut agent_phone);
}

#[test]
fn an_outside_transfer_hands_the_customer_to_a_number_through_the_trunk() {
    // A progressive call to a SIPp customer who talks 20 s; agent a1 is a
    // SIPp phone. The campaign has two outside numbers on the same SIPp
    // carrier: "Sales" is busy (486), "Billing" answers and waits for our
    // BYE. Through the API a1 transfers the customer to Sales — the
    // customer comes back to a1, on hold — then to Billing: a1 goes to
    // wrap-up while the customer talks with Billing, and when the customer
    // hangs up the dialer hangs up Billing's line. The CDR names a1 and
    // the outside number, with a1's disposition.
    let dir = tempfile::tempdir().unwrap();
    let carrier_scenario = sip_support::carrier_router(dir.path(), 10_000);
    let mut carrier = Sipp::uas(
        carrier_scenario.to_str().unwrap(),
        3,
        &["-timeout", "90s", "-trace_msg"],
    );
    let echo_port = free_port().to_string();
    let mut agent_phone = Sipp::uas(
        "uas_rtp_echo.xml",
        1,
        &["-rtp_echo", "-mp", &echo_port, "-timeout", "90s"],
    );
    let config_path = dir.path().join("outdial.toml");
    let text = preview_config(dir.path(), carrier.port, agent_phone.port)
        .replace("mode = \"preview\"", "mode = \"progressive\"")
        .replace(
            "machine_action = \"hangup\"",
            "machine_action = \"hangup\"\n\
             [[campaign.outside_transfer]]\nname = \"Billing\"\nnumber = \"+12025550172\"\n\
             [[campaign.outside_transfer]]\nname = \"Sales\"\nnumber = \"+12025550174\"",
        );
    std::fs::write(&config_path, text).unwrap();
    // Ends in 9: a person who talks twice the carrier's talk time.
    import_list(&config_path, dir.path(), "id,phone\nout,+12025550119\n");
    let mut running = Running::start(&config_path);
    let addr = running.wait_until_listening();
    log_in_and_ready(addr);
    start_campaign(addr, "e2e");
    let on_call = json(&wait_for(Duration::from_secs(30), "a1 on the call", || {
        let view = agent_state(addr);
        (view["state"] == "on_call" && view["customer_on_line"] == true).then(|| view.to_string())
    }));
    assert_eq!(
        on_call["outside_transfers"],
        json!(["Billing", "Sales"]),
        "{on_call}"
    );
    let (status, refused) = agent_post(addr, "transfer", Some(r#"{"outside":"Nowhere"}"#));
    assert_eq!(status, 400, "{refused}");
    let (status, refused) =
        agent_post(addr, "transfer", Some(r#"{"to":"a2","outside":"Billing"}"#));
    assert_eq!(status, 400, "{refused}");

    // Sales is busy: the customer is back with a1, on hold.
    let (status, view) = agent_post(addr, "transfer", Some(r#"{"outside":"Sales"}"#));
    assert_eq!(status, 200, "{view}");
    let back = json(&wait_for(
        Duration::from_secs(10),
        "the busy number given up",
        || {
            let view = agent_state(addr);
            (view["transferring_outside_to"].is_null() && view["customer_on_line"] == true)
                .then(|| view.to_string())
        },
    ));
    assert_eq!(back["state"], "on_call", "{back}");
    assert!(back["on_hold_s"].is_u64(), "on hold: {back}");
    let (status, view) = agent_post(addr, "resume", None);
    assert_eq!(status, 200, "{view}");

    // Billing answers: the customer is theirs, a1 wraps up.
    let (status, view) = agent_post(addr, "transfer", Some(r#"{"outside":"Billing"}"#));
    assert_eq!(status, 200, "{view}");
    let wrap_up = json(&wait_for(Duration::from_secs(10), "a1 in wrap-up", || {
        let view = agent_state(addr);
        (view["state"] == "wrap_up").then(|| view.to_string())
    }));
    assert_eq!(wrap_up["call"]["record"], "out", "{wrap_up}");
    wait_for(Duration::from_secs(3), "the transfer counters", || {
        let (_, metrics) = http(addr, "GET", "/metrics", None, None);
        let has = |line: &str| metrics.lines().any(|l| l == line);
        (has(r#"outdial_transfers_total{campaign="e2e",step="failed"} 1"#)
            && has(r#"outdial_transfers_total{campaign="e2e",step="done"} 1"#))
        .then_some(String::new())
    });
    // Two trunk lines while the customer talks with Billing.
    let (_, stats) = http(
        addr,
        "GET",
        "/api/campaigns/e2e/stats",
        Some(SUPERVISOR),
        None,
    );
    assert_eq!(json(&stats)["lines_in_use"], 2, "{stats}");
    let (status, view) = agent_post(addr, "disposition", Some(r#"{"code":"A"}"#));
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "ready", "{view}");

    // The customer hangs up (20 s after the answer); the row is written
    // then, with a1's code.
    wait_for(Duration::from_secs(40), "the call over", || {
        all_attempted(addr, 1).ok()
    });
    let (row, field) = first_cdr_row_once(addr, ",A,");
    assert_eq!(
        (
            field("agent"),
            field("outcome"),
            field("transferred_to"),
            field("disposition")
        ),
        (
            "a1".to_string(),
            "human".to_string(),
            "+12025550172".to_string(),
            "A".to_string()
        ),
        "{row:?}"
    );
    shut_down(&mut running, &mut carrier, &mut agent_phone);
    // The INVITEs the carrier had: the customer, Sales, Billing — and
    // Billing's line ended by our BYE (its scenario waits for one).
    let messages = carrier.messages();
    for uri in [
        "INVITE sip:+12025550119@",
        "INVITE sip:+12025550174@",
        "INVITE sip:+12025550172@",
    ] {
        assert!(messages.contains(uri), "{uri} in\n{messages}");
    }
}
