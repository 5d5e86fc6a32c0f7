//! Counters the service exposes. Plain atomics: the few numbers an operator
//! alerts on, with no per-booking labels.
//!
//! What a transaction does counts only once it commits: inside an attempt of
//! [`crate::retry`], counts wait in the attempt's tally, which is added to
//! the counters (or to the enclosing attempt's tally) when the attempt
//! succeeds and dropped when it fails, so that a retried or rolled-back
//! transaction counts nothing.
use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Assignments,
    Releases,
    PoolExhausted,
    NotificationsApplied,
    NotificationsDuplicate,
    NotificationsRejected,
}

#[derive(Default)]
pub struct Counters {
    assignments: AtomicU64,
    releases: AtomicU64,
    pool_exhausted: AtomicU64,
    notifications_applied: AtomicU64,
    notifications_duplicate: AtomicU64,
    notifications_rejected: AtomicU64,
}

tokio::task_local! {
    /// The counts of the transaction attempt running in this task.
    static TALLY: RefCell<Vec<Counter>>;
}

impl Counters {
    fn get(&self, c: Counter) -> &AtomicU64 {
        match c {
            Counter::Assignments => &self.assignments,
            Counter::Releases => &self.releases,
            Counter::PoolExhausted => &self.pool_exhausted,
            Counter::NotificationsApplied => &self.notifications_applied,
            Counter::NotificationsDuplicate => &self.notifications_duplicate,
            Counter::NotificationsRejected => &self.notifications_rejected,
        }
    }

    /// Counts `c`: at once, or with the running attempt if there is one.
    pub(crate) fn inc(&self, c: Counter) {
        if TALLY.try_with(|t| t.borrow_mut().push(c)).is_err() {
            self.get(c).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs one attempt of a transaction with a tally of its own, and
    /// counts what it counted only if it succeeded.
    pub(crate) async fn attempt<T, E>(
        &self,
        attempt: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let (result, tally) = TALLY
            .scope(RefCell::new(Vec::new()), async {
                let result = attempt.await;
                (result, TALLY.with(|t| t.take()))
            })
            .await;
        if result.is_ok() {
            for c in tally {
                self.inc(c);
            }
        }
        result
    }

    /// The counters in Prometheus' text format.
    pub fn render(&self) -> String {
        let rows = [
            (
                "meetpool_assignments_total",
                "Links assigned to bookings.",
                Counter::Assignments,
            ),
            (
                "meetpool_releases_total",
                "Links taken back from bookings.",
                Counter::Releases,
            ),
            (
                "meetpool_pool_exhausted_total",
                "Times a paid booking found no free link.",
                Counter::PoolExhausted,
            ),
            (
                "meetpool_notifications_applied_total",
                "Payment notifications applied.",
                Counter::NotificationsApplied,
            ),
            (
                "meetpool_notifications_duplicate_total",
                "Payment notifications received again.",
                Counter::NotificationsDuplicate,
            ),
            (
                "meetpool_notifications_rejected_total",
                "Payment notifications refused (signature).",
                Counter::NotificationsRejected,
            ),
        ];
        let mut out = String::new();
        for (name, help, c) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                self.get(c).load(Ordering::Relaxed)
            ));
        }
        out
    }
}
