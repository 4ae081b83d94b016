//! Transfers to an outside number (`outside_transfer.rs`), on a virtual
//! clock: the number is dialed with the customer on hold, the customer is
//! spliced into its line when it answers and the agent wraps up while the
//! call goes on; the record waits for both the call's end and the
//! disposition. A number that fails, or does not answer, leaves the
//! customer with the agent, on hold.

use std::time::Instant;

use super::attempt::{AttemptResult, OUTSIDE_RING_WAIT, TRANSFER_WAIT, outside_party};
use super::dialer::{Command, CommandError, Dialer, Event};
use super::io::{CallId, ConnectFailure, Effect, Input};
use super::transfer_tests::{
    customer_with_an_agent_in, customer_with_an_agent_on, effects, events, ms, records, state,
    transfer_steps,
};

const CONFIG: &str = r#"
[[campaign]]
name = "demo"
mode = "progressive"
ring_timeout_s = 20
[[campaign.outside_transfer]]
name = "Billing"
number = "+15557770001"
[[campaign.outside_transfer]]
name = "Partner"
number = "+442071234567"
[[agent]]
id = "ann"
name = "Ann"
campaigns = ["demo"]
simulated = { wrap_up_s = 600, disposition = "SALE" }
[[agent]]
id = "bob"
name = "Bob"
campaigns = ["demo"]
simulated = { wrap_up_s = 600, disposition = "SALE" }
"#;

const BILLING: &str = "+15557770001";

fn outside(agent: &str, destination: &str) -> Command {
    Command::TransferOutside {
        agent: agent.into(),
        destination: destination.into(),
    }
}

fn disposition(agent: &str, code: &str) -> Command {
    Command::Disposition {
        agent: agent.into(),
        code: code.into(),
        notes: "passed to billing".into(),
        callback: None,
        do_not_call: false,
        guide: Vec::new(),
    }
}

fn hold(agent: &str, on: bool) -> Command {
    Command::Hold {
        agent: agent.into(),
        on,
    }
}

/// The agent on the call transfers it to Billing at 10 s: the number is
/// dialed, the customer held.
fn transfer_to_billing(t0: Instant) -> (Dialer, CallId, String) {
    let (mut dialer, call, agent, _) = customer_with_an_agent_in(CONFIG, t0);
    let view = dialer.agent_view(&agent, t0 + ms(9_000)).unwrap();
    assert_eq!(view.outside_transfers, vec!["Billing", "Partner"]);
    dialer
        .handle_command(outside(&agent, "Billing"), t0 + ms(10_000))
        .unwrap();
    let started = effects(&mut dialer);
    assert!(
        started.contains(&Effect::DialOutside {
            call,
            number: BILLING.into(),
            line: 1,
        }),
        "{started:?}"
    );
    assert!(
        started.contains(&Effect::Hold {
            call,
            agent: agent.clone(),
            on: true,
        }),
        "the customer waits on hold while the number rings: {started:?}"
    );
    let happened = events(&mut dialer);
    assert_eq!(
        transfer_steps(&happened),
        vec![(agent.as_str(), BILLING, "started")]
    );
    (dialer, call, agent)
}

/// The shell reports that `call`'s outside `line` ended (`why`) at `at`.
fn outside_line_ends(dialer: &mut Dialer, call: CallId, line: u32, why: &str, at: Instant) {
    let why = why.to_string();
    dialer.handle_input(Input::OutsideEnded { call, line, why }, at);
}

/// The effects now end outside line 1 and splice the customer back into
/// `agent`'s leg (its leg had left the agent's).
fn line_1_hung_up_and_the_customer_spliced_back(dialer: &mut Dialer, call: CallId, agent: &str) {
    let after = effects(dialer);
    assert!(
        after.contains(&Effect::HangUpOutside { call, line: 1 }),
        "{after:?}"
    );
    let back = Effect::Connect {
        call,
        agent: agent.to_string(),
    };
    assert!(after.contains(&back), "spliced back: {after:?}");
}

/// `agent`'s phone call goes down (its hang-up, a lost connection) at `at`.
fn the_agents_phone_goes(dialer: &mut Dialer, agent: &str, at: Instant) {
    let agent = agent.to_string();
    dialer.handle_input(Input::AgentLeg { agent, up: false }, at);
}

/// The outside number answers at 15 s and the customer is spliced into
/// its line at 15.2 s.
fn billing_answers(dialer: &mut Dialer, call: CallId, t0: Instant) {
    dialer.handle_input(Input::OutsideAnswered { call, line: 1 }, t0 + ms(15_000));
    let party = outside_party(BILLING);
    assert!(
        effects(dialer).contains(&Effect::Connect {
            call,
            agent: party.clone(),
        }),
        "the customer is put through once the number answers"
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: party.clone(),
        },
        t0 + ms(15_200),
    );
    let spliced = effects(dialer);
    assert!(
        !spliced.iter().any(|e| matches!(
            e,
            Effect::Hold { agent, .. } | Effect::PauseRecording { agent, .. } if *agent == party
        )),
        "no agent's control reaches the outside line: {spliced:?}"
    );
}

#[test]
fn the_customer_goes_to_the_outside_number_and_the_agent_wraps_up_while_they_talk() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    let view = dialer.agent_view(&agent, t0 + ms(11_000)).unwrap();
    assert_eq!(view.transferring_outside_to.as_deref(), Some(BILLING));
    assert!(view.outside_transfers.is_empty());
    // The agent keeps the call while the number rings; it cannot hang up
    // or take the customer off hold meanwhile.
    assert_eq!(state(&dialer, &agent, t0 + ms(11_000)), "on_call");
    assert!(matches!(
        dialer.handle_command(hold(&agent, false), t0 + ms(11_000)),
        Err(CommandError::Unavailable(_))
    ));
    assert!(matches!(
        dialer.handle_command(
            Command::AgentHangup {
                agent: agent.clone()
            },
            t0 + ms(11_000)
        ),
        Err(CommandError::Unavailable(_))
    ));
    billing_answers(&mut dialer, call, t0);
    let happened = events(&mut dialer);
    assert_eq!(
        transfer_steps(&happened),
        vec![(agent.as_str(), BILLING, "done")]
    );
    assert!(
        happened.iter().any(|e| matches!(
            e,
            Event::Hold { agent: a, on: false, .. } if *a == agent
        )),
        "the hold was of the agent's bridge: {happened:?}"
    );
    assert_eq!(state(&dialer, &agent, t0 + ms(15_200)), "wrap_up");
    // The call goes on: two trunk lines, and no record yet.
    assert_eq!(dialer.trunk_demand().in_use, 2);
    let view = dialer.agent_view(&agent, t0 + ms(16_000)).unwrap();
    assert_eq!(
        view.call.as_ref().map(|pop| pop.call),
        Some(call),
        "the wrap-up shows the call's contact"
    );
    dialer
        .handle_command(disposition(&agent, "SALE"), t0 + ms(20_000))
        .unwrap();
    assert!(records(&effects(&mut dialer)).is_empty());
    assert_eq!(state(&dialer, &agent, t0 + ms(20_000)), "ready");
    // The customer hangs up after talking with billing: the outside line
    // is hung up and the call written, with the agent's disposition.
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(95_000));
    let ended = effects(&mut dialer);
    assert!(
        ended.contains(&Effect::HangUpOutside { call, line: 1 }),
        "{ended:?}"
    );
    assert!(ended.contains(&Effect::CallOver { call }), "{ended:?}");
    let written = records(&ended);
    assert_eq!(written.len(), 1, "{ended:?}");
    let record = &written[0];
    assert_eq!(record.outcome.result, AttemptResult::Connected);
    assert_eq!(record.outcome.agent.as_deref(), Some(agent.as_str()));
    assert_eq!(record.outcome.transferred_to.as_deref(), Some(BILLING));
    assert_eq!(record.disposition.as_deref(), Some("SALE"));
    assert_eq!(record.notes.as_deref(), Some("passed to billing"));
    // Answered at 3 s, ended at 95 s: the talk time is the whole call's;
    // the hold (10 s → 15.2 s) is counted, not the time after.
    assert_eq!(record.talk_ms, Some(92_000));
    assert_eq!(record.hold_ms, Some(5_200));
    assert_eq!(dialer.trunk_demand().in_use, 0);
}

#[test]
fn a_call_that_ends_before_the_disposition_is_written_with_it() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    billing_answers(&mut dialer, call, t0);
    effects(&mut dialer);
    // Billing hangs up first: the customer is hung up too.
    outside_line_ends(
        &mut dialer,
        call,
        1,
        "the outside number hung up",
        t0 + ms(40_000),
    );
    let ended = effects(&mut dialer);
    assert!(ended.contains(&Effect::HangUp { call }), "{ended:?}");
    assert!(ended.contains(&Effect::CallOver { call }), "{ended:?}");
    assert!(records(&ended).is_empty(), "the agent is still wrapping up");
    assert_eq!(state(&dialer, &agent, t0 + ms(40_000)), "wrap_up");
    dialer
        .handle_command(disposition(&agent, "SALE"), t0 + ms(45_000))
        .unwrap();
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].disposition.as_deref(), Some("SALE"));
    assert_eq!(written[0].outcome.transferred_to.as_deref(), Some(BILLING));
}

#[test]
fn a_wrap_up_that_ends_by_itself_before_the_call_keeps_its_code_for_the_record() {
    let t0 = Instant::now();
    let config = CONFIG.replace("wrap_up_s = 600", "wrap_up_s = 5");
    let (mut dialer, call, agent, _) = customer_with_an_agent_in(&config, t0);
    dialer
        .handle_command(outside(&agent, "Billing"), t0 + ms(10_000))
        .unwrap();
    billing_answers(&mut dialer, call, t0);
    effects(&mut dialer);
    // The simulated agent's wrap-up ends by itself, with its code.
    dialer.handle_timeout(t0 + ms(21_000));
    assert_eq!(state(&dialer, &agent, t0 + ms(21_000)), "ready");
    assert!(records(&effects(&mut dialer)).is_empty());
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(60_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1);
    assert_eq!(
        written[0].disposition.as_deref(),
        Some("SALE"),
        "the simulated agent's code is kept for the call"
    );
}

#[test]
fn a_busy_number_leaves_the_customer_with_the_agent_on_hold() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    outside_line_ends(
        &mut dialer,
        call,
        1,
        "the outside number is busy (486)",
        t0 + ms(12_000),
    );
    let after = effects(&mut dialer);
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, Effect::Connect { .. } | Effect::HangUp { .. })),
        "the customer never left the agent's leg: {after:?}"
    );
    let happened = events(&mut dialer);
    assert_eq!(
        transfer_steps(&happened),
        vec![(agent.as_str(), BILLING, "failed")]
    );
    let reason = happened.iter().find_map(|e| match e {
        Event::Transfer { reason, .. } => reason.clone(),
        _ => None,
    });
    assert_eq!(
        reason.as_deref(),
        Some("the outside number is busy (486); the customer is back with you, on hold")
    );
    assert_eq!(state(&dialer, &agent, t0 + ms(12_000)), "on_call");
    assert_eq!(dialer.trunk_demand().in_use, 1);
    // The agent takes the customer off hold and may try again.
    dialer
        .handle_command(hold(&agent, false), t0 + ms(13_000))
        .unwrap();
    dialer
        .handle_command(outside(&agent, "Partner"), t0 + ms(14_000))
        .unwrap();
    assert!(effects(&mut dialer).contains(&Effect::DialOutside {
        call,
        number: "+442071234567".into(),
        line: 2,
    }));
}

#[test]
fn a_number_that_does_not_answer_in_time_is_cancelled() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    let deadline = t0 + ms(10_000) + OUTSIDE_RING_WAIT;
    dialer.handle_timeout(deadline - ms(1));
    assert!(!effects(&mut dialer).contains(&Effect::HangUpOutside { call, line: 1 }));
    dialer.handle_timeout(deadline);
    assert!(effects(&mut dialer).contains(&Effect::HangUpOutside { call, line: 1 }));
    let happened = events(&mut dialer);
    assert_eq!(
        transfer_steps(&happened),
        vec![(agent.as_str(), BILLING, "failed")]
    );
    assert_eq!(state(&dialer, &agent, deadline), "on_call");
    // Answered just as it was given up: nobody is put through; it is hung up.
    dialer.handle_input(Input::OutsideAnswered { call, line: 1 }, deadline + ms(100));
    let late = effects(&mut dialer);
    assert_eq!(late, vec![Effect::HangUpOutside { call, line: 1 }]);
}

#[test]
fn an_outside_line_whose_media_fails_gives_the_customer_back_on_hold() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    dialer.handle_input(Input::OutsideAnswered { call, line: 1 }, t0 + ms(15_000));
    effects(&mut dialer);
    dialer.handle_input(
        Input::ConnectFailed {
            call,
            agent: outside_party(BILLING),
            cause: ConnectFailure::AgentPhoneGone,
        },
        t0 + ms(15_100),
    );
    line_1_hung_up_and_the_customer_spliced_back(&mut dialer, call, &agent);
    events(&mut dialer);
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: agent.clone(),
        },
        t0 + ms(15_300),
    );
    assert!(
        effects(&mut dialer).contains(&Effect::Hold {
            call,
            agent: agent.clone(),
            on: true,
        }),
        "back on hold in the fresh bridge"
    );
    assert_eq!(state(&dialer, &agent, t0 + ms(15_300)), "on_call");
    dialer
        .handle_command(hold(&agent, false), t0 + ms(16_000))
        .unwrap();
}

#[test]
fn a_customer_who_hangs_up_while_the_number_rings_ends_the_outside_line() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(12_000));
    let ended = effects(&mut dialer);
    assert!(
        ended.contains(&Effect::HangUpOutside { call, line: 1 }),
        "{ended:?}"
    );
    // The call was the agent's: its wrap-up, as for any call.
    assert_eq!(state(&dialer, &agent, t0 + ms(12_000)), "wrap_up");
    dialer
        .handle_command(disposition(&agent, "SALE"), t0 + ms(14_000))
        .unwrap();
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].outcome.transferred_to, None);
    // Its late answer finds no call: hung up.
    dialer.handle_input(Input::OutsideAnswered { call, line: 1 }, t0 + ms(14_500));
    assert_eq!(
        effects(&mut dialer),
        vec![Effect::HangUpOutside { call, line: 1 }]
    );
}

#[test]
fn outside_transfers_the_dialer_cannot_make_are_refused_with_a_reason() {
    let t0 = Instant::now();
    let (mut dialer, _call, agent, other) = customer_with_an_agent_in(CONFIG, t0);
    let refusal =
        |dialer: &mut Dialer, command| match dialer.handle_command(command, t0 + ms(9_000)) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("accepted"),
        };
    let unknown = refusal(&mut dialer, outside(&agent, "Accounts"));
    assert!(
        unknown.contains("no outside number `Accounts`; use one of Billing, Partner"),
        "{unknown}"
    );
    let idle = refusal(&mut dialer, outside(&other, "Billing"));
    assert!(idle.contains("on_call"), "{idle}");
    // A campaign without outside numbers.
    let (mut plain_dialer, _, plain_agent, _) =
        customer_with_an_agent_in(super::transfer_tests::CONFIG, t0);
    assert!(
        plain_dialer
            .agent_view(&plain_agent, t0 + ms(9_000))
            .unwrap()
            .outside_transfers
            .is_empty()
    );
    let none = refusal(&mut plain_dialer, outside(&plain_agent, "Billing"));
    assert!(
        none.contains("campaign `demo` has no outside numbers"),
        "{none}"
    );
    // A trunk of one line, held by the customer's call.
    let (mut full, call, full_agent, _) = customer_with_an_agent_on(1, CONFIG, t0);
    let busy = refusal(&mut full, outside(&full_agent, "Billing"));
    assert!(busy.contains("all 1 trunk lines are in use"), "{busy}");
    assert!(
        !effects(&mut full)
            .iter()
            .any(|e| matches!(e, Effect::DialOutside { call: c, .. } if *c == call))
    );
    assert_eq!(state(&full, &full_agent, t0 + ms(9_000)), "on_call");
}

#[test]
fn an_agent_whose_phone_goes_while_the_number_rings_wraps_the_call_up() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    the_agents_phone_goes(&mut dialer, &agent, t0 + ms(11_000));
    // Nobody else will: the agent wraps the call up, which goes on.
    assert_eq!(state(&dialer, &agent, t0 + ms(11_000)), "wrap_up");
    assert!(!effects(&mut dialer).contains(&Effect::HangUp { call }));
    billing_answers(&mut dialer, call, t0);
    assert_eq!(
        transfer_steps(&events(&mut dialer)),
        vec![(agent.as_str(), BILLING, "done")]
    );
    dialer
        .handle_command(disposition(&agent, "SALE"), t0 + ms(20_000))
        .unwrap();
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(60_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].disposition.as_deref(), Some("SALE"));
    assert_eq!(written[0].outcome.transferred_to.as_deref(), Some(BILLING));
}

#[test]
fn a_failed_outside_transfer_of_an_agent_whose_phone_went_ends_the_call_into_its_wrap_up() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    the_agents_phone_goes(&mut dialer, &agent, t0 + ms(11_000));
    effects(&mut dialer);
    outside_line_ends(
        &mut dialer,
        call,
        1,
        "the outside number is busy (486)",
        t0 + ms(12_000),
    );
    let ended = effects(&mut dialer);
    assert!(ended.contains(&Effect::HangUp { call }), "{ended:?}");
    assert!(
        !ended.iter().any(|e| matches!(e, Effect::Connect { .. })),
        "nobody to splice the customer back to: {ended:?}"
    );
    assert!(records(&ended).is_empty(), "the record waits for the code");
    assert_eq!(state(&dialer, &agent, t0 + ms(12_000)), "wrap_up");
    dialer
        .handle_command(disposition(&agent, "SALE"), t0 + ms(14_000))
        .unwrap();
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].disposition.as_deref(), Some("SALE"));
    assert_eq!(written[0].outcome.transferred_to, None);
}

#[test]
fn reports_of_an_earlier_outside_line_change_nothing() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    // Line 1 is busy; the agent tries Partner on line 2 at once.
    outside_line_ends(
        &mut dialer,
        call,
        1,
        "the outside number is busy (486)",
        t0 + ms(12_000),
    );
    dialer
        .handle_command(hold(&agent, false), t0 + ms(12_100))
        .unwrap();
    dialer
        .handle_command(outside(&agent, "Partner"), t0 + ms(12_200))
        .unwrap();
    effects(&mut dialer);
    events(&mut dialer);
    // Line 1's reports, late: an answer is hung up (line 1 only), a
    // failure ignored; line 2 still rings for the agent.
    dialer.handle_input(Input::OutsideAnswered { call, line: 1 }, t0 + ms(12_300));
    assert_eq!(
        effects(&mut dialer),
        vec![Effect::HangUpOutside { call, line: 1 }]
    );
    outside_line_ends(
        &mut dialer,
        call,
        1,
        "the outside number hung up",
        t0 + ms(12_400),
    );
    assert!(effects(&mut dialer).is_empty());
    assert!(transfer_steps(&events(&mut dialer)).is_empty());
    let view = dialer.agent_view(&agent, t0 + ms(12_500)).unwrap();
    assert_eq!(
        view.transferring_outside_to.as_deref(),
        Some("+442071234567")
    );
    // Line 2 answers; a second report of it changes nothing.
    dialer.handle_input(Input::OutsideAnswered { call, line: 2 }, t0 + ms(13_000));
    assert_eq!(
        effects(&mut dialer),
        vec![Effect::Connect {
            call,
            agent: outside_party("+442071234567"),
        }]
    );
    dialer.handle_input(Input::OutsideAnswered { call, line: 2 }, t0 + ms(13_100));
    assert!(effects(&mut dialer).is_empty());
}

#[test]
fn a_number_answering_just_before_the_ring_limit_still_gets_its_splice_time() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    let answered = t0 + ms(10_000) + OUTSIDE_RING_WAIT - ms(100);
    dialer.handle_input(Input::OutsideAnswered { call, line: 1 }, answered);
    effects(&mut dialer);
    dialer.handle_timeout(t0 + ms(10_000) + OUTSIDE_RING_WAIT);
    assert!(
        effects(&mut dialer).is_empty(),
        "the person who just answered is not hung up"
    );
    // The splice never reported: given up after its own wait.
    dialer.handle_timeout(answered + TRANSFER_WAIT);
    line_1_hung_up_and_the_customer_spliced_back(&mut dialer, call, &agent);
}

#[test]
fn no_outside_transfer_while_the_trunk_is_held() {
    let t0 = Instant::now();
    let (mut dialer, _call, agent, _) = customer_with_an_agent_in(CONFIG, t0);
    dialer.handle_input(Input::TrunkRoute { known: false }, t0 + ms(8_000));
    let refused = dialer
        .handle_command(outside(&agent, "Billing"), t0 + ms(9_000))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("trunk address unknown"), "{refused}");
}

#[test]
fn a_line_is_kept_free_for_outside_transfers() {
    // Two lines, one held by the first call; the other agent is Ready and
    // a record waits. A campaign with outside numbers keeps that line.
    for (config, dials) in [(CONFIG, 0), (super::transfer_tests::CONFIG, 1)] {
        let t0 = Instant::now();
        let (mut dialer, _, _, _) = customer_with_an_agent_on(2, config, t0);
        dialer.handle_input(
            Input::Leased {
                campaign: "demo".into(),
                leases: vec![super::calls_tests::lease(2)],
                for_agent: None,
            },
            t0 + ms(4_000),
        );
        dialer.handle_timeout(t0 + ms(6_000));
        let dialed = effects(&mut dialer)
            .iter()
            .filter(|e| matches!(e, Effect::Dial { .. }))
            .count();
        assert_eq!(dialed, dials, "{config}");
        // Nor do a previewed record's Call or a repeat call take it.
        if dials == 0 {
            assert_eq!(
                dialer.new_call_refused(t0 + ms(6_000)).as_deref(),
                Some("the last trunk line is kept for outside transfers")
            );
        }
    }
}

#[test]
fn the_agent_cancels_the_transfer_while_the_number_rings() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    let cancel = || Command::CancelTransfer {
        agent: agent.clone(),
    };
    dialer.handle_command(cancel(), t0 + ms(12_000)).unwrap();
    assert!(effects(&mut dialer).contains(&Effect::HangUpOutside { call, line: 1 }));
    let happened = events(&mut dialer);
    assert_eq!(
        transfer_steps(&happened),
        vec![(agent.as_str(), BILLING, "cancelled")]
    );
    assert_eq!(state(&dialer, &agent, t0 + ms(12_000)), "on_call");
    assert_eq!(dialer.trunk_demand().in_use, 1);
    // Nothing left to cancel; the customer comes off hold.
    assert!(matches!(
        dialer.handle_command(cancel(), t0 + ms(12_100)),
        Err(CommandError::Unavailable(_))
    ));
    dialer
        .handle_command(hold(&agent, false), t0 + ms(12_200))
        .unwrap();
    // Once the number answered it is too late.
    dialer
        .handle_command(outside(&agent, "Billing"), t0 + ms(13_000))
        .unwrap();
    dialer.handle_input(Input::OutsideAnswered { call, line: 2 }, t0 + ms(14_000));
    let refused = dialer
        .handle_command(cancel(), t0 + ms(14_100))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("answered"), "{refused}");
}

#[test]
fn a_customer_whose_agent_phone_went_hears_the_hold_audio_on_its_own_leg() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    the_agents_phone_goes(&mut dialer, &agent, t0 + ms(11_000));
    let after = effects(&mut dialer);
    assert!(
        after.contains(&Effect::Play {
            call,
            prompt: super::attempt::Prompt::Hold,
        }),
        "{after:?}"
    );
    // Its end changes nothing; the desktop no longer shows the transfer.
    dialer.handle_input(Input::PromptDone { call }, t0 + ms(15_000));
    assert!(effects(&mut dialer).is_empty());
    let view = dialer.agent_view(&agent, t0 + ms(15_000)).unwrap();
    assert_eq!(view.transferring_outside_to, None);
    billing_answers(&mut dialer, call, t0);
    assert_eq!(
        transfer_steps(&events(&mut dialer)),
        vec![(agent.as_str(), BILLING, "done")]
    );
}

#[test]
fn an_agent_phone_gone_after_the_answer_leaves_the_splice_alone() {
    let t0 = Instant::now();
    let (mut dialer, call, agent) = transfer_to_billing(t0);
    dialer.handle_input(Input::OutsideAnswered { call, line: 1 }, t0 + ms(15_000));
    effects(&mut dialer);
    the_agents_phone_goes(&mut dialer, &agent, t0 + ms(15_050));
    let after = effects(&mut dialer);
    assert!(
        !after.iter().any(|e| matches!(e, Effect::Play { .. })),
        "no prompt to take the customer back out of the splice: {after:?}"
    );
    assert_eq!(state(&dialer, &agent, t0 + ms(15_050)), "wrap_up");
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: outside_party(BILLING),
        },
        t0 + ms(15_200),
    );
    assert_eq!(
        transfer_steps(&events(&mut dialer)),
        vec![(agent.as_str(), BILLING, "done")]
    );
}
