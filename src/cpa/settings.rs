//! Per-campaign CPA settings (`[campaign.cpa]`), with defaults that suit a
//! predictive campaign. Every field has a default so a campaign may omit the
//! table entirely.

use serde::{Deserialize, Serialize};

/// What the engine wants once a machine is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MachineMode {
    /// Keep listening after the machine verdict and report the beep, so a
    /// message can be left at the right moment.
    #[default]
    WaitForBeep,
    /// Stop at the machine verdict.
    VerdictOnly,
}

/// How eager the human/machine decision is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Waits longer before a human verdict: fewer machines taken for people.
    Conservative,
    #[default]
    Normal,
    /// Decides sooner after a short answer: lower latency, a few more
    /// machines that open with a short "Hello." taken for people.
    Fast,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpaSettings {
    /// Give a verdict (or "unknown") at the latest this long after answer.
    pub max_analysis_ms: u32,
    /// No speech and no tone for this long after answer → dead air.
    pub dead_air_ms: u32,
    pub machine_mode: MachineMode,
    /// Stop looking for a beep this long after answer.
    pub beep_timeout_ms: u32,
    /// Connect the call to an agent at once and classify in the background
    /// (the engine reads this; the analyser behaves the same).
    pub connect_first: bool,
    pub sensitivity: Sensitivity,
}

impl Default for CpaSettings {
    fn default() -> Self {
        CpaSettings {
            max_analysis_ms: 6000,
            dead_air_ms: 4000,
            machine_mode: MachineMode::WaitForBeep,
            beep_timeout_ms: 30_000,
            connect_first: false,
            sensitivity: Sensitivity::Normal,
        }
    }
}

/// A problem with CPA settings, phrased for the configuration file.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CpaSettingsError {
    #[error("max_analysis_ms must be between 1000 and 30000 (got {0})")]
    MaxAnalysis(u32),
    #[error("dead_air_ms must be between 1000 and max_analysis_ms (got {0})")]
    DeadAir(u32),
    #[error("beep_timeout_ms must be at least max_analysis_ms (got {0})")]
    BeepTimeout(u32),
}

impl CpaSettings {
    /// Checks ranges; returns every problem found.
    pub fn validate(&self) -> Vec<CpaSettingsError> {
        let mut out = Vec::new();
        if !(1000..=30_000).contains(&self.max_analysis_ms) {
            out.push(CpaSettingsError::MaxAnalysis(self.max_analysis_ms));
        }
        if self.dead_air_ms < 1000 || self.dead_air_ms > self.max_analysis_ms {
            out.push(CpaSettingsError::DeadAir(self.dead_air_ms));
        }
        if self.beep_timeout_ms < self.max_analysis_ms {
            out.push(CpaSettingsError::BeepTimeout(self.beep_timeout_ms));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_gives_the_defaults_and_they_are_valid() {
        let s: CpaSettings = toml::from_str("").unwrap();
        assert_eq!(s, CpaSettings::default());
        assert!(s.validate().is_empty());
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_reported() {
        assert!(toml::from_str::<CpaSettings>("max_analysis = 3").is_err());
        let s: CpaSettings =
            toml::from_str("max_analysis_ms = 500\nmachine_mode = \"verdict_only\"").unwrap();
        assert_eq!(s.machine_mode, MachineMode::VerdictOnly);
        assert!(s.validate().contains(&CpaSettingsError::MaxAnalysis(500)));
    }
}
