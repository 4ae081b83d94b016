//! A finished call's row must reach the store even when the store is
//! briefly unreachable (SQLite busy past its timeout, a PostgreSQL restart
//! or failover, a full disk being cleared): the disposition, the notes and
//! the callback the agent set would otherwise be lost, and the record left
//! leased until its node restarts. The write is tried again, waiting longer
//! each time, while the failure is one that may pass
//! ([`StoreError::is_transient`]).

use std::time::Duration;

use crate::store::{AttemptId, StoreError};

/// The first wait before trying again; each wait doubles up to
/// [`LONGEST_WAIT`].
pub const FIRST_WAIT: Duration = Duration::from_millis(500);
pub const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// Past this the row is left in the row spool (`store::spool`): the node's
/// next start writes it before it resolves its attempts in flight.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(15 * 60);

/// Runs `write` on the blocking pool until it succeeds, fails for good, or
/// [`GIVE_UP_AFTER`] has passed; `write` is told whether this is a retry
/// (an earlier try's commit may have landed after all). Returns how many
/// tries it took, and the last error if it never succeeded. `what` (the
/// row's outcome, disposition, callback) goes into every log line about a
/// failure, so that a row the store never got can be told from the log.
pub async fn write_with_retries<W>(
    row: AttemptId,
    what: &str,
    mut write: W,
) -> (u32, Option<StoreError>)
where
    W: FnMut(bool) -> Result<(), StoreError> + Send + 'static,
{
    let started = tokio::time::Instant::now();
    let mut wait = FIRST_WAIT;
    let mut tries = 0;
    loop {
        let retry = tries > 0;
        tries += 1;
        let tried = tokio::task::spawn_blocking(move || {
            let result = write(retry);
            (write, result)
        })
        .await;
        let error = match tried {
            Ok((_, Ok(()))) => return (tries, None),
            Ok((again, Err(error))) => {
                write = again;
                error
            }
            Err(error) => {
                tracing::error!(row, %error, "the attempt row task failed");
                return (tries, None);
            }
        };
        if !error.is_transient() || started.elapsed() + wait > GIVE_UP_AFTER {
            tracing::error!(
                row,
                what,
                %error,
                tries,
                "cannot record the attempt; if the store may come back, the row waits in the spool for the next start"
            );
            return (tries, Some(error));
        }
        tracing::warn!(
            row,
            what,
            %error,
            retry_in_s = wait.as_secs_f64(),
            "cannot record the attempt yet; trying again"
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_busy_store_is_tried_again_until_the_row_is_written() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let (tries, error) = write_with_retries(1, "test", move |retry| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            assert_eq!(retry, n > 0);
            if n < 3 {
                Err(StoreError::busy_for_tests())
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!((tries, error.is_none()), (4, true));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_that_will_not_pass_is_not_tried_again() {
        let (tries, error) =
            write_with_retries(1, "test", |_| Err(StoreError::UnknownAttempt(1))).await;
        assert_eq!(tries, 1);
        assert!(matches!(error, Some(StoreError::UnknownAttempt(1))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_down_for_good_is_given_up_after_a_while() {
        let started = tokio::time::Instant::now();
        let (tries, error) =
            write_with_retries(1, "test", |_| Err(StoreError::busy_for_tests())).await;
        assert!(error.is_some_and(|e| e.is_transient()));
        let waited = started.elapsed();
        assert!(
            waited <= GIVE_UP_AFTER && waited >= GIVE_UP_AFTER - LONGEST_WAIT,
            "{waited:?}"
        );
        // 0.5 + 1 + … + 16 s, then every 30 s.
        assert!((30..=40).contains(&tries), "{tries}");
    }
}
