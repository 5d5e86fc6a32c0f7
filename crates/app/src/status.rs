//! The service and its pool at a glance, for probes, dashboards and the
//! operator's commands.
use jiff::Timestamp;
use meetpool_domain::Booking;
use meetpool_store::{Backend, PoolStatus};
use tracing::warn;

use crate::{App, Result};

impl App {
    pub fn backend(&self) -> Backend {
        self.store().backend()
    }

    /// Whether the database answers and is migrated. The cause of a
    /// failure goes to the log, not to the prober.
    pub async fn ready(&self) -> Result<()> {
        self.store().ready().await.map_err(|e| {
            warn!(error = %e, "readiness check failed");
            e.into()
        })
    }

    pub async fn pool_status(&self) -> Result<PoolStatus> {
        Ok(self.store().pool_status(Timestamp::now()).await?)
    }

    /// The most recently assigned bookings: `limit` of them (10 when
    /// absent, at most 500).
    pub async fn recent_assignments(&self, limit: Option<u32>) -> Result<Vec<Booking>> {
        let limit = limit.unwrap_or(10).clamp(1, 500);
        Ok(self.store().recent_assignments(limit).await?)
    }
}
