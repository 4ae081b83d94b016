//! Calls dialed with their agent reserved from the dial on: progressive
//! campaigns with `agent_reserved_at_dial` (SPEC §2's non-ASM variant: the
//! record pops first), and any such call whose agent goes away before the
//! call is theirs.

use std::time::Instant;

use super::attempt::{AttemptResult, Verdict};
use super::dialer::{Command, Dialer, Event};
use super::io::{CallId, Effect, Input};
use super::preview::PreviewAction;
use super::preview_tests::{
    dials, effects, events, lease, lease_a_repeat_call, ms, preview, records, sim_ready_after_ann,
    started,
};

const RESERVED_AT_DIAL: &str = "agent_reserved_at_dial = true";

fn state(dialer: &Dialer, agent: &str, now: Instant) -> &'static str {
    dialer.agent_view(agent, now).unwrap().state
}

/// The records popped on `agent`'s screen among `events`, with their calls.
fn pops(events: &[Event], agent: &str) -> Vec<(String, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ScreenPop { agent: a, pop } if a == agent => {
                Some((pop.record.clone(), pop.call))
            }
            _ => None,
        })
        .collect()
}

fn leased(dialer: &mut Dialer, ids: &[i64], now: Instant) -> Vec<Effect> {
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: ids.iter().map(|&id| lease(id)).collect(),
            for_agent: None,
        },
        now,
    );
    effects(dialer)
}

fn verdict(dialer: &mut Dialer, call: CallId, verdict: Verdict, now: Instant) -> Vec<Effect> {
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict,
            label: "verdict",
            at_ms: 1500,
        },
        now,
    );
    effects(dialer)
}

/// One call per Ready agent, that agent reserved from the dial: the record
/// pops first, the agent hears the rings, the ringback stops at the answer
/// while the analyser listens, and the human verdict connects the agent
/// at once — the call was theirs all along.
#[test]
fn a_progressive_call_reserved_at_dial_pops_first_and_is_its_agents_at_the_human_verdict() {
    let t0 = Instant::now();
    let mut dialer = started("progressive", RESERVED_AT_DIAL, 0, false, t0);
    events(&mut dialer);
    let first = leased(&mut dialer, &[1, 2, 3], t0);
    let calls = dials(&first);
    assert_eq!(calls.len(), 1, "one Ready agent, one call: {first:?}");
    let call = calls[0];
    assert_eq!(state(&dialer, "ann", t0), "reserved");
    assert_eq!(
        pops(&events(&mut dialer), "ann"),
        vec![("r1".to_string(), call)],
        "the record pops at the dial"
    );
    // A desktop opened now shows the customer too.
    let shown = |dialer: &Dialer| {
        dialer
            .agent_view("ann", t0)
            .unwrap()
            .call
            .map(|pop| (pop.record, pop.call))
    };
    assert_eq!(shown(&dialer), Some(("r1".to_string(), call)));
    dialer.handle_input(Input::Ringing { call }, t0 + ms(300));
    assert_eq!(
        effects(&mut dialer),
        vec![Effect::AgentRingback {
            agent: "ann".into(),
            call,
            on: true
        }]
    );
    dialer.handle_input(Input::Answered { call }, t0 + ms(8000));
    let answered = effects(&mut dialer);
    assert!(
        answered.contains(&Effect::AgentRingback {
            agent: "ann".into(),
            call,
            on: false
        }),
        "{answered:?}"
    );
    assert!(
        !answered
            .iter()
            .any(|e| matches!(e, Effect::Connect { .. } | Effect::Dial { .. })),
        "the analyser decides first; Ann stays the call's: {answered:?}"
    );
    let human = verdict(
        &mut dialer,
        call,
        Verdict::Human {
            greeting_ended: t0 + ms(9100),
        },
        t0 + ms(9500),
    );
    assert!(
        human.contains(&Effect::Connect {
            call,
            agent: "ann".into()
        }),
        "{human:?}"
    );
    assert!(dials(&human).is_empty(), "{human:?}");
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "ann".into(),
        },
        t0 + ms(9700),
    );
    assert_eq!(state(&dialer, "ann", t0), "on_call");
    assert_eq!(shown(&dialer), Some(("r1".to_string(), call)));
    let stats = dialer.campaign_stats("demo", t0 + ms(9700)).unwrap();
    assert_eq!(stats.abandoned, 0);
    // Through the wrap-up, until the disposition.
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(60_000));
    assert_eq!(state(&dialer, "ann", t0), "wrap_up");
    assert_eq!(shown(&dialer), Some(("r1".to_string(), call)));
    dialer
        .handle_command(
            Command::Disposition {
                agent: "ann".into(),
                code: "SALE".into(),
                notes: String::new(),
                callback: None,
                do_not_call: false,
                guide: Vec::new(),
            },
            t0 + ms(61_000),
        )
        .unwrap();
    assert_ne!(state(&dialer, "ann", t0), "wrap_up");
    assert_ne!(
        shown(&dialer).map(|(_, c)| c),
        Some(call),
        "the call is over for the desktop"
    );
}

/// A machine frees the reserved agent at the verdict: hung up (the
/// default `machine_action`), the agent's next call is dialed at once;
/// waiting for the beep to leave a message, the agent does not wait with
/// it. Campaigns without the option keep pooling their agents.
#[test]
fn a_machine_frees_the_agent_reserved_at_dial() {
    let t0 = Instant::now();
    let mut dialer = started("progressive", RESERVED_AT_DIAL, 0, false, t0);
    let call = dials(&leased(&mut dialer, &[1, 2], t0))[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(5000));
    effects(&mut dialer);
    events(&mut dialer);
    let machine = verdict(&mut dialer, call, Verdict::Machine, t0 + ms(8000));
    assert!(machine.contains(&Effect::HangUp { call }), "{machine:?}");
    let written = records(machine.clone());
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].outcome.result, AttemptResult::Machine);
    let next = dials(&machine);
    assert_eq!(next.len(), 1, "Ann's next call: {machine:?}");
    assert_eq!(state(&dialer, "ann", t0), "reserved");
    assert_eq!(
        pops(&events(&mut dialer), "ann"),
        vec![("r2".to_string(), next[0])]
    );

    let leave_message = format!(
        "{RESERVED_AT_DIAL}\nmachine_action = \"leave_message\"\nvoicemail_prompt = \"vm.wav\""
    );
    let mut dialer = started("progressive", &leave_message, 0, false, t0);
    let call = dials(&leased(&mut dialer, &[1, 2], t0))[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(5000));
    effects(&mut dialer);
    let machine = verdict(&mut dialer, call, Verdict::Machine, t0 + ms(8000));
    assert!(
        !machine.contains(&Effect::HangUp { call }),
        "waits for the beep: {machine:?}"
    );
    assert_eq!(
        dials(&machine).len(),
        1,
        "Ann is free at the verdict and dialed for: {machine:?}"
    );
    assert_eq!(state(&dialer, "ann", t0), "reserved");

    // Without the option the same campaign dials with nobody reserved.
    let mut dialer = started("progressive", "", 0, false, t0);
    assert_eq!(dials(&leased(&mut dialer, &[1, 2], t0)).len(), 1);
    assert_eq!(state(&dialer, "ann", t0), "ready");
}

/// The agent reserved for a call goes away before the call is theirs: the
/// reservation passes to another Ready agent, or — nobody free — the call
/// is hung up before anyone answers instead of leaving a live answer to
/// be abandoned. This holds for a previewed record's call as for the
/// progressive and repeat calls.
#[test]
fn a_call_whose_reserved_agent_goes_away_is_handed_on_or_hung_up_unanswered() {
    let t0 = Instant::now();
    // Progressive, reserved at the dial; the simulated agent is Ready too
    // but idle for less time than Ann.
    let mut dialer = started("progressive", RESERVED_AT_DIAL, 0, true, t0);
    sim_ready_after_ann(&mut dialer, t0);
    let first = leased(&mut dialer, &[1], t0 + ms(100));
    let call = dials(&first)[0];
    assert_eq!(state(&dialer, "ann", t0), "reserved");
    dialer.handle_input(Input::Ringing { call }, t0 + ms(300));
    effects(&mut dialer);
    events(&mut dialer);
    dialer.reservation_leg("ann", false, t0 + ms(2000)).unwrap();
    assert_eq!(state(&dialer, "sim", t0), "reserved", "handed on");
    let handed = effects(&mut dialer);
    assert!(!handed.contains(&Effect::HangUp { call }), "{handed:?}");
    assert_eq!(
        pops(&events(&mut dialer), "sim"),
        vec![("r1".to_string(), call)]
    );

    // Ann alone logs out while her call rings: the negotiated logout
    // waits its grace for the call, then the call is hung up unanswered.
    let mut dialer = started("progressive", RESERVED_AT_DIAL, 0, false, t0);
    let call = dials(&leased(&mut dialer, &[1], t0))[0];
    dialer.handle_input(Input::Ringing { call }, t0 + ms(300));
    effects(&mut dialer);
    dialer
        .handle_command(
            Command::AgentLogout {
                agent: "ann".into(),
            },
            t0 + ms(1000),
        )
        .unwrap();
    assert!(!effects(&mut dialer).contains(&Effect::HangUp { call }));
    let mut forced = Vec::new();
    while let Some(at) = dialer.poll_timeout().filter(|&at| at <= t0 + ms(7000)) {
        dialer.handle_timeout(at);
        forced.extend(effects(&mut dialer));
    }
    assert!(forced.contains(&Effect::HangUp { call }), "{forced:?}");
    assert_eq!(
        records(forced)
            .iter()
            .map(|r| r.outcome.result)
            .collect::<Vec<_>>(),
        vec![AttemptResult::NoAnswer]
    );
    assert_eq!(state(&dialer, "ann", t0), "logged_out");

    // A previewed record's call, Ann alone: her phone drops while it
    // rings; the call is hung up unanswered, not left to be abandoned.
    let mut dialer = started("preview", "", 2, false, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    preview(&mut dialer, "ann", PreviewAction::Call, t0 + ms(100));
    let call = dials(&effects(&mut dialer))[0];
    dialer.handle_input(Input::Ringing { call }, t0 + ms(500));
    effects(&mut dialer);
    dialer.reservation_leg("ann", false, t0 + ms(3000)).unwrap();
    let gone = effects(&mut dialer);
    assert!(gone.contains(&Effect::HangUp { call }), "{gone:?}");
    let written = records(gone);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].outcome.result, AttemptResult::NoAnswer);
    // Nothing is left to answer.
    dialer.handle_input(Input::Answered { call }, t0 + ms(4000));
    let late = records(effects(&mut dialer));
    assert!(
        late.iter()
            .all(|r| r.outcome.result != AttemptResult::Abandoned),
        "{late:?}"
    );
}

/// Webex's "standard preview" (`preview_variant = "standard"`): the agent
/// who pressed Call hears the rings, and at the answer the analyser
/// decides — a machine is hung up as the campaign says and the agent is
/// free at once; a person is connected at the human verdict. A repeat
/// call (Ofcom) is connected at the answer even so: its person must not be
/// taken for a machine a second time.
#[test]
fn a_standard_preview_lets_the_analyser_decide_but_not_on_a_repeat_call() {
    let t0 = Instant::now();
    let standard = "preview_variant = \"standard\"";
    let called = |dialer: &mut Dialer, now: Instant| -> CallId {
        preview(dialer, "ann", PreviewAction::Next, now);
        preview(dialer, "ann", PreviewAction::Call, now + ms(100));
        let call = dials(&effects(dialer))[0];
        dialer.handle_input(Input::Ringing { call }, now + ms(300));
        dialer.handle_input(Input::Answered { call }, now + ms(5000));
        call
    };
    let mut dialer = started("preview", standard, 3, false, t0);
    let call = called(&mut dialer, t0);
    let answered = effects(&mut dialer);
    assert!(
        !answered.iter().any(|e| matches!(e, Effect::Connect { .. })),
        "{answered:?}"
    );
    let machine = verdict(&mut dialer, call, Verdict::Machine, t0 + ms(7000));
    assert!(machine.contains(&Effect::HangUp { call }), "{machine:?}");
    assert_eq!(state(&dialer, "ann", t0), "ready");
    let call = called(&mut dialer, t0 + ms(8000));
    effects(&mut dialer);
    let human = verdict(
        &mut dialer,
        call,
        Verdict::Human {
            greeting_ended: t0 + ms(13_500),
        },
        t0 + ms(14_000),
    );
    assert!(
        human.contains(&Effect::Connect {
            call,
            agent: "ann".into()
        }),
        "{human:?}"
    );

    let mut dialer = started("preview", standard, 0, false, t0);
    lease_a_repeat_call(&mut dialer, t0);
    let call = called(&mut dialer, t0);
    assert!(
        effects(&mut dialer).contains(&Effect::Connect {
            call,
            agent: "ann".into()
        }),
        "a repeat call is the agent's at the answer"
    );

    // The default is direct: connected at the answer.
    let mut dialer = started("preview", "", 3, false, t0);
    let call = called(&mut dialer, t0);
    assert!(effects(&mut dialer).contains(&Effect::Connect {
        call,
        agent: "ann".into()
    }));
}
