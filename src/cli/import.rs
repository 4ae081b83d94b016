//! `outdial import`: stream a CSV contact list into a campaign.
//!
//! Exit codes: 0 every row imported; 3 some rows rejected (the good ones are
//! imported, each bad one is reported with its line); 2 bad usage,
//! configuration, mapping or header; 1 a runtime failure (the store).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use super::{Cli, EXIT_CONFIG, EXIT_RUNTIME};
use crate::campaign::import::ImportMapping;
use crate::campaign::rules::CampaignRules;
use crate::config::Config;
use crate::store::import_list::{ImportError, ImportSummary, import_csv};
use crate::store::{self, CampaignId, Store};

/// Exit code when some rows were rejected.
pub const EXIT_ROWS_REJECTED: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Campaign name (a `[[campaign]]` of the configuration).
    #[arg(long)]
    pub campaign: String,
    /// The CSV file; its first line is the header.
    #[arg(long, value_name = "PATH")]
    pub file: std::path::PathBuf,
    /// A TOML field mapping (which columns hold the id, name, phones, …).
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<std::path::PathBuf>,
    /// Print `{"imported": n, "updated": n, "rejected": [{"line": n, "reason": "…"}]}`.
    #[arg(long)]
    pub json: bool,
}

/// An error with the exit code it maps to.
pub(super) struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn config(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_CONFIG,
            message: message.into(),
        }
    }
    pub fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_RUNTIME,
            message: message.into(),
        }
    }
    pub fn exit(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

/// Loads the configuration and opens the store; the campaigns supervisors
/// defined through the API join the file's, as they do in `outdial run`.
pub(super) fn open_config_and_store(
    config_path: &Path,
) -> Result<(Config, Box<dyn Store>), Failure> {
    let mut config = Config::load(config_path).map_err(|e| Failure::config(e.to_string()))?;
    let store = store::open(&config.store.url).map_err(|e| {
        Failure::runtime(format!(
            "cannot open the store {}: {e}",
            crate::config::redact_url(&config.store.url)
        ))
    })?;
    let stored: Vec<(String, String)> = store
        .campaign_definitions()
        .map_err(|e| Failure::runtime(e.to_string()))?
        .into_iter()
        .map(|d| (d.name, d.definition))
        .collect();
    for warning in crate::config::definition::add_stored_definitions(&mut config, &stored) {
        eprintln!("warning: {warning}");
    }
    Ok((config, store))
}

/// Loads the configuration, opens the store and creates or updates the
/// campaign from its `[[campaign]]` entry (or its API definition).
pub(super) fn open_campaign(
    config_path: &Path,
    name: &str,
) -> Result<(Config, CampaignRules, Box<dyn Store>, CampaignId), Failure> {
    let (config, store) = open_config_and_store(config_path)?;
    let campaign = config
        .campaigns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = config.campaigns.iter().map(|c| c.name.as_str()).collect();
            Failure::config(format!(
                "campaign `{name}` is neither in {} nor defined through the API; known \
                 campaigns: {}",
                config_path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
    let rules = CampaignRules::from_config(campaign).map_err(|e| Failure::config(e.to_string()))?;
    let id = store
        .sync_campaign(&rules)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    Ok((config, rules, store, id))
}

pub fn import(cli: &Cli, args: &ImportArgs) -> ExitCode {
    match run(cli, args) {
        Ok(summary) => {
            if args.json {
                match serde_json::to_string(&summary) {
                    Ok(json) => println!("{json}"),
                    Err(e) => return Failure::runtime(e.to_string()).exit(),
                }
            } else {
                for rejection in &summary.rejected {
                    println!("line {}: {}", rejection.line, rejection.reason);
                }
                println!(
                    "imported {}, updated {}, rejected {}",
                    summary.imported,
                    summary.updated,
                    summary.rejected.len()
                );
            }
            if summary.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_ROWS_REJECTED)
            }
        }
        Err(failure) => failure.exit(),
    }
}

fn run(cli: &Cli, args: &ImportArgs) -> Result<ImportSummary, Failure> {
    let mapping = match &args.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::config(format!("cannot read the mapping {}: {e}", path.display()))
            })?;
            ImportMapping::parse(&text)
                .map_err(|e| Failure::config(format!("mapping {}: {e}", path.display())))?
        }
        None => ImportMapping::default(),
    };
    let file = File::open(&args.file)
        .map_err(|e| Failure::config(format!("cannot open {}: {e}", args.file.display())))?;
    let (_config, rules, store, campaign) = open_campaign(&cli.config, &args.campaign)?;
    import_csv(
        &*store,
        campaign,
        BufReader::with_capacity(256 * 1024, file),
        &mapping,
        &rules.default_region,
    )
    .map_err(|e| match e {
        ImportError::Layout(message) => {
            Failure::config(format!("{}: {message}", args.file.display()))
        }
        ImportError::Read(message) => {
            Failure::runtime(format!("cannot read {}: {message}", args.file.display()))
        }
        ImportError::Store(error) => Failure::runtime(error.to_string()),
    })
}
