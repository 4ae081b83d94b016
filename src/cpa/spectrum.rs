//! Per-frame spectral features: one fixed-size 256-point FFT over the last
//! 32 ms of audio (Hann window), computed once per 20 ms frame and shared by
//! every detector (tones, fax, VAD, beep). Tables are built once per process;
//! nothing is allocated per frame.

use std::sync::OnceLock;

/// Samples per analysis frame (20 ms at 8 kHz).
pub const FRAME: usize = 160;
/// FFT size: the last 32 ms of audio.
pub const N: usize = 256;
/// Width of one FFT bin in Hz.
pub const BIN_HZ: f32 = 8000.0 / N as f32;

/// Band used for energy and purity (250–3500 Hz): below it live hum and DC.
const BAND_LO: usize = 8;
const BAND_HI: usize = 112;
/// Peak search range for tones (330–2250 Hz covers every call-progress,
/// SIT, fax and beep frequency of interest).
const PEAK_LO: usize = 11;
const PEAK_HI: usize = 72;
/// Half-width (in bins) of the region credited to one peak: a Hann main lobe
/// is ±2 bins; close dual tones (440+480) fall in one region too.
const PEAK_HALF: usize = 2;

/// Close dual tones: peaks at 375–531 Hz (every close pair of the plans,
/// 400+450 to 440+480, lies there; the ±4 bins stay inside the band)
/// whose ±4 bins (±125 Hz) hold a power spread (standard deviation) of
/// at most `PAIR_MAX_SD_BINS` are credited with all of it (see
/// `close_pair`).
const PAIR_HALF: usize = 4;
const PAIR_LO: usize = BAND_LO + PAIR_HALF;
const PAIR_HI: usize = 17;
const PAIR_MAX_SD_BINS: f32 = 1.4;
/// ... when that adds this much to the peak's share, or when the power's
/// centre lies this far from the peak (noise tips the split lobes one way
/// or the other: the peak then reads near one component, 403 or 448 Hz,
/// from frame to frame). A single tone's ±2 bins already hold nearly all
/// of its power, centred on its peak: its reading is left alone.
const PAIR_MIN_GAIN: f32 = 0.05;
const PAIR_MIN_SHIFT_HZ: f32 = 8.0;
/// The power's centre of a merged pair lies within its lobes, ≤ 1 bin
/// from its peak (458 Hz against 425): farther, the ±4 bins reach power
/// that is not the peak's (mains hum at the band's lower edge).
const PAIR_MAX_SHIFT_HZ: f32 = 1.5 * BIN_HZ;
/// `series_share` at the centre above which the power around the peak is
/// a voice's harmonics, not a pair: a UK ring reads ≤ 0.001 clean and
/// mostly ≤ 0.015 per frame in hiss 12 dB under it (a few frames to
/// 0.04: the run bridges them); the low vowels that the ±4-bin credit
/// turned into tones on the corpus read 0.027–0.10 (at a bar of 0.03 the
/// 0.027 one still did, and a caller's verdict came 3.6 s late).
const PAIR_MAX_SERIES_SHARE: f32 = 0.025;

struct Tables {
    window: [f32; N],
    cos: [f32; N / 2],
    sin: [f32; N / 2],
    bitrev: [u8; N],
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut window = [0.0; N];
        for (i, w) in window.iter_mut().enumerate() {
            *w = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / N as f32).cos();
        }
        let mut cos = [0.0; N / 2];
        let mut sin = [0.0; N / 2];
        for k in 0..N / 2 {
            let a = -2.0 * std::f64::consts::PI * k as f64 / N as f64;
            cos[k] = a.cos() as f32;
            sin[k] = a.sin() as f32;
        }
        let mut bitrev = [0u8; N];
        for (i, b) in bitrev.iter_mut().enumerate() {
            *b = (i as u8).reverse_bits();
        }
        Tables {
            window,
            cos,
            sin,
            bitrev,
        }
    })
}

/// What the detectors need to know about one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Features {
    /// Mean power in 250–3500 Hz, in dB relative to a full-scale sine.
    pub band_db: f32,
    /// Frequency of the strongest peak (Hz, interpolated).
    pub f1: f32,
    /// Frequency of the second peak, 0 when it is negligible.
    pub f2: f32,
    /// Share of the band's power in the strongest peak's region.
    pub purity1: f32,
    /// Share of the band's power in the two strongest peaks' regions.
    pub purity2: f32,
    /// Spectral flatness (geometric ÷ arithmetic mean) over the band:
    /// ~0.5 for white noise, < 0.2 for voiced speech, ~0 for a tone.
    pub flatness: f32,
    /// The band outside the two strongest peaks (±3 bins each): its
    /// flatness (~0.5 when it is white hiss, low when it holds a voice's
    /// other harmonics) and its mean power per bin as a share of the band's
    /// mean, i.e. the share of the band such a floor would take if it lay
    /// under the peaks too. A frame's own estimate of the noise under a
    /// tone, for a stream that opens on a tone before any floor is heard.
    pub residual_flatness: f32,
    pub residual_floor_share: f32,
    /// Share of the band's power in 1550–1950 Hz (V.21 channel 2).
    pub v21_share: f32,
    /// Power near 1650 Hz (mark) and 1850 Hz (space), as shares of the band.
    pub v21_mark: f32,
    pub v21_space: f32,
    /// Share of the band's power above 2 kHz (fricatives, noise).
    pub high_share: f32,
    /// Share of the band's power that a harmonic series under the main
    /// peak explains beyond the noise: a voice whose `f0` is `f1`/2, /3 or
    /// /4 puts power at the other multiples of `f0`; a tone (even clipped,
    /// whose harmonics are multiples of `f1`) puts none there.
    pub series_share: f32,
    /// A close dual tone merged into the main peak (see `close_pair`): its
    /// share of the band (0 when the peak is not one), its centre (Hz) and
    /// `series_share` measured there. Only the tone tracker reads them
    /// (`merged_pair`): the VAD keeps judging the peak itself.
    pub pair_share: f32,
    pub pair_hz: f32,
    pub pair_series_share: f32,
}

impl Features {
    /// The features as the tone tracker reads them: a close dual tone's
    /// merged peak in place of the strongest one. Its `purity1` stays the
    /// peak's own: that share is what tells a generator's sine from a
    /// very pure vowel (the beep, the held vowel), and a low vowel's weak
    /// neighbouring harmonics would raise it across those bars.
    pub fn merged_pair(&self) -> Features {
        if self.pair_share <= 0.0 {
            return *self;
        }
        Features {
            f1: self.pair_hz,
            purity2: self.purity2.max(self.pair_share),
            series_share: self.pair_series_share,
            ..*self
        }
    }
}

/// Sliding 256-sample history plus FFT scratch; fixed size.
pub struct Spectrum {
    history: [f32; N],
    re: [f32; N],
    im: [f32; N],
    power: [f32; N / 2 + 1],
}

impl Default for Spectrum {
    fn default() -> Self {
        Self::new()
    }
}

impl Spectrum {
    pub fn new() -> Self {
        tables();
        Spectrum {
            history: [0.0; N],
            re: [0.0; N],
            im: [0.0; N],
            power: [0.0; N / 2 + 1],
        }
    }

    /// Shifts one 160-sample frame in and computes its features.
    pub fn analyse(&mut self, frame: &[i16; FRAME]) -> Features {
        self.history.copy_within(FRAME.., 0);
        for (h, &s) in self.history[N - FRAME..].iter_mut().zip(frame.iter()) {
            *h = s as f32 / 32768.0;
        }
        self.fft();
        self.features()
    }

    fn fft(&mut self) {
        let t = tables();
        for i in 0..N {
            let j = t.bitrev[i] as usize;
            self.re[j] = self.history[i] * t.window[i];
            self.im[j] = 0.0;
        }
        let mut len = 2;
        while len <= N {
            let half = len / 2;
            let step = N / len;
            let mut start = 0;
            while start < N {
                for k in 0..half {
                    let (wr, wi) = (t.cos[k * step], t.sin[k * step]);
                    let a = start + k;
                    let b = a + half;
                    let xr = self.re[b] * wr - self.im[b] * wi;
                    let xi = self.re[b] * wi + self.im[b] * wr;
                    self.re[b] = self.re[a] - xr;
                    self.im[b] = self.im[a] - xi;
                    self.re[a] += xr;
                    self.im[a] += xi;
                }
                start += len;
            }
            len *= 2;
        }
        for k in 0..=N / 2 {
            self.power[k] = self.re[k] * self.re[k] + self.im[k] * self.im[k];
        }
    }

    fn features(&self) -> Features {
        let p = &self.power;
        let mut total = 0.0f32;
        let mut log_sum = 0.0f32;
        let mut high = 0.0f32;
        for (k, &v) in p.iter().enumerate().take(BAND_HI + 1).skip(BAND_LO) {
            total += v;
            log_sum += (v + 1e-12).ln();
            if k >= 64 {
                high += v;
            }
        }
        let bins = (BAND_HI - BAND_LO + 1) as f32;
        // A full-scale sine (amplitude 1) windowed by Hann gives a peak power
        // of (N/4)^2 spread over ~1.5 bins: normalise so it reads ~0 dB.
        let norm = (N as f32 / 4.0).powi(2) * 1.5;
        let band_db = 10.0 * ((total / norm) + 1e-10).log10();
        if total <= 1e-9 {
            return Features {
                band_db,
                ..Features::default()
            };
        }
        let flatness = ((log_sum / bins).exp() / (total / bins)).clamp(0.0, 1.0);

        let (k1, r1) = self.strongest(PEAK_LO, PEAK_HI, None);
        let (k2, r2) = self.strongest(PEAK_LO, PEAK_HI, Some(k1));
        let purity1 = (r1 / total).min(1.0);
        let purity2 = ((r1 + r2) / total).min(1.0);
        let f1 = self.interpolate(k1);
        let (mut pair_share, mut pair_hz, mut pair_series_share) = (0.0, 0.0, 0.0);
        if let Some((share, centre, sd)) = self.close_pair(k1, total)
            && sd <= PAIR_MAX_SD_BINS
            && (centre - f1).abs() <= PAIR_MAX_SHIFT_HZ
            && (share >= purity1 + PAIR_MIN_GAIN || (centre - f1).abs() >= PAIR_MIN_SHIFT_HZ)
        {
            // At the peak, the partner's lobe reads as a harmonic series
            // (0.23 for a UK ring at 458 Hz); at the centre a pair shows
            // none, while a vowel whose neighbouring harmonics lie in the
            // ±4 bins shows them there.
            let series = self.series_share(centre, total);
            if series <= PAIR_MAX_SERIES_SHARE {
                pair_share = share;
                pair_hz = centre;
                pair_series_share = series;
            }
        }
        let (residual_flatness, residual_floor_share) = self.residual(k1, k2, total, bins);
        let f2 = if r2 > 0.08 * total {
            self.interpolate(k2)
        } else {
            0.0
        };
        let region = |lo: usize, hi: usize| p[lo..=hi].iter().sum::<f32>() / total;
        Features {
            band_db,
            f1,
            f2,
            purity1,
            purity2,
            flatness,
            residual_flatness,
            residual_floor_share,
            v21_share: region(50, 62),
            v21_mark: region(50, 55),
            v21_space: region(56, 61),
            high_share: high / total,
            series_share: self.series_share(f1, total),
            pair_share,
            pair_hz,
            pair_series_share,
        }
    }

    /// Flatness of the band's bins away from the peaks at `k1` and `k2`,
    /// and their mean power as a share of the band's mean (see
    /// `Features::residual_flatness`).
    fn residual(&self, k1: usize, k2: usize, total: f32, bins: f32) -> (f32, f32) {
        let (mut sum, mut log_sum, mut n) = (0.0f32, 0.0f32, 0u32);
        for (k, &v) in self
            .power
            .iter()
            .enumerate()
            .take(BAND_HI + 1)
            .skip(BAND_LO)
        {
            if k.abs_diff(k1) <= PEAK_HALF + 1 || k.abs_diff(k2) <= PEAK_HALF + 1 {
                continue;
            }
            sum += v;
            log_sum += (v + 1e-12).ln();
            n += 1;
        }
        if n == 0 || sum <= 0.0 {
            return (0.0, 0.0);
        }
        let mean = sum / n as f32;
        let flatness = ((log_sum / n as f32).exp() / mean).clamp(0.0, 1.0);
        (flatness, (mean * bins / total).min(1.0))
    }

    /// Power at the multiples of `f1 / k` (k = 2..=4) that are not
    /// multiples of `f1`, less the power midway between them (the noise's
    /// share), as a share of `total`; the largest over `k`.
    fn series_share(&self, f1: f32, total: f32) -> f32 {
        let p = &self.power;
        // Power of the two bins around `f` (a harmonic between bins).
        let at = |f: f32| {
            let b = (f / BIN_HZ) as usize;
            p[b] + p[b + 1]
        };
        let mut best = 0.0f32;
        for k in 2..=4u32 {
            let f0 = f1 / k as f32;
            let (mut series, mut between) = (0.0f32, 0.0f32);
            for h in 1..=(3400.0 / f0) as u32 {
                let fh = h as f32 * f0;
                if h % k == 0 || fh < 290.0 || fh + f0 / 2.0 > 3450.0 {
                    continue;
                }
                // The noise reference lies midway to the other
                // neighbour, away from the main peak's multiples (whose
                // main lobes would swamp it).
                let away = if (h % k) * 2 < k { f0 } else { -f0 };
                series += at(fh);
                between += at(fh + away / 2.0);
            }
            best = best.max((series - between) / total);
        }
        best
    }

    /// A close dual tone (400+450, 413+438, 440+480 Hz) merged into one
    /// peak at `k1`, as (its share of `total`, its centre in Hz, the
    /// power's spread in bins) over ±4 bins, for the caller to judge. Its
    /// components are 1–2 bins apart, closer than a Hann main lobe is wide,
    /// and beat: when they are in antiphase at the window's centre the peak
    /// splits into two lobes whose union is wider than the ±2 bins credited
    /// to one peak (a UK ring, which beats at the frame rate, then reads
    /// ~458 Hz at 0.6–0.78 purity in every frame). Only in the
    /// call-progress band; a pair's spread is ≤ 1.2 bins clean (more in
    /// an onset window), while a voice's neighbouring harmonics lie
    /// ≥ 2.7 bins (85 Hz) from the peak and spread it further when they
    /// are strong (weak ones are left to the series test).
    fn close_pair(&self, k1: usize, total: f32) -> Option<(f32, f32, f32)> {
        if !(PAIR_LO..=PAIR_HI).contains(&k1) {
            return None;
        }
        let p = &self.power[k1 - PAIR_HALF..=k1 + PAIR_HALF];
        let sum: f32 = p.iter().sum();
        if sum <= 0.0 {
            return None;
        }
        let mean = p.iter().enumerate().map(|(j, v)| j as f32 * v).sum::<f32>() / sum;
        let var = p
            .iter()
            .enumerate()
            .map(|(j, v)| (j as f32 - mean).powi(2) * v)
            .sum::<f32>()
            / sum;
        let centre = (k1 - PAIR_HALF) as f32 + mean;
        Some(((sum / total).min(1.0), centre * BIN_HZ, var.sqrt()))
    }

    /// Bin of the strongest local region in `lo..=hi` (excluding ±3 bins of
    /// `avoid`), and that region's power.
    fn strongest(&self, lo: usize, hi: usize, avoid: Option<usize>) -> (usize, f32) {
        let p = &self.power;
        let mut best = (lo, 0.0f32);
        for k in lo..=hi {
            if let Some(a) = avoid
                && k.abs_diff(a) <= PEAK_HALF * 2
            {
                continue;
            }
            if p[k] > p[best.0] || best.1 == 0.0 {
                best = (k, p[k]);
            }
        }
        let k = best.0;
        let mut region = 0.0;
        for v in &p[k - PEAK_HALF..=k + PEAK_HALF] {
            region += *v;
        }
        if let Some(a) = avoid {
            // Do not count bins already credited to the first peak.
            for (j, v) in p
                .iter()
                .enumerate()
                .take(k + PEAK_HALF + 1)
                .skip(k - PEAK_HALF)
            {
                if j.abs_diff(a) <= PEAK_HALF {
                    region -= *v;
                }
            }
        }
        (k, region.max(0.0))
    }

    /// Gaussian (log-quadratic) interpolation of a Hann-window peak.
    fn interpolate(&self, k: usize) -> f32 {
        let p = &self.power;
        let (a, b, c) = (
            (p[k - 1] + 1e-20).ln(),
            (p[k] + 1e-20).ln(),
            (p[k + 1] + 1e-20).ln(),
        );
        let denom = a - 2.0 * b + c;
        let delta = if denom.abs() > 1e-9 {
            (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        // Power spectrum: the log of a squared magnitude halves nothing for
        // the vertex position, so the same formula applies.
        (k as f32 + delta) * BIN_HZ
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, amp: f32, start: usize) -> [i16; FRAME] {
        let mut f = [0i16; FRAME];
        for (i, s) in f.iter_mut().enumerate() {
            let t = (start + i) as f32 / 8000.0;
            *s = (amp * 32767.0 * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16;
        }
        f
    }

    #[test]
    fn a_pure_tone_is_pure_and_its_frequency_is_read_within_5_hz() {
        for freq in [400.0, 913.8, 985.2, 1370.6, 1428.5, 1776.7, 2100.0] {
            let mut s = Spectrum::new();
            let mut feat = Features::default();
            for n in 0..3 {
                feat = s.analyse(&sine(freq, 0.3, n * FRAME));
            }
            assert!((feat.f1 - freq).abs() < 5.0, "{freq}: read {}", feat.f1);
            assert!(feat.purity1 > 0.95, "{freq}: purity {}", feat.purity1);
            assert!(feat.flatness < 0.05);
            assert!(
                (feat.band_db - 20.0 * 0.3f32.log10()).abs() < 3.0,
                "{}",
                feat.band_db
            );
        }
    }

    #[test]
    fn a_voice_harmonic_shows_its_series_and_a_clipped_tone_does_not() {
        // 440 Hz hard-clipped (odd harmonics at 1320, 2200 Hz): no series.
        let mut s = Spectrum::new();
        let mut feat = Features::default();
        for n in 0..3 {
            let mut f = sine(440.0, 0.6, n * FRAME);
            f.iter_mut().for_each(|v| *v = (*v).clamp(-6000, 6000));
            feat = s.analyse(&f);
        }
        assert!(feat.series_share < 0.005, "clipped: {}", feat.series_share);
        // A 110 Hz voice whose 4th harmonic (440 Hz) dominates; its 3rd and
        // 5th are 10 dB down.
        let mut s = Spectrum::new();
        for n in 0..3 {
            let mut f = [0i16; FRAME];
            for (k, amp) in [(3.0, 0.08), (4.0, 0.25), (5.0, 0.08), (6.0, 0.02)] {
                let h = sine(110.0 * k, amp, n * FRAME);
                f.iter_mut().zip(h).for_each(|(v, x)| *v += x);
            }
            feat = s.analyse(&f);
        }
        assert!((feat.f1 - 440.0).abs() < 5.0);
        assert!(feat.series_share > 0.05, "voice: {}", feat.series_share);
    }

    #[test]
    fn a_close_pair_in_antiphase_reads_as_one_peak_at_its_centre() {
        // 400+450 Hz whose beat null falls at the window's centre (the
        // ring started 14 ms into a frame): two lobes, the peak at ~458 Hz
        // holding 0.77 of the band.
        let mut s = Spectrum::new();
        let mut feat = Features::default();
        for n in 0..4 {
            let mut f = [0i16; FRAME];
            for (i, v) in f.iter_mut().enumerate() {
                let t = (n * FRAME + i) as f32 / 8000.0 - 0.014;
                let x = if t < 0.0 {
                    0.0
                } else {
                    (2.0 * std::f32::consts::PI * 400.0 * t).sin()
                        + (2.0 * std::f32::consts::PI * 450.0 * t).sin()
                };
                *v = (0.1 * 32767.0 * x) as i16;
            }
            feat = s.analyse(&f);
        }
        assert!(feat.purity1 < 0.8, "peak purity {}", feat.purity1);
        assert!(feat.pair_share > 0.95, "pair share {}", feat.pair_share);
        assert!((feat.pair_hz - 425.0).abs() < 3.0, "{}", feat.pair_hz);
        assert!(feat.pair_series_share < 0.01);
        let merged = feat.merged_pair();
        assert_eq!((merged.f1, merged.purity1), (feat.pair_hz, feat.purity1));
        assert!(merged.purity2 > 0.95);
    }

    #[test]
    fn a_low_voice_is_not_a_close_pair() {
        // A 105 Hz voice whose 4th harmonic (420 Hz) dominates, its 3rd
        // and 5th 10 dB down: they lie in the ±4 bins of the peak.
        let mut s = Spectrum::new();
        let mut feat = Features::default();
        for n in 0..3 {
            let mut f = [0i16; FRAME];
            for (k, amp) in [(3.0, 0.08), (4.0, 0.25), (5.0, 0.08), (6.0, 0.02)] {
                let h = sine(105.0 * k, amp, n * FRAME);
                f.iter_mut().zip(h).for_each(|(v, x)| *v += x);
            }
            feat = s.analyse(&f);
        }
        assert_eq!(feat.pair_share, 0.0, "{feat:?}");
        assert_eq!(feat.merged_pair(), feat);
    }

    #[test]
    fn silence_yields_zero_features_without_nan() {
        let mut s = Spectrum::new();
        let f = s.analyse(&[0; FRAME]);
        assert!(f.band_db < -90.0);
        assert_eq!(f.purity1, 0.0);
    }
}
