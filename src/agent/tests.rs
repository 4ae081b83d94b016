use std::time::{Duration, Instant};

use super::*;

fn ready_agent(now: Instant) -> AgentSession {
    let mut agent = AgentSession::new("1001", AgentPolicy::default(), now);
    agent.login(now).unwrap();
    agent.leg_up(now);
    agent.ready(now).unwrap();
    agent
}

fn drain(agent: &mut AgentSession) -> Vec<AgentEvent> {
    std::iter::from_fn(|| agent.poll_event()).collect()
}

#[test]
fn full_call_cycle_accounts_time_per_state() {
    let t0 = Instant::now();
    let mut agent = ready_agent(t0);
    agent.reserve(7, t0 + Duration::from_secs(10)).unwrap();
    agent
        .connecting(t0 + Duration::from_millis(10_010))
        .unwrap();
    agent.bridged(t0 + Duration::from_millis(10_200)).unwrap();
    assert_eq!(agent.current_call(), Some(7));
    agent.call_ended(t0 + Duration::from_secs(70)).unwrap();
    assert_eq!(agent.state(), &AgentState::WrapUp { call: 7 });
    agent.wrap_up_done(t0 + Duration::from_secs(80)).unwrap();
    assert!(agent.is_ready());
    let times = agent.times(t0 + Duration::from_secs(90));
    assert_eq!(times.ready, Duration::from_secs(20));
    assert_eq!(times.reserved, Duration::from_millis(10));
    assert_eq!(times.talking, Duration::from_millis(59_990));
    assert_eq!(times.wrap_up, Duration::from_secs(10));
    assert_eq!(times.logged_in(), Duration::from_secs(90));
}

#[test]
fn cannot_be_ready_without_the_reservation_call() {
    let t0 = Instant::now();
    let mut agent = AgentSession::new("1001", AgentPolicy::default(), t0);
    assert!(agent.ready(t0).is_err(), "logged out");
    agent.login(t0).unwrap();
    assert_eq!(agent.ready(t0), Err(AgentError::NoReservationLeg));
    agent.leg_up(t0);
    agent.ready(t0).unwrap();
    // Per-call ringing agents need no nailed-up leg.
    let policy = AgentPolicy {
        requires_reservation_leg: false,
        ..AgentPolicy::default()
    };
    let mut ringing = AgentSession::new("1002", policy, t0);
    ringing.login(t0).unwrap();
    ringing.ready(t0).unwrap();
}

#[test]
fn dropped_leg_makes_a_ready_agent_not_ready() {
    let t0 = Instant::now();
    let mut agent = ready_agent(t0);
    drain(&mut agent);
    agent.leg_down(t0);
    assert_eq!(
        agent.state(),
        &AgentState::NotReady {
            reason: REASON_LEG_DROPPED.into()
        }
    );
    // A reserved agent hands its customer back.
    let mut agent = ready_agent(t0);
    agent.reserve(3, t0).unwrap();
    drain(&mut agent);
    agent.leg_down(t0);
    assert!(drain(&mut agent).contains(&AgentEvent::ReleaseReservation { call: 3 }));
    assert!(!agent.is_ready());
}

#[test]
fn negotiated_logout_waits_for_the_call_being_delivered() {
    let t0 = Instant::now();
    let mut agent = ready_agent(t0);
    agent.reserve(9, t0).unwrap();
    drain(&mut agent);
    agent.logout(t0 + Duration::from_millis(100)).unwrap();
    assert_eq!(
        drain(&mut agent),
        vec![AgentEvent::LogoutPending {
            remaining: Duration::from_secs(5)
        }]
    );
    assert!(agent.logout_pending());
    assert_eq!(
        agent.logout_remaining(t0 + Duration::from_secs(2)),
        Some(Duration::from_millis(3100))
    );
    assert_eq!(agent.poll_timeout(), Some(t0 + Duration::from_millis(5100)));
    // The customer is delivered: the agent takes the call, then logs out.
    agent.bridged(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(agent.poll_timeout(), None, "countdown stops on delivery");
    agent.call_ended(t0 + Duration::from_secs(30)).unwrap();
    agent.wrap_up_done(t0 + Duration::from_secs(40)).unwrap();
    assert_eq!(agent.state(), &AgentState::LoggedOut);
}

#[test]
fn negotiated_logout_releases_an_undelivered_call_at_the_deadline() {
    let t0 = Instant::now();
    let mut agent = ready_agent(t0);
    agent.reserve(4, t0).unwrap();
    agent.logout(t0).unwrap();
    drain(&mut agent);
    agent.handle_timeout(t0 + Duration::from_secs(4));
    assert!(
        matches!(agent.state(), AgentState::Reserved { .. }),
        "not yet"
    );
    agent.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(agent.state(), &AgentState::LoggedOut);
    assert!(drain(&mut agent).contains(&AgentEvent::ReleaseReservation { call: 4 }));
}

#[test]
fn released_reservation_logs_out_at_once_when_pending() {
    let t0 = Instant::now();
    let mut agent = ready_agent(t0);
    agent.reserve(4, t0).unwrap();
    agent.logout(t0).unwrap();
    agent.release(t0 + Duration::from_millis(500)).unwrap();
    assert_eq!(agent.state(), &AgentState::LoggedOut);
    assert_eq!(agent.poll_timeout(), None);
}

#[test]
fn not_ready_while_busy_takes_effect_after_wrap_up() {
    let t0 = Instant::now();
    let mut agent = ready_agent(t0);
    agent.reserve(1, t0).unwrap();
    agent.bridged(t0).unwrap();
    agent.not_ready("lunch", t0).unwrap();
    assert!(matches!(agent.state(), AgentState::OnCall { .. }));
    agent.call_ended(t0).unwrap();
    agent.wrap_up_done(t0).unwrap();
    assert_eq!(
        agent.state(),
        &AgentState::NotReady {
            reason: "lunch".into()
        }
    );
}

#[test]
fn wrap_up_limit_returns_the_agent_to_ready() {
    let t0 = Instant::now();
    let policy = AgentPolicy {
        wrap_up_limit: Some(Duration::from_secs(15)),
        ..AgentPolicy::default()
    };
    let mut agent = AgentSession::new("1001", policy, t0);
    agent.login(t0).unwrap();
    agent.leg_up(t0);
    agent.ready(t0).unwrap();
    agent.reserve(1, t0).unwrap();
    agent.bridged(t0).unwrap();
    agent.call_ended(t0 + Duration::from_secs(60)).unwrap();
    assert_eq!(agent.poll_timeout(), Some(t0 + Duration::from_secs(75)));
    agent.handle_timeout(t0 + Duration::from_secs(74));
    assert!(matches!(agent.state(), AgentState::WrapUp { .. }));
    agent.handle_timeout(t0 + Duration::from_secs(75));
    assert!(agent.is_ready());
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let t0 = Instant::now();
    let mut agent = ready_agent(t0);
    assert!(agent.bridged(t0).is_err());
    assert!(agent.call_ended(t0).is_err());
    assert!(agent.wrap_up_done(t0).is_err());
    assert!(agent.release(t0).is_err());
    agent.reserve(1, t0).unwrap();
    let error = agent.reserve(2, t0).unwrap_err();
    assert_eq!(
        error.to_string(),
        "agent is reserved; reserve needs ready or previewing"
    );
    assert!(agent.login(t0).is_err());
}

#[test]
fn a_previewed_record_is_called_or_given_back() {
    let t0 = Instant::now();
    let mut agent = ready_agent(t0);
    drain(&mut agent);
    agent.preview(t0).unwrap();
    assert_eq!(agent.state(), &AgentState::Previewing);
    // One record at a time; Ready again is a no-op while previewing.
    assert!(agent.preview(t0).is_err());
    agent.ready(t0).unwrap();
    assert_eq!(agent.state(), &AgentState::Previewing);
    // Skipped: ready for the next.
    agent.preview_over(t0 + Duration::from_secs(5)).unwrap();
    assert!(agent.is_ready());
    assert!(agent.preview_over(t0).is_err());
    // Called: reserved for that call, then the usual cycle.
    agent.preview(t0 + Duration::from_secs(6)).unwrap();
    agent.reserve(9, t0 + Duration::from_secs(8)).unwrap();
    assert_eq!(agent.current_call(), Some(9));
    // The call failed (busy): back to ready.
    agent.call_ended(t0 + Duration::from_secs(10)).unwrap();
    assert!(agent.is_ready());
    // Previewing time counts as reserved, not ready.
    let times = agent.times(t0 + Duration::from_secs(10));
    assert_eq!(times.reserved, Duration::from_secs(9));
    assert_eq!(times.ready, Duration::from_secs(1));
}

#[test]
fn a_preview_ends_with_not_ready_logout_or_a_dropped_phone() {
    let t0 = Instant::now();
    let mut agent = ready_agent(t0);
    agent.preview(t0).unwrap();
    agent.not_ready("break", t0).unwrap();
    assert_eq!(agent.state().name(), "not_ready");
    agent.ready(t0).unwrap();
    agent.preview(t0).unwrap();
    agent.leg_down(t0);
    assert_eq!(agent.state().name(), "not_ready");
    assert!(matches!(
        agent.preview(t0),
        Err(AgentError::WrongState { .. })
    ));
    agent.leg_up(t0);
    agent.ready(t0).unwrap();
    agent.preview(t0).unwrap();
    agent.logout(t0).unwrap();
    assert_eq!(agent.state(), &AgentState::LoggedOut);
}

#[test]
fn a_shift_counts_from_the_latest_login() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut agent = ready_agent(t0);
    // One call: 60 s talk, 10 s wrap-up.
    agent.reserve(1, t0 + s(10)).unwrap();
    agent.bridged(t0 + s(10)).unwrap();
    agent.call_ended(t0 + s(70)).unwrap();
    agent.wrap_up_done(t0 + s(80)).unwrap();
    let shift = agent.shift(t0 + s(100));
    assert_eq!(shift.calls, 1);
    assert_eq!(shift.times.talking, s(60));
    assert_eq!(shift.average_handle(), Some(s(70)));
    assert!(
        (shift.occupancy() - 0.7).abs() < 1e-9,
        "{}",
        shift.occupancy()
    );
    // Logged out: the figures stay those of that shift.
    agent.logout(t0 + s(100)).unwrap();
    assert_eq!(agent.shift(t0 + s(500)), shift);
    // A new login starts a new shift; the session's own totals go on.
    agent.login(t0 + s(500)).unwrap();
    let fresh = agent.shift(t0 + s(510));
    assert_eq!(fresh.calls, 0);
    assert_eq!(fresh.average_handle(), None);
    assert_eq!(fresh.times.not_ready, s(10));
    assert_eq!(fresh.times.logged_in(), s(10));
    assert_eq!(agent.times(t0 + s(510)).talking, s(60));
}
