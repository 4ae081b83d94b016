//! Consultations (`consultation.rs`) on a virtual clock: the customer
//! waits on hold while two agents talk, hears both off hold (a
//! conference), and goes to the consulted agent when the transfer is
//! completed — or stays when the consultation ends.

use std::time::Instant;

use super::attempt::AttemptResult;
use super::dialer::{Command, Dialer, Event};
use super::io::{CallId, Effect, Input};
use super::transfer_tests::{CONFIG, customer_with_an_agent_in, effects, ms, records, state};

fn events(dialer: &mut Dialer) -> Vec<Event> {
    std::iter::from_fn(|| dialer.poll_event()).collect()
}

fn steps(events: &[Event]) -> Vec<(String, String, &'static str, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Transfer {
                agent,
                to,
                step,
                reason,
                ..
            } => Some((agent.clone(), to.clone(), *step, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Why the consultation ended, from the events since the last look.
fn ended_reason(dialer: &mut Dialer) -> Option<String> {
    steps(&events(dialer))
        .into_iter()
        .find_map(|(.., step, reason)| (step == "consultation_ended").then_some(reason))
        .flatten()
}

fn consult(agent: &str, to: Option<&str>) -> Command {
    Command::Consult {
        agent: agent.into(),
        to: to.map(str::to_string),
    }
}

/// The first consultation of the call, on or off.
fn consult_effect(call: CallId, from: &str, to: &str, on: bool) -> Effect {
    Effect::Consult {
        call,
        number: 1,
        from: from.into(),
        to: to.into(),
        on,
    }
}

/// A customer with `first`, who consults `second` at 10 s.
fn consulting(t0: Instant) -> (Dialer, CallId, String, String) {
    let (mut dialer, call, first, second) = customer_with_an_agent_in(CONFIG, t0);
    dialer
        .handle_command(consult(&first, None), t0 + ms(10_000))
        .unwrap();
    let started = effects(&mut dialer);
    assert!(
        started.contains(&Effect::Hold {
            call,
            agent: first.clone(),
            on: true,
        }),
        "the customer waits on hold: {started:?}"
    );
    assert!(
        started.contains(&consult_effect(call, &first, &second, true)),
        "{started:?}"
    );
    assert!(
        !started.iter().any(|e| matches!(e, Effect::Connect { .. })),
        "nobody is spliced yet: {started:?}"
    );
    let happened = events(&mut dialer);
    assert_eq!(
        steps(&happened),
        vec![(first.clone(), second.clone(), "consulting", None)]
    );
    assert!(
        happened
            .iter()
            .any(|e| matches!(e, Event::ScreenPop { agent, .. } if *agent == second)),
        "the consulted agent sees the customer: {happened:?}"
    );
    (dialer, call, first, second)
}

#[test]
fn a_consultation_becomes_a_conference_then_a_transfer() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = consulting(t0);
    let at = t0 + ms(11_000);
    assert_eq!(state(&dialer, &second, at), "reserved");
    let view = dialer.agent_view(&first, at).unwrap();
    let consultation = view.consultation.expect("consulting");
    assert_eq!(
        (
            consultation.with.as_str(),
            consultation.role,
            consultation.conference
        ),
        (second.as_str(), "consulting", false)
    );
    assert!(view.on_hold_s.is_some());
    let theirs = dialer.agent_view(&second, at).unwrap();
    let consultation = theirs.consultation.expect("consulted");
    assert_eq!(
        (consultation.with.as_str(), consultation.role),
        (first.as_str(), "consulted")
    );
    assert_eq!(theirs.call.map(|pop| pop.record), Some("1".to_string()));
    // Meanwhile: no hang-up, no other transfer, no second consultation.
    for command in [
        Command::AgentHangup {
            agent: first.clone(),
        },
        consult(&first, Some(&second)),
        Command::DropVoicemail {
            agent: first.clone(),
        },
    ] {
        let refused = dialer.handle_command(command, at).unwrap_err();
        assert!(refused.to_string().contains("consult"), "{refused}");
    }
    let refused = dialer
        .handle_command(
            Command::Transfer {
                agent: first.clone(),
                to: Some("carl".into()),
            },
            at,
        )
        .unwrap_err();
    assert!(
        refused.to_string().contains("end the consultation"),
        "{refused}"
    );

    // Off hold: all three talk.
    dialer
        .handle_command(
            Command::Hold {
                agent: first.clone(),
                on: false,
            },
            t0 + ms(14_000),
        )
        .unwrap();
    assert!(effects(&mut dialer).contains(&Effect::Hold {
        call,
        agent: first.clone(),
        on: false,
    }));
    let view = dialer.agent_view(&second, t0 + ms(14_100)).unwrap();
    assert!(view.consultation.unwrap().conference);

    // Complete: the consultation ends, then the customer moves.
    dialer
        .handle_command(
            Command::Transfer {
                agent: first.clone(),
                to: None,
            },
            t0 + ms(20_000),
        )
        .unwrap();
    let completed = effects(&mut dialer);
    let end = completed
        .iter()
        .position(|e| *e == consult_effect(call, &first, &second, false))
        .expect("the consultation ends");
    let connect = completed
        .iter()
        .position(|e| {
            *e == Effect::Connect {
                call,
                agent: second.clone(),
            }
        })
        .expect("the customer goes to the consulted agent");
    assert!(end < connect, "the lent leg first goes home: {completed:?}");
    assert_eq!(
        steps(&events(&mut dialer)),
        vec![(first.clone(), second.clone(), "started", None)]
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: second.clone(),
        },
        t0 + ms(20_300),
    );
    effects(&mut dialer);
    assert_eq!(
        steps(&events(&mut dialer)),
        vec![(first.clone(), second.clone(), "done", None)]
    );
    let at = t0 + ms(20_400);
    assert_eq!(state(&dialer, &first, at), "ready");
    let view = dialer.agent_view(&second, at).unwrap();
    assert_eq!((view.state, view.consultation), ("on_call", None));

    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(30_000));
    dialer.handle_timeout(t0 + ms(33_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].outcome.agent.as_deref(), Some(second.as_str()));
    assert_eq!(written[0].outcome.transferred_from, vec![first.clone()]);
    // On hold from the consultation's start to the conference.
    assert_eq!(written[0].hold_ms, Some(4000));
}

#[test]
fn either_agent_ends_a_consultation_and_the_customer_stays() {
    for ended_by_the_consulted in [false, true] {
        let t0 = Instant::now();
        let (mut dialer, call, first, second) = consulting(t0);
        let by = if ended_by_the_consulted {
            &second
        } else {
            &first
        };
        dialer
            .handle_command(
                Command::EndConsultation { agent: by.clone() },
                t0 + ms(15_000),
            )
            .unwrap();
        let ended = effects(&mut dialer);
        assert!(
            ended.contains(&consult_effect(call, &first, &second, false)),
            "{ended:?}"
        );
        assert!(
            !ended.iter().any(|e| matches!(e, Effect::Hold { .. })),
            "the customer stays on hold until the agent resumes: {ended:?}"
        );
        let reason = steps(&events(&mut dialer))
            .into_iter()
            .find(|(_, _, step, _)| *step == "consultation_ended")
            .and_then(|(.., reason)| reason)
            .expect("an end with its reason");
        let expected = if ended_by_the_consulted {
            "the consulted agent left"
        } else {
            "the consulting agent ended"
        };
        assert!(reason.contains(expected), "{reason}");
        let at = t0 + ms(15_100);
        assert_eq!(state(&dialer, &second, at), "ready");
        let view = dialer.agent_view(&first, at).unwrap();
        assert_eq!((view.state, view.consultation), ("on_call", None));
        // The call is the first agent's again: resume, then hang up.
        dialer
            .handle_command(
                Command::Hold {
                    agent: first.clone(),
                    on: false,
                },
                t0 + ms(16_000),
            )
            .unwrap();
        dialer
            .handle_command(
                Command::AgentHangup {
                    agent: first.clone(),
                },
                t0 + ms(20_000),
            )
            .unwrap();
        assert_eq!(state(&dialer, &first, t0 + ms(20_000)), "wrap_up");
        let refused = dialer
            .handle_command(
                Command::EndConsultation { agent: by.clone() },
                t0 + ms(20_000),
            )
            .unwrap_err();
        assert!(refused.to_string().contains("no consultation"), "{refused}");
    }
}

#[test]
fn the_consulted_agent_hanging_up_leaves_the_consultation() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = consulting(t0);
    dialer
        .handle_command(
            Command::AgentHangup {
                agent: second.clone(),
            },
            t0 + ms(12_000),
        )
        .unwrap();
    assert!(effects(&mut dialer).contains(&consult_effect(call, &first, &second, false)));
    assert_eq!(state(&dialer, &second, t0 + ms(12_000)), "ready");
    assert_eq!(state(&dialer, &first, t0 + ms(12_000)), "on_call");
}

#[test]
fn a_customer_who_hangs_up_during_a_consultation_is_the_consulting_agents_call() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = consulting(t0);
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(12_000));
    assert!(effects(&mut dialer).contains(&consult_effect(call, &first, &second, false)));
    let reason = ended_reason(&mut dialer);
    assert_eq!(reason.as_deref(), Some("the customer hung up"));
    let at = t0 + ms(12_000);
    assert_eq!(state(&dialer, &second, at), "ready");
    assert_eq!(state(&dialer, &first, at), "wrap_up");
    dialer.handle_timeout(t0 + ms(15_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].outcome.result, AttemptResult::Connected);
    assert_eq!(written[0].outcome.agent.as_deref(), Some(first.as_str()));
    assert!(written[0].outcome.transferred_from.is_empty());
}

#[test]
fn the_consulting_agents_phone_hanging_up_completes_the_transfer() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = consulting(t0);
    dialer.handle_input(
        Input::AgentLeg {
            agent: first.clone(),
            up: false,
        },
        t0 + ms(12_000),
    );
    let after = effects(&mut dialer);
    assert!(
        after.contains(&consult_effect(call, &first, &second, false)),
        "{after:?}"
    );
    assert!(
        after.contains(&Effect::Connect {
            call,
            agent: second.clone(),
        }),
        "a warm transfer done on the phone: {after:?}"
    );
    assert_ne!(state(&dialer, &first, t0 + ms(12_000)), "wrap_up");
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: second.clone(),
        },
        t0 + ms(12_300),
    );
    assert_eq!(state(&dialer, &second, t0 + ms(12_300)), "on_call");
}

#[test]
fn the_consulted_agents_phone_going_away_ends_the_consultation() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = consulting(t0);
    // What a dropped reservation leg's `ReleaseReservation` leads to (these
    // simulated agents have no reservation leg to drop).
    dialer.agent_lost(call, t0 + ms(12_100));
    assert!(effects(&mut dialer).contains(&consult_effect(call, &first, &second, false)));
    let reason = ended_reason(&mut dialer);
    assert_eq!(
        reason.as_deref(),
        Some("the consulted agent is gone (phone lost, or logged out)")
    );
    assert_eq!(state(&dialer, &first, t0 + ms(12_100)), "on_call");
}

#[test]
fn the_phones_hold_button_makes_a_conference_private_again() {
    let t0 = Instant::now();
    let (mut dialer, call, first, _) = consulting(t0);
    let resume = Command::Hold {
        agent: first.clone(),
        on: false,
    };
    dialer.handle_command(resume, t0 + ms(11_000)).unwrap();
    effects(&mut dialer);
    dialer.handle_input(
        Input::AgentPhoneHold {
            agent: first.clone(),
            held: true,
        },
        t0 + ms(12_000),
    );
    assert!(effects(&mut dialer).contains(&Effect::Hold {
        call,
        agent: first.clone(),
        on: true,
    }));
    let view = dialer.agent_view(&first, t0 + ms(12_100)).unwrap();
    assert!(!view.consultation.unwrap().conference);
}

#[test]
fn a_consulted_leg_that_cannot_join_ends_the_consultation() {
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = consulting(t0);
    // The first consultation ends and a second starts; a late report on
    // the first is stale and changes nothing.
    dialer
        .handle_command(
            Command::EndConsultation {
                agent: first.clone(),
            },
            t0 + ms(10_050),
        )
        .unwrap();
    dialer
        .handle_command(consult(&first, Some(&second)), t0 + ms(10_080))
        .unwrap();
    effects(&mut dialer);
    events(&mut dialer);
    dialer.handle_input(
        Input::ConsultationFailed { call, number: 1 },
        t0 + ms(10_100),
    );
    let view = dialer.agent_view(&first, t0 + ms(10_100)).unwrap();
    assert!(view.consultation.is_some(), "the second goes on");
    dialer.handle_input(
        Input::ConsultationFailed { call, number: 2 },
        t0 + ms(10_200),
    );
    let second_off = Effect::Consult {
        call,
        number: 2,
        from: first.clone(),
        to: second.clone(),
        on: false,
    };
    assert!(effects(&mut dialer).contains(&second_off));
    let reason = ended_reason(&mut dialer);
    assert_eq!(
        reason.as_deref(),
        Some("the consulted agent's phone could not join the call")
    );
    assert_eq!(state(&dialer, &second, t0 + ms(10_200)), "ready");
    assert_eq!(state(&dialer, &first, t0 + ms(10_200)), "on_call");
}
