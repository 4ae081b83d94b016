//! The agent's voicemail drop (`mid_call.rs`, `Command::DropVoicemail`),
//! on a virtual clock: the campaign's recorded message is played into the
//! answering machine on the line while the agent moves on.

use std::time::Instant;

use super::attempt::{AttemptResult, Prompt, TRANSFER_WAIT};
use super::dialer::Command;
use super::io::{Effect, Input};
use super::transfer_tests::{
    CONFIG, customer_with_an_agent_in, effects, ms, per_call_ann_on_a_call, records, state,
};

/// The transfer tests' campaign with a recorded voicemail message.
fn with_message() -> String {
    CONFIG.replace(
        "ring_timeout_s = 20",
        "ring_timeout_s = 20\nvoicemail_prompt = \"vm.wav\"",
    )
}

fn drop_voicemail(agent: &str) -> Command {
    Command::DropVoicemail {
        agent: agent.into(),
    }
}

#[test]
fn a_dropped_voicemail_is_played_to_the_machine_and_the_agent_moves_on() {
    let t0 = Instant::now();
    let config = CONFIG.replace(
        "ring_timeout_s = 20",
        "ring_timeout_s = 20\nvoicemail_prompt = \"vm.wav\"",
    );
    let (mut dialer, call, agent, _) = customer_with_an_agent_in(&config, t0);
    let view = dialer.agent_view(&agent, t0 + ms(5000)).unwrap();
    assert!(view.voicemail_drop, "offered: the campaign has a message");
    // The agent hears a greeting, waits for its beep, drops the message.
    dialer
        .handle_command(drop_voicemail(&agent), t0 + ms(20_000))
        .unwrap();
    let played = effects(&mut dialer);
    let at = |wanted: &Effect| played.iter().position(|e| e == wanted);
    let taken_back = at(&Effect::TakeBack {
        call,
        agent: agent.clone(),
    });
    let play = at(&Effect::Play {
        call,
        prompt: Prompt::Voicemail,
    });
    assert!(
        taken_back.is_some() && play.is_some(),
        "out of the agent's leg, then the message: {played:?}"
    );
    assert!(
        !played.iter().any(|e| matches!(e, Effect::HangUp { .. })),
        "not before the message ends: {played:?}"
    );
    assert_eq!(
        state(&dialer, &agent, t0 + ms(20_000)),
        "ready",
        "no wrap-up"
    );
    let refused = dialer
        .handle_command(drop_voicemail(&agent), t0 + ms(20_100))
        .unwrap_err();
    assert!(refused.to_string().contains("on_call"), "{refused}");
    dialer.handle_input(Input::PromptDone { call }, t0 + ms(35_000));
    let ended = effects(&mut dialer);
    assert!(ended.contains(&Effect::HangUp { call }), "{ended:?}");
    let written = records(&ended);
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].outcome.result, AttemptResult::VoicemailLeft);
    assert_eq!(written[0].outcome.agent.as_deref(), Some(agent.as_str()));
    assert_eq!(written[0].disposition, None);
}

#[test]
fn no_voicemail_is_dropped_without_a_message_or_a_customer_on_the_line() {
    let t0 = Instant::now();
    let (mut dialer, _call, agent, other) = customer_with_an_agent_in(CONFIG, t0);
    assert!(!dialer.agent_view(&agent, t0).unwrap().voicemail_drop);
    let refused = dialer
        .handle_command(drop_voicemail(&agent), t0 + ms(5000))
        .unwrap_err();
    assert!(
        refused.to_string().contains("voicemail_prompt"),
        "{refused}"
    );
    assert_eq!(state(&dialer, &agent, t0 + ms(5000)), "on_call");
    let refused = dialer
        .handle_command(drop_voicemail(&other), t0 + ms(5000))
        .unwrap_err();
    assert!(refused.to_string().contains("on_call"), "{refused}");
}

#[test]
fn an_agent_rung_per_call_keeps_the_phone_call_after_a_drop() {
    let t0 = Instant::now();
    let (mut dialer, call) = per_call_ann_on_a_call(&with_message(), t0);
    effects(&mut dialer);
    dialer
        .handle_command(drop_voicemail("ann"), t0 + ms(10_000))
        .unwrap();
    let dropped = effects(&mut dialer);
    assert!(
        dropped.contains(&Effect::TakeBack {
            call,
            agent: "ann".into(),
        }) && !dropped.contains(&Effect::HangUpAgent {
            agent: "ann".into()
        }),
        "the customer out, the phone's call kept for the next: {dropped:?}"
    );
    assert_eq!(state(&dialer, "ann", t0 + ms(10_000)), "ready");
}

#[test]
fn a_drop_ends_the_recording_pause_and_respects_the_phones_hold() {
    let t0 = Instant::now();
    let (mut dialer, call, agent, _) = customer_with_an_agent_in(&with_message(), t0);
    dialer
        .handle_command(
            Command::PauseRecording {
                agent: agent.clone(),
                paused: true,
            },
            t0 + ms(10_000),
        )
        .unwrap();
    // The agent's phone holds the call (its own Hold button).
    dialer.handle_input(
        Input::AgentPhoneHold {
            agent: agent.clone(),
            held: true,
        },
        t0 + ms(11_000),
    );
    dialer
        .handle_command(drop_voicemail(&agent), t0 + ms(12_000))
        .unwrap();
    let view = dialer.agent_view(&agent, t0 + ms(12_000)).unwrap();
    assert_eq!(
        (view.state, view.reason.as_deref()),
        ("not_ready", Some("phone on hold")),
        "no customer into a phone that holds"
    );
    dialer.handle_input(Input::PromptDone { call }, t0 + ms(30_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(
        written[0].recording_paused_ms,
        Some(2000),
        "not the message's time"
    );
}

#[test]
fn nothing_acts_on_a_customer_while_a_splice_back_is_under_way() {
    // A transfer whose next agent's report comes after the deadline: the
    // customer is spliced back twice (at the deadline, and again after the
    // late report); until both are reported nothing acts on it.
    let t0 = Instant::now();
    let (mut dialer, call, first, second) = customer_with_an_agent_in(&with_message(), t0);
    dialer
        .handle_command(
            Command::Transfer {
                agent: first.clone(),
                to: Some(second.clone()),
            },
            t0 + ms(10_000),
        )
        .unwrap();
    let deadline = t0 + ms(10_000) + TRANSFER_WAIT;
    dialer.handle_timeout(deadline);
    let late = Input::Spliced {
        call,
        agent: second.clone(),
    };
    dialer.handle_input(late, deadline + ms(100));
    let back = Input::Spliced {
        call,
        agent: first.clone(),
    };
    dialer.handle_input(back.clone(), deadline + ms(200));
    let refused = dialer
        .handle_command(drop_voicemail(&first), deadline + ms(250))
        .unwrap_err();
    assert!(refused.to_string().contains("no customer"), "{refused}");
    dialer.handle_input(back, deadline + ms(300));
    dialer
        .handle_command(drop_voicemail(&first), deadline + ms(350))
        .unwrap();
}
