//! What crosses the boundary between the sans-IO [`Dialer`](super::dialer::Dialer)
//! and its tokio shell (`driver`): [`Effect`]s the dialer asks the shell to
//! carry out (store, SIP, RTP), and [`Input`]s the shell reports back, each
//! handed over with the current `Instant`.
//!
//! Attempts are named by the dialer's own [`CallId`] (a process-local
//! counter); the shell maps it to its SIP call handle, media leg and store
//! attempt row.

use std::time::Duration;

use serde::Serialize;

use super::attempt::{Failure, Outcome, Prompt, Verdict};
use crate::store::{Lease, Release};

/// One customer call attempt, as the dialer names it.
pub type CallId = u64;

/// Work for the shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Lease up to `max` dialable records of `campaign` from the store and
    /// report them with [`Input::Leased`] (or [`Input::LeaseFailed`]).
    /// `for_agent`: also hand out that agent's due personal callbacks.
    Lease {
        campaign: String,
        max: usize,
        for_agent: Option<String>,
        /// Leave the numbers that need a guaranteed agent (Ofcom's
        /// repeat-call rule) in the list: the campaign holds enough of them
        /// waiting for its agents.
        skip_agent_required: bool,
    },
    /// Give leases back without dialing: `Unused` when the campaign paused
    /// or stopped; what the agent chose for a previewed record.
    ReleaseLeases { leases: Vec<Lease>, how: Release },
    /// An agent changed the contact it handles: write the record's name
    /// (when given) and its custom fields (the whole object).
    UpdateContact {
        record: crate::store::RecordId,
        name: Option<String>,
        custom_json: String,
    },
    /// A previewed record postponed by its agent: schedule `callback` for
    /// it, then give its lease back (it is due again at the callback's
    /// time, first in the hopper).
    Postpone {
        lease: Box<Lease>,
        callback: Callback,
    },
    /// Read the campaign's live answers and abandons of the last 30 days
    /// (earlier runs) from the store and report them with
    /// [`Input::AnswerHistory`]: the pacer's abandonment windows must not
    /// start empty after a restart.
    LoadAnswerHistory { campaign: String },
    /// Write the attempt row, then INVITE `lease.phone` through the trunk
    /// with a fresh media leg and call-progress analysis on it.
    Dial {
        call: CallId,
        campaign: String,
        lease: Box<Lease>,
        /// The caller ID the agent picked (preview); None: the campaign's
        /// or the trunk's.
        caller_id: Option<String>,
    },
    /// Stop ringing (CANCEL) or end the call (BYE): the shell knows which.
    HangUp { call: CallId },
    /// The ring timeout: CANCEL, but a 200 that crosses the CANCEL is kept
    /// and reported as [`Input::Answered`] (a person picked up as we gave
    /// up); else the INVITE's final response comes as [`Input::Failed`].
    CancelRinging { call: CallId },
    /// Zip tone to `agent`, then splice the customer into the agent's
    /// reservation leg; report [`Input::Spliced`].
    Connect { call: CallId, agent: String },
    /// Play a prompt to the customer; report [`Input::PromptDone`].
    Play { call: CallId, prompt: Prompt },
    /// The call is over: free its media (unsplice from the agent first).
    CallOver { call: CallId },
    /// The call is a live answer now waiting for an agent: write its answer
    /// time and verdict to the attempt row, counted as abandoned until
    /// [`Effect::Bridged`] (a dialer that dies now has abandoned it).
    LiveAnswer { call: CallId },
    /// An agent took the live answer: it is not abandoned.
    Bridged { call: CallId, agent: String },
    /// Write a finished attempt's result to the store (for a connected
    /// call, once the agent's wrap-up gave the disposition).
    Record(Box<AttemptRecord>),
    /// The call progress on the agent's leg while `call`, placed from a
    /// preview, rings (`on`): the carrier's early media when it sends any,
    /// else generated ringback; or stop it (the call failed before any
    /// answer; at an answer the zip tone replaces it).
    AgentRingback {
        agent: String,
        call: CallId,
        on: bool,
    },
    /// Take `call`'s customer out of `agent`'s leg now, ahead of anything
    /// the dialer asks of that leg next (a voicemail dropped: the agent is
    /// free for the next customer at once, while this one hears the
    /// message).
    TakeBack { call: CallId, agent: String },
    /// A consultation (`on`): `to`'s leg is heard in `from`'s, where
    /// `call`'s customer is bridged — the two agents talk, and while the
    /// customer is off hold all three do. Off: `to`'s leg goes back to
    /// serving `to` alone.
    Consult {
        call: CallId,
        /// Which consultation of the call (the attempt's count).
        number: u32,
        from: String,
        to: String,
        on: bool,
    },
    /// An outside transfer of `call`: INVITE `number` through the trunk
    /// (the campaign's caller ID, a fresh media leg, no call-progress
    /// analysis); report [`Input::OutsideAnswered`] or
    /// [`Input::OutsideEnded`]. The customer is spliced into it with
    /// [`Effect::Connect`], named by
    /// [`outside_party`](super::attempt::outside_party).
    /// `line`: which of the call's outside lines (its reports name it).
    DialOutside {
        call: CallId,
        number: String,
        line: u32,
    },
    /// End `call`'s outside `line` (CANCEL while it rings, else BYE);
    /// nothing if the call's line is another by now.
    HangUpOutside { call: CallId, line: u32 },
    /// Put `call`'s customer, bridged into `agent`'s leg, on hold (`on`:
    /// neither hears the other, the customer hears the campaign's hold
    /// audio) or take them off hold.
    Hold {
        call: CallId,
        agent: String,
        on: bool,
    },
    /// Send DTMF digits (RFC 4733 event codes) from `agent` to `call`'s
    /// customer, bridged into `agent`'s leg.
    SendDtmf {
        call: CallId,
        agent: String,
        codes: Vec<u8>,
    },
    /// Pause the recording of `call`, bridged into `agent`'s leg (silence
    /// is recorded meanwhile), or let it go on.
    PauseRecording {
        call: CallId,
        agent: String,
        paused: bool,
    },
    /// Place (or re-place) the agent's reservation (nailed-up) call.
    CallAgent { agent: String },
    /// End the agent's reservation call (logout).
    HangUpAgent { agent: String },
}

/// A finished attempt, ready for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub call: CallId,
    pub campaign: String,
    pub lease: Lease,
    pub outcome: Outcome,
    /// The analyser's verdict name and when it came (ms after the answer).
    pub cpa_verdict: Option<&'static str>,
    pub cpa_ms: Option<u32>,
    /// The agent's wrap-up code and notes (connected calls).
    pub disposition: Option<String>,
    pub notes: Option<String>,
    /// Answer → end of the call, for the talk time column.
    pub talk_ms: Option<u32>,
    /// Of the talk time, how long the customer was on hold (calls that
    /// reached an agent).
    pub hold_ms: Option<u32>,
    /// How long the agent kept the call recording paused (calls that
    /// reached an agent).
    pub recording_paused_ms: Option<u32>,
    /// A callback the agent asked for with the disposition.
    pub callback: Option<Callback>,
    /// The agent ticked "do not call" with the disposition.
    pub do_not_call: bool,
    /// The call guide's answers (JSON: `[{"question","answer"}]`).
    pub guide_answers: Option<String>,
}

impl AttemptRecord {
    /// The agent's wrap-up: its disposition and what came with it (the
    /// guide's answers only when given).
    pub(super) fn fill_wrap_up(&mut self, given: super::calls::WrapUpGiven) {
        self.disposition = given.code;
        self.notes = given.notes;
        self.callback = given.callback;
        self.do_not_call = given.do_not_call;
        if given.guide_answers.is_some() {
            self.guide_answers = given.guide_answers;
        }
    }
}

/// A callback to schedule for the attempt's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub at: jiff::Timestamp,
    /// Only this agent takes it (a personal callback).
    pub agent: Option<String>,
    /// Dial this number (E.164) instead of the record's.
    pub phone: Option<String>,
}

/// One minute of a campaign's earlier live answers and abandons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryMinute {
    /// How long before the input's `now` the minute started.
    pub ago: std::time::Duration,
    pub live_answers: u64,
    pub abandoned: u64,
}

/// Why a splice failed: who is still there decides what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The agent's phone (its media) is gone; the customer's leg is whole:
    /// the customer waits for another agent inside the same window.
    AgentPhoneGone,
    /// The customer's media is gone (the call is ending).
    CustomerGone,
}

/// What the shell observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Leased {
        campaign: String,
        leases: Vec<Lease>,
        /// The `for_agent` of the request.
        for_agent: Option<String>,
    },
    /// The store could not lease (an error was logged); retry later.
    LeaseFailed {
        campaign: String,
        for_agent: Option<String>,
    },
    /// The campaign's earlier live answers and abandons, per minute: how
    /// long before now the minute was, live answers, abandons.
    /// With them the campaign's recent finished calls, oldest first, for
    /// the pacer's outcome and talk models.
    AnswerHistory {
        campaign: String,
        minutes: Vec<HistoryMinute>,
        calls: Vec<crate::pacing::RestoredCall>,
    },
    /// The call could not be placed at all (lease lost, no RTP port, SIP
    /// refused the request): nothing was sent to the trunk.
    NotPlaced {
        call: CallId,
        reason: String,
    },
    /// A provisional response (18x).
    Ringing {
        call: CallId,
    },
    Answered {
        call: CallId,
    },
    /// A final non-2xx response, a timeout or a transport failure.
    Failed {
        call: CallId,
        failure: Failure,
        sip_code: Option<u16>,
        /// The response's Retry-After (a 503 asking for a pause).
        retry_after: Option<Duration>,
    },
    /// The trunk's OPTIONS keepalive was answered (any response) or not.
    TrunkPing {
        answered: bool,
    },
    /// The shell's lookup of the trunk (DNS): whether it has an address
    /// for it now. Without one no call is started.
    TrunkRoute {
        known: bool,
    },
    /// The customer hung up (BYE received).
    RemoteHangUp {
        call: CallId,
    },
    /// A verdict from call-progress analysis (early media or after answer),
    /// with the analyser's name for it and its stream time.
    Cpa {
        call: CallId,
        verdict: Verdict,
        label: &'static str,
        at_ms: u32,
    },
    /// The customer is spliced into `agent`'s leg: they hear each other.
    /// (A report for an agent the call no longer waits for is stale.)
    Spliced {
        call: CallId,
        agent: String,
    },
    /// The splice into `agent`'s leg failed.
    ConnectFailed {
        call: CallId,
        agent: String,
        cause: ConnectFailure,
    },
    PromptDone {
        call: CallId,
    },
    /// The consulted agent's leg could not be heard in `call` (its phone's
    /// media could not be lent): the consultation ends.
    ConsultationFailed {
        call: CallId,
        /// The consultation's number ([`Effect::Consult`]): a report on an
        /// earlier one is stale.
        number: u32,
    },
    /// The outside number of `call`'s transfer answered.
    OutsideAnswered {
        call: CallId,
        line: u32,
    },
    /// `call`'s outside line ended: refused or unanswered (`why`, with
    /// the SIP code), or hung up by the other side.
    OutsideEnded {
        call: CallId,
        line: u32,
        why: String,
    },
    /// No RTP from the customer for the inactivity timeout.
    MediaTimeout {
        call: CallId,
    },
    /// The agent's reservation call came up or went down.
    AgentLeg {
        agent: String,
        up: bool,
    },
    /// The agent's phone registered from a new address (not a refresh of
    /// the binding it had): a logged-in agent without a reservation call
    /// is called there, so logging in on the desktop before starting the
    /// softphone works.
    AgentPhoneRegistered {
        agent: String,
    },
    /// The agent's phone put its call on hold (a re-offer sendonly or
    /// inactive: the phone's own Hold button) or took it off hold.
    AgentPhoneHold {
        agent: String,
        held: bool,
    },
}

/// A campaign's live figures (API `GET /campaigns/{name}/stats`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CampaignStats {
    pub dials: u64,
    /// Finished attempts by result name.
    pub outcomes: std::collections::BTreeMap<&'static str, u64>,
    pub live_answers: u64,
    pub abandoned: u64,
    /// Abandoned ÷ live answers, rolling 30 days (US rule), from the pacer.
    pub abandon_rate_us: f64,
    /// (Abandoned + expected CPA false positives) ÷ live answers, 24 h (UK).
    pub abandon_rate_uk: f64,
    /// Trunk lines the campaign's calls hold (a call transferred to an
    /// outside number holds two).
    pub lines_in_use: usize,
    pub answers_waiting_for_agent: usize,
    pub records_buffered: usize,
    /// Repeat calls that need a guaranteed agent (Ofcom), leased and
    /// waiting for a Ready agent, and those dialed with one reserved.
    pub repeat_calls_waiting: usize,
    pub repeat_calls_dialed: u64,
    /// Talk time ÷ logged-in time of the campaign's agents since start.
    pub occupancy: f64,
    /// Why the last decision dialed no more (e.g. `trunk_lines`: max
    /// concurrent calls reached).
    pub limit: Option<String>,
    /// The same in words (e.g. "max concurrent calls reached").
    pub limit_reason: Option<&'static str>,
    /// The last pacing decision's numbers.
    pub reasoning: Option<crate::pacing::Reasoning>,
    /// Agent assigned → customer spliced into the agent's leg, ms (p50,
    /// p99, max): the dialer's own connect time.
    pub connect_latency_ms: Option<[f64; 3]>,
    /// Human verdict → agent assigned, ms (p50, p99, max): the wait for a
    /// free agent (zero when one was ready).
    pub agent_wait_ms: Option<[f64; 3]>,
}
