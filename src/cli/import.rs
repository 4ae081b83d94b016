//! `outdial import`: stream a CSV contact list into a campaign.
//!
//! Exit codes: 0 every row imported; 3 some rows rejected (the good ones are
//! imported, each bad one is reported with its line); 2 bad usage,
//! configuration, mapping or header; 1 a runtime failure (the store).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use jiff::Timestamp;

use super::{Cli, EXIT_CONFIG, EXIT_RUNTIME};
use crate::campaign::import::{ImportMapping, ImportReader, ImportRow, Parsed, Rejection};
use crate::campaign::rules::CampaignRules;
use crate::config::Config;
use crate::store::{self, CampaignId, ImportOutcome, Store};

/// Exit code when some rows were rejected.
pub const EXIT_ROWS_REJECTED: u8 = 3;

/// Rows written per store transaction.
const BATCH_ROWS: usize = 1000;

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

/// Loads the configuration, opens the store and creates or updates the
/// campaign from its `[[campaign]]` entry.
pub(super) fn open_campaign(
    config_path: &Path,
    name: &str,
) -> Result<(Config, CampaignRules, Box<dyn Store>, CampaignId), Failure> {
    let config = Config::load(config_path).map_err(|e| Failure::config(e.to_string()))?;
    let campaign = config
        .campaigns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = config.campaigns.iter().map(|c| c.name.as_str()).collect();
            Failure::config(format!(
                "campaign `{name}` is not in {}; known campaigns: {}",
                config_path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
    let rules = CampaignRules::from_config(campaign).map_err(|e| Failure::config(e.to_string()))?;
    let store = store::open(&config.store.url).map_err(|e| {
        Failure::runtime(format!(
            "cannot open the store {}: {e}",
            crate::config::redact_url(&config.store.url)
        ))
    })?;
    let id = store
        .sync_campaign(&rules)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    Ok((config, rules, store, id))
}

#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    imported: u64,
    updated: u64,
    rejected: Vec<Rejection>,
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

fn run(cli: &Cli, args: &ImportArgs) -> Result<Summary, Failure> {
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
    let mut reader = ImportReader::new(
        BufReader::with_capacity(256 * 1024, file),
        &mapping,
        &rules.default_region,
    )
    .map_err(|e| Failure::config(format!("{}: {e}", args.file.display())))?;
    let run = store
        .begin_import(campaign, Timestamp::now())
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let mut summary = Summary::default();
    let mut batch: Vec<ImportRow> = Vec::with_capacity(BATCH_ROWS);
    let flush = |batch: &mut Vec<ImportRow>, summary: &mut Summary| -> Result<(), Failure> {
        let outcomes = store
            .import_batch(campaign, run, batch)
            .map_err(|e| Failure::runtime(e.to_string()))?;
        for (row, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                ImportOutcome::Inserted => summary.imported += 1,
                ImportOutcome::Updated => summary.updated += 1,
                ImportOutcome::Duplicate => summary.rejected.push(Rejection {
                    line: row.line,
                    reason: format!(
                        "duplicate external id `{}`: an earlier line of this file has it",
                        row.external_id
                    ),
                }),
            }
        }
        batch.clear();
        Ok(())
    };
    loop {
        let next = reader
            .next_line()
            .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", args.file.display())))?;
        match next {
            Some(Parsed::Row(row)) => {
                batch.push(row);
                if batch.len() >= BATCH_ROWS {
                    flush(&mut batch, &mut summary)?;
                }
            }
            Some(Parsed::Rejected(rejection)) => summary.rejected.push(rejection),
            None => break,
        }
    }
    flush(&mut batch, &mut summary)?;
    summary.rejected.sort_by_key(|r| r.line);
    Ok(summary)
}
