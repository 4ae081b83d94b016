//! One call attempt, from the INVITE to the outcome: a sans-IO state machine.
//!
//! **The 2-second abandon clock lives here.** When call-progress analysis
//! hears a live person, the attempt asks for an agent and arms
//! [`ABANDON_WINDOW`] from the *end of the greeting* (FTC TSR / FCC TCPA:
//! "within two seconds after the completed greeting"), not from the verdict,
//! so time the analyser spent deciding is already spent. If no agent is
//! bridged by then the caller hears the abandon prompt and the attempt is
//! recorded as abandoned.
//!
//! Inputs are what the SIP, media and CPA layers observed, each with `now`;
//! outputs are [`Action`]s for the engine to carry out and, exactly once, an
//! [`Action::Finished`] with the [`Outcome`] for the store.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::MachineAction;

/// No agent within this long after the greeting ends = abandoned call.
pub const ABANDON_WINDOW: Duration = Duration::from_secs(2);

/// Longest a transfer waits for the next agent's splice (a zip tone on a
/// phone that is already connected) before the customer goes back to the
/// agent who transferred it.
pub const TRANSFER_WAIT: Duration = Duration::from_secs(10);

/// Longest an outside number rings for a transfer before the transfer is
/// given up and the customer stays with the agent (once it answers, the
/// splice into its line has [`TRANSFER_WAIT`]).
pub const OUTSIDE_RING_WAIT: Duration = Duration::from_secs(30);

/// What a splice of the customer into an outside line is named by, where
/// an agent's id would be ([`Action::ConnectOutside`], the shell's report
/// of it). No agent id starts so (the configuration's check refuses it).
pub fn outside_party(number: &str) -> String {
    format!("outside {number}")
}

/// Why an outside transfer was called off by its agent (its event's step
/// is `cancelled`, not `failed`).
pub const OUTSIDE_TRANSFER_CANCELLED: &str = "you cancelled the transfer";

/// How a call failed before it was answered (from the SIP final response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Busy,
    NoAnswer,
    InvalidNumber,
    Rejected,
    Congestion,
    NetworkFailure,
}

impl Failure {
    /// The trunk refused the call itself, not the callee: 401/407 (a
    /// challenge our credentials could not answer) and 403 (a barred or
    /// suspended account), or our request refused — 488 for our PCMU/PCMA
    /// offer on a G.729-only trunk, 400/415/420. 603 Decline is the callee's.
    pub fn is_trunk_refusal(self, sip_code: Option<u16>) -> bool {
        matches!(
            (self, sip_code),
            (Failure::Rejected, Some(401 | 403 | 407))
                | (Failure::NetworkFailure, Some(400 | 415 | 420 | 488))
        )
    }
}

/// What call-progress analysis concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A live person; `greeting_ended` is when their first utterance ended.
    Human {
        greeting_ended: Instant,
    },
    Machine,
    /// The tone that ends a voicemail greeting.
    Beep,
    Fax,
    /// Special information tones; `permanent` for IC/VC (number gone).
    Sit {
        permanent: bool,
    },
    Busy,
    Reorder,
    /// Nothing heard.
    Silence,
    /// The analyser could not decide in time.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// "Sorry we missed you — this is … call us back on …" (regulated).
    Abandon,
    Voicemail,
    /// The campaign's hold audio, to a customer waiting with no agent's
    /// leg to hear it in (an outside number ringing for a customer whose
    /// agent's phone went away). Its end changes nothing.
    Hold,
}

/// How an attempt ended, for the store and the pacer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A live person talked to an agent.
    Connected,
    /// A live person found no agent within the abandon window.
    Abandoned,
    Machine,
    VoicemailLeft,
    Fax,
    Sit {
        permanent: bool,
    },
    Busy,
    NoAnswer,
    InvalidNumber,
    /// 603 Decline (the callee's refusal).
    Rejected,
    /// The trunk refused the call (see [`Failure::is_trunk_refusal`]).
    TrunkRefused,
    Congestion,
    NetworkFailure,
    DeadAir,
    /// The callee hung up before being connected (not an abandon: the
    /// window had not run out).
    HungUpBeforeConnect,
    /// RTP stopped flowing on an answered call.
    MediaTimeout,
}

impl AttemptResult {
    /// Live answers are the denominator of the abandonment rate.
    pub fn is_live_answer(self) -> bool {
        matches!(self, AttemptResult::Connected | AttemptResult::Abandoned)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub result: AttemptResult,
    pub sip_code: Option<u16>,
    pub agent: Option<String>,
    /// INVITE → first provisional (post-dial delay).
    pub pdd: Option<Duration>,
    /// INVITE → answer.
    pub answered_after: Option<Duration>,
    /// Answer → CPA verdict.
    pub verdict_after_answer: Option<Duration>,
    /// Agent assigned → customer spliced into the agent's leg: the time
    /// the dialer itself takes to connect (the customer hears the agent at
    /// the splice; the agent hears the zip tone, then the customer).
    pub connect_latency: Option<Duration>,
    /// Human verdict → an agent assigned: the wait for a free agent (zero
    /// when one was ready).
    pub agent_wait: Option<Duration>,
    /// End of greeting → bridged: what the 2-second rule measures.
    pub greeting_to_agent: Option<Duration>,
    /// A busy or unavailable callee's Retry-After (486, 600, 480: "call me
    /// again after", RFC 3261 §21.4): the record waits at least this long.
    pub callee_retry_after: Option<Duration>,
    /// The agents who had the call before `agent`, in order: each handed
    /// it on with a transfer.
    pub transferred_from: Vec<String>,
    /// The outside number the last agent handed the customer to (an
    /// outside transfer): the call went on there without an agent.
    pub transferred_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Give up ringing (CANCEL).
    Cancel,
    /// The ring timeout: CANCEL, but keep a 200 that crosses it (a person
    /// picked up as we gave up) and report it as the answer.
    CancelRinging,
    /// End the answered call (BYE).
    Hangup,
    /// Put this attempt in the queue for the next free agent.
    RequestAgent,
    /// Take it out of that queue.
    WithdrawAgentRequest,
    /// The agent hears the zip tone (only the agent).
    PlayZipTone {
        agent: String,
    },
    /// Splice the customer into the agent's reservation leg.
    Bridge {
        agent: String,
    },
    /// A reserved agent is no longer needed (customer gone).
    ReleaseAgent {
        agent: String,
    },
    /// The transfer is done: the customer is in `to`'s leg, and `from` is
    /// off the call.
    Transferred {
        from: String,
        to: String,
    },
    /// The transfer failed (`to`'s phone went away, or its splice took
    /// too long): splice the customer back into `from`'s leg.
    TransferFailed {
        from: String,
        to: String,
    },
    /// The call ended during its transfer (`why`): `to` is released.
    TransferCancelled {
        from: String,
        to: String,
        why: &'static str,
    },
    /// Dial the outside `number` the customer is being transferred to
    /// (through the trunk, no call-progress analysis) as the call's
    /// outside `line` (its count of them: reports name it).
    DialOutside {
        number: String,
        line: u32,
    },
    /// The outside number answered: splice the customer into its line.
    ConnectOutside {
        number: String,
    },
    /// End the call's outside `line` (CANCEL while it rings, else BYE).
    HangUpOutside {
        line: u32,
    },
    /// The customer is with the outside `number` now; `from`, who
    /// transferred it, is off the call and wraps it up.
    HandedOff {
        from: String,
        number: String,
    },
    /// The outside transfer failed (`why`): the customer stays with `from`
    /// (`splice_back`: its leg had left `from`'s and goes back, on hold).
    OutsideTransferFailed {
        from: String,
        number: String,
        why: String,
        splice_back: bool,
    },
    /// The consultation of `to` by `from` is over: the two agents stop
    /// hearing each other. `to` is released (`release`: the consultation
    /// was ended, `why`, or the call is over), or takes the customer next
    /// (a transfer completed: [`Action::PlayZipTone`] follows).
    ConsultationOver {
        from: String,
        to: String,
        release: bool,
        why: Option<&'static str>,
    },
    Play(Prompt),
    Finished(Outcome),
}

#[derive(Debug, Clone)]
pub struct AttemptSettings {
    pub ring_timeout: Duration,
    /// Longest the analyser may take after the answer before we act as if
    /// it said [`Verdict::Unknown`].
    pub max_analysis: Duration,
    pub machine_action: MachineAction,
    /// With `LeaveMessage`: how long to wait for a beep before speaking
    /// anyway (many greetings end with no beep).
    pub max_beep_wait: Duration,
    /// With `ConnectAgent`: how long a machine may wait for an agent.
    pub machine_agent_wait: Duration,
    pub has_abandon_prompt: bool,
    /// Silence and not-sure go to an agent (a person may be there; hanging
    /// up on them is an abandon in the UK) rather than being dropped.
    pub unsure_to_agent: bool,
    /// "Connect first, classify in background": every answer goes to an
    /// agent at once (the 2-second clock runs from the answer); the
    /// analyser's verdict is recorded, and only fax and SIT end the call.
    pub connect_first: bool,
}

impl Default for AttemptSettings {
    fn default() -> Self {
        Self {
            ring_timeout: Duration::from_secs(25),
            max_analysis: Duration::from_secs(5),
            machine_action: MachineAction::Hangup,
            max_beep_wait: Duration::from_secs(20),
            machine_agent_wait: Duration::from_secs(10),
            has_abandon_prompt: true,
            unsure_to_agent: true,
            connect_first: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Dialing,
    Ringing,
    /// The ring timeout sent a CANCEL: its 487 ends the attempt as no
    /// answer, a 200 that crossed it is answered as any other (hanging up
    /// on the person who just picked up would be a silent call); `until`
    /// bounds the wait should neither come.
    Cancelling {
        until: Instant,
    },
    /// Answered; the analyser is listening.
    Analysing,
    /// Waiting for a free agent until `deadline`; `live` when a person is
    /// there (the abandon clock), false for a machine sent to an agent.
    AwaitingAgent {
        deadline: Instant,
        live: bool,
    },
    /// The agent hears the zip tone. For a live person the abandon
    /// `deadline` still runs: if the tone has not ended by then the bridge
    /// happens anyway and the rest of the tone is cut.
    Connecting {
        agent: String,
        deadline: Option<Instant>,
    },
    Bridged {
        agent: String,
    },
    /// The agent `from` hands the customer to the agent `to` (a blind
    /// transfer): `to` hears the zip tone, then the customer is moved into
    /// its leg. Until that splice is done the call stays `from`'s (its
    /// wrap-up, should the customer hang up meanwhile); by `until` it goes
    /// back to `from`.
    Transferring {
        from: String,
        to: String,
        until: Instant,
    },
    /// The agent `from`, bridged with the customer, talks with the agent
    /// `to` (reserved for this call) before handing the customer on: a
    /// consultation (warm) transfer. The customer is on hold while the two
    /// talk privately, and hears both while off hold (a three-way
    /// conference). It ends in a transfer to `to`
    /// ([`Attempt::transfer`]), or back to `Bridged` with `from`
    /// ([`Attempt::end_consultation`]). No clock runs: a consultation
    /// lasts as long as the agents talk.
    Consulting {
        from: String,
        to: String,
    },
    /// The agent `from` transfers the customer to an outside `number` (a
    /// blind transfer through the trunk): the number rings while the
    /// customer stays with `from`; once it answers (`answered`) the
    /// customer is spliced into its line. By `until` the transfer is given
    /// up and the customer stays with `from`.
    /// `line`: the call's count of outside lines (reports of an earlier
    /// one are stale). Once answered, `until` bounds the splice.
    TransferringOut {
        from: String,
        number: String,
        line: u32,
        until: Instant,
        answered: bool,
    },
    /// The customer talks with the outside `number`, bridged by the
    /// dialer on the call's outside `line`; `from`, who transferred it, is
    /// off the call (its wrap-up). Ends when either side hangs up.
    HandedOff {
        from: String,
        number: String,
        line: u32,
    },
    WaitingForBeep {
        deadline: Instant,
    },
    Playing(Prompt),
    Done,
}

#[derive(Debug)]
pub struct Attempt {
    pub id: u64,
    settings: AttemptSettings,
    phase: Phase,
    invited_at: Instant,
    answered_at: Option<Instant>,
    human_at: Option<Instant>,
    greeting_ended: Option<Instant>,
    /// When the agent now being connected was assigned.
    assigned_at: Option<Instant>,
    /// The agent being connected has a per-call phone that is ringing:
    /// nothing is spliced until it answers, and the 2-second window may
    /// close first.
    agent_phone_ringing: bool,
    /// Consultations started on this call: the latest one's number (the
    /// shell's media names a consultation by the call and this).
    consultations: u32,
    /// Outside lines dialed for this call (transfers to outside numbers):
    /// the latest one's number.
    outside_lines: u32,
    outcome: Outcome,
    /// Result to report when the prompt being played ends.
    result_after_prompt: AttemptResult,
    actions: VecDeque<Action>,
}

impl Attempt {
    /// The INVITE leaves now.
    pub fn new(id: u64, settings: AttemptSettings, now: Instant) -> Self {
        Self {
            id,
            settings,
            phase: Phase::Dialing,
            invited_at: now,
            answered_at: None,
            human_at: None,
            greeting_ended: None,
            assigned_at: None,
            agent_phone_ringing: false,
            consultations: 0,
            outside_lines: 0,
            outcome: Outcome {
                result: AttemptResult::NetworkFailure,
                sip_code: None,
                agent: None,
                pdd: None,
                answered_after: None,
                verdict_after_answer: None,
                connect_latency: None,
                agent_wait: None,
                greeting_to_agent: None,
                callee_retry_after: None,
                transferred_from: Vec::new(),
                transferred_to: None,
            },
            result_after_prompt: AttemptResult::Machine,
            actions: VecDeque::new(),
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Agent assigned → `now`: the connect latency if the splice happens
    /// now (for a live answer).
    pub fn connect_latency_so_far(&self, now: Instant) -> Option<Duration> {
        self.human_at?;
        self.assigned_at
            .map(|assigned_at| now.saturating_duration_since(assigned_at))
    }

    /// Human verdict → agent assigned, once an agent was assigned.
    pub fn agent_wait(&self) -> Option<Duration> {
        self.outcome.agent_wait
    }

    /// A live person is waiting for an agent, and since when the greeting ended.
    pub fn waiting_live_since(&self) -> Option<Instant> {
        match self.phase {
            Phase::AwaitingAgent { live: true, .. } => self.greeting_ended,
            _ => None,
        }
    }

    fn finish(&mut self, result: AttemptResult) {
        self.outcome.result = result;
        self.phase = Phase::Done;
        self.actions
            .push_back(Action::Finished(self.outcome.clone()));
    }

    /// Longest a ring timeout's CANCEL waits for the INVITE's final
    /// response: past the SIP layer's own 64·T1 (32 s), which reports one.
    pub const CANCEL_WAIT: Duration = Duration::from_secs(40);

    fn hang_up(&mut self, result: AttemptResult) {
        self.actions.push_back(Action::Hangup);
        self.finish(result);
    }

    /// 18x received.
    pub fn on_provisional(&mut self, now: Instant) {
        if self.phase == Phase::Dialing {
            self.outcome.pdd = Some(now.saturating_duration_since(self.invited_at));
            self.phase = Phase::Ringing;
        }
    }

    /// A final non-2xx response (with its Retry-After, if any), or a
    /// transport failure.
    pub fn on_failed(
        &mut self,
        failure: Failure,
        sip_code: Option<u16>,
        retry_after: Option<Duration>,
        _now: Instant,
    ) {
        if let Phase::Cancelling { .. } = self.phase {
            // The ring timeout's CANCEL answered (487), or anything else
            // that ended the INVITE meanwhile: it rang out.
            self.outcome.sip_code = sip_code.or(Some(487));
            self.finish(AttemptResult::NoAnswer);
            return;
        }
        if !matches!(self.phase, Phase::Dialing | Phase::Ringing) {
            return;
        }
        self.outcome.sip_code = sip_code;
        // A 503's Retry-After is the trunk's (the trunk health holds every
        // call for it); a busy or absent callee's is theirs.
        if matches!(failure, Failure::Busy | Failure::NoAnswer) {
            self.outcome.callee_retry_after = retry_after;
        }
        self.finish(match failure {
            _ if failure.is_trunk_refusal(sip_code) => AttemptResult::TrunkRefused,
            Failure::Busy => AttemptResult::Busy,
            Failure::NoAnswer => AttemptResult::NoAnswer,
            Failure::InvalidNumber => AttemptResult::InvalidNumber,
            Failure::Rejected => AttemptResult::Rejected,
            Failure::Congestion => AttemptResult::Congestion,
            Failure::NetworkFailure => AttemptResult::NetworkFailure,
        });
    }

    /// Gives up on the call before anyone answers: at the ring timeout, or
    /// when the agent it was placed for cancels it while it rings (a
    /// previewed record: the wrong one, a second thought). A CANCEL as at
    /// the ring timeout, so the result is a no answer; an answer that
    /// crosses the CANCEL is a person on the line, taken as any other.
    pub fn cancel_ringing(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Dialing | Phase::Ringing) {
            self.actions.push_back(Action::CancelRinging);
            self.phase = Phase::Cancelling {
                until: now + Self::CANCEL_WAIT,
            };
        }
    }

    /// Not answered yet: dialing, ringing, or being cancelled.
    pub fn is_unanswered(&self) -> bool {
        matches!(
            self.phase,
            Phase::Dialing | Phase::Ringing | Phase::Cancelling { .. }
        )
    }

    /// 200 OK to the INVITE.
    pub fn on_answered(&mut self, now: Instant) {
        if !matches!(
            self.phase,
            Phase::Dialing | Phase::Ringing | Phase::Cancelling { .. }
        ) {
            return;
        }
        self.outcome.sip_code = Some(200);
        self.answered_at = Some(now);
        self.outcome.answered_after = Some(now.saturating_duration_since(self.invited_at));
        self.phase = Phase::Analysing;
        if self.settings.connect_first {
            self.await_live_agent(now, now);
        }
    }

    /// A verdict from the analyser (early media before the answer, or audio after it).
    pub fn on_verdict(&mut self, verdict: Verdict, now: Instant) {
        match self.phase {
            Phase::Dialing | Phase::Ringing => self.on_early_verdict(verdict),
            Phase::Analysing => {
                if let Some(answered) = self.answered_at {
                    self.outcome.verdict_after_answer =
                        Some(now.saturating_duration_since(answered));
                }
                self.on_answered_verdict(verdict, now);
            }
            Phase::WaitingForBeep { .. } if verdict == Verdict::Beep => {
                self.play(Prompt::Voicemail, AttemptResult::VoicemailLeft);
            }
            Phase::AwaitingAgent { .. }
            | Phase::Connecting { .. }
            | Phase::Bridged { .. }
            | Phase::Transferring { .. }
            | Phase::TransferringOut { .. }
            | Phase::Consulting { .. }
                if self.settings.connect_first =>
            {
                self.on_background_verdict(verdict, now)
            }
            // The analyser corrected a "human" (a beep right after what
            // sounded like a short answer: it was a greeting). Not yet with
            // an agent: treat it as the machine it is.
            Phase::AwaitingAgent { live: true, .. }
                if matches!(verdict, Verdict::Machine | Verdict::Beep) =>
            {
                self.actions.push_back(Action::WithdrawAgentRequest);
                self.human_at = None;
                self.greeting_ended = None;
                self.on_machine(verdict == Verdict::Beep, now);
            }
            _ => {}
        }
    }

    /// A verdict for a call already on its way to (or with) an agent: only
    /// a fax or an intercept ends it; the agent judges everything else.
    fn on_background_verdict(&mut self, verdict: Verdict, now: Instant) {
        if self.outcome.verdict_after_answer.is_none()
            && let Some(answered) = self.answered_at
        {
            self.outcome.verdict_after_answer = Some(now.saturating_duration_since(answered));
        }
        let result = match verdict {
            Verdict::Fax => AttemptResult::Fax,
            Verdict::Sit { permanent } => AttemptResult::Sit { permanent },
            _ => return,
        };
        match self.phase.clone() {
            Phase::AwaitingAgent { .. } => self.actions.push_back(Action::WithdrawAgentRequest),
            Phase::Connecting { agent, .. } => {
                self.actions.push_back(Action::ReleaseAgent { agent })
            }
            Phase::Transferring { from, to, .. } => {
                self.actions.push_back(Action::TransferCancelled {
                    from,
                    to,
                    why: "the line turned out to be a fax or an intercept",
                })
            }
            Phase::Consulting { from, to } => self.actions.push_back(Action::ConsultationOver {
                from,
                to,
                release: true,
                why: Some("the line turned out to be a fax or an intercept"),
            }),
            Phase::TransferringOut { line, .. } => {
                self.actions.push_back(Action::HangUpOutside { line })
            }
            _ => {}
        }
        self.hang_up(result);
    }

    fn on_early_verdict(&mut self, verdict: Verdict) {
        // Tones on early media end the attempt without waiting for the
        // carrier's final response; everything else waits for the answer.
        let result = match verdict {
            Verdict::Sit { permanent } => AttemptResult::Sit { permanent },
            Verdict::Busy => AttemptResult::Busy,
            Verdict::Reorder => AttemptResult::Congestion,
            _ => return,
        };
        self.actions.push_back(Action::Cancel);
        self.finish(result);
    }

    fn on_answered_verdict(&mut self, verdict: Verdict, now: Instant) {
        match verdict {
            Verdict::Human { greeting_ended } => {
                self.await_live_agent(greeting_ended.min(now), now)
            }
            Verdict::Silence | Verdict::Unknown if self.settings.unsure_to_agent => {
                self.await_live_agent(now, now)
            }
            Verdict::Silence => self.hang_up(AttemptResult::DeadAir),
            Verdict::Unknown => self.hang_up(AttemptResult::DeadAir),
            Verdict::Machine | Verdict::Beep => self.on_machine(verdict == Verdict::Beep, now),
            Verdict::Fax => self.hang_up(AttemptResult::Fax),
            Verdict::Sit { permanent } => self.hang_up(AttemptResult::Sit { permanent }),
            Verdict::Busy => self.hang_up(AttemptResult::Busy),
            Verdict::Reorder => self.hang_up(AttemptResult::Congestion),
        }
    }

    fn await_live_agent(&mut self, greeting_ended: Instant, now: Instant) {
        self.human_at = Some(now);
        self.greeting_ended = Some(greeting_ended);
        let deadline = greeting_ended + ABANDON_WINDOW;
        if now >= deadline {
            self.abandon();
            return;
        }
        self.phase = Phase::AwaitingAgent {
            deadline,
            live: true,
        };
        self.actions.push_back(Action::RequestAgent);
    }

    fn on_machine(&mut self, beep_heard: bool, now: Instant) {
        match self.settings.machine_action {
            MachineAction::Hangup => self.hang_up(AttemptResult::Machine),
            MachineAction::LeaveMessage if beep_heard => {
                self.play(Prompt::Voicemail, AttemptResult::VoicemailLeft)
            }
            MachineAction::LeaveMessage => {
                self.phase = Phase::WaitingForBeep {
                    deadline: now + self.settings.max_beep_wait,
                };
            }
            MachineAction::ConnectAgent => {
                self.phase = Phase::AwaitingAgent {
                    deadline: now + self.settings.machine_agent_wait,
                    live: false,
                };
                self.actions.push_back(Action::RequestAgent);
            }
        }
    }

    fn play(&mut self, prompt: Prompt, result: AttemptResult) {
        self.result_after_prompt = result;
        self.phase = Phase::Playing(prompt);
        self.actions.push_back(Action::Play(prompt));
    }

    fn abandon(&mut self) {
        self.outcome.agent = None;
        if self.settings.has_abandon_prompt {
            self.play(Prompt::Abandon, AttemptResult::Abandoned);
        } else {
            self.hang_up(AttemptResult::Abandoned);
        }
    }

    /// The dispatcher reserved `agent` for this attempt.
    pub fn on_agent_assigned(&mut self, agent: &str, now: Instant) -> bool {
        let Phase::AwaitingAgent { deadline, live } = self.phase else {
            return false;
        };
        self.assigned_at = Some(now);
        if let Some(human_at) = self.human_at {
            self.outcome.agent_wait = Some(now.saturating_duration_since(human_at));
        }
        self.outcome.agent = Some(agent.to_string());
        self.phase = Phase::Connecting {
            agent: agent.to_string(),
            deadline: live.then_some(deadline),
        };
        self.actions.push_back(Action::PlayZipTone {
            agent: agent.to_string(),
        });
        true
    }

    /// The bridged agent hands the customer to `to` (reserved for this
    /// call by the engine): `to` hears the zip tone, and the customer is
    /// moved into its leg when it ends ([`Attempt::on_zip_tone_done`]).
    /// False (nothing changes) unless the call is bridged to another agent.
    /// From a consultation, only to the agent consulted: the consultation
    /// ends and the customer goes to that agent (a warm transfer).
    pub fn transfer(&mut self, to: &str, now: Instant) -> bool {
        let from = match &self.phase {
            Phase::Bridged { agent } => agent.clone(),
            Phase::Consulting {
                from,
                to: consulted,
            } if consulted == to => {
                let from = from.clone();
                self.actions.push_back(Action::ConsultationOver {
                    from: from.clone(),
                    to: to.to_string(),
                    release: false,
                    why: None,
                });
                from
            }
            _ => return false,
        };
        if from == to {
            return false;
        }
        self.phase = Phase::Transferring {
            from: from.clone(),
            to: to.to_string(),
            until: now + TRANSFER_WAIT,
        };
        self.actions.push_back(Action::PlayZipTone {
            agent: to.to_string(),
        });
        true
    }

    /// The bridged agent consults `to` (reserved for this call by the
    /// engine) before handing the customer on. False (nothing changes)
    /// unless the call is bridged to another agent.
    pub fn consult(&mut self, to: &str) -> bool {
        let Phase::Bridged { agent: from } = &self.phase else {
            return false;
        };
        if from == to {
            return false;
        }
        self.phase = Phase::Consulting {
            from: from.clone(),
            to: to.to_string(),
        };
        self.consultations += 1;
        true
    }

    /// The number of the latest consultation on this call (1 for the
    /// first; 0: none yet).
    pub fn consultation_number(&self) -> u32 {
        self.consultations
    }

    /// The consultation ends without a transfer (`why`: either agent
    /// ended it, or the consulted one's phone went away): the customer
    /// stays with the consulting agent. False unless consulting.
    pub fn end_consultation(&mut self, why: &'static str) -> bool {
        let Phase::Consulting { from, to } = self.phase.clone() else {
            return false;
        };
        self.phase = Phase::Bridged {
            agent: from.clone(),
        };
        self.actions.push_back(Action::ConsultationOver {
            from,
            to,
            release: true,
            why: Some(why),
        });
        true
    }

    /// The agents of a consultation: (consulting, consulted).
    pub fn consultation(&self) -> Option<(&str, &str)> {
        match &self.phase {
            Phase::Consulting { from, to } => Some((from, to)),
            _ => None,
        }
    }

    /// The bridged agent hears a voicemail greeting (the analyser took it
    /// for a person, or the campaign sends machines to agents) and drops
    /// the campaign's recorded message into it: the customer leg plays
    /// the voicemail prompt and hangs up; the result is a voicemail left.
    /// False (nothing changes) unless the call is bridged.
    pub fn drop_voicemail(&mut self) -> bool {
        if !matches!(self.phase, Phase::Bridged { .. }) {
            return false;
        }
        self.play(Prompt::Voicemail, AttemptResult::VoicemailLeft);
        true
    }

    /// The bridged agent transfers the customer to the outside `number`:
    /// it is dialed, and the customer is spliced into its line when it
    /// answers ([`Attempt::on_outside_answered`]). False (nothing changes)
    /// unless the call is bridged.
    pub fn transfer_outside(&mut self, number: &str, now: Instant) -> bool {
        let Phase::Bridged { agent } = &self.phase else {
            return false;
        };
        self.outside_lines += 1;
        let line = self.outside_lines;
        self.phase = Phase::TransferringOut {
            from: agent.clone(),
            number: number.to_string(),
            line,
            until: now + OUTSIDE_RING_WAIT,
            answered: false,
        };
        self.actions.push_back(Action::DialOutside {
            number: number.to_string(),
            line,
        });
        true
    }

    /// The call's outside line now (ringing, or bridged with the
    /// customer).
    fn current_outside_line(&self) -> Option<u32> {
        match self.phase {
            Phase::TransferringOut { line, .. } | Phase::HandedOff { line, .. } => Some(line),
            _ => None,
        }
    }

    /// Outside `line` answered: the customer's splice into it follows,
    /// within [`TRANSFER_WAIT`]. False when the call has no use for that
    /// line (an earlier one, given up; the call over): it is to be hung
    /// up. (A second report of an answer changes nothing.)
    pub fn on_outside_answered(&mut self, line: u32, now: Instant) -> bool {
        if self.current_outside_line() != Some(line) {
            return false;
        }
        if let Phase::TransferringOut {
            number,
            until,
            answered: answered @ false,
            ..
        } = &mut self.phase
        {
            *answered = true;
            *until = now + TRANSFER_WAIT;
            let number = number.clone();
            self.actions.push_back(Action::ConnectOutside { number });
        }
        true
    }

    /// Outside `line` ended (`why`: refused, unanswered, or hung up by the
    /// other side). Before the customer is handed over, the transfer fails;
    /// after, the customer is hung up too. A report of an earlier line is
    /// stale.
    pub fn on_outside_ended(&mut self, line: u32, why: String) {
        if self.current_outside_line() != Some(line) {
            return;
        }
        match self.phase.clone() {
            Phase::TransferringOut { .. } => self.outside_transfer_failed(why, false),
            Phase::HandedOff { .. } => {
                let result = self.bridged_result();
                self.hang_up(result);
            }
            _ => {}
        }
    }

    /// The agent calls off the outside transfer while the number rings:
    /// the line is cancelled, the customer stays with the agent. False
    /// unless the number is still ringing.
    pub fn cancel_outside_transfer(&mut self) -> bool {
        if !matches!(
            self.phase,
            Phase::TransferringOut {
                answered: false,
                ..
            }
        ) {
            return false;
        }
        self.outside_transfer_failed(OUTSIDE_TRANSFER_CANCELLED.into(), true);
        true
    }

    /// The outside transfer is given up (`why`); `hang_up_line`: the
    /// outside line is still up (or ringing) and is ended.
    fn outside_transfer_failed(&mut self, why: String, hang_up_line: bool) {
        let Phase::TransferringOut {
            from,
            number,
            line,
            answered,
            ..
        } = self.phase.clone()
        else {
            return;
        };
        if hang_up_line {
            self.actions.push_back(Action::HangUpOutside { line });
        }
        self.phase = Phase::Bridged {
            agent: from.clone(),
        };
        // Once answered, the customer's leg may have left the agent's.
        self.actions.push_back(Action::OutsideTransferFailed {
            from,
            number,
            why,
            splice_back: answered,
        });
    }

    /// The outside number being spliced in (answered, splice asked for).
    pub fn connecting_outside(&self) -> Option<&str> {
        match &self.phase {
            Phase::TransferringOut {
                number,
                answered: true,
                ..
            } => Some(number),
            _ => None,
        }
    }

    /// Whether the call holds a second trunk line (an outside transfer
    /// ringing or handed over).
    pub fn holds_outside_line(&self) -> bool {
        matches!(
            self.phase,
            Phase::TransferringOut { .. } | Phase::HandedOff { .. }
        )
    }

    /// The transfer's next agent is gone or too slow: the customer goes
    /// back to the agent who transferred it, still bridged to it.
    fn transfer_failed(&mut self) {
        let Phase::Transferring { from, to, .. } = self.phase.clone() else {
            return;
        };
        self.phase = Phase::Bridged {
            agent: from.clone(),
        };
        self.actions.push_back(Action::TransferFailed { from, to });
    }

    /// The agent being connected went away (phone dropped, logout ran
    /// out): wait for another one, inside the same deadline. A transfer's
    /// next agent: the customer goes back to the agent who transferred it.
    pub fn on_agent_lost(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Transferring { .. }) {
            self.transfer_failed();
            return;
        }
        if self.connecting_outside().is_some() {
            // The outside line's media is gone: so is the line.
            self.outside_transfer_failed("the outside line's media failed".into(), true);
            return;
        }
        if self.end_consultation("the consulted agent is gone (phone lost, or logged out)") {
            return;
        }
        let Phase::Connecting { deadline, .. } = self.phase else {
            return;
        };
        self.agent_phone_ringing = false;
        self.outcome.agent = None;
        let live = deadline.is_some();
        let deadline = deadline.unwrap_or(now + self.settings.machine_agent_wait);
        if now >= deadline {
            if live {
                self.abandon();
            } else {
                self.hang_up(AttemptResult::Machine);
            }
            return;
        }
        self.phase = Phase::AwaitingAgent { deadline, live };
        self.actions.push_back(Action::RequestAgent);
    }

    /// The agent being connected is rung on a per-call phone: the splice
    /// waits for its answer ([`Attempt::on_agent_phone_answered`]).
    pub fn on_agent_phone_ringing(&mut self) {
        if matches!(self.phase, Phase::Connecting { .. }) {
            self.agent_phone_ringing = true;
        }
    }

    /// The per-call phone answered: the zip tone and the splice follow.
    pub fn on_agent_phone_answered(&mut self) -> bool {
        let was_ringing =
            self.agent_phone_ringing && matches!(self.phase, Phase::Connecting { .. });
        self.agent_phone_ringing = false;
        was_ringing
    }

    /// The agent this call is being connected to (zip tone, splice),
    /// a transfer's next agent included.
    pub fn connecting_agent(&self) -> Option<&str> {
        match &self.phase {
            Phase::Connecting { agent, .. } | Phase::Transferring { to: agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// The agent this call is bridged with (during a transfer, the agent
    /// handing it on: the customer is in its leg until the move).
    pub fn bridged_agent(&self) -> Option<&str> {
        match &self.phase {
            Phase::Bridged { agent }
            | Phase::Transferring { from: agent, .. }
            | Phase::TransferringOut { from: agent, .. }
            | Phase::Consulting { from: agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// Whether the agent being connected is a per-call phone still ringing.
    pub fn agent_phone_ringing(&self) -> bool {
        self.agent_phone_ringing && matches!(self.phase, Phase::Connecting { .. })
    }

    /// The zip tone ended on the agent's leg: bridge now.
    pub fn on_zip_tone_done(&mut self, now: Instant) {
        if let Phase::TransferringOut {
            from,
            number,
            line,
            answered: true,
            ..
        } = self.phase.clone()
        {
            self.outcome.transferred_to = Some(number.clone());
            self.phase = Phase::HandedOff {
                from: from.clone(),
                number: number.clone(),
                line,
            };
            self.actions.push_back(Action::HandedOff { from, number });
            return;
        }
        if let Phase::Transferring { from, to, .. } = self.phase.clone() {
            // The first connection's figures (the 2-second rule, the
            // connect latency) stay those of the first agent.
            self.outcome.transferred_from.push(from.clone());
            self.outcome.agent = Some(to.clone());
            self.phase = Phase::Bridged { agent: to.clone() };
            self.actions.push_back(Action::Transferred { from, to });
            return;
        }
        let Phase::Connecting { agent, .. } = &self.phase else {
            return;
        };
        let agent = agent.clone();
        if let (Some(_), Some(assigned_at)) = (self.human_at, self.assigned_at) {
            self.outcome.connect_latency = Some(now.saturating_duration_since(assigned_at));
        }
        if let Some(ended) = self.greeting_ended {
            self.outcome.greeting_to_agent = Some(now.saturating_duration_since(ended));
        }
        self.actions.push_back(Action::Bridge {
            agent: agent.clone(),
        });
        self.phase = Phase::Bridged { agent };
    }

    pub fn on_prompt_done(&mut self, _now: Instant) {
        if let Phase::Playing(_) = self.phase {
            let result = self.result_after_prompt;
            self.hang_up(result);
        }
    }

    /// The callee hung up (BYE received).
    pub fn on_remote_hangup(&mut self, _now: Instant) {
        match self.phase.clone() {
            // A BYE cannot end a call that was never answered; the final
            // response will.
            Phase::Dialing | Phase::Ringing | Phase::Cancelling { .. } | Phase::Done => {}
            Phase::Analysing => self.finish(AttemptResult::HungUpBeforeConnect),
            Phase::AwaitingAgent { live, .. } => {
                self.actions.push_back(Action::WithdrawAgentRequest);
                self.finish(if live {
                    AttemptResult::HungUpBeforeConnect
                } else {
                    AttemptResult::Machine
                });
            }
            Phase::Connecting { agent, .. } => {
                self.actions.push_back(Action::ReleaseAgent { agent });
                self.finish(AttemptResult::HungUpBeforeConnect);
            }
            Phase::Bridged { .. } => self.finish(self.bridged_result()),
            // Gone during a transfer: the call was the first agent's.
            Phase::Transferring { from, to, .. } => {
                self.actions.push_back(Action::TransferCancelled {
                    from,
                    to,
                    why: "the customer hung up",
                });
                self.finish(self.bridged_result());
            }
            Phase::Consulting { from, to } => {
                self.actions.push_back(Action::ConsultationOver {
                    from,
                    to,
                    release: true,
                    why: Some("the customer hung up"),
                });
                self.finish(self.bridged_result());
            }
            Phase::TransferringOut { line, .. } | Phase::HandedOff { line, .. } => {
                self.actions.push_back(Action::HangUpOutside { line });
                self.finish(self.bridged_result());
            }
            Phase::WaitingForBeep { .. } => self.finish(AttemptResult::Machine),
            Phase::Playing(_) => {
                let result = self.result_after_prompt;
                self.finish(result);
            }
        }
    }

    fn bridged_result(&self) -> AttemptResult {
        // A machine an agent took by choice is still a machine.
        if self.human_at.is_some() {
            AttemptResult::Connected
        } else {
            AttemptResult::Machine
        }
    }

    /// The agent ended the bridged call. (An agent who hangs up during a
    /// transfer of its own leaves the customer to the next agent: that is
    /// how a blind transfer ends on a phone.)
    ///
    /// An agent whose phone hangs up during its consultation leaves the
    /// customer to the agent consulted (a warm transfer done on the
    /// phone).
    pub fn on_agent_hangup(&mut self, now: Instant) {
        match self.phase.clone() {
            Phase::Bridged { .. } => {
                let result = self.bridged_result();
                self.hang_up(result);
            }
            Phase::Consulting { to, .. } => {
                self.transfer(&to, now);
            }
            _ => {}
        }
    }

    /// RTP stopped arriving on the answered customer leg.
    pub fn on_media_timeout(&mut self, _now: Instant) {
        match self.phase.clone() {
            // Before the answer there is no media to time out.
            Phase::Dialing | Phase::Ringing | Phase::Cancelling { .. } | Phase::Done => {}
            Phase::Bridged { .. } => {
                let result = self.bridged_result();
                self.hang_up(result);
            }
            Phase::AwaitingAgent { .. } => {
                self.actions.push_back(Action::WithdrawAgentRequest);
                self.hang_up(AttemptResult::MediaTimeout);
            }
            Phase::Connecting { agent, .. } => {
                self.actions.push_back(Action::ReleaseAgent { agent });
                self.hang_up(AttemptResult::MediaTimeout);
            }
            Phase::Transferring { from, to, .. } => {
                self.actions.push_back(Action::TransferCancelled {
                    from,
                    to,
                    why: "the call ended",
                });
                let result = self.bridged_result();
                self.hang_up(result);
            }
            Phase::Consulting { from, to } => {
                self.actions.push_back(Action::ConsultationOver {
                    from,
                    to,
                    release: true,
                    why: Some("the call ended"),
                });
                let result = self.bridged_result();
                self.hang_up(result);
            }
            Phase::TransferringOut { line, .. } | Phase::HandedOff { line, .. } => {
                self.actions.push_back(Action::HangUpOutside { line });
                let result = self.bridged_result();
                self.hang_up(result);
            }
            _ => self.hang_up(AttemptResult::MediaTimeout),
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Dialing | Phase::Ringing => Some(self.invited_at + self.settings.ring_timeout),
            Phase::Analysing => self
                .answered_at
                .map(|answered| answered + self.settings.max_analysis),
            Phase::AwaitingAgent { deadline, .. } | Phase::WaitingForBeep { deadline } => {
                Some(*deadline)
            }
            Phase::Connecting { deadline, .. } => *deadline,
            Phase::Cancelling { until }
            | Phase::Transferring { until, .. }
            | Phase::TransferringOut { until, .. } => Some(*until),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.phase {
            Phase::Dialing | Phase::Ringing => self.cancel_ringing(now),
            Phase::Cancelling { .. } => {
                // Neither the 487 nor an answer came: the call is given up
                // for good (a late answer is hung up).
                self.outcome.sip_code = Some(487);
                self.hang_up(AttemptResult::NoAnswer);
            }
            Phase::Analysing => {
                if let Some(answered) = self.answered_at {
                    self.outcome.verdict_after_answer =
                        Some(now.saturating_duration_since(answered));
                }
                self.on_answered_verdict(Verdict::Unknown, now);
            }
            Phase::AwaitingAgent { live: true, .. } => {
                self.actions.push_back(Action::WithdrawAgentRequest);
                self.abandon();
            }
            Phase::AwaitingAgent { live: false, .. } => {
                self.actions.push_back(Action::WithdrawAgentRequest);
                self.hang_up(AttemptResult::Machine);
            }
            Phase::WaitingForBeep { .. } => {
                // No beep came: speak anyway so the message is recorded.
                self.play(Prompt::Voicemail, AttemptResult::VoicemailLeft);
            }
            // The window closed while the agent's per-call phone rang:
            // nobody took the customer in time.
            Phase::Connecting { ref agent, .. } if self.agent_phone_ringing => {
                self.agent_phone_ringing = false;
                self.actions.push_back(Action::ReleaseAgent {
                    agent: agent.clone(),
                });
                self.abandon();
            }
            // The window closes during the zip tone: bridge now.
            Phase::Connecting { .. } => self.on_zip_tone_done(now),
            // The next agent's splice never came: its reservation is
            // given up and the customer goes back.
            Phase::Transferring { ref to, .. } => {
                self.actions
                    .push_back(Action::ReleaseAgent { agent: to.clone() });
                self.transfer_failed();
            }
            Phase::TransferringOut { answered, .. } => self.outside_transfer_failed(
                if answered {
                    "the customer could not be put through to the outside line in time".into()
                } else {
                    format!(
                        "the outside number did not answer within {} s",
                        OUTSIDE_RING_WAIT.as_secs()
                    )
                },
                true,
            ),
            _ => {}
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
}
