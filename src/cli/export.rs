//! `outdial export`: a campaign's records with their last result, or
//! (`--attempts`) one row per dial (a CDR), as CSV. Streams; times are
//! RFC 3339 UTC.
//!
//! Exit codes: 0 written; 2 bad usage or configuration; 1 a runtime failure.

use std::process::ExitCode;

use super::Cli;
use super::import::{Failure, open_config_and_store};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Campaign name: any campaign the store holds (of the configuration,
    /// defined through the API, or one since removed: its records stay).
    #[arg(long)]
    pub campaign: String,
    /// The CSV file to write.
    #[arg(long, value_name = "FILE.csv")]
    pub out: std::path::PathBuf,
    /// One row per dial attempt instead of one per record.
    #[arg(long)]
    pub attempts: bool,
}

pub fn export(cli: &Cli, args: &ExportArgs) -> ExitCode {
    match run(cli, args) {
        Ok(rows) => {
            println!("wrote {rows} rows to {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(failure) => failure.exit(),
    }
}

fn run(cli: &Cli, args: &ExportArgs) -> Result<u64, Failure> {
    let (_config, store) = open_config_and_store(&cli.config)?;
    let name = &args.campaign;
    let campaign = store
        .campaign_id(name)
        .map_err(|e| Failure::runtime(e.to_string()))?
        .ok_or_else(|| Failure::config(format!("the store holds no campaign `{name}`")))?;
    let file = std::fs::File::create(&args.out)
        .map_err(|e| Failure::config(format!("cannot write {}: {e}", args.out.display())))?;
    let written = if args.attempts {
        crate::store::export_csv::write_attempts(&*store, campaign, file)
    } else {
        crate::store::export_csv::write_records(&*store, campaign, file)
    };
    written.map_err(|e| Failure::runtime(format!("{}: {e}", args.out.display())))
}
