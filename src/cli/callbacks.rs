//! `outdial callbacks`: scheduled callbacks from the command line, for
//! operators without the API (the same store calls as `/api/callbacks`):
//! `list` the pending ones, `change` one's time, number or agent, `cancel`
//! one (its record goes back to the list).
//!
//! Exit codes: 0 done; 2 bad usage or configuration (a time in the past, a
//! bad number, an unknown agent or campaign); 1 a store failure or an
//! unknown callback.

use std::process::ExitCode;

use super::Cli;
use super::import::Failure;
use crate::campaign::import::e164;
use crate::store::{CallbackFilter, CallbackRequest, CallbackView, Store, StoreError};

#[derive(Debug, clap::Args)]
pub struct CallbacksArgs {
    #[command(subcommand)]
    pub action: CallbacksAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum CallbacksAction {
    /// The pending callbacks, soonest first (id, time, campaign, record,
    /// name, number, agent), tab-separated.
    List {
        #[arg(long)]
        campaign: Option<String>,
        /// Only this agent's personal callbacks.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Move a callback (the whole of it: time, and number and agent if
    /// given; without them the record's numbers and any agent).
    Change {
        id: i64,
        /// RFC 3339, in the future (e.g. 2026-12-24T10:00:00-05:00).
        #[arg(long)]
        at: String,
        /// Call this number (national numbers: the campaign's region).
        #[arg(long)]
        phone: Option<String>,
        /// Only this agent takes it.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Cancel a callback: its record goes back to the list.
    Cancel { id: i64 },
}

pub fn callbacks(cli: &Cli, args: &CallbacksArgs) -> ExitCode {
    match run(cli, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}

fn store_failure(error: StoreError) -> Failure {
    match error {
        StoreError::CallbackInPast { .. } | StoreError::BadNumber(_) => {
            Failure::config(error.to_string())
        }
        other => Failure::runtime(other.to_string()),
    }
}

fn pending(store: &dyn Store, id: i64) -> Result<CallbackView, Failure> {
    store
        .callbacks(&CallbackFilter {
            id: Some(id),
            ..Default::default()
        })
        .map_err(store_failure)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Failure::runtime(format!(
                "no pending callback {id} (unknown, cancelled, or being delivered)"
            ))
        })
}

fn run(cli: &Cli, args: &CallbacksArgs) -> Result<(), Failure> {
    let (config, store) = super::import::open_config_and_store(&cli.config)?;
    match &args.action {
        CallbacksAction::List { campaign, agent } => {
            let campaign = match campaign {
                None => None,
                Some(name) => Some(
                    store
                        .campaign_id(name)
                        .map_err(store_failure)?
                        .ok_or_else(|| Failure::config(format!("no campaign `{name}`")))?,
                ),
            };
            let found = store
                .callbacks(&CallbackFilter {
                    id: None,
                    campaign,
                    agent: agent.clone(),
                    limit: 0,
                })
                .map_err(store_failure)?;
            for c in &found {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    c.id,
                    c.at,
                    c.campaign,
                    c.external_id,
                    c.name,
                    c.phone.as_deref().unwrap_or("-"),
                    c.agent.as_deref().unwrap_or("-"),
                );
            }
            eprintln!("{} pending callback(s)", found.len());
        }
        CallbacksAction::Change {
            id,
            at,
            phone,
            agent,
        } => {
            let callback = pending(&*store, *id)?;
            let at: jiff::Timestamp = at.parse().map_err(|e| {
                Failure::config(format!(
                    "--at {at:?} is not an RFC 3339 time like 2026-12-24T10:00:00-05:00: {e}"
                ))
            })?;
            let region = config
                .campaigns
                .iter()
                .find(|c| c.name == callback.campaign)
                .map_or("US", |c| c.default_region.as_str());
            let phone = phone
                .as_deref()
                .map(|text| {
                    e164(text, region).map_err(|r| Failure::config(format!("--phone: {r}")))
                })
                .transpose()?;
            if let Some(agent) = agent
                && !config.agents.iter().any(|a| &a.id == agent)
            {
                return Err(Failure::config(format!("no agent `{agent}`")));
            }
            let request = CallbackRequest {
                record: callback.record,
                at,
                phone,
                agent: agent.clone(),
            };
            store
                .change_callback(*id, &request, jiff::Timestamp::now())
                .map_err(store_failure)?;
            println!("callback {id} ({}) moved to {at}", callback.external_id);
        }
        CallbacksAction::Cancel { id } => {
            let callback = pending(&*store, *id)?;
            store
                .cancel_callback(*id, jiff::Timestamp::now())
                .map_err(store_failure)?;
            println!(
                "callback {id} ({}) cancelled; the record is back on the list",
                callback.external_id
            );
        }
    }
    Ok(())
}
