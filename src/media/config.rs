//! `[media]`: zip tone, inactivity timeout, comfort noise, packet time,
//! call recording, real-time scheduling of the media threads.

use serde::Deserialize;

use super::tones::ZipTone;

/// Highest `SCHED_FIFO` priority on Linux.
pub const MAX_REALTIME_PRIORITY: u32 = 99;
/// CPUs an affinity mask can name (glibc `CPU_SETSIZE`).
pub const MAX_CPUS: usize = 1024;
/// The longest `[media] wake_coalesce_us`: 2 ms still keeps added jitter
/// well inside a 20 ms packet time, and longer would only hide a problem.
pub const MAX_WAKE_COALESCE_US: u32 = 2_000;

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
    /// `SCHED_FIFO` priority (1–99) of the media threads, which then get a
    /// runtime of their own; 0: normal priority, on the main runtime.
    pub realtime_priority: u32,
    /// CPUs the media threads are pinned to (one thread per CPU); empty: any.
    pub cpu_affinity: Vec<usize>,
    /// How long (µs) an idle media thread waits before it sleeps in the
    /// I/O driver, so one wake-up relays the packets of that span: with
    /// `realtime_priority` a thread otherwise wakes for every packet.
    /// 0: no wait. At most 2,000 (a packet waits at most this much more).
    pub wake_coalesce_us: u32,
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig {
            inactivity_timeout_s: 30,
            comfort_noise: true,
            ptime_ms: 20,
            zip_tone: ZipTone::default(),
            record_dir: None,
            realtime_priority: 0,
            cpu_affinity: Vec::new(),
            wake_coalesce_us: 0,
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
        if self.realtime_priority > MAX_REALTIME_PRIORITY {
            problems.push((
                "media.realtime_priority".into(),
                format!(
                    "{} is out of range; give 1–{MAX_REALTIME_PRIORITY} (SCHED_FIFO priority), or 0 for normal scheduling",
                    self.realtime_priority
                ),
            ));
        }
        if self.wake_coalesce_us > MAX_WAKE_COALESCE_US {
            problems.push((
                "media.wake_coalesce_us".into(),
                format!(
                    "{} µs is out of range; give 0–{MAX_WAKE_COALESCE_US} (each relayed packet may wait this long more)",
                    self.wake_coalesce_us
                ),
            ));
        }
        if let Some(cpu) = self.cpu_affinity.iter().find(|&&cpu| cpu >= MAX_CPUS) {
            problems.push((
                "media.cpu_affinity".into(),
                format!("CPU {cpu} is out of range; give CPU numbers below {MAX_CPUS}"),
            ));
        }
        let mut cpus = self.cpu_affinity.clone();
        cpus.sort_unstable();
        if let Some(pair) = cpus.windows(2).find(|pair| pair[0] == pair[1]) {
            problems.push((
                "media.cpu_affinity".into(),
                format!(
                    "CPU {} is listed twice; each CPU gets one media thread",
                    pair[0]
                ),
            ));
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

    #[test]
    fn realtime_priority_and_cpu_affinity_are_range_checked() {
        let keys = |text: &str| -> Vec<String> {
            let config: MediaConfig = toml::from_str(text).unwrap();
            config.problems().into_iter().map(|(k, _)| k).collect()
        };
        assert!(keys("realtime_priority = 0").is_empty());
        assert!(keys("realtime_priority = 99\ncpu_affinity = [0, 1023]").is_empty());
        assert_eq!(
            keys("realtime_priority = 100"),
            vec!["media.realtime_priority"]
        );
        assert_eq!(keys("cpu_affinity = [1024]"), vec!["media.cpu_affinity"]);
        assert_eq!(keys("cpu_affinity = [1, 0, 1]"), vec!["media.cpu_affinity"]);
        let message = toml::from_str::<MediaConfig>("realtime_priority = 120")
            .unwrap()
            .problems()
            .remove(0)
            .1;
        assert!(message.contains("1–99"), "{message}");
        // A negative priority is a type error, caught while parsing.
        assert!(toml::from_str::<MediaConfig>("realtime_priority = -1").is_err());
        assert!(keys("wake_coalesce_us = 2000").is_empty());
        assert_eq!(
            keys("wake_coalesce_us = 2001"),
            vec!["media.wake_coalesce_us"]
        );
    }
}
