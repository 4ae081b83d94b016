//! Prometheus metrics: every metric's name and meaning in one place, the
//! recorder installed by `outdial run`, and `GET /metrics` rendering.
//!
//! Cores never call these; the shell tasks that drive them do, so a test
//! of a core needs no recorder (the macros are no-ops without one).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Gauge: agents per state (`state` label: logged_out, not_ready, ready, …).
pub const AGENTS: &str = "outdial_agents";
/// Gauge: customers an agent holds now (hold/resume).
pub const CUSTOMERS_ON_HOLD: &str = "outdial_customers_on_hold";
/// Gauge: agents' browser phones (WebRTC) connected now.
pub const BROWSER_PHONES: &str = "outdial_browser_phones";
/// Gauge: supervisors listening in on agents now (monitor, whisper, barge).
pub const LISTEN_INS: &str = "outdial_listen_ins";
/// Gauge: 1 while a campaign runs (`campaign` label).
pub const CAMPAIGN_RUNNING: &str = "outdial_campaign_running";
/// Counter: commands the engine applied or rejected (`result` label).
pub const ENGINE_COMMANDS: &str = "outdial_engine_commands_total";
/// Counter: events the engine emitted (`type` label).
pub const ENGINE_EVENTS: &str = "outdial_engine_events_total";

/// Gauge: a running campaign's abandonment rate as the pacer counts it
/// (`campaign`, `window` = `us_30d` | `uk_24h`), a fraction.
pub const ABANDON_RATE: &str = "outdial_abandon_rate";
/// Gauge: a running campaign's calls in progress (`campaign`).
pub const LINES_IN_USE: &str = "outdial_lines_in_use";
/// Gauge: a running campaign's live answers waiting for an agent.
pub const ANSWERS_WAITING: &str = "outdial_answers_waiting";
/// Gauge: a running campaign's repeat calls waiting for an agent to
/// reserve (Ofcom's repeat-call rule, `[campaign.repeat_calls]`).
pub const REPEAT_CALLS_WAITING: &str = "outdial_repeat_calls_waiting";
/// Gauge: 1 while a running campaign's pacing is held back by the trunk's
/// limits or the abandonment cap (`campaign`, `reason` = `trunk_lines` |
/// `calls_per_second` | `compliance`), else 0 for each reason.
pub const HELD_BACK: &str = "outdial_held_back";
/// Gauge: 1 while the trunk answers OPTIONS, 0 while it does not (absent
/// until the first answer, and with `options_interval_s = 0`).
pub const TRUNK_UP: &str = "outdial_trunk_up";
/// Gauge: 1 while this node is registered with the trunk (`[trunk]
/// register`), 0 while its registration fails (absent without it).
pub const TRUNK_REGISTERED: &str = "outdial_trunk_registered";
/// Gauge: customer calls this node may hold on a trunk shared with other
/// nodes (`[trunk] shared_by_nodes`), and the nodes sharing it now.
pub const TRUNK_SHARE_LINES: &str = "outdial_trunk_share_lines";
pub const TRUNK_SHARE_NODES: &str = "outdial_trunk_share_nodes";
/// Gauge: 1 while new calls are held for the trunk's sake (`reason` =
/// `retry_after`: a 503 asked for a pause | `unreachable`: OPTIONS
/// unanswered | `failing`: calls failing in a row, backing off), else 0.
pub const TRUNK_HELD: &str = "outdial_trunk_held";

/// Counter: SIP requests (INVITE, OPTIONS, REGISTER) sent on to the next
/// hop's next address (its next SRV target) after one did not answer or
/// answered 503: a rising count is an SBC of the carrier down.
pub const SIP_FAILOVERS: &str = "outdial_sip_failovers_total";
/// Gauge (`address` label): 1 while an address of the trunk's next hop
/// (an SBC found by SRV) is tried last, after it let a request time out or
/// answered 503 with Retry-After; 0 once it is back.
pub const SIP_NEXT_HOP_RESTING: &str = "outdial_sip_next_hop_resting";
/// Counter: INVITEs sent to a target a trunk's 3xx named (`[trunk]
/// follow_redirects`).
pub const SIP_REDIRECTS: &str = "outdial_sip_redirects_total";
/// Counter: calls refused with 607 (the callee marked it unwanted) or 608
/// (the network's call analytics blocked it) (`campaign`, `caller_id`,
/// `sip_code` labels): a caller ID flagged as spam.
pub const CALLS_REFUSED_AS_UNWANTED: &str = "outdial_calls_refused_as_unwanted_total";
/// Counter: dials stopped when the call was placed because the number went
/// on a do-not-call list or the contact's calling window closed since the
/// record was leased (`campaign`, `reason` = `do_not_call`,
/// `window_closed`).
pub const DIALS_STOPPED: &str = "outdial_dials_stopped_total";
/// Counter: transfers between agents (`campaign`, `step` = `started`,
/// `done`, `failed`): a high failed share means agents pick phones that
/// cannot take calls.
pub const TRANSFERS: &str = "outdial_transfers_total";
/// Counter: finished call attempts (`campaign`, `result` labels).
pub const ATTEMPTS: &str = "outdial_attempts_total";
/// Counter: answers that crossed the ring timeout's CANCEL and were kept
/// (`campaign` label): how often a ring timeout is a hair too short.
pub const RING_TIMEOUT_ANSWERS: &str = "outdial_ring_timeout_answers_total";
/// Histogram (s): agent assigned → customer spliced into the agent's leg.
pub const CONNECT_LATENCY: &str = "outdial_connect_latency_seconds";
/// Histogram (s): answer → agent talking (analysis + waiting + splice).
pub const ANSWER_TO_AGENT: &str = "outdial_answer_to_agent_seconds";
/// Histogram (s): INVITE → first provisional response (post-dial delay).
pub const POST_DIAL_DELAY: &str = "outdial_post_dial_delay_seconds";

/// Every agent state name, so a state nobody is in reads 0, not absent.
pub const AGENT_STATES: [&str; 7] = [
    "logged_out",
    "not_ready",
    "ready",
    "reserved",
    "connecting",
    "on_call",
    "wrap_up",
];

/// Installs the process-wide recorder; call once, from `outdial run`.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    metrics::describe_gauge!(AGENTS, "Agents per state");
    metrics::describe_gauge!(
        CUSTOMERS_ON_HOLD,
        "Customers an agent holds now (the desktop's Hold or the phone's)"
    );
    metrics::describe_gauge!(
        BROWSER_PHONES,
        "Agents' phones in the web desktop (WebRTC) connected now"
    );
    metrics::describe_gauge!(
        LISTEN_INS,
        "Supervisors listening in on agents now (monitor, whisper or barge)"
    );
    metrics::describe_gauge!(CAMPAIGN_RUNNING, "1 while the campaign runs");
    metrics::describe_gauge!(ABANDON_RATE, "Abandoned / live answers per window");
    metrics::describe_gauge!(LINES_IN_USE, "Calls in progress per campaign");
    metrics::describe_gauge!(ANSWERS_WAITING, "Live answers waiting for an agent");
    metrics::describe_gauge!(HELD_BACK, "1 while pacing is held back, by reason");
    metrics::describe_gauge!(TRUNK_UP, "1 while the trunk answers OPTIONS");
    metrics::describe_gauge!(
        TRUNK_REGISTERED,
        "1 while this node is registered with the trunk"
    );
    metrics::describe_gauge!(
        TRUNK_SHARE_LINES,
        "Calls this node may hold on a trunk shared by nodes"
    );
    metrics::describe_gauge!(TRUNK_SHARE_NODES, "Nodes sharing the trunk now");
    metrics::describe_gauge!(
        TRUNK_HELD,
        "1 while new calls are held for the trunk, by reason"
    );
    metrics::describe_counter!(ENGINE_COMMANDS, "Engine commands by result");
    metrics::describe_counter!(ENGINE_EVENTS, "Engine events by type");
    metrics::describe_counter!(ATTEMPTS, "Finished call attempts by result");
    metrics::describe_counter!(
        SIP_FAILOVERS,
        "SIP requests sent on to the next address of the next hop"
    );
    metrics::describe_gauge!(
        SIP_NEXT_HOP_RESTING,
        "1 while an address of the trunk's next hop is tried last (silent, or a 503 Retry-After)"
    );
    metrics::describe_counter!(
        CALLS_REFUSED_AS_UNWANTED,
        "Calls refused with 607 or 608, by the caller ID they presented"
    );
    metrics::describe_counter!(
        DIALS_STOPPED,
        "Dials stopped at the call: its number went on a DNC list or its calling window closed after the lease"
    );
    metrics::describe_counter!(
        SIP_REDIRECTS,
        "INVITEs sent where a trunk's 3xx redirected the call"
    );
    metrics::describe_counter!(
        RING_TIMEOUT_ANSWERS,
        "Answers that crossed the ring timeout's CANCEL, kept as answers"
    );
    metrics::describe_histogram!(
        CONNECT_LATENCY,
        metrics::Unit::Seconds,
        "Agent assigned to customer spliced into the agent's leg"
    );
    metrics::describe_histogram!(
        ANSWER_TO_AGENT,
        metrics::Unit::Seconds,
        "Answer to agent talking"
    );
    metrics::describe_histogram!(
        POST_DIAL_DELAY,
        metrics::Unit::Seconds,
        "INVITE to first provisional response"
    );
    Ok(handle)
}
