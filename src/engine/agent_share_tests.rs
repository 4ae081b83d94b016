//! Agents shared by campaigns that dial by themselves: each is counted by
//! one campaign's pacing at a time (`agent_share.rs`).

use std::path::Path;
use std::time::Instant;

use super::attempt::Verdict;
use super::campaign_run::RunCommand;
use super::dialer::{Command, Dialer, Event};
use super::io::{CallId, Effect, Input};
use super::preview_tests::{dials, effects, events, lease, ms};
use crate::config::Config;

/// Campaigns `a` and `b`; agents `x` and `y` in both, and `own_a` more
/// (`z0`, `z1`, …) in `a` only.
fn config(mode_a: &str, mode_b: &str, own_a: usize) -> Config {
    let text = config_text(mode_a, mode_b, own_a);
    Config::parse(&text, Path::new("outdial.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The TOML behind [`config`].
fn config_text(mode_a: &str, mode_b: &str, own_a: usize) -> String {
    let z: String = (0..own_a)
        .map(|i| {
            format!(
                r#"
[[agent]]
id = "z{i}"
name = "Zed {i}"
sip_uri = "sip:z{i}@127.0.0.1:{port}"
campaigns = ["a"]
"#,
                port = 5092 + i
            )
        })
        .collect();
    format!(
        r#"{node}
[[campaign]]
name = "a"
mode = "{mode_a}"
ring_timeout_s = 20
[[campaign]]
name = "b"
mode = "{mode_b}"
ring_timeout_s = 20
[[agent]]
id = "x"
name = "Ex"
sip_uri = "sip:x@127.0.0.1:5090"
campaigns = ["a", "b"]
[[agent]]
id = "y"
name = "Why"
sip_uri = "sip:y@127.0.0.1:5091"
campaigns = ["a", "b"]
{z}"#,
        node = super::test_node_toml(12, 50.0),
    )
}

fn ready(dialer: &mut Dialer, agent: &str, now: Instant) {
    dialer
        .handle_command(
            Command::AgentLogin {
                agent: agent.into(),
            },
            now,
        )
        .unwrap();
    dialer.reservation_leg(agent, true, now).unwrap();
    dialer
        .handle_command(
            Command::AgentReady {
                agent: agent.into(),
            },
            now,
        )
        .unwrap();
}

/// `x` and `y` Ready, campaigns `a` and `b` started; effects drained.
fn both_started(mode_a: &str, mode_b: &str, t0: Instant) -> Dialer {
    let mut dialer = Dialer::new(&config(mode_a, mode_b, 0), t0);
    ready(&mut dialer, "x", t0);
    ready(&mut dialer, "y", t0);
    campaign(&mut dialer, "a", RunCommand::Start, t0);
    campaign(&mut dialer, "b", RunCommand::Start, t0);
    effects(&mut dialer);
    dialer
}

/// The shared agent `campaign` counts (of `x` and `y`).
fn counted_by(dialer: &Dialer, campaign: &str, now: Instant) -> &'static str {
    if dialing_for(dialer, "x", now).as_deref() == Some(campaign) {
        "x"
    } else {
        "y"
    }
}

fn campaign(dialer: &mut Dialer, name: &str, command: RunCommand, now: Instant) {
    dialer
        .handle_command(
            Command::Campaign {
                name: name.into(),
                command,
            },
            now,
        )
        .unwrap();
}

/// The Ready agents `campaign`'s pacer plans for.
fn counted_ready(dialer: &mut Dialer, campaign: &str, now: Instant) -> u32 {
    let live = dialer.live.get_mut(campaign).unwrap();
    live.pacer.decide(now).reasoning.ready_agents
}

fn dialing_for(dialer: &Dialer, agent: &str, now: Instant) -> Option<String> {
    dialer.agent_view(agent, now).unwrap().dialing_for
}

/// `call` answered 3 s after `t0` by a person whose greeting ends at 3.6 s
/// (the human verdict at 3.9 s).
fn human_answers(dialer: &mut Dialer, call: CallId, t0: Instant) {
    dialer.handle_input(Input::Answered { call }, t0 + ms(3000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(3600),
            },
            label: "human",
            at_ms: 900,
        },
        t0 + ms(3900),
    );
}

fn leased(dialer: &mut Dialer, campaign: &str, ids: &[i64], now: Instant) -> Vec<Effect> {
    dialer.handle_input(
        Input::Leased {
            campaign: campaign.into(),
            leases: ids.iter().map(|&id| lease(id)).collect(),
            for_agent: None,
        },
        now,
    );
    effects(dialer)
}

/// Two predictive campaigns sharing a team: each pacer plans for its half,
/// not for the whole team twice; a campaign that stops gives its half
/// back, and one that starts again takes it.
#[test]
fn two_predictive_campaigns_sharing_a_team_each_count_their_share_of_it() {
    let t0 = Instant::now();
    let mut dialer = Dialer::new(&config("predictive", "predictive", 0), t0);
    ready(&mut dialer, "x", t0);
    ready(&mut dialer, "y", t0);
    campaign(&mut dialer, "a", RunCommand::Start, t0);
    assert_eq!(counted_ready(&mut dialer, "a", t0), 2);
    assert_eq!(
        dialing_for(&dialer, "x", t0),
        None,
        "one campaign: not shared"
    );

    campaign(&mut dialer, "b", RunCommand::Start, t0 + ms(10));
    let t = t0 + ms(20);
    assert_eq!(counted_ready(&mut dialer, "a", t), 1);
    assert_eq!(counted_ready(&mut dialer, "b", t), 1);
    let mut shares = [dialing_for(&dialer, "x", t), dialing_for(&dialer, "y", t)];
    shares.sort();
    assert_eq!(shares, [Some("a".to_string()), Some("b".to_string())]);

    // b paused (it dials nothing): both agents are a's again.
    campaign(&mut dialer, "b", RunCommand::Pause, t0 + ms(30));
    let t = t0 + ms(40);
    assert_eq!(counted_ready(&mut dialer, "a", t), 2);
    assert_eq!(dialing_for(&dialer, "y", t), None);
    campaign(&mut dialer, "b", RunCommand::Start, t0 + ms(50));
    let t = t0 + ms(60);
    assert_eq!(counted_ready(&mut dialer, "a", t), 1);
    assert_eq!(counted_ready(&mut dialer, "b", t), 1);

    // One agent left: one campaign counts it, never both; the agent who
    // logs in again goes to the campaign left without one.
    let y_dials_for = dialing_for(&dialer, "y", t).unwrap();
    dialer
        .handle_command(Command::AgentLogout { agent: "x".into() }, t0 + ms(70))
        .unwrap();
    let t = t0 + ms(80);
    assert_eq!(
        counted_ready(&mut dialer, "a", t) + counted_ready(&mut dialer, "b", t),
        1
    );
    assert_eq!(dialing_for(&dialer, "y", t).as_ref(), Some(&y_dials_for));
    ready(&mut dialer, "x", t0 + ms(90));
    let t = t0 + ms(100);
    assert_eq!(counted_ready(&mut dialer, "a", t), 1);
    assert_eq!(counted_ready(&mut dialer, "b", t), 1);
    assert_ne!(dialing_for(&dialer, "x", t).as_ref(), Some(&y_dials_for));
}

/// A campaign's own agents count: with two agents in `a` alone, both
/// shared agents dial for `b` (two each) rather than one each (three and
/// one).
#[test]
fn shares_are_balanced_on_every_agent_a_campaign_counts() {
    let t0 = Instant::now();
    let mut dialer = Dialer::new(&config("predictive", "progressive", 2), t0);
    for agent in ["x", "y", "z0", "z1"] {
        ready(&mut dialer, agent, t0);
    }
    campaign(&mut dialer, "a", RunCommand::Start, t0);
    campaign(&mut dialer, "b", RunCommand::Start, t0);
    let t = t0 + ms(10);
    assert_eq!(dialing_for(&dialer, "x", t).as_deref(), Some("b"));
    assert_eq!(dialing_for(&dialer, "y", t).as_deref(), Some("b"));
    assert_eq!(counted_ready(&mut dialer, "a", t), 2);
    assert_eq!(counted_ready(&mut dialer, "b", t), 2);
}

/// `agent_share_weight` divides shared agents in proportion: at 4 to 1,
/// both shared agents dial for `a` (at 1 to 1, one each).
#[test]
fn shares_follow_the_campaigns_weights() {
    let t0 = Instant::now();
    let text = config_text("predictive", "predictive", 0).replacen(
        "name = \"a\"\nmode = \"predictive\"",
        "name = \"a\"\nmode = \"predictive\"\nagent_share_weight = 4.0",
        1,
    );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let mut dialer = Dialer::new(&config, t0);
    ready(&mut dialer, "x", t0);
    ready(&mut dialer, "y", t0);
    campaign(&mut dialer, "a", RunCommand::Start, t0);
    campaign(&mut dialer, "b", RunCommand::Start, t0);
    let t = t0 + ms(10);
    assert_eq!(dialing_for(&dialer, "x", t).as_deref(), Some("a"));
    assert_eq!(dialing_for(&dialer, "y", t).as_deref(), Some("a"));
    assert_eq!(counted_ready(&mut dialer, "a", t), 2);
    assert_eq!(counted_ready(&mut dialer, "b", t), 0);
}

/// A live answer whose campaign has no agent of its own free takes a
/// Ready agent it shares with the other campaign rather than wait to be
/// abandoned.
#[test]
fn a_live_answer_takes_a_shared_agent_counted_by_the_other_campaign_rather_than_wait() {
    let t0 = Instant::now();
    let mut dialer = both_started("progressive", "progressive", t0);
    let t = t0 + ms(10);
    let b_agent = counted_by(&dialer, "b", t);
    let a_agent = if b_agent == "x" { "y" } else { "x" };
    // b dials one call for its one agent.
    let calls: Vec<CallId> = dials(&leased(&mut dialer, "b", &[1, 2, 3], t));
    assert_eq!(calls.len(), 1, "progressive 1:1 on b's one agent");
    let call = calls[0];
    // Its agent goes on a break while it rings.
    dialer
        .handle_command(
            Command::AgentNotReady {
                agent: b_agent.into(),
                reason: "break".into(),
            },
            t0 + ms(500),
        )
        .unwrap();
    effects(&mut dialer);
    human_answers(&mut dialer, call, t0);
    let connected = effects(&mut dialer);
    assert!(
        connected.contains(&Effect::Connect {
            call,
            agent: a_agent.into()
        }),
        "{connected:?}"
    );
}

/// Push preview sharing agents with a predictive campaign pushes records
/// only to the agents it counts: the other's pacer has planned for its
/// own.
#[test]
fn push_preview_pushes_only_to_the_agents_it_counts() {
    let t0 = Instant::now();
    let mut dialer = both_started("predictive", "push_preview", t0);
    events(&mut dialer);
    let t = t0 + ms(10);
    let b_agent = counted_by(&dialer, "b", t);
    leased(&mut dialer, "b", &[1, 2, 3], t);
    let pushed: Vec<String> = events(&mut dialer)
        .into_iter()
        .filter_map(|e| match e {
            Event::Preview { agent, .. } => Some(agent),
            _ => None,
        })
        .collect();
    assert_eq!(pushed, vec![b_agent.to_string()]);
}

/// Two predictive campaigns sharing a team of twelve simulated agents, eight
/// virtual hours through the whole engine (its pacers, dispatcher and
/// 2-second clocks; `virtual_shift.rs`): each campaign's abandonment stays
/// under the 3 % cap at the end and in its running rate once 100 live
/// answers were seen. Counted by both pacers, the team was promised twice.
#[test]
fn two_predictive_campaigns_sharing_a_team_stay_under_the_cap() {
    let (tally, _) = shared_team_shift(2, 8.0);
    for (campaign, t) in &tally {
        let rate = t.abandoned as f64 / t.live as f64;
        assert!(t.live >= 300, "{campaign}: {t:?}");
        assert!(rate <= 0.03, "{campaign}: {rate} {t:?}");
        assert!(t.peak_rate <= 0.03, "{campaign}: {t:?}");
    }
}

/// Runs campaigns `a` and `b`, both predictive, with twelve simulated
/// agents in both, for `hours` of virtual time: each campaign's tally and
/// the agents' talk share of the shift.
fn shared_team_shift(
    seed: u64,
    hours: f64,
) -> (
    std::collections::BTreeMap<String, super::virtual_shift::Tally>,
    f64,
) {
    use super::virtual_shift::{Callees, VirtualShift};
    const AGENTS: usize = 12;
    let agents = super::virtual_shift::simulated_agents(AGENTS, &["a", "b"], 5);
    let text = format!(
        r#"{node}
[[campaign]]
name = "a"
mode = "predictive"
ring_timeout_s = 20
[[campaign]]
name = "b"
mode = "predictive"
ring_timeout_s = 20
{agents}"#,
        node = super::test_node_toml(3 * AGENTS as u32, 10.0),
    );
    let config =
        Config::parse(&text, Path::new("outdial.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let t0 = Instant::now();
    let mut dialer = Dialer::new(&config, t0);
    campaign(&mut dialer, "a", RunCommand::Start, t0);
    campaign(&mut dialer, "b", RunCommand::Start, t0);
    let callees = [
        (
            "a".to_string(),
            Callees {
                human: 0.3,
                machine: 0.2,
                talk_mean_s: 60.0,
            },
        ),
        (
            "b".to_string(),
            Callees {
                human: 0.15,
                machine: 0.2,
                talk_mean_s: 90.0,
            },
        ),
    ]
    .into_iter()
    .collect();
    let mut shift = VirtualShift::new(dialer, callees, seed, t0);
    shift.run_until(t0 + std::time::Duration::from_secs_f64(hours * 3600.0));
    let talk: f64 = shift.tally.values().map(|t| t.talk_s).sum();
    (shift.tally, talk / (AGENTS as f64 * hours * 3600.0))
}

/// The README's figures (8 virtual hours, seeds 1–4):
/// `cargo test --release --lib shared_team_figures -- --ignored --nocapture`.
#[test]
#[ignore]
fn shared_team_figures() {
    for seed in 1..=4 {
        let (tally, talk) = shared_team_shift(seed, 8.0);
        for (campaign, t) in &tally {
            eprintln!(
                "seed {seed} {campaign}: {} dials, {} live, {} abandoned ({:.2} %), peak {:.2} %",
                t.dials,
                t.live,
                t.abandoned,
                100.0 * t.abandoned as f64 / t.live as f64,
                100.0 * t.peak_rate
            );
        }
        eprintln!(
            "seed {seed}: talk {:.1} % of the agents' time",
            100.0 * talk
        );
    }
}

/// An agent of two campaigns, free while both have a customer waiting,
/// takes the one closest to being abandoned, not the first campaign in
/// its list.
#[test]
fn a_shared_agent_takes_the_customer_closest_to_being_abandoned() {
    let t0 = Instant::now();
    let mut dialer = both_started("progressive", "progressive", t0);
    let t = t0 + ms(10);
    let a_call = dials(&leased(&mut dialer, "a", &[1, 2], t))[0];
    let b_call = dials(&leased(&mut dialer, "b", &[3, 4], t))[0];
    for agent in ["x", "y"] {
        dialer
            .handle_command(
                Command::AgentNotReady {
                    agent: agent.into(),
                    reason: "break".into(),
                },
                t0 + ms(500),
            )
            .unwrap();
    }
    // b's customer greets first, a's 800 ms later: both wait.
    for (call, greeted) in [(b_call, 3000), (a_call, 3800)] {
        dialer.handle_input(Input::Answered { call }, t0 + ms(greeted - 500));
        dialer.handle_input(
            Input::Cpa {
                call,
                verdict: Verdict::Human {
                    greeting_ended: t0 + ms(greeted),
                },
                label: "human",
                at_ms: 500,
            },
            t0 + ms(greeted + 100),
        );
    }
    effects(&mut dialer);
    // x (a first in its list) comes back: b's customer is the older.
    dialer
        .handle_command(Command::AgentReady { agent: "x".into() }, t0 + ms(4200))
        .unwrap();
    let connected = effects(&mut dialer);
    assert!(
        connected.contains(&Effect::Connect {
            call: b_call,
            agent: "x".into()
        }),
        "{connected:?}"
    );
}

/// A shared agent moved to another campaign while on a call is, for that
/// campaign's pacer, as far into the call as it is — not starting it at
/// the move (which would have it planned free a whole call too late).
#[test]
fn a_shared_agent_moved_mid_call_keeps_its_time_on_the_call() {
    use crate::pacing::{AgentActivity, AgentId};
    let t0 = Instant::now();
    let mut dialer = both_started("progressive", "progressive", t0);
    let t = t0 + ms(10);
    let a_agent = counted_by(&dialer, "a", t);
    let calls: Vec<CallId> = dials(&leased(&mut dialer, "a", &[1, 2, 3], t));
    assert_eq!(calls.len(), 1, "progressive 1:1 on a's one agent");
    let call = calls[0];
    human_answers(&mut dialer, call, t0);
    let connected = effects(&mut dialer);
    assert!(
        connected.contains(&Effect::Connect {
            call,
            agent: a_agent.into()
        }),
        "{connected:?}"
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: a_agent.into(),
        },
        t0 + ms(3950),
    );
    effects(&mut dialer);
    let on_call_since = |dialer: &Dialer, campaign: &str| {
        let id = *dialer.agent_ids.get(a_agent).unwrap();
        dialer.live[campaign].pacer.agent_slot(AgentId(id.0))
    };
    let (activity, began) = on_call_since(&dialer, "a").unwrap();
    assert_eq!(activity, AgentActivity::OnCall);
    // b never counted it; campaign a stops 60 s into the call: the agent
    // is b's alone from then on, mid-call.
    assert_eq!(
        on_call_since(&dialer, "b").map(|s| s.0),
        Some(AgentActivity::LoggedOut)
    );
    let moved = t0 + ms(63_950);
    campaign(&mut dialer, "a", RunCommand::Stop, moved);
    effects(&mut dialer);
    assert_eq!(
        on_call_since(&dialer, "b"),
        Some((AgentActivity::OnCall, began)),
        "b's pacer sees the call from its start"
    );
}
