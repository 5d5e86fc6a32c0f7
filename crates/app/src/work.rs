//! The unit of work: one database transaction, and what it will report
//! once it commits.
//!
//! A use case begins a [`Work`], reads and writes through its [`Tx`], notes
//! in it what the change should report (counts, log lines, alerts), and
//! commits it. The reports happen only after the commit succeeds: a
//! transaction that fails, or that is retried, reports nothing, because its
//! `Work` is dropped with them. Outbound events are the durable kind of
//! report: the database writes them inside the transaction (its triggers
//! see every change), and a commit wakes the deliverer.
//!
//! Concurrency conflicts (a deadlock, a serialisation failure, the overlap
//! constraint refusing a link another transaction took first) are retried
//! by [`App::retrying`], each attempt with a fresh `Work`, and never reach
//! the caller.
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meetpool_domain::{BookingId, LinkId, PaymentStatus};
use meetpool_store::Tx;
use tracing::{info, warn};

use crate::metrics::{Alert, Counter, Counters};
use crate::{App, AppError, Result};

const MAX_ATTEMPTS: u32 = 60;

/// One transaction and the reports it will make when it commits.
pub(crate) struct Work {
    pub tx: Box<dyn Tx>,
    reports: Vec<Report>,
    counters: Arc<Counters>,
    wake: Arc<tokio::sync::Notify>,
    /// Rung when a booking found the pool exhausted: a room may be created.
    rooms_wake: Arc<tokio::sync::Notify>,
}

/// What a committed change tells the operator: a counter and, for the
/// changes worth a line, the log line.
#[derive(Debug)]
pub(crate) enum Report {
    Assigned {
        booking: BookingId,
        order: String,
        link: LinkId,
    },
    Released {
        booking: BookingId,
        order: String,
        link: LinkId,
        reason: String,
    },
    PaymentChanged {
        booking: BookingId,
        order: String,
        from: PaymentStatus,
        to: PaymentStatus,
    },
    /// A booking that needs a link found none free (alert `pool.exhausted`).
    PoolExhausted {
        booking: BookingId,
        order: String,
        enabled_links: usize,
    },
    /// A payment that was not applied because something is wrong with the
    /// money: not the booking's price, or taken for a cancelled booking.
    PaymentAlert {
        alert: Alert,
        booking: BookingId,
        order: String,
        detail: String,
    },
}

impl Report {
    fn make(self, counters: &Counters) {
        match self {
            Report::Assigned {
                booking,
                order,
                link,
            } => {
                counters.inc(Counter::Assignments);
                info!(booking_id = %booking, order_id = %order, link_id = %link, "meeting link assigned");
            }
            Report::Released {
                booking,
                order,
                link,
                reason,
            } => {
                counters.inc(Counter::Releases);
                info!(booking_id = %booking, order_id = %order, link_id = %link, reason, "meeting link released");
            }
            Report::PaymentChanged {
                booking,
                order,
                from,
                to,
            } => {
                info!(booking_id = %booking, order_id = %order, from = %from, to = %to, "payment status changed");
            }
            Report::PoolExhausted {
                booking,
                order,
                enabled_links,
            } => {
                counters.inc(Counter::PoolExhausted);
                counters.alert(Alert::PoolExhausted);
                warn!(
                    booking_id = %booking, order_id = %order, enabled_links,
                    alert = Alert::PoolExhausted.as_str(), "no meeting link is free: the booking waits for manual assignment or capacity"
                );
            }
            Report::PaymentAlert {
                alert,
                booking,
                order,
                detail,
            } => {
                counters.alert(alert);
                warn!(booking_id = %booking, order_id = %order, alert = alert.as_str(), detail, "payment not applied: check it with the payment gateway");
            }
        }
    }
}

impl Work {
    /// Notes what this change will report once committed.
    pub(crate) fn report(&mut self, report: Report) {
        self.reports.push(report);
    }

    /// Commits the transaction, then makes its reports.
    pub(crate) async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.wake.notify_one();
        if self
            .reports
            .iter()
            .any(|r| matches!(r, Report::PoolExhausted { .. }))
        {
            self.rooms_wake.notify_one();
        }
        for report in self.reports {
            report.make(&self.counters);
        }
        Ok(())
    }
}

/// How often a replica reads the database's settings again to see that
/// they are still its own.
const SETTINGS_CHECK: Duration = Duration::from_secs(1);

/// What a replica last found of the database's settings: when, and why
/// they are not its own (`None` when they are).
#[derive(Default)]
pub(crate) struct SettingsWatch(std::sync::Mutex<Option<(Instant, Option<String>)>>);

impl App {
    /// Why this replica must not write: the database's settings changed
    /// under it (`meetpool migrate --change-settings` run elsewhere), so
    /// the same local time would mean another instant here than there.
    /// Read again at most every [`SETTINGS_CHECK`].
    pub(crate) async fn settings_changed(&self) -> Result<Option<String>> {
        if let Some((at, why)) = &*self.settings_watch.0.lock().expect("not poisoned") {
            if at.elapsed() < SETTINGS_CHECK {
                return Ok(why.clone());
            }
        }
        let mine = self.config().db_settings();
        let why = self
            .store()
            .stored_settings()
            .await?
            .filter(|held| *held != mine)
            .map(|held| {
                format!(
                    "the database's settings changed under this replica: they are now \
                     MEETPOOL_TIMEZONE={} and MEETPOOL_BUFFER_MINUTES={}, this replica runs with {} \
                     and {}. Restart it with the database's settings (or without them)",
                    held.timezone, held.buffer_minutes, mine.timezone, mine.buffer_minutes
                )
            });
        *self.settings_watch.0.lock().expect("not poisoned") = Some((Instant::now(), why.clone()));
        Ok(why)
    }

    /// Begins a unit of work; refused while the database's settings are
    /// not this replica's.
    pub(crate) async fn begin(&self) -> Result<Work> {
        if let Some(why) = self.settings_changed().await? {
            return Err(AppError::NotConfigured(why));
        }
        Ok(Work {
            tx: self.store().begin().await?,
            reports: Vec::new(),
            counters: Arc::clone(&self.counters),
            wake: Arc::clone(&self.events.wake),
            rooms_wake: Arc::clone(&self.rooms.wake),
        })
    }

    /// Runs `attempt` (one unit of work, begun and committed inside it)
    /// until it succeeds or fails for a reason other than a concurrency
    /// conflict.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, AppError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let mut n = 0;
        loop {
            n += 1;
            match attempt().await {
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
    use std::sync::Arc;

    use meetpool_domain::BookingId;
    use meetpool_store::ConnectOptions;

    use super::Report;
    use crate::{App, AppError, Config};

    async fn app_on_sqlite(dir: &tempfile::TempDir) -> App {
        let url = format!("sqlite:{}", dir.path().join("work.db").display());
        let store = meetpool_store::connect(&url, &ConnectOptions::default())
            .await
            .unwrap();
        let app = App::new(Arc::from(store), Config::new("UTC").unwrap());
        app.prepare_database(false).await.unwrap();
        app
    }

    fn exhausted() -> Report {
        Report::PoolExhausted {
            booking: BookingId::new(),
            order: "ORDER-1".into(),
            enabled_links: 0,
        }
    }

    fn alerts(app: &App) -> u64 {
        let text = app.metrics();
        text.lines()
            .find_map(|l| l.strip_prefix("meetpool_pool_exhausted_total "))
            .unwrap()
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn reports_wait_for_the_commit_and_die_with_an_uncommitted_work() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_on_sqlite(&dir).await;

        let mut work = app.begin().await.unwrap();
        work.report(exhausted());
        assert_eq!(alerts(&app), 0, "nothing before the commit");
        drop(work);
        assert_eq!(alerts(&app), 0, "a rolled-back work reports nothing");

        let mut work = app.begin().await.unwrap();
        work.report(exhausted());
        work.commit().await.unwrap();
        assert_eq!(alerts(&app), 1, "a committed work reports");

        // The first attempt reports, then loses a race and is retried: only
        // the attempt that commits is reported.
        let mut attempts = 0;
        app.retrying(|| {
            attempts += 1;
            let lost = attempts == 1;
            let app = &app;
            async move {
                let mut work = app.begin().await?;
                work.report(exhausted());
                if lost {
                    return Err(AppError::Busy);
                }
                work.commit().await
            }
        })
        .await
        .unwrap();
        assert_eq!(attempts, 2);
        assert_eq!(alerts(&app), 2);
    }
}
