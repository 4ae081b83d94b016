//! The agents' activity over time, for reports that outlive a shift and a
//! restart: each state change is kept in the store (`agent_states`), and
//! this module turns the changes into intervals (who was in which state,
//! with which Not-ready reason, from when to when) and totals per agent,
//! state and reason — the time-in-state report every contact centre asks
//! for (VICIdial's agent time detail). Pure functions: the store reads the
//! changes, the API serves the report.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

/// The state an agent session is in once it has ended: no interval is
/// counted for it.
pub const LOGGED_OUT: &str = "logged_out";
/// The reason written when a node closes its agents' states: at a clean
/// stop, or at the next start after a crash (then at its last heartbeat).
pub const REASON_DIALER_STOPPED: &str = "dialer stopped";

/// One state change of one agent, as kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateChange {
    pub agent: String,
    /// The agent view's state name (`ready`, `not_ready`, `on_call`, …).
    pub state: String,
    /// The Not-ready reason, if any.
    pub reason: Option<String>,
    pub at: Timestamp,
    /// The dialer node the agent was logged in on.
    pub node: String,
}

/// An agent's time in one state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub agent: String,
    pub state: String,
    pub reason: Option<String>,
    pub node: String,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub seconds: f64,
}

/// An agent's total time in one state (and reason) over the report's span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Total {
    pub agent: String,
    pub state: String,
    pub reason: Option<String>,
    pub seconds: f64,
    /// How many times the agent entered it (intervals counted).
    pub times: u32,
}

/// The intervals inside `[from, to)` made from `changes` (sorted by agent,
/// then time; each agent's latest change before `from` included, so a
/// state entered earlier is counted from `from`). An agent's last state
/// runs until `to` — or, when its node is in `silent_nodes` (a node that
/// crashed and has not started again: its states were never ended), until
/// that node was last seen alive. Logged-out time is not an interval.
pub fn intervals(
    changes: &[StateChange],
    from: Timestamp,
    to: Timestamp,
    silent_nodes: &BTreeMap<String, Timestamp>,
) -> Vec<Interval> {
    let mut out = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        if change.state == LOGGED_OUT {
            continue;
        }
        let next = changes
            .get(index + 1)
            .filter(|next| next.agent == change.agent);
        let start = change.at.max(from);
        let last_seen = silent_nodes.get(&change.node).copied();
        let open_end = last_seen.map_or(to, |seen| seen.max(change.at));
        let end = next.map_or(open_end, |next| next.at).min(to);
        if end <= start {
            continue;
        }
        out.push(Interval {
            agent: change.agent.clone(),
            state: change.state.clone(),
            reason: change.reason.clone(),
            node: change.node.clone(),
            started_at: start,
            ended_at: end,
            seconds: end.duration_since(start).as_secs_f64(),
        });
    }
    out
}

/// Each agent's time per state and reason, in agent, state, reason order.
pub fn totals(intervals: &[Interval]) -> Vec<Total> {
    let mut sums: BTreeMap<(String, String, Option<String>), (f64, u32)> = BTreeMap::new();
    for interval in intervals {
        let key = (
            interval.agent.clone(),
            interval.state.clone(),
            interval.reason.clone(),
        );
        let sum = sums.entry(key).or_default();
        sum.0 += interval.seconds;
        sum.1 += 1;
    }
    sums.into_iter()
        .map(|((agent, state, reason), (seconds, times))| Total {
            agent,
            state,
            reason,
            seconds,
            times,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn change(agent: &str, state: &str, reason: Option<&str>, s: i64) -> StateChange {
        StateChange {
            agent: agent.into(),
            state: state.into(),
            reason: reason.map(str::to_string),
            at: at(s),
            node: "n1".into(),
        }
    }

    #[test]
    fn changes_become_intervals_clipped_to_the_span() {
        let changes = vec![
            // Entered before the span: counted from its start.
            change("a1", "not_ready", Some("logged in"), -100),
            change("a1", "ready", None, 10),
            change("a1", "on_call", None, 40),
            change("a1", "not_ready", Some("Break"), 100),
            change("a1", "logged_out", None, 400),
            change("b2", "ready", None, 50),
        ];
        let got = intervals(&changes, at(0), at(300), &BTreeMap::new());
        let summary: Vec<(&str, &str, Option<&str>, f64)> = got
            .iter()
            .map(|i| {
                (
                    i.agent.as_str(),
                    i.state.as_str(),
                    i.reason.as_deref(),
                    i.seconds,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a1", "not_ready", Some("logged in"), 10.0),
                ("a1", "ready", None, 30.0),
                ("a1", "on_call", None, 60.0),
                // Until the span's end, not the logout after it.
                ("a1", "not_ready", Some("Break"), 200.0),
                // The last state runs until the span's end.
                ("b2", "ready", None, 250.0),
            ]
        );
        assert_eq!(got[0].started_at, at(0));
    }

    #[test]
    fn logged_out_time_is_no_interval_and_totals_add_up() {
        let changes = vec![
            change("a1", "ready", None, 0),
            change("a1", "logged_out", Some(REASON_DIALER_STOPPED), 60),
            change("a1", "ready", None, 600),
            change("a1", "not_ready", Some("Break"), 630),
            change("a1", "ready", None, 690),
        ];
        let got = intervals(&changes, at(0), at(700), &BTreeMap::new());
        assert_eq!(got.len(), 4);
        let sums = totals(&got);
        let summary: Vec<(&str, Option<&str>, f64, u32)> = sums
            .iter()
            .map(|t| (t.state.as_str(), t.reason.as_deref(), t.seconds, t.times))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("not_ready", Some("Break"), 60.0, 1),
                ("ready", None, 100.0, 3)
            ]
        );
    }

    #[test]
    fn a_state_left_open_by_a_silent_node_ends_when_it_was_last_seen() {
        let changes = vec![
            change("a1", "ready", None, 0),
            StateChange {
                node: "n2".into(),
                ..change("b2", "ready", None, 0)
            },
        ];
        let silent = BTreeMap::from([("n1".to_string(), at(40))]);
        let got = intervals(&changes, at(0), at(100), &silent);
        let seconds: Vec<(&str, f64)> = got.iter().map(|i| (i.agent.as_str(), i.seconds)).collect();
        assert_eq!(seconds, vec![("a1", 40.0), ("b2", 100.0)]);
    }
}
