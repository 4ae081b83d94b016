//! The SIP UDP socket and TCP listener on `sip.listen`.
//!
//! Until the signalling core is wired in, datagrams and connections are
//! counted, logged at debug and dropped; the sockets are bound here so a
//! port conflict fails the start with a clear message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::config::{SipConfig, Transport};

/// Largest SIP datagram we accept (RFC 3261 §18.1.1 keeps UDP under the MTU;
/// 64 KiB is the UDP limit, so nothing is truncated).
const MAX_DATAGRAM: usize = 65_535;

pub struct SipSockets {
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
    pub dropped: Arc<AtomicU64>,
}

impl SipSockets {
    /// Binds the transports the configuration asks for; an address in use is
    /// an error naming the address and the transport.
    pub async fn bind(config: &SipConfig) -> anyhow::Result<Self> {
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

    /// Serves until `shutdown` turns true.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) {
        let dropped = self.dropped.clone();
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                received = recv(self.udp.as_ref(), &mut buffer) => {
                    if let Ok((len, from)) = received {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%from, len, "SIP datagram dropped: no signalling core yet");
                    }
                }
                accepted = accept(self.tcp.as_ref()) => {
                    if let Ok((_stream, from)) = accepted {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%from, "SIP TCP connection closed: no signalling core yet");
                    }
                }
            }
        }
    }
}

async fn recv(
    socket: Option<&UdpSocket>,
    buffer: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buffer).await,
        None => std::future::pending().await,
    }
}

async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}
