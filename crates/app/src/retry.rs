//! Concurrency conflicts (a deadlock, a serialisation failure, the overlap
//! constraint refusing a link another transaction took first) are retried
//! here, with the whole transaction re-read, and never reach the caller.
use std::future::Future;
use std::time::Duration;

use crate::{App, AppError};

const MAX_ATTEMPTS: u32 = 60;

impl App {
    /// Runs `attempt` (one transaction) until it succeeds or fails for a
    /// reason other than a concurrency conflict. Only the attempt that
    /// succeeded counts in the metrics.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, AppError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let mut n = 0;
        loop {
            n += 1;
            match self.counters.attempt(attempt()).await {
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
