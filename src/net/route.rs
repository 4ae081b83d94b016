//! Where a call goes: a SIP URI dialed as given, or a number sent to the
//! configured trunk (through the outbound proxy when there is one).

use std::time::{Duration, Instant};

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
/// After a failed lookup, how long the route in hand is kept before the
/// next try.
pub const ROUTE_RETRY: Duration = Duration::from_secs(10);

/// The trunk's route for the engine task, which must never wait on DNS once
/// it has a route: a due route is still used while the next lookup runs in
/// the background ("stale while revalidate"), and kept when that lookup
/// fails (a DNS outage then costs nothing but a log line — it used to
/// stall the engine task, live answers and all, for the resolver's timeout
/// once a minute). The shell starts the trunk's first lookup before the
/// engine runs (`Shell::look_up_trunk_first`); only a cache never looked up
/// makes its first dial wait. When a first lookup fails (a node started during a DNS
/// outage), the next ones run in the background every `ROUTE_RETRY` too,
/// and the dials meanwhile fail at once (they used to wait for a lookup
/// each, holding the engine task).
#[derive(Debug)]
pub struct RouteCache<R> {
    current: Option<R>,
    refresh_at: Option<Instant>,
    refreshing: bool,
}

/// What the caller of [`RouteCache::get`] must do about a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Nothing in hand: look up now and wait for it.
    Now,
    /// Use the route in hand (if any: without one the dial fails); start a
    /// lookup in the background and report it with
    /// [`RouteCache::looked_up`].
    InBackground,
    /// Use the route in hand.
    No,
}

impl<R: Clone> Default for RouteCache<R> {
    fn default() -> Self {
        RouteCache {
            current: None,
            refresh_at: None,
            refreshing: false,
        }
    }
}

impl<R: Clone> RouteCache<R> {
    /// The route to use at `now` (if any) and what to do about a lookup.
    pub fn get(&mut self, now: Instant) -> (Option<R>, Lookup) {
        if self.current.is_none() && self.refresh_at.is_none() && !self.refreshing {
            // Never looked up: the first dial waits for it.
            return (None, Lookup::Now);
        }
        let due = self.refresh_at.is_none_or(|at| now >= at);
        if due && !self.refreshing {
            self.refreshing = true;
            return (self.current.clone(), Lookup::InBackground);
        }
        (self.current.clone(), Lookup::No)
    }

    /// A lookup was started outside [`RouteCache::get`] (the first, at
    /// start): none more until [`RouteCache::looked_up`] reports it.
    pub fn lookup_started(&mut self) {
        self.refreshing = true;
    }

    /// A lookup's result (`None`: it failed): a new route is used until
    /// `ROUTE_TTL` from now; after a failure the route in hand (if any) is
    /// kept and the lookup tried again after `ROUTE_RETRY`.
    pub fn looked_up(&mut self, result: Option<R>, now: Instant) {
        self.refreshing = false;
        match result {
            Some(route) => {
                self.current = Some(route);
                self.refresh_at = Some(now + ROUTE_TTL);
            }
            None => self.refresh_at = Some(now + ROUTE_RETRY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_route_is_used_while_the_next_lookup_runs_and_kept_when_it_fails() {
        let t0 = Instant::now();
        let mut cache: RouteCache<&str> = RouteCache::default();
        assert_eq!(cache.get(t0), (None, Lookup::Now), "the first dial waits");
        cache.looked_up(Some("a"), t0);
        assert_eq!(cache.get(t0 + ROUTE_TTL / 2), (Some("a"), Lookup::No));
        // Due: used as it is, one lookup started in the background.
        assert_eq!(cache.get(t0 + ROUTE_TTL), (Some("a"), Lookup::InBackground));
        assert_eq!(
            cache.get(t0 + ROUTE_TTL),
            (Some("a"), Lookup::No),
            "one lookup at a time"
        );
        // It fails (DNS down): "a" stays, tried again 10 s later.
        let failed_at = t0 + ROUTE_TTL + Duration::from_secs(4);
        cache.looked_up(None, failed_at);
        assert_eq!(
            cache.get(failed_at + ROUTE_RETRY / 2),
            (Some("a"), Lookup::No)
        );
        assert_eq!(
            cache.get(failed_at + ROUTE_RETRY),
            (Some("a"), Lookup::InBackground)
        );
        let changed_at = failed_at + ROUTE_RETRY;
        cache.looked_up(Some("b"), changed_at);
        assert_eq!(cache.get(changed_at), (Some("b"), Lookup::No));
    }

    #[test]
    fn while_the_first_lookup_runs_there_is_no_route_and_no_other_lookup() {
        let t0 = Instant::now();
        let mut cache: RouteCache<&str> = RouteCache::default();
        cache.lookup_started();
        assert_eq!(cache.get(t0), (None, Lookup::No));
        assert_eq!(cache.get(t0 + ROUTE_TTL), (None, Lookup::No));
        cache.looked_up(Some("a"), t0 + Duration::from_secs(5));
        assert_eq!(
            cache.get(t0 + Duration::from_secs(5)),
            (Some("a"), Lookup::No)
        );
    }

    #[test]
    fn after_a_failed_first_lookup_the_next_ones_run_in_the_background() {
        let t0 = Instant::now();
        let mut cache: RouteCache<&str> = RouteCache::default();
        assert_eq!(cache.get(t0).1, Lookup::Now);
        cache.looked_up(None, t0);
        // No route, none looked up before the retry: the dial fails at once.
        assert_eq!(cache.get(t0 + Duration::from_secs(1)), (None, Lookup::No));
        // Then one lookup in the background, none waited for.
        assert_eq!(cache.get(t0 + ROUTE_RETRY), (None, Lookup::InBackground));
        assert_eq!(cache.get(t0 + ROUTE_RETRY), (None, Lookup::No));
        let found_at = t0 + ROUTE_RETRY + Duration::from_secs(2);
        cache.looked_up(Some("a"), found_at);
        assert_eq!(cache.get(found_at), (Some("a"), Lookup::No));
    }
}
