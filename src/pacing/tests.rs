use super::*;

fn ready_agents(pacer: &mut Pacer, n: u32, now: Instant) {
    for a in 0..n {
        pacer.on_event(
            PacerEvent::Agent {
                agent: AgentId(a),
                activity: AgentActivity::Ready,
                leaving: false,
            },
            now,
        );
    }
}

#[test]
fn progressive_dials_one_line_per_ready_agent_minus_calls_in_flight() {
    let now = Instant::now();
    let mut config = PacerConfig::predictive(100);
    config.mode = PacingMode::Progressive {
        lines_per_agent: 1.0,
    };
    let mut pacer = Pacer::new(config, now);
    ready_agents(&mut pacer, 4, now);
    assert_eq!(pacer.decide(now).dial, 4);
    pacer.on_event(PacerEvent::CallDialed { call: CallId(1) }, now);
    pacer.on_event(PacerEvent::CallDialed { call: CallId(2) }, now);
    assert_eq!(pacer.decide(now).dial, 2);
}

#[test]
fn trunk_lines_cap_every_mode() {
    let now = Instant::now();
    let mut config = PacerConfig::predictive(3);
    config.mode = PacingMode::Progressive {
        lines_per_agent: 3.0,
    };
    let mut pacer = Pacer::new(config, now);
    ready_agents(&mut pacer, 10, now);
    let decision = pacer.decide(now);
    assert_eq!(decision.dial, 3);
    assert_eq!(decision.reasoning.limit, Limit::TrunkLines);
}

#[test]
fn predictive_starts_progressive_until_it_has_learned() {
    let now = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::predictive(300), now);
    ready_agents(&mut pacer, 10, now);
    let decision = pacer.decide(now);
    assert_eq!(decision.dial, 10);
    assert_eq!(decision.reasoning.limit, Limit::ColdStart);
}

#[test]
fn preview_modes_never_dial() {
    let now = Instant::now();
    let mut config = PacerConfig::predictive(100);
    config.mode = PacingMode::PushPreview;
    let mut pacer = Pacer::new(config, now);
    ready_agents(&mut pacer, 5, now);
    assert_eq!(pacer.decide(now).dial, 0);
}

#[test]
fn normal_helpers_are_accurate() {
    assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
    assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
    assert!((normal_cdf(-1.0) - 0.158_655).abs() < 1e-5);
}
