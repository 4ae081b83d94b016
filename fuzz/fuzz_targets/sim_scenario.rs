//! Any bytes as a scenario file: a scenario or an error, never a panic; and a
//! scenario that parses simulates (a short shift, a small team) to its end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outdial::sim::input::ScenarioSource;
use outdial::sim::{Policy, Setup, run};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut scenario) = outdial::sim::Scenario::parse(text) else {
        return;
    };
    // Odd but valid values (zero durations, one line, a 0 s rule) are the
    // point; a long shift or a large team only costs the fuzzer time.
    scenario.shift_hours = scenario.shift_hours.min(0.02);
    scenario.agents = scenario.agents.min(8);
    scenario.agent_events.retain(|e| e.agent < scenario.agents);
    let setup = Setup::from_scenario(&scenario);
    let seed = scenario.seeds.first().copied().unwrap_or(1);
    for policy in [Policy::Ratio { lines: 1.0 }, Policy::Predictive { set_point: 0.025, cap: 0.03 }] {
        let _ = run(&setup, &mut ScenarioSource::new(&scenario, seed), policy);
    }
});
