//! Prompts: a WAV file loaded once as 8 kHz mono samples, shared between
//! calls, and a player that hands out one frame at a time.

use std::path::Path;
use std::sync::Arc;

use super::tones::FRAME_SAMPLES;
use super::wav::{Wav, WavReadError};

/// Longest prompt we load: an abandon message or a voicemail drop.
pub const MAX_PROMPT_SECONDS: u64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(transparent)]
    Wav(#[from] WavReadError),
    #[error("{path}: the prompt is {seconds} s long; the limit is {MAX_PROMPT_SECONDS} s")]
    TooLong { path: String, seconds: u64 },
    #[error("{path}: the prompt holds no audio")]
    Empty { path: String },
}

/// 8 kHz mono samples, cheap to clone.
#[derive(Debug, Clone)]
pub struct Prompt {
    samples: Arc<[i16]>,
}

impl Prompt {
    /// Loads any WAV the reader understands (PCM, μ-law, A-law, float; any
    /// rate and channel count): downmixed and resampled to 8 kHz mono.
    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let wav = Wav::read(path)?;
        if wav.duration_ms() > MAX_PROMPT_SECONDS * 1000 {
            return Err(PromptError::TooLong {
                path: path.display().to_string(),
                seconds: wav.duration_ms() / 1000,
            });
        }
        let samples = wav.to_mono_8k();
        if samples.is_empty() {
            return Err(PromptError::Empty {
                path: path.display().to_string(),
            });
        }
        Ok(Prompt::from_samples(samples))
    }

    pub fn from_samples(samples: Vec<i16>) -> Prompt {
        Prompt {
            samples: samples.into(),
        }
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 / 8
    }
}

/// Plays a prompt frame by frame; the last frame is padded with silence.
#[derive(Debug, Clone)]
pub struct PromptPlayer {
    prompt: Prompt,
    position: usize,
}

impl PromptPlayer {
    pub fn new(prompt: Prompt) -> PromptPlayer {
        PromptPlayer {
            prompt,
            position: 0,
        }
    }

    /// Fills `frame` with the next samples; false once the prompt is over.
    pub fn next_frame(&mut self, frame: &mut [i16; FRAME_SAMPLES]) -> bool {
        let samples = self.prompt.samples();
        if self.position >= samples.len() {
            return false;
        }
        let end = (self.position + FRAME_SAMPLES).min(samples.len());
        let chunk = &samples[self.position..end];
        frame[..chunk.len()].copy_from_slice(chunk);
        frame[chunk.len()..].fill(0);
        self.position = end;
        true
    }

    pub fn finished(&self) -> bool {
        self.position >= self.prompt.samples().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_every_sample_then_stops() {
        let prompt = Prompt::from_samples((0..400).map(|n| n as i16).collect());
        let mut player = PromptPlayer::new(prompt);
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut played = Vec::new();
        while player.next_frame(&mut frame) {
            played.extend_from_slice(&frame);
        }
        assert_eq!(played.len(), 480);
        assert_eq!(
            &played[..400],
            &(0..400).map(|n| n as i16).collect::<Vec<_>>()[..]
        );
        assert!(played[400..].iter().all(|&s| s == 0));
    }

    #[test]
    fn broken_and_missing_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.wav");
        std::fs::write(&path, b"RIFF\x10\0\0\0WAVEfmt ").unwrap();
        let err = Prompt::load(&path).unwrap_err().to_string();
        assert!(err.contains("broken.wav"), "{err}");
        let err = Prompt::load(&dir.path().join("missing.wav"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read"), "{err}");
        // A 16 kHz stereo file is resampled and downmixed, not refused.
        let path = dir.path().join("wide.wav");
        let mut bytes = Vec::new();
        super::super::wav::write_pcm16(&mut bytes, 16000, 2, &vec![1000i16; 16000 * 2]).unwrap();
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(Prompt::load(&path).unwrap().duration_ms(), 1000);
    }
}
