//! The task that serves one leg, or — once a customer is bridged in — an
//! agent leg and its customer leg together, so a relayed packet never
//! crosses a channel or a lock: receive, check, rewrite in place, send.

use std::future::pending;
use std::path::PathBuf;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::{Command, OnEnd, PortLease};
use crate::media::bridge::{Translation, relay_in_place};
use crate::media::leg::{AudioFrame, LegCore, LegCounters, LegEvent, LiveSource};
use crate::media::listen_in::ListenMode;
use crate::media::prompt::Prompt;
use crate::media::recorder::{Channel, Recorder};
use crate::media::rtp::MAX_PACKET_LEN;
use crate::media::stats::StreamSummary;
use crate::sdp::Negotiated;

/// A leg's sockets, core and outputs; moves between tasks when bridged.
pub struct LegParts {
    lease: PortLease,
    core: LegCore,
    events: mpsc::UnboundedSender<LegEvent>,
    cpa: Option<mpsc::Sender<AudioFrame>>,
    recorder: Option<Recorder>,
    cpa_dropped: u64,
    relay_dropped: u64,
    /// A supervisor listens in: its frames go to the supervisor's mix.
    tapped: bool,
}

/// An agent's reservation leg lent to another agent's task for a
/// consultation (it takes the third party's place, as a supervisor's leg
/// does): the lending task serves nothing until the leg comes back on
/// `back`, and commands sent to it wait meanwhile.
pub struct LentLeg {
    parts: Option<LegParts>,
    back: Option<oneshot::Sender<LegParts>>,
}

impl LentLeg {
    /// The leg and the way home, once.
    pub(super) fn take_home(&mut self) -> Option<(LegParts, oneshot::Sender<LegParts>)> {
        self.parts.take().zip(self.back.take())
    }
}

/// What a leg leaves for the call record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegReport {
    pub local_port: u16,
    pub summary: StreamSummary,
    pub counters: LegCounters,
    /// Frames the CPA analyser did not take in time.
    pub cpa_frames_dropped: u64,
    /// Packets not relayed (zip tone playing, unknown payload type, send buffer full).
    pub relay_dropped: u64,
    /// The recording written, with its length in samples per channel.
    pub recording: Option<(PathBuf, usize)>,
    pub recording_error: Option<String>,
}

impl LegParts {
    pub(super) fn new(
        lease: PortLease,
        core: LegCore,
        events: mpsc::UnboundedSender<LegEvent>,
    ) -> LegParts {
        LegParts {
            lease,
            core,
            events,
            cpa: None,
            recorder: None,
            cpa_dropped: 0,
            relay_dropped: 0,
            tapped: false,
        }
    }

    fn update_decode(&mut self, stereo_recording: bool) {
        self.core.set_decode(
            self.cpa.is_some() || self.recorder.is_some() || stereo_recording || self.tapped,
        );
    }

    /// Hands the report to `deliver`: at once when there is no recording to
    /// write, else from a blocking thread. A recording of a long call is
    /// megabytes; writing it here would stall every other leg this media
    /// thread relays (which may run at real-time priority) for as long as
    /// the disk takes.
    fn report_then(
        self,
        recording: Option<Recorder>,
        deliver: impl FnOnce(LegReport) + Send + 'static,
    ) {
        if recording.is_none() && self.recorder.is_none() {
            deliver(self.report(None));
            return;
        }
        tokio::task::spawn_blocking(move || {
            super::realtime::leave_realtime_priority();
            deliver(self.report(recording))
        });
    }

    fn report(mut self, recording: Option<Recorder>) -> LegReport {
        let mut report = LegReport {
            local_port: self.lease.port(),
            summary: self.core.summary(),
            counters: self.core.counters,
            cpa_frames_dropped: self.cpa_dropped,
            relay_dropped: self.relay_dropped,
            recording: None,
            recording_error: None,
        };
        if let Some(recorder) = recording.or(self.recorder.take()) {
            let path = recorder.path().to_path_buf();
            match recorder.finish() {
                Ok(samples) => report.recording = Some((path, samples)),
                Err(e) => report.recording_error = Some(format!("{}: {e}", path.display())),
            }
        }
        report
    }

    /// Sends whatever the core has due and forwards decoded frames.
    fn service(
        &mut self,
        now: Instant,
        out: &mut [u8],
        stereo: Option<(&mut Recorder, Channel)>,
        tap: Option<(&mut LegCore, LiveSource)>,
    ) {
        self.transmit(now, out);
        self.forward_frames(now, stereo, tap);
    }

    fn transmit(&mut self, now: Instant, out: &mut [u8]) {
        while let Some((len, to)) = self.core.poll_transmit(now, out) {
            let _ = self.lease.rtp.try_send_to(&out[..len], to);
        }
        if let Some((len, to)) = self.core.poll_rtcp(now, out) {
            let _ = self.lease.rtcp.try_send_to(&out[..len], to);
        }
    }

    /// Hands decoded frames to CPA, the recorders and a supervisor
    /// listening in (`tap`: the supervisor's leg, and which of its two
    /// live sources this leg is). Called after every received packet too,
    /// so a burst never overflows the reorder window.
    fn forward_frames(
        &mut self,
        now: Instant,
        mut stereo: Option<(&mut Recorder, Channel)>,
        mut tap: Option<(&mut LegCore, LiveSource)>,
    ) {
        while let Some(frame) = self.core.poll_frame(now) {
            if let Some((supervisor, source)) = tap.as_mut() {
                supervisor.push_live_from(*source, &frame.samples);
            }
            if let Some(recorder) = &mut self.recorder {
                recorder.push(
                    Channel::Customer,
                    frame.ssrc,
                    frame.timestamp,
                    &frame.samples,
                    now,
                );
            }
            if let Some((recorder, channel)) = stereo.as_mut() {
                recorder.push(*channel, frame.ssrc, frame.timestamp, &frame.samples, now);
            }
            if let Some(cpa) = &self.cpa
                && cpa.try_send(frame).is_err()
            {
                self.cpa_dropped += 1;
            }
        }
    }

    fn drain_events(&mut self, now: Instant) -> bool {
        let mut playback_finished = false;
        while let Some(event) = self.core.poll_event(now) {
            playback_finished |= event == LegEvent::PlaybackFinished;
            let _ = self.events.send(event);
        }
        playback_finished
    }
}

/// A supervisor listening in on this agent leg, across the customers
/// bridged into it (see [`crate::media::listen_in`]) — or another agent
/// consulted by this one, whose leg is lent here for the consultation.
struct ListenIn {
    /// Runs when the listening in ends, before the supervisor leg's ports
    /// go back to the pool (its phone stops sending there).
    on_end: OnEnd,
    supervisor: LegParts,
    mode: ListenMode,
    /// A consulted agent's leg goes back to its own task at the end.
    give_back: Option<oneshot::Sender<LegParts>>,
}

/// Who may hear a supervisor now: the agent always; the customer only
/// while bridged and not on hold (with the recording of the bridge, for
/// what the customer hears).
struct Hearers<'a> {
    agent: &'a mut LegCore,
    customer: Option<(&'a mut LegCore, Option<&'a mut Recorder>)>,
}

impl<'a> Hearers<'a> {
    fn of(agent: &'a mut LegParts, bridged: Option<&'a mut Bridged>) -> Hearers<'a> {
        let customer = bridged
            .filter(|b| b.hold.is_none())
            .map(|b| (&mut b.customer.core, b.recorder.as_mut()));
        Hearers {
            agent: &mut agent.core,
            customer,
        }
    }
}

impl ListenIn {
    fn new(
        mut supervisor: LegParts,
        mode: ListenMode,
        on_end: OnEnd,
        give_back: Option<oneshot::Sender<LegParts>>,
        now: Instant,
    ) -> ListenIn {
        supervisor.core.set_decode(true);
        if give_back.is_none() {
            // Its peer is our own socket (the supervisor's browser phone):
            // nobody else may stand in for it and hear the call. (A
            // consulted agent's phone keeps the address it latched to.)
            supervisor.core.pin_to_remote();
        }
        // The agent (first source) and the customer (second), mixed.
        supervisor.core.play_live(now);
        ListenIn {
            on_end,
            supervisor,
            mode,
            give_back,
        }
    }

    /// The listening in is over: nothing said before the end is heard
    /// after it; a supervisor's leg is closed (its ports go back to the
    /// pool), a consulted agent's goes back to its own task, idle.
    fn end(mut self, now: Instant, hearers: Hearers) {
        self.set_mode(ListenMode::Monitor, hearers);
        let ListenIn {
            on_end,
            mut supervisor,
            give_back,
            ..
        } = self;
        drop(on_end);
        if let Some(back) = give_back {
            supervisor.core.idle(now);
            supervisor.update_decode(false);
            let _ = back.send(supervisor);
        }
    }

    /// Sends the supervisor what is due, and hands what the supervisor
    /// said to the parties the mode lets hear it.
    fn service(&mut self, now: Instant, out: &mut [u8], hearers: Hearers) {
        self.supervisor.transmit(now, out);
        self.take_voice(now, hearers);
        self.supervisor.drain_events(now);
    }

    fn take_voice(&mut self, now: Instant, mut hearers: Hearers) {
        while let Some(frame) = self.supervisor.core.poll_frame(now) {
            if self.mode.agent_hears_supervisor() {
                hearers.agent.push_overlay(&frame.samples);
            }
            // Not over the digits the agent sends (nor in the recording as
            // heard).
            if self.mode.customer_hears_supervisor()
                && let Some((customer, recorder)) = hearers.customer.as_mut()
                && !customer.is_sending_dtmf()
            {
                customer.push_overlay(&frame.samples);
                // What the customer heard is in the call's recording.
                if let Some(recorder) = recorder {
                    recorder.push(
                        Channel::Supervisor,
                        frame.ssrc,
                        frame.timestamp,
                        &frame.samples,
                        now,
                    );
                }
            }
        }
    }

    fn set_mode(&mut self, mode: ListenMode, hearers: Hearers) {
        self.mode = mode;
        if !mode.agent_hears_supervisor() {
            hearers.agent.clear_overlay();
        }
        if !mode.customer_hears_supervisor()
            && let Some((customer, _)) = hearers.customer
        {
            customer.clear_overlay();
        }
    }

    fn tap(&mut self, source: LiveSource) -> Option<(&mut LegCore, LiveSource)> {
        Some((&mut self.supervisor.core, source))
    }
}

struct Bridged {
    customer: LegParts,
    zip_playing: bool,
    recorder: Option<Recorder>,
    /// On hold: what the customer hears, replayed each time it ends.
    hold: Option<Prompt>,
}

impl Bridged {
    /// Whether the customer's audio reaches the agent now: not during the
    /// zip tone (the agent hears it first), not on hold.
    fn relays_customer(&self) -> bool {
        !self.zip_playing && self.hold.is_none()
    }
}

fn translation(from: &Negotiated, to: &Negotiated) -> Translation {
    Translation {
        from_law: from.law,
        from_audio_pt: from.payload_type,
        from_event_pt: from.telephone_event,
        to_law: to.law,
        to_audio_pt: to.payload_type,
        to_event_pt: to.telephone_event,
    }
}

async fn readable(socket: Option<&UdpSocket>) -> std::io::Result<()> {
    match socket {
        Some(socket) => socket.readable().await,
        None => pending().await,
    }
}

/// Relays one received datagram from `from_leg` onto `to_leg`'s stream,
/// with a supervisor's voice for `to_leg` (if any waits) mixed in.
fn relay(buf: &mut [u8], from_leg: &mut LegParts, to_leg: &mut LegParts, now: Instant) {
    let Some(remote) = to_leg.core.remote() else {
        from_leg.relay_dropped += 1;
        return;
    };
    let translation = translation(from_leg.core.negotiated(), to_leg.core.negotiated());
    match relay_in_place(buf, &translation, to_leg.core.out_stream(), now) {
        Ok(len) => {
            to_leg.core.mix_overlay_into(&mut buf[..len]);
            if to_leg.lease.rtp.try_send_to(&buf[..len], remote).is_ok() {
                to_leg.core.counters.sent += 1;
            } else {
                from_leg.relay_dropped += 1;
            }
        }
        Err(_) => from_leg.relay_dropped += 1,
    }
}

/// Ends the listening in (if any) of the task whose leg and bridge these are.
fn end_listening(
    listening: &mut Option<ListenIn>,
    leg: &mut LegParts,
    bridged: Option<&mut Bridged>,
    now: Instant,
) {
    if let Some(l) = listening.take() {
        l.end(now, Hearers::of(leg, bridged));
    }
}

pub(super) async fn run(mut leg: LegParts, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut bridged: Option<Bridged> = None;
    let mut listening: Option<ListenIn> = None;
    let mut rx = [0u8; MAX_PACKET_LEN];
    let mut out = [0u8; MAX_PACKET_LEN];
    let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(sleep);
    loop {
        let now = Instant::now();
        if let Some(b) = bridged.as_mut() {
            leg.service(
                now,
                &mut out,
                b.recorder.as_mut().map(|r| (r, Channel::Agent)),
                listening.as_mut().and_then(|l| l.tap(LiveSource::First)),
            );
            // A customer on hold is heard by nobody, a consulted agent
            // included.
            let held = b.hold.is_some();
            b.customer.service(
                now,
                &mut out,
                b.recorder.as_mut().map(|r| (r, Channel::Customer)),
                listening
                    .as_mut()
                    .filter(|_| !held)
                    .and_then(|l| l.tap(LiveSource::Second)),
            );
            if leg.drain_events(now) && b.zip_playing {
                // Zip tone over: the customer's audio takes the agent's stream.
                b.zip_playing = false;
                leg.core.stop_generating();
            }
            if b.customer.drain_events(now)
                && let Some(audio) = &b.hold
            {
                // The hold audio loops for as long as the hold lasts.
                b.customer.core.play(audio.clone(), now);
            }
        } else {
            leg.service(
                now,
                &mut out,
                None,
                listening.as_mut().and_then(|l| l.tap(LiveSource::First)),
            );
            leg.drain_events(now);
        }
        // Before the parties' deadlines: the supervisor's voice it hands
        // them may be due to go alone.
        if let Some(l) = listening.as_mut() {
            l.service(now, &mut out, Hearers::of(&mut leg, bridged.as_mut()));
        }
        let mut deadline = leg.core.deadline();
        if let Some(b) = &bridged {
            deadline = deadline.min(b.customer.core.deadline());
        }
        if let Some(l) = &listening {
            deadline = deadline.min(l.supervisor.core.deadline());
        }
        sleep
            .as_mut()
            .reset(tokio::time::Instant::from_std(deadline));
        let customer_rtp = bridged.as_ref().map(|b| &b.customer.lease.rtp);
        let customer_rtcp = bridged.as_ref().map(|b| &b.customer.lease.rtcp);
        let supervisor_rtp = listening.as_ref().map(|l| &l.supervisor.lease.rtp);
        tokio::select! {
            command = commands.recv() => {
                let now = Instant::now();
                let Some(command) = command else {
                    end_listening(&mut listening, &mut leg, bridged.as_mut(), now);
                    return;
                };
                match command {
                    Command::Negotiated(n) => leg.core.renegotiate(n, now),
                    Command::PinRemote => leg.core.pin_to_remote(),
                    Command::CustomerNegotiated(n) => {
                        if let Some(b) = bridged.as_mut() {
                            b.customer.core.renegotiate(n, now);
                        }
                    }
                    Command::Play(prompt) => leg.core.play(prompt, now),
                    Command::PlayLive => leg.core.play_live(now),
                    Command::Live(samples) => leg.core.push_live(&samples[..]),
                    Command::StopPlaying => leg.core.idle(now),
                    Command::Record(path) => {
                        leg.recorder = Some(Recorder::mono(&path, now));
                        leg.update_decode(false);
                    }
                    Command::CpaFrames(tx) => {
                        leg.cpa = Some(tx);
                        leg.update_decode(false);
                    }
                    Command::Detach(reply) => {
                        end_listening(&mut listening, &mut leg, bridged.as_mut(), now);
                        let _ = reply.send(leg);
                        return;
                    }
                    Command::Lend(reply) => {
                        // Only an idle reservation leg is lent: a bridged
                        // customer would hear nobody meanwhile.
                        if bridged.is_some() {
                            continue;
                        }
                        leg.core.idle(now);
                        let (back, returned) = oneshot::channel();
                        let lent = LentLeg { parts: Some(leg), back: Some(back) };
                        if let Err(mut lent) = reply.send(lent)
                            && let Some((parts, _)) = lent.take_home()
                        {
                            leg = parts;
                        } else {
                            match returned.await {
                                Ok(parts) => leg = parts,
                                // The borrower dropped it: its ports are free.
                                Err(_) => return,
                            }
                        }
                        let now = Instant::now();
                        leg.core.idle(now);
                        leg.update_decode(false);
                    }
                    Command::Bridge { customer, zip, record, keep_cpa } => {
                        let mut customer = *customer;
                        // CPA is done once a customer is bridged, unless
                        // it classifies in the background.
                        if !keep_cpa {
                            customer.cpa = None;
                        }
                        customer.core.stop_generating();
                        customer.tapped = listening.is_some();
                        leg.core.play_zip(&zip, now);
                        let recorder = record.map(|path| Recorder::stereo(&path, now));
                        customer.update_decode(recorder.is_some());
                        leg.update_decode(recorder.is_some());
                        bridged = Some(Bridged { customer, zip_playing: true, recorder, hold: None });
                    }
                    Command::Hold(audio) => {
                        if let Some(b) = bridged.as_mut() {
                            // A zip tone still playing is cut: the agent
                            // asked for quiet.
                            b.zip_playing = false;
                            leg.core.idle(now);
                            b.customer.core.play(audio.clone(), now);
                            // On hold the customer hears the hold audio
                            // only, a barging supervisor too.
                            b.customer.core.clear_overlay();
                            b.hold = Some(audio);
                        }
                    }
                    Command::Resume => {
                        if let Some(b) = bridged.as_mut()
                            && b.hold.take().is_some()
                        {
                            b.customer.core.stop_generating();
                            leg.core.stop_generating();
                        }
                    }
                    Command::Listen { supervisor, mode, on_end, give_back } => {
                        // A supervisor already listening is replaced (its
                        // ports go back to the pool).
                        end_listening(&mut listening, &mut leg, bridged.as_mut(), now);
                        listening = Some(ListenIn::new(*supervisor, mode, on_end, give_back, now));
                        set_tapped(&mut leg, bridged.as_mut(), true);
                    }
                    Command::ListenMode(mode) => {
                        if let Some(l) = listening.as_mut() {
                            l.set_mode(mode, Hearers::of(&mut leg, bridged.as_mut()));
                        }
                    }
                    Command::EndListen => {
                        end_listening(&mut listening, &mut leg, bridged.as_mut(), now);
                        set_tapped(&mut leg, bridged.as_mut(), false);
                    }
                    Command::Dtmf(codes) => {
                        // To the customer on the line; not on hold (the
                        // hold audio plays there).
                        if let Some(b) = bridged.as_mut().filter(|b| b.hold.is_none()) {
                            b.customer.core.send_dtmf(&codes, now);
                        }
                    }
                    Command::PauseRecording(paused) => {
                        if let Some(recorder) = bridged.as_mut().and_then(|b| b.recorder.as_mut()) {
                            recorder.pause(paused);
                        }
                    }
                    Command::Unbridge(reply) => {
                        leg.update_decode(false);
                        leg.core.idle(now);
                        match bridged.take() {
                            Some(b) => b.customer.report_then(b.recorder, move |report| {
                                let _ = reply.send(Some(report));
                            }),
                            None => {
                                let _ = reply.send(None);
                            }
                        }
                    }
                    Command::TakeBack(reply) => {
                        leg.update_decode(false);
                        leg.core.idle(now);
                        let customer = bridged.take().map(|b| {
                            // The bridge's recording is written as on
                            // Unbridge (a next agent's takes its path later).
                            if let Some(recorder) = b.recorder {
                                tokio::task::spawn_blocking(move || {
                                    super::realtime::leave_realtime_priority();
                                    let path = recorder.path().display().to_string();
                                    if let Err(error) = recorder.finish() {
                                        tracing::warn!(%path, %error, "cannot write the recording");
                                    }
                                });
                            }
                            let mut customer = b.customer;
                            customer.tapped = false;
                            // A barging supervisor's last words stay here.
                            customer.core.clear_overlay();
                            customer.update_decode(false);
                            customer.core.idle(now);
                            customer
                        });
                        let _ = reply.send(customer);
                    }
                    Command::Close(reply) => {
                        end_listening(&mut listening, &mut leg, bridged.as_mut(), now);
                        let deliver = move |report| {
                            let _ = reply.send(report);
                        };
                        match bridged.take() {
                            // The customer's recording is written before
                            // the reply, as when it is unbridged first.
                            Some(b) => {
                                tokio::task::spawn_blocking(move || {
                                    super::realtime::leave_realtime_priority();
                                    let _ = b.customer.report(b.recorder);
                                    deliver(leg.report(None));
                                });
                            }
                            None => leg.report_then(None, deliver),
                        }
                        return;
                    }
                }
            }
            ready = leg.lease.rtp.readable() => {
                if ready.is_err() { continue }
                // Drain everything queued: one wakeup, several packets.
                while let Ok((len, from)) = leg.lease.rtp.try_recv_from(&mut rx) {
                    let now = Instant::now();
                    if leg.core.on_rtp(&rx[..len], from, now).is_ok() {
                        match bridged.as_mut() {
                            Some(b) => {
                                // On hold the customer hears the hold audio,
                                // not the agent; during digits, the digits.
                                if b.hold.is_none() && !b.customer.core.is_sending_dtmf() {
                                    relay(&mut rx[..len], &mut leg, &mut b.customer, now);
                                }
                                leg.forward_frames(
                                    now,
                                    b.recorder.as_mut().map(|r| (r, Channel::Agent)),
                                    listening.as_mut().and_then(|l| l.tap(LiveSource::First)),
                                );
                            }
                            None => leg.forward_frames(
                                now,
                                None,
                                listening.as_mut().and_then(|l| l.tap(LiveSource::First)),
                            ),
                        }
                    }
                }
            }
            ready = leg.lease.rtcp.readable() => {
                if ready.is_err() { continue }
                while let Ok((len, _)) = leg.lease.rtcp.try_recv_from(&mut rx) {
                    leg.core.on_rtcp(&rx[..len], Instant::now());
                }
            }
            ready = readable(customer_rtp) => {
                if ready.is_err() { continue }
                let Some(b) = bridged.as_mut() else { continue };
                while let Ok((len, from)) = b.customer.lease.rtp.try_recv_from(&mut rx) {
                    let now = Instant::now();
                    if b.customer.core.on_rtp(&rx[..len], from, now).is_ok() {
                        if b.relays_customer() {
                            relay(&mut rx[..len], &mut b.customer, &mut leg, now);
                        } else if b.zip_playing {
                            // The agent hears the zip tone, not the customer, first.
                            b.customer.relay_dropped += 1;
                        }
                        let held = b.hold.is_some();
                        b.customer.forward_frames(
                            now,
                            b.recorder.as_mut().map(|r| (r, Channel::Customer)),
                            listening
                                .as_mut()
                                .filter(|_| !held)
                                .and_then(|l| l.tap(LiveSource::Second)),
                        );
                    }
                }
            }
            ready = readable(customer_rtcp) => {
                if ready.is_err() { continue }
                let Some(b) = bridged.as_mut() else { continue };
                while let Ok((len, _)) = b.customer.lease.rtcp.try_recv_from(&mut rx) {
                    b.customer.core.on_rtcp(&rx[..len], Instant::now());
                }
            }
            ready = readable(supervisor_rtp) => {
                if ready.is_err() { continue }
                let Some(l) = listening.as_mut() else { continue };
                while let Ok((len, from)) = l.supervisor.lease.rtp.try_recv_from(&mut rx) {
                    let now = Instant::now();
                    if l.supervisor.core.on_rtp(&rx[..len], from, now).is_ok() {
                        l.take_voice(now, Hearers::of(&mut leg, bridged.as_mut()));
                    }
                }
            }
            () = &mut sleep => {}
        }
    }
}

/// A supervisor starts (or stops) listening in: the agent's and the
/// customer's audio is decoded for the supervisor's mix.
fn set_tapped(leg: &mut LegParts, bridged: Option<&mut Bridged>, tapped: bool) {
    let stereo = bridged.as_ref().is_some_and(|b| b.recorder.is_some());
    leg.tapped = tapped;
    leg.update_decode(stereo);
    if let Some(b) = bridged {
        b.customer.tapped = tapped;
        b.customer.update_decode(stereo);
    }
}
