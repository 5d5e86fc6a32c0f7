//! Giving links to bookings and taking them back, inside a transaction the
//! caller owns. The database refuses any double booking; these functions
//! choose well, keep the audit trail, and write each booking once.
use jiff::Timestamp;
use meetpool_domain::{choose_link, Booking, BookingId, EventKind, Window};
use meetpool_store::{BookingWrite, NewEvent, Tx};
use serde_json::json;
use tracing::{info, warn};

use crate::metrics::Counter;
use crate::retry::on_commit;
use crate::{App, Result};

/// How many waiting bookings one release offers its freed time to.
const BACKFILL_BATCH: u32 = 50;

/// Where a change to a booking stands once decided.
pub(crate) enum Step {
    /// To be written (nothing, if empty).
    Write(BookingWrite),
    /// Written already: a release, whose freed time was offered to the
    /// bookings waiting for it at once.
    Done(Box<Booking>),
}

impl Step {
    /// Writes what is still to be written; the booking as it is now.
    pub(crate) async fn finish(self, tx: &mut dyn Tx, booking: &Booking) -> Result<Booking> {
        Ok(match self {
            Step::Write(change) if change.is_empty() => booking.clone(),
            Step::Write(change) => tx.write(booking.id, &change).await?,
            Step::Done(after) => *after,
        })
    }
}

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

    /// Gives `booking` a free link if there is one, and writes it together
    /// with `change` (what made the booking need a link: a payment, a move
    /// off a disabled link) in one write. Returns the booking as written;
    /// without a free link it has none.
    pub(crate) async fn assign_in(
        &self,
        tx: &mut dyn Tx,
        booking: &Booking,
        on_exhausted: OnExhausted,
        change: BookingWrite,
    ) -> Result<Booking> {
        let change = self.choose_in(tx, booking, on_exhausted, change).await?;
        Step::Write(change).finish(tx, booking).await
    }

    /// What [`App::assign_in`] would write, without writing it: `change`
    /// with the free link chosen for `booking`, if there is one, and its
    /// event.
    pub(crate) async fn choose_in(
        &self,
        tx: &mut dyn Tx,
        booking: &Booking,
        on_exhausted: OnExhausted,
        mut change: BookingWrite,
    ) -> Result<BookingWrite> {
        let busy = self.busy(booking);
        tx.lock_window(busy).await?;
        let candidates = tx.candidates(busy, booking.id).await?;
        let policy = self.config().policy;
        match choose_link(policy, &busy, &candidates) {
            Some(link) => {
                change.link = Some(Some(link));
                change.events.push(NewEvent::new(
                    EventKind::Assigned,
                    Some(link),
                    json!({ "policy": policy.as_str() }),
                ));
                self.counters.inc(Counter::Assignments);
                let (id, order) = (booking.id, booking.order_id.clone());
                on_commit(move || {
                    info!(booking_id = %id, order_id = %order, link_id = %link, "meeting link assigned");
                });
            }
            None if on_exhausted == OnExhausted::Alert => {
                let enabled = candidates.len();
                change.events.push(NewEvent::new(
                    EventKind::PoolExhausted,
                    None,
                    json!({ "enabled_links": enabled, "starts_at": booking.window.start, "ends_at": booking.window.end }),
                ));
                self.counters.inc(Counter::PoolExhausted);
                let (id, order) = (booking.id, booking.order_id.clone());
                on_commit(move || {
                    warn!(
                        booking_id = %id, order_id = %order, enabled_links = enabled,
                        alert = "pool.exhausted", "no meeting link is free: the booking waits for manual assignment or capacity"
                    );
                });
            }
            None => {}
        }
        Ok(change)
    }

    /// Takes `booking`'s link back (with `change`, what caused it, in the
    /// same write) and offers the freed time to the bookings waiting for
    /// it, oldest first. Returns the booking as written.
    pub(crate) async fn release_in(
        &self,
        tx: &mut dyn Tx,
        booking: &Booking,
        kind: EventKind,
        reason: &str,
        mut change: BookingWrite,
    ) -> Result<Booking> {
        let Some(link) = booking.meeting_link_id else {
            return Step::Write(change).finish(tx, booking).await;
        };
        change.link = Some(None);
        change
            .events
            .push(NewEvent::new(kind, Some(link), json!({ "reason": reason })));
        let released = tx.write(booking.id, &change).await?;
        self.counters.inc(Counter::Releases);
        let (id, order, reason) = (booking.id, booking.order_id.clone(), reason.to_owned());
        on_commit(move || {
            info!(booking_id = %id, order_id = %order, link_id = %link, reason, "meeting link released");
        });
        self.backfill_in(tx, self.busy(booking), Some(booking.id))
            .await?;
        Ok(released)
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
            let after = self
                .assign_in(tx, booking, OnExhausted::Quiet, BookingWrite::default())
                .await?;
            assigned += usize::from(after.meeting_link_id.is_some());
        }
        Ok(assigned)
    }
}
