//! The dedicated media runtime of `[media] realtime_priority` /
//! `cpu_affinity`: once installed, legs bind their sockets and run their
//! tasks there, even when opened from a thread with no runtime at all, and
//! the runtime's threads carry the configured scheduling. Its own test
//! binary because the media runtime is installed once per process.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use outdial::media::g711::Law;
use outdial::media::leg::LegSettings;
use outdial::media::rtp::{RtpPacket, write_header};
use outdial::media::tones::ZipTone;
use outdial::net::rtp::{
    MediaScheduling, PortPool, RtpLeg, bridge, build_media_runtime, use_media_runtime,
};
use outdial::sdp::{Direction, Negotiated};

fn settings(ssrc: u32) -> LegSettings {
    LegSettings {
        ssrc,
        inactivity_timeout: Duration::from_secs(30),
        keepalive: false,
        cname: "test".into(),
    }
}

fn negotiated(remote: SocketAddr) -> Negotiated {
    Negotiated {
        remote: Some(remote),
        law: Law::Ulaw,
        payload_type: 0,
        telephone_event: Some(101),
        ptime_ms: 20,
        direction: Direction::SendRecv,
    }
}

/// CPUs the calling thread may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is the empty set; pid 0 is this thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity");
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

#[test]
fn legs_opened_outside_any_runtime_relay_on_the_pinned_media_runtime() {
    // Pin to one CPU this process may use, so the affinity is visible; the
    // worker waits 250 µs before each park, as `wake_coalesce_us` asks, and
    // must still relay.
    let cpu = allowed_cpus()[0];
    let scheduling = MediaScheduling {
        realtime_priority: 0,
        cpus: vec![cpu],
        wake_coalesce_us: 250,
    };
    let media = build_media_runtime(&scheduling).expect("media runtime");
    assert!(use_media_runtime(media.handle().clone()));
    assert!(!use_media_runtime(media.handle().clone()), "installed once");

    let worker = media
        .block_on(media.spawn(async {
            (
                std::thread::current().name().map(str::to_owned),
                allowed_cpus(),
            )
        }))
        .expect("task on the media runtime");
    assert_eq!(worker, (Some("media".to_owned()), vec![cpu]));

    // This thread has no tokio runtime: a leg can only bind its sockets
    // because `open` enters the installed media runtime.
    let agent_phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let customer_phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    customer_phone
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47000, 47040);
    let agent = RtpLeg::open(&pool, settings(1)).expect("agent leg");
    agent
        .set_negotiated(negotiated(agent_phone.local_addr().unwrap()))
        .unwrap();
    let customer = RtpLeg::open(&pool, settings(2)).expect("customer leg");
    customer
        .set_negotiated(negotiated(customer_phone.local_addr().unwrap()))
        .unwrap();
    let zip = ZipTone {
        duration_ms: 20,
        ..ZipTone::default()
    };
    let _bridged = media
        .block_on(bridge(&agent, customer, zip, None))
        .expect("bridge");

    // The customer hears the agent at once: relayed by the media runtime.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut packet = [0xFFu8; 172];
    let mut buffer = [0u8; 1500];
    let mut sequence = 0u16;
    let relayed = loop {
        assert!(Instant::now() < deadline, "nothing relayed to the customer");
        write_header(
            &mut packet,
            false,
            0,
            sequence,
            u32::from(sequence) * 160,
            0xA6E7,
        );
        sequence += 1;
        agent_phone.send_to(&packet, agent.local_addr()).unwrap();
        if let Ok(len) = customer_phone.recv(&mut buffer) {
            break RtpPacket::parse(&buffer[..len]).map(|p| p.payload.len());
        }
    };
    assert_eq!(relayed.ok(), Some(160));
    media.block_on(agent.close()).expect("agent report");
}
