//! Concurrency conflicts (a deadlock, a serialisation failure, the overlap
//! constraint refusing a link another transaction took first) are retried
//! here, with the whole transaction re-read, and never reach the caller.
//!
//! What a transaction reports (its counts, its log lines) is reported once
//! it commits: inside an attempt, [`on_commit`] keeps it with the attempt,
//! to be done (or handed to the enclosing attempt) when the attempt
//! succeeds and dropped when it fails. A retried or rolled-back attempt
//! reports nothing.
use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use crate::{App, AppError};

const MAX_ATTEMPTS: u32 = 60;

type Report = Box<dyn FnOnce() + Send>;

tokio::task_local! {
    /// What the transaction attempt running in this task will report.
    static REPORTS: RefCell<Vec<Report>>;
}

/// Does `report` once the running attempt has succeeded (at once outside
/// an attempt); never if it fails.
pub(crate) fn on_commit(report: impl FnOnce() + Send + 'static) {
    let mut report = Some(Box::new(report) as Report);
    let _ = REPORTS.try_with(|r| r.borrow_mut().extend(report.take()));
    if let Some(now) = report {
        now();
    }
}

/// Runs one attempt with reports of its own, and does them only if it
/// succeeded.
async fn attempt<T, E>(attempt: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let (result, reports) = REPORTS
        .scope(RefCell::new(Vec::new()), async {
            let result = attempt.await;
            (result, REPORTS.with(|r| r.take()))
        })
        .await;
    if result.is_ok() {
        reports.into_iter().for_each(on_commit);
    }
    result
}

impl App {
    /// Runs `attempt` (one transaction) until it succeeds or fails for a
    /// reason other than a concurrency conflict.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut next: F) -> Result<T, AppError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let mut n = 0;
        loop {
            n += 1;
            match attempt(next()).await {
                Err(e) if e.is_retryable() && n < MAX_ATTEMPTS => {
                    // A little jitter so that the losers of one race do not
                    // all collide again on the next round.
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 8);
                    tokio::time::sleep(Duration::from_millis(u64::from(n.min(10)) + jitter)).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::{attempt, on_commit};

    fn counting(n: &Arc<AtomicU32>) -> impl FnOnce() + Send + 'static {
        let n = Arc::clone(n);
        move || {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn reports_wait_for_the_attempt_and_die_with_it() {
        let n = Arc::new(AtomicU32::new(0));
        on_commit(counting(&n));
        assert_eq!(n.load(Ordering::Relaxed), 1, "outside an attempt: at once");

        let failed: Result<(), ()> = attempt(async {
            on_commit(counting(&n));
            Err(())
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(
            n.load(Ordering::Relaxed),
            1,
            "a failed attempt reports nothing"
        );

        let inner_done = attempt(async {
            let inner: Result<(), ()> = attempt(async {
                on_commit(counting(&n));
                Ok(())
            })
            .await;
            assert!(inner.is_ok());
            let waiting = n.load(Ordering::Relaxed);
            Err::<(), u32>(waiting)
        })
        .await;
        assert_eq!(
            inner_done,
            Err(1),
            "an inner success waits for the outer attempt"
        );
        assert_eq!(n.load(Ordering::Relaxed), 1, "and dies with it");

        let ok: Result<(), ()> = attempt(async {
            on_commit(counting(&n));
            on_commit(counting(&n));
            Ok(())
        })
        .await;
        assert!(ok.is_ok());
        assert_eq!(n.load(Ordering::Relaxed), 3);
    }
}
