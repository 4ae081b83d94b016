//! The SIP endpoint: one sans-IO value that owns every transaction, call
//! (UAC dialogs, early and confirmed), and the registrar. The shell feeds it
//! datagrams ([`Endpoint::handle_datagram`]), timer firings
//! ([`Endpoint::handle_timeout`]) and commands ([`Endpoint::invite`],
//! [`Endpoint::hangup`], [`Endpoint::ping`]), and drains
//! [`Endpoint::poll_transmit`], [`Endpoint::poll_event`] and
//! [`Endpoint::poll_timeout`].
//!
//! Calls are UAC calls (customer calls through the trunk, agent reservation
//! legs): early dialogs from 18x (several when forked), PRACK for reliable
//! provisionals (RFC 3262), first 2xx wins and any other 2xx is ACKed then
//! BYEd, CANCEL only after a provisional (a CANCEL crossing a 200 ends in
//! ACK + BYE), digest answers to 401/407, and in-dialog BYE, re-INVITE,
//! UPDATE, INFO and OPTIONS from the far end. Out of dialog the endpoint
//! answers OPTIONS, REGISTER (registrar) and turns strangers' INVITEs away
//! with 403.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::auth::Challenge;
use super::codec::{CodecError, Message, MessageBuilder, NameAddr, SipUri};
use super::outcome::{CallEnd, Outcome};
use super::registrar::{AgentCredentials, BindingChange, RegisterReply, Registrar};
use super::transaction::{
    ClientInvite, ClientInviteState, ClientNonInvite, ServerInvite, ServerInviteState,
    ServerNonInvite, TimerOutcome, Timers,
};
use crate::sdp::{DialogSdp, Negotiated, ReofferError};
use session_timer::{
    MIN_SESSION_INTERVAL, SessionExpires, answer_to_refresh, names_timer, refreshee_gives_up_after,
};

const MAGIC_COOKIE: &str = "z9hG4bK";
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REGISTER";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
}

impl TransportKind {
    fn via_name(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
        }
    }

    fn reliable(self) -> bool {
        self == TransportKind::Tcp
    }
}

impl From<crate::config::Transport> for TransportKind {
    fn from(t: crate::config::Transport) -> Self {
        match t {
            crate::config::Transport::Udp => TransportKind::Udp,
            crate::config::Transport::Tcp => TransportKind::Tcp,
        }
    }
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub transport: TransportKind,
    pub destination: SocketAddr,
    pub payload: Vec<u8>,
}

/// A handle for one call placed through [`Endpoint::invite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Address written into Via and Contact (`sip.public_addr` or the bound
    /// address).
    pub local_addr: SocketAddr,
    pub timers: Timers,
    pub user_agent: String,
    /// Realm of the agent registrar's challenges.
    pub realm: String,
    pub agents: Vec<AgentCredentials>,
    /// Seed for tags, branches and Call-IDs (tests fix it).
    pub seed: u64,
    /// Secret key the registrar's nonces are derived from (SHA-256 of the
    /// key and a counter): a nonce must not be predictable from the ones an
    /// eavesdropper saw, which the fast seeded generator above does not
    /// guarantee. The shell fills it from the OS's random source.
    pub nonce_key: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Everything one outgoing call needs.
#[derive(Debug, Clone)]
pub struct InviteRequest {
    /// Request-URI, e.g. `sip:+15551234567@carrier.example.net`.
    pub uri: String,
    /// Next hop (the trunk or the outbound proxy), already resolved.
    pub destination: SocketAddr,
    /// The next hop's further addresses (its other SRV targets, RFC 3263),
    /// tried in turn when the INVITE times out or gets a 503; those that
    /// timed out lately go last (`failover.rs`).
    pub alternates: Vec<SocketAddr>,
    pub transport: TransportKind,
    /// Outbound proxy as a loose route (`<sip:proxy;lr>`), if any.
    pub route: Option<String>,
    /// Caller ID user part (E.164) for From and P-Asserted-Identity.
    pub caller_id: String,
    pub caller_name: Option<String>,
    pub credentials: Option<Credentials>,
    /// The SDP offer (see `sip::offer::fixed_offer`).
    pub sdp: Vec<u8>,
    /// CANCEL after this long without an answer (outcome: no answer).
    pub ring_timeout: Option<Duration>,
    /// BYE this long after the answer.
    pub hold: Option<Duration>,
    /// Ask for a session timer of this interval (RFC 4028 §7.1: our
    /// INVITE's `Session-Expires`, at least 90 s); the far end's 2xx says
    /// whether there is one and who refreshes. `None`: not asked.
    pub session_expires: Option<Duration>,
    /// Follow a 3xx's `Contact`s (RFC 3261 §8.1.3.4; `redirect.rs`): set
    /// for trunk calls (`[trunk] follow_redirects`), not for agents' phones.
    pub follow_redirects: bool,
    /// In-dialog requests (ACK, BYE, re-INVITE, UPDATE) go to
    /// `destination` too, whatever address the far end's Contact names:
    /// set for an agent's registered phone, reached where its REGISTER came
    /// from (behind a NAT its Contact names a private address).
    pub symmetric: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A provisional response (100, 180, 183 …); `sdp` is early media.
    Progress {
        call: CallHandle,
        code: u16,
        reason: String,
        sdp: Option<Vec<u8>>,
    },
    /// The 2xx that won.
    Answered {
        call: CallHandle,
        sdp: Vec<u8>,
    },
    /// The far end changed the media in the dialog (a re-INVITE or UPDATE
    /// putting us on hold, taking us off it, or moving its RTP address);
    /// already answered: the RTP leg must follow.
    MediaChanged {
        call: CallHandle,
        media: Negotiated,
    },
    /// The call is over; no more events for it.
    Ended {
        call: CallHandle,
        end: CallEnd,
    },
    /// An OPTIONS ping finished: `Some(code)` or `None` on timeout.
    PingResult {
        id: u64,
        code: Option<u16>,
    },
    Registration(BindingChange),
    /// What became of our registration `id` with a trunk
    /// ([`Endpoint::register`]).
    TrunkRegistration {
        id: u64,
        state: RegistrationState,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the Request-URI {0:?} is not a sip: URI")]
    BadUri(String),
    #[error("no such call")]
    UnknownCall,
}

/// Counters the shell may log or export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub malformed: u64,
    pub strays: u64,
    pub retransmissions: u64,
    /// Requests (INVITE, OPTIONS, REGISTER) sent on to a next address
    /// after one did not serve (RFC 3263).
    pub failovers: u64,
    /// INVITEs sent to a target a 3xx named (RFC 3261 §8.1.3.4).
    pub redirects: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TimerKey {
    Client(String, &'static str),
    Server(String, &'static str),
    Call(CallHandle),
    Registration(u64),
}

#[derive(Debug)]
enum ClientTx {
    /// A call's INVITE, with where it was sent (a failover sends the next
    /// one elsewhere while this one may still absorb retransmitted answers).
    Invite(ClientInvite, CallHandle, SocketAddr),
    /// A session refresh by re-INVITE (RFC 4028 §7.4) on a confirmed call,
    /// with where it was sent.
    Reinvite(ClientInvite, CallHandle, TransportKind, SocketAddr),
    NonInvite(ClientNonInvite, Purpose, TransportKind, SocketAddr),
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    Cancel(CallHandle),
    Bye(CallHandle),
    Prack(CallHandle),
    Refresh(CallHandle),
    Ping(u64),
    Register(u64),
}

#[derive(Debug)]
enum ServerTx {
    Invite(ServerInvite, SocketAddr, TransportKind),
    NonInvite(ServerNonInvite, SocketAddr, TransportKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// INVITE sent, nothing but maybe 100 back.
    Calling,
    /// A 1xx arrived; CANCEL is possible.
    Early,
    /// The 2xx won and was ACKed.
    Confirmed,
    /// BYE sent, waiting for its response.
    Ending,
}

/// One dialog's identity and routing (early or confirmed).
#[derive(Debug, Clone)]
struct Dialog {
    remote_tag: String,
    remote_target: String,
    /// Record-Route reversed (UAC side).
    route_set: Vec<String>,
    last_rseq: Option<u32>,
}

#[derive(Debug)]
struct Call {
    call_id: String,
    local_tag: String,
    /// What the call was placed with; `request.uri` stays the To (and the
    /// From's host) through redirects.
    request: InviteRequest,
    /// The INVITE's Request-URI: `request.uri`, or the `Contact` a 3xx
    /// redirected the call to (`redirect.rs`).
    request_uri: String,
    /// Redirect targets not tried yet, best first, and how many 3xx were
    /// followed.
    redirect_targets: Vec<redirect::Target>,
    tried_uris: Vec<String>,
    redirects: u8,
    cseq: u32,
    invite_cseq: u32,
    invite_branch: String,
    /// The Authorization header answering the last challenge.
    authorization: Option<(&'static str, String)>,
    auth_attempts: u8,
    state: CallState,
    early: Vec<Dialog>,
    dialog: Option<Dialog>,
    /// Hang-up asked before any provisional: CANCEL as soon as one arrives.
    cancel_pending: Option<Outcome>,
    /// CANCEL sent: the outcome to report when the 487 comes.
    cancelled_as: Option<Outcome>,
    /// The CANCEL (or the one pending) is the ring timeout's: a 200 that
    /// crosses it is kept as the answer ([`Endpoint::cancel_ringing`]).
    keep_crossing_answer: bool,
    ring_deadline: Option<Instant>,
    hangup_at: Option<Instant>,
    /// 64·T1 after the CANCEL: give up waiting for the INVITE's final
    /// response (RFC 3261 §9.1).
    cancel_deadline: Option<Instant>,
    /// RFC 4028 with us as the refresher: the interval, and when to
    /// refresh next.
    session_expires: Option<Duration>,
    refresh_at: Option<Instant>,
    /// RFC 4028 with the far end as the refresher: when we BYE the session
    /// if no refresh has come by then (§10).
    session_ends_at: Option<Instant>,
    /// The interval our INVITE asks for (`InviteRequest::session_expires`,
    /// raised by a 422's `Min-SE`), in seconds.
    asked_interval: Option<u64>,
    /// A 422 to our INVITE was followed (once only).
    interval_raised: bool,
    /// The `Min-SE` a 422 to our refresh asked for, sent with our refreshes
    /// from then on (RFC 4028 §7.4).
    min_se: Option<u64>,
    /// Refresh with re-INVITE: the far end's `Allow` leaves UPDATE out, or
    /// it refused our UPDATE (405, 501).
    refresh_by_invite: bool,
    /// The CSeq of the refresh re-INVITE whose 2xx answer was taken (its
    /// retransmissions are only ACKed).
    refresh_answered: Option<u32>,
    /// Our SDP across the dialog, for answering the far end's re-offers;
    /// `None` when our offer does not parse (then re-offers get it back
    /// verbatim, as before offer/answer was tracked).
    sdp: Option<DialogSdp>,
    end: Option<CallEnd>,
}

impl Call {
    /// Takes the session timer (RFC 4028) from the `Session-Expires` of an
    /// accepted INVITE, re-INVITE or UPDATE: `we_sent` when the request was
    /// ours and `value` came in its 2xx, otherwise `value` is what our 200
    /// to the far end's request said.
    fn take_session_timer(&mut self, value: Option<&str>, we_sent: bool, now: Instant) {
        let Some(value) = value.and_then(SessionExpires::parse) else {
            // A far end's refresh without one turns its timer off (§9):
            // hanging up later would end a session it no longer means to
            // refresh. A 2xx to ours without one changes nothing —
            // refreshing on costs nothing.
            if !we_sent {
                self.session_ends_at = None;
            }
            return;
        };
        match value.we_refresh(we_sent) {
            Some(true) => {
                self.session_ends_at = None;
                if value.interval >= MIN_SESSION_INTERVAL {
                    self.session_expires = Some(value.interval);
                    self.refresh_at = Some(now + value.interval / 2);
                }
            }
            Some(false) => {
                self.session_expires = None;
                self.refresh_at = None;
                self.session_ends_at = Some(now + refreshee_gives_up_after(value.interval));
            }
            None => {}
        }
    }

    fn deadline(&self) -> Option<Instant> {
        [
            self.ring_deadline,
            self.hangup_at,
            self.cancel_deadline,
            self.refresh_at,
            self.session_ends_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

pub struct Endpoint {
    config: EndpointConfig,
    rng: fastrand::Rng,
    next_call: u64,
    next_ping: u64,
    calls: HashMap<CallHandle, Call>,
    by_call_id: HashMap<String, CallHandle>,
    clients: HashMap<(String, &'static str), ClientTx>,
    servers: HashMap<(String, &'static str), ServerTx>,
    /// Server INVITE transactions that sent a 2xx, by Call-ID and CSeq, so
    /// the ACK (a new branch) finds them.
    accepted: HashMap<(String, u32), String>,
    /// Our registrations with trunks, by id (`trunk_registration.rs`).
    registrations: HashMap<u64, Registration>,
    next_registration: u64,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_keys: HashMap<u64, TimerKey>,
    next_timer: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    registrar: Registrar,
    /// Nonces issued so far (the counter under the nonce key).
    nonces_issued: u64,
    /// Next-hop addresses that let an INVITE time out, or answered 503
    /// with Retry-After, and until when new calls try them last
    /// (`failover.rs`).
    unresponsive: HashMap<SocketAddr, Instant>,
    /// OPTIONS pings with further addresses to try when the one asked
    /// stays silent (`failover.rs`), by ping id.
    pings: HashMap<u64, failover::PendingPing>,
    stats: Stats,
}

impl Endpoint {
    pub fn new(config: EndpointConfig) -> Self {
        let registrar = Registrar::new(config.realm.clone(), config.agents.clone());
        Endpoint {
            rng: fastrand::Rng::with_seed(config.seed),
            nonces_issued: 0,
            unresponsive: HashMap::new(),
            pings: HashMap::new(),
            config,
            next_call: 1,
            next_ping: 1,
            calls: HashMap::new(),
            by_call_id: HashMap::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            accepted: HashMap::new(),
            registrations: HashMap::new(),
            next_registration: 0,
            timers: BinaryHeap::new(),
            timer_keys: HashMap::new(),
            next_timer: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            registrar,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant [`Endpoint::handle_timeout`] has work.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        loop {
            let Reverse((at, id)) = *self.timers.peek()?;
            let live = self
                .timer_keys
                .get(&id)
                .is_some_and(|key| self.deadline_of(key) == Some(at));
            if live {
                return Some(at);
            }
            self.timers.pop();
            self.timer_keys.remove(&id);
        }
    }

    /// A fresh registrar nonce: 128 bits of SHA-256(nonce key ‖ counter), hex.
    fn fresh_nonce(&mut self) -> String {
        use sha2::{Digest, Sha256};
        self.nonces_issued += 1;
        let mut hasher = Sha256::new();
        hasher.update(self.config.nonce_key);
        hasher.update(self.nonces_issued.to_le_bytes());
        hasher
            .finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| {
                char::from(
                    ALPHABET
                        .get(self.rng.usize(..ALPHABET.len()))
                        .copied()
                        .unwrap_or(b'0'),
                )
            })
            .collect()
    }

    fn branch(&mut self) -> String {
        format!("{MAGIC_COOKIE}{}", self.token(16))
    }

    fn schedule(&mut self, key: TimerKey) {
        if let Some(at) = self.deadline_of(&key) {
            let id = self.next_timer;
            self.next_timer += 1;
            self.timer_keys.insert(id, key);
            self.timers.push(Reverse((at, id)));
        }
    }

    fn deadline_of(&self, key: &TimerKey) -> Option<Instant> {
        match key {
            TimerKey::Client(branch, method) => {
                match self.clients.get(&(branch.clone(), *method))? {
                    ClientTx::Invite(tx, ..) | ClientTx::Reinvite(tx, ..) => tx.deadline(),
                    ClientTx::NonInvite(tx, ..) => tx.deadline(),
                }
            }
            TimerKey::Server(branch, method) => {
                match self.servers.get(&(branch.clone(), *method))? {
                    ServerTx::Invite(tx, ..) => tx.deadline(),
                    ServerTx::NonInvite(tx, ..) => tx.deadline(),
                }
            }
            TimerKey::Call(handle) => self.calls.get(handle)?.deadline(),
            TimerKey::Registration(id) => self.registration_deadline(*id),
        }
    }

    fn send(&mut self, transport: TransportKind, destination: SocketAddr, payload: Vec<u8>) {
        self.transmits.push_back(Transmit {
            transport,
            destination,
            payload,
        });
    }

    // ---- commands -------------------------------------------------------

    /// Places a call: sends the INVITE and returns its handle.
    pub fn invite(
        &mut self,
        mut request: InviteRequest,
        now: Instant,
    ) -> Result<CallHandle, EndpointError> {
        if SipUri::parse(&request.uri).is_none() {
            return Err(EndpointError::BadUri(request.uri.clone()));
        }
        (request.destination, request.alternates) = self.order_by_health(
            request.destination,
            std::mem::take(&mut request.alternates),
            now,
        );
        let handle = CallHandle(self.next_call);
        self.next_call += 1;
        let call_id = format!("{}@outdial", self.token(20));
        let local_tag = self.token(10);
        let ring_deadline = request.ring_timeout.map(|d| now + d);
        let asked_interval = request
            .session_expires
            .map(|d| d.max(MIN_SESSION_INTERVAL).as_secs());
        let sdp = DialogSdp::from_offer(&request.sdp).ok();
        let call = Call {
            call_id: call_id.clone(),
            local_tag,
            request_uri: request.uri.clone(),
            redirect_targets: Vec::new(),
            tried_uris: Vec::new(),
            redirects: 0,
            request,
            cseq: 0,
            invite_cseq: 0,
            invite_branch: String::new(),
            authorization: None,
            auth_attempts: 0,
            state: CallState::Calling,
            early: Vec::new(),
            dialog: None,
            cancel_pending: None,
            cancelled_as: None,
            keep_crossing_answer: false,
            ring_deadline,
            hangup_at: None,
            cancel_deadline: None,
            session_expires: None,
            refresh_by_invite: false,
            refresh_answered: None,
            refresh_at: None,
            session_ends_at: None,
            min_se: None,
            asked_interval,
            interval_raised: false,
            sdp,
            end: None,
        };
        self.calls.insert(handle, call);
        self.by_call_id.insert(call_id, handle);
        self.send_invite(handle, now);
        self.schedule(TimerKey::Call(handle));
        Ok(handle)
    }

    /// Hangs up: CANCEL before the answer (deferred until a provisional
    /// arrives), BYE after it.
    pub fn hangup(&mut self, handle: CallHandle, now: Instant) -> Result<(), EndpointError> {
        self.hangup_as(handle, Outcome::Cancelled, now)
    }

    /// The caller's ring timeout: CANCEL as [`Endpoint::hangup`] does,
    /// except that a 200 crossing the CANCEL is kept, not BYEd — a person
    /// picked up just as we gave up, and hanging up on them would be a
    /// silent call. The answer is reported as usual ([`Event::Answered`]);
    /// a later `hangup` takes this back.
    pub fn cancel_ringing(
        &mut self,
        handle: CallHandle,
        now: Instant,
    ) -> Result<(), EndpointError> {
        self.hangup_as(handle, Outcome::Cancelled, now)?;
        if let Some(call) = self.calls.get_mut(&handle)
            && matches!(call.state, CallState::Calling | CallState::Early)
        {
            call.keep_crossing_answer = true;
        }
        Ok(())
    }

    fn hangup_as(
        &mut self,
        handle: CallHandle,
        reason: Outcome,
        now: Instant,
    ) -> Result<(), EndpointError> {
        let call = self
            .calls
            .get_mut(&handle)
            .ok_or(EndpointError::UnknownCall)?;
        call.ring_deadline = None;
        call.keep_crossing_answer = false;
        match call.state {
            CallState::Calling => {
                call.cancel_pending = Some(reason);
            }
            CallState::Early => {
                if call.cancelled_as.is_none() {
                    call.cancelled_as = Some(reason);
                    self.send_cancel(handle, now);
                }
            }
            CallState::Confirmed => {
                call.hangup_at = None;
                self.send_bye(handle, None, now);
            }
            CallState::Ending => {}
        }
        Ok(())
    }

    /// Sends an out-of-dialog OPTIONS (trunk keepalive); the answer comes as
    /// [`Event::PingResult`] with the returned id.
    pub fn ping(
        &mut self,
        uri: &str,
        destination: SocketAddr,
        transport: TransportKind,
        now: Instant,
    ) -> u64 {
        let id = self.next_ping;
        self.next_ping += 1;
        self.send_ping(id, uri, destination, transport, now);
        id
    }

    fn send_ping(
        &mut self,
        id: u64,
        uri: &str,
        destination: SocketAddr,
        transport: TransportKind,
        now: Instant,
    ) {
        let branch = self.branch();
        let tag = self.token(10);
        let call_id = format!("{}@outdial", self.token(20));
        let bytes = MessageBuilder::request("OPTIONS", uri)
            .header("Via", self.via(transport, &branch))
            .header("Max-Forwards", 70)
            .header(
                "From",
                format_args!("<sip:outdial@{}>;tag={tag}", self.config.local_addr),
            )
            .header("To", format_args!("<{uri}>"))
            .header("Call-ID", call_id)
            .header("CSeq", "1 OPTIONS")
            .header("User-Agent", &self.config.user_agent)
            .finish();
        let tx = ClientNonInvite::new(bytes.clone(), transport.reliable(), self.config.timers, now);
        self.clients.insert(
            (branch.clone(), "OPTIONS"),
            ClientTx::NonInvite(tx, Purpose::Ping(id), transport, destination),
        );
        self.schedule(TimerKey::Client(branch, "OPTIONS"));
        self.send(transport, destination, bytes);
    }

    // ---- building requests ---------------------------------------------

    fn via(&self, transport: TransportKind, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            transport.via_name(),
            self.config.local_addr
        )
    }

    fn contact(&self, transport: TransportKind) -> String {
        match transport {
            TransportKind::Udp => format!("<sip:outdial@{}>", self.config.local_addr),
            TransportKind::Tcp => format!("<sip:outdial@{};transport=tcp>", self.config.local_addr),
        }
    }

    fn from_header(call: &Call) -> String {
        let user = &call.request.caller_id;
        let host = SipUri::parse(&call.request.uri)
            .map_or("invalid", |u| u.host)
            .to_string();
        match &call.request.caller_name {
            Some(name) => format!(
                "\"{}\" <sip:{user}@{host}>;tag={}",
                name.replace('"', ""),
                call.local_tag
            ),
            None => format!("<sip:{user}@{host}>;tag={}", call.local_tag),
        }
    }

    fn send_invite(&mut self, handle: CallHandle, now: Instant) {
        let branch = self.branch();
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        call.cseq += 1;
        call.invite_cseq = call.cseq;
        call.invite_branch = branch.clone();
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let r = &call.request;
        let host = SipUri::parse(&r.uri)
            .map_or("invalid", |u| u.host)
            .to_string();
        let mut builder = MessageBuilder::request("INVITE", &call.request_uri)
            .header("Via", self.via(r.transport, &branch))
            .header("Max-Forwards", 70)
            .header_opt("Route", r.route.as_deref())
            .header("From", Self::from_header(call))
            .header("To", format_args!("<{}>", r.uri))
            .header("Call-ID", &call.call_id)
            .header("CSeq", format_args!("{} INVITE", call.cseq))
            .header("Contact", self.contact(r.transport))
            .header(
                "P-Asserted-Identity",
                format_args!("<sip:{}@{host}>", r.caller_id),
            )
            .header("Allow", ALLOW)
            .header("Supported", "100rel, timer")
            .header_opt("Session-Expires", call.asked_interval)
            .header_opt("Min-SE", call.min_se)
            .header("User-Agent", &self.config.user_agent);
        if let Some((name, value)) = &call.authorization {
            builder = builder.header(name, value);
        }
        let bytes = builder.body(Some("application/sdp"), &r.sdp);
        let (transport, destination) = (r.transport, r.destination);
        let tx = ClientInvite::new(bytes.clone(), transport.reliable(), self.config.timers, now);
        self.clients.insert(
            (branch.clone(), "INVITE"),
            ClientTx::Invite(tx, handle, destination),
        );
        self.schedule(TimerKey::Client(branch, "INVITE"));
        self.send(transport, destination, bytes);
    }

    fn send_cancel(&mut self, handle: CallHandle, now: Instant) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let r = &call.request;
        let bytes = MessageBuilder::request("CANCEL", &call.request_uri)
            .header("Via", self.via(r.transport, &call.invite_branch))
            .header("Max-Forwards", 70)
            .header_opt("Route", r.route.as_deref())
            .header("From", Self::from_header(call))
            .header("To", format_args!("<{}>", r.uri))
            .header("Call-ID", &call.call_id)
            .header("CSeq", format_args!("{} CANCEL", call.invite_cseq))
            .header("User-Agent", &self.config.user_agent)
            .finish();
        let (transport, destination, branch) =
            (r.transport, r.destination, call.invite_branch.clone());
        if let Some(call) = self.calls.get_mut(&handle) {
            call.cancel_deadline = Some(now + self.config.timers.t1 * 64);
        }
        self.schedule(TimerKey::Call(handle));
        let tx = ClientNonInvite::new(bytes.clone(), transport.reliable(), self.config.timers, now);
        self.clients.insert(
            (branch.clone(), "CANCEL"),
            ClientTx::NonInvite(tx, Purpose::Cancel(handle), transport, destination),
        );
        self.schedule(TimerKey::Client(branch, "CANCEL"));
        self.send(transport, destination, bytes);
    }

    /// Where an in-dialog request goes: the call's next hop for a
    /// symmetric call; else the first route, else the remote target, when
    /// it names an IP; otherwise the call's next hop.
    fn in_dialog_destination(call: &Call, dialog: &Dialog) -> SocketAddr {
        if call.request.symmetric {
            return call.request.destination;
        }
        let uri = dialog
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r).map(|n| n.uri))
            .unwrap_or(&dialog.remote_target);
        SipUri::parse(uri)
            .and_then(|u| {
                let ip: IpAddr = u.host.parse().ok()?;
                Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
            })
            .unwrap_or(call.request.destination)
    }

    /// Builds an in-dialog request of `method` with a fresh CSeq (ACK uses
    /// the INVITE's) in `dialog` (the confirmed one when `None`).
    fn dialog_request(
        &mut self,
        handle: CallHandle,
        method: &str,
        dialog: Option<&Dialog>,
        extra: &[(&str, String)],
    ) -> Option<(Vec<u8>, String, SocketAddr, TransportKind)> {
        self.dialog_request_with_body(handle, method, dialog, extra, None)
    }

    /// [`Endpoint::dialog_request`] carrying an SDP body.
    fn dialog_request_with_body(
        &mut self,
        handle: CallHandle,
        method: &str,
        dialog: Option<&Dialog>,
        extra: &[(&str, String)],
        sdp: Option<&[u8]>,
    ) -> Option<(Vec<u8>, String, SocketAddr, TransportKind)> {
        let branch = self.branch();
        let call = self.calls.get_mut(&handle)?;
        let cseq = if method == "ACK" {
            call.invite_cseq
        } else {
            call.cseq += 1;
            call.cseq
        };
        let call = self.calls.get(&handle)?;
        let dialog = dialog.or(call.dialog.as_ref())?;
        let r = &call.request;
        let mut builder = MessageBuilder::request(method, &dialog.remote_target)
            .header("Via", self.via(r.transport, &branch))
            .header("Max-Forwards", 70);
        for route in &dialog.route_set {
            builder = builder.header("Route", route);
        }
        builder = builder
            .header("From", Self::from_header(call))
            .header("To", format_args!("<{}>;tag={}", r.uri, dialog.remote_tag))
            .header("Call-ID", &call.call_id)
            .header("CSeq", format_args!("{cseq} {method}"));
        for (name, value) in extra {
            builder = builder.header(name, value);
        }
        let builder = builder.header("User-Agent", &self.config.user_agent);
        let bytes = match sdp {
            Some(sdp) => builder.body(Some("application/sdp"), sdp),
            None => builder.finish(),
        };
        let destination = Self::in_dialog_destination(call, dialog);
        Some((bytes, branch, destination, r.transport))
    }

    fn send_bye(&mut self, handle: CallHandle, dialog: Option<Dialog>, now: Instant) {
        let Some((bytes, branch, destination, transport)) =
            self.dialog_request(handle, "BYE", dialog.as_ref(), &[])
        else {
            return;
        };
        if dialog.is_none()
            && let Some(call) = self.calls.get_mut(&handle)
        {
            call.state = CallState::Ending;
        }
        let tx = ClientNonInvite::new(bytes.clone(), transport.reliable(), self.config.timers, now);
        self.clients.insert(
            (branch.clone(), "BYE"),
            ClientTx::NonInvite(tx, Purpose::Bye(handle), transport, destination),
        );
        self.schedule(TimerKey::Client(branch, "BYE"));
        self.send(transport, destination, bytes);
    }

    /// A session refresh: UPDATE without SDP (RFC 4028 §7.4), or a
    /// re-INVITE for a far end that does not take UPDATE.
    fn send_refresh(&mut self, handle: CallHandle, interval: Duration, now: Instant) {
        if self.calls.get(&handle).is_some_and(|c| c.refresh_by_invite) {
            self.send_refresh_invite(handle, interval, now);
            return;
        }
        let mut extra = vec![
            (
                "Session-Expires",
                format!("{};refresher=uac", interval.as_secs()),
            ),
            ("Supported", "timer".to_string()),
        ];
        if let Some(min_se) = self.calls.get(&handle).and_then(|c| c.min_se) {
            extra.push(("Min-SE", min_se.to_string()));
        }
        let Some((bytes, branch, destination, transport)) =
            self.dialog_request(handle, "UPDATE", None, &extra)
        else {
            return;
        };
        let tx = ClientNonInvite::new(bytes.clone(), transport.reliable(), self.config.timers, now);
        self.clients.insert(
            (branch.clone(), "UPDATE"),
            ClientTx::NonInvite(tx, Purpose::Refresh(handle), transport, destination),
        );
        self.schedule(TimerKey::Client(branch, "UPDATE"));
        self.send(transport, destination, bytes);
    }

    /// A session refresh by re-INVITE (RFC 4028 §7.4): our last
    /// description again, unchanged down to its `o=` version, so the media
    /// stays as it is. One at a time; the call's ACK CSeq becomes this
    /// INVITE's, so a retransmitted 2xx is ACKed as its own.
    fn send_refresh_invite(&mut self, handle: CallHandle, interval: Duration, now: Instant) {
        let pending = self.refresh_invite_pending(handle);
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let Some(body) = call.sdp.as_ref().map(DialogSdp::last_sent) else {
            tracing::debug!(call = handle.0, "no description of ours to refresh with");
            return;
        };
        if pending {
            return;
        }
        let contact = self.contact(call.request.transport);
        let mut extra = vec![
            (
                "Session-Expires",
                format!("{};refresher=uac", interval.as_secs()),
            ),
            ("Supported", "timer".to_string()),
            ("Contact", contact),
            ("Allow", ALLOW.to_string()),
        ];
        if let Some(min_se) = call.min_se {
            extra.push(("Min-SE", min_se.to_string()));
        }
        let Some((bytes, branch, destination, transport)) =
            self.dialog_request_with_body(handle, "INVITE", None, &extra, Some(body.as_bytes()))
        else {
            return;
        };
        if let Some(call) = self.calls.get_mut(&handle) {
            call.invite_cseq = call.cseq;
        }
        let tx = ClientInvite::new(bytes.clone(), transport.reliable(), self.config.timers, now);
        self.clients.insert(
            (branch.clone(), "INVITE"),
            ClientTx::Reinvite(tx, handle, transport, destination),
        );
        self.schedule(TimerKey::Client(branch, "INVITE"));
        self.send(transport, destination, bytes);
    }

    fn end_call(&mut self, handle: CallHandle, end: CallEnd) {
        if let Some(call) = self.calls.remove(&handle) {
            self.by_call_id.remove(&call.call_id);
            self.events.push_back(Event::Ended { call: handle, end });
        }
    }

    // ---- input ----------------------------------------------------------

    /// One datagram (or one framed stream message) from `from`. Malformed
    /// input is counted, logged at debug and dropped.
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        transport: TransportKind,
        bytes: &[u8],
        now: Instant,
    ) {
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return; // RFC 5626 keep-alive
        }
        match Message::parse(bytes) {
            Ok(message) if message.is_request() => {
                self.handle_request(&message, from, transport, now)
            }
            Ok(message) => {
                self.heard_from(from);
                self.handle_response(&message, now)
            }
            Err(error) => self.malformed(from, &error),
        }
    }

    fn malformed(&mut self, from: SocketAddr, error: &CodecError) {
        self.stats.malformed += 1;
        tracing::debug!(%from, %error, "malformed SIP message dropped");
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(key) = self.timer_keys.remove(&id) else {
                continue;
            };
            if self.deadline_of(&key) != Some(at) {
                continue; // stale entry: the owner moved on
            }
            self.fire(key, now);
        }
    }

    fn fire(&mut self, key: TimerKey, now: Instant) {
        match &key {
            TimerKey::Call(handle) => self.fire_call_timer(*handle, now),
            TimerKey::Registration(id) => self.fire_registration_timer(*id, now),
            TimerKey::Client(branch, method) => {
                let map_key = (branch.clone(), *method);
                let Some(tx) = self.clients.get_mut(&map_key) else {
                    return;
                };
                let (outcome, owner_call, purpose, route) = match tx {
                    ClientTx::Invite(tx, handle, destination) => (
                        tx.on_timer(now),
                        Some(*handle),
                        None,
                        self.calls
                            .get(handle)
                            .map(|call| (call.request.transport, *destination)),
                    ),
                    // Unanswered, it ends the session as an unanswered
                    // UPDATE refresh does.
                    ClientTx::Reinvite(tx, handle, t, d) => (
                        tx.on_timer(now),
                        None,
                        Some(Purpose::Refresh(*handle)),
                        Some((*t, *d)),
                    ),
                    ClientTx::NonInvite(tx, purpose, t, d) => {
                        (tx.on_timer(now), None, Some(*purpose), Some((*t, *d)))
                    }
                };
                match outcome {
                    TimerOutcome::Resend(bytes) => {
                        self.stats.retransmissions += 1;
                        let route = route.or_else(|| {
                            let call = self.calls.get(&owner_call?)?;
                            Some((call.request.transport, call.request.destination))
                        });
                        if let Some((transport, destination)) = route {
                            self.send(transport, destination, bytes);
                        }
                    }
                    TimerOutcome::TimedOut => {
                        self.clients.remove(&map_key);
                        if let Some(handle) = owner_call {
                            if !self.fail_over_on_timeout(handle, now)
                                && !self.next_target(handle, 408, now)
                            {
                                self.on_invite_timeout(handle);
                            }
                        } else if let Some(purpose) = purpose {
                            if let (Purpose::Ping(id), Some((_, silent))) = (purpose, route)
                                && self.ping_next_address(id, silent, now)
                            {
                                return;
                            }
                            self.on_non_invite_timeout(purpose, now);
                        }
                        return;
                    }
                    TimerOutcome::Terminated => {
                        self.clients.remove(&map_key);
                        return;
                    }
                    TimerOutcome::Nothing => {}
                }
            }
            TimerKey::Server(branch, method) => {
                let map_key = (branch.clone(), *method);
                let Some(tx) = self.servers.get_mut(&map_key) else {
                    return;
                };
                let (outcome, from, transport) = match tx {
                    ServerTx::Invite(tx, from, t) => (tx.on_timer(now), *from, *t),
                    ServerTx::NonInvite(tx, from, t) => (tx.on_timer(now), *from, *t),
                };
                match outcome {
                    TimerOutcome::Resend(bytes) => {
                        self.stats.retransmissions += 1;
                        self.send(transport, from, bytes);
                    }
                    TimerOutcome::TimedOut | TimerOutcome::Terminated => {
                        self.servers.remove(&map_key);
                        self.accepted.retain(|_, b| b != branch);
                        return;
                    }
                    TimerOutcome::Nothing => {}
                }
            }
        }
        self.schedule(key);
    }

    fn fire_call_timer(&mut self, handle: CallHandle, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.cancel_deadline.is_some_and(|at| now >= at) {
            let outcome = call.cancelled_as.unwrap_or(Outcome::Cancelled);
            let branch = call.invite_branch.clone();
            self.clients.remove(&(branch, "INVITE"));
            self.end_call(
                handle,
                CallEnd {
                    outcome,
                    sip_code: None,
                    reason: "no final response after CANCEL".into(),
                    retry_after: None,
                    hung_up_by_remote: false,
                },
            );
            return;
        }
        if call.ring_deadline.is_some_and(|at| now >= at) {
            call.ring_deadline = None;
            let _ = self.hangup_as(handle, Outcome::NoAnswer, now);
        } else if call.hangup_at.is_some_and(|at| now >= at) {
            call.hangup_at = None;
            self.send_bye(handle, None, now);
        } else if call.refresh_at.is_some_and(|at| now >= at) {
            match (call.state, call.session_expires) {
                (CallState::Confirmed, Some(interval)) => {
                    call.refresh_at = Some(now + interval / 2);
                    self.send_refresh(handle, interval, now);
                }
                // Hung up (our BYE unanswered yet): no refresh is due any
                // more. Left armed, the past deadline fired again at the
                // same instant forever and the endpoint never returned.
                _ => call.refresh_at = None,
            }
        } else if call.session_ends_at.is_some_and(|at| now >= at) {
            // The far end was to refresh the session and has not: it is
            // gone (RFC 4028 §10), and so is whoever was on it.
            call.session_ends_at = None;
            if call.state == CallState::Confirmed {
                tracing::info!(call = handle.0, "session not refreshed by the far end: BYE");
                if let Some(end) = call.end.as_mut() {
                    end.reason = "session expired (no refresh, RFC 4028)".into();
                }
                self.send_bye(handle, None, now);
            }
        }
        self.schedule(TimerKey::Call(handle));
    }

    fn on_invite_timeout(&mut self, handle: CallHandle) {
        let reason = match self.calls.get(&handle).and_then(|c| c.cancelled_as) {
            Some(outcome) => (outcome, "no 487 after CANCEL (Timer B)"),
            None => (Outcome::NetworkFailure, "no response (Timer B)"),
        };
        self.end_call(
            handle,
            CallEnd {
                outcome: reason.0,
                sip_code: None,
                reason: reason.1.into(),
                retry_after: None,
                hung_up_by_remote: false,
            },
        );
    }

    fn on_non_invite_timeout(&mut self, purpose: Purpose, now: Instant) {
        match purpose {
            Purpose::Bye(handle) => self.finish_after_bye(handle),
            Purpose::Ping(id) => {
                self.pings.remove(&id);
                self.events.push_back(Event::PingResult { id, code: None });
            }
            Purpose::Cancel(call) | Purpose::Prack(call) => {
                tracing::debug!(call = call.0, "CANCEL or PRACK got no response");
            }
            // A session refresh nobody answered: the session is gone (RFC 4028 §10).
            Purpose::Refresh(handle) => {
                let _ = self.hangup(handle, now);
            }
            Purpose::Register(id) => self.on_register_timeout(id, now),
        }
    }

    fn finish_after_bye(&mut self, handle: CallHandle) {
        if let Some(call) = self.calls.get(&handle) {
            let end = call.end.clone().unwrap_or(CallEnd {
                outcome: Outcome::Answered,
                sip_code: Some(200),
                reason: "OK".into(),
                retry_after: None,
                hung_up_by_remote: false,
            });
            self.end_call(handle, end);
        }
    }

    fn handle_response(&mut self, response: &Message<'_>, now: Instant) {
        let (Some((code, _)), Some(via), Some(cseq)) =
            (response.status(), response.top_via(), response.cseq())
        else {
            self.stats.malformed += 1;
            return;
        };
        let Some(branch) = via.branch() else {
            self.stats.strays += 1;
            return;
        };
        let method = static_method(cseq.method);
        let key = (branch.to_string(), method);
        let Some(tx) = self.clients.get_mut(&key) else {
            self.stats.strays += 1;
            // A 2xx retransmitted after the INVITE transaction ended: ACK it again.
            if method == "INVITE" && (200..300).contains(&code) {
                self.on_invite_success_late(response);
            }
            return;
        };
        match tx {
            ClientTx::Invite(tx, handle, sent_to) => {
                let (handle, sent_to) = (*handle, *sent_to);
                if code < 200 {
                    if tx.on_provisional() {
                        self.on_provisional(handle, response, code, now);
                    }
                } else if code < 300 {
                    if tx.on_success(now) {
                        self.on_success(handle, response, now);
                    }
                } else {
                    let ack = self.failure_ack(handle, response);
                    let Some(ClientTx::Invite(tx, ..)) = self.clients.get_mut(&key) else {
                        return;
                    };
                    let (pass, ack) = tx.on_failure(now, || ack);
                    if let (Some(ack), Some(call)) = (ack, self.calls.get(&handle)) {
                        let t = call.request.transport;
                        self.send(t, sent_to, ack);
                    }
                    if pass {
                        self.on_failure(handle, response, code, now);
                    }
                }
            }
            ClientTx::Reinvite(tx, handle, transport, destination) => {
                let (handle, transport, destination) = (*handle, *transport, *destination);
                if code < 200 {
                    // A 1xx and then nothing: Timer B still ends it (and
                    // the session, RFC 4028 §10), as it would a silence.
                    tx.on_provisional_keeping_deadline();
                } else if code < 300 {
                    if tx.on_success(now) {
                        self.on_refresh_accepted(handle, response, now);
                    }
                } else {
                    let ack = self.refresh_failure_ack(handle, &key.0, response);
                    let Some(ClientTx::Reinvite(tx, ..)) = self.clients.get_mut(&key) else {
                        return;
                    };
                    let (pass, ack) = tx.on_failure(now, || ack);
                    if let Some(ack) = ack {
                        self.send(transport, destination, ack);
                    }
                    if pass {
                        let min_se = min_se_of(response);
                        self.on_refresh_refused(handle, code, min_se, now);
                    }
                }
            }
            ClientTx::NonInvite(tx, purpose, ..) => {
                let purpose = *purpose;
                if !tx.on_response(code, now) || code < 200 {
                    self.schedule(TimerKey::Client(key.0, key.1));
                    return;
                }
                match purpose {
                    Purpose::Bye(handle) => {
                        if self
                            .calls
                            .get(&handle)
                            .is_some_and(|c| c.state == CallState::Ending)
                        {
                            self.finish_after_bye(handle);
                        }
                    }
                    Purpose::Ping(id) => {
                        self.pings.remove(&id);
                        self.events.push_back(Event::PingResult {
                            id,
                            code: Some(code),
                        });
                    }
                    Purpose::Refresh(handle) if code == 408 || code == 481 => {
                        let _ = self.hangup(handle, now);
                    }
                    // The far end does not take UPDATE: refresh with
                    // re-INVITE, now and from then on.
                    Purpose::Refresh(handle) if code == 405 || code == 501 => {
                        let interval = self.calls.get_mut(&handle).and_then(|call| {
                            call.refresh_by_invite = true;
                            call.session_expires
                        });
                        if let Some(interval) = interval {
                            tracing::info!(
                                call = handle.0,
                                code,
                                "UPDATE refused: session refreshed by re-INVITE"
                            );
                            self.send_refresh_invite(handle, interval, now);
                        }
                    }
                    Purpose::Refresh(handle) if code == 422 => {
                        self.on_interval_too_small(handle, min_se_of(response), now);
                    }
                    Purpose::Refresh(handle) if code < 300 => {
                        if let Some(call) = self.calls.get_mut(&handle) {
                            call.take_session_timer(response.header("Session-Expires"), true, now);
                            self.schedule(TimerKey::Call(handle));
                        }
                    }
                    Purpose::Register(id) => self.on_register_response(id, response, code, now),
                    Purpose::Cancel(_) | Purpose::Prack(_) | Purpose::Refresh(_) => {}
                }
            }
        }
        self.schedule(TimerKey::Client(key.0, key.1));
    }

    /// Whether a refresh re-INVITE of ours on `handle` waits for its final
    /// response.
    fn refresh_invite_pending(&self, handle: CallHandle) -> bool {
        self.clients.values().any(|tx| {
            matches!(tx, ClientTx::Reinvite(invite, h, ..) if *h == handle
                && matches!(invite.state, ClientInviteState::Calling | ClientInviteState::Proceeding))
        })
    }

    /// The far end took our refresh re-INVITE: ACK it (in the dialog, with
    /// its CSeq), follow a new Contact (a target refresh, RFC 3261
    /// §12.2.1.2) and take its SDP as the answer to our description.
    fn on_refresh_accepted(&mut self, handle: CallHandle, response: &Message<'_>, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if let (Some(dialog), Some(target)) = (
            call.dialog.as_mut(),
            response
                .header_values("Contact")
                .next()
                .and_then(NameAddr::parse),
        ) {
            dialog.remote_target = target.uri.to_string();
        }
        let cseq = response.cseq().map(|c| c.number);
        let first = cseq.is_some() && call.refresh_answered != cseq;
        call.refresh_answered = cseq;
        if first {
            call.take_session_timer(response.header("Session-Expires"), true, now);
        }
        let media = match (call.sdp.as_mut(), response.body.is_empty()) {
            (Some(sdp), false) if first => Some(sdp.on_answer(response.body)),
            _ => None,
        };
        self.ack_again(handle);
        self.schedule(TimerKey::Call(handle));
        match media {
            Some(Ok(media)) => self.events.push_back(Event::MediaChanged {
                call: handle,
                media,
            }),
            Some(Err(error)) => {
                tracing::info!(call = handle.0, %error, "refresh answer not taken; media unchanged")
            }
            None => {}
        }
    }

    /// The far end refused our refresh re-INVITE. 491 (its own re-INVITE
    /// crossed ours): again after 2.1–4 s, as the owner of the Call-ID
    /// (RFC 3261 §14.1). 408 or 481: the session is gone (RFC 4028 §10).
    /// 422: again at once with the far end's `Min-SE`. Anything else leaves
    /// the session as it is.
    fn on_refresh_refused(
        &mut self,
        handle: CallHandle,
        code: u16,
        min_se: Option<u64>,
        now: Instant,
    ) {
        match code {
            408 | 481 => {
                let _ = self.hangup(handle, now);
            }
            422 => self.on_interval_too_small(handle, min_se, now),
            491 => {
                let wait = Duration::from_millis(2100 + self.rng.u64(0..=1900));
                if let Some(call) = self.calls.get_mut(&handle)
                    && call.state == CallState::Confirmed
                {
                    call.refresh_at = Some(now + wait);
                    self.schedule(TimerKey::Call(handle));
                }
            }
            _ => tracing::info!(call = handle.0, code, "session refresh refused"),
        }
    }

    /// 422 (Session Interval Too Small) to our refresh: the far end wants at
    /// least `min_se` seconds; refresh again at once with that interval
    /// and `Min-SE` (RFC 4028 §7.4). A 422 that asks for no more than we
    /// sent, or for over a day, is not followed: retrying it would loop.
    fn on_interval_too_small(&mut self, handle: CallHandle, min_se: Option<u64>, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let current = call.session_expires.map_or(0, |i| i.as_secs());
        match min_se {
            Some(min_se)
                if min_se > current && min_se <= 86_400 && call.state == CallState::Confirmed =>
            {
                let interval = Duration::from_secs(min_se);
                call.session_expires = Some(interval);
                call.min_se = Some(min_se);
                call.refresh_at = Some(now + interval / 2);
                tracing::info!(
                    call = handle.0,
                    min_se,
                    "422: session refreshed with the far end's Min-SE"
                );
                self.send_refresh(handle, interval, now);
                self.schedule(TimerKey::Call(handle));
            }
            _ => tracing::info!(
                call = handle.0,
                ?min_se,
                "422 to a session refresh not followed"
            ),
        }
    }

    /// The ACK for a non-2xx to our refresh re-INVITE: its branch, the
    /// dialog's target and route, the response's To.
    fn refresh_failure_ack(
        &self,
        handle: CallHandle,
        branch: &str,
        response: &Message<'_>,
    ) -> Vec<u8> {
        let Some(call) = self.calls.get(&handle) else {
            return Vec::new();
        };
        let Some(dialog) = call.dialog.as_ref() else {
            return Vec::new();
        };
        let mut builder = MessageBuilder::request("ACK", &dialog.remote_target)
            .header("Via", self.via(call.request.transport, branch))
            .header("Max-Forwards", 70);
        for route in &dialog.route_set {
            builder = builder.header("Route", route);
        }
        builder
            .header("From", Self::from_header(call))
            .header("To", response.header("To").unwrap_or_default())
            .header("Call-ID", &call.call_id)
            .header("CSeq", format_args!("{} ACK", call.invite_cseq))
            .finish()
    }

    /// The ACK for a non-2xx final (RFC 3261 §17.1.1.3): same branch and
    /// Request-URI as the INVITE, the response's To.
    fn failure_ack(&self, handle: CallHandle, response: &Message<'_>) -> Vec<u8> {
        let Some(call) = self.calls.get(&handle) else {
            return Vec::new();
        };
        let r = &call.request;
        let to = response.header("To").unwrap_or_default();
        MessageBuilder::request("ACK", &call.request_uri)
            .header("Via", self.via(r.transport, &call.invite_branch))
            .header("Max-Forwards", 70)
            .header_opt("Route", r.route.as_deref())
            .header("From", Self::from_header(call))
            .header("To", to)
            .header("Call-ID", &call.call_id)
            .header("CSeq", format_args!("{} ACK", call.invite_cseq))
            .finish()
    }

    fn dialog_from(response: &Message<'_>) -> Option<Dialog> {
        let remote_tag = response.to()?.tag()?.to_string();
        let remote_target = response
            .header_values("Contact")
            .next()
            .and_then(NameAddr::parse)
            .map(|n| n.uri.to_string())?;
        let mut route_set: Vec<String> = response
            .header_values("Record-Route")
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Some(Dialog {
            remote_tag,
            remote_target,
            route_set,
            last_rseq: None,
        })
    }

    fn on_provisional(
        &mut self,
        handle: CallHandle,
        response: &Message<'_>,
        code: u16,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let (_, reason) = response.status().unwrap_or((code, ""));
        // Any provisional, 100 included, makes CANCEL possible.
        call.state = CallState::Early;
        let sdp = (!response.body.is_empty()).then(|| response.body.to_vec());
        self.events.push_back(Event::Progress {
            call: handle,
            code,
            reason: reason.to_string(),
            sdp,
        });
        // Early dialog bookkeeping and PRACK for reliable provisionals.
        let mut prack_for = None;
        if code > 100
            && let Some(mut dialog) = Self::dialog_from(response)
        {
            let rseq = response
                .header("RSeq")
                .and_then(|v| v.trim().parse::<u32>().ok());
            let reliable = response.has_option("Require", "100rel") && rseq.is_some();
            let index = match call
                .early
                .iter()
                .position(|d| d.remote_tag == dialog.remote_tag)
            {
                Some(index) => index,
                None => {
                    dialog.last_rseq = None;
                    call.early.push(dialog);
                    call.early.len() - 1
                }
            };
            let Some(dialog) = call.early.get_mut(index) else {
                return;
            };
            if reliable && let Some(rseq) = rseq {
                let fresh = dialog
                    .last_rseq
                    .is_none_or(|last| rseq == last.wrapping_add(1));
                if fresh {
                    dialog.last_rseq = Some(rseq);
                    prack_for = Some((dialog.clone(), rseq));
                }
            }
        }
        if let Some((dialog, rseq)) = prack_for {
            let invite_cseq = self.calls.get(&handle).map_or(0, |c| c.invite_cseq);
            if let Some((bytes, branch, destination, transport)) = self.dialog_request(
                handle,
                "PRACK",
                Some(&dialog),
                &[("RAck", format!("{rseq} {invite_cseq} INVITE"))],
            ) {
                let tx = ClientNonInvite::new(
                    bytes.clone(),
                    transport.reliable(),
                    self.config.timers,
                    now,
                );
                self.clients.insert(
                    (branch.clone(), "PRACK"),
                    ClientTx::NonInvite(tx, Purpose::Prack(handle), transport, destination),
                );
                self.schedule(TimerKey::Client(branch, "PRACK"));
                self.send(transport, destination, bytes);
            }
        }
        // A hang-up asked before any provisional: CANCEL now.
        {
            let pending = self
                .calls
                .get_mut(&handle)
                .and_then(|c| c.cancel_pending.take());
            if let Some(reason) = pending {
                if let Some(call) = self.calls.get_mut(&handle) {
                    call.state = CallState::Early;
                    call.cancelled_as = Some(reason);
                }
                self.send_cancel(handle, now);
            }
        }
    }

    fn on_success(&mut self, handle: CallHandle, response: &Message<'_>, now: Instant) {
        let Some(dialog) = Self::dialog_from(response).or_else(|| {
            // A 2xx without Contact or tag is broken; route the ACK to the URI.
            let call = self.calls.get(&handle)?;
            Some(Dialog {
                remote_tag: response
                    .to()
                    .and_then(|t| t.tag())
                    .unwrap_or_default()
                    .to_string(),
                remote_target: call.request_uri.clone(),
                route_set: Vec::new(),
                last_rseq: None,
            })
        }) else {
            return;
        };
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        // A retransmission of the winning 2xx (our ACK was lost): ACK again.
        if let Some(existing) = &call.dialog
            && existing.remote_tag == dialog.remote_tag
        {
            self.ack_again(handle);
            return;
        }
        let already_answered = call.dialog.is_some();
        let cancelled = call.cancelled_as.is_some() || call.cancel_pending.is_some();
        let hang_up_now = cancelled && !call.keep_crossing_answer;
        let ack = self.dialog_request(handle, "ACK", Some(&dialog), &[]);
        let Some((ack_bytes, _, destination, transport)) = ack else {
            return;
        };
        self.send(transport, destination, ack_bytes);
        if already_answered {
            // Another fork answered too: ACK it (done) and BYE it.
            self.send_bye(handle, Some(dialog), now);
            return;
        }
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        call.dialog = Some(dialog);
        call.early.clear();
        call.state = CallState::Confirmed;
        call.ring_deadline = None;
        // Session timer (RFC 4028): when the far end makes us the refresher,
        // refresh with UPDATE at half the interval; when it refreshes, BYE
        // a session it stops refreshing.
        call.take_session_timer(response.header("Session-Expires"), true, now);
        // A far end whose Allow leaves UPDATE out is refreshed by re-INVITE
        // (RFC 4028 §7.4), if we ever refresh it.
        let mut allow = response.header_values("Allow").peekable();
        call.refresh_by_invite = allow.peek().is_some()
            && !allow
                .flat_map(|v| v.split(','))
                .any(|m| m.trim().eq_ignore_ascii_case("UPDATE"));
        call.end = Some(CallEnd {
            outcome: Outcome::Answered,
            sip_code: Some(200),
            reason: response.status().map_or("OK", |(_, r)| r).to_string(),
            retry_after: None,
            hung_up_by_remote: false,
        });
        self.events.push_back(Event::Answered {
            call: handle,
            sdp: response.body.to_vec(),
        });
        if hang_up_now {
            // The CANCEL crossed this 200: ACK (done) and BYE.
            call.cancel_pending = None;
            self.send_bye(handle, None, now);
        } else if cancelled {
            // The ring timeout's CANCEL crossed this 200: the person who
            // picked up is kept; the CANCEL is moot (its 200 may still come).
            call.cancel_pending = None;
            call.cancelled_as = None;
            call.cancel_deadline = None;
            call.keep_crossing_answer = false;
            if let Some(hold) = call.request.hold {
                call.hangup_at = Some(now + hold);
            }
        } else if let Some(hold) = call.request.hold {
            call.hangup_at = Some(now + hold);
        }
        self.schedule(TimerKey::Call(handle));
    }

    /// A 2xx after the INVITE transaction ended (lost ACK): ACK it again.
    fn on_invite_success_late(&mut self, response: &Message<'_>) {
        let Some(handle) = response
            .call_id()
            .and_then(|id| self.by_call_id.get(id))
            .copied()
        else {
            return;
        };
        self.ack_again(handle);
    }

    /// ACKs a retransmitted 2xx. The ACK is built afresh (new branch): an
    /// ACK for a 2xx is its own end-to-end request, and peers that drop
    /// byte-identical messages as retransmissions (SIPp does) still see it.
    fn ack_again(&mut self, handle: CallHandle) {
        let Some(dialog) = self.calls.get(&handle).and_then(|c| c.dialog.clone()) else {
            return;
        };
        if let Some((ack, _, destination, transport)) =
            self.dialog_request(handle, "ACK", Some(&dialog), &[])
        {
            self.send(transport, destination, ack);
        }
    }

    fn on_failure(&mut self, handle: CallHandle, response: &Message<'_>, code: u16, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let reason = response.status().map_or("", |(_, r)| r).to_string();
        // 422 to the session timer we asked for: once more at once with
        // the far end's Min-SE as the interval and in a Min-SE header
        // (RFC 4028 §7.4); a 422 asking for no more, or for over a day,
        // ends the call as any refusal does.
        if code == 422
            && !call.interval_raised
            && call.cancelled_as.is_none()
            && call.cancel_pending.is_none()
            && let (Some(asked), Some(min_se)) = (call.asked_interval, min_se_of(response))
            && min_se > asked
            && min_se <= 86_400
        {
            call.interval_raised = true;
            call.asked_interval = Some(min_se);
            call.min_se = Some(min_se);
            call.early.clear();
            call.state = CallState::Calling;
            self.send_invite(handle, now);
            return;
        }
        if (code == 401 || code == 407) && call.auth_attempts < 2 && call.cancelled_as.is_none() {
            let header = if code == 401 {
                "WWW-Authenticate"
            } else {
                "Proxy-Authenticate"
            };
            let challenge = response.header(header).map(Challenge::parse);
            if let (Some(Ok(challenge)), Some(credentials)) =
                (challenge, call.request.credentials.clone())
            {
                call.auth_attempts += 1;
                let cnonce = self.token(12);
                let Some(call) = self.calls.get_mut(&handle) else {
                    return;
                };
                let answer = challenge.answer(
                    &credentials.username,
                    &credentials.password,
                    "INVITE",
                    &call.request_uri,
                    1,
                    &cnonce,
                );
                let name = if code == 401 {
                    "Authorization"
                } else {
                    "Proxy-Authorization"
                };
                call.authorization = Some((name, answer));
                call.state = CallState::Calling;
                self.send_invite(handle, now);
                return;
            }
        }
        let outcome = match (code, call.cancelled_as) {
            (487, Some(outcome)) => outcome,
            _ => Outcome::from_final_code(code),
        };
        let retry_after = response
            .header("Retry-After")
            .and_then(|v| v.split([';', ' ', '(']).next())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if code == 503 && self.fail_over_on_503(handle, retry_after, now) {
            return;
        }
        if self.follow_redirect(handle, response, code, now) || self.next_target(handle, code, now)
        {
            return;
        }
        let outcome = if code == 503 {
            Outcome::Congestion
        } else {
            outcome
        };
        self.end_call(
            handle,
            CallEnd {
                outcome,
                sip_code: Some(code),
                reason,
                retry_after,
                hung_up_by_remote: false,
            },
        );
    }

    fn handle_request(
        &mut self,
        request: &Message<'_>,
        from: SocketAddr,
        transport: TransportKind,
        now: Instant,
    ) {
        let (Some(method), Some(via), Some(cseq), Some(_)) = (
            request.method(),
            request.top_via(),
            request.cseq(),
            request.call_id(),
        ) else {
            self.stats.malformed += 1;
            return;
        };
        let method_key = if method == "ACK" {
            "INVITE"
        } else {
            static_method(method)
        };
        let branch = via.branch().unwrap_or_default().to_string();
        if method == "ACK" {
            self.handle_ack(request, &branch, cseq.number, now);
            return;
        }
        // A retransmitted request: the transaction answers again.
        if let Some(tx) = self.servers.get(&(branch.clone(), method_key)) {
            let again = match tx {
                ServerTx::Invite(tx, ..) => tx.on_retransmission(),
                ServerTx::NonInvite(tx, ..) => tx.on_retransmission(),
            };
            if let Some(bytes) = again {
                self.stats.retransmissions += 1;
                self.send(transport, from, bytes);
            }
            return;
        }
        let key = (branch.clone(), method_key);
        if method == "INVITE" {
            self.servers.insert(
                key.clone(),
                ServerTx::Invite(
                    ServerInvite::new(transport.reliable(), self.config.timers),
                    from,
                    transport,
                ),
            );
            let trying = response_to(request, from, 100, "Trying", None).finish();
            self.respond(&key, 100, trying, now);
        } else {
            self.servers.insert(
                key.clone(),
                ServerTx::NonInvite(
                    ServerNonInvite::new(transport.reliable(), self.config.timers),
                    from,
                    transport,
                ),
            );
        }
        let in_dialog = request.to().and_then(|t| t.tag()).is_some();
        let call = request
            .call_id()
            .and_then(|id| self.by_call_id.get(id))
            .copied();
        match (method, call) {
            ("CANCEL", _) => {
                // We never hold a pending server INVITE long enough to cancel.
                let bytes =
                    response_to(request, from, 481, "Call/Transaction Does Not Exist", None)
                        .finish();
                self.respond(&key, 481, bytes, now);
            }
            ("BYE", Some(handle)) => {
                let bytes = response_to(request, from, 200, "OK", None).finish();
                self.respond(&key, 200, bytes, now);
                let confirmed = self
                    .calls
                    .get(&handle)
                    .is_some_and(|c| matches!(c.state, CallState::Confirmed | CallState::Ending));
                if !confirmed {
                    // A BYE before the answer (a callee must not send one on
                    // an early dialog, RFC 3261 §15; some gateways do): the
                    // call is over, but our INVITE is still pending — CANCEL
                    // it, or it rings on and its transaction never ends.
                    let _ = self.hangup_as(handle, Outcome::Failed, now);
                    return;
                }
                let end = self.calls.get(&handle).map(|c| {
                    let mut end = c.end.clone().unwrap_or(CallEnd {
                        outcome: Outcome::Answered,
                        sip_code: Some(200),
                        reason: "OK".into(),
                        retry_after: None,
                        hung_up_by_remote: true,
                    });
                    end.hung_up_by_remote = true;
                    end
                });
                if let Some(end) = end {
                    self.end_call(handle, end);
                }
            }
            ("INVITE", Some(handle))
                if self
                    .calls
                    .get(&handle)
                    .is_some_and(|c| matches!(c.state, CallState::Calling | CallState::Early))
                    || self.refresh_invite_pending(handle) =>
            {
                // Our INVITE is still pending on this dialog (the first, or
                // a refresh): one from the far end gets 491 (RFC 3261
                // §14.2); accepting the first's would negotiate media on a
                // call not yet answered.
                let bytes = response_to(request, from, 491, "Request Pending", None).finish();
                self.respond(&key, 491, bytes, now);
            }
            ("INVITE" | "UPDATE", Some(handle)) => {
                // A session interval under our Min-SE (RFC 4028's floor of
                // 90 s): refused with 422 before its offer is looked at, so
                // the media stays as it was (§8.1; the far end may retry
                // with our Min-SE).
                if let Some(requested) = request
                    .header("Session-Expires")
                    .and_then(SessionExpires::parse)
                    && requested.interval < MIN_SESSION_INTERVAL
                {
                    let bytes = response_to(request, from, 422, "Session Interval Too Small", None)
                        .header("Min-SE", MIN_SESSION_INTERVAL.as_secs())
                        .finish();
                    self.respond(&key, 422, bytes, now);
                    return;
                }
                // A re-offer: hold/unhold, a new address, a session refresh.
                // An UPDATE without SDP is a session refresh (RFC 4028) and
                // its 200 has none; a re-INVITE without SDP gets our offer,
                // answered in the ACK; with SDP both are offers (RFC 3311).
                let sdp = if method == "UPDATE" && request.body.is_empty() {
                    Ok(String::new())
                } else {
                    self.reoffer(handle, request)
                };
                let sdp = match sdp {
                    Ok(sdp) => sdp,
                    Err(error) => {
                        self.refuse_reoffer(request, from, &key, &error, now);
                        return;
                    }
                };
                // Every accepted re-INVITE or UPDATE refreshes the session
                // (RFC 4028 §9); its Session-Expires says who refreshes next.
                let session_expires = request.header("Session-Expires").map(|requested| {
                    answer_to_refresh(requested, names_timer(request.header_values("Supported")))
                });
                let Some(call) = self.calls.get_mut(&handle) else {
                    return;
                };
                call.take_session_timer(
                    session_expires.as_ref().map(|(value, _)| value.as_str()),
                    false,
                    now,
                );
                let transport = call.request.transport;
                self.schedule(TimerKey::Call(handle));
                let contact = self.contact(transport);
                let require_timer = session_expires.as_ref().is_some_and(|(_, r)| *r);
                let bytes = response_to(request, from, 200, "OK", None)
                    .header("Contact", contact)
                    .header_opt(
                        "Session-Expires",
                        session_expires.as_ref().map(|(value, _)| value.as_str()),
                    )
                    .header_opt("Require", require_timer.then_some("timer"))
                    .header("Allow", ALLOW)
                    .body(Some("application/sdp"), sdp.as_bytes());
                if method == "INVITE" {
                    // Its ACK is matched by Call-ID and CSeq.
                    self.accepted.insert(
                        (
                            request.call_id().unwrap_or_default().to_string(),
                            cseq.number,
                        ),
                        branch.clone(),
                    );
                }
                // A target refresh (RFC 3261 §12.2.2): the far end moved
                // (an SBC's failover, a phone on a new address) and our
                // next requests — the BYE above all — go to its Contact.
                if let Some(target) = request
                    .header_values("Contact")
                    .next()
                    .and_then(NameAddr::parse)
                    && let Some(dialog) = self
                        .calls
                        .get_mut(&handle)
                        .and_then(|call| call.dialog.as_mut())
                {
                    dialog.remote_target = target.uri.to_string();
                }
                self.respond(&key, 200, bytes, now);
            }
            ("INFO" | "OPTIONS", Some(_)) => {
                let bytes = response_to(request, from, 200, "OK", None)
                    .header("Allow", ALLOW)
                    .finish();
                self.respond(&key, 200, bytes, now);
            }
            ("OPTIONS", None) if !in_dialog => {
                let bytes = response_to(request, from, 200, "OK", Some("options"))
                    .header("Allow", ALLOW)
                    .header("Accept", "application/sdp")
                    .header("Supported", "100rel, timer")
                    .header("Server", &self.config.user_agent)
                    .finish();
                self.respond(&key, 200, bytes, now);
            }
            ("REGISTER", None) if !self.registrar.is_empty() => {
                let nonce = self.fresh_nonce();
                let received = super::registrar::Received {
                    addr: from,
                    transport,
                };
                let reply = self.registrar.handle(request, received, nonce, now);
                let bytes = match &reply {
                    RegisterReply::Challenge(challenge) => {
                        response_to(request, from, 401, "Unauthorized", Some("reg"))
                            .header("WWW-Authenticate", challenge)
                            .finish()
                    }
                    RegisterReply::Ok { contacts, .. } => {
                        let mut builder = response_to(request, from, 200, "OK", Some("reg"));
                        for (contact, expires) in contacts {
                            builder = builder
                                .header("Contact", format_args!("<{contact}>;expires={expires}"));
                        }
                        builder.finish()
                    }
                    RegisterReply::Reject(code, reason) => {
                        response_to(request, from, *code, reason, Some("reg")).finish()
                    }
                };
                let code = match &reply {
                    RegisterReply::Challenge(_) => 401,
                    RegisterReply::Ok { .. } => 200,
                    RegisterReply::Reject(code, _) => *code,
                };
                self.respond(&key, code, bytes, now);
                if let RegisterReply::Ok { change, .. } = reply
                    && change != BindingChange::Queried
                {
                    self.events.push_back(Event::Registration(change));
                }
            }
            ("INVITE", None) => {
                tracing::debug!(%from, "INVITE from a stranger refused with 403");
                let tag = self.token(10);
                let bytes = response_to(request, from, 403, "Forbidden", Some(&tag)).finish();
                self.respond(&key, 403, bytes, now);
            }
            (_, None) if in_dialog => {
                let bytes =
                    response_to(request, from, 481, "Call/Transaction Does Not Exist", None)
                        .finish();
                self.respond(&key, 481, bytes, now);
            }
            _ => {
                let bytes = response_to(request, from, 405, "Method Not Allowed", Some("x"))
                    .header("Allow", ALLOW)
                    .finish();
                self.respond(&key, 405, bytes, now);
            }
        }
    }

    fn respond(&mut self, key: &(String, &'static str), code: u16, bytes: Vec<u8>, now: Instant) {
        let Some(tx) = self.servers.get_mut(key) else {
            return;
        };
        let (from, transport) = match tx {
            ServerTx::Invite(tx, from, t) => {
                tx.respond(code, bytes.clone(), now);
                (*from, *t)
            }
            ServerTx::NonInvite(tx, from, t) => {
                tx.respond(code, bytes.clone(), now);
                (*from, *t)
            }
        };
        self.send(transport, from, bytes);
        self.schedule(TimerKey::Server(key.0.clone(), key.1));
    }

    fn handle_ack(&mut self, request: &Message<'_>, branch: &str, cseq: u32, now: Instant) {
        // ACK for a non-2xx: same branch as the INVITE.
        let key = (branch.to_string(), "INVITE");
        let key = if self.servers.contains_key(&key) {
            Some(key)
        } else {
            // ACK for a 2xx: find the INVITE by Call-ID and CSeq.
            let call_id = request.call_id().unwrap_or_default().to_string();
            self.accepted
                .remove(&(call_id, cseq))
                .map(|b| (b, "INVITE"))
        };
        if let Some(key) = key
            && let Some(ServerTx::Invite(tx, ..)) = self.servers.get_mut(&key)
        {
            tx.on_ack(now);
            if tx.state == ServerInviteState::Terminated {
                // The ACK of our 2xx ends the transaction at once: no timer
                // is left to remove it (each re-INVITE the far end sent
                // — hold, unhold, a session refresh — used to stay here).
                self.servers.remove(&key);
            } else {
                self.schedule(TimerKey::Server(key.0, key.1));
            }
        }
        // The answer to the offer we put in the 2xx of an offerless re-INVITE.
        if request.body.is_empty() {
            return;
        }
        let Some(&handle) = request.call_id().and_then(|id| self.by_call_id.get(id)) else {
            return;
        };
        let Some(sdp) = self
            .calls
            .get_mut(&handle)
            .and_then(|call| call.sdp.as_mut())
            .filter(|sdp| sdp.offer_pending())
        else {
            return;
        };
        match sdp.on_answer(request.body) {
            Ok(media) => self.events.push_back(Event::MediaChanged {
                call: handle,
                media,
            }),
            // Too late to refuse: the session goes on as it was.
            Err(error) => tracing::warn!(%error, "unusable SDP answer in an ACK"),
        }
    }

    /// The SDP for the 2xx to a re-INVITE or UPDATE: our answer to its
    /// offer (and `Event::MediaChanged` for the shell), or, when it has no
    /// offer, ours (the answer comes in the ACK).
    fn reoffer(
        &mut self,
        handle: CallHandle,
        request: &Message<'_>,
    ) -> Result<String, ReofferError> {
        let Some(call) = self.calls.get_mut(&handle) else {
            return Ok(String::new());
        };
        let Some(sdp) = call.sdp.as_mut() else {
            return Ok(String::from_utf8_lossy(&call.request.sdp).into_owned());
        };
        if request.body.is_empty() {
            return Ok(sdp.offer_again());
        }
        let (answer, media) = sdp.answer(request.body)?;
        self.events.push_back(Event::MediaChanged {
            call: handle,
            media,
        });
        Ok(answer)
    }

    /// 488 to a re-offer we cannot take; the session goes on unchanged
    /// (RFC 3261 §14.2).
    fn refuse_reoffer(
        &mut self,
        request: &Message<'_>,
        from: SocketAddr,
        key: &(String, &'static str),
        error: &ReofferError,
        now: Instant,
    ) {
        tracing::info!(%error, "refused a re-offer");
        let warning = error.to_string().replace(['"', '\\'], "'");
        let bytes = response_to(request, from, 488, "Not Acceptable Here", None)
            .header("Warning", format_args!("399 outdial \"{warning}\""))
            .finish();
        self.respond(key, 488, bytes, now);
    }
}

/// A response copying Via (with received/rport filled in, RFC 3581), From,
/// To (adding `to_tag` when it has none), Call-ID and CSeq.
fn response_to(
    request: &Message<'_>,
    from: SocketAddr,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> MessageBuilder {
    let mut builder = MessageBuilder::response(code, reason);
    for (i, via) in request.header_values("Via").enumerate() {
        if i == 0 {
            builder = builder.header("Via", stamp_received(via, from));
        } else {
            builder = builder.header("Via", via);
        }
    }
    let to = request.header("To").unwrap_or_default();
    let to_has_tag = NameAddr::parse(to).and_then(|n| n.tag()).is_some();
    builder = builder.header("From", request.header("From").unwrap_or_default());
    builder = match to_tag {
        Some(tag) if !to_has_tag && code > 100 => {
            builder.header("To", format_args!("{to};tag={tag}"))
        }
        _ => builder.header("To", to),
    };
    builder
        .header("Call-ID", request.call_id().unwrap_or_default())
        .header("CSeq", request.header("CSeq").unwrap_or_default())
}

fn stamp_received(via: &str, from: SocketAddr) -> String {
    let mut out = String::with_capacity(via.len() + 32);
    let mut params = via.split(';');
    out.push_str(params.next().unwrap_or_default());
    let mut stamped = false;
    for p in params {
        let name = p.split('=').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("rport") {
            out.push_str(&format!(";rport={};received={}", from.port(), from.ip()));
            stamped = true;
        } else if name.eq_ignore_ascii_case("received") {
            continue;
        } else {
            out.push(';');
            out.push_str(p);
        }
    }
    if !stamped {
        out.push_str(&format!(";received={}", from.ip()));
    }
    out
}

fn static_method(method: &str) -> &'static str {
    match method {
        "INVITE" => "INVITE",
        "ACK" => "ACK",
        "CANCEL" => "CANCEL",
        "BYE" => "BYE",
        "OPTIONS" => "OPTIONS",
        "REGISTER" => "REGISTER",
        "PRACK" => "PRACK",
        "UPDATE" => "UPDATE",
        "INFO" => "INFO",
        "SUBSCRIBE" => "SUBSCRIBE",
        "NOTIFY" => "NOTIFY",
        "MESSAGE" => "MESSAGE",
        "REFER" => "REFER",
        _ => "OTHER",
    }
}

/// The `Min-SE` of a 422 (RFC 4028 §5), in seconds.
fn min_se_of(response: &Message<'_>) -> Option<u64> {
    response
        .header("Min-SE")
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.trim().parse().ok())
}

mod failover;
mod redirect;
mod session_timer;
mod trunk_registration;
use trunk_registration::Registration;
pub use trunk_registration::{RegistrationRequest, RegistrationState};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod peer_tests;

impl EndpointConfig {
    /// The endpoint settings from the configuration: Via/Contact address
    /// (`sip.public_addr`, else the bound address), T1/T2/T4, User-Agent,
    /// and the agents that may register (those with a password).
    pub fn from_config(config: &crate::config::Config, bound: SocketAddr, seed: u64) -> Self {
        EndpointConfig {
            local_addr: config.sip.public_addr.unwrap_or(bound),
            timers: Timers {
                t1: Duration::from_millis(config.sip.t1_ms),
                t2: Duration::from_millis(config.sip.t2_ms),
                t4: Duration::from_millis(config.sip.t4_ms),
            },
            user_agent: config.sip.user_agent.clone(),
            realm: "outdial".into(),
            agents: config
                .agents
                .iter()
                .filter_map(|a| {
                    Some(AgentCredentials {
                        id: a.id.clone(),
                        password: a.password.clone()?,
                        static_uri: a.sip_uri.clone().unwrap_or_default(),
                    })
                })
                .collect(),
            seed,
            nonce_key: os_random_key(),
        }
    }
}

/// 32 bytes from the OS's random source. Should the OS refuse (it does not
/// on Linux once booted), the key falls back to the time-seeded generator
/// and says so: registration still works, its nonces are then guessable.
fn os_random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut key) {
        tracing::warn!(error = %e, "no OS randomness for the registrar's nonce key; nonces are weaker");
        key.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    key
}
