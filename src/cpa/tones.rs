//! Tones: groups tonal frames into runs (stable one- or two-peak spectra),
//! then reads call-progress cadences against the tone plans of
//! `TELEPHONY.md`, SIT sequences with their code, fax answer/calling
//! signals, and the voicemail beep. Fixed memory: the last few segments only.

use super::spectrum::{FRAME, Features};
use super::{FaxSignal, SitCode};

const FRAME_MS: u32 = (FRAME as u32 * 1000) / 8000;

/// A frame is tonal when two narrow peaks hold this share of the band power.
const TONAL_PURITY: f32 = 0.70;
/// ... and it stands this far above the noise floor.
const TONAL_ABOVE_FLOOR_DB: f32 = 10.0;
const TONAL_MIN_DB: f32 = -52.0;
/// Frequencies of one run may wander this much (dual tones beat).
const RUN_FREQ_TOL: f32 = 35.0;
/// The same for runs in the call-progress band, where merged dual tones beat.
const CP_RUN_FREQ_TOL: f32 = 50.0;
/// Share of the band's power a beep keeps in its one peak.
pub(super) const BEEP_PURITY: f32 = 0.88;
/// A beep's frequency spread over its run, onset frame left out (Hz): a
/// generator's sine reads within ~1.7 Hz even at 7 dB SNR; a held vowel's
/// pitch glides (≥ 2.4 Hz on the training splits).
const BEEP_MAX_FREQ_SD: f32 = 2.2;
/// A beep's level spread (dB): lost packets dip it (≤ 2.9 seen); a vowel
/// swells and fades.
const BEEP_MAX_LEVEL_SD: f32 = 3.2;
/// Share of the band outside a beep's peak that the noise does not
/// explain: ≤ 0.05 for beeps in babble, ~0.1 for a vowel whose other
/// harmonics are weak but present.
const BEEP_MAX_EXCESS_IMPURITY: f32 = 0.075;
/// Most the noise correction may raise a frame's purity (at 3 dB above
/// the floor the correction is 2×).
const MAX_NOISE_GAIN: f32 = 2.0;
/// Non-tonal frames tolerated inside one tone run.
const MAX_GAP_FRAMES: u32 = 2;
/// Mean share of one peak above which a run is a tone whatever its level
/// spread (voices stay under ~0.87 on the training corpus).
const STEADY_PURITY: f32 = 0.93;
/// A frame this close to the noise floor (dB) teaches the floor's flatness.
const FLOOR_NEAR_DB: f32 = 3.0;
/// White or pink hiss over 250–3500 Hz is flatter than this; babble and
/// hum are peaky.
const HISS_FLATNESS: f32 = 0.3;
/// Frames at the floor after which its flatness is known.
const FLOOR_LEARNED_FRAMES: u32 = 3;
/// The bins away from a frame's peaks are this flat when they are hiss
/// (white ~0.5, pink over the band ~0.35; a voice's other harmonics and
/// babble stay lower).
const FRAME_HISS_FLATNESS: f32 = 0.3;
/// V.21's spectral test (power confined to 1550–1950 Hz with both FSK
/// frequencies) is strict enough to accept a signal this far above the
/// floor (dB): at 7 dB SNR the band is only ~8 dB above the hiss.
const V21_ABOVE_FLOOR_DB: f32 = 4.0;
/// A run's second frame this much louder than its first (dB) shows the
/// first window straddled the tone's onset (a ramp over what came before).
const ONSET_RAMP_DB: f32 = 6.0;
/// An onset window (see `ONSET_RAMP_DB`) this far off the next frame's
/// frequency (Hz) is not counted in the run's frequency.
const ONSET_FREQ_OFF_HZ: f32 = 8.0;
/// Frames a run must stay steady before it counts as a tone.
const STEADY_FRAMES: u32 = 5;

/// A finished (or ongoing) stretch of one tone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Segment {
    pub start_ms: u32,
    pub end_ms: u32,
    /// Lower (or only) peak, Hz.
    pub lo: f32,
    /// Upper peak of a dual tone far enough apart to resolve, else 0.
    pub hi: f32,
    pub purity1: f32,
    /// Spread of the lower peak's frequency over the run (Hz).
    pub freq_sd: f32,
    /// Mean level and its spread across frames (dB): AM shows as spread.
    pub level_db: f32,
    pub level_sd: f32,
    /// The run began in the first frames of the stream (may be truncated).
    pub truncated: bool,
    /// Like `freq_sd` without the onset frame, whose window straddles
    /// the ramp (in noise its frequency reads off).
    pub settled_freq_sd: f32,
    /// Mean share of the band's power outside the main peak that the
    /// line's noise does not explain (onset frame left out): ~0 for a
    /// generator's sine at any SNR, a few % for a vowel's other harmonics.
    pub excess_impurity: f32,
    /// Mean share of the band that a harmonic series under the peak
    /// explains (`Features::series_share`, onset frame left out): ~0 for
    /// a tone, clipped or not; a voice's neighbouring harmonics.
    pub series_share: f32,
}

impl Segment {
    pub fn duration_ms(&self) -> u32 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Run {
    start: u32,
    last: u32,
    n: u32,
    lo_n: u32,
    lo_sum: f32,
    lo_sq: f32,
    hi_sum: f32,
    hi_n: u32,
    /// Lower-peak statistics without the onset frame (for the beep).
    settled_n: u32,
    settled_sum: f32,
    settled_sq: f32,
    p1_sum: f32,
    excess_sum: f32,
    series_sum: f32,
    /// The latest frame's `series_share`: the window that straddles the
    /// tone's end splatters around the peak, so it is left out too.
    series_last: f32,
    e_sum: f32,
    e_sq: f32,
    /// Frames summed in `e_sum`, `excess_sum` and `series_sum`: all but
    /// the onset frame, or only the frames seen since a run taken over
    /// from odd frames was opened (their levels were not kept).
    stat_n: u32,
    /// Level of the onset frame (dB), and whether the run's frequency was
    /// re-read from its second frame (see `update`).
    onset_db: f32,
    reread: bool,
    /// The run has been reported confirmed (`run_confirmed`): once, at its
    /// first steady frame. A generator's pure tone ramping up out of noise
    /// (a ring over babble) reaches it only once its level settles, later
    /// than `STEADY_FRAMES`; a vowel that steadies late stays speech.
    confirmed: bool,
    /// The run opened at its own first frame (`run_started` was reported),
    /// not backdated over odd frames: only then may its confirmation come
    /// late, since the caller's state was kept at its start.
    opened_fresh: bool,
}

impl Run {
    /// Forgets the frequencies read so far: the run follows the next frame.
    fn reread_frequency(&mut self) {
        self.lo_n = 0;
        self.lo_sum = 0.0;
        self.lo_sq = 0.0;
        self.hi_sum = 0.0;
        self.hi_n = 0;
    }

    /// Forgets the frequencies and every level statistic read so far.
    fn reread_all(&mut self) {
        self.reread_frequency();
        self.settled_n = 0;
        self.settled_sum = 0.0;
        self.settled_sq = 0.0;
        self.e_sum = 0.0;
        self.e_sq = 0.0;
        self.excess_sum = 0.0;
        self.series_sum = 0.0;
        self.stat_n = 0;
    }

    fn lo(&self) -> f32 {
        self.lo_sum / self.lo_n.max(1) as f32
    }
    fn hi(&self) -> f32 {
        // A second peak counts only when most frames show it, and not when
        // it is the 2nd or 3rd harmonic of the first: that is a clipped
        // single tone, not a dual one.
        if self.n < 3 || self.hi_n * 2 < self.n {
            return 0.0;
        }
        let hi = self.hi_sum / self.hi_n as f32;
        let lo = self.lo();
        let harmonic = [2.0, 3.0]
            .iter()
            .any(|k| (hi - k * lo).abs() < 0.03 * k * lo);
        if harmonic { 0.0 } else { hi }
    }
    fn segment(&self) -> Segment {
        let n = self.n.max(1) as f32;
        let lo = self.lo();
        let lo_n = self.lo_n.max(1) as f32;
        // Level statistics leave out the onset frame once there are others.
        let level_n = self.stat_n.max(1) as f32;
        let e = self.e_sum / level_n;
        Segment {
            start_ms: self.start * FRAME_MS,
            end_ms: (self.last + 1) * FRAME_MS,
            lo,
            hi: self.hi(),
            purity1: self.p1_sum / n,
            freq_sd: (self.lo_sq / lo_n - lo * lo).max(0.0).sqrt(),
            level_db: e,
            level_sd: (self.e_sq / level_n - e * e).max(0.0).sqrt(),
            truncated: self.start <= 1,
            settled_freq_sd: {
                let n = self.settled_n.max(1) as f32;
                let m = self.settled_sum / n;
                (self.settled_sq / n - m * m).max(0.0).sqrt()
            },
            excess_impurity: self.excess_sum / level_n,
            series_share: if level_n >= 2.0 {
                (self.series_sum - self.series_last) / (level_n - 1.0)
            } else {
                self.series_sum / level_n
            },
        }
    }
    fn steady(&self) -> bool {
        if self.n < STEADY_FRAMES {
            return false;
        }
        let seg = self.segment();
        // Level spread rules out vowels; a very pure run is a tone even when
        // its level moves (a close dual tone beating, a gain step).
        seg.freq_sd <= 10.0 && (seg.level_sd <= 4.0 || seg.purity1 >= STEADY_PURITY)
    }

    fn matches(&self, lo: f32) -> bool {
        let rlo = self.lo();
        let rhi = self.hi();
        // A close dual tone heard through one window (400+450, 440+480)
        // shows one peak that swings between its components as they beat.
        let tol = if rlo < CP_HI_HZ {
            CP_RUN_FREQ_TOL
        } else {
            RUN_FREQ_TOL
        };
        let near = |a: f32, b: f32| (a - b).abs() < tol;
        near(lo, rlo) || (rhi > 0.0 && near(lo, rhi))
    }
}

/// Call-progress classes a cadence can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Ringback,
    Busy,
    Reorder,
}

/// A verdict reached by tone analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToneVerdict {
    Progress(Progress),
    Sit(Option<SitCode>),
    Fax(FaxSignal),
}

struct Plan {
    class: Progress,
    /// Frequency as it appears in a 32 ms window: close pairs (440+480)
    /// merge into one peak at their mean.
    lo: f32,
    /// Resolved upper peak (480+620), else 0.
    hi: f32,
    /// on/off/on/off… in ms, starting with "on".
    cadence: &'static [u32],
}

const fn plan(class: Progress, lo: f32, hi: f32, cadence: &'static [u32]) -> Plan {
    Plan {
        class,
        lo,
        hi,
        cadence,
    }
}

use Progress::{Busy, Reorder, Ringback};

/// Two resolved peaks lie within the frequency tolerance of a dual plan
/// (480+620 Hz busy and reorder).
pub fn near_dual_plan(lo: f32, hi: f32) -> bool {
    PLANS.iter().any(|p| {
        p.hi > 0.0
            && (p.lo - lo).abs() <= 2.0 * PLAN_FREQ_TOL
            && (p.hi - hi).abs() <= 2.0 * PLAN_FREQ_TOL
    })
}

/// Every plan of `TELEPHONY.md`. Where two plans coincide (425 Hz 200/200
/// is Spanish busy and Swiss/Danish/Norwegian/Italian congestion; Japanese
/// busy equals congestion; Australian busy and congestion differ only in
/// level), the first listed wins: reorder for 425 Hz 200/200 (four
/// countries to one), busy for the others.
static PLANS: &[Plan] = &[
    // North America
    plan(Ringback, 460.0, 0.0, &[2000, 4000]),
    plan(Busy, 480.0, 620.0, &[500, 500]),
    plan(Reorder, 480.0, 620.0, &[250, 250]),
    // UK
    plan(Busy, 400.0, 0.0, &[375, 375]),
    plan(Reorder, 400.0, 0.0, &[400, 350, 225, 525]),
    plan(Ringback, 425.0, 0.0, &[400, 200, 400, 2000]),
    // DE
    plan(Busy, 425.0, 0.0, &[480, 480]),
    plan(Reorder, 425.0, 0.0, &[240, 240]),
    plan(Ringback, 425.0, 0.0, &[1000, 4000]),
    // FR
    plan(Busy, 440.0, 0.0, &[500, 500]),
    plan(Reorder, 440.0, 0.0, &[250, 250]),
    plan(Ringback, 440.0, 0.0, &[1500, 3500]),
    // NL BE CH DK NO PL PT, IT
    plan(Busy, 425.0, 0.0, &[500, 500]),
    plan(Reorder, 425.0, 0.0, &[250, 250]),
    plan(Reorder, 425.0, 0.0, &[200, 200]),
    plan(Reorder, 425.0, 0.0, &[167, 167]),
    plan(Ringback, 425.0, 0.0, &[1000, 3000]),
    plan(Ringback, 425.0, 0.0, &[1000, 5000]),
    // ES
    plan(Busy, 425.0, 0.0, &[200, 200]),
    plan(Reorder, 425.0, 0.0, &[200, 200, 200, 200, 200, 600]),
    plan(Ringback, 425.0, 0.0, &[1500, 3000]),
    // AU (413+438 ringback merges at ~425)
    plan(Busy, 425.0, 0.0, &[375, 375]),
    // JP
    plan(Busy, 400.0, 0.0, &[500, 500]),
    plan(Ringback, 400.0, 0.0, &[1000, 2000]),
    // RU
    plan(Busy, 425.0, 0.0, &[350, 350]),
    plan(Reorder, 425.0, 0.0, &[175, 175]),
    // CN
    plan(Busy, 450.0, 0.0, &[350, 350]),
    plan(Reorder, 450.0, 0.0, &[700, 700]),
    plan(Ringback, 450.0, 0.0, &[1000, 4000]),
    // IN
    plan(Busy, 400.0, 0.0, &[750, 750]),
    plan(Reorder, 400.0, 0.0, &[250, 250]),
    plan(Ringback, 400.0, 0.0, &[400, 200, 400, 2000]),
    // UK ringback 400+450 merges at ~425 too; listed above.
];

const PLAN_FREQ_TOL: f32 = 24.0;
/// The bands of a SIT's first and second segments (low and high codes).
const SIT_FIRST_HZ: std::ops::RangeInclusive<f32> = 880.0..=1020.0;
const SIT_SECOND_HZ: std::ops::RangeInclusive<f32> = 1320.0..=1480.0;

/// A tone at `lo` Hz may be a SIT's first or second segment.
pub fn sit_first_two_segments(lo: f32) -> bool {
    SIT_FIRST_HZ.contains(&lo) || SIT_SECOND_HZ.contains(&lo)
}

/// Mean `series_share` above which a single-frequency cadence is a voice's
/// harmonic: monotone TTS syllables read ≥ 0.021 (F0 100–220 Hz, the
/// dominant harmonic its 2nd–4th); single tones ≤ 0.006 clean or clipped,
/// up to 0.012 per burst in hiss (the largest of three noisy differences
/// leans positive).
const VOICE_SERIES_SHARE: f32 = 0.015;
pub(super) const CP_LO_HZ: f32 = 330.0;
pub(super) const CP_HI_HZ: f32 = 660.0;
const HISTORY: usize = 10;
/// Shortest run kept in the call-progress history (the shortest element
/// of any plan is 167 ms; one frame may be lost at each end).
const CP_MIN_MS: u32 = 120;
/// A run this far (dB) under the last call-progress element is not the
/// next one (see `may_be_progress_element`).
const CP_ELEMENT_BELOW_LAST_DB: f32 = 10.0;
/// The same, for a single tone at another frequency than the last element
/// (a melody's note between rings).
const CP_OTHER_TONE_BELOW_LAST_DB: f32 = 6.0;
/// Runs whose frequencies differ less than this (Hz) may be elements of
/// one plan.
const SAME_ELEMENT_HZ: f32 = 40.0;

fn cadence_tolerance(v: u32) -> u32 {
    (v * 25 / 100).max(75)
}

/// Tone runs, cadence, SIT, fax and beep.
pub struct ToneTracker {
    run: Option<Run>,
    gap: u32,
    /// Recent call-progress segments, oldest first.
    cp: [Segment; HISTORY],
    cp_len: usize,
    /// Last three segments of any frequency (for SIT).
    recent: [Segment; 3],
    recent_len: usize,
    v21_frames: u32,
    v21_fsk: u32,
    /// First of the odd (non-matching) tonal frames now bridged inside the
    /// current run, and its frequency.
    odd_start: Option<(u32, f32)>,
    /// Frames since the stream started.
    frame: u32,
    /// The current frame belongs to a tone (for the VAD).
    pub tonal: bool,
    /// Any tone run of at least 100 ms was seen.
    pub seen_tone: bool,
    /// A run started at this frame / was just confirmed as a tone.
    pub run_started: bool,
    pub run_confirmed: bool,
    loudest_db: f32,
    /// Flatness of the frames lying at the noise floor, learned from the
    /// first of them: the VAD's estimate learns slowly, so a tone in hiss
    /// from the first second would be judged without the noise correction.
    floor_flatness: f32,
    floor_frames: u32,
}

impl Default for ToneTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl ToneTracker {
    pub fn new() -> Self {
        ToneTracker {
            run: None,
            gap: 0,
            cp: [Segment::default(); HISTORY],
            cp_len: 0,
            recent: [Segment::default(); 3],
            recent_len: 0,
            v21_frames: 0,
            v21_fsk: 0,
            odd_start: None,
            frame: 0,
            tonal: false,
            seen_tone: false,
            run_started: false,
            run_confirmed: false,
            loudest_db: -200.0,
            floor_flatness: 0.0,
            floor_frames: 0,
        }
    }

    /// Level of the loudest tone segment so far (dB), or very low.
    pub fn loudest_db(&self) -> f32 {
        self.loudest_db
    }

    /// Level (dB) of the latest call-progress element the cadence history
    /// holds (the ring a ringback verdict rests on), if any.
    pub fn last_progress_level_db(&self) -> Option<f32> {
        self.cp_len.checked_sub(1).map(|i| self.cp[i].level_db)
    }

    /// The latest call-progress element the cadence history holds.
    pub fn last_progress(&self) -> Option<Segment> {
        self.cp_len.checked_sub(1).map(|i| self.cp[i])
    }

    /// The open run is a call-progress element (330–660 Hz) that has
    /// lasted `min_ms`: its level (dB).
    pub fn open_progress_level_db(&self, min_ms: u32) -> Option<f32> {
        self.open_segment(min_ms)
            .filter(|s| (CP_LO_HZ..=CP_HI_HZ).contains(&s.lo))
            .map(|s| s.level_db)
    }

    /// A tone run is going on at this frame but is not yet known to be a
    /// tone (it is confirmed once steady for 100 ms, and the speech state
    /// is then rolled back to its start).
    pub fn run_pending(&self) -> bool {
        self.run
            .is_some_and(|run| run.last == self.frame && run.n < STEADY_FRAMES)
    }

    /// The run in progress, as a segment, if it has lasted `min_ms`.
    pub fn open_segment(&self, min_ms: u32) -> Option<Segment> {
        let run = self.run?;
        (run.n * FRAME_MS >= min_ms).then(|| run.segment())
    }

    /// Feeds one frame's features; `floor_db` is the VAD's noise floor.
    /// `frame` is the frame index (20 ms units). Returns a verdict when one
    /// is reached at this frame.
    /// `hiss`: the floor is broadband noise, whose share of the band may be
    /// discounted from a tone's purity.
    pub fn update(
        &mut self,
        f: &Features,
        floor_db: f32,
        hiss: bool,
        frame: u32,
    ) -> Option<ToneVerdict> {
        self.frame = frame;
        // A close dual tone's merged peak in place of the strongest one.
        let f = &f.merged_pair();
        if f.band_db < floor_db + FLOOR_NEAR_DB && f.purity2 < TONAL_PURITY {
            self.floor_flatness = if self.floor_frames == 0 {
                f.flatness
            } else {
                self.floor_flatness + 0.15 * (f.flatness - self.floor_flatness)
            };
            self.floor_frames += 1;
        }
        let hiss = hiss
            || (self.floor_frames >= FLOOR_LEARNED_FRAMES && self.floor_flatness >= HISS_FLATNESS);
        // Purity is a share of the band's power, and broadband noise takes
        // its share too: judge the peaks against the power above the noise
        // floor, so a beep 5 dB above white noise is still a tone.
        let above_floor_db = f.band_db - floor_db;
        let noise_gain = if hiss && above_floor_db > 3.0 {
            (1.0 / (1.0 - 10f32.powf(-above_floor_db / 10.0))).min(MAX_NOISE_GAIN)
        } else if self.floor_frames < FLOOR_LEARNED_FRAMES
            && f.residual_flatness >= FRAME_HISS_FLATNESS
        {
            // No floor heard yet (a tone in hiss from the first frame):
            // the frame's own bins away from its peaks show the hiss.
            (1.0 / (1.0 - f.residual_floor_share.min(0.9))).min(MAX_NOISE_GAIN)
        } else {
            1.0
        };
        let purity1 = (f.purity1 * noise_gain).min(1.0);
        // What lies outside the main peak beyond the noise's share.
        let noise_share = 10f32.powf(-above_floor_db.max(0.0) / 10.0);
        let excess_impurity = (1.0 - f.purity1 - noise_share).max(0.0);
        let purity2 = (f.purity2 * noise_gain).min(1.0);
        // A very pure spectrum is a tone whatever the floor says (the floor
        // may not be learned yet when a tone opens the stream).
        let loud = f.band_db > TONAL_MIN_DB
            && (f.band_db > floor_db + TONAL_ABOVE_FLOOR_DB || purity2 >= 0.9);
        let tonal = loud && purity2 >= TONAL_PURITY && f.f1 >= CP_LO_HZ - 20.0;
        let (mut lo, mut hi) = if f.f2 > 0.0 && f.f2 < f.f1 {
            (f.f2, f.f1)
        } else {
            (f.f1, f.f2)
        };
        // A click or a lost packet splatters a second peak below a single
        // tone: the run follows its strongest peak instead of breaking.
        if let Some(run) = &self.run
            && !run.matches(lo)
            && run.hi() == 0.0
            && run.matches(f.f1)
        {
            lo = f.f1;
            hi = 0.0;
        }
        let mut verdict = None;
        let mut odd_frame = false;
        if tonal {
            match &mut self.run {
                Some(run) if run.matches(lo) => {
                    run.last = frame;
                    run.n += 1;
                    if run.n == 2 {
                        // The first window straddles the onset ramp: its
                        // level would read as amplitude spread, and its
                        // frequency (a ramp in noise) as wander.
                        let onset_db = run.e_sum;
                        run.e_sum = 0.0;
                        run.e_sq = 0.0;
                        run.excess_sum = 0.0;
                        run.series_sum = 0.0;
                        run.stat_n = 0;
                        // ... and when this frame is far louder than the
                        // onset and its peak disagrees with it, the onset
                        // window held mostly what came before the tone: the
                        // run follows this frame instead. (A ring starting
                        // with the stream over babble read 469 Hz at -41 dB
                        // in its first window, 428 Hz at -14 dB after; every
                        // later frame was taken for an upper component and
                        // its cadence was never read.)
                        // Off by less than a run's tolerance, the onset
                        // window still spoils the steadiness bar: a 425 Hz
                        // burst in hiss whose onset read 396 Hz was a tone
                        // only 180 ms in, its first 160 ms counted as speech.
                        run.onset_db = onset_db;
                        if (lo - run.lo()).abs() >= ONSET_FREQ_OFF_HZ
                            && f.band_db >= onset_db + ONSET_RAMP_DB
                        {
                            run.reread_frequency();
                            run.reread = true;
                        }
                    } else if run.n == 3
                        && run.reread
                        && (lo - run.lo()).abs() >= RUN_FREQ_TOL
                        && f.band_db >= run.onset_db + ONSET_RAMP_DB
                    {
                        // A 32 ms window overlaps the one before it by
                        // 12 ms: a tone starting late in the onset frame
                        // still ramps in the second window, which then
                        // reads off as well (a UK or US ring starting
                        // 12–16 ms into the stream's first frame read
                        // 460 or 497 Hz there, 425 or 460 Hz after, and
                        // every later frame was taken for an upper
                        // component). The run follows this frame instead,
                        // and the second frame's statistics go too.
                        run.reread_all();
                        run.reread = false;
                    }
                    run.stat_n += 1;
                    if run.lo_n == 0 || (lo - run.lo()).abs() < RUN_FREQ_TOL {
                        run.settled_n += 1;
                        run.settled_sum += lo;
                        run.settled_sq += lo * lo;
                        run.lo_n += 1;
                        run.lo_sum += lo;
                        run.lo_sq += lo * lo;
                        if hi > 0.0 {
                            run.hi_sum += hi;
                            run.hi_n += 1;
                        }
                    } else {
                        // The upper component of a dual tone won this frame.
                        run.hi_sum += lo;
                        run.hi_n += 1;
                    }
                    run.p1_sum += purity1;
                    run.excess_sum += excess_impurity;
                    run.series_sum += f.series_share;
                    run.series_last = f.series_share;
                    run.e_sum += f.band_db;
                    run.e_sq += f.band_db * f.band_db;
                }
                // One odd frame inside an established tone (noise won the
                // beat's null, a packet was lost) is a gap, not a new run:
                // splitting would break the cadence.
                Some(run) if run.n >= STEADY_FRAMES && self.gap < MAX_GAP_FRAMES => {
                    odd_frame = true;
                    // ... unless it is where the next tone begins (SIT
                    // segments follow each other without a gap).
                    let continues_odd = self
                        .odd_start
                        .is_some_and(|(_, f0)| (lo - f0).abs() < RUN_FREQ_TOL);
                    if !continues_odd {
                        self.odd_start = Some((frame, lo));
                    }
                }
                _ => {
                    verdict = self.close_run();
                    // Frames just taken for odd ones belong to this tone.
                    let start = match self.odd_start {
                        Some((at, f0)) if (lo - f0).abs() < RUN_FREQ_TOL => at,
                        _ => frame,
                    };
                    let n = frame - start + 1;
                    self.run = Some(Run {
                        start,
                        last: frame,
                        n,
                        lo_n: 1,
                        lo_sum: lo,
                        lo_sq: lo * lo,
                        hi_sum: hi,
                        hi_n: u32::from(hi > 0.0),
                        settled_n: 0,
                        settled_sum: 0.0,
                        settled_sq: 0.0,
                        p1_sum: purity1 * n as f32,
                        excess_sum: excess_impurity,
                        series_sum: f.series_share,
                        series_last: f.series_share,
                        e_sum: f.band_db,
                        e_sq: f.band_db * f.band_db,
                        stat_n: 1,
                        onset_db: f.band_db,
                        reread: false,
                        confirmed: false,
                        opened_fresh: n == 1,
                    });
                }
            }
            self.gap = if odd_frame { self.gap + 1 } else { 0 };
            if !odd_frame {
                self.odd_start = None;
            }
        } else if self.run.is_some() {
            self.odd_start = None;
            self.gap += 1;
            // A phase reversal or a lost packet (which spoils two
            // overlapping windows) does not end a tone.
            if self.gap > MAX_GAP_FRAMES {
                verdict = self.close_run();
            }
        }
        // A run is a tone (not a vowel) once it has been steady for 100 ms.
        self.tonal = tonal && self.run.is_some_and(|r| r.steady());
        self.run_started = tonal && !odd_frame && self.run.is_some_and(|r| r.n == 1);
        self.run_confirmed = false;
        if self.tonal
            && !odd_frame
            && let Some(run) = &mut self.run
            && !run.confirmed
            && (run.n == STEADY_FRAMES
                || (run.opened_fresh && run.segment().purity1 >= BEEP_PURITY))
        {
            run.confirmed = true;
            self.run_confirmed = true;
        }
        if let Some(run) = self.run
            && run.n >= 5
        {
            self.seen_tone = true;
            // Only call-progress and fax tones, not a beep after speech.
            if run.lo() < CP_HI_HZ || (run.lo() - 2100.0).abs() < 40.0 {
                self.loudest_db = self.loudest_db.max(run.segment().level_db);
            }
        }

        // V.21 HDLC flags: energy confined to 1550–1950 Hz with both the mark
        // (1650) and space (1850) frequencies present.
        // FSK evidence: frames where both frequencies share the power (a
        // steady beep in that band never shows it).
        let v21_loud =
            f.band_db > TONAL_MIN_DB && (loud || f.band_db > floor_db + V21_ABOVE_FLOOR_DB);
        if v21_loud && f.v21_share > 0.75 && f.v21_mark > 0.1 {
            self.v21_frames += 1;
            if f.v21_space > 0.04 && f.purity1 < 0.85 {
                self.v21_fsk += 1;
            }
            self.tonal = true;
        } else {
            self.v21_frames = 0;
            self.v21_fsk = 0;
        }
        if self.v21_frames >= 15 && self.v21_fsk >= 5 {
            return Some(ToneVerdict::Fax(FaxSignal::V21));
        }
        verdict.or_else(|| self.ongoing_verdict())
    }

    fn close_run(&mut self) -> Option<ToneVerdict> {
        let run = self.run.take()?;
        self.gap = 0;
        if run.n < 3 {
            return None;
        }
        let seg = run.segment();
        // SIT history. A tone cut in two by a lost packet (the pieces at
        // the same frequency, a few frames apart) is one segment again.
        let rejoins = self.recent_len > 0 && {
            let prev = &self.recent[self.recent_len - 1];
            (prev.lo - seg.lo).abs() < 0.01 * seg.lo
                && seg.start_ms.saturating_sub(prev.end_ms) <= 100
        };
        if rejoins {
            self.recent[self.recent_len - 1].end_ms = seg.end_ms;
        } else {
            if self.recent_len == self.recent.len() {
                self.recent.copy_within(1.., 0);
                self.recent_len -= 1;
            }
            self.recent[self.recent_len] = seg;
            self.recent_len += 1;
        }
        // CNG: one 0.5 s burst of 1100 Hz (T.30: 0.5 s ± 15 %; ± 2 frames
        // for the run's edges). A music note near 1100 Hz is longer or
        // shorter more often than not.
        if (seg.lo - 1100.0).abs() < 40.0 && (400..=640).contains(&seg.duration_ms()) {
            return Some(ToneVerdict::Fax(FaxSignal::Cng));
        }
        // The shortest call-progress element is 167 ms: shorter runs are
        // vowels or babble and must not reset the cadence history.
        if self.may_be_progress_element(&seg, seg.duration_ms()) {
            if self.cp_len > 0 {
                let prev = self.cp[self.cp_len - 1];
                let same = (prev.lo - seg.lo).abs() < SAME_ELEMENT_HZ
                    && seg.start_ms.saturating_sub(prev.end_ms) < 6000;
                if !same {
                    self.cp_len = 0;
                }
            }
            if self.cp_len == HISTORY {
                self.cp.copy_within(1.., 0);
                self.cp_len -= 1;
            }
            self.cp[self.cp_len] = seg;
            self.cp_len += 1;
            return self.cadence(0);
        }
        None
    }

    /// Verdicts that need not wait for a run to end: CED/ANSam, SIT, and a
    /// ringback whose silence has outlasted every busy/reorder gap.
    fn ongoing_verdict(&self) -> Option<ToneVerdict> {
        if let Some(seg) = self.open_segment(0) {
            let d = seg.duration_ms() + FRAME_MS;
            // Phase reversals every 450 ms cut the run: 360 ms is enough.
            if (seg.lo - 2100.0).abs() < 30.0 && d >= 360 {
                // ANSam's 15 Hz amplitude modulation shows as level spread.
                let signal = if seg.level_sd > 0.6 {
                    FaxSignal::Ansam
                } else {
                    FaxSignal::Ced
                };
                return Some(ToneVerdict::Fax(signal));
            }
            if (1730.0..=1860.0).contains(&seg.lo) && d >= 100 {
                return self.sit(seg);
            }
            // A call-progress tone is on: its cadence is read when it ends.
            // Anything else (mains hum, a vowel) does not stop the clock
            // of the silence after the last call-progress tone.
            if self.may_be_progress_element(&seg, d) {
                return None;
            }
        }
        if self.cp_len > 0 {
            let last = self.cp[self.cp_len - 1];
            let silent = (self.frame + 1) * FRAME_MS - last.end_ms;
            if silent >= 1300 {
                return self.cadence(silent);
            }
        }
        None
    }

    /// A run in the call-progress band, long enough to be an element of a
    /// cadence (`d`: its length so far) and not far under the elements
    /// already heard: a tone plan holds its level (gain steps on a line
    /// move it a few dB), while a melody's notes in the gaps of a ring lie
    /// 20–40 dB under it and used to break the cadence.
    ///
    /// A single tone at another frequency than the last element must come
    /// closer to its level: music 10 dB under a ring (its notes between the
    /// rings) replaced the ring in the history and no ringback was ever
    /// read. The progress tones that follow another at a new frequency
    /// are the North American busy and reorder (dual, 480 + 620 Hz); where
    /// they are single (425 Hz in Europe, 400 Hz in the UK) they share the
    /// ring's frequency.
    fn may_be_progress_element(&self, seg: &Segment, d: u32) -> bool {
        (CP_LO_HZ..=CP_HI_HZ).contains(&seg.lo)
            && d >= CP_MIN_MS
            && self.cp_len.checked_sub(1).is_none_or(|last| {
                let last = &self.cp[last];
                let another_single_tone =
                    seg.hi == 0.0 && (last.lo - seg.lo).abs() >= SAME_ELEMENT_HZ;
                let below = if another_single_tone {
                    CP_OTHER_TONE_BELOW_LAST_DB
                } else {
                    CP_ELEMENT_BELOW_LAST_DB
                };
                seg.level_db >= last.level_db - below
            })
    }

    fn sit(&self, mut third: Segment) -> Option<ToneVerdict> {
        let mut len = self.recent_len;
        // Segment 3 cut in two by a lost packet: its first piece is the
        // last closed segment; segments 1 and 2 come before it.
        if len >= 1 {
            let piece = self.recent[len - 1];
            if (piece.lo - third.lo).abs() < 0.01 * third.lo
                && third.start_ms.saturating_sub(piece.end_ms) <= 100
            {
                third.start_ms = piece.start_ms;
                len -= 1;
            }
        }
        if len < 2 {
            return None;
        }
        let s1 = self.recent[len - 2];
        let s2 = self.recent[len - 1];
        let ok_len = |s: &Segment| (160..=500).contains(&s.duration_ms());
        let in_band = SIT_FIRST_HZ.contains(&s1.lo) && SIT_SECOND_HZ.contains(&s2.lo);
        let close = s2.start_ms.saturating_sub(s1.end_ms) <= 100
            && third.start_ms.saturating_sub(s2.end_ms) <= 100;
        if !(in_band && close && ok_len(&s1) && ok_len(&s2)) {
            return None;
        }
        // ITU SIT uses the nominal 950/1400 Hz: no North American code.
        if (s1.lo - 950.0).abs() < 17.0 && (s2.lo - 1400.0).abs() < 14.0 {
            return Some(ToneVerdict::Sit(None));
        }
        let high1 = s1.lo > 950.0;
        let high2 = s2.lo > 1400.0;
        let long1 = s1.duration_ms() > 327;
        // Segment 2 lies between segments 1 and 3: when its start was lost
        // (a packet), its length is read from their edges instead.
        let d2 = if s2.start_ms.saturating_sub(s1.end_ms) > 40 {
            third.start_ms.saturating_sub(s1.end_ms + FRAME_MS)
        } else {
            s2.duration_ms()
        };
        let long2 = d2 > 327;
        Some(ToneVerdict::Sit(Some(SitCode::from_segments(
            high1, long1, high2, long2,
        ))))
    }

    /// Reads the call-progress history (plus `trailing_off` ms of silence
    /// still running) against every plan.
    fn cadence(&self, trailing_off: u32) -> Option<ToneVerdict> {
        // A noisy element (a burst stretched by babble, a gap shortened by
        // a click) must not spoil the whole history: when it does not fit,
        // the most recent segments are read on their own.
        // A suffix keeps two segments at least: one burst alone says little.
        let skips = self.cp_len.saturating_sub(1).max(1);
        (0..skips)
            .find_map(|skip| Self::cadence_of(&self.cp[skip..self.cp_len], skip == 0, trailing_off))
    }

    /// Reads `segs` (plus `trailing_off` ms of silence) against every plan;
    /// `from_start`: `segs` begins with the first segment of the stream.
    fn cadence_of(segs: &[Segment], from_start: bool, trailing_off: u32) -> Option<ToneVerdict> {
        // Observed on/off elements, skipping a first "on" cut by the start.
        let mut elems = [0u32; HISTORY * 2];
        let mut n = 0;
        for i in 0..segs.len() {
            if i > 0 {
                elems[n] = segs[i].start_ms.saturating_sub(segs[i - 1].end_ms);
                n += 1;
            }
            elems[n] = segs[i].duration_ms();
            n += 1;
        }
        // A tone already on when the stream began: its length is a lower
        // bound only.
        let first_truncated = from_start && segs.first().is_some_and(|s| s.truncated);
        if n == 0 {
            return None;
        }
        let lo = segs.iter().map(|s| s.lo).sum::<f32>() / segs.len() as f32;
        // Noise may show a second peak in some bursts of a single tone (or
        // hide one in a dual tone's): a tie allows both readings.
        let duals = segs.iter().filter(|s| s.hi > 0.0).count();
        let may_be_dual = duals * 2 >= segs.len();
        let may_be_single = duals * 2 <= segs.len();
        let hi = if duals > 0 {
            segs.iter().map(|s| s.hi).sum::<f32>() / duals as f32
        } else {
            0.0
        };
        // A single peak that is one harmonic of a lower voice (steady
        // syllables of a monotone TTS keep a steady pitch and a
        // reorder-like rhythm): its neighbours show at multiples of its
        // fundamental. Dual plans are exempt: there the partner sits where
        // a neighbour would; so are ringbacks, whose close pairs (400+450,
        // 413+438, 440+480) read as one beating peak whose partner leaks
        // into those places (0.04–0.06 in pink noise); a ring's elements
        // are longer than syllables, and hanging up on a voice is what a
        // false busy or reorder does.
        let series = segs.iter().map(|s| s.series_share).sum::<f32>() / segs.len() as f32;
        let voiced = series > VOICE_SERIES_SHARE;
        let mut best: Option<(f32, Progress)> = None;
        let mut classes = [false; 3];
        for plan in PLANS {
            if (plan.lo - lo).abs() > PLAN_FREQ_TOL {
                continue;
            }
            let fits = if plan.hi > 0.0 {
                may_be_dual && (plan.hi - hi).abs() <= PLAN_FREQ_TOL
            } else {
                may_be_single && !(voiced && plan.class != Ringback)
            };
            if !fits {
                continue;
            }
            let len = plan.cadence.len();
            for phase in (0..len).step_by(2) {
                let mut err = (plan.lo - lo).abs() / PLAN_FREQ_TOL;
                let mut ok = true;
                for (i, &obs) in elems[..n].iter().enumerate() {
                    let want = plan.cadence[(phase + i) % len];
                    if i == 0 && first_truncated && obs <= want + cadence_tolerance(want) {
                        continue;
                    }
                    let diff = obs.abs_diff(want);
                    if diff > cadence_tolerance(want) {
                        ok = false;
                        break;
                    }
                    err += diff as f32 / want as f32;
                }
                if ok && trailing_off > 0 {
                    let want = plan.cadence[(phase + n) % len];
                    if trailing_off > want + cadence_tolerance(want) {
                        ok = false;
                    }
                }
                if ok {
                    classes[plan.class as usize] = true;
                    if best.is_none_or(|(e, _)| err < e) {
                        best = Some((err, plan.class));
                    }
                }
            }
        }
        let (_, class) = best?;
        let distinct = classes.iter().filter(|c| **c).count();
        // The silence rule needs a real ring first: a whole on/off/on, or
        // one element as long as the shortest single ring (1000 ms, less
        // its tolerance), or a tone already on when the stream began (its
        // length unknown). One 400 ms run (a held syllable in noise fits
        // half a double ring) followed by quiet is not a ring.
        let longest_on = segs.iter().map(|s| s.duration_ms()).max().unwrap_or(0);
        let real_ring = n >= 3 || longest_on >= 750 || first_truncated;
        let decided = if trailing_off >= 1300 {
            class == Ringback && distinct == 1 && real_ring
        } else {
            (distinct == 1 && n >= 3) || n >= 7
        };
        decided.then_some(ToneVerdict::Progress(class))
    }

    /// A beep: one pure, steady component lasting at least 120 ms. A
    /// generator's sine keeps ~90 % of the band's power in one peak even at
    /// 7 dB SNR; a held vowel spreads it over its harmonics (≤ 0.87 on the
    /// training corpus), hence the purity bar. Some vowels of low voices
    /// are purer than that (the line cuts the fundamental and the 2nd
    /// harmonic takes 95 % of the band): their pitch glides (frequency
    /// spread), they swell and fade (level spread), and what is left of
    /// their other harmonics is more than the noise explains.
    pub fn beep(&self) -> Option<Segment> {
        let seg = self.open_segment(120)?;
        let ok = seg.hi == 0.0
            && seg.purity1 >= BEEP_PURITY
            && seg.settled_freq_sd <= BEEP_MAX_FREQ_SD
            && seg.level_sd <= BEEP_MAX_LEVEL_SD
            && seg.excess_impurity <= BEEP_MAX_EXCESS_IMPURITY
            && (350.0..=2150.0).contains(&seg.lo)
            // V.21 shows FSK evidence; a steady beep in its band (1650 Hz)
            // never does, and holding the tests off for the whole band
            // left such a beep to be seen only after it ended.
            && self.v21_fsk == 0;
        ok.then_some(seg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tonal(f1: f32, band_db: f32, purity: f32) -> Features {
        Features {
            band_db,
            f1,
            purity1: purity,
            purity2: purity,
            flatness: 0.01,
            ..Features::default()
        }
    }

    fn quiet() -> Features {
        Features {
            band_db: -70.0,
            f1: 1000.0,
            purity1: 0.1,
            purity2: 0.2,
            flatness: 0.5,
            ..Features::default()
        }
    }

    /// Feeds `frames` copies of `f` from frame `*n`; the last verdict seen.
    fn feed(t: &mut ToneTracker, n: &mut u32, f: &Features, frames: u32) -> Option<ToneVerdict> {
        let mut last = None;
        for _ in 0..frames {
            if let Some(v) = t.update(f, -75.0, false, *n) {
                last = Some(v);
            }
            *n += 1;
        }
        last
    }

    #[test]
    fn a_ring_whose_onset_window_reads_another_frequency_is_ringback() {
        // The ES/FR ring (1500 ms on) at its ± 15 % cadence edges and
        // ± 1.5 % frequency, starting with the stream: the first window
        // holds little of the tone and reads 469 Hz at -41 dB (babble
        // before it), the tone itself -14 dB.
        for (freq, on_frames) in [(419.0, 64), (427.0, 75), (431.0, 86)] {
            let mut t = ToneTracker::new();
            let mut n = 0;
            feed(&mut t, &mut n, &tonal(469.0, -41.5, 0.78), 1);
            feed(&mut t, &mut n, &tonal(freq, -13.6, 0.98), on_frames);
            let seg = t.open_segment(0).expect("one run");
            assert!((seg.lo - freq).abs() < 1.0, "run read at {} Hz", seg.lo);
            assert_eq!(seg.hi, 0.0, "a single tone, not {}+{}", seg.lo, seg.hi);
            let verdict = feed(&mut t, &mut n, &quiet(), 70);
            assert_eq!(
                verdict,
                Some(ToneVerdict::Progress(Progress::Ringback)),
                "{freq} Hz, {on_frames} frames on"
            );
        }
    }

    #[test]
    fn an_onset_as_loud_as_the_tone_keeps_its_frequency() {
        // A pure vowel whose pitch rises from its first frame (493 → 535 Hz
        // at one level): nothing says the first window missed the sound,
        // so the run is not re-read from its second frame.
        let mut t = ToneTracker::new();
        let mut n = 0;
        feed(&mut t, &mut n, &tonal(493.0, -12.6, 0.9), 1);
        feed(&mut t, &mut n, &tonal(535.0, -12.8, 0.9), 1);
        let seg = t.open_segment(0).expect("one run");
        assert!((seg.lo - 493.0).abs() < 1.0, "run read at {} Hz", seg.lo);
    }

    #[test]
    fn a_beep_that_takes_over_from_mains_hum_is_a_steady_beep() {
        // The hum's in-band harmonic is an open run at -50 dB when an
        // 838 Hz beep at -17 dB starts: the beep's first frames are odd
        // frames of the hum's run, then its own run. Its level spread must
        // be its own (0 dB), not read against frames it never summed.
        let mut t = ToneTracker::new();
        let mut n = 0;
        feed(&mut t, &mut n, &tonal(360.0, -50.0, 0.99), 30);
        feed(&mut t, &mut n, &tonal(838.0, -17.0, 0.99), 8);
        let beep = t.beep().expect("a beep after 160 ms");
        assert!(beep.level_sd < 0.5, "level spread {}", beep.level_sd);
        assert!((beep.lo - 838.0).abs() < 1.0);
        assert_eq!(beep.start_ms, 600, "beep read from {} ms", beep.start_ms);
    }
}
