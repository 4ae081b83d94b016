//! The RTP port pool: even ports for RTP, the odd one above for RTCP, from
//! `[rtp] port_min..port_max`. A lease binds both sockets and returns the
//! pair to the pool when dropped. A port another process holds is skipped.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

use super::RtpLegError;

#[derive(Debug)]
pub struct PortPool {
    bind: IpAddr,
    free: Mutex<VecDeque<u16>>,
}

impl PortPool {
    pub fn new(bind: IpAddr, port_min: u16, port_max: u16) -> Arc<PortPool> {
        let first = port_min + (port_min & 1);
        let free = (first..port_max).step_by(2).collect();
        Arc::new(PortPool {
            bind,
            free: Mutex::new(free),
        })
    }

    pub fn available(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// Binds an RTP/RTCP socket pair. Needs a tokio runtime.
    pub fn lease(self: &Arc<PortPool>) -> Result<PortLease, RtpLegError> {
        let attempts = self.available();
        for _ in 0..attempts {
            let Some(port) = self.free.lock().ok().and_then(|mut f| f.pop_front()) else {
                break;
            };
            match (bind(self.bind, port), bind(self.bind, port + 1)) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Ok(PortLease {
                        rtp,
                        rtcp,
                        port,
                        pool: Arc::clone(self),
                    });
                }
                // Held by someone else: put it at the back and try the next.
                _ => self.give_back(port),
            }
        }
        Err(RtpLegError::PortsExhausted)
    }

    fn give_back(&self, port: u16) {
        if let Ok(mut free) = self.free.lock() {
            free.push_back(port);
        }
    }
}

fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// An RTP/RTCP socket pair; the ports return to the pool on drop.
#[derive(Debug)]
pub struct PortLease {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    port: u16,
    pool: Arc<PortPool>,
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.give_back(self.port);
    }
}
