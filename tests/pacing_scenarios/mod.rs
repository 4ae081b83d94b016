//! The random scenarios of the pacing property test and of the counting
//! sweeps (`simulate_property.rs`, `pacing_sweep.rs`): the reference grid's
//! distributions with the team, hit rate, talk mean, lines and pauses drawn.

use outdial::sim::Scenario;
use outdial::sim::input::{AgentEvent, AgentEventKind, Outcomes, RingTimes};
use outdial::sim::rng::Dist;

/// A 2.5-hour shift: `agents` agents (numbered from 0), `human` of dials
/// live, machines 20 %, the rest busy (30 %) or unanswered; talk lognormal
/// with mean `talk_mean` s (CV 1, floor 5 s); `lines` trunk lines per agent;
/// `pauses` as (agent, start s, length s).
pub fn scenario(
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
        repeat_call_share: 0.0,
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
