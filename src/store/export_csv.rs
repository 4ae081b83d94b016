//! A campaign's records (with their last result) or its attempts (one row
//! per dial: the CDR) as CSV, streamed from the store into any writer:
//! `outdial export` writes a file, `GET /api/campaigns/{name}/export` the
//! HTTP response. Times are RFC 3339 UTC.

use std::io::Write;

use super::{CampaignId, Store, StoreError, from_ms};

fn time(ms: Option<i64>) -> String {
    ms.map(|ms| from_ms(ms).to_string()).unwrap_or_default()
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn csv_error(e: csv::Error) -> StoreError {
    StoreError::Corrupt(format!("writing the CSV: {e}"))
}

/// The header, then the rows `export` writes, then a flush; how many rows.
fn write_csv<W: Write>(
    out: W,
    header: &[&str],
    export: impl FnOnce(&mut csv::Writer<W>) -> Result<u64, StoreError>,
) -> Result<u64, StoreError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(header).map_err(csv_error)?;
    let rows = export(&mut writer)?;
    writer
        .flush()
        .map_err(|e| StoreError::Corrupt(format!("writing the CSV: {e}")))?;
    Ok(rows)
}

/// Writes the CDR of `campaign`, oldest dial first; how many rows.
pub fn write_attempts(
    store: &dyn Store,
    campaign: CampaignId,
    out: impl Write,
) -> Result<u64, StoreError> {
    write_csv(
        out,
        &[
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
            "recording",
            "hold_ms",
            "recording_paused_ms",
            "transferred_from",
            "transferred_to",
        ],
        |writer| {
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
                        opt(&a.recording),
                        // Columns added later go last: readers by position
                        // keep working.
                        opt(&a.hold_ms),
                        opt(&a.recording_paused_ms),
                        opt(&a.transferred_from),
                        opt(&a.transferred_to),
                    ])
                    .map_err(csv_error)
            })
        },
    )
}

/// Writes `campaign`'s records with their last result; how many rows.
pub fn write_records(
    store: &dyn Store,
    campaign: CampaignId,
    out: impl Write,
) -> Result<u64, StoreError> {
    write_csv(
        out,
        &[
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
        ],
        |writer| {
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
                    .map_err(csv_error)
            })
        },
    )
}
