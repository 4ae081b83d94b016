//! The media side of the dialer's calls, one tokio task per leg:
//!
//! - a **customer task** owns the customer's RTP leg until it is spliced
//!   into an agent's leg; it feeds the decoded 20 ms frames to the
//!   call-progress [`Analyser`] (early media first, then after the answer)
//!   and reports verdicts, prompt ends and dead media to the engine task;
//! - an **agent phone task** owns an agent's long-lived reservation leg
//!   and splices customers into it (zip tone first) and out again.
//!
//! Neither decides anything: the sans-IO dialer does.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::cpa::{Analyser, CpaSettings, EventKind};
use crate::engine::attempt::Verdict;
use crate::engine::io::{CallId, ConnectFailure, Input};
use crate::media::leg::LegEvent;
use crate::media::listen_in::ListenMode;
use crate::media::prompt::Prompt;
use crate::media::tones::{FRAME_SAMPLES, ZipTone};
use crate::net::rtp::{self, BridgeFailed, BridgedCustomer, DetachedCustomer, RtpLeg};
use crate::sdp::{Negotiated, SessionDescription, process_answer};

/// CPA frames buffered before the oldest are dropped (1 s of audio).
const CPA_BACKLOG: usize = 50;

pub enum CustomerCommand {
    /// An SDP answer (18x early media or the 200).
    Answer(Vec<u8>),
    Answered,
    /// The customer re-offered (hold, unhold, a new address); the SIP
    /// endpoint has answered it.
    Renegotiated(Negotiated),
    Play(Prompt),
    /// Splice into this agent's leg (recording the bridge to the path, if
    /// any); `Input::Spliced` or `ConnectFailed`, naming the agent, follows.
    Connect {
        agent: String,
        phone: mpsc::UnboundedSender<AgentCommand>,
        record: Option<PathBuf>,
    },
    /// Hand the early media (before the answer) to this agent's phone
    /// task as well (the agent who placed the call hears the progress), or
    /// stop (`None`).
    ShareEarlyMedia(Option<mpsc::UnboundedSender<AgentCommand>>),
    /// The call is over: free the leg (unsplice first if spliced).
    Close,
}

/// A consultation, as the engine numbers it: its call, and which of the
/// call's consultations.
pub type Consultation = (CallId, u32);

pub enum AgentCommand {
    Negotiated(Vec<u8>),
    /// The agent's phone re-offered (hold on the softphone, a new address).
    Renegotiated(Negotiated),
    /// The spliced customer re-offered.
    CustomerRenegotiated(Negotiated),
    Splice {
        call: CallId,
        customer: RtpLeg,
        record: Option<PathBuf>,
        keep_cpa: bool,
        /// Where the customer's leg goes if this phone goes away (or is
        /// asked with `GiveBack`) while the customer is spliced in.
        give_back: oneshot::Sender<DetachedCustomer>,
        reply: oneshot::Sender<Result<BridgedCustomer, BridgeFailed>>,
    },
    /// `call` is over: its customer leaves the agent's leg (a customer
    /// spliced in since, for a later call, stays).
    Unsplice {
        call: CallId,
    },
    /// The dialer gave `call`'s customer to another agent (this phone went
    /// away before the dialer heard of the splice): hand the customer's
    /// leg back.
    GiveBack {
        call: CallId,
    },
    /// Put `call`'s spliced customer on hold with this audio, or take them
    /// off hold (`None`); nothing when another customer is spliced.
    Hold {
        call: CallId,
        audio: Option<Prompt>,
    },
    /// Pause (or go on with) the recording of `call`'s spliced customer;
    /// nothing when another customer is spliced.
    PauseRecording {
        call: CallId,
        paused: bool,
    },
    /// Send DTMF digits (event codes) to `call`'s spliced customer;
    /// nothing when another customer is spliced.
    Dtmf {
        call: CallId,
        codes: Vec<u8>,
    },
    /// Ringback while a call the agent placed rings (true), or silence.
    Ringback(bool),
    /// A 20 ms frame of that call's early media: relayed in place of the
    /// generated ringback once it carries sound.
    EarlyMedia(Box<[i16; FRAME_SAMPLES]>),
    /// A supervisor listens in on this agent through `leg` (its remote is
    /// the supervisor's phone), across the customers spliced in, until
    /// `EndListenIn` or this phone goes away; `ended` is dropped then.
    /// `on_end`: see [`rtp::listen_in`].
    ListenIn {
        // First: dropped (and run) before the supervisor's leg.
        on_end: rtp::OnEnd,
        leg: RtpLeg,
        mode: ListenMode,
        ended: oneshot::Sender<()>,
    },
    /// Who hears the supervisor listening in, from now on.
    ListenMode(ListenMode),
    EndListenIn,
    /// This agent is consulted by another (`consultation`, as the engine
    /// numbers it): lend this (idle) leg to the consulting agent's phone
    /// task, which hears it in its call ([`rtp::consult`]) until
    /// `EndConsultation` there.
    LendTo {
        consultation: Consultation,
        consulting: mpsc::UnboundedSender<AgentCommand>,
        /// Told when the leg cannot be lent (`Input::ConsultationFailed`).
        failed: mpsc::UnboundedSender<Input>,
    },
    /// Another agent's leg, lent for this agent's consultation: heard here
    /// (with the customer unless on hold) until `EndConsultation`.
    Consult {
        consultation: Consultation,
        lent: rtp::LentLeg,
    },
    /// The consultation is over: the lent leg goes back to its agent. It
    /// may come before the leg (sent straight here, while the leg comes
    /// through the consulted agent's phone task): the leg is then sent
    /// home as it arrives.
    EndConsultation(Consultation),
    Close,
}

/// Early media quieter than this (RMS of a 20 ms frame, ≈ −50 dBFS) is
/// silence or comfort noise: it does not replace the generated ringback
/// (a carrier that opens early media long before it plays anything would
/// otherwise leave the agent in silence).
const EARLY_MEDIA_AUDIBLE_RMS: f64 = 100.0;

/// What the agent hears while a call they placed rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    None,
    /// Our ringback (no audible early media yet).
    Generated,
    /// The carrier's early media, relayed.
    Relayed,
}

fn audible(samples: &[i16]) -> bool {
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / samples.len().max(1) as f64).sqrt() >= EARLY_MEDIA_AUDIBLE_RMS
}

/// Maps the analyser's event to the dialer's verdict; `None` for events
/// that do not decide anything (ringback).
fn verdict_of(kind: EventKind, now: Instant) -> Option<Verdict> {
    Some(match kind {
        EventKind::Human => Verdict::Human {
            greeting_ended: now,
        },
        EventKind::Machine => Verdict::Machine,
        EventKind::Beep { .. } => Verdict::Beep,
        EventKind::Fax(_) => Verdict::Fax,
        EventKind::Sit(code) => Verdict::Sit {
            // An unrecognised SIT is treated as permanent: redialing a
            // vacant number is the costlier mistake.
            permanent: code.is_none_or(|c| c.is_permanent()),
        },
        EventKind::Busy => Verdict::Busy,
        EventKind::Reorder => Verdict::Reorder,
        EventKind::Silence => Verdict::Silence,
        EventKind::NotSure => Verdict::Unknown,
        EventKind::Ringback => return None,
    })
}

pub struct CustomerMedia {
    pub call: CallId,
    pub leg: RtpLeg,
    pub offer: SessionDescription,
    pub cpa: CpaSettings,
    pub inputs: mpsc::UnboundedSender<Input>,
}

impl CustomerMedia {
    pub async fn run(self, mut commands: mpsc::UnboundedReceiver<CustomerCommand>) {
        let CustomerMedia {
            call,
            leg,
            offer,
            cpa,
            inputs,
        } = self;
        let mut leg = Some(leg);
        let mut frames = leg
            .as_ref()
            .and_then(|l| l.frames_for_cpa(CPA_BACKLOG).ok());
        let connect_first = cpa.connect_first;
        let mut analyser = Analyser::new_early_media(cpa);
        let mut answered_at_ms: Option<u32> = None;
        let mut spliced: Option<SplicedCustomer> = None;
        let mut early_listener: Option<mpsc::UnboundedSender<AgentCommand>> = None;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(CustomerCommand::Close) => break,
                    Some(CustomerCommand::Answer(sdp)) => {
                        let Some(leg) = leg.as_ref() else { continue };
                        match SessionDescription::parse(&sdp)
                            .map_err(|e| e.to_string())
                            .and_then(|answer| process_answer(&offer, &answer).map_err(|e| e.to_string()))
                        {
                            Ok(negotiated) => { let _ = leg.set_negotiated(negotiated); }
                            Err(error) => tracing::warn!(call, %error, "unusable SDP answer"),
                        }
                    }
                    Some(CustomerCommand::Renegotiated(media)) => {
                        if let Some(leg) = leg.as_ref() {
                            let _ = leg.set_negotiated(media);
                        } else if let Some(spliced) = spliced.as_ref() {
                            let _ = spliced.phone.send(AgentCommand::CustomerRenegotiated(media));
                        }
                    }
                    Some(CustomerCommand::Answered) => {
                        analyser.answered();
                        answered_at_ms = Some(analyser.now_ms());
                        early_listener = None;
                    }
                    Some(CustomerCommand::ShareEarlyMedia(agent)) => {
                        early_listener = agent.filter(|_| answered_at_ms.is_none());
                    }
                    Some(CustomerCommand::Play(prompt)) => {
                        // Spliced into an agent's leg (the agent dropped a
                        // voicemail into the machine): the leg comes back
                        // from there first, and the agent hears it no more.
                        if leg.is_none() && let Some(previous) = spliced.take() {
                            leg = previous.take_back(call).await;
                        }
                        if let Some(leg) = leg.as_ref() {
                            let _ = leg.play(prompt);
                        } else {
                            let _ = inputs.send(Input::PromptDone { call });
                        }
                    }
                    Some(CustomerCommand::Connect { agent, phone, record }) => {
                        early_listener = None;
                        // Still spliced into the phone of an agent who went
                        // away before the dialer heard of that splice: the
                        // customer comes back from there first.
                        if leg.is_none() && let Some(previous) = spliced.take() {
                            leg = previous.take_back(call).await;
                        }
                        let Some(customer) = leg.take() else {
                            let cause = ConnectFailure::CustomerGone;
                            let _ = inputs.send(Input::ConnectFailed { call, agent, cause });
                            continue;
                        };
                        // "Connect first": the analyser keeps listening to
                        // the bridged customer and its verdict is recorded.
                        let keep_cpa = connect_first && frames.is_some();
                        if !keep_cpa {
                            frames = None;
                        }
                        let (reply, answer) = oneshot::channel();
                        let (give_back, given_back) = oneshot::channel();
                        let splice = AgentCommand::Splice { call, customer, record, keep_cpa, give_back, reply };
                        let failure = match phone.send(splice) {
                            // The phone's task has ended: the customer's leg
                            // comes back with the command.
                            Err(mpsc::error::SendError(AgentCommand::Splice { customer, .. })) => {
                                leg = Some(customer);
                                Some(ConnectFailure::AgentPhoneGone)
                            }
                            Err(_) => Some(ConnectFailure::CustomerGone),
                            Ok(()) => match answer.await {
                                Ok(Ok(bridged)) => {
                                    spliced = Some(SplicedCustomer { bridged, phone, given_back });
                                    None
                                }
                                Ok(Err(failed)) => {
                                    leg = failed.customer;
                                    Some(if leg.is_some() {
                                        ConnectFailure::AgentPhoneGone
                                    } else {
                                        ConnectFailure::CustomerGone
                                    })
                                }
                                Err(_) => Some(ConnectFailure::CustomerGone),
                            },
                        };
                        let _ = inputs.send(match failure {
                            None => Input::Spliced { call, agent },
                            Some(cause) => Input::ConnectFailed { call, agent, cause },
                        });
                    }
                },
                frame = recv_frame(&mut frames) => match frame {
                    Some(frame) => {
                        if let Some(agent) = early_listener.as_ref()
                            && agent.send(AgentCommand::EarlyMedia(Box::new(frame.samples))).is_err()
                        {
                            early_listener = None;
                        }
                        // A decided analyser hears no more (its verdicts
                        // were sent once); the agent hearing the early media
                        // keeps the frames coming.
                        if !analyser.is_done() {
                            analyser.push_frame(&frame.samples);
                            while let Some(event) = analyser.poll_event() {
                                let Some(verdict) = verdict_of(event.kind, Instant::now()) else { continue };
                                let at_ms = event.at_ms.saturating_sub(answered_at_ms.unwrap_or(0));
                                let _ = inputs.send(Input::Cpa { call, verdict, label: event.kind.name(), at_ms });
                            }
                        }
                        if analyser.is_done() && early_listener.is_none() {
                            frames = None;
                        }
                    }
                    None => frames = None,
                },
                event = next_leg_event(&mut leg) => match event {
                    Some(LegEvent::PlaybackFinished) => { let _ = inputs.send(Input::PromptDone { call }); }
                    Some(LegEvent::Inactive) => { let _ = inputs.send(Input::MediaTimeout { call }); }
                    Some(LegEvent::Latched(_) | LegEvent::RemoteBye) => {}
                    None => { leg = None; }
                },
                event = next_spliced_event(&mut spliced) => match event {
                    Some(LegEvent::Inactive) => { let _ = inputs.send(Input::MediaTimeout { call }); }
                    Some(_) => {}
                    None => { spliced = None; }
                },
            }
        }
        if let Some(spliced) = spliced {
            let _ = spliced.phone.send(AgentCommand::Unsplice { call });
        }
        if let Some(leg) = leg {
            let _ = leg.close().await;
        }
    }
}

async fn recv_frame(
    frames: &mut Option<mpsc::Receiver<crate::media::leg::AudioFrame>>,
) -> Option<crate::media::leg::AudioFrame> {
    match frames {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_leg_event(leg: &mut Option<RtpLeg>) -> Option<LegEvent> {
    match leg {
        Some(leg) => leg.next_event().await,
        None => std::future::pending().await,
    }
}

async fn next_spliced_event(spliced: &mut Option<SplicedCustomer>) -> Option<LegEvent> {
    match spliced {
        Some(spliced) => spliced.bridged.events.recv().await,
        None => std::future::pending().await,
    }
}

/// How long a customer waits for its leg back from an agent's phone task
/// (which answers at once, or handed it over as it ended).
const GIVE_BACK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A customer spliced into an agent's phone leg, as its customer task
/// sees it.
struct SplicedCustomer {
    bridged: BridgedCustomer,
    phone: mpsc::UnboundedSender<AgentCommand>,
    given_back: oneshot::Receiver<DetachedCustomer>,
}

impl SplicedCustomer {
    /// The customer's leg back out of the agent's phone leg, served again;
    /// `None` if it died with that leg.
    async fn take_back(self, call: CallId) -> Option<RtpLeg> {
        let _ = self.phone.send(AgentCommand::GiveBack { call });
        match tokio::time::timeout(GIVE_BACK_WAIT, self.given_back).await {
            Ok(Ok(customer)) => Some(RtpLeg::reattach(customer, self.bridged)),
            _ => None,
        }
    }
}

/// Ringback played to an agent at most this long (a ring timeout is
/// shorter).
const RINGBACK_SECONDS: u32 = 120;

/// An agent's reservation leg. `offer` is `None` for a simulated agent's
/// leg, which is already negotiated towards the engine's sink socket.
pub async fn agent_phone(
    agent: String,
    leg: RtpLeg,
    offer: Option<SessionDescription>,
    zip: ZipTone,
    mut commands: mpsc::UnboundedReceiver<AgentCommand>,
) {
    let mut leg = leg;
    let mut progress = Progress::None;
    // The customer spliced in now, and where its leg goes back to.
    let mut spliced: Option<(CallId, oneshot::Sender<DetachedCustomer>)> = None;
    // Dropped when the supervisor listening in (if any) stops hearing.
    let mut listened: Option<oneshot::Sender<()>> = None;
    // Another agent's leg is heard here (a consultation, by its number),
    // in place of a supervisor.
    let mut consulting: Option<Consultation> = None;
    // Consultations that ended before their lent leg came (the last few).
    let mut ended_early: VecDeque<Consultation> = VecDeque::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None | Some(AgentCommand::Close) => break,
                Some(AgentCommand::Negotiated(sdp)) => {
                    let Some(offer) = offer.as_ref() else { continue };
                    match SessionDescription::parse(&sdp)
                        .map_err(|e| e.to_string())
                        .and_then(|answer| process_answer(offer, &answer).map_err(|e| e.to_string()))
                    {
                        Ok(negotiated) => { let _ = leg.set_negotiated(negotiated); }
                        Err(error) => tracing::warn!(%agent, %error, "unusable SDP answer from the agent's phone"),
                    }
                }
                Some(AgentCommand::Renegotiated(media)) => { let _ = leg.set_negotiated(media); }
                Some(AgentCommand::CustomerRenegotiated(media)) => {
                    let _ = rtp::renegotiate_bridged_customer(&leg, media);
                }
                Some(AgentCommand::Splice { call, customer, record, keep_cpa, give_back, reply }) => {
                    progress = Progress::None;
                    // A customer still spliced (its Close not yet seen) is
                    // replaced; its statistics are lost, not its audio.
                    let result = rtp::bridge_with(&leg, customer, zip.clone(), record, keep_cpa).await;
                    if result.is_ok() {
                        spliced = Some((call, give_back));
                    }
                    let _ = reply.send(result);
                }
                Some(AgentCommand::Unsplice { call }) => {
                    if spliced.as_ref().is_some_and(|(current, _)| *current == call) {
                        spliced = None;
                        let _ = rtp::unbridge(&leg).await;
                    }
                }
                Some(AgentCommand::GiveBack { call }) => {
                    if spliced.as_ref().is_some_and(|(current, _)| *current == call) {
                        give_back_customer(&leg, spliced.take()).await;
                    }
                }
                Some(AgentCommand::Hold { call, audio }) => {
                    if spliced.as_ref().is_some_and(|(current, _)| *current == call) {
                        let _ = match audio {
                            Some(audio) => rtp::hold_bridged(&leg, audio),
                            None => rtp::resume_bridged(&leg),
                        };
                    }
                }
                Some(AgentCommand::PauseRecording { call, paused }) => {
                    if spliced.as_ref().is_some_and(|(current, _)| *current == call) {
                        let _ = rtp::pause_bridge_recording(&leg, paused);
                    }
                }
                Some(AgentCommand::Dtmf { call, codes }) => {
                    if spliced.as_ref().is_some_and(|(current, _)| *current == call) {
                        let _ = rtp::send_dtmf(&leg, codes);
                    }
                }
                Some(AgentCommand::Ringback(true)) => {
                    if progress != Progress::Relayed {
                        // Longer than any ring timeout; the zip tone, the
                        // carrier's early media or a stop replaces it.
                        let tone = crate::media::tones::ringback(RINGBACK_SECONDS);
                        let _ = leg.play(crate::media::prompt::Prompt::from_samples(tone));
                        progress = Progress::Generated;
                    }
                }
                Some(AgentCommand::Ringback(false)) => {
                    let _ = leg.stop_playing();
                    progress = Progress::None;
                }
                Some(AgentCommand::EarlyMedia(samples)) => match progress {
                    Progress::Generated if audible(&samples[..]) => {
                        tracing::debug!(%agent, "relaying the carrier's early media to the agent");
                        let _ = leg.play_live();
                        let _ = leg.push_live(samples);
                        progress = Progress::Relayed;
                    }
                    Progress::Relayed => { let _ = leg.push_live(samples); }
                    Progress::Generated | Progress::None => {}
                },
                Some(AgentCommand::ListenIn { leg: supervisor, mode, on_end, ended }) => {
                    // Not during a consultation, which holds the third
                    // party's place: the supervisor is told at once.
                    if consulting.is_some() {
                        tracing::info!(%agent, "a supervisor cannot listen in during a consultation");
                        drop((on_end, ended));
                        let _ = supervisor.close().await;
                        continue;
                    }
                    // A supervisor's leg whose task has stopped drops
                    // `ended`: that supervisor hears nothing and is told.
                    if rtp::listen_in(&leg, supervisor, mode, on_end).await.is_ok() {
                        listened = Some(ended);
                    }
                }
                // Only a supervisor's: a consultation's stays a barge.
                Some(AgentCommand::ListenMode(mode)) => if listened.is_some() {
                    let _ = rtp::set_listen_mode(&leg, mode);
                },
                Some(AgentCommand::EndListenIn) => {
                    if listened.take().is_some() {
                        let _ = rtp::end_listen_in(&leg);
                    }
                }
                Some(AgentCommand::LendTo { consultation, consulting, failed }) => match rtp::lend(&leg).await {
                    // Sent back unused (the consulting phone is gone), the
                    // lent leg comes home when dropped.
                    Ok(lent) => { let _ = consulting.send(AgentCommand::Consult { consultation, lent }); }
                    Err(error) => {
                        tracing::warn!(%agent, %error, "cannot lend the agent's leg for a consultation");
                        let (call, number) = consultation;
                        let _ = failed.send(Input::ConsultationFailed { call, number });
                    }
                },
                Some(AgentCommand::Consult { consultation, lent }) => {
                    if let Some(at) = ended_early.iter().position(|&c| c == consultation) {
                        // Over already: the leg goes home (dropped).
                        ended_early.remove(at);
                        drop(lent);
                        continue;
                    }
                    // A supervisor listening in is replaced, and told.
                    listened = None;
                    consulting = rtp::consult(&leg, lent).is_ok().then_some(consultation);
                }
                Some(AgentCommand::EndConsultation(consultation)) => {
                    if consulting == Some(consultation) {
                        consulting = None;
                        let _ = rtp::end_listen_in(&leg);
                    } else {
                        ended_early.push_back(consultation);
                        // A lend that failed never comes: forget old ones.
                        if ended_early.len() > 8 {
                            ended_early.pop_front();
                        }
                    }
                }
            },
            // Agent softphones with silence suppression stop sending RTP
            // between words; the SIP dialog, not RTP, says when the phone
            // hung up, so leg events are only drained here.
            event = leg.next_event() => if event.is_none() { break },
        }
    }
    // The phone is going away. A customer spliced in goes back to its own
    // task (which takes it only if the dialer gives it to another agent;
    // else it is closed with the call), and a splice still queued fails
    // with the customer's leg whole.
    commands.close();
    give_back_customer(&leg, spliced.take()).await;
    while let Ok(command) = commands.try_recv() {
        if let AgentCommand::Splice {
            customer, reply, ..
        } = command
        {
            let _ = reply.send(Err(BridgeFailed {
                customer: Some(customer),
                error: rtp::RtpLegError::Stopped,
            }));
        }
    }
    let _ = leg.close().await;
    // The supervisor listening in is told once the leg is gone.
    drop(listened);
}

/// Hands the spliced customer's leg back to its own task.
async fn give_back_customer(
    leg: &RtpLeg,
    spliced: Option<(CallId, oneshot::Sender<DetachedCustomer>)>,
) {
    let Some((_, give_back)) = spliced else {
        return;
    };
    if let Ok(Some(customer)) = rtp::take_back(leg).await {
        let _ = give_back.send(customer);
    }
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;
