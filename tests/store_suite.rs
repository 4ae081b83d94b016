//! One test suite, run against both backends (SQLite and PostgreSQL): import,
//! the hopper, attempts, retries, callbacks, DNC, recovery, export.

mod store_common;

use jiff::{SignedDuration, Timestamp};
use outdial::agent::activity::StateChange;
use outdial::campaign::model::{Disposition, DispositionEffect, Outcome, RecordState};
use outdial::pacing::ledger::WindowCounts;
use outdial::store::spool::{Replayed, RowSpool, SpooledRow, replay as replay_spool};
use outdial::store::{
    AttemptResult, AttemptView, CallbackFilter, CallbackRequest, ImportOutcome, Lease,
    LeaseRequest, NodeAbandonment, NodeClaim, NotDialable, Release, Store, StoreError,
};
use store_common::*;

fn request<'a>(campaign: i64, node: &'a str, max: usize, now: Timestamp) -> LeaseRequest<'a> {
    LeaseRequest {
        campaign,
        node,
        agent: None,
        max,
        now,
        lease_for: SignedDuration::from_mins(10),
        personal_only: false,
        skip_agent_required: false,
    }
}

fn lease_all(store: &dyn Store, campaign: i64, now: Timestamp) -> Vec<Lease> {
    store
        .lease(&request(campaign, "node-a", 1000, now))
        .unwrap()
}

fn state(store: &dyn Store, campaign: i64, id: &str) -> String {
    store.record(campaign, id).unwrap().unwrap().state
}

fn dial(store: &dyn Store, lease: &Lease, outcome: Outcome, now: Timestamp) -> RecordState {
    let attempt = store.begin_attempt(lease, now).unwrap();
    store
        .complete_attempt(attempt, &AttemptResult::new(outcome), now)
        .unwrap()
}

/// The campaign's pending callbacks, by id.
fn pending_callbacks(store: &dyn Store, campaign: i64) -> Vec<i64> {
    let filter = CallbackFilter {
        campaign: Some(campaign),
        ..CallbackFilter::default()
    };
    store
        .callbacks(&filter)
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect()
}

/// Campaign `c` with one record `r0`, called once (a person) and given a
/// campaign callback (on `phone`, else its own number) due an hour after;
/// returns the campaign, the callback and when it is due.
fn a_called_record_with_a_callback(
    store: &dyn Store,
    phone: Option<&str>,
) -> (i64, i64, Timestamp) {
    let campaign = campaign_with(store, &always_open("c"), &rows(1));
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    for lease in lease_all(store, campaign, at(0)) {
        dial(store, &lease, Outcome::Human, at(0));
    }
    let record = store.record(campaign, "r0").unwrap().unwrap();
    let callback = store
        .schedule_callback(
            &CallbackRequest {
                record: record.id,
                at: at(3600),
                phone: phone.map(str::to_string),
                agent: None,
            },
            at(10),
        )
        .unwrap();
    (campaign, callback, at(3600))
}

/// The campaign's attempt rows, as the CDR export gives them.
fn attempt_rows(store: &dyn Store, campaign: i64) -> Vec<AttemptView> {
    let mut rows = Vec::new();
    store
        .export_attempts(campaign, &mut |a| {
            rows.push(a);
            Ok(())
        })
        .unwrap();
    rows
}

fn import_is_idempotent_and_reports_duplicates(store: TestStore) {
    let campaign = store.sync_campaign(&rules("c")).unwrap();
    let mut list = vec![
        row(2, "a", &["+12025550101"]),
        row(3, "b", &["+12025550102", "+12025550103"]),
        row(4, "a", &["+12025550109"]),
    ];
    let run = store.begin_import(campaign, noon_ny()).unwrap();
    let outcomes = store.import_batch(campaign, run, &list).unwrap();
    assert_eq!(
        outcomes,
        vec![
            ImportOutcome::Inserted,
            ImportOutcome::Inserted,
            ImportOutcome::Duplicate
        ]
    );
    // A duplicate in a later batch of the same run is caught too.
    let later = store
        .import_batch(campaign, run, &[row(9, "b", &["+12025550104"])])
        .unwrap();
    assert_eq!(later, vec![ImportOutcome::Duplicate]);
    // Re-import: updates, never duplicates; the chain follows the file.
    list[1].name = "Renamed".into();
    list[1].phones.pop();
    let run = store.begin_import(campaign, noon_ny()).unwrap();
    let outcomes = store.import_batch(campaign, run, &list[..2]).unwrap();
    assert_eq!(
        outcomes,
        vec![ImportOutcome::Updated, ImportOutcome::Updated]
    );
    let b = store.record(campaign, "b").unwrap().unwrap();
    assert_eq!(b.name, "Renamed");
    assert_eq!(b.phones, vec!["+12025550102".to_string()]);
    let counts = store.counts(campaign).unwrap();
    assert_eq!(counts, vec![("new".to_string(), 2)]);
}

fn leases_in_priority_order_and_never_twice(store: TestStore) {
    let mut list = rows(5);
    list[3].priority = 9;
    let campaign = campaign_with(&*store, &rules("c"), &list);
    let first = store
        .lease(&request(campaign, "node-a", 2, noon_ny()))
        .unwrap();
    let ids: Vec<&str> = first.iter().map(|l| l.external_id.as_str()).collect();
    assert_eq!(ids, vec!["r3", "r0"]);
    let other = store.reopen();
    let second = other
        .lease(&request(campaign, "node-b", 10, noon_ny()))
        .unwrap();
    let ids: Vec<&str> = second.iter().map(|l| l.external_id.as_str()).collect();
    assert_eq!(ids, vec!["r1", "r2", "r4"]);
    assert!(lease_all(&*store, campaign, noon_ny()).is_empty());
    assert_eq!(state(&*store, campaign, "r3"), "leased");
}

fn the_calling_window_is_honoured_and_closed_records_wait(store: TestStore) {
    let campaign = campaign_with(&*store, &rules("c"), &rows(3));
    // 03:00 in New York: nothing, and the records wait for 08:00.
    let night: Timestamp = "2026-07-15T07:00:00Z".parse().unwrap();
    assert!(lease_all(&*store, campaign, night).is_empty());
    let r0 = store.record(campaign, "r0").unwrap().unwrap();
    assert_eq!(
        r0.next_at,
        "2026-07-15T12:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
    let opening: Timestamp = "2026-07-15T12:00:00Z".parse().unwrap();
    assert_eq!(lease_all(&*store, campaign, opening).len(), 3);
}

fn dnc_is_checked_at_dial_time(store: TestStore) {
    let list = vec![
        row(2, "a", &["+12025550101"]),
        row(3, "b", &["+12025550102", "+12025550103"]),
        row(4, "c", &["+12025550104"]),
    ];
    let campaign = campaign_with(&*store, &rules("c"), &list);
    let other = store.sync_campaign(&rules("other")).unwrap();
    store.add_dnc(None, "+12025550101", noon_ny()).unwrap();
    store
        .add_dnc(Some(campaign), "+12025550102", noon_ny())
        .unwrap();
    store
        .add_dnc(Some(other), "+12025550104", noon_ny())
        .unwrap();
    assert!(store.is_dnc(campaign, "+12025550101").unwrap());
    assert!(!store.is_dnc(campaign, "+12025550104").unwrap());
    let leases = lease_all(&*store, campaign, noon_ny());
    let got: Vec<(&str, &str)> = leases
        .iter()
        .map(|l| (l.external_id.as_str(), l.phone.as_str()))
        .collect();
    assert_eq!(got, vec![("b", "+12025550103"), ("c", "+12025550104")]);
    assert_eq!(state(&*store, campaign, "a"), "removed");
    assert!(matches!(
        store.add_dnc(None, "12345", noon_ny()),
        Err(StoreError::BadNumber(_))
    ));
    // In bulk: new ones counted, one bad number writes nothing.
    let many = vec![
        "+12025550101".to_string(),
        "+12025550107".to_string(),
        "+12025550108".to_string(),
    ];
    assert_eq!(store.add_dnc_many(None, &many, noon_ny()).unwrap(), 2);
    assert!(store.is_dnc(campaign, "+12025550108").unwrap());
    let bad = vec!["+12025550109".to_string(), "oops".to_string()];
    assert!(matches!(
        store.add_dnc_many(None, &bad, noon_ny()),
        Err(StoreError::BadNumber(_))
    ));
    assert!(!store.is_dnc(campaign, "+12025550109").unwrap());
}

/// A leased record waits in the engine's buffer or on a preview screen
/// (its lease extended) before its call is placed: a number put on a DNC
/// list, or a calling window that closed, meanwhile stops the dial, and
/// the record goes back to the list for the hopper to decide.
fn a_number_put_on_dnc_or_a_window_closing_after_the_lease_stops_the_dial(store: TestStore) {
    let campaign = campaign_with(&*store, &rules("c"), &rows(3));
    // 20:55 in New York, five minutes before the window closes.
    let late: Timestamp = "2026-07-16T00:55:00Z".parse().unwrap();
    let at = |minutes: i64| late + SignedDuration::from_mins(minutes);
    let leases = lease_all(&*store, campaign, late);
    assert_eq!(leases.len(), 3);
    store
        .add_dnc(Some(campaign), &leases[0].phone, at(1))
        .unwrap();
    assert!(matches!(
        store.begin_attempt(&leases[0], at(2)),
        Err(StoreError::NotDialable {
            reason: NotDialable::DoNotCall,
            ..
        })
    ));
    // Inside the window, off every list: dialed.
    store.begin_attempt(&leases[1], at(2)).unwrap();
    // 21:01: too late for the last one.
    assert!(matches!(
        store.begin_attempt(&leases[2], at(6)),
        Err(StoreError::NotDialable {
            reason: NotDialable::WindowClosed,
            ..
        })
    ));
    // Neither was counted as an attempt, and both are back in the list.
    for id in ["r0", "r2"] {
        let record = store.record(campaign, id).unwrap().unwrap();
        assert_eq!((record.state.as_str(), record.attempts), ("new", 0), "{id}");
    }
    assert_eq!(attempt_rows(&*store, campaign).len(), 1);
    // The other waits for 08:00; the next lease removes the DNC record.
    let opening: Timestamp = "2026-07-16T12:00:00Z".parse().unwrap();
    let r2 = store.record(campaign, "r2").unwrap().unwrap();
    assert_eq!(r2.next_at, opening.as_millisecond());
    assert!(lease_all(&*store, campaign, at(7)).is_empty());
    assert_eq!(state(&*store, campaign, "r0"), "removed");
    let next_morning = lease_all(&*store, campaign, opening);
    let ids: Vec<&str> = next_morning
        .iter()
        .map(|l| l.external_id.as_str())
        .collect();
    assert_eq!(ids, vec!["r2"]);
}

/// A callback scheduled while its record is leased (on a preview screen)
/// and the lease then ends without a call (skipped, stopped at the dial):
/// the callback is due at its time, not at once.
fn a_callback_scheduled_on_a_leased_record_waits_for_its_time(store: TestStore) {
    let campaign = campaign_with(&*store, &always_open("c"), &rows(2));
    let at = |mins: i64| noon_ny() + SignedDuration::from_mins(mins);
    let leases = lease_all(&*store, campaign, at(0));
    for (lease, how) in leases.iter().zip([Release::Unused, Release::Declined]) {
        store
            .schedule_callback(
                &CallbackRequest {
                    record: lease.record_id,
                    at: at(60),
                    phone: None,
                    agent: None,
                },
                at(1),
            )
            .unwrap();
        store.release(lease, how, at(2)).unwrap();
        assert_eq!(state(&*store, campaign, &lease.external_id), "callback");
    }
    assert!(
        lease_all(&*store, campaign, at(3)).is_empty(),
        "not due yet"
    );
    let due = lease_all(&*store, campaign, at(60));
    assert_eq!(due.len(), 2, "{due:?}");
    assert!(due.iter().all(|l| l.callback.is_some()), "{due:?}");
}

/// Preview's "call back later": the callback and the lease given back in
/// one transaction, only while the lease is this node's.
fn a_postponed_record_waits_for_its_callback_and_needs_its_lease(store: TestStore) {
    let campaign = campaign_with(&*store, &always_open("c"), &rows(1));
    let at = |mins: i64| noon_ny() + SignedDuration::from_mins(mins);
    let lease = lease_all(&*store, campaign, at(0)).remove(0);
    let request = CallbackRequest {
        record: lease.record_id,
        at: at(60),
        phone: None,
        agent: Some("1001".into()),
    };
    let mut stranger = lease.clone();
    stranger.node = "another-node".into();
    assert!(matches!(
        store.postpone(&stranger, &request, at(1)),
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(
        pending_callbacks(&*store, campaign).is_empty(),
        "nothing written"
    );
    store.postpone(&lease, &request, at(1)).unwrap();
    assert_eq!(state(&*store, campaign, "r0"), "callback");
    assert!(
        lease_all(&*store, campaign, at(2)).is_empty(),
        "not due yet"
    );
    let mut personal = request_for_agent(campaign, "1001", at(60));
    personal.personal_only = true;
    let due = store.lease(&personal).unwrap();
    assert_eq!(due.len(), 1, "due to its agent at its time");
    assert_eq!(due[0].callback_agent.as_deref(), Some("1001"));
}

fn request_for_agent<'a>(campaign: i64, agent: &'a str, now: Timestamp) -> LeaseRequest<'a> {
    LeaseRequest {
        agent: Some(agent),
        ..request(campaign, "node-a", 10, now)
    }
}

fn busy_is_retried_after_its_delay_and_limits_exhaust(store: TestStore) {
    let mut rules = rules("c");
    rules.max_attempts = 2;
    let campaign = campaign_with(&*store, &rules, &[row(2, "a", &["+12025550101"])]);
    let lease = lease_all(&*store, campaign, noon_ny()).remove(0);
    assert_eq!(
        dial(&*store, &lease, Outcome::Busy, noon_ny()),
        RecordState::Retry
    );
    let soon = noon_ny() + SignedDuration::from_secs(299);
    assert!(lease_all(&*store, campaign, soon).is_empty());
    let later = noon_ny() + SignedDuration::from_secs(300);
    let lease = lease_all(&*store, campaign, later).remove(0);
    assert_eq!(lease.attempts, 1);
    assert_eq!(
        dial(&*store, &lease, Outcome::NoAnswer, later),
        RecordState::Exhausted
    );
    let much_later = later + SignedDuration::from_hours(5);
    assert!(lease_all(&*store, campaign, much_later).is_empty());
}

/// A 403 of a wrong trunk password, a 503 or no response at all never rang
/// the callee: such an attempt does not spend the record's (or the
/// number's) attempts — up to `max_attempts` of them, so a number that never
/// gets through still ends. An answered call that then failed counts.
fn attempts_the_callee_never_saw_are_given_back(store: TestStore) {
    let mut rules = rules("c");
    rules.max_attempts = 2;
    rules.max_attempts_per_number = 2;
    let campaign = campaign_with(&*store, &rules, &[row(2, "a", &["+12025550101"])]);
    let mut now = noon_ny();
    let next = |now: &mut Timestamp| {
        *now += SignedDuration::from_secs(301);
        lease_all(&*store, campaign, *now).remove(0)
    };
    let lease = lease_all(&*store, campaign, now).remove(0);
    assert_eq!(
        dial(&*store, &lease, Outcome::TrunkRefused, now),
        RecordState::Retry
    );
    let lease = next(&mut now);
    assert_eq!(lease.attempts, 0, "a refused call is given back");
    assert_eq!(
        dial(&*store, &lease, Outcome::Congestion, now),
        RecordState::Retry
    );
    let lease = next(&mut now);
    assert_eq!(lease.attempts, 0, "so is a 503");
    // The third call that never got through counts (max_attempts = 2).
    dial(&*store, &lease, Outcome::NetworkFailure, now);
    let lease = next(&mut now);
    assert_eq!(lease.attempts, 1);
    // Answered, then the media died: the callee picked up, it counts.
    let attempt = store.begin_attempt(&lease, now).unwrap();
    let mut answered = AttemptResult::new(Outcome::NetworkFailure);
    answered.ring_ms = Some(4_000);
    assert_eq!(
        store.complete_attempt(attempt, &answered, now).unwrap(),
        RecordState::Exhausted
    );
}

/// A busy callee's "call me again after" (486 with Retry-After) holds the
/// record at least that long — a day at most — when it is longer than the
/// campaign's busy delay.
fn a_callees_retry_after_holds_the_record(store: TestStore) {
    let campaign = campaign_with(
        &*store,
        &rules("c"),
        &[
            row(2, "a", &["+12025550101"]),
            row(3, "b", &["+12025550102"]),
        ],
    );
    let leases = lease_all(&*store, campaign, noon_ny());
    for (lease, wait) in leases.iter().zip([
        SignedDuration::from_hours(2),
        SignedDuration::from_hours(24 * 30),
    ]) {
        let attempt = store.begin_attempt(lease, noon_ny()).unwrap();
        let mut busy = AttemptResult::new(Outcome::Busy);
        busy.callee_retry_after = Some(wait);
        assert_eq!(
            store.complete_attempt(attempt, &busy, noon_ny()).unwrap(),
            RecordState::Retry
        );
    }
    let after_busy_delay = noon_ny() + SignedDuration::from_mins(30);
    assert!(lease_all(&*store, campaign, after_busy_delay).is_empty());
    let in_two_hours = noon_ny() + SignedDuration::from_hours(2);
    let due: Vec<String> = lease_all(&*store, campaign, in_two_hours)
        .into_iter()
        .map(|l| l.external_id)
        .collect();
    assert_eq!(due, ["a"]);
    // A month's Retry-After is cut to a day ("a", whose lease lapses
    // unused, is leased again on the way).
    let due_at = |at: Timestamp| -> Vec<String> {
        lease_all(&*store, campaign, at)
            .into_iter()
            .map(|l| l.external_id)
            .collect()
    };
    let next_day = noon_ny() + SignedDuration::from_hours(24);
    assert_eq!(due_at(next_day - SignedDuration::from_mins(1)), ["a"]);
    assert_eq!(due_at(next_day), ["b"]);
}

fn a_callees_retry_after_holds_that_number_not_the_others(store: TestStore) {
    let campaign = campaign_with(
        &*store,
        &rules("c"),
        &[row(2, "a", &["+12025550101", "+12025550102"])],
    );
    let lease = lease_all(&*store, campaign, noon_ny()).remove(0);
    assert_eq!(lease.phone, "+12025550101");
    let attempt = store.begin_attempt(&lease, noon_ny()).unwrap();
    let mut busy = AttemptResult::new(Outcome::Busy);
    busy.callee_retry_after = Some(SignedDuration::from_hours(2));
    store.complete_attempt(attempt, &busy, noon_ny()).unwrap();
    // After the busy retry delay the other number is dialed, not held
    // for the first one's two hours.
    let after_busy_delay = noon_ny() + SignedDuration::from_mins(30);
    let lease = lease_all(&*store, campaign, after_busy_delay).remove(0);
    assert_eq!(lease.phone, "+12025550102");
    // It is busy too, asking one hour: the record waits for the first
    // number that is free again (the first's two hours end sooner).
    let attempt = store.begin_attempt(&lease, after_busy_delay).unwrap();
    let mut busy = AttemptResult::new(Outcome::Busy);
    busy.callee_retry_after = Some(SignedDuration::from_hours(3));
    store
        .complete_attempt(attempt, &busy, after_busy_delay)
        .unwrap();
    let in_two_hours = noon_ny() + SignedDuration::from_hours(2);
    assert!(
        lease_all(
            &*store,
            campaign,
            in_two_hours - SignedDuration::from_mins(1)
        )
        .is_empty()
    );
    let lease = lease_all(&*store, campaign, in_two_hours).remove(0);
    assert_eq!(lease.phone, "+12025550101");
}

fn sit_numbers_are_never_redialed_and_the_chain_moves_on(store: TestStore) {
    let campaign = campaign_with(
        &*store,
        &rules("c"),
        &[row(2, "a", &["+12025550101", "+12025550102"])],
    );
    let lease = lease_all(&*store, campaign, noon_ny()).remove(0);
    assert_eq!(lease.phone, "+12025550101");
    assert_eq!(
        dial(&*store, &lease, Outcome::Sit, noon_ny()),
        RecordState::Retry
    );
    let lease = lease_all(&*store, campaign, noon_ny()).remove(0);
    assert_eq!(lease.phone, "+12025550102");
    assert_eq!(
        dial(&*store, &lease, Outcome::InvalidNumber, noon_ny()),
        RecordState::Exhausted
    );
}

fn one_number_is_never_dialed_twice_at_once(store: TestStore) {
    let list = vec![
        row(2, "a", &["+12025550101"]),
        row(3, "b", &["+12025550101"]),
    ];
    let campaign = campaign_with(&*store, &rules("c"), &list);
    let leases = lease_all(&*store, campaign, noon_ny());
    assert_eq!(leases.len(), 1);
    assert!(lease_all(&*store, campaign, noon_ny()).is_empty());
    dial(&*store, &leases[0], Outcome::Human, noon_ny());
    let next = lease_all(&*store, campaign, noon_ny());
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].external_id, "b");
}

fn callbacks_personal_and_campaign(store: TestStore) {
    let list = vec![
        row(2, "a", &["+12025550101"]),
        row(3, "b", &["+12025550102"]),
    ];
    let campaign = campaign_with(&*store, &rules("c"), &list);
    let leases = lease_all(&*store, campaign, noon_ny());
    let (a, b) = (&leases[0], &leases[1]);
    assert!(matches!(
        store.schedule_callback(
            &CallbackRequest {
                record: a.record_id,
                at: noon_ny(),
                phone: None,
                agent: None
            },
            noon_ny()
        ),
        Err(StoreError::CallbackInPast { .. })
    ));
    let in_an_hour = noon_ny() + SignedDuration::from_hours(1);
    // Scheduled during the call; the completion keeps it.
    store
        .schedule_callback(
            &CallbackRequest {
                record: a.record_id,
                at: in_an_hour,
                phone: Some("+12025550199".into()),
                agent: Some("1001".into()),
            },
            noon_ny(),
        )
        .unwrap();
    assert_eq!(
        dial(&*store, a, Outcome::Human, noon_ny()),
        RecordState::Callback
    );
    dial(&*store, b, Outcome::Human, noon_ny());
    let b_callback = store
        .schedule_callback(
            &CallbackRequest {
                record: b.record_id,
                at: in_an_hour,
                phone: None,
                agent: None,
            },
            noon_ny(),
        )
        .unwrap();
    assert!(
        lease_all(&*store, campaign, noon_ny()).is_empty(),
        "not due yet"
    );
    let due = in_an_hour + SignedDuration::from_mins(1);
    let mut any = request(campaign, "node-a", 10, due);
    any.agent = Some("1002");
    let got = store.lease(&any).unwrap();
    assert_eq!(got.len(), 1, "agent 1002 gets the campaign callback only");
    assert_eq!(got[0].external_id, "b");
    assert_eq!(got[0].callback, Some(b_callback));
    store.release(&got[0], Release::Unused, due).unwrap();
    store.cancel_callback(b_callback, due).unwrap();
    assert_eq!(state(&*store, campaign, "b"), "retry");
    // The engine's poll for an agent's personal callbacks: nothing else.
    let mut only = request(campaign, "node-a", 10, due);
    only.personal_only = true;
    only.agent = Some("1002");
    assert!(store.lease(&only).unwrap().is_empty());
    only.agent = Some("1001");
    let got = store.lease(&only).unwrap();
    let ids: Vec<&str> = got.iter().map(|l| l.external_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["a"],
        "b (due for anyone) is not a personal callback"
    );
    store.release(&got[0], Release::Unused, due).unwrap();
    let mut mine = request(campaign, "node-a", 10, due);
    mine.agent = Some("1001");
    let got = store.lease(&mine).unwrap();
    let a_lease = got
        .iter()
        .find(|l| l.external_id == "a")
        .expect("personal callback");
    assert_eq!(a_lease.phone, "+12025550199");
    assert_eq!(a_lease.callback_agent.as_deref(), Some("1001"));
}

fn pending_callbacks_are_listed_by_campaign_and_agent(store: TestStore) {
    let c1 = campaign_with(
        &*store,
        &rules("c1"),
        &[
            row(2, "a", &["+12025550101"]),
            row(3, "b", &["+12025550102"]),
        ],
    );
    let c2 = campaign_with(&*store, &rules("c2"), &[row(2, "z", &["+12025550109"])]);
    let record = |campaign, id| store.record(campaign, id).unwrap().unwrap().id;
    let in_hours = |h| noon_ny() + SignedDuration::from_hours(h);
    let schedule = |record, at, phone: Option<&str>, agent: Option<&str>| {
        store
            .schedule_callback(
                &CallbackRequest {
                    record,
                    at,
                    phone: phone.map(String::from),
                    agent: agent.map(String::from),
                },
                noon_ny(),
            )
            .unwrap()
    };
    let a = schedule(record(c1, "a"), in_hours(3), None, Some("1001"));
    let b = schedule(record(c1, "b"), in_hours(1), Some("+12025550188"), None);
    let z = schedule(record(c2, "z"), in_hours(2), None, Some("1001"));
    let ids = |filter: CallbackFilter| -> Vec<i64> {
        store
            .callbacks(&filter)
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect()
    };
    assert_eq!(
        ids(CallbackFilter::default()),
        vec![b, z, a],
        "soonest first"
    );
    assert_eq!(
        ids(CallbackFilter {
            campaign: Some(c1),
            ..Default::default()
        }),
        vec![b, a]
    );
    assert_eq!(
        ids(CallbackFilter {
            agent: Some("1001".into()),
            ..Default::default()
        }),
        vec![z, a]
    );
    assert_eq!(
        ids(CallbackFilter {
            campaign: Some(c2),
            agent: Some("1001".into()),
            limit: 1,
            ..Default::default()
        }),
        vec![z]
    );
    let listed = store
        .callbacks(&CallbackFilter {
            id: Some(b),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].external_id, "b");
    assert_eq!(listed[0].campaign, "c1");
    assert_eq!(listed[0].at, in_hours(1));
    assert_eq!(listed[0].phone.as_deref(), Some("+12025550188"));
    assert_eq!(listed[0].agent, None);
    // Changed: listed with the new time and agent; cancelled: gone.
    store
        .change_callback(
            b,
            &CallbackRequest {
                record: record(c1, "b"),
                at: in_hours(4),
                phone: None,
                agent: Some("1002".into()),
            },
            noon_ny(),
        )
        .unwrap();
    store.cancel_callback(z, noon_ny()).unwrap();
    let all = store.callbacks(&CallbackFilter::default()).unwrap();
    let summary: Vec<(i64, Option<&str>)> =
        all.iter().map(|c| (c.id, c.agent.as_deref())).collect();
    assert_eq!(summary, vec![(a, Some("1001")), (b, Some("1002"))]);
    assert_eq!(all[1].at, in_hours(4));
}

fn change_and_cancel_callbacks(store: TestStore) {
    let campaign = campaign_with(&*store, &rules("c"), &[row(2, "a", &["+12025550101"])]);
    let record = store.record(campaign, "a").unwrap().unwrap().id;
    let at = noon_ny() + SignedDuration::from_hours(2);
    let id = store
        .schedule_callback(
            &CallbackRequest {
                record,
                at,
                phone: None,
                agent: None,
            },
            noon_ny(),
        )
        .unwrap();
    assert_eq!(state(&*store, campaign, "a"), "callback");
    let earlier = noon_ny() + SignedDuration::from_hours(1);
    let change = CallbackRequest {
        record,
        at: earlier,
        phone: None,
        agent: None,
    };
    store.change_callback(id, &change, noon_ny()).unwrap();
    let past = CallbackRequest {
        record,
        at: noon_ny() - SignedDuration::from_secs(1),
        phone: None,
        agent: None,
    };
    assert!(matches!(
        store.change_callback(id, &past, noon_ny()),
        Err(StoreError::CallbackInPast { .. })
    ));
    assert_eq!(
        store.record(campaign, "a").unwrap().unwrap().next_at,
        earlier.as_millisecond()
    );
    store.cancel_callback(id, noon_ny()).unwrap();
    assert_eq!(state(&*store, campaign, "a"), "new");
    assert!(matches!(
        store.cancel_callback(id, noon_ny()),
        Err(StoreError::UnknownCallback(_))
    ));
}

fn declined_goes_back_to_the_top(store: TestStore) {
    let campaign = campaign_with(&*store, &rules("c"), &rows(3));
    let first = store
        .lease(&request(campaign, "n", 1, noon_ny()))
        .unwrap()
        .remove(0);
    let second = store
        .lease(&request(campaign, "n", 1, noon_ny()))
        .unwrap()
        .remove(0);
    assert_eq!(
        (first.external_id.as_str(), second.external_id.as_str()),
        ("r0", "r1")
    );
    store
        .release(&second, Release::Declined, noon_ny())
        .unwrap();
    let next = store
        .lease(&request(campaign, "n", 1, noon_ny()))
        .unwrap()
        .remove(0);
    assert_eq!(next.external_id, "r1");
}

fn removed_and_do_not_call_in_preview_are_never_leased_again(store: TestStore) {
    let list = vec![
        row(2, "a", &["+12025550101"]),
        row(3, "b", &["+12025550102"]),
        row(4, "c", &["+12025550103"]),
    ];
    let campaign = campaign_with(&*store, &rules("c"), &list);
    let leases = lease_all(&*store, campaign, noon_ny());
    assert_eq!(leases.len(), 3);
    store
        .release(&leases[0], Release::Removed, noon_ny())
        .unwrap();
    store
        .release(&leases[1], Release::DoNotCall, noon_ny())
        .unwrap();
    store
        .release(&leases[2], Release::Unused, noon_ny())
        .unwrap();
    assert_eq!(state(&*store, campaign, "a"), "removed");
    assert_eq!(state(&*store, campaign, "b"), "removed");
    assert!(!store.is_dnc(campaign, "+12025550101").unwrap());
    assert!(store.is_dnc(campaign, "+12025550102").unwrap());
    // Only the one given back unused comes round again.
    let again = lease_all(&*store, campaign, noon_ny());
    let ids: Vec<&str> = again.iter().map(|l| l.external_id.as_str()).collect();
    assert_eq!(ids, vec!["c"]);
    // A lease no longer held cannot be removed.
    assert!(matches!(
        store.release(&leases[0], Release::Removed, noon_ny()),
        Err(StoreError::LeaseLost { .. })
    ));
}

fn a_crash_resolves_in_flight_attempts_without_redialing(store: TestStore) {
    let campaign = campaign_with(&*store, &rules("c"), &rows(2));
    let leases = lease_all(&*store, campaign, noon_ny());
    let attempt = store.begin_attempt(&leases[0], noon_ny()).unwrap();
    // The node crashes; on restart it resolves what it left.
    let restart = noon_ny() + SignedDuration::from_secs(30);
    let recovery = store.recover_node("node-a", restart).unwrap();
    assert_eq!(
        (recovery.interrupted_attempts, recovery.released_leases),
        (1, 1)
    );
    assert!(!store.attempt_written(attempt).unwrap());
    // The recovery's guess does not end the attempt a second time.
    assert!(matches!(
        store.complete_attempt(attempt, &AttemptResult::new(Outcome::Interrupted), restart),
        Err(StoreError::AttemptAlreadyComplete(_))
    ));
    let again = lease_all(&*store, campaign, restart);
    let ids: Vec<&str> = again.iter().map(|l| l.external_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["r1"],
        "the interrupted record waits for its retry delay"
    );
    let r0 = store.record(campaign, "r0").unwrap().unwrap();
    assert_eq!(r0.state, "retry");
    assert_eq!(r0.last_outcome.as_deref(), Some("interrupted"));
    assert_eq!(r0.attempts, 1);
}

fn another_nodes_lapsed_lease_is_resolved(store: TestStore) {
    let campaign = campaign_with(&*store, &rules("c"), &rows(1));
    let lease = lease_all(&*store, campaign, noon_ny()).remove(0);
    store.begin_attempt(&lease, noon_ny()).unwrap();
    let other = store.reopen();
    let after = noon_ny() + SignedDuration::from_mins(11);
    let recovery = other.expire_leases(after).unwrap();
    assert_eq!(recovery.interrupted_attempts, 1);
    assert!(matches!(
        store.begin_attempt(&lease, after),
        Err(StoreError::LeaseLost { .. })
    ));
}

fn dispositions_and_dnc_disposition(store: TestStore) {
    let campaign = campaign_with(&*store, &rules("c"), &rows(2));
    let codes: Vec<String> = store
        .dispositions(campaign)
        .unwrap()
        .into_iter()
        .map(|d| d.code)
        .collect();
    for code in [
        "A", "B", "FAX", "NA", "SALE", "VM", "DROP", "INVALID", "DNC",
    ] {
        assert!(codes.contains(&code.to_string()), "{code}");
    }
    store
        .add_disposition(
            campaign,
            &Disposition {
                code: "NI".into(),
                label: "Not interested".into(),
                effect: DispositionEffect::Final,
            },
        )
        .unwrap();
    let leases = lease_all(&*store, campaign, noon_ny());
    let attempt = store.begin_attempt(&leases[0], noon_ny()).unwrap();
    let mut result = AttemptResult::new(Outcome::Human);
    result.disposition = Some("DNC".into());
    result.agent = Some("1001".into());
    result.sip_code = Some(200);
    result.guide_answers = Some(r#"[{"question":"q1","answer":"Yes"}]"#.into());
    result.talk_ms = Some(95_000);
    result.hold_ms = Some(12_500);
    result.recording_paused_ms = Some(4_000);
    result.transferred_from = Some(r#"["1000"]"#.into());
    result.transferred_to = Some("+15557770001".into());
    assert_eq!(
        store.complete_attempt(attempt, &result, noon_ny()).unwrap(),
        RecordState::Removed
    );
    assert!(store.is_dnc(campaign, &leases[0].phone).unwrap());
    let attempt = store.begin_attempt(&leases[1], noon_ny()).unwrap();
    result.disposition = Some("BOGUS".into());
    assert!(matches!(
        store.complete_attempt(attempt, &result, noon_ny()),
        Err(StoreError::UnknownDisposition(_))
    ));
    result.disposition = Some("NI".into());
    assert_eq!(
        store.complete_attempt(attempt, &result, noon_ny()).unwrap(),
        RecordState::Done
    );
    let cdr = attempt_rows(&*store, campaign);
    assert_eq!(cdr.len(), 2);
    assert_eq!(cdr[0].disposition.as_deref(), Some("DNC"));
    assert_eq!(cdr[0].agent.as_deref(), Some("1001"));
    assert_eq!(
        cdr[0].guide_answers.as_deref(),
        Some(r#"[{"question":"q1","answer":"Yes"}]"#)
    );
    assert_eq!(cdr[0].sip_code, Some(200));
    assert_eq!(
        (cdr[0].talk_ms, cdr[0].hold_ms),
        (Some(95_000), Some(12_500))
    );
    assert_eq!(cdr[0].recording_paused_ms, Some(4_000));
    assert_eq!(cdr[0].transferred_from.as_deref(), Some(r#"["1000"]"#));
    assert_eq!(cdr[0].transferred_to.as_deref(), Some("+15557770001"));
    let mut records = Vec::new();
    store
        .export_records(campaign, &mut |r| {
            records.push(r);
            Ok(())
        })
        .unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].last_disposition.as_deref(), Some("NI"));
}

/// SPEC §7's "do not call" box beside the result: a sale to a person who
/// wants no more calls keeps its code, and the number goes on the DNC list.
fn the_do_not_call_box_removes_the_record_whatever_the_code(store: TestStore) {
    let campaign = campaign_with(&*store, &rules("c"), &rows(2));
    let leases = lease_all(&*store, campaign, noon_ny());
    let attempt = store.begin_attempt(&leases[0], noon_ny()).unwrap();
    let mut result = AttemptResult::new(Outcome::Human);
    result.disposition = Some("SALE".into());
    result.do_not_call = true;
    assert_eq!(
        store.complete_attempt(attempt, &result, noon_ny()).unwrap(),
        RecordState::Removed
    );
    assert!(store.is_dnc(campaign, &leases[0].phone).unwrap());
    // Unticked: the code decides (a sale is final), the number stays off.
    let attempt = store.begin_attempt(&leases[1], noon_ny()).unwrap();
    result.do_not_call = false;
    assert_eq!(
        store.complete_attempt(attempt, &result, noon_ny()).unwrap(),
        RecordState::Done
    );
    assert!(!store.is_dnc(campaign, &leases[1].phone).unwrap());
    let cdr = attempt_rows(&*store, campaign);
    assert_eq!(
        cdr[0].disposition.as_deref(),
        Some("SALE"),
        "the code is kept"
    );
}

/// Agents' state changes are kept for the time-in-state reports; a node
/// closes its agents' states when it stops (or, after a crash, when it
/// starts again).
fn agent_state_changes_are_kept_and_closed_by_their_node(store: TestStore) {
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    let change = |agent: &str, state: &str, reason: Option<&str>, s: i64, node: &str| StateChange {
        agent: agent.into(),
        state: state.into(),
        reason: reason.map(str::to_string),
        at: at(s),
        node: node.into(),
    };
    store
        .record_agent_states(&[
            change("a1", "not_ready", Some("logged in"), 0, "n1"),
            change("a1", "ready", None, 10, "n1"),
            change("b2", "ready", None, 20, "n2"),
            change("a1", "on_call", None, 30, "n1"),
        ])
        .unwrap();
    // n1 stops: a1 is closed, b2 (n2's) is not.
    assert_eq!(
        store
            .close_agent_states("n1", at(100), "dialer stopped")
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .close_agent_states("n1", at(200), "dialer stopped")
            .unwrap(),
        0,
        "already closed"
    );
    let a1 = store
        .agent_state_changes(Some("a1"), at(15), at(1000))
        .unwrap();
    let states: Vec<(&str, Option<&str>)> = a1
        .iter()
        .map(|c| (c.state.as_str(), c.reason.as_deref()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("ready", None),
            ("on_call", None),
            ("logged_out", Some("dialer stopped"))
        ],
        "the latest change before the span, then those in it"
    );
    let everyone = store.agent_state_changes(None, at(0), at(25)).unwrap();
    let seen: Vec<(&str, &str)> = everyone
        .iter()
        .map(|c| (c.agent.as_str(), c.state.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![("a1", "not_ready"), ("a1", "ready"), ("b2", "ready")]
    );
}

/// An agent's "Invalid number" (a wrong or dead number reached) kills that
/// number only: the record goes on with its next number, as after an
/// automatic SIT verdict, and is exhausted when none is left.
fn an_agents_invalid_number_moves_the_chain_on(store: TestStore) {
    let list = vec![row(2, "two", &["+12025550101", "+12025550102"])];
    let campaign = campaign_with(&*store, &always_open("c"), &list);
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    let invalid = |lease: &Lease, s: i64| {
        let attempt = store.begin_attempt(lease, at(s)).unwrap();
        let mut result = AttemptResult::new(Outcome::Human);
        result.disposition = Some("INVALID".into());
        store.complete_attempt(attempt, &result, at(s)).unwrap()
    };
    let first = lease_all(&*store, campaign, at(0)).remove(0);
    assert_eq!(first.phone, "+12025550101");
    assert_eq!(invalid(&first, 0), RecordState::Retry);
    // Due after the retry delay, on the other number.
    let later = 24 * 3600;
    let second = lease_all(&*store, campaign, at(later)).remove(0);
    assert_eq!(second.phone, "+12025550102");
    assert_eq!(invalid(&second, later), RecordState::Exhausted);
}

/// A 607 Unwanted (RFC 8197: the callee marked the call unwanted) puts
/// that number on the campaign's DNC list; a 603 Decline does not.
fn a_callee_who_marks_the_call_unwanted_is_not_called_again(store: TestStore) {
    let list = vec![row(2, "two", &["+12025550101", "+12025550102"])];
    let campaign = campaign_with(&*store, &always_open("c"), &list);
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    let refused = |lease: &Lease, code: u16, s: i64| {
        let attempt = store.begin_attempt(lease, at(s)).unwrap();
        let mut result = AttemptResult::new(Outcome::Declined);
        result.sip_code = Some(code);
        store.complete_attempt(attempt, &result, at(s)).unwrap()
    };
    let first = lease_all(&*store, campaign, at(0)).remove(0);
    assert_eq!(refused(&first, 607, 0), RecordState::Retry);
    assert!(store.is_dnc(campaign, "+12025550101").unwrap());
    let later = 24 * 3600;
    let second = lease_all(&*store, campaign, at(later)).remove(0);
    assert_eq!(second.phone, "+12025550102", "the chain goes on");
    refused(&second, 603, later);
    assert!(!store.is_dnc(campaign, "+12025550102").unwrap());
}

fn answer_history_counts_live_answers_and_abandons_per_minute(store: TestStore) {
    let campaign = campaign_with(&*store, &always_open("c"), &rows(8));
    let leases = lease_all(&*store, campaign, noon_ny());
    assert_eq!(leases.len(), 8);
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    // (started, result, CPA verdict, abandoned, answered)
    let calls = [
        // Two live answers in the first minute, one of them abandoned.
        (at(0), Outcome::Human, Some("human"), false, Some(at(10))),
        (at(5), Outcome::Abandoned, Some("human"), true, None),
        // A machine is no live answer.
        (at(20), Outcome::Machine, Some("machine"), false, None),
        // Nor a "human" that turned out a machine (its beep, an agent's
        // voicemail drop) or a fax: the pacer took it back too.
        (at(25), Outcome::Machine, Some("human"), false, Some(at(26))),
        (at(28), Outcome::Fax, Some("human"), false, Some(at(29))),
        // A live answer two minutes later.
        (at(125), Outcome::Human, Some("human"), false, Some(at(130))),
        // An abandon whose verdict was not written still counts.
        (at(130), Outcome::Abandoned, None, true, None),
        // Started at `until`: the asking process's own dial, left out.
        (at(300), Outcome::Human, Some("human"), false, Some(at(305))),
    ];
    for (lease, (started, outcome, verdict, abandoned, answered)) in leases.iter().zip(calls) {
        let attempt = store.begin_attempt(lease, started).unwrap();
        let mut result = AttemptResult::new(outcome);
        result.cpa_verdict = verdict.map(str::to_string);
        result.abandoned = abandoned;
        result.answered_at = answered;
        result.ended_at = Some(started + SignedDuration::from_secs(60));
        store.complete_attempt(attempt, &result, started).unwrap();
    }
    let history = store
        .answer_history(campaign, "node-a", at(0), at(300))
        .unwrap();
    let minute =
        |s: i64| Timestamp::from_millisecond((at(s).as_millisecond() / 60_000) * 60_000).unwrap();
    let got: Vec<(Timestamp, u64, u64)> = history
        .iter()
        .map(|m| (m.minute, m.live_answers, m.abandoned))
        .collect();
    assert_eq!(got, vec![(minute(0), 2, 1), (minute(125), 2, 1)]);
    // `since` leaves out what was answered before it.
    let later = store
        .answer_history(campaign, "node-a", at(60), at(300))
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!((later[0].live_answers, later[0].abandoned), (2, 1));
    // Another node's dials are its own pacer's business.
    assert_eq!(
        store
            .answer_history(campaign, "node-b", at(0), at(300))
            .unwrap(),
        vec![]
    );
}

/// The campaign's abandonment on every node, for supervisors: each node's
/// live answers and abandons in the US (30 days) and UK (24 hours)
/// windows.
fn abandonment_is_counted_per_node_across_the_campaign(store: TestStore) {
    let campaign = campaign_with(&*store, &always_open("c"), &rows(5));
    let day = SignedDuration::from_hours(24);
    let now = noon_ny() + SignedDuration::from_hours(24 * 3);
    // (node, started, CPA verdict, abandoned)
    let calls = [
        (
            "node-a",
            now - SignedDuration::from_mins(5),
            Some("human"),
            false,
        ),
        (
            "node-a",
            now - SignedDuration::from_mins(4),
            Some("human"),
            true,
        ),
        // Two days ago: in the US window only.
        ("node-b", now - day * 2, Some("human"), true),
        (
            "node-b",
            now - SignedDuration::from_mins(3),
            Some("human"),
            false,
        ),
        // A machine is no live answer.
        (
            "node-b",
            now - SignedDuration::from_mins(2),
            Some("machine"),
            false,
        ),
    ];
    for (node, started, verdict, abandoned) in calls {
        let lease = store
            .lease(&request(campaign, node, 1, started))
            .unwrap()
            .remove(0);
        let attempt = store.begin_attempt(&lease, started).unwrap();
        let mut result = AttemptResult::new(if abandoned {
            Outcome::Abandoned
        } else {
            Outcome::Human
        });
        result.cpa_verdict = verdict.map(str::to_string);
        result.abandoned = abandoned;
        store.complete_attempt(attempt, &result, started).unwrap();
    }
    let counts = |live_answers, abandoned| WindowCounts {
        live_answers,
        abandoned,
    };
    let got = store
        .abandonment_by_node(campaign, now - day * 30, now - day)
        .unwrap();
    assert_eq!(
        got,
        vec![
            NodeAbandonment {
                node: "node-a".into(),
                us: counts(2, 1),
                uk: counts(2, 1),
            },
            NodeAbandonment {
                node: "node-b".into(),
                us: counts(2, 1),
                uk: counts(1, 0),
            },
        ]
    );
}

fn a_crash_while_a_live_answer_waits_leaves_it_abandoned(store: TestStore) {
    let campaign = campaign_with(&*store, &always_open("c"), &rows(4));
    let leases = lease_all(&*store, campaign, noon_ny());
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    // r0: a live answer waiting for an agent when the node dies.
    let waiting = store.begin_attempt(&leases[0], at(0)).unwrap();
    store.attempt_live(waiting, at(8)).unwrap();
    // r1: a live answer an agent took (the two marks land in either order).
    let taken = store.begin_attempt(&leases[1], at(1)).unwrap();
    store.attempt_bridged(taken, "alice").unwrap();
    store.attempt_live(taken, at(9)).unwrap();
    // r2: still ringing.
    store.begin_attempt(&leases[2], at(2)).unwrap();
    // r3: completed before the crash; a late mark changes nothing.
    let done = store.begin_attempt(&leases[3], at(3)).unwrap();
    let mut result = AttemptResult::new(Outcome::Machine);
    result.cpa_verdict = Some("machine".into());
    store.complete_attempt(done, &result, at(20)).unwrap();
    store.attempt_live(done, at(21)).unwrap();

    let restart = at(60);
    let recovery = store.recover_node("node-a", restart).unwrap();
    assert_eq!(recovery.interrupted_attempts, 3);
    let attempts = attempt_rows(&*store, campaign);
    let by_record = |id: &str| {
        attempts
            .iter()
            .find(|a| a.external_id == id)
            .expect("attempt")
    };
    let r0 = by_record("r0");
    assert_eq!(r0.outcome.as_deref(), Some("interrupted"));
    assert!(r0.abandoned, "{r0:?}");
    assert_eq!(r0.cpa_verdict.as_deref(), Some("human"));
    assert_eq!(r0.answered_at, Some(at(8).as_millisecond()));
    let r1 = by_record("r1");
    assert!(!r1.abandoned, "{r1:?}");
    assert_eq!(r1.agent.as_deref(), Some("alice"));
    let r2 = by_record("r2");
    assert!(!r2.abandoned && r2.cpa_verdict.is_none(), "{r2:?}");
    let r3 = by_record("r3");
    assert_eq!(r3.outcome.as_deref(), Some("machine"));
    assert!(!r3.abandoned && r3.answered_at.is_none(), "{r3:?}");
    // The next start's abandonment windows count r0 as an abandoned live
    // answer and r1 as a live answer.
    let history = store
        .answer_history(campaign, "node-a", at(0), restart)
        .unwrap();
    let live: u64 = history.iter().map(|m| m.live_answers).sum();
    let abandoned: u64 = history.iter().map(|m| m.abandoned).sum();
    assert_eq!((live, abandoned), (2, 1));
}

fn campaigns_defined_through_the_api_are_kept_and_forgotten(store: TestStore) {
    let file_campaign = store.sync_campaign(&rules("from-file")).unwrap();
    let defined = store
        .define_campaign(&rules("spring"), r#"{"name":"spring","mode":"predictive"}"#)
        .unwrap();
    assert_ne!(file_campaign, defined);
    // A file campaign has no definition; the defined one reads back.
    let stored = store.campaign_definitions().unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].name, "spring");
    assert!(stored[0].definition.contains("predictive"));
    // Redefining keeps the id (its records and history stay with it).
    let again = store
        .define_campaign(
            &rules("spring"),
            r#"{"name":"spring","mode":"progressive"}"#,
        )
        .unwrap();
    assert_eq!(again, defined);
    assert!(
        store.campaign_definitions().unwrap()[0]
            .definition
            .contains("progressive")
    );
    store
        .import_batch(
            defined,
            store.begin_import(defined, noon_ny()).unwrap(),
            &rows(3),
        )
        .unwrap();
    // Forgotten: no longer defined, but its records are still there.
    assert!(store.forget_campaign_definition("spring").unwrap());
    assert!(!store.forget_campaign_definition("spring").unwrap());
    assert!(!store.forget_campaign_definition("from-file").unwrap());
    assert!(store.campaign_definitions().unwrap().is_empty());
    assert_eq!(store.campaign_id("spring").unwrap(), Some(defined));
    let counts: u64 = store.counts(defined).unwrap().iter().map(|(_, n)| n).sum();
    assert_eq!(counts, 3);
}

fn a_campaigns_own_dispositions_are_written_with_its_rules(store: TestStore) {
    let mut with_codes = rules("own");
    with_codes.dispositions = vec![
        Disposition {
            code: "PTP".into(),
            label: "Promise to pay".into(),
            effect: DispositionEffect::Final,
        },
        // A system code with another effect for this campaign only.
        Disposition {
            code: "VM".into(),
            label: "Voicemail (done)".into(),
            effect: DispositionEffect::Final,
        },
    ];
    let campaign = campaign_with(&*store, &with_codes, &rows(2));
    let other = campaign_with(&*store, &rules("other"), &rows(1));
    let listed = store.dispositions(campaign).unwrap();
    let vm = listed.iter().find(|d| d.code == "VM").expect("VM");
    assert_eq!(vm.effect, DispositionEffect::Final);
    assert!(listed.iter().any(|d| d.code == "PTP"));
    assert!(
        !store
            .dispositions(other)
            .unwrap()
            .iter()
            .any(|d| d.code == "PTP")
    );
    let leases = lease_all(&*store, campaign, noon_ny());
    let mut result = AttemptResult::new(Outcome::Human);
    result.agent = Some("1001".into());
    for (lease, code) in leases.iter().zip(["PTP", "VM"]) {
        let attempt = store.begin_attempt(lease, noon_ny()).unwrap();
        result.disposition = Some(code.into());
        assert_eq!(
            store.complete_attempt(attempt, &result, noon_ny()).unwrap(),
            RecordState::Done,
            "{code}"
        );
    }
    // The other campaign keeps the system's VM (retry) and has no PTP.
    let lease = &lease_all(&*store, other, noon_ny())[0];
    let attempt = store.begin_attempt(lease, noon_ny()).unwrap();
    result.disposition = Some("PTP".into());
    assert!(matches!(
        store.complete_attempt(attempt, &result, noon_ny()),
        Err(StoreError::UnknownDisposition(_))
    ));
    result.disposition = Some("VM".into());
    assert_eq!(
        store.complete_attempt(attempt, &result, noon_ny()).unwrap(),
        RecordState::Retry
    );
}

fn run_commands_are_kept_in_order_for_the_other_nodes(store: TestStore) {
    assert_eq!(store.last_run_command().unwrap(), 0, "none yet");
    let start = store
        .record_run_command("spring", "start", "node-a", noon_ny())
        .unwrap();
    let pause = store
        .record_run_command("spring", "pause", "node-b", noon_ny())
        .unwrap();
    assert!(pause > start);
    assert_eq!(store.last_run_command().unwrap(), pause);
    let all = store.run_commands_after(0).unwrap();
    let got: Vec<(i64, &str, &str, &str)> = all
        .iter()
        .map(|c| {
            (
                c.id,
                c.campaign.as_str(),
                c.command.as_str(),
                c.node.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (start, "spring", "start", "node-a"),
            (pause, "spring", "pause", "node-b")
        ]
    );
    let after_start = store.run_commands_after(start).unwrap();
    assert_eq!(after_start.len(), 1);
    assert_eq!(after_start[0].id, pause);
    assert!(store.run_commands_after(pause).unwrap().is_empty());
}

fn nodes_sharing_a_trunk_divide_its_lines(store: TestStore) {
    use outdial::pacing::trunk_share::{TrunkDemand, TrunkShare};
    let demand = |in_use, wanted| TrunkDemand { in_use, wanted };
    let t0 = noon_ny();
    let at = |s: i64| t0 + SignedDuration::from_secs(s);
    let live_since = |now: Timestamp| now - SignedDuration::from_secs(5);
    // Alone: the whole trunk of 30.
    let a = store
        .claim_trunk_share("node-a", demand(0, 0), 30, at(0), live_since(at(0)))
        .unwrap();
    assert_eq!(
        a,
        TrunkShare {
            lines: 30,
            nodes: 1
        }
    );
    // A second node: node A holds its grant of 30 until its next claim.
    let b = store
        .claim_trunk_share("node-b", demand(0, 12), 30, at(1), live_since(at(1)))
        .unwrap();
    assert_eq!(b, TrunkShare { lines: 0, nodes: 2 });
    // A's next claim sees B's demand and keeps its fair part.
    let a = store
        .claim_trunk_share("node-a", demand(10, 40), 30, at(1), live_since(at(1)))
        .unwrap();
    assert_eq!(
        a,
        TrunkShare {
            lines: 18,
            nodes: 2
        }
    );
    // Until A's engine has its smaller grant it may still dial under the
    // grant of 30: B gets nothing until A's next claim says what A holds.
    let b = store
        .claim_trunk_share("node-b", demand(0, 12), 30, at(1), live_since(at(1)))
        .unwrap();
    assert_eq!(b, TrunkShare { lines: 0, nodes: 2 });
    let a = store
        .claim_trunk_share("node-a", demand(10, 40), 30, at(2), live_since(at(2)))
        .unwrap();
    assert_eq!(a.lines, 18);
    let b = store
        .claim_trunk_share("node-b", demand(0, 12), 30, at(2), live_since(at(2)))
        .unwrap();
    assert_eq!(
        b,
        TrunkShare {
            lines: 12,
            nodes: 2
        }
    );
    // B stops claiming (a crash): 5 s later A has the trunk again.
    let a = store
        .claim_trunk_share("node-a", demand(18, 40), 30, at(8), live_since(at(8)))
        .unwrap();
    assert_eq!(
        a,
        TrunkShare {
            lines: 30,
            nodes: 1
        }
    );
    // A node that leaves cleanly gives its part back at once.
    let b = store
        .claim_trunk_share("node-b", demand(0, 0), 30, at(9), live_since(at(9)))
        .unwrap();
    assert_eq!(b, TrunkShare { lines: 0, nodes: 2 }, "A holds 30");
    store.release_trunk_share("node-a").unwrap();
    let b = store
        .claim_trunk_share("node-b", demand(0, 0), 30, at(9), live_since(at(9)))
        .unwrap();
    assert_eq!(
        b,
        TrunkShare {
            lines: 30,
            nodes: 1
        }
    );
}

fn a_carriers_retry_after_holds_every_node_of_the_trunk(store: TestStore) {
    let t0 = noon_ny();
    let at = |s: i64| t0 + SignedDuration::from_secs(s);
    assert_eq!(
        store.share_trunk_hold("node-a", None, at(0), true).unwrap(),
        None
    );
    // Node A got 503 with Retry-After: 120.
    assert_eq!(
        store
            .share_trunk_hold("node-a", Some(at(120)), at(0), true)
            .unwrap(),
        Some(at(120))
    );
    // Node B never saw a 503 and learns of A's hold.
    assert_eq!(
        store.share_trunk_hold("node-b", None, at(1), true).unwrap(),
        Some(at(120))
    );
    // A shorter hold of A later does not shorten its own; B's longer one wins.
    assert_eq!(
        store
            .share_trunk_hold("node-a", Some(at(60)), at(2), true)
            .unwrap(),
        Some(at(120))
    );
    assert_eq!(
        store
            .share_trunk_hold("node-b", Some(at(300)), at(3), true)
            .unwrap(),
        Some(at(300))
    );
    // A node that left cleanly (its trunk share given back) or crashed:
    // the carrier's request still stands for the others.
    store.release_trunk_share("node-b").unwrap();
    assert_eq!(
        store
            .share_trunk_hold("node-a", None, at(200), true)
            .unwrap(),
        Some(at(300))
    );
    // Over: no hold.
    assert_eq!(
        store
            .share_trunk_hold("node-a", None, at(300), true)
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .share_trunk_hold("node-c", None, at(301), true)
            .unwrap(),
        None
    );
    // Nodes on trunks of their own (sharing only the database): each sees
    // its own hold — after a restart too — and not the other's.
    assert_eq!(
        store
            .share_trunk_hold("node-a", Some(at(400)), at(310), false)
            .unwrap(),
        Some(at(400))
    );
    assert_eq!(
        store
            .share_trunk_hold("node-b", None, at(311), false)
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .share_trunk_hold("node-a", None, at(320), false)
            .unwrap(),
        Some(at(400))
    );
}

/// A node stops while the store cannot take its finished calls' rows: the
/// rows wait in its spool, and its next start writes them (the agent's
/// disposition and callback included) before it resolves what was in
/// flight, which would close them as interrupted.
fn spooled_rows_are_written_before_the_crash_is_resolved(store: TestStore) {
    let campaign = campaign_with(&*store, &always_open("c"), &rows(4));
    let leases = lease_all(&*store, campaign, noon_ny());
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.spool");
    let (mut spool, left) = RowSpool::open(&path).unwrap();
    assert!(left.is_empty());
    let spooled = |attempt, outcome, callback| {
        let mut result = AttemptResult::new(outcome);
        result.agent = Some("alice".into());
        result.disposition = Some("SALE".into());
        result.notes = Some("wants the blue one".into());
        SpooledRow {
            attempt,
            result,
            callback,
            what: format!("attempt {attempt}"),
        }
    };
    // r0: sold, with a callback the agent set for 5 minutes after the call;
    // the store was down and the node stopped.
    let sold = store.begin_attempt(&leases[0], at(0)).unwrap();
    let callback = CallbackRequest {
        record: leases[0].record_id,
        at: at(300),
        phone: None,
        agent: Some("alice".into()),
    };
    spool
        .keep(&spooled(sold, Outcome::Human, Some(callback)))
        .unwrap();
    // r1: its commit landed as the node went down, before the spool knew.
    let landed = store.begin_attempt(&leases[1], at(1)).unwrap();
    spool.keep(&spooled(landed, Outcome::Human, None)).unwrap();
    store
        .complete_attempt(
            landed,
            &spooled(landed, Outcome::Human, None).result,
            at(30),
        )
        .unwrap();
    // r2: written and marked; r3: still ringing at the stop.
    let written = store.begin_attempt(&leases[2], at(2)).unwrap();
    spool.keep(&spooled(written, Outcome::Busy, None)).unwrap();
    store
        .complete_attempt(written, &AttemptResult::new(Outcome::Busy), at(31))
        .unwrap();
    spool.written(written).unwrap();
    store.begin_attempt(&leases[3], at(3)).unwrap();
    // A row of another database (the spool copied with a wrong config).
    spool.keep(&spooled(987_654, Outcome::Human, None)).unwrap();
    drop(spool);

    // The next start, after the callback's time.
    let restart = at(600);
    let (mut spool, left) = RowSpool::open(&path).unwrap();
    let ids: Vec<_> = left.iter().map(|r| r.attempt).collect();
    assert_eq!(ids, vec![sold, landed, 987_654]);
    let replayed = replay_spool(&*store, &mut spool, &left, restart).unwrap();
    assert_eq!(
        replayed,
        Replayed {
            written: 1,
            already_written: 1,
            refused: 1,
            late_callbacks: 1
        }
    );
    assert_eq!(spool.pending(), 0);
    let rejected = std::fs::read_to_string(dir.path().join("node.spool.rejected")).unwrap();
    assert!(rejected.contains("987654"), "{rejected}");
    let recovery = store.recover_node("node-a", restart).unwrap();
    assert_eq!(recovery.interrupted_attempts, 1, "only r3 was in flight");
    let r0 = store.record(campaign, "r0").unwrap().unwrap();
    assert_eq!(r0.state, "callback");
    assert_eq!(r0.last_outcome.as_deref(), Some("human"));
    let callbacks = store.callbacks(&CallbackFilter::default()).unwrap();
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    assert!(callbacks[0].at > restart, "a late callback is due now");
    assert_eq!(callbacks[0].agent.as_deref(), Some("alice"));
    // Nothing is written twice: the spool is empty at the start after.
    drop(spool);
    let (_, left) = RowSpool::open(&path).unwrap();
    assert!(left.is_empty());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

/// A node whose lease lapsed while it still had calls (its store away
/// for longer than the lease; another node resolved the lease and closed
/// the attempts as interrupted) writes the real results when it can: from
/// its spool at its next start, or from its retries. Each amends its
/// interrupted attempt — the agent's do-not-call is applied — and moves
/// the record on only if nobody has leased it since.
fn a_real_result_amends_the_attempt_another_node_closed_as_interrupted(store: TestStore) {
    let campaign = campaign_with(&*store, &always_open("c"), &rows(3));
    let leases = lease_all(&*store, campaign, noon_ny());
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    let dnc = store.begin_attempt(&leases[0], at(0)).unwrap();
    let sold = store.begin_attempt(&leases[1], at(1)).unwrap();
    let busy = store.begin_attempt(&leases[2], at(2)).unwrap();
    store
        .complete_attempt(busy, &AttemptResult::new(Outcome::Busy), at(20))
        .unwrap();
    // Node b resolves node a's lapsed leases, and dials r1 again once
    // the interruption's retry delay (5 minutes) is over.
    let other = store.reopen();
    let lapsed = at(11 * 60);
    assert_eq!(other.expire_leases(lapsed).unwrap().interrupted_attempts, 2);
    let again = other
        .lease(&request(campaign, "node-b", 10, at(17 * 60)))
        .unwrap();
    let redial = again
        .iter()
        .find(|l| l.record_id == leases[1].record_id)
        .expect("r1 is dialable again after the interruption");
    other.begin_attempt(redial, at(17 * 60)).unwrap();
    // r0 was leased with it, and given back unused.
    for lease in again.iter().filter(|l| l.record_id != leases[1].record_id) {
        other.release(lease, Release::Unused, at(17 * 60)).unwrap();
    }
    assert!(!store.attempt_written(dnc).unwrap());
    assert!(store.attempt_written(busy).unwrap());

    // Node a's next start: its spool holds the two calls' real results.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.spool");
    let (mut spool, _) = RowSpool::open(&path).unwrap();
    let talked = |attempt, disposition: &str| {
        let mut result = AttemptResult::new(Outcome::Human);
        result.agent = Some("alice".into());
        result.disposition = Some(disposition.into());
        result.answered_at = Some(at(5));
        SpooledRow {
            attempt,
            result,
            callback: None,
            what: format!("attempt {attempt}"),
        }
    };
    spool.keep(&talked(dnc, "DNC")).unwrap();
    spool.keep(&talked(sold, "SALE")).unwrap();
    spool.keep(&talked(busy, "SALE")).unwrap();
    drop(spool);
    let (mut spool, left) = RowSpool::open(&path).unwrap();
    let replayed = replay_spool(&*store, &mut spool, &left, at(18 * 60)).unwrap();
    assert_eq!(
        (replayed.written, replayed.already_written, replayed.refused),
        (2, 1, 0),
        "two interrupted attempts amended; the busy one was written already"
    );
    let cdr = attempt_rows(&*store, campaign);
    let row = |id| cdr.iter().find(|a| a.id == id).unwrap();
    assert_eq!(
        (row(dnc).outcome.as_deref(), row(dnc).disposition.as_deref()),
        (Some("human"), Some("DNC"))
    );
    assert_eq!(row(dnc).agent.as_deref(), Some("alice"));
    assert_eq!(
        (
            row(sold).outcome.as_deref(),
            row(sold).disposition.as_deref()
        ),
        (Some("human"), Some("SALE"))
    );
    assert_eq!(row(busy).outcome.as_deref(), Some("busy"));
    // r0: nobody dialed it since; the do-not-call takes it off the list.
    assert!(store.is_dnc(campaign, &leases[0].phone).unwrap());
    let r0 = store.record(campaign, "r0").unwrap().unwrap();
    assert_eq!(r0.state, "removed");
    assert_eq!(r0.last_disposition.as_deref(), Some("DNC"));
    // r1: node b is dialing it again; that call decides the record.
    let r1 = store.record(campaign, "r1").unwrap().unwrap();
    assert_eq!(r1.state, "leased");
    assert_eq!(r1.last_outcome.as_deref(), Some("interrupted"));
    // A second replay of the same result changes nothing.
    assert!(matches!(
        store.complete_attempt(dnc, &talked(dnc, "SALE").result, at(19 * 60)),
        Err(StoreError::AttemptAlreadyComplete(_))
    ));
}

/// One process per node name: the store says who holds a node, and lets
/// a process take it only when free, already its own, or held by the
/// process the caller found gone.
fn a_node_is_held_by_one_process_at_a_time(store: TestStore) {
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    assert_eq!(
        store.claim_node("node-a", "first", at(0), None).unwrap(),
        NodeClaim::Claimed
    );
    // Claimed again by the same process (a retried start): still its own.
    assert_eq!(
        store.claim_node("node-a", "first", at(1), None).unwrap(),
        NodeClaim::Claimed
    );
    assert!(store.node_heartbeat("node-a", "first", at(5)).unwrap());
    let other = store.reopen();
    assert_eq!(
        other.claim_node("node-a", "second", at(6), None).unwrap(),
        NodeClaim::HeldBy {
            instance: "first".into(),
            seen_at: at(5)
        }
    );
    // Another node's name is free.
    assert_eq!(
        other.claim_node("node-b", "second", at(6), None).unwrap(),
        NodeClaim::Claimed
    );
    // Replacing a process other than the holder changes nothing.
    assert!(matches!(
        other
            .claim_node("node-a", "second", at(7), Some("third"))
            .unwrap(),
        NodeClaim::HeldBy { .. }
    ));
    // The caller found `first` gone: the node is the second's, and the
    // first learns it at its next heartbeat; its release frees nothing.
    assert_eq!(
        other
            .claim_node("node-a", "second", at(30), Some("first"))
            .unwrap(),
        NodeClaim::Claimed
    );
    assert!(!store.node_heartbeat("node-a", "first", at(31)).unwrap());
    store.release_node("node-a", "first").unwrap();
    assert!(matches!(
        store.claim_node("node-a", "first", at(32), None).unwrap(),
        NodeClaim::HeldBy { instance, .. } if instance == "second"
    ));
    // The nodes on the store, with their last heartbeats.
    let listed = |store: &dyn Store| -> Vec<(String, String, Timestamp)> {
        store
            .nodes()
            .unwrap()
            .into_iter()
            .map(|n| (n.node, n.instance, n.seen_at))
            .collect()
    };
    assert_eq!(
        listed(&*store),
        vec![
            ("node-a".into(), "second".into(), at(30)),
            ("node-b".into(), "second".into(), at(6)),
        ]
    );
    // A clean stop frees it.
    other.release_node("node-a", "second").unwrap();
    assert_eq!(listed(&*store).len(), 1);
    assert_eq!(
        store.claim_node("node-a", "first", at(40), None).unwrap(),
        NodeClaim::Claimed
    );
    // A row that went away under a running node (the table emptied by
    // hand): its next heartbeat takes the free name back.
    store.release_node("node-a", "first").unwrap();
    assert!(store.node_heartbeat("node-a", "first", at(45)).unwrap());
    assert!(
        listed(&*store).contains(&("node-a".into(), "first".into(), at(45))),
        "{:?}",
        listed(&*store)
    );
    // A node silent for more than a week is forgotten at the next start
    // of any node; one silent for less is kept.
    let days = |d: i64| at(45) - SignedDuration::from_hours(24 * d);
    store.claim_node("gone", "old", days(8), None).unwrap();
    store.claim_node("resting", "old", days(6), None).unwrap();
    assert_eq!(listed(&*store).len(), 4);
    other.claim_node("node-b", "second", at(50), None).unwrap();
    let names: Vec<String> = listed(&*store).into_iter().map(|n| n.0).collect();
    assert_eq!(names, vec!["node-a", "node-b", "resting"]);
}

fn a_callback_whose_call_the_dialer_lost_before_the_answer_stays_due(store: TestStore) {
    let campaign = campaign_with(&*store, &always_open("c"), &rows(3));
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    let delay = always_open("c").retry_delay(Outcome::Interrupted);
    for lease in lease_all(&*store, campaign, at(0)) {
        dial(&*store, &lease, Outcome::Human, at(0));
    }
    let record = |id: &str| store.record(campaign, id).unwrap().unwrap();
    let schedule = |id: &str, agent: Option<&str>| {
        store
            .schedule_callback(
                &CallbackRequest {
                    record: record(id).id,
                    at: at(3600),
                    phone: None,
                    agent: agent.map(str::to_string),
                },
                at(10),
            )
            .unwrap()
    };
    let personal = schedule("r0", Some("1001"));
    let answered = schedule("r1", None);
    let amended = schedule("r2", None);
    let pending = || pending_callbacks(&*store, campaign);
    let due = at(3600 + 60);
    let mut mine = request(campaign, "node-a", 10, due);
    mine.agent = Some("1001");
    let calls = store.lease(&mine).unwrap();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let call = |cb: i64| calls.iter().find(|l| l.callback == Some(cb)).unwrap();
    let personal_attempt = store.begin_attempt(call(personal), due).unwrap();
    let answered_attempt = store.begin_attempt(call(answered), due).unwrap();
    store.attempt_live(answered_attempt, due).unwrap();
    // Connected to an agent: the callback was delivered. (A live answer
    // still waiting for an agent when the dialer died was abandoned, and
    // keeps its callback: see
    // `an_abandoned_callback_call_keeps_the_callback_a_bounded_number_of_times`.)
    store.attempt_bridged(answered_attempt, "1002").unwrap();
    let amended_attempt = store.begin_attempt(call(amended), due).unwrap();
    assert_eq!(
        pending(),
        Vec::<i64>::new(),
        "all three are being delivered"
    );

    // The node dies with the three calls up; its restart closes them.
    let restart = due + SignedDuration::from_secs(30);
    assert_eq!(
        store
            .recover_node("node-a", restart)
            .unwrap()
            .interrupted_attempts,
        3
    );
    // Nobody had answered two of them: those promises still stand (the
    // personal one still its agent's); the answered one was kept.
    let mut left = pending();
    left.sort_unstable();
    assert_eq!(left, vec![personal, amended]);
    assert_eq!(record("r0").state, "callback");
    assert_eq!(record("r1").state, "retry");
    // Due again after the interruption's retry delay, not at once.
    assert!(store.lease(&mine).unwrap().is_empty());
    let mut later = request(campaign, "node-a", 10, restart + delay);
    later.agent = Some("1001");
    let again = store.lease(&later).unwrap();
    // (r1 too, for its retry.)
    let ids: Vec<(i64, Option<&str>)> = again
        .iter()
        .filter_map(|l| Some((l.callback?, l.callback_agent.as_deref())))
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&(personal, Some("1001"))), "{ids:?}");
    assert!(ids.contains(&(amended, None)), "{ids:?}");
    for lease in &again {
        store
            .release(lease, Release::Unused, restart + delay)
            .unwrap();
    }

    // r2's call was in fact placed and answered (its node had only lost
    // the store): its real result delivers the callback after all.
    let mut result = AttemptResult::new(Outcome::Human);
    result.answered_at = Some(due);
    result.agent = Some("1002".into());
    result.disposition = Some("SALE".into());
    store
        .complete_attempt(amended_attempt, &result, restart + delay)
        .unwrap();
    assert_eq!(pending(), vec![personal]);
    assert_eq!(record("r2").state, "done");
    // The personal callback is delivered: done.
    let lease = store
        .lease(&later)
        .unwrap()
        .into_iter()
        .find(|l| l.callback == Some(personal))
        .expect("the personal callback");
    dial(&*store, &lease, Outcome::Human, restart + delay);
    assert_eq!(pending(), Vec::<i64>::new());
    let _ = personal_attempt;
}

fn a_campaigns_recent_calls_are_read_back_for_the_pacer(store: TestStore) {
    let campaign = campaign_with(&*store, &always_open("c"), &rows(6));
    let other = campaign_with(&*store, &always_open("other"), &rows(1));
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    let leases = lease_all(&*store, campaign, at(0));
    let finish = |lease: &Lease, start: i64, result: AttemptResult| {
        let attempt = store.begin_attempt(lease, at(start)).unwrap();
        store
            .complete_attempt(attempt, &result, at(start + 120))
            .unwrap();
    };
    // Before the window: left out.
    finish(&leases[0], 0, AttemptResult::new(Outcome::Busy));
    // A person, 8 s to the answer and 0.6 s of analysis; 90 s of talk.
    let mut person = AttemptResult::new(Outcome::Human);
    person.answered_at = Some(at(108));
    person.cpa_verdict = Some("human".into());
    person.cpa_ms = Some(600);
    person.talk_ms = Some(90_000);
    person.ended_at = Some(at(190));
    finish(&leases[1], 100, person);
    // A machine, 10 s to the answer and 3 s of analysis.
    let mut machine = AttemptResult::new(Outcome::Machine);
    machine.answered_at = Some(at(210));
    machine.cpa_verdict = Some("machine".into());
    machine.cpa_ms = Some(3000);
    machine.ended_at = Some(at(214));
    finish(&leases[2], 200, machine);
    // Abandoned: a person no agent took (no talk).
    let mut dropped = AttemptResult::new(Outcome::Abandoned);
    dropped.answered_at = Some(at(305));
    dropped.cpa_verdict = Some("human".into());
    dropped.abandoned = true;
    dropped.ended_at = Some(at(312));
    finish(&leases[3], 300, dropped);
    // Busy after 4 s.
    let mut busy = AttemptResult::new(Outcome::Busy);
    busy.ended_at = Some(at(404));
    finish(&leases[4], 400, busy);
    // In flight: left out; then closed as interrupted: still left out.
    store.begin_attempt(&leases[5], at(500)).unwrap();
    let since = at(60);
    let until = at(1000);
    let calls = |limit| store.recent_calls(campaign, since, until, limit).unwrap();
    let expected = vec![
        (8600, true, Some(90_000)),
        (13_000, false, None),
        (5000, true, None),
        (4000, false, None),
    ];
    let got = |limit| -> Vec<(i64, bool, Option<i64>)> {
        calls(limit)
            .iter()
            .map(|c| (c.ring_ms, c.live, c.talk_ms))
            .collect()
    };
    assert_eq!(got(100), expected);
    store.recover_node("node-a", at(600)).unwrap();
    assert_eq!(got(100), expected);
    // The latest ones when there are more, still oldest first.
    assert_eq!(got(2), expected[2..].to_vec());
    // Another campaign's calls are its own; calls from `until` on are
    // the asking process's.
    let lease = lease_all(&*store, other, at(0)).remove(0);
    finish(&lease, 100, AttemptResult::new(Outcome::Busy));
    assert_eq!(got(100), expected);
    assert!(
        store
            .recent_calls(campaign, since, at(200), 100)
            .unwrap()
            .len()
            == 1
    );
}

/// A live person who answers a callback's call and finds no agent hears
/// the abandon message: the call they asked for has not happened, so the
/// callback stands (its own number, its place before the list), due again
/// after the abandoned call's retry delay — twice; the third abandoned
/// delivery ends it as a delivered callback would, and the record follows
/// its retry rules.
fn an_abandoned_callback_call_keeps_the_callback_a_bounded_number_of_times(store: TestStore) {
    let (campaign, callback, due) = a_called_record_with_a_callback(&*store, Some("+12025550199"));
    let delay = always_open("c").retry_delay(Outcome::Abandoned);
    let pending = || pending_callbacks(&*store, campaign);
    let mut due = due;
    for delivery in 1..=2 {
        let calls = store.lease(&request(campaign, "node-a", 10, due)).unwrap();
        assert_eq!(calls.len(), 1, "delivery {delivery}: {calls:?}");
        assert_eq!(calls[0].callback, Some(callback), "delivery {delivery}");
        assert_eq!(calls[0].phone, "+12025550199", "delivery {delivery}");
        let attempt = store.begin_attempt(&calls[0], due).unwrap();
        store.attempt_live(attempt, due).unwrap();
        let mut abandoned = AttemptResult::new(Outcome::Abandoned);
        abandoned.answered_at = Some(due);
        abandoned.abandoned = true;
        let state = store.complete_attempt(attempt, &abandoned, due).unwrap();
        assert_eq!(state, RecordState::Callback, "delivery {delivery}");
        assert_eq!(pending(), vec![callback], "delivery {delivery}");
        // Not redialed at once: due after the abandoned call's retry delay.
        assert!(
            store
                .lease(&request(campaign, "node-a", 10, due))
                .unwrap()
                .is_empty(),
            "delivery {delivery}"
        );
        due += delay;
    }
    // The third delivery is abandoned too: the bound is reached, the
    // callback ends, and the record retries on its own number.
    let calls = store.lease(&request(campaign, "node-a", 10, due)).unwrap();
    assert_eq!(calls[0].callback, Some(callback));
    let attempt = store.begin_attempt(&calls[0], due).unwrap();
    let mut abandoned = AttemptResult::new(Outcome::Abandoned);
    abandoned.answered_at = Some(due);
    abandoned.abandoned = true;
    let state = store.complete_attempt(attempt, &abandoned, due).unwrap();
    assert_ne!(state, RecordState::Callback);
    assert!(pending().is_empty());
}

/// A node dies while a callback's live answer waits for an agent: its
/// restart closes the call as interrupted and abandoned, and the callback
/// stands. When the call's real result comes after all (the node had only
/// lost the store) and says abandoned too, the callback still stands —
/// it must not be taken for delivered.
fn an_abandoned_result_amending_a_lost_callback_call_keeps_the_callback(store: TestStore) {
    let (campaign, callback, due) = a_called_record_with_a_callback(&*store, None);
    let pending = || pending_callbacks(&*store, campaign);
    let calls = store.lease(&request(campaign, "node-a", 10, due)).unwrap();
    assert_eq!(calls[0].callback, Some(callback));
    let attempt = store.begin_attempt(&calls[0], due).unwrap();
    store.attempt_live(attempt, due).unwrap();
    let restart = due + SignedDuration::from_secs(30);
    store.recover_node("node-a", restart).unwrap();
    assert_eq!(pending(), vec![callback], "kept by the recovery");
    let mut abandoned = AttemptResult::new(Outcome::Abandoned);
    abandoned.answered_at = Some(due);
    abandoned.abandoned = true;
    store
        .complete_attempt(attempt, &abandoned, restart + SignedDuration::from_secs(60))
        .unwrap();
    assert_eq!(pending(), vec![callback], "kept by the real result too");
    assert_eq!(
        store.record(campaign, "r0").unwrap().unwrap().state,
        "callback"
    );
}

/// Ofcom's repeat-call rule (`[campaign.repeat_calls]`): a number whose
/// call was abandoned is leased as needing a reserved agent for 72 hours,
/// one taken for a machine for 24; by number, whichever campaign dials it
/// next; a later, shorter mark never shortens an earlier one; other
/// outcomes and campaigns without the rule mark nothing.
fn a_repeat_call_after_an_abandon_or_a_machine_needs_an_agent(store: TestStore) {
    let mut uk = always_open("uk");
    uk.repeat_calls.agent_after_abandoned_s = 72 * 3600;
    uk.repeat_calls.agent_after_machine_s = 24 * 3600;
    for delay in [
        &mut uk.retry.abandoned_s,
        &mut uk.retry.machine_s,
        &mut uk.retry.no_answer_s,
    ] {
        *delay = 60;
    }
    let campaign = campaign_with(&*store, &uk, &rows(3));
    let numbers = |leases: &[Lease]| -> Vec<(String, bool)> {
        let mut n: Vec<(String, bool)> = leases
            .iter()
            .map(|l| (l.external_id.clone(), l.agent_required))
            .collect();
        n.sort();
        n
    };
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    let first = lease_all(&*store, campaign, at(0));
    assert_eq!(
        numbers(&first),
        [
            ("r0".into(), false),
            ("r1".into(), false),
            ("r2".into(), false)
        ]
    );
    for lease in &first {
        let attempt = store.begin_attempt(lease, at(0)).unwrap();
        let mut result = AttemptResult::new(match lease.external_id.as_str() {
            "r0" => Outcome::Abandoned,
            "r1" => Outcome::Machine,
            _ => Outcome::NoAnswer,
        });
        result.abandoned = result.outcome == Outcome::Abandoned;
        result.ended_at = Some(at(30));
        store.complete_attempt(attempt, &result, at(30)).unwrap();
    }
    // Redialed after the retry delays: the abandoned and the machine
    // numbers need an agent, the unanswered one does not.
    let again = lease_all(&*store, campaign, at(120));
    assert_eq!(
        numbers(&again),
        [
            ("r0".into(), true),
            ("r1".into(), true),
            ("r2".into(), false)
        ]
    );
    // r0 is taken for a machine this time: 24 h from now, shorter than
    // the 72 h the abandon left, which stands.
    for lease in &again {
        let outcome = if lease.external_id == "r0" {
            Outcome::Machine
        } else {
            Outcome::NoAnswer
        };
        dial(&*store, lease, outcome, at(150));
    }
    // Another campaign, without the rule, calling r0's number: the person
    // on that line was hung up on all the same.
    let r0_number = first
        .iter()
        .find(|l| l.external_id == "r0")
        .map(|l| l.phone.clone())
        .unwrap();
    let other = campaign_with(&*store, &always_open("us"), &[row(2, "x", &[&r0_number])]);
    let leased = lease_all(&*store, other, at(200));
    assert_eq!(numbers(&leased), [("x".into(), true)]);
    dial(&*store, &leased[0], Outcome::Abandoned, at(210));
    // A day and an hour later: the machine's 24 h are over, the abandon's
    // 72 h are not.
    let day_after = lease_all(&*store, campaign, at(25 * 3600));
    assert_eq!(
        numbers(&day_after),
        [
            ("r0".into(), true),
            ("r1".into(), false),
            ("r2".into(), false)
        ]
    );
    for lease in &day_after {
        store
            .release(lease, Release::Unused, at(25 * 3600))
            .unwrap();
    }
    // A node whose engine holds enough repeat calls leases past them: the
    // record waits a minute and the scan goes on to the others.
    let mut skipping = request(campaign, "node-a", 10, at(26 * 3600));
    skipping.skip_agent_required = true;
    let leased = store.lease(&skipping).unwrap();
    assert_eq!(
        numbers(&leased),
        [("r1".into(), false), ("r2".into(), false)]
    );
    for lease in &leased {
        store
            .release(lease, Release::Unused, at(26 * 3600))
            .unwrap();
    }
    assert_eq!(
        numbers(&lease_all(&*store, campaign, at(26 * 3600 + 30))),
        [("r1".into(), false), ("r2".into(), false)],
        "r0 waits its minute"
    );
    let r0 = lease_all(&*store, campaign, at(26 * 3600 + 61));
    assert_eq!(numbers(&r0), [("r0".into(), true)]);
    store
        .release(&r0[0], Release::Unused, at(26 * 3600 + 61))
        .unwrap();
    // 73 hours after the abandon: nothing is marked any more (the other
    // campaign's abandon marked nothing: its rules have no window).
    let later = lease_all(&*store, campaign, at(73 * 3600));
    assert_eq!(
        numbers(&later),
        [
            ("r0".into(), false),
            ("r1".into(), false),
            ("r2".into(), false)
        ]
    );
}

/// A machine an agent took (`machine_action = "connect_agent"`) marks no
/// number: had it been a person, the agent was there.
fn a_machine_an_agent_took_leaves_no_repeat_call_mark(store: TestStore) {
    let mut uk = always_open("uk");
    uk.repeat_calls.agent_after_machine_s = 24 * 3600;
    uk.retry.machine_s = 60;
    let campaign = campaign_with(&*store, &uk, &rows(2));
    let at = |s: i64| noon_ny() + SignedDuration::from_secs(s);
    for lease in lease_all(&*store, campaign, at(0)) {
        let attempt = store.begin_attempt(&lease, at(0)).unwrap();
        let mut machine = AttemptResult::new(Outcome::Machine);
        if lease.external_id == "r0" {
            machine.agent = Some("a1".into());
        }
        store.complete_attempt(attempt, &machine, at(30)).unwrap();
    }
    let mut again: Vec<(String, bool)> = lease_all(&*store, campaign, at(120))
        .iter()
        .map(|l| (l.external_id.clone(), l.agent_required))
        .collect();
    again.sort();
    assert_eq!(again, [("r0".into(), false), ("r1".into(), true)]);
}

/// A store made before v13 (an agent's "Invalid number" and "Fax" ended the
/// record) is brought up to date: they kill the number only.
#[test]
fn an_older_store_gets_the_dead_number_dispositions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.db");
    let url = format!("sqlite://{}", file.display());
    let campaign = {
        let store = outdial::store::open(&url).unwrap();
        campaign_with(&*store, &rules("c"), &rows(1))
    };
    {
        // As a store before v13 had it; a campaign's own INVALID, made
        // final on purpose, is the campaign's.
        let db = rusqlite::Connection::open(&file).unwrap();
        db.execute_batch(
            "UPDATE dispositions SET effect = 'final' WHERE code IN ('INVALID', 'FAX'); \
             DELETE FROM schema_version WHERE version >= 13; \
             ALTER TABLE attempts DROP COLUMN recording; \
             ALTER TABLE attempts DROP COLUMN hold_ms; \
             ALTER TABLE attempts DROP COLUMN recording_paused_ms; \
             ALTER TABLE attempts DROP COLUMN transferred_from; \
             ALTER TABLE attempts DROP COLUMN transferred_to; \
             DROP INDEX agent_states_at;",
        )
        .unwrap();
        db.execute(
            "INSERT INTO dispositions (campaign_id, code, label, effect) \
             VALUES (?1, 'INVALID', 'Wrong person', 'final')",
            [campaign],
        )
        .unwrap();
    }
    let store = outdial::store::open(&url).unwrap();
    let effect = |code: &str| {
        store
            .dispositions(campaign)
            .unwrap()
            .into_iter()
            .find(|d| d.code == code)
            .map(|d| d.effect)
    };
    let system = |code: &str| {
        store
            .dispositions(0)
            .unwrap()
            .into_iter()
            .find(|d| d.code == code)
            .map(|d| d.effect)
    };
    assert_eq!(system("INVALID"), Some(DispositionEffect::DeadNumber));
    assert_eq!(system("FAX"), Some(DispositionEffect::DeadNumber));
    assert_eq!(effect("FAX"), Some(DispositionEffect::DeadNumber));
    assert_eq!(
        effect("INVALID"),
        Some(DispositionEffect::Final),
        "a campaign's own code is its own"
    );
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { super::$case(super::sqlite_store()) } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::$case(super::postgres_store()) } )*
        }
    };
}

on_both_backends!(
    import_is_idempotent_and_reports_duplicates,
    leases_in_priority_order_and_never_twice,
    the_calling_window_is_honoured_and_closed_records_wait,
    dnc_is_checked_at_dial_time,
    a_number_put_on_dnc_or_a_window_closing_after_the_lease_stops_the_dial,
    a_callback_scheduled_on_a_leased_record_waits_for_its_time,
    a_postponed_record_waits_for_its_callback_and_needs_its_lease,
    busy_is_retried_after_its_delay_and_limits_exhaust,
    attempts_the_callee_never_saw_are_given_back,
    a_callees_retry_after_holds_the_record,
    sit_numbers_are_never_redialed_and_the_chain_moves_on,
    one_number_is_never_dialed_twice_at_once,
    callbacks_personal_and_campaign,
    change_and_cancel_callbacks,
    pending_callbacks_are_listed_by_campaign_and_agent,
    declined_goes_back_to_the_top,
    removed_and_do_not_call_in_preview_are_never_leased_again,
    a_crash_resolves_in_flight_attempts_without_redialing,
    another_nodes_lapsed_lease_is_resolved,
    dispositions_and_dnc_disposition,
    the_do_not_call_box_removes_the_record_whatever_the_code,
    agent_state_changes_are_kept_and_closed_by_their_node,
    an_agents_invalid_number_moves_the_chain_on,
    a_callee_who_marks_the_call_unwanted_is_not_called_again,
    answer_history_counts_live_answers_and_abandons_per_minute,
    abandonment_is_counted_per_node_across_the_campaign,
    a_crash_while_a_live_answer_waits_leaves_it_abandoned,
    campaigns_defined_through_the_api_are_kept_and_forgotten,
    a_campaigns_own_dispositions_are_written_with_its_rules,
    run_commands_are_kept_in_order_for_the_other_nodes,
    nodes_sharing_a_trunk_divide_its_lines,
    a_callees_retry_after_holds_that_number_not_the_others,
    a_carriers_retry_after_holds_every_node_of_the_trunk,
    spooled_rows_are_written_before_the_crash_is_resolved,
    a_real_result_amends_the_attempt_another_node_closed_as_interrupted,
    a_node_is_held_by_one_process_at_a_time,
    a_callback_whose_call_the_dialer_lost_before_the_answer_stays_due,
    a_campaigns_recent_calls_are_read_back_for_the_pacer,
    an_abandoned_callback_call_keeps_the_callback_a_bounded_number_of_times,
    an_abandoned_result_amending_a_lost_callback_call_keeps_the_callback,
    a_repeat_call_after_an_abandon_or_a_machine_needs_an_agent,
    a_machine_an_agent_took_leaves_no_repeat_call_mark,
);
