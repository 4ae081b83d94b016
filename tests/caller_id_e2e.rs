//! The caller ID each customer call presents, end to end: `outdial run`
//! with a local-presence campaign dials three contacts through a SIPp
//! carrier, and each INVITE's From and P-Asserted-Identity carry the
//! campaign number of the callee's area code — or the campaign's own
//! number for an area it has none in. The carrier's call analytics refuse
//! every call as unwanted (608, RFC 8688), and the refusals are counted by
//! the caller ID they presented, for the supervisor to see which number is
//! flagged.

mod sip_support;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sip_support::{Sipp, free_port};

/// Callee → the caller ID it must see.
const EXPECTED: [(&str, &str); 3] = [
    ("+14155551001", "+14155550100"), // San Francisco: the 415 number
    ("+12125551002", "+12125550100"), // New York: the 212 number
    ("+13125551003", "+12025550100"), // Chicago: none, the campaign's own
];

#[test]
fn each_call_presents_the_campaigns_number_nearest_the_callee() {
    let dir = tempfile::tempdir().unwrap();
    let mut carrier = Sipp::uas("carrier_unwanted.xml", 3, &["-trace_msg"]);
    let list: String = std::iter::once("external_id,phone\n".to_string())
        .chain(
            EXPECTED
                .iter()
                .enumerate()
                .map(|(i, (callee, _))| format!("c{i},{callee}\n")),
        )
        .collect();
    let config_path = node(dir.path(), carrier.port, &list);
    let mut running = support::Running::start(&config_path);
    let addr = running.wait_until_listening();
    let (status, body) = support::http(
        addr,
        "POST",
        "/api/campaigns/local/start",
        Some("local-supervisor"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    carrier.assert_passed(Duration::from_secs(60));
    support::wait_until(Duration::from_secs(10), "three refusals counted", &|| {
        refusals(addr).values().sum::<u64>() == 3
    });
    let by_caller_id = refusals(addr);
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());

    let presented = presented_caller_ids(&carrier.messages());
    let expected: BTreeMap<String, String> = EXPECTED
        .iter()
        .map(|(callee, caller)| (callee.to_string(), caller.to_string()))
        .collect();
    assert_eq!(presented, expected);
    let one_each: BTreeMap<String, u64> = EXPECTED
        .iter()
        .map(|(_, caller)| (caller.to_string(), 1))
        .collect();
    assert_eq!(by_caller_id, one_each);
}

#[test]
fn a_number_refused_as_unwanted_goes_on_the_campaigns_do_not_call_list() {
    // RFC 8197's 607 Unwanted is the called party's own "do not call me":
    // each number that answers with it is put on the campaign's DNC list
    // (not the internal one), and the refusals are counted.
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("carrier_607.xml");
    let text = std::fs::read_to_string(sip_support::scenario("carrier_unwanted.xml")).unwrap();
    assert!(text.contains("SIP/2.0 608 Rejected"));
    std::fs::write(
        &scenario,
        text.replace("SIP/2.0 608 Rejected", "SIP/2.0 607 Unwanted"),
    )
    .unwrap();
    let mut carrier = Sipp::uas(scenario.to_str().unwrap(), 2, &["-trace_msg"]);
    let list = "external_id,phone\nc0,+14155551001\nc1,+12125551002\n";
    let config_path = node(dir.path(), carrier.port, list);
    let mut running = support::Running::start(&config_path);
    let addr = running.wait_until_listening();
    let (status, body) = support::http(
        addr,
        "POST",
        "/api/campaigns/local/start",
        Some("local-supervisor"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    carrier.assert_passed(Duration::from_secs(60));
    support::wait_until(Duration::from_secs(10), "two refusals counted", &|| {
        unwanted(addr, "607") == 2
    });
    let listed = |number: &str, campaign: Option<&str>| {
        let path = match campaign {
            Some(name) => format!("/api/dnc/{number}?campaign={name}"),
            None => format!("/api/dnc/{number}"),
        };
        let (status, body) = support::http(addr, "GET", &path, Some("local-supervisor"), None);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["listed"] == true
    };
    for number in ["%2B14155551001", "%2B12125551002"] {
        assert!(
            listed(number, Some("local")),
            "{number} on the campaign's list"
        );
        assert!(!listed(number, None), "{number} not on the internal list");
    }
    running.signal("TERM");
    assert!(running.child.wait().unwrap().success());
    let invites = carrier.messages().matches("INVITE sip:").count();
    assert_eq!(invites, 2, "one dial per number");
}

/// `outdial_calls_refused_as_unwanted_total` of campaign `local` with
/// `code`, over every caller ID.
fn unwanted(addr: std::net::SocketAddr, code: &str) -> u64 {
    let (_, metrics) = support::http(addr, "GET", "/metrics", None, None);
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("outdial_calls_refused_as_unwanted_total{"))
        .filter(|line| {
            line.contains("campaign=\"local\"") && line.contains(&format!("sip_code=\"{code}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|count| count as u64)
        .sum()
}

/// `outdial_calls_refused_as_unwanted_total` of campaign `local` with
/// code 608, by caller ID.
fn refusals(addr: std::net::SocketAddr) -> BTreeMap<String, u64> {
    let (_, metrics) = support::http(addr, "GET", "/metrics", None, None);
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("outdial_calls_refused_as_unwanted_total{"))
        .filter(|line| line.contains("campaign=\"local\"") && line.contains("sip_code=\"608\""))
        .filter_map(|line| {
            let caller_id = line.split("caller_id=\"").nth(1)?.split('"').next()?;
            let count = line.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((caller_id.to_string(), count as u64))
        })
        .collect()
}

/// Each INVITE's callee (Request-URI user) → its From user, checked equal
/// to its P-Asserted-Identity user.
fn presented_caller_ids(log: &str) -> BTreeMap<String, String> {
    let user = |uri: &str| -> String {
        let after = uri.split("sip:").nth(1).unwrap_or_default();
        after.split('@').next().unwrap_or_default().to_string()
    };
    let mut presented = BTreeMap::new();
    for message in log.split("INVITE sip:").skip(1) {
        let callee = message.split('@').next().unwrap_or_default().to_string();
        let header = |name: &str| {
            message
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(user)
                .unwrap_or_default()
        };
        let (from, asserted) = (header("From: "), header("P-Asserted-Identity: "));
        assert_eq!(from, asserted, "{message}");
        presented.insert(callee, from);
    }
    presented
}

/// A node with a progressive campaign `local` (local presence, its own
/// number in 202 and numbers in 415 and 212), one simulated agent, `list`
/// (CSV) imported; returns its configuration file.
fn node(dir: &Path, carrier_port: u16, list: &str) -> std::path::PathBuf {
    let rtp_base = 28000 + (free_port() % 1000) * 16;
    let config = format!(
        r#"
[sip]
listen = "127.0.0.1:0"
transports = ["udp"]
t1_ms = 100
[rtp]
bind = "127.0.0.1"
port_min = {rtp_base}
port_max = {rtp_max}
[trunk]
uri = "sip:127.0.0.1:{carrier_port}"
caller_id = "+15551230000"
max_concurrent_calls = 4
max_calls_per_second = 10
options_interval_s = 0
[api]
listen = "127.0.0.1:0"
[[api.token]]
token = "local-supervisor"
role = "supervisor"
[store]
url = "sqlite://{db}/outdial.db"
[[campaign]]
name = "local"
mode = "progressive"
lines_per_agent = 1.0
max_attempts = 1
ring_timeout_s = 15
call_hours = "00:00-23:59"
call_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
default_region = "US"
caller_id = "+12025550100"
caller_ids = ["+14155550100", "+12125550100"]
local_presence = true
{agents}"#,
        rtp_max = rtp_base + 15,
        db = dir.display(),
        agents = support::simulated_agents("agent", "local", 1),
    );
    let config_path = dir.join("outdial.toml");
    std::fs::write(&config_path, config).unwrap();
    support::import_list(&config_path, "local", list, dir);
    config_path
}
