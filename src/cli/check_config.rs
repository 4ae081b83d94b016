//! `outdial check-config`: validate and summarise the configuration.

use std::process::ExitCode;

use super::{Cli, EXIT_CONFIG};
use crate::config::Config;

pub fn check_config(cli: &Cli) -> ExitCode {
    match Config::load(&cli.config) {
        Ok(config) => {
            println!("{}: ok", cli.config.display());
            print!("{}", config.summary());
            // Valid, but likely against the rules: said, not refused.
            for warning in config.compliance_warnings() {
                println!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
