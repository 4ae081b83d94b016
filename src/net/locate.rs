//! Where a SIP URI's requests go (RFC 3263 §4): an IP host as written; a
//! host with an explicit port by its A/AAAA records; a bare host name by its
//! SRV records (`_sip._udp.` or `_sip._tcp.` after the configured
//! transport), each target in the order RFC 2782 gives, falling back to the
//! name's own A/AAAA records on port 5060 when it has no SRV records.
//!
//! NAPTR is not queried: the transport is configured (`[trunk] transport`,
//! or a URI's `transport` parameter), which RFC 3263 §4.1 lets a client
//! choose itself. Every address of every target is returned, in order, so a
//! call can fail over to the next when one does not answer or answers 503
//! (RFC 3263 §4.3; see `InviteRequest::alternates`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;

use crate::sip::codec::SipUri;
use crate::sip::endpoint::TransportKind;

/// SIP's default port when neither the URI nor an SRV record names one.
const SIP_PORT: u16 = 5060;
/// At most this many addresses to try for one request: each dead one can
/// cost a transaction timeout, and a carrier publishes two to four SBCs.
const MAX_DESTINATIONS: usize = 8;
/// A DNS server that does not answer must not hold the engine task (which
/// resolves the trunk once a minute) for long.
const DNS_TIMEOUT: Duration = Duration::from_secs(2);
/// After an SRV lookup that failed (no answer, a server error), the name is
/// resolved by its address alone for this long rather than waiting on the
/// DNS again at every lookup: a lab or a PBX named in `/etc/hosts` with an
/// unreachable DNS server keeps working as before SRV was looked up.
const SRV_FAILURE_MEMORY: Duration = Duration::from_secs(300);

/// The SRV name of `host`'s SIP service over `transport`.
fn srv_name(host: &str, transport: TransportKind) -> String {
    let service = match transport {
        TransportKind::Udp => "_sip._udp",
        TransportKind::Tcp => "_sip._tcp",
    };
    format!("{service}.{}.", host.trim_end_matches('.'))
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub host: String,
}

/// A next hop's addresses as DNS gave them: one target, or its SRV
/// targets with their priorities and weights. Kept (the shell caches the
/// trunk's for a minute) and ordered afresh for every request, so calls
/// spread over equal-priority targets as their weights ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destinations {
    targets: Vec<ResolvedTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResolvedTarget {
    priority: u16,
    weight: u16,
    addresses: Vec<SocketAddr>,
}

impl Destinations {
    /// One address (an IP host, a test's peer).
    pub fn single(address: SocketAddr) -> Destinations {
        Destinations {
            targets: vec![ResolvedTarget {
                priority: 0,
                weight: 0,
                addresses: vec![address],
            }],
        }
    }

    /// Where to send the next request, and where to fail over to, in turn.
    /// `draw(range)` returns a uniform integer in `range` (`fastrand::u32`).
    pub fn ordered(
        &self,
        draw: impl FnMut(std::ops::Range<u32>) -> u32,
    ) -> (SocketAddr, Vec<SocketAddr>) {
        let mut all = srv_order(self.targets.clone(), |t| (t.priority, t.weight), draw)
            .into_iter()
            .flat_map(|t| t.addresses)
            .take(MAX_DESTINATIONS);
        // Never empty: `locate` returns an error rather than no address.
        let first = all
            .next()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], SIP_PORT)));
        (first, all.collect())
    }
}

/// Resolves SIP URIs to the addresses to send to, in order. Clones share
/// one resolver and its cache.
#[derive(Clone)]
pub struct Locator {
    /// `None` when the system's resolver configuration cannot be read:
    /// then no SRV lookup, and host names resolve through the system
    /// (getaddrinfo) as before.
    dns: Option<TokioResolver>,
    /// `[sip] dns_servers` set: addresses come from those servers too,
    /// not from the system's resolver.
    own_servers: bool,
    /// SRV names whose lookup failed lately, and when.
    srv_failures: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Locator {
    /// Queries `servers` (`[sip] dns_servers`), or the system's resolvers
    /// (`/etc/resolv.conf`) when the list is empty.
    pub fn new(servers: &[SocketAddr]) -> Locator {
        if servers.is_empty() {
            let dns = match TokioResolver::builder_tokio() {
                Ok(mut builder) => {
                    builder.options_mut().timeout = DNS_TIMEOUT;
                    builder.options_mut().attempts = 2;
                    Some(builder.build())
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the system's DNS configuration; SRV records will not be looked up");
                    None
                }
            };
            return Locator {
                dns,
                own_servers: false,
                srv_failures: Arc::default(),
            };
        }
        let mut group = NameServerConfigGroup::new();
        for server in servers {
            group.merge(NameServerConfigGroup::from_ips_clear(
                &[server.ip()],
                server.port(),
                true,
            ));
        }
        let config = ResolverConfig::from_parts(None, Vec::new(), group);
        let mut options = ResolverOpts::default();
        options.timeout = DNS_TIMEOUT;
        options.attempts = 2;
        let dns = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(options)
            .build();
        Locator {
            dns: Some(dns),
            own_servers: true,
            srv_failures: Arc::default(),
        }
    }

    /// Where `uri`'s requests go: one address or several SRV targets
    /// (never none: no address is an error).
    pub async fn locate(
        &self,
        uri: &SipUri<'_>,
        transport: TransportKind,
    ) -> anyhow::Result<Destinations> {
        let host = uri.host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Destinations::single(SocketAddr::new(
                ip,
                uri.port.unwrap_or(SIP_PORT),
            )));
        }
        let one = |addresses| Destinations {
            targets: vec![ResolvedTarget {
                priority: 0,
                weight: 0,
                addresses,
            }],
        };
        if let Some(port) = uri.port {
            return Ok(one(self.addresses(host, port).await?));
        }
        let Some(records) = self.srv_targets(host, transport).await? else {
            return match self.addresses(host, SIP_PORT).await {
                Ok(addresses) => Ok(one(addresses)),
                Err(error) => {
                    // No address either: the SRV lookup's failure was the
                    // DNS being down, not a name only the hosts file knows;
                    // the next lookup asks for SRV again (else a trunk
                    // known only by SRV stays unreachable for 5 minutes
                    // after DNS is back).
                    self.forget_srv_failure(host, transport);
                    Err(error)
                }
            };
        };
        let mut targets = Vec::new();
        for record in records.into_iter().take(MAX_DESTINATIONS) {
            match self.addresses(&record.host, record.port).await {
                Ok(addresses) => targets.push(ResolvedTarget {
                    priority: record.priority,
                    weight: record.weight,
                    addresses,
                }),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "an SRV target of {host} does not resolve");
                }
            }
        }
        if targets.is_empty() {
            return Err(anyhow!("no SRV target of {host} resolves to an address"));
        }
        Ok(Destinations { targets })
    }

    /// The SRV records for `host` over `transport`; `None` when it has none,
    /// there is no resolver, or the lookup failed (then the name's address
    /// is used); an error only when the records say "no SIP here".
    async fn srv_targets(
        &self,
        host: &str,
        transport: TransportKind,
    ) -> anyhow::Result<Option<Vec<SrvTarget>>> {
        let Some(dns) = &self.dns else {
            return Ok(None);
        };
        // Names the hosts file gives (`localhost`, a lab's names) have no
        // SRV records; asking the DNS for them only costs a timeout offline.
        if host.eq_ignore_ascii_case("localhost") || !host.contains('.') {
            return Ok(None);
        }
        let name = srv_name(host, transport);
        if let Ok(mut failures) = self.srv_failures.lock() {
            failures.retain(|_, at| at.elapsed() < SRV_FAILURE_MEMORY);
            if failures.contains_key(&name) {
                return Ok(None);
            }
        }
        match dns.srv_lookup(name.as_str()).await {
            Ok(lookup) => {
                let targets: Vec<SrvTarget> = lookup
                    .iter()
                    .map(|srv| SrvTarget {
                        priority: srv.priority(),
                        weight: srv.weight(),
                        port: srv.port(),
                        host: srv.target().to_ascii().trim_end_matches('.').to_string(),
                    })
                    // "." as the target: the service is decidedly not
                    // available at this domain (RFC 2782).
                    .filter(|t| !t.host.is_empty())
                    .collect();
                if targets.is_empty() {
                    return Err(anyhow!("{name} says SIP is not offered there"));
                }
                Ok(Some(targets))
            }
            Err(error) if error.is_no_records_found() || error.is_nx_domain() => Ok(None),
            // RFC 3263 §4.2: no usable SRV answer, the name's own address.
            Err(error) => {
                tracing::warn!(%error, "cannot look up {name}; using the address of {host} for 5 minutes");
                if let Ok(mut failures) = self.srv_failures.lock() {
                    failures.insert(name, Instant::now());
                }
                Ok(None)
            }
        }
    }

    fn forget_srv_failure(&self, host: &str, transport: TransportKind) {
        if let Ok(mut failures) = self.srv_failures.lock() {
            failures.remove(&srv_name(host, transport));
        }
    }

    /// `host`'s addresses on `port`: IPv4 first (the SIP socket binds
    /// `sip.listen`, IPv4 in every shipped configuration).
    async fn addresses(&self, host: &str, port: u16) -> anyhow::Result<Vec<SocketAddr>> {
        let mut addresses: Vec<SocketAddr> = match (&self.dns, self.own_servers) {
            (Some(dns), true) => dns
                .lookup_ip(format!("{}.", host.trim_end_matches('.')))
                .await
                .with_context(|| format!("cannot resolve {host}"))?
                .iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            _ => tokio::net::lookup_host((host, port))
                .await
                .with_context(|| format!("cannot resolve {host}"))?
                .collect(),
        };
        addresses.sort_by_key(|a| a.is_ipv6());
        addresses.dedup();
        if addresses.is_empty() {
            return Err(anyhow!("{host} resolves to no address"));
        }
        Ok(addresses)
    }
}

/// RFC 2782's order: lowest priority first; within a priority, each next
/// target drawn with probability proportional to its weight (weight-0
/// targets rarely, after the others). `key` gives an item's priority and
/// weight; `draw(range)` a uniform integer in `range`.
pub fn srv_order<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> (u16, u16),
    mut draw: impl FnMut(std::ops::Range<u32>) -> u32,
) -> Vec<T> {
    items.sort_by_key(|t| key(t).0);
    let mut ordered = Vec::with_capacity(items.len());
    while !items.is_empty() {
        let priority = key(&items[0]).0;
        let same = items.iter().take_while(|t| key(t).0 == priority).count();
        let mut group: Vec<T> = items.drain(..same).collect();
        // Zero weights first, as RFC 2782 asks, so that they are picked
        // only when the draw lands on their running sum (a draw of 0).
        group.sort_by_key(|t| key(t).1 != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|t| u32::from(key(t).1)).sum();
            let pick = draw(0..total + 1);
            let mut running = 0;
            let index = group
                .iter()
                .position(|t| {
                    running += u32::from(key(t).1);
                    running >= pick
                })
                .unwrap_or(0);
            ordered.push(group.remove(index));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(priority: u16, weight: u16, host: &str) -> SrvTarget {
        SrvTarget {
            priority,
            weight,
            port: 5060,
            host: host.into(),
        }
    }

    fn srv_key(t: &SrvTarget) -> (u16, u16) {
        (t.priority, t.weight)
    }

    fn hosts(targets: &[SrvTarget]) -> Vec<&str> {
        targets.iter().map(|t| t.host.as_str()).collect()
    }

    #[test]
    fn lower_priority_values_come_first_whatever_their_weight() {
        let targets = vec![
            target(20, 100, "backup"),
            target(10, 0, "primary"),
            target(30, 5, "last"),
        ];
        for seed in 0..50 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let ordered = srv_order(targets.clone(), srv_key, |range| rng.u32(range));
            assert_eq!(hosts(&ordered), ["primary", "backup", "last"]);
        }
    }

    #[test]
    fn within_a_priority_targets_are_drawn_in_proportion_to_their_weight() {
        let targets = vec![
            target(10, 60, "a"),
            target(10, 30, "b"),
            target(10, 10, "c"),
            target(10, 0, "never-first"),
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        let mut first = std::collections::HashMap::new();
        let runs = 20_000;
        for _ in 0..runs {
            let ordered = srv_order(targets.clone(), srv_key, |range| rng.u32(range));
            assert_eq!(ordered.len(), 4, "every target kept once");
            *first.entry(ordered[0].host.clone()).or_insert(0u32) += 1;
        }
        let share = |host: &str| f64::from(first.get(host).copied().unwrap_or(0)) / runs as f64;
        // 60 : 30 : 10 of 101 (the draw runs over 0..=100, and a draw of 0
        // lands on the weight-0 target, listed first).
        assert!((share("a") - 0.594).abs() < 0.02, "a {}", share("a"));
        assert!((share("b") - 0.297).abs() < 0.02, "b {}", share("b"));
        assert!((share("c") - 0.099).abs() < 0.015, "c {}", share("c"));
        assert!(share("never-first") < 0.03);
    }

    #[test]
    fn all_zero_weights_still_give_every_target() {
        let targets = vec![target(1, 0, "x"), target(1, 0, "y"), target(2, 0, "z")];
        let ordered = srv_order(targets, srv_key, |_| 0);
        let mut first_two = hosts(&ordered)[..2].to_vec();
        first_two.sort_unstable();
        assert_eq!(first_two, ["x", "y"]);
        assert_eq!(ordered[2].host, "z");
    }

    #[test]
    fn every_address_of_every_target_is_tried_in_turn_up_to_eight() {
        let address = |n: u8| SocketAddr::from(([192, 0, 2, n], 5060));
        let destinations = Destinations {
            targets: vec![
                ResolvedTarget {
                    priority: 20,
                    weight: 1,
                    addresses: (10..20).map(address).collect(),
                },
                ResolvedTarget {
                    priority: 10,
                    weight: 1,
                    addresses: vec![address(1), address(2)],
                },
            ],
        };
        let (first, rest) = destinations.ordered(|range| range.start);
        assert_eq!(first, address(1));
        assert_eq!(rest.len(), MAX_DESTINATIONS - 1);
        assert_eq!(rest[0], address(2), "the target's own addresses first");
        assert_eq!(rest[1], address(10));
    }

    /// A DNS server that never answers a name with no other address: the
    /// lookup fails, and the next one asks for SRV again (the DNS was down;
    /// it may be back).
    #[tokio::test]
    async fn a_name_without_an_address_either_is_asked_for_srv_again() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        silent.set_nonblocking(true).unwrap();
        let locator = Locator::new(&[silent.local_addr().unwrap()]);
        let uri = SipUri::parse("sip:carrier.test").unwrap();
        assert!(locator.locate(&uri, TransportKind::Udp).await.is_err());
        let mut buffer = [0u8; 512];
        while silent.recv_from(&mut buffer).is_ok() {}
        let again = locator
            .srv_targets("carrier.test", TransportKind::Udp)
            .await;
        assert!(matches!(again, Ok(None)));
        assert!(silent.recv_from(&mut buffer).is_ok(), "asked for SRV again");
    }

    /// A DNS server that never answers: the SRV step gives up (the name's
    /// address is used) and is not asked again for a while.
    #[tokio::test]
    async fn a_silent_dns_server_is_not_asked_for_srv_again_for_a_while() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        silent.set_nonblocking(true).unwrap();
        let locator = Locator::new(&[silent.local_addr().unwrap()]);
        let queries = |socket: &std::net::UdpSocket| {
            let mut buffer = [0u8; 512];
            std::iter::from_fn(|| socket.recv_from(&mut buffer).ok()).count()
        };
        let first = locator
            .srv_targets("carrier.test", TransportKind::Udp)
            .await
            .expect("a failed lookup is no error");
        assert_eq!(first, None);
        assert!(queries(&silent) >= 1, "the server was asked");
        let again = locator
            .srv_targets("carrier.test", TransportKind::Udp)
            .await
            .expect("no error");
        assert_eq!(again, None);
        assert_eq!(queries(&silent), 0, "not asked again");
        // Another name is asked.
        let other = locator.srv_targets("other.test", TransportKind::Tcp).await;
        assert!(matches!(other, Ok(None)));
        assert!(queries(&silent) >= 1);
    }

    #[tokio::test]
    async fn an_ip_host_is_taken_as_written_and_gets_port_5060_by_default() {
        let locator = Locator::new(&[]);
        let uri = SipUri::parse("sip:+1555@192.0.2.7").unwrap();
        assert_eq!(
            locator.locate(&uri, TransportKind::Udp).await.unwrap(),
            Destinations::single("192.0.2.7:5060".parse().unwrap())
        );
        let uri = SipUri::parse("sip:[2001:db8::1]:5080;transport=tcp").unwrap();
        assert_eq!(
            locator.locate(&uri, TransportKind::Tcp).await.unwrap(),
            Destinations::single("[2001:db8::1]:5080".parse().unwrap())
        );
    }
}
