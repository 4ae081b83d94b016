//! The agent's voicemail drop (`mid_call.rs`, `Command::DropVoicemail`),
//! on a virtual clock: the campaign's recorded message is played into the
//! answering machine on the line while the agent moves on.

use std::time::Instant;

use super::attempt::{AttemptResult, Prompt};
use super::dialer::Command;
use super::io::{Effect, Input};
use super::transfer_tests::{
    CONFIG, customer_with_an_agent_in, effects, ms, per_call_ann_on_a_call, records, state,
};

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
fn an_agent_rung_per_call_is_hung_up_after_a_drop() {
    let t0 = Instant::now();
    let config = CONFIG.replace(
        "ring_timeout_s = 20",
        "ring_timeout_s = 20\nvoicemail_prompt = \"vm.wav\"",
    );
    let (mut dialer, call) = per_call_ann_on_a_call(&config, t0);
    effects(&mut dialer);
    dialer
        .handle_command(drop_voicemail("ann"), t0 + ms(10_000))
        .unwrap();
    let dropped = effects(&mut dialer);
    let taken_back = dropped.iter().position(|e| {
        *e == Effect::TakeBack {
            call,
            agent: "ann".into(),
        }
    });
    let hung_up = dropped.iter().position(|e| {
        *e == Effect::HangUpAgent {
            agent: "ann".into(),
        }
    });
    assert!(
        matches!((taken_back, hung_up), (Some(a), Some(b)) if a < b),
        "the customer out first, then the phone's call ended: {dropped:?}"
    );
}
