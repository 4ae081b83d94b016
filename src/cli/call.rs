//! `outdial call`: place real calls through the configured trunk and report
//! their progress and outcome; with `--count/--rate`, a trunk capacity test
//! with setup-latency percentiles.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::call_media::{CallMedia, MediaNext, RECORD_TAIL};
use super::{Cli, EXIT_CONFIG, EXIT_RUNTIME};
use crate::config::{Config, Transport};
use crate::net::locate::Locator;
use crate::net::route::{registration_request, route_for};
use crate::net::{SipHandle, SipSockets};
use crate::sip::endpoint::{
    CallHandle, Credentials, Endpoint, EndpointConfig, Event, InviteRequest, RegistrationState,
    TransportKind,
};
use crate::sip::offer::fixed_offer;
use crate::sip::outcome::Outcome;
use crate::sip::trunk::TrunkLimiter;

#[derive(Debug, Args)]
pub struct CallArgs {
    /// A SIP URI (dialed as given) or a number (sent to the trunk).
    pub target: String,
    /// CANCEL after this many seconds without an answer.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub ring_timeout: f64,
    /// Hang up this many seconds after the answer.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub hold: f64,
    /// Print one JSON object per call on stdout (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Number of calls (a trunk capacity test when above 1).
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// New calls per second (also capped by `trunk.max_calls_per_second`).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Play this WAV file to the callee once answered, then hang up (8 kHz
    /// mono PCM16, μ-law or A-law; other rates are resampled).
    #[arg(long, value_name = "FILE.wav")]
    pub play: Option<PathBuf>,
    /// Record what the callee sends (from the answer on) to this WAV file.
    #[arg(long, value_name = "OUT.wav")]
    pub record: Option<PathBuf>,
}

/// What `--json` prints per call.
#[derive(Debug, Serialize)]
struct CallReport {
    uri: String,
    outcome: Outcome,
    sip_code: Option<u16>,
    reason: String,
    /// INVITE → first 18x.
    pdd_ms: Option<f64>,
    /// INVITE → 200.
    answer_ms: Option<f64>,
    /// Answer → end (0 when not answered).
    duration_ms: f64,
    progress: Vec<Progress>,
    /// With `--record`: the file written and its length.
    #[serde(skip_serializing_if = "Option::is_none")]
    recording: Option<Recording>,
}

#[derive(Debug, Serialize)]
struct Recording {
    path: String,
    ms: u64,
    packets_received: u64,
    packets_lost: i64,
}

#[derive(Debug, Serialize)]
struct Progress {
    code: u16,
    reason: String,
    ms: f64,
}

struct Live {
    started: Instant,
    first_18x: Option<Instant>,
    answered: Option<Instant>,
    progress: Vec<Progress>,
}

pub fn call(cli: &Cli, args: &CallArgs) -> ExitCode {
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.count == 0 || args.rate <= 0.0 || args.ring_timeout <= 0.0 || args.hold < 0.0 {
        eprintln!(
            "error: --count and --rate must be positive, --ring-timeout positive and --hold ≥ 0"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    if (args.play.is_some() || args.record.is_some()) && args.count != 1 {
        eprintln!("error: --play and --record work on a single call (no --count)");
        return ExitCode::from(EXIT_CONFIG);
    }
    let format = cli.log_format.unwrap_or(config.log.format);
    // Logs go to stderr at warn unless RUST_LOG says otherwise: stdout is the report.
    if let Err(error) = crate::logging::init("warn", format) {
        eprintln!("error: cannot start logging: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(place_calls(&config, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// How long `outdial call` waits for the registrar, before the calls and
/// after them.
const REGISTRAR_WAIT: Duration = Duration::from_secs(10);

/// Registers with the trunk and waits for the outcome: the calls go out
/// only once registered; a refusal is the command's error.
async fn register_first(
    handle: &SipHandle,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    request: crate::sip::endpoint::RegistrationRequest,
) -> anyhow::Result<()> {
    handle
        .call(move |endpoint, now| endpoint.register(request, now))
        .await
        .ok_or_else(|| anyhow!("the SIP task stopped"))?;
    let deadline = tokio::time::Instant::now() + REGISTRAR_WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| anyhow!("the trunk's registrar did not answer within {REGISTRAR_WAIT:?}"))?
            .ok_or_else(|| anyhow!("the SIP task stopped"))?;
        if let Event::TrunkRegistration { state, .. } = event {
            match state {
                RegistrationState::Registered { .. } => return Ok(()),
                RegistrationState::Failed { code, reason, .. } => {
                    let code = code.map_or_else(|| "no answer".to_string(), |c| c.to_string());
                    return Err(anyhow!(
                        "registration with the trunk failed: {code} {reason}"
                    ));
                }
                RegistrationState::Unregistered => {}
            }
        }
    }
}

/// Removes the binding and waits (at most [`REGISTRAR_WAIT`]) for the
/// registrar's answer.
async fn unregister_last(
    handle: &SipHandle,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    let _ = handle
        .call(|endpoint, now| endpoint.unregister_all(now))
        .await;
    let deadline = tokio::time::Instant::now() + REGISTRAR_WAIT;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        if let Event::TrunkRegistration {
            state: RegistrationState::Unregistered,
            ..
        } = event
        {
            return;
        }
    }
}

async fn place_calls(config: &Config, args: &CallArgs) -> anyhow::Result<()> {
    let locator = Locator::new(&config.sip.dns_servers);
    let route = route_for(&locator, config, &args.target).await?;
    // An ephemeral port on the configured SIP address, so `outdial run` may
    // keep its port while calls are placed.
    let mut sip_config = config.sip.clone();
    sip_config.listen.set_port(0);
    if route.transport == TransportKind::Tcp && !sip_config.transports.contains(&Transport::Tcp) {
        sip_config.transports.push(Transport::Tcp);
    }
    let sockets = SipSockets::bind(&sip_config).await?;
    let bound = sockets
        .udp_addr()
        .or_else(|| sockets.tcp_addr())
        .ok_or_else(|| anyhow!("no SIP transport enabled in sip.transports"))?;
    let mut endpoint_config = EndpointConfig::from_config(config, bound, fastrand::u64(..));
    if config.sip.public_addr.is_none() {
        endpoint_config.local_addr = bound;
    }
    let endpoint = Endpoint::new(endpoint_config);
    let (driver, handle, mut events) = sockets.into_driver(endpoint);
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let driver_task = tokio::spawn(driver.run(shutdown_rx));
    // A trunk that takes calls only from a registered user agent: register
    // before the first INVITE, and remove the binding at the end.
    let registered = config.trunk.register;
    if registered {
        let request = registration_request(&config.trunk, &route.next_hop)
            .ok_or_else(|| anyhow!("trunk.uri {:?} is not a sip: URI", config.trunk.uri))?;
        register_first(&handle, &mut events, request).await?;
        if !args.json {
            eprintln!("registered with the trunk");
        }
    }

    let credentials = config.trunk.username.clone().map(|username| Credentials {
        username,
        password: config.trunk.password.clone().unwrap_or_default(),
    });
    let rtp_ip = config.rtp.public_ip.unwrap_or(config.rtp.bind);
    let pairs = u64::try_from(config.rtp.leg_capacity().max(1)).unwrap_or(1);
    let rate = args
        .rate
        .min(config.trunk.max_calls_per_second.max(f64::MIN_POSITIVE));
    let max_concurrent = usize::try_from(config.trunk.max_concurrent_calls).unwrap_or(usize::MAX);
    let mut limiter = TrunkLimiter::new(rate, max_concurrent.max(1));
    let single = args.count == 1;

    let mut media = match (&args.play, &args.record) {
        (None, None) => None,
        _ => Some(CallMedia::open(
            config,
            args.play.clone(),
            args.record.clone(),
        )?),
    };
    let mut recording: Option<Recording> = None;
    // With --play the call ends when the file has played (plus a tail).
    let hold = match &media {
        Some(m) if m.plays() => None,
        _ => Some(Duration::from_secs_f64(args.hold)),
    };
    let mut hang_up_at: Option<Instant> = None;
    let mut single_call: Option<CallHandle> = None;
    let mut live: HashMap<CallHandle, Live> = HashMap::new();
    let mut reports: Vec<CallReport> = Vec::new();
    let mut placed = 0u64;
    let started = Instant::now();
    let mut last_placed = started;
    let mut next_try: Option<Instant> = Some(started);
    let mut paused_until: Option<Instant> = None;
    while reports.len() < usize::try_from(args.count).unwrap_or(usize::MAX) {
        let wake = next_try.map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = sleep_until(wake) => {
                next_try = None;
                if let Some(until) = paused_until.filter(|until| *until > Instant::now()) {
                    next_try = Some(until);
                    continue;
                }
                while placed < args.count {
                    match limiter.admit(live.len(), Instant::now()) {
                        Ok(()) => {}
                        Err(at) => { next_try = at; break; }
                    }
                    let port = config.rtp.port_min.saturating_add(u16::try_from((placed % pairs) * 2).unwrap_or(0));
                    let (destination, alternates) = route.next_hop.ordered(fastrand::u32);
                    let request = InviteRequest {
                        uri: route.uri.clone(),
                        destination,
                        alternates,
                        transport: route.transport,
                        route: route.route.clone(),
                        caller_id: config.trunk.caller_id.clone(),
                        caller_name: config.trunk.caller_name.clone(),
                        credentials: credentials.clone(),
                        sdp: match &media {
                            Some(media) => media.offer_sdp(),
                            None => fixed_offer(rtp_ip, port, placed + 1),
                        },
                        ring_timeout: Some(Duration::from_secs_f64(args.ring_timeout)),
                        hold,
                        session_expires: config.trunk.session_timer_asked(),
                        follow_redirects: config.trunk.follow_redirects,
                        symmetric: false,
                    };
                    let placed_at = handle
                        .call(move |endpoint, now| endpoint.invite(request, now).map(|h| (h, now)))
                        .await
                        .ok_or_else(|| anyhow!("the SIP driver stopped"))??;
                    single_call = Some(placed_at.0);
                    live.insert(placed_at.0, Live { started: placed_at.1, first_18x: None, answered: None, progress: Vec::new() });
                    placed += 1;
                    last_placed = placed_at.1;
                    if single && !args.json {
                        println!("INVITE {} via {} ({:?})", route.uri, destination, route.transport);
                    }
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                let now = Instant::now();
                match event {
                    Event::Progress { call, code, reason, sdp } => {
                        if let (Some(media), Some(sdp)) = (media.as_mut(), sdp.as_deref()) {
                            // Early media: a bad answer is reported, the call goes on.
                            if let Err(error) = media.on_answer_sdp(sdp) {
                                eprintln!("warning: {error:#}");
                            }
                        }
                        if let Some(call) = live.get_mut(&call) {
                            let at = ms(now - call.started);
                            if (180..200).contains(&code) && call.first_18x.is_none() {
                                call.first_18x = Some(now);
                            }
                            if single && !args.json {
                                println!("  {at:>9.1} ms  {code} {reason}");
                            }
                            call.progress.push(Progress { code, reason, ms: at });
                        }
                    }
                    Event::Answered { call: handle, sdp } => {
                        if let Some(media) = media.as_mut() {
                            let started = media.on_answer_sdp(&sdp).and_then(|()| media.on_answered());
                            if let Err(error) = started {
                                eprintln!("error: {error:#}; hanging up");
                                hang_up_at = Some(now);
                            }
                        }
                        let call = handle;
                        if let Some(call) = live.get_mut(&call) {
                            call.answered = Some(now);
                            let at = ms(now - call.started);
                            if single && !args.json {
                                match hold {
                                    Some(_) => println!("  {at:>9.1} ms  200 answered; hanging up after {} s", args.hold),
                                    None => println!("  {at:>9.1} ms  200 answered; playing, then hanging up"),
                                }
                            }
                            call.progress.push(Progress { code: 200, reason: "OK".into(), ms: at });
                        }
                    }
                    Event::Ended { call, end } => {
                        if let Some(media) = media.take() {
                            let report = media.close().await?;
                            if let Some((path, samples)) = &report.recording {
                                recording = Some(Recording {
                                    path: path.display().to_string(),
                                    ms: (*samples as u64) * 1000 / 8000,
                                    packets_received: report.summary.received,
                                    packets_lost: report.summary.lost,
                                });
                            }
                            if let Some(error) = &report.recording_error {
                                eprintln!("error: recording: {error}");
                            }
                        }
                        hang_up_at = None;
                        if let Some(call) = live.remove(&call) {
                            let report = CallReport {
                                uri: route.uri.clone(),
                                outcome: end.outcome,
                                sip_code: end.sip_code,
                                reason: end.reason.clone(),
                                pdd_ms: call.first_18x.map(|t| ms(t - call.started)),
                                answer_ms: call.answered.map(|t| ms(t - call.started)),
                                duration_ms: call.answered.map_or(0.0, |t| ms(now - t)),
                                progress: call.progress,
                                recording: recording.take(),
                            };
                            if args.json {
                                println!("{}", serde_json::to_string(&report)?);
                            } else if single {
                                let code = end.sip_code.map_or_else(|| "-".to_string(), |c| c.to_string());
                                let by = if end.hung_up_by_remote { " (remote hung up)" } else { "" };
                                println!("outcome: {} (SIP {code} {}){by}", end.outcome, end.reason);
                                if let Some(recorded) = &report.recording {
                                    println!("recorded {} ms to {}", recorded.ms, recorded.path);
                                }
                            }
                            reports.push(report);
                            if let (Outcome::Congestion, Some(wait)) = (end.outcome, end.retry_after) {
                                // 503 with Retry-After: no new INVITE to this trunk before then.
                                let resume = now + wait;
                                paused_until = Some(paused_until.map_or(resume, |p: Instant| p.max(resume)));
                                if placed < args.count && !args.json {
                                    eprintln!("trunk congested: pausing new calls for {} s (Retry-After)", wait.as_secs());
                                }
                            }
                            if next_try.is_none() && placed < args.count {
                                next_try = Some(paused_until.map_or(now, |p| p.max(now)));
                            }
                        }
                    }
                    Event::MediaChanged { media: negotiated, .. } => {
                        if single && !args.json {
                            println!("  re-offer: {} {:?}", negotiated.direction.attribute(), negotiated.remote);
                        }
                        if let Some(media) = media.as_mut()
                            && let Err(error) = media.on_media_changed(negotiated)
                        {
                            eprintln!("error: {error:#}");
                        }
                    }
                    Event::PingResult { .. }
                    | Event::Registration(_)
                    | Event::TrunkRegistration { .. } => {}
                }
            }
            media_event = next_media_event(media.as_mut()) => {
                let next = match (media.as_ref(), media_event) {
                    (Some(media), Some(event)) => media.on_event(event),
                    _ => MediaNext::HangUpNow("the media task stopped"),
                };
                match next {
                    MediaNext::Nothing => {}
                    MediaNext::HangUpSoon => hang_up_at = Some(Instant::now() + RECORD_TAIL),
                    MediaNext::HangUpNow(why) => {
                        if !args.json {
                            eprintln!("hanging up: {why}");
                        }
                        hang_up_at = Some(Instant::now());
                    }
                }
            }
            _ = sleep_until(hang_up_at.map(tokio::time::Instant::from_std)) => {
                hang_up_at = None;
                if let Some(call) = single_call {
                    // The call may already be over (a race with its BYE): fine.
                    let _ = handle.call(move |endpoint, now| endpoint.hangup(call, now)).await;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    if registered {
        unregister_last(&handle, &mut events).await;
    }
    let _ = shutdown_tx.send(true);
    let _ = driver_task.await;
    if !single {
        let placing = last_placed.saturating_duration_since(started);
        let summary = summarise(&reports, elapsed, placing, args);
        if args.json {
            eprint!("{summary}");
        } else {
            print!("{summary}");
        }
    }
    Ok(())
}

fn summarise(
    reports: &[CallReport],
    elapsed: Duration,
    placing: Duration,
    args: &CallArgs,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut outcomes: Vec<(Outcome, usize)> = Vec::new();
    for report in reports {
        match outcomes.iter_mut().find(|(o, _)| *o == report.outcome) {
            Some((_, n)) => *n += 1,
            None => outcomes.push((report.outcome, 1)),
        }
    }
    let _ = writeln!(
        out,
        "calls: {} in {:.2} s; achieved rate {:.1} calls/s (asked {})",
        reports.len(),
        elapsed.as_secs_f64(),
        (reports.len().saturating_sub(1)) as f64 / placing.as_secs_f64().max(0.001),
        args.rate
    );
    for (outcome, n) in &outcomes {
        let _ = writeln!(out, "  {outcome}: {n}");
    }
    for (name, values) in [
        (
            "pdd (INVITE → 18x)",
            reports.iter().filter_map(|r| r.pdd_ms).collect::<Vec<_>>(),
        ),
        (
            "answer (INVITE → 200)",
            reports
                .iter()
                .filter_map(|r| r.answer_ms)
                .collect::<Vec<_>>(),
        ),
    ] {
        let Ok(mut histogram) = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3) else {
            continue;
        };
        for v in &values {
            let _ = histogram.record((v * 1000.0).max(1.0) as u64);
        }
        if values.is_empty() {
            continue;
        }
        let q = |p: f64| histogram.value_at_quantile(p) as f64 / 1000.0;
        let _ = writeln!(
            out,
            "  {name} ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
            q(0.5),
            q(0.9),
            q(0.99),
            histogram.max() as f64 / 1000.0
        );
    }
    out
}

/// The next event of the call's media leg; never resolves without one.
async fn next_media_event(media: Option<&mut CallMedia>) -> Option<crate::media::leg::LegEvent> {
    match media {
        Some(media) => media.next_event().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
