//! WAV (RIFF/WAVE) files: read prompts and analysis clips, write recordings.
//!
//! Reading accepts PCM 8/16/24/32-bit integer, 32-bit float, μ-law and A-law,
//! plain or `WAVE_FORMAT_EXTENSIBLE`, any channel count and sample rate;
//! [`Wav::to_mono_8k`] downmixes and resamples to what telephony uses. Every
//! malformed file is a [`WavError`] naming what is wrong — never a panic, and
//! never an allocation sized by an untrusted header field.

use std::io::Write;

use thiserror::Error;

use super::g711;

/// The telephony sample rate every core works at.
pub const TELEPHONY_RATE: u32 = 8000;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WavError {
    #[error("not a WAV file: {0}")]
    NotWav(&'static str),
    #[error("truncated WAV file: {0}")]
    Truncated(&'static str),
    #[error("unsupported WAV encoding: {0}")]
    Unsupported(String),
    #[error("invalid WAV header: {0}")]
    Invalid(String),
}

/// Sample encodings we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Pcm { bits: u16 },
    Float32,
    Ulaw,
    Alaw,
}

/// A decoded WAV file: interleaved 16-bit samples at the file's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    pub sample_rate: u32,
    pub channels: u16,
    pub encoding: Encoding,
    /// Interleaved, `channels` samples per frame.
    pub samples: Vec<i16>,
}

const FORMAT_PCM: u16 = 1;
const FORMAT_FLOAT: u16 = 3;
const FORMAT_ALAW: u16 = 6;
const FORMAT_ULAW: u16 = 7;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl Wav {
    /// Parses a whole WAV file held in memory.
    pub fn parse(bytes: &[u8]) -> Result<Wav, WavError> {
        if bytes.get(0..4) != Some(b"RIFF") {
            return Err(WavError::NotWav("no RIFF header"));
        }
        if bytes.get(8..12) != Some(b"WAVE") {
            return Err(WavError::NotWav("RIFF file is not WAVE"));
        }
        let mut format: Option<(Encoding, u16, u32, usize)> = None;
        let mut at = 12;
        while at + 8 <= bytes.len() {
            let id = &bytes[at..at + 4];
            let declared = u32_at(bytes, at + 4).unwrap_or(0) as usize;
            let body_start = at + 8;
            // Writers that stream leave the data size as 0 (libsndfile
            // until the file is closed, e.g. a softphone's call dump still
            // being written) or 0xFFFFFFFF; take what the file holds.
            let declared = if id == b"data" && declared == 0 {
                bytes.len() - body_start
            } else {
                declared
            };
            let body_end = body_start.saturating_add(declared).min(bytes.len());
            let body = &bytes[body_start..body_end];
            match id {
                b"fmt " => format = Some(parse_format(body)?),
                b"data" => {
                    let (encoding, channels, sample_rate, block_align) =
                        format.ok_or(WavError::Invalid("data chunk before fmt chunk".into()))?;
                    let whole_frames = body.len() / block_align;
                    let samples = decode(encoding, &body[..whole_frames * block_align]);
                    return Ok(Wav {
                        sample_rate,
                        channels,
                        encoding,
                        samples,
                    });
                }
                _ => {}
            }
            // Chunks are word-aligned.
            at = body_start
                .saturating_add(declared)
                .saturating_add(declared & 1);
        }
        Err(match format {
            None => WavError::Truncated("no fmt chunk"),
            Some(_) => WavError::Truncated("no data chunk"),
        })
    }

    /// Reads and parses a WAV file.
    pub fn read(path: &std::path::Path) -> Result<Wav, WavReadError> {
        let bytes = std::fs::read(path).map_err(|error| WavReadError::Io {
            path: path.display().to_string(),
            error,
        })?;
        Wav::parse(&bytes).map_err(|error| WavReadError::Format {
            path: path.display().to_string(),
            error,
        })
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.frames() as u64 * 1000 / u64::from(self.sample_rate)
    }

    /// Mono at 8 kHz: channels averaged, other rates resampled with a
    /// windowed-sinc low-pass (so a 16 or 48 kHz clip does not alias).
    pub fn to_mono_8k(&self) -> Vec<i16> {
        let channels = usize::from(self.channels.max(1));
        let mono: Vec<i16> = if channels == 1 {
            self.samples.clone()
        } else {
            self.samples
                .chunks_exact(channels)
                .map(|frame| {
                    let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
                    (sum / channels as i32) as i16
                })
                .collect()
        };
        resample(&mono, self.sample_rate, TELEPHONY_RATE)
    }
}

/// Reading a WAV file from disk: the path, and what went wrong.
#[derive(Debug, Error)]
pub enum WavReadError {
    // The inner errors are part of the message, not a `source`: printed
    // with its chain (`{:#}`) the reason came twice.
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: {error}")]
    Format { path: String, error: WavError },
}

fn parse_format(body: &[u8]) -> Result<(Encoding, u16, u32, usize), WavError> {
    let tag = u16_at(body, 0).ok_or(WavError::Truncated("fmt chunk"))?;
    let channels = u16_at(body, 2).ok_or(WavError::Truncated("fmt chunk"))?;
    let sample_rate = u32_at(body, 4).ok_or(WavError::Truncated("fmt chunk"))?;
    let block_align = u16_at(body, 12).ok_or(WavError::Truncated("fmt chunk"))?;
    let bits = u16_at(body, 14).ok_or(WavError::Truncated("fmt chunk"))?;
    let tag = if tag == FORMAT_EXTENSIBLE {
        // The real format is the first two bytes of the sub-format GUID.
        u16_at(body, 24).ok_or(WavError::Truncated("extensible fmt chunk"))?
    } else {
        tag
    };
    if channels == 0 || channels > 8 {
        return Err(WavError::Invalid(format!("{channels} channels")));
    }
    if !(1000..=384_000).contains(&sample_rate) {
        return Err(WavError::Invalid(format!("sample rate {sample_rate} Hz")));
    }
    let encoding = match (tag, bits) {
        (FORMAT_PCM, 8 | 16 | 24 | 32) => Encoding::Pcm { bits },
        (FORMAT_FLOAT, 32) => Encoding::Float32,
        (FORMAT_ULAW, 8) => Encoding::Ulaw,
        (FORMAT_ALAW, 8) => Encoding::Alaw,
        (tag, bits) => {
            return Err(WavError::Unsupported(format!(
                "format tag {tag} with {bits} bits per sample (supported: PCM 8/16/24/32-bit, \
                 32-bit float, μ-law, A-law)"
            )));
        }
    };
    let expected_align = usize::from(channels) * usize::from(bits / 8);
    if usize::from(block_align) != expected_align {
        return Err(WavError::Invalid(format!(
            "block align {block_align} for {channels} channels of {bits} bits"
        )));
    }
    Ok((encoding, channels, sample_rate, expected_align))
}

fn decode(encoding: Encoding, data: &[u8]) -> Vec<i16> {
    match encoding {
        Encoding::Pcm { bits: 8 } => data.iter().map(|&b| (i16::from(b) - 128) << 8).collect(),
        Encoding::Pcm { bits: 16 } => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
        Encoding::Pcm { bits: 24 } => data
            .chunks_exact(3)
            .map(|b| i16::from_le_bytes([b[1], b[2]]))
            .collect(),
        Encoding::Pcm { .. } => data
            .chunks_exact(4)
            .map(|b| i16::from_le_bytes([b[2], b[3]]))
            .collect(),
        Encoding::Float32 => data
            .chunks_exact(4)
            .map(|b| {
                let value = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let value = if value.is_finite() { value } else { 0.0 };
                (value.clamp(-1.0, 1.0) * 32767.0) as i16
            })
            .collect(),
        Encoding::Ulaw => data.iter().map(|&c| g711::ulaw_decode(c)).collect(),
        Encoding::Alaw => data.iter().map(|&c| g711::alaw_decode(c)).collect(),
    }
}

/// Windowed-sinc resampling (Blackman window, 16 zero crossings), with the
/// cut-off below the lower Nyquist frequency. Offline use only: prompts
/// and analysis clips, not the per-packet path.
pub fn resample(input: &[i16], from_rate: u32, to_rate: u32) -> Vec<i16> {
    if from_rate == to_rate || input.is_empty() || from_rate == 0 || to_rate == 0 {
        return input.to_vec();
    }
    let ratio = f64::from(to_rate) / f64::from(from_rate);
    // Cut-off as a fraction of the input rate, a little under Nyquist.
    let cutoff = 0.5 * ratio.min(1.0) * 0.92;
    let half_width = (16.0 / (2.0 * cutoff)).ceil() as i64;
    let out_len = ((input.len() as f64) * ratio).floor() as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let centre = n as f64 / ratio;
        let first = (centre.floor() as i64 - half_width + 1).max(0);
        let last = (centre.floor() as i64 + half_width).min(input.len() as i64 - 1);
        let mut acc = 0.0;
        for k in first..=last {
            let x = centre - k as f64;
            let sinc = if x.abs() < 1e-9 {
                2.0 * cutoff
            } else {
                (2.0 * std::f64::consts::PI * cutoff * x).sin() / (std::f64::consts::PI * x)
            };
            let position = (x / half_width as f64 + 1.0) / 2.0; // 0..1 across the window
            let window = 0.42 - 0.5 * (2.0 * std::f64::consts::PI * position).cos()
                + 0.08 * (4.0 * std::f64::consts::PI * position).cos();
            acc += f64::from(input[k as usize]) * sinc * window;
        }
        out.push(acc.round().clamp(-32768.0, 32767.0) as i16);
    }
    out
}

/// Writes interleaved 16-bit PCM as a WAV file.
pub fn write_pcm16(
    out: &mut impl Write,
    sample_rate: u32,
    channels: u16,
    samples: &[i16],
) -> std::io::Result<()> {
    let data_len = u32::try_from(samples.len() * 2).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "WAV data over 4 GiB")
    })?;
    let block_align = channels * 2;
    let mut header = Vec::with_capacity(44);
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(36 + data_len).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&FORMAT_PCM.to_le_bytes());
    header.extend_from_slice(&channels.to_le_bytes());
    header.extend_from_slice(&sample_rate.to_le_bytes());
    header.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    header.extend_from_slice(&block_align.to_le_bytes());
    header.extend_from_slice(&16u16.to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&data_len.to_le_bytes());
    out.write_all(&header)?;
    let mut body = Vec::with_capacity(samples.len() * 2);
    for sample in samples {
        body.extend_from_slice(&sample.to_le_bytes());
    }
    out.write_all(&body)
}

/// Writes 8 kHz mono 16-bit PCM to `path`.
pub fn write_mono_8k(path: &std::path::Path, samples: &[i16]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_pcm16(&mut file, TELEPHONY_RATE, 1, samples)?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, ms: u32, amplitude: f64) -> Vec<i16> {
        (0..rate * ms / 1000)
            .map(|n| {
                (amplitude
                    * (2.0 * std::f64::consts::PI * hz * f64::from(n) / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    fn encode(samples: &[i16], rate: u32, channels: u16) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_pcm16(&mut bytes, rate, channels, samples).unwrap();
        bytes
    }

    fn rms(samples: &[i16]) -> f64 {
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
    }

    #[test]
    fn pcm16_round_trips() {
        let samples = tone(8000, 440.0, 100, 10000.0);
        let wav = Wav::parse(&encode(&samples, 8000, 1)).unwrap();
        assert_eq!(wav.sample_rate, 8000);
        assert_eq!(wav.channels, 1);
        assert_eq!(wav.samples, samples);
        assert_eq!(wav.duration_ms(), 100);
        assert_eq!(wav.to_mono_8k(), samples);
    }

    #[test]
    fn ulaw_and_alaw_files_decode() {
        for (tag, law) in [
            (FORMAT_ULAW, g711::Law::Ulaw),
            (FORMAT_ALAW, g711::Law::Alaw),
        ] {
            let samples = tone(8000, 1000.0, 20, 8000.0);
            let codes: Vec<u8> = samples.iter().map(|&s| law.encode(s)).collect();
            let mut bytes = encode(&[], 8000, 1);
            // Patch the header into an 8-bit companded one.
            bytes[20..22].copy_from_slice(&tag.to_le_bytes());
            bytes[32..34].copy_from_slice(&1u16.to_le_bytes());
            bytes[34..36].copy_from_slice(&8u16.to_le_bytes());
            bytes[40..44].copy_from_slice(&(codes.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&codes);
            let wav = Wav::parse(&bytes).unwrap();
            let expected: Vec<i16> = codes.iter().map(|&c| law.decode(c)).collect();
            assert_eq!(wav.samples, expected);
        }
    }

    #[test]
    fn a_data_chunk_still_being_written_is_read_to_the_end_of_the_file() {
        let samples = tone(8000, 440.0, 40, 10000.0);
        for unknown_size in [0u32, u32::MAX] {
            let mut bytes = encode(&samples, 8000, 1);
            bytes[40..44].copy_from_slice(&unknown_size.to_le_bytes());
            let wav = Wav::parse(&bytes).unwrap();
            assert_eq!(wav.samples, samples, "data size {unknown_size:#x}");
        }
    }

    #[test]
    fn stereo_is_downmixed() {
        let interleaved = [100i16, 300, -100, -300];
        let wav = Wav::parse(&encode(&interleaved, 8000, 2)).unwrap();
        assert_eq!(wav.frames(), 2);
        assert_eq!(wav.to_mono_8k(), vec![200, -200]);
    }

    #[test]
    fn resampling_keeps_in_band_tones_and_removes_aliases() {
        // 1 kHz survives 48 kHz → 8 kHz; 6 kHz (above the new Nyquist) is removed.
        let in_band = resample(&tone(48000, 1000.0, 200, 10000.0), 48000, 8000);
        assert_eq!(in_band.len(), 1600);
        let level = rms(&in_band[200..1400]);
        assert!((level - 7071.0).abs() < 300.0, "in-band rms {level}");
        let alias = resample(&tone(48000, 6000.0, 200, 10000.0), 48000, 8000);
        assert!(
            rms(&alias[200..1400]) < 150.0,
            "alias rms {}",
            rms(&alias[200..1400])
        );
        // Upsampling works too.
        let up = resample(&tone(4000, 500.0, 100, 10000.0), 4000, 8000);
        assert_eq!(up.len(), 800);
    }

    #[test]
    fn broken_files_are_errors() {
        let good = encode(&tone(8000, 440.0, 20, 1000.0), 8000, 1);
        assert_eq!(Wav::parse(b""), Err(WavError::NotWav("no RIFF header")));
        assert!(matches!(
            Wav::parse(&good[..30]),
            Err(WavError::Truncated(_))
        ));
        let mut wrong = good.clone();
        wrong[8..12].copy_from_slice(b"AVI ");
        assert!(matches!(Wav::parse(&wrong), Err(WavError::NotWav(_))));
        let mut adpcm = good.clone();
        adpcm[20..22].copy_from_slice(&2u16.to_le_bytes());
        assert!(matches!(Wav::parse(&adpcm), Err(WavError::Unsupported(_))));
        let mut zero_rate = good.clone();
        zero_rate[24..28].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(Wav::parse(&zero_rate), Err(WavError::Invalid(_))));
        // A data size larger than the file is clamped to what is there.
        let mut long = good.clone();
        long[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Wav::parse(&long).unwrap().samples.len(), 160);
        // Every prefix of a valid file parses or errors, never panics.
        for cut in 0..good.len() {
            let _ = Wav::parse(&good[..cut]);
        }
    }
}
