//! Recording a leg (mono) or a bridged call (stereo: customer left, agent
//! right) to a WAV file. Each channel is placed by its RTP timestamps, so
//! network jitter does not smear the recording and the two sides stay
//! aligned; gaps become silence. A new source (the next customer) is
//! re-anchored at its arrival time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::wav::{TELEPHONY_RATE, write_pcm16};

/// Recording stops growing after this long (memory bound: 8 kHz × 2 bytes
/// × channels per second).
pub const MAX_RECORDING_SECONDS: usize = 4 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Mono recordings, and the left channel of a bridged call.
    Customer = 0,
    Agent = 1,
    /// A supervisor barging in, as the customer heard it: kept apart and
    /// summed into the agent's channel when the file is written (its own
    /// timeline, so neither overwrites the other).
    Supervisor = 2,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    position: usize,
}

pub struct Recorder {
    path: PathBuf,
    started: Instant,
    channels: usize,
    tracks: [Vec<i16>; 3],
    anchors: [Option<Anchor>; 3],
    /// Paused by the agent (a card number is read out): what arrives is
    /// dropped, and the gap it leaves is silence in the file.
    paused: bool,
}

impl Recorder {
    pub fn mono(path: &Path, now: Instant) -> Recorder {
        Recorder::new(path, 1, now)
    }

    pub fn stereo(path: &Path, now: Instant) -> Recorder {
        Recorder::new(path, 2, now)
    }

    fn new(path: &Path, channels: usize, now: Instant) -> Recorder {
        Recorder {
            path: path.to_path_buf(),
            started: now,
            channels,
            tracks: [Vec::new(), Vec::new(), Vec::new()],
            anchors: [None, None, None],
            paused: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops recording what arrives (`true`) or starts again. Each channel
    /// stays placed by its RTP timestamps, so the paused stretch is silence
    /// of its true length and what follows stays aligned.
    pub fn pause(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Adds decoded samples that arrived at `now` in a packet of `ssrc` with
    /// RTP `timestamp`.
    pub fn push(
        &mut self,
        channel: Channel,
        ssrc: u32,
        timestamp: u32,
        samples: &[i16],
        now: Instant,
    ) {
        let index = channel as usize;
        // The supervisor is mixed into the agent's channel: stereo only.
        let written_to = if channel == Channel::Supervisor {
            1
        } else {
            index
        };
        if written_to >= self.channels || self.paused {
            return;
        }
        let anchor = match self.anchors[index] {
            Some(anchor) if anchor.ssrc == ssrc => anchor,
            _ => {
                let elapsed = now.saturating_duration_since(self.started);
                let position = (elapsed.as_micros() as usize * TELEPHONY_RATE as usize / 1_000_000)
                    .max(self.tracks[index].len());
                let anchor = Anchor {
                    ssrc,
                    timestamp,
                    position,
                };
                self.anchors[index] = Some(anchor);
                anchor
            }
        };
        let offset = timestamp.wrapping_sub(anchor.timestamp) as i32;
        let Some(position) = anchor.position.checked_add_signed(offset as isize) else {
            return;
        };
        let limit = MAX_RECORDING_SECONDS * TELEPHONY_RATE as usize;
        let end = (position + samples.len()).min(limit);
        if position >= end {
            return;
        }
        let track = &mut self.tracks[index];
        if track.len() < end {
            track.resize(end, 0);
        }
        track[position..end].copy_from_slice(&samples[..end - position]);
    }

    /// Writes the file (16-bit PCM, 8 kHz) and returns its length in samples
    /// per channel.
    pub fn finish(mut self) -> std::io::Result<usize> {
        let supervisor = std::mem::take(&mut self.tracks[Channel::Supervisor as usize]);
        if !supervisor.is_empty() {
            let agent = &mut self.tracks[Channel::Agent as usize];
            if agent.len() < supervisor.len() {
                agent.resize(supervisor.len(), 0);
            }
            for (sample, voice) in agent.iter_mut().zip(supervisor) {
                *sample = sample.saturating_add(voice);
            }
        }
        let frames = self.tracks[..self.channels]
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let mut interleaved = Vec::with_capacity(frames * self.channels);
        for n in 0..frames {
            for track in &self.tracks[..self.channels] {
                interleaved.push(track.get(n).copied().unwrap_or(0));
            }
        }
        let mut file = std::io::BufWriter::new(std::fs::File::create(&self.path)?);
        write_pcm16(
            &mut file,
            TELEPHONY_RATE,
            self.channels as u16,
            &interleaved,
        )?;
        std::io::Write::flush(&mut file)?;
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::media::wav::Wav;

    #[test]
    fn stereo_places_each_side_by_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let t0 = Instant::now();
        let mut recorder = Recorder::stereo(&path, t0);
        // Customer packets arrive out of order; the agent starts 100 ms later.
        recorder.push(
            Channel::Customer,
            1,
            1160,
            &[2; 160],
            t0 + Duration::from_millis(25),
        );
        recorder.push(
            Channel::Customer,
            1,
            1000,
            &[1; 160],
            t0 + Duration::from_millis(30),
        );
        recorder.push(
            Channel::Agent,
            2,
            50,
            &[3; 160],
            t0 + Duration::from_millis(100),
        );
        assert_eq!(recorder.finish().unwrap(), 960);
        let wav = Wav::parse(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((wav.channels, wav.sample_rate), (2, 8000));
        let left: Vec<i16> = wav.samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = wav.samples.iter().skip(1).step_by(2).copied().collect();
        // First customer packet anchors at 25 ms = sample 200, the earlier
        // timestamp lands 160 samples before it.
        assert_eq!(left[40], 1);
        assert_eq!(left[200], 2);
        assert_eq!(right[799], 0);
        assert_eq!(right[800], 3);
    }

    #[test]
    fn a_barging_supervisor_is_summed_into_the_agents_channel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut recorder = Recorder::stereo(&path, t0);
        recorder.push(Channel::Agent, 2, 0, &[100; 320], t0);
        // The supervisor's frame arrives before the agent's of the same
        // moment: neither overwrites the other.
        recorder.push(Channel::Supervisor, 9, 5000, &[40; 160], t0 + ms(40));
        recorder.push(Channel::Agent, 2, 320, &[100; 160], t0 + ms(41));
        recorder.push(Channel::Customer, 1, 0, &[7; 480], t0);
        assert_eq!(recorder.finish().unwrap(), 480);
        let wav = Wav::parse(&std::fs::read(&path).unwrap()).unwrap();
        let left: Vec<i16> = wav.samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = wav.samples.iter().skip(1).step_by(2).copied().collect();
        assert!(left.iter().all(|&s| s == 7), "the customer's channel alone");
        assert!(right[..320].iter().all(|&s| s == 100));
        assert!(
            right[320..].iter().all(|&s| s == 140),
            "{:?}",
            &right[318..324]
        );
        // A mono recording has no agent channel: the supervisor is left out.
        let mono = dir.path().join("mono.wav");
        let mut recorder = Recorder::mono(&mono, t0);
        recorder.push(Channel::Supervisor, 9, 0, &[40; 160], t0);
        recorder.push(Channel::Customer, 1, 0, &[7; 160], t0);
        assert_eq!(recorder.finish().unwrap(), 160);
        let wav = Wav::parse(&std::fs::read(&mono).unwrap()).unwrap();
        assert!(wav.samples.iter().all(|&s| s == 7));
    }

    #[test]
    fn a_paused_stretch_is_silence_and_what_follows_stays_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut recorder = Recorder::mono(&path, t0);
        recorder.push(Channel::Customer, 7, 0, &[1; 160], t0);
        recorder.pause(true);
        // A card number, read out while paused, never reaches the file.
        recorder.push(Channel::Customer, 7, 160, &[9; 160], t0 + ms(20));
        recorder.push(Channel::Customer, 7, 320, &[9; 160], t0 + ms(40));
        recorder.pause(false);
        recorder.push(Channel::Customer, 7, 480, &[2; 160], t0 + ms(60));
        assert_eq!(recorder.finish().unwrap(), 640);
        let wav = Wav::parse(&std::fs::read(&path).unwrap()).unwrap();
        assert!(wav.samples[..160].iter().all(|&s| s == 1));
        assert!(wav.samples[160..480].iter().all(|&s| s == 0), "silence");
        assert!(wav.samples[480..].iter().all(|&s| s == 2), "in its place");
    }
}
