//! Call-progress analysis: a sans-IO streaming analyser over 20 ms frames of
//! 8 kHz PCM. It owns the tone detectors (call-progress cadences, SIT with
//! its code, fax), the VAD and human/machine decision, the beep detector and
//! the arbitration between them.
//!
//! Arbitration: tones first. A frame that belongs to a tone is never speech,
//! so ringback or reorder cannot reach the speech classifier. The first
//! verdict wins; after a machine verdict the beep search goes on (when the
//! campaign waits for the beep). The audio is the clock: every frame is
//! 20 ms, and the shell feeds silence for lost packets, so the analyser needs
//! no timer of its own. Memory per channel is fixed (~5 KiB); no allocation
//! happens per frame.

mod settings;
mod spectrum;
mod speech;
mod tones;

use std::collections::VecDeque;

pub use settings::{CpaSettings, CpaSettingsError, MachineMode, Sensitivity};
pub use spectrum::FRAME;
use spectrum::{Features, Spectrum};
use speech::{SpeechTracker, SpeechVerdict, Thresholds};
use tones::{Progress, ToneTracker, ToneVerdict};

const FRAME_MS: u32 = 20;
/// A tone this much louder than all speech heard so far makes that
/// speech background. (12 dB would keep music under a busy tone from
/// passing for a greeting before it, but a greeting normalised to −6 dBFS
/// peaks followed by a −6 dBFS beep — `tests/fixtures/audio` — has its
/// beep ~14 dB over the greeting's loud frames.)
const TONE_OVER_SPEECH_DB: f32 = 20.0;
/// A call-progress tone held this long (ms) — a ring, longer than any
/// beep of a greeting that is still undecided — and this much (dB) louder
/// than all the speech before it: that speech was crosstalk or babble on
/// the line before the ring, not the callee. The 1 s rings (Germany,
/// Italy, China, Japan) read 960–1000 ms as runs (an edge frame, or an AGC
/// fading the ring's tail), so the bound sits under them; the longest busy
/// or reorder burst is 750 ms.
const RING_OVER_SPEECH_MS: u32 = 900;
const RING_OVER_SPEECH_DB: f32 = 10.0;
/// Speech heard only while a ring was on, at most this much (dB) louder
/// than the ring, was the ring itself.
const SPEECH_INSIDE_RING_DB: f32 = 3.0;
/// Speech heard before a busy or reorder cadence lies this much (dB) under
/// its bursts at least when it was the line's background between them (a
/// talker's loud frames are as loud as their vowels, which would be the
/// bursts; babble 10–13 dB under a tone read 1–10 dB under it).
const SPEECH_UNDER_CADENCE_DB: f32 = 2.0;
/// A ring at least this much (dB) louder than the speech heard after it
/// holds speech verdicts until the next ring could begin (`RingHold`).
const RING_OVER_BACKGROUND_DB: f32 = 6.0;
/// Speech beginning this soon (ms) after a ring far louder than it waits
/// for the ring's silence rule (`speech_just_after_a_ring`).
const AFTER_RING_ONSET_MS: u32 = 500;
/// A single element this long (ms) may be a ring (the tone plans' shortest
/// single ring, 1000 ms, less its tolerance), and the silence after it that
/// makes it ringback (`tones::Tones::cadence`).
const RING_MIN_MS: u32 = 750;
const RING_SILENCE_RULE_MS: u32 = 1300;
/// A ringback verdict waits this long (ms) after the last speech frame: a
/// word's syllables have dips the VAD leaves speech in.
const RING_SILENCE_AFTER_SPEECH_MS: u32 = 200;
/// The longest silence between rings of any plan (PT: 5 s) and 15 %.
const RING_HOLD_MS: u32 = 5800;
/// A next ring matches the held one within these: length (share), level
/// (dB) and frequency (Hz).
const NEXT_RING_LENGTH_TOL: f32 = 0.2;
const NEXT_RING_LEVEL_DB: f32 = 6.0;
const NEXT_RING_HZ: f32 = 20.0;
/// A ring like the held one, steady this long, is taken as the next ring
/// before it ends.
const NEXT_RING_ONSET_MS: u32 = 300;
/// A beep-like run within this long (ms) of the end of a like
/// call-progress element at least `CADENCE_REPEAT_MIN_MS` long repeats it
/// (see `Analyser::repeats_last_progress_element`). The gaps inside every
/// plan's cadence are ≤ 500 ms but for the silences between rings.
const CADENCE_REPEAT_GAP_MS: u32 = 600;
const CADENCE_REPEAT_MIN_MS: u32 = 200;
/// A human verdict waits while a call-progress tone this much (dB) louder
/// than the caller, steady for `STEADY_TONE_MS`, is on.
const TONE_OVER_CALLER_DB: f32 = 4.0;
const STEADY_TONE_MS: u32 = 100;
/// Less speech than this (ms) after such a burst waits up to
/// `WISP_WAIT_MS` after the burst's end for the cadence to go on: longer
/// than the 1.3 s of silence after a ring that make it ringback.
const WISP_BETWEEN_TONES_MS: u32 = 300;
const WISP_WAIT_MS: u32 = 1400;
/// A ringback verdict is void when speech this much (dB) louder than the
/// ring element was heard: a voice over the ring is the callee.
const SPEECH_OVER_RING_DB: f32 = 10.0;
/// A beep is not more than this far under the caller's loud frames: it is
/// the machine's own tone, recorded with the greeting (it lies 0–9 dB
/// under them on the corpora). A steady note far under the voice is the
/// room's music — a flute-like melody note is as pure and steady as a
/// beep — and it put beeps on humans and inside greetings.
const BEEP_BELOW_CALLER_DB: f32 = 14.0;
/// A beep stands at least this far above every beep-like tone heard after
/// answer and before the caller first spoke (`background_tone_db`): a
/// melody's notes come one after another at one level, before the caller
/// answers as after, while a voicemail's beep is the first tone after its
/// greeting. (A melody note 10–13 dB under the voice passes
/// `BEEP_BELOW_CALLER_DB`.)
const BEEP_OVER_BACKGROUND_DB: f32 = 6.0;
/// A tone counts as background only if it ended at least this long (ms)
/// before the caller's first speech: a greeting's first vowel can be as
/// pure and steady as a note, and the speech that follows it opens right
/// after it (on the default and festival splits, 0–40 ms).
const BACKGROUND_BEFORE_ONSET_MS: u32 = 100;
/// ... and only if it held as a beep for this long (ms): a note of a
/// melody lasts 0.2–0.7 s; the vowels pure enough to pass the beep tests
/// held 120–140 ms (see `BEEP_SURE_MS`).
const BACKGROUND_MIN_MS: u32 = 200;
/// Background tone runs kept (the loudest).
const BACKGROUND_RUNS: usize = 4;
/// Speech that must have been heard before a beep: a greeting, not a tone
/// after crosstalk. Not more than a short greeting's worth: on a hum line
/// the VAD loses the frames where the hum's line outweighs the voice, and
/// "Leave a message." can read as 240 ms of speech.
const BEEP_AFTER_SPEECH_MS: u32 = 200;
/// After a human verdict the beep search goes on this long, and this long
/// after the "caller's" last speech while they keep talking: a greeting
/// followed by a beep is a machine after all.
pub const HUMAN_BEEP_WINDOW_MS: u32 = 1000;
/// A steady tonal run that starts out of speech is a held vowel only when
/// that speech began at least this long before the run (ms): more than the
/// 3-frame onset (60 ms). A tone's own first windows — the onset ramp, a
/// beating pair's swing, clipping's intermodulation — can read as three
/// voiced frames and open an utterance right before the run (a clipped UK
/// ring in pink noise was then heard as a 440 ms "held vowel" and a human).
const HELD_VOWEL_LEAD_MS: u32 = 80;
/// ... and this long when the "caller" started talking again within that
/// first window: a greeting that paused after its first phrase, whose beep
/// may come seconds later.
pub const RESUMED_BEEP_WINDOW_MS: u32 = 6000;
/// A run of two resolved peaks in the ratio 3 : 2 or 4 : 3 is a voice's
/// 2nd and 3rd (or 3rd and 4th) harmonics (its fundamental, 80–330 Hz,
/// lies under the line's 300 Hz cut): a monotone TTS "Yes?" is one steady
/// vowel read as such a pair from its first frame (espeak and flite at
/// 3 : 2, festival's HTS voice at 553 + 737 Hz, 4 : 3). The one dual tone
/// plan near 4 : 3, 480 + 620 Hz (1.29), is excluded by frequency
/// (`tones::near_dual_plan`). Tolerance on the ratio, relative.
const HARMONIC_PAIR_TOLERANCE: f32 = 0.03;
/// ... and it is the caller's only when no more than this (dB) under the
/// caller's loud frames (a second talker's vowel is not).
const HARMONIC_PAIR_BELOW_CALLER_DB: f32 = 10.0;
/// A human verdict is corrected to machine when the "caller" goes on
/// talking with no pause longer than `READ_ON_PAUSE_MS` until the speech span
/// (first onset to last speech) reaches `READ_ON_SPAN_MS`: a greeting whose
/// sentence pause outlasted the end-of-answer wait (festival's diphone voices
/// pause 0.57–0.78 s at a full stop at 150–200 wpm) and read on. A person who
/// gets no reply waits longer than that before speaking again (the corpus:
/// ≥ 1.2 s), and the
/// longest answers (slow "Good morning, Baker and Sons, how can I help?")
/// span ≤ 3.9 s even with their comma pauses: the span limit keeps 0.6 s of
/// margin over them, above `machine_span_ms` (3.2 s), which applies to one
/// utterance only.
pub const READ_ON_PAUSE_MS: u32 = 1000;
pub const READ_ON_SPAN_MS: u32 = 4500;
/// A beep-like run is only a beep once the line has stayed free of speech
/// this long after it ended (ms): the recording follows a beep, while a held
/// vowel (the 2nd harmonic of a flat synthetic voice holds 94–98 % of the
/// band for 120–140 ms) runs straight on into the next syllable, which came
/// back within 40–140 ms of every such run on the held-out festival voice.
/// Confirming at the beep's end is also when a message should start.
pub const BEEP_TAIL_MS: u32 = 200;
/// ... or once the run has stayed a beep this long (ms): the vowels taken
/// for beeps held 120–140 ms, so a longer beep is not made to wait its
/// whole length.
pub const BEEP_SURE_MS: u32 = 300;
/// A frame after the run within this much of the beep's level (dB), and
/// clear of the noise floor, is the voice going on (the syllables after
/// those vowels came back within 3 dB of them; the tone tracker may even
/// take them into the vowel's run). Quieter sound is the line's noise.
const BEEP_TAIL_VOICE_DB: f32 = 6.0;
const BEEP_TAIL_ABOVE_FLOOR_DB: f32 = 6.0;
/// A frame at the beep's frequency (Hz) and level (dB) that fails the
/// beep tests is the beep still sounding: its offset window, or music or a
/// second voice under it (seen on the held-out noise set).
const BEEP_GOES_ON_HZ: f32 = 10.0;
/// How far (Hz) the merged peak of a close dual ring swings as it beats.
const RING_BEAT_HZ: f32 = 30.0;
const BEEP_GOES_ON_DB: f32 = 3.0;
/// A beep ends a greeting; a call-progress tone may follow mere room noise
/// (babble or music taken for a few hundred ms of "speech"). A beep-like
/// run heard after less speech than this (ms) is a beep only once what
/// follows shows it is not the first element of a call-progress signal
/// (see [`progress_follow_up`]). The shortest greetings ("Leave a
/// message.") hold ≥ 700 ms of speech; the noise before the tones that
/// were taken for beeps held 200–600 ms.
const SHORT_PREAMBLE_MS: u32 = 1000;
/// How long after a beep-like run at a single call-progress frequency
/// (330–660 Hz) the line must stay free of another run at its frequency
/// (ms): longer than every busy and reorder gap of `TELEPHONY.md` (India's
/// busy, 750 ms, is the longest).
const CADENCE_FOLLOW_MS: u32 = 800;
/// Same frequency, for the cadence's next burst (Hz).
const CADENCE_SAME_HZ: f32 = 15.0;
/// A break in a beep-like run at least this long (ms) is a cadence's gap,
/// not a voice under the beep breaking its run for a few frames (the
/// shortest gap of any plan is 167 ms).
const CADENCE_MIN_GAP_MS: u32 = 120;
/// No plan's gap exceeds its burst by more than 300 ms (the UK reorder's
/// 225 ms burst, 525 ms gap): the watch after a burst ends 400 ms after its
/// length has passed again, or `CADENCE_FOLLOW_MS`, whichever comes first.
const CADENCE_GAP_OVER_BURST_MS: u32 = 400;
/// A run at a call-progress frequency or at 2100 Hz after a short preamble
/// that lasts this long (ms) is a ring or a fax answer tone (CED, 2.6–4 s),
/// not a beep: the 1.5 and 2 s rings (North America, France, Spain) are
/// told apart from the corpus's beeps (≤ 1 s) with margin; the 1 s rings
/// are not (a 1 s beep measures the same), and the 400 ms double rings
/// show their cadence with their second ring.
const LONG_TONE_MS: u32 = 1100;
/// A beep-like run after less speech than this (ms) may be a single ring
/// that noise preceded (`BeepCandidate::may_be_a_single_ring`): the
/// shortest greetings hold ≥ 700 ms of speech, the music and babble before
/// the 1 s rings taken for beeps 200–380 ms.
const RING_AFTER_NOISE_PREAMBLE_MS: u32 = 500;
/// The frequencies of the single-ring plans (400–460 Hz) ± 24 Hz.
const SINGLE_RING_LO_HZ: f32 = 376.0;
const SINGLE_RING_HI_HZ: f32 = 484.0;
/// The longest busy or reorder burst (India's busy, 750 ms), with margin (ms).
const CADENCE_BURST_MAX_MS: u32 = 800;
/// A run at a SIT's first or second frequency still sounding after this
/// long (ms) is no SIT segment (274 or 380 ms; `tones` accepts ≤ 500).
const SIT_SEGMENT_MAX_MS: u32 = 520;
/// A cadence this much louder (dB) than the loudest "speech" before it
/// makes that speech room noise (the tones taken for beeps stood 10–20 dB
/// over the music or babble before them; a melody note under a voice does
/// not).
const CADENCE_OVER_SPEECH_DB: f32 = 6.0;

/// SIT codes (North American; the primes are folded: RO′/RO″ → RO, NC′/NC″ → NC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SitCode {
    /// Intercept: number changed or disconnected.
    Ic,
    /// Vacant code.
    Vc,
    /// Reorder (system busy).
    Ro,
    /// No circuit.
    Nc,
    /// Ineffective other.
    Io,
}

impl SitCode {
    /// From segment 1 and 2 frequency (high?) and duration (long?).
    pub fn from_segments(high1: bool, long1: bool, high2: bool, long2: bool) -> SitCode {
        match (high1, long1, high2, long2) {
            (false, false, false, false) => SitCode::Ic,
            (true, true, false, false) => SitCode::Vc,
            (false, false, true, true) | (true, false, false, true) => SitCode::Ro,
            (true, true, true, true) | (false, true, false, true) => SitCode::Nc,
            (false, true, true, false) => SitCode::Io,
            // Unassigned combinations: the nearest by segment 2, which
            // carries most of the meaning (long = reorder/no circuit).
            (_, _, _, true) => SitCode::Ro,
            (_, _, true, false) => SitCode::Io,
            (_, _, false, false) => SitCode::Ic,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SitCode::Ic => "IC",
            SitCode::Vc => "VC",
            SitCode::Ro => "RO",
            SitCode::Nc => "NC",
            SitCode::Io => "IO",
        }
    }

    /// Whether the number should be removed from the list.
    pub fn is_permanent(self) -> bool {
        matches!(self, SitCode::Ic | SitCode::Vc)
    }
}

/// Which fax/modem signal was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaxSignal {
    /// Calling tone, 1100 Hz.
    Cng,
    /// Answer tone 2100 Hz (with or without phase reversals).
    Ced,
    /// 2100 Hz amplitude-modulated at 15 Hz (V.8).
    Ansam,
    /// V.21 channel 2 HDLC flags.
    V21,
}

impl FaxSignal {
    pub fn as_str(self) -> &'static str {
        match self {
            FaxSignal::Cng => "cng",
            FaxSignal::Ced => "ced",
            FaxSignal::Ansam => "ansam",
            FaxSignal::V21 => "v21",
        }
    }
}

/// The final classification of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Human,
    Machine,
    Fax,
    Busy,
    Reorder,
    Sit,
    Ringback,
    Silence,
    /// Not sure: the analysis time ran out without a clear answer.
    Unknown,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Human,
        Outcome::Machine,
        Outcome::Fax,
        Outcome::Busy,
        Outcome::Reorder,
        Outcome::Sit,
        Outcome::Ringback,
        Outcome::Silence,
        Outcome::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Human => "human",
            Outcome::Machine => "machine",
            Outcome::Fax => "fax",
            Outcome::Busy => "busy",
            Outcome::Reorder => "reorder",
            Outcome::Sit => "sit",
            Outcome::Ringback => "ringback",
            Outcome::Silence => "silence",
            Outcome::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// What the analyser reports, with the stream time it was reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventKind {
    Ringback,
    Busy,
    Reorder,
    Sit(Option<SitCode>),
    Fax(FaxSignal),
    Human,
    Machine,
    /// End of a voicemail greeting: leave the message now.
    Beep {
        freq_hz: f32,
    },
    /// Dead air: nothing heard.
    Silence,
    NotSure,
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Ringback => "ringback",
            EventKind::Busy => "busy",
            EventKind::Reorder => "reorder",
            EventKind::Sit(_) => "sit",
            EventKind::Fax(_) => "fax",
            EventKind::Human => "human",
            EventKind::Machine => "machine",
            EventKind::Beep { .. } => "beep",
            EventKind::Silence => "silence",
            EventKind::NotSure => "not_sure",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// Milliseconds since the start of the stream (answer, or early media).
    pub at_ms: u32,
    pub kind: EventKind,
}

/// The verdict and its time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub at_ms: u32,
    pub sit_code: Option<SitCode>,
    pub fax: Option<FaxSignal>,
}

/// A beep-like run under watch: its segment as of its last frame that
/// passed the beep tests, and the start of the quiet after it.
#[derive(Debug, Clone, Copy)]
struct BeepCandidate {
    segment: tones::Segment,
    quiet_from_ms: Option<u32>,
    /// What must follow before this run is a beep (see `SHORT_PREAMBLE_MS`).
    follow_up: FollowUp,
    /// Its tail passed; it is a beep at this stream time unless a
    /// call-progress element comes first.
    accept_at_ms: Option<u32>,
    /// The speech heard before it began (ms).
    preamble_ms: u32,
}

impl BeepCandidate {
    fn new(segment: tones::Segment, follow_up: FollowUp, preamble_ms: u32) -> Self {
        BeepCandidate {
            segment,
            quiet_from_ms: None,
            follow_up,
            accept_at_ms: None,
            preamble_ms,
        }
    }

    /// As long as a single ring (1 s, 750–1100 ms) at a ring's frequency
    /// after less "speech" than any greeting: a ring that music or babble
    /// preceded, unless no next ring comes.
    fn may_be_a_single_ring(&self) -> bool {
        self.follow_up == FollowUp::Cadence
            && self.preamble_ms < RING_AFTER_NOISE_PREAMBLE_MS
            && (RING_MIN_MS..LONG_TONE_MS).contains(&self.segment.duration_ms())
            && (SINGLE_RING_LO_HZ..=SINGLE_RING_HI_HZ).contains(&self.segment.lo)
    }
}

/// What a beep-like run heard after a short preamble must be told from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowUp {
    /// Nothing: a beep as soon as its own tests pass.
    None,
    /// A busy or reorder burst: a beep once the longest gap such a burst
    /// can have passed after it with no run at its frequency
    /// (`CADENCE_GAP_OVER_BURST_MS`, `CADENCE_FOLLOW_MS`).
    Cadence,
    /// A SIT's first or second segment: the next one follows at once (the
    /// tail wait outlasts the ≤ 100 ms between segments), so the run is
    /// judged at its end, not while it sounds (`BEEP_SURE_MS`).
    SitSegment,
    /// A fax answer tone (2100 Hz, 2.6–4 s): judged at its end, and no
    /// beep if it lasts `LONG_TONE_MS`.
    FaxAnswer,
}

impl FollowUp {
    /// A ring or a fax answer tone: a run that goes on is no beep.
    fn may_be_long_tone(self) -> bool {
        matches!(self, FollowUp::Cadence | FollowUp::FaxAnswer)
    }

    /// How long a run must sound to be a beep while it sounds: a run that
    /// may be a call-progress element is judged by what follows it.
    fn sure_ms(self) -> u32 {
        match self {
            FollowUp::None => BEEP_SURE_MS,
            FollowUp::Cadence | FollowUp::FaxAnswer => u32::MAX,
            FollowUp::SitSegment => SIT_SEGMENT_MAX_MS,
        }
    }
}

/// The band of a fax answer tone (2100 Hz ± 15 Hz, with the tracker's
/// spread) at which a beep-like run after a short preamble may be CED.
const FAX_ANSWER_LO_HZ: f32 = 2070.0;
const FAX_ANSWER_HI_HZ: f32 = 2130.0;

/// What a beep-like run at `lo` Hz might be instead (see `FollowUp`).
fn progress_follow_up(lo: f32) -> FollowUp {
    if (tones::CP_LO_HZ..=tones::CP_HI_HZ).contains(&lo) {
        FollowUp::Cadence
    } else if tones::sit_first_two_segments(lo) {
        FollowUp::SitSegment
    } else if (FAX_ANSWER_LO_HZ..=FAX_ANSWER_HI_HZ).contains(&lo) {
        FollowUp::FaxAnswer
    } else {
        FollowUp::None
    }
}

/// One channel's analyser.
pub struct Analyser {
    settings: CpaSettings,
    thresholds: Thresholds,
    spectrum: Spectrum,
    tones: ToneTracker,
    speech: SpeechTracker,
    speech_before_run: SpeechTracker,
    pending: [i16; FRAME],
    pending_len: usize,
    frame: u32,
    /// Frame of the answer; `None` while only early media has been fed.
    answered_at: Option<u32>,
    verdict: Option<Verdict>,
    beep: Option<Event>,
    /// A run that passed every beep test, waiting for its tail (see
    /// `BEEP_TAIL_MS`).
    beep_candidate: Option<BeepCandidate>,
    ringback_reported: bool,
    /// Speech came back within `HUMAN_BEEP_WINDOW_MS` of a human verdict.
    resumed_after_human: bool,
    /// Since the human verdict the "caller" has paused no longer than
    /// `READ_ON_PAUSE_MS`: the verdict may still be a greeting read on.
    reading_on: bool,
    events: VecDeque<Event>,
    /// Steady tones heard since answer that began before the caller's
    /// first speech, once their run ended: end (ms) and level (dB), the
    /// loudest `BACKGROUND_RUNS` (see `background_tone_db`).
    background_runs: [(u32, f32); BACKGROUND_RUNS],
    /// The confirmed tone run now open, if it began before the caller's
    /// first speech: its start (ms), end (ms) and level (dB), added to
    /// `background_runs` when the run ends.
    open_background_run: Option<(u32, u32, f32)>,
    /// Frame at which `speech_before_run` was taken.
    speech_before_run_frame: u32,
    /// Feature export (`outdial cpa --dump-features`): speech verdicts are
    /// withheld so the structure is followed to the end of the clip.
    trace_only: bool,
    last_features: Features,
    /// The open tone run is a voice's harmonic pair (`is_voice_harmonic_pair`).
    harmonic_run: bool,
    /// A beep-like run came back at its frequency in a cadence: runs at
    /// this frequency (Hz) are call-progress bursts, not beeps.
    cadence_hz: Option<f32>,
    /// The speech before that cadence was forgotten as room noise.
    speech_before_cadence_was_noise: bool,
    /// A ring was heard and then "speech" far under it: speech verdicts
    /// wait for the next ring (see `RingHold`).
    ring_hold: Option<RingHold>,
}

/// A ring with "speech" far under it after it: the line's babble between
/// rings, or a callee who answered quietly. Nobody who answered is rung
/// again, so a next ring like this one (its frequency, its length, about
/// its level) shows the speech was the line's; until the latest moment the
/// next ring could begin, no speech verdict (nor a beep at the ring's
/// frequency: the next ring would read as one) is given.
#[derive(Debug, Clone, Copy)]
struct RingHold {
    until_ms: u32,
    ring: tones::Segment,
}

/// One frame's speech features and VAD state, for the offline training
/// tools (`tools/cpa_model/`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct FrameTrace {
    pub band_db: f32,
    pub floor_db: f32,
    pub flatness: f32,
    pub f1: f32,
    pub series_share: f32,
    pub high_share: f32,
    pub in_speech: bool,
    pub span_ms: u32,
    pub speech_ms: u32,
    pub pause_ms: u32,
    pub first_onset_ms: Option<u32>,
    pub utterances: u32,
    pub tonal: bool,
    /// The caller's loud frames (dB) as the VAD tracks them.
    pub caller_peak_db: f32,
    /// The VAD hears speech that is not (yet) the caller's.
    pub background_speech: bool,
}

impl Analyser {
    /// An analyser fed from the moment of answer.
    pub fn new(settings: CpaSettings) -> Self {
        let mut a = Self::new_early_media(settings);
        a.answered_at = Some(0);
        a
    }

    /// An analyser fed from the start of early media; call
    /// [`Analyser::answered`] at the 200 OK when it is known. Until then a
    /// ringback is reported as an event, not a verdict.
    pub fn new_early_media(settings: CpaSettings) -> Self {
        Analyser {
            thresholds: Thresholds::for_sensitivity(settings.sensitivity),
            settings,
            spectrum: Spectrum::new(),
            tones: ToneTracker::new(),
            speech: SpeechTracker::new(),
            speech_before_run: SpeechTracker::new(),
            pending: [0; FRAME],
            pending_len: 0,
            frame: 0,
            answered_at: None,
            verdict: None,
            beep: None,
            beep_candidate: None,
            cadence_hz: None,
            ring_hold: None,
            speech_before_cadence_was_noise: false,
            ringback_reported: false,
            resumed_after_human: false,
            reading_on: false,
            events: VecDeque::with_capacity(16),
            background_runs: [(0, -200.0); BACKGROUND_RUNS],
            open_background_run: None,
            speech_before_run_frame: 0,
            trace_only: false,
            last_features: Features::default(),
            harmonic_run: false,
        }
    }

    /// For feature export: never give a speech verdict.
    #[doc(hidden)]
    /// Ringing: after answer it is the verdict; before it (early media) an
    /// event, once.
    fn report_ringback(&mut self, at: u32) {
        if self.answered_at.is_some() {
            self.decide(Outcome::Ringback, at, EventKind::Ringback);
        } else if !self.ringback_reported {
            self.emit(Event {
                at_ms: at,
                kind: EventKind::Ringback,
            });
        }
        self.ringback_reported = true;
    }

    /// All the "speech" heard lay well under the cadence's elements: the
    /// line's background between the bursts (babble, a TV), not a talker
    /// whose own vowels would be the bursts and as loud as them.
    fn speech_under_cadence(&self) -> bool {
        self.tones
            .last_progress_level_db()
            .is_some_and(|db| self.speech.caller_peak_db() < db - SPEECH_UNDER_CADENCE_DB)
    }

    pub fn set_trace_only(&mut self) {
        self.trace_only = true;
    }

    /// The last frame's features and speech state.
    #[doc(hidden)]
    pub fn trace(&self) -> FrameTrace {
        let f = &self.last_features;
        FrameTrace {
            band_db: f.band_db,
            floor_db: self.speech.floor_db(),
            flatness: f.flatness,
            f1: f.f1,
            series_share: f.series_share,
            high_share: f.high_share,
            in_speech: self.speech.in_speech(),
            span_ms: self.speech.span_ms(),
            speech_ms: self.speech.speech_ms(),
            pause_ms: self.speech.pause_ms(),
            first_onset_ms: self.speech.first_onset_ms(),
            utterances: self.speech.utterances(),
            tonal: self.tones.tonal,
            caller_peak_db: self.speech.caller_peak_db(),
            background_speech: self.speech.background_speech(),
        }
    }

    /// The call was answered at the current position of the stream.
    pub fn answered(&mut self) {
        if self.answered_at.is_none() {
            self.answered_at = Some(self.frame);
        }
    }

    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    pub fn beep(&self) -> Option<Event> {
        self.beep
    }

    /// Stream time consumed so far, ms.
    pub fn now_ms(&self) -> u32 {
        self.frame * FRAME_MS
    }

    /// Nothing more to learn: a verdict is in and no beep is awaited.
    pub fn is_done(&self) -> bool {
        match self.verdict {
            None => false,
            Some(v) if v.outcome == Outcome::Human => {
                self.now_ms() >= self.human_beep_watch_end_ms(v.at_ms)
                    && self.beep_candidate.is_none()
            }
            Some(v) if v.outcome == Outcome::Machine => {
                self.beep.is_some()
                    || self.settings.machine_mode == MachineMode::VerdictOnly
                    || (self.since_answer_ms() >= self.settings.beep_timeout_ms
                        && self.beep_candidate.is_none())
            }
            Some(_) => true,
        }
    }

    /// Next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Feeds samples of any length; they are cut into 20 ms frames.
    pub fn push_samples(&mut self, mut samples: &[i16]) {
        while !samples.is_empty() {
            let take = (FRAME - self.pending_len).min(samples.len());
            self.pending[self.pending_len..self.pending_len + take]
                .copy_from_slice(&samples[..take]);
            self.pending_len += take;
            samples = &samples[take..];
            if self.pending_len == FRAME {
                let frame = self.pending;
                self.pending_len = 0;
                self.push_frame(&frame);
            }
        }
    }

    /// Feeds one 20 ms frame (160 samples).
    pub fn push_frame(&mut self, frame: &[i16; FRAME]) {
        let features = self.spectrum.analyse(frame);
        self.last_features = features;
        self.process(&features);
        self.frame += 1;
    }

    /// The stream ended: give the best verdict the audio supports.
    pub fn finish(&mut self) {
        // The stream ended with no speech after a beep-like run: a beep.
        if let Some(candidate) = self.beep_candidate.take() {
            self.accept_beep(candidate.segment, self.now_ms());
        }
        if self.verdict.is_some() {
            return;
        }
        let at = self.now_ms();
        if self.speech.heard_speech() {
            let span = self.speech.span_ms();
            if span >= 1800 {
                self.decide(Outcome::Machine, at, EventKind::Machine);
            } else if self.speech.pause_ms() >= 200 && self.speech.speech_ms() >= 100 {
                self.decide(Outcome::Human, at, EventKind::Human);
            } else {
                self.decide(Outcome::Unknown, at, EventKind::NotSure);
            }
        } else if self.ringback_reported {
            self.decide(Outcome::Ringback, at, EventKind::Ringback);
        } else if self.tones.seen_tone || self.since_answer_ms() < 1000 {
            self.decide(Outcome::Unknown, at, EventKind::NotSure);
        } else {
            self.decide(Outcome::Silence, at, EventKind::Silence);
        }
    }

    /// How long after a human verdict a beep still corrects it.
    fn human_beep_window_ms(&self) -> u32 {
        if self.resumed_after_human {
            RESUMED_BEEP_WINDOW_MS
        } else {
            HUMAN_BEEP_WINDOW_MS
        }
    }

    /// Stream time until which a beep still corrects a human verdict given
    /// at `verdict_ms`: the verdict's own window, and while the "caller"
    /// keeps talking, `HUMAN_BEEP_WINDOW_MS` after their last speech (a
    /// greeting taken for an answer at its first pause goes on, and its
    /// beep follows its end), never later than the machine beep search
    /// would run (`beep_timeout_ms` after answer).
    fn human_beep_watch_end_ms(&self, verdict_ms: u32) -> u32 {
        let after_verdict = verdict_ms + self.human_beep_window_ms();
        let talk_end = if self.speech.in_speech() {
            self.now_ms() + FRAME_MS
        } else {
            self.speech.last_speech_end_ms()
        };
        let answered_ms = self.answered_at.unwrap_or(0) * FRAME_MS;
        let after_talk =
            (talk_end + HUMAN_BEEP_WINDOW_MS).min(answered_ms + self.settings.beep_timeout_ms);
        after_verdict.max(after_talk)
    }

    /// Follows a beep-like run (`beep_now`: this frame's run when it passes
    /// every beep test) to its confirmation: it lasts `BEEP_SURE_MS`, or
    /// `BEEP_TAIL_MS` pass after it with no voice near its level. Returns
    /// true when a beep was accepted at this frame.
    fn watch_beep(&mut self, beep_now: Option<tones::Segment>, f: &Features, at: u32) -> bool {
        // A run at the frequency of a cadence already seen is its next burst.
        let beep_now = beep_now.filter(|s| {
            self.cadence_hz
                .is_none_or(|hz| (s.lo - hz).abs() > CADENCE_SAME_HZ)
        });
        let Some(mut candidate) = self.beep_candidate else {
            self.beep_candidate = beep_now.map(|s| self.new_beep_candidate(s));
            return false;
        };
        if let Some(accept_at_ms) = candidate.accept_at_ms {
            let seg = candidate.segment;
            let next_burst = self.tones.open_segment(2 * FRAME_MS).is_some_and(|s| {
                s.start_ms > seg.end_ms && (s.lo - seg.lo).abs() <= CADENCE_SAME_HZ
            });
            if next_burst {
                self.progress_tone_seen(seg);
                return false;
            }
            if at >= accept_at_ms {
                self.beep_candidate = None;
                self.accept_beep(seg, at);
                return true;
            }
            return false;
        }
        // The same run, or a new run at its frequency: the tone tracker
        // splits a beep where a voice under it broke a few frames. The
        // beep began with the first.
        let same_beep = |s: &tones::Segment| {
            s.start_ms == candidate.segment.start_ms
                || (s.lo - candidate.segment.lo).abs() <= BEEP_GOES_ON_HZ
        };
        if let Some(mut seg) = beep_now.filter(same_beep) {
            // ... unless the line fell quiet between them for longer than
            // such a break: then it is a cadence's next burst.
            if candidate.follow_up == FollowUp::Cadence
                && seg.start_ms >= candidate.segment.end_ms + CADENCE_MIN_GAP_MS
            {
                self.progress_tone_seen(candidate.segment);
                return false;
            }
            seg.start_ms = candidate.segment.start_ms;
            candidate.segment = seg;
            candidate.quiet_from_ms = None;
            if let Some(accepted) = self.judge_sounding(candidate, seg.duration_ms(), at) {
                return accepted;
            }
            self.beep_candidate = Some(candidate);
            return false;
        }
        let seg = candidate.segment;
        // Frames of the beep itself that fail the tests: its offset
        // window, or music or a second voice under it. Same frequency,
        // same level.
        // A run in the call-progress band may be a close dual ring beating
        // (440 + 480 Hz read as one peak swinging ±20 Hz and 6 dB): that
        // is the ring going on, not a voice ending a beep.
        let ring_beating = candidate.follow_up == FollowUp::Cadence
            && (f.f1 - seg.lo).abs() <= RING_BEAT_HZ
            && (f.band_db - seg.level_db).abs() <= BEEP_TAIL_VOICE_DB;
        let beep_goes_on = ring_beating
            || ((f.f1 - seg.lo).abs() <= BEEP_GOES_ON_HZ
                && (f.band_db - seg.level_db).abs() <= BEEP_GOES_ON_DB);
        let voice = !beep_goes_on
            && f.band_db >= seg.level_db - BEEP_TAIL_VOICE_DB
            && f.band_db >= self.speech.floor_db() + BEEP_TAIL_ABOVE_FLOOR_DB;
        if voice && candidate.follow_up == FollowUp::Cadence && seg.duration_ms() >= BEEP_SURE_MS {
            // Sound at the run's level but off its frequency ends a run
            // that had outlasted any vowel: a busy or reorder burst ends
            // in its gap, not that way (a wow on the line did it). Without
            // a short preamble it was a beep at `BEEP_SURE_MS`. (A SIT's
            // segment does end that way: in the next segment.)
            self.beep_candidate = None;
            self.accept_beep(seg, at);
            return true;
        }
        if voice {
            // The voice went on: a held vowel. A new beep-like run may
            // start its own watch.
            self.beep_candidate = beep_now.map(|s| self.new_beep_candidate(s));
            return false;
        }
        if beep_goes_on {
            candidate.quiet_from_ms = None;
            if let Some(accepted) =
                self.judge_sounding(candidate, at.saturating_sub(seg.start_ms), at)
            {
                return accepted;
            }
        } else {
            let quiet_from = *candidate.quiet_from_ms.get_or_insert(at);
            if at.saturating_sub(quiet_from) >= BEEP_TAIL_MS {
                // A run longer than any busy or reorder burst that ended
                // before a ring would have is a beep now.
                if candidate.follow_up == FollowUp::Cadence
                    && seg.duration_ms() < CADENCE_BURST_MAX_MS
                {
                    let gap_ms =
                        (seg.duration_ms() + CADENCE_GAP_OVER_BURST_MS).min(CADENCE_FOLLOW_MS);
                    candidate.accept_at_ms = Some(seg.end_ms + gap_ms);
                    self.beep_candidate = Some(candidate);
                    return false;
                }
                // A 1 s ring after a little music: a beep only if no next
                // ring comes in the longest silence between rings.
                if candidate.may_be_a_single_ring() {
                    candidate.accept_at_ms = Some(seg.end_ms + RING_HOLD_MS);
                    self.beep_candidate = Some(candidate);
                    return false;
                }
                self.beep_candidate = None;
                self.accept_beep(seg, at);
                return true;
            }
        }
        self.beep_candidate = Some(candidate);
        false
    }

    /// A watched run still sounding `sounding_ms` after its start: a ring
    /// or a fax answer tone once it is long, a beep once it is sure. Returns
    /// whether a beep was accepted, or `None` to watch on.
    fn judge_sounding(
        &mut self,
        candidate: BeepCandidate,
        sounding_ms: u32,
        at: u32,
    ) -> Option<bool> {
        if candidate.follow_up.may_be_long_tone() && sounding_ms >= LONG_TONE_MS {
            self.progress_tone_seen(candidate.segment);
            return Some(false);
        }
        if sounding_ms >= candidate.follow_up.sure_ms() {
            self.beep_candidate = None;
            self.accept_beep(candidate.segment, at);
            return Some(true);
        }
        None
    }

    /// A beep-like run came back at its frequency (a busy or reorder
    /// cadence) or went on past any beep (a ring, a fax answer tone). The
    /// "speech" before it was the room's noise (a greeting ends with one
    /// short beep): the tone analysis decides, as it would have without
    /// that noise. A melody's note that comes back is no beep either, but
    /// it lies under the voice: only a tone louder than the "speech" makes
    /// the speech noise.
    fn progress_tone_seen(&mut self, burst: tones::Segment) {
        self.beep_candidate = None;
        self.cadence_hz = Some(burst.lo);
        if burst.level_db >= self.speech.caller_peak_db() + CADENCE_OVER_SPEECH_DB {
            self.speech.forget_speech();
            self.speech_before_run.forget_speech();
            self.speech_before_cadence_was_noise = true;
        }
    }

    /// Starts the watch of a beep-like run: after a short preamble it may
    /// be a call-progress tone that room noise preceded.
    fn new_beep_candidate(&self, segment: tones::Segment) -> BeepCandidate {
        let preamble_ms = self.speech.speech_ms();
        let follow_up = if preamble_ms < SHORT_PREAMBLE_MS {
            progress_follow_up(segment.lo)
        } else {
            FollowUp::None
        };
        BeepCandidate::new(segment, follow_up, preamble_ms)
    }

    /// A tone at this level may be a beep: not far under the caller's
    /// loud frames (`BEEP_BELOW_CALLER_DB`) and clear of the background's
    /// tones (`BEEP_OVER_BACKGROUND_DB`). Before the caller spoke every tone
    /// may be.
    fn tone_may_be_beep(&self, level_db: f32) -> bool {
        if !self.speech.heard_speech() {
            return true;
        }
        level_db > self.speech.caller_peak_db() - BEEP_BELOW_CALLER_DB
            && level_db >= self.background_tone_db() + BEEP_OVER_BACKGROUND_DB
    }

    /// Level (dB) of the loudest steady tone heard after answer that ended
    /// `BACKGROUND_BEFORE_ONSET_MS` before the caller first spoke: the
    /// room's music (a melody's notes, a held chord), or very low.
    fn background_tone_db(&self) -> f32 {
        let Some(onset_ms) = self.speech.first_onset_ms() else {
            return -200.0;
        };
        self.background_runs
            .iter()
            .filter(|(end_ms, _)| end_ms + BACKGROUND_BEFORE_ONSET_MS <= onset_ms)
            .map(|&(_, level_db)| level_db)
            .fold(-200.0, f32::max)
    }

    /// Learns the beep-like tones heard after answer and before the
    /// caller's first speech (`background_tone_db`): a run counts once it
    /// has ended, so a beep is not judged against itself.
    fn follow_background_tone(&mut self, tone_now: bool) {
        let open = self.tones.open_segment(0).filter(|_| tone_now);
        if let Some((start_ms, end_ms, level_db)) = self.open_background_run
            && open.is_none_or(|s| s.start_ms != start_ms)
            && end_ms >= start_ms + BACKGROUND_MIN_MS
        {
            // Replaces the quietest kept.
            if let Some(slot) = self
                .background_runs
                .iter_mut()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                && slot.1 < level_db
            {
                *slot = (end_ms, level_db);
            }
        }
        if open.is_none_or(|s| self.open_background_run.is_none_or(|r| r.0 != s.start_ms)) {
            self.open_background_run = None;
        }
        // Only a run as pure and steady as a beep: what a beep could be
        // mistaken for.
        if let Some(seg) = open.filter(|_| self.tones.beep().is_some())
            && self.answered_at.is_some()
            && (self.open_background_run.is_some() || !self.speech_before_run.heard_speech())
            && (350.0..=2150.0).contains(&seg.lo)
        {
            self.open_background_run = Some((seg.start_ms, seg.end_ms, seg.level_db));
        }
    }

    fn accept_beep(&mut self, seg: tones::Segment, at: u32) {
        let beep = Event {
            at_ms: seg.start_ms,
            kind: EventKind::Beep { freq_hz: seg.lo },
        };
        self.beep = Some(beep);
        // A beep right after a "human" short greeting ("Leave a
        // message.") corrects the verdict: the Machine event follows
        // the Human one.
        if self.verdict.is_none_or(|v| v.outcome == Outcome::Human) {
            self.decide(Outcome::Machine, at, EventKind::Machine);
        }
        self.emit(beep);
    }

    fn since_answer_ms(&self) -> u32 {
        self.answered_at
            .map_or(0, |a| (self.frame + 1).saturating_sub(a) * FRAME_MS)
    }

    fn decide(&mut self, outcome: Outcome, at_ms: u32, kind: EventKind) {
        // A beep-like run still watched when a tone decides was that tone
        // (a fax answer tone, a busy burst), not a beep to report later.
        if matches!(
            outcome,
            Outcome::Fax | Outcome::Busy | Outcome::Reorder | Outcome::Sit | Outcome::Ringback
        ) {
            self.beep_candidate = None;
        }
        let (sit_code, fax) = match kind {
            EventKind::Sit(code) => (code, None),
            EventKind::Fax(signal) => (None, Some(signal)),
            _ => (None, None),
        };
        self.verdict = Some(Verdict {
            outcome,
            at_ms,
            sit_code,
            fax,
        });
        self.emit(Event { at_ms, kind });
    }

    fn emit(&mut self, event: Event) {
        // Bounded: a consumer that never polls loses the oldest events.
        if self.events.len() == self.events.capacity() {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn process(&mut self, f: &Features) {
        let at = (self.frame + 1) * FRAME_MS;
        let undecided = self.verdict.is_none();
        let want_beep = match self.verdict {
            None => true,
            Some(v) if v.outcome == Outcome::Human => {
                self.beep.is_none()
                    && (at <= self.human_beep_watch_end_ms(v.at_ms)
                        || self.beep_candidate.is_some())
            }
            Some(v) => {
                v.outcome == Outcome::Machine
                    && self.beep.is_none()
                    && self.settings.machine_mode == MachineMode::WaitForBeep
                    && (self.since_answer_ms() <= self.settings.beep_timeout_ms
                        || self.beep_candidate.is_some())
            }
        };
        if !undecided && !want_beep {
            return;
        }

        let tone = self.tones.update(
            f,
            self.speech.floor_db(),
            self.speech.floor_is_hiss(),
            self.frame,
        );
        if frame_debug() {
            eprintln!(
                "{} t={} band={:.1} f1={:.0} open={:?} v={:?} sp={} insp={} pause={} peak={:.1} span={} cp={:?} hold={:?}",
                (self.frame + 1) * FRAME_MS,
                self.tones.tonal,
                f.band_db,
                f.f1,
                self.tones.open_segment(0).map(|s| (
                    s.start_ms,
                    s.duration_ms(),
                    s.lo as i32,
                    s.hi as i32,
                    s.level_db as i32,
                    (s.series_share * 1000.0) as i32,
                    (s.purity1 * 100.0) as i32,
                )),
                tone,
                self.speech.speech_ms(),
                self.speech.in_speech(),
                self.speech.pause_ms(),
                self.speech.caller_peak_db(),
                self.speech.span_ms(),
                self.tones.last_progress().map(|s| (
                    s.start_ms,
                    s.end_ms,
                    s.lo as i32,
                    s.level_db as i32
                )),
                self.ring_hold.map(|h| h.until_ms)
            );
        }
        let min_db = self.tones.loudest_db() - 15.0;
        // Speech heard before a call-progress tone and far quieter than it
        // was crosstalk or room noise on the line, not the callee.
        if undecided
            && self.speech.heard_speech()
            && self.speech.speech_ms() < 1000
            && (self.tones.loudest_db() > self.speech.caller_peak_db() + TONE_OVER_SPEECH_DB
                || self
                    .tones
                    .open_progress_level_db(RING_OVER_SPEECH_MS)
                    .is_some_and(|db| db > self.speech.caller_peak_db() + RING_OVER_SPEECH_DB))
        {
            self.speech.forget_speech();
        }
        // "Speech" heard only inside a ring that has just ended, no louder
        // than it, was the ring's own frames: a clipped dual ring's purity
        // flickers about the tonal bar, and its odd frames read as speech
        // at the ring's level (a human at the silence after the ring).
        // Nobody speaks over a ring: ringing stops when the call is answered.
        if undecided
            && self.speech.heard_speech()
            && !self.speech.in_speech()
            && let Some(ring) = self.tones.last_progress()
            && ring.duration_ms() >= RING_OVER_SPEECH_MS
            && self
                .speech
                .first_onset_ms()
                .is_some_and(|onset| onset >= ring.start_ms)
            && self.speech.last_speech_end_ms() <= ring.end_ms
            && self.speech.caller_peak_db() <= ring.level_db + SPEECH_INSIDE_RING_DB
        {
            self.speech.forget_speech();
        }
        // A tone run is only known to be a tone (not a vowel) once steady
        // for 100 ms: keep the speech state from its start and roll back.
        if self.tones.run_started {
            self.speech_before_run = self.speech.clone();
            self.speech_before_run_frame = self.frame;
        }
        // A steady run that grows straight out of speech and is not a
        // generator's sine is a held vowel (a monotone "Hellooo"): speech.
        // Speech that had only just opened when the run began may be the
        // tone's own first windows (see `HELD_VOWEL_LEAD_MS`).
        let held_vowel = self.tones.tonal
            && self.speech_before_run.in_speech()
            && self.tones.open_segment(0).is_some_and(|s| {
                s.start_ms >= self.speech_before_run.segment_start_ms() + HELD_VOWEL_LEAD_MS
            })
            && self
                .tones
                .open_segment(0)
                .is_some_and(|s| s.purity1 < tones::BEEP_PURITY);
        // Judged once, when the run is confirmed (its first 100 ms, where a
        // "Yes?" has its vowel), and kept for the run: a chord's fifth is
        // 3 : 2 too, and music changing under a run must not turn it into
        // speech half-way. Far under the caller it is someone else.
        if self.tones.run_started {
            self.harmonic_run = false;
        }
        if self.tones.run_confirmed {
            self.harmonic_run = self.tones.open_segment(0).is_some_and(|s| {
                is_voice_harmonic_pair(s.lo, s.hi)
                    && s.level_db >= self.speech.caller_peak_db() - HARMONIC_PAIR_BELOW_CALLER_DB
            });
        }
        let held_vowel = held_vowel || (self.tones.tonal && self.harmonic_run);
        let tone_now = self.tones.tonal && !held_vowel;
        self.follow_background_tone(tone_now);
        // A tone too quiet to be a beep is the room's music: the caller's
        // pause goes on under it (a confirmed tone stops the pause clock so
        // that a beep right after a short greeting is no pause).
        let background_tone = tone_now
            && !self.speech_before_run.in_speech()
            && self
                .tones
                .open_segment(0)
                .is_some_and(|s| !self.tone_may_be_beep(s.level_db));
        if self.tones.run_confirmed && !held_vowel {
            self.speech = self.speech_before_run.clone();
            if background_tone && !self.speech.in_speech() {
                self.speech
                    .credit_pause(self.frame.saturating_sub(self.speech_before_run_frame));
            }
        }
        let tonal = tone_now || f.purity2 >= 0.97;
        self.speech
            .update(f, tonal, tone_now && !background_tone, min_db, self.frame);
        if let Some(v) = self.verdict
            && v.outcome == Outcome::Human
            && self.speech.in_speech()
            && at <= v.at_ms + HUMAN_BEEP_WINDOW_MS
        {
            self.resumed_after_human = true;
        }
        if self.reading_on && self.verdict.is_some_and(|v| v.outcome == Outcome::Human) {
            if !self.speech.in_speech() && self.speech.pause_ms() > READ_ON_PAUSE_MS {
                self.reading_on = false;
            } else if self.speech.in_speech() && self.speech.span_ms() >= READ_ON_SPAN_MS {
                self.reading_on = false;
                self.decide(Outcome::Machine, at, EventKind::Machine);
            }
        }
        // A beep ends a greeting that was heard: a tone far louder than all
        // the "speech" before it follows crosstalk (babble under a SIT or a
        // fax), not a greeting; a tone far under the voice is background
        // music.
        // A human verdict already needed `min_speech_ms` of speech: what
        // was taken for "Hi." and then beeps was a greeting, however little
        // of it the VAD kept on a noisy line.
        let beep_after_ms = if self.verdict.is_some_and(|v| v.outcome == Outcome::Human) {
            self.thresholds.min_speech_ms.min(BEEP_AFTER_SPEECH_MS)
        } else {
            BEEP_AFTER_SPEECH_MS
        };
        let beep_now = self
            .tones
            .beep()
            .filter(|seg| {
                seg.level_db < self.speech.caller_peak_db() + TONE_OVER_SPEECH_DB
                    && self.tone_may_be_beep(seg.level_db)
            })
            .filter(|_| want_beep && self.speech.speech_ms() >= beep_after_ms)
            .filter(|seg| {
                self.ring_hold
                    .is_none_or(|hold| (seg.lo - hold.ring.lo).abs() > NEXT_RING_HZ)
            })
            .filter(|seg| !self.repeats_last_progress_element(seg));
        if self.watch_beep(beep_now, f, at) {
            return;
        }
        if !undecided {
            return;
        }

        if let Some(tone) = tone {
            // Speech before a cadence whose first burst was taken for a
            // beep was the room's noise (`FollowUp::Cadence`).
            let speech_heard =
                self.speech.speech_ms() >= 300 && !self.speech_before_cadence_was_noise;
            match tone {
                ToneVerdict::Progress(Progress::Ringback) => {
                    // Someone louder than the ring spoke after it: the
                    // call was answered; the "ring" was a vowel of the
                    // room's babble that the stream began in.
                    let answered_over_ring = self
                        .tones
                        .last_progress_level_db()
                        .is_some_and(|db| self.speech.caller_peak_db() > db + SPEECH_OVER_RING_DB);
                    // Any speech after the ring, even after speech before it
                    // was found to be the room's noise (music under a ring
                    // whose first burst was a beep candidate).
                    if self.speech.speech_ms() >= 300
                        && self.ring_hold.is_none()
                        && let Some(ring) = self.tones.last_progress()
                        && ring.level_db > self.speech.caller_peak_db() + RING_OVER_BACKGROUND_DB
                    {
                        self.ring_hold = Some(RingHold {
                            until_ms: ring.end_ms + RING_HOLD_MS,
                            ring,
                        });
                    }
                    // The "silence" after a ring that makes it ringback is
                    // only the tone's absence: not while someone speaks
                    // (a callee's first 300 ms; the verdict is read again
                    // at every frame of the silence).
                    if !speech_heard
                        && !self.speech.in_speech()
                        && (!self.speech.heard_speech()
                            || at.saturating_sub(self.speech.last_speech_end_ms())
                                >= RING_SILENCE_AFTER_SPEECH_MS)
                        && !answered_over_ring
                        && !self.ringback_reported
                    {
                        self.report_ringback(at);
                    }
                }
                ToneVerdict::Progress(Progress::Busy)
                    if !speech_heard || self.speech_under_cadence() =>
                {
                    self.decide(Outcome::Busy, at, EventKind::Busy)
                }
                ToneVerdict::Progress(Progress::Reorder)
                    if !speech_heard || self.speech_under_cadence() =>
                {
                    self.decide(Outcome::Reorder, at, EventKind::Reorder)
                }
                ToneVerdict::Progress(_) => {}
                ToneVerdict::Sit(code) => self.decide(Outcome::Sit, at, EventKind::Sit(code)),
                // After speech, a 1100 or 2100 Hz tone is a beep, not a fax.
                ToneVerdict::Fax(FaxSignal::Cng | FaxSignal::Ced | FaxSignal::Ansam)
                    if speech_heard => {}
                // CNG is the calling fax's tone: the fax we call answers with
                // CED. A 1100 Hz burst after a ring is a note of the music
                // on the line (its length is CNG's often enough).
                ToneVerdict::Fax(FaxSignal::Cng)
                    if self
                        .tones
                        .last_progress()
                        .is_some_and(|ring| ring.duration_ms() >= RING_MIN_MS) => {}
                ToneVerdict::Fax(signal) => self.decide(Outcome::Fax, at, EventKind::Fax(signal)),
            }
            if self.verdict.is_some() {
                return;
            }
        }

        if let Some(hold) = self.ring_hold {
            let rung_again = self.tones.last_progress().is_some_and(|next| {
                next.start_ms > hold.ring.end_ms && is_next_ring(&hold.ring, &next)
            }) || (self.tones.tonal
                && self
                    .tones
                    .open_segment(0)
                    .is_some_and(|open| is_next_ring_starting(&hold.ring, &open)));
            if rung_again {
                // Rung again: nobody had answered.
                self.ring_hold = None;
                self.speech.forget_speech();
                self.report_ringback(at);
                if self.verdict.is_some() {
                    return;
                }
            } else if at >= hold.until_ms && self.tones.open_progress_level_db(0).is_none() {
                self.ring_hold = None;
            }
        }

        let speech_verdict = if self.trace_only {
            None
        } else {
            self.speech.verdict(&self.thresholds)
        };
        match speech_verdict {
            // The pause may be the first 100 ms of a beep not yet known to
            // be a tone: once it is, the pause clock is rolled back and
            // stops under it. Wait for the run to be judged (≤ 80 ms).
            Some(SpeechVerdict::Human) if self.tones.run_pending() => {}
            // A beep-like run is in its tail: if it is a beep, this was a
            // short greeting, not an answer.
            Some(SpeechVerdict::Human) if self.beep_candidate.is_some() => {}
            // Babble between rings, until the next ring could come.
            Some(_) if self.ring_hold.is_some() => {}
            // A call-progress tone far louder than the caller is on: no
            // pause of theirs can be heard under it, and what was taken
            // for their word may be the line's babble between its bursts
            // (a busy tone's cadence is read when this burst ends).
            Some(SpeechVerdict::Human)
                if self
                    .tones
                    .open_progress_level_db(STEADY_TONE_MS)
                    .is_some_and(|db| db > self.speech.caller_peak_db() + TONE_OVER_CALLER_DB) => {}
            // ... and a wisp of "speech" just after such a burst may be the
            // babble of its gap: the next burst (or more speech) tells.
            Some(SpeechVerdict::Human)
                if self.speech.speech_ms() < WISP_BETWEEN_TONES_MS
                    && self.tones.last_progress().is_some_and(|seg| {
                        seg.level_db > self.speech.caller_peak_db() + TONE_OVER_CALLER_DB
                            && at.saturating_sub(seg.end_ms) < WISP_WAIT_MS
                    }) => {}
            // Speech that began just after a ring, far under it: the ring's
            // silence rule is read 1.3 s after it ended, and if it was a
            // ring the speech waits for the next (`RingHold`).
            Some(SpeechVerdict::Human) if self.speech_just_after_a_ring(at) => {}
            Some(SpeechVerdict::Human) => {
                self.reading_on = true;
                return self.decide(Outcome::Human, at, EventKind::Human);
            }
            Some(SpeechVerdict::Machine) => {
                return self.decide(Outcome::Machine, at, EventKind::Machine);
            }
            None => {}
        }

        let since_answer = self.since_answer_ms();
        if self.answered_at.is_some()
            && !self.speech.heard_speech()
            && self.speech.quiet_ms() >= self.settings.dead_air_ms
            && since_answer >= self.settings.dead_air_ms
            && !self.tones.tonal
        {
            return self.decide(Outcome::Silence, at, EventKind::Silence);
        }
        if self.answered_at.is_some() && since_answer >= self.settings.max_analysis_ms {
            // Held for the next ring: ringing, or a quiet callee after a
            // ring; a long span of it is no greeting.
            if self.speech.span_ms() >= 1800 && self.ring_hold.is_none() {
                self.decide(Outcome::Machine, at, EventKind::Machine);
            } else {
                self.decide(Outcome::Unknown, at, EventKind::NotSure);
            }
        }
    }
}

/// `CPA_DBG` set: every frame's tone and speech state goes to stderr (for
/// tuning against the corpus). Read once: the analyser runs per frame on
/// every channel, and reading the environment takes a process-wide lock.
fn frame_debug() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("CPA_DBG").is_some())
}

impl Analyser {
    /// The speech heard began within [`AFTER_RING_ONSET_MS`] of the end of
    /// a ring-long call-progress element, stays [`RING_OVER_BACKGROUND_DB`]
    /// under it, and the ring's silence rule (1.3 s) is not read yet:
    /// background music between rings, or a quiet callee. Music 10 dB under
    /// a 1 s European ring made "Hello?"s of its chords before the ring
    /// could be told from a busy tone's burst.
    fn speech_just_after_a_ring(&self, at: u32) -> bool {
        self.tones.last_progress().is_some_and(|ring| {
            ring.duration_ms() >= RING_MIN_MS
                && at < ring.end_ms + RING_SILENCE_RULE_MS + FRAME_MS
                && ring.level_db > self.speech.caller_peak_db() + RING_OVER_BACKGROUND_DB
                && self.speech.first_onset_ms().is_some_and(|onset| {
                    onset >= ring.end_ms && onset <= ring.end_ms + AFTER_RING_ONSET_MS
                })
        })
    }

    /// `seg` repeats the call-progress element that just ended: the same
    /// frequency and level, at least `CADENCE_REPEAT_MIN_MS` long, ending
    /// at most `CADENCE_REPEAT_GAP_MS` before it. That is a cadence (the second
    /// burst of a UK double ring, a busy tone's next burst), not a machine's
    /// beep, which follows a greeting, not another tone like itself.
    fn repeats_last_progress_element(&self, seg: &tones::Segment) -> bool {
        self.tones.last_progress().is_some_and(|last| {
            last.duration_ms() >= CADENCE_REPEAT_MIN_MS
                && last.end_ms + CADENCE_REPEAT_GAP_MS >= seg.start_ms
                && last.end_ms <= seg.start_ms
                && (last.lo - seg.lo).abs() <= NEXT_RING_HZ
                && (last.level_db - seg.level_db).abs() <= NEXT_RING_LEVEL_DB
        })
    }
}

/// `next` is another ring of the plan `ring` belongs to: the same
/// frequency, about its length and level.
fn is_next_ring(ring: &tones::Segment, next: &tones::Segment) -> bool {
    let (d0, d1) = (ring.duration_ms() as f32, next.duration_ms() as f32);
    (next.lo - ring.lo).abs() <= NEXT_RING_HZ
        && (d1 - d0).abs() <= NEXT_RING_LENGTH_TOL * d0
        && (next.level_db - ring.level_db).abs() <= NEXT_RING_LEVEL_DB
}

/// `open`, still going on, is the start of another ring like `ring`: the
/// same frequency and about its level, steady for `NEXT_RING_ONSET_MS` (or
/// most of the ring's length, for short bursts). A beep at the ring's
/// frequency is not taken during the hold, so nothing else on the line
/// looks like this; waiting for the ring's end would put a European ring's
/// verdict (1 s on, 4 s off) past the analysis limit.
fn is_next_ring_starting(ring: &tones::Segment, open: &tones::Segment) -> bool {
    let enough_ms = NEXT_RING_ONSET_MS.min(ring.duration_ms() * 3 / 5);
    open.start_ms > ring.end_ms
        && open.duration_ms() >= enough_ms
        && (open.lo - ring.lo).abs() <= NEXT_RING_HZ
        && (open.level_db - ring.level_db).abs() <= NEXT_RING_LEVEL_DB
}

/// Two resolved peaks that are neighbouring harmonics of a voice (see
/// `HARMONIC_PAIR_TOLERANCE`).
fn is_voice_harmonic_pair(lo: f32, hi: f32) -> bool {
    hi > 0.0
        && !tones::near_dual_plan(lo, hi)
        && [2.0f32, 3.0].iter().any(|&m| {
            (hi / lo / ((m + 1.0) / m) - 1.0).abs() <= HARMONIC_PAIR_TOLERANCE
                && (80.0..=330.0).contains(&(lo / m))
        })
}

#[cfg(test)]
mod tests {
    use super::is_voice_harmonic_pair;

    #[test]
    fn neighbouring_harmonics_are_a_voice_but_the_dual_busy_tone_is_not() {
        // espeak/flite vowels (2nd + 3rd) and festival's HTS voice (3rd + 4th).
        assert!(is_voice_harmonic_pair(360.0, 534.0));
        assert!(is_voice_harmonic_pair(402.0, 598.0));
        assert!(is_voice_harmonic_pair(553.0, 737.0));
        // 480 + 620 Hz at the ±1 % the tone plans allow, the pair pushed
        // towards 4 : 3 (475 + 626 Hz reads 1.318).
        for (lo, hi) in [(480.0, 620.0), (475.2, 626.2), (484.8, 613.8)] {
            assert!(!is_voice_harmonic_pair(lo, hi), "{lo} + {hi}");
        }
        // Single peaks, and a clipped tone's odd harmonic (3 : 1).
        assert!(!is_voice_harmonic_pair(425.0, 0.0));
        assert!(!is_voice_harmonic_pair(400.0, 1200.0));
    }
}
