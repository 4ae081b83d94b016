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

use outdial::sim::input::{AgentEvent, AgentEventKind, Outcomes, RingTimes, ScenarioSource};
use outdial::sim::rng::Dist;
use outdial::sim::{Policy, Scenario, Setup, run};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn scenario(
    agents: u32,
    human: f64,
    talk_mean: f64,
    lines: f64,
    pauses: Vec<(u32, f64, f64)>,
) -> Scenario {
    let rest = 1.0 - human - 0.2;
    let mut agent_events: Vec<AgentEvent> = pauses
        .into_iter()
        .flat_map(|(agent, at, length)| {
            let agent = agent % agents;
            [
                AgentEvent {
                    agent,
                    t_s: at,
                    event: AgentEventKind::Pause,
                },
                AgentEvent {
                    agent,
                    t_s: at + length,
                    event: AgentEventKind::Resume,
                },
            ]
        })
        .collect();
    agent_events.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    // Name agent 0 so numbering is 0-based.
    agent_events.insert(
        0,
        AgentEvent {
            agent: 0,
            t_s: 0.0,
            event: AgentEventKind::Login,
        },
    );
    Scenario {
        name: None,
        agents,
        shift_hours: 2.5,
        seeds: vec![1],
        trunk_lines_per_agent: lines,
        max_calls_per_second: None,
        abandon_after_s: 2.0,
        abandon_message_s: 5.0,
        amd_fp_estimate: 0.0,
        outcomes: Outcomes {
            human,
            machine: 0.2,
            busy: rest * 0.3,
            noanswer: rest * 0.7,
            human_at_end: None,
            amd_false_positive: 0.0,
        },
        talk: Dist::Lognormal {
            mean: talk_mean,
            cv: 1.0,
            min: 5.0,
            max: None,
        },
        wrap: Dist::Uniform {
            min: 5.0,
            max: 15.0,
        },
        ring: RingTimes {
            human: Dist::Gamma {
                shape: 2.5,
                scale: 2.8,
                offset: 2.0,
                max: Some(24.5),
            },
            machine: Dist::Gamma {
                shape: 4.0,
                scale: 1.5,
                offset: 12.0,
                max: Some(24.5),
            },
            machine_analysis: Dist::Uniform { min: 2.0, max: 4.0 },
            busy: Dist::Uniform { min: 1.0, max: 6.0 },
            noanswer: Dist::Fixed { value: 25.0 },
        },
        agent_events,
    }
}

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
