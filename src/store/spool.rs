//! The row spool: a finished call's row, kept on this node's disk until the
//! store has it.
//!
//! When a call ends, its row (outcome, the agent's disposition and notes,
//! the callback the agent set) is appended here before the store is asked
//! to take it, and a `written` mark follows once it has. A store that stays
//! away longer than the engine retries ([`crate::driver::store_retry`]), a
//! shutdown while it is away, or a crash between the call's end and the
//! store's commit would otherwise lose the row: the node's next start would
//! only find the attempt unfinished and close it as `interrupted`. Instead
//! the next start writes what the spool still holds first
//! ([`replay`]), then resolves what is left in flight.
//!
//! The file is JSON lines, appended and synced; it is emptied whenever every
//! row in it has been written, so in normal running it stays a few lines
//! long. A line that cannot be read (a torn last line after a power cut, a
//! hand edit) is copied to `FILE.rejected` with a warning, never dropped
//! silently; so is a row the store refuses for good (its attempt is unknown
//! to this database).

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{AttemptId, AttemptResult, CallbackRequest, Store, StoreError};

/// One finished call's row as the engine would write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpooledRow {
    pub attempt: AttemptId,
    pub result: AttemptResult,
    /// Scheduled before the attempt is completed (the record is still
    /// leased then, so completing turns it into a callback).
    pub callback: Option<CallbackRequest>,
    /// The row in words, for the log: record, outcome, disposition.
    pub what: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
enum Entry {
    Row(Box<SpooledRow>),
    Written { attempt: AttemptId },
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("row spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "row spool {path} is in use by another outdial process{holder}: is this node already \
         running? Each node needs its own `[store] node` and `[store] spool`"
    )]
    InUse { path: PathBuf, holder: String },
}

/// The spool file of one node, open for appending.
#[derive(Debug)]
pub struct RowSpool {
    path: PathBuf,
    file: File,
    /// Rows appended and not yet marked written.
    pending: BTreeSet<AttemptId>,
    /// `FILE.lock`, locked for as long as this spool is open (the OS drops
    /// the lock with the process, however it ends). A second process on
    /// the same spool would replay rows the first is still writing and
    /// empty the file under it; on the same node it would also close the
    /// first one's calls as interrupted. The spool itself cannot carry the
    /// lock: it is replaced by a rename at every open.
    _lock: File,
}

impl RowSpool {
    /// Opens (or creates) the spool at `path` and returns the rows an
    /// earlier run left in it unwritten, oldest first. Unreadable lines go
    /// to `FILE.rejected`.
    pub fn open(path: &Path) -> Result<(RowSpool, Vec<SpooledRow>), SpoolError> {
        let io = |source| SpoolError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let lock = lock_spool(path)?;
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(io(error)),
        };
        let read = read_spool(&text);
        for (line, error, _) in &read.unreadable {
            tracing::warn!(
                path = %path.display(),
                line,
                error,
                "a row spool line cannot be read; kept in the .rejected file"
            );
        }
        // Rewritten whole (a new file, synced, renamed over the old one):
        // the rows still owed and nothing else, so that a torn last line
        // cannot swallow the next append.
        let mut fresh = path.as_os_str().to_owned();
        fresh.push(".new");
        let fresh = PathBuf::from(fresh);
        let mut file = File::create(&fresh).map_err(io)?;
        for row in &read.rows {
            let line = serde_json::to_string(&Entry::Row(Box::new(row.clone())))
                .map_err(|e| io(std::io::Error::other(e)))?;
            file.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        std::fs::rename(&fresh, path).map_err(io)?;
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        let spool = RowSpool {
            path: path.to_path_buf(),
            file,
            pending: read.rows.iter().map(|r| r.attempt).collect(),
            _lock: lock,
        };
        for (_, _, line) in &read.unreadable {
            spool.reject(line).map_err(io)?;
        }
        Ok((spool, read.rows))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows appended and not yet written to the store.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Appends `row` and syncs it to disk, before the store is asked to
    /// take it.
    pub fn keep(&mut self, row: &SpooledRow) -> std::io::Result<()> {
        self.append(&Entry::Row(Box::new(row.clone())))?;
        self.pending.insert(row.attempt);
        Ok(())
    }

    /// The store has `attempt`'s row: marks it so, and empties the file
    /// when nothing in it is left to write.
    pub fn written(&mut self, attempt: AttemptId) -> std::io::Result<()> {
        if !self.pending.remove(&attempt) {
            return Ok(());
        }
        if self.pending.is_empty() {
            return self.file.set_len(0);
        }
        self.append(&Entry::Written { attempt })
    }

    /// A row the store refuses for good: out of the spool, into
    /// `FILE.rejected` with the reason, for a person to look at.
    pub fn refused(&mut self, row: &SpooledRow, reason: &str) -> std::io::Result<()> {
        let line = serde_json::json!({ "refused": reason, "row": row }).to_string();
        self.reject(&line)?;
        self.written(row.attempt)
    }

    fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        // One write per line: a crash leaves at most the last line torn.
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()
    }

    fn reject(&self, line: &str) -> std::io::Result<()> {
        let mut rejected = self.path.clone().into_os_string();
        rejected.push(".rejected");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(PathBuf::from(rejected))?;
        file.write_all(format!("{line}\n").as_bytes())?;
        file.sync_data()
    }
}

/// Takes `FILE.lock` (created if missing) and writes this process's id
/// into it, for the error a second process gets.
fn lock_spool(path: &Path) -> Result<File, SpoolError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let io = |source| SpoolError::Io {
        path: lock_path.clone(),
        source,
    };
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&lock_path)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            return Err(SpoolError::InUse {
                path: path.to_path_buf(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(error)) => return Err(io(error)),
    }
    lock.set_len(0).map_err(io)?;
    lock.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(io)?;
    Ok(lock)
}

/// What a spool file holds.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct SpoolContents {
    /// Rows not marked written, oldest first (a row kept twice counts
    /// once, at its latest place).
    pub rows: Vec<SpooledRow>,
    /// Lines that cannot be read: (line number, why, the line as text).
    pub unreadable: Vec<(usize, String, String)>,
}

/// Reads a spool file's bytes; never fails (for the fuzz target too).
#[doc(hidden)]
pub fn read_spool(bytes: &[u8]) -> SpoolContents {
    let mut contents = SpoolContents::default();
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let number = index + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(Entry::Row(row)) => {
                contents.rows.retain(|r| r.attempt != row.attempt);
                contents.rows.push(*row);
            }
            Ok(Entry::Written { attempt }) => contents.rows.retain(|r| r.attempt != attempt),
            Err(error) => {
                contents.unreadable.push((
                    number,
                    error.to_string(),
                    String::from_utf8_lossy(line).into_owned(),
                ));
            }
        }
    }
    contents
}

/// The default spool of a node: beside the SQLite file, or (PostgreSQL)
/// in the working directory under the node's name and a hash of the
/// database's URL (two installations run from one directory with the same
/// node name must not replay each other's rows: attempt ids repeat across
/// databases).
pub fn default_path(store_url: &str, node: &str) -> PathBuf {
    if let Some(file) = store_url.strip_prefix("sqlite://") {
        let mut path = PathBuf::from(file).into_os_string();
        path.push(".spool");
        return PathBuf::from(path);
    }
    let safe: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(format!(
        "outdial-{safe}-{:08x}.spool",
        fnv1a(store_url) as u32
    ))
}

/// FNV-1a: a hash that stays the same across builds and Rust versions
/// (the spool's name must not change with an upgrade).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What [`replay`] did with the rows an earlier run left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Written now, as the call ended.
    pub written: u64,
    /// The store had them already (a commit that landed as the node went
    /// down).
    pub already_written: u64,
    /// Refused for good; in `FILE.rejected`.
    pub refused: u64,
    /// Callbacks due while the node was down, scheduled for now.
    pub late_callbacks: u64,
}

/// Writes the rows an earlier run left in the spool, before the node
/// resolves its attempts in flight (which would close them as
/// interrupted). A store error that may pass stops the replay and is
/// returned: the rows stay in the spool for the next start.
pub fn replay(
    store: &dyn Store,
    spool: &mut RowSpool,
    rows: &[SpooledRow],
    now: Timestamp,
) -> Result<Replayed, StoreError> {
    let mut replayed = Replayed::default();
    let path = spool.path().to_path_buf();
    let io = |source: std::io::Error| {
        StoreError::Corrupt(format!("row spool {}: {source}", path.display()))
    };
    for row in rows {
        // A commit that landed as the node went down: written already,
        // and its callback with it (scheduling that again could call the
        // customer twice). An attempt another node closed as interrupted
        // meanwhile (this node's lease lapsed) is amended below.
        match store.attempt_written(row.attempt) {
            Ok(true) => {
                replayed.already_written += 1;
                spool.written(row.attempt).map_err(io)?;
                continue;
            }
            Ok(false) => {}
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => {
                replayed.refused += 1;
                tracing::error!(what = row.what, %error, "the store refuses a spooled row; kept in the .rejected file");
                spool.refused(row, &error.to_string()).map_err(io)?;
                continue;
            }
        }
        if let Some(request) = &row.callback {
            let (request, late) = callback_not_before(request, now);
            match store.schedule_callback(&request, now) {
                Ok(_) => replayed.late_callbacks += u64::from(late),
                Err(error) if error.is_transient() => return Err(error),
                Err(error) => {
                    tracing::warn!(what = row.what, %error, "cannot schedule the spooled callback")
                }
            }
        }
        match store.complete_attempt(row.attempt, &row.result, now) {
            Ok(_) => {
                replayed.written += 1;
                tracing::info!(what = row.what, "spooled row written");
                spool.written(row.attempt).map_err(io)?;
            }
            Err(StoreError::AttemptAlreadyComplete(_)) => {
                replayed.already_written += 1;
                spool.written(row.attempt).map_err(io)?;
            }
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => {
                replayed.refused += 1;
                tracing::error!(what = row.what, %error, "the store refuses a spooled row; kept in the .rejected file");
                spool.refused(row, &error.to_string()).map_err(io)?;
            }
        }
    }
    Ok(replayed)
}

/// A callback whose time passed while the row waited is due now (a second
/// from now: the store takes only future times): the customer asked to be
/// called back and still is owed the call.
pub fn callback_not_before(request: &CallbackRequest, now: Timestamp) -> (CallbackRequest, bool) {
    let earliest = now.checked_add(SignedDuration::from_secs(1)).unwrap_or(now);
    if request.at >= earliest {
        return (request.clone(), false);
    }
    let mut late = request.clone();
    late.at = earliest;
    (late, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::model::Outcome;

    fn row(attempt: AttemptId) -> SpooledRow {
        SpooledRow {
            attempt,
            result: AttemptResult::new(Outcome::Busy),
            callback: None,
            what: format!("attempt {attempt}"),
        }
    }

    fn attempts(rows: &[SpooledRow]) -> Vec<AttemptId> {
        rows.iter().map(|r| r.attempt).collect()
    }

    #[test]
    fn rows_not_marked_written_are_handed_to_the_next_start_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let (mut spool, left) = RowSpool::open(&path).unwrap();
        assert!(left.is_empty());
        for attempt in [3, 1, 2] {
            spool.keep(&row(attempt)).unwrap();
        }
        spool.written(1).unwrap();
        // Written twice, or never kept: no harm.
        spool.written(1).unwrap();
        spool.written(99).unwrap();
        assert_eq!(spool.pending(), 2);
        drop(spool);
        let (spool, left) = RowSpool::open(&path).unwrap();
        assert_eq!(attempts(&left), vec![3, 2]);
        assert_eq!(spool.pending(), 2);
    }

    #[test]
    fn a_spool_open_in_one_process_is_refused_to_another_until_it_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let (mut first, _) = RowSpool::open(&path).unwrap();
        first.keep(&row(1)).unwrap();
        // A second open (its own file description, as another process
        // would have) finds the lock taken, and leaves the file alone.
        let error = RowSpool::open(&path).unwrap_err();
        assert!(matches!(error, SpoolError::InUse { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id()))
                && message.contains("already running"),
            "{message}"
        );
        first.keep(&row(2)).unwrap();
        drop(first);
        let (_, left) = RowSpool::open(&path).unwrap();
        assert_eq!(attempts(&left), vec![1, 2]);
    }

    #[test]
    fn the_file_is_emptied_when_every_row_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let (mut spool, _) = RowSpool::open(&path).unwrap();
        spool.keep(&row(1)).unwrap();
        spool.keep(&row(2)).unwrap();
        spool.written(2).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
        spool.written(1).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // Appending goes on from the start of the emptied file.
        spool.keep(&row(3)).unwrap();
        drop(spool);
        let (_, left) = RowSpool::open(&path).unwrap();
        assert_eq!(attempts(&left), vec![3]);
    }

    #[test]
    fn a_torn_or_garbled_line_is_set_aside_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let (mut spool, _) = RowSpool::open(&path).unwrap();
        spool.keep(&row(1)).unwrap();
        drop(spool);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"entry\":\"written\",\"attempt\":\n");
        text.push_str("not json at all\n");
        let torn = serde_json::to_string(&Entry::Row(Box::new(row(2)))).unwrap();
        text.push_str(&torn[..torn.len() / 2]);
        std::fs::write(&path, text).unwrap();
        let (mut spool, left) = RowSpool::open(&path).unwrap();
        assert_eq!(attempts(&left), vec![1]);
        // The torn line is gone from the spool: the next row is whole.
        spool.keep(&row(5)).unwrap();
        drop(spool);
        let (_, left) = RowSpool::open(&path).unwrap();
        assert_eq!(attempts(&left), vec![1, 5]);
        let rejected = std::fs::read_to_string(dir.path().join("spool.rejected")).unwrap();
        assert_eq!(rejected.lines().count(), 3, "{rejected}");
        assert!(rejected.contains("not json at all"));
    }

    #[test]
    fn a_spool_that_cannot_be_created_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let error = RowSpool::open(&file.join("spool")).unwrap_err();
        assert!(error.to_string().contains("a-file"), "{error}");
    }

    #[test]
    fn a_callback_due_while_the_row_waited_is_due_now() {
        let now: Timestamp = "2026-07-15T16:00:00Z".parse().unwrap();
        let request = CallbackRequest {
            record: 1,
            at: now - SignedDuration::from_mins(5),
            phone: None,
            agent: None,
        };
        let (late, moved) = callback_not_before(&request, now);
        assert!(moved);
        assert_eq!(late.at, now + SignedDuration::from_secs(1));
        let later = CallbackRequest {
            at: now + SignedDuration::from_hours(1),
            ..request
        };
        assert_eq!(callback_not_before(&later, now), (later.clone(), false));
    }

    #[test]
    fn default_paths() {
        assert_eq!(
            default_path("sqlite:///var/lib/outdial/outdial.db", "n"),
            PathBuf::from("/var/lib/outdial/outdial.db.spool")
        );
        let postgres = default_path("postgres://u@h/db", "outdial@host 1/x");
        let name = postgres.to_str().unwrap();
        assert!(name.starts_with("outdial-outdial_host_1_x-"), "{name}");
        assert!(name.ends_with(".spool"), "{name}");
        assert_eq!(
            postgres,
            default_path("postgres://u@h/db", "outdial@host 1/x")
        );
        assert_ne!(
            postgres,
            default_path("postgres://u@h/other", "outdial@host 1/x")
        );
    }
}
