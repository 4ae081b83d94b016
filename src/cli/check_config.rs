//! `outdial check-config`: validate and summarise the configuration.

use std::process::ExitCode;

use super::{Cli, EXIT_CONFIG};
use crate::config::Config;
use crate::media::prompt::Prompt;

pub fn check_config(cli: &Cli) -> ExitCode {
    match Config::load(&cli.config) {
        Ok(config) => {
            // A prompt `run` cannot load stops it at start: an error here.
            let problems = prompt_problems(&config);
            if !problems.is_empty() {
                for problem in &problems {
                    eprintln!("error: {}: {problem}", cli.config.display());
                }
                return ExitCode::from(EXIT_CONFIG);
            }
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

/// Each campaign's audio files, loaded as `run` loads them (paths relative
/// to the working directory, any WAV the reader understands, at most
/// `MAX_PROMPT_SECONDS`).
fn prompt_problems(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for campaign in &config.campaigns {
        for (key, path) in campaign.prompt_files() {
            if let Some(path) = path
                && let Err(error) = Prompt::load(path)
            {
                problems.push(format!("campaign `{}`: `{key}`: {error}", campaign.name));
            }
        }
    }
    problems
}
