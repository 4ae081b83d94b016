//! Media load tool: N bridged calls (agent leg + customer leg each, relayed
//! by the bridge) plus M legs in CPA (decoded 20 ms frames to a consumer),
//! driven by a small phone simulator in the same process.
//!
//! The engine runs on its own tokio runtime (threads named `engine`), the
//! simulator on plain threads (`sim-*`), so CPU is measured per side from
//! /proc/self/task. Every packet carries its send time (CLOCK_REALTIME, read
//! just before the `sendto`), so the simulator measures loss and one-way
//! delay through the engine twice:
//!
//! - **kernel**: send time → the kernel's receive timestamp on the
//!   simulator's socket (SO_TIMESTAMPNS). On loopback the sender's `sendto`
//!   normally queues the packet on the engine's socket before it returns
//!   (the receive softirq runs then, unless deferred to ksoftirqd), so this is
//!   the engine's residence (its socket queue, its wakeup, the relay, its
//!   `sendto`) plus the sender's own `sendto`, and excludes the simulator's
//!   receive-thread wakeup. This is the figure for "what the relay adds".
//! - **user space**: send time → the simulator's receive thread holding the
//!   packet; adds that thread's scheduling delay.
//!
//! ```text
//! scripts/load/media [--calls 500] [--cpa 500] [--seconds 20] [--tick-us 1000]
//!     [--engine-threads 2] [--event-interval N] [--global-queue-interval N]
//!     [--receive-poll-us 0] [--receive-nice 0]
//!     [--engine-rt-priority 0] [--engine-cpus 0,1] [--sim-cpus 0,1]
//!     [--sender-rt-priority 0] [--engine-coalesce-us 0]
//! ```
//!
//! `--engine-rt-priority`, `--engine-cpus` and `--engine-coalesce-us`
//! schedule the engine's threads with the product's own code
//! ([`MediaScheduling::install_on`], what `[media] realtime_priority` /
//! `cpu_affinity` / `wake_coalesce_us` do in `outdial run`); the report reads
//! the policy the threads really got back from /proc.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use outdial::media::g711::Law;
use outdial::media::leg::LegSettings;
use outdial::media::rtp::{RtpPacket, write_header};
use outdial::media::tones::ZipTone;
use outdial::net::rtp::{MediaScheduling, PortPool, RtpLeg, bridge};
use outdial::sdp::{Direction, Negotiated};

const SIM_SOCKETS: usize = 8;
/// Datagrams taken per `recvmmsg` on a simulator socket.
const RECEIVE_BATCH: usize = 32;

struct Args {
    calls: usize,
    cpa: usize,
    seconds: u64,
    warmup: u64,
    engine_threads: usize,
    /// The sender's pacing tick: each flow sends once per 20 ms, spread
    /// over the ticks of those 20 ms (1 ms: 1/20 of the flows per tick).
    tick_us: u64,
    event_interval: Option<u32>,
    global_queue_interval: Option<u32>,
    /// 0: the simulator's receive threads block for each packet. N: they
    /// take what is queued every N µs (fewer wakeups competing with the
    /// engine for the cores; the user-space figure then includes up to N µs).
    receive_poll_us: u64,
    /// Nice value of the simulator's receive threads. The phones they stand
    /// for are other machines in production; at a positive nice value they
    /// yield the cores to the engine (at default priority) and their own
    /// wakeup shows only in the user-space figure.
    receive_nice: i32,
    /// The engine threads' scheduling: `SCHED_FIFO` priority (0: normal)
    /// and CPUs, as `[media] realtime_priority` / `cpu_affinity`.
    engine: MediaScheduling,
    /// CPUs the simulator's threads are pinned to; empty: any.
    sim_cpus: Vec<usize>,
    /// `SCHED_FIFO` priority of the simulator's sender (0: normal). The
    /// phones it stands for send on their own clocks: on a busy box a
    /// normal-priority sender falls behind its pace and the engine is then
    /// measured at a fraction of the offered load. Below the engine's
    /// priority it never delays the engine.
    sender_rt_priority: u32,
}

/// "0,1" → [0, 1]; anything unparsable stops the tool.
fn cpu_list(text: Option<&String>) -> Vec<usize> {
    let text = text.map_or("", String::as_str);
    text.split(',')
        .filter(|cpu| !cpu.is_empty())
        .map(|cpu| {
            cpu.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad CPU list {text:?}; give e.g. 0,1"))
        })
        .collect()
}

fn args() -> Args {
    let mut args = Args {
        calls: 500,
        cpa: 500,
        seconds: 20,
        warmup: 5,
        engine_threads: 2,
        tick_us: 1000,
        event_interval: None,
        global_queue_interval: None,
        receive_poll_us: 0,
        receive_nice: 0,
        engine: MediaScheduling::default(),
        sim_cpus: Vec::new(),
        sender_rt_priority: 0,
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
            "--tick-us" => args.tick_us = (value as u64).clamp(50, 20_000),
            "--event-interval" => args.event_interval = Some(value.max(1) as u32),
            "--global-queue-interval" => args.global_queue_interval = Some(value.max(1) as u32),
            "--receive-poll-us" => args.receive_poll_us = value as u64,
            "--receive-nice" => {
                args.receive_nice = pair.get(1).and_then(|v| v.parse().ok()).unwrap_or(0)
            }
            "--engine-rt-priority" => args.engine.realtime_priority = value as u32,
            "--engine-cpus" => args.engine.cpus = cpu_list(pair.get(1)),
            "--engine-coalesce-us" => args.engine.wake_coalesce_us = value as u32,
            "--sim-cpus" => args.sim_cpus = cpu_list(pair.get(1)),
            "--sender-rt-priority" => args.sender_rt_priority = value as u32,
            other => panic!("unknown argument {other}; see the file's top comment"),
        }
    }
    args
}

/// Nanoseconds on CLOCK_REALTIME, the clock of the kernel's SO_TIMESTAMPNS.
fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Delays in ns up to 60 s, 3 significant digits. Its counters are written
/// once here so their pages are resident before the memory baseline.
fn delay_histogram() -> Histogram<u64> {
    let mut histogram = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
    histogram.reset();
    histogram
}

/// Asks the kernel to stamp every datagram with its arrival time.
fn enable_receive_timestamps(socket: &UdpSocket) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and an int-sized option value.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the calling thread's nice value (Linux: per thread).
fn set_thread_nice(nice: i32) {
    // SAFETY: plain syscalls on the calling thread's own id.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    if rc != 0 {
        eprintln!(
            "cannot set nice {nice} on a receive thread: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Pins a simulator thread, with the same library call as the engine's.
fn pin_sim_thread(cpus: &[usize]) {
    if cpus.is_empty() {
        return;
    }
    let pinning = MediaScheduling {
        realtime_priority: 0,
        cpus: cpus.to_vec(),
        wake_coalesce_us: 0,
    };
    if let Err(error) = pinning.apply_to_current_thread() {
        eprintln!("simulator thread: {error}");
    }
}

/// The scheduling the threads named `prefix*` really have, from /proc:
/// distinct "policy priority, CPUs" descriptions with their thread counts.
fn thread_scheduling(prefix: &str) -> String {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let Some(threads) = named_threads(prefix) else {
        return "unknown".into();
    };
    for (task, fields) in threads {
        let Ok(status) = std::fs::read_to_string(task.join("status")) else {
            continue;
        };
        // Fields 40 (rt_priority) and 41 (policy) of proc_pid_stat(5).
        let priority = fields.get(37).map_or("?", String::as_str);
        let policy = match fields.get(38).map(String::as_str) {
            Some("0") => "SCHED_OTHER",
            Some("1") => "SCHED_FIFO",
            Some("2") => "SCHED_RR",
            Some("3") => "SCHED_BATCH",
            Some("5") => "SCHED_IDLE",
            _ => "policy ?",
        };
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map_or("?", str::trim);
        let description = format!("{policy} {priority}, CPUs {cpus}");
        match seen.iter_mut().find(|(d, _)| *d == description) {
            Some((_, count)) => *count += 1,
            None => seen.push((description, 1)),
        }
    }
    seen.iter()
        .map(|(description, count)| format!("{count} × {description}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Receive buffers for one `recvmmsg`: payloads and their control messages.
struct BatchBuffers {
    payload: Vec<[u8; 256]>,
    /// u64 for the alignment `cmsghdr` needs.
    control: Vec<[u64; 8]>,
}

impl BatchBuffers {
    fn new() -> BatchBuffers {
        BatchBuffers {
            payload: vec![[0u8; 256]; RECEIVE_BATCH],
            control: vec![[0u64; 8]; RECEIVE_BATCH],
        }
    }

    /// Takes what is queued; with `wait`, blocks for the first datagram (up
    /// to the socket's read timeout) if none is. Returns (length, kernel arrival time in ns)
    /// per datagram, in `out`.
    fn receive(&mut self, socket: &UdpSocket, wait: bool, out: &mut Vec<(usize, Option<u64>)>) {
        out.clear();
        // SAFETY: all-zero iovec/mmsghdr are valid "empty" values.
        let mut iovs: [libc::iovec; RECEIVE_BATCH] = unsafe { std::mem::zeroed() };
        let mut headers: [libc::mmsghdr; RECEIVE_BATCH] = unsafe { std::mem::zeroed() };
        for (i, (payload, control)) in self
            .payload
            .iter_mut()
            .zip(self.control.iter_mut())
            .enumerate()
        {
            iovs[i] = libc::iovec {
                iov_base: payload.as_mut_ptr().cast(),
                iov_len: payload.len(),
            };
            let header = &mut headers[i].msg_hdr;
            header.msg_iov = &mut iovs[i];
            header.msg_iovlen = 1;
            header.msg_control = control.as_mut_ptr().cast();
            header.msg_controllen = std::mem::size_of_val(control) as _;
        }
        // SAFETY: every header points at live buffers of the stated sizes.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                RECEIVE_BATCH as libc::c_uint,
                if wait {
                    libc::MSG_WAITFORONE
                } else {
                    libc::MSG_DONTWAIT
                },
                std::ptr::null_mut(),
            )
        };
        if received <= 0 {
            return;
        }
        for header in &headers[..received as usize] {
            let mut arrival = None;
            // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG
            // macros stay inside them.
            unsafe {
                let mut cmsg = libc::CMSG_FIRSTHDR(&header.msg_hdr);
                while !cmsg.is_null() {
                    if (*cmsg).cmsg_level == libc::SOL_SOCKET
                        && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                    {
                        let stamp: libc::timespec =
                            std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                        arrival = Some(stamp.tv_sec as u64 * 1_000_000_000 + stamp.tv_nsec as u64);
                    }
                    cmsg = libc::CMSG_NXTHDR(&header.msg_hdr, cmsg);
                }
            }
            out.push((header.msg_len as usize, arrival));
        }
    }
}

/// What one simulator receive thread measured.
struct ReceiverTally {
    received: u64,
    /// Send time → kernel arrival at the simulator socket.
    kernel: Histogram<u64>,
    /// Send time → the receive thread holding the packet.
    user: Histogram<u64>,
    without_kernel_stamp: u64,
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

/// This process's threads whose name starts with `prefix`: each one's
/// /proc task directory and its stat fields from field 3 on (after the
/// name, which may hold spaces). `None` when /proc cannot be read.
fn named_threads(prefix: &str) -> Option<Vec<(std::path::PathBuf, Vec<String>)>> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut threads = Vec::new();
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
        let fields = stat[close + 2..]
            .split_whitespace()
            .map(String::from)
            .collect();
        threads.push((task.path(), fields));
    }
    Some(threads)
}

/// Context switches of this process's threads whose name starts with
/// `prefix`: (voluntary — mostly wakeups after blocking —, involuntary —
/// preempted by another thread).
fn context_switches(prefix: &str) -> (u64, u64) {
    let (mut voluntary, mut involuntary) = (0, 0);
    for (task, _) in named_threads(prefix).unwrap_or_default() {
        let Ok(status) = std::fs::read_to_string(task.join("status")) else {
            continue;
        };
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        voluntary += field("voluntary_ctxt_switches:");
        involuntary += field("nonvoluntary_ctxt_switches:");
    }
    (voluntary, involuntary)
}

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
fn cpu_seconds(prefix: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    for (_, fields) in named_threads(prefix).unwrap_or_default() {
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        total += utime + stime;
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

/// "1-min 5-min 15-min" from /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let args = args();
    // The library logs a missing privilege for real-time scheduling once.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    let load_before = load_average();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(args.engine_threads)
        .thread_name("engine")
        .enable_all();
    args.engine.install_on(&mut builder);
    if let Some(n) = args.event_interval {
        builder.event_interval(n);
    }
    if let Some(n) = args.global_queue_interval {
        builder.global_queue_interval(n);
    }
    let runtime = builder.build().expect("tokio runtime");
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
            enable_receive_timestamps(&s).expect("SO_TIMESTAMPNS on a simulator socket");
            Arc::new(s)
        })
        .collect();
    let sim_addr: Vec<SocketAddr> = sim.iter().map(|s| s.local_addr().unwrap()).collect();
    // The simulator's own measuring state exists (pages touched) before the
    // baseline, so "memory per leg" counts the legs only.
    let mut receiver_state: Vec<(BatchBuffers, ReceiverTally)> = (0..SIM_SOCKETS)
        .map(|_| {
            let tally = ReceiverTally {
                received: 0,
                kernel: delay_histogram(),
                user: delay_histogram(),
                without_kernel_stamp: 0,
            };
            (BatchBuffers::new(), tally)
        })
        .collect();
    let sendto_ns = delay_histogram();
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
    // Counted packets received so far, to know when the queues are drained.
    let received_so_far = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::new();
    for (i, socket) in sim.iter().enumerate() {
        let (mut buffers, mut tally) = receiver_state.remove(0);
        let (socket, running) = (socket.clone(), running.clone());
        let received_so_far = received_so_far.clone();
        let poll = Duration::from_micros(args.receive_poll_us);
        let receive_nice = args.receive_nice;
        let sim_cpus = args.sim_cpus.clone();
        receivers.push(
            std::thread::Builder::new()
                .name(format!("sim-recv-{i}"))
                .spawn(move || {
                    pin_sim_thread(&sim_cpus);
                    if receive_nice != 0 {
                        set_thread_nice(receive_nice);
                    }
                    let mut batch = Vec::with_capacity(RECEIVE_BATCH);
                    while running.load(Ordering::Relaxed) {
                        buffers.receive(&socket, poll.is_zero(), &mut batch);
                        if !poll.is_zero() && batch.len() < RECEIVE_BATCH {
                            std::thread::sleep(poll);
                        }
                        let now_ns = realtime_ns();
                        for (i, &(len, arrival)) in batch.iter().enumerate() {
                            let Ok(packet) = RtpPacket::parse(&buffers.payload[i][..len]) else {
                                continue;
                            };
                            let Some(stamp) = packet.payload.get(..9) else {
                                continue;
                            };
                            if stamp[0] != 1 {
                                continue;
                            }
                            let sent_ns = u64::from_le_bytes(stamp[1..9].try_into().unwrap());
                            tally.received += 1;
                            received_so_far.fetch_add(1, Ordering::Relaxed);
                            let _ = tally.user.record(now_ns.saturating_sub(sent_ns).max(1));
                            match arrival {
                                Some(at) => {
                                    let _ = tally.kernel.record(at.saturating_sub(sent_ns).max(1));
                                }
                                None => tally.without_kernel_stamp += 1,
                            }
                        }
                    }
                    tally
                })
                .unwrap(),
        );
    }
    let sender = {
        let (sim, running, measuring) = (sim.clone(), running.clone(), measuring.clone());
        let (sent_relayed, sent_cpa) = (sent_relayed.clone(), sent_cpa.clone());
        let tick_us = args.tick_us;
        let sender_scheduling = MediaScheduling {
            realtime_priority: args.sender_rt_priority,
            cpus: args.sim_cpus.clone(),
            wake_coalesce_us: 0,
        };
        std::thread::Builder::new()
            .name("sim-send".into())
            .spawn(move || {
                if let Err(error) = sender_scheduling.apply_to_current_thread() {
                    eprintln!("simulator sender: {error}");
                }
                let mut packet = [0xFFu8; 172];
                let mut tick = 0u64;
                let mut sequence = vec![0u16; flows.len()];
                let mut sendto_ns = sendto_ns;
                let ticks_per_packet = (20_000 / tick_us).max(1) as usize;
                while running.load(Ordering::Relaxed) {
                    // Each flow sends on one tick of the 20 ms packet interval.
                    let slot = (tick % ticks_per_packet as u64) as usize;
                    for (i, flow) in flows
                        .iter()
                        .enumerate()
                        .skip(slot)
                        .step_by(ticks_per_packet)
                    {
                        let seq = sequence[i];
                        sequence[i] = seq.wrapping_add(1);
                        write_header(&mut packet, false, 0, seq, u32::from(seq) * 160, flow.ssrc);
                        let counting = measuring.load(Ordering::Relaxed);
                        // The stamp's first byte says "count me": only packets
                        // sent inside the window are counted on both sides.
                        packet[12] = u8::from(counting);
                        let sent_ns = realtime_ns();
                        packet[13..21].copy_from_slice(&sent_ns.to_le_bytes());
                        let sent = sim[flow.via].send_to(&packet, flow.to).is_ok();
                        if counting {
                            let _ = sendto_ns.record(realtime_ns().saturating_sub(sent_ns).max(1));
                        }
                        if sent && counting {
                            if flow.relayed {
                                sent_relayed.fetch_add(1, Ordering::Relaxed);
                            } else {
                                sent_cpa.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    tick += 1;
                    let next = start + Duration::from_micros(tick * tick_us);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                sendto_ns
            })
            .unwrap()
    };

    std::thread::sleep(Duration::from_secs(args.warmup));
    let rss_running = rss_kib();
    let cpa_before = cpa_frames.load(Ordering::Relaxed);
    let (engine_cpu0, sim_cpu0, t0) = (cpu_seconds("engine"), cpu_seconds("sim-"), Instant::now());
    let (engine_switches0, sim_switches0) = (context_switches("engine"), context_switches("sim-"));
    let rcvbuf_errors0 = udp_rcvbuf_errors();
    measuring.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(args.seconds));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let (engine_cpu, sim_cpu) = (
        cpu_seconds("engine") - engine_cpu0,
        cpu_seconds("sim-") - sim_cpu0,
    );
    let (engine_switches, sim_switches) = (context_switches("engine"), context_switches("sim-"));
    let (engine_scheduling, sim_scheduling) =
        (thread_scheduling("engine"), thread_scheduling("sim-"));
    let cpa_during = cpa_frames.load(Ordering::Relaxed) - cpa_before;
    // Let packets in flight and in the simulator's queues arrive before
    // stopping: a receive thread behind (descheduled) is not relay loss.
    let mut last = received_so_far.load(Ordering::Relaxed);
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(300));
        let now = received_so_far.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let rcvbuf_errors = udp_rcvbuf_errors() - rcvbuf_errors0;
    running.store(false, Ordering::Relaxed);
    let sendto = sender.join().unwrap();
    let mut received = 0;
    let (mut kernel, mut user, mut without_kernel_stamp) =
        (delay_histogram(), delay_histogram(), 0);
    for r in receivers {
        let tally = r.join().unwrap();
        received += tally.received;
        kernel.add(&tally.kernel).expect("same histogram bounds");
        user.add(&tally.user).expect("same histogram bounds");
        without_kernel_stamp += tally.without_kernel_stamp;
    }
    let sent = sent_relayed.load(Ordering::Relaxed);
    let sent_cpa = sent_cpa.load(Ordering::Relaxed);
    let loss = 100.0 * (sent as f64 - received as f64) / (sent as f64).max(1.0);
    let engine_cores = engine_cpu / elapsed;
    let sim_cores = sim_cpu / elapsed;
    let per_leg_kib = (rss_running.saturating_sub(rss_before)) as f64 / leg_count.max(1) as f64;
    let load_after = load_average();
    println!(
        "legs {leg_count} ({} bridged calls, {} CPA legs), measured {elapsed:.1} s after {} s warm-up; engine threads {}, sender tick {} µs, receive threads {} at nice {}",
        args.calls,
        args.cpa,
        args.warmup,
        args.engine_threads,
        args.tick_us,
        if args.receive_poll_us == 0 {
            "blocking".to_string()
        } else {
            format!("polling every {} µs", args.receive_poll_us)
        },
        args.receive_nice
    );
    println!(
        "scheduling read back from /proc: engine threads {engine_scheduling} | simulator threads {sim_scheduling}"
    );
    println!("machine load average (1/5/15 min): before {load_before}, at the end {load_after}");
    // Every flow sends 50 packets a second; a sender behind its pace
    // measures the engine at a fraction of the load asked for.
    let expected = (leg_count as f64 * 50.0 * elapsed) as u64;
    println!(
        "sender pace: {} of {expected} expected packets sent in the window ({:.1} %)",
        sent + sent_cpa,
        100.0 * (sent + sent_cpa) as f64 / (expected as f64).max(1.0)
    );
    println!("relayed packets: sent {sent}, received {received}, loss {loss:.4} %");
    println!(
        "UDP receive-buffer overflows on the machine during the window and the drain after it (any socket; counts as loss above if a simulator socket overflowed): {rcvbuf_errors}"
    );
    println!(
        "CPA: {sent_cpa} packets sent, {cpa_during} frames delivered to consumers (≈ ±1 frame/leg at the window edges)"
    );
    // The knobs of this run, for the README row.
    let run_label = format!(
        "engine {} threads, {}{}{}{}{}; receive nice {}{}; tick {} µs",
        args.engine_threads,
        if args.engine.realtime_priority > 0 {
            format!("SCHED_FIFO {}", args.engine.realtime_priority)
        } else {
            "normal priority".to_string()
        },
        if args.engine.wake_coalesce_us > 0 {
            format!(", wake coalescing {} µs", args.engine.wake_coalesce_us)
        } else {
            String::new()
        },
        if args.engine.cpus.is_empty() {
            String::new()
        } else {
            format!(" on CPUs {:?}", args.engine.cpus)
        },
        if args.sim_cpus.is_empty() {
            String::new()
        } else {
            format!(", simulator on CPUs {:?}", args.sim_cpus)
        },
        if args.sender_rt_priority > 0 {
            format!(", sender SCHED_FIFO {}", args.sender_rt_priority)
        } else {
            String::new()
        },
        args.receive_nice,
        if args.receive_poll_us > 0 {
            format!(", polling every {} µs", args.receive_poll_us)
        } else {
            String::new()
        },
        args.tick_us
    );
    let ms = |ns: u64| ns as f64 / 1e6;
    let jitter = |h: &Histogram<u64>, q: f64| ms(h.value_at_quantile(q).saturating_sub(h.min()));
    println!(
        "one-way delay, kernel timestamp (sender's stamp → kernel arrival at the simulator socket; = engine residence + the sender's sendto), ms: min {:.3} p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}{}",
        ms(kernel.min()),
        ms(kernel.value_at_quantile(0.5)),
        ms(kernel.value_at_quantile(0.99)),
        ms(kernel.value_at_quantile(0.999)),
        ms(kernel.max()),
        if without_kernel_stamp > 0 {
            format!(" ({without_kernel_stamp} packets without a kernel stamp)")
        } else {
            String::new()
        }
    );
    println!(
        "one-way delay, user space (sender's stamp → simulator receive thread; adds that thread's wakeup), ms: min {:.3} p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        ms(user.min()),
        ms(user.value_at_quantile(0.5)),
        ms(user.value_at_quantile(0.99)),
        ms(user.value_at_quantile(0.999)),
        ms(user.max())
    );
    println!(
        "sender's own sendto (stamp → syscall return; part of the kernel figure), ms: p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
        ms(sendto.value_at_quantile(0.5)),
        ms(sendto.value_at_quantile(0.99)),
        ms(sendto.value_at_quantile(0.999)),
        ms(sendto.max())
    );
    println!(
        "ADDED JITTER (delay − min delay), ms: kernel timestamp p50 {:.3} p99 {:.3} p99.9 {:.3} | user space p50 {:.3} p99 {:.3} p99.9 {:.3}",
        jitter(&kernel, 0.5),
        jitter(&kernel, 0.99),
        jitter(&kernel, 0.999),
        jitter(&user, 0.5),
        jitter(&user, 0.99),
        jitter(&user, 0.999)
    );
    println!("CPU: engine {engine_cores:.2} cores, simulator {sim_cores:.2} cores");
    let per_second = |now: (u64, u64), before: (u64, u64)| {
        (
            (now.0 - before.0) as f64 / elapsed,
            (now.1 - before.1) as f64 / elapsed,
        )
    };
    let (engine_wakeups, engine_preempted) = per_second(engine_switches, engine_switches0);
    let (sim_wakeups, sim_preempted) = per_second(sim_switches, sim_switches0);
    println!(
        "context switches per second: engine {engine_wakeups:.0} voluntary (sleeps/wakeups), {engine_preempted:.0} preempted; simulator {sim_wakeups:.0} voluntary, {sim_preempted:.0} preempted"
    );
    println!(
        "memory: RSS {rss_before} KiB before legs, {rss_running} KiB running → {per_leg_kib:.1} KiB per leg (user space; kernel socket buffers not included)"
    );
    println!(
        "README row: | load avg {load_before}; {run_label} | {leg_count} | {} of {sent} | {cpa_during} of {sent_cpa} | {:.2} / {:.2} / {:.2} ms | {:.2} / {:.2} / {:.2} ms | {:.2} ms | {engine_cores:.2} | {sim_cores:.2} | {per_leg_kib:.1} KiB |",
        sent.saturating_sub(received),
        jitter(&kernel, 0.5),
        jitter(&kernel, 0.99),
        jitter(&kernel, 0.999),
        jitter(&user, 0.5),
        jitter(&user, 0.99),
        jitter(&user, 0.999),
        ms(sendto.value_at_quantile(0.99)),
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
