//! `outdial dnc`: the do-not-call lists — the internal (global) list, or a
//! campaign's with `--campaign`. Numbers without a country code are read
//! as numbers of `--region` (default: the campaign's `default_region`, or
//! US for the global list) and stored as E.164.
//!
//! Exit codes: 0 done (for `check`: every number listed); 3 some numbers
//! rejected (the good ones are applied) or, for `check`, some not listed;
//! 2 bad usage or configuration; 1 a store failure.

use std::io::{BufRead, BufReader};
use std::process::ExitCode;

use super::Cli;
use super::import::{EXIT_ROWS_REJECTED, Failure};
use crate::campaign::import::e164;
use crate::store::{self, CampaignId, Store};

#[derive(Debug, clap::Args)]
pub struct DncArgs {
    #[command(subcommand)]
    pub action: DncAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum DncAction {
    /// Put numbers on the list (arguments, or `--file`: one per line; a
    /// CSV's first column, a header line and `#` comments are skipped).
    Add(DncNumbers),
    /// Take numbers off the list.
    Remove(DncNumbers),
    /// Say whether each number is listed (globally or for the campaign).
    Check(DncNumbers),
}

#[derive(Debug, clap::Args)]
pub struct DncNumbers {
    /// The campaign's list (default: the internal, global list).
    #[arg(long)]
    pub campaign: Option<String>,
    /// Region for numbers without a country code (ISO 3166 alpha-2).
    #[arg(long)]
    pub region: Option<String>,
    /// Read the numbers from this file.
    #[arg(long, value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
    pub numbers: Vec<String>,
}

pub fn dnc(cli: &Cli, args: &DncArgs) -> ExitCode {
    match run(cli, args) {
        Ok(code) => code,
        Err(failure) => failure.exit(),
    }
}

/// The numbers given, with a line (or argument) number each.
fn inputs(numbers: &DncNumbers) -> Result<Vec<(u64, String)>, Failure> {
    let mut out: Vec<(u64, String)> = numbers
        .numbers
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u64 + 1, n.clone()))
        .collect();
    if let Some(path) = &numbers.file {
        let file = std::fs::File::open(path)
            .map_err(|e| Failure::config(format!("cannot open {}: {e}", path.display())))?;
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line =
                line.map_err(|e| Failure::runtime(format!("cannot read {}: {e}", path.display())))?;
            let first = line
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            let is_header = index == 0 && first.chars().any(|c| c.is_ascii_alphabetic());
            if first.is_empty() || first.starts_with('#') || is_header {
                continue;
            }
            out.push((index as u64 + 1, first.to_string()));
        }
    }
    if out.is_empty() {
        return Err(Failure::config(
            "give numbers as arguments or with --file".to_string(),
        ));
    }
    Ok(out)
}

fn run(cli: &Cli, args: &DncArgs) -> Result<ExitCode, Failure> {
    let numbers = match &args.action {
        DncAction::Add(n) | DncAction::Remove(n) | DncAction::Check(n) => n,
    };
    let (config, store) = super::import::open_config_and_store(&cli.config)?;
    let campaign_config = match &numbers.campaign {
        Some(name) => Some(
            config
                .campaigns
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| {
                    Failure::config(format!(
                        "no campaign `{name}` in the configuration or defined through the API"
                    ))
                })?,
        ),
        None => None,
    };
    let region = numbers
        .region
        .clone()
        .or_else(|| campaign_config.map(|c| c.default_region.clone()))
        .unwrap_or_else(|| "US".to_string());
    let mut valid = Vec::new();
    let mut rejected = 0usize;
    for (line, text) in inputs(numbers)? {
        match e164(&text, &region) {
            Ok(number) => valid.push(number),
            Err(reason) => {
                rejected += 1;
                println!("line {line}: {reason}");
            }
        }
    }
    let campaign: Option<CampaignId> = match campaign_config {
        Some(c) => {
            let rules = crate::campaign::rules::CampaignRules::from_config(c)
                .map_err(|e| Failure::config(e.to_string()))?;
            Some(
                store
                    .sync_campaign(&rules)
                    .map_err(|e| Failure::runtime(e.to_string()))?,
            )
        }
        None => None,
    };
    let list = match &numbers.campaign {
        Some(name) => format!("campaign `{name}`'s list"),
        None => "the internal list".to_string(),
    };
    let store_error = |e: store::StoreError| Failure::runtime(e.to_string());
    let mut all_listed = true;
    match &args.action {
        DncAction::Add(_) => {
            let added = store
                .add_dnc_many(campaign, &valid, jiff::Timestamp::now())
                .map_err(store_error)?;
            println!(
                "added {added} to {list} ({} already there), rejected {rejected}",
                valid.len() as u64 - added
            );
        }
        DncAction::Remove(_) => {
            let mut removed = 0;
            for number in &valid {
                removed += usize::from(store.remove_dnc(campaign, number).map_err(store_error)?);
            }
            println!(
                "removed {removed} from {list} ({} were not on it), rejected {rejected}",
                valid.len() - removed
            );
        }
        DncAction::Check(_) => {
            for number in &valid {
                let listed = match campaign {
                    Some(id) => store.is_dnc(id, number).map_err(store_error)?,
                    None => global_listed(&*store, number).map_err(store_error)?,
                };
                all_listed &= listed;
                println!("{number} {}", if listed { "listed" } else { "not listed" });
            }
        }
    }
    Ok(if rejected > 0 || !all_listed {
        ExitCode::from(EXIT_ROWS_REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// On the internal list: `is_dnc` of campaign id 0 reads the global list
/// only (no campaign has id 0).
fn global_listed(store: &dyn Store, number: &str) -> Result<bool, store::StoreError> {
    store.is_dnc(0, number)
}
