//! `outdial check-config`: validate and summarise the configuration.

use std::process::ExitCode;

use super::{Cli, EXIT_CONFIG};
use crate::config::Config;

pub fn check_config(cli: &Cli) -> ExitCode {
    match Config::load(&cli.config) {
        Ok(config) => {
            println!("{}: ok", cli.config.display());
            print!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
