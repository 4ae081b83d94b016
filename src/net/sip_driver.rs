//! The tokio driver of the SIP endpoint: one task owns the sans-IO
//! [`Endpoint`], the UDP socket, the TCP connections and one timer. It waits
//! for a datagram, a framed TCP message, a command or the endpoint's next
//! deadline, hands it over with `Instant::now()`, then drains transmits and
//! events. `outdial run` drives it without commands; `outdial call` (and
//! later the engine) sends commands through a [`SipHandle`].
//!
//! TCP: one connection per peer address, reused in both directions; stream
//! framing by Content-Length (`codec::frame_stream`); a framing error closes
//! the connection. Malformed messages are counted and dropped by the
//! endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::sip::codec::frame_stream;
use crate::sip::endpoint::{Endpoint, Event, Transmit, TransportKind};

/// A closure run on the endpoint inside the driver task.
pub type SipCommand = Box<dyn FnOnce(&mut Endpoint, Instant) + Send>;

/// Sends commands to a running driver.
#[derive(Clone)]
pub struct SipHandle {
    commands: mpsc::UnboundedSender<SipCommand>,
}

impl SipHandle {
    /// Runs `f` on the endpoint and returns its result.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Endpoint, Instant) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let command: SipCommand = Box::new(move |endpoint, now| {
            let _ = tx.send(f(endpoint, now));
        });
        self.commands.send(command).ok()?;
        rx.await.ok()
    }
}

/// Counters shared with whoever wants to read them.
#[derive(Debug, Default)]
pub struct DriverStats {
    pub received: AtomicU64,
    pub malformed: AtomicU64,
    pub tcp_framing_errors: AtomicU64,
}

struct TcpInbound {
    from: SocketAddr,
    bytes: Vec<u8>,
}

pub struct SipDriver {
    udp: Option<Arc<UdpSocket>>,
    tcp: Option<TcpListener>,
    endpoint: Endpoint,
    commands: mpsc::UnboundedReceiver<SipCommand>,
    events: mpsc::UnboundedSender<Event>,
    connections: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    inbound_tx: mpsc::UnboundedSender<TcpInbound>,
    inbound_rx: mpsc::UnboundedReceiver<TcpInbound>,
    closed_tx: mpsc::UnboundedSender<SocketAddr>,
    closed_rx: mpsc::UnboundedReceiver<SocketAddr>,
    pub stats: Arc<DriverStats>,
    /// The endpoint's failovers and redirects already added to
    /// `SIP_FAILOVERS` and `SIP_REDIRECTS`.
    failovers_counted: u64,
    redirects_counted: u64,
    /// The addresses last reported resting in `SIP_NEXT_HOP_RESTING`.
    resting_reported: Vec<SocketAddr>,
}

const MAX_DATAGRAM: usize = 65_535;

impl SipDriver {
    /// A driver over already-bound sockets; returns it, a handle for
    /// commands, and the stream of endpoint events.
    pub fn new(
        udp: Option<UdpSocket>,
        tcp: Option<TcpListener>,
        endpoint: Endpoint,
    ) -> (SipDriver, SipHandle, mpsc::UnboundedReceiver<Event>) {
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::unbounded_channel();
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        let (closed_tx, closed_rx) = mpsc::unbounded_channel();
        let driver = SipDriver {
            udp: udp.map(Arc::new),
            tcp,
            endpoint,
            commands,
            events,
            connections: HashMap::new(),
            inbound_tx,
            inbound_rx,
            closed_tx,
            closed_rx,
            stats: Arc::new(DriverStats::default()),
            failovers_counted: 0,
            redirects_counted: 0,
            resting_reported: Vec::new(),
        };
        (
            driver,
            SipHandle {
                commands: commands_tx,
            },
            events_rx,
        )
    }

    /// Serves until `shutdown` turns true (or every command sender and the
    /// event receiver are gone when `stop_when_detached`).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        let udp = self.udp.clone();
        let tcp = self.tcp.take();
        loop {
            self.flush().await;
            let deadline = self.endpoint.poll_timeout();
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                received = recv(udp.as_deref(), &mut buffer) => {
                    if let Ok((len, from)) = received {
                        self.on_udp(from, buffer.get(..len).unwrap_or_default());
                        // Drain what else is queued without yielding.
                        if let Some(socket) = udp.as_deref() {
                            for _ in 0..64 {
                                match socket.try_recv_from(&mut buffer) {
                                    Ok((len, from)) => self.on_udp(from, buffer.get(..len).unwrap_or_default()),
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                }
                Some(message) = self.inbound_rx.recv() => {
                    self.stats.received.fetch_add(1, Ordering::Relaxed);
                    self.endpoint.handle_datagram(message.from, TransportKind::Tcp, &message.bytes, Instant::now());
                }
                Some(peer) = self.closed_rx.recv() => {
                    self.connections.remove(&peer);
                }
                accepted = accept(tcp.as_ref()) => {
                    if let Ok((stream, from)) = accepted {
                        self.adopt(stream, from);
                    }
                }
                Some(command) = self.commands.recv() => {
                    command(&mut self.endpoint, Instant::now());
                    // Apply every queued command before flushing.
                    while let Ok(command) = self.commands.try_recv() {
                        command(&mut self.endpoint, Instant::now());
                    }
                }
                _ = sleep_until(deadline) => {
                    self.endpoint.handle_timeout(Instant::now());
                }
            }
        }
    }

    fn on_udp(&mut self, from: SocketAddr, bytes: &[u8]) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let before = self.endpoint.stats().malformed;
        self.endpoint
            .handle_datagram(from, TransportKind::Udp, bytes, Instant::now());
        let malformed = self.endpoint.stats().malformed - before;
        if malformed > 0 {
            self.stats.malformed.fetch_add(malformed, Ordering::Relaxed);
        }
    }

    async fn flush(&mut self) {
        while let Some(Transmit {
            transport,
            destination,
            payload,
        }) = self.endpoint.poll_transmit()
        {
            match transport {
                TransportKind::Udp => {
                    if let Some(socket) = &self.udp {
                        let sent = match socket.try_send_to(&payload, destination) {
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                socket.send_to(&payload, destination).await
                            }
                            other => other,
                        };
                        if let Err(error) = sent {
                            tracing::debug!(%destination, %error, "SIP UDP send failed");
                        }
                    }
                }
                TransportKind::Tcp => self.send_tcp(destination, payload),
            }
        }
        while let Some(event) = self.endpoint.poll_event() {
            let _ = self.events.send(event);
        }
        let failovers = self.endpoint.stats().failovers;
        if failovers > self.failovers_counted {
            metrics::counter!(crate::metrics::SIP_FAILOVERS)
                .increment(failovers - self.failovers_counted);
            self.failovers_counted = failovers;
        }
        let redirects = self.endpoint.stats().redirects;
        if redirects > self.redirects_counted {
            metrics::counter!(crate::metrics::SIP_REDIRECTS)
                .increment(redirects - self.redirects_counted);
            self.redirects_counted = redirects;
        }
        let resting = self.endpoint.resting_addresses(Instant::now());
        if resting != self.resting_reported {
            for back in self
                .resting_reported
                .iter()
                .filter(|a| !resting.contains(a))
            {
                metrics::gauge!(crate::metrics::SIP_NEXT_HOP_RESTING, "address" => back.to_string())
                    .set(0.0);
            }
            for address in &resting {
                metrics::gauge!(crate::metrics::SIP_NEXT_HOP_RESTING, "address" => address.to_string())
                    .set(1.0);
            }
            self.resting_reported = resting;
        }
    }

    fn send_tcp(&mut self, destination: SocketAddr, payload: Vec<u8>) {
        if let Some(writer) = self.connections.get(&destination)
            && writer.send(payload.clone()).is_ok()
        {
            return;
        }
        // No connection yet: open one; messages queue until it is up.
        let (writer, queue) = mpsc::unbounded_channel();
        let _ = writer.send(payload);
        self.connections.insert(destination, writer);
        let inbound = self.inbound_tx.clone();
        let closed = self.closed_tx.clone();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            match TcpStream::connect(destination).await {
                Ok(stream) => {
                    serve_connection(stream, destination, queue, inbound, closed, stats).await
                }
                Err(error) => {
                    tracing::debug!(%destination, %error, "SIP TCP connect failed");
                    let _ = closed.send(destination);
                }
            }
        });
    }

    fn adopt(&mut self, stream: TcpStream, from: SocketAddr) {
        let (writer, queue) = mpsc::unbounded_channel();
        self.connections.insert(from, writer);
        let inbound = self.inbound_tx.clone();
        let closed = self.closed_tx.clone();
        let stats = self.stats.clone();
        tokio::spawn(serve_connection(
            stream, from, queue, inbound, closed, stats,
        ));
    }
}

/// Reads framed messages from one TCP connection and writes what the driver
/// queues for it; ends on EOF, an I/O error or a framing error.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    inbound: mpsc::UnboundedSender<TcpInbound>,
    closed: mpsc::UnboundedSender<SocketAddr>,
    stats: Arc<DriverStats>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut buffer: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16384];
    loop {
        tokio::select! {
            outgoing = queue.recv() => {
                let Some(bytes) = outgoing else { break };
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            read = reader.read(&mut chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
                loop {
                    match frame_stream(&buffer) {
                        Ok(Some(len)) => {
                            let message: Vec<u8> = buffer.drain(..len).collect();
                            let _ = inbound.send(TcpInbound { from: peer, bytes: message });
                        }
                        Ok(None) => break,
                        Err(error) => {
                            stats.tcp_framing_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, %error, "SIP TCP framing error; closing the connection");
                            let _ = closed.send(peer);
                            return;
                        }
                    }
                }
            }
        }
    }
    let _ = closed.send(peer);
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

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
