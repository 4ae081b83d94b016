//! Helpers shared by the integration tests: run the real `outdial` binary
//! with a configuration written to a temporary directory.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = include_str!("../../config/outdial.toml");

pub fn outdial() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_outdial"));
    command.env_remove("RUST_LOG");
    command
}

/// `outdial export` of `campaign` (its records, or with `attempts` its
/// CDR) into `out`; the header and the rows. Panics with the command's
/// stderr when it fails.
#[allow(dead_code)] // not every test binary exports
pub fn export_csv(
    config: &Path,
    campaign: &str,
    attempts: bool,
    out: &Path,
) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut command = outdial();
    command
        .arg("--config")
        .arg(config)
        .args(["export", "--campaign", campaign]);
    if attempts {
        command.arg("--attempts");
    }
    let export = command
        .arg("--out")
        .arg(out)
        .output()
        .expect("run outdial export");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let mut reader = csv::Reader::from_path(out).expect("the exported CSV");
    let headers = reader.headers().expect("a header").clone();
    let rows = reader.records().map(|r| r.expect("a CSV row")).collect();
    (headers, rows)
}

/// The records' `state` by external id, from `outdial export`.
#[allow(dead_code)]
pub fn record_states(
    config: &Path,
    campaign: &str,
    out: &Path,
) -> std::collections::BTreeMap<String, String> {
    let (headers, rows) = export_csv(config, campaign, false, out);
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (id, state) = (column("external_id"), column("state"));
    rows.iter()
        .map(|r| (r[id].to_string(), r[state].to_string()))
        .collect()
}

/// The shipped config moved to ephemeral loopback ports and a temp store.
/// The agents' phones point at the discard port (nothing answers there),
/// not the shipped 5081/5082, where `scripts/try-it` runs SIPp phones that
/// would answer a test's reservation calls.
pub fn ephemeral_config(dir: &Path) -> String {
    DEFAULT_CONFIG
        .replace("@127.0.0.1:5081\"", "@127.0.0.1:9\"")
        .replace("@127.0.0.1:5082\"", "@127.0.0.1:9\"")
        .replace("listen = \"127.0.0.1:5060\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "url = \"sqlite://outdial.db\"",
            &format!("url = \"sqlite://{}/outdial.db\"", dir.display()),
        )
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("outdial.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// `outdial run` on the shipped configuration (ephemeral ports, the store
/// in a temporary directory), listening: the process, its API address and
/// the directory (kept alive with it).
pub fn start_default() -> (Running, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ephemeral_config(dir.path()));
    let mut running = Running::start(&config);
    let addr = running.wait_until_listening();
    (running, addr, dir)
}

/// A running `outdial run` whose log lines are collected from stderr.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    pub fn start(config: &Path) -> Running {
        let mut child = outdial()
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn outdial");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a JSON log line whose message is `message`; returns it parsed.
    pub fn wait_for_message(&mut self, message: &str, within: Duration) -> serde_json::Value {
        self.try_wait_for_message(message, within)
            .unwrap_or_else(|| {
                panic!(
                    "no log line {message:?} within {within:?}; saw:\n{}",
                    self.seen.join("\n")
                )
            })
    }

    /// [`Running::wait_for_message`], or `None` when the time is up.
    #[allow(dead_code)] // not every test binary that includes this module uses it
    pub fn try_wait_for_message(
        &mut self,
        message: &str,
        within: Duration,
    ) -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                && value["message"] == message
            {
                return Some(value);
            }
        }
    }

    /// The HTTP address from the "outdial listening" line.
    pub fn wait_until_listening(&mut self) -> SocketAddr {
        let line = self.wait_for_message("outdial listening", Duration::from_secs(20));
        line["http"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("http address in the listening line")
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, None, None)
}

/// One HTTP/1.1 request with an optional bearer token and JSON body;
/// returns (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let (status, bytes) = http_bytes(addr, method, path, token, body);
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// `GET path` with a bearer token; the body as bytes (a WAV download).
#[allow(dead_code)]
pub fn http_get_bytes(addr: SocketAddr, path: &str, token: &str) -> (u16, Vec<u8>) {
    http_bytes(addr, "GET", path, Some(token), None)
}

/// [`http`] with the body as bytes.
fn http_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let split = response.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(at) => (&response[..at], &response[at + 4..]),
        None => (&response[..], &[][..]),
    };
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .lines()
        .any(|l| l.starts_with("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, body)
}

/// A chunked HTTP/1.1 body put back together (panics on a cut one: a
/// streamed response that was aborted must fail the test).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..line_end]).trim(), 16)
            .expect("a hex chunk size");
        let rest = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        assert!(rest.len() >= size + 2, "the chunked body was cut short");
        out.extend_from_slice(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// An open server-sent-event stream; yields the JSON of each `data:` line.
pub struct EventStream {
    lines: mpsc::Receiver<serde_json::Value>,
}

impl EventStream {
    pub fn open(addr: SocketAddr, path: &str, token: &str) -> EventStream {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .expect("write");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Some(data) = line.strip_prefix("data: ")
                    && let Ok(value) = serde_json::from_str(data)
                    && tx.send(value).is_err()
                {
                    break;
                }
            }
        });
        EventStream { lines }
    }

    pub fn next(&self, within: Duration) -> Option<serde_json::Value> {
        self.lines.recv_timeout(within).ok()
    }
}

/// Share of a window's energy at `frequency` (Goertzel at 8 kHz): near 1
/// for a pure tone there, near 0 for speech or another tone.
pub fn tone_share(samples: &[f64], frequency: f64) -> f64 {
    let n = samples.len() as f64;
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * frequency / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = x + coefficient * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    let energy: f64 = samples.iter().map(|x| x * x).sum();
    if energy <= 0.0 {
        0.0
    } else {
        2.0 * power / (n * energy)
    }
}

pub fn rms(samples: &[f64]) -> f64 {
    (samples.iter().map(|x| x * x).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

/// `outdial --config CONFIG ARGS…`: its exit code and its stdout and
/// stderr together.
pub fn outdial_output(config: &Path, args: &[&str]) -> (i32, String) {
    let output = outdial()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run outdial");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// Schedules a callback in `hours` for record `external_id` of `campaign`
/// through the library (as an agent's disposition would); its id.
pub fn schedule_callback(
    store: &dyn outdial::store::Store,
    campaign: i64,
    external_id: &str,
    hours: i64,
    agent: Option<&str>,
) -> i64 {
    let now = jiff::Timestamp::now();
    let record = store
        .record(campaign, external_id)
        .expect("read the record")
        .expect("the record exists")
        .id;
    store
        .schedule_callback(
            &outdial::store::CallbackRequest {
                record,
                at: now + jiff::SignedDuration::from_hours(hours),
                phone: None,
                agent: agent.map(String::from),
            },
            now,
        )
        .expect("schedule the callback")
}

/// Waits (up to `within`) until `check` holds; panics naming `what`.
pub fn wait_until(within: Duration, what: &str, check: &dyn Fn() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A node's part of a shared trunk as its metrics show it: (lines, nodes),
/// once it has claimed one (`[trunk] shared_by_nodes`).
pub fn trunk_share(addr: SocketAddr) -> Option<(u32, u32)> {
    let (status, body) = http(addr, "GET", "/metrics", None, None);
    assert_eq!(status, 200, "{body}");
    let gauge = |name: &str| {
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .map(|v| v as u32)
    };
    Some((
        gauge("outdial_trunk_share_lines ")?,
        gauge("outdial_trunk_share_nodes ")?,
    ))
}

/// Imports `count` contacts (`c0`…, phones +12025550000…) into `campaign`
/// of the node configured at `config`, through `outdial import` (the list
/// file is written into `dir`).
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn import_numbered_contacts(config: &Path, campaign: &str, count: u32, dir: &Path) {
    let list: String = std::iter::once("external_id,phone\n".to_string())
        .chain((0..count).map(|i| format!("c{i},+1202555{i:04}\n")))
        .collect();
    import_list(config, campaign, &list, dir);
}

/// Imports `list` (CSV text) into `campaign` of the node configured at
/// `config`, through `outdial import` (the file is written into `dir`).
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn import_list(config: &Path, campaign: &str, list: &str, dir: &Path) {
    let list_path = dir.join("list.csv");
    std::fs::write(&list_path, list).unwrap();
    let import = outdial()
        .arg("--config")
        .arg(config)
        .args(["import", "--campaign", campaign, "--file"])
        .arg(&list_path)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
}

/// `[[agent]]` tables of `count` simulated agents (`{prefix}-1`, …) in
/// `campaign`: no phone, a 1 s wrap-up ending in SALE.
pub fn simulated_agents(prefix: &str, campaign: &str, count: u32) -> String {
    (1..=count)
        .map(|i| {
            format!(
                "[[agent]]\nid = \"{prefix}-{i}\"\nname = \"Agent {i}\"\ncampaigns = [\"{campaign}\"]\n\
                 simulated = {{ wrap_up_s = 1, disposition = \"SALE\" }}\n"
            )
        })
        .collect()
}
