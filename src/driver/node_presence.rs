//! One process per node name.
//!
//! Two processes running as the same node would wreck each other: each
//! start closes "its" calls in flight as interrupted (the other's calls),
//! and their leases, trunk shares and spools are one. A node therefore
//! marks the store with its process (`node_presence`: who, and when it
//! last said it was alive, every [`HEARTBEAT`]) and a second process with
//! the same name is refused — unless the holder is gone:
//!
//! - on this machine (same boot and PID namespace) the holder's process
//!   is looked up: gone (a crash, a `kill -9`), it is replaced at once, so
//!   a supervisor restarting a crashed dialer is not held up;
//! - on another machine, it is gone when it has not said so for [`STALE`]:
//!   the new process waits that long, watching; a heartbeat in the
//!   meantime means it is running, and the new process stops.
//!
//! A running node whose heartbeat finds another process holding its name
//! (its store was out of reach for longer than [`STALE`] and a new process
//! took over) stops: the new one has already closed its calls. One whose
//! row is simply gone (the table emptied by hand, a database restored from
//! a backup) takes the free name back. Nodes silent for a week are dropped
//! at the next start of any node; `GET /api/nodes` lists the rest.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use crate::store::{NodeClaim, Store, StoreError};

/// How often a running node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a node on another machine may stay silent before a new
/// process takes its name.
pub const STALE: Duration = Duration::from_secs(20);

/// A process, as written in the store: where it runs and which it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instance {
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks since boot): a PID reused by
    /// another process after a crash is not mistaken for the dialer.
    pub start: u64,
    /// The kernel's boot id and the PID namespace: two processes with both
    /// equal see the same PIDs, so one can look the other up.
    pub boot: String,
    pub pid_namespace: String,
}

impl Instance {
    /// This process.
    pub fn current() -> Instance {
        let pid = std::process::id();
        Instance {
            host: read_trimmed("/proc/sys/kernel/hostname"),
            pid,
            start: process_start(pid).unwrap_or(0),
            boot: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// `host=… pid=… start=… boot=… pidns=…`.
    pub fn to_text(&self) -> String {
        format!(
            "host={} pid={} start={} boot={} pidns={}",
            self.host, self.pid, self.start, self.boot, self.pid_namespace
        )
    }

    /// Reads [`Instance::to_text`]; unknown or missing fields stay empty
    /// (a holder written by a later version is then only judged by its
    /// heartbeat).
    pub fn parse(text: &str) -> Instance {
        let mut instance = Instance::default();
        for field in text.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            match key {
                "host" => instance.host = value.to_string(),
                "pid" => instance.pid = value.parse().unwrap_or(0),
                "start" => instance.start = value.parse().unwrap_or(0),
                "boot" => instance.boot = value.to_string(),
                "pidns" => instance.pid_namespace = value.to_string(),
                _ => {}
            }
        }
        instance
    }

    /// Whether `self` can look `other`'s process up.
    fn sees(&self, other: &Instance) -> bool {
        !self.boot.is_empty()
            && !self.pid_namespace.is_empty()
            && self.boot == other.boot
            && self.pid_namespace == other.pid_namespace
    }

    /// For messages: `pid 123 on host db-2`.
    pub fn describe(&self) -> String {
        match (self.pid, self.host.is_empty()) {
            (0, true) => "an unknown process".to_string(),
            (0, false) => format!("a process on host {}", self.host),
            (pid, true) => format!("pid {pid}"),
            (pid, false) => format!("pid {pid} on host {}", self.host),
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .unwrap_or_default()
}

/// Field 22 of `/proc/PID/stat` (after the command, which may hold spaces
/// and parentheses, so counted from the last `)`).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_command = &stat[stat.rfind(')')? + 1..];
    after_command.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `instance` names still runs (on this machine).
fn running(instance: &Instance) -> bool {
    instance.pid != 0 && process_start(instance.pid) == Some(instance.start)
}

/// Whether a node last seen at `seen_at` is running, at `now`: it said so
/// within [`STALE`] (either way: another machine's clock may be ahead).
pub fn is_alive(seen_at: Timestamp, now: Timestamp) -> bool {
    now.duration_since(seen_at).unsigned_abs() < STALE
}

/// What to do about a node held by another process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It is gone: take the node over.
    TakeOver,
    /// It runs: this process must not.
    Refuse,
    /// Another machine's, and it was seen lately: watch its heartbeat.
    Watch,
}

/// What a process on another machine has shown so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub instance: String,
    pub seen_at: Timestamp,
    /// When this process started watching.
    pub since: Instant,
}

/// Judges the holder of a node this process (`me`) wants: `alive` looks
/// a process of this machine up; `watched` is what the holder showed
/// earlier in this wait.
pub fn judge(
    me: &Instance,
    holder_text: &str,
    seen_at: Timestamp,
    now: (Timestamp, Instant),
    watched: Option<&Watched>,
    alive: impl Fn(&Instance) -> bool,
) -> Verdict {
    let holder = Instance::parse(holder_text);
    if me.sees(&holder) {
        return if alive(&holder) {
            Verdict::Refuse
        } else {
            Verdict::TakeOver
        };
    }
    let stale = SignedDuration::try_from(STALE).unwrap_or(SignedDuration::MAX);
    if now.0.duration_since(seen_at) >= stale {
        return Verdict::TakeOver;
    }
    match watched.filter(|w| w.instance == holder_text) {
        Some(w) if seen_at > w.seen_at => Verdict::Refuse,
        Some(w) if now.1.duration_since(w.since) >= STALE => Verdict::TakeOver,
        _ => Verdict::Watch,
    }
}

/// Why this process may not run as `node`.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "node `{node}` is already running ({holder}); each process needs its own `[store] node`"
    )]
    Running { node: String, holder: String },
    #[error("cannot claim node `{node}` in the store: {source}")]
    Store {
        node: String,
        #[source]
        source: StoreError,
    },
}

/// Claims `node` for this process (blocking: it may wait up to [`STALE`]
/// for a holder on another machine to show whether it runs). Returns the
/// text this process is known by in the store.
pub fn claim(store: &dyn Store, node: &str) -> Result<String, ClaimError> {
    let me = Instance::current();
    let mine = me.to_text();
    let mut replace: Option<String> = None;
    let mut watched: Option<Watched> = None;
    loop {
        let claim = store
            .claim_node(node, &mine, Timestamp::now(), replace.as_deref())
            .map_err(|source| ClaimError::Store {
                node: node.to_string(),
                source,
            })?;
        let NodeClaim::HeldBy { instance, seen_at } = claim else {
            if let Some(gone) = &replace {
                tracing::warn!(
                    node,
                    previous = Instance::parse(gone).describe(),
                    "this node's previous process is gone; taken over"
                );
            }
            return Ok(mine);
        };
        let now = (Timestamp::now(), Instant::now());
        match judge(&me, &instance, seen_at, now, watched.as_ref(), running) {
            Verdict::TakeOver => replace = Some(instance),
            Verdict::Refuse => {
                return Err(ClaimError::Running {
                    node: node.to_string(),
                    holder: Instance::parse(&instance).describe(),
                });
            }
            Verdict::Watch => {
                if watched.as_ref().is_none_or(|w| w.instance != instance) {
                    tracing::warn!(
                        node,
                        holder = Instance::parse(&instance).describe(),
                        wait_s = STALE.as_secs(),
                        "this node's name is held by a process on another machine: \
                         waiting to see whether it still runs"
                    );
                    watched = Some(Watched {
                        instance,
                        seen_at,
                        since: now.1,
                    });
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Says every [`HEARTBEAT`] that this process runs `node`, until shutdown;
/// resolves `taken_over` if another process holds the node now. A store
/// out of reach only costs heartbeats.
pub async fn keep_the_node(
    store: std::sync::Arc<dyn Store>,
    node: String,
    instance: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    taken_over: tokio::sync::oneshot::Sender<String>,
) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = ticks.tick() => {}
        }
        let beat = {
            let (store, node, instance) = (store.clone(), node.clone(), instance.clone());
            tokio::task::spawn_blocking(move || {
                store.node_heartbeat(&node, &instance, Timestamp::now())
            })
            .await
        };
        match beat {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                let _ = taken_over.send(node);
                break;
            }
            Ok(Err(error)) => {
                tracing::warn!(%node, %error, "cannot tell the store this node runs")
            }
            Err(error) => tracing::warn!(%node, %error, "the node heartbeat task failed"),
        }
    }
    // The last handle of the store must not be dropped on the runtime.
    let _ = tokio::task::spawn_blocking(move || drop(store)).await;
}

/// A clean stop: the node's name is free at once. Bounded: a store out of
/// reach must not hold the exit (the next start on this machine finds the
/// process gone anyway).
pub async fn release(store: std::sync::Arc<dyn Store>, node: String, instance: String) {
    let released = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::task::spawn_blocking(move || store.release_node(&node, &instance)),
    )
    .await;
    match released {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => tracing::warn!(%error, "cannot free this node's name in the store"),
        Ok(Err(error)) => tracing::warn!(%error, "the task freeing this node's name failed"),
        Err(_) => tracing::warn!("the store did not free this node's name within 2 s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(boot: &str, pid: u32) -> Instance {
        Instance {
            host: format!("host-{boot}"),
            pid,
            start: 77,
            boot: boot.into(),
            pid_namespace: "pid:[4026531836]".into(),
        }
    }

    #[test]
    fn alive_is_a_heartbeat_within_the_stale_span_either_way() {
        let now = Timestamp::now();
        let secs = |s: i64| SignedDuration::from_secs(s);
        assert!(is_alive(now - secs(19), now));
        assert!(!is_alive(now - secs(20), now));
        // Another machine's clock a little ahead.
        assert!(is_alive(now + secs(3), now));
        assert!(!is_alive(now - secs(7 * 24 * 3600), now));
    }

    #[test]
    fn the_text_form_reads_back() {
        let me = Instance::current();
        assert_eq!(Instance::parse(&me.to_text()), me);
        assert_eq!(me.pid, std::process::id());
        assert!(running(&me), "this process runs: {me:?}");
        let reused = Instance {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(!running(&reused), "a PID with another start time is not it");
        assert_eq!(Instance::parse("garbage pid=x =1"), Instance::default());
    }

    #[test]
    fn a_holder_on_this_machine_is_looked_up() {
        let me = on("a", 1);
        let holder = on("a", 2).to_text();
        let now = (Timestamp::now(), Instant::now());
        let at = now.0;
        assert_eq!(
            judge(&me, &holder, at, now, None, |_| true),
            Verdict::Refuse
        );
        assert_eq!(
            judge(&me, &holder, at, now, None, |_| false),
            Verdict::TakeOver
        );
        // Another PID namespace (a container): not looked up.
        let mut boxed = on("a", 2);
        boxed.pid_namespace = "pid:[1]".into();
        assert_eq!(
            judge(&me, &boxed.to_text(), at, now, None, |_| false),
            Verdict::Watch
        );
    }

    #[test]
    fn a_holder_on_another_machine_is_judged_by_its_heartbeat() {
        let me = on("a", 1);
        let holder = on("b", 1).to_text();
        let start = Instant::now();
        let t0 = Timestamp::now();
        let never = |_: &Instance| panic!("another machine's PIDs are not looked up");
        // Seen lately: watched.
        assert_eq!(
            judge(&me, &holder, t0, (t0, start), None, never),
            Verdict::Watch
        );
        let watched = Watched {
            instance: holder.clone(),
            seen_at: t0,
            since: start,
        };
        let later = |s: u64| {
            (
                t0 + SignedDuration::from_secs(s as i64),
                start + Duration::from_secs(s),
            )
        };
        // Silent so far, not for long: still watched.
        assert_eq!(
            judge(&me, &holder, t0, later(6), Some(&watched), never),
            Verdict::Watch
        );
        // It said it runs: refused.
        let beat = t0 + SignedDuration::from_secs(5);
        assert_eq!(
            judge(&me, &holder, beat, later(6), Some(&watched), never),
            Verdict::Refuse
        );
        // Silent for the whole wait: gone.
        let clock_behind = (t0, start + STALE);
        assert_eq!(
            judge(&me, &holder, t0, clock_behind, Some(&watched), never),
            Verdict::TakeOver
        );
        // Last seen long ago by the store's clock: gone, no wait.
        assert_eq!(
            judge(&me, &holder, t0, later(STALE.as_secs()), None, never),
            Verdict::TakeOver
        );
    }
}
