//! Whether the trunk may take new calls now: the carrier's own word and
//! what its answers show, sans-IO.
//!
//! Holds, any of which stops new INVITEs (calls in progress go on):
//! - **Unresolved**: the trunk's address is not known (its DNS lookup has
//!   not succeeded since the start: a node started during a DNS outage).
//!   Dialing then would only fail each call at once — and give its attempt
//!   back, trip the breaker and end in the CDRs as network failures; the
//!   shell looks the trunk up again every `ROUTE_RETRY` on its own.
//! - **Retry-After**: a 503 with `Retry-After` asks us not to send a new
//!   request before the time given (RFC 3261 §21.5.4). Dialing on regardless
//!   turns every record it reaches into a "congestion" attempt and is how a
//!   carrier's overload protection comes to block a trunk.
//! - **Unreachable**: the OPTIONS keepalive went unanswered after the trunk
//!   had answered one (a trunk that never answers OPTIONS is not held: some
//!   carriers ignore them, and their calls show the trunk's health).
//! - **Failing** (a circuit breaker): [`FAILURES_TO_OPEN`] calls in a row
//!   ended with no answer from the trunk (transaction timeout) or with a
//!   502/503/504; new calls wait [`FIRST_BACKOFF`], then one call probes
//!   the trunk: an answer of any kind (ringing, busy, 404, …) closes the
//!   breaker, another failure doubles the wait up to [`MAX_BACKOFF`].
//! - **Refusing**: the same breaker, when the last of those calls was
//!   refused by the trunk itself — 401/407 that our credentials could not
//!   answer, 403, or our request refused (488 for our media offer,
//!   400/415/420). Wrong credentials, a suspended account, an address the
//!   carrier does not know or a codec it does not take refuse every call
//!   at once: without the
//!   breaker the dialer ran through the whole list at the trunk's calls
//!   per second, spending an attempt of every record on it. A 403 for one
//!   barred destination costs a campaign one probe's wait at most: the
//!   next call that rings closes the breaker.
//!
//! Any response from the trunk other than those shows it reachable and
//! clears the breaker.

use std::time::{Duration, Instant};

/// Calls in a row ending in congestion or no response that hold dialing.
pub const FAILURES_TO_OPEN: u32 = 5;
/// The first wait after the breaker opens.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The longest wait between probes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A longer Retry-After is taken as this (a misconfigured carrier must not
/// stop a campaign for a day).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How a call attempt ended, as the trunk's health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallSignal {
    /// The trunk answered the INVITE (a provisional, a 2xx, or a final
    /// response that is not congestion).
    Responded,
    /// 502, 503 or 504, with the Retry-After if any.
    Congestion { retry_after: Option<Duration> },
    /// No response at all (Timer B, a transport failure).
    NoResponse,
    /// The trunk refused the call: 401/407 our credentials could not
    /// answer, 403, or our request (488, 400, 415, 420).
    Refused,
}

/// Why new calls are held, for agents and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkHold {
    Unresolved,
    RetryAfter,
    Unreachable,
    Failing,
    Refusing,
}

impl TrunkHold {
    /// What agents and supervisors are told.
    pub fn reason(self) -> &'static str {
        match self {
            TrunkHold::Unresolved => {
                "trunk address unknown: its DNS lookup has not succeeded yet; dialing waits for it"
            }
            TrunkHold::RetryAfter => {
                "trunk congested: the carrier asked for a pause (503 Retry-After)"
            }
            TrunkHold::Unreachable => "trunk down: no answer to OPTIONS",
            TrunkHold::Failing => "trunk failing: calls get no answer or 503, dialing backs off",
            TrunkHold::Refusing => {
                "trunk refuses our calls (403, 401/407, 488): check its credentials, account and codecs; dialing backs off"
            }
        }
    }

    /// The `reason` label of the `outdial_trunk_held` gauge.
    pub fn label(self) -> &'static str {
        match self {
            TrunkHold::Unresolved => "unresolved",
            TrunkHold::RetryAfter => "retry_after",
            TrunkHold::Unreachable => "unreachable",
            TrunkHold::Failing => "failing",
            TrunkHold::Refusing => "refusing",
        }
    }

    pub const ALL: [TrunkHold; 5] = [
        TrunkHold::Unresolved,
        TrunkHold::RetryAfter,
        TrunkHold::Unreachable,
        TrunkHold::Failing,
        TrunkHold::Refusing,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed {
        failures_in_a_row: u32,
    },
    Open {
        until: Instant,
        backoff: Duration,
    },
    /// One call may go to see whether the trunk is back.
    Probing {
        probe_sent: bool,
        backoff: Duration,
    },
}

/// The trunk's health, fed with what its calls and pings show.
#[derive(Debug, Clone)]
pub struct TrunkHealth {
    /// The shell has no address for the trunk (see [`TrunkHold::Unresolved`]).
    unresolved: bool,
    answered_a_ping: bool,
    unreachable: bool,
    retry_after_until: Option<Instant>,
    breaker: Breaker,
    /// The last failure the breaker counted was a refusal (the reason
    /// agents see while it is open).
    refused_last: bool,
}

impl Default for TrunkHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl TrunkHealth {
    pub fn new() -> Self {
        TrunkHealth {
            unresolved: false,
            answered_a_ping: false,
            unreachable: false,
            retry_after_until: None,
            breaker: Breaker::Closed {
                failures_in_a_row: 0,
            },
            refused_last: false,
        }
    }

    /// The shell's lookup of the trunk: whether it has an address for it
    /// (a route once found is kept through failed lookups).
    pub fn on_route(&mut self, known: bool) {
        self.unresolved = !known;
    }

    /// An OPTIONS keepalive was answered (any response) or timed out.
    pub fn on_ping(&mut self, answered: bool) {
        if answered {
            self.answered_a_ping = true;
            self.unreachable = false;
        } else if self.answered_a_ping {
            self.unreachable = true;
        }
    }

    /// A call attempt showed something of the trunk.
    pub fn on_call(&mut self, signal: CallSignal, now: Instant) {
        match signal {
            CallSignal::Responded => {
                self.unreachable = false;
                self.breaker = Breaker::Closed {
                    failures_in_a_row: 0,
                };
            }
            CallSignal::Congestion { retry_after } => {
                // The trunk is there, only busy.
                self.unreachable = false;
                self.refused_last = false;
                if let Some(wait) = retry_after {
                    let until = now + wait.min(MAX_RETRY_AFTER);
                    self.retry_after_until =
                        Some(self.retry_after_until.map_or(until, |u| u.max(until)));
                }
                self.failed(now);
            }
            CallSignal::NoResponse => {
                self.refused_last = false;
                self.failed(now);
            }
            CallSignal::Refused => {
                // The trunk is there, and says no.
                self.unreachable = false;
                self.refused_last = true;
                self.failed(now);
            }
        }
    }

    fn failed(&mut self, now: Instant) {
        self.breaker = match self.breaker_at(now) {
            Breaker::Closed { failures_in_a_row } if failures_in_a_row + 1 >= FAILURES_TO_OPEN => {
                Breaker::Open {
                    until: now + FIRST_BACKOFF,
                    backoff: FIRST_BACKOFF,
                }
            }
            Breaker::Closed { failures_in_a_row } => Breaker::Closed {
                failures_in_a_row: failures_in_a_row + 1,
            },
            // Calls placed before it opened still end: no longer wait.
            open @ Breaker::Open { .. } => open,
            Breaker::Probing { backoff, .. } => {
                let backoff = (backoff * 2).min(MAX_BACKOFF);
                Breaker::Open {
                    until: now + backoff,
                    backoff,
                }
            }
        };
    }

    /// A new call went to the trunk at `now`.
    pub fn on_dial(&mut self, now: Instant) {
        if let Breaker::Probing { backoff, .. } = self.breaker_at(now) {
            self.breaker = Breaker::Probing {
                probe_sent: true,
                backoff,
            };
        }
    }

    /// The breaker at `now`: an open one whose wait is over lets a probe go.
    fn breaker_at(&self, now: Instant) -> Breaker {
        match self.breaker {
            Breaker::Open { until, backoff } if until <= now => Breaker::Probing {
                probe_sent: false,
                backoff,
            },
            breaker => breaker,
        }
    }

    /// How long the carrier's Retry-After still holds new calls at `now`.
    pub fn retry_after_remaining(&self, now: Instant) -> Option<Duration> {
        self.retry_after_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Another node sharing the trunk (or this one before a restart) was
    /// asked to pause: hold new calls `remaining` from `now` too.
    pub fn hold_for(&mut self, remaining: Duration, now: Instant) {
        let until = now + remaining.min(MAX_RETRY_AFTER);
        self.retry_after_until = Some(self.retry_after_until.map_or(until, |u| u.max(until)));
    }

    /// Why new calls are held at `now`, if they are.
    pub fn hold(&self, now: Instant) -> Option<TrunkHold> {
        if self.unresolved {
            Some(TrunkHold::Unresolved)
        } else if self.retry_after_until.is_some_and(|until| until > now) {
            Some(TrunkHold::RetryAfter)
        } else if self.unreachable {
            Some(TrunkHold::Unreachable)
        } else {
            match self.breaker_at(now) {
                Breaker::Closed { .. }
                | Breaker::Probing {
                    probe_sent: false, ..
                } => None,
                Breaker::Open { .. }
                | Breaker::Probing {
                    probe_sent: true, ..
                } if self.refused_last => Some(TrunkHold::Refusing),
                Breaker::Open { .. }
                | Breaker::Probing {
                    probe_sent: true, ..
                } => Some(TrunkHold::Failing),
            }
        }
    }

    /// New calls the trunk may take at `now`: none while held, one to
    /// probe it.
    pub fn allowed_starts(&self, now: Instant) -> u32 {
        if self.hold(now).is_some() {
            0
        } else if matches!(self.breaker_at(now), Breaker::Probing { .. }) {
            1
        } else {
            u32::MAX
        }
    }

    /// When a hold that time lifts ends after `now` (not one that waits
    /// for a ping or a probe's answer).
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        let open_until = match self.breaker {
            Breaker::Open { until, .. } => Some(until),
            _ => None,
        };
        [self.retry_after_until, open_until]
            .into_iter()
            .flatten()
            .filter(|at| *at > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn congestion(retry_after: Option<u64>) -> CallSignal {
        CallSignal::Congestion {
            retry_after: retry_after.map(s),
        }
    }

    #[test]
    fn no_call_goes_while_the_trunk_has_no_address() {
        let t0 = Instant::now();
        let mut health = TrunkHealth::new();
        health.on_route(false);
        assert_eq!(health.hold(t0), Some(TrunkHold::Unresolved));
        assert_eq!(health.allowed_starts(t0), 0);
        assert_eq!(health.next_change(t0), None, "lifted by a lookup, not time");
        health.on_route(true);
        assert_eq!(health.hold(t0), None);
        assert_eq!(health.allowed_starts(t0), u32::MAX);
    }

    #[test]
    fn a_503_with_retry_after_holds_new_calls_until_then() {
        let t0 = Instant::now();
        let mut health = TrunkHealth::new();
        assert_eq!(health.allowed_starts(t0), u32::MAX);
        health.on_call(congestion(Some(30)), t0);
        assert_eq!(health.hold(t0 + s(29)), Some(TrunkHold::RetryAfter));
        assert_eq!(health.allowed_starts(t0 + s(29)), 0);
        assert_eq!(health.next_change(t0), Some(t0 + s(30)));
        // Another call answered meanwhile does not lift the carrier's ask.
        health.on_call(CallSignal::Responded, t0 + s(10));
        assert_eq!(health.hold(t0 + s(20)), Some(TrunkHold::RetryAfter));
        assert_eq!(health.hold(t0 + s(30)), None);
        assert_eq!(health.allowed_starts(t0 + s(30)), u32::MAX);
    }

    #[test]
    fn another_nodes_retry_after_holds_this_node_too() {
        let t0 = Instant::now();
        let mut health = TrunkHealth::new();
        health.on_call(congestion(Some(30)), t0);
        assert_eq!(health.retry_after_remaining(t0 + s(10)), Some(s(20)));
        // Another node of the trunk was told 120 s: the longer hold wins.
        health.hold_for(s(120), t0 + s(10));
        assert_eq!(health.hold(t0 + s(129)), Some(TrunkHold::RetryAfter));
        assert_eq!(health.next_change(t0 + s(40)), Some(t0 + s(130)));
        // A shorter one changes nothing, and none is over an hour.
        health.hold_for(s(5), t0 + s(20));
        assert_eq!(health.retry_after_remaining(t0 + s(30)), Some(s(100)));
        health.hold_for(s(86_400), t0 + s(30));
        assert_eq!(
            health.retry_after_remaining(t0 + s(30)),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            health.retry_after_remaining(t0 + s(30) + MAX_RETRY_AFTER),
            None
        );
        assert_eq!(health.hold(t0 + s(30) + MAX_RETRY_AFTER), None);
    }

    #[test]
    fn a_very_long_retry_after_is_capped() {
        let t0 = Instant::now();
        let mut health = TrunkHealth::new();
        health.on_call(congestion(Some(86_400)), t0);
        assert_eq!(health.next_change(t0), Some(t0 + MAX_RETRY_AFTER));
    }

    #[test]
    fn failures_in_a_row_open_the_breaker_and_one_call_probes() {
        let t0 = Instant::now();
        let mut health = TrunkHealth::new();
        for _ in 1..FAILURES_TO_OPEN {
            health.on_call(CallSignal::NoResponse, t0);
        }
        assert_eq!(health.hold(t0), None, "four failures are bad luck");
        health.on_call(congestion(None), t0);
        assert_eq!(health.hold(t0), Some(TrunkHold::Failing));
        assert_eq!(health.next_change(t0), Some(t0 + FIRST_BACKOFF));
        // Calls placed before it opened fail too: the wait does not grow.
        health.on_call(CallSignal::NoResponse, t0 + s(1));
        assert_eq!(health.next_change(t0 + s(1)), Some(t0 + FIRST_BACKOFF));
        // After the wait one call may go.
        assert_eq!(health.allowed_starts(t0 + FIRST_BACKOFF), 1);
        health.on_dial(t0 + FIRST_BACKOFF);
        assert_eq!(health.allowed_starts(t0 + FIRST_BACKOFF), 0);
        // It fails: twice the wait.
        health.on_call(congestion(None), t0 + s(3));
        assert_eq!(
            health.next_change(t0 + s(3)),
            Some(t0 + s(3) + FIRST_BACKOFF * 2)
        );
        assert_eq!(health.allowed_starts(t0 + s(6)), 0);
        // The next probe rings: the trunk is back.
        assert_eq!(health.allowed_starts(t0 + s(7)), 1);
        health.on_dial(t0 + s(7));
        health.on_call(CallSignal::Responded, t0 + s(8));
        assert_eq!(health.allowed_starts(t0 + s(8)), u32::MAX);
        assert_eq!(health.next_change(t0 + s(8)), None);
    }

    #[test]
    fn the_wait_between_probes_stops_growing() {
        let t0 = Instant::now();
        let mut health = TrunkHealth::new();
        for _ in 0..FAILURES_TO_OPEN {
            health.on_call(CallSignal::NoResponse, t0);
        }
        let mut now = t0;
        for _ in 0..10 {
            now = health.next_change(now).unwrap();
            assert_eq!(health.allowed_starts(now), 1);
            health.on_dial(now);
            health.on_call(CallSignal::NoResponse, now);
        }
        assert_eq!(health.next_change(now), Some(now + MAX_BACKOFF));
    }

    #[test]
    fn any_answer_between_failures_keeps_the_breaker_closed() {
        let t0 = Instant::now();
        let mut health = TrunkHealth::new();
        for _ in 0..20 {
            for _ in 1..FAILURES_TO_OPEN {
                health.on_call(CallSignal::NoResponse, t0);
            }
            health.on_call(CallSignal::Responded, t0);
        }
        assert_eq!(health.hold(t0), None);
    }

    #[test]
    fn an_unanswered_ping_holds_only_a_trunk_that_answered_one() {
        let t0 = Instant::now();
        let mut health = TrunkHealth::new();
        // Some carriers never answer OPTIONS: their calls tell.
        health.on_ping(false);
        assert_eq!(health.hold(t0), None);
        health.on_ping(true);
        health.on_ping(false);
        assert_eq!(health.hold(t0), Some(TrunkHold::Unreachable));
        assert_eq!(
            health.next_change(t0),
            None,
            "lifted by an answer, not by time"
        );
        health.on_ping(true);
        assert_eq!(health.hold(t0), None);
        // A call's answer shows it reachable as well.
        health.on_ping(false);
        health.on_call(CallSignal::Responded, t0);
        assert_eq!(health.hold(t0), None);
    }

    #[test]
    fn refusals_open_the_breaker_with_their_own_reason() {
        let t0 = Instant::now();
        let mut health = TrunkHealth::new();
        for _ in 0..4 {
            health.on_call(CallSignal::Refused, t0);
        }
        assert_eq!(health.hold(t0), None, "four refusals may be barred numbers");
        health.on_call(CallSignal::Refused, t0);
        assert_eq!(health.hold(t0), Some(TrunkHold::Refusing));
        // A timeout last: the trunk is failing, not refusing.
        let mut mixed = TrunkHealth::new();
        for signal in [CallSignal::Refused; 4] {
            mixed.on_call(signal, t0);
        }
        mixed.on_call(CallSignal::NoResponse, t0);
        assert_eq!(mixed.hold(t0), Some(TrunkHold::Failing));
        // The probe rings: the breaker closes.
        assert_eq!(health.allowed_starts(t0 + FIRST_BACKOFF), 1);
        health.on_dial(t0 + FIRST_BACKOFF);
        health.on_call(CallSignal::Responded, t0 + s(3));
        assert_eq!(health.hold(t0 + s(3)), None);
        assert_eq!(health.allowed_starts(t0 + s(3)), u32::MAX);
    }
}
