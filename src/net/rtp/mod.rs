//! The RTP shell: the port pool, and one tokio task per leg (or per bridged
//! pair) owning its sockets and driving the sans-IO [`LegCore`]s. Nothing
//! is shared on the per-packet path: a packet is received, checked,
//! rewritten in place and sent by the one task that owns both sockets.
//!
//! How the engine uses it: [`RtpLeg::open`] → put [`RtpLeg::local_addr`] in
//! the SDP → [`RtpLeg::set_negotiated`] with the offer/answer result →
//! `play` / `record` / `frames_for_cpa` → [`bridge`] the customer into an
//! agent's reservation leg (zip tone first) → [`unbridge`] when the customer
//! hangs up → [`RtpLeg::close`] for the call record's statistics.

mod port_pool;
mod realtime;
mod task;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

pub use port_pool::{PortLease, PortPool};
pub use realtime::{MediaScheduling, SchedulingError, build_media_runtime, use_media_runtime};
pub use task::LegReport;

use crate::media::g711::Law;
use crate::media::leg::{AudioFrame, LegCore, LegEvent, LegSettings};
use crate::media::listen_in::ListenMode;
use crate::media::prompt::Prompt;
use crate::media::tones::ZipTone;
use crate::sdp::{Direction, Negotiated};

#[derive(Debug, Error)]
pub enum RtpLegError {
    #[error("no free RTP port pair left in [rtp] port_min..port_max; widen the range")]
    PortsExhausted,
    #[error("the media task of this leg has stopped")]
    Stopped,
}

pub(crate) enum Command {
    Negotiated(Negotiated),
    /// RTP only from the negotiated address (see `LegCore::pin_to_remote`).
    PinRemote,
    /// A re-offer for the customer spliced into this (agent) leg.
    CustomerNegotiated(Negotiated),
    Play(Prompt),
    /// Play live audio from now on (see `LegCore::play_live`).
    PlayLive,
    /// More live audio.
    Live(Box<[i16; crate::media::tones::FRAME_SAMPLES]>),
    StopPlaying,
    Record(PathBuf),
    CpaFrames(mpsc::Sender<AudioFrame>),
    Detach(oneshot::Sender<task::LegParts>),
    /// Lend this idle leg to another agent's task for a consultation
    /// (see [`lend`]); nothing happens while a customer is bridged.
    Lend(oneshot::Sender<task::LentLeg>),
    Bridge {
        customer: Box<task::LegParts>,
        zip: ZipTone,
        record: Option<PathBuf>,
        /// Keep feeding the customer's frames to CPA while bridged
        /// ("connect first, classify in background").
        keep_cpa: bool,
    },
    Unbridge(oneshot::Sender<Option<LegReport>>),
    /// The agent put the bridged customer on hold: neither hears the
    /// other, the customer hears `audio` over and over (see
    /// [`hold_bridged`]).
    Hold(Prompt),
    /// Off hold: the two hear each other again.
    Resume,
    /// A supervisor listens in on this agent leg (see [`listen_in`]).
    Listen {
        on_end: OnEnd,
        supervisor: Box<task::LegParts>,
        mode: ListenMode,
        /// A consulted agent's leg, lent: where it goes back at the end.
        give_back: Option<oneshot::Sender<task::LegParts>>,
    },
    ListenMode(ListenMode),
    /// The supervisor stops listening: its leg's ports go back to the pool.
    EndListen,
    /// Send these DTMF digits (event codes) to the bridged customer.
    Dtmf(Vec<u8>),
    /// Pause the bridge's recording (silence is written meanwhile), or go on.
    PauseRecording(bool),
    /// Hand the bridged customer's leg back (the agent's phone is going
    /// away): its sockets, numbering and events stay the customer's; the
    /// bridge's recording is written.
    TakeBack(oneshot::Sender<Option<task::LegParts>>),
    Close(oneshot::Sender<LegReport>),
}

/// One RTP leg: a socket pair from the pool and the task that serves it.
pub struct RtpLeg {
    local: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<LegEvent>,
}

impl RtpLeg {
    /// Leases a port pair and starts the leg's task. It receives at once
    /// (early media) but sends nothing until [`RtpLeg::set_negotiated`].
    /// The sockets and the task live on the media runtime if one was
    /// installed ([`use_media_runtime`]), else on the caller's runtime.
    pub fn open(pool: &Arc<PortPool>, settings: LegSettings) -> Result<RtpLeg, RtpLegError> {
        // Entered so the sockets register with the media runtime's reactor
        // and the task spawns there: a socket registered with the caller's
        // runtime would be woken by the caller's (normal-priority) threads.
        let _entered = realtime::media_runtime().map(Handle::enter);
        let lease = pool.lease()?;
        let local = lease.rtp.local_addr().map_err(|_| RtpLegError::Stopped)?;
        let placeholder = Negotiated {
            remote: None,
            law: Law::Ulaw,
            payload_type: 0,
            telephone_event: Some(101),
            ptime_ms: 20,
            direction: Direction::SendRecv,
        };
        let core = LegCore::new(
            settings,
            placeholder,
            tokio::time::Instant::now().into_std(),
        );
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let parts = task::LegParts::new(lease, core, event_tx);
        tokio::spawn(task::run(parts, command_rx));
        Ok(RtpLeg {
            local,
            commands,
            events,
        })
    }

    /// The bound address; announce its port in SDP (with `[rtp] public_ip`
    /// as the address when behind NAT).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn send(&self, command: Command) -> Result<(), RtpLegError> {
        self.commands
            .send(command)
            .map_err(|_| RtpLegError::Stopped)
    }

    /// The offer/answer result (initial, or a re-INVITE's).
    pub fn set_negotiated(&self, negotiated: Negotiated) -> Result<(), RtpLegError> {
        self.send(Command::Negotiated(negotiated))
    }

    /// Takes RTP only from the negotiated address, never latching onto
    /// another: for a leg whose peer is a socket of our own (a browser
    /// phone's leg side), which no stranger may stand in for.
    pub fn pin_to_remote(&self) -> Result<(), RtpLegError> {
        self.send(Command::PinRemote)
    }

    /// Plays a prompt to the remote party; `LegEvent::PlaybackFinished` at the end.
    pub fn play(&self, prompt: Prompt) -> Result<(), RtpLegError> {
        self.send(Command::Play(prompt))
    }

    /// Plays live audio handed over with [`RtpLeg::push_live`] (a
    /// carrier's early media relayed to an agent), silence while none
    /// waits, until another prompt or `stop_playing`.
    pub fn play_live(&self) -> Result<(), RtpLegError> {
        self.send(Command::PlayLive)
    }

    /// One more 20 ms frame of live audio.
    pub fn push_live(
        &self,
        samples: Box<[i16; crate::media::tones::FRAME_SAMPLES]>,
    ) -> Result<(), RtpLegError> {
        self.send(Command::Live(samples))
    }

    pub fn stop_playing(&self) -> Result<(), RtpLegError> {
        self.send(Command::StopPlaying)
    }

    /// Records what the remote party sends (mono WAV, written on close).
    pub fn record(&self, path: PathBuf) -> Result<(), RtpLegError> {
        self.send(Command::Record(path))
    }

    /// Decoded 20 ms frames of the remote audio for CPA. Frames are dropped
    /// (not queued without bound) if the receiver falls `capacity` behind.
    pub fn frames_for_cpa(
        &self,
        capacity: usize,
    ) -> Result<mpsc::Receiver<AudioFrame>, RtpLegError> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.send(Command::CpaFrames(tx))?;
        Ok(rx)
    }

    /// The next leg event (latched, inactive, BYE, playback finished).
    pub async fn next_event(&mut self) -> Option<LegEvent> {
        self.events.recv().await
    }

    pub fn try_event(&mut self) -> Option<LegEvent> {
        self.events.try_recv().ok()
    }

    /// Serves a customer leg taken back out of an agent's bridge
    /// ([`take_back`]) on a task of its own again, with the events it had.
    pub fn reattach(customer: DetachedCustomer, bridged: BridgedCustomer) -> RtpLeg {
        let _entered = realtime::media_runtime().map(Handle::enter);
        let (commands, command_rx) = mpsc::unbounded_channel();
        tokio::spawn(task::run(*customer.0, command_rx));
        RtpLeg {
            local: bridged.local,
            commands,
            events: bridged.events,
        }
    }

    /// Stops the leg, frees its ports, writes any recording, and returns
    /// the statistics for the call record.
    pub async fn close(self) -> Result<LegReport, RtpLegError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Close(tx))?;
        rx.await.map_err(|_| RtpLegError::Stopped)
    }
}

/// A customer leg spliced into an agent leg; hold it to read the
/// customer's events (inactivity, BYE) while bridged.
pub struct BridgedCustomer {
    pub local: SocketAddr,
    pub events: mpsc::UnboundedReceiver<LegEvent>,
}

/// Splices `customer` into `agent`'s long-lived leg: the agent hears the
/// zip tone, then the customer; the customer hears the agent at once. One
/// task then owns both sockets. Recording (optional) is stereo: customer
/// left, agent right. Call [`unbridge`] before bridging the next customer:
/// a second `bridge` replaces the first customer without its report.
pub async fn bridge(
    agent: &RtpLeg,
    customer: RtpLeg,
    zip: ZipTone,
    record: Option<PathBuf>,
) -> Result<BridgedCustomer, RtpLegError> {
    bridge_with(agent, customer, zip, record, false)
        .await
        .map_err(|failed| failed.error)
}

/// A splice that did not happen, with the customer's leg when it is still
/// whole (the agent's side had stopped): serve it again and connect the
/// customer elsewhere.
pub struct BridgeFailed {
    pub customer: Option<RtpLeg>,
    pub error: RtpLegError,
}

/// A customer leg out of a bridge, not served by any task until
/// [`RtpLeg::reattach`]; dropping it frees its ports.
pub struct DetachedCustomer(Box<task::LegParts>);

impl std::fmt::Debug for DetachedCustomer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetachedCustomer")
    }
}

/// [`bridge`], optionally keeping the customer's CPA frames flowing (the
/// analyser goes on classifying a call already connected to an agent).
pub async fn bridge_with(
    agent: &RtpLeg,
    customer: RtpLeg,
    zip: ZipTone,
    record: Option<PathBuf>,
    keep_cpa: bool,
) -> Result<BridgedCustomer, BridgeFailed> {
    let (tx, rx) = oneshot::channel();
    // The customer's own task has stopped: there is no leg to give back.
    let lost = |error| BridgeFailed {
        customer: None,
        error,
    };
    customer.send(Command::Detach(tx)).map_err(lost)?;
    let parts = rx.await.map_err(|_| lost(RtpLegError::Stopped))?;
    let bridged = BridgedCustomer {
        local: customer.local,
        events: customer.events,
    };
    let bridge = Command::Bridge {
        customer: Box::new(parts),
        zip,
        record,
        keep_cpa,
    };
    match agent.commands.send(bridge) {
        Ok(()) => Ok(bridged),
        Err(mpsc::error::SendError(Command::Bridge { customer, .. })) => Err(BridgeFailed {
            customer: Some(RtpLeg::reattach(DetachedCustomer(customer), bridged)),
            error: RtpLegError::Stopped,
        }),
        Err(_) => Err(lost(RtpLegError::Stopped)),
    }
}

/// Takes the customer bridged into `agent` back out (`None`: nobody is
/// bridged); the agent leg goes back to its idle keepalive.
pub async fn take_back(agent: &RtpLeg) -> Result<Option<DetachedCustomer>, RtpLegError> {
    let (tx, rx) = oneshot::channel();
    agent.send(Command::TakeBack(tx))?;
    let parts = rx.await.map_err(|_| RtpLegError::Stopped)?;
    Ok(parts.map(|parts| DetachedCustomer(Box::new(parts))))
}

/// Ends the bridge on `agent` (the customer hung up): the customer's ports
/// are freed and its report returned; the agent leg goes back to comfort
/// noise, keeping its SSRC and numbering for the next customer.
pub async fn unbridge(agent: &RtpLeg) -> Result<Option<LegReport>, RtpLegError> {
    let (tx, rx) = oneshot::channel();
    agent.send(Command::Unbridge(tx))?;
    rx.await.map_err(|_| RtpLegError::Stopped)
}

/// Puts the customer bridged into `agent` on hold: the relay stops both
/// ways, the customer hears `audio` played again and again and the agent
/// the leg's idle keepalive. The bridge's recording goes on (both parties'
/// own audio). Nothing happens when no customer is bridged.
pub fn hold_bridged(agent: &RtpLeg, audio: Prompt) -> Result<(), RtpLegError> {
    agent.send(Command::Hold(audio))
}

/// Takes the bridged customer off hold: the relay resumes both ways.
pub fn resume_bridged(agent: &RtpLeg) -> Result<(), RtpLegError> {
    agent.send(Command::Resume)
}

/// Runs once when dropped, wherever that happens: the end of a supervisor
/// listening in, told to its phone before the supervisor leg's ports go
/// back to the pool (so nothing more is sent there) — also when the hand
/// over of that leg fails on the way.
pub struct OnEnd(Option<Box<dyn FnOnce() + Send>>);

impl OnEnd {
    pub fn new(on_end: impl FnOnce() + Send + 'static) -> OnEnd {
        OnEnd(Some(Box::new(on_end)))
    }
}

impl Drop for OnEnd {
    fn drop(&mut self) {
        if let Some(on_end) = self.0.take() {
            on_end();
        }
    }
}

/// A supervisor listens in on `agent`'s leg through `supervisor`'s (its
/// remote is the supervisor's phone): the supervisor hears the agent and
/// whichever customer is bridged in, mixed, for as long as the agent's leg
/// lasts or until [`end_listen_in`]; `mode` says who hears the supervisor.
/// `supervisor`'s task hands the leg over and ends. `on_end` runs when the
/// listening in ends (or fails to start), before the supervisor leg's
/// ports go back to the pool: tell its peer to stop sending there.
pub async fn listen_in(
    agent: &RtpLeg,
    supervisor: RtpLeg,
    mode: ListenMode,
    on_end: OnEnd,
) -> Result<(), RtpLegError> {
    let (tx, rx) = oneshot::channel();
    // Dropped before `supervisor` on the way out of every early return
    // (locals drop in reverse order of declaration).
    let supervisor = supervisor;
    let on_end = on_end;
    supervisor.send(Command::Detach(tx))?;
    let parts = rx.await.map_err(|_| RtpLegError::Stopped)?;
    agent.send(Command::Listen {
        on_end,
        supervisor: Box::new(parts),
        mode,
        give_back: None,
    })
}

/// An agent's idle reservation leg, lent for a consultation ([`lend`]):
/// hand it to [`consult`]. Dropped unused, it goes back to its own task.
pub struct LentLeg(Box<task::LentLeg>);

impl std::fmt::Debug for LentLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LentLeg")
    }
}

impl Drop for LentLeg {
    fn drop(&mut self) {
        // Unused (the consulting agent's task had stopped): back home.
        // `consult` empties it first when the hand-over works.
        if let Some((parts, back)) = self.0.take_home() {
            let _ = back.send(parts);
        }
    }
}

/// Lends `agent`'s reservation leg — idle, no customer bridged — to be
/// heard in another agent's call ([`consult`]); its own task serves it
/// again when the consultation ends. Fails when a customer is bridged
/// into it or its task has stopped.
pub async fn lend(agent: &RtpLeg) -> Result<LentLeg, RtpLegError> {
    let (tx, rx) = oneshot::channel();
    agent.send(Command::Lend(tx))?;
    rx.await
        .map(|lent| LentLeg(Box::new(lent)))
        .map_err(|_| RtpLegError::Stopped)
}

/// A consultation: the lent leg of another agent joins `agent`'s leg as
/// a barging supervisor would — it hears `agent` and the customer bridged
/// there (unless on hold), and is heard by `agent` and by the customer
/// (unless on hold: on hold it is a private talk between the two agents,
/// off hold a three-way conference). [`end_listen_in`] ends it and gives
/// the leg back; so does `agent`'s leg closing. It replaces a supervisor
/// listening in on `agent`.
pub fn consult(agent: &RtpLeg, mut lent: LentLeg) -> Result<(), RtpLegError> {
    let Some((parts, back)) = lent.0.take_home() else {
        return Err(RtpLegError::Stopped);
    };
    let command = Command::Listen {
        on_end: OnEnd(None),
        supervisor: Box::new(parts),
        mode: ListenMode::Barge,
        give_back: Some(back),
    };
    match agent.commands.send(command) {
        Ok(()) => Ok(()),
        Err(mpsc::error::SendError(Command::Listen {
            supervisor,
            give_back: Some(back),
            ..
        })) => {
            let _ = back.send(*supervisor);
            Err(RtpLegError::Stopped)
        }
        Err(_) => Err(RtpLegError::Stopped),
    }
}

/// Who hears the supervisor listening in on `agent` from now on.
pub fn set_listen_mode(agent: &RtpLeg, mode: ListenMode) -> Result<(), RtpLegError> {
    agent.send(Command::ListenMode(mode))
}

/// The supervisor stops listening in on `agent`.
pub fn end_listen_in(agent: &RtpLeg) -> Result<(), RtpLegError> {
    agent.send(Command::EndListen)
}

/// Pauses the recording of the bridge on `agent` (`paused`: it records
/// silence from now on, keeping both channels' timeline) or lets it go on.
/// Nothing happens when no customer is bridged or the bridge is not
/// recorded.
/// Sends DTMF digits (event codes, [`crate::media::dtmf::parse_digits`])
/// to the customer bridged into `agent`: RFC 4733 events if the customer's
/// side negotiated them, else in-band tones; the agent's audio is held back
/// meanwhile. Nothing happens when nobody is bridged or the customer is on
/// hold.
pub fn send_dtmf(agent: &RtpLeg, codes: Vec<u8>) -> Result<(), RtpLegError> {
    agent.send(Command::Dtmf(codes))
}

pub fn pause_bridge_recording(agent: &RtpLeg, paused: bool) -> Result<(), RtpLegError> {
    agent.send(Command::PauseRecording(paused))
}

/// A re-offer from the customer spliced into `agent`'s leg (hold, unhold,
/// a new address): the customer's half of the bridge follows it. Nothing
/// happens when no customer is spliced.
pub fn renegotiate_bridged_customer(
    agent: &RtpLeg,
    negotiated: Negotiated,
) -> Result<(), RtpLegError> {
    agent.send(Command::CustomerNegotiated(negotiated))
}

/// Default settings for a leg from the media configuration.
pub fn leg_settings(config: &crate::media::config::MediaConfig, ssrc: u32) -> LegSettings {
    LegSettings {
        ssrc,
        inactivity_timeout: Duration::from_secs(config.inactivity_timeout_s),
        keepalive: config.comfort_noise,
        cname: format!("outdial-{ssrc:08x}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn the_end_of_listening_in_is_told_even_when_the_hand_over_fails() {
        let runs = Arc::new(AtomicUsize::new(0));
        let on_end = {
            let runs = runs.clone();
            OnEnd::new(move || {
                runs.fetch_add(1, Ordering::SeqCst);
            })
        };
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 42_600, 42_620);
        let settings = || LegSettings {
            ssrc: 1,
            inactivity_timeout: Duration::from_secs(30),
            keepalive: false,
            cname: "test".into(),
        };
        // The agent's leg has stopped: the supervisor's cannot join it.
        let agent = RtpLeg::open(&pool, settings()).unwrap();
        let (commands, _) = mpsc::unbounded_channel();
        let stopped = RtpLeg {
            local: agent.local_addr(),
            commands,
            events: mpsc::unbounded_channel().1,
        };
        let supervisor = RtpLeg::open(&pool, settings()).unwrap();
        let result = listen_in(&stopped, supervisor, ListenMode::Barge, on_end).await;
        assert!(result.is_err());
        assert_eq!(runs.load(Ordering::SeqCst), 1, "told once");
        agent.close().await.unwrap();
    }
}
