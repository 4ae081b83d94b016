//! What one simulated policy run measured, and how it prints.

use serde::Serialize;

use super::Setup;

/// Raw tallies gathered while simulating.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub dials: u64,
    pub live_answers: u64,
    pub connected: u64,
    pub abandoned: u64,
    pub amd_false_positives: u64,
    pub repeat_calls: u64,
    pub talk_us: u64,
    pub wrap_us: u64,
    pub logged_in_us: u64,
    pub shift_us: u64,
    pub line_time_us: u128,
    pub max_lines_in_use: u32,
    pub agent_waits_us: Vec<u64>,
    pub answer_to_agent_us: Vec<u64>,
    pub peak_rate_us: f64,
    pub peak_rate_uk: f64,
}

/// One policy's results (all rates are fractions).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub policy: String,
    /// Talk time ÷ logged-in time (pauses count as logged in).
    pub talk_occupancy: f64,
    /// (Talk + wrap-up) ÷ logged-in time.
    pub handle_occupancy: f64,
    /// US: abandoned ÷ live answers.
    pub abandon_rate: f64,
    /// UK: (abandoned + CPA false positives) ÷ (live answers + false positives).
    pub abandon_rate_uk: f64,
    /// Highest running US rate once at least 100 live answers were seen.
    pub peak_abandon_rate: f64,
    /// Highest running UK rate once at least 100 live answers were seen.
    pub peak_abandon_rate_uk: f64,
    pub amd_false_positives: u64,
    /// Dials made with an agent reserved from the dial because the number
    /// needed one (`repeat_call_share`).
    pub repeat_calls: u64,
    pub dials: u64,
    pub live_answers: u64,
    pub connected: u64,
    pub abandoned: u64,
    pub connected_per_agent_hour: f64,
    pub dials_per_agent: f64,
    /// Mean trunk lines in use ÷ mean agents logged in.
    pub mean_lines_per_agent: f64,
    pub max_lines_in_use: u32,
    pub agent_wait_mean_s: f64,
    pub agent_wait_p95_s: f64,
    pub answer_to_agent_mean_s: f64,
    pub answer_to_agent_p95_s: f64,
}

fn mean_s(values: &[u64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64 / 1e6
    }
}

fn p95_s(values: &mut [u64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64) * 0.95).ceil() as usize;
    values
        .get(rank.saturating_sub(1).min(values.len() - 1))
        .map_or(0.0, |&v| v as f64 / 1e6)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Report {
    pub fn from_counters(policy: String, setup: &Setup, m: &mut Counters) -> Self {
        let logged_in = m.logged_in_us as f64;
        let fp = m.amd_false_positives as f64;
        Report {
            policy,
            talk_occupancy: ratio(m.talk_us as f64, logged_in),
            handle_occupancy: ratio((m.talk_us + m.wrap_us) as f64, logged_in),
            abandon_rate: ratio(m.abandoned as f64, m.live_answers as f64),
            abandon_rate_uk: ratio(m.abandoned as f64 + fp, m.live_answers as f64 + fp),
            peak_abandon_rate: m.peak_rate_us,
            peak_abandon_rate_uk: m.peak_rate_uk,
            amd_false_positives: m.amd_false_positives,
            repeat_calls: m.repeat_calls,
            dials: m.dials,
            live_answers: m.live_answers,
            connected: m.connected,
            abandoned: m.abandoned,
            connected_per_agent_hour: ratio(m.connected as f64, logged_in / 3.6e9),
            dials_per_agent: ratio(m.dials as f64, f64::from(setup.agents)),
            mean_lines_per_agent: ratio(m.line_time_us as f64, logged_in),
            max_lines_in_use: m.max_lines_in_use,
            agent_wait_mean_s: mean_s(&m.agent_waits_us),
            agent_wait_p95_s: p95_s(&mut m.agent_waits_us),
            answer_to_agent_mean_s: mean_s(&m.answer_to_agent_us),
            answer_to_agent_p95_s: p95_s(&mut m.answer_to_agent_us),
        }
    }

    /// Header of the human-readable table.
    pub fn table_header() -> String {
        format!(
            "{:<18} {:>7} {:>7} {:>7} {:>7} {:>6} {:>8} {:>7} {:>6} {:>9} {:>9}",
            "policy",
            "talk%",
            "handle%",
            "aband%",
            "UK%",
            "FP",
            "conn/ah",
            "dials/a",
            "lines",
            "wait s",
            "ans→ag s"
        )
    }

    /// One row of the human-readable table.
    pub fn table_row(&self) -> String {
        format!(
            "{:<18} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>6} {:>8.2} {:>7.1} {:>6.2} {:>4.1}/{:<4.0} {:>4.2}/{:<4.2}",
            self.policy,
            self.talk_occupancy * 100.0,
            self.handle_occupancy * 100.0,
            self.abandon_rate * 100.0,
            self.abandon_rate_uk * 100.0,
            self.amd_false_positives,
            self.connected_per_agent_hour,
            self.dials_per_agent,
            self.mean_lines_per_agent,
            self.agent_wait_mean_s,
            self.agent_wait_p95_s,
            self.answer_to_agent_mean_s,
            self.answer_to_agent_p95_s,
        )
    }
}
