//! The campaign store: the [`Store`] trait the engine and the CLI use, and
//! its SQL implementation over two backends — SQLite (embedded, one file,
//! WAL) and PostgreSQL (several dialer nodes sharing one database).
//!
//! The trait is synchronous: both drivers (rusqlite, postgres) are blocking,
//! and the engine calls the store from `tokio::task::spawn_blocking`. Every
//! method is one transaction. The dialing decisions themselves are pure
//! functions in [`crate::campaign`]; this module selects candidates, applies
//! decisions, and keeps leases safe across nodes.

pub mod export_csv;
pub mod import_list;
mod logic;
pub mod migrations;
mod pacer_history;
pub mod postgres;
mod presence;
pub mod spool;
pub mod sql;
pub mod sqlite;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::agent::activity::StateChange;
use crate::campaign::import::ImportRow;
use crate::campaign::model::{Disposition, Outcome, RecordState};
use crate::campaign::rules::CampaignRules;

pub use logic::SqlStore;

pub type CampaignId = i64;
pub type RecordId = i64;
pub type AttemptId = i64;
pub type CallbackId = i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL `{0}` is not sqlite://FILE or postgres://USER@HOST/DB")]
    Url(String),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", postgres_detail(.0))]
    Postgres(#[from] ::postgres::Error),
    #[error(
        "campaign `{0}` is not in the store; it is created from the configuration's [[campaign]] on first use"
    )]
    UnknownCampaign(String),
    #[error("campaign {0}'s stored rules cannot be read: {1}")]
    Rules(CampaignId, String),
    #[error("record {0} does not exist")]
    UnknownRecord(RecordId),
    #[error("attempt {0} does not exist")]
    UnknownAttempt(AttemptId),
    #[error("attempt {0} is already complete")]
    AttemptAlreadyComplete(AttemptId),
    #[error(
        "record {record}'s lease is no longer held by node `{node}` (it expired); do not dial it"
    )]
    LeaseLost { record: RecordId, node: String },
    #[error("callback {0} does not exist or is no longer pending")]
    UnknownCallback(CallbackId),
    #[error("the callback time {at} is in the past (now {now}); choose a later time")]
    CallbackInPast { at: Timestamp, now: Timestamp },
    #[error("`{0}` is not an E.164 number like +15551230001")]
    BadNumber(String),
    #[error("record {0} was removed (do not call); it cannot get a callback")]
    RecordRemoved(RecordId),
    #[error("disposition `{0}` is not defined for this campaign")]
    UnknownDisposition(String),
    #[error("unexpected data in the store: {0}")]
    Corrupt(String),
    #[error("record {record} was not dialed: {reason}; it is back in the list")]
    NotDialable {
        record: RecordId,
        reason: NotDialable,
    },
}

/// Why a leased record may no longer be dialed when its call is placed
/// (checked again at the dial, not only at the lease: a record waits in
/// the engine's buffer or on a preview screen, its lease extended, while a
/// supervisor adds its number to a do-not-call list or its calling window
/// closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDialable {
    DoNotCall,
    WindowClosed,
}

impl NotDialable {
    /// The `reason` label of `outdial_dials_stopped_total`.
    pub fn label(self) -> &'static str {
        match self {
            NotDialable::DoNotCall => "do_not_call",
            NotDialable::WindowClosed => "window_closed",
        }
    }
}

impl std::fmt::Display for NotDialable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotDialable::DoNotCall => "its number is on a do-not-call list",
            NotDialable::WindowClosed => "the contact's calling window is closed",
        })
    }
}

impl StoreError {
    /// A passing failure, as a locked SQLite database gives (tests of the
    /// code that retries).
    #[cfg(test)]
    pub(crate) fn busy_for_tests() -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        ))
    }

    /// A failure that may pass: the database busy or locked, its connection
    /// lost (a server restart, a failover), the disk full. Worth trying
    /// the same write again a little later; any other error is not.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Sqlite(error) => matches!(
                error.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::CannotOpen
                )
            ),
            StoreError::Postgres(error) => match error.code() {
                // No SQLSTATE: the connection or its socket failed (a value
                // that does not convert is no such failure).
                None => {
                    error.is_closed()
                        || std::error::Error::source(error)
                            .is_some_and(|source| source.is::<std::io::Error>())
                }
                Some(code) => {
                    let class = &code.code()[..2.min(code.code().len())];
                    // Connection exceptions, the server shutting down or
                    // short of resources, serialization failures and
                    // deadlocks.
                    matches!(class, "08" | "57" | "53" | "40")
                }
            },
            _ => false,
        }
    }
}

/// What the hopper is asked for.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    pub campaign: CampaignId,
    /// This dialer node's id (unique per running process).
    pub node: &'a str,
    /// The agent the calls are for; only then are that agent's personal
    /// callbacks handed out.
    pub agent: Option<&'a str>,
    /// At most this many records.
    pub max: usize,
    pub now: Timestamp,
    /// The lease lapses after this long unless the attempt completes or the
    /// lease is extended; another node may then resolve it.
    pub lease_for: SignedDuration,
    /// Only `agent`'s due personal callbacks (the engine's poll for them:
    /// it must not pull ordinary records into its buffer every time).
    pub personal_only: bool,
    /// Leave the records whose number needs a guaranteed agent (Ofcom's
    /// repeat-call rule) in the list, due again a minute later: the engine
    /// holds as many of them as its agents can take.
    pub skip_agent_required: bool,
}

/// A record handed to one node to dial one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub record_id: RecordId,
    pub campaign: CampaignId,
    pub external_id: String,
    pub name: String,
    pub custom_json: String,
    pub time_zones: String,
    pub priority: i64,
    /// The number to dial (E.164).
    pub phone: String,
    /// Dials of this record before this one.
    pub attempts: u32,
    /// Set when this is a scheduled callback's delivery.
    pub callback: Option<CallbackId>,
    /// The callback is personal to this agent.
    pub callback_agent: Option<String>,
    pub node: String,
    pub lease_until: Timestamp,
    /// The number must be dialed with an agent reserved for the call
    /// (Ofcom's repeat-call rule: it was abandoned, or taken for a machine,
    /// recently; `[campaign.repeat_calls]`).
    pub agent_required: bool,
}

/// How a dial ended, written by the engine when the call is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptResult {
    pub outcome: Outcome,
    /// The final SIP response code, if any.
    pub sip_code: Option<u16>,
    /// The CPA verdict (`human`, `machine`, `fax`, `sit`, …) and when it came.
    pub cpa_verdict: Option<String>,
    pub cpa_ms: Option<u32>,
    pub agent: Option<String>,
    /// A disposition code (system or the campaign's).
    pub disposition: Option<String>,
    pub notes: Option<String>,
    pub abandoned: bool,
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub ring_ms: Option<u32>,
    pub talk_ms: Option<u32>,
    /// Of the talk time, how long the agent held the customer.
    #[serde(default)]
    pub hold_ms: Option<u32>,
    /// How long the agent kept the call recording paused.
    #[serde(default)]
    pub recording_paused_ms: Option<u32>,
    /// The agents who transferred the call, in order, before `agent` (a
    /// JSON array of agent ids; `None`: never transferred).
    #[serde(default)]
    pub transferred_from: Option<String>,
    /// The outside number (E.164) the agent transferred the call to.
    #[serde(default)]
    pub transferred_to: Option<String>,
    /// The call guide's answers, as JSON.
    pub guide_answers: Option<String>,
    /// The callee asked to be called again no sooner than this (a 486 or
    /// 480 with Retry-After): a retry waits at least this long, up to
    /// [`CALLEE_RETRY_AFTER_MAX`].
    pub callee_retry_after: Option<SignedDuration>,
    /// The bridge recording's file name in `[media] record_dir` (the
    /// customer spliced to an agent with recording on).
    #[serde(default)]
    pub recording: Option<String>,
    /// The agent ticked "do not call" with the disposition (SPEC §7's box,
    /// beside the result code): the number goes on the campaign's DNC list
    /// and the record is removed, whatever the code's own effect.
    #[serde(default)]
    pub do_not_call: bool,
}

/// The longest a callee's Retry-After holds a record back: a value of
/// months (a misconfigured phone) must not park a record for good.
pub const CALLEE_RETRY_AFTER_MAX: SignedDuration = SignedDuration::from_hours(24);

impl AttemptResult {
    /// A result with only its outcome set.
    pub fn new(outcome: Outcome) -> AttemptResult {
        AttemptResult {
            outcome,
            sip_code: None,
            cpa_verdict: None,
            cpa_ms: None,
            agent: None,
            disposition: None,
            notes: None,
            abandoned: false,
            answered_at: None,
            ended_at: None,
            ring_ms: None,
            talk_ms: None,
            hold_ms: None,
            recording_paused_ms: None,
            transferred_from: None,
            transferred_to: None,
            guide_answers: None,
            callee_retry_after: None,
            recording: None,
            do_not_call: false,
        }
    }
}

/// Why a lease is given back without an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Not needed after all: back as it was.
    Unused,
    /// An agent declined it in (push) preview: back to the top of the list.
    Declined,
    /// An agent removed it in preview: never called again.
    Removed,
    /// An agent declined it as "do not call" in preview: removed, and the
    /// number shown goes on the campaign's do-not-call list.
    DoNotCall,
}

/// A callback to schedule or change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRequest {
    pub record: RecordId,
    pub at: Timestamp,
    /// Dial this number (E.164) instead of the chain's choice.
    pub phone: Option<String>,
    /// A personal callback: only this agent takes it.
    pub agent: Option<String>,
}

/// A pending callback, as it is listed for agents and supervisors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackView {
    pub id: CallbackId,
    pub record: RecordId,
    pub external_id: String,
    pub name: String,
    pub campaign: String,
    pub at: Timestamp,
    /// The number to dial, when the callback names one.
    pub phone: Option<String>,
    /// The agent of a personal callback.
    pub agent: Option<String>,
}

/// Which pending callbacks [`Store::callbacks`] lists (every filter given
/// must hold), soonest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackFilter {
    pub id: Option<CallbackId>,
    pub campaign: Option<CampaignId>,
    /// Only this agent's personal callbacks.
    pub agent: Option<String>,
    /// At most this many (0: 1,000).
    pub limit: u32,
}

/// How a re-imported row landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Inserted,
    Updated,
    /// The same external id appeared earlier in the same import.
    Duplicate,
}

/// What was resolved after a crash or a lapsed lease.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Attempts in flight, closed as `interrupted` (and retried later, not now).
    pub interrupted_attempts: u64,
    /// Leases given back without an attempt.
    pub released_leases: u64,
}

/// A record as seen by tools, tests and the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordView {
    pub id: RecordId,
    pub external_id: String,
    pub name: String,
    pub custom_json: String,
    pub time_zones: String,
    pub priority: i64,
    pub state: String,
    pub attempts: u32,
    pub next_at: i64,
    pub phones: Vec<String>,
    pub last_outcome: Option<String>,
    pub last_sip_code: Option<i64>,
    pub last_disposition: Option<String>,
    pub last_agent: Option<String>,
    pub last_attempt_at: Option<i64>,
}

/// A node running on the store, as [`Store::nodes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePresence {
    pub node: String,
    /// The process running it (see [`crate::driver::node_presence`]).
    pub instance: String,
    /// When it last said it was alive.
    pub seen_at: Timestamp,
}

/// A node silent this long is dropped from `node_presence` by the next
/// node that starts ([`Store::claim_node`]).
pub const NODE_FORGOTTEN_AFTER: SignedDuration = SignedDuration::from_hours(7 * 24);

/// What [`Store::claim_node`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeClaim {
    /// The node is this process's now.
    Claimed,
    /// Another process holds it; it said it was alive at `seen_at`.
    HeldBy {
        instance: String,
        seen_at: Timestamp,
    },
}

/// One dial, for the CDR export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptView {
    pub id: AttemptId,
    pub external_id: String,
    pub phone: String,
    pub node: String,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    pub sip_code: Option<i64>,
    pub cpa_verdict: Option<String>,
    pub cpa_ms: Option<i64>,
    pub agent: Option<String>,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    pub abandoned: bool,
    pub ring_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub hold_ms: Option<i64>,
    pub recording_paused_ms: Option<i64>,
    /// The agents who transferred the call before `agent` (JSON array).
    pub transferred_from: Option<String>,
    /// The outside number the agent transferred the call to.
    pub transferred_to: Option<String>,
    /// The call guide's answers (JSON), if the agent gave any.
    pub guide_answers: Option<String>,
    /// The bridge recording's file name in `[media] record_dir`, if the
    /// call was recorded.
    pub recording: Option<String>,
}

/// Live answers and abandons of one minute, for the pacer's abandonment
/// windows (restored when a campaign starts, so a restart does not forget
/// the 30 days the US rule and the 24 hours the UK rule look back on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerMinute {
    /// The minute's start.
    pub minute: Timestamp,
    pub live_answers: u64,
    pub abandoned: u64,
}

/// One finished call of a campaign, for the pacer's outcome and talk
/// models (restored when a campaign starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentCall {
    /// From the dial until it resolved: the answer plus the analyser's time
    /// when it was answered, else its end (busy, no answer, failure).
    pub ring_ms: i64,
    /// A person answered (a human verdict, or an abandoned call).
    pub live: bool,
    /// How long the agent talked, when it reached one.
    pub talk_ms: Option<i64>,
}

/// One node's live answers and abandons of a campaign in the US window
/// (30 days) and the UK window (24 hours), for the campaign-wide
/// abandonment view of supervisors (`GET /api/campaigns/{name}/abandonment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAbandonment {
    pub node: String,
    pub us: crate::pacing::ledger::WindowCounts,
    pub uk: crate::pacing::ledger::WindowCounts,
}

/// The server's own words for a database error ("db error" alone says
/// nothing), else the driver's.
fn postgres_detail(error: &::postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({}: {})", error, db.code().code(), db.message()),
        None => error.to_string(),
    }
}

/// A campaign defined through the API, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDefinition {
    pub id: CampaignId,
    pub name: String,
    /// The definition's JSON (`config::definition::CampaignDefinition`).
    pub definition: String,
}

/// A start, pause or stop given on one node (`Store::record_run_command`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRunCommand {
    /// Increases with every command (a later commit may carry a lower id).
    pub id: i64,
    pub campaign: String,
    /// `start`, `pause` or `stop`.
    pub command: String,
    /// The node it was given on (`[store] node`).
    pub node: String,
}

/// The campaign store. Every method is one transaction.
pub trait Store: Send + Sync {
    /// Creates the campaign or updates its rules; returns its id.
    fn sync_campaign(&self, rules: &CampaignRules) -> Result<CampaignId, StoreError>;
    fn campaign_id(&self, name: &str) -> Result<Option<CampaignId>, StoreError>;
    /// Creates or updates a campaign defined through the API: its rules, as
    /// `sync_campaign` writes them, and its definition (the JSON of
    /// `config::definition`), which every start reads back.
    fn define_campaign(
        &self,
        rules: &CampaignRules,
        definition: &str,
    ) -> Result<CampaignId, StoreError>;
    /// The campaigns defined through the API, by name.
    fn campaign_definitions(&self) -> Result<Vec<StoredDefinition>, StoreError>;
    /// Forgets a campaign's API definition (it is no longer started with the
    /// dialer); its records, attempts and history stay. False: it had none.
    fn forget_campaign_definition(&self, name: &str) -> Result<bool, StoreError>;
    /// Keeps a start, pause or stop a supervisor gave on `node`, for the
    /// other nodes sharing the store to follow; returns its id.
    fn record_run_command(
        &self,
        campaign: &str,
        command: &str,
        node: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError>;
    /// The run commands with an id above `after`, oldest first (at most 1,000).
    fn run_commands_after(&self, after: i64) -> Result<Vec<StoredRunCommand>, StoreError>;
    /// The highest run command id (0: none yet).
    fn last_run_command(&self) -> Result<i64, StoreError>;
    /// Claims `node`'s part of a trunk of `max_lines` shared by the nodes
    /// of this store (`pacing::trunk_share::divide`), against the claims
    /// other nodes made since `live_since` (older ones are nodes gone);
    /// claims are serialised, so the parts never add up to more than the
    /// trunk.
    fn claim_trunk_share(
        &self,
        node: &str,
        demand: crate::pacing::trunk_share::TrunkDemand,
        max_lines: u32,
        now: Timestamp,
        live_since: Timestamp,
    ) -> Result<crate::pacing::trunk_share::TrunkShare, StoreError>;
    /// Gives `node`'s part of the shared trunk back (a clean shutdown).
    fn release_trunk_share(&self, node: &str) -> Result<(), StoreError>;
    /// Marks `node` as run by the process `instance` (an opaque text,
    /// see [`crate::driver::node_presence`]) if no process holds it, or it already
    /// does, or the holder is `replace` (a process the caller found gone);
    /// else returns the holder, for the caller to decide.
    fn claim_node(
        &self,
        node: &str,
        instance: &str,
        now: Timestamp,
        replace: Option<&str>,
    ) -> Result<NodeClaim, StoreError>;
    /// The running node says it is alive (taking its name back if nobody
    /// holds it); `false` if another process holds the node now (it found
    /// this one gone and took over).
    fn node_heartbeat(
        &self,
        node: &str,
        instance: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// A clean stop: the node is free (if `instance` still holds it).
    fn release_node(&self, node: &str, instance: &str) -> Result<(), StoreError>;
    /// The nodes running on this store (or that stopped without a clean
    /// stop: their last heartbeat tells), by name.
    fn nodes(&self) -> Result<Vec<NodePresence>, StoreError>;
    /// A carrier's Retry-After: records that `node` holds its new calls
    /// `until` then (if it does; a later hold of the node is never
    /// shortened) and returns the latest hold still running at `now` that
    /// any node recorded (`all_nodes`: a trunk shared by the nodes — a
    /// crashed or restarted node's hold included, since it is the
    /// carrier's request, not the node's) or that `node` recorded (its own
    /// trunk: an earlier run's hold, after a restart).
    fn share_trunk_hold(
        &self,
        node: &str,
        until: Option<Timestamp>,
        now: Timestamp,
        all_nodes: bool,
    ) -> Result<Option<Timestamp>, StoreError>;

    /// Starts an import run: rows seen twice in one run are duplicates.
    fn begin_import(&self, campaign: CampaignId, now: Timestamp) -> Result<i64, StoreError>;
    /// Inserts or updates (same external id) a batch of rows.
    fn import_batch(
        &self,
        campaign: CampaignId,
        run: i64,
        rows: &[ImportRow],
    ) -> Result<Vec<ImportOutcome>, StoreError>;

    /// The hopper: up to `max` dialable records, leased to `node`.
    fn lease(&self, request: &LeaseRequest<'_>) -> Result<Vec<Lease>, StoreError>;
    /// Pushes a lease's expiry to `until` (a long call).
    fn extend_lease(&self, lease: &Lease, until: Timestamp) -> Result<(), StoreError>;
    /// Gives a lease back without dialing.
    fn release(&self, lease: &Lease, how: Release, now: Timestamp) -> Result<(), StoreError>;
    /// A leased record is postponed (preview: "call back later"): the
    /// callback is scheduled and the lease given back in one transaction,
    /// `LeaseLost` if the lease is no longer this node's.
    fn postpone(
        &self,
        lease: &Lease,
        request: &CallbackRequest,
        now: Timestamp,
    ) -> Result<CallbackId, StoreError>;

    /// Writes the attempt row; call it BEFORE the INVITE leaves. Fails with
    /// `LeaseLost` if the lease lapsed, and with `NotDialable` (the record
    /// given back to the list, where the hopper removes or defers it) if
    /// the number went on a do-not-call list or the contact's calling
    /// window closed since the lease: then do not dial.
    fn begin_attempt(&self, lease: &Lease, now: Timestamp) -> Result<AttemptId, StoreError>;
    /// Completes an attempt and moves its record on (retry, done, …).
    /// An attempt a recovery closed as `interrupted` is amended: the row
    /// takes this result (and a do-not-call, a dead number with it), and
    /// the record moves on from it unless it was leased or dialed again
    /// since. Any other completed attempt is `AttemptAlreadyComplete`.
    fn complete_attempt(
        &self,
        attempt: AttemptId,
        result: &AttemptResult,
        now: Timestamp,
    ) -> Result<RecordState, StoreError>;

    /// A live answer on an attempt still in flight: its answer time and the
    /// human verdict, counted as **abandoned** until [`Store::attempt_bridged`]
    /// says an agent took it. A dialer that dies while the caller waits
    /// for an agent (or hears the abandon message) thus leaves an abandoned
    /// live answer behind, which the abandonment windows restored at the
    /// next start count, not an `interrupted` attempt of unknown result.
    /// Does nothing once the attempt is complete; after
    /// [`Store::attempt_bridged`] (the two may land in either order) it
    /// writes the answer but not the abandon.
    fn attempt_live(&self, attempt: AttemptId, answered_at: Timestamp) -> Result<(), StoreError>;
    /// An agent took the live answer of an attempt still in flight: not
    /// abandoned. Does nothing once the attempt is complete.
    fn attempt_bridged(&self, attempt: AttemptId, agent: &str) -> Result<(), StoreError>;
    /// Whether the attempt's own result is on record: it has ended with
    /// an outcome other than `interrupted`. (`interrupted` is only written
    /// by [`Store::recover_node`] and [`Store::expire_leases`], for a call
    /// whose node was thought gone; [`Store::complete_attempt`] with the
    /// call's real result amends it.) [`StoreError::UnknownAttempt`] if
    /// there is no such attempt.
    fn attempt_written(&self, attempt: AttemptId) -> Result<bool, StoreError>;

    /// At startup: closes this node's attempts in flight as `interrupted`
    /// (retried after the network-failure delay, never redialed at once)
    /// and gives back its leases.
    fn recover_node(&self, node: &str, now: Timestamp) -> Result<Recovery, StoreError>;
    /// Resolves every lease that lapsed (a crashed node's), the same way.
    fn expire_leases(&self, now: Timestamp) -> Result<Recovery, StoreError>;

    fn schedule_callback(
        &self,
        request: &CallbackRequest,
        now: Timestamp,
    ) -> Result<CallbackId, StoreError>;
    fn change_callback(
        &self,
        id: CallbackId,
        request: &CallbackRequest,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    fn cancel_callback(&self, id: CallbackId, now: Timestamp) -> Result<(), StoreError>;
    /// Pending callbacks (not yet delivered, changed or cancelled away).
    fn callbacks(&self, filter: &CallbackFilter) -> Result<Vec<CallbackView>, StoreError>;

    /// Adds a number to the global DNC list (`campaign` None) or a campaign's.
    fn add_dnc(
        &self,
        campaign: Option<CampaignId>,
        e164: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Adds many numbers to a DNC list in one transaction; how many were
    /// not on it yet. Every number must be E.164 (nothing is written else).
    fn add_dnc_many(
        &self,
        campaign: Option<CampaignId>,
        numbers: &[String],
        now: Timestamp,
    ) -> Result<u64, StoreError>;
    /// Takes a number off one list; whether it was on it.
    fn remove_dnc(&self, campaign: Option<CampaignId>, e164: &str) -> Result<bool, StoreError>;
    fn is_dnc(&self, campaign: CampaignId, e164: &str) -> Result<bool, StoreError>;

    /// System dispositions plus the campaign's own.
    fn dispositions(&self, campaign: CampaignId) -> Result<Vec<Disposition>, StoreError>;
    fn add_disposition(
        &self,
        campaign: CampaignId,
        disposition: &Disposition,
    ) -> Result<(), StoreError>;

    fn record(
        &self,
        campaign: CampaignId,
        external_id: &str,
    ) -> Result<Option<RecordView>, StoreError>;
    /// Keeps agents' state changes (in order) for the activity reports.
    fn record_agent_states(&self, changes: &[StateChange]) -> Result<(), StoreError>;
    /// Ends the states `node`'s agents were left in (not logged out) at
    /// `at`, as logged out with `reason`: at a clean stop, or at the next
    /// start after a crash. Returns how many agents it closed.
    fn close_agent_states(
        &self,
        node: &str,
        at: Timestamp,
        reason: &str,
    ) -> Result<u64, StoreError>;
    /// The state changes inside `[from, to)`, with each agent's latest one
    /// before `from`, sorted by agent and time; one agent's, or everyone's.
    fn agent_state_changes(
        &self,
        agent: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<StateChange>, StoreError>;
    /// The file name of an attempt's bridge recording, if it has one.
    fn attempt_recording(&self, attempt: AttemptId) -> Result<Option<String>, StoreError>;
    /// An agent corrected the contact during a call or a preview: its
    /// name (when given) and its custom fields (the whole JSON object).
    /// A later import of the same external id writes over them.
    fn update_contact(
        &self,
        record: RecordId,
        name: Option<&str>,
        custom_json: &str,
    ) -> Result<(), StoreError>;
    /// Records per state.
    fn counts(&self, campaign: CampaignId) -> Result<Vec<(String, u64)>, StoreError>;
    /// Streams every record (with its last result), in import order.
    fn export_records(
        &self,
        campaign: CampaignId,
        each: &mut dyn FnMut(RecordView) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError>;
    /// Live answers (attempts the analyser judged human, and abandoned
    /// ones) and abandons per minute of `node`'s dials, oldest first:
    /// answered from `since` on, of dials started before `until` (the dials
    /// of the process asking are left out: its pacer has counted them
    /// already). Each node paces its own share of a campaign under the cap,
    /// so each restores its own history: restoring every node's on each
    /// would hand the same room under the cap to all of them.
    fn answer_history(
        &self,
        campaign: CampaignId,
        node: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<AnswerMinute>, StoreError>;
    /// The campaign's last `limit` finished calls (every node's: they tell
    /// how the list answers, not whose budget is spent) started from
    /// `since` until `until`, oldest first; calls closed as interrupted are
    /// left out (how they ended is unknown).
    fn recent_calls(
        &self,
        campaign: CampaignId,
        since: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<RecentCall>, StoreError>;
    /// Live answers and abandons of the campaign per node (every node that
    /// dialed it, by name): answered from `us_since` on, and from `uk_since`
    /// on. Counted as [`Store::answer_history`] counts them.
    fn abandonment_by_node(
        &self,
        campaign: CampaignId,
        us_since: Timestamp,
        uk_since: Timestamp,
    ) -> Result<Vec<NodeAbandonment>, StoreError>;
    /// Streams every attempt, oldest first.
    fn export_attempts(
        &self,
        campaign: CampaignId,
        each: &mut dyn FnMut(AttemptView) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError>;
}

/// Opens the store named by a `[store] url`, migrating it.
pub fn open(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Box::new(sqlite::open(std::path::Path::new(path))?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(postgres::open(url)?))
    } else {
        Err(StoreError::Url(url.to_string()))
    }
}

pub(crate) fn ms(at: Timestamp) -> i64 {
    at.as_millisecond()
}

pub(crate) fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}
