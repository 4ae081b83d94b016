//! Running a scenario over its seeds, and the reference grid (a folder of
//! scenario files) summarised as one table next to the baseline and
//! clairvoyant-oracle figures.

use std::path::Path;

use serde::Serialize;

use super::input::{Scenario, ScenarioSource};
use super::{Policy, Report, Setup, SimError, run};

/// Every policy's report for one seed.
#[derive(Debug, Clone, Serialize)]
pub struct SeedRun {
    pub seed: u64,
    pub reports: Vec<Report>,
}

/// Runs every policy over every seed of a scenario.
pub fn run_scenario(scenario: &Scenario, policies: &[Policy]) -> Result<Vec<SeedRun>, SimError> {
    let setup = Setup::from_scenario(scenario);
    scenario
        .seeds
        .iter()
        .map(|&seed| {
            let reports = policies
                .iter()
                .map(|&policy| run(&setup, &mut ScenarioSource::new(scenario, seed), policy))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SeedRun { seed, reports })
        })
        .collect()
}

/// One grid cell: a policy's mean talk occupancy and worst-seed abandonment.
#[derive(Debug, Clone, Serialize)]
pub struct CellSummary {
    pub scenario: String,
    pub agents: u32,
    pub human_share: f64,
    pub policy: String,
    pub seeds: usize,
    pub talk_occupancy_mean: f64,
    pub abandon_rate_worst: f64,
    pub abandon_rate_uk_worst: f64,
    pub peak_abandon_rate_worst: f64,
    /// The reference figures for this cell, when it is on the grid.
    pub baseline_talk_occupancy: Option<f64>,
    pub oracle_talk_occupancy: Option<f64>,
}

/// Baseline and oracle talk occupancy (%) from issue 8, by agents and p_h.
const REFERENCE: [(u32, f64, f64, f64); 9] = [
    (5, 0.10, 67.1, 86.6),
    (5, 0.30, 75.3, 92.0),
    (5, 0.60, 81.3, 92.1),
    (20, 0.10, 80.7, 90.3),
    (20, 0.30, 83.5, 91.8),
    (20, 0.60, 85.2, 91.8),
    (100, 0.10, 88.7, 90.9),
    (100, 0.30, 89.3, 91.1),
    (100, 0.60, 89.8, 91.2),
];

fn reference(agents: u32, human: f64) -> Option<(f64, f64)> {
    REFERENCE
        .iter()
        .find(|(n, p, _, _)| *n == agents && (p - human).abs() < 1e-9)
        .map(|&(_, _, b, o)| (b / 100.0, o / 100.0))
}

/// Summarises a scenario's runs, one row per policy.
pub fn summarise(name: &str, scenario: &Scenario, runs: &[SeedRun]) -> Vec<CellSummary> {
    let policies = runs.first().map_or(0, |r| r.reports.len());
    let total = scenario.outcomes.human
        + scenario.outcomes.machine
        + scenario.outcomes.busy
        + scenario.outcomes.noanswer;
    let human = if total > 0.0 {
        scenario.outcomes.human / total
    } else {
        0.0
    };
    let grid_talk = super::rng::Dist::Lognormal {
        mean: 120.0,
        cv: 1.0,
        min: 5.0,
        max: None,
    };
    let reference = if scenario.outcomes.human_at_end.is_none()
        && scenario.agent_events.is_empty()
        && scenario.outcomes.amd_false_positive == 0.0
        && scenario.talk == grid_talk
    {
        reference(scenario.agents, (human * 100.0).round() / 100.0)
    } else {
        None
    };
    (0..policies)
        .map(|i| {
            let reports: Vec<&Report> = runs.iter().filter_map(|r| r.reports.get(i)).collect();
            let n = reports.len().max(1) as f64;
            let worst = |f: fn(&Report) -> f64| reports.iter().map(|r| f(r)).fold(0.0, f64::max);
            CellSummary {
                scenario: name.to_string(),
                agents: scenario.agents,
                human_share: human,
                policy: reports
                    .first()
                    .map_or_else(String::new, |r| r.policy.clone()),
                seeds: reports.len(),
                talk_occupancy_mean: reports.iter().map(|r| r.talk_occupancy).sum::<f64>() / n,
                abandon_rate_worst: worst(|r| r.abandon_rate),
                abandon_rate_uk_worst: worst(|r| r.abandon_rate_uk),
                peak_abandon_rate_worst: worst(|r| r.peak_abandon_rate),
                baseline_talk_occupancy: reference.map(|r| r.0),
                oracle_talk_occupancy: reference.map(|r| r.1),
            }
        })
        .collect()
}

/// Loads every `*.toml` scenario in a folder, sorted by file name.
pub fn load_folder(dir: &Path) -> Result<Vec<(String, Scenario)>, SimError> {
    let io = |source| SimError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(SimError::Scenario(format!(
            "{}: no *.toml scenario files",
            dir.display()
        )));
    }
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|source| SimError::Io {
                path: p.display().to_string(),
                source,
            })?;
            let scenario = Scenario::parse(&text)
                .map_err(|e| SimError::Scenario(format!("{}: {e}", p.display())))?;
            let name = p
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            Ok((name, scenario))
        })
        .collect()
}

/// The grid table: one row per cell and policy.
pub fn table(cells: &[CellSummary]) -> String {
    let mut out = format!(
        "{:<14} {:>4} {:>5} {:<14} {:>6} {:>9} {:>9} {:>10} {:>11}\n",
        "cell", "N", "p_h", "policy", "talk%", "baseline%", "oracle%", "worst ab%", "worst UK%"
    );
    for c in cells {
        let pct =
            |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{:.1}", v * 100.0));
        out.push_str(&format!(
            "{:<14} {:>4} {:>5.2} {:<14} {:>6.1} {:>9} {:>9} {:>10.2} {:>11.2}\n",
            c.scenario,
            c.agents,
            c.human_share,
            c.policy,
            c.talk_occupancy_mean * 100.0,
            pct(c.baseline_talk_occupancy),
            pct(c.oracle_talk_occupancy),
            c.abandon_rate_worst * 100.0,
            c.abandon_rate_uk_worst * 100.0,
        ));
    }
    out
}
