//! Following a redirect (RFC 3261 §8.1.3.4): a 300–302 to a trunk call's
//! INVITE names, in its `Contact`s, where the call should go instead. Least-
//! cost-routing and number-portability servers answer this way, with a list
//! of gateways to try in order of their `q`. The new INVITE is a new
//! transaction (new branch, next CSeq) in the same call (same Call-ID, From
//! and To); its Request-URI is the Contact.
//!
//! The targets of a 3xx are tried one after the other: when one refuses
//! (anything but a 6xx, which is final wherever it is asked) or does not
//! answer, the next one is called. A call given up (ring timeout, hang-up)
//! is not carried on. Loops are bounded: a URI is tried once per call, at
//! most [`MAX_REDIRECTS`] 3xx are followed and [`MAX_TARGETS`] targets
//! tried.
//!
//! This endpoint is sans-IO and cannot look a host name up, so a Contact is
//! followed when its next hop is known without DNS: an IP address, the host
//! of the Request-URI it replaces (the same next hop), or any URI when
//! calls go through an outbound proxy (the proxy routes it). Other Contacts
//! are skipped and logged.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::{Call, CallHandle, CallState, Endpoint};
use crate::sip::codec::{Message, NameAddr, SipUri, param};

/// How many 3xx responses one call follows.
pub const MAX_REDIRECTS: u8 = 3;
/// How many redirect targets one call tries in all.
pub const MAX_TARGETS: usize = 8;

/// Where a 3xx sends the call: the Request-URI and its next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    uri: String,
    destination: SocketAddr,
    alternates: Vec<SocketAddr>,
}

impl Call {
    /// A CANCEL was sent or is pending, or the call is past its answer: no
    /// new INVITE for it, whatever the last one got.
    pub(super) fn given_up(&self) -> bool {
        self.cancelled_as.is_some()
            || self.cancel_pending.is_some()
            || matches!(self.state, CallState::Confirmed | CallState::Ending)
    }

    /// The next hop of a Contact URI, when it is known without DNS.
    fn target_for(&self, uri: &str) -> Option<Target> {
        // sips: (TLS) and tel: are not ours to place.
        if !uri.get(..4)?.eq_ignore_ascii_case("sip:") {
            return None;
        }
        let contact = SipUri::parse(uri)?;
        if let Some(transport) = param(contact.params, "transport")
            && !transport.eq_ignore_ascii_case(self.request.transport.via_name())
        {
            return None;
        }
        let same_hop = || Target {
            uri: uri.to_string(),
            destination: self.request.destination,
            alternates: self.request.alternates.clone(),
        };
        if self.request.route.is_some() {
            return Some(same_hop());
        }
        if let Ok(ip) = contact.host.parse::<IpAddr>() {
            return Some(Target {
                uri: uri.to_string(),
                destination: SocketAddr::new(ip, contact.port.unwrap_or(5060)),
                alternates: Vec::new(),
            });
        }
        let current = SipUri::parse(&self.request_uri)?;
        (contact.host.eq_ignore_ascii_case(current.host) && contact.port == current.port)
            .then(same_hop)
    }

    fn tried(&self, uri: &str) -> bool {
        self.request.uri.eq_ignore_ascii_case(uri)
            || self.tried_uris.iter().any(|t| t.eq_ignore_ascii_case(uri))
            || self
                .redirect_targets
                .iter()
                .any(|t| t.uri.eq_ignore_ascii_case(uri))
    }
}

impl Endpoint {
    /// A 300–302 to the INVITE of a call that follows redirects: its
    /// Contacts (best `q` first) go before the targets left from an earlier
    /// 3xx, and the first is called. `false`: not followed (not a redirect,
    /// the call does not follow them, too many, or no usable Contact), the
    /// response ends the call as before.
    pub(super) fn follow_redirect(
        &mut self,
        handle: CallHandle,
        response: &Message<'_>,
        code: u16,
        now: Instant,
    ) -> bool {
        if !(300..=302).contains(&code) {
            return false;
        }
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        if !call.request.follow_redirects || call.redirects >= MAX_REDIRECTS || call.given_up() {
            return false;
        }
        call.redirects += 1;
        let mut contacts: Vec<(f32, &str)> = response
            .header_values("Contact")
            .filter_map(NameAddr::parse)
            .map(|contact| {
                let q = param(contact.params, "q")
                    .and_then(|q| q.parse::<f32>().ok())
                    .filter(|q| q.is_finite())
                    .unwrap_or(1.0);
                // Headers in a Contact URI are not copied into our request.
                let uri = contact.uri.split('?').next().unwrap_or_default();
                (q, uri.trim())
            })
            .collect();
        // Stable: equal q keep the order they came in.
        contacts.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut fresh: Vec<Target> = Vec::new();
        for (_, uri) in contacts {
            if call.tried(uri) || fresh.iter().any(|t| t.uri.eq_ignore_ascii_case(uri)) {
                continue;
            }
            match call.target_for(uri) {
                Some(target) => fresh.push(target),
                None => tracing::info!(
                    call = handle.0,
                    contact = uri,
                    code,
                    "a redirect target not followed: not sip:, another transport, or a host name \
                     to look up"
                ),
            }
        }
        let room = MAX_TARGETS.saturating_sub(call.tried_uris.len() + call.redirect_targets.len());
        fresh.truncate(room);
        call.redirect_targets.splice(0..0, fresh);
        self.next_target(handle, code, now)
    }

    /// The INVITE to the call's current target failed with `code` (408
    /// for no response at all): call the next target a 3xx named, unless
    /// `code` is a 6xx (final wherever it is asked, RFC 3261 §21.6) or the
    /// call is being given up. `false`: none, the failure ends the call.
    pub(super) fn next_target(&mut self, handle: CallHandle, code: u16, now: Instant) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        if call.redirect_targets.is_empty() || code >= 600 || call.given_up() {
            return false;
        }
        let target = call.redirect_targets.remove(0);
        let (destination, alternates) =
            self.order_by_health(target.destination, target.alternates, now);
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        tracing::info!(
            call = handle.0,
            from = %call.request_uri,
            to = %target.uri,
            %destination,
            "the call goes where a redirect sent it"
        );
        call.tried_uris.push(target.uri.clone());
        call.request_uri = target.uri;
        call.request.destination = destination;
        call.request.alternates = alternates;
        call.forget_the_last_server();
        self.stats.redirects += 1;
        self.send_invite(handle, now);
        true
    }
}
