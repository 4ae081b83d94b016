//! Blind transfers between agents (`mid_call.rs`, `Command::Transfer`),
//! on a virtual clock: the customer moves into the next agent's leg and
//! the call is that agent's; a next agent whose phone fails, or who is
//! too slow, gives the customer back to the first, on hold.

use std::path::Path;
use std::time::{Duration, Instant};

use super::attempt::{AttemptResult, TRANSFER_WAIT, Verdict};
use super::campaign_run::RunCommand;
use super::dialer::{Command, Dialer, Event};
use super::io::{AttemptRecord, CallId, ConnectFailure, Effect, Input};
use crate::config::Config;

pub(super) const CONFIG: &str = r#"
[[campaign]]
name = "demo"
mode = "progressive"
ring_timeout_s = 20
[[agent]]
id = "ann"
name = "Ann"
campaigns = ["demo"]
simulated = { wrap_up_s = 3, disposition = "SALE" }
[[agent]]
id = "bob"
name = "Bob"
campaigns = ["demo"]
simulated = { wrap_up_s = 3, disposition = "SALE" }
[media]
record_dir = "recordings"
"#;

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn effects(dialer: &mut Dialer) -> Vec<Effect> {
    std::iter::from_fn(|| dialer.poll_effect()).collect()
}

pub(super) fn events(dialer: &mut Dialer) -> Vec<Event> {
    std::iter::from_fn(|| dialer.poll_event()).collect()
}

pub(super) fn records(effects: &[Effect]) -> Vec<AttemptRecord> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Record(record) => Some((**record).clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn transfer_steps(events: &[Event]) -> Vec<(&str, &str, &'static str)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Transfer {
                agent, to, step, ..
            } => Some((agent.as_str(), to.as_str(), *step)),
            _ => None,
        })
        .collect()
}

pub(super) fn state(dialer: &Dialer, agent: &str, now: Instant) -> &'static str {
    dialer.agent_view(agent, now).unwrap().state
}

/// One record dialed, answered by a person and spliced to the agent the
/// dialer chose: the dialer, the call, that agent and the other one.
fn customer_with_an_agent(t0: Instant) -> (Dialer, CallId, String, String) {
    customer_with_an_agent_in(CONFIG, t0)
}

/// `customer_with_an_agent` with this file's `CONFIG` or a variant of it.
pub(super) fn customer_with_an_agent_in(
    config: &str,
    t0: Instant,
) -> (Dialer, CallId, String, String) {
    customer_with_an_agent_on(10, config, t0)
}

/// `customer_with_an_agent_in` on a trunk of `lines` lines.
pub(super) fn customer_with_an_agent_on(
    lines: u32,
    config: &str,
    t0: Instant,
) -> (Dialer, CallId, String, String) {
    let text = format!("{}{config}", super::test_node_toml(lines, 100.0));
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let mut dialer = Dialer::new(&config, t0);
    start_demo(&mut dialer, t0);
    let call = a_person_answers(&mut dialer, 1, t0, ms(3000), ms(600));
    let first = effects(&mut dialer)
        .iter()
        .find_map(|e| match e {
            Effect::Connect { call: c, agent } if *c == call => Some(agent.clone()),
            _ => None,
        })
        .expect("an agent is connected");
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: first.clone(),
        },
        t0 + ms(3800),
    );
    effects(&mut dialer);
    events(&mut dialer);
    let second = if first == "ann" { "bob" } else { "ann" }.to_string();
    assert_eq!(state(&dialer, &first, t0 + ms(3800)), "on_call");
    assert_eq!(state(&dialer, &second, t0 + ms(3800)), "ready");
    (dialer, call, first, second)
}

fn start_demo(dialer: &mut Dialer, now: Instant) {
    let start = Command::Campaign {
        name: "demo".into(),
        command: RunCommand::Start,
    };
    dialer.handle_command(start, now).unwrap();
    effects(dialer);
}

/// Record `record` leased at `leased_at` and dialed at once; a person
/// answers `answer_after` later and the analyser hears their greeting end
/// `greeting` after the answer (its verdict then). The call.
fn a_person_answers(
    dialer: &mut Dialer,
    record: i64,
    leased_at: Instant,
    answer_after: Duration,
    greeting: Duration,
) -> CallId {
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![super::calls_tests::lease(record)],
            for_agent: None,
        },
        leased_at,
    );
    let call = effects(dialer)
        .iter()
        .find_map(|e| match e {
            Effect::Dial { call, .. } => Some(*call),
            _ => None,
        })
        .expect("the record is dialed");
    let answered = leased_at + answer_after;
    dialer.handle_input(Input::Answered { call }, answered);
    let verdict = Input::Cpa {
        call,
        verdict: Verdict::Human {
            greeting_ended: answered + greeting,
        },
        label: "human",
        at_ms: greeting.as_millis() as u32,
    };
    dialer.handle_input(verdict, answered + greeting);
    call
}

fn transfer(agent: &str, to: Option<&str>) -> Command {
    Command::Transfer {
        agent: agent.into(),
        to: to.map(str::to_string),
    }
}

#[test]
fn a_transfer_moves_the_customer_and_the_call_to_the_next_agent() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = customer_with_an_agent(t0);
    let view = dialer.agent_view(&first, t0 + ms(5000)).unwrap();
    let offered: Vec<(&str, &str, bool)> = view
        .transfer_to
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str(), t.in_campaign))
        .collect();
    let name = if second == "ann" { "Ann" } else { "Bob" };
    assert_eq!(offered, vec![(second.as_str(), name, true)]);
    // "Please hold while I transfer you."
    dialer
        .handle_command(
            Command::Hold {
                agent: first.clone(),
                on: true,
            },
            t0 + ms(10_000),
        )
        .unwrap();
    // No other agent named: the campaign's Ready agent idle the longest.
    dialer
        .handle_command(transfer(&first, None), t0 + ms(12_000))
        .unwrap();
    let started = effects(&mut dialer);
    assert!(
        started.contains(&Effect::Connect {
            call,
            agent: second.clone(),
        }),
        "{started:?}"
    );
    let happened = events(&mut dialer);
    assert_eq!(
        transfer_steps(&happened),
        vec![(first.as_str(), second.as_str(), "started")]
    );
    assert!(
        happened
            .iter()
            .any(|e| matches!(e, Event::ScreenPop { agent, .. } if *agent == second)),
        "the next agent sees the customer: {happened:?}"
    );
    let at = t0 + ms(12_100);
    assert_eq!(state(&dialer, &second, at), "connecting");
    let view = dialer.agent_view(&first, at).unwrap();
    assert_eq!(
        (view.state, view.transferring_to.as_deref()),
        ("on_call", Some(second.as_str()))
    );
    // Meanwhile the call is neither held again nor hung up from here.
    for command in [
        Command::Hold {
            agent: first.clone(),
            on: false,
        },
        Command::AgentHangup {
            agent: first.clone(),
        },
        transfer(&first, Some(&second)),
    ] {
        let refused = dialer.handle_command(command, at).unwrap_err();
        assert!(
            refused.to_string().contains("being transferred"),
            "{refused}"
        );
    }

    dialer.handle_input(
        Input::Spliced {
            call,
            agent: second.clone(),
        },
        t0 + ms(12_400),
    );
    let done = effects(&mut dialer);
    assert!(
        done.contains(&Effect::Bridged {
            call,
            agent: second.clone(),
        }),
        "{done:?}"
    );
    assert!(
        !done
            .iter()
            .any(|e| matches!(e, Effect::Hold { on: true, .. })),
        "the next agent hears the customer, off hold: {done:?}"
    );
    let happened = events(&mut dialer);
    assert_eq!(
        transfer_steps(&happened),
        vec![(first.as_str(), second.as_str(), "done")]
    );
    let at = t0 + ms(12_500);
    assert_eq!(
        state(&dialer, &first, at),
        "ready",
        "no wrap-up for the first"
    );
    let view = dialer.agent_view(&second, at).unwrap();
    assert_eq!((view.state, view.on_hold_s), ("on_call", None));
    assert_eq!(view.call.map(|pop| pop.record), Some("1".to_string()));
    // The next agent's controls work on the customer.
    dialer
        .handle_command(
            Command::Hold {
                agent: second.clone(),
                on: true,
            },
            t0 + ms(20_000),
        )
        .unwrap();
    dialer
        .handle_command(
            Command::Hold {
                agent: second.clone(),
                on: false,
            },
            t0 + ms(21_000),
        )
        .unwrap();

    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(30_000));
    assert_eq!(state(&dialer, &second, t0 + ms(30_000)), "wrap_up");
    assert_eq!(state(&dialer, &first, t0 + ms(30_000)), "ready");
    dialer.handle_timeout(t0 + ms(33_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    let outcome = &written[0].outcome;
    assert_eq!(outcome.result, AttemptResult::Connected);
    assert_eq!(outcome.agent.as_deref(), Some(second.as_str()));
    assert_eq!(outcome.transferred_from, vec![first.clone()]);
    assert_eq!(written[0].disposition.as_deref(), Some("SALE"));
    // 2.4 s on hold with the first agent, 1 s with the second.
    assert_eq!(written[0].hold_ms, Some(3400));
    assert_eq!(
        outcome.greeting_to_agent,
        Some(ms(800)),
        "the 2-second rule measures the first connection"
    );
}

#[test]
fn a_next_agent_whose_phone_fails_gives_the_customer_back_on_hold() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = customer_with_an_agent(t0);
    dialer
        .handle_command(transfer(&first, Some(&second)), t0 + ms(10_000))
        .unwrap();
    effects(&mut dialer);
    events(&mut dialer);
    dialer.handle_input(
        Input::ConnectFailed {
            call,
            agent: second.clone(),
            cause: ConnectFailure::AgentPhoneGone,
        },
        t0 + ms(10_300),
    );
    let back = effects(&mut dialer);
    assert!(
        back.contains(&Effect::Connect {
            call,
            agent: first.clone(),
        }),
        "spliced back: {back:?}"
    );
    let happened = events(&mut dialer);
    assert_eq!(
        transfer_steps(&happened),
        vec![(first.as_str(), second.as_str(), "failed")]
    );
    let at = t0 + ms(10_400);
    assert_eq!(state(&dialer, &first, at), "on_call");
    assert_eq!(state(&dialer, &second, at), "not_ready");
    // Not through yet: nothing to resume until the splice is reported.
    let refused = dialer
        .handle_command(
            Command::Hold {
                agent: first.clone(),
                on: false,
            },
            at,
        )
        .unwrap_err();
    assert!(refused.to_string().contains("no customer"), "{refused}");
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: first.clone(),
        },
        t0 + ms(10_600),
    );
    let spliced = effects(&mut dialer);
    assert!(
        spliced.contains(&Effect::Hold {
            call,
            agent: first.clone(),
            on: true,
        }),
        "back on hold, in the fresh bridge: {spliced:?}"
    );
    dialer
        .handle_command(
            Command::Hold {
                agent: first.clone(),
                on: false,
            },
            t0 + ms(12_600),
        )
        .unwrap();
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(20_000));
    dialer.handle_timeout(t0 + ms(23_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].outcome.agent.as_deref(), Some(first.as_str()));
    assert!(written[0].outcome.transferred_from.is_empty());
    assert_eq!(written[0].hold_ms, Some(2300));
}

#[test]
fn a_transfer_not_spliced_in_time_comes_back_and_frees_the_next_agent() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = customer_with_an_agent(t0);
    dialer
        .handle_command(transfer(&first, Some(&second)), t0 + ms(10_000))
        .unwrap();
    effects(&mut dialer);
    events(&mut dialer);
    let before = t0 + ms(10_000) + TRANSFER_WAIT - ms(1);
    dialer.handle_timeout(before);
    assert_eq!(state(&dialer, &second, before), "connecting");
    let at = t0 + ms(10_000) + TRANSFER_WAIT;
    assert_eq!(dialer.poll_timeout(), Some(at));
    dialer.handle_timeout(at);
    assert!(effects(&mut dialer).contains(&Effect::Connect {
        call,
        agent: first.clone(),
    }));
    assert_eq!(
        transfer_steps(&events(&mut dialer)),
        vec![(first.as_str(), second.as_str(), "failed")]
    );
    assert_eq!(state(&dialer, &second, at), "ready");
    // The late splice into the second agent's leg is stale: the customer
    // is spliced back to the first.
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: second.clone(),
        },
        at + ms(100),
    );
    assert!(effects(&mut dialer).contains(&Effect::Connect {
        call,
        agent: first.clone(),
    }));
    assert_eq!(state(&dialer, &first, at + ms(100)), "on_call");
}

#[test]
fn a_customer_who_hangs_up_during_the_transfer_is_the_first_agents_call() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = customer_with_an_agent(t0);
    dialer
        .handle_command(transfer(&first, Some(&second)), t0 + ms(10_000))
        .unwrap();
    effects(&mut dialer);
    events(&mut dialer);
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(10_200));
    let at = t0 + ms(10_200);
    assert_eq!(state(&dialer, &first, at), "wrap_up");
    assert_eq!(state(&dialer, &second, at), "ready");
    // Both agents hear how it ended (the next one saw the screen pop).
    let ended = events(&mut dialer);
    let reason = ended.iter().find_map(|e| match e {
        Event::Transfer {
            step: "failed",
            reason,
            ..
        } => reason.clone(),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("the customer hung up"), "{ended:?}");
    dialer.handle_timeout(t0 + ms(13_200));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].outcome.result, AttemptResult::Connected);
    assert_eq!(written[0].outcome.agent.as_deref(), Some(first.as_str()));
}

#[test]
fn a_transfer_needs_a_customer_on_the_line_and_a_ready_agent() {
    let t0 = Instant::now();
    let (mut dialer, _call, first, second) = customer_with_an_agent(t0);
    let at = t0 + ms(5000);
    let cases = [
        (transfer(&first, Some(&first)), "yours already"),
        (transfer(&first, Some("nobody")), "nobody"),
        (transfer(&second, None), "on_call"),
    ];
    for (command, expected) in cases {
        let refused = dialer.handle_command(command, at).unwrap_err();
        assert!(refused.to_string().contains(expected), "{refused}");
    }
    dialer
        .handle_command(
            Command::AgentNotReady {
                agent: second.clone(),
                reason: "break".into(),
            },
            at,
        )
        .unwrap();
    let refused = dialer
        .handle_command(transfer(&first, Some(&second)), at)
        .unwrap_err();
    assert!(refused.to_string().contains("not_ready"), "{refused}");
    let refused = dialer
        .handle_command(transfer(&first, None), at)
        .unwrap_err();
    assert!(refused.to_string().contains("no other agent"), "{refused}");
    assert!(
        dialer
            .agent_view(&first, at)
            .unwrap()
            .transfer_to
            .is_empty()
    );
    assert_eq!(state(&dialer, &first, at), "on_call");
}

#[test]
fn a_first_agent_who_hangs_up_leaves_the_call_and_a_failed_transfer_then_ends_it() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = customer_with_an_agent(t0);
    dialer
        .handle_command(transfer(&first, Some(&second)), t0 + ms(10_000))
        .unwrap();
    effects(&mut dialer);
    // The first agent hangs up its phone: the transfer goes on without it.
    dialer.handle_input(
        Input::AgentLeg {
            agent: first.clone(),
            up: false,
        },
        t0 + ms(10_100),
    );
    let at = t0 + ms(10_100);
    assert_ne!(state(&dialer, &first, at), "on_call");
    assert_eq!(state(&dialer, &second, at), "connecting");
    events(&mut dialer);
    // The next agent's phone fails too: nobody to take the customer back.
    dialer.handle_input(
        Input::ConnectFailed {
            call,
            agent: second.clone(),
            cause: ConnectFailure::AgentPhoneGone,
        },
        t0 + ms(10_300),
    );
    let ended = effects(&mut dialer);
    assert!(ended.contains(&Effect::HangUp { call }), "{ended:?}");
    assert!(
        !ended
            .iter()
            .any(|e| matches!(e, Effect::Connect { agent, .. } if *agent == first)),
        "not spliced back into a phone that left: {ended:?}"
    );
    let written = records(&ended);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].outcome.result, AttemptResult::Connected);
    assert_eq!(written[0].outcome.agent.as_deref(), Some(first.as_str()));
    assert_eq!(
        transfer_steps(&events(&mut dialer)),
        vec![(first.as_str(), second.as_str(), "failed")]
    );
}

#[test]
fn the_hold_is_kept_when_the_customer_hangs_up_before_the_splice_back() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = customer_with_an_agent(t0);
    dialer
        .handle_command(
            Command::Hold {
                agent: first.clone(),
                on: true,
            },
            t0 + ms(10_000),
        )
        .unwrap();
    dialer
        .handle_command(transfer(&first, Some(&second)), t0 + ms(10_000))
        .unwrap();
    dialer.handle_input(
        Input::ConnectFailed {
            call,
            agent: second.clone(),
            cause: ConnectFailure::AgentPhoneGone,
        },
        t0 + ms(10_300),
    );
    // Gone before the splice back was reported.
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(12_000));
    dialer.handle_timeout(t0 + ms(15_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].hold_ms, Some(2000), "{:?}", written[0]);
}

/// `config` with Ann's phone rung per call; Bob on a break, so Ann takes
/// the one record's live answer and is on the call (spliced at 1.6 s).
pub(super) fn per_call_ann_on_a_call(config: &str, t0: Instant) -> (Dialer, CallId) {
    let text = format!("{}{config}", super::test_node_toml(10, 100.0)).replacen(
        "simulated = { wrap_up_s = 3, disposition = \"SALE\" }",
        "sip_uri = \"sip:ann@127.0.0.1:5090\"\nconnection = \"per_call\"",
        1,
    );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let mut dialer = Dialer::new(&config, t0);
    let ann = |command: fn(String) -> Command| command("ann".into());
    dialer
        .handle_command(ann(|agent| Command::AgentLogin { agent }), t0)
        .unwrap();
    dialer
        .handle_command(ann(|agent| Command::AgentReady { agent }), t0)
        .unwrap();
    dialer
        .handle_command(
            Command::AgentNotReady {
                agent: "bob".into(),
                reason: "break".into(),
            },
            t0,
        )
        .unwrap();
    start_demo(&mut dialer, t0);
    let call = a_person_answers(&mut dialer, 1, t0, ms(200), ms(800));
    // Ann's phone is rung for the customer and answers.
    assert!(effects(&mut dialer).contains(&Effect::CallAgent {
        agent: "ann".into()
    }));
    dialer.handle_input(
        Input::AgentLeg {
            agent: "ann".into(),
            up: true,
        },
        t0 + ms(1300),
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "ann".into(),
        },
        t0 + ms(1600),
    );
    assert_eq!(state(&dialer, "ann", t0 + ms(1600)), "on_call");
    (dialer, call)
}

#[test]
fn a_first_agent_rung_per_call_keeps_the_phone_call_for_the_next_customer() {
    let t0 = Instant::now();
    let (mut dialer, call) = per_call_ann_on_a_call(CONFIG, t0);
    dialer
        .handle_command(
            Command::AgentReady {
                agent: "bob".into(),
            },
            t0 + ms(5000),
        )
        .unwrap();
    effects(&mut dialer);
    dialer
        .handle_command(transfer("ann", Some("bob")), t0 + ms(6000))
        .unwrap();
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "bob".into(),
        },
        t0 + ms(6300),
    );
    let done = effects(&mut dialer);
    assert!(
        !done.contains(&Effect::HangUpAgent {
            agent: "ann".into()
        }),
        "ann's call is kept for her next customer: {done:?}"
    );
    assert_eq!(state(&dialer, "bob", t0 + ms(6300)), "on_call");
    assert_eq!(state(&dialer, "ann", t0 + ms(6300)), "ready");
    // Her next customer comes into that call, without ringing her again.
    let next = a_person_answers(&mut dialer, 2, t0 + ms(7000), ms(1000), ms(600));
    let connected = effects(&mut dialer);
    assert!(
        connected.contains(&Effect::Connect {
            call: next,
            agent: "ann".into()
        }) && !connected.contains(&Effect::CallAgent {
            agent: "ann".into()
        }),
        "{connected:?}"
    );
}
