//! The simulator on scenarios at the edges of what `Scenario::parse` accepts.

use super::input::{Scenario, ScenarioSource};
use super::{MIN_RING_S, Policy, Setup, run};

/// A scenario where every duration is zero and all dials have one outcome.
fn instant_scenario(outcome: &str) -> Scenario {
    let shares = ["human", "machine", "busy", "noanswer"]
        .iter()
        .map(|o| format!("{o} = {}\n", if *o == outcome { 1.0 } else { 0.0 }))
        .collect::<String>();
    let zero = |name: &str| format!("[{name}]\nkind = \"fixed\"\nvalue = 0.0\n");
    let text = format!(
        "name = \"instant\"\nagents = 2\nshift_hours = 0.05\nseeds = [1]\n\
         trunk_lines_per_agent = 1.0\nabandon_after_s = 0.0\nabandon_message_s = 0.0\n\
         [outcomes]\n{shares}{}{}{}{}{}{}{}",
        zero("talk"),
        zero("wrap"),
        zero("ring.human"),
        zero("ring.machine"),
        zero("ring.machine_analysis"),
        zero("ring.busy"),
        zero("ring.noanswer"),
    );
    match Scenario::parse(&text) {
        Ok(s) => s,
        Err(e) => panic!("the edge scenario no longer parses: {e}\n{text}"),
    }
}

/// Zero ring, talk and wrap-up times are accepted by the parser; a dial that
/// resolved at the instant it was placed let the pacer redial at that same
/// instant forever (`outdial simulate` hung). Each dial now takes
/// `MIN_RING_S`, so the shift ends after a bounded number of dials.
#[test]
fn zero_durations_end_the_shift() {
    for outcome in ["human", "machine", "busy", "noanswer"] {
        let s = instant_scenario(outcome);
        let setup = Setup::from_scenario(&s);
        for policy in ["predictive", "progressive"] {
            let policy = match Policy::parse(policy) {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
            let report = match run(&setup, &mut ScenarioSource::new(&s, 1), policy) {
                Ok(r) => r,
                Err(e) => panic!("{outcome}: {e}"),
            };
            let most = (setup.shift_s / MIN_RING_S).ceil() as u64 * u64::from(setup.max_lines);
            assert!(report.dials > 0, "{outcome}: {report:?}");
            assert!(report.dials <= most, "{outcome}: {} > {most}", report.dials);
        }
    }
}
