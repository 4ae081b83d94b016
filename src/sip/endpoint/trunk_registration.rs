//! Registering with a SIP trunk (RFC 3261 §10): some carriers take calls
//! only from a user agent registered with them. One binding per
//! registration, kept alive before it expires, challenged with digest like
//! our INVITEs, tried again with growing waits when the registrar refuses
//! or does not answer, removed (`Expires: 0`) at shutdown.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    ClientNonInvite, ClientTx, Credentials, Endpoint, Event, MessageBuilder, Purpose, TimerKey,
    TransportKind,
};
use crate::sip::auth::Challenge;
use crate::sip::codec::{Message, NameAddr, param};

/// The shortest and longest binding we ask for or take.
const MIN_EXPIRES: Duration = Duration::from_secs(10);
const MAX_EXPIRES: Duration = Duration::from_secs(86_400);
/// The first wait after a failure; it doubles up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(600);

/// Where and as whom to register.
#[derive(Debug, Clone)]
pub struct RegistrationRequest {
    /// The REGISTER's Request-URI: the registrar's domain, `sip:carrier.example.net`.
    pub registrar: String,
    /// The address of record, in From and To: `sip:outdial@carrier.example.net`.
    pub aor: String,
    /// The user part of our Contact.
    pub contact_user: String,
    pub destination: SocketAddr,
    /// The registrar's further addresses (its other SRV targets): a
    /// REGISTER that gets no answer goes on to the next at once.
    pub alternates: Vec<SocketAddr>,
    pub transport: TransportKind,
    pub credentials: Option<Credentials>,
    /// The binding's lifetime asked for (the registrar may grant less).
    pub expires: Duration,
}

/// What became of a registration.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrationState {
    /// Bound for `expires`; renewed before then.
    Registered { expires: Duration },
    /// Refused (`code`) or unanswered (`None`): tried again in `retry_in`.
    Failed {
        code: Option<u16>,
        reason: String,
        retry_in: Duration,
    },
    /// The binding was removed (or the registrar could not be told).
    Unregistered,
}

#[derive(Debug)]
pub(super) struct Registration {
    request: RegistrationRequest,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The answer to the latest challenge, sent with the next REGISTER.
    authorization: Option<(&'static str, String)>,
    /// Challenges answered in a row without a 2xx.
    auth_attempts: u8,
    /// The lifetime asked for (raised by a 423's Min-Expires).
    expires: Duration,
    /// When to send the next REGISTER; `None` while one is in flight.
    pub(super) next_at: Option<Instant>,
    failures: u32,
    /// Addresses that let a REGISTER time out since the last answer: once
    /// every one has, the retries back off as for a single address.
    silent_in_a_row: usize,
    /// `Expires: 0` sent: the registration ends at its answer.
    removing: bool,
}

/// When to renew a binding granted for `granted`: a quarter of it (at most
/// a minute) before it lapses, so a lost REGISTER has time for its
/// retransmissions.
fn renew_after(granted: Duration) -> Duration {
    granted - (granted / 4).min(Duration::from_secs(60))
}

/// The wait before the `failures`-th retry (1-based), or the registrar's
/// `Retry-After` (at most an hour).
fn retry_wait(failures: u32, retry_after: Option<Duration>) -> Duration {
    retry_after
        .map(|r| r.min(Duration::from_secs(3600)))
        .unwrap_or_else(|| {
            FIRST_RETRY
                .saturating_mul(1 << failures.saturating_sub(1).min(8))
                .min(MAX_RETRY)
        })
}

/// The lifetime the registrar granted our binding: our Contact's `expires`
/// parameter, else the `Expires` header, else what we asked.
fn granted(response: &Message<'_>, contact_user: &str, asked: Duration) -> Duration {
    let ours = response
        .header_values("Contact")
        .flat_map(|v| v.split(','))
        .filter(|c| {
            NameAddr::parse(c)
                .is_some_and(|n| n.uri.to_string().contains(&format!("sip:{contact_user}@")))
        })
        .find_map(|c| param(c, "expires").and_then(|e| e.trim().parse::<u64>().ok()));
    let header = || {
        response
            .header("Expires")
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    ours.or_else(header)
        .map_or(asked, Duration::from_secs)
        .clamp(MIN_EXPIRES, MAX_EXPIRES)
}

impl Endpoint {
    /// Starts registering with a trunk; the outcome comes as
    /// [`Event::TrunkRegistration`], again at every renewal and failure.
    pub fn register(&mut self, request: RegistrationRequest, now: Instant) -> u64 {
        let id = self.next_registration;
        self.next_registration += 1;
        let registration = Registration {
            expires: request.expires.clamp(MIN_EXPIRES, MAX_EXPIRES),
            call_id: format!("{}@outdial", self.token(20)),
            from_tag: self.token(10),
            cseq: 0,
            authorization: None,
            auth_attempts: 0,
            next_at: None,
            failures: 0,
            silent_in_a_row: 0,
            removing: false,
            request,
        };
        self.registrations.insert(id, registration);
        self.send_register(id, now);
        id
    }

    /// Removes every binding (`Expires: 0`), at shutdown: the registrar
    /// stops sending calls to an address nobody answers.
    pub fn unregister_all(&mut self, now: Instant) {
        let ids: Vec<u64> = self.registrations.keys().copied().collect();
        for id in ids {
            if let Some(registration) = self.registrations.get_mut(&id) {
                registration.removing = true;
            }
            self.send_register(id, now);
        }
    }

    /// Registrations held (renewing or waiting to try again).
    pub fn registrations(&self) -> usize {
        self.registrations.len()
    }

    pub(super) fn registration_deadline(&self, id: u64) -> Option<Instant> {
        self.registrations.get(&id)?.next_at
    }

    pub(super) fn fire_registration_timer(&mut self, id: u64, now: Instant) {
        if self
            .registrations
            .get(&id)
            .and_then(|r| r.next_at)
            .is_some_and(|at| now >= at)
        {
            self.send_register(id, now);
        }
    }

    fn send_register(&mut self, id: u64, now: Instant) {
        let branch = self.branch();
        let local_addr = self.config.local_addr;
        let user_agent = self.config.user_agent.clone();
        let Some(registration) = self.registrations.get_mut(&id) else {
            return;
        };
        registration.cseq += 1;
        registration.next_at = None;
        let request = &registration.request;
        let transport = request.transport;
        let expires = if registration.removing {
            0
        } else {
            registration.expires.as_secs()
        };
        let contact = match transport {
            TransportKind::Udp => format!("<sip:{}@{local_addr}>", request.contact_user),
            TransportKind::Tcp => {
                format!("<sip:{}@{local_addr};transport=tcp>", request.contact_user)
            }
        };
        let mut builder = MessageBuilder::request("REGISTER", &request.registrar)
            .header(
                "Via",
                format_args!(
                    "SIP/2.0/{} {local_addr};branch={branch};rport",
                    transport.via_name()
                ),
            )
            .header("Max-Forwards", 70)
            .header(
                "From",
                format_args!("<{}>;tag={}", request.aor, registration.from_tag),
            )
            .header("To", format_args!("<{}>", request.aor))
            .header("Call-ID", &registration.call_id)
            .header("CSeq", format_args!("{} REGISTER", registration.cseq))
            .header("Contact", contact)
            .header("Expires", expires)
            .header("User-Agent", user_agent);
        if let Some((name, value)) = &registration.authorization {
            builder = builder.header(name, value);
        }
        let bytes = builder.finish();
        let destination = request.destination;
        let tx = ClientNonInvite::new(bytes.clone(), transport.reliable(), self.config.timers, now);
        self.clients.insert(
            (branch.clone(), "REGISTER"),
            ClientTx::NonInvite(tx, Purpose::Register(id), transport, destination),
        );
        self.schedule(TimerKey::Client(branch, "REGISTER"));
        self.send(transport, destination, bytes);
    }

    /// A final response to one of our REGISTERs.
    pub(super) fn on_register_response(
        &mut self,
        id: u64,
        response: &Message<'_>,
        code: u16,
        now: Instant,
    ) {
        let cnonce = self.token(12);
        let Some(registration) = self.registrations.get_mut(&id) else {
            return;
        };
        if registration.removing {
            if (code == 401 || code == 407)
                && registration.auth_attempts < 2
                && answer_challenge(registration, response, code, &cnonce)
            {
                self.send_register(id, now);
                return;
            }
            self.registrations.remove(&id);
            self.events.push_back(Event::TrunkRegistration {
                id,
                state: RegistrationState::Unregistered,
            });
            return;
        }
        match code {
            200..=299 => {
                let granted = granted(
                    response,
                    &registration.request.contact_user,
                    registration.expires,
                );
                registration.auth_attempts = 0;
                registration.failures = 0;
                registration.silent_in_a_row = 0;
                // A fresh challenge at the next renewal, rather than a
                // nonce the registrar may have let go stale.
                registration.authorization = None;
                registration.next_at = Some(now + renew_after(granted));
                self.events.push_back(Event::TrunkRegistration {
                    id,
                    state: RegistrationState::Registered { expires: granted },
                });
            }
            401 | 407
                if registration.auth_attempts < 2
                    && answer_challenge(registration, response, code, &cnonce) =>
            {
                self.send_register(id, now);
            }
            423 => {
                let min = response
                    .header("Min-Expires")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match min {
                    Some(min) if min > registration.expires && min <= MAX_EXPIRES => {
                        registration.expires = min;
                        self.send_register(id, now);
                    }
                    _ => self.registration_failed(id, Some(code), response, now),
                }
            }
            _ => self.registration_failed(id, Some(code), response, now),
        }
        self.schedule(TimerKey::Registration(id));
    }

    /// No final response to our REGISTER (Timer F).
    pub(super) fn on_register_timeout(&mut self, id: u64, now: Instant) {
        if self.registrations.get(&id).is_some_and(|r| r.removing) {
            self.registrations.remove(&id);
            self.events.push_back(Event::TrunkRegistration {
                id,
                state: RegistrationState::Unregistered,
            });
            return;
        }
        if self.register_at_next_address(id, now) {
            return;
        }
        self.schedule_retry(id, None, "no response".into(), None, now);
    }

    /// The registrar's address did not answer: move to its next one (the
    /// silent one goes last) and send there at once, unless every address
    /// has been silent since the last answer (`false`: back off).
    fn register_at_next_address(&mut self, id: u64, now: Instant) -> bool {
        let Some(registration) = self.registrations.get_mut(&id) else {
            return false;
        };
        if registration.request.alternates.is_empty() {
            return false;
        }
        let silent = registration.request.destination;
        registration.request.destination = registration.request.alternates.remove(0);
        registration.request.alternates.push(silent);
        registration.silent_in_a_row += 1;
        self.unresponsive
            .insert(silent, now + super::failover::UNRESPONSIVE_FOR);
        if registration.silent_in_a_row > registration.request.alternates.len() {
            registration.silent_in_a_row = 0;
            return false;
        }
        // A new registrar host: no stale challenge answer.
        registration.authorization = None;
        registration.auth_attempts = 0;
        self.stats.failovers += 1;
        self.send_register(id, now);
        true
    }

    fn registration_failed(
        &mut self,
        id: u64,
        code: Option<u16>,
        response: &Message<'_>,
        now: Instant,
    ) {
        let reason = response.status().map_or("", |(_, r)| r).to_string();
        let retry_after = response
            .header("Retry-After")
            .and_then(|v| v.split([';', ' ', '(']).next())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        self.schedule_retry(id, code, reason, retry_after, now);
    }

    fn schedule_retry(
        &mut self,
        id: u64,
        code: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let Some(registration) = self.registrations.get_mut(&id) else {
            return;
        };
        registration.failures += 1;
        registration.auth_attempts = 0;
        registration.authorization = None;
        let retry_in = retry_wait(registration.failures, retry_after);
        registration.next_at = Some(now + retry_in);
        self.schedule(TimerKey::Registration(id));
        self.events.push_back(Event::TrunkRegistration {
            id,
            state: RegistrationState::Failed {
                code,
                reason,
                retry_in,
            },
        });
    }
}

/// Answers a 401/407's challenge for the next REGISTER; false when there is
/// no usable challenge or no credentials.
fn answer_challenge(
    registration: &mut Registration,
    response: &Message<'_>,
    code: u16,
    cnonce: &str,
) -> bool {
    let (header, name) = if code == 401 {
        ("WWW-Authenticate", "Authorization")
    } else {
        ("Proxy-Authenticate", "Proxy-Authorization")
    };
    let Some(Ok(challenge)) = response.header(header).map(Challenge::parse) else {
        return false;
    };
    let Some(credentials) = registration.request.credentials.as_ref() else {
        return false;
    };
    let answer = challenge.answer(
        &credentials.username,
        &credentials.password,
        "REGISTER",
        &registration.request.registrar,
        1,
        cnonce,
    );
    registration.auth_attempts += 1;
    registration.authorization = Some((name, answer));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_is_renewed_before_it_lapses() {
        assert_eq!(
            renew_after(Duration::from_secs(60)),
            Duration::from_secs(45)
        );
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_ten_minutes() {
        let waits: Vec<u64> = (1..=7).map(|n| retry_wait(n, None).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(retry_wait(50, None).as_secs(), 600);
        assert_eq!(retry_wait(1, Some(Duration::from_secs(5))).as_secs(), 5);
        assert_eq!(
            retry_wait(1, Some(Duration::from_secs(99_999))).as_secs(),
            3600
        );
    }
}
