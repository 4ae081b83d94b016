//! The dialer engine's sans-IO core: the [`dialer::Dialer`] holding every
//! agent session and campaign run state, one [`attempt::Attempt`] per
//! customer call (where the 2-second abandon clock lives) and the
//! [`dispatch::Dispatcher`] that hands live answers to free agents;
//! [`preview`] the two preview modes (records shown before dialing);
//! [`repeat_calls`] Ofcom's repeat-call rule (a call that needs a
//! guaranteed agent is dialed with one reserved); [`reserved_at_dial`]
//! calls dialed with their agent reserved (those, previewed records and
//! progressive `agent_reserved_at_dial` campaigns); `agent_share` which one
//! campaign's pacing counts an agent shared by several that dial by
//! themselves;
//! [`definitions`] campaigns defined, changed and removed at run time; `calls`
//! wires pacing, attempts and agents together, `trunk_lines` divides the
//! node's trunk lines and calls per second among the running campaigns,
//! and [`io`] names what crosses to the tokio shell (`driver`).

mod agent_share;
pub mod attempt;
pub mod calls;
pub mod campaign_run;
mod consultation;
pub mod contact_edit;
pub mod definitions;
pub mod dialer;
pub mod dispatch;
pub mod io;
pub mod mid_call;
mod outside_transfer;
pub mod preview;
pub mod repeat_calls;
pub mod reserved_at_dial;
pub mod trunk_health;
mod trunk_lines;

/// The node sections of the engine tests' configurations: `[sip]`, `[rtp]`,
/// `[trunk]` with these limits, `[api]` and `[store]` (nothing is bound or
/// opened); the tests add their campaigns and agents.
#[cfg(test)]
pub(crate) fn test_node_toml(max_lines: u32, calls_per_second: f64) -> String {
    format!(
        r#"
[sip]
listen = "127.0.0.1:5060"
[rtp]
bind = "127.0.0.1"
port_min = 20000
port_max = 20999
[trunk]
uri = "sip:127.0.0.1:5070"
caller_id = "+15551230000"
max_concurrent_calls = {max_lines}
max_calls_per_second = {calls_per_second}
[api]
listen = "127.0.0.1:8080"
[store]
url = "sqlite://x.db"
"#
    )
}

#[cfg(test)]
mod agent_share_tests;
#[cfg(test)]
mod calls_tests;
#[cfg(test)]
mod consultation_tests;
#[cfg(test)]
mod dtmf_tests;
#[cfg(test)]
mod outside_transfer_tests;
#[cfg(test)]
mod preview_tests;
#[cfg(test)]
mod reserved_at_dial_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transfer_tests;
#[cfg(test)]
mod trunk_lines_tests;
#[cfg(test)]
mod virtual_shift;
#[cfg(test)]
mod voicemail_drop_tests;
#[cfg(test)]
mod world_tests;
