//! The preview modes driven by a virtual clock: records shown before any
//! dial, the agent's actions, push preview's timeout, and a called record
//! reaching its own agent at the answer.

use std::path::Path;
use std::time::{Duration, Instant};

use super::attempt::{AttemptResult, Failure};
use super::campaign_run::RunCommand;
use super::dialer::{Command, CommandError, Dialer, Event};
use super::io::{CallId, Effect, Input};
use super::preview::PreviewAction;
use crate::campaign::guide::GivenAnswer;
use crate::config::Config;
use crate::store::{Lease, Release};

/// The node (`super::test_node_toml`) and this file's campaign and agents.
fn config_text() -> String {
    format!("{}{CAMPAIGN_AND_AGENTS}", super::test_node_toml(10, 100.0))
}

const CAMPAIGN_AND_AGENTS: &str = r#"
[[campaign]]
name = "demo"
mode = "MODE"
ring_timeout_s = 20
EXTRA
[[agent]]
id = "ann"
name = "Ann"
sip_uri = "sip:ann@127.0.0.1:5090"
campaigns = ["demo"]
[[agent]]
id = "sim"
name = "Simulated"
campaigns = ["demo"]
simulated = { wrap_up_s = 3, disposition = "SALE" }
"#;

/// A call guide: "interested?" Yes → "plan?", No → "why?" (free text).
const GUIDE: &str = r#"
[[campaign.guide]]
id = "interested"
question = "Is the customer interested?"
answers = [{ text = "Yes", next = "plan" }, { text = "No", next = "why" }]
[[campaign.guide]]
id = "plan"
question = "Which plan?"
answers = [{ text = "Gold" }, { text = "Silver" }]
[[campaign.guide]]
id = "why"
question = "Why not?"
"#;

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn lease(id: i64) -> Lease {
    Lease {
        record_id: id,
        campaign: 1,
        external_id: format!("r{id}"),
        name: format!("Contact {id}"),
        custom_json: r#"{"plan":"gold"}"#.into(),
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

pub(super) fn effects(dialer: &mut Dialer) -> Vec<Effect> {
    std::iter::from_fn(|| dialer.poll_effect()).collect()
}

/// The attempts written to the store among `effects`.
pub(super) fn records(effects: Vec<Effect>) -> Vec<super::io::AttemptRecord> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Record(record) => Some(*record),
            _ => None,
        })
        .collect()
}

pub(super) fn events(dialer: &mut Dialer) -> Vec<Event> {
    std::iter::from_fn(|| dialer.poll_event()).collect()
}

pub(super) fn dials(effects: &[Effect]) -> Vec<CallId> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Dial { call, .. } => Some(*call),
            _ => None,
        })
        .collect()
}

fn released(effects: &[Effect]) -> Vec<(String, Release)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ReleaseLeases { leases, how } => {
                Some(leases.iter().map(|l| (l.external_id.clone(), *how)))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn shown(events: &[Event], agent: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Preview { agent: a, preview } if a == agent => Some(preview.record.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn preview(dialer: &mut Dialer, agent: &str, action: PreviewAction, now: Instant) {
    dialer
        .handle_command(
            Command::Preview {
                agent: agent.into(),
                action,
                caller_id: None,
            },
            now,
        )
        .unwrap_or_else(|e| panic!("{action:?}: {e}"));
}

/// Agent `ann` logged in with her phone up and Ready; agent `sim` is
/// simulated unless `with_sim`. The campaign started and leased `n`
/// records.
/// Gives the simulated agent a phone and makes it Ready 50 ms after Ann,
/// so that Ann is the longest idle; the effects and events are drained.
pub(super) fn sim_ready_after_ann(dialer: &mut Dialer, t0: Instant) {
    dialer.reservation_leg("sim", true, t0).unwrap();
    for (command, at) in [
        (
            Command::AgentNotReady {
                agent: "sim".into(),
                reason: "break".into(),
            },
            t0,
        ),
        (
            Command::AgentReady {
                agent: "sim".into(),
            },
            t0 + ms(50),
        ),
    ] {
        dialer.handle_command(command, at).unwrap();
    }
    effects(dialer);
    events(dialer);
}

/// Leases record 1 to the campaign as a repeat call that needs a
/// guaranteed agent (Ofcom).
pub(super) fn lease_a_repeat_call(dialer: &mut Dialer, now: Instant) {
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![Lease {
                agent_required: true,
                ..lease(1)
            }],
            for_agent: None,
        },
        now,
    );
}

pub(super) fn started(mode: &str, extra: &str, n: i64, with_sim: bool, t0: Instant) -> Dialer {
    started_with(&config_text(), mode, extra, n, with_sim, t0)
}

/// [`started`] on another configuration than [`config_text`].
fn started_with(
    config: &str,
    mode: &str,
    extra: &str,
    n: i64,
    with_sim: bool,
    t0: Instant,
) -> Dialer {
    let mut text = config.replace("MODE", mode).replace("EXTRA", extra);
    if !with_sim {
        text = text.replace(
            "campaigns = [\"demo\"]\nsimulated",
            "campaigns = []\nsimulated",
        );
    }
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let mut dialer = Dialer::new(&config, t0);
    dialer
        .handle_command(
            Command::AgentLogin {
                agent: "ann".into(),
            },
            t0,
        )
        .unwrap();
    dialer.reservation_leg("ann", true, t0).unwrap();
    dialer
        .handle_command(
            Command::AgentReady {
                agent: "ann".into(),
            },
            t0,
        )
        .unwrap();
    dialer
        .handle_command(
            Command::Campaign {
                name: "demo".into(),
                command: RunCommand::Start,
            },
            t0,
        )
        .unwrap();
    let first = effects(&mut dialer);
    assert!(
        first.iter().any(|e| matches!(e, Effect::Lease { .. })),
        "{first:?}"
    );
    events(&mut dialer);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: (1..=n).map(lease).collect(),
            for_agent: None,
        },
        t0,
    );
    dialer
}

#[test]
fn preview_shows_a_record_before_dialing_and_calls_it_for_its_agent() {
    let t0 = Instant::now();
    let mut dialer = started("preview", GUIDE, 3, false, t0);
    // No pacing: records wait for an agent to ask.
    assert!(dials(&effects(&mut dialer)).is_empty());
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    let seen = events(&mut dialer);
    assert_eq!(shown(&seen, "ann"), vec!["r1"]);
    let view = dialer.agent_view("ann", t0).unwrap();
    assert_eq!(view.state, "previewing");
    let on_screen = view.preview.unwrap();
    assert_eq!(
        (on_screen.phone.as_str(), on_screen.custom["plan"].as_str()),
        ("+12025550001", Some("gold"))
    );
    // A second ask while one is on screen is refused.
    assert!(matches!(
        dialer.handle_command(
            Command::Preview {
                agent: "ann".into(),
                action: PreviewAction::Next,
                caller_id: None,
            },
            t0
        ),
        Err(CommandError::Agent(_))
    ));
    // Skip: r1 back to the list as it was, r2 on screen.
    preview(&mut dialer, "ann", PreviewAction::Skip, t0 + ms(1000));
    assert_eq!(
        released(&effects(&mut dialer)),
        vec![("r1".to_string(), Release::Unused)]
    );
    assert_eq!(shown(&events(&mut dialer), "ann"), vec!["r2"]);
    // Call: dialed with Ann reserved for it.
    preview(&mut dialer, "ann", PreviewAction::Call, t0 + ms(2000));
    let calls = dials(&effects(&mut dialer));
    assert_eq!(calls.len(), 1);
    let call = calls[0];
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "reserved");
    assert!(dialer.agent_view("ann", t0).unwrap().preview.is_none());
    // At the answer the callee goes to Ann at once (no CPA wait).
    dialer.handle_input(Input::Ringing { call }, t0 + ms(2200));
    dialer.handle_input(Input::Answered { call }, t0 + ms(6000));
    let answered = effects(&mut dialer);
    assert!(
        answered.contains(&Effect::Connect {
            call,
            agent: "ann".into()
        }),
        "{answered:?}"
    );
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "ann".into(),
        },
        t0 + ms(6200),
    );
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "on_call");
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(60_000));
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "wrap_up");
    effects(&mut dialer);
    // The call guide's answers must follow its branches: a wrong path is
    // refused and changes nothing.
    let answer = |question: &str, answer: &str| GivenAnswer {
        question: question.into(),
        answer: answer.into(),
    };
    let refused = dialer.handle_command(
        Command::Disposition {
            agent: "ann".into(),
            code: "SALE".into(),
            notes: "previewed".into(),
            callback: None,
            do_not_call: false,
            guide: vec![answer("interested", "No"), answer("plan", "Gold")],
        },
        t0 + ms(64_000),
    );
    assert!(
        matches!(&refused, Err(CommandError::Invalid(why)) if why.contains("asks `why`")),
        "{refused:?}"
    );
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "wrap_up");
    dialer
        .handle_command(
            Command::Disposition {
                agent: "ann".into(),
                code: "SALE".into(),
                notes: "previewed".into(),
                callback: None,
                do_not_call: false,
                guide: vec![answer("interested", "Yes"), answer("plan", "Gold")],
            },
            t0 + ms(65_000),
        )
        .unwrap();
    let written = records(effects(&mut dialer));
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].outcome.result, AttemptResult::Connected);
    assert_eq!(written[0].outcome.agent.as_deref(), Some("ann"));
    assert_eq!(written[0].lease.external_id, "r2");
    assert_eq!(written[0].disposition.as_deref(), Some("SALE"));
    assert_eq!(
        written[0].guide_answers.as_deref(),
        Some(r#"[{"question":"interested","answer":"Yes"},{"question":"plan","answer":"Gold"}]"#)
    );
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "ready");
}

#[test]
fn a_failed_preview_call_frees_its_agent_without_wrap_up() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "", 2, false, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    preview(&mut dialer, "ann", PreviewAction::Call, t0);
    let call = dials(&effects(&mut dialer))[0];
    // The agent hears it ring...
    dialer.handle_input(Input::Ringing { call }, t0 + ms(1000));
    dialer.handle_input(Input::Ringing { call }, t0 + ms(1500));
    let ringing = effects(&mut dialer);
    assert_eq!(
        ringing,
        vec![Effect::AgentRingback {
            agent: "ann".into(),
            call,
            on: true
        }]
    );
    dialer.handle_input(
        Input::Failed {
            call,
            failure: Failure::Busy,
            sip_code: Some(486),
            retry_after: None,
        },
        t0 + ms(3000),
    );
    let over = effects(&mut dialer);
    // ... and the ringback stops with the call.
    assert!(
        over.contains(&Effect::AgentRingback {
            agent: "ann".into(),
            call,
            on: false
        }),
        "{over:?}"
    );
    let written = records(over);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].outcome.result, AttemptResult::Busy);
    // The CDR names the agent who dialed it.
    assert_eq!(written[0].outcome.agent.as_deref(), Some("ann"));
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "ready");
}

#[test]
fn the_agent_cancels_a_previewed_call_while_it_rings() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "", 2, false, t0);
    let hang_up = |dialer: &mut Dialer, at: Instant| {
        dialer.handle_command(
            Command::AgentHangup {
                agent: "ann".into(),
            },
            at,
        )
    };
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    preview(&mut dialer, "ann", PreviewAction::Call, t0);
    let call = dials(&effects(&mut dialer))[0];
    dialer.handle_input(Input::Ringing { call }, t0 + ms(1000));
    effects(&mut dialer);
    // Webex's Cancel button: the ringing call is cancelled as at the ring
    // timeout, long before it.
    hang_up(&mut dialer, t0 + ms(2000)).unwrap();
    let cancelled = effects(&mut dialer);
    assert!(
        cancelled.contains(&Effect::CancelRinging { call }),
        "{cancelled:?}"
    );
    // Pressed again while the CANCEL is on its way: nothing more.
    hang_up(&mut dialer, t0 + ms(2100)).unwrap();
    assert!(effects(&mut dialer).is_empty());
    dialer.handle_input(
        Input::Failed {
            call,
            failure: Failure::NoAnswer,
            sip_code: Some(487),
            retry_after: None,
        },
        t0 + ms(2200),
    );
    let written = records(effects(&mut dialer));
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].outcome.result, AttemptResult::NoAnswer);
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "ready");

    // Once the callee answered, the customer is being connected: hanging
    // up waits for the call.
    preview(&mut dialer, "ann", PreviewAction::Next, t0 + ms(3000));
    preview(&mut dialer, "ann", PreviewAction::Call, t0 + ms(3000));
    let call = dials(&effects(&mut dialer))[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(4000));
    effects(&mut dialer);
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "connecting");
    let refused = hang_up(&mut dialer, t0 + ms(4100)).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "agent is connecting; hang up needs on_call, or reserved for a call that still rings"
    );
    assert!(
        !effects(&mut dialer)
            .iter()
            .any(|e| matches!(e, Effect::CancelRinging { .. } | Effect::HangUp { .. }))
    );
}

#[test]
fn a_record_on_screen_is_postponed_with_a_callback() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "", 2, false, t0);
    let at: jiff::Timestamp = "2030-01-15T15:00:00Z".parse().unwrap();
    let postpone = |dialer: &mut Dialer, phone: Option<&str>| {
        dialer.handle_command(
            Command::PostponePreview {
                agent: "ann".into(),
                callback: super::dialer::CallbackAt {
                    at,
                    personal: true,
                    phone: phone.map(str::to_string),
                },
            },
            t0,
        )
    };
    assert!(matches!(
        postpone(&mut dialer, None),
        Err(CommandError::Unavailable(_))
    ));
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    events(&mut dialer);
    // A number that is not one: refused, the record stays on screen.
    assert!(matches!(
        postpone(&mut dialer, Some("12345")),
        Err(CommandError::Invalid(_))
    ));
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "previewing");
    postpone(&mut dialer, Some("(202) 555-0177")).unwrap();
    let done = effects(&mut dialer);
    let postponed: Vec<_> = done
        .iter()
        .filter_map(|e| match e {
            Effect::Postpone { lease, callback } => Some((lease, callback)),
            _ => None,
        })
        .collect();
    assert_eq!(postponed.len(), 1, "{done:?}");
    assert!(
        !done
            .iter()
            .any(|e| matches!(e, Effect::ReleaseLeases { .. })),
        "given back by the shell after the callback is scheduled: {done:?}"
    );
    let (lease, callback) = postponed[0];
    assert_eq!(lease.record_id, 1);
    assert_eq!(callback.at, at);
    assert_eq!(callback.agent.as_deref(), Some("ann"));
    assert_eq!(callback.phone.as_deref(), Some("+12025550177"));
    assert!(
        events(&mut dialer).iter().any(|e| matches!(
            e,
            Event::PreviewEnded {
                how: "postponed",
                ..
            }
        )),
        "the record left the screen"
    );
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "ready");
}

#[test]
fn the_agent_corrects_the_contact_on_screen_and_on_the_call() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "", 2, false, t0);
    let change = |name: Option<&str>, fields: serde_json::Value| Command::ChangeContact {
        agent: "ann".into(),
        change: super::contact_edit::ContactChange {
            name: name.map(str::to_string),
            fields: fields.as_object().cloned().unwrap_or_default(),
        },
    };
    let refused = dialer
        .handle_command(change(Some("Ann"), serde_json::json!({})), t0)
        .unwrap_err();
    assert!(matches!(refused, CommandError::Unavailable(_)), "{refused}");
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    effects(&mut dialer);
    dialer
        .handle_command(
            change(
                Some(" Lee Corrected "),
                serde_json::json!({"plan": null, "email": "l@x.test"}),
            ),
            t0,
        )
        .unwrap();
    let written = effects(&mut dialer);
    assert_eq!(
        written,
        vec![Effect::UpdateContact {
            record: 1,
            name: Some("Lee Corrected".into()),
            custom_json: r#"{"email":"l@x.test"}"#.into(),
        }]
    );
    let shown = dialer.agent_view("ann", t0).unwrap().preview.unwrap();
    assert_eq!(shown.name, "Lee Corrected");
    // On the call the screen pop follows, and the call's record is the one
    // written with the attempt.
    preview(&mut dialer, "ann", PreviewAction::Call, t0);
    let call = dials(&effects(&mut dialer))[0];
    dialer
        .handle_command(change(None, serde_json::json!({"vip": true})), t0)
        .unwrap();
    effects(&mut dialer);
    let pop = dialer.agent_view("ann", t0).unwrap().call.unwrap();
    assert_eq!(pop.call, call);
    assert_eq!(pop.name, "Lee Corrected");
    assert_eq!(
        pop.custom,
        serde_json::json!({"email": "l@x.test", "vip": true})
    );
    // A change a list column cannot hold changes nothing.
    let bad = dialer
        .handle_command(change(None, serde_json::json!({"nested": {"a": 1}})), t0)
        .unwrap_err();
    assert!(matches!(bad, CommandError::Invalid(_)), "{bad}");
    assert!(effects(&mut dialer).is_empty());
}

#[test]
fn a_preview_call_that_could_not_be_placed_frees_its_agent() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "", 2, false, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    preview(&mut dialer, "ann", PreviewAction::Call, t0);
    let call = dials(&effects(&mut dialer))[0];
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "reserved");
    // The attempt row could not be written: nothing went to the trunk.
    dialer.handle_input(
        Input::NotPlaced {
            call,
            reason: "store unavailable".into(),
        },
        t0 + ms(10),
    );
    assert!(records(effects(&mut dialer)).is_empty());
    // Found by the random-world property test: the agent stayed reserved
    // for a call that never existed.
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "ready");
    preview(&mut dialer, "ann", PreviewAction::Next, t0 + ms(20));
    assert!(
        !shown(&events(&mut dialer), "ann").is_empty(),
        "the agent takes the next record"
    );
}

#[test]
fn decline_remove_and_do_not_call_give_the_record_back_as_chosen() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "preview_allow_skip = false", 4, false, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    // Skipping is off for this campaign: refused, the record stays.
    assert!(matches!(
        dialer.handle_command(
            Command::Preview {
                agent: "ann".into(),
                action: PreviewAction::Skip,
                caller_id: None,
            },
            t0
        ),
        Err(CommandError::Unavailable(_))
    ));
    preview(&mut dialer, "ann", PreviewAction::DoNotCall, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    preview(&mut dialer, "ann", PreviewAction::Remove, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    preview(&mut dialer, "ann", PreviewAction::Decline, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    preview(&mut dialer, "ann", PreviewAction::Stop, t0);
    assert_eq!(
        released(&effects(&mut dialer)),
        vec![
            ("r1".to_string(), Release::DoNotCall),
            ("r2".to_string(), Release::Removed),
            ("r3".to_string(), Release::Unused),
            ("r4".to_string(), Release::Unused),
        ]
    );
    let view = dialer.agent_view("ann", t0).unwrap();
    assert_eq!(
        (view.state, view.reason.as_deref()),
        ("not_ready", Some("preview stopped"))
    );
    // Nothing on screen: acting on it is a clear error.
    assert!(matches!(
        dialer.handle_command(
            Command::Preview {
                agent: "ann".into(),
                action: PreviewAction::Call,
                caller_id: None,
            },
            t0
        ),
        Err(CommandError::Unavailable(_))
    ));
}

#[test]
fn leaving_preview_or_pausing_the_campaign_gives_the_record_back() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "", 3, false, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    dialer
        .handle_command(
            Command::AgentNotReady {
                agent: "ann".into(),
                reason: "break".into(),
            },
            t0,
        )
        .unwrap();
    assert_eq!(
        released(&effects(&mut dialer)),
        vec![("r1".to_string(), Release::Unused)]
    );
    dialer
        .handle_command(
            Command::AgentReady {
                agent: "ann".into(),
            },
            t0,
        )
        .unwrap();
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    dialer
        .handle_command(
            Command::Campaign {
                name: "demo".into(),
                command: RunCommand::Pause,
            },
            t0,
        )
        .unwrap();
    let paused = released(&effects(&mut dialer));
    assert!(
        paused.contains(&("r2".to_string(), Release::Unused)),
        "{paused:?}"
    );
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "ready");
    assert!(dialer.agent_view("ann", t0).unwrap().preview.is_none());
    // A paused campaign has nothing to preview.
    assert!(matches!(
        dialer.handle_command(
            Command::Preview {
                agent: "ann".into(),
                action: PreviewAction::Next,
                caller_id: None,
            },
            t0
        ),
        Err(CommandError::Unavailable(_))
    ));
}

#[test]
fn push_preview_pushes_records_and_puts_ignored_ones_back_at_the_top() {
    let t0 = Instant::now();
    let mut dialer = started("push_preview", "preview_timeout_s = 20", 3, false, t0);
    // Pushed as soon as records arrive; nothing dialed.
    assert_eq!(shown(&events(&mut dialer), "ann"), vec!["r1"]);
    assert!(dials(&effects(&mut dialer)).is_empty());
    let on_screen = dialer.agent_view("ann", t0).unwrap().preview.unwrap();
    assert!(on_screen.pushed);
    assert_eq!(on_screen.remaining_ms, Some(20_000));
    // Rejected: back at the top of the list, and the next one is pushed.
    preview(&mut dialer, "ann", PreviewAction::Decline, t0 + ms(1000));
    assert_eq!(
        released(&effects(&mut dialer)),
        vec![("r1".to_string(), Release::Declined)]
    );
    assert_eq!(shown(&events(&mut dialer), "ann"), vec!["r2"]);
    // No action: the timeout does the same.
    assert_eq!(dialer.previews_poll_timeout(), Some(t0 + ms(21_000)));
    assert!(dialer.poll_timeout() <= Some(t0 + ms(21_000)));
    dialer.handle_timeout(t0 + ms(21_000));
    assert_eq!(
        released(&effects(&mut dialer)),
        vec![("r2".to_string(), Release::Declined)]
    );
    let seen = events(&mut dialer);
    assert!(
        seen.contains(&Event::PreviewEnded {
            agent: "ann".into(),
            campaign: "demo".into(),
            record: "r2".into(),
            how: "timed_out"
        }),
        "{seen:?}"
    );
    assert_eq!(shown(&seen, "ann"), vec!["r3"]);
    // Accept dials it.
    preview(&mut dialer, "ann", PreviewAction::Call, t0 + ms(22_000));
    assert_eq!(dials(&effects(&mut dialer)).len(), 1);
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "reserved");
}

#[test]
fn push_preview_can_accept_on_timeout_and_simulated_agents_accept_at_once() {
    let t0 = Instant::now();
    let mut dialer = started(
        "push_preview",
        "preview_timeout_s = 5\npreview_timeout_action = \"accept\"",
        3,
        true,
        t0,
    );
    // The simulated agent accepted its record at once; Ann's waits.
    let first = effects(&mut dialer);
    assert_eq!(dials(&first).len(), 1, "{first:?}");
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "previewing");
    dialer.handle_timeout(t0 + ms(5000));
    assert_eq!(dials(&effects(&mut dialer)).len(), 1);
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "reserved");
}

#[test]
fn the_agent_picks_a_caller_id_from_the_campaigns_list() {
    let t0 = Instant::now();
    let mut dialer = started(
        "preview",
        "caller_id = \"+15551230001\"\ncaller_ids = [\"+15551230002\"]",
        2,
        false,
        t0,
    );
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    let on_screen = dialer.agent_view("ann", t0).unwrap().preview.unwrap();
    assert_eq!(on_screen.caller_ids, vec!["+15551230001", "+15551230002"]);
    let call = |dialer: &mut Dialer, caller_id: &str| {
        dialer.handle_command(
            Command::Preview {
                agent: "ann".into(),
                action: PreviewAction::Call,
                caller_id: Some(caller_id.into()),
            },
            t0,
        )
    };
    // Not on the list: refused, the record stays on screen.
    assert!(matches!(
        call(&mut dialer, "+15559999999"),
        Err(CommandError::Invalid(why)) if why.contains("not allowed")
    ));
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "previewing");
    effects(&mut dialer);
    call(&mut dialer, "+15551230002").unwrap();
    let dialed: Vec<Option<String>> = effects(&mut dialer)
        .into_iter()
        .filter_map(|e| match e {
            Effect::Dial { caller_id, .. } => Some(caller_id),
            _ => None,
        })
        .collect();
    assert_eq!(dialed, vec![Some("+15551230002".to_string())]);
}

#[test]
fn a_personal_callback_is_shown_to_its_agent_in_a_progressive_campaign() {
    let t0 = Instant::now();
    let mut dialer = started("progressive", "", 0, false, t0);
    effects(&mut dialer);
    // Every 20 s the store is asked for Ready Ann's due personal callbacks.
    dialer.handle_timeout(t0 + ms(20_000));
    let asked = effects(&mut dialer);
    assert!(
        asked.iter().any(|e| matches!(
            e,
            Effect::Lease { for_agent: Some(agent), .. } if agent == "ann"
        )),
        "{asked:?}"
    );
    let personal = |id: i64, agent: &str| Lease {
        callback: Some(id),
        callback_agent: Some(agent.into()),
        ..lease(id)
    };
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![personal(7, "ann"), personal(8, "someone-else")],
            for_agent: Some("ann".into()),
        },
        t0 + ms(20_100),
    );
    // Pushed to Ann as a preview, never paced.
    assert!(dials(&effects(&mut dialer)).is_empty());
    let on_screen = dialer
        .agent_view("ann", t0 + ms(20_100))
        .unwrap()
        .preview
        .unwrap();
    assert_eq!(
        (
            on_screen.record.as_str(),
            on_screen.callback,
            on_screen.personal_callback
        ),
        ("r7", true, true)
    );
    assert_eq!(on_screen.remaining_ms, Some(30_000));
    // The other agent's stays held, then goes back to the store.
    dialer.handle_timeout(t0 + ms(80_200));
    let back = released(&effects(&mut dialer));
    assert!(
        back.contains(&("r8".to_string(), Release::Unused)),
        "{back:?}"
    );
    // (Ann's own timed out at 30 s: back to the list, asked for again.)
    assert!(
        back.contains(&("r7".to_string(), Release::Unused)),
        "{back:?}"
    );
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "ready");
    // The next poll asks again for Ann.
    let later = effects(&mut dialer);
    let polls = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Effect::Lease {
                        for_agent: Some(_),
                        ..
                    }
                )
            })
            .count()
    };
    dialer.handle_timeout(t0 + ms(100_300));
    assert!(polls(&later) + polls(&effects(&mut dialer)) >= 1);
}

#[test]
fn the_campaigns_wrap_up_timer_ends_a_forgotten_wrap_up() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "wrap_up_timeout_s = 10", 1, false, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    preview(&mut dialer, "ann", PreviewAction::Call, t0);
    let call = dials(&effects(&mut dialer))[0];
    dialer.handle_input(Input::Answered { call }, t0 + ms(4000));
    dialer.handle_input(
        Input::Spliced {
            call,
            agent: "ann".into(),
        },
        t0 + ms(4100),
    );
    dialer.handle_input(Input::RemoteHangUp { call }, t0 + ms(30_000));
    effects(&mut dialer);
    let view = dialer.agent_view("ann", t0 + ms(31_000)).unwrap();
    assert_eq!(
        (view.state, view.wrap_up_remaining_ms),
        ("wrap_up", Some(9_000))
    );
    dialer.handle_timeout(t0 + ms(40_000));
    let written = records(effects(&mut dialer));
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].disposition, None);
    assert_eq!(written[0].outcome.agent.as_deref(), Some("ann"));
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "ready");
}

#[test]
fn a_campaign_that_asks_agents_to_join_gives_calls_only_after_they_do() {
    let t0 = Instant::now();
    let mut dialer = started("progressive", "agents_confirm_join = true", 2, false, t0);
    // Ready but not joined: no line is dialed for her.
    assert!(dials(&effects(&mut dialer)).is_empty());
    assert_eq!(dialer.agent_view("ann", t0).unwrap().to_join, vec!["demo"]);
    let join = |dialer: &mut Dialer, campaign: &str| {
        dialer.handle_command(
            Command::JoinCampaign {
                agent: "ann".into(),
                campaign: campaign.into(),
            },
            t0 + ms(1000),
        )
    };
    assert!(matches!(
        join(&mut dialer, "nope"),
        Err(CommandError::UnknownCampaign(_))
    ));
    join(&mut dialer, "demo").unwrap();
    assert_eq!(dials(&effects(&mut dialer)).len(), 1, "progressive 1:1 now");
    assert!(dialer.agent_view("ann", t0).unwrap().to_join.is_empty());
    // Joining holds for the login: after a logout she must join again.
    dialer
        .handle_command(
            Command::AgentLogout {
                agent: "ann".into(),
            },
            t0 + ms(2000),
        )
        .unwrap();
    dialer
        .handle_command(
            Command::AgentLogin {
                agent: "ann".into(),
            },
            t0 + ms(3000),
        )
        .unwrap();
    assert_eq!(dialer.agent_view("ann", t0).unwrap().to_join, vec!["demo"]);
}

#[test]
fn cancel_and_leave_the_campaign_gives_the_record_back_until_the_agent_joins_again() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "", 3, false, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    events(&mut dialer);
    preview(&mut dialer, "ann", PreviewAction::Leave, t0 + ms(100));
    assert_eq!(
        released(&effects(&mut dialer)),
        vec![("r1".to_string(), Release::Unused)]
    );
    let ended: Vec<&'static str> = events(&mut dialer)
        .iter()
        .filter_map(|e| match e {
            Event::PreviewEnded { how, .. } => Some(*how),
            _ => None,
        })
        .collect();
    assert_eq!(ended, vec!["left"]);
    let view = dialer.agent_view("ann", t0 + ms(100)).unwrap();
    assert_eq!(view.state, "ready", "still ready for her other campaigns");
    assert_eq!(view.to_join, vec!["demo"], "the desktop offers Join");
    // No record from the campaign she left.
    assert!(
        dialer
            .handle_command(
                Command::Preview {
                    agent: "ann".into(),
                    action: PreviewAction::Next,
                    caller_id: None,
                },
                t0 + ms(200),
            )
            .is_err()
    );
    assert!(shown(&events(&mut dialer), "ann").is_empty());
    // Join brings her back.
    dialer
        .handle_command(
            Command::JoinCampaign {
                agent: "ann".into(),
                campaign: "demo".into(),
            },
            t0 + ms(300),
        )
        .unwrap();
    assert!(dialer.agent_view("ann", t0).unwrap().to_join.is_empty());
    preview(&mut dialer, "ann", PreviewAction::Next, t0 + ms(400));
    assert_eq!(shown(&events(&mut dialer), "ann").len(), 1);
}

#[test]
fn an_agent_who_leaves_a_progressive_campaign_gets_no_calls_from_it() {
    let t0 = Instant::now();
    let mut dialer = started("progressive", "", 3, false, t0);
    let first = dials(&effects(&mut dialer));
    assert_eq!(first.len(), 1, "1:1 for Ann");
    let leave = |dialer: &mut Dialer, campaign: &str| {
        dialer.handle_command(
            Command::LeaveCampaign {
                agent: "ann".into(),
                campaign: campaign.into(),
            },
            t0 + ms(100),
        )
    };
    assert!(matches!(
        leave(&mut dialer, "nope"),
        Err(CommandError::UnknownCampaign(_))
    ));
    leave(&mut dialer, "demo").unwrap();
    // The call in flight ends; nothing new is dialed while she is out.
    dialer.handle_input(
        Input::Failed {
            call: first[0],
            failure: Failure::Busy,
            sip_code: Some(486),
            retry_after: None,
        },
        t0 + ms(2000),
    );
    dialer.handle_timeout(t0 + ms(5000));
    assert!(dials(&effects(&mut dialer)).is_empty());
    // Leaving is per login: after logging in again she takes part.
    for command in [
        Command::AgentLogout {
            agent: "ann".into(),
        },
        Command::AgentLogin {
            agent: "ann".into(),
        },
    ] {
        dialer.handle_command(command, t0 + ms(6000)).unwrap();
    }
    assert!(dialer.agent_view("ann", t0).unwrap().to_join.is_empty());
}

#[test]
fn a_per_call_phone_is_rung_with_the_previewed_call_and_connected_at_the_answer() {
    let text = config_text()
        .replace("MODE", "preview")
        .replace("EXTRA", "")
        .replace(
            "sip_uri = \"sip:ann@127.0.0.1:5090\"",
            "sip_uri = \"sip:ann@127.0.0.1:5090\"\nconnection = \"per_call\"",
        )
        .replace(
            "campaigns = [\"demo\"]\nsimulated",
            "campaigns = []\nsimulated",
        );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let t0 = Instant::now();
    let mut dialer = Dialer::new(&config, t0);
    for command in [
        Command::AgentLogin {
            agent: "ann".into(),
        },
        Command::AgentReady {
            agent: "ann".into(),
        },
        Command::Campaign {
            name: "demo".into(),
            command: RunCommand::Start,
        },
    ] {
        dialer.handle_command(command, t0).unwrap();
    }
    effects(&mut dialer);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: vec![lease(1)],
            for_agent: None,
        },
        t0,
    );
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    effects(&mut dialer);
    preview(&mut dialer, "ann", PreviewAction::Call, t0 + ms(500));
    let dialed = effects(&mut dialer);
    let call = dials(&dialed)[0];
    let ring_ann = Effect::CallAgent {
        agent: "ann".into(),
    };
    assert!(dialed.contains(&ring_ann), "rung with the call: {dialed:?}");
    dialer.handle_input(Input::Ringing { call }, t0 + ms(600));
    effects(&mut dialer);
    // Her phone answers while the customer's rings: she hears the ringback.
    dialer.handle_input(
        Input::AgentLeg {
            agent: "ann".into(),
            up: true,
        },
        t0 + ms(900),
    );
    assert_eq!(
        effects(&mut dialer),
        vec![Effect::AgentRingback {
            agent: "ann".into(),
            call,
            on: true
        }]
    );
    // The customer answers: connected at once, no second ring.
    dialer.handle_input(Input::Answered { call }, t0 + ms(4000));
    dialer.handle_input(
        Input::Cpa {
            call,
            verdict: super::attempt::Verdict::Human {
                greeting_ended: t0 + ms(4600),
            },
            label: "human",
            at_ms: 600,
        },
        t0 + ms(4600),
    );
    let connected = effects(&mut dialer);
    assert!(
        connected.contains(&Effect::Connect {
            call,
            agent: "ann".into()
        }),
        "{connected:?}"
    );
    assert!(!connected.contains(&ring_ann), "{connected:?}");
}

#[test]
fn a_preview_call_waits_for_the_trunks_calls_per_second() {
    // One call a second on the trunk: the simulated agent's accepted
    // record took this second's start; Ann's Call is refused with the
    // reason until the next second.
    let t0 = Instant::now();
    let mut dialer = started_with(
        &config_text().replace("max_calls_per_second = 100", "max_calls_per_second = 1"),
        "push_preview",
        "preview_timeout_s = 20",
        3,
        true,
        t0,
    );
    assert_eq!(dials(&effects(&mut dialer)).len(), 1);
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "previewing");
    let refused = dialer.handle_command(
        Command::Preview {
            agent: "ann".into(),
            action: PreviewAction::Call,
            caller_id: None,
        },
        t0 + ms(500),
    );
    match refused {
        Err(CommandError::Unavailable(reason)) => {
            assert!(reason.contains("calls per second"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(dials(&effects(&mut dialer)).is_empty());
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "previewing");
    preview(&mut dialer, "ann", PreviewAction::Call, t0 + ms(1000));
    assert_eq!(dials(&effects(&mut dialer)).len(), 1);
}

#[test]
fn a_simulated_agent_accepts_again_when_the_trunk_frees() {
    // Load tests run push preview with simulated agents: one whose accept
    // found the second's call start taken calls its record a second later
    // instead of keeping it on screen until the timeout.
    let t0 = Instant::now();
    let text = config_text()
        .replace("max_calls_per_second = 100", "max_calls_per_second = 1")
        .replace("MODE", "push_preview")
        .replace("EXTRA", "preview_timeout_s = 60")
        .replace(
            "sip_uri = \"sip:ann@127.0.0.1:5090\"",
            "simulated = { wrap_up_s = 3, disposition = \"SALE\" }",
        );
    let config = Config::parse(&text, Path::new("outdial.toml")).unwrap();
    let mut dialer = Dialer::new(&config, t0);
    dialer
        .handle_command(
            Command::Campaign {
                name: "demo".into(),
                command: RunCommand::Start,
            },
            t0,
        )
        .unwrap();
    effects(&mut dialer);
    dialer.handle_input(
        Input::Leased {
            campaign: "demo".into(),
            leases: (1..=3).map(lease).collect(),
            for_agent: None,
        },
        t0,
    );
    assert_eq!(dials(&effects(&mut dialer)).len(), 1, "one start a second");
    let mut now = t0;
    let mut second = None;
    while let Some(at) = dialer.poll_timeout().filter(|at| *at <= t0 + ms(1500)) {
        now = at.max(now);
        dialer.handle_timeout(now);
        if !dials(&effects(&mut dialer)).is_empty() {
            second = Some(now);
            break;
        }
    }
    let second = second.expect("the second agent's call within 1.5 s");
    assert!(second >= t0 + ms(1000), "not before the next second");
}

#[test]
fn a_record_on_a_preview_agents_screen_counts_in_a_shared_trunks_demand() {
    use crate::pacing::trunk_share::TrunkDemand;
    // A node of preview agents asks for the lines its agents may call,
    // or the nodes with pacers would leave it only headroom.
    let t0 = Instant::now();
    let mut dialer = started_with(
        &config_text().replace(
            "max_calls_per_second = 100",
            "max_calls_per_second = 100\nshared_by_nodes = true",
        ),
        "preview",
        "",
        3,
        false,
        t0,
    );
    assert_eq!(
        dialer.trunk_demand(),
        TrunkDemand {
            in_use: 0,
            wanted: 0
        }
    );
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    assert_eq!(
        dialer.trunk_demand(),
        TrunkDemand {
            in_use: 0,
            wanted: 1
        }
    );
}

/// In the preview modes a repeat call that needs a guaranteed agent goes
/// through the hopper like any record (its agent is there before the dial)
/// and the agent is told it is one.
#[test]
fn a_previewed_repeat_call_says_so() {
    let t0 = Instant::now();
    let mut dialer = started("preview", "", 0, false, t0);
    lease_a_repeat_call(&mut dialer, t0);
    preview(&mut dialer, "ann", PreviewAction::Next, t0);
    let on_screen = dialer.agent_view("ann", t0).unwrap().preview.unwrap();
    assert_eq!(on_screen.record, "r1");
    assert!(on_screen.repeat_call);
    preview(&mut dialer, "ann", PreviewAction::Call, t0 + ms(1000));
    assert_eq!(dials(&effects(&mut dialer)).len(), 1);
    assert_eq!(dialer.agent_view("ann", t0).unwrap().state, "reserved");
}

/// A repeat call's reserved agent whose phone drops before the answer
/// hands the call to another Ready agent (who sees it and hears it ring);
/// with nobody left it is hung up before anyone answers — a live answer
/// must not find no agent a second time.
#[test]
fn a_repeat_calls_guarantee_passes_to_another_agent_or_the_call_is_hung_up() {
    let repeat_call = |dialer: &mut Dialer, now: Instant| -> CallId {
        lease_a_repeat_call(dialer, now);
        let calls = dials(&effects(dialer));
        assert_eq!(calls.len(), 1);
        dialer.handle_input(Input::Ringing { call: calls[0] }, now + ms(200));
        effects(dialer);
        events(dialer);
        calls[0]
    };
    let t0 = Instant::now();
    let state = |dialer: &Dialer, agent: &str| dialer.agent_view(agent, t0).unwrap().state;
    // Ann (idle longest) is reserved; the simulated agent is Ready too.
    let mut dialer = started("progressive", "", 0, true, t0);
    sim_ready_after_ann(&mut dialer, t0);
    let call = repeat_call(&mut dialer, t0 + ms(100));
    assert_eq!(
        (state(&dialer, "ann"), state(&dialer, "sim")),
        ("reserved", "ready")
    );
    // Ann's phone drops while it rings.
    dialer.reservation_leg("ann", false, t0 + ms(2000)).unwrap();
    assert_eq!(state(&dialer, "sim"), "reserved", "the guarantee passed on");
    let handed = effects(&mut dialer);
    assert!(
        handed.contains(&Effect::AgentRingback {
            agent: "sim".into(),
            call,
            on: true
        }),
        "{handed:?}"
    );
    assert!(!handed.contains(&Effect::HangUp { call }), "{handed:?}");
    let popped = events(&mut dialer)
        .into_iter()
        .any(|e| matches!(e, Event::ScreenPop { agent, pop } if agent == "sim" && pop.repeat_call));
    assert!(popped, "the new agent sees whom the call is for");
    // Ann alone: her phone drops, nobody is left, the call is hung up
    // unanswered.
    let mut dialer = started("progressive", "", 0, false, t0);
    let call = repeat_call(&mut dialer, t0 + ms(100));
    assert_eq!(state(&dialer, "ann"), "reserved");
    dialer.reservation_leg("ann", false, t0 + ms(3000)).unwrap();
    let gone = effects(&mut dialer);
    assert!(gone.contains(&Effect::HangUp { call }), "{gone:?}");
    let written = records(gone);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].outcome.result, AttemptResult::NoAnswer);
}
