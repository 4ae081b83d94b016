//! The SIP UDP socket and TCP listener on `sip.listen`.
//!
//! Bound here so a port conflict fails the start with a clear message; the
//! driver in `sip_driver.rs` serves them with the SIP endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use super::locate::Locator;
use super::sip_driver::{SipDriver, SipHandle};
use crate::config::TrunkConfig;
use crate::config::{Config, SipConfig, Transport};
use crate::sip::codec::SipUri;
use crate::sip::endpoint::{Endpoint, EndpointConfig, Event, RegistrationState, TransportKind};
use crate::sip::trunk::{TrunkState, state_after_ping};

pub struct SipSockets {
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
    pub dropped: Arc<AtomicU64>,
}

/// Whether a bind failed because the address was taken.
fn in_use(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
    })
}

impl SipSockets {
    /// Binds the transports the configuration asks for; an address in use is
    /// an error naming the address and the transport.
    pub async fn bind(config: &SipConfig) -> anyhow::Result<Self> {
        // With port 0 both transports share the number UDP got; that port
        // may already carry someone's TCP socket (outgoing connections take
        // ephemeral ports too), so an ephemeral pair is tried again.
        const EPHEMERAL_TRIES: usize = 20;
        let ephemeral_pair = config.listen.port() == 0
            && config.transports.contains(&Transport::Udp)
            && config.transports.contains(&Transport::Tcp);
        let mut tries = 1;
        loop {
            match Self::bind_once(config).await {
                Err(error) if ephemeral_pair && tries < EPHEMERAL_TRIES && in_use(&error) => {
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    async fn bind_once(config: &SipConfig) -> anyhow::Result<Self> {
        let addr = config.listen;
        let udp = if config.transports.contains(&Transport::Udp) {
            Some(
                UdpSocket::bind(addr)
                    .await
                    .with_context(|| format!("cannot bind the SIP UDP socket on {addr}"))?,
            )
        } else {
            None
        };
        // With port 0, TCP takes the port UDP got so both share one number.
        let tcp_addr = match (&udp, addr.port()) {
            (Some(udp), 0) => udp.local_addr()?,
            _ => addr,
        };
        let tcp = if config.transports.contains(&Transport::Tcp) {
            Some(
                TcpListener::bind(tcp_addr)
                    .await
                    .with_context(|| format!("cannot bind the SIP TCP listener on {tcp_addr}"))?,
            )
        } else {
            None
        };
        Ok(Self {
            udp,
            tcp,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Starts serving SIP with an endpoint built from the configuration
    /// (OPTIONS answered, REGISTER for agents, strangers' INVITEs refused)
    /// until `shutdown` turns true: call events and registrations go to the
    /// returned receiver, the returned handle places calls, OPTIONS results
    /// are logged here, malformed input is counted in `dropped`.
    pub fn start(
        self,
        config: &Config,
        shutdown: watch::Receiver<bool>,
    ) -> (
        SipHandle,
        tokio::sync::mpsc::UnboundedReceiver<Event>,
        tokio::task::JoinHandle<()>,
    ) {
        let bound = self
            .udp_addr()
            .or_else(|| self.tcp_addr())
            .unwrap_or(config.sip.listen);
        let endpoint = Endpoint::new(EndpointConfig::from_config(
            config,
            bound,
            fastrand::u64(..),
        ));
        let dropped = self.dropped.clone();
        let (driver, handle, mut events) = self.into_driver(endpoint);
        let stats = driver.stats.clone();
        let (forward, forwarded) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut trunk = TrunkState::Unknown;
            while let Some(event) = events.recv().await {
                if let Event::TrunkRegistration { state, .. } = &event {
                    log_trunk_registration(state);
                    continue;
                }
                if let Event::PingResult { code, .. } = event {
                    let now = state_after_ping(code);
                    if now != trunk {
                        tracing::info!(state = ?now, code, "trunk state changed");
                        trunk = now;
                    }
                    let up = if trunk == TrunkState::Up { 1.0 } else { 0.0 };
                    metrics::gauge!(crate::metrics::TRUNK_UP).set(up);
                    // The engine holds new calls while the trunk is down.
                }
                if forward.send(event).is_err() {
                    break;
                }
            }
        });
        let locator = Locator::new(&config.sip.dns_servers);
        if config.trunk.options_interval_s > 0 {
            tokio::spawn(keepalive(
                config.trunk.clone(),
                locator.clone(),
                handle.clone(),
            ));
        }
        if config.trunk.register {
            tokio::spawn(register_with_trunk(
                config.trunk.clone(),
                locator,
                handle.clone(),
            ));
        }
        let mut counter_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = counter_shutdown.wait_for(|stop| *stop) => return,
                    _ = tick.tick() => {}
                }
                dropped.store(
                    stats.malformed.load(Ordering::Relaxed)
                        + stats.tcp_framing_errors.load(Ordering::Relaxed),
                    Ordering::Relaxed,
                );
            }
        });
        let task = tokio::spawn(driver.run(shutdown));
        (handle, forwarded, task)
    }

    /// A driver over these sockets, for callers that send commands.
    pub fn into_driver(
        self,
        endpoint: Endpoint,
    ) -> (
        SipDriver,
        SipHandle,
        tokio::sync::mpsc::UnboundedReceiver<Event>,
    ) {
        SipDriver::new(self.udp, self.tcp, endpoint)
    }
}

/// OPTIONS to the trunk every `options_interval_s` (when its SRV records
/// name several addresses, the trunk is up if any answers: a silent one
/// passes the ping to the next); the answers (or their absence) move the
/// trunk between up and down in the event task above.
async fn keepalive(trunk: TrunkConfig, locator: Locator, handle: SipHandle) {
    let Some(uri) = SipUri::parse(&trunk.uri) else {
        return;
    };
    let transport = TransportKind::from(trunk.transport);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(trunk.options_interval_s));
    loop {
        tick.tick().await;
        let (destination, alternates) = match locator.locate(&uri, transport).await {
            Ok(destinations) => destinations.ordered(fastrand::u32),
            Err(_) => {
                tracing::warn!(trunk = %uri.authority(), "cannot resolve the trunk for OPTIONS");
                continue;
            }
        };
        let target = trunk.uri.clone();
        if handle
            .call(move |endpoint, now| {
                endpoint.ping_next_hop(&target, destination, alternates, transport, now)
            })
            .await
            .is_none()
        {
            return;
        }
    }
}

/// Registers with the trunk (`[trunk] register`) once its address
/// resolves; the endpoint renews the binding and retries failures itself.
async fn register_with_trunk(trunk: TrunkConfig, locator: Locator, handle: SipHandle) {
    let Some(uri) = SipUri::parse(&trunk.uri) else {
        return;
    };
    // Sent where the calls go: the outbound proxy when there is one.
    let proxy = trunk.outbound_proxy.as_deref().and_then(SipUri::parse);
    let via = proxy.as_ref().unwrap_or(&uri);
    let transport = TransportKind::from(trunk.transport);
    let next_hop = loop {
        match locator.locate(via, transport).await {
            Ok(destinations) => break destinations,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot resolve the trunk to register; trying again in 30 s");
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    };
    let Some(request) = super::route::registration_request(&trunk, &next_hop) else {
        return;
    };
    let _ = handle
        .call(move |endpoint, now| endpoint.register(request, now))
        .await;
}

/// Our registration with the trunk, in the log and the
/// `outdial_trunk_registered` gauge.
fn log_trunk_registration(state: &RegistrationState) {
    let registered = match state {
        RegistrationState::Registered { expires } => {
            tracing::info!(expires_s = expires.as_secs(), "registered with the trunk");
            1.0
        }
        RegistrationState::Failed {
            code,
            reason,
            retry_in,
        } => {
            tracing::warn!(
                code,
                %reason,
                retry_in_s = retry_in.as_secs(),
                "registration with the trunk failed"
            );
            0.0
        }
        RegistrationState::Unregistered => {
            tracing::info!("unregistered from the trunk");
            0.0
        }
    };
    metrics::gauge!(crate::metrics::TRUNK_REGISTERED).set(registered);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_address_is_told_apart_from_other_bind_errors() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind the SIP TCP listener on {addr}"))
            .unwrap_err();
        assert!(in_use(&error), "{error:#}");
        let other = anyhow::anyhow!("cannot bind: permission denied");
        assert!(!in_use(&other));
    }
}
