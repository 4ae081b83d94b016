//! The dialer with its calls, driven by a virtual clock and a scripted
//! shell: leases, dials, answers, verdicts, splices and store records.

use std::path::Path;
use std::time::{Duration, Instant};

use super::attempt::{AttemptResult, Failure, Prompt, Verdict};
use super::calls::REASON_PHONE_LOST;
use super::campaign_run::RunCommand;
use super::dialer::{Command, Dialer};
use super::io::{AttemptRecord, CallId, ConnectFailure, Effect, Input};
use crate::config::Config;
use crate::store::Lease;

/// The node (`super::test_node_toml`) and this file's campaign and agents.
fn config_text() -> String {
    format!("{}{CAMPAIGN_AND_AGENTS}", super::test_node_toml(10, 100.0))
}

const CAMPAIGN_AND_AGENTS: &str = r#"
[[campaign]]
name = "demo"
mode = "progressive"
ring_timeout_s = 20
ABANDON_PROMPT
[[campaign.disposition]]
code = "CALLBACK"
label = "Call back"
effect = "retry"
[[agent]]
id = "sim"
name = "Simulated"
campaigns = ["demo"]
simulated = { wrap_up_s = 3, disposition = "SALE" }
"#;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn dialer(t0: Instant, abandon_prompt: bool) -> Dialer {
    let text = config_text().replace(
        "ABANDON_PROMPT",
        if abandon_prompt {
            "abandon_prompt = \"abandon.wav\""
        } else {
            ""
        },
    );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    Dialer::new(&config, t0)
}

/// A leased record of the "demo" campaign (also the world test's).
pub(super) fn lease(id: i64) -> Lease {
    Lease {
        record_id: id,
        campaign: 1,
        external_id: id.to_string(),
        name: String::new(),
        custom_json: "{}".into(),
        time_zones: "America/New_York".into(),
        priority: 0,
        phone: format!("+1202555{id:04}"),
        attempts: 0,
        callback: None,
        callback_agent: None,
        node: "test".into(),
        lease_until: jiff::Timestamp::UNIX_EPOCH,
        agent_required: false,
    }
}

fn effects(dialer: &mut Dialer) -> Vec<Effect> {
    std::iter::from_fn(|| dialer.poll_effect()).collect()
}

fn dials(effects: &[Effect]) -> Vec<CallId> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Dial { call, .. } => Some(*call),
            _ => None,
        })
        .collect()
}

fn records(effects: &[Effect]) -> Vec<AttemptRecord> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Record(record) => Some((**record).clone()),
            _ => None,
        })
        .collect()
}

/// Starts the "demo" campaign; returns the effects of the start.
fn start_demo(dialer: &mut Dialer, now: Instant) -> Vec<Effect> {
    dialer
        .handle_command(
            Command::Campaign {
                name: "demo".into(),
                command: RunCommand::Start,
            },
            now,
        )
        .unwrap();
    effects(dialer)
}

/// Starts the campaign and answers its first lease with `n` records.
fn started(t0: Instant, n: i64, abandon_prompt: bool) -> (Dialer, Vec<Effect>) {
    started_dialer(dialer(t0, abandon_prompt), t0, n)
}

/// Starts `dialer`'s campaign and answers its first lease with `n` records.
fn started_dialer(mut dialer: Dialer, t0: Instant, n: i64) -> (Dialer, Vec<Effect>) {
    let first = start_demo(&mut dialer, t0);
    assert!(
        first
            .iter()
            .any(|e| matches!(e, Effect::Lease { campaign, .. } if campaign == "demo")),
        "{first:?}"
    );
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: (1..=n).map(lease).collect(),
            for_agent: None,
        },
        t0,
    );
    let after = effects(&mut dialer);
    (dialer, after)
}

#[test]
fn a_human_reaches_the_agent_and_is_recorded_with_the_disposition() {
    let t0 = Instant::now();
    let (mut dialer, first) = started(t0, 3, false);
    // Progressive, one ready agent: one line.
    let calls = dials(&first);
    assert_eq!(calls.len(), 1, "{first:?}");
    let call = calls[0];
    dialer.handle_input(Input::Ringing { call }, t0 + ms(200));
    dialer.handle_input(Input::Answered { call }, t0 + ms(3000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(4200),
            },
            label: "human",
            at_ms: 1200,
        },
        t0 + ms(4200),
    );
    let connect = effects(&mut dialer);
    assert!(
        connect.contains(&Effect::Connect {
            call,
            agent: "sim".into()
        }),
        "{connect:?}"
    );
    // The attempt row learns at once that this is a live answer (abandoned
    // should the dialer die now)...
    assert!(
        connect.contains(&Effect::LiveAnswer { call }),
        "{connect:?}"
    );
    assert_eq!(
        dialer.agent_view("sim", t0).unwrap().state,
        "connecting",
        "reserved for this customer"
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "sim".into(),
        },
        t0 + ms(4201),
    );
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "on_call");
    // ... and that an agent took it.
    let spliced = effects(&mut dialer);
    assert!(
        spliced.contains(&Effect::Bridged {
            call,
            agent: "sim".into()
        }),
        "{spliced:?}"
    );
    // No second line while the only agent talks.
    assert!(dials(&effects(&mut dialer)).is_empty());
    assert!(
        dialer
            .handle_command(
                Command::AgentHangup {
                    agent: "nobody".into()
                },
                t0
            )
            .is_err()
    );
    // The agent ends the call from the desktop.
    dialer
        .handle_command(
            Command::AgentHangup {
                agent: "sim".into(),
            },
            t0 + ms(60_000),
        )
        .unwrap();
    let ended = effects(&mut dialer);
    assert!(ended.contains(&Effect::HangUp { call }), "{ended:?}");
    assert!(ended.contains(&Effect::CallOver { call }), "{ended:?}");
    assert!(records(&ended).is_empty(), "written after wrap-up");
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "wrap_up");
    // The simulated agent wraps up after 3 s with its default code.
    dialer.handle_timeout(t0 + ms(63_000));
    let after_wrap = effects(&mut dialer);
    let written = records(&after_wrap);
    assert_eq!(written.len(), 1, "{after_wrap:?}");
    let record = &written[0];
    assert_eq!(record.outcome.result, AttemptResult::Connected);
    assert_eq!(record.outcome.agent.as_deref(), Some("sim"));
    assert_eq!(record.disposition.as_deref(), Some("SALE"));
    assert_eq!(record.cpa_verdict, Some("human"));
    assert_eq!(record.lease.record_id, 1);
    assert_eq!(
        record.outcome.connect_latency,
        Some(ms(1)),
        "verdict → splice"
    );
    // Ready again: the next record is dialed.
    assert_eq!(
        dials(&after_wrap).len(),
        1,
        "{after_wrap:?} {:?}",
        dialer.campaign_stats("demo", t0 + ms(63_000))
    );
    let stats = dialer.campaign_stats("demo", t0 + ms(63_000)).unwrap();
    assert_eq!(stats.dials, 2);
    assert_eq!(stats.live_answers, 1);
    assert_eq!(stats.outcomes.get("connected"), Some(&1));
    assert!(stats.connect_latency_ms.is_some());
}

/// A progressive call answered at 3 s by a human and given to agent
/// "sim"; `before_splice` runs while the agent hears the zip tone, before
/// the shell reports the splice done at 3.8 s. The node records its calls.
fn customer_on_the_line(t0: Instant, before_splice: impl FnOnce(&mut Dialer)) -> (Dialer, CallId) {
    let text = format!(
        "{}\n[media]\nrecord_dir = \"recordings\"\n",
        config_text().replace("ABANDON_PROMPT", "")
    );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let (mut dialer, first) = started_dialer(Dialer::new(&config, t0), t0, 3);
    let call = dials(&first)[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(3000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(3600),
            },
            label: "human",
            at_ms: 600,
        },
        t0 + ms(3600),
    );
    effects(&mut dialer);
    before_splice(&mut dialer);
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "sim".into(),
        },
        t0 + ms(3800),
    );
    effects(&mut dialer);
    (dialer, call)
}

#[test]
fn the_agent_holds_and_resumes_the_customer_and_the_hold_time_is_recorded() {
    let t0 = Instant::now();
    let hold = |on| Command::Hold {
        agent: "sim".into(),
        on,
    };
    let (mut dialer, call) = customer_on_the_line(t0, |dialer| {
        // Hearing the zip tone, the customer is not through yet: no hold.
        let refused = dialer
            .handle_command(hold(true), t0 + ms(3650))
            .unwrap_err();
        assert!(refused.to_string().contains("on_call"), "{refused}");
    });
    let refused = dialer
        .handle_command(hold(false), t0 + ms(5000))
        .unwrap_err();
    assert!(refused.to_string().contains("not on hold"), "{refused}");
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(5000)).unwrap().on_hold_s,
        None
    );

    // Two holds: 10 s, then 5 s still running when the customer hangs up.
    dialer.handle_command(hold(true), t0 + ms(10_000)).unwrap();
    let held = effects(&mut dialer);
    let expected = Effect::Hold {
        call,
        agent: "sim".into(),
        on: true,
    };
    assert!(held.contains(&expected), "{held:?}");
    let refused = dialer
        .handle_command(hold(true), t0 + ms(11_000))
        .unwrap_err();
    assert!(refused.to_string().contains("on hold already"), "{refused}");
    // The customer spliced again (a fresh bridge, no hold in it): the hold
    // goes on there.
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "sim".into(),
        },
        t0 + ms(12_000),
    );
    let again = effects(&mut dialer);
    assert!(
        again.contains(&Effect::Hold {
            call,
            agent: "sim".into(),
            on: true,
        }),
        "{again:?}"
    );
    let view = dialer.agent_view("sim", t0 + ms(14_500)).unwrap();
    assert_eq!((view.state, view.on_hold_s), ("on_call", Some(4)));
    let events: Vec<_> = std::iter::from_fn(|| dialer.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| e.kind() == "hold" && e.concerns("sim")),
        "{events:?}"
    );
    dialer.handle_command(hold(false), t0 + ms(20_000)).unwrap();
    let resumed = effects(&mut dialer);
    let expected = Effect::Hold {
        call,
        agent: "sim".into(),
        on: false,
    };
    assert!(resumed.contains(&expected), "{resumed:?}");
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(21_000)).unwrap().on_hold_s,
        None
    );
    dialer.handle_command(hold(true), t0 + ms(30_000)).unwrap();
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(35_000));
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(35_000)).unwrap().on_hold_s,
        None,
        "the call is over: nobody on hold"
    );
    let refused = dialer
        .handle_command(hold(false), t0 + ms(35_500))
        .unwrap_err();
    assert!(refused.to_string().contains("on_call"), "{refused}");
    dialer.handle_timeout(t0 + ms(38_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].hold_ms, Some(15_000));
    assert_eq!(written[0].talk_ms, Some(32_000), "hold is part of the talk");
}

#[test]
fn the_phones_hold_button_holds_the_customer_on_the_line() {
    let t0 = Instant::now();
    let phone = |held| Input::AgentPhoneHold {
        agent: "sim".into(),
        held,
    };
    let (mut dialer, call) = customer_on_the_line(t0, |dialer| {
        // Still hearing the zip tone: the phone's hold is the phone's own.
        dialer.handle_input(phone(true), t0 + ms(3650));
        dialer.handle_input(phone(false), t0 + ms(3700));
        assert!(
            !effects(dialer)
                .iter()
                .any(|e| matches!(e, Effect::Hold { .. })),
            "nobody on the line to hold"
        );
    });
    dialer.handle_input(phone(true), t0 + ms(5000));
    let held = effects(&mut dialer);
    let expected = Effect::Hold {
        call,
        agent: "sim".into(),
        on: true,
    };
    assert!(held.contains(&expected), "{held:?}");
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(6000)).unwrap().on_hold_s,
        Some(1)
    );
    dialer.handle_input(phone(false), t0 + ms(9000));
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(9000)).unwrap().on_hold_s,
        None
    );
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(12_000));
    dialer.handle_timeout(t0 + ms(15_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written[0].hold_ms, Some(4000), "{written:?}");
}

#[test]
fn a_phone_on_hold_takes_no_customer_and_one_spliced_meanwhile_waits_on_hold() {
    let t0 = Instant::now();
    let phone = |held| Input::AgentPhoneHold {
        agent: "sim".into(),
        held,
    };
    let mut dialer = dialer(t0, false);
    start_demo(&mut dialer, t0);
    // Ready, the phone holds its reservation call: not ready until it
    // resumes, so no customer is dialed for a phone nobody listens on.
    dialer.handle_input(phone(true), t0 + ms(100));
    let view = dialer.agent_view("sim", t0 + ms(100)).unwrap();
    assert_eq!(
        (view.state, view.reason.as_deref(), view.phone_on_hold),
        ("not_ready", Some("phone on hold"), true)
    );
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![lease(1), lease(2)],
            for_agent: None,
        },
        t0 + ms(200),
    );
    assert!(dials(&effects(&mut dialer)).is_empty(), "nobody to take it");
    dialer.handle_input(phone(false), t0 + ms(1000));
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(1000)).unwrap().state,
        "ready"
    );
    let call = dials(&effects(&mut dialer))[0];
    // The phone holds again while the customer is being connected: the
    // customer, spliced, waits on hold.
    dialer.handle_input(Input::Answered { call }, t0 + ms(3000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(3600),
            },
            label: "human",
            at_ms: 600,
        },
        t0 + ms(3600),
    );
    effects(&mut dialer);
    dialer.handle_input(phone(true), t0 + ms(3650));
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(3650)).unwrap().state,
        "connecting"
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "sim".into(),
        },
        t0 + ms(3800),
    );
    let spliced = effects(&mut dialer);
    let held = Effect::Hold {
        call,
        agent: "sim".into(),
        on: true,
    };
    assert!(spliced.contains(&held), "{spliced:?}");
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(4800)).unwrap().on_hold_s,
        Some(1)
    );
    dialer.handle_input(phone(false), t0 + ms(5800));
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(5800)).unwrap().on_hold_s,
        None
    );
}

#[test]
fn an_agent_whose_phone_still_holds_after_the_call_is_not_made_ready() {
    let t0 = Instant::now();
    let phone = |held| Input::AgentPhoneHold {
        agent: "sim".into(),
        held,
    };
    let (mut dialer, call) = customer_on_the_line(t0, |_| {});
    dialer.handle_input(phone(true), t0 + ms(5000));
    // Resumed from the desktop, the customer would reach a phone that
    // neither sends nor listens.
    let refused = dialer
        .handle_command(
            Command::Hold {
                agent: "sim".into(),
                on: false,
            },
            t0 + ms(6000),
        )
        .unwrap_err();
    assert!(
        refused.to_string().contains("resume it on the phone"),
        "{refused}"
    );
    // The customer hangs up while held; the simulated agent's wrap-up ends
    // 3 s later: the phone still holds, so not Ready.
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(8000));
    dialer.handle_timeout(t0 + ms(11_500));
    let view = dialer.agent_view("sim", t0 + ms(11_500)).unwrap();
    assert_eq!(
        (view.state, view.reason.as_deref()),
        ("not_ready", Some("phone on hold")),
        "{view:?}"
    );
    // The held reservation call drops: an ordinary dropped call now (Ready
    // by hand once the phone is back), not a hold that never resumes.
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: false,
        },
        t0 + ms(12_000),
    );
    let view = dialer.agent_view("sim", t0 + ms(12_000)).unwrap();
    assert_eq!(
        (view.reason.as_deref(), view.phone_on_hold),
        (Some("reservation call dropped"), false),
        "{view:?}"
    );
}

#[test]
fn a_machine_given_to_an_agent_keeps_its_hold_time() {
    // `machine_action = "connect_agent"`: the agent may leave a voicemail
    // by hand, and hold meanwhile; the attempt ends as a machine, with the
    // agent's hold time all the same.
    let t0 = Instant::now();
    let text = config_text().replace("ABANDON_PROMPT", "machine_action = \"connect_agent\"");
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let mut dialer = Dialer::new(&config, t0);
    start_demo(&mut dialer, t0);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![lease(1)],
            for_agent: None,
        },
        t0,
    );
    let call = dials(&effects(&mut dialer))[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(2000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Machine,
            label: "machine",
            at_ms: 2500,
        },
        t0 + ms(4500),
    );
    let connect = effects(&mut dialer);
    assert!(
        connect.contains(&Effect::Connect {
            call,
            agent: "sim".into()
        }),
        "{connect:?}"
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "sim".into(),
        },
        t0 + ms(4700),
    );
    dialer
        .handle_command(
            Command::Hold {
                agent: "sim".into(),
                on: true,
            },
            t0 + ms(5000),
        )
        .unwrap();
    // This node records nothing (no `[media] record_dir`): no pause.
    let refused = dialer
        .handle_command(
            Command::PauseRecording {
                agent: "sim".into(),
                paused: true,
            },
            t0 + ms(5500),
        )
        .unwrap_err();
    assert!(refused.to_string().contains("not recorded"), "{refused}");
    assert!(
        !dialer
            .agent_view("sim", t0 + ms(5500))
            .unwrap()
            .call_recorded
    );
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(8000));
    dialer.handle_timeout(t0 + ms(11_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].outcome.result, AttemptResult::Machine);
    assert_eq!(written[0].hold_ms, Some(3000));
}

#[test]
fn the_agent_pauses_the_recording_and_the_paused_time_is_recorded() {
    let t0 = Instant::now();
    let pause = |paused| Command::PauseRecording {
        agent: "sim".into(),
        paused,
    };
    let (mut dialer, call) = customer_on_the_line(t0, |dialer| {
        let refused = dialer
            .handle_command(pause(true), t0 + ms(3650))
            .unwrap_err();
        assert!(refused.to_string().contains("on_call"), "{refused}");
    });
    let refused = dialer
        .handle_command(pause(false), t0 + ms(4000))
        .unwrap_err();
    assert!(refused.to_string().contains("not paused"), "{refused}");
    dialer.handle_command(pause(true), t0 + ms(10_000)).unwrap();
    let paused = effects(&mut dialer);
    let expected = Effect::PauseRecording {
        call,
        agent: "sim".into(),
        paused: true,
    };
    assert!(paused.contains(&expected), "{paused:?}");
    let view = dialer.agent_view("sim", t0 + ms(11_000)).unwrap();
    assert!(view.recording_paused && view.call_recorded, "{view:?}");
    let refused = dialer
        .handle_command(pause(true), t0 + ms(11_000))
        .unwrap_err();
    assert!(refused.to_string().contains("paused already"), "{refused}");
    let events: Vec<_> = std::iter::from_fn(|| dialer.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| e.kind() == "recording_paused" && e.concerns("sim")),
        "{events:?}"
    );
    dialer
        .handle_command(pause(false), t0 + ms(18_000))
        .unwrap();
    assert!(
        !dialer
            .agent_view("sim", t0 + ms(18_000))
            .unwrap()
            .recording_paused
    );
    // Paused again, until the agent hangs up.
    dialer.handle_command(pause(true), t0 + ms(20_000)).unwrap();
    dialer
        .handle_command(
            Command::AgentHangup {
                agent: "sim".into(),
            },
            t0 + ms(23_000),
        )
        .unwrap();
    dialer.handle_timeout(t0 + ms(26_000));
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].recording_paused_ms, Some(11_000));
    assert_eq!(written[0].hold_ms, Some(0), "never held");
}

#[test]
fn no_free_agent_within_two_seconds_of_the_greeting_is_an_abandon() {
    let t0 = Instant::now();
    let (mut dialer, first) = started(t0, 3, true);
    let a = dials(&first)[0];
    // Agent busy with A; a second live answer B cannot get an agent.
    dialer.handle_input(Input::Answered { call: a }, t0 + ms(1000));
    dialer.handle_input(
        Input::Cpa {
            call: a,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(1900),
            },
            label: "human",
            at_ms: 900,
        },
        t0 + ms(1900),
    );
    dialer.handle_input(
        Input::Spliced {
            call: a,
            agent: "sim".into(),
        },
        t0 + ms(1901),
    );
    effects(&mut dialer);
    // A second line, as a predictive pacer would dial it.
    let b = 99;
    dialer.test_dial("demo", lease(9), b, t0 + ms(2000));
    dialer.handle_input(Input::Answered { call: b }, t0 + ms(5000));
    // The verdict came 600 ms after the caller stopped: the window is
    // measured from the greeting's end, moved back by the allowance.
    dialer.handle_input(
        Input::Cpa {
            call: b,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(6000),
            },
            label: "human",
            at_ms: 1000,
        },
        t0 + ms(6000),
    );
    let waiting = effects(&mut dialer);
    assert!(
        waiting.contains(&Effect::LiveAnswer { call: b }),
        "{waiting:?}"
    );
    let deadline = t0 + ms(6000) - super::calls::END_OF_GREETING_ALLOWANCE + Duration::from_secs(2);
    dialer.handle_timeout(deadline - ms(1));
    let early = effects(&mut dialer);
    assert!(
        !early.iter().any(|e| matches!(e, Effect::Bridged { .. })),
        "{early:?}"
    );
    assert!(
        !early.iter().any(|e| matches!(e, Effect::Play { .. })),
        "{early:?}"
    );
    dialer.handle_timeout(deadline);
    let abandon = effects(&mut dialer);
    assert!(
        abandon.contains(&Effect::Play {
            call: b,
            prompt: Prompt::Abandon
        }),
        "{abandon:?}"
    );
    dialer.handle_input(Input::PromptDone { call: b }, deadline + ms(5000));
    let done = effects(&mut dialer);
    assert!(done.contains(&Effect::HangUp { call: b }), "{done:?}");
    let written = records(&done);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].outcome.result, AttemptResult::Abandoned);
    assert_eq!(written[0].disposition.as_deref(), Some("DROP"));
    let stats = dialer.campaign_stats("demo", deadline).unwrap();
    assert_eq!(stats.abandoned, 1);
    assert_eq!(stats.live_answers, 2);
}

#[test]
fn machines_busy_and_failures_are_recorded_and_free_the_line() {
    let t0 = Instant::now();
    let (mut dialer, first) = started(t0, 5, false);
    let call = dials(&first)[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(4000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Machine,
            label: "machine",
            at_ms: 2100,
        },
        t0 + ms(6100),
    );
    let out = effects(&mut dialer);
    assert!(out.contains(&Effect::HangUp { call }));
    assert_eq!(
        records(&out)[0].outcome.result,
        AttemptResult::Machine,
        "{out:?}"
    );
    assert_eq!(records(&out)[0].cpa_ms, Some(2100));
    // The agent never heard of it; the line is free, so the next dial goes.
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "ready");
    let next = dials(&out);
    assert_eq!(next.len(), 1, "{out:?}");
    dialer.handle_input(
        Input::Failed {
            call: next[0],
            failure: Failure::Busy,
            sip_code: Some(486),
            retry_after: None,
        },
        t0 + ms(7000),
    );
    let out = effects(&mut dialer);
    assert_eq!(records(&out)[0].outcome.result, AttemptResult::Busy);
    assert_eq!(records(&out)[0].outcome.sip_code, Some(486));
    // A call the shell could not place (lease lost) is not recorded.
    let third = dials(&out)[0];
    dialer.handle_input(
        Input::NotPlaced {
            call: third,
            reason: "lease lost".into(),
        },
        t0 + ms(7001),
    );
    let out = effects(&mut dialer);
    assert!(records(&out).is_empty());
    assert_eq!(dialer.calls_in_flight(), 1, "the next record is dialed");
}

#[test]
fn pausing_gives_leases_back_and_shutdown_hangs_up_every_call() {
    let t0 = Instant::now();
    let (mut dialer, first) = started(t0, 4, false);
    let call = dials(&first)[0];
    dialer.handle_input(Input::Ringing { call }, t0 + ms(100));
    dialer
        .handle_command(
            Command::Campaign {
                name: "demo".into(),
                command: RunCommand::Pause,
            },
            t0 + ms(200),
        )
        .unwrap();
    let out = effects(&mut dialer);
    let released: usize = out
        .iter()
        .map(|e| match e {
            Effect::ReleaseLeases { leases, .. } => leases.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(released, 3, "{out:?}");
    dialer.hang_up_all(t0 + ms(300));
    let out = effects(&mut dialer);
    assert!(out.contains(&Effect::HangUp { call }), "{out:?}");
    assert_eq!(records(&out)[0].outcome.result, AttemptResult::NoAnswer);
    assert_eq!(dialer.calls_in_flight(), 0);
}

#[test]
fn the_agents_disposition_and_callback_go_with_the_record() {
    let t0 = Instant::now();
    let (mut dialer, first) = started(t0, 1, false);
    let call = dials(&first)[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(1000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(1800),
            },
            label: "human",
            at_ms: 800,
        },
        t0 + ms(1800),
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "sim".into(),
        },
        t0 + ms(1801),
    );
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(30_000));
    assert!(records(&effects(&mut dialer)).is_empty());
    let at = jiff::Timestamp::from_second(2_000_000_000).unwrap();
    // A code the campaign does not have would leave the attempt unwritten
    // in the store: refused, the wrap-up goes on.
    let unknown = dialer.handle_command(
        Command::Disposition {
            agent: "sim".into(),
            code: "NOPE".into(),
            notes: String::new(),
            callback: None,
            do_not_call: false,
            guide: Vec::new(),
        },
        t0 + ms(30_200),
    );
    assert!(
        matches!(&unknown, Err(super::dialer::CommandError::Invalid(m))
            if m.contains("NOPE") && m.contains("CALLBACK") && m.contains("SALE")),
        "{unknown:?}"
    );
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(30_200)).unwrap().state,
        "wrap_up"
    );
    // A callback number that is no number: refused, the wrap-up goes on.
    let refused = dialer.handle_command(
        Command::Disposition {
            agent: "sim".into(),
            code: "CALLBACK".into(),
            notes: String::new(),
            callback: Some(super::dialer::CallbackAt {
                at,
                personal: true,
                phone: Some("555".into()),
            }),
            do_not_call: false,
            guide: Vec::new(),
        },
        t0 + ms(30_500),
    );
    assert!(
        matches!(&refused, Err(super::dialer::CommandError::Invalid(m)) if m.contains("555")),
        "{refused:?}"
    );
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(30_500)).unwrap().state,
        "wrap_up"
    );
    assert!(records(&effects(&mut dialer)).is_empty());
    dialer
        .handle_command(
            Command::Disposition {
                agent: "sim".into(),
                code: "CALLBACK".into(),
                notes: "call after lunch".into(),
                callback: Some(super::dialer::CallbackAt {
                    at,
                    personal: true,
                    phone: Some("(202) 555-0188".into()),
                }),
                do_not_call: false,
                guide: Vec::new(),
            },
            t0 + ms(31_000),
        )
        .unwrap();
    let written = records(&effects(&mut dialer));
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].disposition.as_deref(), Some("CALLBACK"));
    assert_eq!(written[0].notes.as_deref(), Some("call after lunch"));
    assert_eq!(
        written[0].callback,
        Some(super::io::Callback {
            at,
            agent: Some("sim".into()),
            phone: Some("+12025550188".into()),
        })
    );
}

#[test]
fn a_simulated_agents_dropped_phone_is_called_again_once() {
    let text = config_text().replace("ABANDON_PROMPT", "").replace(
        "simulated = {",
        "sip_uri = \"sip:sim@127.0.0.1:5090\"\nsimulated = {",
    );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let t0 = Instant::now();
    let mut dialer = Dialer::new(&config, t0);
    // Logged in at start: its phone is called.
    assert_eq!(
        effects(&mut dialer),
        vec![Effect::CallAgent {
            agent: "sim".into()
        }]
    );
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: true,
        },
        t0,
    );
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "ready");
    effects(&mut dialer);
    // The established call drops: called again.
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: false,
        },
        t0 + ms(1000),
    );
    assert_eq!(
        effects(&mut dialer),
        vec![Effect::CallAgent {
            agent: "sim".into()
        }]
    );
    // That call fails: no loop.
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: false,
        },
        t0 + ms(1100),
    );
    assert!(effects(&mut dialer).is_empty());
}

#[test]
fn a_restarted_campaign_paces_with_its_earlier_abandons() {
    let t0 = Instant::now();
    let mut dialer = dialer(t0, false);
    let first = start_demo(&mut dialer, t0);
    assert!(
        first
            .iter()
            .any(|e| matches!(e, Effect::LoadAnswerHistory { campaign } if campaign == "demo")),
        "{first:?}"
    );
    // The store's answer: two days ago 1,000 live answers and 25 abandons,
    // two hours ago 100 and 5.
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let minute = |ago, live_answers, abandoned| super::io::HistoryMinute {
        ago,
        live_answers,
        abandoned,
    };
    let at = t0 + ms(500);
    dialer.handle_input(
        Input::AnswerHistory {
            campaign: "demo".into(),
            minutes: vec![minute(hours(48), 1000, 25), minute(hours(2), 100, 5)],
            // And its calls of the last hours: one in four a person.
            calls: (0..200)
                .map(|i| crate::pacing::RestoredCall {
                    ring_s: 10.0,
                    live: i % 4 == 0,
                    talk_s: (i % 4 == 0).then_some(60.0),
                })
                .collect(),
        },
        at,
    );
    let _ = effects(&mut dialer);
    let stats = dialer.campaign_stats("demo", at).unwrap();
    // The pacer's models learned them: past the cold start at once (held
    // to one line by the UK rate over the cap, here).
    let reasoning = stats.reasoning.expect("a decision");
    assert_ne!(reasoning.limit, crate::pacing::Limit::ColdStart);
    assert!((reasoning.live_rate - 0.25).abs() < 0.01, "{reasoning:?}");
    // US: 30 days hold both; UK: 24 hours hold the later minute only.
    assert!(
        (stats.abandon_rate_us - 30.0 / 1100.0).abs() < 1e-9,
        "{stats:?}"
    );
    assert!((stats.abandon_rate_uk - 0.05).abs() < 1e-9, "{stats:?}");
    // A second start (after a pause) does not load the history again.
    for command in [RunCommand::Pause, RunCommand::Start] {
        dialer
            .handle_command(
                Command::Campaign {
                    name: "demo".into(),
                    command,
                },
                at,
            )
            .unwrap();
    }
    assert!(
        !effects(&mut dialer)
            .iter()
            .any(|e| matches!(e, Effect::LoadAnswerHistory { .. }))
    );
}

#[test]
fn a_phone_registering_after_login_is_called_then() {
    let text = config_text().replace("ABANDON_PROMPT", "").replace(
        "simulated = { wrap_up_s = 3, disposition = \"SALE\" }",
        "password = \"s3cret-pass\"",
    );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let t0 = Instant::now();
    let mut dialer = Dialer::new(&config, t0);
    assert!(effects(&mut dialer).is_empty(), "nobody logged in yet");
    let call_agent = vec![Effect::CallAgent {
        agent: "sim".into(),
    }];
    // Registered before login: nothing to call.
    dialer.handle_input(
        Input::AgentPhoneRegistered {
            agent: "sim".into(),
        },
        t0,
    );
    assert!(effects(&mut dialer).is_empty());
    // Logged in; the phone cannot be reached (the shell found no binding).
    dialer
        .handle_command(
            Command::AgentLogin {
                agent: "sim".into(),
            },
            t0 + ms(100),
        )
        .unwrap();
    assert_eq!(effects(&mut dialer), call_agent);
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: false,
        },
        t0 + ms(110),
    );
    assert!(effects(&mut dialer).is_empty());
    // The softphone registers: called now.
    dialer.handle_input(
        Input::AgentPhoneRegistered {
            agent: "sim".into(),
        },
        t0 + ms(5000),
    );
    assert_eq!(effects(&mut dialer), call_agent);
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: true,
        },
        t0 + ms(5100),
    );
    effects(&mut dialer);
    // A new address while the reservation call is up: left alone.
    dialer.handle_input(
        Input::AgentPhoneRegistered {
            agent: "sim".into(),
        },
        t0 + ms(6000),
    );
    assert!(effects(&mut dialer).is_empty());
}

#[test]
fn the_screen_pop_says_a_record_is_a_scheduled_callback() {
    let t0 = Instant::now();
    let mut dialer = dialer(t0, false);
    start_demo(&mut dialer, t0);
    let mut callback = lease(1);
    callback.callback = Some(17);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![callback],
            for_agent: None,
        },
        t0,
    );
    let call = dials(&effects(&mut dialer))[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(3000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(4000),
            },
            label: "human",
            at_ms: 1000,
        },
        t0 + ms(4000),
    );
    let pops: Vec<(bool, bool)> = std::iter::from_fn(|| dialer.poll_event())
        .filter_map(|event| match event {
            super::dialer::Event::ScreenPop { pop, .. } => {
                Some((pop.callback, pop.personal_callback))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        pops,
        vec![(true, false)],
        "a campaign callback, popped as one"
    );
}

#[test]
fn agents_see_why_calls_are_held_back_when_the_trunk_is_full() {
    let text = config_text()
        .replace("ABANDON_PROMPT", "lines_per_agent = 3.0")
        .replace("max_concurrent_calls = 10", "max_concurrent_calls = 1");
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let t0 = Instant::now();
    let mut dialer = Dialer::new(&config, t0);
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: true,
        },
        t0,
    );
    assert_eq!(dialer.campaign_views()[0].held_back, None, "not running");
    start_demo(&mut dialer, t0);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: (1..=5).map(lease).collect(),
            for_agent: None,
        },
        t0,
    );
    // Three lines wanted for the ready agent, one allowed.
    assert_eq!(dials(&effects(&mut dialer)).len(), 1);
    assert_eq!(
        dialer.campaign_views()[0].held_back,
        Some("max concurrent calls reached: waiting for a free line")
    );
}

/// The "demo" campaign (with `extra` keys) started on a trunk shared by
/// nodes, before this node's first claim; its agent Ready.
fn on_a_shared_trunk(extra: &str, t0: Instant) -> Dialer {
    let text = config_text().replace("ABANDON_PROMPT", extra).replace(
        "max_calls_per_second = 100",
        "max_calls_per_second = 100\nshared_by_nodes = true",
    );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let mut dialer = Dialer::new(&config, t0);
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: true,
        },
        t0,
    );
    start_demo(&mut dialer, t0);
    dialer
}

#[test]
fn a_trunk_shared_by_nodes_dials_only_this_nodes_part_and_reports_the_rest() {
    use crate::pacing::trunk_share::{TrunkDemand, TrunkShare};
    let t0 = Instant::now();
    let mut dialer = on_a_shared_trunk("lines_per_agent = 3.0", t0);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: (1..=5).map(lease).collect(),
            for_agent: None,
        },
        t0,
    );
    // Before its first claim the node holds no line of the shared trunk.
    assert!(dials(&effects(&mut dialer)).is_empty());
    assert_eq!(
        dialer.trunk_demand(),
        TrunkDemand {
            in_use: 0,
            wanted: 3
        }
    );
    // One line granted: one call, and the other two still wanted.
    dialer.set_trunk_share(Some(TrunkShare { lines: 1, nodes: 2 }), t0 + ms(10));
    assert_eq!(dials(&effects(&mut dialer)).len(), 1);
    assert_eq!(
        dialer.trunk_demand(),
        TrunkDemand {
            in_use: 1,
            wanted: 3
        }
    );
    assert_eq!(
        dialer.campaign_views()[0].held_back,
        Some("max concurrent calls reached: waiting for a free line")
    );
    // The other node left: the whole trunk, the two calls start at once.
    dialer.set_trunk_share(
        Some(TrunkShare {
            lines: 10,
            nodes: 1,
        }),
        t0 + ms(20),
    );
    assert_eq!(dials(&effects(&mut dialer)).len(), 2);
    assert_eq!(
        dialer.trunk_demand(),
        TrunkDemand {
            in_use: 3,
            wanted: 3
        }
    );
}

/// A campaign whose one agent's phone is rung per customer
/// (`connection = "per_call"`), logged in and Ready, the campaign started
/// with one record dialed and answered by a live person whose greeting
/// ended at t0 + 1 s.
fn per_call_answered(t0: Instant) -> (Dialer, CallId, Vec<Effect>) {
    let text = config_text()
        .replace("ABANDON_PROMPT", "abandon_prompt = \"abandon.wav\"")
        .replace(
            "simulated = { wrap_up_s = 3, disposition = \"SALE\" }",
            "sip_uri = \"sip:sim@127.0.0.1:5090\"\nconnection = \"per_call\"",
        );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let mut dialer = Dialer::new(&config, t0);
    for command in [
        Command::AgentLogin {
            agent: "sim".into(),
        },
        Command::AgentReady {
            agent: "sim".into(),
        },
    ] {
        dialer.handle_command(command, t0).unwrap();
    }
    assert!(
        !effects(&mut dialer)
            .iter()
            .any(|e| matches!(e, Effect::CallAgent { .. })),
        "no reservation call for a per-call phone"
    );
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "ready");
    start_demo(&mut dialer, t0);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![lease(1)],
            for_agent: None,
        },
        t0,
    );
    let call = dials(&effects(&mut dialer))[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(200));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(1000),
            },
            label: "human",
            at_ms: 800,
        },
        t0 + ms(1000),
    );
    let after = effects(&mut dialer);
    (dialer, call, after)
}

#[test]
fn a_per_call_phone_is_rung_for_the_customer_and_hung_up_after() {
    let t0 = Instant::now();
    let (mut dialer, call, after) = per_call_answered(t0);
    // The phone rings; nothing is spliced before it answers.
    assert!(
        after.contains(&Effect::CallAgent {
            agent: "sim".into()
        }),
        "{after:?}"
    );
    assert!(!after.iter().any(|e| matches!(e, Effect::Connect { .. })));
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: true,
        },
        t0 + ms(1400),
    );
    assert_eq!(
        effects(&mut dialer),
        vec![Effect::Connect {
            call,
            agent: "sim".into()
        }]
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "sim".into(),
        },
        t0 + ms(1600),
    );
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "on_call");
    // The customer hangs up: the agent's call goes too; wrap-up.
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(20_000));
    let over = effects(&mut dialer);
    assert!(
        over.contains(&Effect::HangUpAgent {
            agent: "sim".into()
        }),
        "{over:?}"
    );
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "wrap_up");
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: false,
        },
        t0 + ms(20_100),
    );
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "wrap_up");
}

#[test]
fn a_per_call_phone_that_rings_past_the_window_abandons_the_customer() {
    let t0 = Instant::now();
    let (mut dialer, call, _) = per_call_answered(t0);
    // The window closes 2 s after the greeting, the phone still ringing.
    dialer.handle_timeout(t0 + ms(3000));
    let over = effects(&mut dialer);
    assert!(
        over.contains(&Effect::HangUpAgent {
            agent: "sim".into()
        }),
        "the ring is cancelled: {over:?}"
    );
    assert!(
        over.contains(&Effect::Play {
            call,
            prompt: Prompt::Abandon
        }),
        "{over:?}"
    );
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "ready");
    // The phone answers late: nothing is spliced.
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: true,
        },
        t0 + ms(3100),
    );
    assert!(
        !effects(&mut dialer)
            .iter()
            .any(|e| matches!(e, Effect::Connect { .. }))
    );
}

#[test]
fn a_per_call_phone_hung_up_before_the_splice_sends_the_customer_back_to_the_queue() {
    let t0 = Instant::now();
    let (mut dialer, call, _) = per_call_answered(t0);
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: true,
        },
        t0 + ms(1400),
    );
    assert!(effects(&mut dialer).contains(&Effect::Connect {
        call,
        agent: "sim".into()
    }));
    // The phone hangs up again before the splice is done.
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: false,
        },
        t0 + ms(1410),
    );
    let view = dialer.agent_view("sim", t0).unwrap();
    assert_eq!(
        (view.state, view.reason.as_deref()),
        ("not_ready", Some(REASON_PHONE_LOST))
    );
    // The splice's late report changes nothing; the customer, with no
    // other agent, is abandoned at the window's end (not bridged to a
    // phone that is gone).
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "sim".into(),
        },
        t0 + ms(1420),
    );
    let late = effects(&mut dialer);
    assert!(
        !late.iter().any(|e| matches!(e, Effect::Bridged { .. })),
        "{late:?}"
    );
    dialer.handle_timeout(t0 + ms(3000));
    let over = effects(&mut dialer);
    assert!(
        over.contains(&Effect::Play {
            call,
            prompt: Prompt::Abandon
        }),
        "{over:?}"
    );
}

#[test]
fn a_per_call_phone_that_fails_makes_the_agent_not_ready() {
    let t0 = Instant::now();
    let (mut dialer, call, _) = per_call_answered(t0);
    // Busy or unreachable: the agent is Not ready, the customer waits for
    // another agent (there is none) and is abandoned at the window's end.
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: false,
        },
        t0 + ms(1500),
    );
    let view = dialer.agent_view("sim", t0).unwrap();
    assert_eq!(
        (view.state, view.reason.as_deref()),
        ("not_ready", Some("phone did not answer"))
    );
    effects(&mut dialer);
    dialer.handle_timeout(t0 + ms(3000));
    assert!(effects(&mut dialer).contains(&Effect::Play {
        call,
        prompt: Prompt::Abandon
    }));
    // One person, asked twice for an agent: one live answer, abandoned.
    // (Counted twice, the rates read 50 % — low by half.)
    let stats = dialer.campaign_stats("demo", t0 + ms(3000)).unwrap();
    assert_eq!((stats.live_answers, stats.abandoned), (1, 1));
    assert!(
        (stats.abandon_rate_us - 1.0).abs() < 1e-12,
        "{}",
        stats.abandon_rate_us
    );
}

#[test]
fn an_empty_list_retried_between_pacing_decisions_does_not_spin_the_timers() {
    let t0 = Instant::now();
    let mut dialer = dialer(t0, false);
    start_demo(&mut dialer, t0);
    // The list is empty, and says so between two pacing decisions.
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: Vec::new(),
            for_agent: None,
        },
        t0 + ms(500),
    );
    // The agent takes a break: a pacing decision off the retry's beat.
    dialer
        .handle_command(
            Command::AgentNotReady {
                agent: "sim".into(),
                reason: "break".into(),
            },
            t0 + ms(800),
        )
        .unwrap();
    effects(&mut dialer);
    // The driver's loop: sleep until the next deadline, handle it. Found by
    // the random-world property test: the store retry's deadline stayed due
    // after it was handled until the next decision, so the loop spun.
    let mut fired = 0;
    let mut asked_again = false;
    while let Some(deadline) = dialer.poll_timeout() {
        if deadline > t0 + ms(8000) {
            break;
        }
        fired += 1;
        assert!(fired < 100, "timers spin at {:?}", deadline - t0);
        dialer.handle_timeout(deadline);
        asked_again |= effects(&mut dialer)
            .iter()
            .any(|e| matches!(e, Effect::Lease { .. }));
    }
    assert!(asked_again, "the store is asked again after the pause");
}

/// The "demo" campaign with two simulated agents, `sim` and `sim2`.
fn two_agents(t0: Instant) -> Dialer {
    let second = "\n[[agent]]\nid = \"sim2\"\nname = \"Second\"\ncampaigns = [\"demo\"]\n\
                  simulated = { wrap_up_s = 3, disposition = \"SALE\" }\n";
    let text = format!("{}{second}", config_text().replace("ABANDON_PROMPT", ""));
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    Dialer::new(&config, t0)
}

/// A live answer on one of the campaign's calls; returns the call and the
/// agent it is being connected to.
fn live_answer_being_connected(dialer: &mut Dialer, t0: Instant) -> (CallId, String) {
    start_demo(dialer, t0);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: (1..=4).map(lease).collect(),
            for_agent: None,
        },
        t0,
    );
    let call = dials(&effects(dialer))[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(3000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Human {
                greeting_ended: t0 + ms(3800),
            },
            label: "human",
            at_ms: 800,
        },
        t0 + ms(3800),
    );
    let agent = effects(dialer)
        .into_iter()
        .find_map(|e| match e {
            Effect::Connect { call: c, agent } if c == call => Some(agent),
            _ => None,
        })
        .expect("a Connect for the live answer");
    (call, agent)
}

#[test]
fn a_splice_the_agents_phone_could_not_take_goes_to_another_agent_in_the_same_window() {
    let t0 = Instant::now();
    let mut dialer = two_agents(t0);
    let (call, first) = live_answer_being_connected(&mut dialer, t0);
    let second = if first == "sim" { "sim2" } else { "sim" };
    // The first agent's phone is gone; the customer's leg came back whole.
    dialer.handle_input(
        Input::ConnectFailed {
            call,
            agent: first.clone(),
            cause: ConnectFailure::AgentPhoneGone,
        },
        t0 + ms(3810),
    );
    let after = effects(&mut dialer);
    assert!(
        after.contains(&Effect::Connect {
            call,
            agent: second.into()
        }),
        "the customer goes to the other agent: {after:?}"
    );
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, Effect::HangUp { .. } | Effect::Record(_))),
        "the customer is not hung up: {after:?}"
    );
    let view = dialer.agent_view(&first, t0).unwrap();
    assert_eq!(
        (view.state, view.reason.as_deref()),
        ("not_ready", Some(REASON_PHONE_LOST)),
        "no call for the first agent until its phone is back"
    );
    // Late reports about the first agent's splice change nothing.
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: first.clone(),
        },
        t0 + ms(3820),
    );
    dialer.handle_input(
        Input::ConnectFailed {
            call,
            agent: first.clone(),
            cause: ConnectFailure::CustomerGone,
        },
        t0 + ms(3830),
    );
    assert!(effects(&mut dialer).is_empty());
    assert_eq!(dialer.agent_view(second, t0).unwrap().state, "connecting");
    // The second agent's splice holds: connected, not abandoned.
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: second.into(),
        },
        t0 + ms(3840),
    );
    assert!(effects(&mut dialer).contains(&Effect::Bridged {
        call,
        agent: second.into()
    }));
    assert_eq!(dialer.agent_view(second, t0).unwrap().state, "on_call");
}

#[test]
fn a_splice_that_lost_the_customers_media_ends_the_call_and_frees_the_agent() {
    let t0 = Instant::now();
    let mut dialer = two_agents(t0);
    let (call, agent) = live_answer_being_connected(&mut dialer, t0);
    dialer.handle_input(
        Input::ConnectFailed {
            call,
            agent: agent.clone(),
            cause: ConnectFailure::CustomerGone,
        },
        t0 + ms(3810),
    );
    let after = effects(&mut dialer);
    assert!(after.contains(&Effect::HangUp { call }), "{after:?}");
    assert_eq!(dialer.agent_view(&agent, t0).unwrap().state, "ready");
}

/// Ofcom's repeat-call rule: a lease that needs a guaranteed agent is
/// dialed only with a Ready agent reserved from the dial on, who hears it
/// ring and takes it at the answer, before any verdict (no machine
/// detection hangs up on the person again, no 2-second race). While no
/// agent is Ready such a lease waits — the pacer never dials it on its own
/// — and after `REPEAT_CALL_HOLD` it goes back to the list.
#[test]
fn a_repeat_call_that_needs_an_agent_is_dialed_with_one_reserved() {
    use super::repeat_calls::REPEAT_CALL_HOLD;
    let t0 = Instant::now();
    let mut dialer = dialer(t0, true);
    start_demo(&mut dialer, t0);
    let needs_agent = |id: i64| Lease {
        agent_required: true,
        ..lease(id)
    };
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![lease(1), needs_agent(2), lease(3)],
            for_agent: None,
        },
        t0,
    );
    let first = effects(&mut dialer);
    let dialed: Vec<(CallId, i64)> = first
        .iter()
        .filter_map(|e| match e {
            Effect::Dial { call, lease, .. } => Some((*call, lease.record_id)),
            _ => None,
        })
        .collect();
    // The only Ready agent goes to the repeat call, ahead of the list's
    // first record; progressive 1:1 then has no agent left to pace for.
    assert_eq!(dialed.len(), 1, "{first:?}");
    let (call, record) = dialed[0];
    assert_eq!(record, 2);
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "reserved");
    // The agent sees whom the call is for while it rings.
    let pops: Vec<(String, u64, bool)> = std::iter::from_fn(|| dialer.poll_event())
        .filter_map(|event| match event {
            super::dialer::Event::ScreenPop { pop, .. } => {
                Some((pop.record, pop.call, pop.repeat_call))
            }
            _ => None,
        })
        .collect();
    assert_eq!(pops, vec![("2".to_string(), call, true)]);
    dialer.handle_input(Input::Ringing { call }, t0 + ms(200));
    assert!(
        effects(&mut dialer).contains(&Effect::AgentRingback {
            agent: "sim".into(),
            call,
            on: true
        }),
        "the agent hears the call progress"
    );
    dialer.handle_input(Input::Answered { call }, t0 + ms(6000));
    let answered = effects(&mut dialer);
    assert!(
        answered.contains(&Effect::Connect {
            call,
            agent: "sim".into()
        }),
        "connected at the answer: {answered:?}"
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "sim".into(),
        },
        t0 + ms(6100),
    );
    // A machine verdict after the splice hangs nobody up: the agent is
    // there and deals with it.
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: Verdict::Machine,
            label: "machine",
            at_ms: 2500,
        },
        t0 + ms(8500),
    );
    let verdict = effects(&mut dialer);
    assert!(!verdict.contains(&Effect::HangUp { call }), "{verdict:?}");
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "on_call");
    // Another repeat call arrives while the agent talks: it waits, and the
    // pacer dials nothing for it.
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![needs_agent(4)],
            for_agent: None,
        },
        t0 + ms(10_000),
    );
    let waiting = effects(&mut dialer);
    assert!(dials(&waiting).is_empty());
    // One waiting per agent of the campaign is enough: the next records
    // are leased without the numbers that need an agent.
    assert!(
        waiting.iter().any(|e| matches!(
            e,
            Effect::Lease {
                skip_agent_required: true,
                ..
            }
        )),
        "{waiting:?}"
    );
    let stats = dialer.campaign_stats("demo", t0 + ms(10_000)).unwrap();
    assert_eq!(
        (stats.repeat_calls_waiting, stats.repeat_calls_dialed),
        (1, 1)
    );
    // Nobody free for the whole hold: it goes back to the list.
    dialer.handle_timeout(t0 + ms(10_000) + REPEAT_CALL_HOLD);
    let given_back: Vec<(i64, crate::store::Release)> = effects(&mut dialer)
        .into_iter()
        .filter_map(|e| match e {
            Effect::ReleaseLeases { leases, how } => {
                Some(leases.into_iter().map(move |l| (l.record_id, how)))
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(given_back, vec![(4, crate::store::Release::Unused)]);
}

/// On a trunk shared by nodes, a repeat call a Ready agent could take now
/// is demand like a call the pacer wants: only the trunk keeps it.
#[test]
fn a_repeat_call_waiting_for_a_shared_trunks_line_is_demand() {
    use crate::pacing::trunk_share::{TrunkDemand, TrunkShare};
    let t0 = Instant::now();
    let mut dialer = on_a_shared_trunk("", t0);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![Lease {
                agent_required: true,
                ..lease(1)
            }],
            for_agent: None,
        },
        t0,
    );
    // No line of the shared trunk yet: it waits, and it is wanted.
    assert!(dials(&effects(&mut dialer)).is_empty());
    assert_eq!(
        dialer.trunk_demand(),
        TrunkDemand {
            in_use: 0,
            wanted: 1
        }
    );
    // A line: dialed with the agent reserved; nothing more is wanted.
    dialer.set_trunk_share(Some(TrunkShare { lines: 1, nodes: 2 }), t0 + ms(10));
    assert_eq!(dials(&effects(&mut dialer)).len(), 1);
    assert_eq!(dialer.agent_view("sim", t0).unwrap().state, "reserved");
    assert_eq!(
        dialer.trunk_demand(),
        TrunkDemand {
            in_use: 1,
            wanted: 1
        }
    );
}

#[test]
fn a_per_call_phone_that_answered_is_kept_when_the_customer_leaves_first() {
    // The phone answered for the customer, who hangs up during the zip
    // tone: the agent is Ready with that call kept for the next customer
    // (hung up now, it would race the next customer's splice into it).
    let t0 = Instant::now();
    let (mut dialer, call, _) = per_call_answered(t0);
    dialer.handle_input(
        Input::AgentLeg {
            agent: "sim".into(),
            up: true,
        },
        t0 + ms(1300),
    );
    effects(&mut dialer);
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(1400));
    let after = effects(&mut dialer);
    assert!(
        !after.contains(&Effect::HangUpAgent {
            agent: "sim".into()
        }),
        "{after:?}"
    );
    assert_eq!(
        dialer.agent_view("sim", t0 + ms(1400)).unwrap().state,
        "ready"
    );
}
