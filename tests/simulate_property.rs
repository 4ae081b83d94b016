//! Property: on random scenarios the predictive pacer never exceeds the
//! trunk's lines and never lets abandonment exceed the 3 % cap.
//!
//! Precisely, for each random scenario (2–15 agents, hit rate 5–70 %, talk
//! mean 40–240 s, 1.5–6 lines per agent, 2.5 simulated hours, random pauses):
//! - lines in use never exceed `agents × lines per agent`;
//! - the US rate at the end of the shift is ≤ 3 % once at least 100 live
//!   answers were seen;
//! - the running US rate, checked after every abandon (the only moment it
//!   rises) once at least 100 live answers were seen, is ≤ 3 %. The rolling
//!   30-day and 24-hour windows are longer than the shift, so this running
//!   rate is the rate in every window the engine would report.
//!
//! Cases are drawn from a fixed seed so the test is deterministic.

mod pacing_scenarios;

use outdial::sim::input::ScenarioSource;
use outdial::sim::{Policy, Setup, run};
use pacing_scenarios::scenario;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// The search's seed: fixed so CI is repeatable; `PROPTEST_RNG_SEED=N`
/// searches other scenarios (one seed's 400 cases decided too much alone).
fn rng_seed() -> u64 {
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

proptest! {
    #![proptest_config(Config {
        // 10 cases by default (the suite runs in debug); PROPTEST_CASES=120
        // with --release searches wider.
        cases: cases(),
        rng_seed: RngSeed::Fixed(rng_seed()),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn predictive_respects_trunk_and_abandon_cap(
        agents in 2u32..16,
        human in 0.05f64..0.7,
        talk_mean in 40.0f64..240.0,
        lines in 1.5f64..6.0,
        seed in 1u64..1_000_000,
        pauses in proptest::collection::vec((0u32..16, 600.0f64..8000.0, 60.0f64..1800.0), 0..6),
    ) {
        let mut s = scenario(agents, human, talk_mean, lines, pauses);
        s.seeds = vec![seed];
        let setup = Setup::from_scenario(&s);
        let report = run(&setup, &mut ScenarioSource::new(&s, seed), Policy::parse("predictive").unwrap()).unwrap();
        prop_assert!(report.max_lines_in_use <= setup.max_lines, "{report:?}");
        if report.live_answers >= 100 {
            prop_assert!(report.abandon_rate <= 0.03, "{report:?}");
            prop_assert!(report.peak_abandon_rate <= 0.03, "{report:?}");
        }
    }

    /// Repeat calls (Ofcom: a number that needs an agent reserved from the
    /// dial) take Ready agents ahead of the pacer's next decision — agents
    /// the calls already ringing may have been counting on: still under
    /// the cap.
    #[test]
    fn predictive_with_repeat_calls_respects_the_abandon_cap(
        agents in 2u32..16,
        human in 0.05f64..0.7,
        talk_mean in 40.0f64..240.0,
        lines in 1.5f64..6.0,
        repeat_share in 0.0f64..0.4,
        seed in 1u64..1_000_000,
    ) {
        let mut s = scenario(agents, human, talk_mean, lines, Vec::new());
        s.seeds = vec![seed];
        s.repeat_call_share = repeat_share;
        let setup = Setup::from_scenario(&s);
        let report = run(&setup, &mut ScenarioSource::new(&s, seed), Policy::parse("predictive").unwrap()).unwrap();
        prop_assert!(report.max_lines_in_use <= setup.max_lines, "{report:?}");
        if report.live_answers >= 100 {
            prop_assert!(report.abandon_rate <= 0.03, "{report:?}");
            prop_assert!(report.peak_abandon_rate <= 0.03, "{report:?}");
        }
    }

    #[test]
    fn ratio_dialing_respects_trunk_limits(
        agents in 1u32..20,
        human in 0.05f64..0.7,
        lines in 1.0f64..4.0,
        ratio in 1.0f64..6.0,
    ) {
        let mut s = scenario(agents, human, 120.0, lines, Vec::new());
        s.shift_hours = 1.0;
        let setup = Setup::from_scenario(&s);
        let report = run(&setup, &mut ScenarioSource::new(&s, 1), Policy::Ratio { lines: ratio }).unwrap();
        prop_assert!(report.max_lines_in_use <= setup.max_lines, "{report:?}");
    }
}

/// Scenarios the property search found over the cap before the cluster-tail
/// bound (`CLUSTER_TAIL_MAX` in `src/pacing/mod.rs`): a streak of live
/// answers from many calls in flight (9 answers in 6 s from ~45 ringing
/// calls, 5–6 agents ready) landed when the room under the cap was 2.6
/// abandons, and the running rate reached 3.04 % (9/296) and 3.03 %. The
/// last two went over with the bound at 1e-4 and 1e-5
/// (`docs/pacing-history.md`, "An answer is not its own rival"): 3.18 %
/// (18/566; the pacer of before failed it too) when 9 of 17 consecutive dials at a 7.6 % hit rate were live, 6
/// abandoned within 2 s, and 5.0 % (5/100) when 10 live answers landed in
/// 4.6 s on 4 ready agents, the model expecting 1.5 in 30 s.
#[test]
fn a_streak_of_answers_does_not_carry_the_running_rate_over_the_cap() {
    for (agents, human, talk_mean, lines, seed, pauses) in [
        (
            11,
            0.094_826_269_108_772_32,
            40.0,
            4.696_380_808_111_519,
            397_410,
            Vec::new(),
        ),
        (
            13,
            0.077_233_303_574_983_36,
            227.535_799_600_266_5,
            2.947_748_257_311_183_3,
            741_880,
            Vec::new(),
        ),
        (
            15,
            0.075_621_631_244_956_3,
            137.295_404_832_021_94,
            5.467_691_438_287_836_5,
            228_009,
            vec![
                (6, 6_226.948_627_223_975, 649.445_936_703_279_5),
                (2, 600.0, 397.075_749_797_285_77),
            ],
        ),
        (
            11,
            0.054_001_413_034_426_75,
            52.486_579_132_319_7,
            4.881_004_120_585_179,
            803_671,
            Vec::new(),
        ),
    ] {
        let mut s = scenario(agents, human, talk_mean, lines, pauses);
        s.seeds = vec![seed];
        let setup = Setup::from_scenario(&s);
        let report = run(
            &setup,
            &mut ScenarioSource::new(&s, seed),
            Policy::parse("predictive").unwrap(),
        )
        .unwrap();
        assert!(report.live_answers >= 100, "{report:?}");
        assert!(report.peak_abandon_rate <= 0.03, "{report:?}");
        assert!(report.abandon_rate <= 0.03, "{report:?}");
    }
}

#[test]
fn progressive_one_to_one_never_abandons() {
    let s = scenario(10, 0.3, 120.0, 3.0, Vec::new());
    let setup = Setup::from_scenario(&s);
    let report = run(
        &setup,
        &mut ScenarioSource::new(&s, 3),
        Policy::parse("progressive").unwrap(),
    )
    .unwrap();
    assert!(report.live_answers > 100);
    assert_eq!(report.abandoned, 0);
}
