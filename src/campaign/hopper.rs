//! The hopper's decision for one candidate record: dial it now (and which
//! number), defer it until its calling window opens, close it (no usable
//! number left, out of attempts, do not call), or skip it for now.
//!
//! The store selects due candidates in priority order and applies each
//! decision inside the same transaction that leases the record.

use jiff::Timestamp;

use super::model::RecordState;
use super::rules::CampaignRules;
use super::window::parse_zones;

/// One phone number of a candidate record, with what the store knows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidatePhone {
    pub e164: String,
    /// Position in the contact's chain (0 first).
    pub position: u32,
    /// Dials of this number for this record so far.
    pub attempts: u32,
    /// A SIT, invalid-number or fax result: never dial again.
    pub dead: bool,
    /// On the global or the campaign's DNC list right now.
    pub dnc: bool,
    /// Being dialed for another record right now.
    pub in_use: bool,
    /// The callee asked not to be called before then (a busy or
    /// unavailable callee's Retry-After): the record's other numbers may be.
    pub held_until: Option<Timestamp>,
}

/// The due callback of a candidate in state `Callback`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCallback {
    pub id: i64,
    /// A personal callback: only this agent may take it.
    pub agent: Option<String>,
    /// Dial this number instead of the chain's choice.
    pub phone: Option<String>,
}

/// A record the store found due, with its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub record_id: i64,
    pub state: RecordState,
    /// Leased by a node and not yet expired.
    pub leased: bool,
    /// Dials of this record so far.
    pub attempts: u32,
    /// The contact's time zones (IANA names separated by spaces).
    pub time_zones: String,
    pub phones: Vec<CandidatePhone>,
    pub callback: Option<PendingCallback>,
    /// When this record's recent attempts started (at least those of the
    /// last [`RECENT_ATTEMPTS_SPAN`]): the daily limit counts them. The
    /// store fills it only when the campaign has a daily limit.
    pub recent_attempts: Vec<Timestamp>,
}

/// How far back a candidate's attempts must be known for the daily limit:
/// the longest local day (25 h, a DST change) plus the widest offset
/// between a contact's zones.
pub const RECENT_ATTEMPTS_SPAN: jiff::SignedDuration = jiff::SignedDuration::from_hours(52);

/// Why a candidate was passed over without changing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    NotDialable,
    AlreadyLeased,
    PersonalCallbackForAnotherAgent,
    NumberInUse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Lease the record and dial this number.
    Dial {
        phone: String,
    },
    /// The calling window is closed; the record is due again at `until`.
    Defer {
        until: Timestamp,
    },
    /// The record can never be dialed again: close it in this state.
    Close {
        state: RecordState,
        reason: &'static str,
    },
    Skip(SkipReason),
}

/// How far a record with no opening window in the next weeks is pushed.
const NO_WINDOW_RETRY: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Decides what the hopper does with `candidate` at `now`, for a request
/// made on behalf of `agent` (None: any agent; personal callbacks are then
/// never handed out).
pub fn decide(
    rules: &CampaignRules,
    candidate: &Candidate,
    agent: Option<&str>,
    now: Timestamp,
) -> Decision {
    if !candidate.state.is_dialable() {
        return Decision::Skip(SkipReason::NotDialable);
    }
    if candidate.leased {
        return Decision::Skip(SkipReason::AlreadyLeased);
    }
    let callback = candidate
        .callback
        .as_ref()
        .filter(|_| candidate.state == RecordState::Callback);
    if let Some(PendingCallback {
        agent: Some(owner), ..
    }) = callback
        && agent != Some(owner.as_str())
    {
        return Decision::Skip(SkipReason::PersonalCallbackForAnotherAgent);
    }
    // A callback was promised to the customer: it is not held to the attempt
    // limits, only to the window and DNC.
    if callback.is_none() && candidate.attempts >= rules.max_attempts {
        return Decision::Close {
            state: RecordState::Exhausted,
            reason: "attempt limit reached",
        };
    }
    let wanted = callback.and_then(|cb| cb.phone.as_deref());
    let usable = |phone: &&CandidatePhone| {
        !phone.dead
            && !phone.dnc
            && (callback.is_some() || phone.attempts < rules.max_attempts_per_number)
            && wanted.is_none_or(|w| w == phone.e164)
    };
    let usable: Vec<&CandidatePhone> = candidate.phones.iter().filter(usable).collect();
    if usable.is_empty() {
        let all_dnc = candidate.phones.iter().any(|p| p.dnc)
            && candidate.phones.iter().all(|p| p.dnc || p.dead);
        return if all_dnc {
            Decision::Close {
                state: RecordState::Removed,
                reason: "every number is on a do-not-call list",
            }
        } else {
            Decision::Close {
                state: RecordState::Exhausted,
                reason: "no usable number left",
            }
        };
    }
    let Ok(zones) = parse_zones(&candidate.time_zones) else {
        // Import validates zones; an unknown one is never dialed.
        return Decision::Close {
            state: RecordState::Removed,
            reason: "unknown time zone",
        };
    };
    if callback.is_none()
        && let Some(limit) = rules.max_attempts_per_day
        && let Some(tomorrow) = daily_limit_reached(limit, &zones, &candidate.recent_attempts, now)
    {
        return Decision::Defer { until: tomorrow };
    }
    if !rules.window.is_open(&zones, now) {
        let until = rules
            .window
            .next_open(&zones, now)
            .unwrap_or_else(|| now.checked_add(NO_WINDOW_RETRY).unwrap_or(now));
        return Decision::Defer { until };
    }
    // Chained numbers: the least-dialed free number, in chain order.
    let held = |p: &&&CandidatePhone| p.held_until.is_some_and(|until| until > now);
    match usable
        .iter()
        .filter(|p| !p.in_use && !held(p))
        .min_by_key(|p| (p.attempts, p.position))
    {
        Some(phone) => Decision::Dial {
            phone: phone.e164.clone(),
        },
        // A number in use for another record frees soon: try again then.
        None if usable.iter().any(|p| p.in_use) => Decision::Skip(SkipReason::NumberInUse),
        // Every number's callee asked for a pause: back at the first's end.
        None => match usable.iter().filter_map(|p| p.held_until).min() {
            Some(until) => Decision::Defer { until },
            None => Decision::Skip(SkipReason::NumberInUse),
        },
    }
}

/// With `limit` dials a day: None while the record may still be dialed
/// today, else the instant its next day starts. A contact with several
/// zones is held to the strictest reading: "today" began at the earliest
/// of its local midnights and ends at the latest.
fn daily_limit_reached(
    limit: u32,
    zones: &[jiff::tz::TimeZone],
    attempts: &[Timestamp],
    now: Timestamp,
) -> Option<Timestamp> {
    let mut day_start: Option<Timestamp> = None;
    let mut next_day: Option<Timestamp> = None;
    for tz in zones {
        let local = now.to_zoned(tz.clone());
        // A zone whose midnight cannot be computed is held to a 24-hour day.
        let start = local
            .start_of_day()
            .map(|z| z.timestamp())
            .unwrap_or_else(|_| now.checked_sub(NO_WINDOW_RETRY).unwrap_or(now));
        let end = local
            .date()
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(tz.clone()).ok())
            .map(|z| z.timestamp())
            .unwrap_or_else(|| now.checked_add(NO_WINDOW_RETRY).unwrap_or(now));
        day_start = Some(day_start.map_or(start, |s| s.min(start)));
        next_day = Some(next_day.map_or(end, |e| e.max(end)));
    }
    let (day_start, next_day) = (day_start?, next_day?);
    let today = attempts.iter().filter(|&&at| at >= day_start).count();
    (today >= limit as usize).then_some(next_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(e164: &str, position: u32) -> CandidatePhone {
        CandidatePhone {
            e164: e164.into(),
            position,
            attempts: 0,
            dead: false,
            dnc: false,
            in_use: false,
            held_until: None,
        }
    }

    fn candidate() -> Candidate {
        Candidate {
            record_id: 1,
            state: RecordState::New,
            leased: false,
            attempts: 0,
            time_zones: "America/New_York".into(),
            phones: vec![phone("+12025550101", 0), phone("+12025550102", 1)],
            callback: None,
            recent_attempts: Vec::new(),
        }
    }

    fn noon_ny() -> Timestamp {
        "2026-07-15T16:00:00Z".parse().unwrap()
    }

    #[test]
    fn dials_the_least_dialed_number_first() {
        let rules = CampaignRules::with_defaults("c");
        let mut c = candidate();
        c.phones[0].attempts = 1;
        assert_eq!(
            decide(&rules, &c, None, noon_ny()),
            Decision::Dial {
                phone: "+12025550102".into()
            }
        );
    }

    #[test]
    fn a_number_whose_callee_asked_for_a_pause_waits_the_others_do_not() {
        let rules = CampaignRules::with_defaults("c");
        let now = noon_ny();
        let later = |s: i64| now + jiff::SignedDuration::from_secs(s);
        let mut c = candidate();
        // The first number was busy with Retry-After: 3600; the second is
        // dialed meanwhile, though dialed more often.
        c.phones[0].held_until = Some(later(3600));
        c.phones[1].attempts = 2;
        assert_eq!(
            decide(&rules, &c, None, now),
            Decision::Dial {
                phone: "+12025550102".into()
            }
        );
        // Both held: the record waits for the first to be free.
        c.phones[1].held_until = Some(later(600));
        assert_eq!(
            decide(&rules, &c, None, now),
            Decision::Defer { until: later(600) }
        );
        // One held, the other in use for another record: soon again.
        c.phones[1].held_until = None;
        c.phones[1].in_use = true;
        assert_eq!(
            decide(&rules, &c, None, now),
            Decision::Skip(SkipReason::NumberInUse)
        );
        // A pause that is over is no pause.
        c.phones[1].in_use = false;
        c.phones[1].attempts = 0;
        c.phones[0].held_until = Some(now);
        assert_eq!(
            decide(&rules, &c, None, now),
            Decision::Dial {
                phone: "+12025550101".into()
            }
        );
    }

    #[test]
    fn defers_outside_the_window_to_its_opening() {
        let rules = CampaignRules::with_defaults("c");
        let night: Timestamp = "2026-07-15T03:00:00Z".parse().unwrap();
        assert_eq!(
            decide(&rules, &candidate(), None, night),
            Decision::Defer {
                until: "2026-07-15T12:00:00Z".parse().unwrap()
            }
        );
    }

    #[test]
    fn the_daily_limit_defers_to_the_contacts_next_local_midnight() {
        let mut rules = CampaignRules::with_defaults("c");
        rules.max_attempts_per_day = Some(2);
        let mut c = candidate();
        // Noon in New York; one dial this morning (09:00 EDT) and one the
        // evening before (20:00 EDT = 00:00 UTC, already "today" in UTC).
        c.recent_attempts = vec![
            "2026-07-15T13:00:00Z".parse().unwrap(),
            "2026-07-15T00:00:00Z".parse().unwrap(),
        ];
        assert!(matches!(
            decide(&rules, &c, None, noon_ny()),
            Decision::Dial { .. }
        ));
        c.recent_attempts
            .push("2026-07-15T15:00:00Z".parse().unwrap());
        // Midnight EDT = 04:00 UTC the next day (the window then defers
        // further, to 08:00 local, when the record comes due).
        assert_eq!(
            decide(&rules, &c, None, noon_ny()),
            Decision::Defer {
                until: "2026-07-16T04:00:00Z".parse().unwrap()
            }
        );
        // Without a daily limit the same record is dialed.
        rules.max_attempts_per_day = None;
        assert!(matches!(
            decide(&rules, &c, None, noon_ny()),
            Decision::Dial { .. }
        ));
    }

    #[test]
    fn a_contact_in_two_zones_gets_the_strictest_day_and_callbacks_are_exempt() {
        let mut rules = CampaignRules::with_defaults("c");
        rules.max_attempts_per_day = Some(1);
        let mut c = candidate();
        c.time_zones = "America/New_York America/Los_Angeles".into();
        // 17:00 UTC: 13:00 in New York, 10:00 in Los Angeles. A dial at
        // 05:00 UTC was yesterday evening in Los Angeles (22:00 PDT) but
        // already today in New York (01:00 EDT): it counts.
        let now: Timestamp = "2026-07-15T17:00:00Z".parse().unwrap();
        c.recent_attempts = vec!["2026-07-15T05:00:00Z".parse().unwrap()];
        // The day ends at the later midnight: Los Angeles (07:00 UTC).
        assert_eq!(
            decide(&rules, &c, None, now),
            Decision::Defer {
                until: "2026-07-16T07:00:00Z".parse().unwrap()
            }
        );
        // A callback promised to the customer is not held to the limit.
        c.state = RecordState::Callback;
        c.callback = Some(PendingCallback {
            id: 3,
            agent: None,
            phone: None,
        });
        assert!(matches!(
            decide(&rules, &c, None, now),
            Decision::Dial { .. }
        ));
    }

    #[test]
    fn dnc_and_dead_numbers_close_the_record() {
        let rules = CampaignRules::with_defaults("c");
        let mut c = candidate();
        c.phones[0].dnc = true;
        c.phones[1].dead = true;
        assert!(matches!(
            decide(&rules, &c, None, noon_ny()),
            Decision::Close {
                state: RecordState::Removed,
                ..
            }
        ));
    }

    #[test]
    fn personal_callbacks_go_only_to_their_agent() {
        let rules = CampaignRules::with_defaults("c");
        let mut c = candidate();
        c.state = RecordState::Callback;
        c.callback = Some(PendingCallback {
            id: 7,
            agent: Some("1001".into()),
            phone: Some("+12025550102".into()),
        });
        assert_eq!(
            decide(&rules, &c, None, noon_ny()),
            Decision::Skip(SkipReason::PersonalCallbackForAnotherAgent)
        );
        assert_eq!(
            decide(&rules, &c, Some("1002"), noon_ny()),
            Decision::Skip(SkipReason::PersonalCallbackForAnotherAgent)
        );
        assert_eq!(
            decide(&rules, &c, Some("1001"), noon_ny()),
            Decision::Dial {
                phone: "+12025550102".into()
            }
        );
    }
}
