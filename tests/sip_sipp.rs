//! `outdial call` against SIPp UASes (tests/sipp/*.xml): each scenario must
//! pass on SIPp's side (exit 0: every message it expected arrived) and the
//! call's JSON must show the outcome.

mod sip_support;

use std::time::Duration;

use sip_support::{Sipp, json_lines, outdial_call, write_config};

const LIMIT: Duration = Duration::from_secs(30);

/// One call to a number through the trunk (SIPp); returns its JSON.
fn call(scenario: &str, hold: &str) -> (serde_json::Value, Sipp) {
    call_within(scenario, hold, LIMIT)
}

/// [`call`] for a call that lasts longer than [`LIMIT`] allows.
fn call_within(scenario: &str, hold: &str, limit: Duration) -> (serde_json::Value, Sipp) {
    let mut sipp = Sipp::uas(scenario, 1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sipp.port);
    let args = [
        "+15551234567",
        "--json",
        "--hold",
        hold,
        "--ring-timeout",
        "1",
    ];
    let output = outdial_call(&config, &args, limit);
    let mut lines = json_lines(&output);
    assert_eq!(lines.len(), 1, "one JSON object per call");
    sipp.assert_passed(limit);
    (lines.remove(0), sipp)
}

/// RFC 4028 against a trunk that refuses UPDATE (405): the session is
/// refreshed by re-INVITE 45 s in (half of Session-Expires 90), and the call
/// lasts its 47 s — without the refresh the trunk would end it at 90 s.
#[test]
fn a_trunk_that_refuses_update_has_the_session_refreshed_by_reinvite() {
    let (call, _) = call_within("uas_session_refresh.xml", "47", Duration::from_secs(80));
    assert_eq!(call["outcome"], "answered");
    assert!(call["duration_ms"].as_f64().unwrap() >= 47_000.0, "{call}");
}

/// RFC 4028 §10 against a trunk that refreshes the session itself
/// (refresher=uas, 90 s) once, 20 s in, and then stops: we BYE the session
/// 60 s after that refresh (a third of the interval before it expires),
/// not at the call's 150 s hold — a far end that stopped refreshing is
/// gone, and an agent would be left on dead air until it times out.
#[test]
fn a_session_the_trunk_stops_refreshing_is_ended_before_it_expires() {
    let (call, _) = call_within("uas_session_expiry.xml", "150", Duration::from_secs(130));
    assert_eq!(call["outcome"], "answered");
    let duration = call["duration_ms"].as_f64().unwrap();
    assert!((75_000.0..100_000.0).contains(&duration), "{call}");
    assert!(
        call["reason"].as_str().unwrap().contains("session expired"),
        "{call}"
    );
}

/// `outdial call` through a trunk that wants us registered (`[trunk]
/// register`): it registers first (the call goes out only after the
/// registrar's 200), places the call, and removes the binding at the end.
#[test]
fn a_test_call_through_a_registration_trunk_registers_first() {
    let mut sipp = Sipp::uas("uas_registered_trunk.xml", 2, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = sip_support::config_text(dir.path(), sipp.port).replace(
        "options_interval_s = 30",
        "options_interval_s = 0\nregister = true\nregister_expires_s = 60",
    );
    let path = dir.path().join("outdial.toml");
    std::fs::write(&path, config).unwrap();
    let output = outdial_call(&path, &["+15551234567", "--hold", "0.3"], LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stderr.contains("registered with the trunk"), "{stderr}");
    assert!(stdout.contains("outcome: answered"), "{stdout}\n{stderr}");
    assert!(output.status.success(), "{stderr}");
    sipp.assert_passed(LIMIT);
}

/// A trunk whose Min-SE is above the session timer we ask for (RFC 4028):
/// its 422 is followed once with its Min-SE, and the call is answered —
/// without this, every call to such a trunk would fail.
#[test]
fn a_trunk_with_a_larger_min_se_gets_the_invite_again_with_it() {
    let mut sipp = Sipp::uas("uas_session_422.xml", 1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), sipp.port);
    let output = outdial_call(&path, &["+15551234567", "--json", "--hold", "0.3"], LIMIT);
    let call = json_lines(&output).remove(0);
    assert_eq!(call["outcome"], "answered", "{call}");
    sipp.assert_passed(LIMIT);
}

/// A trunk that answers with a redirect (RFC 3261 §8.1.3.4), as
/// least-cost-routing and number-portability servers do: the call goes to
/// the Contact it can reach (the host name is skipped: it would need DNS),
/// with that Contact as Request-URI and the To unchanged, and is answered
/// there. Without redirects followed it would end as a failed 302.
#[test]
fn a_trunks_redirect_is_followed_to_the_gateway_it_names() {
    let mut gateway = Sipp::uas("uas_redirect_target.xml", 1, &[]);
    let gateway_port = gateway.port.to_string();
    let mut redirect = Sipp::uas(
        "uas_redirect.xml",
        1,
        &["-key", "gateway_port", &gateway_port],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), redirect.port);
    let output = outdial_call(&path, &["+15551234567", "--json", "--hold", "0.3"], LIMIT);
    let call = json_lines(&output).remove(0);
    assert_eq!(call["outcome"], "answered", "{call}");
    assert_eq!(call["sip_code"], 200, "{call}");
    redirect.assert_passed(LIMIT);
    gateway.assert_passed(LIMIT);
}

#[test]
fn answered_call_reports_times_and_hangs_up_after_hold() {
    let (call, _) = call("uas_answer.xml", "0.3");
    assert_eq!(call["outcome"], "answered");
    assert_eq!(call["sip_code"], 200);
    assert_eq!(
        call["uri"],
        format!(
            "sip:+15551234567@127.0.0.1:{}",
            call["uri"].as_str().unwrap().rsplit(':').next().unwrap()
        )
    );
    let pdd = call["pdd_ms"].as_f64().unwrap();
    let answer = call["answer_ms"].as_f64().unwrap();
    assert!(pdd <= answer, "{call}");
    assert!(call["duration_ms"].as_f64().unwrap() >= 300.0, "{call}");
    let codes: Vec<_> = call["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [100, 180, 200]);
}

#[test]
fn busy_is_reported_and_acked() {
    let (call, _) = call("uas_busy.xml", "0.3");
    assert_eq!(call["outcome"], "busy");
    assert_eq!(call["sip_code"], 486);
    assert!(call["answer_ms"].is_null());
}

#[test]
fn ring_forever_is_cancelled_at_the_ring_timeout_and_the_487_acked() {
    let (call, _) = call("uas_ring_forever.xml", "0.3");
    assert_eq!(call["outcome"], "no_answer");
    assert_eq!(call["sip_code"], 487);
    assert!(call["pdd_ms"].as_f64().is_some());
}

#[test]
fn proxy_challenge_407_is_answered_and_the_call_completes() {
    let (call, _) = call("uas_auth.xml", "0.3");
    assert_eq!(call["outcome"], "answered", "{call}");
}

#[test]
fn www_challenge_401_digest_verified_by_sipp() {
    let (call, _) = call("uas_auth_401.xml", "0.3");
    assert_eq!(call["outcome"], "answered", "{call}");
}

#[test]
fn wrong_trunk_password_is_rejected_by_the_verifying_uas() {
    let mut sipp = Sipp::uas("uas_auth_401.xml", 1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sipp.port);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("password = \"secret\"", "password = \"wrong\"");
    std::fs::write(&config, text).unwrap();
    let output = outdial_call(&config, &["+15551234567", "--json"], LIMIT);
    let call = json_lines(&output).remove(0);
    assert_eq!(call["outcome"], "rejected");
    assert_eq!(call["sip_code"], 403);
    sipp.assert_passed(LIMIT);
}

#[test]
fn reliable_183_is_pracked_then_answered() {
    let (call, _) = call("uas_100rel.xml", "0.3");
    assert_eq!(call["outcome"], "answered", "{call}");
    assert_eq!(call["progress"][0]["code"], 183);
}

#[test]
fn retransmitted_200_is_acked_again() {
    let (call, _) = call("uas_retransmit_200.xml", "1");
    assert_eq!(call["outcome"], "answered", "{call}");
}

#[test]
fn a_sip_uri_is_dialed_as_given_and_count_rate_reports_percentiles() {
    let mut sipp = Sipp::uas("uas_answer.xml", 20, &[]);
    let dir = tempfile::tempdir().unwrap();
    // The trunk points elsewhere: the URI's host is what is dialed.
    let config = write_config(dir.path(), 9);
    let uri = format!("sip:alice@127.0.0.1:{}", sipp.port);
    let output = outdial_call(
        &config,
        &[&uri, "--count", "20", "--rate", "50", "--hold", "0.1"],
        LIMIT,
    );
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("calls: 20"), "{text}");
    assert!(text.contains("answered: 20"), "{text}");
    assert!(text.contains("answer (INVITE → 200) ms: p50"), "{text}");
    sipp.assert_passed(LIMIT);
}

#[test]
fn tcp_trunk_carries_the_whole_call() {
    let mut sipp = Sipp::uas("uas_answer.xml", 1, &["-t", "t1"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sipp.port);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("transport = \"udp\"", "transport = \"tcp\"");
    std::fs::write(&config, text).unwrap();
    let output = outdial_call(&config, &["+15551234567", "--json", "--hold", "0.2"], LIMIT);
    let call = json_lines(&output).remove(0);
    assert_eq!(call["outcome"], "answered", "{call}");
    sipp.assert_passed(LIMIT);
}

#[test]
fn congestion_with_retry_after_pauses_new_calls() {
    let mut sipp = Sipp::uas("uas_congested.xml", 2, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sipp.port);
    let output = outdial_call(
        &config,
        &["+15551234567", "--count", "2", "--rate", "100"],
        LIMIT,
    );
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("congestion: 2"), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pausing new calls for 1 s"), "{stderr}");
    // The second INVITE waited for Retry-After (a lower bound, not a speed claim).
    let seconds: f64 = text.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(seconds >= 1.0, "{text}");
    sipp.assert_passed(LIMIT);
}

#[test]
fn trunk_named_by_dns_name_is_resolved() {
    let mut sipp = Sipp::uas("uas_answer.xml", 1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), sipp.port);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("sip:127.0.0.1:{}", sipp.port),
        &format!("sip:localhost:{}", sipp.port),
    );
    std::fs::write(&config, text).unwrap();
    let output = outdial_call(&config, &["+15551234567", "--json", "--hold", "0.1"], LIMIT);
    let call = json_lines(&output).remove(0);
    assert_eq!(call["outcome"], "answered", "{call}");
    assert_eq!(
        call["uri"],
        format!("sip:+15551234567@localhost:{}", sipp.port)
    );
    sipp.assert_passed(LIMIT);
}

#[test]
fn a_carriers_hold_and_unhold_reinvites_are_answered_recvonly_then_sendrecv() {
    // The scenario checks our two 200s (direction, the o= version one
    // higher each time, one codec) and fails without them.
    let (call, _) = call("uas_reinvite_hold.xml", "1.5");
    assert_eq!(call["outcome"], "answered", "{call}");
    assert_eq!(call["sip_code"], 200, "{call}");
}
