//! The outbound event log's port. The events themselves are written by
//! each database's triggers, in the transaction of the change they report
//! (migration 0009); this is how the service reads them, claims them for
//! delivery and records what became of each.
use async_trait::async_trait;
use jiff::Timestamp;
use meetpool_domain::BookingId;

use crate::Result;

/// Where an event stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet: due now, or waiting for its next attempt.
    Pending,
    Delivered,
    /// Every attempt of the retry schedule failed; retried only on demand.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "delivered" => Ok(Self::Delivered),
            "failed" => Ok(Self::Failed),
            other => Err(format!(
                "status must be pending, failed or delivered, not {other:?}"
            )),
        }
    }
}

/// The database's prefix and the event's number in a `webhook-id`
/// (`evt_{prefix}_{seq}`), if it is one.
pub(crate) fn parse_id(id: &str) -> Option<(&str, i64)> {
    let (prefix, seq) = id.strip_prefix("evt_")?.rsplit_once('_')?;
    Some((prefix, seq.parse().ok()?))
}

/// One outbound event and its delivery.
#[derive(Clone, Debug)]
pub struct OutboundEvent {
    /// Order of writing (a booking's events are delivered in this order).
    pub seq: i64,
    /// `webhook-id`, `evt_{the database's prefix}_{seq}`: the same on every
    /// attempt.
    pub id: String,
    /// `booking.link_assigned`, `pool.low`, ...
    pub kind: String,
    pub booking_id: Option<BookingId>,
    /// What the event says: JSON text, as the database wrote it.
    pub data: String,
    pub created_at: Timestamp,
    pub status: DeliveryStatus,
    /// Attempts made (since the last retry on demand).
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// What became of one attempt.
#[derive(Clone, Debug)]
pub enum Attempt {
    Delivered {
        at: Timestamp,
    },
    /// Failed; tried again from `next`.
    RetryAt {
        error: String,
        next: Timestamp,
    },
    /// Failed, and the schedule is spent.
    GaveUp {
        error: String,
    },
}

/// Events in one replica's hands for an attempt.
#[async_trait]
pub trait Claim: Send {
    /// The events, in order of writing, each with `attempts` counting the
    /// attempt about to be made.
    fn events(&self) -> &[OutboundEvent];

    /// Records each attempt's outcome (by the event's `seq`) and lets the
    /// events go. An event of the claim without an outcome was not
    /// attempted (an earlier event of its booking failed): it is let go as
    /// it was. Dropping a claim instead leaves the events as they were,
    /// due again.
    async fn record(self: Box<Self>, outcomes: &[(i64, Attempt)]) -> Result<()>;
}

/// The log at a glance, for the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: i64,
    pub failed: i64,
    /// When the oldest undelivered (pending) event was written.
    pub oldest_pending: Option<Timestamp>,
}

/// The outbound event log, as the service reads and delivers it. No Rust
/// code writes a booking's events: database triggers on `bookings` and
/// `booking_events` insert them into `outbound_events` in the transaction of
/// the change, so that plain SQL writes them too. The triggers are in the
/// migrations: PostgreSQL's `0009_events.sql` (the table, the
/// `bookings_outbound` statement trigger, `pool.exhausted`), `0011_events.sql`
/// (that trigger's function, rewritten), `0013_event_stream.sql` (the
/// stream's tables) and `0018_provider_actions.sql` (`booking.attendance`);
/// SQLite's `0009_events.sql` and `0018_provider_actions.sql`. Only the
/// events about a state rather than a change (`pool.low`,
/// `platform.row_rejected`) come from the service, through [`Outbox::raise`].
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Turns the writing of events on or off (for every replica: it is the
    /// database's setting).
    async fn set_recording(&self, on: bool) -> Result<()>;

    /// Claims up to `limit` events due at `now`, longest due first (so
    /// that a backlog waiting for its retries is not read on every claim),
    /// for one attempt each: no other claim returns them until the claim
    /// is recorded or dropped, or, should this process die, until
    /// `lease_until`. An event is not due while an earlier event of its
    /// booking is pending, unless the claim takes that one too: a claim
    /// holds a booking's pending events from its first on (as far as they
    /// are all due), so that they go out in order, one after the other.
    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Box<dyn Claim>>;

    /// Events by status (all when `None`), of one booking or of all,
    /// newest first.
    async fn list(
        &self,
        status: Option<DeliveryStatus>,
        booking: Option<BookingId>,
        limit: u32,
    ) -> Result<Vec<OutboundEvent>>;

    /// Makes an undelivered event due at `now` with a fresh schedule.
    /// [`crate::StoreError::NotFound`] for an unknown id,
    /// [`crate::StoreError::Conflict`] for a delivered one.
    async fn retry(&self, id: &str, now: Timestamp) -> Result<OutboundEvent>;

    async fn stats(&self) -> Result<OutboxStats>;

    /// Deletes up to `limit` delivered events written before `before`,
    /// oldest first; how many. The oldest events are found from the start
    /// of the log, which keeps only what is recent, failed or pending.
    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64>;

    /// Writes an event about a state rather than a change, once per
    /// `dedup_key`, if events are on; whether it was written.
    async fn raise(&self, kind: &str, dedup_key: &str, data: &serde_json::Value) -> Result<bool>;
}
