//! Cost of one pacing decision in a busy predictive campaign (issue 8:
//! ≤ 50 µs per event), and of simulating one grid cell-hour.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use outdial::pacing::{AgentActivity, AgentId, CallId, NotLive, Pacer, PacerConfig, PacerEvent};
use outdial::sim::input::ScenarioSource;
use outdial::sim::{Policy, Scenario, Setup, run};

/// A pacer that has learned a campaign: 100 agents (70 talking, 20 in
/// wrap-up, 10 ready) and 150 calls ringing at ages 0–25 s.
fn busy_pacer() -> (Pacer, Instant) {
    let t0 = Instant::now();
    let mut pacer = Pacer::new(PacerConfig::predictive(300), t0);
    let mut now = t0;
    let mut call = 0u64;
    // Learn: 3000 resolved calls, 30 % live at 4–20 s; talk and wrap samples.
    for i in 0..3000u64 {
        call += 1;
        pacer.on_event(PacerEvent::CallDialed { call: CallId(call) }, now);
        now += Duration::from_millis(300);
        let event = if i % 10 < 3 {
            PacerEvent::LiveAnswer { call: CallId(call) }
        } else {
            PacerEvent::NotLive {
                call: CallId(call),
                why: NotLive::Machine,
            }
        };
        pacer.on_event(event, now + Duration::from_secs(4 + i % 16));
        pacer.on_event(PacerEvent::Bridged { call: CallId(call) }, now);
        pacer.on_event(PacerEvent::CallEnded { call: CallId(call) }, now);
    }
    for a in 0..100u32 {
        let agent = AgentId(a);
        for (activity, secs) in [
            (AgentActivity::OnCall, 0),
            (AgentActivity::WrapUp, 60 + u64::from(a) * 3),
            (AgentActivity::Ready, 70 + u64::from(a) * 3),
        ] {
            pacer.on_event(
                PacerEvent::Agent {
                    agent,
                    activity,
                    leaving: false,
                    since: now + Duration::from_secs(secs),
                },
                now + Duration::from_secs(secs),
            );
        }
    }
    now += Duration::from_secs(400);
    for a in 0..90u32 {
        let activity = if a < 70 {
            AgentActivity::OnCall
        } else {
            AgentActivity::WrapUp
        };
        pacer.on_event(
            PacerEvent::Agent {
                agent: AgentId(a),
                activity,
                leaving: false,
                since: now - Duration::from_secs(u64::from(a) % 200),
            },
            now - Duration::from_secs(u64::from(a) % 200),
        );
    }
    for i in 0..150u64 {
        call += 1;
        pacer.on_event(
            PacerEvent::CallDialed { call: CallId(call) },
            now - Duration::from_millis(i * 170),
        );
    }
    (pacer, now)
}

fn decision(c: &mut Criterion) {
    let (mut pacer, now) = busy_pacer();
    // Between call events the agents' supply curves are reused.
    c.bench_function("pacing/decide_100_agents_150_ringing", |b| {
        b.iter(|| std::hint::black_box(pacer.decide(std::hint::black_box(now))))
    });
    // The full cost: an agent event (which invalidates the supply curves)
    // and the decision after it.
    let (mut pacer, now) = busy_pacer();
    let mut flip = false;
    c.bench_function("pacing/agent_event_and_decide_100_agents", |b| {
        b.iter(|| {
            flip = !flip;
            let activity = if flip {
                AgentActivity::Ready
            } else {
                AgentActivity::WrapUp
            };
            pacer.on_event(
                PacerEvent::Agent {
                    agent: AgentId(95),
                    activity,
                    leaving: false,
                    since: now,
                },
                now,
            );
            std::hint::black_box(pacer.decide(std::hint::black_box(now)))
        })
    });
}

fn simulate_cell_hour(c: &mut Criterion) {
    let scenario =
        Scenario::parse(include_str!("../scenarios/grid/n020-ph30.toml")).expect("grid file");
    let mut scenario = scenario;
    scenario.shift_hours = 1.0;
    let setup = Setup::from_scenario(&scenario);
    let mut group = c.benchmark_group("pacing");
    group.sample_size(10);
    group.bench_function("simulate_20_agents_1_hour", |b| {
        b.iter(|| {
            run(
                &setup,
                &mut ScenarioSource::new(&scenario, 1),
                Policy::parse("predictive").expect("policy"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, decision, simulate_cell_hour);
criterion_main!(benches);
