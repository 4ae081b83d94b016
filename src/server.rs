//! The running process: binds every socket, serves until SIGINT/SIGTERM, then
//! shuts down within a bounded time. This is the tokio shell's top; the
//! protocol logic lives in the sans-IO cores it drives.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use crate::api;
use crate::config::Config;
use crate::net::SipSockets;

/// Longest a clean shutdown may take before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Runs the engine until a termination signal arrives.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    // Watch the signals before saying "listening", so a signal sent as soon
    // as the line appears is never taken by the default (kill) action.
    let signals = Signals::install()?;
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
    let api_state = api::ApiState::new(started);
    let mut http_shutdown = shutdown_rx.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http, api::router(api_state))
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });

    let signal = signals.wait().await;
    tracing::info!(signal, "shutting down");
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        let _ = sip_task.await;
        let _ = http_task.await;
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

/// SIGINT and SIGTERM, watched from the start of [`run`].
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        })
    }

    /// Resolves with the name of the first SIGINT or SIGTERM.
    async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
