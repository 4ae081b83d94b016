//! One agent's session: the state machine of SPEC §8, sans-IO.
//!
//! Logged out → Not ready (reason) ↔ Ready → Reserved → Connecting → On call →
//! Wrap-up → Ready …; in the preview modes Ready → Previewing (a record on
//! screen) → Reserved (the agent pressed Call) or back to Ready; plus the negotiated logout: an agent who logs out while
//! the dialer has just selected them keeps the call until it is delivered or
//! released, with a visible countdown. The session never touches a socket or
//! the clock: every input carries `now`, and [`AgentSession::poll_timeout`]
//! says when it next needs [`AgentSession::handle_timeout`].
//!
//! The pacer counts only Ready agents as free and reads time-in-state of the
//! busy ones (on call, wrap-up) to predict when they will be free.

pub mod activity;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

/// Why an agent is not ready when the agent gave no reason.
pub const REASON_LOGIN: &str = "logged in";
/// The reservation (nailed-up) call to the agent's phone dropped.
pub const REASON_LEG_DROPPED: &str = "reservation call dropped";

/// Identifies the customer call an agent is reserved for or talking to.
pub type CallRef = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    LoggedOut,
    NotReady {
        reason: String,
    },
    Ready,
    /// Reviewing a record in (push) preview; nothing is dialed yet.
    Previewing,
    /// Selected for a customer who is being connected.
    Reserved {
        call: CallRef,
    },
    /// Hearing the zip tone; the customer is bridged when it ends.
    Connecting {
        call: CallRef,
    },
    OnCall {
        call: CallRef,
    },
    WrapUp {
        call: CallRef,
    },
}

impl AgentState {
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged_out",
            AgentState::NotReady { .. } => "not_ready",
            AgentState::Ready => "ready",
            AgentState::Previewing => "previewing",
            AgentState::Reserved { .. } => "reserved",
            AgentState::Connecting { .. } => "connecting",
            AgentState::OnCall { .. } => "on_call",
            AgentState::WrapUp { .. } => "wrap_up",
        }
    }

    fn call(&self) -> Option<CallRef> {
        match self {
            AgentState::Reserved { call }
            | AgentState::Connecting { call }
            | AgentState::OnCall { call }
            | AgentState::WrapUp { call } => Some(*call),
            _ => None,
        }
    }
}

/// What the agent asked for once the current call is over.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AfterCall {
    Ready,
    NotReady(String),
    Logout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    StateChanged {
        from: &'static str,
        to: AgentState,
    },
    /// A logout was asked while a customer is being connected to this agent.
    LogoutPending {
        remaining: Duration,
    },
    /// The negotiated-logout grace ran out with the agent still reserved:
    /// the engine must release (re-route or abandon) that call.
    ReleaseReservation {
        call: CallRef,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AgentError {
    #[error("agent is {state}; {action} needs {needs}")]
    WrongState {
        action: &'static str,
        state: &'static str,
        needs: &'static str,
    },
    #[error("the agent's phone is not connected (no reservation call); answer it first")]
    NoReservationLeg,
}

/// Timing policy for one agent's session.
#[derive(Debug, Clone)]
pub struct AgentPolicy {
    /// Progressive/predictive agents are reached through a nailed-up call;
    /// without it they cannot be Ready.
    pub requires_reservation_leg: bool,
    /// Wrap-up ends on its own after this long (None: only by disposition).
    pub wrap_up_limit: Option<Duration>,
    /// How long a negotiated logout may wait for a call being delivered.
    pub logout_grace: Duration,
}

impl Default for AgentPolicy {
    fn default() -> Self {
        Self {
            requires_reservation_leg: true,
            wrap_up_limit: None,
            logout_grace: Duration::from_secs(5),
        }
    }
}

/// Time spent in each kind of state, for occupancy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeInStates {
    pub ready: Duration,
    pub reserved: Duration,
    pub talking: Duration,
    pub wrap_up: Duration,
    pub not_ready: Duration,
}

impl TimeInStates {
    pub fn logged_in(&self) -> Duration {
        self.ready + self.reserved + self.talking + self.wrap_up + self.not_ready
    }

    /// What was spent since `earlier` (a snapshot of the same counters).
    fn since(&self, earlier: &TimeInStates) -> TimeInStates {
        TimeInStates {
            ready: self.ready.saturating_sub(earlier.ready),
            reserved: self.reserved.saturating_sub(earlier.reserved),
            talking: self.talking.saturating_sub(earlier.talking),
            wrap_up: self.wrap_up.saturating_sub(earlier.wrap_up),
            not_ready: self.not_ready.saturating_sub(earlier.not_ready),
        }
    }
}

/// An agent's figures since their latest login (the shift a supervisor
/// watches): time per kind of state and customers handled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shift {
    pub times: TimeInStates,
    /// Customers bridged to the agent.
    pub calls: u32,
}

impl Shift {
    /// Average handle time: talk and wrap-up per call.
    pub fn average_handle(&self) -> Option<Duration> {
        (self.calls > 0).then(|| (self.times.talking + self.times.wrap_up) / self.calls)
    }

    /// Handle occupancy: talk and wrap-up ÷ logged-in time.
    pub fn occupancy(&self) -> f64 {
        let logged_in = self.times.logged_in().as_secs_f64();
        if logged_in > 0.0 {
            (self.times.talking + self.times.wrap_up).as_secs_f64() / logged_in
        } else {
            0.0
        }
    }
}

#[derive(Debug)]
pub struct AgentSession {
    pub id: String,
    policy: AgentPolicy,
    state: AgentState,
    since: Instant,
    leg_up: bool,
    after_call: AfterCall,
    /// Deadline of a negotiated logout, while one is pending.
    logout_deadline: Option<Instant>,
    wrap_up_deadline: Option<Instant>,
    times: TimeInStates,
    /// Customers bridged to the agent since the session began.
    calls: u32,
    /// `times` and `calls` at the latest login (the shift's start).
    at_login: Shift,
    events: VecDeque<AgentEvent>,
}

impl AgentSession {
    pub fn new(id: impl Into<String>, policy: AgentPolicy, now: Instant) -> Self {
        Self {
            id: id.into(),
            policy,
            state: AgentState::LoggedOut,
            since: now,
            leg_up: false,
            after_call: AfterCall::Ready,
            logout_deadline: None,
            wrap_up_deadline: None,
            times: TimeInStates::default(),
            calls: 0,
            at_login: Shift::default(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> &AgentState {
        &self.state
    }

    /// How long the agent has been in the current state.
    pub fn time_in_state(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }

    pub fn is_ready(&self) -> bool {
        self.state == AgentState::Ready
    }

    pub fn logout_pending(&self) -> bool {
        self.after_call == AfterCall::Logout && self.state != AgentState::LoggedOut
    }

    /// Seconds left before a pending negotiated logout is forced.
    pub fn logout_remaining(&self, now: Instant) -> Option<Duration> {
        self.logout_deadline
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    pub fn times(&self, now: Instant) -> TimeInStates {
        let mut times = self.times.clone();
        Self::account(
            &mut times,
            &self.state,
            now.saturating_duration_since(self.since),
        );
        times
    }

    /// The figures since the latest login (of the last shift while logged
    /// out: they stop growing then).
    pub fn shift(&self, now: Instant) -> Shift {
        Shift {
            times: self.times(now).since(&self.at_login.times),
            calls: self.calls - self.at_login.calls,
        }
    }

    fn account(times: &mut TimeInStates, state: &AgentState, spent: Duration) {
        match state {
            AgentState::LoggedOut => {}
            AgentState::NotReady { .. } => times.not_ready += spent,
            AgentState::Ready => times.ready += spent,
            AgentState::Previewing | AgentState::Reserved { .. } => times.reserved += spent,
            AgentState::Connecting { .. } | AgentState::OnCall { .. } => times.talking += spent,
            AgentState::WrapUp { .. } => times.wrap_up += spent,
        }
    }

    fn enter(&mut self, next: AgentState, now: Instant) {
        let spent = now.saturating_duration_since(self.since);
        Self::account(&mut self.times, &self.state, spent);
        let from = self.state.name();
        self.state = next.clone();
        self.since = now;
        self.wrap_up_deadline = match (&self.state, self.policy.wrap_up_limit) {
            (AgentState::WrapUp { .. }, Some(limit)) => Some(now + limit),
            _ => None,
        };
        if self.state == AgentState::LoggedOut {
            self.logout_deadline = None;
            self.after_call = AfterCall::Ready;
        }
        self.events
            .push_back(AgentEvent::StateChanged { from, to: next });
    }

    fn wrong(&self, action: &'static str, needs: &'static str) -> AgentError {
        AgentError::WrongState {
            action,
            state: self.state.name(),
            needs,
        }
    }

    pub fn login(&mut self, now: Instant) -> Result<(), AgentError> {
        if self.state != AgentState::LoggedOut {
            return Err(self.wrong("login", "logged_out"));
        }
        self.at_login = Shift {
            times: self.times(now),
            calls: self.calls,
        };
        self.enter(
            AgentState::NotReady {
                reason: REASON_LOGIN.into(),
            },
            now,
        );
        Ok(())
    }

    /// The reservation call to the agent's phone is up.
    pub fn leg_up(&mut self, _now: Instant) {
        self.leg_up = true;
    }

    /// The reservation call dropped: a Ready or Reserved agent can no longer
    /// take customers, so the agent becomes Not ready (the engine re-places
    /// the call when the agent asks to be Ready again).
    pub fn leg_down(&mut self, now: Instant) {
        self.leg_up = false;
        if !self.policy.requires_reservation_leg {
            return;
        }
        match self.state {
            AgentState::Ready | AgentState::Previewing => self.enter(
                AgentState::NotReady {
                    reason: REASON_LEG_DROPPED.into(),
                },
                now,
            ),
            AgentState::Reserved { call } | AgentState::Connecting { call } => {
                self.events
                    .push_back(AgentEvent::ReleaseReservation { call });
                self.enter(
                    AgentState::NotReady {
                        reason: REASON_LEG_DROPPED.into(),
                    },
                    now,
                );
            }
            _ => {}
        }
    }

    pub fn has_leg(&self) -> bool {
        self.leg_up
    }

    pub fn ready(&mut self, now: Instant) -> Result<(), AgentError> {
        match self.state {
            AgentState::NotReady { .. } => {
                if self.policy.requires_reservation_leg && !self.leg_up {
                    return Err(AgentError::NoReservationLeg);
                }
                self.enter(AgentState::Ready, now);
                Ok(())
            }
            AgentState::Ready | AgentState::Previewing => Ok(()),
            AgentState::Reserved { .. }
            | AgentState::Connecting { .. }
            | AgentState::OnCall { .. } => {
                self.after_call = AfterCall::Ready;
                self.logout_deadline = None;
                Ok(())
            }
            AgentState::WrapUp { .. } => {
                self.after_call = AfterCall::Ready;
                self.finish_wrap_up(now);
                Ok(())
            }
            AgentState::LoggedOut => Err(self.wrong("ready", "a logged-in agent")),
        }
    }

    pub fn not_ready(&mut self, reason: &str, now: Instant) -> Result<(), AgentError> {
        let reason = if reason.trim().is_empty() {
            "not ready".to_string()
        } else {
            reason.trim().to_string()
        };
        match self.state {
            // A record being previewed goes back (the engine sees the
            // agent leave Previewing).
            AgentState::Ready | AgentState::Previewing | AgentState::NotReady { .. } => {
                self.enter(AgentState::NotReady { reason }, now);
                Ok(())
            }
            AgentState::LoggedOut => Err(self.wrong("not ready", "a logged-in agent")),
            // Busy: takes effect when the call and its wrap-up are over.
            _ => {
                self.after_call = AfterCall::NotReady(reason);
                Ok(())
            }
        }
    }

    /// Logs out now, or — while a customer is being connected or talked to —
    /// once that call is over (negotiated logout).
    pub fn logout(&mut self, now: Instant) -> Result<(), AgentError> {
        match self.state {
            AgentState::LoggedOut => Err(self.wrong("logout", "a logged-in agent")),
            AgentState::Ready | AgentState::Previewing | AgentState::NotReady { .. } => {
                self.enter(AgentState::LoggedOut, now);
                Ok(())
            }
            AgentState::Reserved { .. } | AgentState::Connecting { .. } => {
                self.after_call = AfterCall::Logout;
                let deadline = now + self.policy.logout_grace;
                self.logout_deadline = Some(deadline);
                self.events.push_back(AgentEvent::LogoutPending {
                    remaining: self.policy.logout_grace,
                });
                Ok(())
            }
            AgentState::OnCall { .. } | AgentState::WrapUp { .. } => {
                self.after_call = AfterCall::Logout;
                if matches!(self.state, AgentState::WrapUp { .. }) {
                    self.finish_wrap_up(now);
                }
                Ok(())
            }
        }
    }

    /// The dispatcher picked this agent for a customer, or the agent
    /// pressed Call on the record being previewed.
    pub fn reserve(&mut self, call: CallRef, now: Instant) -> Result<(), AgentError> {
        if !matches!(self.state, AgentState::Ready | AgentState::Previewing) {
            return Err(self.wrong("reserve", "ready or previewing"));
        }
        self.enter(AgentState::Reserved { call }, now);
        Ok(())
    }

    /// A record is shown to the agent (preview, push preview).
    pub fn preview(&mut self, now: Instant) -> Result<(), AgentError> {
        if self.state != AgentState::Ready {
            return Err(self.wrong("preview a record", "ready"));
        }
        if self.policy.requires_reservation_leg && !self.leg_up {
            return Err(AgentError::NoReservationLeg);
        }
        self.enter(AgentState::Previewing, now);
        Ok(())
    }

    /// The previewed record was skipped, declined or removed: ready for the
    /// next one (or what the agent asked for meanwhile).
    pub fn preview_over(&mut self, now: Instant) -> Result<(), AgentError> {
        if self.state != AgentState::Previewing {
            return Err(self.wrong("end a preview", "previewing"));
        }
        self.apply_after_call(now);
        Ok(())
    }

    /// The customer went away before being connected.
    pub fn release(&mut self, now: Instant) -> Result<(), AgentError> {
        match self.state {
            AgentState::Reserved { .. } | AgentState::Connecting { .. } => {
                self.after_reserved_call(now);
                Ok(())
            }
            _ => Err(self.wrong("release", "reserved or connecting")),
        }
    }

    /// The zip tone starts on the agent's leg.
    pub fn connecting(&mut self, now: Instant) -> Result<(), AgentError> {
        match self.state {
            AgentState::Reserved { call } => {
                self.enter(AgentState::Connecting { call }, now);
                Ok(())
            }
            _ => Err(self.wrong("connect", "reserved")),
        }
    }

    /// The customer is bridged to the agent. A pending logout's countdown
    /// stops here: the call was delivered.
    pub fn bridged(&mut self, now: Instant) -> Result<(), AgentError> {
        match self.state {
            AgentState::Reserved { call } | AgentState::Connecting { call } => {
                self.logout_deadline = None;
                self.calls += 1;
                self.enter(AgentState::OnCall { call }, now);
                Ok(())
            }
            _ => Err(self.wrong("bridge", "reserved or connecting")),
        }
    }

    /// The customer call ended (either side hung up).
    pub fn call_ended(&mut self, now: Instant) -> Result<(), AgentError> {
        match self.state {
            AgentState::OnCall { call } => {
                self.enter(AgentState::WrapUp { call }, now);
                Ok(())
            }
            AgentState::Reserved { .. } | AgentState::Connecting { .. } => {
                self.after_reserved_call(now);
                Ok(())
            }
            _ => Err(self.wrong("end the call", "on a call")),
        }
    }

    /// The agent is done with the customer before the call ends, and the
    /// call needs no wrap-up of theirs: handed to another agent (a
    /// transfer: the call, its disposition included, is the next agent's),
    /// or left a recorded voicemail (a voicemail drop: the result says it
    /// all). On to Ready, or what the agent asked for meanwhile.
    pub fn leave_call_without_wrap_up(&mut self, now: Instant) -> Result<(), AgentError> {
        match self.state {
            AgentState::OnCall { .. } => {
                self.apply_after_call(now);
                Ok(())
            }
            _ => Err(self.wrong("hand the call on", "on_call")),
        }
    }

    /// The campaign's wrap-up timer: the current wrap-up ends by itself
    /// after `limit` (or sooner, if the agent's own policy says so).
    pub fn limit_wrap_up(&mut self, limit: Duration, now: Instant) {
        if matches!(self.state, AgentState::WrapUp { .. }) {
            let deadline = now + limit;
            self.wrap_up_deadline = Some(
                self.wrap_up_deadline
                    .map_or(deadline, |own| own.min(deadline)),
            );
        }
    }

    /// When the current wrap-up ends by itself, if it does.
    pub fn wrap_up_deadline(&self) -> Option<Instant> {
        self.wrap_up_deadline
    }

    /// The agent saved the disposition: wrap-up is over.
    pub fn wrap_up_done(&mut self, now: Instant) -> Result<(), AgentError> {
        match self.state {
            AgentState::WrapUp { .. } => {
                self.finish_wrap_up(now);
                Ok(())
            }
            _ => Err(self.wrong("dispose", "wrap_up")),
        }
    }

    pub fn current_call(&self) -> Option<CallRef> {
        self.state.call()
    }

    fn after_reserved_call(&mut self, now: Instant) {
        self.logout_deadline = None;
        self.apply_after_call(now);
    }

    fn finish_wrap_up(&mut self, now: Instant) {
        self.apply_after_call(now);
    }

    fn apply_after_call(&mut self, now: Instant) {
        let next = match std::mem::replace(&mut self.after_call, AfterCall::Ready) {
            AfterCall::Ready if self.policy.requires_reservation_leg && !self.leg_up => {
                AgentState::NotReady {
                    reason: REASON_LEG_DROPPED.into(),
                }
            }
            AfterCall::Ready => AgentState::Ready,
            AfterCall::NotReady(reason) => AgentState::NotReady { reason },
            AfterCall::Logout => AgentState::LoggedOut,
        };
        self.enter(next, now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.wrap_up_deadline, self.logout_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.wrap_up_deadline
            && now >= deadline
            && matches!(self.state, AgentState::WrapUp { .. })
        {
            self.finish_wrap_up(now);
        }
        if let Some(deadline) = self.logout_deadline
            && now >= deadline
        {
            self.logout_deadline = None;
            if let AgentState::Reserved { call } | AgentState::Connecting { call } = self.state {
                // The call was not delivered in time: hand it back and go.
                self.events
                    .push_back(AgentEvent::ReleaseReservation { call });
                self.enter(AgentState::LoggedOut, now);
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<AgentEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests;
