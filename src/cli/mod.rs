//! Command-line interface: one subcommand per module here.
//!
//! Exit codes, for every subcommand: 0 success; 1 a runtime failure (a port
//! in use, a peer unreachable); 2 bad usage or a bad configuration file;
//! `import` adds 3: some rows were rejected (the others were imported).

mod call;
mod call_media;
mod callbacks;
mod campaigns;
mod check_config;
pub mod cpa;
mod dnc;
mod export;
mod import;
mod nodes;
mod run;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{DEFAULT_CONFIG_PATH, LogFormat};

/// Exit code for bad usage or configuration.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while running.
pub const EXIT_RUNTIME: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "outdial",
    version,
    about = "An open-source SIP predictive dialer"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Log format; overrides `log.format` in the configuration.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the dialer engine.
    Run,
    /// Validate the configuration and print a one-screen summary.
    CheckConfig,
    /// Import a CSV contact list into a campaign (exit 3: some rows rejected).
    Import(import::ImportArgs),
    /// Export a campaign's records, or its attempts (CDR), as CSV.
    Export(export::ExportArgs),
    /// Do-not-call lists: add, remove or check numbers (internal list, or a
    /// campaign's with --campaign).
    Dnc(dnc::DncArgs),
    /// Scheduled callbacks: list, change or cancel them.
    Callbacks(callbacks::CallbacksArgs),
    /// Campaigns defined through the API: list, show, define or remove them.
    Campaigns(campaigns::CampaignsArgs),
    /// The dialer nodes sharing the store: host, PID, last heartbeat, alive or down.
    Nodes,
    /// Place a call (or --count calls at --rate) through the trunk and
    /// report progress, outcome and timings.
    Call(call::CallArgs),
    /// Call-progress analysis of WAV files, or `--eval labels.csv`.
    Cpa(cpa::CpaArgs),
    /// Simulate a campaign's pacing on a virtual clock (no configuration needed).
    Simulate(Box<simulate::SimulateArgs>),
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run => run::run(&cli),
        Command::CheckConfig => check_config::check_config(&cli),
        Command::Import(args) => import::import(&cli, args),
        Command::Export(args) => export::export(&cli, args),
        Command::Dnc(args) => dnc::dnc(&cli, args),
        Command::Callbacks(args) => callbacks::callbacks(&cli, args),
        Command::Campaigns(args) => campaigns::campaigns(&cli, args),
        Command::Nodes => nodes::nodes(&cli),
        Command::Call(args) => call::call(&cli, args),
        Command::Cpa(args) => cpa::run(args),
        Command::Simulate(args) => simulate::simulate(args),
    }
}
