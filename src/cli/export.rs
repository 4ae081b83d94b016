//! `outdial export`: a campaign's records with their last result, or
//! (`--attempts`) one row per dial (a CDR), as CSV. Streams; times are
//! RFC 3339 UTC.
//!
//! Exit codes: 0 written; 2 bad usage or configuration; 1 a runtime failure.

use std::process::ExitCode;

use super::Cli;
use super::import::{Failure, open_campaign};
use crate::store::{StoreError, from_ms};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Campaign name (a `[[campaign]]` of the configuration).
    #[arg(long)]
    pub campaign: String,
    /// The CSV file to write.
    #[arg(long, value_name = "FILE.csv")]
    pub out: std::path::PathBuf,
    /// One row per dial attempt instead of one per record.
    #[arg(long)]
    pub attempts: bool,
}

fn time(ms: Option<i64>) -> String {
    ms.map(|ms| from_ms(ms).to_string()).unwrap_or_default()
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
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
    let (_config, _rules, store, campaign) = open_campaign(&cli.config, &args.campaign)?;
    let mut writer = csv::Writer::from_path(&args.out)
        .map_err(|e| Failure::config(format!("cannot write {}: {e}", args.out.display())))?;
    let io = |e: csv::Error| StoreError::Corrupt(format!("writing the CSV: {e}"));
    let rows = if args.attempts {
        writer
            .write_record([
                "attempt_id",
                "external_id",
                "phone",
                "node",
                "started_at",
                "answered_at",
                "ended_at",
                "outcome",
                "sip_code",
                "cpa_verdict",
                "cpa_ms",
                "agent",
                "disposition",
                "notes",
                "abandoned",
                "ring_ms",
                "talk_ms",
                "guide_answers",
            ])
            .map_err(|e| Failure::runtime(e.to_string()))?;
        store.export_attempts(campaign, &mut |a| {
            writer
                .write_record([
                    a.id.to_string(),
                    a.external_id,
                    a.phone,
                    a.node,
                    time(Some(a.started_at)),
                    time(a.answered_at),
                    time(a.ended_at),
                    opt(&a.outcome),
                    opt(&a.sip_code),
                    opt(&a.cpa_verdict),
                    opt(&a.cpa_ms),
                    opt(&a.agent),
                    opt(&a.disposition),
                    opt(&a.notes),
                    u8::from(a.abandoned).to_string(),
                    opt(&a.ring_ms),
                    opt(&a.talk_ms),
                    opt(&a.guide_answers),
                ])
                .map_err(io)
        })
    } else {
        writer
            .write_record([
                "external_id",
                "name",
                "state",
                "attempts",
                "phones",
                "time_zones",
                "priority",
                "next_at",
                "last_outcome",
                "last_sip_code",
                "last_disposition",
                "last_agent",
                "last_attempt_at",
                "custom_fields",
            ])
            .map_err(|e| Failure::runtime(e.to_string()))?;
        store.export_records(campaign, &mut |r| {
            writer
                .write_record([
                    r.external_id,
                    r.name,
                    r.state,
                    r.attempts.to_string(),
                    r.phones.join(";"),
                    r.time_zones,
                    r.priority.to_string(),
                    time(Some(r.next_at).filter(|&t| t > 0)),
                    opt(&r.last_outcome),
                    opt(&r.last_sip_code),
                    opt(&r.last_disposition),
                    opt(&r.last_agent),
                    time(r.last_attempt_at),
                    r.custom_json,
                ])
                .map_err(io)
        })
    }
    .map_err(|e| Failure::runtime(e.to_string()))?;
    writer
        .flush()
        .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", args.out.display())))?;
    Ok(rows)
}
