//! Prometheus metrics: every metric's name and meaning in one place, the
//! recorder installed by `outdial run`, and `GET /metrics` rendering.
//!
//! Cores never call these; the shell tasks that drive them do, so a test
//! of a core needs no recorder (the macros are no-ops without one).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Gauge: agents per state (`state` label: logged_out, not_ready, ready, …).
pub const AGENTS: &str = "outdial_agents";
/// Gauge: 1 while a campaign runs (`campaign` label).
pub const CAMPAIGN_RUNNING: &str = "outdial_campaign_running";
/// Counter: commands the engine applied or rejected (`result` label).
pub const ENGINE_COMMANDS: &str = "outdial_engine_commands_total";
/// Counter: events the engine emitted (`type` label).
pub const ENGINE_EVENTS: &str = "outdial_engine_events_total";

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
    metrics::describe_gauge!(CAMPAIGN_RUNNING, "1 while the campaign runs");
    metrics::describe_counter!(ENGINE_COMMANDS, "Engine commands by result");
    metrics::describe_counter!(ENGINE_EVENTS, "Engine events by type");
    Ok(handle)
}
