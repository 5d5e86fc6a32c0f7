//! Waiting bookings get links as soon as capacity appears; this sweep is
//! the safety net for capacity that appeared while no request noticed (a
//! restart between a release and its backfill, a link added by SQL). It
//! also folds the paid-session counts the database appends as bookings are
//! written, so that the capacity report stays a short read.
use std::future::Future;
use std::time::Duration;

use tracing::{info, warn};

use crate::App;

/// Windows per fold statement: short transactions, however many windows
/// were written since the last sweep.
const FOLD_BATCH: u32 = 500;
const FOLD_BATCHES: usize = 100;

impl App {
    /// Takes back the links of every expired checkout hold, in one unit of
    /// work; how many.
    pub async fn release_expired_holds(&self) -> crate::Result<usize> {
        self.retrying(|| async {
            let mut work = self.begin().await?;
            let n = self.release_holds(&mut work, None).await?;
            work.commit().await?;
            Ok(n)
        })
        .await
    }

    /// Folds the windows of paid-session counts written since the last
    /// fold, a batch at a time, up to `FOLD_BATCHES` batches (what is left
    /// waits for the next sweep); how many rows it merged.
    pub async fn fold_paid_windows(&self) -> crate::Result<u64> {
        let mut merged = 0;
        for _ in 0..FOLD_BATCHES {
            let n = self.store().fold_paid_windows(FOLD_BATCH).await?;
            merged += n;
            if n == 0 {
                break;
            }
        }
        Ok(merged)
    }

    /// Offers free links to the waiting bookings now and every `period`
    /// after, until `shutdown` completes (a sweep under way is dropped:
    /// each of its assignments is its own transaction).
    pub async fn run_sweeper(&self, period: Duration, shutdown: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(period);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                freed = self.release_expired_holds() => match freed {
                    Ok(0) => {}
                    Ok(n) => info!(released = n, "sweep took back the links of expired holds"),
                    Err(e) => warn!(error = %e, "sweep of expired holds failed; retrying at the next one"),
                },
            }
            tokio::select! {
                () = &mut shutdown => return,
                swept = self.backfill_all() => match swept {
                    Ok(0) => {}
                    Ok(n) => info!(assigned = n, "sweep gave links to waiting bookings"),
                    Err(e) => warn!(error = %e, "sweep failed; retrying at the next one"),
                },
            }
            tokio::select! {
                () = &mut shutdown => return,
                folded = self.fold_paid_windows() => if let Err(e) = folded {
                    warn!(error = %e, "fold of paid-session counts failed; retrying at the next sweep");
                },
            }
        }
    }
}
