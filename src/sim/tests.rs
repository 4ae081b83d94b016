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

/// Progressive 1:1 with pooled agents abandons a live answer when the Ready
/// agent its call was dialed for goes on a break while it rings; with the
/// agent reserved at the dial the break waits for the call, and nothing is
/// abandoned. With nobody leaving, the two are the same campaign.
#[test]
fn an_agent_reserved_at_the_dial_never_leaves_its_call_to_be_abandoned() {
    use super::input::{AgentEvent, AgentEventKind};
    let text = include_str!("../../scenarios/grid/n005-ph30.toml")
        .replace("shift_hours = 8.0", "shift_hours = 2.0");
    let s = Scenario::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let run_with = |setup: &Setup, policy: &str| {
        let policy = Policy::parse(policy).unwrap_or_else(|e| panic!("{e}"));
        run(setup, &mut ScenarioSource::new(&s, 1), policy).unwrap_or_else(|e| panic!("{e}"))
    };
    let quiet = Setup::from_scenario(&s);
    let (pooled, reserved) = (
        run_with(&quiet, "progressive"),
        run_with(&quiet, "reserved"),
    );
    assert_eq!(pooled.abandoned, 0);
    assert_eq!(reserved.abandoned, 0);
    assert!(
        (pooled.talk_occupancy - reserved.talk_occupancy).abs() < 1e-9,
        "{} against {}",
        pooled.talk_occupancy,
        reserved.talk_occupancy
    );
    // Every agent takes a 20-second break every 47 s or so.
    let mut breaks = Vec::new();
    for k in 0..150u32 {
        let agent = 1 + k % 5;
        let t_s = 30.0 + 47.0 * f64::from(k);
        breaks.push(AgentEvent {
            agent,
            t_s,
            event: AgentEventKind::Pause,
        });
        breaks.push(AgentEvent {
            agent,
            t_s: t_s + 20.0,
            event: AgentEventKind::Resume,
        });
    }
    breaks.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let busy = Setup {
        agent_events: breaks,
        ..quiet
    };
    let (pooled, reserved) = (run_with(&busy, "progressive"), run_with(&busy, "reserved"));
    assert!(pooled.abandoned > 0, "{pooled:?}");
    assert_eq!(reserved.abandoned, 0, "{reserved:?}");
    assert!(reserved.live_answers > 0);
}

/// `repeat_call_share`: records whose number needs an agent reserved from
/// the dial (Ofcom's repeat calls) are never paced. With every record such
/// a call, a predictive campaign abandons nobody and dials each with its
/// agent; with a share of 0 the campaign is the one without the key (the
/// extra draw comes last for each dial, so no other draw moves); between,
/// about that share of the dials goes out with an agent.
#[test]
fn repeat_calls_are_dialed_only_with_an_agent() {
    let text = std::fs::read_to_string("scenarios/grid/n005-ph30.toml").expect("grid scenario");
    let with_share = |share: f64| {
        let mut s = Scenario::parse(&text).expect("parses");
        s.shift_hours = 2.0;
        s.repeat_call_share = share;
        let setup = Setup::from_scenario(&s);
        let policy = Policy::parse("predictive").expect("policy");
        run(&setup, &mut ScenarioSource::new(&s, 1), policy).expect("runs")
    };
    let all = with_share(1.0);
    assert_eq!(all.abandoned, 0, "{all:?}");
    assert_eq!(all.repeat_calls, all.dials, "{all:?}");
    assert!(all.connected > 0, "{all:?}");
    let none = with_share(0.0);
    assert_eq!(none.repeat_calls, 0);
    let mut without_key = Scenario::parse(&text).expect("parses");
    without_key.shift_hours = 2.0;
    let setup = Setup::from_scenario(&without_key);
    let policy = Policy::parse("predictive").expect("policy");
    let plain = run(&setup, &mut ScenarioSource::new(&without_key, 1), policy).expect("runs");
    assert_eq!(none, plain);
    let some = with_share(0.3);
    let share = some.repeat_calls as f64 / some.dials as f64;
    assert!((0.2..0.4).contains(&share), "{share}: {some:?}");
    assert!(
        some.talk_occupancy < none.talk_occupancy,
        "agents wait through the rings: {} vs {}",
        some.talk_occupancy,
        none.talk_occupancy
    );
}
