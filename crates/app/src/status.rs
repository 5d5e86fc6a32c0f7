//! The service and its pool at a glance, for probes, dashboards and the
//! operator's commands.
use jiff::Timestamp;
use meetpool_domain::Booking;
use meetpool_store::{Backend, PlatformProblem, PoolStatus};
use tracing::{error, warn};

use crate::{App, AppError, Result};

/// The most recent assignments one request can list.
pub const RECENT_MAX: u32 = 500;

impl App {
    pub fn backend(&self) -> Backend {
        self.store().backend()
    }

    /// Whether the database answers and is migrated. The cause of a
    /// failure goes to the log, not to the prober.
    pub async fn ready(&self) -> Result<()> {
        self.store().ready().await.map_err(|e| {
            warn!(error = %e, "readiness check failed");
            AppError::from(e)
        })?;
        if let Some(why) = self.settings_changed().await? {
            error!(reason = %why, "not ready: the database's settings are not this replica's");
            return Err(AppError::NotConfigured(why));
        }
        let broken = match self.store().platform() {
            Some(platform) => platform.broken().await?,
            None => None,
        };
        if let Some(why) = broken {
            error!(reason = %why, "not ready: the adopted platform's tables changed under meetpool");
            return Err(AppError::NotConfigured(why));
        }
        Ok(())
    }

    /// The gauges of `GET /metrics`, read now.
    pub async fn gauges(&self) -> String {
        let problems = self.platform_problems().await;
        let status = match &problems {
            Ok(p) => self.pool_status_with(p).await.ok(),
            Err(_) => None,
        };
        let mut out =
            crate::metrics::render_gauges(status.as_ref(), self.store().connections_in_use());
        if let Ok(problems) = &problems {
            if self.adopted().await.unwrap_or(false) {
                out.push_str(&crate::metrics::render_problems(problems));
            }
        }
        if self.config().events.is_some() {
            let stats = self.store().outbox().stats().await.ok();
            out.push_str(&self.events.metrics.render(stats.as_ref()));
        }
        out
    }

    /// The pool at a glance. On an adopted database, the platform's paid
    /// rows meetpool could not take in are customers without a link too,
    /// and count in the queue.
    pub async fn pool_status(&self) -> Result<PoolStatus> {
        let problems = self.platform_problems().await?;
        self.pool_status_with(&problems).await
    }

    async fn pool_status_with(&self, problems: &[PlatformProblem]) -> Result<PoolStatus> {
        let mut status = self.store().pool_status(Timestamp::now()).await?;
        status.unassigned_paid_bookings +=
            problems.iter().filter(|p| p.without_link).count() as i64;
        Ok(status)
    }

    /// The most recently assigned bookings: `limit` of them (10 when
    /// absent; more than [`RECENT_MAX`] is 422 `invalid_limit`).
    pub async fn recent_assignments(&self, limit: Option<u32>) -> Result<Vec<Booking>> {
        match checked_limit(limit, 10, RECENT_MAX)? {
            0 => Ok(Vec::new()),
            limit => Ok(self.store().recent_assignments(limit).await?),
        }
    }
}

/// `limit` as asked, `default` when absent; above `max` it is refused
/// rather than cut, so that a client never mistakes a page for the whole.
pub(crate) fn checked_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32> {
    match limit.unwrap_or(default) {
        n if n > max => Err(AppError::invalid(
            "invalid_limit",
            format!("limit must be at most {max} (got {n})"),
        )),
        n => Ok(n),
    }
}
