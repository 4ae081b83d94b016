//! `outdial campaigns`: the campaigns supervisors define through the API,
//! from the command line (provisioning scripts, operators without HTTP).
//! `list` every campaign (the file's and the defined ones), `show` one's
//! settings, `define` one from a JSON file (the body `POST /api/campaigns`
//! takes), `remove` one. The store is written directly; running dialers
//! take a change within `DEFINITIONS_POLL` (10 s), as soon as nothing of the
//! campaign is in motion there.
//!
//! Exit codes: 0 done; 2 bad usage, configuration or definition (every
//! problem printed with its key); 1 a store failure.

use std::collections::BTreeSet;
use std::process::ExitCode;

use super::Cli;
use super::import::{Failure, open_config_and_store};
use crate::campaign::rules::CampaignRules;
use crate::config::definition::CampaignDefinition;
use crate::config::{CampaignSource, Config};

#[derive(Debug, clap::Args)]
pub struct CampaignsArgs {
    #[command(subcommand)]
    pub action: CampaignsAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum CampaignsAction {
    /// Every campaign: name, where it is defined (file or api), mode;
    /// tab-separated.
    List,
    /// One campaign's settings (every key, defaults written out) and
    /// agents, as JSON.
    Show { name: String },
    /// Define a campaign, or replace one defined earlier, from a JSON file:
    /// the keys of a [[campaign]] table plus "agents".
    Define {
        #[arg(long, value_name = "DEFINITION.json")]
        file: std::path::PathBuf,
    },
    /// Remove a campaign defined through the API (its records stay).
    Remove { name: String },
}

pub fn campaigns(cli: &Cli, args: &CampaignsArgs) -> ExitCode {
    match run(cli, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}

fn definition_of(config: &Config, name: &str) -> Option<CampaignDefinition> {
    let campaign = config.campaigns.iter().find(|c| c.name == name)?;
    Some(CampaignDefinition {
        campaign: campaign.clone(),
        agents: config
            .agents
            .iter()
            .filter(|a| a.campaigns.iter().any(|c| c == name))
            .map(|a| a.id.clone())
            .collect(),
    })
}

fn run(cli: &Cli, args: &CampaignsArgs) -> Result<(), Failure> {
    let (config, store) = open_config_and_store(&cli.config)?;
    let store_failure = |e: crate::store::StoreError| Failure::runtime(e.to_string());
    match &args.action {
        CampaignsAction::List => {
            for campaign in &config.campaigns {
                println!(
                    "{}\t{}\t{}",
                    campaign.name,
                    campaign.source.name(),
                    campaign.mode
                );
            }
        }
        CampaignsAction::Show { name } => {
            let definition = definition_of(&config, name)
                .ok_or_else(|| Failure::config(format!("no campaign `{name}`")))?;
            let mut json = definition.to_json();
            if let Some(object) = json.as_object_mut() {
                object.insert("source".into(), definition.campaign.source.name().into());
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        CampaignsAction::Define { file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Failure::config(format!("{}: {e}", file.display())))?;
            let body: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Failure::config(format!("{}: not JSON: {e}", file.display())))?;
            let agents: BTreeSet<String> = config.agents.iter().map(|a| a.id.clone()).collect();
            let definition = CampaignDefinition::from_json(&body, &agents).map_err(|problems| {
                Failure::config(
                    problems
                        .iter()
                        .map(|p| format!("{}: {}", p.key, p.message))
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })?;
            let name = &definition.campaign.name;
            if definition_of(&config, name)
                .is_some_and(|d| d.campaign.source == CampaignSource::File)
            {
                return Err(Failure::config(format!(
                    "campaign `{name}` is defined in {}: change its [[campaign]] table there",
                    cli.config.display()
                )));
            }
            let rules = CampaignRules::from_config(&definition.campaign)
                .map_err(|e| Failure::config(e.to_string()))?;
            store
                .define_campaign(&rules, &definition.to_json().to_string())
                .map_err(store_failure)?;
            println!(
                "campaign `{name}` defined; running dialers take it within {} s",
                crate::api::campaign_admin::DEFINITIONS_POLL.as_secs()
            );
        }
        CampaignsAction::Remove { name } => {
            if definition_of(&config, name)
                .is_some_and(|d| d.campaign.source == CampaignSource::File)
            {
                return Err(Failure::config(format!(
                    "campaign `{name}` is defined in {}: remove its [[campaign]] table there",
                    cli.config.display()
                )));
            }
            if !store
                .forget_campaign_definition(name)
                .map_err(store_failure)?
            {
                return Err(Failure::config(format!(
                    "no campaign defined through the API is named `{name}`"
                )));
            }
            println!(
                "campaign `{name}` removed (its records stay); running dialers drop it within {} s",
                crate::api::campaign_admin::DEFINITIONS_POLL.as_secs()
            );
        }
    }
    Ok(())
}
