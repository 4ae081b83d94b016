//! Where a call goes: a SIP URI dialed as given, or a number sent to the
//! configured trunk (through the outbound proxy when there is one).

use std::time::Duration;

use anyhow::anyhow;

use super::locate::{Destinations, Locator};
use crate::config::{Config, TrunkConfig};
use crate::sip::codec::SipUri;
use crate::sip::endpoint::{Credentials, RegistrationRequest, TransportKind};

/// Where a call goes: Request-URI, next hop, transport, and loose route.
#[derive(Debug, Clone)]
pub struct Route {
    pub uri: String,
    /// The trunk's, the outbound proxy's or the URI's host addresses; each
    /// call orders them afresh (RFC 2782 weights) and fails over along them.
    pub next_hop: Destinations,
    pub transport: TransportKind,
    pub route: Option<String>,
}

pub async fn route_for(locator: &Locator, config: &Config, target: &str) -> anyhow::Result<Route> {
    let trunk = SipUri::parse(&config.trunk.uri)
        .ok_or_else(|| anyhow!("trunk.uri {:?} is not a sip: URI", config.trunk.uri))?;
    if target.starts_with("sip:") || target.starts_with("sips:") {
        let uri =
            SipUri::parse(target).ok_or_else(|| anyhow!("{target:?} is not a valid SIP URI"))?;
        let transport = match uri.transport() {
            Some(t) if t.eq_ignore_ascii_case("tcp") => TransportKind::Tcp,
            _ => TransportKind::Udp,
        };
        return Ok(Route {
            uri: target.to_string(),
            next_hop: locator.locate(&uri, transport).await?,
            transport,
            route: None,
        });
    }
    let number: String = target
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    if number.is_empty()
        || !number
            .trim_start_matches('+')
            .chars()
            .all(|c| c.is_ascii_digit())
    {
        return Err(anyhow!(
            "{target:?} is neither a SIP URI nor a phone number"
        ));
    }
    let uri = format!("sip:{number}@{}", trunk.authority());
    let transport = TransportKind::from(config.trunk.transport);
    let (next_hop, route) = match &config.trunk.outbound_proxy {
        Some(proxy) => {
            let proxy_uri = SipUri::parse(proxy)
                .ok_or_else(|| anyhow!("trunk.outbound_proxy {proxy:?} is not a sip: URI"))?;
            (
                locator.locate(&proxy_uri, transport).await?,
                Some(format!("<{proxy};lr>")),
            )
        }
        None => (locator.locate(&trunk, transport).await?, None),
    };
    Ok(Route {
        uri,
        next_hop,
        transport,
        route,
    })
}

/// What registering with `trunk` asks (`[trunk] register`): the address of
/// record `sip:username@<trunk host>`, the Request-URI `sip:<trunk
/// host:port>`, sent to the trunk's (or its outbound proxy's) first address
/// in SRV order, its other addresses kept to fall back on.
pub fn registration_request(
    trunk: &TrunkConfig,
    next_hop: &Destinations,
) -> Option<RegistrationRequest> {
    // In RFC 2782's order, as a call's: lowest priority first, weights
    // drawn among equals.
    let (destination, alternates) = next_hop.ordered(fastrand::u32);
    let uri = SipUri::parse(&trunk.uri)?;
    let username = trunk.username.clone().unwrap_or_default();
    Some(RegistrationRequest {
        registrar: format!("sip:{}", uri.authority()),
        aor: format!("sip:{username}@{}", uri.host),
        contact_user: username.clone(),
        destination,
        alternates,
        transport: TransportKind::from(trunk.transport),
        credentials: trunk.password.clone().map(|password| Credentials {
            username: username.clone(),
            password,
        }),
        expires: std::time::Duration::from_secs(trunk.register_expires_s),
    })
}

/// How long a looked-up trunk route is used before it is looked up again.
pub const ROUTE_TTL: Duration = Duration::from_secs(60);
/// After a failed lookup, how long until the next.
pub const ROUTE_RETRY: Duration = Duration::from_secs(10);

/// The trunk's route for the engine task, which never waits on DNS: the
/// shell looks the trunk up in the background — at start, then every
/// `ROUTE_TTL` after a lookup that succeeded and every `ROUTE_RETRY` after
/// one that failed, whether or not anything is dialed — and a dial takes
/// the route in hand. A failed lookup keeps that route ("stale while
/// revalidate": a DNS outage mid-shift costs nothing but a log line; it
/// used to stall the engine task, live answers and all, for the resolver's
/// timeout once a minute). With no route at all (a node started during a
/// DNS outage) the engine holds dialing (`TrunkHold::Unresolved`) until a
/// lookup succeeds; the dials used to fail one by one, each giving its
/// attempt back and counting towards the trunk's breaker.
#[derive(Debug)]
pub struct RouteCache<R> {
    current: Option<R>,
}

impl<R> Default for RouteCache<R> {
    fn default() -> Self {
        RouteCache { current: None }
    }
}

impl<R> RouteCache<R> {
    /// The route to dial with, if one was ever found.
    pub fn current(&self) -> Option<&R> {
        self.current.as_ref()
    }

    /// A lookup's result (`None`: it failed; the route in hand stays):
    /// how long until the next lookup.
    pub fn looked_up(&mut self, result: Option<R>) -> Duration {
        match result {
            Some(route) => {
                self.current = Some(route);
                ROUTE_TTL
            }
            None => ROUTE_RETRY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_lookup_keeps_the_route_in_hand_and_is_tried_again_sooner() {
        let mut cache: RouteCache<&str> = RouteCache::default();
        assert_eq!(cache.current(), None, "nothing before the first lookup");
        assert_eq!(cache.looked_up(None), ROUTE_RETRY);
        assert_eq!(cache.current(), None);
        assert_eq!(cache.looked_up(Some("a")), ROUTE_TTL);
        assert_eq!(cache.current(), Some(&"a"));
        // DNS down: "a" stays, looked up again in 10 s.
        assert_eq!(cache.looked_up(None), ROUTE_RETRY);
        assert_eq!(cache.current(), Some(&"a"));
        assert_eq!(cache.looked_up(Some("b")), ROUTE_TTL);
        assert_eq!(cache.current(), Some(&"b"));
    }
}
