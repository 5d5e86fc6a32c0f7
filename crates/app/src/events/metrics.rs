//! The deliverer's counts, and the delay from a change to its delivery.
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use meetpool_store::OutboxStats;

/// Upper bounds of the delivery-lag histogram, in seconds.
const LAG_BUCKETS: [f64; 11] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0, 3600.0,
];

#[derive(Default)]
pub(crate) struct EventMetrics {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    lag_buckets: [AtomicU64; LAG_BUCKETS.len()],
    lag_micros: AtomicU64,
}

/// What became of one attempt, for the counters.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    Delivered {
        lag: Duration,
    },
    /// Failed; another attempt is scheduled.
    Retried,
    /// Failed, and the schedule is spent.
    Failed,
}

impl EventMetrics {
    pub(crate) fn count(&self, outcome: Outcome) {
        match outcome {
            Outcome::Delivered { lag } => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                let secs = lag.as_secs_f64();
                for (bound, n) in LAG_BUCKETS.iter().zip(&self.lag_buckets) {
                    if secs <= *bound {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
                self.lag_micros.fetch_add(micros, Ordering::Relaxed);
            }
            Outcome::Retried => {
                self.retried.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Failed => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The counters and, when the database answered, the backlog.
    pub(crate) fn render(&self, stats: Option<&OutboxStats>) -> String {
        let mut out = String::from(
            "# HELP meetpool_event_deliveries_total Outbound event delivery attempts, by outcome.\n\
             # TYPE meetpool_event_deliveries_total counter\n",
        );
        let delivered = self.delivered.load(Ordering::Relaxed);
        for (outcome, n) in [
            ("delivered", delivered),
            ("retried", self.retried.load(Ordering::Relaxed)),
            ("failed", self.failed.load(Ordering::Relaxed)),
        ] {
            let _ = writeln!(
                out,
                "meetpool_event_deliveries_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP meetpool_event_delivery_lag_seconds From the change to its event's delivery.\n\
             # TYPE meetpool_event_delivery_lag_seconds histogram\n",
        );
        for (bound, n) in LAG_BUCKETS.iter().zip(&self.lag_buckets) {
            let _ = writeln!(
                out,
                "meetpool_event_delivery_lag_seconds_bucket{{le=\"{bound}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let sum = self.lag_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = write!(
            out,
            "meetpool_event_delivery_lag_seconds_bucket{{le=\"+Inf\"}} {delivered}\n\
             meetpool_event_delivery_lag_seconds_sum {sum}\n\
             meetpool_event_delivery_lag_seconds_count {delivered}\n"
        );
        if let Some(s) = stats {
            let oldest = s
                .oldest_pending
                .map(|t| {
                    jiff::Timestamp::now()
                        .duration_since(t)
                        .as_secs_f64()
                        .max(0.0)
                })
                .unwrap_or(0.0);
            let _ = write!(
                out,
                "# HELP meetpool_events_backlog Outbound events not delivered, by status.\n\
                 # TYPE meetpool_events_backlog gauge\n\
                 meetpool_events_backlog{{status=\"pending\"}} {}\n\
                 meetpool_events_backlog{{status=\"failed\"}} {}\n\
                 # HELP meetpool_events_oldest_pending_seconds Age of the oldest event still to deliver.\n\
                 # TYPE meetpool_events_oldest_pending_seconds gauge\n\
                 meetpool_events_oldest_pending_seconds {oldest}\n",
                s.pending, s.failed
            );
        }
        out
    }
}
