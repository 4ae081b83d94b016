//! Streaming a CSV contact list into a campaign: the loop shared by
//! `outdial import` and the supervisor's upload (`POST
//! /api/campaigns/{name}/list`). Rows are parsed by
//! [`crate::campaign::import`] and written in batches, one transaction each;
//! a bad row is reported with its line and never stops the good ones.

use std::io::BufRead;

use jiff::Timestamp;
use serde::Serialize;

use super::{CampaignId, ImportOutcome, Store, StoreError};
use crate::campaign::import::{ImportMapping, ImportReader, ImportRow, Parsed, Rejection};

/// Rows written per store transaction.
const BATCH_ROWS: usize = 1000;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub imported: u64,
    pub updated: u64,
    /// Every rejected row with its line number, in line order.
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole is unusable (empty, bad header, mapping that
    /// names missing columns): nothing was imported.
    #[error("{0}")]
    Layout(String),
    #[error("cannot read the list: {0}")]
    Read(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports every row of `input` (a header line first) into `campaign`.
pub fn import_csv(
    store: &dyn Store,
    campaign: CampaignId,
    input: impl BufRead,
    mapping: &ImportMapping,
    default_region: &str,
) -> Result<ImportSummary, ImportError> {
    let mut reader = ImportReader::new(input, mapping, default_region)
        .map_err(|e| ImportError::Layout(e.to_string()))?;
    let run = store.begin_import(campaign, Timestamp::now())?;
    let mut summary = ImportSummary::default();
    let mut batch: Vec<ImportRow> = Vec::with_capacity(BATCH_ROWS);
    let flush =
        |batch: &mut Vec<ImportRow>, summary: &mut ImportSummary| -> Result<(), StoreError> {
            let outcomes = store.import_batch(campaign, run, batch)?;
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
            .map_err(|e| ImportError::Read(e.to_string()))?;
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
