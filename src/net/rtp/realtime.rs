//! Real-time scheduling of the media threads (`[media] realtime_priority`,
//! `cpu_affinity`), as FreeSWITCH `-rp` and Asterisk `-p` do: the RTP legs
//! get their own tokio runtime whose worker threads run `SCHED_FIFO`, so a
//! compiler, a log shipper or the dialer's own SIP and database work can no
//! longer delay a relayed packet by a scheduler time slice.
//!
//! Only the media runtime's threads are raised: SIP, the API and the store
//! stay on the main runtime at normal priority. The risk of `SCHED_FIFO` is
//! a media thread that spins: it would starve every normal thread on its
//! CPU. The kernel's RT throttling (`kernel.sched_rt_runtime_us`, by default
//! 95 % of each second) is the backstop that keeps the box reachable.
//!
//! Lacking the privilege (no `CAP_SYS_NICE`, `RLIMIT_RTPRIO` 0) is not an
//! error: one warning is logged and the threads run at normal priority.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::runtime::{Builder, Handle, Runtime};

use crate::media::config::{MAX_REALTIME_PRIORITY, MediaConfig};

/// How the media threads are scheduled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaScheduling {
    /// `SCHED_FIFO` priority 1–99; 0 leaves the threads at normal priority.
    pub realtime_priority: u32,
    /// CPUs the media threads may run on; empty: any.
    pub cpus: Vec<usize>,
    /// How long an idle media thread waits before it parks (0: parks at
    /// once). See [`MediaScheduling::install_on`].
    pub wake_coalesce_us: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulingError {
    #[error(
        "cannot set SCHED_FIFO priority {priority}: {source} (needs CAP_SYS_NICE or a large enough RLIMIT_RTPRIO, e.g. systemd LimitRTPRIO=)"
    )]
    Priority {
        priority: u32,
        source: std::io::Error,
    },
    #[error("cannot pin to CPUs {cpus:?}: {source}")]
    Affinity {
        cpus: Vec<usize>,
        source: std::io::Error,
    },
}

impl MediaScheduling {
    /// From `[media] realtime_priority` and `cpu_affinity` (validated there).
    pub fn from_config(config: &MediaConfig) -> MediaScheduling {
        MediaScheduling {
            realtime_priority: config.realtime_priority,
            cpus: config.cpu_affinity.clone(),
            wake_coalesce_us: config.wake_coalesce_us,
        }
    }

    /// Nothing to change: the media legs can share the main runtime.
    pub fn is_default(&self) -> bool {
        self.realtime_priority == 0 && self.cpus.is_empty() && self.wake_coalesce_us == 0
    }

    /// Applies the policy to the calling thread (Linux: per thread). The
    /// affinity is set first so a failing priority still leaves the pinning.
    pub fn apply_to_current_thread(&self) -> Result<(), SchedulingError> {
        if !self.cpus.is_empty() {
            set_affinity(&self.cpus).map_err(|source| SchedulingError::Affinity {
                cpus: self.cpus.clone(),
                source,
            })?;
        }
        if self.realtime_priority > 0 {
            set_fifo_priority(self.realtime_priority).map_err(|source| {
                SchedulingError::Priority {
                    priority: self.realtime_priority,
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Worker threads for a dedicated media runtime: one per allowed CPU.
    pub fn worker_threads(&self) -> usize {
        if self.cpus.is_empty() {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.cpus.len()
        }
    }

    /// Makes every thread `builder` starts apply this policy. A failure is
    /// logged once per runtime (every thread would fail the same way) and
    /// the thread runs on at its inherited priority: the dialer must work
    /// on a box without the privilege.
    ///
    /// With `wake_coalesce_us`, a worker that runs out of work sleeps that
    /// long before it parks in the I/O driver. A real-time thread otherwise
    /// wakes for every packet (nothing delays it, so nothing batches): at
    /// 75,000 packets a second the wake-ups, not the relaying, are most of
    /// its CPU. Sleeping first lets the packets of the next fraction of a
    /// millisecond gather in the sockets, and one wake-up relays them all;
    /// a packet waits at most that long more (500 µs is well under the
    /// 1 ms jitter budget and a 20 ms packet time).
    pub fn install_on(&self, builder: &mut Builder) {
        if self.is_default() {
            return;
        }
        if self.wake_coalesce_us > 0 {
            let pause = std::time::Duration::from_micros(u64::from(self.wake_coalesce_us));
            builder.on_thread_park(move || std::thread::sleep(pause));
        }
        if self.realtime_priority == 0 && self.cpus.is_empty() {
            return;
        }
        let scheduling = self.clone();
        let warned = Arc::new(AtomicBool::new(false));
        builder.on_thread_start(move || {
            if let Err(error) = scheduling.apply_to_current_thread()
                && !warned.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(%error, "media threads run without the configured scheduling");
            }
        });
    }
}

/// Puts the calling thread back under the normal time-sharing policy.
/// Tokio starts its blocking-pool threads with the same hook as its
/// workers, so on a real-time media runtime they run `SCHED_FIFO` too, on
/// the workers' CPUs; work done there at that priority (a recording being
/// written) would keep a worker of equal priority off its CPU until done.
/// Below the workers' priority they preempt it instead. Errors are
/// ignored: at worst the thread keeps the priority it had.
pub(crate) fn leave_realtime_priority() {
    // SAFETY: pid 0 is the calling thread.
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy == libc::SCHED_FIFO || policy == libc::SCHED_RR {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    }
}

fn set_fifo_priority(priority: u32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority.min(MAX_REALTIME_PRIORITY) as libc::c_int,
    };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn set_affinity(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        }
        // SAFETY: `cpu` is below CPU_SETSIZE, the set's capacity.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; the size is the set's own.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The media runtime of `outdial run` when scheduling is configured: worker
/// threads named `media`, each applying `scheduling` as it starts.
pub fn build_media_runtime(scheduling: &MediaScheduling) -> std::io::Result<Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(scheduling.worker_threads())
        .thread_name("media")
        .enable_all();
    scheduling.install_on(&mut builder);
    builder.build()
}

static MEDIA_RUNTIME: OnceLock<Handle> = OnceLock::new();

/// Runs every leg opened from now on (its sockets and its task) on `handle`
/// instead of the caller's runtime. Once per process; a second call is
/// ignored and returns false.
pub fn use_media_runtime(handle: Handle) -> bool {
    MEDIA_RUNTIME.set(handle).is_ok()
}

/// The runtime legs run on, if one was installed.
pub(super) fn media_runtime() -> Option<&'static Handle> {
    MEDIA_RUNTIME.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_changes_nothing_and_threads_follow_the_cpu_list() {
        assert!(MediaScheduling::default().is_default());
        let pinned = MediaScheduling {
            realtime_priority: 0,
            cpus: vec![0],
            wake_coalesce_us: 0,
        };
        assert!(!pinned.is_default());
        assert_eq!(pinned.worker_threads(), 1);
        // Changes nothing on the thread, so it must succeed anywhere.
        assert!(MediaScheduling::default().apply_to_current_thread().is_ok());
    }

    #[test]
    fn a_cpu_beyond_the_set_is_refused_not_truncated() {
        let scheduling = MediaScheduling {
            realtime_priority: 0,
            cpus: vec![libc::CPU_SETSIZE as usize],
            wake_coalesce_us: 0,
        };
        let outcome = std::thread::spawn(move || scheduling.apply_to_current_thread())
            .join()
            .expect("thread");
        assert!(matches!(outcome, Err(SchedulingError::Affinity { .. })));
    }

    #[test]
    fn a_blocking_thread_leaves_the_real_time_policy() {
        // Needs CAP_SYS_NICE to enter SCHED_FIFO at all (the test command
        // runs as root); without it there is nothing to leave, and it says so.
        let policies = std::thread::spawn(|| {
            set_fifo_priority(1).ok()?;
            // SAFETY: pid 0 is the calling thread.
            let before = unsafe { libc::sched_getscheduler(0) };
            leave_realtime_priority();
            // SAFETY: as above.
            let after = unsafe { libc::sched_getscheduler(0) };
            Some((before, after))
        })
        .join()
        .expect("thread");
        match policies {
            Some((before, after)) => {
                assert_eq!(before, libc::SCHED_FIFO);
                assert_eq!(after, libc::SCHED_OTHER);
            }
            None => {
                eprintln!("SCHED_FIFO not permitted here: leave_realtime_priority not exercised")
            }
        }
    }
}
