//! Reconciliation's port: the pending payments to ask the gateway about,
//! when each was last asked, and who is asking now.
//!
//! A booking's checks live in a table of their own (`payment_checks`,
//! migration 0015), never in `bookings`: a payment's own writes do not touch
//! them, and a check touches no booking (on an adopted database, no row of
//! the platform's either). A claim leases its bookings for one round of
//! questions, so that two replicas never ask about one booking at once; a
//! replica that dies mid-round only delays its bookings until the lease
//! ends.
use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use meetpool_domain::{Booking, BookingId};

use crate::Result;

/// Which pending bookings are due.
#[derive(Clone, Copy, Debug)]
pub struct DueChecks {
    pub now: Timestamp,
    /// The wait before a booking's first check, from its creation (its
    /// later checks are due when the last one said).
    pub first_wait: SignedDuration,
    /// Every pending booking whose session has not started, whatever its
    /// schedule (a pass by hand).
    pub every: bool,
    pub limit: u32,
}

/// A pending booking due for a check.
#[derive(Clone, Debug)]
pub struct PaymentCheck {
    pub booking: Booking,
    /// Checks made before this one.
    pub attempts: u32,
}

#[async_trait]
pub trait PaymentChecks: Send + Sync {
    /// The bookings whose payment is pending, whose session starts after
    /// `due.now`, that no replica is asking about and whose check is due,
    /// soonest due first; read only.
    async fn due(&self, due: &DueChecks) -> Result<Vec<PaymentCheck>>;

    /// [`PaymentChecks::due`], each leased until `lease_until`: no other
    /// claim returns them before, unless [`PaymentChecks::record`] ends the
    /// lease. Bookings another transaction holds (a notification being
    /// settled) are skipped.
    async fn claim(&self, due: &DueChecks, lease_until: Timestamp) -> Result<Vec<PaymentCheck>>;

    /// Records a check of `booking` (one more attempt, what came of it) and
    /// when the next is due, ending its lease.
    async fn record(
        &self,
        booking: BookingId,
        checked_at: Timestamp,
        next_at: Timestamp,
        outcome: &str,
    ) -> Result<()>;

    /// Forgets the checks of bookings no longer asked about (paid, ended,
    /// started); how many.
    async fn prune(&self, now: Timestamp) -> Result<u64>;
}
