//! Giving links to bookings and taking them back, inside a transaction the
//! caller owns. The database refuses any double booking; these functions
//! choose well and keep the audit trail.
use jiff::Timestamp;
use meetpool_domain::allocation::NEIGHBOUR_HORIZON;
use meetpool_domain::{choose_link, Booking, BookingId, EventKind, LinkId, Window};
use meetpool_store::Tx;
use serde_json::json;
use tracing::{info, warn};

use crate::metrics::{inc, COUNTERS};
use crate::{App, Result};

/// How many waiting bookings one release offers its freed time to.
const BACKFILL_BATCH: u32 = 50;

/// Whether to leave a trace when no link is free: a booking that just became
/// paid raises the alert; a waiting booking retried by backfill does not
/// raise it again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnExhausted {
    Alert,
    Quiet,
}

impl App {
    pub(crate) fn busy(&self, booking: &Booking) -> Window {
        booking.window.busy(self.config().buffer_minutes)
    }

    /// Gives `booking` a free link if there is one. `Ok(None)`: none is free.
    pub(crate) async fn assign_in(
        &self,
        tx: &mut dyn Tx,
        booking: &Booking,
        on_exhausted: OnExhausted,
    ) -> Result<Option<LinkId>> {
        let busy = self.busy(booking);
        tx.lock_window(busy).await?;
        let candidates = tx
            .candidates(busy.widened(NEIGHBOUR_HORIZON), booking.id)
            .await?;
        let policy = self.config().policy;
        match choose_link(policy, &busy, &candidates) {
            Some(link) => {
                tx.set_link(booking.id, Some(link)).await?;
                tx.record_event(
                    booking.id,
                    EventKind::Assigned,
                    Some(link),
                    json!({ "policy": policy.as_str() }),
                )
                .await?;
                inc(&COUNTERS.assignments);
                info!(booking_id = %booking.id, order_id = %booking.order_id, link_id = %link, "meeting link assigned");
                Ok(Some(link))
            }
            None => {
                if on_exhausted == OnExhausted::Alert {
                    let enabled = candidates.len();
                    tx.record_event(
                        booking.id,
                        EventKind::PoolExhausted,
                        None,
                        json!({ "enabled_links": enabled, "starts_at": booking.window.start, "ends_at": booking.window.end }),
                    )
                    .await?;
                    inc(&COUNTERS.pool_exhausted);
                    warn!(
                        booking_id = %booking.id, order_id = %booking.order_id, enabled_links = enabled,
                        alert = "pool.exhausted", "no meeting link is free: the booking waits for manual assignment or capacity"
                    );
                }
                Ok(None)
            }
        }
    }

    /// Takes `booking`'s link back and offers the freed time to the bookings
    /// waiting for it, oldest first.
    pub(crate) async fn release_in(
        &self,
        tx: &mut dyn Tx,
        booking: &Booking,
        kind: EventKind,
        reason: &str,
    ) -> Result<()> {
        let Some(link) = booking.meeting_link_id else {
            return Ok(());
        };
        tx.set_link(booking.id, None).await?;
        tx.record_event(booking.id, kind, Some(link), json!({ "reason": reason }))
            .await?;
        inc(&COUNTERS.releases);
        info!(booking_id = %booking.id, order_id = %booking.order_id, link_id = %link, reason, "meeting link released");
        self.backfill_in(tx, self.busy(booking), Some(booking.id))
            .await?;
        Ok(())
    }

    /// Offers links to the paid bookings without one whose sessions overlap
    /// `during`, oldest booking first, except `skip` (a booking an operator
    /// just took a link from). Returns how many got one.
    pub(crate) async fn backfill_in(
        &self,
        tx: &mut dyn Tx,
        during: Window,
        skip: Option<BookingId>,
    ) -> Result<usize> {
        let waiting = tx
            .waiting_during(during, Timestamp::now(), BACKFILL_BATCH)
            .await?;
        let mut assigned = 0;
        for booking in waiting.iter().filter(|b| Some(b.id) != skip) {
            if self
                .assign_in(tx, booking, OnExhausted::Quiet)
                .await?
                .is_some()
            {
                assigned += 1;
            }
        }
        Ok(assigned)
    }
}
