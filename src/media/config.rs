//! `[media]`: zip tone, inactivity timeout, comfort noise, packet time,
//! call recording.

use serde::Deserialize;

use super::tones::ZipTone;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// No RTP for this long on a call that should be receiving: a dead call.
    pub inactivity_timeout_s: u64,
    /// Send low-level comfort noise when nothing else plays.
    pub comfort_noise: bool,
    /// Packet time we offer, in ms.
    pub ptime_ms: u32,
    pub zip_tone: ZipTone,
    /// When set, every call bridged to an agent is recorded here as a
    /// stereo WAV (customer left, agent right), named
    /// `{campaign}-{record}-{attempt}.wav`.
    pub record_dir: Option<std::path::PathBuf>,
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig {
            inactivity_timeout_s: 30,
            comfort_noise: true,
            ptime_ms: 20,
            zip_tone: ZipTone::default(),
            record_dir: None,
        }
    }
}

impl MediaConfig {
    /// Every problem, each naming its key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !(5..=600).contains(&self.inactivity_timeout_s) {
            problems.push((
                "media.inactivity_timeout_s".into(),
                format!(
                    "{} is out of range; give 5–600 seconds",
                    self.inactivity_timeout_s
                ),
            ));
        }
        if ![10, 20, 30, 40, 60].contains(&self.ptime_ms) {
            problems.push((
                "media.ptime_ms".into(),
                format!("{} ms: give 10, 20, 30, 40 or 60", self.ptime_ms),
            ));
        }
        if let Err(message) = self.zip_tone.validate() {
            problems.push(("media.zip_tone".into(), message));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(MediaConfig::default().problems().is_empty());
        let config: MediaConfig =
            toml::from_str("ptime_ms = 25\n[zip_tone]\nfrequency_hz = 5000.0\n").unwrap();
        let keys: Vec<String> = config.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["media.ptime_ms", "media.zip_tone"]);
        assert!(toml::from_str::<MediaConfig>("zip = 1").is_err());
    }
}
