//! The store's logic, written once over [`Conn`]: import, the hopper's
//! transaction, attempts, recovery, callbacks, DNC, dispositions, export.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use jiff::Timestamp;

use super::migrations::Flavor;
use super::sql::{Conn, Val, in_tx, placeholders};
use super::{
    AnswerMinute, AttemptId, AttemptResult, AttemptView, CallbackFilter, CallbackId,
    CallbackRequest, CallbackView, CampaignId, ImportOutcome, Lease, LeaseRequest, NodeClaim,
    NotDialable, RecordId, RecordView, Recovery, Release, Store, StoreError, from_ms, ms,
};
use crate::agent::activity::{LOGGED_OUT, StateChange};
use crate::campaign::hopper::{
    Candidate, CandidatePhone, Decision, PendingCallback, RECENT_ATTEMPTS_SPAN, decide,
};
use crate::campaign::import::ImportRow;
use crate::campaign::model::{Disposition, DispositionEffect, Outcome, RecordState};
use crate::campaign::rules::{CampaignRules, after_attempt};
use crate::campaign::window::parse_zones;

/// SIP 607 Unwanted (RFC 8197).
const UNWANTED: u16 = 607;

/// Rows per multi-row statement in an import batch.
const IMPORT_CHUNK: usize = 500;

/// The stored outcomes of [`Outcome::callee_not_reached`], for SQL.
const NOT_REACHED_SQL: &str = "('congestion', 'network_failure', 'trunk_refused')";

/// How many times a callback is dialed again because its call was
/// abandoned: with 2, the third abandoned delivery ends it.
pub const CALLBACK_REDIALS_AFTER_ABANDON: i64 = 2;

/// How long a record whose number needs a guaranteed agent waits when a
/// lease request skips it (`LeaseRequest::skip_agent_required`).
const SKIPPED_AGENT_REQUIRED_DELAY: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// The record's abandoned attempts since `since_ms` (this one included:
/// its row is written first).
fn abandoned_since(conn: &mut dyn Conn, record: i64, since_ms: i64) -> Result<i64, StoreError> {
    Ok(first_int(&conn.query(
        "SELECT COUNT(*) FROM attempts WHERE record_id = $1 AND abandoned = 1 AND started_at >= $2",
        &[record.into(), since_ms.into()],
    )?)
    .unwrap_or(0))
}

/// An attempt that went no further than the trunk or the network (a 403 of
/// a wrong password, a 503, no response at all) and was never answered does
/// not count against the record's or the number's attempt limits: a trunk
/// incident must not use up the list. Only the first `max_attempts` such
/// attempts of a record are given back, so a number that never gets
/// through still ends. The daily limit keeps counting every dial (the
/// conservative reading of "calls per day" rules).
fn give_back_attempt(
    conn: &mut dyn Conn,
    rules: &CampaignRules,
    record: i64,
    phone: &str,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT COUNT(*) FROM attempts WHERE record_id = $1 AND ring_ms IS NULL \
         AND outcome IN {NOT_REACHED_SQL}"
    );
    let not_reached = first_int(&conn.query(&sql, &[record.into()])?).unwrap_or(i64::MAX);
    if not_reached > i64::from(rules.max_attempts) {
        return Ok(());
    }
    conn.exec(
        "UPDATE records SET attempts = attempts - 1 WHERE id = $1 AND attempts > 0",
        &[record.into()],
    )?;
    conn.exec(
        "UPDATE phones SET attempts = attempts - 1 \
         WHERE record_id = $1 AND e164 = $2 AND attempts > 0",
        &[record.into(), phone.into()],
    )?;
    Ok(())
}

/// The state a record returns to when a lease ends without an attempt.
const RESTORE_STATE: &str = "CASE WHEN callback_id IS NOT NULL THEN 'callback' \
     WHEN attempts = 0 THEN 'new' ELSE 'retry' END";

/// The store over one connection (SQLite or PostgreSQL).
pub struct SqlStore {
    conn: Mutex<Box<dyn Conn>>,
    flavor: Flavor,
    rules: Mutex<HashMap<CampaignId, CampaignRules>>,
}

impl SqlStore {
    pub(super) fn new(conn: Box<dyn Conn>, flavor: Flavor) -> SqlStore {
        SqlStore {
            conn: Mutex::new(conn),
            flavor,
            rules: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.flavor == Flavor::Postgres
    }

    /// Runs `body` in one transaction on the connection.
    /// Creates the campaign or updates its rules and own dispositions (and,
    /// for a campaign defined through the API, its definition; a `None`
    /// leaves a stored definition as it is); returns its id.
    fn upsert_campaign(
        &self,
        rules: &CampaignRules,
        definition: Option<&str>,
    ) -> Result<CampaignId, StoreError> {
        let json = serde_json::to_string(rules).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id = self.tx(|conn| {
            let rows = match definition {
                None => conn.query(
                    "INSERT INTO campaigns (name, rules_json) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET rules_json = excluded.rules_json \
                     RETURNING id",
                    &[rules.name.as_str().into(), json.clone().into()],
                )?,
                Some(definition) => conn.query(
                    "INSERT INTO campaigns (name, rules_json, definition) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET rules_json = excluded.rules_json, \
                     definition = excluded.definition RETURNING id",
                    &[
                        rules.name.as_str().into(),
                        json.clone().into(),
                        definition.into(),
                    ],
                )?,
            };
            let id =
                first_int(&rows).ok_or_else(|| StoreError::Corrupt("no campaign id".into()))?;
            upsert_dispositions(conn, id, &rules.dispositions)?;
            Ok(id)
        })?;
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, rules.clone());
        Ok(id)
    }

    fn tx<T>(
        &self,
        body: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        in_tx(conn.as_mut(), body)
    }

    fn rules(
        &self,
        conn: &mut dyn Conn,
        campaign: CampaignId,
    ) -> Result<CampaignRules, StoreError> {
        if let Some(rules) = self
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&campaign)
        {
            return Ok(rules.clone());
        }
        let rows = conn.query(
            "SELECT rules_json FROM campaigns WHERE id = $1",
            &[campaign.into()],
        )?;
        let json = rows
            .first()
            .and_then(|r| r.first())
            .map(Val::text)
            .ok_or_else(|| StoreError::UnknownCampaign(format!("#{campaign}")))?;
        let rules: CampaignRules =
            serde_json::from_str(&json).map_err(|e| StoreError::Rules(campaign, e.to_string()))?;
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(campaign, rules.clone());
        Ok(rules)
    }

    /// Whether a leased record's number may still be dialed at `now`: not
    /// on the global or the campaign's do-not-call list, and inside the
    /// campaign's calling window in the contact's zones (a callback too).
    /// If not, why, and when the window opens again (if it closed).
    fn not_dialable_now(
        &self,
        conn: &mut dyn Conn,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<Option<(NotDialable, Option<Timestamp>)>, StoreError> {
        let on_dnc = conn.query(
            "SELECT e164 FROM dnc WHERE campaign_id IN (0, $1) AND e164 = $2",
            &[lease.campaign.into(), lease.phone.as_str().into()],
        )?;
        if !on_dnc.is_empty() {
            return Ok(Some((NotDialable::DoNotCall, None)));
        }
        let rules = self.rules(conn, lease.campaign)?;
        // The lease's zones were read from the store and parsed by the
        // hopper; an unreadable one is never dialed.
        let Ok(zones) = parse_zones(&lease.time_zones) else {
            return Ok(Some((NotDialable::WindowClosed, None)));
        };
        if rules.window.is_open(&zones, now) {
            return Ok(None);
        }
        let opens = rules.window.next_open(&zones, now);
        Ok(Some((NotDialable::WindowClosed, opens)))
    }

    /// Closes an attempt and moves its record on; shared by the engine's
    /// completion and by crash recovery.
    fn complete_in_tx(
        &self,
        conn: &mut dyn Conn,
        attempt: AttemptId,
        result: &AttemptResult,
        now: Timestamp,
    ) -> Result<RecordState, StoreError> {
        let rows = conn.query(
            "SELECT record_id, campaign_id, phone, node, ended_at, outcome, started_at \
             FROM attempts WHERE id = $1",
            &[attempt.into()],
        )?;
        let row = rows.first().ok_or(StoreError::UnknownAttempt(attempt))?;
        let (record, campaign, phone, node) =
            (row[0].int(), row[1].int(), row[2].text(), row[3].text());
        let started_at = row[6].int();
        // An attempt a recovery closed as `interrupted` (its node was
        // thought gone: restarted, or its lease lapsed and another node
        // resolved it) is amended by the node's real result when that
        // comes after all, from its retries or its row spool: the agent's
        // disposition, a do-not-call, a sale must not be lost to a guess.
        let amending = row[4].opt_int().is_some();
        if amending
            && (row[5].opt_text().as_deref() != Some(Outcome::Interrupted.as_str())
                || result.outcome == Outcome::Interrupted)
        {
            return Err(StoreError::AttemptAlreadyComplete(attempt));
        }
        let rules = self.rules(conn, campaign)?;
        let effect = match &result.disposition {
            // The "do not call" box wins over the code's own effect (a
            // sale to a person who wants no more calls).
            _ if result.do_not_call => Some(DispositionEffect::DoNotCall),
            Some(code) => Some(disposition_effect(conn, campaign, code)?),
            None => None,
        };
        let ended = result.ended_at.unwrap_or(now);
        conn.exec(
            "UPDATE attempts SET answered_at = $2, ended_at = $3, outcome = $4, sip_code = $5, \
             cpa_verdict = $6, cpa_ms = $7, agent = $8, disposition = $9, notes = $10, \
             abandoned = $11, ring_ms = $12, talk_ms = $13, guide_answers = $14, \
             recording = COALESCE($15, recording), hold_ms = $16, recording_paused_ms = $17, \
             transferred_from = $18, transferred_to = $19 \
             WHERE id = $1",
            &[
                attempt.into(),
                result.answered_at.map(ms).into(),
                ms(ended).into(),
                result.outcome.as_str().into(),
                result.sip_code.map(i64::from).into(),
                result.cpa_verdict.clone().into(),
                result.cpa_ms.into(),
                result.agent.clone().into(),
                result.disposition.clone().into(),
                result.notes.clone().into(),
                result.abandoned.into(),
                result.ring_ms.into(),
                result.talk_ms.into(),
                result.guide_answers.clone().into(),
                result.recording.clone().into(),
                result.hold_ms.into(),
                result.recording_paused_ms.into(),
                result.transferred_from.clone().into(),
                result.transferred_to.clone().into(),
            ],
        )?;
        if result.outcome.kills_number() || effect == Some(DispositionEffect::DeadNumber) {
            conn.exec(
                "UPDATE phones SET dead = 1 WHERE record_id = $1 AND e164 = $2",
                &[record.into(), phone.clone().into()],
            )?;
        }
        // RFC 8197: the called party marked the call unwanted, and "future
        // attempts from the calling party are likely to be similarly
        // rejected" — their request not to be called, kept as a
        // do-not-call for the campaign (below); the record goes on with its
        // other numbers (removed when none is left).
        let unwanted = result.outcome == Outcome::Declined && result.sip_code == Some(UNWANTED);
        if result.outcome.callee_not_reached() && result.ring_ms.is_none() {
            give_back_attempt(conn, &rules, record, &phone)?;
        }
        if let Some(window) = rules.repeat_calls.agent_required_for(
            result.outcome,
            result.abandoned,
            result.agent.is_some(),
        ) {
            // Whoever dials this number next, before then, reserves an
            // agent for it first (a later mark never shortens an earlier).
            let until = ended.checked_add(window).unwrap_or(ended);
            conn.exec(
                "INSERT INTO agent_required (e164, until) VALUES ($1, $2) \
                 ON CONFLICT (e164) DO UPDATE SET until = excluded.until \
                 WHERE agent_required.until < excluded.until",
                &[phone.clone().into(), ms(until).into()],
            )?;
        }
        let rows = conn.query(
            "SELECT state, lease_owner, attempts, callback_id FROM records WHERE id = $1",
            &[record.into()],
        )?;
        let row = rows.first().ok_or(StoreError::UnknownRecord(record))?;
        let (state, owner, attempts, callback) = (
            row[0].text(),
            row[1].opt_text(),
            row[2].int(),
            row[3].opt_int(),
        );
        let usable = conn.query(
            "SELECT COUNT(*) FROM phones WHERE record_id = $1 AND dead = 0 AND attempts < $2",
            &[record.into(), rules.max_attempts_per_number.into()],
        )?;
        let usable = usable
            .first()
            .and_then(|r| r.first())
            .map(Val::int)
            .unwrap_or(0);
        let step = after_attempt(
            &rules,
            result.outcome,
            effect,
            u32::try_from(attempts).unwrap_or(u32::MAX),
            u32::try_from(usable).unwrap_or(0),
            now,
        );
        if step.add_dnc || unwanted {
            conn.exec(
                "INSERT INTO dnc (campaign_id, e164, added_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (campaign_id, e164) DO NOTHING",
                &[campaign.into(), phone.clone().into(), ms(now).into()],
            )?;
        }
        // An amended attempt speaks for its record only while it is the
        // record's latest one and nobody has leased the record since.
        let superseded = amending
            && (state == "leased"
                || first_int(&conn.query(
                    "SELECT COUNT(*) FROM attempts WHERE record_id = $1 AND id > $2",
                    &[record.into(), attempt.into()],
                )?)
                .unwrap_or(0)
                    > 0);
        if !superseded {
            conn.exec(
                "UPDATE records SET last_outcome = $2, last_sip_code = $3, last_disposition = $4, \
                 last_agent = $5 WHERE id = $1",
                &[
                    record.into(),
                    result.outcome.as_str().into(),
                    result.sip_code.map(i64::from).into(),
                    result.disposition.clone().into(),
                    result.agent.clone().into(),
                ],
            )?;
        }
        let ours = if amending {
            !superseded
        } else {
            state == "leased" && owner.as_deref() == Some(node.as_str())
        };
        if !ours {
            // The lease lapsed and was resolved elsewhere (or the record
            // has been dialed again since): the attempt is on record, the
            // record's state is not ours to change.
            return RecordState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("record state `{state}`")));
        }
        let mut next_state = step.state;
        let mut next_at = step.next_at;
        if let Some(wait) = result.callee_retry_after {
            // The callee of this number asked for a pause: the number waits
            // (the hopper passes it over until then); so does the record,
            // unless another of its numbers may be dialed before.
            let wait = wait.clamp(jiff::SignedDuration::ZERO, super::CALLEE_RETRY_AFTER_MAX);
            let held_until = now.checked_add(wait).unwrap_or(next_at);
            conn.exec(
                "UPDATE phones SET hold_until = $3 WHERE record_id = $1 AND e164 = $2",
                &[record.into(), phone.clone().into(), ms(held_until).into()],
            )?;
            // When the record's first usable number is free again: this
            // one's hold, or another's (its own hold, if any, over).
            let others = conn.query(
                "SELECT COUNT(*), MIN(COALESCE(hold_until, 0)) FROM phones \
                 WHERE record_id = $1 AND e164 <> $2 AND dead = 0 AND attempts < $3",
                &[
                    record.into(),
                    phone.clone().into(),
                    rules.max_attempts_per_number.into(),
                ],
            )?;
            let other_free_at = others
                .first()
                .filter(|r| r.first().map(Val::int).unwrap_or(0) > 0)
                .and_then(|r| r.get(1))
                .and_then(Val::opt_int)
                .map(from_ms);
            let first_free = other_free_at.map_or(held_until, |at| at.min(held_until));
            next_at = next_at.max(first_free);
        }
        let mut rank = 1;
        let mut callback_keep = None;
        if let Some(cb) = callback {
            let rows = conn.query(
                "SELECT state, at, created_at FROM callbacks WHERE id = $1",
                &[cb.into()],
            )?;
            let (cb_state, at, created_at) = rows
                .first()
                .map(|r| (r[0].text(), r[1].int(), r[2].int()))
                .unwrap_or_default();
            // The callback this very call was placed for, set pending
            // again by a recovery that closed the call as interrupted
            // (below), and now amended by the call's real result.
            let rearmed_by_recovery = amending && cb_state == "pending" && created_at < started_at;
            let delivering = cb_state == "delivering" || rearmed_by_recovery;
            // The promise to the customer was not kept: the dialer stopped
            // before anyone answered, or a live person answered and found
            // no agent (they heard the abandon message, and the call they
            // asked for has not happened) — the latter a bounded number of
            // times, so a campaign that keeps abandoning cannot ring one
            // record for ever.
            let not_kept = delivering
                && next_state != RecordState::Removed
                && ((result.outcome == Outcome::Interrupted && result.answered_at.is_none())
                    || (result.abandoned
                        && abandoned_since(conn, record, created_at)?
                            <= CALLBACK_REDIALS_AFTER_ABANDON));
            if cb_state == "pending" && !rearmed_by_recovery && next_state != RecordState::Removed {
                // Scheduled during this call: it wins over the retry rule.
                next_state = RecordState::Callback;
                next_at = from_ms(at);
                rank = 0;
                callback_keep = Some(cb);
            } else if not_kept {
                // It stays (with its agent and number, before the list),
                // due again after the call's retry delay, never at once.
                conn.exec(
                    "UPDATE callbacks SET state = 'pending' WHERE id = $1",
                    &[cb.into()],
                )?;
                next_state = RecordState::Callback;
                let delay = now.checked_add(rules.retry_delay(result.outcome));
                next_at = next_at.max(delay.unwrap_or(now));
                rank = 0;
                callback_keep = Some(cb);
            } else if delivering {
                conn.exec(
                    "UPDATE callbacks SET state = 'done' WHERE id = $1",
                    &[cb.into()],
                )?;
            } else {
                conn.exec(
                    "UPDATE callbacks SET state = CASE WHEN state = 'pending' THEN 'cancelled' \
                     ELSE 'done' END WHERE id = $1",
                    &[cb.into()],
                )?;
            }
        }
        let closed_reason = match next_state {
            RecordState::Exhausted => Some("attempts or numbers used up"),
            RecordState::Removed => Some("do not call"),
            RecordState::Done => Some("final disposition"),
            _ => None,
        };
        conn.exec(
            "UPDATE records SET state = $2, next_at = $3, rank = $4, lease_owner = NULL, \
             lease_until = NULL, leased_phone = NULL, closed_reason = $5, callback_id = CAST($6 AS BIGINT), \
             callback_agent = CASE WHEN CAST($6 AS BIGINT) IS NULL THEN NULL \
             ELSE callback_agent END \
             WHERE id = $1",
            &[
                record.into(),
                next_state.as_str().into(),
                ms(next_at).into(),
                Val::Int(rank),
                closed_reason.into(),
                callback_keep.into(),
            ],
        )?;
        conn.exec(
            "DELETE FROM active_numbers WHERE record_id = $1",
            &[record.into()],
        )?;
        Ok(next_state)
    }

    /// Gives a lapsed or unused lease back; returns whether an attempt was
    /// in flight (then closed as interrupted).
    fn resolve_lease(
        &self,
        conn: &mut dyn Conn,
        record: RecordId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let in_flight = conn.query(
            "SELECT id, answered_at, cpa_verdict, agent, abandoned FROM attempts \
             WHERE record_id = $1 AND ended_at IS NULL",
            &[record.into()],
        )?;
        if in_flight.is_empty() {
            restore(conn, record)?;
            return Ok(false);
        }
        for row in in_flight {
            // What the call had become when the dialer stopped stays: a
            // live answer no agent took was abandoned (`attempt_live`).
            let mut result = AttemptResult::new(Outcome::Interrupted);
            result.answered_at = row[1].opt_int().map(from_ms);
            result.cpa_verdict = row[2].opt_text();
            result.agent = row[3].opt_text();
            result.abandoned = row[4].opt_int().is_some_and(|v| v != 0);
            result.notes = Some(if result.abandoned {
                "the dialer stopped while this live answer waited for an agent: abandoned".into()
            } else {
                "the dialer stopped during this call; its result is unknown".into()
            });
            self.complete_in_tx(conn, row[0].int(), &result, now)?;
        }
        Ok(true)
    }
}

fn restore(conn: &mut dyn Conn, record: RecordId) -> Result<(), StoreError> {
    // A callback scheduled while the record was leased (on a preview
    // screen, in the engine's buffer) is due at its time, first in the
    // hopper: a lease ending without a call must not make it due at once
    // (it used to keep the record's old, past `next_at`).
    conn.exec(
        "UPDATE records SET rank = 0, next_at = (SELECT at FROM callbacks \
         WHERE callbacks.id = records.callback_id) \
         WHERE id = $1 AND state = 'leased' AND EXISTS (SELECT 1 FROM callbacks \
         WHERE callbacks.id = records.callback_id AND callbacks.state IN ('pending', 'delivering'))",
        &[record.into()],
    )?;
    conn.exec(
        &format!(
            "UPDATE records SET state = {RESTORE_STATE}, lease_owner = NULL, lease_until = NULL, \
             leased_phone = NULL WHERE id = $1 AND state = 'leased'"
        ),
        &[record.into()],
    )?;
    conn.exec(
        "UPDATE callbacks SET state = 'pending' WHERE state = 'delivering' AND id = \
         (SELECT callback_id FROM records WHERE id = $1)",
        &[record.into()],
    )?;
    conn.exec(
        "DELETE FROM active_numbers WHERE record_id = $1",
        &[record.into()],
    )?;
    Ok(())
}

/// `LeaseLost` unless `lease`'s record is still leased by its node.
fn ensure_leased_by(conn: &mut dyn Conn, lease: &Lease) -> Result<(), StoreError> {
    let owned = conn.query(
        "SELECT id FROM records WHERE id = $1 AND state = 'leased' AND lease_owner = $2",
        &[lease.record_id.into(), lease.node.as_str().into()],
    )?;
    if owned.is_empty() {
        return Err(StoreError::LeaseLost {
            record: lease.record_id,
            node: lease.node.clone(),
        });
    }
    Ok(())
}

/// Gives a lease back as `how` says, inside the caller's transaction.
fn release_in_tx(
    conn: &mut dyn Conn,
    lease: &Lease,
    how: Release,
    now: Timestamp,
) -> Result<(), StoreError> {
    ensure_leased_by(conn, lease)?;
    if how == Release::Declined {
        // Back to the top of its priority: before everything queued.
        conn.exec(
            "UPDATE records SET queue_pos = $2, next_at = 0 WHERE id = $1",
            &[lease.record_id.into(), Val::Int(-ms(now))],
        )?;
    }
    restore(conn, lease.record_id)?;
    if matches!(how, Release::Removed | Release::DoNotCall) {
        conn.exec(
            "UPDATE records SET state = 'removed' WHERE id = $1",
            &[lease.record_id.into()],
        )?;
        conn.exec(
            "UPDATE callbacks SET state = 'cancelled' \
                     WHERE record_id = $1 AND state IN ('pending', 'delivering')",
            &[lease.record_id.into()],
        )?;
    }
    if how == Release::DoNotCall {
        conn.exec(
            "INSERT INTO dnc (campaign_id, e164, added_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (campaign_id, e164) DO NOTHING",
            &[
                lease.campaign.into(),
                lease.phone.as_str().into(),
                ms(now).into(),
            ],
        )?;
    }
    Ok(())
}

/// Schedules a callback for a record (its earlier pending one replaced),
/// inside the caller's transaction.
fn schedule_in_tx(
    conn: &mut dyn Conn,
    request: &CallbackRequest,
    now: Timestamp,
) -> Result<CallbackId, StoreError> {
    let rows = conn.query(
        "SELECT state FROM records WHERE id = $1",
        &[request.record.into()],
    )?;
    let state = rows
        .first()
        .map(|r| r[0].text())
        .ok_or(StoreError::UnknownRecord(request.record))?;
    if state == "removed" {
        return Err(StoreError::RecordRemoved(request.record));
    }
    if let Some(phone) = &request.phone {
        ensure_phone(conn, request.record, phone)?;
    }
    conn.exec(
        "UPDATE callbacks SET state = CASE WHEN state = 'pending' THEN 'cancelled' \
             ELSE 'done' END WHERE record_id = $1 AND state IN ('pending', 'delivering')",
        &[request.record.into()],
    )?;
    let rows = conn.query(
        "INSERT INTO callbacks (record_id, at, phone, agent, state, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5) RETURNING id",
        &[
            request.record.into(),
            ms(request.at).into(),
            request.phone.clone().into(),
            request.agent.clone().into(),
            ms(now).into(),
        ],
    )?;
    let id = first_int(&rows).ok_or_else(|| StoreError::Corrupt("no callback id".into()))?;
    if state == "leased" {
        // The call is still up: completion turns the record into a callback.
        conn.exec(
            "UPDATE records SET callback_id = $2, callback_agent = $3 WHERE id = $1",
            &[
                request.record.into(),
                id.into(),
                request.agent.clone().into(),
            ],
        )?;
    } else {
        conn.exec(
            "UPDATE records SET state = 'callback', next_at = $2, rank = 0, \
                 callback_id = $3, callback_agent = $4, closed_reason = NULL WHERE id = $1",
            &[
                request.record.into(),
                ms(request.at).into(),
                id.into(),
                request.agent.clone().into(),
            ],
        )?;
    }
    Ok(id)
}

/// Writes a campaign's own dispositions (codes it no longer lists stay:
/// earlier attempts name them; the engine offers agents only the listed).
fn upsert_dispositions(
    conn: &mut dyn Conn,
    campaign: CampaignId,
    dispositions: &[Disposition],
) -> Result<(), StoreError> {
    for disposition in dispositions {
        conn.exec(
            "INSERT INTO dispositions (campaign_id, code, label, effect) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (campaign_id, code) DO UPDATE SET label = excluded.label, \
             effect = excluded.effect",
            &[
                campaign.into(),
                disposition.code.as_str().into(),
                disposition.label.as_str().into(),
                disposition.effect.as_str().into(),
            ],
        )?;
    }
    Ok(())
}

fn disposition_effect(
    conn: &mut dyn Conn,
    campaign: CampaignId,
    code: &str,
) -> Result<DispositionEffect, StoreError> {
    let rows = conn.query(
        "SELECT effect FROM dispositions WHERE code = $1 AND campaign_id IN (0, $2) \
         ORDER BY campaign_id DESC",
        &[code.into(), campaign.into()],
    )?;
    rows.first()
        .and_then(|r| DispositionEffect::parse(&r[0].text()))
        .ok_or_else(|| StoreError::UnknownDisposition(code.to_string()))
}

fn valid_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

fn first_int(rows: &[Vec<Val>]) -> Option<i64> {
    rows.first().and_then(|r| r.first()).and_then(Val::opt_int)
}

fn ids_params(ids: &[i64]) -> Vec<Val> {
    ids.iter().map(|&i| Val::Int(i)).collect()
}

const RECORD_COLUMNS: &str = "r.id, r.external_id, r.name, r.custom_json, r.time_zones, \
     r.priority, r.state, r.attempts, r.next_at, r.last_outcome, r.last_sip_code, \
     r.last_disposition, r.last_agent, r.last_attempt_at";

fn record_view(row: &[Val]) -> RecordView {
    RecordView {
        id: row[0].int(),
        external_id: row[1].text(),
        name: row[2].text(),
        custom_json: row[3].text(),
        time_zones: row[4].text(),
        priority: row[5].int(),
        state: row[6].text(),
        attempts: u32::try_from(row[7].int()).unwrap_or(0),
        next_at: row[8].int(),
        phones: Vec::new(),
        last_outcome: row[9].opt_text(),
        last_sip_code: row[10].opt_int(),
        last_disposition: row[11].opt_text(),
        last_agent: row[12].opt_text(),
        last_attempt_at: row[13].opt_int(),
    }
}

impl Store for SqlStore {
    fn sync_campaign(&self, rules: &CampaignRules) -> Result<CampaignId, StoreError> {
        self.upsert_campaign(rules, None)
    }

    fn campaign_id(&self, name: &str) -> Result<Option<CampaignId>, StoreError> {
        self.tx(|conn| {
            let rows = conn.query("SELECT id FROM campaigns WHERE name = $1", &[name.into()])?;
            Ok(first_int(&rows))
        })
    }

    fn define_campaign(
        &self,
        rules: &CampaignRules,
        definition: &str,
    ) -> Result<CampaignId, StoreError> {
        self.upsert_campaign(rules, Some(definition))
    }

    fn campaign_definitions(&self) -> Result<Vec<super::StoredDefinition>, StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                "SELECT id, name, definition FROM campaigns WHERE definition IS NOT NULL \
                 ORDER BY name",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|row| super::StoredDefinition {
                    id: row.first().map(Val::int).unwrap_or_default(),
                    name: row.get(1).map(Val::text).unwrap_or_default(),
                    definition: row.get(2).map(Val::text).unwrap_or_default(),
                })
                .collect())
        })
    }

    fn forget_campaign_definition(&self, name: &str) -> Result<bool, StoreError> {
        self.tx(|conn| {
            let changed = conn.exec(
                "UPDATE campaigns SET definition = NULL WHERE name = $1 AND definition IS NOT NULL",
                &[name.into()],
            )?;
            Ok(changed > 0)
        })
    }

    fn record_run_command(
        &self,
        campaign: &str,
        command: &str,
        node: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                "INSERT INTO run_commands (campaign, command, node, at) VALUES ($1, $2, $3, $4) \
                 RETURNING id",
                &[campaign.into(), command.into(), node.into(), ms(at).into()],
            )?;
            first_int(&rows).ok_or_else(|| StoreError::Corrupt("no run command id".into()))
        })
    }

    fn run_commands_after(&self, after: i64) -> Result<Vec<super::StoredRunCommand>, StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                "SELECT id, campaign, command, node FROM run_commands WHERE id > $1 \
                 ORDER BY id LIMIT 1000",
                &[after.into()],
            )?;
            Ok(rows
                .iter()
                .map(|row| super::StoredRunCommand {
                    id: row.first().map(Val::int).unwrap_or_default(),
                    campaign: row.get(1).map(Val::text).unwrap_or_default(),
                    command: row.get(2).map(Val::text).unwrap_or_default(),
                    node: row.get(3).map(Val::text).unwrap_or_default(),
                })
                .collect())
        })
    }

    fn claim_trunk_share(
        &self,
        node: &str,
        demand: crate::pacing::trunk_share::TrunkDemand,
        max_lines: u32,
        now: Timestamp,
        live_since: Timestamp,
    ) -> Result<crate::pacing::trunk_share::TrunkShare, StoreError> {
        use crate::pacing::trunk_share::{NodeClaim, TrunkDemand, divide};
        let postgres = self.is_postgres();
        self.tx(|conn| {
            if postgres {
                // One claim at a time across the nodes: each is made against
                // the others' latest (SQLite transactions are serial already).
                conn.batch("LOCK TABLE trunk_shares IN SHARE ROW EXCLUSIVE MODE")?;
            }
            let rows = conn.query(
                "SELECT in_use, wanted, granted FROM trunk_shares WHERE node <> $1 AND at >= $2",
                &[node.into(), ms(live_since).into()],
            )?;
            let count = |v: Option<&Val>| u32::try_from(v.map(Val::int).unwrap_or(0)).unwrap_or(0);
            let others: Vec<NodeClaim> = rows
                .iter()
                .map(|row| NodeClaim {
                    demand: TrunkDemand {
                        in_use: count(row.first()),
                        wanted: count(row.get(1)),
                    },
                    granted: count(row.get(2)),
                })
                .collect();
            let share = divide(max_lines, demand, &others);
            // Until this node's engine has the new grant it may still dial
            // under its last one (the answer to this claim is on its way):
            // the others count that grant as held until the next claim
            // reports what is really in use. (A shrinking grant stored as is
            // let another node take the same lines for a second: six calls
            // on a trunk of four.)
            let granted_before = conn
                .query(
                    "SELECT granted FROM trunk_shares WHERE node = $1",
                    &[node.into()],
                )?
                .first()
                .map(|row| count(row.first()))
                .unwrap_or(0);
            let may_be_in_use = demand.in_use.max(granted_before);
            conn.exec(
                "INSERT INTO trunk_shares (node, in_use, wanted, granted, at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node) DO UPDATE SET \
                 in_use = excluded.in_use, wanted = excluded.wanted, \
                 granted = excluded.granted, at = excluded.at",
                &[
                    node.into(),
                    i64::from(may_be_in_use).into(),
                    i64::from(demand.wanted).into(),
                    i64::from(share.lines).into(),
                    ms(now).into(),
                ],
            )?;
            Ok(share)
        })
    }

    fn share_trunk_hold(
        &self,
        node: &str,
        until: Option<Timestamp>,
        now: Timestamp,
        all_nodes: bool,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.tx(|conn| {
            // Asked every second: a node with no hold only reads.
            if let Some(until) = until {
                conn.exec(
                    "DELETE FROM trunk_holds WHERE until <= $1",
                    &[ms(now).into()],
                )?;
                conn.exec(
                    "INSERT INTO trunk_holds (node, until) VALUES ($1, $2) \
                     ON CONFLICT (node) DO UPDATE SET until = \
                     CASE WHEN excluded.until > trunk_holds.until THEN excluded.until \
                     ELSE trunk_holds.until END",
                    &[node.into(), ms(until).into()],
                )?;
            }
            let rows = if all_nodes {
                conn.query("SELECT MAX(until) FROM trunk_holds", &[])?
            } else {
                conn.query(
                    "SELECT MAX(until) FROM trunk_holds WHERE node = $1",
                    &[node.into()],
                )?
            };
            Ok(rows
                .first()
                .and_then(|r| r.first())
                .and_then(Val::opt_int)
                .map(from_ms)
                .filter(|until| *until > now))
        })
    }

    fn claim_node(
        &self,
        node: &str,
        instance: &str,
        now: Timestamp,
        replace: Option<&str>,
    ) -> Result<NodeClaim, StoreError> {
        self.tx(|conn| super::presence::claim(conn, node, instance, now, replace))
    }

    fn node_heartbeat(
        &self,
        node: &str,
        instance: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.tx(|conn| super::presence::heartbeat(conn, node, instance, now))
    }

    fn release_node(&self, node: &str, instance: &str) -> Result<(), StoreError> {
        self.tx(|conn| super::presence::release(conn, node, instance))
    }

    fn nodes(&self) -> Result<Vec<super::NodePresence>, StoreError> {
        self.tx(super::presence::list)
    }

    fn release_trunk_share(&self, node: &str) -> Result<(), StoreError> {
        self.tx(|conn| {
            conn.exec("DELETE FROM trunk_shares WHERE node = $1", &[node.into()])?;
            Ok(())
        })
    }

    fn last_run_command(&self) -> Result<i64, StoreError> {
        self.tx(|conn| {
            let rows = conn.query("SELECT MAX(id) FROM run_commands", &[])?;
            Ok(rows
                .first()
                .and_then(|r| r.first())
                .and_then(Val::opt_int)
                .unwrap_or(0))
        })
    }

    fn begin_import(&self, campaign: CampaignId, now: Timestamp) -> Result<i64, StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                "INSERT INTO import_runs (campaign_id, started_at) VALUES ($1, $2) RETURNING id",
                &[campaign.into(), ms(now).into()],
            )?;
            first_int(&rows).ok_or_else(|| StoreError::Corrupt("no import run id".into()))
        })
    }

    fn import_batch(
        &self,
        campaign: CampaignId,
        run: i64,
        rows: &[ImportRow],
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let postgres = self.is_postgres();
        self.tx(|conn| {
            if postgres {
                // The import's statements are prepared once and run once per
                // chunk; after five runs PostgreSQL may switch to a generic
                // plan chosen from the statistics of that moment. The table
                // grows by the whole list during one import, so a plan
                // chosen while it was small (a sequential scan for the
                // lookup of existing records) stayed in use as it grew:
                // a 100,000-row import took minutes, not seconds. Planning
                // each chunk's statements afresh costs under a millisecond.
                // Only for this transaction: the hopper's short statements,
                // run thousands of times a minute, keep their cached plans.
                conn.batch("SET LOCAL plan_cache_mode = force_custom_plan")?;
            }
            let mut outcomes = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(IMPORT_CHUNK) {
                outcomes.extend(import_chunk(conn, campaign, run, chunk)?);
            }
            Ok(outcomes)
        })
    }

    fn lease(&self, request: &LeaseRequest<'_>) -> Result<Vec<Lease>, StoreError> {
        self.expire_leases(request.now)?;
        let now = request.now;
        let now_ms = ms(now);
        let until = now.checked_add(request.lease_for).unwrap_or(now);
        self.tx(|conn| {
            let rules = self.rules(conn, request.campaign)?;
            let scan = request.max.saturating_mul(3).saturating_add(16) as i64;
            // Personal callbacks only: rank 0 is the callbacks' part of the
            // hopper index, so the scan stays short on a large list.
            let whose = if request.personal_only && request.agent.is_some() {
                "rank = 0 AND callback_agent = $3"
            } else {
                "(callback_agent IS NULL OR callback_agent = $3)"
            };
            let sql = format!(
                "SELECT id, state, attempts, time_zones, callback_id, external_id, name, \
                 custom_json, priority FROM records \
                 WHERE campaign_id = $1 AND dialable = 1 AND next_at <= $2 \
                 AND {whose} \
                 ORDER BY rank, priority DESC, queue_pos LIMIT $4{}",
                conn.lock_clause()
            );
            let rows = conn.query(
                &sql,
                &[
                    request.campaign.into(),
                    now_ms.into(),
                    request.agent.into(),
                    scan.into(),
                ],
            )?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<i64> = rows.iter().map(|r| r[0].int()).collect();
            let mut phones: HashMap<i64, Vec<CandidatePhone>> = HashMap::new();
            let mut numbers: Vec<String> = Vec::new();
            for row in conn.query(
                &format!(
                    "SELECT record_id, position, e164, attempts, dead, hold_until FROM phones \
                     WHERE record_id IN {} ORDER BY record_id, position",
                    placeholders(1, ids.len())
                ),
                &ids_params(&ids),
            )? {
                numbers.push(row[2].text());
                phones.entry(row[0].int()).or_default().push(CandidatePhone {
                    e164: row[2].text(),
                    position: u32::try_from(row[1].int()).unwrap_or(0),
                    attempts: u32::try_from(row[3].int()).unwrap_or(u32::MAX),
                    dead: row[4].int() != 0,
                    dnc: false,
                    in_use: false,
                    held_until: row[5].opt_int().map(from_ms),
                });
            }
            let mut dnc = HashSet::new();
            let mut in_use = HashSet::new();
            // Numbers whose next call needs a guaranteed agent (Ofcom).
            let mut agent_required: HashSet<String> = HashSet::new();
            if !numbers.is_empty() {
                let mut params: Vec<Val> = vec![request.campaign.into()];
                params.extend(numbers.iter().map(Val::from));
                for row in conn.query(
                    &format!(
                        "SELECT e164 FROM dnc WHERE campaign_id IN (0, $1) AND e164 IN {}",
                        placeholders(2, numbers.len())
                    ),
                    &params,
                )? {
                    dnc.insert(row[0].text());
                }
                params[0] = now_ms.into();
                for row in conn.query(
                    &format!(
                        "SELECT e164 FROM active_numbers WHERE lease_until > $1 AND e164 IN {}",
                        placeholders(2, numbers.len())
                    ),
                    &params,
                )? {
                    in_use.insert(row[0].text());
                }
                for row in conn.query(
                    &format!(
                        "SELECT e164 FROM agent_required WHERE until > $1 AND e164 IN {}",
                        placeholders(2, numbers.len())
                    ),
                    &params,
                )? {
                    agent_required.insert(row[0].text());
                }
            }
            // The daily attempt limit needs each candidate's recent dials.
            let mut recent: HashMap<i64, Vec<Timestamp>> = HashMap::new();
            if rules.max_attempts_per_day.is_some() {
                let since = now.checked_sub(RECENT_ATTEMPTS_SPAN).unwrap_or(now);
                let mut params = vec![Val::from(ms(since))];
                params.extend(ids_params(&ids));
                for row in conn.query(
                    &format!(
                        "SELECT record_id, started_at FROM attempts \
                         WHERE started_at >= $1 AND record_id IN {}",
                        placeholders(2, ids.len())
                    ),
                    &params,
                )? {
                    recent
                        .entry(row[0].int())
                        .or_default()
                        .push(from_ms(row[1].int()));
                }
            }
            let callback_ids: Vec<i64> = rows.iter().filter_map(|r| r[4].opt_int()).collect();
            let mut callbacks = HashMap::new();
            if !callback_ids.is_empty() {
                for row in conn.query(
                    &format!(
                        "SELECT id, agent, phone FROM callbacks WHERE state = 'pending' AND id IN {}",
                        placeholders(1, callback_ids.len())
                    ),
                    &ids_params(&callback_ids),
                )? {
                    callbacks.insert(
                        row[0].int(),
                        PendingCallback {
                            id: row[0].int(),
                            agent: row[1].opt_text(),
                            phone: row[2].opt_text(),
                        },
                    );
                }
            }
            // Decide every candidate; dials are claimed and leased in two
            // statements below.
            let mut dials: Vec<(usize, String, Option<PendingCallback>, u32)> = Vec::new();
            for (index, row) in rows.iter().enumerate() {
                if dials.len() >= request.max {
                    break;
                }
                let id = row[0].int();
                let state = RecordState::parse(&row[1].text()).ok_or_else(|| {
                    StoreError::Corrupt(format!("record state `{}`", row[1].text()))
                })?;
                let mut record_phones = phones.remove(&id).unwrap_or_default();
                for phone in &mut record_phones {
                    phone.dnc = dnc.contains(&phone.e164);
                    phone.in_use = in_use.contains(&phone.e164);
                }
                let callback = row[4].opt_int().and_then(|cb| callbacks.get(&cb).cloned());
                let candidate = Candidate {
                    record_id: id,
                    state,
                    leased: false,
                    attempts: u32::try_from(row[2].int()).unwrap_or(u32::MAX),
                    time_zones: row[3].text(),
                    phones: record_phones,
                    callback: callback.clone(),
                    recent_attempts: recent.remove(&id).unwrap_or_default(),
                };
                match decide(&rules, &candidate, request.agent, now) {
                    Decision::Dial { phone }
                        if request.skip_agent_required && agent_required.contains(&phone) =>
                    {
                        // The engine holds enough of these: the record
                        // waits a minute, and the scan goes on past it.
                        let until = now
                            .checked_add(SKIPPED_AGENT_REQUIRED_DELAY)
                            .unwrap_or(now);
                        conn.exec(
                            "UPDATE records SET next_at = $2 WHERE id = $1",
                            &[id.into(), ms(until).into()],
                        )?;
                    }
                    Decision::Dial { phone } => {
                        in_use.insert(phone.clone());
                        dials.push((index, phone, callback, candidate.attempts));
                    }
                    Decision::Defer { until } => {
                        conn.exec(
                            "UPDATE records SET next_at = $2 WHERE id = $1",
                            &[id.into(), ms(until).into()],
                        )?;
                    }
                    Decision::Close { state, reason } => {
                        conn.exec(
                            "UPDATE records SET state = $2, closed_reason = $3 WHERE id = $1",
                            &[id.into(), state.as_str().into(), reason.into()],
                        )?;
                        if let Some(cb) = &callback {
                            conn.exec(
                                "UPDATE callbacks SET state = 'cancelled' WHERE id = $1",
                                &[cb.id.into()],
                            )?;
                        }
                    }
                    Decision::Skip(_) => {}
                }
            }
            if dials.is_empty() {
                return Ok(Vec::new());
            }
            // The unique key on the number is the cross-node guard against
            // dialing one number twice at once: a number another node holds
            // (unexpired) is not returned, and its record is not leased.
            let mut values = Vec::with_capacity(dials.len());
            let mut params: Vec<Val> = vec![ms(until).into(), now_ms.into()];
            for (index, phone, _, _) in &dials {
                values.push(format!(
                    "(${}, CAST(${} AS BIGINT), CAST($1 AS BIGINT))",
                    params.len() + 1,
                    params.len() + 2
                ));
                params.push(phone.as_str().into());
                params.push(rows[*index][0].clone());
            }
            let claimed: HashSet<String> = conn
                .query(
                    &format!(
                        "INSERT INTO active_numbers (e164, record_id, lease_until) VALUES {} \
                         ON CONFLICT (e164) DO UPDATE SET record_id = excluded.record_id, \
                         lease_until = excluded.lease_until \
                         WHERE active_numbers.lease_until <= $2 RETURNING e164",
                        values.join(",")
                    ),
                    &params,
                )?
                .iter()
                .map(|r| r[0].text())
                .collect();
            dials.retain(|(_, phone, _, _)| claimed.contains(phone));
            if dials.is_empty() {
                return Ok(Vec::new());
            }
            let mut values = Vec::with_capacity(dials.len());
            let mut params: Vec<Val> = vec![request.node.into(), ms(until).into()];
            for (index, phone, _, _) in &dials {
                values.push(format!(
                    "(CAST(${} AS BIGINT), CAST(${} AS TEXT))",
                    params.len() + 1,
                    params.len() + 2
                ));
                params.push(rows[*index][0].clone());
                params.push(phone.as_str().into());
            }
            conn.exec(
                &format!(
                    "UPDATE records SET state = 'leased', lease_owner = $1, lease_until = $2, \
                     leased_phone = v.column2 FROM (VALUES {}) AS v WHERE records.id = v.column1",
                    values.join(",")
                ),
                &params,
            )?;
            let mut leases = Vec::with_capacity(dials.len());
            for (index, phone, callback, attempts) in dials {
                let row = &rows[index];
                if let Some(cb) = &callback {
                    conn.exec(
                        "UPDATE callbacks SET state = 'delivering' WHERE id = $1",
                        &[cb.id.into()],
                    )?;
                }
                leases.push(Lease {
                    record_id: row[0].int(),
                    campaign: request.campaign,
                    external_id: row[5].text(),
                    name: row[6].text(),
                    custom_json: row[7].text(),
                    time_zones: row[3].text(),
                    priority: row[8].int(),
                    attempts,
                    callback: callback.as_ref().map(|c| c.id),
                    callback_agent: callback.and_then(|c| c.agent),
                    node: request.node.to_string(),
                    lease_until: until,
                    agent_required: agent_required.contains(&phone),
                    phone,
                });
            }
            Ok(leases)
        })
    }

    fn extend_lease(&self, lease: &Lease, until: Timestamp) -> Result<(), StoreError> {
        self.tx(|conn| {
            let updated = conn.exec(
                "UPDATE records SET lease_until = $3 WHERE id = $1 AND state = 'leased' \
                 AND lease_owner = $2",
                &[
                    lease.record_id.into(),
                    lease.node.as_str().into(),
                    ms(until).into(),
                ],
            )?;
            if updated == 0 {
                return Err(StoreError::LeaseLost {
                    record: lease.record_id,
                    node: lease.node.clone(),
                });
            }
            conn.exec(
                "UPDATE active_numbers SET lease_until = $2 WHERE record_id = $1",
                &[lease.record_id.into(), ms(until).into()],
            )?;
            Ok(())
        })
    }

    fn release(&self, lease: &Lease, how: Release, now: Timestamp) -> Result<(), StoreError> {
        self.tx(|conn| release_in_tx(conn, lease, how, now))
    }

    fn postpone(
        &self,
        lease: &Lease,
        request: &CallbackRequest,
        now: Timestamp,
    ) -> Result<CallbackId, StoreError> {
        check_callback(request, now)?;
        // One transaction: the lease is checked to be ours before the
        // callback goes on the record (another node may hold it once ours
        // lapsed), and given back with it.
        self.tx(|conn| {
            ensure_leased_by(conn, lease)?;
            let id = schedule_in_tx(conn, request, now)?;
            release_in_tx(conn, lease, Release::Unused, now)?;
            Ok(id)
        })
    }

    fn begin_attempt(&self, lease: &Lease, now: Timestamp) -> Result<AttemptId, StoreError> {
        let begun = self.tx(|conn| {
            let held = conn.query(
                "SELECT id FROM records \
                 WHERE id = $1 AND state = 'leased' AND lease_owner = $2 AND lease_until > $3",
                &[
                    lease.record_id.into(),
                    lease.node.as_str().into(),
                    ms(now).into(),
                ],
            )?;
            if held.is_empty() {
                return Err(StoreError::LeaseLost {
                    record: lease.record_id,
                    node: lease.node.clone(),
                });
            }
            if let Some((reason, due)) = self.not_dialable_now(conn, lease, now)? {
                // Back to the list, where the next lease decides it as the
                // hopper does (another number of its chain, or removed when
                // every one is on a DNC list); outside its window it is due
                // at the window's next opening.
                restore(conn, lease.record_id)?;
                if let Some(due) = due {
                    conn.exec(
                        "UPDATE records SET next_at = $2 WHERE id = $1",
                        &[lease.record_id.into(), ms(due).into()],
                    )?;
                }
                return Ok(Err(reason));
            }
            let updated = conn.exec(
                "UPDATE records SET attempts = attempts + 1, last_attempt_at = $3 \
                 WHERE id = $1 AND state = 'leased' AND lease_owner = $2 AND lease_until > $3",
                &[
                    lease.record_id.into(),
                    lease.node.as_str().into(),
                    ms(now).into(),
                ],
            )?;
            if updated == 0 {
                return Err(StoreError::LeaseLost {
                    record: lease.record_id,
                    node: lease.node.clone(),
                });
            }
            conn.exec(
                "UPDATE phones SET attempts = attempts + 1 WHERE record_id = $1 AND e164 = $2",
                &[lease.record_id.into(), lease.phone.as_str().into()],
            )?;
            let rows = conn.query(
                "INSERT INTO attempts (campaign_id, record_id, phone, node, started_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    lease.campaign.into(),
                    lease.record_id.into(),
                    lease.phone.as_str().into(),
                    lease.node.as_str().into(),
                    ms(now).into(),
                ],
            )?;
            first_int(&rows)
                .map(Ok)
                .ok_or_else(|| StoreError::Corrupt("no attempt id".into()))
        })?;
        begun.map_err(|reason| StoreError::NotDialable {
            record: lease.record_id,
            reason,
        })
    }

    fn complete_attempt(
        &self,
        attempt: AttemptId,
        result: &AttemptResult,
        now: Timestamp,
    ) -> Result<RecordState, StoreError> {
        self.tx(|conn| self.complete_in_tx(conn, attempt, result, now))
    }

    fn attempt_live(&self, attempt: AttemptId, answered_at: Timestamp) -> Result<(), StoreError> {
        self.tx(|conn| {
            conn.exec(
                "UPDATE attempts SET answered_at = $2, cpa_verdict = 'human', \
                 abandoned = CASE WHEN agent IS NULL THEN 1 ELSE 0 END \
                 WHERE id = $1 AND ended_at IS NULL",
                &[attempt.into(), ms(answered_at).into()],
            )?;
            Ok(())
        })
    }

    fn attempt_bridged(&self, attempt: AttemptId, agent: &str) -> Result<(), StoreError> {
        self.tx(|conn| {
            conn.exec(
                "UPDATE attempts SET agent = $2, abandoned = 0 WHERE id = $1 AND ended_at IS NULL",
                &[attempt.into(), agent.into()],
            )?;
            Ok(())
        })
    }

    fn attempt_written(&self, attempt: AttemptId) -> Result<bool, StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                "SELECT ended_at, outcome FROM attempts WHERE id = $1",
                &[attempt.into()],
            )?;
            let row = rows.first().ok_or(StoreError::UnknownAttempt(attempt))?;
            Ok(row[0].opt_int().is_some()
                && row[1].opt_text().as_deref() != Some(Outcome::Interrupted.as_str()))
        })
    }

    fn recover_node(&self, node: &str, now: Timestamp) -> Result<Recovery, StoreError> {
        self.tx(|conn| {
            let mut recovery = Recovery::default();
            let mut records: Vec<i64> = conn
                .query(
                    "SELECT DISTINCT record_id FROM attempts WHERE node = $1 AND ended_at IS NULL",
                    &[node.into()],
                )?
                .iter()
                .map(|r| r[0].int())
                .collect();
            records.extend(
                conn.query(
                    "SELECT id FROM records WHERE state = 'leased' AND lease_owner = $1",
                    &[node.into()],
                )?
                .iter()
                .map(|r| r[0].int()),
            );
            records.sort_unstable();
            records.dedup();
            for record in records {
                if self.resolve_lease(conn, record, now)? {
                    recovery.interrupted_attempts += 1;
                } else {
                    recovery.released_leases += 1;
                }
            }
            Ok(recovery)
        })
    }

    fn expire_leases(&self, now: Timestamp) -> Result<Recovery, StoreError> {
        self.tx(|conn| {
            let mut recovery = Recovery::default();
            let sql = format!(
                "SELECT id FROM records WHERE state = 'leased' AND lease_until <= $1{}",
                conn.lock_clause()
            );
            for row in conn.query(&sql, &[ms(now).into()])? {
                if self.resolve_lease(conn, row[0].int(), now)? {
                    recovery.interrupted_attempts += 1;
                } else {
                    recovery.released_leases += 1;
                }
            }
            Ok(recovery)
        })
    }

    fn schedule_callback(
        &self,
        request: &CallbackRequest,
        now: Timestamp,
    ) -> Result<CallbackId, StoreError> {
        check_callback(request, now)?;
        self.tx(|conn| schedule_in_tx(conn, request, now))
    }

    fn change_callback(
        &self,
        id: CallbackId,
        request: &CallbackRequest,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        check_callback(request, now)?;
        self.tx(|conn| {
            let rows = conn.query(
                "SELECT record_id FROM callbacks WHERE id = $1 AND state = 'pending'",
                &[id.into()],
            )?;
            let record = first_int(&rows).ok_or(StoreError::UnknownCallback(id))?;
            if let Some(phone) = &request.phone {
                ensure_phone(conn, record, phone)?;
            }
            conn.exec(
                "UPDATE callbacks SET at = $2, phone = $3, agent = $4 WHERE id = $1",
                &[
                    id.into(),
                    ms(request.at).into(),
                    request.phone.clone().into(),
                    request.agent.clone().into(),
                ],
            )?;
            conn.exec(
                "UPDATE records SET callback_agent = $3, \
                 next_at = CASE WHEN state = 'callback' THEN $4 ELSE next_at END \
                 WHERE id = $1 AND callback_id = $2",
                &[
                    record.into(),
                    id.into(),
                    request.agent.clone().into(),
                    ms(request.at).into(),
                ],
            )?;
            Ok(())
        })
    }

    fn cancel_callback(&self, id: CallbackId, now: Timestamp) -> Result<(), StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                "SELECT record_id FROM callbacks WHERE id = $1 AND state = 'pending'",
                &[id.into()],
            )?;
            let record = first_int(&rows).ok_or(StoreError::UnknownCallback(id))?;
            conn.exec(
                "UPDATE callbacks SET state = 'cancelled' WHERE id = $1",
                &[id.into()],
            )?;
            conn.exec(
                "UPDATE records SET \
                 state = CASE WHEN state = 'callback' THEN \
                   (CASE WHEN attempts = 0 THEN 'new' ELSE 'retry' END) ELSE state END, \
                 next_at = CASE WHEN state = 'callback' THEN $3 ELSE next_at END, \
                 rank = 1, callback_id = NULL, callback_agent = NULL \
                 WHERE id = $1 AND callback_id = $2",
                &[record.into(), id.into(), ms(now).into()],
            )?;
            Ok(())
        })
    }

    fn callbacks(&self, filter: &CallbackFilter) -> Result<Vec<CallbackView>, StoreError> {
        let limit = if filter.limit == 0 {
            1000
        } else {
            filter.limit
        };
        self.tx(|conn| {
            Ok(conn
                .query(
                    "SELECT c.id, c.record_id, r.external_id, r.name, k.name, c.at, c.phone, c.agent \
                     FROM callbacks c JOIN records r ON r.id = c.record_id \
                     JOIN campaigns k ON k.id = r.campaign_id \
                     WHERE c.state = 'pending' AND ($1 = 0 OR c.id = $1) \
                     AND ($2 = 0 OR r.campaign_id = $2) AND ($3 = '' OR c.agent = $3) \
                     ORDER BY c.at, c.id LIMIT $4",
                    &[
                        filter.id.unwrap_or(0).into(),
                        filter.campaign.unwrap_or(0).into(),
                        filter.agent.clone().unwrap_or_default().into(),
                        limit.into(),
                    ],
                )?
                .iter()
                .map(|r| CallbackView {
                    id: r[0].int(),
                    record: r[1].int(),
                    external_id: r[2].text(),
                    name: r[3].text(),
                    campaign: r[4].text(),
                    at: from_ms(r[5].int()),
                    phone: r[6].opt_text(),
                    agent: r[7].opt_text(),
                })
                .collect())
        })
    }

    fn add_dnc(
        &self,
        campaign: Option<CampaignId>,
        e164: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !valid_e164(e164) {
            return Err(StoreError::BadNumber(e164.to_string()));
        }
        self.tx(|conn| {
            conn.exec(
                "INSERT INTO dnc (campaign_id, e164, added_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (campaign_id, e164) DO NOTHING",
                &[campaign.unwrap_or(0).into(), e164.into(), ms(now).into()],
            )?;
            Ok(())
        })
    }

    fn add_dnc_many(
        &self,
        campaign: Option<CampaignId>,
        numbers: &[String],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if let Some(bad) = numbers.iter().find(|n| !valid_e164(n)) {
            return Err(StoreError::BadNumber(bad.clone()));
        }
        self.tx(|conn| {
            let mut added = 0u64;
            for e164 in numbers {
                let inserted = conn.exec(
                    "INSERT INTO dnc (campaign_id, e164, added_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (campaign_id, e164) DO NOTHING",
                    &[
                        campaign.unwrap_or(0).into(),
                        e164.as_str().into(),
                        ms(now).into(),
                    ],
                )?;
                added += inserted;
            }
            Ok(added)
        })
    }

    fn remove_dnc(&self, campaign: Option<CampaignId>, e164: &str) -> Result<bool, StoreError> {
        self.tx(|conn| {
            let removed = conn.exec(
                "DELETE FROM dnc WHERE campaign_id = $1 AND e164 = $2",
                &[campaign.unwrap_or(0).into(), e164.into()],
            )?;
            Ok(removed > 0)
        })
    }

    fn is_dnc(&self, campaign: CampaignId, e164: &str) -> Result<bool, StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                "SELECT COUNT(*) FROM dnc WHERE campaign_id IN (0, $1) AND e164 = $2",
                &[campaign.into(), e164.into()],
            )?;
            Ok(first_int(&rows).unwrap_or(0) > 0)
        })
    }

    fn dispositions(&self, campaign: CampaignId) -> Result<Vec<Disposition>, StoreError> {
        self.tx(|conn| {
            let mut by_code: Vec<Disposition> = Vec::new();
            for row in conn.query(
                "SELECT code, label, effect FROM dispositions WHERE campaign_id IN (0, $1) \
                 ORDER BY campaign_id, code",
                &[campaign.into()],
            )? {
                let disposition = Disposition {
                    code: row[0].text(),
                    label: row[1].text(),
                    effect: DispositionEffect::parse(&row[2].text()).ok_or_else(|| {
                        StoreError::Corrupt(format!("effect `{}`", row[2].text()))
                    })?,
                };
                // The campaign's own code overrides the system one.
                by_code.retain(|d| d.code != disposition.code);
                by_code.push(disposition);
            }
            Ok(by_code)
        })
    }

    fn add_disposition(
        &self,
        campaign: CampaignId,
        disposition: &Disposition,
    ) -> Result<(), StoreError> {
        self.tx(|conn| upsert_dispositions(conn, campaign, std::slice::from_ref(disposition)))
    }

    fn record_agent_states(&self, changes: &[StateChange]) -> Result<(), StoreError> {
        self.tx(|conn| {
            for change in changes {
                conn.exec(
                    "INSERT INTO agent_states (agent, state, reason, at, node) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        change.agent.as_str().into(),
                        change.state.as_str().into(),
                        change.reason.as_deref().into(),
                        ms(change.at).into(),
                        change.node.as_str().into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn close_agent_states(
        &self,
        node: &str,
        at: Timestamp,
        reason: &str,
    ) -> Result<u64, StoreError> {
        self.tx(|conn| {
            // Each agent's latest change, where it was this node's and not
            // a logout.
            let open = conn.query(
                "SELECT a.agent, a.at FROM agent_states a WHERE a.node = $1 AND a.state <> $2 \
                 AND a.id = (SELECT MAX(b.id) FROM agent_states b WHERE b.agent = a.agent)",
                &[node.into(), LOGGED_OUT.into()],
            )?;
            for row in &open {
                // Never before the state it ends (a change written after
                // the node's last heartbeat, just before a crash).
                let end = ms(at).max(row[1].int());
                conn.exec(
                    "INSERT INTO agent_states (agent, state, reason, at, node) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        row[0].clone(),
                        LOGGED_OUT.into(),
                        reason.into(),
                        end.into(),
                        node.into(),
                    ],
                )?;
            }
            Ok(open.len() as u64)
        })
    }

    fn agent_state_changes(
        &self,
        agent: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StateChange>, StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                "SELECT agent, state, reason, at, node FROM agent_states \
                 WHERE (CAST($1 AS TEXT) IS NULL OR agent = CAST($1 AS TEXT)) AND at < $3 \
                 AND (at >= $2 OR id IN (SELECT MAX(id) FROM agent_states WHERE at < $2 \
                 GROUP BY agent)) \
                 ORDER BY agent, at, id",
                &[agent.into(), ms(from).into(), ms(to).into()],
            )?;
            Ok(rows
                .iter()
                .map(|row| StateChange {
                    agent: row[0].text(),
                    state: row[1].text(),
                    reason: row[2].opt_text(),
                    at: from_ms(row[3].int()),
                    node: row[4].text(),
                })
                .collect())
        })
    }

    fn attempt_recording(&self, attempt: AttemptId) -> Result<Option<String>, StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                "SELECT recording FROM attempts WHERE id = $1",
                &[attempt.into()],
            )?;
            let row = rows.first().ok_or(StoreError::UnknownAttempt(attempt))?;
            Ok(row[0].opt_text())
        })
    }

    fn update_contact(
        &self,
        record: RecordId,
        name: Option<&str>,
        custom_json: &str,
    ) -> Result<(), StoreError> {
        self.tx(|conn| {
            let updated = conn.exec(
                "UPDATE records SET name = COALESCE($2, name), custom_json = $3 WHERE id = $1",
                &[record.into(), name.into(), custom_json.into()],
            )?;
            if updated == 0 {
                return Err(StoreError::UnknownRecord(record));
            }
            Ok(())
        })
    }

    fn record(
        &self,
        campaign: CampaignId,
        external_id: &str,
    ) -> Result<Option<RecordView>, StoreError> {
        self.tx(|conn| {
            let rows = conn.query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM records r WHERE r.campaign_id = $1 \
                     AND r.external_id = $2"
                ),
                &[campaign.into(), external_id.into()],
            )?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let mut view = record_view(row);
            view.phones = conn
                .query(
                    "SELECT e164 FROM phones WHERE record_id = $1 ORDER BY position",
                    &[view.id.into()],
                )?
                .iter()
                .map(|r| r[0].text())
                .collect();
            Ok(Some(view))
        })
    }

    fn counts(&self, campaign: CampaignId) -> Result<Vec<(String, u64)>, StoreError> {
        self.tx(|conn| {
            Ok(conn
                .query(
                    "SELECT state, COUNT(*) FROM records WHERE campaign_id = $1 \
                     GROUP BY state ORDER BY state",
                    &[campaign.into()],
                )?
                .iter()
                .map(|r| (r[0].text(), u64::try_from(r[1].int()).unwrap_or(0)))
                .collect())
        })
    }

    fn answer_history(
        &self,
        campaign: CampaignId,
        node: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<AnswerMinute>, StoreError> {
        self.tx(|conn| super::pacer_history::answer_minutes(conn, campaign, node, since, until))
    }

    fn recent_calls(
        &self,
        campaign: CampaignId,
        since: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<super::RecentCall>, StoreError> {
        self.tx(|conn| super::pacer_history::recent_calls(conn, campaign, since, until, limit))
    }

    fn abandonment_by_node(
        &self,
        campaign: CampaignId,
        us_since: Timestamp,
        uk_since: Timestamp,
    ) -> Result<Vec<super::NodeAbandonment>, StoreError> {
        self.tx(|conn| {
            super::pacer_history::abandonment_by_node(conn, campaign, us_since, uk_since)
        })
    }

    fn export_records(
        &self,
        campaign: CampaignId,
        each: &mut dyn FnMut(RecordView) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        self.tx(|conn| {
            let mut count = 0u64;
            let mut current: Option<RecordView> = None;
            conn.query_each(
                &format!(
                    "SELECT {RECORD_COLUMNS}, p.e164 FROM records r \
                     LEFT JOIN phones p ON p.record_id = r.id \
                     WHERE r.campaign_id = $1 ORDER BY r.queue_pos, r.id, p.position"
                ),
                &[campaign.into()],
                &mut |row| {
                    let id = row[0].int();
                    if current.as_ref().is_some_and(|c| c.id != id)
                        && let Some(done) = current.take()
                    {
                        count += 1;
                        each(done)?;
                    }
                    let view = current.get_or_insert_with(|| record_view(row));
                    if let Some(phone) = row.get(14).and_then(Val::opt_text) {
                        view.phones.push(phone);
                    }
                    Ok(())
                },
            )?;
            if let Some(done) = current.take() {
                count += 1;
                each(done)?;
            }
            Ok(count)
        })
    }

    fn export_attempts(
        &self,
        campaign: CampaignId,
        each: &mut dyn FnMut(AttemptView) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        self.tx(|conn| {
            let mut count = 0u64;
            conn.query_each(
                "SELECT a.id, r.external_id, a.phone, a.node, a.started_at, a.answered_at, \
                 a.ended_at, a.outcome, a.sip_code, a.cpa_verdict, a.cpa_ms, a.agent, \
                 a.disposition, a.notes, a.abandoned, a.ring_ms, a.talk_ms, a.guide_answers, \
                 a.recording, a.hold_ms, a.recording_paused_ms, a.transferred_from, \
                 a.transferred_to \
                 FROM attempts a JOIN records r ON r.id = a.record_id \
                 WHERE a.campaign_id = $1 ORDER BY a.id",
                &[campaign.into()],
                &mut |row| {
                    count += 1;
                    each(AttemptView {
                        id: row[0].int(),
                        external_id: row[1].text(),
                        phone: row[2].text(),
                        node: row[3].text(),
                        started_at: row[4].int(),
                        answered_at: row[5].opt_int(),
                        ended_at: row[6].opt_int(),
                        outcome: row[7].opt_text(),
                        sip_code: row[8].opt_int(),
                        cpa_verdict: row[9].opt_text(),
                        cpa_ms: row[10].opt_int(),
                        agent: row[11].opt_text(),
                        disposition: row[12].opt_text(),
                        notes: row[13].opt_text(),
                        abandoned: row[14].int() != 0,
                        ring_ms: row[15].opt_int(),
                        talk_ms: row[16].opt_int(),
                        guide_answers: row[17].opt_text(),
                        recording: row[18].opt_text(),
                        hold_ms: row[19].opt_int(),
                        recording_paused_ms: row[20].opt_int(),
                        transferred_from: row[21].opt_text(),
                        transferred_to: row[22].opt_text(),
                    })
                },
            )?;
            Ok(count)
        })
    }
}

/// Adds `phone` to the record's chain if it is not there yet.
fn ensure_phone(conn: &mut dyn Conn, record: RecordId, phone: &str) -> Result<(), StoreError> {
    let present = conn.query(
        "SELECT COUNT(*) FROM phones WHERE record_id = $1 AND e164 = $2",
        &[record.into(), phone.into()],
    )?;
    if first_int(&present).unwrap_or(0) == 0 {
        conn.exec(
            "INSERT INTO phones (record_id, position, kind, e164) \
             SELECT $1, COALESCE(MAX(position), -1) + 1, 'other', $2 FROM phones WHERE record_id = $1",
            &[record.into(), phone.into()],
        )?;
    }
    Ok(())
}

fn import_chunk(
    conn: &mut dyn Conn,
    campaign: CampaignId,
    run: i64,
    rows: &[ImportRow],
) -> Result<Vec<ImportOutcome>, StoreError> {
    let mut outcomes = vec![ImportOutcome::Inserted; rows.len()];
    // Duplicates inside the chunk: the first occurrence wins.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut unique: Vec<usize> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if seen.insert(row.external_id.as_str()) {
            unique.push(i);
        } else {
            outcomes[i] = ImportOutcome::Duplicate;
        }
    }
    if unique.is_empty() {
        return Ok(outcomes);
    }
    // Existing records: updated, or duplicates of an earlier chunk of this run.
    let mut params: Vec<Val> = vec![campaign.into()];
    params.extend(unique.iter().map(|&i| Val::from(&rows[i].external_id)));
    let mut existing: HashMap<String, i64> = HashMap::new();
    for row in conn.query(
        &format!(
            "SELECT external_id, import_run FROM records WHERE campaign_id = $1 \
             AND external_id IN {}",
            placeholders(2, unique.len())
        ),
        &params,
    )? {
        existing.insert(row[0].text(), row[1].int());
    }
    let mut write: Vec<usize> = Vec::new();
    for &i in &unique {
        match existing.get(&rows[i].external_id) {
            Some(&previous) if previous == run => outcomes[i] = ImportOutcome::Duplicate,
            Some(_) => {
                outcomes[i] = ImportOutcome::Updated;
                write.push(i);
            }
            None => write.push(i),
        }
    }
    if write.is_empty() {
        return Ok(outcomes);
    }
    const COLS: usize = 8;
    let mut values = Vec::with_capacity(write.len());
    let mut params: Vec<Val> = Vec::with_capacity(write.len() * COLS);
    for (n, &i) in write.iter().enumerate() {
        let row = &rows[i];
        let base = n * COLS + 1;
        values.push(placeholders(base, COLS));
        params.extend([
            campaign.into(),
            row.external_id.as_str().into(),
            row.name.as_str().into(),
            row.custom_json.as_str().into(),
            row.time_zones.as_str().into(),
            row.priority.into(),
            run.into(),
            // Import order: run first, then line.
            Val::Int((run << 32) + i64::try_from(row.line).unwrap_or(0)),
        ]);
    }
    let returned = conn.query(
        &format!(
            "INSERT INTO records (campaign_id, external_id, name, custom_json, time_zones, \
             priority, import_run, queue_pos) VALUES {} \
             ON CONFLICT (campaign_id, external_id) DO UPDATE SET name = excluded.name, \
             custom_json = excluded.custom_json, time_zones = excluded.time_zones, \
             priority = excluded.priority, import_run = excluded.import_run \
             RETURNING id, external_id",
            values.join(",")
        ),
        &params,
    )?;
    let ids: HashMap<String, i64> = returned.iter().map(|r| (r[1].text(), r[0].int())).collect();
    let mut values = Vec::new();
    let mut params: Vec<Val> = Vec::new();
    let mut trims: Vec<(i64, i64)> = Vec::new();
    for &i in &write {
        let row = &rows[i];
        let id = *ids
            .get(&row.external_id)
            .ok_or_else(|| StoreError::Corrupt(format!("no id for `{}`", row.external_id)))?;
        for (position, (kind, e164)) in row.phones.iter().enumerate() {
            values.push(placeholders(params.len() + 1, 4));
            params.extend([
                id.into(),
                Val::Int(position as i64),
                kind.as_str().into(),
                e164.as_str().into(),
            ]);
        }
        if outcomes[i] == ImportOutcome::Updated {
            trims.push((id, row.phones.len() as i64));
        }
    }
    if !values.is_empty() {
        conn.exec(
            &format!(
                "INSERT INTO phones (record_id, position, kind, e164) VALUES {} \
                 ON CONFLICT (record_id, position) DO UPDATE SET kind = excluded.kind, \
                 attempts = CASE WHEN phones.e164 = excluded.e164 THEN phones.attempts ELSE 0 END, \
                 dead = CASE WHEN phones.e164 = excluded.e164 THEN phones.dead ELSE 0 END, \
                 hold_until = CASE WHEN phones.e164 = excluded.e164 THEN phones.hold_until \
                 ELSE NULL END, \
                 e164 = excluded.e164",
                values.join(",")
            ),
            &params,
        )?;
    }
    for (id, keep) in trims {
        conn.exec(
            "DELETE FROM phones WHERE record_id = $1 AND position >= $2",
            &[id.into(), keep.into()],
        )?;
    }
    Ok(outcomes)
}

/// A callback must lie in the future and name a valid number, if any.
fn check_callback(request: &CallbackRequest, now: Timestamp) -> Result<(), StoreError> {
    if request.at <= now {
        return Err(StoreError::CallbackInPast {
            at: request.at,
            now,
        });
    }
    match &request.phone {
        Some(phone) if !valid_e164(phone) => Err(StoreError::BadNumber(phone.clone())),
        _ => Ok(()),
    }
}
