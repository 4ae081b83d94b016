//! `outdial run`: load the configuration and serve until SIGINT/SIGTERM.

use std::process::ExitCode;

use super::{Cli, EXIT_CONFIG, EXIT_RUNTIME};
use crate::config::Config;
use crate::net::rtp::{MediaScheduling, build_media_runtime, use_media_runtime};
use crate::{logging, server};

/// How long the exit waits for store calls still blocked (see `run`).
const BLOCKED_STORE_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub fn run(cli: &Cli) -> ExitCode {
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let format = cli.log_format.unwrap_or(config.log.format);
    if let Err(error) = logging::init(&config.log.level, format) {
        eprintln!("error: cannot start logging: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    for warning in config.compliance_warnings() {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // The media legs get a runtime of their own only when its threads are
    // to be scheduled differently (`[media] realtime_priority`,
    // `cpu_affinity`, `wake_coalesce_us`): SIP, the API and the store stay at
    // normal priority and never wait before parking.
    let scheduling = MediaScheduling::from_config(&config.media);
    let media_runtime = if scheduling.is_default() {
        None
    } else {
        match build_media_runtime(&scheduling) {
            Ok(media) => {
                use_media_runtime(media.handle().clone());
                tracing::info!(
                    realtime_priority = scheduling.realtime_priority,
                    cpus = ?scheduling.cpus,
                    wake_coalesce_us = scheduling.wake_coalesce_us,
                    threads = scheduling.worker_threads(),
                    "media legs run on their own runtime"
                );
                Some(media)
            }
            Err(error) => {
                tracing::error!(%error, "cannot start the media runtime");
                return ExitCode::from(EXIT_RUNTIME);
            }
        }
    };
    let outcome = runtime.block_on(server::run(config));
    // Leg tasks still running end here, as they would with the main
    // runtime's drop when there is no media runtime.
    if let Some(media) = media_runtime {
        media.shutdown_background();
    }
    // A store call still blocked (SQLite locked by another process, a
    // PostgreSQL server gone) would hold the exit for as long as it waits:
    // the finished calls' rows are in the spool, written at the next start.
    runtime.shutdown_timeout(BLOCKED_STORE_EXIT_WAIT);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
