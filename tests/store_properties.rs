//! Property tests: the hopper never returns a record outside its calling
//! window, on a DNC list, over its attempt limits, already leased (or with a
//! number already being dialed), or a personal callback to another agent.
//!
//! Twice: on the pure decision (`campaign::decide`, many cases), and on the
//! real store (SQLite and PostgreSQL) driven by random operation sequences
//! and checked against a model of the leases held.

mod store_common;

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use outdial::campaign::hopper::{Candidate, CandidatePhone, Decision, PendingCallback, decide};
use outdial::campaign::model::{Outcome, PhoneKind, RecordState};
use outdial::campaign::rules::CampaignRules;
use outdial::campaign::window::{CallingWindow, parse_zones};
use outdial::store::{AttemptResult, CallbackRequest, Lease, LeaseRequest, Store, StoreError};
use proptest::prelude::*;
use store_common::*;

const ZONES: [&str; 5] = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Kolkata",
    "America/New_York America/Chicago America/Denver America/Phoenix America/Los_Angeles",
];
const AGENTS: [&str; 2] = ["1001", "1002"];

fn window() -> impl Strategy<Value = CallingWindow> {
    (0u16..12 * 60, 60u16..12 * 60, any::<[bool; 7]>()).prop_map(|(start, len, mut days)| {
        if !days.contains(&true) {
            days[2] = true;
        }
        CallingWindow {
            start_min: start,
            end_min: start + len,
            days,
        }
    })
}

fn phone() -> impl Strategy<Value = CandidatePhone> {
    (
        0u32..6,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u32..4,
        prop::option::of(instant()),
    )
        .prop_map(
            |(n, dead, dnc, in_use, attempts, held_until)| CandidatePhone {
                e164: format!("+1202555010{n}"),
                position: n,
                attempts,
                dead: dead && n % 3 == 0,
                dnc: dnc && n % 2 == 0,
                in_use: in_use && n % 4 == 1,
                held_until,
            },
        )
}

fn candidate() -> impl Strategy<Value = Candidate> {
    (
        prop::sample::select(RecordState::ALL.to_vec()),
        any::<bool>(),
        0u32..7,
        prop::sample::select(ZONES.to_vec()),
        prop::collection::vec(phone(), 0..4),
        prop::option::of((
            prop::option::of(prop::sample::select(AGENTS.to_vec())),
            any::<bool>(),
        )),
        prop::collection::vec(instant(), 0..4),
    )
        .prop_map(
            |(state, leased, attempts, zones, mut phones, callback, recent)| {
                // A record's chain holds each number once (import and callbacks ensure it).
                let mut seen = HashSet::new();
                phones.retain(|p| seen.insert(p.e164.clone()));
                Candidate {
                    record_id: 1,
                    state,
                    leased,
                    attempts,
                    time_zones: zones.to_string(),
                    callback: callback.map(|(agent, own_phone)| PendingCallback {
                        id: 9,
                        agent: agent.map(str::to_string),
                        phone: (own_phone && !phones.is_empty()).then(|| phones[0].e164.clone()),
                    }),
                    phones,
                    recent_attempts: recent,
                }
            },
        )
}

fn instant() -> impl Strategy<Value = Timestamp> {
    // Any minute of 2026, DST changes included.
    (0i64..365 * 24 * 60).prop_map(|m| {
        "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(m)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn a_dial_decision_respects_every_rule(
        window in window(),
        max_attempts in 1u32..6,
        per_number in 1u32..4,
        per_day in prop::option::of(1u32..4),
        c in candidate(),
        agent in prop::option::of(prop::sample::select(AGENTS.to_vec())),
        now in instant(),
    ) {
        let mut rules = CampaignRules::with_defaults("p");
        rules.window = window;
        rules.max_attempts = max_attempts;
        rules.max_attempts_per_number = per_number;
        rules.max_attempts_per_day = per_day;
        if let Decision::Dial { phone } = decide(&rules, &c, agent, now) {
            let zones = parse_zones(&c.time_zones).unwrap();
            prop_assert!(rules.window.is_open(&zones, now), "outside the window");
            prop_assert!(c.state.is_dialable() && !c.leased, "not dialable or leased");
            let chosen = c.phones.iter().find(|p| p.e164 == phone).unwrap();
            prop_assert!(!chosen.dnc && !chosen.dead && !chosen.in_use);
            prop_assert!(
                chosen.held_until.is_none_or(|until| until <= now),
                "a number whose callee asked for a pause"
            );
            let is_callback = c.state == RecordState::Callback && c.callback.is_some();
            if is_callback {
                let cb = c.callback.as_ref().unwrap();
                if let Some(owner) = &cb.agent {
                    prop_assert_eq!(Some(owner.as_str()), agent, "personal callback to another agent");
                }
            } else {
                prop_assert!(c.attempts < rules.max_attempts, "over the record limit");
                prop_assert!(chosen.attempts < rules.max_attempts_per_number, "over the number limit");
                if let Some(limit) = per_day {
                    let today = c.recent_attempts.iter().filter(|&&at| {
                        zones.iter().any(|tz| at >= now.to_zoned(tz.clone()).start_of_day().unwrap().timestamp())
                    }).count();
                    prop_assert!(today < limit as usize, "over the daily limit: {} today", today);
                }
            }
        }
    }
}

/// One step of a random session against a real store.
#[derive(Debug, Clone)]
enum Op {
    Lease {
        agent: Option<&'static str>,
        max: usize,
    },
    /// Complete the n-th held lease with an outcome.
    Dial {
        nth: usize,
        outcome: Outcome,
    },
    /// Schedule a callback for the n-th held lease's record.
    Callback {
        nth: usize,
        in_mins: i64,
        personal: Option<&'static str>,
    },
    Dnc {
        number: u8,
    },
    Advance {
        mins: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop::option::of(prop::sample::select(AGENTS.to_vec())), 1usize..6)
            .prop_map(|(agent, max)| Op::Lease { agent, max }),
        4 => (0usize..8, prop::sample::select(Outcome::ALL.to_vec()))
            .prop_map(|(nth, outcome)| Op::Dial { nth, outcome }),
        1 => (0usize..8, 1i64..600, prop::option::of(prop::sample::select(AGENTS.to_vec())))
            .prop_map(|(nth, in_mins, personal)| Op::Callback { nth, in_mins, personal }),
        1 => (0u8..10).prop_map(|number| Op::Dnc { number }),
        2 => (1i64..900).prop_map(|mins| Op::Advance { mins }),
    ]
}

fn population() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    // Numbers come from a pool of 10 so that records share numbers.
    prop::collection::vec(
        (0..ZONES.len(), prop::collection::vec(0u8..10, 1..3)),
        1..10,
    )
}

fn number(n: u8) -> String {
    format!("+1202555020{n}")
}

fn run_session(
    store: &dyn Store,
    people: &[(usize, Vec<u8>)],
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut rules = CampaignRules::with_defaults("p");
    rules.max_attempts = 3;
    rules.max_attempts_per_number = 2;
    rules.max_attempts_per_day = Some(2);
    let rows: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, (zone, numbers))| {
            let mut r = row(i as u64 + 2, &format!("p{i}"), &[]);
            r.time_zones = ZONES[*zone].to_string();
            for n in numbers {
                if !r.phones.iter().any(|(_, e)| *e == number(*n)) {
                    r.phones.push((PhoneKind::Home, number(*n)));
                }
            }
            r
        })
        .collect();
    let campaign = campaign_with(store, &rules, &rows);
    let zones: HashMap<String, String> = rows
        .iter()
        .map(|r| (r.external_id.clone(), r.time_zones.clone()))
        .collect();
    let mut now: Timestamp = "2026-03-07T10:00:00Z".parse().unwrap();
    let mut held: Vec<Lease> = Vec::new();
    let mut dnc: HashSet<String> = HashSet::new();
    // record id → personal agent of its pending callback
    let mut personal: HashMap<i64, Option<String>> = HashMap::new();
    let mut attempts: HashMap<i64, u32> = HashMap::new();
    // Attempts that never reached the callee, per record: the first
    // `max_attempts` of them are given back.
    let mut not_reached: HashMap<i64, u32> = HashMap::new();
    let mut started: HashMap<i64, Vec<Timestamp>> = HashMap::new();
    for op in ops {
        match op {
            Op::Lease { agent, max } => {
                let leases = store
                    .lease(&LeaseRequest {
                        campaign,
                        node: "n",
                        agent: *agent,
                        max: *max,
                        now,
                        // Longer than any session: the model does not expire leases.
                        lease_for: SignedDuration::from_hours(24 * 400),
                        personal_only: false,
                        skip_agent_required: false,
                    })
                    .unwrap();
                for lease in leases {
                    let z = parse_zones(&zones[&lease.external_id]).unwrap();
                    prop_assert!(
                        rules.window.is_open(&z, now),
                        "outside the window: {lease:?} at {now}"
                    );
                    prop_assert!(!dnc.contains(&lease.phone), "DNC number leased: {lease:?}");
                    prop_assert!(
                        !held.iter().any(|h| h.record_id == lease.record_id),
                        "leased twice"
                    );
                    prop_assert!(
                        !held.iter().any(|h| h.phone == lease.phone),
                        "number dialed twice at once"
                    );
                    match personal.get(&lease.record_id) {
                        Some(Some(owner)) if lease.callback.is_some() => {
                            prop_assert_eq!(
                                Some(owner.as_str()),
                                *agent,
                                "personal callback to another agent"
                            )
                        }
                        _ => {}
                    }
                    if lease.callback.is_none() {
                        let done = attempts.get(&lease.record_id).copied().unwrap_or(0);
                        prop_assert!(done < rules.max_attempts, "over the attempt limit");
                        // Dials since the contact's local midnight (the
                        // earliest one when it has several zones).
                        let today = started.get(&lease.record_id).map_or(0, |s| {
                            s.iter()
                                .filter(|&&at| {
                                    z.iter().any(|tz| {
                                        at >= now
                                            .to_zoned(tz.clone())
                                            .start_of_day()
                                            .unwrap()
                                            .timestamp()
                                    })
                                })
                                .count()
                        });
                        prop_assert!(
                            today < 2,
                            "over the daily limit: {today} today, {lease:?} at {now}"
                        );
                    }
                    held.push(lease);
                }
            }
            Op::Dial { nth, outcome } => {
                if held.is_empty() {
                    continue;
                }
                let lease = held.remove(nth % held.len());
                // Checked again at the dial: a number put on DNC, or a window
                // closed, since the lease stops the call; the record is back
                // in the list.
                let z = parse_zones(&zones[&lease.external_id]).unwrap();
                let dialable = !dnc.contains(&lease.phone) && rules.window.is_open(&z, now);
                let attempt = match store.begin_attempt(&lease, now) {
                    Ok(attempt) => attempt,
                    Err(StoreError::NotDialable { .. }) if !dialable => continue,
                    Err(error) => {
                        return Err(TestCaseError::fail(format!(
                            "{lease:?} at {now} (dialable: {dialable}): {error}"
                        )));
                    }
                };
                prop_assert!(
                    dialable,
                    "dialed a number on DNC or outside its window: {lease:?} at {now}"
                );
                *attempts.entry(lease.record_id).or_default() += 1;
                if outcome.callee_not_reached() {
                    let so_far = not_reached.entry(lease.record_id).or_default();
                    *so_far += 1;
                    if *so_far <= rules.max_attempts {
                        *attempts.entry(lease.record_id).or_default() -= 1;
                    }
                }
                started.entry(lease.record_id).or_default().push(now);
                store
                    .complete_attempt(attempt, &AttemptResult::new(*outcome), now)
                    .unwrap();
                personal.remove(&lease.record_id);
            }
            Op::Callback {
                nth,
                in_mins,
                personal: agent,
            } => {
                if held.is_empty() {
                    continue;
                }
                let record = held[nth % held.len()].record_id;
                store
                    .schedule_callback(
                        &CallbackRequest {
                            record,
                            at: now + SignedDuration::from_mins(*in_mins),
                            phone: None,
                            agent: agent.map(str::to_string),
                        },
                        now,
                    )
                    .unwrap();
                personal.insert(record, agent.map(str::to_string));
            }
            Op::Dnc { number: n } => {
                store.add_dnc(Some(campaign), &number(*n), now).unwrap();
                dnc.insert(number(*n));
            }
            Op::Advance { mins } => now += SignedDuration::from_mins(*mins),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sqlite_hopper_sessions_respect_every_rule(people in population(), ops in prop::collection::vec(op(), 1..40)) {
        let store = sqlite_store();
        run_session(&*store, &people, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn postgres_hopper_sessions_respect_every_rule(people in population(), ops in prop::collection::vec(op(), 1..40)) {
        let store = postgres_store();
        run_session(&*store, &people, &ops)?;
    }
}
