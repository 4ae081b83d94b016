//! Media load tool: N bridged calls (agent leg + customer leg each, relayed
//! by the bridge) plus M legs in CPA (decoded 20 ms frames to a consumer),
//! driven by a small phone simulator in the same process.
//!
//! The engine runs on its own tokio runtime (threads named `engine`), the
//! simulator on plain threads (`sim-*`), so CPU is measured per side from
//! /proc/self/task. Every packet carries its flow and send time, so the
//! simulator measures loss and one-way delay through the engine.
//!
//!     scripts/load/media [--calls 500] [--cpa 500] [--seconds 30]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use outdial::media::g711::Law;
use outdial::media::leg::LegSettings;
use outdial::media::rtp::{RtpPacket, write_header};
use outdial::media::tones::ZipTone;
use outdial::net::rtp::{PortPool, RtpLeg, bridge};
use outdial::sdp::{Direction, Negotiated};

const SIM_SOCKETS: usize = 8;

struct Args {
    calls: usize,
    cpa: usize,
    seconds: u64,
    warmup: u64,
    engine_threads: usize,
}

fn args() -> Args {
    let mut args = Args {
        calls: 500,
        cpa: 500,
        seconds: 30,
        warmup: 5,
        engine_threads: 2,
    };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        match pair[0].as_str() {
            "--calls" => args.calls = value,
            "--cpa" => args.cpa = value,
            "--seconds" => args.seconds = value as u64,
            "--warmup" => args.warmup = value as u64,
            "--engine-threads" => args.engine_threads = value.max(1),
            other => panic!("unknown argument {other}; see the file's top comment"),
        }
    }
    args
}

/// One stream the simulator sends: from sim socket `via` to engine `to`.
struct Flow {
    via: usize,
    to: SocketAddr,
    ssrc: u32,
    /// Relayed flows come back on another sim socket; CPA flows do not.
    relayed: bool,
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

fn settings(ssrc: u32) -> LegSettings {
    LegSettings {
        ssrc,
        inactivity_timeout: Duration::from_secs(60),
        keepalive: false,
        cname: "load".into(),
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
fn cpu_seconds(prefix: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            if !stat[open + 1..close].starts_with(prefix) {
                continue;
            }
            let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
            let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
            total += utime + stime;
        }
    }
    total as f64 / ticks
}

/// System-wide UDP receive-buffer overflows (/proc/net/snmp), to tell
/// loss in a full socket buffer from loss in the engine.
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let (Some(names), Some(values)) = (udp.first(), udp.get(1)) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.engine_threads)
        .thread_name("engine")
        .enable_all()
        .build()
        .expect("tokio runtime");
    // A simulator socket stands for ~1/8 of all phones, so it gets the
    // largest receive buffer the kernel allows: otherwise a descheduled
    // simulator thread loses packets the engine delivered.
    let sim: Vec<Arc<UdpSocket>> = (0..SIM_SOCKETS)
        .map(|_| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
                .expect("sim socket");
            let _ = s.set_recv_buffer_size(4 << 20);
            let _ = s.set_send_buffer_size(4 << 20);
            s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
                .expect("bind sim socket");
            let s: UdpSocket = s.into();
            s.set_read_timeout(Some(Duration::from_millis(200))).ok();
            Arc::new(s)
        })
        .collect();
    let sim_addr: Vec<SocketAddr> = sim.iter().map(|s| s.local_addr().unwrap()).collect();
    let rss_before = rss_kib();

    // The engine side: legs, bridges and CPA consumers.
    let cpa_frames = Arc::new(AtomicU64::new(0));
    let (flows, legs) = runtime.block_on(async {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 30000, 40000);
        let mut flows = Vec::new();
        let mut legs = Vec::new();
        for call in 0..args.calls {
            let (agent_via, customer_via) = (call % SIM_SOCKETS, (call + 1) % SIM_SOCKETS);
            let agent = RtpLeg::open(&pool, settings(call as u32 * 2)).expect("agent leg");
            agent
                .set_negotiated(negotiated(sim_addr[agent_via]))
                .unwrap();
            let customer =
                RtpLeg::open(&pool, settings(call as u32 * 2 + 1)).expect("customer leg");
            customer
                .set_negotiated(negotiated(sim_addr[customer_via]))
                .unwrap();
            flows.push(Flow {
                via: agent_via,
                to: agent.local_addr(),
                ssrc: 0x1000_0000 + call as u32,
                relayed: true,
            });
            flows.push(Flow {
                via: customer_via,
                to: customer.local_addr(),
                ssrc: 0x2000_0000 + call as u32,
                relayed: true,
            });
            let zip = ZipTone {
                duration_ms: 20,
                ..ZipTone::default()
            };
            let bridged = bridge(&agent, customer, zip, None).await.expect("bridge");
            legs.push((agent, Some(bridged)));
        }
        for n in 0..args.cpa {
            let via = n % SIM_SOCKETS;
            let leg = RtpLeg::open(&pool, settings(0x4000_0000 + n as u32)).expect("cpa leg");
            leg.set_negotiated(negotiated(sim_addr[via])).unwrap();
            let mut frames = leg.frames_for_cpa(16).unwrap();
            let counter = cpa_frames.clone();
            tokio::spawn(async move {
                while let Some(frame) = frames.recv().await {
                    std::hint::black_box(&frame.samples);
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
            flows.push(Flow {
                via,
                to: leg.local_addr(),
                ssrc: 0x3000_0000 + n as u32,
                relayed: false,
            });
            legs.push((leg, None));
        }
        (flows, legs)
    });
    let leg_count = args.calls * 2 + args.cpa;

    // The simulator: paced senders, and one receiver per sim socket.
    let start = Instant::now();
    let running = Arc::new(AtomicBool::new(true));
    let measuring = Arc::new(AtomicBool::new(false));
    let sent_relayed = Arc::new(AtomicU64::new(0));
    let sent_cpa = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::new();
    for (i, socket) in sim.iter().enumerate() {
        let (socket, running) = (socket.clone(), running.clone());
        receivers.push(
            std::thread::Builder::new()
                .name(format!("sim-recv-{i}"))
                .spawn(move || {
                    let mut buf = [0u8; 1500];
                    let mut delays_us = Vec::new();
                    let mut received = 0u64;
                    while running.load(Ordering::Relaxed) {
                        let Ok((len, _)) = socket.recv_from(&mut buf) else {
                            continue;
                        };
                        let Ok(packet) = RtpPacket::parse(&buf[..len]) else {
                            continue;
                        };
                        let Some(stamp) = packet.payload.get(..9) else {
                            continue;
                        };
                        if stamp[0] != 1 {
                            continue;
                        }
                        let sent_ns = u64::from_le_bytes(stamp[1..9].try_into().unwrap());
                        let now_ns = start.elapsed().as_nanos() as u64;
                        delays_us.push(now_ns.saturating_sub(sent_ns) / 1000);
                        received += 1;
                    }
                    (received, delays_us)
                })
                .unwrap(),
        );
    }
    let sender = {
        let (sim, running, measuring) = (sim.clone(), running.clone(), measuring.clone());
        let (sent_relayed, sent_cpa) = (sent_relayed.clone(), sent_cpa.clone());
        std::thread::Builder::new()
            .name("sim-send".into())
            .spawn(move || {
                let mut packet = [0xFFu8; 172];
                let mut tick = 0u64;
                let mut sequence = vec![0u16; flows.len()];
                while running.load(Ordering::Relaxed) {
                    // 1 ms ticks: each flow sends on one tick in 20.
                    let slot = (tick % 20) as usize;
                    for (i, flow) in flows.iter().enumerate().skip(slot).step_by(20) {
                        let seq = sequence[i];
                        sequence[i] = seq.wrapping_add(1);
                        write_header(&mut packet, false, 0, seq, u32::from(seq) * 160, flow.ssrc);
                        let counting = measuring.load(Ordering::Relaxed);
                        // The stamp's first byte says "count me": only packets
                        // sent inside the window are counted on both sides.
                        packet[12] = u8::from(counting);
                        packet[13..21]
                            .copy_from_slice(&(start.elapsed().as_nanos() as u64).to_le_bytes());
                        if sim[flow.via].send_to(&packet, flow.to).is_ok() && counting {
                            if flow.relayed {
                                sent_relayed.fetch_add(1, Ordering::Relaxed);
                            } else {
                                sent_cpa.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    tick += 1;
                    let next = start + Duration::from_millis(tick);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            })
            .unwrap()
    };

    std::thread::sleep(Duration::from_secs(args.warmup));
    let rss_running = rss_kib();
    let cpa_before = cpa_frames.load(Ordering::Relaxed);
    let (engine_cpu0, sim_cpu0, t0) = (cpu_seconds("engine"), cpu_seconds("sim-"), Instant::now());
    let rcvbuf_errors0 = udp_rcvbuf_errors();
    measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(args.seconds));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let (engine_cpu, sim_cpu) = (
        cpu_seconds("engine") - engine_cpu0,
        cpu_seconds("sim-") - sim_cpu0,
    );
    let cpa_during = cpa_frames.load(Ordering::Relaxed) - cpa_before;
    let rcvbuf_errors = udp_rcvbuf_errors() - rcvbuf_errors0;
    // Let packets in flight arrive before stopping.
    std::thread::sleep(Duration::from_millis(300));
    running.store(false, Ordering::Relaxed);
    sender.join().unwrap();
    let mut received = 0;
    let mut delays = Vec::new();
    for r in receivers {
        let (n, d) = r.join().unwrap();
        received += n;
        delays.extend(d);
    }
    delays.sort_unstable();
    let sent = sent_relayed.load(Ordering::Relaxed);
    let sent_cpa = sent_cpa.load(Ordering::Relaxed);
    let loss = 100.0 * (sent as f64 - received as f64) / (sent as f64).max(1.0);
    let min = delays.first().copied().unwrap_or(0);
    println!(
        "legs {leg_count} ({} bridged calls, {} CPA legs), measured {elapsed:.1} s after {} s warm-up",
        args.calls, args.cpa, args.warmup
    );
    println!("relayed packets: sent {sent}, received {received}, loss {loss:.4} %");
    println!(
        "UDP receive-buffer overflows on the machine during the window (any socket): {rcvbuf_errors}"
    );
    println!(
        "CPA: {sent_cpa} packets sent, {cpa_during} frames delivered to consumers (≈ ±1 frame/leg at the window edges)"
    );
    println!(
        "one-way delay through the engine (sim send → sim receive), µs: min {min} p50 {} p99 {} p99.9 {} max {}",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        percentile(&delays, 0.999),
        delays.last().copied().unwrap_or(0)
    );
    println!(
        "added jitter (delay − min delay), µs: p50 {} p99 {}",
        percentile(&delays, 0.5) - min,
        percentile(&delays, 0.99) - min
    );
    println!(
        "CPU: engine {:.2} cores, simulator {:.2} cores",
        engine_cpu / elapsed,
        sim_cpu / elapsed
    );
    println!(
        "memory: RSS {} KiB before legs, {} KiB running → {:.1} KiB per leg (user space; kernel socket buffers not included)",
        rss_before,
        rss_running,
        (rss_running.saturating_sub(rss_before)) as f64 / leg_count.max(1) as f64
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine load average (1/5/15 min) at the end: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Engine-side view: what the legs themselves counted.
    let (mut lost, mut cpa_dropped, mut relay_dropped) = (0i64, 0u64, 0u64);
    runtime.block_on(async {
        for (leg, _bridged) in legs {
            if let Ok(report) = leg.close().await {
                lost += report.summary.lost;
                cpa_dropped += report.cpa_frames_dropped;
                relay_dropped += report.relay_dropped;
            }
        }
    });
    println!(
        "engine counters (whole run): RTP lost on agent + CPA legs {lost}, CPA frames dropped (consumer behind) {cpa_dropped}, relay drops {relay_dropped}"
    );
}
