use super::*;

fn ready_agents(pacer: &mut Pacer, n: u32, now: Instant) {
    for a in 0..n {
        pacer.on_event(
            PacerEvent::Agent {
                agent: AgentId(a),
                activity: AgentActivity::Ready,
                leaving: false,
                since: now,
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
fn under_one_call_per_second_the_calls_are_spaced() {
    // A node's part of a trunk of 1 call per second shared by two nodes.
    let t0 = Instant::now();
    let mut config = PacerConfig::predictive(30);
    config.mode = PacingMode::Progressive {
        lines_per_agent: 1.0,
    };
    config.max_calls_per_second = Some(0.5);
    let mut pacer = Pacer::new(config, t0);
    ready_agents(&mut pacer, 5, t0);
    assert_eq!(pacer.decide(t0).dial, 1);
    pacer.on_event(PacerEvent::CallDialed { call: CallId(1) }, t0);
    let after_1s = pacer.decide(t0 + Duration::from_millis(1500));
    assert_eq!(after_1s.dial, 0);
    assert_eq!(after_1s.reasoning.limit, Limit::CallsPerSecond);
    assert_eq!(pacer.decide(t0 + Duration::from_secs(2)).dial, 1);
    // At 1 per second and more, the window stays one second.
    pacer.set_max_calls_per_second(Some(3.0));
    pacer.on_event(
        PacerEvent::CallDialed { call: CallId(2) },
        t0 + Duration::from_secs(2),
    );
    assert_eq!(pacer.decide(t0 + Duration::from_millis(2500)).dial, 2);
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

#[test]
fn closed_loop_balances_answers_and_abandons_at_the_set_point() {
    let now = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::predictive(100), now);
    // Enough answers seen that the loop aims at the set-point itself.
    pacer.live_answers_seen = 1000;
    let start = pacer.log_threshold;
    // 40 answers per abandon is exactly the 2.5 % set-point: no drift.
    for _ in 0..40 {
        pacer.integrate(false);
    }
    pacer.integrate(true);
    assert!((pacer.log_threshold - start).abs() < 1e-9);
    // Fewer abandons than that loosen the threshold...
    for _ in 0..80 {
        pacer.integrate(false);
    }
    assert!(pacer.log_threshold > start);
    // ...but not while pacing is held progressive (no wind-up).
    let held_at = pacer.log_threshold;
    pacer.held = true;
    for _ in 0..80 {
        pacer.integrate(false);
    }
    assert_eq!(pacer.log_threshold, held_at);
}

#[test]
fn closed_loop_charges_expected_false_positives_to_every_answer() {
    let now = Instant::now();
    let mut config = PacerConfig::predictive(100);
    config.amd_fp_estimate = 0.02;
    let mut pacer = Pacer::new(config, now);
    pacer.live_answers_seen = 1000;
    let start = pacer.log_threshold;
    // With 2 % of live persons hidden as machines, 40 answers and one
    // abandon are over the UK set-point: the threshold must come down.
    for _ in 0..40 {
        pacer.integrate(false);
    }
    pacer.integrate(true);
    assert!(pacer.log_threshold < start);
}

#[test]
fn poisson_tail_is_accurate_both_sides_of_the_mean() {
    // Reference values summed exactly (Python, math.factorial).
    let cases = [
        (2.5, 7.0, 0.014_187_311_990_913_498),
        (30.0, 45.0, 0.006_268_614_643_836_101),
        (0.2, 5.0, 2.258_190_552_884_009_6e-6),
        (40.0, 30.0, 0.956_771_317_848_264_4),
    ];
    for (mean, n, want) in cases {
        let got = poisson_at_least(mean, n);
        assert!(
            (got - want).abs() <= 1e-9 + 1e-6 * want,
            "P(Poisson({mean}) >= {n}) = {got}, want {want}"
        );
    }
    assert_eq!(poisson_at_least(3.0, 0.0), 1.0);
    assert_eq!(poisson_at_least(0.0, 1.0), 0.0);
    assert_eq!(poisson_at_least(1.0, 100.0), 0.0);
    assert!((ln_factorial(20.0) - 42.335_616_460_753_485).abs() < 1e-9);
    assert!((ln_factorial(100.0) - 363.739_375_555_563_47).abs() < 1e-9);
}

#[test]
fn loop_set_point_starts_under_the_cap_by_the_rates_noise() {
    // 3 % − √(0.025 × 0.975 / 300) = 2.10 %.
    assert!((loop_set_point(0.025, 0.03, 300) - 0.021_0).abs() < 2e-4);
    // The configured set-point once the noise is under the gap to the cap.
    assert_eq!(loop_set_point(0.025, 0.03, 1000), 0.025);
    // Never under half the set-point, however few answers.
    assert_eq!(loop_set_point(0.025, 0.03, 10), 0.0125);
    assert_eq!(loop_set_point(0.025, 0.03, 0), 0.0125);
}

#[test]
fn an_answer_is_not_its_own_rival() {
    // One ready agent: one call (new or ringing) cannot be abandoned, since
    // nothing else can take the agent first. Counted among its own rivals,
    // the call made itself look like a competitor for the one agent.
    let now = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::predictive(100), now);
    // A list where every fourth dial is a live answer 8 s after the dial.
    for i in 0..400 {
        pacer.outcomes.observe(8.0, i % 4 == 0);
    }
    ready_agents(&mut pacer, 1, now);
    pacer.predict_base(now);
    let live = pacer.outcomes.live_curve(0)[HORIZON_BINS];
    assert!(live > 0.2, "live share learned: {live}");
    let (one_new, _) = pacer.expected_abandons(1.0);
    assert!(one_new < 1e-3 * live, "one new call: {one_new}");
    // The second of two calls for the one agent does carry risk.
    let (two_new, _) = pacer.expected_abandons(2.0);
    assert!(two_new > 0.01 * live, "two new calls: {two_new}");

    pacer.on_event(PacerEvent::CallDialed { call: CallId(1) }, now);
    let later = now + Duration::from_secs(3);
    pacer.predict_base(later);
    let (ringing_only, _) = pacer.expected_abandons(0.0);
    assert!(ringing_only < 1e-3, "one ringing call: {ringing_only}");
}

#[test]
fn restored_answers_steer_the_loop_but_do_not_end_the_cold_start() {
    let now = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::predictive(300), now);
    ready_agents(&mut pacer, 10, now);
    pacer.restore_history(now - Duration::from_secs(3600), 2000, 40);
    // The outcome model has seen nothing: still progressive.
    let decision = pacer.decide(now);
    assert_eq!(decision.reasoning.limit, Limit::ColdStart);
    assert!((decision.reasoning.abandon_rate_us - 0.02).abs() < 1e-12);
    // The loop aims at the set-point itself (2,000 answers: the running
    // rate's noise is under the gap to the cap), so 40 answers and one
    // abandon balance; without the history it would aim lower and fall.
    let start = pacer.log_threshold;
    for _ in 0..40 {
        pacer.integrate(false);
    }
    pacer.integrate(true);
    assert!((pacer.log_threshold - start).abs() < 1e-9);
}

#[test]
fn restored_calls_teach_the_model_and_end_the_cold_start() {
    let now = Instant::now();
    // A list where every fifth dial is a person 9 s after the dial and the
    // rest resolve at 20 s; talks of 90 s.
    let calls: Vec<RestoredCall> = (0..300)
        .map(|i| {
            let live = i % 5 == 0;
            RestoredCall {
                ring_s: if live { 9.0 } else { 20.0 },
                live,
                talk_s: live.then_some(90.0),
            }
        })
        .collect();
    let fresh = || {
        let mut pacer = Pacer::new(PacerConfig::predictive(300), now);
        ready_agents(&mut pacer, 10, now);
        pacer
    };
    let mut cold = fresh();
    cold.restore_history(now - Duration::from_secs(3600), 500, 5);
    assert_eq!(cold.decide(now).reasoning.limit, Limit::ColdStart);

    // A restart restores both: the abandonment windows (room under the
    // cap) and the calls.
    let mut warm = fresh();
    warm.restore_history(now - Duration::from_secs(3600), 500, 5);
    warm.restore_calls(&calls);
    let rate = warm.outcomes.live_rate();
    assert!((rate - 0.2).abs() < 0.02, "{rate}");
    // Drawn from the 120 s prior toward the 90 s talks.
    let talk = warm.talk.mean_s();
    assert!(talk < 105.0, "{talk}");
    let decision = warm.decide(now);
    assert_ne!(decision.reasoning.limit, Limit::ColdStart, "{decision:?}");
    assert!(
        decision.dial > 10,
        "more lines than ready agents at a 20 % hit rate: {decision:?}"
    );

    // Too few of them (19 people): still the cold start. Impossible
    // figures (a negative or unknown ring time) are not learned.
    let mut few = fresh();
    few.restore_history(now - Duration::from_secs(3600), 500, 5);
    few.restore_calls(&calls[..95]);
    few.restore_calls(&[RestoredCall {
        ring_s: f64::NAN,
        live: true,
        talk_s: None,
    }]);
    assert_eq!(few.decide(now).reasoning.limit, Limit::ColdStart);
}

#[test]
fn a_call_with_its_own_agent_holds_a_line_but_is_no_rival() {
    // A previewed record or a repeat call dialed with its agent reserved:
    // its answer goes to that agent, so it must not make the agents the
    // pacer counts look spoken for — only its trunk line is taken.
    let now = Instant::now();
    let mut config = PacerConfig::predictive(5);
    config.mode = PacingMode::Progressive {
        lines_per_agent: 1.0,
    };
    let mut pacer = Pacer::new(config, now);
    ready_agents(&mut pacer, 3, now);
    pacer.on_event(PacerEvent::CallDialedWithAgent { call: CallId(1) }, now);
    assert_eq!(pacer.decide(now).dial, 3, "one line per ready agent");
    pacer.on_event(PacerEvent::CallDialedWithAgent { call: CallId(2) }, now);
    let decision = pacer.decide(now);
    assert_eq!(
        (decision.dial, decision.reasoning.limit),
        (3, Limit::Progressive)
    );
    pacer.on_event(PacerEvent::CallDialedWithAgent { call: CallId(3) }, now);
    let decision = pacer.decide(now);
    assert_eq!(
        (decision.dial, decision.reasoning.limit),
        (2, Limit::TrunkLines),
        "but its line is taken"
    );
    // Its live answer counts as one (the rates' denominator) and is not
    // left waiting for an agent.
    pacer.on_event(PacerEvent::LiveAnswer { call: CallId(1) }, now);
    assert_eq!(pacer.live_answers_seen, 1);
    assert_eq!(pacer.calls_tracked()[2], Vec::<u64>::new());
    pacer.on_event(PacerEvent::CallEnded { call: CallId(1) }, now);
    assert_eq!(pacer.calls_tracked()[0], vec![2, 3]);

    // Predictive: with one ready agent, a ringing call of its own agent
    // adds no risk to a new call; an ordinary ringing call does.
    let mut pacer = Pacer::new(PacerConfig::predictive(100), now);
    for i in 0..400 {
        pacer.outcomes.observe(8.0, i % 4 == 0);
    }
    ready_agents(&mut pacer, 1, now);
    pacer.on_event(PacerEvent::CallDialedWithAgent { call: CallId(1) }, now);
    let later = now + Duration::from_secs(3);
    pacer.predict_base(later);
    let (with_agent, _) = pacer.expected_abandons(1.0);
    assert!(
        with_agent < 1e-3,
        "beside a call with its own agent: {with_agent}"
    );
    pacer.on_event(PacerEvent::CallDialed { call: CallId(2) }, now);
    pacer.predict_base(later);
    let (beside_ringing, _) = pacer.expected_abandons(1.0);
    assert!(
        beside_ringing > 0.01,
        "beside an ordinary ringing call: {beside_ringing}"
    );
}

/// An agent reported on a call that began before the event (a shared agent
/// moved to this campaign mid-call) is that far into its call: more likely
/// to be free within the horizon than one whose call just began.
#[test]
fn an_agent_counted_mid_call_is_as_far_into_it_as_it_is() {
    let now = Instant::now() + Duration::from_secs(1000);
    // Past calls: a fifth live, talks of 20–200 s.
    let calls: Vec<RestoredCall> = (0..300)
        .map(|i| RestoredCall {
            ring_s: if i % 5 == 0 { 9.0 } else { 20.0 },
            live: i % 5 == 0,
            talk_s: (i % 5 == 0).then_some(20.0 + f64::from(i * 37 % 180)),
        })
        .collect();
    let free_soon = |call_began: Instant| {
        let mut pacer = Pacer::new(
            PacerConfig::predictive(100),
            now - Duration::from_secs(1000),
        );
        pacer.restore_history(now - Duration::from_secs(3600), 500, 5);
        pacer.restore_calls(&calls);
        pacer.on_event(
            PacerEvent::Agent {
                agent: AgentId(0),
                activity: AgentActivity::OnCall,
                leaving: false,
                since: call_began,
            },
            now,
        );
        pacer.decide(now).reasoning.agents_free_soon
    };
    let fresh = free_soon(now);
    let far_in = free_soon(now - Duration::from_secs(110));
    assert!(far_in > fresh + 0.05, "{far_in} vs {fresh}");
    // A `since` after the event is taken as the event's instant.
    assert_eq!(free_soon(now + Duration::from_secs(50)), fresh);
}

#[test]
fn a_live_answer_that_turns_out_a_machine_leaves_the_abandonment_windows() {
    // 100 live answers and 2 abandons restored: 2 %. Three calls are
    // counted live; one turns out a machine (its beep, a voicemail drop),
    // one a fax, one is a person who hung up before an agent came.
    let now = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::predictive(300), now);
    ready_agents(&mut pacer, 10, now);
    pacer.restore_history(now - Duration::from_secs(60), 100, 2);
    for n in 1..=3 {
        pacer.on_event(PacerEvent::CallDialed { call: CallId(n) }, now);
        pacer.on_event(PacerEvent::LiveAnswer { call: CallId(n) }, now);
    }
    let rate = |pacer: &mut Pacer| pacer.decide(now).reasoning.abandon_rate_us;
    assert!((rate(&mut pacer) - 2.0 / 103.0).abs() < 1e-12);
    let later = now + Duration::from_secs(20);
    for (call, why) in [
        (1, Some(NotLive::Machine)),
        (2, Some(NotLive::Machine)),
        (3, None),
    ] {
        if let Some(why) = why {
            pacer.on_event(
                PacerEvent::NotLive {
                    call: CallId(call),
                    why,
                },
                later,
            );
        }
        pacer.on_event(PacerEvent::CallEnded { call: CallId(call) }, later);
    }
    assert!(
        (rate(&mut pacer) - 2.0 / 101.0).abs() < 1e-12,
        "{}",
        rate(&mut pacer)
    );
    // A call not counted live takes nothing out.
    pacer.on_event(PacerEvent::CallDialed { call: CallId(4) }, later);
    pacer.on_event(
        PacerEvent::NotLive {
            call: CallId(4),
            why: NotLive::Machine,
        },
        later,
    );
    assert!((rate(&mut pacer) - 2.0 / 101.0).abs() < 1e-12);
}
