use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::attempt::*;
use crate::config::MachineAction;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn drain(attempt: &mut Attempt) -> Vec<Action> {
    std::iter::from_fn(|| attempt.poll_action()).collect()
}

fn finished(actions: &[Action]) -> Option<Outcome> {
    actions.iter().find_map(|a| match a {
        Action::Finished(outcome) => Some(outcome.clone()),
        _ => None,
    })
}

fn answered(settings: AttemptSettings, t0: Instant) -> Attempt {
    let mut attempt = Attempt::new(1, settings, t0);
    attempt.on_provisional(t0 + ms(300));
    attempt.on_answered(t0 + ms(5000));
    assert!(drain(&mut attempt).is_empty());
    attempt
}

#[test]
fn human_connected_within_the_window() {
    let t0 = Instant::now();
    let mut attempt = answered(AttemptSettings::default(), t0);
    // "Hello?" ends at 5.6 s, the analyser decides at 5.95 s.
    attempt.on_verdict(
        Verdict::Human {
            greeting_ended: t0 + ms(5600),
        },
        t0 + ms(5950),
    );
    assert_eq!(drain(&mut attempt), vec![Action::RequestAgent]);
    assert_eq!(
        attempt.poll_timeout(),
        Some(t0 + ms(7600)),
        "2 s after the greeting"
    );
    assert!(attempt.on_agent_assigned("1001", t0 + ms(5951)));
    assert_eq!(
        drain(&mut attempt),
        vec![Action::PlayZipTone {
            agent: "1001".into()
        }]
    );
    attempt.on_zip_tone_done(t0 + ms(6100));
    assert_eq!(
        drain(&mut attempt),
        vec![Action::Bridge {
            agent: "1001".into()
        }]
    );
    assert_eq!(attempt.poll_timeout(), None);
    attempt.on_remote_hangup(t0 + ms(90_000));
    let outcome = finished(&drain(&mut attempt)).expect("finished");
    assert_eq!(outcome.result, AttemptResult::Connected);
    assert_eq!(outcome.agent.as_deref(), Some("1001"));
    assert_eq!(outcome.pdd, Some(ms(300)));
    assert_eq!(outcome.answered_after, Some(ms(5000)));
    assert_eq!(outcome.verdict_after_answer, Some(ms(950)));
    // Verdict 5950 ms, agent assigned 5951 ms, splice 6100 ms.
    assert_eq!(outcome.agent_wait, Some(ms(1)));
    assert_eq!(outcome.connect_latency, Some(ms(149)));
    assert_eq!(outcome.greeting_to_agent, Some(ms(500)));
}

#[test]
fn abandon_clock_runs_from_the_end_of_the_greeting() {
    let t0 = Instant::now();
    let mut attempt = answered(AttemptSettings::default(), t0);
    attempt.on_verdict(
        Verdict::Human {
            greeting_ended: t0 + ms(5600),
        },
        t0 + ms(6000),
    );
    drain(&mut attempt);
    attempt.handle_timeout(t0 + ms(7599));
    assert!(drain(&mut attempt).is_empty(), "still inside the window");
    attempt.handle_timeout(t0 + ms(7600));
    assert_eq!(
        drain(&mut attempt),
        vec![Action::WithdrawAgentRequest, Action::Play(Prompt::Abandon)]
    );
    // An agent freed a moment too late is not given the call.
    assert!(!attempt.on_agent_assigned("1001", t0 + ms(7700)));
    attempt.on_prompt_done(t0 + ms(12_600));
    let actions = drain(&mut attempt);
    assert_eq!(actions[0], Action::Hangup);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::Abandoned)
    );
}

#[test]
fn a_zip_tone_running_past_the_window_is_cut_by_the_bridge() {
    let t0 = Instant::now();
    let mut attempt = answered(AttemptSettings::default(), t0);
    attempt.on_verdict(
        Verdict::Human {
            greeting_ended: t0 + ms(5600),
        },
        t0 + ms(5900),
    );
    attempt.on_agent_assigned("1001", t0 + ms(7500));
    drain(&mut attempt);
    assert_eq!(attempt.poll_timeout(), Some(t0 + ms(7600)));
    attempt.handle_timeout(t0 + ms(7600));
    assert_eq!(
        drain(&mut attempt),
        vec![Action::Bridge {
            agent: "1001".into()
        }]
    );
    attempt.on_zip_tone_done(t0 + ms(7700));
    attempt.on_agent_hangup(t0 + ms(60_000));
    let outcome = finished(&drain(&mut attempt)).expect("finished");
    assert_eq!(outcome.result, AttemptResult::Connected);
    assert_eq!(outcome.greeting_to_agent, Some(ABANDON_WINDOW));
}

#[test]
fn a_late_verdict_abandons_at_once() {
    let t0 = Instant::now();
    let settings = AttemptSettings {
        has_abandon_prompt: false,
        ..AttemptSettings::default()
    };
    let mut attempt = answered(settings, t0);
    attempt.on_verdict(
        Verdict::Human {
            greeting_ended: t0 + ms(5100),
        },
        t0 + ms(7200),
    );
    let actions = drain(&mut attempt);
    assert_eq!(actions[0], Action::Hangup);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::Abandoned)
    );
}

#[test]
fn customer_hanging_up_inside_the_window_is_not_an_abandon() {
    let t0 = Instant::now();
    let mut attempt = answered(AttemptSettings::default(), t0);
    attempt.on_verdict(
        Verdict::Human {
            greeting_ended: t0 + ms(5500),
        },
        t0 + ms(5800),
    );
    drain(&mut attempt);
    attempt.on_remote_hangup(t0 + ms(6500));
    let actions = drain(&mut attempt);
    assert_eq!(actions[0], Action::WithdrawAgentRequest);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::HungUpBeforeConnect)
    );
}

#[test]
fn machine_actions() {
    let t0 = Instant::now();
    // Hang up.
    let mut attempt = answered(AttemptSettings::default(), t0);
    attempt.on_verdict(Verdict::Machine, t0 + ms(7000));
    let actions = drain(&mut attempt);
    assert_eq!(actions[0], Action::Hangup);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::Machine)
    );

    // Leave a message after the beep.
    let settings = AttemptSettings {
        machine_action: MachineAction::LeaveMessage,
        ..AttemptSettings::default()
    };
    let mut attempt = answered(settings.clone(), t0);
    attempt.on_verdict(Verdict::Machine, t0 + ms(7000));
    assert!(drain(&mut attempt).is_empty());
    attempt.on_verdict(Verdict::Beep, t0 + ms(11_000));
    assert_eq!(drain(&mut attempt), vec![Action::Play(Prompt::Voicemail)]);
    attempt.on_prompt_done(t0 + ms(30_000));
    let actions = drain(&mut attempt);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::VoicemailLeft)
    );

    // No beep ever: speak when the wait runs out.
    let mut attempt = answered(settings, t0);
    attempt.on_verdict(Verdict::Machine, t0 + ms(7000));
    attempt.handle_timeout(t0 + ms(27_000));
    assert_eq!(drain(&mut attempt), vec![Action::Play(Prompt::Voicemail)]);

    // Connect an agent; a machine is never an abandon.
    let settings = AttemptSettings {
        machine_action: MachineAction::ConnectAgent,
        ..AttemptSettings::default()
    };
    let mut attempt = answered(settings, t0);
    attempt.on_verdict(Verdict::Machine, t0 + ms(7000));
    assert_eq!(drain(&mut attempt), vec![Action::RequestAgent]);
    assert_eq!(attempt.waiting_live_since(), None);
    attempt.handle_timeout(t0 + ms(17_000));
    let actions = drain(&mut attempt);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::Machine)
    );
}

#[test]
fn ring_timeout_cancels_as_no_answer() {
    let t0 = Instant::now();
    let mut attempt = Attempt::new(1, AttemptSettings::default(), t0);
    attempt.on_provisional(t0 + ms(200));
    assert_eq!(attempt.poll_timeout(), Some(t0 + ms(25_000)));
    attempt.handle_timeout(t0 + ms(25_000));
    assert_eq!(drain(&mut attempt), vec![Action::CancelRinging]);
    // The CANCEL's 487 ends it; the CDR shows that code.
    attempt.on_failed(Failure::NoAnswer, Some(487), None, t0 + ms(25_080));
    let actions = drain(&mut attempt);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::NoAnswer)
    );
    assert_eq!(finished(&actions).and_then(|o| o.sip_code), Some(487));
}

/// A person picks up just as the ring timeout gives up: their 200 crosses
/// the CANCEL and the call goes on as any answer (it used to be BYEd at
/// once and written as no answer: a silent call to a live person).
#[test]
fn an_answer_crossing_the_ring_timeouts_cancel_is_kept() {
    let t0 = Instant::now();
    let mut attempt = Attempt::new(1, AttemptSettings::default(), t0);
    attempt.on_provisional(t0 + ms(200));
    attempt.handle_timeout(t0 + ms(25_000));
    assert_eq!(drain(&mut attempt), vec![Action::CancelRinging]);
    attempt.on_answered(t0 + ms(25_040));
    assert_eq!(attempt.phase(), &Phase::Analysing);
    attempt.on_verdict(
        Verdict::Human {
            greeting_ended: t0 + ms(26_000),
        },
        t0 + ms(26_000),
    );
    assert_eq!(drain(&mut attempt), vec![Action::RequestAgent]);
    // Neither a 487 nor an answer: given up for good after the wait.
    let mut silent = Attempt::new(2, AttemptSettings::default(), t0);
    silent.on_provisional(t0 + ms(200));
    silent.handle_timeout(t0 + ms(25_000));
    drain(&mut silent);
    let until = t0 + ms(25_000) + Attempt::CANCEL_WAIT;
    assert_eq!(silent.poll_timeout(), Some(until));
    silent.handle_timeout(until);
    let actions = drain(&mut silent);
    assert_eq!(actions[0], Action::Hangup, "a late answer is hung up");
    assert_eq!(
        finished(&actions).map(|o| (o.result, o.sip_code)),
        Some((AttemptResult::NoAnswer, Some(487)))
    );
}

#[test]
fn sit_on_early_media_cancels_without_waiting_for_the_carrier() {
    let t0 = Instant::now();
    let mut attempt = Attempt::new(1, AttemptSettings::default(), t0);
    attempt.on_provisional(t0 + ms(200));
    attempt.on_verdict(Verdict::Sit { permanent: true }, t0 + ms(1400));
    let actions = drain(&mut attempt);
    assert_eq!(actions[0], Action::Cancel);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::Sit { permanent: true })
    );
    // Ringback on early media changes nothing.
    let mut attempt = Attempt::new(2, AttemptSettings::default(), t0);
    attempt.on_provisional(t0);
    attempt.on_verdict(Verdict::Machine, t0 + ms(100));
    assert!(drain(&mut attempt).is_empty());
}

#[test]
fn unsure_goes_to_an_agent_by_default_or_hangs_up() {
    let t0 = Instant::now();
    let mut attempt = answered(AttemptSettings::default(), t0);
    attempt.handle_timeout(t0 + ms(10_000));
    assert_eq!(drain(&mut attempt), vec![Action::RequestAgent]);
    assert!(attempt.waiting_live_since().is_some());

    let settings = AttemptSettings {
        unsure_to_agent: false,
        ..AttemptSettings::default()
    };
    let mut attempt = answered(settings, t0);
    attempt.on_verdict(Verdict::Silence, t0 + ms(8000));
    let actions = drain(&mut attempt);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::DeadAir)
    );
}

#[test]
fn carrier_failures_map_to_results() {
    let t0 = Instant::now();
    for (failure, code, result) in [
        (Failure::Busy, 486, AttemptResult::Busy),
        (Failure::InvalidNumber, 404, AttemptResult::InvalidNumber),
        (Failure::Congestion, 503, AttemptResult::Congestion),
        // The callee's refusal, then the trunk's: they are stored apart
        // (the trunk's does not spend the record's attempt).
        (Failure::Rejected, 603, AttemptResult::Rejected),
        // Unwanted (RFC 8197) and blocked by call analytics (RFC 8688):
        // about this call, not the trunk.
        (Failure::Rejected, 607, AttemptResult::Rejected),
        (Failure::Rejected, 608, AttemptResult::Rejected),
        (Failure::Rejected, 403, AttemptResult::TrunkRefused),
        (Failure::Rejected, 407, AttemptResult::TrunkRefused),
        (Failure::NetworkFailure, 488, AttemptResult::TrunkRefused),
        (Failure::NetworkFailure, 500, AttemptResult::NetworkFailure),
    ] {
        let mut attempt = Attempt::new(1, AttemptSettings::default(), t0);
        attempt.on_failed(failure, Some(code), None, t0 + ms(800));
        let outcome = finished(&drain(&mut attempt)).expect("finished");
        assert_eq!(outcome.result, result);
        assert_eq!(outcome.sip_code, Some(code));
    }
}

#[test]
fn a_busy_callees_retry_after_is_kept_a_trunks_is_not() {
    let t0 = Instant::now();
    let wait = Some(Duration::from_secs(600));
    for (failure, code, kept) in [
        (Failure::Busy, 486, wait),
        (Failure::NoAnswer, 480, wait),
        // The trunk's pause: trunk health holds every call for it.
        (Failure::Congestion, 503, None),
    ] {
        let mut attempt = Attempt::new(1, AttemptSettings::default(), t0);
        attempt.on_failed(failure, Some(code), wait, t0 + ms(800));
        let outcome = finished(&drain(&mut attempt)).expect("finished");
        assert_eq!(outcome.callee_retry_after, kept, "{code}");
    }
}

#[derive(Debug, Clone)]
enum Input {
    Provisional,
    Answered,
    Failed,
    Verdict(u8),
    AgentAssigned,
    ZipDone,
    PromptDone,
    RemoteHangup,
    AgentHangup,
    MediaTimeout,
    Tick,
}

fn input() -> impl Strategy<Value = (Input, u64)> {
    let kind = prop_oneof![
        Just(Input::Provisional),
        Just(Input::Answered),
        Just(Input::Failed),
        (0u8..10).prop_map(Input::Verdict),
        Just(Input::AgentAssigned),
        Just(Input::ZipDone),
        Just(Input::PromptDone),
        Just(Input::RemoteHangup),
        Just(Input::AgentHangup),
        Just(Input::MediaTimeout),
        Just(Input::Tick),
    ];
    (kind, 0u64..4000)
}

fn verdict(code: u8, now: Instant, back: u64) -> Verdict {
    match code {
        0 => Verdict::Human {
            greeting_ended: now.checked_sub(ms(back % 3000)).unwrap_or(now),
        },
        1 => Verdict::Machine,
        2 => Verdict::Beep,
        3 => Verdict::Fax,
        4 => Verdict::Sit { permanent: false },
        5 => Verdict::Busy,
        6 => Verdict::Reorder,
        7 => Verdict::Silence,
        8 => Verdict::Unknown,
        _ => Verdict::Sit { permanent: true },
    }
}

proptest! {
    /// Whatever the layers report, in whatever order: exactly one outcome,
    /// nothing after it, and "abandoned" only for a live person whose window
    /// really ran out with no agent bridged.
    #[test]
    fn every_attempt_ends_once_and_abandons_only_by_the_clock(
        inputs in proptest::collection::vec(input(), 1..40),
        machine_action in 0u8..3,
    ) {
        let t0 = Instant::now();
        let settings = AttemptSettings {
            machine_action: match machine_action {
                0 => MachineAction::Hangup,
                1 => MachineAction::LeaveMessage,
                _ => MachineAction::ConnectAgent,
            },
            ..AttemptSettings::default()
        };
        let mut attempt = Attempt::new(7, settings, t0);
        let mut now = t0;
        let mut finishes = 0;
        let mut bridged = false;
        let mut live_deadline: Option<Instant> = None;
        for (input, step) in inputs {
            now += ms(step);
            // As the real driver does: every timer due by `now` fires first,
            // at its own deadline.
            for _ in 0..8 {
                match attempt.poll_timeout() {
                    Some(deadline) if deadline <= now => attempt.handle_timeout(deadline),
                    _ => break,
                }
            }
            match input {
                Input::Provisional => attempt.on_provisional(now),
                Input::Answered => attempt.on_answered(now),
                Input::Failed => attempt.on_failed(Failure::Busy, Some(486), None, now),
                Input::Verdict(code) => attempt.on_verdict(verdict(code, now, step), now),
                Input::AgentAssigned => { attempt.on_agent_assigned("a", now); }
                Input::ZipDone => attempt.on_zip_tone_done(now),
                Input::PromptDone => attempt.on_prompt_done(now),
                Input::RemoteHangup => attempt.on_remote_hangup(now),
                Input::AgentHangup => attempt.on_agent_hangup(now),
                Input::MediaTimeout => attempt.on_media_timeout(now),
                Input::Tick => {
                    if let Some(deadline) = attempt.poll_timeout() {
                        now = now.max(deadline);
                        attempt.handle_timeout(deadline);
                    }
                }
            }
            if let Phase::AwaitingAgent { deadline, live: true } = attempt.phase() {
                live_deadline = Some(*deadline);
            }
            let before_done = finishes;
            for action in drain(&mut attempt) {
                prop_assert_eq!(before_done, 0, "action after the outcome: {:?}", action);
                match action {
                    Action::Bridge { .. } => bridged = true,
                    Action::Finished(outcome) => {
                        finishes += 1;
                        if outcome.result == AttemptResult::Abandoned {
                            prop_assert!(!bridged);
                            // A verdict that arrived already past the window
                            // abandons without ever waiting.
                            if let Some(deadline) = live_deadline {
                                prop_assert!(now >= deadline);
                            }
                        }
                        // A live person is never bridged after the window.
                        if let Some(g2a) = outcome.greeting_to_agent {
                            prop_assert!(g2a <= ABANDON_WINDOW, "{:?}", g2a);
                        }
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(finishes > 0, attempt.is_done());
        }
        prop_assert!(finishes <= 1);
    }
}

#[test]
fn connect_first_sends_every_answer_to_an_agent_and_classifies_in_the_background() {
    let t0 = Instant::now();
    let settings = AttemptSettings {
        connect_first: true,
        ..AttemptSettings::default()
    };
    let mut attempt = Attempt::new(1, settings.clone(), t0);
    attempt.on_answered(t0 + ms(3000));
    assert_eq!(drain(&mut attempt), vec![Action::RequestAgent]);
    // The 2-second clock runs from the answer.
    assert_eq!(attempt.poll_timeout(), Some(t0 + ms(5000)));
    assert!(attempt.on_agent_assigned("1001", t0 + ms(3001)));
    attempt.on_zip_tone_done(t0 + ms(3002));
    drain(&mut attempt);
    // A machine verdict is the agent's business: the call stays up.
    attempt.on_verdict(Verdict::Machine, t0 + ms(5500));
    assert!(drain(&mut attempt).is_empty());
    attempt.on_remote_hangup(t0 + ms(40_000));
    let outcome = finished(&drain(&mut attempt)).unwrap();
    assert_eq!(outcome.result, AttemptResult::Connected);
    assert_eq!(outcome.verdict_after_answer, Some(ms(2500)));

    // A fax found while waiting for an agent ends the call.
    let mut fax = Attempt::new(2, settings, t0);
    fax.on_answered(t0 + ms(1000));
    drain(&mut fax);
    fax.on_verdict(Verdict::Fax, t0 + ms(1600));
    let actions = drain(&mut fax);
    assert_eq!(actions[0], Action::WithdrawAgentRequest);
    assert_eq!(actions[1], Action::Hangup);
    assert_eq!(finished(&actions).unwrap().result, AttemptResult::Fax);
}

#[test]
fn an_agent_lost_before_the_splice_sends_the_customer_back_to_the_queue() {
    let t0 = Instant::now();
    let mut attempt = answered(AttemptSettings::default(), t0);
    attempt.on_verdict(
        Verdict::Human {
            greeting_ended: t0 + ms(5600),
        },
        t0 + ms(5900),
    );
    drain(&mut attempt);
    assert!(attempt.on_agent_assigned("1001", t0 + ms(5901)));
    drain(&mut attempt);
    // The agent's phone drops before the splice: the same window goes on.
    attempt.on_agent_lost(t0 + ms(6000));
    assert_eq!(drain(&mut attempt), vec![Action::RequestAgent]);
    assert_eq!(attempt.poll_timeout(), Some(t0 + ms(7600)));
    // Nobody else comes: abandoned at the original deadline.
    attempt.handle_timeout(t0 + ms(7600));
    let actions = drain(&mut attempt);
    assert!(
        actions.contains(&Action::Play(Prompt::Abandon)),
        "{actions:?}"
    );
}

#[test]
fn a_human_verdict_corrected_to_machine_before_an_agent_takes_it_is_a_machine() {
    let t0 = Instant::now();
    let mut attempt = answered(AttemptSettings::default(), t0);
    attempt.on_verdict(
        Verdict::Human {
            greeting_ended: t0 + ms(5600),
        },
        t0 + ms(5900),
    );
    assert_eq!(drain(&mut attempt), vec![Action::RequestAgent]);
    // The beep came: the "answer" was a voicemail greeting.
    attempt.on_verdict(Verdict::Beep, t0 + ms(6300));
    let actions = drain(&mut attempt);
    assert_eq!(actions[0], Action::WithdrawAgentRequest);
    assert_eq!(
        finished(&actions).map(|o| o.result),
        Some(AttemptResult::Machine),
        "{actions:?}"
    );
}
