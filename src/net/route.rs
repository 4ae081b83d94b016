//! Where a call goes: a SIP URI dialed as given, or a number sent to the
//! configured trunk (through the outbound proxy when there is one).

use anyhow::anyhow;

use super::locate::{Destinations, Locator};
use crate::config::{Config, TrunkConfig};
use crate::sip::codec::SipUri;
use crate::sip::endpoint::{Credentials, RegistrationRequest, TransportKind};

/// Where a call goes: Request-URI, next hop, transport, and loose route.
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
/// host:port>`, sent to the trunk's (or its outbound proxy's) best address,
/// its other addresses kept to fall back on.
pub fn registration_request(
    trunk: &TrunkConfig,
    next_hop: &Destinations,
) -> Option<RegistrationRequest> {
    let (destination, alternates) = next_hop.ordered(|range| range.start);
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
