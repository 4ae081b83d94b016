//! RFC 3261 §17 transactions as plain state machines, with the RFC 6026
//! "Accepted" states so 2xx retransmissions and forked 2xx reach the dialog
//! layer. Each takes events (a response or request matched to it, a timer)
//! with the current `Instant` and answers with what to send; `deadline()`
//! says when it next needs `on_timer`. Sending the first request or response
//! is the caller's job.

use std::time::{Duration, Instant};

/// T1, T2, T4 (RFC 3261 §17.1.1.1, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    fn sixty_four_t1(&self) -> Duration {
        self.t1 * 64
    }
}

/// What a timer firing asks of the transaction's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOutcome {
    Nothing,
    /// Send these bytes again (a retransmission).
    Resend(Vec<u8>),
    /// Timer B, F or H: the peer never answered (or never ACKed).
    TimedOut,
    /// The transaction is over; forget it.
    Terminated,
}

/// A timer that retransmits with doubling intervals, capped (A, E, G).
#[derive(Debug, Clone)]
struct Retransmit {
    at: Instant,
    interval: Duration,
    cap: Option<Duration>,
}

impl Retransmit {
    fn start(now: Instant, t1: Duration, cap: Option<Duration>) -> Self {
        Retransmit {
            at: now + t1,
            interval: t1,
            cap,
        }
    }

    fn fire(&mut self) {
        self.interval *= 2;
        if let Some(cap) = self.cap {
            self.interval = self.interval.min(cap);
        }
        self.at += self.interval;
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    /// A 2xx arrived (RFC 6026): more 2xx (retransmits, forks) pass up.
    Accepted,
    /// A 3xx–6xx arrived and was ACKed; retransmits are ACKed again.
    Completed,
    Terminated,
}

/// Client INVITE transaction: timers A (retransmit), B (timeout), D (absorb
/// final retransmits), M (accepted).
#[derive(Debug, Clone)]
pub struct ClientInvite {
    pub state: ClientInviteState,
    request: Vec<u8>,
    ack: Option<Vec<u8>>,
    timers: Timers,
    reliable: bool,
    timer_a: Option<Retransmit>,
    timer_b: Option<Instant>,
    end_at: Option<Instant>,
}

impl ClientInvite {
    pub fn new(request: Vec<u8>, reliable: bool, timers: Timers, now: Instant) -> Self {
        ClientInvite {
            state: ClientInviteState::Calling,
            request,
            ack: None,
            timers,
            reliable,
            timer_a: (!reliable).then(|| Retransmit::start(now, timers.t1, None)),
            timer_b: Some(now + timers.sixty_four_t1()),
            end_at: None,
        }
    }

    /// A 1xx: true when it should reach the dialog layer.
    pub fn on_provisional(&mut self) -> bool {
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                self.state = ClientInviteState::Proceeding;
                self.timer_a = None;
                self.timer_b = None;
                true
            }
            _ => false,
        }
    }

    /// A 1xx to an INVITE whose transaction user allows it only Timer B's
    /// time in all (a session refresh, which no one CANCELs):
    /// retransmissions stop as after any 1xx, the deadline stays, so a far
    /// end that answers 100 and nothing more cannot hold the transaction
    /// for ever. True when it should reach the dialog layer.
    pub fn on_provisional_keeping_deadline(&mut self) -> bool {
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                self.state = ClientInviteState::Proceeding;
                self.timer_a = None;
                true
            }
            _ => false,
        }
    }

    /// A 2xx: passed up in every live state (forks and retransmits too;
    /// the dialog layer ACKs each).
    pub fn on_success(&mut self, now: Instant) -> bool {
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                self.state = ClientInviteState::Accepted;
                self.timer_a = None;
                self.timer_b = None;
                self.end_at = Some(now + self.timers.sixty_four_t1());
                true
            }
            ClientInviteState::Accepted => true,
            _ => false,
        }
    }

    /// A 3xx–6xx: returns (pass up?, bytes to send). `make_ack` builds the
    /// ACK (same branch, the response's To) the first time.
    pub fn on_failure(
        &mut self,
        now: Instant,
        make_ack: impl FnOnce() -> Vec<u8>,
    ) -> (bool, Option<Vec<u8>>) {
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => {
                let ack = make_ack();
                self.ack = Some(ack.clone());
                self.state = ClientInviteState::Completed;
                self.timer_a = None;
                self.timer_b = None;
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32).max(self.timers.sixty_four_t1())
                };
                self.end_at = Some(now + wait);
                (true, Some(ack))
            }
            ClientInviteState::Completed => (false, self.ack.clone()),
            _ => (false, None),
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        earliest(
            earliest(self.timer_a.as_ref().map(|t| t.at), self.timer_b),
            self.end_at,
        )
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerOutcome {
        if self.end_at.is_some_and(|at| now >= at) {
            self.state = ClientInviteState::Terminated;
            self.end_at = None;
            return TimerOutcome::Terminated;
        }
        if self.timer_b.is_some_and(|at| now >= at) {
            self.state = ClientInviteState::Terminated;
            self.timer_a = None;
            self.timer_b = None;
            return TimerOutcome::TimedOut;
        }
        if let Some(timer) = &mut self.timer_a
            && now >= timer.at
        {
            timer.fire();
            return TimerOutcome::Resend(self.request.clone());
        }
        TimerOutcome::Nothing
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// Client non-INVITE transaction: timers E (retransmit, capped at T2),
/// F (timeout), K (absorb retransmitted finals).
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    pub state: ClientNonInviteState,
    request: Vec<u8>,
    timers: Timers,
    reliable: bool,
    timer_e: Option<Retransmit>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl ClientNonInvite {
    pub fn new(request: Vec<u8>, reliable: bool, timers: Timers, now: Instant) -> Self {
        ClientNonInvite {
            state: ClientNonInviteState::Trying,
            request,
            timers,
            reliable,
            timer_e: (!reliable).then(|| Retransmit::start(now, timers.t1, Some(timers.t2))),
            timer_f: Some(now + timers.sixty_four_t1()),
            timer_k: None,
        }
    }

    /// A response: true when it should reach the owner.
    pub fn on_response(&mut self, code: u16, now: Instant) -> bool {
        match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding if code < 200 => {
                self.state = ClientNonInviteState::Proceeding;
                if let Some(timer) = &mut self.timer_e {
                    timer.interval = self.timers.t2;
                }
                true
            }
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                self.state = ClientNonInviteState::Completed;
                self.timer_e = None;
                self.timer_f = None;
                self.timer_k = Some(if self.reliable {
                    now
                } else {
                    now + self.timers.t4
                });
                true
            }
            _ => false,
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        earliest(
            earliest(self.timer_e.as_ref().map(|t| t.at), self.timer_f),
            self.timer_k,
        )
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerOutcome {
        if self.timer_k.is_some_and(|at| now >= at) {
            self.state = ClientNonInviteState::Terminated;
            self.timer_k = None;
            return TimerOutcome::Terminated;
        }
        if self.timer_f.is_some_and(|at| now >= at) {
            self.state = ClientNonInviteState::Terminated;
            self.timer_e = None;
            self.timer_f = None;
            return TimerOutcome::TimedOut;
        }
        if let Some(timer) = &mut self.timer_e
            && now >= timer.at
        {
            timer.fire();
            return TimerOutcome::Resend(self.request.clone());
        }
        TimerOutcome::Nothing
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    /// A 2xx was sent (RFC 6026); retransmitted until the ACK (timer G up to
    /// T2, given up at H = 64·T1).
    Accepted,
    Completed,
    Confirmed,
    Terminated,
}

/// Server INVITE transaction: the caller sends 100 Trying through
/// [`ServerInvite::respond`] at once; timers G (retransmit final), H (no ACK),
/// I (absorb ACK retransmits).
#[derive(Debug, Clone)]
pub struct ServerInvite {
    pub state: ServerInviteState,
    last_response: Option<Vec<u8>>,
    timers: Timers,
    reliable: bool,
    timer_g: Option<Retransmit>,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
}

impl ServerInvite {
    pub fn new(reliable: bool, timers: Timers) -> Self {
        ServerInvite {
            state: ServerInviteState::Proceeding,
            last_response: None,
            timers,
            reliable,
            timer_g: None,
            timer_h: None,
            timer_i: None,
        }
    }

    /// Records a response the TU sends (the caller transmits `bytes`).
    pub fn respond(&mut self, code: u16, bytes: Vec<u8>, now: Instant) {
        if self.state != ServerInviteState::Proceeding {
            return;
        }
        self.last_response = Some(bytes);
        if code >= 200 {
            self.state = if code < 300 {
                ServerInviteState::Accepted
            } else {
                ServerInviteState::Completed
            };
            // 2xx must be retransmitted even on TCP (RFC 3261 §13.3.1.4).
            let retransmit = code < 300 || !self.reliable;
            self.timer_g =
                retransmit.then(|| Retransmit::start(now, self.timers.t1, Some(self.timers.t2)));
            self.timer_h = Some(now + self.timers.sixty_four_t1());
        }
    }

    /// The INVITE arrived again: the last response goes out again.
    pub fn on_retransmission(&self) -> Option<Vec<u8>> {
        match self.state {
            ServerInviteState::Proceeding
            | ServerInviteState::Completed
            | ServerInviteState::Accepted => self.last_response.clone(),
            _ => None,
        }
    }

    /// An ACK matched this transaction (or, for a 2xx, its dialog).
    pub fn on_ack(&mut self, now: Instant) {
        match self.state {
            ServerInviteState::Completed => {
                self.state = ServerInviteState::Confirmed;
                self.timer_g = None;
                self.timer_h = None;
                self.timer_i = Some(if self.reliable {
                    now
                } else {
                    now + self.timers.t4
                });
            }
            ServerInviteState::Accepted => {
                self.state = ServerInviteState::Terminated;
                self.timer_g = None;
                self.timer_h = None;
            }
            _ => {}
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        if self.state == ServerInviteState::Terminated {
            return None;
        }
        earliest(
            earliest(self.timer_g.as_ref().map(|t| t.at), self.timer_h),
            self.timer_i,
        )
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerOutcome {
        if self.timer_i.is_some_and(|at| now >= at) {
            self.state = ServerInviteState::Terminated;
            self.timer_i = None;
            return TimerOutcome::Terminated;
        }
        if self.timer_h.is_some_and(|at| now >= at) {
            self.state = ServerInviteState::Terminated;
            self.timer_g = None;
            self.timer_h = None;
            return TimerOutcome::TimedOut;
        }
        if let Some(timer) = &mut self.timer_g
            && now >= timer.at
        {
            timer.fire();
            if let Some(bytes) = &self.last_response {
                return TimerOutcome::Resend(bytes.clone());
            }
        }
        TimerOutcome::Nothing
    }
}

/// Server non-INVITE transaction: timer J absorbs request retransmits.
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    pub completed: bool,
    last_response: Option<Vec<u8>>,
    timers: Timers,
    reliable: bool,
    timer_j: Option<Instant>,
}

impl ServerNonInvite {
    pub fn new(reliable: bool, timers: Timers) -> Self {
        ServerNonInvite {
            completed: false,
            last_response: None,
            timers,
            reliable,
            timer_j: None,
        }
    }

    pub fn respond(&mut self, code: u16, bytes: Vec<u8>, now: Instant) {
        if self.completed {
            return;
        }
        self.last_response = Some(bytes);
        if code >= 200 {
            self.completed = true;
            self.timer_j = Some(if self.reliable {
                now
            } else {
                now + self.timers.sixty_four_t1()
            });
        }
    }

    pub fn on_retransmission(&self) -> Option<Vec<u8>> {
        self.last_response.clone()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.timer_j
    }

    pub fn on_timer(&mut self, now: Instant) -> TimerOutcome {
        if self.timer_j.is_some_and(|at| now >= at) {
            self.timer_j = None;
            return TimerOutcome::Terminated;
        }
        TimerOutcome::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn client_invite_retransmits_on_timer_a_and_times_out_at_b() {
        let now = Instant::now();
        let mut tx = ClientInvite::new(b"INVITE".to_vec(), false, Timers::default(), now);
        let mut times = Vec::new();
        while let Some(at) = tx.deadline() {
            let outcome = tx.on_timer(at);
            times.push(((at - now).as_millis(), outcome.clone()));
            if outcome == TimerOutcome::TimedOut {
                break;
            }
        }
        let resend_times: Vec<u128> = times
            .iter()
            .filter(|(_, o)| matches!(o, TimerOutcome::Resend(_)))
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(resend_times, [500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(times.last().unwrap(), &(32000, TimerOutcome::TimedOut));
        assert_eq!(tx.state, ClientInviteState::Terminated);
    }

    #[test]
    fn client_invite_over_tcp_does_not_retransmit() {
        let now = Instant::now();
        let mut tx = ClientInvite::new(b"INVITE".to_vec(), true, Timers::default(), now);
        assert_eq!(tx.deadline(), Some(now + 64 * 500 * MS));
        assert_eq!(tx.on_timer(now + 64 * 500 * MS), TimerOutcome::TimedOut);
    }

    #[test]
    fn client_invite_acks_failures_and_their_retransmits_then_ends_at_d() {
        let now = Instant::now();
        let mut tx = ClientInvite::new(b"INVITE".to_vec(), false, Timers::default(), now);
        assert!(tx.on_provisional());
        assert_eq!(tx.deadline(), None, "no timers while proceeding");
        let (pass, ack) = tx.on_failure(now + 10 * MS, || b"ACK".to_vec());
        assert!(pass);
        assert_eq!(ack.as_deref(), Some(&b"ACK"[..]));
        // The 486 again (our ACK was lost): ACK again, do not pass up.
        let (pass, ack) = tx.on_failure(now + 20 * MS, || unreachable!());
        assert!(!pass);
        assert_eq!(ack.as_deref(), Some(&b"ACK"[..]));
        assert_eq!(tx.deadline(), Some(now + 10 * MS + Duration::from_secs(32)));
        assert_eq!(
            tx.on_timer(now + Duration::from_secs(33)),
            TimerOutcome::Terminated
        );
    }

    #[test]
    fn client_invite_passes_every_2xx_up_while_accepted() {
        let now = Instant::now();
        let mut tx = ClientInvite::new(b"INVITE".to_vec(), false, Timers::default(), now);
        assert!(tx.on_success(now));
        assert!(tx.on_success(now + MS), "a retransmitted or forked 2xx");
        assert!(!tx.on_provisional());
        assert_eq!(tx.on_timer(now + 64 * 500 * MS), TimerOutcome::Terminated);
    }

    #[test]
    fn client_non_invite_caps_retransmits_at_t2_and_times_out_at_f() {
        let now = Instant::now();
        let mut tx = ClientNonInvite::new(b"BYE".to_vec(), false, Timers::default(), now);
        let mut resends = Vec::new();
        loop {
            let at = tx.deadline().unwrap();
            match tx.on_timer(at) {
                TimerOutcome::Resend(_) => resends.push((at - now).as_millis()),
                TimerOutcome::TimedOut => {
                    assert_eq!((at - now).as_millis(), 32000);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(&resends[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
    }

    #[test]
    fn client_non_invite_completes_then_ends_at_k() {
        let now = Instant::now();
        let mut tx = ClientNonInvite::new(b"BYE".to_vec(), false, Timers::default(), now);
        assert!(tx.on_response(100, now));
        assert!(tx.on_response(200, now + MS));
        assert!(
            !tx.on_response(200, now + 2 * MS),
            "retransmitted final absorbed"
        );
        assert_eq!(tx.deadline(), Some(now + MS + Duration::from_secs(5)));
        assert_eq!(
            tx.on_timer(now + Duration::from_secs(6)),
            TimerOutcome::Terminated
        );
    }

    #[test]
    fn server_invite_retransmits_failure_until_ack_then_waits_i() {
        let now = Instant::now();
        let mut tx = ServerInvite::new(false, Timers::default());
        tx.respond(100, b"100".to_vec(), now);
        assert_eq!(tx.on_retransmission().as_deref(), Some(&b"100"[..]));
        tx.respond(403, b"403".to_vec(), now);
        assert_eq!(
            tx.on_timer(now + 500 * MS),
            TimerOutcome::Resend(b"403".to_vec())
        );
        assert_eq!(tx.deadline(), Some(now + 1500 * MS));
        tx.on_ack(now + 600 * MS);
        assert_eq!(tx.state, ServerInviteState::Confirmed);
        assert_eq!(tx.deadline(), Some(now + 5600 * MS));
        assert_eq!(tx.on_timer(now + 5600 * MS), TimerOutcome::Terminated);
    }

    #[test]
    fn server_invite_lost_ack_ends_at_h() {
        let now = Instant::now();
        let mut tx = ServerInvite::new(false, Timers::default());
        tx.respond(486, b"486".to_vec(), now);
        let mut last = TimerOutcome::Nothing;
        while let Some(at) = tx.deadline() {
            last = tx.on_timer(at);
            if last == TimerOutcome::TimedOut {
                assert_eq!(at - now, 64 * 500 * MS);
                break;
            }
        }
        assert_eq!(last, TimerOutcome::TimedOut);
    }

    #[test]
    fn server_invite_2xx_retransmits_even_on_tcp_until_ack() {
        let now = Instant::now();
        let mut tx = ServerInvite::new(true, Timers::default());
        tx.respond(200, b"200".to_vec(), now);
        assert_eq!(
            tx.on_timer(now + 500 * MS),
            TimerOutcome::Resend(b"200".to_vec())
        );
        tx.on_ack(now + 700 * MS);
        assert_eq!(tx.state, ServerInviteState::Terminated);
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn server_non_invite_answers_retransmits_until_j() {
        let now = Instant::now();
        let mut tx = ServerNonInvite::new(false, Timers::default());
        tx.respond(200, b"200".to_vec(), now);
        assert_eq!(tx.on_retransmission().as_deref(), Some(&b"200"[..]));
        assert_eq!(tx.on_timer(now + 31 * 1000 * MS), TimerOutcome::Nothing);
        assert_eq!(tx.on_timer(now + 32 * 1000 * MS), TimerOutcome::Terminated);
    }

    #[test]
    fn configured_t1_scales_every_timer() {
        let timers = Timers {
            t1: 100 * MS,
            t2: 400 * MS,
            t4: 500 * MS,
        };
        let now = Instant::now();
        let tx = ClientInvite::new(Vec::new(), false, timers, now);
        assert_eq!(tx.deadline(), Some(now + 100 * MS));
        let mut tx = ClientInvite::new(Vec::new(), true, timers, now);
        assert_eq!(tx.on_timer(now + 6400 * MS), TimerOutcome::TimedOut);
    }
}
