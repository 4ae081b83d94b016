//! Counting sweeps of the predictive pacer (ignored; run by hand, release
//! build). `simulate_property` stops at the first scenario over the cap;
//! these run every scenario of the same distribution and count how many let
//! the running US rate exceed 3 % once 100 live answers were seen, with the
//! mean talk occupancy and the peak rate's quantiles:
//! `SWEEP_CASES=3000 SWEEP_SEED=1 cargo test --release --test pacing_sweep sweep_running_rate -- --ignored --nocapture`.
//! `one_case` replays one scenario (`A` agents, `H` hit rate, `T` talk
//! mean, `L` lines per agent, `S` seed) and prints its report:
//! `A=11 H=0.095 T=40 L=4.7 S=397410 cargo test --release --test pacing_sweep one_case -- --ignored --nocapture`.

mod pacing_scenarios;

use outdial::sim::input::ScenarioSource;
use outdial::sim::{Policy, Setup, run};
use pacing_scenarios::scenario;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestRunner};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore]
fn sweep_running_rate() {
    let cases = env_u64("SWEEP_CASES", 200);
    // SWEEP_ONLY=N runs only the N-th case (as numbered in an OVER line).
    let only = std::env::var("SWEEP_ONLY")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let seed = env_u64("SWEEP_SEED", 1);
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    });
    let strategy = (
        2u32..16,
        0.05f64..0.7,
        40.0f64..240.0,
        1.5f64..6.0,
        1u64..1_000_000,
        proptest::collection::vec((0u32..16, 600.0f64..8000.0, 60.0f64..1800.0), 0..6),
    );
    let (mut checked, mut over, mut talk_sum, mut peaks) = (0u64, 0u64, 0.0, Vec::new());
    for case in 0..cases {
        let (agents, human, talk_mean, lines, run_seed, pauses) =
            strategy.new_tree(&mut runner).expect("strategy").current();
        if only.is_some_and(|only| only != case) {
            continue;
        }
        let mut s = scenario(agents, human, talk_mean, lines, pauses.clone());
        s.seeds = vec![run_seed];
        let setup = Setup::from_scenario(&s);
        let report = run(
            &setup,
            &mut ScenarioSource::new(&s, run_seed),
            Policy::parse("predictive").expect("policy"),
        )
        .expect("run");
        talk_sum += report.talk_occupancy;
        if report.live_answers < 100 {
            continue;
        }
        checked += 1;
        peaks.push(report.peak_abandon_rate);
        if report.peak_abandon_rate > 0.03 || report.abandon_rate > 0.03 {
            over += 1;
            println!(
                "OVER case {case}: agents {agents} human {human} talk {talk_mean} lines {lines} seed {run_seed} pauses {pauses:?}: peak {:.2} % end {:.2} % answers {}",
                100.0 * report.peak_abandon_rate,
                100.0 * report.abandon_rate,
                report.live_answers
            );
        }
    }
    peaks.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let index = (peaks.len().saturating_sub(1) as f64 * q) as usize;
        peaks.get(index).map_or(f64::NAN, |peak| peak * 100.0)
    };
    println!(
        "SWEEP seed {seed} cases {cases} checked {checked} over {over} mean talk {:.2} % peak p50 {:.2} p90 {:.2} p99 {:.2} %",
        100.0 * talk_sum / cases as f64,
        quantile(0.5),
        quantile(0.9),
        quantile(0.99)
    );
}

#[test]
#[ignore]
fn one_case() {
    let number = |name: &str| -> f64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("set {name} (see the module comment)"))
    };
    let seed = number("S") as u64;
    let mut s = scenario(
        number("A") as u32,
        number("H"),
        number("T"),
        number("L"),
        Vec::new(),
    );
    s.seeds = vec![seed];
    let setup = Setup::from_scenario(&s);
    let report = run(
        &setup,
        &mut ScenarioSource::new(&s, seed),
        Policy::parse("predictive").expect("policy"),
    )
    .expect("run");
    println!("{report:?}");
}
