//! Outbound events: what a platform hears about bookings and the pool.
//!
//! The events are written by the database, in the transaction of the change
//! they report (see the store's `Outbox`). Here they are delivered: claimed,
//! signed (Standard Webhooks), POSTed, retried on a schedule, and listed or
//! retried on demand. A commit wakes the deliverer, so an event usually
//! leaves within milliseconds of the change; a poll catches what other
//! replicas wrote and the retries coming due.
mod config;
mod deliver;
mod metrics;
mod sign;

use std::sync::Arc;

use jiff::Timestamp;
use meetpool_domain::BookingId;
use meetpool_store::{DeliveryStatus, OutboundEvent, StoreError};
use serde::Serialize;
use tokio::sync::Notify;
use utoipa::ToSchema;

pub use config::{
    parse_duration, parse_schedule, EventsConfig, DEFAULT_CONCURRENCY, DEFAULT_KEEP,
    DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT,
};
pub use sign::{decode_secret, signature};

use crate::status::checked_limit;
use crate::{App, AppError, Result};

/// The most deliveries one listing returns.
pub const DELIVERIES_MAX: u32 = 1000;
/// Delivered events deleted by one statement, so that no transaction
/// grows with the log.
const PRUNE_BATCH: u32 = 10_000;

/// What the application shares with its deliverer.
#[derive(Default)]
pub(crate) struct Events {
    /// Rung after each commit.
    pub(crate) wake: Arc<Notify>,
    pub(crate) metrics: metrics::EventMetrics,
}

/// One event and how its delivery stands.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` every attempt carries: `evt_`, the database's
    /// prefix, `_`, the event's number.
    #[schema(example = "evt_3f1c9b0a7d_1042")]
    pub id: String,
    #[schema(example = "booking.link_assigned")]
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(format = Uuid)]
    pub booking_id: Option<String>,
    /// pending, delivered or failed.
    #[schema(example = "pending")]
    pub status: &'static str,
    /// Attempts made (since the last retry on demand).
    pub attempts: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the next attempt is due; null unless pending.
    #[schema(format = DateTime, required = true)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub delivered_at: Option<String>,
    /// Why the last attempt failed.
    #[schema(required = true)]
    pub last_error: Option<String>,
}

impl From<OutboundEvent> for DeliveryView {
    fn from(e: OutboundEvent) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            booking_id: e.booking_id.map(|b| b.to_string()),
            status: e.status.as_str(),
            attempts: e.attempts,
            created_at: e.created_at.to_string(),
            next_attempt_at: (e.status == DeliveryStatus::Pending)
                .then(|| e.next_attempt_at.to_string()),
            delivered_at: e.delivered_at.map(|t| t.to_string()),
            last_error: e.last_error,
        }
    }
}

impl App {
    /// The outbound events by delivery status (`pending`, `failed`,
    /// `delivered`; all when `None`), of one booking or of all, newest
    /// first: `limit` of them (100 when absent).
    pub async fn deliveries(
        &self,
        status: Option<&str>,
        booking: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<DeliveryView>> {
        let status = status
            .map(|s| s.parse::<DeliveryStatus>())
            .transpose()
            .map_err(|e| AppError::invalid("invalid_status", e))?;
        let booking = booking
            .map(|b| b.parse::<BookingId>())
            .transpose()
            .map_err(|_| AppError::invalid("invalid_booking_id", "booking_id must be a UUID"))?;
        let limit = checked_limit(limit, 100, DELIVERIES_MAX)?;
        let events = self.store().outbox().list(status, booking, limit).await?;
        Ok(events.into_iter().map(DeliveryView::from).collect())
    }

    /// Sends an undelivered event again now, with a fresh retry schedule
    /// when it had failed for good.
    pub async fn retry_delivery(&self, id: &str) -> Result<DeliveryView> {
        let event = self
            .store()
            .outbox()
            .retry(id, Timestamp::now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::NotFound("event"),
                StoreError::Conflict(_) => AppError::conflict(
                    "already_delivered",
                    format!("event {id} was delivered already"),
                ),
                other => other.into(),
            })?;
        self.events.wake.notify_one();
        Ok(event.into())
    }

    /// Deletes the delivered events written more than `keep` before now
    /// (the events configuration's, 30 days by default); how many. Failed
    /// and pending events stay.
    pub async fn prune_deliveries(&self, keep: std::time::Duration) -> Result<u64> {
        let keep = jiff::SignedDuration::try_from(keep)
            .map_err(|e| AppError::invalid("invalid_keep", e))?;
        let before = Timestamp::now().checked_sub(keep).unwrap_or(Timestamp::MIN);
        let mut pruned = 0;
        loop {
            let n = self.store().outbox().prune(before, PRUNE_BATCH).await?;
            pruned += n;
            if n < u64::from(PRUNE_BATCH) {
                return Ok(pruned);
            }
        }
    }

    /// Makes the database write events (or stop writing them).
    pub async fn record_events(&self, on: bool) -> Result<()> {
        Ok(self.store().outbox().set_recording(on).await?)
    }
}
