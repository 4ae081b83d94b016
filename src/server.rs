//! The running process: binds every socket, serves until SIGINT/SIGTERM, then
//! shuts down within a bounded time. This is the tokio shell's top; the
//! protocol logic lives in the sans-IO cores it drives.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Config;
use crate::engine::dialer::Dialer;
use crate::net::SipSockets;
use crate::{api, driver};

/// Longest a clean shutdown may take before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Runs the engine until a termination signal arrives.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    // Watch signals before anything is announced: a SIGTERM that arrives
    // right after "listening" must still stop the process cleanly.
    let signal = wait_for_signal()?;
    let metrics = crate::metrics::install()?;
    let sip = SipSockets::bind(&config.sip).await?;
    let http = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("cannot bind the HTTP API on {}", config.api.listen))?;
    let http_addr = http.local_addr()?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        sip_udp = %display_opt(sip.udp_addr()),
        sip_tcp = %display_opt(sip.tcp_addr()),
        http = %http_addr,
        "outdial listening"
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let sip_config = config.clone();
    let sip_shutdown = shutdown_rx.clone();
    let sip_task = tokio::spawn(async move { sip.serve(&sip_config, sip_shutdown).await });
    let dialer = Dialer::new(&config, Instant::now());
    let (engine, engine_task) = driver::spawn(dialer, shutdown_rx.clone());
    let api_state = api::ApiState::new(
        started,
        api::Tokens::from_config(&config.api),
        engine,
        shutdown_rx.clone(),
        Some(metrics),
    );
    let mut http_shutdown = shutdown_rx.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http, api::router(api_state))
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });

    let signal = signal.await;
    tracing::info!(signal, "shutting down");
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        let _ = sip_task.await;
        let _ = http_task.await;
        let _ = engine_task.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "tasks still busy at the end of the grace period"
        );
    }
    tracing::info!(uptime_s = started.elapsed().as_secs(), "outdial stopped");
    Ok(())
}

fn display_opt(addr: Option<std::net::SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_string(), |a| a.to_string())
}

/// Installs the SIGINT and SIGTERM handlers now; the future resolves with
/// the name of the first signal received.
fn wait_for_signal() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    })
}
