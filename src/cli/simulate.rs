//! `outdial simulate`: the deterministic campaign simulator (see `sim`).
//! It needs no dialer configuration; the global `--config` is ignored.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{EXIT_CONFIG, EXIT_RUNTIME};
use crate::sim::grid::{self, SeedRun};
use crate::sim::input::{StreamSource, parse_agent_events, parse_stream};
use crate::sim::{Policy, Report, Scenario, Setup, SimError, run};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A scenario file (TOML): agents, shift, outcome mix, distributions, events, seeds.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["stream", "grid"])]
    pub scenario: Option<PathBuf>,
    /// A folder of scenario files (the reference grid): prints the summary table.
    #[arg(long, value_name = "DIR", conflicts_with = "stream")]
    pub grid: Option<PathBuf>,
    /// Replay a pre-drawn call stream (CSV `attempt,class,ring_s,talk_s,wrap_s`).
    #[arg(long, value_name = "FILE", requires_all = ["agents", "hours"])]
    pub stream: Option<PathBuf>,
    /// Agent logins, pauses, resumes, logouts (CSV `agent,t_s,event`; with --stream).
    #[arg(long, value_name = "FILE", requires = "stream")]
    pub agent_events: Option<PathBuf>,
    /// Agents (with --stream).
    #[arg(long, value_name = "N")]
    pub agents: Option<u32>,
    /// Shift length in hours (with --stream; with --scenario/--grid it overrides the files).
    #[arg(long, value_name = "H")]
    pub hours: Option<f64>,
    /// Trunk lines per agent (with --stream).
    #[arg(long, value_name = "L", default_value_t = 3.0)]
    pub trunk_lines_per_agent: f64,
    /// Calls per second at most (with --stream).
    #[arg(long, value_name = "CPS")]
    pub max_calls_per_second: Option<f64>,
    /// The expected CPA false-positive rate (live persons taken for machines),
    /// which the pacer budgets in the UK rate. Overrides a scenario's value.
    #[arg(long, value_name = "FRACTION")]
    pub amd_fp_estimate: Option<f64>,
    /// Seconds after the greeting before a live answer is abandoned (with --stream).
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    pub abandon_after_s: f64,
    /// Length of the abandon message, holding the line (with --stream).
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    pub abandon_message_s: f64,
    /// Policies, comma-separated or repeated: predictive, predictive:SETPOINT, progressive, reserved (progressive with the agent reserved at the dial), ratio:K.
    #[arg(
        long,
        value_name = "POLICY",
        value_delimiter = ',',
        default_value = "predictive,progressive"
    )]
    pub policy: Vec<String>,
    /// Seeds, comma-separated; overrides the scenario files' seeds.
    #[arg(long, value_name = "SEEDS", value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Print JSON: an array with one object per policy (and seed, with --scenario).
    #[arg(long)]
    pub json: bool,
}

pub fn simulate(args: &SimulateArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            match error {
                SimError::StreamExhausted { .. } => ExitCode::from(EXIT_RUNTIME),
                _ => ExitCode::from(EXIT_CONFIG),
            }
        }
    }
}

fn read(path: &Path) -> Result<String, SimError> {
    std::fs::read_to_string(path).map_err(|source| SimError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn apply_overrides(args: &SimulateArgs, scenario: &mut Scenario) -> Result<(), SimError> {
    if !args.seeds.is_empty() {
        scenario.seeds = args.seeds.clone();
    }
    if let Some(h) = args.hours {
        if !(h > 0.0 && h <= 744.0) {
            return Err(SimError::Scenario("--hours: give hours in (0, 744]".into()));
        }
        scenario.shift_hours = h;
    }
    if let Some(fp) = args.amd_fp_estimate {
        check_fp(fp)?;
        scenario.amd_fp_estimate = fp;
    }
    Ok(())
}

fn check_fp(fp: f64) -> Result<(), SimError> {
    if (0.0..0.5).contains(&fp) {
        Ok(())
    } else {
        Err(SimError::Scenario(
            "--amd-fp-estimate: give a fraction in [0, 0.5), e.g. 0.02".into(),
        ))
    }
}

#[derive(Serialize)]
struct SeededReport<'a> {
    seed: u64,
    #[serde(flatten)]
    report: &'a Report,
}

fn execute(args: &SimulateArgs) -> Result<(), SimError> {
    let policies = args
        .policy
        .iter()
        .map(|p| Policy::parse(p.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &args.stream {
        return stream(args, path, &policies);
    }
    if let Some(dir) = &args.grid {
        let mut cells = Vec::new();
        for (name, mut scenario) in grid::load_folder(dir)? {
            apply_overrides(args, &mut scenario)?;
            let runs = grid::run_scenario(&scenario, &policies)?;
            cells.extend(grid::summarise(&name, &scenario, &runs));
        }
        if args.json {
            println!("{}", to_json(&cells));
        } else {
            print!("{}", grid::table(&cells));
        }
        return Ok(());
    }
    let Some(path) = &args.scenario else {
        return Err(SimError::Scenario(
            "give --scenario FILE, --grid DIR, or --stream FILE --agents N --hours H".into(),
        ));
    };
    let mut scenario = Scenario::parse(&read(path)?)
        .map_err(|e| SimError::Scenario(format!("{}: {e}", path.display())))?;
    apply_overrides(args, &mut scenario)?;
    let runs = grid::run_scenario(&scenario, &policies)?;
    if args.json {
        let flat: Vec<SeededReport> = runs
            .iter()
            .flat_map(|r: &SeedRun| {
                r.reports.iter().map(|report| SeededReport {
                    seed: r.seed,
                    report,
                })
            })
            .collect();
        println!("{}", to_json(&flat));
    } else {
        for run in &runs {
            println!("seed {}", run.seed);
            println!("{}", Report::table_header());
            for report in &run.reports {
                println!("{}", report.table_row());
            }
        }
        if runs.len() > 1 {
            let name = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            print!(
                "\n{}",
                grid::table(&grid::summarise(&name, &scenario, &runs))
            );
        }
    }
    Ok(())
}

fn stream(args: &SimulateArgs, path: &Path, policies: &[Policy]) -> Result<(), SimError> {
    let agents = args.agents.unwrap_or(0);
    if agents == 0 || agents > 100_000 {
        return Err(SimError::Scenario("--agents: give 1 to 100000".into()));
    }
    let hours = args.hours.unwrap_or(0.0);
    if !(hours > 0.0 && hours <= 744.0) {
        return Err(SimError::Scenario("--hours: give hours in (0, 744]".into()));
    }
    let lines = args.trunk_lines_per_agent;
    if !(1.0..=100.0).contains(&lines) {
        return Err(SimError::Scenario(
            "--trunk-lines-per-agent: give 1 to 100".into(),
        ));
    }
    let fp = args.amd_fp_estimate.unwrap_or(0.0);
    check_fp(fp)?;
    if !(0.0..=30.0).contains(&args.abandon_after_s) {
        return Err(SimError::Scenario("--abandon-after-s: give 0 to 30".into()));
    }
    if !(0.0..=600.0).contains(&args.abandon_message_s) {
        return Err(SimError::Scenario(
            "--abandon-message-s: give 0 to 600".into(),
        ));
    }
    if let Some(cps) = args.max_calls_per_second
        && !(cps >= 1.0 && cps.is_finite())
    {
        return Err(SimError::Scenario(
            "--max-calls-per-second: give at least 1".into(),
        ));
    }
    let rows = parse_stream(&read(path)?)?;
    let agent_events = match &args.agent_events {
        Some(p) => parse_agent_events(&read(p)?, agents)?,
        None => Vec::new(),
    };
    let setup = Setup {
        agents,
        shift_s: hours * 3600.0,
        max_lines: (f64::from(agents) * lines).floor() as u32,
        max_calls_per_second: args.max_calls_per_second,
        abandon_after_s: args.abandon_after_s,
        abandon_message_s: args.abandon_message_s,
        amd_fp_estimate: fp,
        agent_events,
    };
    let reports = policies
        .iter()
        .map(|&policy| run(&setup, &mut StreamSource::new(&rows), policy))
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        println!("{}", to_json(&reports));
    } else {
        println!("{}", Report::table_header());
        for report in &reports {
            println!("{}", report.table_row());
        }
    }
    Ok(())
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
