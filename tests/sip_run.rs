//! `outdial run` as a SIP peer: it answers OPTIONS, turns strangers'
//! INVITEs away with 403, keeps serving after garbage on UDP and TCP, and
//! registers agents with digest auth (SIPp UAC).

mod sip_support;
mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use sip_support::{Sipp, write_config};
use support::Running;

fn start() -> (Running, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 9);
    let mut running = Running::start(&config);
    let line = running.wait_for_message("outdial listening", Duration::from_secs(20));
    let sip: SocketAddr = line["sip_udp"].as_str().unwrap().parse().unwrap();
    (running, sip, dir)
}

fn request(method: &str, branch: &str, to_tag: Option<&str>) -> String {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:outdial@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{branch};rport\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:outdial@127.0.0.1>{tag}\r\nCall-ID: {branch}@probe\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Sends `text` and returns the first final (≥ 200) response's status line.
fn final_response(socket: &UdpSocket, to: SocketAddr, text: &str) -> String {
    socket.send_to(text.as_bytes(), to).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        let (n, _) = socket
            .recv_from(&mut buffer)
            .expect("a response within the timeout");
        let text = String::from_utf8_lossy(&buffer[..n]).to_string();
        let status = text.lines().next().unwrap_or_default().to_string();
        if !status.starts_with("SIP/2.0 1") {
            return status;
        }
    }
}

#[test]
fn answers_options_refuses_strangers_and_survives_garbage() {
    let (_running, sip, _dir) = start();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        final_response(&socket, sip, &request("OPTIONS", "o1", None)),
        "SIP/2.0 200 OK"
    );
    assert_eq!(
        final_response(&socket, sip, &request("INVITE", "i1", None)),
        "SIP/2.0 403 Forbidden"
    );

    // Garbage: random bytes, a truncated message, a lying Content-Length, on
    // UDP and on TCP.
    for junk in [
        &b"\x00\x01\x02\xff\xfe garbage"[..],
        b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP",
        b"SIP/2.0 200 OK\r\nContent-Length: 9999\r\n\r\nshort",
        b"OPTIONS sip:x SIP/2.0\r\nl: nan\r\n\r\n",
    ] {
        socket.send_to(junk, sip).unwrap();
    }
    let mut tcp = TcpStream::connect(sip).unwrap();
    tcp.write_all(b"NOT SIP AT ALL\r\nno-length: here\r\n\r\n")
        .unwrap();
    drop(tcp);

    // Still serving.
    assert_eq!(
        final_response(&socket, sip, &request("OPTIONS", "o2", None)),
        "SIP/2.0 200 OK"
    );
    // An in-dialog request for no dialog.
    assert_eq!(
        final_response(&socket, sip, &request("BYE", "b1", Some("gone"))),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
}

#[test]
fn agent_registers_with_digest_and_a_wrong_password_is_refused() {
    let (mut running, sip, _dir) = start();
    let remote = sip.to_string();
    let mut good = Sipp::uac(
        "uac_register.xml",
        &remote,
        &["-s", "1001", "-au", "1001", "-ap", "pw1001"],
    );
    good.assert_passed(Duration::from_secs(20));
    let registered = running.wait_for_message("agent phone registered", Duration::from_secs(5));
    assert_eq!(registered["agent"], "1001", "{registered}");

    let mut bad = Sipp::uac(
        "uac_register.xml",
        &remote,
        &["-s", "1001", "-au", "1001", "-ap", "nope"],
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bad.assert_passed(Duration::from_secs(20))
    }));
    assert!(result.is_err(), "a wrong password must not register");
}

/// An agent's phone behind a NAT: its REGISTER and its answers name an
/// address nobody can reach. The dialer must INVITE the phone where the
/// REGISTER came from, and send the ACK and the BYE there too. SIPp plays
/// the phone twice on one port: a UAC registers from it, then a UAS there
/// answers the reservation call (as the NAT's pinhole would deliver it).
#[test]
fn a_phone_behind_a_nat_is_called_where_it_registered_from() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 9);
    let mut running = Running::start(&config);
    let line = running.wait_for_message("outdial listening", Duration::from_secs(20));
    let sip: SocketAddr = line["sip_udp"].as_str().unwrap().parse().unwrap();
    let http_addr: SocketAddr = line["http"].as_str().unwrap().parse().unwrap();
    let phone_port = sip_support::free_port();
    let mut register = Sipp::uac_at(
        phone_port,
        "uac_register_natted.xml",
        &sip.to_string(),
        &["-s", "1001", "-au", "1001", "-ap", "pw1001"],
    );
    register.assert_passed(Duration::from_secs(20));
    let registered = running.wait_for_message("agent phone registered", Duration::from_secs(5));
    assert_eq!(
        registered["contact"], "sip:1001@192.0.2.77:5999",
        "{registered}"
    );
    assert_eq!(
        registered["received"],
        format!("127.0.0.1:{phone_port}"),
        "{registered}"
    );
    let media_port = sip_support::free_port().to_string();
    let mut phone = Sipp::uas_at(
        phone_port,
        "uas_natted_phone.xml",
        1,
        &["-rtp_echo", "-mp", &media_port],
    );
    let agent = |method: &str, action: &str| {
        support::http(
            http_addr,
            method,
            &format!("/api/agents/1001{action}"),
            Some("demo-agent-1001-token"),
            None,
        )
    };
    let (status, body) = agent("POST", "/login");
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = agent("GET", "");
        if body.contains("\"phone_connected\":true") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reservation call never came up: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Logout hangs the phone up: the BYE must reach it too.
    let (status, body) = agent("POST", "/logout");
    assert_eq!(status, 200, "{body}");
    phone.assert_passed(Duration::from_secs(15));
}

#[test]
fn options_keepalive_marks_the_trunk_up() {
    let mut trunk = Sipp::uas("uas_options.xml", 1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), trunk.port);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("options_interval_s = 30", "options_interval_s = 1");
    std::fs::write(&config, text).unwrap();
    let mut running = Running::start(&config);
    let line = running.wait_for_message("trunk state changed", Duration::from_secs(10));
    assert_eq!(line["state"], "Up", "{line}");
    trunk.assert_passed(Duration::from_secs(10));
}

/// `[trunk] register`: against a SIPp registrar that challenges every
/// REGISTER and checks the digest, the dialer registers at start, renews
/// the 20-s binding it was granted before it lapses (challenged again),
/// and removes it with `Expires: 0` when stopped.
#[test]
fn registers_with_the_trunk_renews_and_unregisters_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut registrar = Sipp::uas("registrar.xml", 1, &["-timeout", "60s"]);
    let config = sip_support::config_text(dir.path(), registrar.port).replace(
        "options_interval_s = 30",
        "options_interval_s = 0\nregister = true\nregister_expires_s = 60",
    );
    let path = dir.path().join("outdial.toml");
    std::fs::write(&path, config).unwrap();
    let mut running = Running::start(&path);
    running.wait_for_message("outdial listening", Duration::from_secs(20));
    let first = running.wait_for_message("registered with the trunk", Duration::from_secs(10));
    assert_eq!(first["expires_s"], 20, "{first}");
    running.wait_for_message("registered with the trunk", Duration::from_secs(25));
    running.signal("TERM");
    running.wait_for_message("unregistered from the trunk", Duration::from_secs(10));
    running.wait_for_message("outdial stopped", Duration::from_secs(10));
    registrar.assert_passed(Duration::from_secs(10));
}
