//! Failing over to the next address of the next hop (RFC 3263 §4.3): a
//! trunk that publishes several SBCs in its SRV records expects a client to
//! try the next one when the one it picked does not answer at all (the
//! INVITE's Timer B) or answers 503. The retry is a new INVITE transaction
//! (new branch, next CSeq) in the same call (same Call-ID and From tag).
//!
//! An address that let an INVITE time out is remembered as unresponsive for
//! a while (and one that answered 503 with `Retry-After` for that long,
//! RFC 3261 §21.5.4): the calls placed meanwhile try it last, so a dead SBC
//! costs one Timer B, not one per call.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{CallState, Endpoint, TransportKind};

/// How long an address that let an INVITE time out goes to the back of
/// every new call's list (the OPTIONS keepalive runs every 30 s by
/// default; an SBC back up answers well within this).
pub const UNRESPONSIVE_FOR: Duration = Duration::from_secs(60);
/// The longest `Retry-After` of a 503 that is honoured this way.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// An OPTIONS ping to a next hop with several addresses: the trunk is up
/// when any of them answers, so a silent one passes the ping on.
#[derive(Debug)]
pub(super) struct PendingPing {
    uri: String,
    transport: TransportKind,
    alternates: Vec<SocketAddr>,
}

impl super::Call {
    /// The call's INVITE goes to another server (the next address, a
    /// redirect target): that one knows nothing of the last one's challenge
    /// or early dialogs.
    pub(super) fn forget_the_last_server(&mut self) {
        self.authorization = None;
        self.auth_attempts = 0;
        self.early.clear();
        self.state = CallState::Calling;
    }
}

impl Endpoint {
    /// OPTIONS to the next hop (the trunk keepalive): to `destination`, or,
    /// when it (or a later one) does not answer, to each of `alternates` in
    /// turn; one [`Event::PingResult`](super::Event::PingResult) for the
    /// lot — a code when any answered, `None` when none did. Addresses
    /// lately silent are asked last.
    pub fn ping_next_hop(
        &mut self,
        uri: &str,
        destination: SocketAddr,
        alternates: Vec<SocketAddr>,
        transport: TransportKind,
        now: Instant,
    ) -> u64 {
        let (destination, alternates) = self.order_by_health(destination, alternates, now);
        let id = self.ping(uri, destination, transport, now);
        if !alternates.is_empty() {
            self.pings.insert(
                id,
                PendingPing {
                    uri: uri.to_string(),
                    transport,
                    alternates,
                },
            );
        }
        id
    }

    /// The ping `id` to `silent` timed out: remember the address, and ask
    /// the next one. `false`: none left, the ping's result is "no answer".
    pub(super) fn ping_next_address(&mut self, id: u64, silent: SocketAddr, now: Instant) -> bool {
        self.unresponsive.insert(silent, now + UNRESPONSIVE_FOR);
        let Some(pending) = self.pings.get_mut(&id) else {
            return false;
        };
        if pending.alternates.is_empty() {
            self.pings.remove(&id);
            return false;
        }
        let next = pending.alternates.remove(0);
        let (uri, transport) = (pending.uri.clone(), pending.transport);
        self.stats.failovers += 1;
        self.send_ping(id, &uri, next, transport, now);
        true
    }

    /// A new call's addresses with the ones known to be unresponsive moved
    /// last (in their order): the first becomes the destination.
    pub(super) fn order_by_health(
        &mut self,
        destination: SocketAddr,
        alternates: Vec<SocketAddr>,
        now: Instant,
    ) -> (SocketAddr, Vec<SocketAddr>) {
        self.unresponsive.retain(|_, until| *until > now);
        if alternates.is_empty() || self.unresponsive.is_empty() {
            return (destination, alternates);
        }
        let (healthy, resting): (Vec<SocketAddr>, Vec<SocketAddr>) = std::iter::once(destination)
            .chain(alternates)
            .partition(|a| !self.unresponsive.contains_key(a));
        let mut all = healthy.into_iter().chain(resting);
        let first = all.next().unwrap_or(destination);
        (first, all.collect())
    }

    /// The addresses new calls try last at `now` (they let an INVITE or a
    /// ping time out, or asked for a rest with a 503), in order: for the
    /// operator, which SBC of the carrier is down.
    pub fn resting_addresses(&self, now: Instant) -> Vec<SocketAddr> {
        let mut resting: Vec<SocketAddr> = self
            .unresponsive
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(address, _)| *address)
            .collect();
        resting.sort();
        resting
    }

    /// Any response from an address shows it alive.
    pub(super) fn heard_from(&mut self, from: SocketAddr) {
        if !self.unresponsive.is_empty() {
            self.unresponsive.remove(&from);
        }
    }

    /// The INVITE to the call's destination timed out (Timer B): remember
    /// the address, and send the INVITE to the next one if there is one.
    /// `false`: no address left (or the call is being given up), the
    /// timeout ends the call.
    pub(super) fn fail_over_on_timeout(&mut self, handle: super::CallHandle, now: Instant) -> bool {
        let Some(call) = self.calls.get(&handle) else {
            return false;
        };
        self.unresponsive
            .insert(call.request.destination, now + UNRESPONSIVE_FOR);
        self.fail_over(handle, now)
    }

    /// A 503 to the INVITE: the next address, if there is one. With
    /// `Retry-After`, the address rests that long.
    pub(super) fn fail_over_on_503(
        &mut self,
        handle: super::CallHandle,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> bool {
        let Some(call) = self.calls.get(&handle) else {
            return false;
        };
        // A 503 is about the server that sent it: proxies turn a
        // downstream 503 into a 500 (RFC 3261 §16.7).
        if let Some(rest) = retry_after.filter(|d| !d.is_zero()) {
            self.unresponsive
                .insert(call.request.destination, now + rest.min(MAX_RETRY_AFTER));
        }
        self.fail_over(handle, now)
    }

    fn fail_over(&mut self, handle: super::CallHandle, now: Instant) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        // A call given up (CANCEL sent or pending) is not retried.
        if call.request.alternates.is_empty() || call.given_up() {
            return false;
        }
        let next = call.request.alternates.remove(0);
        tracing::info!(
            call = handle.0,
            from = %call.request.destination,
            to = %next,
            "the next hop did not serve the INVITE; trying its next address"
        );
        call.request.destination = next;
        call.forget_the_last_server();
        self.stats.failovers += 1;
        self.send_invite(handle, now);
        true
    }
}
