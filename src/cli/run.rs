//! `outdial run`: load the configuration and serve until SIGINT/SIGTERM.

use std::process::ExitCode;

use super::{Cli, EXIT_CONFIG, EXIT_RUNTIME};
use crate::config::Config;
use crate::{logging, server};

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
    match runtime.block_on(server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
