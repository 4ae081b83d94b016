//! What the pacer reads from the store: a campaign's live answers and
//! abandons per minute (its abandonment windows across a restart), its
//! recent calls (the outcome and talk models), and its abandonment on every
//! node (the campaign-wide figure).

use jiff::Timestamp;

use super::sql::{Conn, Val};
use super::{AnswerMinute, CampaignId, NodeAbandonment, RecentCall, StoreError, from_ms, ms};
use crate::pacing::ledger::WindowCounts;

/// [`super::Store::answer_history`].
pub(super) fn answer_minutes(
    conn: &mut dyn Conn,
    campaign: CampaignId,
    node: &str,
    since: Timestamp,
    until: Timestamp,
) -> Result<Vec<AnswerMinute>, StoreError> {
    // An abandoned call was a live answer too (its verdict is human,
    // but say so: the count must not hang on the verdict's spelling). A
    // "human" that turned out a machine or a fax (its beep, an agent's
    // voicemail drop) was not, as the pacer takes it back too; the
    // partial index's own predicate is kept as written so it serves.
    // The dial's start stands in for the answer when none was written
    // (abandoned calls have no talk time): at most a ring time earlier.
    Ok(conn
        .query(
            "SELECT COALESCE(answered_at, started_at) / 60000 AS minute, COUNT(*), \
             CAST(SUM(abandoned) AS BIGINT) FROM attempts \
             WHERE campaign_id = $1 AND COALESCE(answered_at, started_at) >= $2 \
             AND started_at < $3 AND node = $4 AND (cpa_verdict = 'human' OR abandoned <> 0) \
             AND NOT (abandoned = 0 AND COALESCE(outcome, '') IN ('machine', 'fax')) \
             GROUP BY minute ORDER BY minute",
            &[
                campaign.into(),
                ms(since).into(),
                ms(until).into(),
                node.into(),
            ],
        )?
        .iter()
        .map(|r| AnswerMinute {
            minute: from_ms(r[0].int().saturating_mul(60_000)),
            live_answers: u64::try_from(r[1].int()).unwrap_or(0),
            abandoned: u64::try_from(r[2].int()).unwrap_or(0),
        })
        .collect())
}

/// [`super::Store::recent_calls`].
pub(super) fn recent_calls(
    conn: &mut dyn Conn,
    campaign: CampaignId,
    since: Timestamp,
    until: Timestamp,
    limit: u32,
) -> Result<Vec<RecentCall>, StoreError> {
    let mut calls: Vec<RecentCall> = conn
        .query(
            "SELECT CASE WHEN answered_at IS NULL THEN ended_at - started_at \
             ELSE answered_at - started_at + COALESCE(cpa_ms, 0) END, \
             CASE WHEN (cpa_verdict = 'human' OR abandoned <> 0) \
             AND NOT (abandoned = 0 AND COALESCE(outcome, '') IN ('machine', 'fax')) \
             THEN 1 ELSE 0 END, \
             talk_ms FROM attempts \
             WHERE campaign_id = $1 AND started_at >= $2 AND started_at < $3 \
             AND ended_at IS NOT NULL AND outcome <> 'interrupted' \
             ORDER BY started_at DESC, id DESC LIMIT $4",
            &[
                campaign.into(),
                ms(since).into(),
                ms(until).into(),
                i64::from(limit).into(),
            ],
        )?
        .iter()
        .map(|r| RecentCall {
            ring_ms: r[0].int().max(0),
            live: r[1].int() != 0,
            talk_ms: r[2].opt_int().filter(|&t| t > 0),
        })
        .collect();
    calls.reverse();
    Ok(calls)
}

/// [`super::Store::abandonment_by_node`].
pub(super) fn abandonment_by_node(
    conn: &mut dyn Conn,
    campaign: CampaignId,
    us_since: Timestamp,
    uk_since: Timestamp,
) -> Result<Vec<NodeAbandonment>, StoreError> {
    let count = |value: &Val| u64::try_from(value.int()).unwrap_or(0);
    Ok(conn
        .query(
            "SELECT node, COUNT(*), CAST(SUM(abandoned) AS BIGINT), \
             CAST(SUM(CASE WHEN COALESCE(answered_at, started_at) >= $3 THEN 1 ELSE 0 END) \
             AS BIGINT), \
             CAST(SUM(CASE WHEN COALESCE(answered_at, started_at) >= $3 THEN abandoned \
             ELSE 0 END) AS BIGINT) FROM attempts \
             WHERE campaign_id = $1 AND COALESCE(answered_at, started_at) >= $2 \
             AND (cpa_verdict = 'human' OR abandoned <> 0) \
             AND NOT (abandoned = 0 AND COALESCE(outcome, '') IN ('machine', 'fax')) \
             GROUP BY node ORDER BY node",
            &[campaign.into(), ms(us_since).into(), ms(uk_since).into()],
        )?
        .iter()
        .map(|r| NodeAbandonment {
            node: r[0].text(),
            us: WindowCounts {
                live_answers: count(&r[1]),
                abandoned: count(&r[2]),
            },
            uk: WindowCounts {
                live_answers: count(&r[3]),
                abandoned: count(&r[4]),
            },
        })
        .collect())
}
